//! Tool calls as units the gateway can judge before the agent sees them: which calls a stream
//! event carries and when each is complete ([`ToolCallTracker`]), how to rewrite a stream or a
//! buffered body so that refused calls never reach the agent ([`ToolCallTracker::rewrite`],
//! [`rewrite_response`]), and how to withdraw tool definitions from a request ([`strip_tools`]).
//!
//! This module owns reading and writing the tool-call parts of provider JSON for that purpose. It
//! must not decide anything (which call is refused and why is the caller's) and must not disagree
//! with the decoders: a call is whatever [`crate::parse_response`] and [`crate::StreamInspector`]
//! report as one, in the same order, so the slots used here (0-based, in order of first
//! appearance) name the same calls as `parse_response(..).tool_calls`. Every reader here mirrors
//! its provider module's decoder for that reason.
//!
//! A refused call is replaced by assistant text carrying the caller's explanation, where the call
//! was, and the events after it stay consistent: a stop reason that announced tool calls becomes
//! the normal stop once no allowed call remains, and whole-response summaries (Responses'
//! `response.completed`) no longer list the call. Rewritten JSON is reserialized with
//! `serde_json` (keys come out sorted; SDKs do not care); events that need no change are
//! [`Rewrite::Keep`] so their bytes pass untouched.
//!
//! One deliberate departure from "a call is complete when the next one starts": OpenAI Chat
//! streams may interleave the argument fragments of parallel calls (`index` 0, 1, then 0 again,
//! as in this crate's fixture), so a call there is complete only at its choice's `finish_reason`,
//! `[DONE]`, or the end of the stream. Completing it earlier would judge a prefix of its
//! arguments and let the rest through unjudged.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::ProtocolError;
use crate::content::{EventSplitter, replace_event_data};
use crate::exchange::ToolCall;
use crate::framing::Framing;
use crate::json::{self, arguments_text, str_of, string_of, u64_of};
use crate::route::{Operation, Provider, Route};

/// Which tool calls one stream event carries, as seen by a [`ToolCallTracker`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventCalls {
    /// Slots (0-based, in order of first appearance in the response) of calls this event carries
    /// a part of and that are still incomplete after it.
    pub open: Vec<usize>,
    /// Calls this event completes (the event itself may carry their last part, or be the
    /// "done/stop" event that closes them), in order.
    pub completed: Vec<(usize, ToolCall)>,
    /// Whether the event carries anything that is not a tool-call part (text, reasoning, usage, a
    /// stop reason, metadata). Always true for an event that carries no tool-call part at all,
    /// and for an event that is not JSON.
    pub other: bool,
}

/// One event to send in place of the event being rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// SSE `event:` name; `None` for unnamed SSE events, NDJSON lines and JSON-array elements.
    pub name: Option<String>,
    /// The payload (one line of JSON).
    pub data: Vec<u8>,
}

/// What to send in place of one stream event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Send the event unchanged.
    Keep,
    /// Send nothing for it.
    Drop,
    /// Send these events instead, in order.
    Replace(Vec<OutEvent>),
}

impl Rewrite {
    /// The event, same name, with `data` as its new payload.
    fn replaced(name: Option<&str>, data: &Value) -> Rewrite {
        Rewrite::Replace(vec![OutEvent {
            name: name.map(str::to_owned),
            data: serde_json::to_vec(data).unwrap_or_default(),
        }])
    }

    /// The bytes to send for one event, given its raw bytes as framed on the wire: from its start
    /// up to the next event's start (the offsets [`EventSplitter`] reports), separators included.
    ///
    /// A single replacement keeps the raw framing around the payload ([`replace_event_data`]:
    /// SSE `event:`/`id:`/comment lines, line endings, array separators) when its SSE name is the
    /// original's; several replacements are written fresh with the raw's line endings. The
    /// rewrites of this module never drop an element of a JSON-array stream (Gemini calls are
    /// replaced by text parts), which is the one framing where dropping bytes could break the
    /// array's commas.
    ///
    /// ```
    /// use warden_protocol::{Framing, OutEvent, Rewrite};
    /// let raw = b"event: ping\r\ndata: {}\r\n\r\n";
    /// let two = Rewrite::Replace(vec![
    ///     OutEvent { name: Some("a".into()), data: b"{\"x\":1}".to_vec() },
    ///     OutEvent { name: None, data: b"{\"y\":2}".to_vec() },
    /// ]);
    /// assert_eq!(two.render(Framing::Sse, raw), b"event: a\r\ndata: {\"x\":1}\r\n\r\ndata: {\"y\":2}\r\n\r\n");
    /// assert_eq!(Rewrite::Keep.render(Framing::Sse, raw), raw);
    /// assert!(Rewrite::Drop.render(Framing::Sse, raw).is_empty());
    /// ```
    pub fn render(&self, framing: Framing, raw: &[u8]) -> Vec<u8> {
        let events = match self {
            Rewrite::Keep => return raw.to_vec(),
            Rewrite::Drop => return Vec::new(),
            Rewrite::Replace(events) => events,
        };
        match framing {
            Framing::Sse => {
                if let [one] = events.as_slice()
                    && one.name.as_deref() == sse_event_name(raw)
                {
                    return replace_event_data(framing, raw, &one.data);
                }
                let eol: &[u8] = if raw.windows(2).any(|w| w == b"\r\n") {
                    b"\r\n"
                } else if raw.contains(&b'\r') {
                    b"\r"
                } else {
                    b"\n"
                };
                let mut out = Vec::new();
                for e in events {
                    if let Some(name) = &e.name {
                        out.extend_from_slice(b"event: ");
                        out.extend_from_slice(name.as_bytes());
                        out.extend_from_slice(eol);
                    }
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(&e.data);
                    out.extend_from_slice(eol);
                    out.extend_from_slice(eol);
                }
                out
            }
            Framing::Ndjson => {
                if let [one] = events.as_slice() {
                    return replace_event_data(framing, raw, &one.data);
                }
                let eol: &[u8] = if raw.ends_with(b"\r\n") {
                    b"\r\n"
                } else {
                    b"\n"
                };
                let mut out = Vec::new();
                for e in events {
                    out.extend_from_slice(&e.data);
                    out.extend_from_slice(eol);
                }
                out
            }
            Framing::JsonArrayStream | Framing::Json => {
                // Several elements in place of one: joined with commas, the raw's own separator
                // after them kept.
                let joined = events
                    .iter()
                    .map(|e| e.data.as_slice())
                    .collect::<Vec<_>>()
                    .join(&b","[..]);
                replace_event_data(framing, raw, &joined)
            }
        }
    }
}

/// The `event:` field of a raw SSE event, if it has one.
fn sse_event_name(raw: &[u8]) -> Option<&str> {
    raw.split(|&b| b == b'\n' || b == b'\r').find_map(|line| {
        let value = line.strip_prefix(b"event:")?;
        let value = value.strip_prefix(b" ").unwrap_or(value);
        std::str::from_utf8(value).ok()
    })
}

/// Follows the tool calls of one streamed response, event by event, and rewrites the stream when
/// some of them are refused.
///
/// Feed it every complete event in order ([`ToolCallTracker::observe`]); once the calls are
/// judged, pass every event from the first held one on through [`ToolCallTracker::rewrite`]. It
/// never panics, whatever the events hold: an event it cannot read carries no call part.
///
/// ```
/// use std::collections::BTreeMap;
/// use warden_protocol::{classify, Rewrite, ToolCallTracker};
/// let route = classify("POST", "/v1/messages").unwrap();
/// let mut t = ToolCallTracker::new(&route);
/// let start = br#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"sh","input":{}}}"#;
/// let delta = br#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"cmd\":\"rm -rf /\"}"}}"#;
/// let stop = br#"{"type":"content_block_stop","index":0}"#;
/// assert_eq!(t.observe(Some("content_block_start"), start).open, [0]);
/// assert_eq!(t.observe(Some("content_block_delta"), delta).open, [0]);
/// let done = t.observe(Some("content_block_stop"), stop);
/// assert_eq!(done.completed[0].1.arguments, r#"{"cmd":"rm -rf /"}"#);
///
/// let denied = BTreeMap::from([(0, "[warden] tool call \"sh\" was blocked".to_string())]);
/// assert!(matches!(t.rewrite(Some("content_block_start"), start, &denied), Rewrite::Replace(_)));
/// assert_eq!(t.rewrite(Some("content_block_delta"), delta, &denied), Rewrite::Drop);
/// assert_eq!(t.rewrite(Some("content_block_stop"), stop, &denied), Rewrite::Keep);
/// ```
#[derive(Debug)]
pub struct ToolCallTracker {
    calls: Calls,
    shape: Shape,
}

/// The provider-specific part of a tracker.
#[derive(Debug)]
enum Shape {
    /// Routes without tool calls.
    None,
    Chat(ChatState),
    Responses(ResponsesState),
    Messages(MessagesState),
    /// Gemini: whole `functionCall` parts.
    Gemini(WholeState),
    /// Ollama: whole `message.tool_calls` entries.
    Ollama(WholeState),
}

/// Which reader a route's responses need: the same choice as [`crate::protocol::for_route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    None,
    Chat,
    Responses,
    Messages,
    Gemini,
    Ollama,
}

fn kind(route: &Route) -> Kind {
    match (route.provider, route.operation) {
        (_, Operation::ListModels | Operation::OllamaInfo | Operation::EmbedContent) => Kind::None,
        (Provider::OpenAi, Operation::Embeddings) => Kind::None,
        (Provider::OpenAi, Operation::Responses) => Kind::Responses,
        (Provider::OpenAi, _) => Kind::Chat,
        (Provider::Anthropic, _) => Kind::Messages,
        (Provider::Gemini, _) => Kind::Gemini,
        (Provider::Ollama, _) => Kind::Ollama,
    }
}

impl ToolCallTracker {
    /// A tracker for a response to `route`. Routes without tool calls (embeddings, model lists)
    /// get one that reports every event as `other` and rewrites nothing.
    pub fn new(route: &Route) -> ToolCallTracker {
        let shape = match kind(route) {
            Kind::None => Shape::None,
            Kind::Chat => Shape::Chat(ChatState::default()),
            Kind::Responses => Shape::Responses(ResponsesState::default()),
            Kind::Messages => Shape::Messages(MessagesState::default()),
            Kind::Gemini => Shape::Gemini(WholeState::default()),
            Kind::Ollama => Shape::Ollama(WholeState::default()),
        };
        ToolCallTracker {
            calls: Calls::default(),
            shape,
        }
    }

    /// Reads one complete event (its SSE `event:` name, if any, and its payload) and says which
    /// calls it carries a part of and which it completes. Never panics: an event that is not
    /// JSON reports no call and `other: true`.
    pub fn observe(&mut self, name: Option<&str>, data: &[u8]) -> EventCalls {
        let mut report = Report::default();
        let data = json::trim(data);
        match &mut self.shape {
            Shape::None => {}
            Shape::Chat(s) => s.observe(&mut self.calls, name, data, &mut report),
            Shape::Responses(s) => s.observe(&mut self.calls, name, data, &mut report),
            Shape::Messages(s) => s.observe(&mut self.calls, name, data, &mut report),
            Shape::Gemini(s) => s.observe_gemini(&mut self.calls, data, &mut report),
            Shape::Ollama(s) => s.observe_ollama(&mut self.calls, data, &mut report),
        }
        report.into_calls(&self.calls)
    }

    /// Completes the calls still open when the stream ended without closing them (a truncated
    /// stream): they are to be judged like any other.
    pub fn finish(&mut self) -> Vec<(usize, ToolCall)> {
        let mut report = Report::default();
        self.calls.complete_open(|_| true, &mut report);
        report.completed
    }

    /// Every call seen so far, by slot.
    pub fn calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.calls.slots.iter().map(|s| &s.call)
    }

    /// Rewrites one event for a stream in which the calls in `denied` (slot → explanation text)
    /// were refused. Call it for every event from the first held one on, in order, after
    /// judging, with the same `denied` each time; events it does not recognise are
    /// [`Rewrite::Keep`].
    ///
    /// A refused call becomes assistant text where it was: its delta chunks are dropped and the
    /// explanation is written into the chunk that started it (OpenAI Chat `delta.content`), a
    /// text block at the same index (Anthropic), a message item at the same `output_index`
    /// (Responses, whose later `sequence_number`s are renumbered to stay consecutive), a text
    /// part in place of the `functionCall` part (Gemini), or appended `message.content` (Ollama).
    /// A stop reason announcing tool calls (`tool_calls`, `function_call`, `tool_use`) becomes the
    /// normal stop (`stop`, `end_turn`) when every call of that message was refused.
    pub fn rewrite(
        &mut self,
        name: Option<&str>,
        data: &[u8],
        denied: &BTreeMap<usize, String>,
    ) -> Rewrite {
        let data = json::trim(data);
        let calls = &mut self.calls;
        match &mut self.shape {
            Shape::None => Rewrite::Keep,
            Shape::Chat(s) => s.rewrite(calls, name, data, denied),
            Shape::Responses(s) => s.rewrite(name, data, denied),
            Shape::Messages(s) => s.rewrite(calls, name, data, denied),
            Shape::Gemini(s) => s.rewrite_gemini(calls, name, data, denied),
            Shape::Ollama(s) => s.rewrite_ollama(calls, name, data, denied),
        }
    }
}

/// One call being followed.
#[derive(Debug, Default)]
struct Slot {
    call: ToolCall,
    done: bool,
    /// Choice / candidate index the call belongs to (0 where the provider has one message).
    choice: u64,
    /// Whether text came before the call in its message: an explanation written into that same
    /// text then starts a new paragraph instead of running on.
    text_before: bool,
    /// Whether [`ToolCallTracker::rewrite`] has met the call (Gemini and Ollama identity
    /// matching) or written its explanation (OpenAI Chat).
    rewritten: bool,
}

/// Every call of the response, by slot.
#[derive(Debug, Default)]
struct Calls {
    slots: Vec<Slot>,
}

/// What one event did, before it becomes an [`EventCalls`].
#[derive(Debug, Default)]
struct Report {
    touched: Vec<usize>,
    completed: Vec<(usize, ToolCall)>,
    other: bool,
}

impl Report {
    fn into_calls(self, calls: &Calls) -> EventCalls {
        let mut open: Vec<usize> = Vec::new();
        for slot in self.touched {
            if !calls.slots[slot].done && !open.contains(&slot) {
                open.push(slot);
            }
        }
        let carries_part = !open.is_empty() || !self.completed.is_empty();
        EventCalls {
            open,
            completed: self.completed,
            other: self.other || !carries_part,
        }
    }
}

impl Calls {
    fn open(&mut self, choice: u64, text_before: bool, call: ToolCall, r: &mut Report) -> usize {
        self.slots.push(Slot {
            call,
            choice,
            text_before,
            ..Slot::default()
        });
        let slot = self.slots.len() - 1;
        r.touched.push(slot);
        slot
    }

    fn complete(&mut self, slot: usize, r: &mut Report) {
        let s = &mut self.slots[slot];
        if !s.done {
            s.done = true;
            r.completed.push((slot, s.call.clone()));
        }
    }

    fn complete_open(&mut self, mut which: impl FnMut(&Slot) -> bool, r: &mut Report) {
        for slot in 0..self.slots.len() {
            if !self.slots[slot].done && which(&self.slots[slot]) {
                self.complete(slot, r);
            }
        }
    }

    /// Whether at least one call matches `which` and every one of them is refused.
    fn all_denied(&self, which: impl Fn(&Slot) -> bool, denied: &BTreeMap<usize, String>) -> bool {
        let mut any = false;
        for (slot, s) in self.slots.iter().enumerate() {
            if which(s) {
                any = true;
                if !denied.contains_key(&slot) {
                    return false;
                }
            }
        }
        any
    }
}

/// The explanation as written into text that may already hold other text.
fn explanation(text_before: bool, text: &str) -> String {
    if text_before {
        format!("\n\n{text}")
    } else {
        text.to_owned()
    }
}

/// One rewritten event with the original's naming (named SSE events stay named).
fn out_event(name: Option<&str>, event_type: &str, value: &Value) -> OutEvent {
    OutEvent {
        name: name.map(|_| event_type.to_owned()),
        data: serde_json::to_vec(value).unwrap_or_default(),
    }
}

/// A non-empty string value.
fn nonempty_str(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

/// A value that says something: not null, `""`, `[]`, `{}` or `false`.
fn meaningful(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI Chat Completions

/// Key of the legacy `function_call`, as in the chat decoder.
const FUNCTION_CALL_KEY: u64 = u64::MAX;

#[derive(Debug, Default)]
struct ChatState {
    choices: BTreeMap<u64, ChatChoice>,
    /// `id`, `object`, `created`, `model`, `system_fingerprint` of the stream's chunks, for an
    /// explanation chunk written from scratch.
    meta: Option<serde_json::Map<String, Value>>,
    /// A chunk skipped by [`plain_text_chunk`] carried text for some choice: calls opened later
    /// count as following text (the choice is not known without parsing).
    text_unindexed: bool,
}

/// Whether a chat chunk can only be text (no tool-call part, no stop reason, no usage, no error),
/// so it needs no parse: the gate sees one of these per streamed token, and parsing each cost
/// more than everything else it does. Every key that matters is looked for as a substring; a
/// `finish_reason` or `usage` must be `null`. Anything unusual falls back to the full parse.
fn plain_text_chunk(data: &[u8]) -> bool {
    use std::sync::LazyLock;

    use memchr::memmem::Finder;
    // Built once: `memmem::find` builds its searcher on every call, which on a 300-byte chunk
    // cost as much as the search.
    static FINDERS: LazyLock<[Finder<'static>; 5]> = LazyLock::new(|| {
        [
            Finder::new(b"tool_calls"),
            Finder::new(b"function_call"),
            Finder::new(b"\"error\""),
            Finder::new(b"\"finish_reason\""),
            Finder::new(b"\"usage\""),
        ]
    });
    let [tool_calls, function_call, error, finish_reason, usage] = &*FINDERS;
    if tool_calls.find(data).is_some()
        || function_call.find(data).is_some()
        || error.find(data).is_some()
    {
        return false;
    }
    let null_after = |key: &Finder<'_>| {
        let mut rest = data;
        while let Some(at) = key.find(rest) {
            let after = &rest[at + key.needle().len()..];
            let value = after
                .iter()
                .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b':'))
                .map(|i| &after[i..]);
            match value {
                Some(v) if v.starts_with(b"null") => rest = &v[4..],
                _ => return false,
            }
        }
        true
    };
    null_after(finish_reason) && null_after(usage)
}

#[derive(Debug, Default)]
struct ChatChoice {
    /// Tool-call `index` (or [`FUNCTION_CALL_KEY`]) → slot.
    by_key: BTreeMap<u64, usize>,
    /// Slots of the choice in order of appearance.
    calls: Vec<usize>,
    has_text: bool,
    /// Index-less calls: the slot `rewrite` last resolved.
    rewrite_last: Option<usize>,
    /// Whether `rewrite` already wrote an explanation into this choice's text.
    rewrite_text: bool,
}

impl ChatState {
    fn observe(&mut self, calls: &mut Calls, name: Option<&str>, data: &[u8], r: &mut Report) {
        if data == b"[DONE]" {
            calls.complete_open(|_| true, r);
            r.other = true;
            return;
        }
        if self.meta.is_some() && plain_text_chunk(data) {
            self.text_unindexed = true;
            r.other = true;
            return;
        }
        let Some(chunk) = json::parse_event(data) else {
            r.other = true;
            return;
        };
        if self.meta.is_none()
            && let Some(obj) = chunk.as_object()
        {
            let keep = ["id", "object", "created", "model", "system_fingerprint"];
            self.meta = Some(
                obj.iter()
                    .filter(|(k, _)| keep.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
        }
        if name == Some("error") || chunk.get("error").is_some_and(meaningful) {
            r.other = true;
        }
        if chunk.get("usage").is_some_and(Value::is_object) {
            r.other = true;
        }
        let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
            r.other = true;
            return;
        };
        if choices.is_empty() {
            r.other = true;
        }
        for (position, choice) in choices.iter().enumerate() {
            let index = u64_of(choice, "index").unwrap_or(position as u64);
            let state = self.choices.entry(index).or_default();
            state.has_text |= self.text_unindexed;
            if let Some(delta) = choice.get("delta").or_else(|| choice.get("message")) {
                if nonempty_str(delta.get("content")) || nonempty_str(delta.get("refusal")) {
                    state.has_text = true;
                }
                if let Some(obj) = delta.as_object() {
                    let tool_keys = ["tool_calls", "function_call", "role"];
                    if obj
                        .iter()
                        .any(|(k, v)| !tool_keys.contains(&k.as_str()) && meaningful(v))
                    {
                        r.other = true;
                    }
                    // A role announced alone is the start of a message, not a call part.
                    if obj.contains_key("role")
                        && !obj.get("tool_calls").is_some_and(meaningful)
                        && !obj.get("function_call").is_some_and(meaningful)
                    {
                        r.other = true;
                    }
                }
                if let Some(entries) = delta.get("tool_calls").and_then(Value::as_array) {
                    for entry in entries {
                        tool_delta(calls, state, index, entry, r);
                    }
                }
                if let Some(call) = delta.get("function_call").filter(|c| c.is_object()) {
                    let slot = match state.by_key.get(&FUNCTION_CALL_KEY) {
                        Some(&slot) => {
                            r.touched.push(slot);
                            slot
                        }
                        None => {
                            let slot = calls.open(index, state.has_text, ToolCall::default(), r);
                            state.by_key.insert(FUNCTION_CALL_KEY, slot);
                            state.calls.push(slot);
                            slot
                        }
                    };
                    merge_call(&mut calls.slots[slot].call, call);
                }
            }
            if nonempty_str(choice.get("text")) {
                state.has_text = true;
                r.other = true;
            }
            if choice.get("logprobs").is_some_and(meaningful) {
                r.other = true;
            }
            if str_of(choice, "finish_reason").is_some() {
                r.other = true;
                calls.complete_open(|s| s.choice == index, r);
            }
        }
    }

    /// The slot a `tool_calls` entry continues, as `rewrite` sees it.
    fn resolve(&mut self, calls: &Calls, index: u64, entry: &Value) -> Option<usize> {
        let state = self.choices.get_mut(&index)?;
        let slot = match u64_of(entry, "index") {
            Some(i) => state.by_key.get(&i).copied(),
            None => match str_of(entry, "id").filter(|id| !id.is_empty()) {
                Some(id) => state
                    .calls
                    .iter()
                    .copied()
                    .find(|&s| calls.slots[s].call.id.as_deref() == Some(id)),
                None => state.rewrite_last.or_else(|| state.calls.last().copied()),
            },
        };
        if slot.is_some() {
            state.rewrite_last = slot;
        }
        slot
    }

    fn rewrite(
        &mut self,
        calls: &mut Calls,
        name: Option<&str>,
        data: &[u8],
        denied: &BTreeMap<usize, String>,
    ) -> Rewrite {
        if data == b"[DONE]" {
            // Explanations of refused calls whose first chunk never came through here.
            let mut events = Vec::new();
            let choices: Vec<u64> = self.choices.keys().copied().collect();
            for index in choices {
                let text = self.unexplained(calls, index, denied);
                if !text.is_empty() {
                    let mut chunk = self.meta.clone().unwrap_or_default();
                    chunk.insert(
                        "choices".into(),
                        json!([{"index": index, "delta": {"content": text},
                            "logprobs": null, "finish_reason": null}]),
                    );
                    events.push(OutEvent {
                        name: name.map(str::to_owned),
                        data: serde_json::to_vec(&chunk).unwrap_or_default(),
                    });
                }
            }
            if events.is_empty() {
                return Rewrite::Keep;
            }
            events.push(OutEvent {
                name: name.map(str::to_owned),
                data: data.to_vec(),
            });
            return Rewrite::Replace(events);
        }
        let Some(mut chunk) = json::parse_event(data) else {
            return Rewrite::Keep;
        };
        let Some(choices) = chunk.get_mut("choices").and_then(Value::as_array_mut) else {
            return Rewrite::Keep;
        };
        let mut changed = false;
        for (position, choice) in choices.iter_mut().enumerate() {
            let index = u64_of(choice, "index").unwrap_or(position as u64);
            let mut text = String::new();
            // The decoder reads `delta`, or `message` from servers that send whole messages.
            let key = if choice.get("delta").is_some() {
                "delta"
            } else {
                "message"
            };
            if let Some(delta) = choice.get_mut(key).filter(|d| d.is_object()) {
                if let Some(Value::Array(entries)) = delta.get_mut("tool_calls") {
                    let mut kept = Vec::with_capacity(entries.len());
                    let mut removed = false;
                    for entry in entries.drain(..) {
                        match self.resolve(calls, index, &entry) {
                            Some(slot) if denied.contains_key(&slot) => {
                                text.push_str(&self.explain(calls, slot, denied));
                                removed = true;
                            }
                            _ => kept.push(entry),
                        }
                    }
                    *entries = kept;
                    if removed {
                        changed = true;
                        if entries.is_empty()
                            && let Some(obj) = delta.as_object_mut()
                        {
                            obj.remove("tool_calls");
                        }
                    }
                }
                if delta.get("function_call").is_some_and(Value::is_object) {
                    let slot = self
                        .choices
                        .get(&index)
                        .and_then(|c| c.by_key.get(&FUNCTION_CALL_KEY).copied());
                    if let Some(slot) = slot.filter(|s| denied.contains_key(s)) {
                        text.push_str(&self.explain(calls, slot, denied));
                        if let Some(obj) = delta.as_object_mut() {
                            obj.remove("function_call");
                        }
                        changed = true;
                    }
                }
            }
            if let Some(reason) = str_of(choice, "finish_reason") {
                let reason = reason.to_owned();
                text.push_str(&self.unexplained(calls, index, denied));
                if matches!(reason.as_str(), "tool_calls" | "function_call")
                    && calls.all_denied(|s| s.choice == index, denied)
                {
                    choice["finish_reason"] = Value::from("stop");
                    changed = true;
                }
            }
            if !text.is_empty() {
                changed = true;
                if let Some(obj) = choice.as_object_mut() {
                    let delta = obj.entry(key).or_insert_with(|| json!({}));
                    if !delta.is_object() {
                        *delta = json!({});
                    }
                    let content = match delta.get("content").and_then(Value::as_str) {
                        Some(existing) => format!("{existing}{text}"),
                        None => text,
                    };
                    delta["content"] = Value::from(content);
                }
            }
        }
        if !changed {
            return Rewrite::Keep;
        }
        if chat_chunk_is_empty(&chunk) {
            return Rewrite::Drop;
        }
        Rewrite::replaced(name, &chunk)
    }

    /// The explanation of a refused call, once: later parts of it add nothing.
    fn explain(
        &mut self,
        calls: &mut Calls,
        slot: usize,
        denied: &BTreeMap<usize, String>,
    ) -> String {
        let s = &mut calls.slots[slot];
        if s.rewritten {
            return String::new();
        }
        s.rewritten = true;
        let state = self.choices.entry(s.choice).or_default();
        let text = explanation(s.text_before || state.rewrite_text, &denied[&slot]);
        state.rewrite_text = true;
        text
    }

    /// Explanations not yet written for the refused calls of a choice.
    fn unexplained(
        &mut self,
        calls: &mut Calls,
        index: u64,
        denied: &BTreeMap<usize, String>,
    ) -> String {
        let mut text = String::new();
        for &slot in denied.keys() {
            if calls.slots.get(slot).is_some_and(|s| s.choice == index) {
                text.push_str(&self.explain(calls, slot, denied));
            }
        }
        text
    }
}

/// A streamed tool-call delta, read as the chat decoder reads it: keyed by `index`, or (servers
/// that omit it) continuing the last call unless a new id starts another.
fn tool_delta(
    calls: &mut Calls,
    state: &mut ChatChoice,
    index: u64,
    entry: &Value,
    r: &mut Report,
) {
    let id = str_of(entry, "id").filter(|id| !id.is_empty());
    let existing = match u64_of(entry, "index") {
        Some(key) => state.by_key.get(&key).copied(),
        None => state
            .calls
            .last()
            .copied()
            .filter(|&last| id.is_none() || calls.slots[last].call.id.as_deref() == id),
    };
    let slot = match existing {
        Some(slot) => {
            r.touched.push(slot);
            slot
        }
        None => {
            let slot = calls.open(index, state.has_text, ToolCall::default(), r);
            if let Some(key) = u64_of(entry, "index") {
                state.by_key.insert(key, slot);
            }
            state.calls.push(slot);
            slot
        }
    };
    let call = &mut calls.slots[slot].call;
    if call.id.is_none() {
        call.id = id.map(str::to_owned);
    }
    let inner = entry
        .get("function")
        .or_else(|| entry.get("custom"))
        .unwrap_or(&Value::Null);
    merge_call(call, inner);
    if let Some(input) = str_of(inner, "input") {
        call.arguments.push_str(input);
    }
}

/// `{"name","arguments"}`: the name is set once, argument text accumulates.
fn merge_call(call: &mut ToolCall, f: &Value) {
    if call.name.is_empty()
        && let Some(name) = str_of(f, "name")
    {
        call.name = name.to_owned();
    }
    if let Some(args) = str_of(f, "arguments") {
        call.arguments.push_str(args);
    }
}

/// A chunk left with nothing to say once refused call parts are gone.
fn chat_chunk_is_empty(chunk: &Value) -> bool {
    if chunk.get("usage").is_some_and(meaningful) || chunk.get("error").is_some_and(meaningful) {
        return false;
    }
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
        return false;
    };
    !choices.is_empty()
        && choices.iter().all(|c| {
            let delta_empty = match c.get("delta") {
                None | Some(Value::Null) => true,
                Some(Value::Object(d)) => d.values().all(|v| !meaningful(v)),
                Some(_) => false,
            };
            delta_empty
                && !c.get("finish_reason").is_some_and(meaningful)
                && !c.get("logprobs").is_some_and(meaningful)
                && !nonempty_str(c.get("text"))
        })
}

// ---------------------------------------------------------------------------------------------
// OpenAI Responses

#[derive(Debug, Default)]
struct ResponsesState {
    /// `output_index` → slot.
    by_index: BTreeMap<u64, usize>,
    /// Slot → the function-call item's `id` (`fc_…`), for the message item replacing it.
    item_ids: BTreeMap<usize, String>,
    /// Events added minus events removed by `rewrite` so far: later `sequence_number`s move by
    /// this much so they stay consecutive.
    seq_shift: i64,
}

/// Item types that are calls for the agent (built-in tools run by OpenAI are not).
fn is_call_item(item: &Value) -> bool {
    matches!(
        str_of(item, "type"),
        Some("function_call" | "custom_tool_call")
    )
}

/// A function-call or custom-tool-call item as a call.
fn item_call(item: &Value) -> ToolCall {
    let key = if str_of(item, "type") == Some("custom_tool_call") {
        "input"
    } else {
        "arguments"
    };
    ToolCall {
        id: string_of(item, "call_id"),
        name: string_of(item, "name").unwrap_or_default(),
        arguments: string_of(item, key).unwrap_or_default(),
    }
}

/// The id of the message item standing in for a refused call item.
fn message_id(item_id: Option<&str>, output_index: u64) -> String {
    match item_id.and_then(|id| id.strip_prefix("fc_").or_else(|| id.strip_prefix("ctc_"))) {
        Some(rest) => format!("msg_{rest}"),
        None => format!("msg_warden_{output_index}"),
    }
}

fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

fn message_item(id: &str, status: &str, text: Option<&str>) -> Value {
    let content = match text {
        Some(t) => json!([output_text_part(t)]),
        None => json!([]),
    };
    json!({"id": id, "type": "message", "status": status, "content": content, "role": "assistant"})
}

impl ResponsesState {
    fn slot_at(&mut self, calls: &mut Calls, index: u64, r: &mut Report) -> usize {
        match self.by_index.get(&index) {
            Some(&slot) => {
                r.touched.push(slot);
                slot
            }
            None => {
                let slot = calls.open(0, false, ToolCall::default(), r);
                self.by_index.insert(index, slot);
                slot
            }
        }
    }

    fn observe(&mut self, calls: &mut Calls, name: Option<&str>, data: &[u8], r: &mut Report) {
        let Some(event) = json::parse_event(data) else {
            r.other = true;
            return;
        };
        let ty = json::event_type(&event, name);
        let index = u64_of(&event, "output_index").unwrap_or(0);
        match ty {
            "response.output_item.added" | "response.output_item.done"
                if event.get("item").is_some_and(is_call_item) =>
            {
                let item = &event["item"];
                let slot = self.slot_at(calls, index, r);
                // A whole item replaces what deltas built, as in the decoder.
                calls.slots[slot].call = item_call(item);
                if let Some(id) = str_of(item, "id") {
                    self.item_ids.insert(slot, id.to_owned());
                }
                if ty == "response.output_item.done" {
                    calls.complete(slot, r);
                }
            }
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                let slot = self.slot_at(calls, index, r);
                let delta = str_of(&event, "delta").unwrap_or_default();
                calls.slots[slot].call.arguments.push_str(delta);
            }
            "response.function_call_arguments.done" | "response.custom_tool_call_input.done" => {
                let slot = self.slot_at(calls, index, r);
                let key = if ty == "response.function_call_arguments.done" {
                    "arguments"
                } else {
                    "input"
                };
                if let Some(whole) = string_of(&event, key) {
                    calls.slots[slot].call.arguments = whole;
                }
            }
            "response.completed" | "response.failed" | "response.incomplete" => {
                r.other = true;
                // The final output is what the client's SDK keeps: its call items are the calls.
                let output = event
                    .get("response")
                    .and_then(|resp| resp.get("output"))
                    .and_then(Value::as_array);
                for (i, item) in output.into_iter().flatten().enumerate() {
                    if !is_call_item(item) {
                        continue;
                    }
                    let slot = self.slot_at(calls, i as u64, r);
                    if !calls.slots[slot].done {
                        calls.slots[slot].call = item_call(item);
                    }
                    if let Some(id) = str_of(item, "id") {
                        self.item_ids.entry(slot).or_insert_with(|| id.to_owned());
                    }
                }
                calls.complete_open(|_| true, r);
            }
            _ => r.other = true,
        }
    }

    fn rewrite(
        &mut self,
        name: Option<&str>,
        data: &[u8],
        denied: &BTreeMap<usize, String>,
    ) -> Rewrite {
        let Some(mut event) = json::parse_event(data) else {
            return Rewrite::Keep;
        };
        let ty = json::event_type(&event, name).to_owned();
        let index = u64_of(&event, "output_index").unwrap_or(0);
        let seq = event.get("sequence_number").and_then(Value::as_i64);
        let refused = self
            .by_index
            .get(&index)
            .copied()
            .filter(|s| denied.contains_key(s));
        let mut replaced: Option<Vec<(String, Value)>> = None;
        if let Some(slot) = refused {
            let text = denied[&slot].as_str();
            let msg = message_id(self.item_ids.get(&slot).map(String::as_str), index);
            let item_event = |t: &str, extra: Value| {
                let mut e =
                    json!({"type": t, "item_id": msg, "output_index": index, "content_index": 0});
                if let (Some(obj), Value::Object(extra)) = (e.as_object_mut(), extra) {
                    obj.extend(extra);
                }
                (t.to_owned(), e)
            };
            match ty.as_str() {
                "response.output_item.added" if event.get("item").is_some_and(is_call_item) => {
                    replaced = Some(vec![
                        (
                            ty.clone(),
                            json!({"type": ty, "output_index": index,
                                "item": message_item(&msg, "in_progress", None)}),
                        ),
                        item_event(
                            "response.content_part.added",
                            json!({"part": output_text_part("")}),
                        ),
                    ]);
                }
                "response.function_call_arguments.delta"
                | "response.function_call_arguments.done"
                | "response.custom_tool_call_input.delta"
                | "response.custom_tool_call_input.done" => replaced = Some(Vec::new()),
                "response.output_item.done" if event.get("item").is_some_and(is_call_item) => {
                    replaced = Some(vec![
                        item_event(
                            "response.output_text.delta",
                            json!({"delta": text, "logprobs": []}),
                        ),
                        item_event(
                            "response.output_text.done",
                            json!({"text": text, "logprobs": []}),
                        ),
                        item_event(
                            "response.content_part.done",
                            json!({"part": output_text_part(text)}),
                        ),
                        (
                            ty.clone(),
                            json!({"type": ty, "output_index": index,
                                "item": message_item(&msg, "completed", Some(text))}),
                        ),
                    ]);
                }
                _ => {}
            }
        }
        if matches!(
            ty.as_str(),
            "response.completed" | "response.failed" | "response.incomplete"
        ) {
            let output = event
                .get_mut("response")
                .and_then(|r| r.get_mut("output"))
                .and_then(Value::as_array_mut);
            let mut changed = false;
            for (i, item) in output.into_iter().flatten().enumerate() {
                let slot = self.by_index.get(&(i as u64)).copied();
                if let Some(slot) = slot.filter(|s| denied.contains_key(s))
                    && is_call_item(item)
                {
                    let msg = message_id(str_of(item, "id"), i as u64);
                    *item = message_item(&msg, "completed", Some(&denied[&slot]));
                    changed = true;
                }
            }
            if changed {
                replaced = Some(vec![(ty.clone(), event.clone())]);
            }
        }
        let Some(list) = replaced else {
            // Unchanged, but maybe renumbered.
            return match seq {
                Some(n) if self.seq_shift != 0 => {
                    event["sequence_number"] = Value::from(n + self.seq_shift);
                    Rewrite::Replace(vec![out_event(name, &ty, &event)])
                }
                _ => Rewrite::Keep,
            };
        };
        let base = seq.map(|n| n + self.seq_shift);
        self.seq_shift += list.len() as i64 - 1;
        if list.is_empty() {
            return Rewrite::Drop;
        }
        let events = list
            .into_iter()
            .enumerate()
            .map(|(k, (t, mut e))| {
                if let Some(base) = base {
                    e["sequence_number"] = Value::from(base + k as i64);
                }
                out_event(name, &t, &e)
            })
            .collect();
        Rewrite::Replace(events)
    }
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages

#[derive(Debug, Default)]
struct MessagesState {
    /// Block `index` → tool-use block.
    blocks: BTreeMap<u64, ToolBlock>,
}

/// A `tool_use` block's arguments as the decoder assembles them: the start's `input`, unless
/// non-empty `partial_json` deltas follow.
#[derive(Debug)]
struct ToolBlock {
    slot: usize,
    initial: String,
    json: String,
    saw_delta: bool,
}

impl MessagesState {
    fn observe(&mut self, calls: &mut Calls, name: Option<&str>, data: &[u8], r: &mut Report) {
        let Some(event) = json::parse_event(data) else {
            r.other = true;
            return;
        };
        let index = u64_of(&event, "index").unwrap_or(0);
        match json::event_type(&event, name) {
            "content_block_start" => {
                let b = event.get("content_block").unwrap_or(&Value::Null);
                if str_of(b, "type") == Some("tool_use") {
                    let initial = arguments_text(b.get("input"));
                    let call = ToolCall {
                        id: string_of(b, "id"),
                        name: string_of(b, "name").unwrap_or_default(),
                        arguments: initial.clone(),
                    };
                    let slot = calls.open(0, false, call, r);
                    self.blocks.insert(
                        index,
                        ToolBlock {
                            slot,
                            initial,
                            json: String::new(),
                            saw_delta: false,
                        },
                    );
                } else {
                    // Another block at an index replaces what was there, as in the decoder.
                    self.blocks.remove(&index);
                    r.other = true;
                }
            }
            "content_block_delta" => {
                let d = event.get("delta").unwrap_or(&Value::Null);
                let json_delta = str_of(d, "type") == Some("input_json_delta");
                if !self.blocks.contains_key(&index) && json_delta {
                    // A delta whose block never started: the decoder still makes it a call.
                    let slot = calls.open(0, false, ToolCall::default(), r);
                    self.blocks.insert(
                        index,
                        ToolBlock {
                            slot,
                            initial: String::new(),
                            json: String::new(),
                            saw_delta: false,
                        },
                    );
                }
                match self.blocks.get_mut(&index) {
                    Some(block) => {
                        r.touched.push(block.slot);
                        if json_delta {
                            let piece = str_of(d, "partial_json").unwrap_or_default();
                            block.saw_delta |= !piece.is_empty();
                            block.json.push_str(piece);
                            calls.slots[block.slot].call.arguments = if block.saw_delta {
                                block.json.clone()
                            } else {
                                block.initial.clone()
                            };
                        }
                    }
                    None => r.other = true,
                }
            }
            "content_block_stop" => match self.blocks.get(&index) {
                Some(block) => calls.complete(block.slot, r),
                None => r.other = true,
            },
            "message_delta" | "message_stop" => {
                r.other = true;
                // Every block has ended once the message has: close what the stream left open.
                calls.complete_open(|_| true, r);
            }
            _ => r.other = true,
        }
    }

    fn rewrite(
        &mut self,
        calls: &mut Calls,
        name: Option<&str>,
        data: &[u8],
        denied: &BTreeMap<usize, String>,
    ) -> Rewrite {
        let Some(mut event) = json::parse_event(data) else {
            return Rewrite::Keep;
        };
        let ty = json::event_type(&event, name).to_owned();
        let index = u64_of(&event, "index").unwrap_or(0);
        let refused = self
            .blocks
            .get(&index)
            .map(|b| b.slot)
            .filter(|s| denied.contains_key(s));
        match (ty.as_str(), refused) {
            ("content_block_start", Some(slot)) => {
                let start = json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "text", "text": ""}});
                let delta = json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": denied[&slot]}});
                Rewrite::Replace(vec![
                    out_event(name, "content_block_start", &start),
                    out_event(name, "content_block_delta", &delta),
                ])
            }
            ("content_block_delta", Some(_)) => Rewrite::Drop,
            ("message_delta", _) => {
                let tool_use =
                    event.get("delta").and_then(|d| str_of(d, "stop_reason")) == Some("tool_use");
                if tool_use && calls.all_denied(|_| true, denied) {
                    event["delta"]["stop_reason"] = Value::from("end_turn");
                    Rewrite::Replace(vec![out_event(name, &ty, &event)])
                } else {
                    Rewrite::Keep
                }
            }
            _ => Rewrite::Keep,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Gemini and Ollama: calls that arrive whole

#[derive(Debug, Default)]
struct WholeState {
    /// Candidates (Gemini) or the one message (Ollama, key 0) that showed text so far.
    has_text: BTreeSet<u64>,
    /// The same, as `rewrite` writes them.
    rewrite_text: BTreeSet<u64>,
}

/// A Gemini `functionCall` as the decoder reads it.
fn gemini_call(call: &Value) -> ToolCall {
    ToolCall {
        id: string_of(call, "id"),
        name: string_of(call, "name").unwrap_or_default(),
        arguments: arguments_text(call.get("args")),
    }
}

/// An Ollama `tool_calls` entry as the decoder reads it.
fn ollama_call(call: &Value) -> ToolCall {
    let f = call.get("function").unwrap_or(&Value::Null);
    ToolCall {
        id: string_of(call, "id"),
        name: string_of(f, "name").unwrap_or_default(),
        arguments: arguments_text(f.get("arguments")),
    }
}

impl WholeState {
    fn observe_gemini(&mut self, calls: &mut Calls, data: &[u8], r: &mut Report) {
        let Some(chunk) = json::parse_event(data) else {
            r.other = true;
            return;
        };
        if let Some(obj) = chunk.as_object()
            && obj.keys().any(|k| k != "candidates")
        {
            // usageMetadata, modelVersion, responseId, promptFeedback, error.
            r.other = true;
        }
        let candidates = chunk.get("candidates").and_then(Value::as_array);
        for (position, c) in candidates.into_iter().flatten().enumerate() {
            let index = u64_of(c, "index").unwrap_or(position as u64);
            let parts = c.get("content").and_then(|content| content.get("parts"));
            for p in parts.and_then(Value::as_array).into_iter().flatten() {
                if let Some(text) = str_of(p, "text") {
                    if !text.is_empty() && p.get("thought") != Some(&Value::Bool(true)) {
                        self.has_text.insert(index);
                    }
                    r.other = true;
                } else if let Some(call) = p.get("functionCall") {
                    let text_before = self.has_text.contains(&index);
                    let slot = calls.open(index, text_before, gemini_call(call), r);
                    calls.complete(slot, r);
                } else {
                    r.other = true;
                }
            }
            if c.as_object()
                .is_some_and(|o| o.keys().any(|k| k != "content" && k != "index"))
            {
                r.other = true;
            }
        }
    }

    fn observe_ollama(&mut self, calls: &mut Calls, data: &[u8], r: &mut Report) {
        let Some(line) = json::parse_event(data) else {
            r.other = true;
            return;
        };
        let message = line.get("message").unwrap_or(&line);
        if nonempty_str(message.get("content")) || nonempty_str(line.get("response")) {
            self.has_text.insert(0);
            r.other = true;
        }
        if nonempty_str(message.get("thinking"))
            || line.get("done") == Some(&Value::Bool(true))
            || line.get("error").is_some()
        {
            r.other = true;
        }
        let entries = message.get("tool_calls").and_then(Value::as_array);
        for entry in entries.into_iter().flatten() {
            let text_before = self.has_text.contains(&0);
            let slot = calls.open(0, text_before, ollama_call(entry), r);
            calls.complete(slot, r);
        }
    }

    /// The slot of a whole call met by `rewrite`. Calls carry no key of their own, so the call
    /// is matched by identity among those `rewrite` has not met yet, earliest first, preferring
    /// the same arguments (a stage before this one may have redacted them) and, among equal
    /// calls, a refused one: equal calls are interchangeable, and this way a refused one is never
    /// let through in place of an allowed twin that was released before `rewrite` began.
    fn resolve(
        calls: &mut Calls,
        choice: u64,
        call: &ToolCall,
        denied: &BTreeMap<usize, String>,
    ) -> Option<usize> {
        let same = |s: &Slot| {
            !s.rewritten && s.choice == choice && s.call.name == call.name && s.call.id == call.id
        };
        let candidates: Vec<usize> = (0..calls.slots.len())
            .filter(|&i| same(&calls.slots[i]))
            .collect();
        let exact: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| calls.slots[i].call.arguments == call.arguments)
            .collect();
        let pool = if exact.is_empty() { candidates } else { exact };
        let slot = pool
            .iter()
            .copied()
            .find(|s| denied.contains_key(s))
            .or_else(|| pool.first().copied())?;
        calls.slots[slot].rewritten = true;
        Some(slot)
    }

    fn rewrite_gemini(
        &mut self,
        calls: &mut Calls,
        name: Option<&str>,
        data: &[u8],
        denied: &BTreeMap<usize, String>,
    ) -> Rewrite {
        let Some(mut chunk) = json::parse_event(data) else {
            return Rewrite::Keep;
        };
        let mut changed = false;
        let candidates = chunk.get_mut("candidates").and_then(Value::as_array_mut);
        for (position, c) in candidates.into_iter().flatten().enumerate() {
            let index = u64_of(c, "index").unwrap_or(position as u64);
            let parts = c
                .get_mut("content")
                .and_then(|content| content.get_mut("parts"))
                .and_then(Value::as_array_mut);
            for p in parts.into_iter().flatten() {
                if let Some(text) = str_of(p, "text") {
                    if !text.is_empty() && p.get("thought") != Some(&Value::Bool(true)) {
                        self.rewrite_text.insert(index);
                    }
                    continue;
                }
                let Some(call) = p.get("functionCall").map(gemini_call) else {
                    continue;
                };
                let Some(slot) = Self::resolve(calls, index, &call, denied) else {
                    continue;
                };
                if let Some(reason) = denied.get(&slot) {
                    let before =
                        calls.slots[slot].text_before || self.rewrite_text.contains(&index);
                    *p = json!({"text": explanation(before, reason)});
                    self.rewrite_text.insert(index);
                    changed = true;
                }
            }
        }
        if !changed {
            return Rewrite::Keep;
        }
        Rewrite::replaced(name, &chunk)
    }

    fn rewrite_ollama(
        &mut self,
        calls: &mut Calls,
        name: Option<&str>,
        data: &[u8],
        denied: &BTreeMap<usize, String>,
    ) -> Rewrite {
        let Some(mut line) = json::parse_event(data) else {
            return Rewrite::Keep;
        };
        let has_message = line.get("message").is_some_and(Value::is_object);
        let message = if has_message {
            &mut line["message"]
        } else {
            &mut line
        };
        if nonempty_str(message.get("content")) {
            self.rewrite_text.insert(0);
        }
        let Some(Value::Array(entries)) = message.get_mut("tool_calls") else {
            return Rewrite::Keep;
        };
        let mut text = String::new();
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries.drain(..) {
            let call = ollama_call(&entry);
            match Self::resolve(calls, 0, &call, denied) {
                Some(slot) if denied.contains_key(&slot) => {
                    let before = calls.slots[slot].text_before || self.rewrite_text.contains(&0);
                    text.push_str(&explanation(before, &denied[&slot]));
                    self.rewrite_text.insert(0);
                }
                _ => kept.push(entry),
            }
        }
        *entries = kept;
        if text.is_empty() {
            return Rewrite::Keep;
        }
        if entries.is_empty()
            && let Some(obj) = message.as_object_mut()
        {
            obj.remove("tool_calls");
        }
        let content = match message.get("content").and_then(Value::as_str) {
            Some(existing) => format!("{existing}{text}"),
            None => text,
        };
        message["content"] = Value::from(content);
        Rewrite::replaced(name, &line)
    }
}

// ---------------------------------------------------------------------------------------------
// Buffered responses

/// Rewrites a buffered (non-stream) response body so that the calls in `denied` (slot = index in
/// [`crate::parse_response`]`(..).tool_calls` order → explanation) are gone: each becomes
/// assistant text where it was (OpenAI Chat `message.content`, appended; a Responses message
/// item; an Anthropic text block; a Gemini text part; Ollama `message.content`, appended), and a
/// stop reason announcing tool calls becomes the normal stop when no call of that message
/// remains. A whole stream handed over as one body (SSE, NDJSON) is rewritten event by event as
/// [`ToolCallTracker::rewrite`] would. An empty `denied` returns the body unchanged.
///
/// # Errors
///
/// [`ProtocolError::InvalidJson`] when the body is neither JSON nor a recognisable stream, and
/// [`ProtocolError::Shape`] when `denied` names a slot the response does not have (the call
/// cannot be removed, so the response must not be released as is).
///
/// ```
/// use std::collections::BTreeMap;
/// use warden_protocol::{classify, parse_response, rewrite_response};
/// let route = classify("POST", "/v1/messages").unwrap();
/// let body = br#"{"content":[{"type":"text","text":"Cleaning up."},
///     {"type":"tool_use","id":"toolu_1","name":"sh","input":{"cmd":"rm -rf /"}}],"stop_reason":"tool_use"}"#;
/// let denied = BTreeMap::from([(0, "[warden] blocked".to_string())]);
/// let out = parse_response(&route, &rewrite_response(&route, body, &denied).unwrap()).unwrap();
/// assert!(out.tool_calls.is_empty());
/// assert_eq!(out.output_text, "Cleaning up.[warden] blocked");
/// assert_eq!(out.finish_reason.as_deref(), Some("end_turn"));
/// ```
pub fn rewrite_response(
    route: &Route,
    body: &[u8],
    denied: &BTreeMap<usize, String>,
) -> Result<Vec<u8>, ProtocolError> {
    let mut value = match serde_json::from_slice::<Value>(body) {
        Ok(value) => value,
        Err(err) => {
            let Some(framing) = crate::sniff_stream(body) else {
                return Err(err.into());
            };
            return rewrite_stream(route, framing, body, denied);
        }
    };
    let found = match kind(route) {
        Kind::None => 0,
        Kind::Chat => chat_buffered(&mut value, denied),
        Kind::Responses => responses_buffered(&mut value, denied),
        Kind::Messages => messages_buffered(&mut value, denied),
        Kind::Gemini => gemini_buffered(&mut value, denied),
        Kind::Ollama => ollama_buffered(&mut value, denied),
    };
    check_slots(denied, found)?;
    if denied.is_empty() {
        return Ok(body.to_vec());
    }
    Ok(serde_json::to_vec(&value)?)
}

/// Every refused slot must exist, or the call it names would be released unrewritten.
fn check_slots(denied: &BTreeMap<usize, String>, found: usize) -> Result<(), ProtocolError> {
    match denied.keys().next_back() {
        Some(&slot) if slot >= found => Err(ProtocolError::Shape(format!(
            "tool call {slot} is not in the response ({found} calls)"
        ))),
        _ => Ok(()),
    }
}

/// A whole stream body, rewritten event by event.
fn rewrite_stream(
    route: &Route,
    framing: Framing,
    body: &[u8],
    denied: &BTreeMap<usize, String>,
) -> Result<Vec<u8>, ProtocolError> {
    let Some(mut splitter) = EventSplitter::new(framing) else {
        return Ok(body.to_vec());
    };
    let mut events = splitter.push(body);
    events.extend(splitter.finish());
    let mut tracker = ToolCallTracker::new(route);
    for e in &events {
        tracker.observe(e.name.as_deref(), &e.data);
    }
    tracker.finish();
    check_slots(denied, tracker.calls.slots.len())?;
    if denied.is_empty() || events.is_empty() {
        return Ok(body.to_vec());
    }
    let first = (events[0].start as usize).min(body.len());
    let mut out = body[..first].to_vec();
    for (i, e) in events.iter().enumerate() {
        let start = (e.start as usize).min(body.len());
        let end = events
            .get(i + 1)
            .map_or(body.len(), |n| (n.start as usize).min(body.len()));
        let rewrite = tracker.rewrite(e.name.as_deref(), &e.data, denied);
        out.extend_from_slice(&rewrite.render(framing, &body[start..end.max(start)]));
    }
    Ok(out)
}

/// Appends explanations to a message's `content` (a string, null, or an array of parts).
fn append_content(message: &mut Value, texts: &[&str]) {
    let Some(obj) = message.as_object_mut() else {
        return;
    };
    let joined = texts.join("\n\n");
    match obj.get_mut("content") {
        Some(Value::String(s)) if !s.is_empty() => {
            s.push_str("\n\n");
            s.push_str(&joined);
        }
        Some(Value::Array(parts)) => parts.push(json!({"type": "text", "text": joined})),
        _ => {
            obj.insert("content".into(), Value::from(joined));
        }
    }
}

/// OpenAI Chat: `choices[].message.tool_calls[]` and the legacy `function_call`, in the chat
/// decoder's order (choices by `index`, a choice's `tool_calls` before its `function_call`).
fn chat_buffered(value: &mut Value, denied: &BTreeMap<usize, String>) -> usize {
    let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) else {
        return 0;
    };
    let mut order: Vec<(u64, usize)> = choices
        .iter()
        .enumerate()
        .map(|(p, c)| (u64_of(c, "index").unwrap_or(p as u64), p))
        .collect();
    order.sort_by_key(|&(index, _)| index);
    let mut slot = 0;
    for (_, p) in order {
        let choice = &mut choices[p];
        let mut texts: Vec<&str> = Vec::new();
        let mut remaining = 0;
        let Some(message) = choice.get_mut("message").filter(|m| m.is_object()) else {
            continue;
        };
        if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
            let mut kept = Vec::new();
            for call in calls.drain(..) {
                match denied.get(&slot) {
                    Some(text) => texts.push(text),
                    None => {
                        kept.push(call);
                        remaining += 1;
                    }
                }
                slot += 1;
            }
            *calls = kept;
            if calls.is_empty() && !texts.is_empty() {
                message.as_object_mut().map(|m| m.remove("tool_calls"));
            }
        }
        if message.get("function_call").is_some_and(Value::is_object) {
            match denied.get(&slot) {
                Some(text) => {
                    texts.push(text);
                    message.as_object_mut().map(|m| m.remove("function_call"));
                }
                None => remaining += 1,
            }
            slot += 1;
        }
        if texts.is_empty() {
            continue;
        }
        append_content(message, &texts);
        let announces_calls = matches!(
            str_of(choice, "finish_reason"),
            Some("tool_calls" | "function_call")
        );
        if remaining == 0 && announces_calls {
            choice["finish_reason"] = Value::from("stop");
        }
    }
    slot
}

/// Responses: `output[]` call items become message items.
fn responses_buffered(value: &mut Value, denied: &BTreeMap<usize, String>) -> usize {
    let Some(output) = value.get_mut("output").and_then(Value::as_array_mut) else {
        return 0;
    };
    let mut slot = 0;
    for (i, item) in output.iter_mut().enumerate() {
        if !is_call_item(item) {
            continue;
        }
        if let Some(text) = denied.get(&slot) {
            let msg = message_id(str_of(item, "id"), i as u64);
            *item = message_item(&msg, "completed", Some(text));
        }
        slot += 1;
    }
    slot
}

/// Anthropic: `content[]` `tool_use` blocks become text blocks; `stop_reason: tool_use` becomes
/// `end_turn` when none is left.
fn messages_buffered(value: &mut Value, denied: &BTreeMap<usize, String>) -> usize {
    let Some(content) = value.get_mut("content").and_then(Value::as_array_mut) else {
        return 0;
    };
    let mut slot = 0;
    let mut remaining = 0;
    let mut removed = false;
    for block in content.iter_mut() {
        if str_of(block, "type") != Some("tool_use") {
            continue;
        }
        match denied.get(&slot) {
            Some(text) => {
                *block = json!({"type": "text", "text": text});
                removed = true;
            }
            None => remaining += 1,
        }
        slot += 1;
    }
    if removed && remaining == 0 && str_of(value, "stop_reason") == Some("tool_use") {
        value["stop_reason"] = Value::from("end_turn");
    }
    slot
}

/// Gemini: `functionCall` parts become text parts, in the decoder's order (candidates by
/// `index`; a buffered `streamGenerateContent` array chunk by chunk).
fn gemini_buffered(value: &mut Value, denied: &BTreeMap<usize, String>) -> usize {
    // (candidate index, chunk, candidate position, part, text before) of every call.
    let mut found: Vec<(u64, usize, usize, usize, bool)> = Vec::new();
    let mut has_text = BTreeSet::new();
    {
        let chunks: Vec<&Value> = match &*value {
            Value::Array(chunks) => chunks.iter().collect(),
            other => vec![other],
        };
        for (k, chunk) in chunks.iter().enumerate() {
            let candidates = chunk.get("candidates").and_then(Value::as_array);
            for (position, c) in candidates.into_iter().flatten().enumerate() {
                let index = u64_of(c, "index").unwrap_or(position as u64);
                let parts = c.get("content").and_then(|content| content.get("parts"));
                for (j, p) in parts
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if let Some(text) = str_of(p, "text") {
                        if !text.is_empty() && p.get("thought") != Some(&Value::Bool(true)) {
                            has_text.insert(index);
                        }
                    } else if p.get("functionCall").is_some() {
                        found.push((index, k, position, j, has_text.contains(&index)));
                    }
                }
            }
        }
    }
    found.sort_by_key(|f| f.0);
    for (slot, &(_, k, position, j, before)) in found.iter().enumerate() {
        let Some(text) = denied.get(&slot) else {
            continue;
        };
        let chunk = match &mut *value {
            Value::Array(chunks) => &mut chunks[k],
            other => other,
        };
        let part = &mut chunk["candidates"][position]["content"]["parts"][j];
        *part = json!({"text": explanation(before, text)});
    }
    found.len()
}

/// Ollama: `message.tool_calls[]` entries are removed and explained in `message.content`.
fn ollama_buffered(value: &mut Value, denied: &BTreeMap<usize, String>) -> usize {
    let has_message = value.get("message").is_some_and(Value::is_object);
    let message = if has_message {
        &mut value["message"]
    } else {
        value
    };
    let Some(Value::Array(calls)) = message.get_mut("tool_calls") else {
        return 0;
    };
    let count = calls.len();
    let mut texts: Vec<&str> = Vec::new();
    let mut kept = Vec::new();
    for (slot, call) in calls.drain(..).enumerate() {
        match denied.get(&slot) {
            Some(text) => texts.push(text),
            None => kept.push(call),
        }
    }
    *calls = kept;
    if !texts.is_empty() {
        if calls.is_empty() {
            message.as_object_mut().map(|m| m.remove("tool_calls"));
        }
        append_content(message, &texts);
    }
    count
}

// ---------------------------------------------------------------------------------------------
// Requests

/// Removes from a request the tool definitions whose name `keep` rejects, so the model is never
/// offered them: OpenAI Chat `tools[]` (function, custom, or others by type) and legacy
/// `functions[]`; Responses `tools[]` (function/custom by `name`, built-in tools by `type`);
/// Anthropic `tools[]` (by `name`, else `type`); Gemini `functionDeclarations` by name and
/// built-in tools (`googleSearch`, …) by key, a tool left empty removed; Ollama `tools[]`.
/// Names are the ones [`crate::parse_request`] gives [`crate::ToolDefinition::name`].
///
/// A tool choice that forces a rejected tool goes back to the provider default (the
/// `tool_choice` / `function_call` / Gemini `functionCallingConfig` is removed; an
/// `allowed_tools` list or Gemini `allowedFunctionNames` is filtered, and removed once empty),
/// and when no tool is left at all, the settings that need tools (`tool_choice`,
/// `parallel_tool_calls`, Gemini `functionCallingConfig`) go too, as providers refuse them alone.
///
/// Returns the new body and the removed tool names, or `None` when nothing changed (the caller
/// then forwards the original bytes untouched). The names list may be empty when only a forced
/// choice was dropped. Routes that take no tools return `None` without reading the body.
///
/// # Errors
///
/// [`ProtocolError::InvalidJson`] when the body is not JSON, [`ProtocolError::Shape`] when it is
/// not a JSON object.
///
/// ```
/// use warden_protocol::{classify, strip_tools};
/// let route = classify("POST", "/v1/messages").unwrap();
/// let body = br#"{"model":"m","tools":[{"name":"sh"},{"name":"read"}],"tool_choice":{"type":"tool","name":"sh"}}"#;
/// let (out, removed) = strip_tools(&route, body, &|name| name != "sh").unwrap().unwrap();
/// assert_eq!(removed, ["sh"]);
/// assert_eq!(out, br#"{"model":"m","tools":[{"name":"read"}]}"#);
/// assert!(strip_tools(&route, body, &|_| true).unwrap().is_none());
/// ```
// The tuple is the agreed public shape (new body, removed names); an alias would only hide it.
#[allow(clippy::type_complexity)]
pub fn strip_tools(
    route: &Route,
    body: &[u8],
    keep: &dyn Fn(&str) -> bool,
) -> Result<Option<(Vec<u8>, Vec<String>)>, ProtocolError> {
    let takes_tools = matches!(
        route.operation,
        Operation::ChatCompletions
            | Operation::Responses
            | Operation::Messages
            | Operation::CountTokens
            | Operation::GenerateContent
            | Operation::StreamGenerateContent
            | Operation::OllamaChat
    );
    if !takes_tools {
        return Ok(None);
    }
    let mut value: Value = serde_json::from_slice(body)?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ProtocolError::Shape(
            "request body must be a JSON object".to_owned(),
        ));
    };
    let mut removed = Vec::new();
    let changed = match kind(route) {
        Kind::Chat => strip_chat(obj, keep, &mut removed),
        Kind::Responses => strip_responses(obj, keep, &mut removed),
        Kind::Messages => strip_messages(obj, keep, &mut removed),
        Kind::Gemini => strip_gemini(obj, keep, &mut removed),
        Kind::Ollama => {
            filter_list(obj, "tools", &ollama_tool_name, keep, &mut removed) != Filtered::Unchanged
        }
        Kind::None => false,
    };
    if !changed {
        return Ok(None);
    }
    Ok(Some((serde_json::to_vec(&value)?, removed)))
}

type Obj = serde_json::Map<String, Value>;

/// What filtering a list of definitions did.
#[derive(Debug, PartialEq, Eq)]
enum Filtered {
    Unchanged,
    /// Some removed, some left.
    Some,
    /// All removed: the key is gone.
    Emptied,
}

/// Drops the entries of `obj[key]` whose name `keep` rejects; removes the key once empty.
fn filter_list(
    obj: &mut Obj,
    key: &str,
    name_of: &dyn Fn(&Value) -> String,
    keep: &dyn Fn(&str) -> bool,
    removed: &mut Vec<String>,
) -> Filtered {
    let Some(Value::Array(list)) = obj.get_mut(key) else {
        return Filtered::Unchanged;
    };
    let before = list.len();
    list.retain(|entry| {
        let name = name_of(entry);
        let keep_it = keep(&name);
        if !keep_it {
            removed.push(name);
        }
        keep_it
    });
    if list.len() == before {
        return Filtered::Unchanged;
    }
    if list.is_empty() {
        obj.remove(key);
        return Filtered::Emptied;
    }
    Filtered::Some
}

/// Chat `tools[]` entry name, as the chat request reader names it.
fn chat_tool_name(tool: &Value) -> String {
    let ty = str_of(tool, "type").unwrap_or("function");
    match tool.get(ty).filter(|v| v.is_object()) {
        Some(inner) => string_of(inner, "name").unwrap_or_default(),
        None => ty.to_owned(),
    }
}

/// Responses `tools[]` entry name: function and custom tools by `name`, others by `type`.
fn responses_tool_name(tool: &Value) -> String {
    match str_of(tool, "type").unwrap_or("function") {
        "function" | "custom" => string_of(tool, "name").unwrap_or_default(),
        other => other.to_owned(),
    }
}

fn ollama_tool_name(tool: &Value) -> String {
    let f = tool.get("function").unwrap_or(tool);
    string_of(f, "name").unwrap_or_default()
}

/// Filters an `allowed_tools` list inside a tool choice; whether the choice must go (it named
/// only rejected tools).
fn filter_allowed(
    list: Option<&mut Value>,
    name_of: &dyn Fn(&Value) -> String,
    keep: &dyn Fn(&str) -> bool,
) -> (bool, bool) {
    let Some(Value::Array(list)) = list else {
        return (false, false);
    };
    let before = list.len();
    list.retain(|entry| keep(&name_of(entry)));
    let changed = list.len() != before;
    (changed, changed && list.is_empty())
}

fn strip_chat(obj: &mut Obj, keep: &dyn Fn(&str) -> bool, removed: &mut Vec<String>) -> bool {
    let tools = filter_list(obj, "tools", &chat_tool_name, keep, removed);
    let functions = filter_list(
        obj,
        "functions",
        &|f| string_of(f, "name").unwrap_or_default(),
        keep,
        removed,
    );
    let mut changed = tools != Filtered::Unchanged || functions != Filtered::Unchanged;
    if tools == Filtered::Emptied {
        changed |= obj.remove("tool_choice").is_some();
        obj.remove("parallel_tool_calls");
    } else if let Some(choice) = obj.get_mut("tool_choice") {
        let ty = str_of(choice, "type").unwrap_or_default().to_owned();
        let drop_choice = match ty.as_str() {
            "function" | "custom" => {
                let name = choice.get(&ty).and_then(|f| str_of(f, "name"));
                name.is_some_and(|n| !keep(n))
            }
            "allowed_tools" => {
                let list = choice
                    .get_mut("allowed_tools")
                    .and_then(|a| a.get_mut("tools"));
                let (filtered, emptied) = filter_allowed(list, &chat_tool_name, keep);
                changed |= filtered;
                emptied
            }
            _ => false,
        };
        if drop_choice {
            obj.remove("tool_choice");
            changed = true;
        }
    }
    if functions == Filtered::Emptied {
        obj.remove("function_call");
    } else if let Some(call) = obj.get("function_call")
        && str_of(call, "name").is_some_and(|n| !keep(n))
    {
        obj.remove("function_call");
        changed = true;
    }
    changed
}

fn strip_responses(obj: &mut Obj, keep: &dyn Fn(&str) -> bool, removed: &mut Vec<String>) -> bool {
    let tools = filter_list(obj, "tools", &responses_tool_name, keep, removed);
    let mut changed = tools != Filtered::Unchanged;
    if tools == Filtered::Emptied {
        obj.remove("tool_choice");
        obj.remove("parallel_tool_calls");
    } else if let Some(choice) = obj.get_mut("tool_choice")
        && choice.is_object()
    {
        let drop_choice = match str_of(choice, "type").unwrap_or_default() {
            "allowed_tools" => {
                let (filtered, emptied) =
                    filter_allowed(choice.get_mut("tools"), &responses_tool_name, keep);
                changed |= filtered;
                emptied
            }
            // `{"type":"mcp","server_label"}` names a server, not a tool definition's name.
            "mcp" => false,
            _ => !keep(&responses_tool_name(choice)),
        };
        if drop_choice {
            obj.remove("tool_choice");
            changed = true;
        }
    }
    changed
}

fn strip_messages(obj: &mut Obj, keep: &dyn Fn(&str) -> bool, removed: &mut Vec<String>) -> bool {
    let name_of = |t: &Value| {
        string_of(t, "name")
            .or_else(|| string_of(t, "type"))
            .unwrap_or_default()
    };
    let tools = filter_list(obj, "tools", &name_of, keep, removed);
    let mut changed = tools != Filtered::Unchanged;
    if tools == Filtered::Emptied {
        obj.remove("tool_choice");
    } else if let Some(choice) = obj.get("tool_choice")
        && str_of(choice, "type") == Some("tool")
        && str_of(choice, "name").is_some_and(|n| !keep(n))
    {
        obj.remove("tool_choice");
        changed = true;
    }
    changed
}

fn strip_gemini(obj: &mut Obj, keep: &dyn Fn(&str) -> bool, removed: &mut Vec<String>) -> bool {
    let mut changed = false;
    let mut declarations_left = 0;
    if let Some(Value::Array(tools)) = obj.get_mut("tools") {
        let before = tools.len();
        for tool in tools.iter_mut() {
            let Some(map) = tool.as_object_mut() else {
                continue;
            };
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if key == "functionDeclarations" || key == "function_declarations" {
                    let Some(Value::Array(list)) = map.get_mut(&key) else {
                        continue;
                    };
                    let count = list.len();
                    list.retain(|f| {
                        let name = string_of(f, "name").unwrap_or_default();
                        let keep_it = keep(&name);
                        if !keep_it {
                            removed.push(name);
                        }
                        keep_it
                    });
                    declarations_left += list.len();
                    if list.len() != count {
                        changed = true;
                        if list.is_empty() {
                            map.remove(&key);
                        }
                    }
                } else if !keep(&key) {
                    map.remove(&key);
                    removed.push(key);
                    changed = true;
                }
            }
        }
        // A tool left with nothing in it is no tool.
        tools.retain(|t| t.as_object().is_none_or(|m| !m.is_empty()));
        if tools.is_empty() && before > 0 {
            obj.remove("tools");
        }
    }
    let config_key = ["toolConfig", "tool_config"]
        .into_iter()
        .find(|k| obj.get(*k).is_some_and(Value::is_object));
    if let Some(config_key) = config_key {
        let config = obj[config_key].as_object_mut().expect("checked above");
        let fc_key = ["functionCallingConfig", "function_calling_config"]
            .into_iter()
            .find(|k| config.get(*k).is_some_and(Value::is_object));
        if let Some(fc_key) = fc_key {
            let fc = config[fc_key].as_object_mut().expect("checked above");
            let names_key = ["allowedFunctionNames", "allowed_function_names"]
                .into_iter()
                .find(|k| fc.get(*k).is_some_and(Value::is_array));
            let mut drop_config = changed && declarations_left == 0;
            if let Some(names_key) = names_key
                && let Some(Value::Array(names)) = fc.get_mut(names_key)
            {
                let before = names.len();
                names.retain(|n| n.as_str().is_none_or(keep));
                if names.len() != before {
                    changed = true;
                    drop_config |= names.is_empty();
                }
            }
            if drop_config {
                config.remove(fc_key);
                if config.is_empty() {
                    obj.remove(config_key);
                }
            }
        }
    }
    changed
}

#[cfg(test)]
mod plain_text_tests {
    use super::plain_text_chunk;

    #[test]
    fn only_chunks_that_cannot_matter_skip_the_parse() {
        for yes in [
            &br#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#[..],
            br#"{"choices":[{"delta":{"content":"tool"},"finish_reason" : null}]}"#,
        ] {
            assert!(plain_text_chunk(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [
            &br#"{"choices":[{"delta":{"content":""},"finish_reason":"stop"}]}"#[..],
            br#"{"choices":[{"delta":{"content":""},"finish_reason":"tool_calls"}]}"#,
            br#"{"choices":[{"delta":{"tool_calls":[{"index":0}]},"finish_reason":null}]}"#,
            br#"{"choices":[{"delta":{"function_call":{"name":"f"}}}]}"#,
            br#"{"choices":[],"usage":{"prompt_tokens":3}}"#,
            br#"{"error":{"message":"overloaded"}}"#,
            br#"{"choices":[{"delta":{"content":"x"},"finish_reason":"length"}],"usage":null}"#,
        ] {
            assert!(!plain_text_chunk(no), "{}", String::from_utf8_lossy(no));
        }
    }
}
