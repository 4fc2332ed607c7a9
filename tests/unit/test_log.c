/* Unit tests for runtime/log and the Lua log module: what th_log writes on
 * stderr (captured through a temporary file on fd 2) is one line per record
 * that decodes as strict UTF-8 and, in the JSON format, as an object whose
 * core fields are the logger's — for messages, request ids, keys and values
 * holding split characters, overlong forms, surrogates, bytes 0x80..0xFF,
 * control characters and NUL; non-finite numbers; fields named like the core
 * fields (from C and from a script); the Text format the same way; and the
 * script-facing log.info/warn with forged fields, an error table, math.huge
 * and too many fields. */
#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common.h"
#include "log.h"
#include "lua_modules.h"
#include "utf8.h"

#define R TH_UTF8_REPLACEMENT

static lua_State *J; /* cjson.decode for the checks */

/* ---- capturing stderr ---- */

static FILE *cap;
static int saved_fd = -1;

static void cap_begin(void) {
  fflush(stderr);
  cap = tmpfile();
  saved_fd = dup(2);
  dup2(fileno(cap), 2);
}

/* Ends the capture; returns what was written (caller frees), NUL-terminated. */
static char *cap_end(size_t *len) {
  fflush(stderr);
  dup2(saved_fd, 2);
  close(saved_fd);
  fseek(cap, 0, SEEK_END);
  long n = ftell(cap);
  rewind(cap);
  char *out = malloc((size_t)n + 1);
  size_t got = fread(out, 1, (size_t)n, cap);
  out[got] = '\0';
  fclose(cap);
  *len = got;
  return out;
}

/* ---- checking a line ---- */

/* One line: ends with its only '\n', no other control byte, valid UTF-8. */
static int one_clean_line(const char *s, size_t n) {
  if (n == 0 || s[n - 1] != '\n')
    return 0;
  for (size_t i = 0; i + 1 < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 0;
  return th_utf8_valid(s, n);
}

static int decode_protected(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "decode");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

/* Decodes the line onto J's stack (index 1); 0 unless it is a JSON object. */
static int decode(const char *s, size_t n) {
  lua_settop(J, 0);
  lua_pushcfunction(J, decode_protected);
  lua_pushlstring(J, s, n);
  if (lua_pcall(J, 1, 1, 0) != LUA_OK || lua_type(J, -1) != LUA_TTABLE)
    return 0;
  return 1;
}

/* The string at t.key (t.sub.key when sub), or NULL; *n its length. */
static const char *str_at(const char *sub, const char *key, size_t *n) {
  lua_settop(J, 1);
  int t = 1;
  if (sub) {
    if (lua_getfield(J, 1, sub) != LUA_TTABLE)
      return NULL;
    t = 2;
  }
  if (lua_getfield(J, t, key) != LUA_TSTRING)
    return NULL;
  return lua_tolstring(J, -1, n);
}

static int str_is(const char *sub, const char *key, const char *want, size_t wn) {
  size_t n;
  const char *s = str_at(sub, key, &n);
  return s && n == wn && memcmp(s, want, n) == 0;
}
#define STR_IS(sub, key, lit) str_is(sub, key, lit, sizeof lit - 1)

static int num_is(const char *sub, const char *key, double want) {
  lua_settop(J, 1);
  int t = 1;
  if (sub) {
    if (lua_getfield(J, 1, sub) != LUA_TTABLE)
      return 0;
    t = 2;
  }
  return lua_getfield(J, t, key) == LUA_TNUMBER && lua_tonumber(J, -1) == want;
}

static int absent(const char *key) {
  lua_settop(J, 1);
  return lua_getfield(J, 1, key) == LUA_TNIL;
}

/* The core fields, as the logger sets them. */
static int core_ok(const char *level, const char *rid, const char *msg, size_t msg_len) {
  size_t n;
  const char *ts = str_at(NULL, "timestamp", &n);
  int ts_ok = ts && n == 24 && ts[4] == '-' && ts[10] == 'T' && ts[23] == 'Z';
  return ts_ok && str_is(NULL, "level", level, strlen(level)) &&
         (rid ? str_is(NULL, "requestId", rid, strlen(rid)) : absent("requestId")) &&
         str_is(NULL, "message", msg, msg_len);
}

/* ---- JSON ---- */

static char *log_json(th_log_level level, const char *rid, const char *msg, size_t msg_len,
                      const th_log_field *f, int nf, const th_log_field *nested, int nn,
                      size_t *len) {
  cap_begin();
  th_log_record(level, rid, msg, msg_len, f, nf, nested, nn);
  return cap_end(len);
}

static void test_json_strings(void) {
  size_t n;
  char *line;
  th_log_configure(TH_LOG_TRACE, 1);

  /* a character split by a cut, in the message */
  line = log_json(TH_LOG_INFO, "rid-1", "ab\xc3", TH_LOG_NUL_ENDED, NULL, 0, NULL, 0, &n);
  CHECK(one_clean_line(line, n), "split: %s", line);
  CHECK(decode(line, n) && core_ok("INFO", "rid-1", "ab" R, 5), "split: %s", line);
  free(line);

  /* overlong forms, surrogates, 0x80..0xFF in values, keys, request id */
  char high[129];
  for (int b = 0; b < 128; b++)
    high[b] = (char)(0x80 + b);
  high[128] = '\0';
  char want_high[128 * 3];
  for (int b = 0; b < 128; b++)
    memcpy(want_high + 3 * b, R, 3);
  th_log_field f[] = {
      TH_LOG_STR("overlong", "\xc0\xaf|\xe0\x80\xaf|\xf0\x80\x80\xaf"),
      TH_LOG_STR("surrogate", "\xed\xa0\x80\xed\xbf\xbf"),
      TH_LOG_STR("high", high),
      TH_LOG_STR("k\xff", "v"),
      TH_LOG_STR("ctl", "a\x01\x1f\x7f\tb\r\nc"),
      TH_LOG_LSTR("nul", "a\0b", 3),
      TH_LOG_STR("emoji", "\xf0\x9f\x98\x80"),
  };
  line = log_json(TH_LOG_WARN, "rid\xfe", "m\n{\"level\":\"FATAL\"}", TH_LOG_NUL_ENDED, f,
                  (int)TH_ARRAY_LEN(f), NULL, 0, &n);
  CHECK(one_clean_line(line, n), "strings: %s", line);
  CHECK(decode(line, n), "strings: not JSON: %s", line);
  CHECK(core_ok("WARN", "rid" R, "m\n{\"level\":\"FATAL\"}", 19), "strings: core: %s", line);
  CHECK(STR_IS(NULL, "overlong", R R "|" R R R "|" R R R R), "overlong: %s", line);
  CHECK(STR_IS(NULL, "surrogate", R R R R R R), "surrogate: %s", line);
  CHECK(str_is(NULL, "high", want_high, sizeof want_high), "0x80..0xFF: %s", line);
  CHECK(STR_IS(NULL, "k" R, "v"), "invalid key: %s", line);
  CHECK(STR_IS(NULL, "ctl", "a\x01\x1f\x7f\tb\r\nc"), "control characters: %s", line);
  CHECK(STR_IS(NULL, "nul", "a\0b"), "NUL: %s", line);
  CHECK(STR_IS(NULL, "emoji", "\xf0\x9f\x98\x80"), "a valid character is kept: %s", line);
  free(line);

  /* a long message: whole */
  size_t big = 100000;
  char *text = malloc(big + 1);
  for (size_t i = 0; i < big; i++)
    text[i] = (char)(i % 3 == 2 ? 0xa9 : i % 3 == 1 ? 0xc3 : 'x');
  text[big] = '\0';
  line = log_json(TH_LOG_INFO, NULL, text, big, NULL, 0, NULL, 0, &n);
  CHECK(one_clean_line(line, n) && decode(line, n) && core_ok("INFO", NULL, text, big),
        "100 kB message");
  free(line);
  free(text);
}

static void test_json_numbers(void) {
  size_t n;
  th_log_field f[] = {TH_LOG_NUM("inf", INFINITY), TH_LOG_NUM("ninf", -INFINITY),
                      TH_LOG_NUM("nan", NAN), TH_LOG_NUM("nnan", -NAN),
                      TH_LOG_NUM("x", 1.5), TH_LOG_NUM("zero", 0)};
  th_log_field g[] = {TH_LOG_NUM("n", HUGE_VAL)};
  char *line = log_json(TH_LOG_INFO, "r", "numbers", TH_LOG_NUL_ENDED, f, (int)TH_ARRAY_LEN(f),
                        g, 1, &n);
  CHECK(one_clean_line(line, n) && decode(line, n), "numbers: not JSON: %s", line);
  CHECK(core_ok("INFO", "r", "numbers", 7), "numbers: core: %s", line);
  CHECK(STR_IS(NULL, "inf", "inf") && STR_IS(NULL, "ninf", "-inf") && STR_IS(NULL, "nan", "nan") &&
            STR_IS(NULL, "nnan", "nan") && STR_IS("fields", "n", "inf"),
        "non-finite: %s", line);
  CHECK(num_is(NULL, "x", 1.5) && num_is(NULL, "zero", 0), "finite: %s", line);
  free(line);
}

static void test_json_core_fields(void) {
  size_t n;
  /* from C: a field named like a core field goes into "fields" */
  th_log_field f[] = {TH_LOG_STR("message", "forged"),  TH_LOG_STR("level", "FATAL"),
                      TH_LOG_STR("requestId", "forged"), TH_LOG_STR("timestamp", "1970"),
                      TH_LOG_STR("fields", "x"),         TH_LOG_STR("op", "GetItem")};
  /* a script's fields: all inside "fields" */
  th_log_field g[] = {TH_LOG_STR("message", "script"), TH_LOG_STR("level", "FATAL"),
                      TH_LOG_STR("requestId", "forged-id"), TH_LOG_NUM("count", 3)};
  char *line = log_json(TH_LOG_ERROR, "real-id", "real", TH_LOG_NUL_ENDED, f, 5, NULL, 0, &n);
  CHECK(one_clean_line(line, n) && decode(line, n), "C fields: %s", line);
  CHECK(core_ok("ERROR", "real-id", "real", 4), "C fields: core: %s", line);
  CHECK(STR_IS("fields", "message", "forged") && STR_IS("fields", "level", "FATAL") &&
            STR_IS("fields", "requestId", "forged") && STR_IS("fields", "timestamp", "1970") &&
            STR_IS("fields", "fields", "x"),
        "C fields: kept under fields: %s", line);
  free(line);

  line = log_json(TH_LOG_INFO, NULL, "real", TH_LOG_NUL_ENDED, f + 5, 1, g,
                  (int)TH_ARRAY_LEN(g), &n);
  CHECK(one_clean_line(line, n) && decode(line, n), "script fields: %s", line);
  CHECK(core_ok("INFO", NULL, "real", 4), "script fields: core: %s", line);
  CHECK(STR_IS(NULL, "op", "GetItem"), "a C field stays at the top: %s", line);
  CHECK(STR_IS("fields", "message", "script") && STR_IS("fields", "level", "FATAL") &&
            STR_IS("fields", "requestId", "forged-id") && num_is("fields", "count", 3),
        "script fields: nested: %s", line);
  free(line);

  line = log_json(TH_LOG_INFO, NULL, "plain", TH_LOG_NUL_ENDED, NULL, 0, NULL, 0, &n);
  CHECK(decode(line, n) && absent("fields"), "no fields, no \"fields\": %s", line);
  free(line);
}

/* ---- Text ---- */

static void test_text(void) {
  size_t n;
  th_log_configure(TH_LOG_TRACE, 0);
  th_log_field f[] = {TH_LOG_STR("path", "/a\xc3"), TH_LOG_STR("message", "forged"),
                      TH_LOG_NUM("inf", INFINITY), TH_LOG_LSTR("nul", "a\0b", 3)};
  th_log_field g[] = {TH_LOG_STR("level", "FATAL"), TH_LOG_NUM("nan", NAN)};
  cap_begin();
  th_log_record(TH_LOG_INFO, "rid\xff", "m\xe0\x80\xaf\nforged line", TH_LOG_NUL_ENDED, f,
                (int)TH_ARRAY_LEN(f), g, (int)TH_ARRAY_LEN(g));
  char *line = cap_end(&n);
  CHECK(one_clean_line(line, n), "text: %s", line);
  const char *after_ts = line + 25;
  CHECK(n > 25 && strcmp(after_ts,
                         "INFO rid" R " m" R R R "\\x0aforged line path=/a" R
                         " fields.message=forged inf=inf nul=a\\x00b fields.level=FATAL"
                         " fields.nan=nan\n") == 0,
        "text: %s", line);
  free(line);
  th_log_configure(TH_LOG_TRACE, 1);
}

/* ---- levels ---- */

static void test_levels(void) {
  size_t n;
  th_log_configure(TH_LOG_WARN, 1);
  cap_begin();
  th_log(TH_LOG_INFO, NULL, "dropped", NULL, 0);
  th_log(TH_LOG_ERROR, NULL, "kept", NULL, 0);
  char *out = cap_end(&n);
  CHECK(strstr(out, "dropped") == NULL && strstr(out, "\"kept\"") != NULL, "levels: %s", out);
  free(out);
  th_log_configure(TH_LOG_TRACE, 1);
}

/* ---- the Lua log module ---- */

static char *run_script(lua_State *L, const char *code, size_t *len) {
  cap_begin();
  int rc = luaL_dostring(L, code);
  char *out = cap_end(len);
  CHECK(rc == LUA_OK, "script: %s", rc == LUA_OK ? "" : lua_tostring(L, -1));
  lua_settop(L, 0);
  return out;
}

static void test_script(void) {
  size_t n;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "log", luaopen_th_log, 1);
  lua_pop(L, 1);
  th_lua_set_request_id(L, "the-request");

  char *line = run_script(
      L, "log.info('hello', {requestId='forged-id', level='FATAL', message='forged', "
         "timestamp='1970-01-01T00:00:00.000Z'})", &n);
  CHECK(one_clean_line(line, n) && decode(line, n), "forged: %s", line);
  CHECK(core_ok("INFO", "the-request", "hello", 5), "forged: core: %s", line);
  CHECK(STR_IS("fields", "requestId", "forged-id") && STR_IS("fields", "level", "FATAL") &&
            STR_IS("fields", "message", "forged") &&
            STR_IS("fields", "timestamp", "1970-01-01T00:00:00.000Z"),
        "forged: nested: %s", line);
  free(line);

  line = run_script(L, "log.warn('x', {kind='invalid', message='the store failed'})", &n);
  CHECK(decode(line, n) && core_ok("WARN", "the-request", "x", 1) &&
            STR_IS("fields", "message", "the store failed") && STR_IS("fields", "kind", "invalid"),
        "an error table: %s", line);
  free(line);

  line = run_script(L, "log.info('inf', {n = math.huge, m = -math.huge, z = 0/0, i = 7})", &n);
  CHECK(one_clean_line(line, n) && decode(line, n), "math.huge: not JSON: %s", line);
  CHECK(core_ok("INFO", "the-request", "inf", 3) && STR_IS("fields", "n", "inf") &&
            STR_IS("fields", "m", "-inf") && STR_IS("fields", "z", "nan") &&
            num_is("fields", "i", 7),
        "math.huge: %s", line);
  free(line);

  line = run_script(L, "log.error('a\\0b\\xff', {['k\\xfe'] = 'v\\0\\xc3', b = true})", &n);
  CHECK(one_clean_line(line, n) && decode(line, n), "bytes: not JSON: %s", line);
  CHECK(core_ok("ERROR", "the-request", "a\0b" R, 6) && STR_IS("fields", "k" R, "v\0" R) &&
            STR_IS("fields", "b", "true"),
        "bytes: %s", line);
  free(line);

  line = run_script(L, "local t = {'one', 'two'} for i = 1, 40 do t['k' .. i] = i end "
                       "log.info('many', t)", &n);
  CHECK(decode(line, n) && core_ok("INFO", "the-request", "many", 4) &&
            num_is(NULL, "droppedFields", 10),
        "42 entries, 32 logged: %s", line);
  lua_settop(J, 1);
  int count = 0;
  if (lua_getfield(J, 1, "fields") == LUA_TTABLE) {
    lua_pushnil(J);
    while (lua_next(J, -2)) {
      count++;
      lua_pop(J, 1);
    }
  }
  CHECK(count == 32, "%d fields", count);
  free(line);

  line = run_script(L, "log.info('none', {})", &n);
  CHECK(decode(line, n) && absent("fields") && absent("droppedFields"), "no fields: %s", line);
  free(line);
  lua_close(L);
}

int main(void) {
  J = luaL_newstate();
  luaL_requiref(J, "cjson", luaopen_cjson, 0);
  lua_getfield(J, -1, "decode");
  lua_setfield(J, LUA_REGISTRYINDEX, "decode");
  lua_settop(J, 0);
  test_json_strings();
  test_json_numbers();
  test_json_core_fields();
  test_text();
  test_levels();
  test_script();
  lua_close(J);
  th_log_shutdown();
  return CHECK_DONE();
}
