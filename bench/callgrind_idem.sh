#!/usr/bin/env bash
# bench/callgrind_idem.sh BINARY — instructions of one POST /tasks with and
# without an Idempotency-Key on the DynamoDB store, counted by valgrind
# --tool=callgrind over th_host_invoke (the request: event decoding, the Lua
# route, the store's requests through the HTTP client, the response), with
# `taskhost --local` against moto_server (dynalite has no TransactWriteItems;
# run it under tests/integration/with_moto.sh). Each POST is a new task (and,
# keyed, a new key: a claim PutItem + one TransactWriteItems, against one
# PutItem without a key). Prints a markdown table in K instructions, RUNS runs
# each (default 3; counts vary by a few hundred instructions with the UUIDs).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:?usage: bench/callgrind_idem.sh BINARY (under tests/integration/with_moto.sh)}
: "${MOTO_DIR:?run under tests/integration/with_moto.sh}"
RUNS=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
event() { # KEY ("" for none)
  jq -cn --arg k "$1" '{version: "2.0", routeKey: "$default", rawPath: "/tasks", rawQueryString: "",
    headers: ({"content-type": "application/json"} + (if $k == "" then {} else {"idempotency-key": ("\"" + $k + "\"")} end)),
    requestContext: {stage: "$default", http: {method: "POST", path: "/tasks"}},
    body: "{\"task\":\"bench\",\"priority\":\"high\"}", isBase64Encoded: false}'
}
count() { # event file
  local out=$work/cg.out
  rm -f "$out"
  TASKHOST_ROUTES=$root/lua TASKHOST_LOG_LEVEL=ERROR valgrind --tool=callgrind --callgrind-out-file="$out" \
    --collect-atstart=no --toggle-collect=th_host_invoke "$bin" --local "$1" >"$work/resp" 2>"$work/vg.log"
  jq -e '.statusCode == 201' "$work/resp" >/dev/null || { echo "not 201: $(cat "$work/resp")" >&2; exit 1; }
  sed -n 's/^summary: *//p; s/^totals: *//p' "$out" | head -1 | awk '{ print $1 }'
}
# one warm-up of each (first connection, table cache in moto)
event "" >"$work/nokey.json"; count "$work/nokey.json" >/dev/null
echo "| POST /tasks on DynamoDB (moto) | run | K instructions (th_host_invoke) |"
echo "|---|---:|---:|"
for i in $(seq 1 "$RUNS"); do
  event "" >"$work/nokey.json"
  echo "| without a key (PutItem) | $i | $(( $(count "$work/nokey.json") / 1000 )) |"
  event "bench-$i-$RANDOM" >"$work/key.json"
  echo "| with a key (claim PutItem + TransactWriteItems) | $i | $(( $(count "$work/key.json") / 1000 )) |"
done
