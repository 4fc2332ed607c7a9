/* fuzz_common — what several fuzz targets share.
 *
 * lua_json.c writes an empty json.array as a per-process random placeholder
 * string ("\x01th-empty-array-<uuid>\x01") and replaces its JSON text by []
 * after encoding. No client can know the uuid, but libFuzzer can: its
 * comparison hooks read it out of memcmp and feed it back. Targets skip inputs
 * holding the prefix (their "finds" are that replacement, not a bug). */
#ifndef TH_FUZZ_COMMON_H
#define TH_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* memmem is a GNU extension, and the core builds without _GNU_SOURCE. */
static inline int th_fuzz_holds_placeholder(const uint8_t *data, size_t size) {
  static const char prefix[] = "th-empty-array-";
  const size_t n = sizeof prefix - 1;
  for (size_t i = 0; i + n <= size; i++)
    if (data[i] == (uint8_t)prefix[0] && memcmp(data + i, prefix, n) == 0)
      return 1;
  return 0;
}

#endif
