"""Identity, policy, rate limits, budgets and the kill switch, seen through the official SDKs.

Each test starts its own gateway (its own data dir, config and provider keys in the environment)
in front of the session's mock provider, and drives it with the openai / anthropic SDKs the way
an agent would: the SDK only gets a base URL and a Warden virtual key. Operator actions go
through the `warden` CLI, which finds the running gateway through its data dir.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request

import anthropic
import openai
import pytest

from conftest import (
    ECHO_CONFIG,
    PROVIDERS,
    _NO_PROXY_OPENER,
    _child_env,
    scenario,
    start_gateway,
    warden_bin,
)

PROVIDER_KEYS = {
    "OPENAI_API_KEY": "sk-provider-openai-0123456789",
    "ANTHROPIC_API_KEY": "sk-ant-provider-0123456789",
    "GEMINI_API_KEY": "gm-provider-0123456789",
}

# A model with a price high enough that a few mock exchanges cost real money:
# $1000 per 1M tokens = $0.001 per token.
PRICEY = """
[[pricing.models]]
provider = "openai"
model = "pricey-1"
input_per_mtok = 1000
output_per_mtok = 1000
"""


_N = [0]


class Gw:
    def __init__(self, workdir, mock, config=None, data_dir=None):
        _N[0] += 1
        self.name = f"gov{_N[0]}"
        self.workdir = workdir
        self.mock = mock
        self.config = config
        self.proc = start_gateway(
            workdir,
            {p: mock.url for p in PROVIDERS},
            name=self.name,
            config=config if config is not None else ECHO_CONFIG,
            env=PROVIDER_KEYS,
            data_dir=data_dir,
        )
        self.url = self.proc.url
        self.data_dir = data_dir or workdir / f"{self.name}-data"

    def cli(self, *args, check=True) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [warden_bin(), *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=_child_env(),
            cwd=self.workdir,
        )
        if check:
            assert r.returncode == 0, f"warden {' '.join(args)} failed: {r.stdout}\n{r.stderr}\n{self.proc.log()}"
        return r

    def create_key(self, *args) -> str:
        out = self.cli("keys", "create", *args).stdout.strip().splitlines()
        assert out and out[0].startswith("wk_"), out
        return out[0]

    def openai(self, key: str, **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, **kw)

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json").stdout)

    def metrics(self) -> str:
        with _NO_PROXY_OPENER.open(f"{self.url}/metrics", timeout=10) as r:
            return r.read().decode()

    def stop(self):
        self.proc.stop()


@pytest.fixture
def gw_factory(workdir, mock):
    started = []

    def make(config=None, data_dir=None):
        g = Gw(workdir, mock, config, data_dir)
        started.append(g)
        return g

    yield make
    for g in started:
        g.stop()


def echo(client: openai.OpenAI, model="gpt-4o-mini") -> dict:
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers=scenario(echo=True),
    )
    return json.loads(r.choices[0].message.content)


def test_virtual_key_is_swapped_for_the_provider_key(gw_factory):
    gw = gw_factory()
    key = gw.create_key("--tenant", "acme", "--agent", "billing-bot")
    seen = echo(gw.openai(key))
    assert seen["headers"]["authorization"] == f"Bearer {PROVIDER_KEYS['OPENAI_API_KEY']}"
    assert "wk_" not in json.dumps(seen), "the virtual key must never reach the provider"

    # Anthropic: the SDK's x-api-key carries the virtual key; the provider gets its own.
    a = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    msg = a.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers=scenario(echo=True),
    )
    seen = json.loads(msg.content[0].text)
    assert seen["headers"]["x-api-key"] == PROVIDER_KEYS["ANTHROPIC_API_KEY"]
    assert "wk_" not in json.dumps(seen)

    # The key fixes tenant and agent in the ledger, and its id (never the key) is recorded.
    entries = [json.loads(l) for l in gw.cli("audit", "export", "--format", "json").stdout.splitlines() if l.strip()]
    exchanges = [e for e in entries if e.get("kind") == "exchange"]
    assert exchanges and all(e["tenant"] == "acme" and e["agent"] == "billing-bot" for e in exchanges)
    assert all(e["key"].startswith("key_") for e in exchanges)
    for path in (gw.data_dir / "ledger").rglob("*"):
        if path.is_file() and path.suffix != ".key":
            assert key.encode() not in path.read_bytes(), f"virtual key found in {path}"


def test_invalid_revoked_and_provider_keys_are_refused(gw_factory):
    gw = gw_factory()
    key = gw.create_key("--agent", "a1")
    assert echo(gw.openai(key))["method"] == "POST"

    with pytest.raises(openai.AuthenticationError) as e:
        echo(gw.openai("wk_not-a-real-key"))
    assert e.value.status_code == 401 and "not valid" in str(e.value)

    with pytest.raises(openai.AuthenticationError) as e:
        echo(gw.openai("sk-a-provider-key"))
    assert "virtual key" in str(e.value)

    key_id = json.loads(gw.cli("keys", "list", "--json").stdout)[0]["id"]
    listed = gw.cli("keys", "list").stdout
    assert key_id in listed and key not in listed
    gw.cli("keys", "revoke", key_id)
    with pytest.raises(openai.AuthenticationError) as e:
        echo(gw.openai(key))
    assert "revoked" in str(e.value)


def test_deny_rule_names_the_rule_and_reason(gw_factory):
    gw = gw_factory(
        """
[[rules]]
name = "no-big-models"
action = "deny"
reason = "use gpt-4o-mini for batch jobs"
match.model = ["gpt-4o", "o3*"]
"""
    )
    key = gw.create_key("--agent", "batch")
    assert echo(gw.openai(key), model="gpt-4o-mini")["method"] == "POST"
    with pytest.raises(openai.PermissionDeniedError) as e:
        echo(gw.openai(key), model="gpt-4o")
    assert e.value.status_code == 403
    assert "no-big-models" in str(e.value) and "use gpt-4o-mini for batch jobs" in str(e.value)
    assert e.value.body["code"] == "policy_denied"


def test_rate_limit_gives_retry_after(gw_factory):
    gw = gw_factory(
        """
[[rules]]
name = "slow-down"
action = "allow"
[rules.limits]
per = "agent"
rpm = 2
"""
    )
    client = gw.openai(gw.create_key("--agent", "looper"))
    echo(client)
    echo(client)
    with pytest.raises(openai.RateLimitError) as e:
        echo(client)
    assert e.value.status_code == 429
    assert int(e.value.response.headers["retry-after"]) >= 1
    assert e.value.body["code"] == "rate_limited"
    assert "slow-down" in str(e.value)


def spent_micros(gw: Gw, scope: str, subject: str) -> int:
    for row in gw.status()["spend"][f"top_{scope}s"]:
        if row["subject"] == subject:
            return row["spent_micros"]
    return 0


def test_agent_loop_stops_at_its_hard_cap(gw_factory):
    gw = gw_factory(PRICEY)
    key = gw.create_key("--agent", "runaway", "--budget-usd", "0.5")
    client = gw.openai(key)
    refused = None
    for i in range(500):  # a `while True` agent, bounded for the test
        try:
            client.chat.completions.create(
                model="pricey-1",
                max_tokens=40,
                messages=[{"role": "user", "content": "again"}],
                extra_headers=scenario(words=10, usage={"input": 20, "output": 20}),
            )
        except openai.RateLimitError as e:
            refused = e
            break
    assert refused is not None, "the loop never hit its budget"
    assert refused.body["code"] == "budget_exceeded"
    assert "key key_" in str(refused) and "$0.50" in str(refused)
    key_id = json.loads(gw.cli("keys", "list", "--json").stdout)[0]["id"]
    spent = spent_micros(gw, "key", key_id)
    assert 0 < spent <= 500_000, spent
    # Each exchange cost 40 tokens x $0.001 = $0.04: the loop got about 12 in, not 500.
    assert i >= 5


def test_64_parallel_clients_do_not_overspend_a_shared_cap(gw_factory):
    gw = gw_factory(PRICEY)
    key = gw.create_key("--agent", "swarm", "--budget-usd", "1")
    ok, refused, other = [0], [0], []
    lock = threading.Lock()

    def worker():
        client = gw.openai(key)
        for _ in range(40):
            try:
                client.chat.completions.create(
                    model="pricey-1",
                    max_tokens=30,
                    messages=[{"role": "user", "content": "go"}],
                    extra_headers=scenario(words=5, usage={"input": 20, "output": 30}),
                )
                with lock:
                    ok[0] += 1
            except openai.RateLimitError as e:
                with lock:
                    refused[0] += 1
                if e.body.get("code") == "budget_exceeded":
                    return
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    other.append(repr(e))
                return

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not other, other[:3]
    key_id = json.loads(gw.cli("keys", "list", "--json").stdout)[0]["id"]
    spent = spent_micros(gw, "key", key_id)
    print(f"\n64-way overspend test: {ok[0]} allowed, {refused[0]} refused, spent ${spent / 1e6:.6f} of $1.00")
    assert refused[0] >= 1
    assert spent <= 1_000_000, f"overspent: ${spent / 1e6}"
    # Each allowed exchange cost 50 x $0.001 = $0.05.
    assert spent == ok[0] * 50_000


def test_kill_cuts_a_live_stream_and_survives_restart(gw_factory, workdir):
    gw = gw_factory()
    key = gw.create_key("--agent", "streamer")
    client = gw.openai(key)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        stream=True,
        messages=[{"role": "user", "content": "talk"}],
        extra_headers=scenario(words=400, chunk_delay_ms=25),
    )
    it = iter(stream)
    first = next(it)
    assert first.choices[0].delta.content is not None
    t0 = time.monotonic()
    gw.cli("kill", "--agent", "streamer", "--reason", "runaway loop")
    killed_after = time.monotonic() - t0
    with pytest.raises(openai.APIError) as e:
        for _ in it:
            pass
    cut_after = time.monotonic() - t0
    print(f"\nkill: CLI returned after {killed_after * 1000:.1f} ms; stream ended {cut_after * 1000:.1f} ms after the kill began")
    assert "kill switch" in str(e.value) and "runaway loop" in str(e.value)

    with pytest.raises(openai.PermissionDeniedError) as e:
        echo(client)
    assert e.value.body["code"] == "killed"

    # The kill is durable: a restarted gateway on the same data dir still refuses the agent.
    data_dir = gw.data_dir
    gw.stop()
    gw2 = gw_factory(data_dir=data_dir)
    with pytest.raises(openai.PermissionDeniedError):
        echo(gw2.openai(key))
    gw2.cli("unkill", "--agent", "streamer")
    assert echo(gw2.openai(key))["method"] == "POST"

    events = [json.loads(l) for l in gw2.cli("audit", "export", "--format", "json").stdout.splitlines() if l.strip()]
    kinds = [e.get("event") for e in events if e.get("kind") == "event"]
    assert "kill" in kinds and "unkill" in kinds
    kill = next(e for e in events if e.get("event") == "kill")
    assert kill["reason"] == "runaway loop" and kill["actor"].startswith("cli")


def test_metrics_scrape_parses_and_moves(gw_factory):
    gw = gw_factory()

    def requests_total(text: str) -> float:
        total = 0.0
        for line in text.splitlines():
            if line.startswith("warden_requests_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    before = requests_total(gw.metrics())
    client = gw.openai("sk-passthrough-key")  # no virtual keys yet: pass-through
    echo(client)
    echo(client)
    text = gw.metrics()
    assert requests_total(text) == before + 2
    for family in (
        "warden_upstream_latency_seconds",
        "warden_gateway_overhead_seconds",
        "warden_ledger_fsync_seconds",
        "warden_tokens_total",
    ):
        assert family in text, family
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            float(value)  # every sample parses
    assert "session" not in text


def test_streams_are_priced_from_usage_the_client_did_not_ask_for(gw_factory):
    gw = gw_factory(PRICEY)
    client = gw.openai(gw.create_key("--agent", "streamer"))
    chunks = list(
        client.chat.completions.create(
            model="pricey-1",
            stream=True,
            messages=[{"role": "user", "content": "count"}],
            extra_headers=scenario(words=6, usage={"input": 10, "output": 6}),
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # The extra usage chunk Warden asked for is not shown to a client that did not ask.
    assert all(c.choices for c in chunks), [c for c in chunks if not c.choices]
    assert all(c.usage is None for c in chunks)
    entries = [json.loads(l) for l in gw.cli("audit", "export", "--format", "json").stdout.splitlines() if l.strip()]
    done = [e for e in entries if e.get("kind") == "exchange" and e.get("stream")]
    assert done and done[-1]["usage"]["input_tokens"] == 10 and done[-1]["usage"]["output_tokens"] == 6
    # 16 tokens at $0.001 each, from the real usage, not an estimate.
    assert done[-1]["cost"] == {"usd_micros": 16000, "estimated": False}


def test_a_stream_is_cut_when_its_running_cost_would_cross_the_cap(gw_factory):
    gw = gw_factory(PRICEY)
    key = gw.create_key("--agent", "essayist", "--budget-usd", "5")
    client = gw.openai(key)
    # No max_tokens: Warden reserves 4096 output tokens ($4.10 here) and watches the rest.
    stream = client.chat.completions.create(
        model="pricey-1",
        stream=True,
        messages=[{"role": "user", "content": "write a lot"}],
        extra_headers=scenario(words=8000, chunks=400, chunk_delay_ms=2),
    )
    received = []
    with pytest.raises(openai.APIError) as e:
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "budget" in str(e.value) and "stream was stopped" in str(e.value)
    text = "".join(received)
    assert 0 < len(text) < 8000 * 6, "the stream was cut part way"
    key_id = json.loads(gw.cli("keys", "list", "--json").stdout)[0]["id"]
    spent = spent_micros(gw, "key", key_id)
    # At most one chunk (20 words, ~30 tokens = $0.03) past the cap.
    assert 4_000_000 < spent <= 5_050_000, spent
    with pytest.raises(openai.RateLimitError) as e:
        echo(client, model="pricey-1")
    assert e.value.body["code"] == "budget_exceeded"
