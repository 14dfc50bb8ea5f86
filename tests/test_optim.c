#include "alloc_count.h"
#include "ckpt.h"
#include "optim.h"
#include "rng.h"
#include "testutil.h"
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A model with both kinds of tensors and a score head (score.weight is 2-D: it decays). */
static const gpt_config_t tiny = {
    .vocab_size = 23, .n_positions = 8, .n_layer = 2, .n_head = 2, .n_embd = 8, .ln_eps = 1e-5f};

static gpt_model_t *tiny_model(uint64_t seed) {
    err_t err = ERR_INIT;
    gpt_model_t *m = gpt_new(&tiny, GPT_HEAD_SCORE, &err);
    ck_assert_msg(m, "%s", err.msg);
    gpt_init_random(m, seed);
    /* LayerNorm weights and biases away from 1 and 0, so decay on them would show. */
    rng_t rng;
    rng_seed(&rng, seed + 100);
    for (int64_t i = 0; i < m->num_params; i++) m->params_mem[i] += 0.1f * rng_normal(&rng);
    return m;
}

static void fill_normal(float *x, int64_t n, rng_t *rng, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

/* ---- AdamW vs a scalar double-precision reference --------------------------------------- */

/* The textbook AdamW (Loshchilov & Hutter, as torch.optim.AdamW implements it), one element
 * at a time in double; decay decided from the tensor's dimension count. */
typedef struct {
    double p, m, v;
} ref_t;

static void ref_step(ref_t *r, double g, double lr, double wd, int64_t t, bool decay) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    if (decay) r->p *= 1.0 - lr * wd;
    r->m = b1 * r->m + (1.0 - b1) * g;
    r->v = b2 * r->v + (1.0 - b2) * g * g;
    const double mhat = r->m / (1.0 - pow(b1, (double)t)), vhat = r->v / (1.0 - pow(b2, (double)t));
    r->p -= lr * mhat / (sqrt(vhat) + eps);
}

START_TEST(test_optim_adamw_matches_reference) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(1);
    const int64_t n = m->num_params;
    optim_config_t cfg = optim_config_default();
    cfg.weight_decay = 0.1;
    optim_t *opt = optim_new(m, &cfg, &err);
    ck_assert_msg(opt, "%s", err.msg);
    ck_assert_int_eq(opt->n, n);
    /* Per-element decay flag from the tensor table's shapes, independently of opt->ranges. */
    bool *decay = calloc((size_t)n, sizeof *decay);
    gpt_tensor_t t[64];
    const int64_t nt = gpt_tensors(m, t, 64);
    for (int64_t k = 0; k < nt; k++)
        for (int64_t i = 0; i < t[k].numel; i++)
            decay[t[k].param - m->params_mem + i] = t[k].ndim >= 2;
    ref_t *ref = malloc((size_t)n * sizeof *ref);
    for (int64_t i = 0; i < n; i++) ref[i] = (ref_t){m->params_mem[i], 0, 0};
    float *g = malloc((size_t)n * sizeof *g);
    rng_t rng;
    rng_seed(&rng, 7);
    const double lrs[6] = {1e-3, 3e-3, 1e-2, 5e-4, 0.0, 2e-3};
    for (int s = 0; s < 6; s++) {
        fill_normal(g, n, &rng, s == 3 ? 1e-4f : 1.0f); /* tiny gradients too: eps matters */
        optim_step(opt, m->params_mem, g, lrs[s]);
        for (int64_t i = 0; i < n; i++) ref_step(&ref[i], g[i], lrs[s], 0.1, s + 1, decay[i]);
    }
    ck_assert_int_eq(opt->step, 6);
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)m->params_mem[i] - ref[i].p) / (fabs(ref[i].p) + 1e-3);
        if (d > worst) worst = d;
        /* m sums gradients of both signs (~1): float rounding is absolute, ~1e-8 */
        ck_assert_msg(fabs((double)opt->m[i] - ref[i].m) <= 1e-6, "m[%lld] %g, expected %g",
                      (long long)i, (double)opt->m[i], ref[i].m);
        ck_assert_msg(fabs((double)opt->v[i] - ref[i].v) <= 1e-5 * ref[i].v + 1e-12,
                      "v[%lld] %g, expected %g", (long long)i, (double)opt->v[i], ref[i].v);
    }
    ck_assert_msg(worst < 1e-5, "largest relative difference from the reference %g", worst);
    free(g);
    free(ref);
    free(decay);
    optim_destroy(&opt);
    ck_assert_ptr_null(opt);
    gpt_destroy(&m);
}
END_TEST

/* With zero gradients the Adam term is exactly 0, so only decay moves a parameter: 2-D
 * tensors shrink by exactly (1 - lr·wd), biases and LayerNorm stay bit for bit. */
START_TEST(test_optim_decay_only_on_matrices) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(2);
    const int64_t n = m->num_params;
    float *before = malloc((size_t)n * sizeof *before), *g = calloc((size_t)n, sizeof *g);
    memcpy(before, m->params_mem, (size_t)n * sizeof *before);
    optim_config_t cfg = optim_config_default();
    optim_t *opt = optim_new(m, &cfg, &err);
    optim_step(opt, m->params_mem, g, 0.5);
    const float keep = (float)(1.0 - 0.5 * cfg.weight_decay);
    gpt_tensor_t t[64];
    const int64_t nt = gpt_tensors(m, t, 64);
    int decayed = 0, kept = 0;
    for (int64_t k = 0; k < nt; k++) {
        const int64_t off = t[k].param - m->params_mem;
        for (int64_t i = 0; i < t[k].numel; i++) {
            const float want = t[k].ndim >= 2 ? before[off + i] * keep : before[off + i];
            ck_assert_msg(t[k].param[i] == want, "%s[%lld]", t[k].name, (long long)i);
        }
        if (t[k].ndim >= 2)
            decayed++;
        else
            kept++;
    }
    ck_assert_int_eq(decayed, 2 + 4 * 2 + 1); /* wte, wpe, 4 per layer, score.weight */
    ck_assert_int_eq(kept, 8 * 2 + 2);
    free(before);
    free(g);
    optim_destroy(&opt);
    gpt_destroy(&m);
}
END_TEST

START_TEST(test_optim_step_allocates_nothing) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(3);
    optim_config_t cfg = optim_config_default();
    optim_t *opt = optim_new(m, &cfg, &err);
    float *g = calloc((size_t)m->num_params, sizeof *g);
    g[5] = 1.0f;
    alloc_count_start();
    optim_clip_grad_norm(opt, g, 0.5);
    optim_step(opt, m->params_mem, g, 1e-3);
    ck_assert_int_eq(alloc_count_stop(), 0);
    free(g);
    optim_destroy(&opt);
    gpt_destroy(&m);
}
END_TEST

START_TEST(test_optim_bad_config) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(3);
    optim_config_t cfg = optim_config_default();
    cfg.beta2 = 1.0;
    ck_assert_ptr_null(optim_new(m, &cfg, &err));
    ck_assert_msg(strstr(err.msg, "betas"), "%s", err.msg);
    gpt_destroy(&m);
}
END_TEST

#define NEAR(a, b, tol)                                                                            \
    ck_assert_msg(fabs((double)(a) - (double)(b)) <= (double)(tol), "%s = %.9g, expected %.9g",    \
                  #a, (double)(a), (double)(b))

/* ---- schedule ----------------------------------------------------------------------------- */

START_TEST(test_optim_schedule) {
    const optim_schedule_t s = {.lr = 1e-3, .lr_min = 1e-4, .warmup = 10, .total = 110};
    NEAR(optim_lr(&s, 0), 1e-4, 1e-15); /* warmup start: lr/10 */
    NEAR(optim_lr(&s, 4), 5e-4, 1e-15);
    NEAR(optim_lr(&s, 9), 1e-3, 1e-15);    /* warmup end: the peak */
    NEAR(optim_lr(&s, 10), 1e-3, 1e-15);   /* cosine start */
    NEAR(optim_lr(&s, 60), 5.5e-4, 1e-15); /* middle: halfway between peak and floor */
    NEAR(optim_lr(&s, 35), 1e-4 + 9e-4 * 0.5 * (1.0 + sqrt(0.5)), 1e-15); /* a quarter */
    ck_assert(optim_lr(&s, 109) > 1e-4 && optim_lr(&s, 109) < 1.01e-4);
    ck_assert(optim_lr(&s, 110) == 1e-4); /* end: the floor */
    ck_assert(optim_lr(&s, 5000) == 1e-4);
    for (int64_t i = 10; i < 110; i++) ck_assert(optim_lr(&s, i + 1) <= optim_lr(&s, i));
    const optim_schedule_t flat = {.lr = 2e-3, .warmup = 0, .total = 0};
    ck_assert(optim_lr(&flat, 0) == 2e-3 && optim_lr(&flat, 1000000) == 2e-3);
    const optim_schedule_t nowarm = {.lr = 1.0, .lr_min = 0.0, .warmup = 0, .total = 4};
    ck_assert(optim_lr(&nowarm, 0) == 1.0);
    NEAR(optim_lr(&nowarm, 2), 0.5, 1e-15);
    ck_assert(optim_lr(&nowarm, 4) == 0.0);
}
END_TEST

/* ---- clipping ----------------------------------------------------------------------------- */

START_TEST(test_optim_clip_to_norm) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(4);
    const int64_t n = m->num_params;
    optim_config_t cfg = optim_config_default();
    optim_t *opt = optim_new(m, &cfg, &err);
    float *g = malloc((size_t)n * sizeof *g), *g0 = malloc((size_t)n * sizeof *g0);
    rng_t rng;
    rng_seed(&rng, 5);
    fill_normal(g0, n, &rng, 0.3f);
    double want = 0.0;
    for (int64_t i = 0; i < n; i++) want += (double)g0[i] * (double)g0[i];
    want = sqrt(want);
    /* Below the threshold, or no threshold: untouched, the norm returned. */
    memcpy(g, g0, (size_t)n * sizeof *g);
    ck_assert_double_eq_tol(optim_clip_grad_norm(opt, g, want * 2), want, 1e-12 * want);
    ck_assert(!memcmp(g, g0, (size_t)n * sizeof *g));
    ck_assert_double_eq_tol(optim_clip_grad_norm(opt, g, 0.0), want, 1e-12 * want);
    ck_assert(!memcmp(g, g0, (size_t)n * sizeof *g));
    /* Above: scaled so the norm is max_norm, every element by the same factor. */
    const double max = want / 3;
    ck_assert_double_eq_tol(optim_clip_grad_norm(opt, g, max), want, 1e-12 * want);
    double after = 0.0;
    for (int64_t i = 0; i < n; i++) after += (double)g[i] * (double)g[i];
    ck_assert_double_eq_tol(sqrt(after), max, 1e-6 * max);
    const float scale = (float)(max / want);
    for (int64_t i = 0; i < n; i++) ck_assert(g[i] == g0[i] * scale);
    /* A NaN is reported and nothing is scaled. */
    memcpy(g, g0, (size_t)n * sizeof *g);
    g[n / 2] = NAN;
    ck_assert(isnan(optim_clip_grad_norm(opt, g, max)));
    ck_assert(g[0] == g0[0]);
    free(g);
    free(g0);
    optim_destroy(&opt);
    gpt_destroy(&m);
}
END_TEST

/* The norm's bits do not depend on the thread count (fixed chunks, summed in order). Needs
 * more than one chunk: a model of ~70k parameters. */
START_TEST(test_optim_norm_thread_independent) {
    err_t err = ERR_INIT;
    const gpt_config_t c = {.vocab_size = 300,
                            .n_positions = 16,
                            .n_layer = 2,
                            .n_head = 2,
                            .n_embd = 32,
                            .ln_eps = 1e-5f};
    gpt_model_t *m = gpt_new(&c, GPT_HEAD_LM, &err);
    optim_config_t cfg = optim_config_default();
    optim_t *opt = optim_new(m, &cfg, &err);
    ck_assert(opt->nchunks > 2);
    float *g = malloc((size_t)m->num_params * sizeof *g);
    rng_t rng;
    rng_seed(&rng, 6);
    fill_normal(g, m->num_params, &rng, 1.0f);
    omp_set_num_threads(1);
    const double one = optim_clip_grad_norm(opt, g, 0.0);
    omp_set_num_threads(3);
    const double three = optim_clip_grad_norm(opt, g, 0.0);
    ck_assert(memcmp(&one, &three, sizeof one) == 0);
    free(g);
    optim_destroy(&opt);
    gpt_destroy(&m);
}
END_TEST

/* ---- resume ------------------------------------------------------------------------------- */

/* A deterministic stand-in for backward: the gradient of Σ (p² / 2 + sin(3p)) / n, a
 * function of the parameters only, so a resumed run must follow the same path. */
static void fake_grads(const gpt_model_t *m, float *g) {
    for (int64_t i = 0; i < m->num_params; i++) {
        const float p = m->params_mem[i];
        g[i] = p + 3.0f * cosf(3.0f * p);
    }
}

static void run_steps(gpt_model_t *m, optim_t *opt, float *g, const optim_schedule_t *s,
                      int64_t steps) {
    for (int64_t k = 0; k < steps; k++) {
        fake_grads(m, g);
        optim_clip_grad_norm(opt, g, 1.0);
        optim_step(opt, m->params_mem, g, optim_lr(s, opt->step));
    }
}

/* N steps, save (model directory + train_state.bin), load into fresh objects, M more steps:
 * bit for bit the parameters and moments of N + M uninterrupted steps. */
START_TEST(test_optim_resume_is_exact) {
    err_t err = ERR_INIT;
    const optim_schedule_t s = {.lr = 1e-2, .lr_min = 1e-3, .warmup = 3, .total = 20};
    const optim_config_t cfg = optim_config_default();
    gpt_model_t *a = tiny_model(8);
    optim_t *oa = optim_new(a, &cfg, &err);
    float *g = malloc((size_t)a->num_params * sizeof *g);
    run_steps(a, oa, g, &s, 12);

    gpt_model_t *b = tiny_model(8);
    optim_t *ob = optim_new(b, &cfg, &err);
    run_steps(b, ob, g, &s, 5);
    char dir[64], state[128];
    testutil_scratch_dir(dir, sizeof dir, "optim");
    snprintf(state, sizeof state, "%s/train_state.bin", dir);
    ckpt_section_t sec[OPTIM_NUM_SECTIONS];
    optim_sections(ob, sec);
    ck_assert_msg(ckpt_save(dir, b, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(ckpt_state_save(state, sec, OPTIM_NUM_SECTIONS, &err) == 0, "%s", err.msg);
    gpt_destroy(&b);
    optim_destroy(&ob);

    gpt_model_t *c = ckpt_load(dir, NULL, &err);
    ck_assert_msg(c, "%s", err.msg);
    optim_t *oc = optim_new(c, &cfg, &err);
    optim_sections(oc, sec);
    ck_assert_msg(ckpt_state_load(state, sec, OPTIM_NUM_SECTIONS, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(oc->step, 5);
    run_steps(c, oc, g, &s, 7);
    ck_assert_int_eq(oc->step, 12);
    const size_t bytes = (size_t)a->num_params * sizeof(float);
    ck_assert(!memcmp(a->params_mem, c->params_mem, bytes));
    ck_assert(!memcmp(oa->m, oc->m, bytes) && !memcmp(oa->v, oc->v, bytes));
    /* And the run did move: the check can fail. */
    gpt_model_t *init = tiny_model(8);
    ck_assert(memcmp(init->params_mem, c->params_mem, bytes));
    gpt_destroy(&init);
    testutil_rm_tree(dir);
    free(g);
    optim_destroy(&oa);
    optim_destroy(&oc);
    gpt_destroy(&a);
    gpt_destroy(&c);
}
END_TEST

/* ---- with the model's forward and backward ---------------------------------------------- */

#define LM_DIR RLHF_SRCDIR "/tests/fixtures/tiny-gpt2"

/* The fixture's batch: tokens (2, 32) and next-token targets (the last position has none). */
static void fixture_batch(int32_t *tokens, int32_t *targets) {
    err_t err = ERR_INIT;
    ckpt_st_t *st = ckpt_st_open(LM_DIR "/expected.safetensors", &err);
    ck_assert_msg(st, "%s", err.msg);
    ck_assert_msg(ckpt_st_read_i32(st, "tokens", tokens, 64, &err) == 0, "%s", err.msg);
    ckpt_st_close(&st);
    for (int i = 0; i < 64; i++) targets[i] = i % 32 < 31 ? tokens[i + 1] : -1;
}

/* One training step on the LM loss; returns the loss before the update. */
static float lm_step(gpt_model_t *m, optim_t *opt, const int32_t *tokens, const int32_t *targets,
                     int64_t B, int64_t T, double lr, double clip) {
    float dout[256];
    int64_t kept = 0;
    for (int64_t i = 0; i < B * T; i++) kept += targets[i] >= 0;
    for (int64_t i = 0; i < B * T; i++) dout[i] = targets[i] >= 0 ? -1.0f / (float)kept : 0.0f;
    gpt_zero_grad(m);
    const float loss = gpt_lm_loss(m, tokens, targets, B, T);
    gpt_backward(m, dout);
    if (clip > 0) optim_clip_grad_norm(opt, m->grads_mem, clip);
    optim_step(opt, m->params_mem, m->grads_mem, lr);
    return loss;
}

/* expected.json "adamw": 10 steps of torch.optim.AdamW (lr 1e-3, betas (0.9, 0.999), eps 1e-8,
 * weight decay 0.1 on 2-D tensors, no clipping) on the fixture batch; the loss before each
 * step must match PyTorch's within its stated tolerance. */
START_TEST(test_optim_fixture_adamw_losses) {
    err_t err = ERR_INIT;
    json_t *ex = testutil_load_json(LM_DIR "/expected.json");
    const json_t *aw = json_object_get(ex, "adamw"), *losses;
    optim_config_t cfg = {.beta1 = json_real_value(json_array_get(json_object_get(aw, "betas"), 0)),
                          .beta2 = json_real_value(json_array_get(json_object_get(aw, "betas"), 1)),
                          .eps = json_real_value(json_object_get(aw, "eps")),
                          .weight_decay = json_real_value(json_object_get(aw, "weight_decay"))};
    const double lr = json_real_value(json_object_get(aw, "lr"));
    const double tol =
        json_real_value(json_object_get(json_object_get(ex, "tolerances"), "adamw_loss_abs"));
    losses = json_object_get(aw, "loss_before_each_step");
    ck_assert(cfg.beta1 == 0.9 && cfg.beta2 == 0.999 && lr == 1e-3 && tol > 0);
    ck_assert_int_eq(json_array_size(losses), 10);
    gpt_model_t *m = ckpt_load(LM_DIR, NULL, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_msg(gpt_alloc(m, 2, 32, true, &err) == 0, "%s", err.msg);
    optim_t *opt = optim_new(m, &cfg, &err);
    ck_assert_msg(opt, "%s", err.msg);
    int32_t tokens[64], targets[64];
    fixture_batch(tokens, targets);
    for (size_t k = 0; k < 10; k++) {
        const double want = json_real_value(json_array_get(losses, k));
        const float got = lm_step(m, opt, tokens, targets, 2, 32, lr, 0.0);
        ck_assert_msg(fabs((double)got - want) <= tol, "step %zu: loss %.7f, PyTorch %.7f", k,
                      (double)got, want);
    }
    json_decref(ex);
    optim_destroy(&opt);
    gpt_destroy(&m);
}
END_TEST

/* A few hundred steps memorise one small batch: the loss falls from ~ln V to below
 * OVERFIT_BOUND. */
#define OVERFIT_STEPS 300
#define OVERFIT_BOUND 0.05f
START_TEST(test_optim_overfits_tiny_batch) {
    err_t err = ERR_INIT;
    const gpt_config_t c = {.vocab_size = 64,
                            .n_positions = 16,
                            .n_layer = 2,
                            .n_head = 2,
                            .n_embd = 32,
                            .ln_eps = 1e-5f};
    gpt_model_t *m = gpt_new(&c, GPT_HEAD_LM, &err);
    ck_assert_msg(m, "%s", err.msg);
    gpt_init_random(m, 11);
    ck_assert_msg(gpt_alloc(m, 4, 16, true, &err) == 0, "%s", err.msg);
    optim_config_t cfg = optim_config_default();
    optim_t *opt = optim_new(m, &cfg, &err);
    int32_t tokens[64], targets[64];
    rng_t rng;
    rng_seed(&rng, 12);
    for (int i = 0; i < 64; i++) tokens[i] = (int32_t)rng_below(&rng, 64);
    for (int i = 0; i < 64; i++) targets[i] = i % 16 < 15 ? tokens[i + 1] : -1;
    const optim_schedule_t s = {.lr = 1e-2, .lr_min = 1e-3, .warmup = 20, .total = OVERFIT_STEPS};
    float first = 0.0f, loss = 0.0f;
    for (int k = 0; k < OVERFIT_STEPS; k++) {
        loss = lm_step(m, opt, tokens, targets, 4, 16, optim_lr(&s, k), 1.0);
        if (!k) first = loss;
        ck_assert(isfinite(loss));
    }
    ck_assert_msg(first > 4.0f, "initial loss %.3f, expected about ln 64 = 4.16", (double)first);
    ck_assert_msg(loss < OVERFIT_BOUND, "loss after %d steps %.4f, bound %.3f", OVERFIT_STEPS,
                  (double)loss, (double)OVERFIT_BOUND);
    optim_destroy(&opt);
    gpt_destroy(&m);
}
END_TEST

/* Training resumes exactly: N real steps, save the model directory and train_state.bin, load
 * both into fresh objects, M more steps == N + M uninterrupted steps, bit for bit. */
START_TEST(test_optim_resume_training_is_exact) {
    err_t err = ERR_INIT;
    enum { N = 4, M = 3 };
    const optim_schedule_t s = {.lr = 3e-3, .lr_min = 3e-4, .warmup = 2, .total = N + M};
    const optim_config_t cfg = optim_config_default();
    int32_t tokens[64], targets[64];
    fixture_batch(tokens, targets);
    gpt_model_t *a = ckpt_load(LM_DIR, NULL, &err);
    ck_assert_msg(a && gpt_alloc(a, 2, 32, true, &err) == 0, "%s", err.msg);
    optim_t *oa = optim_new(a, &cfg, &err);
    float la[N + M];
    for (int k = 0; k < N + M; k++)
        la[k] = lm_step(a, oa, tokens, targets, 2, 32, optim_lr(&s, k), 1.0);

    gpt_model_t *b = ckpt_load(LM_DIR, NULL, &err);
    ck_assert_msg(b && gpt_alloc(b, 2, 32, true, &err) == 0, "%s", err.msg);
    optim_t *ob = optim_new(b, &cfg, &err);
    for (int k = 0; k < N; k++) lm_step(b, ob, tokens, targets, 2, 32, optim_lr(&s, k), 1.0);
    char dir[64], state[128];
    testutil_scratch_dir(dir, sizeof dir, "optim");
    snprintf(state, sizeof state, "%s/train_state.bin", dir);
    ckpt_section_t sec[OPTIM_NUM_SECTIONS];
    optim_sections(ob, sec);
    ck_assert_msg(ckpt_save(dir, b, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(ckpt_state_save(state, sec, OPTIM_NUM_SECTIONS, &err) == 0, "%s", err.msg);
    optim_destroy(&ob);
    gpt_destroy(&b);

    gpt_model_t *c = ckpt_load(dir, NULL, &err);
    ck_assert_msg(c && gpt_alloc(c, 2, 32, true, &err) == 0, "%s", err.msg);
    optim_t *oc = optim_new(c, &cfg, &err);
    optim_sections(oc, sec);
    ck_assert_msg(ckpt_state_load(state, sec, OPTIM_NUM_SECTIONS, &err) == 0, "%s", err.msg);
    for (int k = N; k < N + M; k++) {
        const float l = lm_step(c, oc, tokens, targets, 2, 32, optim_lr(&s, oc->step), 1.0);
        ck_assert_msg(l == la[k], "step %d: loss %.9g resumed, %.9g uninterrupted", k, (double)l,
                      (double)la[k]);
    }
    const size_t bytes = (size_t)a->num_params * sizeof(float);
    ck_assert(!memcmp(a->params_mem, c->params_mem, bytes));
    ck_assert(!memcmp(oa->m, oc->m, bytes) && !memcmp(oa->v, oc->v, bytes));
    ck_assert(oa->step == oc->step && la[N + M - 1] < la[0]);
    testutil_rm_tree(dir);
    optim_destroy(&oa);
    optim_destroy(&oc);
    gpt_destroy(&a);
    gpt_destroy(&c);
}
END_TEST

Suite *test_optim_suite(void);
Suite *test_optim_suite(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("adamw");
    tcase_add_test(tc, test_optim_adamw_matches_reference);
    tcase_add_test(tc, test_optim_decay_only_on_matrices);
    tcase_add_test(tc, test_optim_step_allocates_nothing);
    tcase_add_test(tc, test_optim_bad_config);
    tcase_add_test(tc, test_optim_schedule);
    tcase_add_test(tc, test_optim_clip_to_norm);
    tcase_add_test(tc, test_optim_norm_thread_independent);
    tcase_add_test(tc, test_optim_resume_is_exact);
    suite_add_tcase(s, tc);
    tc = tcase_create("training");
    tcase_add_test(tc, test_optim_fixture_adamw_losses);
    tcase_add_test(tc, test_optim_overfits_tiny_batch);
    tcase_add_test(tc, test_optim_resume_training_is_exact);
    suite_add_tcase(s, tc);
    return s;
}
