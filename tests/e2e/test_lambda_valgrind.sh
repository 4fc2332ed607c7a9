#!/usr/bin/env bash
# The Lambda Runtime API loop under valgrind memcheck: 200 invocations of
# every kind (CRUD responses, 404s, invalid events → /error, a 7 MB event, a
# 7 MB response, a 413 from the Runtime API, a runaway route stopped by the
# deadline), then SIGTERM; and the init-error paths. Any memory error or
# definite/indirect leak makes valgrind exit 99.
# Skipped (passes with a note) for a sanitizer build, which valgrind cannot
# run, or when valgrind is not installed (scripts/deps.sh --test installs it).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"

if ! command -v valgrind >/dev/null; then
  echo "SKIP: valgrind is not installed (scripts/deps.sh --test)"
  exit 0
fi
if [[ "$(ldd "$TASKHOST_BIN" 2>/dev/null)" == *libasan* ]]; then
  echo "SKIP: $TASKHOST_BIN is a sanitizer build; valgrind cannot run it"
  exit 0
fi

unset AWS_LAMBDA_RUNTIME_API _X_AMZN_TRACE_ID
# SQLite unless lib.sh was asked for DynamoDB (E2E_STORE=dynamodb, dynalite).
[ "${E2E_STORE:-sqlite}" = dynamodb ] || export TASKHOST_STORE="sqlite:$TMP/valgrind.db"
VG=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
  --show-leak-kinds=definite,indirect)

TEST_ROUTES="$TMP/test-routes"
mkdir -p "$TEST_ROUTES" && cp -r "$ROUTES_DIR"/. "$TEST_ROUTES/"
mv "$TEST_ROUTES/routes.lua" "$TEST_ROUTES/base_routes.lua"
cat >"$TEST_ROUTES/routes.lua" <<'LUA'
local base = require("base_routes")
local M = {}
for k, v in pairs(base) do M[k] = v end
function M.handle(req)
  if req.path == "/_test/spin" then
    while true do end
  elseif req.path == "/_test/big" then
    return { status = 200, body = string.rep("x", 7 * 1024 * 1024) }
  end
  return base.handle(req)
end
return M
LUA

section "200 invocations under memcheck"
absent=00000000-0000-4000-8000-000000000000
create=$(event v2 POST /tasks -b '{"task":"valgrind"}' | jq -c .)
list=$(event v1 GET /tasks -q limit=5 | jq -c .)
get404=$(event v2 GET "/tasks/$absent" | jq -c .)
put=$(event v1 PUT "/tasks/$absent" -b '{"status":"completed"}' | jq -c .)
{
  for i in $(seq 1 40); do
    jq -c --arg r "c$i" '{request_id: $r, event: .}' <<<"$create"
    jq -c --arg r "l$i" '{request_id: $r, event: .}' <<<"$list"
    jq -c --arg r "g$i" '{request_id: $r, event: .}' <<<"$get404"
    jq -c --arg r "p$i" '{request_id: $r, event: .}' <<<"$put"
    jq -c -n --arg r "i$i" '{request_id: $r, event: {"Records": []}}'
  done
  event v2 GET /_test/big | jq -c '{request_id: "big-response", event: .}'
  jq -c -n '{request_id: "big-event", generate_bytes: 7000000}'
  jq -c '{request_id: "refused", response_status: 413, event: .}' <<<"$list"
  event v2 GET /_test/spin | jq -c '{request_id: "spin", deadline_in_ms: 3000, event: .}'
} >"$TMP/queue.jsonl"
rapi_start --queue "$TMP/queue.jsonl" || { fail "test server starts"; finish; }
rt_start env TASKHOST_ROUTES="$TEST_ROUTES" TASKHOST_LUA_INSTRUCTIONS=100000000000 "${VG[@]}"
if wait_record '.kind == "drained"' 500; then pass; else fail "every event served under valgrind"; fi
rt_term 60
rapi_stop
check_eq "valgrind: exit 0 after SIGTERM (99 would be a memory error or leak)" 0 "$RT_RC"
check_eq "valgrind: responses" 162 "$(records '.kind == "response"' | wc -l)"
check_eq "valgrind: errors" 43 "$(records '.kind == "error"' | wc -l)"
check_eq "valgrind: the spin answered 500" 500 \
  "$(records '.kind == "response" and .request_id == "spin"' | jq -r '.body | fromjson | .statusCode')"
if [ "$RT_RC" != 0 ]; then
  echo "--- valgrind / runtime log (tail) ---"
  grep -v '^{' "$RT_LOG" | tail -60
fi

section "init errors under memcheck"
mkdir -p "$TMP/broken" && cp -r "$ROUTES_DIR"/. "$TMP/broken/"
printf 'return {\n' >"$TMP/broken/routes.lua"
rapi_start
rt_start env TASKHOST_ROUTES="$TMP/broken" "${VG[@]}"
rt_wait 120
rapi_stop
check_eq "valgrind: broken routes.lua → exit 1, no memory error" 1 "$RT_RC"
check_eq "valgrind: init error posted" 1 "$(records '.kind == "init_error"' | wc -l)"

rapi_start
rt_start env TASKHOST_LUA_MEMORY_MB=lots "${VG[@]}"
rt_wait 120
rapi_stop
check_eq "valgrind: invalid configuration → exit 1, no memory error" 1 "$RT_RC"
check_eq "valgrind: config init error posted" 1 "$(records '.kind == "init_error"' | wc -l)"

finish
