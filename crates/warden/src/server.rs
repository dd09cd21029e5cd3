//! The listener: accepts TCP connections, serves HTTP/1.1 with keep-alive through the pipeline,
//! and drains in-flight requests on shutdown.
//!
//! It owns sockets and connection lifetimes only; what happens to a request is the pipeline's.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::pipeline::{Gateway, handle};

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `gw` on `listener` until `shutdown` resolves, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    gw: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(gw.config.limits.max_header_bytes);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let gw = gw.clone();
                let service = service_fn(move |req| handle(gw.clone(), req));
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection closed with error: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    gw.set_ready(false);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("shutdown: in-flight requests did not finish within {DRAIN_TIMEOUT:?}; closing them");
        }
    }
    Ok(())
}

/// Binds `workers` listening sockets on one address, for one worker thread each.
///
/// With more than one worker the sockets share the port through `SO_REUSEPORT`, so the kernel
/// spreads connections across workers. Because `SO_REUSEPORT` would also let a second gateway
/// join the port silently, the address is first bound exclusively: if anything holds it, this
/// fails with "address in use" as a single bind would. Port 0 resolves to one free port for all.
pub fn bind(
    addr: SocketAddr,
    workers: usize,
) -> io::Result<(Vec<std::net::TcpListener>, SocketAddr)> {
    let probe = std::net::TcpListener::bind(addr)?;
    let addr = probe.local_addr()?;
    if workers <= 1 {
        probe.set_nonblocking(true)?;
        return Ok((vec![probe], addr));
    }
    drop(probe);
    let listeners = (0..workers)
        .map(|_| {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?;
            socket.set_reuse_address(true)?;
            #[cfg(unix)]
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            socket.listen(1024)?;
            Ok(socket.into())
        })
        .collect::<io::Result<Vec<std::net::TcpListener>>>()?;
    Ok((listeners, addr))
}

/// Contents of `<data-dir>/gateway.json`, which tells the CLI and tests where the gateway is.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct GatewayInfo {
    /// Address the gateway accepts provider traffic on.
    pub listen: SocketAddr,
    /// Process id.
    pub pid: u32,
    /// Warden version.
    pub version: String,
}

/// Writes `gateway.json` atomically (write to a temp file, then rename).
pub fn write_gateway_info(data_dir: &Path, listen: SocketAddr) -> io::Result<()> {
    let info = GatewayInfo {
        listen,
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let tmp = data_dir.join("gateway.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?)?;
    std::fs::rename(tmp, data_dir.join("gateway.json"))
}

/// A future that resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
