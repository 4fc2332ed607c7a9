/* sigv4 — see sigv4.h. The steps follow the AWS documentation of Signature
 * Version 4: canonical request → string to sign → signing key → signature.
 * Every intermediate text is built in a th_buf capped at
 * TH_SIGV4_MAX_CANONICAL, so no input can make us allocate without bound.
 * Where the documentation is silent (path normalisation, whitespace folding,
 * the headers left unsigned) we do what botocore does, and a test checks
 * that we agree with it request for request.
 */
#define TH_SIGV4_TESTING
#include "sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define MAX_METHOD 32
#define MAX_SCOPE_PART 64
#define HASH_LEN 32

static const char hexdigits[] = "0123456789ABCDEF";

static int is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 9110 tchar: what a method or a header name may be made of. */
static int is_tchar(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The whitespace a header value may fold: SP HT LF VT FF CR. */
static int is_fold_space(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static void to_hex(const unsigned char *in, size_t n, char *out) {
  static const char lower[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = lower[in[i] >> 4];
    out[2 * i + 1] = lower[in[i] & 15];
  }
  out[2 * n] = '\0';
}

/* Length of s if it is a non-empty run of tchar no longer than max, else 0. */
static size_t token_len(const char *s, size_t max) {
  size_t n = 0;
  if (!s)
    return 0;
  while (s[n]) {
    if (n >= max || !is_tchar((unsigned char)s[n]))
      return 0;
    n++;
  }
  return n;
}

/* Every visible ASCII byte, 0x21..0x7e. */
static const char VISIBLE_ASCII[] = "!\"#$%&'()*+,-./0123456789:;<=>?@"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                                    "abcdefghijklmnopqrstuvwxyz{|}~";

/* Non-empty, at most max bytes, every byte visible ASCII (0x21..0x7e) and
 * none of `forbid`. strspn, not a byte loop: the session token (~850 bytes)
 * is checked on every signing, and this was ~10 K instructions of it. */
static int visible_text(const char *s, size_t max, const char *forbid) {
  if (!s || !*s)
    return 0;
  size_t n = strnlen(s, max + 1);
  if (n > max || strspn(s, VISIBLE_ASCII) != n)
    return 0;
  return !*forbid || strcspn(s, forbid) == n;
}

/* Region and service go into the scope between '/': keep them plain. */
static int scope_part(const char *s) {
  size_t n = 0;
  if (!s || !*s)
    return 0;
  for (; s[n]; n++) {
    unsigned char c = (unsigned char)s[n];
    if (n >= MAX_SCOPE_PART ||
        !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_' || c == '.'))
      return 0;
  }
  return 1;
}

static int leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Writes v (0 <= v < 10^n) as exactly n decimal digits, no NUL. */
static void put_digits(char *p, int v, int n) {
  for (int i = n - 1; i >= 0; i--, v /= 10)
    p[i] = (char)('0' + v % 10);
}

static int valid_time(const th_sigv4_time *t) {
  static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (t->year < 1970 || t->year > 9999 || t->month < 1 || t->month > 12 || t->day < 1)
    return 0;
  int dim = mdays[t->month - 1] + (t->month == 2 && leap(t->year));
  return t->day <= dim && t->hour >= 0 && t->hour <= 23 && t->minute >= 0 &&
         t->minute <= 59 && t->second >= 0 && t->second <= 59;
}

th_result th_sigv4_time_from_unix(int64_t t, th_sigv4_time *out) {
  /* 9999-12-31T23:59:59Z */
  if (t < 0 || t > INT64_C(253402300799))
    return TH_ERR_INVALID;
  int64_t days = t / 86400, secs = t % 86400;
  /* civil_from_days (H. Hinnant), valid for the whole range above. */
  int64_t z = days + 719468;
  int64_t era = z / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  int64_t y = yoe + era * 400 + (m <= 2);
  out->year = (int)y;
  out->month = (int)m;
  out->day = (int)d;
  out->hour = (int)(secs / 3600);
  out->minute = (int)(secs / 60 % 60);
  out->second = (int)(secs % 60);
  return TH_OK;
}

th_result th_sigv4_uri_encode(th_buf *out, const char *s, size_t n, int keep_slash) {
  th_result r = TH_OK;
  for (size_t i = 0; i < n && r == TH_OK; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      r = th_buf_append(out, &s[i], 1);
    } else {
      char esc[3] = {'%', hexdigits[c >> 4], hexdigits[c & 15]};
      r = th_buf_append(out, esc, 3);
    }
  }
  return r;
}

/* Like th_sigv4_uri_encode with '/' kept, but a valid %XX is copied as it
 * is: for paths the caller has already encoded (S3). */
static th_result encode_keep_escapes(th_buf *out, const char *s, size_t n) {
  th_result r = TH_OK;
  size_t i = 0;
  while (i < n && r == TH_OK) {
    if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
        hexval((unsigned char)s[i + 2]) >= 0) {
      r = th_buf_append(out, &s[i], 3);
      i += 3;
    } else {
      r = th_sigv4_uri_encode(out, &s[i], 1, 1);
      i++;
    }
  }
  return r;
}

/* Percent-decodes n bytes into out ('+' is not a space in SigV4). */
static th_result uri_decode(th_buf *out, const char *s, size_t n) {
  th_result r = TH_OK;
  for (size_t i = 0; i < n && r == TH_OK; i++) {
    if (s[i] != '%') {
      r = th_buf_append(out, &s[i], 1);
      continue;
    }
    int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
    int lo = hi >= 0 ? hexval((unsigned char)s[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      return TH_ERR_INVALID;
    char c = (char)(hi * 16 + lo);
    r = th_buf_append(out, &c, 1);
    i += 2;
  }
  return r;
}

th_result th_sigv4_normalize_path(th_buf *out, const char *path, size_t n) {
  th_result r = TH_OK;
  size_t nseg = 0;
  /* (start, length) of each kept segment; a path of n bytes has at most
   * n / 2 + 1 non-empty segments. */
  size_t *seg = malloc(sizeof *seg * 2 * (n / 2 + 1));
  if (!seg)
    return TH_ERR_NOMEM;
  for (size_t i = 0; i <= n;) {
    size_t j = i;
    while (j < n && path[j] != '/')
      j++;
    size_t len = j - i;
    if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
      if (nseg)
        nseg--;
    } else if (len && !(len == 1 && path[i] == '.')) {
      seg[2 * nseg] = i;
      seg[2 * nseg + 1] = len;
      nseg++;
    }
    i = j + 1;
  }
  if (n && path[0] == '/')
    r = th_buf_append(out, "/", 1);
  for (size_t k = 0; k < nseg && r == TH_OK; k++) {
    if (k)
      r = th_buf_append(out, "/", 1);
    if (r == TH_OK)
      r = th_buf_append(out, path + seg[2 * k], seg[2 * k + 1]);
  }
  if (r == TH_OK && n && path[n - 1] == '/' && nseg)
    r = th_buf_append(out, "/", 1);
  free(seg);
  return r;
}

th_result th_sigv4_canonical_path(th_buf *out, const char *path, unsigned flags) {
  th_result r = TH_OK;
  th_buf norm;
  th_buf_init(&norm, TH_SIGV4_MAX_PATH);
  if (!path || !*path)
    path = "/";
  size_t n = strlen(path);
  if (n > TH_SIGV4_MAX_PATH)
    return TH_ERR_TOO_LARGE;
  if (path[0] != '/')
    return TH_ERR_INVALID;
  if (!(flags & TH_SIGV4_NO_NORMALIZE)) {
    r = th_sigv4_normalize_path(&norm, path, n);
    if (r != TH_OK)
      goto done;
    path = norm.data;
    n = norm.len;
  }
  if (flags & TH_SIGV4_NO_DOUBLE_ENCODE)
    r = encode_keep_escapes(out, path, n);
  else
    r = th_sigv4_uri_encode(out, path, n, 1);
done:
  th_buf_free(&norm);
  return r;
}

/* One query parameter, both parts encoded, as offsets into a store (the
 * store moves while it grows) and then as pointers for sorting. */
typedef struct qparam {
  size_t koff, voff;
  const char *key, *value;
} qparam;

typedef struct qlist {
  qparam *v;
  size_t n, cap;
  th_buf store;
} qlist;

static th_result qlist_push(qlist *q, size_t koff, size_t voff) {
  if (q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 16;
    qparam *v = realloc(q->v, sizeof *v * cap);
    if (!v)
      return TH_ERR_NOMEM;
    q->v = v;
    q->cap = cap;
  }
  q->v[q->n].koff = koff;
  q->v[q->n].voff = voff;
  q->n++;
  return TH_OK;
}

/* Adds a parameter given decoded (raw bytes) key and value. */
static th_result qlist_add(qlist *q, const char *k, size_t klen, const char *v, size_t vlen) {
  size_t koff = q->store.len;
  th_result r = th_sigv4_uri_encode(&q->store, k, klen, 0);
  if (r == TH_OK)
    r = th_buf_append(&q->store, "", 1);
  size_t voff = q->store.len;
  if (r == TH_OK)
    r = th_sigv4_uri_encode(&q->store, v, vlen, 0);
  if (r == TH_OK)
    r = th_buf_append(&q->store, "", 1);
  if (r == TH_OK)
    r = qlist_push(q, koff, voff);
  return r;
}

/* Splits a raw query into decoded parameters and adds them. */
static th_result qlist_parse(qlist *q, const char *query) {
  th_result r = TH_OK;
  th_buf k, v;
  th_buf_init(&k, TH_SIGV4_MAX_QUERY);
  th_buf_init(&v, TH_SIGV4_MAX_QUERY);
  size_t n = query ? strlen(query) : 0;
  if (n > TH_SIGV4_MAX_QUERY)
    return TH_ERR_TOO_LARGE;
  for (size_t i = 0; i < n && r == TH_OK;) {
    size_t end = i;
    while (end < n && query[end] != '&')
      end++;
    if (end > i) {
      const char *eq = memchr(query + i, '=', end - i);
      size_t klen = eq ? (size_t)(eq - (query + i)) : end - i;
      th_buf_reset(&k);
      th_buf_reset(&v);
      r = th_buf_append(&k, "", 0); /* non-NULL data even when empty */
      if (r == TH_OK)
        r = th_buf_append(&v, "", 0);
      if (r == TH_OK)
        r = uri_decode(&k, query + i, klen);
      if (r == TH_OK && eq)
        r = uri_decode(&v, eq + 1, end - i - klen - 1);
      if (r == TH_OK)
        r = qlist_add(q, k.data, k.len, v.data, v.len);
    }
    i = end + 1;
  }
  th_buf_free(&k);
  th_buf_free(&v);
  return r;
}

static int qparam_cmp(const void *a, const void *b) {
  const qparam *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : strcmp(x->value, y->value);
}

/* Sorts by encoded key, then encoded value, and writes k=v&k=v. */
static th_result qlist_write(qlist *q, th_buf *out) {
  th_result r = TH_OK;
  for (size_t i = 0; i < q->n; i++) {
    q->v[i].key = q->store.data + q->v[i].koff;
    q->v[i].value = q->store.data + q->v[i].voff;
  }
  if (q->n > 1)
    qsort(q->v, q->n, sizeof *q->v, qparam_cmp);
  r = th_buf_append(out, "", 0);
  for (size_t i = 0; i < q->n && r == TH_OK; i++) {
    if (i)
      r = th_buf_append(out, "&", 1);
    if (r == TH_OK)
      r = th_buf_append_str(out, q->v[i].key);
    if (r == TH_OK)
      r = th_buf_append(out, "=", 1);
    if (r == TH_OK)
      r = th_buf_append_str(out, q->v[i].value);
  }
  return r;
}

static void qlist_init(qlist *q) {
  q->v = NULL;
  q->n = q->cap = 0;
  th_buf_init(&q->store, TH_SIGV4_MAX_CANONICAL);
}

static void qlist_free(qlist *q) {
  free(q->v);
  th_buf_free(&q->store);
}

th_result th_sigv4_canonical_query(th_buf *out, const char *query) {
  qlist q;
  qlist_init(&q);
  th_result r = qlist_parse(&q, query);
  if (r == TH_OK)
    r = qlist_write(&q, out);
  qlist_free(&q);
  return r;
}

th_result th_sigv4_fold_value(th_buf *out, const char *value) {
  th_result r = th_buf_append(out, "", 0);
  const unsigned char *p = (const unsigned char *)value;
  size_t n = strlen(value);
  if (n > TH_SIGV4_MAX_VALUE)
    return TH_ERR_TOO_LARGE;
  int pending = 0; /* whitespace seen since the last kept byte */
  int started = 0;
  for (size_t i = 0; i < n && r == TH_OK; i++) {
    if (is_fold_space(p[i])) {
      pending = 1;
      continue;
    }
    if (p[i] < 0x20 || p[i] == 0x7f)
      return TH_ERR_INVALID;
    if (pending && started)
      r = th_buf_append(out, " ", 1);
    if (r == TH_OK)
      r = th_buf_append(out, &p[i], 1);
    pending = 0;
    started = 1;
  }
  return r;
}

/* One header to sign: lower-cased name and folded value (offsets into a
 * store, then pointers), and its position in the request. */
typedef struct hentry {
  size_t noff, voff;
  const char *name, *value;
  size_t pos;
} hentry;

static int hentry_cmp(const void *a, const void *b) {
  const hentry *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c)
    return c;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Left unsigned, as the AWS SDKs do: hops and proxies rewrite them. */
static const char *const unsigned_headers[] = {"user-agent", "expect", "x-amzn-trace-id"};

static int in_list(const char *name, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (list[i] && strcmp(name, list[i]) == 0)
      return 1;
  return 0;
}

/* SHA-256 fetched once: EVP_sha256() and the one-shot HMAC()/EVP_Digest()
 * look the algorithm up in the provider store on every call, which costs
 * more than hashing a DynamoDB request. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

static const EVP_MD *sha256(void) {
  pthread_once(&sha256_once, sha256_fetch);
  return sha256_md ? sha256_md : EVP_sha256();
}

/* SHA-256 of up to two pieces, on a reusable context. */
static th_result digest2(EVP_MD_CTX *ctx, const void *a, size_t an, const void *b, size_t bn,
                         unsigned char out[HASH_LEN]) {
  unsigned int len = 0;
  if (!EVP_DigestInit_ex(ctx, sha256(), NULL) || (an && !EVP_DigestUpdate(ctx, a, an)) ||
      (bn && !EVP_DigestUpdate(ctx, b, bn)) || !EVP_DigestFinal_ex(ctx, out, &len) ||
      len != HASH_LEN)
    return TH_ERR_INTERNAL;
  return TH_OK;
}

/* HMAC-SHA256 (RFC 2104) over the fetched digest. */
static th_result hmac(const void *key, size_t key_len, const char *msg, size_t msg_len,
                      unsigned char out[HASH_LEN]) {
  unsigned char k[64], pad[64], inner[HASH_LEN];
  th_result r = TH_ERR_INTERNAL;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx)
    return TH_ERR_NOMEM;
  memset(k, 0, sizeof k);
  if (key_len > sizeof k) {
    if (digest2(ctx, key, key_len, NULL, 0, k) != TH_OK)
      goto done;
  } else {
    memcpy(k, key, key_len);
  }
  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = k[i] ^ 0x36;
  if (digest2(ctx, pad, sizeof pad, msg, msg_len, inner) != TH_OK)
    goto done;
  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = k[i] ^ 0x5c;
  r = digest2(ctx, pad, sizeof pad, inner, sizeof inner, out);
done:
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(inner, sizeof inner);
  EVP_MD_CTX_free(ctx);
  return r;
}

th_result th_sigv4_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                               unsigned char out[TH_SIGV4_KEY_LEN]) {
  return hmac(key, key_len, msg, msg_len, out);
}

static th_result sha256_hex(const void *data, size_t n, char hex[2 * HASH_LEN + 1]) {
  unsigned char md[HASH_LEN];
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx)
    return TH_ERR_NOMEM;
  th_result r = digest2(ctx, data, n, NULL, 0, md);
  EVP_MD_CTX_free(ctx);
  if (r == TH_OK)
    to_hex(md, HASH_LEN, hex);
  return r;
}

th_result th_sigv4_signing_key(const char *secret, const char *date, const char *region,
                               const char *service, unsigned char out[TH_SIGV4_KEY_LEN]) {
  th_result r;
  char seed[4 + TH_SIGV4_MAX_CREDENTIAL + 1];
  unsigned char k1[HASH_LEN], k2[HASH_LEN];
  size_t slen = secret ? strlen(secret) : 0;
  if (!slen || slen > TH_SIGV4_MAX_CREDENTIAL || !date || strlen(date) != 8 || !region || !service)
    return TH_ERR_INVALID;
  memcpy(seed, "AWS4", 4);
  memcpy(seed + 4, secret, slen);
  if ((r = hmac(seed, 4 + slen, date, 8, k1)) == TH_OK &&
      (r = hmac(k1, HASH_LEN, region, strlen(region), k2)) == TH_OK &&
      (r = hmac(k2, HASH_LEN, service, strlen(service), k1)) == TH_OK)
    r = hmac(k1, HASH_LEN, "aws4_request", 12, out);
  OPENSSL_cleanse(seed, sizeof seed);
  OPENSSL_cleanse(k1, sizeof k1);
  OPENSSL_cleanse(k2, sizeof k2);
  return r;
}

th_result th_sigv4_key_update(th_sigv4_key *k, const char *secret, const char *region,
                              const char *service, const th_sigv4_time *t) {
  char date[9];
  th_result r;
  if (!valid_time(t)) {
    OPENSSL_cleanse(k, sizeof *k);
    return TH_ERR_INVALID;
  }
  put_digits(date, t->year, 4);
  put_digits(date + 4, t->month, 2);
  put_digits(date + 6, t->day, 2);
  date[8] = '\0';
  if (strcmp(k->date, date) == 0)
    return TH_OK;
  OPENSSL_cleanse(k, sizeof *k);
  if ((r = th_sigv4_signing_key(secret, date, region, service, k->key)) != TH_OK) {
    OPENSSL_cleanse(k, sizeof *k);
    return r;
  }
  memcpy(k->date, date, sizeof date);
  return TH_OK;
}

/* kSigning — the caller's when it is for this date, else derived — then
 * the signature over the string to sign. */
static th_result sign_sts(const char *secret, const th_sigv4_key *given, const char *date,
                          const char *region, const char *service, const th_buf *sts,
                          char sig[2 * HASH_LEN + 1]) {
  th_result r = TH_OK;
  unsigned char key[HASH_LEN], mac[HASH_LEN];
  if (given && strcmp(given->date, date) == 0)
    memcpy(key, given->key, HASH_LEN);
  else
    r = th_sigv4_signing_key(secret, date, region, service, key);
  if (r == TH_OK && (r = hmac(key, HASH_LEN, sts->data, sts->len, mac)) == TH_OK)
    to_hex(mac, HASH_LEN, sig);
  OPENSSL_cleanse(key, sizeof key);
  return r;
}

/* A name/value the result will own: value offset into the result store. */
typedef struct added {
  const char *name;
  size_t off;
} added;

static th_result add_value(th_buf *store, added *list, size_t *n, const char *name,
                           const char *value, int encode) {
  list[*n].name = name;
  list[*n].off = store->len;
  (*n)++;
  th_result r = encode ? th_sigv4_uri_encode(store, value, strlen(value), 0)
                       : th_buf_append_str(store, value);
  return r == TH_OK ? th_buf_append(store, "", 1) : r;
}

#define FAIL(code, text)                                                       \
  do {                                                                         \
    r = (code);                                                                \
    msg = (text);                                                              \
    goto done;                                                                 \
  } while (0)
#define TRY(expr, text)                                                        \
  do {                                                                         \
    if ((r = (expr)) != TH_OK) {                                               \
      msg = (text);                                                            \
      goto done;                                                               \
    }                                                                          \
  } while (0)

th_result th_sigv4_sign(const th_sigv4_request *req, const th_sigv4_credentials *cred,
                        const th_sigv4_params *params, th_sigv4_result *out,
                        const char **why) {
  th_result r = TH_ERR_INVALID;
  const char *msg = "invalid argument";
  th_buf creq, sts, hstore, store, auth, signed_names, query_out;
  qlist q;
  hentry *hs = NULL;
  size_t nh = 0;
  char amz_date[17], date[9], scope[3 * MAX_SCOPE_PART + 32], payload_hash[129];
  char sig[2 * HASH_LEN + 1], creq_hash[2 * HASH_LEN + 1], expires[24];
  added hdr_added[TH_SIGV4_MAX_ADDED], par_added[TH_SIGV4_MAX_ADDED];
  size_t n_hdr = 0, n_par = 0;

  th_buf_init(&creq, TH_SIGV4_MAX_CANONICAL);
  th_buf_init(&sts, TH_SIGV4_MAX_CANONICAL);
  th_buf_init(&hstore, TH_SIGV4_MAX_CANONICAL);
  th_buf_init(&store, TH_SIGV4_MAX_CANONICAL);
  th_buf_init(&auth, TH_SIGV4_MAX_CANONICAL);
  th_buf_init(&signed_names, TH_SIGV4_MAX_CANONICAL);
  th_buf_init(&query_out, TH_SIGV4_MAX_CANONICAL);
  qlist_init(&q);

  if (!req || !cred || !params || !out)
    goto done;
  const unsigned flags = params->flags;
  const int presign = (flags & TH_SIGV4_PRESIGN) != 0;
  const char *token = cred->session_token && *cred->session_token ? cred->session_token : NULL;
  const int sign_token = token && !(flags & TH_SIGV4_OMIT_TOKEN);

  /* Plain arguments. */
  if (!token_len(req->method, MAX_METHOD))
    FAIL(TH_ERR_INVALID, "method is not an HTTP token");
  if (!visible_text(cred->access_key_id, TH_SIGV4_MAX_CREDENTIAL, "/,"))
    FAIL(TH_ERR_INVALID, "access key id is empty, too long or has a bad character");
  if (!visible_text(cred->secret_access_key, TH_SIGV4_MAX_CREDENTIAL, ""))
    FAIL(TH_ERR_INVALID, "secret access key is empty, too long or has a bad character");
  if (token && !visible_text(token, TH_SIGV4_MAX_TOKEN, ""))
    FAIL(TH_ERR_INVALID, "session token is too long or has a bad character");
  if (!scope_part(params->region))
    FAIL(TH_ERR_INVALID, "region is empty, too long or has a bad character");
  if (!scope_part(params->service))
    FAIL(TH_ERR_INVALID, "service is empty, too long or has a bad character");
  if (!valid_time(&params->time))
    FAIL(TH_ERR_INVALID, "time is not a valid UTC instant in 1970..9999");
  if (presign && (params->expires < 1 || params->expires > TH_SIGV4_MAX_EXPIRES))
    FAIL(TH_ERR_INVALID, "expires is outside 1..604800 seconds");
  if (req->nheaders > TH_SIGV4_MAX_HEADERS)
    FAIL(TH_ERR_TOO_LARGE, "too many headers");
  if (req->nheaders && !req->headers)
    FAIL(TH_ERR_INVALID, "headers missing");
  if (req->payload_len && !req->payload && !req->payload_hash)
    FAIL(TH_ERR_INVALID, "payload missing");

  const th_sigv4_time *t = &params->time;
  put_digits(date, t->year, 4);
  put_digits(date + 4, t->month, 2);
  put_digits(date + 6, t->day, 2);
  date[8] = '\0';
  memcpy(amz_date, date, 8);
  amz_date[8] = 'T';
  put_digits(amz_date + 9, t->hour, 2);
  put_digits(amz_date + 11, t->minute, 2);
  put_digits(amz_date + 13, t->second, 2);
  amz_date[15] = 'Z';
  amz_date[16] = '\0';
  snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, params->region, params->service);
  snprintf(expires, sizeof expires, "%ld", params->expires);

  if (req->payload_hash) {
    if (!visible_text(req->payload_hash, sizeof payload_hash - 1, ""))
      FAIL(TH_ERR_INVALID, "payload hash is empty, too long or has a bad character");
    snprintf(payload_hash, sizeof payload_hash, "%s", req->payload_hash);
  } else {
    TRY(sha256_hex(req->payload, req->payload_len, payload_hash), "hashing the payload failed");
  }

  /* Canonical headers: the request's, lower-cased and folded, plus ours. */
  hs = malloc(sizeof *hs * (req->nheaders + 3));
  if (!hs)
    FAIL(TH_ERR_NOMEM, "out of memory");
  const char *ours[4] = {"authorization", "x-amz-date", NULL, NULL};
  if (token)
    ours[2] = "x-amz-security-token";
  if (flags & TH_SIGV4_SIGN_BODY)
    ours[3] = "x-amz-content-sha256";
  int have_host = 0;
  for (size_t i = 0; i < req->nheaders; i++) {
    const th_sigv4_header *h = &req->headers[i];
    size_t nlen = token_len(h->name, TH_SIGV4_MAX_NAME);
    if (!nlen)
      FAIL(TH_ERR_INVALID, "header name is empty, too long or not an HTTP token");
    if (!h->value)
      FAIL(TH_ERR_INVALID, "header value missing");
    size_t noff = hstore.len;
    for (size_t k = 0; k < nlen; k++) {
      char c = h->name[k];
      c = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      TRY(th_buf_append(&hstore, &c, 1), "headers too large");
    }
    TRY(th_buf_append(&hstore, "", 1), "headers too large");
    const char *lname = hstore.data + noff;
    if (in_list(lname, unsigned_headers, TH_ARRAY_LEN(unsigned_headers))) {
      hstore.len = noff;
      hstore.data[noff] = '\0';
      continue;
    }
    if (!presign && in_list(lname, ours, TH_ARRAY_LEN(ours)))
      FAIL(TH_ERR_INVALID, "a header the signer adds was passed in");
    have_host |= strcmp(lname, "host") == 0;
    size_t voff = hstore.len;
    r = th_sigv4_fold_value(&hstore, h->value);
    if (r != TH_OK)
      FAIL(r, r == TH_ERR_INVALID ? "header value has a control character"
                                  : "header value too large");
    TRY(th_buf_append(&hstore, "", 1), "headers too large");
    hs[nh++] = (hentry){.noff = noff, .voff = voff, .pos = i};
  }
  if (!have_host)
    FAIL(TH_ERR_INVALID, "no Host header");
  if (!presign) {
    const char *extra[3][2] = {{"x-amz-date", amz_date},
                               {"x-amz-security-token", sign_token ? token : NULL},
                               {"x-amz-content-sha256",
                                flags & TH_SIGV4_SIGN_BODY ? payload_hash : NULL}};
    for (size_t i = 0; i < 3; i++) {
      if (!extra[i][1])
        continue;
      size_t noff = hstore.len;
      TRY(th_buf_append(&hstore, extra[i][0], strlen(extra[i][0]) + 1), "headers too large");
      size_t voff = hstore.len;
      TRY(th_buf_append(&hstore, extra[i][1], strlen(extra[i][1]) + 1), "headers too large");
      hs[nh++] = (hentry){.noff = noff, .voff = voff, .pos = req->nheaders + i};
    }
  }
  for (size_t i = 0; i < nh; i++) {
    hs[i].name = hstore.data + hs[i].noff;
    hs[i].value = hstore.data + hs[i].voff;
  }
  qsort(hs, nh, sizeof *hs, hentry_cmp);
  TRY(th_buf_append(&signed_names, "", 0), "out of memory");
  for (size_t i = 0; i < nh; i++) {
    if (i && strcmp(hs[i].name, hs[i - 1].name) == 0)
      continue;
    if (signed_names.len)
      TRY(th_buf_append(&signed_names, ";", 1), "headers too large");
    TRY(th_buf_append_str(&signed_names, hs[i].name), "headers too large");
  }

  /* Canonical query: the request's parameters, plus ours when presigning. */
  r = qlist_parse(&q, req->query);
  if (r != TH_OK)
    FAIL(r, r == TH_ERR_INVALID ? "query has a '%' not followed by two hex digits"
                                : "query too large");
  if (presign) {
    static const char *const reserved[] = {
        "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
        "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature"};
    for (size_t i = 0; i < q.n; i++)
      if (in_list(q.store.data + q.v[i].koff, reserved, TH_ARRAY_LEN(reserved)))
        FAIL(TH_ERR_INVALID, "query already carries an X-Amz- signing parameter");
    TRY(th_buf_append_str(&auth, cred->access_key_id), "too large");
    TRY(th_buf_append(&auth, "/", 1), "too large");
    TRY(th_buf_append_str(&auth, scope), "too large");
    const char *mine[6][2] = {{"X-Amz-Algorithm", ALGORITHM},
                              {"X-Amz-Credential", auth.data},
                              {"X-Amz-Date", amz_date},
                              {"X-Amz-Expires", expires},
                              {"X-Amz-Security-Token", sign_token ? token : NULL},
                              {"X-Amz-SignedHeaders", signed_names.data}};
    for (size_t i = 0; i < 6; i++)
      if (mine[i][1])
        TRY(qlist_add(&q, mine[i][0], strlen(mine[i][0]), mine[i][1], strlen(mine[i][1])),
            "query too large");
  }

  /* The canonical request. */
  TRY(th_buf_append_str(&creq, req->method), "too large");
  TRY(th_buf_append(&creq, "\n", 1), "too large");
  r = th_sigv4_canonical_path(&creq, req->path, flags);
  if (r != TH_OK)
    FAIL(r, r == TH_ERR_INVALID ? "path does not start with '/'" : "path too large");
  TRY(th_buf_append(&creq, "\n", 1), "too large");
  TRY(qlist_write(&q, &creq), "canonical request too large");
  TRY(th_buf_append(&creq, "\n", 1), "too large");
  for (size_t i = 0; i < nh; i++) {
    int first = i == 0 || strcmp(hs[i].name, hs[i - 1].name) != 0;
    if (first) {
      if (i)
        TRY(th_buf_append(&creq, "\n", 1), "canonical request too large");
      TRY(th_buf_append_str(&creq, hs[i].name), "canonical request too large");
      TRY(th_buf_append(&creq, ":", 1), "canonical request too large");
    } else {
      TRY(th_buf_append(&creq, ",", 1), "canonical request too large");
    }
    TRY(th_buf_append_str(&creq, hs[i].value), "canonical request too large");
  }
  TRY(th_buf_append(&creq, "\n\n", 2), "canonical request too large");
  TRY(th_buf_append_str(&creq, signed_names.data), "canonical request too large");
  TRY(th_buf_append(&creq, "\n", 1), "canonical request too large");
  TRY(th_buf_append_str(&creq, payload_hash), "canonical request too large");

  /* String to sign, signature. */
  TRY(sha256_hex(creq.data, creq.len, creq_hash), "hashing failed");
  TRY(th_buf_append_str(&sts, ALGORITHM "\n"), "too large");
  TRY(th_buf_append_str(&sts, amz_date), "too large");
  TRY(th_buf_append(&sts, "\n", 1), "too large");
  TRY(th_buf_append_str(&sts, scope), "too large");
  TRY(th_buf_append(&sts, "\n", 1), "too large");
  TRY(th_buf_append_str(&sts, creq_hash), "too large");
  TRY(sign_sts(cred->secret_access_key, params->signing_key, date, params->region,
               params->service, &sts, sig),
      "signing failed");

  /* What the caller adds. */
  TRY(th_buf_append(&store, "", 0), "out of memory");
  if (presign) {
    TRY(add_value(&store, par_added, &n_par, "X-Amz-Algorithm", ALGORITHM, 1), "too large");
    TRY(add_value(&store, par_added, &n_par, "X-Amz-Credential", auth.data, 1), "too large");
    TRY(add_value(&store, par_added, &n_par, "X-Amz-Date", amz_date, 1), "too large");
    TRY(add_value(&store, par_added, &n_par, "X-Amz-SignedHeaders", signed_names.data, 1),
        "too large");
    TRY(add_value(&store, par_added, &n_par, "X-Amz-Expires", expires, 1), "too large");
    if (token)
      TRY(add_value(&store, par_added, &n_par, "X-Amz-Security-Token", token, 1), "too large");
    TRY(add_value(&store, par_added, &n_par, "X-Amz-Signature", sig, 1), "too large");
    for (size_t i = 0; i < n_par; i++) {
      if (i)
        TRY(th_buf_append(&query_out, "&", 1), "too large");
      TRY(th_buf_append_str(&query_out, par_added[i].name), "too large");
      TRY(th_buf_append(&query_out, "=", 1), "too large");
      TRY(th_buf_append_str(&query_out, store.data + par_added[i].off), "too large");
    }
  } else {
    TRY(th_buf_append_str(&auth, ALGORITHM " Credential="), "too large");
    TRY(th_buf_append_str(&auth, cred->access_key_id), "too large");
    TRY(th_buf_append(&auth, "/", 1), "too large");
    TRY(th_buf_append_str(&auth, scope), "too large");
    TRY(th_buf_append_str(&auth, ", SignedHeaders="), "too large");
    TRY(th_buf_append_str(&auth, signed_names.data), "too large");
    TRY(th_buf_append_str(&auth, ", Signature="), "too large");
    TRY(th_buf_append_str(&auth, sig), "too large");
    TRY(add_value(&store, hdr_added, &n_hdr, "X-Amz-Date", amz_date, 0), "too large");
    if (token)
      TRY(add_value(&store, hdr_added, &n_hdr, "X-Amz-Security-Token", token, 0), "too large");
    if (flags & TH_SIGV4_SIGN_BODY)
      TRY(add_value(&store, hdr_added, &n_hdr, "x-amz-content-sha256", payload_hash, 0),
          "too large");
    TRY(add_value(&store, hdr_added, &n_hdr, "Authorization", auth.data, 0), "too large");
  }

  /* Success: hand everything over. */
  memset(out, 0, sizeof *out);
  for (size_t i = 0; i < n_hdr; i++)
    out->headers[i] = (th_sigv4_header){hdr_added[i].name, store.data + hdr_added[i].off};
  for (size_t i = 0; i < n_par; i++)
    out->params[i] = (th_sigv4_header){par_added[i].name, store.data + par_added[i].off};
  out->nheaders = n_hdr;
  out->nparams = n_par;
  out->query = presign ? th_buf_steal(&query_out, NULL) : NULL;
  out->canonical_request = th_buf_steal(&creq, NULL);
  out->string_to_sign = th_buf_steal(&sts, NULL);
  memcpy(out->signature, sig, sizeof out->signature);
  out->store_ = th_buf_steal(&store, NULL);
  r = TH_OK;

done:
  if (r != TH_OK && why)
    *why = msg;
  th_buf_free(&creq);
  th_buf_free(&sts);
  th_buf_free(&hstore);
  th_buf_free(&store);
  th_buf_free(&auth);
  th_buf_free(&signed_names);
  th_buf_free(&query_out);
  qlist_free(&q);
  free(hs);
  return r;
}

void th_sigv4_result_free(th_sigv4_result *r) {
  if (!r)
    return;
  free(r->query);
  free(r->canonical_request);
  free(r->string_to_sign);
  free(r->store_);
  memset(r, 0, sizeof *r);
}
