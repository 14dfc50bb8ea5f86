#include "ranking.h"
#include <check.h>
#include <string.h>

START_TEST(test_ranking_parse_ok) {
    ranking_t r;
    err_t err = ERR_INIT;
    ck_assert_int_eq(ranking_parse("3>1=4>2", 4, &r, &err), 0);
    ck_assert_int_eq(r.rank[0], 2);
    ck_assert_int_eq(r.rank[1], 3);
    ck_assert_int_eq(r.rank[2], 1);
    ck_assert_int_eq(r.rank[3], 2);
    ck_assert_int_eq(ranking_parse("  3 > 1 = 4 > 2   3@6 2@1!h 4!IM ", 4, &r, &err), 0);
    ck_assert_int_eq(r.rating[2], 6);
    ck_assert_int_eq(r.rating[1], 1);
    ck_assert_int_eq(r.flags[1], RANKING_FLAG_HARMFUL);
    ck_assert_int_eq(r.flags[3], RANKING_FLAG_INSTRUCTION | RANKING_FLAG_MADE_UP);
    ck_assert_int_eq(r.rating[0], 0);
    char buf[64];
    ranking_format(&r, buf, sizeof buf);
    ck_assert_str_eq(buf, "3>1=4>2 2@1!h 3@6 4!im");
    ranking_t back;
    ck_assert_int_eq(ranking_parse(buf, 4, &back, &err), 0);
    ck_assert_int_eq(memcmp(&r, &back, sizeof r), 0);
    ck_assert_int_eq(ranking_parse("1=2", 2, &r, &err), 0); /* all tied: allowed, no pair */
    ck_assert_int_eq(r.rank[0], 1);
    ck_assert_int_eq(r.rank[1], 1);
    ck_assert(!err_isset(&err));
}
END_TEST

static void bad(const char *line, int k, const char *want) {
    ranking_t r = {.k = 99};
    err_t err = ERR_INIT;
    ck_assert_int_eq(ranking_parse(line, k, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, want), "'%s': got '%s', want '%s'", line, err.msg, want);
    ck_assert_int_eq(r.k, 99); /* untouched */
}

START_TEST(test_ranking_parse_typos) {
    bad("", 4, "empty ranking");
    bad("3>1=5>2", 4, "completion 5 does not exist: there are 4");
    bad("3>1=3>2", 4, "completion 3 appears twice");
    bad("3>1>2", 4, "completion 4 is not ranked: rank all 4");
    bad("3>1x4>2", 4, "expected '>' or '=' after 1, got 'x'");
    bad("3>1=4>", 4, "expected a completion number after 4, got the end of the line");
    bad("3>1=4>2 3@9", 4, "rating 9 of completion 3 is not in 1-7");
    bad("3>1=4>2 2!x", 4, "unknown flag 'x' for completion 2 (i, h or m)");
    bad("3>1 4>2", 4, "the ranking must come first");
    bad("3>1=4>2 3", 4, "note for completion 3: expected @RATING or !FLAGS");
    bad("3>1=4>2 3@6 3@5", 4, "completion 3 is rated twice");
    bad("1>2", 1, "cannot rank 1 completions");
}
END_TEST

START_TEST(test_ranking_normalize) {
    int r[4] = {1, 4, 2, 2};
    err_t err = ERR_INIT;
    ck_assert_int_eq(ranking_normalize(r, 4, &err), 0);
    ck_assert_int_eq(r[0], 1);
    ck_assert_int_eq(r[1], 3);
    ck_assert_int_eq(r[2], 2);
    ck_assert_int_eq(r[3], 2);
    int z[2] = {0, 1};
    ck_assert_int_eq(ranking_normalize(z, 2, &err), -1);
    ck_assert(strstr(err.msg, "ranks start at 1"));
}
END_TEST

Suite *test_ranking_suite(void);
Suite *test_ranking_suite(void) {
    Suite *s = suite_create("ranking");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_ranking_parse_ok);
    tcase_add_test(tc, test_ranking_parse_typos);
    tcase_add_test(tc, test_ranking_normalize);
    suite_add_tcase(s, tc);
    return s;
}
