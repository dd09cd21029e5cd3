"""Fixtures for the official-SDK compatibility tests.

Each test session starts the built-in mock provider (`warden mock-upstream`) and a gateway
(`warden serve`, no config file) pointed at it for every provider, on free loopback ports with a
temporary data dir, and stops both at the end. The binary comes from `WARDEN_BIN` (required;
`cargo test -p warden --test sdk` sets it).

Run by hand:

    cargo build -p warden
    WARDEN_BIN=target/debug/warden "$(scripts/sdk-venv.sh | tail -1)" -m pytest tests/sdk -q
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The SDKs read these from the environment; the tests must see exactly what they configure.
_SCRUBBED_PREFIXES = ("OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "WARDEN_")
_KEPT = {"WARDEN_BIN"}

START_TIMEOUT_S = 20.0

# Config for gateways whose tests read what the upstream received through the mock's echo: the
# echo sends request headers (credentials included) back as the model's answer, and response
# protection rightly redacts `"x-api-key": "..."` as a generic secret. Every other default stays,
# so streams still pass through the content-protection rewriter.
ECHO_CONFIG = """
[protect.response]
generic_secret = "log"
"""
STOP_TIMEOUT_S = 10.0

# Loopback traffic must never go through a proxy from the environment.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
for _name in list(os.environ):
    if _name.startswith(_SCRUBBED_PREFIXES) and _name not in _KEPT:
        del os.environ[_name]
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_name, None)

# Every child started in this session, for failure reports and the final cleanup.
_RUNNING: list["Process"] = []

_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def warden_bin() -> str:
    path = os.environ.get("WARDEN_BIN")
    if not path:
        pytest.exit(
            "WARDEN_BIN is not set: point it at the warden binary (cargo build -p warden; "
            "WARDEN_BIN=target/debug/warden)",
            returncode=2,
        )
    if not os.access(path, os.X_OK):
        pytest.exit(f"WARDEN_BIN={path} is not an executable file", returncode=2)
    return path


def _die_with_parent() -> None:
    """Runs in the child before exec: on Linux, get SIGTERM when pytest dies, so a killed test
    run (e.g. the Rust harness's timeout) leaves no gateway or mock behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def _child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SCRUBBED_PREFIXES) or k in _KEPT
    }
    env["NO_COLOR"] = "1"  # plain logs in the failure report
    return env


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


@dataclass
class Process:
    """A child process with its log files."""

    name: str
    proc: subprocess.Popen
    stdout: Path
    stderr: Path
    url: str = ""

    def log(self, lines: int = 60) -> str:
        return _tail(self.stderr, lines)

    def stop(self) -> None:
        _stop(self.proc)


def _wait_for(what: str, proc: Process, check, timeout: float = START_TIMEOUT_S):
    """Polls `check()` until it returns a truthy value, the process dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if proc.proc.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited with {proc.proc.returncode} before {what}:\n{proc.log()}"
            )
        if time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"{proc.name}: no {what} within {timeout}s:\n{proc.log()}")
        time.sleep(0.05)


def start_mock(workdir: Path) -> Process:
    """Starts `warden mock-upstream` on a free port and returns it with its base URL."""
    out, err = workdir / "mock.stdout", workdir / "mock.stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(
            [warden_bin(), "mock-upstream", "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=o,
            stderr=e,
            cwd=workdir,
            env=_child_env(),
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    p = Process("mock upstream", proc, out, err)
    _RUNNING.append(p)
    prefix = "mock upstream listening on "

    def listening():
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line[len(prefix):].strip().rstrip("/")
        return None

    p.url = _wait_for("'mock upstream listening on' line", p, listening)
    return p


def start_gateway(
    workdir: Path,
    upstreams: dict[str, str],
    name: str = "gateway",
    config: str | None = None,
    env: dict[str, str] | None = None,
    data_dir: Path | None = None,
) -> Process:
    """Starts `warden serve` on a free port with a fresh data dir under `workdir` (or
    `data_dir`, reused as is), optionally with a config file's text and extra environment."""
    if data_dir is None:
        data_dir = workdir / f"{name}-data"
        data_dir.mkdir()
    else:
        (data_dir / "gateway.json").unlink(missing_ok=True)
    out, err = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    args = [warden_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)]
    if config is not None:
        cfg = workdir / f"{name}.toml"
        cfg.write_text(config)
        args += ["--config", str(cfg)]
    for provider, url in upstreams.items():
        args += ["--upstream", f"{provider}={url}"]
    child_env = _child_env()
    child_env.update(env or {})
    with open(out, "wb") as o, open(err, "wb") as e:
        # cwd is the scratch dir, so no ./warden.toml from the repo or the user is picked up.
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=o,
            stderr=e,
            cwd=workdir,
            env=child_env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    p = Process(name, proc, out, err)
    _RUNNING.append(p)
    info_path = data_dir / "gateway.json"

    def ready():
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError):
            return None
        return f"http://{info['listen']}"

    p.url = _wait_for(f"{info_path}", p, ready)
    return p


PROVIDERS = ("openai", "anthropic", "gemini", "ollama")


@dataclass
class Warden:
    """A running mock provider and a gateway in front of it."""

    gateway: str
    mock: str
    processes: list[Process] = field(default_factory=list)
    data_dir: Path | None = None

    def verify_receipt(self, receipt: str) -> subprocess.CompletedProcess:
        """Runs `warden audit verify-receipt` on a receipt (base64 or text) against this
        gateway's ledger, the way a client holding the receipt later would."""
        path = self.data_dir / f"receipt-{time.monotonic_ns()}"
        path.write_text(receipt)
        return subprocess.run(
            [warden_bin(), "audit", "verify-receipt", str(path), "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=_child_env(),
        )

    def mock_stats(self) -> dict:
        """The mock's counters: requests, streams_started, streams_completed, streams_cancelled."""
        with _NO_PROXY_OPENER.open(f"{self.mock}/mock/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def wait_for_stats(self, predicate, timeout: float = 10.0) -> dict:
        """Polls the mock's counters until `predicate(stats)` holds (bounded); returns the last."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.mock_stats()
            if predicate(stats) or time.monotonic() > deadline:
                return stats
            time.sleep(0.05)

    def gateway_log(self) -> str:
        """Everything the main gateway has logged so far."""
        return self.processes[0].stderr.read_text(errors="replace")

    def logs(self, lines: int = 60) -> str:
        return "\n\n".join(f"--- {p.name} stderr (tail) ---\n{p.log(lines)}" for p in self.processes)


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="warden-sdk-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def warden(workdir) -> Warden:
    """The mock upstream and a gateway routing every provider to it."""
    mock = start_mock(workdir)
    try:
        gw = start_gateway(workdir, {p: mock.url for p in PROVIDERS}, config=ECHO_CONFIG)
    except Exception:
        mock.stop()
        raise
    yield Warden(gateway=gw.url, mock=mock.url, processes=[gw, mock], data_dir=workdir / "gateway-data")
    gw.stop()
    mock.stop()


@pytest.fixture(scope="module")
def mock(workdir):
    """A mock upstream of the test module's own, for modules that start their own gateways
    (its `/mock/stats` counters are then theirs alone)."""
    m = start_mock(workdir)
    yield m
    m.stop()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (a port bound and released): connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="session")
def dead_gateway(workdir) -> str:
    """A gateway whose every upstream is a closed loopback port: forwards fail with 502."""
    dead = closed_port_url()
    gw = start_gateway(workdir, {p: dead for p in PROVIDERS}, name="dead-gateway")
    yield gw.url
    gw.stop()


@pytest.fixture
def capture():
    """An httpx event hook recording the requests an SDK sends (to compare with the echo)."""

    class Capture:
        def __init__(self):
            self.requests = []

        def __call__(self, request):
            self.requests.append(request)

        @property
        def last_headers(self) -> dict[str, str]:
            return {k.lower(): v for k, v in self.requests[-1].headers.items()}

    return Capture()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of the gateway's and the mock's stderr to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _RUNNING:
        for p in _RUNNING:
            report.sections.append((f"{p.name} stderr (tail)", p.log(40)))


def pytest_sessionfinish(session, exitstatus):
    # Belt and braces: never leave a child behind, even if a fixture's teardown did not run.
    for p in _RUNNING:
        p.stop()


def scenario(**directive) -> dict[str, str]:
    """The `x-mock-scenario` header asking the mock for `directive`."""
    return {"x-mock-scenario": json.dumps(directive, separators=(",", ":"))}


def assert_transport_error(exc: BaseException) -> None:
    """Asserts `exc` is a connection-level failure (the body broke off), as the SDK reports a
    truncated stream: httpx's RemoteProtocolError or the SDK's own connection error."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    assert names & {"TransportError", "ProtocolError", "APIConnectionError"}, repr(exc)
