#include "log.h"

#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common.h"
#include "utf8.h"

#define TEXT_LINE_MAX ((size_t)1 << 30) /* far past any record; a bound for th_buf */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static th_log_level log_min = TH_LOG_INFO;
static int log_json = 1;
static lua_State *log_L; /* private state holding cjson.encode; guarded by log_lock */

static const char *const level_names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

/* The names no field may take at the top level of a record. */
static const char *const core_names[] = {"timestamp", "level", "requestId", "message", "fields"};

/* One record, as th_log_record received it (lengths resolved). */
typedef struct record {
  const char *ts;
  th_log_level level;
  const char *rid;
  const char *msg;
  size_t msg_len;
  const th_log_field *fields;
  int nfields;
  const th_log_field *nested;
  int nnested;
} record;

int th_log_level_parse(const char *s) {
  for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
    if (strcasecmp(s, level_names[i]) == 0)
      return i;
  if (strcasecmp(s, "WARNING") == 0)
    return TH_LOG_WARN;
  return -1;
}

const char *th_log_level_name(th_log_level level) {
  return level_names[level < TH_LOG_TRACE ? TH_LOG_TRACE : level > TH_LOG_FATAL ? TH_LOG_FATAL : level];
}

void th_log_configure(th_log_level min_level, int json) {
  pthread_mutex_lock(&log_lock);
  log_min = min_level;
  log_json = json;
  pthread_mutex_unlock(&log_lock);
}

int th_log_enabled(th_log_level level) { return level >= log_min; }

static void format_timestamp(char *out, size_t n) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char base[32];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  int millis = (int)(ts.tv_nsec / 1000000L) % 1000; /* 0..999: three digits */
  snprintf(out, n, "%.19s.%03dZ", base, millis);
}

static size_t len_of(const char *s, size_t n) { return n == TH_LOG_NUL_ENDED ? strlen(s) : n; }

static int is_core(const char *key, size_t n) {
  for (size_t i = 0; i < TH_ARRAY_LEN(core_names); i++)
    if (strlen(core_names[i]) == n && memcmp(core_names[i], key, n) == 0)
      return 1;
  return 0;
}

static const char *nonfinite_name(double x) { return isnan(x) ? "nan" : x > 0 ? "inf" : "-inf"; }

/* ---- JSON, on the private state ---- */

/* Pushes s[0..n) with each ill-formed unit replaced by U+FFFD (cjson passes
 * bytes through as they are: it must only ever see well-formed text). */
static void push_text(lua_State *L, const char *s, size_t n) {
  if (th_utf8_valid(s, n)) {
    lua_pushlstring(L, s, n);
    return;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t i = 0, run = 0; /* s[run..i) is well-formed and not yet added */
  while (i < n) {
    int ok;
    size_t u = th_utf8_next(s + i, n - i, &ok);
    if (!ok) {
      luaL_addlstring(&b, s + run, i - run);
      luaL_addstring(&b, TH_UTF8_REPLACEMENT);
      run = i + u;
    }
    i += u;
  }
  luaL_addlstring(&b, s + run, n - run);
  luaL_pushresult(&b);
}

static void set_field(lua_State *L, int t, const th_log_field *f) {
  push_text(L, f->key, len_of(f->key, f->key_len));
  if (f->str)
    push_text(L, f->str, len_of(f->str, f->str_len));
  else if (isfinite(f->num))
    lua_pushnumber(L, f->num);
  else
    lua_pushstring(L, nonfinite_name(f->num));
  lua_rawset(L, t);
}

/* Builds the record as a Lua table and pushes its cjson text and a newline;
 * runs inside lua_pcall (index 1: the record). The core fields are set last
 * and no field is set at their names, so they are the logger's own. */
static int encode_record(lua_State *L) {
  const record *r = lua_touserdata(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "th.cjson.encode");
  lua_createtable(L, 0, 5 + r->nfields);
  int t = lua_gettop(L), nested = 0;
  for (int i = 0; i < r->nfields + r->nnested; i++) {
    const th_log_field *f = i < r->nfields ? &r->fields[i] : &r->nested[i - r->nfields];
    int top = i < r->nfields && !is_core(f->key, len_of(f->key, f->key_len));
    if (!top && !nested) {
      lua_createtable(L, 0, r->nnested + 1);
      nested = lua_gettop(L);
      lua_pushvalue(L, nested);
      lua_setfield(L, t, "fields");
    }
    set_field(L, top ? t : nested, f);
  }
  lua_settop(L, t);
  lua_pushstring(L, r->ts);
  lua_setfield(L, t, "timestamp");
  lua_pushstring(L, level_names[r->level]);
  lua_setfield(L, t, "level");
  if (r->rid) {
    push_text(L, r->rid, strlen(r->rid));
    lua_setfield(L, t, "requestId");
  }
  push_text(L, r->msg, r->msg_len);
  lua_setfield(L, t, "message");
  lua_call(L, 1, 1);
  lua_pushliteral(L, "\n");
  lua_concat(L, 2);
  return 1;
}

static int ensure_state(void) {
  if (log_L)
    return 1;
  log_L = luaL_newstate();
  if (!log_L)
    return 0;
  luaL_requiref(log_L, "cjson", luaopen_cjson, 0);
  lua_getfield(log_L, -1, "encode");
  lua_setfield(log_L, LUA_REGISTRYINDEX, "th.cjson.encode");
  lua_pop(log_L, 1);
  return 1;
}

/* Out of memory: a line that still is JSON, and says the record is lost. */
static void write_lost(const record *r) {
  fprintf(stderr,
          "{\"timestamp\":\"%s\",\"level\":\"%s\",\"message\":\"log record lost: out of memory\"}\n",
          r->ts, level_names[r->level]);
}

static void write_json(const record *r) {
  if (!ensure_state()) {
    write_lost(r);
    return;
  }
  lua_State *L = log_L;
  lua_pushcfunction(L, encode_record);
  lua_pushlightuserdata(L, (void *)r);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    size_t len;
    const char *line = lua_tolstring(L, -1, &len);
    fwrite(line, 1, len, stderr);
  } else {
    write_lost(r);
  }
  lua_settop(L, 0);
}

/* ---- Text ---- */

/* Appends s[0..n): control characters as \xHH, each ill-formed unit as
 * U+FFFD. Returns 0 when the buffer is full or out of memory. */
static int put_text(th_buf *b, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    th_result rc;
    size_t u = 1;
    if (c < 0x20 || c == 0x7f) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\x%02x", c);
      rc = th_buf_append(b, esc, 4);
    } else {
      int ok;
      u = th_utf8_next(s + i, n - i, &ok);
      rc = ok ? th_buf_append(b, s + i, u) : th_buf_append_str(b, TH_UTF8_REPLACEMENT);
    }
    if (rc != TH_OK)
      return 0;
    i += u;
  }
  return 1;
}

static int put_field(th_buf *b, const th_log_field *f, int nested) {
  size_t klen = len_of(f->key, f->key_len);
  char num[64];
  if (!f->str)
    snprintf(num, sizeof num, "%g", f->num);
  return th_buf_append_str(b, nested || is_core(f->key, klen) ? " fields." : " ") == TH_OK &&
         put_text(b, f->key, klen) && th_buf_append_str(b, "=") == TH_OK &&
         (f->str ? put_text(b, f->str, len_of(f->str, f->str_len))
                 : th_buf_append_str(b, isfinite(f->num) ? num : nonfinite_name(f->num)) == TH_OK);
}

static void write_text(const record *r) {
  th_buf b;
  th_buf_init(&b, TEXT_LINE_MAX);
  int ok = th_buf_append_str(&b, r->ts) == TH_OK && th_buf_append_str(&b, " ") == TH_OK &&
           th_buf_append_str(&b, level_names[r->level]) == TH_OK &&
           th_buf_append_str(&b, " ") == TH_OK &&
           put_text(&b, r->rid ? r->rid : "-", strlen(r->rid ? r->rid : "-")) &&
           th_buf_append_str(&b, " ") == TH_OK && put_text(&b, r->msg, r->msg_len);
  for (int i = 0; ok && i < r->nfields; i++)
    ok = put_field(&b, &r->fields[i], 0);
  for (int i = 0; ok && i < r->nnested; i++)
    ok = put_field(&b, &r->nested[i], 1);
  if (ok && th_buf_append_str(&b, "\n") == TH_OK)
    fwrite(b.data, 1, b.len, stderr);
  else
    fprintf(stderr, "%s %s log record lost: out of memory\n", r->ts, level_names[r->level]);
  th_buf_free(&b);
}

/* ---- the entry points ---- */

void th_log_record(th_log_level level, const char *request_id, const char *message,
                   size_t message_len, const th_log_field *fields, int nfields,
                   const th_log_field *nested, int nnested) {
  if (level < log_min)
    return;
  if (level > TH_LOG_FATAL)
    level = TH_LOG_FATAL;
  char ts[40];
  format_timestamp(ts, sizeof ts);
  if (!message)
    message = "";
  record r = {ts,     level,   request_id, message, len_of(message, message_len),
              fields, nfields, nested,     nnested};
  pthread_mutex_lock(&log_lock);
  if (log_json)
    write_json(&r);
  else
    write_text(&r);
  fflush(stderr);
  pthread_mutex_unlock(&log_lock);
}

void th_log(th_log_level level, const char *request_id, const char *message,
            const th_log_field *fields, int nfields) {
  th_log_record(level, request_id, message, TH_LOG_NUL_ENDED, fields, nfields, NULL, 0);
}

void th_log_shutdown(void) {
  pthread_mutex_lock(&log_lock);
  if (log_L)
    lua_close(log_L);
  log_L = NULL;
  pthread_mutex_unlock(&log_lock);
}
