/* The SQLite backend: the shared store contract suite on fresh files, then
 * what only this backend has — files, reopening, identity, the migration of
 * a file of the id-keyed schema (in place, once, atomic, also when several
 * handles open it at once), several handles in several threads on one file,
 * and waiting for another connection's lock: up to the busy timeout without
 * a deadline, up to the operation's deadline, or until the stop flag is
 * raised. Outside the contract suite the store is bound to the owner
 * "public" (auth off). */
#include "check.h"
#include "store.h"
#include "store_contract.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#define THREADS 4
#define ITERS 150

static char dir[] = "/tmp/th_store_sqlite_XXXXXX";
static int seq;

static void path_of(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", dir, name);
}

static th_store *open_path(const char *name) {
  char path[PATH_MAX], err[512];
  path_of(path, sizeof path, name);
  th_store *s = th_store_sqlite_open(path, err, sizeof err);
  if (!s)
    fprintf(stderr, "open %s: %s\n", path, err);
  else
    th_store_set_owner(s, NULL);
  return s;
}

static th_store *open_fresh(void *ctx) {
  char name[64];
  snprintf(name, sizeof name, "contract%d.db", seq++);
  return open_path(name);
}

/* Counts the items of a whole scan (limit 1000); -1 on any failure. Uses
 * SQLite's JSON functions to count the array rather than parsing it here. */
static long count_items(th_store *s) {
  sqlite3 *j = NULL;
  sqlite3_stmt *st = NULL;
  char *after = NULL;
  long total = 0;
  if (sqlite3_open(":memory:", &j) != SQLITE_OK ||
      sqlite3_prepare_v2(j, "SELECT json_array_length(?1)", -1, &st, NULL) != SQLITE_OK)
    total = -1;
  while (total >= 0) {
    char *items = NULL, *last = NULL;
    if (s->ops->scan(s, 1000, after, &items, &last) != TH_OK) {
      total = -1;
      break;
    }
    sqlite3_bind_text(st, 1, items, -1, SQLITE_STATIC);
    total = sqlite3_step(st) == SQLITE_ROW ? total + sqlite3_column_int(st, 0) : -1;
    sqlite3_reset(st);
    free(items);
    free(after);
    after = last;
    if (!after)
      break;
  }
  free(after);
  sqlite3_finalize(st);
  sqlite3_close(j);
  return total;
}

static void test_contract(void) {
  int failed = th_store_contract_run(open_fresh, NULL, stdout);
  CHECK(failed == 0, "%d contract checks failed", failed);
}

/* limit+1 look-ahead: a full last page still ends the scan. Newest first:
 * descending id. */
static void test_page_edges(void) {
  th_store *s = open_path("edges.db");
  char *items = NULL, *last = NULL;
  CHECK(s, "open");
  if (!s)
    return;
  CHECK(s->ops->scan(s, 10, NULL, &items, &last) == TH_OK, "scan of an empty store");
  CHECK_STR(items, "[]");
  CHECK(last == NULL, "empty store: last_id %s", last);
  free(items);
  free(last);
  static const char *ids[] = {"d", "b", "a", "c"};
  for (size_t i = 0; i < TH_ARRAY_LEN(ids); i++) {
    char item[64];
    snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"}}", ids[i]);
    CHECK(s->ops->create(s, ids[i], item) == TH_OK, "create %s: %s", ids[i], s->error);
  }
  items = last = NULL;
  CHECK(s->ops->scan(s, 2, NULL, &items, &last) == TH_OK, "page 1");
  CHECK_STR(items, "[{\"id\":{\"S\":\"d\"}},{\"id\":{\"S\":\"c\"}}]");
  CHECK_STR(last, "c");
  free(items);
  free(last);
  items = last = NULL;
  CHECK(s->ops->scan(s, 2, "c", &items, &last) == TH_OK, "page 2");
  CHECK_STR(items, "[{\"id\":{\"S\":\"b\"}},{\"id\":{\"S\":\"a\"}}]");
  CHECK(last == NULL, "full last page: last_id %s", last);
  free(items);
  free(last);
  items = last = NULL;
  CHECK(s->ops->scan(s, 4, NULL, &items, &last) == TH_OK && last == NULL, "one full page: last %s", last);
  free(items);
  free(last);
  s->ops->close(s);
}

static void test_reopen_and_identity(void) {
  char want[PATH_MAX + 16], *item = NULL, *real = realpath(dir, NULL);
  th_store *s = open_path("reopen.db");
  CHECK(s && s->ops->create(s, "k", "{\"id\":{\"S\":\"k\"},\"v\":{\"N\":\"42\"}}") == TH_OK, "create");
  if (s)
    s->ops->close(s);
  s = open_path("reopen.db");
  CHECK(s && s->ops->get(s, "k", &item) == TH_OK, "get after reopen");
  CHECK_STR(item, "{\"id\":{\"S\":\"k\"},\"v\":{\"N\":\"42\"}}");
  free(item);
  snprintf(want, sizeof want, "sqlite:%s/reopen.db", real ? real : "?");
  CHECK_STR(s ? s->identity : NULL, want);
  if (s)
    s->ops->close(s);

  /* A relative path names the same data set as the absolute one. */
  char cwd[PATH_MAX], err[256];
  CHECK(getcwd(cwd, sizeof cwd) && chdir(dir) == 0, "chdir");
  s = th_store_sqlite_open("./reopen.db", err, sizeof err);
  CHECK(s && chdir(cwd) == 0, "relative open: %s", s ? "" : err);
  if (s)
    th_store_set_owner(s, NULL);
  CHECK_STR(s ? s->identity : NULL, want);
  if (s)
    s->ops->close(s);
  free(real);
}

static void test_open_failures(void) {
  char path[PATH_MAX], err[512] = "";
  path_of(path, sizeof path, "missing/dir/x.db");
  th_store *s = th_store_sqlite_open(path, err, sizeof err);
  CHECK(s == NULL, "open in a missing directory succeeded");
  CHECK(strstr(err, "cannot open SQLite database") && strstr(err, path) && !strchr(err, '\n'),
        "message: %s", err);
  printf("missing directory: %s\n", err);

  path_of(path, sizeof path, "garbage.db");
  FILE *f = fopen(path, "w");
  CHECK(f != NULL, "write garbage file");
  if (f) {
    for (int i = 0; i < 200; i++)
      fputs("this is not a database file. ", f);
    fclose(f);
  }
  err[0] = '\0';
  s = th_store_sqlite_open(path, err, sizeof err);
  CHECK(s == NULL && err[0], "open of a non-database succeeded");
  printf("not a database: %s\n", err);
  err[0] = '\0';
  CHECK(th_store_sqlite_open("", err, sizeof err) == NULL && err[0], "empty path");
}

/* Another connection holding the write lock past the busy timeout. */
static void test_busy(void) {
  char path[PATH_MAX];
  sqlite3 *other = NULL;
  th_store *s = open_path("busy.db");
  path_of(path, sizeof path, "busy.db");
  CHECK(s && sqlite3_open(path, &other) == SQLITE_OK &&
            sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
        "lock the file");
  double t0 = th_now_ms();
  th_result r = s ? s->ops->create(s, "x", "{\"id\":{\"S\":\"x\"}}") : TH_ERR_INTERNAL;
  CHECK(r == TH_ERR_UNAVAILABLE && s->error[0], "create while locked: %s (%s)", th_result_name(r),
        s ? s->error : "");
  CHECK(th_now_ms() - t0 >= 4000, "gave up after %.0f ms, before the busy timeout", th_now_ms() - t0);
  sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(other);
  r = s ? s->ops->create(s, "x", "{\"id\":{\"S\":\"x\"}}") : TH_ERR_INTERNAL;
  CHECK(r == TH_OK, "create after the lock is gone: %s", th_result_name(r));
  if (s)
    s->ops->close(s);
}

/* Another connection on the file, holding the write lock until unlock()
 * (WAL: readers go on). NULL when it cannot. */
static sqlite3 *lock_file(const char *name) {
  char path[PATH_MAX];
  sqlite3 *db = NULL;
  path_of(path, sizeof path, name);
  if (sqlite3_open(path, &db) != SQLITE_OK ||
      sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    fprintf(stderr, "lock %s: %s\n", name, db ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    return NULL;
  }
  return db;
}

static void unlock(sqlite3 *db) {
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);
}

/* Each write, blocked by another connection's lock, ends at its deadline
 * (store.h) with TH_ERR_TIMEOUT and a detail saying so — not after the busy
 * timeout; reads go on (WAL); all work again once the lock is gone. */
static void test_busy_deadline(void) {
  static const char *const names[] = {"create", "update", "get", "scan", "remove"};
  char *out = NULL, *last = NULL;
  th_store *s = open_path("deadline.db");
  CHECK(s && s->ops->create(s, "k", "{\"id\":{\"S\":\"k\"}}") == TH_OK, "create k");
  sqlite3 *other = lock_file("deadline.db");
  CHECK(other != NULL, "lock the file");
  if (!s || !other) {
    if (s)
      s->ops->close(s);
    return;
  }
  for (int locked = 1; locked >= 0; locked--) {
    if (!locked)
      unlock(other);
    for (int op = 0; op < 5; op++) {
      out = last = NULL;
      s->error[0] = '\0';
      double t0 = th_now_ms();
      s->deadline_ms = t0 + 300;
      th_result r = op == 0   ? s->ops->create(s, "n", "{\"id\":{\"S\":\"n\"}}")
                    : op == 1 ? s->ops->update(s, "k", "{\"v\":{\"N\":\"1\"}}", &out)
                    : op == 2 ? s->ops->get(s, "k", &out)
                    : op == 3 ? s->ops->scan(s, 10, NULL, &out, &last)
                              : s->ops->remove(s, "k", &out);
      const char *name = names[op];
      double ms = th_now_ms() - t0;
      s->deadline_ms = 0;
      if (locked && op != 2 && op != 3) { /* a write */
        CHECK(r == TH_ERR_TIMEOUT, "%s while locked: %s (%s)", name, th_result_name(r), s->error);
        CHECK(strstr(s->error, "locked") && strstr(s->error, "deadline"), "%s: detail: %s", name,
              s->error);
        CHECK(ms >= 250 && ms < 1300, "%s: gave up after %.0f ms, deadline 300 ms", name, ms);
        CHECK(out == NULL, "%s: output written on failure", name);
      } else {
        CHECK(r == TH_OK, "%s %s: %s (%s)", name, locked ? "while locked (a read)" : "after",
              th_result_name(r), s->error);
      }
      free(out);
      free(last);
    }
  }
  s->ops->close(s);
}

typedef struct raiser {
  atomic_int *flag;
  int after_ms;
} raiser;

static void *raise_later(void *arg) {
  raiser *r = arg;
  struct timespec ts = {r->after_ms / 1000, (long)(r->after_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  atomic_store(r->flag, 1);
  return NULL;
}

/* A raised stop flag ends a wait for a lock at once, deadline or none. */
static void test_busy_stop(void) {
  atomic_int flag = 0;
  pthread_t t;
  raiser rs = {&flag, 200};
  th_store *s = open_path("stop.db");
  sqlite3 *other = lock_file("stop.db");
  CHECK(s && other, "open and lock");
  if (!s || !other) {
    if (s)
      s->ops->close(s);
    if (other)
      unlock(other);
    return;
  }
  s->stop = &flag;
  pthread_create(&t, NULL, raise_later, &rs);
  double t0 = th_now_ms();
  th_result r = s->ops->create(s, "x", "{\"id\":{\"S\":\"x\"}}");
  double ms = th_now_ms() - t0;
  pthread_join(t, NULL);
  CHECK(r == TH_ERR_TIMEOUT && strstr(s->error, "stop"), "create when stopped: %s (%s)",
        th_result_name(r), s->error);
  CHECK(ms >= 150 && ms < 1000, "stopped after %.0f ms, flag raised at 200 ms", ms);
  unlock(other);
  atomic_store(&flag, 0);
  CHECK(s->ops->create(s, "x", "{\"id\":{\"S\":\"x\"}}") == TH_OK, "create after: %s", s->error);
  s->ops->close(s);
}

typedef struct worker {
  int n;
  pthread_barrier_t *start;
  int failures;
  char first_error[600];
} worker;

/* Each worker opens its own handle on a new file at the same moment as the
 * others (racing the switch to WAL and the table creation), then interleaves creates of its own items with updates
 * of its items and of one item they all share. */
static void *work(void *arg) {
  worker *w = arg;
  char name[64], id[64], doc[128], *out;
  pthread_barrier_wait(w->start);
  th_store *s = open_path("threads.db");
  if (!s) {
    w->failures++;
    return NULL;
  }
  th_result r0 = s->ops->create(s, "shared", "{\"id\":{\"S\":\"shared\"}}");
  if (r0 != TH_OK && r0 != TH_ERR_EXISTS && !w->failures++)
    snprintf(w->first_error, sizeof w->first_error, "create shared: %s", s->error);
  for (int i = 0; i < ITERS; i++) {
    snprintf(id, sizeof id, "t%d-%03d", w->n, i);
    snprintf(doc, sizeof doc, "{\"id\":{\"S\":\"%s\"},\"i\":{\"N\":\"%d\"}}", id, i);
    snprintf(name, sizeof name, "{\"by\":{\"S\":\"t%d\"},\"i\":{\"N\":\"%d\"}}", w->n, i);
    th_result r[3];
    out = NULL;
    r[0] = s->ops->create(s, id, doc);
    r[1] = s->ops->update(s, id, name, &out);
    free(out);
    out = NULL;
    r[2] = s->ops->update(s, "shared", name, &out);
    free(out);
    for (int k = 0; k < 3; k++)
      if (r[k] != TH_OK && !w->failures++)
        snprintf(w->first_error, sizeof w->first_error, "%s: %s", th_result_name(r[k]), s->error);
  }
  s->ops->close(s);
  return NULL;
}

static void test_threads(void) {
  pthread_t t[THREADS];
  worker w[THREADS];
  pthread_barrier_t start;
  th_store *s;
  pthread_barrier_init(&start, NULL, THREADS);
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){.n = i, .start = &start};
    pthread_create(&t[i], NULL, work, &w[i]);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    CHECK(w[i].failures == 0, "thread %d: %d failures, first: %s", i, w[i].failures, w[i].first_error);
  }
  pthread_barrier_destroy(&start);
  s = open_path("threads.db");
  long n = s ? count_items(s) : -1;
  CHECK(n == THREADS * ITERS + 1, "%ld items after the threads, want %d", n, THREADS * ITERS + 1);
  if (s)
    s->ops->close(s);
}

/* ---- migration of the id-keyed schema ---- */

#define OLD_ITEMS 300

/* Writes `name` as the store before accounts left it: table items(id
 * PRIMARY KEY, doc), WAL, `n` items "old-0000".. (item 7 with a user_id
 * attribute, as a custom route could have stored), plus one row whose doc
 * is `bad` as is when not NULL. 0 on success. */
static int make_old_file(const char *name, int n, const char *bad) {
  char path[PATH_MAX], id[32], doc[160];
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc = -1;
  path_of(path, sizeof path, name);
  if (sqlite3_open(path, &db) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
                       "CREATE TABLE items (id TEXT PRIMARY KEY NOT NULL, doc TEXT NOT NULL)"
                       " WITHOUT ROWID", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "INSERT INTO items (id, doc) VALUES (?1, json(?2))", -1, &st, NULL) !=
          SQLITE_OK)
    goto out;
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof id, "old-%04d", i);
    snprintf(doc, sizeof doc, "{\"id\":{\"S\":\"%s\"},\"n\":{\"N\":\"%d\"}%s}", id, i,
             i == 7 ? ",\"user_id\":{\"S\":\"stale\"}" : "");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, doc, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
      goto out;
    sqlite3_reset(st);
  }
  if (bad) {
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO items (id, doc) VALUES ('old-bad', ?1)", -1, &st,
                           NULL) != SQLITE_OK)
      goto out;
    sqlite3_bind_text(st, 1, bad, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
      goto out;
  }
  rc = 0;
out:
  if (rc)
    fprintf(stderr, "make_old_file %s: %s\n", name, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

/* One integer read from `name` with a plain connection; -1 on error. */
static long file_query(const char *name, const char *sql) {
  char path[PATH_MAX];
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  long v = -1;
  path_of(path, sizeof path, name);
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

#define HAS_OWNER_COLUMN "SELECT count(*) FROM pragma_table_info('items') WHERE name = 'user_id'"
#define LEFTOVER_TABLES "SELECT count(*) FROM sqlite_schema WHERE name NOT IN ('items', 'idempotency')"

typedef struct opener {
  const char *name;
  pthread_barrier_t *start;
  long count;
} opener;

static void *open_and_count(void *arg) {
  opener *o = arg;
  pthread_barrier_wait(o->start);
  th_store *s = open_path(o->name);
  o->count = s ? count_items(s) : -2;
  if (s)
    s->ops->close(s);
  return NULL;
}

/* A developer's ./taskhost.db of the id-keyed schema keeps its tasks: they
 * belong to "public" (auth off), listed newest first, invisible to another
 * owner; reopening changes nothing; several handles opening it at once
 * migrate it once; a migration that fails leaves the file as it was. */
static void test_migrate(void) {
  char *item = NULL, *items = NULL, *last = NULL, err[512] = "";
  CHECK(make_old_file("old.db", OLD_ITEMS, NULL) == 0, "write the old file");
  CHECK(file_query("old.db", HAS_OWNER_COLUMN) == 0, "the old file has no user_id column");
  th_store *s = open_path("old.db");
  CHECK(s, "open of the old file");
  if (!s)
    return;
  CHECK(file_query("old.db", HAS_OWNER_COLUMN) == 1, "migrated: user_id column");
  CHECK(file_query("old.db", "SELECT count(*) FROM items WHERE user_id = 'public'") == OLD_ITEMS,
        "migrated: every row belongs to public");
  CHECK(file_query("old.db", LEFTOVER_TABLES) == 0, "migrated: no table left over");
  CHECK(count_items(s) == OLD_ITEMS, "public's items after the migration: %ld", count_items(s));
  CHECK(s->ops->get(s, "old-0007", &item) == TH_OK, "get of an old item: %s", s->error);
  CHECK_STR(item, "{\"id\":{\"S\":\"old-0007\"},\"n\":{\"N\":\"7\"}}");
  free(item);
  CHECK(s->ops->scan(s, 2, NULL, &items, &last) == TH_OK, "first page: %s", s->error);
  CHECK_STR(items, "[{\"id\":{\"S\":\"old-0299\"},\"n\":{\"N\":\"299\"}},"
                   "{\"id\":{\"S\":\"old-0298\"},\"n\":{\"N\":\"298\"}}]");
  free(items);
  free(last);
  th_store_set_owner(s, "someone");
  item = NULL;
  CHECK(s->ops->get(s, "old-0001", &item) == TH_ERR_NOT_FOUND && !item, "another owner's get");
  CHECK(count_items(s) == 0, "another owner's list: %ld items", count_items(s));
  th_store_set_owner(s, NULL);
  CHECK(s->ops->create(s, "new-1", "{\"id\":{\"S\":\"new-1\"}}") == TH_OK, "create: %s", s->error);
  s->ops->close(s);

  s = open_path("old.db");
  CHECK(s && count_items(s) == OLD_ITEMS + 1, "reopened: %ld items", s ? count_items(s) : -1);
  CHECK(file_query("old.db", "SELECT count(*) FROM items") == OLD_ITEMS + 1, "reopened: rows");
  if (s)
    s->ops->close(s);

  /* Workers of --serve open one file at the same moment. */
  pthread_t t[THREADS];
  opener o[THREADS];
  pthread_barrier_t start;
  CHECK(make_old_file("old-race.db", OLD_ITEMS, NULL) == 0, "write the second old file");
  pthread_barrier_init(&start, NULL, THREADS);
  for (int i = 0; i < THREADS; i++) {
    o[i] = (opener){.name = "old-race.db", .start = &start};
    pthread_create(&t[i], NULL, open_and_count, &o[i]);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    CHECK(o[i].count == OLD_ITEMS, "handle %d opening at once: %ld items", i, o[i].count);
  }
  pthread_barrier_destroy(&start);
  CHECK(file_query("old-race.db", "SELECT count(*) FROM items") == OLD_ITEMS,
        "opened at once: rows once");

  /* A row the migration cannot take (not JSON): nothing changes. */
  CHECK(make_old_file("old-bad.db", 10, "not json") == 0, "write the third old file");
  char path[PATH_MAX];
  path_of(path, sizeof path, "old-bad.db");
  s = th_store_sqlite_open(path, err, sizeof err);
  CHECK(!s && strstr(err, "migrating"), "open of a file that cannot migrate: %s", err);
  printf("failed migration: %s\n", err);
  if (s)
    s->ops->close(s);
  CHECK(file_query("old-bad.db", HAS_OWNER_COLUMN) == 0, "failed migration: schema kept");
  CHECK(file_query("old-bad.db", "SELECT count(*) FROM items") == 11, "failed migration: rows kept");
  CHECK(file_query("old-bad.db", LEFTOVER_TABLES) == 0, "failed migration: no table left over");
}

/* Removes the temp dir and every file the tests left in it. */
static void cleanup(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[PATH_MAX];
  while (d && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_contract();
  test_page_edges();
  test_reopen_and_identity();
  test_migrate();
  test_open_failures();
  test_threads();
  test_busy();
  test_busy_deadline();
  test_busy_stop();
  cleanup();
  return CHECK_DONE();
}
