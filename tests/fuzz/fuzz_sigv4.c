/* libFuzzer target: SigV4 canonicalisation and signing (th_sigv4_sign).
 *
 * Input: byte 0 = option flags (NO_NORMALIZE, NO_DOUBLE_ENCODE, SIGN_BODY,
 * OMIT_TOKEN, PRESIGN; bit 5 a session token; bit 6 payload_hash
 * "UNSIGNED-PAYLOAD"; bit 7 the DynamoDB method POST instead of the method
 * line); then lines: method, path, query, and "name:value" header lines up to
 * an empty line; the rest is the payload. A Host header is added unless one
 * is given. Properties on success:
 *   - the signature is 64 lower-case hex digits; signing again gives the same
 *     result (pure, no hidden state);
 *   - the canonical request has exactly its 6 lines (method, path, query,
 *     headers..., blank, signed headers, hash) and no control byte but '\n';
 *   - the canonical path and query hold only unreserved characters, '/',
 *     '=', '&' and %XX escapes;
 *   - the canonical query is idempotent: signing with it as the raw query
 *     gives the same canonical query (pre-encoded input == raw input).
 * Refusals are fine (TH_ERR_INVALID / TH_ERR_TOO_LARGE) but must leave *out
 * untouched and give a `why`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sigv4.h"

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_sigv4: %s\n%s\n", what, detail ? detail : "");
  abort();
}

/* query: the canonical query ('=' and '&' allowed); lower_hex: %xx may use
 * lower-case hex (the path under NO_DOUBLE_ENCODE keeps the caller's escapes
 * as they are). */
static int canonical_chars_ok(const char *s, size_t n, int query, int lower_hex) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~')
      continue;
    if (c == '/' && !query)
      continue;
    if ((c == '=' || c == '&') && query)
      continue;
    if (c == '%') {
      /* %XX with upper-case hex */
      if (i + 2 >= n)
        return 0;
      for (int k = 1; k <= 2; k++) {
        unsigned char h = (unsigned char)s[i + k];
        if (!((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F') ||
              (lower_hex && h >= 'a' && h <= 'f')))
          return 0;
      }
      i += 2;
      continue;
    }
    return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  unsigned flags_byte = data[0];
  char *copy = malloc(size);
  if (!copy)
    return 0;
  memcpy(copy, data + 1, size - 1);
  char *p = copy, *end = copy + size - 1;

  /* lines; a line is cut at '\n' and must not hold NUL for C strings: a NUL
   * ends the field early, which is how a C caller would pass it */
  char *lines[3 + TH_SIGV4_MAX_HEADERS + 2];
  size_t nlines = 0;
  char *payload = end;
  while (p < end && nlines < TH_ARRAY_LEN(lines)) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) {
      /* last line: needs a NUL: copy it */
      break;
    }
    *nl = '\0';
    if (nl == p && nlines >= 3) {
      payload = nl + 1;
      break;
    }
    lines[nlines++] = p;
    p = nl + 1;
    payload = p;
  }
  if (nlines < 3) {
    free(copy);
    return 0;
  }
  size_t payload_len = (size_t)(end - payload);

  th_sigv4_header headers[TH_SIGV4_MAX_HEADERS + 4];
  size_t nh = 0;
  int has_host = 0;
  for (size_t i = 3; i < nlines && nh < TH_ARRAY_LEN(headers) - 1; i++) {
    char *colon = strchr(lines[i], ':');
    if (!colon)
      continue;
    *colon = '\0';
    headers[nh].name = lines[i];
    headers[nh].value = colon + 1;
    if (strcasecmp(lines[i], "host") == 0)
      has_host = 1;
    nh++;
  }
  if (!has_host) {
    headers[nh].name = "Host";
    headers[nh].value = "dynamodb.us-east-1.amazonaws.com";
    nh++;
  }

  unsigned flags = flags_byte & 0x1f;
  th_sigv4_request req = {.method = (flags_byte & 0x80) ? "POST" : lines[0],
                          .path = lines[1],
                          .query = lines[2],
                          .headers = headers,
                          .nheaders = nh,
                          .payload = payload,
                          .payload_len = payload_len,
                          .payload_hash = (flags_byte & 0x40) ? "UNSIGNED-PAYLOAD" : NULL};
  th_sigv4_credentials cred = {.access_key_id = "AKIDEXAMPLE",
                               .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                               .session_token = (flags_byte & 0x20) ? "token/with+chars=" : NULL};
  th_sigv4_params params = {.region = "us-east-1",
                            .service = "dynamodb",
                            .time = {2015, 8, 30, 12, 36, 0},
                            .flags = flags,
                            .expires = 300};
  th_sigv4_result out, again;
  memset(&out, 0xA5, sizeof out);
  th_sigv4_result untouched;
  memcpy(&untouched, &out, sizeof out);
  const char *why = NULL;
  th_result r = th_sigv4_sign(&req, &cred, &params, &out, &why);
  if (r != TH_OK) {
    if (r != TH_ERR_INVALID && r != TH_ERR_TOO_LARGE)
      fail("unexpected result", th_result_name(r));
    if (memcmp(&out, &untouched, sizeof out) != 0)
      fail("a refusal wrote *out", why);
    if (!why)
      fail("a refusal without why", NULL);
    free(copy);
    return 0;
  }
  if (strlen(out.signature) != 64 || strspn(out.signature, "0123456789abcdef") != 64)
    fail("signature is not 64 hex digits", out.signature);
  const char *cr = out.canonical_request;
  size_t crlen = strlen(cr);
  for (size_t i = 0; i < crlen; i++) {
    unsigned char c = (unsigned char)cr[i];
    if ((c < 0x20 && c != '\n') || c == 0x7f)
      fail("control byte in the canonical request", cr);
  }
  /* method \n path \n query \n */
  const char *l1 = strchr(cr, '\n');
  const char *l2 = l1 ? strchr(l1 + 1, '\n') : NULL;
  const char *l3 = l2 ? strchr(l2 + 1, '\n') : NULL;
  if (!l3)
    fail("canonical request has fewer than 3 lines", cr);
  if (!canonical_chars_ok(l1 + 1, (size_t)(l2 - l1 - 1), 0,
                          (flags & TH_SIGV4_NO_DOUBLE_ENCODE) != 0))
    fail("canonical path has a character that is not encoded", cr);
  if (!canonical_chars_ok(l2 + 1, (size_t)(l3 - l2 - 1), 1, 0))
    fail("canonical query has a character that is not encoded", cr);
  /* headers end with an empty line, then signed headers, then the hash */
  const char *blank = strstr(l3, "\n\n");
  if (!blank)
    fail("no blank line after the canonical headers", cr);
  const char *sh = blank + 2;
  const char *hash = strchr(sh, '\n');
  if (!hash || strchr(hash + 1, '\n'))
    fail("canonical request does not end with signed headers and the hash", cr);

  /* pure: the same input signs the same */
  memset(&again, 0, sizeof again);
  if (th_sigv4_sign(&req, &cred, &params, &again, &why) != TH_OK)
    fail("the second signing refused", why);
  if (strcmp(again.signature, out.signature) != 0 ||
      strcmp(again.canonical_request, out.canonical_request) != 0)
    fail("two signings differ", again.canonical_request);
  th_sigv4_result_free(&again);

  /* the canonical query, given as the raw query, canonicalises to itself */
  if (!(flags & TH_SIGV4_PRESIGN)) {
    size_t qn = (size_t)(l3 - l2 - 1);
    char *q = malloc(qn + 1);
    memcpy(q, l2 + 1, qn);
    q[qn] = '\0';
    th_sigv4_request req2 = req;
    req2.query = q;
    memset(&again, 0, sizeof again);
    if (th_sigv4_sign(&req2, &cred, &params, &again, &why) != TH_OK)
      fail("the canonical query is refused as a raw query", q);
    const char *m1 = strchr(again.canonical_request, '\n');
    const char *m2 = m1 ? strchr(m1 + 1, '\n') : NULL;
    const char *m3 = m2 ? strchr(m2 + 1, '\n') : NULL;
    if (!m3 || (size_t)(m3 - m2 - 1) != qn || memcmp(m2 + 1, q, qn) != 0)
      fail("the canonical query is not idempotent", q);
    th_sigv4_result_free(&again);
    free(q);
  }
  th_sigv4_result_free(&out);
  th_sigv4_result_free(&out); /* safe on a freed result */
  free(copy);
  return 0;
}
