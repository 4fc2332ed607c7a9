#!/usr/bin/env bash
# What a new user tripped over (issue 15, item 7), each one checked here:
#   * a 405's Access-Control-Allow-Methods is the path's Allow, not every method of the API
#     (--serve and --local);
#   * an invalid `next` cursor is the client's error: 400 naming `next`, logged as INFO
#     "pagination cursor rejected", never as a WARN "store operation failed";
#   * the event.json the README has the reader create is ignored by git.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export TASKHOST_STORE="sqlite:$TMP/newcomer.db"

section "405: Access-Control-Allow-Methods = Allow"
if ! serve_start; then
  fail "server starts and answers"
  finish
fi
pass
http DELETE /tasks
check_eq "DELETE /tasks: 405" 405 "$STATUS"
check_eq "DELETE /tasks: Allow" "GET, POST, OPTIONS" "$(hdr Allow)"
check_eq "DELETE /tasks: Access-Control-Allow-Methods is the path's Allow" \
  "GET, POST, OPTIONS" "$(hdr Access-Control-Allow-Methods)"
http PATCH /tasks/$ABSENT_ID -H 'Content-Type: application/json' --data-binary '{}'
check_eq "PATCH /tasks/{id}: 405" 405 "$STATUS"
check_eq "PATCH /tasks/{id}: Access-Control-Allow-Methods is the path's Allow" \
  "GET, PUT, DELETE, OPTIONS" "$(hdr Access-Control-Allow-Methods)"
api v2 POST "/tasks/$ABSENT_ID" -b '{"task":"x"}'
check_eq "--local POST /tasks/{id}: 405" 405 "$STATUS"
check_eq "--local POST /tasks/{id}: Access-Control-Allow-Methods is the path's Allow" \
  "GET, PUT, DELETE, OPTIONS" "$(header_of Access-Control-Allow-Methods)"
# Routes that answer: the same header, every method (the preflight's answer is unchanged).
http OPTIONS /tasks -H 'Origin: http://app.test' -H 'Access-Control-Request-Method: POST'
check_eq "preflight /tasks: 204" 204 "$STATUS"
check_eq "preflight /tasks: Access-Control-Allow-Methods" "GET, POST, OPTIONS" \
  "$(hdr Access-Control-Allow-Methods)"

section "an invalid next cursor: a client error, not a store failure"
http POST /tasks -H 'Content-Type: application/json' --data-binary '{"task":"one"}'
check_eq "create: 201" 201 "$STATUS"
for bad in not-a-cursor "AAAA$(repeat_char B 60)"; do
  http GET "/tasks?limit=1&next=$bad"
  check_eq "next=${bad:0:16}…: 400" 400 "$STATUS"
  check_jq "next=${bad:0:16}…: names 'next'" "$BODY" '.field == "next"'
done
serve_stop
check "log: the rejected cursor is an INFO line" \
  jq -e -s 'any(.[]; .message == "pagination cursor rejected" and (.level | ascii_upcase) == "INFO")' \
  "$SERVE_LOG"
check "log: no 'store operation failed' line" \
  jq -e -s 'all(.[]; .message != "store operation failed")' "$SERVE_LOG"
check "log: no WARN line at all" \
  jq -e -s 'all(.[]; (.level | ascii_upcase) != "WARN")' "$SERVE_LOG"
check "log: the 400 itself is logged (a request line)" \
  jq -e -s 'any(.[]; .message == "request" and .status == 400)' "$SERVE_LOG"

section "event.json (README's --local example) is ignored by git"
if git -C "$SOURCE_DIR" rev-parse --git-dir >/dev/null 2>&1; then
  check "git check-ignore event.json" git -C "$SOURCE_DIR" check-ignore -q event.json
else
  check ".gitignore lists /event.json" grep -qx '/event.json' "$SOURCE_DIR/.gitignore"
fi

finish
