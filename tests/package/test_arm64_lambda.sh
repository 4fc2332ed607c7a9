#!/usr/bin/env bash
# The arm64 Lambda package on the architecture it targets (CTest: package.arm64_lambda):
# the unzipped package's AArch64 bootstrap under qemu-aarch64-static (Debian's
# qemu-user-static), its glibc Debian's arm64 multiarch libc6:arm64 (its loader at
# /lib/ld-linux-aarch64.so.1, the path Amazon Linux 2023 has; the arm64 -dev packages bring
# it), as Lambda brings AL2023's, started the Lambda way (the task root as working
# directory, `./bootstrap` with no arguments, env -i with only Lambda's variables, whose
# LD_LIBRARY_PATH names $LAMBDA_TASK_ROOT/lib) against the Runtime API test server
# (tests/lambda/) and dynalite:
#   * the CRUD scenario as payload 2.0 and 1.0 events, on DynamoDB (dynalite);
#   * a runaway route (an endless Lua loop): answered with the JSON 500 before the
#     invocation's deadline, and the next event served;
#   * the init-error path: a route script with a syntax error → one POST to
#     /runtime/init/error (Runtime.RouteScriptError), exit 1, no event asked for;
#   * SIGTERM while waiting → exit 0.
# What is emulated is kept to that (each start under qemu costs ~1 s, each request some
# ms): the rest of the Lambda-loop suite (tests/e2e/test_lambda.sh) runs natively on the
# x86_64 build of the same sources. No timings are judged here beyond generous bounds:
# emulated times say nothing of Graviton's.
#
# Run under tests/integration/with_dynalite.sh. PACKAGE_ZIP: the arm64 zip
# (scripts/package.sh --arch arm64). Without qemu-aarch64-static: a SKIP line, a failure
# under CI=true (scripts/deps.sh --test installs it).
: "${TABLE_NAME:?run under tests/integration/with_dynalite.sh (TABLE_NAME)}"
: "${AWS_ENDPOINT_URL_DYNAMODB:?run under tests/integration/with_dynalite.sh (AWS_ENDPOINT_URL_DYNAMODB)}"
export E2E_STORE=dynamodb TASKHOST_STORE=dynamodb
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ROUTES_DIR=${ROUTES_DIR:-$SOURCE_DIR/lua}
QEMU=${QEMU:-qemu-aarch64-static}
# (qemu's -L /usr/aarch64-linux-gnu, the cross toolchain's copy of glibc, is not used: under
# it a fresh SQLite store spins at 100 % CPU in qemu; the multiarch libc6:arm64 does not.)
if ! command -v "$QEMU" >/dev/null || [ ! -e /lib/ld-linux-aarch64.so.1 ]; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL: $QEMU or /lib/ld-linux-aarch64.so.1 (libc6:arm64) missing (scripts/deps.sh --test installs them)"
    exit 1
  fi
  echo "SKIP: $QEMU or /lib/ld-linux-aarch64.so.1 (scripts/deps.sh --arm64) missing: the arm64 package is not run"
  exit 0
fi
# tests/e2e/lib.sh checks TASKHOST_BIN; this test runs the package's own bootstrap.
export TASKHOST_BIN=${TASKHOST_BIN:-/bin/true}
source "$SOURCE_DIR/tests/e2e/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
source "$SOURCE_DIR/tests/package/lib.sh"

pkg_unpack "$TMP/task"
pkg_layout

section "the package is arm64's"
check "bootstrap: an AArch64 ELF (the function's architecture)" \
  grep -Eq 'Machine:[[:space:]]+AArch64' <(readelf -h "$PKG/bootstrap")
check_eq "bootstrap: interpreter is Amazon Linux's aarch64 loader path" /lib/ld-linux-aarch64.so.1 \
  "$(readelf -l "$PKG/bootstrap" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')"
check "scripts/lambda-fit.sh: it fits provided.al2023 arm64" \
  bash "$SOURCE_DIR/scripts/lambda-fit.sh" "$PKG/bootstrap" arm64

# pkg_start [NAME=VALUE...]: bootstrap started the Lambda way under qemu, with the extra
# variables given (sets RT_PID RT_LOG for lib.sh).
pkg_start() {
  lambda_env_for "$PKG"
  RT_LOG="$TMP/rt.$RAPI_N.log"
  RT_START_MS=$(ms_now)
  (cd "$PKG" && exec env -i "${LAMBDA_ENV[@]}" "$@" "$(command -v "$QEMU")" ./bootstrap) </dev/null >"$TMP/rt.$RAPI_N.out" 2>"$RT_LOG" &
  RT_PID=$!
}

crud() {
  local v=$1 id
  section "$v through the loop (arm64, emulated): create / get / update / list / delete / 404"
  lambda_api "$v" POST /tasks -b '{"task":"Run on Graviton","priority":"high"}'
  expect "$v create" 201 '.task.task == "Run on Graviton" and .task.priority == "high"
    and .task.status == "new" and .id == .task.id'
  id=$(jq -r '.id' <<<"$BODY")
  check_match "$v create: id is a UUID" "$UUID_RE" "$id"
  lambda_api "$v" GET "/tasks/$id"
  expect "$v get" 200 '.id == $id and .task == "Run on Graviton"' --arg id "$id"
  lambda_api "$v" PUT "/tasks/$id" -b '{"status":"completed"}'
  expect "$v update" 200 '.message == "Task updated successfully" and .task.status == "completed"
    and .task.priority == "high"'
  lambda_api "$v" GET /tasks -q limit=100
  expect "$v list" 200 'any(.items[]; .id == $id and .status == "completed")' --arg id "$id"
  lambda_api "$v" DELETE "/tasks/$id"
  expect "$v delete" 200 '.id == $id' --arg id "$id"
  lambda_api "$v" GET "/tasks/$id"
  expect "$v get after delete" 404 '. == {"message": "Task not found"}'
  lambda_api "$v" POST /tasks -b '{"task":""}'
  expect "$v validation error" 400 '.field == "task"'
}

# Routes with a runaway path in front of the real ones (the package's own lua/ copied).
TEST_ROUTES="$TMP/test-routes"
mkdir -p "$TEST_ROUTES" && cp -r "$PKG/lua"/. "$TEST_ROUTES/"
mv "$TEST_ROUTES/routes.lua" "$TEST_ROUTES/base_routes.lua"
cat >"$TEST_ROUTES/routes.lua" <<'LUA'
-- test wrapper: /_test/spin never ends, everything else to the package's routes
local base = require("base_routes")
local M = {}
for k, v in pairs(base) do M[k] = v end
function M.handle(req)
  if req.path == "/_test/spin" then
    local n = 0
    while true do n = n + 1 end
  end
  return base.handle(req)
end
return M
LUA

rapi_start --dynamic || { fail "test server starts"; finish; }
# Only the deadline may stop the runaway route: no instruction budget to speak of.
pkg_start TASKHOST_ROUTES="$TEST_ROUTES" TASKHOST_LUA_INSTRUCTIONS=100000000000
crud v2
crud v1

section "a runaway route (arm64, emulated): the JSON 500 before the deadline"
budget=3000
lambda_send "$(event v2 GET /_test/spin | jq -c --argjson d "$budget" \
  '{request_id: "spin-arm64", deadline_in_ms: $d, event: .}')"
check_eq "runaway: a response, not an /error" response "$KIND"
check_eq "runaway: status 500" 500 "$STATUS"
check_jq "runaway: JSON body" "$BODY" '. == {"message": "Internal server error"}'
handed=$(records '.kind == "next" and .request_id == "spin-arm64"' | jq -r '.t')
arrived=$(jq -r '.t // empty' <<<"$REC")
deadline=$(jq -r '.deadline_ms // empty' <<<"$REC")
if [ -n "$arrived" ] && [ -n "$deadline" ] && [ "$arrived" -lt "$deadline" ]; then
  pass
  echo "      answered $((arrived - handed)) ms after it was handed out, $((deadline - arrived)) ms before its deadline"
else
  fail "runaway: answered before the deadline" "arrived ${arrived:-?}, deadline ${deadline:-?}"
fi
check "runaway: logged as stopped by the deadline" jq -e -s \
  'any(.[]; .requestId == "spin-arm64" and .message == "route failed" and .kind == "deadline")' "$RT_LOG"
lambda_api v2 GET /tasks
expect "after the runaway route: the next event is served" 200 '.items | type == "array"'

section "SIGTERM while waiting"
sleep 0.3
rt_term 20
check_eq "SIGTERM: exit 0" 0 "$RT_RC"
rapi_stop
check_eq "no init error posted" 0 "$(records '.kind == "init_error"' | wc -l)"
check "stderr has no loader complaint" bash -c "! grep -Eiq 'error while loading|cannot open shared|version .GLIBC' '$RT_LOG'"
if [ "$FAILED" -gt 0 ]; then
  echo "      bootstrap's stderr (last lines):"
  tail -20 "$RT_LOG" | sed 's/^/        /'
fi

section "the init-error path (arm64, emulated): a route script that does not load"
mkdir -p "$TMP/broken" && cp -r "$PKG/lua"/. "$TMP/broken/"
printf 'return {\n  handle = function(req)\n' >"$TMP/broken/routes.lua"
rapi_start --on-drain status:500 || { fail "init error: test server starts"; finish; }
pkg_start TASKHOST_ROUTES="$TMP/broken"
rt_wait 60
rapi_stop
check_eq "init error: exit 1" 1 "$RT_RC"
rec=$(records '.kind == "init_error"')
check_eq "init error: one POST to /runtime/init/error" 1 "$(grep -c . <<<"$rec")"
check_eq "init error: Lambda-Runtime-Function-Error-Type" Runtime.RouteScriptError \
  "$(jq -r '.headers["lambda-runtime-function-error-type"] // empty' <<<"$rec" | head -1)"
check_jq "init error: error document" "$(jq -r '.body' <<<"$rec" | head -1)" \
  '(keys == ["errorMessage", "errorType", "stackTrace"]) and .errorType == "Runtime.RouteScriptError"
    and (.errorMessage | test("routes\\.lua")) and .stackTrace == []'
check_eq "init error: no event asked for" 0 "$(records '.kind == "next" or .kind == "drained"' | wc -l)"

finish
