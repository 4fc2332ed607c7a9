/* jwt — see jwt.h.
 *
 * JSON runs inside one lua_pcall on a private state (the verifier's, or a
 * state made for one JWKS document): cjson raises on malformed text, so the
 * job records the verdict it is about to give before each step that can
 * raise, and a raise with LUA_ERRRUN reports that verdict; LUA_ERRMEM is
 * ours (TH_JWT_INTERNAL / TH_ERR_NOMEM). C memory made inside a job (a key
 * being built) is handed to the caller's structures before the next Lua
 * call, so nothing leaks past a raise. */
#include "jwt.h"

#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua-cjson.h>
#include <lua.h>
#include <lualib.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

#define VERIFIER_MEM (4u << 20)  /* Lua memory of a verifier: tokens are <= 16 KB */
#define JWKS_MEM (32u << 20)     /* Lua memory while one JWKS document is read */
#define JWKS_MAX_DEPTH 16        /* JSON nesting of a JWKS document */
#define MAX_B64_MEMBER 8192      /* characters of a JWK's n or e */
#define DECODED_MAX(n) (3 * (((n) + 3) / 4)) /* bytes EVP_DecodeBlock writes */

const char *th_jwt_status_name(th_jwt_status s) {
  switch (s) {
  case TH_JWT_OK: return "ok";
  case TH_JWT_TOO_LARGE: return "too_large";
  case TH_JWT_MALFORMED: return "malformed";
  case TH_JWT_BAD_ALG: return "bad_alg";
  case TH_JWT_BAD_HEADER: return "bad_header";
  case TH_JWT_UNKNOWN_KID: return "unknown_kid";
  case TH_JWT_BAD_SIGNATURE: return "bad_signature";
  case TH_JWT_BAD_ISSUER: return "bad_issuer";
  case TH_JWT_BAD_AUDIENCE: return "bad_audience";
  case TH_JWT_BAD_CLAIM: return "bad_claim";
  case TH_JWT_EXPIRED: return "expired";
  case TH_JWT_NOT_YET_VALID: return "not_yet_valid";
  case TH_JWT_NO_SUB: return "no_sub";
  case TH_JWT_INTERNAL: return "internal";
  }
  return "internal";
}

/* ============================================================ shared pieces */

typedef struct lmem {
  size_t used, limit;
} lmem;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lmem *m = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    m->used -= old;
    return NULL;
  }
  if (nsize > old && m->used - old + nsize > m->limit)
    return NULL;
  void *p = realloc(ptr, nsize);
  if (p)
    m->used = m->used - old + nsize;
  return p;
}

/* A private cjson instance (numbers only as JSON writes them: no NaN,
 * Infinity or hex; nesting up to depth), left on the stack. Runs protected. */
static int push_cjson(lua_State *L) {
  int depth = (int)lua_tointeger(L, 1);
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "decode_max_depth");
  lua_pushinteger(L, depth);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "decode_invalid_numbers");
  lua_pushboolean(L, 0);
  lua_call(L, 1, 0);
  return 1;
}

/* A new state holding cjson.decode (registry ref *decode_ref) and, when
 * utf8len_ref is non-NULL, utf8.len. NULL when out of memory. */
static lua_State *json_state(lmem *mem, int depth, int *decode_ref, int *utf8len_ref) {
  lua_State *L = lua_newstate(capped_alloc, mem);
  if (!L)
    return NULL;
  lua_pushcfunction(L, push_cjson);
  lua_pushinteger(L, depth);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_getfield(L, -1, "decode") != LUA_TFUNCTION)
    goto fail;
  *decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (*decode_ref == LUA_REFNIL || *decode_ref == LUA_NOREF)
    goto fail;
  lua_settop(L, 0);
  if (utf8len_ref) {
    luaL_requiref(L, "utf8", luaopen_utf8, 0);
    if (lua_getfield(L, -1, "len") != LUA_TFUNCTION)
      goto fail;
    *utf8len_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (*utf8len_ref == LUA_REFNIL || *utf8len_ref == LUA_NOREF)
      goto fail;
    lua_settop(L, 0);
  }
  return L;
fail:
  lua_close(L);
  return NULL;
}

/* Pushes the value decoded from text (raises on malformed JSON). */
static void decode_json(lua_State *L, int decode_ref, const void *text, size_t len) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, decode_ref);
  lua_pushlstring(L, text, len);
  lua_call(L, 1, 1);
}

/* cjson reads [] and {} alike: whether the text itself opens an object. */
static int opens_object(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
    i++;
  return i < n && s[i] == '{';
}

/* Whether the value at idx is a string equal to want[0..n). */
static int is_string(lua_State *L, int idx, const char *want, size_t n) {
  size_t len;
  if (lua_type(L, idx) != LUA_TSTRING)
    return 0;
  const char *s = lua_tolstring(L, idx, &len);
  return len == n && memcmp(s, want, n) == 0;
}

/* Whether the table at idx is a sequence 1..n with nothing else (what cjson
 * makes of a JSON array; an empty object reads as an empty array too). */
static int is_sequence(lua_State *L, int idx, size_t *n_out) {
  lua_Unsigned n = lua_rawlen(L, idx);
  lua_Unsigned count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    count++;
    lua_pop(L, 1);
  }
  *n_out = (size_t)n;
  return count == n;
}

/* Value of a base64url character, or -1. */
static int b64url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

/* Strict base64url without padding (RFC 7515 2, RFC 4648 5): only the 64
 * characters, no '=', a length that is not 1 mod 4, and the unused low bits
 * of the last character zero, so one byte string has exactly one text.
 * Decoded by OpenSSL's EVP_DecodeBlock after mapping to the standard
 * alphabet and restoring the padding. scratch holds n + 3 bytes, out
 * DECODED_MAX(n). Returns the byte count, or -1. */
static long b64url_decode(const char *in, size_t n, unsigned char *scratch, unsigned char *out) {
  if (n == 0)
    return 0;
  if (n % 4 == 1 || n > INT_MAX - 3)
    return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in[i];
    if (b64url_value(c) < 0)
      return -1;
    scratch[i] = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  size_t pad = (4 - n % 4) % 4;
  int last = b64url_value((unsigned char)in[n - 1]);
  if ((pad == 2 && (last & 0x0f)) || (pad == 1 && (last & 0x03)))
    return -1;
  memset(scratch + n, '=', pad);
  int len = EVP_DecodeBlock(out, scratch, (int)(n + pad));
  if (len < (int)pad)
    return -1;
  return (long)len - (long)pad; /* EVP_DecodeBlock counts padding as zero bytes */
}

/* ================================================================ key sets */

typedef struct jwk {
  char *kid;
  size_t kid_len;
  EVP_PKEY *pkey;
} jwk;

struct th_jwks {
  atomic_long refs;
  size_t n;
  jwk keys[];
};

static void free_keys(jwk *keys, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(keys[i].kid);
    EVP_PKEY_free(keys[i].pkey);
  }
}

th_jwks *th_jwks_ref(th_jwks *keys) {
  atomic_fetch_add_explicit(&keys->refs, 1, memory_order_relaxed);
  return keys;
}

void th_jwks_release(th_jwks *keys) {
  if (!keys || atomic_fetch_sub_explicit(&keys->refs, 1, memory_order_acq_rel) != 1)
    return;
  free_keys(keys->keys, keys->n);
  free(keys);
}

size_t th_jwks_count(const th_jwks *keys) { return keys ? keys->n : 0; }

static const jwk *find_key(const th_jwks *keys, const char *kid, size_t kid_len) {
  for (size_t i = 0; i < keys->n; i++)
    if (keys->keys[i].kid_len == kid_len && memcmp(keys->keys[i].kid, kid, kid_len) == 0)
      return &keys->keys[i];
  return NULL;
}

int th_jwks_has_kid(const th_jwks *keys, const char *kid) {
  return keys && kid && find_key(keys, kid, strlen(kid)) != NULL;
}

/* An RSA public key from big-endian n and e (leading zeros allowed), or
 * NULL: modulus size out of range, e of more than 256 bits (its size sets
 * the cost of every verification), or OpenSSL's public-key check fails
 * (n odd without small factors, e odd and > 1).
 * *nomem is set when it failed for want of memory. */
static EVP_PKEY *rsa_public_key(const unsigned char *n, size_t nlen, const unsigned char *e,
                                size_t elen, int *nomem) {
  EVP_PKEY *pk = NULL;
  BIGNUM *bn = NULL, *be = NULL;
  OSSL_PARAM_BLD *bld = NULL;
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = NULL, *check = NULL;
  int ok = 0;
  while (nlen > 0 && n[0] == 0) {
    n++;
    nlen--;
  }
  while (elen > 0 && e[0] == 0) {
    e++;
    elen--;
  }
  int bits = 0;
  if (nlen > 0) {
    bits = (int)(nlen - 1) * 8;
    for (unsigned v = n[0]; v; v >>= 1)
      bits++;
  }
  if (bits < TH_JWKS_MIN_BITS || bits > TH_JWKS_MAX_BITS || elen == 0 || elen > 32)
    return NULL;
  *nomem = 1;
  if (!(bn = BN_bin2bn(n, (int)nlen, NULL)) || !(be = BN_bin2bn(e, (int)elen, NULL)) ||
      !(bld = OSSL_PARAM_BLD_new()) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
      !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
      !(params = OSSL_PARAM_BLD_to_param(bld)) ||
      !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)))
    goto done;
  *nomem = 0;
  if (EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1 ||
      !(check = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) || EVP_PKEY_public_check(check) != 1)
    goto done;
  ok = 1;
done:
  EVP_PKEY_CTX_free(check);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(be);
  BN_free(bn);
  ERR_clear_error();
  if (!ok) {
    EVP_PKEY_free(pk);
    pk = NULL;
  }
  return pk;
}

/* One JWKS document being read. */
typedef struct pjob {
  const char *text;
  size_t len;
  int decode_ref;
  jwk keys[TH_JWKS_MAX_KEYS]; /* owned by the caller of the job, even after a raise */
  size_t nkeys, entries;
  unsigned char scratch[MAX_B64_MEMBER + 4];
  unsigned char n[DECODED_MAX(MAX_B64_MEMBER)], e[DECODED_MAX(MAX_B64_MEMBER)];
  th_jwks_report rep;
  th_result r;
  const char *why;
} pjob;

/* The value at idx, a base64url string of at most MAX_B64_MEMBER
 * characters, decoded into out; the byte count, or -1. */
static long member_bytes(lua_State *L, int idx, unsigned char *scratch, unsigned char *out) {
  size_t n;
  if (lua_type(L, idx) != LUA_TSTRING)
    return -1;
  const char *s = lua_tolstring(L, idx, &n);
  if (n == 0 || n > MAX_B64_MEMBER)
    return -1;
  return b64url_decode(s, n, scratch, out);
}

/* Whether the optional member `name` of the table at t is absent or the
 * string want. */
static int absent_or(lua_State *L, int t, const char *name, const char *want) {
  int absent = lua_getfield(L, t, name) == LUA_TNIL;
  int ok = absent || is_string(L, -1, want, strlen(want));
  lua_pop(L, 1);
  return ok;
}

/* key_ops absent, or an array holding "verify". */
static int key_ops_ok(lua_State *L, int t) {
  int ok = 0;
  size_t n;
  int ty = lua_getfield(L, t, "key_ops");
  if (ty == LUA_TNIL)
    ok = 1;
  else if (ty == LUA_TTABLE && is_sequence(L, lua_gettop(L), &n))
    for (size_t i = 1; i <= n && !ok; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i);
      ok = is_string(L, -1, "verify", 6);
      lua_pop(L, 1);
    }
  lua_pop(L, 1);
  return ok;
}

/* Reads entry t of "keys": adds a key to j->keys or counts why not. */
static void read_jwk(lua_State *L, pjob *j, int t) {
  if (lua_type(L, t) != LUA_TTABLE) {
    j->rep.not_object++;
    return;
  }
  lua_getfield(L, t, "kty");
  int rsa = is_string(L, -1, "RSA", 3);
  lua_pop(L, 1);
  if (!rsa) {
    j->rep.not_rsa++;
    return;
  }
  if (!absent_or(L, t, "use", "sig") || !key_ops_ok(L, t)) {
    j->rep.not_sig++;
    return;
  }
  if (!absent_or(L, t, "alg", "RS256")) {
    j->rep.other_alg++;
    return;
  }
  size_t kid_len = 0;
  const char *kid = NULL;
  if (lua_getfield(L, t, "kid") == LUA_TSTRING)
    kid = lua_tolstring(L, -1, &kid_len);
  if (!kid || kid_len == 0 || kid_len > TH_JWKS_MAX_KID) {
    j->rep.no_kid++;
    return;
  }
  lua_getfield(L, t, "n");
  lua_getfield(L, t, "e");
  long nlen = member_bytes(L, -2, j->scratch, j->n);
  long elen = member_bytes(L, -1, j->scratch, j->e);
  int nomem = 0;
  EVP_PKEY *pk = nlen > 0 && elen > 0 ?
    rsa_public_key(j->n, (size_t)nlen, j->e, (size_t)elen, &nomem) : NULL;
  char *kid_copy = pk ? malloc(kid_len + 1) : NULL;
  if (!pk || !kid_copy) {
    EVP_PKEY_free(pk);
    if (nomem || pk) {
      j->r = TH_ERR_NOMEM;
      j->why = "out of memory building a key";
    } else
      j->rep.bad_key++;
    return;
  }
  memcpy(kid_copy, kid, kid_len);
  kid_copy[kid_len] = '\0';
  for (size_t i = 0; i < j->nkeys; i++)
    if (j->keys[i].kid_len == kid_len && memcmp(j->keys[i].kid, kid, kid_len) == 0) {
      EVP_PKEY_free(pk);
      free(kid_copy);
      j->rep.duplicate++;
      return;
    }
  j->keys[j->nkeys++] = (jwk){kid_copy, kid_len, pk};
}

static int parse_job(lua_State *L) {
  pjob *j = lua_touserdata(L, 1);
  size_t n = 0;
  j->r = TH_ERR_INVALID;
  j->why = "not a JSON object";
  if (!opens_object((const unsigned char *)j->text, j->len))
    return 0;
  j->why = "not valid JSON";
  decode_json(L, j->decode_ref, j->text, j->len);
  j->why = "no \"keys\" array";
  if (lua_getfield(L, 2, "keys") != LUA_TTABLE || !is_sequence(L, 3, &n))
    return 0;
  j->entries = n;
  if (n > TH_JWKS_MAX_KEYS) {
    j->r = TH_ERR_TOO_LARGE;
    j->why = "too many keys";
    return 0;
  }
  j->r = TH_OK;
  for (size_t i = 1; i <= n && j->r == TH_OK; i++) {
    lua_rawgeti(L, 3, (lua_Integer)i);
    read_jwk(L, j, lua_gettop(L));
    lua_settop(L, 3);
  }
  return 0;
}

th_result th_jwks_parse(const char *json, size_t len, th_jwks **out, th_jwks_report *rep,
                        char *err, size_t errlen) {
  char dummy[1];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  if (!json || !out) {
    snprintf(err, errlen, "jwks: no document");
    return TH_ERR_INVALID;
  }
  if (len > TH_JWKS_MAX_BYTES) {
    snprintf(err, errlen, "jwks: document larger than %u bytes", TH_JWKS_MAX_BYTES);
    return TH_ERR_TOO_LARGE;
  }
  th_result r = TH_ERR_NOMEM;
  lmem mem = {0, JWKS_MEM};
  int decode_ref = LUA_NOREF;
  pjob *j = calloc(1, sizeof *j);
  th_jwks *set = NULL;
  lua_State *L = j ? json_state(&mem, JWKS_MAX_DEPTH, &decode_ref, NULL) : NULL;
  if (!L) {
    snprintf(err, errlen, "jwks: out of memory");
    goto done;
  }
  j->text = json;
  j->len = len;
  j->decode_ref = decode_ref;
  lua_pushcfunction(L, parse_job);
  lua_pushlightuserdata(L, j);
  int st = lua_pcall(L, 1, 0, 0);
  if (st != LUA_OK) {
    r = st == LUA_ERRMEM ? TH_ERR_NOMEM : j->r;
    snprintf(err, errlen, "jwks: %s", st == LUA_ERRMEM ? "out of memory" : j->why);
    goto done;
  }
  if (j->r != TH_OK) {
    r = j->r;
    if (r == TH_ERR_TOO_LARGE)
      snprintf(err, errlen, "jwks: %zu keys, more than %d", j->entries, TH_JWKS_MAX_KEYS);
    else
      snprintf(err, errlen, "jwks: %s", j->why);
    goto done;
  }
  if (j->nkeys == 0) {
    const th_jwks_report *p = &j->rep;
    r = TH_ERR_INVALID;
    snprintf(err, errlen,
             "jwks: no usable RS256 signing key among %zu (not an object %zu, not RSA %zu, "
             "not for signatures %zu, another alg %zu, no kid %zu, bad n/e or size %zu)",
             j->entries, p->not_object, p->not_rsa, p->not_sig, p->other_alg, p->no_kid,
             p->bad_key);
    goto done;
  }
  if (!(set = malloc(sizeof *set + j->nkeys * sizeof set->keys[0]))) {
    snprintf(err, errlen, "jwks: out of memory");
    goto done;
  }
  atomic_init(&set->refs, 1);
  set->n = j->nkeys;
  memcpy(set->keys, j->keys, j->nkeys * sizeof j->keys[0]);
  j->nkeys = 0; /* now the set's */
  j->rep.usable = set->n;
  if (rep)
    *rep = j->rep;
  *out = set;
  r = TH_OK;
done:
  if (L)
    lua_close(L);
  if (j)
    free_keys(j->keys, j->nkeys);
  free(j);
  return r;
}

th_result th_jwks_load_file(const char *path, th_jwks **out, th_jwks_report *rep, char *err,
                            size_t errlen) {
  char dummy[1];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  FILE *f = path ? fopen(path, "rb") : NULL;
  if (!f) {
    snprintf(err, errlen, "jwks: cannot open %s: %s", path ? path : "(null)",
             path ? strerror(errno) : "no path");
    return TH_ERR_IO;
  }
  char *text = malloc(TH_JWKS_MAX_BYTES + 1);
  size_t n = text ? fread(text, 1, TH_JWKS_MAX_BYTES + 1, f) : 0;
  int failed = ferror(f);
  fclose(f);
  th_result r;
  if (!text) {
    snprintf(err, errlen, "jwks: out of memory");
    r = TH_ERR_NOMEM;
  } else if (failed) {
    snprintf(err, errlen, "jwks: cannot read %s", path);
    r = TH_ERR_IO;
  } else if (n > TH_JWKS_MAX_BYTES) {
    snprintf(err, errlen, "jwks: %s is larger than %u bytes", path, TH_JWKS_MAX_BYTES);
    r = TH_ERR_TOO_LARGE;
  } else {
    r = th_jwks_parse(text, n, out, rep, err, errlen);
  }
  free(text);
  return r;
}

th_result th_jwks_load_url(const char *url, th_jwks **out, th_jwks_report *rep, char *err,
                           size_t errlen) {
  char dummy[1], why[256];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  if (!url) {
    snprintf(err, errlen, "jwks: no URL");
    return TH_ERR_INVALID;
  }
  th_http_options opt = {.timeout_ms = TH_JWKS_FETCH_TIMEOUT_MS, .max_response = TH_JWKS_MAX_BYTES};
  th_http *h = th_http_new(&opt, why, sizeof why);
  if (!h) {
    snprintf(err, errlen, "jwks: %s", why);
    return TH_ERR_INTERNAL;
  }
  th_http_req req = {.method = "GET", .url = url,
                     .deadline_ms = th_now_ms() + TH_JWKS_FETCH_TIMEOUT_MS};
  th_http_resp resp;
  th_result r = th_http_send(h, &req, &resp, why, sizeof why);
  if (r != TH_OK) {
    snprintf(err, errlen, "jwks: GET %s: %s", url, why);
  } else {
    if (resp.status != 200) {
      snprintf(err, errlen, "jwks: GET %s: HTTP status %ld", url, resp.status);
      r = TH_ERR_UNAVAILABLE;
    } else {
      r = th_jwks_parse(resp.body, resp.body_len, out, rep, err, errlen);
    }
    th_http_resp_free(&resp);
  }
  th_http_free(h);
  return r;
}

th_result th_jwks_load(const char *location, th_jwks **out, th_jwks_report *rep, char *err,
                       size_t errlen) {
  if (location && (strncasecmp(location, "http://", 7) == 0 ||
                   strncasecmp(location, "https://", 8) == 0))
    return th_jwks_load_url(location, out, rep, err, errlen);
  return th_jwks_load_file(location, out, rep, err, errlen);
}

int th_jwks_refetch_allowed(double last_ms, double now_ms) {
  return now_ms - last_ms >= TH_JWKS_REFETCH_MS;
}

struct th_jwks_cache {
  pthread_mutex_t lock;  /* guards cur and last_ms */
  pthread_mutex_t fetch; /* held by the one thread fetching */
  th_jwks *cur;
  double last_ms;
  char *location;
};

th_result th_jwks_cache_new(const char *location, double now_ms, th_jwks_cache **out,
                            th_jwks_report *rep, char *err, size_t errlen) {
  th_jwks *first = NULL;
  th_result r = th_jwks_load(location, &first, rep, err, errlen);
  if (r != TH_OK)
    return r;
  th_jwks_cache *c = calloc(1, sizeof *c);
  size_t n = strlen(location);
  if (!c || !(c->location = malloc(n + 1))) {
    free(c);
    th_jwks_release(first);
    if (err && errlen)
      snprintf(err, errlen, "jwks: out of memory");
    return TH_ERR_NOMEM;
  }
  memcpy(c->location, location, n + 1);
  pthread_mutex_init(&c->lock, NULL);
  pthread_mutex_init(&c->fetch, NULL);
  c->cur = first;
  c->last_ms = now_ms;
  *out = c;
  return TH_OK;
}

th_jwks *th_jwks_cache_get(th_jwks_cache *c) {
  pthread_mutex_lock(&c->lock);
  th_jwks *k = th_jwks_ref(c->cur);
  pthread_mutex_unlock(&c->lock);
  return k;
}

th_result th_jwks_cache_refetch(th_jwks_cache *c, double now_ms, char *err, size_t errlen) {
  if (pthread_mutex_trylock(&c->fetch) != 0)
    return TH_ERR_THROTTLED;
  pthread_mutex_lock(&c->lock);
  int allowed = th_jwks_refetch_allowed(c->last_ms, now_ms);
  if (allowed)
    c->last_ms = now_ms;
  pthread_mutex_unlock(&c->lock);
  th_result r = TH_ERR_THROTTLED;
  if (allowed) {
    th_jwks *fresh = NULL, *old;
    r = th_jwks_load(c->location, &fresh, NULL, err, errlen);
    if (r == TH_OK) {
      pthread_mutex_lock(&c->lock);
      old = c->cur;
      c->cur = fresh;
      pthread_mutex_unlock(&c->lock);
      th_jwks_release(old);
    }
  }
  pthread_mutex_unlock(&c->fetch);
  return r;
}

void th_jwks_cache_free(th_jwks_cache *c) {
  if (!c)
    return;
  th_jwks_release(c->cur);
  pthread_mutex_destroy(&c->lock);
  pthread_mutex_destroy(&c->fetch);
  free(c->location);
  free(c);
}

/* ============================================================ verification */

struct th_jwt_verifier {
  lua_State *L;
  lmem mem;
  int decode_ref, utf8len_ref;
  unsigned char scratch[TH_JWT_MAX_TOKEN + 4];
  unsigned char header[DECODED_MAX(TH_JWT_MAX_TOKEN)];
  unsigned char payload[DECODED_MAX(TH_JWT_MAX_TOKEN)];
  unsigned char sig[DECODED_MAX(TH_JWT_MAX_TOKEN)];
};

th_jwt_verifier *th_jwt_verifier_new(void) {
  th_jwt_verifier *v = calloc(1, sizeof *v);
  if (!v)
    return NULL;
  v->mem.limit = VERIFIER_MEM;
  if (!(v->L = json_state(&v->mem, TH_JWT_MAX_DEPTH, &v->decode_ref, &v->utf8len_ref))) {
    free(v);
    return NULL;
  }
  return v;
}

void th_jwt_verifier_free(th_jwt_verifier *v) {
  if (!v)
    return;
  lua_close(v->L);
  free(v);
}

void th_jwt_claims_free(th_jwt_claims *c) {
  if (!c)
    return;
  free(c->sub);
  free(c->json);
  c->sub = c->json = NULL;
  c->json_len = 0;
}

/* 1: sig is a valid RS256 signature of msg under pk; 0: it is not; -1: out
 * of memory. */
static int rs256_verify(EVP_PKEY *pk, const unsigned char *msg, size_t mlen,
                        const unsigned char *sig, size_t slen) {
  if (slen != (size_t)EVP_PKEY_get_size(pk))
    return 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx)
    return -1;
  int ok = EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, pk, NULL) == 1 &&
           EVP_DigestVerify(ctx, sig, slen, msg, mlen) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

/* One token being verified. */
typedef struct vjob {
  th_jwt_verifier *v;
  const th_jwks *keys;
  const th_jwt_policy *pol;
  const char *signing_input; /* "header.payload" as in the token */
  size_t signing_len;
  size_t header_len, payload_len, sig_len;
  th_jwt_status st;
  const char *why;
  double exp;
} vjob;

static int verdict(vjob *j, th_jwt_status st, const char *why) {
  j->st = st;
  j->why = why;
  return 0;
}

/* typ: "JWT" or "at+jwt", optionally "application/"-prefixed, any case. */
static int typ_ok(const char *s, size_t n) {
  if (n > 12 && strncasecmp(s, "application/", 12) == 0) {
    s += 12;
    n -= 12;
  }
  return (n == 3 && strncasecmp(s, "jwt", 3) == 0) || (n == 6 && strncasecmp(s, "at+jwt", 6) == 0);
}

/* Reads the header at stack index 2; on success leaves the key in *key. */
static int check_header(lua_State *L, vjob *j, const jwk **key) {
  size_t n;
  lua_getfield(L, 2, "alg");
  if (!is_string(L, -1, "RS256", 5))
    return verdict(j, TH_JWT_BAD_ALG, "alg is not RS256");
  if (lua_getfield(L, 2, "crit") != LUA_TNIL)
    return verdict(j, TH_JWT_BAD_HEADER, "crit header present");
  int ty = lua_getfield(L, 2, "typ");
  if (ty != LUA_TNIL) {
    const char *typ = ty == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (!typ || !typ_ok(typ, n))
      return verdict(j, TH_JWT_BAD_HEADER, "typ is not JWT or at+jwt");
  }
  if (lua_getfield(L, 2, "kid") != LUA_TSTRING)
    return verdict(j, TH_JWT_BAD_HEADER, "kid missing or not a string");
  const char *kid = lua_tolstring(L, -1, &n);
  if (!(*key = find_key(j->keys, kid, n)))
    return verdict(j, TH_JWT_UNKNOWN_KID, "no key with this kid");
  return 1;
}

/* Whether the string at idx is one of the policy's audiences. */
static int is_audience(lua_State *L, int idx, const th_jwt_policy *pol) {
  for (size_t i = 0; i < pol->naudiences; i++)
    if (is_string(L, idx, pol->audiences[i], strlen(pol->audiences[i])))
      return 1;
  return 0;
}

static int check_audience(lua_State *L, vjob *j, int p) {
  size_t n;
  int ty = lua_getfield(L, p, "aud");
  int at = lua_gettop(L), ok = 0;
  if (ty == LUA_TNIL) {
    lua_getfield(L, p, "client_id");
    return is_audience(L, -1, j->pol) ? 1 : verdict(j, TH_JWT_BAD_AUDIENCE, "no aud, and client_id is not an audience");
  }
  if (ty == LUA_TSTRING)
    return is_audience(L, at, j->pol) ? 1 : verdict(j, TH_JWT_BAD_AUDIENCE, "aud is not an audience");
  if (ty != LUA_TTABLE || !is_sequence(L, at, &n) || n == 0)
    return verdict(j, TH_JWT_BAD_AUDIENCE, "aud is not a string or a non-empty array");
  for (size_t i = 1; i <= n; i++) {
    if (lua_rawgeti(L, at, (lua_Integer)i) != LUA_TSTRING)
      return verdict(j, TH_JWT_BAD_AUDIENCE, "aud holds a non-string");
    ok = ok || is_audience(L, -1, j->pol);
    lua_pop(L, 1);
  }
  return ok ? 1 : verdict(j, TH_JWT_BAD_AUDIENCE, "aud holds no audience");
}

/* A NumericDate claim: 0 absent, 1 valid (*val), -1 anything else. */
static int time_claim(lua_State *L, int p, const char *name, double *val) {
  int ty = lua_getfield(L, p, name);
  double d = ty == LUA_TNUMBER ? lua_tonumber(L, -1) : -1.0;
  lua_pop(L, 1);
  if (ty == LUA_TNIL)
    return 0;
  if (!(d >= 0.0 && d <= TH_JWT_MAX_TIME)) /* also false for NaN */
    return -1;
  *val = d;
  return 1;
}

static int check_times(lua_State *L, vjob *j, int p) {
  double exp = 0, nbf = 0, iat = 0, now = j->pol->now, leeway = (double)j->pol->leeway_s;
  int has_exp = time_claim(L, p, "exp", &exp);
  int has_nbf = time_claim(L, p, "nbf", &nbf);
  int has_iat = time_claim(L, p, "iat", &iat);
  if (has_exp == 0)
    return verdict(j, TH_JWT_BAD_CLAIM, "exp missing");
  if (has_exp < 0)
    return verdict(j, TH_JWT_BAD_CLAIM, "exp is not a time");
  if (has_nbf < 0)
    return verdict(j, TH_JWT_BAD_CLAIM, "nbf is not a time");
  if (has_iat < 0)
    return verdict(j, TH_JWT_BAD_CLAIM, "iat is not a time");
  if (!(now < exp + leeway))
    return verdict(j, TH_JWT_EXPIRED, "expired");
  if (has_nbf && nbf > now + leeway)
    return verdict(j, TH_JWT_NOT_YET_VALID, "nbf in the future");
  if (has_iat && iat > now + leeway)
    return verdict(j, TH_JWT_NOT_YET_VALID, "iat in the future");
  j->exp = exp;
  return 1;
}

/* sub: 1..TH_JWT_MAX_SUB bytes of UTF-8 without control characters; left
 * on the stack. */
static int check_sub(lua_State *L, vjob *j, int p) {
  size_t n;
  if (lua_getfield(L, p, "sub") != LUA_TSTRING)
    return verdict(j, TH_JWT_NO_SUB, "sub missing or not a string");
  int at = lua_gettop(L);
  const char *s = lua_tolstring(L, at, &n);
  if (n == 0 || n > TH_JWT_MAX_SUB)
    return verdict(j, TH_JWT_NO_SUB, "sub empty or too long");
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return verdict(j, TH_JWT_NO_SUB, "sub holds a control character");
  lua_rawgeti(L, LUA_REGISTRYINDEX, j->v->utf8len_ref);
  lua_pushvalue(L, at);
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1))
    return verdict(j, TH_JWT_NO_SUB, "sub is not UTF-8");
  lua_settop(L, at);
  return 1;
}

/* Everything after the base64url step; returns sub on success. */
static int verify_job(lua_State *L) {
  vjob *j = lua_touserdata(L, 1);
  th_jwt_verifier *v = j->v;
  const jwk *key = NULL;
  verdict(j, TH_JWT_MALFORMED, "header is not a JSON object");
  if (!opens_object(v->header, j->header_len))
    return 0;
  decode_json(L, v->decode_ref, v->header, j->header_len); /* index 2 */
  if (!check_header(L, j, &key))
    return 0;
  int ok = rs256_verify(key->pkey, (const unsigned char *)j->signing_input, j->signing_len, v->sig,
                        j->sig_len);
  if (ok < 0)
    return verdict(j, TH_JWT_INTERNAL, "out of memory");
  if (!ok)
    return verdict(j, TH_JWT_BAD_SIGNATURE, "signature does not verify");
  lua_settop(L, 1);
  verdict(j, TH_JWT_MALFORMED, "payload is not a JSON object");
  if (!opens_object(v->payload, j->payload_len))
    return 0;
  decode_json(L, v->decode_ref, v->payload, j->payload_len); /* index 2 */
  lua_getfield(L, 2, "iss");
  if (!is_string(L, -1, j->pol->issuer, strlen(j->pol->issuer)))
    return verdict(j, TH_JWT_BAD_ISSUER, "iss is not the issuer");
  lua_settop(L, 2);
  if (!check_audience(L, j, 2))
    return 0;
  lua_settop(L, 2);
  if (!check_times(L, j, 2) || !check_sub(L, j, 2))
    return 0;
  verdict(j, TH_JWT_OK, "verified");
  return 1;
}

static int policy_ok(const th_jwt_policy *p) {
  if (!p || !p->issuer || !p->audiences || p->naudiences == 0 || p->leeway_s < 0 ||
      p->leeway_s > TH_JWT_MAX_LEEWAY_S || !(p->now >= 0.0 && p->now <= TH_JWT_MAX_TIME))
    return 0;
  for (size_t i = 0; i < p->naudiences; i++)
    if (!p->audiences[i])
      return 0;
  return 1;
}

th_jwt_status th_jwt_verify(th_jwt_verifier *v, const th_jwks *keys, const th_jwt_policy *policy,
                            const char *token, size_t len, th_jwt_claims *out, const char **why) {
  const char *unused;
  if (!why)
    why = &unused;
  if (!v || !keys || !out || !policy_ok(policy)) {
    *why = "verifier, keys or policy missing or invalid";
    return TH_JWT_INTERNAL;
  }
  if (!token || len == 0) {
    *why = "no token";
    return TH_JWT_MALFORMED;
  }
  if (len > TH_JWT_MAX_TOKEN) {
    *why = "token longer than 16384 bytes";
    return TH_JWT_TOO_LARGE;
  }
  const char *dot1 = memchr(token, '.', len);
  const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) {
    *why = "not three segments";
    return TH_JWT_MALFORMED;
  }
  size_t hlen = (size_t)(dot1 - token), plen = (size_t)(dot2 - dot1 - 1);
  size_t slen = len - (size_t)(dot2 + 1 - token);
  long hn = hlen ? b64url_decode(token, hlen, v->scratch, v->header) : -1;
  long pn = plen ? b64url_decode(dot1 + 1, plen, v->scratch, v->payload) : -1;
  long sn = b64url_decode(dot2 + 1, slen, v->scratch, v->sig);
  if (hn <= 0 || pn <= 0 || sn < 0) {
    *why = "a segment is empty or not base64url";
    return TH_JWT_MALFORMED;
  }
  vjob j = {.v = v, .keys = keys, .pol = policy, .signing_input = token,
            .signing_len = (size_t)(dot2 - token), .header_len = (size_t)hn,
            .payload_len = (size_t)pn, .sig_len = (size_t)sn};
  lua_State *L = v->L;
  lua_settop(L, 0);
  lua_pushcfunction(L, verify_job);
  lua_pushlightuserdata(L, &j);
  int st = lua_pcall(L, 1, 1, 0);
  th_jwt_status result = j.st;
  if (st == LUA_ERRMEM) {
    result = TH_JWT_INTERNAL;
    j.why = "out of memory";
  } else if (st != LUA_OK && result == TH_JWT_OK) {
    result = TH_JWT_INTERNAL; /* a raise after the last verdict: cannot happen */
    j.why = "error after verification";
  }
  if (result == TH_JWT_OK) {
    size_t n;
    const char *sub = lua_tolstring(L, -1, &n);
    char *sub_copy = sub ? malloc(n + 1) : NULL;
    char *json = sub_copy ? malloc(j.payload_len + 1) : NULL;
    if (!json) {
      free(sub_copy);
      result = TH_JWT_INTERNAL;
      j.why = "out of memory";
    } else {
      memcpy(sub_copy, sub, n + 1);
      memcpy(json, v->payload, j.payload_len);
      json[j.payload_len] = '\0';
      *out = (th_jwt_claims){sub_copy, json, j.payload_len, j.exp};
    }
  }
  lua_settop(L, 0);
  *why = j.why;
  return result;
}

const char *th_jwt_bearer(const char *value, size_t *len) {
  if (!value)
    return NULL;
  const char *p = value;
  if (strncasecmp(p, "bearer", 6) == 0 && (p[6] == ' ' || p[6] == '\0')) {
    p += 6;
    while (*p == ' ')
      p++;
  }
  size_t n = strlen(p);
  while (n > 0 && p[n - 1] == ' ')
    n--;
  if (n == 0 || memchr(p, ' ', n))
    return NULL;
  *len = n;
  return p;
}
