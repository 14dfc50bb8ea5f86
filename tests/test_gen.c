/* tests/test_gen.c: KV-cached generation against the full forward (the oracle), batch
 * independence, the sampling rules, log-probs, stopping, allocation and input errors. */
#include "alloc_count.h"
#include "gen.h"
#include "gpt.h"
#include "ops.h"
#include "rng.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* T_max 32 and 12 prompts of up to 28 tokens exceed one prefill chunk (256 rows), so chunks
 * split prompts; batches of 1-4 rows take the sgemv path, larger ones sgemm. */
static const gpt_config_t tiny = {
    .vocab_size = 97, .n_positions = 32, .n_layer = 2, .n_head = 3, .n_embd = 48, .ln_eps = 1e-5f};
enum { TMAX = 32, BMAX = 12 };

/* A random tiny model. GPT-2's init alone gives near-uniform next-token distributions whose
 * argmax repeats the input token; sharp = true scales the blocks (×10) and ln_f (weight 20)
 * so greedy runs vary and distributions are peaked (~2 nats), as a trained model's are. */
static gpt_model_t *tiny_model(uint64_t seed, bool sharp) {
    err_t err = ERR_INIT;
    gpt_model_t *m = gpt_new(&tiny, GPT_HEAD_LM, &err);
    ck_assert_msg(m, "%s", err.msg);
    gpt_init_random(m, seed);
    if (!sharp) return m;
    const int64_t L = tiny.n_layer, C = tiny.n_embd;
    gpt_params_t *p = &m->params;
    for (int64_t i = 0; i < L * C * 3 * C; i++) p->qkvw[i] *= 10.0f;
    for (int64_t i = 0; i < L * C * C; i++) p->attprojw[i] *= 10.0f;
    for (int64_t i = 0; i < L * C * 4 * C; i++) {
        p->fcw[i] *= 10.0f;
        p->fcprojw[i] *= 10.0f;
    }
    for (int64_t i = 0; i < C; i++) p->lnfw[i] = 20.0f;
    return m;
}

/* Random prompts (B, TMAX) right-padded with -7 (padding must never be read). */
static void random_prompts(int32_t *prompts, int64_t *lens, int64_t B, int64_t max_len,
                           uint64_t seed) {
    rng_t r;
    rng_seed(&r, seed);
    for (int64_t b = 0; b < B; b++) {
        lens[b] = 1 + (int64_t)rng_below(&r, (uint64_t)max_len);
        for (int64_t t = 0; t < TMAX; t++)
            prompts[b * TMAX + t] = t < lens[b] ? (int32_t)rng_below(&r, 97) : -7;
    }
}

static int64_t argmax(const float *x, int64_t n) {
    int64_t a = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[a]) a = i;
    return a;
}

/* log softmax(logits / temperature)[tok] in double (temperature 0 counts as 1). */
static double ref_logprob(const float *logits, int64_t V, double temperature, int64_t tok) {
    const double tt = temperature > 0 ? temperature : 1.0;
    double max = -INFINITY, z = 0.0;
    for (int64_t i = 0; i < V; i++) max = fmax(max, (double)logits[i] / tt);
    for (int64_t i = 0; i < V; i++) z += exp((double)logits[i] / tt - max);
    return (double)logits[tok] / tt - max - log(z);
}

/* full (B, TMAX) = each prompt followed by its new tokens so far, padded with 0. */
static void build_full(int32_t *full, const int32_t *prompts, const int64_t *lens, int64_t B,
                       gen_result_t res) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < TMAX; t++) {
            int64_t i = t - lens[b];
            full[b * TMAX + t] = t < lens[b]        ? prompts[b * TMAX + t]
                                 : i < res.count[b] ? res.tokens[b * res.stride + i]
                                                    : 0;
        }
}

/* At every step, each unfinished sequence's cached logits equal the full forward's over the
 * same tokens; at the end, the returned log-probs equal what PPO recomputes with
 * gpt_lm_logprobs at the sampling temperature (top-p truncation does not enter them). */
static void check_against_full_forward(int64_t B, int64_t max_len, int64_t max_new, uint64_t seed,
                                       bool sharp) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(1, sharp);
    ck_assert_msg(!gpt_alloc(m, B, TMAX, false, &err), "%s", err.msg);
    gen_t *g = gen_new(m, BMAX, TMAX, &err);
    ck_assert_msg(g, "%s", err.msg);
    int32_t prompts[BMAX * TMAX], full[BMAX * TMAX], targets[BMAX * TMAX];
    int64_t lens[BMAX];
    random_prompts(prompts, lens, B, max_len, seed);
    gen_opts_t o = GEN_OPTS_DEFAULT;
    o.max_new = max_new;
    o.seed = seed;
    o.temperature = 0.8f;
    o.top_p = 0.9f;
    ck_assert_msg(!gen_start(g, prompts, TMAX, lens, B, &o, &err), "%s", err.msg);
    const int64_t V = tiny.vocab_size;
    float worst = 0.0f;
    int64_t steps = 0, compared = 0;
    for (;;) {
        gen_result_t res = gen_result(g);
        build_full(full, prompts, lens, B, res);
        gpt_forward(m, full, B, TMAX);
        for (int64_t b = 0; b < B; b++) {
            const float *lg = gen_logits(g, b);
            if (!lg) continue;
            const float *ref = m->logits + (b * TMAX + lens[b] + res.count[b] - 1) * V;
            for (int64_t v = 0; v < V; v++) worst = fmaxf(worst, fabsf(lg[v] - ref[v]));
            compared++;
        }
        if (gen_step(g) == 0) break;
        steps++;
    }
    ck_assert_msg(worst <= 1e-4f, "B %lld: cached logits differ from the full forward by %g",
                  (long long)B, (double)worst);
    ck_assert_int_ge(compared, B);
    ck_assert_int_ge(steps, 1);
    gen_result_t res = gen_result(g);
    build_full(full, prompts, lens, B, res);
    for (int64_t i = 0; i < B * TMAX; i++) targets[i] = -1;
    for (int64_t b = 0; b < B; b++) /* position t predicts token t + 1 */
        for (int64_t i = 0; i < res.count[b]; i++)
            targets[b * TMAX + lens[b] - 1 + i] = full[b * TMAX + lens[b] + i];
    gpt_forward(m, full, B, TMAX);
    float logp[BMAX * TMAX];
    gpt_lm_logprobs(m, targets, o.temperature, logp);
    float worst_lp = 0.0f;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < res.count[b]; i++)
            worst_lp = fmaxf(worst_lp, fabsf(logp[b * TMAX + lens[b] - 1 + i] -
                                             res.logprobs[b * res.stride + i]));
    ck_assert_msg(worst_lp <= 1e-4f, "log-probs differ from gpt_lm_logprobs by %g",
                  (double)worst_lp);
    gen_destroy(&g);
    ck_assert_ptr_null(g);
    gpt_destroy(&m);
}

START_TEST(test_gen_matches_full_forward) {
    for (int sharp = 0; sharp < 2; sharp++) {
        check_against_full_forward(1, 10, 12, 3, sharp); /* sgemv path */
        check_against_full_forward(3, 12, 10, 4, sharp); /* ragged, sgemv path */
        check_against_full_forward(12, 28, 6, 5, sharp); /* prefill in two chunks, sgemm */
    }
}
END_TEST

/* Two batches sharing sequence 0 (same prompt, same stream), different batchmates, stepped in
 * lockstep: sequence 0's logits and tokens agree; alone (B = 1, the sgemv path) too. */
START_TEST(test_gen_batch_independent) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(2, true);
    gen_t *ga = gen_new(m, BMAX, TMAX, &err), *gb = gen_new(m, BMAX, TMAX, &err),
          *gc = gen_new(m, 1, TMAX, &err);
    ck_assert_msg(ga && gb && gc, "%s", err.msg);
    int32_t pa[BMAX * TMAX], pb[BMAX * TMAX];
    int64_t la[BMAX], lb[BMAX];
    random_prompts(pa, la, 8, 20, 10);
    random_prompts(pb, lb, 8, 20, 11);
    memcpy(pb, pa, sizeof(int32_t) * TMAX);
    lb[0] = la[0];
    gen_opts_t o = GEN_OPTS_DEFAULT;
    o.max_new = 10;
    o.seed = 99;
    ck_assert(!gen_start(ga, pa, TMAX, la, 8, &o, &err));
    ck_assert(!gen_start(gb, pb, TMAX, lb, 5, &o, &err));
    ck_assert(!gen_start(gc, pa, TMAX, la, 1, &o, &err));
    const int64_t V = tiny.vocab_size;
    float worst = 0.0f;
    for (;;) {
        const float *a = gen_logits(ga, 0), *b = gen_logits(gb, 0), *c = gen_logits(gc, 0);
        ck_assert((a == NULL) == (b == NULL) && (a == NULL) == (c == NULL));
        if (!a) break;
        for (int64_t v = 0; v < V; v++)
            worst = fmaxf(worst, fmaxf(fabsf(a[v] - b[v]), fabsf(a[v] - c[v])));
        gen_step(ga);
        gen_step(gb);
        gen_step(gc);
    }
    ck_assert_msg(worst <= 1e-5f, "sequence 0's logits depend on its batchmates by %g",
                  (double)worst);
    gen_result_t ra = gen_result(ga), rb = gen_result(gb), rc = gen_result(gc);
    ck_assert_int_eq(ra.count[0], 10);
    ck_assert_int_eq(rb.count[0], ra.count[0]);
    ck_assert_int_eq(rc.count[0], ra.count[0]);
    ck_assert(!memcmp(ra.tokens, rb.tokens, sizeof(int32_t) * 10));
    ck_assert(!memcmp(ra.tokens, rc.tokens, sizeof(int32_t) * 10));
    /* seq_offset: sequence 3 of batch a, generated alone with offset 3, samples the same */
    o.seq_offset = 3;
    ck_assert(!gen_run(gc, pa + 3 * TMAX, TMAX, la + 3, 1, &o, &err));
    rc = gen_result(gc);
    ck_assert_int_eq(rc.count[0], ra.count[3]);
    ck_assert(!memcmp(rc.tokens, ra.tokens + 3 * ra.stride, sizeof(int32_t) * 10));
    gen_destroy(&ga);
    gen_destroy(&gb);
    gen_destroy(&gc);
    gpt_destroy(&m);
}
END_TEST

/* Runs opts over the fixed test batch and copies out the tokens (B, TMAX) and counts. */
static void run_batch(gen_t *g, const gen_opts_t *o, int32_t *tokens, int64_t *count) {
    err_t err = ERR_INIT;
    int32_t prompts[BMAX * TMAX];
    int64_t lens[BMAX];
    random_prompts(prompts, lens, 8, 12, 21);
    ck_assert_msg(!gen_run(g, prompts, TMAX, lens, 8, o, &err), "%s", err.msg);
    gen_result_t r = gen_result(g);
    for (int64_t b = 0; b < 8; b++) {
        count[b] = r.count[b];
        for (int64_t i = 0; i < r.count[b]; i++) tokens[b * TMAX + i] = r.tokens[b * r.stride + i];
    }
}

START_TEST(test_gen_greedy_and_its_limits) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(3, true);
    gen_t *g = gen_new(m, BMAX, TMAX, &err);
    int32_t t0[BMAX * TMAX] = {0}, t1[BMAX * TMAX] = {0};
    int64_t c0[BMAX] = {0}, c1[BMAX] = {0};
    gen_opts_t greedy = GEN_OPTS_DEFAULT;
    greedy.temperature = 0.0f;
    greedy.max_new = 12;
    greedy.seed = 1;
    run_batch(g, &greedy, t0, c0);
    greedy.seed = 2; /* greedy ignores the seed */
    run_batch(g, &greedy, t1, c1);
    ck_assert(!memcmp(t0, t1, sizeof t0) && !memcmp(c0, c1, sizeof c0));
    gen_opts_t o = GEN_OPTS_DEFAULT;
    o.max_new = 12;
    o.top_k = 1;
    o.temperature = 1.5f;
    run_batch(g, &o, t1, c1);
    ck_assert_msg(!memcmp(t0, t1, sizeof t0), "top-k 1 differs from greedy");
    o.top_k = 0;
    o.top_p = 1e-6f;
    run_batch(g, &o, t1, c1);
    ck_assert_msg(!memcmp(t0, t1, sizeof t0), "tiny top-p differs from greedy");
    o.top_p = 1.0f; /* plain sampling does differ from greedy (so the checks above can fail) */
    run_batch(g, &o, t1, c1);
    ck_assert(memcmp(t0, t1, sizeof t0));
    gen_destroy(&g);
    gpt_destroy(&m);
}
END_TEST

/* Steps a sampling run, checking every sampled token against the logits it came from:
 * greedy = argmax, inside the top k, inside the nucleus, and log-prob = log_softmax(l/temp). */
static void check_samples(const gen_opts_t *o, int64_t *off_argmax) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(4, true);
    gen_t *g = gen_new(m, BMAX, TMAX, &err);
    int32_t prompts[BMAX * TMAX];
    int64_t lens[BMAX];
    random_prompts(prompts, lens, BMAX, 8, 31);
    ck_assert(!gen_start(g, prompts, TMAX, lens, BMAX, o, &err));
    const int64_t V = tiny.vocab_size;
    static float saved[BMAX][97];
    bool live[BMAX];
    *off_argmax = 0;
    double worst_lp = 0.0;
    const double tt = o->temperature > 0.0f ? (double)o->temperature : 1.0;
    for (;;) {
        bool any = false;
        for (int64_t b = 0; b < BMAX; b++) {
            const float *lg = gen_logits(g, b);
            live[b] = lg != NULL;
            if (lg) memcpy(saved[b], lg, sizeof saved[b]);
            any |= live[b];
        }
        if (!any) break;
        gen_step(g);
        gen_result_t r = gen_result(g);
        for (int64_t b = 0; b < BMAX; b++) {
            if (!live[b]) continue;
            const int64_t i = r.count[b] - 1, tok = r.tokens[b * r.stride + i];
            const float *lg = saved[b];
            const double max = (double)lg[argmax(lg, V)];
            int64_t above = 0; /* tokens strictly more likely than the sampled one */
            double mass_above = 0.0, z = 0.0;
            for (int64_t v = 0; v < V; v++) z += exp(((double)lg[v] - max) / tt);
            for (int64_t v = 0; v < V; v++)
                if (lg[v] > lg[tok]) {
                    above++;
                    mass_above += exp(((double)lg[v] - max) / tt) / z;
                }
            if (o->top_k > 0) ck_assert_int_lt(above, o->top_k);
            if (o->top_p < 1.0f) ck_assert_double_lt(mass_above, (double)o->top_p + 1e-6);
            *off_argmax += above > 0;
            double lp = ref_logprob(lg, V, (double)o->temperature, tok);
            worst_lp = fmax(worst_lp, fabs(lp - (double)r.logprobs[b * r.stride + i]));
        }
    }
    ck_assert_msg(worst_lp <= 1e-5, "log-probs differ from log_softmax(logits/T) by %g", worst_lp);
    gen_destroy(&g);
    gpt_destroy(&m);
}

START_TEST(test_gen_sampling_rules_and_logprobs) {
    gen_opts_t o = GEN_OPTS_DEFAULT;
    o.max_new = 20;
    int64_t off;
    o.temperature = 2.0f; /* flat: samples reach far when allowed */
    o.top_k = 5;
    check_samples(&o, &off);
    ck_assert_int_gt(off, 20); /* top-k 5 at temperature 2 does not collapse to greedy */
    o.top_k = 0;
    o.top_p = 0.6f;
    check_samples(&o, &off);
    ck_assert_int_gt(off, 10);
    o.temperature = 0.7f;
    o.top_k = 10;
    o.top_p = 0.9f;
    check_samples(&o, &off);
    o.top_k = 0;
    o.top_p = 1.0f;
    o.temperature = 1.0f;
    check_samples(&o, &off);
    o.temperature = 0.0f; /* greedy: always the argmax; log-prob at temperature 1 */
    check_samples(&o, &off);
    ck_assert_int_eq(off, 0);
}
END_TEST

START_TEST(test_gen_stops_at_eos_and_limits) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(5, true);
    gen_t *g = gen_new(m, BMAX, TMAX, &err);
    int32_t prompts[BMAX * TMAX];
    int64_t lens[BMAX];
    random_prompts(prompts, lens, 1, 5, 41);
    gen_opts_t o = GEN_OPTS_DEFAULT;
    o.temperature = 0.0f;
    o.max_new = 15;
    ck_assert(!gen_run(g, prompts, TMAX, lens, 1, &o, &err));
    gen_result_t r = gen_result(g);
    ck_assert_int_eq(r.count[0], 15);
    ck_assert(!r.ended[0]);
    int32_t first[15];
    memcpy(first, r.tokens, sizeof first);
    /* the first token not seen before position 2 becomes end-of-text */
    int64_t stop = -1;
    for (int64_t i = 2; i < 15 && stop < 0; i++) {
        stop = i;
        for (int64_t j = 0; j < i; j++)
            if (first[j] == first[i]) stop = -1;
    }
    ck_assert_msg(stop > 0, "greedy run repeats itself: pick another seed");
    o.eos_id = first[stop];
    ck_assert(!gen_run(g, prompts, TMAX, lens, 1, &o, &err));
    r = gen_result(g);
    ck_assert_int_eq(r.count[0], stop + 1);
    ck_assert(r.ended[0]);
    ck_assert_int_eq(r.tokens[stop], o.eos_id);
    ck_assert(gen_logits(g, 0) == NULL);
    /* max_new 0: nothing; a prompt near T_max stops at T_max total tokens, not ended */
    o.eos_id = -1;
    o.max_new = 0;
    ck_assert(!gen_run(g, prompts, TMAX, lens, 1, &o, &err));
    ck_assert_int_eq(gen_result(g).count[0], 0);
    o.max_new = 50;
    for (int64_t i = 0; i < 2 * TMAX; i++) prompts[i] = (int32_t)(i % 97);
    int64_t long_len[2] = {TMAX - 3, 2};
    ck_assert(!gen_run(g, prompts, TMAX, long_len, 2, &o, &err));
    r = gen_result(g);
    ck_assert_int_eq(r.count[0], 3);
    ck_assert_int_eq(r.count[1], TMAX - 2);
    ck_assert(!r.ended[0] && !r.ended[1]);
    gen_destroy(&g);
    gpt_destroy(&m);
}
END_TEST

START_TEST(test_gen_allocates_nothing) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(6, true);
    gen_t *g = gen_new(m, BMAX, TMAX, &err);
    int32_t prompts[BMAX * TMAX];
    int64_t lens[BMAX];
    random_prompts(prompts, lens, BMAX, 28, 51);
    gen_opts_t o = GEN_OPTS_DEFAULT;
    o.max_new = 6;
    o.top_k = 20;
    o.top_p = 0.9f;
    ck_assert(!gen_run(g, prompts, TMAX, lens, BMAX, &o, &err)); /* warm up threads */
    alloc_count_start();
    int rc = gen_run(g, prompts, TMAX, lens, BMAX, &o, &err);
    rc |= gen_run(g, prompts, TMAX, lens, 2, &o, &err);
    int64_t calls = alloc_count_stop();
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(calls, 0);
    gen_destroy(&g);
    gpt_destroy(&m);
}
END_TEST

/* The parallel paths (sampling over sequences, attention over rows × heads, each thread with
 * its own scratch) give what one thread gives. Big enough that gen's loops do go parallel. */
START_TEST(test_gen_threads_agree) {
    const gpt_config_t mid = {.vocab_size = 4096,
                              .n_positions = 64,
                              .n_layer = 2,
                              .n_head = 4,
                              .n_embd = 64,
                              .ln_eps = 1e-5f};
    enum { B = 12, T = 64, NEW = 12 };
    err_t err = ERR_INIT;
    gpt_model_t *m = gpt_new(&mid, GPT_HEAD_LM, &err);
    ck_assert_msg(m, "%s", err.msg);
    gpt_init_random(m, 8);
    gen_t *g = gen_new(m, B, T, &err);
    ck_assert_msg(g, "%s", err.msg);
    static int32_t prompts[B * T], tokens[2][B * NEW];
    static float logprobs[2][B * NEW];
    int64_t lens[B];
    rng_t r;
    rng_seed(&r, 61);
    for (int64_t i = 0; i < B * T; i++) prompts[i] = (int32_t)rng_below(&r, 4096);
    for (int64_t b = 0; b < B; b++) lens[b] = 20 + (int64_t)rng_below(&r, 30);
    gen_opts_t o = GEN_OPTS_DEFAULT;
    o.max_new = NEW;
    o.top_k = 500;
    o.top_p = 0.9f;
    const int before = ops_get_threads();
    for (int k = 0; k < 2; k++) {
        ops_set_threads(k + 1);
        ck_assert_msg(!gen_run(g, prompts, T, lens, B, &o, &err), "%s", err.msg);
        gen_result_t res = gen_result(g);
        for (int64_t b = 0; b < B; b++) {
            ck_assert_int_eq(res.count[b], NEW);
            memcpy(tokens[k] + b * NEW, res.tokens + b * res.stride, NEW * sizeof(int32_t));
            memcpy(logprobs[k] + b * NEW, res.logprobs + b * res.stride, NEW * sizeof(float));
        }
    }
    ops_set_threads(before);
    ck_assert(!memcmp(tokens[0], tokens[1], sizeof tokens[0]));
    for (int64_t i = 0; i < B * NEW; i++)
        ck_assert_double_eq_tol((double)logprobs[0][i], (double)logprobs[1][i], 1e-5);
    gen_destroy(&g);
    gpt_destroy(&m);
}
END_TEST

START_TEST(test_gen_bad_input_is_an_error) {
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(7, true);
    ck_assert_ptr_null(gen_new(m, 2, TMAX + 1, &err));
    ck_assert(strstr(err.msg, "n_positions"));
    err_clear(&err);
    gen_t *g = gen_new(m, 2, 16, &err);
    ck_assert(g);
    int32_t prompts[2 * TMAX] = {0};
    int64_t lens[2] = {16, 3};
    gen_opts_t o = GEN_OPTS_DEFAULT;
    ck_assert_int_eq(gen_run(g, prompts, TMAX, lens, 2, &o, &err), -1);
    ck_assert_msg(strstr(err.msg, "prompt 0 has 16 tokens"), "%s", err.msg);
    ck_assert_int_eq(gen_result(g).B, 0);
    ck_assert_ptr_null(gen_logits(g, 0));
    err_clear(&err);
    lens[0] = 0;
    ck_assert_int_eq(gen_run(g, prompts, TMAX, lens, 2, &o, &err), -1);
    err_clear(&err);
    lens[0] = 4;
    ck_assert_int_eq(gen_run(g, prompts, TMAX, lens, 3, &o, &err), -1);
    ck_assert(strstr(err.msg, "1 to 2"));
    err_clear(&err);
    prompts[TMAX + 2] = 97;
    ck_assert_int_eq(gen_run(g, prompts, TMAX, lens, 2, &o, &err), -1);
    ck_assert_msg(strstr(err.msg, "prompt 1: token 2 is 97"), "%s", err.msg);
    err_clear(&err);
    prompts[TMAX + 2] = 5;
    o.top_p = 0.0f;
    ck_assert_int_eq(gen_run(g, prompts, TMAX, lens, 2, &o, &err), -1);
    ck_assert(strstr(err.msg, "top_p"));
    err_clear(&err);
    o = GEN_OPTS_DEFAULT;
    o.temperature = -1.0f;
    ck_assert_int_eq(gen_run(g, prompts, TMAX, lens, 2, &o, &err), -1);
    err_clear(&err);
    o.temperature = 1.0f;
    ck_assert_int_eq(gen_run(g, prompts, TMAX, lens, 2, &o, &err), 0);
    gen_destroy(&g);
    gen_destroy(&g); /* accepts NULL */
    gpt_model_t *rm = gpt_new(&tiny, GPT_HEAD_SCORE, &err);
    ck_assert_ptr_null(gen_new(rm, 2, 16, &err));
    ck_assert_msg(strstr(err.msg, "score head"), "%s", err.msg);
    gpt_destroy(&rm);
    gpt_destroy(&m);
}
END_TEST

Suite *test_gen_suite(void);
Suite *test_gen_suite(void) {
    Suite *s = suite_create("gen");
    TCase *tc = tcase_create("gen");
    tcase_add_test(tc, test_gen_matches_full_forward);
    tcase_add_test(tc, test_gen_batch_independent);
    tcase_add_test(tc, test_gen_greedy_and_its_limits);
    tcase_add_test(tc, test_gen_sampling_rules_and_logprobs);
    tcase_add_test(tc, test_gen_stops_at_eos_and_limits);
    tcase_add_test(tc, test_gen_allocates_nothing);
    tcase_add_test(tc, test_gen_threads_agree);
    tcase_add_test(tc, test_gen_bad_input_is_an_error);
    suite_add_tcase(s, tc);
    return s;
}
