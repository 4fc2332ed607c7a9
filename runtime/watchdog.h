/* watchdog — the last line against a route stuck inside one C call, in the
 * Lambda loop and in --local (one event; the answer goes to stdout).
 *
 * The host's count hook stops a script between Lua instructions, and the
 * store's timeouts end at the same deadline. Neither can act while a single
 * C function runs: a pathological Lua pattern (string.find/match/gsub with
 * many `.-` on a long subject) or a plain search through a huge string can
 * run for hours. A second thread watches each invocation: when the host has
 * not left routes.handle by the fire time (after the route's deadline, and
 * before Lambda's own; th_watchdog_fire_at), it
 *   1. marks the invocation as answered, so the loop never posts for it,
 *   2. logs ERROR "route stuck in a C call" with the request id,
 *   3. posts the prepared JSON 500 proxy response to
 *      invocation/<id>/response with its own libcurl handle,
 *   4. ends the process with _exit(TH_WATCHDOG_EXIT_STATUS): the stuck thread
 *      cannot be stopped any other way, and Lambda starts a fresh runtime for
 *      the next event (the stuck call was not in a store operation: those end
 *      by the route's deadline, before the watchdog fires).
 *
 * Ownership: th_watchdog_start copies what it is given; th_watchdog_stop
 * joins the thread and frees everything. The watchdog owns the "in the
 * route" flag the host sets (th_watchdog_route_flag → th_invoke_ctx.in_route). arm/disarm are called by the loop's
 * thread, one invocation at a time.
 */
#ifndef TH_WATCHDOG_H
#define TH_WATCHDOG_H

#include <stdatomic.h>
#include <stddef.h>

#include "common.h"
#include "host.h"

#define TH_WATCHDOG_EXIT_STATUS 3
/* Added to the route's Lua budget (TASKHOST_LUA_TIMEOUT_MS) before the
 * watchdog acts: the hook stops any script that returns to Lua in time. */
#define TH_WATCHDOG_GRACE_MS 1000.0

typedef struct th_watchdog th_watchdog;

/* Renders the host's JSON 500 proxy response (th_host_error_json) and
 * starts the thread. base_url: "http://host:port/2018-06-01/runtime", where
 * the 500 is posted when it fires; NULL (--local): the response and a
 * newline go to standard output instead. lua_timeout_ms and margin_ms: see
 * th_watchdog_fire_at. */
th_result th_watchdog_start(th_host *host, const char *base_url, double lua_timeout_ms,
                            double margin_ms, th_watchdog **out, char *err, size_t errlen);

/* The flag to hand the host as th_invoke_ctx.in_route: 1 while it runs
 * routes.handle. After it the host only does bounded work (rebuilding a
 * stopped state, encoding), which may be slow on a small CPU share, so the
 * watchdog never fires then. */
atomic_int *th_watchdog_route_flag(th_watchdog *w);

/* Watches one invocation that starts now until th_watchdog_disarm; fires at
 * th_watchdog_fire_at(now, ..., host_deadline, ...) if still in the route.
 * host_deadline: th_lambda_deadline's value, 0 for none. request_id is
 * copied. */
void th_watchdog_arm(th_watchdog *w, const char *request_id, double host_deadline);

/* Ends the watch. When the watchdog has fired, the invocation is answered
 * and the process is ending: it never returns (the caller must not answer). */
void th_watchdog_disarm(th_watchdog *w);

/* When to fire for an invocation that starts now (th_now_ms() time `now`),
 * given the route's Lua budget and the host deadline th_lambda_deadline gave
 * (0: none): the route's deadline plus TH_WATCHDOG_GRACE_MS, but no later
 * than halfway through the margin kept before Lambda's own deadline. */
double th_watchdog_fire_at(double now, double lua_timeout_ms, double host_deadline,
                           double margin_ms);

void th_watchdog_stop(th_watchdog *w);

#endif
