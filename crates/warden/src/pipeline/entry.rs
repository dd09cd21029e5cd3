//! What an exchange record says in the ledger: the entry body, built from an
//! [`ExchangeRecord`] and the capture mode.
//!
//! Every value is a string, an integer, a boolean, null, an array or an object (no floats), so
//! entries canonicalize (RFC 8785) the same everywhere. The ledger adds `index`, `prev` and
//! `session`. Identity is recorded as given (never a credential); content appears only with
//! `audit.capture = "full"`. `docs/ledger.md` documents every member.

use serde_json::{Map, Value, json};
use warden_protocol::{Content, ExchangeResponse, Role};

use super::record::{ExchangeRecord, Outcome};
use crate::config::Capture;

/// Entry schema version.
pub const SCHEMA_VERSION: u64 = 1;

/// Content moved out of an entry: stored under its SHA-256, referenced from the entry as
/// `{"blob": "<hex sha256>", "bytes": n}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Lower-case hex SHA-256 of `bytes` (the blob's name).
    pub sha256: String,
    /// The content (UTF-8 text).
    pub bytes: Vec<u8>,
}

/// Replaces every string longer than `threshold` bytes inside `v` with a blob reference.
fn externalize(v: &mut Value, threshold: usize, blobs: &mut Vec<Blob>) {
    match v {
        Value::String(s) if s.len() > threshold => {
            let bytes = std::mem::take(s).into_bytes();
            let digest = super::record::BodyDigest::of(&bytes);
            *v = json!({"blob": digest.sha256, "bytes": digest.bytes});
            blobs.push(Blob {
                sha256: digest.sha256,
                bytes,
            });
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| externalize(i, threshold, blobs)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|i| externalize(i, threshold, blobs)),
        _ => {}
    }
}

/// The entry body for `rec` (without the members the ledger adds), and the blobs its content
/// refers to (full capture only: strings longer than `blob_threshold` bytes move out).
pub fn body_with_blobs(
    rec: &ExchangeRecord,
    capture: Capture,
    blob_threshold: usize,
    time: std::time::SystemTime,
) -> (Map<String, Value>, Vec<Blob>) {
    let mut m = body(rec, capture, time);
    let mut blobs = Vec::new();
    if capture.has_content() {
        for key in ["content", "tool_calls"] {
            if let Some(v) = m.get_mut(key) {
                externalize(v, blob_threshold, &mut blobs);
            }
        }
    }
    (m, blobs)
}

/// The entry body for `rec` (without the members the ledger adds), content inline.
pub fn body(
    rec: &ExchangeRecord,
    capture: Capture,
    time: std::time::SystemTime,
) -> Map<String, Value> {
    let ex = &rec.exchange;
    let req = ex.request.as_ref();
    let resp = ex.response.as_ref();
    let mut m = Map::new();
    m.insert("v".into(), json!(SCHEMA_VERSION));
    let kind = if matches!(rec.outcome, Outcome::Forwarded) {
        "request"
    } else {
        "exchange"
    };
    m.insert("kind".into(), json!(kind));
    m.insert("time".into(), json!(rfc3339(time)));
    m.insert("tenant".into(), json!(rec.identity.tenant));
    m.insert("agent".into(), json!(rec.identity.agent));
    m.insert("key".into(), json!(rec.identity.key));
    m.insert("provider".into(), json!(ex.route.provider.name()));
    m.insert(
        "operation".into(),
        serde_json::to_value(ex.route.operation).unwrap_or(Value::Null),
    );
    m.insert("upstream".into(), json!(rec.upstream));
    m.insert("method".into(), json!(rec.method));
    m.insert("path".into(), json!(rec.path));
    let model = req
        .and_then(|r| r.model.clone())
        .or_else(|| resp.and_then(|r| r.model.clone()));
    m.insert("model".into(), json!(model));
    m.insert("stream".into(), json!(req.is_some_and(|r| r.stream)));
    m.insert("request".into(), json!(rec.request_digest));
    if !rec.verdict.action.is_empty() {
        m.insert("decision".into(), json!(rec.verdict));
    }
    if !rec.protect.is_empty() {
        m.insert("protect".into(), json!(rec.protect));
    }
    if !rec.tools.is_empty() {
        m.insert("tools".into(), json!(rec.tools));
    }
    if kind == "request" {
        if capture.has_content() {
            m.insert("content".into(), request_content(rec));
        }
        return m;
    }
    m.insert("request_entry".into(), json!(rec.request_entry));
    m.insert("response".into(), json!(rec.response_digest));
    m.insert("status".into(), json!(ex.upstream_status));
    m.insert("latency_us".into(), json!(ex.upstream_latency_us));
    let outcome = match &rec.outcome {
        Outcome::Refused {
            status,
            code,
            source,
            message,
        } => json!({
            "result": "refused", "status": status, "code": code, "source": source, "message": message,
        }),
        Outcome::UpstreamFailed { message } => {
            json!({"result": "upstream_failed", "message": message})
        }
        other => json!({"result": other.name()}),
    };
    m.insert("outcome".into(), outcome);
    if let Some(c) = &rec.cost {
        m.insert(
            "cost".into(),
            json!({"usd_micros": c.micros, "estimated": c.estimated}),
        );
    }
    if let Some(r) = resp {
        m.insert("usage".into(), usage(r));
        m.insert("finish_reason".into(), json!(r.finish_reason));
        let calls: Vec<Value> = r
            .tool_calls
            .iter()
            .map(|c| match capture {
                Capture::Full | Capture::Redacted => json!({"id": c.id, "name": c.name, "arguments": c.arguments}),
                Capture::Metadata => json!({
                    "id": c.id,
                    "name": c.name,
                    "arguments_sha256": super::record::BodyDigest::of(c.arguments.as_bytes()).sha256,
                }),
            })
            .collect();
        m.insert("tool_calls".into(), Value::Array(calls));
        if let Some(err) = &r.error {
            m.insert("upstream_error".into(), json!(err));
        }
    }
    if capture.has_content() {
        let mut content = request_content(rec);
        if let (Value::Object(c), Some(r)) = (&mut content, resp) {
            c.insert("output".into(), json!(r.output_text));
            c.insert("reasoning".into(), json!(r.reasoning));
        }
        m.insert("content".into(), content);
    }
    m
}

fn usage(r: &ExchangeResponse) -> Value {
    let u = &r.usage;
    json!({
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "reasoning_tokens": u.reasoning_tokens,
    })
}

/// The request's text content (system and messages), for `capture = "full"`.
fn request_content(rec: &ExchangeRecord) -> Value {
    let Some(req) = &rec.exchange.request else {
        return json!({});
    };
    let system: Vec<&str> = req.system.iter().map(|t| t.text.as_str()).collect();
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|msg| {
            let role = match &msg.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool => "tool",
                Role::Other(o) => o.as_str(),
            };
            let parts: Vec<Value> = msg
                .content
                .iter()
                .map(|c| match c {
                    Content::Text(t) => json!({"text": t.text}),
                    Content::Reasoning(t) => json!({"reasoning": t.text}),
                    Content::ToolCall(call) => json!({"tool_call": {"id": call.id, "name": call.name, "arguments": call.arguments}}),
                    Content::ToolResult { call_id, name, content } => json!({"tool_result": {"call_id": call_id, "name": name, "content": content.text}}),
                    Content::Media { mime_type } => json!({"media": mime_type}),
                })
                .collect();
            json!({"role": role, "content": parts})
        })
        .collect();
    json!({"system": system, "messages": messages})
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-21T13:45:00.123456Z`.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn long_strings_move_to_blobs_and_short_ones_stay() {
        let mut v = json!({"messages": [{"text": "short"}, {"text": "x".repeat(100)}], "output": "y".repeat(100)});
        let mut blobs = Vec::new();
        externalize(&mut v, 64, &mut blobs);
        assert_eq!(v["messages"][0]["text"], "short");
        assert_eq!(v["messages"][1]["text"]["bytes"], 100);
        assert_eq!(blobs.len(), 2);
        assert_eq!(v["output"]["blob"], blobs[1].sha256.as_str());
        assert_eq!(blobs[0].bytes, "x".repeat(100).into_bytes());
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.123456Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
    }
}
