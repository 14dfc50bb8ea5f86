/* tests/test_dist.c: common/dist on whatever ranks it runs on. In `make test` it runs as one
 * process (rank 0 of 1: every collective leaves the data alone, bit for bit); tests/it/mpi_dist.sh
 * runs the same suite under `mpirun -np 2` (CK_FORK=no CK_RUN_SUITE=dist), where the same
 * assertions check real sums, shares, weighted means and a checksum that differs by rank. */
#include "dist.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void join(void) {
    err_t err = ERR_INIT;
    ck_assert_msg(dist_init(&err) == 0, "%s", err.msg);
    ck_assert_int_ge(dist_rank(), 0);
    ck_assert_int_lt(dist_rank(), dist_size());
}

START_TEST(test_dist_share_partitions) {
    join();
    const int P = dist_size(), r = dist_rank();
    for (int64_t n = P; n < 40; n++) {
        int64_t first;
        const int64_t k = dist_share(n, &first);
        /* every rank's share from the formula, so one rank can check the whole partition */
        ck_assert_int_eq(first, n * r / P);
        ck_assert_int_eq(k, n * (r + 1) / P - n * r / P);
        ck_assert(k == n / P || k == n / P + 1);
        double tot[1] = {(double)k};
        dist_sum_f64(tot, 1);
        ck_assert_int_eq((int64_t)tot[0], n);
    }
}
END_TEST

START_TEST(test_dist_allreduce_sums_then_scales) {
    join();
    const int P = dist_size(), r = dist_rank();
    enum { N = 1000 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = (float)(i + 1) * (float)(r + 1);
    dist_allreduce_f32(x, N, 0.5f);
    const float ranks = (float)(P * (P + 1) / 2); /* Σ (r + 1) */
    for (int i = 0; i < N; i++) ck_assert(x[i] == (float)(i + 1) * ranks * 0.5f);
    /* one rank, scale 1: untouched bits (the single-process path) */
    float y[3] = {0.1f, -3.0e-7f, NAN};
    dist_allreduce_f32(y, 3, 1.0f);
    if (P == 1) {
        ck_assert(y[0] == 0.1f && y[1] == -3.0e-7f && isnan(y[2]));
    } else {
        ck_assert(isnan(y[2]));
    }
}
END_TEST

START_TEST(test_dist_mean_is_weighted) {
    join();
    const int P = dist_size(), r = dist_rank();
    /* rank r's mean is r + 1 over r + 1 items: global mean Σ (r+1)^2 / Σ (r+1) */
    const double m = dist_mean((double)(r + 1), (double)(r + 1));
    double num = 0, den = 0;
    for (int k = 1; k <= P; k++) num += (double)k * k, den += k;
    ck_assert_double_eq_tol(m, num / den, 1e-15);
    /* zero weights everywhere: the plain mean */
    ck_assert_double_eq_tol(dist_mean((double)r, 0.0), (P - 1) / 2.0, 1e-15);
    /* a NaN on one rank (the last) is NaN on every rank: they must all stop */
    ck_assert(isnan(dist_mean(r == P - 1 ? (double)NAN : 1.0, 1.0)));
    /* one rank: the value itself, bit for bit */
    if (P == 1) ck_assert(dist_mean(0.1, 7.0) == 0.1);
}
END_TEST

START_TEST(test_dist_sum_is_the_same_everywhere) {
    join();
    const int r = dist_rank();
    double v[3] = {0.1 * (r + 1), 1e16, -1e16 + r};
    dist_sum_f64(v, 3);
    /* every rank holds rank 0's bits */
    uint64_t bits;
    memcpy(&bits, &v[0], sizeof bits);
    err_t err = ERR_INIT;
    ck_assert_msg(dist_check_same(bits, "sum", &err) == 0, "%s", err.msg);
}
END_TEST

START_TEST(test_dist_check_same_names_the_rank) {
    join();
    err_t err = ERR_INIT;
    ck_assert_int_eq(dist_check_same(42, "parameters", &err), 0);
    const int rc = dist_check_same(42 + (uint64_t)dist_rank(), "parameters", &err);
    if (dist_size() == 1) {
        ck_assert_int_eq(rc, 0);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_msg(strstr(err.msg, "parameters: rank 1 holds checksum 0x000000000000002b"), "%s",
                      err.msg);
    }
}
END_TEST

START_TEST(test_dist_bcast_copies_root) {
    join();
    char buf[16];
    snprintf(buf, sizeof buf, "rank %d", dist_rank());
    dist_bcast(buf, sizeof buf, 0);
    ck_assert_str_eq(buf, "rank 0");
    dist_barrier();
}
END_TEST

Suite *test_dist_suite(void);
Suite *test_dist_suite(void) {
    /* under mpirun (tests/it/mpi_dist.sh) the ranks leave the job at exit, all together */
    if (getenv("OMPI_COMM_WORLD_SIZE")) atexit(dist_finalize);
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_dist_share_partitions);
    tcase_add_test(tc, test_dist_allreduce_sums_then_scales);
    tcase_add_test(tc, test_dist_mean_is_weighted);
    tcase_add_test(tc, test_dist_sum_is_the_same_everywhere);
    tcase_add_test(tc, test_dist_check_same_names_the_rank);
    tcase_add_test(tc, test_dist_bcast_copies_root);
    suite_add_tcase(s, tc);
    return s;
}
