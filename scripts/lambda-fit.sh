#!/usr/bin/env bash
# lambda-fit.sh — can this bootstrap start on Lambda's provided.al2023?
#
#   scripts/lambda-fit.sh [--no-libs] BOOTSTRAP [ARCHITECTURE]   ARCHITECTURE: x86_64 (default) or arm64
#
#   --no-libs   skip the last check (lib/): for a binary whose lib/ is not gathered yet
#
# Checks, and prints one line per misfit (exit 1), or one "fits" line (exit 0):
#   - an ELF executable (not a script: Lambda execs it with no shell wrapper in between),
#     64-bit, for the function's architecture (x86_64: Advanced Micro Devices X86-64,
#     arm64: AArch64), with the loader path Amazon Linux 2023 has;
#   - no GLIBC_ symbol version newer than 2.34 (AL2023's glibc), none that is not a release
#     (GLIBC_PRIVATE, GLIBC_ABI_DT_RELR): built
#     on a host with glibc >= 2.38 and _GNU_SOURCE, strtol & co. bind to __isoc23_strtol@
#     GLIBC_2.38 and Lambda's init fails with "version `GLIBC_2.38' not found";
#   - every shared library it needs is glibc's own (AL2023 brings those) or sits in lib/
#     beside it (scripts/package.sh --system-libs ships them there).
# Used by scripts/package.sh on the binary it zips and by scripts/deploy.sh on the zip it is
# about to upload. Needs readelf (binutils).
set -euo pipefail
me=lambda-fit.sh
GLIBC_MAX=2.34

libs=1
if [ "${1:-}" = --no-libs ]; then libs=0; shift; fi
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
bin=$1
arch=${2:-x86_64}
case $arch in
  x86_64) want_machine="Advanced Micro Devices X86-64" want_interp=/lib64/ld-linux-x86-64.so.2 ;;
  arm64) want_machine="AArch64" want_interp=/lib/ld-linux-aarch64.so.1 ;;
  *) echo "$me: unknown architecture '$arch' (Lambda has x86_64 and arm64)" >&2; exit 2 ;;
esac
command -v readelf >/dev/null || { echo "$me: readelf not found: install binutils" >&2; exit 1; }
[ -f "$bin" ] || { echo "$me: $bin: no such file" >&2; exit 1; }

misfits=0
misfit() { echo "$me: $bin: $*" >&2; misfits=$((misfits + 1)); }

# version_gt A B: A is a later version than B (2.38 > 2.34 > 2.4 > 2.3.4).
version_gt() {
  local -a pa pb
  local i x y
  IFS=. read -r -a pa <<<"$1"
  IFS=. read -r -a pb <<<"$2"
  for ((i = 0; i < ${#pa[@]} || i < ${#pb[@]}; i++)); do
    x=${pa[i]:-0} y=${pb[i]:-0}
    ((10#$x > 10#$y)) && return 0
    ((10#$x < 10#$y)) && return 1
  done
  return 1
}

if ! hdr=$(LC_ALL=C readelf -h "$bin" 2>/dev/null); then
  misfit "not an ELF executable (Lambda runs bootstrap directly; build it with scripts/package.sh)"
  exit 1
fi
grep -Eq 'Class:[[:space:]]+ELF64' <<<"$hdr" || misfit "not a 64-bit ELF"
grep -Eq 'Type:[[:space:]]+(EXEC|DYN)' <<<"$hdr" || misfit "not an executable ($(sed -n 's/.*Type:[[:space:]]*//p' <<<"$hdr"))"
machine=$(sed -n 's/.*Machine:[[:space:]]*//p' <<<"$hdr")
[ "$machine" = "$want_machine" ] ||
  misfit "built for '$machine', but the function's architecture is $arch ($want_machine)"

interp=$(LC_ALL=C readelf -l "$bin" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
[ -z "$interp" ] || [ "$interp" = "$want_interp" ] ||
  misfit "its loader is $interp; Amazon Linux 2023 ($arch) has $want_interp"

# Symbol versions it references (.gnu.version_r), e.g. "Name: GLIBC_2.34".
versions=$(LC_ALL=C readelf -V -W "$bin" 2>/dev/null | sed -n 's/.*Name: \(GLIBC_[0-9A-Z_.]*\).*/\1/p' | sort -u)
newest=""
for v in $versions; do
  case $v in
    GLIBC_[0-9]*)
      n=${v#GLIBC_}
      if [ -z "$newest" ] || version_gt "$n" "$newest"; then newest=$n; fi ;;
    # GLIBC_PRIVATE: glibc's internal ABI; GLIBC_ABI_DT_RELR (glibc 2.36, -z pack-relative-relocs):
    # neither is something AL2023's glibc promises.
    *) misfit "needs $v, which Amazon Linux 2023's glibc $GLIBC_MAX does not provide" ;;
  esac
done
if [ -n "$newest" ] && version_gt "$newest" "$GLIBC_MAX"; then
  syms=$(LC_ALL=C readelf --dyn-syms -W "$bin" 2>/dev/null |
    awk '$8 ~ /@GLIBC_[0-9.]+$/ { print $8 }' | while read -r s; do
      if version_gt "${s##*@GLIBC_}" "$GLIBC_MAX"; then echo "$s"; fi
    done | sort -u | head -n 5 | tr '\n' ' ' || true)
  syms=${syms% }
  misfit "needs GLIBC_$newest, newer than Amazon Linux 2023's $GLIBC_MAX (${syms:-see readelf -V}): rebuild with scripts/package.sh on Debian 12 or Amazon Linux 2023, whose headers bind nothing newer for taskhost"
fi

# Shared libraries: glibc's own, or bundled in lib/ beside bootstrap.
dir=$(dirname "$bin")
needs=""
if [ "$libs" = 1 ]; then
  needs=$(LC_ALL=C readelf -d "$bin" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
fi
for need in $needs; do
  case $need in
    libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libresolv.so.2 | \
      libutil.so.1 | libanl.so.1 | ld-linux*.so.*) continue ;;
  esac
  [ -e "$dir/lib/$need" ] || misfit "needs $need, which is neither glibc's nor in lib/ beside it"
done

if [ "$misfits" -gt 0 ]; then
  exit 1
fi
echo "$me: $bin fits provided.al2023 $arch (${machine}, GLIBC_${newest:-none} at most)"
