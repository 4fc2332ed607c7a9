#!/usr/bin/env bash
# test_long_keys.sh — items whose keys are as long as DynamoDB allows, written
# by the AWS CLI, never break the list. Runs under with_dynalite.sh:
#
#   bash tests/integration/with_dynalite.sh env TASKHOST_BIN=build/taskhost \
#     bash tests/integration/test_long_keys.sh
#
# The table's key is (user_id, id): `id` is the sort key, and DynamoDB takes
# a sort key of up to 1024 bytes; the API itself only writes UUIDs. Items
# put with `aws dynamodb put-item` in the partition "public" (auth off)
# whose ids are 700 and 1024 bytes (ASCII, and 1024 bytes of two-byte
# characters), among tasks the API wrote: GET /tasks?limit=2 and ?limit=1,
# paged through --local and --serve, are 200s that visit every item exactly
# once (a page that ends on a long id seals it in its cursor, and that cursor
# comes back as ?next=). GET /tasks/{long id} is 404 (not a UUID: see
# routes.lua), never a 400 or a 500. A 1025-byte id is refused by the table
# itself (the emulator enforces the limit TH_STORE_MAX_ID follows).
#
# AWS_CLI names the aws binary (default: aws on PATH).
set -u
export E2E_STORE=dynamodb
# shellcheck source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

: "${AWS_ENDPOINT_URL_DYNAMODB:?run under tests/integration/with_dynalite.sh}"
: "${AWS_REGION:?run under tests/integration/with_dynalite.sh}"
AWS_CLI=${AWS_CLI:-aws}
command -v "$AWS_CLI" >/dev/null || { echo "long keys: the AWS CLI ($AWS_CLI) is required" >&2; exit 2; }
AWS_OPTS=(--endpoint-url "$AWS_ENDPOINT_URL_DYNAMODB" --region "$AWS_REGION" --output json)
case $("$AWS_CLI" --version 2>&1) in
  aws-cli/1.*) ;;
  *) AWS_OPTS+=(--no-cli-pager) ;;
esac

# put_item ID: aws dynamodb put-item of a task with that id. Sets AWS_RC, AWS_ERR.
put_item() {
  AWS_PAGER="" "$AWS_CLI" dynamodb put-item --table-name "$TABLE_NAME" "${AWS_OPTS[@]}" \
    --item "$(jq -n -c --arg id "$1" '{user_id: {S: "public"}, id: {S: $id}, task: {S: "long key"}, status: {S: "new"},
      priority: {S: "low"}, created_at: {N: "1703001234"}, updated_at: {N: "1703001234"}}')" \
    >"$TMP/aws.out" 2>"$TMP/aws.err"
  AWS_RC=$?
  AWS_ERR=$(cat "$TMP/aws.err")
}

IDS="$TMP/ids"
: >"$IDS"

section "tasks written through the API"
for i in 1 2 3 4 5; do
  api v2 POST /tasks -b "$(json_task "short key $i")"
  expect "create $i" 201
  jq -r '.id' <<<"$BODY" >>"$IDS"
done

section "items with long ids, written with aws dynamodb put-item"
ID_700=$(repeat_char 'k' 700)
ID_1024=$(repeat_char 'm' 1024)
ID_1024_UTF8=$(repeat_char 'é' 512) # 512 characters, 1024 bytes
for id in "$ID_700" "$ID_1024" "$ID_1024_UTF8"; do
  bytes=$(printf '%s' "$id" | wc -c)
  put_item "$id"
  check_eq "put-item of a $bytes-byte id: aws exits 0" 0 "$AWS_RC"
  [ "$AWS_RC" -ne 0 ] || printf '%s\n' "$id" >>"$IDS"
done
put_item "$(repeat_char 'x' 1025)"
check "put-item of a 1025-byte id is refused by the table" test "$AWS_RC" -ne 0
check_match "1025-byte id: the table names the key size limit" 'size|1024' "$AWS_ERR"
check_eq "the table holds the 5 tasks and the 3 long ids" 8 "$(wc -l <"$IDS")"

# fetch_local LIMIT CURSOR / fetch_serve LIMIT CURSOR: one page of GET /tasks.
fetch_local() {
  if [ -n "$2" ]; then api v2 GET /tasks -q "limit=$1" -q "next=$2"; else api v2 GET /tasks -q "limit=$1"; fi
}
fetch_serve() { http GET "/tasks?limit=$1${2:+&next=$2}"; }
# Longest cursor seen: the one sealing a 1024-byte id is 1388 characters
# (1 + 1024 + 16 bytes in base64; the owner is in its MAC, not in it).
fetch_longest() {
  "$FETCH" "$@"
  local n
  n=$(jq -r '.next // "" | length' <<<"$BODY" 2>/dev/null)
  [ "${n:-0}" -le "$LONGEST" ] || LONGEST=$n
}

section "paging through --local: every item once, every page a 200"
for limit in 2 1; do
  FETCH=fetch_local LONGEST=0
  paginate "--local limit=$limit" "$limit" fetch_longest "$IDS"
  [ "$limit" != 1 ] || check_eq "--local limit=1: a cursor sealed a 1024-byte id" 1388 "$LONGEST"
done

section "GET /tasks/{long id}: 404, not a 400 or a 500"
for id in "$ID_700" "$ID_1024"; do
  api v2 GET "/tasks/$id"
  expect "GET of a ${#id}-byte id" 404
done

section "paging through --serve"
if serve_start; then
  for limit in 2 1; do
    FETCH=fetch_serve LONGEST=0
    paginate "--serve limit=$limit" "$limit" fetch_longest "$IDS"
  done
  http GET "/tasks/$ID_1024"
  check_eq "serve: GET of the 1024-byte id is 404" 404 "$STATUS"
  serve_stop
  check "serve: no 'cannot seal the cursor' in the log" bash -c "! grep -q 'cannot seal' '$SERVE_LOG'"
else
  fail "serve: taskhost --serve starts"
fi

section "no 4xx/5xx on the list, no 500 anywhere"
check_jq "no --local response was a 5xx" "$(jq -s -c '[.[] | select(.statusCode >= 500)]' "$RESP_LOG")" \
  'length == 0'

finish
