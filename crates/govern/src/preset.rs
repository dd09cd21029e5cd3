//! The built-in preset: the analyzers applied by naming convention to tools no user rule
//! decided, as rules `preset:sql`, `preset:shell`, `preset:path` and `preset:url`.
//!
//! This module owns the conventions — which tool names look like SQL, shell, file or URL tools
//! and which argument names hold the text to judge — and the order they are tried in. It must
//! stay cheap for the common case: classifying a tool name is a few case-insensitive substring
//! scans over the name's bytes, with no allocation, and a name that fits no convention costs
//! nothing more.
//!
//! | rule | tool name contains (any case) | arguments judged |
//! |---|---|---|
//! | `preset:sql` | `sql`, `query`, `db`, `database` | `sql`, `query`, `statement`; also `command`, `cmd`, `script` unless the name is clearly a shell's (`shell`, `bash`, `terminal`, `run_command`) |
//! | `preset:shell` | `shell`, `bash`, `exec`, `run_command`, `terminal`, `cmd`, `command` (not a SQL-like name, unless clearly a shell's) | `command`, `cmd`, `script`, `commands` |
//! | `preset:path` | `file`, `read`, `write`, `fs`, `path`, `dir`, `edit` | `path`, `paths`, `file`, `files`, `file_path`, `filepath`, `filename`, `dir`, `directory`, `target`, `source`, `destination` |
//! | `preset:url` | `fetch`, `browse`, `http`, `url`, `web`, `request`, `download`, `navigate` | `url`, `urls`, `uri`, `href`, `link`, `endpoint` |
//!
//! Two judgement calls keep the preset from refusing ordinary tools: a tool whose name is
//! SQL-like only through `query` (`search_query`, `kb_query`) has its text judged only when it
//! starts like SQL (`SELECT`, `DROP` …) and parses as SQL — natural-language queries pass, while
//! `DROP TABLE users` is still caught; and an argument
//! whose value is not text (an object, a number) is skipped by the preset, which judges text.
//! Arguments that were not valid JSON at all (`Value::String`) are unparsable for any tool the
//! preset covers.

/// Which conventions a tool name fits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Kinds {
    pub(crate) sql: bool,
    /// SQL-like by `sql`, `db` or `database`, not only `query`.
    pub(crate) sql_strong: bool,
    pub(crate) shell: bool,
    /// `shell`, `bash`, `terminal`, `run_command`: clearly a shell.
    pub(crate) shell_strong: bool,
    pub(crate) file: bool,
    pub(crate) url: bool,
}

impl Kinds {
    pub(crate) fn any(self) -> bool {
        self.sql || self.shell || self.file || self.url
    }

    /// Whether the shell preset applies (SQL-like names take `command` for SQL).
    pub(crate) fn shell_applies(self) -> bool {
        self.shell && (!self.sql || self.shell_strong)
    }
}

/// Longest tool name classified from a stack buffer; longer names are truncated for the
/// convention check only (real tool names are short identifiers).
const MAX_CLASSIFIED: usize = 128;

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.len() >= n.len() && hay.windows(n.len()).any(|w| w == n)
}

/// Classifies a tool name. Allocation-free: the name is lower-cased into a stack buffer once.
pub(crate) fn classify(name: &str) -> Kinds {
    let mut buf = [0u8; MAX_CLASSIFIED];
    let len = name.len().min(MAX_CLASSIFIED);
    for (d, s) in buf.iter_mut().zip(name.as_bytes()) {
        *d = s.to_ascii_lowercase();
    }
    let lower = &buf[..len];
    let any = |needles: &[&str]| needles.iter().any(|n| contains(lower, n));
    let sql_strong = any(&["sql", "db", "database"]);
    let shell_strong = any(&["shell", "bash", "terminal", "run_command"]);
    Kinds {
        sql: sql_strong || contains(lower, "query"),
        sql_strong,
        shell: shell_strong || any(&["exec", "cmd", "command"]),
        shell_strong,
        file: any(&["file", "read", "write", "fs", "path", "dir", "edit"]),
        url: any(&[
            "fetch", "browse", "http", "url", "web", "request", "download", "navigate",
        ]),
    }
}

/// Argument names per convention.
pub(crate) const SQL_ARGS: &[&str] = &["sql", "query", "statement"];
pub(crate) const SQL_EXTRA_ARGS: &[&str] = &["command", "cmd", "script"];
pub(crate) const SHELL_ARGS: &[&str] = &["command", "cmd", "script", "commands"];
pub(crate) const PATH_ARGS: &[&str] = &[
    "path",
    "paths",
    "file",
    "files",
    "file_path",
    "filepath",
    "filename",
    "dir",
    "directory",
    "target",
    "source",
    "destination",
];
pub(crate) const URL_ARGS: &[&str] = &["url", "urls", "uri", "href", "link", "endpoint"];

/// Whether text starts like a SQL statement (after blanks, comments and parentheses).
pub(crate) fn looks_like_sql(text: &str) -> bool {
    let mut t = text.trim_start();
    loop {
        if let Some(rest) = t.strip_prefix("--") {
            t = rest.split_once('\n').map_or("", |x| x.1).trim_start();
        } else if let Some(rest) = t.strip_prefix("/*") {
            t = rest.split_once("*/").map_or("", |x| x.1).trim_start();
        } else if let Some(rest) = t.strip_prefix('(') {
            t = rest.trim_start();
        } else {
            break;
        }
    }
    let word: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    !word.is_empty()
        && (crate::sql::KNOWN_VERBS.contains(&word.as_str())
            || word == "with"
            || word == "values"
            || word == "table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_classify_by_convention() {
        let k = classify("execute_sql");
        assert!(k.sql && k.sql_strong && k.shell && !k.shell_strong && !k.shell_applies());
        let k = classify("run_shell_command");
        assert!(k.shell_applies() && !k.sql);
        assert!(classify("Bash").shell_strong);
        assert!(classify("read_file").file && !classify("read_file").url);
        assert!(classify("web_fetch").url);
        let k = classify("search_query");
        assert!(k.sql && !k.sql_strong);
        assert!(!classify("get_weather").any());
        assert!(!classify("").any());
    }

    #[test]
    fn sql_detection_skips_comments_and_parens() {
        for s in [
            "SELECT 1",
            "  -- hi\n drop table x",
            "/* x */ (select 1)",
            "WITH a AS (SELECT 1) SELECT 1",
        ] {
            assert!(looks_like_sql(s), "{s}");
        }
        for s in ["best pizza near me", "", "how do I drop a table?"] {
            assert!(!looks_like_sql(s), "{s}");
        }
    }
}
