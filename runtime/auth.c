/* Who the caller is (see auth.h). */
#include "auth.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_modules.h"
#include "utf8.h"

struct th_auth {
  const th_config *cfg;
};

th_auth *th_auth_new(const th_config *cfg) {
  th_auth *a = calloc(1, sizeof *a);
  if (a)
    a->cfg = cfg;
  return a;
}

void th_auth_free(th_auth *a) { free(a); }

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

/* Whether the request carries credentials: an Authorization header with
 * something besides spaces. */
static int token_sent(lua_State *L, int req) {
  size_t n = 0;
  const char *v = header(L, req, "authorization", &n);
  return v && strspn(v, " \t") < n;
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

/* Lambda and --local: the sub of the claims API Gateway passed. */
static const char *from_claims(lua_State *L, int req, th_auth_outcome *out) {
  if (raw_get(L, req, "claims") != LUA_TTABLE) {
    lua_pop(L, 1);
    return "the event has no authorizer claims";
  }
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
    /* req.auth = {sub = sub, claims = claims} */
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

void th_auth_resolve(th_auth *a, lua_State *L, int req, th_auth_outcome *out) {
  out->verdict = TH_AUTH_PASS;
  out->owner = NULL;
  out->token_sent = 0;
  out->reason = NULL;
  out->sub[0] = '\0';
  if (a->cfg->auth == TH_AUTH_NONE)
    return;
  if (is_preflight(L, req)) {
    out->owner = "";
    return;
  }
  const char *why = from_claims(L, req, out);
  if (!why) {
    out->owner = out->sub;
    return;
  }
  out->verdict = TH_AUTH_DENY;
  out->reason = why;
  out->token_sent = token_sent(L, req);
  th_log_field f[] = {TH_LOG_STR("reason", why), TH_LOG_NUM("tokenSent", out->token_sent)};
  th_log(TH_LOG_INFO, th_lua_request_id(L), "unauthorized", f, (int)TH_ARRAY_LEN(f));
}
