#!/usr/bin/env bash
# Property-based API testing: schemathesis generates requests from the OpenAPI document of
# `cointrail serve` (valid and invalid ones) and checks every answer against it: no 5xx,
# documented status codes and content types, response bodies matching their schemas,
# invalid input refused. Runs against the demo data directory (plus real Ethereum blocks), with a write key.
#
#   scripts/schemathesis.sh [target/debug/cointrail]     (SCHEMATHESIS_SEED=random for a new seed)
#
# schemathesis comes from PyPI into a virtualenv under ~/.cache/cointrail (13 s the first time).
# One worker: with two, hypothesis parses lambda sources from two threads, which trips a
# CPython 3.11 bug ("AST constructor recursion depth mismatch") now and then.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/cointrail}
[ -x "$BIN" ] || cargo build --locked -p cointrail
VENV=${COINTRAIL_CACHE:-$HOME/.cache/cointrail}/schemathesis-venv
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'schemathesis>=4.3,<5'
fi
WORK=$(mktemp -d)
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
"$BIN" --data-dir "$WORK/d" --quiet demo >/dev/null
# An Ethereum index beside it (real blocks 17,173,049-50), so the /v1/ethereum routes answer.
E=testdata/eth/etl
"$BIN" --data-dir "$WORK/d" --quiet ingest --chain ethereum "$E/mainnet_17173049_blocks.json" \
  "$E/mainnet_17173049_transactions.json" "$E/mainnet_17173049_token_transfers.json" >/dev/null
KEY=$("$BIN" --data-dir "$WORK/d" keys create schemathesis --scope write --rate 1000000 2>/dev/null)
"$BIN" --data-dir "$WORK/d" serve --bind 127.0.0.1:0 --addr-file "$WORK/addr" 2>"$WORK/serve.log" &
PID=$!
for _ in $(seq 1 600); do [ -s "$WORK/addr" ] && break; sleep 0.1; done
ADDR=$(cat "$WORK/addr")
SEED=${SCHEMATHESIS_SEED:-20261124}
SEEDARG=(--seed "$SEED"); [ "$SEED" = random ] && SEEDARG=()
if "$VENV/bin/schemathesis" --no-color --config-file scripts/schemathesis.toml run \
    "http://$ADDR/openapi.json" -H "X-API-Key: $KEY" --max-examples "${SCHEMATHESIS_EXAMPLES:-40}" \
    -w 1 "${SEEDARG[@]}" >"$WORK/st.out" 2>&1; then
  tail -n 12 "$WORK/st.out" | cut -c1-300
  echo "schemathesis: no failures"
else
  # Long generated bodies are cut so the log stays readable.
  cut -c1-400 "$WORK/st.out" | tail -n 150
  echo "schemathesis found failures (server log: below)"; tail -n 20 "$WORK/serve.log" | cut -c1-300
  exit 1
fi
