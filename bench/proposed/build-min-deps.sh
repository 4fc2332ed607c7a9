#!/usr/bin/env bash
# bench/proposed/build-min-deps.sh PREFIX — builds what proposal 04 links
# statically into `bootstrap` instead of Debian's shared libcurl tree:
#   * libcurl 7.88.1 (the version Debian 12 ships, from its source package,
#     Debian's patches applied) with HTTP and HTTPS on OpenSSL and nothing
#     else: no HTTP/2, IDN, PSL, brotli/zstd/zlib, SSH, LDAP, RTMP, GSSAPI,
#     FTP, SMTP, ... (runtime/http.c and runtime/lambda.c use none of them);
#   * libmicrohttpd 0.9.75 (Debian 12's) without HTTPS, so without GnuTLS.
# Into PREFIX/lib/*.a and PREFIX/include. Then:
#   TASKHOST_CMAKE_ARGS="-DTASKHOST_MIN_PREFIX=PREFIX -DTASKHOST_STATIC_OPENSSL=ON" \
#     scripts/package.sh           (with 04-minimal-deps-package.diff applied)
#
# The sources come through apt-get source with a private deb-src list (the
# machine's apt configuration is not touched). Needs: dpkg-dev, build-essential.
# A production build would pin the tarballs' SHA-256 instead (CMake
# ExternalProject or a vendored copy); this script is the measured prototype.
set -euo pipefail
prefix=${1:?usage: build-min-deps.sh PREFIX}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/min-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

mkdir -p parts lists/partial cache/archives/partial
sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >parts/src.sources
cat >apt.conf <<EOF
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$work/parts";
Dir::State::Lists "$work/lists";
Dir::Cache "$work/cache";
EOF
export APT_CONFIG=$work/apt.conf
apt-get update -qq
apt-get source -qq curl libmicrohttpd >/dev/null 2>&1 || apt-get source curl libmicrohttpd
curl_src=$(find . -maxdepth 1 -type d -name 'curl-*' | head -1)
mhd_src=$(find . -maxdepth 1 -type d -name 'libmicrohttpd-*' | head -1)
flags="-O2 -ffunction-sections -fdata-sections"

(cd "$curl_src" && ./configure --prefix="$prefix" --disable-shared --enable-static --with-pic \
  --with-openssl --without-zlib --without-brotli --without-zstd --without-libidn2 --without-libpsl \
  --without-nghttp2 --without-ngtcp2 --without-nghttp3 --without-librtmp --without-libssh2 \
  --without-libssh --without-gssapi --without-libgsasl --disable-ldap --disable-ldaps --disable-rtsp \
  --disable-dict --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb \
  --disable-smtp --disable-gopher --disable-mqtt --disable-ftp --disable-file --disable-manual \
  --disable-ntlm --disable-kerberos-auth --disable-negotiate-auth --disable-alt-svc --disable-hsts \
  --disable-doh --disable-netrc --disable-cookies --disable-aws --disable-mime \
  --disable-progress-meter --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt CFLAGS="$flags" \
  >configure.log && make -j"$(nproc)" -C lib >make.log && make -C lib install >/dev/null &&
  make -C include install >/dev/null)

(cd "$mhd_src" && ./configure --prefix="$prefix" --disable-shared --enable-static --with-pic \
  --disable-https --without-gnutls --disable-doc --disable-examples --disable-curl --disable-tools \
  CFLAGS="$flags" >configure.log && make -j"$(nproc)" -C src/microhttpd >make.log &&
  make -C src/microhttpd install >/dev/null && make -C src/include install >/dev/null)

ls -l "$prefix/lib"/*.a
