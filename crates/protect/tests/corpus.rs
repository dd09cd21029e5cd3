//! The labelled corpus (`corpus/cases.jsonl`): its sanity, the injection heuristics' scores on
//! it, and the whole scanner's precision/recall gate.

use std::collections::BTreeMap;

use warden_protect::eval::{Case, evaluate, parse_cases};
use warden_protect::{Detection, inject};

const CORPUS: &str = include_str!("../corpus/cases.jsonl");

/// Every type the corpus labels, with the family it belongs to.
const TYPES: &[&str] = &[
    "email",
    "phone",
    "credit_card",
    "credit_card_test",
    "iban",
    "us_ssn",
    "ipv4",
    "ipv6",
    "kr_rrn",
    "jp_my_number",
    "fr_nir",
    "es_dni",
    "es_nie",
    "it_codice_fiscale",
    "sg_nric",
    "in_aadhaar",
    "de_steuer_id",
    "nl_bsn",
    "uk_nino",
    "aws_access_key_id",
    "aws_secret_access_key",
    "github_token",
    "slack_token",
    "openai_api_key",
    "anthropic_api_key",
    "google_api_key",
    "stripe_key",
    "sendgrid_api_key",
    "twilio_api_key",
    "npm_token",
    "jwt",
    "private_key",
    "generic_secret",
    "database_url",
    "injection_override",
    "injection_role",
    "injection_marker",
    "injection_conceal",
    "injection_tool",
];

fn cases() -> Vec<Case> {
    parse_cases(CORPUS).expect("corpus parses")
}

#[test]
fn corpus_is_large_and_covers_every_type() {
    let cases = cases();
    assert!(cases.len() >= 1_200, "only {} cases", cases.len());
    let mut positives: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        for e in &case.expect {
            assert!(
                TYPES.contains(&e.kind.as_str()),
                "{}: unknown type {}",
                case.id,
                e.kind
            );
            *positives.entry(e.kind.as_str()).or_default() += 1;
        }
    }
    for t in TYPES {
        let n = positives.get(t).copied().unwrap_or(0);
        assert!(n >= 30, "type {t} has only {n} positives");
    }
    let negatives = cases.iter().filter(|c| c.expect.is_empty()).count();
    assert!(negatives >= 300, "only {negatives} negatives");
}

#[test]
fn corpus_ids_are_unique_and_values_occur_in_text() {
    let cases = cases();
    let mut ids = std::collections::HashSet::new();
    for case in &cases {
        assert!(ids.insert(case.id.as_str()), "duplicate id {}", case.id);
        for e in &case.expect {
            assert!(
                case.text.contains(&e.value),
                "{}: {:?} not in text",
                case.id,
                e.value
            );
        }
    }
}

#[test]
fn injection_heuristics_score_on_the_corpus() {
    // Injection expectations only; the other types belong to the scanner.
    let cases: Vec<Case> = cases()
        .into_iter()
        .map(|mut c| {
            c.expect.retain(|e| e.kind.starts_with("injection_"));
            c
        })
        .collect();
    let report = evaluate(&cases, |t| {
        let mut out: Vec<Detection> = Vec::new();
        inject::scan(t, &mut out);
        out
    });
    println!("{report}");
    assert!(report.overall.precision >= 0.99, "{report}");
    assert!(report.overall.recall >= 0.99, "{report}");
}

#[test]
fn scanner_meets_the_precision_and_recall_gate() {
    let cases = cases();
    let scanner = warden_protect::detect::Scanner::builtin();
    let report = evaluate(&cases, |t| scanner.scan(t));
    println!("{report}");
    assert!(report.overall.precision >= 0.98, "{report}");
    assert!(report.overall.recall >= 0.97, "{report}");
}
