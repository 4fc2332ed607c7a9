#!/usr/bin/env bash
# test_migrate_table.sh — scripts/migrate-table.sh on dynalite (CTest: dynamodb.migrate_table).
# Runs under with_dynalite.sh, which starts dynalite on 127.0.0.1:
#
#   bash tests/integration/with_dynalite.sh bash tests/integration/test_migrate_table.sh
#
# Creates, with the AWS CLI, an old table keyed id and a new one keyed (user_id, id); writes
# 1,050 tasks into the old one (BatchWriteItem, 25 a request) and, into the new one, items of
# two other owners (one with the id of an old task). Then:
#   a run killed by a crash after 450 items written (TASKHOST_MIGRATE_CRASH_AFTER: SIGKILL half
#   way through the fifth page of 100, before its checkpoint) leaves a checkpoint short of the
#   end, behind what was written; a run
#   without --resume refuses it; --resume finishes, every task is in the new table under
#   "public", exactly once, with its attributes, and the counts are verified;
#   a run stopped by SIGTERM says so (130) and --resume finishes it (on a second old table of
#   200 tasks, copied into a second new table);
#   a second full run changes nothing (a checksum of the new table's scan);
#   a task changed in the old table after a run is carried over by the next one; a task
#   changed in the new table (through the API, after the switch) is kept;
#   the old table is never changed (a checksum of its scan from the start to the end) and the
#   other owners' items neither;
#   --owner puts them under another owner, beside the "public" copies;
#   usage and refusals, one line each: a missing table, the tables swapped, the same table,
#   an unreachable endpoint, --resume without a checkpoint, an id too long for a sort key.
set -u
set -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MIGRATE=$(cd "$here/../.." && pwd)/scripts/migrate-table.sh
: "${AWS_ENDPOINT_URL_DYNAMODB:?run under tests/integration/with_dynalite.sh}"
E=$AWS_ENDPOINT_URL_DYNAMODB
N=1050
for tool in aws jq curl sha256sum; do
  command -v "$tool" >/dev/null || { echo "test_migrate_table: $tool is required" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test-migrate.XXXXXX") || exit 2
bg=""
trap '[ -z "$bg" ] || kill "$bg" 2>/dev/null; rm -rf "$TMP"' EXIT
cd "$TMP" || exit 2

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
fail() {
  FAILED=$((FAILED + 1))
  echo "FAIL - $1${2:+: $2}"
  echo "    last run: exit ${RC:-?}; stderr: $(tail -n 3 "$TMP/err" 2>/dev/null | tr '\n' '|')"
}
check() { if [ "$2" == "$3" ]; then pass "$1"; else fail "$1" "expected [$2], got [$3]"; fi; }
has() { if grep -qF -- "$2" "$TMP/err"; then pass "$1"; else fail "$1" "no '$2' on stderr"; fi; }

a() { AWS_PAGER="" aws dynamodb --endpoint-url "$E" --output json "$@"; }
# One BatchWriteItem with curl: dynalite checks that a SigV4-shaped header is there, not the
# signature. 42 requests with the AWS CLI would take as long as the rest of this test.
batch_write() {
  curl -sS --noproxy '*' -X POST "$E/" -H "Content-Type: application/x-amz-json-1.0" \
    -H "X-Amz-Target: DynamoDB_20120810.BatchWriteItem" -H "X-Amz-Date: 20240101T000000Z" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0" \
    --data-binary "$(jq -c '{RequestItems: .}' "$1")"
}
# sum TABLE [QUERY-ARGS...]: a checksum of every item (a consistent Scan, or a Query).
sum() {
  local t=$1
  shift
  if [ $# -eq 0 ]; then a scan --table-name "$t" --consistent-read; else a query --table-name "$t" --consistent-read "$@"; fi |
    jq -S -c '.Items | sort_by(.user_id.S // "", .id.S)' | sha256sum | cut -d' ' -f1
}
owner_items() { # OWNER: the new table's items of OWNER, sorted, user_id removed
  jq -n --arg o "$1" '{":o": {S: $o}}' >"$TMP/o.json"
  a query --table-name new --consistent-read --key-condition-expression "user_id = :o" \
    --expression-attribute-values "file://$TMP/o.json" | jq -S -c '.Items | map(del(.user_id)) | sort_by(.id.S)'
}
# run ARG...: migrate-table.sh against dynalite, in $TMP (the default checkpoint lands here).
run() {
  bash "$MIGRATE" --endpoint-url "$E" "$@" >"$TMP/out" 2>"$TMP/err"
  RC=$?
}

echo "== tables and $N tasks"
a create-table --table-name old --attribute-definitions AttributeName=id,AttributeType=S \
  --key-schema AttributeName=id,KeyType=HASH --billing-mode PAY_PER_REQUEST >/dev/null || exit 1
a create-table --table-name new \
  --attribute-definitions AttributeName=user_id,AttributeType=S AttributeName=id,AttributeType=S \
  --key-schema AttributeName=user_id,KeyType=HASH AttributeName=id,KeyType=RANGE --billing-mode PAY_PER_REQUEST >/dev/null || exit 1
for ((b = 0; b < N / 25; b++)); do
  jq -n -c --argjson b "$b" '{old: [range(0; 25) | ($b * 25 + .) as $i | {PutRequest: {Item: {
      id: {S: "00000000-0000-4000-8000-\(1000000000000 + $i | tostring)"},
      task: {S: "task \($i)"}, status: {S: (if $i % 2 == 0 then "new" else "completed" end)},
      priority: {S: "medium"}, created_at: {N: "\(1700000000 + $i)"}, updated_at: {N: "\(1700000000 + $i)"}}}}]}' >"$TMP/batch.json"
  if ! batch_write "$TMP/batch.json" | jq -e '.UnprocessedItems == {}' >/dev/null; then
    echo "FAIL - writing the old table (batch $b)"
    exit 1
  fi
done
check "the old table holds $N tasks" "$N" "$(a scan --table-name old --select COUNT | jq -r '.Count')"
first_id=00000000-0000-4000-8000-1000000000000
# Other owners in the new table: one of them with the id of an old task.
jq -n -c --arg id "$first_id" '{new: [
  {PutRequest: {Item: {user_id: {S: "alice-sub"}, id: {S: $id}, task: {S: "alice, same id"}, updated_at: {N: "9"}}}},
  {PutRequest: {Item: {user_id: {S: "alice-sub"}, id: {S: "018f0000-0000-7000-8000-000000000001"}, task: {S: "alice"}}}},
  {PutRequest: {Item: {user_id: {S: "bob-sub"}, id: {S: "018f0000-0000-7000-8000-000000000002"}, task: {S: "bob"}}}}]}' >"$TMP/others.json"
batch_write "$TMP/others.json" >/dev/null
old_sum=$(sum old)
others() { echo "$(sum new --key-condition-expression "user_id = :o" --expression-attribute-values '{":o": {"S": "alice-sub"}}')$(sum new --key-condition-expression "user_id = :o" --expression-attribute-values '{":o": {"S": "bob-sub"}}')"; }
others_sum=$(others)
expected=$(a scan --table-name old --consistent-read | jq -S -c '.Items | sort_by(.id.S)')

echo "== a run that crashes after 450 items written, half way through a page"
SECONDS=0
TASKHOST_MIGRATE_CRASH_AFTER=450 run --from old --to new
check "crash: killed (SIGKILL: 137)" 137 "$RC"
cp_file="$TMP/migrate-old-to-new.checkpoint.json"
if [ -f "$cp_file" ]; then pass "crash: the checkpoint is left"; else fail "crash: no checkpoint"; fi
done_items=$(jq -r '.scanned' "$cp_file" 2>/dev/null || echo none)
in_new=$(owner_items public | jq 'length')
if [ "$done_items" != none ] && [ "$done_items" -lt 450 ] && [ "$in_new" -ge 450 ] && [ "$in_new" -lt "$N" ]; then
  pass "crash: the checkpoint ($done_items items) is behind what was written ($in_new), short of $N"
else
  fail "crash: checkpoint at $done_items items, $in_new in the new table"
fi
run --from old --to new
check "crash: a run without --resume refuses the checkpoint" 1 "$RC"
has "crash: and says what to do" "exists (an interrupted run): --resume continues it, or remove it to start over"
run --from old --to new --resume
check "resume: exit 0" 0 "$RC"
has "resume: continues from the checkpoint" "resuming after $done_items items"
has "resume: counts verified" "verified: old has $N items; new has $N of owner 'public'"
if [ -f "$cp_file" ]; then fail "resume: the checkpoint is still there"; else pass "resume: the checkpoint is removed at the end"; fi
got=$(owner_items public)
if [ "$got" = "$expected" ]; then
  pass "resume: every task in the new table under public, once, as it was"
else
  fail "resume: the new table's public items differ from the old table's" \
    "$(jq 'length' <<<"$got") items, $(jq -n --argjson a "$got" --argjson b "$expected" '[$b[] | select(. as $x | $a | index($x) | not)] | length') of the old table's missing or different"
fi
echo "# crash + resume of $N items: ${SECONDS}s"

echo "== a second full run: nothing changes"
new_sum=$(sum new)
SECONDS=0
run --from old --to new
check "second run: exit 0" 0 "$RC"
has "second run: everything already there" "done: $N items read: 0 copied, 0 updated, $N already there, 0 kept"
check "second run: the new table is unchanged (checksum)" "$new_sum" "$(sum new)"
echo "# idempotent run of $N items: ${SECONDS}s"

echo "== changes on either side between runs"
check "the old table is unchanged by the runs so far (checksum of a full scan)" "$old_sum" "$(sum old)"
changed=00000000-0000-4000-8000-1000000000007
a update-item --table-name old --key "{\"id\": {\"S\": \"$changed\"}}" --update-expression "SET #s = :s, updated_at = :u" \
  --expression-attribute-names '{"#s": "status"}' --expression-attribute-values '{":s": {"S": "in_progress"}, ":u": {"N": "1800000000"}}' >/dev/null
mine=00000000-0000-4000-8000-1000000000008
a update-item --table-name new --key "{\"user_id\": {\"S\": \"public\"}, \"id\": {\"S\": \"$mine\"}}" --update-expression "SET task = :t, updated_at = :u" \
  --expression-attribute-values '{":t": {"S": "edited after the switch"}, ":u": {"N": "1800000000"}}' >/dev/null
old_sum=$(sum old) # the change above is the test's own; from here on the script must change nothing
run --from old --to new --page-size 70
check "changes: exit 0" 0 "$RC"
has "changes: one updated, one kept" "done: $N items read: 0 copied, 1 updated, $((N - 2)) already there, 1 kept"
check "changes: the old table's newer version was carried over" '"in_progress"' \
  "$(owner_items public | jq -c --arg id "$changed" '.[] | select(.id.S == $id) | .status.S')"
check "changes: the new table's own edit was kept" '"edited after the switch"' \
  "$(owner_items public | jq -c --arg id "$mine" '.[] | select(.id.S == $id) | .task.S')"

echo "== stopped by SIGTERM, then resumed"
a create-table --table-name old2 --attribute-definitions AttributeName=id,AttributeType=S \
  --key-schema AttributeName=id,KeyType=HASH --billing-mode PAY_PER_REQUEST >/dev/null
a create-table --table-name new2 \
  --attribute-definitions AttributeName=user_id,AttributeType=S AttributeName=id,AttributeType=S \
  --key-schema AttributeName=user_id,KeyType=HASH AttributeName=id,KeyType=RANGE --billing-mode PAY_PER_REQUEST >/dev/null
for ((b = 0; b < 8; b++)); do
  jq -n -c --argjson b "$b" '{old2: [range(0; 25) | {PutRequest: {Item: {
      id: {S: "11111111-0000-4000-8000-\(1000000000000 + $b * 25 + . | tostring)"}, task: {S: "small \(.)"}}}}]}' >"$TMP/batch.json"
  batch_write "$TMP/batch.json" >/dev/null
done
M=200
bash "$MIGRATE" --endpoint-url "$E" --from old2 --to new2 --page-size 25 >"$TMP/out" 2>"$TMP/err" &
bg=$!
cp2=./migrate-old2-to-new2.checkpoint.json
for _ in $(seq 1 600); do [ -f "$cp2" ] && break; kill -0 "$bg" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$bg" 2>/dev/null
wait "$bg"
RC=$?
bg=""
check "SIGTERM: exit 130" 130 "$RC"
has "SIGTERM: says how to go on" "interrupted; the checkpoint $cp2 is at the last page fully copied: run again with --resume"
if [ -f "$cp2" ]; then pass "SIGTERM: the checkpoint is kept"; else fail "SIGTERM: no checkpoint"; fi
run --from old2 --to new2 --resume --page-size 25
check "SIGTERM: --resume finishes" 0 "$RC"
has "SIGTERM: counts verified" "verified: old2 has $M items; new2 has $M of owner 'public'"
check "SIGTERM: every task in new2, once" "$M" \
  "$(a scan --table-name new2 --consistent-read | jq '[.Items[] | select(.user_id.S == "public")] | length')"

echo "== --owner"
run --from old2 --to new2 --owner alice-sub
check "--owner: exit 0" 0 "$RC"
has "--owner: counted under alice-sub" "new2 has $M of owner 'alice-sub'"
check "--owner: public's copies untouched, alice's as many" "$M $M" \
  "$(a scan --table-name new2 --consistent-read | jq -r '[([.Items[] | select(.user_id.S == "public")] | length), ([.Items[] | select(.user_id.S == "alice-sub")] | length)] | join(" ")')"

echo "== usage and refusals"
run --from missing --to new
check "missing table: exit 1" 1 "$RC"
has "missing table: named, with the service's error" "cannot describe table missing (--endpoint-url $E): ResourceNotFoundException"
run --from new --to old
check "tables swapped: exit 1" 1 "$RC"
has "tables swapped: said so" "--from new is keyed 'user_id:S:HASH id:S:RANGE', not id (S) alone: is it the old table?"
run --from old --to old
check "the same table: usage (2)" 2 "$RC"
run --to new
check "no --from: usage (2)" 2 "$RC"
has "no --from: said so" "--from OLD_TABLE is required"
run --from old --to new --resume
check "--resume without a checkpoint: exit 1" 1 "$RC"
has "--resume without a checkpoint: said so" "--resume, but there is no checkpoint"
bash "$MIGRATE" --endpoint-url http://127.0.0.1:9 --from old --to new >"$TMP/out" 2>"$TMP/err"
RC=$?
check "unreachable endpoint: exit 1" 1 "$RC"
check "unreachable endpoint: one line" 1 "$(wc -l <"$TMP/err")"
has "unreachable endpoint: names the table and the endpoint" "cannot describe table old (--endpoint-url http://127.0.0.1:9)"
check "nothing on stdout, ever" "" "$(cat "$TMP/out")"

jq -n -c --arg id "$(printf 'k%.0s' $(seq 1 1025))" '{old2: [{PutRequest: {Item: {id: {S: $id}, task: {S: "a long key"}}}}]}' >"$TMP/batch.json"
batch_write "$TMP/batch.json" >/dev/null
run --from old2 --to new2 --owner carol-sub
check "an id longer than a sort key takes: exit 1" 1 "$RC"
has "an id longer than a sort key takes: said so, with its size" "cannot be copied: kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk… (1025 bytes)"

echo "== untouched"
check "the old table never changed (checksum of a full scan)" "$old_sum" "$(sum old)"
check "the other owners' items in the new table never changed" "$others_sum" "$(others)"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
