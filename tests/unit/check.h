/* check.h — the minimal table-driven test harness shared by the C unit tests.
 * CHECK records a failure and goes on; CHECK_DONE prints "N passed, N failed"
 * and returns the exit status (non-zero when anything failed). */
#ifndef TH_CHECK_H
#define TH_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (cond) {                                                                \
      check_passed++;                                                          \
    } else {                                                                   \
      check_failed++;                                                          \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

#define CHECK_STR(got, want)                                                   \
  do {                                                                         \
    const char *g_ = (got), *w_ = (want);                                      \
    CHECK(g_ && w_ && strcmp(g_, w_) == 0, "got '%s', want '%s'",              \
          g_ ? g_ : "(null)", w_ ? w_ : "(null)");                             \
  } while (0)

#define CHECK_DONE()                                                           \
  (printf("%d passed, %d failed\n", check_passed, check_failed),               \
   check_failed ? 1 : 0)

#endif
