/* metrics_emit — CPU per EMF line (th_metrics_emit: build the line on the
 * module's Lua state, cjson-encode it, write it), against the budget
 * of 10 µs per invocation.
 *
 *   bench-metrics-emit [--count N] [--out FILE]
 *     N     lines measured (default 100000), after N/10 warm-up ones
 *     FILE  where the lines go (default /dev/null; a pipe or a file costs the
 *           write(2) the Lambda sandbox's stdout pipe costs)
 *
 * The sample is a create's: CreateTask, 201, store costs, a 36-byte request
 * id and a Lambda-shaped trace id. Reported, one JSON line: CPU (user+sys,
 * getrusage) and wall time (CLOCK_MONOTONIC) per line, and the line's bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "metrics.h"

static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  long count = 100000;
  const char *path = "/dev/null";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--count") == 0)
      count = strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--out") == 0)
      path = argv[i + 1];
  }
  if (count < 1) {
    fprintf(stderr, "usage: bench-metrics-emit [--count N] [--out FILE]\n");
    return 2;
  }
  FILE *out = fopen(path, "w");
  th_metrics *m = NULL;
  if (!out || th_metrics_new("taskhost", "taskhost", "0.1.0+0123456789ab", "INFO", out, &m) != TH_OK) {
    fprintf(stderr, "bench-metrics-emit: cannot set up (%s)\n", path);
    return 1;
  }
  th_metrics_sample s = {.operation = "CreateTask", .status = 201, .latency_ms = 3.217,
                         .store = {.calls = 1, .retries = 0, .throttles = 0, .latency_ms = 1.842},
                         .request_id = "8f5e3b1c-2d4a-4e6f-9a0b-1c2d3e4f5a6b",
                         .trace_id = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"};
  for (long i = 0; i < count / 10; i++)
    th_metrics_emit(m, &s);
  const char *line;
  size_t len = 0;
  th_metrics_encode(m, &s, &line, &len);
  double c0 = cpu_us(), w0 = wall_us();
  for (long i = 0; i < count; i++)
    th_metrics_emit(m, &s);
  double c1 = cpu_us(), w1 = wall_us();
  printf("{\"lines\": %ld, \"cpu_us_per_line\": %.2f, \"wall_us_per_line\": %.2f, \"line_bytes\": %zu}\n",
         count, (c1 - c0) / (double)count, (w1 - w0) / (double)count, len + 1);
  th_metrics_free(m);
  fclose(out);
  return 0;
}
