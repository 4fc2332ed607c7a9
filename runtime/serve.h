/* serve — `taskhost --serve [HOST:]PORT`: the Task API over local HTTP, like
 * `sam local start-api`. Each HTTP request becomes the payload-2.0 event an
 * HTTP API would send (th_host_invoke_http), so it takes the path Lambda takes.
 *
 * Uses libmicrohttpd with an internal pool of cfg->workers threads, and as
 * many workers, each owning one th_host (its own Lua state) and one th_store
 * (its own connection; SQLite allows several on one WAL file). A request
 * checks a worker out for the time its route runs. Bodies are collected up to
 * cfg->max_body_bytes; a larger one is answered 413 (never truncated).
 * Scripts changed on disk are reloaded before the next request; a reload that
 * fails is logged once and the previous scripts stay in service.
 *
 * With TASKHOST_AUTH=jwt nothing is in front to verify tokens: the key set
 * (TASKHOST_JWKS, jwt.h) is loaded before any worker starts and shared by
 * all of them, and every worker's host verifies each request's bearer token
 * (th_host_verify_tokens, auth.h). Without TASKHOST_JWKS, TASKHOST_JWT_ISSUER
 * or TASKHOST_JWT_AUDIENCE, or with a key set that does not load, the server
 * does not start (1, with one line).
 *
 * Logs go through th_log only: "verifying bearer tokens" (INFO, with the key
 * count, before "listening"), "listening" (INFO, once the socket is bound and
 * the server accepts), "shutting down" (INFO, on SIGINT/SIGTERM), "stopping
 * now: ..." (WARN, on a second signal), "exiting with requests unanswered"
 * (ERROR).
 */
#ifndef TH_SERVE_H
#define TH_SERVE_H

#include <stddef.h>

#include "config.h"
#include "store.h"

/* Opens one store for one worker; NULL with a one-line reason in err. */
typedef th_store *(*th_serve_open_store_fn)(const th_config *cfg, char *err, size_t errlen);

/* Serves until SIGINT/SIGTERM; returns 0 after a clean shutdown (in-flight
 * requests answered, every host and store freed). The first signal stops
 * accepting and lets the requests in flight finish for up to 10 s; a second
 * one (or those 10 s) stops now: every worker's store->stop is raised, so
 * store calls in flight end at once and their routes answer (503), and those
 * answers get 2 s to go out. A request still unanswered then (a route stuck
 * in one C call, whose thread cannot be stopped or joined) makes the process
 * exit at once with status 1: th_serve_run does not return.
 *
 * listen: "PORT", "HOST:PORT" (HOST a name or IPv4 address, default
 * 127.0.0.1) or "[IPv6]:PORT". PORT 0 picks a free port; the "listening" log
 * line gives the address actually bound.
 *
 * SIGINT and SIGTERM are blocked in the calling thread for the duration (and
 * so in every thread the server starts); the caller's signal mask is restored
 * before returning.
 *
 * On failure writes one line into err, which the caller prints, and returns
 * 2 when listen_addr is not an address (bad usage) or does not resolve, 1 for
 * anything else: a store that does not open, a route script that does not
 * load (the host's message), "cannot listen on 127.0.0.1:3000: Address
 * already in use". Nothing is left running or allocated either way.
 * cfg is borrowed and must outlive the call. */
int th_serve_run(const th_config *cfg, const char *listen_addr, th_serve_open_store_fn open_store,
                 char *err, size_t errlen);

#endif
