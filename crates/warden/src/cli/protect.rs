//! `warden protect [FILE|-]`: what content protection would find and do to a payload, and
//! `warden protect --corpus FILE`: precision and recall of the detectors on a labelled corpus.
//!
//! The payload is a provider request or response body (every content string is scanned, as
//! the gateway does) or plain text (path `$`). Nothing is sent anywhere and nothing is
//! recorded; tokenize uses a throwaway vault.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use serde_json::{Value, json};
use warden_protect::policy::Direction;
use warden_protect::transform::Context;
use warden_protect::vault::Vault;

use crate::config::{Config, Overrides};

/// Flags of `warden protect`.
#[derive(Debug, Parser)]
pub struct Args {
    /// The payload: a JSON body (OpenAI, Anthropic, Gemini, Ollama) or plain text; `-` or
    /// nothing reads standard input.
    pub file: Option<PathBuf>,
    /// Output: `text` (a table and the transformed payload) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Config file whose `[protect]` section applies (default: ./warden.toml if present,
    /// else the built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Treat the payload as a `request` (sent to the model) or a `response` (the model's).
    #[arg(long, default_value = "request", value_parser = ["request", "response"])]
    pub direction: String,
    /// Tenant whose `[protect.tenants.*]` overrides apply.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Instead of a payload, evaluate the detectors on a labelled corpus (JSON lines, as in
    /// `crates/protect/corpus/cases.jsonl`) and print precision and recall per type.
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub corpus: Option<PathBuf>,
}

/// One detection, as `--format json` prints it.
#[derive(Debug, serde::Serialize)]
struct Row {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    start: usize,
    end: usize,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    would: Option<&'static str>,
}

/// Runs the command; exit 0 unless the input or the config could not be read.
pub fn run(base: Overrides, args: Args) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref(), &base)?;
    let cfg = config.policy.protect.clone();
    if let Some(corpus) = &args.corpus {
        let text = std::fs::read_to_string(corpus)
            .with_context(|| format!("cannot read the corpus {}", corpus.display()))?;
        let cases = warden_protect::eval::parse_cases(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", corpus.display()))?;
        let report = warden_protect::eval::evaluate(&cases, |t| cfg.scanner.scan(t));
        match args.format.as_str() {
            "json" => println!("{}", serde_json::to_string_pretty(&report)?),
            _ => print!("{report}"),
        }
        return Ok(());
    }

    let mut input = Vec::new();
    match args.file.as_deref() {
        None => {
            std::io::stdin().read_to_end(&mut input)?;
        }
        Some(p) if p.as_os_str() == "-" => {
            std::io::stdin().read_to_end(&mut input)?;
        }
        Some(p) => {
            input = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        }
    }
    let text = String::from_utf8(input).context("the payload is not UTF-8 text")?;
    let direction = if args.direction == "response" {
        Direction::Response
    } else {
        Direction::Request
    };
    let vault = Vault::new(Vault::generate_key(), std::time::Duration::from_secs(60));
    let ctx = Context {
        direction,
        tenant: args.tenant.as_deref(),
        session: None,
        vault: Some(&vault),
    };
    let mut rows = Vec::new();
    let mut blocked = false;
    let mut scan = |path: &str, s: &mut String| {
        let Some(o) = crate::pipeline::protect::scan_and_apply(&cfg, s, &ctx) else {
            return;
        };
        blocked |= o.blocked;
        for f in &o.findings {
            rows.push(Row {
                kind: f.kind.to_string(),
                path: path.to_string(),
                start: f.start,
                end: f.end,
                action: f.action.name(),
                would: f.would.map(|a| a.name()),
            });
        }
        if let Some(t) = o.text {
            *s = t;
        }
    };
    let transformed = match serde_json::from_str::<Value>(&text) {
        Ok(mut v @ (Value::Object(_) | Value::Array(_))) => {
            warden_protocol::visit_content_strings(&mut v, &mut scan);
            v
        }
        _ => {
            let mut s = text;
            scan("$", &mut s);
            Value::String(s)
        }
    };
    if args.format == "json" {
        let out = json!({"findings": rows, "blocked": blocked, "transformed": transformed});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("nothing found");
    } else {
        println!("{:<22} {:<12} {:<10} path", "type", "action", "bytes");
        for r in &rows {
            let action = match r.would {
                Some(w) => format!("{} (would {w})", r.action),
                None => r.action.to_string(),
            };
            println!(
                "{:<22} {:<12} {:<10} {}",
                r.kind,
                action,
                format!("{}..{}", r.start, r.end),
                r.path
            );
        }
    }
    println!(
        "\nblocked: {}\n\ntransformed:\n{}",
        if blocked { "yes" } else { "no" },
        match &transformed {
            Value::String(s) => s.clone(),
            v => serde_json::to_string_pretty(v)?,
        }
    );
    Ok(())
}
