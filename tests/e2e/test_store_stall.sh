#!/usr/bin/env bash
# A store that does not answer: store calls end by the route's deadline, and a
# second signal stops --serve at once without dropping an answer. On SQLite
# (default) another process holds the write lock (python3's sqlite3, BEGIN
# EXCLUSIVE); on DynamoDB (E2E_STORE=dynamodb, under with_dynalite.sh)
# tests/faults/fault_proxy.py holds the request without answering.
#
#   - the deadline, through --local, --serve and the Lambda loop, with
#     TASKHOST_LUA_TIMEOUT_MS=1000: every store operation the stall reaches
#     (SQLite: the writes — in WAL, readers are not blocked by a writer;
#     DynamoDB: all five) is answered 503 {"message": ...} with Retry-After: 1
#     within the budget plus a generous margin; --local exits 0, the Lambda
#     runtime keeps running, no watchdog (`stuck_in_c_call`); the log line
#     `store operation failed` (error "timeout") carries the request's id.
#     The reads SQLite does not block answer 200. Once the stall ends, every
#     operation works again. A route that works on for a few milliseconds
#     (~300,000 Lua instructions; the budget hook looks at the clock every
#     1000) after its store call timed out still gives its own answer: the
#     store's deadline comes before the route's.
#   - a second SIGTERM in --serve, with a create waiting on the store and a
#     20 s budget: the server exits 0 within 3 s of the second signal, the
#     client gets the 503, the log says "stopping now". SQLite: the item is
#     not there (the write never happened). DynamoDB: the proxy forwards the
#     PutItem 8 s late, so the item lands after the 503 — the case README
#     lists under "Writes whose outcome is unknown".
#   - (SQLite only; backend-independent) a route stuck in one C call at the
#     second signal: the server exits with status 1 within 3 s, logging the
#     request it could not answer.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
unset AWS_LAMBDA_RUNTIME_API _X_AMZN_TRACE_ID
PY=${PYTHON:-python3}
STORE=${E2E_STORE:-sqlite}
BUDGET=1000
MARGIN=1500 # generous: a loaded 2-core machine
export TASKHOST_LUA_TIMEOUT_MS=$BUDGET TASKHOST_WORKERS=2

# ---- the stall ----------------------------------------------------------------------
if [ "$STORE" = dynamodb ]; then
  UPSTREAM=$AWS_ENDPOINT_URL_DYNAMODB
  "$PY" "$SOURCE_DIR/tests/faults/fault_proxy.py" --upstream "$UPSTREAM" \
    --port-file "$TMP/proxy.port" --control-port-file "$TMP/control.port" \
    --log "$TMP/proxy.log" 2>>"$TMP/proxy.log" &
  for _ in $(seq 1 100); do [ -s "$TMP/proxy.port" ] && [ -s "$TMP/control.port" ] && break; sleep 0.05; done
  [ -s "$TMP/proxy.port" ] || { fail "the fault proxy starts" "$(cat "$TMP/proxy.log")"; finish; }
  CONTROL="http://127.0.0.1:$(cat "$TMP/control.port")"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$(cat "$TMP/proxy.port")"
  ctl() { curl -s --max-time 5 -X POST "$CONTROL$1" ${2:+-d "$2"} >/dev/null; }
  # stall_on OP [FAULT]: the next request of OP (PutItem, GetItem, UpdateItem,
  # DeleteItem, Query) is held without an answer (hang: reset later, never
  # forwarded), or gets FAULT.
  stall_on() { ctl /reset; ctl /plan "{\"op\":\"$1\",\"faults\":[\"${2:-hang:$((BUDGET + 4000))}\"]}"; }
  stall_off() { ctl /reset; }
else
  DB=${TASKHOST_STORE#sqlite:}
  LOCKER_PID=""
  # stall_on [OP]: another process takes the write lock (whatever the
  # operation) and holds it until stall_off.
  stall_on() {
    rm -f "$TMP/locked" "$TMP/release"
    "$PY" - "$DB" "$TMP/locked" "$TMP/release" <<'PY' 2>"$TMP/locker.err" &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
end = time.time() + 120
while not os.path.exists(sys.argv[3]) and time.time() < end:
    time.sleep(0.02)
db.execute("ROLLBACK")
PY
    LOCKER_PID=$!
    local i
    for i in $(seq 1 250); do [ -e "$TMP/locked" ] && return 0; sleep 0.02; done
    fail "the lock is taken" "$(cat "$TMP/locker.err")"
  }
  stall_off() {
    touch "$TMP/release"
    [ -z "$LOCKER_PID" ] || wait "$LOCKER_PID" 2>/dev/null
    LOCKER_PID=""
  }
fi

# What the stall does to each operation: 503, or 200 for the reads SQLite
# serves under another writer's lock.
want_stalled() {
  if [ "$STORE" = sqlite ] && { [ "$1" = get ] || [ "$1" = list ]; }; then echo 200; else echo 503; fi
}
ddb_op() {
  case $1 in create) echo PutItem ;; get) echo GetItem ;; update) echo UpdateItem ;;
    delete) echo DeleteItem ;; list) echo Query ;; esac
}
# request OP: METHOD PATH BODY for the operation (on task $TID).
request() {
  case $1 in
    create) echo "POST /tasks {\"task\":\"stalled-$RANDOM\"}" ;;
    get) echo "GET /tasks/$TID" ;;
    update) echo "PUT /tasks/$TID {\"status\":\"completed\"}" ;;
    delete) echo "DELETE /tasks/$TID" ;;
    list) echo "GET /tasks" ;;
  esac
}

# answer_503 NAME BODY RETRY_AFTER: the JSON 503 routes give for an
# unavailable store.
answer_503() {
  check_jq "$1: JSON message" "$2" '. == {"message": "Service temporarily unavailable"}'
  check_eq "$1: Retry-After" 1 "$3"
}
within() { # within NAME MS LIMIT
  if [ "$2" -lt "$3" ]; then pass; else fail "$1: within $3 ms" "took $2 ms"; fi
}
# logged_timeout NAME LOG RID: "store operation failed" (a timeout) with the id.
logged_timeout() {
  check "$1: 'store operation failed' (timeout) logged with the request id" jq -e -s --arg rid "$3" \
    'any(.[]; .requestId == $rid and .message == "store operation failed" and .error == "timeout"
      and .kind == "unavailable")' "$2"
}
OPS="create get update list delete"

# A task for get/update/delete, made before any stall.
new_task() {
  api v2 POST /tasks -b '{"task":"target of a stalled call"}'
  TID=$(jq -r '.id // empty' <<<"$BODY")
  [ -n "$TID" ] || fail "setup: a task to work on" "$OUT"
}

# ---- --local -------------------------------------------------------------------------
section "$STORE: --local, every operation with the store stalled (budget $BUDGET ms)"
new_task
for op in $OPS; do
  read -r method path body <<<"$(request "$op")"
  want=$(want_stalled "$op")
  stall_on "$(ddb_op "$op")"
  t0=$(ms_now)
  if [ -n "$body" ]; then api v2 "$method" "$path" -b "$body"; else api v2 "$method" "$path"; fi
  ms=$(($(ms_now) - t0))
  stall_off
  echo "      --local $op: $STATUS in $ms ms (exit $RC)"
  check_eq "--local $op: exit status (not the watchdog's 3)" 0 "$RC"
  check_eq "--local $op: status" "$want" "$STATUS"
  within "--local $op" "$ms" $((BUDGET + MARGIN))
  if ! grep -q stuck_in_c_call <<<"$ERR"; then pass; else fail "--local $op: no watchdog" "$ERR"; fi
  if [ "$want" = 503 ]; then
    answer_503 "--local $op" "$BODY" "$(header_of Retry-After)"
    printf '%s\n' "$ERR" >"$TMP/local.log"
    rid=$(jq -r 'select(.message == "request") | .requestId' "$TMP/local.log" | head -1)
    logged_timeout "--local $op" "$TMP/local.log" "$rid"
  fi
done
section "$STORE: --local, a route that works on after its store call timed out"
# Test routes: /_test/after-store creates, then runs ~300,000 instructions
# (a few ms) before answering; /_test/pattern is stuck in one C call; the
# rest are the real routes.
TEST_ROUTES="$TMP/test-routes"
mkdir -p "$TEST_ROUTES" && cp -r "$ROUTES_DIR"/. "$TEST_ROUTES/"
cp "$SOURCE_DIR/tests/e2e/c_call_bombs.lua" "$TEST_ROUTES/"
mv "$TEST_ROUTES/routes.lua" "$TEST_ROUTES/base_routes.lua"
cat >"$TEST_ROUTES/routes.lua" <<'LUA'
local base = require("base_routes")
local store = require("store")
local M = {}
for k, v in pairs(base) do M[k] = v end
function M.handle(req)
  if req.path == "/_test/after-store" then
    local ok, err = store.create({ id = req.request_id, task = "after-store" })
    local n = 0
    for i = 1, 100000 do n = n + i end
    return { status = ok and 201 or 503, body = { message = err and err.kind or "created", n = n } }
  elseif req.path == "/_test/pattern" then
    return require("c_call_bombs").pattern()
  end
  return base.handle(req)
end
return M
LUA
stall_on PutItem
TASKHOST_ROUTES="$TEST_ROUTES" api v2 POST /_test/after-store -b '{}'
stall_off
check_eq "after-store: the route's own answer, not the budget's 500" 503 "$STATUS"
check_jq "after-store: the store error reached the route" "$BODY" '.message == "unavailable"'
if grep -q '"route failed"' <<<"$ERR"; then fail "after-store: no 'route failed'" "$ERR"; else pass; fi

section "$STORE: --local, the store released: every operation works"
new_task
api v2 GET "/tasks/$TID"; expect "--local get after" 200
api v2 PUT "/tasks/$TID" -b '{"status":"completed"}'; expect "--local update after" 200
api v2 GET /tasks; expect "--local list after" 200
api v2 DELETE "/tasks/$TID"; expect "--local delete after" 200

# ---- --serve -------------------------------------------------------------------------
section "$STORE: --serve, every operation with the store stalled (budget $BUDGET ms)"
serve_start || { fail "--serve starts"; finish; }
http POST /tasks -H 'Content-Type: application/json' --data-binary '{"task":"target"}'
TID=$(jq -r '.id // empty' <<<"$BODY")
for op in $OPS; do
  read -r method path body <<<"$(request "$op")"
  want=$(want_stalled "$op")
  stall_on "$(ddb_op "$op")"
  t0=$(ms_now)
  if [ -n "$body" ]; then
    http "$method" "$path" -H 'Content-Type: application/json' --data-binary "$body"
  else
    http "$method" "$path"
  fi
  ms=$(($(ms_now) - t0))
  stall_off
  echo "      --serve $op: $STATUS in $ms ms"
  check_eq "--serve $op: status" "$want" "$STATUS"
  within "--serve $op" "$ms" $((BUDGET + MARGIN))
  [ "$want" = 503 ] && answer_503 "--serve $op" "$BODY" "$(hdr Retry-After)"
done
http POST /tasks -H 'Content-Type: application/json' --data-binary '{"task":"after"}'
check_eq "--serve create after the stall" 201 "$STATUS"
http GET "/tasks/$TID"; check_eq "--serve get after the stall" 200 "$STATUS"
http PUT "/tasks/$TID" -H 'Content-Type: application/json' --data-binary '{"status":"completed"}'
check_eq "--serve update after the stall" 200 "$STATUS"
http GET /tasks; check_eq "--serve list after the stall" 200 "$STATUS"
http DELETE "/tasks/$TID"; check_eq "--serve delete after the stall" 200 "$STATUS"
serve_stop TERM
n503=$(jq -s '[.[] | select(.message == "request" and .status == 503)] | length' "$SERVE_LOG")
ntimeout=$(jq -s '[.[] | select(.message == "store operation failed" and .error == "timeout")] | length' "$SERVE_LOG")
check_eq "--serve: one 'store operation failed' (timeout) per 503" "$n503" "$ntimeout"
check "--serve: each with the id of a 503 request" jq -e -s '
  [.[] | select(.message == "request" and .status == 503) | .requestId] as $ids
  | all(.[] | select(.message == "store operation failed"); .requestId as $r | $ids | index($r))' "$SERVE_LOG"
check "--serve: no route stopped by its budget" bash -c "! grep -q '\"route failed\"' '$SERVE_LOG'"

# ---- the Lambda loop -----------------------------------------------------------------
section "$STORE: the Lambda loop, every operation with the store stalled (budget $BUDGET ms)"
rapi_start --dynamic || { fail "the Runtime API test server starts"; finish; }
rt_start
lambda_api v2 POST /tasks -b '{"task":"target"}'
TID=$(jq -r '.id // empty' <<<"$BODY")
for op in $OPS; do
  read -r method path body <<<"$(request "$op")"
  want=$(want_stalled "$op")
  stall_on "$(ddb_op "$op")"
  ev=$(if [ -n "$body" ]; then event v2 "$method" "$path" -b "$body"; else event v2 "$method" "$path"; fi | jq -c .)
  rid="stalled-$op-$RANDOM"
  lambda_send "$(jq -c --arg rid "$rid" '{request_id: $rid, deadline_in_ms: 10000, event: .}' <<<"$ev")" ||
    fail "Lambda $op: answered"
  stall_off
  handed=$(records ".kind == \"next\" and .request_id == \"$rid\"" | jq -r '.t')
  arrived=$(jq -r '.t // 0' <<<"$REC")
  ms=$((${arrived:-0} - ${handed:-0}))
  echo "      Lambda $op: $STATUS in $ms ms"
  check_eq "Lambda $op: a response" response "$KIND"
  check_eq "Lambda $op: status" "$want" "$STATUS"
  within "Lambda $op" "$ms" $((BUDGET + MARGIN))
  if [ "$want" = 503 ]; then
    answer_503 "Lambda $op" "$BODY" "$(jq -r '.headers["Retry-After"] // empty' <<<"$OUT")"
    logged_timeout "Lambda $op" "$RT_LOG" "$rid"
  fi
  check "Lambda $op: the runtime is still running" kill -0 "$RT_PID"
done
lambda_api v2 GET "/tasks/$TID"; expect "Lambda get after the stall" 200
rt_term
check_eq "Lambda: exits 0 on SIGTERM" 0 "$RT_RC"
check "Lambda: no watchdog" bash -c "! grep -q stuck_in_c_call '$RT_LOG'"
rapi_stop

# ---- a second signal in --serve -------------------------------------------------------
# two_signals: SIGTERM, 0.5 s, SIGTERM; waits up to 10 s for the server to
# exit (then kills it). Sets exit_ms (after the second signal) and rc.
two_signals() {
  kill -TERM "$SERVER_PID"
  sleep 0.5
  local t0 i
  t0=$(ms_now)
  kill -TERM "$SERVER_PID"
  for i in $(seq 1 1000); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.01; done
  exit_ms=$(($(ms_now) - t0))
  kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null
  rc=$?
  SERVER_PID=""
}
section "$STORE: --serve, a create waiting on the store, then two SIGTERMs 0.5 s apart"
# A 20 s budget: only the second signal can end the wait.
TASKHOST_LUA_TIMEOUT_MS=20000 serve_start || { fail "--serve starts"; finish; }
text="in flight at the second signal $RANDOM"
stall_on PutItem delay:8000 # SQLite: the lock
curl -s -o "$TMP/inflight.body" -D "$TMP/inflight.hdr" -w '%{http_code}' --max-time 30 \
  -X POST "$BASE_URL/tasks" -H 'Content-Type: application/json' \
  --data-binary "$(json_task "$text")" >"$TMP/inflight.code" 2>/dev/null &
client=$!
sleep 1
two_signals
wait "$client"
echo "      exit ${exit_ms} ms after the second SIGTERM (status $rc); the client got $(cat "$TMP/inflight.code")"
within "second SIGTERM: the server exits" "$exit_ms" 3000
check_eq "second SIGTERM: exit status 0 (every request answered)" 0 "$rc"
check_eq "second SIGTERM: the client got 503" 503 "$(cat "$TMP/inflight.code")"
answer_503 "second SIGTERM" "$(cat "$TMP/inflight.body")" \
  "$(tr -d '\r' <"$TMP/inflight.hdr" | awk -F': ' 'tolower($1) == "retry-after" {print $2}')"
check "second SIGTERM: 'stopping now' logged" jq -e -s \
  'any(.[]; .message | startswith("stopping now")) and any(.[]; .reason == "second signal")' "$SERVE_LOG"
check "second SIGTERM: the 503 logged" jq -e -s \
  'any(.[]; .message == "request" and .status == 503 and .method == "POST")' "$SERVE_LOG"
stall_off
# Where the write went: listed through --local (no fault planned any more).
found=""
for _ in $(seq 1 30); do
  api v2 GET /tasks -q limit=100
  found=$(jq --arg t "$text" '[.items[] | select(.task == $t)] | length' <<<"$BODY" 2>/dev/null)
  [ "$STORE" = dynamodb ] && [ "$found" != 1 ] || break
  sleep 0.5 # the proxy forwards the PutItem 8 s after it came
done
if [ "$STORE" = dynamodb ]; then
  check_eq "second SIGTERM: the cut create lands later (README: outcome unknown)" 1 "$found"
else
  check_eq "second SIGTERM: the create that waited on the lock never happened" 0 "$found"
fi

# ---- a route that cannot be stopped ----------------------------------------------------
if [ "$STORE" = sqlite ]; then
  section "--serve, a route stuck in one C call at the second SIGTERM"
  TASKHOST_ROUTES="$TEST_ROUTES" TASKHOST_LUA_TIMEOUT_MS=20000 serve_start || { fail "--serve starts"; finish; }
  curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$BASE_URL/_test/pattern" >"$TMP/stuck.code" 2>/dev/null &
  client=$!
  sleep 1
  two_signals
  wait "$client"
  echo "      exit ${exit_ms} ms after the second SIGTERM (status $rc); the client got $(cat "$TMP/stuck.code")"
  within "stuck route: the server exits anyway" "$exit_ms" 3000
  check_eq "stuck route: exit status 1 (a request left unanswered)" 1 "$rc"
  check_eq "stuck route: the client got no answer" 000 "$(cat "$TMP/stuck.code")"
  check "stuck route: logged" jq -e -s \
    'any(.[]; .message | startswith("exiting with requests unanswered")) and any(.[]; .requests == 1)' "$SERVE_LOG"
fi

# The sanitizer build: no report in the servers' and runtimes' logs (a --local
# run with one would not have exited 0).
if grep -l 'AddressSanitizer\|runtime error:\|LeakSanitizer' "$TMP"/*.log "$TMP"/err 2>/dev/null; then
  fail "no sanitizer report in the logs"
else
  pass
fi

finish
