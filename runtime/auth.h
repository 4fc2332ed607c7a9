/* auth — who the caller is. Turns one request (the table event.h builds) and
 * the configuration into the request's identity — the owner of the data it
 * may touch, and `req.auth` for the routes — or into the reason for a 401.
 * The host calls th_auth_resolve before any route runs; the store is then
 * bound to the owner (host.h), so no route script can reach another owner's
 * tasks.
 *
 * TASKHOST_AUTH=none: no identity. The owner is the caller's (th_invoke_ctx
 * .owner; NULL → "public"); req.auth stays nil. Nothing is refused.
 *
 * TASKHOST_AUTH=jwt, Lambda and --local: API Gateway has verified the token,
 * so taskhost reads the claims it passes (event.h: `claims`, from
 * requestContext.authorizer.jwt.claims of payload 2.0 — an HTTP API JWT
 * authorizer — or requestContext.authorizer.claims of payload 1.0 — a REST
 * API Cognito user-pool authorizer). The owner is the claim `sub`, which must
 * be a string of 1..TH_AUTH_MAX_SUB bytes of valid UTF-8 without control
 * characters; anything else (no claims, no sub, a number, "") is a 401. The
 * other claims are not checked (API Gateway did that) and go to the route as
 * they arrived: API Gateway passes every value as a string ("true",
 * "1700000000", a list as "[admins users]" in 2.0).
 *
 * TASKHOST_AUTH=jwt, --serve (a th_auth made with a key set): nothing is in
 * front, so taskhost verifies `Authorization: Bearer <JWT>` itself, as an
 * HTTP API JWT authorizer would (jwt.h: RS256 against the key set, iss =
 * TASKHOST_JWT_ISSUER, aud — or, without aud, client_id — one of
 * TASKHOST_JWT_AUDIENCE, exp, nbf and iat with TH_JWT_LEEWAY_S of leeway, a
 * sub). A token naming a kid the set lacks makes the set be fetched again
 * (at most once a minute, whichever worker asks; jwt.h) and the token
 * checked once more. The owner is the sub (the same rules as above, within
 * TH_JWT_MAX_SUB bytes); the route sees the verified claims as the token
 * holds them (numbers, booleans, lists), as req.auth.claims and req.claims.
 * Anything else is a 401; the verifier failing on its own side
 * (TH_JWT_INTERNAL: out of memory) is a 500.
 *
 * Either way a CORS preflight (OPTIONS with an Access-Control-Request-Method
 * header) passes without a token: req.auth is nil and the owner is "" — the
 * store refuses every operation for an empty owner, so a preflight can touch
 * nobody's tasks.
 *
 * Refusals: the reason goes to the log (INFO "unauthorized", with the request
 * id of the state, lua_modules.h) — never the token or a claim's value. The
 * host answers 401 {"message":"Unauthorized"} with `WWW-Authenticate: Bearer`,
 * plus `error="invalid_token"` when a token was sent (RFC 6750 section 3.1:
 * no error code when the request carried no credentials).
 *
 * Ownership: a th_auth is used by one thread at a time (one per host) and
 * borrows the configuration and the key set, which must outlive it; the key
 * set may be shared by the th_auths of every thread (jwt.h).
 */
#ifndef TH_AUTH_H
#define TH_AUTH_H

#include <lua.h>

#include "common.h"
#include "config.h"
#include "jwt.h"

/* Longest owner, in bytes: the store's limit for an owner (the DynamoDB
 * partition key `user_id` of each item). */
#define TH_AUTH_MAX_SUB 1024

typedef enum th_auth_verdict {
  TH_AUTH_PASS, /* run the route, bound to owner */
  TH_AUTH_DENY, /* answer 401 */
  TH_AUTH_FAIL  /* answer 500: the verifier failed (out of memory), not the token */
} th_auth_verdict;

typedef struct th_auth_outcome {
  th_auth_verdict verdict;
  /* PASS: NULL when auth is off (the caller's owner, or "public"); "" for a
   * preflight under jwt; otherwise the caller's sub (points into sub). */
  const char *owner;
  int token_sent;     /* DENY: the request carried a bearer token */
  const char *reason; /* DENY, FAIL: static text for the log */
  char sub[TH_AUTH_MAX_SUB + 1];
} th_auth_outcome;

typedef struct th_auth th_auth;

/* keys: NULL to read API Gateway's claims (Lambda, --local); a key set to
 * verify bearer tokens (--serve). NULL when out of memory. */
th_auth *th_auth_new(const th_config *cfg, th_jwks_cache *keys);
void th_auth_free(th_auth *a);

/* Resolves the request at the absolute index req and sets req.auth (nil, or
 * {sub = <string>, claims = <table>}). Runs inside a protected call: raises
 * only when out of memory. Writes *out always. */
void th_auth_resolve(th_auth *a, lua_State *L, int req, th_auth_outcome *out);

#endif
