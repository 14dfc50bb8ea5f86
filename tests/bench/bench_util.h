/* tests/bench/bench_util.h: what every benchmark program shares: a monotonic clock and
 * merging its figures into bench.json (each bench program adds its own keys; `make bench` runs
 * them all in one go, so the file holds one run's figures, measured on this machine). */
#ifndef RLHF_BENCH_UTIL_H
#define RLHF_BENCH_UTIL_H
#include <jansson.h>

/* Seconds from a monotonic clock. */
double bench_now(void);
/* Sets every key of fields into the JSON object in path (created if missing), written
 * atomically. Steals the reference to fields. Returns 0, or -1 after printing why. */
int bench_json_merge(const char *path, json_t *fields);
#endif /* RLHF_BENCH_UTIL_H */
