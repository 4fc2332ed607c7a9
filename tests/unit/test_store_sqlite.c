/* The SQLite backend: the shared store contract suite on fresh files, then
 * what only this backend has — files, reopening, identity, several handles in
 * several threads on one file, and waiting for another connection's lock:
 * up to the busy timeout without a deadline, up to the operation's deadline,
 * or until the stop flag is raised. */
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

/* limit+1 look-ahead: a full last page still ends the scan. */
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
  CHECK_STR(items, "[{\"id\":{\"S\":\"a\"}},{\"id\":{\"S\":\"b\"}}]");
  CHECK_STR(last, "b");
  free(items);
  free(last);
  items = last = NULL;
  CHECK(s->ops->scan(s, 2, "b", &items, &last) == TH_OK, "page 2");
  CHECK_STR(items, "[{\"id\":{\"S\":\"c\"}},{\"id\":{\"S\":\"d\"}}]");
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
  test_open_failures();
  test_threads();
  test_busy();
  test_busy_deadline();
  test_busy_stop();
  cleanup();
  return CHECK_DONE();
}
