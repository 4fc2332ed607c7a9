# lib.sh — shared helpers for the end-to-end tests (tests/e2e/test_*.sh).
# Sourced, not run. Needs only bash, curl, jq and coreutils.
#
# Environment (set by CTest, see tests/CMakeLists.txt):
#   TASKHOST_BIN  the binary under test     FIXTURES   tests/fixtures
#   ROUTES_DIR    the lua/ folder           SOURCE_DIR the repository root
#
# What it gives a test:
#   $TMP                          a private temp dir, removed on exit (a server
#                                 still running is killed first)
#   check NAME CMD...             pass when CMD succeeds
#   check_eq NAME EXPECTED ACTUAL / check_match NAME REGEX ACTUAL
#   check_jq NAME JSON FILTER     pass when `jq -e FILTER` holds on JSON
#   finish                        prints "N passed, N failed"; exit 1 on failure
#   event v1|v2 METHOD PATH [options]   an API Gateway event on stdout (jq)
#   run_local FILE                taskhost --local FILE → $RC $OUT $ERR
#   api v1|v2 METHOD PATH [options]     event + run_local + $STATUS $BODY
#   status_of / body_of / header_of NAME  (on $OUT, a proxy response)
#   serve_start / serve_stop [SIG] / http METHOD PATH [curl args]
#                                 with E2E_TRANSPORT=lambda, serve_start starts
#                                 the Lambda loop behind a loopback API Gateway
#                                 instead of --serve (see lambda_gateway_start)
#   paginate NAME LIMIT FETCH_FN IDS_FILE   walks every page of GET /tasks

set -u
set -o pipefail

: "${TASKHOST_BIN:?TASKHOST_BIN must name the taskhost binary}"
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ROUTES_DIR=${ROUTES_DIR:-$SOURCE_DIR/lua}
FIXTURES=${FIXTURES:-$SOURCE_DIR/tests/fixtures}

for tool in jq curl; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is required" >&2; exit 2; }
done
[ -x "$TASKHOST_BIN" ] || { echo "e2e: TASKHOST_BIN=$TASKHOST_BIN is not executable" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskhost-e2e.XXXXXX") || exit 2
SERVER_PID=""
LAMBDA_PIDS=()
GATEWAY_PID=""

_cleanup() {
  local p
  for p in "$SERVER_PID" "${LAMBDA_PIDS[@]}" "$GATEWAY_PID"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
      kill -KILL "$p" 2>/dev/null
      wait "$p" 2>/dev/null
    fi
  done
  # background jobs this script started and still running (parallel runs, curls)
  local job
  for job in $(jobs -p); do kill "$job" 2>/dev/null; done
  rm -rf "$TMP"
}
trap _cleanup EXIT
trap 'echo "e2e: interrupted" >&2; exit 130' INT TERM

# A clean, known configuration: nothing from the caller's environment leaks in.
# E2E_STORE=dynamodb (set by tests/integration/with_dynalite.sh runs) keeps the
# DynamoDB settings the wrapper exported, so the same scenario runs on both
# backends; otherwise every test gets its own SQLite file.
unset TASKHOST_CORS_ORIGIN TASKHOST_CURSOR_SECRET TASKHOST_MAX_BODY_BYTES \
  TASKHOST_LUA_MEMORY_MB TASKHOST_LUA_INSTRUCTIONS TASKHOST_LUA_TIMEOUT_MS TASKHOST_WORKERS \
  AWS_LAMBDA_LOG_LEVEL TASKHOST_LOG_LEVEL AWS_LAMBDA_LOG_FORMAT \
  TASKHOST_AUTH TASKHOST_JWKS TASKHOST_JWT_ISSUER TASKHOST_JWT_AUDIENCE
if [ "${E2E_STORE:-sqlite}" = dynamodb ]; then
  : "${TABLE_NAME:?E2E_STORE=dynamodb needs TABLE_NAME (run under with_dynalite.sh)}"
  export TASKHOST_STORE=dynamodb
else
  unset TABLE_NAME
  export TASKHOST_STORE="sqlite:$TMP/local.db"
fi
export TASKHOST_ROUTES="$ROUTES_DIR"

SECONDS=0

# ---- assertions ------------------------------------------------------------

PASSED=0
FAILED=0

pass() { PASSED=$((PASSED + 1)); }

# fail NAME [DETAIL...]
fail() {
  FAILED=$((FAILED + 1))
  local name=$1
  shift
  echo "FAIL: $name${*:+ — $*}"
  # The last response helps more than anything else when a check fails.
  if [ -n "${OUT:-}" ] && [ "${SHOW_LAST:-1}" = 1 ]; then
    echo "      last response: ${OUT:0:600}"
  fi
}

# check NAME CMD...: passes when CMD exits 0.
check() {
  local name=$1
  shift
  if "$@" >/dev/null 2>&1; then pass; else fail "$name" "command failed: $*"; fi
}

check_eq() {
  if [ "$2" == "$3" ]; then pass; else fail "$1" "expected [${2:0:300}], got [${3:0:300}]"; fi
}

check_match() {
  if [[ $3 =~ $2 ]]; then pass; else fail "$1" "[${3:0:300}] does not match /$2/"; fi
}

# check_jq NAME JSON FILTER [jq args...]
check_jq() {
  local name=$1 json=$2 filter=$3
  shift 3
  if jq -e "$@" "$filter" >/dev/null 2>&1 <<<"$json"; then
    pass
  else
    fail "$name" "jq '$filter' does not hold on ${json:0:400}"
  fi
}

section() { echo "== $*"; }

finish() {
  echo "($SECONDS s)"
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ] || exit 1
  exit 0
}

# ---- API Gateway events ----------------------------------------------------

# event v1|v2 METHOD PATH [options] — prints an API Gateway proxy event.
#   -q KEY=VALUE   query parameter (repeatable; the value as the client meant it)
#   -H 'Name: v'   header (repeatable)
#   -b BODY        body text; adds Content-Type: application/json unless a
#                  content-type header is given
#   -B             isBase64Encoded: true (BODY is sent as given)
#   -s STAGE       requestContext.stage (default: "$default" for v2, "test" for v1)
#   -f FILE        body read from FILE
#   -c CLAIMS      a JSON object: the claims of API Gateway's authorizer
#                  (v2: requestContext.authorizer.jwt.claims, with scopes null;
#                  v1: requestContext.authorizer.claims, as a Cognito
#                  user-pool authorizer passes them)
event() {
  local version=$1 method=$2 path=$3
  shift 3
  local query="" headers="" body="" body_file="" has_body=false b64=false stage="" claims=null
  local OPTIND=1 opt
  while getopts "q:H:b:Bs:f:c:" opt; do
    case $opt in
      q) query+="$OPTARG"$'\n' ;;
      H) headers+="$OPTARG"$'\n' ;;
      b) body=$OPTARG has_body=true ;;
      f) body_file=$OPTARG has_body=true ;;
      B) b64=true ;;
      s) stage=$OPTARG ;;
      c) claims=$OPTARG ;;
      *) echo "event: bad option" >&2; return 2 ;;
    esac
  done
  if [ -z "$stage" ]; then
    if [ "$version" = v2 ]; then stage='$default'; else stage=test; fi
  fi
  # The body goes through a file: a 200 KB --arg is over the kernel's limit.
  if [ -z "$body_file" ]; then
    body_file="$TMP/event-body.txt"
    printf "%s" "$body" >"$body_file"
  fi
  jq -n -c --arg version "$version" --arg method "$method" --arg path "$path" \
    --arg query "$query" --arg headers "$headers" --rawfile body "$body_file" \
    --argjson has_body "$has_body" --argjson b64 "$b64" --arg stage "$stage" \
    --argjson claims "$claims" '
    def lines: split("\n") | map(select(length > 0));
    ($query | lines | map(index("=") as $i
        | if $i == null then {k: ., v: ""} else {k: .[:$i], v: .[$i + 1:]} end)) as $q
    | ($headers | lines | map(capture("^(?<k>[^:]+):[ ]*(?<v>.*)$"))) as $h
    | ($h | map({(.k): .v}) | add // {}) as $hdrs
    | (if $has_body and ($h | map(.k | ascii_downcase) | index("content-type")) == null
       then $hdrs + {"content-type": "application/json"} else $hdrs end) as $hdrs
    | ($q | map({(.k): .v}) | add) as $qsp
    | ($q | reduce .[] as $e ({}; .[$e.k] += [$e.v])) as $mqsp
    | ($q | map("\(.k | @uri)=\(.v | @uri)") | join("&")) as $raw
    | if $version == "v2" then
        {version: "2.0", routeKey: "$default", rawPath: $path, rawQueryString: $raw,
         headers: $hdrs, queryStringParameters: $qsp,
         requestContext: {accountId: "123456789012", apiId: "e2e", domainName: "e2e.local",
           requestId: "e2e-\(now)", stage: $stage, routeKey: "$default",
           timeEpoch: (now * 1000 | floor),
           http: {method: $method, path: $path, protocol: "HTTP/1.1",
                  sourceIp: "192.0.2.1", userAgent: "e2e"}},
         isBase64Encoded: $b64}
        + (if $has_body then {body: $body} else {} end)
        | if $qsp == null then del(.queryStringParameters) else . end
        | if $claims == null then . else
            .requestContext.authorizer = {jwt: {claims: $claims, scopes: null}} end
      else
        {resource: "/{proxy+}", path: $path, httpMethod: $method,
         headers: $hdrs, multiValueHeaders: ($hdrs | map_values([.])),
         queryStringParameters: $qsp, multiValueQueryStringParameters: (if $qsp == null then null else $mqsp end),
         pathParameters: null, stageVariables: null,
         requestContext: {accountId: "123456789012", apiId: "e2e", stage: $stage,
           requestId: "e2e-\(now)", httpMethod: $method, resourcePath: "/{proxy+}",
           path: "/\($stage)\($path)", identity: {sourceIp: "192.0.2.1"}},
         body: (if $has_body then $body else null end),
         isBase64Encoded: $b64}
        | if $claims == null then . else .requestContext.authorizer = {claims: $claims} end
      end'
}

# ---- --local ----------------------------------------------------------------

RESP_LOG="$TMP/responses.jsonl" # every proxy response seen, for global checks
: >"$RESP_LOG"

# run_local FILE: taskhost --local FILE; sets RC, OUT (stdout), ERR (stderr).
run_local() {
  local file=$1
  "$TASKHOST_BIN" --local "$file" >"$TMP/out" 2>"$TMP/err"
  RC=$?
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
  if [ "$RC" -eq 0 ] && [ -n "$OUT" ]; then
    printf '%s\n' "$OUT" >>"$RESP_LOG"
  fi
}

status_of() { jq -r '.statusCode' <<<"$OUT" 2>/dev/null; }
body_of() { jq -r '.body' <<<"$OUT" 2>/dev/null; }
# header_of NAME: the header value (names compared case-insensitively).
header_of() {
  jq -r --arg n "$1" '.headers // {} | to_entries
    | map(select(.key | ascii_downcase == ($n | ascii_downcase))) | .[0].value // empty' \
    <<<"$OUT" 2>/dev/null
}

EVENT_SEQ=0
# api v1|v2 METHOD PATH [event options]: builds the event, runs it, and sets
# RC OUT ERR STATUS BODY (the body text, JSON for our API).
api() {
  EVENT_SEQ=$((EVENT_SEQ + 1))
  local file="$TMP/event.$EVENT_SEQ.json"
  event "$@" >"$file" || { fail "event $*" "cannot build the event"; return 1; }
  run_local "$file"
  STATUS="" BODY=""
  if [ -n "$OUT" ]; then
    # one jq for both: the status on the first line, then the body text
    { IFS= read -r STATUS; BODY=$(cat); } < <(jq -r ".statusCode, .body" <<<"$OUT" 2>/dev/null)
  fi
  rm -f "$file"
}

# expect NAME STATUS [JQ-FILTER-ON-BODY [jq args...]]: status and, optionally,
# a condition on the body.
expect() {
  local name=$1 want=$2
  shift 2
  check_eq "$name: exit status" 0 "$RC"
  check_eq "$name: HTTP status" "$want" "$STATUS"
  if [ $# -ge 1 ]; then check_jq "$name: body" "$BODY" "$@"; fi
}

# expect_error NAME STATUS FIELD MESSAGE-REGEX: a 4xx naming FIELD.
expect_error() {
  local name=$1 want=$2 field=$3 msg=$4
  expect "$name" "$want"
  check_jq "$name: names field '$field', message /$msg/" "$BODY" \
    '.field == $f and (.message | test($re))' --arg f "$field" --arg re "$msg"
}

# ---- --serve ------------------------------------------------------------------

PORT=""
BASE_URL=""
SERVE_LOG=""
SERVE_N=0
# env --default-signal (coreutils >= 8.31) when this env has it.
if env --default-signal=INT true 2>/dev/null; then
  DEFAULT_SIGNALS=(env --default-signal=INT,TERM)
else
  DEFAULT_SIGNALS=(env)
fi

# port_in_use PORT: something accepts connections on it.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# serve_start [PORT]: starts taskhost --serve on 127.0.0.1 (a random free port
# in 20000-40000 unless given) with the current environment; waits until it
# answers HTTP (up to ~10 s). Sets SERVER_PID PORT BASE_URL SERVE_LOG.
# Returns 1 when it does not come up.
serve_start() {
  if [ "${E2E_TRANSPORT:-serve}" = lambda ]; then
    lambda_gateway_start
    return
  fi
  local want=${1:-} try port
  for try in 1 2 3 4 5 6 7 8; do
    port=${want:-$((20000 + RANDOM % 20001))}
    if [ -z "$want" ] && port_in_use "$port"; then continue; fi
    SERVE_N=$((SERVE_N + 1))
    SERVE_LOG="$TMP/serve.$SERVE_N.log"
    # Background jobs of a script start with SIGINT ignored; a terminal user's
    # server would not, so give it the default disposition back.
    "${DEFAULT_SIGNALS[@]}" "$TASKHOST_BIN" --serve "127.0.0.1:$port" \
      </dev/null >"$TMP/serve.$SERVE_N.out" 2>"$SERVE_LOG" &
    SERVER_PID=$!
    PORT=$port
    BASE_URL="http://127.0.0.1:$port"
    local i code
    for i in $(seq 1 100); do
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        break
      fi
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE_URL/tasks?limit=1")
      if [ "$code" != 000 ]; then
        return 0
      fi
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      kill -KILL "$SERVER_PID" 2>/dev/null
      wait "$SERVER_PID" 2>/dev/null
      SERVER_PID=""
      echo "serve_start: no answer on $BASE_URL within 10 s; log:" >&2
      cat "$SERVE_LOG" >&2
      return 1
    fi
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
    if [ -z "$want" ] && grep -qi "in use" "$SERVE_LOG"; then
      continue # lost a race for the port: pick another
    fi
    echo "serve_start: the server exited at start-up; log:" >&2
    cat "$SERVE_LOG" >&2
    return 1
  done
  echo "serve_start: no free port found" >&2
  return 1
}

# serve_stop [SIGNAL]: sends SIGNAL (default TERM), waits up to 10 s, sets
# SERVE_RC to its exit status and checks that it is 0 (a clean shutdown).
SERVE_RC=""
serve_stop() {
  local sig=${1:-TERM} i
  SERVE_RC=""
  if [ "${E2E_TRANSPORT:-serve}" = lambda ]; then
    lambda_gateway_stop "$sig"
    return
  fi
  [ -n "$SERVER_PID" ] || return 1
  kill -"$sig" "$SERVER_PID" 2>/dev/null
  for i in $(seq 1 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    fail "server stops within 10 s of SIG$sig"
    kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  wait "$SERVER_PID" 2>/dev/null
  SERVE_RC=$?
  SERVER_PID=""
  check_eq "server on port $PORT exits 0 after SIG$sig" 0 "$SERVE_RC"
}

# ---- the Lambda loop behind a loopback API Gateway (E2E_TRANSPORT=lambda) ----

# lambda_gateway_start: tests/lambda/runtime_api_server.py with its loopback
# API Gateway (an HTTP request → a payload-2.0 event → the function's response
# as the HTTP answer), and E2E_LAMBDA_INSTANCES (default 3) taskhost processes
# started the way Lambda starts `bootstrap` (no arguments,
# AWS_LAMBDA_RUNTIME_API set), all polling that one emulator with the current
# environment (one store): concurrent instances of one function. Sets BASE_URL
# (the gateway), PORT, LAMBDA_PIDS, GATEWAY_PID, GATEWAY_REC (the emulator's
# record: one line per next/response, "client" telling the instances apart)
# and SERVE_LOG (every instance's stderr). Waits until a request is answered;
# returns 1 when that does not happen within ~20 s.
lambda_gateway_start() {
  SERVE_N=$((SERVE_N + 1))
  local dir="$TMP/apigw.$SERVE_N" n=${E2E_LAMBDA_INSTANCES:-3} i code
  local py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  mkdir -p "$dir"
  SERVE_LOG="$dir/instances.log"
  GATEWAY_REC="$dir/record.jsonl"
  : >"$SERVE_LOG"
  "$py" "$SOURCE_DIR/tests/lambda/runtime_api_server.py" --port-file "$dir/rapi.port" \
    --gateway-port-file "$dir/gw.port" --record "$GATEWAY_REC" --timeout 900 \
    </dev/null 2>"$dir/server.log" &
  GATEWAY_PID=$!
  for i in $(seq 1 200); do
    [ -s "$dir/gw.port" ] && [ -s "$dir/rapi.port" ] && break
    kill -0 "$GATEWAY_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ ! -s "$dir/gw.port" ]; then
    echo "lambda_gateway_start: the emulator did not start:" >&2
    cat "$dir/server.log" >&2
    return 1
  fi
  PORT=$(cat "$dir/gw.port")
  BASE_URL="http://127.0.0.1:$PORT"
  LAMBDA_PIDS=()
  for i in $(seq 1 "$n"); do
    AWS_LAMBDA_RUNTIME_API="127.0.0.1:$(cat "$dir/rapi.port")" "${DEFAULT_SIGNALS[@]}" \
      "$TASKHOST_BIN" </dev/null >"$dir/instance.$i.out" 2>>"$SERVE_LOG" &
    LAMBDA_PIDS+=($!)
  done
  SERVER_PID=${LAMBDA_PIDS[0]}
  for i in $(seq 1 20); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE_URL/tasks?limit=1")
    [ "$code" = 200 ] && return 0
    sleep 0.5
  done
  echo "lambda_gateway_start: no 200 through $BASE_URL within ~20 s (last: $code); log:" >&2
  cat "$SERVE_LOG" "$dir/server.log" >&2
  return 1
}

# lambda_gateway_stop [SIGNAL]: SIGNAL (default TERM) to every instance; each
# must exit 0 within 10 s (checked); then the emulator stops.
lambda_gateway_stop() {
  local sig=${1:-TERM} p i rc all=0
  for p in "${LAMBDA_PIDS[@]}"; do kill -"$sig" "$p" 2>/dev/null; done
  for p in "${LAMBDA_PIDS[@]}"; do
    for i in $(seq 1 100); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$p" 2>/dev/null; then
      fail "instance $p stops within 10 s of SIG$sig"
      kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null
    rc=$?
    [ "$rc" = 0 ] || all=$rc
  done
  SERVE_RC=$all
  check_eq "every Lambda instance (${#LAMBDA_PIDS[@]}) exits 0 after SIG$sig" 0 "$all"
  LAMBDA_PIDS=()
  SERVER_PID=""
  echo "      $(jq -c 'select(.kind == "response")' "$GATEWAY_REC" | wc -l) invocations answered by $(lambda_instances_used) instances"
  check_eq "the emulator saw no /error and nothing unexpected" "" \
    "$(jq -c 'select(.kind == "error" or .kind == "unknown" or .kind == "bad_request")' "$GATEWAY_REC" | head -3)"
  if [ -n "$GATEWAY_PID" ]; then
    kill -TERM "$GATEWAY_PID" 2>/dev/null
    wait "$GATEWAY_PID" 2>/dev/null
    GATEWAY_PID=""
  fi
}

# lambda_instances_used: how many instances (Runtime API connections) posted a response.
lambda_instances_used() {
  jq -r 'select(.kind == "response") | .client' "$GATEWAY_REC" | sort -u | grep -c .
}

# http METHOD PATH [curl args...]: one request to the server. Sets STATUS,
# BODY, HDRS (the response header block, CR stripped) and OUT (a summary for
# failure messages).
HTTP_LOG="$TMP/http.log" # one line per response missing CORS/nosniff headers
: >"$HTTP_LOG"
HTTP_COUNT=0
http() {
  local method=$1 path=$2 how
  shift 2
  if [ "$method" = HEAD ]; then how=(-I); else how=(-X "$method"); fi
  rm -f "$TMP/h" "$TMP/b"
  STATUS=$(curl -s "${how[@]}" --max-time 20 -D "$TMP/h" -o "$TMP/b" -w '%{http_code}' \
    "$@" "$BASE_URL$path")
  RC=$?
  BODY=$(cat "$TMP/b" 2>/dev/null)
  [ "$method" != HEAD ] || BODY="" # curl -I writes the headers to -o too
  HDRS=$(tr -d '\r' <"$TMP/h" 2>/dev/null)
  OUT="$method $path → $STATUS (curl $RC) $BODY"
  HTTP_COUNT=$((HTTP_COUNT + 1))
  if [ "$RC" -eq 0 ] && { ! grep -qi '^access-control-allow-origin: .' <<<"$HDRS" ||
    ! grep -qi '^x-content-type-options: nosniff$' <<<"$HDRS"; }; then
    echo "$method $path → $STATUS" >>"$HTTP_LOG"
  fi
}

# hdr NAME: a header of the last http response (case-insensitive name).
hdr() {
  local name
  name=$(tr '[:upper:]' '[:lower:]' <<<"$1")
  awk -v n="$name" 'BEGIN{FS=": "} { k=tolower($1) } k==n { sub(/^[^:]*: /, ""); v=$0 } END{ if (v!="") print v }' <<<"$HDRS"
}

# ---- pagination ---------------------------------------------------------------

# paginate NAME LIMIT FETCH_FN EXPECTED_IDS_FILE
# FETCH_FN LIMIT CURSOR must set STATUS and BODY for GET /tasks?limit=..&next=..
# (no next when CURSOR is empty). Checks: every page 200, count == #items <=
# LIMIT, a full page before the end, every id exactly once, the set of ids
# equals EXPECTED_IDS_FILE (one id a line), last page's next is null.
paginate() {
  local name=$1 limit=$2 fetch=$3 expected=$4
  local cursor="" pages=0 bad=0 ids="$TMP/paged.ids" nitems count next ntype
  : >"$ids"
  while :; do
    pages=$((pages + 1))
    if [ "$pages" -gt 2000 ]; then
      fail "$name: ends" "more than 2000 pages"
      return
    fi
    "$fetch" "$limit" "$cursor"
    if [ "$STATUS" != 200 ]; then
      fail "$name: page $pages status" "expected 200, got $STATUS: ${BODY:0:300}"
      return
    fi
    # one jq a page: the summary on the first line, then the ids
    jq -r '([(.items | length), .count, (.next // "null"), (.next | type)] | @tsv), .items[].id' \
      <<<"$BODY" >"$TMP/page.txt" 2>/dev/null || {
      fail "$name: page $pages is JSON" "${BODY:0:300}"
      return
    }
    IFS=$'\t' read -r nitems count next ntype <"$TMP/page.txt"
    tail -n +2 "$TMP/page.txt" >>"$ids"
    if [ "$nitems" != "$count" ] || [ "$nitems" -gt "$limit" ]; then
      bad=$((bad + 1))
      fail "$name: page $pages count" "count=$count items=$nitems limit=$limit"
    fi
    if [ "$ntype" = null ]; then
      break
    fi
    if [ "$ntype" != string ] || [ -z "$next" ]; then
      fail "$name: page $pages next" "next is a $ntype"
      return
    fi
    if [ "$nitems" != "$limit" ]; then
      # A short page that is not the last one: legal for a scan, but not what
      # a SQLite-backed store should do.
      fail "$name: page $pages is full (not last)" "items=$nitems limit=$limit"
    fi
    cursor=$next
  done
  local total uniq
  total=$(wc -l <"$ids")
  uniq=$(sort -u "$ids" | wc -l)
  check_eq "$name: total items over $pages pages" "$(wc -l <"$expected")" "$total"
  check_eq "$name: each item exactly once" "$total" "$uniq"
  check_eq "$name: the ids are the ones created" "$(sort "$expected")" "$(sort "$ids")"
  local min_pages=$(( ($(wc -l <"$expected") + limit - 1) / limit ))
  if [ "$pages" -lt "$min_pages" ] || [ "$pages" -gt $((min_pages + 1)) ]; then
    fail "$name: page count" "expected $min_pages (or one empty extra), got $pages"
  else
    pass
  fi
  [ "$bad" -eq 0 ] && pass
}

# ---- misc ---------------------------------------------------------------------

# repeat_char CHAR N: CHAR repeated N times (CHAR may be multi-byte).
repeat_char() {
  local out="" n=$2 chunk=$1
  while [ "$n" -gt 0 ]; do
    if [ $((n & 1)) -eq 1 ]; then out+=$chunk; fi
    chunk+=$chunk
    n=$((n >> 1))
  done
  printf '%s' "$out"
}

# json_task TEXT: {"task": TEXT} with TEXT properly escaped.
json_task() { jq -n -c --arg t "$1" '{task: $t}'; }

# New tasks get time-ordered ids: UUIDv7 (routes.lua).
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
ABSENT_ID=00000000-0000-4000-8000-000000000000
