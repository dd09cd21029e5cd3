//! The shell analyzer: what a command line a shell tool would run actually does.
//!
//! This module owns the judgement of parsed command lines: which program each simple command
//! really runs once wrappers are peeled off (`env`, `sudo`, `nohup`, `timeout 5`, `xargs`,
//! `bash -c "…"`, `eval` …), and the dangerous patterns agents are known to produce —
//! recursive deletes outside temporary directories, downloads piped into interpreters,
//! privilege escalation, world-writable `chmod`, writes to system paths, fork bombs, disk wipes
//! and exfiltration. It must not run, expand or rewrite anything; its reasons name programs,
//! path roots and devices, never whole arguments.
//!
//! The parser ([`parse`]) is our own. Word splitters such as `shlex` or `shell-words` only
//! split words: they do not know that `|`, `&&`, `;`, `$(…)` or `>` are operators, so
//! `ls;rm -rf /` would be one harmless `ls;rm` to them. Judging a command line needs its
//! structure — pipelines, substitutions, redirections — which only a parser gives.
//!
//! Quoted text is data, not a command: `echo "rm -rf /"` is an `echo`. Text that *is* run —
//! substitutions, `sh -c` strings, `eval` arguments, here-documents fed to a shell — is parsed
//! and judged recursively, to [`parse::MAX_DEPTH`] levels; deeper, too large or malformed input
//! is unparsable, and the governor's unparsable action applies.

pub(crate) mod parse;

use std::sync::LazyLock;

use crate::Violation;
use crate::path::{Anchor, NormPath, normalize};
use parse::{Command, ParseError, Pipeline, Redir, RedirKind, Script, Word};

type Judged = Result<(), Violation>;

/// Programs that switch user.
const PRIVILEGE: &[&str] = &["sudo", "su", "doas", "pkexec", "runuser", "sudoedit"];
/// Programs that fetch from the network to stdout.
const FETCHERS: &[&str] = &[
    "curl",
    "wget",
    "fetch",
    "http",
    "https",
    "xh",
    "lwp-request",
];
/// Raw socket tools.
const RAW_NET: &[&str] = &["nc", "ncat", "netcat", "socat", "telnet"];
/// Anything that sends data off the machine.
const NETWORK: &[&str] = &[
    "curl", "wget", "fetch", "http", "https", "xh", "nc", "ncat", "netcat", "socat", "telnet",
    "ssh", "scp", "sftp", "ftp", "rsync", "openssl", "mail", "sendmail", "mutt",
];
/// Shells that take `-c STRING`.
const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish", "csh", "tcsh", "rbash",
];
/// Builtins an `allow_programs` list never has to name.
const HARMLESS_BUILTINS: &[&str] = &[
    "cd", "pushd", "popd", "true", "false", ":", "test", "[", "[[",
];

/// A compiled shell analyzer.
#[derive(Clone, Debug)]
pub(crate) struct ShellCheck {
    builtin: bool,
    allow_programs: Vec<String>,
    deny_programs: Vec<String>,
    /// Where recursive deletes are fine: /tmp, /var/tmp, $TMPDIR and configured extras.
    delete_roots: Vec<NormPath>,
}

fn temp_roots() -> Vec<NormPath> {
    ["/tmp", "/var/tmp", "/private/tmp", "$TMPDIR"]
        .iter()
        .filter_map(|r| normalize(r).ok())
        .collect()
}

impl ShellCheck {
    /// The preset's analyzer: every built-in check, no program lists.
    pub(crate) fn preset() -> ShellCheck {
        ShellCheck {
            builtin: true,
            allow_programs: Vec::new(),
            deny_programs: Vec::new(),
            delete_roots: temp_roots(),
        }
    }

    /// Compiles a user's analyzer; errors name the sub-field.
    pub(crate) fn compile(spec: &crate::ShellSpec) -> Result<ShellCheck, String> {
        let mut delete_roots = temp_roots();
        for (i, r) in spec.allow_recursive_delete.iter().enumerate() {
            match normalize(r) {
                Ok(n) if !(n.escapes() || n.anchor == Anchor::Root && n.comps.is_empty()) => {
                    delete_roots.push(n)
                }
                _ => {
                    return Err(format!(
                        "allow_recursive_delete[{i}]: `{r}` is not a usable root; name a directory such as `./build`, `.` or `/data/scratch` (not `/` or a path with `..`)"
                    ));
                }
            }
        }
        let names = |list: &[String], field: &str| -> Result<Vec<String>, String> {
            list.iter()
                .enumerate()
                .map(|(i, p)| {
                    let b = basename(p);
                    if b.is_empty() || b.contains(char::is_whitespace) {
                        Err(format!("{field}[{i}]: `{p}` is not a program name; use a name such as `rm` or `git`"))
                    } else {
                        Ok(b.to_owned())
                    }
                })
                .collect()
        };
        Ok(ShellCheck {
            builtin: spec.builtin,
            allow_programs: names(&spec.allow_programs, "allow_programs")?,
            deny_programs: names(&spec.deny_programs, "deny_programs")?,
            delete_roots,
        })
    }

    /// Judges a command line.
    pub(crate) fn check_line(&self, line: &str) -> Option<Violation> {
        self.line_at(line, 0).err()
    }

    /// Judges an argv (one simple command, not re-split).
    pub(crate) fn check_argv(&self, argv: &[&str]) -> Option<Violation> {
        let words: Vec<Word> = argv.iter().map(|a| Word::literal(a)).collect();
        let p = Pipeline {
            cmds: vec![Command::Simple {
                words,
                redirs: Vec::new(),
                keyword: false,
            }],
            background: false,
        };
        self.pipeline(&p, 0).err()
    }

    fn line_at(&self, line: &str, depth: usize) -> Judged {
        let script = parse::parse_at(line, depth).map_err(unparsable)?;
        self.script(&script, depth)
    }

    fn script(&self, s: &Script, depth: usize) -> Judged {
        for p in &s.items {
            self.pipeline(p, depth)?;
        }
        Ok(())
    }

    fn word_subs(&self, w: &Word, depth: usize) -> Judged {
        for s in &w.subs {
            self.script(s, depth + 1)?;
        }
        Ok(())
    }

    fn pipeline(&self, p: &Pipeline, depth: usize) -> Judged {
        let mut stages = Vec::with_capacity(p.cmds.len());
        for cmd in &p.cmds {
            match cmd {
                Command::Simple {
                    words,
                    redirs,
                    keyword,
                } => {
                    for w in words {
                        self.word_subs(w, depth)?;
                    }
                    for r in redirs {
                        self.redirection(r, depth)?;
                    }
                    if *keyword {
                        stages.push(Stage::default());
                        continue;
                    }
                    stages.push(self.simple(words, redirs, depth)?);
                }
                Command::Compound(s, redirs) => {
                    for r in redirs {
                        self.redirection(r, depth)?;
                    }
                    self.script(s, depth + 1)?;
                    stages.push(Stage::of_script(s));
                }
                Command::Function(name, body) => {
                    if self.builtin && calls_in_background(body, name) {
                        return Err(Violation::new(
                            format!("function \"{name}\" calling itself in the background"),
                            "fork bomb",
                        ));
                    }
                    self.script(body, depth + 1)?;
                    stages.push(Stage::default());
                }
            }
        }
        if !self.builtin {
            return Ok(());
        }
        for (j, later) in stages.iter().enumerate() {
            let earlier = &stages[..j];
            if let Some(interp) = &later.runs_stdin
                && earlier.iter().any(|s| s.fetch)
            {
                return Err(Violation::new(
                    format!("download piped into {interp}"),
                    "runs code fetched from the network",
                ));
            }
            if let Some(net) = &later.network {
                if earlier.iter().any(|s| s.reads_credentials) {
                    return Err(Violation::new(
                        format!("credential file piped into {net}"),
                        "exfiltration",
                    ));
                }
                if j > 0 && RAW_NET.contains(&net.as_str()) {
                    return Err(Violation::new(
                        format!("data piped into {net}"),
                        "exfiltration over a raw socket",
                    ));
                }
            }
        }
        Ok(())
    }

    fn redirection(&self, r: &Redir, depth: usize) -> Judged {
        self.word_subs(&r.target, depth)?;
        if !self.builtin {
            return Ok(());
        }
        let t = &r.target.text;
        if t.contains("/dev/tcp/") || t.contains("/dev/udp/") {
            return Err(Violation::new(
                "redirection to /dev/tcp or /dev/udp",
                "exfiltration over a raw socket",
            ));
        }
        if r.writes() {
            write_target(t)?;
        }
        Ok(())
    }

    /// Judges one simple command and returns what the pipeline checks need to know about it.
    fn simple(&self, words: &[Word], redirs: &[Redir], depth: usize) -> Result<Stage, Violation> {
        let mut i = skip_assignments(words, 0);
        let mut stage = Stage::default();
        if self.builtin {
            for w in words {
                if w.text.contains("/dev/tcp/") || w.text.contains("/dev/udp/") {
                    return Err(Violation::new(
                        "use of /dev/tcp or /dev/udp",
                        "exfiltration over a raw socket",
                    ));
                }
            }
            stage.reads_credentials = words.iter().skip(i).any(|w| mentions_credentials(&w.text))
                || redirs
                    .iter()
                    .any(|r| r.kind == RedirKind::In && mentions_credentials(&r.target.text));
        }
        // Peel wrappers: each round judges one program and finds the one it runs.
        while i < words.len() {
            let name = program_name(&words[i]);
            let args = &words[i + 1..];
            self.program_lists(name.as_deref())?;
            let Some(name) = name else {
                break;
            };
            if self.builtin && PRIVILEGE.contains(&name.as_str()) {
                return Err(Violation::new(name.clone(), "privilege escalation"));
            }
            // Strings that are run as command lines.
            if let Some(line) = embedded_script(&name, args) {
                if self.builtin
                    && runs_embedded_code(&name)
                    && args.iter().any(|w| w.subs.iter().any(script_fetches))
                {
                    return Err(Violation::new(
                        format!("{name} running a download"),
                        "runs code fetched from the network",
                    ));
                }
                self.line_at(&line, depth + 1)?;
            }
            if self.builtin {
                self.program(&name, args, redirs, depth, &mut stage)?;
            }
            match wrapped(&name, args) {
                Some(k) => i = skip_assignments(words, i + 1 + k),
                None => break,
            }
        }
        Ok(stage)
    }

    fn program_lists(&self, name: Option<&str>) -> Judged {
        match name {
            Some(n) if self.deny_programs.iter().any(|d| d == n) => {
                Err(Violation::new(format!("program \"{n}\""), "denied program"))
            }
            Some(n)
                if !self.allow_programs.is_empty()
                    && !HARMLESS_BUILTINS.contains(&n)
                    && !self.allow_programs.iter().any(|a| a == n) =>
            {
                Err(Violation::new(
                    format!("program \"{n}\""),
                    "program not in the allowed list",
                ))
            }
            None if !self.allow_programs.is_empty() => Err(Violation::new(
                "a program chosen at run time",
                "program not in the allowed list",
            )),
            _ => Ok(()),
        }
    }

    /// The built-in checks of one program with its arguments.
    fn program(
        &self,
        name: &str,
        args: &[Word],
        redirs: &[Redir],
        depth: usize,
        stage: &mut Stage,
    ) -> Judged {
        if FETCHERS.contains(&name) {
            stage.fetch = true;
        }
        if NETWORK.contains(&name) {
            stage.network = Some(name.to_owned());
        }
        if let Some(interp) = runs_stdin(name, args) {
            stage.runs_stdin = Some(interp);
            // `bash <<EOF … EOF`, `sh <<< "…"`: the document is the script.
            for r in redirs {
                let text = match (r.kind, &r.body) {
                    (RedirKind::HereDoc, Some(b)) => b.as_str(),
                    (RedirKind::HereString, _) => r.target.text.as_str(),
                    _ => continue,
                };
                if SHELLS.contains(&name) {
                    self.line_at(text, depth + 1)?;
                }
            }
        }
        // `bash <(curl …)`, `source <(wget -O- …)`, `python3 <(curl …)`.
        if is_interpreter(name) && args.iter().any(|w| w.subs.iter().any(script_fetches)) {
            return Err(Violation::new(
                format!("{name} running a download"),
                "runs code fetched from the network",
            ));
        }
        match name {
            "rm" => self.rm(args),
            "find" => self.find(args, depth),
            "chmod" => chmod(args),
            "tee" => positionals(args, &[])
                .iter()
                .try_for_each(|w| write_target(&w.text)),
            "cp" | "mv" | "install" | "ln" => copy_target(name, args),
            "dd" => dd(args),
            "sed" => sed_in_place(args),
            "truncate" | "unlink" | "shred" => {
                for w in positionals(args, &["s", "n", "u"]) {
                    write_target(&w.text)?;
                }
                Ok(())
            }
            n if n.starts_with("mkfs") || n == "mke2fs" || n == "wipefs" || n == "blkdiscard" => {
                Err(Violation::new(n.to_owned(), "wipes a disk"))
            }
            "curl" => curl_upload(args),
            "wget" => {
                if args.iter().any(|w| {
                    let t = w.text.as_str();
                    t.starts_with("--post-file") || t.starts_with("--body-file")
                }) {
                    return Err(Violation::new("wget uploading a file", "exfiltration"));
                }
                Ok(())
            }
            "nc" | "ncat" | "netcat" | "socat" | "telnet" => raw_socket(name, args, redirs),
            "scp" | "rsync" => remote_copy(name, args),
            _ => Ok(()),
        }
    }

    fn under_delete_root(&self, target: &str) -> bool {
        match normalize(target) {
            Ok(p) => !p.escapes() && self.delete_roots.iter().any(|r| p.is_strictly_under(r)),
            Err(_) => false,
        }
    }

    fn rm(&self, args: &[Word]) -> Judged {
        let mut recursive = false;
        let mut targets = Vec::new();
        let mut opts = true;
        for w in args {
            let t = w.text.as_str();
            if opts && t == "--" {
                opts = false;
            } else if opts && t.starts_with("--") {
                recursive |= t == "--recursive";
            } else if opts && t.len() > 1 && t.starts_with('-') {
                recursive |= t.contains('r') || t.contains('R');
            } else {
                targets.push(t);
            }
        }
        for t in targets {
            if recursive && !self.under_delete_root(t) {
                return Err(Violation::new(
                    format!("rm -r of \"{}\"", display_root(t)),
                    "recursive delete outside a temporary directory",
                ));
            }
            write_target(t)?;
        }
        Ok(())
    }

    fn find(&self, args: &[Word], depth: usize) -> Judged {
        let start = args
            .iter()
            .position(|w| w.text.starts_with('-') || w.text == "(" || w.text == "!")
            .unwrap_or(args.len());
        let mut deletes = false;
        let mut i = start;
        while i < args.len() {
            match args[i].text.as_str() {
                "-delete" => deletes = true,
                "-exec" | "-execdir" | "-ok" | "-okdir" => {
                    let end = args[i + 1..]
                        .iter()
                        .position(|w| w.text == ";" || w.text == "+")
                        .map_or(args.len(), |k| i + 1 + k);
                    let sub = &args[i + 1..end];
                    if sub.first().and_then(program_name).as_deref() == Some("rm") {
                        deletes = true;
                    }
                    // The executed command is judged like any other (`-exec sudo …`).
                    self.simple(sub, &[], depth + 1)?;
                    i = end;
                }
                _ => {}
            }
            i += 1;
        }
        if deletes {
            let roots: Vec<&str> = if start == 0 {
                vec!["."]
            } else {
                args[..start].iter().map(|w| w.text.as_str()).collect()
            };
            for r in roots {
                if !self.under_delete_root(r) {
                    return Err(Violation::new(
                        format!("find -delete of \"{}\"", display_root(r)),
                        "recursive delete outside a temporary directory",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What the pipeline-level checks need to know about one stage.
#[derive(Clone, Debug, Default)]
struct Stage {
    fetch: bool,
    /// The network tool this stage runs, if any.
    network: Option<String>,
    /// The interpreter that executes its stdin, if any.
    runs_stdin: Option<String>,
    reads_credentials: bool,
}

impl Stage {
    /// A subshell or group as a pipeline stage: what any command inside it does.
    fn of_script(s: &Script) -> Stage {
        let mut st = Stage::default();
        for p in &s.items {
            for c in &p.cmds {
                match c {
                    Command::Simple {
                        words,
                        redirs,
                        keyword: false,
                    } => {
                        let i = skip_assignments(words, 0);
                        if let Some(name) = words.get(i).and_then(program_name) {
                            let args = &words[i + 1..];
                            st.fetch |= FETCHERS.contains(&name.as_str());
                            if NETWORK.contains(&name.as_str()) {
                                st.network = Some(name.clone());
                            }
                            if let Some(interp) = runs_stdin(&name, args) {
                                st.runs_stdin = Some(interp);
                            }
                        }
                        st.reads_credentials |= words.iter().any(|w| mentions_credentials(&w.text))
                            || redirs.iter().any(|r| mentions_credentials(&r.target.text));
                    }
                    Command::Compound(inner, _) => {
                        let o = Stage::of_script(inner);
                        st.fetch |= o.fetch;
                        st.network = st.network.or(o.network);
                        st.runs_stdin = st.runs_stdin.or(o.runs_stdin);
                        st.reads_credentials |= o.reads_credentials;
                    }
                    _ => {}
                }
            }
        }
        st
    }
}

fn unparsable(e: ParseError) -> Violation {
    let why = match e {
        ParseError::TooLarge => "command line too large to analyze".to_owned(),
        ParseError::TooDeep => "command line nested too deeply to analyze".to_owned(),
        ParseError::Syntax(s) => format!("unparsable shell: {s}"),
    };
    Violation::unparsable("a command line that could not be parsed", why)
}

/// Programs whose string arguments are command lines.
fn runs_embedded_code(name: &str) -> bool {
    SHELLS.contains(&name) || name == "eval" || name == "su" || name == "env" || name == "watch"
}

pub(crate) fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The program a word names, by basename; `None` when it is only known at run time.
fn program_name(w: &Word) -> Option<String> {
    if w.text.contains("$(…)") || w.text.starts_with('$') || w.text.is_empty() {
        return None;
    }
    let b = basename(&w.text);
    (!b.is_empty()).then(|| b.to_owned())
}

/// Index of the first word after `NAME=value` prefixes.
fn skip_assignments(words: &[Word], mut i: usize) -> usize {
    while let Some(w) = words.get(i) {
        let Some(eq) = w.text.find('=') else { break };
        let name = &w.text[..eq];
        let valid = eq > 0
            && eq <= w.first_quote
            && !name.as_bytes()[0].is_ascii_digit()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            break;
        }
        i += 1;
    }
    i
}

/// Skips options: `short_val` letters take a value (attached or next word), `long_val` long
/// options take the next word unless written `--x=v`. Returns the index of the first operand.
fn skip_options(args: &[Word], short_val: &str, long_val: &[&str]) -> usize {
    let mut i = 0;
    while let Some(w) = args.get(i) {
        let t = w.text.as_str();
        if t == "--" {
            return i + 1;
        }
        if let Some(long) = t.strip_prefix("--") {
            i += if !long.contains('=') && long_val.contains(&long) {
                2
            } else {
                1
            };
            continue;
        }
        if t.len() < 2 || !t.starts_with('-') {
            return i;
        }
        i += 1;
        for (k, c) in t[1..].char_indices() {
            if short_val.contains(c) {
                if k + c.len_utf8() == t.len() - 1 {
                    i += 1; // value is the next word
                }
                break;
            }
        }
    }
    i
}

/// Operands after options (see [`skip_options`]), and any operands after those.
fn positionals<'w>(args: &'w [Word], short_val: &[&str]) -> Vec<&'w Word> {
    let letters: String = short_val.concat();
    let mut out = Vec::new();
    let mut i = 0;
    let mut opts = true;
    while i < args.len() {
        let t = args[i].text.as_str();
        if opts && t == "--" {
            opts = false;
        } else if opts && t.len() > 1 && t.starts_with('-') {
            if !t.starts_with("--")
                && let Some(c) = t.chars().last()
                && letters.contains(c)
            {
                i += 1;
            }
        } else {
            out.push(&args[i]);
        }
        i += 1;
    }
    out
}

/// Where a wrapper's command starts in its arguments, if the program is a wrapper.
fn wrapped(name: &str, args: &[Word]) -> Option<usize> {
    let k = match name {
        "sudo" => skip_options(
            args,
            "ugpCDrtUTh",
            &[
                "user",
                "group",
                "prompt",
                "chdir",
                "role",
                "type",
                "host",
                "close-from",
                "other-user",
                "command-timeout",
            ],
        ),
        "doas" => skip_options(args, "uC", &[]),
        "pkexec" => skip_options(args, "", &["user"]),
        "runuser" => skip_options(
            args,
            "ugGw",
            &["user", "group", "supp-group", "whitelist-environment"],
        ),
        "env" => {
            if args
                .iter()
                .any(|w| w.text == "-S" || w.text.starts_with("--split-string"))
            {
                return None;
            }
            skip_options(args, "uCS", &["unset", "chdir"])
        }
        "nohup" | "builtin" | "setsid" | "unbuffer" | "busybox" => skip_options(args, "", &[]),
        "exec" => skip_options(args, "a", &[]),
        "command" => {
            // `command -v x` only looks `x` up.
            if args
                .iter()
                .take_while(|w| w.text.starts_with('-'))
                .any(|w| w.text.contains('v') || w.text.contains('V'))
            {
                return None;
            }
            skip_options(args, "", &[])
        }
        "time" => skip_options(args, "fo", &["format", "output"]),
        // `nice -5 cmd`: a digit option carries its own value.
        "nice" => skip_options(args, "n", &["adjustment"]),
        "ionice" => skip_options(args, "cnp", &["class", "classdata"]),
        "timeout" => skip_options(args, "sk", &["signal", "kill-after"]) + 1,
        "stdbuf" => skip_options(args, "ioe", &["input", "output", "error"]),
        "xargs" => {
            let i = skip_options(
                args,
                "IinPLldEesa",
                &[
                    "arg-file",
                    "delimiter",
                    "max-args",
                    "max-procs",
                    "max-lines",
                    "replace",
                    "eof",
                    "max-chars",
                    "process-slot-var",
                ],
            );
            if i >= args.len() {
                return None; // runs `echo`
            }
            i
        }
        "watch" => {
            if !args.iter().any(|w| w.text == "-x" || w.text == "--exec") {
                return None; // the rest is a command line, see `embedded_script`
            }
            skip_options(args, "nq", &["interval", "equexit"])
        }
        "flock" => {
            if args.iter().any(|w| w.text == "-c" || w.text == "--command") {
                return None;
            }
            skip_options(args, "wEn", &["timeout", "conflict-exit-code"]) + 1
        }
        "chroot" => skip_options(args, "", &["userspec", "groups"]) + 1,
        _ => return None,
    };
    (k < args.len()).then_some(k)
}

/// A command line a program runs from its arguments: `sh -c STR`, `eval ARGS`, `su -c STR`,
/// `env -S STR`, `watch ARGS` (without `-x`), `flock … -c STR`.
fn embedded_script(name: &str, args: &[Word]) -> Option<String> {
    let flag_value = |flags: &[&str]| {
        let i = args.iter().position(|w| flags.contains(&w.text.as_str()))?;
        args.get(i + 1).map(|w| w.text.clone())
    };
    match name {
        n if SHELLS.contains(&n) => {
            // `-c` may be clustered (`-lc`, `-ec`); the string is the first operand after it.
            let mut saw_c = false;
            let mut i = 0;
            while i < args.len() {
                let t = args[i].text.as_str();
                if t == "--" {
                    i += 1;
                    break;
                }
                if t.starts_with('-') && t.len() > 1 && !t.starts_with("--") {
                    saw_c |= t[1..].contains('c');
                    if t[1..].ends_with('o') || t[1..].ends_with('O') {
                        i += 1;
                    }
                } else if t.starts_with('+') && t.len() > 1 {
                    if t.ends_with('o') {
                        i += 1;
                    }
                } else if !t.starts_with("--") {
                    break;
                }
                i += 1;
            }
            (saw_c && i < args.len()).then(|| args[i].text.clone())
        }
        "eval" => Some(
            args.iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "su" | "runuser" => flag_value(&["-c", "--command"]),
        "flock" => flag_value(&["-c", "--command"]),
        "env" => flag_value(&["-S", "--split-string"]).or_else(|| {
            args.iter()
                .find_map(|w| w.text.strip_prefix("--split-string=").map(str::to_owned))
        }),
        "watch" if !args.iter().any(|w| w.text == "-x" || w.text == "--exec") => {
            let i = skip_options(args, "nq", &["interval", "equexit"]);
            (i < args.len()).then(|| {
                args[i..]
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        }
        _ => None,
    }
}

fn is_interpreter(name: &str) -> bool {
    SHELLS.contains(&name)
        || name.starts_with("python")
        || name.starts_with("pypy")
        || matches!(
            name,
            "perl"
                | "ruby"
                | "node"
                | "nodejs"
                | "deno"
                | "bun"
                | "php"
                | "lua"
                | "source"
                | "."
                | "eval"
        )
}

/// If `name args` executes code read from stdin, the interpreter's name.
fn runs_stdin(name: &str, args: &[Word]) -> Option<String> {
    if !is_interpreter(name) || name == "eval" {
        return None;
    }
    if name == "source" || name == "." {
        let f = args.first()?;
        return matches!(f.text.as_str(), "/dev/stdin" | "-" | "/proc/self/fd/0")
            .then(|| name.to_owned());
    }
    let shell = SHELLS.contains(&name);
    // Letters that mean "the code is in an argument" and letters that take a value.
    let (code, valued): (&str, &str) = if shell {
        ("c", "oO")
    } else if name.starts_with("python") || name.starts_with("pypy") {
        ("cm", "WXQ")
    } else if name == "perl" {
        ("eE", "")
    } else if name == "ruby" {
        ("e", "rIE")
    } else if name == "php" {
        ("rf", "dc")
    } else if name == "lua" {
        ("el", "")
    } else {
        ("ep", "r")
    };
    let mut i = 0;
    while let Some(w) = args.get(i) {
        let t = w.text.as_str();
        if t == "-" || t == "/dev/stdin" {
            return Some(name.to_owned());
        }
        if t == "--" {
            return args.get(i + 1).is_none().then(|| name.to_owned());
        }
        if let Some(long) = t.strip_prefix("--") {
            if matches!(long, "eval" | "print" | "command") || long.starts_with("eval=") {
                return None;
            }
            i += 1;
            continue;
        }
        if t.len() > 1 && (t.starts_with('-') || (shell && t.starts_with('+'))) {
            let letters = &t[1..];
            if shell && letters.contains('s') {
                return Some(name.to_owned());
            }
            if let Some(c) = letters
                .chars()
                .find(|c| code.contains(*c) || valued.contains(*c))
            {
                if code.contains(c) {
                    return None;
                }
                if letters.ends_with(c) {
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        // A script file: stdin is data, not code.
        return None;
    }
    Some(name.to_owned())
}

/// Whether any simple command in `s` (at any depth) runs a fetcher.
fn script_fetches(s: &Script) -> bool {
    s.items.iter().flat_map(|p| &p.cmds).any(|c| match c {
        Command::Simple { words, .. } => {
            words
                .iter()
                .any(|w| !w.dynamic && FETCHERS.contains(&basename(&w.text)))
                || words.iter().any(|w| w.subs.iter().any(script_fetches))
        }
        Command::Compound(inner, _) | Command::Function(_, inner) => script_fetches(inner),
    })
}

/// Whether `body` (a function's) calls `name` in a background job or a pipeline.
fn calls_in_background(body: &Script, name: &str) -> bool {
    body.items.iter().any(|p| {
        let calls = p.cmds.iter().any(|c| match c {
            Command::Simple { words, .. } => words
                .get(skip_assignments(words, 0))
                .is_some_and(|w| w.text == name),
            Command::Compound(inner, _) => script_calls(inner, name),
            Command::Function(..) => false,
        });
        (calls && (p.background || p.cmds.len() > 1))
            || p.cmds.iter().any(|c| match c {
                Command::Compound(inner, _) => calls_in_background(inner, name),
                _ => false,
            })
    })
}

fn script_calls(s: &Script, name: &str) -> bool {
    s.items.iter().flat_map(|p| &p.cmds).any(|c| match c {
        Command::Simple { words, .. } => words.iter().any(|w| w.text == name),
        Command::Compound(inner, _) => script_calls(inner, name),
        Command::Function(..) => false,
    })
}

/// A root for reasons: `/`, `/home`, `~`, `..`, `*`.
fn display_root(t: &str) -> String {
    match normalize(t) {
        Ok(p) => p.root_display(),
        Err(_) => "?".into(),
    }
}

/// Devices writes to which are harmless.
fn harmless_device(rest: &[String]) -> bool {
    matches!(
        rest.first().map(String::as_str),
        Some(
            "null"
                | "stdout"
                | "stderr"
                | "tty"
                | "fd"
                | "zero"
                | "random"
                | "urandom"
                | "shm"
                | "pts"
        )
    )
}

fn is_disk(dev: &str) -> bool {
    [
        "sd", "hd", "vd", "xvd", "nvme", "mmcblk", "disk", "mapper", "md", "dm-", "loop", "sr",
    ]
    .iter()
    .any(|p| dev.starts_with(p))
}

/// Judges a path a command writes to (redirection, `tee`, `cp` destination, `dd of=` …).
fn write_target(t: &str) -> Judged {
    let Ok(p) = normalize(t) else {
        return Ok(());
    };
    if p.anchor != Anchor::Root {
        return Ok(());
    }
    let Some(first) = p.comps.first() else {
        return Ok(());
    };
    if first == "dev" {
        if harmless_device(&p.comps[1..]) || p.comps.len() == 1 {
            return Ok(());
        }
        let dev = &p.comps[1];
        if dev == "tcp" || dev == "udp" {
            return Err(Violation::new(
                "redirection to /dev/tcp or /dev/udp",
                "exfiltration over a raw socket",
            ));
        }
        if is_disk(dev) {
            return Err(Violation::new(
                format!("write to /dev/{dev}"),
                "wipes a disk",
            ));
        }
    }
    const SYSTEM: &[&str] = &[
        "etc", "bin", "sbin", "usr", "boot", "lib", "lib32", "lib64", "sys", "proc", "dev",
    ];
    if SYSTEM.contains(&first.as_str()) {
        return Err(Violation::new(
            format!("write to \"/{first}\""),
            "writes to a system path",
        ));
    }
    Ok(())
}

fn chmod(args: &[Word]) -> Judged {
    let ops = positionals(args, &[]);
    let Some(mode) = ops.first().map(|w| w.text.as_str()) else {
        return Ok(());
    };
    let world_writable = if !mode.is_empty() && mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        let others = mode.as_bytes()[mode.len() - 1] - b'0';
        others & 2 != 0
    } else {
        mode.split(',').any(|clause| {
            let who_end = clause.find(['+', '=', '-']).unwrap_or(clause.len());
            let (who, rest) = clause.split_at(who_end);
            let everyone = who.contains('a') || who.contains('o');
            everyone && (rest.starts_with('+') || rest.starts_with('=')) && rest.contains('w')
        })
    };
    if world_writable {
        return Err(Violation::new(
            format!("chmod {mode}"),
            "makes files world-writable",
        ));
    }
    Ok(())
}

fn copy_target(name: &str, args: &[Word]) -> Judged {
    for (i, w) in args.iter().enumerate() {
        let t = w.text.as_str();
        if let Some(dir) = t.strip_prefix("--target-directory=") {
            return write_target(dir);
        }
        if t == "-t" || t == "--target-directory" {
            return args.get(i + 1).map_or(Ok(()), |d| write_target(&d.text));
        }
        if let Some(dir) = t.strip_prefix("-t")
            && !dir.is_empty()
            && !t.starts_with("--")
        {
            return write_target(dir);
        }
    }
    let valued: &[&str] = if name == "install" {
        &["m", "o", "g", "S"]
    } else {
        &["S"]
    };
    let ops = positionals(args, valued);
    let install_dir = name == "install" && args.iter().any(|w| w.text == "-d");
    if (ops.len() >= 2 || (install_dir && ops.len() == 1))
        && let Some(dest) = ops.last()
    {
        return write_target(&dest.text);
    }
    Ok(())
}

fn dd(args: &[Word]) -> Judged {
    for w in args {
        if let Some(of) = w.text.strip_prefix("of=") {
            write_target(of)?;
        }
    }
    Ok(())
}

fn sed_in_place(args: &[Word]) -> Judged {
    let in_place = args.iter().any(|w| {
        let t = w.text.as_str();
        t.starts_with("--in-place")
            || (t.starts_with('-')
                && !t.starts_with("--")
                && t[1..].split('.').next().is_some_and(|f| f.contains('i')))
    });
    if !in_place {
        return Ok(());
    }
    let script_given = args.iter().any(|w| {
        let t = w.text.as_str();
        t == "-e" || t == "-f" || t.starts_with("--expression") || t.starts_with("--file")
    });
    let ops = positionals(args, &["e", "f", "l"]);
    for w in ops.iter().skip(usize::from(!script_given)) {
        write_target(&w.text)?;
    }
    Ok(())
}

fn curl_upload(args: &[Word]) -> Judged {
    // Short options that take a value in curl; the value may be attached or the next word.
    const VALUED: &str = "dTFHouXAebcxwmKErYyzCDPQUtq";
    let upload = |flag: &str, value: &str| -> bool {
        match flag {
            "d" | "data" | "data-binary" | "data-ascii" | "json" => {
                value.starts_with('@') && value != "@-"
            }
            "data-urlencode" => value.contains('@') && !value.ends_with("@-"),
            "T" | "upload-file" => value != "-" && !value.is_empty(),
            "F" | "form" => value.contains("=@") || value.contains("=<"),
            _ => false,
        }
    };
    let mut i = 0;
    while let Some(w) = args.get(i) {
        let t = w.text.as_str();
        i += 1;
        if let Some(long) = t.strip_prefix("--") {
            let (flag, value) = match long.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (long, None),
            };
            let value = value.or_else(|| args.get(i).map(|w| w.text.clone()));
            if value.as_deref().is_some_and(|v| upload(flag, v)) {
                return Err(Violation::new("curl uploading a file", "exfiltration"));
            }
            continue;
        }
        if t.len() > 1 && t.starts_with('-') {
            for (k, c) in t[1..].char_indices() {
                if VALUED.contains(c) {
                    let attached = &t[1 + k + c.len_utf8()..];
                    let value = if attached.is_empty() {
                        i += 1;
                        args.get(i - 1).map_or("", |w| w.text.as_str())
                    } else {
                        attached
                    };
                    if upload(&c.to_string(), value) {
                        return Err(Violation::new("curl uploading a file", "exfiltration"));
                    }
                    break;
                }
            }
        }
    }
    Ok(())
}

/// `nc`-like tools fed from a file or running a program. (Fed from a pipe is judged by the
/// pipeline, which first checks whether the data are credentials.)
fn raw_socket(name: &str, args: &[Word], redirs: &[Redir]) -> Judged {
    if redirs.iter().any(|r| {
        matches!(
            r.kind,
            RedirKind::In | RedirKind::HereString | RedirKind::HereDoc
        ) && r.target.text != "/dev/null"
    }) {
        return Err(Violation::new(
            format!("file fed into {name}"),
            "exfiltration over a raw socket",
        ));
    }
    let exec = args.iter().any(|w| {
        let t = w.text.as_str();
        let upper = t.to_ascii_uppercase();
        (name != "socat"
            && (t == "-e"
                || t == "-c"
                || t.starts_with("--exec")
                || t.starts_with("--sh-exec")
                || t.starts_with("--lua-exec")))
            || (name == "socat" && (upper.starts_with("EXEC:") || upper.starts_with("SYSTEM:")))
    });
    if exec {
        return Err(Violation::new(
            format!("{name} running a program"),
            "remote shell",
        ));
    }
    if name == "socat" {
        let reads_file = args.iter().any(|w| {
            let u = w.text.to_ascii_uppercase();
            u.starts_with("FILE:")
                || u.starts_with("OPEN:")
                || u.starts_with("GOPEN:")
                || u == "-"
                || u.starts_with("STDIN")
        });
        if reads_file {
            return Err(Violation::new(
                "socat sending a file",
                "exfiltration over a raw socket",
            ));
        }
    }
    Ok(())
}

/// `host:path`, `user@host:path`, `rsync://…` — not `./a:b` or `/x:y`.
fn is_remote(t: &str) -> bool {
    if t.starts_with("rsync://") || t.starts_with("scp://") || t.starts_with("sftp://") {
        return true;
    }
    match t.find(':') {
        Some(c) => {
            let before = &t[..c];
            !before.is_empty() && !before.contains('/') && !t.starts_with('.')
        }
        None => false,
    }
}

fn remote_copy(name: &str, args: &[Word]) -> Judged {
    let valued: &[&str] = if name == "scp" {
        &["P", "i", "o", "F", "c", "l", "S", "J"]
    } else {
        &["e", "f", "T", "B"]
    };
    let ops = positionals(args, valued);
    if ops.len() >= 2
        && let Some(dest) = ops.last()
        && is_remote(&dest.text)
    {
        return Err(Violation::new(
            format!("{name} to a remote host"),
            "exfiltration",
        ));
    }
    Ok(())
}

/// Roots and file names that hold credentials.
const CREDENTIAL_ROOTS: &[&str] = &[
    "~/.ssh",
    "~/.aws",
    "~/.gnupg",
    "~/.config/gcloud",
    "~/.kube",
    "~/.docker/config.json",
    "~/.netrc",
    "~/.git-credentials",
    "~/.pgpass",
    "~/.azure",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/root",
];
static CREDENTIAL_ROOT_PATHS: LazyLock<Vec<NormPath>> = LazyLock::new(|| {
    CREDENTIAL_ROOTS
        .iter()
        .filter_map(|r| normalize(r).ok())
        .collect()
});
const CREDENTIAL_FILES: &[&str] = &[
    ".env",
    ".netrc",
    ".pgpass",
    ".git-credentials",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "credentials",
    ".npmrc",
    ".pypirc",
];

/// Whether a word names a credential file (also after `@` or `=`: `-d @~/.ssh/id_rsa`).
pub(crate) fn mentions_credentials(text: &str) -> bool {
    let candidates = [
        Some(text),
        text.rsplit_once('@').map(|x| x.1),
        text.rsplit_once('=').map(|x| x.1),
    ];
    candidates.into_iter().flatten().any(|t| {
        if !(t.contains('/')
            || t.starts_with('.')
            || t.starts_with('~')
            || t.starts_with("id_")
            || t == "credentials")
        {
            return false;
        }
        let Ok(p) = normalize(t) else { return false };
        let base = p.comps.last().map(String::as_str).unwrap_or("");
        CREDENTIAL_FILES.contains(&base)
            || base.starts_with(".env.")
            || CREDENTIAL_ROOT_PATHS.iter().any(|r| p.is_under(r))
    })
}

#[cfg(test)]
mod tests;
