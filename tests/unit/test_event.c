/* Event normalisation on the API Gateway fixture events (tests/fixtures/
 * apigw-events, copied from AWS projects), plus hand-made edge cases, and the
 * response writers. Table-driven: one row per fixture. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>

#include "check.h"
#include "event.h"
#include "lua_modules.h"

typedef struct expect {
  const char *file;
  int version;
  const char *method;
  const char *path;
  const char *header_name, *header_value; /* one header to check, lower-case name */
  const char *query_name, *query_last;    /* one query parameter */
  int query_count;                        /* values of query_name in multi_query */
  const char *body_prefix;                /* NULL: no body */
  int body_invalid;
  const char *source_ip;
} expect;

static const expect fixtures[] = {
    {"apiGatewayProxyEvent.json", 1, "GET", "/my/path", "header2", "value1,value2", "parameter1",
     "value2", 2, "Hello from Lambda!", 0, "192.168.0.1/32"},
    {"apiGatewayProxyEventAnotherPath.json", 1, "GET", "/my/anotherPath", "header1", "value1",
     "parameter2", "value", 1, NULL, 1, "192.168.0.1/32"},
    {"apiGatewayProxyEventPrincipalId.json", 1, "POST", "/trip", NULL, NULL, NULL, NULL, 0, NULL,
     0, NULL},
    {"apiGatewayProxyOtherEvent.json", 1, "GET", "/other/path", "origin", "https://aws.amazon.com",
     "parameter1", "value2", 2, "Hello from Lambda!", 0, "192.168.0.1/32"},
    {"apiGatewayProxyV2Event.json", 2, "POST", "/my/path", "header2", "value1,value2", "parameter1",
     "value2", 2, "{\"message\": \"hello world\"", 0, "192.168.0.1/32"},
    {"apiGatewayProxyV2Event_GET.json", 2, "GET", "/my/path", "cookie", "cookie1; cookie2",
     "parameter2", "value", 1, NULL, 0, "192.168.0.1/32"},
    {"apiGatewayProxyV2LambdaAuthorizerEvent.json", 2, "GET", "/my/path", "header1", "value1",
     "parameter1", "value2", 2, "{\r\n\t\"a\": 1\r\n}", 0, "192.168.0.1/32"},
    {"apigw-request.json", 1, "POST", "/hello/world", "content-type", "application/json", "name",
     "me", 1, "{\r\n\t\"a\": 1\r\n}", 0, "192.168.196.186"},
    {"apigw-v2-request-iam.json", 2, "GET", "/my/path", "header2", "value2", "parameter1", "value2",
     2, "{\r\n\t\"a\": 1\r\n}", 0, "IP"},
    {"apigw-v2-request-jwt-authorizer.json", 2, "GET", "/my/path", "cookie", "cookie1; cookie2",
     "parameter2", "value", 1, "{\r\n\t\"a\": 1\r\n}", 0, "IP"},
    {"apigw-v2-request-no-authorizer.json", 2, "GET", "/", "x-forwarded-for", "1.2.3.4", NULL,
     NULL, 0, NULL, 0, "1.2.3.4"},
    {"apigw_multi_value_proxy_request.json", 1, "POST", "/hello/world", "accept", "*/*",
     "multiValueName", "me", 2, "{\r\n\t\"a\": 1\r\n}", 0, "192.168.196.186"},
    {"apigw_proxy_request.json", 1, "GET", "/hello", "host",
     "wt6mne2s9k.execute-api.us-west-2.amazonaws.com", "name", "me", 1, NULL, 0, "192.168.100.1"},
    {"apigw_v2_proxy_request.json", 2, "POST", "/my/path", "cookie", "cookie1=value1; cookie2=value2",
     "parameter1", "value2", 2, "Hello from Lambda", 0, "IP"},
    {"apigw_v2_proxy_request_minimal.json", 2, "GET", "/", "user-agent", "curl/7.64.1", NULL, NULL,
     0, NULL, 0, "65.78.31.245"},
    {"apigw_v2_sam_local.json", 2, "GET", "/hello", "host", "127.0.0.1:3000", NULL, NULL, 0, "", 0,
     "127.0.0.1"},
    {"example-apigw-console-test-request.json", 1, "POST", "/myPath", NULL, NULL, NULL, NULL, 0,
     "{\r\n\t\"a\": 1\r\n}", 0, "test-invoke-source-ip"},
    {"example-apigw-request-catch-all.json", 1, "POST", "/hello/world", "cache-control", "no-cache",
     "name", "me", 1, "{\r\n\t\"a\": 1\r\n}", 0, "192.168.196.186"},
    {"example-apigw-sam-http-request.json", 2, "GET", "/dump", "host", "127.0.0.1:3000", "foo",
     "bar", 1, "", 0, "127.0.0.1"},
    {"example-apigw-sam-rest-request.json", 1, "GET", "/test", "host", "127.0.0.1:3000", NULL, NULL,
     0, NULL, 0, "127.0.0.1"},
};

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
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

static const char *str_field(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);
  return s;
}

/* Decodes text; on TH_OK leaves the request table on the stack. */
typedef struct decode_call {
  const char *text;
  size_t len;
  th_event_info info;
  th_result rc;
  char err[256];
} decode_call;

static int decode_protected(lua_State *L) {
  decode_call *c = lua_touserdata(L, 1);
  c->rc = th_event_push_request(L, c->text, c->len, &c->info, c->err, sizeof c->err);
  return c->rc == TH_OK ? 1 : 0;
}

static th_result decode(lua_State *L, const char *text, size_t len, decode_call *c) {
  memset(c, 0, sizeof *c);
  c->text = text;
  c->len = len;
  lua_settop(L, 0);
  lua_pushcfunction(L, decode_protected);
  lua_pushlightuserdata(L, c);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
    fprintf(stderr, "raised: %s\n", lua_tostring(L, -1));
    return TH_ERR_INTERNAL;
  }
  return c->rc;
}

static void check_fixture(lua_State *L, const char *dir, const expect *e) {
  char path[1024];
  snprintf(path, sizeof path, "%s/apigw-events/%s", dir, e->file);
  size_t len = 0;
  char *text = slurp(path, &len);
  CHECK(text != NULL, "cannot read %s", path);
  if (!text)
    return;
  decode_call c;
  th_result rc = decode(L, text, len, &c);
  free(text);
  CHECK(rc == TH_OK, "%s: %s", e->file, c.err);
  if (rc != TH_OK)
    return;
  int req = lua_gettop(L);
  CHECK((int)c.info.version == e->version, "%s: version %d", e->file, c.info.version);
  CHECK(c.info.body_invalid == e->body_invalid, "%s: body_invalid", e->file);
  CHECK_STR(str_field(L, req, "method"), e->method);
  CHECK_STR(str_field(L, req, "path"), e->path);
  CHECK_STR(str_field(L, req, "version"), e->version == 2 ? "2.0" : "1.0");
  lua_getfield(L, req, "headers");
  CHECK(lua_istable(L, -1), "%s: headers is a table", e->file);
  if (e->header_name)
    CHECK_STR(str_field(L, lua_gettop(L), e->header_name), e->header_value);
  lua_pop(L, 1);
  lua_getfield(L, req, "path_params");
  CHECK(lua_istable(L, -1), "%s: path_params is a table", e->file);
  lua_pop(L, 1);
  lua_getfield(L, req, "query");
  int q = lua_gettop(L);
  lua_getfield(L, req, "multi_query");
  int mq = lua_gettop(L);
  CHECK(lua_istable(L, q) && lua_istable(L, mq), "%s: query tables", e->file);
  if (e->query_name) {
    CHECK_STR(str_field(L, q, e->query_name), e->query_last);
    lua_getfield(L, mq, e->query_name);
    CHECK((int)lua_rawlen(L, -1) == e->query_count, "%s: %d values of %s", e->file,
          (int)lua_rawlen(L, -1), e->query_name);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  const char *body = str_field(L, req, "body");
  if (e->body_prefix)
    CHECK(body && strncmp(body, e->body_prefix, strlen(e->body_prefix)) == 0, "%s: body '%s'",
          e->file, body ? body : "(nil)");
  else
    CHECK(body == NULL, "%s: no body expected, got '%s'", e->file, body);
  if (e->source_ip)
    CHECK_STR(str_field(L, req, "source_ip"), e->source_ip);
}

typedef struct edge {
  const char *name;
  const char *json;
  th_result rc;
  const char *path;  /* expected normalised path */
  const char *body;  /* expected body, or NULL */
  int body_invalid;
} edge;

static const edge edges[] = {
    {"not json", "nope", TH_ERR_INVALID, NULL, NULL, 0},
    {"empty", "", TH_ERR_INVALID, NULL, NULL, 0},
    {"array", "[]", TH_ERR_INVALID, NULL, NULL, 0},
    {"string", "\"x\"", TH_ERR_INVALID, NULL, NULL, 0},
    {"empty object", "{}", TH_ERR_INVALID, NULL, NULL, 0},
    {"s3 event", "{\"Records\":[{\"eventSource\":\"aws:s3\"}]}", TH_ERR_INVALID, NULL, NULL, 0},
    {"unknown version", "{\"version\":\"3.0\",\"rawPath\":\"/\",\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
     TH_ERR_INVALID, NULL, NULL, 0},
    {"v2 without method", "{\"version\":\"2.0\",\"rawPath\":\"/\"}", TH_ERR_INVALID, NULL, NULL, 0},
    {"v1 without path", "{\"httpMethod\":\"GET\"}", TH_ERR_INVALID, NULL, NULL, 0},
    {"v2 stage prefix", "{\"version\":\"2.0\",\"rawPath\":\"/prod/tasks/\",\"requestContext\":{\"stage\":\"prod\",\"http\":{\"method\":\"get\"}}}",
     TH_OK, "/tasks", NULL, 0},
    {"stage name only as prefix of a segment", "{\"version\":\"2.0\",\"rawPath\":\"/production/x\",\"requestContext\":{\"stage\":\"prod\",\"http\":{\"method\":\"GET\"}}}",
     TH_OK, "/production/x", NULL, 0},
    {"v1 stage named like the route", "{\"httpMethod\":\"GET\",\"path\":\"/tasks\",\"requestContext\":{\"stage\":\"tasks\"}}",
     TH_OK, "/tasks", NULL, 0},
    {"v1 stage prefix is not stripped from path", "{\"httpMethod\":\"GET\",\"path\":\"/prod/tasks\",\"requestContext\":{\"stage\":\"prod\"}}",
     TH_OK, "/prod/tasks", NULL, 0},
    {"trailing slashes", "{\"httpMethod\":\"GET\",\"path\":\"/tasks///\"}", TH_OK, "/tasks", NULL, 0},
    {"root", "{\"httpMethod\":\"GET\",\"path\":\"/\"}", TH_OK, "/", NULL, 0},
    {"base64 body", "{\"httpMethod\":\"POST\",\"path\":\"/t\",\"isBase64Encoded\":true,\"body\":\"eyJhIjoxfQ==\"}",
     TH_OK, "/t", "{\"a\":1}", 0},
    {"base64 without padding", "{\"httpMethod\":\"POST\",\"path\":\"/t\",\"isBase64Encoded\":true,\"body\":\"eyJhIjoxfQ\"}",
     TH_OK, "/t", "{\"a\":1}", 0},
    {"bad base64", "{\"httpMethod\":\"POST\",\"path\":\"/t\",\"isBase64Encoded\":true,\"body\":\"not base64!\"}",
     TH_OK, "/t", NULL, 1},
    {"null members", "{\"httpMethod\":\"GET\",\"path\":\"/t\",\"headers\":null,\"multiValueHeaders\":null,\"queryStringParameters\":null,\"multiValueQueryStringParameters\":null,\"pathParameters\":null,\"body\":null,\"isBase64Encoded\":null}",
     TH_OK, "/t", NULL, 0},
    {"v2 encoded query", "{\"version\":\"2.0\",\"rawPath\":\"/t\",\"rawQueryString\":\"a=1%202&b=x+y&c&d=&=e&&\",\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
     TH_OK, "/t", NULL, 0},
};

/* The path routes see (event.h): a fixture event with a few fields changed
 * (Lua run on the decoded event `e`), so each row is a real event shape. The
 * shapes: REST APIs keep the stage out of `path` (it is in
 * requestContext.path); behind a custom domain with a base-path mapping `path`
 * and requestContext.path both start with the base path while `resource` is
 * the API's own; HTTP APIs put a named stage in front of rawPath (2.0) and of
 * `path` (1.0, whose default route has resource "$default"). Sources: see
 * tests/fixtures/apigw-events/SOURCE.md, "Paths". */
typedef struct path_case {
  const char *name;
  const char *file;   /* the base event, in apigw-events/ */
  const char *change; /* Lua on `e` */
  const char *path;   /* req.path */
  const char *raw_path;
} path_case;

#define REST "apigw-request.json"           /* REST API, payload 1.0 */
#define HTTP1 "apiGatewayProxyEvent.json"   /* HTTP API, payload 1.0 */
#define HTTP2 "apigw-v2-request-no-authorizer.json"
#define ID "0b6e4c1e-8a4b-4f3e-9a53-3c1f0c9e2d71"

static const path_case path_cases[] = {
    /* REST API on its execute-api URL: /{stage}/... */
    {"REST, stage named like the route: GET /tasks/tasks", REST,
     "e.path = '/tasks'; e.resource = '/{proxy+}'; e.pathParameters = {proxy = 'tasks'};"
     "e.requestContext.stage = 'tasks'; e.requestContext.path = '/tasks/tasks'",
     "/tasks", "/tasks/tasks"},
    {"REST, stage tasks, resource /tasks", REST,
     "e.path = '/tasks'; e.resource = '/tasks'; e.pathParameters = nil;"
     "e.requestContext.stage = 'tasks'; e.requestContext.path = '/tasks/tasks'",
     "/tasks", "/tasks/tasks"},
    {"REST, stage tasks, GET /tasks/tasks/<id>", REST,
     "e.path = '/tasks/" ID "'; e.resource = '/{proxy+}'; e.pathParameters = {proxy = 'tasks/" ID "'};"
     "e.requestContext.stage = 'tasks'; e.requestContext.path = '/tasks/tasks/" ID "'",
     "/tasks/" ID, "/tasks/tasks/" ID},
    {"REST, stage prod, GET /prod/tasks/<id>", REST,
     "e.path = '/tasks/" ID "'; e.resource = '/tasks/{id}'; e.pathParameters = {id = '" ID "'};"
     "e.requestContext.stage = 'prod'; e.requestContext.path = '/prod/tasks/" ID "'",
     "/tasks/" ID, "/prod/tasks/" ID},
    {"REST, stage prod, trailing slash", REST,
     "e.path = '/tasks/'; e.resource = '/tasks'; e.pathParameters = nil;"
     "e.requestContext.stage = 'prod'; e.requestContext.path = '/prod/tasks/'",
     "/tasks", "/prod/tasks/"},
    /* REST API on a custom domain: api.example.com/<base path>/... → stage prod */
    {"custom domain, base path v1, resource /{proxy+}", REST,
     "e.path = '/v1/tasks/" ID "'; e.resource = '/{proxy+}'; e.pathParameters = {proxy = 'tasks/" ID "'};"
     "e.requestContext.stage = 'prod'; e.requestContext.path = '/v1/tasks/" ID "';"
     "e.requestContext.domainName = 'api.example.com'",
     "/tasks/" ID, "/v1/tasks/" ID},
    {"custom domain, base path v1, resource /tasks/{id}", REST,
     "e.path = '/v1/tasks/" ID "'; e.resource = '/tasks/{id}'; e.pathParameters = {id = '" ID "'};"
     "e.requestContext.stage = 'prod'; e.requestContext.path = '/v1/tasks/" ID "'",
     "/tasks/" ID, "/v1/tasks/" ID},
    {"custom domain, base path api/v1, GET /api/v1/tasks/", REST,
     "e.path = '/api/v1/tasks/'; e.resource = '/tasks'; e.pathParameters = nil;"
     "e.requestContext.stage = 'prod'; e.requestContext.path = '/api/v1/tasks/'",
     "/tasks", "/api/v1/tasks/"},
    {"custom domain, base path tasks, GET /tasks/tasks", REST,
     "e.path = '/tasks/tasks'; e.resource = '/{proxy+}'; e.pathParameters = {proxy = 'tasks'};"
     "e.requestContext.stage = 'prod'; e.requestContext.path = '/tasks/tasks'",
     "/tasks", "/tasks/tasks"},
    {"custom domain, base path v1, the API's root", REST,
     "e.path = '/v1'; e.resource = '/'; e.pathParameters = nil;"
     "e.requestContext.stage = 'prod'; e.requestContext.path = '/v1'",
     "/", "/v1"},
    {"custom domain, no base path, stage tasks", REST,
     "e.path = '/tasks'; e.resource = '/{proxy+}'; e.pathParameters = {proxy = 'tasks'};"
     "e.requestContext.stage = 'tasks'; e.requestContext.path = '/tasks'",
     "/tasks", "/tasks"},
    /* what cannot be told apart is taken as given */
    {"REST, resource and path disagree", REST,
     "e.path = '/v1/tasks/" ID "'; e.resource = '/tasks/{id}'; e.pathParameters = {id = 'other'};"
     "e.requestContext.stage = 'prod'; e.requestContext.path = '/v1/tasks/" ID "'",
     "/v1/tasks/" ID, "/v1/tasks/" ID},
    {"REST, a parameter of the resource missing", REST,
     "e.path = '/v1/tasks/" ID "'; e.resource = '/tasks/{id}'; e.pathParameters = nil;"
     "e.requestContext.stage = 'prod'; e.requestContext.path = '/v1/tasks/" ID "'",
     "/v1/tasks/" ID, "/v1/tasks/" ID},
    {"REST, no resource, stage tasks", REST,
     "e.path = '/tasks'; e.resource = nil; e.pathParameters = nil;"
     "e.requestContext.stage = 'tasks'; e.requestContext.path = '/tasks/tasks'",
     "/tasks", "/tasks/tasks"},
    /* HTTP API, payload 1.0 */
    {"HTTP API 1.0, default route, $default stage", HTTP1,
     "e.path = '/tasks'; e.resource = '$default'; e.requestContext.resourcePath = '$default';"
     "e.requestContext.path = '/tasks'",
     "/tasks", "/tasks"},
    {"HTTP API 1.0, default route, stage dev", HTTP1,
     "e.path = '/dev/tasks'; e.resource = '$default'; e.requestContext.resourcePath = '$default';"
     "e.requestContext.stage = 'dev'; e.requestContext.path = '/dev/tasks'",
     "/tasks", "/dev/tasks"},
    {"HTTP API 1.0, default route, stage tasks, GET /tasks/tasks", HTTP1,
     "e.path = '/tasks/tasks'; e.resource = '$default'; e.requestContext.resourcePath = '$default';"
     "e.requestContext.stage = 'tasks'; e.requestContext.path = '/tasks/tasks'",
     "/tasks", "/tasks/tasks"},
    {"HTTP API 1.0, route /{proxy+}, stage dev", HTTP1,
     "e.path = '/dev/tasks/" ID "'; e.resource = '/{proxy+}'; e.pathParameters = {proxy = 'tasks/" ID "'};"
     "e.requestContext.stage = 'dev'; e.requestContext.path = '/dev/tasks/" ID "'",
     "/tasks/" ID, "/dev/tasks/" ID},
    /* HTTP API, payload 2.0 */
    {"2.0, stage tasks, rawPath /tasks/tasks: the stage once", HTTP2,
     "e.rawPath = '/tasks/tasks'; e.requestContext.http.path = '/tasks/tasks';"
     "e.requestContext.stage = 'tasks'",
     "/tasks", "/tasks/tasks"},
    {"2.0, stage tasks, the stage's root", HTTP2,
     "e.rawPath = '/tasks'; e.requestContext.stage = 'tasks'", "/", "/tasks"},
    {"2.0, $default stage, rawPath /tasks", HTTP2,
     "e.rawPath = '/tasks'; e.requestContext.http.path = '/tasks'", "/tasks", "/tasks"},
    {"2.0, custom domain (mapping key not in rawPath), stage prod", HTTP2,
     "e.rawPath = '/prod/tasks/" ID "'; e.requestContext.stage = 'prod';"
     "e.requestContext.domainName = 'api.example.com'",
     "/tasks/" ID, "/prod/tasks/" ID},
};

typedef struct change_call {
  const char *text;
  size_t len;
  const char *change;
} change_call;

/* Decodes the event, runs the change on it, pushes the JSON again. */
static int change_protected(lua_State *L) {
  change_call *c = lua_touserdata(L, 1);
  th_json_decode(L, c->text, c->len);
  int ev = lua_gettop(L);
  lua_pushfstring(L, "local e = ...\n%s", c->change);
  if (luaL_loadstring(L, lua_tostring(L, -1)) != LUA_OK)
    return lua_error(L);
  lua_pushvalue(L, ev);
  lua_call(L, 1, 0);
  th_json_encode(L, ev);
  return 1;
}

static void check_path_case(lua_State *L, const char *dir, const path_case *pc) {
  char file[1024];
  snprintf(file, sizeof file, "%s/apigw-events/%s", dir, pc->file);
  size_t len = 0;
  char *text = slurp(file, &len);
  CHECK(text != NULL, "cannot read %s", file);
  if (!text)
    return;
  change_call cc = {text, len, pc->change};
  lua_settop(L, 0);
  lua_pushcfunction(L, change_protected);
  lua_pushlightuserdata(L, &cc);
  int ok = lua_pcall(L, 1, 1, 0) == LUA_OK;
  CHECK(ok, "%s: change: %s", pc->name, lua_tostring(L, -1));
  free(text);
  if (!ok)
    return;
  size_t elen;
  const char *ev = lua_tolstring(L, -1, &elen);
  char *copy = strndup(ev, elen);
  decode_call c;
  th_result rc = decode(L, copy, elen, &c);
  free(copy);
  CHECK(rc == TH_OK, "%s: %s", pc->name, c.err);
  if (rc != TH_OK)
    return;
  int req = lua_gettop(L);
  const char *path = str_field(L, req, "path"), *raw = str_field(L, req, "raw_path");
  CHECK(path && strcmp(path, pc->path) == 0, "%s: path '%s', want '%s'", pc->name,
        path ? path : "(nil)", pc->path);
  CHECK(raw && strcmp(raw, pc->raw_path) == 0, "%s: raw_path '%s', want '%s'", pc->name,
        raw ? raw : "(nil)", pc->raw_path);
}

/* Round trip for --serve: HTTP request → v2 event → request table. */
typedef struct http_call {
  const th_http_request *req;
} http_call;

static int build_protected(lua_State *L) {
  http_call *c = lua_touserdata(L, 1);
  th_event_push_v2_from_http(L, c->req);
  return 1;
}

typedef struct response_call {
  int version;
} response_call;

static int response_protected(lua_State *L) {
  response_call *c = lua_touserdata(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, 201);
  lua_setfield(L, -2, "status");
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "application/json");
  lua_setfield(L, -2, "Content-Type");
  lua_setfield(L, -2, "headers");
  lua_pushliteral(L, "{\"id\":\"x\"}");
  lua_setfield(L, -2, "body");
  th_event_push_response_json(L, -1, (th_event_version)c->version);
  return 1;
}

int main(void) {
  const char *dir = getenv("FIXTURES");
  if (!dir)
    dir = "tests/fixtures";
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  th_json_setup(L);

  for (size_t i = 0; i < TH_ARRAY_LEN(fixtures); i++)
    check_fixture(L, dir, &fixtures[i]);
  for (size_t i = 0; i < TH_ARRAY_LEN(path_cases); i++)
    check_path_case(L, dir, &path_cases[i]);

  for (size_t i = 0; i < TH_ARRAY_LEN(edges); i++) {
    const edge *e = &edges[i];
    decode_call c;
    th_result rc = decode(L, e->json, strlen(e->json), &c);
    CHECK(rc == e->rc, "%s: got %s", e->name, th_result_name(rc));
    if (rc == TH_ERR_INVALID)
      CHECK(strstr(c.err, "not an API Gateway proxy event") != NULL, "%s: message '%s'", e->name,
            c.err);
    if (rc != TH_OK || e->rc != TH_OK)
      continue;
    int req = lua_gettop(L);
    CHECK_STR(str_field(L, req, "path"), e->path);
    CHECK(c.info.body_invalid == e->body_invalid, "%s: body_invalid", e->name);
    const char *body = str_field(L, req, "body");
    if (e->body)
      CHECK_STR(body, e->body);
    else
      CHECK(body == NULL, "%s: body '%s'", e->name, body);
    if (strcmp(e->name, "v2 stage prefix") == 0)
      CHECK_STR(str_field(L, req, "method"), "GET");
    if (strcmp(e->name, "v2 encoded query") == 0) {
      lua_getfield(L, req, "query");
      CHECK_STR(str_field(L, lua_gettop(L), "a"), "1 2");
      CHECK_STR(str_field(L, lua_gettop(L), "b"), "x y");
      CHECK_STR(str_field(L, lua_gettop(L), "c"), "");
      CHECK_STR(str_field(L, lua_gettop(L), "d"), ""); /* empty value: no read past it */
      CHECK_STR(str_field(L, lua_gettop(L), ""), "e");
      lua_pop(L, 1);
    }
  }

  /* HTTP → v2 event → request: the --serve path. */
  const char *names[] = {"Content-Type", "X-Multi", "X-Multi", "Cookie"};
  const char *values[] = {"application/json", "a", "b", "s=1; t=2"};
  const char body[] = "{\"task\":\"\xc3\xa9\\u0000\"}\0tail";
  th_http_request hr = {.method = "post", .path = "/tasks/", .raw_query = "limit=5&x=%2F",
                        .header_names = names, .header_values = values, .nheaders = 4,
                        .body = body, .body_len = sizeof body - 1, .source_ip = "127.0.0.1",
                        .request_id = "rid", .time_epoch_ms = 1};
  http_call hc = {&hr};
  lua_settop(L, 0);
  lua_pushcfunction(L, build_protected);
  lua_pushlightuserdata(L, &hc);
  CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK, "build v2 event");
  size_t elen;
  const char *ev = lua_tolstring(L, -1, &elen);
  char *copy = strndup(ev, elen);
  decode_call c;
  CHECK(decode(L, copy, elen, &c) == TH_OK, "decode built event: %s", c.err);
  free(copy);
  int req = lua_gettop(L);
  CHECK(c.info.version == TH_EVENT_V2, "built event is v2");
  CHECK_STR(str_field(L, req, "method"), "POST");
  CHECK_STR(str_field(L, req, "path"), "/tasks");
  lua_getfield(L, req, "body");
  size_t blen;
  const char *b = lua_tolstring(L, -1, &blen);
  CHECK(b && blen == sizeof body - 1 && memcmp(b, body, blen) == 0, "body bytes intact");
  lua_pop(L, 1);
  lua_getfield(L, req, "headers");
  CHECK_STR(str_field(L, lua_gettop(L), "x-multi"), "a,b");
  CHECK_STR(str_field(L, lua_gettop(L), "cookie"), "s=1; t=2");
  lua_pop(L, 1);
  lua_getfield(L, req, "query");
  CHECK_STR(str_field(L, lua_gettop(L), "x"), "/");
  CHECK_STR(str_field(L, lua_gettop(L), "limit"), "5");
  lua_pop(L, 1);

  /* Responses in both formats, read back the way --serve does. */
  for (int v = 1; v <= 2; v++) {
    response_call rcall = {v};
    lua_settop(L, 0);
    lua_pushcfunction(L, response_protected);
    lua_pushlightuserdata(L, &rcall);
    CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK, "response v%d", v);
    size_t rlen;
    const char *json = lua_tolstring(L, -1, &rlen);
    char *rj = strndup(json, rlen);
    th_http_response out;
    CHECK(th_event_read_v2_response(L, rj, rlen, &out) == TH_OK, "read response v%d", v);
    CHECK(out.status == 201, "status %d", out.status);
    CHECK(out.body && strcmp(out.body, "{\"id\":\"x\"}") == 0, "body");
    CHECK(out.nheaders == 1 && strcmp(out.header_names[0], "Content-Type") == 0, "headers");
    th_http_response_free(&out);
    free(rj);
  }

  /* base64 helpers */
  char *dec = NULL, *enc = NULL;
  size_t dlen = 0;
  CHECK(th_base64_encode("\0\1\2xyz", 6, &enc) == TH_OK && strcmp(enc, "AAECeHl6") == 0, "encode");
  CHECK(th_base64_decode(enc, strlen(enc), &dec, &dlen) == TH_OK && dlen == 6 &&
            memcmp(dec, "\0\1\2xyz", 6) == 0, "decode");
  free(enc);
  free(dec);
  const char *bad[] = {"a", "ab$=", "a b=", "====", "abc==="};
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
    dec = NULL;
    th_result r = th_base64_decode(bad[i], strlen(bad[i]), &dec, &dlen);
    CHECK(r == TH_ERR_INVALID, "'%s' rejected (got %s)", bad[i], th_result_name(r));
    free(dec);
  }
  lua_close(L);
  return CHECK_DONE();
}
