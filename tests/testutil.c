/* tests/testutil.c: see testutil.h. */
#include "testutil.h" /* own header first: proves it compiles on its own */
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void testutil_scratch_dir(char *dir, size_t cap, const char *tag) {
    ck_assert_int_lt(snprintf(dir, cap, "/tmp/rlhf-test-%s-XXXXXX", tag), (int)cap);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s failed", dir);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void testutil_rm_tree(const char *path) {
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *testutil_path(char *out, const char *dir, const char *name) {
    ck_assert_int_lt(snprintf(out, TESTUTIL_PATH_CAP, "%s/%s", dir, name), TESTUTIL_PATH_CAP);
    return out;
}

char *testutil_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    const long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

void testutil_spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

void testutil_copy_file(const char *src, const char *dst) {
    size_t n;
    char *b = testutil_slurp(src, &n);
    testutil_spit(dst, b, n);
    free(b);
}

json_t *testutil_load_json(const char *path) {
    json_error_t je;
    json_t *v = json_load_file(path, 0, &je);
    ck_assert_msg(v != NULL, "%s:%d: %s", path, je.line, je.text);
    return v;
}

double testutil_json_number(const json_t *obj, const char *key_path) {
    char buf[256];
    ck_assert_int_lt(snprintf(buf, sizeof buf, "%s", key_path), (int)sizeof buf);
    const json_t *v = obj;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        char *end;
        const long i = strtol(k, &end, 10);
        v = json_is_array(v) && *end == '\0' ? json_array_get(v, (size_t)i) : json_object_get(v, k);
        ck_assert_msg(v != NULL, "JSON has no %s (at %s)", key_path, k);
    }
    ck_assert_msg(json_is_number(v), "JSON %s is not a number", key_path);
    return json_number_value(v);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void testutil_list_dir(const char *dir, char *out, size_t cap) {
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot list %s", dir);
    char *names[256];
    size_t n = 0, k = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            ck_assert_uint_lt(n, 256);
            names[n++] = strdup(de->d_name);
        }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, "%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
    ck_assert_uint_lt(k, cap);
}
