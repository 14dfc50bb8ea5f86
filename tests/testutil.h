/* tests/testutil.h: helpers every test file shares: scratch directories, whole files in and
 * out, JSON files, directory listings. Each one fails the running test (ck_assert) instead of
 * returning an error, so a test reads as the steps it checks. Tests run forked, one process
 * each, so nothing here needs to be thread-safe. */
#ifndef RLHF_TESTUTIL_H
#define RLHF_TESTUTIL_H
#include <jansson.h>
#include <stddef.h>

#define TESTUTIL_PATH_CAP 512 /* bytes of a path the helpers build */

/* Creates a fresh directory /tmp/rlhf-test-TAG-XXXXXX and writes its path into dir (cap bytes).
 * Remove it with testutil_rm_tree. */
void testutil_scratch_dir(char *dir, size_t cap, const char *tag);

/* Removes path and everything under it; a missing path is fine. */
void testutil_rm_tree(const char *path);

/* "dir/name" in out (TESTUTIL_PATH_CAP bytes); returns out. */
char *testutil_path(char *out, const char *dir, const char *name);

/* Reads the whole file; returns a malloc'd buffer with a NUL after the bytes (caller frees) and
 * their count in *len (len may be NULL). */
char *testutil_slurp(const char *path, size_t *len);

/* Writes data[0..len) to path, replacing it. */
void testutil_spit(const char *path, const void *data, size_t len);

/* Copies the file src to dst. */
void testutil_copy_file(const char *src, const char *dst);

/* Parses the JSON file at path (caller json_decrefs it). */
json_t *testutil_load_json(const char *path);

/* A number at a dotted key path of obj ("tolerances.loss_abs", "rewards.1": array index). */
double testutil_json_number(const json_t *obj, const char *key_path);

/* The names in dir except "." and "..", sorted and joined by ' ' into out (cap bytes):
 * "merges.txt vocab.json". Hidden names are included (a test checks that none is left). */
void testutil_list_dir(const char *dir, char *out, size_t cap);
#endif /* RLHF_TESTUTIL_H */
