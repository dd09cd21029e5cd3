//! The path analyzer: file paths a tool will touch, normalized lexically and compared to
//! allowed and denied roots.
//!
//! This module owns path normalization (also used by the shell analyzer for `rm` targets and
//! redirections) and root comparison. It must not touch the file system: the files live on the
//! agent's machine, not the gateway's, so symlinks cannot be resolved. Instead normalization is
//! purely lexical and deliberately suspicious:
//!
//! - `~`, `$HOME` and `${HOME}` become a home anchor; `~root` is `/root`, `~user` is
//!   `/home/user`; other leading `$VAR`s stay a variable anchor (`$TMPDIR/x`).
//! - Percent-encoding is decoded (repeatedly, so `%252e` is caught), backslashes are
//!   separators, `.` and empty components vanish, `..` pops a component.
//! - A NUL byte anywhere is a violation (it truncates paths in C APIs).
//! - A relative path that still starts with `..` escapes the working directory: violation.
//!   `..` above `/` stays at `/`, as the kernel does; above `~` it escapes the home anchor.
//! - Roots compare component-wise: `/etcetera` is not under `/etc`. A home-anchored root
//!   (`~/.ssh`) also covers `/root/.ssh` and `/home/*/.ssh`, since the home is unknown.

use crate::Violation;

/// Where a normalized path starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// `/…`
    Root,
    /// `~/…`, `$HOME/…`
    Home,
    /// `$NAME/…` (any variable other than HOME)
    Var(String),
    /// Relative to the agent's working directory.
    Relative,
}

/// A lexically normalized path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NormPath {
    pub(crate) anchor: Anchor,
    /// `..` components left over at the start (only for relative and home paths).
    pub(crate) escapes: usize,
    pub(crate) comps: Vec<String>,
}

/// Why a path could not be normalized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathError {
    Nul,
    Empty,
}

fn percent_decode_once(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                changed = true;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    changed.then(|| String::from_utf8_lossy(&out).into_owned())
}

fn var_name(s: &str) -> Option<(&str, &str)> {
    // `$NAME rest` or `${NAME} rest` at the start of `s`.
    let rest = s.strip_prefix('$')?;
    if let Some(inner) = rest.strip_prefix('{') {
        let end = inner.find('}')?;
        let name = &inner[..end];
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        return valid.then(|| (name, &inner[end + 1..]));
    }
    let end = rest
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| (&rest[..end], &rest[end..]))
}

/// Normalizes a path lexically (see the module doc).
pub(crate) fn normalize(raw: &str) -> Result<NormPath, PathError> {
    let mut s = raw.to_owned();
    for _ in 0..3 {
        match percent_decode_once(&s) {
            Some(d) => s = d,
            None => break,
        }
    }
    if s.contains('\0') {
        return Err(PathError::Nul);
    }
    let s = s.replace('\\', "/");
    let s = s.trim();
    if s.is_empty() {
        return Err(PathError::Empty);
    }
    let (anchor, mut comps, rest): (Anchor, Vec<String>, &str) =
        if let Some(r) = s.strip_prefix('~') {
            let end = r.find('/').unwrap_or(r.len());
            let user = &r[..end];
            match user {
                "" => (Anchor::Home, Vec::new(), &r[end..]),
                "root" => (Anchor::Root, vec!["root".into()], &r[end..]),
                u => (Anchor::Root, vec!["home".into(), u.into()], &r[end..]),
            }
        } else if let Some((name, rest)) = var_name(s) {
            if name == "HOME" {
                (Anchor::Home, Vec::new(), rest)
            } else {
                (Anchor::Var(name.to_owned()), Vec::new(), rest)
            }
        } else if s.starts_with('/') {
            (Anchor::Root, Vec::new(), s)
        } else if s.len() >= 2 && s.as_bytes()[1] == b':' && s.as_bytes()[0].is_ascii_alphabetic() {
            // A Windows drive (`C:/Users`): absolute, with the drive as the first component.
            (Anchor::Root, vec![s[..2].to_ascii_lowercase()], &s[2..])
        } else {
            (Anchor::Relative, Vec::new(), s)
        };
    let mut escapes = 0;
    for c in rest.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if comps.pop().is_none() && anchor != Anchor::Root {
                    escapes += 1;
                }
            }
            c => comps.push(c.to_owned()),
        }
    }
    Ok(NormPath {
        anchor,
        escapes,
        comps,
    })
}

impl NormPath {
    /// Whether `self` is `root` or below it (component-wise). A home-anchored root also covers
    /// the home directories it could be (`/root/…`, `/home/*/…`, `/Users/*/…`).
    pub(crate) fn is_under(&self, root: &NormPath) -> bool {
        if self.escapes != root.escapes {
            return false;
        }
        let prefix = |skip: usize| {
            self.comps.len() >= skip + root.comps.len()
                && self.comps[skip..skip + root.comps.len()] == root.comps[..]
        };
        if self.anchor == root.anchor {
            return prefix(0);
        }
        if root.anchor == Anchor::Home && self.anchor == Anchor::Root {
            let c = &self.comps;
            return (c.first().is_some_and(|h| h == "root") && prefix(1))
                || (c.first().is_some_and(|h| h == "home" || h == "Users") && prefix(2));
        }
        false
    }

    /// Strictly below `root` (not the root itself).
    pub(crate) fn is_strictly_under(&self, root: &NormPath) -> bool {
        self.is_under(root) && self.depth_below(root) > 0
    }

    fn depth_below(&self, root: &NormPath) -> usize {
        let skip = if self.anchor == root.anchor {
            0
        } else if self.comps.first().is_some_and(|h| h == "root") {
            1
        } else {
            2
        };
        self.comps.len().saturating_sub(skip + root.comps.len())
    }

    /// The path's root, for reasons: `/`, `/home`, `~`, `~/.ssh`, `..`, `$TMPDIR`, `src`.
    /// Only the first component is shown (two under `~`), so file names stay out of logs.
    pub(crate) fn root_display(&self) -> String {
        let first = self.comps.first().map(String::as_str);
        match &self.anchor {
            Anchor::Root => format!("/{}", first.unwrap_or("")),
            Anchor::Home if self.escapes > 0 => "~/..".into(),
            Anchor::Home => match first {
                Some(f) => format!("~/{f}"),
                None => "~".into(),
            },
            Anchor::Var(v) => format!("${v}"),
            Anchor::Relative if self.escapes > 0 => "..".into(),
            Anchor::Relative => first.unwrap_or(".").to_owned(),
        }
    }

    /// Whether a relative or home path climbs out of its anchor.
    pub(crate) fn escapes(&self) -> bool {
        self.escapes > 0
    }
}

/// A compiled path analyzer.
#[derive(Clone, Debug)]
pub(crate) struct PathCheck {
    pub(crate) allow: Vec<(String, NormPath)>,
    pub(crate) deny: Vec<(String, NormPath)>,
}

impl PathCheck {
    /// Compiles roots; `field` is used in errors.
    pub(crate) fn compile(allow: &[String], deny: &[String]) -> Result<PathCheck, String> {
        let norm = |list: &[String], field: &str| -> Result<Vec<(String, NormPath)>, String> {
            list.iter()
                .enumerate()
                .map(|(i, r)| {
                    let n = normalize(r).map_err(|_| {
                        format!("{field}[{i}]: `{r}` is not a path root; use `/abs/dir`, `~/dir`, `.` or `./dir`")
                    })?;
                    if n.escapes() {
                        return Err(format!("{field}[{i}]: `{r}` climbs out with `..`; name the directory itself"));
                    }
                    Ok((r.clone(), n))
                })
                .collect()
        };
        Ok(PathCheck {
            allow: norm(allow, "allow_roots")?,
            deny: norm(deny, "deny_roots")?,
        })
    }

    /// The first problem with `raw`, if any.
    pub(crate) fn check(&self, raw: &str) -> Option<Violation> {
        let p = match normalize(raw) {
            Ok(p) => p,
            Err(PathError::Nul) => {
                return Some(Violation::new(
                    "a path with a NUL byte",
                    "NUL bytes truncate paths",
                ));
            }
            Err(PathError::Empty) => return None,
        };
        if p.escapes() {
            return Some(Violation::new(
                format!("path under \"{}\"", p.root_display()),
                "path escapes the working directory",
            ));
        }
        if let Some((r, _)) = self.deny.iter().find(|(_, d)| p.is_under(d)) {
            return Some(Violation::new(
                format!("path under \"{r}\""),
                "denied path root",
            ));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|(_, a)| p.is_under(a)) {
            return Some(Violation::new(
                format!("path under \"{}\"", p.root_display()),
                "path outside the allowed roots",
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NormPath {
        normalize(s).unwrap()
    }

    #[test]
    fn normalization_is_lexical_and_suspicious() {
        let cases: &[(&str, Anchor, usize, &[&str])] = &[
            ("/etc//passwd", Anchor::Root, 0, &["etc", "passwd"]),
            (
                "/home/u/../../etc/shadow",
                Anchor::Root,
                0,
                &["etc", "shadow"],
            ),
            ("/../../etc", Anchor::Root, 0, &["etc"]),
            ("../../etc/passwd", Anchor::Relative, 2, &["etc", "passwd"]),
            ("src/./main.rs", Anchor::Relative, 0, &["src", "main.rs"]),
            ("a/b/../../..", Anchor::Relative, 1, &[]),
            ("~/.ssh/id_rsa", Anchor::Home, 0, &[".ssh", "id_rsa"]),
            (
                "$HOME/.aws/credentials",
                Anchor::Home,
                0,
                &[".aws", "credentials"],
            ),
            ("${HOME}/.kube", Anchor::Home, 0, &[".kube"]),
            ("~root/.ssh", Anchor::Root, 0, &["root", ".ssh"]),
            ("%2e%2e/%2e%2e/etc", Anchor::Relative, 2, &["etc"]),
            ("%252e%252e/x", Anchor::Relative, 1, &["x"]),
            ("..\\..\\windows", Anchor::Relative, 2, &["windows"]),
            ("/tmp/build/", Anchor::Root, 0, &["tmp", "build"]),
            ("$TMPDIR/x", Anchor::Var("TMPDIR".into()), 0, &["x"]),
        ];
        for (raw, anchor, escapes, comps) in cases {
            let p = n(raw);
            assert_eq!(&p.anchor, anchor, "{raw}");
            assert_eq!(p.escapes, *escapes, "{raw}");
            assert_eq!(
                p.comps,
                comps.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                "{raw}"
            );
        }
        assert_eq!(normalize("a\0b"), Err(PathError::Nul));
        assert_eq!(normalize("a%00b"), Err(PathError::Nul));
    }

    #[test]
    fn roots_compare_component_wise() {
        assert!(n("/etc/passwd").is_under(&n("/etc")));
        assert!(n("/etc").is_under(&n("/etc/")));
        assert!(!n("/etcetera/x").is_under(&n("/etc")));
        assert!(n("/home/alice/.ssh/id_rsa").is_under(&n("~/.ssh")));
        assert!(n("/root/.ssh").is_under(&n("~/.ssh")));
        assert!(!n("/home/alice/ssh").is_under(&n("~/.ssh")));
        assert!(n("src/main.rs").is_under(&n(".")));
        assert!(!n("/src/main.rs").is_under(&n(".")));
        assert!(n("/tmp/x").is_strictly_under(&n("/tmp")));
        assert!(!n("/tmp").is_strictly_under(&n("/tmp")));
        assert!(n("/home/a/.ssh/k").is_strictly_under(&n("~/.ssh")));
    }

    #[test]
    fn check_applies_allow_and_deny_roots() {
        let c = PathCheck::compile(&[".".into(), "/data".into()], &["./secrets".into()]).unwrap();
        assert_eq!(c.check("src/main.rs"), None);
        assert_eq!(c.check("/data/x.csv"), None);
        let v = c.check("/etc/passwd").unwrap();
        assert_eq!(v.what, "path under \"/etc\"");
        assert_eq!(v.why, "path outside the allowed roots");
        assert_eq!(c.check("secrets/key").unwrap().why, "denied path root");
        assert_eq!(
            c.check("../x").unwrap().why,
            "path escapes the working directory"
        );
        assert_eq!(c.check("a\0").unwrap().why, "NUL bytes truncate paths");
        assert!(PathCheck::compile(&["../up".into()], &[]).is_err());
    }
}
