//! Applies the policy's actions to one string: redaction labels, partial masks, vault
//! placeholders, or a block, and reports what was done as [`Finding`]s.
//!
//! This module sees values only long enough to replace them. A [`Finding`] carries the type and
//! byte offsets, never the value; nothing here logs. The only place a value is kept is the
//! [`Vault`], encrypted.
//!
//! Rules:
//! - `block` sets [`Outcome::blocked`] and leaves that value's text alone; the other detections
//!   are still applied, so a caller that shows the transformed text (the CLI) shows what the
//!   rest of the policy would have produced.
//! - `tokenize` needs a vault and a session in the [`Context`]; without either it falls back to
//!   `redact` (never to leaving the value in place), and the finding records `redact`.
//!   A missing tenant is the empty tenant `""`.
//! - Report mode applies nothing: a finding records `allow` if the policy says `allow`, `log`
//!   otherwise, and the configured action in `would` when it is stronger than `log`.
//! - Off mode returns an empty [`Outcome`] (the gateway should not even scan).
//! - Findings with action `allow` are included (the CLI shows them); a caller that records
//!   findings should skip them, since `allow` means "do not even log".

use std::sync::Arc;

use serde::Serialize;

use crate::policy::{Action, Direction, Mode, ProtectPolicy};
use crate::vault::{Vault, label_name};
use crate::{Category, Detection};

/// What was found in one string and what was done about it. No value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The type name.
    #[serde(
        rename = "type",
        serialize_with = "crate::transform::serialize_arc_str"
    )]
    pub kind: Arc<str>,
    /// The type's family.
    pub category: Category,
    /// First byte of the value in the original string.
    pub start: usize,
    /// One past the last byte of the value in the original string.
    pub end: usize,
    /// What was done (in report mode: `log`, or `allow`).
    pub action: Action,
    /// Report mode only: the configured action that was not applied, when stronger than `log`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would: Option<Action>,
}

/// serde's `rc` feature is off in this workspace; a type name is just a string.
pub(crate) fn serialize_arc_str<S: serde::Serializer>(
    s: &Arc<str>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

/// Who and where, for one call of [`apply`].
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Request or response: picks the action column.
    pub direction: Direction,
    /// Picks tenant overrides and the vault namespace (`None` = base policy, vault tenant `""`).
    pub tenant: Option<&'a str>,
    /// Vault namespace for placeholders; `None` disables tokenize (falls back to redact).
    pub session: Option<&'a str>,
    /// Where placeholders are issued; `None` disables tokenize (falls back to redact).
    pub vault: Option<&'a Vault>,
}

/// The result of [`apply`].
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The rewritten string, only if something changed.
    pub text: Option<String>,
    /// One per detection, in text order.
    pub findings: Vec<Finding>,
    /// Whether a detection's action is `block` (enforce mode only).
    pub blocked: bool,
}

/// Applies `policy` to the `detections` of `text` in one pass.
///
/// `detections` are expected sorted and non-overlapping (the scanner's contract); unsorted input
/// is sorted, and an overlapping detection only rewrites the part after the previous one (a
/// `block` still counts). A detection whose offsets are not valid for `text` is skipped.
pub fn apply(
    text: &str,
    detections: &[Detection],
    policy: &ProtectPolicy,
    ctx: &Context,
) -> Outcome {
    let mode = policy.mode(ctx.tenant);
    if mode == Mode::Off || detections.is_empty() {
        return Outcome::default();
    }
    let sorted;
    let detections = if detections
        .windows(2)
        .all(|w| (w[0].start, w[0].end) <= (w[1].start, w[1].end))
    {
        detections
    } else {
        sorted = {
            let mut v = detections.to_vec();
            v.sort_by_key(|d| (d.start, d.end));
            v
        };
        &sorted[..]
    };

    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut covered = 0;
    let mut outcome = Outcome {
        findings: Vec::with_capacity(detections.len()),
        ..Outcome::default()
    };
    for d in detections {
        if d.start > d.end || text.get(d.start..d.end).is_none() {
            debug_assert!(
                false,
                "detection {}..{} invalid for a string of {} bytes",
                d.start,
                d.end,
                text.len()
            );
            continue;
        }
        let configured = policy.action(ctx.direction, ctx.tenant, &d.kind, d.category);
        let (mut done, would) = match mode {
            Mode::Enforce => (configured, None),
            _ => (
                configured.min(Action::Log),
                (configured > Action::Log).then_some(configured),
            ),
        };
        let start = d.start.max(covered);
        let value = if start < d.end {
            &text[start..d.end]
        } else {
            ""
        };
        let replacement = match done {
            Action::Allow | Action::Log => None,
            Action::Block => {
                outcome.blocked = true;
                None
            }
            Action::Mask => Some(mask_in(&d.kind, d.category == Category::Secret, value)),
            Action::Redact => Some(label(&d.kind)),
            Action::Tokenize => match (ctx.vault, ctx.session) {
                (Some(vault), Some(session)) => {
                    Some(vault.tokenize(ctx.tenant.unwrap_or(""), session, &d.kind, value))
                }
                _ => {
                    done = Action::Redact;
                    Some(label(&d.kind))
                }
            },
        };
        if let Some(r) = replacement
            && !value.is_empty()
        {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
            o.push_str(&text[copied..start]);
            o.push_str(&r);
            copied = d.end;
        }
        covered = covered.max(d.end);
        outcome.findings.push(Finding {
            kind: d.kind.clone(),
            category: d.category,
            start: d.start,
            end: d.end,
            action: done,
            would,
        });
    }
    outcome.text = out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    });
    outcome
}

/// The redaction label for a type: `[EMAIL]`, `[CREDIT_CARD]`, `[GITHUB_TOKEN]`.
pub fn label(kind: &str) -> String {
    format!("[{}]", label_name(kind))
}

/// A partial mask that keeps a small, non-identifying part of the value:
///
/// | type | example |
/// |---|---|
/// | `credit_card`, `credit_card_test` | `**** **** **** 1111` (last 4 digits, separators kept) |
/// | `email` | `j***@example.org` (first character of the local part, the domain) |
/// | `phone` | `+** *** ***-*567` (last 2–4 digits, at most a third) |
/// | `iban` | `DE** **** **** **** **30 00` (country and last 4) |
/// | secrets | `ghp_********` (a known non-secret prefix at most, never any of the secret part) |
/// | anything else | last 4 letters/digits if there are at least 12, otherwise only stars |
///
/// Apart from the email domain and the IBAN country, a mask keeps at most a third of the
/// characters. A value with nothing recognisable to keep is all stars.
pub fn mask(kind: &str, value: &str) -> String {
    let secret = crate::detect::BUILTIN_TYPES
        .iter()
        .any(|(name, category, _)| *name == kind && *category == Category::Secret);
    mask_in(kind, secret, value)
}

/// Public, format-identifying prefixes of credentials. Keeping one tells a reader which kind of
/// key was there without any of its entropy.
const SECRET_PREFIXES: &[&str] = &[
    "github_pat_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxr-",
    "xoxs-",
    "xapp-",
    "sk-ant-",
    "sk-proj-",
    "sk-svcacct-",
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "pk_live_",
    "pk_test_",
    "whsec_",
    "SG.",
    "AKIA",
    "ASIA",
    "AIza",
    "npm_",
    "glpat-",
    "eyJ",
    "SK",
];

const SECRET_STARS: &str = "********";

fn mask_in(kind: &str, secret: bool, value: &str) -> String {
    if secret {
        return mask_secret(value);
    }
    match kind {
        "credit_card" | "credit_card_test" => {
            let n = count(value, is_digit);
            keep_ends(value, is_digit, 0, 4.min(n / 3))
        }
        "phone" => {
            let n = count(value, is_digit);
            keep_ends(value, is_digit, 0, 4.min(n / 3))
        }
        "email" => match value.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                let first = local.chars().next().unwrap_or('*');
                // Fixed three stars: the local part's length is not revealed either.
                format!("{first}***@{domain}")
            }
            _ => generic(value),
        },
        "iban" if count(value, char::is_alphanumeric) >= 15 => {
            keep_ends(value, char::is_alphanumeric, 2, 4)
        }
        _ => generic(value),
    }
}

fn mask_secret(value: &str) -> String {
    let short_enough = |prefix: &str| prefix.len() * 3 <= value.len();
    // PEM: the header names the key type only.
    if let Some(rest) = value.strip_prefix("-----BEGIN ")
        && let Some(end) = rest.find("-----")
    {
        let header = &value[..11 + end + 5];
        if short_enough(header) {
            return format!("{header}{SECRET_STARS}");
        }
    }
    // Connection strings: the scheme says which database, the rest holds the credentials.
    if let Some(i) = value.find("://") {
        let scheme = &value[..i + 3];
        if scheme[..i]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
            && short_enough(scheme)
        {
            return format!("{scheme}{SECRET_STARS}");
        }
    }
    let prefix = SECRET_PREFIXES
        .iter()
        .filter(|p| value.starts_with(**p) && short_enough(p))
        .max_by_key(|p| p.len())
        .copied()
        .unwrap_or("");
    format!("{prefix}{SECRET_STARS}")
}

fn generic(value: &str) -> String {
    let n = count(value, char::is_alphanumeric);
    keep_ends(value, char::is_alphanumeric, 0, if n >= 12 { 4 } else { 0 })
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

fn count(value: &str, target: fn(char) -> bool) -> usize {
    value.chars().filter(|&c| target(c)).count()
}

/// Stars every `target` character except the first `head` and last `tail` of them; other
/// characters (separators) keep their place so the shape stays readable. With no target
/// character at all, everything becomes stars: a mask must never echo a value it cannot parse.
fn keep_ends(value: &str, target: fn(char) -> bool, head: usize, tail: usize) -> String {
    let n = count(value, target);
    if n == 0 {
        return value.chars().map(|_| '*').collect();
    }
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if !target(c) {
                return c;
            }
            seen += 1;
            if seen <= head || seen > n.saturating_sub(tail) {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::policy::PolicySpec;

    fn kinds() -> Vec<(Arc<str>, Category)> {
        [
            ("email", Category::Pii),
            ("phone", Category::Pii),
            ("credit_card", Category::Pii),
            ("iban", Category::Pii),
            ("github_token", Category::Secret),
            ("injection_override", Category::Injection),
        ]
        .into_iter()
        .map(|(k, c)| (Arc::from(k), c))
        .collect()
    }

    fn policy(mode: Mode, actions: &[(&str, Action)]) -> ProtectPolicy {
        ProtectPolicy::compile(
            PolicySpec {
                mode: Some(mode),
                actions: actions
                    .iter()
                    .map(|(k, a)| (k.to_string(), *a))
                    .collect::<BTreeMap<_, _>>(),
                ..Default::default()
            },
            &kinds(),
        )
        .unwrap()
    }

    /// Detections for each `(kind, needle)` at the needle's first occurrence.
    fn detect(text: &str, items: &[(&str, &str)]) -> Vec<Detection> {
        let cat = |k: &str| kinds().into_iter().find(|(n, _)| &**n == k).unwrap().1;
        items
            .iter()
            .map(|(k, needle)| {
                let start = text.find(needle).unwrap();
                Detection {
                    kind: Arc::from(*k),
                    category: cat(k),
                    start,
                    end: start + needle.len(),
                }
            })
            .collect()
    }

    const REQ: Context<'static> = Context {
        direction: Direction::Request,
        tenant: None,
        session: None,
        vault: None,
    };

    #[test]
    fn labels() {
        assert_eq!(label("email"), "[EMAIL]");
        assert_eq!(label("credit_card"), "[CREDIT_CARD]");
        assert_eq!(label("github_token"), "[GITHUB_TOKEN]");
        assert_eq!(label("my-rule"), "[MY_RULE]");
    }

    #[test]
    fn mask_shapes() {
        assert_eq!(
            mask("credit_card", "4111 1111 1111 1111"),
            "**** **** **** 1111"
        );
        assert_eq!(
            mask("credit_card", "4111-1111-1111-1111"),
            "****-****-****-1111"
        );
        assert_eq!(
            mask("credit_card_test", "4111111111111111"),
            "************1111"
        );
        assert_eq!(
            mask("credit_card", "3782 822463 10005"),
            "**** ****** *0005"
        );
        assert_eq!(mask("email", "john.doe\x40example.org"), "j***@example.org");
        assert_eq!(mask("email", "x@y.io"), "x***@y.io");
        assert_eq!(mask("email", "not-an-email"), "***-**-*****");
        assert_eq!(mask("phone", "+1 (555) 123-4567"), "+* (***) ***-*567");
        assert_eq!(mask("phone", "010-1234-5678"), "***-****-*678");
        assert_eq!(mask("phone", "+44 20 7946 0958 12"), "+** ** **** **58 12");
        assert_eq!(
            mask("iban", "DE89 3704 0044 0532 0130 00"),
            "DE** **** **** **** **30 00"
        );
        assert_eq!(
            mask("iban", "GB29NWBK60161331926819"),
            "GB****************6819"
        );
        assert_eq!(
            mask("github_token", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
            "ghp_********"
        );
        assert_eq!(
            mask(
                "anthropic_api_key",
                "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"
            ),
            "sk-ant-********"
        );
        assert_eq!(
            mask("openai_api_key", "sk-proj-abcdefghijklmnopqrstuvwxyz"),
            "sk-proj-********"
        );
        assert_eq!(
            mask("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE"),
            "AKIA********"
        );
        assert_eq!(
            mask(
                "aws_secret_access_key",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
            ),
            "********"
        );
        assert_eq!(
            mask(
                "database_url",
                "postgres://admin:hunter2@db.internal:5432/app"
            ),
            "postgres://********"
        );
        assert_eq!(
            mask(
                "private_key",
                &format!(
                    "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
                    "A".repeat(64)
                )
            ),
            "-----BEGIN RSA PRIVATE KEY-----********"
        );
        // A prefix longer than a third of the value is not kept.
        assert_eq!(mask("github_token", "ghp_abc"), "********");
        assert_eq!(mask("us_ssn", "123-45-6789"), "***-**-****");
        assert_eq!(mask("kr_rrn", "900101-1234567"), "******-***4567");
        assert_eq!(mask("employee_id", "EMP-0042"), "***-****");
        assert_eq!(mask("phone", "--"), "**");
        assert_eq!(mask("ipv4", "192.168.10.23"), "***.***.**.**");
    }

    #[test]
    fn masks_never_reveal_more_than_a_third() {
        let samples = [
            ("credit_card", "4111111111111111"),
            ("credit_card", "4111 1111 1111 1"),
            ("phone", "5551234"),
            ("phone", "+82 10 1234 5678"),
            ("us_ssn", "123456789"),
            ("in_aadhaar", "2345 6789 0123"),
            ("custom", "abcdefghijkl"),
            ("github_token", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
        ];
        for (kind, value) in samples {
            let m = mask(kind, value);
            let kept = value
                .chars()
                .zip(m.chars())
                .filter(|(a, b)| a == b && a.is_alphanumeric())
                .count();
            let total = value.chars().filter(|c| c.is_alphanumeric()).count();
            assert!(kept * 3 <= total, "{kind}: {m} keeps {kept} of {total}");
        }
    }

    #[test]
    fn every_action_in_one_pass_with_multibyte_text() {
        let text = "안녕 john.doe\x40example.org — 카드 4111 1111 1111 1111, 전화 010-1234-5678, ghp_16C7e42F292c6912E7710c838347Ae178B4a 끝 ✓";
        let dets = detect(
            text,
            &[
                ("email", "john.doe\x40example.org"),
                ("credit_card", "4111 1111 1111 1111"),
                ("phone", "010-1234-5678"),
                ("github_token", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
            ],
        );
        let p = policy(
            Mode::Enforce,
            &[
                ("email", Action::Redact),
                ("credit_card", Action::Mask),
                ("phone", Action::Log),
            ],
        );
        let out = apply(text, &dets, &p, &REQ);
        assert!(out.blocked);
        assert_eq!(
            out.text.as_deref(),
            Some(
                "안녕 [EMAIL] — 카드 **** **** **** 1111, 전화 010-1234-5678, ghp_16C7e42F292c6912E7710c838347Ae178B4a 끝 ✓"
            )
        );
        let actions: Vec<Action> = out.findings.iter().map(|f| f.action).collect();
        assert_eq!(
            actions,
            [Action::Redact, Action::Mask, Action::Log, Action::Block]
        );
        assert_eq!(
            (out.findings[0].start, out.findings[0].end),
            (dets[0].start, dets[0].end)
        );
        assert!(out.findings.iter().all(|f| f.would.is_none()));
        let json = serde_json::to_value(&out.findings[3]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "github_token", "category": "secret", "start": dets[3].start, "end": dets[3].end, "action": "block"})
        );
    }

    #[test]
    fn nothing_to_change_leaves_text_none() {
        let text = "mail john\x40example.org";
        let dets = detect(text, &[("email", "john\x40example.org")]);
        let out = apply(text, &dets, &policy(Mode::Enforce, &[]), &REQ);
        assert_eq!(out.text, None);
        assert!(!out.blocked);
        assert_eq!(out.findings[0].action, Action::Log);
        let out = apply(
            text,
            &dets,
            &policy(Mode::Enforce, &[("email", Action::Allow)]),
            &REQ,
        );
        assert_eq!(out.findings[0].action, Action::Allow);
        let out = apply(
            text,
            &[],
            &policy(Mode::Enforce, &[("email", Action::Block)]),
            &REQ,
        );
        assert!(out.findings.is_empty() && out.text.is_none());
    }

    #[test]
    fn report_mode_applies_nothing_and_says_what_it_would_do() {
        let text =
            "a john\x40example.org b ghp_16C7e42F292c6912E7710c838347Ae178B4a c 010-1234-5678";
        let dets = detect(
            text,
            &[
                ("email", "john\x40example.org"),
                ("github_token", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
                ("phone", "010-1234-5678"),
            ],
        );
        let p = policy(
            Mode::Report,
            &[("email", Action::Redact), ("phone", Action::Allow)],
        );
        let out = apply(text, &dets, &p, &REQ);
        assert_eq!(out.text, None);
        assert!(!out.blocked);
        let got: Vec<(Action, Option<Action>)> =
            out.findings.iter().map(|f| (f.action, f.would)).collect();
        assert_eq!(
            got,
            [
                (Action::Log, Some(Action::Redact)),
                (Action::Log, Some(Action::Block)),
                (Action::Allow, None)
            ]
        );
        let json = serde_json::to_value(&out.findings[0]).unwrap();
        assert_eq!(json["would"], "redact");
        assert!(
            serde_json::to_value(&out.findings[2])
                .unwrap()
                .get("would")
                .is_none()
        );
    }

    #[test]
    fn off_mode_does_nothing() {
        let text = "john\x40example.org";
        let dets = detect(text, &[("email", text)]);
        let out = apply(
            text,
            &dets,
            &policy(Mode::Off, &[("email", Action::Block)]),
            &REQ,
        );
        assert!(out.findings.is_empty() && out.text.is_none() && !out.blocked);
    }

    #[test]
    fn tokenize_with_vault_round_trips_and_without_falls_back_to_redact() {
        let text = "from ana\x40example.org to bob1\x40example.org, cc ana\x40example.org";
        let dets = vec![
            Detection {
                kind: "email".into(),
                category: Category::Pii,
                start: 5,
                end: 20,
            },
            Detection {
                kind: "email".into(),
                category: Category::Pii,
                start: 24,
                end: 40,
            },
            Detection {
                kind: "email".into(),
                category: Category::Pii,
                start: 45,
                end: 60,
            },
        ];
        assert_eq!(&text[45..60], "ana\x40example.org");
        let p = policy(Mode::Enforce, &[("email", Action::Tokenize)]);
        let vault = Vault::new(Vault::generate_key(), Duration::from_secs(60));
        let ctx = Context {
            direction: Direction::Request,
            tenant: Some("acme"),
            session: Some("s1"),
            vault: Some(&vault),
        };
        let out = apply(text, &dets, &p, &ctx);
        let tokenized = out.text.unwrap();
        assert_eq!(tokenized, "from ⟦EMAIL_1⟧ to ⟦EMAIL_2⟧, cc ⟦EMAIL_1⟧");
        assert!(out.findings.iter().all(|f| f.action == Action::Tokenize));
        assert_eq!(
            vault.restore("acme", "s1", &tokenized),
            Some((text.to_string(), 3))
        );

        for ctx in [
            REQ,
            Context {
                vault: Some(&vault),
                ..REQ
            },
            Context {
                session: Some("s1"),
                ..REQ
            },
        ] {
            let out = apply(text, &dets, &p, &ctx);
            assert_eq!(
                out.text.as_deref(),
                Some("from [EMAIL] to [EMAIL], cc [EMAIL]")
            );
            assert!(out.findings.iter().all(|f| f.action == Action::Redact));
        }
        // Responses never tokenize.
        let resp = Context {
            direction: Direction::Response,
            ..ctx
        };
        let out = apply(text, &dets, &p, &resp);
        assert_eq!(
            out.text.as_deref(),
            Some("from [EMAIL] to [EMAIL], cc [EMAIL]")
        );
    }

    #[test]
    fn unsorted_and_overlapping_detections_are_handled() {
        let text = "x 4111111111111111 y";
        let card = Detection {
            kind: "credit_card".into(),
            category: Category::Pii,
            start: 2,
            end: 18,
        };
        let phone = Detection {
            kind: "phone".into(),
            category: Category::Pii,
            start: 8,
            end: 18,
        };
        let email = Detection {
            kind: "email".into(),
            category: Category::Pii,
            start: 19,
            end: 20,
        };
        let p = policy(
            Mode::Enforce,
            &[
                ("credit_card", Action::Redact),
                ("phone", Action::Block),
                ("email", Action::Redact),
            ],
        );
        let out = apply(text, &[email, phone, card], &p, &REQ);
        assert_eq!(out.text.as_deref(), Some("x [CREDIT_CARD] [EMAIL]"));
        assert!(out.blocked);
        assert_eq!(out.findings.len(), 3);
        assert_eq!(out.findings[0].kind.as_ref(), "credit_card");
    }
}
