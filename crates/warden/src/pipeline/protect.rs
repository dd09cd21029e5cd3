//! Protect stage: content protection on both directions of an exchange.
//!
//! - [`request`] scans every content string of the request body (prompts, system text, tool
//!   definitions, tool calls and results), applies the configured actions (redact, mask,
//!   tokenize, block) and, only when something changed, rewrites those string literals in the
//!   body's bytes (everything else goes upstream as the client wrote it).
//! - [`response`] does the same to a buffered response, then restores the placeholders this
//!   caller's request was given (`⟦EMAIL_1⟧` back to the address).
//! - [`StreamProtector`] does it to a live stream: it holds whole events while their text is
//!   not final (a value may be split across frames), rewrites the strings inside each event in
//!   place and releases events in order.
//! - [`redact_record`] removes every detected value from what the ledger keeps
//!   (`audit.capture = "redacted"`), whatever was done on the wire.
//!
//! Findings are kept as type, family, JSON path, action and count ([`ProtectRecord`]); no value
//! ever leaves this module except inside the rewritten body it belongs to.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use warden_protect::policy::{Direction, Mode};
use warden_protect::stream::TextStream;
use warden_protect::transform::{self, Context};
use warden_protect::vault::Vault;
use warden_protocol::{
    EventSplitter, ExchangeRequest, ExchangeResponse, Framing, content_spans, replace_event_data,
    splice_strings, string_literal,
};

use super::record::ExchangeRecord;
use super::refuse::{GatewayError, Source};
use crate::config::ProtectConfig;

/// Findings of one exchange, as the ledger records them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProtectRecord {
    /// One row per direction, type, path and action, with how many values it covers.
    pub findings: Vec<FindingRow>,
    /// Whether content protection blocked the exchange.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
    /// Placeholders restored to their values in the response.
    #[serde(skip_serializing_if = "is_zero")]
    pub restored: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One line of [`ProtectRecord::findings`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingRow {
    /// `request` or `response`.
    pub direction: &'static str,
    /// Detected type (`email`, `github_token`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// `pii`, `secret`, `injection` or `custom`.
    pub category: &'static str,
    /// JSON path of the string in the body (a stream event's path for streams).
    pub path: String,
    /// What was done: `allow`, `log`, `mask`, `tokenize`, `redact`, `block`.
    pub action: &'static str,
    /// What the policy would have done, in report mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would: Option<&'static str>,
    /// Values covered by this row.
    pub count: u32,
}

impl ProtectRecord {
    fn add(&mut self, direction: Direction, path: &str, f: &transform::Finding) {
        let direction = match direction {
            Direction::Request => "request",
            Direction::Response => "response",
        };
        // `allow` means the operator chose to ignore the type: nothing to record.
        if f.action == warden_protect::policy::Action::Allow && f.would.is_none() {
            return;
        }
        self.add_row(FindingRow {
            direction,
            kind: f.kind.to_string(),
            category: f.category.name(),
            path: path.to_string(),
            action: f.action.name(),
            would: f.would.map(|a| a.name()),
            count: 1,
        });
    }

    /// Counts `row` into the row with the same direction, type, path and actions, or appends
    /// it. A long conversation can hold thousands of findings; the ledger keeps a bounded list.
    fn add_row(&mut self, row: FindingRow) {
        let same = self.findings.iter().position(|r| {
            r.direction == row.direction
                && r.kind == row.kind
                && r.path == row.path
                && r.action == row.action
                && r.would == row.would
        });
        match same {
            Some(i) => self.findings[i].count += row.count,
            None if self.findings.len() < MAX_ROWS => self.findings.push(row),
            None => {}
        }
    }

    /// Whether the request had values tokenized (so the response may carry placeholders).
    pub fn tokenized(&self) -> bool {
        self.findings
            .iter()
            .any(|r| r.direction == "request" && r.action == "tokenize")
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty() && !self.blocked
    }

    /// The types blocked in `direction`, with counts, for messages: `email ×2, github_token ×1`
    /// (never values).
    pub fn blocked_types(&self, direction: &'static str) -> String {
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for r in &self.findings {
            if r.direction == direction && r.action == "block" {
                *counts.entry(r.kind.as_str()).or_default() += r.count;
            }
        }
        counts
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Most events a stream holds back at once: a value split over more frames than this is
/// released in part rather than stall the stream (a 40-character key streamed one token per
/// frame spans about 15).
const MAX_HELD_EVENTS: usize = 64;

/// Most finding rows one exchange records.
const MAX_ROWS: usize = 256;

/// Who the caller is, for tokenize and restore.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// `x-warden-tenant` (or the key's tenant).
    pub tenant: Option<String>,
    /// `x-warden-session`.
    pub session: Option<String>,
}

impl Caller {
    fn ctx<'a>(&'a self, direction: Direction, vault: Option<&'a Vault>) -> Context<'a> {
        Context {
            direction,
            tenant: self.tenant.as_deref(),
            session: self.session.as_deref(),
            vault,
        }
    }

    fn restore(&self, vault: &Vault, text: &str) -> Option<(String, usize)> {
        vault.restore(
            self.tenant.as_deref().unwrap_or(""),
            self.session.as_deref().unwrap_or(""),
            text,
        )
    }
}

/// Scans `text` and applies the policy's actions; `None` when nothing was found (the common
/// case, which then costs one scan and no allocation).
pub fn scan_and_apply(
    cfg: &ProtectConfig,
    text: &str,
    ctx: &Context<'_>,
) -> Option<transform::Outcome> {
    let found = cfg.scanner.scan(text);
    (!found.is_empty()).then(|| transform::apply(text, &found, &cfg.policy, ctx))
}

/// Protects a request body in place. `Ok(true)` when the body changed (the caller re-parses
/// and re-digests it).
///
/// # Errors
///
/// A `block` action on anything found: 400 `content_blocked` naming the types and where.
pub fn request(
    cfg: &ProtectConfig,
    vault: &Vault,
    caller: &Caller,
    body: &mut Bytes,
    record: &mut ProtectRecord,
) -> Result<bool, GatewayError> {
    if cfg.policy.mode(caller.tenant.as_deref()) == Mode::Off || body.is_empty() {
        return Ok(false);
    }
    let Some(spans) = content_spans(body) else {
        return Ok(false);
    };
    let ctx = caller.ctx(Direction::Request, Some(vault));
    let mut edits = Vec::new();
    let mut blocked_at = Vec::new();
    for s in &spans {
        let Some(o) = scan_and_apply(cfg, &s.text, &ctx) else {
            continue;
        };
        for f in &o.findings {
            record.add(Direction::Request, &s.path, f);
        }
        if o.blocked && blocked_at.len() < 5 {
            blocked_at.push(s.path.as_str());
        }
        if let Some(t) = o.text {
            edits.push((s.span.clone(), t));
        }
    }
    if !blocked_at.is_empty() {
        record.blocked = true;
        return Err(GatewayError::content_blocked(
            format!(
                "Warden blocked this request: it contains {} (at {}). Remove the values, or ask the operator to change `protect.actions` if this is intended.",
                record.blocked_types("request"),
                blocked_at.join(", ")
            ),
            Source::Client,
        ));
    }
    if edits.is_empty() {
        return Ok(false);
    }
    // Only the changed literals differ: member order, numbers and spacing go upstream as the
    // client wrote them.
    *body = Bytes::from(splice_strings(body, &edits));
    Ok(true)
}

/// Protects a buffered response body: actions for the response direction, then placeholder
/// restore. Returns the body to release.
///
/// # Errors
///
/// A `block` action on anything in the answer: 400 `content_blocked`; the answer is withheld.
pub fn response(
    cfg: &Arc<ProtectConfig>,
    vault: &Arc<Vault>,
    caller: &Caller,
    framing: Framing,
    bytes: Bytes,
    record: &mut ProtectRecord,
) -> Result<Bytes, GatewayError> {
    if cfg.policy.mode(caller.tenant.as_deref()) == Mode::Off {
        return Ok(bytes);
    }
    if framing.is_stream() {
        // A whole stream held by `audit.stream = "buffer"`: the same event rewriting.
        let mut p = StreamProtector::new(cfg.clone(), vault.clone(), caller.clone(), framing);
        let mut out = p.push(&bytes);
        let (before, after) = p.finish(&[]);
        out.extend_from_slice(&before);
        out.extend_from_slice(&after);
        record.merge(p.take_record());
        if record.blocked {
            return Err(blocked_response(record));
        }
        return Ok(Bytes::from(out));
    }
    let Some(spans) = content_spans(&bytes) else {
        // Not JSON (an HTML error page, plain text): scanned whole, as text.
        let out = unparsed(cfg, vault, caller, &bytes, record);
        if record.blocked {
            return Err(blocked_response(record));
        }
        return Ok(out.map_or(bytes, Bytes::from));
    };
    let ctx = caller.ctx(Direction::Response, None);
    let mut edits = Vec::new();
    for s in &spans {
        let text = scan_answer(cfg, &ctx, &s.path, &s.text, record);
        if let Some(t) = restore_answer(vault, caller, &s.text, text, record) {
            edits.push((s.span.clone(), t));
        }
    }
    if record.blocked {
        return Err(blocked_response(record));
    }
    if edits.is_empty() {
        return Ok(bytes);
    }
    Ok(Bytes::from(splice_strings(&bytes, &edits)))
}

/// Protects answer bytes that are not JSON (a buffered body, a stream event's data) as one
/// plain-text string at path `$`, so nothing an upstream sends escapes scanning by being
/// malformed. Returns the rewritten bytes when something changed. Bytes that are not UTF-8 are
/// scanned as lossy text; since a finding there cannot be rewritten in place, one whose action
/// would change the text blocks instead (fail closed).
fn unparsed(
    cfg: &ProtectConfig,
    vault: &Vault,
    caller: &Caller,
    bytes: &[u8],
    record: &mut ProtectRecord,
) -> Option<Vec<u8>> {
    if bytes.is_empty() {
        return None;
    }
    let ctx = caller.ctx(Direction::Response, None);
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let out = scan_answer(cfg, &ctx, "$", text, record);
            restore_answer(vault, caller, text, out, record).map(String::into_bytes)
        }
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            record.blocked |= scan_answer(cfg, &ctx, "$", &text, record).is_some();
            None
        }
    }
}

/// Response-direction actions on one answer string: its findings go into `record` under `path`
/// (a `block` sets `record.blocked`); returns the rewritten text if an action changed it.
fn scan_answer(
    cfg: &ProtectConfig,
    ctx: &Context<'_>,
    path: &str,
    text: &str,
    record: &mut ProtectRecord,
) -> Option<String> {
    let o = scan_and_apply(cfg, text, ctx)?;
    for f in &o.findings {
        record.add(Direction::Response, path, f);
    }
    record.blocked |= o.blocked;
    o.text
}

/// Puts back the values this caller's placeholders stand for, in `rewritten` (what
/// [`scan_answer`] returned) or else in `original`; returns the text to release if it differs
/// from `original`.
fn restore_answer(
    vault: &Vault,
    caller: &Caller,
    original: &str,
    rewritten: Option<String>,
    record: &mut ProtectRecord,
) -> Option<String> {
    let current = rewritten.as_deref().unwrap_or(original);
    if current.contains('\u{27E6}')
        && let Some((t, n)) = caller.restore(vault, current)
    {
        record.restored += n;
        return Some(t);
    }
    rewritten
}

fn blocked_response(record: &ProtectRecord) -> GatewayError {
    GatewayError::content_blocked(
        format!(
            "Warden withheld the model's answer: it contains {}. The exchange is recorded; ask the operator to review `protect.response` if this is intended.",
            record.blocked_types("response")
        ),
        Source::Upstream,
    )
}

impl ProtectRecord {
    /// Adds another record's findings (a stream's, to the request's).
    pub fn merge(&mut self, other: ProtectRecord) {
        for row in other.findings {
            self.add_row(row);
        }
        self.blocked |= other.blocked;
        self.restored += other.restored;
    }
}

/// One stream event waiting for its text to be final.
struct Held {
    raw: Vec<u8>,
    start: u64,
    /// The event's JSON payload, when it has content strings (they are rewritten in it).
    data: Vec<u8>,
    /// Its content strings, in document order: the literal's span in `data`, the piece id, and
    /// the text released for it.
    fields: Vec<Field>,
    waiting: usize,
}

struct Field {
    span: std::ops::Range<usize>,
    id: u64,
    released: Option<String>,
}

/// Rewrites a live stream's events: content protection on the reassembled text of each
/// channel (a choice's content, a tool call's arguments), with a bounded hold-back window.
pub struct StreamProtector {
    cfg: Arc<ProtectConfig>,
    vault: Arc<Vault>,
    caller: Caller,
    framing: Framing,
    splitter: Option<EventSplitter>,
    /// Absolute offset of the next byte pushed.
    pos: u64,
    queue: VecDeque<Held>,
    /// Sequence number of `queue[0]`.
    front_seq: u64,
    /// Piece id → sequence number of its event.
    owner: HashMap<u64, u64>,
    channels: HashMap<String, TextStream>,
    next_id: u64,
    record: ProtectRecord,
    /// Whether an injection finding in the answer changes or blocks it, so text must be held
    /// back until no injection phrase can still be forming.
    hold_injection: bool,
}

impl StreamProtector {
    /// A protector for one stream of `caller`.
    pub fn new(
        cfg: Arc<ProtectConfig>,
        vault: Arc<Vault>,
        caller: Caller,
        framing: Framing,
    ) -> StreamProtector {
        let hold_injection = warden_protect::inject::TYPES.iter().any(|(kind, _)| {
            cfg.policy
                .action(
                    Direction::Response,
                    caller.tenant.as_deref(),
                    kind,
                    warden_protect::Category::Injection,
                )
                .rewrites()
        });
        StreamProtector {
            hold_injection,
            splitter: EventSplitter::new(framing),
            cfg,
            vault,
            caller,
            framing,
            pos: 0,
            queue: VecDeque::new(),
            front_seq: 0,
            owner: HashMap::new(),
            channels: HashMap::new(),
            next_id: 0,
            record: ProtectRecord::default(),
        }
    }

    /// Whether something found must end the stream (a `block` action).
    pub fn blocked(&self) -> bool {
        self.record.blocked
    }

    /// The findings so far.
    pub fn take_record(&mut self) -> ProtectRecord {
        std::mem::take(&mut self.record)
    }

    /// Feeds released bytes (whole events); returns the bytes that may go out now.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.splitter.is_none() {
            self.pos += bytes.len() as u64;
            return bytes.to_vec();
        }
        let mut out = self.add_events(bytes);
        self.step(false);
        if self.queue.len() > MAX_HELD_EVENTS {
            self.step(true);
        }
        self.release(&mut out, u64::MAX);
        out
    }

    /// Ends the stream: `terminal` is the held-back terminal event (and whatever followed);
    /// returns the bytes before it and the (protected) terminal bytes, so the caller can put
    /// the receipt between them.
    pub fn finish(&mut self, terminal: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let at = self.pos;
        let mut before = Vec::new();
        if !terminal.is_empty() {
            let more = self.add_events(terminal);
            before.extend_from_slice(&more);
        }
        if let Some(s) = self.splitter.as_mut() {
            for e in s.finish() {
                // A trailing event the stream did not terminate: its bytes are the end of
                // `terminal` (released bytes never hold a partial event).
                let raw = e
                    .start
                    .checked_sub(at)
                    .and_then(|off| terminal.get(off as usize..))
                    .map_or_else(|| e.data.clone(), <[u8]>::to_vec);
                self.add_event(e.start, raw, &e.data);
            }
        }
        self.step(true);
        self.release(&mut before, at);
        let mut after = Vec::new();
        self.release(&mut after, u64::MAX);
        (before, after)
    }

    /// Splits `bytes` into events and queues them; returns separator bytes that belong to no
    /// held event (they may go out at once).
    fn add_events(&mut self, bytes: &[u8]) -> Vec<u8> {
        let base = self.pos;
        self.pos += bytes.len() as u64;
        let Some(splitter) = self.splitter.as_mut() else {
            return Vec::new();
        };
        let events = splitter.push(bytes);
        // Bytes before the first event belong to the previous event (its separators).
        let first = events
            .first()
            .map_or(bytes.len(), |e| (e.start - base) as usize);
        let mut out = Vec::new();
        match self.queue.back_mut() {
            Some(h) => h.raw.extend_from_slice(&bytes[..first]),
            None => out.extend_from_slice(&bytes[..first]),
        }
        for (i, e) in events.iter().enumerate() {
            let from = (e.start - base) as usize;
            let to = events
                .get(i + 1)
                .map_or(bytes.len(), |n| (n.start - base) as usize);
            self.add_event(e.start, bytes[from..to].to_vec(), &e.data);
        }
        out
    }

    fn add_event(&mut self, start: u64, raw: Vec<u8>, data: &[u8]) {
        let seq = self.front_seq + self.queue.len() as u64;
        let mut held = Held {
            raw,
            start,
            data: Vec::new(),
            fields: Vec::new(),
            waiting: 0,
        };
        // Read from the bytes, not a parsed tree: this runs for every streamed event, and the
        // tree (built, walked twice, dropped) was the largest cost a stream added.
        let Some(spans) = content_spans(data) else {
            // Not JSON: scanned whole, on its own (no window across events), and rewritten in
            // place or blocked like any other text.
            if let Some(mut data) =
                unparsed(&self.cfg, &self.vault, &self.caller, data, &mut self.record)
            {
                if self.framing == Framing::Sse && data.contains(&b'\n') {
                    // Multi-line data was joined with newlines; each line needs its own field.
                    data = String::from_utf8_lossy(&data)
                        .replace('\n', "\ndata: ")
                        .into_bytes();
                }
                held.raw = replace_event_data(self.framing, &held.raw, &data);
            }
            self.queue.push_back(held);
            return;
        };
        if spans.is_empty() {
            self.queue.push_back(held);
            return;
        }
        let mut finals: Vec<&str> = Vec::new();
        let (window, hold_injection) = (self.cfg.stream_window, self.hold_injection);
        for s in &spans {
            let id = self.next_id;
            self.next_id += 1;
            let channel = match self.channels.get_mut(s.path.as_str()) {
                Some(c) => {
                    // A string repeated whole in consecutive events (a label, a status) is a
                    // field, not a delta: what the channel holds is final.
                    if c.is_pending() && s.text.len() >= 2 && c.pending_is(&s.text) {
                        finals.push(&s.path);
                    }
                    c
                }
                None => self
                    .channels
                    .entry(s.path.clone())
                    .or_insert_with(|| TextStream::with_window(window, hold_injection)),
            };
            channel.push(id, &s.text);
            self.owner.insert(id, seq);
            held.fields.push(Field {
                span: s.span.clone(),
                id,
                released: None,
            });
        }
        held.waiting = held.fields.len();
        held.data = data.to_vec();
        // The event joins the queue before any channel is stepped: a piece released now must
        // find its event.
        self.queue.push_back(held);
        // A channel this event did not continue has ended (the next content block, the finish
        // chunk): its held tail is final.
        let idle: Vec<String> = self
            .channels
            .iter()
            .filter(|(k, c)| c.is_pending() && !spans.iter().any(|s| s.path == **k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &idle {
            self.step_channel(k, true);
        }
        for k in finals {
            self.step_channel(k, true);
        }
    }

    fn step(&mut self, last: bool) {
        let keys: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, c)| c.is_pending())
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.step_channel(&k, last);
        }
    }

    fn step_channel(&mut self, path: &str, last: bool) {
        let Some(channel) = self.channels.get_mut(path) else {
            return;
        };
        let ctx = self.caller.ctx(Direction::Response, None);
        let vault = &self.vault;
        let caller = &self.caller;
        let restore = |p: &str| caller.restore(vault, p).map(|(t, _)| t);
        let step = channel.step(
            &self.cfg.scanner,
            &self.cfg.policy,
            &ctx,
            Some(&restore),
            last,
        );
        for f in &step.findings {
            self.record.add(Direction::Response, path, f);
        }
        self.record.blocked |= step.blocked;
        self.record.restored += step.restored;
        for (id, text) in step.released {
            let Some(seq) = self.owner.remove(&id) else {
                continue;
            };
            let Some(held) = self.queue.get_mut((seq - self.front_seq) as usize) else {
                continue;
            };
            if let Some(field) = held.fields.iter_mut().find(|f| f.id == id) {
                field.released = Some(text);
                held.waiting -= 1;
            }
        }
    }

    /// Moves final events that start before `before` from the front of the queue to `out`.
    fn release(&mut self, out: &mut Vec<u8>, before: u64) {
        while let Some(front) = self.queue.front() {
            if front.waiting > 0 || front.start >= before || self.record.blocked {
                return;
            }
            let held = self.queue.pop_front().expect("front exists");
            self.front_seq += 1;
            out.extend_from_slice(&self.render(held));
        }
    }

    fn render(&self, held: Held) -> Vec<u8> {
        let edits: Vec<(std::ops::Range<usize>, &str)> = held
            .fields
            .iter()
            .filter_map(|f| {
                let released = f.released.as_deref()?;
                let original = string_literal(&held.data[f.span.clone()])?;
                (original != released).then(|| (f.span.clone(), released))
            })
            .collect();
        if edits.is_empty() {
            return held.raw;
        }
        let data = splice_strings(&held.data, &edits);
        replace_event_data(self.framing, &held.raw, &data)
    }
}

/// Findings in a response that was released without a protector (a stream whose policy
/// changes nothing): reported under `$.output`, `$.reasoning` and `$.tool_calls[i].arguments`.
pub fn response_findings(
    cfg: &ProtectConfig,
    caller: &Caller,
    resp: &ExchangeResponse,
    record: &mut ProtectRecord,
) {
    if cfg.policy.mode(caller.tenant.as_deref()) == Mode::Off {
        return;
    }
    let ctx = caller.ctx(Direction::Response, None);
    let mut scan = |path: &str, text: &str| {
        if let Some(o) = scan_and_apply(cfg, text, &ctx) {
            for f in &o.findings {
                record.add(Direction::Response, path, f);
            }
        }
    };
    scan("$.output", &resp.output_text);
    scan("$.reasoning", &resp.reasoning);
    for (i, c) in resp.tool_calls.iter().enumerate() {
        scan(&format!("$.tool_calls[{i}].arguments"), &c.arguments);
    }
}

/// Replaces every detected value in what the ledger keeps of `rec` with its type label
/// (`audit.capture = "redacted"`): prompts, system text, tool calls, tool results, output and
/// reasoning. Values a request tokenized already appear as placeholders.
pub fn redact_record(cfg: &ProtectConfig, rec: &mut ExchangeRecord) {
    if let Some(req) = rec.exchange.request.as_mut() {
        redact_request(cfg, req);
    }
    if let Some(resp) = rec.exchange.response.as_mut() {
        redact_response(cfg, resp);
    }
}

pub(crate) fn redact_text(cfg: &ProtectConfig, text: &mut String) {
    let found = cfg.scanner.scan(text);
    if found.is_empty() {
        return;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for d in &found {
        out.push_str(&text[at..d.start]);
        out.push_str(&transform::label(&d.kind));
        at = d.end;
    }
    out.push_str(&text[at..]);
    *text = out;
}

fn redact_request(cfg: &ProtectConfig, req: &mut ExchangeRequest) {
    use warden_protocol::Content;
    for part in &mut req.system {
        redact_text(cfg, &mut part.text);
    }
    for m in &mut req.messages {
        for c in &mut m.content {
            match c {
                Content::Text(p) | Content::Reasoning(p) => redact_text(cfg, &mut p.text),
                Content::ToolResult { content, .. } => redact_text(cfg, &mut content.text),
                Content::ToolCall(call) => redact_text(cfg, &mut call.arguments),
                Content::Media { .. } => {}
            }
        }
    }
    for t in &mut req.tools {
        if let Some(d) = t.description.as_mut() {
            redact_text(cfg, d);
        }
    }
}

fn redact_response(cfg: &ProtectConfig, resp: &mut ExchangeResponse) {
    redact_text(cfg, &mut resp.output_text);
    redact_text(cfg, &mut resp.reasoning);
    for c in &mut resp.tool_calls {
        redact_text(cfg, &mut c.arguments);
    }
    if let Some(e) = resp.error.as_mut() {
        redact_text(cfg, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protector() -> StreamProtector {
        StreamProtector::new(
            Arc::new(ProtectConfig::default()),
            vault(),
            Caller::default(),
            Framing::Sse,
        )
    }

    fn vault() -> Arc<Vault> {
        Arc::new(Vault::new(
            Vault::generate_key(),
            std::time::Duration::from_secs(60),
        ))
    }

    /// A buffered JSON answer through [`response`] with the default config.
    fn buffered(body: impl Into<Bytes>) -> (Result<Bytes, GatewayError>, ProtectRecord) {
        let mut record = ProtectRecord::default();
        let out = response(
            &Arc::new(ProtectConfig::default()),
            &vault(),
            &Caller::default(),
            Framing::Json,
            body.into(),
            &mut record,
        );
        (out, record)
    }

    fn gemini_event(text: &str) -> Vec<u8> {
        let v = serde_json::json!({"candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]}],
            "usageMetadata": {"promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1}]}});
        format!("data: {v}\n\n").into_bytes()
    }

    #[test]
    fn text_flows_with_at_most_a_word_of_delay() {
        let mut p = protector();
        let words = ["Hello", " there,", " how", " are", " you", " today?"];
        let mut out = Vec::new();
        for (i, w) in words.iter().enumerate() {
            out.extend(p.push(&gemini_event(w)));
            if i >= 2 {
                // Everything but the trailing word (and the event carrying it) is out.
                let text = String::from_utf8_lossy(&out);
                assert!(text.contains(words[i - 2]), "after {w:?}: {text}");
            }
        }
        let (before, after) = p.finish(b"");
        out.extend(before);
        out.extend(after);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("data: ").count(), words.len(), "{text}");
        assert!(text.contains("today?"));
    }

    #[test]
    fn a_secret_split_across_events_is_rewritten_in_place() {
        let mut p = protector();
        let mut out = Vec::new();
        for piece in [
            "The token is gh",
            "p_R4nd0mT0k3nV4lu3F0",
            "rT3st1ngOnlyAbC9xy",
            " ok.",
        ] {
            out.extend(p.push(&gemini_event(piece)));
        }
        let (before, after) = p.finish(b"");
        out.extend(before);
        out.extend(after);
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("R4nd0m"), "{text}");
        assert!(text.contains("[GITHUB_TOKEN]"), "{text}");
        // Every event is still a well-formed SSE event with JSON data.
        for line in text.lines().filter(|l| l.starts_with("data: ")) {
            serde_json::from_str::<serde_json::Value>(&line[6..]).expect("valid JSON");
        }
        let record = p.take_record();
        assert_eq!(record.findings[0].kind, "github_token");
        assert_eq!(record.findings[0].action, "redact");
    }

    const TOKEN: &str = "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngOnlyAbC9xy";

    #[test]
    fn an_event_that_is_not_json_is_scanned_as_text_and_rewritten() {
        let mut p = protector();
        let mut out = p.push(&gemini_event("Hello"));
        // Broken JSON, on two data lines, carrying a token on the second.
        let bad = format!("data: {{\"oops\": \ndata: leaked {TOKEN} here\n\n");
        out.extend(p.push(bad.as_bytes()));
        out.extend(p.push(&gemini_event(" world")));
        let (before, after) = p.finish(b"");
        out.extend(before);
        out.extend(after);
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("R4nd0m"), "{text}");
        assert!(
            text.contains("data: {\"oops\": \ndata: leaked [GITHUB_TOKEN] here\n\n"),
            "{text}"
        );
        assert!(text.contains("Hello") && text.contains(" world"), "{text}");
        let record = p.take_record();
        assert!(!record.blocked);
        assert_eq!(record.findings.len(), 1);
        assert_eq!(record.findings[0].kind, "github_token");
        assert_eq!(record.findings[0].path, "$");
    }

    #[test]
    fn an_answer_that_is_not_json_is_scanned_as_text() {
        // An HTML error page echoing a token: rewritten where it stands.
        let page = format!("<html><body>bad gateway: key {TOKEN}</body></html>");
        let (out, record) = buffered(page);
        assert_eq!(
            out.unwrap(),
            "<html><body>bad gateway: key [GITHUB_TOKEN]</body></html>"
        );
        assert_eq!(record.findings[0].path, "$");
        // Not UTF-8: the token is found but cannot be rewritten in place, so the answer is
        // withheld rather than released with it.
        let mut binary = format!("key {TOKEN} ").into_bytes();
        binary.extend_from_slice(&[0xff, 0xfe, 0x00]);
        let (out, record) = buffered(binary);
        assert!(out.is_err() && record.blocked);
        // Text without findings passes byte for byte.
        let (out, record) = buffered("upstream timed out");
        assert_eq!(out.unwrap(), "upstream timed out");
        assert!(record.findings.is_empty());
    }

    #[test]
    fn a_buffered_answer_changes_only_in_the_rewritten_literal() {
        // Members out of the usual order, odd spacing, a float and an escaped string: a tree
        // re-serialized would change all of them.
        let body = "{\"model\": \"m\",  \"choices\": [ {\"message\": {\"role\":\"assistant\",\n \"content\": \"use ghp_R4nd0mT0k3nV4lu3F0rT3st1ngOnlyAbC9xy \\u00e9\"}, \"index\": 0} ], \"id\": \"c1\", \"t\": 1.50}";
        let (out, record) = buffered(body);
        let out = out.expect("redacted, not blocked");
        let out = String::from_utf8(out.to_vec()).unwrap();
        let at = body.find("\"use ghp_").unwrap();
        let end = body[at + 1..].find('"').unwrap() + at + 2;
        assert_eq!(&out[..at], &body[..at]);
        assert!(out.ends_with(&body[end..]), "{out}");
        let literal = &out[at..out.len() - (body.len() - end)];
        assert_eq!(
            serde_json::from_str::<String>(literal).unwrap(),
            "use [GITHUB_TOKEN] é"
        );
        assert_eq!(record.findings[0].path, "$.choices[0].message.content");
    }
}
