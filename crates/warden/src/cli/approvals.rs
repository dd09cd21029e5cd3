//! `warden approvals list|show|approve|deny`: the human-approval queue of tool calls, via the
//! running gateway (so a waiting request is released at once) or, with no gateway running, the
//! data dir (the decision is stored and recorded; no request is waiting then).

use std::time::SystemTime;

use anyhow::bail;
use clap::{Parser, Subcommand};
use http::Method;
use serde_json::{Value, json};
use warden_state::{ApprovalFilter, ApprovalStatus, DecideOutcome, Decision};

use super::live::{self, Live, LiveArgs};
use crate::admin::DecideRequest;
use crate::config::Overrides;

/// `warden approvals …`
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List approvals, newest first (pending only unless --all or --status).
    List(ListArgs),
    /// Show one approval.
    Show(IdArgs),
    /// Let the held tool call through to the agent.
    Approve(DecideArgs),
    /// Refuse the held tool call (the agent gets an explanation or an error, per the rule).
    Deny(DecideArgs),
}

/// Flags of `warden approvals list`.
#[derive(Debug, Parser)]
pub struct ListArgs {
    /// Every status, not only pending.
    #[arg(long)]
    pub all: bool,
    /// Only this status: pending, approved, denied, expired.
    #[arg(long, conflicts_with = "all")]
    pub status: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    live: LiveArgs,
}

/// Flags of `warden approvals show`.
#[derive(Debug, Parser)]
pub struct IdArgs {
    /// The approval id (`apr_…`).
    pub id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    live: LiveArgs,
}

/// Flags of `warden approvals approve|deny`.
#[derive(Debug, Parser)]
pub struct DecideArgs {
    /// The approval id (`apr_…`).
    pub id: String,
    /// Why (recorded in the ledger; on deny the agent is told).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    live: LiveArgs,
}

/// Runs `warden approvals …`.
pub fn run(base: Overrides, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::List(a) => list(base, a),
        Command::Show(a) => show(base, a),
        Command::Approve(a) => decide(base, a, Decision::Approve),
        Command::Deny(a) => decide(base, a, Decision::Deny),
    }
}

fn list(base: Overrides, a: ListArgs) -> anyhow::Result<()> {
    let status = match (&a.status, a.all) {
        (_, true) => None,
        (Some(s), _) => match ApprovalStatus::parse(s) {
            Some(st) => Some(st),
            None => bail!("`{s}` is not a status; use pending, approved, denied or expired"),
        },
        (None, false) => Some(ApprovalStatus::Pending),
    };
    let answer = match live::locate(&base, &a.live)? {
        Live::Gateway { base, token } => {
            let mut path = format!("/admin/approvals?limit={}", a.limit);
            path.push_str(&format!(
                "&status={}",
                status.map_or("all", ApprovalStatus::name)
            ));
            live::call(&base, &token, Method::GET, &path, None)?.ok()?
        }
        Live::Offline(config) => {
            let store = live::open_store(&config)?;
            let list = store.list_approvals(
                &ApprovalFilter {
                    status,
                    limit: Some(a.limit),
                },
                SystemTime::now(),
            )?;
            json!({"approvals": list})
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let rows = answer["approvals"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!(
            "no {}approvals",
            if status == Some(ApprovalStatus::Pending) {
                "pending "
            } else {
                ""
            }
        );
        return Ok(());
    }
    for r in &rows {
        println!("{}", line(r));
    }
    Ok(())
}

/// One approval on one line: id, status, tool, who, rule, expiry.
fn line(r: &Value) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
    format!(
        "{}  {:<8}  {}  tenant={} agent={} session={}  rule={}  expires={}{}",
        s("id"),
        s("status"),
        s("tool"),
        s("tenant"),
        s("agent"),
        s("session"),
        s("rule"),
        s("expires_at"),
        r["approver"]
            .as_str()
            .map(|a| format!("  by={a}"))
            .unwrap_or_default()
    )
}

fn show(base: Overrides, a: IdArgs) -> anyhow::Result<()> {
    let answer = match live::locate(&base, &a.live)? {
        Live::Gateway { base, token } => live::call(
            &base,
            &token,
            Method::GET,
            &format!("/admin/approvals/{}", a.id),
            None,
        )?
        .ok()?,
        Live::Offline(config) => {
            let store = live::open_store(&config)?;
            match store.approval(&a.id)? {
                Some(ap) => json!({"approval": ap}),
                None => bail!("no approval {}", a.id),
            }
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        let r = &answer["approval"];
        println!("{}", line(r));
        println!("  reason: {}", r["reason"].as_str().unwrap_or("-"));
        println!(
            "  arguments (redacted): {}",
            r["arguments"].as_str().unwrap_or("-")
        );
    }
    Ok(())
}

fn decide(base: Overrides, a: DecideArgs, decision: Decision) -> anyhow::Result<()> {
    let verb = match decision {
        Decision::Approve => "approve",
        Decision::Deny => "deny",
    };
    let req = DecideRequest {
        actor: Some(a.live.actor()),
        reason: a.reason.clone(),
    };
    let answer = match live::locate(&base, &a.live)? {
        Live::Gateway { base, token } => live::call(
            &base,
            &token,
            Method::POST,
            &format!("/admin/approvals/{}/{verb}", a.id),
            Some(&serde_json::to_value(&req)?),
        )?
        .ok()?,
        Live::Offline(config) => {
            let store = live::open_store(&config)?;
            let actor = a.live.actor();
            match store.decide_approval(
                &a.id,
                decision,
                &actor,
                a.reason.as_deref(),
                SystemTime::now(),
            )? {
                DecideOutcome::Decided(ap) => {
                    let details = crate::approve::decided_details(&ap, &actor);
                    let entry = live::record_offline(&config, "approval_decided", details)?;
                    json!({"approval": ap, "entry": entry, "offline": true})
                }
                DecideOutcome::AlreadyDecided(ap) => {
                    bail!("approval {} is already {}", a.id, ap.status.name())
                }
                DecideOutcome::NotFound => bail!("no approval {}", a.id),
            }
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        let r = &answer["approval"];
        println!(
            "{} {} (tool {}){}",
            if decision == Decision::Approve {
                "approved"
            } else {
                "denied"
            },
            a.id,
            r["tool"].as_str().unwrap_or("-"),
            if answer["offline"].as_bool() == Some(true) {
                "; no gateway is running, so no request was waiting for it"
            } else {
                ""
            }
        );
    }
    Ok(())
}
