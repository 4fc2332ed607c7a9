#!/usr/bin/env bash
# End to end over real HTTP: `taskhost --serve 127.0.0.1:PORT` and curl.
# CRUD and 404s, a sample of the validation errors, 405 + Allow, CORS
# preflight, 413, pagination over 260 items created in parallel, 40 concurrent
# requests, data surviving a restart, hot reload of edited route scripts,
# clean stops on SIGTERM and SIGINT, start-up failures.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export TASKHOST_STORE="sqlite:$TMP/serve.db"
JSON=(-H 'Content-Type: application/json')
ALL_IDS="$TMP/all.ids" # every task that should exist
: >"$ALL_IDS"

section "start"
if ! serve_start; then
  fail "server starts and answers"
  finish
fi
pass
check "log: a JSON 'listening' line with the address" \
  jq -e -s --arg a "127.0.0.1:$PORT" 'any(.[]; .message == "listening" and .address == $a)' "$SERVE_LOG"
FIRST_PID=$SERVER_PID

section "create / read / update / delete"
http POST /tasks "${JSON[@]}" --data-binary '{"task":"Write documentation"}'
expect "create" 201 '(keys == ["id", "task"]) and .task.id == .id and .task.task == "Write documentation"
  and .task.status == "new" and .task.priority == "medium"
  and (.task.created_at | type == "number" and . == floor) and .task.updated_at == .task.created_at'
id=$(jq -r '.id' <<<"$BODY")
created=$(jq -c '.task' <<<"$BODY")
echo "$id" >>"$ALL_IDS"
check_match "create: id is a UUID" "$UUID_RE" "$id"
check_eq "create: Location" "/tasks/$id" "$(hdr Location)"
check_match "create: Content-Type" '^application/json' "$(hdr Content-Type)"

http GET "/tasks/$id"
expect "get" 200 '. == $c' --argjson c "$created"
http GET "/tasks/$id/"
expect "get with a trailing slash" 200 '.id == $id' --arg id "$id"

sleep 1.1
http PUT "/tasks/$id" "${JSON[@]}" --data-binary '{"status":"completed"}'
expect "update" 200 '.message == "Task updated successfully" and .task.status == "completed"
  and .task.task == $c.task and .task.priority == $c.priority and .task.id == $c.id
  and .task.created_at == $c.created_at and .task.updated_at > $c.updated_at' --argjson c "$created"
updated=$(jq -c '.task' <<<"$BODY")
http GET "/tasks/$id"
expect "get after update" 200 '. == $u' --argjson u "$updated"

http POST /tasks "${JSON[@]}" --data-binary '{"task":"delete me","priority":"low"}'
expect "create another" 201
gone=$(jq -r '.id' <<<"$BODY")
http DELETE "/tasks/$gone"
expect "delete" 200 '. == {"message": "Task deleted successfully", "id": $id}' --arg id "$gone"
http GET "/tasks/$gone"
expect "get deleted" 404 '. == {"message": "Task not found"}'
http PUT "/tasks/$gone" "${JSON[@]}" --data-binary '{"status":"new"}'
expect "put deleted" 404 '. == {"message": "Task not found"}'
http DELETE "/tasks/$gone"
expect "delete deleted" 404 '. == {"message": "Task not found"}'
http GET /tasks/not-a-uuid
expect "malformed id" 404 '. == {"message": "Task not found"}'

section "unicode and query strings"
text="Überprüfen — 日本語 ✓ \"quoted\" \\ back"
http POST /tasks "${JSON[@]}" --data-binary "$(json_task "$text")"
expect "unicode task" 201 '.task.task == $t' --arg t "$text"
echo "$(jq -r '.id' <<<"$BODY")" >>"$ALL_IDS"
http POST /tasks "${JSON[@]}" --data-binary "$(json_task "$(repeat_char é 1000)")"
expect "1000 × é" 201 '.task.task | length == 1000'
echo "$(jq -r '.id' <<<"$BODY")" >>"$ALL_IDS"
http GET '/tasks?limit=%32'
expect "percent-encoded limit (%32 = 2)" 200 '.count == 2'

section "validation (a sample)"
http POST /tasks "${JSON[@]}" --data-binary '{}'
expect_error "missing task" 400 task "^'task' is required$"
http POST /tasks "${JSON[@]}" --data-binary '{"task":"   "}'
expect_error "blank task" 400 task "^'task' must not be empty$"
http POST /tasks "${JSON[@]}" --data-binary "$(json_task "$(repeat_char a 1001)")"
expect_error "1001 chars" 400 task "^'task' must be at most 1000 characters$"
http POST /tasks "${JSON[@]}" --data-binary '{"task":7}'
expect_error "task not a string" 400 task "^'task' must be a string$"
http POST /tasks "${JSON[@]}" --data-binary '{"task":"x","status":"done"}'
expect_error "bad status" 400 status "^'status' must be one of"
http POST /tasks "${JSON[@]}" --data-binary '{"task":"x","priority":"asap"}'
expect_error "bad priority" 400 priority "^'priority' must be one of"
http POST /tasks "${JSON[@]}" --data-binary '{"task":'
expect_error "malformed JSON" 400 body "^Request body is not valid JSON"
for b in null '"x"' '[]' 3; do
  http POST /tasks "${JSON[@]}" --data-binary "$b"
  expect_error "body $b" 400 body "^Request body must be a JSON object$"
done
http POST /tasks "${JSON[@]}"
expect_error "no body" 400 body "^Request body is required$"
http POST /tasks "${JSON[@]}" --data-binary '{"task":"x","owner":"me"}'
expect_error "unknown field" 400 owner "^Unknown field 'owner'$"
http POST /tasks "${JSON[@]}" --data-binary '{"task":"x","created_at":1}'
expect_error "read-only field" 400 created_at "^'created_at' is read-only$"
http PUT "/tasks/$id" "${JSON[@]}" --data-binary '{}'
expect_error "empty update" 400 body "^Request body has no fields to update"
http POST /tasks -H 'Content-Type: text/plain' --data-binary '{"task":"x"}'
expect "text/plain" 415
for lim in 0 -1 101 abc 1.5; do
  http GET "/tasks?limit=$lim"
  expect_error "limit=$lim" 400 limit "^'limit' must be an integer from 1 to 100$"
done
http GET '/tasks?next=garbage'
expect_error "garbage cursor" 400 next "^'next' is not a valid pagination token$"
http GET '/tasks?limit=1'
cursor=$(jq -r '.next' <<<"$BODY")
mid=$(( ${#cursor} / 2 ))
c=${cursor:$mid:1}
if [ "$c" = A ]; then c=B; else c=A; fi
http GET "/tasks?next=${cursor:0:$mid}$c${cursor:$((mid + 1))}"
expect_error "tampered cursor" 400 next "^'next' is not a valid pagination token$"

section "routing, methods, CORS"
for p in / /nope /tasks/a/b; do
  http GET "$p"
  expect "unknown path $p" 404 '. == {"message": "Not found"}'
done
http DELETE /tasks
expect "DELETE /tasks" 405 '.message == "Method not allowed"'
check_eq "DELETE /tasks: Allow" "GET, POST, OPTIONS" "$(hdr Allow)"
http PATCH "/tasks/$id" "${JSON[@]}" --data-binary '{"status":"new"}'
expect "PATCH /tasks/{id}" 405
check_eq "PATCH /tasks/{id}: Allow" "GET, PUT, DELETE, OPTIONS" "$(hdr Allow)"
http HEAD /tasks
check_eq "HEAD /tasks: 405" 405 "$STATUS"
check_eq "HEAD /tasks: Allow" "GET, POST, OPTIONS" "$(hdr Allow)"

http OPTIONS /tasks -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: content-type'
check_match "preflight /tasks: 204 or 200" '^20[04]$' "$STATUS"
check_eq "preflight /tasks: Access-Control-Allow-Origin" "*" "$(hdr Access-Control-Allow-Origin)"
check_match "preflight /tasks: Access-Control-Allow-Methods" '(^|, ?)POST(,|$)' "$(hdr Access-Control-Allow-Methods)"
check_match "preflight /tasks: Access-Control-Allow-Headers" '(^|, ?)Content-Type(,|$)' \
  "$(hdr Access-Control-Allow-Headers)"
http OPTIONS "/tasks/$id" -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: PUT'
check_match "preflight /tasks/{id}: 204 or 200" '^20[04]$' "$STATUS"
check_match "preflight /tasks/{id}: methods" 'PUT' "$(hdr Access-Control-Allow-Methods)"

section "413"
f="$TMP/70k.json"
{ printf '{"task":"'; repeat_char x 71680; printf '"}'; } >"$f"
http POST /tasks "${JSON[@]}" --data-binary "@$f"
expect "70 KB body" 413 '.message == "Request body too large"'
check_eq "413 has CORS" "*" "$(hdr Access-Control-Allow-Origin)"
http POST /tasks "${JSON[@]}" -H 'Transfer-Encoding: chunked' --data-binary "@$f"
expect "70 KB chunked body" 413 '.message == "Request body too large"'
http PUT "/tasks/$id" "${JSON[@]}" --data-binary "@$f"
expect "70 KB PUT" 413
f="$TMP/64k.json"
{ printf '{"task":"x"'; repeat_char ' ' $((65536 - 12)); printf '}'; } >"$f"
http POST /tasks "${JSON[@]}" --data-binary "@$f"
expect "a body of exactly 65536 bytes" 201 '.task.task == "x"'
echo "$(jq -r '.id' <<<"$BODY")" >>"$ALL_IDS"
http POST /tasks "${JSON[@]}" -H 'Transfer-Encoding: chunked' --data-binary "@$f"
expect "a chunked body of exactly 65536 bytes" 201 '.task.task == "x"'
echo "$(jq -r '.id' <<<"$BODY")" >>"$ALL_IDS"
f="$TMP/64k1.json"
{ printf '{"task":"x"'; repeat_char ' ' $((65537 - 12)); printf '}'; } >"$f"
http POST /tasks "${JSON[@]}" --data-binary "@$f"
expect "a body of 65537 bytes" 413 '.message == "Request body too large"'
http POST /tasks "${JSON[@]}" -H 'Expect: 100-continue' --data-binary "@$f"
expect "a body of 65537 bytes with Expect: 100-continue" 413 '.message == "Request body too large"'
http GET "/tasks/$id"
expect "the server still answers after 413s" 200

section "260 tasks created in parallel, then pagination"
mkdir -p "$TMP/c"
seq 1 260 | xargs -P 8 -I{} curl -s --max-time 30 -o "$TMP/c/{}.json" -w '%{http_code}\n' \
  -X POST -H 'Content-Type: application/json' --data-binary '{"task":"parallel {}"}' \
  "$BASE_URL/tasks" >"$TMP/c/codes"
check_eq "260 parallel creates: all 201" "260" "$(grep -c '^201$' "$TMP/c/codes")"
jq -r '.id' "$TMP"/c/[0-9]*.json >>"$ALL_IDS"
check_eq "260 parallel creates: distinct ids" "$(wc -l <"$ALL_IDS")" "$(sort -u "$ALL_IDS" | wc -l)"

fetch_http() { http GET "/tasks?limit=$1${2:+&next=$2}"; }
for lim in 1 25 100; do
  paginate "HTTP limit $lim" "$lim" fetch_http "$ALL_IDS"
done
http GET /tasks
expect "default limit is 25" 200 '.count == 25 and (.next | type) == "string"'

section "40 concurrent requests"
pids=()
for i in $(seq 1 40); do
  if [ $((i % 2)) -eq 0 ]; then
    curl -s --max-time 30 -o "$TMP/cc.$i.json" -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' --data-binary "{\"task\":\"concurrent $i\"}" \
      "$BASE_URL/tasks" >"$TMP/cc.$i.code" &
  else
    curl -s --max-time 30 -o "$TMP/cc.$i.json" -w '%{http_code}' "$BASE_URL/tasks?limit=100" \
      >"$TMP/cc.$i.code" &
  fi
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
ok=0
for i in $(seq 1 40); do
  code=$(cat "$TMP/cc.$i.code" 2>/dev/null)
  if [ $((i % 2)) -eq 0 ]; then
    [ "$code" = 201 ] && jq -e '.task.task == $t' --arg t "concurrent $i" "$TMP/cc.$i.json" >/dev/null &&
      ok=$((ok + 1)) && jq -r '.id' "$TMP/cc.$i.json" >>"$ALL_IDS"
  else
    [ "$code" = 200 ] && jq -e '.count == 100' "$TMP/cc.$i.json" >/dev/null && ok=$((ok + 1))
  fi
done
check_eq "40 concurrent requests (20 creates, 20 lists) all succeed" 40 "$ok"
check_eq "the server is still the same process" "$FIRST_PID" "$SERVER_PID"
check "the server is still running" kill -0 "$SERVER_PID"

section "headers on every response"
check_eq "all $HTTP_COUNT responses carry Access-Control-Allow-Origin and nosniff" "" "$(cat "$HTTP_LOG")"

section "logs"
check "every server log line is a JSON object" \
  jq -e -s 'length > 0 and all(.[]; type == "object" and (.timestamp | type) == "string")' "$SERVE_LOG"
check "routed requests: request lines with requestId/method/path/status/durationMs" \
  jq -e -s 'map(select(.message == "request" and .status != 413)) | length > 300 and all(.[];
    (.requestId | type) == "string" and (.method | type) == "string" and (.path | type) == "string"
    and (.status | type) == "number" and (.durationMs | type) == "number")' "$SERVE_LOG"
check "a 413 is logged as a request" \
  jq -e -s 'any(.[]; .message == "request" and .status == 413 and .method == "POST" and .path == "/tasks")' "$SERVE_LOG"
check "413 request lines carry requestId and durationMs like every other request line" \
  jq -e -s 'map(select(.message == "request" and .status == 413)) | length > 0 and all(.[];
    (.requestId | type) == "string" and (.durationMs | type) == "number")' "$SERVE_LOG"

section "SIGTERM drains an in-flight request; restart on the same database"
# A create whose 40 KB body trickles in over ~2.5 s: SIGTERM arrives mid-upload.
f="$TMP/slow.json"
{ printf '{"task":"slow upload"'; repeat_char ' ' $((40000 - 22)); printf '}'; } >"$f"
curl -s --max-time 30 --limit-rate 16k -o "$TMP/slow.out" -w '%{http_code}' -X POST "${JSON[@]}" \
  --data-binary "@$f" "$BASE_URL/tasks" >"$TMP/slow.code" &
slow_pid=$!
sleep 0.7
serve_stop TERM
wait "$slow_pid"
check_eq "the upload in flight at SIGTERM still gets its 201" 201 "$(cat "$TMP/slow.code")"
slow_id=$(jq -r '.id // empty' "$TMP/slow.out" 2>/dev/null)
[ -n "$slow_id" ] && echo "$slow_id" >>"$ALL_IDS"
check "SIGTERM: 'shutting down' logged" \
  jq -e -s 'any(.[]; .message == "shutting down" and .signal == "SIGTERM")' "$SERVE_LOG"
check "SIGTERM: the port is free again" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null"
if serve_start; then pass; else fail "server starts again"; finish; fi
http GET "/tasks/$id"
expect "after restart: the task is there" 200 '. == $u' --argjson u "$updated"
http GET "/tasks/$gone"
expect "after restart: the deleted task is still gone" 404
http GET "/tasks/${slow_id:-$ABSENT_ID}"
expect "after restart: the task created during shutdown is there" 200 '.task == "slow upload"'
paginate "after restart, limit 100" 100 fetch_http "$ALL_IDS"

section "SIGKILL right after the 201s: every acknowledged task is there after a restart"
# README (Durability of the SQLite store): a killed process loses no acknowledged
# write (WAL, synchronous=NORMAL); only a power loss or an OS crash can.
: >"$TMP/killed.ids"
for i in $(seq 1 30); do
  http POST /tasks "${JSON[@]}" --data-binary "{\"task\":\"before SIGKILL $i\"}"
  [ "$STATUS" = 201 ] && jq -r '.id' <<<"$BODY" >>"$TMP/killed.ids"
done
check_eq "30 creates answered 201 before SIGKILL" 30 "$(wc -l <"$TMP/killed.ids")"
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=""
cat "$TMP/killed.ids" >>"$ALL_IDS"
if serve_start; then pass; else fail "server starts after SIGKILL"; finish; fi
missing=0
while read -r kid; do
  http GET "/tasks/$kid"
  [ "$STATUS" = 200 ] || missing=$((missing + 1))
done <"$TMP/killed.ids"
check_eq "after SIGKILL and restart: every acknowledged task is there" 0 "$missing"

section "SIGINT"
serve_stop INT
check "SIGINT: 'shutting down' logged" \
  jq -e -s 'any(.[]; .message == "shutting down" and .signal == "SIGINT")' "$SERVE_LOG"

section "hot reload of the route scripts"
cp -R "$ROUTES_DIR" "$TMP/routes"
export TASKHOST_ROUTES="$TMP/routes"
export TASKHOST_STORE="sqlite:$TMP/reload.db"
if serve_start; then pass; else fail "server starts with a copy of the routes"; finish; fi
RELOAD_PID=$SERVER_PID
http POST /tasks "${JSON[@]}" --data-binary '{"task":"eleven char"}'
expect "before the edit: 11 characters are fine" 201
http POST /tasks "${JSON[@]}" --data-binary '{"task":"x","status":"blocked"}'
expect_error "before the edit: status 'blocked' is refused" 400 status "^'status' must be one of"

grep -q '^local MAX_TASK_LENGTH = 1000 ' "$TMP/routes/routes.lua" &&
  grep -q '^local STATUSES = { "new", "in_progress", "completed", "cancelled" }' "$TMP/routes/routes.lua"
check_eq "routes.lua has the constants this test edits" 0 "$?"
sed -i -e 's/^local MAX_TASK_LENGTH = 1000 /local MAX_TASK_LENGTH = 10 /' \
  -e 's/^local STATUSES = { "new", "in_progress", "completed", "cancelled" }/local STATUSES = { "new", "in_progress", "completed", "cancelled", "blocked" }/' \
  "$TMP/routes/routes.lua"

# still_serving NAME: the hot-reload server is alive; when it died, one
# failure with its exit status and the end of its log, and 1.
still_serving() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    pass
    return 0
  fi
  local rc=dead
  if [ -n "$SERVER_PID" ]; then
    wait "$SERVER_PID" 2>/dev/null
    rc=$?
  fi
  SERVER_PID=""
  fail "$1: the server is still running" "it died (exit $rc); log tail: $(tail -n 3 "$SERVE_LOG" | tr '\n' ' ')"
  return 1
}

reload_steps() {
  # A rule with no store call first, then one that writes.
  http POST /tasks "${JSON[@]}" --data-binary '{"task":"eleven char"}'
  expect_error "after the edit: 11 characters are too many" 400 task "^'task' must be at most 10 characters$"
  still_serving "after the edit, a request that fails validation" || return
  http POST /tasks "${JSON[@]}" --data-binary '{"task":"x","status":"blocked"}'
  expect "after the edit: status 'blocked' is accepted (a store write)" 201 '.task.status == "blocked"'
  still_serving "after the edit, a request that writes to the store" || return
  http GET /tasks
  expect "after the edit: list (a store read)" 200 'any(.items[]; .status == "blocked")'
  for i in 1 2 3 4 5 6 7 8; do # every worker has its own Lua state: all must see it
    http POST /tasks "${JSON[@]}" --data-binary '{"task":"'"ok $i"'","status":"blocked"}'
    check_eq "after the edit, create $i on any worker: 201" 201 "$STATUS"
  done
  still_serving "after the edit, requests on every worker" || return
  check_eq "reloaded without a restart" "$RELOAD_PID" "$SERVER_PID"
  check "reload logged" jq -e -s 'any(.[]; .message == "route scripts reloaded")' "$SERVE_LOG"

  echo 'local broken = = 1' >>"$TMP/routes/routes.lua"
  http POST /tasks "${JSON[@]}" --data-binary '{"task":"eleven char"}'
  expect_error "a broken edit: the previous scripts stay in service" 400 task "^'task' must be at most 10 characters$"
  http POST /tasks "${JSON[@]}" --data-binary '{"task":"x","status":"blocked"}'
  expect "a broken edit: creates still work" 201
  still_serving "a broken edit" || return
  check "a broken edit: the error is logged, naming routes.lua" \
    jq -e -s 'any(.[]; .level == "ERROR" and (tostring | test("routes\\.lua:[0-9]+")))' "$SERVE_LOG"

  cp "$ROUTES_DIR/routes.lua" "$TMP/routes/routes.lua"
  http POST /tasks "${JSON[@]}" --data-binary '{"task":"eleven char"}'
  expect "the original restored: 11 characters are fine again" 201
  http POST /tasks "${JSON[@]}" --data-binary '{"task":"x","status":"blocked"}'
  expect_error "the original restored: 'blocked' refused again" 400 status "^'status' must be one of"
  still_serving "the original restored" || return
  check_eq "still the same process after three reloads" "$RELOAD_PID" "$SERVER_PID"
}
reload_steps
if [ -n "$SERVER_PID" ]; then
  serve_stop TERM
else
  echo "   (hot reload: the remaining steps were skipped because the server died)"
fi
export TASKHOST_ROUTES="$ROUTES_DIR"

section "start-up failures"
run_serve_fail() { # run_serve_fail NAME WANT_RC LISTEN [env...]
  local name=$1 want=$2 listen=$3
  shift 3
  timeout 10 env "$@" "$TASKHOST_BIN" --serve "$listen" </dev/null >"$TMP/sf.out" 2>"$TMP/sf.err"
  local rc=$?
  check_eq "$name: exit $want" "$want" "$rc"
  check_eq "$name: nothing on stdout" 0 "$(wc -c <"$TMP/sf.out")"
  check_eq "$name: one line on stderr" 1 "$(grep -vc '"level"' "$TMP/sf.err")"
}
serve_start || fail "server starts for the port-in-use test"
run_serve_fail "port in use" 1 "127.0.0.1:$PORT"
check_match "port in use: says so" 'in use' "$(grep -v '"level"' "$TMP/sf.err")"
serve_stop TERM
run_serve_fail "bad listen address" 2 "127.0.0.1:notaport"
run_serve_fail "port out of range" 2 "127.0.0.1:70000"
cp -R "$ROUTES_DIR" "$TMP/broken"
awk 'NR == 30 { print "local broken = = 1" } { print }' "$ROUTES_DIR/routes.lua" >"$TMP/broken/routes.lua"
run_serve_fail "broken routes.lua" 1 "127.0.0.1:0" TASKHOST_ROUTES="$TMP/broken"
check_match "broken routes.lua: names file and line" 'routes\.lua:30:' "$(cat "$TMP/sf.err")"
run_serve_fail "bad TASKHOST_WORKERS" 1 "127.0.0.1:0" TASKHOST_WORKERS=zero
check_match "bad TASKHOST_WORKERS: names it" 'TASKHOST_WORKERS' "$(cat "$TMP/sf.err")"

section "port 0, one worker"
TASKHOST_WORKERS=1 "$TASKHOST_BIN" --serve 127.0.0.1:0 </dev/null >/dev/null 2>"$TMP/p0.log" &
SERVER_PID=$!
addr=""
for i in $(seq 1 100); do
  addr=$(jq -r 'select(.message == "listening") | .address' "$TMP/p0.log" 2>/dev/null)
  [ -n "$addr" ] && break
  sleep 0.1
done
check_match "port 0: the listening line gives the bound address" '^127\.0\.0\.1:[0-9]+$' "$addr"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$addr/tasks")
check_eq "port 0: answers on the bound address" 200 "$code"
pids=()
for i in $(seq 1 12); do
  curl -s --max-time 30 -o /dev/null -w '%{http_code}' -X POST "${JSON[@]}" \
    --data-binary "{\"task\":\"one worker $i\"}" "http://$addr/tasks" >"$TMP/w1.$i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
check_eq "one worker: 12 concurrent creates all 201" "$(printf '201%.0s' $(seq 12))" "$(cat "$TMP"/w1.*)"
serve_stop TERM

finish
