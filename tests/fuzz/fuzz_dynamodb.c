/* libFuzzer target: DynamoDB response decoding and AttributeValue
 * unmarshalling — what the store does with every response body it receives.
 *
 * Input: byte 0 picks the status and the X-Amzn-Errortype header (from the
 * bytes after a '\n' in the first 64 bytes, when present), byte 1 the Scan
 * `take`; the rest is the response body. The body goes through
 *   th_ddb_parse_item (member "Item", then "Attributes"),
 *   th_ddb_parse_scan (take 0..31),
 *   th_ddb_error_decode,
 * and through the decode-once path (th_ddb_push_item / th_ddb_push_scan),
 * which must reach the same verdict and page figures (and give a reason) —
 * but for a page whose conversion raises for an N that is not a number,
 * which push_scan (checking and converting in one walk) refuses instead;
 * and every item the codec accepts goes where lua_store.c sends it: decoded
 * with th_json_decode and turned into a plain Lua table by
 * th_av_push_plain_item. Properties:
 *   - the codec's item text is a JSON object;
 *   - th_av_push_plain_item raises only for what the codec leaves to
 *     DynamoDB: an N that is not a number, or nesting deeper than the
 *     store's 32 levels;
 *   - th_ddb_items_equal(item, item) is 1 (or -1 for an invalid number);
 *   - the error code is NUL-terminated, the message one NUL-terminated line
 *     (control characters blanked), and the kind is the one th_ddb_classify
 *     gives for that status and code — but for TransactionCanceledException,
 *     a failed condition when one of its CancellationReasons (each one line,
 *     at most TH_DDB_MAX_REASONS) is ConditionalCheckFailed, else busy. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "dynamodb.h"
#include "log.h"
#include "lua_modules.h"

static th_ddb_codec *codec;
static lua_State *L;

/* What th_ddb_error_decode must have made of e (see the properties above). */
static th_ddb_kind expected_kind(long status, const th_ddb_error *e) {
  if (strcmp(e->code, "TransactionCanceledException") != 0)
    return th_ddb_classify(status, e->code);
  for (int i = 0; i < e->n_reasons; i++)
    if (strcmp(e->reasons[i], "ConditionalCheckFailed") == 0)
      return TH_DDB_CONDITION;
  return TH_DDB_BUSY;
}

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_dynamodb: %s: %s\n", what, detail ? detail : "");
  abort();
}

typedef struct plain_job {
  const char *text;
  size_t len;
  int list; /* the text is "[item,item,...]" */
} plain_job;

static int plain_protected(lua_State *S) {
  plain_job *j = lua_touserdata(S, 1);
  th_json_decode(S, j->text, j->len);
  int top = lua_gettop(S);
  if (lua_type(S, top) != LUA_TTABLE)
    luaL_error(S, "FUZZ: the codec's item is not a table");
  if (j->list) {
    lua_Integer n = (lua_Integer)lua_rawlen(S, top);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(S, top, i);
      th_av_push_plain_item(S, -1);
      if (lua_type(S, -1) != LUA_TTABLE)
        luaL_error(S, "FUZZ: plain item is not a table");
      lua_pop(S, 2);
    }
  } else {
    th_av_push_plain_item(S, top);
    if (lua_type(S, -1) != LUA_TTABLE)
      luaL_error(S, "FUZZ: plain item is not a table");
    /* and the plain item back to an AV map, as a PUT would (may raise for
     * numbers out of range: inf from "1e999" is not storable) */
  }
  return 0;
}

static void check_plain(const char *text, size_t len, int list) {
  plain_job j = {text, len, list};
  lua_settop(L, 0);
  lua_pushcfunction(L, plain_protected);
  lua_pushlightuserdata(L, &j);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (!msg)
      fail("plain item raised a non-string", NULL);
    if (!strstr(msg, "is not a number") && !strstr(msg, "nested too deep") &&
        !strstr(msg, "not enough memory")) {
      fprintf(stderr, "item: %.*s\n", (int)(len > 4000 ? 4000 : len), text);
      fail("th_av_push_plain_item raised on an item the codec accepted", msg);
    }
  }
  lua_settop(L, 0);
}

static void check_item(const char *item) {
  size_t n = strlen(item);
  if (n < 2 || item[0] != '{' || item[n - 1] != '}')
    fail("the codec's item is not a JSON object", item);
  check_plain(item, n, 0);
  int eq = th_ddb_items_equal(codec, item, item);
  if (eq == 0)
    fail("an item differs from itself", item);
}

static int one_line_ok(const char *s, size_t cap);

/* The decode-once path (th_ddb_push_item / th_ddb_push_scan, what the store
 * module uses) must give the text path's verdict: same result, same `why`,
 * the same page figures; what it pushes must be a table (or nil for an absent
 * member) that th_av_push_plain_item turns into a plain item, and it leaves
 * the stack as it found it on failure. */
static int push_plain_protected(lua_State *S) {
  int list = (int)lua_toboolean(S, 2);
  if (list) {
    lua_Integer n = (lua_Integer)lua_rawlen(S, 1);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(S, 1, i);
      th_av_push_plain_item(S, -1);
      lua_pop(S, 2);
    }
  } else {
    th_av_push_plain_item(S, 1);
  }
  return 0;
}

static void check_pushed_plain(int list) {
  /* the pushed value is on top of L */
  lua_pushcfunction(L, push_plain_protected);
  lua_insert(L, -2);
  lua_pushboolean(L, list);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (!msg)
      fail("push path: plain item raised a non-string", NULL);
    if (!strstr(msg, "is not a number") && !strstr(msg, "nested too deep") &&
        !strstr(msg, "not enough memory"))
      fail("push path: th_av_push_plain_item raised on an accepted item", msg);
  }
}

static void check_push_item(const char *text, size_t len, const char *member, th_result text_r,
                            const char *text_why, int text_has_item) {
  char why[256] = "";
  lua_settop(L, 0);
  th_result r = th_ddb_push_item(L, text, len, member, why, sizeof why);
  if (r != text_r)
    fail("push_item: a verdict other than the text path's", why);
  if (r != TH_OK) {
    /* the reason may name another fault when a body has several (the paths
     * walk an object's members in different orders): it must exist */
    (void)text_why;
    if (!why[0] || !one_line_ok(why, sizeof why))
      fail("push_item: a failure without a one-line reason", why);
    if (lua_gettop(L) != 0)
      fail("push_item: the stack changed on failure", why);
    return;
  }
  if (lua_gettop(L) != 1)
    fail("push_item", "not exactly one value pushed");
  if (lua_isnil(L, 1) == text_has_item)
    fail("push_item", "item present on one path only");
  if (lua_istable(L, 1))
    check_pushed_plain(0);
  lua_settop(L, 0);
}

/* Whether converting the text path's page raises for an N that is not a
 * number (what push_scan refuses in its one walk). */
static int text_page_has_bad_number(const th_ddb_page *text_page) {
  size_t n = strlen(text_page->items);
  char *list = malloc(n + 3);
  if (!list)
    abort();
  list[0] = '[';
  memcpy(list + 1, text_page->items, n);
  list[n + 1] = ']';
  list[n + 2] = '\0';
  plain_job j = {list, n + 2, 1};
  lua_settop(L, 0);
  lua_pushcfunction(L, plain_protected);
  lua_pushlightuserdata(L, &j);
  int bad = lua_pcall(L, 1, 0, 0) != LUA_OK && lua_tostring(L, -1) &&
            strstr(lua_tostring(L, -1), "is not a number");
  lua_settop(L, 0);
  free(list);
  return bad;
}

static void check_push_scan(const char *text, size_t len, size_t take, th_result text_r,
                            const char *text_why, const th_ddb_page *text_page) {
  char why[256] = "";
  th_ddb_page page;
  memset(&page, 0, sizeof page);
  int bad_number = text_r == TH_OK && text_page_has_bad_number(text_page);
  lua_settop(L, 0);
  lua_newtable(L);
  th_result r = th_ddb_push_scan(L, text, len, take, &page, why, sizeof why);
  if (bad_number) {
    if (r != TH_ERR_INTERNAL || !strstr(why, "is not a number"))
      fail("push_scan: a page with an N that is not a number not refused", why);
  } else if (r != text_r) {
    fail("push_scan: a verdict other than the text path's", why);
  }
  if (lua_gettop(L) != 1 || !lua_istable(L, 1))
    fail("push_scan", "the items table is not left alone on top");
  if (r != TH_OK) {
    /* the reason may name another fault when a body has several (the paths
     * walk an object's members in different orders): it must exist */
    (void)text_why;
    if (!why[0] || !one_line_ok(why, sizeof why))
      fail("push_scan: a failure without a one-line reason", why);
  } else {
    if (page.count != text_page->count || page.more != text_page->more ||
        (lua_Unsigned)lua_rawlen(L, 1) != (lua_Unsigned)page.count)
      fail("push_scan", "count, more or the items differ from the text path");
    if ((page.last_id == NULL) != (text_page->last_id == NULL) ||
        (page.last_id && strcmp(page.last_id, text_page->last_id) != 0) ||
        (page.lek_id == NULL) != (text_page->lek_id == NULL) ||
        (page.lek_id && strcmp(page.lek_id, text_page->lek_id) != 0))
      fail("push_scan", "last_id or LastEvaluatedKey differ from the text path");
    for (lua_Integer i = 1; i <= (lua_Integer)page.count; i++) /* plain items already */
      if (lua_rawgeti(L, 1, i) != LUA_TTABLE)
        fail("push_scan", "a plain item is not a table");
  }
  th_ddb_page_free(&page);
  lua_settop(L, 0);
}

static int one_line_ok(const char *s, size_t cap) {
  size_t n = strnlen(s, cap);
  if (n == cap)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 0;
  return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  th_log_configure(TH_LOG_FATAL, 1);
  codec = th_ddb_codec_new();
  L = luaL_newstate();
  th_json_setup(L);
  if (!codec || !L)
    abort();
  return 0;
}

static const long STATUSES[] = {200, 400, 403, 404, 413, 429, 500, 502, 503, 504, 0, 418};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || th_fuzz_holds_placeholder(data, size))
    return 0;
  long status = STATUSES[data[0] % TH_ARRAY_LEN(STATUSES)];
  size_t take = data[1] % 32;
  const char *body = (const char *)data + 2;
  size_t len = size - 2;
  char errortype[80] = "";
  if (data[0] & 0x80) {
    const char *nl = memchr(body, '\n', len < 64 ? len : 64);
    if (nl) {
      size_t n = (size_t)(nl - body);
      memcpy(errortype, body, n);
      errortype[n] = '\0';
      len -= n + 1;
      body = nl + 1;
    }
  }
  /* the codec reads a NUL-terminated copy, as curl hands bodies over */
  char *text = malloc(len + 1);
  if (!text)
    return 0;
  memcpy(text, body, len);
  text[len] = '\0';

  char why[256];
  static const char *const members[] = {"Item", "Attributes"};
  for (size_t m = 0; m < 2; m++) {
    char *item = NULL;
    th_result r = th_ddb_parse_item(codec, text, len, members[m], &item, why, sizeof why);
    check_push_item(text, len, members[m], r, why, item != NULL);
    if (r == TH_OK && item) {
      check_item(item);
      free(item);
    }
  }

  th_ddb_page page;
  memset(&page, 0, sizeof page);
  th_result scan_r = th_ddb_parse_scan(codec, text, len, take, &page, why, sizeof why);
  check_push_scan(text, len, take, scan_r, why, &page);
  if (scan_r == TH_OK) {
    if (!page.items || page.count > take)
      fail("scan page", "no items text, or more items than asked");
    if ((page.count == 0) != (page.last_id == NULL))
      fail("scan page", "last_id does not match the count");
    size_t n = strlen(page.items);
    char *list = malloc(n + 3);
    list[0] = '[';
    memcpy(list + 1, page.items, n);
    list[n + 1] = ']';
    list[n + 2] = '\0';
    check_plain(list, n + 2, 1);
    free(list);
    th_ddb_page_free(&page);
  }

  th_ddb_error e;
  th_ddb_error_decode(codec, status, errortype, text, len, &e);
  if (e.n_reasons < 0 || e.n_reasons > TH_DDB_MAX_REASONS)
    fail("error decode", "reasons out of range");
  for (int i = 0; i < e.n_reasons; i++)
    if (!one_line_ok(e.reasons[i], sizeof e.reasons[i]))
      fail("error decode", "a cancellation reason is not one line");
  /* the message is promised one line; the code only NUL-terminated (it goes
   * to the log, whose JSON encoding escapes it) */
  if (strnlen(e.code, sizeof e.code) == sizeof e.code || !one_line_ok(e.message, sizeof e.message))
    fail("error decode", "code not NUL-terminated, or message not one line");
  if (e.status != status)
    fail("error decode", "status changed");
  if (e.kind != expected_kind(status, &e))
    fail("error decode", "kind is not th_ddb_classify(status, code)");
  /* and the same bytes as an X-Amzn-Errortype header only */
  th_ddb_error_decode(codec, status, text, NULL, 0, &e);
  if (strnlen(e.code, sizeof e.code) == sizeof e.code || e.message[0])
    fail("error decode (header)", "code not NUL-terminated, or a message without a body");
  if (e.kind != expected_kind(status, &e))
    fail("error decode (header)", "kind is not th_ddb_classify(status, code)");
  free(text);
  return 0;
}
