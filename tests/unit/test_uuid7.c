/* uuid7: the layout of RFC 9562 §5.7 (the test vector of its appendix A.6),
 * and monotonicity (§6.2, method 1): ids of one millisecond count up, a
 * counter about to wrap borrows the next millisecond, a clock that steps
 * back never makes an id smaller; the process generator's text, from
 * several threads at once, is strictly increasing in each thread and never
 * repeats. */
#include "check.h"
#include "uuid7.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <uuid/uuid.h>

#define THREADS 4
#define PER_THREAD 20000

static char *hex(const unsigned char u[16]) {
  static char out[37];
  uuid_unparse_lower(u, out);
  return out;
}

static unsigned counter_of(const unsigned char u[16]) { return (unsigned)(u[6] & 0x0f) << 8 | u[7]; }

static uint64_t ms_of(const unsigned char u[16]) {
  uint64_t ms = 0;
  for (int i = 0; i < 6; i++)
    ms = ms << 8 | u[i];
  return ms;
}

/* RFC 9562 A.6: unix_ts_ms 0x017F22E279B0 (Tuesday, February 22, 2022
 * 2:22:22.00 PM GMT-05:00), rand_a 0xCC3, rand_b 0x18C4DC0C0C07398F. */
static void test_vector(void) {
  th_uuid7_state st = {0};
  /* rnd[0..1] seed the counter below 2048 (0xCC3 has its top bit set: not a
   * seed this generator makes), so the seed gives 0x4C3, then the vector's
   * rand_a is reached by counting up 0x800 ids. */
  unsigned char rnd[10] = {0x04, 0xc3, 0x18, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f}, u[16];
  th_uuid7_next(&st, 0x017F22E279B0ULL, rnd, u);
  CHECK_STR(hex(u), "017f22e2-79b0-74c3-98c4-dc0c0c07398f");
  for (int i = 0; i < 0x800; i++)
    th_uuid7_next(&st, 0x017F22E279B0ULL, rnd, u);
  CHECK_STR(hex(u), "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"); /* the RFC's own text */
  CHECK((u[6] >> 4) == 7 && (u[8] >> 6) == 2, "version 7, variant 10");
  /* The variant bits are forced whatever rand_b's first byte holds. */
  unsigned char ff[10];
  memset(ff, 0xff, sizeof ff);
  th_uuid7_state s2 = {0};
  th_uuid7_next(&s2, 1, ff, u);
  CHECK((u[8] & 0xc0) == 0x80 && (u[6] & 0xf0) == 0x70, "version and variant over all-ones: %s",
        hex(u));
  CHECK(counter_of(u) == 0x7ff, "a fresh counter stays below 2048: %03x", counter_of(u));
}

/* Counting within a millisecond, borrowing the next, and a clock going back. */
static void test_monotonic(void) {
  th_uuid7_state st = {0};
  unsigned char rnd[10] = {0}, u[16], prev[16];
  uint64_t t = 1700000000000ULL;
  rnd[0] = 0x07, rnd[1] = 0xfe; /* counter seed 0x7fe */
  th_uuid7_next(&st, t, rnd, prev);
  CHECK(ms_of(prev) == t && counter_of(prev) == 0x7fe, "first: %s", hex(prev));
  int bad = 0, borrowed = 0;
  for (int i = 0; i < 5000; i++) { /* more than a counter holds */
    rnd[2] = (unsigned char)(255 - i); /* rand_b going down must not matter */
    th_uuid7_next(&st, t, rnd, u);
    if (memcmp(u, prev, 16) <= 0 && !bad++)
      CHECK(0, "id %d not above the one before: %s", i, hex(u));
    borrowed += ms_of(u) != ms_of(prev);
    memcpy(prev, u, 16);
  }
  CHECK(bad == 0, "%d ids out of order in one millisecond", bad);
  CHECK(borrowed >= 2 && ms_of(prev) > t, "a full counter borrows the next millisecond (%d times)",
        borrowed);
  /* The clock steps back a second: still increasing, on the borrowed time. */
  uint64_t ahead = ms_of(prev);
  th_uuid7_next(&st, t - 1000, rnd, u);
  CHECK(memcmp(u, prev, 16) > 0 && ms_of(u) == ahead, "after the clock stepped back: %s", hex(u));
  memcpy(prev, u, 16);
  /* Once the clock passes the last timestamp, it is the clock's again. */
  th_uuid7_next(&st, ahead + 5, rnd, u);
  CHECK(memcmp(u, prev, 16) > 0 && ms_of(u) == ahead + 5, "clock ahead again: %s", hex(u));
}

typedef struct run {
  char (*ids)[37];
  int bad;
} run;

static void *generate(void *arg) {
  run *r = arg;
  for (int i = 0; i < PER_THREAD; i++) {
    if (th_uuid7_text(r->ids[i]) != TH_OK || (i && strcmp(r->ids[i], r->ids[i - 1]) <= 0))
      r->bad++;
  }
  return NULL;
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

/* The process generator: text form, time now, increasing per thread, no
 * repeats across threads. */
static void test_process(void) {
  pthread_t t[THREADS];
  run r[THREADS];
  char (*all)[37] = calloc((size_t)THREADS * PER_THREAD, sizeof *all);
  CHECK(all != NULL, "memory");
  if (!all)
    return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t before = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
  for (int i = 0; i < THREADS; i++) {
    r[i] = (run){.ids = all + (size_t)i * PER_THREAD};
    pthread_create(&t[i], NULL, generate, &r[i]);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    CHECK(r[i].bad == 0, "thread %d: %d ids not above the one before", i, r[i].bad);
  }
  unsigned char u[16];
  CHECK(uuid_parse(all[0], u) == 0 && ms_of(u) >= before && ms_of(u) < before + 60000,
        "timestamp of %s is now (%llu)", all[0], (unsigned long long)before);
  CHECK(strlen(all[0]) == 36 && all[0][14] == '7' && strchr("89ab", all[0][19]),
        "text form: %s", all[0]);
  qsort(all, (size_t)THREADS * PER_THREAD, sizeof *all, cmp_id);
  int dup = 0;
  for (size_t i = 1; i < (size_t)THREADS * PER_THREAD; i++)
    dup += strcmp(all[i], all[i - 1]) == 0;
  CHECK(dup == 0, "%d repeated ids", dup);
  free(all);
}

int main(void) {
  test_vector();
  test_monotonic();
  test_process();
  return CHECK_DONE();
}
