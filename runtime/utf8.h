/* utf8 — well-formed UTF-8 as RFC 3629 and Unicode (Table 3-7) define it: no
 * overlong forms, no surrogates (U+D800..U+DFFF), nothing past U+10FFFF. For
 * text that leaves the process to readers that decode strictly (the log).
 * A string is read as a run of units: a well-formed character, or an
 * ill-formed "maximal subpart" (the longest start of a sequence that could
 * still have become a character; one byte at least) — the unit that Unicode
 * and WHATWG replace with one U+FFFD, as Python's errors="replace" does.
 * Pure functions of their arguments: no state, no allocation. Strings are
 * (pointer, length): NUL is an ordinary character (U+0000). */
#ifndef TH_UTF8_H
#define TH_UTF8_H

#include <stddef.h>

/* U+FFFD REPLACEMENT CHARACTER, as UTF-8. */
#define TH_UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Length in bytes (1..4) of the unit that starts s[0..n), n > 0; *valid is 1
 * for a well-formed character, 0 for an ill-formed subpart (length 1..3). */
size_t th_utf8_next(const char *s, size_t n, int *valid);

/* 1 when s[0..n) is well-formed UTF-8. */
int th_utf8_valid(const char *s, size_t n);

/* Length of the longest prefix of s[0..n) of at most max bytes that ends on
 * a unit boundary: cutting there never splits a character (n when n <= max). */
size_t th_utf8_cut(const char *s, size_t n, size_t max);

#endif
