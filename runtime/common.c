#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *th_result_name(th_result r) {
  switch (r) {
  case TH_OK: return "ok";
  case TH_ERR_NOMEM: return "nomem";
  case TH_ERR_INVALID: return "invalid";
  case TH_ERR_NOT_FOUND: return "not_found";
  case TH_ERR_EXISTS: return "exists";
  case TH_ERR_THROTTLED: return "throttled";
  case TH_ERR_UNAVAILABLE: return "unavailable";
  case TH_ERR_TOO_LARGE: return "too_large";
  case TH_ERR_TIMEOUT: return "timeout";
  case TH_ERR_IO: return "io";
  case TH_ERR_INTERNAL: return "internal";
  case TH_ERR_PRECONDITION: return "precondition";
  }
  return "internal";
}

void th_buf_init(th_buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

th_result th_buf_append(th_buf *b, const void *p, size_t n) {
  if (n > b->max || b->len > b->max - n)
    return TH_ERR_TOO_LARGE;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
      return TH_ERR_NOMEM;
    b->data = d;
    b->cap = cap;
  }
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return TH_OK;
}

th_result th_buf_append_str(th_buf *b, const char *s) {
  return th_buf_append(b, s, strlen(s));
}

void th_buf_reset(th_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

char *th_buf_steal(th_buf *b, size_t *len) {
  char *d = b->data;
  if (len)
    *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return d;
}

void th_buf_free(th_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int th_double_to_int64(double x, int64_t *out) {
  /* NaN fails the range test; -2^63 and 2^63 are exact doubles. */
  if (!(x >= -0x1p63 && x < 0x1p63) || trunc(x) != x)
    return 0;
  *out = (int64_t)x;
  return 1;
}

double th_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}
