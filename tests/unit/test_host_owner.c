/* host_owner: the host binds the store to the request's owner (host.h:
 * th_invoke_ctx.owner, th_http_request.owner; NULL is auth off, "public"),
 * through the real routes (ROUTES_DIR) on a SQLite store. Another owner's
 * task is a 404 for GET, PUT and DELETE and absent from its list; a cursor
 * replayed by another owner is a 400 naming `next`; an owner the store cannot
 * hold is a 500 that writes nothing; the binding ends with the request. */
#include "check.h"
#include "config.h"
#include "event.h"
#include "host.h"
#include "store.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/th_host_owner_XXXXXX";
static th_host *host;
static th_store *store;
static sqlite3 *J; /* JSON engine for reading responses */
static char last_body[8192];

/* The body's field at path ("$.id") as text, from the last response. */
static char *field(const char *path) {
  static char out[8192];
  sqlite3_stmt *st = NULL;
  out[0] = '\0';
  if (sqlite3_prepare_v2(J, "SELECT json_extract(?1, ?2)", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, last_body, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
      snprintf(out, sizeof out, "%s", (const char *)sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  return out;
}

/* One v2 event as `owner`; returns the status, keeps the body. */
static int call(const char *owner, const char *method, const char *path, const char *query,
                const char *body) {
  char event[4096], *resp = NULL, err[256] = "";
  size_t len = 0;
  th_invoke_result res = {0};
  snprintf(event, sizeof event,
           "{\"version\":\"2.0\",\"rawPath\":\"%s\",\"rawQueryString\":\"%s\","
           "\"headers\":{\"content-type\":\"application/json\"},"
           "\"requestContext\":{\"http\":{\"method\":\"%s\",\"path\":\"%s\"}},"
           "\"body\":%s%s%s,\"isBase64Encoded\":false}",
           path, query, method, path, body ? "\"" : "", body ? body : "null", body ? "\"" : "");
  th_invoke_ctx ctx = {.owner = owner};
  th_result r = th_host_invoke(host, event, strlen(event), &ctx, &resp, &len, &res, err, sizeof err);
  CHECK(r == TH_OK, "%s %s: %s", method, path, err);
  last_body[0] = '\0';
  if (resp) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(J, "SELECT json_extract(?1, '$.body')", -1, &st, NULL) == SQLITE_OK) {
      sqlite3_bind_text(st, 1, resp, -1, SQLITE_STATIC);
      if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(last_body, sizeof last_body, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  free(resp);
  CHECK(!store->owner[0], "%s %s: the store is still bound to '%s' after the request", method,
        path, store->owner);
  return res.status;
}

static int count_of(const char *owner) {
  int st = call(owner, "GET", "/tasks", "limit=100", NULL);
  return st == 200 ? (int)strtol(field("$.count"), NULL, 10) : -1;
}

static void test_isolation(void) {
  char a1[64];
  CHECK(call("alice", "POST", "/tasks", "", "{\\\"task\\\":\\\"alice's\\\"}") == 201, "alice creates");
  snprintf(a1, sizeof a1, "%s", field("$.id"));
  char path[128];
  snprintf(path, sizeof path, "/tasks/%s", a1);
  CHECK(call("alice", "GET", path, "", NULL) == 200, "alice reads her task");
  CHECK_STR(field("$.task"), "alice's");
  CHECK(field("$.user_id")[0] == '\0', "the task holds no user_id: %s", last_body);
  const struct {
    const char *method, *body;
  } ops[] = {{"GET", NULL}, {"PUT", "{\\\"status\\\":\\\"completed\\\"}"}, {"DELETE", NULL}};
  const char *others[] = {"bob", NULL /* auth off: public */, "Alice", "alice "};
  for (size_t o = 0; o < TH_ARRAY_LEN(others); o++)
    for (size_t i = 0; i < TH_ARRAY_LEN(ops); i++) {
      int st = call(others[o], ops[i].method, path, "", ops[i].body);
      CHECK(st == 404 && !strcmp(field("$.message"), "Task not found"),
            "%s of alice's task as '%s': %d %s", ops[i].method, others[o] ? others[o] : "(public)",
            st, last_body);
    }
  CHECK(call("alice", "GET", path, "", NULL) == 200 && !strcmp(field("$.status"), "new"),
        "alice's task unchanged by the others: %s", last_body);
  CHECK(count_of("bob") == 0, "bob's list is empty");
  CHECK(count_of(NULL) == 0, "public's list is empty");
  CHECK(count_of("alice") == 1, "alice's list holds her task");

  /* A cursor is alice's: bob's replay is a 400 naming next. */
  CHECK(call("alice", "POST", "/tasks", "", "{\\\"task\\\":\\\"second\\\"}") == 201, "second");
  CHECK(call("alice", "GET", "/tasks", "limit=1", NULL) == 200, "alice's first page");
  CHECK_STR(field("$.items[0].task"), "second"); /* newest first */
  char q[4400];
  snprintf(q, sizeof q, "limit=1&next=%s", field("$.next"));
  CHECK(call("bob", "GET", "/tasks", q, NULL) == 400 && !strcmp(field("$.field"), "next"),
        "alice's cursor as bob: %s", last_body);
  CHECK(call(NULL, "GET", "/tasks", q, NULL) == 400, "alice's cursor as public: %s", last_body);
  CHECK(call("alice", "GET", "/tasks", q, NULL) == 200, "alice's cursor as alice");
  CHECK_STR(field("$.items[0].task"), "alice's");

  /* The same request over --serve's path: req->owner. */
  th_http_request req = {.method = "GET", .path = path, .raw_query = "", .source_ip = "127.0.0.1",
                         .request_id = "owner-http", .owner = "bob"};
  th_http_response out = {0};
  th_invoke_result res = {0};
  char err[256];
  CHECK(th_host_invoke_http(host, &req, &out, &res, err, sizeof err) == TH_OK && out.status == 404,
        "http: bob's GET of alice's task: %d", out.status);
  th_http_response_free(&out);
  req.owner = "alice";
  memset(&out, 0, sizeof out);
  CHECK(th_host_invoke_http(host, &req, &out, &res, err, sizeof err) == TH_OK && out.status == 200,
        "http: alice's GET: %d", out.status);
  th_http_response_free(&out);
  req.owner = NULL;
  memset(&out, 0, sizeof out);
  CHECK(th_host_invoke_http(host, &req, &out, &res, err, sizeof err) == TH_OK && out.status == 404,
        "http: no owner (auth off) GET: %d", out.status);
  th_http_response_free(&out);
}

/* An owner the store cannot hold (empty, or over TH_STORE_MAX_OWNER bytes):
 * 500, nothing written anywhere. */
static void test_bad_owner(void) {
  static char longest[TH_STORE_MAX_OWNER + 2];
  memset(longest, 'x', TH_STORE_MAX_OWNER + 1);
  const char *bad[] = {"", longest};
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
    int st = call(bad[i], "POST", "/tasks", "", "{\\\"task\\\":\\\"nobody's\\\"}");
    CHECK(st == 500, "create as an owner of %zu bytes: %d %s", strlen(bad[i]), st, last_body);
    CHECK(call(bad[i], "GET", "/tasks", "", NULL) == 500, "list as an owner of %zu bytes",
          strlen(bad[i]));
  }
  longest[TH_STORE_MAX_OWNER] = '\0'; /* the longest the store holds */
  CHECK(call(longest, "POST", "/tasks", "", "{\\\"task\\\":\\\"long owner\\\"}") == 201,
        "create as a TH_STORE_MAX_OWNER-byte owner");
  CHECK(count_of(longest) == 1, "its list");
  CHECK(count_of(NULL) == 0 && count_of("bob") == 0 && count_of("alice") == 2, "nothing leaked");
}

int main(void) {
  char err[512], path[PATH_MAX];
  const char *routes = getenv("ROUTES_DIR");
  th_config cfg;
  if (!routes || !mkdtemp(dir) || sqlite3_open(":memory:", &J) != SQLITE_OK) {
    fprintf(stderr, "needs ROUTES_DIR and a temp dir\n");
    return 1;
  }
  snprintf(path, sizeof path, "sqlite:%s/h.db", dir);
  setenv("TASKHOST_STORE", path, 1);
  setenv("TASKHOST_ROUTES", routes, 1);
  setenv("TASKHOST_LOG_LEVEL", "FATAL", 1);
  unsetenv("TABLE_NAME");
  if (th_config_from_env(&cfg, ".", err, sizeof err) != TH_OK ||
      !(store = th_store_sqlite_open(cfg.sqlite_path, err, sizeof err)) ||
      th_host_new(&cfg, store, &host, err, sizeof err) != TH_OK) {
    fprintf(stderr, "setup: %s\n", err);
    return 1;
  }
  test_isolation();
  test_bad_owner();
  th_host_free(host);
  store->ops->close(store);
  th_config_free(&cfg);
  sqlite3_close(J);
  static const char *const files[] = {"h.db", "h.db-wal", "h.db-shm"};
  for (size_t i = 0; i < TH_ARRAY_LEN(files); i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
  return CHECK_DONE();
}
