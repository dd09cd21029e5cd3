//! The TOML file as written: serde types that mirror it key for key (unknown keys are errors),
//! and the one function that turns them into a validated [`Config`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use serde::Deserialize;
use toml::Spanned;
use warden_protocol::Provider;

use super::{
    Admin, Audit, AuthMode, BaseUrl, Capture, Config, ConfigError, DEFAULT_DATA_DIR,
    DEFAULT_LISTEN, Durability, Limits, LogFormat, Upstream, units,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    upstreams: BTreeMap<Spanned<String>, RawUpstream>,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    policy: super::policy::RawPolicySection,
    #[serde(default)]
    rules: Vec<super::policy::RawRule>,
    #[serde(default)]
    budgets: Vec<super::policy::RawBudget>,
    #[serde(default)]
    pricing: super::policy::RawPricing,
    #[serde(default)]
    protect: super::protect::RawProtect,
    #[serde(default)]
    tools: super::tools::RawTools,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    mode: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    token_file: Option<String>,
    metrics: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    enabled: Option<bool>,
    capture: Option<Spanned<String>>,
    stream: Option<Spanned<String>>,
    request_entries: Option<Spanned<String>>,
    origin: Option<Spanned<String>>,
    key_file: Option<String>,
    durability: Option<Spanned<String>>,
    sync_interval: Option<Spanned<String>>,
    batch_max_entries: Option<Spanned<i64>>,
    batch_max_wait: Option<Spanned<String>>,
    segment_size: Option<Spanned<RawSize>>,
    anchor: Option<String>,
    anchor_command: Option<Spanned<Vec<String>>>,
    anchor_witness: Option<Spanned<String>>,
    anchor_interval: Option<Spanned<String>>,
    blob_threshold: Option<Spanned<RawSize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    allow_remote: Option<bool>,
    data_dir: Option<PathBuf>,
    workers: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_request_bytes: Option<Spanned<RawSize>>,
    max_response_bytes: Option<Spanned<RawSize>>,
    max_header_bytes: Option<Spanned<RawSize>>,
    max_concurrent_requests: Option<Spanned<i64>>,
    connect_timeout: Option<Spanned<String>>,
    response_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    provider: Option<Spanned<String>>,
    url: Spanned<String>,
    default: Option<Spanned<bool>>,
    ca_file: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
    stream_usage: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<Spanned<String>>,
    level: Option<String>,
}

/// Parses TOML text; syntax errors, unknown keys and wrong types come back with toml's own
/// message, which names the line, column and key.
pub(super) fn parse(text: &str, name: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let message = match line {
            Some(line) => format!("line {line}: {}", e.message()),
            None => e.message().to_string(),
        };
        ConfigError::Syntax {
            path: name.to_string(),
            message: format!("{message}\n{e}"),
        }
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Reads PEM CA certificates (one or more) for an upstream with a private CA.
fn load_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read PEM certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The environment variables that hold a provider's key by default (first set one wins).
fn default_key_env(provider: Provider) -> Vec<String> {
    let names: &[&str] = match provider {
        Provider::OpenAi => &["OPENAI_API_KEY"],
        Provider::Anthropic => &["ANTHROPIC_API_KEY"],
        Provider::Gemini => &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        Provider::Ollama => &["OLLAMA_API_KEY"],
    };
    names.iter().map(|n| n.to_string()).collect()
}

pub(super) fn log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "human" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        other => Err(format!(
            "`{other}` is not a log format; use `human` or `json`"
        )),
    }
}

/// Turns the file's values into a [`Config`], naming `file:line` and the key on every error.
pub(super) fn validate(raw: RawConfig, text: &str, file: &str) -> Result<Config, ConfigError> {
    let at = |span: std::ops::Range<usize>, key: &str, message: String| ConfigError::Invalid {
        origin: format!("{file}:{}", line_of(text, span.start)),
        key: key.to_string(),
        message,
    };

    let listen = match &raw.server.listen {
        Some(l) => l.get_ref().parse().map_err(|e| {
            at(
                l.span(),
                "server.listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:8474: {e}",
                    l.get_ref()
                ),
            )
        })?,
        None => DEFAULT_LISTEN
            .parse()
            .expect("default listen address parses"),
    };

    let workers = match &raw.server.workers {
        Some(w) => usize::try_from(*w.get_ref())
            .ok()
            .filter(|n| *n <= 1024)
            .ok_or_else(|| {
                at(
                    w.span(),
                    "server.workers",
                    "must be 0 (one per CPU core) or a number of worker threads up to 1024".into(),
                )
            })?,
        None => 0,
    };

    let mut limits = Limits::default();
    let size = |v: &Spanned<RawSize>, key: &str, min: u64| -> Result<usize, ConfigError> {
        let n = match v.get_ref() {
            RawSize::Bytes(n) => u64::try_from(*n).map_err(|_| "must not be negative".to_string()),
            RawSize::Text(s) => units::parse_bytes(s),
        }
        .map_err(|m| at(v.span(), key, m))?;
        if n < min {
            return Err(at(v.span(), key, format!("must be at least {min} bytes")));
        }
        usize::try_from(n).map_err(|_| at(v.span(), key, "is too large".into()))
    };
    let duration = |v: &Spanned<String>, key: &str| {
        units::parse_duration(v.get_ref()).map_err(|m| at(v.span(), key, m))
    };
    if let Some(v) = &raw.limits.max_request_bytes {
        limits.max_request_bytes = size(v, "limits.max_request_bytes", 1)?;
    }
    if let Some(v) = &raw.limits.max_response_bytes {
        limits.max_response_bytes = size(v, "limits.max_response_bytes", 1024)?;
    }
    if let Some(v) = &raw.limits.max_header_bytes {
        // hyper's HTTP/1 reader needs at least 8 KiB of buffer.
        limits.max_header_bytes = size(v, "limits.max_header_bytes", 8192)?;
    }
    if let Some(v) = &raw.limits.max_concurrent_requests {
        limits.max_concurrent_requests = usize::try_from(*v.get_ref())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                at(
                    v.span(),
                    "limits.max_concurrent_requests",
                    "must be a positive integer".into(),
                )
            })?;
    }
    if let Some(v) = &raw.limits.connect_timeout {
        limits.connect_timeout = duration(v, "limits.connect_timeout")?;
    }
    if let Some(v) = &raw.limits.response_timeout {
        limits.response_timeout = duration(v, "limits.response_timeout")?;
    }
    if let Some(v) = &raw.limits.idle_timeout {
        limits.idle_timeout = duration(v, "limits.idle_timeout")?;
    }

    let mut upstreams: Vec<Upstream> = Vec::new();
    for (name, u) in &raw.upstreams {
        let key = |k: &str| format!("upstreams.{}.{k}", name.get_ref());
        let n = name.get_ref();
        if n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(at(
                name.span(),
                &format!("upstreams.{n}"),
                "upstream names are path prefixes: use lowercase letters, digits, `-` and `_`"
                    .into(),
            ));
        }
        if matches!(
            n.as_str(),
            "v1" | "v1beta" | "v1alpha" | "api" | "healthz" | "readyz" | "admin"
        ) {
            return Err(at(
                name.span(),
                &format!("upstreams.{n}"),
                format!("`{n}` is a path the gateway already serves; pick another name"),
            ));
        }
        let provider = match &u.provider {
            Some(p) => Provider::from_name(p.get_ref()).ok_or_else(|| {
                at(
                    p.span(),
                    &key("provider"),
                    format!(
                        "`{}` is not a provider; use openai, anthropic, gemini or ollama",
                        p.get_ref()
                    ),
                )
            })?,
            None => Provider::from_name(n).ok_or_else(|| {
                at(
                    name.span(),
                    &key("provider"),
                    format!(
                        "missing; `{n}` is not a provider name, so say which protocol it speaks (provider = \"openai\" for OpenAI-compatible servers)"
                    ),
                )
            })?,
        };
        let url = BaseUrl::parse(u.url.get_ref()).map_err(|m| at(u.url.span(), &key("url"), m))?;
        // An upstream named after its provider serves that provider's root paths unless told not to.
        let default = match &u.default {
            Some(d) => *d.get_ref(),
            None => Provider::from_name(n) == Some(provider),
        };
        if let Some(other) = upstreams
            .iter()
            .find(|o| default && o.provider == provider && o.default)
        {
            let span = u.default.as_ref().map(|d| d.span()).unwrap_or(name.span());
            return Err(at(
                span,
                &key("default"),
                format!(
                    "`{}` is already the default {provider} upstream; only one upstream per provider can serve the root paths",
                    other.name
                ),
            ));
        }
        let (ca_file, ca_certs) = match &u.ca_file {
            None => (None, Vec::new()),
            Some(f) => {
                // Relative paths are relative to the config file, as a reader of the file expects.
                let path = Path::new(file)
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join(f.get_ref());
                let certs = load_ca(&path).map_err(|m| at(f.span(), &key("ca_file"), m))?;
                if url.scheme != "https" {
                    return Err(at(
                        f.span(),
                        &key("ca_file"),
                        "is only used for https upstreams; the url is http".into(),
                    ));
                }
                (Some(path), certs)
            }
        };
        let api_key_env = match &u.api_key_env {
            Some(v) => {
                let ok = !v.get_ref().is_empty()
                    && v.get_ref()
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return Err(at(
                        v.span(),
                        &key("api_key_env"),
                        "must name an environment variable, e.g. \"OPENAI_API_KEY\" (the key itself never goes in the file)".into(),
                    ));
                }
                vec![v.get_ref().clone()]
            }
            None => default_key_env(provider),
        };
        upstreams.push(Upstream {
            name: n.clone(),
            provider,
            url,
            default,
            ca_file,
            ca_certs,
            api_key_env,
            stream_usage: u.stream_usage.unwrap_or(true),
            source: format!("{file}:{}", line_of(text, u.url.span().start)),
        });
    }
    for provider in Provider::ALL {
        if !upstreams
            .iter()
            .any(|u| u.provider == provider && u.default)
        {
            let name = provider.name().to_string();
            if upstreams.iter().any(|u| u.name == name) {
                // `[upstreams.openai]` with default = false: the root paths still need an owner.
                return Err(ConfigError::Invalid {
                    origin: name.clone(),
                    key: format!("upstreams.{name}.default"),
                    message:
                        "no upstream serves this provider's root paths; set default = true on one"
                            .into(),
                });
            }
            upstreams.push(Upstream {
                name,
                provider,
                url: BaseUrl::parse(provider.default_base_url()).expect("built-in URLs parse"),
                default: true,
                ca_file: None,
                ca_certs: Vec::new(),
                api_key_env: default_key_env(provider),
                stream_usage: true,
                source: "built-in default".into(),
            });
        }
    }
    upstreams.sort_by_key(|u| (!u.default, u.provider.name(), u.name.clone()));

    let mut audit = Audit::default();
    let a = &raw.audit;
    if let Some(e) = a.enabled {
        audit.enabled = e;
    }
    // A string key with a fixed set of values: the error lists them.
    let choice = |v: &Option<Spanned<String>>,
                  key: &str,
                  options: &[&str]|
     -> Result<Option<usize>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        match options.iter().position(|o| o == v.get_ref()) {
            Some(i) => Ok(Some(i)),
            None => Err(at(
                v.span(),
                key,
                format!("`{}` is not one of: {}", v.get_ref(), options.join(", ")),
            )),
        }
    };
    if let Some(i) = choice(
        &a.capture,
        "audit.capture",
        &["metadata", "redacted", "full"],
    )? {
        audit.capture = [Capture::Metadata, Capture::Redacted, Capture::Full][i];
    }
    if let Some(i) = choice(&a.stream, "audit.stream", &["live", "buffer"])? {
        audit.stream_buffer = i == 1;
    }
    if let Some(i) = choice(
        &a.request_entries,
        "audit.request_entries",
        &["streams", "all"],
    )? {
        audit.request_entries_all = i == 1;
    }
    if let Some(o) = &a.origin {
        let ok = !o.get_ref().is_empty()
            && o.get_ref()
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '+');
        if !ok {
            return Err(at(
                o.span(),
                "audit.origin",
                "must be non-empty printable ASCII without spaces or `+`, e.g. `warden.example.com/prod`".into(),
            ));
        }
        audit.origin = o.get_ref().clone();
    }
    audit.key_file = a.key_file.as_ref().map(PathBuf::from);
    audit.anchor = a.anchor.as_ref().map(PathBuf::from);
    if let Some(cmd) = &a.anchor_command {
        if cmd.get_ref().first().is_none_or(|p| p.is_empty()) {
            return Err(at(
                cmd.span(),
                "audit.anchor_command",
                "must be a program and its arguments, e.g. [\"/usr/local/bin/publish-checkpoint\", \"--log\", \"prod\"]".into(),
            ));
        }
        audit.anchor_command = Some(cmd.get_ref().clone());
    }
    if let Some(w) = &a.anchor_witness {
        let url =
            BaseUrl::parse(w.get_ref()).map_err(|m| at(w.span(), "audit.anchor_witness", m))?;
        audit.anchor_witness = Some(url.to_string().trim_end_matches('/').to_string());
    }
    if let Some(v) = &a.blob_threshold {
        audit.blob_threshold = size(v, "audit.blob_threshold", 64)?;
    }
    if let Some(w) = &a.anchor_interval {
        audit.anchor_interval = duration(w, "audit.anchor_interval")?;
    }
    if let Some(n) = &a.batch_max_entries {
        audit.batch_max_entries = usize::try_from(*n.get_ref())
            .ok()
            .filter(|n| (1..=65_536).contains(n))
            .ok_or_else(|| {
                at(
                    n.span(),
                    "audit.batch_max_entries",
                    "must be between 1 and 65536".into(),
                )
            })?;
    }
    if let Some(w) = &a.batch_max_wait {
        audit.batch_max_wait = duration(w, "audit.batch_max_wait")?;
    }
    if let Some(i) = choice(&a.durability, "audit.durability", &["fsync", "write"])? {
        audit.durability = [Durability::Fsync, Durability::Write][i];
    }
    if let Some(w) = &a.sync_interval {
        if audit.durability != Durability::Write {
            return Err(at(
                w.span(),
                "audit.sync_interval",
                "only applies with `durability = \"write\"` (with the default `fsync`, every entry is synced before its response is released)".into(),
            ));
        }
        audit.sync_interval = duration(w, "audit.sync_interval")?;
        if audit.sync_interval > std::time::Duration::from_secs(60) {
            return Err(at(
                w.span(),
                "audit.sync_interval",
                "must be at most 60s: it is how much of the ledger a power loss can take back"
                    .into(),
            ));
        }
    }
    if let Some(v) = &a.segment_size {
        audit.segment_size = size(v, "audit.segment_size", 1 << 20)? as u64;
    }

    let auth = match choice(
        &raw.auth.mode,
        "auth.mode",
        &["auto", "keys", "passthrough"],
    )? {
        Some(i) => [AuthMode::Auto, AuthMode::Keys, AuthMode::Passthrough][i],
        None => AuthMode::Auto,
    };
    let mut admin = Admin {
        token_file: raw.admin.token_file.as_ref().map(PathBuf::from),
        public_metrics: true,
    };
    if let Some(i) = choice(&raw.admin.metrics, "admin.metrics", &["public", "token"])? {
        admin.public_metrics = i == 0;
    }

    let mut policy = super::policy::build(raw.policy, raw.rules, raw.budgets, raw.pricing, &at)?;
    policy.protect = std::sync::Arc::new(super::protect::build(raw.protect, &at)?);
    policy.tools = std::sync::Arc::new(super::tools::build(raw.tools, &at)?);

    let log_format = match &raw.log.format {
        Some(f) => log_format(f.get_ref()).map_err(|m| at(f.span(), "log.format", m))?,
        None => LogFormat::Human,
    };

    Ok(Config {
        file: None,
        listen,
        allow_remote: raw.server.allow_remote.unwrap_or(false),
        workers,
        data_dir: raw
            .server
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        limits,
        upstreams,
        log_format,
        log_level: raw.log.level.clone().unwrap_or_else(|| "info".into()),
        audit,
        auth,
        admin,
        policy,
    })
}
