#!/usr/bin/env bash
# run.sh SECONDS [TARGET...] — builds the fuzz targets (build.sh) and, for each
# target (default: all of tests/fuzz/fuzz_*.c):
#   1. replays every input in regressions/<target>/ (each one a crash found
#      earlier; it must now run clean);
#   2. fuzzes for SECONDS seconds, starting from the seeds in corpus/<target>/
#      (copied to a scratch corpus, so the checked-in seeds do not change).
# Any crash, leak, sanitizer report, timeout (>10 s an input) or OOM (>2 GB)
# fails the run; its input is kept under $OUT/artifacts/<target>/ and the
# last lines of the report are printed. Ends with one line per target
# (executions, coverage, corpus size) and "N passed, N failed".
#
# Options (before SECONDS):
#   --out DIR      build and work folder (default: $FUZZ_BUILD_DIR, else build-fuzz/)
#   --keep-corpus  keep the grown corpus in DIR/corpus/<target> across runs
#                  (long runs); default: a fresh copy of the seeds each run
#   --jobs N       targets fuzzed at the same time (default 1)
#   --no-build     use the targets already in DIR
# Environment: CC (clang), RUNTIME_DIR (see build.sh). Without clang or its
# libFuzzer runtime it prints "SKIP: ..." and exits 0.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FUZZ_BUILD_DIR:-$root/build-fuzz}
keep=0 jobs=1 build=1
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --keep-corpus) keep=1; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
seconds=${1:?usage: run.sh [--out DIR] [--keep-corpus] [--jobs N] [--no-build] SECONDS [TARGET...]}
shift
case $seconds in ''|*[!0-9]*) echo "run.sh: SECONDS must be a whole number" >&2; exit 2 ;; esac
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for t in "$here"/fuzz_*.c; do
    n=$(basename "$t" .c)
    targets+=("${n#fuzz_}")
  done
fi

if [ "$build" = 1 ]; then
  "$here/build.sh" "$out" >/dev/null
  rc=$?
  if [ "$rc" = 3 ]; then
    echo "SKIP: clang with libFuzzer is not installed (apt-get install clang libclang-rt-14-dev)"
    exit 0
  fi
  [ "$rc" = 0 ] || { echo "run.sh: build failed" >&2; exit 1; }
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export TMPDIR=${TMPDIR:-/tmp}

# fuzz_one TARGET: runs steps 1 and 2; writes $out/logs/TARGET.{replay,fuzz}.log
# and $out/logs/TARGET.result ("ok ..." or "FAIL ...").
fuzz_one() {
  local t=$1 bin="$out/fuzz_$1" logs="$out/logs" res
  res="$logs/$t.result"
  mkdir -p "$logs" "$out/artifacts/$t"
  rm -f "$res" "$logs/$t.replay.log" "$logs/$t.fuzz.log"
  if [ ! -x "$bin" ]; then
    echo "FAIL $t: no binary $bin" >"$res"
    return
  fi
  # 1. regressions: each input must run clean
  local reg="$here/regressions/$t" n=0 f
  if [ -d "$reg" ]; then
    : >"$logs/$t.replay.log"
    for f in "$reg"/*; do
      [ -f "$f" ] || continue
      case $(basename "$f") in README*|*.md) continue ;; esac
      n=$((n + 1))
      if ! timeout 120 "$bin" -runs=1 "$f" >>"$logs/$t.replay.log" 2>&1; then
        echo "FAIL $t: regression input $(basename "$f") fails again; see $logs/$t.replay.log" >"$res"
        return
      fi
    done
  fi
  # 2. fuzz
  local work="$out/corpus/$t"
  if [ "$keep" = 0 ]; then rm -rf "$work"; fi
  mkdir -p "$work"
  [ -d "$here/corpus/$t" ] && cp -n "$here/corpus/$t"/* "$work/" 2>/dev/null
  local dict=()
  [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
  (cd "$out/artifacts/$t" && timeout $((seconds + 300)) "$bin" "$work" "${dict[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" \
    >"$logs/$t.fuzz.log" 2>&1)
  local rc=$?
  local execs cov ft size
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.fuzz.log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$logs/$t.fuzz.log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$logs/$t.fuzz.log" | tail -1 | cut -d' ' -f2)
  size=$(ls "$work" | wc -l)
  local summary="$t: ${execs:-?} executions in ${seconds}s, cov ${cov:-?} edges, ft ${ft:-?}, corpus $size, ${n} regression inputs replayed"
  if [ "$rc" -ne 0 ] || grep -qE '^==[0-9]+==ERROR|^SUMMARY: (Address|Leak|Undefined)|runtime error:' "$logs/$t.fuzz.log"; then
    local art
    art=$(ls -t "$out/artifacts/$t" 2>/dev/null | head -1)
    echo "FAIL $summary; exit $rc; input: $out/artifacts/$t/${art:-?}" >"$res"
  else
    echo "ok   $summary" >"$res"
  fi
}

running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

passed=0 failed=0
for t in "${targets[@]}"; do
  res="$out/logs/$t.result"
  if [ -f "$res" ] && grep -q '^ok' "$res"; then
    passed=$((passed + 1))
    cat "$res"
  else
    failed=$((failed + 1))
    cat "$res" 2>/dev/null || echo "FAIL $t: no result"
    for log in "$out/logs/$t.replay.log" "$out/logs/$t.fuzz.log"; do
      [ -s "$log" ] || continue
      echo "--- tail of $log"
      grep -v '^#\|^INFO\|NEW_FUNC\|^"' "$log" | tail -40
    done
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
