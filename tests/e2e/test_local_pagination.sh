#!/usr/bin/env bash
# Pagination through `taskhost --local`: 260 tasks, then GET /tasks page by
# page with limit 1, 25 and 100 (v1 and v2 events): every item exactly once,
# count == items <= limit, the last page's next is null; the default limit is
# 25; the list is newest first; a cursor keeps working after the item it
# points at is deleted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=260

section "create $N tasks"
mkdir -p "$TMP/create"
# All the events from one jq run, one a line → one file each.
jq -n -c --argjson n "$N" '
  range($n) as $i
  | if $i % 2 == 0 then
      {version: "2.0", routeKey: "$default", rawPath: "/tasks", rawQueryString: "",
       headers: {"content-type": "application/json"},
       requestContext: {stage: "$default", http: {method: "POST", path: "/tasks"}},
       body: ({task: "task \($i)", priority: (["low", "medium", "high", "urgent"][$i % 4])} | tojson),
       isBase64Encoded: false}
    else
      {httpMethod: "POST", path: "/tasks", headers: {"Content-Type": "application/json"},
       requestContext: {stage: "test"},
       body: ({task: "task \($i)", status: (["new", "in_progress", "completed", "cancelled"][$i % 4])} | tojson),
       isBase64Encoded: false}
    end' >"$TMP/create/all.jsonl"
i=0
while IFS= read -r line; do
  printf '%s\n' "$line" >"$TMP/create/$i.json"
  i=$((i + 1))
done <"$TMP/create/all.jsonl"
check_eq "$N create events written" "$N" "$i"

: >"$TMP/create/responses.jsonl"
rcs=""
for ((i = 0; i < N; i++)); do
  "$TASKHOST_BIN" --local "$TMP/create/$i.json" >>"$TMP/create/responses.jsonl" 2>>"$TMP/create/stderr"
  rc=$?
  [ "$rc" -eq 0 ] || rcs+=" $i:$rc"
done
check_eq "every create exits 0" "" "$rcs"
check_eq "every create is 201" "$N" "$(jq -r 'select(.statusCode == 201) | .statusCode' "$TMP/create/responses.jsonl" | wc -l)"
jq -r '.body | fromjson | .id' "$TMP/create/responses.jsonl" >"$TMP/created.ids"
check_eq "$N distinct ids" "$N" "$(sort -u "$TMP/created.ids" | wc -l)"
check "every create logged one request line" \
  test "$(jq -r 'select(.message == "request" and .status == 201) | .requestId' "$TMP/create/stderr" | sort -u | wc -l)" -eq "$N"

# fetch_local VERSION LIMIT CURSOR: GET /tasks?limit=LIMIT[&next=CURSOR] as an
# event written with printf (cursors are URL-safe base64: nothing to escape).
fetch_local() {
  local version=$1 limit=$2 cursor=$3 q file="$TMP/page.json"
  if [[ ! $cursor =~ ^[A-Za-z0-9_-]*$ ]]; then
    STATUS="bad cursor" BODY="cursor has characters outside URL-safe base64: $cursor"
    return
  fi
  if [ "$version" = v2 ]; then
    q="limit=$limit${cursor:+&next=$cursor}"
    printf '{"version":"2.0","routeKey":"$default","rawPath":"/tasks","rawQueryString":"%s","headers":{},"requestContext":{"stage":"$default","http":{"method":"GET","path":"/tasks"}},"isBase64Encoded":false}' \
      "$q" >"$file"
  else
    q="\"limit\":\"$limit\"${cursor:+,\"next\":\"$cursor\"}"
    printf '{"httpMethod":"GET","path":"/tasks","headers":{},"queryStringParameters":{%s},"requestContext":{"stage":"test"},"isBase64Encoded":false}' \
      "$q" >"$file"
  fi
  run_local "$file"
  { IFS= read -r STATUS; BODY=$(cat); } < <(jq -r '.statusCode, .body' <<<"$OUT" 2>/dev/null)
}
fetch_v1() { fetch_local v1 "$@"; }
fetch_v2() { fetch_local v2 "$@"; }

section "page through with limit 1 (v2)"
paginate "limit 1 (v2)" 1 fetch_v2 "$TMP/created.ids"
section "page through with limit 25 (v1)"
paginate "limit 25 (v1)" 25 fetch_v1 "$TMP/created.ids"
section "page through with limit 100 (v2)"
paginate "limit 100 (v2)" 100 fetch_v2 "$TMP/created.ids"
section "page through with limit 100 (v1)"
paginate "limit 100 (v1)" 100 fetch_v1 "$TMP/created.ids"

section "default limit"
api v2 GET /tasks
expect "no limit: 25 items" 200 '.count == 25 and (.items | length) == 25 and (.next | type) == "string"'
check_jq "no limit: items are whole tasks" "$BODY" \
  'all(.items[]; keys == ["created_at", "id", "priority", "status", "task", "updated_at"])'
first_page=$(jq -c '[.items[].id]' <<<"$BODY")
# Each create ran in its own process, one after the other (milliseconds
# apart): their UUIDv7 ids are in creation order, and a list is newest first.
newest=$(tail -n 25 "$TMP/created.ids" | tac | jq -R . | jq -s -c .)
check_eq "the first page is the 25 newest tasks, newest first" "$newest" "$first_page"
all_pages=$(tac "$TMP/created.ids" | jq -R . | jq -s -c .)
api v2 GET /tasks -q limit=100
page=$(jq -c '[.items[].id]' <<<"$BODY")
cursor=$(jq -r '.next' <<<"$BODY")
while [ "$cursor" != null ] && [ -n "$cursor" ]; do
  api v2 GET /tasks -q limit=100 -q "next=$cursor"
  page=$(jq -c --argjson a "$page" '$a + [.items[].id]' <<<"$BODY")
  cursor=$(jq -r '.next' <<<"$BODY")
done
check_eq "all pages together: every task, newest first" "$all_pages" "$page"
api v1 GET /tasks -q limit=25
expect "limit=25 gives the same first page" 200 '[.items[].id] == $p' --argjson p "$first_page"
api v1 GET /tasks
expect "v1, no limit: 25 items" 200 '.count == 25'

section "a cursor outlives the item it points at"
api v2 GET /tasks -q limit=25
cursor=$(jq -r '.next' <<<"$BODY")
last=$(jq -r '.items[-1].id' <<<"$BODY")
api v2 GET /tasks -q limit=25 -q "next=$cursor"
page2=$(jq -c '[.items[].id]' <<<"$BODY")
api v2 DELETE "/tasks/$last"
expect "delete the last item of page 1" 200
api v2 GET /tasks -q limit=25 -q "next=$cursor"
expect "page 2 through the old cursor" 200 '[.items[].id] == $p' --argjson p "$page2"
grep -v -x "$last" "$TMP/created.ids" >"$TMP/remaining.ids"
paginate "limit 100 after a delete (v1)" 100 fetch_v1 "$TMP/remaining.ids"

section "a cursor does not change the page size rules"
api v2 GET /tasks -q limit=0 -q "next=$cursor"
expect_error "limit 0 with a cursor" 400 limit "^'limit' must be an integer from 1 to 100$"
api v2 GET /tasks -q limit=100 -q "next=$cursor"
expect "limit 100 with a cursor" 200 '.count == 100'

finish
