/*!
Warden's tool-call governance: whether one tool call a model asked for may reach the agent.

The gateway finds the tool calls in a model response (that is `warden-protocol`'s job) and hands
this crate each one as a [`ToolCall`] — the tool's name and its parsed JSON arguments — together
with the [`Subject`] it was made for. [`Governor::judge`] answers with a [`Verdict`]: allow, log,
deny or approve, the name of the rule that decided, and a short reason a person can act on.
[`Governor::offers`] says whether a tool definition should reach the model at all.

Everything here is computation: no I/O, no clock, no async runtime, no provider JSON. Rules are
validated once by [`Governor::compile`]; judging cannot fail and allocates little beyond the
analyzers' own parsing.

- [`GovernSpec`] / [`RuleSpec`] are what a user configures (`[tools]`, `[[tools.rules]]`); the
  config layer maps TOML onto them.
- Rules match on tool-name and subject globs, JSON-path conditions on the arguments
  ([`ArgCondition`]), and analyzers that understand what an argument *means*:
  - [`sql`]: SQL statements (`sqlparser`), per statement, with read-only / no-DDL policies,
    statement kinds and table globs;
  - [`shell`]: POSIX shell command lines, parsed by our own tokenizer into pipelines and
    simple commands, with the dangerous patterns agents are known to produce;
  - [`path`]: file paths, normalized lexically and compared to roots component-wise;
  - [`urls`]: URLs (WHATWG parsing) against domain lists and private/metadata addresses.
- A built-in preset ([`preset`]) applies the analyzers by naming convention (`execute_sql`'s
  `query`, `run_shell`'s `command` …) after the user's rules.

Reasons never quote argument values (they may hold secrets): they name the tool, the statement
kind, the table, the program, a path's root, a URL's host.

```
use serde_json::json;
use warden_govern::{Action, GovernSpec, Governor, Subject, ToolCall};

let governor = Governor::compile(GovernSpec::default())?;
let args = json!({"query": "DROP TABLE users"});
let verdict = governor.judge(
    &ToolCall { name: "execute_sql", arguments: &args },
    &Subject::default(),
);
assert_eq!(verdict.action, Action::Deny);
assert_eq!(&*verdict.rule, "preset:sql");
assert_eq!(
    verdict.reason,
    r#"rule "preset:sql" denies DROP TABLE users in tool "execute_sql" (destructive SQL)"#
);
# Ok::<(), warden_govern::SpecError>(())
```
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

mod governor;
mod jsonpath;
pub mod path;
pub mod preset;
pub mod shell;
mod spec;
pub mod sql;
pub mod urls;

pub use governor::Governor;
pub use spec::{
    ArgCondition, CondOp, GovernSpec, PathSpec, RuleSpec, ShellSpec, SpecError, SqlDialect,
    SqlPolicy, SqlSpec, UrlSpec,
};

/// One tool call the model asked for.
#[derive(Clone, Copy, Debug)]
pub struct ToolCall<'a> {
    /// The tool's name as the model wrote it.
    pub name: &'a str,
    /// The parsed JSON arguments (normally an object). When the model's argument string was
    /// not valid JSON, the gateway passes `Value::String(raw)`.
    pub arguments: &'a serde_json::Value,
}

/// Who the call is made for. A field that is `None` does not match a rule's non-empty list.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject<'a> {
    /// The tenant, if identified.
    pub tenant: Option<&'a str>,
    /// The agent, if identified.
    pub agent: Option<&'a str>,
    /// The virtual key id, if identified.
    pub key: Option<&'a str>,
}

/// What happens to a tool call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The call reaches the agent.
    Allow,
    /// The call reaches the agent and is marked for review in the ledger and logs.
    Log,
    /// The call does not reach the agent (see [`OnDeny`] for how).
    Deny,
    /// The call waits for a human decision.
    Approve,
}

impl Action {
    /// The name used in config: `allow`, `log`, `deny`, `approve`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Log => "log",
            Action::Deny => "deny",
            Action::Approve => "approve",
        }
    }

    /// The verb reasons use ("rule … denies …").
    fn verb(self) -> &'static str {
        match self {
            Action::Allow => "allows",
            Action::Log => "logs",
            Action::Deny => "denies",
            Action::Approve => "requires approval for",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Action, String> {
        match s {
            "allow" => Ok(Action::Allow),
            "log" => Ok(Action::Log),
            "deny" => Ok(Action::Deny),
            "approve" => Ok(Action::Approve),
            other => Err(format!(
                "`{other}` is not a tool action; use allow, log, deny or approve"
            )),
        }
    }
}

/// How a denied call is taken out of the model's response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnDeny {
    /// The whole response is replaced by an error in the provider's shape.
    #[default]
    Error,
    /// The call is removed and the assistant's text explains why.
    Replace,
}

impl OnDeny {
    /// The name used in config: `error`, `replace`.
    pub fn name(self) -> &'static str {
        match self {
            OnDeny::Error => "error",
            OnDeny::Replace => "replace",
        }
    }
}

impl fmt::Display for OnDeny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OnDeny {
    type Err = String;

    fn from_str(s: &str) -> Result<OnDeny, String> {
        match s {
            "error" => Ok(OnDeny::Error),
            "replace" => Ok(OnDeny::Replace),
            other => Err(format!(
                "`{other}` is not an on_deny mode; use error or replace"
            )),
        }
    }
}

/// The judgement of one tool call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What happens to the call.
    pub action: Action,
    /// The deciding rule: a user rule's name, `preset:sql|shell|path|url`, or `default`.
    pub rule: Arc<str>,
    /// Why, in words for the agent's operator and the ledger. Never quotes argument values.
    pub reason: String,
    /// How a deny is carried out (the rule's setting; `error` for the preset and default).
    pub on_deny: OnDeny,
}

/// What an analyzer found wrong with one argument. `what` names the offending thing (a
/// statement kind and table, a program, a path root, a host) and `why` the check it failed;
/// neither quotes the argument's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The offending thing, e.g. `DROP TABLE users`, `rm -rf of "/"`.
    pub what: String,
    /// The check, e.g. `destructive SQL`.
    pub why: String,
    /// The argument could not be parsed at all (the unparsable action applies, not the rule's).
    pub unparsable: bool,
}

impl Violation {
    pub(crate) fn new(what: impl Into<String>, why: impl Into<String>) -> Violation {
        Violation {
            what: what.into(),
            why: why.into(),
            unparsable: false,
        }
    }

    pub(crate) fn unparsable(what: impl Into<String>, why: impl Into<String>) -> Violation {
        Violation {
            what: what.into(),
            why: why.into(),
            unparsable: true,
        }
    }
}
