#!/usr/bin/env bash
# package.sh — builds the Lambda deployment package for provided.al2023:
#
#   dist/taskhost-lambda-ARCH.zip   (ARCH: arm64 or x86_64, the function's architecture)
#     bootstrap   the taskhost binary itself (0755): no shell wrapper, no glibc,
#                 no loader; -O2, stripped. Needs GLIBC_2.34 at most (AL2023).
#     lua/        the route scripts (every *.lua under lua/)
#     lib/        only with --system-libs (or TASKHOST_STATIC_OPENSSL=OFF):
#                 every shared library bootstrap needs, recursively, except
#                 glibc's own (AL2023 brings those, and they must match each other)
#
# How the libraries are linked (CMakeLists.txt, option TASKHOST_PACKAGE):
#   * default: everything but glibc statically — Lua 5.4, lua-cjson, SQLite,
#     libuuid (Debian's .a), OpenSSL (Debian's libssl.a/libcrypto.a), and a
#     minimal libcurl (HTTP/HTTPS on OpenSSL only) and libmicrohttpd (no
#     HTTPS) that scripts/build-min-deps.sh builds from Debian's source
#     packages of the installed versions (cached in BUILD_DIR/min-deps: the
#     first run fetches and compiles them, ~1-2 minutes; later runs reuse
#     them while the versions match). bootstrap needs glibc alone: no lib/,
#     no RPATH. Why OpenSSL static: the comment in CMakeLists.txt.
#   * --system-libs: Debian's shared libcurl instead (no download, no extra
#     build; also for non-Debian hosts), shipped under lib/ with its whole
#     tree (GnuTLS, Kerberos, LDAP, nghttp2, ...: ~2.7x the zip, ~1.7x the
#     RSS) and OpenSSL; Debian's libmicrohttpd.a. bootstrap finds lib/ through
#     DT_RPATH $ORIGIN/lib, which the loader searches before LD_LIBRARY_PATH
#     (Lambda's starts with /lib64, where AL2023 keeps its own
#     libcurl/libcrypto) and also for the libraries' own dependencies
#     (DT_RUNPATH would do neither).
#   * the CA bundle is the system's: runtime/http.c looks for AL2023's
#     /etc/pki/tls/certs/ca-bundle.crt (or $SSL_CERT_FILE).
#
# Architectures: --arch arm64 (the default, as Terraform's var.architecture) cross-compiles
# on this x86_64 Debian 12 with Debian's crossbuild-essential-arm64 against its arm64 multiarch
# -dev packages (cmake/aarch64-linux-gnu.cmake; scripts/deps.sh --arm64 installs them), the
# minimal libcurl/libmicrohttpd cross-built the same way (build-min-deps.sh --host); same
# glibc 2.36 headers, same checks (scripts/lambda-fit.sh for AArch64 and its loader
# /lib/ld-linux-aarch64.so.1), same contents. --arch x86_64 builds natively.
# The arm64 package is static but for glibc: --system-libs is x86_64 only.
#
# Usage: scripts/package.sh [--arch arm64|x86_64] [--lua-only] [--system-libs]
#                           [--min-deps DIR] [--build-dir DIR] [--output ZIP]
#   --arch         the function's architecture (default arm64)
#   --lua-only     re-zip without compiling (after editing lua/*.lua): takes the
#                  binary already in the build dir, never runs CMake
# Either way the route scripts are loaded first with the binary's --check (as deploy.sh and
# Lambda's init load them): a script that does not load stops here, with no zip written.
#   --system-libs  link Debian's shared libcurl and ship lib/ (see above)
#   --min-deps     where build-min-deps.sh keeps the minimal static libraries
#                  (default BUILD_DIR/min-deps; share one across build dirs)
#   --build-dir    the package's own CMake build (default build-package-ARCH/), one
#                  architecture per build dir
#   --output       the zip (default dist/taskhost-lambda-ARCH.zip)
# TASKHOST_CMAKE_ARGS (environment) is added to the CMake configure line, e.g.
# "-DTASKHOST_STATIC_OPENSSL=OFF" (libssl/libcrypto shared under lib/).
# The zip is deterministic: sorted entries, fixed modes and mtimes, no extra
# fields — the same sources give the same bytes (and the same Terraform
# source_code_hash). Needs cmake, a C compiler, binutils, zip; by default also
# dpkg-dev and access to the Debian archive (scripts/deps.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

arch=arm64
lua_only=0
system_libs=0
min_deps=""
build_dir=""
output=""
while [ $# -gt 0 ]; do
  case $1 in
    --arch) arch=${2:?--arch needs arm64 or x86_64}; shift ;;
    --lua-only) lua_only=1 ;;
    --system-libs) system_libs=1 ;;
    --min-deps) min_deps=${2:?--min-deps needs a directory}; shift ;;
    --build-dir) build_dir=${2:?--build-dir needs a directory}; shift ;;
    --output) output=${2:?--output needs a file name}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $arch in
  arm64) triplet=aarch64-linux-gnu cross=1 ;;
  x86_64) triplet=x86_64-linux-gnu cross=0 ;;
  *) echo "package.sh: --arch '$arch': Lambda has arm64 and x86_64" >&2; exit 2 ;;
esac
# This host builds x86_64 natively and arm64 with the cross compiler.
[ "$(uname -m)" = x86_64 ] || {
  echo "package.sh: builds on an x86_64 host only (this is $(uname -m))" >&2
  exit 1
}
if [ "$cross" = 1 ] && [ "$system_libs" = 1 ]; then
  echo "package.sh: --system-libs is x86_64 only (the arm64 package links everything but glibc statically)" >&2
  exit 2
fi
build_dir=${build_dir:-$root/build-package-$arch}
output=${output:-$root/dist/taskhost-lambda-$arch.zip}
case $build_dir in /*) ;; *) build_dir=$PWD/$build_dir ;; esac
case $output in /*) ;; *) output=$PWD/$output ;; esac
min_deps=${min_deps:-$build_dir/min-deps}
case $min_deps in /*) ;; *) min_deps=$PWD/$min_deps ;; esac

strip_tool=strip
tools=(zip strip readelf ldd)
if [ "$cross" = 1 ]; then
  strip_tool=$triplet-strip
  tools=(zip readelf "$triplet-gcc" "$strip_tool")
fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || {
    echo "package.sh: '$tool' is missing (scripts/deps.sh$([ "$cross" = 0 ] || echo ' --arm64') installs it)" >&2
    exit 1
  }
done
# One architecture per build dir: CMake keeps the compiler of its first configure.
want_cc=/usr/bin/cc
[ "$cross" = 0 ] || want_cc=/usr/bin/$triplet-gcc
have_cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
if [ -n "$have_cc" ] && [ "$(readlink -f "$have_cc")" != "$(readlink -f "$want_cc")" ]; then
  echo "package.sh: $build_dir was configured with $have_cc, not for $arch" \
    "($want_cc): use another --build-dir" >&2
  exit 1
fi

binary=$build_dir/taskhost
if [ "$lua_only" = 1 ]; then
  [ -x "$binary" ] || {
    echo "package.sh: --lua-only needs a binary in $build_dir (run package.sh once without it)" >&2
    exit 1
  }
  newer=$(find "$root/runtime" "$root/CMakeLists.txt" -newer "$binary" -print -quit 2>/dev/null || true)
  [ -z "$newer" ] || echo "package.sh: note: $newer changed since the binary was built;" \
    "it is not in this zip (run without --lua-only)" >&2
else
  jobs=$(nproc 2>/dev/null || echo 2)
  if [ "$system_libs" = 1 ]; then
    min_prefix=""
  else
    mkdir -p "$build_dir"
    host_args=()
    [ "$cross" = 0 ] || host_args=(--host "$triplet")
    JOBS=$jobs bash "$root/scripts/build-min-deps.sh" "${host_args[@]}" "$min_deps" || {
      echo "package.sh: scripts/build-min-deps.sh failed (see above);" \
        "--system-libs builds with Debian's shared libcurl instead" >&2
      exit 1
    }
    min_prefix=$min_deps
  fi
  # RelWithDebInfo: -O2 -g; the shipped copy is stripped, the one in the build
  # dir keeps its symbols for debugging a crash. TASKHOST_MIN_PREFIX is always
  # given (empty for --system-libs): the build dir's cache must not keep the
  # other layout.
  toolchain=()
  [ "$cross" = 0 ] || toolchain=(-DCMAKE_TOOLCHAIN_FILE="$root/cmake/$triplet.cmake")
  # shellcheck disable=SC2086 # TASKHOST_CMAKE_ARGS: words on purpose
  cmake -S "$root" -B "$build_dir" "${toolchain[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTASKHOST_PACKAGE=ON \
    -DTASKHOST_MIN_PREFIX="$min_prefix" ${TASKHOST_CMAKE_ARGS:-} >/dev/null
  cmake --build "$build_dir" --target taskhost -j "$jobs" >/dev/null
fi
grep -q '^TASKHOST_PACKAGE:BOOL=ON$' "$build_dir/CMakeCache.txt" 2>/dev/null || {
  echo "package.sh: $build_dir is not a TASKHOST_PACKAGE build" >&2
  exit 1
}

# The function's architecture (terraform/modules/lambda) and AL2023's glibc: a binary that
# would fail Lambda's init is never zipped — checked first, before the binary is run to load the
# scripts below — (and again on the stripped copy with lib/).
bash "$root/scripts/lambda-fit.sh" --no-libs "$binary" "$arch" >/dev/null || {
  echo "package.sh: $binary cannot run on provided.al2023 (above); no package written" >&2
  exit 1
}

# The route scripts must load as `taskhost --check` loads them (the binary itself, against a
# throwaway SQLite store, nothing from this shell's environment): a zip whose lua/ has a
# syntax error or a failing require would only fail in Lambda's init.
# An arm64 binary on another machine runs under qemu-aarch64-static (scripts/deps.sh --arm64);
# without it the check is skipped with a note (deploy.sh checks the zip again before upload).
emu=()
if [ "$arch" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
  if command -v qemu-aarch64-static >/dev/null; then emu=("$(command -v qemu-aarch64-static)")
  else emu=(false); fi
fi
check_dir=$(mktemp -d)
check_rc=0
if [ "${emu[0]:-}" = false ]; then
  check_rc=127
else
  check_out=$(cd "$check_dir" && env -i PATH=/usr/bin:/bin TASKHOST_STORE="sqlite:$check_dir/check.db" \
    TASKHOST_ROUTES="$root/lua" AWS_LAMBDA_LOG_FORMAT=Text "${emu[@]+"${emu[@]}"}" "$binary" --check 2>&1) ||
    check_rc=$?
fi
rm -rf "$check_dir"
case $check_rc in
  0) ;;
  126 | 127)
    echo "package.sh: note: $binary cannot run on this machine (exit $check_rc; for arm64 install qemu-user-static): the route scripts were not checked" >&2 ;;
  *)
    echo "package.sh: the route scripts in $root/lua do not load (taskhost --check); no package written:" >&2
    echo "$check_out" | sed 's/^/    /' >&2
    exit 1 ;;
esac

# glibc's own libraries: never shipped. Also recognised by the GLIBC_* symbol
# versions they define (ld.so, libc, libm, libpthread, libdl, librt, ...).
glibc_piece() {
  local base=${1##*/}
  case $base in
    ld-linux*.so* | libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | \
      librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnsl.so.* | \
      libBrokenLocale.so.* | libnss_*.so.* | libthread_db.so.* | libc_malloc_debug.so.* | \
      linux-vdso.so.* | linux-gate.so.*)
      return 0 ;;
  esac
  [ "${1#/}" != "$1" ] && readelf -V "$1" 2>/dev/null |
    awk '/^Version definition section/ { d = 1; next } /^Version .*section/ { d = 0 }
         d && /Name: GLIBC_/ { found = 1 } END { exit !found }'
}

# Every library bootstrap loads, recursively (ldd walks the whole tree), from
# the system: nothing of the caller's LD_LIBRARY_PATH, and lib/ does not exist
# beside the build's binary.
stage=$(mktemp -d "$build_dir/package-root.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lua"
if [ "$cross" = 1 ]; then
  # No ldd for a foreign binary: what it needs is in its NEEDED entries, and with
  # everything but glibc static those are glibc's (lambda-fit.sh checks it below).
  ldd_out=""
else
  ldd_out=$(env -i PATH=/usr/bin:/bin ldd "$binary") || {
    echo "package.sh: ldd $binary failed" >&2
    exit 1
  }
fi
if grep -q 'not found' <<<"$ldd_out"; then
  echo "package.sh: libraries not found:" >&2
  grep 'not found' <<<"$ldd_out" >&2
  exit 1
fi
nlibs=0
while read -r name arrow path _; do
  [ "$arrow" = "=>" ] || continue # the vdso and the loader itself
  glibc_piece "$path" && continue
  glibc_piece "$name" && continue
  mkdir -p "$stage/lib"
  cp -L "$path" "$stage/lib/$name"
  nlibs=$((nlibs + 1))
done <<<"$ldd_out"
# Anything under lib/ is found through DT_RPATH $ORIGIN/lib (see the top).
if [ "$nlibs" -gt 0 ] && ! readelf -d "$binary" | grep -q '(RPATH).*\[\$ORIGIN/lib\]'; then
  echo "package.sh: $binary needs $nlibs shared libraries besides glibc's but has no" \
    "DT_RPATH \$ORIGIN/lib to find them in the package" >&2
  exit 1
fi
# Every bundled library's own needs are bundled or glibc's (ldd saw them all).
for f in $(find "$stage" -path "$stage/lib/*" -type f | sort); do
  for need in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -e "$stage/lib/$need" ] || glibc_piece "$need" || {
      echo "package.sh: ${f##*/} needs $need, which is neither bundled nor glibc's" >&2
      exit 1
    }
  done
done

"$strip_tool" --strip-all -o "$stage/bootstrap" "$binary"
bash "$root/scripts/lambda-fit.sh" "$stage/bootstrap" "$arch" >/dev/null || {
  echo "package.sh: $binary cannot run on provided.al2023 (above); no package written" >&2
  exit 1
}
(cd "$root/lua" && find . -name '*.lua' -type f -print0 | while IFS= read -r -d '' f; do
  mkdir -p "$stage/lua/$(dirname "$f")"
  cp "$f" "$stage/lua/$f"
done)
[ -f "$stage/lua/routes.lua" ] || { echo "package.sh: lua/routes.lua is missing" >&2; exit 1; }

# Deterministic: modes, one mtime, sorted entries, no extra fields (-X), no
# directory entries (-D); zip stores local time, so TZ=UTC.
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +
chmod 0755 "$stage/bootstrap"
find "$stage" -exec touch -h -d '2000-01-01 00:00:00 UTC' {} +
mkdir -p "$(dirname "$output")"
rm -f "$output" "$output.tmp"
(cd "$stage" && find . -type f | sed 's|^\./||' | LC_ALL=C sort |
  TZ=UTC zip -q -X -D -9 "$output.tmp" -@)
mv "$output.tmp" "$output"

zip_bytes=$(stat -c %s "$output")
unpacked=$(find "$stage" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
bin_bytes=$(stat -c %s "$stage/bootstrap")
lib_bytes=$(find "$stage" -path "$stage/lib/*" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
rel=${output#"$root"/}
echo "package.sh: $rel: $(mib "$zip_bytes") ($zip_bytes bytes) zipped," \
  "$(mib "$unpacked") ($unpacked bytes) unpacked"
if [ "$nlibs" -gt 0 ]; then libs="lib/ $nlibs libraries $(mib "$lib_bytes")"; else libs="no lib/ (only glibc needed)"; fi
echo "package.sh:   bootstrap $(mib "$bin_bytes"), $libs," \
  "lua/ $(find "$stage/lua" -type f | wc -l) scripts"
