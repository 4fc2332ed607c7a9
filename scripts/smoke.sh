#!/usr/bin/env bash
# smoke.sh — checks a running taskhost API end to end, as a client sees it: the check to run
# after a deploy (scripts/deploy.sh runs it after `terraform apply`) or against --serve.
#
#   scripts/smoke.sh API_URL [--token TOKEN] [--api-key KEY] [--origin ORIGIN] [--timeout SECONDS] [--wait SECONDS]
#
#   API_URL    the API's base URL: terraform output api_endpoint, or http://127.0.0.1:3000
#   --token    a bearer token (scripts/token.sh prints one) when the API has auth on: every
#              request carries it, and requests without it (and with a bad one) must be 401
#   --api-key  an API key (a REST API with api_clients: terraform output api_key_ids names
#              them): every request but the preflight sends it as x-api-key, and a request
#              without it must be refused (403)
#   --origin   the Origin of the CORS preflight (default: https://example.com); give the
#              deployment's cors_origin when it is not "*"
#   --timeout  seconds each request may take (default 30; a cold Lambda start is in it)
#   --wait     first wait up to this many seconds for the API to answer at all (anything but
#              a connection error or a 404 from GET /tasks): a new API Gateway stage can
#              take a few seconds; deploy.sh gives 60 (default 0: no wait)
#
# Checks, each printed as one PASS or FAIL line, each verified by its effect, not its status:
#   create      POST /tasks → 201, Location names the new task, the body is the task sent
#   read        GET /tasks/{id} → 200, the task as created
#   update      PUT /tasks/{id} → 200; read back: the new status and priority, the rest kept
#   list        GET /tasks?limit=1 → one task and a cursor; the next page → other tasks
#   delete      DELETE /tasks/{id} → 200; read back: 404
#   validation  POST /tasks {} → 400 naming 'task'
#   not found   GET /tasks/{an id that does not exist} → 404
#   preflight   OPTIONS /tasks from ORIGIN asking for POST with Authorization and
#               Content-Type → allowed (origin, method and both headers)
#   api key     (with --api-key) GET /tasks without x-api-key → 403
#   auth        (with --token) no token → 401 (WWW-Authenticate: Bearer, when sent); a token
#               with a changed signature → 401
# Read-backs are retried for a few seconds: DynamoDB reads are eventually consistent
# (SMOKE_SETTLE_SECONDS, default 6, is how long).
# Every task it creates is deleted when it ends, however it ends. Exit status: 0 when every
# check passed, 1 when one failed, 2 on a usage error. Needs bash, curl and jq.
set -uo pipefail
me=$(basename "$0")

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

url="" token="" apikey="" origin="https://example.com" timeout=30 wait=0 settle=${SMOKE_SETTLE_SECONDS:-6}
while [ $# -gt 0 ]; do
  case $1 in
    --token) [ $# -ge 2 ] || { echo "$me: --token needs a value" >&2; exit 2; }; token=$2; shift ;;
    --api-key) [ $# -ge 2 ] || { echo "$me: --api-key needs a value" >&2; exit 2; }; apikey=$2; shift ;;
    --origin) [ $# -ge 2 ] || { echo "$me: --origin needs a value" >&2; exit 2; }; origin=$2; shift ;;
    --timeout) [ $# -ge 2 ] || { echo "$me: --timeout needs a value" >&2; exit 2; }; timeout=$2; shift ;;
    --wait) [ $# -ge 2 ] || { echo "$me: --wait needs a value" >&2; exit 2; }; wait=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "$me: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$url" ] || { echo "$me: one API_URL only (see --help)" >&2; exit 2; }; url=$1 ;;
  esac
  shift
done
[ -n "$url" ] || { usage >&2; exit 2; }
case $url in http://* | https://*) ;; *) echo "$me: API_URL must start with http:// or https://" >&2; exit 2 ;; esac
case $timeout$wait$settle in
  '' | *[!0-9]*) echo "$me: --timeout, --wait and SMOKE_SETTLE_SECONDS take whole seconds" >&2; exit 2 ;;
esac
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "$me: $tool is required" >&2; exit 2; }
done
url=${url%/}

tmp=$(mktemp -d)
created=() # ids to delete on exit
passed=0 failed=0

cleanup() {
  local id
  for id in "${created[@]+"${created[@]}"}"; do
    [ -n "$id" ] || continue
    curl -s -o /dev/null --max-time "$timeout" -X DELETE "${auth[@]+"${auth[@]}"}" "${keyh[@]+"${keyh[@]}"}" "$url/tasks/$id" || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

auth=()
[ -z "$token" ] || auth=(-H "Authorization: Bearer $token")
keyh=()
[ -z "$apikey" ] || keyh=(-H "x-api-key: $apikey")

pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

# req METHOD PATH [curl args...]: sets STATUS, BODY, HDRS (header block, CR stripped); the
# token goes along unless NOAUTH=1, the API key unless NOKEY=1 or the method is OPTIONS (a
# browser's preflight carries neither).
req() {
  local method=$1 path=$2 rc
  shift 2
  local a=("${auth[@]+"${auth[@]}"}")
  [ "${NOAUTH:-0}" = 0 ] || a=()
  [ "${NOKEY:-0}" = 1 ] || [ "$method" = OPTIONS ] || a+=("${keyh[@]+"${keyh[@]}"}")
  : >"$tmp/h"
  : >"$tmp/b"
  STATUS=$(curl -s -X "$method" --max-time "$timeout" -D "$tmp/h" -o "$tmp/b" -w '%{http_code}' \
    "${a[@]+"${a[@]}"}" "$@" "$url$path")
  rc=$?
  [ "$rc" -eq 0 ] || STATUS="curl error $rc"
  BODY=$(cat "$tmp/b")
  HDRS=$(tr -d '\r' <"$tmp/h")
}
# hdr NAME: a header of the last response (the last one of that name, any case).
hdr() {
  awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$1")" 'BEGIN { FS = ": " }
    tolower($1) == n { sub(/^[^:]*: /, ""); v = $0 } END { print v }' <<<"$HDRS"
}
# holds JQ-FILTER [jq args...]: the last body satisfies the filter.
holds() { jq -e "$@" <<<"$BODY" >/dev/null 2>&1; }
# what: the last response in a few words, for a FAIL line.
what() { printf '%s %s' "$STATUS" "$(head -c 300 <<<"$BODY" | tr '\n' ' ')"; }
json=(-H 'Content-Type: application/json')

# read_back ID JQ-FILTER [jq args]: GET /tasks/ID until the body satisfies the filter (or
# $settle seconds pass: an eventually consistent read catches up well within 6).
read_back() {
  local id=$1 i
  shift
  for ((i = 0; i <= settle; i++)); do
    req GET "/tasks/$id"
    if [ "$STATUS" = 200 ] && holds "$@"; then return 0; fi
    [ "$i" = "$settle" ] || sleep 1
  done
  return 1
}

run_id="smoke $(date -u +%Y-%m-%dT%H:%M:%SZ) $$"
echo "== $me: $url${token:+ (with a token)}"
if [ "$wait" -gt 0 ]; then
  deadline=$((SECONDS + wait))
  while :; do
    req GET '/tasks?limit=1'
    case $STATUS in "curl error"* | 404) ;; *) break ;; esac
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 2
  done
fi

# ---- create ----------------------------------------------------------------------------
id=""
req POST /tasks "${json[@]}" --data-binary "$(jq -nc --arg t "$run_id A" '{task: $t, priority: "high"}')"
if [ "$STATUS" = 201 ] && holds '.id | type == "string" and length > 0'; then
  id=$(jq -r .id <<<"$BODY")
  created+=("$id")
  task=$(jq -c .task <<<"$BODY")
  loc=$(hdr Location)
  if ! holds '.task.id == .id and .task.task == $t and .task.priority == "high" and .task.status == "new"' \
    --arg t "$run_id A"; then
    fail create "the body is not the task sent: $(what)"
  elif [[ $loc != */tasks/"$id" ]]; then
    fail create "Location '$loc' does not name /tasks/$id"
  else
    pass "create: 201, task $id, Location $loc"
  fi
else
  fail create "expected 201 with an id, got $(what)"
  if [ "$STATUS" = 401 ] && [ -z "$token" ]; then
    echo "$me: the API answers 401: auth is on; pass --token (scripts/token.sh prints one)" >&2
  fi
fi

# ---- read ------------------------------------------------------------------------------
if [ -n "$id" ]; then
  if read_back "$id" '. == $t' --argjson t "$task"; then
    pass "read: GET /tasks/$id is the task as created"
  else
    fail read "GET /tasks/$id: $(what)"
  fi
else
  fail read "no task was created"
fi

# ---- update ----------------------------------------------------------------------------
if [ -n "$id" ]; then
  req PUT "/tasks/$id" "${json[@]}" --data-binary '{"status": "completed", "priority": "low"}'
  if [ "$STATUS" != 200 ] || ! holds '.task.status == "completed" and .task.priority == "low"'; then
    fail update "PUT /tasks/$id: expected 200 with the updated task, got $(what)"
  elif read_back "$id" '.status == "completed" and .priority == "low" and .task == $t.task
      and .created_at == $t.created_at' --argjson t "$task"; then
    pass "update: PUT, then read back: status completed, priority low, the rest kept"
  else
    fail update "read back after PUT: $(what)"
  fi
else
  fail update "no task was created"
fi

# ---- list across two pages -------------------------------------------------------------
id2=""
req POST /tasks "${json[@]}" --data-binary "$(jq -nc --arg t "$run_id B" '{task: $t}')"
if [ "$STATUS" = 201 ] && holds '.id | type == "string"'; then
  id2=$(jq -r .id <<<"$BODY")
  created+=("$id2")
fi
list_ok=0
for ((try = 0; try <= settle; try++)); do
  req GET '/tasks?limit=1'
  if [ "$STATUS" = 200 ] && holds '.count == 1 and (.items | length) == 1 and (.next | type) == "string"'; then
    list_ok=1
    break
  fi
  [ "$try" = "$settle" ] || sleep 1
done
if [ -z "$id2" ]; then
  fail list "a second task could not be created: $(what)"
elif [ "$list_ok" = 0 ]; then
  fail list "GET /tasks?limit=1 (two tasks exist): expected one task and a next cursor, got $(what)"
else
  page1=$(jq -r '.items[].id' <<<"$BODY")
  cursor=$(jq -r .next <<<"$BODY")
  req GET "/tasks?limit=1&next=$(jq -rn --arg c "$cursor" '$c | @uri')"
  if [ "$STATUS" != 200 ] || ! holds '(.items | length) >= 1 and .count == (.items | length)'; then
    fail list "the second page: expected 200 with a task, got $(what)"
  else
    page2=$(jq -r '.items[].id' <<<"$BODY")
    if grep -qxF -f <(echo "$page1") <<<"$page2"; then
      fail list "the second page repeats the first ($page1)"
    else
      pass "list: page 1 ($page1) and page 2 ($page2) hold different tasks"
    fi
  fi
fi

# ---- delete ----------------------------------------------------------------------------
if [ -n "$id" ]; then
  req DELETE "/tasks/$id"
  if [ "$STATUS" != 200 ] || ! holds '.id == $id' --arg id "$id"; then
    fail delete "DELETE /tasks/$id: expected 200 naming it, got $(what)"
  else
    gone=0
    for ((try = 0; try <= settle; try++)); do
      req GET "/tasks/$id"
      [ "$STATUS" != 404 ] || { gone=1; break; }
      [ "$try" = "$settle" ] || sleep 1
    done
    if [ "$gone" = 1 ]; then
      pass "delete: DELETE, then read back: 404"
      created=("${created[@]/$id/}")
    else
      fail delete "read back after DELETE: expected 404, got $(what)"
    fi
  fi
else
  fail delete "no task was created"
fi

# ---- a validation error ----------------------------------------------------------------
req POST /tasks "${json[@]}" --data-binary '{}'
if [ "$STATUS" = 400 ] && holds '.field == "task" and (.message | type) == "string"'; then
  pass "validation: POST {} → 400 naming 'task' ($(jq -r .message <<<"$BODY"))"
else
  fail validation "POST {}: expected 400 naming 'task', got $(what)"
  if [ "$STATUS" = 201 ] && holds '.id | type == "string"'; then created+=("$(jq -r .id <<<"$BODY")"); fi
fi

# ---- not found -------------------------------------------------------------------------
req GET /tasks/00000000-0000-4000-8000-000000000000
if [ "$STATUS" = 404 ] && holds '.message | type == "string"'; then
  pass "not found: GET of an id that does not exist → 404"
else
  fail "not found" "GET /tasks/00000000-0000-4000-8000-000000000000: expected 404, got $(what)"
fi

# ---- CORS preflight --------------------------------------------------------------------
NOAUTH=1 req OPTIONS /tasks -H "Origin: $origin" -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: authorization,content-type'
acao=$(hdr Access-Control-Allow-Origin)
acam=$(hdr Access-Control-Allow-Methods | tr '[:lower:]' '[:upper:]')
acah=$(hdr Access-Control-Allow-Headers | tr '[:upper:]' '[:lower:]')
has() { [[ ",${2// /}," == *",$1,"* ]] || [ "${2// /}" = "*" ]; }
if [[ $STATUS != 20[04] ]]; then
  fail preflight "OPTIONS /tasks: expected 200 or 204, got $(what)"
elif [ "$acao" != "*" ] && [ "$acao" != "$origin" ]; then
  fail preflight "Access-Control-Allow-Origin is '$acao', not * or $origin (the deployment's cors_origin? give it with --origin)"
elif ! has POST "$acam"; then
  fail preflight "Access-Control-Allow-Methods '$acam' lacks POST"
elif ! has authorization "$acah" || ! has content-type "$acah"; then
  fail preflight "Access-Control-Allow-Headers '$acah' lacks authorization or content-type"
else
  pass "preflight: origin $acao, methods $acam, headers allowed: authorization, content-type"
fi

# ---- 403 without the API key -----------------------------------------------------------
if [ -n "$apikey" ]; then
  NOKEY=1 req GET /tasks
  if [ "$STATUS" = 403 ]; then
    pass "api key: no x-api-key → 403"
  else
    fail "api key" "GET /tasks without x-api-key: expected 403, got $(what)"
  fi
fi

# ---- 401 without a token ---------------------------------------------------------------
if [ -n "$token" ]; then
  NOAUTH=1 req GET /tasks
  www=$(hdr WWW-Authenticate)
  # The 401 is what matters; its challenge header is checked when there is one (taskhost and
  # API Gateway's JWT authorizer both send "Bearer ...").
  if [ "$STATUS" = 401 ] && { [ -z "$www" ] || [[ $www == Bearer* ]]; }; then
    pass "auth: no token → 401${www:+, WWW-Authenticate: $www}"
  else
    fail auth "GET /tasks without a token: expected 401 (WWW-Authenticate: Bearer), got $(what) (WWW-Authenticate '$www')"
  fi
  # The signature's first character changed (its last may carry only padding bits).
  sig=${token##*.}
  if [ "${sig:0:1}" = A ]; then swap=B; else swap=A; fi
  NOAUTH=1 req GET /tasks -H "Authorization: Bearer ${token%.*}.$swap${sig:1}"
  if [ "$STATUS" = 401 ]; then
    pass "auth: a token with a bad signature → 401"
  else
    fail auth "GET /tasks with a tampered token: expected 401, got $(what)"
  fi
else
  echo "SKIP auth: no --token given (the API is taken to have auth off)"
fi

echo "== $me: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
