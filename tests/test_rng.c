#include "rng.h"
#include <check.h>
#include <math.h>

START_TEST(test_rng_repeatable_and_distinct) {
    rng_t a, b, c;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    rng_seed(&c, 43);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rng_u64(&a);
        ck_assert_uint_eq(x, rng_u64(&b));
        same_c += x == rng_u64(&c);
    }
    ck_assert_int_lt(same_c, 2);
}
END_TEST

START_TEST(test_rng_moments) {
    rng_t r;
    rng_seed(&r, 7);
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0;
    int counts[5] = {0};
    for (int i = 0; i < n; i++) {
        float u = rng_float(&r);
        ck_assert(u >= 0.0f && u < 1.0f);
        su += (double)u;
        double z = rng_normal(&r);
        sn += z;
        sn2 += z * z;
        counts[rng_below(&r, 5)]++;
    }
    ck_assert_double_eq_tol(su / n, 0.5, 0.01);
    ck_assert_double_eq_tol(sn / n, 0.0, 0.01);
    ck_assert_double_eq_tol(sn2 / n, 1.0, 0.02);
    for (int k = 0; k < 5; k++) ck_assert_int_gt(counts[k], n / 5 - 1500);
}
END_TEST

Suite *test_rng_suite(void);
Suite *test_rng_suite(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rng_repeatable_and_distinct);
    tcase_add_test(tc, test_rng_moments);
    suite_add_tcase(s, tc);
    return s;
}
