#!/usr/bin/env bash
# scripts/package.sh --lua-only: after an edit to lua/routes.lua the package is
# re-zipped without compiling — the build dir's binary is neither rebuilt nor
# touched, the new zip carries the edit and the same bootstrap and lib/ — and
# the zip is deterministic (re-zipping the same sources gives the same bytes).
#   PACKAGE_BUILD_DIR  the build dir PACKAGE_ZIP was made from
#                      (default: build-package/, package.sh's own default)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PACKAGE_BUILD_DIR=${PACKAGE_BUILD_DIR:-$SOURCE_DIR/build-package-${PACKAGE_ARCH:-x86_64}}
binary=$PACKAGE_BUILD_DIR/taskhost
[ -x "$binary" ] || { echo "test_rezip: no binary in $PACKAGE_BUILD_DIR" >&2; exit 2; }

# What a compile would change.
state() {
  stat -c '%n %Y %s' "$binary" "$PACKAGE_BUILD_DIR/CMakeCache.txt" \
    "$PACKAGE_BUILD_DIR"/CMakeFiles/*.dir/runtime/*.o 2>/dev/null
  sha256sum "$binary"
}
before=$(state)

section "the same sources, re-zipped: the same bytes"
out=$(bash "$SOURCE_DIR/scripts/package.sh" --arch "$PACKAGE_ARCH" --lua-only --build-dir "$PACKAGE_BUILD_DIR" \
  --output "$TMP/same.zip" 2>&1)
check_eq "package.sh --lua-only: exit 0" 0 $?
echo "$out" | sed 's/^/      /'
check "package.sh --lua-only: prints the zip and unpacked sizes" \
  grep -Eq 'MiB \([0-9]+ bytes\) zipped, .*MiB \([0-9]+ bytes\) unpacked' <<<"$out"
check "byte-identical to $(basename "$PACKAGE_ZIP")" cmp "$TMP/same.zip" "$PACKAGE_ZIP"

section "an edited routes.lua, re-zipped without compiling"
# A copy of the tree's package.sh and lua/ (the real ones are not touched).
root=$TMP/root
mkdir -p "$root/scripts" "$root/runtime"
cp "$SOURCE_DIR/scripts/package.sh" "$SOURCE_DIR/scripts/lambda-fit.sh" "$root/scripts/"
cp -r "$SOURCE_DIR/lua" "$root/lua"
marker="-- edited by test_rezip $$"
printf '%s\n' "$marker" >>"$root/lua/routes.lua"
t0=$(date +%s%3N)
bash "$root/scripts/package.sh" --arch "$PACKAGE_ARCH" --lua-only --build-dir "$PACKAGE_BUILD_DIR" \
  --output "$TMP/edited.zip" >"$TMP/edited.log" 2>&1
check_eq "package.sh --lua-only after an edit: exit 0" 0 $?
echo "      re-zipped in $(($(date +%s%3N) - t0)) ms"
check_eq "the build dir's binary and objects: untouched (no compile)" "$before" "$(state)"
mkdir -p "$TMP/a" "$TMP/b"
unzip -q "$PACKAGE_ZIP" -d "$TMP/a" && unzip -q "$TMP/edited.zip" -d "$TMP/b"
check "the new zip carries the edit" grep -qxF -- "$marker" "$TMP/b/lua/routes.lua"
check "the same bootstrap" cmp "$TMP/a/bootstrap" "$TMP/b/bootstrap"
libsums() { (cd "$1" && find . -path './lib/*' -type f -exec sha256sum {} + | LC_ALL=C sort -k2); }
check_eq "the same lib/ (or none in both)" "$(libsums "$TMP/a")" "$(libsums "$TMP/b")"
check_eq "the other scripts unchanged" "" \
  "$(diff -r -x routes.lua "$TMP/a/lua" "$TMP/b/lua")"

section "--lua-only without a build"
bash "$SOURCE_DIR/scripts/package.sh" --arch "$PACKAGE_ARCH" --lua-only --build-dir "$TMP/empty" \
  --output "$TMP/none.zip" >"$TMP/none.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then pass; else fail "--lua-only with no binary: fails"; fi
check "--lua-only with no binary: says to build first" grep -q 'without it' "$TMP/none.log"
check "--lua-only with no binary: no zip" test ! -e "$TMP/none.zip"

section "--lua-only with a route script that does not load: refused, as taskhost --check refuses"
# A syntax error in routes.lua, and a module routes.lua requires that fails as it loads.
for broken in syntax require; do
  rm -rf "$root/lua"
  cp -r "$SOURCE_DIR/lua" "$root/lua"
  case $broken in
    syntax) printf 'local x = = 1\n' >>"$root/lua/routes.lua" ;;
    require) printf 'error("boom in helper")\n' >"$root/lua/th_broken_helper.lua"
      sed -i '1i local _broken = require("th_broken_helper")' "$root/lua/routes.lua" ;;
  esac
  rm -f "$TMP/broken.zip"
  bash "$root/scripts/package.sh" --arch "$PACKAGE_ARCH" --lua-only --build-dir "$PACKAGE_BUILD_DIR" \
    --output "$TMP/broken.zip" >"$TMP/broken.log" 2>&1
  rc=$?
  if [ "$rc" -ne 0 ]; then pass; else fail "--lua-only, $broken error in lua/: exits non-zero" "exit 0"; fi
  check "--lua-only, $broken error in lua/: says the scripts do not load" \
    grep -q 'route scripts in .* do not load' "$TMP/broken.log"
  check "--lua-only, $broken error in lua/: names the failure" \
    grep -Eq 'routes.lua:[0-9]+|boom in helper' "$TMP/broken.log"
  check "--lua-only, $broken error in lua/: no zip written" test ! -e "$TMP/broken.zip"
  sed 's/^/      /' "$TMP/broken.log"
done
check_eq "the build dir's binary and objects: still untouched" "$before" "$(state)"

finish
