"""The official Anthropic Python SDK, pointed at Warden by base URL only, works unchanged."""

from __future__ import annotations

import json

import anthropic
import pytest

from conftest import assert_transport_error, scenario

MODEL = "claude-sonnet-4-5"
KEY = "sk-ant-test-anthropic-client-key-0123"
TOKEN = "oauth-test-bearer-token-4567"
USER = [{"role": "user", "content": "Say something."}]

TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
    {
        "name": "run_sql",
        "description": "Run a read-only query.",
        "input_schema": {"type": "object", "properties": {"sql": {"type": "string"}}},
    },
]
TOOL_CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
    {"name": "run_sql", "arguments": {"sql": "SELECT 1 WHERE a = 'x' AND b = \"{y}\"", "opts": {"rows": [1, 2], "dry": False, "why": None}}},
]


def make_client(base_url: str, capture=None, **kwargs) -> anthropic.Anthropic:
    if "auth_token" not in kwargs and "api_key" not in kwargs:
        kwargs["api_key"] = KEY
    hooks = {"request": [capture]} if capture else {}
    return anthropic.Anthropic(
        base_url=base_url,
        max_retries=0,
        timeout=30.0,
        http_client=anthropic.DefaultHttpxClient(event_hooks=hooks),
        **kwargs,
    )


@pytest.fixture
def client(warden, capture):
    c = make_client(warden.gateway, capture)
    yield c
    c.close()


def create(client, directive=None, **kwargs):
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_tokens", 1024)
    kwargs.setdefault("messages", USER)
    if directive is not None:
        kwargs["extra_headers"] = {**scenario(**directive), **kwargs.get("extra_headers", {})}
    return client.messages.create(**kwargs)


def tool_uses(content):
    return [(b.name, b.input) for b in content if b.type == "tool_use"]


EXPECTED_TOOL_USES = [(t["name"], t["arguments"]) for t in TOOL_CALLS]


# --- messages ---------------------------------------------------------------------------------


def test_messages_buffered_text_and_usage(client):
    text = "Anthropic through Warden. Ünïcödé ✓ 🌍"
    msg = create(client, {"text": text, "usage": {"input": 21, "output": 8}})
    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.model == MODEL
    assert msg.id
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == text
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (21, 8)


def test_messages_default_usage_is_counted(client):
    msg = create(client, {"words": 9})
    assert len(msg.content[0].text.split()) == 9
    assert msg.usage.input_tokens > 0
    assert msg.usage.output_tokens > 0


def test_messages_directive_in_message_text(client):
    msg = create(
        client,
        messages=[
            {"role": "user", "content": [{"type": "text", "text": 'Hi [mock:{"text":"from the block"}]'}]}
        ],
    )
    assert msg.content[0].text == "from the block"


def test_messages_stream_helper_text(client):
    text = "Streaming Anthropic events through the gateway: ünïcödé ✓ 🌍 end."
    with client.messages.stream(
        model=MODEL,
        max_tokens=1024,
        messages=USER,
        extra_headers=scenario(text=text, chunks=7, usage={"input": 3, "output": 12}),
    ) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(deltas) == text
    assert len(deltas) > 1
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 12
    assert final.usage.input_tokens == 3


def test_messages_raw_stream_events(client):
    text = "raw events in order"
    stream = create(client, {"text": text}, stream=True)
    types, parts = [], []
    for event in stream:
        types.append(event.type)
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            parts.append(event.delta.text)
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"
    assert "content_block_start" in types and "content_block_stop" in types
    assert "message_delta" in types
    assert "".join(parts) == text


def test_tool_use_buffered(client):
    msg = create(client, {"tool_calls": TOOL_CALLS}, tools=TOOLS)
    assert msg.stop_reason == "tool_use"
    assert tool_uses(msg.content) == EXPECTED_TOOL_USES
    ids = [b.id for b in msg.content if b.type == "tool_use"]
    assert len(set(ids)) == 2 and all(ids)


def test_tool_use_streamed_with_helper(client):
    with client.messages.stream(
        model=MODEL,
        max_tokens=1024,
        messages=USER,
        tools=TOOLS,
        extra_headers=scenario(text="Checking.", tool_calls=TOOL_CALLS),
    ) as stream:
        json_parts = [e.partial_json for e in stream if e.type == "input_json"]
        final = stream.get_final_message()
    assert len(json_parts) > 2, "arguments should arrive as several input_json_delta events"
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[0].text == "Checking."
    assert tool_uses(final.content) == EXPECTED_TOOL_USES


def test_tool_use_raw_stream_reassembled_by_hand(client):
    stream = create(client, {"tool_calls": TOOL_CALLS}, tools=TOOLS, stream=True)
    blocks: dict[int, dict] = {}
    for event in stream:
        if event.type == "content_block_start" and event.content_block.type == "tool_use":
            blocks[event.index] = {"name": event.content_block.name, "json": ""}
        elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            blocks[event.index]["json"] += event.delta.partial_json
    got = [(b["name"], json.loads(b["json"])) for _, b in sorted(blocks.items())]
    assert got == EXPECTED_TOOL_USES


def test_thinking_buffered(client):
    msg = create(
        client,
        {"text": "The answer is 42.", "reasoning": "Six times seven is forty-two."},
        thinking={"type": "enabled", "budget_tokens": 1024},
        max_tokens=2048,
    )
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == "Six times seven is forty-two."
    assert msg.content[0].signature
    assert msg.content[1].text == "The answer is 42."


def test_thinking_streamed(client):
    with client.messages.stream(
        model=MODEL,
        max_tokens=2048,
        messages=USER,
        thinking={"type": "enabled", "budget_tokens": 1024},
        extra_headers=scenario(text="Done thinking.", reasoning="Let me think about this carefully."),
    ) as stream:
        thinking, signatures, text = [], [], []
        for event in stream:
            if event.type == "thinking":
                thinking.append(event.thinking)
            elif event.type == "signature":
                signatures.append(event.signature)
            elif event.type == "text":
                text.append(event.text)
        final = stream.get_final_message()
    assert "".join(thinking) == "Let me think about this carefully."
    assert signatures and signatures[-1]
    assert "".join(text) == "Done thinking."
    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == "Let me think about this carefully."
    assert final.content[0].signature == signatures[-1]


def test_count_tokens(client):
    result = client.messages.count_tokens(model=MODEL, messages=USER)
    assert result.input_tokens > 0


# --- errors -----------------------------------------------------------------------------------


def test_upstream_429_is_rate_limit_error(client):
    with pytest.raises(anthropic.RateLimitError) as info:
        create(client, {"status": 429})
    err = info.value
    assert err.status_code == 429
    assert err.response.headers.get("retry-after") == "1"
    assert isinstance(err.body, dict) and err.body.get("type") == "error"


def test_upstream_429_on_stream_request(client):
    with pytest.raises(anthropic.RateLimitError):
        with client.messages.stream(
            model=MODEL, max_tokens=64, messages=USER, extra_headers=scenario(status=429)
        ) as stream:
            stream.until_done()


def test_upstream_500_is_internal_server_error(client):
    with pytest.raises(anthropic.InternalServerError) as info:
        create(client, {"status": 500})
    assert info.value.status_code == 500


def test_upstream_529_is_overloaded(client):
    with pytest.raises(anthropic.APIStatusError) as info:
        create(client, {"status": 529})
    err = info.value
    assert err.status_code == 529
    assert isinstance(err, anthropic.OverloadedError)


def test_unknown_route_is_refused_by_warden(client, warden):
    before = warden.mock_stats()["requests"]
    with pytest.raises(anthropic.NotFoundError) as info:
        client.post("/v1/nope", cast_to=object, body={"model": MODEL})
    err = info.value
    assert err.status_code == 404
    assert "Warden" in err.message and "Supported routes" in err.message, err.message
    assert "/v1/messages" in err.message
    assert err.body["type"] == "error"
    assert err.body["error"]["type"] == "not_found_error"
    assert warden.mock_stats()["requests"] == before


def test_unreachable_upstream_is_502_in_anthropic_shape(dead_gateway):
    with make_client(dead_gateway) as c:
        with pytest.raises(anthropic.InternalServerError) as info:
            create(c)
    err = info.value
    assert err.status_code == 502
    assert err.body["error"]["type"] == "api_error"
    assert "upstream" in err.message and "anthropic" in err.message, err.message


def test_stream_broken_upstream_is_an_error_not_a_clean_end(client):
    with pytest.raises(Exception) as info:
        with client.messages.stream(
            model=MODEL,
            max_tokens=1024,
            messages=USER,
            extra_headers=scenario(words=40, break_after=4),
        ) as stream:
            stream.until_done()
    assert_transport_error(info.value)


def test_client_disconnect_cancels_the_upstream_stream(client, warden):
    before = warden.mock_stats()
    with client.messages.stream(
        model=MODEL,
        max_tokens=1024,
        messages=USER,
        extra_headers=scenario(words=200, chunk_delay_ms=20),
    ) as stream:
        first = next(iter(stream))
        assert first.type == "message_start"
    stats = warden.wait_for_stats(
        lambda s: s["streams_cancelled"] > before["streams_cancelled"], timeout=15
    )
    assert stats["streams_cancelled"] == before["streams_cancelled"] + 1, stats
    assert stats["streams_completed"] == before["streams_completed"], stats


# --- what reaches the upstream ----------------------------------------------------------------


def echo(client, **kwargs) -> dict:
    msg = create(client, {"echo": True}, **kwargs)
    return json.loads(msg.content[0].text)


def assert_no_warden_headers(headers):
    assert not [h for h in headers if h.startswith("x-warden-")], headers


def test_api_key_reaches_upstream_untouched(client, capture):
    seen = echo(
        client,
        extra_headers={
            "x-warden-session": "sess-1",
            "x-warden-agent": "agent-1",
            "x-warden-tenant": "tenant-1",
            "anthropic-beta": "test-beta-2025-01-01",
        },
    )
    assert seen["method"] == "POST"
    assert seen["path"] == "/v1/messages"
    headers = seen["headers"]
    sent = capture.last_headers
    # This SDK version sends api_key as a bearer token; whatever it sent must arrive as sent.
    assert KEY in (sent.get("x-api-key"), sent.get("authorization", "").removeprefix("Bearer "))
    for name in ("x-api-key", "authorization"):
        assert headers.get(name) == sent.get(name), name
    assert headers["anthropic-version"] == sent["anthropic-version"]
    assert headers["anthropic-version"] == anthropic._constants.ANTHROPIC_API_VERSION
    assert headers["anthropic-beta"] == "test-beta-2025-01-01"
    assert_no_warden_headers(headers)
    assert seen["body"]["model"] == MODEL
    assert seen["body"]["messages"] == USER
    assert seen["body"]["max_tokens"] == 1024


def test_x_api_key_header_reaches_upstream_untouched(warden, capture):
    # Older SDKs, curl and most agents send the key as `x-api-key`.
    with make_client(
        warden.gateway, capture, api_key=None, default_headers={"x-api-key": KEY}
    ) as c:
        seen = echo(c, extra_headers={"x-warden-session": "s"})
    headers = seen["headers"]
    assert headers["x-api-key"] == KEY
    assert "authorization" not in capture.last_headers or headers.get("authorization") == capture.last_headers["authorization"]
    assert_no_warden_headers(headers)


def test_auth_token_reaches_upstream_as_bearer(warden, capture):
    with make_client(warden.gateway, capture, auth_token=TOKEN) as c:
        seen = echo(c, extra_headers={"x-warden-agent": "a"})
    headers = seen["headers"]
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert "x-api-key" not in headers
    assert headers["anthropic-version"] == capture.last_headers["anthropic-version"]
    assert_no_warden_headers(headers)


def test_request_body_reaches_upstream_unchanged(client):
    system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
    seen = echo(
        client,
        system=system,
        tools=TOOLS,
        stop_sequences=["\n\nHuman:"],
        metadata={"user_id": "u-1"},
        # Fields this SDK version has no parameter for travel in extra_body, untouched.
        extra_body={"temperature": 0.5, "vendor_extension": {"keep": [1, None]}},
    )
    body = seen["body"]
    assert body["system"] == system
    assert body["tools"] == TOOLS
    assert body["temperature"] == 0.5
    assert body["stop_sequences"] == ["\n\nHuman:"]
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["vendor_extension"] == {"keep": [1, None]}


# --- hygiene ----------------------------------------------------------------------------------


def test_client_credentials_never_reach_the_gateway_log(warden):
    # Runs last in this file: by now every kind of request above has been logged.
    log = warden.gateway_log()
    assert "exchange" in log, "the gateway logs one line per exchange"
    for secret in [KEY, TOKEN]:
        assert secret not in log


def test_receipts_from_sdk_calls_verify(client, warden):
    raw = client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers=scenario(text="receipted"),
    )
    assert raw.parse().content[0].text == "receipted"
    check = warden.verify_receipt(raw.headers["x-warden-receipt"])
    assert check.returncode == 0, check.stdout + check.stderr

    with client.messages.stream(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers=scenario(text="streamed through a receipt"),
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "streamed through a receipt"
    assert final.stop_reason == "end_turn"
