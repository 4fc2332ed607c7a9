/* Unit tests for runtime/utf8: units (well-formed characters and maximal
 * subparts) against vectors checked with Python's errors="replace" decoder
 * (the same U+FFFD count and output); th_utf8_valid against an independent
 * reference decoder on every string of 1 to 3 bytes and on 4-byte strings
 * with each lead byte F0..FF, every second and third byte and the boundary
 * values of the fourth; th_utf8_cut never splits a unit, fits the budget and
 * keeps as much as fits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common.h"
#include "utf8.h"

#define R TH_UTF8_REPLACEMENT

/* Copies s with each ill-formed unit replaced by U+FFFD (what the log does). */
static size_t replaced(const char *s, size_t n, char *out) {
  size_t i = 0, o = 0;
  while (i < n) {
    int ok;
    size_t u = th_utf8_next(s + i, n - i, &ok);
    if (ok) {
      memcpy(out + o, s + i, u);
      o += u;
    } else {
      memcpy(out + o, R, 3);
      o += 3;
    }
    i += u;
  }
  return o;
}

static void test_vectors(void) {
  static const struct {
    const char *in;
    size_t n;
    int valid;
    const char *want;
    size_t wn;
  } cases[] = {
#define V(s, valid, want) {s, sizeof s - 1, valid, want, sizeof want - 1}
      V("", 1, ""),
      V("abc", 1, "abc"),
      V("a\0b", 1, "a\0b"),
      V("\xc3\xa9", 1, "\xc3\xa9"),                 /* é */
      V("\xef\xbb\xbf", 1, "\xef\xbb\xbf"),         /* U+FEFF */
      V("\xef\xbf\xbd", 1, "\xef\xbf\xbd"),         /* U+FFFD itself */
      V("\xed\x9f\xbf", 1, "\xed\x9f\xbf"),         /* U+D7FF, last before the surrogates */
      V("\xee\x80\x80", 1, "\xee\x80\x80"),         /* U+E000, first after */
      V("\xf4\x8f\xbf\xbf", 1, "\xf4\x8f\xbf\xbf"), /* U+10FFFF */
      V("\xc3", 0, R),                              /* a 2-byte character cut */
      V("\xe2\x82", 0, R),                          /* € cut: one maximal subpart */
      V("\xf0\x9f\x98", 0, R),                      /* an emoji cut */
      V("\xe0\xa0", 0, R),
      V("\xf0\x90\x80", 0, R),
      V("\xc0\xaf", 0, R R),                        /* overlong '/' */
      V("\xc1\xbf", 0, R R),
      V("\xe0\x80\xaf", 0, R R R),                  /* overlong, 3 bytes */
      V("\xf0\x80\x80\xaf", 0, R R R R),            /* overlong, 4 bytes */
      V("\xed\xa0\x80", 0, R R R),                  /* surrogate U+D800 */
      V("\xed\xbf\xbf", 0, R R R),                  /* surrogate U+DFFF */
      V("\xf4\x90\x80\x80", 0, R R R R),            /* U+110000 */
      V("\xf5\x80\x80\x80", 0, R R R R),
      V("\x80", 0, R),                              /* a lone continuation byte */
      V("\xff\xfe", 0, R R),
      V("\xe1\x80\x41", 0, R "A"),                  /* cut short by an ASCII byte */
      V("\xf1\x80\x80\xc3\xa9", 0, R "\xc3\xa9"),
      V("x\xf8\x88\x80\x80\x80y", 0, "x" R R R R R "y"), /* the old 5-byte form */
#undef V
  };
  char out[64];
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    CHECK(th_utf8_valid(cases[i].in, cases[i].n) == cases[i].valid, "case %zu: valid", i);
    size_t o = replaced(cases[i].in, cases[i].n, out);
    CHECK(o == cases[i].wn && memcmp(out, cases[i].want, o) == 0, "case %zu: replaced", i);
    CHECK(th_utf8_valid(out, o), "case %zu: the replaced text is valid", i);
  }
  /* every byte 0x80..0xFF, in order: 128 replacement characters */
  char all[128], big[128 * 3];
  for (int b = 0; b < 128; b++)
    all[b] = (char)(0x80 + b);
  size_t o = replaced(all, sizeof all, big);
  int each = o == sizeof big;
  for (size_t i = 0; each && i < sizeof big; i += 3)
    each = memcmp(big + i, R, 3) == 0;
  CHECK(each, "bytes 0x80..0xFF: %zu bytes out", o);
}

/* An independent reading of RFC 3629: decode by bit patterns, then refuse
 * overlong forms, surrogates and values past U+10FFFF. */
static int ref_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i], len;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return 0;
    }
    if (i + len > n)
      return 0;
    for (unsigned k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return 0;
    i += len;
  }
  return 1;
}

static void test_exhaustive(void) {
  unsigned char s[4];
  long bad = 0, total = 0;
  for (uint32_t v = 0; v < 256 + 65536 + 16777216; v++) {
    size_t n = v < 256 ? 1 : v < 256 + 65536 ? 2 : 3;
    uint32_t x = n == 1 ? v : n == 2 ? v - 256 : v - 256 - 65536;
    for (size_t k = 0; k < n; k++)
      s[k] = (unsigned char)(x >> (8 * (n - 1 - k)));
    total++;
    if (th_utf8_valid((const char *)s, n) != ref_valid(s, n) && bad++ < 5)
      CHECK(0, "%zu bytes %02x %02x %02x", n, s[0], n > 1 ? s[1] : 0, n > 2 ? s[2] : 0);
  }
  static const unsigned char fourth[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xf4, 0xff};
  for (unsigned a = 0xF0; a <= 0xFF; a++)
    for (unsigned b = 0; b < 256; b++)
      for (unsigned c = 0; c < 256; c++)
        for (size_t d = 0; d < sizeof fourth; d++) {
          s[0] = (unsigned char)a, s[1] = (unsigned char)b, s[2] = (unsigned char)c;
          s[3] = fourth[d];
          total++;
          if (th_utf8_valid((const char *)s, 4) != ref_valid(s, 4) && bad++ < 5)
            CHECK(0, "4 bytes %02x %02x %02x %02x", s[0], s[1], s[2], s[3]);
        }
  CHECK(bad == 0, "%ld of %ld strings disagree with the reference", bad, total);
}

/* The unit boundaries of s, as th_utf8_next walks them. */
static int on_boundary(const char *s, size_t n, size_t at) {
  size_t i = 0;
  int ok;
  while (i < at)
    i += th_utf8_next(s + i, n - i, &ok);
  return i == at;
}

static void test_cut(void) {
  /* the review's case: "/tasks/a" and 200 é, logged in 255 or 256 bytes */
  char path[8 + 400];
  memcpy(path, "/tasks/a", 8);
  for (int i = 0; i < 200; i++)
    memcpy(path + 8 + 2 * i, "\xc3\xa9", 2);
  CHECK(th_utf8_cut(path, sizeof path, 255) == 254, "%zu", th_utf8_cut(path, sizeof path, 255));
  CHECK(th_utf8_cut(path, sizeof path, 256) == 256, "%zu", th_utf8_cut(path, sizeof path, 256));
  CHECK(th_utf8_cut(path, sizeof path, 408) == 408, "whole");
  CHECK(th_utf8_cut(path, sizeof path, 5000) == 408, "n <= max");
  CHECK(th_utf8_cut(path, sizeof path, 0) == 0, "max 0");
  CHECK(th_utf8_cut("ab\xf0\x9f\x98\x80", 6, 5) == 2, "an emoji is not split");
  CHECK(th_utf8_cut("\xff\xff\xff", 3, 2) == 2, "ill-formed bytes are units of one");
  CHECK(th_utf8_cut("\xe2\x82\x41", 3, 1) == 0, "a maximal subpart is not split");

  /* every budget over random strings biased towards multi-byte units */
  static const char *const pieces[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                       "\xe2\x82", "\xff", "\x80", "\xed\xa0\x80", "\0"};
  srand(7);
  int bad = 0;
  for (int round = 0; round < 2000; round++) {
    char s[256];
    size_t n = 0;
    while (n < sizeof s - 4) {
      const char *p = pieces[rand() % TH_ARRAY_LEN(pieces)];
      size_t plen = *p ? strlen(p) : 1;
      memcpy(s + n, p, plen);
      n += plen;
      if (rand() % 40 == 0)
        break;
    }
    for (size_t max = 0; max <= n + 1; max++) {
      size_t c = th_utf8_cut(s, n, max);
      int ok = 1;
      size_t next = 0;
      if (c < n)
        next = th_utf8_next(s + c, n - c, &ok);
      if (c > max || c > n || !on_boundary(s, n, c) || (c < n && c + next <= max)) {
        if (bad++ < 5)
          CHECK(0, "round %d, n %zu, max %zu: cut at %zu", round, n, max, c);
      }
    }
  }
  CHECK(bad == 0, "%d bad cuts", bad);
}

int main(void) {
  test_vectors();
  test_exhaustive();
  test_cut();
  return CHECK_DONE();
}
