#!/usr/bin/env python3
"""Warden's benchmark orchestrator. Entry point: bench/run.sh (builds, then runs this).

Starts `warden mock-upstream` and one `warden serve` per configuration (and, with --peers, the
peer gateways) on loopback, drives them with `warden-loadgen` in paired rounds (direct, then each
gateway, the order rotating each round), and writes a Markdown report of medians to
bench/results/<UTC timestamp>.md. See bench/README.md. Python 3 standard library only.
"""

import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
WARDEN = os.path.join(TARGET, "release", "warden")
LOADGEN = os.path.join(TARGET, "release", "warden-loadgen")
RELAY = os.path.join(TARGET, "release", "warden-relay")
PEERS_DIR = os.path.join(BENCH, ".peers")

ALL_SCENARIOS = ["chat", "chat-stream", "anthropic-stream", "large", "rate"]
ALL_CONFIGS = ["direct", "passthrough", "write", "full"]
EXTRA_CONFIGS = ["no-ledger", "relay"]
PEERS = ["litellm", "llm-leash", "agentreserve"]
BENCH_AGENT = "bench-agent"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Scenarios. Mock directives ride in the last user message (`[mock:{...}]`), not in the
# x-mock-scenario header, so gateways that do not forward unknown headers see the same load.


def large_text(size=100 * 1024):
    words = ("the quick brown fox jumps over the lazy dog while seven wise owls watch "
             "a quiet river bend under pale morning light and distant hills").split()
    out, n, i = [], 0, 0
    while n < size:
        w = words[i % len(words)]
        out.append(w)
        n += len(w) + 1
        i += 1
    return " ".join(out)[:size]


def openai_body(text, stream=False):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    return json.dumps(body)


SCENARIOS = {
    "chat": {
        "label": "OpenAI chat, non-streaming, small body",
        "api": "openai", "stream": False,
        "body": lambda: openai_body("Say hello in five words."),
    },
    "chat-stream": {
        "label": "OpenAI chat, streaming 200 chunks",
        "api": "openai", "stream": True,
        "body": lambda: openai_body('Stream. [mock:{"words":200}]', stream=True),
    },
    "anthropic-stream": {
        "label": "Anthropic messages, streaming 200 chunks",
        "api": "anthropic", "stream": True,
        "body": lambda: json.dumps({
            "model": "claude-haiku-4-5", "max_tokens": 1024, "stream": True,
            "messages": [{"role": "user", "content": 'Stream. [mock:{"words":200}]'}],
        }),
    },
    "large": {
        "label": "OpenAI chat, non-streaming, 100 KB of user text",
        "api": "openai", "stream": False,
        "body": lambda: openai_body(large_text()),
    },
    "rate": {
        "label": "OpenAI chat, small body, fixed rate (open loop, tail latency)",
        "api": "openai", "stream": False,
        "body": lambda: openai_body("Say hello in five words."),
    },
}

PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def headers_for(api, key):
    h = [("content-type", "application/json")]
    if api == "anthropic":
        h += [("x-api-key", key), ("anthropic-version", "2023-06-01")]
    else:
        h += [("authorization", f"Bearer {key}")]
    return h


# --------------------------------------------------------------------------------------------
# Processes


class Procs:
    """Every process the run started, stopped (process group first) on exit."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, log_path, env=None, cwd=None):
        logf = open(log_path, "wb")
        p = subprocess.Popen(argv, stdout=subprocess.PIPE if name in ("mock", "relay") else logf,
                             stderr=logf, env=env, cwd=cwd, start_new_session=True)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.time() + 5
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()
        self.procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_pids(pid):
    """pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_sum(pid, read):
    """read(p) summed over pid and its descendants; a process gone meanwhile counts 0."""
    total = 0
    for p in tree_pids(pid):
        try:
            total += read(p)
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_ticks(pid):
    """utime + stime of pid and its descendants, in clock ticks."""
    def ticks(p):
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return tree_sum(pid, ticks)


def peak_rss_kib(pid):
    """VmHWM of pid plus its descendants' (kB)."""
    def hwm(p):
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0
    return tree_sum(pid, hwm)


def wait_port(port, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def tail(path, n=6):
    try:
        with open(path, errors="replace") as f:
            lines = [line.rstrip() for line in f if line.strip()]
        return " / ".join(lines[-n:])[-600:]
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------
# Targets: what the load generator is pointed at.


class Target:
    def __init__(self, name, kind, addr=None, proc=None, key="sk-bench", proxy=None, note="",
                 headers=()):
        self.name = name
        self.headers = list(headers)  # extra request headers this target needs
        self.kind = kind          # "direct", "warden", "relay" or "peer"
        self.addr = addr          # host:port the request URL names
        self.proc = proc          # the process whose CPU and RSS are measured
        self.key = key
        self.proxy = proxy        # host:port of a forward proxy to send absolute-form requests to
        self.note = note          # how it was set up
        self.error = None         # why it cannot be measured at all
        self.unsupported = {}     # scenario -> reason
        self.peak_rss = None


def start_announcing(procs, work, name, argv):
    """Starts a process that prints `... http://HOST:PORT` once it listens; returns it and
    the address."""
    log_path = os.path.join(work, f"{name}.log")
    p = procs.start(name, argv, log_path)
    line = p.stdout.readline().decode()
    if "http://" not in line:
        raise SystemExit(f"{name} did not start: {line!r} {tail(log_path)}")
    return p, line.strip().rsplit("http://", 1)[1]


def start_mock(procs, work, threads):
    return start_announcing(procs, work, "mock", [WARDEN, "mock-upstream", "--listen",
                                                  "127.0.0.1:0", "--threads", str(threads)])


def governed_config():
    """49 non-matching deny rules, a matching 50th with a per-agent rate limit, a daily budget."""
    out = []
    for i in range(1, 50):
        out.append(f'[[rules]]\nname = "deny-{i}"\naction = "deny"\nmatch.agent = "nobody-{i}"\n')
    out.append('[[rules]]\nname = "bench-agents"\naction = "allow"\nmatch.agent = "bench*"\n'
               '[rules.limits]\nper = "agent"\nrpm = 100000000\n')
    out.append('[[budgets]]\nname = "bench-daily"\nper = "agent"\nlimit_usd = 1000000\n'
               'period = "day"\n')
    return "\n".join(out)


def start_relay(procs, work, mock):
    """The floor of any gateway: a TCP byte relay (no HTTP) on as many threads as Warden's."""
    p, addr = start_announcing(procs, work, "relay", [RELAY, "--listen", "127.0.0.1:0", "--to",
                                                       mock, "--threads",
                                                       str(os.cpu_count() or 2)])
    return Target("relay", "relay", addr=addr, proc=p,
                  note="`warden-relay`: TCP byte relay to the mock, no HTTP parsing (the floor "
                       "of any gateway: one more hop)")


def start_warden(procs, work, name, mock):
    data = os.path.join(work, name, "data")
    os.makedirs(data)
    config = os.path.join(work, name, "warden.toml")
    key = "sk-bench"
    text = ""
    note = "no config: durable ledger, default content protection"
    if name == "no-ledger":
        text = "[audit]\nenabled = false\n"
        note = "ledger disabled (audit.enabled = false)"
    elif name == "write":
        text = '[audit]\ndurability = "write"\n'
        note = ("as passthrough, with audit.durability = \"write\" (released once written; "
                "fdatasync within 50 ms)")
    elif name == "full":
        text = governed_config()
        note = ("ledger + content protection + virtual key + 50 rules (49 non-matching denies, "
                "a matching rule with a per-agent rpm limit) + a per-agent daily USD budget")
    with open(config, "w") as f:
        f.write(text)
    if name == "full":
        out = subprocess.run([WARDEN, "keys", "create", "--agent", BENCH_AGENT, "--data-dir", data,
                              "--config", config], capture_output=True, text=True, check=True)
        key = out.stdout.strip().splitlines()[0].strip()
    env = dict(os.environ, RUST_LOG="warn")
    log_path = os.path.join(work, name, "serve.log")
    p = procs.start(name, [WARDEN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data,
                           "--config", config, "--upstream", f"openai=http://{mock}",
                           "--upstream", f"anthropic=http://{mock}"], log_path, env=env)
    info = os.path.join(data, "gateway.json")
    deadline = time.time() + 30
    while not os.path.exists(info):
        if p.poll() is not None or time.time() > deadline:
            raise SystemExit(f"warden serve ({name}) did not start: {tail(log_path)}")
        time.sleep(0.05)
    with open(info) as f:
        listen = json.load(f)["listen"]
    return Target(name, "warden", addr=listen, proc=p, key=key, note=note)


# --------------------------------------------------------------------------------------------
# Peers. Each is installed into bench/.peers/ on first use and pointed at the same mock.


def run_quiet(argv, what, timeout=1800, env=None):
    log(f"  {what}: {' '.join(argv)}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()[-500:]}")


def ensure_venv(name, requirement, probe):
    venv = os.path.join(PEERS_DIR, name)
    exe = os.path.join(venv, "bin", probe)
    done = os.path.join(venv, ".bench-installed")
    if not os.path.exists(done):
        if not os.path.exists(os.path.join(venv, "bin", "pip")):
            run_quiet([sys.executable, "-m", "venv", venv], f"create venv {name}")
        run_quiet([os.path.join(venv, "bin", "pip"), "install", "-q", requirement],
                  f"pip install {requirement}")
        open(done, "w").close()
    if not os.path.exists(exe):
        raise RuntimeError(f"{requirement} installed no `{probe}` executable")
    return venv


def peer_env(work):
    env = dict(os.environ)
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["HOME"] = os.path.join(work, "home")
    os.makedirs(env["HOME"], exist_ok=True)
    return env


# Lists a requirement set of the installed `litellm` (base + the `proxy` extra), one a line, with
# the specifiers of the names given as arguments dropped. Run by the venv's python.
LITELLM_REQS = """
import importlib.metadata as m, sys
from pip._vendor.packaging.requirements import Requirement, SpecifierSet
relax = set(sys.argv[1:])
out = set()
for s in m.requires("litellm"):
    r = Requirement(s)
    if r.marker and not any(r.marker.evaluate({"extra": e}) for e in ("", "proxy")):
        continue
    r.marker = None
    if r.name in relax:
        r.specifier = SpecifierSet("")
    out.add(str(r))
print("\\n".join(sorted(out)))
"""


def ensure_litellm():
    """`pip install 'litellm[proxy]==1.109.*'`; when the index cannot satisfy one of its exact
    pins (1.109 asks for a certifi and litellm-proxy-extras newer than some mirrors serve),
    install litellm itself with --no-deps and its requirements with those pins relaxed."""
    venv = os.path.join(PEERS_DIR, "litellm")
    done = os.path.join(venv, ".bench-installed")
    if os.path.exists(done):
        return venv
    pip = os.path.join(venv, "bin", "pip")
    if not os.path.exists(pip):
        run_quiet([sys.executable, "-m", "venv", venv], "create venv litellm")
    try:
        run_quiet([pip, "install", "-q", "litellm[proxy]==1.109.*"], "pip install litellm[proxy]")
        open(done, "w").close()
        return venv
    except RuntimeError as e:
        log(f"  {str(e)[-300:]}")
        log("  retrying with litellm --no-deps and unavailable pins relaxed")
    run_quiet([pip, "install", "-q", "--no-deps", "litellm==1.109.*"], "pip install litellm")
    relax = []
    for _ in range(8):
        reqs = subprocess.run([os.path.join(venv, "bin", "python"), "-c", LITELLM_REQS, *relax],
                              capture_output=True, text=True, check=True).stdout
        req_file = os.path.join(venv, "bench-requirements.txt")
        with open(req_file, "w") as f:
            f.write(reqs)
        r = subprocess.run([pip, "install", "-q", "-r", req_file], capture_output=True,
                           text=True, timeout=1800)
        if r.returncode == 0:
            log(f"  installed litellm's requirements with relaxed pins: {', '.join(relax)}")
            with open(done, "w") as f:
                f.write(f"relaxed: {' '.join(relax)}\n")
            return venv
        missing = re.findall(r"No matching distribution found for ([A-Za-z0-9_.\-]+)", r.stderr)
        conflict = re.findall(r"(?:depends on|requires) ([A-Za-z0-9_.\-]+)[<>=!~]", r.stderr)
        names = [n.lower() for n in missing + conflict if n.lower() not in relax]
        if not names:
            raise RuntimeError(f"pip install of litellm's requirements failed: "
                               f"{r.stderr.strip()[-500:]}")
        relax.append(names[0])
    raise RuntimeError("could not resolve litellm's requirements")


def start_litellm(procs, work, mock):
    venv = ensure_litellm()
    d = os.path.join(work, "litellm")
    os.makedirs(d)
    cfg = os.path.join(d, "config.yaml")
    # It refuses to start without a master key; requests then authenticate with it.
    master_key = "sk-" + os.urandom(32).hex()
    with open(cfg, "w") as f:
        f.write(f"""model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://{mock}/v1
      api_key: sk-bench
  - model_name: claude-haiku-4-5
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_base: http://{mock}
      api_key: sk-bench
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  master_key: {master_key}
  disable_spend_logs: true
""")
    env = peer_env(work)
    # No network: the bundled model cost map, no telemetry.
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False",
               LITELLM_LOG="ERROR")
    port = free_port()
    log_path = os.path.join(d, "litellm.log")
    p = procs.start("litellm", [os.path.join(venv, "bin", "litellm"), "--config", cfg,
                                "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                    log_path, env=env, cwd=d)
    if not wait_port(port, p, 180):
        raise RuntimeError(f"litellm did not start: {tail(log_path)}")
    return Target("litellm", "peer", addr=f"127.0.0.1:{port}", proc=p, key=master_key,
                  note=f"`pip install 'litellm[proxy]==1.109.*'`; `litellm --config config.yaml "
                       f"--num_workers 1`, model_list: gpt-4o-mini → openai/ with api_base "
                       f"http://MOCK/v1, claude-haiku-4-5 → anthropic/ with api_base "
                       f"http://MOCK; a master key, no database")


def start_llm_leash(procs, work, mock):
    venv = ensure_venv("llm-leash", "llm-leash[proxy]", "llm-leash-proxy")
    d = os.path.join(work, "llm-leash")
    os.makedirs(d)
    env = peer_env(work)
    port = free_port()
    log_path = os.path.join(d, "llm-leash.log")
    p = procs.start("llm-leash", [os.path.join(venv, "bin", "llm-leash-proxy"), "--listen",
                                  f"127.0.0.1:{port}", "--audit-log",
                                  os.path.join(d, "audit.jsonl"), "--budget-usd", "1000000"],
                    log_path, env=env, cwd=d)
    if not wait_port(port, p, 60):
        raise RuntimeError(f"llm-leash-proxy did not start: {tail(log_path)}")
    # The upstream origin is per request (its providers default to the real APIs).
    return Target("llm-leash", "peer", addr=f"127.0.0.1:{port}", proc=p,
                  headers=[("x-llm-leash-upstream", f"http://{mock}")],
                  note="`pip install 'llm-leash[proxy]'`; `llm-leash-proxy --listen ... "
                       "--audit-log audit.jsonl --budget-usd 1000000`, upstream set per request "
                       "by the `x-llm-leash-upstream: http://MOCK` header")


def start_agentreserve(procs, work, mock):
    prefix = os.path.join(PEERS_DIR, "node")
    exe = os.path.join(prefix, "node_modules", ".bin", "agentreserve-proxy")
    if not os.path.exists(exe):
        run_quiet(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund",
                   "@agentreserve/proxy@0.1.0"], "npm install @agentreserve/proxy")
    d = os.path.join(work, "agentreserve")
    os.makedirs(d)
    port = free_port()
    cfg = os.path.join(d, "agentreserve.yaml")
    with open(cfg, "w") as f:
        f.write(f"""proxy:
  port: {port}
  host: "127.0.0.1"
  dashboard: false
rules:
  - match: "*"
    action: log
audit:
  store: sqlite
  path: {os.path.join(d, "audit.db")}
""")
    log_path = os.path.join(d, "agentreserve.log")
    p = procs.start("agentreserve", [exe, "-c", cfg, "-p", str(port), "--no-dashboard"],
                    log_path, env=peer_env(work), cwd=d)
    if not wait_port(port, p, 60):
        raise RuntimeError(f"agentreserve-proxy did not start: {tail(log_path)}")
    return Target("agentreserve", "peer", addr=mock, proc=p, proxy=f"127.0.0.1:{port}",
                  note="`npm install --prefix bench/.peers/node @agentreserve/proxy@0.1.0`; "
                       "`agentreserve-proxy -c agentreserve.yaml -p PORT --no-dashboard` "
                       "(one `log` rule, SQLite audit); an HTTP forward proxy, so clients send "
                       "absolute-form requests for http://MOCK/... to it")


PEER_STARTERS = {"litellm": start_litellm, "llm-leash": start_llm_leash,
                 "agentreserve": start_agentreserve}


def smoke(target, scenario):
    """One request of `scenario` through `target`; None when it works, else why not."""
    s = SCENARIOS[scenario]
    path = PATHS[s["api"]]
    host, port = (target.proxy or target.addr).rsplit(":", 1)
    url = f"http://{target.addr}{path}" if target.proxy else path
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", url, body=s["body"]().encode(),
                     headers=dict(headers_for(s["api"], target.key) + target.headers))
        r = conn.getresponse()
        body = r.read()
        conn.close()
    except Exception as e:  # noqa: BLE001 - any failure means "not supported"
        return f"{type(e).__name__}: {e}"
    if not 200 <= r.status < 300:
        return f"status {r.status}: {body[:200].decode(errors='replace')}"
    text = body.decode(errors="replace")
    if s["stream"]:
        events = text.count("data:")
        if events < 150:
            return f"stream had {events} SSE data lines, expected about 200"
    elif "choices" not in text and "content" not in text:
        return f"unexpected body: {text[:200]}"
    return None


# --------------------------------------------------------------------------------------------
# Measuring


def loadgen(target, scenario, conns, args, body_file):
    s = SCENARIOS[scenario]
    argv = [LOADGEN, "--url", f"http://{target.addr}{PATHS[s['api']]}",
            "--body-file", body_file, "--conns", str(conns),
            "--duration", str(args.duration), "--warmup", str(args.warmup),
            "--threads", "1", "--timeout", "30", "--json"]
    if target.proxy:
        argv += ["--proxy", target.proxy]
    for k, v in headers_for(s["api"], target.key) + target.headers:
        argv += ["--header", f"{k}: {v}"]
    if scenario == "rate":
        argv += ["--rate", str(args.rate)]
    out = subprocess.run(argv, capture_output=True, text=True,
                         timeout=args.duration + args.warmup + 120)
    if out.returncode != 0:
        raise RuntimeError(f"warden-loadgen failed: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout)


def measure(target, scenario, conns, args, body_file):
    pid = target.proc.pid if target.proc else None
    before = cpu_ticks(pid) if pid else 0
    r = loadgen(target, scenario, conns, args, body_file)
    if pid:
        used_us = (cpu_ticks(pid) - before) * 1e6 / CLK_TCK
        r["cpu_us_per_req"] = used_us / max(1, r["total_requests"])
    return r


def fdatasync_us(directory, n=200):
    path = os.path.join(directory, "fdatasync.probe")
    block = os.urandom(4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    times = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            times.append((time.perf_counter() - t) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(times)


# --------------------------------------------------------------------------------------------
# Report


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ms(us):
    return "—" if us is None else f"{us / 1000:.3f}"


def added(us):
    return "—" if us is None else f"{us / 1000:+.3f}"


def row_stats(runs, direct_runs):
    """Medians over rounds; `added` and `vs direct` from per-round pairs with direct."""
    def g(rs, *path):  # the field of every run that completed requests
        return [_get(r, path) for r in rs if r["requests"]]

    out = {
        "rps": med([r["rps"] for r in runs]),
        "p50": med(g(runs, "ttlb", "p50")),
        "p99": med(g(runs, "ttlb", "p99")),
        "p999": med(g(runs, "ttlb", "p999")),
        "ttfb50": med(g(runs, "ttfb", "p50")),
        "cpu": med(g(runs, "cpu_us_per_req")),
        "errors": sum(r["errors"] + r.get("warmup_errors", 0) for r in runs),
        "first_error": next((r["first_error"] for r in runs if r.get("first_error")), None),
    }
    if direct_runs:
        pairs = [(r, d) for r, d in zip(runs, direct_runs)]
        out["ratio"] = med([r["rps"] / d["rps"] if d["rps"] else None for r, d in pairs])
        for key, path in (("add50", ("ttlb", "p50")), ("add99", ("ttlb", "p99")),
                          ("addttfb", ("ttfb", "p50"))):
            out[key] = med([_get(r, path) - _get(d, path) for r, d in pairs
                            if r["requests"] and d["requests"]])
    return out


def _get(r, path):
    for p in path:
        r = r.get(p) if isinstance(r, dict) else None
    return r


def report(args, targets, results, mock_threads, fsync, mock_rss):
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [f"# Warden benchmark — {now:%Y-%m-%d %H:%M} UTC",
             "",
             f"{os.cpu_count()} cores, {args.duration:g} s × {args.rounds} round(s) per cell "
             f"(+{args.warmup:g} s warmup), mock on {mock_threads} thread(s), load generator "
             f"`warden-loadgen` on 1 thread; medians over rounds, `added` = median of per-round "
             f"differences with `direct` (time to last byte unless marked TTFB). Latencies in ms. "
             f"CPU µs/req is the gateway's (the mock's on `direct` rows). "
             f"fdatasync (4 KiB append, median of 200): {fsync / 1000:.3f} ms.",
             ""]
    names = [t.name for t in targets]
    by_name = {t.name: t for t in targets}
    for scenario in args.scenarios:
        s = SCENARIOS[scenario]
        title = s["label"] + (f" — {args.rate:g} req/s" if scenario == "rate" else "")
        lines += [f"## {scenario}: {title}", ""]
        cols = ["conns", "config", "req/s", "vs direct", "p50", "p99", "p99.9", "added p50",
                "added p99"]
        if s["stream"]:
            cols += ["TTFB p50", "added TTFB p50"]
        cols += ["CPU µs/req", "errors"]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        notes = []
        for conns in conns_for(scenario, args):
            direct_runs = results.get((scenario, conns, "direct"))
            for name in names:
                t = by_name[name]
                runs = results.get((scenario, conns, name))
                label = f"{conns}" if scenario != "rate" else f"{conns} @ {args.rate:g}/s"
                if not runs:
                    why = t.error or t.unsupported.get(scenario)
                    if why:
                        cells = [label, name, "n/a"] + [""] * (len(cols) - 3)
                        lines.append("| " + " | ".join(cells) + " |")
                        note = f"{name}: {why}"
                        if note not in notes:
                            notes.append(note)
                    continue
                st = row_stats(runs, direct_runs if name != "direct" else None)
                cells = [label, name, f"{st['rps']:,.0f}",
                         "—" if name == "direct" or st["ratio"] is None else f"{st['ratio']:.0%}",
                         ms(st["p50"]), ms(st["p99"]), ms(st["p999"]),
                         "—" if name == "direct" else added(st["add50"]),
                         "—" if name == "direct" else added(st["add99"])]
                if s["stream"]:
                    cells += [ms(st["ttfb50"]),
                              "—" if name == "direct" else added(st["addttfb"])]
                cells += ["—" if st["cpu"] is None else f"{st['cpu']:.0f}", str(st["errors"])]
                lines.append("| " + " | ".join(cells) + " |")
                if st["first_error"]:
                    notes.append(f"{name} c={conns} first error: {st['first_error'][:200]}")
                elif not any(r["requests"] for r in runs):
                    notes.append(f"{name} c={conns}: no request completed within the measured "
                                 f"{args.duration:g} s")
        if notes:
            lines.append("")
            lines += [f"- {n}" for n in notes]
        lines.append("")

    lines += ["## Peak RSS (VmHWM, whole run)", "",
              "| process | peak RSS | setup |", "|---|---|---|"]
    lines.append(f"| mock (direct) | {mock_rss / 1024:.1f} MiB | `warden mock-upstream --threads "
                 f"{mock_threads}` |")
    for t in targets:
        if t.kind == "direct":
            continue
        rss = "n/a" if t.peak_rss is None else f"{t.peak_rss / 1024:.1f} MiB"
        why = f" — not measured: {t.error}" if t.error else ""
        lines.append(f"| {t.name} | {rss} | {t.note}{why} |")
    lines.append("")
    lines += targets_section(args, targets, results, fsync)
    return "\n".join(lines) + "\n"


def conns_for(scenario, args):
    return [args.rate_conns] if scenario == "rate" else args.conns


def targets_section(args, targets, results, fsync):
    out = ["## Targets", ""]

    def st(scenario, conns, name):
        runs = results.get((scenario, conns, name))
        if not runs:
            return None
        return row_stats(runs, results.get((scenario, conns, "direct")) if name != "direct"
                         else None)

    wardens = [t.name for t in targets if t.kind == "warden"]
    if "chat" in args.scenarios and 1 in args.conns:
        for name in wardens:
            s = st("chat", 1, name)
            if s and s.get("add50") is not None and name == "write":
                ok = s["add50"] <= 100
                out.append(f"- Added p50 latency, chat c=1, {name} (relaxed durability): "
                           f"{added(s['add50'])} ms (target ≤ 0.1 ms: "
                           f"{'met' if ok else 'NOT met'}).")
            elif s and s.get("add50") is not None:
                ok = s["add50"] <= fsync + 250
                out.append(f"- Added p50 latency, chat c=1, {name}: {added(s['add50'])} ms "
                           f"(target ≤ fdatasync {fsync / 1000:.3f} + 0.25 = "
                           f"{(fsync + 250) / 1000:.3f} ms: {'met' if ok else 'NOT met'}).")
    big = max(args.conns)
    if "chat" in args.scenarios and "relay" in [t.name for t in targets]:
        lo, hi = st("chat", min(args.conns), "relay"), st("chat", big, "relay")
        if lo and hi and lo.get("add50") is not None and hi.get("ratio") is not None:
            out.append(f"- Floor (TCP relay, no HTTP): chat c={min(args.conns)} added p50 "
                       f"{added(lo['add50'])} ms; chat c={big} {hi['ratio']:.0%} of direct "
                       f"({hi['rps']:,.0f} req/s).")
    if "chat" in args.scenarios:
        for name in [n for n in ("full",) if n in wardens] or wardens[-1:]:
            s = st("chat", big, name)
            if s and s.get("ratio") is not None:
                out.append(f"- {name} throughput, chat c={big}: {s['ratio']:.0%} of direct "
                           f"({s['rps']:,.0f} req/s).")
    for scenario in ("chat-stream", "anthropic-stream"):
        if scenario not in args.scenarios:
            continue
        for name in wardens:
            s = st(scenario, 1 if 1 in args.conns else big, name)
            if s and s.get("addttfb") is not None:
                ok = s["addttfb"] <= 200
                out.append(f"- Added TTFB p50, {scenario} c={1 if 1 in args.conns else big}, "
                           f"{name}: {added(s['addttfb'])} ms (target ≤ 0.2 ms: "
                           f"{'met' if ok else 'NOT met'}).")
    for t in targets:
        if t.kind == "warden" and t.peak_rss is not None:
            out.append(f"- Peak RSS of {t.name} (runs up to c={big}): {t.peak_rss / 1024:.1f} MiB.")
    peers = [t for t in targets if t.kind == "peer"]
    if peers and wardens:
        ref = "full" if "full" in wardens else wardens[0]
        for scenario in args.scenarios:
            for conns in conns_for(scenario, args):
                w = st(scenario, conns, ref)
                if not w:
                    continue
                parts = []
                for p in peers:
                    ps = st(scenario, conns, p.name)
                    if ps and ps["rps"]:
                        parts.append(f"{p.name} {w['rps'] / ps['rps']:.1f}×")
                    else:
                        parts.append(f"{p.name} n/a")
                out.append(f"- Warden ({ref}) req/s ÷ peer req/s, {scenario} c={conns}: "
                           + ", ".join(parts) + ".")
    out.append("")
    return out


# --------------------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description="Warden gateway benchmark (see bench/README.md).")
    p.add_argument("--duration", type=float, default=None, help="seconds per measurement (5)")
    p.add_argument("--rounds", type=int, default=None, help="paired rounds per cell (3)")
    p.add_argument("--warmup", type=float, default=None, help="unrecorded seconds before each "
                   "measurement (1; 0.5 with --quick)")
    p.add_argument("--scenarios", default=",".join(ALL_SCENARIOS),
                   help="comma list of " + ",".join(ALL_SCENARIOS))
    p.add_argument("--configs", default=",".join(ALL_CONFIGS),
                   help="comma list of " + ",".join(ALL_CONFIGS + EXTRA_CONFIGS))
    p.add_argument("--conns", default="1 64", help='connection counts, e.g. "1 64 512"')
    p.add_argument("--rate", type=float, default=2000, help="req/s of the fixed-rate run (2000)")
    p.add_argument("--rate-conns", type=int, default=64, help="connections of the fixed-rate run")
    p.add_argument("--mock-threads", type=int, default=1)
    p.add_argument("--peers", action="store_true", help="also measure LiteLLM, llm-leash and "
                   "@agentreserve/proxy (installed into bench/.peers/)")
    p.add_argument("--peer-list", default=",".join(PEERS), help="which peers with --peers")
    p.add_argument("--quick", action="store_true", help="1 round of 2 s")
    p.add_argument("--results", default=os.path.join(BENCH, "results"))
    # Flags of the former wrk-based run.sh.
    p.add_argument("--stream", action="store_true", help="same as --scenarios chat-stream")
    p.add_argument("--governed", action="store_true", help="same as --configs direct,full")
    p.add_argument("--no-ledger", action="store_true", help="add the no-ledger configuration")
    a = p.parse_args(argv)
    a.duration = a.duration if a.duration is not None else (2 if a.quick else 5)
    a.rounds = a.rounds if a.rounds is not None else (1 if a.quick else 3)
    a.warmup = a.warmup if a.warmup is not None else (0.5 if a.quick else 1)
    if a.stream:
        a.scenarios = "chat-stream"
    if a.governed:
        a.configs = "direct,full"
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.configs = [c for c in a.configs.split(",") if c]
    if a.no_ledger and "no-ledger" not in a.configs:
        a.configs.append("no-ledger")
    a.conns = [int(c) for c in a.conns.replace(",", " ").split()]
    a.peer_list = [x for x in a.peer_list.split(",") if x] if a.peers else []
    for s in a.scenarios:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s!r}")
    for c in a.configs:
        if c not in ALL_CONFIGS + EXTRA_CONFIGS:
            p.error(f"unknown config {c!r}")
    for x in a.peer_list:
        if x not in PEERS:
            p.error(f"unknown peer {x!r}")
    if "direct" not in a.configs:
        a.configs.insert(0, "direct")  # every ratio and `added` needs the baseline
    return a


def main(argv):
    args = parse_args(argv)
    for exe in (WARDEN, LOADGEN) + ((RELAY,) if "relay" in args.configs else ()):
        if not os.path.exists(exe):
            raise SystemExit(f"{exe} not found: run bench/run.sh (it builds them)")
    os.makedirs(TARGET, exist_ok=True)
    # On the target dir's disk, not a tmpfs /tmp: the ledger's fdatasync must be real.
    work = tempfile.mkdtemp(prefix="bench-run-", dir=TARGET)
    procs = Procs()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # Also SIGINT: a shell starts background jobs with it ignored, which Python would inherit.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return run(args, work, procs)
    except KeyboardInterrupt:
        log("interrupted; stopping every process started")
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def run(args, work, procs):
    fsync = fdatasync_us(work)
    log(f"fdatasync (4 KiB append) median: {fsync / 1000:.3f} ms")
    mock_proc, mock = start_mock(procs, work, args.mock_threads)
    log(f"mock upstream on {mock}")
    targets = [Target("direct", "direct", addr=mock, proc=mock_proc,
                      note="client → mock, the baseline")]
    for name in args.configs:
        if name == "relay":
            t = start_relay(procs, work, mock)
            log(f"relay on {t.addr}")
            targets.append(t)
        elif name != "direct":
            t = start_warden(procs, work, name, mock)
            log(f"warden serve ({name}) on {t.addr}")
            targets.append(t)
    if args.peer_list:
        os.makedirs(PEERS_DIR, exist_ok=True)
    for name in args.peer_list:
        log(f"peer {name}: installing if needed, starting…")
        try:
            t = PEER_STARTERS[name](procs, work, mock)
            log(f"peer {name} on {t.proxy or t.addr}")
        except Exception as e:  # noqa: BLE001 - a peer that fails is reported, not fatal
            t = Target(name, "peer", note="")
            t.error = str(e)[:500]
            log(f"peer {name} unavailable: {t.error}")
        targets.append(t)

    # Which scenarios each target serves correctly (a Warden failure here is a bug: say so).
    for t in targets:
        if t.error:
            continue
        for scenario in args.scenarios:
            why = smoke(t, scenario)
            if why:
                if t.kind == "peer":
                    t.unsupported[scenario] = why
                    log(f"  {t.name} does not support {scenario}: {why}")
                else:
                    log(f"WARNING: {t.name} failed the {scenario} smoke request: {why}")

    bodies = {}
    for scenario in args.scenarios:
        path = os.path.join(work, f"{scenario}.json")
        with open(path, "w") as f:
            f.write(SCENARIOS[scenario]["body"]())
        bodies[scenario] = path

    results = {}
    live = [t for t in targets if not t.error]
    for scenario in args.scenarios:
        for conns in conns_for(scenario, args):
            for rnd in range(args.rounds):
                order = live[rnd % len(live):] + live[:rnd % len(live)]
                for t in order:
                    if scenario in t.unsupported:
                        continue
                    try:
                        r = measure(t, scenario, conns, args, bodies[scenario])
                    except Exception as e:  # noqa: BLE001
                        r = {"requests": 0, "errors": 1, "first_error": str(e)[:300], "rps": 0,
                             "ttfb": {}, "ttlb": {}}
                    results.setdefault((scenario, conns, t.name), []).append(r)
                    log(f"  {scenario} c={conns} round {rnd + 1} {t.name}: {r['rps']:,.0f} req/s, "
                        f"p50 {ms(_get(r, ('ttlb', 'p50')))} ms, errors {r['errors']}")

    for t in targets:
        if t.proc and t.proc.poll() is None and t.kind != "direct":
            t.peak_rss = peak_rss_kib(t.proc.pid)
    mock_rss = peak_rss_kib(mock_proc.pid)
    text = report(args, targets, results, args.mock_threads, fsync, mock_rss)
    print(text)
    os.makedirs(args.results, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = os.path.join(args.results, f"{stamp}.md")
    with open(out, "w") as f:
        f.write(text)
    log(f"written to {os.path.relpath(out, ROOT)}")
    errors = sum(r["errors"] for (_, _, name), rs in results.items() for r in rs
                 if not name.startswith(tuple(PEERS)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
