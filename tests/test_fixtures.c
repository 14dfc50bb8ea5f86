/* tests/test_fixtures.c: the proof that Hugging Face GPT-2 files load and compute exactly as
 * GPT-2 does. tests/fixtures/tiny-gpt2{,-rm} were written by an independent PyTorch
 * implementation together with what it computed (expected.safetensors, expected.json): we load
 * the models with ckpt_load, run our forward and backward, and compare every figure within the
 * tolerances of expected.json, printing the largest difference of each tensor on failure. */
#include "ckpt.h"
#include "gpt.h"
#include "testutil.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LM_DIR RLHF_SRCDIR "/tests/fixtures/tiny-gpt2"
#define RM_DIR RLHF_SRCDIR "/tests/fixtures/tiny-gpt2-rm"
enum { MAX_ROWS = 8 };

/* The figures and tolerances of tiny-gpt2/expected.json (it covers both fixtures), read from
 * the file so that a regenerated fixture needs no edit here. */
typedef struct {
    double logits_abs, loss_abs, grad_rel, rewards_abs; /* "tolerances" */
    double loss;                                        /* LM mean next-token loss */
    int64_t n_rewards;                                  /* reward model rows */
    double rewards[MAX_ROWS];                           /* "rewards" */
    int64_t lengths[MAX_ROWS];                          /* "reward_lengths" */
} expected_t;

static expected_t load_expected(void) {
    json_t *j = testutil_load_json(LM_DIR "/expected.json");
    expected_t e = {
        .logits_abs = testutil_json_number(j, "tolerances.logits_abs"),
        .loss_abs = testutil_json_number(j, "tolerances.loss_abs"),
        .grad_rel = testutil_json_number(j, "tolerances.grad_rel_per_tensor"),
        .rewards_abs = testutil_json_number(j, "tolerances.rewards_abs"),
        .loss = testutil_json_number(j, "loss"),
        .n_rewards = (int64_t)json_array_size(json_object_get(j, "rewards")),
    };
    ck_assert(e.n_rewards > 0 && e.n_rewards <= MAX_ROWS);
    ck_assert_int_eq(json_array_size(json_object_get(j, "reward_lengths")), e.n_rewards);
    for (int64_t b = 0; b < e.n_rewards; b++) {
        char key[64];
        snprintf(key, sizeof key, "rewards.%lld", (long long)b);
        e.rewards[b] = testutil_json_number(j, key);
        snprintf(key, sizeof key, "reward_lengths.%lld", (long long)b);
        e.lengths[b] = (int64_t)testutil_json_number(j, key);
    }
    json_decref(j);
    return e;
}

/* Opens dir/expected.safetensors and reads its (B, T) "tokens"; *tokens is malloc'd. */
static ckpt_st_t *open_expected(const char *dir, int32_t **tokens, int64_t *B, int64_t *T) {
    err_t err = ERR_INIT;
    char path[TESTUTIL_PATH_CAP];
    ckpt_st_t *st = ckpt_st_open(testutil_path(path, dir, "expected.safetensors"), &err);
    ck_assert_msg(st, "%s", err.msg);
    const ckpt_st_tensor_t *t = ckpt_st_find(st, "tokens");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 2);
    *B = t->shape[0];
    *T = t->shape[1];
    ck_assert(*B > 0 && *B <= MAX_ROWS && *T > 1);
    *tokens = malloc((size_t)t->numel * sizeof **tokens);
    ck_assert_ptr_nonnull(*tokens);
    ck_assert_msg(ckpt_st_read_i32(st, "tokens", *tokens, t->numel, &err) == 0, "%s", err.msg);
    return st;
}

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
static void compare_grads(const gpt_model_t *m, const ckpt_st_t *st, const char *trunk_prefix,
                          double grad_rel) {
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
        if (maxd > grad_rel * maxw) {
            bad++;
            const size_t used = strlen(report);
            snprintf(report + used, sizeof report - used, " %s: max |diff| %.3g (max |g| %.3g);",
                     name, maxd, maxw);
        }
        free(want);
    }
    if (bad) fprintf(stderr, "fixture gradients off:%s\n", report);
    ck_assert_msg(!bad, "%d gradient tensors beyond %g of their max:%s", bad, grad_rel, report);
}

START_TEST(test_fixtures_lm_logits_loss_grads) {
    const expected_t ex = load_expected();
    err_t err = ERR_INIT;
    gpt_model_t *m = ckpt_load(LM_DIR, NULL, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_int_eq(m->head, GPT_HEAD_LM);
    int32_t *tokens;
    int64_t B, T;
    ckpt_st_t *st = open_expected(LM_DIR, &tokens, &B, &T);
    ck_assert_msg(gpt_alloc(m, B, T, true, &err) == 0, "%s", err.msg);
    /* the loss is the mean next-token cross-entropy over the B × (T - 1) predictions */
    int32_t *targets = malloc((size_t)(B * T) * sizeof *targets);
    float *dout = malloc((size_t)(B * T) * sizeof *dout);
    ck_assert(targets && dout);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) targets[b * T + t] = t + 1 < T ? tokens[b * T + t + 1] : -1;
    gpt_zero_grad(m);
    const float loss = gpt_lm_loss(m, tokens, targets, B, T);
    const int64_t n = B * T * m->cfg.vocab_size;
    float *want = read_expected(st, "logits", n);
    double maxd = 0.0;
    for (int64_t i = 0; i < n; i++) maxd = fmax(maxd, fabs((double)m->logits[i] - (double)want[i]));
    free(want);
    ck_assert_msg(maxd <= ex.logits_abs, "logits: max |diff| %.3g > %g", maxd, ex.logits_abs);
    ck_assert_msg(fabs((double)loss - ex.loss) <= ex.loss_abs, "loss %.9f, expected %.9f",
                  (double)loss, ex.loss);
    for (int64_t i = 0; i < B * T; i++)
        dout[i] = targets[i] >= 0 ? -1.0f / (float)(B * (T - 1)) : 0.0f;
    gpt_backward(m, dout);
    compare_grads(m, st, "", ex.grad_rel);
    free(dout);
    free(targets);
    free(tokens);
    ckpt_st_close(&st);
    gpt_destroy(&m);
}
END_TEST

START_TEST(test_fixtures_rm_rewards_grads) {
    const expected_t ex = load_expected();
    err_t err = ERR_INIT;
    gpt_model_t *m = ckpt_load(RM_DIR, NULL, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_int_eq(m->head, GPT_HEAD_SCORE);
    int32_t *tokens;
    int64_t B, T;
    ckpt_st_t *st = open_expected(RM_DIR, &tokens, &B, &T);
    ck_assert_int_eq(B, ex.n_rewards);
    ck_assert_msg(gpt_alloc(m, B, T, true, &err) == 0, "%s", err.msg);
    gpt_zero_grad(m);
    gpt_forward(m, tokens, B, T);
    float rewards[MAX_ROWS];
    gpt_score_at(m, ex.lengths, rewards);
    float *want = read_expected(st, "rewards", B);
    for (int64_t b = 0; b < B; b++) {
        ck_assert_msg(fabs((double)want[b] - ex.rewards[b]) < 1e-7, "expected.json vs safetensors");
        ck_assert_msg(fabs((double)rewards[b] - (double)want[b]) <= ex.rewards_abs,
                      "reward %lld (length %lld): %.7f, expected %.7f", (long long)b,
                      (long long)ex.lengths[b], (double)rewards[b], (double)want[b]);
    }
    free(want);
    /* gradient of the SUM of the rewards */
    float *dout = calloc((size_t)(B * T), sizeof *dout);
    ck_assert_ptr_nonnull(dout);
    for (int64_t b = 0; b < B; b++) dout[b * T + ex.lengths[b] - 1] = 1.0f;
    gpt_backward(m, dout);
    compare_grads(m, st, "transformer.", ex.grad_rel);
    free(dout);
    free(tokens);
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
