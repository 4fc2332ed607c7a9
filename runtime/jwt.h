/* jwt — verification of `Authorization: Bearer <JWT>` for `--serve`, as API
 * Gateway's HTTP API JWT authorizer does it, and the JWKS key sets it needs.
 *
 * Key sets (th_jwks). A JWKS document (RFC 7517) is parsed once into an
 * immutable set of RSA public keys (OpenSSL EVP_PKEYs built from n and e),
 * each under its `kid`. A key is kept only when it can verify RS256: kty
 * "RSA", alg absent or "RS256", use absent or "sig", key_ops absent or
 * holding "verify", a non-empty kid (at most TH_JWKS_MAX_KID bytes) not seen
 * before in the document, n and e strict base64url (RFC 7518 6.3.1), a
 * modulus of TH_JWKS_MIN_BITS..TH_JWKS_MAX_BITS (RFC 7518 3.3: 2048 or more)
 * and an exponent of at most 256 bits (SP 800-56B's bound) that OpenSSL's
 * public-key check accepts (odd, > 1: e = 3 is accepted, as OpenSSL's
 * default provider does). Anything else (EC, OKP and oct keys, encryption keys, other
 * algorithms, broken members, non-objects) is skipped and counted by reason
 * (th_jwks_report), never an error by itself. A document that is not a JSON
 * object with a "keys" array is TH_ERR_INVALID; one over TH_JWKS_MAX_BYTES or
 * with more than TH_JWKS_MAX_KEYS entries TH_ERR_TOO_LARGE; one with zero
 * usable keys TH_ERR_INVALID, its message saying what was skipped.
 *
 * Sharing between threads. A th_jwks never changes after th_jwks_parse
 * returns it, and is reference-counted (atomically): any number of threads
 * may verify against one set at the same time. A th_jwks_cache holds the
 * current set for a location (a file path, or an http:// or https:// URL):
 * th_jwks_cache_get hands out a reference under the cache's mutex, and a
 * refetch builds the new set outside the mutex and then swaps the pointer
 * under it, so a thread still verifying keeps the set it took until it
 * releases it. Refetching follows th_jwks_refetch_allowed: at most once per
 * TH_JWKS_REFETCH_MS (60 s) counting the load at start and every attempt,
 * failed ones included, and by one thread at a time (the others do not wait;
 * the one fetching waits at most TH_JWKS_FETCH_TIMEOUT_MS for the URL).
 * A failed refetch keeps the current set.
 *
 * The request path, for the host (one th_jwt_verifier per worker thread):
 *   th_jwks *keys = th_jwks_cache_get(cache);
 *   st = th_jwt_verify(v, keys, &policy, token, len, &claims, &why);
 *   if (st == TH_JWT_UNKNOWN_KID &&
 *       th_jwks_cache_refetch(cache, th_now_ms(), err, sizeof err) == TH_OK) {
 *     th_jwks_release(keys); keys = th_jwks_cache_get(cache);
 *     st = th_jwt_verify(v, keys, &policy, token, len, &claims, &why);
 *   }
 *   th_jwks_release(keys);
 * and every status but TH_JWT_OK becomes a JSON 401 (TH_JWT_INTERNAL: 500),
 * logged with th_jwt_status_name and `why`.
 *
 * Verification (th_jwt_verify), in this order; the first failure decides:
 *   - at most TH_JWT_MAX_TOKEN bytes (TOO_LARGE); a compact JWS: exactly
 *     three segments, header and payload non-empty, each segment strict
 *     base64url without padding — only A-Z a-z 0-9 - _, no '=', no
 *     whitespace, unused low bits zero (MALFORMED);
 *   - the header a JSON object (MALFORMED); `alg` exactly "RS256" (BAD_ALG:
 *     none, HS*, ES*, PS*, RS384, "rs256", "RS256 " are all refused); no
 *     `crit` member at all, since we understand no extension (RFC 7515
 *     4.1.11); `typ`, when present, "JWT" or "at+jwt", either optionally
 *     prefixed by "application/", in any case (RFC 7515 4.1.9, RFC 9068);
 *     `kid` a string (BAD_HEADER). Other members (jku, x5u, jwk, x5c, ...)
 *     are ignored: keys come from the configured JWKS only;
 *   - a key of the set with that kid (UNKNOWN_KID: the caller may refetch);
 *   - the signature exactly the key's modulus length and a valid RSASSA-
 *     PKCS1-v1_5 SHA-256 signature over "header.payload" (OpenSSL
 *     EVP_DigestVerify) (BAD_SIGNATURE);
 *   - the payload a JSON object (MALFORMED) — parsed only once the signature
 *     holds;
 *   - `iss` a string equal to policy->issuer, byte for byte (BAD_ISSUER);
 *   - `aud`, when present, a string or an array of strings of which one
 *     equals one of policy->audiences; when absent, `client_id` a string
 *     equal to one of them (Cognito access tokens) (BAD_AUDIENCE). An `aud`
 *     of another type, an empty array or an array holding a non-string is
 *     refused, without looking at client_id;
 *   - `exp` present; `exp`, and `nbf` and `iat` when present, numbers (an
 *     integer or a fraction) in 0..TH_JWT_MAX_TIME (BAD_CLAIM: missing,
 *     null, a string, 1e300, 1e400 read as infinity, a negative time);
 *   - now < exp + leeway (EXPIRED); nbf <= now + leeway and iat <= now +
 *     leeway (NOT_YET_VALID: API Gateway also wants iat before now);
 *   - `sub` a string of 1..TH_JWT_MAX_SUB bytes of valid UTF-8 with no
 *     control character (NO_SUB): it becomes the owner of the request's data.
 * Leeway: the policy's, 0..TH_JWT_MAX_LEEWAY_S seconds; the host passes
 * TH_JWT_LEEWAY_S (60 s) for clocks of the issuer and this host that differ.
 * API Gateway documents none; 60 s is the common default of JWT libraries.
 * Times are compared as doubles after the range check, so no value of a
 * claim (1e300, -0, 1e400) reaches a cast or an overflow; the JSON reader
 * refuses NaN, Infinity and hex literals.
 * Duplicate member names in the header or payload: the last one counts (the
 * JSON reader, lua-cjson, keeps the last), which RFC 7515 section 4 allows;
 * both header and payload are covered by the signature anyway.
 * JSON nesting deeper than TH_JWT_MAX_DEPTH in either is MALFORMED.
 *
 * JSON goes through lua-cjson on a private lua_State per verifier (memory
 * capped), crypto through OpenSSL's EVP API, base64url through OpenSSL's
 * EVP_DecodeBlock after the strict checks above.
 *
 * Ownership: a th_jwt_verifier is used by one thread at a time (one per
 * worker). th_jwt_verify borrows the token, the set and the policy; on
 * TH_JWT_OK it fills *out, which the caller frees with th_jwt_claims_free;
 * on any other status *out is untouched. `why` always receives a short
 * static reason (never token content) for the log.
 */
#ifndef TH_JWT_H
#define TH_JWT_H

#include <stddef.h>

#include "common.h"

#define TH_JWT_MAX_TOKEN 16384          /* bytes of a compact token */
#define TH_JWT_MAX_DEPTH 32             /* JSON nesting of header and payload */
#define TH_JWT_MAX_SUB 256              /* bytes of `sub` */
#define TH_JWT_LEEWAY_S 60              /* the clock skew the host allows */
#define TH_JWT_MAX_LEEWAY_S 300
#define TH_JWT_MAX_TIME 253402300799.0  /* 9999-12-31T23:59:59Z */

#define TH_JWKS_MAX_BYTES (256u << 10)  /* a JWKS document */
#define TH_JWKS_MAX_KEYS 64             /* entries of its "keys" array */
#define TH_JWKS_MAX_KID 256             /* bytes of a key's kid */
#define TH_JWKS_MIN_BITS 2048
#define TH_JWKS_MAX_BITS 8192
#define TH_JWKS_REFETCH_MS 60000.0      /* at most one fetch per minute */
#define TH_JWKS_FETCH_TIMEOUT_MS 5000   /* total time of one URL fetch */

/* ---------------------------------------------------------------- key sets */

typedef struct th_jwks th_jwks;

/* Why keys of a document were skipped (a key counts once, under the first
 * reason that applies, in this order). */
typedef struct th_jwks_report {
  size_t usable;     /* keys in the set */
  size_t not_object; /* an entry that is not a JSON object */
  size_t not_rsa;    /* kty not "RSA" (EC, OKP, oct, ...) */
  size_t not_sig;    /* use not "sig", or key_ops without "verify" */
  size_t other_alg;  /* alg present and not "RS256" */
  size_t no_kid;     /* kid missing, empty, not a string or too long */
  size_t bad_key;    /* n or e missing or malformed, modulus size out of range */
  size_t duplicate;  /* a kid already taken by an earlier usable key */
} th_jwks_report;

/* Parses a JWKS document (see the top). On TH_OK *out is a set holding one
 * reference (release it with th_jwks_release) and *rep, when non-NULL, the
 * counts. Otherwise nothing is written but a one-line reason into err:
 * TH_ERR_INVALID, TH_ERR_TOO_LARGE, TH_ERR_NOMEM, TH_ERR_INTERNAL. */
th_result th_jwks_parse(const char *json, size_t len, th_jwks **out, th_jwks_report *rep,
                        char *err, size_t errlen);
/* Reads and parses a file. TH_ERR_IO when it cannot be read. */
th_result th_jwks_load_file(const char *path, th_jwks **out, th_jwks_report *rep, char *err,
                            size_t errlen);
/* GETs an http:// or https:// URL (runtime/http.h: no proxy, TLS verified,
 * TH_JWKS_FETCH_TIMEOUT_MS in all, the body capped at TH_JWKS_MAX_BYTES) and
 * parses the body. A status other than 200 is TH_ERR_UNAVAILABLE; transport
 * failures are th_http_send's results. */
th_result th_jwks_load_url(const char *url, th_jwks **out, th_jwks_report *rep, char *err,
                           size_t errlen);
/* th_jwks_load_url when location starts with http:// or https:// (any case),
 * else th_jwks_load_file. */
th_result th_jwks_load(const char *location, th_jwks **out, th_jwks_report *rep, char *err,
                       size_t errlen);

th_jwks *th_jwks_ref(th_jwks *keys);   /* one more reference; returns keys */
void th_jwks_release(th_jwks *keys);   /* the last reference frees; NULL is fine */
size_t th_jwks_count(const th_jwks *keys);
/* Whether keys holds a key with this kid (tests, logs). */
int th_jwks_has_kid(const th_jwks *keys, const char *kid);

/* The refetch rule, pure: may a fetch start at now_ms when the last one
 * (attempted, whatever its outcome) started at last_ms? Both th_now_ms()
 * times; true when at least TH_JWKS_REFETCH_MS lie between them. */
int th_jwks_refetch_allowed(double last_ms, double now_ms);

typedef struct th_jwks_cache th_jwks_cache;

/* Loads location (th_jwks_load) as the first set, counting as a fetch at
 * now_ms. On TH_OK *out is the cache (free it with th_jwks_cache_free) and
 * *rep, when non-NULL, the first set's counts; otherwise the load's result
 * and reason. */
th_result th_jwks_cache_new(const char *location, double now_ms, th_jwks_cache **out,
                            th_jwks_report *rep, char *err, size_t errlen);
/* The current set, with a reference the caller releases. Never NULL. */
th_jwks *th_jwks_cache_get(th_jwks_cache *c);
/* Loads the location again if th_jwks_refetch_allowed(last, now_ms) and no
 * other thread is fetching, and installs the new set. TH_OK: a new set is
 * in place (verify again with it). TH_ERR_THROTTLED: not now (too soon, or
 * another thread is at it); nothing was fetched. Anything else: the fetch
 * failed (reason in err) and the current set stays. */
th_result th_jwks_cache_refetch(th_jwks_cache *c, double now_ms, char *err, size_t errlen);
/* Frees the cache and its reference to the current set (threads holding a
 * reference keep theirs). No thread may use c during or after this. */
void th_jwks_cache_free(th_jwks_cache *c);

/* ------------------------------------------------------------ verification */

typedef enum th_jwt_status {
  TH_JWT_OK = 0,
  TH_JWT_TOO_LARGE,     /* longer than TH_JWT_MAX_TOKEN */
  TH_JWT_MALFORMED,     /* not a compact JWS of base64url JSON objects */
  TH_JWT_BAD_ALG,       /* alg missing or not exactly "RS256" */
  TH_JWT_BAD_HEADER,    /* crit present, typ not a JWT type, kid missing or not a string */
  TH_JWT_UNKNOWN_KID,   /* no key with that kid in the set: the caller may refetch */
  TH_JWT_BAD_SIGNATURE, /* wrong length, or does not verify with the kid's key */
  TH_JWT_BAD_ISSUER,    /* iss missing or not the configured issuer */
  TH_JWT_BAD_AUDIENCE,  /* aud (or, without aud, client_id) matches no configured audience */
  TH_JWT_BAD_CLAIM,     /* exp missing; exp, nbf or iat not a number in range */
  TH_JWT_EXPIRED,       /* exp + leeway not after now */
  TH_JWT_NOT_YET_VALID, /* nbf or iat after now + leeway */
  TH_JWT_NO_SUB,        /* sub missing, not a string, empty, too long, not UTF-8, control chars */
  TH_JWT_INTERNAL       /* out of memory, a library failure or a bad policy: not the token */
} th_jwt_status;

/* Short stable name for the log: "ok", "too_large", "malformed", "bad_alg",
 * "bad_header", "unknown_kid", "bad_signature", "bad_issuer", "bad_audience",
 * "bad_claim", "expired", "not_yet_valid", "no_sub", "internal". */
const char *th_jwt_status_name(th_jwt_status s);

typedef struct th_jwt_policy {
  const char *issuer;            /* TASKHOST_JWT_ISSUER, compared byte for byte */
  const char *const *audiences;  /* TASKHOST_JWT_AUDIENCE, split on commas */
  size_t naudiences;             /* at least 1 */
  int leeway_s;                  /* 0..TH_JWT_MAX_LEEWAY_S; the host: TH_JWT_LEEWAY_S */
  double now;                    /* seconds since the epoch (CLOCK_REALTIME), finite */
} th_jwt_policy;

/* What a verified token says. */
typedef struct th_jwt_claims {
  char *sub;       /* NUL-terminated; the request's owner */
  char *json;      /* the payload, a JSON object text exactly as signed, NUL-terminated */
  size_t json_len;
  double exp;      /* the token's exp (seconds since the epoch) */
} th_jwt_claims;

void th_jwt_claims_free(th_jwt_claims *c);

typedef struct th_jwt_verifier th_jwt_verifier;

/* NULL when out of memory. One per thread; free with th_jwt_verifier_free. */
th_jwt_verifier *th_jwt_verifier_new(void);
void th_jwt_verifier_free(th_jwt_verifier *v);

/* Verifies token[0..len) (see the top) against keys and policy. */
th_jwt_status th_jwt_verify(th_jwt_verifier *v, const th_jwks *keys, const th_jwt_policy *policy,
                            const char *token, size_t len, th_jwt_claims *out, const char **why);

/* The token of an Authorization header value, as API Gateway reads its
 * identity source: "Bearer <token>" (the scheme in any case, then one or
 * more spaces), or the bare token. Trailing spaces are dropped. Returns a
 * pointer into value and its length in *len, or NULL when value is NULL,
 * empty, holds only the scheme, or the token holds a space. Pure. */
const char *th_jwt_bearer(const char *value, size_t *len);

#endif
