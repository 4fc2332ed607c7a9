#!/usr/bin/env bash
# test_local_dynamodb_script.sh — scripts/local-dynamodb.sh, the local
# DynamoDB workflow of the README, as a user runs it:
#   * --background on a free port: the printed lines are only shell lines,
#     and with them `taskhost --check`, `--local` (create, list, get) and
#     `--serve` + curl work against the table it created;
#   * a second --background is a no-op that prints the same lines; another
#     server on a port in use fails with a clear message;
#   * --stop stops it (the port is closed, the pid file gone), twice is fine;
#   * --path keeps the table and its items across a stop and a start;
#   * the foreground mode prints the lines, serves, and stops cleanly (exit
#     0) on Ctrl-C (SIGINT);
#   * bad arguments are refused.
# Starts its own servers (not under with_dynalite.sh). Needs TASKHOST_BIN;
# SOURCE_DIR defaults to the repository holding this file.
set -u
# shellcheck source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

SCRIPT="$SOURCE_DIR/scripts/local-dynamodb.sh"
[ -f "$SCRIPT" ] || { echo "no $SCRIPT" >&2; exit 2; }
command -v node >/dev/null || { echo "node is required (dynalite)" >&2; exit 2; }

# Nothing of the caller's AWS setup may leak in.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB \
  AWS_IGNORE_CONFIGURED_ENDPOINT_URLS AWS_MAX_ATTEMPTS TABLE_NAME AWS_REGION AWS_DEFAULT_REGION
export AWS_EC2_METADATA_DISABLED=true

TABLE=taskhost-script-test
PIDFILES=() # every pid file a server was started with: stopped on exit
FG_PID=""
stop_all() {
  local f
  if [ -n "$FG_PID" ] && kill -0 "$FG_PID" 2>/dev/null; then
    kill -TERM "$FG_PID" 2>/dev/null
    wait "$FG_PID" 2>/dev/null
  fi
  for f in "${PIDFILES[@]}"; do
    bash "$SCRIPT" --stop --pid-file "$f" >/dev/null 2>&1
  done
}
trap 'stop_all; _cleanup' EXIT

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20001))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# start_bg NAME PIDFILE [ARGS...]: --background on a free port. Sets
# DDB_RC, DDB_OUT (stdout), DDB_ERR, DDB_PORT.
start_bg() {
  local name=$1 pidfile=$2
  shift 2
  PIDFILES+=("$pidfile")
  for _ in 1 2 3 4 5; do
    DDB_PORT=$(free_port)
    bash "$SCRIPT" --background --port "$DDB_PORT" --pid-file "$pidfile" "$@" \
      >"$TMP/ddb.out" 2>"$TMP/ddb.err"
    DDB_RC=$?
    DDB_OUT=$(cat "$TMP/ddb.out")
    DDB_ERR=$(cat "$TMP/ddb.err")
    # lost a race for the port: another one
    grep -q "cannot listen" <<<"$DDB_ERR" || break
  done
  [ "$DDB_RC" -eq 0 ] || echo "      $name: local-dynamodb.sh failed: ${DDB_ERR:0:600}"
}

# The printed lines are shell lines only, and set what taskhost needs.
check_exports() {
  local name=$1 out=$2 port=$3
  check_jq "$name: stdout holds only export/unset lines" "$(jq -R -s -c 'split("\n") | map(select(. != ""))' <<<"$out")" \
    'length >= 7 and all(.[]; test("^(export [A-Z_]+=[A-Za-z0-9_.:/-]+|unset [A-Z_ ]+)$"))'
  check_match "$name: TASKHOST_STORE" $'(^|\n)export TASKHOST_STORE=dynamodb(\n|$)' "$out"
  check_match "$name: TABLE_NAME" $'(^|\n)export TABLE_NAME='"$TABLE"$'(\n|$)' "$out"
  check_match "$name: AWS_REGION" $'(^|\n)export AWS_REGION=us-east-1(\n|$)' "$out"
  check_match "$name: credentials" $'(^|\n)export AWS_ACCESS_KEY_ID=[^\n]+\nexport AWS_SECRET_ACCESS_KEY=' "$out"
  check_match "$name: AWS_ENDPOINT_URL_DYNAMODB" \
    $'(^|\n)export AWS_ENDPOINT_URL_DYNAMODB=http://127\\.0\\.0\\.1:'"$port"$'(\n|$)' "$out"
}

# ---- --background, then --local and --serve with the printed lines -----------------

section "--background on a free port"

PIDFILE="$TMP/ddb/main.pid"
start_bg "background" "$PIDFILE" --table "$TABLE"
check_eq "background: exit status" 0 "$DDB_RC"
check_exports "background" "$DDB_OUT" "$DDB_PORT"
check_match "background: says where and how to stop" "created table $TABLE.*--stop" "$(tr '\n' ' ' <<<"$DDB_ERR")"
check "background: the port answers" port_in_use "$DDB_PORT"
check "background: pid file names a live process" kill -0 "$(cat "$PIDFILE" 2>/dev/null || echo 0)"
EXPORTS=$DDB_OUT
MAIN_PORT=$DDB_PORT
eval "$EXPORTS"

if command -v aws >/dev/null; then
  AWS_PAGER="" aws dynamodb describe-table --table-name "$TABLE" --endpoint-url "$AWS_ENDPOINT_URL_DYNAMODB" \
    --region "$AWS_REGION" --output json >"$TMP/describe.json" 2>"$TMP/describe.err"
  check_jq "aws describe-table: user_id S HASH, id S RANGE, ACTIVE" "$(cat "$TMP/describe.json")" '.Table
    | .TableStatus == "ACTIVE"
      and .KeySchema == [{AttributeName: "user_id", KeyType: "HASH"}, {AttributeName: "id", KeyType: "RANGE"}]
      and (.AttributeDefinitions | sort_by(.AttributeName))
        == [{AttributeName: "id", AttributeType: "S"}, {AttributeName: "user_id", AttributeType: "S"}]'
fi

section "taskhost --check and --local with the printed lines"

"$TASKHOST_BIN" --check >"$TMP/check.out" 2>"$TMP/check.err"
check_eq "--check exits 0" 0 "$?"
api v2 POST /tasks -b '{"task":"Made against the local DynamoDB ✓","priority":"high"}'
expect "--local: create" 201 '.task.task == "Made against the local DynamoDB ✓" and .task.priority == "high"'
LOCAL_TASK=$(jq -c '.task' <<<"$BODY")
LOCAL_ID=$(jq -r '.id' <<<"$BODY")
api v2 GET /tasks
expect "--local: list" 200 '.count == 1 and .items == [$t] and .next == null' --argjson t "$LOCAL_TASK"
api v1 GET "/tasks/$LOCAL_ID"
expect "--local: get" 200 '. == $t' --argjson t "$LOCAL_TASK"
if command -v aws >/dev/null; then
  AWS_PAGER="" aws dynamodb get-item --table-name "$TABLE" \
    --key "{\"user_id\":{\"S\":\"public\"},\"id\":{\"S\":\"$LOCAL_ID\"}}" \
    --consistent-read --endpoint-url "$AWS_ENDPOINT_URL_DYNAMODB" --region "$AWS_REGION" --output json \
    >"$TMP/get.json" 2>/dev/null
  check_jq "aws get-item: the item is in the local table" "$(cat "$TMP/get.json")" \
    '.Item.id.S == $id and (.Item.created_at | keys) == ["N"]' --arg id "$LOCAL_ID"
fi

section "taskhost --serve with the printed lines, and curl"

if serve_start; then
  http POST /tasks -H 'Content-Type: application/json' -d '{"task":"Over HTTP"}'
  check_eq "serve: POST /tasks is 201" 201 "$STATUS"
  SERVE_ID=$(jq -r '.id // empty' <<<"$BODY")
  http GET "/tasks/$SERVE_ID"
  check_eq "serve: GET /tasks/{id} is 200" 200 "$STATUS"
  check_jq "serve: GET /tasks/{id}" "$BODY" '.task == "Over HTTP" and .status == "new"'
  http GET "/tasks?limit=10"
  check_eq "serve: GET /tasks is 200" 200 "$STATUS"
  check_jq "serve: the list has both tasks" "$BODY" \
    '.count == 2 and ([.items[].id] | sort) == ([$a, $b] | sort)' --arg a "$LOCAL_ID" --arg b "$SERVE_ID"
  http DELETE "/tasks/$SERVE_ID"
  check_eq "serve: DELETE /tasks/{id} is 200" 200 "$STATUS"
  serve_stop
else
  fail "serve: taskhost --serve starts with the printed lines"
fi

section "a second --background, a port in use, --stop"

bash "$SCRIPT" --background --port "$MAIN_PORT" --pid-file "$PIDFILE" --table "$TABLE" \
  >"$TMP/again.out" 2>"$TMP/again.err"
check_eq "again: exit status 0" 0 "$?"
check_eq "again: the same lines" "$EXPORTS" "$(cat "$TMP/again.out")"
check_match "again: says it is running" "already running" "$(cat "$TMP/again.err")"

PIDFILES+=("$TMP/ddb/clash.pid")
bash "$SCRIPT" --background --port "$MAIN_PORT" --pid-file "$TMP/ddb/clash.pid" \
  >"$TMP/clash.out" 2>"$TMP/clash.err"
check_eq "port in use: exit status 1" 1 "$?"
check_match "port in use: says so" "cannot listen on 127\.0\.0\.1:$MAIN_PORT" "$(cat "$TMP/clash.err")"
check_eq "port in use: prints no lines" "" "$(cat "$TMP/clash.out")"
check "port in use: leaves no pid file" test ! -e "$TMP/ddb/clash.pid"

MAIN_PID=$(cat "$PIDFILE")
bash "$SCRIPT" --stop --pid-file "$PIDFILE" >"$TMP/stop.out" 2>"$TMP/stop.err"
check_eq "stop: exit status" 0 "$?"
check_match "stop: says so" "stopped \(pid $MAIN_PID\)" "$(cat "$TMP/stop.err")"
check "stop: the server process is gone" bash -c "! kill -0 $MAIN_PID 2>/dev/null"
check "stop: the port is closed" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$MAIN_PORT) 2>/dev/null"
check "stop: the pid file is gone" test ! -e "$PIDFILE"
bash "$SCRIPT" --stop --pid-file "$PIDFILE" >/dev/null 2>"$TMP/stop2.err"
check_eq "stop again: exit status 0" 0 "$?"
check_match "stop again: says it is not running" "not running" "$(cat "$TMP/stop2.err")"

# ---- --path: the data outlives the server ----------------------------------------------

section "--path keeps the table and its items across a restart"

DATA="$TMP/ddb-data"
start_bg "path" "$TMP/ddb/path.pid" --table "$TABLE" --path "$DATA"
check_eq "path: exit status" 0 "$DDB_RC"
if grep -q "WARNING: LevelDB" <<<"$DDB_ERR"; then
  # The script said why it keeps the data in memory; nothing more to check.
  echo "note: LevelDB's native module is not available here: --path not tested ($DDB_ERR)"
else
  check_match "path: says the data is persisted" "persisted in $DATA" "$DDB_ERR"
  eval "$DDB_OUT"
  api v2 POST /tasks -b '{"task":"Survives a restart"}'
  expect "path: create" 201
  KEPT=$(jq -c '.task' <<<"$BODY")
  bash "$SCRIPT" --stop --pid-file "$TMP/ddb/path.pid" >/dev/null 2>&1
  check "path: stopped" test ! -e "$TMP/ddb/path.pid"
  start_bg "path, restarted" "$TMP/ddb/path.pid" --table "$TABLE" --path "$DATA"
  check_eq "path, restarted: exit status" 0 "$DDB_RC"
  check_match "path, restarted: the table exists already" "table $TABLE exists" "$DDB_ERR"
  eval "$DDB_OUT"
  api v2 GET "/tasks/$(jq -r '.id' <<<"$KEPT")"
  expect "path, restarted: the task is still there" 200 '. == $k' --argjson k "$KEPT"
  api v2 GET /tasks
  expect "path, restarted: and listed" 200 '.count == 1 and .items == [$k]' --argjson k "$KEPT"
  # A table kept from a taskhost before accounts (keyed by id alone) is refused by name.
  if command -v aws >/dev/null; then
    AWS_PAGER="" aws dynamodb create-table --table-name old-tasks --billing-mode PAY_PER_REQUEST \
      --attribute-definitions AttributeName=id,AttributeType=S --key-schema AttributeName=id,KeyType=HASH \
      --endpoint-url "$AWS_ENDPOINT_URL_DYNAMODB" --region "$AWS_REGION" --output json >/dev/null 2>&1
    check_eq "path: an id-keyed table made with the AWS CLI" 0 "$?"
    bash "$SCRIPT" --stop --pid-file "$TMP/ddb/path.pid" >/dev/null 2>&1
    start_bg "path, an id-keyed table" "$TMP/ddb/path.pid" --table old-tasks --path "$DATA"
    check_eq "id-keyed table: exit status 1" 1 "$DDB_RC"
    check_match "id-keyed table: says why" "keyed by id alone.*user_id" "$(tr '\n' ' ' <<<"$DDB_ERR")"
    check_eq "id-keyed table: prints no lines" "" "$DDB_OUT"
    check "id-keyed table: leaves no pid file" test ! -e "$TMP/ddb/path.pid"
  fi
  bash "$SCRIPT" --stop --pid-file "$TMP/ddb/path.pid" >/dev/null 2>&1
fi

# ---- the foreground mode and Ctrl-C --------------------------------------------------------

section "foreground: serves until Ctrl-C"

FG_PIDFILE="$TMP/ddb/fg.pid"
PIDFILES+=("$FG_PIDFILE")
FG_PORT=$(free_port)
# A background job starts with SIGINT ignored; a terminal user's would not.
"${DEFAULT_SIGNALS[@]}" bash "$SCRIPT" --port "$FG_PORT" --pid-file "$FG_PIDFILE" --table "$TABLE" \
  >"$TMP/fg.out" 2>"$TMP/fg.err" &
FG_PID=$!
for _ in $(seq 1 300); do
  grep -q '^unset ' "$TMP/fg.out" 2>/dev/null && break
  kill -0 "$FG_PID" 2>/dev/null || break
  sleep 0.05
done
check_exports "foreground" "$(cat "$TMP/fg.out")" "$FG_PORT"
check_match "foreground: says Ctrl-C stops it" "Ctrl-C" "$(cat "$TMP/fg.err")"
eval "$(cat "$TMP/fg.out")"
api v2 POST /tasks -b '{"task":"in the foreground"}'
expect "foreground: --local create" 201
api v2 GET /tasks
expect "foreground: --local list" 200 '.count == 1 and .items[0].task == "in the foreground"'
FG_NODE=$(cat "$FG_PIDFILE" 2>/dev/null || echo 0)
kill -INT "$FG_PID"
FG_RC=timeout
for _ in $(seq 1 150); do
  if ! kill -0 "$FG_PID" 2>/dev/null; then
    wait "$FG_PID"
    FG_RC=$?
    break
  fi
  sleep 0.1
done
FG_PID=""
check_eq "foreground: Ctrl-C ends it with exit status 0" 0 "$FG_RC"
check "foreground: the server process is gone" bash -c "! kill -0 $FG_NODE 2>/dev/null"
check "foreground: the port is closed" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$FG_PORT) 2>/dev/null"
check "foreground: the pid file is gone" test ! -e "$FG_PIDFILE"

section "bad arguments"

for bad in "--port abc" "--port 70000" "--table x" "--region bad_region" "--frobnicate"; do
  # shellcheck disable=SC2086 # the words of $bad are the arguments
  bash "$SCRIPT" $bad --pid-file "$TMP/ddb/bad.pid" >"$TMP/bad.out" 2>"$TMP/bad.err"
  check_eq "$bad: exit status 1" 1 "$?"
  check_match "$bad: one line saying why" "^local-dynamodb: " "$(cat "$TMP/bad.err")"
  check "$bad: starts nothing" test ! -e "$TMP/ddb/bad.pid"
done
bash "$SCRIPT" --help >"$TMP/help.out" 2>&1
check_eq "--help: exit status 0" 0 "$?"
check_match "--help: documents --background and --stop" "--background.*--stop" "$(tr '\n' ' ' <"$TMP/help.out")"

finish
