/* The small native modules: uuid, clock and log, and the request id that
 * tags everything a script logs. */
#include <lauxlib.h>
#include <stdio.h>
#include <time.h>
#include <uuid/uuid.h>

#include "log.h"
#include "lua_modules.h"
#include "uuid7.h"

#define REQUEST_ID_KEY "th.request_id"

void th_lua_set_request_id(lua_State *L, const char *request_id) {
  lua_pushstring(L, request_id);
  lua_setfield(L, LUA_REGISTRYINDEX, REQUEST_ID_KEY);
}

int th_lua_count_keys(lua_State *L, int idx) {
  int n = 0;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
  }
  return n;
}

const char *th_lua_request_id(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, REQUEST_ID_KEY);
  const char *id = lua_tostring(L, -1); /* anchored in the registry */
  lua_pop(L, 1);
  return id;
}

static int l_uuid_v4(lua_State *L) {
  uuid_t u;
  char text[37];
  uuid_generate_random(u);
  uuid_unparse_lower(u, text);
  lua_pushstring(L, text);
  return 1;
}

/* Time-ordered (uuid7.h): ids made later by this process sort after. */
static int l_uuid_v7(lua_State *L) {
  char text[37];
  if (th_uuid7_text(text) != TH_OK)
    return luaL_error(L, "uuid.v7: no random bytes from OpenSSL");
  lua_pushstring(L, text);
  return 1;
}

int luaopen_th_uuid(lua_State *L) {
  static const luaL_Reg funcs[] = {{"v4", l_uuid_v4}, {"v7", l_uuid_v7}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}

static int l_clock_now(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)time(NULL));
  return 1;
}

static int l_clock_now_ms(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
  return 1;
}

int luaopen_th_clock(lua_State *L) {
  static const luaL_Reg funcs[] = {{"now", l_clock_now}, {"now_ms", l_clock_now_ms}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}

#define LOG_MAX_FIELDS 32

/* log.<level>(message [, fields]): the message is any value (as tostring
 * makes it); fields is a table whose string keys are logged with their
 * values (numbers as numbers, anything else as tostring makes it) inside the
 * record's "fields" object, so a script can never set the core fields
 * (timestamp, level, requestId, message). Entries not logged (keys that are
 * not strings, and those past the first LOG_MAX_FIELDS) are counted in
 * "droppedFields". */
static int log_at(lua_State *L, th_log_level level) {
  if (!th_log_enabled(level))
    return 0;
  size_t msg_len;
  const char *msg = luaL_tolstring(L, 1, &msg_len);
  int nfields = 0;
  lua_Integer dropped = 0;
  th_log_field fields[LOG_MAX_FIELDS];
  if (lua_type(L, 2) == LUA_TTABLE) {
    luaL_checkstack(L, LOG_MAX_FIELDS + 8, "log fields");
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      if (lua_type(L, -2) != LUA_TSTRING || nfields == LOG_MAX_FIELDS) {
        dropped++;
      } else {
        th_log_field *f = &fields[nfields++];
        *f = (th_log_field){0};
        f->key = lua_tolstring(L, -2, &f->key_len); /* anchored: a key of the table */
        if (lua_type(L, -1) == LUA_TNUMBER) {
          f->num = lua_tonumber(L, -1);
        } else {
          /* luaL_tolstring pushes; keep it on the stack until logged */
          f->str = luaL_tolstring(L, -1, &f->str_len);
          lua_insert(L, -3);
        }
      }
      lua_pop(L, 1);
    }
  }
  th_log_field top[] = {TH_LOG_NUM("droppedFields", dropped)};
  th_log_record(level, th_lua_request_id(L), msg, msg_len, top, dropped ? 1 : 0, fields,
                nfields);
  return 0;
}

static int l_log_debug(lua_State *L) { return log_at(L, TH_LOG_DEBUG); }
static int l_log_info(lua_State *L) { return log_at(L, TH_LOG_INFO); }
static int l_log_warn(lua_State *L) { return log_at(L, TH_LOG_WARN); }
static int l_log_error(lua_State *L) { return log_at(L, TH_LOG_ERROR); }

int luaopen_th_log(lua_State *L) {
  static const luaL_Reg funcs[] = {{"debug", l_log_debug}, {"info", l_log_info},
                                   {"warn", l_log_warn},   {"error", l_log_error},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
