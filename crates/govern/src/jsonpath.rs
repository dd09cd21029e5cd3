//! The small JSON-path subset rules use to point into tool arguments: `$`, `.name`, `[n]`,
//! `['name']` / `["name"]`, and a bare `name` as shorthand for `$.name`.
//!
//! This module owns parsing those paths once and looking them up without allocating. It must
//! not grow filters or wildcards: a condition names one value.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A compiled path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// A path that is one top-level key.
    pub(crate) fn key(name: &str) -> JsonPath {
        JsonPath {
            steps: vec![Step::Key(name.to_owned())],
        }
    }

    /// Parses `$…` or a bare argument name.
    pub(crate) fn parse(s: &str) -> Result<JsonPath, String> {
        const ACCEPTED: &str = "use `$`, `$.name`, `$.a.b`, `$.items[0]` or `$['odd key']`";
        if s.is_empty() {
            return Err(format!("empty path; {ACCEPTED}"));
        }
        let Some(rest) = s.strip_prefix('$') else {
            if s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Ok(JsonPath::key(s));
            }
            return Err(format!("`{s}` is not a JSON path; {ACCEPTED}"));
        };
        let b = rest.as_bytes();
        let mut i = 0;
        let mut steps = Vec::new();
        while i < b.len() {
            match b[i] {
                b'.' => {
                    let start = i + 1;
                    let mut j = start;
                    while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                        j += 1;
                    }
                    if j == start {
                        return Err(format!("`{s}` has an empty key; {ACCEPTED}"));
                    }
                    steps.push(Step::Key(rest[start..j].to_owned()));
                    i = j;
                }
                b'[' => {
                    let close = rest[i..]
                        .find(']')
                        .map(|k| i + k)
                        .ok_or_else(|| format!("`{s}` has an unclosed `[`; {ACCEPTED}"))?;
                    let inner = &rest[i + 1..close];
                    let quoted = inner.len() >= 2
                        && ((inner.starts_with('\'') && inner.ends_with('\''))
                            || (inner.starts_with('"') && inner.ends_with('"')));
                    if quoted {
                        steps.push(Step::Key(inner[1..inner.len() - 1].to_owned()));
                    } else {
                        let n = inner.parse::<usize>().map_err(|_| {
                            format!("`{s}`: `[{inner}]` is neither an index nor a quoted key; {ACCEPTED}")
                        })?;
                        steps.push(Step::Index(n));
                    }
                    i = close + 1;
                }
                _ => return Err(format!("`{s}` is not a JSON path; {ACCEPTED}")),
            }
        }
        Ok(JsonPath { steps })
    }

    /// The value the path names, if present.
    pub(crate) fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut v = root;
        for step in &self.steps {
            v = match (step, v) {
                (Step::Key(k), Value::Object(m)) => m.get(k)?,
                (Step::Index(n), Value::Array(a)) => a.get(*n)?,
                _ => return None,
            };
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_parse_and_look_up() {
        let v =
            json!({"table": "users", "options": {"limit": 5}, "items": ["a", "b"], "odd key": 1});
        let cases = [
            ("$.table", Some(json!("users"))),
            ("table", Some(json!("users"))),
            ("$.options.limit", Some(json!(5))),
            ("$.items[1]", Some(json!("b"))),
            ("$.items[2]", None),
            ("$['odd key']", Some(json!(1))),
            ("$.missing.deeper", None),
            ("$.table.x", None),
        ];
        for (p, want) in cases {
            let path = JsonPath::parse(p).unwrap();
            assert_eq!(path.lookup(&v).cloned(), want, "{p}");
        }
        assert_eq!(JsonPath::parse("$").unwrap().lookup(&v), Some(&v));
    }

    #[test]
    fn bad_paths_are_refused() {
        for p in ["", "$..a", "$.a[", "$.a[x]", "a.b", "$a"] {
            assert!(JsonPath::parse(p).is_err(), "{p}");
        }
    }
}
