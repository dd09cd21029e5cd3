"""The official Google Gen AI SDK (google-genai), pointed at Warden by base URL only, works
unchanged under its default API version and under explicit `v1beta` and `v1`."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from google import genai
from google.genai import errors, types

from conftest import ECHO_CONFIG, assert_transport_error, closed_port_url, scenario, start_gateway

MODEL = "gemini-2.5-flash"
KEY = "AIza-test-gemini-client-key-0123456789"
PROMPT = "Say something."

TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather in a city.",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        ),
        types.FunctionDeclaration(
            name="lookup_order",
            description="Find an order.",
            parameters_json_schema={"type": "object", "properties": {"id": {"type": "integer"}}},
        ),
    ]
)
TOOL_CALLS = [
    {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}},
    {"name": "lookup_order", "arguments": {"id": 1234, "filters": {"status": ["open", "held"], "gift": False, "note": None}}},
]
EXPECTED_CALLS = [(t["name"], t["arguments"]) for t in TOOL_CALLS]

# None is the SDK's own default (v1 in current releases, v1beta in older ones).
API_VERSIONS = [None, "v1beta", "v1"]


def make_client(base_url: str, api_version: str | None = None, capture=None) -> genai.Client:
    client_args = {"event_hooks": {"request": [capture]}} if capture else None
    return genai.Client(
        api_key=KEY,
        http_options=types.HttpOptions(
            base_url=base_url,
            api_version=api_version,
            timeout=30_000,
            retry_options=types.HttpRetryOptions(attempts=1),
            client_args=client_args,
        ),
    )


@pytest.fixture(params=API_VERSIONS, ids=lambda v: v or "default")
def api_version(request):
    return request.param


@pytest.fixture
def client(warden, capture, api_version):
    c = make_client(warden.gateway, api_version, capture)
    yield c
    c.close()


def config(directive: dict | None = None, **kwargs) -> types.GenerateContentConfig:
    if directive is not None:
        kwargs["http_options"] = types.HttpOptions(headers=scenario(**directive))
    return types.GenerateContentConfig(**kwargs)


def calls_of(function_calls) -> list[tuple[str, dict]]:
    return [(fc.name, fc.args) for fc in function_calls or []]


def assert_version(capture, api_version):
    path = urlsplit(str(capture.requests[-1].url)).path
    if api_version:
        assert path.startswith(f"/{api_version}/models/"), path


# --- generateContent ------------------------------------------------------------------------


def test_generate_content_text_and_usage(client, capture, api_version):
    text = "Gemini through Warden. Ünïcödé ✓ 🌍"
    resp = client.models.generate_content(
        model=MODEL, contents=PROMPT, config=config({"text": text, "usage": {"input": 14, "output": 6}})
    )
    assert_version(capture, api_version)
    assert resp.text == text
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert resp.candidates[0].content.role == "model"
    usage = resp.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (14, 6, 20)


def test_generate_content_default_usage_is_counted(client):
    resp = client.models.generate_content(model=MODEL, contents=PROMPT, config=config({"words": 10}))
    assert len(resp.text.split()) == 10
    assert resp.usage_metadata.prompt_token_count > 0
    assert resp.usage_metadata.candidates_token_count > 0


def test_directive_in_prompt_text(client):
    resp = client.models.generate_content(model=MODEL, contents='Hi [mock:{"text":"from the part"}]')
    assert resp.text == "from the part"


def test_stream_generate_content_text(client, capture, api_version):
    text = "Streaming Gemini chunks through the gateway: ünïcödé ✓ 🌍 done."
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents=PROMPT, config=config({"text": text, "chunks": 6, "usage": {"input": 2, "output": 11}})
        )
    )
    assert_version(capture, api_version)
    assert "alt=sse" in str(capture.requests[-1].url)
    assert len(chunks) > 1
    assert "".join(c.text or "" for c in chunks) == text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    usage = [c.usage_metadata for c in chunks if c.usage_metadata and c.usage_metadata.candidates_token_count]
    assert usage and usage[-1].candidates_token_count == 11


def test_function_calls_buffered(client):
    resp = client.models.generate_content(
        model=MODEL,
        contents="Weather and order?",
        config=config({"tool_calls": TOOL_CALLS}, tools=[TOOL]),
    )
    assert calls_of(resp.function_calls) == EXPECTED_CALLS


def test_function_calls_streamed(client):
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL,
            contents="Weather and order?",
            config=config({"tool_calls": TOOL_CALLS, "text": "Calling tools."}, tools=[TOOL]),
        )
    )
    calls = [call for c in chunks for call in calls_of(c.function_calls)]
    assert calls == EXPECTED_CALLS
    assert "".join(c.text or "" for c in chunks) == "Calling tools."


def test_thought_parts(client):
    resp = client.models.generate_content(
        model=MODEL,
        contents="What is six times seven?",
        config=config(
            {"text": "42", "reasoning": "Six times seven is forty-two."},
            thinking_config=types.ThinkingConfig(include_thoughts=True),
        ),
    )
    parts = resp.candidates[0].content.parts
    thoughts = [p.text for p in parts if p.thought]
    answers = [p.text for p in parts if not p.thought]
    assert thoughts == ["Six times seven is forty-two."]
    assert "".join(answers) == "42"
    assert resp.text == "42", "the SDK leaves thought parts out of .text"


def test_thought_parts_streamed(client):
    thoughts, answers = [], []
    for chunk in client.models.generate_content_stream(
        model=MODEL,
        contents="What is six times seven?",
        config=config(
            {"text": "It is 42.", "reasoning": "Multiply six by seven."},
            thinking_config=types.ThinkingConfig(include_thoughts=True),
        ),
    ):
        for cand in chunk.candidates or []:
            for p in (cand.content.parts if cand.content else None) or []:
                (thoughts if p.thought else answers).append(p.text or "")
    assert "".join(thoughts) == "Multiply six by seven."
    assert "".join(answers) == "It is 42."


def test_count_tokens(client):
    resp = client.models.count_tokens(model=MODEL, contents=PROMPT)
    assert resp.total_tokens > 0


def test_embed_content(client):
    resp = client.models.embed_content(model="text-embedding-004", contents=["alpha", "beta", "gamma"])
    assert len(resp.embeddings) == 3
    dims = {len(e.values) for e in resp.embeddings}
    assert len(dims) == 1 and dims.pop() > 0


def test_models_list_and_get(client):
    models = list(client.models.list())
    assert models and all(m.name for m in models)
    one = client.models.get(model=models[0].name)
    assert one.name == models[0].name


# --- errors -----------------------------------------------------------------------------------


def test_upstream_429_is_client_error(client):
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=MODEL, contents=PROMPT, config=config({"status": 429}))
    err = info.value
    assert err.code == 429
    assert err.status == "RESOURCE_EXHAUSTED"
    assert err.response.headers.get("retry-after") == "1"


def test_upstream_429_on_stream(client):
    with pytest.raises(errors.ClientError) as info:
        list(client.models.generate_content_stream(model=MODEL, contents=PROMPT, config=config({"status": 429})))
    assert info.value.code == 429


def test_upstream_500_is_server_error(client):
    with pytest.raises(errors.ServerError) as info:
        client.models.generate_content(model=MODEL, contents=PROMPT, config=config({"status": 500}))
    assert info.value.code == 500


def test_upstream_503_is_server_error(client):
    with pytest.raises(errors.ServerError) as info:
        client.models.generate_content(model=MODEL, contents=PROMPT, config=config({"status": 503}))
    assert info.value.code == 503
    assert info.value.status == "UNAVAILABLE"


def test_unknown_route_is_refused_by_warden(client, warden):
    # A model name with a slash is no Gemini route: the SDK builds the path, Warden refuses it.
    before = warden.mock_stats()["requests"]
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="not/a-model", contents=PROMPT)
    err = info.value
    assert err.code == 404
    assert err.status == "NOT_FOUND"
    assert "Warden" in err.message and "Supported routes" in err.message, err.message
    assert warden.mock_stats()["requests"] == before


def test_unreachable_upstream_is_502_in_gemini_shape(dead_gateway):
    c = make_client(dead_gateway)
    try:
        with pytest.raises(errors.ServerError) as info:
            c.models.generate_content(model=MODEL, contents=PROMPT)
    finally:
        c.close()
    err = info.value
    assert err.code == 502
    assert err.status == "UNAVAILABLE"
    assert "upstream" in err.message and "gemini" in err.message, err.message


def test_stream_broken_upstream_is_an_error_not_a_clean_end(client):
    with pytest.raises(Exception) as info:
        list(
            client.models.generate_content_stream(
                model=MODEL, contents=PROMPT, config=config({"words": 40, "break_after": 3})
            )
        )
    assert_transport_error(info.value)


def test_client_disconnect_cancels_the_upstream_stream(client, warden):
    before = warden.mock_stats()
    stream = client.models.generate_content_stream(
        model=MODEL, contents=PROMPT, config=config({"words": 200, "chunk_delay_ms": 20})
    )
    first = next(stream)
    assert first.text
    stream.close()
    stats = warden.wait_for_stats(
        lambda s: s["streams_cancelled"] > before["streams_cancelled"], timeout=15
    )
    assert stats["streams_cancelled"] == before["streams_cancelled"] + 1, stats
    assert stats["streams_completed"] == before["streams_completed"], stats


# --- routing ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gemini_only_gateway(warden, workdir):
    """A gateway whose Gemini upstream is the mock and every other provider's is dead, so a
    Gemini request routed to the OpenAI upstream fails instead of passing by luck."""
    dead = closed_port_url()
    gw = start_gateway(
        workdir,
        {"openai": dead, "anthropic": dead, "ollama": dead, "gemini": warden.mock},
        name="gemini-only-gateway",
        config=ECHO_CONFIG,
    )
    yield gw.url
    gw.stop()


@pytest.mark.parametrize("version", API_VERSIONS, ids=lambda v: v or "default")
def test_generate_content_reaches_the_gemini_upstream(gemini_only_gateway, version):
    c = make_client(gemini_only_gateway, version)
    try:
        resp = c.models.generate_content(model=MODEL, contents=PROMPT, config=config({"text": "routed"}))
        assert resp.text == "routed"
        chunks = c.models.generate_content_stream(model=MODEL, contents=PROMPT, config=config({"text": "streamed"}))
        assert "".join(ch.text or "" for ch in chunks) == "streamed"
        assert c.models.count_tokens(model=MODEL, contents=PROMPT).total_tokens > 0
    finally:
        c.close()


@pytest.mark.parametrize("version", API_VERSIONS, ids=lambda v: v or "default")
def test_model_listing_reaches_the_gemini_upstream(gemini_only_gateway, version):
    # The model listing has no colon action; under /v1 its paths are OpenAI's `GET /v1/models`
    # and `GET /v1/models/{id}`, told apart only by the Gemini credentials the request carries
    # (`x-goog-api-key`). DESIGN.md: both prefixes route to Gemini.
    c = make_client(gemini_only_gateway, version)
    try:
        models = list(c.models.list())
        assert models and all(m.name for m in models)
        assert c.models.get(model=MODEL).name
    finally:
        c.close()


# --- what reaches the upstream ----------------------------------------------------------------


def echo(client, **extra_headers) -> dict:
    resp = client.models.generate_content(
        model=MODEL,
        contents=PROMPT,
        config=types.GenerateContentConfig(
            temperature=0.3,
            http_options=types.HttpOptions(headers={**scenario(echo=True), **extra_headers}),
        ),
    )
    return json.loads(resp.text)


def test_api_key_and_path_reach_upstream_untouched(client, capture, api_version):
    seen = echo(
        client,
        **{"x-warden-session": "sess-1", "x-warden-agent": "agent-1", "x-warden-tenant": "tenant-1"},
    )
    sent = capture.requests[-1]
    assert seen["method"] == "POST"
    assert seen["path"] == urlsplit(str(sent.url)).path
    assert seen["path"].endswith(f"/models/{MODEL}:generateContent")
    if api_version:
        assert seen["path"] == f"/{api_version}/models/{MODEL}:generateContent"
    headers = seen["headers"]
    assert headers["x-goog-api-key"] == KEY
    assert headers["x-goog-api-client"] == sent.headers["x-goog-api-client"]
    assert not [h for h in headers if h.startswith("x-warden-")], headers
    body = seen["body"]
    assert body["contents"][0]["parts"][0]["text"] == PROMPT
    assert body["generationConfig"]["temperature"] == 0.3


def test_stream_query_reaches_upstream(client):
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents=PROMPT, config=config({"echo": True})
        )
    )
    seen = json.loads("".join(c.text or "" for c in chunks))
    assert seen["query"] == "alt=sse"
    assert seen["path"].endswith(f"/models/{MODEL}:streamGenerateContent")
    assert seen["headers"]["x-goog-api-key"] == KEY


# --- hygiene ----------------------------------------------------------------------------------


def test_client_credentials_never_reach_the_gateway_log(warden):
    # Runs last in this file: by now every kind of request above has been logged.
    log = warden.gateway_log()
    assert "exchange" in log, "the gateway logs one line per exchange"
    for secret in [KEY]:
        assert secret not in log
