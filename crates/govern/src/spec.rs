//! What a user configures: [`GovernSpec`] (`[tools]`) and its [`RuleSpec`]s
//! (`[[tools.rules]]`), as plain owned values, and the [`SpecError`] compilation reports.
//!
//! This module owns the shape of the configuration and its defaults. It must not validate
//! (that is [`crate::Governor::compile`], which knows every field's meaning) nor know TOML (the
//! config layer maps TOML keys onto these fields one to one; `docs/tools.md` gives the
//! spelling).

use serde_json::Value;

use crate::{Action, OnDeny};

/// The whole `[tools]` section.
#[derive(Clone, Debug)]
pub struct GovernSpec {
    /// `[[tools.rules]]`, in order; the first that matches decides.
    pub rules: Vec<RuleSpec>,
    /// Whether the built-in preset runs after the rules (`preset`, default true).
    pub preset: bool,
    /// What happens when nothing matched (`default`, default allow).
    pub default_action: Action,
    /// What happens to SQL or shell text that cannot be parsed, and to arguments of a
    /// preset-governed tool that were not valid JSON (`on_unparsable`, default deny).
    pub on_unparsable: Action,
}

impl Default for GovernSpec {
    fn default() -> GovernSpec {
        GovernSpec {
            rules: Vec::new(),
            preset: true,
            default_action: Action::Allow,
            on_unparsable: Action::Deny,
        }
    }
}

/// One `[[tools.rules]]` entry.
///
/// A rule matches a call when its tool and subject globs match, every `when` condition holds,
/// and — if it has analyzers — at least one analyzer reports a violation. List fields are
/// OR within the list and AND across fields; an empty list matches anything.
#[derive(Clone, Debug, Default)]
pub struct RuleSpec {
    /// Unique, non-empty name; verdicts cite it. `default` and names starting with `preset:`
    /// are reserved.
    pub name: String,
    /// Globs on the tool name (`*`, `?`, `[ab]`, `{a,b}`); empty matches every tool.
    pub tool: Vec<String>,
    /// Globs on the tenant; a call without a tenant does not match a non-empty list.
    pub tenant: Vec<String>,
    /// Globs on the agent.
    pub agent: Vec<String>,
    /// Globs on the virtual key id.
    pub key: Vec<String>,
    /// What the rule decides when it matches.
    pub action: Action,
    /// How a deny is carried out.
    pub on_deny: OnDeny,
    /// Remove the tool's definition from requests of matching subjects. Only with `deny` or
    /// `approve`, and without conditions or analyzers (a definition has no arguments).
    pub strip: bool,
    /// Conditions on the arguments; all must hold.
    pub when: Vec<ArgCondition>,
    /// SQL analyzer.
    pub sql: Option<SqlSpec>,
    /// Shell analyzer.
    pub shell: Option<ShellSpec>,
    /// Path analyzer.
    pub path: Option<PathSpec>,
    /// URL analyzer.
    pub url: Option<UrlSpec>,
}

impl Default for Action {
    /// `deny`: a rule that forgets its action must not open anything.
    fn default() -> Action {
        Action::Deny
    }
}

/// A condition on one value inside the arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct ArgCondition {
    /// JSON path into the arguments: `$` (the whole value), `$.table`, `$.options.limit`,
    /// `$.items[0]`, `$['odd key']`.
    pub path: String,
    /// What the value must satisfy.
    pub op: CondOp,
}

/// The test an [`ArgCondition`] applies. A missing value fails every test except
/// `Exists(false)`.
#[derive(Clone, Debug, PartialEq)]
pub enum CondOp {
    /// Equal JSON values (numbers compare by value: `1` equals `1.0`).
    Equals(Value),
    /// A glob on a string (numbers and booleans are matched as their JSON text).
    Glob(String),
    /// A regular expression that must match somewhere in the string (anchor it with `^…$`);
    /// linear-time (`regex` crate).
    Regex(String),
    /// A number within inclusive bounds; at least one bound.
    Range {
        /// Lower bound, inclusive.
        min: Option<f64>,
        /// Upper bound, inclusive.
        max: Option<f64>,
    },
    /// `true`: the path is present (a JSON `null` counts); `false`: it is absent.
    Exists(bool),
}

/// SQL dialect the analyzer parses with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqlDialect {
    /// Permissive ANSI-ish SQL (`generic`).
    #[default]
    Generic,
    /// PostgreSQL (`postgres`).
    Postgres,
    /// MySQL / MariaDB (`mysql`).
    Mysql,
    /// SQLite (`sqlite`).
    Sqlite,
}

impl std::str::FromStr for SqlDialect {
    type Err = String;
    fn from_str(s: &str) -> Result<SqlDialect, String> {
        match s {
            "generic" => Ok(SqlDialect::Generic),
            "postgres" | "postgresql" => Ok(SqlDialect::Postgres),
            "mysql" | "mariadb" => Ok(SqlDialect::Mysql),
            "sqlite" => Ok(SqlDialect::Sqlite),
            other => Err(format!(
                "`{other}` is not a SQL dialect; use generic, postgres, mysql or sqlite"
            )),
        }
    }
}

/// A whole-statement policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlPolicy {
    /// Only reads: SELECT (without hidden writes), EXPLAIN, SHOW, DESCRIBE, USE, transaction
    /// control (`read_only`).
    ReadOnly,
    /// No schema or privilege changes: CREATE, ALTER, DROP, TRUNCATE, RENAME, GRANT, REVOKE
    /// (`no_ddl`).
    NoDdl,
}

impl std::str::FromStr for SqlPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<SqlPolicy, String> {
        match s {
            "read_only" => Ok(SqlPolicy::ReadOnly),
            "no_ddl" => Ok(SqlPolicy::NoDdl),
            other => Err(format!(
                "`{other}` is not a SQL policy; use read_only or no_ddl"
            )),
        }
    }
}

/// The SQL analyzer (`sql = {…}`). It reports a violation for the first statement (nested
/// ones included) that breaks the policy, has a denied kind, or touches a denied table.
#[derive(Clone, Debug, Default)]
pub struct SqlSpec {
    /// The argument holding the SQL: a name (`query`) or a JSON path (`$.params.sql`).
    /// Default: every one of `sql`, `query`, `statement`, `command`, `cmd`, `script` present.
    pub arg: Option<String>,
    /// Parser dialect.
    pub dialect: SqlDialect,
    /// Whole-statement policy.
    pub policy: Option<SqlPolicy>,
    /// Statement kinds to deny: a verb (`delete`, `drop`, `create` …) or a verb and object
    /// (`drop table`, `create index`), case-insensitive.
    pub deny_statements: Vec<String>,
    /// Globs on referenced tables, case-insensitive: `users`, `audit.*`, `*.secrets`.
    pub deny_tables: Vec<String>,
    /// Action for SQL that cannot be parsed (default: the governor's `on_unparsable`).
    pub unparsable: Option<Action>,
}

/// The shell analyzer (`shell = {…}`).
#[derive(Clone, Debug)]
pub struct ShellSpec {
    /// The arguments holding command lines (string) or argv (array of strings); names or JSON
    /// paths. Default: `command`, `cmd`, `script`, `commands`.
    pub args: Vec<String>,
    /// If non-empty, every program run (wrappers like `env` and `sudo` included) must be one
    /// of these basenames.
    pub allow_programs: Vec<String>,
    /// Programs (basenames) that are a violation anywhere in the command line.
    pub deny_programs: Vec<String>,
    /// Extra roots under which a recursive delete is fine (besides /tmp, /var/tmp, $TMPDIR);
    /// `.` allows relative targets inside the working directory.
    pub allow_recursive_delete: Vec<String>,
    /// Whether the built-in dangerous-pattern checks run (`builtin`, default true). Off, the
    /// analyzer only applies the program lists.
    pub builtin: bool,
}

impl Default for ShellSpec {
    fn default() -> ShellSpec {
        ShellSpec {
            args: Vec::new(),
            allow_programs: Vec::new(),
            deny_programs: Vec::new(),
            allow_recursive_delete: Vec::new(),
            builtin: true,
        }
    }
}

/// The path analyzer (`path = {…}`).
#[derive(Clone, Debug, Default)]
pub struct PathSpec {
    /// The arguments holding paths (string or array of strings). Default: `path`, `paths`,
    /// `file`, `files`, `file_path`, `filepath`, `filename`, `dir`, `directory`, `target`,
    /// `source`, `destination`.
    pub args: Vec<String>,
    /// If non-empty, every path must be under one of these (`.` = the working directory).
    pub allow_roots: Vec<String>,
    /// Paths under any of these are a violation.
    pub deny_roots: Vec<String>,
}

/// The URL analyzer (`url = {…}`).
#[derive(Clone, Debug)]
pub struct UrlSpec {
    /// The arguments holding URLs (string or array of strings). Default: `url`, `urls`,
    /// `uri`, `href`, `link`, `endpoint`.
    pub args: Vec<String>,
    /// If non-empty, the host must match one of these globs (`github.com`, `*.github.com`).
    pub allow_domains: Vec<String>,
    /// Hosts matching any of these globs are a violation.
    pub deny_domains: Vec<String>,
    /// Loopback, private, link-local, CGNAT, unique-local and metadata targets are a violation
    /// (default true).
    pub deny_private: bool,
}

impl Default for UrlSpec {
    fn default() -> UrlSpec {
        UrlSpec {
            args: Vec::new(),
            allow_domains: Vec::new(),
            deny_domains: Vec::new(),
            deny_private: true,
        }
    }
}

/// A configuration error: which rule (index in `[[tools.rules]]` and name), which field
/// (`sql.policy`, `when[1].regex` …), what is wrong and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rules[{index}].{field} (rule \"{rule}\"): {message}")]
pub struct SpecError {
    /// 0-based index of the rule in `[[tools.rules]]`.
    pub index: usize,
    /// The rule's name as written (may be empty when that is the error).
    pub rule: String,
    /// The offending field, dotted as in the config file.
    pub field: String,
    /// What is wrong and what is accepted.
    pub message: String,
}
