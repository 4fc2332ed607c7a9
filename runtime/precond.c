/* precond — see precond.h. */
#include "precond.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OWS(c) ((c) == ' ' || (c) == '\t')

/* etagc (RFC 9110 §8.8.3): %x21 / %x23-7E / obs-text. */
static int etagc(unsigned char c) { return c == 0x21 || (c >= 0x23 && c != 0x7f); }

/* Reads one entity-tag at *p: sets *weak, the opaque tag's text [*t, *t+*n)
 * (without quotes) and moves *p past it. 0 when it is not one. */
static int read_etag(const char **p, int *weak, const char **t, size_t *n) {
  const char *s = *p;
  *weak = 0;
  if (s[0] == 'W' && s[1] == '/') {
    *weak = 1;
    s += 2;
  }
  if (*s != '"')
    return 0;
  const char *start = ++s;
  while (*s && *s != '"') {
    if (!etagc((unsigned char)*s))
      return 0;
    s++;
  }
  if (*s != '"')
    return 0;
  *t = start;
  *n = (size_t)(s - start);
  *p = s + 1;
  return 1;
}

/* The version an opaque tag names: decimal digits, 1..18 of them, not 0. */
static int tag_version(const char *t, size_t n, long long *v) {
  if (n == 0 || n > 18 || t[0] == '0')
    return 0;
  long long x = 0;
  for (size_t i = 0; i < n; i++) {
    if (t[i] < '0' || t[i] > '9')
      return 0;
    x = x * 10 + (t[i] - '0');
  }
  *v = x;
  return 1;
}

/* Walks a "*" or #entity-tag list (empty elements allowed, as #rule says).
 * Calls each(tag) for every tag; returns 2 for "*", 1 for a list, 0 when
 * malformed. */
typedef int (*tag_fn)(void *ud, int weak, const char *t, size_t n);
static int walk(const char *value, tag_fn each, void *ud) {
  const char *p = value;
  while (OWS(*p))
    p++;
  if (*p == '*') {
    p++;
    while (OWS(*p))
      p++;
    return *p ? 0 : 2;
  }
  int tags = 0;
  for (;;) {
    while (OWS(*p) || *p == ',')
      p++;
    if (!*p)
      break;
    int weak;
    const char *t;
    size_t n;
    if (!read_etag(&p, &weak, &t, &n) || !each(ud, weak, t, n))
      return 0;
    tags++;
    while (OWS(*p))
      p++;
    if (*p && *p != ',')
      return 0;
  }
  return tags ? 1 : 0;
}

static int add_match(void *ud, int weak, const char *t, size_t n) {
  th_store_match *m = ud;
  long long v;
  if (weak || !tag_version(t, n, &v))
    return 1; /* can never match: left out */
  if (m->n >= TH_STORE_MAX_MATCH)
    return 0;
  m->versions[m->n++] = v;
  return 1;
}

th_result th_precond_if_match(const char *value, th_store_match *m) {
  th_store_match out = {.active = 1};
  int kind = value ? walk(value, add_match, &out) : 0;
  if (!kind)
    return TH_ERR_INVALID;
  out.any = kind == 2;
  *m = out;
  return TH_OK;
}

typedef struct none_match {
  long long version;
  int hit;
} none_match;

static int test_none(void *ud, int weak, const char *t, size_t n) {
  none_match *nm = ud;
  long long v;
  (void)weak; /* weak comparison: W/ is ignored */
  if (tag_version(t, n, &v) && v == nm->version)
    nm->hit = 1;
  return 1;
}

int th_precond_none_match(const char *value, long long version) {
  none_match nm = {version, 0};
  int kind = value ? walk(value, test_none, &nm) : 0;
  return kind == 2 || (kind == 1 && nm.hit);
}

void th_precond_etag(long long version, char *out, size_t outlen) {
  snprintf(out, outlen, "\"%lld\"", version);
}

static int key_char(unsigned char c) { return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\'; }

th_result th_idem_parse_key(const char *value, char *out) {
  if (!value)
    return TH_ERR_INVALID;
  const char *s = value, *e = value + strlen(value);
  while (OWS(*s))
    s++;
  while (e > s && OWS(e[-1]))
    e--;
  if (e - s >= 2 && *s == '"' && e[-1] == '"') {
    s++;
    e--;
  }
  size_t n = (size_t)(e - s);
  if (n == 0 || n > TH_IDEM_MAX_KEY)
    return TH_ERR_INVALID;
  for (const char *p = s; p < e; p++)
    if (!key_char((unsigned char)*p))
      return TH_ERR_INVALID;
  memcpy(out, s, n);
  out[n] = '\0';
  return TH_OK;
}

th_result th_idem_fingerprint(const char *method, const char *path, const char *body,
                              size_t body_len, char *out) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  th_result r = TH_ERR_INTERNAL;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
      EVP_DigestUpdate(ctx, method, strlen(method) + 1) != 1 ||
      EVP_DigestUpdate(ctx, path, strlen(path) + 1) != 1 ||
      (body_len && EVP_DigestUpdate(ctx, body, body_len) != 1) ||
      EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
    goto out;
  for (unsigned int i = 0; i < mdlen; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
  r = TH_OK;
out:
  EVP_MD_CTX_free(ctx);
  return r;
}
