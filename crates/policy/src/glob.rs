//! Glob patterns for rule values: `*` matches any run of characters (including none) and `?`
//! exactly one character; every other character matches itself.
//!
//! This module owns compiling a pattern once, matching it without allocating, and deciding
//! conservatively whether one pattern covers another (for the linter). It must not grow a
//! regular-expression language: rules stay readable, and matching stays a few nanoseconds.

/// A compiled glob. The common shapes (`*`, `abc`, `abc*`, `*abc`, `ab*yz`, `*abc*`) get a
/// dedicated representation so matching them is one or two slice comparisons.
#[derive(Clone, Debug)]
pub(crate) struct Glob {
    /// The pattern as compiled (ASCII-lowercased when the field is case-insensitive).
    text: Box<str>,
    kind: Kind,
    /// ASCII case-insensitive matching (provider and method names).
    fold: bool,
}

#[derive(Clone, Debug)]
enum Kind {
    Any,
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    PrefixSuffix(Box<str>, Box<str>),
    Contains(Box<str>),
    General(Box<[Tok]>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Star,
    One,
    Lit(char),
}

fn is_wild(c: char) -> bool {
    c == '*' || c == '?'
}

impl Glob {
    /// Compiles `pattern`; `fold` makes it ASCII case-insensitive. Empty patterns are refused
    /// because they would only ever match an empty value, which is never what a rule means.
    pub(crate) fn new(pattern: &str, fold: bool) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("an empty pattern matches nothing; remove it or use `*`".into());
        }
        let text: Box<str> = if fold {
            pattern.to_ascii_lowercase().into()
        } else {
            pattern.into()
        };
        let kind = Self::classify(&text);
        Ok(Glob { text, kind, fold })
    }

    fn classify(p: &str) -> Kind {
        // Runs of stars mean the same as one star.
        let mut squashed = String::with_capacity(p.len());
        for c in p.chars() {
            if !(c == '*' && squashed.ends_with('*')) {
                squashed.push(c);
            }
        }
        let p = squashed.as_str();
        if p == "*" {
            return Kind::Any;
        }
        let stars = p.matches('*').count();
        if !p.contains('?') {
            match stars {
                0 => return Kind::Exact(p.into()),
                1 if p.ends_with('*') => return Kind::Prefix(p[..p.len() - 1].into()),
                1 if p.starts_with('*') => return Kind::Suffix(p[1..].into()),
                1 => {
                    let (a, b) = p.split_once('*').expect("one star");
                    return Kind::PrefixSuffix(a.into(), b.into());
                }
                2 if p.starts_with('*') && p.ends_with('*') => {
                    return Kind::Contains(p[1..p.len() - 1].into());
                }
                _ => {}
            }
        }
        Kind::General(
            p.chars()
                .map(|c| match c {
                    '*' => Tok::Star,
                    '?' => Tok::One,
                    c => Tok::Lit(c),
                })
                .collect(),
        )
    }

    /// The pattern text as compiled.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `value` matches the whole pattern.
    pub(crate) fn matches(&self, value: &str) -> bool {
        let v = value.as_bytes();
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(e) => eq(v, e.as_bytes(), self.fold),
            Kind::Prefix(p) => v.len() >= p.len() && eq(&v[..p.len()], p.as_bytes(), self.fold),
            Kind::Suffix(s) => {
                v.len() >= s.len() && eq(&v[v.len() - s.len()..], s.as_bytes(), self.fold)
            }
            Kind::PrefixSuffix(p, s) => {
                v.len() >= p.len() + s.len()
                    && eq(&v[..p.len()], p.as_bytes(), self.fold)
                    && eq(&v[v.len() - s.len()..], s.as_bytes(), self.fold)
            }
            Kind::Contains(c) => {
                let c = c.as_bytes();
                v.len() >= c.len() && v.windows(c.len()).any(|w| eq(w, c, self.fold))
            }
            Kind::General(toks) => general_match(toks, value, self.fold),
        }
    }

    /// Whether every value this glob can match is also matched by `self`; `false` when unsure.
    ///
    /// Both globs must have been compiled with the same `fold`. Exact for a literal `other`;
    /// for a wildcard `other` it compares `other`'s fixed prefix and suffix with the shapes
    /// `*`, `p*`, `*s`, `p*s` and `*c*`, which is sound because every value `other` matches
    /// starts with its literal prefix and ends with its literal suffix, and the two cannot
    /// overlap (a wildcard lies between them).
    pub(crate) fn covers(&self, other: &Glob) -> bool {
        if matches!(self.kind, Kind::Any) || self.text == other.text {
            return true;
        }
        if let Kind::Exact(lit) = &other.kind {
            return self.matches(lit);
        }
        if matches!(other.kind, Kind::Any) {
            return false;
        }
        let o = &*other.text;
        let first = o
            .find(is_wild)
            .expect("a non-literal pattern has a wildcard");
        let last = o
            .rfind(is_wild)
            .expect("a non-literal pattern has a wildcard");
        let (pre, suf) = (&o[..first], &o[last + 1..]);
        match &self.kind {
            Kind::Prefix(p) => pre.starts_with(&**p),
            Kind::Suffix(s) => suf.ends_with(&**s),
            Kind::PrefixSuffix(p, s) => pre.starts_with(&**p) && suf.ends_with(&**s),
            Kind::Contains(c) => pre.contains(&**c) || suf.contains(&**c),
            _ => false,
        }
    }

    /// Whether this glob matches every possible value.
    pub(crate) fn is_any(&self) -> bool {
        matches!(self.kind, Kind::Any)
    }
}

/// Whether `value` matches the glob `pattern` (`*` any run, `?` one character, case-sensitive),
/// with the same semantics as rule values. Compiles the pattern on every call: for patterns
/// used per request, prefer compiling them into rules.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    Glob::new(pattern, false).is_ok_and(|g| g.matches(value))
}

fn eq(a: &[u8], b: &[u8], fold: bool) -> bool {
    if fold {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn char_eq(a: char, b: char, fold: bool) -> bool {
    a == b || (fold && a.eq_ignore_ascii_case(&b))
}

/// Iterative wildcard matching with single-star backtracking: linear in practice, never
/// exponential, and `?` consumes one whole UTF-8 character rather than one byte.
fn general_match(toks: &[Tok], value: &str, fold: bool) -> bool {
    let (mut t, mut s) = (0usize, 0usize);
    // Where to resume after the most recent star: token after it, and byte offset in `value`.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        let next = value[s..].chars().next();
        match (toks.get(t), next) {
            (Some(Tok::Star), _) => {
                t += 1;
                resume = Some((t, s));
                continue;
            }
            (Some(Tok::One), Some(c)) => {
                t += 1;
                s += c.len_utf8();
                continue;
            }
            (Some(Tok::Lit(l)), Some(c)) if char_eq(*l, c, fold) => {
                t += 1;
                s += c.len_utf8();
                continue;
            }
            (None, None) => return true,
            _ => {}
        }
        // Mismatch: let the last star swallow one more character, or fail.
        match resume {
            Some((rt, rs)) => match value[rs..].chars().next() {
                Some(c) => {
                    let rs = rs + c.len_utf8();
                    resume = Some((rt, rs));
                    t = rt;
                    s = rs;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        Glob::new(p, false).unwrap()
    }

    #[test]
    fn shapes_match() {
        assert!(g("*").matches(""));
        assert!(g("gpt-4o").matches("gpt-4o"));
        assert!(!g("gpt-4o").matches("gpt-4o-mini"));
        assert!(g("gpt-*").matches("gpt-4o"));
        assert!(g("gpt-*").matches("gpt-"));
        assert!(!g("gpt-*").matches("gpt"));
        assert!(g("*-mini").matches("gpt-4o-mini"));
        assert!(g("gpt-*-mini").matches("gpt-4o-mini"));
        assert!(!g("gpt-*-mini").matches("gpt-mini"));
        assert!(g("*mini*").matches("gpt-4o-mini-2024"));
        assert!(!g("*mini*").matches("gpt-4o"));
        assert!(g("gpt-4?").matches("gpt-4o"));
        assert!(!g("gpt-4?").matches("gpt-4"));
        assert!(g("a*b*c").matches("a-b-b-c"));
        assert!(!g("a*b*c").matches("a-c-b"));
        assert!(g("a**b").matches("ab"));
        assert!(g("?*").matches("é"));
        assert!(g("caf?").matches("café"));
        assert!(!g("GPT-*").matches("gpt-4o"), "case-sensitive by default");
    }

    #[test]
    fn folded_matching_ignores_ascii_case() {
        let p = Glob::new("OpenAI", true).unwrap();
        assert_eq!(p.as_str(), "openai");
        assert!(p.matches("OPENAI"));
        assert!(Glob::new("p?st", true).unwrap().matches("POST"));
        assert!(Glob::new("*AI", true).unwrap().matches("openai"));
    }

    #[test]
    fn empty_pattern_is_refused() {
        assert!(Glob::new("", false).is_err());
        assert!(!glob_match("", ""));
    }

    #[test]
    fn glob_match_is_case_sensitive() {
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(!glob_match("GPT-4o*", "gpt-4o-mini"));
    }

    /// Obviously-correct reference matcher (exponential, fine for tiny inputs).
    fn reference(p: &[char], v: &[char]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some(('*', rest)) => (0..=v.len()).any(|i| reference(rest, &v[i..])),
            Some(('?', rest)) => !v.is_empty() && reference(rest, &v[1..]),
            Some((c, rest)) => v.first() == Some(c) && reference(rest, &v[1..]),
        }
    }

    /// Every string over `alphabet` up to `max` characters.
    fn strings(alphabet: &[char], max: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..max {
            let mut next = Vec::new();
            for s in &frontier {
                for c in alphabet {
                    next.push(format!("{s}{c}"));
                }
            }
            out.extend(next.iter().cloned());
            frontier = next;
        }
        out
    }

    #[test]
    fn matching_agrees_with_a_reference_exhaustively() {
        let patterns: Vec<String> = strings(&['a', 'b', '*', '?'], 4)
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let values = strings(&['a', 'b'], 5);
        for p in &patterns {
            let g = g(p);
            let pc: Vec<char> = p.chars().collect();
            for v in &values {
                let vc: Vec<char> = v.chars().collect();
                assert_eq!(
                    g.matches(v),
                    reference(&pc, &vc),
                    "pattern {p:?} value {v:?}"
                );
            }
        }
    }

    #[test]
    fn covers_never_claims_what_is_false() {
        // For every pair of small patterns: if `a` claims to cover `b`, every value `b` matches
        // (up to a length beyond both patterns' literal parts) must match `a`.
        let patterns: Vec<Glob> = strings(&['a', 'b', '*', '?'], 3)
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(|p| g(&p))
            .collect();
        let values = strings(&['a', 'b'], 6);
        let mut claims = 0;
        for a in &patterns {
            for b in &patterns {
                if a.covers(b) {
                    claims += 1;
                    for v in &values {
                        assert!(
                            !b.matches(v) || a.matches(v),
                            "{:?} claims to cover {:?} but misses {v:?}",
                            a.text,
                            b.text
                        );
                    }
                }
            }
        }
        assert!(
            claims > 500,
            "the check should make many claims, made {claims}"
        );
    }

    #[test]
    fn covers_is_sound_on_common_shapes() {
        assert!(g("*").covers(&g("gpt-*")));
        assert!(g("gpt-*").covers(&g("gpt-4o")));
        assert!(g("gpt-*").covers(&g("gpt-4o*")));
        assert!(g("gpt-*").covers(&g("gpt-*")));
        assert!(!g("gpt-4o").covers(&g("gpt-*")));
        assert!(!g("gpt-4o*").covers(&g("gpt-*")));
        assert!(g("*-mini").covers(&g("gpt-*-mini")));
        assert!(g("gpt*mini").covers(&g("gpt-4o*-mini")));
        assert!(g("*4o*").covers(&g("gpt-4o-*")));
        assert!(!g("*4o*").covers(&g("gpt-*")));
        assert!(!g("gpt-*").covers(&g("*")));
        // Multi-star general patterns are only compared for equality.
        assert!(g("a*b*c").covers(&g("a*b*c")));
        assert!(!g("a*b*c").covers(&g("a*x*c")));
        assert!(g("a*b*c").covers(&g("abc")));
    }
}
