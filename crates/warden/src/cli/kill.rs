//! `warden kill …` / `warden unkill …`: the kill switch, via the running gateway (so in-flight
//! streams are cut at once) or, with no gateway running, the data dir.

use std::time::SystemTime;

use anyhow::bail;
use clap::{ArgGroup, Parser};
use http::Method;
use serde_json::{Map, json};
use warden_state::KillTarget;

use super::live::{self, Live, LiveArgs};
use crate::admin::KillRequest;
use crate::config::Overrides;

/// Flags of `warden kill` and `warden unkill`.
#[derive(Debug, Parser)]
#[command(group(ArgGroup::new("target").required(true).args(["session", "agent", "tenant", "key", "all"])))]
pub struct Args {
    /// A session (`x-warden-session`).
    #[arg(long)]
    pub session: Option<String>,
    /// An agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// A tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// A virtual key id (`key_…`).
    #[arg(long)]
    pub key: Option<String>,
    /// Everything.
    #[arg(long)]
    pub all: bool,
    /// Why (required for kill; recorded in the ledger).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    live: LiveArgs,
}

impl Args {
    fn target(&self) -> KillTarget {
        if let Some(s) = &self.session {
            KillTarget::Session(s.clone())
        } else if let Some(a) = &self.agent {
            KillTarget::Agent(a.clone())
        } else if let Some(t) = &self.tenant {
            KillTarget::Tenant(t.clone())
        } else if let Some(k) = &self.key {
            KillTarget::Key(k.clone())
        } else {
            KillTarget::All
        }
    }
}

/// `warden kill`.
pub fn kill(base: Overrides, a: Args) -> anyhow::Result<()> {
    let Some(reason) = a.reason.clone().filter(|r| !r.trim().is_empty()) else {
        bail!("a kill needs --reason \"…\"; it is recorded in the ledger with who did it");
    };
    let req = KillRequest {
        target: a.target(),
        reason,
        actor: Some(a.live.actor()),
    };
    let answer = match live::locate(&base, &a.live)? {
        Live::Gateway { base, token } => live::call(
            &base,
            &token,
            Method::POST,
            "/admin/kill",
            Some(&serde_json::to_value(&req)?),
        )?
        .ok()?,
        Live::Offline(config) => {
            let store = live::open_store(&config)?;
            let record = store.kill(
                req.target.clone(),
                &req.reason,
                &a.live.actor(),
                SystemTime::now(),
            )?;
            let mut details = Map::new();
            details.insert("actor".into(), json!(record.actor));
            details.insert("target".into(), json!(record.target));
            details.insert("reason".into(), json!(record.reason));
            details.insert("streams_cut".into(), json!(0));
            let entry = live::record_offline(&config, "kill", details)?;
            json!({"killed": record, "streams_cut": 0, "entry": entry, "offline": true})
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!(
            "killed {} ({} stream{} in flight cut){}",
            req.target,
            answer["streams_cut"].as_u64().unwrap_or(0),
            if answer["streams_cut"].as_u64() == Some(1) {
                ""
            } else {
                "s"
            },
            if answer["offline"].as_bool() == Some(true) {
                "; no gateway is running, so it applies from its next start"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// `warden unkill`.
pub fn unkill(base: Overrides, a: Args) -> anyhow::Result<()> {
    let req = KillRequest {
        target: a.target(),
        reason: a.reason.clone().unwrap_or_default(),
        actor: Some(a.live.actor()),
    };
    let answer = match live::locate(&base, &a.live)? {
        Live::Gateway { base, token } => live::call(
            &base,
            &token,
            Method::POST,
            "/admin/unkill",
            Some(&serde_json::to_value(&req)?),
        )?
        .ok()?,
        Live::Offline(config) => {
            let store = live::open_store(&config)?;
            if !store.kills()?.iter().any(|k| k.target == req.target) {
                bail!("{} is not killed", req.target);
            }
            let mut details = Map::new();
            details.insert("actor".into(), json!(a.live.actor()));
            details.insert("target".into(), json!(req.target));
            details.insert("reason".into(), json!(req.reason));
            let entry = live::record_offline(&config, "unkill", details)?;
            let lifted = store.unkill(&req.target)?;
            json!({"lifted": lifted, "entry": entry})
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("lifted the kill of {}", req.target);
    }
    Ok(())
}
