#!/usr/bin/env bash
# A keyed POST /tasks whose DynamoDB answer is lost after the write landed
# (docs/idempotency.md): run under tests/integration/with_moto.sh (dynalite has
# no TransactWriteItems). fault_proxy.py sits between taskhost --serve and moto
# and forwards the TransactWriteItems, then answers 500 ("apply-e500"):
#   1. lost once: taskhost resends the transaction with its ClientRequestToken;
#      the client gets 201;
#   2. lost on every attempt: the client gets 503, retries with its key and gets
#      201 naming the task the first request wrote;
#   3. refused before it landed (503 on every attempt): the claim is dropped, the
#      retry with the key writes the task.
# Each time the table is then scanned straight at moto (the AWS CLI, not through
# the proxy): exactly one task item with the request's text, and its
# idempotency record (an item of the same table, id U+10FFFF "idem:" key),
# COMPLETED, whose stored answer names that task.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_STORE=dynamodb
source "$here/../e2e/lib.sh"
: "${MOTO_DIR:?run under tests/integration/with_moto.sh}"
command -v aws >/dev/null || { echo "FAIL - the AWS CLI is not installed (scripts/deps.sh --test)"; exit 1; }
PY=${PYTHON:-python3}

export TASKHOST_LUA_TIMEOUT_MS=5000 AWS_MAX_ATTEMPTS=3 TASKHOST_WORKERS=1 TASKHOST_LOG_LEVEL=INFO

source "$here/proxy_lib.sh"
proxy_start
# The whole table, read at moto itself.
scan() { aws dynamodb scan --endpoint-url "$UPSTREAM" --table-name "$TABLE_NAME" --consistent-read --output json; }
J='Content-Type: application/json'

echo "moto: TransactWriteItems ignores ClientRequestToken (a resend with the same token is evaluated again and cancelled, ConditionalCheckFailed, where AWS answers 200 for 10 minutes); taskhost then reads the record (one GetItem) and finds its own completed transaction: the outcome checked here is the same"

serve_start || { fail "taskhost --serve starts on the proxy"; finish; }

# table_holds NAME TEXT KEY ID: one task item with TEXT, its id ID, and the
# key's record completed, its stored answer naming ID.
table_holds() {
  local name=$1 text=$2 key=$3 id=$4 items
  items=$(scan)
  check_eq "$name: exactly one task item with the request's text" 1 \
    "$(jq --arg t "$text" '[.Items[] | select(.task.S == $t)] | length' <<<"$items")"
  check_eq "$name: that task is the one the client was told" "$id" \
    "$(jq -r --arg t "$text" '.Items[] | select(.task.S == $t) | .id.S' <<<"$items")"
  local rec
  rec=$(jq -c --arg k $'\xf4\x8f\xbf\xbfidem:'"$key" '[.Items[] | select(.id.S == $k)]' <<<"$items")
  check_eq "$name: one idempotency record for the key (the other item)" 1 "$(jq length <<<"$rec")"
  check_eq "$name: the record COMPLETED" COMPLETED "$(jq -r '.[0].status.S' <<<"$rec")"
  check_eq "$name: the record's stored answer names the task" "$id" \
    "$(jq -r '.[0].response.S | fromjson | .body | fromjson | .id' <<<"$rec" 2>/dev/null)"
}

section "lost once: resent with its ClientRequestToken, 201"
plan TransactWriteItems '["apply-e500"]'
http POST /tasks -H "$J" -H 'Idempotency-Key: "lost-once"' -d '{"task":"lost once"}'
check_eq "201" 201 "$STATUS"
check_eq "TransactWriteItems sent twice" 2 "$(count TransactWriteItems)"
ID1=$(jq -r .id <<<"$BODY")
table_holds "lost once" "lost once" lost-once "$ID1"
plan none
http POST /tasks -H "$J" -H 'Idempotency-Key: "lost-once"' -d '{"task":"lost once"}'
check_eq "a retry with the key: 201 naming it" "201 $ID1" "$STATUS $(jq -r .id <<<"$BODY")"

section "lost on every attempt: 503, then the retry with the key gets the task"
plan TransactWriteItems '["apply-e500","apply-e500","apply-e500"]'
http POST /tasks -H "$J" -H 'Idempotency-Key: "lost-all"' -d '{"task":"lost every time"}'
check_eq "503 (the outcome is unknown to the client)" 503 "$STATUS"
check_eq "503: Retry-After" 1 "$(hdr Retry-After)"
check_eq "TransactWriteItems sent 3 times (AWS_MAX_ATTEMPTS)" 3 "$(count TransactWriteItems)"
plan none
http POST /tasks -H "$J" -H 'Idempotency-Key: "lost-all"' -d '{"task":"lost every time"}'
check_eq "the retry with its key: 201" 201 "$STATUS"
ID2=$(jq -r .id <<<"$BODY")
check_eq "the retry wrote nothing: it was a replay" 0 "$(count TransactWriteItems)"
table_holds "lost every time" "lost every time" lost-all "$ID2"

section "refused before it landed: the claim is dropped, the retry writes the task"
plan TransactWriteItems '["e503","e503","e503"]'
http POST /tasks -H "$J" -H 'Idempotency-Key: "refused"' -d '{"task":"refused"}'
check_eq "503" 503 "$STATUS"
check_eq "nothing written" 0 "$(scan | jq '[.Items[] | select(.task.S == "refused")] | length')"
plan none
http POST /tasks -H "$J" -H 'Idempotency-Key: "refused"' -d '{"task":"refused"}'
check_eq "the retry with its key: 201" 201 "$STATUS"
table_holds "refused, then retried" "refused" refused "$(jq -r .id <<<"$BODY")"

serve_stop
finish
