//! The compiled rule set: [`Governor::compile`] validates a [`GovernSpec`] once, and
//! [`Governor::judge`] / [`Governor::offers`] evaluate it per call, first match winning.
//!
//! This module owns rule matching (tool and subject globs, argument conditions, which analyzer
//! reads which argument), the order user rules → preset → default, and the wording of
//! verdicts. It must not know what SQL, shell, paths or URLs mean (the analyzer modules do), and
//! it must never put an argument's value into a reason.

use std::sync::Arc;

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::jsonpath::JsonPath;
use crate::path::PathCheck;
use crate::preset::{self, Kinds};
use crate::shell::ShellCheck;
use crate::spec::{ArgCondition, CondOp, GovernSpec, RuleSpec};
use crate::sql::SqlCheck;
use crate::urls::UrlCheck;
use crate::{Action, OnDeny, SpecError, Subject, ToolCall, Verdict, Violation};

/// Longest tool name quoted in a reason.
const MAX_NAME_IN_REASON: usize = 64;

/// A compiled, validated rule set. Cheap to share (`Arc` it); judging takes `&self`.
#[derive(Debug)]
pub struct Governor {
    rules: Vec<Rule>,
    preset: Option<Preset>,
    default_action: Action,
    on_unparsable: Action,
    default_name: Arc<str>,
}

#[derive(Debug)]
struct Preset {
    sql: SqlCheck,
    shell: ShellCheck,
    path: PathCheck,
    url: UrlCheck,
    names: [Arc<str>; 4],
}

#[derive(Debug)]
struct Rule {
    name: Arc<str>,
    tool: Option<GlobSet>,
    tenant: Option<GlobSet>,
    agent: Option<GlobSet>,
    key: Option<GlobSet>,
    action: Action,
    on_deny: OnDeny,
    strip: bool,
    when: Vec<Cond>,
    analyzers: Vec<Analyzer>,
    summary: String,
}

#[derive(Debug)]
struct Cond {
    path: JsonPath,
    path_text: String,
    test: Test,
}

#[derive(Debug)]
enum Test {
    Equals(Value),
    Glob(GlobMatcher),
    Regex(Regex),
    Range(Option<f64>, Option<f64>),
    Exists(bool),
}

#[derive(Debug)]
struct Analyzer {
    args: Vec<JsonPath>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Sql(SqlCheck, Option<Action>),
    Shell(ShellCheck),
    Path(PathCheck),
    Url(UrlCheck),
}

fn paths(list: &[&str]) -> Vec<JsonPath> {
    list.iter().map(|n| JsonPath::key(n)).collect()
}

/// Field-scoped error builder for one rule.
struct Ctx<'a> {
    index: usize,
    name: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            index: self.index,
            rule: self.name.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// An analyzer's `"sub.field: message"` error under `prefix`.
    fn sub(&self, prefix: &str, e: String) -> SpecError {
        match e.split_once(": ") {
            Some((f, m)) if !f.contains(' ') => self.err(format!("{prefix}.{f}"), m),
            _ => self.err(prefix, e),
        }
    }
}

fn globset(ctx: &Ctx, field: &str, list: &[String]) -> Result<Option<GlobSet>, SpecError> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for (i, g) in list.iter().enumerate() {
        let glob = GlobBuilder::new(g)
            .literal_separator(false)
            .build()
            .map_err(|e| {
                ctx.err(
                    format!("{field}[{i}]"),
                    format!("`{g}` is not a glob ({e}); use `*`, `?`, `[abc]` or `{{a,b}}`"),
                )
            })?;
        b.add(glob);
    }
    b.build()
        .map(Some)
        .map_err(|e| ctx.err(field, e.to_string()))
}

fn arg_paths(
    ctx: &Ctx,
    field: &str,
    given: &[String],
    default: &[&str],
) -> Result<Vec<JsonPath>, SpecError> {
    if given.is_empty() {
        return Ok(paths(default));
    }
    given
        .iter()
        .enumerate()
        .map(|(i, a)| JsonPath::parse(a).map_err(|m| ctx.err(format!("{field}[{i}]"), m)))
        .collect()
}

fn compile_cond(ctx: &Ctx, i: usize, c: &ArgCondition) -> Result<Cond, SpecError> {
    let path = JsonPath::parse(&c.path).map_err(|m| ctx.err(format!("when[{i}].path"), m))?;
    let test = match &c.op {
        CondOp::Equals(v) => Test::Equals(v.clone()),
        CondOp::Glob(g) => Test::Glob(
            Glob::new(g)
                .map_err(|e| {
                    ctx.err(
                        format!("when[{i}].glob"),
                        format!("`{g}` is not a glob ({e}); use `*`, `?`, `[abc]` or `{{a,b}}`"),
                    )
                })?
                .compile_matcher(),
        ),
        CondOp::Regex(r) => Test::Regex(
            RegexBuilder::new(r)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    ctx.err(
                        format!("when[{i}].regex"),
                        format!("not a valid regular expression (Rust `regex` syntax, no look-around or backreferences): {e}"),
                    )
                })?,
        ),
        CondOp::Range { min, max } => {
            let field = format!("when[{i}].{}", if min.is_some() { "min" } else { "max" });
            if min.is_none() && max.is_none() {
                return Err(ctx.err(field, "a range needs `min`, `max` or both"));
            }
            if min.is_some_and(|v| !v.is_finite()) || max.is_some_and(|v| !v.is_finite()) {
                return Err(ctx.err(field, "range bounds must be finite numbers"));
            }
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return Err(ctx.err(
                    format!("when[{i}].min"),
                    format!("min {lo} is greater than max {hi}; the range can never hold"),
                ));
            }
            Test::Range(*min, *max)
        }
        CondOp::Exists(b) => Test::Exists(*b),
    };
    Ok(Cond {
        path,
        path_text: c.path.clone(),
        test,
    })
}

fn summary(spec: &RuleSpec) -> String {
    let mut s = format!("rule \"{}\": {}", spec.name, spec.action);
    let list = |s: &mut String, k: &str, v: &[String]| {
        if !v.is_empty() {
            s.push_str(&format!(" {k}=[{}]", v.join(", ")));
        }
    };
    list(&mut s, "tool", &spec.tool);
    list(&mut s, "tenant", &spec.tenant);
    list(&mut s, "agent", &spec.agent);
    list(&mut s, "key", &spec.key);
    for c in &spec.when {
        let op = match &c.op {
            CondOp::Equals(v) => format!("equals {v}"),
            CondOp::Glob(g) => format!("glob {g:?}"),
            CondOp::Regex(r) => format!("regex {r:?}"),
            CondOp::Range { min, max } => format!(
                "in [{}, {}]",
                min.map_or("-inf".into(), |v| v.to_string()),
                max.map_or("inf".into(), |v| v.to_string())
            ),
            CondOp::Exists(b) => format!("exists={b}"),
        };
        s.push_str(&format!(" when {} {op}", c.path));
    }
    if let Some(q) = &spec.sql {
        s.push_str(" sql{");
        let mut parts = vec![format!("dialect={:?}", q.dialect).to_lowercase()];
        if let Some(p) = q.policy {
            parts.push(format!(
                "policy={}",
                match p {
                    crate::SqlPolicy::ReadOnly => "read_only",
                    crate::SqlPolicy::NoDdl => "no_ddl",
                }
            ));
        }
        if !q.deny_statements.is_empty() {
            parts.push(format!(
                "deny_statements=[{}]",
                q.deny_statements.join(", ")
            ));
        }
        if !q.deny_tables.is_empty() {
            parts.push(format!("deny_tables=[{}]", q.deny_tables.join(", ")));
        }
        s.push_str(&parts.join(" "));
        s.push('}');
    }
    if let Some(sh) = &spec.shell {
        s.push_str(&format!(
            " shell{{builtin={}{}{}{}}}",
            sh.builtin,
            if sh.allow_programs.is_empty() {
                String::new()
            } else {
                format!(" allow_programs=[{}]", sh.allow_programs.join(", "))
            },
            if sh.deny_programs.is_empty() {
                String::new()
            } else {
                format!(" deny_programs=[{}]", sh.deny_programs.join(", "))
            },
            if sh.allow_recursive_delete.is_empty() {
                String::new()
            } else {
                format!(
                    " allow_recursive_delete=[{}]",
                    sh.allow_recursive_delete.join(", ")
                )
            },
        ));
    }
    if let Some(p) = &spec.path {
        s.push_str(&format!(
            " path{{allow_roots=[{}] deny_roots=[{}]}}",
            p.allow_roots.join(", "),
            p.deny_roots.join(", ")
        ));
    }
    if let Some(u) = &spec.url {
        s.push_str(&format!(
            " url{{allow_domains=[{}] deny_domains=[{}] deny_private={}}}",
            u.allow_domains.join(", "),
            u.deny_domains.join(", "),
            u.deny_private
        ));
    }
    if spec.strip {
        s.push_str(" strip");
    }
    if spec.action == Action::Deny {
        s.push_str(&format!(" on_deny={}", spec.on_deny));
    }
    s
}

impl Rule {
    fn compile(index: usize, spec: RuleSpec) -> Result<Rule, SpecError> {
        let ctx = Ctx {
            index,
            name: &spec.name,
        };
        if spec.name.trim().is_empty() {
            return Err(ctx.err("name", "every rule needs a non-empty name"));
        }
        if spec.name == "default" || spec.name.starts_with("preset:") {
            return Err(ctx.err(
                "name",
                "`default` and names starting with `preset:` are reserved for built-in verdicts; choose another name",
            ));
        }
        let has_analyzers =
            spec.sql.is_some() || spec.shell.is_some() || spec.path.is_some() || spec.url.is_some();
        if spec.strip {
            if !spec.when.is_empty() || has_analyzers {
                return Err(ctx.err(
                    "strip",
                    "a stripped tool definition has no arguments, so `strip = true` cannot be combined with `when`, `sql`, `shell`, `path` or `url`; split it into two rules",
                ));
            }
            if matches!(spec.action, Action::Allow | Action::Log) {
                return Err(ctx.err(
                    "strip",
                    format!("`strip = true` hides the tool, so a call to it should not be let through with `{}`; use deny or approve", spec.action),
                ));
            }
        }
        if has_analyzers && spec.action == Action::Allow {
            return Err(ctx.err(
                "action",
                "a rule with analyzers matches only when they find a violation, so `allow` would let exactly the violations through; use deny, approve or log (or drop the analyzer to allow the tool)",
            ));
        }
        let mut analyzers = Vec::new();
        if let Some(q) = &spec.sql {
            let args = match &q.arg {
                Some(a) => vec![JsonPath::parse(a).map_err(|m| ctx.err("sql.arg", m))?],
                None => paths(&[preset::SQL_ARGS, preset::SQL_EXTRA_ARGS].concat()),
            };
            let check = SqlCheck::compile(q.dialect, q.policy, &q.deny_statements, &q.deny_tables)
                .map_err(|e| ctx.sub("sql", e))?;
            if q.policy.is_none() && q.deny_statements.is_empty() && q.deny_tables.is_empty() {
                return Err(ctx.err(
                    "sql",
                    "the SQL analyzer has nothing to check; set `policy` (read_only, no_ddl), `deny_statements` or `deny_tables`",
                ));
            }
            analyzers.push(Analyzer {
                args,
                kind: Kind::Sql(check, q.unparsable),
            });
        }
        if let Some(sh) = &spec.shell {
            let args = arg_paths(&ctx, "shell.args", &sh.args, preset::SHELL_ARGS)?;
            let check = ShellCheck::compile(sh).map_err(|e| ctx.sub("shell", e))?;
            if !sh.builtin && sh.allow_programs.is_empty() && sh.deny_programs.is_empty() {
                return Err(ctx.err(
                    "shell.builtin",
                    "with `builtin = false` the shell analyzer needs `allow_programs` or `deny_programs`",
                ));
            }
            analyzers.push(Analyzer {
                args,
                kind: Kind::Shell(check),
            });
        }
        if let Some(p) = &spec.path {
            let args = arg_paths(&ctx, "path.args", &p.args, preset::PATH_ARGS)?;
            if p.allow_roots.is_empty() && p.deny_roots.is_empty() {
                return Err(ctx.err(
                    "path",
                    "the path analyzer needs `allow_roots` or `deny_roots` (escaping `..` paths are always a violation)",
                ));
            }
            let check = PathCheck::compile(&p.allow_roots, &p.deny_roots)
                .map_err(|e| ctx.sub("path", e))?;
            analyzers.push(Analyzer {
                args,
                kind: Kind::Path(check),
            });
        }
        if let Some(u) = &spec.url {
            let args = arg_paths(&ctx, "url.args", &u.args, preset::URL_ARGS)?;
            let check = UrlCheck::compile(&u.allow_domains, &u.deny_domains, u.deny_private)
                .map_err(|e| ctx.sub("url", e))?;
            analyzers.push(Analyzer {
                args,
                kind: Kind::Url(check),
            });
        }
        let when = spec
            .when
            .iter()
            .enumerate()
            .map(|(i, c)| compile_cond(&ctx, i, c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rule {
            tool: globset(&ctx, "tool", &spec.tool)?,
            tenant: globset(&ctx, "tenant", &spec.tenant)?,
            agent: globset(&ctx, "agent", &spec.agent)?,
            key: globset(&ctx, "key", &spec.key)?,
            summary: summary(&spec),
            name: Arc::from(spec.name.as_str()),
            action: spec.action,
            on_deny: spec.on_deny,
            strip: spec.strip,
            when,
            analyzers,
        })
    }

    fn matches_target(&self, tool: &str, who: &Subject) -> bool {
        let field = |set: &Option<GlobSet>, v: Option<&str>| match set {
            None => true,
            Some(s) => v.is_some_and(|v| s.is_match(v)),
        };
        field(&self.tool, Some(tool))
            && field(&self.tenant, who.tenant)
            && field(&self.agent, who.agent)
            && field(&self.key, who.key)
    }

    fn unconditional(&self) -> bool {
        self.when.is_empty() && self.analyzers.is_empty()
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

impl Cond {
    fn holds(&self, args: &Value) -> bool {
        let v = self.path.lookup(args);
        match (&self.test, v) {
            (Test::Exists(want), v) => v.is_some() == *want,
            (_, None) => false,
            (Test::Equals(want), Some(v)) => match (num(want), num(v)) {
                (Some(a), Some(b)) => a == b,
                _ => want == v,
            },
            (Test::Glob(g), Some(v)) => with_text(v, |t| g.is_match(t)),
            (Test::Regex(r), Some(v)) => with_text(v, |t| r.is_match(t)),
            (Test::Range(lo, hi), Some(v)) => {
                num(v).is_some_and(|n| lo.is_none_or(|lo| n >= lo) && hi.is_none_or(|hi| n <= hi))
            }
        }
    }
}

/// Runs `f` on a scalar's text (numbers and booleans as JSON text); false for others.
fn with_text(v: &Value, f: impl Fn(&str) -> bool) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Number(n) => f(&n.to_string()),
        Value::Bool(b) => f(if *b { "true" } else { "false" }),
        _ => false,
    }
}

/// The text(s) an analyzer reads from one argument value.
enum Input<'v> {
    Text(&'v str),
    List(Vec<&'v str>),
    Other,
}

fn input(v: &Value) -> Input<'_> {
    match v {
        Value::String(s) => Input::Text(s),
        Value::Array(a) => {
            let list: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
            list.map_or(Input::Other, Input::List)
        }
        _ => Input::Other,
    }
}

fn not_json(family: &str) -> Violation {
    Violation::unparsable(
        "arguments that are not valid JSON",
        format!("{family} arguments could not be parsed"),
    )
}

impl Analyzer {
    /// The first violation in the arguments, if any. Arguments that were not JSON are
    /// unparsable; a missing argument is not a violation; a value of the wrong type is.
    fn check(&self, args: &Value) -> Option<Violation> {
        if let Value::String(_) = args {
            return Some(not_json(self.family()));
        }
        for p in &self.args {
            let Some(v) = p.lookup(args) else { continue };
            let found = match (&self.kind, input(v)) {
                (Kind::Sql(c, _), Input::Text(t)) => c.check(t),
                (Kind::Shell(c), Input::Text(t)) => c.check_line(t),
                (Kind::Shell(c), Input::List(l)) => c.check_argv(&l),
                (Kind::Path(c), Input::Text(t)) => c.check(t),
                (Kind::Path(c), Input::List(l)) => l.iter().find_map(|t| c.check(t)),
                (Kind::Url(c), Input::Text(t)) => c.check(t),
                (Kind::Url(c), Input::List(l)) => l.iter().find_map(|t| c.check(t)),
                (Kind::Sql(c, _), Input::List(l)) => l.iter().find_map(|t| c.check(t)),
                (_, Input::Other) => Some(Violation::unparsable(
                    format!("a {} argument that is not text", self.family()),
                    format!("{} arguments must be strings", self.family()),
                )),
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn family(&self) -> &'static str {
        match self.kind {
            Kind::Sql(..) => "SQL",
            Kind::Shell(_) => "shell",
            Kind::Path(_) => "path",
            Kind::Url(_) => "URL",
        }
    }
}

fn tool_for_reason(name: &str) -> &str {
    if name.len() <= MAX_NAME_IN_REASON {
        return name;
    }
    let mut end = MAX_NAME_IN_REASON;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl Governor {
    /// Validates and compiles a spec. The error names the rule (index and name), the field
    /// (`rules[2].sql.deny_tables[0]`), what is wrong and what is accepted.
    pub fn compile(spec: GovernSpec) -> Result<Governor, SpecError> {
        let mut rules: Vec<Rule> = Vec::with_capacity(spec.rules.len());
        for (i, r) in spec.rules.into_iter().enumerate() {
            if let Some(prev) = rules.iter().position(|p| *p.name == *r.name) {
                return Err(SpecError {
                    index: i,
                    rule: r.name.clone(),
                    field: "name".into(),
                    message: format!(
                        "rules[{prev}] already has this name; rule names must be unique"
                    ),
                });
            }
            rules.push(Rule::compile(i, r)?);
        }
        let preset = spec.preset.then(|| Preset {
            sql: SqlCheck::preset(),
            shell: ShellCheck::preset(),
            path: PathCheck::compile(
                &[],
                &SENSITIVE_ROOTS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .expect("built-in roots are valid"),
            url: UrlCheck::compile(&[], &[], true).expect("no globs"),
            names: [
                Arc::from("preset:sql"),
                Arc::from("preset:shell"),
                Arc::from("preset:path"),
                Arc::from("preset:url"),
            ],
        });
        Ok(Governor {
            rules,
            preset,
            default_action: spec.default_action,
            on_unparsable: spec.on_unparsable,
            default_name: Arc::from("default"),
        })
    }

    /// Judges one call: the first matching user rule, else the preset (if on), else the
    /// default action.
    pub fn judge(&self, call: &ToolCall, who: &Subject) -> Verdict {
        let tool = tool_for_reason(call.name);
        for rule in &self.rules {
            if !rule.matches_target(call.name, who)
                || !rule.when.iter().all(|c| c.holds(call.arguments))
            {
                continue;
            }
            if rule.analyzers.is_empty() {
                let mut reason = format!(
                    "rule \"{}\" {} tool \"{tool}\"",
                    rule.name,
                    rule.action.verb()
                );
                if !rule.when.is_empty() {
                    let paths: Vec<&str> = rule.when.iter().map(|c| c.path_text.as_str()).collect();
                    reason.push_str(&format!(" (conditions on {} held)", paths.join(", ")));
                }
                return Verdict {
                    action: rule.action,
                    rule: rule.name.clone(),
                    reason,
                    on_deny: rule.on_deny,
                };
            }
            for a in &rule.analyzers {
                if let Some(v) = a.check(call.arguments) {
                    let action = if v.unparsable {
                        match &a.kind {
                            Kind::Sql(_, Some(act)) => *act,
                            _ => self.on_unparsable,
                        }
                    } else {
                        rule.action
                    };
                    return verdict(&rule.name, action, rule.on_deny, &v, tool);
                }
            }
        }
        if let Some(p) = &self.preset {
            let kinds = preset::classify(call.name);
            if kinds.any()
                && let Some((i, v)) = self.preset_check(p, kinds, call.arguments)
            {
                let action = if v.unparsable {
                    self.on_unparsable
                } else {
                    Action::Deny
                };
                return verdict(&p.names[i], action, OnDeny::Error, &v, tool);
            }
        }
        Verdict {
            action: self.default_action,
            rule: self.default_name.clone(),
            reason: format!(
                "no rule matched tool \"{tool}\"; the default is {}",
                self.default_action
            ),
            on_deny: OnDeny::Error,
        }
    }

    /// The preset's finding: (index into `Preset::names`, violation).
    fn preset_check(&self, p: &Preset, k: Kinds, args: &Value) -> Option<(usize, Violation)> {
        let first = [k.sql, k.shell_applies(), k.file, k.url]
            .iter()
            .position(|b| *b)?;
        if let Value::String(_) = args {
            let family = ["SQL", "shell", "path", "URL"][first];
            return Some((first, not_json(family)));
        }
        let Value::Object(map) = args else {
            return None;
        };
        let text = |name: &&str| map.get(*name).and_then(Value::as_str);
        if k.sql {
            let extra: &[&str] = if k.shell_strong {
                &[]
            } else {
                preset::SQL_EXTRA_ARGS
            };
            for t in preset::SQL_ARGS.iter().chain(extra).filter_map(text) {
                if !k.sql_strong && !preset::looks_like_sql(t) {
                    continue;
                }
                match p.sql.check(t) {
                    // A `query`-only tool's unparsable text is taken for natural language.
                    Some(v) if v.unparsable && !k.sql_strong => {}
                    Some(v) => return Some((0, v)),
                    None => {}
                }
            }
        }
        if k.shell_applies() {
            for name in preset::SHELL_ARGS {
                let Some(v) = map.get(*name) else { continue };
                let found = match input(v) {
                    Input::Text(t) => p.shell.check_line(t),
                    Input::List(l) => p.shell.check_argv(&l).or_else(|| {
                        // A list of command lines (`commands: ["cd x", "make"]`) is judged
                        // line by line as well.
                        if *name == "commands" || *name == "script" {
                            l.iter().find_map(|line| p.shell.check_line(line))
                        } else {
                            None
                        }
                    }),
                    Input::Other => None,
                };
                if let Some(v) = found {
                    return Some((1, v));
                }
            }
        }
        if k.file {
            for name in preset::PATH_ARGS {
                let found = match map.get(*name).map(input) {
                    Some(Input::Text(t)) => p.path.check(t),
                    Some(Input::List(l)) => l.iter().find_map(|t| p.path.check(t)),
                    _ => None,
                };
                if let Some(v) = found {
                    return Some((2, v));
                }
            }
        }
        if k.url {
            for name in preset::URL_ARGS {
                let found = match map.get(*name).map(input) {
                    Some(Input::Text(t)) => p.url.check(t),
                    Some(Input::List(l)) => l.iter().find_map(|t| p.url.check(t)),
                    _ => None,
                };
                if let Some(v) = found {
                    return Some((3, v));
                }
            }
        }
        None
    }

    /// Whether the tool's definition should reach the model for this subject. The first rule
    /// that targets the tool and subject without conditions or analyzers decides: `false` if it
    /// strips. Rules with conditions depend on arguments a definition does not have, so they
    /// are passed over.
    pub fn offers(&self, tool_name: &str, who: &Subject) -> bool {
        self.rules
            .iter()
            .find(|r| r.unconditional() && r.matches_target(tool_name, who))
            .is_none_or(|r| !r.strip)
    }

    /// One line per effective rule, in evaluation order: user rules, the preset's rules (when
    /// on), the default.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self.rules.iter().map(|r| r.summary.clone()).collect();
        if self.preset.is_some() {
            let u = self.on_unparsable;
            out.push(format!(
                "rule \"preset:sql\": deny DROP, TRUNCATE, ALTER, GRANT, REVOKE, DELETE/UPDATE without WHERE ({u} if unparsable) in args sql|query|statement (command|cmd|script when not a shell tool) of tools named *sql*|*query*|*db*|*database*"
            ));
            out.push(format!(
                "rule \"preset:shell\": deny recursive deletes outside /tmp, download|interpreter, sudo/su/doas/pkexec/runuser, world-writable chmod, writes to system paths, fork bombs, disk wipes, exfiltration ({u} if unparsable) in args command|cmd|script|commands of tools named *shell*|*bash*|*exec*|*run_command*|*terminal*|*cmd*|*command*"
            ));
            out.push(format!(
                "rule \"preset:path\": deny paths escaping the working directory and under {} in args {} of tools named *file*|*read*|*write*|*fs*|*path*|*dir*|*edit*",
                SENSITIVE_ROOTS.join(", "),
                preset::PATH_ARGS.join("|")
            ));
            out.push(format!(
                "rule \"preset:url\": deny non-http(s) schemes and loopback/private/link-local/metadata hosts in args {} of tools named *fetch*|*browse*|*http*|*url*|*web*|*request*|*download*|*navigate*",
                preset::URL_ARGS.join("|")
            ));
        }
        out.push(format!("rule \"default\": {}", self.default_action));
        out
    }
}

/// Roots the path preset denies.
const SENSITIVE_ROOTS: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/root",
    "/proc",
    "/sys",
    "~/.ssh",
    "~/.aws",
    "~/.gnupg",
    "~/.config/gcloud",
    "~/.kube",
    "~/.docker/config.json",
    "/var/run/docker.sock",
    "/run/docker.sock",
];

fn verdict(rule: &Arc<str>, action: Action, on_deny: OnDeny, v: &Violation, tool: &str) -> Verdict {
    Verdict {
        action,
        rule: rule.clone(),
        reason: format!(
            "rule \"{rule}\" {} {} in tool \"{tool}\" ({})",
            action.verb(),
            v.what,
            v.why
        ),
        on_deny,
    }
}
