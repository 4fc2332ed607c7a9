#!/usr/bin/env bash
# Safe retries and concurrent edits (docs/idempotency.md), end to end through
# `taskhost --serve` and the Lambda path (`--local`, which runs th_host_invoke as
# the Runtime API loop does) on SQLite:
#   Idempotency-Key on POST /tasks: replay (same status, body, Location, ETag, one
#   task — also after the task changed or was deleted), another body → 422, a
#   malformed key → 400, a claim in flight → 409 with Retry-After, taken over after
#   its deadline, an expired record → a new create, a 4xx drops the claim, the TTL
#   of TASKHOST_IDEMPOTENCY_TTL_S, 32 concurrent POSTs with one key → one task;
#   ETag / If-Match / If-None-Match: GET/POST/PUT answer ETag, 412 on a failed or
#   weak If-Match, * and lists, 304 without a body, 32 concurrent PUTs with one
#   If-Match → one 200, the rest 412, the final task the winner's.
# The records are read and edited straight in the store (python3's sqlite3 on
# the SQLite file; the AWS CLI on DynamoDB) to put a claim in flight or a
# record past its expiry without waiting.
# With E2E_STORE=dynamodb under with_dynalite.sh (dynamodb.e2e_conditional) the
# ETag / If-Match sections run on dynalite, the item edited with the AWS CLI;
# dynalite has no TransactWriteItems, so the Idempotency-Key sections run
# under with_moto.sh (MOTO_DIR set: dynamodb.e2e_idempotency_moto), where the
# records are items of the task table (id: U+10FFFF "idem:" key).
# With E2E_TRANSPORT=lambda (e2e.idempotency_lambda, dynamodb.*_lambda) every
# section that talks HTTP goes through the Lambda Runtime API loop instead of
# --serve: a loopback API Gateway in front of E2E_LAMBDA_INSTANCES taskhost
# processes polling one Runtime API emulator (lib.sh, lambda_gateway_start), so
# the concurrent sections race separate instances on one store.
# A keyed POST held in flight (X-Test-Fault: hold, tests/openapi/fault.lua wrapped
# around the real routes) while another request — another instance under
# E2E_TRANSPORT=lambda — sends its key: 409, then the held one completes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
DB="$TMP/idem.db"
ON_SQLITE=1
KEYED=1 # the Idempotency-Key sections: SQLite, and DynamoDB on moto
if [ "${E2E_STORE:-sqlite}" = dynamodb ]; then
  ON_SQLITE=0
  [ -n "${MOTO_DIR:-}" ] || KEYED=0
else
  export TASKHOST_STORE="sqlite:$DB"
fi
unset TASKHOST_IDEMPOTENCY_TTL_S
J='Content-Type: application/json'
# The real routes behind fault.lua's switch (without X-Test-Fault: routes.lua itself).
mkdir -p "$TMP/routes"
cp "$ROUTES_DIR"/*.lua "$TMP/routes/"
mv "$TMP/routes/routes.lua" "$TMP/routes/routes_real.lua"
cp "$SOURCE_DIR/tests/openapi/fault.lua" "$TMP/routes/routes.lua"
export TASKHOST_ROUTES="$TMP/routes"
# fault.lua holds a request for up to 20 s: the route's budget must outlast it.
export TASKHOST_LUA_TIMEOUT_MS=25000

sql() { "$PY" - "$DB" "$@" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
rows = db.execute(sys.argv[2], sys.argv[3:]).fetchall()
db.commit()
for r in rows:
    print("\t".join("" if v is None else str(v) for v in r))
PYEOF
}
# fingerprint BODY: what the server computes for POST /tasks with BODY.
fingerprint() { "$PY" -c 'import hashlib,sys; print(hashlib.sha256(b"POST\0/tasks\0" + sys.argv[1].encode()).hexdigest())' "$1"; }
REC_PREFIX=$'\xf4\x8f\xbf\xbfidem:' # a record's id on DynamoDB (runtime/dynamodb.h)
ddb_scan() { aws dynamodb scan --table-name "$TABLE_NAME" --consistent-read --output json; }
rec_key() { jq -cn --arg id "$REC_PREFIX$1" '{user_id: {S: "public"}, id: {S: $id}}'; }
rec_get() { aws dynamodb get-item --table-name "$TABLE_NAME" --consistent-read --key "$(rec_key "$1")" --output json; }
rec_set_num() { # KEY ATTRIBUTE VALUE
  aws dynamodb update-item --table-name "$TABLE_NAME" --key "$(rec_key "$1")" \
    --update-expression 'SET #a = :v' --expression-attribute-names "{\"#a\":\"$2\"}" \
    --expression-attribute-values "{\":v\":{\"N\":\"$3\"}}" >/dev/null
}
tasks_named() {
  if [ "$ON_SQLITE" = 1 ]; then
    sql "SELECT count(*) FROM items WHERE json_extract(doc, '\$.task.S') = ?" "$1"
  else
    ddb_scan | jq --arg t "$1" '[.Items[] | select(.task.S == $t)] | length'
  fi
}
# rec_inflight KEY FINGERPRINT EXPIRES_AT LOCKED_UNTIL_MS: another request's claim.
rec_inflight() {
  if [ "$ON_SQLITE" = 1 ]; then
    sql "INSERT INTO idempotency (user_id, key, state, fingerprint, token, expires_at, locked_until)
         VALUES ('public', ?, 'in_progress', ?, 'other', ?, ?)" "$@"
  else
    aws dynamodb put-item --table-name "$TABLE_NAME" --item "$(jq -cn --arg id "$REC_PREFIX$1" \
      --arg fp "$2" --arg e "$3" --arg l "$4" '{user_id: {S: "public"}, id: {S: $id},
      status: {S: "IN_PROGRESS"}, fingerprint: {S: $fp}, token: {S: "other"},
      expires_at: {N: $e}, locked_until_ms: {N: $l}}')" >/dev/null
  fi
}
rec_set_locked() { # KEY MS
  if [ "$ON_SQLITE" = 1 ]; then sql "UPDATE idempotency SET locked_until = ? WHERE key = ?" "$2" "$1"
  else rec_set_num "$1" locked_until_ms "$2"; fi
}
rec_set_expires() { # KEY S
  if [ "$ON_SQLITE" = 1 ]; then sql "UPDATE idempotency SET expires_at = ? WHERE key = ?" "$2" "$1"
  else rec_set_num "$1" expires_at "$2"; fi
}
rec_state() { # completed | in_progress
  if [ "$ON_SQLITE" = 1 ]; then sql "SELECT state FROM idempotency WHERE key = ?" "$1"
  else rec_get "$1" | jq -r '.Item.status.S | ascii_downcase'; fi
}
rec_expires() {
  if [ "$ON_SQLITE" = 1 ]; then sql "SELECT expires_at FROM idempotency WHERE key = ?" "$1"
  else rec_get "$1" | jq -r '.Item.expires_at.N'; fi
}

section "start (${E2E_TRANSPORT:-serve}, ${E2E_STORE:-sqlite})"
if ! serve_start; then
  fail "server starts"
  finish
fi
pass

if [ "$KEYED" = 1 ]; then
section "Idempotency-Key: a retry replays the first answer"
http POST /tasks -H "$J" -H 'Idempotency-Key: "replay-1"' -d '{"task":"replay me"}'
check_eq "first POST: 201" 201 "$STATUS"
FIRST_BODY=$BODY FIRST_LOC=$(hdr Location) FIRST_ETAG=$(hdr ETag)
ID=$(jq -r .id <<<"$BODY")
check_eq "first POST: ETag \"1\"" '"1"' "$FIRST_ETAG"
check_eq "first POST: Location" "/tasks/$ID" "$FIRST_LOC"
http POST /tasks -H "$J" -H 'Idempotency-Key: "replay-1"' -d '{"task":"replay me"}'
check_eq "retry: 201" 201 "$STATUS"
check_eq "retry: the same body" "$FIRST_BODY" "$BODY"
check_eq "retry: the same Location" "$FIRST_LOC" "$(hdr Location)"
check_eq "retry: the same ETag" "$FIRST_ETAG" "$(hdr ETag)"
check_eq "one task, not two" 1 "$(tasks_named 'replay me')"
# The key's name is case-insensitive; a bare token is the same key.
http POST /tasks -H "$J" -H 'idempotency-KEY: replay-1' -d '{"task":"replay me"}'
check_eq "bare token, other case: the same answer" "$FIRST_BODY" "$BODY"
http PUT "/tasks/$ID" -H "$J" -d '{"task":"changed since"}'
check_eq "the task changes" 200 "$STATUS"
http POST /tasks -H "$J" -H 'Idempotency-Key: "replay-1"' -d '{"task":"replay me"}'
check_eq "after a change: still the first answer" "$FIRST_BODY" "$BODY"
http DELETE "/tasks/$ID"
http POST /tasks -H "$J" -H 'Idempotency-Key: "replay-1"' -d '{"task":"replay me"}'
check_eq "after a delete: still the first answer (201)" "201 $FIRST_BODY" "$STATUS $BODY"
check_eq "after a delete: no task recreated" 0 "$(tasks_named 'replay me')"
http GET /tasks
check_jq "records are never listed" "$BODY" '.count == (.items | length) and all(.items[]; .id | test("^[0-9a-f-]{36}$"))'
if [ "$ON_SQLITE" = 0 ]; then
  check_eq "the record is an item of the task table" completed "$(rec_state replay-1)"
  # Neither a task nor reachable as one: 404 by its id, never on a page, never counted.
  REC_PATH="/tasks/%F4%8F%BF%BFidem%3Areplay-1"
  for m in GET PUT DELETE; do
    http "$m" "$REC_PATH" -H "$J" -d '{"task":"overwrite the record"}'
    check_eq "$m of the record's id: 404" 404 "$STATUS"
  done
  check_eq "the record is untouched" completed "$(rec_state replay-1)"
  # Pages of one, to the end: every id a task's, the last page ends the list.
  seen="" pages=0 cursor=""
  while :; do
    http GET "/tasks?limit=1${cursor:+&next=$cursor}"
    [ "$STATUS" = 200 ] || break
    seen+=$(jq -r '.items[].id' <<<"$BODY")$'\n'
    pages=$((pages + 1))
    cursor=$(jq -r '.next // empty' <<<"$BODY")
    [ -n "$cursor" ] && [ "$pages" -lt 200 ] || break
  done
  check_eq "pages of one: every page 200" 200 "$STATUS"
  check "pages of one: only task ids" test -z "$(grep -v -E '^([0-9a-f-]{36})?$' <<<"$seen")"
  check_eq "pages of one: as many as tasks in the table" \
    "$(ddb_scan | jq '[.Items[] | select(.id.S | test("^[0-9a-f-]{36}$"))] | length')" \
    "$(grep -c . <<<"$seen")"
fi

section "Idempotency-Key: the same key with another body → 422"
http POST /tasks -H "$J" -H 'Idempotency-Key: "replay-1"' -d '{"task":"something else"}'
check_eq "422" 422 "$STATUS"
check_jq "422 names Idempotency-Key" "$BODY" '.message | test("Idempotency-Key")'
check_eq "nothing created" 0 "$(tasks_named 'something else')"

section "Idempotency-Key: malformed keys → 400"
LONG=$(printf 'k%.0s' $(seq 1 256))
MAX=$(printf 'k%.0s' $(seq 1 255))
for bad in 'Idempotency-Key;' 'Idempotency-Key: ""' "Idempotency-Key: \"$LONG\"" \
  'Idempotency-Key: "a b"' $'Idempotency-Key: "caf\xc3\xa9"' 'Idempotency-Key: "a\"b"' \
  'Idempotency-Key: "a\\b"'; do
  http POST /tasks -H "$J" -H "$bad" -d '{"task":"bad key"}'
  check_eq "${bad:0:40}: 400" 400 "$STATUS"
  check_jq "${bad:0:40}: names Idempotency-Key" "$BODY" '.message | test("Idempotency-Key")'
done
check_eq "no task created by a bad key" 0 "$(tasks_named 'bad key')"
http POST /tasks -H "$J" -H "Idempotency-Key: \"$MAX\"" -d '{"task":"longest key"}'
check_eq "a 255-character key: 201" 201 "$STATUS"
http POST /tasks -H "$J" -d '{"task":"no key"}'
check_eq "no key: 201, as before" 201 "$STATUS"
http POST /tasks -H "$J" -d '{"task":"no key"}'
check_eq "no key twice: two tasks" 2 "$(tasks_named 'no key')"

section "Idempotency-Key: a 4xx drops the claim; a corrected retry proceeds"
http POST /tasks -H "$J" -H 'Idempotency-Key: "fix-me"' -d '{"task":"x","priority":"someday"}'
check_eq "invalid body: 400" 400 "$STATUS"
http POST /tasks -H "$J" -H 'Idempotency-Key: "fix-me"' -d '{"task":"fixed","priority":"high"}'
check_eq "corrected body, same key: 201" 201 "$STATUS"

section "Idempotency-Key: in flight → 409, taken over after its deadline"
NOW_MS=$(($(date +%s) * 1000))
BODY1='{"task":"in flight"}'
rec_inflight busy "$(fingerprint "$BODY1")" $((NOW_MS / 1000 + 3600)) $((NOW_MS + 600000))
http POST /tasks -H "$J" -H 'Idempotency-Key: "busy"' -d "$BODY1"
check_eq "in flight: 409" 409 "$STATUS"
check_eq "409: Retry-After" 1 "$(hdr Retry-After)"
check_jq "409 names Idempotency-Key" "$BODY" '.message | test("Idempotency-Key")'
http POST /tasks -H "$J" -H 'Idempotency-Key: "busy"' -d '{"task":"another body"}'
check_eq "in flight, another body: 422" 422 "$STATUS"
rec_set_locked busy $((NOW_MS - 1000))
http POST /tasks -H "$J" -H 'Idempotency-Key: "busy"' -d "$BODY1"
check_eq "past its deadline: taken over, 201" 201 "$STATUS"
check_eq "one task" 1 "$(tasks_named 'in flight')"
check_eq "the record completed" completed "$(rec_state busy)"

section "Idempotency-Key: a request in flight meanwhile → 409, then it completes"
release="release $$-$RANDOM"
mkdir -p "$TMP/held.d"
(
  TMP=$TMP/held.d
  http POST /tasks -H "$J" -H 'Idempotency-Key: "held"' -H 'X-Test-Fault: hold' \
    -H "X-Test-Release: $release" -d '{"task":"held"}'
  printf '%s\n%s' "$STATUS" "$BODY" >"$TMP/answer"
) &
HELD_PID=$!
for _ in $(seq 1 300); do
  grep -q '"contract: holding"' "$SERVE_LOG" && break
  sleep 0.1
done
check_match "the held request reached the route" '"contract: holding"' "$(cat "$SERVE_LOG")"
http POST /tasks -H "$J" -H 'Idempotency-Key: "held"' -d '{"task":"held"}'
check_eq "the same key while the first is in flight: 409" 409 "$STATUS"
check_eq "409: Retry-After" 1 "$(hdr Retry-After)"
check_jq "409 names Idempotency-Key" "$BODY" '.message | test("Idempotency-Key")'
http POST /tasks -H "$J" -H 'Idempotency-Key: "held"' -d '{"task":"held, other body"}'
check_eq "in flight, another body: 422" 422 "$STATUS"
http POST /tasks -H "$J" -d "$(json_task "$release")"
check_eq "the release task: 201" 201 "$STATUS"
wait "$HELD_PID"
{ IFS= read -r HELD_STATUS; HELD_BODY=$(cat); } <"$TMP/held.d/answer"
check_eq "the held request completes: 201" "201 held" "$HELD_STATUS $(jq -r .task.task <<<"$HELD_BODY")"
http POST /tasks -H "$J" -H 'Idempotency-Key: "held"' -d '{"task":"held"}'
check_eq "a retry now: the held request's answer" "201 $HELD_BODY" "$STATUS $BODY"
check_eq "one held task" 1 "$(tasks_named held)"

section "Idempotency-Key: expiry (TASKHOST_IDEMPOTENCY_TTL_S, checked by timestamp)"
http POST /tasks -H "$J" -H 'Idempotency-Key: "ttl"' -d '{"task":"ttl 1"}'
EXP=$(rec_expires ttl)
NOW=$(date +%s)
check "default TTL 86400 s: expires_at = now + 86400 (±60)" test $((EXP - NOW - 86400)) -le 60 -a $((EXP - NOW - 86400)) -ge -60
rec_set_expires ttl $((NOW - 1))
http POST /tasks -H "$J" -H 'Idempotency-Key: "ttl"' -d '{"task":"ttl 2"}'
check_eq "an expired key is free again: 201 (not 422)" 201 "$STATUS"
check_eq "a new task" 1 "$(tasks_named 'ttl 2')"

section "Idempotency-Key: 32 concurrent POSTs with one key"
pids=()
for i in $(seq 1 32); do
  curl -s -o "$TMP/conc.$i" -w '%{http_code}\n' -X POST "$BASE_URL/tasks" -H "$J" \
    -H 'Idempotency-Key: "race"' -d '{"task":"race"}' >"$TMP/conc.$i.code" &
  pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the server is a child too
codes=$(cat "$TMP"/conc.*.code | sort | uniq -c | tr -s ' ' | tr '\n' ';')
n201=$(cat "$TMP"/conc.*.code | grep -c '^201$')
n409=$(cat "$TMP"/conc.*.code | grep -c '^409$')
check_eq "every answer 201 or 409 ($codes)" 32 $((n201 + n409))
check "at least one 201" test "$n201" -ge 1
ids=$(for i in $(seq 1 32); do [ "$(cat "$TMP/conc.$i.code")" = 201 ] && jq -r .id "$TMP/conc.$i"; done | sort -u)
check_eq "every 201 names the same task" 1 "$(grep -c . <<<"$ids")"
check_eq "exactly one task" 1 "$(tasks_named race)"
http POST /tasks -H "$J" -H 'Idempotency-Key: "race"' -d '{"task":"race"}'
check_eq "a retry after the race names it too" "201 $ids" "$STATUS $(jq -r .id <<<"$BODY")"
fi

section "ETag / If-Match / If-None-Match"
http POST /tasks -H "$J" -d '{"task":"etag"}'
TID=$(jq -r .id <<<"$BODY")
check_eq "POST: ETag" '"1"' "$(hdr ETag)"
check_jq "the version is not in the body" "$BODY" '.task | has("version") | not'
http GET "/tasks/$TID"
check_eq "GET: ETag" '"1"' "$(hdr ETag)"
http GET "/tasks/$TID" -H 'If-None-Match: "1"'
check_eq "GET If-None-Match match: 304" 304 "$STATUS"
check_eq "304: no body" "" "$BODY"
check_eq "304: ETag kept" '"1"' "$(hdr ETag)"
check_eq "304: CORS kept" '*' "$(hdr Access-Control-Allow-Origin)"
http GET "/tasks/$TID" -H 'If-None-Match: W/"1"'
check_eq "If-None-Match weak tag: 304 (weak comparison)" 304 "$STATUS"
http GET "/tasks/$TID" -H 'If-None-Match: "7", "9"'
check_eq "If-None-Match no match: 200" 200 "$STATUS"
http PUT "/tasks/$TID" -H "$J" -H 'If-Match: "2"' -d '{"status":"completed"}'
check_eq "PUT If-Match stale: 412" "412 Precondition failed" "$STATUS $(jq -r .message <<<"$BODY")"
http GET "/tasks/$TID"
check_eq "unchanged after the 412" "new" "$(jq -r .status <<<"$BODY")"
http PUT "/tasks/$TID" -H "$J" -H 'If-Match: W/"1"' -d '{"status":"completed"}'
check_eq "PUT If-Match weak: 412 (strong comparison)" 412 "$STATUS"
http PUT "/tasks/$TID" -H "$J" -H 'If-Match: "5", "1"' -d '{"status":"in_progress"}'
check_eq "PUT If-Match list holding the version: 200" 200 "$STATUS"
check_eq "PUT: the new ETag" '"2"' "$(hdr ETag)"
http PUT "/tasks/$TID" -H "$J" -H 'If-Match: *' -d '{"priority":"low"}'
check_eq "PUT If-Match *: 200" "200 \"3\"" "$STATUS $(hdr ETag)"
http PUT "/tasks/$TID" -H "$J" -d '{"priority":"high"}'
check_eq "PUT without If-Match: 200 as before" "200 \"4\"" "$STATUS $(hdr ETag)"
http PUT "/tasks/$TID" -H "$J" -H 'If-Match: not-a-tag' -d '{"priority":"high"}'
check_eq "PUT malformed If-Match: 400" 400 "$STATUS"
http DELETE "/tasks/$TID" -H 'If-Match: "3"'
check_eq "DELETE If-Match stale: 412" 412 "$STATUS"
http DELETE "/tasks/$TID" -H 'If-Match: "4"'
check_eq "DELETE If-Match current: 200" 200 "$STATUS"
http DELETE "/tasks/$TID" -H 'If-Match: *'
check_eq "DELETE If-Match * on a missing task: 412" 412 "$STATUS"
http PUT "/tasks/$TID" -H "$J" -d '{"priority":"high"}'
check_eq "PUT without If-Match on a missing task: 404 as before" 404 "$STATUS"
# A task written before versions (NULL version): version 1.
http POST /tasks -H "$J" -d '{"task":"old item"}'
OID=$(jq -r .id <<<"$BODY")
if [ "$ON_SQLITE" = 1 ]; then
  sql "UPDATE items SET version = NULL WHERE id = ?" "$OID"
else
  aws dynamodb update-item --table-name "$TABLE_NAME" --update-expression 'REMOVE version' \
    --key "{\"user_id\":{\"S\":\"public\"},\"id\":{\"S\":\"$OID\"}}"
  check_eq "dynalite: the version attribute removed" "" \
    "$(aws dynamodb get-item --table-name "$TABLE_NAME" --consistent-read --output json \
      --key "{\"user_id\":{\"S\":\"public\"},\"id\":{\"S\":\"$OID\"}}" | jq -r '.Item.version.N // empty')"
fi
http GET "/tasks/$OID"
check_eq "an item without a version: ETag \"1\"" '"1"' "$(hdr ETag)"
http PUT "/tasks/$OID" -H "$J" -H 'If-Match: "1"' -d '{"priority":"high"}'
check_eq "…and If-Match \"1\" holds: 200 \"2\"" "200 \"2\"" "$STATUS $(hdr ETag)"

section "32 concurrent PUTs with one If-Match"
pids=()
http POST /tasks -H "$J" -d '{"task":"edit race"}'
EID=$(jq -r .id <<<"$BODY")
for i in $(seq 1 32); do
  curl -s -o "$TMP/put.$i" -w '%{http_code}\n' -X PUT "$BASE_URL/tasks/$EID" -H "$J" \
    -H 'If-Match: "1"' -d "{\"task\":\"writer $i\"}" >"$TMP/put.$i.code" &
  pids+=($!)
done
wait "${pids[@]}"
n200=$(cat "$TMP"/put.*.code | grep -c '^200$')
n412=$(cat "$TMP"/put.*.code | grep -c '^412$')
check_eq "exactly one 200" 1 "$n200"
check_eq "the other 31: 412" 31 "$n412"
winner=""
for i in $(seq 1 32); do [ "$(cat "$TMP/put.$i.code")" = 200 ] && winner=$(jq -r .task.task "$TMP/put.$i"); done
http GET "/tasks/$EID"
check_eq "the final task is the winner's" "$winner" "$(jq -r .task <<<"$BODY")"
check_eq "…at version 2" '"2"' "$(hdr ETag)"
if [ "${E2E_TRANSPORT:-serve}" = lambda ]; then
  check "the requests were spread over more than one instance ($(lambda_instances_used))" \
    test "$(lambda_instances_used)" -ge 2
fi

section "CORS: the new request headers in preflights"
http OPTIONS /tasks -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST'
for h in If-Match If-None-Match Idempotency-Key; do
  check_match "preflight allows $h" "(^|, ?)$h(,|\$)" "$(hdr Access-Control-Allow-Headers)"
done
check_match "ETag exposed" '(^|, ?)ETag(,|$)' "$(hdr Access-Control-Expose-Headers)"
serve_stop

section "the Lambda path (--local)"
api v2 POST /tasks -b '{"task":"lambda etag"}'
expect "POST without a key" 201
LID=$(jq -r .id <<<"$BODY")
check_eq "POST: ETag" '"1"' "$(header_of ETag)"
api v2 PUT "/tasks/$LID" -H 'If-Match: "9"' -b '{"status":"completed"}'
expect "If-Match stale: 412" 412
api v1 PUT "/tasks/$LID" -H 'If-Match: "1"' -b '{"status":"completed"}'
expect "If-Match current (v1 event): 200" 200
api v2 GET "/tasks/$LID" -H 'If-None-Match: "2"'
expect "If-None-Match: 304" 304
check_eq "304: no body" "" "$BODY"
if [ "$KEYED" = 1 ]; then
api v2 POST /tasks -H 'Idempotency-Key: "lambda-1"' -b '{"task":"via lambda"}'
expect "first invocation" 201
L1=$BODY
LLOC=$(header_of Location)
api v2 POST /tasks -H 'Idempotency-Key: "lambda-1"' -b '{"task":"via lambda"}'
expect "second invocation" 201
check_eq "the same body" "$L1" "$BODY"
check_eq "the same Location" "$LLOC" "$(header_of Location)"
check_eq "one task" 1 "$(tasks_named 'via lambda')"
api v1 POST /tasks -H 'Idempotency-Key: "lambda-1"' -b '{"task":"via lambda, v1"}'
expect "v1 event, another body: 422" 422
fi
finish
