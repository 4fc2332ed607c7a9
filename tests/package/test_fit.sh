#!/usr/bin/env bash
# scripts/lambda-fit.sh, and scripts/package.sh refusing to zip a bootstrap that cannot run on
# provided.al2023 (CTest: package.fit):
#   * the package's own bootstrap fits (x86_64, GLIBC_2.34 at most); it does not fit arm64;
#   * patched copies of the package's binary are refused, each with its reason: e_machine set
#     to AArch64, a GLIBC_2.38 version reference (what a build on glibc >= 2.38 with
#     _GNU_SOURCE gets: __isoc23_strtol@GLIBC_2.38), GLIBC_PRIVATE, a shared library that is
#     neither glibc's nor in lib/, a script instead of an ELF;
#   * scripts/package.sh --lua-only over a build dir holding such a binary writes no zip and
#     says why; over the unpatched binary it writes one (the control).
# deploy.sh's side is in tests/terraform (test_deploy_prereqs.sh, test_moto.sh).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
FIT=$SOURCE_DIR/scripts/lambda-fit.sh
PACKAGE_BUILD_DIR=${PACKAGE_BUILD_DIR:-$SOURCE_DIR/build-package-x86_64}

pkg_unpack "$TMP/pkg"

# fit BIN [ARCH] → $out, $rc
fit() {
  set +e
  out=$(bash "$FIT" "$@" 2>&1)
  rc=$?
  set -e
}
refused() { # NAME TEXT BIN [ARCH]
  local name=$1 text=$2
  shift 2
  fit "$@"
  if [ "$rc" -eq 1 ] && grep -qF -- "$text" <<<"$out"; then pass; else fail "$name" "exit $rc: $out"; fi
}
# patch SRC DST WHAT: a copy of SRC with one thing changed (see the python below)
patch() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
src, dst, what = sys.argv[1:4]
data = bytearray(open(src, "rb").read())
def swap(old, new):
    i = data.find(old)
    assert i > 0, "nothing to patch: %r" % old
    data[i:i + len(old)] = new
if what == "aarch64":
    data[18:20] = (183).to_bytes(2, "little")   # e_machine = EM_AARCH64
elif what == "glibc238":
    swap(b"GLIBC_2.34", b"GLIBC_2.38")
elif what == "private":
    swap(b"GLIBC_2.34", b"GLIBC_PRIV")            # same length: a version no glibc exports
elif what == "needlib":
    swap(b"libc.so.6", b"libz.so.1")              # DT_NEEDED of a library outside glibc
open(dst, "wb").write(bytes(data))
PY
}

section "lambda-fit.sh on the package's bootstrap"
fit "$PKG/bootstrap"
check_eq "the package's bootstrap fits x86_64 (exit)" 0 "$rc"
check "…and says GLIBC_2.34 at most" grep -q "fits provided.al2023 x86_64 .*GLIBC_2.3[0-4]" <<<"$out"
refused "not for an arm64 function" "built for 'Advanced Micro Devices X86-64', but the function's architecture is arm64" "$PKG/bootstrap" arm64
fit "$PKG/bootstrap" s390x
check_eq "an architecture Lambda lacks: usage error (exit)" 2 "$rc"

section "lambda-fit.sh on patched copies"
patch "$PKG/bootstrap" "$TMP/arm" aarch64
refused "e_machine AArch64 for x86_64" "built for 'AArch64', but the function's architecture is x86_64" "$TMP/arm"
patch "$PKG/bootstrap" "$TMP/g238" glibc238
refused "a GLIBC_2.38 reference" "needs GLIBC_2.38, newer than Amazon Linux 2023's 2.34" "$TMP/g238"
patch "$PKG/bootstrap" "$TMP/priv" private
refused "a GLIBC_ version that is not a release (GLIBC_PRIVATE, GLIBC_ABI_DT_RELR, …)" "needs GLIBC_PRIV, which" "$TMP/priv"
cp "$PKG/bootstrap" "$TMP/needlib"
if readelf -d "$PKG/bootstrap" | grep -q '(NEEDED).*\[libc.so.6\]'; then
  patch "$PKG/bootstrap" "$TMP/needlib" needlib
  refused "a library neither glibc's nor in lib/" "needs libz.so.1, which is neither glibc's nor in lib/" "$TMP/needlib"
  mkdir -p "$TMP/withlib/lib" && cp "$TMP/needlib" "$TMP/withlib/bootstrap" && : >"$TMP/withlib/lib/libz.so.1"
  fit "$TMP/withlib/bootstrap"
  check "…but fine when lib/ beside it has it" grep -qv "libz" <<<"$out"
fi
printf '#!/bin/sh\nexec ./taskhost\n' >"$TMP/script"
refused "a shell script" "not an ELF executable" "$TMP/script"

section "package.sh refuses to zip what does not fit"
[ -f "$PACKAGE_BUILD_DIR/taskhost" ] || { fail "no package build dir" "$PACKAGE_BUILD_DIR/taskhost"; finish; }
# A build dir package.sh --lua-only accepts: its cache says TASKHOST_PACKAGE, it holds a binary.
lua_only() { # BINARY → $out, $rc, zip in $TMP/fake/out.zip
  rm -rf "$TMP/fake"
  mkdir -p "$TMP/fake"
  echo "TASKHOST_PACKAGE:BOOL=ON" >"$TMP/fake/CMakeCache.txt"
  cp "$1" "$TMP/fake/taskhost"
  chmod 0755 "$TMP/fake/taskhost"
  touch -d '2030-01-01' "$TMP/fake/taskhost" # newer than the sources: no "changed since" note
  set +e
  out=$(bash "$SOURCE_DIR/scripts/package.sh" --arch "${2:-x86_64}" --lua-only --build-dir "$TMP/fake" \
    --output "$TMP/fake/out.zip" 2>&1)
  rc=$?
  set -e
}
lua_only "$PACKAGE_BUILD_DIR/taskhost"
check_eq "control: the real binary is zipped (exit)" 0 "$rc"
check "control: the zip exists" test -f "$TMP/fake/out.zip"
patch "$PACKAGE_BUILD_DIR/taskhost" "$TMP/arm-unstripped" aarch64
lua_only "$TMP/arm-unstripped"
check_eq "AArch64 binary: package.sh exit" 1 "$rc"
check "…says why" grep -q "built for 'AArch64', but the function's architecture is x86_64" <<<"$out"
check "…and that no package was written" grep -q "cannot run on provided.al2023 (above); no package written" <<<"$out"
check "…and wrote none" test ! -e "$TMP/fake/out.zip"
patch "$PACKAGE_BUILD_DIR/taskhost" "$TMP/g238-unstripped" glibc238
lua_only "$TMP/g238-unstripped"
check_eq "GLIBC_2.38 binary: package.sh exit" 1 "$rc"
check "…says why" grep -q "needs GLIBC_2.38" <<<"$out"
check "…and wrote none" test ! -e "$TMP/fake/out.zip"
# The x86-64 binary for the arm64 function (package.sh's default architecture): refused.
lua_only "$PACKAGE_BUILD_DIR/taskhost" arm64
check_eq "x86-64 binary, --arch arm64: package.sh exit" 1 "$rc"
check "…says why" grep -q "built for 'Advanced Micro Devices X86-64', but the function's architecture is arm64" <<<"$out"
check "…and wrote none" test ! -e "$TMP/fake/out.zip"
# A build dir configured for one architecture is not reused for the other.
echo "CMAKE_C_COMPILER:FILEPATH=/usr/bin/cc" >>"$TMP/fake/CMakeCache.txt"
set +e
out=$(bash "$SOURCE_DIR/scripts/package.sh" --arch arm64 --lua-only --build-dir "$TMP/fake" \
  --output "$TMP/fake/out.zip" 2>&1)
rc=$?
set -e
check_eq "x86_64 build dir, --arch arm64: package.sh exit" 1 "$rc"
check "…says the build dir is another architecture's" grep -q "was configured with /usr/bin/cc, not for arm64" <<<"$out"
check "…and wrote none" test ! -e "$TMP/fake/out.zip"
finish
