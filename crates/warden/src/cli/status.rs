//! `warden status`: what the running gateway is doing (or, with none running, what the data dir
//! holds): readiness, auth mode, ledger size, streams in flight, kills, and spend.

use clap::Parser;
use http::Method;
use serde_json::{Value, json};
use warden_state::{Period, Scope, SpendFilter};

use super::live::{self, Live, LiveArgs};
use crate::config::Overrides;
use crate::pipeline::decide::usd;

/// Flags of `warden status`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    live: LiveArgs,
}

/// Prints the status.
pub fn run(base: Overrides, a: Args) -> anyhow::Result<()> {
    let status = match live::locate(&base, &a.live)? {
        Live::Gateway { base, token } => {
            let mut s = live::call(&base, &token, Method::GET, "/admin/status", None)?.ok()?;
            s["gateway"] = json!(base);
            s
        }
        Live::Offline(config) => {
            let store = live::open_store(&config)?;
            let top = |scope| -> anyhow::Result<Vec<warden_state::SpendRow>> {
                let mut rows = store.spend(&SpendFilter {
                    scope: Some(scope),
                    subject: None,
                    period: Some(Period::Total),
                    limit: 1000,
                })?;
                rows.sort_by_key(|r| std::cmp::Reverse(r.spent_micros));
                rows.truncate(10);
                Ok(rows)
            };
            let keys = store.list_keys()?;
            json!({
                "gateway": null,
                "auth": {"mode": config.auth, "keys": keys.len(), "active_keys": keys.iter().filter(|k| k.revoked_at.is_none()).count()},
                "kills": store.kills()?,
                "approvals_pending": store.list_approvals(
                    &warden_state::ApprovalFilter {
                        status: Some(warden_state::ApprovalStatus::Pending),
                        limit: Some(100),
                    },
                    std::time::SystemTime::now(),
                )?,
                "spend": {
                    "total": top(Scope::Global)?.first(),
                    "top_tenants": top(Scope::Tenant)?,
                    "top_agents": top(Scope::Agent)?,
                    "top_keys": top(Scope::Key)?,
                },
            })
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    print(&status);
    Ok(())
}

fn print(s: &Value) {
    match s["gateway"].as_str() {
        Some(g) => println!(
            "gateway   {g}  version {}  up {} s  {}",
            s["version"].as_str().unwrap_or("?"),
            s["uptime_s"].as_u64().unwrap_or(0),
            if s["ready"].as_bool() == Some(true) {
                "ready"
            } else {
                "NOT READY"
            }
        ),
        None => println!("gateway   not running (showing the data dir)"),
    }
    println!(
        "auth      mode {}{}, {} active virtual key(s)",
        s["auth"]["mode"].as_str().unwrap_or("?"),
        match s["auth"]["keys_required"].as_bool() {
            Some(true) => " (virtual keys required)",
            Some(false) => " (pass-through)",
            None => "",
        },
        s["auth"]["active_keys"].as_u64().unwrap_or(0)
    );
    if let Some(l) = s.get("ledger").filter(|l| !l.is_null()) {
        println!(
            "ledger    {} entries, {}",
            l["size"].as_u64().unwrap_or(0),
            if l["healthy"].as_bool() == Some(true) {
                "healthy"
            } else {
                "FAILED"
            }
        );
    }
    if let Some(n) = s["streams_in_flight"].as_u64() {
        println!("streams   {n} in flight");
    }
    let kills = s["kills"].as_array().cloned().unwrap_or_default();
    if kills.is_empty() {
        println!("kills     none");
    }
    for k in kills {
        let t = &k["target"];
        println!(
            "KILLED    {} {}  by {}: {}",
            t["kind"].as_str().unwrap_or("?"),
            t["id"].as_str().unwrap_or(""),
            k["actor"].as_str().unwrap_or("?"),
            k["reason"].as_str().unwrap_or("")
        );
    }
    let pending = s["approvals_pending"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if pending.is_empty() {
        println!("approvals none pending");
    }
    for p in pending {
        println!(
            "WAITING   {} {}  rule {} (warden approvals approve|deny {})",
            p["id"].as_str().unwrap_or("?"),
            p["tool"].as_str().unwrap_or("?"),
            p["rule"].as_str().unwrap_or("?"),
            p["id"].as_str().unwrap_or("?"),
        );
    }
    let sp = &s["spend"];
    let total = &sp["total"];
    println!(
        "spend     {} total, {} requests, {} input / {} output tokens",
        usd(total["spent_micros"].as_i64().unwrap_or(0)),
        total["requests"].as_u64().unwrap_or(0),
        total["input_tokens"].as_u64().unwrap_or(0),
        total["output_tokens"].as_u64().unwrap_or(0)
    );
    for (title, key) in [
        ("tenants", "top_tenants"),
        ("agents", "top_agents"),
        ("keys", "top_keys"),
    ] {
        let rows = sp[key].as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            continue;
        }
        println!("  top {title}:");
        for r in rows {
            println!(
                "    {:<24} {:>12}  {:>6} req",
                r["subject"].as_str().unwrap_or("?"),
                usd(r["spent_micros"].as_i64().unwrap_or(0)),
                r["requests"].as_u64().unwrap_or(0)
            );
        }
    }
}
