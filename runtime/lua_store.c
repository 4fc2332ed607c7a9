/* The store module: the store contract over plain Lua tables.
 *
 *   store.create(item)          → true | false (id taken) | nil, err
 *   store.get(id)               → item | nil (absent) | nil, err
 *   store.update(id, fields)    → new item | nil (absent) | nil, err
 *   store.delete(id)            → old item | nil (absent) | nil, err
 *   store.scan(limit, cursor)   → items, next_cursor_or_nil | nil, err
 *
 * Every operation acts inside the owner the host bound to the store for the
 * request (store.h): the script names no owner and cannot reach another's
 * items; a cursor opens only for the owner it was issued to. Items never
 * hold `user_id`; an item or fields naming it are refused ("invalid").
 *
 * With an If-Match condition bound to the store (the host does it per
 * request), update and delete that find it false return
 * nil, {kind = "precondition"} (the route answers 412; the host makes sure).
 * While the request holds an Idempotency-Key claim (store->idem), create
 * writes nothing: it hands the item to the claim, and the host writes item
 * and record in one transaction once the route has answered (store.h).
 *
 * err = {kind = "invalid"|"throttled"|"unavailable"|"internal"|"precondition",
 *        message = ...}.
 * Misuse by the script (wrong argument types) raises. Backend details go to
 * the log with the request id, never into err.message. C strings returned by
 * the backend are copied onto the Lua stack and freed before anything that
 * can raise. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "log.h"
#include "lua_modules.h"

/* Every key a store can hand back fits in a cursor. */
_Static_assert(TH_STORE_MAX_ID <= TH_CURSOR_MAX_KEY, "a store key does not fit in a cursor");

static th_store_binding *binding(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

static const char *err_kind(th_result r) {
  switch (r) {
  case TH_ERR_INVALID: return "invalid";
  case TH_ERR_THROTTLED: return "throttled";
  case TH_ERR_UNAVAILABLE:
  case TH_ERR_TIMEOUT: return "unavailable";
  default: return "internal";
  }
}

static const char *err_message(th_result r) {
  switch (r) {
  case TH_ERR_INVALID: return "the store rejected the request";
  case TH_ERR_THROTTLED: return "the store is throttling requests";
  case TH_ERR_UNAVAILABLE:
  case TH_ERR_TIMEOUT: return "the store is unavailable";
  default: return "the store failed";
  }
}

/* Returns nil, err to the script (err.kind, err.message for r). */
static int push_err(lua_State *L, th_result r) {
  lua_pushnil(L);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, err_kind(r));
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, err_message(r));
  lua_setfield(L, -2, "message");
  return 2;
}

/* Logs the failure and returns nil, err to the script; a failed If-Match is a normal
 * outcome, not logged here. */
static int push_failure(lua_State *L, const char *op, th_result r, const char *detail) {
  if (r == TH_ERR_PRECONDITION) {
    lua_pushnil(L);
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "precondition");
    lua_setfield(L, -2, "kind");
    lua_pushliteral(L, "If-Match condition failed");
    lua_setfield(L, -2, "message");
    return 2;
  }
  th_log_field f[] = {TH_LOG_STR("op", op), TH_LOG_STR("kind", err_kind(r)),
                      TH_LOG_STR("error", th_result_name(r)), TH_LOG_STR("detail", detail)};
  th_log(r == TH_ERR_INVALID ? TH_LOG_WARN : TH_LOG_ERROR, th_lua_request_id(L),
         "store operation failed", f, (int)TH_ARRAY_LEN(f));
  return push_err(L, r);
}

/* Moves a backend-owned string onto the stack and frees it. */
static void push_owned(lua_State *L, char *s) {
  lua_pushstring(L, s);
  free(s);
}

static void push_plain_from_json(lua_State *L, int idx) {
  size_t len;
  const char *text = lua_tolstring(L, idx, &len);
  th_json_decode(L, text, len);
  th_av_push_plain_item(L, -1);
  lua_remove(L, -2);
}

/* The AV map on top (from a backend's th_store_lua_ops) → its plain item. */
static void plain_from_top(lua_State *L) {
  th_av_push_plain_item(L, -1);
  lua_remove(L, -2);
}

static const th_store_lua_ops *lua_ops(const th_store_binding *b) { return b->store->ops->lua; }

static const char *check_id(lua_State *L, int arg) {
  size_t len;
  const char *id = luaL_checklstring(L, arg, &len);
  luaL_argcheck(L, len > 0 && strlen(id) == len, arg, "id must be a non-empty string without NUL");
  return id;
}

static int l_create(lua_State *L) {
  th_store_binding *b = binding(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "id");
  if (lua_type(L, -1) != LUA_TSTRING)
    return luaL_argerror(L, 1, "item.id must be a string");
  const char *id = check_id(L, -1);
  th_av_push_item(L, 1);
  th_json_encode(L, -1);
  th_store_idem *claim = b->store->idem;
  if (claim) {
    if (claim->pending_id)
      return push_failure(L, "create", TH_ERR_INTERNAL,
                          "a second create in one request with an Idempotency-Key");
    char *pid = strdup(id), *pitem = strdup(lua_tostring(L, -1));
    if (!pid || !pitem) {
      free(pid);
      free(pitem);
      return push_failure(L, "create", TH_ERR_NOMEM, "out of memory");
    }
    claim->pending_id = pid;
    claim->pending_item = pitem;
    b->store->version = 1;
    lua_pushboolean(L, 1);
    return 1;
  }
  double t0 = th_store_call_start(b->store);
  th_result r = b->store->ops->create(b->store, id, lua_tostring(L, -1));
  th_store_count_call(b->store, t0);
  if (r == TH_OK || r == TH_ERR_EXISTS) {
    lua_pushboolean(L, r == TH_OK);
    return 1;
  }
  return push_failure(L, "create", r, b->store->error);
}

static int l_get(lua_State *L) {
  th_store_binding *b = binding(L);
  const char *id = check_id(L, 1);
  char *item = NULL;
  const th_store_lua_ops *lo = lua_ops(b);
  double t0 = th_store_call_start(b->store);
  th_result r = lo && lo->get ? lo->get(b->store, id, L) : b->store->ops->get(b->store, id, &item);
  th_store_count_call(b->store, t0);
  if (r == TH_ERR_NOT_FOUND) {
    lua_pushnil(L);
    return 1;
  }
  if (r != TH_OK)
    return push_failure(L, "get", r, b->store->error);
  if (lo && lo->get) {
    plain_from_top(L);
    return 1;
  }
  push_owned(L, item);
  push_plain_from_json(L, -1);
  return 1;
}

static int l_update(lua_State *L) {
  th_store_binding *b = binding(L);
  const char *id = check_id(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "id");
  luaL_argcheck(L, lua_isnil(L, -1), 2, "fields must not change the id");
  lua_pop(L, 1);
  lua_pushnil(L);
  luaL_argcheck(L, lua_next(L, 2) != 0, 2, "fields must not be empty");
  lua_settop(L, 2);
  th_av_push_item(L, 2);
  th_json_encode(L, -1);
  char *item = NULL;
  const th_store_lua_ops *lo = lua_ops(b);
  double t0 = th_store_call_start(b->store);
  th_result r = lo && lo->update ? lo->update(b->store, id, lua_tostring(L, -1), L)
                                 : b->store->ops->update(b->store, id, lua_tostring(L, -1), &item);
  th_store_count_call(b->store, t0);
  if (r == TH_ERR_NOT_FOUND) {
    lua_pushnil(L);
    return 1;
  }
  b->store->match_failed |= r == TH_ERR_PRECONDITION;
  if (r != TH_OK)
    return push_failure(L, "update", r, b->store->error);
  if (lo && lo->update) {
    plain_from_top(L);
    return 1;
  }
  push_owned(L, item);
  push_plain_from_json(L, -1);
  return 1;
}

static int l_delete(lua_State *L) {
  th_store_binding *b = binding(L);
  const char *id = check_id(L, 1);
  char *old = NULL;
  const th_store_lua_ops *lo = lua_ops(b);
  b->store->version = 0; /* a deleted item has no entity tag */
  double t0 = th_store_call_start(b->store);
  th_result r = lo && lo->remove ? lo->remove(b->store, id, L)
                                 : b->store->ops->remove(b->store, id, &old);
  th_store_count_call(b->store, t0);
  if (r == TH_ERR_NOT_FOUND) {
    lua_pushnil(L);
    return 1;
  }
  b->store->match_failed |= r == TH_ERR_PRECONDITION;
  if (r != TH_OK)
    return push_failure(L, "delete", r, b->store->error);
  if (lo && lo->remove) {
    plain_from_top(L);
    return 1;
  }
  push_owned(L, old);
  push_plain_from_json(L, -1);
  return 1;
}

static int l_scan(lua_State *L) {
  th_store_binding *b = binding(L);
  lua_Integer limit = luaL_checkinteger(L, 1);
  luaL_argcheck(L, limit >= 1 && limit <= 1000, 1, "limit must be from 1 to 1000");
  char *after = NULL;
  if (!lua_isnoneornil(L, 2)) {
    const char *cursor = luaL_checkstring(L, 2);
    /* Not the client's fault (500), as the backend would say without a cursor. */
    if (!b->store->owner[0])
      return push_failure(L, "scan", TH_ERR_INTERNAL, "no owner bound to the store");
    if (th_cursor_open(b->cursor_secret, b->cursor_secret_len, b->store->identity,
                       b->store->owner, cursor, &after) != TH_OK) {
      /* The client's error (the route answers 400), not the store's: INFO, as any 4xx. */
      th_log_field f[] = {TH_LOG_STR("op", "scan"),
                          TH_LOG_STR("detail", "cursor was not issued by this store to this owner")};
      th_log(TH_LOG_INFO, th_lua_request_id(L), "pagination cursor rejected", f,
             (int)TH_ARRAY_LEN(f));
      return push_err(L, TH_ERR_INVALID);
    }
  }
  char *items = NULL, *last = NULL;
  const th_store_lua_ops *lo = lua_ops(b);
  b->store->version = 0; /* a page has no entity tag */
  th_result r;
  int avs = 0;
  double t0 = th_store_call_start(b->store);
  if (lo && lo->scan) {
    lua_createtable(L, (int)limit, 0); /* the plain items, decoded by the backend */
    avs = lua_gettop(L);
    r = lo->scan(b->store, (int)limit, after, L, &last);
  } else {
    r = b->store->ops->scan(b->store, (int)limit, after, &items, &last);
  }
  th_store_count_call(b->store, t0);
  free(after);
  if (r != TH_OK)
    return push_failure(L, "scan", r, b->store->error);
  char *next = NULL, why[96] = "";
  th_result sealed = TH_OK;
  if (last) {
    sealed = th_cursor_seal(b->cursor_secret, b->cursor_secret_len, b->store->identity,
                            b->store->owner, last, &next);
    /* The store handed back a key it should never hold: our fault, not the
     * client's (500, not 400), and said as such. */
    if (sealed != TH_OK)
      snprintf(why, sizeof why, "cannot seal the cursor: %s (key of %zu bytes, at most %d fit)",
               th_result_name(sealed), strlen(last), TH_CURSOR_MAX_KEY);
    free(last);
  }
  if (!(lo && lo->scan)) {
    push_owned(L, items);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    th_json_decode(L, text, len);
    lua_remove(L, -2);
    avs = lua_gettop(L);
  }
  if (sealed != TH_OK)
    return push_failure(L, "scan", sealed == TH_ERR_NOMEM ? sealed : TH_ERR_INTERNAL, why);
  if (next)
    push_owned(L, next);
  else
    lua_pushnil(L);
  int next_idx = lua_gettop(L);
  if (lo && lo->scan) { /* plain already */
    lua_pushvalue(L, avs);
  } else {
    lua_Integer n = (lua_Integer)lua_rawlen(L, avs);
    lua_createtable(L, (int)n, 0); /* n <= 1000: the limit */
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, avs, i);
      th_av_push_plain_item(L, -1);
      lua_rawseti(L, next_idx + 1, i);
      lua_pop(L, 1);
    }
  }
  th_json_mark_array(L, -1);
  lua_pushvalue(L, next_idx);
  return 2;
}

int luaopen_th_store(lua_State *L) {
  static const luaL_Reg funcs[] = {{"create", l_create}, {"get", l_get},   {"update", l_update},
                                   {"delete", l_delete}, {"scan", l_scan}, {NULL, NULL}};
  luaL_newlibtable(L, funcs);
  lua_pushvalue(L, lua_upvalueindex(1));
  luaL_setfuncs(L, funcs, 1);
  return 1;
}
