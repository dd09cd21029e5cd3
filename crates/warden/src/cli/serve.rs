//! `warden serve`: load the config, bind, write `gateway.json`, serve until a signal.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use crate::config::{Config, Overrides};
use crate::pipeline::Gateway;
use crate::{server, telemetry};

/// Flags of `warden serve`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Config file (default: ./warden.toml if present, else built-in defaults).
    #[arg(long, short, env = "WARDEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8474).
    #[arg(long, env = "WARDEN_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Point a provider (or a configured upstream) at another origin, e.g.
    /// `--upstream openai=http://127.0.0.1:8475`. Repeatable. Env: WARDEN_UPSTREAM_<NAME>.
    #[arg(long = "upstream", value_name = "NAME=URL")]
    pub upstreams: Vec<String>,
    /// Allow listening on a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
}

/// Parses `NAME=URL` flags into override triples.
pub fn upstream_flags(flags: &[String]) -> anyhow::Result<Vec<(String, String, String)>> {
    flags
        .iter()
        .map(|f| {
            let (name, url) = f.split_once('=').with_context(|| {
                format!("--upstream `{f}` must be NAME=URL, e.g. openai=http://127.0.0.1:8475")
            })?;
            Ok((
                name.trim().to_ascii_lowercase(),
                url.trim().to_string(),
                "--upstream".to_string(),
            ))
        })
        .collect()
}

/// Builds overrides from flags and the environment.
pub fn overrides(base: Overrides, args: &Args) -> anyhow::Result<Overrides> {
    Ok(Overrides {
        listen: args.listen.clone(),
        allow_remote: args.allow_remote,
        upstreams: upstream_flags(&args.upstreams)?,
        ..base
    }
    .with_env_upstreams(std::env::vars()))
}

/// Runs the gateway until SIGINT/SIGTERM.
pub fn run(base: Overrides, args: Args) -> anyhow::Result<()> {
    let overrides = overrides(base, &args)?;
    let config = Config::load(args.config.as_deref(), &overrides)?;
    telemetry::init(config.log_format, &config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}; pass --data-dir to use another",
            config.data_dir.display()
        )
    })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another gateway running there? Pick another address with --listen",
                config.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let data_dir = config.data_dir.clone();
    server::write_gateway_info(&data_dir, addr)
        .with_context(|| format!("cannot write {}/gateway.json", data_dir.display()))?;
    for u in &config.upstreams {
        tracing::info!(
            upstream = %u.name,
            provider = u.provider.name(),
            url = %u.url,
            default = u.default,
            source = %u.source,
            "upstream"
        );
    }
    match &config.file {
        Some(f) => tracing::info!("config: {}", f.display()),
        None => tracing::info!("config: none found, running with safe defaults"),
    }
    tracing::info!(
        "warden listening on http://{addr} (data dir {})",
        data_dir.display()
    );
    let gw = Arc::new(Gateway::new(config));
    let result = server::serve(listener, gw, server::shutdown_signal()).await;
    let _ = std::fs::remove_file(data_dir.join("gateway.json"));
    result.context("the gateway stopped with an error")
}
