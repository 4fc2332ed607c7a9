# shellcheck shell=bash
# tests/package/lib.sh — helpers for the Lambda package tests (tests/package/test_*.sh).
# Sourced, not run. Needs bash, unzip, binutils (objdump, readelf).
#
# Environment:
#   PACKAGE_ZIP   the zip under test (default: dist/taskhost-lambda-$PACKAGE_ARCH.zip; CTest
#                 builds its own with scripts/package.sh and passes it here)
#   PACKAGE_ARCH  its architecture: x86_64 (default) or arm64
#   SOURCE_DIR    the repository root (default: from this file's place)
#
# What it gives a test:
#   $TMP, pass, fail, check, check_eq, section, finish ("N passed, N failed")
#                       unless tests/e2e/lib.sh was sourced first (same helpers)
#   pkg_unpack DIR      unzips PACKAGE_ZIP into DIR (modes kept), sets PKG=DIR
#   glibc_soname NAME   true for glibc's own libraries (never shipped)
#   glibc_defines FILE  true when FILE defines GLIBC_* symbol versions (a glibc piece)
#   needed FILE         its DT_NEEDED entries, one a line
#   pkg_layout          after pkg_unpack: BUNDLED (array) = lib/* of the package
#                       (sorted; empty for the default, fully static package,
#                       which has no lib/), NBUNDLED its length
#   lambda_env_for DIR  fills LAMBDA_ENV (an array of NAME=VALUE) with the variables
#                       Lambda gives a provided.al2023 function whose code is DIR

SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PACKAGE_ARCH=${PACKAGE_ARCH:-x86_64}
PACKAGE_ZIP=${PACKAGE_ZIP:-$SOURCE_DIR/dist/taskhost-lambda-$PACKAGE_ARCH.zip}

for tool in unzip zipinfo objdump readelf; do
  command -v "$tool" >/dev/null || { echo "package tests: $tool is required" >&2; exit 2; }
done
if [ ! -f "$PACKAGE_ZIP" ]; then
  echo "package tests: no package at $PACKAGE_ZIP (run scripts/package.sh)" >&2
  exit 2
fi

if ! declare -F pass >/dev/null; then
  set -u
  set -o pipefail
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/taskhost-package.XXXXXX") || exit 2
  trap 'rm -rf "$TMP"' EXIT
  trap 'echo "package tests: interrupted" >&2; exit 130' INT TERM
  PASSED=0
  FAILED=0
  SECONDS=0
  pass() { PASSED=$((PASSED + 1)); }
  fail() {
    FAILED=$((FAILED + 1))
    local name=$1
    shift
    echo "FAIL: $name${*:+ — $*}"
  }
  check() {
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then pass; else fail "$name" "command failed: $*"; fi
  }
  check_eq() {
    if [ "$2" == "$3" ]; then pass; else fail "$1" "expected [${2:0:300}], got [${3:0:300}]"; fi
  }
  section() { echo "== $*"; }
  finish() {
    echo "($SECONDS s)"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] || exit 1
    exit 0
  }
fi

pkg_unpack() {
  PKG=$1
  mkdir -p "$PKG"
  unzip -q -o "$PACKAGE_ZIP" -d "$PKG" || { echo "package tests: cannot unzip $PACKAGE_ZIP" >&2; exit 2; }
  PKG=$(cd "$PKG" && pwd -P)
}

# glibc's libraries, by soname: Amazon Linux 2023 brings its own (2.34), and
# they must all come from one glibc.
glibc_soname() {
  case ${1##*/} in
    ld-linux*.so* | libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | \
      librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnsl.so.* | \
      libBrokenLocale.so.* | libnss_*.so.* | libthread_db.so.* | libc_malloc_debug.so.* | \
      linux-vdso.so.* | linux-gate.so.*)
      return 0 ;;
  esac
  return 1
}

glibc_defines() {
  readelf -V "$1" 2>/dev/null |
    awk '/^Version definition section/ { d = 1; next } /^Version .*section/ { d = 0 }
         d && /Name: GLIBC_/ { found = 1 } END { exit !found }'
}

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

# The package has lib/ (scripts/package.sh --system-libs, or OpenSSL shared)
# or has none (the default: only glibc is needed); the tests check either.
pkg_layout() {
  BUNDLED=()
  local f
  if [ -d "$PKG/lib" ]; then
    while IFS= read -r f; do BUNDLED+=("lib/${f##*/}"); done < <(find "$PKG/lib" -type f | LC_ALL=C sort)
  fi
  NBUNDLED=${#BUNDLED[@]}
}

# The environment Lambda gives a provided.al2023 function (the reserved
# variables of the Lambda documentation, with test values), plus the
# function's own configuration: TABLE_NAME, TASKHOST_STORE and the endpoint
# (dynalite's, from tests/integration/with_dynalite.sh) when they are set.
lambda_env_for() {
  local root=$1
  LAMBDA_ENV=(
    "AWS_LAMBDA_RUNTIME_API=127.0.0.1:${RAPI_PORT:-9001}"
    "_HANDLER=bootstrap"
    "LAMBDA_TASK_ROOT=$root"
    "LAMBDA_RUNTIME_DIR=/var/runtime"
    "AWS_REGION=${AWS_REGION:-us-east-1}"
    "AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
    "AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}"
    "AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}"
    "AWS_SESSION_TOKEN=test-session-token"
    "AWS_LAMBDA_FUNCTION_NAME=taskhost"
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128"
    "AWS_LAMBDA_FUNCTION_VERSION=\$LATEST"
    "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand"
    "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/taskhost"
    "AWS_LAMBDA_LOG_STREAM_NAME=2025/01/01/[\$LATEST]0123456789abcdef0123456789abcdef"
    "AWS_XRAY_CONTEXT_MISSING=LOG_ERROR"
    "AWS_XRAY_DAEMON_ADDRESS=169.254.79.129:2000"
    "TZ=:UTC"
    "LANG=en_US.UTF-8"
    "PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin"
    "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:$root:$root/lib:/opt/lib"
  )
  local v
  for v in TABLE_NAME TASKHOST_STORE AWS_ENDPOINT_URL_DYNAMODB; do
    [ -n "${!v:-}" ] && LAMBDA_ENV+=("$v=${!v}")
  done
  return 0
}
