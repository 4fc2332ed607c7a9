/* partition — which AWS partition a region belongs to, and so the DNS suffix
 * of its endpoints ("amazonaws.com", "amazonaws.com.cn", "c2s.ic.gov", ...).
 *
 * The rules are the SDKs' (botocore's data/partitions.json, the version named
 * in partition.c): a region belongs to the first partition that lists it or
 * whose regionRegex it matches, else to "aws". So a region no SDK knows yet
 * but named in a partition's pattern ("us-iso-west-9") gets that partition's
 * suffix, as the SDKs give it. tests/partition_crosscheck.py compares every
 * region in the installed botocore data, and made-up ones, with botocore.
 * Pure: static data, no allocation.
 */
#ifndef TH_PARTITION_H
#define TH_PARTITION_H

typedef struct th_partition {
  const char *id;         /* "aws", "aws-cn", "aws-us-gov", "aws-iso", ... */
  const char *dns_suffix; /* "amazonaws.com", ... */
} th_partition;

/* The partition of `region` (never NULL: "aws" when nothing matches, as in
 * the SDKs). The result is static. */
const th_partition *th_partition_of(const char *region);

#endif
