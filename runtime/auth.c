/* Who the caller is (see auth.h). */
#include "auth.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "lua_modules.h"
#include "utf8.h"

struct th_auth {
  const th_config *cfg;
  th_jwks_cache *keys;       /* --serve: borrowed, shared; NULL otherwise */
  th_jwt_verifier *verifier; /* --serve: this thread's */
  th_jwt_claims claims;      /* the last verified token's, until the next
                                resolve: a Lua error while they are read
                                into the state cannot leak them */
};

th_auth *th_auth_new(const th_config *cfg, th_jwks_cache *keys) {
  th_auth *a = calloc(1, sizeof *a);
  if (!a)
    return NULL;
  a->cfg = cfg;
  a->keys = keys;
  if (keys && !(a->verifier = th_jwt_verifier_new())) {
    free(a);
    return NULL;
  }
  return a;
}

void th_auth_free(th_auth *a) {
  if (!a)
    return;
  th_jwt_claims_free(&a->claims);
  th_jwt_verifier_free(a->verifier);
  free(a);
}

/* Pushes t[key] (raw) and returns its type. */
static int raw_get(lua_State *L, int t, const char *key) {
  t = lua_absindex(L, t);
  lua_pushstring(L, key);
  return lua_rawget(L, t);
}

/* The request's header (lower-case name) or NULL. */
static const char *header(lua_State *L, int req, const char *name, size_t *len) {
  const char *v = NULL;
  int top = lua_gettop(L);
  if (raw_get(L, req, "headers") == LUA_TTABLE && raw_get(L, -1, name) == LUA_TSTRING)
    v = lua_tolstring(L, -1, len);
  lua_settop(L, top);
  return v; /* the string stays alive: the request holds it */
}

/* A CORS preflight: what a browser sends before a request it may not make
 * without asking; it never carries credentials (Fetch standard, CORS-
 * preflight request). */
static int is_preflight(lua_State *L, int req) {
  size_t n = 0;
  int options = raw_get(L, req, "method") == LUA_TSTRING &&
                strcmp(lua_tostring(L, -1), "OPTIONS") == 0;
  lua_pop(L, 1);
  return options && header(L, req, "access-control-request-method", &n) != NULL;
}

/* The bearer token of the Authorization header, as API Gateway reads its
 * identity source (th_jwt_bearer), or NULL. *sent: whether the request
 * carried one, so that the 401 says invalid_token (a header with a NUL byte,
 * which no HTTP server passes on, counts as a token that is not valid). */
static const char *bearer(lua_State *L, int req, size_t *len, int *sent) {
  size_t n = 0;
  const char *v = header(L, req, "authorization", &n);
  *sent = 0;
  if (!v)
    return NULL;
  if (memchr(v, '\0', n)) {
    *sent = 1;
    return NULL;
  }
  const char *token = th_jwt_bearer(v, len);
  *sent = token != NULL;
  return token;
}

/* Why s[0..n) cannot be an owner, or NULL: 1..TH_AUTH_MAX_SUB bytes of
 * well-formed UTF-8 without C0, DEL or C1 control characters (it is written
 * to the log's readers and is a DynamoDB key). */
static const char *bad_sub(const char *s, size_t n) {
  if (n == 0)
    return "the sub claim is empty";
  if (n > TH_AUTH_MAX_SUB)
    return "the sub claim is longer than 1024 bytes";
  if (!th_utf8_valid(s, n))
    return "the sub claim is not valid UTF-8";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] < 0xa0))
      return "the sub claim holds a control character";
  }
  return NULL;
}

/* With the claims table on top: checks claims.sub and, when it can be an
 * owner, copies it to out->sub and sets req.auth = {sub, claims}. Pops the
 * claims. Returns why not, or NULL. */
static const char *take_sub(lua_State *L, int req, th_auth_outcome *out) {
  int claims = lua_gettop(L);
  size_t n = 0;
  int type = raw_get(L, claims, "sub");
  const char *sub = type == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
  const char *why = type == LUA_TNIL ? "the claims have no sub"
                    : !sub           ? "the sub claim is not a string"
                                     : bad_sub(sub, n);
  if (!why) {
    memcpy(out->sub, sub, n);
    out->sub[n] = '\0';
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "sub");
    lua_pushvalue(L, claims);
    lua_setfield(L, -2, "claims");
    lua_setfield(L, req, "auth");
  }
  lua_settop(L, claims - 1);
  return why;
}

/* Lambda and --local: the sub of the claims API Gateway passed. Whether a
 * token came along matters only for the 401, so it is looked up then. */
static const char *from_claims(lua_State *L, int req, th_auth_outcome *out) {
  const char *why = "the event has no authorizer claims";
  if (raw_get(L, req, "claims") == LUA_TTABLE)
    why = take_sub(L, req, out);
  else
    lua_pop(L, 1);
  size_t n;
  if (why)
    bearer(L, req, &n, &out->token_sent);
  return why;
}

static double epoch_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Verifies token against the current key set; once more after a refetch
 * when it names a kid the set lacks. */
static th_jwt_status verify(th_auth *a, const char *token, size_t len, const char **why) {
  const th_config *cfg = a->cfg;
  th_jwt_policy policy = {.issuer = cfg->jwt_issuer,
                          .audiences = (const char *const *)cfg->jwt_audiences,
                          .naudiences = cfg->jwt_naudiences,
                          .leeway_s = TH_JWT_LEEWAY_S,
                          .now = epoch_seconds()};
  th_jwks *keys = th_jwks_cache_get(a->keys);
  th_jwt_status st = th_jwt_verify(a->verifier, keys, &policy, token, len, &a->claims, why);
  if (st == TH_JWT_UNKNOWN_KID) {
    char err[512] = "";
    th_result r = th_jwks_cache_refetch(a->keys, th_now_ms(), err, sizeof err);
    if (r == TH_OK) {
      th_jwks_release(keys);
      keys = th_jwks_cache_get(a->keys);
      th_log_field f[] = {TH_LOG_NUM("keys", th_jwks_count(keys))};
      th_log(TH_LOG_INFO, NULL, "JWKS fetched again for an unknown kid", f, 1);
      st = th_jwt_verify(a->verifier, keys, &policy, token, len, &a->claims, why);
    } else if (r != TH_ERR_THROTTLED) {
      th_log_field f[] = {TH_LOG_STR("error", err), TH_LOG_STR("result", th_result_name(r))};
      th_log(TH_LOG_WARN, NULL, "JWKS not fetched again; the current keys stay", f, 2);
    }
  }
  th_jwks_release(keys);
  return st;
}

/* --serve: the sub of the bearer token, verified. */
static const char *from_token(th_auth *a, lua_State *L, int req, th_auth_outcome *out,
                              const char **detail) {
  size_t len = 0;
  const char *token = bearer(L, req, &len, &out->token_sent);
  if (!token)
    return out->token_sent ? "the Authorization header is not a bearer token"
                           : "no bearer token";
  th_jwt_status st = verify(a, token, len, detail);
  if (st != TH_JWT_OK) {
    if (st == TH_JWT_INTERNAL)
      out->verdict = TH_AUTH_FAIL;
    return th_jwt_status_name(st);
  }
  /* The payload as signed: a JSON object (jwt.h), read as the route sees it. */
  th_json_decode(L, a->claims.json, a->claims.json_len);
  lua_pushvalue(L, -1);
  lua_setfield(L, req, "claims");
  return take_sub(L, req, out);
}

void th_auth_resolve(th_auth *a, lua_State *L, int req, th_auth_outcome *out) {
  out->verdict = TH_AUTH_PASS;
  out->owner = NULL;
  out->token_sent = 0;
  out->reason = NULL;
  out->sub[0] = '\0';
  th_jwt_claims_free(&a->claims);
  if (a->cfg->auth == TH_AUTH_NONE)
    return;
  if (is_preflight(L, req)) {
    out->owner = "";
    return;
  }
  const char *detail = NULL;
  const char *why = a->keys ? from_token(a, L, req, out, &detail) : from_claims(L, req, out);
  th_jwt_claims_free(&a->claims);
  if (!why) {
    out->owner = out->sub;
    return;
  }
  if (out->verdict == TH_AUTH_PASS)
    out->verdict = TH_AUTH_DENY;
  out->reason = why;
  th_log_field f[] = {TH_LOG_STR("reason", why), TH_LOG_NUM("tokenSent", out->token_sent),
                      TH_LOG_STR("detail", detail)};
  th_log(out->verdict == TH_AUTH_FAIL ? TH_LOG_ERROR : TH_LOG_INFO, th_lua_request_id(L),
         out->verdict == TH_AUTH_FAIL ? "token verification failed" : "unauthorized", f,
         detail ? 3 : 2);
}
