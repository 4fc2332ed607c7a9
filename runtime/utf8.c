/* UTF-8 units, cut points and validation (see utf8.h). */
#include "utf8.h"

size_t th_utf8_next(const char *s, size_t n, int *valid) {
  const unsigned char *u = (const unsigned char *)s;
  unsigned char c = u[0], lo = 0x80, hi = 0xBF;
  size_t need;
  /* Table 3-7: the lead byte sets the length and the second byte's range. */
  if (c < 0x80) {
    *valid = 1;
    return 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0)
      lo = 0xA0; /* below: overlong */
    else if (c == 0xED)
      hi = 0x9F; /* above: surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0)
      lo = 0x90; /* below: overlong */
    else if (c == 0xF4)
      hi = 0x8F; /* above: past U+10FFFF */
  } else {
    *valid = 0; /* a continuation byte, C0, C1 (overlong) or F5..FF */
    return 1;
  }
  size_t i = 1;
  if (i < n && u[i] >= lo && u[i] <= hi) {
    i++;
    while (i < need && i < n && u[i] >= 0x80 && u[i] <= 0xBF)
      i++;
  }
  *valid = i == need;
  return i;
}

int th_utf8_valid(const char *s, size_t n) {
  size_t i = 0;
  int ok = 1;
  while (i < n && ok) {
    if ((unsigned char)s[i] < 0x80) { /* the common case, without a call */
      i++;
      continue;
    }
    i += th_utf8_next(s + i, n - i, &ok);
  }
  return ok;
}

size_t th_utf8_cut(const char *s, size_t n, size_t max) {
  if (n <= max)
    return n;
  size_t i = 0;
  int ok;
  while (i < max) {
    size_t u = th_utf8_next(s + i, n - i, &ok);
    if (u > max - i)
      break;
    i += u;
  }
  return i;
}
