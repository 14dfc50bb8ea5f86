/* tests/test_fs.c: mkdir -p, atomic writes and sets of files. The failure tests inject their
 * faults themselves (tests run as root in CI, so permissions cannot make a write fail): a name
 * that is a directory, a file size limit (RLIMIT_FSIZE) that cuts a write, and crashes
 * simulated by a child that exits mid-set or by the exact state a crash after the commit point
 * leaves. Each checks the directory holds exactly the old files afterwards. */
#include "fs.h"
#include "testutil.h"
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[128];
static char path[TESTUTIL_PATH_CAP];

static void setup(void) {
    testutil_scratch_dir(dir, sizeof dir, "fs");
}

static void teardown(void) {
    testutil_rm_tree(dir);
}

static void put(const char *name, const char *text) {
    testutil_spit(testutil_path(path, dir, name), text, strlen(text));
}

static void expect_content(const char *name, const char *want) {
    char *got = testutil_slurp(testutil_path(path, dir, name), NULL);
    ck_assert_str_eq(got, want);
    free(got);
}

static void expect_listing(const char *want) {
    char got[1024];
    testutil_list_dir(dir, got, sizeof got);
    ck_assert_str_eq(got, want);
}

START_TEST(test_fs_write_atomic_replaces) {
    err_t err = ERR_INIT;
    testutil_path(path, dir, "run.json");
    ck_assert_msg(fs_write_atomic(path, "{}", 2, &err) == 0, "%s", err.msg);
    ck_assert_msg(fs_write_atomic(path, "{\"a\": 1}", 8, &err) == 0, "%s", err.msg);
    expect_content("run.json", "{\"a\": 1}");
    expect_listing("run.json"); /* no run.json.tmp */
    /* the target is a non-empty directory: the rename fails, the temporary goes */
    char sub[TESTUTIL_PATH_CAP];
    ck_assert_int_eq(mkdir(testutil_path(sub, dir, "sub"), 0755), 0);
    put("sub/x", "x");
    ck_assert_int_eq(fs_write_atomic(sub, "new", 3, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "/sub: rename failed"));
    expect_listing("run.json sub");
    err_clear(&err);
    ck_assert_int_eq(fs_write_atomic("/nonexistent-rlhf-fs/x", "a", 1, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent-rlhf-fs/x.tmp: cannot create"));
}
END_TEST

START_TEST(test_fs_mkdirs) {
    err_t err = ERR_INIT;
    char p[TESTUTIL_PATH_CAP];
    testutil_path(p, dir, "a/b//c/");
    ck_assert_msg(fs_mkdirs(p, &err) == 0, "%s", err.msg);
    struct stat sb;
    ck_assert_int_eq(stat(testutil_path(p, dir, "a/b/c"), &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_msg(fs_mkdirs(p, &err) == 0, "existing: %s", err.msg); /* exists: fine */
    ck_assert_msg(fs_mkdirs(dir, &err) == 0, "%s", err.msg);
    put("a/file", "x");
    ck_assert_int_eq(fs_mkdirs(testutil_path(p, dir, "a/file/d/e"), &err), -1);
    char want[TESTUTIL_PATH_CAP + 32];
    snprintf(want, sizeof want, "%s/a/file: not a directory", dir);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(stat(testutil_path(p, dir, "a/file/d"), &sb), -1);
    err_clear(&err);
    ck_assert_int_eq(fs_mkdirs(testutil_path(p, dir, "a/file"), &err), -1);
    ck_assert_str_eq(err.msg, want);
}
END_TEST

/* dir with the old pair and a file the sets never touch */
static void old_pair(void) {
    put("vocab.json", "old vocab");
    put("merges.txt", "old merges");
    put("other.txt", "other");
}

START_TEST(test_fs_set_commit) {
    err_t err = ERR_INIT;
    old_pair();
    fs_set_t *set = fs_set_begin(dir, &err);
    ck_assert_msg(set, "%s", err.msg);
    ck_assert_int_eq(fs_set_write(set, "vocab.json", "new vocab", 9, &err), 0);
    FILE *f = fs_set_add(set, "merges.txt", &err);
    ck_assert_ptr_nonnull(f);
    fputs("new merges", f);
    /* nothing is visible before the commit */
    expect_content("vocab.json", "old vocab");
    ck_assert_msg(fs_set_commit(&set, &err) == 0, "%s", err.msg);
    ck_assert_ptr_null(set);
    expect_content("vocab.json", "new vocab");
    expect_content("merges.txt", "new merges");
    expect_content("other.txt", "other");
    expect_listing("merges.txt other.txt vocab.json");
    /* a set creates its directory; an empty set commits nothing */
    char sub[TESTUTIL_PATH_CAP];
    ck_assert_ptr_nonnull(set = fs_set_begin(testutil_path(sub, dir, "x/y"), &err));
    ck_assert_int_eq(fs_set_copy(set, "copy.txt", testutil_path(path, dir, "other.txt"), &err), 0);
    ck_assert_msg(fs_set_commit(&set, &err) == 0, "%s", err.msg);
    expect_content("x/y/copy.txt", "other");
    ck_assert_ptr_nonnull(set = fs_set_begin(dir, &err));
    ck_assert_int_eq(fs_set_commit(&set, &err), 0);
    expect_listing("merges.txt other.txt vocab.json x");
}
END_TEST

START_TEST(test_fs_set_bad_names) {
    err_t err = ERR_INIT;
    fs_set_t *set = fs_set_begin(dir, &err);
    ck_assert_ptr_nonnull(set);
    const char *bad[] = {"a/b", "..", ".", "", ".fs-stage.1.x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err_clear(&err);
        ck_assert_ptr_null(fs_set_add(set, bad[i], &err));
        ck_assert_ptr_nonnull(strstr(err.msg, "is not a plain file name"));
    }
    ck_assert_int_eq(fs_set_write(set, "a", "1", 1, &err), 0);
    err_clear(&err);
    ck_assert_int_eq(fs_set_write(set, "a", "2", 1, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "/a: added to the set twice"));
    fs_set_abort(&set);
    ck_assert_ptr_null(set);
    fs_set_abort(&set); /* NULL is fine */
    expect_listing("");
}
END_TEST

/* One file of the set is a directory in dir: the rename would fail after the commit point,
 * so commit refuses before it and dir keeps the old pair. */
START_TEST(test_fs_set_target_is_directory) {
    err_t err = ERR_INIT;
    old_pair();
    char sub[TESTUTIL_PATH_CAP];
    ck_assert_int_eq(mkdir(testutil_path(sub, dir, "merges.txt.d"), 0755), 0);
    put("merges.txt.d/keep", "k");
    fs_set_t *set = fs_set_begin(dir, &err);
    ck_assert_int_eq(fs_set_write(set, "vocab.json", "new vocab", 9, &err), 0);
    ck_assert_int_eq(fs_set_write(set, "merges.txt.d", "new merges", 10, &err), 0);
    ck_assert_int_eq(fs_set_commit(&set, &err), -1);
    ck_assert_ptr_null(set);
    ck_assert_ptr_nonnull(strstr(err.msg, "/merges.txt.d: is a directory"));
    expect_content("vocab.json", "old vocab");
    expect_content("merges.txt", "old merges");
    expect_content("merges.txt.d/keep", "k");
    expect_listing("merges.txt merges.txt.d other.txt vocab.json");
}
END_TEST

/* A write that fails part-way (the file size limit cuts it): the set is aborted, or committed
 * regardless by a caller that ignored fwrite's error; either way dir keeps the old pair. */
START_TEST(test_fs_set_write_fails_part_way) {
    err_t err = ERR_INIT;
    old_pair();
    struct rlimit old, small = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of death */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    char *big = calloc(1, 65536);
    ck_assert_ptr_nonnull(big);

    fs_set_t *set = fs_set_begin(dir, &err);
    ck_assert_int_eq(fs_set_write(set, "vocab.json", "new vocab", 9, &err), 0);
    ck_assert_int_eq(fs_set_write(set, "merges.txt", big, 65536, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "/merges.txt: write failed: File too large"));
    fs_set_abort(&set);
    expect_listing("merges.txt other.txt vocab.json");

    err_clear(&err);
    set = fs_set_begin(dir, &err);
    ck_assert_int_eq(fs_set_write(set, "vocab.json", "new vocab", 9, &err), 0);
    FILE *f = fs_set_add(set, "merges.txt", &err);
    (void)!fwrite(big, 1, 65536, f); /* a careless caller */
    ck_assert_int_eq(fs_set_commit(&set, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "/merges.txt: write failed"));

    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    free(big);
    expect_content("vocab.json", "old vocab");
    expect_content("merges.txt", "old merges");
    expect_listing("merges.txt other.txt vocab.json");
}
END_TEST

/* A crash before the commit point: the child writes a whole set and dies without committing.
 * Its stage is ignored by readers and removed by the next set (its process is gone). */
START_TEST(test_fs_set_crash_before_commit) {
    old_pair();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        err_t e = ERR_INIT;
        fs_set_t *s = fs_set_begin(dir, &e);
        if (!s || fs_set_write(s, "vocab.json", "new vocab", 9, &e) ||
            fs_set_write(s, "merges.txt", "new merges", 10, &e))
            _exit(1);
        fflush(NULL);
        _exit(0); /* the crash */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char listing[1024];
    testutil_list_dir(dir, listing, sizeof listing);
    ck_assert_msg(strstr(listing, ".fs-stage."), "%s", listing);
    char real[TESTUTIL_PATH_CAP];
    err_t err = ERR_INIT;
    ck_assert_int_eq(fs_resolve(testutil_path(path, dir, "vocab.json"), real, sizeof real, &err),
                     0);
    ck_assert_str_eq(real, path);
    expect_content("vocab.json", "old vocab");
    fs_set_t *set = fs_set_begin(dir, &err); /* recovers: the dead stage goes */
    ck_assert_ptr_nonnull(set);
    fs_set_abort(&set);
    expect_listing("merges.txt other.txt vocab.json");
}
END_TEST

/* The state a crash after the commit point leaves: merges.txt already renamed into place,
 * vocab.json still in the commit directory. Readers see the new pair through fs_resolve;
 * recovery finishes the renames. */
static void crashed_after_commit(void) {
    char c[TESTUTIL_PATH_CAP];
    old_pair();
    ck_assert_int_eq(mkdir(testutil_path(c, dir, ".fs-commit.1.AbCdEf"), 0700), 0);
    put(".fs-commit.1.AbCdEf/vocab.json", "new vocab");
    put("merges.txt", "new merges");
}

START_TEST(test_fs_set_crash_after_commit) {
    err_t err = ERR_INIT;
    crashed_after_commit();
    char real[TESTUTIL_PATH_CAP], want[TESTUTIL_PATH_CAP];
    ck_assert_int_eq(fs_resolve(testutil_path(path, dir, "vocab.json"), real, sizeof real, &err),
                     0);
    ck_assert_str_eq(real, testutil_path(want, dir, ".fs-commit.1.AbCdEf/vocab.json"));
    ck_assert_int_eq(fs_resolve(testutil_path(path, dir, "merges.txt"), real, sizeof real, &err),
                     0);
    ck_assert_str_eq(real, path);
    ck_assert_msg(fs_set_recover(dir, &err) == 0, "%s", err.msg);
    expect_content("vocab.json", "new vocab");
    expect_content("merges.txt", "new merges");
    expect_listing("merges.txt other.txt vocab.json");
    ck_assert_int_eq(fs_set_recover(dir, &err), 0); /* again: nothing to do */
    ck_assert_int_eq(fs_set_recover("/nonexistent-rlhf-fs", &err), 0);
}
END_TEST

/* A single atomic write after such a crash finishes the set first, so the older set's file
 * cannot land later over the newer single write. */
START_TEST(test_fs_write_atomic_after_crash) {
    err_t err = ERR_INIT;
    crashed_after_commit();
    ck_assert_int_eq(fs_write_atomic(testutil_path(path, dir, "vocab.json"), "single", 6, &err), 0);
    expect_content("vocab.json", "single");
    expect_listing("merges.txt other.txt vocab.json");
}
END_TEST

START_TEST(test_fs_clock) {
    const double a = fs_monotonic_s();
    usleep(20000);
    const double b = fs_monotonic_s();
    ck_assert_msg(b - a >= 0.015 && b - a < 5.0, "%.6f s", b - a);
    ck_assert_int_gt(fs_wall_time(), 1700000000); /* after 2023-11 */
}
END_TEST

Suite *test_fs_suite(void);
Suite *test_fs_suite(void) {
    Suite *s = suite_create("fs");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fs_write_atomic_replaces);
    tcase_add_test(tc, test_fs_mkdirs);
    tcase_add_test(tc, test_fs_set_commit);
    tcase_add_test(tc, test_fs_set_bad_names);
    tcase_add_test(tc, test_fs_set_target_is_directory);
    tcase_add_test(tc, test_fs_set_write_fails_part_way);
    tcase_add_test(tc, test_fs_set_crash_before_commit);
    tcase_add_test(tc, test_fs_set_crash_after_commit);
    tcase_add_test(tc, test_fs_write_atomic_after_crash);
    tcase_add_test(tc, test_fs_clock);
    suite_add_tcase(s, tc);
    return s;
}
