#include "err.h"
#include "alloc_count.h"
#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_err_first_wins) {
    err_t err = ERR_INIT;
    ck_assert(!err_isset(&err));
    ck_assert_int_eq(err_setf(&err, "%s:%d: missing \"response\"", "demos.jsonl", 17), -1);
    ck_assert_int_eq(err_setf(&err, "outer context"), -1);
    ck_assert_str_eq(err.msg, "demos.jsonl:17: missing \"response\"");
    err_prefixf(&err, "sft train: ");
    ck_assert_str_eq(err.msg, "sft train: demos.jsonl:17: missing \"response\"");
    err_clear(&err);
    ck_assert(!err_isset(&err));
    ck_assert_int_eq(err_setf(NULL, "ignored"), -1);
}
END_TEST

START_TEST(test_err_truncates_long_messages) {
    err_t err = ERR_INIT;
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    err_setf(&err, "%s", big);
    ck_assert_uint_eq(strlen(err.msg), sizeof err.msg - 1);
}
END_TEST

/* The allocation counter the zero-allocation tests rely on must itself be able to fail. */
START_TEST(test_err_alloc_counter_counts) {
    alloc_count_start();
    void *volatile p = malloc(16); /* volatile: gcc may drop a malloc/free pair */
    free(p);
    ck_assert_int_eq(alloc_count_stop(), 2);
    alloc_count_start();
    ck_assert_int_eq(alloc_count_stop(), 0);
}
END_TEST

Suite *test_err_suite(void);
Suite *test_err_suite(void) {
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_err_first_wins);
    tcase_add_test(tc, test_err_truncates_long_messages);
    tcase_add_test(tc, test_err_alloc_counter_counts);
    suite_add_tcase(s, tc);
    return s;
}
