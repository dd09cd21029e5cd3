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
        println!("mock upstream listening on http://{addr}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let stats = Arc::new(warden_mock::MockStats::default());
        warden_mock::run(listener, stats, crate::server::shutdown_signal())
            .await
            .context("the mock upstream stopped with an error")
    })
}
