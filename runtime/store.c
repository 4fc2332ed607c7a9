/* store — the helpers every backend shares (see store.h). */
#include "store.h"

#include <string.h>

double th_store_call_start(const th_store *s) { return s->stats ? th_now_ms() : 0; }

void th_store_count_call(th_store *s, double t0) {
  if (s->stats) {
    s->stats->calls++;
    s->stats->latency_ms += th_now_ms() - t0;
  }
}

th_result th_store_set_owner(th_store *s, const char *owner) {
  if (!owner)
    owner = TH_STORE_PUBLIC_OWNER;
  size_t n = strnlen(owner, TH_STORE_MAX_OWNER + 1);
  s->owner[0] = '\0';
  if (n == 0 || n > TH_STORE_MAX_OWNER)
    return TH_ERR_INVALID;
  memcpy(s->owner, owner, n + 1);
  return TH_OK;
}
