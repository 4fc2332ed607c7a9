#!/usr/bin/env bash
# One command from a fresh clone to the API on http://127.0.0.1:3000:
# installs what is missing, builds, and serves on the embedded SQLite store
# (./taskhost.db). Extra arguments go to --serve (e.g. 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec ./taskhost --serve "${1:-127.0.0.1:3000}"
