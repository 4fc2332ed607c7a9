/* store_dynamodb — the DynamoDB backend of the store contract (store.h),
 * on the dynamodb client (dynamodb.h), every key (user_id = s->owner, id):
 * create = PutItem with attribute_not_exists(id), get = consistent GetItem,
 * update = UpdateItem SET ... with attribute_exists(id) and ALL_NEW,
 * remove = DeleteItem with attribute_exists(id) and ALL_OLD, scan =
 * consistent Query pages of the owner's partition, newest first
 * (ScanIndexForward false), with a one-item look-ahead, so last_id is NULL
 * exactly when nothing follows. No Scan: a list costs what the caller's own
 * items cost, whatever the table holds.
 *
 * The table needs a partition key `user_id` and a sort key `id`, both of
 * type S. Opening does not touch the network (no DescribeTable: the
 * function's role needs only the five actions); the first operation
 * connects, and the connection is then kept for the life of the store.
 *
 * Beyond the SQLite backend: an update sets at most TH_DDB_MAX_UPDATE_FIELDS
 * attributes; DynamoDB's own limits (400 KB items, 38-digit numbers, no
 * empty sets) come back as TH_ERR_INVALID. A table that does not exist, or
 * credentials DynamoDB refuses, are TH_ERR_INTERNAL with the reason in
 * s->error (a deployment error: retrying will not help).
 */
#ifndef TH_STORE_DYNAMODB_H
#define TH_STORE_DYNAMODB_H

#include <stddef.h>

#include "config.h"
#include "http.h"
#include "store.h"

/* Opens the DynamoDB store described by cfg (table_name, aws_region, the
 * credentials, dynamodb_endpoint, aws_max_attempts). NULL on failure with a
 * one-line reason (never a secret) in err. Close it with s->ops->close. */
th_store *th_store_dynamodb_open(const th_config *cfg, char *err, size_t errlen);

/* The HTTP counters of the store's connection (requests sent, TCP
 * connections opened), for tests and diagnostics. s must come from
 * th_store_dynamodb_open. */
th_http_stats th_store_dynamodb_http_stats(th_store *s);

#endif
