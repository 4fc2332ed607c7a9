#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages taskhost needs, only when one is missing.
#   scripts/deps.sh          build, run and package (compiler, CMake, libraries, zip; dpkg-dev
#                            and the Debian archive keyring: scripts/package.sh builds its
#                            minimal static libcurl/libmicrohttpd from Debian's source packages
#                            through scripts/build-min-deps.sh, which needs dpkg-source)
#   scripts/deps.sh --test   also what the test suite uses (curl, jq, valgrind, botocore, openssl,
#                            the AWS CLI, clang + libFuzzer for the fuzz targets, wrk for
#                            the concurrency run, node/npm for dynalite, cognito-local and the
#                            Terraform checks, PyJWT and cryptography to sign and verify test tokens,
#                            chromium for the web client's browser test, PyYAML for the
#                            workflow lint)
set -euo pipefail

packages=(build-essential cmake pkg-config
  liblua5.4-dev lua-cjson-dev libcurl4-openssl-dev libssl-dev uuid-dev
  libsqlite3-dev libmicrohttpd-dev ca-certificates zip dpkg-dev debian-archive-keyring)
if [ "${1:-}" = "--test" ]; then
  packages+=(curl jq valgrind unzip python3-botocore python3-boto3 awscli
    clang libclang-rt-dev wrk hyperfine openssl python3-jwt python3-cryptography chromium python3-yaml)
fi

missing=()
# Node.js and npm run dynalite (a DynamoDB-compatible server) and cognito-local (a Cognito
# user pools emulator) in the tests.
# Some machines carry a vendor nodejs that bundles npm: only install when absent.
if [ "${1:-}" = "--test" ] && ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "deps.sh: apt-get not found; install these packages by hand: ${missing[*]}" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps.sh: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
