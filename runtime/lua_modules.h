/* lua_modules — the native modules given to route scripts, and the C helpers
 * the core shares with them.
 *
 *   json   encode/decode (lua-cjson), json.null, json.array(t)
 *   store  the store contract over Lua tables (see store.h), opaque cursors
 *   uuid   uuid.v4(), uuid.v7() (time-ordered, uuid7.h)
 *   clock  clock.now() (epoch seconds)
 *   log    log.debug/info/warn/error(message [, fields]) with the request id;
 *          the fields nested under "fields" (see log.h)
 *
 * th_json_* and th_av_* raise Lua errors on failure: call them only inside a
 * protected call. Everything else reports through return values.
 */
#ifndef TH_LUA_MODULES_H
#define TH_LUA_MODULES_H

#include <lua.h>

#include "store.h"

/* Loads a private cjson instance into the registry and the array metatable.
 * Must run once per state before any other function here. */
void th_json_setup(lua_State *L);
/* Pushes the JSON text of the value at idx. Tables marked with json.array
 * encode as arrays even when empty. Raises on unencodable values. */
void th_json_encode(lua_State *L, int idx);
/* Pushes the value decoded from s. Raises on malformed JSON. */
void th_json_decode(lua_State *L, const char *s, size_t len);
/* The same, from a second private instance that reads nesting up to
 * TH_JSON_DEEP_DEPTH (the scripts' limit is 64): for documents that wrap
 * stored items, such as DynamoDB responses. */
#define TH_JSON_DEEP_DEPTH 128
void th_json_decode_deep(lua_State *L, const char *s, size_t len);
/* Marks the table at idx as a JSON array (an empty one encodes as []). */
void th_json_mark_array(lua_State *L, int idx);
/* Pushes json.null (the lightuserdata cjson uses for JSON null). */
void th_json_push_null(lua_State *L);

/* Pushes the AttributeValue map (a table of {S=..}/{N=..}/... per attribute)
 * of the item table at idx. Numbers become exact N strings. Raises on values
 * that cannot be stored (functions, NaN, mixed tables, nesting > 32). */
void th_av_push_item(lua_State *L, int idx);
/* The reverse: pushes the plain item of the AttributeValue map at idx. */
void th_av_push_plain_item(lua_State *L, int idx);

int luaopen_th_json(lua_State *L);
int luaopen_th_uuid(lua_State *L);
int luaopen_th_clock(lua_State *L);
int luaopen_th_log(lua_State *L);

/* The store module needs the backend and the cursor key; the host owns both
 * and they must outlive the state. */
typedef struct th_store_binding {
  th_store *store;
  const unsigned char *cursor_secret;
  size_t cursor_secret_len;
} th_store_binding;
int luaopen_th_store(lua_State *L); /* upvalue 1: lightuserdata th_store_binding */

/* The request id the log module and the store errors are tagged with. */
void th_lua_set_request_id(lua_State *L, const char *request_id);
const char *th_lua_request_id(lua_State *L);
/* The number of keys of the table at idx, so a table copied from it can be created at its
 * size (lua_createtable) instead of rehashed at every power of two on the way. */
int th_lua_count_keys(lua_State *L, int idx);

#endif
