/* common — the result enum shared by every module of the core, a growable
 * byte buffer with a hard maximum size (never truncates silently: appending
 * past the maximum fails with TH_ERR_TOO_LARGE and leaves the buffer as it was),
 * and the one float → integer conversion of the core (th_double_to_int64).
 * Ownership: a th_buf owns its data; th_buf_free releases it, th_buf_steal hands
 * it to the caller. */
#ifndef TH_COMMON_H
#define TH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h> /* glibc: features.h, which says whether C2X features are on */

/* The package must run on Amazon Linux 2023 (glibc 2.34). With C2X features on (_GNU_SOURCE,
 * _ISOC2X_SOURCE, -std=c2x), glibc >= 2.38 redirects strtol & co. to __isoc23_* symbols
 * versioned GLIBC_2.38: refuse that build here rather than at Lambda's init
 * (scripts/lambda-fit.sh checks the binary too). */
#if (defined(__GLIBC_USE_ISOC2X) && __GLIBC_USE_ISOC2X) || \
    (defined(__GLIBC_USE_ISOC23) && __GLIBC_USE_ISOC23)
#error "C2X library features are on (_GNU_SOURCE?): the binary would need glibc >= 2.38; build with -D_DEFAULT_SOURCE"
#endif

typedef enum th_result {
  TH_OK = 0,
  TH_ERR_NOMEM,        /* allocation failed */
  TH_ERR_INVALID,      /* input rejected (bad event, bad argument, bad cursor) */
  TH_ERR_NOT_FOUND,    /* store: no item with that key (a normal outcome) */
  TH_ERR_EXISTS,       /* store: create found the key taken (a normal outcome) */
  TH_ERR_THROTTLED,    /* backend asked us to slow down */
  TH_ERR_UNAVAILABLE,  /* backend unreachable or failing; may succeed later */
  TH_ERR_TOO_LARGE,    /* a size limit was hit */
  TH_ERR_TIMEOUT,      /* a deadline or budget ran out */
  TH_ERR_IO,           /* file or socket error */
  TH_ERR_INTERNAL,     /* anything else: a bug or a broken invariant */
  TH_ERR_PRECONDITION  /* store: an If-Match condition did not hold (a normal outcome) */
} th_result;

/* Short stable name of a result ("ok", "invalid", "throttled", ...). */
const char *th_result_name(th_result r);

typedef struct th_buf {
  char *data;  /* NUL-terminated when non-NULL */
  size_t len;
  size_t cap;
  size_t max;  /* appends that would exceed this fail */
} th_buf;

void th_buf_init(th_buf *b, size_t max);
th_result th_buf_append(th_buf *b, const void *p, size_t n);
th_result th_buf_append_str(th_buf *b, const char *s);
void th_buf_reset(th_buf *b);           /* len = 0, keeps memory */
char *th_buf_steal(th_buf *b, size_t *len); /* caller frees; buffer becomes empty */
void th_buf_free(th_buf *b);

/* The only way the core turns a double into an integer: converting one the
 * integer type cannot hold (1e300, ±inf, NaN) is undefined behaviour in C.
 * Writes *out and returns 1 when x is finite, whole and in [-2^63, 2^63);
 * returns 0 and leaves *out alone otherwise (fractions included: a caller that
 * wants a whole part passes trunc(x) or floor(x)). */
int th_double_to_int64(double x, int64_t *out);

/* Monotonic clock in milliseconds (for deadlines and durations). */
double th_now_ms(void);

#define TH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
