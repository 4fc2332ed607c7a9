#!/usr/bin/env bash
# One command for the whole test suite: installs what is missing, builds the
# release and the sanitizer (address, undefined, float-cast-overflow,
# float-divide-by-zero) builds, and runs every test
# under CTest in both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
jobs=$(nproc 2>/dev/null || echo 2)

scripts/build.sh
echo "== tests: release build"
ctest --test-dir build --output-on-failure -j "$jobs"

scripts/build.sh --asan
echo "== tests: sanitizer build (-fsanitize=address,undefined,float-cast-overflow,float-divide-by-zero)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"
