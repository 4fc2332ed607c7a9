/* libFuzzer target: a request through the whole host — event parsing, the
 * sandboxed Lua routes (lua/ of this checkout), the store module, cursors and
 * the SQLite store — and the response back to proxy JSON.
 *
 * Input layout (the fields are split on byte 0xFF; the body is the rest and
 * may hold anything, 0xFF included):
 *   byte 0        flags: bits 0-2 method (GET POST PUT DELETE OPTIONS PATCH
 *                 HEAD, 7 = the method field below), bit 3 payload 1.0
 *                 instead of 2.0, bit 4 isBase64Encoded, bit 5 the path is
 *                 "/tasks/" + a task that exists, followed by the path field,
 *                 bit 6 no Content-Type header, bit 7 a "dev" stage prefix
 *   path 0xFF query 0xFF content-type 0xFF method 0xFF body
 * The content-type field's first line is the Content-Type header; each
 * further line ("\n"-separated) "Name: value" is one more request header:
 * the seeds carry Idempotency-Key, If-Match and If-None-Match (the guards the
 * host applies around the routes: claim, replay, commit, 412, 304). A keyed
 * POST's record lives in the same SQLite file.
 * The store is a temporary SQLite file holding three known tasks, rebuilt
 * every 256 inputs so it stays small. Checks: th_host_invoke returns TH_OK
 * (the event is well formed), the response is a JSON object with a statusCode
 * below 500 and a JSON body with a "message" for a 4xx — the API never answers
 * a client's bad input with a 5xx. TH_FUZZ_ALLOW_5XX=1 turns that check off. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "fuzz_common.h"
#include "config.h"
#include "host.h"
#include "log.h"
#include "lua_modules.h"
#include "store.h"

#ifndef TH_SOURCE_DIR
#error "build with -DTH_SOURCE_DIR=\"/path/to/checkout\""
#endif

static th_config cfg;
static th_store *store;
static th_host *host;
static char db_path[256];
static unsigned long runs;
static int allow_5xx;
static lua_State *check_L; /* decodes responses for the checks */

static const char *const KNOWN[] = {"11111111-1111-4111-8111-111111111111",
                                    "22222222-2222-4222-a222-222222222222",
                                    "33333333-3333-4333-b333-333333333333"};

static _Noreturn void die(const char *what, const char *err) {
  fprintf(stderr, "fuzz_host: %s: %s\n", what, err);
  abort();
}

static void open_world(void) {
  char err[512];
  unlink(db_path);
  char wal[300];
  snprintf(wal, sizeof wal, "%s-wal", db_path);
  unlink(wal);
  snprintf(wal, sizeof wal, "%s-shm", db_path);
  unlink(wal);
  store = th_store_sqlite_open(db_path, err, sizeof err);
  if (!store)
    die("open store", err);
  /* A fixed identity (the file name holds the pid), so the seed corpus can
   * carry cursors that open: see make_corpus.py. */
  snprintf(store->identity, sizeof store->identity, "sqlite:fuzz");
  th_store_set_owner(store, NULL); /* the seeds are the public owner's, as auth off sees them */
  for (size_t i = 0; i < TH_ARRAY_LEN(KNOWN); i++) {
    char item[512];
    snprintf(item, sizeof item,
             "{\"id\":{\"S\":\"%s\"},\"task\":{\"S\":\"known %zu\"},\"status\":{\"S\":\"new\"},"
             "\"priority\":{\"S\":\"low\"},\"created_at\":{\"N\":\"1700000000\"},"
             "\"updated_at\":{\"N\":\"1700000000\"},\"extra\":{\"L\":[{\"N\":\"1.5\"},{\"NULL\":true}]}}",
             KNOWN[i], i);
    if (store->ops->create(store, KNOWN[i], item) != TH_OK)
      die("seed store", store->error);
  }
  if (th_host_new(&cfg, store, &host, err, sizeof err) != TH_OK)
    die("host", err);
}

static void close_world(void) {
  th_host_free(host);
  host = NULL;
  store->ops->close(store);
  store = NULL;
}

static void cleanup(void) {
  if (host)
    close_world();
  char p[300];
  unlink(db_path);
  snprintf(p, sizeof p, "%s-wal", db_path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", db_path);
  unlink(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *tmp = getenv("TMPDIR");
  snprintf(db_path, sizeof db_path, "%s/fuzz_host.%ld.db", tmp && *tmp ? tmp : "/tmp",
           (long)getpid());
  char store_env[300];
  snprintf(store_env, sizeof store_env, "sqlite:%s", db_path);
  setenv("TASKHOST_STORE", store_env, 1);
  unsetenv("TABLE_NAME");
  setenv("TASKHOST_ROUTES", TH_SOURCE_DIR "/lua", 1);
  setenv("TASKHOST_LOG_LEVEL", "FATAL", 1);
  /* small budgets keep each run short; they are far above what routes need */
  setenv("TASKHOST_LUA_INSTRUCTIONS", "20000000", 1);
  setenv("TASKHOST_LUA_TIMEOUT_MS", "5000", 1);
  setenv("TASKHOST_MAX_BODY_BYTES", "65536", 1);
  char err[512];
  if (th_config_from_env(&cfg, TH_SOURCE_DIR, err, sizeof err) != TH_OK)
    die("config", err);
  th_log_configure(TH_LOG_FATAL, 1);
  allow_5xx = getenv("TH_FUZZ_ALLOW_5XX") && strcmp(getenv("TH_FUZZ_ALLOW_5XX"), "1") == 0;
  check_L = luaL_newstate();
  th_json_setup(check_L);
  open_world();
  atexit(cleanup);
  return 0;
}

/* ---- a tiny JSON writer ---- */

typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

static void put(buf *b, const void *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n + 1 > cap)
      cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
      abort();
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* A JSON string: escapes quote, backslash and control bytes; other bytes
 * (invalid UTF-8 included) go through as they are. */
static void put_jstr(buf *b, const char *s, size_t n) {
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(b, e, 2);
    } else if (c < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", c);
      put(b, e, 6);
    } else {
      put(b, &s[i], 1);
    }
  }
  put(b, "\"", 1);
}

static const char *field(const uint8_t **p, const uint8_t *end, size_t *n) {
  const uint8_t *start = *p;
  const uint8_t *sep = memchr(start, 0xFF, (size_t)(end - start));
  if (!sep) {
    *n = (size_t)(end - start);
    *p = end;
  } else {
    *n = (size_t)(sep - start);
    *p = sep + 1;
  }
  return (const char *)start;
}

static void put_query_object(buf *b, const char *q, size_t n, int multi) {
  put(b, "{", 1);
  int first = 1;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && q[j] != '&')
      j++;
    if (j > i) {
      const char *eq = memchr(q + i, '=', j - i);
      size_t klen = eq ? (size_t)(eq - (q + i)) : j - i;
      if (!first)
        put(b, ",", 1);
      first = 0;
      put_jstr(b, q + i, klen);
      put(b, ":", 1);
      if (multi)
        put(b, "[", 1);
      if (eq)
        put_jstr(b, eq + 1, j - i - klen - 1);
      else
        put_jstr(b, "", 0);
      if (multi)
        put(b, "]", 1);
    }
    i = j + 1;
  }
  put(b, "}", 1);
}

/* The lines "Name: value" of s[0..n) (after the Content-Type line) as more
 * members of the headers object; a line without a colon or with an empty
 * name is skipped. */
static void put_extra_headers(buf *b, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != '\n')
      j++;
    const char *colon = memchr(s + i, ':', j - i);
    if (colon && colon > s + i) {
      size_t name_n = (size_t)(colon - (s + i));
      const char *v = colon + 1;
      if (v < s + j && *v == ' ')
        v++;
      put(b, ",", 1);
      put_jstr(b, s + i, name_n);
      put(b, ":", 1);
      put_jstr(b, v, (size_t)(s + j - v));
    }
    i = j + 1;
  }
}

typedef struct decode_ctx {
  const char *s;
  size_t n;
} decode_ctx;

static int decode_protected(lua_State *L) {
  decode_ctx *c = lua_touserdata(L, 1);
  th_json_decode(L, c->s, c->n);
  return 1;
}

/* Decodes JSON text onto check_L's stack; 0 when it is not JSON. */
static int decode(const char *s, size_t n) {
  decode_ctx c = {s, n};
  lua_pushcfunction(check_L, decode_protected);
  lua_pushlightuserdata(check_L, &c);
  return lua_pcall(check_L, 1, 1, 0) == LUA_OK;
}

static void verify(const char *resp, size_t len) {
  lua_State *L = check_L;
  lua_settop(L, 0);
  if (!decode(resp, len) || lua_type(L, 1) != LUA_TTABLE)
    die("response", "not a JSON object");
  lua_getfield(L, 1, "statusCode");
  /* cjson reads every number as a float */
  int64_t status;
  if (lua_type(L, -1) != LUA_TNUMBER || !th_double_to_int64(lua_tonumber(L, -1), &status)) {
    fprintf(stderr, "response: %.*s\n", (int)(len > 2000 ? 2000 : len), resp);
    die("response", "statusCode is not an integer");
  }
  if (status < 200 || status > 599)
    die("response", "statusCode out of range");
  if (status >= 500 && !allow_5xx) {
    fprintf(stderr, "response: %.*s\n", (int)(len > 2000 ? 2000 : len), resp);
    die("response", "a 5xx for a client's input");
  }
  lua_getfield(L, 1, "headers");
  if (lua_type(L, -1) != LUA_TTABLE)
    die("response", "no headers");
  lua_getfield(L, -1, "Access-Control-Allow-Origin");
  if (lua_type(L, -1) != LUA_TSTRING)
    die("response", "no Access-Control-Allow-Origin");
  lua_pop(L, 1);
  lua_getfield(L, -1, "X-Content-Type-Options");
  if (lua_type(L, -1) != LUA_TSTRING)
    die("response", "no X-Content-Type-Options");
  lua_settop(L, 1);
  if (status >= 400) {
    lua_getfield(L, 1, "body");
    size_t blen;
    const char *body = lua_tolstring(L, -1, &blen);
    if (!body)
      die("response", "a 4xx without a body");
    if (!decode(body, blen) || lua_type(L, -1) != LUA_TTABLE)
      die("response", "a 4xx body that is not a JSON object");
    lua_getfield(L, -1, "message");
    if (lua_type(L, -1) != LUA_TSTRING)
      die("response", "a 4xx body without a message");
  }
  lua_settop(L, 0);
}

static const char *const METHODS[] = {"GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || th_fuzz_holds_placeholder(data, size))
    return 0;
  if (size > 200000)
    return 0;
  if (++runs % 256 == 0) {
    close_world();
    open_world();
  }
  unsigned flags = data[0];
  const uint8_t *p = data + 1, *end = data + size;
  size_t path_n, query_n, ctype_n, method_n;
  const char *path = field(&p, end, &path_n);
  const char *query = field(&p, end, &query_n);
  const char *ctype = field(&p, end, &ctype_n);
  const char *method = field(&p, end, &method_n);
  const char *body = (const char *)p;
  size_t body_n = (size_t)(end - p);
  int has_body = p < end || (flags & 0x10);
  if ((flags & 7) != 7) {
    method = METHODS[flags & 7];
    method_n = strlen(method);
  } else if (method_n == 0 || memchr(method, 0, method_n)) {
    /* API Gateway always sends a method; an empty one is not an event */
    method = "GET";
    method_n = 3;
  }
  int v1 = (flags & 0x08) != 0;
  const char *stage = (flags & 0x80) ? "dev" : (v1 ? "test" : "$default");

  buf full = {0};
  if (flags & 0x80)
    puts_(&full, "/dev");
  if (flags & 0x20) {
    puts_(&full, "/tasks/");
    puts_(&full, KNOWN[path_n % 3]);
  }
  put(&full, path, path_n);
  if (!full.p)
    puts_(&full, "");
  /* the path API Gateway puts in the event (without the stage for v1) */
  const char *ev_path = full.p;
  size_t ev_path_n = full.len;
  if (v1 && (flags & 0x80)) {
    ev_path += 4;
    ev_path_n -= 4;
  }

  buf e = {0};
  if (!v1) {
    puts_(&e, "{\"version\":\"2.0\",\"routeKey\":\"$default\",\"rawPath\":");
    put_jstr(&e, full.p, full.len);
    puts_(&e, ",\"rawQueryString\":");
    put_jstr(&e, query, query_n);
    if (query_n) {
      puts_(&e, ",\"queryStringParameters\":");
      put_query_object(&e, query, query_n, 0);
    }
  } else {
    puts_(&e, "{\"resource\":\"/{proxy+}\",\"path\":");
    put_jstr(&e, ev_path, ev_path_n);
    puts_(&e, ",\"httpMethod\":");
    put_jstr(&e, method, method_n);
    if (query_n) {
      puts_(&e, ",\"queryStringParameters\":");
      put_query_object(&e, query, query_n, 0);
      puts_(&e, ",\"multiValueQueryStringParameters\":");
      put_query_object(&e, query, query_n, 1);
    } else {
      puts_(&e, ",\"queryStringParameters\":null,\"multiValueQueryStringParameters\":null");
    }
  }
  const char *nl = memchr(ctype, '\n', ctype_n);
  size_t ct_n = nl ? (size_t)(nl - ctype) : ctype_n;
  puts_(&e, ",\"headers\":{\"host\":\"fuzz.local\"");
  if (!(flags & 0x40)) {
    puts_(&e, ",\"content-type\":");
    if (ct_n)
      put_jstr(&e, ctype, ct_n);
    else
      puts_(&e, "\"application/json\"");
  }
  put_extra_headers(&e, ctype + ct_n, ctype_n - ct_n);
  puts_(&e, "},\"requestContext\":{\"accountId\":\"123456789012\",\"apiId\":\"fuzz\",\"stage\":");
  put_jstr(&e, stage, strlen(stage));
  puts_(&e, ",\"requestId\":\"fuzz-req\"");
  if (!v1) {
    puts_(&e, ",\"http\":{\"method\":");
    put_jstr(&e, method, method_n);
    puts_(&e, ",\"path\":");
    put_jstr(&e, full.p, full.len);
    puts_(&e, ",\"protocol\":\"HTTP/1.1\",\"sourceIp\":\"192.0.2.1\"}}");
  } else {
    puts_(&e, ",\"path\":");
    put_jstr(&e, full.p, full.len);
    puts_(&e, ",\"identity\":{\"sourceIp\":\"192.0.2.1\"}}");
  }
  if (has_body) {
    puts_(&e, ",\"body\":");
    put_jstr(&e, body, body_n);
  }
  puts_(&e, (flags & 0x10) ? ",\"isBase64Encoded\":true}" : ",\"isBase64Encoded\":false}");

  char *resp = NULL;
  size_t resp_len = 0;
  th_invoke_result res;
  char err[512];
  th_invoke_ctx ctx = {.request_id = "fuzz", .deadline_ms = 0, .function_arn = NULL};
  th_result r = th_host_invoke(host, e.p, e.len, &ctx, &resp, &resp_len, &res, err, sizeof err);
  if (r != TH_OK) {
    fprintf(stderr, "event: %.*s\n", (int)(e.len > 2000 ? 2000 : e.len), e.p);
    die("th_host_invoke failed", err);
  }
  verify(resp, resp_len);
  free(resp);
  free(e.p);
  free(full.p);
  return 0;
}
