/* tests/bench/bench_ppo.c: one PPO-ptx iteration (common/ppo.h) on this machine, as a fraction
 * of the sgemm peak measured in the same run (DESIGN §7: PyTorch reached 35% (demo) and 40%
 * (124M) of it on this iteration).
 * The iteration: 16 prompts of 32 tokens, 48 new tokens each (no end-of-text: every response
 * has the full length), a separate value model, 4 epochs of minibatch 16, a pretraining batch
 * of 16 × 79 tokens per policy update, AdamW (clip 1.0) through the update callback. Models:
 * the demo size (d 256, 4 layers, 4 heads, vocab 4096, context 128) and GPT-2 124M's shape,
 * random weights (speed does not depend on them).
 * FLOPs, counted as bench_model counts a training step (matmuls 2 per multiply-add, N_mat =
 * L·12·C² + the head (V·C for an LM, C for the value model); attention as computed):
 *   forward over n rows of T tokens:  2·N_mat·n·T + 4·L·n·T²·C
 *   forward + backward:               6·N_mat·n·T + 12·L·n·T²·C
 *   generation: 2·N_mat per token through the model (prompt and new) + 4·L·(t+1)·C for the
 *               attention of a token at position t over the cache.
 * Embeddings, LayerNorm, GELU, softmax, sampling and AdamW are not counted.
 * Usage: bench_ppo [--threads N] [--quick] [--only demo|124m]. Writes ppo_demo_iter_s,
 * ppo_124m_iter_s, ppo_demo_peak_fraction, ppo_124m_peak_fraction (and the time split) into
 * bench.json. */
#include "bench_util.h"
#include "cli.h"
#include "gpt.h"
#include "ops.h"
#include "optim.h"
#include "ppo.h"
#include "rng.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NPROMPT = 16, PLEN = 32, NEW = 48, EPOCHS = 4, MB = 16, PTX_ROWS = 16, PTX_T = 79 };

/* Best GFLOP/s of (M×K)·(K×Nc) over reps (plus one warm-up). */
static double sgemm_gflops(int64_t M, int64_t K, int64_t Nc, bool b_transposed, int reps) {
    float *a = malloc((size_t)(M * K) * sizeof(float));
    float *b = malloc((size_t)(K * Nc) * sizeof(float));
    float *c = malloc((size_t)(M * Nc) * sizeof(float));
    rng_t r;
    rng_seed(&r, 1);
    for (int64_t i = 0; i < M * K; i++) a[i] = rng_float(&r) - 0.5f;
    for (int64_t i = 0; i < K * Nc; i++) b[i] = rng_float(&r) - 0.5f;
    double best = 0.0;
    for (int rep = 0; rep < reps + 1; rep++) {
        const double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, b_transposed ? CblasTrans : CblasNoTrans,
                    (int)M, (int)Nc, (int)K, 1.0f, a, (int)K, b, b_transposed ? (int)K : (int)Nc,
                    0.0f, c, (int)Nc);
        const double g = 2.0 * (double)M * (double)K * (double)Nc / (bench_now() - t0) / 1e9;
        if (rep > 0 && g > best) best = g;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

/* The peak as bench_model measures it: the best of GPT-2 124M's products at 1024 rows. */
static double sgemm_peak(int reps) {
    const struct {
        int64_t K, OC;
        bool bt;
    } shapes[] = {{768, 2304, false}, {768, 768, false}, {768, 3072, false},
                  {3072, 768, false}, {768, 50257, true}};
    double peak = 0.0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const double g = sgemm_gflops(1024, shapes[i].K, shapes[i].OC, shapes[i].bt, reps);
        if (g > peak) peak = g;
    }
    return peak;
}

/* ---- the caller's side --------------------------------------------------------------------- */

typedef struct {
    rng_t rng;
    int64_t V;
} bench_ctx_t;

static int score_recv(void *ctx, float *scores, err_t *err) {
    bench_ctx_t *b = ctx;
    (void)err;
    for (int i = 0; i < NPROMPT; i++) scores[i] = rng_normal(&b->rng);
    return 0;
}

static int ptx_batch(void *ctx, int32_t *tokens, int32_t *targets, int64_t rows, int64_t T,
                     err_t *err) {
    bench_ctx_t *b = ctx;
    (void)err;
    for (int64_t i = 0; i < rows * T; i++) tokens[i] = (int32_t)rng_below(&b->rng, (uint64_t)b->V);
    for (int64_t i = 0; i < rows * T; i++) targets[i] = i % T == T - 1 ? -1 : tokens[i + 1];
    return 0;
}

static int update(void *ctx, ppo_role_t role, gpt_model_t *m, optim_t *opt, err_t *err) {
    (void)ctx;
    const double norm = optim_clip_grad_norm(opt, m->grads_mem, 1.0);
    if (!isfinite(norm)) return err_setf(err, "%s gradient norm %g", role ? "value" : "policy", norm);
    optim_step(opt, m->params_mem, m->grads_mem, 1e-5);
    return 0;
}

/* ---- FLOPs ---------------------------------------------------------------------------------- */

static double nmat(const gpt_config_t *c, bool lm) {
    const double L = (double)c->n_layer, C = (double)c->n_embd;
    return L * 12.0 * C * C + (lm ? (double)c->vocab_size * C : C);
}

static double fwd_flops(const gpt_config_t *c, bool lm, double n, double T) {
    return 2.0 * nmat(c, lm) * n * T + 4.0 * (double)c->n_layer * n * T * T * (double)c->n_embd;
}

/* One iteration as configured above (every response has NEW tokens; forwards run over
 * T = PLEN + NEW − 1 positions). */
static double iter_flops(const gpt_config_t *c) {
    const double L = (double)c->n_layer, C = (double)c->n_embd, TF = PLEN + NEW - 1;
    double gen = 0.0; /* every token through the model, attending over positions 0..t */
    for (int t = 0; t < PLEN + NEW - 1; t++) gen += 2.0 * nmat(c, true) + 4.0 * L * (t + 1) * C;
    gen *= NPROMPT;
    const double fwd = fwd_flops(c, true, NPROMPT, TF) + fwd_flops(c, false, NPROMPT, TF);
    const double updates = EPOCHS * (double)(NPROMPT / MB);
    const double upd = updates * 3.0 * (fwd_flops(c, true, MB, TF) + fwd_flops(c, false, MB, TF));
    const double ptx = updates * 3.0 * fwd_flops(c, true, PTX_ROWS, PTX_T);
    return gen + fwd + upd + ptx;
}

/* ---- one configuration ---------------------------------------------------------------------- */

typedef struct {
    double iter_s, gflops;
    ppo_stats_t st;
    bool ok;
} result_t;

static result_t bench_iter(const gpt_config_t *cfg, int iters) {
    err_t err = ERR_INIT;
    result_t res = {0};
    gpt_model_t *pol = gpt_new(cfg, GPT_HEAD_LM, &err), *ref = gpt_new(cfg, GPT_HEAD_LM, &err),
                *val = gpt_new(cfg, GPT_HEAD_SCORE, &err);
    optim_t *popt = NULL, *vopt = NULL;
    ppo_t *ppo = NULL;
    const optim_config_t oc = optim_config_default();
    if (!pol || !ref || !val) goto done;
    gpt_init_random(pol, 1);
    gpt_init_random(val, 2);
    if (gpt_copy_params(ref, pol, &err) || gpt_copy_params(val, pol, &err)) goto done;
    if (!(popt = optim_new(pol, &oc, &err)) || !(vopt = optim_new(val, &oc, &err))) goto done;
    ppo_config_t pc = ppo_config_default();
    pc.batch = NPROMPT;
    pc.prompt_max = PLEN;
    pc.max_new = NEW;
    pc.eos_id = -1;
    pc.epochs = EPOCHS;
    pc.minibatch = MB;
    pc.ptx_rows = PTX_ROWS;
    pc.ptx_T = PTX_T;
    pc.seed = 3;
    if (!(ppo = ppo_new(pol, ref, val, popt, vopt, &pc, &err))) goto done;
    bench_ctx_t ctx = {.V = cfg->vocab_size};
    rng_seed(&ctx.rng, 4);
    int32_t prompts[NPROMPT * PLEN];
    int64_t lens[NPROMPT];
    for (int i = 0; i < NPROMPT * PLEN; i++)
        prompts[i] = (int32_t)rng_below(&ctx.rng, (uint64_t)cfg->vocab_size);
    for (int b = 0; b < NPROMPT; b++) lens[b] = PLEN;
    const ppo_callbacks_t cb = {
        .ctx = &ctx, .score_recv = score_recv, .ptx_batch = ptx_batch, .update = update};
    double best = 1e30;
    for (int it = 0; it < iters + 1; it++) { /* iteration 0 warms up (page faults, threads) */
        ppo_stats_t st;
        if (ppo_iterate(ppo, prompts, PLEN, lens, NPROMPT, &cb, &st, &err)) goto done;
        if (it > 0 && st.t_total < best) {
            best = st.t_total;
            res.st = st;
        }
    }
    res.iter_s = best;
    res.gflops = iter_flops(cfg) / best / 1e9;
    res.ok = true;
done:
    if (!res.ok) fprintf(stderr, "bench_ppo: error: %s\n", err.msg);
    ppo_destroy(&ppo);
    optim_destroy(&popt);
    optim_destroy(&vopt);
    gpt_destroy(&pol);
    gpt_destroy(&ref);
    gpt_destroy(&val);
    return res;
}

static void print_row(const char *what, const result_t *r, double peak) {
    const ppo_stats_t *s = &r->st;
    printf("%-22s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.1f %6.0f%%\n", what, r->iter_s,
           s->t_generate, s->t_forward, s->t_update, s->t_ptx,
           s->t_total - s->t_generate - s->t_forward - s->t_update - s->t_ptx, r->gflops,
           100.0 * r->gflops / peak);
}

static void put(json_t *j, const char *prefix, const char *key, double v) {
    char name[96];
    snprintf(name, sizeof name, "ppo_%s_%s", prefix, key);
    json_object_set_new(j, name, json_real(v));
}

int main(int argc, char **argv) {
    cli_runtime_init(argv);
    int threads = 0;
    bool quick = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_ppo [--threads N] [--quick] [--only demo|124m]\n");
            return 2;
        }
    }
    ops_set_threads(threads);
    printf("bench_ppo: %s; kernels %s; %d threads\n", openblas_get_config(),
           openblas_get_corename(), ops_get_threads());
    const double peak = sgemm_peak(quick ? 2 : 4);
    printf("sgemm peak at GPT-2 124M shapes (best of 5 products): %.1f GFLOP/s\n\n", peak);
    const gpt_config_t cdemo = {.vocab_size = 4096, .n_positions = 128, .n_layer = 4,
                                .n_head = 4, .n_embd = 256, .ln_eps = 1e-5f};
    const gpt_config_t c124 = {.vocab_size = 50257, .n_positions = 1024, .n_layer = 12,
                               .n_head = 12, .n_embd = 768, .ln_eps = 1e-5f};
    printf("one PPO-ptx iteration: %d prompts x %d tokens, %d new, %d epochs of minibatch %d, "
           "ptx %d x %d\n",
           NPROMPT, PLEN, NEW, EPOCHS, MB, PTX_ROWS, PTX_T);
    printf("%-22s %8s %8s %8s %8s %8s %8s %8s %7s\n", "model", "iter s", "generate", "ref+val",
           "update", "ptx", "other", "GFLOP/s", "of peak");
    json_t *j = json_object();
    json_object_set_new(j, "ppo_sgemm_gflops", json_real(peak));
    json_object_set_new(j, "ppo_threads", json_integer(ops_get_threads()));
    const struct {
        const char *key, *label;
        const gpt_config_t *cfg;
        int iters;
    } runs[] = {{"demo", "demo d256 L4 V4096", &cdemo, quick ? 1 : 3},
                {"124m", "GPT-2 124M shape", &c124, 1}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        if (only && strcmp(only, runs[i].key)) continue;
        const result_t r = bench_iter(runs[i].cfg, runs[i].iters);
        if (!r.ok) return 1;
        print_row(runs[i].label, &r, peak);
        put(j, runs[i].key, "iter_s", r.iter_s);
        put(j, runs[i].key, "peak_fraction", r.gflops / peak);
        put(j, runs[i].key, "generate_s", r.st.t_generate);
        put(j, runs[i].key, "forward_s", r.st.t_forward);
        put(j, runs[i].key, "update_s", r.st.t_update);
        put(j, runs[i].key, "ptx_s", r.st.t_ptx);
        fflush(stdout);
    }
    if (bench_json_merge("bench.json", j)) return 1;
    printf("\nwrote bench.json\n");
    return 0;
}
