/* partition: regions to partitions and DNS suffixes, as the SDKs map them —
 * every partition by a real region and by a made-up one its pattern admits,
 * the listed pseudo-regions, and names that miss every pattern (the "aws"
 * fallback, also for names that only look like a partition's). The full
 * comparison with botocore is tests/partition_crosscheck.py. */
#include "check.h"
#include "common.h"
#include "partition.h"

int main(void) {
  static const struct {
    const char *region, *id, *suffix;
  } cases[] = {
    {"us-east-1", "aws", "amazonaws.com"},
    {"eu-west-1", "aws", "amazonaws.com"},
    {"il-central-1", "aws", "amazonaws.com"},
    {"mx-central-1", "aws", "amazonaws.com"},
    {"ap-southeast-7", "aws", "amazonaws.com"},
    {"af-north-99", "aws", "amazonaws.com"},
    {"aws-global", "aws", "amazonaws.com"},
    {"cn-north-1", "aws-cn", "amazonaws.com.cn"},
    {"cn-northwest-1", "aws-cn", "amazonaws.com.cn"},
    {"cn-south-7", "aws-cn", "amazonaws.com.cn"},
    {"aws-cn-global", "aws-cn", "amazonaws.com.cn"},
    {"us-gov-west-1", "aws-us-gov", "amazonaws.com"},
    {"us-gov-east-1", "aws-us-gov", "amazonaws.com"},
    {"aws-us-gov-global", "aws-us-gov", "amazonaws.com"},
    {"us-iso-east-1", "aws-iso", "c2s.ic.gov"},
    {"us-iso-west-1", "aws-iso", "c2s.ic.gov"},
    {"us-iso-west-9", "aws-iso", "c2s.ic.gov"},
    {"aws-iso-global", "aws-iso", "c2s.ic.gov"},
    {"us-isob-east-1", "aws-iso-b", "sc2s.sgov.gov"},
    {"us-isob-west-1", "aws-iso-b", "sc2s.sgov.gov"},
    {"aws-iso-b-global", "aws-iso-b", "sc2s.sgov.gov"},
    {"eu-isoe-west-1", "aws-iso-e", "cloud.adc-e.uk"},
    {"eu-isoe-north-4", "aws-iso-e", "cloud.adc-e.uk"},
    {"aws-iso-e-global", "aws-iso-e", "cloud.adc-e.uk"},
    {"us-isof-south-1", "aws-iso-f", "csp.hci.ic.gov"},
    {"us-isof-east-1", "aws-iso-f", "csp.hci.ic.gov"},
    {"aws-iso-f-global", "aws-iso-f", "csp.hci.ic.gov"},
    {"eusc-de-east-1", "aws-eusc", "amazonaws.eu"},
    {"eusc-de-west-7", "aws-eusc", "amazonaws.eu"},
    /* Nothing matches: the "aws" partition, as in the SDKs. */
    {"eusc-fr-east-1", "aws", "amazonaws.com"},  /* aws-eusc admits only de */
    {"cn-north-x", "aws", "amazonaws.com"},      /* \d+ at the end */
    {"cn-north-1a", "aws", "amazonaws.com"},
    {"us-iso-east", "aws", "amazonaws.com"},
    {"us-iso--1", "aws", "amazonaws.com"},       /* \w+ is not empty */
    {"us-iso-east-", "aws", "amazonaws.com"},
    {"us-isoe-east-1", "aws", "amazonaws.com"},  /* not a prefix + '-' */
    {"US-ISO-EAST-1", "aws", "amazonaws.com"},   /* the patterns are case-sensitive */
    {"xx-foo-1", "aws", "amazonaws.com"},
    {"local", "aws", "amazonaws.com"},
    {"aws-iso-global-1", "aws", "amazonaws.com"},
    {"", "aws", "amazonaws.com"},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    const th_partition *p = th_partition_of(cases[i].region);
    CHECK(p && !strcmp(p->id, cases[i].id) && !strcmp(p->dns_suffix, cases[i].suffix),
          "'%s': %s / %s, want %s / %s", cases[i].region, p ? p->id : "(null)",
          p ? p->dns_suffix : "(null)", cases[i].id, cases[i].suffix);
  }
  CHECK(!strcmp(th_partition_of(NULL)->id, "aws"), "NULL region");
  return CHECK_DONE();
}
