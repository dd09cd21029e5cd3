//! Price lookup, overrides, cost arithmetic and budget specifications.

use warden_policy::{
    BudgetPeriod, BudgetSpec, Facts, Price, PriceBasis, PriceSpec, PriceTable, Scope, UnknownModel,
    Usage, micros_to_usd, usd_to_micros, validate_budgets, worst_case_micros,
};

fn usd(input: f64, output: f64, cached: f64) -> Price {
    Price::from_usd_per_mtok(input, output, Some(cached)).unwrap()
}

#[test]
fn exact_names_resolve() {
    let t = PriceTable::builtin();
    assert_eq!(t.lookup("openai", "gpt-4o"), Some(usd(2.5, 10.0, 1.25)));
    assert_eq!(
        t.lookup("openai", "gpt-4o-mini"),
        Some(usd(0.15, 0.6, 0.075))
    );
    assert_eq!(
        t.lookup("anthropic", "claude-sonnet-4-5"),
        Some(usd(3.0, 15.0, 0.3))
    );
    assert_eq!(
        t.lookup("gemini", "gemini-2.5-pro"),
        Some(usd(1.25, 10.0, 0.125))
    );
    assert_eq!(
        t.lookup("openai", "text-embedding-3-small"),
        Some(usd(0.02, 0.0, 0.02))
    );
}

#[test]
fn dated_and_variant_names_resolve_to_their_base() {
    let t = PriceTable::builtin();
    let base = |p: &str, m: &str| match t.resolve(p, m).map(|r| r.basis) {
        Some(PriceBasis::Model(k)) => Some(k.to_string()),
        _ => None,
    };
    assert_eq!(
        base("openai", "gpt-4o-2024-08-06").as_deref(),
        Some("gpt-4o")
    );
    assert_eq!(
        base("openai", "gpt-4o-mini-2024-07-18").as_deref(),
        Some("gpt-4o-mini")
    );
    assert_eq!(
        base("openai", "gpt-4.1-mini-2025-04-14").as_deref(),
        Some("gpt-4.1-mini")
    );
    assert_eq!(base("openai", "gpt-5-2025-08-07").as_deref(), Some("gpt-5"));
    assert_eq!(base("openai", "gpt-5.1-codex").as_deref(), Some("gpt-5.1"));
    assert_eq!(base("openai", "o3-2025-04-16").as_deref(), Some("o3"));
    assert_eq!(
        base("openai", "o4-mini-2025-04-16").as_deref(),
        Some("o4-mini")
    );
    assert_eq!(
        base("anthropic", "claude-sonnet-4-5-20250929").as_deref(),
        Some("claude-sonnet-4-5")
    );
    assert_eq!(
        base("anthropic", "claude-sonnet-4-5@20250929").as_deref(),
        Some("claude-sonnet-4-5"),
        "Vertex AI spells the date after @"
    );
    assert_eq!(
        base("anthropic", "claude-opus-4-20250514").as_deref(),
        Some("claude-opus-4")
    );
    assert_eq!(
        base("anthropic", "claude-opus-4-1-20250805").as_deref(),
        Some("claude-opus-4-1")
    );
    assert_eq!(
        base("anthropic", "claude-3-7-sonnet-latest").as_deref(),
        Some("claude-3-7-sonnet")
    );
    assert_eq!(
        base("gemini", "gemini-2.5-flash-preview-09-2025").as_deref(),
        Some("gemini-2.5-flash")
    );
    assert_eq!(
        base("gemini", "gemini-2.5-flash-lite-preview-09-2025").as_deref(),
        Some("gemini-2.5-flash-lite")
    );
}

#[test]
fn mini_and_full_models_never_take_each_others_price() {
    let t = PriceTable::builtin();
    let full = t.lookup("openai", "gpt-4o").unwrap();
    let mini = t.lookup("openai", "gpt-4o-mini").unwrap();
    assert_ne!(full, mini);
    assert_eq!(t.lookup("openai", "gpt-4o-mini-2024-07-18"), Some(mini));
    assert_eq!(t.lookup("openai", "gpt-4o-2024-11-20"), Some(full));
    // A dated name with its own list price wins over its base.
    assert_eq!(
        t.lookup("openai", "gpt-4o-2024-05-13"),
        Some(usd(5.0, 15.0, 5.0))
    );
    // `.` is not a boundary: gpt-4.1 is not priced as some `gpt-4`.
    assert_ne!(t.lookup("openai", "gpt-4.1"), t.lookup("openai", "gpt-4o"));
    // A prefix that is not at a boundary never matches.
    assert_eq!(t.lookup("openai", "gpt-4oxyz"), None);
    assert_eq!(t.lookup("openai", "o3x"), None);
    // The provider matters.
    assert_eq!(t.lookup("anthropic", "gpt-4o"), None);
}

#[test]
fn gemini_resource_names_and_case_are_normalized() {
    let t = PriceTable::builtin();
    let flash = t.lookup("gemini", "gemini-2.5-flash").unwrap();
    assert_eq!(t.lookup("gemini", "models/gemini-2.5-flash"), Some(flash));
    assert_eq!(
        t.lookup("gemini", "models/gemini-2.5-flash-001"),
        Some(flash)
    );
    assert_eq!(t.lookup("openai", "GPT-4o"), t.lookup("openai", "gpt-4o"));
}

#[test]
fn ollama_models_are_free_unless_overridden() {
    let t = PriceTable::builtin();
    let r = t.resolve("ollama", "llama3.2:3b").unwrap();
    assert_eq!((r.price, r.basis), (Price::ZERO, PriceBasis::Local));
    assert!(r.price.is_zero());
    let t = t.with_overrides(vec![PriceSpec {
        provider: "ollama".into(),
        model: "llama3.2".into(),
        price: usd(0.1, 0.1, 0.1),
    }]);
    assert_eq!(t.lookup("ollama", "llama3.2:3b"), Some(usd(0.1, 0.1, 0.1)));
    assert_eq!(t.lookup("ollama", "qwen3"), Some(Price::ZERO));
}

#[test]
fn overrides_win_and_add_models_and_default_catches_the_rest() {
    let t = PriceTable::builtin()
        .with_overrides(vec![
            PriceSpec {
                provider: "openai".into(),
                model: "gpt-4o".into(),
                price: usd(2.0, 8.0, 1.0),
            },
            PriceSpec {
                provider: "openai".into(),
                model: "meta-llama/Llama-3.1-8B-Instruct".into(),
                price: usd(0.05, 0.05, 0.05),
            },
        ])
        .with_default(Some(usd(1.0, 1.0, 1.0)));
    assert_eq!(t.lookup("openai", "gpt-4o"), Some(usd(2.0, 8.0, 1.0)));
    assert_eq!(
        t.lookup("openai", "gpt-4o-2024-08-06"),
        Some(usd(2.0, 8.0, 1.0))
    );
    // The override replaced `gpt-4o` only; a dated entry of its own stays.
    assert_eq!(
        t.lookup("openai", "gpt-4o-2024-05-13"),
        Some(usd(5.0, 15.0, 5.0))
    );
    assert_eq!(
        t.lookup("openai", "meta-llama/Llama-3.1-8B-Instruct"),
        Some(usd(0.05, 0.05, 0.05))
    );
    let unknown = t.resolve("openai", "my-finetune").unwrap();
    assert_eq!(
        (unknown.price, unknown.basis),
        (usd(1.0, 1.0, 1.0), PriceBasis::Default)
    );
    assert_eq!(t.default_price(), Some(usd(1.0, 1.0, 1.0)));
    let overrides: Vec<_> = t.overrides().map(|(p, m, _)| format!("{p}/{m}")).collect();
    assert_eq!(
        overrides,
        ["openai/gpt-4o", "openai/meta-llama/llama-3.1-8b-instruct"]
    );
    // Without a default, unknown models have no price.
    assert_eq!(PriceTable::builtin().lookup("openai", "my-finetune"), None);
    assert_eq!(PriceTable::empty().lookup("openai", "gpt-4o"), None);
}

#[test]
fn entries_list_the_whole_table_sorted() {
    let t = PriceTable::builtin();
    let entries: Vec<_> = t.entries().collect();
    assert!(entries.len() > 50);
    assert!(
        entries
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
    );
    for model in [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o3",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "claude-opus-4-1",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "claude-3-7-sonnet",
        "claude-3-5-haiku",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-2.0-flash",
    ] {
        assert!(entries.iter().any(|e| e.1 == model), "{model} is missing");
    }
}

#[test]
fn cost_rounds_up_per_component() {
    let p = usd(2.5, 10.0, 1.25);
    // 1 input token at $2.50/M is 2.5 micro-USD: charged 3.
    let one = Usage {
        input_tokens: 1,
        ..Default::default()
    };
    assert_eq!(p.cost_micros(&one), 3);
    // Each component rounds up on its own: 3 + 10 + 2 (1.25 → 2).
    let u = Usage {
        input_tokens: 1,
        output_tokens: 1,
        cached_input_tokens: 1,
    };
    assert_eq!(p.cost_micros(&u), 15);
    // Exact amounts are not rounded.
    let u = Usage {
        input_tokens: 1_000_000,
        output_tokens: 500_000,
        cached_input_tokens: 0,
    };
    assert_eq!(p.cost_micros(&u), 2_500_000 + 5_000_000);
    assert_eq!(micros_to_usd(p.cost_micros(&u)), 7.5);
    assert_eq!(p.cost_micros(&Usage::default()), 0);
    assert_eq!(Price::ZERO.cost_micros(&u), 0);
    // No overflow, even for absurd counts.
    let huge = Usage {
        input_tokens: u64::MAX,
        output_tokens: u64::MAX,
        cached_input_tokens: u64::MAX,
    };
    assert_eq!(usd(1e9, 1e9, 1e9).cost_micros(&huge), i64::MAX);
}

#[test]
fn cached_input_is_billed_at_the_cached_price_only() {
    let p = PriceTable::builtin().lookup("openai", "gpt-4o").unwrap();
    // 10,000 prompt tokens of which 8,000 were cache hits: the caller passes 2,000 + 8,000.
    let u = Usage {
        input_tokens: 2_000,
        output_tokens: 0,
        cached_input_tokens: 8_000,
    };
    assert_eq!(p.cost_micros(&u), 5_000 + 10_000);
    // Without a published cached price, cached input costs the input price.
    let no_cache = Price::from_usd_per_mtok(1.0, 2.0, None).unwrap();
    assert_eq!(no_cache.cached_input_micros_per_mtok, 1_000_000);
}

#[test]
fn worst_case_assumes_no_cache_hits_and_full_output() {
    let p = usd(2.5, 10.0, 1.25);
    assert_eq!(worst_case_micros(&p, 1_000, 4_096), 2_500 + 40_960);
    // Even if someone configured a cached price above the input price.
    let odd = usd(1.0, 0.0, 3.0);
    assert_eq!(worst_case_micros(&odd, 1_000_000, 0), 3_000_000);
    assert_eq!(worst_case_micros(&Price::ZERO, 1_000, 1_000), 0);
}

#[test]
fn usd_conversion_validates() {
    assert_eq!(usd_to_micros(0.0), Ok(0));
    assert_eq!(usd_to_micros(0.075), Ok(75_000));
    assert_eq!(usd_to_micros(12.345678), Ok(12_345_678));
    assert_eq!(usd_to_micros(1e9), Ok(1_000_000_000_000_000));
    assert!(usd_to_micros(-0.01).is_err());
    assert!(usd_to_micros(f64::NAN).is_err());
    assert!(usd_to_micros(f64::INFINITY).is_err());
    assert!(usd_to_micros(1e9 + 1.0).is_err());
    let e = Price::from_usd_per_mtok(1.0, -1.0, None).unwrap_err();
    assert!(e.starts_with("output price"), "{e}");
}

#[test]
fn unknown_model_policy() {
    assert_eq!(UnknownModel::default(), UnknownModel::Deny);
    assert!(UnknownModel::Deny.refuses(true));
    assert!(!UnknownModel::Deny.refuses(false));
    assert!(!UnknownModel::Allow.refuses(true));
    assert_eq!(UnknownModel::parse("allow"), Ok(UnknownModel::Allow));
    assert!(UnknownModel::parse("maybe").is_err());
}

fn budget(name: &str) -> BudgetSpec {
    BudgetSpec {
        name: name.into(),
        per: Scope::Agent,
        id: None,
        limit_micros: 10_000_000,
        soft_micros: Some(8_000_000),
        approve_micros: None,
        period: BudgetPeriod::Month,
    }
}

#[test]
fn budgets_validate() {
    assert!(validate_budgets(&[budget("a"), budget("b")]).is_ok());
    let (i, e) = validate_budgets(&[budget("a"), budget("a")]).unwrap_err();
    assert_eq!((i, e.field), (1, "name"));
    let bad = [
        (
            BudgetSpec {
                limit_micros: 0,
                ..budget("x")
            },
            "limit_usd",
        ),
        (
            BudgetSpec {
                soft_micros: Some(10_000_000),
                ..budget("x")
            },
            "soft_usd",
        ),
        (
            BudgetSpec {
                soft_micros: Some(0),
                ..budget("x")
            },
            "soft_usd",
        ),
        (
            BudgetSpec {
                approve_micros: Some(10_000_000),
                ..budget("x")
            },
            "approve_usd",
        ),
        (
            BudgetSpec {
                per: Scope::Global,
                id: Some("x".into()),
                ..budget("x")
            },
            "id",
        ),
        (
            BudgetSpec {
                id: Some(String::new()),
                ..budget("x")
            },
            "id",
        ),
        (budget(""), "name"),
    ];
    for (b, field) in bad {
        assert_eq!(b.validate().unwrap_err().field, field);
    }
}

#[test]
fn budgets_apply_to_their_scope_and_subject() {
    let mut facts = Facts::new("openai", "chat_completions", "POST", "api.openai.com");
    facts.agent = Some("reporter");
    facts.tenant = Some("acme");
    assert_eq!(budget("a").subject(&facts), Some("reporter"));
    let only_writer = BudgetSpec {
        id: Some("writer".into()),
        ..budget("w")
    };
    assert_eq!(only_writer.subject(&facts), None);
    let only_reporter = BudgetSpec {
        id: Some("reporter".into()),
        ..budget("r")
    };
    assert_eq!(only_reporter.subject(&facts), Some("reporter"));
    let global = BudgetSpec {
        per: Scope::Global,
        ..budget("g")
    };
    assert_eq!(global.subject(&facts), Some("global"));
    let per_session = BudgetSpec {
        per: Scope::Session,
        ..budget("s")
    };
    assert_eq!(
        per_session.subject(&facts),
        None,
        "no session: not applicable"
    );
}

#[test]
fn budget_periods_are_utc_calendar_periods() {
    let now = "2026-12-31T23:59:59Z".parse().unwrap();
    assert_eq!(BudgetPeriod::Day.window_key(now), "2026-12-31");
    assert_eq!(BudgetPeriod::Month.window_key(now), "2026-12");
    assert_eq!(BudgetPeriod::Total.window_key(now), "total");
    assert_eq!(
        BudgetPeriod::Day.resets_at(now).unwrap().to_string(),
        "2027-01-01T00:00:00Z"
    );
    assert_eq!(
        BudgetPeriod::Month.resets_at(now).unwrap().to_string(),
        "2027-01-01T00:00:00Z"
    );
    let feb = "2028-02-15T10:00:00Z".parse().unwrap();
    assert_eq!(
        BudgetPeriod::Month.resets_at(feb).unwrap().to_string(),
        "2028-03-01T00:00:00Z"
    );
    assert_eq!(BudgetPeriod::Total.resets_at(now), None);
    assert_eq!(
        BudgetPeriod::parse("week").unwrap_err(),
        "`week` is not a period; use total, day or month"
    );
}
