//! `warden-loadgen`: command-line front end of the benchmark load generator (see the library
//! docs and `bench/README.md`).
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use warden_loadgen::{Config, Report};

/// HTTP/1.1 keep-alive load generator: closed loop (`--conns`, `--duration`) or open loop
/// (`--rate`), reporting time to first and last byte percentiles.
#[derive(Parser, Debug)]
#[command(name = "warden-loadgen", version)]
struct Args {
    /// Target URL, e.g. http://127.0.0.1:8474/v1/chat/completions.
    #[arg(long)]
    url: String,
    /// Send requests through this HTTP forward proxy (HOST:PORT), in absolute form.
    #[arg(long)]
    proxy: Option<String>,
    /// Request method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Read the request body from this file.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// Request header `NAME: VALUE` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Measured seconds (after the warmup).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before measuring, not recorded.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Open loop: requests per second across all connections, latency measured from each
    /// request's scheduled time. Without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds one whole request may take before it counts as an error.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let body = match (&args.body, &args.body_file) {
        (Some(body), _) => body.clone().into_bytes(),
        (None, Some(path)) => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => Vec::new(),
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            bail!("--header {h:?} is not `NAME: VALUE`");
        };
        headers.push((name.to_owned(), value.to_owned()));
    }
    for (flag, secs) in [
        ("--duration", args.duration),
        ("--warmup", args.warmup),
        ("--timeout", args.timeout),
    ] {
        if !(secs.is_finite() && secs >= 0.0) {
            bail!("{flag} must be a non-negative number of seconds");
        }
    }
    let config = Config {
        url: args.url.clone(),
        proxy: args.proxy.clone(),
        method: args.method.parse().context("invalid --method")?,
        headers,
        body: body.into(),
        conns: args.conns,
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup),
        rate: args.rate,
        timeout: Duration::from_secs_f64(args.timeout),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let report = runtime.block_on(warden_loadgen::run(&config))?;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        writeln!(out, "{}", report.to_json())
    } else {
        print_summary(&mut out, &report)
    };
    match written {
        // A reader that stopped early (`warden-loadgen … | head -1`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn print_summary(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let ms = |us: u64| us as f64 / 1000.0;
    writeln!(
        out,
        "{} requests in {:.2}s ({:.1} req/s), {} errors, conns {}{}",
        r.requests,
        r.duration_s,
        r.rps,
        r.errors,
        r.conns,
        r.rate.map(|x| format!(", rate {x}/s")).unwrap_or_default()
    )?;
    for (name, s) in [("ttfb", r.ttfb), ("ttlb", r.ttlb)] {
        writeln!(
            out,
            "{name}: p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  mean {:.3} ms",
            ms(s.p50),
            ms(s.p90),
            ms(s.p99),
            ms(s.p999),
            ms(s.max),
            s.mean / 1000.0
        )?;
    }
    if let Some(e) = &r.first_error {
        writeln!(out, "first error: {e}")?;
    }
    Ok(())
}
