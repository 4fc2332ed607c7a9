#!/usr/bin/env bash
# gc_soak.sh [BLOCKS] — memory of one Lambda process over a long run (Lua GC
# review, bench/hotpath.md). BLOCKS (default 34: 23,970 invocations) blocks
# of 100 rounds of 7 ordinary invocations (create, list, list with limit 100,
# get/put on an absent id, an invalid event, a 60 kB task: 400), then 5
# hostile ones through extra routes: a memory bomb (refused allocation:
# emergency full GC, then the state is rebuilt), a memory bomb caught by
# pcall, 20 MB of garbage under the cap, an endless loop (instruction
# budget), an error. VmRSS/VmHWM every 1,000 invocations
# (runtime_api_server.py --rss-at), printed as a table.
# SOAK_SERVE=1: the same blocks as HTTP requests to one --serve process
# (TASKHOST_WORKERS, default 4; keep-alive client), VmRSS every 1,000.
# Environment as for tests/e2e (TASKHOST_BIN ...); E2E_STORE=dynamodb under
# tests/integration/with_dynalite.sh for DynamoDB, else SQLite.
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
SHOW_LAST=0
BLOCKS=${1:-34}
unset AWS_LAMBDA_RUNTIME_API _X_AMZN_TRACE_ID
[ "${E2E_STORE:-sqlite}" = dynamodb ] || export TASKHOST_STORE="sqlite:$TMP/soak.db"
export TASKHOST_LOG_LEVEL=ERROR TASKHOST_LUA_MEMORY_MB=64 TASKHOST_LUA_INSTRUCTIONS=5000000

routes="$TMP/routes"
mkdir -p "$routes"
cp "$ROUTES_DIR"/*.lua "$routes/"
mv "$routes/routes.lua" "$routes/task_routes.lua"
cat >"$routes/routes.lua" <<'LUA'
local tasks = require("task_routes")
local extra = {
  ["/soak/bomb"] = function()
    local t = {}
    for i = 1, 1e9 do t[i] = string.rep("x", 4096) .. i end
  end,
  ["/soak/bomb-pcall"] = function()
    pcall(function() local t = {} for i = 1, 1e9 do t[i] = string.rep("y", 4096) .. i end end)
    return {status = 200, body = {caught = true}}
  end,
  ["/soak/garbage"] = function()
    local keep = {}
    for i = 1, 20000 do keep[i % 100 + 1] = {i, tostring(i), string.rep("z", 1000)} end
    return {status = 200, body = {n = #keep}}
  end,
  ["/soak/loop"] = function() while true do end end,
  ["/soak/error"] = function() error("soak") end,
}
return {handle = function(req)
  local h = extra[req.path]
  if h then return h(req) end
  return tasks.handle(req)
end}
LUA
export TASKHOST_ROUTES="$routes"

absent=00000000-0000-4000-8000-000000000000
big=$(head -c 60000 /dev/zero | tr '\0' x)

if [ "${SOAK_SERVE:-0}" = 1 ]; then
  section "--serve: $BLOCKS blocks of 705 requests, ${TASKHOST_WORKERS:=4} workers, store ${E2E_STORE:-sqlite}"
  export TASKHOST_WORKERS
  serve_start || { fail "server starts"; finish; }
  python3 - "$PORT" "$SERVER_PID" "$BLOCKS" "$absent" <<'PYEOF'
import http.client, json, sys, time
port, pid, blocks, absent = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
def rss():
    with open("/proc/%s/status" % pid) as f:
        d = dict(l.split(":", 1) for l in f)
    return d["VmRSS"].split()[0], d["VmHWM"].split()[0]
big = json.dumps({"task": "x" * 60000})
ordinary = [("POST", "/tasks", '{"task":"soak"}'), ("GET", "/tasks?limit=5", None),
            ("GET", "/tasks?limit=100", None), ("GET", "/tasks/" + absent, None),
            ("PUT", "/tasks/" + absent, '{"status":"completed"}'), ("POST", "/tasks", "not json"),
            ("POST", "/tasks", big)]
hostile = [("GET", "/soak/" + p, None) for p in ("bomb", "bomb-pcall", "garbage", "loop", "error")]
block = ordinary * 100 + hostile
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
n, statuses, t0 = 0, {}, time.time()
print("      after   VmRSS kB   VmHWM kB")
for b in range(blocks):
    for m, path, body in block:
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(2):
            try:
                c.request(m, path, body=body, headers=hdrs)
                r = c.getresponse(); r.read()
                break
            except (http.client.HTTPException, OSError):
                c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        statuses[r.status] = statuses.get(r.status, 0) + 1
        n += 1
        if n == 100 or n % 1000 == 0:
            print("      %d  %s  %s" % ((n,) + rss()), flush=True)
print("      %d requests in %.0f s; statuses %s" % (n, time.time() - t0, sorted(statuses.items())))
PYEOF
  check "the server still runs" kill -0 "$SERVER_PID"
  finish
  exit
fi
{
  event v2 POST /tasks -b '{"task":"soak"}' | jq -c '{event: .}'
  event v1 GET /tasks -q limit=5 | jq -c '{event: .}'
  event v2 GET /tasks -q limit=100 | jq -c '{event: .}'
  event v2 GET "/tasks/$absent" | jq -c '{event: .}'
  event v1 PUT "/tasks/$absent" -b '{"status":"completed"}' | jq -c '{event: .}'
  jq -c -n '{event: {"Records": []}}'
  event v2 POST /tasks -b "{\"task\":\"$big\"}" | jq -c '{event: .}'
} >"$TMP/round.jsonl"
for i in $(seq 1 100); do cat "$TMP/round.jsonl"; done >"$TMP/block.jsonl"
for p in bomb bomb-pcall garbage loop error; do event v2 GET "/soak/$p" | jq -c '{event: .}'; done >>"$TMP/block.jsonl"
per=$(wc -l <"$TMP/block.jsonl")
total=$((per * BLOCKS))
at=$(seq -s, 1000 1000 "$total")
section "$total invocations ($BLOCKS blocks of $per), store ${E2E_STORE:-sqlite}"
rapi_start --queue "$TMP/block.jsonl" --repeat "$BLOCKS" --rss-pid-file "$TMP/rt.pid" --rss-at "100,$at"
rapi_start_ok=$?
[ $rapi_start_ok -eq 0 ] || { fail "test server starts"; finish; }
rt_start sh -c 'echo $$ >"$0"; exec "$@"' "$TMP/rt.pid"
t0=$(ms_now)
wait_record '.kind == "drained"' 3600 && pass || fail "all invocations served"
elapsed=$(($(ms_now) - t0))
rt_term 30
rapi_stop
check_eq "exit 0" 0 "$RT_RC"
echo "      $total invocations in $elapsed ms"
records '.kind == "response"' | jq -r '.body | fromjson | .statusCode' | sort | uniq -c | sed 's/^/      status /'
echo "      errors: $(records '.kind == "error"' | wc -l)"
echo "      after   VmRSS kB   VmHWM kB"
records '.kind == "rss"' | jq -r '"      \(.after)  \(.vmrss_kb)  \(.vmhwm_kb)"'
finish
