#!/usr/bin/env bash
# build.sh [OUT_DIR] — builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with
# clang, -fsanitize=fuzzer,address,undefined. The runtime (runtime/*.c but
# main.c) is compiled here too, with coverage instrumentation
# (-fsanitize=fuzzer-no-link), not taken from a CMake build, so the targets
# see the runtime's own branches. Libraries come from pkg-config, as in
# CMakeLists.txt.
#   OUT_DIR  default: $FUZZ_BUILD_DIR, else build-fuzz/ at the repository root
#   CC       default: clang (clang 14 on Debian 12: apt-get install clang libclang-rt-14-dev)
#   RUNTIME_DIR  default: runtime/ of this checkout (another tree's runtime/,
#            e.g. with a proposed fix applied, can be fuzzed with the same targets)
# Prints the target paths. Exit status 3 when clang or its libFuzzer runtime
# is missing (run.sh then skips), 1 on any other failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-${FUZZ_BUILD_DIR:-$root/build-fuzz}}
CC=${CC:-clang}
runtime=${RUNTIME_DIR:-$root/runtime}

command -v "$CC" >/dev/null || {
  echo "build.sh: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 3
}
pkgs="lua5.4 lua5.4-cjson libcurl libcrypto uuid sqlite3 libmicrohttpd"
cflags_pkg=$(pkg-config --cflags $pkgs) || { echo "build.sh: pkg-config: a library is missing" >&2; exit 1; }
libs_pkg=$(pkg-config --libs $pkgs)

# libFuzzer's runtime must be there (libclang-rt-NN-dev on Debian).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' >"$probe/p.c"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
  echo "build.sh: $CC cannot link a libFuzzer target (apt-get install libclang-rt-14-dev):" >&2
  cat "$probe/err" >&2
  exit 3
fi

mkdir -p "$out/obj" "$out/generated"
# version.h, as CMake generates it from runtime/version.h.in (lambda.c and serve.c include it):
# the project's version from CMakeLists.txt, this checkout's commit, build type "fuzz".
version=$(sed -n 's/^project(taskhost VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
sed -e "s/@PROJECT_VERSION@/${version:-unknown}/" -e "s/@TASKHOST_COMMIT@/$commit/" \
  -e 's/@TASKHOST_BUILD_TYPE@/fuzz/' "$runtime/version.h.in" >"$out/generated/version.h.new"
cmp -s "$out/generated/version.h.new" "$out/generated/version.h" 2>/dev/null ||
  mv "$out/generated/version.h.new" "$out/generated/version.h"
rm -f "$out/generated/version.h.new"
# clang's `undefined` has float-cast-overflow (named anyway, as in CMakeLists.txt)
# but not float-divide-by-zero.
SAN=(-fsanitize=address,undefined,float-cast-overflow,float-divide-by-zero -fno-sanitize-recover=all
  -fno-omit-frame-pointer)
COMMON=(-std=c11 -D_DEFAULT_SOURCE -g -O1 -Wall -Wextra -Wno-unused-parameter
  -I"$runtime" -I"$out/generated" $cflags_pkg)

# The runtime, instrumented for coverage; two compilers at a time (2 cores).
srcs=()
for f in "$runtime"/*.c; do
  [ "$(basename "$f")" = main.c ] && continue
  srcs+=("$f")
done
export CC out
printf '%s\n' "${srcs[@]}" | xargs -P "${JOBS:-2}" -I{} sh -c '
  f={}; o="$out/obj/$(basename "$f" .c).o"
  if [ ! -e "$o" ] || [ "$f" -nt "$o" ] || [ "$0" -nt "$o" ]; then
    '"$CC"' '"${COMMON[*]@Q}"' '"${SAN[*]@Q}"' -fsanitize=fuzzer-no-link -c "$f" -o "$o" || exit 255
  fi' "$here/build.sh"
objs=("$out"/obj/*.o)

for t in "$here"/fuzz_*.c; do
  name=$(basename "$t" .c)
  "$CC" "${COMMON[@]}" "${SAN[@]}" -fsanitize=fuzzer -DTH_SOURCE_DIR="\"$root\"" \
    "$t" "${objs[@]}" $libs_pkg -lpthread -lm -o "$out/$name"
  echo "$out/$name"
done
