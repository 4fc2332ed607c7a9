/* Unit tests for runtime/metrics: the EMF line for one sample, decoded with
 * cjson and checked member by member — the directives (namespace, dimension
 * sets, metric names and units), the status classes for each kind of status
 * (0 = none answered counts as 5xx), the store costs, the cold start (1 on the
 * first line only), the operation (a route name kept; empty, too long, or
 * holding anything but letters and digits → "Unmatched"), the properties
 * (left out when NULL, empty or not UTF-8; control characters escaped), the
 * Timestamp (given, or now), refused arguments at creation, and
 * th_metrics_emit writing exactly the encoded line and its newline. */
#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "metrics.h"

static lua_State *J;

/* Decodes the line into the global table `doc`; 0 when it is not JSON. */
static int decode(const char *line, size_t len) {
  lua_settop(J, 0);
  lua_getglobal(J, "cjson");
  lua_getfield(J, -1, "decode");
  lua_pushlstring(J, line, len);
  if (lua_pcall(J, 1, 1, 0) != LUA_OK || !lua_istable(J, -1))
    return 0;
  lua_setglobal(J, "doc");
  lua_settop(J, 0);
  return 1;
}

/* Evaluates a Lua boolean expression over `doc`. */
static int holds(const char *expr) {
  char code[2048];
  snprintf(code, sizeof code, "return (%s) == true", expr);
  lua_settop(J, 0);
  if (luaL_dostring(J, code) != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(J, -1));
    return 0;
  }
  return lua_toboolean(J, -1);
}

static th_metrics *fresh(void) {
  th_metrics *m = NULL;
  th_result rc = th_metrics_new("taskhost/test", "fn-1", "1.2.3+abc", "WARN", stdout, &m);
  CHECK(rc == TH_OK && m, "th_metrics_new: %d", rc);
  return m;
}

/* Encodes s with m and decodes it into doc. */
static int encode(th_metrics *m, const th_metrics_sample *s) {
  const char *line = NULL;
  size_t len = 0;
  if (th_metrics_encode(m, s, &line, &len) != TH_OK)
    return 0;
  CHECK(len > 0 && line[len - 1] == '}' && memchr(line, '\n', len) == NULL,
        "one line without its newline");
  return decode(line, len);
}

static void test_shape(void) {
  th_metrics *m = fresh();
  th_metrics_sample s = {.operation = "CreateTask", .status = 201, .latency_ms = 12.5,
                         .store = {.calls = 2, .retries = 3, .throttles = 1, .latency_ms = 7.25},
                         .request_id = "rid-1", .trace_id = "Root=1-a-b", .timestamp_ms = 1700000000123.0};
  CHECK(encode(m, &s), "encodes and decodes");
  CHECK(holds("doc._aws.Timestamp == 1700000000123"), "Timestamp given");
  CHECK(holds("#doc._aws.CloudWatchMetrics == 2"), "two directives");
  CHECK(holds("doc._aws.CloudWatchMetrics[1].Namespace == 'taskhost/test' and "
              "doc._aws.CloudWatchMetrics[2].Namespace == 'taskhost/test'"), "namespace");
  CHECK(holds("#doc._aws.CloudWatchMetrics[1].Dimensions == 1 and "
              "table.concat(doc._aws.CloudWatchMetrics[1].Dimensions[1], ',') == 'Service'"),
        "by Service");
  CHECK(holds("table.concat(doc._aws.CloudWatchMetrics[2].Dimensions[1], ',') == 'Service,Operation'"),
        "by Service and Operation");
  CHECK(holds("(function() local n = {} for _, x in ipairs(doc._aws.CloudWatchMetrics[1].Metrics) do "
              "n[#n + 1] = x.Name .. ':' .. x.Unit end return table.concat(n, ' ') end)() == "
              "'Requests:Count Latency:Milliseconds 2xx:Count 4xx:Count 5xx:Count StoreCalls:Count "
              "StoreLatency:Milliseconds StoreRetries:Count StoreThrottles:Count ColdStart:Count'"),
        "every metric by Service, with its unit");
  CHECK(holds("(function() local n = {} for _, x in ipairs(doc._aws.CloudWatchMetrics[2].Metrics) do "
              "n[#n + 1] = x.Name end return table.concat(n, ' ') end)() == "
              "'Requests Latency 4xx 5xx'"),
        "four metrics by Operation");
  CHECK(holds("doc.Service == 'fn-1' and doc.Operation == 'CreateTask'"), "dimension values");
  CHECK(holds("doc.Requests == 1 and doc.Latency == 12.5 and doc['2xx'] == 1 and doc['4xx'] == 0 "
              "and doc['5xx'] == 0"), "request and status class");
  CHECK(holds("doc.StoreCalls == 2 and doc.StoreRetries == 3 and doc.StoreThrottles == 1 and "
              "doc.StoreLatency == 7.25"), "store costs");
  CHECK(holds("doc.ColdStart == 1"), "first line: cold start");
  CHECK(holds("doc.requestId == 'rid-1' and doc.traceId == 'Root=1-a-b' and doc.version == '1.2.3+abc'"),
        "properties");
  CHECK(holds("doc.level == 'WARN'"), "level given at creation");
  CHECK(encode(m, &s), "second line");
  CHECK(holds("doc.ColdStart == 0"), "second line: no cold start");
  CHECK(encode(m, &s) && holds("doc.ColdStart == 0"), "third line: no cold start");
  th_metrics_free(m);
}

static void test_status_classes(void) {
  static const struct {
    int status, c2, c4, c5;
  } cases[] = {{200, 1, 0, 0}, {201, 1, 0, 0}, {204, 1, 0, 0}, {299, 1, 0, 0}, {304, 0, 0, 0},
               {400, 0, 1, 0}, {401, 0, 1, 0}, {404, 0, 1, 0}, {413, 0, 1, 0}, {499, 0, 1, 0},
               {500, 0, 0, 1}, {503, 0, 0, 1}, {0, 0, 0, 1}};
  th_metrics *m = fresh();
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    th_metrics_sample s = {.operation = "GetTask", .status = cases[i].status};
    char expr[160];
    snprintf(expr, sizeof expr, "doc['2xx'] == %d and doc['4xx'] == %d and doc['5xx'] == %d",
             cases[i].c2, cases[i].c4, cases[i].c5);
    CHECK(encode(m, &s) && holds(expr), "status %d", cases[i].status);
  }
  th_metrics_free(m);
}

static void test_operations(void) {
  char long_name[80];
  memset(long_name, 'A', 64);
  long_name[64] = '\0';
  char max_name[80];
  memset(max_name, 'B', 63);
  max_name[63] = '\0';
  static const char *const unmatched[] = {NULL, "", "Create Task", "/tasks/123", "Get-Task",
                                          "t\xc3\xa2" "che", "a\nb"};
  th_metrics *m = fresh();
  for (size_t i = 0; i < TH_ARRAY_LEN(unmatched); i++) {
    th_metrics_sample s = {.operation = unmatched[i], .status = 404};
    CHECK(encode(m, &s) && holds("doc.Operation == 'Unmatched'"), "operation #%zu", i);
  }
  th_metrics_sample s = {.operation = long_name, .status = 200};
  CHECK(encode(m, &s) && holds("doc.Operation == 'Unmatched'"), "64 bytes: unmatched");
  s.operation = max_name;
  char expr[128];
  snprintf(expr, sizeof expr, "doc.Operation == '%s'", max_name);
  CHECK(encode(m, &s) && holds(expr), "63 bytes: kept");
  s.operation = "ListTasks2";
  CHECK(encode(m, &s) && holds("doc.Operation == 'ListTasks2'"), "letters and digits: kept");
  th_metrics_free(m);
}

static void test_properties(void) {
  th_metrics *m = fresh();
  th_metrics_sample s = {.operation = "GetTask", .status = 200};
  CHECK(encode(m, &s) && holds("doc.requestId == nil and doc.traceId == nil and doc.version ~= nil"),
        "NULL properties left out");
  s.request_id = "";
  s.trace_id = "";
  CHECK(encode(m, &s) && holds("doc.requestId == nil and doc.traceId == nil"),
        "empty properties left out");
  s.request_id = "bad\xff\xfe";
  s.trace_id = "Root=1-\xc3";
  CHECK(encode(m, &s) && holds("doc.requestId == nil and doc.traceId == nil"),
        "properties that are not UTF-8 left out");
  s.request_id = "line\nbreak\"quote";
  CHECK(encode(m, &s) && holds("doc.requestId == 'line\\nbreak\"quote'"),
        "control characters and quotes escaped, value kept");
  th_metrics_free(m);
}

static void test_timestamp_now(void) {
  th_metrics *m = fresh();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double before = (double)ts.tv_sec * 1000 + (double)(ts.tv_nsec / 1000000);
  th_metrics_sample s = {.operation = "GetTask", .status = 200};
  CHECK(encode(m, &s), "encodes");
  clock_gettime(CLOCK_REALTIME, &ts);
  double after = (double)ts.tv_sec * 1000 + (double)(ts.tv_nsec / 1000000);
  char expr[200];
  snprintf(expr, sizeof expr,
           "math.type(doc._aws.Timestamp) ~= nil and doc._aws.Timestamp >= %.0f and "
           "doc._aws.Timestamp <= %.0f and doc._aws.Timestamp == math.floor(doc._aws.Timestamp)",
           before, after);
  CHECK(holds(expr), "Timestamp: now, whole ms");
  th_metrics_free(m);
}

static void test_new_refuses(void) {
  th_metrics *m = NULL;
  char big[300];
  memset(big, 'n', 256);
  big[256] = '\0';
  CHECK(th_metrics_new("", "s", "v", NULL, stdout, &m) == TH_ERR_INVALID && !m, "empty namespace");
  CHECK(th_metrics_new(big, "s", "v", NULL, stdout, &m) == TH_ERR_INVALID && !m, "256-byte namespace");
  CHECK(th_metrics_new("n", "", "v", NULL, stdout, &m) == TH_ERR_INVALID && !m, "empty service");
  CHECK(th_metrics_new("n", "s", NULL, NULL, stdout, &m) == TH_ERR_INVALID && !m, "no version");
  CHECK(th_metrics_new("n", "s", "v", "A-LEVEL-NAME-TOO-LONG", stdout, &m) == TH_ERR_INVALID && !m,
        "level too long");
  CHECK(th_metrics_new("n", "s", "v", NULL, NULL, &m) == TH_ERR_INVALID && !m, "no stream");
  th_metrics_emit(NULL, &(th_metrics_sample){0}); /* NULL: nothing, no crash */
}

static void test_emit(void) {
  FILE *f = tmpfile();
  CHECK(f != NULL, "tmpfile");
  if (!f)
    return;
  th_metrics *m = NULL;
  CHECK(th_metrics_new("ns", "svc", "v", NULL, f, &m) == TH_OK, "new");
  th_metrics_sample s = {.operation = "DeleteTask", .status = 200, .latency_ms = 1,
                         .timestamp_ms = 1700000000000.0};
  th_metrics_emit(m, &s);
  th_metrics_emit(m, &s);
  long size = ftell(f);
  rewind(f);
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  CHECK(size > 0 && (size_t)size == n, "all written");
  char *nl = strchr(buf, '\n');
  CHECK(nl && nl[1] && strchr(nl + 1, '\n') == buf + n - 1, "two lines, each ended by a newline");
  if (nl) {
    CHECK(decode(buf, (size_t)(nl - buf)) && holds("doc.ColdStart == 1 and doc.Operation == 'DeleteTask' "
                                                   "and doc.level == nil"),
          "first line");
    CHECK(decode(nl + 1, strlen(nl + 1) - 1) && holds("doc.ColdStart == 0"), "second line");
  }
  th_metrics_free(m);
  fclose(f);
}

int main(void) {
  J = luaL_newstate();
  luaL_openlibs(J);
  luaL_requiref(J, "cjson", luaopen_cjson, 1);
  lua_pop(J, 1);
  test_shape();
  test_status_classes();
  test_operations();
  test_properties();
  test_timestamp_now();
  test_new_refuses();
  test_emit();
  lua_close(J);
  return CHECK_DONE();
}
