#!/usr/bin/env bash
# Copies every task of a table keyed by id alone (a stack deployed before accounts) into the
# table keyed (user_id, id), under one owner. Never writes to, or deletes, the source.
#
#   scripts/migrate-table.sh --from OLD_TABLE --to NEW_TABLE [--owner OWNER] [--resume]
#                            [--checkpoint FILE] [--page-size N] [--region REGION]
#                            [--endpoint-url URL]
#
#   --from OLD_TABLE     the table keyed id (S); read with consistent Scans, never changed
#   --to NEW_TABLE       the table keyed user_id (S), id (S)
#   --owner OWNER        the user_id every copied task gets: "public" (the default) is the one
#                        owner of TASKHOST_AUTH=none; with accounts, the sub of the user who
#                        is to own them
#   --resume             continue an interrupted run from its checkpoint
#   --checkpoint FILE    where the progress is kept (default:
#                        ./migrate-OLD_TABLE-to-NEW_TABLE.checkpoint.json); removed when a run
#                        ends with every item verified
#   --page-size N        items per Scan page, 1 to 100 (default 100)
#   --region, --endpoint-url
#                        passed to the AWS CLI (e.g. --endpoint-url http://127.0.0.1:8000 for a
#                        local DynamoDB); otherwise AWS_REGION and the CLI's own configuration
#
# For each Scan page it reads the same keys from the target (BatchGetItem, consistent) and
# decides per item:
#   missing in the target         -> written (BatchWriteItem, 25 a request, unprocessed items
#                                    retried with backoff). Safe without a condition: the API
#                                    can't create an item with an old id (it makes new ids, and
#                                    PUT and DELETE need the item to exist), so only this script
#                                    writes these keys (one run at a time: a lock on the
#                                    checkpoint file).
#   identical                     -> left alone (a second run changes nothing)
#   older updated_at than source  -> replaced by a conditional PutItem that holds only while
#                                    the target still has the updated_at that was read (the
#                                    task changed in the old stack after an earlier run)
#   anything else                 -> left alone, counted as "kept": the target's copy was
#                                    changed through the API after the switch, and wins
# then reads the written keys back (every one must be there) and only then moves the
# checkpoint past the page. A run that stops anywhere (a crash, a kill, Ctrl-C, a throttled
# request given up on) loses at most the page in flight, which --resume does again.
# At the end it counts the source (Scan, COUNT) and the owner's items in the target (Query,
# COUNT): the target must hold at least as many (more when tasks were created since the
# switch). What it does not carry over: a task deleted from the source after an earlier run
# copied it, or deleted from the target before a later run (it is copied again).
#
# Needs the AWS CLI and jq; credentials allowed dynamodb:DescribeTable and dynamodb:Scan on
# the source, and dynamodb:DescribeTable, BatchGetItem, BatchWriteItem, PutItem and Query on
# the target.
#
# Exit status: 0 every item copied or already there, and the counts agree; 1 an error (one
# line on stderr saying what and where); 2 usage; 130 interrupted (--resume continues).
#
# Test hook: TASKHOST_MIGRATE_CRASH_AFTER=N kills the script (SIGKILL, no clean-up) once N
# items have been written, as a crash would (tests/integration/test_migrate_table.sh).
set -euo pipefail

me=$(basename "$0")
die() {
  echo "$me: $*" >&2
  exit 1
}
usage_error() {
  echo "$me: $* (--help for usage)" >&2
  exit 2
}
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 0
}

from="" to="" owner=public resume=0 checkpoint="" page_size=100
aws_args=()
need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi; }
while [ $# -gt 0 ]; do
  case $1 in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    --from) need_value "$@"; from=$2; shift ;;
    --to) need_value "$@"; to=$2; shift ;;
    --owner) need_value "$@"; owner=$2; shift ;;
    --checkpoint) need_value "$@"; checkpoint=$2; shift ;;
    --page-size) need_value "$@"; page_size=$2; shift ;;
    --region | --endpoint-url) need_value "$@"; aws_args+=("$1" "$2"); shift ;;
    --resume) resume=1 ;;
    -h | --help) usage ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done
[ -n "$from" ] || usage_error "--from OLD_TABLE is required"
[ -n "$to" ] || usage_error "--to NEW_TABLE is required"
[ "$from" != "$to" ] || usage_error "--from and --to name the same table"
if ! [[ $page_size =~ ^[1-9][0-9]{0,2}$ ]] || [ "$page_size" -gt 100 ]; then usage_error "--page-size must be 1 to 100"; fi
# DynamoDB's limit for a partition key value: 2048 bytes (UTF-8).
[ "$(printf '%s' "$owner" | wc -c)" -le 2048 ] || usage_error "--owner is longer than 2048 bytes"
checkpoint=${checkpoint:-./migrate-$from-to-$to.checkpoint.json}
crash_after=${TASKHOST_MIGRATE_CRASH_AFTER:-}

command -v aws >/dev/null 2>&1 ||
  die "aws CLI not found on PATH: install it (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
command -v jq >/dev/null 2>&1 || die "jq not found on PATH: install it (e.g. apt-get install jq)"
command -v flock >/dev/null 2>&1 || die "flock not found on PATH: install util-linux"

work=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/migrate-table.XXXXXX") || die "cannot create a temporary directory"
lock_taken=0
cleanup() {
  rm -rf "$work"
  [ "$lock_taken" = 0 ] || rm -f "$checkpoint.lock"
}
trap cleanup EXIT
interrupted() {
  echo "$me: interrupted; the checkpoint $checkpoint is at the last page fully copied: run again with --resume" >&2
  exit 130
}
trap interrupted INT TERM HUP

# ddb OPERATION ARGS...: `aws dynamodb OPERATION` with the common arguments. Prints the
# answer; on failure writes "Code: message" (or the CLI's first line) where err reads it
# (a file: ddb often runs in a command substitution's subshell) and returns 1.
ddb() {
  local op=$1 status=0 out msg
  shift
  out=$(AWS_PAGER="" aws dynamodb "$op" "${aws_args[@]+"${aws_args[@]}"}" --output json "$@" 2>"$work/err") || status=$?
  if [ "$status" -ne 0 ]; then
    msg=$(sed -n 's/.*An error occurred (\([A-Za-z.#]*\)) when calling the [A-Za-z]* operation[^:]*: \(.*\)/\1: \2/p' "$work/err" | head -n 1)
    [ -n "$msg" ] || msg=$(grep -m 1 -v '^[[:space:]]*$' "$work/err" | sed 's/^[[:space:]]*//')
    printf '%s\n' "${msg:-the AWS CLI failed without a message}" >"$work/errmsg"
    return 1
  fi
  printf '%s\n' "$out"
}
err() { cat "$work/errmsg" 2>/dev/null || echo "no message"; }
where() {
  local e="" i
  for ((i = 0; i < ${#aws_args[@]}; i += 2)); do e+=" ${aws_args[i]} ${aws_args[i + 1]}"; done
  [ -n "$e" ] || e=" the AWS CLI configuration's region and endpoint"
  echo "${e# }"
}

# key_schema TABLE: "name:type:HASH name:type:RANGE".
key_schema() {
  local d
  d=$(ddb describe-table --table-name "$1") || die "cannot describe table $1 ($(where)): $(err)"
  jq -r '.Table as $t | [$t.KeySchema[] | .AttributeName as $n
    | "\($n):\([$t.AttributeDefinitions[] | select(.AttributeName == $n) | .AttributeType][0]):\(.KeyType)"] | join(" ")' <<<"$d"
}
src_keys=$(key_schema "$from")
[ "$src_keys" = "id:S:HASH" ] ||
  die "--from $from is keyed '$src_keys', not id (S) alone: is it the old table?"
dst_keys=$(key_schema "$to")
[ "$dst_keys" = "user_id:S:HASH id:S:RANGE" ] ||
  die "--to $to is keyed '$dst_keys', not user_id (S), id (S): is it the new table?"

# One run at a time per checkpoint: two would race on the same keys.
exec 9>>"$checkpoint.lock" || die "cannot open $checkpoint.lock"
flock -n 9 || die "another migration holds $checkpoint.lock; wait for it to end"
lock_taken=1

start_key="null"
copied=0 updated=0 same=0 kept=0 scanned=0 pages=0
if [ -f "$checkpoint" ]; then
  [ "$resume" = 1 ] ||
    die "$checkpoint exists (an interrupted run): --resume continues it, or remove it to start over"
  jq -e --arg f "$from" --arg t "$to" --arg o "$owner" \
    '.from == $f and .to == $t and .owner == $o and (.last_evaluated_key | type == "object")' \
    "$checkpoint" >/dev/null 2>&1 ||
    die "$checkpoint is not a checkpoint of --from $from --to $to --owner $owner"
  start_key=$(jq -c '.last_evaluated_key' "$checkpoint")
  read -r copied updated same kept scanned pages < <(jq -r '[.copied, .updated, .same, .kept, .scanned, .pages] | @tsv' "$checkpoint")
  echo "$me: resuming after $scanned items ($pages pages), from $checkpoint" >&2
elif [ "$resume" = 1 ]; then
  die "--resume, but there is no checkpoint $checkpoint (a finished run removes it: run without --resume)"
fi

# save_checkpoint LAST_EVALUATED_KEY: written whole, then renamed over the old one.
save_checkpoint() {
  if ! jq -n --arg f "$from" --arg t "$to" --arg o "$owner" --argjson k "$1" \
    --argjson c "$copied" --argjson u "$updated" --argjson s "$same" --argjson kp "$kept" \
    --argjson n "$scanned" --argjson p "$pages" \
    '{from: $f, to: $t, owner: $o, last_evaluated_key: $k, copied: $c, updated: $u, same: $s,
      kept: $kp, scanned: $n, pages: $p}' >"$checkpoint.tmp"; then
    die "cannot write $checkpoint.tmp"
  fi
  mv -f "$checkpoint.tmp" "$checkpoint" || die "cannot write $checkpoint"
}

# backoff N: sleeps before retry N (0.1 s doubling, at most 6.4 s).
backoff() { sleep "$(awk -v n="$1" 'BEGIN { d = 0.1 * 2 ^ n; if (d > 6.4) d = 6.4; print d }')"; }

# batch_get KEYS-JSON-ARRAY: the target's items with those keys (up to 100), as a JSON array,
# retrying unprocessed keys.
batch_get() {
  local keys=$1 got="[]" out try=0
  while [ "$(jq 'length' <<<"$keys")" -gt 0 ]; do
    jq -n --arg t "$to" --argjson k "$keys" '{($t): {Keys: $k, ConsistentRead: true}}' >"$work/get.json"
    out=$(ddb batch-get-item --request-items "file://$work/get.json") || die "BatchGetItem on $to failed ($(where)): $(err)"
    got=$(jq -c --arg t "$to" --argjson g "$got" '$g + (.Responses[$t] // [])' <<<"$out")
    keys=$(jq -c --arg t "$to" '.UnprocessedKeys[$t].Keys // []' <<<"$out")
    if [ "$(jq 'length' <<<"$keys")" -gt 0 ]; then
      try=$((try + 1))
      [ "$try" -le 10 ] || die "BatchGetItem on $to left keys unprocessed 10 times (throttled?): run again with --resume"
      backoff "$try"
    fi
  done
  printf '%s\n' "$got"
}

# batch_put ITEMS-JSON-ARRAY: writes up to 25 items, retrying unprocessed ones.
batch_put() {
  local items=$1 out try=0
  while [ "$(jq 'length' <<<"$items")" -gt 0 ]; do
    jq -n --arg t "$to" --argjson i "$items" '{($t): [$i[] | {PutRequest: {Item: .}}]}' >"$work/put.json"
    out=$(ddb batch-write-item --request-items "file://$work/put.json") || die "BatchWriteItem on $to failed ($(where)): $(err)"
    items=$(jq -c --arg t "$to" '[.UnprocessedItems[$t][]?.PutRequest.Item]' <<<"$out")
    if [ "$(jq 'length' <<<"$items")" -gt 0 ]; then
      try=$((try + 1))
      [ "$try" -le 10 ] || die "BatchWriteItem on $to left items unprocessed 10 times (throttled?): run again with --resume"
      backoff "$try"
    fi
  done
}

written=0 # items written by this process (for the crash hook)
crash_check() {
  if [ -n "$crash_after" ] && [ "$written" -ge "$crash_after" ]; then
    echo "$me: TASKHOST_MIGRATE_CRASH_AFTER=$crash_after: killing myself after $written items written" >&2
    kill -KILL $$
  fi
}

echo "$me: copying $from -> $to as owner '$owner' ($(where))" >&2
while :; do
  scan_args=(--table-name "$from" --consistent-read --limit "$page_size" --no-paginate)
  if [ "$start_key" != "null" ]; then
    printf '%s\n' "$start_key" >"$work/start.json"
    scan_args+=(--exclusive-start-key "file://$work/start.json")
  fi
  page=$(ddb scan "${scan_args[@]}") || die "Scan of $from failed ($(where)): $(err)"
  pages=$((pages + 1))
  n=$(jq '.Items | length' <<<"$page")
  if [ "$n" -gt 0 ]; then
    bad=$(jq -r '[.Items[] | select((.id.S | type) != "string" or has("user_id")) | (.id | tostring)] | first // empty' <<<"$page")
    [ -z "$bad" ] || die "an item of $from ($bad) has no string id or already has a user_id: is --from the old table?"
    # The old key was a partition key (up to 2048 bytes); id is now a sort key (up to 1024).
    long=$(jq -r '[.Items[] | select(.id.S | utf8bytelength > 1024)] | first // empty | "\(.id.S[:40])… (\(.id.S | utf8bytelength) bytes)"' <<<"$page")
    [ -z "$long" ] || die "$from has an item whose id is longer than the 1024 bytes a sort key takes, so it cannot be copied: $long; shorten or remove it in $from (not written by the API, which makes UUIDs), then run again with --resume"
    want=$(jq -c --arg o "$owner" '[.Items[] | . + {user_id: {S: $o}}]' <<<"$page")
    there=$(batch_get "$(jq -c '[.[] | {user_id, id}]' <<<"$want")")
    # Each item: "missing", "same", "newer" (the source's updated_at is later) or "kept".
    plan=$(jq -c --argjson there "$there" '
      ($there | map({key: .id.S, value: .}) | from_entries) as $t
      | def upd: (.updated_at.N // null) | if . == null then null else tonumber end;
      map(. as $w | $t[$w.id.S] as $cur
        | {item: $w, cur: $cur, what: (
            if $cur == null then "missing"
            elif $cur == $w then "same"
            elif ($w | upd) != null and ($cur | upd) != null and ($w | upd) > ($cur | upd) then "newer"
            else "kept" end)})' <<<"$want")
    missing=$(jq -c '[.[] | select(.what == "missing") | .item]' <<<"$plan")
    m=$(jq 'length' <<<"$missing")
    for ((i = 0; i < m; i += 25)); do
      batch_put "$(jq -c --argjson i "$i" '.[$i:$i + 25]' <<<"$missing")"
      written=$((written + (m - i < 25 ? m - i : 25)))
      crash_check
    done
    # Replaced only while the target still holds the version read above.
    nu=0
    while IFS= read -r row; do
      [ -n "$row" ] || continue
      jq -c '.item' <<<"$row" >"$work/item.json"
      jq -c '{":seen": .cur.updated_at}' <<<"$row" >"$work/values.json"
      if ddb put-item --table-name "$to" --item "file://$work/item.json" \
        --condition-expression "updated_at = :seen" --expression-attribute-values "file://$work/values.json" >/dev/null; then
        nu=$((nu + 1))
        written=$((written + 1))
        crash_check
      elif [[ $(err) == ConditionalCheckFailedException* ]]; then
        kept=$((kept + 1)) # changed through the API meanwhile: the target's version wins
      else
        die "PutItem on $to failed ($(where)): $(err)"
      fi
    done < <(jq -c '.[] | select(.what == "newer")' <<<"$plan")
    # Read back what was written: every key must be there now.
    if [ "$m" -gt 0 ] || [ "$nu" -gt 0 ]; then
      keys=$(jq -c '[.[] | select(.what == "missing" or .what == "newer") | .item | {user_id, id}]' <<<"$plan")
      back=$(batch_get "$keys")
      absent=$(jq -r --argjson back "$back" '[$back[].id.S] as $b | [.[] | .id.S | select(. as $k | $b | index($k) | not)] | first // empty' <<<"$keys")
      [ -z "$absent" ] || die "item $absent was written to $to but is not there when read back; nothing after it was copied: run again with --resume"
    fi
    copied=$((copied + m))
    updated=$((updated + nu))
    same=$((same + $(jq '[.[] | select(.what == "same")] | length' <<<"$plan")))
    kept=$((kept + $(jq '[.[] | select(.what == "kept")] | length' <<<"$plan")))
    scanned=$((scanned + n))
  fi
  start_key=$(jq -c '.LastEvaluatedKey // null' <<<"$page")
  if [ "$start_key" = "null" ]; then
    break
  fi
  save_checkpoint "$start_key"
  echo "$me: $scanned items read: $copied copied, $updated updated, $same already there, $kept kept as changed in $to" >&2
done

# The counts: every source item must have its copy among the owner's items.
src_count=$(ddb scan --table-name "$from" --consistent-read --select COUNT | jq -r '.Count') ||
  die "counting the items of $from failed ($(where)): $(err)"
jq -n --arg o "$owner" '{":o": {S: $o}}' >"$work/owner.json"
dst_count=$(ddb query --table-name "$to" --consistent-read --select COUNT \
  --key-condition-expression "user_id = :o" --expression-attribute-values "file://$work/owner.json" | jq -r '.Count') ||
  die "counting the items of owner '$owner' in $to failed ($(where)): $(err)"
rm -f "$checkpoint"
echo "$me: done: $scanned items read: $copied copied, $updated updated, $same already there, $kept kept as changed in $to" >&2
if [ "$dst_count" -lt "$src_count" ]; then
  die "$from has $src_count items but $to only $dst_count of owner '$owner': items were added to $from while copying, or deleted from $to; run again"
fi
extra=$((dst_count - src_count))
echo "$me: verified: $from has $src_count items; $to has $dst_count of owner '$owner'$([ "$extra" -eq 0 ] || echo " ($extra more: tasks created since the switch, or deleted from $from)")" >&2
