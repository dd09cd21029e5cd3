//! Configuration: `warden.toml` (strict), environment and flags, validated once at start-up.
//!
//! Two stages, as in ripgrep's `LowArgs` → `HiArgs`: [`raw`] mirrors the TOML exactly (serde,
//! unknown keys rejected with their line) and [`Config`] is the validated result every other
//! module reads. Validation happens here and only here; a `Config` that exists is usable.
//! Precedence, highest first: command-line flags, `WARDEN_*` environment variables, the file,
//! built-in defaults. This module never logs secrets and never touches the network.

mod policy;
mod protect;
mod raw;
mod tools;
mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use warden_protocol::Provider;

pub use policy::PolicyConfig;
pub use protect::ProtectConfig;
pub use tools::ToolsConfig;
pub use units::{parse_bytes, parse_duration};

/// Default listen address (DESIGN.md "Defaults").
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8474";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = ".warden";
/// Default config file looked for in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "warden.toml";

/// A config that could not be loaded; every variant says where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys / wrong types (the message names the line).
    #[error("{path}: {message}")]
    Syntax {
        /// File path.
        path: String,
        /// toml's message, which includes line, column and the offending key.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("{origin}: `{key}`: {message}")]
    Invalid {
        /// `file:line`, an environment variable, or a flag.
        origin: String,
        /// The key, dotted (`limits.connect_timeout`).
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    Human,
    /// One JSON object per line.
    Json,
}

/// Request and upstream limits.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Largest request body accepted (413 above).
    pub max_request_bytes: usize,
    /// Largest buffered (non-stream) upstream response the gateway holds while recording it.
    pub max_response_bytes: usize,
    /// Largest request head (request line + headers) accepted.
    pub max_header_bytes: usize,
    /// Requests handled at once; more get 503 at once.
    pub max_concurrent_requests: usize,
    /// Upstream TCP+TLS connect timeout (504 `upstream_timeout` on expiry).
    #[serde(serialize_with = "units::ser_duration")]
    pub connect_timeout: Duration,
    /// Time allowed from forwarding a request to the upstream's response headers (504 after).
    #[serde(serialize_with = "units::ser_duration")]
    pub response_timeout: Duration,
    /// Longest silence allowed between two body chunks of an upstream response.
    #[serde(serialize_with = "units::ser_duration")]
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 32 * 1024 * 1024,
            max_response_bytes: 64 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            max_concurrent_requests: 4096,
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// When a ledger entry counts as recorded (`audit.durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Written and fdatasync'd: survives a power loss.
    Fsync,
    /// Written to the operating system, fdatasync'd within `sync_interval`: survives a crash of
    /// Warden, not of the host.
    Write,
}

/// What the ledger keeps of each exchange's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Capture {
    /// Digests, identity, usage and outcome; no prompt or output text.
    Metadata,
    /// Prompts, outputs and tool-call arguments with every value content protection detects
    /// replaced by its type label (`[EMAIL]`), whatever action was taken on the wire.
    Redacted,
    /// Prompts, outputs and tool-call arguments as they crossed the gateway.
    Full,
}

impl Capture {
    /// Whether entries carry content (redacted or not).
    pub fn has_content(self) -> bool {
        self != Capture::Metadata
    }
}

/// The audit ledger's settings (`[audit]`).
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    /// Whether exchanges are recorded in the ledger (the gateway refuses to release what it
    /// cannot record while this is on).
    pub enabled: bool,
    /// What content the ledger keeps.
    pub capture: Capture,
    /// `true`: a stream is held whole until recorded (`audit.stream = "buffer"`).
    pub stream_buffer: bool,
    /// `true`: every request gets a `request` entry before it is forwarded, not only live
    /// streams (`audit.request_entries = "all"`).
    pub request_entries_all: bool,
    /// The log's origin line and signing key name.
    pub origin: String,
    /// Signing key file; default `<data-dir>/ledger/signing.key`.
    pub key_file: Option<PathBuf>,
    /// When a response may be released: after its entry's fdatasync (`audit.durability =
    /// "fsync"`), or after its write with the fdatasync at most `sync_interval` later (`"write"`).
    pub durability: Durability,
    /// With `durability = "write"`: the longest a written entry waits for its fdatasync.
    #[serde(serialize_with = "units::ser_duration")]
    pub sync_interval: Duration,
    /// Group commit: most entries per write + fdatasync.
    pub batch_max_entries: usize,
    /// Group commit: longest wait for concurrent entries to join a batch.
    #[serde(serialize_with = "units::ser_duration")]
    pub batch_max_wait: Duration,
    /// Size at which a new ledger segment file starts.
    pub segment_size: u64,
    /// A second file every signed checkpoint is appended to (ideally on another disk).
    pub anchor: Option<PathBuf>,
    /// A program run with the latest signed checkpoint on stdin, to publish it off the host.
    pub anchor_command: Option<Vec<String>>,
    /// A C2SP tlog-witness: its URL prefix; checkpoints are submitted to `<prefix>/add-checkpoint`.
    pub anchor_witness: Option<String>,
    /// Full capture: content strings longer than this move to content-addressed blobs.
    pub blob_threshold: usize,
    /// How often the anchor command runs (when the log has grown).
    #[serde(serialize_with = "units::ser_duration")]
    pub anchor_interval: Duration,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            enabled: true,
            capture: Capture::Redacted,
            stream_buffer: false,
            request_entries_all: false,
            origin: default_origin(),
            key_file: None,
            durability: Durability::Fsync,
            sync_interval: Duration::from_millis(50),
            batch_max_entries: 256,
            batch_max_wait: Duration::from_micros(200),
            segment_size: 64 << 20,
            anchor: None,
            anchor_command: None,
            anchor_witness: None,
            anchor_interval: Duration::from_secs(10),
            blob_threshold: 4096,
        }
    }
}

/// `warden.local/<hostname>`: distinct per host so checkpoints of two gateways never mix.
fn default_origin() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "localhost".into());
    format!("warden.local/{host}")
}

/// An upstream origin: scheme, authority and an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
    /// Path prefix without a trailing slash (empty for none), e.g. `/openai` for a proxy mount.
    pub path_prefix: String,
}

impl BaseUrl {
    /// Parses `scheme://host[:port][/prefix]`. Query strings and fragments are refused.
    pub fn parse(s: &str) -> Result<BaseUrl, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("`{s}` is not a URL; expected e.g. https://api.openai.com"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "scheme `{scheme}` is not supported; use http or https"
            ));
        }
        if rest.contains(['?', '#']) {
            return Err(format!(
                "`{s}` has a query or fragment; an upstream is an origin with an optional path prefix"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "`{s}` needs a host (and no user:password@; provider credentials are sent as headers)"
            ));
        }
        authority
            .parse::<http::uri::Authority>()
            .map_err(|e| format!("`{authority}` is not a valid host[:port]: {e}"))?;
        Ok(BaseUrl {
            scheme,
            authority: authority.to_string(),
            path_prefix: path.trim_end_matches('/').to_string(),
        })
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme, self.authority, self.path_prefix
        )
    }
}

impl Serialize for BaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One configured upstream.
#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    /// Name; requests reach it under `/<name>/...`.
    pub name: String,
    /// Protocol it speaks.
    pub provider: Provider,
    /// Where it is.
    pub url: BaseUrl,
    /// Whether it serves the provider's root paths (`/v1/chat/completions` with no prefix).
    pub default: bool,
    /// Extra CA certificates (PEM) trusted for this upstream, besides the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// The certificates read from `ca_file` at load time.
    #[serde(skip)]
    pub ca_certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Environment variables holding the provider key injected when callers use virtual keys
    /// (`api_key_env`; the first one set wins). The key itself is never in the config.
    pub api_key_env: Vec<String>,
    /// OpenAI streams: ask for `stream_options.include_usage` when the client did not (and hide
    /// the extra chunk from it), so streams are priced from real usage (`stream_usage`).
    pub stream_usage: bool,
    /// Where this upstream's URL came from (`built-in default`, `warden.toml:12`, `--upstream`, env).
    pub source: String,
}

/// The validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// File the config was read from, if any.
    #[serde(skip)]
    pub file: Option<PathBuf>,
    /// Address the gateway listens on.
    pub listen: SocketAddr,
    /// Whether a non-loopback listen address is allowed.
    pub allow_remote: bool,
    /// Worker threads, each with its own single-threaded runtime; 0 means one per CPU core.
    pub workers: usize,
    /// State directory.
    pub data_dir: PathBuf,
    /// Limits.
    pub limits: Limits,
    /// Every upstream, one default per provider first.
    pub upstreams: Vec<Upstream>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `warden=debug`.
    pub log_level: String,
    /// The audit ledger.
    pub audit: Audit,
    /// How callers authenticate (`[auth]`).
    pub auth: AuthMode,
    /// The admin API (`[admin]`).
    pub admin: Admin,
    /// Rules, budgets and prices (`[policy]`, `[[rules]]`, `[[budgets]]`, `[pricing]`).
    #[serde(skip)]
    pub policy: PolicyConfig,
}

/// How callers authenticate (`auth.mode`, env `WARDEN_AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Pass-through until the first virtual key exists, then virtual keys only.
    Auto,
    /// Every request needs a valid virtual key.
    Keys,
    /// Callers send their own provider keys; identity comes from `x-warden-*` headers.
    Passthrough,
}

impl AuthMode {
    /// Parses `auto`, `keys` or `passthrough`.
    pub fn parse(s: &str) -> Option<AuthMode> {
        match s {
            "auto" => Some(AuthMode::Auto),
            "keys" => Some(AuthMode::Keys),
            "passthrough" => Some(AuthMode::Passthrough),
            _ => None,
        }
    }
}

/// The admin API's settings (`[admin]`).
#[derive(Debug, Clone, Serialize)]
pub struct Admin {
    /// The admin token file; default `<data-dir>/admin.token` (env `WARDEN_ADMIN_TOKEN` wins).
    pub token_file: Option<PathBuf>,
    /// Whether `GET /metrics` is served without the admin token (`admin.metrics = "public"`).
    pub public_metrics: bool,
}

/// Settings from flags and environment that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen` / `WARDEN_LISTEN`.
    pub listen: Option<String>,
    /// `--data-dir` / `WARDEN_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--allow-remote`.
    pub allow_remote: bool,
    /// `--upstream NAME=URL` in order, with the origin to blame in errors.
    pub upstreams: Vec<(String, String, String)>,
    /// `--log-format`.
    pub log_format: Option<String>,
    /// `WARDEN_AUTH_MODE`.
    pub auth_mode: Option<String>,
}

impl Overrides {
    /// Adds `WARDEN_UPSTREAM_<NAME>` variables (below any `--upstream` flags, which win).
    pub fn with_env_upstreams(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut env: Vec<(String, String, String)> = vars
            .into_iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("WARDEN_UPSTREAM_")?;
                Some((name.to_ascii_lowercase().replace('_', "-"), v, k.clone()))
            })
            .collect();
        env.sort();
        env.append(&mut self.upstreams);
        self.upstreams = env;
        self
    }
}

impl Config {
    /// Loads `path` (or `./warden.toml` when present and `path` is `None`) and applies overrides.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let implicit = Path::new(DEFAULT_CONFIG_FILE);
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None if implicit.is_file() => Some(implicit.to_path_buf()),
            None => None,
        };
        let (raw, text) = match &file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                (raw::parse(&text, &p.display().to_string())?, text)
            }
            None => (raw::RawConfig::default(), String::new()),
        };
        let name = file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<defaults>".into());
        let mut config = raw::validate(raw, &text, &name)?;
        config.file = file;
        config.apply(overrides)?;
        Ok(config)
    }

    /// Parses a config from a string (tests and `config check -`).
    pub fn from_str(text: &str, name: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let raw = raw::parse(text, name)?;
        let mut config = raw::validate(raw, text, name)?;
        config.apply(overrides)?;
        Ok(config)
    }

    fn apply(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        if let Some(listen) = &o.listen {
            self.listen = listen.parse().map_err(|e| ConfigError::Invalid {
                origin: "--listen / WARDEN_LISTEN".into(),
                key: "server.listen".into(),
                message: format!("`{listen}` is not an address like 127.0.0.1:8474: {e}"),
            })?;
        }
        if let Some(dir) = &o.data_dir {
            self.data_dir = dir.clone();
        }
        self.allow_remote |= o.allow_remote;
        if let Some(m) = &o.auth_mode {
            self.auth = AuthMode::parse(m).ok_or_else(|| ConfigError::Invalid {
                origin: "WARDEN_AUTH_MODE".into(),
                key: "auth.mode".into(),
                message: format!("`{m}` is not one of: auto, keys, passthrough"),
            })?;
        }
        if let Some(f) = &o.log_format {
            self.log_format = raw::log_format(f).map_err(|message| ConfigError::Invalid {
                origin: "--log-format".into(),
                key: "log.format".into(),
                message,
            })?;
        }
        for (name, url, origin) in &o.upstreams {
            let invalid = |message: String| ConfigError::Invalid {
                origin: origin.clone(),
                key: format!("upstreams.{name}.url"),
                message,
            };
            let url = BaseUrl::parse(url).map_err(invalid)?;
            if let Some(u) = self.upstreams.iter_mut().find(|u| u.name == *name) {
                u.url = url;
                u.source = origin.clone();
                continue;
            }
            let Some(provider) = Provider::from_name(name) else {
                let known: Vec<&str> = self.upstreams.iter().map(|u| u.name.as_str()).collect();
                return Err(invalid(format!(
                    "no upstream named `{name}`; use a provider name (openai, anthropic, gemini, ollama) or one of: {}",
                    known.join(", ")
                )));
            };
            // A provider whose default upstream has another name: the override re-points the default.
            if let Some(u) = self
                .upstreams
                .iter_mut()
                .find(|u| u.provider == provider && u.default)
            {
                u.url = url;
                u.source = origin.clone();
            }
        }
        if !self.allow_remote && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                origin: "server.listen".into(),
                key: "server.listen".into(),
                message: format!(
                    "{} is not a loopback address; binding beyond loopback needs --allow-remote (or server.allow_remote = true)",
                    self.listen
                ),
            });
        }
        Ok(())
    }

    /// The number of worker threads to run (`workers`, or one per CPU core when 0).
    pub fn worker_threads(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The ledger directory inside the data dir.
    pub fn ledger_dir(&self) -> PathBuf {
        self.data_dir.join("ledger")
    }

    /// The admin token file (`admin.token_file`, else `<data-dir>/admin.token`).
    pub fn admin_token_file(&self) -> PathBuf {
        self.admin
            .token_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("admin.token"))
    }

    /// The embedded state store's directory (keys, spend, kills).
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join("state")
    }

    /// The signing key file (`audit.key_file`, else `<data-dir>/ledger/signing.key`).
    pub fn key_file(&self) -> PathBuf {
        self.audit
            .key_file
            .clone()
            .unwrap_or_else(|| self.ledger_dir().join("signing.key"))
    }

    /// The upstream serving `provider`'s root paths.
    pub fn default_upstream(&self, provider: Provider) -> &Upstream {
        self.upstreams
            .iter()
            .find(|u| u.provider == provider && u.default)
            .expect("validate() guarantees one default upstream per provider")
    }

    /// Renders the effective configuration as TOML, for `warden config check`.
    pub fn render(&self) -> String {
        #[derive(Serialize)]
        struct View<'a> {
            server: ServerView<'a>,
            limits: &'a Limits,
            audit: &'a Audit,
            log: LogView<'a>,
            auth: AuthView,
            admin: &'a Admin,
            #[serde(flatten)]
            policy: serde_json::Value,
            upstreams: BTreeMap<&'a str, UpstreamView<'a>>,
        }
        #[derive(Serialize)]
        struct ServerView<'a> {
            listen: String,
            allow_remote: bool,
            workers: usize,
            data_dir: &'a Path,
        }
        #[derive(Serialize)]
        struct AuthView {
            mode: AuthMode,
        }
        #[derive(Serialize)]
        struct LogView<'a> {
            format: LogFormat,
            level: &'a str,
        }
        #[derive(Serialize)]
        struct UpstreamView<'a> {
            provider: Provider,
            url: &'a BaseUrl,
            default: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            ca_file: Option<&'a Path>,
            api_key_env: &'a [String],
            stream_usage: bool,
            source: &'a str,
        }
        let view = View {
            server: ServerView {
                listen: self.listen.to_string(),
                allow_remote: self.allow_remote,
                workers: self.workers,
                data_dir: &self.data_dir,
            },
            limits: &self.limits,
            audit: &self.audit,
            log: LogView {
                format: self.log_format,
                level: &self.log_level,
            },
            auth: AuthView { mode: self.auth },
            admin: &self.admin,
            policy: self.policy.render(),
            upstreams: self
                .upstreams
                .iter()
                .map(|u| {
                    (
                        u.name.as_str(),
                        UpstreamView {
                            provider: u.provider,
                            url: &u.url,
                            default: u.default,
                            ca_file: u.ca_file.as_deref(),
                            api_key_env: &u.api_key_env,
                            stream_usage: u.stream_usage,
                            source: &u.source,
                        },
                    )
                })
                .collect(),
        };
        toml::to_string_pretty(&view).expect("the config view always serializes")
    }
}

#[cfg(test)]
mod tests;
