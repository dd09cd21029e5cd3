//! Tool-call tracking and rewriting on real-shaped streams and bodies of every provider.
//!
//! The tracker must see exactly the calls the decoders see (same ids, names, arguments, slots),
//! whatever the split points; a stream rewritten for refused calls must decode (with the crate's
//! own `StreamInspector`, at every split point) to a response without them, with the explanation
//! in its text and a consistent stop reason; buffered bodies likewise through `parse_response`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Lcg, call, fixture, replay_with_step, route};
use serde_json::Value;
use warden_protocol::{
    EventCalls, EventSplitter, Framing, ProtocolError, Rewrite, Route, StreamEvent,
    StreamInspector, ToolCall, ToolCallTracker, parse_request, parse_response, rewrite_response,
    strip_tools,
};

const CHAT: &str = "/v1/chat/completions";
const RESPONSES: &str = "/v1/responses";
const MESSAGES: &str = "/v1/messages";
const GEMINI_STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
const GEMINI: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const OLLAMA: &str = "/api/chat";

/// A stream fixture and its route.
struct Stream {
    file: &'static str,
    path: &'static str,
    framing: Framing,
}

const STREAMS: &[Stream] = &[
    Stream {
        file: "openai/chat_stream_text_tool.sse",
        path: CHAT,
        framing: Framing::Sse,
    },
    Stream {
        file: "openai/chat_stream_tools.sse",
        path: CHAT,
        framing: Framing::Sse,
    },
    Stream {
        file: "openai/chat_stream_text.sse",
        path: CHAT,
        framing: Framing::Sse,
    },
    Stream {
        file: "openai/responses_stream.sse",
        path: RESPONSES,
        framing: Framing::Sse,
    },
    Stream {
        file: "openai/responses_stream_tools.sse",
        path: RESPONSES,
        framing: Framing::Sse,
    },
    Stream {
        file: "anthropic/stream_tool_use.sse",
        path: MESSAGES,
        framing: Framing::Sse,
    },
    Stream {
        file: "anthropic/stream_multi.sse",
        path: MESSAGES,
        framing: Framing::Sse,
    },
    Stream {
        file: "anthropic/stream_text.sse",
        path: MESSAGES,
        framing: Framing::Sse,
    },
    Stream {
        file: "gemini/stream_function_calls.sse",
        path: GEMINI_STREAM,
        framing: Framing::Sse,
    },
    Stream {
        file: "gemini/stream_function_calls.array.json",
        path: GEMINI_STREAM,
        framing: Framing::JsonArrayStream,
    },
    Stream {
        file: "ollama/chat_stream_tools.ndjson",
        path: OLLAMA,
        framing: Framing::Ndjson,
    },
    Stream {
        file: "ollama/chat_stream.ndjson",
        path: OLLAMA,
        framing: Framing::Ndjson,
    },
];

fn stream(file: &str) -> &'static Stream {
    STREAMS.iter().find(|s| s.file == file).unwrap()
}

fn explanation(name: &str) -> String {
    format!(
        "[warden] tool call \"{name}\" was blocked by rule \"preset:sql\": DROP TABLE is destructive SQL"
    )
}

/// Events of `body` cut into `chunks` as the gateway's splitter finds them.
fn split_events(framing: Framing, chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut splitter = EventSplitter::new(framing).unwrap();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(splitter.push(chunk));
    }
    events.extend(splitter.finish());
    events
}

/// Every event's report, and every completed call (the tracker's `finish` included) by slot.
fn track(route: &Route, events: &[StreamEvent]) -> (Vec<EventCalls>, Vec<(usize, ToolCall)>) {
    let mut tracker = ToolCallTracker::new(route);
    let mut reports = Vec::new();
    let mut completed = Vec::new();
    for e in events {
        let r = tracker.observe(e.name.as_deref(), &e.data);
        completed.extend(r.completed.clone());
        reports.push(r);
    }
    completed.extend(tracker.finish());
    (reports, completed)
}

/// The calls in slot order.
fn by_slot(mut completed: Vec<(usize, ToolCall)>) -> Vec<ToolCall> {
    completed.sort_by_key(|(slot, _)| *slot);
    let slots: Vec<usize> = completed.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        slots,
        (0..slots.len()).collect::<Vec<_>>(),
        "each slot completes once"
    );
    completed.into_iter().map(|(_, c)| c).collect()
}

/// Plays the gateway: events flow live until one carries a call part; from then on events are
/// held until no call is open, the completed calls are judged by `deny`, and the held events are
/// released (through `rewrite` once anything was refused, and every event after that too).
fn gate(
    route: &Route,
    framing: Framing,
    body: &[u8],
    deny: &dyn Fn(&ToolCall) -> Option<String>,
) -> (Vec<u8>, BTreeMap<usize, String>) {
    let events = split_events(framing, &[body]);
    let raw = |i: usize| {
        let end = events.get(i + 1).map_or(body.len(), |n| n.start as usize);
        &body[events[i].start as usize..end]
    };
    let mut tracker = ToolCallTracker::new(route);
    let mut denied = BTreeMap::new();
    let mut out = body[..events.first().map_or(body.len(), |e| e.start as usize)].to_vec();
    let mut held: Vec<usize> = Vec::new();
    let mut open = BTreeSet::new();
    let mut rewriting = false;
    let judge = |completed: &[(usize, ToolCall)], denied: &mut BTreeMap<usize, String>| {
        for (slot, call) in completed {
            if let Some(why) = deny(call) {
                denied.insert(*slot, why);
            }
        }
    };
    for (i, e) in events.iter().enumerate() {
        let calls = tracker.observe(e.name.as_deref(), &e.data);
        judge(&calls.completed, &mut denied);
        for (slot, _) in &calls.completed {
            open.remove(slot);
        }
        open.extend(calls.open.iter().copied());
        let carries = !calls.open.is_empty() || !calls.completed.is_empty();
        if carries || !held.is_empty() {
            held.push(i);
        } else if rewriting {
            let r = tracker.rewrite(e.name.as_deref(), &e.data, &denied);
            out.extend(r.render(framing, raw(i)));
        } else {
            out.extend_from_slice(raw(i));
        }
        if !held.is_empty() && open.is_empty() {
            rewriting |= !denied.is_empty();
            for h in held.drain(..) {
                if rewriting {
                    let e = &events[h];
                    let r = tracker.rewrite(e.name.as_deref(), &e.data, &denied);
                    out.extend(r.render(framing, raw(h)));
                } else {
                    out.extend_from_slice(raw(h));
                }
            }
        }
    }
    judge(&tracker.finish(), &mut denied);
    rewriting |= !denied.is_empty();
    for h in held {
        let e = &events[h];
        if rewriting {
            let r = tracker.rewrite(e.name.as_deref(), &e.data, &denied);
            out.extend(r.render(framing, raw(h)));
        } else {
            out.extend_from_slice(raw(h));
        }
    }
    (out, denied)
}

fn deny_named(names: &'static [&'static str]) -> impl Fn(&ToolCall) -> Option<String> {
    move |c: &ToolCall| {
        names
            .contains(&c.name.as_str())
            .then(|| explanation(&c.name))
    }
}

/// Denies calls whose arguments contain `needle`.
fn deny_args(needle: &'static str) -> impl Fn(&ToolCall) -> Option<String> {
    move |c: &ToolCall| c.arguments.contains(needle).then(|| explanation(&c.name))
}

/// Every payload of a rewritten stream is JSON (OpenAI's `[DONE]` aside).
fn assert_events_are_json(framing: Framing, body: &[u8]) {
    for e in split_events(framing, &[body]) {
        if e.data.trim_ascii() == b"[DONE]" {
            continue;
        }
        serde_json::from_slice::<Value>(&e.data).unwrap_or_else(|err| {
            panic!(
                "rewritten event is not JSON ({err}): {}",
                String::from_utf8_lossy(&e.data)
            )
        });
    }
}

#[test]
fn tracker_sees_the_decoders_calls() {
    for s in STREAMS {
        let route = route("POST", s.path);
        let body = fixture(s.file);
        let (_, completed) = track(&route, &split_events(s.framing, &[&body]));
        let mut inspector = StreamInspector::new(&route, s.framing);
        inspector.push(&body);
        let want = inspector.finish().tool_calls;
        assert_eq!(by_slot(completed), want, "{}", s.file);
    }
}

#[test]
fn tracker_is_split_proof() {
    for s in STREAMS {
        let route = route("POST", s.path);
        let body = fixture(s.file);
        let whole = track(&route, &split_events(s.framing, &[&body]));
        for i in 0..=body.len() {
            let split = track(&route, &split_events(s.framing, &[&body[..i], &body[i..]]));
            assert_eq!(split, whole, "{} split at {i}", s.file);
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(
            track(&route, &split_events(s.framing, &bytes)),
            whole,
            "{} byte by byte",
            s.file
        );
        let mut rng = Lcg(body.len() as u64);
        let mut chunks = Vec::new();
        let mut rest = &body[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(40) as usize).min(rest.len());
            chunks.push(&rest[..n]);
            rest = &rest[n..];
        }
        assert_eq!(track(&route, &split_events(s.framing, &chunks)), whole);
    }
}

#[test]
fn openai_text_then_one_call() {
    let s = stream("openai/chat_stream_text_tool.sse");
    let route = route("POST", s.path);
    let body = fixture(s.file);
    let events = split_events(s.framing, &[&body]);
    let (reports, completed) = track(&route, &events);
    // Text chunks carry no call; the call's chunks are open until the finish_reason chunk.
    assert!(reports[..4].iter().all(|r| r.open.is_empty() && r.other));
    assert!(
        reports[4..16]
            .iter()
            .all(|r| r.open == [0] && !r.other && r.completed.is_empty())
    );
    assert_eq!(reports[16].completed.len(), 1);
    assert!(
        reports[16].other,
        "the finish_reason chunk is a stop reason"
    );
    assert_eq!(
        completed,
        [(
            0,
            call(
                Some("call_Xk3pT9wQ2mLr7Vb5Nc1Hd8Zs"),
                "execute_sql",
                r#"{"query":"DROP TABLE users;","database":"prod"}"#
            )
        )]
    );

    let (out, denied) = gate(&route, s.framing, &body, &deny_args("DROP TABLE"));
    assert_eq!(denied.keys().copied().collect::<Vec<_>>(), [0]);
    assert_events_are_json(s.framing, &out);
    let run = replay_with_step(&route, s.framing, &out, 7);
    let resp = run.response;
    assert!(resp.tool_calls.is_empty(), "{:?}", resp.tool_calls);
    assert_eq!(
        resp.output_text,
        format!(
            "The users table is obsolete; dropping it now.\n\n{}",
            explanation("execute_sql")
        )
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert_eq!(resp.usage.input_tokens, Some(88));
    assert!(run.terminal_seen);
    // The pure argument chunks are gone; text chunks before the call are byte-identical.
    let text_part = &body[..events[4].start as usize];
    assert!(out.starts_with(text_part));
    let out_text = String::from_utf8_lossy(&out);
    assert!(!out_text.contains("call_Xk3pT9wQ2mLr7Vb5Nc1Hd8Zs") && !out_text.contains("arguments"));
}

#[test]
fn openai_interleaved_calls_complete_at_finish_reason() {
    let s = stream("openai/chat_stream_tools.sse");
    let route = route("POST", s.path);
    let body = fixture(s.file);
    let (reports, _) = track(&route, &split_events(s.framing, &[&body]));
    // Call 1 starts while call 0 still has argument text to come: nothing completes early.
    assert_eq!(reports[3].open, [1]);
    assert!(reports[3].completed.is_empty());
    assert_eq!(reports[5].open, [0]);
    let finish = &reports[8];
    assert_eq!(
        finish.completed.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(
        finish.completed[0].1.arguments,
        r#"{"location":"Paris, France","unit":"celsius"}"#
    );
    // The usage-only chunk and [DONE] carry no call.
    assert!(reports[9].other && reports[9].open.is_empty());
    assert!(reports[10].other && reports[10].completed.is_empty());
}

#[test]
fn openai_deny_one_of_two_keeps_tool_calls() {
    let s = stream("openai/chat_stream_tools.sse");
    let route = route("POST", s.path);
    let body = fixture(s.file);
    let (out, denied) = gate(&route, s.framing, &body, &deny_named(&["get_weather"]));
    assert_eq!(denied.keys().copied().collect::<Vec<_>>(), [0]);
    assert_events_are_json(s.framing, &out);
    let resp = replay_with_step(&route, s.framing, &out, 5).response;
    assert_eq!(
        resp.tool_calls,
        [call(
            Some("call_Qz7vB2nK9sLx4RtY1pHc6WdE"),
            "get_time",
            r#"{"timezone":"Europe/Paris"}"#
        )]
    );
    assert_eq!(resp.output_text, explanation("get_weather"));
    assert_eq!(resp.finish_reason.as_deref(), Some("tool_calls"));

    let (out, _) = gate(
        &route,
        s.framing,
        &body,
        &deny_named(&["get_weather", "get_time"]),
    );
    let resp = replay_with_step(&route, s.framing, &out, 5).response;
    assert!(resp.tool_calls.is_empty());
    assert_eq!(
        resp.output_text,
        format!(
            "{}\n\n{}",
            explanation("get_weather"),
            explanation("get_time")
        )
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
}

#[test]
fn openai_explanation_without_the_first_chunk_is_written_before_done() {
    // A caller that starts rewriting late (after the call's first chunk) still gets the
    // explanation, in a chunk carrying the stream's id and model, before `[DONE]`.
    let s = stream("openai/chat_stream_text_tool.sse");
    let route = route("POST", s.path);
    let body = fixture(s.file);
    let events = split_events(s.framing, &[&body]);
    let mut tracker = ToolCallTracker::new(&route);
    for e in &events {
        tracker.observe(e.name.as_deref(), &e.data);
    }
    let denied = BTreeMap::from([(0, "blocked".to_string())]);
    let done = events.last().unwrap();
    let Rewrite::Replace(out) = tracker.rewrite(None, &done.data, &denied) else {
        panic!("expected an explanation chunk before [DONE]");
    };
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].data, b"[DONE]");
    let chunk: Value = serde_json::from_slice(&out[0].data).unwrap();
    assert_eq!(chunk["id"], "chatcmpl-BdQ4mZ7tKx2Lw9Rj1Vn3Hs8Ye6Pa");
    assert_eq!(chunk["model"], "gpt-4o-2024-08-06");
    assert_eq!(chunk["object"], "chat.completion.chunk");
    assert_eq!(chunk["choices"][0]["delta"]["content"], "\n\nblocked");
    // Written once: a second [DONE] adds nothing.
    assert_eq!(tracker.rewrite(None, &done.data, &denied), Rewrite::Keep);
}

#[test]
fn responses_text_then_one_call() {
    let s = stream("openai/responses_stream.sse");
    let route = route("POST", s.path);
    let body = fixture(s.file);
    let original = common::decode(&route, s.framing, &body).0;
    let (out, denied) = gate(&route, s.framing, &body, &deny_named(&["get_time"]));
    assert_eq!(denied.len(), 1);
    assert_events_are_json(s.framing, &out);
    let resp = replay_with_step(&route, s.framing, &out, 11).response;
    assert!(resp.tool_calls.is_empty());
    assert_eq!(
        resp.output_text,
        format!("{}{}", original.output_text, explanation("get_time"))
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("completed"));
    assert_eq!(resp.reasoning, original.reasoning);
    assert_sequence_numbers(&out);
    // The final response lists a message item where the call was.
    let last = split_events(s.framing, &[&out]).pop().unwrap();
    let completed: Value = serde_json::from_slice(&last.data).unwrap();
    let item = &completed["response"]["output"][2];
    assert_eq!(item["type"], "message");
    assert_eq!(item["id"], "msg_68b0d1d6c7d8e9f0a1b2c3d4e5f6a7b8");
    assert_eq!(item["content"][0]["text"], explanation("get_time"));
}

/// `sequence_number`s of a Responses stream stay 0, 1, 2, … after rewriting, and every event
/// the SDK reads by item carries `item_id`, `output_index` and (for parts) `content_index`.
fn assert_sequence_numbers(body: &[u8]) {
    let events = split_events(Framing::Sse, &[body]);
    for (n, e) in events.iter().enumerate() {
        let v: Value = serde_json::from_slice(&e.data).unwrap();
        assert_eq!(v["sequence_number"], n, "event {n}");
        assert_eq!(e.name.as_deref(), v["type"].as_str(), "event {n} name");
        let ty = v["type"].as_str().unwrap();
        if ty.starts_with("response.output_text") || ty.starts_with("response.content_part") {
            assert!(v["item_id"].is_string() && v["output_index"].is_u64());
            assert_eq!(v["content_index"], 0);
        }
    }
}

#[test]
fn responses_deny_one_of_two() {
    let s = stream("openai/responses_stream_tools.sse");
    let route = route("POST", s.path);
    let body = fixture(s.file);
    let (reports, completed) = track(&route, &split_events(s.framing, &[&body]));
    assert_eq!(reports[2].open, [0]);
    assert!(!reports[2].other);
    assert_eq!(reports[7].completed[0].0, 0);
    assert_eq!(
        by_slot(completed)[0],
        call(
            Some("call_Dq8sV3nT6kPz1Wm4Xr9Lb2Hc"),
            "execute_sql",
            r#"{"query":"DROP TABLE orders;"}"#
        )
    );

    let (out, _) = gate(&route, s.framing, &body, &deny_args("DROP TABLE"));
    assert_events_are_json(s.framing, &out);
    assert_sequence_numbers(&out);
    let resp = replay_with_step(&route, s.framing, &out, 13).response;
    assert_eq!(
        resp.tool_calls,
        [call(
            Some("call_Fh2kW7pR4tNy9Qa3Zs6Mc1Jd"),
            "get_time",
            r#"{"timezone":"UTC"}"#
        )]
    );
    assert_eq!(resp.output_text, explanation("execute_sql"));
    assert_eq!(resp.finish_reason.as_deref(), Some("completed"));
    // Cut before `response.completed`, the stream still decodes without the call.
    let cut = out
        .windows(25)
        .rposition(|w| w == b"event: response.completed")
        .unwrap();
    let partial = common::decode(&route, s.framing, &out[..cut]).0;
    assert_eq!(partial.tool_calls.len(), 1);
    assert_eq!(partial.output_text, explanation("execute_sql"));
}

#[test]
fn anthropic_text_then_one_call() {
    let s = stream("anthropic/stream_tool_use.sse");
    let route = route("POST", s.path);
    let body = fixture(s.file);
    let (reports, completed) = track(&route, &split_events(s.framing, &[&body]));
    assert!(reports[..6].iter().all(|r| r.open.is_empty() && r.other));
    assert!(reports[6..12].iter().all(|r| r.open == [0] && !r.other));
    assert_eq!(reports[12].completed.len(), 1);
    assert_eq!(
        completed,
        [(
            0,
            call(
                Some("toolu_01Vd7Qm2Kx9Tz4Rb8Lc3Np6W"),
                "execute_sql",
                r#"{"query": "DROP TABLE legacy_users;", "database": "prod"}"#
            )
        )]
    );

    let (out, _) = gate(&route, s.framing, &body, &deny_args("DROP TABLE"));
    assert_events_are_json(s.framing, &out);
    let resp = replay_with_step(&route, s.framing, &out, 7).response;
    assert!(resp.tool_calls.is_empty());
    assert_eq!(
        resp.output_text,
        format!("I'll remove the old table.{}", explanation("execute_sql"))
    );
    assert_eq!(resp.finish_reason.as_deref(), Some("end_turn"));
    // The text block takes the call's index, so block indexes stay dense.
    let starts: Vec<(u64, String)> = split_events(s.framing, &[&out])
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_start"))
        .map(|e| {
            let v: Value = serde_json::from_slice(&e.data).unwrap();
            (
                v["index"].as_u64().unwrap(),
                v["content_block"]["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(starts, [(0, "text".into()), (1, "text".into())]);
}

#[test]
fn anthropic_deny_one_of_three() {
    let s = stream("anthropic/stream_multi.sse");
    let route = route("POST", s.path);
    let body = fixture(s.file);
    let original = common::decode(&route, s.framing, &body).0;
    let deny_new_york = |c: &ToolCall| {
        c.arguments
            .contains("New York")
            .then(|| explanation(&c.name))
    };
    let (out, denied) = gate(&route, s.framing, &body, &deny_new_york);
    assert_eq!(denied.keys().copied().collect::<Vec<_>>(), [1]);
    assert_events_are_json(s.framing, &out);
    let resp = replay_with_step(&route, s.framing, &out, 9).response;
    let kept: Vec<ToolCall> = original
        .tool_calls
        .iter()
        .filter(|c| !c.arguments.contains("New York"))
        .cloned()
        .collect();
    assert_eq!(resp.tool_calls, kept);
    assert_eq!(kept.len(), 2);
    assert!(resp.output_text.ends_with(&explanation("get_weather")));
    assert_eq!(resp.finish_reason.as_deref(), Some("tool_use"));
    assert_eq!(resp.reasoning, original.reasoning);
}

#[test]
fn gemini_calls_arrive_whole() {
    for file in [
        "gemini/stream_function_calls.sse",
        "gemini/stream_function_calls.array.json",
    ] {
        let s = stream(file);
        let route = route("POST", s.path);
        let body = fixture(s.file);
        let (reports, _) = track(&route, &split_events(s.framing, &[&body]));
        assert!(reports[0].open.is_empty() && reports[0].completed.is_empty());
        assert!(reports[1].open.is_empty());
        assert_eq!(
            reports[1]
                .completed
                .iter()
                .map(|(s, c)| (*s, c.arguments.as_str()))
                .collect::<Vec<_>>(),
            [
                (0, r#"{"city":"Kyoto"}"#),
                (1, r#"{"city":"Osaka","date":"2025-06-01"}"#)
            ]
        );

        let (out, _) = gate(&route, s.framing, &body, &deny_args("Kyoto"));
        assert_events_are_json(s.framing, &out);
        let resp = replay_with_step(&route, s.framing, &out, 7).response;
        assert_eq!(
            resp.tool_calls,
            [call(
                None,
                "get_weather",
                r#"{"city":"Osaka","date":"2025-06-01"}"#
            )],
            "{file}"
        );
        assert_eq!(
            resp.output_text,
            format!("Checking both cities.\n\n{}", explanation("get_weather"))
        );
        assert_eq!(resp.finish_reason.as_deref(), Some("STOP"));
        // The allowed call's part keeps its bytes' meaning, the other part is now text.
        if s.framing == Framing::JsonArrayStream {
            let whole: Value = serde_json::from_slice(&out).unwrap();
            let parts = &whole[1]["candidates"][0]["content"]["parts"];
            assert!(parts[0]["text"].is_string());
            assert_eq!(parts[1]["functionCall"]["args"]["city"], "Osaka");
        }
    }
}

#[test]
fn ollama_deny_one_of_two() {
    let s = stream("ollama/chat_stream_tools.ndjson");
    let route = route("POST", s.path);
    let body = fixture(s.file);
    let (reports, _) = track(&route, &split_events(s.framing, &[&body]));
    assert_eq!(reports[0].completed[0].0, 0);
    assert_eq!(
        reports[0].completed[0].1.arguments,
        r#"{"city":"Toronto","format":"celsius"}"#
    );
    assert!(reports[2].other && reports[2].completed.is_empty());

    let (out, _) = gate(&route, s.framing, &body, &deny_args("Toronto"));
    assert_events_are_json(s.framing, &out);
    let resp = replay_with_step(&route, s.framing, &out, 3).response;
    assert_eq!(resp.tool_calls.len(), 1);
    assert!(resp.tool_calls[0].arguments.contains("Paris"));
    assert_eq!(resp.output_text, explanation("get_current_weather"));
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 3);
}

#[test]
fn identical_twins_never_let_the_refused_one_through() {
    // Two identical Ollama calls: the first is allowed and released before rewriting starts,
    // the second refused. Rewriting from the second line on must explain, not keep, it.
    let route = route("POST", OLLAMA);
    let line = br#"{"model":"llama3.2","created_at":"2025-06-01T10:15:02Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"sh","arguments":{"cmd":"ls"}}}]},"done":false}"#;
    let mut tracker = ToolCallTracker::new(&route);
    assert_eq!(tracker.observe(None, line).completed[0].0, 0);
    assert_eq!(tracker.observe(None, line).completed[0].0, 1);
    let denied = BTreeMap::from([(1, "no".to_string())]);
    let Rewrite::Replace(out) = tracker.rewrite(None, line, &denied) else {
        panic!("the refused twin must be rewritten");
    };
    let v: Value = serde_json::from_slice(&out[0].data).unwrap();
    assert!(v["message"].get("tool_calls").is_none());
    assert_eq!(v["message"]["content"], "no");
}

#[test]
fn whole_stream_bodies_rewrite_like_the_gateway() {
    let cases: &[(&str, &[&str])] = &[
        ("openai/chat_stream_text_tool.sse", &["execute_sql"]),
        ("openai/chat_stream_tools.sse", &["get_time"]),
        ("openai/responses_stream_tools.sse", &["execute_sql"]),
        ("anthropic/stream_multi.sse", &["get_time"]),
        ("gemini/stream_function_calls.sse", &["get_weather"]),
        ("ollama/chat_stream_tools.ndjson", &["get_current_weather"]),
    ];
    for (file, names) in cases {
        let s = stream(file);
        let route = route("POST", s.path);
        let body = fixture(s.file);
        let names: &'static [&'static str] = names;
        let (gated, denied) = gate(&route, s.framing, &body, &deny_named(names));
        assert!(!denied.is_empty(), "{file}");
        let whole = rewrite_response(&route, &body, &denied).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&whole),
            String::from_utf8_lossy(&gated),
            "{file}"
        );
        let resp = parse_response(&route, &whole).unwrap();
        assert!(
            resp.tool_calls
                .iter()
                .all(|c| !names.contains(&c.name.as_str())),
            "{file}"
        );
    }
}

/// A buffered fixture and the route that answers with it.
struct Buffered {
    file: &'static str,
    path: &'static str,
    /// Finish reason once every call is refused.
    stop: Option<&'static str>,
}

const BUFFERED: &[Buffered] = &[
    Buffered {
        file: "openai/chat_response_tool_calls.json",
        path: CHAT,
        stop: Some("stop"),
    },
    Buffered {
        file: "openai/responses_response.json",
        path: RESPONSES,
        stop: Some("completed"),
    },
    Buffered {
        file: "anthropic/response_tool_use.json",
        path: MESSAGES,
        stop: Some("end_turn"),
    },
    Buffered {
        file: "gemini/response_function_calls.json",
        path: GEMINI,
        stop: Some("STOP"),
    },
    Buffered {
        file: "gemini/stream_function_calls.array.json",
        path: GEMINI_STREAM,
        stop: Some("STOP"),
    },
    Buffered {
        file: "ollama/chat_response_tool_calls.json",
        path: OLLAMA,
        stop: Some("stop"),
    },
];

#[test]
fn buffered_slots_are_parse_response_order() {
    for b in BUFFERED {
        let route = route("POST", b.path);
        let body = fixture(b.file);
        let original = parse_response(&route, &body).unwrap();
        assert!(!original.tool_calls.is_empty(), "{}", b.file);
        for k in 0..original.tool_calls.len() {
            let denied = BTreeMap::from([(k, explanation(&original.tool_calls[k].name))]);
            let out = rewrite_response(&route, &body, &denied).unwrap();
            let resp = parse_response(&route, &out).unwrap();
            let mut want = original.tool_calls.clone();
            want.remove(k);
            assert_eq!(resp.tool_calls, want, "{} slot {k}", b.file);
            assert!(
                resp.output_text
                    .contains(&explanation(&original.tool_calls[k].name)),
                "{}",
                b.file
            );
            if original.tool_calls.len() > 1 {
                assert_eq!(resp.finish_reason, original.finish_reason, "{}", b.file);
            }
            assert_eq!(resp.usage, original.usage);
            assert_eq!(resp.id, original.id);
        }
        let all: BTreeMap<usize, String> = (0..original.tool_calls.len())
            .map(|k| (k, format!("refused {k}")))
            .collect();
        let out = rewrite_response(&route, &body, &all).unwrap();
        let resp = parse_response(&route, &out).unwrap();
        assert!(resp.tool_calls.is_empty(), "{}", b.file);
        assert_eq!(resp.finish_reason.as_deref(), b.stop, "{}", b.file);
        assert!(resp.output_text.contains("refused 0"));
        // Nothing refused: the very same bytes.
        assert_eq!(
            rewrite_response(&route, &body, &BTreeMap::new()).unwrap(),
            body
        );
    }
}

#[test]
fn buffered_text_joins_existing_content() {
    let route = route("POST", CHAT);
    let body = br#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Dropping the table.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"execute_sql","arguments":"{\"query\":\"DROP TABLE t\"}"}}]},"finish_reason":"tool_calls"}]}"#;
    let denied = BTreeMap::from([(0, "blocked".to_string())]);
    let out: Value =
        serde_json::from_slice(&rewrite_response(&route, body, &denied).unwrap()).unwrap();
    let choice = &out["choices"][0];
    assert_eq!(
        choice["message"]["content"],
        "Dropping the table.\n\nblocked"
    );
    assert!(choice["message"].get("tool_calls").is_none());
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
}

#[test]
fn unknown_slots_are_an_error() {
    let route = route("POST", MESSAGES);
    let body = fixture("anthropic/response_tool_use.json");
    let denied = BTreeMap::from([(2, "x".to_string())]);
    assert!(matches!(
        rewrite_response(&route, &body, &denied),
        Err(ProtocolError::Shape(_))
    ));
    let s = stream("anthropic/stream_multi.sse");
    let denied = BTreeMap::from([(3, "x".to_string())]);
    assert!(rewrite_response(&route, &fixture(s.file), &denied).is_err());
    assert!(matches!(
        rewrite_response(&route, b"not json", &denied),
        Err(ProtocolError::InvalidJson(_))
    ));
}

/// `(route path, fixture, rejected name, names left as parse_request sees them)`.
#[test]
fn strip_tools_per_provider() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (CHAT, "openai/chat_request.json", "get_weather", &[]),
        (
            CHAT,
            "openai/chat_request_legacy_functions.json",
            "get_current_weather",
            &[],
        ),
        (
            RESPONSES,
            "openai/responses_request.json",
            "get_weather",
            &["web_search"],
        ),
        (
            MESSAGES,
            "anthropic/request.json",
            "get_weather",
            &["web_search"],
        ),
        (GEMINI, "gemini/request.json", "get_weather", &[]),
        (
            OLLAMA,
            "ollama/chat_request.json",
            "get_current_weather",
            &[],
        ),
    ];
    for (path, file, reject, _) in cases {
        let route = route("POST", path);
        let body = fixture(file);
        let before = parse_request(&route, &body).unwrap();
        let (out, removed) = strip_tools(&route, &body, &|n| n != *reject)
            .unwrap()
            .unwrap_or_else(|| panic!("{file}: nothing removed"));
        assert_eq!(removed, [*reject], "{file}");
        let after = parse_request(&route, &out).unwrap();
        let want: Vec<String> = before
            .tools
            .iter()
            .map(|t| t.name.clone())
            .filter(|n| n != reject)
            .collect();
        assert_eq!(
            after
                .tools
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>(),
            want,
            "{file}"
        );
        // The conversation is untouched.
        assert_eq!(after.messages, before.messages, "{file}");
        assert_eq!(after.system, before.system, "{file}");
        // Keeping everything changes nothing.
        assert!(strip_tools(&route, &body, &|_| true).unwrap().is_none());
    }
    let gemini: Value = serde_json::from_slice(
        &strip_tools(
            &route("POST", GEMINI),
            &fixture("gemini/request.json"),
            &|n| n == "nothing",
        )
        .unwrap()
        .unwrap()
        .0,
    )
    .unwrap();
    assert!(gemini.get("tools").is_none(), "empty tools are dropped");
}

#[test]
fn strip_tools_drops_settings_that_need_the_tools() {
    let chat = route("POST", CHAT);
    let v = |out: Option<(Vec<u8>, Vec<String>)>| -> Value {
        serde_json::from_slice(&out.unwrap().0).unwrap()
    };
    let body = fixture("openai/chat_request.json");
    let out = v(strip_tools(&chat, &body, &|_| false).unwrap());
    assert!(out.get("tools").is_none());
    assert!(out.get("tool_choice").is_none());
    assert!(out.get("parallel_tool_calls").is_none());
    let body = fixture("openai/chat_request_legacy_functions.json");
    let out = v(strip_tools(&chat, &body, &|_| false).unwrap());
    assert!(out.get("functions").is_none() && out.get("function_call").is_none());

    // A forced tool that is removed goes back to the default; one that stays is kept.
    let forced = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],
        "tools":[{"type":"function","function":{"name":"execute_sql"}},{"type":"function","function":{"name":"read_file"}}],
        "tool_choice":{"type":"function","function":{"name":"execute_sql"}}}"#;
    let (out, removed) = strip_tools(&chat, forced, &|n| n != "execute_sql")
        .unwrap()
        .unwrap();
    assert_eq!(removed, ["execute_sql"]);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert!(out.get("tool_choice").is_none());
    assert_eq!(out["tools"].as_array().unwrap().len(), 1);
    let out = v(strip_tools(&chat, forced, &|n| n != "read_file").unwrap());
    assert_eq!(out["tool_choice"]["function"]["name"], "execute_sql");

    let allowed = br#"{"model":"gpt-5","messages":[],"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}],
        "tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"function","function":{"name":"a"}}]}}}"#;
    let out = v(strip_tools(&chat, allowed, &|n| n != "a").unwrap());
    assert!(out.get("tool_choice").is_none(), "allowed list emptied");
    let out = v(strip_tools(&chat, allowed, &|n| n != "b").unwrap());
    assert_eq!(
        out["tool_choice"]["allowed_tools"]["tools"][0]["function"]["name"],
        "a"
    );

    let responses = route("POST", RESPONSES);
    let body = br#"{"model":"gpt-5","input":"hi","tools":[{"type":"function","name":"execute_sql"},{"type":"web_search"}],"tool_choice":{"type":"function","name":"execute_sql"}}"#;
    let out = v(strip_tools(&responses, body, &|n| n != "execute_sql").unwrap());
    assert!(out.get("tool_choice").is_none());
    assert_eq!(out["tools"][0]["type"], "web_search");
    let body = br#"{"model":"gpt-5","input":"hi","tools":[{"type":"web_search"}],"tool_choice":{"type":"web_search"}}"#;
    let (out, removed) = strip_tools(&responses, body, &|n| n != "web_search")
        .unwrap()
        .unwrap();
    assert_eq!(removed, ["web_search"]);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert!(out.get("tools").is_none() && out.get("tool_choice").is_none());

    let messages = route("POST", MESSAGES);
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[],"tools":[{"name":"execute_sql","input_schema":{}},{"name":"read","input_schema":{}}],"tool_choice":{"type":"any"}}"#;
    let out = v(strip_tools(&messages, body, &|n| n != "execute_sql").unwrap());
    assert_eq!(
        out["tool_choice"]["type"], "any",
        "a choice naming no tool stays"
    );
    let out = v(strip_tools(&messages, body, &|_| false).unwrap());
    assert!(out.get("tool_choice").is_none());

    let gemini = route("POST", GEMINI);
    let body = br#"{"contents":[],"tools":[{"functionDeclarations":[{"name":"execute_sql"},{"name":"read"}]},{"googleSearch":{}}],
        "toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["execute_sql"]}}}"#;
    let out = v(strip_tools(&gemini, body, &|n| n != "execute_sql").unwrap());
    assert_eq!(out["tools"][0]["functionDeclarations"][0]["name"], "read");
    assert_eq!(out["tools"][1], serde_json::json!({"googleSearch": {}}));
    assert!(
        out.get("toolConfig").is_none(),
        "forced only the removed function"
    );
    let (out, removed) = strip_tools(&gemini, body, &|n| n != "googleSearch")
        .unwrap()
        .unwrap();
    assert_eq!(removed, ["googleSearch"]);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["tools"].as_array().unwrap().len(), 1);
    assert_eq!(out["toolConfig"]["functionCallingConfig"]["mode"], "ANY");
    let snake = br#"{"contents":[],"tools":[{"function_declarations":[{"name":"execute_sql"}]}],"tool_config":{"function_calling_config":{"mode":"ANY"}}}"#;
    let out = v(strip_tools(&gemini, snake, &|n| n != "execute_sql").unwrap());
    assert!(out.get("tools").is_none() && out.get("tool_config").is_none());

    // Routes without tools are not even read.
    let embeddings = route("POST", "/v1/embeddings");
    assert!(
        strip_tools(&embeddings, b"not json", &|_| false)
            .unwrap()
            .is_none()
    );
    assert!(strip_tools(&chat, b"[1]", &|_| false).is_err());
    assert!(strip_tools(&chat, b"{", &|_| false).is_err());
}

#[test]
fn malformed_events_never_panic() {
    let paths = [
        CHAT,
        "/v1/completions",
        "/v1/embeddings",
        RESPONSES,
        MESSAGES,
        GEMINI,
        GEMINI_STREAM,
        OLLAMA,
        "/api/generate",
    ];
    let nasty: Vec<&[u8]> = vec![
        b"",
        b"\xff\xfe",
        b"[DONE]",
        b"null",
        b"[]",
        b"{\"choices\":5}",
        b"{\"choices\":[{\"index\":\"x\",\"delta\":{\"tool_calls\":[null,7,{\"index\":-1},{\"function\":5}]},\"finish_reason\":3}]}",
        b"{\"choices\":[{\"delta\":{\"tool_calls\":{\"index\":0}},\"finish_reason\":\"tool_calls\"}]}",
        b"{\"choices\":[{\"delta\":[],\"message\":7}]}",
        b"{\"type\":\"response.output_item.added\",\"output_index\":\"x\",\"item\":{\"type\":\"function_call\",\"name\":5}}",
        b"{\"type\":\"response.function_call_arguments.delta\",\"output_index\":18446744073709551615,\"delta\":[]}",
        b"{\"type\":\"response.completed\",\"response\":{\"output\":[{\"type\":\"function_call\"},3,null]}}",
        b"{\"type\":\"content_block_start\",\"index\":-3,\"content_block\":{\"type\":\"tool_use\",\"input\":\"x\"}}",
        b"{\"type\":\"content_block_delta\",\"index\":9,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":1}}",
        b"{\"type\":\"message_delta\",\"delta\":null}",
        b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}",
        b"{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":null},{\"functionCall\":{\"args\":[1]}},7]}},5]}",
        b"{\"message\":{\"tool_calls\":[{\"function\":null},7,{\"function\":{\"arguments\":\"x\"}}]},\"done\":\"yes\"}",
        b"{\"message\":\"text\",\"tool_calls\":[{}]}",
    ];
    for path in paths {
        let route = route("POST", path);
        let mut tracker = ToolCallTracker::new(&route);
        for data in &nasty {
            for name in [None, Some("content_block_start"), Some("error")] {
                let r = tracker.observe(name, data);
                assert!(r.other || !r.open.is_empty() || !r.completed.is_empty());
            }
        }
        let slots = tracker.calls().count();
        tracker.finish();
        let denied: BTreeMap<usize, String> = (0..slots + 2).map(|k| (k, "no".into())).collect();
        for data in &nasty {
            for name in [None, Some("x")] {
                if let Rewrite::Replace(events) = tracker.rewrite(name, data, &denied) {
                    for e in events {
                        if e.data != b"[DONE]" {
                            serde_json::from_slice::<Value>(&e.data).unwrap();
                        }
                    }
                }
            }
            let _ = rewrite_response(&route, data, &denied);
            let _ = strip_tools(&route, data, &|_| false);
        }
        // A tracker for a route without calls reports every event as other.
        if path == "/v1/embeddings" {
            assert_eq!(slots, 0);
        }
    }
}

#[test]
fn a_truncated_stream_completes_its_calls_at_finish() {
    let s = stream("anthropic/stream_tool_use.sse");
    let route = route("POST", s.path);
    let body = fixture(s.file);
    let cut = body
        .windows(24)
        .position(|w| w == b"event: content_block_sto")
        .map(|first| {
            // The second block's stop: skip the text block's.
            first
                + 1
                + body[first + 1..]
                    .windows(24)
                    .position(|w| w == b"event: content_block_sto")
                    .unwrap()
        })
        .unwrap();
    let events = split_events(s.framing, &[&body[..cut]]);
    let mut tracker = ToolCallTracker::new(&route);
    for e in &events {
        assert!(
            tracker
                .observe(e.name.as_deref(), &e.data)
                .completed
                .is_empty()
        );
    }
    let rest = tracker.finish();
    assert_eq!(rest.len(), 1);
    assert_eq!(
        rest[0].1.arguments,
        r#"{"query": "DROP TABLE legacy_users;", "database": "prod"}"#
    );
    assert!(tracker.finish().is_empty(), "completed once");
}
