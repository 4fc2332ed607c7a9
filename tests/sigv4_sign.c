/* sigv4-sign — signs requests given as JSON lines on stdin with
 * th_sigv4_sign and prints one JSON line per request on stdout. Used by
 * tests/botocore_crosscheck.py to compare us with botocore.
 *
 * Input object (one per line; JSON through lua-cjson in a bare lua_State):
 *   method, path, query (raw, optional), headers ([[name, value], ...]),
 *   body_b64 (optional), payload_hash (optional), access_key, secret_key,
 *   session_token (optional), region, service, and the time as
 *   timestamp ("20150830T123600Z" or "2015-08-30T12:36:00Z") or epoch
 *   (seconds); options: normalize (default true), double_encode (default
 *   true), sign_body, omit_session_token, presign (all default false),
 *   expires (presign).
 * Output object: {"headers": [[name, value], ...], "params": [...],
 *   "query": ..., "canonical_request": ..., "string_to_sign": ...,
 *   "signature": ...} or {"error": "<result name>", "detail": "..."}.
 * Exit status: 0 when every line was read (signing errors are reported in
 * the output, not in the status), 1 on a malformed line or I/O error.
 */
#include "common.h"
#include "sigv4.h"

#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (64u << 20)

/* Field `key` of the table at `idx` as a C string without NUL bytes, or
 * NULL when absent/null. *bad is set when present but not such a string. */
static const char *opt_string(lua_State *L, int idx, const char *key, int *bad) {
  const char *s = NULL;
  lua_getfield(L, idx, key);
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    s = lua_tolstring(L, -1, &n);
    if (strlen(s) != n) {
      s = NULL;
      *bad = 1;
    }
  } else if (!lua_isnil(L, -1) && !lua_islightuserdata(L, -1)) { /* cjson.null */
    *bad = 1;
  }
  lua_pop(L, 1); /* the string stays alive: the decoded table holds it */
  return s;
}

static int opt_bool(lua_State *L, int idx, const char *key, int dflt, int *bad) {
  lua_getfield(L, idx, key);
  int v = dflt;
  if (lua_type(L, -1) == LUA_TBOOLEAN)
    v = lua_toboolean(L, -1);
  else if (!lua_isnil(L, -1))
    *bad = 1;
  lua_pop(L, 1);
  return v;
}

static int digits(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* "20150830T123600Z" or "2015-08-30T12:36:00Z" */
static int parse_stamp(const char *s, th_sigv4_time *t) {
  size_t n = strlen(s);
  if (n == 16 && s[8] == 'T' && s[15] == 'Z') {
    *t = (th_sigv4_time){digits(s, 4),      digits(s + 4, 2),  digits(s + 6, 2),
                         digits(s + 9, 2),  digits(s + 11, 2), digits(s + 13, 2)};
  } else if (n == 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
             s[16] == ':' && s[19] == 'Z') {
    *t = (th_sigv4_time){digits(s, 4),      digits(s + 5, 2),  digits(s + 8, 2),
                         digits(s + 11, 2), digits(s + 14, 2), digits(s + 17, 2)};
  } else {
    return 0;
  }
  return t->year >= 0 && t->month >= 0 && t->day >= 0 && t->hour >= 0 && t->minute >= 0 &&
         t->second >= 0;
}

/* Standard base64 (OpenSSL) → bytes; caller frees. */
static th_result b64_decode(const char *s, unsigned char **out, size_t *len) {
  size_t n = strlen(s);
  if (n % 4)
    return TH_ERR_INVALID;
  unsigned char *buf = malloc(n / 4 * 3 + 1);
  if (!buf)
    return TH_ERR_NOMEM;
  int got = n ? EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n) : 0;
  if (got < 0) {
    free(buf);
    return TH_ERR_INVALID;
  }
  size_t pad = n && s[n - 1] == '=' ? (n > 1 && s[n - 2] == '=' ? 2 : 1) : 0;
  *out = buf;
  *len = (size_t)got - pad;
  return TH_OK;
}

/* Pushes [[name, value], ...]. */
static void push_pairs(lua_State *L, const th_sigv4_header *h, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_createtable(L, 2, 0);
    lua_pushstring(L, h[i].name);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, h[i].value);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* Signs the request table at the top of the stack and pushes the answer
 * table. Returns 0 when the request itself is malformed (message pushed
 * as a string instead). */
static int sign_one(lua_State *L) {
  int req_idx = lua_gettop(L), bad = 0;
  th_sigv4_header *headers = NULL;
  unsigned char *body = NULL;
  size_t body_len = 0, nheaders = 0;
  const char *complaint = NULL;

  th_sigv4_request req = {0};
  th_sigv4_credentials cred = {0};
  th_sigv4_params params = {0};
  req.method = opt_string(L, req_idx, "method", &bad);
  req.path = opt_string(L, req_idx, "path", &bad);
  req.query = opt_string(L, req_idx, "query", &bad);
  req.payload_hash = opt_string(L, req_idx, "payload_hash", &bad);
  cred.access_key_id = opt_string(L, req_idx, "access_key", &bad);
  cred.secret_access_key = opt_string(L, req_idx, "secret_key", &bad);
  cred.session_token = opt_string(L, req_idx, "session_token", &bad);
  params.region = opt_string(L, req_idx, "region", &bad);
  params.service = opt_string(L, req_idx, "service", &bad);
  const char *stamp = opt_string(L, req_idx, "timestamp", &bad);
  const char *b64 = opt_string(L, req_idx, "body_b64", &bad);
  params.flags = (opt_bool(L, req_idx, "normalize", 1, &bad) ? 0 : TH_SIGV4_NO_NORMALIZE) |
                 (opt_bool(L, req_idx, "double_encode", 1, &bad) ? 0 : TH_SIGV4_NO_DOUBLE_ENCODE) |
                 (opt_bool(L, req_idx, "sign_body", 0, &bad) ? TH_SIGV4_SIGN_BODY : 0) |
                 (opt_bool(L, req_idx, "omit_session_token", 0, &bad) ? TH_SIGV4_OMIT_TOKEN : 0) |
                 (opt_bool(L, req_idx, "presign", 0, &bad) ? TH_SIGV4_PRESIGN : 0);
  lua_getfield(L, req_idx, "expires");
  params.expires = (long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (bad) {
    complaint = "a field has the wrong type or holds a NUL byte";
    goto done;
  }
  lua_getfield(L, req_idx, "epoch");
  int isint = 0;
  lua_Integer epoch = lua_tointegerx(L, -1, &isint);
  lua_pop(L, 1);
  if (stamp) {
    if (!parse_stamp(stamp, &params.time)) {
      complaint = "bad timestamp";
      goto done;
    }
  } else if (!isint || th_sigv4_time_from_unix((int64_t)epoch, &params.time) != TH_OK) {
    complaint = "no timestamp and no valid epoch";
    goto done;
  }

  lua_getfield(L, req_idx, "headers");
  if (lua_istable(L, -1)) {
    size_t n = (size_t)lua_rawlen(L, -1);
    headers = calloc(n ? n : 1, sizeof *headers);
    if (!headers) {
      complaint = "out of memory";
      lua_pop(L, 1);
      goto done;
    }
    for (size_t i = 0; i < n; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i + 1);
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      size_t nl = 0, vl = 0;
      const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &nl) : NULL;
      const char *value = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &vl) : NULL;
      lua_pop(L, 3);
      if (!name || !value || strlen(name) != nl || strlen(value) != vl) {
        complaint = "headers must be [[name, value], ...] without NUL bytes";
        lua_pop(L, 1);
        goto done;
      }
      headers[nheaders++] = (th_sigv4_header){name, value};
    }
  } else if (!lua_isnil(L, -1)) {
    complaint = "headers must be a list";
    lua_pop(L, 1);
    goto done;
  }
  lua_pop(L, 1);
  req.headers = headers;
  req.nheaders = nheaders;

  if (b64 && b64_decode(b64, &body, &body_len) != TH_OK) {
    complaint = "body_b64 is not base64";
    goto done;
  }
  req.payload = body;
  req.payload_len = body_len;

  th_sigv4_result res;
  const char *why = NULL;
  th_result r = th_sigv4_sign(&req, &cred, &params, &res, &why);
  lua_createtable(L, 0, 6);
  if (r != TH_OK) {
    lua_pushstring(L, th_result_name(r));
    lua_setfield(L, -2, "error");
    lua_pushstring(L, why ? why : "");
    lua_setfield(L, -2, "detail");
  } else {
    push_pairs(L, res.headers, res.nheaders);
    lua_setfield(L, -2, "headers");
    push_pairs(L, res.params, res.nparams);
    lua_setfield(L, -2, "params");
    if (res.query) {
      lua_pushstring(L, res.query);
      lua_setfield(L, -2, "query");
    }
    lua_pushstring(L, res.canonical_request);
    lua_setfield(L, -2, "canonical_request");
    lua_pushstring(L, res.string_to_sign);
    lua_setfield(L, -2, "string_to_sign");
    lua_pushstring(L, res.signature);
    lua_setfield(L, -2, "signature");
    th_sigv4_result_free(&res);
  }
done:
  free(headers);
  free(body);
  if (complaint) {
    lua_pushstring(L, complaint);
    return 0;
  }
  return 1;
}

int main(void) {
  lua_State *L = luaL_newstate();
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0;
  int status = 0;
  if (!L) {
    fprintf(stderr, "sigv4-sign: cannot create a Lua state\n");
    return 1;
  }
  lua_pushcfunction(L, luaopen_cjson);
  lua_call(L, 0, 1);
  int cjson = lua_gettop(L);

  while ((n = getline(&line, &cap, stdin)) > 0) {
    lineno++;
    if ((size_t)n > MAX_LINE) {
      fprintf(stderr, "sigv4-sign: line %ld too long\n", lineno);
      status = 1;
      break;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if (n == 0)
      continue;
    lua_getfield(L, cjson, "decode");
    lua_pushlstring(L, line, (size_t)n);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
      fprintf(stderr, "sigv4-sign: line %ld is not a JSON object\n", lineno);
      status = 1;
      break;
    }
    if (!sign_one(L)) {
      fprintf(stderr, "sigv4-sign: line %ld: %s\n", lineno, lua_tostring(L, -1));
      status = 1;
      break;
    }
    lua_getfield(L, cjson, "encode");
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      fprintf(stderr, "sigv4-sign: line %ld: cannot encode the answer: %s\n", lineno,
              lua_tostring(L, -1));
      status = 1;
      break;
    }
    size_t len;
    const char *json = lua_tolstring(L, -1, &len);
    fwrite(json, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    lua_settop(L, cjson);
  }
  if (ferror(stdin) || ferror(stdout))
    status = 1;
  free(line);
  lua_close(L);
  return status;
}
