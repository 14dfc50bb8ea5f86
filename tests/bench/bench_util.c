#include "bench_util.h"
#include <stdio.h>
#include <time.h>

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bench_json_merge(const char *path, json_t *fields) {
    json_t *all = json_load_file(path, 0, NULL);
    if (!json_is_object(all)) {
        json_decref(all);
        all = json_object();
    }
    json_object_update(all, fields);
    json_decref(fields);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(all, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(all);
    if (rc || rename(tmp, path)) {
        fprintf(stderr, "bench: error: cannot write %s\n", path);
        return -1;
    }
    return 0;
}
