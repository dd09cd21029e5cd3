#!/usr/bin/env bash
# Creates (idempotently) the Python venv the SDK compatibility tests run in, and prints the
# venv's python path on the last line of stdout.
#
#   scripts/sdk-venv.sh [DIR]     # default DIR: <repo>/target/sdk-venv
#
# Needs python3 (>= 3.9; another interpreter via SDK_VENV_PYTHON) with the venv module, and
# PyPI. The install is skipped when DIR/.requirements.sha256 matches tests/sdk/requirements.txt,
# so repeated runs are instant.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/target/sdk-venv}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
reqs="$root/tests/sdk/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${SDK_VENV_PYTHON:-python3}"

if [ ! -f "$reqs" ]; then
    echo "sdk-venv: $reqs not found" >&2
    exit 1
fi

hash_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        "$python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}
want="$(hash_of "$reqs")"

# Serialise concurrent runs (parallel test binaries) on one venv.
mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv.lock"
    flock 9
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "sdk-venv: creating $venv" >&2
    if ! "$python" -m venv "$venv" >&2; then
        echo "sdk-venv: '$python -m venv' failed; install the venv module (e.g. apt-get install python3-venv)" >&2
        exit 1
    fi
    rm -f "$stamp"
fi

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "sdk-venv: installing $reqs" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet --upgrade pip >&2 || true
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet -r "$reqs" >&2
    echo "$want" > "$stamp"
fi

echo "$venv/bin/python"
