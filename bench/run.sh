#!/usr/bin/env bash
# Gateway overhead benchmark: the same load against the mock provider directly and through
# `warden serve` in several configurations (and, with --peers, other gateways), in paired rounds,
# medians reported in bench/results/<UTC timestamp>.md. See bench/README.md.
#
#   bench/run.sh [--quick] [--duration SECS] [--rounds N] [--scenarios LIST] [--configs LIST]
#                [--conns "1 64"] [--rate R] [--peers]        (bench/run.sh --help for all)
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do
  case "$arg" in -h|--help) exec python3 bench/run.py --help ;; esac
done

if ! command -v python3 >/dev/null 2>&1; then
  echo "installing python3 from Debian packages…" >&2
  (apt-get update -qq && apt-get install -y -qq python3 python3-venv) >/dev/null
fi

cargo build --release -q -p warden -p warden-loadgen
# 512 connections need ~1,100 descriptors in the gateway (clients + pooled upstreams).
ulimit -n 8192 2>/dev/null || true
exec python3 bench/run.py "$@"
