/* Unit tests for the pure pieces of runtime/lambda: how each Runtime API
 * answer is treated, the deadline arithmetic (and when the watchdog fires:
 * always after the route's deadline, always before Lambda's), errorType validation, the
 * error document (encoded by cjson, decoded back here), and the check of
 * AWS_LAMBDA_RUNTIME_API. The loop itself is tested end to end against
 * tests/lambda/runtime_api_server.py (tests/e2e/test_lambda*.sh). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lambda.h"
#include "lua_modules.h"
#include "watchdog.h"

static void test_classify(void) {
  static const struct {
    th_lambda_call call;
    long status;
    th_lambda_verdict want;
  } cases[] = {
      {TH_LAMBDA_NEXT, 200, TH_LAMBDA_OK},
      {TH_LAMBDA_NEXT, 204, TH_LAMBDA_OK},
      {TH_LAMBDA_NEXT, 0, TH_LAMBDA_RETRY},      /* no answer at all */
      {TH_LAMBDA_NEXT, 400, TH_LAMBDA_RETRY},
      {TH_LAMBDA_NEXT, 404, TH_LAMBDA_RETRY},
      {TH_LAMBDA_NEXT, 429, TH_LAMBDA_RETRY},
      {TH_LAMBDA_NEXT, 403, TH_LAMBDA_FATAL},
      {TH_LAMBDA_NEXT, 410, TH_LAMBDA_FATAL},
      {TH_LAMBDA_NEXT, 500, TH_LAMBDA_FATAL},    /* "Container error" */
      {TH_LAMBDA_NEXT, 502, TH_LAMBDA_FATAL},
      {TH_LAMBDA_RESPONSE, 202, TH_LAMBDA_OK},
      {TH_LAMBDA_RESPONSE, 413, TH_LAMBDA_TOO_LARGE},
      {TH_LAMBDA_RESPONSE, 400, TH_LAMBDA_DROP},
      {TH_LAMBDA_RESPONSE, 403, TH_LAMBDA_DROP},
      {TH_LAMBDA_RESPONSE, 0, TH_LAMBDA_DROP},
      {TH_LAMBDA_RESPONSE, 410, TH_LAMBDA_FATAL},
      {TH_LAMBDA_RESPONSE, 500, TH_LAMBDA_FATAL},
      {TH_LAMBDA_ERROR, 202, TH_LAMBDA_OK},
      {TH_LAMBDA_ERROR, 400, TH_LAMBDA_DROP},
      {TH_LAMBDA_ERROR, 413, TH_LAMBDA_DROP},
      {TH_LAMBDA_ERROR, 500, TH_LAMBDA_FATAL},
      {TH_LAMBDA_INIT_ERROR, 202, TH_LAMBDA_OK},
      {TH_LAMBDA_INIT_ERROR, 403, TH_LAMBDA_DROP},
      {TH_LAMBDA_INIT_ERROR, 500, TH_LAMBDA_DROP}, /* exiting anyway */
      {TH_LAMBDA_INIT_ERROR, 0, TH_LAMBDA_DROP},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    th_lambda_verdict got = th_lambda_classify(cases[i].call, cases[i].status);
    CHECK(got == cases[i].want, "case %zu: call %d status %ld → %d, want %d", i,
          (int)cases[i].call, cases[i].status, (int)got, (int)cases[i].want);
  }
}

static void test_deadline(void) {
  const double epoch = 1700000000000.0, mono = 5000.0;
  static const struct {
    const char *header;
    double want; /* relative to mono; NAN: 0 (no deadline) */
  } cases[] = {
      {"1700000003000", 3000 - TH_LAMBDA_DEADLINE_MARGIN_MS}, /* 3 s left */
      {"1700000001000", 1000 - TH_LAMBDA_DEADLINE_MARGIN_MS},
      {"1700000000800", 800 - TH_LAMBDA_DEADLINE_MARGIN_MS},  /* margin == a quarter */
      {"1700000000400", 300},                                 /* a quarter of 400 */
      {"1700000000004", 3},
      {"1700000000000", 0}, /* due now: stop at once */
      {"1699999990000", 0}, /* already past */
      {"0", 0},
      {NULL, NAN},
      {"", NAN},
      {"abc", NAN},
      {"-5", NAN},
      {"1700000003000 ", NAN},
      {"17000000030001234", NAN}, /* more digits than a real deadline */
      {"1.5", NAN},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    double got = th_lambda_deadline(cases[i].header, epoch, mono);
    if (isnan(cases[i].want))
      CHECK(got == 0, "header '%s' → %.1f, want 0 (no deadline)",
            cases[i].header ? cases[i].header : "(null)", got);
    else
      CHECK(fabs(got - (mono + cases[i].want)) < 0.001, "header '%s' → %.1f, want %.1f",
            cases[i].header, got - mono, cases[i].want);
  }
}

/* th_watchdog_fire_at against th_lambda_deadline: for Lambda deadlines from
 * 1 ms to 15 min and Lua budgets from 10 ms to 15 min, the watchdog fires
 * after the route's own deadline (the hook and the store's timeouts act
 * first) and before Lambda's deadline; without a deadline, at budget+grace. */
static void test_watchdog_fire_at(void) {
  const double epoch = 1.7e12, mono = 5000.0, margin = TH_LAMBDA_DEADLINE_MARGIN_MS;
  static const double left[] = {1, 10, 100, 399, 400, 600, 601, 800, 1600, 3000, 900000};
  static const double budget[] = {10, 500, 5000, 900000};
  for (size_t i = 0; i < TH_ARRAY_LEN(left); i++) {
    char header[32];
    snprintf(header, sizeof header, "%.0f", epoch + left[i]);
    double host = th_lambda_deadline(header, epoch, mono);
    for (size_t j = 0; j < TH_ARRAY_LEN(budget); j++) {
      double route = mono + budget[j] < host ? mono + budget[j] : host;
      double at = th_watchdog_fire_at(mono, budget[j], host, margin);
      CHECK(at > route || (left[i] <= 1 && at >= route),
            "left %.0f, budget %.0f: fires at +%.1f, not after the route's deadline +%.1f",
            left[i], budget[j], at - mono, route - mono);
      CHECK(at < mono + left[i] || (left[i] <= 1 && at <= mono + left[i]),
            "left %.0f, budget %.0f: fires at +%.1f, not before Lambda's deadline +%.0f",
            left[i], budget[j], at - mono, left[i]);
    }
  }
  CHECK(fabs(th_watchdog_fire_at(mono, 500, 0, margin) - (mono + 500 + TH_WATCHDOG_GRACE_MS)) <
            0.001,
        "no deadline: budget + grace");
  /* 20 s left, 500 ms budget: budget + grace; 1600 ms left: host 1400 + 100 */
  CHECK(fabs(th_watchdog_fire_at(mono, 500, mono + 19800, margin) - (mono + 1500)) < 0.001,
        "long deadline: budget + grace");
  CHECK(fabs(th_watchdog_fire_at(mono, 5000, mono + 1400, margin) - (mono + 1500)) < 0.001,
        "short deadline: half the margin after the host's deadline");
}

static void test_error_types(void) {
  static const char *const good[] = {"Runtime.InvalidEvent", "Runtime.Unknown",
                                     "Function.ResponseSizeTooLarge", "Runtime.X1"};
  static const char *const bad[] = {"", "Runtime.", "Function.", "InvalidEvent",
                                    "runtime.InvalidEvent", "Runtime.Invalid Event",
                                    "Runtime.Bad\r\nX-Injected: 1", "Runtime.A.B", "Other.Thing",
                                    /* 65 letters */
                                    "Runtime.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                    "AAAAAAAAAAAAAAAAAAAA"};
  for (size_t i = 0; i < TH_ARRAY_LEN(good); i++)
    CHECK(th_lambda_error_type_valid(good[i]), "'%s' should be valid", good[i]);
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++)
    CHECK(!th_lambda_error_type_valid(bad[i]), "'%s' should be refused", bad[i]);
  CHECK(th_lambda_error_type_valid("Runtime.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                   "AAAAAAAAAAAAAAAAAAA"),
        "64 letters is the most");
  CHECK(!th_lambda_error_type_valid(NULL), "NULL refused");
}

/* Decodes the document with a separate cjson and checks every field. */
static int decode_protected(lua_State *L) {
  const char *json = lua_touserdata(L, 1);
  th_json_decode(L, json, strlen(json));
  return 1;
}

static void check_document(th_lambda *l, lua_State *L, const char *type, const char *message) {
  char *doc = NULL;
  size_t len = 0;
  CHECK(th_lambda_error_json(l, type, message, &doc, &len) == TH_OK, "encodes %s", type);
  if (!doc)
    return;
  CHECK(strlen(doc) == len, "length matches");
  CHECK(strstr(doc, "\"stackTrace\":[]") != NULL, "stackTrace is an empty array: %s", doc);
  lua_settop(L, 0);
  lua_pushcfunction(L, decode_protected);
  lua_pushlightuserdata(L, doc);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    CHECK(0, "document decodes: %s (%s)", lua_tostring(L, -1), doc);
    free(doc);
    return;
  }
  lua_getfield(L, 1, "errorType");
  CHECK_STR(lua_tostring(L, -1), type);
  lua_getfield(L, 1, "errorMessage");
  size_t mlen = 0;
  const char *m = lua_tolstring(L, -1, &mlen);
  CHECK(m && mlen == strlen(message) && memcmp(m, message, mlen) == 0,
        "errorMessage round-trips: %s", doc);
  lua_getfield(L, 1, "stackTrace");
  CHECK(lua_istable(L, -1) && lua_rawlen(L, -1) == 0, "stackTrace decodes as an empty table");
  int keys = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    keys++;
    lua_pop(L, 1);
  }
  CHECK(keys == 3, "exactly three keys, got %d", keys);
  lua_settop(L, 0);
  free(doc);
}

static int setup_protected(lua_State *L) {
  th_json_setup(L);
  return 0;
}

static void test_error_document(void) {
  char err[256];
  th_lambda *l = NULL;
  CHECK(th_lambda_new("127.0.0.1:9001", &l, err, sizeof err) == TH_OK, "new: %s", err);
  if (!l)
    return;
  lua_State *L = luaL_newstate();
  lua_pushcfunction(L, setup_protected);
  CHECK(lua_pcall(L, 0, 0, 0) == LUA_OK, "json setup");
  check_document(l, L, "Runtime.InvalidEvent", "not an API Gateway proxy event: no httpMethod");
  check_document(l, L, "Runtime.Unknown", "quotes \" backslash \\ newline \n tab \t ctl \x01 end");
  check_document(l, L, "Function.ResponseSizeTooLarge",
                 "UTF-8: caf\xc3\xa9 \xf0\x9f\x93\x9d </script>");
  check_document(l, L, "Runtime.ConfigError", "");
  char *doc = NULL;
  size_t len = 0;
  CHECK(th_lambda_error_json(l, "NotAType", "x", &doc, &len) == TH_ERR_INVALID && !doc,
        "a bad errorType is refused, nothing written");
  lua_close(L);
  th_lambda_free(l);
}

static void test_runtime_api_values(void) {
  static const char *const good[] = {"127.0.0.1:9001", "localhost:9001", "[::1]:9001",
                                     "sandbox.localdomain:80", "127.0.0.1"};
  static const char *const bad[] = {"", "127.0.0.1:9001/x", "http://127.0.0.1:9001",
                                    "user@127.0.0.1:9001", "127.0.0.1:9001?x", "a b:1",
                                    "127.0.0.1:9001\r\n"};
  char err[256];
  for (size_t i = 0; i < TH_ARRAY_LEN(good); i++) {
    th_lambda *l = NULL;
    CHECK(th_lambda_new(good[i], &l, err, sizeof err) == TH_OK && l, "'%s' accepted: %s",
          good[i], err);
    th_lambda_free(l);
  }
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
    th_lambda *l = NULL;
    err[0] = '\0';
    CHECK(th_lambda_new(bad[i], &l, err, sizeof err) == TH_ERR_INVALID && !l && err[0],
          "'%s' refused", bad[i]);
  }
  th_lambda *l = NULL;
  CHECK(th_lambda_new(NULL, &l, err, sizeof err) == TH_ERR_INVALID && !l &&
            strstr(err, "AWS_LAMBDA_RUNTIME_API"),
        "unset: refused, naming the variable");
}

int main(void) {
  test_classify();
  test_deadline();
  test_watchdog_fire_at();
  test_error_types();
  test_error_document();
  test_runtime_api_values();
  return CHECK_DONE();
}
