#!/usr/bin/env python3
"""Compare two builds of `warden` on one scenario: paired, alternating rounds on the same mock.

    bench/ab.py --a OLD_BINARY --b NEW_BINARY [--scenario chat-stream] [--conns 1] [--rounds 4]

Each build serves on loopback with its own data dir and the same config (empty by default: the
`passthrough` configuration of bench/run.py), in front of one `warden mock-upstream`. Every round
runs `direct`, then the two builds, the order of the two swapping from round to round; the report
is the median over rounds of req/s, p50/p99 time to last byte, p50 time to first byte and the
serving process's CPU per request (utime + stime from /proc, warmup included), plus each round's
p50 so the spread is visible. Standard library only; every process it starts is stopped on exit.

Keep a copy of the old binary before rebuilding (`cp target/release/warden /tmp/warden.old`).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the scenarios and the load generator's location)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(path, proc, what):
    deadline = time.time() + 30
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.05)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, help="the baseline `warden` binary")
    p.add_argument("--b", required=True, help="the `warden` binary to compare with it")
    p.add_argument("--scenario", default="chat",
                   choices=[s for s in run.ALL_SCENARIOS if s != "rate"])
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--duration", type=float, default=2)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--config", help="a warden.toml both builds serve with (default: empty)")
    args = p.parse_args()
    if not os.path.exists(run.LOADGEN):
        raise SystemExit(f"{run.LOADGEN} is missing: cargo build --release -p warden-loadgen")
    scenario = run.SCENARIOS[args.scenario]
    work = tempfile.mkdtemp(prefix="warden-ab-")
    procs = []
    try:
        mock = subprocess.Popen([args.a, "mock-upstream", "--listen", "127.0.0.1:0",
                                 "--threads", "1"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        procs.append(mock)
        mock_addr = mock.stdout.readline().decode().strip().rsplit("http://", 1)[1]
        config = args.config or os.path.join(work, "empty.toml")
        if not args.config:
            open(config, "w").close()
        body_file = os.path.join(work, "body.json")
        with open(body_file, "w") as f:
            f.write(scenario["body"]())
        servers = {}
        for name, binary in (("a", args.a), ("b", args.b)):
            data = os.path.join(work, name)
            os.makedirs(data)
            proc = subprocess.Popen(
                [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data,
                 "--config", config, "--upstream", f"openai=http://{mock_addr}",
                 "--upstream", f"anthropic=http://{mock_addr}"],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"{name}.log"), "w"),
                env=dict(os.environ, RUST_LOG="warn"))
            procs.append(proc)
            info = os.path.join(data, "gateway.json")
            wait_for(info, proc, f"warden serve ({binary})")
            servers[name] = (proc, json.load(open(info))["listen"])
        path = run.PATHS[scenario["api"]]
        results = {"direct": [], "a": [], "b": []}
        for r in range(args.rounds):
            pair = ["a", "b"] if r % 2 == 0 else ["b", "a"]
            for target in ["direct"] + pair:
                addr = mock_addr if target == "direct" else servers[target][1]
                pid = servers[target][0].pid if target != "direct" else None
                before = cpu_seconds(pid) if pid else 0
                headers = ["-H", "content-type: application/json"]
                if scenario["api"] == "anthropic":
                    headers += ["-H", "x-api-key: sk-bench", "-H", "anthropic-version: 2023-06-01"]
                else:
                    headers += ["-H", "authorization: Bearer sk-bench"]
                out = subprocess.run(
                    [run.LOADGEN, "--url", f"http://{addr}{path}", "--body-file", body_file,
                     *headers, "--conns", str(args.conns), "--duration", str(args.duration),
                     "--warmup", str(args.warmup), "--json"],
                    capture_output=True, text=True, check=True)
                m = json.loads(out.stdout)
                m["cpu_us"] = 1e6 * ((cpu_seconds(pid) - before) if pid else 0) / max(
                    m["total_requests"], 1)
                results[target].append(m)
        med = statistics.median
        print(f"{args.scenario}, {args.conns} conns, {args.rounds} rounds of {args.duration} s "
              f"(medians; µs)")
        print(f"{'':8} {'req/s':>8} {'p50':>8} {'p99':>8} {'ttfb p50':>9} {'CPU/req':>8} "
              f"{'errors':>6}  p50 by round")
        for t in ["direct", "a", "b"]:
            rs = results[t]
            print(f"{t:8} {med(x['rps'] for x in rs):8.0f} "
                  f"{med(x['ttlb']['p50'] for x in rs):8.0f} "
                  f"{med(x['ttlb']['p99'] for x in rs):8.0f} "
                  f"{med(x['ttfb']['p50'] for x in rs):9.0f} "
                  f"{med(x['cpu_us'] for x in rs) if t != 'direct' else 0:8.0f} "
                  f"{sum(x['errors'] for x in rs):6d}  "
                  + " ".join(str(x["ttlb"]["p50"]) for x in rs))
        print(f"a = {args.a}\nb = {args.b}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
