/* The watchdog of the Lambda loop and --local (see watchdog.h). */
#include "watchdog.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define POST_TIMEOUT_MS 2000L

struct th_watchdog {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int armed;
  int fired;
  int stopping;
  double fire_at;          /* th_now_ms() time */
  double waiting_until;    /* the thread sleeps until then; 0: until signalled */
  atomic_int in_route;     /* set by the host while it runs routes.handle */
  double lua_timeout_ms;   /* for th_watchdog_fire_at */
  double margin_ms;
  char request_id[128];
  char *base_url;          /* http://host:port/2018-06-01/runtime */
  char *response;          /* the proxy response JSON to post */
  size_t response_len;
  CURL *curl;              /* this thread's own handle */
};

static size_t discard_body(char *data, size_t size, size_t nmemb, void *ud) {
  (void)data;
  (void)ud;
  return size * nmemb;
}

/* POST invocation/<id>/response with the prepared 500; logs the outcome. */
static void post_response(th_watchdog *w, const char *request_id) {
  char *id = curl_easy_escape(w->curl, request_id, 0);
  size_t n = strlen(w->base_url) + (id ? strlen(id) : 0) + 32;
  char *url = malloc(n);
  long status = 0;
  CURLcode rc = CURLE_OUT_OF_MEMORY;
  if (id && url) {
    snprintf(url, n, "%s/invocation/%s/response", w->base_url, id);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(w->curl, CURLOPT_URL, url);
    curl_easy_setopt(w->curl, CURLOPT_PROXY, "");
    curl_easy_setopt(w->curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, POST_TIMEOUT_MS);
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->response_len);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, w->response);
    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, discard_body);
    rc = curl_easy_perform(w->curl);
    if (rc == CURLE_OK)
      curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(h);
  }
  curl_free(id);
  free(url);
  if (rc != CURLE_OK) {
    th_log_field f[] = {TH_LOG_STR("error", curl_easy_strerror(rc))};
    th_log(TH_LOG_ERROR, request_id, "watchdog: posting the 500 failed", f, 1);
  } else if (status < 200 || status > 299) {
    th_log_field f[] = {TH_LOG_NUM("status", status)};
    th_log(TH_LOG_ERROR, request_id, "watchdog: the Runtime API refused the 500", f, 1);
  }
}

/* Waits on the condition until `at` (th_now_ms() time, CLOCK_MONOTONIC), a
 * signal, or a spurious wake-up; the lock is held. */
static void sleep_until(th_watchdog *w, double at) {
  int64_t us; /* a th_now_ms() time: whole microseconds fit many times over */
  if (!th_double_to_int64(floor(at * 1000.0), &us) || us < 0)
    us = 0;   /* not a time: wake at once and look again */
  struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
  w->waiting_until = at;
  pthread_cond_timedwait(&w->cond, &w->lock, &ts);
}

static void *watch(void *arg) {
  th_watchdog *w = arg;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    if (w->stopping)
      break;
    if (!w->armed) {
      w->waiting_until = 0;
      pthread_cond_wait(&w->cond, &w->lock);
      continue;
    }
    double now = th_now_ms();
    if (now < w->fire_at) {
      sleep_until(w, w->fire_at);
      continue; /* re-read: disarmed, re-armed or stopping meanwhile */
    }
    if (!atomic_load(&w->in_route)) {
      /* Past the route: bounded work, however slow. Look again shortly
       * (a route that had not started yet may still start). */
      sleep_until(w, now + 100.0);
      continue;
    }
    /* Still in the route at fire_at: the loop's thread is stuck in C. */
    w->fired = 1;
    char rid[sizeof w->request_id];
    memcpy(rid, w->request_id, sizeof rid);
    pthread_mutex_unlock(&w->lock);
    th_log_field f[] = {TH_LOG_STR("kind", "stuck_in_c_call"),
                        TH_LOG_STR("action", w->base_url ? "answered 500; the runtime exits "
                                                           "and Lambda starts a fresh one"
                                                         : "answered 500; exit 3")};
    th_log(TH_LOG_ERROR, rid,
           "route stuck in a C call (a Lua pattern or search on a long string?) past its "
           "deadline",
           f, (int)TH_ARRAY_LEN(f));
    if (w->base_url) {
      post_response(w, rid);
    } else { /* --local: the answer goes to standard output */
      size_t off = 0;
      while (off < w->response_len) {
        ssize_t n = write(STDOUT_FILENO, w->response + off, w->response_len - off);
        if (n <= 0)
          break;
        off += (size_t)n;
      }
      (void)!write(STDOUT_FILENO, "\n", 1);
    }
    _exit(TH_WATCHDOG_EXIT_STATUS);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

/* Frees what th_watchdog_start allocated (the thread is not running). */
static void discard(th_watchdog *w) {
  if (w->curl)
    curl_easy_cleanup(w->curl);
  free(w->base_url);
  free(w->response);
  free(w);
}

th_result th_watchdog_start(th_host *host, const char *base_url, double lua_timeout_ms,
                            double margin_ms, th_watchdog **out, char *err, size_t errlen) {
  th_watchdog *w = calloc(1, sizeof *w);
  if (!w) {
    snprintf(err, errlen, "out of memory starting the watchdog");
    return TH_ERR_NOMEM;
  }
  w->lua_timeout_ms = lua_timeout_ms;
  w->margin_ms = margin_ms;
  w->base_url = base_url ? strdup(base_url) : NULL;
  w->curl = base_url ? curl_easy_init() : NULL;
  if ((base_url && (!w->base_url || !w->curl)) ||
      th_host_error_json(host, 500, "Internal server error", &w->response, &w->response_len) !=
          TH_OK) {
    discard(w);
    snprintf(err, errlen, "out of memory starting the watchdog");
    return TH_ERR_NOMEM;
  }
  pthread_condattr_t ca;
  int ok = pthread_condattr_init(&ca) == 0;
  ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0;
  ok = ok && pthread_cond_init(&w->cond, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (!ok || pthread_mutex_init(&w->lock, NULL) != 0 ||
      pthread_create(&w->thread, NULL, watch, w) != 0) {
    discard(w);
    snprintf(err, errlen, "cannot start the watchdog thread");
    return TH_ERR_INTERNAL;
  }
  *out = w;
  return TH_OK;
}

atomic_int *th_watchdog_route_flag(th_watchdog *w) { return &w->in_route; }

void th_watchdog_arm(th_watchdog *w, const char *request_id, double host_deadline) {
  double fire_at = th_watchdog_fire_at(th_now_ms(), w->lua_timeout_ms, host_deadline,
                                       w->margin_ms);
  pthread_mutex_lock(&w->lock);
  snprintf(w->request_id, sizeof w->request_id, "%s", request_id ? request_id : "");
  w->fire_at = fire_at;
  w->armed = 1;
  /* Invocations in a row arm later and later times: a thread already
   * sleeping until an earlier one wakes then, finds the new time and sleeps
   * again, so the common case costs no wake-up per invocation. */
  if (w->waiting_until == 0 || fire_at < w->waiting_until)
    pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

void th_watchdog_disarm(th_watchdog *w) {
  pthread_mutex_lock(&w->lock);
  int fired = w->fired;
  w->armed = 0;
  pthread_mutex_unlock(&w->lock);
  if (fired)
    for (;;)
      pause(); /* the watchdog thread is answering, then exits the process */
}

double th_watchdog_fire_at(double now, double lua_timeout_ms, double host_deadline,
                           double margin_ms) {
  double at = now + lua_timeout_ms + TH_WATCHDOG_GRACE_MS;
  if (host_deadline > 0) {
    /* th_lambda_deadline kept margin = min(margin_ms, left / 4) before
     * Lambda's deadline, i.e. min(margin_ms, (host_deadline - now) / 3). */
    double kept = (host_deadline - now) / 3;
    if (kept > margin_ms)
      kept = margin_ms;
    if (kept < 0)
      kept = 0;
    if (host_deadline + kept / 2 < at)
      at = host_deadline + kept / 2;
  }
  return at;
}

void th_watchdog_stop(th_watchdog *w) {
  if (!w)
    return;
  pthread_mutex_lock(&w->lock);
  w->stopping = 1;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->cond);
  pthread_mutex_destroy(&w->lock);
  discard(w);
}
