#!/usr/bin/env bash
# test_awscli_interop.sh — taskhost and the AWS CLI see the same DynamoDB
# items. Runs under with_dynalite.sh (a fresh dynalite with its table, the
# DynamoDB environment exported) and reuses tests/e2e/lib.sh:
#
#   bash tests/integration/with_dynalite.sh env TASKHOST_BIN=build/taskhost \
#     bash tests/integration/test_awscli_interop.sh
#
# The table's key is (user_id, id); with auth off every task belongs to the
# owner "public", so the CLI addresses items with user_id "public".
#
# taskhost → AWS CLI: tasks created with `--local` POST events (unicode,
#   quotes, a 1000-character task, v1 and v2 events) and changed with a PUT
#   read back with `aws dynamodb get-item --consistent-read` and `scan`: the
#   attributes are exactly user_id ("public"), id, task, status, priority (S)
#   and created_at, updated_at (N, whole-number text), and hold what the API
#   answered (which never shows user_id).
# AWS CLI → taskhost: an item written with `put-item` is served by GET
#   /tasks/{id} (numbers as JSON integers) and listed by GET /tasks (walking
#   the pages), with --local and over --serve; `update-item` is visible
#   through the API; a DELETE through the API leaves get-item with no Item.
# Items the API did not write (decided here, and asserted):
#   * numbers are served by value: N "1703001234.0" is the JSON integer
#     1703001234, N "1703001234.50" is 1703001234.5;
#   * a missing attribute (no priority, no status) stays missing: GET is 200
#     without the key (no default invented on read), and a PUT through the
#     API sets it;
#   * extra attributes are served as plain JSON (S → string, N → number,
#     BOOL, NULL → null, L/SS/NS → arrays, M → object, B/BS → the base64 text
#     of the bytes, as DynamoDB's JSON protocol carries them), and a PUT
#     through the API leaves them untouched in the table;
#   * known fields of a wrong type are served as stored (the API validates
#     what it writes, it does not rewrite what others wrote);
#   * ids are looked up in lower case: an item whose key is not a lower-case
#     UUID is listed but GET /tasks/{id} is 404 for it;
#   * none of these is ever a 500, on GET, on the list, on PUT or DELETE;
#   * an item of another owner (user_id other than "public"), even one with
#     the id of a public task, is neither served, listed, changed nor
#     deleted through the API.
#
# AWS_CLI names the aws binary (default: aws on PATH; v1 and v2 both work).
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
set -u
export E2E_STORE=dynamodb
# shellcheck source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

: "${AWS_ENDPOINT_URL_DYNAMODB:?run under tests/integration/with_dynalite.sh}"
: "${AWS_REGION:?run under tests/integration/with_dynalite.sh}"
AWS_CLI=${AWS_CLI:-aws}
command -v "$AWS_CLI" >/dev/null || { echo "interop: the AWS CLI ($AWS_CLI) is required" >&2; exit 2; }
AWS_VERSION=$("$AWS_CLI" --version 2>&1 | head -n 1)
echo "AWS CLI: $AWS_VERSION; endpoint $AWS_ENDPOINT_URL_DYNAMODB; table $TABLE_NAME"

# ---- the AWS CLI ---------------------------------------------------------------

AWS_OPTS=(--endpoint-url "$AWS_ENDPOINT_URL_DYNAMODB" --region "$AWS_REGION" --output json)
case $AWS_VERSION in
  aws-cli/1.*) ;; # v1 has no pager, and no --no-cli-pager
  *) AWS_OPTS+=(--no-cli-pager) ;;
esac

# ddb SUBCOMMAND [ARGS...]: aws dynamodb SUBCOMMAND ARGS on the test's
# endpoint and table. Sets AWS_RC, AWS_OUT (stdout; {} when empty, as
# get-item of an absent key prints nothing in some versions), AWS_ERR.
ddb() {
  local sub=$1
  shift
  AWS_PAGER="" "$AWS_CLI" dynamodb "$sub" --table-name "$TABLE_NAME" "$@" "${AWS_OPTS[@]}" \
    >"$TMP/aws.out" 2>"$TMP/aws.err"
  AWS_RC=$?
  AWS_OUT=$(cat "$TMP/aws.out")
  AWS_ERR=$(cat "$TMP/aws.err")
  [ -n "$AWS_OUT" ] || AWS_OUT='{}'
  if [ "$AWS_RC" -ne 0 ]; then
    echo "      aws dynamodb $sub: exit $AWS_RC: ${AWS_ERR:0:400}"
  fi
}

OWNER=public # auth off: every task's user_id
key_of() { local u=${2:-$OWNER}; jq -n -c --arg u "$u" --arg id "$1" '{user_id: {S: $u}, id: {S: $id}}'; }
get_item() { ddb get-item --key "$(key_of "$1" "${2:-}")" --consistent-read; }
new_uuid() { cat /proc/sys/kernel/random/uuid; }

# The AttributeValue map a task the API answered with must have in DynamoDB.
AV_OF_TASK='{user_id: {S: "public"}, id: {S: .id}, task: {S: .task}, status: {S: .status},
  priority: {S: .priority}, created_at: {N: (.created_at | tostring)},
  updated_at: {N: (.updated_at | tostring)}}'
# … and the version the store keeps beside every item it writes (ETag / If-Match,
# docs/idempotency.md): N, never part of the API's answer.
TASK_ATTRS='["created_at","id","priority","status","task","updated_at","user_id","version"]'
# Sets have no order: compare them sorted.
SETS_SORTED='def sets_sorted: walk(if type == "object" and (keys == ["SS"] or keys == ["NS"] or keys == ["BS"])
  then map_values(sort) else . end);'

EXPECTED="$TMP/expected.jsonl" # the AV map of every task the API wrote and still holds
: >"$EXPECTED"
remember() { jq -c "$AV_OF_TASK" <<<"$1" >>"$EXPECTED"; }
forget() { jq -c --arg id "$1" 'select(.id.S != $id)' "$EXPECTED" >"$EXPECTED.new" && mv "$EXPECTED.new" "$EXPECTED"; }

# check_stored NAME TASK_JSON: get-item returns exactly the task the API
# answered with, typed as the table's schema says.
check_stored() {
  local name=$1 task=$2 id
  id=$(jq -r '.id' <<<"$task")
  get_item "$id"
  check_eq "$name: aws get-item exits 0" 0 "$AWS_RC"
  check_jq "$name: get-item finds the item" "$AWS_OUT" '.Item | type == "object"'
  check_jq "$name: exactly the six task attributes, the owner and the version" "$AWS_OUT" \
    '.Item | keys == $attrs' --argjson attrs "$TASK_ATTRS"
  check_jq "$name: the API's answer has no user_id" "$task" 'has("user_id") | not'
  check_jq "$name: user_id, id, task, status, priority are S; created_at, updated_at are N" "$AWS_OUT" '
    .Item | (.user_id | keys) == ["S"] and (.id | keys) == ["S"] and (.task | keys) == ["S"] and (.status | keys) == ["S"]
      and (.priority | keys) == ["S"] and (.created_at | keys) == ["N"] and (.updated_at | keys) == ["N"]
      and (.version.N | test("^[1-9][0-9]*$"))'
  check_jq "$name: timestamps are whole-number text" "$AWS_OUT" \
    '.Item | (.created_at.N | test("^[1-9][0-9]*$")) and (.updated_at.N | test("^[1-9][0-9]*$"))'
  check_jq "$name: every value is what the API answered" "$AWS_OUT" \
    ".Item | del(.version) == (\$t | $AV_OF_TASK)" --argjson t "$task"
}

# The API's JSON text (not only its value) has created_at and updated_at as
# integers: no fraction, no exponent.
check_integer_text() {
  local name=$1 body=$2
  check_match "$name: created_at is an integer in the JSON text" '"created_at":-?[0-9]+[,}]' "$body"
  check_match "$name: updated_at is an integer in the JSON text" '"updated_at":-?[0-9]+[,}]' "$body"
}

# find_listed ID: walks every page of GET /tasks?limit=2 (--local). Sets
# LISTED (the listed item's JSON, "" when absent), LISTED_N (times listed),
# LIST_PAGES, LIST_BAD ("" when every page was a 200 with the right shape).
find_listed() {
  local want=$1 cursor="" hits
  LISTED="" LISTED_N=0 LIST_PAGES=0 LIST_BAD=""
  while :; do
    LIST_PAGES=$((LIST_PAGES + 1))
    if [ "$LIST_PAGES" -gt 500 ]; then LIST_BAD="more than 500 pages"; return; fi
    if [ -n "$cursor" ]; then
      api v2 GET /tasks -q limit=2 -q "next=$cursor"
    else
      api v2 GET /tasks -q limit=2
    fi
    if [ "$STATUS" != 200 ]; then
      LIST_BAD="page $LIST_PAGES: HTTP $STATUS ${BODY:0:200}"
      return
    fi
    if ! jq -e '(.items | type == "array") and .count == (.items | length) and .count <= 2' \
      >/dev/null 2>&1 <<<"$BODY"; then
      LIST_BAD="page $LIST_PAGES: bad shape ${BODY:0:200}"
      return
    fi
    hits=$(jq -c --arg id "$want" '.items[] | select(.id == $id)' <<<"$BODY")
    if [ -n "$hits" ]; then
      LISTED=$hits
      LISTED_N=$((LISTED_N + $(wc -l <<<"$hits")))
    fi
    cursor=$(jq -r '.next // empty' <<<"$BODY")
    [ -n "$cursor" ] || break
  done
}

# check_listed NAME ID EXPECTED_JSON: listed exactly once, as EXPECTED_JSON.
check_listed() {
  find_listed "$2"
  check_eq "$1: every page of GET /tasks is a 200" "" "$LIST_BAD"
  check_eq "$1: listed exactly once by GET /tasks (over $LIST_PAGES pages)" 1 "$LISTED_N"
  check_jq "$1: listed as GET /tasks/{id} serves it" "${LISTED:-null}" '. == $e' --argjson e "$3"
}

# ---- taskhost writes, the AWS CLI reads ---------------------------------------------

section "tasks written through taskhost, read with aws dynamodb get-item"

UNICODE_TASK=$'  Zoë ✓ 日本語 🚀 "double" \'single\' \\back\\slash <b>&amp; tab\there\nline two  '
UNICODE_TRIMMED=$'Zoë ✓ 日本語 🚀 "double" \'single\' \\back\\slash <b>&amp; tab\there\nline two'
api v2 POST /tasks -b "$(json_task "$UNICODE_TASK")"
expect "unicode: create" 201 '.task.task == $t' --arg t "$UNICODE_TRIMMED"
UNICODE=$(jq -c '.task' <<<"$BODY")
check_integer_text "unicode: create" "$BODY"
check_stored "unicode" "$UNICODE"
remember "$UNICODE"

# Unicode text is stored as sent: no normalisation (é as e + U+0301 stays so).
DECOMPOSED=$'Cafe\u0301 and Caf\u00e9 and \u00c5ngstr\u00f6m \u212b'
api v2 POST /tasks -b "$(json_task "$DECOMPOSED")"
expect "combining characters: create" 201 '.task.task == $t' --arg t "$DECOMPOSED"
COMBINING=$(jq -c '.task' <<<"$BODY")
check_stored "combining characters" "$COMBINING"
remember "$COMBINING"

LONG_TEXT=$(repeat_char 'aé日🚀' 250) # 1000 characters, 2500 bytes
api v2 POST /tasks -b "$(json_task "$LONG_TEXT")" -H 'Content-Type: application/json; charset=utf-8'
expect "1000-character task: create" 201 '.task.task == $t and (.task.task | length) == 1000' \
  --arg t "$LONG_TEXT"
LONG=$(jq -c '.task' <<<"$BODY")
check_stored "1000-character task" "$LONG"
check_jq "1000-character task: stored with 1000 characters" "$AWS_OUT" '(.Item.task.S | length) == 1000'
remember "$LONG"

api v1 POST /tasks -b '{"task":"Plain, from a REST API event","status":"in_progress","priority":"urgent"}'
expect "v1 event: create" 201 '.task.status == "in_progress" and .task.priority == "urgent"'
PLAIN=$(jq -c '.task' <<<"$BODY")
PLAIN_ID=$(jq -r '.id' <<<"$PLAIN")
check_stored "v1 event" "$PLAIN"

section "a PUT through taskhost, read with aws dynamodb get-item"

sleep 1.1 # timestamps are whole seconds: let updated_at move
api v2 PUT "/tasks/$PLAIN_ID" -b "$(jq -n -c '{task: "Renamed — “smart quotes” ✓", status: "completed"}')"
expect "put" 200 '.task.task == "Renamed — “smart quotes” ✓" and .task.status == "completed"
  and .task.priority == "urgent" and .task.created_at == $p.created_at
  and .task.updated_at > $p.updated_at' --argjson p "$PLAIN"
UPDATED=$(jq -c '.task' <<<"$BODY")
check_integer_text "put" "$BODY"
check_stored "put" "$UPDATED"
check_jq "put: created_at in the table is unchanged" "$AWS_OUT" \
  '.Item.created_at.N == ($p.created_at | tostring)' --argjson p "$PLAIN"
remember "$UPDATED"

section "aws dynamodb scan sees the same items"

ddb scan --consistent-read
check_eq "scan: aws exits 0" 0 "$AWS_RC"
check_jq "scan: every task the API wrote, as the API answered it" "$AWS_OUT" '
  [.Items[] | select(.id.S as $i | any($want[]; .id.S == $i)) | del(.version)] | sort_by(.id.S)
    == ($want | sort_by(.id.S))' --slurpfile want "$EXPECTED"
check_jq "scan: each of them has only the six typed task attributes, the owner and the version" "$AWS_OUT" '
  [.Items[] | select(.id.S as $i | any($want[]; .id.S == $i))]
  | length == ($want | length)
    and all(.[]; keys == $attrs
      and all(.user_id, .id, .task, .status, .priority; keys == ["S"])
      and all(.created_at, .updated_at, .version; keys == ["N"] and (.N | test("^[1-9][0-9]*$"))))' \
  --slurpfile want "$EXPECTED" --argjson attrs "$TASK_ATTRS"

# ---- the AWS CLI writes, taskhost reads ------------------------------------------

section "an item put with aws dynamodb put-item, served by the API"

CLI_ID=$(new_uuid)
CLI_TEXT='Put by the AWS CLI: "quoted" ✓ 🚀'
CLI_ITEM=$(jq -n -c --arg id "$CLI_ID" --arg t "$CLI_TEXT" '{user_id: {S: "public"}, id: {S: $id}, task: {S: $t},
  status: {S: "in_progress"}, priority: {S: "high"},
  created_at: {N: "1703001234"}, updated_at: {N: "1703001299"}}')
CLI_TASK=$(jq -n -c --arg id "$CLI_ID" --arg t "$CLI_TEXT" '{id: $id, task: $t,
  status: "in_progress", priority: "high", created_at: 1703001234, updated_at: 1703001299}')
ddb put-item --item "$CLI_ITEM"
check_eq "put-item: aws exits 0" 0 "$AWS_RC"

api v2 GET "/tasks/$CLI_ID"
expect "GET /tasks/{id} of the CLI's item" 200 '. == $e' --argjson e "$CLI_TASK"
check_jq "GET of the CLI's item: timestamps are JSON integers" "$BODY" \
  '(.created_at | type) == "number" and .created_at == (.created_at | floor)
    and (.updated_at | type) == "number" and .updated_at == (.updated_at | floor)'
check_match "GET of the CLI's item: created_at text" '"created_at":1703001234[,}]' "$BODY"
check_match "GET of the CLI's item: updated_at text" '"updated_at":1703001299[,}]' "$BODY"
api v1 GET "/tasks/${CLI_ID^^}"
expect "GET of the CLI's item, v1 event, id in upper case" 200 '. == $e' --argjson e "$CLI_TASK"
check_listed "the CLI's item" "$CLI_ID" "$CLI_TASK"

section "aws dynamodb update-item, visible through the API"

ddb update-item --key "$(key_of "$CLI_ID")" --update-expression 'SET #s = :s, #t = :t' \
  --expression-attribute-names '{"#s":"status","#t":"task"}' \
  --expression-attribute-values "$(jq -n -c '{":s": {S: "completed"}, ":t": {S: "Finished via update-item ✓"}}')" \
  --condition-expression 'attribute_exists(id)' --return-values ALL_NEW
check_eq "update-item: aws exits 0" 0 "$AWS_RC"
CLI_TASK=$(jq -c '.status = "completed" | .task = "Finished via update-item ✓"' <<<"$CLI_TASK")
check_jq "update-item: ALL_NEW is the API's view" "$AWS_OUT" ".Attributes == (\$e | $AV_OF_TASK)" \
  --argjson e "$CLI_TASK"
api v2 GET "/tasks/$CLI_ID"
expect "GET after update-item" 200 '. == $e' --argjson e "$CLI_TASK"
check_listed "the CLI's item after update-item" "$CLI_ID" "$CLI_TASK"

section "over --serve: the CLI's item by id and in the list"

if serve_start; then
  http GET "/tasks/$CLI_ID"
  check_eq "serve: GET /tasks/{id} of the CLI's item is 200" 200 "$STATUS"
  check_jq "serve: GET /tasks/{id} of the CLI's item" "$BODY" '. == $e' --argjson e "$CLI_TASK"
  http GET "/tasks?limit=100"
  check_eq "serve: GET /tasks is 200" 200 "$STATUS"
  check_jq "serve: GET /tasks lists the CLI's item" "$BODY" \
    '[.items[] | select(.id == $e.id)] == [$e]' --argjson e "$CLI_TASK"
  serve_stop
else
  fail "serve: taskhost --serve starts"
fi

section "DELETE through the API, then aws dynamodb get-item finds nothing"

for victim in "$CLI_ID" "$(jq -r '.id' <<<"$COMBINING")"; do
  api v2 DELETE "/tasks/$victim"
  expect "delete $victim" 200 '.id == $id' --arg id "$victim"
  get_item "$victim"
  check_eq "after delete: aws get-item exits 0" 0 "$AWS_RC"
  check_jq "after delete: get-item returns no Item" "$AWS_OUT" 'has("Item") | not'
  api v2 GET "/tasks/$victim"
  expect "after delete: GET /tasks/{id} is 404" 404
  forget "$victim"
done
ddb scan --consistent-read
check_jq "after delete: scan no longer has them, still has the others" "$AWS_OUT" '
  ([.Items[].id.S] | index($a) == null and index($b) == null)
  and ([.Items[] | select(.id.S as $i | any($want[]; .id.S == $i)) | del(.version)] | sort_by(.id.S)
       == ($want | sort_by(.id.S)))' \
  --arg a "$CLI_ID" --arg b "$(jq -r '.id' <<<"$COMBINING")" --slurpfile want "$EXPECTED"

# ---- items the API did not write, in shapes it would not write -------------------

section "numbers written in other forms: served by value"

FLOAT_ID=$(new_uuid)
ddb put-item --item "$(jq -n -c --arg id "$FLOAT_ID" '{user_id: {S: "public"}, id: {S: $id}, task: {S: "float-form timestamps"},
  status: {S: "new"}, priority: {S: "low"}, created_at: {N: "1703001234.0"}, updated_at: {N: "1703001234.50"}}')"
check_eq "float-form N: put-item exits 0" 0 "$AWS_RC"
api v2 GET "/tasks/$FLOAT_ID"
expect "float-form N: GET" 200 '.created_at == 1703001234 and .updated_at == 1703001234.5
  and .task == "float-form timestamps"'
check_match "float-form N: N \"1703001234.0\" is the JSON integer 1703001234" \
  '"created_at":1703001234[,}]' "$BODY"
check_listed "float-form N" "$FLOAT_ID" "$BODY"

section "missing attributes stay missing; a PUT through the API sets them"

SPARSE_ID=$(new_uuid)
ddb put-item --item "$(jq -n -c --arg id "$SPARSE_ID" '{user_id: {S: "public"}, id: {S: $id}, task: {S: "no priority, no status"},
  created_at: {N: "1703001234"}, updated_at: {N: "1703001234"}}')"
check_eq "missing attributes: put-item exits 0" 0 "$AWS_RC"
api v2 GET "/tasks/$SPARSE_ID"
expect "missing attributes: GET" 200 '. == {id: $id, task: "no priority, no status",
  created_at: 1703001234, updated_at: 1703001234}' --arg id "$SPARSE_ID"
SPARSE=$BODY
check_listed "missing attributes" "$SPARSE_ID" "$SPARSE"
api v2 PUT "/tasks/$SPARSE_ID" -b '{"priority":"low"}'
expect "missing attributes: PUT priority" 200 '.task.priority == "low" and (.task | has("status") | not)
  and .task.created_at == 1703001234 and .task.updated_at > 1703001234'
get_item "$SPARSE_ID"
check_jq "missing attributes: after the PUT the table has priority S and version 2 (none was 1), the rest unchanged" "$AWS_OUT" '
  .Item | keys == ["created_at","id","priority","task","updated_at","user_id","version"] and .priority == {S: "low"}
    and .version == {N: "2"}
    and .created_at == {N: "1703001234"} and (.updated_at | keys) == ["N"]
    and (.updated_at.N | test("^[1-9][0-9]*$"))'

section "extra attributes: served as plain JSON, kept by a PUT"

EXTRA_ID=$(new_uuid)
EXTRAS='{"note": {"S": "added by an operator"}, "ttl": {"N": "1893456000"}, "flag": {"BOOL": true},
  "nothing": {"NULL": true}, "list": {"L": [{"N": "1"}, {"S": "two"}, {"BOOL": false}]},
  "map": {"M": {"k": {"N": "2.5"}, "nested": {"M": {"s": {"S": "x"}}}}},
  "tags": {"SS": ["a", "b"]}, "nums": {"NS": ["1", "2.5"]}}'
ddb put-item --item "$(jq -n -c --arg id "$EXTRA_ID" --argjson x "$EXTRAS" '{user_id: {S: "public"}, id: {S: $id},
  task: {S: "with extra attributes"}, status: {S: "new"}, priority: {S: "medium"},
  created_at: {N: "1703001234"}, updated_at: {N: "1703001234"}} + $x')"
check_eq "extra attributes: put-item exits 0" 0 "$AWS_RC"
get_item "$EXTRA_ID"
EXTRA_STORED=$AWS_OUT
api v2 GET "/tasks/$EXTRA_ID"
expect "extra attributes: GET" 200 '.id == $id and .task == "with extra attributes"
  and .status == "new" and .priority == "medium" and .created_at == 1703001234
  and .note == "added by an operator" and .ttl == 1893456000 and .flag == true
  and has("nothing") and .nothing == null and .list == [1, "two", false]
  and .map == {k: 2.5, nested: {s: "x"}} and (.tags | sort) == ["a", "b"]
  and (.nums | sort) == [1, 2.5] and (keys | length) == 14' --arg id "$EXTRA_ID"
EXTRA_TASK=$BODY
check_listed "extra attributes" "$EXTRA_ID" "$EXTRA_TASK"
api v2 PUT "/tasks/$EXTRA_ID" -b '{"status":"in_progress"}'
expect "extra attributes: PUT" 200 '.task.status == "in_progress" and .task.note == "added by an operator"
  and .task.ttl == 1893456000'
get_item "$EXTRA_ID"
check_jq "extra attributes: the PUT changed status, updated_at and the version only" "$AWS_OUT" "$SETS_SORTED"'
  (.Item | del(.status, .updated_at, .version) | sets_sorted)
    == ($before.Item | del(.status, .updated_at, .version) | sets_sorted)
  and .Item.status == {S: "in_progress"} and (.Item.updated_at | keys) == ["N"]
  and .Item.version == {N: "2"}' \
  --argjson before "$EXTRA_STORED"

section "binary attributes (B, BS): served as base64 text, never a 500"

BIN_ID=$(new_uuid)
# "AAEC/w==" is the bytes 00 01 02 ff; both CLI versions read B in JSON as base64.
ddb put-item --item "$(jq -n -c --arg id "$BIN_ID" '{user_id: {S: "public"}, id: {S: $id}, task: {S: "with binary attributes"},
  status: {S: "new"}, priority: {S: "low"}, created_at: {N: "1703001234"}, updated_at: {N: "1703001234"},
  blob: {B: "AAEC/w=="}, blobs: {BS: ["AQ==", "Ag=="]}}')"
check_eq "binary attributes: put-item exits 0" 0 "$AWS_RC"
get_item "$BIN_ID"
BIN_B=$(jq -r '.Item.blob.B // empty' <<<"$AWS_OUT")
BIN_BS=$(jq -c '.Item.blobs.BS // [] | sort' <<<"$AWS_OUT")
check_jq "binary attributes: get-item shows B and BS" "$AWS_OUT" \
  '(.Item.blob | keys) == ["B"] and (.Item.blobs | keys) == ["BS"]'
api v2 GET "/tasks/$BIN_ID"
expect "binary attributes: GET" 200 '.task == "with binary attributes" and .blob == $b
  and (.blobs | sort) == $bs' --arg b "$BIN_B" --argjson bs "$BIN_BS"
find_listed "$BIN_ID"
check_eq "binary attributes: every page of GET /tasks is a 200" "" "$LIST_BAD"
check_eq "binary attributes: listed once" 1 "$LISTED_N"
api v2 PUT "/tasks/$BIN_ID" -b '{"priority":"high"}'
expect "binary attributes: PUT" 200 '.task.priority == "high"'
api v2 DELETE "/tasks/$BIN_ID"
expect "binary attributes: DELETE" 200 '.id == $id' --arg id "$BIN_ID"
get_item "$BIN_ID"
check_jq "binary attributes: gone after the DELETE" "$AWS_OUT" 'has("Item") | not'

section "known fields of another type: served as stored"

ODD_ID=$(new_uuid)
ddb put-item --item "$(jq -n -c --arg id "$ODD_ID" '{user_id: {S: "public"}, id: {S: $id}, task: {N: "5"}, status: {S: "weird"},
  priority: {NULL: true}, created_at: {S: "1703001234"}, updated_at: {N: "9007199254740993"}}')"
check_eq "other types: put-item exits 0" 0 "$AWS_RC"
api v2 GET "/tasks/$ODD_ID"
expect "other types: GET" 200 '.task == 5 and .status == "weird" and has("priority") and .priority == null
  and .created_at == "1703001234" and (.updated_at | type) == "number"'
find_listed "$ODD_ID"
check_eq "other types: every page of GET /tasks is a 200" "" "$LIST_BAD"
check_eq "other types: listed once" 1 "$LISTED_N"
api v2 PUT "/tasks/$ODD_ID" -b '{"task":"repaired","status":"new","priority":"low"}'
expect "other types: a PUT repairs them" 200 \
  '.task.task == "repaired" and .task.status == "new" and .task.priority == "low"'
get_item "$ODD_ID"
check_jq "other types: after the PUT, task/status/priority are S again" "$AWS_OUT" '
  .Item.task == {S: "repaired"} and .Item.status == {S: "new"} and .Item.priority == {S: "low"}'

section "keys that are not lower-case UUIDs: listed, not addressable"

UPPER_ID=$(new_uuid | tr '[:lower:]' '[:upper:]')
for foreign in "$UPPER_ID" "legacy-item-1"; do
  ddb put-item --item "$(jq -n -c --arg id "$foreign" '{user_id: {S: "public"}, id: {S: $id}, task: {S: "foreign key"},
    status: {S: "new"}, priority: {S: "low"}, created_at: {N: "1703001234"}, updated_at: {N: "1703001234"}}')"
  check_eq "key $foreign: put-item exits 0" 0 "$AWS_RC"
  api v2 GET "/tasks/$foreign"
  expect "key $foreign: GET /tasks/{id} is 404 (ids are looked up in lower case)" 404
  find_listed "$foreign"
  check_eq "key $foreign: every page of GET /tasks is a 200" "" "$LIST_BAD"
  check_jq "key $foreign: listed as stored" "${LISTED:-null}" '.id == $id and .task == "foreign key"' \
    --arg id "$foreign"
done

section "another owner's items: invisible to the API (auth off: the owner public)"

OTHER=someone-else
THEIRS_ID=$(new_uuid)
THEIRS_ITEM=$(jq -n -c --arg u "$OTHER" --arg id "$THEIRS_ID" '{user_id: {S: $u}, id: {S: $id},
  task: {S: "not public"}, status: {S: "new"}, priority: {S: "low"},
  created_at: {N: "1703001234"}, updated_at: {N: "1703001234"}}')
ddb put-item --item "$THEIRS_ITEM"
check_eq "another owner's item: put-item exits 0" 0 "$AWS_RC"
# The same id as a public task, under the other owner: a second item.
SHADOW=$(jq -c --arg u "$OTHER" '.user_id = {S: $u} | .task = {S: "shadow of a public task"}' \
  <<<"$(jq -c "$AV_OF_TASK" <<<"$UNICODE")")
ddb put-item --item "$SHADOW" --condition-expression 'attribute_not_exists(id)'
check_eq "the id of a public task under another owner: put-item exits 0 (another item)" 0 "$AWS_RC"
api v2 GET "/tasks/$THEIRS_ID"
expect "another owner's item: GET /tasks/{id} is 404" 404 '.message == "Task not found"'
api v2 PUT "/tasks/$THEIRS_ID" -b '{"status":"completed"}'
expect "another owner's item: PUT is 404" 404 '.message == "Task not found"'
api v2 DELETE "/tasks/$THEIRS_ID"
expect "another owner's item: DELETE is 404" 404 '.message == "Task not found"'
find_listed "$THEIRS_ID"
check_eq "another owner's item: every page of GET /tasks is a 200" "" "$LIST_BAD"
check_eq "another owner's item: not listed" 0 "$LISTED_N"
get_item "$THEIRS_ID" "$OTHER"
check_jq "another owner's item: unchanged in the table" "$AWS_OUT" '.Item == $i' --argjson i "$THEIRS_ITEM"
UNICODE_ID=$(jq -r '.id' <<<"$UNICODE")
api v2 GET "/tasks/$UNICODE_ID"
expect "the shared id: GET serves the public task" 200 '. == $t' --argjson t "$UNICODE"
check_listed "the shared id" "$UNICODE_ID" "$UNICODE"
get_item "$UNICODE_ID" "$OTHER"
check_jq "the shared id: the other owner's item is untouched" "$AWS_OUT" '.Item == $i' --argjson i "$SHADOW"

section "no 500 anywhere"
check_jq "no response was a 5xx" "$(jq -s -c '[.[] | select(.statusCode >= 500)]' "$RESP_LOG")" \
  'length == 0'

finish
