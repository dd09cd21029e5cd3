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

/// Builds a gateway for `config`: opens the ledger (with metrics), the state store, the admin
/// token and the control plane. Refuses to start what it could not protect: a non-loopback
/// listener without virtual keys in force.
pub fn build(
    config: Config,
    reload: Option<crate::admin::ReloadSource>,
) -> anyhow::Result<(Gateway, Option<Arc<warden_ledger::log::Ledger>>)> {
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let ledger = crate::audit::open_observed(&config, Some(metrics.ledger_observer()))?;
    let store = warden_state::SqliteStore::open(&config.state_dir()).with_context(|| {
        format!(
            "cannot open the state store (keys, spend, kills) in {}",
            config.state_dir().display()
        )
    })?;
    let cleared = warden_state::Store::clear_reservations(&store)
        .context("cannot clear budget reservations left by an earlier run")?;
    if cleared > 0 {
        tracing::info!(
            "released budget reservations left by an earlier run ({cleared} budget buckets)"
        );
    }
    let store: Arc<dyn warden_state::Store> = Arc::new(store);
    let control = crate::control::Control::new(&config, store, metrics);
    if !config.listen.ip().is_loopback() && !control.keys_required() {
        anyhow::bail!(
            "{} is beyond loopback but no virtual key is in force (auth.mode = {:?}); create one first with `warden keys create --data-dir {}` or set auth.mode = \"keys\"",
            config.listen,
            config.auth,
            config.data_dir.display()
        );
    }
    for lint in config.policy.lints() {
        tracing::warn!("policy: {lint}");
    }
    let token_file = config.admin_token_file();
    let token = crate::admin::load_or_create_token(&token_file).with_context(|| {
        format!(
            "cannot read or create the admin token {}",
            token_file.display()
        )
    })?;
    if control.keys_required() {
        for u in &config.upstreams {
            if control.credential(&u.name).is_none()
                && u.provider != warden_protocol::Provider::Ollama
            {
                tracing::warn!(
                    "virtual keys are in force but no provider key is set for upstream {} ({}); its requests go without one",
                    u.name,
                    u.api_key_env.join(" or ")
                );
            }
        }
    }
    let gw = Gateway::new(config, ledger.clone(), control, token, reload);
    Ok((gw, ledger))
}

/// Runs the gateway until SIGINT/SIGTERM.
pub fn run(base: Overrides, args: Args) -> anyhow::Result<()> {
    let overrides = overrides(base, &args)?;
    let config = Config::load(args.config.as_deref(), &overrides)?;
    telemetry::init(config.log_format, &config.log_level);
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}; pass --data-dir to use another",
            config.data_dir.display()
        )
    })?;
    let workers = config.worker_threads();
    let data_dir = config.data_dir.clone();
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
    let reload = crate::admin::ReloadSource {
        file: args.config.clone(),
        overrides: overrides.clone(),
    };
    // Built before binding: a gateway that must not start (remote without auth) never listens.
    let (gw, ledger) = build(config, Some(reload))?;
    let (listeners, addr) = server::bind(gw.config.listen, workers).with_context(|| {
        format!(
            "cannot listen on {}; is another gateway running there? Pick another address with --listen",
            gw.config.listen
        )
    })?;
    let anchor = crate::audit::Anchor::start(&gw.config, ledger.as_ref());
    let effective = gw.config.render();
    let mut details = serde_json::Map::new();
    details.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    details.insert("listen".into(), addr.to_string().into());
    details.insert(
        "config_sha256".into(),
        crate::pipeline::record::BodyDigest::of(effective.as_bytes())
            .sha256
            .into(),
    );
    gw.recorder
        .event_blocking("start", details)
        .context("cannot record the gateway's start in the ledger; refusing to serve unrecorded")?;

    // One single-threaded runtime per worker; the main thread only waits for the signal.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut threads = Vec::with_capacity(listeners.len());
    for (i, listener) in listeners.into_iter().enumerate() {
        let worker = Arc::new(gw.worker());
        let mut stop = stop_rx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("warden-worker-{i}"))
            .spawn(move || -> anyhow::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("cannot start a worker runtime")?;
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let stopped = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    server::serve(listener, worker, stopped).await?;
                    Ok(())
                })
            })
            .context("cannot start a worker thread")?;
        threads.push(thread);
    }
    // SIGHUP (reload) is caught from before gateway.json announces the gateway: a reload sent
    // right after start must not hit the default action, which ends the process.
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    let mut hup = {
        let _runtime = signals.enter();
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("cannot listen for SIGHUP (config reload): {e}");
                None
            }
        }
    };
    gw.admin.set_listen(addr);
    server::write_gateway_info(&data_dir, addr)
        .with_context(|| format!("cannot write {}/gateway.json", data_dir.display()))?;
    tracing::info!(
        "warden listening on http://{addr} ({workers} worker{}, data dir {})",
        if workers == 1 { "" } else { "s" },
        data_dir.display()
    );

    let admin = gw.admin.clone();
    let (approvals, recorder) = (gw.control.approvals.clone(), gw.recorder.clone());
    signals.block_on(async move {
        let stop = server::shutdown_signal();
        tokio::pin!(stop);
        // Approvals nobody waits for any more (their request ended, or they date from before a
        // restart) still time out, and the timeout is recorded.
        let mut sweep = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = sweep.tick() => approvals.sweep(&recorder).await,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    match admin.reload("SIGHUP").await {
                        Ok(v) => tracing::info!("SIGHUP: {v}"),
                        Err((_, m)) => tracing::error!("SIGHUP: {m}"),
                    }
                }
            }
        }
    });
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(anyhow::anyhow!("a worker thread panicked")),
        }
    }
    // Spend still queued for the store goes in before the process ends.
    gw.control.flush();
    drop(anchor);
    let _ = std::fs::remove_file(data_dir.join("gateway.json"));
    result.context("the gateway stopped with an error")
}
