/* libFuzzer target: API Gateway event parsing and normalisation.
 *
 * The input is an event text. It goes through th_event_push_request (v1/v2
 * detection, headers, query, path, base64 body); when it is accepted, the
 * request table is turned back into a proxy response with
 * th_event_push_response_json in the event's own version. The same bytes are
 * also decoded as base64, split into the parts of an HTTP request for
 * th_event_push_v2_from_http (whose output must itself parse as a v2 event),
 * and read as a payload-2.0 proxy response (the --serve bridge; allowed to
 * raise on malformed JSON, as th_json_decode does). Everything runs inside
 * lua_pcall, as the contract requires; an error raised by the parser or the
 * bridge (only out-of-memory is allowed) aborts. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "event.h"
#include "log.h"
#include "lua_modules.h"

static lua_State *L;

typedef struct call {
  const char *data;
  size_t len;
} call;

/* The bytes as a payload-2.0 proxy response (what --serve reads back from
 * the host). Its input is always the host's own JSON, so it may raise on
 * malformed JSON (th_json_decode does); the host calls it protected. */
static int read_response_protected(lua_State *S) {
  call *c = lua_touserdata(S, 1);
  th_http_response out;
  memset(&out, 0, sizeof out);
  if (th_event_read_v2_response(S, c->data, c->len, &out) == TH_OK)
    th_http_response_free(&out);
  return 0;
}

static int run_protected(lua_State *S) {
  call *c = lua_touserdata(S, 1);
  lua_settop(S, 0);
  th_event_info info;
  char err[256];
  memset(&info, 0, sizeof info);
  th_result r = th_event_push_request(S, c->data, c->len, &info, err, sizeof err);
  if (r == TH_OK) {
    if (lua_type(S, -1) != LUA_TTABLE)
      abort(); /* the contract: a request table */
    if (info.version != TH_EVENT_V1 && info.version != TH_EVENT_V2)
      abort();
    int req = lua_gettop(S);
    /* Every field routes rely on has the documented type. */
    lua_getfield(S, req, "method");
    if (lua_type(S, -1) != LUA_TSTRING)
      abort();
    lua_getfield(S, req, "path");
    if (lua_type(S, -1) != LUA_TSTRING)
      abort();
    lua_getfield(S, req, "headers");
    if (lua_type(S, -1) != LUA_TTABLE)
      abort();
    lua_getfield(S, req, "query");
    if (lua_type(S, -1) != LUA_TTABLE)
      abort();
    lua_getfield(S, req, "body");
    if (!lua_isnil(S, -1) && lua_type(S, -1) != LUA_TSTRING)
      abort();
    lua_settop(S, req);
    /* A normalised response built from the request: status, headers, body. */
    lua_createtable(S, 0, 3);
    int resp = lua_gettop(S);
    lua_pushinteger(S, 200);
    lua_setfield(S, resp, "status");
    lua_newtable(S);
    lua_getfield(S, req, "path");
    lua_setfield(S, -2, "X-Path");
    lua_setfield(S, resp, "headers");
    lua_getfield(S, req, "body");
    if (lua_isnil(S, -1)) {
      lua_pop(S, 1);
      lua_pushliteral(S, "");
    }
    lua_setfield(S, resp, "body");
    th_event_push_response_json(S, resp, info.version);
    if (lua_type(S, -1) != LUA_TSTRING)
      abort();
  }
  lua_settop(S, 0);

  /* The bytes as an HTTP request for the --serve bridge:
   * method \n path \n query \n name: value \n ... \n\n body */
  const char *p = c->data, *end = c->data + c->len;
  char *lines[40];
  size_t nlines = 0;
  const char *body = end;
  while (p < end && nlines < TH_ARRAY_LEN(lines)) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n == 0 && nlines >= 3) {
      body = nl ? nl + 1 : end;
      break;
    }
    lines[nlines] = malloc(n + 1);
    if (!lines[nlines])
      break;
    memcpy(lines[nlines], p, n);
    lines[nlines][n] = '\0';
    nlines++;
    p = nl ? nl + 1 : end;
    body = p;
  }
  /* libmicrohttpd never hands over an empty method */
  if (nlines >= 3 && lines[0][0]) {
    const char *names[40], *values[40];
    size_t nh = 0;
    for (size_t i = 3; i < nlines; i++) {
      char *colon = strchr(lines[i], ':');
      if (!colon)
        continue;
      *colon = '\0';
      names[nh] = lines[i];
      values[nh] = colon + 1;
      nh++;
    }
    th_http_request hr = {.method = lines[0],
                          .path = lines[1],
                          .raw_query = lines[2],
                          .header_names = names,
                          .header_values = values,
                          .nheaders = nh,
                          .body = body,
                          .body_len = (size_t)(end - body),
                          .source_ip = "127.0.0.1",
                          .request_id = "fuzz",
                          .time_epoch_ms = 1700000000000LL};
    th_event_push_v2_from_http(S, &hr);
    size_t elen;
    const char *ev = lua_tolstring(S, -1, &elen);
    if (!ev)
      abort();
    /* the bridge's event must be one the parser accepts */
    char *copy = malloc(elen + 1);
    memcpy(copy, ev, elen + 1);
    lua_settop(S, 0);
    th_event_info info2;
    char err2[256];
    th_result r2 = th_event_push_request(S, copy, elen, &info2, err2, sizeof err2);
    free(copy);
    if (r2 != TH_OK) {
      fprintf(stderr, "the v2 event built from an HTTP request is refused: %s\n", err2);
      abort();
    }
  }
  for (size_t i = 0; i < nlines; i++)
    free(lines[i]);
  lua_settop(S, 0);

  /* base64 on the raw bytes */
  char *dec = NULL;
  size_t dlen = 0;
  if (th_base64_decode(c->data, c->len, &dec, &dlen) == TH_OK) {
    char *enc = NULL;
    if (th_base64_encode(dec, dlen, &enc) == TH_OK)
      free(enc);
    free(dec);
  }
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  th_log_configure(TH_LOG_FATAL, 1);
  L = luaL_newstate();
  luaL_openlibs(L);
  th_json_setup(L);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (th_fuzz_holds_placeholder(data, size))
    return 0;
  call c = {(const char *)data, size};
  lua_settop(L, 0);
  lua_pushcfunction(L, run_protected);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "raised inside a protected call: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  lua_pushcfunction(L, read_response_protected);
  lua_pushlightuserdata(L, &c);
  (void)lua_pcall(L, 1, 0, 0);
  lua_settop(L, 0);
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
