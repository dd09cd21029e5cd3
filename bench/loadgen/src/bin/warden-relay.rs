//! `warden-relay`: a TCP byte relay in front of a server, the benchmark's floor for a gateway
//! (see `warden_loadgen::relay`). Prints `relay listening on http://ADDR` once bound.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;

/// Relays every connection on `--listen` to `--to`, byte for byte.
#[derive(Parser, Debug)]
#[command(name = "warden-relay", version)]
struct Args {
    /// Address to listen on (loopback; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Address to relay to, e.g. the mock's 127.0.0.1:PORT.
    #[arg(long)]
    to: SocketAddr,
    /// Runtime worker threads (as many as Warden's workers for a like-for-like floor).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("cannot listen on {}", args.listen))?;
            let addr = listener.local_addr()?;
            let mut out = std::io::stdout();
            writeln!(out, "relay listening on http://{addr}")?;
            out.flush()?;
            warden_loadgen::relay(listener, args.to).await
        })
}
