#!/usr/bin/env bash
# Builds taskhost into build/ and links ./taskhost at the repository root to it
# (so `./taskhost --local event.json` finds lua/ beside it).
#   scripts/build.sh            release build (RelWithDebInfo) in build/
#   scripts/build.sh --asan     AddressSanitizer + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
if [ "${1:-}" = "--asan" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTASKHOST_SANITIZE=ON >/dev/null
  cmake --build build-asan -j "$jobs"
else
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j "$jobs"
  ln -sfn build/taskhost taskhost
fi
