/* sigv4 — AWS Signature Version 4 (AWS4-HMAC-SHA256) request signing.
 *
 * Provides a pure function, th_sigv4_sign: from a request (method, raw path,
 * raw query, headers, payload or payload hash), credentials, region, service
 * and a signing time it computes what the caller must add to the request —
 * headers (X-Amz-Date, X-Amz-Security-Token, x-amz-content-sha256,
 * Authorization) or, when presigning, query parameters — together with the
 * intermediate canonical request, string to sign and signature for tests.
 * No clock, no environment, no I/O: the time and the secrets come in as
 * arguments. Uses OpenSSL libcrypto for SHA-256 (fetched once per process;
 * HMAC is computed over it). A client signing many requests keeps the day's
 * signing key (th_sigv4_key_update) and passes it in th_sigv4_params.
 *
 * Ownership: inputs are borrowed for the duration of the call. The result
 * owns everything it points to; release it with th_sigv4_result_free.
 *
 * Input rules. Input that breaks them is TH_ERR_INVALID; more headers than
 * TH_SIGV4_MAX_HEADERS, or a header value, path, query or canonical request
 * past its TH_SIGV4_MAX_* size is TH_ERR_TOO_LARGE (an over-long method,
 * header name, credential, region or service is simply invalid).
 * - method: an HTTP token ("GET", "POST", ...), signed exactly as given.
 * - path: the raw path of the request target, starting with '/' (NULL or ""
 *   mean "/"). It may hold spaces, UTF-8 and %XX. By default it is
 *   normalised (dot segments removed, runs of '/' collapsed, as botocore
 *   does) and then percent-encoded once more ("double encoding", what every
 *   service but S3 expects): "/a b/%41" becomes "/a%20b/%2541".
 * - query: the raw query without '?', or NULL/"". Split on '&'; each piece
 *   is key[=value]; empty pieces are ignored; keys and values are
 *   percent-decoded ('+' stays '+') and re-encoded, so pre-encoded and raw
 *   input give the same result. A '%' not followed by two hex digits is
 *   invalid. A key without '=' is signed as "key=".
 * - headers: name/value pairs in request order; repeated names allowed
 *   (joined with ',' in order). Names are HTTP tokens, compared without case.
 *   Values may carry leading/trailing/inner whitespace and folded line
 *   breaks (CR, LF): runs of SP, HT, CR, LF, VT, FF become one space and the
 *   ends are trimmed, so a folded value may be passed joined or not. Other
 *   control characters are invalid. A Host header is required. The
 *   headers user-agent, expect and x-amzn-trace-id are left unsigned (as the
 *   AWS SDKs do: proxies rewrite them). In header mode the headers the
 *   signer adds (Authorization, X-Amz-Date, and X-Amz-Security-Token /
 *   x-amz-content-sha256 when it adds them) must not be passed.
 * - payload: payload/payload_len, or payload_hash (64 lower-case hex digits,
 *   or a literal such as "UNSIGNED-PAYLOAD") which then wins.
 * - credentials: visible ASCII; the access key id has no '/' or ','. A
 *   session token travels as X-Amz-Security-Token (signed unless
 *   TH_SIGV4_OMIT_TOKEN). Region and service: [A-Za-z0-9._-].
 * - presigning (TH_SIGV4_PRESIGN) signs the request's own headers, puts the
 *   X-Amz-* fields into the canonical query (the query must not carry them
 *   already) and still hashes the payload; pass payload_hash
 *   "UNSIGNED-PAYLOAD" where a service wants that.
 */
#ifndef TH_SIGV4_H
#define TH_SIGV4_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>

#define TH_SIGV4_MAX_HEADERS 128      /* input headers */
#define TH_SIGV4_MAX_NAME 256         /* header name, bytes */
#define TH_SIGV4_MAX_VALUE 16384      /* header value, bytes */
#define TH_SIGV4_MAX_PATH 8192        /* raw path, bytes */
#define TH_SIGV4_MAX_QUERY 16384      /* raw query, bytes */
#define TH_SIGV4_MAX_CREDENTIAL 4096  /* access key id, secret access key */
#define TH_SIGV4_MAX_TOKEN 8192       /* session token */
#define TH_SIGV4_MAX_CANONICAL (1u << 20) /* canonical request, bytes */
#define TH_SIGV4_MAX_EXPIRES 604800   /* presigned URLs: 7 days at most */
#define TH_SIGV4_MAX_ADDED 8          /* headers or parameters added */

typedef struct th_sigv4_header {
  const char *name;
  const char *value;
} th_sigv4_header;

/* A UTC instant, broken down. Valid years are 1970..9999. */
typedef struct th_sigv4_time {
  int year, month, day;    /* 2015, 8, 30 */
  int hour, minute, second;
} th_sigv4_time;

typedef struct th_sigv4_request {
  const char *method;
  const char *path;
  const char *query;
  const th_sigv4_header *headers;
  size_t nheaders;
  const void *payload;         /* may be NULL when payload_len is 0 */
  size_t payload_len;
  const char *payload_hash;    /* optional: used instead of hashing payload */
} th_sigv4_request;

typedef struct th_sigv4_credentials {
  const char *access_key_id;
  const char *secret_access_key;
  const char *session_token;   /* NULL or "" for long-term credentials */
} th_sigv4_credentials;

/* Options; the zero value is right for DynamoDB and most services. */
enum {
  TH_SIGV4_NO_NORMALIZE = 1u << 0,     /* sign the path as given (S3) */
  TH_SIGV4_NO_DOUBLE_ENCODE = 1u << 1, /* the path is already encoded (S3):
                                          keep its %XX, encode only the rest */
  TH_SIGV4_SIGN_BODY = 1u << 2,        /* header mode: add and sign
                                          x-amz-content-sha256 */
  TH_SIGV4_OMIT_TOKEN = 1u << 3,       /* leave the session token out of the
                                          signature; add it afterwards */
  TH_SIGV4_PRESIGN = 1u << 4           /* query mode: sign into the URL */
};

typedef struct th_sigv4_params {
  const char *region;          /* "eu-west-1" */
  const char *service;         /* "dynamodb" */
  th_sigv4_time time;          /* the signing time (X-Amz-Date) */
  unsigned flags;              /* TH_SIGV4_* */
  long expires;                /* presign only: X-Amz-Expires, 1..7 days */
  /* Optional: a signing key already derived (th_sigv4_key_update) for the
   * same secret, region and service. Used only when its date is the
   * signing time's UTC day; otherwise (or NULL) the key is derived here
   * (4 HMACs), so a stale key costs time, never a wrong signature. */
  const struct th_sigv4_key *signing_key;
} th_sigv4_params;

#define TH_SIGV4_KEY_LEN 32

/* HMAC-SHA256 (RFC 2104) of msg under key, on SHA-256 fetched once (the
 * one-shot HMAC() looks the algorithm up in OpenSSL's provider store on
 * every call, which costs more than hashing a short message). Pure; also
 * seals the pagination cursors (cursor.c). TH_ERR_NOMEM / TH_ERR_INTERNAL
 * when OpenSSL fails. */
th_result th_sigv4_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                               unsigned char out[TH_SIGV4_KEY_LEN]);

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service),
 * "aws4_request") for date "YYYYMMDD": the same for every request signed that
 * UTC day in that scope, so a client derives it once a day. Pure.
 * TH_ERR_INVALID for an empty or over-long secret or a date not 8 bytes. */
th_result th_sigv4_signing_key(const char *secret, const char *date, const char *region,
                               const char *service, unsigned char out[TH_SIGV4_KEY_LEN]);

/* A signing key and the UTC day it is for; the zero value is empty. The
 * owner keeps it with the secret, region and service it was derived from
 * (one per client; a client is used by one thread at a time). */
typedef struct th_sigv4_key {
  char date[9];                        /* "YYYYMMDD", or "" */
  unsigned char key[TH_SIGV4_KEY_LEN]; /* kSigning of that day */
} th_sigv4_key;

/* Makes *k hold the key of t's UTC day: derives it when k is empty or for
 * another day, else leaves it as is. On failure k is left empty (wiped). */
th_result th_sigv4_key_update(th_sigv4_key *k, const char *secret, const char *region,
                              const char *service, const th_sigv4_time *t);

typedef struct th_sigv4_result {
  /* Header mode: the headers to add, in this order: X-Amz-Date,
   * X-Amz-Security-Token (with a token), x-amz-content-sha256 (SIGN_BODY),
   * Authorization. Empty in query mode. */
  th_sigv4_header headers[TH_SIGV4_MAX_ADDED];
  size_t nheaders;
  /* Query mode: the parameters to add, values already percent-encoded:
   * X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders,
   * X-Amz-Expires, X-Amz-Security-Token (with a token), X-Amz-Signature.
   * `query` is the same joined with '&', to append after '?' or '&'.
   * Empty (NULL) in header mode. */
  th_sigv4_header params[TH_SIGV4_MAX_ADDED];
  size_t nparams;
  char *query;
  /* For tests and debugging. */
  char *canonical_request;
  char *string_to_sign;
  char signature[65];          /* lower-case hex */
  char *store_;                /* private: the text behind headers/params */
} th_sigv4_result;

/* Signs `req`. On success fills *out (caller frees with th_sigv4_result_free)
 * and returns TH_OK; on failure leaves *out untouched and, when `why` is not
 * NULL, points it at a short static description of what was rejected. */
th_result th_sigv4_sign(const th_sigv4_request *req, const th_sigv4_credentials *cred,
                        const th_sigv4_params *params, th_sigv4_result *out,
                        const char **why);

/* Frees what `r` owns and zeroes it; safe on a zeroed or freed result. */
void th_sigv4_result_free(th_sigv4_result *r);

/* Breaks a Unix time down (pure arithmetic, no time zone). TH_ERR_INVALID
 * outside 1970..9999. */
th_result th_sigv4_time_from_unix(int64_t t, th_sigv4_time *out);

/* The canonicalisation steps, exported for the unit tests only (the curl
 * model: internal, but linkable). Each appends to `out` and, on failure,
 * may leave a partial append behind. */
#ifdef TH_SIGV4_TESTING
/* Percent-encodes n bytes: everything but A-Z a-z 0-9 - . _ ~ (and '/'
 * when keep_slash) becomes %XX with upper-case hex. */
th_result th_sigv4_uri_encode(th_buf *out, const char *s, size_t n, int keep_slash);
/* Removes dot segments and collapses runs of '/' (botocore's rule). */
th_result th_sigv4_normalize_path(th_buf *out, const char *path, size_t n);
/* The canonical URI for `path` under `flags` (NO_NORMALIZE, NO_DOUBLE_ENCODE). */
th_result th_sigv4_canonical_path(th_buf *out, const char *path, unsigned flags);
/* The canonical query string for a raw query. */
th_result th_sigv4_canonical_query(th_buf *out, const char *query);
/* A header value trimmed, with whitespace runs collapsed to one space. */
th_result th_sigv4_fold_value(th_buf *out, const char *value);
#endif

#endif
