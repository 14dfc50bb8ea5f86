/* tests/test_stats.c: t quantiles against the printed table and 30-digit values (mpmath's
 * betainc, inverted by findroot), and every interval against a hand computation. */
#include "stats.h"
#include <check.h>
#include <math.h>

/* |got - want| ≤ tol, with the values in the message. */
#define NEAR(got, want, tol)                                                                       \
    ck_assert_msg(fabs((got) - (want)) <= (tol), "%s = %.12g, want %.12g (±%g)", #got,             \
                  (double)(got), (double)(want), (double)(tol))

START_TEST(test_stats_t_table) {
    /* The 0.975 column of every printed t table, to its 3 decimals. */
    static const struct {
        double df, t;
    } table[] = {{1, 12.706},  {2, 4.303},    {3, 3.182},  {4, 2.776},  {5, 2.571},
                 {10, 2.228},  {20, 2.086},   {30, 2.042}, {60, 2.000}, {100, 1.984},
                 {120, 1.980}, {1000, 1.962}, {1e9, 1.960}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        NEAR(stats_t_quantile(0.975, table[i].df), table[i].t, 5e-4);
}
END_TEST

START_TEST(test_stats_t_exact) {
    /* 15 digits from mpmath: findroot of 1 - betainc(df/2, 1/2, 0, df/(df+t²))/2 = p */
    NEAR(stats_t_quantile(0.975, 1), 12.7062047361747, 1e-9);
    NEAR(stats_t_quantile(0.975, 2), 4.30265272974946, 1e-10);
    NEAR(stats_t_quantile(0.975, 4), 2.77644510519779, 1e-10);
    NEAR(stats_t_quantile(0.975, 5), 2.57058183563632, 1e-10);
    NEAR(stats_t_quantile(0.975, 10), 2.22813885198627, 1e-10);
    NEAR(stats_t_quantile(0.975, 30), 2.04227245630124, 1e-10);
    NEAR(stats_t_quantile(0.975, 100), 1.98397151852355, 1e-10);
    NEAR(stats_t_quantile(0.975, 1000), 1.96233908082641, 1e-10);
    NEAR(stats_t_quantile(0.975, 1e6), 1.95996635681411, 1e-10);
    NEAR(stats_t_quantile(0.975, 1e7), 1.95996422176721, 1e-9);
    NEAR(stats_t_quantile(0.975, 2.5), 3.57465484200368, 1e-10); /* df need not be whole */
    NEAR(stats_t_quantile(0.995, 1), 63.6567411628716, 1e-8);
    /* symmetry, the median, the normal limit, the domain */
    NEAR(stats_t_quantile(0.025, 5), -2.57058183563632, 1e-10);
    ck_assert(stats_t_quantile(0.5, 3) == 0.0);
    NEAR(stats_normal_quantile(0.975), STATS_Z975, 1e-13);
    NEAR(stats_normal_quantile(0.025), -STATS_Z975, 1e-13);
    NEAR(stats_t_quantile(0.975, 1e12), STATS_Z975, 1e-12);
    ck_assert(isnan(stats_t_quantile(0.975, 0)));
    ck_assert(isnan(stats_t_quantile(1.0, 3)));
    ck_assert(isnan(stats_t_quantile(NAN, 3)));
    ck_assert(isnan(stats_normal_quantile(0.0)));
}
END_TEST

START_TEST(test_stats_mean_interval) {
    /* 1..5: mean 3, s² = 10/4, se = √(2.5/5) = 0.70711, t(0.975, 4) = 2.776445105:
     * half = 1.963243161, interval [1.036756839, 4.963243161] */
    const double x[] = {1, 2, 3, 4, 5};
    stats_ci_t r = stats_mean(x, 5);
    ck_assert_int_eq(r.n, 5);
    NEAR(r.mean, 3.0, 1e-15);
    NEAR(r.lo, 1.03675683852244, 1e-11);
    NEAR(r.hi, 4.96324316147756, 1e-11);
    /* a large common offset changes nothing but the mean (two-pass variance): s = 1 */
    const double y[] = {1e9 + 1, 1e9 + 2, 1e9 + 3};
    r = stats_mean(y, 3);
    NEAR(r.hi - r.mean, 4.30265272974946 / sqrt(3.0), 1e-6);
    /* too little data: one value has a mean and no interval; none has neither */
    r = stats_mean(x, 1);
    ck_assert(r.mean == 1.0 && isnan(r.lo) && isnan(r.hi));
    r = stats_mean(x, 0);
    ck_assert(r.n == 0 && isnan(r.mean) && isnan(r.lo));
    /* equal values: a zero-width interval */
    const double same[] = {0.25, 0.25, 0.25};
    r = stats_mean(same, 3);
    ck_assert(r.lo == 0.25 && r.hi == 0.25);
}
END_TEST

START_TEST(test_stats_wilson) {
    /* 8 of 10: the textbook [0.4902, 0.9433]; by the formula with z = 1.959963985:
     * z²/n = 0.384146, center = (0.8 + 0.192073)/1.384146 = 0.716740,
     * half = 1.959964/1.384146 · √(0.016 + 0.009604) = 0.226578 */
    stats_ci_t r = stats_accuracy(8, 10);
    ck_assert_int_eq(r.n, 10);
    NEAR(r.mean, 0.8, 1e-15);
    NEAR(r.lo, 0.490162471536642, 1e-12);
    NEAR(r.hi, 0.943317848545625, 1e-12);
    /* 0 of 10: lo 0 and hi = (z²/n)/(1 + z²/n) = 0.384146/1.384146; 10 of 10 mirrors it */
    r = stats_accuracy(0, 10);
    ck_assert(r.lo == 0.0);
    NEAR(r.hi, 0.277532799862889, 1e-12);
    r = stats_accuracy(10, 10);
    ck_assert(r.hi == 1.0);
    NEAR(r.lo, 0.722467200137111, 1e-12);
    r = stats_accuracy(0, 0);
    ck_assert(isnan(r.mean) && isnan(r.lo) && isnan(r.hi));
    /* win rate over independent games, ties half: 6 wins + 2 ties of 10 = 7 of 10 */
    r = stats_win_rate_trials(6, 2, 10);
    NEAR(r.mean, 0.7, 1e-15);
    NEAR(r.lo, 0.396778147461145, 1e-12);
    NEAR(r.hi, 0.892208732593699, 1e-12);
    stats_ci_t w = stats_wilson(7.0, 10);
    ck_assert(w.lo == r.lo && w.hi == r.hi);
}
END_TEST

START_TEST(test_stats_win_rate_prompts) {
    /* Per-prompt rates (wins + ties/2)/games: 2/2 = 1, (0 + 1)/2 = 0.5, (1 + 0.5)/2 = 0.75;
     * the fourth prompt has no game and does not count. mean 0.75, s = 0.25,
     * half = t(0.975, 2)·0.25/√3 = 4.302652730·0.144338 = 0.621034428 */
    const int64_t wins[] = {2, 0, 1, 0}, ties[] = {0, 2, 1, 0}, games[] = {2, 2, 2, 0};
    stats_ci_t r = stats_win_rate_prompts(wins, ties, games, 4);
    ck_assert_int_eq(r.n, 3);
    NEAR(r.mean, 0.75, 1e-15);
    NEAR(r.lo, 0.128965572062417, 1e-11);
    NEAR(r.hi, 1.37103442793758, 1e-11); /* a t interval over 3 prompts may pass 1 */
    /* the same as stats_mean over the rates */
    const double rates[] = {1.0, 0.5, 0.75};
    stats_ci_t m = stats_mean(rates, 3);
    ck_assert(m.mean == r.mean && m.lo == r.lo && m.hi == r.hi);
    /* one prompt: a rate and no interval */
    r = stats_win_rate_prompts(wins, ties, games, 1);
    ck_assert(r.n == 1 && r.mean == 1.0 && isnan(r.lo));
}
END_TEST

Suite *test_stats_suite(void);
Suite *test_stats_suite(void) {
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("stats");
    tcase_add_test(tc, test_stats_t_table);
    tcase_add_test(tc, test_stats_t_exact);
    tcase_add_test(tc, test_stats_mean_interval);
    tcase_add_test(tc, test_stats_wilson);
    tcase_add_test(tc, test_stats_win_rate_prompts);
    suite_add_tcase(s, tc);
    return s;
}
