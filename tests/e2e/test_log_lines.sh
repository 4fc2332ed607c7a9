#!/usr/bin/env bash
# Every log line is valid JSON whatever the client sends, and route scripts
# cannot forge the core log fields (README "Logs").
#
# The routes are the stock ones behind a wrapper that, on every request, logs
# with forged core fields (requestId "forged-id", level "FATAL", message
# "forged", timestamp "forged-ts"), an error-like table (whose "message" used
# to replace the record's), non-finite numbers, and the client's path, method,
# body and query as message, keys and values. Through it go:
#   --local   the review's cases in payload 1.0 and 2.0 ("/tasks/a" + 200 é,
#             /tasks/\xff\xfe, a NUL, a long invalid method, an unknown
#             version holding bad bytes), and one file in 8 (by a hash of its name) of the
#             fuzz corpora of the event and host targets (tests/fuzz/corpus/)
#   Lambda    the Runtime API loop (tests/lambda/runtime_api_server.py): every
#             file of both corpora, and the review's cases
#   --serve   curl with raw invalid UTF-8 percent-escapes (/tasks/%ff%fe, 200
#             é as %C3%A9, a split %C3, %00, raw 0xFF bytes), and every input of
#             both corpora that makes an HTTP request (raw sockets, log_lines.py)
#   Text      the review's cases in AWS_LAMBDA_LOG_FORMAT=Text
# Then every line of every stderr must decode as strict UTF-8 and be a JSON
# object with timestamp, level, message (and requestId when present), none of
# them forged (log_lines.py check); the one exception is `--local` on an input
# that is not an event (exit 2): one "taskhost: ..." line, strict UTF-8, no
# control characters. Not vacuous: each mode's log holds forged fields nested
# under "fields", non-finite numbers as strings, paths holding U+FFFD, and the
# 200-é path cut on a character boundary with its pathBytes.
# The bad-input matrix (tests/badinput/cases.txt) gets the same check in
# tests/badinput/run.sh, through --local v1/v2, --serve and the Lambda loop.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
unset AWS_LAMBDA_RUNTIME_API _X_AMZN_TRACE_ID
LL="$SOURCE_DIR/tests/e2e/log_lines.py"
HELPERS="$SOURCE_DIR/tests/badinput/helpers.py"
CORPUS="$SOURCE_DIR/tests/fuzz/corpus"
export AWS_LAMBDA_LOG_LEVEL=DEBUG

ROUTES="$TMP/routes"
mkdir -p "$ROUTES"
cp "$ROUTES_DIR"/*.lua "$ROUTES/"
mv "$ROUTES/routes.lua" "$ROUTES/app.lua"
cat >"$ROUTES/routes.lua" <<'LUA'
local app = require("app")
local log = require("log")
return {
  handle = function(req)
    log.info("hello", {requestId = "forged-id", level = "FATAL", message = "forged",
                       timestamp = "forged-ts"})
    log.warn("x", {kind = "invalid", message = "forged"})
    log.info("inf", {n = math.huge, m = -math.huge, z = 0 / 0})
    log.debug(req.path, {path = req.path, method = req.method, body = req.body,
                         limit = req.query.limit, [req.path] = req.raw_path})
    print(req.method, req.path)
    return app.handle(req)
  end,
}
LUA
export TASKHOST_ROUTES="$ROUTES"

LOGS="$TMP/logs"
mkdir -p "$LOGS"
NRUN=0
# check_logs NAME [log_lines.py check args]: every line; the summary in $SUMMARY
check_logs() {
  local name=$1
  shift
  SUMMARY=$("$PYTHON" "$LL" check "$@" 2>"$TMP/check.err")
  local rc=$?
  if [ "$rc" -eq 0 ]; then pass; else fail "$name: every log line" "$(head -c 3000 "$TMP/check.err")"; fi
  echo "   $name: $SUMMARY"
}
# at_least NAME KEY N: the summary's KEY is N or more
at_least() {
  local got
  got=$(jq -r --arg k "$2" '.[$k]' <<<"$SUMMARY")
  check "$1: $2 = $got, at least $3" test "$got" -ge "$3"
}

# ---- the review's cases, as events -------------------------------------------------

EV="$TMP/events"
mkdir -p "$EV"
mkev() { # mkev NAME VERSION METHOD PATH-BYTES (printf %b)
  printf '%b' "$4" >"$TMP/p"
  : >"$TMP/q"
  : >"$TMP/h"
  "$PYTHON" "$HELPERS" event "$2" "$3" "$TMP/p" "$TMP/q" "$TMP/h" - >"$EV/$1.$2.json"
}
E200=$(repeat_char 'é' 200)
for v in v1 v2; do
  mkev e200 "$v" GET "/tasks/a$E200"
  mkev ff "$v" GET '/tasks/\xff\xfe'
  mkev split "$v" DELETE '/tasks/\xc3'
  mkev overlong "$v" GET '/tasks/\xc0\xaf\xe0\x80\xaf\xed\xa0\x80'
  mkev nul "$v" GET '/tasks/a\x00b'
  mkev method "$v" "GET$(repeat_char 'é' 200)" /tasks
  mkev ctl "$v" GET '/tasks/a\nforged\r\x1b[31m'
done
printf '{"version":"3\xff\n\x1b","rawPath":"/tasks","requestContext":{"http":{"method":"GET"}}}' \
  >"$EV/badversion.json"
printf '{"version":"%s","rawPath":"/tasks"}' "$(repeat_char 'é' 30)" >"$EV/longversion.json"

# ---- --local ----------------------------------------------------------------------

section "--local: the review's cases, payload 1.0 and 2.0"
CLI=()
run_local_logged() { # run_local_logged FILE → rc in RC; stderr in $LOGS
  NRUN=$((NRUN + 1))
  "$TASKHOST_BIN" --local "$1" >"$LOGS/local.$NRUN.out" 2>"$LOGS/local.$NRUN.err"
  RC=$?
  case $RC in
    0) LOCAL_ERRS+=("$LOGS/local.$NRUN.err") ;;
    2) LOCAL_ERRS+=(--cli "$LOGS/local.$NRUN.err") ;;
    *) fail "--local $1: exit $RC" "$(tail -c 300 "$LOGS/local.$NRUN.err")" ;;
  esac
}
LOCAL_ERRS=()
for f in "$EV"/*.json; do run_local_logged "$f"; done
check_eq "an unknown version holding bad bytes: exit 2" 2 "$(
  "$TASKHOST_BIN" --local "$EV/badversion.json" >/dev/null 2>&1
  echo $?
)"
for v in v1 v2; do
  "$TASKHOST_BIN" --local "$EV/e200.$v.json" >/dev/null 2>"$TMP/e200.err"
  check_jq "$v: the 200-é path is cut on a character boundary, with its length" \
    "$(jq -c 'select(.message == "request")' "$TMP/e200.err")" \
    '.pathBytes == 408 and (.path | utf8bytelength) == 256 and (.path | endswith("é"))
     and (.path | startswith("/tasks/aé"))'
  "$TASKHOST_BIN" --local "$EV/ff.$v.json" >/dev/null 2>"$TMP/ff.err"
  check_jq "$v: /tasks/\\xff\\xfe is logged with U+FFFD" \
    "$(jq -c 'select(.message == "request")' "$TMP/ff.err")" '.path == "/tasks/\ufffd\ufffd"'
  "$TASKHOST_BIN" --local "$EV/nul.$v.json" >/dev/null 2>"$TMP/nul.err"
  check_jq "$v: a NUL in the path is logged, not a cut" \
    "$(jq -c 'select(.message == "request")' "$TMP/nul.err")" '.path == "/tasks/a\u0000b"'
  "$TASKHOST_BIN" --local "$EV/method.$v.json" >/dev/null 2>"$TMP/method.err"
  check_jq "$v: a long method is cut on a character boundary, with its length" \
    "$(jq -c 'select(.message == "request")' "$TMP/method.err")" \
    '.methodBytes == 403 and (.method | utf8bytelength) == 255 and (.method | test("^GET(é)+$"))'
done

section "--local: one file in 8 of the event and host fuzz corpora"
"$PYTHON" "$LL" events "$CORPUS/event" "$CORPUS/host" "$TMP/corpus" 8 >"$TMP/corpus.json" ||
  fail "the corpora as events"
echo "   $(cat "$TMP/corpus.json")"
while IFS= read -r f; do run_local_logged "$f"; done <"$TMP/corpus/local.txt"
check_logs "--local ($NRUN runs)" --forged "${LOCAL_ERRS[@]}"
at_least "--local" forged_nested 40
at_least "--local" nonfinite 40
at_least "--local" replacement_in_path 10
at_least "--local" path_bytes 2
at_least "--local" cli_lines 3

# ---- the Lambda loop ----------------------------------------------------------------

section "Lambda: every file of both corpora and the review's cases through the Runtime API loop"
Q="$TMP/lambda.jsonl"
cp "$TMP/corpus/lambda.jsonl" "$Q"
for f in "$EV"/*.json; do
  jq -c -n --arg f "$f" --arg r "case-$(basename "$f" .json)" '{event_file: $f, request_id: $r}' >>"$Q"
done
NQ=$(wc -l <"$Q")
if rapi_start --queue "$Q" --on-drain status:500; then
  AWS_LAMBDA_RUNTIME_API="127.0.0.1:$RAPI_PORT" "$TASKHOST_BIN" </dev/null \
    >"$LOGS/lambda.out" 2>"$LOGS/lambda.err"
  check_eq "Lambda: the loop ends when next is refused (exit 1)" 1 "$?"
  rapi_stop
  check_eq "Lambda: all $NQ invocations answered" "$NQ" \
    "$(jq -s '[.[] | select(.kind == "response" or .kind == "error")] | length' "$RAPI_REC")"
  check_logs "Lambda" --forged "$LOGS/lambda.err"
  at_least "Lambda" forged_nested 200
  at_least "Lambda" nonfinite 200
  at_least "Lambda" replacement_in_path 20
  at_least "Lambda" path_bytes 2
else
  fail "Lambda: the Runtime API test server starts"
fi

# ---- --serve -----------------------------------------------------------------------------

section "--serve: raw invalid UTF-8 from curl, and both corpora as HTTP requests"
if serve_start; then
  curl_path() { # curl_path NAME PATH [curl args]: any answer that is not a 5xx
    local code
    code=$(curl -s --path-as-is -o /dev/null -w '%{http_code}' --max-time 20 "${@:3}" "$BASE_URL$2")
    check_match "$1: answered without a 5xx ($code)" '^[1-4][0-9][0-9]$' "$code"
  }
  curl_path "/tasks/%ff%fe" "/tasks/%ff%fe"
  curl_path "200 é, percent-encoded" "/tasks/a$(repeat_char '%C3%A9' 200)"
  curl_path "200 é, raw" "/tasks/a$E200"
  curl_path "a split %C3" "/tasks/%C3"
  curl_path "an overlong %C0%AF" "/tasks/%C0%AF"
  curl_path "%00" "/tasks/a%00b"
  curl_path "raw 0xFF bytes" "/tasks/$(printf '\xff\xfe')"
  curl_path "a query with %ff" "/tasks?limit=%ff&next=%c3"
  curl_path "a body with invalid UTF-8" /tasks -X POST -H 'Content-Type: application/json' \
    --data-binary "$(printf '{"task":"\xff\xc3"}')"
  curl_path "a method with bytes 0x80+" /tasks -X "$(printf 'G\xc3T')"
  "$PYTHON" "$LL" http "$PORT" "$CORPUS/event" "$CORPUS/host" >"$TMP/http.json" 2>"$TMP/http.err" ||
    fail "the corpora as HTTP requests" "$(tail -c 500 "$TMP/http.err")"
  echo "   $(cat "$TMP/http.json")"
  check "--serve: no 5xx for the corpora" jq -e '(.statuses | keys | map(select(startswith("5"))) | length) == 0 and .sent >= 300' "$TMP/http.json"
  check "--serve: still answers" test "$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/tasks")" = 200
  serve_stop TERM
  cp "$SERVE_LOG" "$LOGS/serve.err"
  check_logs "--serve" --forged "$LOGS/serve.err"
  at_least "--serve" forged_nested 300
  at_least "--serve" nonfinite 300
  at_least "--serve" replacement_in_path 10
  at_least "--serve" path_bytes 2
  check_jq "--serve: /tasks/%ff%fe is logged with U+FFFD" \
    "$(jq -c 'select(.message == "request" and (.path | startswith("/tasks/\ufffd")))' "$LOGS/serve.err" | head -1)" \
    '.path == "/tasks/\ufffd\ufffd" and .status == 404'
else
  fail "--serve: the server starts"
fi

# ---- Text ----------------------------------------------------------------------------------

section "Text format: the review's cases"
TEXT_ERRS=()
TEXT_RUN=()
for f in "$EV"/*.json; do
  NRUN=$((NRUN + 1))
  AWS_LAMBDA_LOG_FORMAT=Text "$TASKHOST_BIN" --local "$f" >/dev/null 2>"$LOGS/text.$NRUN.err"
  case $? in
    0) TEXT_ERRS+=("$LOGS/text.$NRUN.err") TEXT_RUN+=("$LOGS/text.$NRUN.err") ;;
    2) TEXT_ERRS+=(--cli "$LOGS/text.$NRUN.err") ;;
    *) fail "Text --local $f" ;;
  esac
done
check_logs "Text" --text "${TEXT_ERRS[@]}"
at_least "Text" records 80
check "Text: forged fields are written as fields.<name>" \
  grep -qh ' hello .*fields\.requestId=forged-id' "${TEXT_RUN[@]}"

finish
