#!/usr/bin/env bash
# test_web.sh off|on — the web client (web/) in real headless Chromium (Debian's chromium,
# driven by puppeteer-core, pinned by tests/browser/package-lock.json): the page is served by
# `python3 -m http.server` on one loopback port and the API (`taskhost --serve`) listens on
# another, so the page and the API are two origins and the browser preflights for real.
#   off  auth off (TASKHOST_AUTH unset), CORS origin "*"
#   on   under tests/cognito/with_cognito.sh: TASKHOST_AUTH=jwt against cognito-local, CORS
#        origin = the page's origin exactly; sign-in through the page's form (Cognito
#        USER_PASSWORD_AUTH against cognito-local) and with a pasted token
# flow.mjs does the clicking and its checks; here, besides: the API's own log holds the
# preflights (OPTIONS → 204) for /tasks and /tasks/{id}. A screenshot is kept in
# $BROWSER_ARTIFACTS (CTest: <build>/browser/web-auth-<mode>.png).
# Without chromium or node it prints "SKIP: ..." (exit 0), except under CI=true (a failure).
set -u
mode=${1:?usage: test_web.sh off|on}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../e2e/lib.sh"

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
missing=""
[ -n "$CHROMIUM" ] || missing+=" chromium"
command -v node >/dev/null || missing+=" node"
command -v npm >/dev/null || missing+=" npm"
command -v python3 >/dev/null || missing+=" python3"
if [ -n "$missing" ]; then
  if [ "${CI:-}" = true ]; then echo "FAIL: not installed:$missing (scripts/deps.sh --test installs them)"; exit 1; fi
  echo "SKIP: not installed:$missing (scripts/deps.sh --test installs them)"
  exit 0
fi

# puppeteer-core, pinned: npm ci on first use (no install scripts: it downloads no browser).
if [ ! -f "$here/node_modules/puppeteer-core/package.json" ]; then
  lock="$here/.npm-ci.lock"
  for _ in $(seq 1 300); do mkdir "$lock" 2>/dev/null && break; sleep 1; done
  if [ ! -f "$here/node_modules/puppeteer-core/package.json" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts >&2) ||
      { rmdir "$lock"; echo "test_web: 'npm ci' in tests/browser failed (is the npm registry reachable?)"; exit 1; }
  fi
  rmdir "$lock" 2>/dev/null || true
fi

ARTIFACTS=${BROWSER_ARTIFACTS:-$TMP/artifacts}
mkdir -p "$ARTIFACTS"
export TASKHOST_STORE="sqlite:$TMP/web.db"

section "the page's origin: python3 -m http.server on 127.0.0.1"
WEB_PID=""
stop_web() { [ -z "$WEB_PID" ] || { kill "$WEB_PID" 2>/dev/null; wait "$WEB_PID" 2>/dev/null; WEB_PID=""; }; }
trap 'stop_web; _cleanup' EXIT
for _ in 1 2 3 4 5; do
  web_port=$((40001 + RANDOM % 20000))
  port_in_use "$web_port" && continue
  python3 -m http.server --bind 127.0.0.1 --directory "$SOURCE_DIR/web" "$web_port" \
    >"$TMP/web.log" 2>&1 &
  WEB_PID=$!
  for _ in $(seq 1 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$web_port/index.html")" = 200 ] && break 2
    sleep 0.1
  done
  stop_web
done
[ -n "$WEB_PID" ] || { fail "the static server starts"; finish; }
WEB_ORIGIN="http://127.0.0.1:$web_port"
pass

section "the API: taskhost --serve on another port (auth $mode)"
flow_env=(AUTH="$mode")
if [ "$mode" = on ]; then
  : "${COGNITO_ENDPOINT:?AUTH=on runs under tests/cognito/with_cognito.sh}"
  export TASKHOST_AUTH=jwt TASKHOST_JWKS=$COGNITO_JWKS_URL TASKHOST_JWT_ISSUER=$COGNITO_ISSUER \
    TASKHOST_JWT_AUDIENCE=$COGNITO_CLIENT_ID TASKHOST_CORS_ORIGIN=$WEB_ORIGIN
  user=web@example.com password='Passw0rd-for-the-web'
  # The sign-in user exists with a permanent password (token.sh --create); the pasted token
  # is another user's.
  TASKHOST_USER=$user TASKHOST_PASSWORD=$password bash "$SOURCE_DIR/scripts/token.sh" --create \
    </dev/null >/dev/null 2>"$TMP/token.err" || { fail "the web user" "$(cat "$TMP/token.err")"; finish; }
  paste_token=$(TASKHOST_USER=paste@example.com TASKHOST_PASSWORD=$password \
    bash "$SOURCE_DIR/scripts/token.sh" --create </dev/null 2>"$TMP/token.err") ||
    { fail "a token to paste" "$(cat "$TMP/token.err")"; finish; }
  flow_env+=(COGNITO_ENDPOINT="$COGNITO_ENDPOINT" COGNITO_CLIENT_ID="$COGNITO_CLIENT_ID"
    WEB_USER="$user" WEB_PASSWORD="$password" TOKEN="$paste_token")
fi
serve_start || { fail "the API starts"; finish; }
pass
check "the page and the API are two origins" test "$WEB_ORIGIN" != "$BASE_URL"

section "the flow in headless Chromium ($("$CHROMIUM" --version 2>/dev/null | head -n 1))"
t0=$(date +%s%3N)
env "${flow_env[@]}" CHROMIUM="$CHROMIUM" WEB_URL="$WEB_ORIGIN/index.html" API_URL="$BASE_URL" \
  SCREENSHOT="$ARTIFACTS/web-auth-$mode.png" RESULTS="$TMP/results.json" \
  node "$here/flow.mjs" >"$TMP/flow.out" 2>&1
rc=$?
sed 's/^/      /' "$TMP/flow.out"
echo "      (the browser flow took $(($(date +%s%3N) - t0)) ms)"
check_eq "flow.mjs: every check passed" 0 "$rc"
check "a screenshot is kept: $ARTIFACTS/web-auth-$mode.png" test -s "$ARTIFACTS/web-auth-$mode.png"
serve_stop

section "the API's log: the browser's preflights were answered"
check "OPTIONS /tasks → 204" jq -e -s \
  'any(.[]; .message == "request" and .method == "OPTIONS" and .path == "/tasks" and .status == 204)' "$SERVE_LOG"
check "OPTIONS /tasks/{id} → 204 (PUT, DELETE)" jq -e -s \
  'any(.[]; .message == "request" and .method == "OPTIONS" and (.path | startswith("/tasks/")) and .status == 204)' "$SERVE_LOG"
check "no preflight refused" jq -e -s \
  'all(.[]; ((.message == "request" and .method == "OPTIONS") | not) or .status == 204)' "$SERVE_LOG"
echo "      $(jq -s '[.[] | select(.message == "request" and .method == "OPTIONS")] | length' "$SERVE_LOG") preflights in the API's log"

if [ "$mode" = off ]; then
  section "the same page against an API whose CORS origin is another: refused by the browser"
  # CORS is enforced for real: an API allowing only another origin is unusable from this page.
  TASKHOST_CORS_ORIGIN=https://elsewhere.example serve_start || { fail "the API starts"; finish; }
  env AUTH=off EXPECT_CORS_REFUSED=1 CHROMIUM="$CHROMIUM" WEB_URL="$WEB_ORIGIN/index.html" \
    API_URL="$BASE_URL" SCREENSHOT="$TMP/refused.png" RESULTS="$TMP/refused.json" \
    node "$here/flow.mjs" >"$TMP/refused.out" 2>&1
  rc=$?
  sed 's/^/      /' "$TMP/refused.out"
  check_eq "flow.mjs (CORS refused): every check passed" 0 "$rc"
  serve_stop
fi

finish
