#!/usr/bin/env bash
# Runs one Lua test script inside the real host: taskhost --lua-test FILE,
# against a fresh SQLite store in a temporary folder.
# Environment (set by CTest): TASKHOST_BIN, ROUTES_DIR.
set -u

if [ $# -ne 1 ]; then
  echo "usage: $0 FILE.lua" >&2
  exit 2
fi
: "${TASKHOST_BIN:?TASKHOST_BIN must name the taskhost binary}"
: "${ROUTES_DIR:?ROUTES_DIR must name the lua/ folder}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/taskhost-lua.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

TASKHOST_STORE="sqlite:$tmp/test.db" TASKHOST_ROUTES="$ROUTES_DIR" \
  "$TASKHOST_BIN" --lua-test "$1"
