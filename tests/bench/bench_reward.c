/* tests/bench/bench_reward.c: the reward model's training step on this machine (DESIGN §7), as
 * `reward train` runs it: P prompts × K = 4 completions forwarded as P·K right-padded rows of T
 * tokens through a score head, the reward read at each row's last token (rl_last_*), the K-way
 * ranking loss over every pair (rl_rank_*), backward, global-norm clip and AdamW. Reported as
 * tokens/s and the fraction of the sgemm peak measured in the same run (the best of GPT-2
 * 124M-shaped products at N = 1024 rows). FLOPs per step as bench_model counts them, without
 * the LM head (a score head is C·1 per token):
 *     6 · L·12·C² · tokens  +  12 · L · rows · T² · C   (attention, full T×T products).
 * Shapes: the demo model (d 256, 4 layers, vocab 2048) at 8 prompts × 4 × T 96, and GPT-2 124M
 * at 2 prompts × 4 × T 128. Prints a table and merges reward_* keys into bench.json. --quick
 * shrinks the repeats. */
#include "bench_util.h"
#include "cli.h"
#include "gpt.h"
#include "ops.h"
#include "optim.h"
#include "rl.h"
#include "rng.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K 4 /* completions per prompt, the demo's */

static double sgemm_gflops(int64_t M, int64_t Kd, int64_t N, int reps) {
    float *a = malloc((size_t)(M * Kd) * sizeof(float));
    float *b = malloc((size_t)(Kd * N) * sizeof(float));
    float *c = malloc((size_t)(M * N) * sizeof(float));
    rng_t r;
    rng_seed(&r, 1);
    for (int64_t i = 0; i < M * Kd; i++) a[i] = rng_float(&r) - 0.5f;
    for (int64_t i = 0; i < Kd * N; i++) b[i] = rng_float(&r) - 0.5f;
    double best = 0.0;
    for (int rep = 0; rep < reps + 1; rep++) { /* the first warms caches and threads */
        const double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)Kd, 1.0f, a,
                    (int)Kd, b, (int)N, 0.0f, c, (int)N);
        const double g = 2.0 * (double)M * (double)Kd * (double)N / (bench_now() - t0) / 1e9;
        if (rep > 0 && g > best) best = g;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

typedef struct {
    double tokens_per_s, gflops, ms_per_step;
} result_t;

static double step_flops(const gpt_config_t *c, int64_t rows, int64_t T) {
    const double L = (double)c->n_layer, C = (double)c->n_embd;
    return 6.0 * L * 12.0 * C * C * (double)(rows * T) +
           12.0 * L * (double)rows * (double)T * (double)T * C;
}

/* Best step time of P prompts × K rows of T tokens (lengths T/2 .. T: right padding as in a
 * real batch; the rows still cost T each). */
static result_t bench_step(const gpt_config_t *cfg, int64_t P, int64_t T, int steps) {
    err_t err = ERR_INIT;
    result_t res = {0};
    const int64_t R = P * K;
    gpt_model_t *m = gpt_new(cfg, GPT_HEAD_SCORE, &err);
    optim_config_t oc = optim_config_default();
    optim_t *opt = NULL;
    int32_t *tok = malloc((size_t)(R * T) * sizeof *tok),
            *ranks = malloc((size_t)R * sizeof *ranks);
    int64_t *len = malloc((size_t)R * sizeof *len), *counts = malloc((size_t)P * sizeof *counts);
    float *r = malloc((size_t)R * sizeof *r), *dr = malloc((size_t)R * sizeof *dr);
    float *dv = malloc((size_t)(R * T) * sizeof *dv);
    if (!m || gpt_alloc(m, R, T, true, &err) || !(opt = optim_new(m, &oc, &err)) || !tok ||
        !ranks || !len || !counts || !r || !dr || !dv) {
        fprintf(stderr, "bench_reward: error: %s\n", err.msg);
        goto done;
    }
    gpt_init_random(m, 1);
    rng_t g;
    rng_seed(&g, 2);
    for (int64_t i = 0; i < R * T; i++) tok[i] = (int32_t)rng_below(&g, (uint64_t)cfg->vocab_size);
    for (int64_t i = 0; i < R; i++) {
        len[i] = T / 2 + (int64_t)rng_below(&g, (uint64_t)(T / 2)) + 1;
        ranks[i] = (int32_t)(i % K) + 1;
    }
    for (int64_t p = 0; p < P; p++) counts[p] = K;
    double best = 1e30;
    for (int s = 0; s < steps + 1; s++) { /* step 0 warms up (page faults, thread start) */
        const double t0 = bench_now();
        gpt_forward(m, tok, R, T);
        rl_last_forward(r, m->values, len, R, T);
        rl_rank_forward(NULL, r, ranks, counts, P);
        rl_rank_backward(dr, r, ranks, counts, P);
        rl_last_backward(dv, dr, len, R, T);
        gpt_zero_grad(m);
        gpt_backward(m, dv);
        optim_clip_grad_norm(opt, m->grads_mem, 1.0);
        optim_step(opt, m->params_mem, m->grads_mem, 1e-4);
        const double dt = bench_now() - t0;
        if (s > 0 && dt < best) best = dt;
    }
    res.ms_per_step = best * 1e3;
    res.tokens_per_s = (double)(R * T) / best;
    res.gflops = step_flops(cfg, R, T) / best / 1e9;
done:
    free(tok), free(ranks), free(len), free(counts), free(r), free(dr), free(dv);
    optim_destroy(&opt);
    gpt_destroy(&m);
    return res;
}

int main(int argc, char **argv) {
    cli_runtime_init(argv);
    const bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    const int reps = quick ? 1 : 3;
    ops_set_threads(0);
    printf("bench_reward: reward-model training step (K = %d completions per prompt); %d threads\n",
           K, ops_get_threads());
    const int64_t shapes[4][2] = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
    double peak = 0.0;
    for (int i = 0; i < 4; i++) {
        const double gf = sgemm_gflops(1024, shapes[i][0], shapes[i][1], reps + 2);
        if (gf > peak) peak = gf;
    }
    const gpt_config_t cdemo = {.vocab_size = 2048,
                                .n_positions = 128,
                                .n_layer = 4,
                                .n_head = 4,
                                .n_embd = 256,
                                .ln_eps = 1e-5f};
    const gpt_config_t c124 = {.vocab_size = 50257,
                               .n_positions = 1024,
                               .n_layer = 12,
                               .n_head = 12,
                               .n_embd = 768,
                               .ln_eps = 1e-5f};
    const result_t demo = bench_step(&cdemo, 8, 96, quick ? 3 : 10);
    const result_t big = bench_step(&c124, 2, 128, quick ? 2 : 4);
    printf("\n%-40s %10s %10s %10s %8s\n", "reward step (fwd+bwd+AdamW)", "ms/step", "tokens/s",
           "GFLOP/s", "of peak");
    printf("%-40s %10.1f %10.0f %10.1f %7.0f%%\n", "demo d256 L4, 8 prompts x 4 x T 96",
           demo.ms_per_step, demo.tokens_per_s, demo.gflops, 100.0 * demo.gflops / peak);
    printf("%-40s %10.1f %10.0f %10.1f %7.0f%%\n", "GPT-2 124M, 2 prompts x 4 x T 128",
           big.ms_per_step, big.tokens_per_s, big.gflops, 100.0 * big.gflops / peak);
    printf("(sgemm peak measured in this run: %.1f GFLOP/s)\n", peak);
    json_t *j = json_object();
    json_object_set_new(j, "reward_sgemm_gflops", json_real(peak));
    json_object_set_new(j, "reward_train_demo_tokens_per_s", json_real(demo.tokens_per_s));
    json_object_set_new(j, "reward_train_demo_peak_fraction", json_real(demo.gflops / peak));
    json_object_set_new(j, "reward_train_124m_tokens_per_s", json_real(big.tokens_per_s));
    json_object_set_new(j, "reward_train_124m_peak_fraction", json_real(big.gflops / peak));
    if (bench_json_merge("bench.json", j)) return 1;
    printf("\nwrote bench.json\n");
    return 0;
}
