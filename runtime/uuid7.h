/* uuid7 — time-ordered UUIDs (version 7, RFC 9562 §5.7) for new item ids,
 * so that an item's id, the store's sort key, is its creation order.
 *
 * Layout (big-endian): unix_ts_ms (48 bits) | version 0111 | rand_a (12) |
 * variant 10 | rand_b (62). Debian 12's libuuid (util-linux 2.38) has no v7
 * generator (uuid_generate_time_v7 came with 2.41), so the bits are composed
 * here; the random bits come from OpenSSL's RAND_bytes, and libuuid only
 * writes the text (uuid_unparse_lower).
 *
 * Monotonic within a process (RFC 9562 §6.2, method 1, a fixed-length
 * dedicated counter): rand_a is a 12-bit counter that starts at a random
 * value below 2048 in each new millisecond and is incremented for every
 * further id made in the same millisecond; when it would wrap, the timestamp
 * is moved one millisecond ahead (§6.2 allows it) and the counter restarts.
 * A clock that steps back never makes an id smaller: the last timestamp is
 * kept until the clock passes it. So the ids of one process, compared as
 * bytes or as lower-case text, are in the order they were made — also
 * across threads (one state, under a mutex). Two processes (two Lambda
 * instances) keep no common state: their ids of the same millisecond are
 * ordered by their random bits, arbitrarily, and their clocks may differ by
 * as much as the hosts' clocks do.
 */
#ifndef TH_UUID7_H
#define TH_UUID7_H

#include <stdint.h>

#include "common.h"

/* A generator's state: the last timestamp used and its counter. */
typedef struct th_uuid7_state {
  uint64_t last_ms;
  unsigned counter; /* 0..4095 */
  int started;
} th_uuid7_state;

/* Pure: the next id after `st` at Unix time now_ms, with rnd[0..1] as the
 * counter's seed (used only when a new millisecond starts) and rnd[2..9] as
 * rand_b. Writes the 16 bytes to out and advances st. */
void th_uuid7_next(th_uuid7_state *st, uint64_t now_ms, const unsigned char rnd[10],
                   unsigned char out[16]);

/* The process's generator: the next id as lower-case text (36 characters and
 * a NUL). TH_ERR_INTERNAL when OpenSSL has no random bytes to give (nothing
 * written). Thread-safe. */
th_result th_uuid7_text(char out[37]);

#endif
