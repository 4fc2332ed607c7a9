#!/usr/bin/env bash
# build-min-deps.sh PREFIX — the static libraries the Lambda package links
# instead of Debian's shared libcurl tree (scripts/package.sh runs it; its
# cache is build-package/min-deps):
#   * libcurl with HTTP and HTTPS on OpenSSL and nothing else: no HTTP/2, IDN,
#     PSL, zlib/brotli/zstd, SSH, LDAP, RTMP, GSSAPI/Kerberos, NTLM, FTP, SMTP,
#     cookies, ... (runtime/http.c and runtime/lambda.c use HTTP(S) only);
#   * libmicrohttpd (taskhost --serve) without HTTPS, so without GnuTLS.
# Into PREFIX/lib/{libcurl,libmicrohttpd}.a and PREFIX/include.
#
# The sources are Debian's own source packages, of the very versions the
# machine has installed as libcurl4-openssl-dev and libmicrohttpd-dev (so the
# package runs the libcurl the rest of the build and the tests use, Debian's
# patches and security fixes included), fetched with apt-get source through a
# private deb-src list (the machine's apt sources and state are not touched).
# Authenticity: apt checks the suites' InRelease signatures against
# debian-archive-keyring and the files' SHA-256 against the signed Sources
# index; this script refuses to run if the apt configuration disables any of
# that, forces the checks on, and records the SHA-256 of what it built from.
# (dpkg-source then checks the tarballs against the .dsc; the .dsc's own
# maintainer signature it can only check with debian-keyring installed, which
# is not needed here: apt's signed index already vouches for the .dsc.)
#
# Cached: PREFIX/.min-deps-stamp records the recipe (this script's SHA-256),
# the source versions, the OpenSSL headers' version, the compiler and the
# architecture; when they all match, nothing is done (and no network needed).
# Otherwise the build runs in PREFIX-work.XXXXXX (beside PREFIX) and replaces
# PREFIX only when it succeeded; on failure that directory and its logs
# (*.log) are kept and named, until the next successful run removes them.
# Concurrent runs on one PREFIX wait for each other (flock on PREFIX.lock).
#
# Needs: build-essential, dpkg-dev, apt, libssl-dev, network access to the
# Debian archive (scripts/deps.sh installs the packages). Debian only: on
# other distributions use scripts/package.sh --system-libs.
#
# --check PREFIX: exit 0 if PREFIX is up to date, 1 if it would be rebuilt;
# builds nothing.
# --host TRIPLET: cross-build for another architecture, e.g. aarch64-linux-gnu (the arm64
# package): compiled with TRIPLET-gcc (crossbuild-essential-arm64) against that
# architecture's OpenSSL headers (libssl-dev:arm64, found through its own pkg-config
# directory); the sources are the same (the native -dev packages' versions, which Debian's
# multiarch keeps equal to the foreign ones). scripts/deps.sh --arm64 installs all of it.
# Environment: DEBIAN_MIRROR (default http://deb.debian.org),
# JOBS (default nproc).
set -euo pipefail

me=build-min-deps.sh
say() { echo "$me: $*" >&2; }
die() { say "error: $*"; exit 1; }

check_only=0
host=""
while [ $# -gt 1 ]; do
  case $1 in
    --check) check_only=1; shift ;;
    --host) host=${2:?--host needs a GNU triplet}; shift 2 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: $me [--check] [--host TRIPLET] PREFIX" >&2; exit 2; }
mkdir -p "$1"
prefix=$(cd "$1" && pwd -P)
stamp=$prefix/.min-deps-stamp
mirror=${DEBIAN_MIRROR:-http://deb.debian.org}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

cc=${host:+$host-}gcc
[ -n "$host" ] || cc=cc
native_arch=$(dpkg --print-architecture 2>/dev/null) || die "dpkg is missing: Debian only"
target_arch=$native_arch
cross_env=()
if [ -n "$host" ]; then
  case $host in
    aarch64-linux-gnu) target_arch=arm64 ;;
    x86_64-linux-gnu) target_arch=amd64 ;;
    *) die "--host $host: only aarch64-linux-gnu and x86_64-linux-gnu are known" ;;
  esac
  # The target's pkg-config files only (OpenSSL for libcurl's configure).
  cross_env=(PKG_CONFIG=pkg-config "PKG_CONFIG_LIBDIR=/usr/lib/$host/pkgconfig:/usr/share/pkgconfig"
    PKG_CONFIG_PATH= "CC=$cc")
fi
for tool in apt-get apt-config dpkg-query dpkg-source "$cc" make sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' is missing (scripts/deps.sh installs it)"
done

# ---- what to build: the installed -dev packages' source versions ----------
src_of() { # DEV-PACKAGE → "SOURCE VERSION"
  local out
  out=$(dpkg-query -W -f='${db:Status-Abbrev}|${source:Package} ${source:Version}' "$1:$native_arch" 2>/dev/null) ||
    die "$1 is not installed (scripts/deps.sh installs it)"
  [[ $out == ii* ]] || die "$1 is not installed (scripts/deps.sh installs it)"
  echo "${out#*|}"
}
read -r curl_pkg curl_ver <<<"$(src_of libcurl4-openssl-dev)"
read -r mhd_pkg mhd_ver <<<"$(src_of libmicrohttpd-dev)"
ssl_ver=$(dpkg-query -W -f='${Version}' "libssl-dev:$target_arch" 2>/dev/null) && [ -n "$ssl_ver" ] ||
  die "libssl-dev:$target_arch is not installed (scripts/deps.sh installs it)"
want=$(printf '%s\n' \
  "recipe $(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)" \
  "source $curl_pkg $curl_ver" \
  "source $mhd_pkg $mhd_ver" \
  "openssl-headers libssl-dev:$target_arch $ssl_ver" \
  "cc $("$cc" -dumpfullversion -dumpversion 2>/dev/null | head -1) $("$cc" -dumpmachine)")

up_to_date() {
  [ -f "$prefix/lib/libcurl.a" ] && [ -f "$prefix/lib/libmicrohttpd.a" ] &&
    [ -f "$prefix/include/curl/curl.h" ] && [ -f "$prefix/include/microhttpd.h" ] &&
    [ -f "$stamp" ] && [ "$(sed -n '/^# built from/q; p' "$stamp")" = "$want" ]
}

exec 9>"$prefix.lock"
flock 9
if up_to_date; then
  say "$prefix is up to date ($curl_pkg $curl_ver, $mhd_pkg $mhd_ver)"
  exit 0
fi
[ "$check_only" = 0 ] || { say "$prefix is not up to date (would rebuild)"; exit 1; }
say "building $curl_pkg $curl_ver and $mhd_pkg $mhd_ver (static, minimal) into $prefix"

# ---- the private apt configuration ---------------------------------------
[ -r /etc/os-release ] || die "no /etc/os-release: not a Debian system (use package.sh --system-libs)"
# shellcheck disable=SC1091
. /etc/os-release
[ "${ID:-}" = debian ] && [ -n "${VERSION_CODENAME:-}" ] ||
  die "Debian only (this is ${PRETTY_NAME:-unknown}): use scripts/package.sh --system-libs"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "$keyring is missing (apt-get install debian-archive-keyring)"

work=$(mktemp -d "$prefix-work.XXXXXX")
chmod 0755 "$work" # apt's downloads run as _apt when started as root
ok=0
on_exit() {
  local rc=$?
  if [ "$ok" = 1 ]; then
    rm -rf "$work"
  else
    say "FAILED (exit $rc); the build directory and its logs are kept: $work"
    local l
    for l in $(find "$work" -maxdepth 3 -name '*.log' -newer "$work/apt.conf" 2>/dev/null | sort); do
      say "---- last lines of $l"
      tail -n 25 "$l" >&2
    done
  fi
}
trap on_exit EXIT
cd "$work"
mkdir -p parts lists/partial cache/archives/partial
cat >parts/debian-src.sources <<EOF
Types: deb-src
URIs: $mirror/debian
Suites: $VERSION_CODENAME $VERSION_CODENAME-updates
Components: main
Signed-By: $keyring

Types: deb-src
URIs: $mirror/debian-security
Suites: $VERSION_CODENAME-security
Components: main
Signed-By: $keyring
EOF
cat >apt.conf <<EOF
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$work/parts";
Dir::State::Lists "$work/lists";
Dir::Cache "$work/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
export APT_CONFIG=$work/apt.conf

# Signature checks: the machine's apt configuration (apt.conf.d, read after
# APT_CONFIG) must not turn them off; they are forced on below anyway.
secure_opts=(APT::Get::AllowUnauthenticated Acquire::AllowInsecureRepositories
  Acquire::AllowDowngradeToInsecureRepositories Acquire::AllowWeakRepositories)
for opt in "${secure_opts[@]}"; do
  v=$(apt-config dump --no-empty "$opt" 2>/dev/null | sed -n "s/^$opt \"\(.*\)\";$/\1/Ip" | tail -1)
  case ${v,,} in
    "" | 0 | false | no | off) ;;
    *) die "the apt configuration sets $opt \"$v\": it disables signature checks; refusing" ;;
  esac
done
apt_opts=()
for opt in "${secure_opts[@]}"; do apt_opts+=(-o "$opt=false"); done

say "apt-get update (deb-src of $VERSION_CODENAME, private lists)"
apt-get "${apt_opts[@]}" update >apt-update.log 2>&1 || die "apt-get update failed (apt-update.log)"
# apt-get update exits 0 on some fetch errors: every suite must have been
# fetched and verified (apt keeps a Release file only after its signature checked out).
grep -Eq '^(W|E|Err):' apt-update.log && die "apt-get update reported errors or warnings (apt-update.log)"
n_release=$(find lists -maxdepth 1 -name '*_InRelease' | wc -l)
[ "$n_release" -eq 3 ] || die "expected 3 signed InRelease files, got $n_release (apt-update.log)"

say "apt-get source $curl_pkg=$curl_ver $mhd_pkg=$mhd_ver"
mkdir src
# As root, apt downloads as the unprivileged _apt user: let it write there.
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt src; fi
(cd src && apt-get "${apt_opts[@]}" source --download-only \
  "$curl_pkg=$curl_ver" "$mhd_pkg=$mhd_ver") >apt-source.log 2>&1 ||
  die "apt-get source failed (apt-source.log): is $curl_pkg $curl_ver / $mhd_pkg $mhd_ver still in the archive? (upgrade libcurl4-openssl-dev / libmicrohttpd-dev)"
grep -qi 'cannot be authenticated\|unauthenticated' apt-source.log &&
  die "apt-get source: unauthenticated sources (apt-source.log)"
provenance=$(cd src && sha256sum -- * | sort -k2)

# dpkg-source checks every file against the .dsc (whose SHA-256 apt checked
# against the signed Sources index) and applies Debian's patches.
extract() { # SOURCE VERSION DIR
  local dsc
  dsc=$(ls src/"$1"_"${2#*:}".dsc 2>/dev/null) || die "no .dsc for $1 $2 (apt-source.log)"
  dpkg-source -x "$dsc" "$3" >>dpkg-source.log 2>&1 || die "dpkg-source -x $dsc failed (dpkg-source.log)"
}
extract "$curl_pkg" "$curl_ver" curl
extract "$mhd_pkg" "$mhd_ver" mhd

# Debian's series ends with two patches that make the GnuTLS and NSS flavours
# (libcurl-gnutls.la, libcurl-nss.la); debian/rules pops them for the OpenSSL
# flavour (libcurl4-openssl-dev), and so does this. The other patches that
# touch configure.ac only concern GSSAPI and LDAP (disabled here): the shipped
# configure is used as it is (AM_MAINTAINER_MODE: make never re-runs autotools).
for p in 99_nss.patch 90_gnutls.patch; do
  [ "$(grep -v '^[[:space:]]*\(#\|$\)' curl/debian/patches/series | tail -1)" = "$p" ] ||
    die "curl's debian/patches/series does not end with $p any more: review this recipe"
  patch -d curl -R -p1 -s <"curl/debian/patches/$p" >>dpkg-source.log 2>&1 ||
    die "cannot pop $p (dpkg-source.log)"
  sed -i "/^$p\$/d" curl/debian/patches/series
done
grep -q 'lib_LTLIBRARIES = libcurl.la' curl/lib/Makefile.am || die "curl: not the OpenSSL flavour's sources"

dest=$work/dest
# -ffile-prefix-map: no path of this temporary directory in the debug info, so
# none in bootstrap's Build ID: a rebuild of PREFIX gives the same package bytes.
flags="-O2 -g -ffunction-sections -fdata-sections -ffile-prefix-map=$work=/usr/src/min-deps"

say "configure + make libcurl (log: $work/curl/build.log)"
(cd curl && env "${cross_env[@]}" ./configure ${host:+--host="$host"} --prefix="$prefix" --disable-shared --enable-static --with-pic \
  --with-openssl --without-zlib --without-brotli --without-zstd --without-libidn2 --without-libpsl \
  --without-nghttp2 --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 \
  --without-librtmp --without-libssh2 --without-libssh --without-wolfssh --without-gssapi \
  --without-libgsasl --without-hyper --without-gnutls --without-mbedtls --without-wolfssl \
  --without-bearssl --without-rustls --without-nss \
  --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet --disable-tftp \
  --disable-pop3 --disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt \
  --disable-ftp --disable-file --disable-manual --disable-ntlm --disable-ntlm-wb \
  --disable-kerberos-auth --disable-negotiate-auth --disable-alt-svc --disable-hsts --disable-doh \
  --disable-netrc --disable-cookies --disable-aws --disable-mime --disable-progress-meter \
  --disable-websockets --disable-dependency-tracking \
  --with-ca-bundle=/etc/pki/tls/certs/ca-bundle.crt --without-ca-path \
  CFLAGS="$flags" && make -j"$jobs" -C lib V=0 &&
  make -C lib install DESTDIR="$dest" && make -C include install DESTDIR="$dest") \
  >curl/build.log 2>&1 || die "libcurl build failed ($work/curl/build.log, curl/config.log)"
# What the configure summary must say (a silently found library would show up here).
summary=$(sed -n '/curl version:/,$p' curl/build.log)
grep -Eq 'SSL:[[:space:]]+enabled \(OpenSSL' <<<"$summary" ||
  die "libcurl: not configured with OpenSSL (curl/build.log)"
protocols=$(sed -n 's/^[[:space:]]*Protocols:[[:space:]]*//p' <<<"$summary" | tr 'a-z' 'A-Z' | xargs)
[ "$protocols" = "HTTP HTTPS" ] || die "libcurl protocols are '$protocols', expected 'HTTP HTTPS'"

say "configure + make libmicrohttpd (log: $work/mhd/build.log)"
(cd mhd && env "${cross_env[@]}" ./configure ${host:+--host="$host"} --prefix="$prefix" --disable-shared --enable-static --with-pic \
  --disable-https --without-gnutls --disable-doc --disable-examples --disable-curl --disable-tools \
  --disable-dependency-tracking CFLAGS="$flags" &&
  make -j"$jobs" -C src/microhttpd V=0 && make -C src/microhttpd install DESTDIR="$dest" &&
  make -C src/include install DESTDIR="$dest") \
  >mhd/build.log 2>&1 || die "libmicrohttpd build failed ($work/mhd/build.log, mhd/config.log)"
grep -Eq 'HTTPS support:[[:space:]]+no' mhd/build.log ||
  die "libmicrohttpd: HTTPS not disabled (mhd/build.log)"

# Only the static libraries and the headers are kept (no libtool archives).
built=$dest$prefix
for f in lib/libcurl.a lib/libmicrohttpd.a include/curl/curl.h include/microhttpd.h; do
  [ -f "$built/$f" ] || die "$f was not installed"
done
rm -f "$built"/lib/*.la
{
  printf '%s\n' "$want"
  echo "# built from (SHA-256, checked by apt against the signed Sources index):"
  sed 's/^/#   /' <<<"$provenance"
  echo "# configure flags: see scripts/build-min-deps.sh (recipe hash above)"
} >"$built/.min-deps-stamp"

# Replace PREFIX in one step: a failure above leaves the old one as it was.
old=$(mktemp -d "$prefix-old.XXXXXX")
mv "$prefix" "$old/prev"
mv "$built" "$prefix"
rm -rf "$old"
ok=1
# What failed runs kept (the lock is held: none of them is running).
for d in "$prefix"-work.*; do [ "$d" = "$work" ] || rm -rf "$d"; done
say "done: $(cd "$prefix/lib" && ls -s --block-size=K libcurl.a libmicrohttpd.a | xargs)"
