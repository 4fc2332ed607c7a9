#!/usr/bin/env bash
# scripts/smoke.sh against `taskhost --serve` (auth off; on SQLite, or on DynamoDB under
# with_dynalite.sh with E2E_STORE=dynamodb):
#   * the real routes: every check PASS, exit 0, and nothing it created is left behind;
#   * route scripts that lie (through TASKHOST_ROUTES: a wrapper around the real routes.lua
#     that breaks one behaviour while answering with the right status): each is caught by the
#     check it targets (its FAIL line), exit 1, and the store is cleaned up all the same;
#   * no server at all: FAIL lines, exit 1; a usage error: exit 2.
# The auth-on runs are tests/cognito/test_smoke_auth.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SMOKE="$SOURCE_DIR/scripts/smoke.sh"
if [ "${E2E_STORE:-sqlite}" != dynamodb ]; then
  export TASKHOST_STORE="sqlite:$TMP/smoke.db"
fi

# store_ids: the ids of every task in the store (auth off: one owner), one a line.
store_ids() {
  local cursor="" page
  while :; do
    page=$(curl -s --max-time 20 "$BASE_URL/tasks?limit=100${cursor:+&next=$(jq -rn --arg c "$cursor" '$c | @uri')}")
    jq -r '.items[].id' <<<"$page"
    cursor=$(jq -r '.next // empty' <<<"$page")
    [ -n "$cursor" ] || break
  done
}

section "the real routes: every check passes"
export TASKHOST_ROUTES="$ROUTES_DIR"
serve_start || { fail "server starts"; finish; }
before=$(store_ids | sort)
t0=$(date +%s%3N)
out=$(bash "$SMOKE" "$BASE_URL" 2>&1)
rc=$?
echo "$out" | sed 's/^/      /'
echo "      (smoke.sh took $(($(date +%s%3N) - t0)) ms)"
check_eq "smoke.sh: exit 0" 0 "$rc"
for name in create read update list delete validation "not found" preflight; do
  check "smoke.sh: PASS $name" grep -q "^PASS $name:" <<<"$out"
done
check_eq "smoke.sh: no FAIL line" "" "$(grep '^FAIL' <<<"$out")"
check "smoke.sh: says the auth checks were skipped without --token" grep -q '^SKIP auth' <<<"$out"
check_eq "smoke.sh: every task it created is gone" "$before" "$(store_ids | sort)"
serve_stop

# The mutants test smoke.sh itself, not the store: once, on SQLite.
if [ "${E2E_STORE:-sqlite}" = dynamodb ]; then
  finish
fi

# Mutants: routes.lua becomes a wrapper around the real one (routes_orig.lua).
mut="$TMP/mutant"
mkdir -p "$mut"
cp "$ROUTES_DIR"/*.lua "$mut/"
mv "$mut/routes.lua" "$mut/routes_orig.lua"
# mutant NAME: writes the wrapper that breaks NAME.
mutant() {
  sed "s/@MUT@/$1/" >"$mut/routes.lua" <<'LUA'
local orig = require("routes_orig")
local json = require("json")
local M = setmetatable({}, { __index = orig })
local MUT = "@MUT@"
function M.handle(req)
  local id = type(req.path) == "string" and req.path:match("^/tasks/([^/]+)$")
  if MUT == "put-noop" and req.method == "PUT" and id then
    -- acknowledges the change, stores nothing
    req.method = "GET"
    local r = orig.handle(req)
    if r.status ~= 200 then return r end
    for k, v in pairs(json.decode(req.body)) do r.body[k] = v end
    return { status = 200, body = { message = "Task updated successfully", task = r.body } }
  elseif MUT == "delete-noop" and req.method == "DELETE" and id then
    return { status = 200, body = { message = "Task deleted successfully", id = id } }
  elseif MUT == "next-ignored" and req.method == "GET" and type(req.query) == "table" then
    req.query.next = nil
  elseif MUT == "no-validation" and req.method == "POST" and req.body == "{}" then
    req.body = '{"task": "(no task given)"}'
  elseif MUT == "found-absent" and req.method == "GET" and id == "00000000-0000-4000-8000-000000000000" then
    return { status = 200, body = {} }
  elseif MUT == "preflight-headers" and req.method == "OPTIONS" then
    local r = orig.handle(req)
    r.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return r
  elseif MUT == "wrong-location" and req.method == "POST" then
    local r = orig.handle(req)
    if r.status == 201 then r.headers.Location = "/tasks/somewhere-else" end
    return r
  elseif MUT == "read-stale" and req.method == "GET" and id then
    local r = orig.handle(req)
    if r.status == 200 then r.body.task = r.body.task .. " (stale)" end
    return r
  end
  return orig.handle(req)
end
return M
LUA
}

export TASKHOST_ROUTES="$mut"
# SQLite reads are consistent: a lie shows at once, no need to wait for a read-back to settle.
export SMOKE_SETTLE_SECONDS=1
# mutant name → the check that must catch it
for pair in put-noop:update delete-noop:delete next-ignored:list no-validation:validation \
  "found-absent:not found" preflight-headers:preflight wrong-location:create read-stale:read; do
  name=${pair%%:*} target=${pair#*:}
  section "a route script that breaks '$target' ($name): caught"
  mutant "$name"
  serve_start || { fail "$name: server starts"; continue; }
  before=$(store_ids | sort)
  out=$(bash "$SMOKE" "$BASE_URL" 2>&1)
  rc=$?
  check_eq "$name: smoke.sh exits 1" 1 "$rc"
  check "$name: FAIL $target" grep -q "^FAIL $target:" <<<"$out"
  grep "^FAIL" <<<"$out" | sed 's/^/      /'
  if [ "$name" != delete-noop ]; then
    check_eq "$name: every task it created is gone all the same" "$before" "$(store_ids | sort)"
  fi
  serve_stop
done

section "--wait: a server that starts late"
export TASKHOST_ROUTES="$ROUTES_DIR"
late=$PORT
bash "$SMOKE" "http://127.0.0.1:$late" --wait 60 >"$TMP/late.out" 2>&1 &
smoke_pid=$!
sleep 3
serve_start "$late" || fail "server starts on $late"
wait "$smoke_pid"
check_eq "smoke.sh --wait 60, server up 3 s later: exit 0" 0 $?
check_eq "smoke.sh --wait: no FAIL line" "" "$(grep '^FAIL' "$TMP/late.out")"
serve_stop

section "no server, bad arguments"
out=$(bash "$SMOKE" "http://127.0.0.1:$PORT" --timeout 5 2>&1)
check_eq "nothing listening: exit 1" 1 $?
check "nothing listening: FAIL create" grep -q '^FAIL create:' <<<"$out"
bash "$SMOKE" >/dev/null 2>&1
check_eq "no API_URL: exit 2" 2 $?
bash "$SMOKE" "ftp://x" >/dev/null 2>&1
check_eq "not an http(s) URL: exit 2" 2 $?
bash "$SMOKE" "http://127.0.0.1:1" --bogus >/dev/null 2>&1
check_eq "unknown option: exit 2" 2 $?

finish
