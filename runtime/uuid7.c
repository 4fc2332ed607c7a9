/* uuid7 — see uuid7.h. */
#include "uuid7.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#define COUNTER_MAX 0xfffu
#define SEED_MASK 0x7ffu /* a fresh counter starts below 2048: room for >= 2048 ids */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static th_uuid7_state shared;

void th_uuid7_next(th_uuid7_state *st, uint64_t now_ms, const unsigned char rnd[10],
                   unsigned char out[16]) {
  uint64_t ms = now_ms & 0xffffffffffffULL;
  if (!st->started || ms > st->last_ms) {
    st->last_ms = ms;
    st->counter = ((unsigned)rnd[0] << 8 | rnd[1]) & SEED_MASK;
    st->started = 1;
  } else if (st->counter < COUNTER_MAX) {
    st->counter++; /* same millisecond, or the clock went back: keep last_ms */
  } else {
    st->last_ms++; /* the counter would wrap: borrow the next millisecond */
    st->counter = ((unsigned)rnd[0] << 8 | rnd[1]) & SEED_MASK;
  }
  for (int i = 0; i < 6; i++)
    out[i] = (unsigned char)(st->last_ms >> (40 - 8 * i));
  out[6] = (unsigned char)(0x70 | st->counter >> 8);
  out[7] = (unsigned char)(st->counter & 0xff);
  memcpy(out + 8, rnd + 2, 8);
  out[8] = (unsigned char)(0x80 | (out[8] & 0x3f));
}

th_result th_uuid7_text(char out[37]) {
  unsigned char rnd[10], u[16];
  struct timespec ts;
  if (RAND_bytes(rnd, (int)sizeof rnd) != 1)
    return TH_ERR_INTERNAL;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t now = ts.tv_sec > 0 ? (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u : 0;
  pthread_mutex_lock(&lock);
  th_uuid7_next(&shared, now, rnd, u);
  pthread_mutex_unlock(&lock);
  uuid_unparse_lower(u, out);
  return TH_OK;
}
