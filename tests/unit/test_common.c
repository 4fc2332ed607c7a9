/* th_double_to_int64: the one float → integer conversion of the core. Every
 * double an integer type cannot hold must be refused, not converted (that is
 * undefined behaviour; the sanitizer build, with float-cast-overflow, ends
 * the process on one), and every whole double in range converted exactly.
 * Table-driven: one row per value. */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "common.h"

typedef struct row {
  const char *name;
  double x;
  int ok;
  int64_t want; /* when ok */
} row;

int main(void) {
  const row rows[] = {
      {"zero", 0.0, 1, 0},
      {"negative zero", -0.0, 1, 0},
      {"200", 200.0, 1, 200},
      {"-1", -1.0, 1, -1},
      {"2^53 + 2", 0x1p53 + 2, 1, ((int64_t)1 << 53) + 2},
      {"largest double below 2^63", 0x1.fffffffffffffp62, 1, INT64_MAX - 1023},
      {"-2^63 (INT64_MIN, exact)", -0x1p63, 1, INT64_MIN},
      {"2^63 (one past INT64_MAX)", 0x1p63, 0, 0},
      {"next double below -2^63", -0x1.0000000000001p63, 0, 0},
      {"1e300", 1e300, 0, 0},
      {"-1e300", -1e300, 0, 0},
      {"+inf", INFINITY, 0, 0},
      {"-inf", -INFINITY, 0, 0},
      {"NaN", NAN, 0, 0},
      {"-NaN", -NAN, 0, 0},
      {"200.5", 200.5, 0, 0},
      {"-0.5", -0.5, 0, 0},
      {"smallest subnormal", 0x1p-1074, 0, 0},
      {"1 - 2^-53", 1.0 - 0x1p-53, 0, 0},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(rows); i++) {
    const row *r = &rows[i];
    int64_t out = 12345;
    int ok = th_double_to_int64(r->x, &out);
    CHECK(ok == r->ok, "%s: returned %d", r->name, ok);
    if (r->ok)
      CHECK(out == r->want, "%s: %lld, want %lld", r->name, (long long)out, (long long)r->want);
    else
      CHECK(out == 12345, "%s: *out written (%lld) on refusal", r->name, (long long)out);
  }
  return CHECK_DONE();
}
