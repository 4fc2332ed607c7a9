/* store_contract — the behavioural test suite of the store contract (store.h),
 * written once so every backend (sqlite, dynamodb) runs the very same checks
 * from its own unit test.
 *
 * The suite only ever counts items whose ids it created (each run tags its ids
 * "ct-<random tag>-<uuid>"), so it also runs against a shared, non-empty
 * table, and it removes what it created. Items are compared as parsed JSON
 * (key order and string escapes may differ between backends).
 *
 * Beyond store.h, the suite pins down:
 *   - ids are 1..1024 bytes (so every key fits in a cursor), else INVALID;
 *   - every top-level attribute value must be a JSON object, else INVALID;
 *   - update replaces each given attribute whole (a type change such as
 *     {"N":..} → {"S":..}, or an M with other keys, leaves nothing behind);
 *   - a non-NULL last_id is never followed by an empty final page.
 * A backend with th_store_lua_ops runs every check a second time through
 * them (get/update/remove/scan on a Lua state, the tables encoded back to
 * text; also checking the stack rules of store.h); failures of that pass
 * are marked "[lua ops]".
 * It uses an in-memory SQLite database as its JSON and bookkeeping engine.
 */
#ifndef TH_STORE_CONTRACT_H
#define TH_STORE_CONTRACT_H

#include <stdio.h>

#include "store.h"

/* open_fresh(ctx) opens a store for one group of checks (an empty one, or a
 * shared one: both work); the suite closes it. Prints one line per failed
 * check and a summary line to `report` (stderr when NULL).
 * Returns the number of failed checks. */
int th_store_contract_run(th_store *(*open_fresh)(void *ctx), void *ctx, FILE *report);

#endif
