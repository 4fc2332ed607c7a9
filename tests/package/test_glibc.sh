#!/usr/bin/env bash
# The Lambda package against Amazon Linux 2023's glibc (2.34):
#   * `objdump -T` of bootstrap and of every bundled library: no GLIBC_ symbol
#     version above 2.34, and no GLIBC_PRIVATE (glibc's internal ABI, which
#     only glibc's own pieces may use); the version references (`objdump -p`)
#     agree. The highest version found is printed per file.
#   * nothing bundled is a piece of glibc (by soname, or by the GLIBC_*
#     versions it defines); no loader, no libc.
#   * the zip's layout: bootstrap at the root (0755, an ELF executable of
#     PACKAGE_ARCH — x86-64 with the interpreter /lib64/ld-linux-x86-64.so.2, or
#     AArch64 with /lib/ld-linux-aarch64.so.1 — stripped), lua/ with
#     the route scripts of this tree, and lib/ with shared libraries only — or
#     no lib/ at all (the default package: bootstrap then needs glibc alone).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MAX=2.34

# version_gt A B: A is a later version than B (2.35 > 2.34 > 2.4 > 2.3.4).
version_gt() {
  local a=$1 b=$2 i x y
  local -a pa pb
  IFS=. read -r -a pa <<<"$a"
  IFS=. read -r -a pb <<<"$b"
  for ((i = 0; i < ${#pa[@]} || i < ${#pb[@]}; i++)); do
    x=${pa[i]:-0} y=${pb[i]:-0}
    ((10#$x > 10#$y)) && return 0
    ((10#$x < 10#$y)) && return 1
  done
  return 1
}

section "the version comparison itself"
for case in "2.35>2.34" "2.36>2.34" "2.34.1>2.34" "3.0>2.34" "2.100>2.34"; do
  check "version_gt ${case%>*} ${case#*>}" version_gt "${case%>*}" "${case#*>}"
done
for case in "2.34 2.34" "2.4 2.34" "2.3.4 2.34" "2.2.5 2.34" "2.17 2.34" "2.33 2.34"; do
  read -r a b <<<"$case"
  if version_gt "$a" "$b"; then fail "version_gt $a $b is false"; else pass; fi
done

pkg_unpack "$TMP/pkg"
cd "$PKG" || exit 2

section "layout of $(basename "$PACKAGE_ZIP")"
check "bootstrap at the root of the zip" test -f bootstrap
check_eq "bootstrap: mode 0755 in the zip" "-rwxr-xr-x" \
  "$(zipinfo "$PACKAGE_ZIP" bootstrap 2>/dev/null | awk '{ print $1 }')"
check_eq "bootstrap: mode 0755 once unzipped" 755 "$(stat -c %a bootstrap)"
hdr=$(readelf -h bootstrap 2>/dev/null)
check "bootstrap: an ELF executable (PIE), not a script" \
  grep -Eq 'Type:[[:space:]]+(DYN|EXEC)' <<<"$hdr"
case $PACKAGE_ARCH in
  arm64) machine=AArch64 interp=/lib/ld-linux-aarch64.so.1 ;;
  *) machine="Advanced Micro Devices X86-64" interp=/lib64/ld-linux-x86-64.so.2 ;;
esac
check "bootstrap: $machine (the function's architecture, $PACKAGE_ARCH)" \
  grep -Eq "Machine:[[:space:]]+$machine\$" <<<"$hdr"
check_eq "bootstrap: interpreter is Amazon Linux's loader path" "$interp" \
  "$(readelf -l bootstrap | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')"
check "bootstrap: stripped (no debug info, no symbol table)" \
  bash -c '! readelf -S bootstrap | grep -Eq "\.debug_|\.symtab"'
check "lua/routes.lua present" test -f lua/routes.lua
stale=""
for f in "$SOURCE_DIR"/lua/*.lua; do
  cmp -s "$f" "lua/${f##*/}" || stale+=" ${f##*/}"
done
check_eq "lua/: every script of this tree, as it is (else: package.sh --lua-only)" "" "$stale"
others=$(find . -type f ! -path ./bootstrap ! -path './lib/*.so*' ! -path './lua/*.lua' | sort)
check_eq "nothing but bootstrap, lib/*.so*, lua/*.lua" "" "$others"
pkg_layout
if [ -e lib ]; then
  check "lib/, when there is one, holds shared libraries" test "$NBUNDLED" -gt 0
else
  # Without lib/, nothing but glibc can be needed.
  check_eq "no lib/: bootstrap needs glibc's libraries only" "" \
    "$(needed bootstrap | while read -r n; do glibc_soname "$n" || echo "$n"; done | xargs)"
fi
echo "      layout: bootstrap, lua/, $([ "$NBUNDLED" -gt 0 ] && echo "lib/ ($NBUNDLED libraries)" || echo "no lib/")"

section "nothing of glibc is shipped"
for f in "${BUNDLED[@]}"; do
  if glibc_soname "$f"; then fail "$f: a glibc library by name"; else pass; fi
  if glibc_defines "$f"; then fail "$f: defines GLIBC_* versions (a piece of glibc)"; else pass; fi
  if [ -L "$f" ]; then fail "$f: a symbolic link"; else pass; fi
done
check_eq "no loader anywhere in the package" "" "$(find . -name 'ld-*.so*' -o -name 'ld.so*')"

# glibc_scan FILE: VERSIONS (objdump -T), REFS (objdump -p's version
# references), FOUND_MAX (highest GLIBC_x.y) and OVER (versions above MAX,
# GLIBC_PRIVATE too). False when objdump cannot read FILE.
glibc_scan() {
  local f=$1 dyn v n
  VERSIONS="" REFS="" FOUND_MAX="" OVER=""
  dyn=$(objdump -T "$f" 2>&1) || { OVER="objdump -T failed: $dyn"; return 1; }
  # Symbol versions of the dynamic symbols: "(GLIBC_2.34)" / " GLIBC_2.2.5 "
  VERSIONS=$(grep -oE 'GLIBC_[A-Za-z0-9_.]+' <<<"$dyn" | sort -u)
  # The version references (what the loader checks before anything runs).
  REFS=$(objdump -p "$f" | awk '/^Version References:/ { r = 1; next } /^[^ \t]/ { r = 0 }
    r && $NF ~ /^GLIBC_/ { print $NF }' | sort -u)
  for v in $VERSIONS $REFS; do
    n=${v#GLIBC_}
    # Not a release: GLIBC_PRIVATE (glibc's internal ABI), GLIBC_ABI_DT_RELR (2.36)…
    if ! [[ $n =~ ^[0-9]+(\.[0-9]+)*$ ]]; then OVER+=" $v"; continue; fi
    if [ -z "$FOUND_MAX" ] || version_gt "$n" "$FOUND_MAX"; then FOUND_MAX=$n; fi
    if version_gt "$n" "$MAX"; then OVER+=" $v"; fi
  done
  OVER=$(tr ' ' '\n' <<<"$OVER" | sort -u | xargs)
  return 0
}

section "the scan catches what it must"
# arc4random is GLIBC_2.36 in Debian 12's glibc: a binary calling it must fail.
if command -v cc >/dev/null; then
  printf '#include <stdlib.h>\nint main(void) { return (int)(arc4random() & 1); }\n' >"$TMP/new.c"
  if cc -o "$TMP/new" "$TMP/new.c" 2>/dev/null; then
    glibc_scan "$TMP/new"
    check_eq "a binary calling arc4random: GLIBC_2.36 flagged" "GLIBC_2.36" "$OVER"
  else
    echo "      (no arc4random in this glibc: that self-check is skipped)"
  fi
  # Packed relative relocations need GLIBC_ABI_DT_RELR (glibc 2.36): flagged.
  if cc -Wl,-z,pack-relative-relocs -o "$TMP/relr" "$TMP/new.c" 2>/dev/null &&
    [[ $(objdump -p "$TMP/relr") == *GLIBC_ABI_DT_RELR* ]]; then
    glibc_scan "$TMP/relr"
    check "a binary with DT_RELR: GLIBC_ABI_DT_RELR flagged" grep -q GLIBC_ABI_DT_RELR <<<"$OVER"
  fi
fi
# glibc's own libraries use GLIBC_PRIVATE among themselves: flagged too.
libm=$(ldconfig -p 2>/dev/null | awk '$1 == "libm.so.6" && /x86-64/ { print $NF; exit }')
if [ -n "$libm" ] && [[ $(objdump -T "$libm") == *GLIBC_PRIVATE* ]]; then
  glibc_scan "$libm"
  check "glibc's libm: GLIBC_PRIVATE flagged" grep -q GLIBC_PRIVATE <<<"$OVER"
fi

section "GLIBC_ symbol versions: $MAX at most (objdump -T, objdump -p)"
for f in bootstrap "${BUNDLED[@]}"; do
  if ! glibc_scan "$f"; then
    fail "$f: objdump -T" "$OVER"
    continue
  fi
  printf '      %-28s max GLIBC_%s\n' "$f" "${FOUND_MAX:-none}"
  if [ -n "$OVER" ]; then fail "$f: needs a glibc newer than $MAX" "$OVER"; else pass; fi
  # Both views list the same versions (a reference without a symbol, or the reverse,
  # would mean this parse missed something).
  check_eq "$f: objdump -T and the version references agree" \
    "$(xargs <<<"$VERSIONS")" "$(xargs <<<"$REFS")"
done
# bootstrap itself must show versions at all (the parse works on a real file).
check "bootstrap: GLIBC_ versions found" grep -q GLIBC_ <(objdump -T bootstrap)

finish
