//! The SQL analyzer: what the statements a database tool would run actually do.
//!
//! This module owns SQL classification: parsing with `sqlparser` in the configured dialect,
//! naming each statement's kind (`DROP TABLE`, `DELETE`), finding writes hidden inside reads
//! (data-modifying CTEs, `SELECT … INTO`), and collecting every referenced relation. It must not
//! execute or rewrite SQL, and its reasons name statement kinds and tables only — never
//! literals, which is also why a parser error's text (which quotes the input) is not repeated.
//!
//! Every statement of a multi-statement payload is judged, and so is every statement nested in
//! another (a `DELETE … RETURNING` inside a `WITH`, the statement under `EXPLAIN ANALYZE`), since
//! `sqlparser`'s visitor walks them all. Input is capped at [`MAX_SQL`] bytes and the parser's
//! recursion limit bounds nesting; anything beyond is unparsable.
//!
//! Known gaps: functions with side effects inside a `SELECT` (`pg_terminate_backend`,
//! `lo_export`, `pg_write_file`) are not recognized; MySQL `INTO OUTFILE` does not parse in
//! `sqlparser` and is therefore unparsable (denied by default).

use std::fmt::Write as _;
use std::ops::ControlFlow;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use sqlparser::ast::{ObjectName, Select, Statement, Visit, Visitor};
use sqlparser::dialect::{Dialect, GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

use crate::Violation;
use crate::spec::{SqlDialect, SqlPolicy};

/// Largest SQL text analyzed; longer is unparsable.
pub const MAX_SQL: usize = 256 * 1024;

/// Nesting the parser accepts (its own default is 50).
const RECURSION_LIMIT: usize = 50;

/// Statement verbs `deny_statements` accepts (first word of a kind).
pub(crate) const KNOWN_VERBS: &[&str] = &[
    "select",
    "insert",
    "update",
    "delete",
    "merge",
    "replace",
    "upsert",
    "drop",
    "truncate",
    "alter",
    "create",
    "grant",
    "revoke",
    "deny",
    "rename",
    "copy",
    "call",
    "execute",
    "exec",
    "set",
    "load",
    "attach",
    "detach",
    "vacuum",
    "analyze",
    "pragma",
    "comment",
    "lock",
    "unload",
    "install",
    "use",
    "show",
    "explain",
    "describe",
    "prepare",
    "deallocate",
    "kill",
    "flush",
    "reset",
    "discard",
    "listen",
    "notify",
    "unlisten",
    "cache",
    "uncache",
    "optimize",
    "export",
    "declare",
    "fetch",
    "close",
    "open",
    "begin",
    "start",
    "commit",
    "rollback",
    "savepoint",
    "release",
    "msck",
    "put",
    "remove",
    "list",
];

const DDL_VERBS: &[&str] = &[
    "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "GRANT", "REVOKE", "DENY", "COMMENT",
];

/// Object words that complete a kind (`DROP` + `TABLE`).
const OBJECT_WORDS: &[&str] = &[
    "TABLE",
    "VIEW",
    "INDEX",
    "SCHEMA",
    "DATABASE",
    "FUNCTION",
    "PROCEDURE",
    "TRIGGER",
    "SEQUENCE",
    "ROLE",
    "USER",
    "TYPE",
    "EXTENSION",
    "DOMAIN",
    "POLICY",
    "MACRO",
    "SECRET",
    "SERVER",
    "STAGE",
    "DATA",
    "TABLES",
    "COLLATION",
    "OPERATOR",
    "CONNECTOR",
];

/// A fresh parser dialect per parse: sqlparser's `dyn Dialect` is not `Sync`, and the governor
/// is shared by every worker thread, so the analyzer keeps the choice, not the object (the
/// dialects are unit structs; boxing one costs one small allocation per statement parsed).
fn dialect(d: SqlDialect) -> Box<dyn Dialect> {
    match d {
        SqlDialect::Generic => Box::new(GenericDialect {}),
        SqlDialect::Postgres => Box::new(PostgreSqlDialect {}),
        SqlDialect::Mysql => Box::new(MySqlDialect {}),
        SqlDialect::Sqlite => Box::new(SQLiteDialect {}),
    }
}

/// A compiled SQL analyzer. The preset is one with [`SqlCheck::preset`].
#[derive(Debug)]
pub(crate) struct SqlCheck {
    dialect: SqlDialect,
    policy: Option<SqlPolicy>,
    /// Upper-case kinds or verbs (`DROP`, `DROP TABLE`).
    deny_kinds: Vec<String>,
    deny_tables: Option<GlobSet>,
    /// Dotted patterns' last segments, to judge unqualified names against.
    deny_table_tails: Option<GlobSet>,
    /// Patterns without a schema, to judge qualified names' last part against.
    deny_table_bare: Option<GlobSet>,
    /// The preset's checks: DROP, TRUNCATE, ALTER, GRANT, REVOKE, unbounded DELETE/UPDATE.
    preset: bool,
}

/// A bounded writer: keeps the first bytes of a `Display` and stops the rest, so naming a
/// statement's kind never renders a whole statement.
struct Head {
    buf: String,
    cap: usize,
}

impl std::fmt::Write for Head {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.cap.saturating_sub(self.buf.len());
        if s.len() >= room {
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.buf.push_str(&s[..end]);
            return Err(std::fmt::Error);
        }
        self.buf.push_str(s);
        Ok(())
    }
}

/// The statement's kind: its verb, plus the object word for DDL (`DROP TABLE`).
pub(crate) fn kind(stmt: &Statement) -> String {
    match stmt {
        Statement::Query(_) => return "SELECT".into(),
        Statement::Insert(_) => return "INSERT".into(),
        Statement::Update(_) => return "UPDATE".into(),
        Statement::Delete(_) => return "DELETE".into(),
        Statement::Merge(_) => return "MERGE".into(),
        _ => {}
    }
    let mut head = Head {
        buf: String::new(),
        cap: 96,
    };
    let _ = write!(head, "{stmt}");
    let mut words = head
        .buf
        .split(|c: char| !c.is_ascii_alphabetic() && c != '_')
        .filter(|w| !w.is_empty());
    let Some(verb) = words.next() else {
        return "UNKNOWN".into();
    };
    let verb = verb.to_ascii_uppercase();
    if DDL_VERBS.contains(&verb.as_str()) || verb == "LOAD" || verb == "SHOW" {
        for w in words.take(5) {
            let w = w.to_ascii_uppercase();
            if OBJECT_WORDS.contains(&w.as_str()) {
                return format!("{verb} {w}");
            }
        }
    }
    verb
}

fn verb_of(kind: &str) -> &str {
    kind.split(' ').next().unwrap_or(kind)
}

/// The dotted, lower-case name of a relation (`public.users`); quotes are dropped.
fn relation_name(name: &ObjectName) -> String {
    let mut out = String::new();
    for (i, part) in name.0.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match part.as_ident() {
            Some(id) => out.push_str(&id.value.to_lowercase()),
            None => out.push('?'),
        }
    }
    out
}

/// Judges every statement the visitor reaches — the top one and those nested in it (a
/// `DELETE … RETURNING` in a CTE or subquery, the statement under `EXPLAIN`) — and notes
/// `SELECT … INTO`. The visitor's references do not outlive a callback, so it judges in place.
struct Judge<'c> {
    check: &'c SqlCheck,
    found: Option<Violation>,
}

impl Visitor for Judge<'_> {
    type Break = ();
    fn pre_visit_statement(&mut self, stmt: &Statement) -> ControlFlow<()> {
        match self.check.check_one(stmt) {
            Some(v) => {
                self.found = Some(v);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    }
    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if self.check.policy == Some(SqlPolicy::ReadOnly) && select.into.is_some() {
            self.found = Some(Violation::new("SELECT … INTO", "not read-only SQL"));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

impl SqlCheck {
    /// The preset's analyzer: generic dialect, the destructive-statement checks.
    pub(crate) fn preset() -> SqlCheck {
        SqlCheck {
            dialect: SqlDialect::Generic,
            policy: None,
            deny_kinds: Vec::new(),
            deny_tables: None,
            deny_table_tails: None,
            deny_table_bare: None,
            preset: true,
        }
    }

    /// Compiles a user's analyzer. Errors name the sub-field (`deny_tables[1]`).
    pub(crate) fn compile(
        d: SqlDialect,
        policy: Option<SqlPolicy>,
        deny_statements: &[String],
        deny_tables: &[String],
    ) -> Result<SqlCheck, String> {
        let mut deny_kinds = Vec::new();
        for (i, s) in deny_statements.iter().enumerate() {
            let norm = s
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_ascii_uppercase();
            let verb = verb_of(&norm).to_ascii_lowercase();
            if !KNOWN_VERBS.contains(&verb.as_str()) {
                return Err(format!(
                    "deny_statements[{i}]: `{s}` is not a statement kind; use a verb such as delete, update, insert, merge, drop, truncate, alter, create, grant, revoke, copy, or a verb and object such as `drop table`"
                ));
            }
            deny_kinds.push(norm);
        }
        let mut full = GlobSetBuilder::new();
        let mut tails = GlobSetBuilder::new();
        let mut bare = GlobSetBuilder::new();
        for (i, t) in deny_tables.iter().enumerate() {
            let glob = |p: &str| {
                GlobBuilder::new(&p.to_lowercase())
                    .case_insensitive(true)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| {
                        format!("deny_tables[{i}]: `{t}` is not a glob ({e}); use `users`, `audit.*` or `*.secrets`")
                    })
            };
            if t.trim().is_empty() {
                return Err(format!("deny_tables[{i}]: empty table name"));
            }
            full.add(glob(t)?);
            if !t.contains('.') {
                bare.add(glob(t)?);
            }
            // Unqualified references could be in any schema of the search path, so they are
            // judged against the pattern's last part (fail closed) — unless that part is all
            // wildcards (`audit.*`), which would deny every unqualified table.
            let tail = t.rsplit('.').next().unwrap_or(t);
            if tail.chars().any(|c| !matches!(c, '*' | '?')) {
                tails.add(glob(tail)?);
            }
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| format!("deny_tables: {e}"));
        Ok(SqlCheck {
            dialect: d,
            policy,
            deny_kinds,
            deny_tables: if deny_tables.is_empty() {
                None
            } else {
                Some(build(full)?)
            },
            deny_table_tails: if deny_tables.is_empty() {
                None
            } else {
                Some(build(tails)?)
            },
            deny_table_bare: if deny_tables.is_empty() {
                None
            } else {
                Some(build(bare)?)
            },
            preset: false,
        })
    }

    /// The first problem with `sql`, if any.
    pub(crate) fn check(&self, sql: &str) -> Option<Violation> {
        if sql.len() > MAX_SQL {
            return Some(Violation::unparsable(
                "SQL too large to analyze",
                "SQL could not be parsed",
            ));
        }
        let stmts = match Parser::new(&*dialect(self.dialect))
            .with_recursion_limit(RECURSION_LIMIT)
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_statements())
        {
            Ok(s) => s,
            Err(_) => {
                return Some(Violation::unparsable(
                    "SQL that could not be parsed",
                    "unparsable SQL",
                ));
            }
        };
        for top in &stmts {
            let mut judge = Judge {
                check: self,
                found: None,
            };
            let _ = top.visit(&mut judge);
            if judge.found.is_some() {
                return judge.found;
            }
            if let Some(v) = self.check_tables(top) {
                return Some(v);
            }
        }
        None
    }

    fn check_one(&self, stmt: &Statement) -> Option<Violation> {
        let kind = kind(stmt);
        let verb = verb_of(&kind);
        if self.preset {
            if matches!(verb, "DROP" | "TRUNCATE" | "ALTER" | "GRANT" | "REVOKE") {
                return Some(Violation::new(with_target(&kind, stmt), "destructive SQL"));
            }
            let unbounded = match stmt {
                Statement::Delete(d) => d.selection.is_none(),
                Statement::Update(u) => u.selection.is_none(),
                _ => false,
            };
            if unbounded {
                return Some(Violation::new(
                    format!("{} without WHERE", with_target(&kind, stmt)),
                    "affects every row",
                ));
            }
        }
        match self.policy {
            Some(SqlPolicy::ReadOnly) if !read_only(stmt) => {
                return Some(Violation::new(
                    with_target(&kind, stmt),
                    "not read-only SQL",
                ));
            }
            Some(SqlPolicy::NoDdl) if DDL_VERBS.contains(&verb) => {
                return Some(Violation::new(
                    with_target(&kind, stmt),
                    "DDL is not allowed",
                ));
            }
            _ => {}
        }
        for k in &self.deny_kinds {
            let hit = kind == *k
                || (kind.starts_with(k.as_str()) && kind.as_bytes().get(k.len()) == Some(&b' '));
            if hit {
                return Some(Violation::new(
                    with_target(&kind, stmt),
                    format!("{} statements are denied", k),
                ));
            }
        }
        None
    }

    fn check_tables(&self, stmt: &Statement) -> Option<Violation> {
        let full = self.deny_tables.as_ref()?;
        let tails = self.deny_table_tails.as_ref()?;
        let bare = self.deny_table_bare.as_ref()?;
        let mut hit = None;
        let _ = sqlparser::ast::visit_relations(stmt, |rel| {
            let name = relation_name(rel);
            // `users` denies `users` in any schema; `audit.*` denies what is named in `audit`
            // and, since the search path is unknown, unqualified names matching its last part.
            let denied = if let Some((_, last)) = name.rsplit_once('.') {
                full.is_match(&name) || bare.is_match(last)
            } else {
                full.is_match(&name) || tails.is_match(&name)
            };
            if denied {
                hit = Some(name);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        hit.map(|t| Violation::new(format!("{} on table {t}", kind(stmt)), "denied table"))
    }
}

/// `DROP TABLE users`, `DELETE FROM t` → kind plus the first table it names, for reasons.
fn with_target(kind: &str, stmt: &Statement) -> String {
    let mut first = None;
    let _ = sqlparser::ast::visit_relations(stmt, |rel| {
        first = Some(relation_name(rel));
        ControlFlow::Break(())
    });
    if first.is_none()
        && let Statement::Drop { names, .. } = stmt
    {
        first = names.first().map(relation_name);
    }
    match first {
        Some(t) if matches!(kind, "DELETE" | "UPDATE" | "INSERT" | "MERGE") => {
            format!("{kind} on {t}")
        }
        Some(t) => format!("{kind} {t}"),
        None => kind.to_owned(),
    }
}

/// Whether a single statement (its nested ones are judged separately) only reads.
fn read_only(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowFunctions { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowVariables { .. }
            | Statement::ShowCreate { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowProcessList { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowCharset { .. }
            | Statement::ShowObjects { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowCollation { .. }
            | Statement::Use { .. }
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(c: &SqlCheck, sql: &str) -> Option<String> {
        c.check(sql).map(|v| format!("{} | {}", v.what, v.why))
    }

    #[test]
    fn preset_denies_destructive_statements() {
        let c = SqlCheck::preset();
        let cases: &[(&str, Option<&str>)] = &[
            (
                "DROP TABLE users",
                Some("DROP TABLE users | destructive SQL"),
            ),
            (
                "drop table if exists Public.Users cascade",
                Some("DROP TABLE public.users | destructive SQL"),
            ),
            ("SELECT * FROM users WHERE id=1", None),
            (
                "SELECT 1; DELETE FROM t",
                Some("DELETE on t without WHERE | affects every row"),
            ),
            ("DELETE FROM t WHERE id=3", None),
            (
                "UPDATE t SET a=1",
                Some("UPDATE on t without WHERE | affects every row"),
            ),
            ("UPDATE t SET a=1 WHERE id = 2", None),
            (
                "TRUNCATE TABLE logs",
                Some("TRUNCATE TABLE logs | destructive SQL"),
            ),
            (
                "ALTER TABLE t ADD COLUMN c INT",
                Some("ALTER TABLE t | destructive SQL"),
            ),
            ("GRANT ALL ON t TO bob", Some("GRANT | destructive SQL")),
            (
                "REVOKE SELECT ON t FROM bob",
                Some("REVOKE | destructive SQL"),
            ),
            ("INSERT INTO t (a) VALUES (1)", None),
            (
                "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                Some("DELETE on t without WHERE | affects every row"),
            ),
            (
                "SELEC * FROM t",
                Some("SQL that could not be parsed | unparsable SQL"),
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(why(&c, sql).as_deref(), *want, "{sql}");
        }
        let v = c.check("SELECT 'hunter2' FROM").unwrap();
        assert!(v.unparsable);
        assert!(!v.what.contains("hunter2") && !v.why.contains("hunter2"));
    }

    #[test]
    fn read_only_catches_hidden_writes() {
        let c =
            SqlCheck::compile(SqlDialect::Postgres, Some(SqlPolicy::ReadOnly), &[], &[]).unwrap();
        for ok in [
            "SELECT * FROM t",
            "EXPLAIN SELECT 1",
            "SHOW TABLES",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "BEGIN; SELECT 1; COMMIT",
        ] {
            assert_eq!(why(&c, ok), None, "{ok}");
        }
        let bad: &[(&str, &str)] = &[
            (
                "INSERT INTO t VALUES (1)",
                "INSERT on t | not read-only SQL",
            ),
            (
                "WITH d AS (DELETE FROM t WHERE a = 1 RETURNING *) SELECT * FROM d",
                "DELETE on t | not read-only SQL",
            ),
            (
                "SELECT * INTO new_table FROM t",
                "SELECT … INTO | not read-only SQL",
            ),
            (
                "EXPLAIN ANALYZE DELETE FROM t WHERE id = 1",
                "DELETE on t | not read-only SQL",
            ),
            (
                "SELECT 1; UPDATE t SET a = 1 WHERE b = 2",
                "UPDATE on t | not read-only SQL",
            ),
            (
                "CREATE TABLE x (a int)",
                "CREATE TABLE x | not read-only SQL",
            ),
        ];
        for (sql, want) in bad {
            assert_eq!(why(&c, sql).as_deref(), Some(*want), "{sql}");
        }
    }

    #[test]
    fn no_ddl_and_statement_kinds() {
        let c = SqlCheck::compile(SqlDialect::Generic, Some(SqlPolicy::NoDdl), &[], &[]).unwrap();
        assert_eq!(why(&c, "DELETE FROM t"), None);
        assert_eq!(
            why(&c, "CREATE INDEX i ON t (a)").as_deref(),
            Some("CREATE INDEX t | DDL is not allowed")
        );
        let k = SqlCheck::compile(
            SqlDialect::Generic,
            None,
            &["delete".into(), "drop table".into()],
            &[],
        )
        .unwrap();
        assert_eq!(
            why(&k, "DELETE FROM t WHERE a = 1").as_deref(),
            Some("DELETE on t | DELETE statements are denied")
        );
        assert_eq!(
            why(&k, "DROP TABLE t").as_deref(),
            Some("DROP TABLE t | DROP TABLE statements are denied")
        );
        assert_eq!(why(&k, "DROP VIEW v"), None);
        assert!(SqlCheck::compile(SqlDialect::Generic, None, &["obliterate".into()], &[]).is_err());
    }

    #[test]
    fn deny_tables_match_qualified_and_unqualified_names() {
        let c = SqlCheck::compile(
            SqlDialect::Postgres,
            None,
            &[],
            &["billing.*".into(), "Secrets".into(), "hr.salaries".into()],
        )
        .unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            (
                "SELECT * FROM billing.invoices",
                Some("SELECT on table billing.invoices | denied table"),
            ),
            (
                "SELECT * FROM BILLING.\"Invoices\"",
                Some("SELECT on table billing.invoices | denied table"),
            ),
            (
                "SELECT * FROM public.secrets",
                Some("SELECT on table public.secrets | denied table"),
            ),
            (
                "SELECT a FROM users JOIN secrets ON true",
                Some("SELECT on table secrets | denied table"),
            ),
            (
                "SELECT * FROM (SELECT * FROM x.secrets) s",
                Some("SELECT on table x.secrets | denied table"),
            ),
            ("SELECT * FROM public.users", None),
            (
                "SELECT * FROM salaries",
                Some("SELECT on table salaries | denied table"),
            ),
            ("SELECT * FROM public.salaries", None),
            ("SELECT * FROM billingx.invoices", None),
            ("SELECT * FROM invoices", None),
        ];
        for (sql, want) in cases {
            assert_eq!(why(&c, sql).as_deref(), *want, "{sql}");
        }
    }

    #[test]
    fn huge_sql_is_unparsable() {
        let sql = format!("SELECT {}", "1,".repeat(MAX_SQL));
        assert!(SqlCheck::preset().check(&sql).unwrap().unparsable);
        let deep = format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500));
        assert!(SqlCheck::preset().check(&deep).unwrap().unparsable);
    }
}
