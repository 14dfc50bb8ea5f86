#include "data.h"
#include "rm.h"
#include "tiny_model.h"
#include <check.h>
#include <math.h>
#include <string.h>

static const char *P[] = {"What is 7 plus 5?", "Reverse the word lamp.", "Say hello to Maria.",
                          "Name the cat.", "hi"};
static const char *R[] = {"7 plus 5 is 12.", "lamp reversed is pmal.",
                          "Hello Maria! the cat sat on the mat, the cat sat on the mat.", "",
                          "Hello"};

/* Scores of items idx[0..n) run as one call, in a scorer of B_max rows. */
static void score_some(model_t *m, const int *idx, int n, double *out) {
    err_t err = ERR_INIT;
    rm_t *r = rm_new(m, 0, &err);
    ck_assert_msg(r, "%s", err.msg);
    const char *p[8], *q[8];
    size_t pl[8], ql[8];
    for (int i = 0; i < n; i++) {
        p[i] = P[idx[i]];
        q[i] = R[idx[i]];
        pl[i] = strlen(p[i]);
        ql[i] = strlen(q[i]);
    }
    ck_assert_msg(!rm_score(r, p, pl, q, ql, n, out, &err), "%s", err.msg);
    rm_destroy(&r);
}

START_TEST(test_rm_scores_independent_of_batchmates) {
    char dir[64];
    tiny_scratch_dir(dir);
    tiny_model_write_head(dir, 0, 0, DATA_TEMPLATE_NAME, -1, 3, GPT_HEAD_SCORE);
    model_t m;
    err_t err = ERR_INIT;
    ck_assert_msg(!model_load(&m, dir, MODEL_HEAD_REWARD, &err), "%s", err.msg);
    m.meta.reward_bias = 0.25;
    double alone[5], all[5], shuffled[5], same[8];
    /* the same pair 8 times in one call: 8 identical bits (a batched forward gives a pattern) */
    score_some(&m, (int[]){0, 0, 0, 0, 0, 0, 0, 0}, 8, same);
    for (int i = 1; i < 8; i++)
        ck_assert_msg(same[i] == same[0], "row %d: %.12g vs %.12g", i, same[i], same[0]);
    for (int i = 0; i < 5; i++) score_some(&m, (int[]){i}, 1, &alone[i]);
    score_some(&m, (int[]){0, 1, 2, 3, 4}, 5, all);
    score_some(&m, (int[]){4, 2, 0, 3, 1}, 5, shuffled);
    const int back[5] = {2, 4, 1, 3, 0}; /* position of item i in the shuffled call */
    for (int i = 0; i < 5; i++) {
        ck_assert(isfinite(alone[i]));
        ck_assert_msg(alone[i] == all[i], "item %d: %.9g alone, %.9g in a batch", i, alone[i],
                      all[i]);
        ck_assert_msg(alone[i] == shuffled[back[i]], "item %d: %.9g alone, %.9g shuffled", i,
                      alone[i], shuffled[back[i]]);
    }
    /* the score is the value at the final end-of-text token, plus the bias */
    gpt_model_t *g = m.model;
    int32_t ids[64];
    const int64_t n = rm_encode(&m, P[0], strlen(P[0]), R[0], strlen(R[0]), ids, 64, NULL, &err);
    ck_assert_int_gt(n, 2);
    ck_assert_int_eq(ids[n - 1], m.eos_id);
    ck_assert_msg(!gpt_alloc(g, 1, n, false, &err), "%s", err.msg);
    gpt_forward(g, ids, 1, n);
    ck_assert_double_eq_tol((double)g->values[n - 1] + 0.25, alone[0], 1e-6);
    /* a different response scores differently (the head reads the response) */
    ck_assert(alone[0] != alone[1]);
    model_release(&m);
    tiny_rm_tree(dir);
}
END_TEST

START_TEST(test_rm_encode_truncates_response_keeps_eos) {
    char dir[64];
    tiny_scratch_dir(dir);
    tiny_model_write_head(dir, 0, 0, DATA_TEMPLATE_NAME, -1, 3, GPT_HEAD_SCORE);
    model_t m;
    err_t err = ERR_INIT;
    ck_assert_msg(!model_load(&m, dir, MODEL_HEAD_REWARD, &err), "%s", err.msg);
    char long_resp[400];
    for (int i = 0; i < 399; i++) long_resp[i] = "the cat sat "[i % 12];
    long_resp[399] = '\0';
    int32_t ids[64];
    int cut = 0;
    const int64_t n = rm_encode(&m, "hi", 2, long_resp, 399, ids, 64, &cut, &err);
    ck_assert_int_eq(n, 64);
    ck_assert_int_eq(cut, 1);
    ck_assert_int_eq(ids[63], m.eos_id);
    /* a prompt that fills the context is an error naming the sizes */
    char long_prompt[300];
    memset(long_prompt, 'q', sizeof long_prompt);
    for (size_t i = 0; i < sizeof long_prompt; i += 2) long_prompt[i] = ' ';
    ck_assert_int_eq(rm_encode(&m, long_prompt, sizeof long_prompt, "x", 1, ids, 64, &cut, &err),
                     -1);
    ck_assert_msg(strstr(err.msg, "the context is 64"), "%s", err.msg);
    /* rm_score names the item */
    rm_t *r = rm_new(&m, 0, &err);
    ck_assert_msg(r, "%s", err.msg);
    const char *p[2] = {"hi", long_prompt};
    const char *q[2] = {"x", "y"};
    size_t pl[2] = {2, sizeof long_prompt}, ql[2] = {1, 1};
    double s[2];
    err_clear(&err);
    ck_assert_int_eq(rm_score(r, p, pl, q, ql, 2, s, &err), -1);
    ck_assert_msg(strstr(err.msg, "item 1: prompt is"), "%s", err.msg);
    rm_destroy(&r);
    /* an LM cannot score */
    model_release(&m);
    tiny_rm_tree(dir);
}
END_TEST

Suite *test_rm_suite(void);
Suite *test_rm_suite(void) {
    Suite *s = suite_create("rm");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rm_scores_independent_of_batchmates);
    tcase_add_test(tc, test_rm_encode_truncates_response_keeps_eos);
    suite_add_tcase(s, tc);
    return s;
}
