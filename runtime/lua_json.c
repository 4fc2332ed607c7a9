/* The json module and the core's JSON helpers, on lua-cjson.
 *
 * Debian's lua-cjson 2.1.0 has no empty-array value: an empty table always
 * encodes as {}. Tables marked with json.array that are empty are swapped for
 * a per-process random placeholder string in a copy of the value before
 * encoding, and the placeholder's JSON text is then replaced by []. The
 * placeholder holds control characters and 128 random bits, so no client text
 * can produce it. */
#include <lauxlib.h>
#include <lua-cjson.h>
#include <pthread.h>
#include <string.h>
#include <uuid/uuid.h>

#include "lua_modules.h"

#define CJSON_KEY "th.cjson"
#define CJSON_DEEP_KEY "th.cjson.deep"
#define ARRAY_MT "th.json.array"
#define MAX_DEPTH 64

static pthread_once_t placeholder_once = PTHREAD_ONCE_INIT;
static char placeholder[64];      /* the Lua string put in place of [] */
static char placeholder_json[96]; /* how cjson writes it */

static void placeholder_init(void) {
  uuid_t u;
  char hex[37];
  uuid_generate_random(u);
  uuid_unparse_lower(u, hex);
  snprintf(placeholder, sizeof placeholder, "\x01th-empty-array-%s\x01", hex);
  snprintf(placeholder_json, sizeof placeholder_json, "\"\\u0001th-empty-array-%s\\u0001\"", hex);
}

void th_json_setup(lua_State *L) {
  pthread_once(&placeholder_once, placeholder_init);
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  /* A private instance: its settings are ours, not the scripts'. */
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "decode_max_depth");
  lua_pushinteger(L, MAX_DEPTH);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "encode_max_depth");
  lua_pushinteger(L, MAX_DEPTH);
  lua_call(L, 1, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, CJSON_KEY);
  lua_pop(L, 1);
  /* Unload the global copy so scripts can only reach our wrapper. */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  lua_setfield(L, -2, "cjson");
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setglobal(L, "cjson");
  if (luaL_newmetatable(L, ARRAY_MT)) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "__jsonarray");
    lua_pushliteral(L, "protected");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
}

static int is_marked_array(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx))
    return 0;
  luaL_getmetatable(L, ARRAY_MT);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

static int is_empty_marked(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || !is_marked_array(L, idx))
    return 0;
  lua_pushnil(L);
  if (lua_next(L, idx)) {
    lua_pop(L, 2);
    return 0;
  }
  return 1;
}

/* Whether any table below idx (depth-limited) is an empty marked array. */
static int has_empty_marked(lua_State *L, int idx, int depth) {
  if (lua_type(L, idx) != LUA_TTABLE || depth > MAX_DEPTH)
    return 0;
  if (is_empty_marked(L, idx))
    return 1;
  luaL_checkstack(L, 3, "json nesting");
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* only a table can hold one: no call for the rest */
    if (lua_type(L, -1) == LUA_TTABLE && has_empty_marked(L, lua_gettop(L), depth + 1)) {
      lua_pop(L, 2);
      return 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* Pushes a copy of the value at idx with empty marked arrays replaced. */
static void push_substituted(lua_State *L, int idx, int depth) {
  luaL_checkstack(L, 4, "json nesting");
  if (is_empty_marked(L, idx)) {
    lua_pushstring(L, placeholder);
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE || depth > MAX_DEPTH) {
    lua_pushvalue(L, idx);
    return;
  }
  lua_newtable(L);
  int copy = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pushvalue(L, -2);
    push_substituted(L, lua_gettop(L) - 1, depth + 1);
    lua_rawset(L, copy);
    lua_pop(L, 1);
  }
}

static void call_cjson(lua_State *L, const char *fn, int idx) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, LUA_REGISTRYINDEX, CJSON_KEY);
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
}

void th_json_encode(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (is_empty_marked(L, idx)) {
    lua_pushliteral(L, "[]");
    return;
  }
  if (!has_empty_marked(L, idx, 0)) {
    call_cjson(L, "encode", idx);
    return;
  }
  push_substituted(L, idx, 0);
  call_cjson(L, "encode", -1);
  lua_remove(L, -2);
  luaL_gsub(L, lua_tostring(L, -1), placeholder_json, "[]");
  lua_remove(L, -2);
}

void th_json_decode(lua_State *L, const char *s, size_t len) {
  lua_pushlstring(L, s, len);
  call_cjson(L, "decode", -1);
  lua_remove(L, -2);
}

/* The deep instance is made on first use: cjson.new() of a fresh module
 * table, decode depth TH_JSON_DEEP_DEPTH, kept in the registry. */
void th_json_decode_deep(lua_State *L, const char *s, size_t len) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, CJSON_DEEP_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_pushcfunction(L, luaopen_cjson);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);
    lua_remove(L, -2);
    lua_getfield(L, -1, "decode_max_depth");
    lua_pushinteger(L, TH_JSON_DEEP_DEPTH);
    lua_call(L, 1, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CJSON_DEEP_KEY);
  }
  lua_getfield(L, -1, "decode");
  lua_remove(L, -2);
  lua_pushlstring(L, s, len);
  lua_call(L, 1, 1);
}

void th_json_mark_array(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  luaL_getmetatable(L, ARRAY_MT);
  lua_setmetatable(L, idx);
}

void th_json_push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }

static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  th_json_encode(L, 1);
  return 1;
}

/* Malformed JSON is an expected failure: nil, message. */
static int l_decode_protected(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  th_json_decode(L, s, len);
  return 1;
}

static int l_decode(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_pushcfunction(L, l_decode_protected);
  lua_pushvalue(L, 1);
  int status = lua_pcall(L, 1, 1, 0);
  if (status != LUA_OK) {
    if (status != LUA_ERRRUN || lua_type(L, -1) != LUA_TSTRING) /* out of memory: not ours */
      return lua_error(L);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getmetatable(L, 1)) {
    lua_pop(L, 1);
    if (!is_marked_array(L, 1))
      return luaL_argerror(L, 1, "table already has a metatable");
  }
  th_json_mark_array(L, 1);
  lua_settop(L, 1);
  return 1;
}

int luaopen_th_json(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"encode", l_encode}, {"decode", l_decode}, {"array", l_array}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  th_json_push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}
