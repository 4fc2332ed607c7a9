#!/usr/bin/env bash
# `taskhost --serve` on SQLite under wrk: 64 connections (one per wrk thread)
# mixing creates, updates and deletes for a few seconds. Checks: no socket
# error, no timeout, every response the status its op expects and a body that
# matches it, a clean stop; then, after a restart, the final table — read both
# through every page of GET /tasks and straight from the SQLite file — is
# exactly what the acknowledged operations imply: acknowledged creates present
# with their text, acknowledged updates showing their values, acknowledged
# deletes gone, untouched pre-created tasks unchanged, and the count
# pool + creates − deletes. An op still in flight when wrk stops may have
# either outcome; they are counted and printed.
#
# The wrk script is concurrency.lua (how ops are generated and logged), the
# replay and comparison concurrency_check.py, both beside this file.
# Knobs: CONC_SECONDS (default 8), CONC_POOL (pre-created tasks, default 960),
# CONC_WORKERS (TASKHOST_WORKERS, default 4).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONNS=64
SECS=${CONC_SECONDS:-8}
POOL=${CONC_POOL:-960}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

if ! command -v wrk >/dev/null; then
  echo "e2e: wrk is required for this test and was not found (scripts/deps.sh --test installs the Debian package)" >&2
  exit 1
fi
if ! "$PY" -c 'import sqlite3' 2>/dev/null; then
  echo "e2e: python3 with its sqlite3 module is required" >&2
  exit 1
fi

export TASKHOST_STORE="sqlite:$TMP/conc.db"
export TASKHOST_WORKERS=${CONC_WORKERS:-4}
CONC_DIR="$TMP/conc"
mkdir -p "$CONC_DIR"

section "start ($TASKHOST_WORKERS workers, SQLite)"
if ! serve_start; then
  fail "server starts and answers"
  finish
fi
pass

section "pre-create $POOL tasks (one curl, keep-alive)"
cfg="$TMP/pool.curl"
: >"$cfg"
for i in $(seq 1 "$POOL"); do
  [ "$i" -gt 1 ] && echo "next" >>"$cfg"
  printf 'url = "%s/tasks"\nrequest = "POST"\nheader = "Content-Type: application/json"\ndata = "{\\"task\\":\\"pool %d\\"}"\nwrite-out = "\\t%%{http_code}\\n"\nsilent\n' \
    "$BASE_URL" "$i" >>"$cfg"
done
curl -K "$cfg" >"$TMP/pool.out"
check_eq "curl creates the pool" 0 "$?"
check_eq "every pool create is a 201" "$POOL" "$(grep -c $'\t201$' "$TMP/pool.out")"
cut -f1 "$TMP/pool.out" >"$CONC_DIR/pool.jsonl"
jq -r '.id' "$CONC_DIR/pool.jsonl" >"$CONC_DIR/pool.ids"
check_eq "$POOL distinct pool ids" "$POOL" "$(sort -u "$CONC_DIR/pool.ids" | grep -cE '^[0-9a-f-]{36}$')"

section "wrk: $CONNS connections, ${SECS}s of creates, updates and deletes"
CONC_DIR="$CONC_DIR" CONC_THREADS=$CONNS \
  wrk -t"$CONNS" -c"$CONNS" -d"${SECS}s" --timeout 10s --latency \
  -s "$HERE/concurrency.lua" "$BASE_URL" >"$TMP/wrk.out" 2>&1
wrk_rc=$?
sed 's/^/   wrk| /' "$TMP/wrk.out"
check_eq "wrk exits 0" 0 "$wrk_rc"
declare -A W=()
if [ -f "$CONC_DIR/summary.txt" ]; then
  while IFS='=' read -r k v; do W[$k]=$v; done <"$CONC_DIR/summary.txt"
fi
check "wrk wrote its summary" test -n "${W[requests]:-}"
for e in connect read write timeout; do
  check_eq "wrk: 0 $e errors" 0 "${W[$e]:-missing}"
done
check_eq "wrk: 0 non-2xx/3xx responses" 0 "${W[status]:-missing}"
if [ -n "${W[requests]:-}" ]; then
  echo "   $(awk -v r="${W[requests]}" -v us="${W[duration_us]}" -v p50="${W[latency_p50_us]}" \
    -v p99="${W[latency_p99_us]}" -v mx="${W[latency_max_us]}" 'BEGIN {
      printf "%d requests in %.2f s: %.0f req/s; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms",
        r, us / 1e6, r / (us / 1e6), p50 / 1e3, p99 / 1e3, mx / 1e3 }')"
fi

section "the server under load"
check_eq "no WARN/ERROR/FATAL line in the server log" 0 \
  "$(grep -cE '"level":"(WARN|ERROR|FATAL)"' "$SERVE_LOG")"
check_eq "no 4xx/5xx in the server's request log" 0 "$(grep -cE '"status":[45][0-9][0-9]' "$SERVE_LOG")"
serve_stop TERM

section "the final table after a restart: API pages and the SQLite file"
if ! serve_start; then
  fail "server starts again on the same file"
  finish
fi
"$PY" "$HERE/concurrency_check.py" "$CONC_DIR" "$BASE_URL" "$TMP/conc.db" >"$TMP/check.out" 2>&1
check_rc=$?
while IFS= read -r line; do
  case $line in
    "PASS "*) pass ;;
    "FAIL "*) FAILED=$((FAILED + 1)); echo "FAIL: ${line#FAIL }" ;;
    "INFO "*) echo "   ${line#INFO }" ;;
    *) echo "   $line" ;;
  esac
done <"$TMP/check.out"
check_eq "the checker ran to the end" 0 "$check_rc"
serve_stop TERM

finish
