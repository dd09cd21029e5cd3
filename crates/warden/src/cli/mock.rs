//! `warden mock-upstream`: the built-in fake provider on its own port.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

/// Flags of `warden mock-upstream`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(
        long,
        env = "WARDEN_MOCK_LISTEN",
        default_value = "127.0.0.1:8475",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// Worker threads (the mock is the benchmark upstream; 1 keeps a core free for the gateway).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// Runs the mock until SIGINT/SIGTERM. Prints `mock upstream listening on http://ADDR` first.
pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}; pick another address with --listen",
                    args.listen
                )
            })?;
        let addr = listener.local_addr()?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                Some(warden_mock::tls_config(cert, key).map_err(anyhow::Error::msg)?)
            }
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("mock upstream listening on {scheme}://{addr}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let stats = Arc::new(warden_mock::MockStats::default());
        let shutdown = crate::server::shutdown_signal();
        match tls {
            Some(tls) => warden_mock::run_tls(listener, tls, stats, shutdown).await,
            None => warden_mock::run(listener, stats, shutdown).await,
        }
        .context("the mock upstream stopped with an error")
    })
}
