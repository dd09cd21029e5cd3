"""Content protection seen through the official SDKs: secrets blocked, PII redacted, tokenized
values restored in buffered and streamed answers (placeholders split across chunks), secrets in
streamed answers caught across frames, blocks mid-stream, and no planted value in the ledger.

Each test starts its own gateway (own data dir and `[protect]` config) in front of the module's
mock provider. Values are synthetic.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from conftest import PROVIDERS, _child_env, scenario, start_gateway, warden_bin

EMAIL = "jane.doe@example.org"
GITHUB = "ghp_" + "R4nd0mT0k3nV4lu3F0rT3st1ngOnlyAbC9xy"  # 36 chars after ghp_
AWS = "AKIA" + "Z7QX3MPLE4R9TK2W"
CARD = "4539 1488 0343 6467"  # Luhn-valid Visa, not a well-known test number

_N = [0]


class Gw:
    def __init__(self, workdir: Path, mock, config: str | None):
        _N[0] += 1
        self.name = f"prot{_N[0]}"
        self.data_dir = workdir / f"{self.name}-data"
        self.proc = start_gateway(
            workdir, {p: mock.url for p in PROVIDERS}, name=self.name, config=config
        )
        self.url = self.proc.url

    def openai(self, **headers) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/v1", api_key="sk-client", max_retries=0, default_headers=headers
        )

    def anthropic(self, **headers) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.url, api_key="sk-ant-client", max_retries=0, default_headers=headers
        )

    def gemini(self, **headers) -> genai.Client:
        return genai.Client(
            api_key="gm-client",
            http_options=genai_types.HttpOptions(
                base_url=self.url,
                headers=headers,
                retry_options=genai_types.HttpRetryOptions(attempts=1),
            ),
        )

    def ledger_bytes(self) -> bytes:
        out = b""
        for p in sorted((self.data_dir / "ledger").rglob("*")):
            if p.is_file():
                out += p.read_bytes()
        return out

    def ledger_entries(self) -> list[dict]:
        r = subprocess.run(
            [warden_bin(), "audit", "export", "--format", "json", "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=_child_env(),
        )
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def stop(self):
        self.proc.stop()


@pytest.fixture
def gw_factory(workdir, mock):
    started = []

    def make(config: str | None = None) -> Gw:
        g = Gw(workdir, mock, config)
        started.append(g)
        return g

    yield make
    for g in started:
        g.stop()


def assert_not_in_ledger(gw: Gw, *values: str) -> None:
    raw = gw.ledger_bytes()
    assert raw, "the ledger is empty"
    for v in values:
        assert v.encode() not in raw, f"{v!r} reached the ledger"


def test_secret_in_request_is_blocked_by_default(gw_factory, mock):
    gw = gw_factory()
    client = gw.openai()
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"deploy with aws key {AWS} please"}],
        )
    msg = str(exc.value)
    assert "aws_access_key_id" in msg and exc.value.code == "content_blocked", msg
    assert AWS not in msg
    # Anthropic's SDK gets its own error class, and a GitHub token in a tool result is caught.
    with pytest.raises(anthropic.BadRequestError) as exc:
        gw.anthropic().messages.create(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=[
                {"role": "user", "content": "read the config"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": ".env"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": f"GITHUB_TOKEN={GITHUB}"}]},
            ],
        )
    assert "github_token" in str(exc.value)
    entries = [e for e in gw.ledger_entries() if e.get("kind") == "exchange"]
    blocked = [e for e in entries if e.get("outcome", {}).get("code") == "content_blocked"]
    assert len(blocked) == 2, entries
    assert any(f["type"] == "aws_access_key_id" and f["action"] == "block" for f in blocked[0]["protect"]["findings"])
    assert_not_in_ledger(gw, AWS, GITHUB)
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{gw.url}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert 'warden_protect_findings_total{direction="request",type="aws_access_key_id",action="block"} 1' in metrics, metrics


def test_pii_redacted_before_the_model_sees_it(gw_factory):
    gw = gw_factory('[protect]\npresets = ["secrets-block", "pii-redact"]\n[audit]\ncapture = "full"\n')
    r = gw.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"email {EMAIL} and card {CARD}"}],
        extra_headers=scenario(echo=True),
    )
    seen = json.loads(r.choices[0].message.content)["body"]["messages"][0]["content"]
    assert EMAIL not in seen and "[EMAIL]" in seen, seen
    assert "[CREDIT_CARD]" in seen, seen
    # Full capture records what was forwarded: the redacted text.
    assert_not_in_ledger(gw, EMAIL, CARD)


def test_tokenize_round_trip_buffered_and_streamed(gw_factory):
    gw = gw_factory('[protect.actions]\nemail = "tokenize"\n[audit]\ncapture = "full"\n')
    client = gw.openai(**{"x-warden-session": "s-tok"})
    # Buffered: the mock echoes what it received, and the gateway restores the placeholder.
    r = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"write to {EMAIL}"}],
        extra_headers=scenario(echo=True),
    )
    echoed = json.loads(r.choices[0].message.content)["body"]["messages"][0]["content"]
    assert echoed == f"write to {EMAIL}", echoed
    # What went upstream (recorded with full capture) held the placeholder, not the address.
    entries = [e for e in gw.ledger_entries() if e.get("kind") == "exchange"]
    assert "\u27e6EMAIL_1\u27e7" in json.dumps(entries[-1]["content"], ensure_ascii=False)
    assert_not_in_ledger(gw, EMAIL)

    # Streamed, the placeholder split across many small chunks, still restored; the same
    # session gets the same placeholder on the next turn.
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"again {EMAIL}"}],
        stream=True,
        extra_headers=scenario(text="Sure, I will write to \u27e6EMAIL_1\u27e7 today.", chunks=40),
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"Sure, I will write to {EMAIL} today.", text

    # Anthropic streams restore too.
    claude = gw.anthropic(**{"x-warden-session": "s-tok"})
    with claude.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": f"mail {EMAIL}"}],
        extra_headers=scenario(text="Noted \u27e6EMAIL_1\u27e7.", chunks=12),
    ) as s:
        out = "".join(s.text_stream)
    assert out == f"Noted {EMAIL}.", out

    # Another session cannot get this session's value back.
    r = gw.openai(**{"x-warden-session": "other"}).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hello"}],
        extra_headers=scenario(text="leak \u27e6EMAIL_1\u27e7?"),
    )
    assert r.choices[0].message.content == "leak \u27e6EMAIL_1\u27e7?"
    assert_not_in_ledger(gw, EMAIL)


@pytest.mark.parametrize("chunks", [7, 31, 97])
def test_streamed_secret_split_across_frames_is_redacted(gw_factory, chunks):
    gw = gw_factory()
    stream = gw.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "print the token"}],
        stream=True,
        extra_headers=scenario(text=f"The token is {GITHUB} and that is all.", chunks=chunks),
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert GITHUB not in text
    assert text == "The token is [GITHUB_TOKEN] and that is all.", text
    entries = [e for e in gw.ledger_entries() if e.get("kind") == "exchange"]
    rows = entries[-1]["protect"]["findings"]
    assert any(r["type"] == "github_token" and r["direction"] == "response" and r["action"] == "redact" for r in rows), rows
    assert_not_in_ledger(gw, GITHUB)


def test_gemini_stream_redacts_split_secret(gw_factory):
    gw = gw_factory()
    client = gw.gemini()
    chunks = client.models.generate_content_stream(
        model="gemini-2.5-flash",
        contents="say it",
        config=genai_types.GenerateContentConfig(http_options=genai_types.HttpOptions(headers=scenario(text=f"key: {GITHUB} end", chunks=9))),
    )
    text = "".join(c.text or "" for c in chunks)
    assert GITHUB not in text and "[GITHUB_TOKEN]" in text, text


def test_block_in_a_stream_ends_it_with_an_error(gw_factory):
    gw = gw_factory('[protect.response]\nemail = "block"\n')
    stream = gw.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "contact?"}],
        stream=True,
        extra_headers=scenario(text=f"Write to {EMAIL} for details, thanks.", chunks=10),
    )
    got = ""
    with pytest.raises(openai.APIError) as exc:
        for c in stream:
            if c.choices:
                got += c.choices[0].delta.content or ""
    assert EMAIL not in got
    assert "email" in str(exc.value)
    # A buffered answer with the same value is withheld.
    with pytest.raises(openai.BadRequestError):
        gw.openai().chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "contact?"}],
            extra_headers=scenario(text=f"Write to {EMAIL}."),
        )
    assert_not_in_ledger(gw, EMAIL)


def test_report_mode_changes_nothing_but_records(gw_factory):
    gw = gw_factory('[protect]\nmode = "report"\n')
    r = gw.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"key {AWS}"}],
        extra_headers=scenario(echo=True),
    )
    seen = json.loads(r.choices[0].message.content)["body"]["messages"][0]["content"]
    assert AWS in seen
    entries = [e for e in gw.ledger_entries() if e.get("kind") == "exchange"]
    rows = entries[-1]["protect"]["findings"]
    assert any(r["type"] == "aws_access_key_id" and r["would"] == "block" for r in rows), rows
    # The default capture is redacted: even in report mode the ledger keeps no value.
    assert_not_in_ledger(gw, AWS)
