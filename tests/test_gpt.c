#include "gpt.h"
#include "ops.h"
#include "alloc_count.h"
#include "rng.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gpt_config_t tiny = {.vocab_size = 97, .n_positions = 32, .n_layer = 2,
                                  .n_head = 3, .n_embd = 48, .ln_eps = 1e-5f};

START_TEST(test_gpt_tensor_table_covers_slab) {
    err_t err = ERR_INIT;
    for (int h = 0; h < 2; h++) {
        gpt_model_t *m = gpt_new(&tiny, (gpt_head_t)h, &err);
        ck_assert_msg(m, "%s", err.msg);
        int64_t n = gpt_tensors(m, NULL, 0);
        ck_assert_int_eq(n, 2 + 12 * 2 + 2 + h);
        gpt_tensor_t t[64];
        gpt_tensors(m, t, 64);
        int64_t total = 0;
        const float *expect = m->params_mem;
        for (int64_t i = 0; i < n; i++) total += t[i].numel;
        ck_assert_int_eq(total, m->num_params);
        ck_assert_str_eq(t[4].name, "h.0.attn.c_attn.weight");
        ck_assert_int_eq(t[4].shape[0], 48);
        ck_assert_int_eq(t[4].shape[1], 144);
        ck_assert(t[0].param == expect);
        ck_assert(t[0].decay && !t[2].decay);
        gpt_destroy(&m);
        ck_assert_ptr_null(m);
    }
}
END_TEST

START_TEST(test_gpt_bad_config_is_an_error) {
    err_t err = ERR_INIT;
    gpt_config_t c = tiny;
    c.n_head = 5;
    ck_assert_ptr_null(gpt_new(&c, GPT_HEAD_LM, &err));
    ck_assert(strstr(err.msg, "multiple of n_head"));
}
END_TEST

START_TEST(test_gpt_init_is_seeded) {
    err_t err = ERR_INIT;
    gpt_model_t *a = gpt_new(&tiny, GPT_HEAD_SCORE, &err), *b = gpt_new(&tiny, GPT_HEAD_SCORE, &err);
    gpt_init_random(a, 1);
    gpt_init_random(b, 1);
    ck_assert(!memcmp(a->params_mem, b->params_mem, (size_t)a->num_params * sizeof(float)));
    ck_assert(a->params.ln1w[0] == 1.0f && a->params.qkvb[0] == 0.0f && a->params.wte[0] != 0.0f);
    gpt_init_random(b, 2);
    ck_assert(memcmp(a->params_mem, b->params_mem, (size_t)a->num_params * sizeof(float)));
    gpt_model_t *lm = gpt_new(&tiny, GPT_HEAD_LM, &err);
    ck_assert_int_eq(gpt_copy_params(lm, a, &err), 0);
    ck_assert(!memcmp(lm->params_mem, a->params_mem, (size_t)lm->num_params * sizeof(float)));
    gpt_destroy(&a);
    gpt_destroy(&b);
    gpt_destroy(&lm);
}
END_TEST


/* Every tensor's values after gpt_init_random, against GPT-2's rule read from its Hugging Face
 * name (not from GPT_PARAMS, so a wrong row in the table fails here): biases exactly 0,
 * LayerNorm weights exactly 1, attn.c_proj / mlp.c_proj weights N(0, 0.02/sqrt(2L)), every
 * other weight (wte, wpe, c_attn, c_fc, score) N(0, 0.02). Sample mean and std of each tensor
 * must lie within 5 standard errors (σ/sqrt(n) and σ/sqrt(2n)): at C = 256, score.weight's 256
 * values pin its std to ±22%, the smallest per-layer matrix (65536 values) to ±1.4%, which
 * tells 0.02/sqrt(2L) = 0.0071 from 0.02/sqrt(L) = 0.01 or 0.02. */
static const gpt_config_t stats_cfg = {.vocab_size = 512, .n_positions = 64, .n_layer = 4,
                                       .n_head = 4, .n_embd = 256, .ln_eps = 1e-5f};

static bool ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

START_TEST(test_gpt_init_statistics) {
    err_t err = ERR_INIT;
    const double L = (double)stats_cfg.n_layer;
    for (int h = 0; h < 2; h++) {
        gpt_model_t *m = gpt_new(&stats_cfg, (gpt_head_t)h, &err);
        ck_assert_msg(m, "%s", err.msg);
        for (int64_t i = 0; i < m->num_params; i++) m->params_mem[i] = NAN; /* all overwritten */
        gpt_init_random(m, 7);
        gpt_tensor_t t[64];
        const int64_t nt = gpt_tensors(m, t, 64);
        ck_assert_int_eq(nt, 2 + 12 * stats_cfg.n_layer + 2 + h);
        int64_t normal = 0, zeros = 0, ones = 0, covered = 0;
        const float *prev = NULL; /* the previous random tensor: no two share a stream */
        for (int64_t k = 0; k < nt; k++) {
            const char *name = t[k].name;
            const float *x = t[k].param;
            const int64_t n = t[k].numel;
            covered += n;
            if (ends_with(name, ".bias") || ends_with(name, "_1.weight") ||
                ends_with(name, "_2.weight") || ends_with(name, "_f.weight")) {
                const float want = ends_with(name, ".bias") ? 0.0f : 1.0f;
                for (int64_t i = 0; i < n; i++)
                    ck_assert_msg(x[i] == want, "%s[%lld] = %g, want %g", name, (long long)i,
                                  (double)x[i], (double)want);
                *(want == 0.0f ? &zeros : &ones) += 1;
                continue;
            }
            const double sigma = ends_with(name, "c_proj.weight") ? 0.02 / sqrt(2.0 * L) : 0.02;
            double sum = 0.0, sq = 0.0;
            for (int64_t i = 0; i < n; i++) sum += (double)x[i], sq += (double)x[i] * (double)x[i];
            const double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
            const double mean_tol = 5.0 * sigma / sqrt((double)n),
                         sd_tol = 5.0 * sigma / sqrt(2.0 * (double)n);
            ck_assert_msg(fabs(mean) <= mean_tol, "%s: mean %g, want 0 ± %g", name, mean,
                          mean_tol);
            ck_assert_msg(fabs(sd - sigma) <= sd_tol, "%s: std %g, want %g ± %g", name, sd,
                          sigma, sd_tol);
            if (prev) ck_assert_msg(memcmp(x, prev, 4 * sizeof(float)), "%s repeats", name);
            prev = x;
            normal++;
        }
        ck_assert_int_eq(covered, m->num_params);
        ck_assert_int_eq(normal, 2 + 4 * stats_cfg.n_layer + h);
        ck_assert_int_eq(ones, 2 * stats_cfg.n_layer + 1);
        ck_assert_int_eq(zeros, 6 * stats_cfg.n_layer + 1);
        gpt_destroy(&m);
    }
}
END_TEST

/* gpt_tensors tiles the slab in Hugging Face order and names, and gpt_layer points where it
 * does, for the parameters and the gradients. */
START_TEST(test_gpt_layer_matches_tensors) {
    static const char *const block[12] = {
        "ln_1.weight",        "ln_1.bias",       "attn.c_attn.weight", "attn.c_attn.bias",
        "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",       "ln_2.bias",
        "mlp.c_fc.weight",    "mlp.c_fc.bias",   "mlp.c_proj.weight",  "mlp.c_proj.bias"};
    err_t err = ERR_INIT;
    for (int h = 0; h < 2; h++) {
        gpt_model_t *m = gpt_new(&tiny, (gpt_head_t)h, &err);
        ck_assert_int_eq(gpt_alloc(m, 1, 4, true, &err), 0);
        gpt_tensor_t t[64];
        const int64_t nt = gpt_tensors(m, t, 64), L = tiny.n_layer;
        ck_assert_str_eq(t[0].name, "wte.weight");
        ck_assert_str_eq(t[1].name, "wpe.weight");
        ck_assert_str_eq(t[2 + 12 * L].name, "ln_f.weight");
        ck_assert_str_eq(t[3 + 12 * L].name, "ln_f.bias");
        if (h == GPT_HEAD_SCORE) {
            ck_assert_str_eq(t[nt - 1].name, "score.weight");
            ck_assert(t[nt - 1].ndim == 2 && t[nt - 1].shape[0] == 1 && t[nt - 1].shape[1] == 48);
            ck_assert(t[nt - 1].param == m->params.scorew && t[nt - 1].decay);
        } else {
            ck_assert_ptr_null(m->params.scorew);
        }
        /* every float of the slab belongs to exactly one tensor, same offsets in both slabs */
        int *owner = calloc((size_t)m->num_params, sizeof *owner);
        for (int64_t k = 0; k < nt; k++) {
            const int64_t off = t[k].param - m->params_mem;
            ck_assert(t[k].grad - m->grads_mem == off);
            ck_assert(off >= 0 && off + t[k].numel <= m->num_params);
            ck_assert_int_eq(t[k].numel, t[k].shape[0] * (t[k].ndim == 2 ? t[k].shape[1] : 1));
            ck_assert_int_eq(t[k].decay, t[k].ndim == 2);
            for (int64_t i = 0; i < t[k].numel; i++) owner[off + i]++;
        }
        for (int64_t i = 0; i < m->num_params; i++) ck_assert_int_eq(owner[i], 1);
        free(owner);
        for (int64_t l = 0; l < L; l++) {
            const gpt_layer_t w = gpt_layer(&m->params, &m->cfg, l),
                              g = gpt_layer(&m->grads, &m->cfg, l);
            const float *const wp[12] = {w.ln1w, w.ln1b, w.qkvw, w.qkvb, w.attprojw, w.attprojb,
                                         w.ln2w, w.ln2b, w.fcw,  w.fcb,  w.fcprojw,  w.fcprojb};
            const float *const gp[12] = {g.ln1w, g.ln1b, g.qkvw, g.qkvb, g.attprojw, g.attprojb,
                                         g.ln2w, g.ln2b, g.fcw,  g.fcb,  g.fcprojw,  g.fcprojb};
            for (int j = 0; j < 12; j++) {
                const gpt_tensor_t *x = &t[2 + 12 * l + j];
                char name[64];
                snprintf(name, sizeof name, "h.%lld.%s", (long long)l, block[j]);
                ck_assert_str_eq(x->name, name);
                ck_assert_msg(wp[j] == x->param && gp[j] == x->grad, "gpt_layer: %s", name);
            }
        }
        gpt_destroy(&m);
    }
}
END_TEST

/* ---- compute ------------------------------------------------------------------------------ */

/* The model of the whole-model gradient checks: 2 layers, C = 16 (issue 3). */
static const gpt_config_t small = {.vocab_size = 23, .n_positions = 8, .n_layer = 2,
                                   .n_head = 2, .n_embd = 16, .ln_eps = 1e-5f};
enum { SB = 2, ST = 7 }; /* batch of the checks */

/* A model with every parameter random (N(0, 0.2), LayerNorm weights around 1), so no path
 * hides behind a zero, allocated for training at SB × ST. */
static gpt_model_t *small_model(gpt_head_t head, uint64_t seed) {
    err_t err = ERR_INIT;
    gpt_model_t *m = gpt_new(&small, head, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_msg(gpt_alloc(m, SB, ST, true, &err) == 0, "%s", err.msg);
    rng_t rng;
    rng_seed(&rng, seed);
    for (int64_t i = 0; i < m->num_params; i++) m->params_mem[i] = 0.2f * rng_normal(&rng);
    const int64_t C = small.n_embd, L = small.n_layer;
    for (int64_t i = 0; i < L * C; i++) m->params.ln1w[i] += 1.0f, m->params.ln2w[i] += 1.0f;
    for (int64_t i = 0; i < C; i++) m->params.lnfw[i] += 1.0f;
    return m;
}

static void random_tokens(rng_t *rng, int32_t *tokens, int64_t n) {
    for (int64_t i = 0; i < n; i++) tokens[i] = (int32_t)rng_below(rng, (uint64_t)small.vocab_size);
}

/* A scalar loss of the model, recomputed from scratch (forward + head), in double. */
typedef struct check_ctx check_ctx;
struct check_ctx {
    double (*loss)(gpt_model_t *m, const check_ctx *c);
    int32_t tokens[SB * ST], targets[SB * ST];
    int64_t lengths[SB];
    float temperature;
    float g[SB * ST]; /* the weights of Σ out·g */
};

#define MODEL_FD_STEP 1e-3f
#define MODEL_FD_SAMPLES 6 /* points per tensor: its largest gradient + random ones */

/* Compares the gradient slab with central differences of c->loss at sampled points of every
 * tensor, within |Δ| ≤ 1e-2·|g| + 1e-3·max|g| (max over the tensor). */
static void check_model_grad(gpt_model_t *m, const check_ctx *c, const char *what) {
    /* hundreds of tiny forwards: one thread keeps them fast on a loaded machine (the gradient
     * being checked was computed with the default threads) */
    ops_set_threads(1);
    gpt_tensor_t t[64];
    const int64_t nt = gpt_tensors(m, t, 64);
    rng_t rng;
    rng_seed(&rng, 99);
    for (int64_t k = 0; k < nt; k++) {
        double maxg = 0.0;
        int64_t argmax = 0;
        for (int64_t i = 0; i < t[k].numel; i++)
            if (fabs((double)t[k].grad[i]) > maxg) maxg = fabs((double)t[k].grad[i]), argmax = i;
        /* wpe rows past T get no gradient; every other tensor must */
        ck_assert_msg(maxg > 0.0, "%s: %s: gradient is all zero", what, t[k].name);
        for (int s = 0; s < MODEL_FD_SAMPLES; s++) {
            const int64_t i = s == 0 ? argmax : (int64_t)rng_below(&rng, (uint64_t)t[k].numel);
            float *x = &t[k].param[i];
            const float saved = *x;
            *x = saved + MODEL_FD_STEP;
            const float xp = *x;
            const double lp = c->loss(m, c);
            *x = saved - MODEL_FD_STEP;
            const float xm = *x;
            const double lm = c->loss(m, c);
            *x = saved;
            const double fd = (lp - lm) / ((double)xp - (double)xm), g = t[k].grad[i];
            ck_assert_msg(fabs(fd - g) <= 1e-2 * fabs(g) + 1e-3 * maxg,
                          "%s: %s[%lld]: backward %.7g, finite difference %.7g (max |g| %.4g)",
                          what, t[k].name, (long long)i, g, fd, maxg);
        }
    }
}

/* mean next-token cross-entropy, as gpt_lm_loss, but with the sum kept in double */
static double lm_loss(gpt_model_t *m, const check_ctx *c) {
    float logp[SB * ST];
    gpt_forward(m, c->tokens, SB, ST);
    const double sum = gpt_lm_logprobs(m, c->targets, 1.0f, logp);
    int64_t kept = 0;
    for (int64_t i = 0; i < SB * ST; i++) kept += c->targets[i] >= 0;
    return -sum / (double)kept;
}

START_TEST(test_gpt_grad_lm_loss) {
    gpt_model_t *m = small_model(GPT_HEAD_LM, 1);
    check_ctx c = {.loss = lm_loss};
    rng_t rng;
    rng_seed(&rng, 2);
    random_tokens(&rng, c.tokens, SB * ST);
    for (int64_t b = 0; b < SB; b++)
        for (int64_t t = 0; t < ST; t++)
            c.targets[b * ST + t] = t + 1 < ST ? c.tokens[b * ST + t + 1] : -1;
    c.targets[ST + 4] = -1; /* a masked (prompt) position */
    gpt_zero_grad(m);
    const float loss = gpt_lm_loss(m, c.tokens, c.targets, SB, ST);
    ck_assert(isfinite(loss) && loss > 0.0f);
    ck_assert(fabs((double)loss - lm_loss(m, &c)) < 1e-6);
    int64_t kept = 0;
    for (int64_t i = 0; i < SB * ST; i++) kept += c.targets[i] >= 0;
    float dout[SB * ST];
    for (int64_t i = 0; i < SB * ST; i++) dout[i] = c.targets[i] >= 0 ? -1.0f / (float)kept : 0.0f;
    gpt_backward(m, dout);
    check_model_grad(m, &c, "lm loss");
    gpt_destroy(&m);
}
END_TEST

/* Σ g·logp at a temperature (the PPO ratio's log-probs) */
static double lm_logp_loss(gpt_model_t *m, const check_ctx *c) {
    float logp[SB * ST];
    gpt_forward(m, c->tokens, SB, ST);
    gpt_lm_logprobs(m, c->targets, c->temperature, logp);
    double s = 0.0;
    for (int64_t i = 0; i < SB * ST; i++) s += (double)c->g[i] * (double)logp[i];
    return s;
}

START_TEST(test_gpt_grad_lm_logprobs_temperature) {
    gpt_model_t *m = small_model(GPT_HEAD_LM, 3);
    check_ctx c = {.loss = lm_logp_loss, .temperature = 0.7f};
    rng_t rng;
    rng_seed(&rng, 4);
    random_tokens(&rng, c.tokens, SB * ST);
    random_tokens(&rng, c.targets, SB * ST);
    c.targets[2] = -1;
    for (int64_t i = 0; i < SB * ST; i++) c.g[i] = c.targets[i] >= 0 ? rng_normal(&rng) : 0.0f;
    gpt_zero_grad(m);
    lm_logp_loss(m, &c);
    gpt_backward(m, c.g);
    check_model_grad(m, &c, "lm logprobs at temperature 0.7");
    gpt_destroy(&m);
}
END_TEST

/* the reward model: Σ_b values[b, lengths[b]-1] (rows right-padded after their length) */
static double reward_loss(gpt_model_t *m, const check_ctx *c) {
    float rewards[SB];
    gpt_forward(m, c->tokens, SB, ST);
    gpt_score_at(m, c->lengths, rewards);
    return (double)rewards[0] + (double)rewards[1];
}

START_TEST(test_gpt_grad_reward_head) {
    gpt_model_t *m = small_model(GPT_HEAD_SCORE, 5);
    check_ctx c = {.loss = reward_loss, .lengths = {ST, 4}};
    rng_t rng;
    rng_seed(&rng, 6);
    random_tokens(&rng, c.tokens, SB * ST);
    for (int64_t t = 4; t < ST; t++) c.tokens[ST + t] = 0; /* pad id 0 */
    gpt_zero_grad(m);
    reward_loss(m, &c);
    float dout[SB * ST] = {0};
    for (int64_t b = 0; b < SB; b++) dout[b * ST + c.lengths[b] - 1] = 1.0f;
    gpt_backward(m, dout);
    check_model_grad(m, &c, "reward at the last real token");
    gpt_destroy(&m);
}
END_TEST

/* the value model: Σ g·values over every position */
static double value_loss(gpt_model_t *m, const check_ctx *c) {
    gpt_forward(m, c->tokens, SB, ST);
    double s = 0.0;
    for (int64_t i = 0; i < SB * ST; i++) s += (double)c->g[i] * (double)m->values[i];
    return s;
}

START_TEST(test_gpt_grad_value_head) {
    gpt_model_t *m = small_model(GPT_HEAD_SCORE, 7);
    check_ctx c = {.loss = value_loss};
    rng_t rng;
    rng_seed(&rng, 8);
    random_tokens(&rng, c.tokens, SB * ST);
    for (int64_t i = 0; i < SB * ST; i++) c.g[i] = rng_normal(&rng);
    gpt_zero_grad(m);
    value_loss(m, &c);
    gpt_backward(m, c.g);
    check_model_grad(m, &c, "value per token");
    gpt_destroy(&m);
}
END_TEST

/* Issue 3 / DESIGN §6: a training step (zero grads, forward, loss, backward) calls no
 * malloc/calloc/realloc/free, for both heads, also at a smaller batch than allocated. */
START_TEST(test_gpt_step_allocates_nothing) {
    for (int h = 0; h < 2; h++) {
        gpt_model_t *m = small_model((gpt_head_t)h, 9);
        int32_t tokens[SB * ST], targets[SB * ST];
        float dout[SB * ST];
        rng_t rng;
        rng_seed(&rng, 10);
        random_tokens(&rng, tokens, SB * ST);
        random_tokens(&rng, targets, SB * ST);
        for (int64_t i = 0; i < SB * ST; i++) dout[i] = -1.0f / (SB * ST);
        for (int64_t T = ST; T >= ST - 2; T -= 2) {
            alloc_count_start();
            gpt_zero_grad(m);
            if (h == GPT_HEAD_LM) gpt_lm_loss(m, tokens, targets, SB, T);
            else gpt_forward(m, tokens, SB, T);
            gpt_backward(m, dout);
            const int64_t calls = alloc_count_stop();
            ck_assert_msg(calls == 0, "head %d, T %lld: %lld heap calls in a step", h,
                          (long long)T, (long long)calls);
        }
        gpt_destroy(&m);
    }
}
END_TEST

/* Right padding: a row's outputs at positions < k do not depend on the tokens at ≥ k, and a
 * sequence's outputs do not depend on the other sequences of its batch. */
START_TEST(test_gpt_padding_does_not_leak) {
    for (int h = 0; h < 2; h++) {
        gpt_model_t *m = small_model((gpt_head_t)h, 11);
        const int64_t V = small.vocab_size, per = h == GPT_HEAD_LM ? V : 1;
        int32_t tokens[SB * ST];
        rng_t rng;
        rng_seed(&rng, 12);
        random_tokens(&rng, tokens, SB * ST);
        gpt_forward(m, tokens, SB, ST);
        const float *out = h == GPT_HEAD_LM ? m->logits : m->values;
        float before[SB * ST * 23];
        memcpy(before, out, (size_t)(SB * ST * per) * sizeof(float));
        for (int64_t t = 3; t < ST; t++) tokens[t] = 0;               /* row 0 padded after 3 */
        for (int64_t t = 0; t < ST; t++) tokens[ST + t] = (int32_t)t; /* row 1 replaced */
        gpt_forward(m, tokens, SB, ST);
        for (int64_t i = 0; i < 3 * per; i++)
            ck_assert_msg(fabsf(out[i] - before[i]) <= 1e-5f, "head %d: output %lld moved", h,
                          (long long)i);
        ck_assert(memcmp(out + 3 * per, before + 3 * per, (size_t)per * sizeof(float)));
        gpt_destroy(&m);
    }
}
END_TEST

/* An inference-only model (layers share one set of buffers) computes the same outputs. */
START_TEST(test_gpt_inference_alloc_matches_training) {
    err_t err = ERR_INIT;
    for (int h = 0; h < 2; h++) {
        gpt_model_t *m = small_model((gpt_head_t)h, 13);
        gpt_model_t *inf = gpt_new(&small, (gpt_head_t)h, &err);
        ck_assert_int_eq(gpt_copy_params(inf, m, &err), 0);
        ck_assert_int_eq(gpt_alloc(inf, SB, ST, false, &err), 0);
        ck_assert_ptr_null(inf->grads_mem);
        int32_t tokens[SB * ST];
        rng_t rng;
        rng_seed(&rng, 14);
        random_tokens(&rng, tokens, SB * ST);
        gpt_forward(m, tokens, SB, ST);
        gpt_forward(inf, tokens, SB, ST);
        const int64_t n = SB * ST * (h == GPT_HEAD_LM ? small.vocab_size : 1);
        const float *a = h == GPT_HEAD_LM ? m->logits : m->values;
        const float *b = h == GPT_HEAD_LM ? inf->logits : inf->values;
        ck_assert(!memcmp(a, b, (size_t)n * sizeof(float)));
        gpt_destroy(&m);
        gpt_destroy(&inf);
    }
}
END_TEST

START_TEST(test_gpt_alloc_checks_sizes) {
    err_t err = ERR_INIT;
    gpt_model_t *m = small_model(GPT_HEAD_SCORE, 15);
    float *grads = m->grads_mem;
    ck_assert_int_eq(gpt_alloc(m, 2, small.n_positions + 1, true, &err), -1);
    ck_assert_msg(strstr(err.msg, "n_positions"), "%s", err.msg);
    ck_assert_int_eq(gpt_alloc(m, 0, 4, true, &err), -1);
    err_clear(&err);
    ck_assert_int_eq(gpt_alloc(m, (int64_t)1 << 40, 8, true, &err), -1);
    ck_assert_msg(strstr(err.msg, "too large"), "%s", err.msg);
    ck_assert(m->B_max == SB && m->T_max == ST); /* a failure changed nothing */
    ck_assert_int_eq(gpt_alloc(m, 3, small.n_positions, true, &(err_t)ERR_INIT), 0);
    ck_assert(m->grads_mem == grads); /* the gradient slab stays where it was */
    ck_assert(m->B_max == 3 && m->T_max == small.n_positions);
    const int32_t tokens[3 * 8] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 0, 0, 0, 0, 5, 5, 5};
    gpt_forward(m, tokens, 3, 8);
    const int64_t lengths[3] = {8, 4, 1};
    float r[3];
    gpt_score_at(m, lengths, r);
    ck_assert(r[0] == m->values[7] && r[1] == m->values[8 + 3] && r[2] == m->values[16]);
    gpt_destroy(&m);
}
END_TEST

Suite *test_gpt_suite(void);
Suite *test_gpt_suite(void) {
    Suite *s = suite_create("gpt");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, test_gpt_tensor_table_covers_slab);
    tcase_add_test(tc, test_gpt_bad_config_is_an_error);
    tcase_add_test(tc, test_gpt_init_is_seeded);
    tcase_add_test(tc, test_gpt_init_statistics);
    tcase_add_test(tc, test_gpt_layer_matches_tensors);
    suite_add_tcase(s, tc);
    TCase *tg = tcase_create("compute");
    tcase_add_test(tg, test_gpt_grad_lm_loss);
    tcase_add_test(tg, test_gpt_grad_lm_logprobs_temperature);
    tcase_add_test(tg, test_gpt_grad_reward_head);
    tcase_add_test(tg, test_gpt_grad_value_head);
    tcase_add_test(tg, test_gpt_step_allocates_nothing);
    tcase_add_test(tg, test_gpt_padding_does_not_leak);
    tcase_add_test(tg, test_gpt_inference_alloc_matches_training);
    tcase_add_test(tg, test_gpt_alloc_checks_sizes);
    suite_add_tcase(s, tg);
    return s;
}
