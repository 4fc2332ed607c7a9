/* EMF lines, one per invocation (see metrics.h). */
#include "metrics.h"

#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "utf8.h"

#define MAX_OPERATION 63
#define MAX_LINE ((size_t)64 * 1024) /* far past any line (~1.1 KB); EMF allows 256 KB */
#define KEY_ENCODE "th.metrics.encode"
#define KEY_MEMBERS "th.metrics.members"

/* A line is the head — {"_aws":{"CloudWatchMetrics":<the directives, encoded
 * once by cjson at creation>,"Timestamp": — then the timestamp (an integer),
 * "},", and the root members encoded by cjson without their opening brace.
 * Every value is cjson's; only the constant frame and an integer are ours.
 * Encoding the directives (two thirds of the line, the same every time) once
 * halves the cost of a line (bench/hotpath.md). */
struct th_metrics {
  pthread_mutex_t lock;
  lua_State *L; /* cjson and the root members' table, reused line after line */
  th_buf head;  /* the constant head (above) */
  th_buf line;  /* the last line, with its newline */
  FILE *out;
  char ns[256];
  char service[256];
  char version[128];
  char level[16];   /* "" when none */
  int lines;    /* lines encoded so far: the first is the cold start */
};

typedef struct metric {
  const char *name;
  const char *unit;
  int per_operation; /* also in the [Service, Operation] directive */
} metric;

/* Every metric, in the order of the directives. */
static const metric metrics[] = {
    {"Requests", "Count", 1},         {"Latency", "Milliseconds", 1},
    {"2xx", "Count", 0},              {"4xx", "Count", 1},
    {"5xx", "Count", 1},              {"StoreCalls", "Count", 0},
    {"StoreLatency", "Milliseconds", 0}, {"StoreRetries", "Count", 0},
    {"StoreThrottles", "Count", 0},   {"ColdStart", "Count", 0},
};

/* The sample being encoded, handed to encode_protected. */
typedef struct job {
  const th_metrics *m;
  const th_metrics_sample *s;
  const char *operation;
  double values[TH_ARRAY_LEN(metrics)];
  long long timestamp;
} job;

static void push_directive(lua_State *L, const char *ns, int per_operation) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, ns);
  lua_setfield(L, -2, "Namespace");
  lua_createtable(L, 1, 0); /* Dimensions: one dimension set */
  lua_createtable(L, 2, 0);
  lua_pushliteral(L, "Service");
  lua_rawseti(L, -2, 1);
  if (per_operation) {
    lua_pushliteral(L, "Operation");
    lua_rawseti(L, -2, 2);
  }
  lua_rawseti(L, -2, 1);
  lua_setfield(L, -2, "Dimensions");
  lua_createtable(L, (int)TH_ARRAY_LEN(metrics), 0);
  int n = 0;
  for (size_t i = 0; i < TH_ARRAY_LEN(metrics); i++) {
    if (per_operation && !metrics[i].per_operation)
      continue;
    lua_createtable(L, 0, 2);
    lua_pushstring(L, metrics[i].name);
    lua_setfield(L, -2, "Name");
    lua_pushstring(L, metrics[i].unit);
    lua_setfield(L, -2, "Unit");
    lua_rawseti(L, -2, ++n);
  }
  lua_setfield(L, -2, "Metrics");
}

/* Builds what every line shares: cjson's encode, the head (the directives
 * encoded), and the members' table with the members that never change. */
static int setup_protected(lua_State *L) {
  th_metrics *m = lua_touserdata(L, 1);
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  lua_getfield(L, -1, "encode");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, KEY_ENCODE);
  lua_createtable(L, 2, 0);
  push_directive(L, m->ns, 0);
  lua_rawseti(L, -2, 1);
  push_directive(L, m->ns, 1);
  lua_rawseti(L, -2, 2);
  lua_call(L, 1, 1);
  size_t n;
  const char *cwm = lua_tolstring(L, -1, &n);
  if (th_buf_append_str(&m->head, "{\"_aws\":{\"CloudWatchMetrics\":") != TH_OK ||
      th_buf_append(&m->head, cwm, n) != TH_OK ||
      th_buf_append_str(&m->head, ",\"Timestamp\":") != TH_OK)
    return luaL_error(L, "out of memory");
  lua_createtable(L, 0, (int)TH_ARRAY_LEN(metrics) + 6);
  lua_pushstring(L, m->service);
  lua_setfield(L, -2, "Service");
  if (m->version[0]) {
    lua_pushstring(L, m->version);
    lua_setfield(L, -2, "version");
  }
  if (m->level[0]) {
    lua_pushstring(L, m->level);
    lua_setfield(L, -2, "level");
  }
  lua_setfield(L, LUA_REGISTRYINDEX, KEY_MEMBERS);
  return 0;
}

/* t[key] = value, or nil when value is NULL, empty or not UTF-8. */
static void set_property(lua_State *L, int t, const char *key, const char *value) {
  if (value && *value && th_utf8_valid(value, strlen(value)))
    lua_pushstring(L, value);
  else
    lua_pushnil(L);
  lua_setfield(L, t, key);
}

/* Pushes the root members' JSON text (everything but _aws); runs inside
 * lua_pcall (index 1: the job). */
static int encode_protected(lua_State *L) {
  const job *j = lua_touserdata(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, KEY_ENCODE);
  lua_getfield(L, LUA_REGISTRYINDEX, KEY_MEMBERS);
  int t = lua_gettop(L);
  lua_pushstring(L, j->operation);
  lua_setfield(L, t, "Operation");
  for (size_t i = 0; i < TH_ARRAY_LEN(metrics); i++) {
    lua_pushnumber(L, j->values[i]);
    lua_setfield(L, t, metrics[i].name);
  }
  set_property(L, t, "requestId", j->s->request_id);
  set_property(L, t, "traceId", j->s->trace_id);
  lua_call(L, 1, 1);
  return 1;
}

/* The route's name when it is one (1..63 letters and digits), else the
 * fixed one: no value from the request can become a dimension. */
static const char *operation_of(const char *op) {
  size_t n = op ? strlen(op) : 0;
  static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return n > 0 && n <= MAX_OPERATION && strspn(op, alnum) == n ? op : TH_METRICS_UNMATCHED;
}

static long long epoch_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

th_result th_metrics_new(const char *ns, const char *service, const char *version,
                         const char *level, FILE *out, th_metrics **m_out) {
  if (!ns || !service || !version || !out || !*ns || !*service || strlen(ns) > 255 ||
      strlen(service) > 255 || strlen(version) >= sizeof(((th_metrics *)0)->version) ||
      (level && strlen(level) >= sizeof(((th_metrics *)0)->level)))
    return TH_ERR_INVALID;
  th_metrics *m = calloc(1, sizeof *m);
  if (!m)
    return TH_ERR_NOMEM;
  snprintf(m->ns, sizeof m->ns, "%s", ns);
  snprintf(m->service, sizeof m->service, "%s", service);
  snprintf(m->version, sizeof m->version, "%s", version);
  snprintf(m->level, sizeof m->level, "%s", level ? level : "");
  m->out = out;
  th_buf_init(&m->head, MAX_LINE);
  th_buf_init(&m->line, MAX_LINE);
  pthread_mutex_init(&m->lock, NULL);
  m->L = luaL_newstate();
  if (!m->L)
    goto nomem;
  lua_pushcfunction(m->L, setup_protected);
  lua_pushlightuserdata(m->L, m);
  if (lua_pcall(m->L, 1, 0, 0) != LUA_OK)
    goto nomem;
  *m_out = m;
  return TH_OK;
nomem:
  th_metrics_free(m);
  return TH_ERR_NOMEM;
}

/* With m->lock held. */
static th_result encode_locked(th_metrics *m, const th_metrics_sample *s, const char **line,
                               size_t *len) {
  int st = s->status;
  job j = {.m = m, .s = s, .operation = operation_of(s->operation),
           .timestamp = s->timestamp_ms > 0 ? (long long)s->timestamp_ms : epoch_ms(),
           .values = {1, s->latency_ms, st >= 200 && st < 300, st >= 400 && st < 500,
                      st >= 500 || st == 0, s->store.calls, s->store.latency_ms,
                      s->store.retries, s->store.throttles, m->lines == 0}};
  lua_State *L = m->L;
  lua_settop(L, 0);
  lua_pushcfunction(L, encode_protected);
  lua_pushlightuserdata(L, &j);
  th_result rc = TH_ERR_NOMEM;
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    size_t n;
    const char *members = lua_tolstring(L, -1, &n); /* "{...}", never empty */
    char ts[32];
    int tn = snprintf(ts, sizeof ts, "%lld},", j.timestamp);
    th_buf_reset(&m->line);
    if (members && n > 2 && members[0] == '{' &&
        th_buf_append(&m->line, m->head.data, m->head.len) == TH_OK &&
        th_buf_append(&m->line, ts, (size_t)tn) == TH_OK &&
        th_buf_append(&m->line, members + 1, n - 1) == TH_OK &&
        th_buf_append(&m->line, "\n", 1) == TH_OK) {
      m->lines++;
      *line = m->line.data; /* with its newline */
      *len = m->line.len;
      rc = TH_OK;
    }
  }
  lua_settop(L, 0);
  return rc;
}

th_result th_metrics_encode(th_metrics *m, const th_metrics_sample *s, const char **line,
                            size_t *len) {
  pthread_mutex_lock(&m->lock);
  th_result rc = encode_locked(m, s, line, len);
  if (rc == TH_OK)
    (*len)--; /* the newline */
  pthread_mutex_unlock(&m->lock);
  return rc;
}

void th_metrics_emit(th_metrics *m, const th_metrics_sample *s) {
  if (!m)
    return;
  const char *line;
  size_t len;
  pthread_mutex_lock(&m->lock);
  if (encode_locked(m, s, &line, &len) == TH_OK) {
    /* One write of the line and its newline: whole beside the log's. */
    fwrite(line, 1, len, m->out);
    fflush(m->out);
  }
  pthread_mutex_unlock(&m->lock);
}

void th_metrics_free(th_metrics *m) {
  if (!m)
    return;
  if (m->L)
    lua_close(m->L);
  th_buf_free(&m->head);
  th_buf_free(&m->line);
  pthread_mutex_destroy(&m->lock);
  free(m);
}
