/* tests/bench/bench_model.c: the model core's speed on this machine, in one run (DESIGN §7).
 *  1. OpenBLAS cblas_sgemm GFLOP/s at GPT-2 124M shapes (N = B·T = 1024 rows): the peak every
 *     other figure is a fraction of. The peak is the best of these products, measured here.
 *  2. A full training step (forward, backward, global-norm clip, AdamW) of a GPT-2 124M-shaped
 *     model (random weights) at B 8 × T 128 and of the demo-sized model at B 16 × T 128:
 *     tokens/s and the fraction of the sgemm peak reached. FLOPs counted per step:
 *       matmuls: 6 · N_matmul · tokens, N_matmul = L·12·C² (qkv, attn proj, fc, fc proj) + V·C
 *                (LM head), i.e. 2 FLOPs per multiply-add forward, twice that backward;
 *       attention: 12 · L · B · T² · C (QKᵀ and att·V, full T×T products as computed, forward 4,
 *                backward 8).
 *     Embeddings, LayerNorm, GELU, softmax and AdamW are not counted (they are the overhead).
 *  3. KV-cached generation of the 124M model at batch 1, 8, 16, 32, 64 (prompt 32, 64 new
 *     tokens), and the share of its time inside OpenBLAS (cblas_sgemm and cblas_sgemv, timed
 *     by wrappers this binary alone is linked with: -Wl,--wrap, see the Makefile; only calls
 *     made outside OpenMP regions are timed, which is every product of generation).
 * Prints a table and merges the figures into bench.json. --quick shrinks the repeats. */
#include "bench_util.h"
#include "cli.h"
#include "gen.h"
#include "gpt.h"
#include "ops.h"
#include "optim.h"
#include "rng.h"
#include <cblas.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double sgemm_gflops(int64_t M, int64_t K, int64_t Nc, bool b_transposed, int reps) {
    float *a = malloc((size_t)(M * K) * sizeof(float));
    float *b = malloc((size_t)(K * Nc) * sizeof(float));
    float *c = malloc((size_t)(M * Nc) * sizeof(float));
    rng_t r;
    rng_seed(&r, 1);
    for (int64_t i = 0; i < M * K; i++) a[i] = rng_float(&r) - 0.5f;
    for (int64_t i = 0; i < K * Nc; i++) b[i] = rng_float(&r) - 0.5f;
    double best = 0.0;
    for (int rep = 0; rep < reps + 1; rep++) { /* first run warms caches and threads */
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, b_transposed ? CblasTrans : CblasNoTrans, (int)M,
                    (int)Nc, (int)K, 1.0f, a, (int)K, b, b_transposed ? (int)K : (int)Nc, 0.0f, c,
                    (int)Nc);
        double dt = bench_now() - t0;
        double g = 2.0 * (double)M * (double)K * (double)Nc / dt / 1e9;
        if (rep > 0 && g > best) best = g;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

typedef struct {
    double tokens_per_s, gflops, ms_per_step;
} train_result_t;

static double step_flops(const gpt_config_t *c, int64_t B, int64_t T) {
    const double L = (double)c->n_layer, C = (double)c->n_embd, V = (double)c->vocab_size;
    const double nmat = L * 12.0 * C * C + V * C, tokens = (double)(B * T);
    return 6.0 * nmat * tokens + 12.0 * L * (double)B * (double)T * (double)T * C;
}

static train_result_t bench_train(const gpt_config_t *cfg, int64_t B, int64_t T, int steps) {
    err_t err = ERR_INIT;
    train_result_t res = {0};
    gpt_model_t *m = gpt_new(cfg, GPT_HEAD_LM, &err);
    optim_config_t oc = optim_config_default();
    optim_t *opt = NULL;
    int32_t *tok = malloc((size_t)(B * T) * sizeof(int32_t)),
            *tgt = malloc((size_t)(B * T) * sizeof(int32_t));
    if (!m || gpt_alloc(m, B, T, true, &err) || !(opt = optim_new(m, &oc, &err)) || !tok || !tgt) {
        fprintf(stderr, "bench: error: %s\n", err.msg);
        goto done;
    }
    gpt_init_random(m, 1);
    rng_t r;
    rng_seed(&r, 2);
    for (int64_t i = 0; i < B * T; i++) tok[i] = (int32_t)rng_below(&r, (uint64_t)cfg->vocab_size);
    for (int64_t i = 0; i < B * T; i++) tgt[i] = (i % T == T - 1) ? -1 : tok[i + 1];
    float *dlogp = malloc((size_t)(B * T) * sizeof(float));
    double best = 1e30;
    for (int s = 0; s < steps + 1; s++) { /* step 0 warms up (page faults, thread start) */
        double t0 = bench_now();
        gpt_zero_grad(m);
        gpt_lm_loss(m, tok, tgt, B, T);
        int64_t kept = B * (T - 1);
        for (int64_t i = 0; i < B * T; i++) dlogp[i] = tgt[i] < 0 ? 0.0f : -1.0f / (float)kept;
        gpt_backward(m, dlogp);
        optim_clip_grad_norm(opt, m->grads_mem, 1.0);
        optim_step(opt, m->params_mem, m->grads_mem, 1e-4);
        double dt = bench_now() - t0;
        if (s > 0 && dt < best) best = dt;
    }
    free(dlogp);
    res.ms_per_step = best * 1e3;
    res.tokens_per_s = (double)(B * T) / best;
    res.gflops = step_flops(cfg, B, T) / best / 1e9;
done:
    free(tok);
    free(tgt);
    optim_destroy(&opt);
    gpt_destroy(&m);
    return res;
}

/* ---- time inside BLAS: the linker sends every cblas_sgemm / cblas_sgemv call of this binary
 * (ops.c and gen.c included) through these wrappers. */
static double blas_seconds;

#define SGEMM_PARAMS                                                                               \
    OPENBLAS_CONST enum CBLAS_ORDER o, OPENBLAS_CONST enum CBLAS_TRANSPOSE ta,                     \
        OPENBLAS_CONST enum CBLAS_TRANSPOSE tb, OPENBLAS_CONST blasint M,                          \
        OPENBLAS_CONST blasint N, OPENBLAS_CONST blasint K, OPENBLAS_CONST float alpha,            \
        OPENBLAS_CONST float *A, OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *B,              \
        OPENBLAS_CONST blasint ldb, OPENBLAS_CONST float beta, float *C,                           \
        OPENBLAS_CONST blasint ldc
#define SGEMV_PARAMS                                                                               \
    OPENBLAS_CONST enum CBLAS_ORDER o, OPENBLAS_CONST enum CBLAS_TRANSPOSE t,                      \
        OPENBLAS_CONST blasint M, OPENBLAS_CONST blasint N, OPENBLAS_CONST float alpha,            \
        OPENBLAS_CONST float *A, OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *x,              \
        OPENBLAS_CONST blasint incx, OPENBLAS_CONST float beta, float *y,                          \
        OPENBLAS_CONST blasint incy
/* The call, timed when made outside an OpenMP region (every product of generation is). */
#define TIMED(call)                                                                                \
    do {                                                                                           \
        const bool timed_ = !omp_in_parallel();                                                    \
        const double t0_ = timed_ ? bench_now() : 0.0;                                             \
        call;                                                                                      \
        if (timed_) blas_seconds += bench_now() - t0_;                                             \
    } while (0)

void __real_cblas_sgemm(SGEMM_PARAMS);
void __wrap_cblas_sgemm(SGEMM_PARAMS);
void __real_cblas_sgemv(SGEMV_PARAMS);
void __wrap_cblas_sgemv(SGEMV_PARAMS);

void __wrap_cblas_sgemm(SGEMM_PARAMS) {
    TIMED(__real_cblas_sgemm(o, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}

void __wrap_cblas_sgemv(SGEMV_PARAMS) {
    TIMED(__real_cblas_sgemv(o, t, M, N, alpha, A, lda, x, incx, beta, y, incy));
}

typedef struct {
    double tokens_per_s; /* best of the runs */
    double blas_share;   /* of that run's time inside cblas_sgemm / cblas_sgemv */
} gen_bench_t;

/* New tokens per second of KV-cached sampling (prefill included in the time, as a user sees
 * it): B sequences, prompt P tokens, N new tokens each, no end-of-text. */
static gen_bench_t bench_gen(const gpt_model_t *m, int64_t B, int64_t P, int64_t N, int reps) {
    err_t err = ERR_INIT;
    gen_t *g = gen_new(m, B, P + N + 1, &err);
    int32_t *prompts = malloc((size_t)(B * P) * sizeof(int32_t));
    int64_t *lens = malloc((size_t)B * sizeof(int64_t));
    gen_bench_t best = {0.0, 0.0};
    if (!g || !prompts || !lens) {
        fprintf(stderr, "bench: error: %s\n", err.msg);
        goto done;
    }
    rng_t r;
    rng_seed(&r, 3);
    for (int64_t i = 0; i < B * P; i++)
        prompts[i] = (int32_t)rng_below(&r, (uint64_t)m->cfg.vocab_size);
    for (int64_t b = 0; b < B; b++) lens[b] = P;
    gen_opts_t o = GEN_OPTS_DEFAULT;
    o.max_new = N;
    o.top_k = 50;
    for (int rep = 0; rep < reps + 1; rep++) {
        o.seed = (uint64_t)rep;
        blas_seconds = 0.0;
        double t0 = bench_now();
        if (gen_run(g, prompts, P, lens, B, &o, &err)) {
            fprintf(stderr, "bench: error: %s\n", err.msg);
            goto done;
        }
        double dt = bench_now() - t0;
        gen_result_t res = gen_result(g);
        int64_t made = 0;
        for (int64_t b = 0; b < B; b++) made += res.count[b];
        if (rep > 0 && (double)made / dt > best.tokens_per_s)
            best = (gen_bench_t){(double)made / dt, blas_seconds / dt};
    }
done:
    free(prompts);
    free(lens);
    gen_destroy(&g);
    return best;
}

int main(int argc, char **argv) {
    cli_runtime_init(argv);
    const bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    const int reps = quick ? 1 : 3;
    ops_set_threads(0);
    const int threads = ops_get_threads();
    /* OpenBLAS picks its kernels from the CPU unless OPENBLAS_CORETYPE says otherwise; say
     * which ran, since it moves every figure here (Haswell kernels are AVX2 only). */
    const char *forced = getenv("OPENBLAS_CORETYPE");
    printf("bench_model: %s; kernels %s%s%s; %d threads\n", openblas_get_config(),
           openblas_get_corename(), forced ? ", forced by OPENBLAS_CORETYPE=" : " (detected)",
           forced ? forced : "", threads);

    /* 1. sgemm at GPT-2 124M shapes, N = 8·128 rows. */
    const struct {
        const char *what;
        int64_t K, OC;
        bool bt;
    } shapes[] = {{"qkv      (1024x768)·(768x2304)", 768, 2304, false},
                  {"attnproj (1024x768)·(768x768)", 768, 768, false},
                  {"fc       (1024x768)·(768x3072)", 768, 3072, false},
                  {"fcproj   (1024x3072)·(3072x768)", 3072, 768, false},
                  {"lmhead   (1024x768)·(50257x768)ᵀ", 768, 50257, true}};
    double peak = 0.0;
    printf("\n%-36s %10s\n", "sgemm (row-major, float32)", "GFLOP/s");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        double g = sgemm_gflops(1024, shapes[i].K, shapes[i].OC, shapes[i].bt, reps + 2);
        printf("%-36s %10.1f\n", shapes[i].what, g);
        if (g > peak) peak = g;
    }
    printf("%-36s %10.1f\n", "peak (best of the above)", peak);

    /* 2. Training steps. */
    const gpt_config_t c124 = {.vocab_size = 50257,
                               .n_positions = 1024,
                               .n_layer = 12,
                               .n_head = 12,
                               .n_embd = 768,
                               .ln_eps = 1e-5f};
    const gpt_config_t cdemo = {.vocab_size = 4096,
                                .n_positions = 128,
                                .n_layer = 4,
                                .n_head = 4,
                                .n_embd = 256,
                                .ln_eps = 1e-5f};
    train_result_t t124 = bench_train(&c124, 8, 128, quick ? 2 : 4);
    train_result_t tdemo = bench_train(&cdemo, 16, 128, quick ? 3 : 10);
    printf("\n%-36s %10s %10s %10s %8s\n", "training step (fwd+bwd+AdamW)", "ms/step", "tokens/s",
           "GFLOP/s", "of peak");
    printf("%-36s %10.1f %10.0f %10.1f %7.0f%%\n", "GPT-2 124M, B 8 x T 128", t124.ms_per_step,
           t124.tokens_per_s, t124.gflops, 100.0 * t124.gflops / peak);
    printf("%-36s %10.1f %10.0f %10.1f %7.0f%%\n", "demo d256 L4 V4096, B 16 x T 128",
           tdemo.ms_per_step, tdemo.tokens_per_s, tdemo.gflops, 100.0 * tdemo.gflops / peak);

    /* 3. Generation with the 124M model. */
    err_t err = ERR_INIT;
    gpt_model_t *m = gpt_new(&c124, GPT_HEAD_LM, &err);
    if (!m) {
        fprintf(stderr, "bench: error: %s\n", err.msg);
        return 1;
    }
    gpt_init_random(m, 1);
    enum { NGB = 5 };
    const int64_t gb[NGB] = {1, 8, 16, 32, 64};
    double gtok[NGB];
    gen_bench_t gr[NGB];
    printf("\n%-36s %10s %10s\n", "KV-cached generation, 124M", "new tok/s", "in BLAS");
    for (int i = 0; i < NGB; i++) {
        gr[i] = bench_gen(m, gb[i], 32, 64, quick ? 1 : 2);
        gtok[i] = gr[i].tokens_per_s;
        printf("batch %-30lld %10.1f %9.0f%%\n", (long long)gb[i], gtok[i],
               100.0 * gr[i].blas_share);
    }
    /* Batch 1 reads every weight once per token: the bandwidth it implies. */
    const double weight_gb = (double)m->num_params * 4.0 / 1e9;
    printf("(batch 1 streams %.2f GB of weights per token: %.1f GB/s)\n", weight_gb,
           gtok[0] * weight_gb);
    gpt_destroy(&m);

    json_t *j = json_object();
    json_object_set_new(j, "threads", json_integer(threads));
    json_object_set_new(j, "blas_kernels", json_string(openblas_get_corename()));
    json_object_set_new(j, "sgemm_gflops", json_real(peak));
    json_object_set_new(j, "train_124m_tokens_per_s", json_real(t124.tokens_per_s));
    json_object_set_new(j, "train_124m_peak_fraction", json_real(t124.gflops / peak));
    json_object_set_new(j, "train_demo_tokens_per_s", json_real(tdemo.tokens_per_s));
    json_object_set_new(j, "train_demo_peak_fraction", json_real(tdemo.gflops / peak));
    for (int i = 0; i < NGB; i++) {
        char key[64];
        snprintf(key, sizeof key, "gen_124m_b%lld_tokens_per_s", (long long)gb[i]);
        json_object_set_new(j, key, json_real(gtok[i]));
        snprintf(key, sizeof key, "gen_124m_b%lld_blas_share", (long long)gb[i]);
        json_object_set_new(j, key, json_real(gr[i].blas_share));
    }
    json_object_set_new(j, "gen_124m_b1_weight_gb_per_s", json_real(gtok[0] * weight_gb));
    if (bench_json_merge("bench.json", j)) return 1;
    printf("\nwrote bench.json\n");
    return 0;
}
