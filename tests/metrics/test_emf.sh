#!/usr/bin/env bash
# The runtime's EMF lines (runtime/metrics.h), from real runs: the Lambda loop
# against tests/lambda/runtime_api_server.py, --local and --serve.
#   - the validator (validate_emf.js: ajv and the EMF specification's JSON
#     schema, emf-schema.json, plus the specification's limits) refuses lines
#     the specification refuses, so its "valid" means something;
#   - Lambda, SQLite: one line per invocation on stdout, every one valid, and
#     its values are what was sent: 3 creates, a get of an absent task (404),
#     a path no route serves (404), a list, a method a route does not allow
#     (405) and an event that is not an API Gateway event (/error) → the
#     counts per status class, the operations, the store calls, one cold
#     start, the request and trace ids and the version as properties, the
#     function's name as the Service dimension;
#   - TASKHOST_METRICS_NAMESPACE, TASKHOST_METRICS=off, invalid values; the
#     line's "level" (INFO, or the configured level above it: Lambda's log-level
#     filter reads a line without one as INFO and would drop it);
#   - --local and --serve: no line by default, the same line on stderr with
#     TASKHOST_METRICS=stderr;
#   - DynamoDB (under tests/integration/with_dynalite.sh) through
#     tests/faults/fault_proxy.py: a create whose first PutItem is throttled
#     → StoreThrottles 1, StoreRetries 1; one throttled on every attempt →
#     503, StoreThrottles 3, StoreRetries 2, 5xx 1.
# ajv comes from npm, pinned by tests/metrics/package-lock.json (npm ci).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# with_dynalite.sh's table and endpoint, kept for the DynamoDB part (lib.sh
# sets up SQLite and drops TABLE_NAME).
DDB_ENDPOINT=${AWS_ENDPOINT_URL_DYNAMODB:-}
DDB_TABLE=${TABLE_NAME:-}
source "$here/../e2e/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
SHOW_LAST=0
unset AWS_LAMBDA_RUNTIME_API _X_AMZN_TRACE_ID TASKHOST_METRICS TASKHOST_METRICS_NAMESPACE \
  AWS_LAMBDA_FUNCTION_NAME
export TASKHOST_STORE="sqlite:$TMP/emf.db"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is required (scripts/deps.sh --test)"; exit 1; }
done
if [ ! -f "$here/node_modules/ajv/package.json" ]; then
  (
    flock 9
    [ -f "$here/node_modules/ajv/package.json" ] ||
      (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts >&2)
  ) 9>"$here/.npm-ci.lock" || { echo "FAIL: 'npm ci' in tests/metrics failed"; exit 1; }
fi
SCHEMA="$here/emf-schema.json"
VERSION=$("$TASKHOST_BIN" --version | sed -n 's/^taskhost \([^ ]*\) (commit \([^,]*\),.*/\1+\2/p')

# valid NAME FILE WANT_LINES: every line of FILE is a valid EMF document.
valid() {
  local out
  out=$(node "$here/validate_emf.js" "$SCHEMA" "$2" 2>"$TMP/validate.err")
  check_eq "$1: $3 lines, all valid against the EMF schema" "{\"lines\":$3,\"invalid\":0}" "$out"
  [ -s "$TMP/validate.err" ] && head -5 "$TMP/validate.err"
  return 0
}
emf_lines() { grep -a '"_aws"' "$1" || true; }

# ---- the validator can fail ----------------------------------------------------------

section "the validator refuses what the specification refuses"
GOOD='{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["S"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"S":"s","M":1}'
printf '%s\n' "$GOOD" >"$TMP/good.txt"
valid "a minimal document" "$TMP/good.txt" 1
bad() { # bad NAME JQ-EDIT
  jq -c "$2" <<<"$GOOD" >"$TMP/bad.txt"
  local out
  out=$(node "$here/validate_emf.js" "$SCHEMA" "$TMP/bad.txt" 2>/dev/null)
  check_eq "refused: $1" '{"lines":1,"invalid":1}' "$out"
}
bad "no Timestamp" 'del(._aws.Timestamp)'
bad "a Timestamp that is not an integer" '._aws.Timestamp = 1.5'
bad "no Namespace" 'del(._aws.CloudWatchMetrics[0].Namespace)'
bad "a unit CloudWatch does not know" '._aws.CloudWatchMetrics[0].Metrics[0].Unit = "Msec"'
bad "a metric whose member is a string" '.M = "1"'
bad "a metric with no member" 'del(.M)'
bad "a dimension with no member" 'del(.S)'
bad "a dimension whose member is a number" '.S = 3'
bad "101 metrics in a directive" '._aws.CloudWatchMetrics[0].Metrics = [range(101) | {Name: "M"}]'
bad "a dimension set of 10 keys" '._aws.CloudWatchMetrics[0].Dimensions = [[range(10) | "S"]]'
bad "an unknown member in _aws" '._aws.Extra = 1'
printf 'not json\n' >"$TMP/bad.txt"
check_eq "refused: a line that is not JSON" '{"lines":1,"invalid":1}' \
  "$(node "$here/validate_emf.js" "$SCHEMA" "$TMP/bad.txt" 2>/dev/null)"

# ---- the Lambda loop, SQLite -----------------------------------------------------------

# send RID TRACE v1|v2 METHOD PATH [event options]: one invocation with a trace id.
send() {
  local rid=$1 trace=$2
  shift 2
  event "$@" >"$TMP/ev.json" || { fail "event $*"; return 1; }
  lambda_send "$(jq -c --arg rid "$rid" --arg tr "$trace" '{request_id: $rid, trace_id: $tr, event: .}' \
    "$TMP/ev.json")" || fail "$rid: answered"
}
TRACE="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

section "Lambda loop, SQLite: one valid line per invocation, with what was sent"
export AWS_LAMBDA_FUNCTION_NAME=taskhost-emf-test
T0=$(ms_now)
rapi_start --dynamic || { fail "test server starts"; finish; }
rt_start
for i in 1 2 3; do
  send "create-$i" "$TRACE" v2 POST /tasks -b "{\"task\":\"metrics $i\"}"
  check_eq "create $i: 201" 201 "$STATUS"
done
send get-absent "$TRACE" v2 GET /tasks/0190a0b0-0000-7000-8000-000000000000
check_eq "get of an absent task: 404" 404 "$STATUS"
send unmatched "$TRACE" v2 GET /no/such/route
check_eq "a path no route serves: 404" 404 "$STATUS"
send list "$TRACE" v1 GET /tasks
check_eq "list: 200" 200 "$STATUS"
send not-allowed "$TRACE" v2 PATCH /tasks
check_eq "PATCH /tasks: 405" 405 "$STATUS"
lambda_send '{"request_id":"not-an-event","trace_id":"'"$TRACE"'","event":{"hello":"world"}}'
check_eq "an event that is not an API Gateway event: /error" error "$KIND"
rt_term
T1=$(ms_now)
check_eq "the runtime stops on SIGTERM" 0 "$RT_RC"
OUTF="$TMP/rt.$RAPI_N.out"
emf_lines "$OUTF" >"$TMP/lambda.emf"
check_eq "stdout holds only EMF lines" "$(wc -l <"$OUTF")" "$(wc -l <"$TMP/lambda.emf")"
check_eq "no EMF line on stderr (the logs)" 0 "$(emf_lines "$RT_LOG" | wc -l)"
valid "Lambda" "$TMP/lambda.emf" 8
L=$(jq -s -c . "$TMP/lambda.emf")
by() { jq -c --arg r "$1" '.[] | select(.requestId == $r)' <<<"$L"; }
check_jq "one line per invocation, in order" "$L" \
  '[.[].requestId] == ["create-1","create-2","create-3","get-absent","unmatched","list","not-allowed","not-an-event"]'
check_jq "two directives: every metric by Service; Requests, Latency, 4xx, 5xx by Service and Operation" "$L" \
  'all(.[]; ._aws.CloudWatchMetrics == [
     {Namespace: "taskhost", Dimensions: [["Service"]], Metrics: [
       {Name: "Requests", Unit: "Count"}, {Name: "Latency", Unit: "Milliseconds"},
       {Name: "2xx", Unit: "Count"}, {Name: "4xx", Unit: "Count"}, {Name: "5xx", Unit: "Count"},
       {Name: "StoreCalls", Unit: "Count"}, {Name: "StoreLatency", Unit: "Milliseconds"},
       {Name: "StoreRetries", Unit: "Count"}, {Name: "StoreThrottles", Unit: "Count"},
       {Name: "ColdStart", Unit: "Count"}]},
     {Namespace: "taskhost", Dimensions: [["Service", "Operation"]], Metrics: [
       {Name: "Requests", Unit: "Count"}, {Name: "Latency", Unit: "Milliseconds"},
       {Name: "4xx", Unit: "Count"}, {Name: "5xx", Unit: "Count"}]}])'
check_jq "Requests 1 and exactly one status class on every line" "$L" \
  'all(.[]; .Requests == 1 and (.["2xx"] + .["4xx"] + .["5xx"]) == 1)'
check_jq "the counts: 4 × 2xx (3 creates, the list), 3 × 4xx (404, 404, 405), 1 × 5xx (the /error)" "$L" \
  '(map(.["2xx"]) | add) == 4 and (map(.["4xx"]) | add) == 3 and (map(.["5xx"]) | add) == 1'
check_jq "the operations: the route names, a fixed name for the rest" "$L" \
  '[.[].Operation] == ["CreateTask","CreateTask","CreateTask","GetTask","Unmatched","ListTasks","MethodNotAllowed","Unmatched"]'
check_jq "store calls: 1 per create, get and list; none for the rest; no retries, no throttles on SQLite" "$L" \
  '[.[].StoreCalls] == [1,1,1,1,0,1,0,0] and all(.[]; .StoreRetries == 0 and .StoreThrottles == 0)'
check_jq "StoreLatency: > 0 where the store was called, 0 elsewhere, never above Latency" "$L" \
  'all(.[]; (if .StoreCalls > 0 then .StoreLatency > 0 else .StoreLatency == 0 end)
     and .StoreLatency <= .Latency)'
check_jq "Latency: a time in ms, > 0 for every routed request, under the timeout" "$L" \
  'all(.[] | select(.requestId != "not-an-event"); .Latency > 0 and .Latency < 30000)'
check_jq "ColdStart: 1 on the first invocation only" "$L" '[.[].ColdStart] == [1,0,0,0,0,0,0,0]'
check_jq "properties: requestId, traceId (Lambda-Runtime-Trace-Id), version" "$L" \
  'all(.[]; .traceId == $t and .version == $v)' --arg t "$TRACE" --arg v "$VERSION"
check_match "version property: <project version>+<commit>" '^[0-9]+\.[0-9]+\.[0-9]+\+[0-9a-z]+$' "$VERSION"
check_jq "level INFO: Lambda's log-level filter keeps the line" "$L" 'all(.[]; .level == "INFO")'
check_jq "Service: the function's name (AWS_LAMBDA_FUNCTION_NAME)" "$L" 'all(.[]; .Service == "taskhost-emf-test")'
check_jq "Timestamp: epoch ms within the run" "$L" \
  'all(.[]; ._aws.Timestamp >= $t0 and ._aws.Timestamp <= $t1)' --argjson t0 "$T0" --argjson t1 "$T1"
check_jq "no other members: no id, path or user reaches a line" "$L" \
  'all(.[]; (keys - ["_aws","Service","Operation","Requests","Latency","2xx","4xx","5xx","StoreCalls",
     "StoreLatency","StoreRetries","StoreThrottles","ColdStart","requestId","traceId","version","level"]) == [])'
check "the start-up log line carries version, commit and build type" \
  jq -e -s --arg v "$VERSION" 'any(.[]; .message == "Runtime API loop started"
    and (.version + "+" + .commit) == $v and (.buildType | length > 0))' "$RT_LOG"
rapi_stop

section "Lambda loop: an Idempotency-Key's claim, commit and release are store calls"
# The host writes them around the route (runtime/host.c), not the route's store module:
# a keyed create = the claim + the commit of task and record in one transaction (the
# route's create is deferred into it); a replay and a 422 = the claim alone; a keyed
# request the route refuses (400) = the claim + its release.
rapi_start --dynamic || { fail "test server starts"; finish; }
rt_start
KEY='Idempotency-Key: "emf-key"'
send key-create "$TRACE" v2 POST /tasks -H "$KEY" -b '{"task":"keyed metrics"}'
check_eq "keyed create: 201" 201 "$STATUS"
send key-replay "$TRACE" v2 POST /tasks -H "$KEY" -b '{"task":"keyed metrics"}'
check_eq "keyed replay: 201" 201 "$STATUS"
send key-other "$TRACE" v2 POST /tasks -H "$KEY" -b '{"task":"another body"}'
check_eq "same key, another body: 422" 422 "$STATUS"
send key-invalid "$TRACE" v2 POST /tasks -H 'Idempotency-Key: "emf-bad"' -b '{"task":""}'
check_eq "keyed, invalid body: 400" 400 "$STATUS"
rt_term
emf_lines "$TMP/rt.$RAPI_N.out" >"$TMP/keyed.emf"
valid "keyed" "$TMP/keyed.emf" 4
K=$(jq -s -c . "$TMP/keyed.emf")
check_jq "StoreCalls: create 2 (claim, commit), replay 1, 422 1, refused 2 (claim, release)" "$K" \
  '[.[] | [.requestId, .StoreCalls]] == [["key-create",2],["key-replay",1],["key-other",1],["key-invalid",2]]'
check_jq "StoreLatency: > 0 on every keyed line, never above Latency" "$K" \
  'all(.[]; .StoreLatency > 0 and .StoreLatency <= .Latency)'
rapi_stop

section "Lambda loop: TASKHOST_METRICS_NAMESPACE and the level under AWS_LAMBDA_LOG_LEVEL=ERROR; TASKHOST_METRICS=off"
rapi_start --dynamic || { fail "test server starts"; finish; }
TASKHOST_METRICS_NAMESPACE="taskhost/prod" AWS_LAMBDA_LOG_LEVEL=ERROR rt_start
send ns-1 "$TRACE" v2 GET /tasks
rt_term
emf_lines "$TMP/rt.$RAPI_N.out" >"$TMP/ns.emf"
valid "namespace" "$TMP/ns.emf" 1
check "the namespace from TASKHOST_METRICS_NAMESPACE" \
  jq -e 'all(._aws.CloudWatchMetrics[]; .Namespace == "taskhost/prod")' "$TMP/ns.emf"
check "AWS_LAMBDA_LOG_LEVEL=ERROR: level ERROR, so Lambda's filter does not drop the line" \
  jq -e '.level == "ERROR"' "$TMP/ns.emf"
rapi_stop
rapi_start --dynamic || { fail "test server starts"; finish; }
TASKHOST_METRICS=off rt_start
send off-1 "$TRACE" v2 GET /tasks
check_eq "TASKHOST_METRICS=off: the request is served" 200 "$STATUS"
rt_term
check_eq "TASKHOST_METRICS=off: nothing on stdout" 0 "$(wc -c <"$TMP/rt.$RAPI_N.out")"
rapi_stop
unset AWS_LAMBDA_FUNCTION_NAME
for bad_env in TASKHOST_METRICS=sometimes TASKHOST_METRICS_NAMESPACE=AWS/Lambda \
  "TASKHOST_METRICS_NAMESPACE=a{b}" "TASKHOST_METRICS_NAMESPACE=$(printf 'n%.0s' $(seq 1 256))"; do
  env "$bad_env" "$TASKHOST_BIN" --check >/dev/null 2>"$TMP/check.err"
  check_eq "${bad_env:0:40}: refused at start (exit 1)" 1 $?
  check_match "${bad_env:0:40}: the line names the variable" "${bad_env%%=*}" "$(cat "$TMP/check.err")"
done

# ---- --local and --serve ---------------------------------------------------------------

section "--local: no line by default; the same line on stderr with TASKHOST_METRICS=stderr"
event v2 POST /tasks -b '{"task":"local metrics"}' >"$TMP/local.json"
"$TASKHOST_BIN" --local "$TMP/local.json" >"$TMP/local.out" 2>"$TMP/local.err"
check_eq "--local: exit 0" 0 $?
check_eq "--local, default: no EMF line anywhere" 0 "$(cat "$TMP/local.out" "$TMP/local.err" | emf_lines /dev/stdin | wc -l)"
TASKHOST_METRICS=stderr "$TASKHOST_BIN" --local "$TMP/local.json" >"$TMP/local.out" 2>"$TMP/local.err"
emf_lines "$TMP/local.err" >"$TMP/local.emf"
valid "--local" "$TMP/local.emf" 1
check "--local: the create's line" jq -e '.Operation == "CreateTask" and .["2xx"] == 1 and
  .StoreCalls == 1 and .ColdStart == 1 and .Service == "taskhost"' "$TMP/local.emf"
check_eq "--local: stdout is the response alone" 0 "$(emf_lines "$TMP/local.out" | wc -l)"

section "--serve: no line by default; one per request on stderr with TASKHOST_METRICS=stderr"
serve_start || fail "--serve starts"
http GET /tasks >/dev/null
serve_stop
check_eq "--serve, default: no EMF line" 0 "$(emf_lines "$SERVE_LOG" | wc -l)"
TASKHOST_METRICS=stderr serve_start || fail "--serve starts"
http POST /tasks -H 'Content-Type: application/json' --data-binary '{"task":"served"}'
http GET /tasks/0190a0b0-0000-7000-8000-000000000000
serve_stop
emf_lines "$SERVE_LOG" >"$TMP/serve.emf"
# serve_start's readiness probes (GET /tasks?limit=1) come first: ListTasks.
NS=$(wc -l <"$TMP/serve.emf")
valid "--serve" "$TMP/serve.emf" "$NS"
check "--serve: the probes, then a create (2xx) and a get of an absent task (4xx)" jq -e -s \
  '([.[] | select(.Operation != "ListTasks") | [.Operation, .["2xx"], .["4xx"]]]
     == [["CreateTask",1,0],["GetTask",0,1]])
   and .[0].ColdStart == 1 and (map(.ColdStart) | add) == 1 and length >= 3' "$TMP/serve.emf"

# ---- DynamoDB, a throttled store call ---------------------------------------------------

section "Lambda loop, DynamoDB through the fault proxy: throttled store calls are counted"
if [ -z "$DDB_ENDPOINT" ]; then
  fail "DynamoDB part" "run under tests/integration/with_dynalite.sh (CTest does)"
  finish
fi
PY=${PYTHON:-python3}
"$PY" "$SOURCE_DIR/tests/faults/fault_proxy.py" --upstream "$DDB_ENDPOINT" --port-file "$TMP/proxy.port" \
  --control-port-file "$TMP/control.port" --log "$TMP/proxy.log" 2>>"$TMP/proxy.log" &
PROXY_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/proxy.port" ] && break; sleep 0.05; done
[ -s "$TMP/proxy.port" ] || { fail "the fault proxy starts" "$(cat "$TMP/proxy.log")"; finish; }
CONTROL="http://127.0.0.1:$(cat "$TMP/control.port")"
trap 'kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; _lambda_cleanup' EXIT
plan() { # plan OP FAULTS-JSON (or nothing: no faults)
  curl -s --max-time 5 -X POST "$CONTROL/reset" >/dev/null
  [ -z "${2:-}" ] || curl -s --max-time 5 -X POST "$CONTROL/plan" -d "{\"op\":\"$1\",\"faults\":$2}" >/dev/null
}
export TASKHOST_STORE=dynamodb TABLE_NAME="$DDB_TABLE" AWS_MAX_ATTEMPTS=3
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$(cat "$TMP/proxy.port")"
export AWS_LAMBDA_FUNCTION_NAME=taskhost-emf-ddb
rapi_start --dynamic || { fail "test server starts"; finish; }
rt_start
plan PutItem '["throttle"]'
send ddb-throttled-once "$TRACE" v2 POST /tasks -b '{"task":"throttled once"}'
check_eq "create, first PutItem throttled: the retry succeeds (201)" 201 "$STATUS"
plan
send ddb-clean "$TRACE" v2 POST /tasks -b '{"task":"clean"}'
check_eq "create without faults: 201" 201 "$STATUS"
plan PutItem '["throttle","throttle","throttle"]'
send ddb-throttled-out "$TRACE" v2 POST /tasks -b '{"task":"throttled out"}'
check_eq "create, every attempt throttled: 503" 503 "$STATUS"
plan
send ddb-absent "$TRACE" v2 GET /tasks/0190a0b0-0000-7000-8000-000000000000
check_eq "get of an absent task: 404" 404 "$STATUS"
rt_term
emf_lines "$TMP/rt.$RAPI_N.out" >"$TMP/ddb.emf"
valid "DynamoDB" "$TMP/ddb.emf" 4
D=$(jq -s -c . "$TMP/ddb.emf")
check_jq "the counts: [StoreCalls, StoreRetries, StoreThrottles, 2xx, 4xx, 5xx] per invocation" "$D" \
  '[.[] | [.requestId, .StoreCalls, .StoreRetries, .StoreThrottles, .["2xx"], .["4xx"], .["5xx"]]] ==
   [["ddb-throttled-once",1,1,1,1,0,0], ["ddb-clean",1,0,0,1,0,0],
    ["ddb-throttled-out",1,2,3,0,0,1], ["ddb-absent",1,0,0,0,1,0]]'
check_jq "Service and ColdStart on DynamoDB too" "$D" \
  'all(.[]; .Service == "taskhost-emf-ddb") and [.[].ColdStart] == [1,0,0,0]'
rapi_stop
finish
