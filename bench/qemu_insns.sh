#!/usr/bin/env bash
# bench/qemu_insns.sh [LABEL=]BINARY... — instructions per warm invocation and per operation
# (create, get, list of 25, update, delete) like bench/callgrind.sh, for binaries valgrind
# cannot run here: the arm64 bootstrap (valgrind's arm64 build does not run on an x86_64
# host, and this Debian's qemu-user-static has no TCG plugins). Each guest instruction is
# counted by qemu itself: qemu-<arch>-static -singlestep (one instruction per translated
# block) -d exec,nochain (one "Trace" line per block executed, no chaining that would skip
# the log) into a FIFO that `wc -l` reads. The whole process is counted (not only
# th_lambda_run as callgrind does): per operation = (count of SEED creates + N operations −
# count of the SEED creates alone) / N, which leaves start-up and the seed out either way.
# BINARY's machine picks the emulator (AArch64: qemu-aarch64-static, x86-64:
# qemu-x86_64-static, which cross-checks the method against callgrind.sh on the same
# binary). Emulated, these are instruction counts only: no time here says anything about
# Graviton's (or a cold start's). N defaults to 50 (QI_N=...): the log is ~1 line per
# instruction. Needs qemu-user-static, node/npm (dynalite), jq and bench/.work/rapi
# (bench/run.sh --quick, or the cc line in bench/run.sh). QI_DIR: its work folder
# (default bench/.work/qemu-insns; one per concurrent run). QI_OPS: the operations (default
# all five; a row then has a column per operation given).
set -euo pipefail
bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench/.." && pwd)
work=$bench/.work
N=${QI_N:-50}
SEED=$((N + 50))
[ -x "$work/rapi" ] || { echo "qemu_insns.sh: $work/rapi missing (bench/run.sh --quick builds it)" >&2; exit 2; }
[ $# -ge 1 ] || { echo "usage: bench/qemu_insns.sh [LABEL=]BINARY..." >&2; exit 2; }

cg=${QI_DIR:-$work/qemu-insns}
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

# Guest instructions of the whole process for one plan (EMU: the emulator).
count() { # task-dir plan-file
  local dir=$1 plan=$2 fifo n
  fifo=$cg/trace.fifo
  rm -f "$fifo" "$cg/count"
  mkfifo "$fifo"
  grep -c '^Trace ' <"$fifo" >"$cg/count" &
  local reader=$!
  lambda_env "$dir"
  # Logged one instruction at a time, a route runs ~100x slower: its 5 s budget would end it.
  (cd "$dir" && env -i "${LAMBDA_ENV[@]}" TASKHOST_STORE=dynamodb TASKHOST_LUA_TIMEOUT_MS=50000 \
    "$work/rapi" warm --plan "$plan" -- \
    "$EMU" -singlestep -d exec,nochain -D "$fifo" ./bootstrap >/dev/null 2>"$cg/qemu.log") || true
  # If qemu never opened the FIFO, the reader still waits for a writer: a read-write open
  # (which never blocks) lets it see end-of-file.
  exec 3<>"$fifo"
  exec 3>&-
  wait "$reader" || true
  n=$(cat "$cg/count")
  rm -f "$fifo"
  [ "${n:-0}" -gt 0 ] || { echo "qemu_insns.sh: nothing counted (see $cg/qemu.log)" >&2; exit 1; }
  echo "$n"
}

ops=${QI_OPS:-create get list update delete}
echo "| binary | ${ops// / | } |"
echo "|---|$(for _ in $ops; do printf -- '---:|'; done)"
for arg in "$@"; do
  label=${arg%%=*} bin=${arg#*=}
  [ "$label" = "$arg" ] && label=$(basename "$bin")
  dir=$cg/task-$label
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$bin" "$dir/bootstrap"
  case $(LC_ALL=C readelf -h "$bin" | sed -n 's/.*Machine:[[:space:]]*//p') in
    AArch64) EMU=qemu-aarch64-static ;;
    "Advanced Micro Devices X86-64") EMU=qemu-x86_64-static ;;
    *) echo "qemu_insns.sh: $bin: not an AArch64 or x86-64 ELF" >&2; exit 2 ;;
  esac
  EMU=$(command -v "$EMU") || { echo "qemu_insns.sh: qemu-user-static missing (scripts/deps.sh --arm64)" >&2; exit 2; }
  cp -r "$root/lua" "$dir/lua"
  echo "create $SEED 0 $ev/create.json" >"$cg/plan-seed"
  base=$(count "$dir" "$cg/plan-seed")
  row="| $label"
  for op in $ops; do
    { cat "$cg/plan-seed"; echo "$op $N 0 $ev/$op.json"; } >"$cg/plan-$op"
    total=$(count "$dir" "$cg/plan-$op")
    row+=" | $(awk -v t="$total" -v b="$base" -v n="$N" 'BEGIN { printf "%.0f K", (t - b) / n / 1000 }')"
  done
  echo "$row |"
done
