//! Runs the mock on an address until Ctrl-C, for poking at it with SDKs, curl or a load tool.
//!
//! `cargo run --release -p warden-mock --example serve -- [ADDR] [--single-thread]`
//! (ADDR defaults to 127.0.0.1:8475; `--single-thread` uses a current-thread runtime, which is
//! how the one-core throughput target is measured).

use std::sync::Arc;

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:8475".to_owned();
    let mut single_thread = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--single-thread" => single_thread = true,
            other => addr = other.to_owned(),
        }
    }
    let runtime = if single_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("warden-mock listening on http://{}", listener.local_addr()?);
        let stats = Arc::new(warden_mock::MockStats::default());
        warden_mock::run(listener, stats, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
}
