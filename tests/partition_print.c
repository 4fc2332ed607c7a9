/* partition-print — for each region name on stdin (one a line) prints
 *   region <TAB> partition id <TAB> default DynamoDB endpoint
 * where the endpoint is what th_config_from_env derives with AWS_REGION set
 * to that name and no endpoint variable ("invalid: <reason>" when the
 * configuration refuses the name). Used by tests/partition_crosscheck.py.
 * Exit status 0 when every line was read, 1 on an I/O error or a line over
 * 255 bytes.
 */
#include "config.h"
#include "partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  static const char *const unset[] = {"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL",
                                      "AWS_DEFAULT_REGION", "TASKHOST_STORE", "AWS_SESSION_TOKEN"};
  char line[258], err[512];
  for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
    unsetenv(unset[i]);
  setenv("TABLE_NAME", "Tasks", 1);
  setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
  while (fgets(line, sizeof line, stdin)) {
    size_t n = strlen(line);
    if (n && line[n - 1] == '\n')
      line[--n] = '\0';
    else if (!feof(stdin)) {
      fprintf(stderr, "partition-print: line too long\n");
      return 1;
    }
    th_config c;
    setenv("AWS_REGION", line, 1);
    if (th_config_from_env(&c, "/opt", err, sizeof err) == TH_OK) {
      printf("%s\t%s\t%s\n", line, th_partition_of(line)->id, c.dynamodb_endpoint);
      th_config_free(&c);
    } else {
      printf("%s\t%s\tinvalid: %s\n", line, th_partition_of(line)->id, err);
    }
  }
  return ferror(stdin) || fflush(stdout) != 0;
}
