#!/usr/bin/env bash
# The HTTP client inside the default Lambda package (scripts/package.sh without
# --system-libs): a minimal libcurl, linked in, that does HTTP and HTTPS on
# OpenSSL — what runtime/http.c and runtime/lambda.c use — and nothing else.
#   * linking: neither bootstrap nor anything under lib/ needs libcurl's
#     Debian tree (GnuTLS, nettle, Kerberos, LDAP, SASL, nghttp2, libidn2,
#     libpsl, librtmp, libssh2, zlib, brotli, zstd, p11-kit, ...), nor a shared
#     libcurl or libmicrohttpd; what bootstrap needs is glibc's, or OpenSSL's
#     when it is shipped shared; none of those libraries' marks in its strings;
#   * the libcurl linked (TASKHOST_MIN_PREFIX of the package's build, found in
#     its link line): protocols exactly http and https, TLS by OpenSSL 3, no
#     HTTP/2, IDN, PSL, GSS-API/Kerberos/SPNEGO/NTLM, compression; built from
#     the installed -dev packages' source versions, and up to date for
#     build-min-deps.sh --check (the cache holds: the next package.sh reuses it);
#   * HTTPS for real: the unzipped bootstrap, under env -i, with a DynamoDB
#     endpoint https://127.0.0.1:PORT (a stub serving a self-signed
#     certificate): with SSL_CERT_FILE naming that certificate the request
#     goes through (TLS 1.2+), GetItem → 404 "Task not found"; with the
#     system's CA bundle instead, the certificate is refused and the stub
#     never sees a request. (Plain HTTP: package.lambda_env, on dynalite.)
#   PACKAGE_BUILD_DIR  the build dir PACKAGE_ZIP was made from
export TASKHOST_BIN=${TASKHOST_BIN:-/bin/true} # tests/e2e/lib.sh wants one; unused
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
source "$SOURCE_DIR/tests/e2e/lib.sh"
source "$SOURCE_DIR/tests/package/lib.sh"
PACKAGE_BUILD_DIR=${PACKAGE_BUILD_DIR:-$SOURCE_DIR/build-package-x86_64}
for tool in openssl python3 cc strings; do
  command -v "$tool" >/dev/null || { echo "test_curl: $tool is required" >&2; exit 2; }
done

pkg_unpack "$TMP/task"
pkg_layout
cd "$PKG" || exit 2

section "what bootstrap links"
tree_re='gnutls|nettle|hogweed|gmp|tasn1|p11-kit|unistring|idn2|psl|nghttp|rtmp|ssh|gssapi|krb5|k5crypto|com_err|keyutils|ldap|lber|sasl|brotli|zstd|^libz\.|curl|microhttpd|ffi'
for f in bootstrap "${BUNDLED[@]}"; do
  check_eq "$f: needs nothing of libcurl's Debian tree, no shared libcurl/libmicrohttpd" "" \
    "$(needed "$f" | grep -E "$tree_re" | xargs)"
done
bundled_names=$(printf '%s\n' "${BUNDLED[@]#lib/}" | grep -v '^$' | grep -Evx 'libssl\.so\.3|libcrypto\.so\.3' | xargs)
check_eq "lib/: at most OpenSSL's libssl/libcrypto" "" "$bundled_names"
others=$(needed bootstrap | while read -r n; do
  glibc_soname "$n" || [[ $n == libssl.so.3 || $n == libcrypto.so.3 ]] || echo "$n"
done | xargs)
check_eq "bootstrap needs glibc's libraries (and OpenSSL's, when shipped shared) only" "" "$others"
echo "      bootstrap NEEDED: $(needed bootstrap | xargs)"
marks=$(strings -a bootstrap | grep -Eio 'nghttp2|gnutls|libidn2|libpsl|libssh2?|librtmp|brotli|zstd' |
  tr 'A-Z' 'a-z' | sort -u | xargs)
check_eq "bootstrap's strings: no mark of nghttp2, GnuTLS, libidn2, libpsl, libssh, librtmp, brotli, zstd" "" "$marks"

section "the libcurl linked into it"
prefix=$(sed -n 's/^TASKHOST_MIN_PREFIX:[A-Z]*=//p' "$PACKAGE_BUILD_DIR/CMakeCache.txt" 2>/dev/null)
if [ -z "$prefix" ]; then
  fail "the package build uses TASKHOST_MIN_PREFIX (scripts/build-min-deps.sh)" \
    "$PACKAGE_BUILD_DIR was configured without it (package.sh --system-libs?)"
else
  # CMake writes the paths inside the build dir relative to it.
  links() { # LIB: taskhost's link line names PREFIX/lib/LIB
    local words w
    read -r -a words <"$PACKAGE_BUILD_DIR/CMakeFiles/taskhost.dir/link.txt" || return 1
    for w in "${words[@]}"; do
      [[ $w == /* ]] || w=$PACKAGE_BUILD_DIR/$w
      [ "$w" = "$prefix/lib/$1" ] && return 0
    done
    return 1
  }
  check "taskhost's link line takes $prefix/lib/libcurl.a" links libcurl.a
  check "taskhost's link line takes $prefix/lib/libmicrohttpd.a" links libmicrohttpd.a
  cat >"$TMP/probe.c" <<'EOF'
#include <curl/curl.h>
#include <stdio.h>
int main(void) {
  curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  printf("version %s\nssl %s\nprotocols", v->version, v->ssl_version ? v->ssl_version : "none");
  for (const char *const *p = v->protocols; *p; p++) printf(" %s", *p);
  printf("\nlibz %s\nfeatures", v->libz_version ? v->libz_version : "none");
  static const struct { int bit; const char *name; } f[] = {
    {CURL_VERSION_SSL, "SSL"}, {CURL_VERSION_IPV6, "IPv6"}, {CURL_VERSION_ASYNCHDNS, "AsynchDNS"},
    {CURL_VERSION_HTTP2, "HTTP2"}, {CURL_VERSION_HTTP3, "HTTP3"}, {CURL_VERSION_IDN, "IDN"},
    {CURL_VERSION_PSL, "PSL"}, {CURL_VERSION_GSSAPI, "GSS-API"}, {CURL_VERSION_KERBEROS5, "Kerberos"},
    {CURL_VERSION_SPNEGO, "SPNEGO"}, {CURL_VERSION_NTLM, "NTLM"}, {CURL_VERSION_LIBZ, "libz"},
    {CURL_VERSION_BROTLI, "brotli"}, {CURL_VERSION_ZSTD, "zstd"}, {CURL_VERSION_HSTS, "HSTS"},
    {CURL_VERSION_ALTSVC, "alt-svc"}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    if (v->features & f[i].bit) printf(" %s", f[i].name);
  printf("\n");
  return 0;
}
EOF
  if cc -o "$TMP/probe" "$TMP/probe.c" -I"$prefix/include" "$prefix/lib/libcurl.a" \
    -Wl,-Bstatic -lssl -lcrypto -Wl,-Bdynamic -ldl -lpthread 2>"$TMP/probe.log"; then
    info=$("$TMP/probe")
    echo "$info" | sed 's/^/      /'
    check_eq "protocols: http and https, nothing else" "http https" \
      "$(sed -n 's/^protocols //p' <<<"$info")"
    check_match "TLS by OpenSSL 3" '^OpenSSL/3\.' "$(sed -n 's/^ssl //p' <<<"$info")"
    check_eq "features: SSL, IPv6, AsynchDNS (threaded resolver) only" "SSL IPv6 AsynchDNS" \
      "$(sed -n 's/^features //p' <<<"$info")"
    check_eq "no zlib" "none" "$(sed -n 's/^libz //p' <<<"$info")"
  else
    fail "a probe links against $prefix/lib/libcurl.a" "$(head -5 "$TMP/probe.log")"
  fi
fi

section "the minimal libraries' cache (scripts/build-min-deps.sh)"
if [ -n "$prefix" ]; then
  stamp=$prefix/.min-deps-stamp
  before=$(stat -c '%Y %s' "$prefix/lib/libcurl.a" "$prefix/lib/libmicrohttpd.a" "$stamp" 2>&1)
  out=$(bash "$SOURCE_DIR/scripts/build-min-deps.sh" --check "$prefix" 2>&1)
  check_eq "build-min-deps.sh --check on the package's prefix: exit 0 (up to date)" 0 $?
  check "build-min-deps.sh: up to date, nothing rebuilt" grep -q 'is up to date' <<<"$out"
  check_eq "build-min-deps.sh: the prefix untouched" "$before" \
    "$(stat -c '%Y %s' "$prefix/lib/libcurl.a" "$prefix/lib/libmicrohttpd.a" "$stamp" 2>&1)"
  # The native package's (with arm64 multiarch -dev packages installed beside them, a bare
  # name would answer for both).
  for dev in "libcurl4-openssl-dev:$(dpkg --print-architecture)" "libmicrohttpd-dev:$(dpkg --print-architecture)"; do
    check_eq "the stamp records the installed $dev's source version" \
      "source $(dpkg-query -W -f='${source:Package} ${source:Version}' "$dev")" \
      "$(grep -x "source $(dpkg-query -W -f='${source:Package}' "$dev") .*" "$stamp")"
  done
  check "the stamp records the SHA-256 of the .dsc files built from" \
    grep -Eq '^#   [0-9a-f]{64}  curl_.*\.dsc$' "$stamp"
fi

section "HTTPS on OpenSSL, from the unzipped bootstrap (env -i)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1 ||
  { fail "openssl makes a self-signed certificate"; finish; }
cat >"$TMP/stub.py" <<'EOF'
# A DynamoDB stub over TLS: every request answered 200 {} (GetItem: no item);
# logs "TLS-version X-Amz-Target" per request; prints its port once listening.
import http.server, ssl, sys
cert, key, log = sys.argv[1:4]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(log, "a") as f:
            f.write("%s %s\n" % (self.connection.version(), self.headers.get("X-Amz-Target")))
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
EOF
: >"$TMP/stub.log"
python3 "$TMP/stub.py" "$TMP/cert.pem" "$TMP/key.pem" "$TMP/stub.log" >"$TMP/stub.port" 2>"$TMP/stub.err" &
stub_pid=$!
for _ in $(seq 100); do [ -s "$TMP/stub.port" ] && break; sleep 0.05; done
port=$(cat "$TMP/stub.port")
[ -n "$port" ] || { fail "the TLS stub starts" "$(cat "$TMP/stub.err")"; finish; }

event v2 GET /tasks/0b5e2d4c-6a3f-4c1e-9d7a-2f8e1c3b4a5d >"$TMP/get.json"
# run_pkg [VAR=VALUE...]: ./bootstrap --local get.json under env -i; RC, OUT, ERR.
run_pkg() {
  (cd "$PKG" && env -i PATH=/usr/bin:/bin TASKHOST_STORE=dynamodb TABLE_NAME=tasks \
    AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    AWS_ENDPOINT_URL_DYNAMODB="https://127.0.0.1:$port" "$@" \
    ./bootstrap --local "$TMP/get.json") >"$TMP/out" 2>"$TMP/err"
  RC=$?
  OUT=$(cat "$TMP/out") ERR=$(cat "$TMP/err")
}

run_pkg SSL_CERT_FILE="$TMP/cert.pem"
check_eq "trusted certificate (SSL_CERT_FILE): exit 0" 0 "$RC"
check_eq "trusted certificate: GetItem over TLS → 404" 404 "$(jq -r '.statusCode' <<<"$OUT" 2>/dev/null)"
check_eq "trusted certificate: body" '{"message":"Task not found"}' "$(jq -c '.body | fromjson' <<<"$OUT" 2>/dev/null)"
check_match "the stub saw GetItem over TLS 1.2 or 1.3" '^TLSv1\.[23] DynamoDB_20120810\.GetItem$' \
  "$(head -1 "$TMP/stub.log")"
[ "$FAILED" -eq 0 ] || { echo "      stdout: ${OUT:0:300}"; echo "      stderr: ${ERR:0:600}"; }

: >"$TMP/stub.log"
run_pkg
check_match "system CA bundle: the self-signed certificate is refused (5xx)" '^5[0-9][0-9]$' \
  "$(jq -r '.statusCode' <<<"$OUT" 2>/dev/null)"
check "system CA bundle: the log says why (certificate)" grep -qi 'certificate' <<<"$OUT$ERR"
check_eq "system CA bundle: no request reached the stub" "" "$(cat "$TMP/stub.log")"

kill "$stub_pid" 2>/dev/null
wait "$stub_pid" 2>/dev/null
finish
