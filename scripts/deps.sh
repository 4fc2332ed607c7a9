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
#                            workflow lint) and everything of --arm64 (the suite builds and runs
#                            the arm64 package)
#   scripts/deps.sh --arm64  also the arm64 (Graviton) package's cross build: Debian's
#                            crossbuild-essential-arm64, the arm64 multiarch -dev packages of the
#                            libraries it links (dpkg --add-architecture arm64 first, once), and
#                            qemu-user-static to run its bootstrap here
# Running it again installs nothing that is there already.
set -euo pipefail

packages=(build-essential cmake pkg-config
  liblua5.4-dev lua-cjson-dev libcurl4-openssl-dev libssl-dev uuid-dev
  libsqlite3-dev libmicrohttpd-dev ca-certificates zip dpkg-dev debian-archive-keyring)
arm64=0
case ${1:-} in --test | --arm64) arm64=1 ;; esac
if [ "${1:-}" = "--test" ]; then
  packages+=(curl jq valgrind unzip python3-botocore python3-boto3 awscli
    clang libclang-rt-dev wrk hyperfine openssl python3-jwt python3-cryptography chromium python3-yaml)
fi

# The arm64 -dev packages are Multi-Arch: same: apt keeps them at the amd64 ones' versions.
arm64_packages=(crossbuild-essential-arm64 qemu-user-static liblua5.4-dev:arm64 lua-cjson-dev:arm64
  libssl-dev:arm64 uuid-dev:arm64 libsqlite3-dev:arm64 libcurl4-openssl-dev:arm64
  libmicrohttpd-dev:arm64 libc6:arm64)
[ "$arm64" = 0 ] || packages+=("${arm64_packages[@]}")

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
if [ "$arm64" = 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "deps.sh: dpkg --add-architecture arm64 (for the arm64 package's -dev packages)" >&2
  $sudo dpkg --add-architecture arm64
fi
echo "deps.sh: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
