#!/usr/bin/env bash
# bench/callgrind.sh BINARY [BINARY...] — instructions per warm invocation and
# per operation (create, get, list of 25, update, delete), counted by
# valgrind --tool=callgrind over th_lambda_run (the whole Lambda loop: Runtime
# API calls, event decoding, the Lua route, the store, the response), with
# bench/rapi.c as the Runtime API and dynalite as DynamoDB, in Lambda's
# environment (bench/lib.sh: session token included).
#
# Per operation: (instructions of a run of SEED creates + N operations −
# those of a run of the SEED creates alone) / N. Prints one markdown row per
# binary: "| label | create | get | list | update | delete |" in K instructions.
# Each BINARY may be given as LABEL=PATH. N defaults to 200 (CG_N=...).
# Unstripped binaries give the same counts as stripped ones (symbols only
# name the toggle function). Needs valgrind, node/npm (dynalite), jq, and
# bench/.work/rapi (bench/run.sh --quick, or the cc line in bench/run.sh).
# CG_OPS="create list" measures only those operations (the row keeps its five
# columns, "-" for the others); CG_KEEP=1 keeps each run's callgrind file as
# bench/.work/callgrind/LABEL.OP.out (OP "seed": the creates alone), for
# callgrind_annotate --inclusive=yes.
set -euo pipefail
bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench/.." && pwd)
work=$bench/.work
N=${CG_N:-200}
SEED=$((N + 50))
[ -x "$work/rapi" ] || { echo "callgrind.sh: $work/rapi missing (bench/run.sh --quick builds it)" >&2; exit 2; }
[ $# -ge 1 ] || { echo "usage: bench/callgrind.sh [LABEL=]BINARY..." >&2; exit 2; }

cg=$work/callgrind
mkdir -p "$cg"
export DYNALITE_DIR=$cg/dynalite TABLE_NAME=taskhost-cg
rm -rf "$DYNALITE_DIR"
mkdir -p "$DYNALITE_DIR"
trap 'bash "$root/tests/integration/dynalite.sh" stop 2>/dev/null || true' EXIT
bash "$root/tests/integration/dynalite.sh" start >&2
ENDPOINT="http://127.0.0.1:$(cat "$DYNALITE_DIR/port")"
source "$bench/lib.sh"
ev=$cg/events
write_events "$ev"

# Total Ir of th_lambda_run (inclusive) for one plan.
count() { # task-dir plan-file [kept-file]
  local dir=$1 plan=$2 out
  out=${3:-$cg/out.$$}
  rm -f "$out"
  lambda_env "$dir"
  (cd "$dir" && env -i "${LAMBDA_ENV[@]}" TASKHOST_STORE=dynamodb "$work/rapi" warm --plan "$plan" -- \
    /usr/bin/valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
    --toggle-collect=th_lambda_run ./bootstrap >/dev/null 2>"$cg/valgrind.log")
  sed -n 's/^summary: *//p; s/^totals: *//p' "$out" | head -1 | awk '{ print $1 }'
  [ -n "${3:-}" ] || rm -f "$out"
}
ops=${CG_OPS:-create get list update delete}
keep() { [ "${CG_KEEP:-0}" = 1 ] && echo "$cg/$1.$2.out"; return 0; }

echo "| binary | create | get | list | update | delete |"
echo "|---|---:|---:|---:|---:|---:|"
for arg in "$@"; do
  label=${arg%%=*} bin=${arg#*=}
  [ "$label" = "$arg" ] && label=$(basename "$bin")
  dir=$cg/task-$label
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$bin" "$dir/bootstrap"
  cp -r "$root/lua" "$dir/lua"
  echo "create $SEED 0 $ev/create.json" >"$cg/plan-seed"
  base=$(count "$dir" "$cg/plan-seed" "$(keep "$label" seed)")
  row="| $label"
  for op in create get list update delete; do
    case " $ops " in *" $op "*) ;; *) row+=" | -"; continue ;; esac
    { cat "$cg/plan-seed"; echo "$op $N 0 $ev/$op.json"; } >"$cg/plan-$op"
    total=$(count "$dir" "$cg/plan-$op" "$(keep "$label" "$op")")
    row+=" | $(awk -v t="$total" -v b="$base" -v n="$N" 'BEGIN { printf "%.0f K", (t - b) / n / 1000 }')"
  done
  echo "$row |"
done
