#include "log.h"

#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static th_log_level log_min = TH_LOG_INFO;
static int log_json = 1;
static lua_State *log_L; /* private state holding cjson.encode; guarded by log_lock */

static const char *const level_names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

int th_log_level_parse(const char *s) {
  for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
    if (strcasecmp(s, level_names[i]) == 0)
      return i;
  if (strcasecmp(s, "WARNING") == 0)
    return TH_LOG_WARN;
  return -1;
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

/* Builds the record as a Lua table and encodes it with cjson, inside pcall. */
static int encode_record(lua_State *L) {
  const char *ts = lua_touserdata(L, 1);
  int level = (int)lua_tointeger(L, 2);
  const char *rid = lua_touserdata(L, 3);
  const char *msg = lua_touserdata(L, 4);
  const th_log_field *fields = lua_touserdata(L, 5);
  int nfields = (int)lua_tointeger(L, 6);
  lua_getfield(L, LUA_REGISTRYINDEX, "th.cjson.encode");
  lua_createtable(L, 0, 4 + nfields);
  lua_pushstring(L, ts);
  lua_setfield(L, -2, "timestamp");
  lua_pushstring(L, level_names[level]);
  lua_setfield(L, -2, "level");
  if (rid) {
    lua_pushstring(L, rid);
    lua_setfield(L, -2, "requestId");
  }
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  for (int i = 0; i < nfields; i++) {
    if (fields[i].str)
      lua_pushstring(L, fields[i].str);
    else
      lua_pushnumber(L, fields[i].num);
    lua_setfield(L, -2, fields[i].key);
  }
  lua_call(L, 1, 1);
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

/* Writes s with control characters as \xHH: a value (a request path, an
 * error from the network) must not end the line and forge another. */
static void put_text(const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f)
      fprintf(stderr, "\\x%02x", c);
    else
      fputc(c, stderr);
  }
}

static void write_text(const char *ts, th_log_level level, const char *rid, const char *msg,
                       const th_log_field *fields, int nfields) {
  fprintf(stderr, "%s %s ", ts, level_names[level]);
  put_text(rid ? rid : "-");
  fputc(' ', stderr);
  put_text(msg);
  for (int i = 0; i < nfields; i++) {
    if (fields[i].str) {
      fprintf(stderr, " %s=", fields[i].key);
      put_text(fields[i].str);
    } else
      fprintf(stderr, " %s=%g", fields[i].key, fields[i].num);
  }
  fputc('\n', stderr);
}

void th_log(th_log_level level, const char *request_id, const char *message,
            const th_log_field *fields, int nfields) {
  if (level < log_min)
    return;
  if (level > TH_LOG_FATAL)
    level = TH_LOG_FATAL;
  char ts[40];
  format_timestamp(ts, sizeof ts);
  pthread_mutex_lock(&log_lock);
  if (!log_json || !ensure_state()) {
    write_text(ts, level, request_id, message, fields, nfields);
  } else {
    lua_State *L = log_L;
    lua_pushcfunction(L, encode_record);
    lua_pushlightuserdata(L, ts);
    lua_pushinteger(L, level);
    lua_pushlightuserdata(L, (void *)request_id);
    lua_pushlightuserdata(L, (void *)message);
    lua_pushlightuserdata(L, (void *)fields);
    lua_pushinteger(L, nfields);
    if (lua_pcall(L, 6, 1, 0) == LUA_OK) {
      size_t len;
      const char *line = lua_tolstring(L, -1, &len);
      fwrite(line, 1, len, stderr);
      fputc('\n', stderr);
    } else {
      /* cjson refused (e.g. invalid number): still say something. */
      write_text(ts, level, request_id, message, fields, nfields);
    }
    lua_settop(L, 0);
  }
  fflush(stderr);
  pthread_mutex_unlock(&log_lock);
}

void th_log_shutdown(void) {
  pthread_mutex_lock(&log_lock);
  if (log_L)
    lua_close(log_L);
  log_L = NULL;
  pthread_mutex_unlock(&log_lock);
}
