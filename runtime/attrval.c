/* AttributeValue marshalling between plain Lua values and DynamoDB's typed
 * form ({S=..}, {N=..}, {BOOL=..}, {NULL=true}, {L=..}, {M=..}).
 *
 * Numbers are written and read here, in C, never through cjson (which keeps 14
 * significant digits): a Lua integer becomes its exact decimal text, an N
 * string that fits a Lua integer comes back as that integer. */
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua_modules.h"

#define AV_MAX_DEPTH 32

static void push_av(lua_State *L, int idx, int depth);

/* Pushes a marked array of convert(element) for the sequence at idx. */
static void push_converted_list(lua_State *L, int idx, int depth,
                                void (*convert)(lua_State *, int, int)) {
  idx = lua_absindex(L, idx);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  lua_createtable(L, n < INT_MAX ? (int)n : 0, 0);
  int out = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    convert(L, -1, depth + 1);
    lua_rawseti(L, out, i);
    lua_pop(L, 1);
  }
  th_json_mark_array(L, out);
}

/* Classifies a table: 1 = array (sequence 1..n or marked), 0 = map with string
 * keys; raises on anything else. */
static int table_is_array(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  lua_Integer count = 0;
  int string_keys = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (lua_type(L, -1) == LUA_TSTRING)
      string_keys++;
  }
  if (count == 0) { /* only json.array() tells an empty list from an empty map */
    int marked = luaL_getmetafield(L, idx, "__jsonarray") != LUA_TNIL;
    if (marked)
      lua_pop(L, 1);
    return marked;
  }
  if (string_keys == count)
    return 0;
  if (string_keys == 0 && n == count)
    return 1;
  luaL_error(L, "cannot store a table that mixes list and map keys");
  return 0;
}

static void push_number_text(lua_State *L, int idx) {
  if (lua_isinteger(L, idx)) {
    lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
    return;
  }
  lua_Number x = lua_tonumber(L, idx);
  if (!isfinite(x))
    luaL_error(L, "cannot store a number that is NaN or infinite");
  char buf[64];
  int64_t whole;
  if (th_double_to_int64(x, &whole))
    snprintf(buf, sizeof buf, "%lld", (long long)whole);
  else
    snprintf(buf, sizeof buf, "%.17g", (double)x);
  lua_pushstring(L, buf);
}

static void push_av(lua_State *L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  if (depth > AV_MAX_DEPTH)
    luaL_error(L, "cannot store a value nested deeper than %d levels", AV_MAX_DEPTH);
  luaL_checkstack(L, 6, "attribute nesting");
  lua_createtable(L, 0, 1);
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, "S");
    break;
  case LUA_TNUMBER:
    push_number_text(L, idx);
    lua_setfield(L, -2, "N");
    break;
  case LUA_TBOOLEAN:
    lua_pushboolean(L, lua_toboolean(L, idx));
    lua_setfield(L, -2, "BOOL");
    break;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) != NULL)
      luaL_error(L, "cannot store a userdata value");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "NULL");
    break;
  case LUA_TTABLE: {
    if (table_is_array(L, idx)) {
      push_converted_list(L, idx, depth, push_av);
      lua_setfield(L, -2, "L");
    } else {
      lua_newtable(L);
      int out = lua_gettop(L);
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        push_av(L, -1, depth + 1);
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
        lua_rawset(L, out);
        lua_pop(L, 1);
      }
      lua_setfield(L, -2, "M");
    }
    break;
  }
  default:
    luaL_error(L, "cannot store a %s value", luaL_typename(L, idx));
  }
}

void th_av_push_item(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_newtable(L);
  int out = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "item attribute names must be strings");
    push_av(L, -1, 1);
    lua_pushvalue(L, -3);
    lua_insert(L, -2);
    lua_rawset(L, out);
    lua_pop(L, 1);
  }
}

static void push_plain(lua_State *L, int idx, int depth);

/* N text → integer when it is one and fits, else the nearest float. */
static void push_number_from_text(lua_State *L, const char *s) {
  if (lua_stringtonumber(L, s) == 0)
    luaL_error(L, "stored number '%s' is not a number", s);
}

static void push_plain(lua_State *L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  if (depth > AV_MAX_DEPTH + 1)
    luaL_error(L, "stored value nested too deep");
  luaL_checkstack(L, 6, "attribute nesting");
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "malformed attribute value");
  lua_pushnil(L);
  if (!lua_next(L, idx))
    luaL_error(L, "malformed attribute value (empty)");
  /* stack: type name, payload */
  const char *type = lua_tostring(L, -2);
  int payload = lua_gettop(L);
  if (!type)
    luaL_error(L, "malformed attribute value");
  /* B: DynamoDB's JSON protocol carries the bytes as base64 text; served so. */
  if ((strcmp(type, "S") == 0 || strcmp(type, "B") == 0) && lua_type(L, payload) == LUA_TSTRING) {
    lua_pushvalue(L, payload);
  } else if (strcmp(type, "N") == 0 && lua_type(L, payload) == LUA_TSTRING) {
    push_number_from_text(L, lua_tostring(L, payload));
  } else if (strcmp(type, "BOOL") == 0 && lua_type(L, payload) == LUA_TBOOLEAN) {
    lua_pushboolean(L, lua_toboolean(L, payload));
  } else if (strcmp(type, "NULL") == 0) {
    th_json_push_null(L);
  } else if ((strcmp(type, "L") == 0 || strcmp(type, "SS") == 0 || strcmp(type, "NS") == 0 ||
              strcmp(type, "BS") == 0) &&
             lua_type(L, payload) == LUA_TTABLE) {
    if (type[0] == 'L') {
      push_converted_list(L, payload, depth, push_plain);
    } else { /* sets come back as lists of strings or numbers */
      lua_newtable(L);
      lua_Integer n = (lua_Integer)lua_rawlen(L, payload);
      for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, payload, i);
        if (type[0] == 'N')
          push_number_from_text(L, luaL_checkstring(L, -1));
        else
          lua_pushvalue(L, -1);
        lua_rawseti(L, -3, i);
        lua_pop(L, 1);
      }
      th_json_mark_array(L, -1);
    }
  } else if (strcmp(type, "M") == 0 && lua_type(L, payload) == LUA_TTABLE) {
    lua_createtable(L, 0, th_lua_count_keys(L, payload));
    int out = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, payload)) { /* key, av */
      lua_pushvalue(L, -2);
      push_plain(L, -2, depth + 1); /* key, av, key, plain */
      lua_rawset(L, out);
      lua_pop(L, 1);
    }
  } else {
    luaL_error(L, "unsupported attribute value type '%s'", type);
  }
  /* keep only the result */
  lua_replace(L, payload - 1);
  lua_settop(L, payload - 1);
}

void th_av_push_plain_item(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_createtable(L, 0, th_lua_count_keys(L, idx));
  int out = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* key, av */
    lua_pushvalue(L, -2);
    push_plain(L, -2, 1); /* key, av, key, plain */
    lua_rawset(L, out);
    lua_pop(L, 1);
  }
}
