"""The official OpenAI Python SDK, pointed at Warden by base URL only, works unchanged."""

from __future__ import annotations

import json

import openai
import pytest

from conftest import assert_transport_error, scenario

MODEL = "gpt-4o-mini"
KEY = "sk-test-openai-client-key-0123456789"
USER = [{"role": "user", "content": "Say something."}]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the docs.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
            },
        },
    },
]
TOOL_CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
    {"name": "search_docs", "arguments": {"query": "héllo \"quoted\" {braces}", "limit": 3, "nested": {"a": [1, 2.5, None, True]}}},
]


@pytest.fixture
def client(warden, capture):
    c = openai.OpenAI(
        api_key=KEY,
        base_url=f"{warden.gateway}/v1",
        max_retries=0,
        timeout=30.0,
        http_client=openai.DefaultHttpxClient(event_hooks={"request": [capture]}),
    )
    yield c
    c.close()


# --- chat completions -----------------------------------------------------------------------


def test_chat_buffered_text_and_usage(client):
    text = "The gateway is a faithful pipe. Ünïcödé ✓ 🌍"
    resp = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        extra_headers=scenario(text=text, usage={"input": 11, "output": 7}),
    )
    assert resp.object == "chat.completion"
    assert resp.model == MODEL
    assert len(resp.choices) == 1
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == text
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (11, 7, 18)


def test_chat_buffered_default_usage_is_counted(client):
    resp = client.chat.completions.create(model=MODEL, messages=USER, extra_headers=scenario(words=12))
    words = resp.choices[0].message.content.split()
    assert len(words) == 12
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_chat_directive_in_message_text(client):
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": 'Hi [mock:{"text":"from the message"}]'}],
    )
    assert resp.choices[0].message.content == "from the message"


def test_chat_stream_text_with_usage(client):
    text = "Streaming through Warden, chunk by chunk: ünïcödé ✓ 🌍 and more words here."
    stream = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=scenario(text=text, chunks=9, usage={"input": 5, "output": 13}),
    )
    parts, usage, finish, chunks = [], None, None, 0
    for chunk in stream:
        chunks += 1
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    assert "".join(parts) == text
    assert len(parts) > 1, "the text should arrive in several deltas"
    assert finish == "stop"
    assert usage is not None, "stream_options.include_usage must deliver a usage chunk"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 13, 18)


def test_chat_stream_helper_final_completion(client):
    text = "final completion via the SDK's stream helper"
    with client.chat.completions.stream(
        model=MODEL, messages=USER, extra_headers=scenario(text=text)
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == text
    assert final.choices[0].message.content == text


def test_chat_tool_calls_buffered(client):
    resp = client.chat.completions.create(
        model=MODEL, messages=USER, tools=TOOLS, extra_headers=scenario(tool_calls=TOOL_CALLS)
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 2
    assert [c.type for c in calls] == ["function", "function"]
    assert [c.function.name for c in calls] == [t["name"] for t in TOOL_CALLS]
    assert [json.loads(c.function.arguments) for c in calls] == [t["arguments"] for t in TOOL_CALLS]
    assert len({c.id for c in calls}) == 2 and all(c.id for c in calls)


def test_chat_tool_calls_streamed_reassembled_by_hand(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        tools=TOOLS,
        stream=True,
        extra_headers=scenario(tool_calls=TOOL_CALLS),
    )
    calls: dict[int, dict] = {}
    argument_deltas = 0
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function and tc.function.name:
                    slot["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    slot["arguments"] += tc.function.arguments
                    argument_deltas += 1
            if choice.finish_reason:
                finish = choice.finish_reason
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert [calls[i]["name"] for i in (0, 1)] == [t["name"] for t in TOOL_CALLS]
    assert [json.loads(calls[i]["arguments"]) for i in (0, 1)] == [t["arguments"] for t in TOOL_CALLS]
    assert all(calls[i]["id"] for i in (0, 1))
    assert argument_deltas > 2, "arguments should arrive in pieces"


def test_chat_tool_calls_streamed_with_sdk_helper(client):
    with client.chat.completions.stream(
        model=MODEL, messages=USER, tools=TOOLS, extra_headers=scenario(tool_calls=TOOL_CALLS)
    ) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert [(e.name, json.loads(e.arguments)) for e in done] == [
        (t["name"], t["arguments"]) for t in TOOL_CALLS
    ]
    calls = final.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        (t["name"], t["arguments"]) for t in TOOL_CALLS
    ]


def test_chat_text_and_tool_call_together(client):
    resp = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        tools=TOOLS,
        extra_headers=scenario(text="Let me check.", tool_calls=TOOL_CALLS[:1]),
    )
    msg = resp.choices[0].message
    assert msg.content == "Let me check."
    assert [(c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls] == [
        (TOOL_CALLS[0]["name"], TOOL_CALLS[0]["arguments"])
    ]


def test_chat_reasoning_content_passes_through(client):
    # Not a typed field of the SDK's models, but OpenAI-compatible servers (vLLM, DeepSeek) send
    # it and the SDK keeps unknown fields; the gateway must not drop them.
    resp = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        extra_headers=scenario(text="42", reasoning="Six times seven."),
    )
    msg = resp.choices[0].message
    assert msg.content == "42"
    assert (msg.model_extra or {}).get("reasoning_content") == "Six times seven."


def test_legacy_completions(client):
    resp = client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Once upon", extra_headers=scenario(text=" a time")
    )
    assert resp.choices[0].text == " a time"
    assert resp.usage.completion_tokens > 0


def test_models_list_and_retrieve(client):
    models = client.models.list()
    ids = [m.id for m in models]
    assert ids, "the mock lists models"
    one = client.models.retrieve(ids[0])
    assert one.id == ids[0]


# --- responses API ----------------------------------------------------------------------------


def test_responses_buffered_output_text(client):
    text = "Responses API through the gateway."
    resp = client.responses.create(
        model=MODEL,
        input="Say something.",
        extra_headers=scenario(text=text, usage={"input": 4, "output": 6}),
    )
    assert resp.object == "response"
    assert resp.status == "completed"
    assert resp.output_text == text
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (4, 6, 10)


def test_responses_streaming_events(client):
    text = "Streamed responses arrive as typed events."
    stream = client.responses.create(
        model=MODEL, input="Say something.", stream=True, extra_headers=scenario(text=text)
    )
    types, deltas, completed = [], [], None
    for event in stream:
        types.append(event.type)
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type == "response.completed":
            completed = event.response
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "".join(deltas) == text
    assert completed is not None and completed.output_text == text
    assert completed.usage is not None and completed.usage.output_tokens > 0


def test_responses_stream_helper(client):
    text = "helper text"
    with client.responses.stream(
        model=MODEL, input=[{"role": "user", "content": "hi"}], extra_headers=scenario(text=text)
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == text
    assert final.output_text == text


def test_responses_function_calls_and_reasoning(client):
    resp = client.responses.create(
        model=MODEL,
        input="Weather?",
        tools=[
            {"type": "function", "name": t["function"]["name"], "parameters": t["function"]["parameters"]}
            for t in TOOLS
        ],
        extra_headers=scenario(tool_calls=TOOL_CALLS, reasoning="I should call two tools."),
    )
    calls = [item for item in resp.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        (t["name"], t["arguments"]) for t in TOOL_CALLS
    ]
    reasoning = [item for item in resp.output if item.type == "reasoning"]
    assert len(reasoning) == 1
    summary = "".join(s.text for s in reasoning[0].summary or [])
    assert summary == "I should call two tools."


def test_responses_function_calls_streamed(client):
    stream = client.responses.create(
        model=MODEL,
        input="Weather?",
        stream=True,
        extra_headers=scenario(tool_calls=TOOL_CALLS),
    )
    done = {}
    completed = None
    for event in stream:
        if event.type == "response.output_item.done" and event.item.type == "function_call":
            done[event.item.name] = json.loads(event.item.arguments)
        elif event.type == "response.completed":
            completed = event.response
    assert done == {t["name"]: t["arguments"] for t in TOOL_CALLS}
    calls = [i for i in completed.output if i.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        (t["name"], t["arguments"]) for t in TOOL_CALLS
    ]


# --- embeddings -------------------------------------------------------------------------------


def test_embeddings_default_encoding(client):
    # The SDK asks for base64 by default and decodes it; either answer must come back as floats.
    resp = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    assert [d.index for d in resp.data] == [0, 1]
    vectors = [d.embedding for d in resp.data]
    assert all(len(v) > 0 and all(isinstance(x, float) for x in v) for v in vectors)
    assert len(vectors[0]) == len(vectors[1])
    assert resp.usage.prompt_tokens > 0


def test_embeddings_float_encoding(client):
    resp = client.embeddings.create(
        model="text-embedding-3-small", input="alpha", encoding_format="float"
    )
    assert len(resp.data) == 1 and len(resp.data[0].embedding) > 0


# --- errors -----------------------------------------------------------------------------------


def test_upstream_429_is_rate_limit_error(client):
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=USER, extra_headers=scenario(status=429))
    err = info.value
    assert err.status_code == 429
    assert err.response.headers.get("retry-after") == "1"
    assert err.message


def test_upstream_429_on_stream_request(client):
    with pytest.raises(openai.RateLimitError) as info:
        stream = client.chat.completions.create(
            model=MODEL, messages=USER, stream=True, extra_headers=scenario(status=429)
        )
        list(stream)
    assert info.value.status_code == 429


def test_upstream_500_is_internal_server_error(client):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=USER, extra_headers=scenario(status=500))
    assert info.value.status_code == 500


def test_upstream_503_on_responses(client):
    with pytest.raises(openai.InternalServerError) as info:
        client.responses.create(model=MODEL, input="x", extra_headers=scenario(status=503))
    assert info.value.status_code == 503


def test_unknown_route_is_refused_by_warden(client, warden):
    before = warden.mock_stats()["requests"]
    with pytest.raises(openai.NotFoundError) as info:
        client.post("/nope", cast_to=object, body={"model": MODEL})
    err = info.value
    assert err.status_code == 404
    assert "Warden" in err.message and "Supported routes" in err.message, err.message
    assert "/v1/chat/completions" in err.message
    assert err.code == "not_found"
    assert err.response.headers.get("x-warden-error") == "not_found"
    assert warden.mock_stats()["requests"] == before, "a refused request must not reach the upstream"


def test_unreachable_upstream_is_502_in_openai_shape(dead_gateway):
    with openai.OpenAI(api_key=KEY, base_url=f"{dead_gateway}/v1", max_retries=0, timeout=30.0) as c:
        with pytest.raises(openai.InternalServerError) as info:
            c.chat.completions.create(model=MODEL, messages=USER)
    err = info.value
    assert err.status_code == 502
    assert err.code == "upstream_unreachable"
    assert "upstream" in err.message and "openai" in err.message, err.message


def test_stream_broken_upstream_is_an_error_not_a_clean_end(client):
    # The mock drops the connection after 3 chunks with no [DONE]: the SDK must see a failure,
    # never a silently truncated answer that looks complete.
    stream = client.chat.completions.create(
        model=MODEL, messages=USER, stream=True, extra_headers=scenario(words=40, break_after=3)
    )
    with pytest.raises(Exception) as info:
        for _ in stream:
            pass
    assert_transport_error(info.value)


def test_client_disconnect_cancels_the_upstream_stream(client, warden):
    before = warden.mock_stats()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        stream=True,
        extra_headers=scenario(words=200, chunk_delay_ms=20),
    )
    first = next(iter(stream))
    assert first.object == "chat.completion.chunk"
    stream.close()
    stats = warden.wait_for_stats(
        lambda s: s["streams_cancelled"] > before["streams_cancelled"], timeout=15
    )
    assert stats["streams_cancelled"] == before["streams_cancelled"] + 1, stats
    assert stats["streams_completed"] == before["streams_completed"], stats


# --- what reaches the upstream ----------------------------------------------------------------


def echo(client, **kwargs) -> dict:
    headers = {**scenario(echo=True), **kwargs.pop("extra_headers", {})}
    resp = client.chat.completions.create(model=MODEL, messages=USER, extra_headers=headers, **kwargs)
    return json.loads(resp.choices[0].message.content)


def test_client_key_and_headers_reach_upstream_untouched(client, capture):
    seen = echo(
        client,
        extra_headers={
            "x-warden-session": "sess-1",
            "x-warden-agent": "agent-1",
            "x-warden-tenant": "tenant-1",
            "x-custom-header": "kept",
            "OpenAI-Organization": "org-test",
        },
        extra_query={"trace": "1"},
    )
    assert seen["method"] == "POST"
    assert seen["path"] == "/v1/chat/completions"
    assert seen["query"] == "trace=1"
    headers = seen["headers"]
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["x-custom-header"] == "kept"
    assert headers["openai-organization"] == "org-test"
    assert not [h for h in headers if h.startswith("x-warden-")], headers
    # Every SDK header (x-stainless-*, user-agent, ...) arrives as the SDK sent it.
    sent = capture.last_headers
    for name in ("authorization", "user-agent", "x-stainless-lang", "x-stainless-package-version"):
        if name in sent:
            assert headers.get(name) == sent[name], name
    assert seen["body"]["model"] == MODEL
    assert seen["body"]["messages"] == USER


def test_request_body_reaches_upstream_unchanged(client):
    seen = echo(
        client,
        temperature=0.25,
        max_tokens=77,
        tools=TOOLS,
        extra_body={"vendor_extension": {"keep": ["me", 1, None]}},
    )
    body = seen["body"]
    assert body["temperature"] == 0.25
    assert body["max_tokens"] == 77
    assert body["tools"] == TOOLS
    assert body["vendor_extension"] == {"keep": ["me", 1, None]}


# --- hygiene ----------------------------------------------------------------------------------


def test_client_credentials_never_reach_the_gateway_log(warden):
    # Runs last in this file: by now every kind of request above has been logged.
    log = warden.gateway_log()
    assert "exchange" in log, "the gateway logs one line per exchange"
    for secret in [KEY]:
        assert secret not in log


def test_receipts_from_sdk_calls_verify(client, warden):
    """A buffered call's receipt is in its headers; a stream's is an SSE comment the SDK skips
    while the content still arrives intact. Both verify against the ledger."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers=scenario(text="receipted"),
    )
    assert raw.parse().choices[0].message.content == "receipted"
    receipt = raw.headers["x-warden-receipt"]
    assert int(raw.headers["x-warden-entry"]) >= 0
    done = warden.verify_receipt(receipt)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"entry {raw.headers['x-warden-entry']} is in the log" in done.stdout

    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_headers=scenario(text="streamed and receipted"),
    ) as resp:
        lines = list(resp.iter_lines())
    comments = [l for l in lines if l.startswith(": warden-receipt ")]
    assert len(comments) == 1, lines
    done_at = lines.index("data: [DONE]")
    assert lines.index(comments[0]) < done_at
    check = warden.verify_receipt(comments[0].removeprefix(": warden-receipt "))
    assert check.returncode == 0, check.stdout + check.stderr

    # The SDK's own stream parser skips the comment and sees the whole content.
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_headers=scenario(text="still intact"),
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "still intact"
