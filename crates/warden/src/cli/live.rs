//! How commands that act on live state (`keys`, `kill`, `unkill`, `status`) reach it: the
//! running gateway's admin API when there is one (so a kill takes effect at once), else the data
//! dir directly (the state store, plus the ledger for the record of the action).
//!
//! The gateway is found through `--gateway URL` / `WARDEN_GATEWAY`, else
//! `<data-dir>/gateway.json`; the token comes from `WARDEN_ADMIN_TOKEN`, else the admin token
//! file. A `gateway.json` left by a gateway that died is detected (connection refused) and
//! ignored. This module owns the transport, not what the commands print.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::Args as ClapArgs;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value};

use crate::config::{Config, Overrides};

/// Flags shared by the live-state commands.
#[derive(Debug, Clone, ClapArgs)]
pub struct LiveArgs {
    /// The running gateway's base URL (default: from <data-dir>/gateway.json).
    #[arg(long, env = "WARDEN_GATEWAY", value_name = "URL", global = true)]
    pub gateway: Option<String>,
    /// Config file (for the data dir and, offline, the ledger's signing key).
    #[arg(long, short, env = "WARDEN_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Who is acting, recorded in the ledger (default: $USER).
    #[arg(long, value_name = "NAME", global = true)]
    pub actor: Option<String>,
}

impl LiveArgs {
    /// The actor recorded with an action.
    pub fn actor(&self) -> String {
        self.actor
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .map(|u| format!("cli:{u}"))
            .unwrap_or_else(|| "cli".into())
    }
}

/// Where live state is.
pub enum Live {
    /// A running gateway's admin API.
    Gateway {
        /// `http://host:port`.
        base: String,
        /// The admin token.
        token: String,
    },
    /// No gateway runs: the data dir, opened directly.
    Offline(Box<Config>),
}

/// An admin API answer.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl Answer {
    /// The body, or an error carrying the API's message.
    pub fn ok(self) -> anyhow::Result<Value> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let message = self.body["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.body.to_string());
        Err(anyhow!("the gateway answered {}: {message}", self.status))
    }
}

/// Finds the running gateway, or falls back to the data dir.
pub fn locate(base: &Overrides, args: &LiveArgs) -> anyhow::Result<Live> {
    let config = Config::load(args.config.as_deref(), base)?;
    let url = match &args.gateway {
        Some(u) => Some(u.trim_end_matches('/').to_string()),
        None => std::fs::read(config.data_dir.join("gateway.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<crate::server::GatewayInfo>(&b).ok())
            .map(|info| format!("http://{}", info.listen)),
    };
    let Some(url) = url else {
        return Ok(Live::Offline(Box::new(config)));
    };
    let explicit = args.gateway.is_some();
    let token = crate::admin::read_token(&config.admin_token_file());
    match call(
        &url,
        token.as_deref().unwrap_or(""),
        Method::GET,
        "/healthz",
        None,
    ) {
        Ok(_) => {
            let token = token.with_context(|| {
                format!(
                    "a gateway runs at {url} but no admin token was found: set WARDEN_ADMIN_TOKEN or pass the --data-dir it uses ({} is missing)",
                    config.admin_token_file().display()
                )
            })?;
            Ok(Live::Gateway { base: url, token })
        }
        Err(e) if explicit => Err(e.context(format!("cannot reach the gateway at {url}"))),
        // A gateway.json left behind by a gateway that is gone.
        Err(_) => Ok(Live::Offline(Box::new(config))),
    }
}

/// One admin API call.
pub fn call(
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Answer> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    runtime.block_on(async {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let bytes = body
            .map(|b| Bytes::from(serde_json::to_vec(b).expect("JSON serializes")))
            .unwrap_or_default();
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(bytes))
            .with_context(|| format!("`{base}{path}` is not a valid URL"))?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
            .await
            .map_err(|_| anyhow!("the gateway did not answer within 30 s"))??;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        Ok(Answer { status, body })
    })
}

/// Opens the data dir's state store (no gateway running).
pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn warden_state::Store>> {
    let store = warden_state::SqliteStore::open(&config.state_dir()).with_context(|| {
        format!(
            "cannot open the state store in {}",
            config.state_dir().display()
        )
    })?;
    Ok(Arc::new(store))
}

/// Records an operator action in the data dir's ledger (no gateway running).
pub fn record_offline(
    config: &Config,
    event: &str,
    details: Map<String, Value>,
) -> anyhow::Result<Option<u64>> {
    let Some(ledger) = crate::audit::open(config)? else {
        return Ok(None);
    };
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let recorder =
        crate::pipeline::record::Recorder::new(ready, Some(ledger.clone()), config.audit.capture);
    let index = recorder
        .event_blocking(event, details)
        .map_err(|e| anyhow!("cannot record `{event}` in the ledger: {e}"))?;
    drop(recorder);
    if let Ok(l) = Arc::try_unwrap(ledger) {
        l.close().context("cannot close the ledger")?;
    }
    Ok(index)
}

/// Fails with a clear message when a command needs a running gateway.
pub fn need_gateway(what: &str) -> anyhow::Result<()> {
    bail!("{what} needs a running gateway (none found); start one with `warden serve`")
}
