/* partition — see partition.h. The table is botocore 1.43.11's
 * botocore/data/partitions.json (the newest botocore on the development
 * machine; Debian 12's python3-botocore 1.29.27 has the same rules for the
 * five partitions it knows, aws, aws-cn, aws-us-gov, aws-iso and aws-iso-b,
 * its aws regex without il and mx), in that file's order:
 *
 *   id          regionRegex                                   listed, not matched  dnsSuffix
 *   aws         ^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$      aws-global           amazonaws.com
 *   aws-cn      ^cn\-\w+\-\d+$                                aws-cn-global        amazonaws.com.cn
 *   aws-eusc    ^eusc\-(de)\-\w+\-\d+$                        -                    amazonaws.eu
 *   aws-iso     ^us\-iso\-\w+\-\d+$                           aws-iso-global       c2s.ic.gov
 *   aws-iso-b   ^us\-isob\-\w+\-\d+$                          aws-iso-b-global     sc2s.sgov.gov
 *   aws-iso-e   ^eu\-isoe\-\w+\-\d+$                          aws-iso-e-global     cloud.adc-e.uk
 *   aws-iso-f   ^us\-isof\-\w+\-\d+$                          aws-iso-f-global     csp.hci.ic.gov
 *   aws-us-gov  ^us\-gov\-\w+\-\d+$                           aws-us-gov-global    amazonaws.com
 *
 * Every regionRegex is ^(P1|P2|...)\-\w+\-\d+$, so it is matched here as: one
 * of the prefixes, '-', one or more word characters, '-', one or more digits,
 * the end. \w and \d are taken as ASCII ([A-Za-z0-9_], [0-9]): config.c
 * accepts only ASCII letters, digits and '-' in a region name. The regions a
 * partition lists that its regex does not match are listed here too.
 */
#include "partition.h"

#include <string.h>

#include "common.h"

#define MAX_PREFIXES 10

typedef struct row {
  th_partition p;
  const char *prefixes[MAX_PREFIXES]; /* the regex's alternatives; NULL-ended */
  const char *listed;                 /* the listed region the regex misses, or NULL */
} row;

static const row rows[] = {
  {{"aws", "amazonaws.com"}, {"us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"}, "aws-global"},
  {{"aws-cn", "amazonaws.com.cn"}, {"cn"}, "aws-cn-global"},
  {{"aws-eusc", "amazonaws.eu"}, {"eusc-de"}, NULL},
  {{"aws-iso", "c2s.ic.gov"}, {"us-iso"}, "aws-iso-global"},
  {{"aws-iso-b", "sc2s.sgov.gov"}, {"us-isob"}, "aws-iso-b-global"},
  {{"aws-iso-e", "cloud.adc-e.uk"}, {"eu-isoe"}, "aws-iso-e-global"},
  {{"aws-iso-f", "csp.hci.ic.gov"}, {"us-isof"}, "aws-iso-f-global"},
  {{"aws-us-gov", "amazonaws.com"}, {"us-gov"}, "aws-us-gov-global"},
};

static int is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* \w+\-\d+$ at s. (\w has no '-', so the first '-' ends the \w run: there
 * is nothing to backtrack.) */
static int tail_matches(const char *s) {
  const char *p = s, *digits;
  while (is_word(*p))
    p++;
  if (p == s || *p != '-')
    return 0;
  digits = ++p;
  while (*p >= '0' && *p <= '9')
    p++;
  return p > digits && *p == '\0';
}

static int matches(const row *r, const char *region) {
  if (r->listed && strcmp(region, r->listed) == 0)
    return 1;
  for (int i = 0; i < MAX_PREFIXES && r->prefixes[i]; i++) {
    size_t n = strlen(r->prefixes[i]);
    if (strncmp(region, r->prefixes[i], n) == 0 && region[n] == '-' && tail_matches(region + n + 1))
      return 1;
  }
  return 0;
}

const th_partition *th_partition_of(const char *region) {
  for (size_t i = 0; region && i < TH_ARRAY_LEN(rows); i++)
    if (matches(&rows[i], region))
      return &rows[i].p;
  return &rows[0].p;
}
