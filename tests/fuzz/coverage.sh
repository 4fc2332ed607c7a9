#!/usr/bin/env bash
# coverage.sh CORPUS_ROOT [OUT_DIR] — line and branch coverage of runtime/ by
# the fuzz corpora: builds the targets with clang source-based coverage
# (-fprofile-instr-generate -fcoverage-mapping, no sanitizers), runs each
# target once over every file of CORPUS_ROOT/<target>/ (e.g. the corpora a
# long run grew: run.sh --keep-corpus leaves them in OUT/corpus) and prints
# llvm-cov's report for the runtime files each target is meant to exercise,
# and for all of them together.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus=${1:?usage: coverage.sh CORPUS_ROOT [OUT_DIR]}
out=${2:-$root/build-fuzz-cov}
CC=${CC:-clang}
runtime=${RUNTIME_DIR:-$root/runtime}
PROFDATA=${PROFDATA:-llvm-profdata}
LLVMCOV=${LLVMCOV:-llvm-cov}
pkgs="lua5.4 lua5.4-cjson libcurl libcrypto uuid sqlite3 libmicrohttpd"
mkdir -p "$out/obj" "$out/prof"
COV=(-fprofile-instr-generate -fcoverage-mapping)
COMMON=(-std=c11 -D_DEFAULT_SOURCE -g -O1 -I"$runtime" $(pkg-config --cflags $pkgs))
for f in "$runtime"/*.c; do
  [ "$(basename "$f")" = main.c ] && continue
  "$CC" "${COMMON[@]}" "${COV[@]}" -c "$f" -o "$out/obj/$(basename "$f" .c).o"
done
bins=()
for t in "$here"/fuzz_*.c; do
  name=$(basename "$t" .c)
  "$CC" "${COMMON[@]}" "${COV[@]}" -fsanitize=fuzzer -DTH_SOURCE_DIR="\"$root\"" "$t" \
    "$out"/obj/*.o $(pkg-config --libs $pkgs) -lpthread -lm -o "$out/$name"
  bins+=("$out/$name")
  short=${name#fuzz_}
  [ -d "$corpus/$short" ] || { echo "coverage.sh: no $corpus/$short" >&2; continue; }
  LLVM_PROFILE_FILE="$out/prof/$short.profraw" "$out/$name" -runs=0 "$corpus/$short" >/dev/null 2>&1
  "$PROFDATA" merge -sparse "$out/prof/$short.profraw" -o "$out/prof/$short.profdata"
done
report() { # report TARGET FILES...
  local t=$1
  shift
  echo "== $t"
  "$LLVMCOV" report "$out/fuzz_$t" -instr-profile="$out/prof/$t.profdata" "$@" |
    awk 'NR == 1 || /\.c / || /^TOTAL/' | sed 's|^'"$runtime"'/||'
}
report event "$runtime/event.c"
report host "$runtime/event.c" "$runtime/host.c" "$runtime/lua_store.c" "$runtime/lua_json.c" \
  "$runtime/attrval.c" "$runtime/store_sqlite.c" "$runtime/cursor.c"
report cursor "$runtime/cursor.c"
report dynamodb "$runtime/dynamodb.c" "$runtime/attrval.c" "$runtime/lua_json.c"
report sigv4 "$runtime/sigv4.c"
