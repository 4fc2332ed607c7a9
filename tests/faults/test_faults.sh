#!/usr/bin/env bash
# Fault injection between taskhost --serve and DynamoDB (dynalite): run under
# tests/integration/with_dynalite.sh, which exports the table and the endpoint.
#
# fault_proxy.py sits on loopback between the two (AWS_ENDPOINT_URL_DYNAMODB
# points at it) and, request by request, answers with throttling errors,
# 500/503, resets, a delay past the request's deadline, garbage or truncated
# bodies — or forwards the write and then loses the answer. For each scenario:
#   - the number of attempts the retry policy promises (counted at the proxy:
#     AWS_MAX_ATTEMPTS=3 for retryable faults, 1 for the others, and the
#     consistent GetItem a create makes when a retry meets its own write).
#     A reset on a reused connection costs one request more: libcurl re-sends
#     the request once by itself on a fresh connection ("Connection died,
#     retrying a fresh connect") before taskhost sees a failure, so three
#     attempts that all meet resets are three or four requests at the proxy
#     (four when the first went out on a reused connection);
#   - the client's status (503 with Retry-After: 1, 500, or the success the
#     retries reached) and a JSON body with a message;
#   - the answer within the deadline (TASKHOST_LUA_TIMEOUT_MS + 1 s);
#   - the server still serves the next request.
# Afterwards the table is read directly (AWS CLI scan against dynalite, not
# through the proxy) and checked against the ledger of what clients were told:
#   - every acknowledged create is there once, whole, with what was sent
#     (and what acknowledged updates set); every acknowledged delete is gone;
#   - a create answered 5xx is absent, or present once and whole (the outcome
#     is unknown to the client: README "Writes whose outcome is unknown"); the
#     scenarios where it lands are listed;
#   - an update answered 5xx left the item wholly old or wholly new; a delete
#     answered 5xx left it whole or gone;
#   - no item is partial (all six attributes, right types) or unknown.
# Prints "N passed, N failed".
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_STORE=dynamodb
source "$here/../e2e/lib.sh"
SHOW_LAST=0
: "${AWS_ENDPOINT_URL_DYNAMODB:?run under tests/integration/with_dynalite.sh}"
command -v aws >/dev/null || { echo "SKIP: the AWS CLI is not installed (scripts/deps.sh --test)"; exit 0; }
PY=${PYTHON:-python3}

DEADLINE_MS=${FAULTS_DEADLINE_MS:-5000}
export TASKHOST_LUA_TIMEOUT_MS=$DEADLINE_MS AWS_MAX_ATTEMPTS=3 TASKHOST_WORKERS=1
export TASKHOST_LOG_LEVEL=INFO

# ---- the proxy ------------------------------------------------------------------
source "$here/proxy_lib.sh"
proxy_start

serve_start || { fail "taskhost --serve starts on the proxy"; finish; }

LEDGER="$TMP/ledger.jsonl" # one line per write the client made, with its answer
: >"$LEDGER"
LANDED_UNKNOWN="" # scenarios whose 5xx create landed anyway
ledger() { jq -c -n "$@" >>"$LEDGER"; }

SEQ=0
# one_call METHOD PATH [BODY]: the request, timed. Sets STATUS BODY HDRS MS.
one_call() {
  local method=$1 path=$2 body=${3:-} t0 t1
  t0=$(date +%s%3N)
  if [ -n "$body" ]; then
    http "$method" "$path" -H 'Content-Type: application/json' --data-binary "$body"
  else
    http "$method" "$path"
  fi
  t1=$(date +%s%3N)
  MS=$((t1 - t0))
}

# verdict NAME WANT_STATUS: status, JSON message for errors, Retry-After on
# 503, within the deadline.
verdict() {
  local name=$1 want=$2
  check_eq "$name: status" "$want" "$STATUS"
  if [ "$STATUS" -ge 400 ] 2>/dev/null; then
    check_jq "$name: JSON body with a message" "$BODY" '.message | type == "string" and length > 0'
  fi
  if [ "$STATUS" = 503 ]; then
    check_eq "$name: Retry-After" 1 "$(hdr Retry-After)"
    check_eq "$name: message" "Service temporarily unavailable" "$(jq -r .message <<<"$BODY" 2>/dev/null)"
  fi
  if [ "$MS" -le $((DEADLINE_MS + 1000)) ]; then pass; else fail "$name: answered within the deadline" "${MS} ms"; fi
}

attempts() { # attempts NAME OP WANT (WANT: N, or N|M when libcurl may re-send once)
  local got
  got=$(count "$2")
  if [[ "|$3|" == *"|$got|"* ]]; then pass; else fail "$1: $2 requests at the proxy" "expected $3, got $got"; fi
}

alive() { # the host keeps serving (no fault planned)
  plan none
  local s
  s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BASE_URL/tasks?limit=1")
  check_eq "$1: the next request is served" 200 "$s"
}

# create NAME FAULTS WANT_STATUS PUT_ATTEMPTS [GET_ATTEMPTS]
create() {
  local name=$1 faults=$2 want=$3 puts=$4 gets=${5:-0}
  SEQ=$((SEQ + 1))
  local text="fault-$SEQ $name" prio=high
  plan PutItem "$faults"
  one_call POST /tasks "$(jq -c -n --arg t "$text" --arg p "$prio" '{task: $t, priority: $p}')"
  verdict "create/$name" "$want"
  attempts "create/$name" PutItem "$puts"
  attempts "create/$name" GetItem "$gets"
  local id=""
  [ "$STATUS" = 201 ] && id=$(jq -r .id <<<"$BODY")
  ledger --arg op create --arg name "$name" --arg text "$text" --arg id "$id" --arg prio "$prio" \
    --argjson status "$STATUS" '{op: $op, name: $name, text: $text, id: $id, priority: $prio, status: $status}'
  alive "create/$name"
}

# a task to work on, made without faults: sets TID TTEXT
fresh_task() {
  SEQ=$((SEQ + 1))
  TTEXT="fault-$SEQ target of $1"
  plan none
  one_call POST /tasks "$(jq -c -n --arg t "$TTEXT" '{task: $t}')"
  TID=$(jq -r .id <<<"$BODY")
  ledger --arg op create --arg name "setup $1" --arg text "$TTEXT" --arg id "$TID" --arg prio medium \
    --argjson status "$STATUS" '{op: $op, name: $name, text: $text, id: $id, priority: $prio, status: $status}'
}

# update NAME FAULTS WANT_STATUS ATTEMPTS
update() {
  local name=$1 faults=$2 want=$3 n=$4
  fresh_task "update/$name"
  plan UpdateItem "$faults"
  one_call PUT "/tasks/$TID" '{"status":"completed","priority":"urgent"}'
  verdict "update/$name" "$want"
  attempts "update/$name" UpdateItem "$n"
  ledger --arg op update --arg name "$name" --arg id "$TID" --argjson status "$STATUS" \
    '{op: $op, name: $name, id: $id, status: $status, set: {status: "completed", priority: "urgent"}}'
  alive "update/$name"
}

# delete NAME FAULTS WANT_STATUS ATTEMPTS [AGAIN_STATUS]
delete() {
  local name=$1 faults=$2 want=$3 n=$4 again=${5:-}
  fresh_task "delete/$name"
  plan DeleteItem "$faults"
  one_call DELETE "/tasks/$TID"
  verdict "delete/$name" "$want"
  attempts "delete/$name" DeleteItem "$n"
  ledger --arg op delete --arg name "$name" --arg id "$TID" --argjson status "$STATUS" \
    '{op: $op, name: $name, id: $id, status: $status}'
  if [ -n "$again" ]; then
    plan none
    one_call DELETE "/tasks/$TID"
    check_eq "delete/$name: the DELETE repeated" "$again" "$STATUS"
    ledger --arg op delete --arg name "$name (again)" --arg id "$TID" --argjson status "$STATUS" \
      '{op: $op, name: $name, id: $id, status: $status}'
  fi
  alive "delete/$name"
}

# read NAME OP FAULTS METHOD PATH WANT_STATUS ATTEMPTS
read_op() {
  local name=$1 op=$2 faults=$3 method=$4 path=$5 want=$6 n=$7
  plan "$op" "$faults"
  one_call "$method" "$path"
  verdict "$name" "$want"
  attempts "$name" "$op" "$n"
  alive "$name"
}

section "create (PutItem)"
create "throttled on every attempt" '["throttle","throttle","throttle"]' 503 3
create "throttled twice, then through" '["throttle","throttle"]' 201 3
create "throttled with x-amz-retry-after 300" '["throttle-ra:300","throttle-ra:300","throttle-ra:300"]' 503 3
create "500 on every attempt" '["e500","e500","e500"]' 503 3
create "503 on every attempt" '["e503","e503","e503"]' 503 3
create "503 once" '["e503"]' 201 2
create "connection reset on every attempt" '["reset","reset","reset","reset","reset","reset"]' 503 '3|4'
create "truncated body on every attempt" '["truncate","truncate","truncate"]' 503 3
create "garbage 200 with a wrong x-amz-crc32, every attempt" '["garbage-crc","garbage-crc","garbage-crc"]' 503 3
create "garbage 200 without x-amz-crc32" '["garbage"]' 500 1
create "ValidationException (not retried)" '["e400"]' 400 1
create "stalls past the deadline, never applied" '["hang:'$((DEADLINE_MS + 2000))'"]' 503 1
create "applied, answered 500 (answer lost)" '["apply-e500"]' 201 2 1
create "applied, connection reset (answer lost)" '["apply-reset"]' 201 2 1
create "applied, body truncated (answer lost)" '["apply-truncate"]' 201 2 1
create "applied, wrong x-amz-crc32 (answer lost)" '["apply-badcrc"]' 201 2 1
create "applied, then every retry throttled" '["apply-e503","throttle","throttle"]' 503 3
create "applied late, after the deadline" '["delay:'$((DEADLINE_MS + 1500))'"]' 503 1

section "update (UpdateItem)"
update "throttled on every attempt" '["throttle","throttle","throttle"]' 503 3
update "500 once" '["e500"]' 200 2
update "applied, answered 503 (answer lost)" '["apply-e503"]' 200 2
update "applied, reset on every attempt" '["apply-reset","apply-reset","apply-reset","apply-reset","apply-reset","apply-reset"]' 503 '3|4'
update "reset on every attempt, never applied" '["reset","reset","reset","reset","reset","reset"]' 503 '3|4'
update "stalls past the deadline" '["hang:'$((DEADLINE_MS + 2000))'"]' 503 1

section "delete (DeleteItem)"
delete "throttled on every attempt" '["throttle","throttle","throttle"]' 503 3 200
delete "500 once" '["e500"]' 200 2 404
delete "applied, answered 500 (answer lost)" '["apply-e500"]' 503 2 404
delete "applied, connection reset (answer lost)" '["apply-reset"]' 503 2 404
delete "reset on every attempt, never applied" '["reset","reset","reset","reset","reset","reset"]' 503 '3|4' 200

section "reads (GetItem, Query)"
fresh_task reads
read_op "get/throttled on every attempt" GetItem '["throttle","throttle","throttle"]' GET "/tasks/$TID" 503 3
read_op "get/reset twice, then through" GetItem '["reset","reset"]' GET "/tasks/$TID" 200 '2|3'
read_op "get/reset on every attempt" GetItem '["reset","reset","reset","reset","reset","reset"]' GET "/tasks/$TID" 503 '3|4'
read_op "get/garbage 200 without x-amz-crc32" GetItem '["garbage"]' GET "/tasks/$TID" 500 1
read_op "get/truncated on every attempt" GetItem '["truncate","truncate","truncate"]' GET "/tasks/$TID" 503 3
read_op "get/stalls past the deadline" GetItem '["hang:'$((DEADLINE_MS + 2000))'"]' GET "/tasks/$TID" 503 1
read_op "list/503 on every attempt" Query '["e503","e503","e503"]' GET "/tasks?limit=5" 503 3
read_op "list/throttled once" Query '["throttle"]' GET "/tasks?limit=5" 200 2
read_op "list/garbage 200 without x-amz-crc32" Query '["garbage"]' GET "/tasks?limit=5" 500 1

section "the server after the faults"
plan none
# let a late write (delay:...) land before reading the table
sleep $(( (DEADLINE_MS + 2500) / 1000 ))
one_call GET "/tasks?limit=1"
check_eq "still serving" 200 "$STATUS"
serve_stop TERM
if grep -q 'AddressSanitizer\|runtime error:\|LeakSanitizer' "$SERVE_LOG"; then
  fail "no sanitizer report in the server log" "$(grep -m3 'Sanitizer\|runtime error' "$SERVE_LOG")"
else
  pass
fi
retries=$(grep -c '"dynamodb: retrying"' "$SERVE_LOG")
echo "   (taskhost logged $retries retries)"

section "the table, read directly from dynalite"
aws dynamodb scan --table-name "$TABLE_NAME" --endpoint-url "$UPSTREAM" --region us-east-1 \
  --consistent-read --output json >"$TMP/scan.json" 2>"$TMP/scan.err" ||
  { fail "aws dynamodb scan" "$(cat "$TMP/scan.err")"; finish; }
jq -c '.Items[]' "$TMP/scan.json" >"$TMP/items.jsonl"
echo "   ($(wc -l <"$TMP/items.jsonl") items in the table, $(wc -l <"$LEDGER") writes in the ledger)"
"$PY" - "$TMP/items.jsonl" "$LEDGER" <<'PYEOF' >"$TMP/verdict.txt"
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
ledger = [json.loads(l) for l in open(sys.argv[2])]
out = []
def ok(name): out.append("PASS\t" + name)
def bad(name, why): out.append("FAIL\t%s\t%s" % (name, why))
def note(name): out.append("NOTE\t" + name)

SHAPE = {"user_id": "S", "id": "S", "task": "S", "status": "S", "priority": "S", "created_at": "N", "updated_at": "N",
         "version": "N"}  # the store's version (ETag / If-Match), beside the task
by_text, by_id = {}, {}
for it in items:
    whole = set(it) == set(SHAPE) and all(list(it[k].keys()) == [t] for k, t in SHAPE.items()) \
        and it["user_id"]["S"] == "public"  # auth off: every task is the owner public's
    iid = it.get("id", {}).get("S")
    if whole:
        ok("item %s is whole" % iid)
    else:
        bad("item %s is whole" % iid, json.dumps(it)[:300])
    by_id[iid] = it
    by_text.setdefault(it.get("task", {}).get("S"), []).append(it)

def val(it, k):
    return it[k].get("S") or it[k].get("N")

known_ids = set()
state = {}   # id -> list of acceptable (status, priority) states, or "gone" / "gone?"
for e in ledger:
    if e["op"] == "create":
        found = by_text.get(e["text"], [])
        if e["status"] == 201:
            # there once at most, with our id (presence: see the states below)
            if len(found) <= 1 and all(val(f, "id") == e["id"] for f in found):
                ok("create '%s': acknowledged, no duplicate" % e["name"])
            else:
                bad("create '%s': acknowledged, no duplicate" % e["name"],
                    "%d items: %s" % (len(found), [val(f, "id") for f in found]))
            if not e["name"].startswith("setup") and found and val(found[0], "priority") != e["priority"]:
                bad("create '%s': content" % e["name"], json.dumps(found[0]))
            known_ids.add(e["id"])
            state[e["id"]] = [("new", e["priority"])]
        else:
            if len(found) == 0:
                ok("create '%s': answered %d, not there" % (e["name"], e["status"]))
            elif len(found) == 1:
                ok("create '%s': answered %d, there once (outcome unknown to the client)" % (e["name"], e["status"]))
                note("create '%s' answered %d but landed (id %s)" % (e["name"], e["status"], val(found[0], "id")))
                known_ids.add(val(found[0], "id"))
                state[val(found[0], "id")] = [("new", e["priority"])]
            else:
                bad("create '%s': answered %d, at most once" % (e["name"], e["status"]), "%d items" % len(found))
    elif e["op"] == "update":
        new = (e["set"]["status"], e["set"]["priority"])
        st = state.get(e["id"], [])
        state[e["id"]] = [new] if e["status"] == 200 else st + [new]
        e["_states"] = list(state[e["id"]])
    elif e["op"] == "delete":
        if e["status"] == 200:
            state[e["id"]] = "gone"
        elif e["status"] == 404:
            if state.get(e["id"]) not in ("gone", "gone?"):
                state[e["id"]] = "gone?"  # only after an unknown delete
        else:
            if state.get(e["id"]) != "gone":
                state[e["id"]] = (state.get(e["id"]) or []) if isinstance(state.get(e["id"]), list) else []
                state[e["id"]] = ("maybe", state[e["id"]])

for iid, st in state.items():
    it = by_id.get(iid)
    if st == "gone" or st == "gone?":
        if it is None: ok("item %s: deleted as answered" % iid)
        else: bad("item %s: deleted as answered" % iid, json.dumps(it)[:200])
    elif isinstance(st, tuple):  # a delete with an unknown outcome
        if it is None:
            ok("item %s: delete answered 5xx, item gone (outcome unknown to the client)" % iid)
        elif (val(it, "status"), val(it, "priority")) in st[1]:
            ok("item %s: delete answered 5xx, item whole and unchanged" % iid)
        else:
            bad("item %s: delete answered 5xx" % iid, json.dumps(it)[:200])
    else:
        if it is None:
            bad("item %s: present" % iid, "missing")
        elif (val(it, "status"), val(it, "priority")) in st:
            ok("item %s: holds an acknowledged (or wholly applied) state" % iid)
        else:
            bad("item %s: state" % iid, "%s not in %s" % ((val(it, "status"), val(it, "priority")), st))

for iid in by_id:
    if iid not in known_ids:
        bad("item %s: made by this test" % iid, json.dumps(by_id[iid])[:200])
print("\n".join(out))
PYEOF
while IFS=$'\t' read -r kind name why; do
  case $kind in
    PASS) pass ;;
    FAIL) fail "table: $name" "$why" ;;
    NOTE) echo "   note: $name" ;;
  esac
done <"$TMP/verdict.txt"
finish
