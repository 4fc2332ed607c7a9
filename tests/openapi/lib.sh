# shellcheck shell=bash
# tests/openapi/lib.sh — shared by the OpenAPI tests. Sourced, not run.
#
#   openapi_install            npm ci of the pinned tools (package-lock.json) on first use
#   OPENAPI_BIN                their node_modules/.bin
#   prism_start NAME SPEC UPSTREAM
#                              `prism proxy SPEC UPSTREAM --errors --cors false` on a free
#                              127.0.0.1 port; waits until it answers; sets PRISM_URL and
#                              PRISM_PID_<NAME>, logs to $TMP/prism.NAME.log (needs $TMP)
#   prism_stop_all             stops every proxy prism_start started (by its pid)
#
# Without node or npm, openapi_install prints "SKIP: ..." and exits 0 — under CI=true that
# is a failure (exit 1), like tests/cognito/with_cognito.sh.

OPENAPI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OPENAPI_BIN=$OPENAPI_DIR/node_modules/.bin
PRISM_PIDS=()

openapi_install() {
  local missing=() tool
  for tool in node npm; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "${CI:-}" = true ]; then
      echo "FAIL: ${missing[*]} not installed: the OpenAPI tools cannot run (scripts/deps.sh --test installs them)"
      exit 1
    fi
    echo "SKIP: ${missing[*]} not installed: the OpenAPI tools cannot run (scripts/deps.sh --test installs them)"
    exit 0
  fi
  [ -x "$OPENAPI_BIN/prism" ] && [ -x "$OPENAPI_BIN/redocly" ] && [ -x "$OPENAPI_BIN/spectral" ] &&
    [ -f "$OPENAPI_DIR/node_modules/js-yaml/package.json" ] && return 0
  echo "openapi: installing the pinned tools (npm ci in tests/openapi)" >&2
  # A lock directory keeps two concurrent first runs (ctest -j) from racing in node_modules.
  local lock="$OPENAPI_DIR/.npm-ci.lock" _ rc=0
  for _ in $(seq 1 300); do mkdir "$lock" 2>/dev/null && break; sleep 1; done
  if [ ! -x "$OPENAPI_BIN/prism" ]; then
    (cd "$OPENAPI_DIR" && npm ci --no-audit --no-fund --ignore-scripts >&2) || rc=$?
  fi
  rmdir "$lock" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: 'npm ci' in tests/openapi failed (is the npm registry reachable?)"
    exit 1
  fi
}

# A port nothing listens on now (the kernel's pick); prism_start retries if it is taken.
_openapi_free_port() {
  node -e 'const s = require("net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

prism_start() {
  local name=$1 spec=$2 upstream=$3 _ port pid code log="$TMP/prism.$1.log"
  for _ in 1 2 3; do
    port=$(_openapi_free_port)
    "$OPENAPI_BIN/prism" proxy "$spec" "$upstream" --errors --cors false \
      --host 127.0.0.1 --port "$port" </dev/null >"$log" 2>&1 &
    pid=$!
    PRISM_PIDS+=("$pid")
    printf -v "PRISM_PID_$name" '%s' "$pid"
    PRISM_URL="http://127.0.0.1:$port"
    # Prism compiles the description first: up to 60 s on a loaded machine.
    for _ in $(seq 1 600); do
      kill -0 "$pid" 2>/dev/null || break
      if grep -q 'Prism is listening' "$log"; then
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$PRISM_URL/tasks?limit=1")
        [ "$code" != 000 ] && return 0
      fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    grep -qi 'EADDRINUSE' "$log" && continue
    break
  done
  echo "prism_start: the $name proxy did not come up; its log:" >&2
  cat "$log" >&2
  return 1
}

prism_stop_all() {
  local pid
  for pid in "${PRISM_PIDS[@]}"; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  PRISM_PIDS=()
}
