#include "comparisons.h"
#include "testutil.h"
#include <check.h>
#include <string.h>

/* Loads text (written to a scratch file) in fmt; returns the load's result. */
static int load_text(const char *text, comparisons_format_t fmt, comparisons_t *c, err_t *err,
                     char *dir) {
    char path[TESTUTIL_PATH_CAP];
    testutil_scratch_dir(dir, 64, "comparisons");
    testutil_spit(testutil_path(path, dir, "c.jsonl"), text, strlen(text));
    return comparisons_load(c, path, fmt, err);
}

START_TEST(test_comparisons_kway) {
    char dir[64];
    comparisons_t c;
    err_t err = ERR_INIT;
    const char *text = "{\"prompt\": \"p\\u0000q\", \"responses\": [\"a\", \"b\", \"c\"], "
                       "\"ranks\": [3, 7, 3], \"labeler\": \"ann\"}\n\n"
                       "{\"prompt\": \"x\", \"responses\": [\"y\", \"z\"], \"ranks\": [2, 1]}\n";
    ck_assert_msg(load_text(text, COMPARISONS_KWAY, &c, &err, dir) == 0, "%s", err.msg);
    ck_assert_int_eq(c.n, 2);
    const comparisons_item_t *a = &c.items[0], *b = &c.items[1];
    ck_assert_int_eq(a->prompt_len, 3); /* the NUL is data */
    ck_assert(!memcmp(a->prompt, "p\0q", 3));
    ck_assert_int_eq(a->k, 3);
    ck_assert_int_eq(a->ranks[0], 1); /* dense: 3, 7, 3 → 1, 2, 1 */
    ck_assert_int_eq(a->ranks[1], 2);
    ck_assert_int_eq(a->ranks[2], 1);
    ck_assert_str_eq(a->labeler, "ann");
    ck_assert_int_eq(b->line, 3); /* the blank line is counted */
    ck_assert_ptr_null(b->labeler);
    ck_assert_str_eq(b->responses[1], "z");
    ck_assert_int_eq(b->ranks[1], 1);
    comparisons_release(&c);
    testutil_rm_tree(dir);
}
END_TEST

START_TEST(test_comparisons_hh_split) {
    err_t err = ERR_INIT;
    size_t po, pl, ro, rl;
    const char *t = "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: And?\n\nAssistant: Bye.";
    ck_assert_int_eq(comparisons_split_hh(t, strlen(t), &po, &pl, &ro, &rl, &err), 0);
    /* the prompt keeps the earlier turns, so the template reproduces the transcript */
    ck_assert(pl == strlen("Hi\n\nAssistant: Hello\n\nHuman: And?") &&
              !memcmp(t + po, "Hi\n\nAssistant: Hello\n\nHuman: And?", pl));
    ck_assert(rl == 4 && !memcmp(t + ro, "Bye.", 4));
    const char *empty = "\n\nHuman: \n\nAssistant:";
    ck_assert_int_eq(comparisons_split_hh(empty, strlen(empty), &po, &pl, &ro, &rl, &err), 0);
    ck_assert(pl == 0 && rl == 0);
    ck_assert_int_eq(comparisons_split_hh("Human: x", 8, &po, &pl, &ro, &rl, &err), -1);
    ck_assert(strstr(err.msg, "does not start with"));
    err_clear(&err);
    const char *none = "\n\nHuman: only a question";
    ck_assert_int_eq(comparisons_split_hh(none, strlen(none), &po, &pl, &ro, &rl, &err), -1);
    ck_assert(strstr(err.msg, "no \"\\n\\nAssistant:\" turn"));
}
END_TEST

START_TEST(test_comparisons_pairwise) {
    char dir[64];
    comparisons_t c;
    err_t err = ERR_INIT;
    const char *text = "{\"prompt\": \"Q\", \"chosen\": \"good\", \"rejected\": \"bad\"}\n"
                       "{\"chosen\": \"\\n\\nHuman: Q2\\n\\nAssistant: yes\", "
                       "\"rejected\": \"\\n\\nHuman: Q2\\n\\nAssistant:no\"}\n";
    ck_assert_msg(load_text(text, COMPARISONS_PAIRWISE, &c, &err, dir) == 0, "%s", err.msg);
    ck_assert_int_eq(c.n, 2);
    ck_assert(!c.items[0].hh && c.items[1].hh);
    ck_assert_str_eq(c.items[1].prompt, "Q2");
    ck_assert_str_eq(c.items[1].responses[0], "yes");
    ck_assert_str_eq(c.items[1].responses[1], "no");
    ck_assert(c.items[1].ranks[0] == 1 && c.items[1].ranks[1] == 2);
    comparisons_release(&c);
    testutil_rm_tree(dir);
}
END_TEST

static void bad(const char *text, comparisons_format_t fmt, const char *want) {
    char dir[64];
    comparisons_t c;
    err_t err = ERR_INIT;
    ck_assert_int_eq(load_text(text, fmt, &c, &err, dir), -1);
    ck_assert_msg(strstr(err.msg, want), "got '%s', want '%s'", err.msg, want);
    ck_assert(c.n == 0 && c.items == NULL);
    testutil_rm_tree(dir);
}

START_TEST(test_comparisons_bad_lines) {
    const char *ok = "{\"prompt\": \"a\", \"responses\": [\"x\", \"y\"], \"ranks\": [1, 2]}\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", ok,
             "{\"prompt\": \"a\", \"responses\": [\"x\", \"y\"], \"ranks\": [1, 0]}\n");
    bad(buf, COMPARISONS_KWAY, "c.jsonl:2: \"ranks\"[1]: 0 is not a rank (1 = best)");
    bad("{\"prompt\": \"a\", \"responses\": [\"x\"], \"ranks\": [1]}", COMPARISONS_KWAY,
        "c.jsonl:1: \"responses\": 1 responses (2 to 64)");
    bad("{\"prompt\": \"a\", \"responses\": [\"x\", 3], \"ranks\": [1, 2]}", COMPARISONS_KWAY,
        "c.jsonl:1: \"responses\"[1] must be a string");
    bad("{\"prompt\": \"a\", \"responses\": [\"x\", \"y\"], \"ranks\": [1, \"2\"]}",
        COMPARISONS_KWAY, "\"ranks\"[1] must be an integer");
    bad("{\"responses\": [\"x\", \"y\"], \"ranks\": [1, 2]}", COMPARISONS_KWAY,
        "c.jsonl:1: missing \"prompt\"");
    bad("{\"prompt\": \"a\", \"chosen\": \"x\"}", COMPARISONS_PAIRWISE, "missing \"rejected\"");
    bad("{\"chosen\": \"x\", \"rejected\": \"y\"}", COMPARISONS_PAIRWISE,
        "c.jsonl:1: \"chosen\": the transcript does not start with");
    bad("\n\n", COMPARISONS_KWAY, "no JSON lines");
}
END_TEST

Suite *test_comparisons_suite(void);
Suite *test_comparisons_suite(void) {
    Suite *s = suite_create("comparisons");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_comparisons_kway);
    tcase_add_test(tc, test_comparisons_hh_split);
    tcase_add_test(tc, test_comparisons_pairwise);
    tcase_add_test(tc, test_comparisons_bad_lines);
    suite_add_tcase(s, tc);
    return s;
}
