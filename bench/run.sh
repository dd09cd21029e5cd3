#!/usr/bin/env bash
# Gateway overhead benchmark: the same load against the mock provider directly and through
# `warden serve`, alternating A/B several times, medians reported. See bench/README.md.
#
#   bench/run.sh [--duration SECS] [--rounds N] [--stream] [--conns "1 64 512"] [--no-ledger] [--governed]
#
# --governed: every request carries a virtual key, is judged against 50 policy rules (the last
# one matches, with a per-agent rate limit) and reserves/settles against a USD budget.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=5
ROUNDS=3
SCENARIO=""
BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in five words."}]}'
LABEL="openai chat, buffered"
CONNS="1 64"
LEDGER=on
GOVERNED=off
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) CONNS="$2"; shift 2 ;;
    --no-ledger) LEDGER=off; shift ;;
    --governed) GOVERNED=on; shift ;;
    --duration) DURATION="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --stream)
      BODY='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Stream."}]}'
      SCENARIO='{"words":200}'; LABEL="openai chat, streaming 200 chunks"; shift ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk (load generator) from Debian packages…" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi

# 512 connections need ~1,100 descriptors in the gateway (clients + pooled upstreams).
ulimit -n 8192 2>/dev/null || true
cargo build --release -q -p warden
BIN=target/release/warden
WORK=$(mktemp -d)
cleanup() { kill "${MOCK_PID:-}" "${GW_PID:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN" mock-upstream --listen 127.0.0.1:0 --threads 1 >"$WORK/mock.out" 2>/dev/null &
MOCK_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/mock.out" 2>/dev/null && break; sleep 0.05; done
MOCK=$(sed -n 's/.*http:\/\///p' "$WORK/mock.out" | head -1)

CONFIG_ARGS=()
: >"$WORK/warden.toml"
if [ "$LEDGER" = off ]; then
  printf '[audit]\nenabled = false\n' >>"$WORK/warden.toml"
fi
WARDEN_BENCH_KEY=""
if [ "$GOVERNED" = on ]; then
  for i in $(seq 49); do
    printf '[[rules]]\nname = "deny-%s"\naction = "deny"\nmatch.agent = "nobody-%s"\n\n' "$i" "$i" >>"$WORK/warden.toml"
  done
  printf '[[rules]]\nname = "bench-agents"\naction = "allow"\nmatch.agent = "bench*"\n[rules.limits]\nper = "agent"\nrpm = 100000000\n\n' >>"$WORK/warden.toml"
  printf '[[budgets]]\nname = "bench-daily"\nper = "agent"\nlimit_usd = 1000000\nperiod = "day"\n' >>"$WORK/warden.toml"
  WARDEN_BENCH_KEY=$("$BIN" keys create --agent bench-agent --data-dir "$WORK/data" --config "$WORK/warden.toml" 2>/dev/null | head -1)
  LABEL="$LABEL, governed (virtual key, 50 rules, rate limit, budget)"
fi
CONFIG_ARGS=(--config "$WORK/warden.toml")
RUST_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" "${CONFIG_ARGS[@]}" \
  --upstream "openai=http://$MOCK" 2>"$WORK/gw.log" &
GW_PID=$!
for _ in $(seq 200); do [ -f "$WORK/data/gateway.json" ] && break; sleep 0.05; done
GW=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"])' "$WORK/data/gateway.json")

export WARDEN_BENCH_BODY="$BODY" WARDEN_BENCH_SCENARIO="$SCENARIO" WARDEN_BENCH_KEY
run_wrk() { # addr conns -> one JSON line
  local threads=$(( $2 < 2 ? 1 : 2 ))
  wrk -t"$threads" -c"$2" -d"${DURATION}s" -s bench/chat.lua "http://$1/v1/chat/completions" \
    | sed -n 's/^WRK_JSON //p'
}

RESULTS="$WORK/results.jsonl"
for conns in $CONNS; do
  for round in $(seq "$ROUNDS"); do
    for target in direct gateway; do
      addr=$MOCK; [ "$target" = gateway ] && addr=$GW
      line=$(run_wrk "$addr" "$conns")
      echo "{\"target\":\"$target\",\"conns\":$conns,\"round\":$round,\"r\":$line}" >>"$RESULTS"
      echo "  c=$conns round $round $target: $line" >&2
    done
  done
done
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$GW_PID/status")

python3 - "$RESULTS" "$LABEL (ledger $LEDGER)" "$DURATION" "$ROUNDS" "$RSS_KB" "$CONNS" <<'PY'
import json, statistics, sys, datetime, os
path, label, duration, rounds, rss, conns = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
def med(target, conns, key):
    vals = [r["r"][key] for r in rows if r["target"] == target and r["conns"] == conns]
    return statistics.median(vals)
def rps(target, conns):
    vals = [r["r"]["requests"] / (r["r"]["duration_us"] / 1e6) for r in rows if r["target"] == target and r["conns"] == conns]
    return statistics.median(vals)
out = []
out.append(f"## {label} — {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {duration}s x {rounds} rounds, medians\n")
out.append("| conns | direct req/s | gateway req/s | ratio | direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | added p99 | errors |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|")
for c in [int(x) for x in conns.split()]:
    d, g = rps("direct", c), rps("gateway", c)
    dp50, gp50 = med("direct", c, "p50_us"), med("gateway", c, "p50_us")
    dp99, gp99 = med("direct", c, "p99_us"), med("gateway", c, "p99_us")
    errs = sum(r["r"]["errors"] for r in rows if r["conns"] == c)
    out.append(f"| {c} | {d:,.0f} | {g:,.0f} | {g/d:.0%} | {dp50/1000:.3f} ms | {gp50/1000:.3f} ms | {(gp50-dp50)/1000:+.3f} ms | {dp99/1000:.3f} ms | {gp99/1000:.3f} ms | {(gp99-dp99)/1000:+.3f} ms | {errs} |")
out.append(f"\nGateway peak RSS: {int(rss)/1024:.1f} MiB. Load generator: wrk on the same 2 cores (mock on 1 thread).")
text = "\n".join(out)
print(text)
os.makedirs("bench/results", exist_ok=True)
stamp = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S")
with open(f"bench/results/{stamp}.md", "w") as f:
    f.write(text + "\n")
PY
