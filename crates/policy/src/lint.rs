//! Warnings about rules that can never fire: rules shadowed by an earlier, broader rule and
//! rules placed after a catch-all.
//!
//! This module owns deciding, conservatively, that one rule's matches are a superset of
//! another's. It reports only what it can prove: when it cannot tell (two multi-star globs, two
//! time windows in differently named zones), it stays silent. It must not reject a policy; the
//! gateway prints these as warnings.

use std::fmt;

use serde::Serialize;

use crate::rules::{ALWAYS_PRESENT, Field, Rule};

/// A rule that can never be the first match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Lint {
    /// Every request `rule` matches is matched by the earlier rule `by`.
    Shadowed {
        /// Index of the rule that never fires.
        rule: usize,
        /// Its name.
        name: String,
        /// Index of the earlier rule that takes all its requests.
        by: usize,
        /// That rule's name.
        by_name: String,
    },
    /// `rule` comes after `after`, which matches every request.
    Unreachable {
        /// Index of the rule that never fires.
        rule: usize,
        /// Its name.
        name: String,
        /// Index of the earlier catch-all rule.
        after: usize,
        /// That rule's name.
        after_name: String,
    },
}

impl Lint {
    /// Index of the rule that can never fire.
    pub fn rule(&self) -> usize {
        match self {
            Lint::Shadowed { rule, .. } | Lint::Unreachable { rule, .. } => *rule,
        }
    }
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lint::Shadowed {
                rule,
                name,
                by,
                by_name,
            } => write!(
                f,
                "rule `{name}` (rules[{rule}]) never applies: rule `{by_name}` (rules[{by}]) comes \
                 first and matches every request `{name}` matches; move `{name}` above it or \
                 narrow `{by_name}`"
            ),
            Lint::Unreachable {
                rule,
                name,
                after,
                after_name,
            } => write!(
                f,
                "rule `{name}` (rules[{rule}]) is unreachable: rule `{after_name}` (rules[{after}]) \
                 matches every request and the first match wins; put catch-all rules last, or \
                 replace them with policy.default"
            ),
        }
    }
}

pub(crate) fn lint(rules: &[Rule]) -> Vec<Lint> {
    let mut out = Vec::new();
    let mut catch_all: Option<&Rule> = None;
    for (j, b) in rules.iter().enumerate() {
        if let Some(a) = catch_all {
            out.push(Lint::Unreachable {
                rule: j,
                name: b.name.clone(),
                after: a.index,
                after_name: a.name.clone(),
            });
            continue;
        }
        if let Some(a) = rules[..j].iter().find(|a| covers(a, b)) {
            out.push(Lint::Shadowed {
                rule: j,
                name: b.name.clone(),
                by: a.index,
                by_name: a.name.clone(),
            });
        }
        if is_catch_all(b) {
            catch_all = Some(b);
        }
    }
    out
}

/// A field list that constrains nothing: `*` on a field every request has.
fn unconstrained(field: &Field, i: usize) -> bool {
    i < ALWAYS_PRESENT && field.iter().any(|g| g.is_any())
}

/// Every glob of `b` is covered by some glob of `a`.
fn list_covers(a: &Field, b: &Field) -> bool {
    b.iter().all(|gb| a.iter().any(|ga| ga.covers(gb)))
}

fn is_catch_all(r: &Rule) -> bool {
    r.fields
        .iter()
        .enumerate()
        .all(|(i, f)| f.as_ref().is_none_or(|f| unconstrained(f, i)))
        && r.matcher.headers.is_empty()
        && r.matcher.window.as_ref().is_none_or(|w| w.is_always())
}

/// Whether every request `b` matches is also matched by `a`, for certain.
fn covers(a: &Rule, b: &Rule) -> bool {
    for (i, (fa, fb)) in a.fields.iter().zip(b.fields.iter()).enumerate() {
        let ok = match (fa, fb) {
            (None, _) => true,
            (Some(fa), _) if unconstrained(fa, i) => true,
            // `b` also matches requests without this value, which `a` never does.
            (Some(_), None) => false,
            (Some(fa), Some(fb)) => list_covers(fa, fb),
        };
        if !ok {
            return false;
        }
    }
    for (name, fa) in a.matcher.headers.iter() {
        match b.matcher.headers.iter().find(|(n, _)| n == name) {
            Some((_, fb)) if list_covers(fa, fb) => {}
            _ => return false,
        }
    }
    match (&a.matcher.window, &b.matcher.window) {
        (None, _) => true,
        (Some(wa), _) if wa.is_always() => true,
        (Some(_), None) => false,
        (Some(wa), Some(wb)) => wa.covers(wb),
    }
}
