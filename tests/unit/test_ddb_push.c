/* ddb_push: the decode-once read path (th_ddb_push_item / th_ddb_push_scan)
 * against the text path it replaces, input for input.
 *
 * The text path is what the store module did with a text backend: the codec
 * re-encodes the checked item (th_ddb_parse_item / th_ddb_parse_scan), the
 * host decodes that text (th_json_decode; a scan page as "[items]") and
 * turns the AV map into the script's plain item (th_av_push_plain_item).
 * The push path hands the checked AV tables over and converts them the same
 * way. For every input both must end at the same stage: the same result and
 * `why` from the codec, or the same error raised by the conversion, or equal
 * Lua values (types, integer/float, bytes, array marks, json.null) for the
 * AV map and the plain item; for a scan also count, more, last id and
 * LastEvaluatedKey id. Inputs: hand-written bodies (garbage, wrong shapes,
 * every AttributeValue type, exact numbers, escapes, unicode), every prefix
 * of a rich body and every one-byte substitution of it from a small
 * alphabet, Scan pages of 0 to 1000 items, and nesting up to and past the
 * depth limits. */
#include "check.h"
#include "dynamodb.h"
#include "log.h"
#include "lua_modules.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

static lua_State *TL;     /* the "caller's" state, as the host sets it up */
static th_ddb_codec *C;
static int cases;

enum { ST_OK, ST_CODEC, ST_DECODE, ST_PLAIN };
static const char *const stage_name[] = {"ok", "codec failed", "host decode raised", "conversion raised"};

typedef struct outcome {
  int stage;
  th_result r;
  char why[320];
  int av, plain;             /* absolute stack slots (nil when absent) */
  size_t count;
  int more;
  char *last_id, *lek_id;    /* scan */
} outcome;

static int decode_p(lua_State *L) {
  size_t n;
  const char *s = lua_tolstring(L, 1, &n);
  th_json_decode(L, s, n);
  return 1;
}

static int plain_p(lua_State *L) {
  th_av_push_plain_item(L, 1);
  return 1;
}

/* What l_scan does with a page: a plain item for each AV map. */
static int plain_list_p(lua_State *L) {
  lua_newtable(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    th_av_push_plain_item(L, -1);
    lua_rawseti(L, 2, i);
    lua_pop(L, 1);
  }
  return 1;
}

static void set_why(outcome *o, const char *msg) {
  snprintf(o->why, sizeof o->why, "%s", msg ? msg : "(not a string)");
}

/* Converts the AV value in o->av (an item, or a page when `list`) to plain
 * values in o->plain, or records the raised error. */
static void convert(outcome *o, int list) {
  lua_pushnil(TL);
  o->plain = lua_gettop(TL);
  if (lua_isnil(TL, o->av))
    return;
  lua_pushcfunction(TL, list ? plain_list_p : plain_p);
  lua_pushvalue(TL, o->av);
  if (lua_pcall(TL, 1, 1, 0) != LUA_OK) {
    o->stage = ST_PLAIN;
    set_why(o, lua_tostring(TL, -1));
    lua_pop(TL, 1);
    return;
  }
  lua_replace(TL, o->plain);
}

/* Decodes text (NULL: nil) into o->av, as the host does. */
static void host_decode(outcome *o, const char *text, size_t len) {
  lua_pushnil(TL);
  o->av = lua_gettop(TL);
  if (!text)
    return;
  lua_pushcfunction(TL, decode_p);
  lua_pushlstring(TL, text, len);
  if (lua_pcall(TL, 1, 1, 0) != LUA_OK) {
    o->stage = ST_DECODE;
    set_why(o, lua_tostring(TL, -1));
    lua_pop(TL, 1);
    return;
  }
  lua_replace(TL, o->av);
}

static void text_item(const char *body, size_t len, const char *member, outcome *o) {
  char *item = (char *)"untouched";
  memset(o, 0, sizeof *o);
  o->r = th_ddb_parse_item(C, body, len, member, &item, o->why, sizeof o->why);
  if (o->r != TH_OK) {
    o->stage = ST_CODEC;
    CHECK(!strcmp(item, "untouched"), "text: output written on failure");
    lua_pushnil(TL);
    o->av = lua_gettop(TL);
    lua_pushnil(TL);
    o->plain = lua_gettop(TL);
    return;
  }
  host_decode(o, item, item ? strlen(item) : 0);
  free(item);
  if (o->stage == ST_OK)
    convert(o, 0);
  else {
    lua_pushnil(TL);
    o->plain = lua_gettop(TL);
  }
}

static void push_item(const char *body, size_t len, const char *member, outcome *o) {
  memset(o, 0, sizeof *o);
  int top = lua_gettop(TL);
  o->r = th_ddb_push_item(TL, body, len, member, o->why, sizeof o->why);
  if (o->r != TH_OK) {
    o->stage = ST_CODEC;
    CHECK(lua_gettop(TL) == top, "push: stack %d, want %d after a failure", lua_gettop(TL), top);
    lua_settop(TL, top);
    lua_pushnil(TL);
    o->av = lua_gettop(TL);
    lua_pushnil(TL);
    o->plain = lua_gettop(TL);
    return;
  }
  CHECK(lua_gettop(TL) == top + 1, "push: stack %d, want %d", lua_gettop(TL), top + 1);
  lua_settop(TL, top + 1);
  o->av = lua_gettop(TL);
  convert(o, 0);
}

static void text_scan(const char *body, size_t len, size_t take, outcome *o) {
  th_ddb_page p = {0};
  memset(o, 0, sizeof *o);
  o->r = th_ddb_parse_scan(C, body, len, take, &p, o->why, sizeof o->why);
  if (o->r != TH_OK) {
    o->stage = ST_CODEC;
    lua_pushnil(TL);
    o->av = lua_gettop(TL);
    lua_pushnil(TL);
    o->plain = lua_gettop(TL);
    return;
  }
  size_t n = strlen(p.items);
  char *arr = malloc(n + 3);
  arr[0] = '[';
  memcpy(arr + 1, p.items, n);
  arr[n + 1] = ']';
  arr[n + 2] = '\0';
  host_decode(o, arr, n + 2);
  free(arr);
  o->count = p.count;
  o->more = p.more;
  o->last_id = p.last_id ? strdup(p.last_id) : NULL;
  o->lek_id = p.lek_id ? strdup(p.lek_id) : NULL;
  th_ddb_page_free(&p);
  if (o->stage == ST_OK)
    convert(o, 1);
  else {
    lua_pushnil(TL);
    o->plain = lua_gettop(TL);
  }
}

static void push_scan(const char *body, size_t len, size_t take, outcome *o) {
  th_ddb_page p = {0};
  memset(o, 0, sizeof *o);
  lua_newtable(TL);
  int dest = lua_gettop(TL);
  o->r = th_ddb_push_scan(TL, body, len, take, &p, o->why, sizeof o->why);
  CHECK(lua_gettop(TL) == dest && lua_istable(TL, dest), "push scan: stack %d, want %d", lua_gettop(TL), dest);
  lua_settop(TL, dest);
  if (o->r != TH_OK) {
    o->stage = ST_CODEC;
    lua_pushnil(TL);
    lua_replace(TL, dest);
    o->av = dest;
    lua_pushnil(TL);
    o->plain = lua_gettop(TL);
    return;
  }
  CHECK(p.items == NULL, "push scan: items text");
  /* The page comes plain (checked and converted in one walk): no AV maps. */
  lua_pushnil(TL);
  o->av = lua_gettop(TL);
  o->plain = dest;
  o->count = p.count;
  o->more = p.more;
  o->last_id = p.last_id ? strdup(p.last_id) : NULL;
  o->lek_id = p.lek_id ? strdup(p.lek_id) : NULL;
  th_ddb_page_free(&p);
}

/* Deep equality of two values: same types, integer/float subtypes, bytes,
 * keys and values, and (`meta`) the same metatables (the array mark). */
static int same(int a, int b, int depth, int meta) {
  a = lua_absindex(TL, a);
  b = lua_absindex(TL, b);
  if (lua_type(TL, a) != lua_type(TL, b))
    return 0;
  switch (lua_type(TL, a)) {
  case LUA_TNIL: return 1;
  case LUA_TBOOLEAN: return lua_toboolean(TL, a) == lua_toboolean(TL, b);
  case LUA_TLIGHTUSERDATA: return lua_touserdata(TL, a) == lua_touserdata(TL, b);
  case LUA_TNUMBER:
    return lua_isinteger(TL, a) == lua_isinteger(TL, b) && lua_rawequal(TL, a, b);
  case LUA_TSTRING: {
    size_t na, nb;
    const char *sa = lua_tolstring(TL, a, &na), *sb = lua_tolstring(TL, b, &nb);
    return na == nb && memcmp(sa, sb, na) == 0;
  }
  case LUA_TTABLE: break;
  default: return 0;
  }
  if (depth > 300)
    return 0;
  luaL_checkstack(TL, 8, "compare");
  int ma = lua_getmetatable(TL, a), mb = lua_getmetatable(TL, b);
  int meta_same = !meta || (ma == mb && (!ma || lua_rawequal(TL, -1, -2)));
  lua_pop(TL, ma + mb);
  if (!meta_same)
    return 0;
  lua_Integer na = 0, nb = 0;
  lua_pushnil(TL);
  while (lua_next(TL, a)) {
    na++;
    lua_pushvalue(TL, -2);
    lua_rawget(TL, b);
    int ok = same(-2, -1, depth + 1, meta);
    lua_pop(TL, 2);
    if (!ok) {
      lua_pop(TL, 1);
      return 0;
    }
  }
  lua_pushnil(TL);
  while (lua_next(TL, b)) {
    nb++;
    lua_pop(TL, 1);
  }
  return na == nb;
}

static int str_same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static void outcome_free(outcome *o) {
  free(o->last_id);
  free(o->lek_id);
}

/* The one difference by design: the text path decoded what the codec
 * re-encoded with the scripts' 64 levels (a Scan page as one "[items]"
 * text, one level deeper), so an item the codec passes at that limit (one
 * the scripts can store) raised in the host; the push path hands it over.
 * Counted, and pinned by test_depth. */
static int text_too_deep;
/* The other, a scan's: its page is checked and converted in one walk, so
 * an N that is not a number, which the text path's conversion raises on
 * (ST_PLAIN), fails the codec (ST_CODEC) with the same words. Counted. */
static int scan_bad_number;
/* The verdict for one input. `label` names it in a failure. */
static int agree(const outcome *t, const outcome *p, const char *label, int scan) {
  cases++;
  if (t->stage == ST_DECODE && p->stage == ST_OK &&
      strstr(t->why, "Found too many nested data structures (65)")) {
    text_too_deep++;
    return 1;
  }
  if (scan && t->stage == ST_PLAIN && p->stage == ST_CODEC && p->r == TH_ERR_INTERNAL &&
      strstr(t->why, "is not a number") && strstr(p->why, "is not a number")) {
    scan_bad_number++;
    return 1;
  }
  int ok = t->stage == p->stage && t->r == p->r;
  CHECK(ok, "%s: text path %s (%s: %s), push path %s (%s: %s)", label, stage_name[t->stage],
        th_result_name(t->r), t->why, stage_name[p->stage], th_result_name(p->r), p->why);
  if (!ok)
    return 0;
  if (t->stage != ST_OK) {
    ok = !strcmp(t->why, p->why);
    CHECK(ok, "%s: %s, why '%s' vs '%s'", label, stage_name[t->stage], t->why, p->why);
    return ok;
  }
  /* push marks its arrays; the host decode does not. A scan's push path
   * hands over plain items only. */
  ok = scan || same(t->av, p->av, 0, 0);
  CHECK(ok, "%s: the AV values differ", label);
  if (ok) {
    ok = same(t->plain, p->plain, 0, 1);
    CHECK(ok, "%s: the plain values differ", label);
  }
  if (ok && scan) {
    ok = t->count == p->count && t->more == p->more && str_same(t->last_id, p->last_id) &&
         str_same(t->lek_id, p->lek_id);
    CHECK(ok, "%s: page %zu/%d/%s/%s vs %zu/%d/%s/%s", label, t->count, t->more,
          t->last_id ? t->last_id : "-", t->lek_id ? t->lek_id : "-", p->count, p->more,
          p->last_id ? p->last_id : "-", p->lek_id ? p->lek_id : "-");
  }
  return ok;
}

/* Runs both paths on one item body; returns the common stage (-1 when they
 * disagree). */
static int diff_item_n(const char *body, size_t len, const char *member, const char *label) {
  outcome t, p;
  int top = lua_gettop(TL);
  text_item(body, len, member, &t);
  push_item(body, len, member, &p);
  int ok = agree(&t, &p, label, 0);
  int stage = ok ? p.stage : -1; /* the push path's (see agree) */
  lua_settop(TL, top);
  return stage;
}

static int diff_item(const char *body, const char *label) {
  return diff_item_n(body, strlen(body), "Item", label ? label : body);
}

static int diff_scan_n(const char *body, size_t len, size_t take, const char *label) {
  outcome t, p;
  int top = lua_gettop(TL);
  text_scan(body, len, take, &t);
  push_scan(body, len, take, &p);
  int ok = agree(&t, &p, label, 1);
  int stage = ok ? p.stage : -1; /* the push path's (see agree) */
  outcome_free(&t);
  outcome_free(&p);
  lua_settop(TL, top);
  return stage;
}

static int diff_scan(const char *body, size_t take, const char *label) {
  return diff_scan_n(body, strlen(body), take, label ? label : body);
}

/* ------------------------------------------------------------ the inputs */

#define ITEM(av) "{\"Item\":{\"id\":{\"S\":\"k\"},\"a\":" av "}}"

/* Bodies the codec must refuse (both paths, same why). */
static const char *const bad_items[] = {
  "", " ", "x", "null", "true", "1", "\"Item\"", "[]", "[{}]", "{", "{\"Item\":", "{\"Item\"}",
  "{\"Item\":{\"id\":{\"S\":\"k\"}}", "{\"Item\":{\"id\":{\"S\":\"k\"}}}}", "{\"Item\":{} x",
  "{\"Item\":[1]}", "{\"Item\":\"str\"}", "{\"Item\":1}", "{\"Item\":true}",
  "{\"Item\":[{\"S\":\"x\"}]}",
  ITEM("{}"), ITEM("1"), ITEM("\"s\""), ITEM("[]"), ITEM("null"),
  ITEM("{\"X\":1}"), ITEM("{\"s\":\"x\"}"), ITEM("{\"S\":1}"), ITEM("{\"S\":null}"),
  ITEM("{\"S\":[\"x\"]}"), ITEM("{\"S\":\"x\",\"N\":\"1\"}"), ITEM("{\"N\":1}"),
  ITEM("{\"N\":12345678901234567890}"), ITEM("{\"B\":{}}"), ITEM("{\"BOOL\":\"true\"}"),
  ITEM("{\"BOOL\":1}"), ITEM("{\"NULL\":1}"), ITEM("{\"NULL\":null}"), ITEM("{\"L\":{\"a\":1}}"),
  ITEM("{\"L\":[1]}"), ITEM("{\"L\":[{}]}"), ITEM("{\"L\":\"x\"}"), ITEM("{\"M\":[{\"S\":\"x\"}]}"),
  ITEM("{\"M\":\"x\"}"), ITEM("{\"M\":{\"x\":1}}"), ITEM("{\"SS\":[1]}"), ITEM("{\"SS\":\"x\"}"),
  ITEM("{\"NS\":[1,2]}"), ITEM("{\"BS\":[null]}"), ITEM("{\"SS\":{\"a\":\"x\"}}"),
  "{\"Item\":{\"a\":{\"S\":\"\\ud800\"}}}",  /* lone surrogate */
  "{\"Item\":{\"a\":{\"S\":\"\\x41\"}}}",    /* not a JSON escape */
  "{\"Item\":null}",
  "{\"Item\":{\"a\":{\"N\":\"1\"}},}", "{\"Item\":{'a':{\"N\":\"1\"}}}",
  "{\"Item\":{\"a\":{\"S\":\"x\"}}} {}", "\xef\xbb\xbf{\"Item\":{}}",
};

/* Bodies both paths must read (the AV map and the plain item equal). */
static const char *const good_items[] = {
  "{}", "{\"Item\":{}}", "{\"ConsumedCapacity\":{\"CapacityUnits\":1}}",
  " \r\n\t{ \"Item\" : { \"id\" : { \"S\" : \"k\" } } } \n",
  /* numbers stay exact text; the plain value is an integer when it fits */
  ITEM("{\"N\":\"9007199254740993\"}"), ITEM("{\"N\":\"-9007199254740993\"}"),
  ITEM("{\"N\":\"9223372036854775807\"}"), ITEM("{\"N\":\"9223372036854775808\"}"),
  ITEM("{\"N\":\"-9223372036854775808\"}"), ITEM("{\"N\":\"123456789012345678901234567890\"}"),
  ITEM("{\"N\":\"-123456789012345678901234567890\"}"), ITEM("{\"N\":\"0\"}"), ITEM("{\"N\":\"-0\"}"),
  ITEM("{\"N\":\"-42\"}"), ITEM("{\"N\":\"3.14\"}"), ITEM("{\"N\":\"-0.000001\"}"),
  ITEM("{\"N\":\"1e3\"}"), ITEM("{\"N\":\"1E+3\"}"), ITEM("{\"N\":\"-1.5e-7\"}"),
  ITEM("{\"N\":\"1e400\"}"), ITEM("{\"N\":\"1e-400\"}"), ITEM("{\"N\":\"0012.50\"}"),
  ITEM("{\"N\":\"0x10\"}"), ITEM("{\"N\":\" 7 \"}"),
  ITEM("{\"NS\":[\"1\",\"2.5\",\"-3e2\",\"123456789012345678901234567890\"]}"),
  /* strings: escapes, unicode, NUL, bytes that are not UTF-8 */
  ITEM("{\"S\":\"\"}"), ITEM("{\"S\":\"\\u00e9 \\ud83c\\udf89 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}"),
  ITEM("{\"S\":\"a\\u0000b\"}"), ITEM("{\"S\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}"),
  ITEM("{\"S\":\"\\u2028\\u2029\\uffff\\u0001\"}"), ITEM("{\"S\":\"\xff\xfe\"}"),
  "{\"Item\":{\"\\u00e9t\\u00e9\":{\"S\":\"x\"},\"a\\u0000b\":{\"S\":\"y\"},\"\":{\"S\":\"z\"}}}",
  /* binary: base64 text, served as is */
  ITEM("{\"B\":\"dGVzdA==\"}"), ITEM("{\"B\":\"\"}"), ITEM("{\"BS\":[\"AAE=\",\"//8=\"]}"),
  ITEM("{\"BS\":[]}"),
  /* the other types */
  ITEM("{\"NULL\":true}"), ITEM("{\"NULL\":false}"), ITEM("{\"BOOL\":true}"), ITEM("{\"BOOL\":false}"),
  ITEM("{\"L\":[]}"), ITEM("{\"M\":{}}"), ITEM("{\"SS\":[]}"), ITEM("{\"NS\":[]}"),
  ITEM("{\"SS\":[\"a\",\"b\",\"\\u00e9\"]}"),
  ITEM("{\"L\":[{\"L\":[]},{\"M\":{}},{\"N\":\"-0.5\"},{\"NULL\":true},{\"BOOL\":false},"
       "{\"S\":\"x\"},{\"B\":\"AA==\"},{\"SS\":[\"x\"]},{\"NS\":[\"1\"]},{\"BS\":[]}]}"),
  ITEM("{\"M\":{\"x\":{\"M\":{\"y\":{\"L\":[{\"M\":{\"z\":{\"N\":\"1\"}}}]}}},\"e\":{\"L\":[]}}}"),
  "{\"Item\":{\"a\":{\"S\":\"tab\there\"}}}", /* cjson takes raw control characters */
  /* the same key twice: cjson keeps the last (here [], read as an empty map) */
  "{\"Item\":{\"a\":{\"S\":\"x\"}},\"Item\":[]}",
  "{\"Item\":{\"a\":{\"S\":\"1\"},\"a\":{\"N\":\"2\"}}}",
};

/* Bad values the codec does not look into: the conversion raises, alike. */
static const char *const unconvertible_items[] = {
  ITEM("{\"N\":\"abc\"}"), ITEM("{\"N\":\"\"}"), ITEM("{\"NS\":[\"1\",\"x\"]}"),
  ITEM("{\"L\":[{\"N\":\"1\"},{\"N\":\"1..2\"}]}"),
};

static void test_items(void) {
  for (size_t i = 0; i < TH_ARRAY_LEN(bad_items); i++) {
    int st = diff_item(bad_items[i], NULL);
    CHECK(st == ST_CODEC, "'%s': stage %d, want a codec failure", bad_items[i], st);
  }
  for (size_t i = 0; i < TH_ARRAY_LEN(good_items); i++)
    CHECK(diff_item(good_items[i], NULL) == ST_OK, "'%s' reads", good_items[i]);
  for (size_t i = 0; i < TH_ARRAY_LEN(unconvertible_items); i++)
    CHECK(diff_item(unconvertible_items[i], NULL) == ST_PLAIN, "'%s' raises", unconvertible_items[i]);
  /* cjson stops at a NUL byte: what follows is not looked at, on both paths */
  static const char nul[] = "{\"Item\":{\"a\":{\"S\":\"x\"}}}\0garbage";
  CHECK(diff_item_n(nul, sizeof nul - 1, "Item", "NUL then garbage") >= 0, "NUL in body");
  CHECK(diff_item_n(nul, strlen(nul), "Item", "up to the NUL") == ST_OK, "body before NUL");
  /* other members, as update and delete read them */
  CHECK(diff_item_n(ITEM("{\"S\":\"x\"}"), strlen(ITEM("{\"S\":\"x\"}")), "Attributes",
                    "member absent") == ST_OK, "Attributes absent");
  static const char attrs[] = "{\"Attributes\":{\"id\":{\"S\":\"k\"},\"n\":{\"N\":\"1\"}}}";
  CHECK(diff_item_n(attrs, strlen(attrs), "Attributes", "Attributes") == ST_OK, "Attributes");
  /* the exact values: an integer for 2^53+1, a float for 30 digits */
  outcome p;
  int top = lua_gettop(TL);
  push_item(ITEM("{\"N\":\"9007199254740993\"}"), strlen(ITEM("{\"N\":\"9007199254740993\"}")), "Item", &p);
  lua_getfield(TL, p.plain, "a");
  CHECK(lua_isinteger(TL, -1) && lua_tointeger(TL, -1) == 9007199254740993LL, "2^53+1 stays exact");
  lua_settop(TL, top);
  push_item(ITEM("{\"N\":\"123456789012345678901234567890\"}"),
            strlen(ITEM("{\"N\":\"123456789012345678901234567890\"}")), "Item", &p);
  lua_getfield(TL, p.av, "a");
  lua_getfield(TL, -1, "N");
  CHECK(!strcmp(lua_tostring(TL, -1), "123456789012345678901234567890"), "30 digits stay text in the AV map");
  lua_settop(TL, top);
}

/* A body that holds every type, then each prefix of it, and each one-byte
 * substitution (from an alphabet of JSON's structural characters) of its
 * item, as a GetItem and as a Scan page. */
#define RICH_ITEM                                                                               \
  "{\"id\":{\"S\":\"k\\u00e9\"},\"n\":{\"N\":\"-12.5e3\"},\"b\":{\"B\":\"AAE=\"},"             \
  "\"t\":{\"BOOL\":true},\"z\":{\"NULL\":true},\"l\":{\"L\":[{\"S\":\"x\"},{\"L\":[]},{\"M\":{}}]},"  \
  "\"m\":{\"M\":{\"k\":{\"N\":\"9007199254740993\"},\"s\":{\"SS\":[\"a\",\"b\"]}}},"             \
  "\"ns\":{\"NS\":[\"1\",\"2\"]},\"bs\":{\"BS\":[\"AA==\"]}}"
static void test_mutations(void) {
  static const char rich[] = "{\"Item\":" RICH_ITEM ",\"ConsumedCapacity\":null}";
  static const char item[] = RICH_ITEM;
  static const char alphabet[] = "{}[]\":,0 aSNLM\\";
  size_t n = strlen(rich), ni = strlen(item);
  char *buf = malloc(ni + 1), *body = malloc(ni + 64), label[64];
  int disagree = 0, ok = 0, failed = 0;
  for (size_t len = 0; len < n; len++) {
    snprintf(label, sizeof label, "prefix %zu", len);
    int st = diff_item_n(rich, len, "Item", label);
    disagree += st < 0;
    failed += st == ST_CODEC;
  }
  CHECK(failed == (int)n, "every proper prefix is refused (%d of %zu)", failed, n);
  CHECK(diff_item_n(rich, n, "Item", "rich") == ST_OK, "the rich body reads");
  CHECK(diff_item_n(rich, n, "Attributes", "rich, other member") == ST_OK, "the rich body, Attributes");
  failed = 0;
  for (size_t i = 0; i < ni; i++) {
    for (const char *a = alphabet; *a; a++) {
      if (item[i] == *a)
        continue;
      memcpy(buf, item, ni + 1);
      buf[i] = *a;
      snprintf(body, ni + 64, "{\"Item\":%s,\"ConsumedCapacity\":null}", buf);
      snprintf(label, sizeof label, "byte %zu -> '%c'", i, *a);
      int st = diff_item(body, label);
      disagree += st < 0;
      ok += st == ST_OK;
      failed += st == ST_CODEC || st == ST_PLAIN;
      snprintf(body, ni + 64, "{\"Items\":[%s],\"Count\":1}", buf);
      snprintf(label, sizeof label, "scan byte %zu -> '%c'", i, *a);
      disagree += diff_scan(body, 5, label) < 0;
    }
  }
  free(buf);
  free(body);
  CHECK(disagree == 0, "%d mutated bodies read differently", disagree);
  CHECK(ok > 0 && failed > 0, "mutations: %d read, %d refused", ok, failed);
}

static void test_scan(void) {
  static const char *const bad[] = {
    "", "[]", "{", "null", "{\"Items\":{\"a\":1}}", "{\"Items\":\"x\"}", "{\"Items\":[1]}",
    "{\"Items\":[{\"n\":{\"N\":\"1\"}}]}", "{\"Items\":[{\"id\":{\"N\":\"1\"}}]}",
    "{\"Items\":[{\"id\":{\"S\":\"a\"},\"x\":{\"Q\":1}}]}",
    "{\"Items\":[],\"LastEvaluatedKey\":{}}", "{\"Items\":[],\"LastEvaluatedKey\":{\"id\":{\"N\":\"1\"}}}",
    "{\"Items\":[],\"LastEvaluatedKey\":\"a\"}", "{\"Items\":[{\"id\":{\"S\":\"a\"}}]",
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++)
    CHECK(diff_scan(bad[i], 5, NULL) == ST_CODEC, "scan '%s' refused", bad[i]);
  static const struct {
    const char *body;
    size_t take;
  } good[] = {
    {"{}", 5},
    {"{\"Items\":[],\"Count\":0,\"ScannedCount\":0}", 5},
    {"{\"Items\":{},\"Count\":0}", 5}, /* cjson reads {} as an empty table */
    {"{\"Items\":[],\"LastEvaluatedKey\":{\"id\":{\"S\":\"z\"}}}", 5},
    {"{\"Items\":[{\"id\":{\"S\":\"a\"},\"l\":{\"L\":[]}},{\"id\":{\"S\":\"b\"},\"n\":{\"N\":\"9007199254740993\"}},"
     "{\"id\":{\"S\":\"c\"}}],\"Count\":3,\"LastEvaluatedKey\":{\"id\":{\"S\":\"c\"}}}", 2},
    {"{\"Items\":[{\"id\":{\"S\":\"a\"}},{\"id\":{\"S\":\"b\"}}]}", 0},
    {"{\"Items\":[{\"id\":{\"S\":\"a\"}},{\"id\":{\"S\":\"b\"}}]}", 2},
    {"{\"Items\":[{\"id\":{\"S\":\"a\"}},{\"n\":{\"N\":\"1\"}}]}", 1}, /* the one not kept has no id */
    {"{\"Items\":[{\"id\":{\"S\":\"\\u00e9\\u0000\"},\"s\":{\"S\":\"\\ud83c\\udf89\"}}]}", 9},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(good); i++) {
    int st = diff_scan(good[i].body, good[i].take, NULL);
    CHECK(st == ST_OK, "scan '%s': stage %d", good[i].body, st);
  }
  /* an N that is not a number: the text path's conversion raises, the push
   * path's one walk fails (agree counts it as the same verdict) */
  int before = scan_bad_number;
  CHECK(diff_scan("{\"Items\":[{\"id\":{\"S\":\"a\"},\"n\":{\"N\":\"abc\"}}]}", 9, NULL) == ST_CODEC &&
            scan_bad_number == before + 1,
        "scan with N \"abc\": refused by the push path's walk");
  for (size_t i = 0; i < TH_ARRAY_LEN(unconvertible_items); i++) {
    char body[200];
    const char *item = strstr(unconvertible_items[i], "{\"id\"");
    snprintf(body, sizeof body, "{\"Items\":[%.*s]}", (int)(strlen(item) - 1), item);
    before = scan_bad_number;
    CHECK(diff_scan(body, 5, NULL) == ST_CODEC && scan_bad_number == before + 1, "scan '%s' refused", body);
  }

  /* many items: 1000, every type, kept 0, 1, 999, 1000 and more than there are */
  th_buf b;
  th_buf_init(&b, 16u << 20);
  th_buf_append_str(&b, "{\"Items\":[");
  for (int i = 0; i < 1000; i++) {
    char item[400];
    snprintf(item, sizeof item,
             "%s{\"id\":{\"S\":\"id-%04d\"},\"n\":{\"N\":\"%d%s\"},\"s\":{\"S\":\"\\u00e9%d\"},"
             "\"l\":{\"L\":[{\"N\":\"-%d.5\"},{\"L\":[]}]},\"m\":{\"M\":{\"b\":{\"BOOL\":%s}}},"
             "\"ss\":{\"SS\":[\"x%d\"]},\"z\":{\"NULL\":true}}",
             i ? "," : "", i, i, i % 7 ? "" : "00000000000000000000000", i, i, i % 2 ? "true" : "false", i);
    th_buf_append_str(&b, item);
  }
  th_buf_append_str(&b, "],\"Count\":1000,\"ScannedCount\":1000,\"LastEvaluatedKey\":{\"id\":{\"S\":\"id-0999\"}}}");
  static const size_t takes[] = {0, 1, 999, 1000, 1001};
  for (size_t i = 0; i < TH_ARRAY_LEN(takes); i++) {
    char label[64];
    snprintf(label, sizeof label, "1000 items, take %zu", takes[i]);
    CHECK(diff_scan_n(b.data, b.len, takes[i], label) == ST_OK, "%s", label);
  }
  /* push_scan appends after what the table already holds */
  lua_newtable(TL);
  lua_pushliteral(TL, "first");
  lua_rawseti(TL, -2, 1);
  th_ddb_page p;
  char why[256] = "";
  th_result r = th_ddb_push_scan(TL, b.data, b.len, 3, &p, why, sizeof why);
  CHECK(r == TH_OK && lua_rawlen(TL, -1) == 4, "appended: %s %zu", why, (size_t)lua_rawlen(TL, -1));
  lua_rawgeti(TL, -1, 4);
  lua_getfield(TL, -1, "id"); /* a plain item: id is the string itself */
  CHECK(lua_type(TL, -1) == LUA_TSTRING && !strcmp(lua_tostring(TL, -1), "id-0002"), "fourth is id-0002");
  if (r == TH_OK) {
    CHECK_STR(p.last_id, "id-0002");
    CHECK_STR(p.lek_id, "id-0999");
    CHECK(p.count == 3 && p.more, "count %zu more %d", p.count, p.more);
    th_ddb_page_free(&p);
  }
  lua_settop(TL, 0);
  th_buf_free(&b);
}

/* Nesting: k levels of L (or of M, or alternating) inside one attribute
 * around a leaf, from 1 up to well past every limit (the scripts' 32
 * AttributeValue levels, cjson's 64 JSON levels, the codec's 100 and 128),
 * as a GetItem and as a Scan page. Both paths must stop at the same depth,
 * in the same way. */
static void test_depth(void) {
  static const char *const open[] = {"{\"L\":[", "{\"M\":{\"k\":", NULL};
  static const char *const close[] = {"]}", "}}", NULL};
  static const char *const leaf[] = {"{\"N\":\"1\"}", "{\"L\":[]}", "{\"SS\":[]}", "{\"M\":{}}"};
  /* The leaf under k levels sits at JSON level 2k + 2 of the item (its
   * payload one deeper): k = 31 is as deep as the scripts can store
   * (attrval.c: 32 levels) and th_json_encode writes (64 levels; an empty
   * list costs none, being written as [] text, an empty map does). */
  static const int want_first_fail[] = {32, 32, 32, 31};
  for (size_t lf = 0; lf < TH_ARRAY_LEN(leaf); lf++) {
    for (int kind = 0; kind < 3; kind++) {
      int first_fail = 0;
      for (int k = 1; k <= 140; k++) {
        th_buf item, resp;
        th_buf_init(&item, 1u << 20);
        th_buf_init(&resp, 1u << 20);
        th_buf_append_str(&item, "{\"id\":{\"S\":\"k\"},\"d\":");
        for (int i = 0; i < k; i++)
          th_buf_append_str(&item, kind < 2 ? open[kind] : open[i % 2]);
        th_buf_append_str(&item, leaf[lf]);
        for (int i = k - 1; i >= 0; i--)
          th_buf_append_str(&item, kind < 2 ? close[kind] : close[i % 2]);
        th_buf_append_str(&item, "}");
        char label[96];
        snprintf(label, sizeof label, "depth %d (%s around %s)", k,
                 kind == 0 ? "L" : kind == 1 ? "M" : "L/M", leaf[lf]);
        th_buf_append_str(&resp, "{\"Item\":");
        th_buf_append(&resp, item.data, item.len);
        th_buf_append_str(&resp, "}");
        int st = diff_item_n(resp.data, resp.len, "Item", label);
        if (st != ST_OK && !first_fail)
          first_fail = k;
        CHECK(st == ST_OK || st == ST_CODEC, "%s: stage %d", label, st);
        resp.len = 0;
        th_buf_append_str(&resp, "{\"Items\":[");
        th_buf_append(&resp, item.data, item.len);
        th_buf_append_str(&resp, "]}");
        memmove(label + 5, label, strlen(label) + 1);
        memcpy(label, "scan ", 5);
        st = diff_scan_n(resp.data, resp.len, 5, label);
        CHECK(st == (k < want_first_fail[lf] ? ST_OK : ST_CODEC), "%s: stage %d", label, st);
        th_buf_free(&item);
        th_buf_free(&resp);
      }
      CHECK(first_fail == want_first_fail[lf], "%s, kind %d: refused from depth %d, want %d", leaf[lf],
            kind, first_fail, want_first_fail[lf]);
    }
  }
  /* The text path broke (see agree) on the k = 31 page around {"N"}, and on
   * the k = 31 item and page around an empty list, of each kind. */
  CHECK(text_too_deep == 3 * (1 + 2 + 2), "%d reads deep enough to break the text path", text_too_deep);
}

int main(void) {
  th_log_configure(TH_LOG_ERROR, 0);
  TL = luaL_newstate();
  th_json_setup(TL);
  C = th_ddb_codec_new();
  CHECK(C, "codec");

  test_items();
  test_scan();
  test_mutations();
  test_depth();

  printf("%d inputs through both paths\n", cases);
  th_ddb_codec_free(C);
  lua_close(TL);
  th_log_shutdown();
  return CHECK_DONE();
}
