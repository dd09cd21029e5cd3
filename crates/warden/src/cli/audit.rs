//! `warden audit …`: read, prove and verify the ledger, offline.
//!
//! Every command here reads the ledger files directly (read-only, safe while the gateway runs)
//! and never needs the gateway. Exit codes: 0 intact / done, 2 tampered or invalid, 1 usage or
//! I/O error.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::Value;
use warden_ledger::log::LedgerReader;
use warden_ledger::note::NoteVerifier;
use warden_ledger::receipt::Receipt;
use warden_ledger::verify::{VerifyOptions, verify_ledger, verify_receipt_against};

use crate::audit::resolve_ledger_dir;
use crate::config::{Config, DEFAULT_DATA_DIR, Overrides};

/// `warden audit …`
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the verifier (public) key in C2SP vkey form: name+hexid+base64(0x01‖pubkey).
    Pubkey(PubkeyArgs),
    /// Show one entry (pretty JSON, or --raw for the exact hashed bytes) or list entries.
    Show(ShowArgs),
    /// Export entries as CSV or JSON lines (stable column order).
    Export(ExportArgs),
    /// Print the inclusion proof (C2SP tlog-proof receipt) of an entry in the latest checkpoint.
    Prove(ProveArgs),
    /// Verify the whole ledger: every entry, chain, checkpoint signature and consistency.
    /// Exit 0 intact, 2 tampered (naming the first bad entry), 1 on usage or I/O errors.
    Verify(VerifyArgs),
    /// Verify a receipt (x-warden-receipt, or `audit prove` output) for an entry, offline.
    VerifyReceipt(VerifyReceiptArgs),
}

/// Where the verifier key comes from.
#[derive(Debug, Parser, Default)]
pub struct KeyArgs {
    /// The log's verifier key (name+hexid+base64), as printed by `warden audit pubkey`. An
    /// auditor passes the key they hold; without it the key is derived from the data dir's
    /// signing key (or WARDEN_SIGNING_KEY), which proves integrity only against that key.
    #[arg(long, env = "WARDEN_VERIFIER_KEY", value_name = "VKEY")]
    pub pubkey: Option<String>,
}

/// Flags of `warden audit verify`.
#[derive(Debug, Parser)]
pub struct VerifyArgs {
    /// A data dir or the ledger folder inside it (default: --data-dir, else ./.warden).
    pub dir: Option<PathBuf>,
    /// A file of anchored checkpoints (audit.anchor) to check the ledger against (truncation).
    #[arg(long, value_name = "PATH")]
    pub anchor: Option<PathBuf>,
    /// Verifier key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Machine output: one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `warden audit verify-receipt`.
#[derive(Debug, Parser)]
pub struct VerifyReceiptArgs {
    /// The receipt: a file holding its text or base64, or `-` for standard input.
    pub receipt: PathBuf,
    /// The exact entry bytes (`warden audit show INDEX --raw`); default: read from the ledger.
    #[arg(long, value_name = "FILE")]
    pub entry: Option<PathBuf>,
    /// Verifier key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Machine output: one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The ledger was found tampered or a receipt invalid: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Flags of `warden audit pubkey`.
#[derive(Debug, Parser)]
pub struct PubkeyArgs {
    /// Config file (for audit.key_file); default ./warden.toml if present.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Entry filters shared by `show` and `export`.
#[derive(Debug, Parser, Default)]
pub struct Filters {
    /// Only entries of this session.
    #[arg(long)]
    pub session: Option<String>,
    /// Only entries of this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only entries of this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only entries at or after this time (RFC 3339 or a prefix of it, e.g. 2026-11-21).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339 or a prefix of it).
    #[arg(long)]
    pub until: Option<String>,
}

impl Filters {
    fn matches(&self, v: &Value) -> bool {
        let field = |k: &str| v.get(k).and_then(Value::as_str);
        let eq =
            |want: &Option<String>, k: &str| want.as_deref().is_none_or(|w| field(k) == Some(w));
        let time = field("time").unwrap_or("");
        eq(&self.session, "session")
            && eq(&self.tenant, "tenant")
            && eq(&self.agent, "agent")
            && self.since.as_deref().is_none_or(|s| time >= s)
            && self.until.as_deref().is_none_or(|u| time < u)
    }
}

/// Flags of `warden audit show`.
#[derive(Debug, Parser)]
pub struct ShowArgs {
    /// Entry index; without it, list entries (one line each).
    pub index: Option<u64>,
    /// Write exactly the hashed entry bytes (no trailing newline).
    #[arg(long, requires = "index")]
    pub raw: bool,
    /// Machine output: the entry, or one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Filters (listing only).
    #[command(flatten)]
    pub filters: Filters,
}

/// Export format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON entry per line.
    Json,
}

/// Flags of `warden audit export`.
#[derive(Debug, Parser)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Filters.
    #[command(flatten)]
    pub filters: Filters,
}

/// Flags of `warden audit prove`.
#[derive(Debug, Parser)]
pub struct ProveArgs {
    /// Entry index.
    pub index: u64,
    /// Print the base64 form (as in the x-warden-receipt header) instead of the text.
    #[arg(long)]
    pub base64: bool,
}

/// The columns of `export --format csv`, in order. Stable: new columns are only appended.
pub const CSV_COLUMNS: [&str; 20] = [
    "index",
    "time",
    "kind",
    "session",
    "tenant",
    "agent",
    "provider",
    "operation",
    "upstream",
    "model",
    "stream",
    "status",
    "outcome",
    "input_tokens",
    "output_tokens",
    "latency_us",
    "request_sha256",
    "response_sha256",
    "request_entry",
    "prev",
];

fn data_dir(base: &Overrides) -> PathBuf {
    base.data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

fn reader(base: &Overrides) -> anyhow::Result<LedgerReader> {
    let dir = resolve_ledger_dir(&data_dir(base));
    LedgerReader::open(&dir).with_context(|| {
        format!(
            "cannot read a ledger at {}; pass --data-dir to point at another",
            dir.display()
        )
    })
}

/// Runs an audit subcommand.
pub fn run(base: Overrides, cmd: Command) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        Command::Pubkey(args) => {
            let config = Config::load(args.config.as_deref(), &base)?;
            let (signer, _) = crate::audit::signing_key(&config, false)?;
            writeln!(out, "{}", signer.verifier().to_vkey())?;
        }
        Command::Show(args) => {
            let reader = reader(&base)?;
            if let Some(index) = args.index {
                let bytes = reader.entry(index)?;
                if args.raw {
                    out.write_all(&bytes)?;
                } else if args.json {
                    out.write_all(&bytes)?;
                    writeln!(out)?;
                } else {
                    let v: Value = serde_json::from_slice(&bytes).context("entry is not JSON")?;
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                }
                return Ok(());
            }
            for item in reader.iter(0)? {
                let (_, bytes) = item?;
                let v: Value = serde_json::from_slice(&bytes).context("entry is not JSON")?;
                if !args.filters.matches(&v) {
                    continue;
                }
                if args.json {
                    out.write_all(&bytes)?;
                    writeln!(out)?;
                } else {
                    writeln!(out, "{}", summary(&v))?;
                }
            }
        }
        Command::Export(args) => {
            let reader = reader(&base)?;
            if let Format::Csv = args.format {
                writeln!(out, "{}", CSV_COLUMNS.join(","))?;
            }
            for item in reader.iter(0)? {
                let (_, bytes) = item?;
                let v: Value = serde_json::from_slice(&bytes).context("entry is not JSON")?;
                if !args.filters.matches(&v) {
                    continue;
                }
                match args.format {
                    Format::Json => {
                        out.write_all(&bytes)?;
                        writeln!(out)?;
                    }
                    Format::Csv => {
                        let row: Vec<String> =
                            CSV_COLUMNS.iter().map(|c| csv(&column(&v, c))).collect();
                        writeln!(out, "{}", row.join(","))?;
                    }
                }
            }
        }
        Command::Verify(args) => verify(&base, args, &mut out)?,
        Command::VerifyReceipt(args) => verify_receipt(&base, args, &mut out)?,
        Command::Prove(args) => {
            let reader = reader(&base)?;
            if args.index >= reader.size() {
                bail!(
                    "entry {} is not in the ledger (it holds {} entries)",
                    args.index,
                    reader.size()
                );
            }
            let receipt = reader.prove(args.index)?;
            if args.base64 {
                writeln!(out, "{}", receipt.to_base64())?;
            } else {
                write!(out, "{}", receipt.to_text())?;
            }
        }
    }
    Ok(())
}

/// One column of an entry as text (nested digests and usage flattened).
fn column(v: &Value, c: &str) -> String {
    let at = |path: &[&str]| {
        let mut cur = v;
        for p in path {
            cur = cur.get(*p).unwrap_or(&Value::Null);
        }
        match cur {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    match c {
        "outcome" => at(&["outcome", "result"]),
        "input_tokens" => at(&["usage", "input_tokens"]),
        "output_tokens" => at(&["usage", "output_tokens"]),
        "request_sha256" => at(&["request", "sha256"]),
        "response_sha256" => at(&["response", "sha256"]),
        other => at(&[other]),
    }
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn summary(v: &Value) -> String {
    let s = |k: &str| column(v, k);
    let who = [s("session"), s("tenant"), s("agent")]
        .into_iter()
        .filter(|x| !x.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    match v.get("kind").and_then(Value::as_str) {
        Some("event") => format!("{:>6}  {}  event {}", s("index"), s("time"), s("event")),
        kind => format!(
            "{:>6}  {}  {:<8} {:<9} {:<22} {:<28} {:>3} {:<16} {}",
            s("index"),
            s("time"),
            kind.unwrap_or("?"),
            s("provider"),
            s("model"),
            s("path"),
            s("status"),
            if s("outcome").is_empty() {
                "forwarded".to_string()
            } else {
                s("outcome")
            },
            who
        ),
    }
}

fn verifier(base: &Overrides, key: &KeyArgs) -> anyhow::Result<NoteVerifier> {
    if let Some(vkey) = &key.pubkey {
        return NoteVerifier::from_vkey(vkey)
            .with_context(|| format!("--pubkey `{vkey}` is not a verifier key"));
    }
    let config = Config::load(None, base)?;
    let (signer, _) = crate::audit::signing_key(&config, false)
        .context("no --pubkey given and no signing key to derive it from")?;
    Ok(signer.verifier())
}

fn verify(base: &Overrides, args: VerifyArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let dir = resolve_ledger_dir(&args.dir.clone().unwrap_or_else(|| data_dir(base)));
    let mut opts = VerifyOptions::new(verifier(base, &args.key)?);
    opts.anchor = args.anchor.clone();
    let report =
        verify_ledger(&dir, &opts).with_context(|| format!("cannot verify {}", dir.display()))?;
    let rate = report.entries as f64 / report.elapsed.as_secs_f64().max(1e-9);
    if args.json {
        let v = serde_json::json!({
            "intact": report.is_intact(),
            "entries": report.entries,
            "verified_size": report.verified_size,
            "checkpoints_checked": report.checkpoints_checked,
            "anchor_checked": report.anchor_checked,
            "sessions": report.sessions,
            "uncommitted_entries": report.uncommitted_entries,
            "torn_tail_bytes": report.torn_tail_bytes,
            "elapsed_ms": report.elapsed.as_millis() as u64,
            "first_bad": report.failure.as_ref().map(|f| serde_json::json!({
                "index": f.index, "kind": f.kind.as_str(), "detail": f.detail,
            })),
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "{}: {} entries, {} checkpoints verified, {} sessions, {:.0} entries/s",
            dir.display(),
            report.entries,
            report.checkpoints_checked,
            report.sessions,
            rate
        )?;
        if let Some(latest) = &report.latest {
            writeln!(
                out,
                "latest checkpoint: size {} root {}",
                latest.size,
                base64_root(latest)
            )?;
        }
        if report.uncommitted_entries > 0 || report.torn_tail_bytes > 0 {
            writeln!(
                out,
                "note: {} entries after the last checkpoint and {} torn bytes at the end (an unfinished write; never acknowledged)",
                report.uncommitted_entries, report.torn_tail_bytes
            )?;
        }
    }
    match &report.failure {
        None => {
            if !args.json {
                writeln!(out, "OK: the ledger is intact")?;
            }
            Ok(())
        }
        Some(f) => Err(Invalid(format!(
            "TAMPERED: first bad entry {}: {}: {}",
            f.index, f.kind, f.detail
        ))
        .into()),
    }
}

fn base64_root(c: &warden_ledger::checkpoint::Checkpoint) -> String {
    c.root.to_base64()
}

fn verify_receipt(
    base: &Overrides,
    args: VerifyReceiptArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let text = if args.receipt.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(&args.receipt)
            .with_context(|| format!("cannot read the receipt {}", args.receipt.display()))?
    };
    let receipt =
        Receipt::parse_any(text.trim()).map_err(|e| Invalid(format!("INVALID receipt: {e}")))?;
    let verifier = verifier(base, &args.key)?;
    let ledger_dir = resolve_ledger_dir(&data_dir(base));
    let ledger = LedgerReader::open(&ledger_dir).ok();
    let entry = match (&args.entry, &ledger) {
        (Some(f), _) => {
            std::fs::read(f).with_context(|| format!("cannot read the entry {}", f.display()))?
        }
        (None, Some(l)) => l.entry(receipt.index())?,
        (None, None) => bail!(
            "no --entry FILE given and no ledger at {} to read entry {} from",
            ledger_dir.display(),
            receipt.index()
        ),
    };
    let check = match &ledger {
        Some(l) => verify_receipt_against(&receipt, &entry, &verifier, l),
        None => warden_ledger::verify::verify_receipt(text.trim(), &entry, &verifier.to_vkey()),
    }
    .map_err(|e| Invalid(format!("INVALID: {e}")))?;
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "valid": true,
                "index": check.index,
                "checkpoint_size": check.checkpoint.size,
                "consistent_with_size": check.consistent_with.as_ref().map(|c| c.size),
            })
        )?;
    } else {
        writeln!(
            out,
            "OK: entry {} is in the log (checkpoint of size {} signed by {})",
            check.index,
            check.checkpoint.size,
            verifier.name()
        )?;
        if let Some(c) = &check.consistent_with {
            writeln!(
                out,
                "OK: the ledger at hand (size {}) is consistent with that checkpoint",
                c.size
            )?;
        }
    }
    Ok(())
}
