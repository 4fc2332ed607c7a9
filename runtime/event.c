/* API Gateway proxy events ⇄ the request and response tables. */
#include "event.h"

#include <ctype.h>
#include <curl/curl.h>
#include <lauxlib.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_modules.h"

/* ---- small readers over decoded JSON (tables at absolute indexes) ---- */

static const char *field_str(lua_State *L, int t, const char *key) {
  if (t == 0)
    return NULL;
  lua_getfield(L, t, key);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* the string stays alive: the table holds it */
  return s;
}

/* field_str with the length: a path may hold NUL bytes ("\u0000"), which a
 * C string would end at ("/tasks/<id>\u0000x" is not "/tasks/<id>"). */
static const char *field_lstr(lua_State *L, int t, const char *key, size_t *len) {
  if (t == 0)
    return NULL;
  lua_getfield(L, t, key);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, len) : NULL;
  lua_pop(L, 1); /* the string stays alive: the table holds it */
  return s;
}

/* Pushes t[key] and returns its absolute index when it is a table; otherwise
 * pushes nothing and returns 0. */
static int field_table(lua_State *L, int t, const char *key) {
  if (t == 0)
    return 0;
  lua_getfield(L, t, key);
  if (lua_type(L, -1) == LUA_TTABLE)
    return lua_gettop(L);
  lua_pop(L, 1);
  return 0;
}

/* Pushes the lower-case copy of the string at idx: the string itself when
 * it is lower-case already (payload 2.0's header names are), no new one. */
static void push_lower(lua_State *L, int idx) {
  size_t len, i = 0;
  const char *s = lua_tolstring(L, idx, &len);
  while (i < len && tolower((unsigned char)s[i]) == (unsigned char)s[i])
    i++;
  if (i == len) {
    lua_pushvalue(L, idx);
    return;
  }
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, len);
  for (i = 0; i < len; i++)
    p[i] = (char)tolower((unsigned char)s[i]);
  luaL_pushresultsize(&b, len);
}

static void push_upper(lua_State *L, const char *s) {
  size_t len = strlen(s);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, len);
  for (size_t i = 0; i < len; i++)
    p[i] = (char)toupper((unsigned char)s[i]);
  luaL_pushresultsize(&b, len);
}

/* Scalar JSON values (strings, numbers, booleans) as text; others NULL. */
static int push_scalar_text(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    lua_pushvalue(L, idx);
    return 1;
  case LUA_TNUMBER: {
    /* Whole numbers as integers ("1", not "1.0"); the rest (1.5, 1e300) as Lua
     * writes them. */
    int64_t whole;
    if (th_double_to_int64(lua_tonumber(L, idx), &whole))
      lua_pushfstring(L, "%I", (LUAI_UACINT)whole);
    else
      lua_pushstring(L, lua_tostring(L, idx));
    return 1;
  }
  case LUA_TBOOLEAN:
    lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
    return 1;
  default:
    return 0;
  }
}

/* out[name] = value, or out[name] .. "," .. value when already set. */
static void add_joined(lua_State *L, int out, int name, int value, const char *sep) {
  lua_pushvalue(L, name);
  lua_rawget(L, out);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushvalue(L, name);
    lua_pushvalue(L, value);
  } else {
    lua_pushstring(L, sep);
    lua_pushvalue(L, value);
    lua_concat(L, 3);
    lua_pushvalue(L, name);
    lua_insert(L, -2);
  }
  lua_rawset(L, out);
}

/* headers: lower-cased names; multi-value lists preferred when given. */
static void push_headers(lua_State *L, int ev, th_event_version v) {
  /* the table made at its size, not grown at each power of two */
  int given = field_table(L, ev, v == TH_EVENT_V1 ? "multiValueHeaders" : "headers");
  if (!given && v == TH_EVENT_V1)
    given = field_table(L, ev, "headers");
  int size = given ? th_lua_count_keys(L, given) : 0;
  if (given)
    lua_pop(L, 1);
  lua_createtable(L, 0, size);
  int out = lua_gettop(L);
  int multi = v == TH_EVENT_V1 ? field_table(L, ev, "multiValueHeaders") : 0;
  int src = multi ? multi : field_table(L, ev, "headers");
  if (src) {
    lua_pushnil(L);
    while (lua_next(L, src)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        push_lower(L, -2);
        int name = lua_gettop(L);
        if (lua_type(L, -2) == LUA_TTABLE) {
          lua_Integer n = (lua_Integer)lua_rawlen(L, -2);
          for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, name - 1, i);
            if (push_scalar_text(L, -1)) {
              add_joined(L, out, name, lua_gettop(L), ",");
              lua_pop(L, 1);
            }
            lua_pop(L, 1);
          }
        } else if (push_scalar_text(L, -2)) {
          add_joined(L, out, name, lua_gettop(L), ",");
          lua_pop(L, 1);
        }
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (multi) { /* headers present only in the single-value map */
    int single = field_table(L, ev, "headers");
    if (single) {
      lua_pushnil(L);
      while (lua_next(L, single)) {
        if (lua_type(L, -2) == LUA_TSTRING && push_scalar_text(L, -1)) {
          push_lower(L, -3);
          lua_pushvalue(L, -1);
          lua_rawget(L, out);
          if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_insert(L, -2);
            lua_rawset(L, out);
          } else {
            lua_pop(L, 3);
          }
        }
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
  }
  int cookies = v == TH_EVENT_V2 ? field_table(L, ev, "cookies") : 0;
  if (cookies) {
    lua_pushliteral(L, "cookie");
    int name = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, cookies);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, cookies, i);
      if (lua_type(L, -1) == LUA_TSTRING)
        add_joined(L, out, name, lua_gettop(L), "; ");
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
}

/* Appends value to out[name] (a list) and sets single[name] = value. */
static void add_query_value(lua_State *L, int single, int multi, int name, int value) {
  lua_pushvalue(L, name);
  lua_rawget(L, multi);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    th_json_mark_array(L, -1);
    lua_pushvalue(L, name);
    lua_pushvalue(L, -2);
    lua_rawset(L, multi);
  }
  lua_pushvalue(L, value);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 1);
  lua_pushvalue(L, name);
  lua_pushvalue(L, value);
  lua_rawset(L, single);
}

/* Form-decodes s[0..len) ('+' is a space, %XX an octet) and pushes it. */
static void push_form_decoded(lua_State *L, const char *s, size_t len) {
  if (len == 0) { /* curl_easy_unescape reads a length of 0 as "use strlen" */
    lua_pushliteral(L, "");
    return;
  }
  char *copy = malloc(len + 1);
  if (!copy)
    luaL_error(L, "not enough memory");
  for (size_t i = 0; i < len; i++)
    copy[i] = s[i] == '+' ? ' ' : s[i];
  copy[len] = '\0';
  int outlen = 0;
  char *dec = curl_easy_unescape(NULL, copy, (int)len, &outlen);
  free(copy);
  if (!dec)
    luaL_error(L, "not enough memory");
  lua_pushlstring(L, dec, (size_t)outlen);
  curl_free(dec);
}

static void parse_raw_query(lua_State *L, const char *q, int single, int multi) {
  while (*q) {
    const char *amp = strchr(q, '&');
    size_t n = amp ? (size_t)(amp - q) : strlen(q);
    if (n > 0) {
      const char *eq = memchr(q, '=', n);
      size_t klen = eq ? (size_t)(eq - q) : n;
      push_form_decoded(L, q, klen);
      if (eq)
        push_form_decoded(L, eq + 1, n - klen - 1);
      else
        lua_pushliteral(L, "");
      add_query_value(L, single, multi, lua_gettop(L) - 1, lua_gettop(L));
      lua_pop(L, 2);
    }
    q += n;
    if (*q == '&')
      q++;
  }
}

/* Pushes query (single) and multi_query. */
static void push_query(lua_State *L, int ev, th_event_version v) {
  lua_newtable(L);
  int single = lua_gettop(L);
  lua_newtable(L);
  int multi = lua_gettop(L);
  const char *raw = v == TH_EVENT_V2 ? field_str(L, ev, "rawQueryString") : NULL;
  if (raw) {
    parse_raw_query(L, raw, single, multi);
    return;
  }
  int mv = v == TH_EVENT_V1 ? field_table(L, ev, "multiValueQueryStringParameters") : 0;
  int src = mv ? mv : field_table(L, ev, "queryStringParameters");
  if (!src)
    return;
  lua_pushnil(L);
  while (lua_next(L, src)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      int name = lua_gettop(L) - 1;
      if (lua_type(L, -1) == LUA_TTABLE) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
          lua_rawgeti(L, name + 1, i);
          if (push_scalar_text(L, -1)) {
            add_query_value(L, single, multi, name, lua_gettop(L));
            lua_pop(L, 1);
          }
          lua_pop(L, 1);
        }
      } else if (push_scalar_text(L, -1)) {
        add_query_value(L, single, multi, name, lua_gettop(L));
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* HTTP APIs put a named stage (never $default) in front of the path, on a
 * custom domain too: "/prod/tasks" → "/tasks", "/prod" → "". Removed once. */
static void skip_stage(const char **p, size_t *len, const char *stage) {
  if (!stage || !*stage || strcmp(stage, "$default") == 0)
    return;
  size_t sl = strlen(stage);
  const char *s = *p;
  if (*len > sl && s[0] == '/' && memcmp(s + 1, stage, sl) == 0 &&
      (*len == 1 + sl || s[1 + sl] == '/')) {
    *p += 1 + sl;
    *len -= 1 + sl;
  }
}

/* Payload 1.0: pushes `resource` ("/tasks/{id}", "/{proxy+}") with its
 * pathParameters filled in — the path relative to the API, as API Gateway
 * matched it — and returns 1. Pushes nothing and returns 0 when there is no
 * template (an HTTP API's default route has "$default") or a parameter is
 * missing. */
static int push_resource_path(lua_State *L, int ev) {
  size_t n;
  const char *res = field_lstr(L, ev, "resource", &n);
  if (!res || n == 0 || res[0] != '/')
    return 0;
  int params = field_table(L, ev, "pathParameters");
  const char *c = res, *end = res + n;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (c < end) {
    const char *open = memchr(c, '{', (size_t)(end - c));
    if (!open) {
      luaL_addlstring(&b, c, (size_t)(end - c));
      break;
    }
    luaL_addlstring(&b, c, (size_t)(open - c));
    const char *close = memchr(open, '}', (size_t)(end - open));
    if (!close || !params)
      goto missing;
    size_t name_len = (size_t)(close - open - 1);
    if (name_len > 0 && close[-1] == '+') /* {proxy+}: the greedy parameter */
      name_len--;
    lua_pushlstring(L, open + 1, name_len);
    lua_rawget(L, params);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      goto missing;
    }
    luaL_addvalue(&b);
    c = close + 1;
  }
  luaL_pushresult(&b);
  if (params)
    lua_remove(L, params);
  return 1;
missing:
  luaL_pushresult(&b);
  lua_pop(L, params ? 2 : 1);
  return 0;
}

/* Payload 1.0: `path` never holds a REST API's stage (requestContext.path
 * does), but behind a custom domain with a base-path mapping it starts with
 * the base path ("/v1/tasks/7"), and an HTTP API puts a named stage in front
 * of it. When `path` ends, at a segment boundary, with the resource filled in
 * (push_resource_path), what comes before is that prefix: it is skipped. With
 * the resource "$default" (no template) the stage is skipped as for 2.0;
 * otherwise `path` is used as given. */
static void skip_v1_prefix(lua_State *L, int ev, const char **p, size_t *len, const char *stage) {
  if (push_resource_path(L, ev)) {
    size_t plen = *len, rlen;
    const char *r = lua_tolstring(L, -1, &rlen);
    while (plen > 1 && (*p)[plen - 1] == '/')
      plen--;
    while (rlen > 1 && r[rlen - 1] == '/')
      rlen--;
    if (rlen == 1) { /* the root resource "/": all of path is the prefix */
      *p += *len;
      *len = 0;
    } else if (plen >= rlen && memcmp(*p + plen - rlen, r, rlen) == 0) {
      *p += plen - rlen; /* r starts with '/': the prefix is whole segments */
      *len -= plen - rlen;
    }
    lua_pop(L, 1);
    return;
  }
  const char *res = field_str(L, ev, "resource");
  if (res && strcmp(res, "$default") == 0)
    skip_stage(p, len, stage);
}

/* Pushes p[0..len) with trailing slashes removed and a leading '/' ensured:
 * "/tasks/" → "/tasks", "" → "/". */
static void push_clean_path(lua_State *L, const char *p, size_t len) {
  while (len > 1 && p[len - 1] == '/')
    len--;
  if (len == 0) {
    lua_pushliteral(L, "/");
  } else if (p[0] != '/') {
    lua_pushliteral(L, "/");
    lua_pushlstring(L, p, len);
    lua_concat(L, 2);
  } else {
    lua_pushlstring(L, p, len);
  }
}

static void set_str(lua_State *L, int t, const char *key, const char *value) {
  if (!value)
    return;
  lua_pushstring(L, value);
  lua_setfield(L, t, key);
}

static int decode_protected(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  th_json_decode(L, s, len);
  return 1;
}

th_result th_event_push_request(lua_State *L, const char *json, size_t len, th_event_info *info,
                                char *err, size_t errlen) {
  int base = lua_gettop(L);
  lua_pushcfunction(L, decode_protected);
  lua_pushlstring(L, json, len);
  int status = lua_pcall(L, 1, 1, 0);
  if (status == LUA_ERRMEM)
    lua_error(L);
  if (status != LUA_OK || lua_type(L, -1) != LUA_TTABLE) {
    snprintf(err, errlen, "not an API Gateway proxy event: %s",
             status != LUA_OK ? "the input is not valid JSON" : "the input is not a JSON object");
    lua_settop(L, base);
    return TH_ERR_INVALID;
  }
  int ev = lua_gettop(L);
  int rc = field_table(L, ev, "requestContext");
  const char *version = field_str(L, ev, "version");
  int http = field_table(L, rc, "http");
  const char *v2_method = field_str(L, http, "method");
  const char *v1_method = field_str(L, ev, "httpMethod");
  th_event_version v;
  if (version && strcmp(version, "2.0") == 0)
    v = TH_EVENT_V2;
  else if (version && strcmp(version, "1.0") == 0)
    v = TH_EVENT_V1;
  else if (version) {
    /* Quoted only when it is short printable ASCII: the reason goes to the
     * log and to the --local user's terminal, and is never cut. */
    size_t n = strlen(version);
    int shown = n <= 40;
    for (size_t i = 0; shown && i < n; i++)
      shown = (unsigned char)version[i] >= 0x20 && (unsigned char)version[i] < 0x7f;
    if (shown)
      snprintf(err, errlen, "not an API Gateway proxy event: unknown payload version '%s'",
               version);
    else
      snprintf(err, errlen,
               "not an API Gateway proxy event: unknown payload version (%zu bytes, not shown: "
               "not short printable ASCII)", n);
    lua_settop(L, base);
    return TH_ERR_INVALID;
  } else if (v1_method)
    v = TH_EVENT_V1;
  else
    v = TH_EVENT_V2;
  const char *method = v == TH_EVENT_V2 ? v2_method : v1_method;
  size_t raw_len = 0, client_len = 0;
  const char *raw_path = v == TH_EVENT_V2 ? field_lstr(L, ev, "rawPath", &raw_len)
                                          : field_lstr(L, ev, "path", &raw_len);
  if (v == TH_EVENT_V1 && !raw_path)
    raw_path = field_lstr(L, rc, "resourcePath", &raw_len);
  if (!method || !*method || !raw_path) {
    snprintf(err, errlen,
             "not an API Gateway proxy event: no %s (payload %s)",
             v == TH_EVENT_V2 ? "requestContext.http.method or rawPath"
                              : "httpMethod or path",
             v == TH_EVENT_V2 ? "2.0, HTTP API" : "1.0, REST API");
    lua_settop(L, base);
    return TH_ERR_INVALID;
  }

  lua_createtable(L, 0, 16);
  int req = lua_gettop(L);
  push_upper(L, method);
  lua_setfield(L, req, "method");
  const char *stage = field_str(L, rc, "stage");
  /* REST APIs give the path without the stage in `path` and the path the
   * client used (stage or base path included) in requestContext.path. */
  const char *client_path = v == TH_EVENT_V1 ? field_lstr(L, rc, "path", &client_len) : NULL;
  if (client_path)
    lua_pushlstring(L, client_path, client_len);
  else
    lua_pushlstring(L, raw_path, raw_len);
  lua_setfield(L, req, "raw_path");
  const char *route_path = raw_path;
  size_t route_len = raw_len;
  if (v == TH_EVENT_V2)
    skip_stage(&route_path, &route_len, stage);
  else
    skip_v1_prefix(L, ev, &route_path, &route_len, stage);
  push_clean_path(L, route_path, route_len);
  lua_setfield(L, req, "path");
  set_str(L, req, "stage", stage);
  lua_pushstring(L, v == TH_EVENT_V2 ? "2.0" : "1.0");
  lua_setfield(L, req, "version");
  set_str(L, req, "api_request_id", field_str(L, rc, "requestId"));
  if (v == TH_EVENT_V2) {
    set_str(L, req, "source_ip", field_str(L, http, "sourceIp"));
  } else {
    int identity = field_table(L, rc, "identity");
    set_str(L, req, "source_ip", field_str(L, identity, "sourceIp"));
    if (identity)
      lua_pop(L, 1);
  }
  push_headers(L, ev, v);
  lua_setfield(L, req, "headers");
  push_query(L, ev, v);
  lua_setfield(L, req, "multi_query");
  lua_setfield(L, req, "query");
  int pp = field_table(L, ev, "pathParameters");
  if (pp)
    lua_pushvalue(L, pp);
  else
    lua_newtable(L);
  lua_setfield(L, req, "path_params");
  if (pp)
    lua_pop(L, 1);
  int auth = field_table(L, rc, "authorizer");
  if (auth) {
    lua_pushvalue(L, auth);
    lua_setfield(L, req, "authorizer");
    int jwt = field_table(L, auth, "jwt");
    int claims = field_table(L, jwt ? jwt : auth, "claims");
    if (claims) {
      lua_pushvalue(L, claims);
      lua_setfield(L, req, "claims");
      lua_pop(L, 1);
    }
    if (jwt)
      lua_pop(L, 1);
    lua_pop(L, 1);
  }

  info->version = v;
  info->body_invalid = 0;
  info->body_len = 0;
  lua_getfield(L, ev, "body");
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t blen;
    const char *body = lua_tolstring(L, -1, &blen);
    lua_getfield(L, ev, "isBase64Encoded");
    int b64 = lua_toboolean(L, -1) && lua_type(L, -1) == LUA_TBOOLEAN;
    lua_pop(L, 1);
    if (b64) {
      char *dec = NULL;
      size_t dlen = 0;
      th_result r = th_base64_decode(body, blen, &dec, &dlen);
      if (r == TH_ERR_NOMEM)
        luaL_error(L, "not enough memory");
      if (r == TH_OK) {
        lua_pushlstring(L, dec, dlen);
        free(dec);
        info->body_len = dlen;
        lua_setfield(L, req, "body");
      } else {
        info->body_invalid = 1;
      }
    } else {
      info->body_len = blen;
      lua_pushvalue(L, -1);
      lua_setfield(L, req, "body");
    }
  }
  lua_pop(L, 1);
  /* keep only the request table */
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  return TH_OK;
}

/* ---- responses ---- */

void th_event_push_response_json(lua_State *L, int idx, th_event_version version) {
  idx = lua_absindex(L, idx);
  lua_createtable(L, 0, 4);
  int out = lua_gettop(L);
  lua_getfield(L, idx, "status");
  lua_setfield(L, out, "statusCode");
  lua_getfield(L, idx, "headers");
  lua_setfield(L, out, "headers");
  lua_getfield(L, idx, "body");
  lua_setfield(L, out, "body");
  /* Both payload versions take single-valued headers and a text body; the
   * host never sends binary or multi-valued headers. */
  lua_pushboolean(L, 0);
  lua_setfield(L, out, "isBase64Encoded");
  (void)version;
  th_json_encode(L, out);
  lua_remove(L, out);
}

void th_event_push_v2_from_http(lua_State *L, const th_http_request *r) {
  lua_createtable(L, 0, 12);
  int ev = lua_gettop(L);
  lua_pushliteral(L, "2.0");
  lua_setfield(L, ev, "version");
  lua_pushliteral(L, "$default");
  lua_setfield(L, ev, "routeKey");
  lua_pushstring(L, r->path);
  lua_setfield(L, ev, "rawPath");
  lua_pushstring(L, r->raw_query ? r->raw_query : "");
  lua_setfield(L, ev, "rawQueryString");
  lua_newtable(L);
  int headers = lua_gettop(L);
  lua_newtable(L);
  int cookies = lua_gettop(L);
  int ncookies = 0;
  for (size_t i = 0; i < r->nheaders; i++) {
    lua_pushstring(L, r->header_names[i]);
    push_lower(L, -1);
    lua_remove(L, -2);
    int name = lua_gettop(L);
    if (strcmp(lua_tostring(L, name), "cookie") == 0) {
      /* HTTP APIs pass cookies as a list, not as a header. */
      const char *c = r->header_values[i];
      while (*c) {
        while (*c == ' ' || *c == ';')
          c++;
        const char *end = strchr(c, ';');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n) {
          lua_pushlstring(L, c, n);
          lua_rawseti(L, cookies, ++ncookies);
        }
        c += n;
      }
    } else {
      lua_pushstring(L, r->header_values[i]);
      add_joined(L, headers, name, lua_gettop(L), ",");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (ncookies)
    lua_setfield(L, ev, "cookies");
  else
    lua_pop(L, 1);
  lua_setfield(L, ev, "headers");

  lua_createtable(L, 0, 1);
  int qsp = lua_gettop(L);
  lua_newtable(L);
  int multi = lua_gettop(L);
  parse_raw_query(L, r->raw_query ? r->raw_query : "", qsp, multi);
  /* HTTP APIs join repeated values with commas in queryStringParameters. */
  lua_pushnil(L);
  while (lua_next(L, multi)) {
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1)
        luaL_addchar(&b, ',');
      lua_rawgeti(L, list, i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_pushvalue(L, list - 1);
    lua_insert(L, -2);
    lua_rawset(L, qsp);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (lua_rawlen(L, qsp) == 0) {
    lua_pushnil(L);
    if (lua_next(L, qsp)) {
      lua_pop(L, 2);
      lua_setfield(L, ev, "queryStringParameters");
    } else {
      lua_pop(L, 1);
    }
  }

  lua_createtable(L, 0, 8);
  int rc = lua_gettop(L);
  set_str(L, rc, "requestId", r->request_id);
  lua_pushliteral(L, "$default");
  lua_setfield(L, rc, "stage");
  lua_pushliteral(L, "$default");
  lua_setfield(L, rc, "routeKey");
  lua_pushliteral(L, "local");
  lua_setfield(L, rc, "apiId");
  lua_pushinteger(L, (lua_Integer)r->time_epoch_ms);
  lua_setfield(L, rc, "timeEpoch");
  lua_createtable(L, 0, 4);
  set_str(L, lua_gettop(L), "method", r->method);
  set_str(L, lua_gettop(L), "path", r->path);
  lua_pushliteral(L, "HTTP/1.1");
  lua_setfield(L, -2, "protocol");
  set_str(L, lua_gettop(L), "sourceIp", r->source_ip);
  lua_setfield(L, rc, "http");
  lua_setfield(L, ev, "requestContext");

  /* Bodies travel base64-encoded, so any byte sequence arrives intact. */
  if (r->body && r->body_len) {
    char *b64 = NULL;
    if (th_base64_encode(r->body, r->body_len, &b64) != TH_OK)
      luaL_error(L, "not enough memory");
    lua_pushstring(L, b64);
    free(b64);
    lua_setfield(L, ev, "body");
    lua_pushboolean(L, 1);
  } else {
    lua_pushboolean(L, 0);
  }
  lua_setfield(L, ev, "isBase64Encoded");
  th_json_encode(L, ev);
  lua_remove(L, ev);
}

th_result th_event_read_v2_response(lua_State *L, const char *json, size_t len,
                                    th_http_response *out) {
  int base = lua_gettop(L);
  th_http_response r = {0};
  th_result rc = TH_ERR_INVALID;
  th_json_decode(L, json, len);
  int t = lua_gettop(L);
  if (lua_type(L, t) != LUA_TTABLE)
    goto done;
  lua_getfield(L, t, "statusCode");
  int64_t status;
  if (lua_type(L, -1) != LUA_TNUMBER || !th_double_to_int64(lua_tonumber(L, -1), &status) ||
      status < 100 || status > 999)
    goto done;
  r.status = (int)status;
  lua_pop(L, 1);
  int headers = field_table(L, t, "headers");
  if (headers) {
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, headers)) {
      n++;
      lua_pop(L, 1);
    }
    r.header_names = calloc(n ? n : 1, sizeof(char *));
    r.header_values = calloc(n ? n : 1, sizeof(char *));
    if (!r.header_names || !r.header_values) {
      rc = TH_ERR_NOMEM;
      goto done;
    }
    lua_pushnil(L);
    while (lua_next(L, headers)) {
      if (lua_type(L, -2) == LUA_TSTRING && push_scalar_text(L, -1)) {
        r.header_names[r.nheaders] = strdup(lua_tostring(L, -3));
        r.header_values[r.nheaders] = strdup(lua_tostring(L, -1));
        r.nheaders++;
        lua_pop(L, 1);
        if (!r.header_names[r.nheaders - 1] || !r.header_values[r.nheaders - 1]) {
          rc = TH_ERR_NOMEM;
          lua_pop(L, 2);
          goto done;
        }
      }
      lua_pop(L, 1);
    }
  }
  lua_getfield(L, t, "body");
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t blen;
    const char *body = lua_tolstring(L, -1, &blen);
    lua_getfield(L, t, "isBase64Encoded");
    int b64 = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (b64) {
      th_result dr = th_base64_decode(body, blen, &r.body, &r.body_len);
      if (dr != TH_OK) {
        rc = dr;
        goto done;
      }
    } else {
      r.body = malloc(blen + 1);
      if (!r.body) {
        rc = TH_ERR_NOMEM;
        goto done;
      }
      memcpy(r.body, body, blen);
      r.body[blen] = '\0';
      r.body_len = blen;
    }
  }
  *out = r;
  memset(&r, 0, sizeof r);
  rc = TH_OK;
done:
  th_http_response_free(&r);
  lua_settop(L, base);
  return rc;
}

void th_http_response_free(th_http_response *r) {
  for (size_t i = 0; i < r->nheaders; i++) {
    free(r->header_names[i]);
    free(r->header_values[i]);
  }
  free(r->header_names);
  free(r->header_values);
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* ---- base64 on OpenSSL ---- */

th_result th_base64_decode(const char *s, size_t len, char **out, size_t *out_len) {
  size_t pad = 0;
  while (len > 0 && s[len - 1] == '=' && pad < 2) {
    len--;
    pad++;
  }
  if (len % 4 == 1 || len > (size_t)1 << 30)
    return TH_ERR_INVALID;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(isalnum(c) || c == '+' || c == '/'))
      return TH_ERR_INVALID;
  }
  /* EVP_DecodeBlock wants whole quads: re-pad. */
  size_t full = (len + 3) / 4 * 4;
  unsigned char *in = malloc(full + 1);
  unsigned char *dec = malloc(full / 4 * 3 + 1);
  if (!in || !dec) {
    free(in);
    free(dec);
    return TH_ERR_NOMEM;
  }
  memcpy(in, s, len);
  memset(in + len, '=', full - len);
  int n = full ? EVP_DecodeBlock(dec, in, (int)full) : 0;
  free(in);
  if (n < 0) {
    free(dec);
    return TH_ERR_INVALID;
  }
  size_t real = (size_t)n - (full - len); /* EVP_DecodeBlock counts padding as zeros */
  dec[real] = '\0';
  *out = (char *)dec;
  *out_len = real;
  return TH_OK;
}

th_result th_base64_encode(const char *s, size_t len, char **out) {
  if (len > (size_t)1 << 30)
    return TH_ERR_TOO_LARGE;
  unsigned char *enc = malloc((len + 2) / 3 * 4 + 1);
  if (!enc)
    return TH_ERR_NOMEM;
  EVP_EncodeBlock(enc, (const unsigned char *)s, (int)len);
  *out = (char *)enc;
  return TH_OK;
}
