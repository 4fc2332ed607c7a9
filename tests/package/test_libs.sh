#!/usr/bin/env bash
# Where the unzipped package's bootstrap finds its libraries, in the
# environment Lambda gives it (env -i + the Lambda variables, cwd = the task
# root): every library resolves inside the package's lib/, except glibc's,
# which come from the system (Amazon Linux's own on Lambda). The default
# package has no lib/ (everything but glibc is linked in): then bootstrap
# needs glibc alone, has no RPATH, and the loader looks for nothing else.
#   * with lib/: bootstrap has DT_RPATH $ORIGIN/lib and no DT_RUNPATH; no
#     bundled library has a RUNPATH of its own (which would hide bootstrap's
#     RPATH from the search for its own dependencies); without: neither;
#   * the tree is closed: every DT_NEEDED of bootstrap and lib/* is in lib/
#     or is glibc's;
#   * the loader's own account (LD_TRACE_LOADED_OBJECTS, what ldd prints, and
#     LD_DEBUG=libs): each non-glibc library is found in lib/ through the
#     RPATH, never tried anywhere else — with Lambda's LD_LIBRARY_PATH, with
#     none at all, and with a decoy directory of unloadable look-alikes in
#     front of LD_LIBRARY_PATH (Amazon Linux's /lib64 holds its own libcurl,
#     libcrypto, libssl, libz…: Lambda's LD_LIBRARY_PATH names /lib64 before
#     the task's lib/, and DT_RPATH comes before LD_LIBRARY_PATH): decoys of
#     the bundled libraries and of libcurl's, OpenSSL's, zlib's, GnuTLS's…
#     sonames, none of which may even be tried;
#   * started by its absolute path from another directory, it still finds
#     lib/ ($ORIGIN is the binary's folder, not the working directory).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pkg_unpack "$TMP/task"
cd "$PKG" || exit 2
lambda_env_for "$PKG"
pkg_layout
echo "      layout: $([ "$NBUNDLED" -gt 0 ] && echo "lib/ with $NBUNDLED libraries" || echo "no lib/")"

section "dynamic section"
dyn=$(readelf -d bootstrap)
if [ "$NBUNDLED" -gt 0 ]; then
  check_eq "bootstrap: DT_RPATH is \$ORIGIN/lib" '$ORIGIN/lib' \
    "$(sed -n 's/.*(RPATH).*\[\(.*\)\]/\1/p' <<<"$dyn")"
else
  check_eq "bootstrap (no lib/): no DT_RPATH, nothing searched in the package" "" \
    "$(grep '(RPATH)' <<<"$dyn")"
fi
check_eq "bootstrap: no DT_RUNPATH" "" "$(grep '(RUNPATH)' <<<"$dyn")"
for f in "${BUNDLED[@]}"; do
  check_eq "$f: no RPATH/RUNPATH of its own" "" "$(readelf -d "$f" | grep -E '\((RPATH|RUNPATH)\)')"
done

section "the tree is closed"
for f in bootstrap "${BUNDLED[@]}"; do
  missing=""
  for n in $(needed "$f"); do
    [ -f "lib/$n" ] || glibc_soname "$n" || missing+=" $n"
  done
  check_eq "$f: every DT_NEEDED is in lib/ or glibc's" "" "${missing# }"
done
# Every bundled library is used by someone (no stowaway).
used=$(for f in bootstrap "${BUNDLED[@]}"; do needed "$f"; done | sort -u)
for f in "${BUNDLED[@]}"; do
  check "${f}: needed by bootstrap or a bundled library" grep -qxF "${f#lib/}" <<<"$used"
done

# resolve NAME [ENV...]: runs ./bootstrap --help under env -i with ENV, the
# loader tracing: RES_TRACE (LD_TRACE_LOADED_OBJECTS, as ldd), RES_DEBUG
# (LD_DEBUG=libs), RES_RC (the --help run's exit status).
resolve() {
  local name=$1
  shift
  RES_TRACE=$(env -i "$@" LD_TRACE_LOADED_OBJECTS=1 ./bootstrap 2>&1)
  env -i "$@" LD_DEBUG=libs LD_DEBUG_OUTPUT="$TMP/ld.$name" ./bootstrap --help >/dev/null 2>&1
  RES_RC=$?
  RES_DEBUG=$(cat "$TMP"/ld."$name".* 2>/dev/null)
  rm -f "$TMP"/ld."$name".*
}

# check_resolution NAME: every library of the trace is where it must be.
check_resolution() {
  local name=$1 line lib path bad="" n=0 glibc_bad=""
  check_eq "$name: bootstrap --help runs (exit 0)" 0 "$RES_RC"
  check_eq "$name: no library not found" "" "$(grep -i 'not found' <<<"$RES_TRACE")"
  while read -r lib arrow path _; do
    [ "$arrow" = "=>" ] || continue
    path=$(readlink -f "$path")
    if glibc_soname "$lib"; then
      [[ $path == "$PKG"/* ]] && glibc_bad+=" $lib=$path"
    else
      n=$((n + 1))
      [ "$path" = "$PKG/lib/$lib" ] || bad+=" $lib=$path"
    fi
  done <<<"$RES_TRACE"
  check_eq "$name: every non-glibc library from the package's lib/ ($n)" "" "${bad# }"
  check_eq "$name: glibc's libraries from the system" "" "${glibc_bad# }"
  check_eq "$name: as many libraries loaded as lib/ holds" "$NBUNDLED" "$n"
  # LD_DEBUG=libs: what the loader tried. A non-glibc library is tried in lib/
  # first, found there, and never looked for anywhere else.
  local tried_elsewhere
  tried_elsewhere=$(awk -v pkg="$PKG/lib/" '
    /find library=/ { sub(/.*find library=/, ""); sub(/ .*/, ""); lib = $0; next }
    /trying file=/ { f = $0; sub(/.*trying file=/, "", f)
      if (lib !~ /^(libc|libm|libdl|libpthread|librt|libresolv|libutil|libanl|ld-linux[^ ]*)\.so/ &&
          index(f, pkg) != 1) print lib " tried " f }' <<<"$RES_DEBUG" | sort -u)
  check_eq "$name: LD_DEBUG: no non-glibc library tried outside lib/" "" "$tried_elsewhere"
  local inits_outside
  inits_outside=$(sed -n 's/.*calling init: //p' <<<"$RES_DEBUG" | while read -r p; do
    glibc_soname "$p" || [[ $(readlink -f "$p") == "$PKG"/lib/* ]] || echo "$p"
  done)
  check_eq "$name: LD_DEBUG: every non-glibc library initialised from lib/" "" "$inits_outside"
  if [ "$NBUNDLED" -gt 0 ]; then
    check "$name: LD_DEBUG: the search path is bootstrap's RPATH" \
      grep -q "RPATH from file ./bootstrap" <<<"$RES_DEBUG"
  fi
}

section "in Lambda's environment (LD_LIBRARY_PATH as Lambda sets it)"
resolve lambda "${LAMBDA_ENV[@]}"
check_resolution "Lambda env"
echo "      loaded: $(awk -v pkg="$PKG/lib/" '$2 == "=>" && index($3, pkg) == 1' <<<"$RES_TRACE" |
  wc -l) libraries from lib/, $(awk -v pkg="$PKG/lib/" '$2 == "=>" && index($3, pkg) != 1' \
  <<<"$RES_TRACE" | wc -l) of glibc's from the system"

section "without any LD_LIBRARY_PATH (the RPATH alone, if any)"
no_llp=()
for v in "${LAMBDA_ENV[@]}"; do [[ $v == LD_LIBRARY_PATH=* ]] || no_llp+=("$v"); done
resolve nollp "${no_llp[@]}"
check_resolution "no LD_LIBRARY_PATH"

section "a decoy of every bundled library first in LD_LIBRARY_PATH (as AL2023's /lib64)"
mkdir -p "$TMP/decoy"
# Those of the bundled libraries, and what a dynamically linked libcurl,
# OpenSSL or libmicrohttpd would look for (AL2023's /lib64 has several).
for n in "${BUNDLED[@]#lib/}" libcurl.so.4 libcurl-gnutls.so.4 libssl.so.3 libcrypto.so.3 \
  libz.so.1 libnghttp2.so.14 libmicrohttpd.so.12 libgnutls.so.30 libgssapi_krb5.so.2 \
  libldap-2.5.so.0 libidn2.so.0 libpsl.so.5 libssh2.so.1 librtmp.so.1 libzstd.so.1 libbrotlidec.so.1; do
  printf 'not a library\n' >"$TMP/decoy/$n"
done
decoy=()
for v in "${LAMBDA_ENV[@]}"; do
  if [[ $v == LD_LIBRARY_PATH=* ]]; then decoy+=("LD_LIBRARY_PATH=$TMP/decoy:${v#LD_LIBRARY_PATH=}")
  else decoy+=("$v"); fi
done
resolve decoy "${decoy[@]}"
check_resolution "decoy first"
# (glibc's libraries are looked for there, as on Lambda: they are not bundled.)
tried=$(sed -n "s|.*trying file=$TMP/decoy/\(.*/\)\{0,1\}||p" <<<"$RES_DEBUG" | sort -u |
  while read -r l; do glibc_soname "$l" || echo "$l"; done)
check_eq "decoy first: no decoy but glibc's names ever tried" "" "$tried"

section "by its absolute path, from another directory"
out=$(cd / && env -i "${LAMBDA_ENV[@]}" LD_TRACE_LOADED_OBJECTS=1 "$PKG/bootstrap" 2>&1)
bad=$(awk -v pkg="$PKG/lib/" '$2 == "=>" && index($3, pkg) != 1 { print $1 }' <<<"$out" |
  while read -r l; do glibc_soname "$l" || echo "$l"; done)
check_eq "from /: every non-glibc library from lib/" "" "$bad"
(cd / && env -i "${no_llp[@]}" "$PKG/bootstrap" --help >/dev/null 2>&1)
check_eq "from /: bootstrap --help runs" 0 $?

finish
