#!/usr/bin/env bash
# A DynamoDB endpoint whose host name does not resolve is a configuration
# error: 500 JSON to the client (not 503 "temporarily unavailable"), and an
# ERROR line with the request id that names the host and says it does not
# resolve. AWS_ENDPOINT_URL_DYNAMODB=http://does-not-resolve.invalid:8000 (the
# .invalid TLD never resolves, RFC 6761), through --local (GET /tasks, POST,
# GET /tasks/{id}) and --serve. The three attempts fail fast: the whole test
# has a generous bound, so a hang shows.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
unset AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_IGNORE_CONFIGURED_ENDPOINT_URLS AWS_MAX_ATTEMPTS \
  AWS_DEFAULT_REGION
export TASKHOST_STORE=dynamodb TABLE_NAME=Tasks AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIDEXAMPLE \
  AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export AWS_ENDPOINT_URL_DYNAMODB=http://does-not-resolve.invalid:8000
HOST_RE='does-not-resolve\.invalid does not resolve'

# check_logged NAME LOGFILE REQUEST_ID: the store's ERROR line for that request.
check_logged() {
  check "$1: ERROR 'store operation failed' with the request id, naming the host" \
    jq -e -s --arg id "$3" --arg re "$HOST_RE" 'any(.[]; .level == "ERROR"
      and .message == "store operation failed" and .requestId == $id and .kind == "internal"
      and (.detail | test($re)))' "$2"
}

section "--local"
for req in "GET /tasks" "POST /tasks" "GET /tasks/$ABSENT_ID"; do
  read -r method path <<<"$req"
  if [ "$method" = POST ]; then api v2 POST "$path" -b '{"task":"x"}'; else api v2 "$method" "$path"; fi
  expect "$req" 500 '. == {"message": "Internal server error"}'
  check_eq "$req: no Retry-After (not a 503)" "" "$(header_of Retry-After)"
  printf '%s\n' "$ERR" >"$TMP/local.log"
  rid=$(jq -r 'select(.message == "request") | .requestId' "$TMP/local.log" | head -1)
  check_match "$req: the request is logged with an id" '^[0-9a-f-]{36}$' "$rid"
  check_logged "$req" "$TMP/local.log" "$rid"
  check_eq "$req: no secret in the log" 0 "$(grep -c 'wJalrXUtnFEMI' "$TMP/local.log")"
done

section "--serve"
if serve_start; then
  http GET /tasks
  check_eq "serve GET /tasks: 500" 500 "$STATUS"
  check_jq "serve GET /tasks: JSON body" "$BODY" '. == {"message": "Internal server error"}'
  check_eq "serve GET /tasks: no Retry-After" "" "$(hdr Retry-After)"
  serve_stop
  rid=$(jq -r 'select(.message == "request" and .status == 500) | .requestId' "$SERVE_LOG" | tail -1)
  check_logged "serve GET /tasks" "$SERVE_LOG" "$rid"
else
  fail "serve: taskhost --serve starts"
fi

check "the whole test ran in under 120 s (no hang on the lookup): ${SECONDS} s" test "$SECONDS" -lt 120
finish
