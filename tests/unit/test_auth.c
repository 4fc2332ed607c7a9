/* Who the caller is (runtime/auth.h) on API Gateway events, and the
 * configuration of accounts (TASKHOST_AUTH and the --serve verifier's
 * settings, runtime/config.h). Table-driven.
 *
 * The events are the fixtures of tests/fixtures/apigw-events, as copied from
 * AWS projects. None of them carries a `sub` (their claims are "claim1",
 * "claim2", or null), so the rows that need one change the decoded fixture in
 * test code first (`patch`, a Lua chunk over the global `ev`), the way
 * tests/unit/test_event.c does for paths. The claims a payload-1.0 Cognito
 * user-pool authorizer passes follow an event posted on AWS re:Post
 * ("AWS Cognito Group", question QUFJRBaEJRSmmqarNrvCWoQA): every value a
 * string, exp and iat as dates, one group as a plain string. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>

#include "auth.h"
#include "check.h"
#include "config.h"
#include "event.h"
#include "lua_modules.h"

#define SUB "7f1d6a2c-91b0-4c38-8a57-2f6e0c1d9b44"

/* The claims of a REST API Cognito user-pool authorizer (payload 1.0). */
#define COGNITO_V1                                                                       \
  "ev.requestContext.authorizer = {claims = {sub = '" SUB "', ['cognito:groups'] = 'admins', " \
  "iss = 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI', "                \
  "['cognito:username'] = '" SUB "', aud = '3n4b5urk1ft4fl3mg5e62d9ado', "                    \
  "token_use = 'id', auth_time = '1680629979', exp = 'Tue Apr 04 18:39:39 UTC 2023', "         \
  "iat = 'Tue Apr 04 17:39:39 UTC 2023', email_verified = 'true', "                            \
  "email = 'alice@example.com'}}"
/* An HTTP API JWT authorizer (payload 2.0): lists arrive as "[a b]". */
#define JWT_V2(sub_expr)                                                           \
  "local c = ev.requestContext.authorizer.jwt.claims; c.sub = " sub_expr "; "      \
  "c['cognito:groups'] = '[admins users]'; c.exp = '1893456000'"

typedef struct auth_case {
  const char *name;
  const char *file;    /* under apigw-events/ */
  const char *patch;   /* Lua run on the decoded event `ev`, or NULL */
  th_auth_mode mode;
  th_auth_verdict verdict;
  const char *owner;   /* expected owner; NULL: none (auth off) */
  const char *reason;  /* DENY: the reason logged */
  int token_sent;
  const char *claim, *claim_value; /* PASS under jwt: one claim of req.auth.claims */
} auth_case;

static const auth_case cases[] = {
    /* auth off: nothing is read, nothing refused, req.auth nil */
    {"off, v2 JWT authorizer", "apigw-v2-request-jwt-authorizer.json", NULL, TH_AUTH_NONE,
     TH_AUTH_PASS, NULL, NULL, 0, NULL, NULL},
    {"off, v2 without authorizer", "apigw-v2-request-no-authorizer.json", NULL, TH_AUTH_NONE,
     TH_AUTH_PASS, NULL, NULL, 0, NULL, NULL},
    {"off, v1 Cognito claims", "apigw-request.json", COGNITO_V1, TH_AUTH_NONE, TH_AUTH_PASS, NULL,
     NULL, 0, NULL, NULL},

    /* the fixtures as they are: claims without a sub, or no claims at all */
    {"v2 JWT authorizer, claims without sub", "apigw-v2-request-jwt-authorizer.json", NULL,
     TH_AUTH_JWT, TH_AUTH_DENY, NULL, "the claims have no sub", 0, NULL, NULL},
    {"v2 POST, claims without sub", "apiGatewayProxyV2Event.json", NULL, TH_AUTH_JWT,
     TH_AUTH_DENY, NULL, "the claims have no sub", 0, NULL, NULL},
    {"v2 GET, claims without sub", "apiGatewayProxyV2Event_GET.json", NULL, TH_AUTH_JWT,
     TH_AUTH_DENY, NULL, "the claims have no sub", 0, NULL, NULL},
    {"v2 jwt + lambda authorizer, claims without sub", "apiGatewayProxyV2LambdaAuthorizerEvent.json",
     NULL, TH_AUTH_JWT, TH_AUTH_DENY, NULL, "the claims have no sub", 0, NULL, NULL},
    {"v2 rust-http, claims without sub", "apigw_v2_proxy_request.json", NULL, TH_AUTH_JWT,
     TH_AUTH_DENY, NULL, "the claims have no sub", 0, NULL, NULL},
    {"v2 IAM authorizer", "apigw-v2-request-iam.json", NULL, TH_AUTH_JWT, TH_AUTH_DENY, NULL,
     "the event has no authorizer claims", 0, NULL, NULL},
    {"v2 no authorizer", "apigw-v2-request-no-authorizer.json", NULL, TH_AUTH_JWT, TH_AUTH_DENY,
     NULL, "the event has no authorizer claims", 0, NULL, NULL},
    {"v2 SAM local", "apigw_v2_sam_local.json", NULL, TH_AUTH_JWT, TH_AUTH_DENY, NULL,
     "the event has no authorizer claims", 0, NULL, NULL},
    {"v1 HTTP API, claims null", "apiGatewayProxyEvent.json", NULL, TH_AUTH_JWT, TH_AUTH_DENY, NULL,
     "the event has no authorizer claims", 0, NULL, NULL},
    {"v1 REST, custom authorizer context", "apigw-request.json", NULL, TH_AUTH_JWT, TH_AUTH_DENY,
     NULL, "the event has no authorizer claims", 0, NULL, NULL},
    {"v1 lambda authorizer principalId", "apiGatewayProxyEventPrincipalId.json", NULL, TH_AUTH_JWT,
     TH_AUTH_DENY, NULL, "the event has no authorizer claims", 0, NULL, NULL},
    {"v1 console test", "example-apigw-console-test-request.json", NULL, TH_AUTH_JWT, TH_AUTH_DENY,
     NULL, "the event has no authorizer claims", 0, NULL, NULL},

    /* a sub: the owner; the other claims reach the route as they arrived */
    {"v2 JWT authorizer with sub", "apigw-v2-request-jwt-authorizer.json", JWT_V2("'" SUB "'"),
     TH_AUTH_JWT, TH_AUTH_PASS, SUB, NULL, 0, "claim1", "value1"},
    {"v2 with sub: cognito:groups as API Gateway passes it", "apiGatewayProxyV2Event.json",
     JWT_V2("'" SUB "'"), TH_AUTH_JWT, TH_AUTH_PASS, SUB, NULL, 0, "cognito:groups",
     "[admins users]"},
    {"v2 jwt + lambda authorizer with sub", "apiGatewayProxyV2LambdaAuthorizerEvent.json",
     JWT_V2("'" SUB "'"), TH_AUTH_JWT, TH_AUTH_PASS, SUB, NULL, 0, "claim1", "value1"},
    {"v1 REST Cognito authorizer", "apigw-request.json", COGNITO_V1, TH_AUTH_JWT, TH_AUTH_PASS, SUB,
     NULL, 0, "cognito:groups", "admins"},
    {"v1 HTTP API Cognito claims", "apiGatewayProxyEvent.json", COGNITO_V1, TH_AUTH_JWT,
     TH_AUTH_PASS, SUB, NULL, 0, "email_verified", "true"},
    {"v1 claims and a lambda authorizer's sub beside them", "apigw-request.json",
     "ev.requestContext.authorizer.claims = {sub = 'from-claims'}; "
     "ev.requestContext.authorizer.sub = 'beside'",
     TH_AUTH_JWT, TH_AUTH_PASS, "from-claims", NULL, 0, "sub", "from-claims"},
    {"sub of 1024 bytes", "apigw-v2-request-jwt-authorizer.json", JWT_V2("('s'):rep(1024)"),
     TH_AUTH_JWT, TH_AUTH_PASS, NULL, NULL, 0, "claim2", "value2"},
    {"sub in UTF-8", "apigw-v2-request-jwt-authorizer.json", JWT_V2("'j\\195\\188rgen|\\226\\130\\172'"),
     TH_AUTH_JWT, TH_AUTH_PASS, "j\xc3\xbcrgen|\xe2\x82\xac", NULL, 0, "claim1", "value1"},

    /* a sub that cannot be an owner */
    {"sub a number", "apigw-request.json",
     "ev.requestContext.authorizer = {claims = {sub = 12345}}", TH_AUTH_JWT, TH_AUTH_DENY, NULL,
     "the sub claim is not a string", 0, NULL, NULL},
    {"sub a boolean", "apigw-v2-request-jwt-authorizer.json", JWT_V2("true"), TH_AUTH_JWT,
     TH_AUTH_DENY, NULL, "the sub claim is not a string", 0, NULL, NULL},
    {"sub a list", "apigw-v2-request-jwt-authorizer.json", JWT_V2("{'a'}"), TH_AUTH_JWT,
     TH_AUTH_DENY, NULL, "the sub claim is not a string", 0, NULL, NULL},
    {"sub null", "apigw-v2-request-jwt-authorizer.json",
     "ev.requestContext.authorizer.jwt.claims.sub = json_null", TH_AUTH_JWT, TH_AUTH_DENY, NULL,
     "the sub claim is not a string", 0, NULL, NULL},
    {"sub empty", "apigw-v2-request-jwt-authorizer.json", JWT_V2("''"), TH_AUTH_JWT, TH_AUTH_DENY,
     NULL, "the sub claim is empty", 0, NULL, NULL},
    {"sub of 1025 bytes", "apigw-v2-request-jwt-authorizer.json", JWT_V2("('s'):rep(1025)"),
     TH_AUTH_JWT, TH_AUTH_DENY, NULL, "the sub claim is longer than 1024 bytes", 0, NULL, NULL},
    {"sub not UTF-8", "apigw-v2-request-jwt-authorizer.json", JWT_V2("'ab\\255'"), TH_AUTH_JWT,
     TH_AUTH_DENY, NULL, "the sub claim is not valid UTF-8", 0, NULL, NULL},
    {"sub a surrogate", "apigw-v2-request-jwt-authorizer.json", JWT_V2("'\\237\\160\\128'"),
     TH_AUTH_JWT, TH_AUTH_DENY, NULL, "the sub claim is not valid UTF-8", 0, NULL, NULL},
    {"sub with a newline", "apigw-v2-request-jwt-authorizer.json", JWT_V2("'a\\nb'"), TH_AUTH_JWT,
     TH_AUTH_DENY, NULL, "the sub claim holds a control character", 0, NULL, NULL},
    {"sub with NUL", "apigw-v2-request-jwt-authorizer.json", JWT_V2("'a\\0b'"), TH_AUTH_JWT,
     TH_AUTH_DENY, NULL, "the sub claim holds a control character", 0, NULL, NULL},
    {"sub with DEL", "apigw-v2-request-jwt-authorizer.json", JWT_V2("'a\\127'"), TH_AUTH_JWT,
     TH_AUTH_DENY, NULL, "the sub claim holds a control character", 0, NULL, NULL},
    {"sub with U+0085 (C1)", "apigw-v2-request-jwt-authorizer.json", JWT_V2("'a\\194\\133'"),
     TH_AUTH_JWT, TH_AUTH_DENY, NULL, "the sub claim holds a control character", 0, NULL, NULL},
    {"claims a string", "apigw-request.json", "ev.requestContext.authorizer = {claims = 'x'}",
     TH_AUTH_JWT, TH_AUTH_DENY, NULL, "the event has no authorizer claims", 0, NULL, NULL},

    /* a token came along (API Gateway let it through without claims): invalid_token */
    {"no claims, a bearer token", "apigw-v2-request-no-authorizer.json",
     "ev.headers.Authorization = 'Bearer eyJ.x.y'", TH_AUTH_JWT, TH_AUTH_DENY, NULL,
     "the event has no authorizer claims", 1, NULL, NULL},
    {"no sub, a v1 token header", "apigw-request.json",
     "ev.headers.authorization = 'eyJ.x.y'; ev.multiValueHeaders.authorization = {'eyJ.x.y'}",
     TH_AUTH_JWT, TH_AUTH_DENY, NULL, "the event has no authorizer claims", 1, NULL, NULL},
    {"an empty Authorization header is no token", "apigw-v2-request-no-authorizer.json",
     "ev.headers.authorization = '  '", TH_AUTH_JWT, TH_AUTH_DENY, NULL,
     "the event has no authorizer claims", 0, NULL, NULL},

    /* CORS preflight: never a 401; the owner "" reaches nobody's tasks */
    {"v2 preflight without claims", "apigw-v2-request-no-authorizer.json",
     "ev.requestContext.http.method = 'OPTIONS'; ev.headers['Access-Control-Request-Method'] = 'PUT'",
     TH_AUTH_JWT, TH_AUTH_PASS, "", NULL, 0, NULL, NULL},
    {"v1 preflight without claims", "apiGatewayProxyEvent.json",
     "ev.httpMethod = 'OPTIONS'; ev.headers['access-control-request-method'] = 'DELETE'; "
     "ev.multiValueHeaders['access-control-request-method'] = {'DELETE'}",
     TH_AUTH_JWT, TH_AUTH_PASS, "", NULL, 0, NULL, NULL},
    {"v2 preflight with claims: still no owner", "apigw-v2-request-jwt-authorizer.json",
     JWT_V2("'" SUB "'") "; ev.requestContext.http.method = 'OPTIONS'; "
     "ev.headers['access-control-request-method'] = 'GET'",
     TH_AUTH_JWT, TH_AUTH_PASS, "", NULL, 0, NULL, NULL},
    {"OPTIONS without Access-Control-Request-Method", "apigw-v2-request-no-authorizer.json",
     "ev.requestContext.http.method = 'OPTIONS'", TH_AUTH_JWT, TH_AUTH_DENY, NULL,
     "the event has no authorizer claims", 0, NULL, NULL},
    {"Access-Control-Request-Method on a GET", "apigw-v2-request-no-authorizer.json",
     "ev.headers['access-control-request-method'] = 'GET'", TH_AUTH_JWT, TH_AUTH_DENY, NULL,
     "the event has no authorizer claims", 0, NULL, NULL},
};

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  fclose(f);
  if (s) {
    s[n] = '\0';
    *len = (size_t)n;
  }
  return s;
}

typedef struct run_call {
  const auth_case *c;
  const char *text;
  size_t len;
  th_auth *auth;
  th_auth_outcome out;
  char err[256];
} run_call;

/* Decodes the fixture, applies the patch, encodes it again, then the event
 * → request → auth path of the host; leaves the request table on top. */
static int run_protected(lua_State *L) {
  run_call *r = lua_touserdata(L, 1);
  th_json_decode(L, r->text, r->len);
  if (r->c->patch) {
    lua_setglobal(L, "ev");
    th_json_push_null(L);
    lua_setglobal(L, "json_null");
    if (luaL_dostring(L, r->c->patch) != LUA_OK)
      return lua_error(L);
    lua_getglobal(L, "ev");
  }
  th_json_encode(L, -1);
  size_t len;
  const char *event = lua_tolstring(L, -1, &len);
  th_event_info info;
  if (th_event_push_request(L, event, len, &info, r->err, sizeof r->err) != TH_OK)
    return luaL_error(L, "not an event: %s", r->err);
  th_auth_resolve(r->auth, L, lua_gettop(L), &r->out);
  return 1;
}

static void check_case(lua_State *L, const char *dir, const auth_case *c) {
  char path[1024];
  snprintf(path, sizeof path, "%s/apigw-events/%s", dir, c->file);
  size_t len = 0;
  char *text = slurp(path, &len);
  CHECK(text != NULL, "%s: cannot read %s", c->name, path);
  if (!text)
    return;
  th_config cfg = {.auth = c->mode};
  run_call r = {.c = c, .text = text, .len = len, .auth = th_auth_new(&cfg, NULL)};
  memset(r.out.sub, 'x', sizeof r.out.sub); /* resolve must write it */
  lua_settop(L, 0);
  lua_pushcfunction(L, run_protected);
  lua_pushlightuserdata(L, &r);
  int status = lua_pcall(L, 1, 1, 0);
  CHECK(status == LUA_OK, "%s: raised %s", c->name, lua_tostring(L, -1));
  if (status == LUA_OK) {
    int req = lua_gettop(L);
    CHECK(r.out.verdict == c->verdict, "%s: verdict %d", c->name, (int)r.out.verdict);
    CHECK(r.out.token_sent == c->token_sent, "%s: token_sent %d", c->name, r.out.token_sent);
    if (c->verdict == TH_AUTH_DENY) {
      CHECK_STR(r.out.reason, c->reason);
    } else if (c->mode == TH_AUTH_NONE || (c->owner && !*c->owner)) {
      CHECK(c->owner ? r.out.owner && strcmp(r.out.owner, c->owner) == 0 : r.out.owner == NULL,
            "%s: owner '%s'", c->name, r.out.owner ? r.out.owner : "(null)");
    } else {
      /* owner == req.auth.sub == claims.sub (c->owner, when given) */
      lua_getfield(L, req, "claims");
      lua_getfield(L, -1, "sub");
      const char *sub = lua_tostring(L, -1);
      CHECK(r.out.owner && sub && strcmp(r.out.owner, sub) == 0, "%s: owner '%s', claims.sub '%s'",
            c->name, r.out.owner ? r.out.owner : "(null)", sub ? sub : "(null)");
      if (c->owner)
        CHECK_STR(r.out.owner, c->owner);
      lua_pop(L, 2);
    }
    lua_getfield(L, req, "auth");
    if (c->verdict == TH_AUTH_PASS && c->mode == TH_AUTH_JWT && c->owner && !*c->owner) {
      CHECK(lua_isnil(L, -1), "%s: preflight: req.auth is a %s", c->name, luaL_typename(L, -1));
    } else if (c->verdict == TH_AUTH_PASS && c->mode == TH_AUTH_JWT) {
      CHECK(lua_istable(L, -1), "%s: req.auth is a %s", c->name, luaL_typename(L, -1));
      if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "sub");
        CHECK(lua_type(L, -1) == LUA_TSTRING && r.out.owner &&
                  strcmp(lua_tostring(L, -1), r.out.owner) == 0,
              "%s: req.auth.sub", c->name);
        lua_getfield(L, -2, "claims");
        lua_getfield(L, -1, c->claim);
        CHECK_STR(lua_tostring(L, -1), c->claim_value);
        lua_getfield(L, req, "claims");
        CHECK(lua_rawequal(L, -1, -3), "%s: req.auth.claims is req.claims", c->name);
        lua_pop(L, 4);
      }
    } else {
      CHECK(lua_isnil(L, -1), "%s: req.auth is a %s", c->name, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  th_auth_free(r.auth);
  free(text);
}

/* ---- configuration ---- */

typedef struct config_case {
  const char *name;
  const char *auth, *jwks, *issuer, *audience; /* NULL: unset */
  th_result rc;
  const char *err;       /* a part of the one-line error */
  th_auth_mode mode;
  const char *audiences; /* the list read, joined with '|' */
  const char *serve_err; /* th_config_check_serve: NULL when it passes */
} config_case;

static const config_case configs[] = {
    {"unset: none", NULL, NULL, NULL, NULL, TH_OK, NULL, TH_AUTH_NONE, "", NULL},
    {"none", "none", NULL, NULL, NULL, TH_OK, NULL, TH_AUTH_NONE, "", NULL},
    {"empty: the default", "", NULL, NULL, NULL, TH_OK, NULL, TH_AUTH_NONE, "", NULL},
    {"none ignores the jwt settings", "none", "/x", "iss", ",,", TH_OK, NULL, TH_AUTH_NONE, "",
     NULL},
    {"jwt alone: Lambda and --local", "jwt", NULL, NULL, NULL, TH_OK, NULL, TH_AUTH_JWT, "",
     "needs TASKHOST_JWKS, TASKHOST_JWT_ISSUER and TASKHOST_JWT_AUDIENCE to be set"},
    {"jwt without JWKS", "jwt", NULL, "https://issuer", "client", TH_OK, NULL, TH_AUTH_JWT,
     "client", "needs TASKHOST_JWKS to be set"},
    {"jwt without issuer", "jwt", "/keys.json", NULL, "client", TH_OK, NULL, TH_AUTH_JWT, "client",
     "needs TASKHOST_JWT_ISSUER to be set"},
    {"jwt without audience", "jwt", "/keys.json", "https://issuer", NULL, TH_OK, NULL, TH_AUTH_JWT,
     "", "needs TASKHOST_JWT_AUDIENCE to be set"},
    {"jwt without issuer and audience", "jwt", "/keys.json", NULL, NULL, TH_OK, NULL, TH_AUTH_JWT,
     "", "needs TASKHOST_JWT_ISSUER and TASKHOST_JWT_AUDIENCE to be set"},
    {"jwt complete", "jwt", "https://idp.example/jwks.json", "https://idp.example/", "a", TH_OK,
     NULL, TH_AUTH_JWT, "a", NULL},
    {"audiences trimmed", "jwt", "/k", "i", " a1 ,\tb2, c3 ", TH_OK, NULL, TH_AUTH_JWT,
     "a1|b2|c3", NULL},
    {"an empty audience between commas", "jwt", "/k", "i", "a,,b", TH_ERR_INVALID,
     "invalid TASKHOST_JWT_AUDIENCE='a,,b': an empty entry", TH_AUTH_NONE, NULL, NULL},
    {"a trailing comma", "jwt", "/k", "i", "a,", TH_ERR_INVALID, "invalid TASKHOST_JWT_AUDIENCE",
     TH_AUTH_NONE, NULL, NULL},
    {"only spaces between commas", "jwt", "/k", "i", " , ", TH_ERR_INVALID,
     "invalid TASKHOST_JWT_AUDIENCE", TH_AUTH_NONE, NULL, NULL},
    {"an unknown mode", "cognito", NULL, NULL, NULL, TH_ERR_INVALID,
     "invalid TASKHOST_AUTH='cognito': expected 'none' or 'jwt'", TH_AUTH_NONE, NULL, NULL},
    {"modes are lower case", "JWT", NULL, NULL, NULL, TH_ERR_INVALID,
     "invalid TASKHOST_AUTH='JWT'", TH_AUTH_NONE, NULL, NULL},
};

static void set_or_unset(const char *name, const char *value) {
  if (value)
    setenv(name, value, 1);
  else
    unsetenv(name);
}

static void check_config(const config_case *c) {
  set_or_unset("TASKHOST_AUTH", c->auth);
  set_or_unset("TASKHOST_JWKS", c->jwks);
  set_or_unset("TASKHOST_JWT_ISSUER", c->issuer);
  set_or_unset("TASKHOST_JWT_AUDIENCE", c->audience);
  th_config cfg;
  char err[512] = "";
  th_result rc = th_config_from_env(&cfg, ".", err, sizeof err);
  CHECK(rc == c->rc, "%s: %s (%s)", c->name, th_result_name(rc), err);
  if (rc != TH_OK) {
    CHECK(c->err && strstr(err, c->err) != NULL && !strchr(err, '\n'), "%s: error '%s'", c->name,
          err);
    return;
  }
  CHECK(cfg.auth == c->mode, "%s: mode %d", c->name, (int)cfg.auth);
  char joined[256] = "";
  size_t used = 0;
  for (size_t i = 0; i < cfg.jwt_naudiences; i++)
    used += (size_t)snprintf(joined + used, sizeof joined - used, "%s%s", i ? "|" : "",
                             cfg.jwt_audiences[i]);
  CHECK_STR(joined, c->audiences);
  if (c->mode == TH_AUTH_JWT) {
    CHECK(c->jwks ? cfg.jwks && strcmp(cfg.jwks, c->jwks) == 0 : !cfg.jwks, "%s: jwks", c->name);
    CHECK(c->issuer ? cfg.jwt_issuer && strcmp(cfg.jwt_issuer, c->issuer) == 0 : !cfg.jwt_issuer,
          "%s: issuer", c->name);
  } else {
    CHECK(!cfg.jwks && !cfg.jwt_issuer && !cfg.jwt_naudiences, "%s: jwt settings read", c->name);
  }
  err[0] = '\0';
  rc = th_config_check_serve(&cfg, err, sizeof err);
  if (c->serve_err)
    CHECK(rc == TH_ERR_INVALID && strstr(err, c->serve_err) != NULL && !strchr(err, '\n'),
          "%s: --serve: %s '%s'", c->name, th_result_name(rc), err);
  else
    CHECK(rc == TH_OK, "%s: --serve refused: %s", c->name, err);
  th_config_free(&cfg);
}

int main(void) {
  const char *dir = getenv("FIXTURES");
  if (!dir)
    dir = "tests/fixtures";
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  th_json_setup(L);
  th_lua_set_request_id(L, "test-auth");
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++)
    check_case(L, dir, &cases[i]);
  lua_close(L);

  unsetenv("TABLE_NAME");
  unsetenv("TASKHOST_STORE");
  for (size_t i = 0; i < TH_ARRAY_LEN(configs); i++)
    check_config(&configs[i]);
  return CHECK_DONE();
}
