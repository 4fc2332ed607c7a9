/* store — the helpers every backend shares (see store.h). */
#include "store.h"

#include <string.h>

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
