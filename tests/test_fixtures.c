/* tests/test_fixtures.c: the proof that Hugging Face GPT-2 files load and compute exactly as
 * GPT-2 does. tests/fixtures/tiny-gpt2{,-rm} were written by an independent PyTorch
 * implementation together with what it computed (expected.safetensors, expected.json): we load
 * the models with ckpt_load, run our forward and backward, and compare every figure within the
 * tolerances of expected.json, printing the largest difference of each tensor on failure. */
#include "ckpt.h"
#include "gpt.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LM_DIR RLHF_SRCDIR "/tests/fixtures/tiny-gpt2"
#define RM_DIR RLHF_SRCDIR "/tests/fixtures/tiny-gpt2-rm"

/* tiny-gpt2/expected.json */
#define FIX_LOGITS_ABS 1e-4
#define FIX_LOSS_ABS 1e-5
#define FIX_GRAD_REL 1e-3 /* per tensor: max |Δ| ≤ FIX_GRAD_REL · max |expected| */
#define FIX_REWARDS_ABS 1e-4
#define FIX_LOSS 4.875266075134277
static const float fix_rewards[3] = {-1.2256718873977661f, -0.5290293097496033f,
                                     -0.4512815773487091f};
static const int64_t fix_lengths[3] = {32, 20, 7};
enum { FIX_T = 32 };

/* Reads tensor name of expected.safetensors (n floats); caller frees. */
static float *read_expected(const ckpt_st_t *st, const char *name, int64_t n) {
    err_t err = ERR_INIT;
    float *x = malloc((size_t)n * sizeof(float));
    ck_assert_ptr_nonnull(x);
    ck_assert_msg(ckpt_st_read_f32(st, name, x, n, &err) == 0, "%s", err.msg);
    return x;
}

/* Compares every parameter gradient of m with expected's "grad.<prefix><name>" tensors.
 * Prints each tensor's largest difference when one fails, then fails. */
static void compare_grads(const gpt_model_t *m, const ckpt_st_t *st, const char *trunk_prefix) {
    gpt_tensor_t t[64];
    const int64_t nt = gpt_tensors(m, t, 64);
    ck_assert_int_le(nt, 64);
    int bad = 0;
    char report[4096] = "";
    for (int64_t k = 0; k < nt; k++) {
        char name[128];
        const bool trunk = strcmp(t[k].name, "score.weight") != 0;
        snprintf(name, sizeof name, "grad.%.16s%.63s", trunk ? trunk_prefix : "", t[k].name);
        float *want = read_expected(st, name, t[k].numel);
        double maxd = 0.0, maxw = 0.0;
        for (int64_t i = 0; i < t[k].numel; i++) {
            maxd = fmax(maxd, fabs((double)t[k].grad[i] - (double)want[i]));
            maxw = fmax(maxw, fabs((double)want[i]));
        }
        if (maxd > FIX_GRAD_REL * maxw) {
            bad++;
            const size_t used = strlen(report);
            snprintf(report + used, sizeof report - used, " %s: max |diff| %.3g (max |g| %.3g);",
                     name, maxd, maxw);
        }
        free(want);
    }
    if (bad) fprintf(stderr, "fixture gradients off:%s\n", report);
    ck_assert_msg(!bad, "%d gradient tensors beyond %g of their max:%s", bad, FIX_GRAD_REL,
                  report);
}

START_TEST(test_fixtures_lm_logits_loss_grads) {
    err_t err = ERR_INIT;
    gpt_model_t *m = ckpt_load(LM_DIR, NULL, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_int_eq(m->head, GPT_HEAD_LM);
    ck_assert_msg(gpt_alloc(m, 2, FIX_T, true, &err) == 0, "%s", err.msg);
    ckpt_st_t *st = ckpt_st_open(LM_DIR "/expected.safetensors", &err);
    ck_assert_msg(st, "%s", err.msg);
    int32_t tokens[2 * FIX_T], targets[2 * FIX_T];
    ck_assert_msg(ckpt_st_read_i32(st, "tokens", tokens, 2 * FIX_T, &err) == 0, "%s", err.msg);
    /* the loss is the mean next-token cross-entropy over the 2 × 31 predictions */
    for (int64_t b = 0; b < 2; b++)
        for (int64_t t = 0; t < FIX_T; t++)
            targets[b * FIX_T + t] = t + 1 < FIX_T ? tokens[b * FIX_T + t + 1] : -1;
    gpt_zero_grad(m);
    const float loss = gpt_lm_loss(m, tokens, targets, 2, FIX_T);
    const int64_t V = m->cfg.vocab_size, n = 2 * FIX_T * V;
    float *want = read_expected(st, "logits", n);
    double maxd = 0.0;
    for (int64_t i = 0; i < n; i++) maxd = fmax(maxd, fabs((double)m->logits[i] - (double)want[i]));
    free(want);
    ck_assert_msg(maxd <= FIX_LOGITS_ABS, "logits: max |diff| %.3g > %g", maxd, FIX_LOGITS_ABS);
    ck_assert_msg(fabs((double)loss - FIX_LOSS) <= FIX_LOSS_ABS, "loss %.9f, expected %.9f",
                  (double)loss, FIX_LOSS);
    float dout[2 * FIX_T];
    for (int64_t i = 0; i < 2 * FIX_T; i++) dout[i] = targets[i] >= 0 ? -1.0f / 62.0f : 0.0f;
    gpt_backward(m, dout);
    compare_grads(m, st, "");
    ckpt_st_close(&st);
    gpt_destroy(&m);
}
END_TEST

START_TEST(test_fixtures_rm_rewards_grads) {
    err_t err = ERR_INIT;
    gpt_model_t *m = ckpt_load(RM_DIR, NULL, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_int_eq(m->head, GPT_HEAD_SCORE);
    ck_assert_msg(gpt_alloc(m, 3, FIX_T, true, &err) == 0, "%s", err.msg);
    ckpt_st_t *st = ckpt_st_open(RM_DIR "/expected.safetensors", &err);
    ck_assert_msg(st, "%s", err.msg);
    int32_t tokens[3 * FIX_T];
    ck_assert_msg(ckpt_st_read_i32(st, "tokens", tokens, 3 * FIX_T, &err) == 0, "%s", err.msg);
    gpt_zero_grad(m);
    gpt_forward(m, tokens, 3, FIX_T);
    float rewards[3];
    gpt_score_at(m, fix_lengths, rewards);
    float *want = read_expected(st, "rewards", 3);
    for (int b = 0; b < 3; b++) {
        ck_assert_msg(fabsf(want[b] - fix_rewards[b]) < 1e-7f, "expected.json vs safetensors");
        ck_assert_msg(fabs((double)rewards[b] - (double)want[b]) <= FIX_REWARDS_ABS,
                      "reward %d (length %lld): %.7f, expected %.7f", b,
                      (long long)fix_lengths[b], (double)rewards[b], (double)want[b]);
    }
    free(want);
    /* gradient of the SUM of the three rewards */
    float dout[3 * FIX_T] = {0};
    for (int b = 0; b < 3; b++) dout[b * FIX_T + fix_lengths[b] - 1] = 1.0f;
    gpt_backward(m, dout);
    compare_grads(m, st, "transformer.");
    ckpt_st_close(&st);
    gpt_destroy(&m);
}
END_TEST

Suite *test_fixtures_suite(void);
Suite *test_fixtures_suite(void) {
    Suite *s = suite_create("fixtures");
    TCase *tc = tcase_create("pytorch");
    tcase_add_test(tc, test_fixtures_lm_logits_loss_grads);
    tcase_add_test(tc, test_fixtures_rm_rewards_grads);
    suite_add_tcase(s, tc);
    return s;
}
