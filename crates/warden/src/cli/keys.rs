//! `warden keys create|list|revoke`: virtual API keys, via the running gateway or the data dir.

use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::live::{self, Live, LiveArgs};
use crate::admin::{CreateKey, new_key};
use crate::config::Overrides;

/// `warden keys …`
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a virtual key; it is printed once and only a keyed hash is stored.
    Create(CreateArgs),
    /// List keys (never shows the keys themselves).
    List(ListArgs),
    /// Revoke a key by id (`key_…`); it stops working at once.
    Revoke(RevokeArgs),
}

/// Flags of `warden keys create`.
#[derive(Debug, Parser)]
pub struct CreateArgs {
    /// Tenant the key belongs to (fixes the tenant of its requests).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Agent the key belongs to (fixes the agent of its requests).
    #[arg(long)]
    pub agent: Option<String>,
    /// A label for people.
    #[arg(long)]
    pub name: Option<String>,
    /// USD budget (hard cap) for this key.
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,
    /// Budget period: total (default), day or month.
    #[arg(long, value_name = "PERIOD")]
    pub period: Option<String>,
    /// Models the key may use, comma-separated globs, e.g. 'gpt-4o*,claude-*'.
    #[arg(long, value_name = "GLOBS")]
    pub models: Option<String>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[arg(long)]
    pub tpm: Option<u32>,
    /// Expiry: an RFC 3339 time or a duration from now (30d, 12h).
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    live: LiveArgs,
}

/// Flags of `warden keys list`.
#[derive(Debug, Parser)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    live: LiveArgs,
}

/// Flags of `warden keys revoke`.
#[derive(Debug, Parser)]
pub struct RevokeArgs {
    /// The key id (`key_…`, from `warden keys list`).
    pub id: String,
    #[command(flatten)]
    live: LiveArgs,
}

/// Runs a `keys` command.
pub fn run(base: Overrides, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create(a) => create(&base, a),
        Command::List(a) => list(&base, a),
        Command::Revoke(a) => revoke(&base, a),
    }
}

fn create(base: &Overrides, a: CreateArgs) -> anyhow::Result<()> {
    let req = CreateKey {
        tenant: a.tenant.clone(),
        agent: a.agent.clone(),
        name: a.name.clone(),
        models: a
            .models
            .as_deref()
            .map(|m| {
                m.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        rpm: a.rpm,
        tpm: a.tpm,
        budget_usd: a.budget_usd,
        period: a.period.clone(),
        expires: a.expires.clone(),
        actor: Some(a.live.actor()),
    };
    let answer = match live::locate(base, &a.live)? {
        Live::Gateway { base, token } => live::call(
            &base,
            &token,
            Method::POST,
            "/admin/keys",
            Some(&serde_json::to_value(&req)?),
        )?
        .ok()?,
        Live::Offline(config) => {
            let new = new_key(&req, SystemTime::now()).map_err(anyhow::Error::msg)?;
            let store = live::open_store(&config)?;
            let switched = !store.has_keys()? && config.auth == crate::config::AuthMode::Auto;
            let created = store.create_key(new, SystemTime::now())?;
            let mut details = Map::new();
            details.insert("actor".into(), json!(a.live.actor()));
            details.insert("key".into(), json!(created.info));
            if let Err(e) = live::record_offline(&config, "key_created", details) {
                let _ = store.revoke_key(&created.info.id, SystemTime::now());
                return Err(e.context("the key could not be recorded, so it was revoked again"));
            }
            json!({"key": created.secret, "info": created.info, "auth_switched": switched})
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let key = answer["key"].as_str().context("the answer holds no key")?;
    println!("{key}");
    let info = &answer["info"];
    eprintln!(
        "created {} (tenant {}, agent {}) — this is the only time the key is shown; store it now",
        info["id"].as_str().unwrap_or("?"),
        info["tenant"].as_str().unwrap_or("-"),
        info["agent"].as_str().unwrap_or("-"),
    );
    if answer["auth_switched"].as_bool() == Some(true) {
        eprintln!(
            "note: this is the first virtual key, so auth.mode = auto now requires a virtual key on every request"
        );
    }
    Ok(())
}

fn list(base: &Overrides, a: ListArgs) -> anyhow::Result<()> {
    let keys: Value = match live::locate(base, &a.live)? {
        Live::Gateway { base, token } => {
            live::call(&base, &token, Method::GET, "/admin/keys", None)?.ok()?["keys"].clone()
        }
        Live::Offline(config) => json!(live::open_store(&config)?.list_keys()?),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&keys)?);
        return Ok(());
    }
    let rows = keys.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("no virtual keys; create one with `warden keys create --tenant T --agent A`");
        return Ok(());
    }
    println!(
        "{:<21} {:<8} {:<14} {:<14} {:<16} {:>6} {:>8} {:>12}  created",
        "id", "status", "tenant", "agent", "models", "rpm", "tpm", "budget"
    );
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for k in rows {
        let status = if !k["revoked_at"].is_null() {
            "revoked"
        } else if k["expires_at"].as_u64().is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        };
        let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
        let n = |v: &Value| v.as_u64().map_or("-".into(), |n| n.to_string());
        let models = k["models"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "*".into());
        let budget = k["budget_micros"].as_i64().map_or("-".into(), |b| {
            format!(
                "{}/{}",
                crate::pipeline::decide::usd(b),
                k["budget_period"].as_str().unwrap_or("total")
            )
        });
        let created = k["created_at"].as_u64().map_or("-".into(), |t| {
            crate::pipeline::entry::rfc3339(
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t),
            )[..19]
                .to_string()
        });
        println!(
            "{:<21} {:<8} {:<14} {:<14} {:<16} {:>6} {:>8} {:>12}  {}",
            s(&k["id"]),
            status,
            s(&k["tenant"]),
            s(&k["agent"]),
            models,
            n(&k["rpm"]),
            n(&k["tpm"]),
            budget,
            created
        );
    }
    Ok(())
}

fn revoke(base: &Overrides, a: RevokeArgs) -> anyhow::Result<()> {
    if !a.id.starts_with("key_") {
        bail!(
            "`{}` is not a key id; ids look like key_0123456789abcdef (`warden keys list`)",
            a.id
        );
    }
    match live::locate(base, &a.live)? {
        Live::Gateway { base, token } => {
            let path = format!("/admin/keys/{}?actor={}", a.id, urlencode(&a.live.actor()));
            live::call(&base, &token, Method::DELETE, &path, None)?.ok()?;
        }
        Live::Offline(config) => {
            let store = live::open_store(&config)?;
            if store.revoke_key(&a.id, SystemTime::now())?.is_none() {
                bail!("no key with id `{}`; `warden keys list` shows them", a.id);
            }
            let mut details = Map::new();
            details.insert("actor".into(), json!(a.live.actor()));
            details.insert("key_id".into(), json!(a.id));
            live::record_offline(&config, "key_revoked", details)?;
        }
    }
    println!("revoked {}", a.id);
    Ok(())
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
