/* store_sqlite — the embedded backend of the store contract (store.h).
 *
 * One table `items(user_id, id, doc)`, PRIMARY KEY (user_id, id), holds each
 * item's AV-map JSON (without user_id: the owner lives in its column only),
 * as DynamoDB keys the table; a page is a walk down that key within one
 * user_id, newest (greatest) id first. A file of the earlier schema,
 * `items(id PRIMARY KEY, doc)`, is migrated at open in one write
 * transaction that checks again, under the lock, whether it is still to do:
 * its rows go to the owner "public" (TH_STORE_PUBLIC_OWNER), so a
 * developer's ./taskhost.db keeps its tasks; an interrupted migration leaves
 * the old table as it was, and the next open does it again.
 * All JSON work (validation, merge of updated fields, the scan's array)
 * is done by SQLite's JSON1 functions, so this file never parses JSON itself.
 * Versions (store.h) live in the column items.version (NULL: written before
 * versions, counted as 1), never in doc; an If-Match condition is a clause
 * of the UPDATE or DELETE itself. Idempotency records live in their own
 * table `idempotency(user_id, key, …)`, so they are never listed or read as
 * items; a keyed create is one transaction: the item's INSERT and the
 * record's completion (idem_commit).
 * WAL lets several th_store handles (one per worker thread, or other
 * processes) share one file; every operation is one autocommit statement,
 * hence atomic. A lock held by another connection is waited for by a busy
 * handler (on_busy) until the operation's deadline or its stop flag
 * (store.h): then the operation fails with TH_ERR_TIMEOUT, so a route gets
 * its store error back in time to answer 503. Statements are prepared once at
 * open and reset on every path.
 */
#include "store.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* How long a lock is waited for when no deadline is set (opening the file,
 * or an operation outside a request). */
#define BUSY_TIMEOUT_MS 5000
#define STR_(x) #x
#define STR(x) STR_(x)
/* The busy handler's sleeps: 1, 2, 4, 8 ms, then this, and never past the
 * deadline. */
#define BUSY_SLEEP_MAX_MS 10

enum { ST_CHECK, ST_CREATE, ST_GET, ST_UPDATE, ST_REMOVE, ST_SCAN, ST_SCAN_AFTER,
       ST_IDEM_FIND, ST_IDEM_CLAIM, ST_IDEM_COMPLETE, ST_IDEM_RELEASE, ST_COUNT };

/* The If-Match condition bound at parameter p (store.h): NULL none, '*'
 * the item exists (the WHERE found it), else a JSON array of versions. CASE:
 * json_each never sees '*'. */
#define MATCH_SQL(p)                                                                           \
  " AND CASE WHEN " p " IS NULL OR " p " = '*' THEN 1"                                         \
  " ELSE coalesce(version, 1) IN (SELECT value FROM json_each(" p ")) END"


/* One page, newest first: ?1 the owner, ?2 the limit, ?3 the id to start
 * below (ST_SCAN_AFTER only). One statement is one read transaction: the
 * page and the test for a next row see the same snapshot, so last_id is NULL
 * exactly when nothing is left. Two statements rather than "?3 IS NULL OR":
 * each keeps its seek on the primary key. */
#define SCAN_SQL(after)                                                                        \
  "WITH ahead AS MATERIALIZED (SELECT id, doc FROM items WHERE user_id = ?1" after            \
  "  ORDER BY id DESC LIMIT ?2 + 1),"                                                          \
  " page AS (SELECT id, doc FROM ahead ORDER BY id DESC LIMIT ?2)"                             \
  " SELECT (SELECT json_group_array(json(doc)) FROM page),"                                    \
  "  CASE WHEN (SELECT count(*) FROM ahead) > ?2 THEN (SELECT min(id) FROM page) END"

/* Returns NULL when ?1 is acceptable, else the reason. ?2 is 'fields' for
 * update fields (must not hold "id"), 'item' for a whole item (must hold
 * exactly "id":{"S":?3}); neither may hold the owner's attribute.
 * Every attribute value must be an object: a JSON null would make json_patch
 * delete the attribute instead of setting it. CASE stops at the first failing
 * test, so the JSON functions never see malformed text. */
static const char *const sql_text[ST_COUNT] = {
  [ST_CHECK] =
    "SELECT CASE"
    " WHEN ?1 IS NULL OR NOT json_valid(?1) THEN 'not valid JSON'"
    " WHEN json_type(?1) IS NOT 'object' THEN 'not a JSON object'"
    " WHEN EXISTS (SELECT 1 FROM json_each(?1) WHERE type <> 'object')"
    "  THEN 'an attribute value is not an AttributeValue object'"
    " WHEN EXISTS (SELECT 1 FROM json_each(?1) WHERE key = '" TH_STORE_OWNER_ATTR "')"
    "  THEN 'the attribute " TH_STORE_OWNER_ATTR " is the store''s own (the owner)'"
    " WHEN EXISTS (SELECT 1 FROM json_each(?1) WHERE key = 'version')"
    "  THEN 'the attribute version is the store''s own (the item''s version)'"
    " WHEN ?2 = 'fields' AND EXISTS (SELECT 1 FROM json_each(?1) WHERE key = 'id')"
    "  THEN 'fields must not contain id'"
    " WHEN ?2 = 'item' AND (json_type(?1, '$.id.S') IS NOT 'text'"
    "  OR json_extract(?1, '$.id.S') IS NOT ?3"
    "  OR (SELECT count(*) FROM json_each(?1, '$.id')) <> 1)"
    "  THEN 'item must contain \"id\":{\"S\":<the id>}'"
    " END",
  [ST_CREATE] = "INSERT INTO items (user_id, id, doc, version) VALUES (?3, ?1, json(?2), 1)"
                " ON CONFLICT (user_id, id) DO NOTHING",
  [ST_GET] = "SELECT doc, coalesce(version, 1) FROM items WHERE id = ?1 AND user_id = ?2",
  /* Remove the fields being set, then add them: a plain merge patch would
   * merge {"N":..} into {"S":..} or keep old keys of a replaced M. */
  [ST_UPDATE] =
    "UPDATE items SET doc = json_patch(json_patch(doc,"
    " (SELECT json_group_object(key, json('null')) FROM json_each(?1))), ?1),"
    " version = coalesce(version, 1) + 1"
    " WHERE id = ?2 AND user_id = ?3" MATCH_SQL("?4") " RETURNING doc, version",
  [ST_REMOVE] = "DELETE FROM items WHERE id = ?1 AND user_id = ?2" MATCH_SQL("?3")
                " RETURNING doc, coalesce(version, 1)",
  [ST_SCAN] = SCAN_SQL(""),
  [ST_SCAN_AFTER] = SCAN_SQL(" AND id < ?3"),
  /* ?1 owner, ?2 key, ?3 now (epoch s), ?4 now (epoch ms), ?5 fingerprint:
   * what the record says to this request (th_idem_state), and its response. */
  [ST_IDEM_FIND] =
    "SELECT CASE WHEN expires_at <= ?3 OR (state = 'in_progress' AND locked_until <= ?4)"
    "  THEN 'new' WHEN fingerprint <> ?5 THEN 'mismatch'"
    "  WHEN state = 'completed' THEN 'replay' ELSE 'in_flight' END, response"
    " FROM idempotency WHERE user_id = ?1 AND key = ?2",
  [ST_IDEM_CLAIM] =
    "INSERT INTO idempotency (user_id, key, state, fingerprint, token, expires_at, locked_until)"
    " VALUES (?1, ?2, 'in_progress', ?3, ?4, ?5, ?6) ON CONFLICT (user_id, key) DO UPDATE SET"
    " state = 'in_progress', fingerprint = excluded.fingerprint, token = excluded.token,"
    " expires_at = excluded.expires_at, locked_until = excluded.locked_until, response = NULL",
  [ST_IDEM_COMPLETE] =
    "UPDATE idempotency SET state = 'completed', response = ?4, locked_until = 0"
    " WHERE user_id = ?1 AND key = ?2 AND token = ?3 AND state = 'in_progress'",
  [ST_IDEM_RELEASE] = "DELETE FROM idempotency"
                      " WHERE user_id = ?1 AND key = ?2 AND token = ?3 AND state = 'in_progress'",
};

/* The table, and the migration from the id-keyed schema (doc kept as it was
 * but for a user_id attribute, which the owner's column now stands for). */
#define TABLE_SQL(name)                                                                        \
  "CREATE TABLE " name " (user_id TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,"         \
  " PRIMARY KEY (user_id, id)) WITHOUT ROWID"
/* 1 | 0 | NULL (no table): whether items has the user_id column. */
static const char schema_sql[] =
  "SELECT (SELECT count(*) FROM pragma_table_info('items') WHERE name = 'user_id')"
  " WHERE EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'items')";
/* What versions and idempotency records add to a table of the owner-keyed
 * schema: 1 when it has both. */
static const char current_sql[] =
  "SELECT (SELECT count(*) FROM pragma_table_info('items') WHERE name = 'version')"
  " AND EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'idempotency')";
static const char version_sql[] =
  "SELECT count(*) FROM pragma_table_info('items') WHERE name = 'version'";
static const char add_version_sql[] = "ALTER TABLE items ADD COLUMN version INTEGER";
static const char idem_table_sql[] =
  "CREATE TABLE IF NOT EXISTS idempotency (user_id TEXT NOT NULL, key TEXT NOT NULL,"
  " state TEXT NOT NULL, fingerprint TEXT NOT NULL, token TEXT NOT NULL,"
  " expires_at INTEGER NOT NULL, locked_until INTEGER NOT NULL, response TEXT,"
  " PRIMARY KEY (user_id, key)) WITHOUT ROWID";
static const char migrate_sql[] =
  TABLE_SQL("items_by_owner") ";"
  "INSERT INTO items_by_owner (user_id, id, doc)"
  " SELECT '" TH_STORE_PUBLIC_OWNER "', id, json_remove(doc, '$." TH_STORE_OWNER_ATTR "') FROM items;"
  "DROP TABLE items;"
  "ALTER TABLE items_by_owner RENAME TO items";

typedef struct sq_store {
  th_store base; /* first: a th_store * is a sq_store * */
  sqlite3 *db;
  sqlite3_stmt *st[ST_COUNT];
  double busy_since; /* th_now_ms() when the current wait for a lock began */
  const char *gave_up; /* why on_busy ended the last wait early, or NULL */
} sq_store;

/* SQLite calls this while another connection holds the lock it needs; count
 * is 0 on the first call of each wait. Sleeps a little and asks for another
 * try (1) until the operation's deadline — or BUSY_TIMEOUT_MS when there is
 * none — or the stop flag (store.h), then gives up (0) and the statement
 * fails with SQLITE_BUSY. */
static int on_busy(void *arg, int count) {
  sq_store *q = arg;
  double now = th_now_ms();
  if (count == 0)
    q->busy_since = now;
  if (q->base.stop && atomic_load(q->base.stop)) {
    q->gave_up = "given up on the stop flag";
    return 0;
  }
  double until = q->base.deadline_ms > 0 ? q->base.deadline_ms : q->busy_since + BUSY_TIMEOUT_MS;
  double left = until - now;
  if (left < 1) {
    q->gave_up = q->base.deadline_ms > 0 ? "given up at the request's deadline" : NULL;
    return 0;
  }
  int ms = count < 4 ? 1 << count : BUSY_SLEEP_MAX_MS;
  if (ms > left)
    ms = (int)left;
  sqlite3_sleep(ms);
  if (q->base.stats) /* another try: a retry, for the metrics */
    q->base.stats->retries++;
  return 1;
}

/* One place decides which SQLite failures a route may retry (503) and which
 * are bugs (500); BUSY here means the wait for the lock already ran out. */
static th_result map_rc(int rc) {
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return TH_ERR_UNAVAILABLE;
  case SQLITE_FULL:
  case SQLITE_IOERR: return TH_ERR_IO;
  case SQLITE_NOMEM: return TH_ERR_NOMEM;
  default: return TH_ERR_INTERNAL;
  }
}

/* The contract wants a detail line on every non-OK result; keep it here. */
static th_result fail(sq_store *q, th_result r, const char *what, const char *detail) {
  snprintf(q->base.error, sizeof q->base.error, "sqlite %s: %s", what, detail);
  return r;
}

/* Copies a text column out before the statement is reset (which frees it).
 * A SQL NULL gives *out = NULL. */
static th_result dup_col(sqlite3_stmt *st, int col, char **out) {
  *out = NULL;
  if (sqlite3_column_type(st, col) == SQLITE_NULL)
    return TH_OK;
  const unsigned char *t = sqlite3_column_text(st, col);
  int n = sqlite3_column_bytes(st, col);
  if (!t)
    return TH_ERR_NOMEM;
  char *p = malloc((size_t)n + 1);
  if (!p)
    return TH_ERR_NOMEM;
  memcpy(p, t, (size_t)n);
  p[n] = '\0';
  *out = p;
  return TH_OK;
}

/* Runs a bound statement to completion (a RETURNING statement commits only
 * then) and always resets it. Our statements yield at most one row; *found
 * says whether it did, and c0/c1 (when non-NULL) receive copies of its first
 * two columns, caller frees. On failure nothing is returned. */
static th_result run(sq_store *q, sqlite3_stmt *st, const char *what, int *found, char **c0,
                     char **c1) {
  th_result r = TH_OK;
  char *v0 = NULL, *v1 = NULL;
  int rc, rows = 0;
  q->gave_up = NULL;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (rows++)
      continue;
    if ((c0 && (r = dup_col(st, 0, &v0)) != TH_OK) || (c1 && (r = dup_col(st, 1, &v1)) != TH_OK)) {
      fail(q, r, what, "out of memory");
      goto out;
    }
  }
  if (rc != SQLITE_DONE) {
    if ((rc & 0xff) == SQLITE_BUSY && q->gave_up) {
      char why[256];
      snprintf(why, sizeof why, "%s; %s after waiting %.0f ms", sqlite3_errmsg(q->db), q->gave_up,
               th_now_ms() - q->busy_since);
      r = fail(q, TH_ERR_TIMEOUT, what, why);
    } else {
      r = fail(q, map_rc(rc), what, sqlite3_errmsg(q->db));
    }
    goto out;
  }
  *found = rows > 0;
  if (c0)
    *c0 = v0;
  if (c1)
    *c1 = v1;
  v0 = v1 = NULL;
out:
  free(v0);
  free(v1);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return r;
}

/* Binds text parameters 1..n (NULL binds SQL NULL); on failure the statement
 * is reset so the next operation starts clean. */
static th_result bind(sq_store *q, sqlite3_stmt *st, const char *what, int n, const char *const *v) {
  for (int i = 0; i < n; i++) {
    int rc = v[i] ? sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC) : sqlite3_bind_null(st, i + 1);
    if (rc != SQLITE_OK) {
      th_result r = fail(q, map_rc(rc), what, sqlite3_errmsg(q->db));
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      return r;
    }
  }
  return TH_OK;
}

/* Ids are bounded as DynamoDB bounds them (store.h), so the two backends
 * accept the same items and every key fits in a pagination cursor. No
 * operation runs without an owner. */
static th_result check_id(sq_store *q, const char *what, const char *id) {
  if (!q->base.owner[0])
    return fail(q, TH_ERR_INTERNAL, what, "no owner bound to the store");
  if (!id || !id[0] || strlen(id) > TH_STORE_MAX_ID)
    return fail(q, TH_ERR_INVALID, what, "id must be 1.." STR(TH_STORE_MAX_ID) " bytes");
  return TH_OK;
}

/* Rejects a document before it reaches the table (see sql_text[ST_CHECK]). */
static th_result check_doc(sq_store *q, const char *what, const char *doc, int is_fields,
                           const char *id) {
  const char *v[3] = {doc, is_fields ? "fields" : "item", id};
  char *why = NULL;
  int found = 0;
  th_result r = bind(q, q->st[ST_CHECK], what, 3, v);
  if (r == TH_OK)
    r = run(q, q->st[ST_CHECK], what, &found, &why, NULL);
  if (r == TH_OK && why)
    r = fail(q, TH_ERR_INVALID, what, why);
  free(why);
  return r;
}

static th_result sq_create(th_store *s, const char *id, const char *item) {
  sq_store *q = (sq_store *)s;
  const char *v[3] = {id, item, s->owner};
  int found;
  th_result r;
  if ((r = check_id(q, "create", id)) != TH_OK || (r = check_doc(q, "create", item, 0, id)) != TH_OK ||
      (r = bind(q, q->st[ST_CREATE], "create", 3, v)) != TH_OK ||
      (r = run(q, q->st[ST_CREATE], "create", &found, NULL, NULL)) != TH_OK)
    return r;
  if (sqlite3_changes(q->db) == 0)
    return fail(q, TH_ERR_EXISTS, "create", "an item with that id exists");
  s->version = 1;
  return TH_OK;
}

/* The If-Match parameter of MATCH_SQL for s->match, in buf: NULL when
 * there is no condition. */
static const char *match_param(const th_store *s, char *buf, size_t len) {
  if (!s->match.active)
    return NULL;
  if (s->match.any)
    return "*";
  size_t used = (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < s->match.n && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "", s->match.versions[i]);
  if (used < len)
    snprintf(buf + used, len - used, "]");
  return buf;
}

/* The version column's text (always a whole number the table wrote). */
static long long version_of(const char *text) {
  return text ? strtoll(text, NULL, 10) : 1;
}

/* A write that found no row: under an If-Match condition that is the
 * condition failing (store.h), else the item missing. */
static th_result no_row(sq_store *q, const char *what) {
  if (q->base.match.active)
    return fail(q, TH_ERR_PRECONDITION, what, "If-Match condition failed");
  return fail(q, TH_ERR_NOT_FOUND, what, "no item with that id");
}

/* get and remove differ only in the statement: both return one doc by id,
 * and its version. */
static th_result by_id(sq_store *q, int which, const char *what, const char *id, char **out) {
  char mbuf[TH_STORE_MAX_MATCH * 21 + 3];
  const char *v[3] = {id, q->base.owner, match_param(&q->base, mbuf, sizeof mbuf)};
  int found = 0;
  char *doc = NULL, *version = NULL;
  th_result r;
  if ((r = check_id(q, what, id)) != TH_OK ||
      (r = bind(q, q->st[which], what, which == ST_REMOVE ? 3 : 2, v)) != TH_OK ||
      (r = run(q, q->st[which], what, &found, &doc, &version)) != TH_OK)
    return r;
  if (!found)
    return which == ST_REMOVE ? no_row(q, what) : fail(q, TH_ERR_NOT_FOUND, what, "no item with that id");
  q->base.version = version_of(version);
  free(version);
  *out = doc;
  return TH_OK;
}

static th_result sq_get(th_store *s, const char *id, char **item_out) {
  return by_id((sq_store *)s, ST_GET, "get", id, item_out);
}

static th_result sq_remove(th_store *s, const char *id, char **old_out) {
  return by_id((sq_store *)s, ST_REMOVE, "remove", id, old_out);
}

static th_result sq_update(th_store *s, const char *id, const char *fields, char **item_out) {
  sq_store *q = (sq_store *)s;
  char mbuf[TH_STORE_MAX_MATCH * 21 + 3];
  const char *v[4] = {fields, id, s->owner, match_param(s, mbuf, sizeof mbuf)};
  int found = 0;
  char *doc = NULL, *version = NULL;
  th_result r;
  if ((r = check_id(q, "update", id)) != TH_OK ||
      (r = check_doc(q, "update", fields, 1, NULL)) != TH_OK ||
      (r = bind(q, q->st[ST_UPDATE], "update", 4, v)) != TH_OK ||
      (r = run(q, q->st[ST_UPDATE], "update", &found, &doc, &version)) != TH_OK)
    return r;
  if (!found)
    return no_row(q, "update");
  s->version = version_of(version);
  free(version);
  *item_out = doc;
  return TH_OK;
}

static th_result sq_scan(th_store *s, int limit, const char *after_id, char **items_out,
                         char **last_id_out) {
  sq_store *q = (sq_store *)s;
  sqlite3_stmt *st = q->st[after_id ? ST_SCAN_AFTER : ST_SCAN];
  const char *v[3] = {s->owner, NULL, after_id};
  char *items = NULL, *last = NULL;
  int found = 0, rc;
  th_result r;
  if (!s->owner[0])
    return fail(q, TH_ERR_INTERNAL, "scan", "no owner bound to the store");
  if (limit < 1 || limit > 1000)
    return fail(q, TH_ERR_INVALID, "scan", "limit must be 1..1000");
  if (after_id && (r = check_id(q, "scan", after_id)) != TH_OK)
    return r;
  if ((r = bind(q, st, "scan", after_id ? 3 : 1, v)) != TH_OK)
    return r;
  if ((rc = sqlite3_bind_int(st, 2, limit)) != SQLITE_OK) {
    r = fail(q, map_rc(rc), "scan", sqlite3_errmsg(q->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
  }
  if ((r = run(q, st, "scan", &found, &items, &last)) != TH_OK)
    return r;
  if (!found || !items) {
    free(items);
    free(last);
    return fail(q, TH_ERR_INTERNAL, "scan", "no result row");
  }
  *items_out = items;
  *last_id_out = last;
  return TH_OK;
}

/* ---- idempotency records (store.h) ---- */

static th_result bind_int(sq_store *q, sqlite3_stmt *st, const char *what, int i, long long v) {
  int rc = sqlite3_bind_int64(st, i, v);
  if (rc == SQLITE_OK)
    return TH_OK;
  th_result r = fail(q, map_rc(rc), what, sqlite3_errmsg(q->db));
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return r;
}

/* BEGIN IMMEDIATE: the write lock first, waited for by on_busy. */
static th_result tx_begin(sq_store *q, const char *what) {
  q->gave_up = NULL;
  q->busy_since = th_now_ms();
  int rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    return TH_OK;
  return fail(q, (rc & 0xff) == SQLITE_BUSY && q->gave_up ? TH_ERR_TIMEOUT : map_rc(rc), what,
              sqlite3_errmsg(q->db));
}

/* COMMIT when r is TH_OK (its failure becomes r), else ROLLBACK. */
static th_result tx_end(sq_store *q, const char *what, th_result r) {
  if (r == TH_OK && sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    r = fail(q, map_rc(sqlite3_errcode(q->db)), what, sqlite3_errmsg(q->db));
  if (r != TH_OK && !sqlite3_get_autocommit(q->db))
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
  return r;
}

static th_result idem_find(sq_store *q, const th_store_idem *rq, char **verdict, char **response) {
  sqlite3_stmt *st = q->st[ST_IDEM_FIND];
  const char *v[2] = {q->base.owner, rq->key};
  int found = 0;
  th_result r;
  if ((r = bind(q, st, "idem_begin", 2, v)) != TH_OK ||
      (r = bind_int(q, st, "idem_begin", 3, rq->now_ms / 1000)) != TH_OK ||
      (r = bind_int(q, st, "idem_begin", 4, rq->now_ms)) != TH_OK)
    return r;
  if (sqlite3_bind_text(st, 5, rq->fingerprint, -1, SQLITE_STATIC) != SQLITE_OK) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return fail(q, TH_ERR_INTERNAL, "idem_begin", sqlite3_errmsg(q->db));
  }
  return run(q, st, "idem_begin", &found, verdict, response);
}

static th_result sq_idem_begin(th_store *s, const th_store_idem *rq, th_idem_state *state,
                               char **response_out) {
  sq_store *q = (sq_store *)s;
  char *verdict = NULL, *response = NULL;
  th_idem_state got = TH_IDEM_NEW;
  th_result r;
  if (!s->owner[0])
    return fail(q, TH_ERR_INTERNAL, "idem_begin", "no owner bound to the store");
  if ((r = tx_begin(q, "idem_begin")) != TH_OK)
    return r;
  if ((r = idem_find(q, rq, &verdict, &response)) != TH_OK)
    goto out;
  if (verdict && strcmp(verdict, "new") != 0) {
    got = strcmp(verdict, "mismatch") == 0 ? TH_IDEM_MISMATCH
          : strcmp(verdict, "replay") == 0 ? TH_IDEM_REPLAY
                                           : TH_IDEM_IN_FLIGHT;
    if (got == TH_IDEM_REPLAY && !response)
      r = fail(q, TH_ERR_INTERNAL, "idem_begin", "a completed record without its response");
    goto out;
  }
  sqlite3_stmt *st = q->st[ST_IDEM_CLAIM];
  const char *v[4] = {s->owner, rq->key, rq->fingerprint, rq->token};
  int found = 0;
  if ((r = bind(q, st, "idem_begin", 4, v)) != TH_OK ||
      (r = bind_int(q, st, "idem_begin", 5, rq->expires_at)) != TH_OK ||
      (r = bind_int(q, st, "idem_begin", 6, rq->locked_until_ms)) != TH_OK)
    goto out;
  r = run(q, st, "idem_begin", &found, NULL, NULL);
out:
  r = tx_end(q, "idem_begin", r);
  if (r == TH_OK) {
    *state = got;
    if (got == TH_IDEM_REPLAY) {
      *response_out = response;
      response = NULL;
    }
  }
  free(verdict);
  free(response);
  return r;
}

static th_result sq_idem_commit(th_store *s, const th_store_idem *rq, const char *response) {
  sq_store *q = (sq_store *)s;
  const char *v[4] = {s->owner, rq->key, rq->token, response};
  int found = 0;
  th_result r;
  if (!rq->pending_id || !rq->pending_item)
    return fail(q, TH_ERR_INTERNAL, "idem_commit", "no create to commit");
  if ((r = tx_begin(q, "idem_commit")) != TH_OK)
    return r;
  if ((r = sq_create(s, rq->pending_id, rq->pending_item)) != TH_OK)
    goto out;
  if ((r = bind(q, q->st[ST_IDEM_COMPLETE], "idem_commit", 4, v)) != TH_OK ||
      (r = run(q, q->st[ST_IDEM_COMPLETE], "idem_commit", &found, NULL, NULL)) != TH_OK)
    goto out;
  if (sqlite3_changes(q->db) == 0)
    r = fail(q, TH_ERR_PRECONDITION, "idem_commit", "the key's claim is no longer this request's");
out:
  return tx_end(q, "idem_commit", r);
}

static th_result sq_idem_release(th_store *s, const th_store_idem *rq) {
  sq_store *q = (sq_store *)s;
  const char *v[3] = {s->owner, rq->key, rq->token};
  int found = 0;
  th_result r = bind(q, q->st[ST_IDEM_RELEASE], "idem_release", 3, v);
  if (r == TH_OK)
    r = run(q, q->st[ST_IDEM_RELEASE], "idem_release", &found, NULL, NULL);
  return r;
}

static void sq_close(th_store *s) {
  sq_store *q = (sq_store *)s;
  if (!q)
    return;
  for (int i = 0; i < ST_COUNT; i++)
    sqlite3_finalize(q->st[i]);
  sqlite3_close(q->db);
  free(q);
}

/* *out: the 1 | 0 | no row (-1) a schema query answers. */
static th_result ask(sq_store *q, const char *sql, int *out) {
  sqlite3_stmt *st = NULL;
  char *has = NULL;
  int found = 0;
  if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
    return fail(q, map_rc(sqlite3_errcode(q->db)), "open", sqlite3_errmsg(q->db));
  th_result r = run(q, st, "open", &found, &has, NULL);
  sqlite3_finalize(st);
  if (r == TH_OK)
    *out = !found ? -1 : has && strcmp(has, "1") == 0 ? 1 : 0;
  free(has);
  return r;
}

/* *out: 2 when items has the current schema (versions, idempotency
 * records), 1 the owner-keyed one without them, 0 the id-keyed one, -1 none. */
static th_result schema_of(sq_store *q, int *out) {
  int keyed = 0, current = 0;
  th_result r = ask(q, schema_sql, &keyed);
  if (r == TH_OK && keyed == 1)
    r = ask(q, current_sql, &current);
  if (r == TH_OK)
    *out = keyed == 1 ? 1 + (current == 1) : keyed;
  return r;
}

/* Adds what schema 1 lacks (idempotent: each piece only when missing). */
static th_result upgrade_schema(sq_store *q) {
  int has_version = 0;
  th_result r = ask(q, version_sql, &has_version);
  if (r == TH_OK && has_version != 1 &&
      sqlite3_exec(q->db, add_version_sql, NULL, NULL, NULL) != SQLITE_OK)
    r = fail(q, map_rc(sqlite3_errcode(q->db)), "adding versions", sqlite3_errmsg(q->db));
  if (r == TH_OK && sqlite3_exec(q->db, idem_table_sql, NULL, NULL, NULL) != SQLITE_OK)
    r = fail(q, map_rc(sqlite3_errcode(q->db)), "creating the idempotency table",
             sqlite3_errmsg(q->db));
  return r;
}

/* Creates the table, or migrates the id-keyed one (file comment), unless
 * the file has the current schema. The write lock is taken first and the
 * schema read again under it: of several workers opening one file, one
 * migrates and the others find it done. On failure *why says why and
 * nothing has changed. */
static th_result ensure_schema(sq_store *q, const char **why) {
  int schema = 0;
  th_result r = schema_of(q, &schema);
  if (r != TH_OK || schema == 2)
    goto out;
  if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    r = fail(q, map_rc(sqlite3_errcode(q->db)), "open", sqlite3_errmsg(q->db));
    goto out;
  }
  if ((r = schema_of(q, &schema)) == TH_OK && schema < 1 &&
      sqlite3_exec(q->db, schema < 0 ? TABLE_SQL("items") : migrate_sql, NULL, NULL, NULL) !=
          SQLITE_OK)
    r = fail(q, map_rc(sqlite3_errcode(q->db)),
             schema < 0 ? "creating the table" : "migrating the id-keyed table",
             sqlite3_errmsg(q->db));
  if (r == TH_OK && schema < 2)
    r = upgrade_schema(q);
  if (r == TH_OK && sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    r = fail(q, map_rc(sqlite3_errcode(q->db)), "open", sqlite3_errmsg(q->db));
  if (r != TH_OK)
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
  else if (schema == 0)
    th_log(TH_LOG_INFO, NULL, "sqlite: id-keyed table migrated, its items now belong to "
                              "the owner '" TH_STORE_PUBLIC_OWNER "'", NULL, 0);
out:
  if (r != TH_OK)
    *why = q->base.error;
  return r;
}

static const th_store_ops sq_ops = {sq_create,     sq_get,         sq_update,
                                    sq_remove,     sq_scan,        sq_close,
                                    NULL,          sq_idem_begin,  sq_idem_commit,
                                    sq_idem_release};

/* Cursors are bound to the identity, so it must name the file the same way
 * whatever the working directory: realpath of the directory + the file name
 * (the file itself may be a fresh one). */
static int make_identity(const char *path, char *out, size_t outlen) {
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX] = ".";
  if (slash) {
    size_t n = slash == path ? 1 : (size_t)(slash - path); /* "/x.db": the root */
    if (n >= sizeof dir)
      return -1;
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  char *abs = realpath(dir, NULL);
  if (!abs)
    return -1;
  int n = snprintf(out, outlen, "sqlite:%s%s%s", abs, strcmp(abs, "/") ? "/" : "",
                   slash ? slash + 1 : path);
  free(abs);
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

th_store *th_store_sqlite_open(const char *path, char *err, size_t errlen) {
  sq_store *q = NULL;
  sqlite3_stmt *jm = NULL;
  char *mode = NULL;
  const char *why = "out of memory";
  int found = 0;
  th_result r;
  if (!path || !path[0]) {
    snprintf(err, errlen, "cannot open SQLite database: empty path");
    return NULL;
  }
  if (!(q = calloc(1, sizeof *q)))
    goto fail;
  q->base.ops = &sq_ops;
  /* The busy handler goes first: switching a fresh file to WAL and creating
   * the table race with the other workers opening it at the same time.
   * journal_mode=WAL answers with the mode it got rather than failing. */
  if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK ||
      sqlite3_busy_handler(q->db, on_busy, q) != SQLITE_OK ||
      sqlite3_prepare_v2(q->db, "PRAGMA journal_mode=WAL", -1, &jm, NULL) != SQLITE_OK)
    goto fail_db;
  /* Switching a fresh file to WAL while another connection opens it can fail
   * with SQLITE_BUSY without ever calling the busy handler: retry ourselves. */
  double t0 = th_now_ms();
  while ((r = run(q, jm, "open", &found, &mode, NULL)) == TH_ERR_UNAVAILABLE &&
         th_now_ms() - t0 < BUSY_TIMEOUT_MS)
    sqlite3_sleep(5);
  if (r != TH_OK) {
    why = q->base.error;
    goto fail;
  }
  if (!mode || strcmp(mode, "wal") != 0) {
    why = "the database could not be switched to WAL mode";
    goto fail;
  }
  if (sqlite3_exec(q->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK)
    goto fail_db;
  if (ensure_schema(q, &why) != TH_OK)
    goto fail;
  for (int i = 0; i < ST_COUNT; i++)
    if (sqlite3_prepare_v3(q->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) !=
        SQLITE_OK)
      goto fail_db;
  if (make_identity(path, q->base.identity, sizeof q->base.identity) != 0) {
    why = "cannot resolve its absolute path";
    goto fail;
  }
  sqlite3_finalize(jm);
  free(mode);
  return &q->base;
fail_db:
  if (q->db)
    why = sqlite3_errmsg(q->db);
fail:
  snprintf(err, errlen, "cannot open SQLite database '%s': %s", path, why);
  sqlite3_finalize(jm);
  free(mode);
  sq_close(q ? &q->base : NULL);
  return NULL;
}
