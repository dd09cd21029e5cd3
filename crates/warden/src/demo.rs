//! `warden demo`: the whole product in one command, with no API key and no network.
//!
//! Starts the built-in mock provider and a gateway in front of it (both on loopback, free
//! ports), sends sample traffic for every provider, buffered and streaming, including tool
//! calls, an upstream rate limit and requests the gateway refuses itself, then prints what went
//! through as the gateway recorded it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::{Config, Overrides};
use crate::pipeline::record::{ExchangeRecord, Outcome};

/// Flags of `warden demo`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Also print the gateway's log lines (they go to stderr).
    #[arg(long)]
    pub verbose: bool,
}

/// The demo's policy: one rule, one budget (the kill is set through the control plane).
const DEMO_POLICY: &str = r#"
[[rules]]
name = "interns-use-small-models"
action = "deny"
reason = "interns use gpt-4o-mini"
match.agent = "intern-*"
match.model = "gpt-4o"

[[budgets]]
name = "batch-daily"
per = "agent"
id = "batch-job"
limit_usd = 0.01
period = "day"

[protect]
presets = ["secrets-block", "pii-redact"]

[tools]
on_deny = "replace"
"#;

struct Scenario {
    title: &'static str,
    method: Method,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

fn scenarios() -> Vec<Scenario> {
    let tool =
        r#"{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris","unit":"celsius"}}]}"#;
    let think = r#"{"reasoning":"The user wants the weather; I should call the tool.","tool_calls":[{"name":"get_weather","arguments":{"city":"Seoul"}}]}"#;
    let openai = vec![
        ("authorization", "Bearer sk-demo-not-a-real-key"),
        ("content-type", "application/json"),
    ];
    let anthropic = vec![
        ("x-api-key", "sk-ant-demo-not-a-real-key"),
        ("anthropic-version", "2023-06-01"),
        ("content-type", "application/json"),
    ];
    let gemini = vec![
        ("x-goog-api-key", "demo-not-a-real-key"),
        ("content-type", "application/json"),
    ];
    let json = vec![("content-type", "application/json")];
    let with = |mut h: Vec<(&'static str, &'static str)>, extra: (&'static str, &'static str)| {
        h.push(extra);
        h
    };
    vec![
        Scenario {
            title: "OpenAI chat, buffered",
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: openai.clone(),
            body: r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello to the auditors."}]}"#.into(),
        },
        Scenario {
            title: "OpenAI chat, streaming",
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: openai.clone(),
            body: r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Count to twenty. [mock:{\"words\":20}]"}]}"#.into(),
        },
        Scenario {
            title: "OpenAI chat, streamed tool call",
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: with(openai.clone(), ("x-mock-scenario", tool)),
            body: r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#.into(),
        },
        Scenario {
            title: "OpenAI Responses API",
            method: Method::POST,
            path: "/v1/responses",
            headers: openai.clone(),
            body: r#"{"model":"gpt-4.1","instructions":"Be brief.","input":"What is a transparency log?"}"#.into(),
        },
        Scenario {
            title: "OpenAI embeddings",
            method: Method::POST,
            path: "/v1/embeddings",
            headers: openai.clone(),
            body: r#"{"model":"text-embedding-3-small","input":"governance gateway"}"#.into(),
        },
        Scenario {
            title: "Anthropic messages, buffered",
            method: Method::POST,
            path: "/v1/messages",
            headers: anthropic.clone(),
            body: r#"{"model":"claude-sonnet-4-5","max_tokens":256,"system":"Be brief.","messages":[{"role":"user","content":"Hello, Claude."}]}"#.into(),
        },
        Scenario {
            title: "Anthropic streaming, thinking + tool_use",
            method: Method::POST,
            path: "/v1/messages",
            headers: with(anthropic.clone(), ("x-mock-scenario", think)),
            body: r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Weather in Seoul?"}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}"#.into(),
        },
        Scenario {
            title: "Gemini generateContent",
            method: Method::POST,
            path: "/v1beta/models/gemini-2.5-flash:generateContent",
            headers: gemini.clone(),
            body: r#"{"contents":[{"role":"user","parts":[{"text":"Hello, Gemini."}]}]}"#.into(),
        },
        Scenario {
            title: "Gemini streamGenerateContent (SSE)",
            method: Method::POST,
            path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            headers: gemini.clone(),
            body: r#"{"contents":[{"role":"user","parts":[{"text":"Stream a short poem. [mock:{\"words\":12}]"}]}]}"#.into(),
        },
        Scenario {
            title: "Ollama /api/chat (NDJSON stream)",
            method: Method::POST,
            path: "/api/chat",
            headers: json.clone(),
            body: r#"{"model":"llama3.2","messages":[{"role":"user","content":"Hello, llama."}]}"#.into(),
        },
        Scenario {
            title: "Upstream 429 passed through",
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: with(openai.clone(), ("x-mock-scenario", r#"{"status":429}"#)),
            body: r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#.into(),
        },
        Scenario {
            title: "Malformed JSON (refused by Warden)",
            method: Method::POST,
            path: "/v1/messages",
            headers: anthropic.clone(),
            body: r#"{"model":"claude-sonnet-4-5","messages":["#.into(),
        },
        Scenario {
            title: "Policy rule: interns may not use gpt-4o (denied)",
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: with(openai.clone(), ("x-warden-agent", "intern-bot")),
            body: r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Summarise the quarter."}]}"#.into(),
        },
        Scenario {
            title: "USD budget: worst case over the agent's $0.01/day cap (refused)",
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: with(openai.clone(), ("x-warden-agent", "batch-job")),
            body: r#"{"model":"gpt-4o","max_tokens":4000,"messages":[{"role":"user","content":"Write the annual report."}]}"#.into(),
        },
        Scenario {
            title: "Kill switch: agent rogue-bot was stopped (refused)",
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: with(openai.clone(), ("x-warden-agent", "rogue-bot")),
            body: r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Once more."}]}"#.into(),
        },
        Scenario {
            title: "Content protection: an AWS key in the prompt (blocked)",
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: openai.clone(),
            body: r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Deploy with AKIAZ7QX3MPLE4R9TK2W please."}]}"#.into(),
        },
        Scenario {
            title: "Content protection: PII in the model's answer redacted (pii-redact preset)",
            method: Method::POST,
            path: "/v1/messages",
            headers: with(anthropic.clone(), ("x-mock-scenario", r#"{"text":"Contact jane.doe@example.org or +1 415-555-2671."}"#)),
            body: r#"{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"Who handles invoices?"}]}"#.into(),
        },
        Scenario {
            title: "Content protection: a token split across stream frames (redacted)",
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: with(openai.clone(), ("x-mock-scenario", r#"{"text":"The token is ghp_R4nd0mT0k3nV4lu3F0rT3st1ngOnlyAbC9xy ok.","chunks":12}"#)),
            body: r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Print the token."}]}"#.into(),
        },
        Scenario {
            title: "Tool governance: the model asks to DROP TABLE users (call removed, agent told why)",
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: with(openai.clone(), ("x-mock-scenario", r#"{"tool_calls":[{"name":"execute_sql","arguments":{"query":"DROP TABLE users"}}]}"#)),
            body: r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Clean up the database."}]}"#.into(),
        },
        Scenario {
            title: "Tool governance: a harmless SELECT is delivered",
            method: Method::POST,
            path: "/v1/messages",
            headers: with(anthropic.clone(), ("x-mock-scenario", r#"{"tool_calls":[{"name":"execute_sql","arguments":{"query":"SELECT count(*) FROM users"}}]}"#)),
            body: r#"{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"How many users?"}]}"#.into(),
        },
        Scenario {
            title: "Unknown path (refused by Warden)",
            method: Method::POST,
            path: "/v2/chat",
            headers: openai,
            body: "{}".into(),
        },
    ]
}

/// Runs the demo and prints the summary.
pub fn run(args: Args) -> anyhow::Result<()> {
    crate::telemetry::init(
        crate::config::LogFormat::Human,
        if args.verbose { "info" } else { "error" },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo())
}

async fn demo() -> anyhow::Result<()> {
    let mock_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a loopback port for the mock provider")?;
    let mock_addr = mock_listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mock = tokio::spawn(warden_mock::run(
        mock_listener,
        Arc::new(warden_mock::MockStats::default()),
        stopped(stop_rx.clone()),
    ));

    let data_dir = std::env::temp_dir().join(format!("warden-demo-{}", std::process::id()));
    let mock_url = format!("http://{mock_addr}");
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(data_dir.clone()),
        upstreams: warden_protocol::Provider::ALL
            .iter()
            .map(|p| (p.name().to_string(), mock_url.clone(), "demo".to_string()))
            .collect(),
        ..Overrides::default()
    };
    let config = Config::from_str(DEMO_POLICY, "demo policy", &overrides)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let ledger_dir = config.ledger_dir();
    let (gw, ledger) = crate::cli::serve::build(config, None)?;
    let verifier = ledger
        .as_ref()
        .map(|l| l.verifier().clone())
        .context("the demo needs the audit ledger")?;
    gw.control
        .kill(
            warden_state::KillTarget::Agent("rogue-bot".into()),
            "looping on the same tool call",
            "demo",
        )
        .context("the demo cannot set its kill switch")?;
    gw.admin.set_listen(addr);
    let gw = Arc::new(gw);
    let mut records = gw.recorder.subscribe();
    let server = tokio::spawn(crate::server::serve(listener, gw, stopped(stop_rx)));

    println!("Warden demo");
    println!(
        "  mock provider  http://{mock_addr}   (OpenAI, Anthropic, Gemini, Ollama; no API key, no network)"
    );
    println!(
        "  gateway        http://{addr}   (agents would set OPENAI_BASE_URL=http://{addr}/v1)\n"
    );

    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut rows = Vec::new();
    for (i, s) in scenarios().into_iter().enumerate() {
        let mut req = Request::builder()
            .method(s.method.clone())
            .uri(format!("http://{addr}{}", s.path));
        for (k, v) in &s.headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(s.body.clone())))?;
        let started = Instant::now();
        let resp = client
            .request(req)
            .await
            .with_context(|| format!("demo request {} failed", s.title))?;
        let status = resp.status();
        let entry = resp
            .headers()
            .get("x-warden-entry")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let header_receipt = resp.headers().contains_key("x-warden-receipt");
        let mut body = resp.into_body();
        let mut chunks = 0usize;
        let mut first_byte = None;
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                first_byte.get_or_insert_with(|| started.elapsed());
                chunks += 1;
                bytes.extend_from_slice(&data);
            }
        }
        let total = started.elapsed();
        let record = tokio::time::timeout(Duration::from_secs(2), records.recv())
            .await
            .ok()
            .flatten();
        rows.push(Row {
            n: i + 1,
            title: s.title,
            status: status.as_u16(),
            chunks,
            first_byte: first_byte.unwrap_or(total),
            total,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            entry,
            receipt: if header_receipt {
                "receipt in x-warden-receipt"
            } else if bytes.windows(16).any(|w| w == b": warden-receipt") {
                "receipt in-band before the terminal event"
            } else {
                "no in-band receipt (prove with `warden audit prove`)"
            },
            record: record.filter(|_| status != 404),
        });
    }
    print_rows(&rows);

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), mock).await;
    let verdict = verify_demo_ledger(&ledger_dir, verifier);
    let _ = std::fs::remove_dir_all(&data_dir);
    verdict
}

/// Verifies the demo's ledger the way an auditor would, and says so.
fn verify_demo_ledger(
    dir: &std::path::Path,
    verifier: warden_ledger::note::NoteVerifier,
) -> anyhow::Result<()> {
    let vkey = verifier.to_vkey();
    let report = warden_ledger::verify::verify_ledger(
        dir,
        &warden_ledger::verify::VerifyOptions::new(verifier),
    )?;
    println!(
        "\nLedger: {} entries (one per exchange and refusal, plus a request entry written before each live stream was forwarded), {} signed checkpoints.",
        report.entries, report.checkpoints_checked
    );
    match &report.failure {
        None => {
            println!(
                "Verified offline with the public key {vkey}: every entry, session chain, checkpoint signature and checkpoint consistency is intact."
            );
            Ok(())
        }
        Some(f) => anyhow::bail!("the demo ledger failed verification: {f}"),
    }
}

struct Row {
    n: usize,
    title: &'static str,
    status: u16,
    chunks: usize,
    first_byte: Duration,
    total: Duration,
    body: String,
    entry: Option<String>,
    receipt: &'static str,
    record: Option<Arc<ExchangeRecord>>,
}

fn excerpt(s: &str, n: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    }
}

fn print_rows(rows: &[Row]) {
    let (mut completed, mut refused, mut upstream_errors) = (0, 0, 0);
    for r in rows {
        println!("{:>2}. {}", r.n, r.title);
        let Some(rec) = &r.record else {
            refused += 1;
            println!(
                "    {}  refused by Warden: {}",
                r.status,
                excerpt(&r.body, 110)
            );
            continue;
        };
        let ex = &rec.exchange;
        let model = ex
            .request
            .as_ref()
            .and_then(|q| q.model.clone())
            .or_else(|| ex.response.as_ref().and_then(|p| p.model.clone()))
            .unwrap_or_else(|| "-".into());
        let mode = if ex.request.as_ref().is_some_and(|q| q.stream) {
            format!(
                "stream, {} chunks, first byte {:.1} ms",
                r.chunks,
                r.first_byte.as_secs_f64() * 1e3
            )
        } else {
            "buffered".to_string()
        };
        match &rec.outcome {
            Outcome::Refused {
                status,
                code,
                message,
                ..
            } => {
                refused += 1;
                println!(
                    "    {status} {code}: refused by Warden: {}",
                    excerpt(message, 160)
                );
                continue;
            }
            Outcome::UpstreamFailed { message } => {
                upstream_errors += 1;
                println!("    upstream failed: {message}");
                continue;
            }
            Outcome::ClientCancelled => println!("    cancelled by the client"),
            Outcome::Forwarded => {}
            Outcome::Completed => {}
        }
        if r.status >= 400 {
            upstream_errors += 1;
        } else {
            completed += 1;
        }
        println!(
            "    {} via {} → {}  model {}  {}  {:.1} ms",
            ex.route.provider,
            rec.upstream.as_deref().unwrap_or("-"),
            r.status,
            model,
            mode,
            r.total.as_secs_f64() * 1e3
        );
        if ex.request.as_ref().is_some_and(|q| q.stream) {
            println!(
                "    recorded: request entry {} before forwarding, completion entry before the terminal event ({})",
                r.entry.as_deref().unwrap_or("-"),
                r.receipt
            );
        } else {
            println!(
                "    recorded: ledger entry {} before release ({})",
                r.entry.as_deref().unwrap_or("-"),
                r.receipt
            );
        }
        if let Some(resp) = &ex.response {
            let u = &resp.usage;
            let tokens = format!(
                "tokens in {} / out {}",
                u.input_tokens.map_or("-".into(), |t| t.to_string()),
                u.output_tokens.map_or("-".into(), |t| t.to_string())
            );
            if let Some(err) = &resp.error {
                println!(
                    "    upstream error passed through: {}  ({tokens})",
                    excerpt(err, 80)
                );
            } else {
                let mut what = Vec::new();
                if !resp.reasoning.is_empty() {
                    what.push(format!("reasoning \"{}\"", excerpt(&resp.reasoning, 40)));
                }
                for call in &resp.tool_calls {
                    what.push(format!(
                        "tool call {}({})",
                        call.name,
                        excerpt(&call.arguments, 50)
                    ));
                }
                if !resp.output_text.is_empty() {
                    what.push(format!("\"{}\"", excerpt(&resp.output_text, 60)));
                }
                if what.is_empty() {
                    what.push("(no text: embeddings / metadata)".into());
                }
                println!(
                    "    {tokens}  finish {}",
                    resp.finish_reason.as_deref().unwrap_or("-")
                );
                for w in what {
                    println!("    {w}");
                }
                for c in &rec.tools.calls {
                    println!(
                        "    tool governance: {} → {} by rule {} ({}){}",
                        c.tool,
                        c.action,
                        c.rule,
                        match c.result {
                            "removed" => "removed from the answer; the agent got an explanation",
                            "refused" => "the answer became an error",
                            _ => "delivered to the agent",
                        },
                        c.reason
                            .as_deref()
                            .map(|r| format!(": {}", excerpt(r, 70)))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    println!(
        "\n{} exchanges: {completed} completed, {upstream_errors} upstream error(s) passed through faithfully, {refused} refused by Warden in the caller's provider error shape.",
        rows.len()
    );
    println!(
        "Every exchange above was parsed into Warden's normalized model (provider, model, text, tool calls, usage) from the live byte stream."
    );
}
