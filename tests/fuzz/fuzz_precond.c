/* libFuzzer target: the header grammar of runtime/precond.c (If-Match,
 * If-None-Match, Idempotency-Key) and the request fingerprint.
 *
 * The input, as a C string (cut at the first NUL, as a header value reaches
 * the host), is read as each header. Properties checked:
 *   - If-Match: a parsed list holds at most TH_STORE_MAX_MATCH versions, each
 *     >= 1, none with "*"; every version it matches is matched by the same
 *     text as If-None-Match too (weak comparison accepts whatever strong
 *     comparison does);
 *   - the ETag of a version, read back as If-Match, is exactly that version;
 *   - Idempotency-Key: a key that parses is 1..255 visible ASCII characters
 *     without '"' or '\\', and reads back the same quoted and bare;
 *   - the fingerprint is 64 lower-case hex digits and the same twice. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "precond.h"

static void fail(const char *what, const char *text) {
  fprintf(stderr, "fuzz_precond: %s [%s]\n", what, text ? text : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  th_store_match m;
  if (th_precond_if_match(text, &m) == TH_OK) {
    if (!m.active || m.n < 0 || m.n > TH_STORE_MAX_MATCH || (m.any && m.n))
      fail("If-Match: an impossible condition", text);
    for (int i = 0; i < m.n; i++) {
      if (m.versions[i] < 1)
        fail("If-Match: a version below 1", text);
      if (!th_precond_none_match(text, m.versions[i]))
        fail("a version If-Match accepts is not one If-None-Match accepts", text);
    }
  }
  unsigned long long u = 0;
  for (size_t i = 0; i < size && i < 8; i++)
    u = u * 256 + data[i];
  long long v = (long long)(u % 999999999999999999ULL) + 1; /* 1..10^18 - 1: 18 digits at most */
  char etag[32];
  th_precond_etag(v, etag, sizeof etag);
  if (th_precond_if_match(etag, &m) != TH_OK || m.any || m.n != 1 || m.versions[0] != v)
    fail("an ETag does not read back as its version", etag);

  char key[TH_IDEM_MAX_KEY + 1], again[TH_IDEM_MAX_KEY + 1], quoted[TH_IDEM_MAX_KEY + 3];
  if (th_idem_parse_key(text, key) == TH_OK) {
    size_t n = strlen(key);
    if (n < 1 || n > TH_IDEM_MAX_KEY)
      fail("Idempotency-Key: a key of a wrong length", text);
    for (size_t i = 0; i < n; i++)
      if (key[i] < 0x21 || key[i] > 0x7e || key[i] == '"' || key[i] == '\\')
        fail("Idempotency-Key: a character outside the key's", text);
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    if (th_idem_parse_key(quoted, again) != TH_OK || strcmp(again, key) != 0)
      fail("Idempotency-Key: the quoted key reads differently", text);
    if (th_idem_parse_key(key, again) != TH_OK || strcmp(again, key) != 0)
      fail("Idempotency-Key: the bare key reads differently", text);
  }

  char fp1[TH_IDEM_FINGERPRINT_LEN], fp2[TH_IDEM_FINGERPRINT_LEN];
  if (th_idem_fingerprint("POST", "/tasks", (const char *)data, size, fp1) != TH_OK ||
      th_idem_fingerprint("POST", "/tasks", (const char *)data, size, fp2) != TH_OK ||
      strlen(fp1) != 64 || strspn(fp1, "0123456789abcdef") != 64 || strcmp(fp1, fp2) != 0)
    fail("fingerprint: not 64 hex digits, or not the same twice", text);
  free(text);
  return 0;
}
