#!/usr/bin/env bash
# valgrind_lambda.sh [COUNT] — the Lambda Runtime API loop under valgrind
# memcheck for COUNT rounds (default 500; the long run: 10000) of every
# operation: create (201), get (200), update (200), list (200; every other
# one with a cursor), delete (200), each on its own task, so 5 x COUNT
# invocations in one process, then SIGTERM. Any memory error or
# definite/indirect leak makes valgrind exit 99; the test also checks every
# answer's status and prints valgrind's summary (errors, leaks, heap use).
#
# The tasks to get/update/delete are made first by a native (no valgrind)
# run of the same loop on the same store, so their ids are known.
# Store: SQLite; DynamoDB on dynalite when run under with_dynalite.sh with
# E2E_STORE=dynamodb. Skipped (passes with a note) without valgrind or on a
# sanitizer build. Environment as for tests/e2e (TASKHOST_BIN, ...).
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
SHOW_LAST=0
COUNT=${1:-500}
PY=${PYTHON:-python3}

if ! command -v valgrind >/dev/null; then
  echo "SKIP: valgrind is not installed (scripts/deps.sh --test)"
  exit 0
fi
if [[ "$(ldd "$TASKHOST_BIN" 2>/dev/null)" == *libasan* ]]; then
  echo "SKIP: $TASKHOST_BIN is a sanitizer build; valgrind cannot run it"
  exit 0
fi
unset AWS_LAMBDA_RUNTIME_API _X_AMZN_TRACE_ID
[ "${E2E_STORE:-sqlite}" = dynamodb ] || export TASKHOST_STORE="sqlite:$TMP/valgrind.db"
export TASKHOST_LOG_LEVEL=WARN # 5 x COUNT "request" lines would only slow valgrind down
VG_LOG="$TMP/valgrind.log"
VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
  --show-leak-kinds=definite,indirect --log-file="$VG_LOG")

# wait_drained SECONDS: until the test server records that the queue ran out
wait_drained() {
  local i
  for i in $(seq 1 $(($1 * 5))); do
    grep -q '"kind":"drained"' "$RAPI_REC" && return 0
    kill -0 "$RT_PID" 2>/dev/null || { grep -q '"kind":"drained"' "$RAPI_REC"; return; }
    sleep 0.2
  done
  return 1
}

section "setup: $COUNT tasks made natively"
create=$(event v2 POST /tasks -b '{"task":"valgrind"}' | jq -c .)
list=$(event v1 GET /tasks -q limit=5 | jq -c .)
{
  for i in $(seq 1 "$COUNT"); do printf '{"request_id":"setup-%d","event":%s}\n' "$i" "$create"; done
  printf '{"request_id":"setup-list","event":%s}\n' "$list"
} >"$TMP/setup.jsonl"
rapi_start --queue "$TMP/setup.jsonl" --timeout 7200 || { fail "test server starts"; finish; }
rt_start
wait_drained 600 || fail "the setup run drains its queue"
rt_term 30
check_eq "setup: native run exits 0" 0 "$RT_RC"
grep '"kind":"response"' "$RAPI_REC" | jq -r 'select(.request_id | startswith("setup-")) | .body | fromjson
  | select(.statusCode == 201) | .body | fromjson | .id' >"$TMP/ids"
cursor=$(grep '"request_id":"setup-list"' "$RAPI_REC" | grep '"kind":"response"' | jq -r '.body | fromjson | .body | fromjson | .next')
rapi_stop
check_eq "setup: $COUNT tasks made" "$COUNT" "$(wc -l <"$TMP/ids")"
[ -n "$cursor" ] && [ "$cursor" != null ] && pass || fail "setup: a cursor" "$cursor"

section "$((5 * COUNT)) invocations under memcheck"
get=$(event v2 GET /tasks/ID | jq -c .)
put=$(event v1 PUT /tasks/ID -b '{"status":"completed","priority":"high"}' | jq -c .)
del=$(event v2 DELETE /tasks/ID | jq -c .)
listc=$(event v2 GET /tasks -q limit=5 -q "next=$cursor" | jq -c .)
"$PY" - "$TMP/ids" "$create" "$get" "$put" "$list" "$listc" "$del" >"$TMP/queue.jsonl" <<'PYEOF'
import json, sys
ids = [l.strip() for l in open(sys.argv[1]) if l.strip()]
create, get, put, lst, lstc, delete = (json.loads(a) for a in sys.argv[2:8])
def with_id(ev, i):
    s = json.dumps(ev).replace("/tasks/ID", "/tasks/" + i)
    return json.loads(s)
out = sys.stdout
for n, i in enumerate(ids, 1):
    for kind, ev in (("create", create), ("get", with_id(get, i)), ("update", with_id(put, i)),
                     ("list", lstc if n % 2 else lst), ("delete", with_id(delete, i))):
        out.write(json.dumps({"request_id": "%s-%d" % (kind, n), "event": ev}, separators=(",", ":")) + "\n")
PYEOF
rm -f "$RAPI_REC"
rapi_start --queue "$TMP/queue.jsonl" --timeout 14400 || { fail "test server starts"; finish; }
t0=$(date +%s)
rt_start "${VG[@]}"
# generous: valgrind is ~30x slower, and the test server is Python
if wait_drained $((600 + COUNT * 2)); then pass; else fail "every event served under valgrind"; fi
rt_term 120
secs=$(($(date +%s) - t0))
rapi_stop
check_eq "valgrind: exit 0 after SIGTERM (99 would be a memory error or leak)" 0 "$RT_RC"
grep '"kind":"response"' "$RAPI_REC" | jq -r '"\(.request_id | sub("-[0-9]+$"; "")) \(.body | fromjson | .statusCode)"' |
  sort | uniq -c >"$TMP/statuses"
for want in "create 201" "get 200" "update 200" "list 200" "delete 200"; do
  check_eq "valgrind: $want x $COUNT" "$COUNT" "$(awk -v k="${want% *}" -v s="${want#* }" '$2 == k && $3 == s {print $1}' "$TMP/statuses")"
done
check_eq "valgrind: no Lambda error posted" 0 "$(grep -c '"kind":"error"' "$RAPI_REC")"
echo "   ($((5 * COUNT)) invocations in ${secs}s under valgrind)"
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|total heap usage' "$VG_LOG" |
  sed 's/^==[0-9]*== /   valgrind: /'
if [ "$RT_RC" != 0 ]; then
  echo "--- valgrind log (head) ---"
  head -80 "$VG_LOG"
fi
finish
