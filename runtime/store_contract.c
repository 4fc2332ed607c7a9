/* store_contract — see store_contract.h. JSON is never parsed by hand here:
 * an in-memory SQLite database compares documents, extracts fields, and keeps
 * the sets of ids a scan must (not) return. */
#include "store_contract.h"

#include <lauxlib.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "cursor.h"
#include "lua_modules.h"
#include "uuid7.h"

#define N_SCAN 260        /* items of the scan checks */
#define MAX_PAGES 100000  /* a scan that has not ended by then never will */

typedef struct ct {
  FILE *report;
  int checks, failures;
  sqlite3 *j;       /* JSON engine and scan bookkeeping */
  char prefix[16];  /* "ct-<tag>-": marks the ids of this run */
  char owner[2][32]; /* "ct-<tag>-a", "ct-<tag>-b": this run's owners (A runs the checks) */
  const char *view; /* "" or "[lua ops] ": which operations are under test */
} ct;

/* Outputs preset to this must still point to it after a failed operation. */
static char untouched[] = "untouched";

static int expect(ct *c, int ok, int line, const char *fmt, ...) {
  va_list ap;
  c->checks++;
  if (ok)
    return 1;
  c->failures++;
  fprintf(c->report, "FAIL store_contract.c:%d: %s", line, c->view);
  va_start(ap, fmt);
  vfprintf(c->report, fmt, ap);
  va_end(ap);
  fputc('\n', c->report);
  return 0;
}
#define EXPECT(cond, ...) expect(c, (cond) != 0, __LINE__, __VA_ARGS__)
/* A result check that also demands the detail line store.h promises. */
#define EXPECT_R(got, want, what)                                                               \
  expect(c, (got) == (want) && ((want) == TH_OK || s->error[0]), __LINE__,                      \
         "%s: got %s, want %s (error: '%s')", what, th_result_name(got), th_result_name(want),  \
         s->error)

/* Runs one helper query with up to three text parameters; keeps a copy of
 * the first row's first column (text and integer). A failing query is a
 * failed check: it means a store returned something that is not JSON. */
static int jrun(ct *c, const char *sql, const char *a, const char *b, const char *d, char **text,
                long long *num) {
  sqlite3_stmt *st = NULL;
  const char *v[3] = {a, b, d};
  int rc, rows = 0;
  if (sqlite3_prepare_v2(c->j, sql, -1, &st, NULL) != SQLITE_OK)
    goto out;
  for (int i = 0; i < 3 && i < sqlite3_bind_parameter_count(st); i++)
    sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (rows++)
      continue;
    if (num)
      *num = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
    if (text && sqlite3_column_type(st, 0) != SQLITE_NULL)
      *text = strdup((const char *)sqlite3_column_text(st, 0));
  }
  if (rc == SQLITE_DONE) {
    sqlite3_finalize(st);
    return 1;
  }
out:
  expect(c, 0, __LINE__, "helper query failed: %s [%s]", sqlite3_errmsg(c->j), sql);
  sqlite3_finalize(st);
  return 0;
}

/* The first column of the first row as an integer; -1 when absent or on error. */
static long long jnum(ct *c, const char *sql, const char *a, const char *b, const char *d) {
  long long n = -1;
  return jrun(c, sql, a, b, d, NULL, &n) ? n : -1;
}

/* The first column of the first row as text (caller frees); NULL when absent. */
static char *jstr(ct *c, const char *sql, const char *a, const char *b, const char *d) {
  char *t = NULL;
  jrun(c, sql, a, b, d, &t, NULL);
  return t;
}

/* Semantic JSON equality: both documents flattened to (path of decoded keys,
 * type, decoded atom) rows, compared as sets both ways. */
static const char same_sql[] =
  "WITH RECURSIVE"
  " ta AS (SELECT id, parent, key, type, atom FROM json_tree(?1)),"
  " pa(id, path) AS (SELECT id, '' FROM ta WHERE parent IS NULL UNION ALL"
  "  SELECT ta.id, pa.path || '/' || quote(ta.key) FROM ta JOIN pa ON ta.parent = pa.id),"
  " tb AS (SELECT id, parent, key, type, atom FROM json_tree(?2)),"
  " pb(id, path) AS (SELECT id, '' FROM tb WHERE parent IS NULL UNION ALL"
  "  SELECT tb.id, pb.path || '/' || quote(tb.key) FROM tb JOIN pb ON tb.parent = pb.id),"
  " a AS (SELECT path, type, atom FROM ta JOIN pa USING (id)),"
  " b AS (SELECT path, type, atom FROM tb JOIN pb USING (id))"
  " SELECT NOT EXISTS (SELECT * FROM a EXCEPT SELECT * FROM b)"
  "  AND NOT EXISTS (SELECT * FROM b EXCEPT SELECT * FROM a)";

static int jsame(ct *c, const char *x, const char *y) {
  if (!x || !y || x == untouched || y == untouched ||
      jnum(c, "SELECT json_valid(?1) AND json_valid(?2)", x, y, NULL) != 1)
    return 0;
  return jnum(c, same_sql, x, y, NULL) == 1;
}

/* A fresh id of this run: time-ordered (uuid7.h), so an id made later is
 * greater, as the routes' ids are. */
static void new_id(ct *c, char out[64]) {
  char hex[37] = "";
  th_result r = th_uuid7_text(hex);
  EXPECT(r == TH_OK, "th_uuid7_text: %s", th_result_name(r));
  snprintf(out, 64, "%s%s", c->prefix, hex);
}

/* Frees an output unless it is still the sentinel. */
static void drop(char *p) {
  if (p != untouched)
    free(p);
}

/* The operations, with s->error cleared first so each check sees the detail
 * of its own call. */
static th_result op_create(th_store *s, const char *id, const char *item) {
  s->error[0] = '\0';
  return s->ops->create(s, id, item);
}
static th_result op_get(th_store *s, const char *id, char **out) {
  s->error[0] = '\0';
  return s->ops->get(s, id, out);
}
static th_result op_update(th_store *s, const char *id, const char *fields, char **out) {
  s->error[0] = '\0';
  return s->ops->update(s, id, fields, out);
}
static th_result op_remove(th_store *s, const char *id, char **out) {
  s->error[0] = '\0';
  return s->ops->remove(s, id, out);
}
static th_result op_scan(th_store *s, int limit, const char *after, char **items, char **last) {
  s->error[0] = '\0';
  return s->ops->scan(s, limit, after, items, last);
}

/* get must return a document equal to `want`. */
static void expect_item(ct *c, th_store *s, const char *id, const char *want, const char *what) {
  char *got = untouched;
  th_result r = op_get(s, id, &got);
  EXPECT_R(r, TH_OK, what);
  EXPECT(jsame(c, got, want), "%s: got %s, want %s", what, got, want);
  drop(got);
}

/* get must report the id absent and leave its output alone. */
static void expect_absent(ct *c, th_store *s, const char *id, const char *what) {
  char *got = untouched;
  th_result r = op_get(s, id, &got);
  EXPECT_R(r, TH_ERR_NOT_FOUND, what);
  EXPECT(got == untouched, "%s: output written on failure", what);
  drop(got);
}

/* create/get/update/remove and their failed conditions. */
static void t_crud(ct *c, th_store *s) {
  char id[64], missing[64], item[512], other[512], want[512];
  char *out = untouched;
  th_result r;
  new_id(c, id);
  new_id(c, missing);
  snprintf(item, sizeof item,
           "{\"id\":{\"S\":\"%s\"},\"title\":{\"S\":\"first\"},\"count\":{\"N\":\"1\"},"
           "\"done\":{\"BOOL\":false},\"m\":{\"M\":{\"a\":{\"S\":\"x\"},\"b\":{\"N\":\"2\"}}}}",
           id);
  snprintf(other, sizeof other, "{\"id\":{\"S\":\"%s\"},\"title\":{\"S\":\"second\"}}", id);
  snprintf(want, sizeof want,
           "{\"id\":{\"S\":\"%s\"},\"title\":{\"S\":\"new\"},\"count\":{\"S\":\"one\"},"
           "\"done\":{\"BOOL\":false},\"m\":{\"M\":{\"c\":{\"BOOL\":true}}},"
           "\"tags\":{\"L\":[{\"S\":\"a\"}]}}",
           id);
  static const char fields[] = "{\"title\":{\"S\":\"new\"},\"count\":{\"S\":\"one\"},"
                               "\"m\":{\"M\":{\"c\":{\"BOOL\":true}}},\"tags\":{\"L\":[{\"S\":\"a\"}]}}";

  r = op_create(s, id, item);
  EXPECT_R(r, TH_OK, "create");
  expect_item(c, s, id, item, "get after create");
  r = op_create(s, id, other);
  EXPECT_R(r, TH_ERR_EXISTS, "create of an existing id");
  expect_item(c, s, id, item, "get after refused create");
  expect_absent(c, s, missing, "get of a missing id");

  r = op_update(s, id, fields, &out);
  EXPECT_R(r, TH_OK, "update");
  EXPECT(jsame(c, out, want), "update returned %s, want %s", out, want);
  drop(out);
  expect_item(c, s, id, want, "get after update (set fields, kept others, N→S, M replaced)");

  out = untouched;
  r = op_update(s, missing, fields, &out);
  EXPECT_R(r, TH_ERR_NOT_FOUND, "update of a missing id");
  EXPECT(out == untouched, "update of a missing id wrote its output");
  drop(out);
  expect_absent(c, s, missing, "get after update of a missing id (must not create)");

  out = untouched;
  r = op_remove(s, id, &out);
  EXPECT_R(r, TH_OK, "remove");
  EXPECT(jsame(c, out, want), "remove returned %s, want %s", out, want);
  drop(out);
  expect_absent(c, s, id, "get after remove");
  out = untouched;
  r = op_remove(s, id, &out);
  EXPECT_R(r, TH_ERR_NOT_FOUND, "second remove");
  EXPECT(out == untouched, "second remove wrote its output");
  drop(out);

  r = op_create(s, id, other);
  EXPECT_R(r, TH_OK, "create after remove (the id is free again)");
  expect_item(c, s, id, other, "get after re-create");
  out = untouched;
  op_remove(s, id, &out);
  drop(out);
}

/* Every AttributeValue kind, with the values a careless JSON layer breaks. */
#define VALUES                                                                                  \
  "\"n1\":{\"N\":\"1703001234\"},\"n2\":{\"N\":\"9007199254740993\"},\"n3\":{\"N\":\"-0.5\"},"  \
  "\"n4\":{\"N\":\"123456789012345678901234567890\"},"                                          \
  "\"su\":{\"S\":\"h\\u00e9llo \\u65e5\\u672c \\ud83c\\udf89 \xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x8e\x89\"}," \
  "\"se\":{\"S\":\"q\\\" b\\\\ s\\/ n\\n t\\t c\\u0001\\u001f\"},\"s0\":{\"S\":\"\"},"          \
  "\"bt\":{\"BOOL\":true},\"bf\":{\"BOOL\":false},\"nu\":{\"NULL\":true},"                      \
  "\"l0\":{\"L\":[]},\"l\":{\"L\":[{\"S\":\"a\"},{\"N\":\"2\"},{\"BOOL\":true},{\"NULL\":true}," \
  "{\"L\":[]},{\"M\":{}}]},\"m0\":{\"M\":{}},"                                                  \
  "\"m\":{\"M\":{\"in\":{\"M\":{\"deep\":{\"L\":[{\"N\":\"-0.5\"}]}}},\"s\":{\"S\":\"x\"}}}"

static const struct {
  const char *path, *want;
} exact[] = {
  {"$.n1.N", "1703001234"},
  {"$.n2.N", "9007199254740993"},
  {"$.n3.N", "-0.5"},
  {"$.n4.N", "123456789012345678901234567890"},
  {"$.su.S", "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89 \xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x8e\x89"},
  {"$.se.S", "q\" b\\ s/ n\n t\t c\x01\x1f"},
  {"$.s0.S", ""},
};

static void expect_exact(ct *c, const char *doc, const char *what) {
  for (size_t i = 0; i < TH_ARRAY_LEN(exact); i++) {
    char *got = doc && doc != untouched ? jstr(c, "SELECT json_extract(?1, ?2)", doc, exact[i].path, NULL) : NULL;
    EXPECT(got && strcmp(got, exact[i].want) == 0, "%s: %s is '%s', want '%s'", what, exact[i].path,
           got ? got : "(none)", exact[i].want);
    free(got);
  }
}

/* Values survive create/get and update exactly. */
static void t_values(ct *c, th_store *s) {
  char id[64], id2[64], item[2048], item2[2048], bare[128];
  char *out = untouched;
  th_result r;
  new_id(c, id);
  new_id(c, id2);
  snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"}," VALUES "}", id);
  snprintf(item2, sizeof item2, "{\"id\":{\"S\":\"%s\"}," VALUES "}", id2);
  snprintf(bare, sizeof bare, "{\"id\":{\"S\":\"%s\"}}", id2);

  r = op_create(s, id, item);
  EXPECT_R(r, TH_OK, "create with every kind of value");
  r = op_get(s, id, &out);
  EXPECT_R(r, TH_OK, "get with every kind of value");
  EXPECT(jsame(c, out, item), "values changed: got %s, want %s", out, item);
  expect_exact(c, out, "get");
  drop(out);

  r = op_create(s, id2, bare);
  EXPECT_R(r, TH_OK, "create of a bare item");
  out = untouched;
  r = op_update(s, id2, "{" VALUES "}", &out);
  EXPECT_R(r, TH_OK, "update with every kind of value");
  EXPECT(jsame(c, out, item2), "update returned %s, want %s", out, item2);
  expect_exact(c, out, "update");
  drop(out);
  expect_item(c, s, id2, item2, "get after update with every kind of value");

  out = untouched;
  op_remove(s, id, &out);
  drop(out);
  out = untouched;
  op_remove(s, id2, &out);
  drop(out);
}

/* Malformed requests are INVALID, change nothing and write no output. */
static void t_invalid(ct *c, th_store *s) {
  char id[64], item[256], long_id[TH_STORE_MAX_ID + 2], long_item[TH_STORE_MAX_ID + 64];
  char bad[10][256];
  char *out, *last;
  th_result r;
  new_id(c, id);
  memset(long_id, 'a', TH_STORE_MAX_ID + 1);
  long_id[TH_STORE_MAX_ID + 1] = '\0';
  snprintf(long_item, sizeof long_item, "{\"id\":{\"S\":\"%s\"}}", long_id);
  snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"},\"t\":{\"S\":\"x\"}}", id);
  snprintf(bad[0], sizeof bad[0], "{\"t\":{\"S\":\"no id\"}}");
  snprintf(bad[1], sizeof bad[1], "{\"id\":{\"S\":\"%sx\"}}", id);
  snprintf(bad[2], sizeof bad[2], "{\"id\":{\"N\":\"1\"}}");
  snprintf(bad[3], sizeof bad[3], "{\"id\":{\"S\":\"%s\"}", id);
  snprintf(bad[4], sizeof bad[4], "[{\"id\":{\"S\":\"%s\"}}]", id);
  snprintf(bad[5], sizeof bad[5], "{\"id\":{\"S\":\"%s\"},\"t\":null}", id);
  snprintf(bad[6], sizeof bad[6], "{\"id\":{\"S\":\"%s\"},\"t\":\"plain\"}", id);
  snprintf(bad[7], sizeof bad[7], "{\"id\":\"%s\"}", id);
  snprintf(bad[8], sizeof bad[8], "{\"id\":{\"S\":\"%s\"},\"" TH_STORE_OWNER_ATTR "\":{\"S\":\"%s\"}}",
           id, c->owner[1]);
  snprintf(bad[9], sizeof bad[9], "{\"id\":{\"S\":\"%s\"},\"version\":{\"N\":\"7\"}}", id);
  const struct {
    const char *id, *item, *what;
  } creates[] = {
    {id, bad[0], "item without id"}, {id, bad[1], "id mismatch"},
    {id, bad[2], "id not a string"}, {id, bad[3], "malformed JSON"},
    {id, bad[4], "not an object"},   {id, bad[5], "attribute value null"},
    {id, bad[6], "attribute value not an object"}, {id, bad[7], "id not an AttributeValue"},
    {id, bad[8], "item holding the owner's attribute"},
    {id, bad[9], "item holding the store's version"},
    {id, "", "empty text"},          {id, NULL, "NULL item"},
    {"", "{\"id\":{\"S\":\"\"}}", "empty id"}, {long_id, long_item, "id over TH_STORE_MAX_ID bytes"},
    {NULL, item, "NULL id"},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(creates); i++) {
    r = op_create(s, creates[i].id, creates[i].item);
    EXPECT_R(r, TH_ERR_INVALID, creates[i].what);
  }
  expect_absent(c, s, id, "get after refused creates");
  out = untouched;
  r = op_get(s, "", &out);
  EXPECT_R(r, TH_ERR_INVALID, "get of the empty id");
  EXPECT(out == untouched, "get of the empty id wrote its output");

  r = op_create(s, id, item);
  EXPECT_R(r, TH_OK, "create");
  char with_id[128];
  snprintf(with_id, sizeof with_id, "{\"id\":{\"S\":\"%s\"},\"t\":{\"S\":\"y\"}}", id);
  const struct {
    const char *fields, *what;
  } updates[] = {
    {with_id, "fields containing id"}, {"{\"t\":{\"S\":\"y\"}", "malformed fields"},
    {"{\"" TH_STORE_OWNER_ATTR "\":{\"S\":\"someone\"}}", "fields setting the owner's attribute"},
    {"{\"version\":{\"N\":\"7\"}}", "fields setting the store's version"},
    {"{\"t\":{\"S\":\"y\"},\"" TH_STORE_OWNER_ATTR "\":{\"NULL\":true}}",
     "fields with the owner's attribute among others"},
    {"[]", "fields not an object"},   {"{\"t\":null}", "field value null"},
    {"", "empty fields text"},        {NULL, "NULL fields"},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(updates); i++) {
    out = untouched;
    r = op_update(s, id, updates[i].fields, &out);
    EXPECT_R(r, TH_ERR_INVALID, updates[i].what);
    EXPECT(out == untouched, "%s: output written on failure", updates[i].what);
    drop(out);
  }
  expect_item(c, s, id, item, "get after refused updates");

  static const int limits[] = {0, 1001, -1};
  for (size_t i = 0; i < TH_ARRAY_LEN(limits); i++) {
    out = last = untouched;
    r = op_scan(s, limits[i], NULL, &out, &last);
    EXPECT_R(r, TH_ERR_INVALID, "scan with a limit outside 1..1000");
    EXPECT(out == untouched && last == untouched, "scan limit %d: output written", limits[i]);
    drop(out);
    drop(last);
  }
  out = untouched;
  op_remove(s, id, &out);
  drop(out);
}

/* Called between two pages of a scan (pass = the scan's number). */
typedef void (*between_fn)(ct *c, th_store *s, const char *pass);

/* Pages through the whole store, recording this run's ids in seen(pass).
 * Checks each page: valid array of at most `limit` items, each with an id;
 * progress; and that the scan ends with last_id NULL. */
static void scan_all(ct *c, th_store *s, int limit, const char *pass, between_fn between) {
  char *after = NULL;
  int pages = 0;
  for (;;) {
    char *items = untouched, *last = untouched;
    th_result r = op_scan(s, limit, after, &items, &last);
    if (!EXPECT_R(r, TH_OK, "scan") ||
        !EXPECT(items && items != untouched && last != untouched, "scan: outputs not written")) {
      drop(items);
      drop(last);
      break;
    }
    long long n = jnum(c, "SELECT CASE WHEN json_valid(?1) AND json_type(?1) = 'array'"
                          " THEN json_array_length(?1) END", items, NULL, NULL);
    EXPECT(n >= 0 && n <= limit, "scan limit %d: page of %lld items", limit, n);
    /* Writes between pages may empty what was left, hence `between`. */
    EXPECT(!after || n > 0 || between, "scan limit %d: empty page after last_id '%s'", limit, after);
    EXPECT(n <= 0 || jnum(c, "SELECT count(*) FROM json_each(?1)"
                             " WHERE json_type(value, '$.id.S') IS NOT 'text'", items, NULL, NULL) == 0,
           "scan: an item without an id: %s", items);
    /* Newest first: ids descend (in byte order, as SQLite's BINARY compares
     * text) within the page, the page starts below the previous one's last
     * id, and last_id is this page's last id. */
    EXPECT(n <= 1 || jnum(c, "SELECT count(*) FROM json_each(?1) a JOIN json_each(?1) b"
                             " ON b.key = a.key + 1"
                             " WHERE json_extract(b.value, '$.id.S') >= json_extract(a.value, '$.id.S')",
                          items, NULL, NULL) == 0,
           "scan limit %d: ids not in descending order: %s", limit, items);
    EXPECT(!after || n <= 0 || jnum(c, "SELECT count(*) FROM json_each(?1)"
                                       " WHERE json_extract(value, '$.id.S') >= ?2",
                                    items, after, NULL) == 0,
           "scan limit %d: an item at or above the cursor's id '%s': %s", limit, after, items);
    EXPECT(!last || n <= 0 || jnum(c, "SELECT json_extract(?1, '$[#-1].id.S') IS ?2", items, last,
                                   NULL) == 1,
           "scan limit %d: last_id '%s' is not the page's last id", limit, last);
    EXPECT(n <= 0 || jnum(c, "SELECT count(*) FROM json_each(?1)"
                             " WHERE json_type(value, '$." TH_STORE_OWNER_ATTR "') IS NOT NULL",
                          items, NULL, NULL) == 0,
           "scan: an item holds " TH_STORE_OWNER_ATTR ": %s", items);
    if (n > 0)
      jnum(c, "INSERT INTO seen SELECT ?2, json_extract(value, '$.id.S'), json_extract(value, '$.n.N')"
              " FROM json_each(?1) WHERE substr(json_extract(value, '$.id.S'), 1, length(?3)) = ?3",
           items, pass, c->prefix);
    EXPECT(!last || !after || strcmp(last, after) != 0, "scan: last_id '%s' repeated", after);
    free(items);
    int stuck = last && after && strcmp(last, after) == 0;
    free(after);
    after = last;
    if (!after || stuck || !EXPECT(++pages < MAX_PAGES, "scan limit %d: no end", limit))
      break;
    if (between)
      between(c, s, pass);
  }
  free(after);
}

/* Writes between pages: removes two items the scan has not returned yet,
 * creates two new ones, updates one it has returned. */
static void churn(ct *c, th_store *s, const char *pass) {
  char *out, *id, fresh[64], item[128];
  th_result r;
  for (int i = 0; i < 2; i++) {
    if (!(id = jstr(c, "SELECT id FROM want WHERE id NOT IN (SELECT id FROM seen WHERE pass = ?1)"
                       " ORDER BY random() LIMIT 1", pass, NULL, NULL)))
      break;
    out = untouched;
    r = op_remove(s, id, &out);
    EXPECT_R(r, TH_OK, "remove between pages");
    drop(out);
    jnum(c, "DELETE FROM want WHERE id = ?1", id, NULL, NULL);
    jnum(c, "INSERT INTO other VALUES (?1)", id, NULL, NULL);
    free(id);
  }
  for (int i = 0; i < 2; i++) {
    new_id(c, fresh);
    snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"},\"n\":{\"N\":\"-1\"}}", fresh);
    r = op_create(s, fresh, item);
    EXPECT_R(r, TH_OK, "create between pages");
    jnum(c, "INSERT INTO other VALUES (?1)", fresh, NULL, NULL);
  }
  if ((id = jstr(c, "SELECT id FROM want WHERE id IN (SELECT id FROM seen WHERE pass = ?1)"
                    " ORDER BY random() LIMIT 1", pass, NULL, NULL))) {
    out = untouched;
    r = op_update(s, id, "{\"touched\":{\"BOOL\":true}}", &out);
    EXPECT_R(r, TH_OK, "update between pages");
    drop(out);
    free(id);
  }
}

/* Writes between pages: creates two items newer than every other (their
 * ids are above all): newest first, they sort before the position the
 * paging has reached, so no later page may return them. */
static void insert_newer(ct *c, th_store *s, const char *pass) {
  char fresh[64], item[128];
  for (int i = 0; i < 2; i++) {
    new_id(c, fresh);
    snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"},\"n\":{\"N\":\"-2\"}}", fresh);
    th_result r = op_create(s, fresh, item);
    EXPECT_R(r, TH_OK, "create of a newer item between pages");
    jnum(c, "INSERT INTO other VALUES (?1)", fresh, NULL, NULL);
    jnum(c, "INSERT INTO newer VALUES (?1)", fresh, NULL, NULL);
  }
}

/* One scan's verdict: every item that existed throughout (want) returned
 * exactly once, unchanged; nothing of this run returned that never existed. */
static void check_pass(ct *c, const char *pass, const char *what) {
  long long dup = jnum(c, "SELECT count(*) FROM (SELECT id FROM seen WHERE pass = ?1"
                          " GROUP BY id HAVING count(*) > 1)", pass, NULL, NULL);
  long long miss = jnum(c, "SELECT count(*) FROM want"
                           " WHERE id NOT IN (SELECT id FROM seen WHERE pass = ?1)", pass, NULL, NULL);
  long long odd = jnum(c, "SELECT count(*) FROM seen WHERE pass = ?1 AND id NOT IN"
                          " (SELECT id FROM want UNION SELECT id FROM other)", pass, NULL, NULL);
  long long changed = jnum(c, "SELECT count(*) FROM seen JOIN want USING (id)"
                              " WHERE pass = ?1 AND seen.n IS NOT want.n", pass, NULL, NULL);
  EXPECT(dup == 0, "%s: %lld items returned twice", what, dup);
  EXPECT(miss == 0, "%s: %lld items never returned", what, miss);
  EXPECT(odd == 0, "%s: %lld unknown items of this run returned", what, odd);
  EXPECT(changed == 0, "%s: %lld items returned with the wrong content", what, changed);
}

/* Ids as long as the contract allows (TH_STORE_MAX_ID bytes, DynamoDB's
 * limit on a partition key): created, read, updated, paged past one page at
 * a time (each page ends on one of them), and removed. */
static void t_longest(ct *c, th_store *s) {
  char id[3][TH_STORE_MAX_ID + 1], item[TH_STORE_MAX_ID + 64], num[4];
  char *out;
  th_result r;
  sqlite3_exec(c->j, "DELETE FROM want; DELETE FROM other; DELETE FROM seen", NULL, NULL, NULL);
  for (int i = 0; i < 3; i++) {
    new_id(c, id[i]);
    size_t n = strlen(id[i]);
    memset(id[i] + n, 'a' + i, TH_STORE_MAX_ID - n);
    id[i][TH_STORE_MAX_ID] = '\0';
    snprintf(num, sizeof num, "%d", i);
    snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"},\"n\":{\"N\":\"%s\"}}", id[i], num);
    r = op_create(s, id[i], item);
    EXPECT_R(r, TH_OK, "create with a TH_STORE_MAX_ID-byte id");
    expect_item(c, s, id[i], item, "get of a TH_STORE_MAX_ID-byte id");
    jnum(c, "INSERT INTO want VALUES (?1, ?2)", id[i], num, NULL);
  }
  out = untouched;
  r = op_update(s, id[1], "{\"t\":{\"S\":\"y\"}}", &out);
  EXPECT_R(r, TH_OK, "update of a TH_STORE_MAX_ID-byte id");
  drop(out);
  scan_all(c, s, 1, "longest", NULL);
  check_pass(c, "longest", "scan limit 1 over TH_STORE_MAX_ID-byte ids");
  for (int i = 0; i < 3; i++) {
    out = untouched;
    r = op_remove(s, id[i], &out);
    EXPECT_R(r, TH_OK, "remove of a TH_STORE_MAX_ID-byte id");
    drop(out);
  }
}

/* Paging visits each item once, at several page sizes, and also while the
 * store changes between pages. Removes every item it created. */
static void t_scan(ct *c, th_store *s) {
  static const int limits[] = {1, 25, 26, 100, 1000};
  char id[64], item[128], num[16], what[64];
  char *out, *left;
  th_result r;
  int made = 0;
  for (int i = 0; i < N_SCAN; i++) {
    new_id(c, id);
    snprintf(num, sizeof num, "%d", i);
    snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"},\"n\":{\"N\":\"%s\"}}", id, num);
    r = op_create(s, id, item);
    made += r == TH_OK;
    jnum(c, "INSERT INTO want VALUES (?1, ?2)", id, num, NULL);
  }
  EXPECT(made == N_SCAN, "scan setup: created %d of %d items (%s)", made, N_SCAN, s->error);
  for (size_t i = 0; i < TH_ARRAY_LEN(limits); i++) {
    snprintf(num, sizeof num, "%zu", i);
    snprintf(what, sizeof what, "scan with limit %d", limits[i]);
    scan_all(c, s, limits[i], num, NULL);
    check_pass(c, num, what);
  }
  scan_all(c, s, 10, "99", churn);
  check_pass(c, "99", "scan with writes between pages");
  scan_all(c, s, 7, "98", insert_newer);
  check_pass(c, "98", "scan with newer items created between pages");
  long long late = jnum(c, "SELECT count(*) FROM seen WHERE pass = '98' AND id IN"
                           " (SELECT id FROM newer)", NULL, NULL, NULL);
  EXPECT(late == 0, "scan: %lld items created (newest) after the first page came in a later page",
         late);
  /* A list from the start sees them first. */
  char *items = untouched, *last = untouched;
  long long made_newer = jnum(c, "SELECT count(*) FROM newer", NULL, NULL, NULL);
  r = op_scan(s, (int)made_newer, NULL, &items, &last);
  EXPECT_R(r, TH_OK, "scan from the newest");
  EXPECT(r != TH_OK || jnum(c, "SELECT count(*) FROM json_each(?1)"
                               " WHERE json_extract(value, '$.id.S') IN (SELECT id FROM newer)",
                            items, NULL, NULL) == made_newer,
         "the first page is not the %lld newest items: %s", made_newer, items);
  drop(items);
  drop(last);

  while ((left = jstr(c, "SELECT id FROM want UNION SELECT id FROM other LIMIT 1", NULL, NULL, NULL))) {
    out = untouched;
    op_remove(s, left, &out);
    drop(out);
    int gone = jrun(c, "DELETE FROM want WHERE id = ?1", left, NULL, NULL, NULL, NULL) &&
               jrun(c, "DELETE FROM other WHERE id = ?1", left, NULL, NULL, NULL, NULL);
    free(left);
    if (!gone)
      break;
  }
}

/* ------------------------------------------------------- lua ops view */

/* A backend with th_store_lua_ops runs the whole suite a second time through
 * them: this view's get/update/remove/scan call the backend's Lua
 * operations on a state set up by th_json_setup, check the stack rules of
 * store.h, and hand the tables back as JSON text (th_json_encode; a scan's
 * plain items made AV maps again by th_av_push_item), so every check above
 * applies to that path unchanged. create is the backend's own. */
typedef struct lua_view {
  th_store base;
  th_store *inner;
  lua_State *L;
  ct *c;
} lua_view;

static th_store *inner_of(th_store *s) {
  lua_view *v = (lua_view *)s;
  v->inner->deadline_ms = s->deadline_ms;
  v->inner->stop = s->stop;
  memcpy(v->inner->owner, s->owner, sizeof s->owner);
  v->inner->error[0] = '\0';
  return v->inner;
}

/* Copies the backend's detail line up to the view. */
static th_result lv_done(th_store *s, th_result r) {
  lua_view *v = (lua_view *)s;
  memcpy(s->error, v->inner->error, sizeof s->error);
  return r;
}

static int lv_encode_p(lua_State *L) {
  th_json_encode(L, 1);
  return 1;
}

/* The table on top (left by a Lua operation at stack size top + 1) as JSON
 * text; pops it. NULL when it is not a table or cannot be encoded. */
static char *lv_take(lua_view *v, int top, const char *what) {
  lua_State *L = v->L;
  ct *c = v->c;
  char *out = NULL;
  if (EXPECT(lua_gettop(L) == top + 1 && lua_type(L, -1) == LUA_TTABLE,
             "%s: stack %d (want %d) top %s", what, lua_gettop(L), top + 1, luaL_typename(L, -1))) {
    lua_pushcfunction(L, lv_encode_p);
    lua_pushvalue(L, -2);
    if (EXPECT(lua_pcall(L, 1, 1, 0) == LUA_OK, "%s: cannot encode: %s", what, lua_tostring(L, -1)))
      out = strdup(lua_tostring(L, -1));
  }
  lua_settop(L, top);
  return out;
}

/* get/update/remove: TH_OK pushes one table; anything else leaves L alone. */
static th_result lv_item(th_store *s, th_result r, int top, char **out, const char *what) {
  lua_view *v = (lua_view *)s;
  ct *c = v->c;
  if (r != TH_OK) {
    EXPECT(lua_gettop(v->L) == top, "%s: %s left the stack at %d, want %d", what,
           th_result_name(r), lua_gettop(v->L), top);
    lua_settop(v->L, top);
    return lv_done(s, r);
  }
  char *text = lv_take(v, top, what);
  if (!text)
    return lv_done(s, TH_ERR_INTERNAL);
  *out = text;
  return lv_done(s, r);
}

static th_result lv_create(th_store *s, const char *id, const char *item) {
  th_store *in = inner_of(s);
  return lv_done(s, in->ops->create(in, id, item));
}

static th_result lv_get(th_store *s, const char *id, char **item_out) {
  lua_view *v = (lua_view *)s;
  th_store *in = inner_of(s);
  int top = lua_gettop(v->L);
  return lv_item(s, in->ops->lua->get(in, id, v->L), top, item_out, "lua get");
}

static th_result lv_update(th_store *s, const char *id, const char *fields, char **item_out) {
  lua_view *v = (lua_view *)s;
  th_store *in = inner_of(s);
  int top = lua_gettop(v->L);
  return lv_item(s, in->ops->lua->update(in, id, fields, v->L), top, item_out, "lua update");
}

static th_result lv_remove(th_store *s, const char *id, char **old_out) {
  lua_view *v = (lua_view *)s;
  th_store *in = inner_of(s);
  int top = lua_gettop(v->L);
  return lv_item(s, in->ops->lua->remove(in, id, v->L), top, old_out, "lua remove");
}

/* The page at 1, plain items (store.h: lua ops), as AV maps again: for the
 * text checks, which read ids and attributes as AV maps. */
static int lv_av_page_p(lua_State *L) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TTABLE)
      luaL_error(L, "item %d of the page is not a table", (int)i);
    th_av_push_item(L, -1);
    lua_rawseti(L, 1, i);
    lua_pop(L, 1);
  }
  return 0;
}

/* scan: the table on top receives the page and stays there. */
static th_result lv_scan(th_store *s, int limit, const char *after_id, char **items_out,
                         char **last_id_out) {
  lua_view *v = (lua_view *)s;
  ct *c = v->c;
  th_store *in = inner_of(s);
  lua_State *L = v->L;
  int top = lua_gettop(L);
  lua_newtable(L);
  char *last = untouched;
  th_result r = in->ops->lua->scan(in, limit, after_id, L, &last);
  EXPECT(lua_gettop(L) == top + 1 && lua_type(L, -1) == LUA_TTABLE,
         "lua scan: %s left the stack at %d, want %d", th_result_name(r), lua_gettop(L), top + 1);
  if (r != TH_OK) {
    EXPECT(last == untouched, "lua scan: last_id written on failure");
    lua_settop(L, top);
    return lv_done(s, r);
  }
  lua_settop(L, top + 1);
  lua_pushcfunction(L, lv_av_page_p);
  lua_pushvalue(L, -2);
  if (!EXPECT(lua_pcall(L, 1, 0, 0) == LUA_OK, "lua scan: the page's plain items: %s",
              lua_tostring(L, -1))) {
    free(last);
    lua_settop(L, top);
    return lv_done(s, TH_ERR_INTERNAL);
  }
  th_json_mark_array(L, -1);
  char *items = lv_take(v, top, "lua scan");
  if (!items) {
    free(last);
    return lv_done(s, TH_ERR_INTERNAL);
  }
  *items_out = items;
  *last_id_out = last;
  return lv_done(s, r);
}

static void lv_close(th_store *s) {
  lua_view *v = (lua_view *)s;
  v->inner->ops->close(v->inner);
  lua_close(v->L);
  free(v);
}

static const th_store_ops lua_view_ops = {lv_create, lv_get, lv_update, lv_remove, lv_scan,
                                          lv_close, NULL, NULL, NULL, NULL};

static int lv_setup_p(lua_State *L) {
  th_json_setup(L);
  return 0;
}

/* Wraps inner (which must have lua ops); closes it and returns NULL on failure. */
static th_store *lua_view_open(ct *c, th_store *inner) {
  lua_view *v = calloc(1, sizeof *v);
  if (v && (v->L = luaL_newstate())) {
    lua_pushcfunction(v->L, lv_setup_p);
    if (lua_pcall(v->L, 0, 0, 0) == LUA_OK) {
      v->base.ops = &lua_view_ops;
      memcpy(v->base.identity, inner->identity, sizeof v->base.identity);
      memcpy(v->base.owner, inner->owner, sizeof v->base.owner);
      v->base.deadline_ms = inner->deadline_ms;
      v->base.stop = inner->stop;
      v->inner = inner;
      v->c = c;
      return &v->base;
    }
    lua_close(v->L);
  }
  free(v);
  inner->ops->close(inner);
  return NULL;
}

/* ------------------------------------------------------------ owners */

static void set_owner(ct *c, th_store *s, const char *owner) {
  th_result r = th_store_set_owner(s, owner);
  EXPECT(r == TH_OK && strcmp(s->owner, owner) == 0, "set owner '%.40s': %s", owner,
         th_result_name(r));
}

/* The ids of this run one whole scan returns, in pass `pass` (scan_all). */
static long long seen_count(ct *c, const char *pass) {
  return jnum(c, "SELECT count(*) FROM seen WHERE pass = ?1", pass, NULL, NULL);
}

/* Two owners (A, B): the same id is two items, and nothing of A's is
 * visible to B, or changed or removed by B — for get, update, remove, scan. */
static void t_owners(ct *c, th_store *s) {
  const char *A = c->owner[0], *B = c->owner[1];
  char shared[64], only_a[64], item_a[256], item_b[256], item_y[256], upd_a[256];
  char *out;
  th_result r;
  sqlite3_exec(c->j, "DELETE FROM seen", NULL, NULL, NULL);
  new_id(c, shared);
  new_id(c, only_a);
  snprintf(item_a, sizeof item_a, "{\"id\":{\"S\":\"%s\"},\"who\":{\"S\":\"a\"}}", shared);
  snprintf(item_b, sizeof item_b, "{\"id\":{\"S\":\"%s\"},\"who\":{\"S\":\"b\"}}", shared);
  snprintf(item_y, sizeof item_y, "{\"id\":{\"S\":\"%s\"},\"who\":{\"S\":\"a only\"}}", only_a);
  snprintf(upd_a, sizeof upd_a, "{\"id\":{\"S\":\"%s\"},\"who\":{\"S\":\"a, updated\"}}", shared);

  set_owner(c, s, A);
  r = op_create(s, shared, item_a);
  EXPECT_R(r, TH_OK, "create under A");
  r = op_create(s, only_a, item_y);
  EXPECT_R(r, TH_OK, "create of a second item under A");

  set_owner(c, s, B);
  r = op_create(s, shared, item_b);
  EXPECT_R(r, TH_OK, "create of A's id under B (another item)");
  r = op_create(s, shared, item_b);
  EXPECT_R(r, TH_ERR_EXISTS, "second create of that id under B");
  expect_item(c, s, shared, item_b, "B's get of the shared id gives B's item");
  expect_absent(c, s, only_a, "B's get of A's item");
  out = untouched;
  r = op_update(s, only_a, "{\"who\":{\"S\":\"b was here\"}}", &out);
  EXPECT_R(r, TH_ERR_NOT_FOUND, "B's update of A's item");
  EXPECT(out == untouched, "B's update of A's item wrote its output");
  drop(out);
  expect_absent(c, s, only_a, "B's get after B's update of A's item (must not create)");
  out = untouched;
  r = op_remove(s, only_a, &out);
  EXPECT_R(r, TH_ERR_NOT_FOUND, "B's remove of A's item");
  EXPECT(out == untouched, "B's remove of A's item wrote its output");
  drop(out);
  scan_all(c, s, 1, "b", NULL);
  EXPECT(seen_count(c, "b") == 1 &&
             jnum(c, "SELECT count(*) FROM seen WHERE pass = 'b' AND id = ?1", shared, NULL, NULL) == 1,
         "B's scan: %lld items, want B's one", seen_count(c, "b"));

  set_owner(c, s, A);
  expect_item(c, s, shared, item_a, "A's item after B's create of the same id");
  expect_item(c, s, only_a, item_y, "A's item after B's update and remove");
  scan_all(c, s, 1, "a", NULL);
  EXPECT(seen_count(c, "a") == 2, "A's scan: %lld items, want A's two", seen_count(c, "a"));
  out = untouched;
  r = op_update(s, shared, "{\"who\":{\"S\":\"a, updated\"}}", &out);
  EXPECT_R(r, TH_OK, "A's update of the shared id");
  EXPECT(jsame(c, out, upd_a), "A's update returned %s", out);
  drop(out);

  set_owner(c, s, B);
  expect_item(c, s, shared, item_b, "B's item after A's update of the same id");
  out = untouched;
  r = op_remove(s, shared, &out);
  EXPECT_R(r, TH_OK, "B's remove of its own item");
  EXPECT(jsame(c, out, item_b), "B's remove returned %s, want B's item", out);
  drop(out);

  set_owner(c, s, A);
  expect_item(c, s, shared, upd_a, "A's item after B removed the same id");
  for (int i = 0; i < 2; i++) {
    out = untouched;
    r = op_remove(s, i ? only_a : shared, &out);
    EXPECT_R(r, TH_OK, "A's remove of its items");
    drop(out);
  }
}

/* Without an owner nothing runs (TH_ERR_INTERNAL, outputs untouched, a
 * detail); th_store_set_owner refuses an empty or over-long owner and leaves
 * the store without one; the longest owner works. */
static void t_no_owner(ct *c, th_store *s) {
  char id[64], item[256], *out, *last;
  static char longest[TH_STORE_MAX_OWNER + 2];
  th_result r;
  new_id(c, id);
  snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"}}", id);
  memset(longest, 'o', TH_STORE_MAX_OWNER + 1);
  memcpy(longest, c->prefix, strlen(c->prefix)); /* this run's: a shared table stays clean */
  longest[TH_STORE_MAX_OWNER + 1] = '\0';

  EXPECT(th_store_set_owner(s, "") == TH_ERR_INVALID && !s->owner[0], "empty owner accepted");
  set_owner(c, s, c->owner[0]);
  EXPECT(th_store_set_owner(s, longest) == TH_ERR_INVALID && !s->owner[0],
         "an owner of TH_STORE_MAX_OWNER + 1 bytes accepted");
  r = op_create(s, id, item);
  EXPECT_R(r, TH_ERR_INTERNAL, "create without an owner");
  out = untouched;
  r = op_get(s, id, &out);
  EXPECT_R(r, TH_ERR_INTERNAL, "get without an owner");
  EXPECT(out == untouched, "get without an owner wrote its output");
  r = op_update(s, id, "{\"t\":{\"S\":\"x\"}}", &out);
  EXPECT_R(r, TH_ERR_INTERNAL, "update without an owner");
  EXPECT(out == untouched, "update without an owner wrote its output");
  r = op_remove(s, id, &out);
  EXPECT_R(r, TH_ERR_INTERNAL, "remove without an owner");
  EXPECT(out == untouched, "remove without an owner wrote its output");
  last = untouched;
  r = op_scan(s, 10, NULL, &out, &last);
  EXPECT_R(r, TH_ERR_INTERNAL, "scan without an owner");
  r = op_scan(s, 10, id, &out, &last);
  EXPECT_R(r, TH_ERR_INTERNAL, "scan after an id without an owner");
  EXPECT(out == untouched && last == untouched, "scan without an owner wrote its outputs");
  set_owner(c, s, c->owner[0]);
  expect_absent(c, s, id, "get after a create without an owner");

  longest[TH_STORE_MAX_OWNER] = '\0';
  set_owner(c, s, longest);
  r = op_create(s, id, item);
  EXPECT_R(r, TH_OK, "create under a TH_STORE_MAX_OWNER-byte owner");
  expect_item(c, s, id, item, "get under a TH_STORE_MAX_OWNER-byte owner");
  out = last = untouched;
  r = op_scan(s, 10, NULL, &out, &last);
  EXPECT_R(r, TH_OK, "scan under a TH_STORE_MAX_OWNER-byte owner");
  EXPECT(r != TH_OK || (jnum(c, "SELECT json_array_length(?1)", out, NULL, NULL) == 1 && !last),
         "scan under a TH_STORE_MAX_OWNER-byte owner: %s", out);
  drop(out);
  if (r == TH_OK)
    drop(last);
  out = untouched;
  r = op_remove(s, id, &out);
  EXPECT_R(r, TH_OK, "remove under a TH_STORE_MAX_OWNER-byte owner");
  drop(out);
  EXPECT(th_store_set_owner(s, NULL) == TH_OK && !strcmp(s->owner, TH_STORE_PUBLIC_OWNER),
         "a NULL owner is not '" TH_STORE_PUBLIC_OWNER "'");
  set_owner(c, s, c->owner[0]);
}

static int co_setup_p(lua_State *L) {
  th_json_setup(L);
  th_lua_set_request_id(L, "store-contract");
  return 0;
}

/* store.scan(limit, cursor) of the Lua module at index 1: pushes its two
 * results (or nil and the error message); returns the result of lua_pcall. */
static int co_scan(lua_State *L, int limit, const char *cursor) {
  lua_settop(L, 1);
  lua_getfield(L, 1, "scan");
  lua_pushinteger(L, limit);
  if (cursor)
    lua_pushstring(L, cursor);
  else
    lua_pushnil(L);
  int st = lua_pcall(L, 2, 2, 0);
  if (st != LUA_OK)
    lua_pushnil(L);
  return st;
}

/* Cursors are sealed for their owner (lua_store.c, cursor.h): A's cursor
 * replayed under B is refused as invalid (the route's 400) and gives none
 * of A's items; under A it goes on. Also for the longest owner and ids. */
static void t_cursor_owner(ct *c, th_store *s) {
  static const unsigned char secret[] = "store-contract-cursor-secret";
  static char big_owner[TH_STORE_MAX_OWNER + 1];
  th_store_binding b = {.store = s, .cursor_secret = secret, .cursor_secret_len = sizeof secret - 1};
  char ids[3][TH_STORE_MAX_ID + 1], item[TH_STORE_MAX_ID + 64], *out;
  lua_State *L = luaL_newstate();
  memset(big_owner, 'p', TH_STORE_MAX_OWNER);
  memcpy(big_owner, c->prefix, strlen(c->prefix));
  big_owner[TH_STORE_MAX_OWNER] = '\0';
  if (!EXPECT(L, "cursor owner: no Lua state"))
    return;
  lua_pushcfunction(L, co_setup_p);
  if (!EXPECT(lua_pcall(L, 0, 0, 0) == LUA_OK, "cursor owner: Lua setup failed")) {
    lua_close(L);
    return;
  }
  lua_pushlightuserdata(L, &b);
  lua_pushcclosure(L, luaopen_th_store, 1);
  lua_call(L, 0, 1); /* the store module, at index 1 */
  for (int round = 0; round < 2; round++) {
    const char *owner = round ? big_owner : c->owner[0];
    set_owner(c, s, owner);
    for (int i = 0; i < 3; i++) {
      new_id(c, ids[i]);
      if (round) { /* ids as long as the store allows */
        size_t n = strlen(ids[i]);
        memset(ids[i] + n, 'x', TH_STORE_MAX_ID - n);
        ids[i][TH_STORE_MAX_ID] = '\0';
      }
      snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"}}", ids[i]);
      th_result r = op_create(s, ids[i], item);
      EXPECT_R(r, TH_OK, "cursor owner: create");
    }
    int st = co_scan(L, 1, NULL);
    const char *cursor = lua_tostring(L, -1);
    EXPECT(st == LUA_OK && lua_istable(L, -2) && cursor, "round %d: first page: %s", round,
           lua_tostring(L, -1));
    char *cur = cursor ? strdup(cursor) : NULL;
    if (cur) {
      EXPECT(strlen(cur) <= TH_CURSOR_MAX_TEXT, "round %d: a cursor of %zu characters", round,
             strlen(cur));
      set_owner(c, s, c->owner[1]);
      st = co_scan(L, 1, cur);
      EXPECT(st == LUA_OK && lua_isnil(L, -2) && lua_istable(L, -1), "round %d: A's cursor under B "
             "was not refused", round);
      if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "kind");
        EXPECT(lua_tostring(L, -1) && !strcmp(lua_tostring(L, -1), "invalid"),
               "round %d: A's cursor under B: kind %s, want invalid", round, lua_tostring(L, -1));
      }
      set_owner(c, s, owner);
      st = co_scan(L, 1, cur);
      EXPECT(st == LUA_OK && lua_istable(L, -2) && lua_rawlen(L, -2) == 1,
             "round %d: A's cursor under A: %s", round, lua_tostring(L, -1));
      if (st == LUA_OK && lua_istable(L, -2)) {
        lua_rawgeti(L, -2, 1);
        lua_getfield(L, -1, "id");
        EXPECT(lua_tostring(L, -1) && !strcmp(lua_tostring(L, -1), ids[1]),
               "round %d: the second page is not the second newest item", round);
        lua_getfield(L, -2, TH_STORE_OWNER_ATTR);
        EXPECT(lua_isnil(L, -1), "round %d: a listed item holds " TH_STORE_OWNER_ATTR, round);
      }
      free(cur);
    }
    for (int i = 0; i < 3; i++) {
      out = untouched;
      op_remove(s, ids[i], &out);
      drop(out);
    }
  }
  set_owner(c, s, c->owner[0]);
  lua_close(L);
}

int th_store_contract_run(th_store *(*open_fresh)(void *ctx), void *ctx, FILE *report) {
  static const struct {
    const char *name;
    void (*run)(ct *c, th_store *s);
  } groups[] = {{"crud", t_crud},     {"values", t_values},   {"invalid", t_invalid},
                {"scan", t_scan},     {"longest", t_longest}, {"owners", t_owners},
                {"no owner", t_no_owner}, {"cursor owner", t_cursor_owner}};
  ct cc = {.report = report ? report : stderr, .view = ""}, *c = &cc;
  int lua_pass = 0;
  uuid_t u;
  char hex[37];
  uuid_generate_random(u);
  uuid_unparse_lower(u, hex);
  snprintf(c->prefix, sizeof c->prefix, "ct-%.8s-", hex);
  snprintf(c->owner[0], sizeof c->owner[0], "ct-%.8s-a", hex);
  snprintf(c->owner[1], sizeof c->owner[1], "ct-%.8s-b", hex);
  /* want: this run's items that exist throughout; other: the ones created or
   * removed during a scan (may or may not be returned); seen: what scans returned. */
  if (sqlite3_open(":memory:", &c->j) != SQLITE_OK ||
      sqlite3_exec(c->j, "CREATE TABLE want (id TEXT PRIMARY KEY, n TEXT);"
                         "CREATE TABLE other (id TEXT PRIMARY KEY);"
                         "CREATE TABLE newer (id TEXT PRIMARY KEY);"
                         "CREATE TABLE seen (pass TEXT, id TEXT, n TEXT)",
                   NULL, NULL, NULL) != SQLITE_OK) {
    EXPECT(0, "cannot set up the helper database: %s", sqlite3_errmsg(c->j));
    goto out;
  }
  /* Pass 0: the text operations. Pass 1: the Lua operations, when the
   * backend has them (the suite through lua_view). */
  for (int pass = 0; pass < 2; pass++) {
    c->view = pass ? "[lua ops] " : "";
    sqlite3_exec(c->j, "DELETE FROM want; DELETE FROM other; DELETE FROM seen; DELETE FROM newer",
                 NULL, NULL, NULL);
    for (size_t i = 0; i < TH_ARRAY_LEN(groups); i++) {
      th_store *s = open_fresh(ctx);
      if (!EXPECT(s, "%s: open_fresh failed", groups[i].name))
        continue;
      EXPECT(th_store_set_owner(s, c->owner[0]) == TH_OK, "%s: set the owner", groups[i].name);
      if (pass) {
        if (!s->ops->lua) {
          s->ops->close(s);
          break;
        }
        EXPECT(s->ops->lua->get && s->ops->lua->update && s->ops->lua->remove && s->ops->lua->scan,
               "lua ops: all four must be given");
        if (!EXPECT(s = lua_view_open(c, s), "%s: cannot set up the lua view", groups[i].name))
          continue;
        lua_pass = 1;
      }
      groups[i].run(c, s);
      s->ops->close(s);
    }
  }
out:
  fprintf(c->report, "store contract (%s): %d checks%s, %d failed\n", c->prefix, c->checks,
          lua_pass ? " (text and lua operations)" : "", c->failures);
  sqlite3_close(c->j);
  return c->failures;
}
