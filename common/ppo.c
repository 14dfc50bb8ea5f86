/* common/ppo.c: the PPO-ptx iteration (see ppo.h for the contract).
 *
 * Layout. Rollout b is kept as its full sequence seq[b] = prompt ++ response (stride
 * prompt_max + max_new, pad_id after it). A forward over the sequence minus its last token
 * gives, at position prompt_len − 1 + i, the log-prob (and the value) of response token i, so
 * every per-token array of the iteration is (B, TF) with TF = prompt_max + max_new − 1 and
 * row b's response tokens at start[b] = prompt_len[b] − 1 .. + response_len[b] − 1 (rl.h's
 * rl_span_t). A minibatch (or a chunk of the rollout forwards) is gathered into contiguous
 * (n, Tm) buffers, Tm the longest of its rows, so a forward never runs over columns that are
 * padding in every row.
 * Rollout: the batch is split into one part per OpenMP thread, and each thread runs its own
 * generator over its part, single-threaded (OpenBLAS's OpenMP build runs a call made inside a
 * parallel region on the calling thread; our loops inside it are nested, so serial). A decode
 * step at batch 16 is a few dozen small products and row loops, and a parallel region per
 * operation costs a barrier each: measured with the demo model on 2 loaded cores, one thread
 * generated 16 × 48 tokens in 0.25-0.38 s and two threads sharing every operation in 1.2-1.8 s.
 * Split by sequences, the threads never wait for each other until the end. Each part samples
 * from the streams of its sequences' batch positions (gen's seq_offset), so the tokens are the
 * ones the whole batch would sample (up to float rounding, see gen.h).
 * Data-parallel (mpirun, common/dist.h): every rank is given the same B prompts and keeps
 * the same engine stream; rank r rolls out, scores, and runs the forwards of its rows [first,
 * first + n) of the batch (dist_share), sampling from the same per-sequence streams as one
 * process would. The scores are gathered (an allreduce of a vector zero outside each rank's
 * rows: adding zeros is exact), so the running score statistics are global; the advantages
 * are whitened with global moments and every figure is global. Minibatches are slices of one
 * global shuffle; a rank computes on the rows of a slice it holds (any number, 0 included),
 * its per-token means scaled by its share of the slice's tokens (and of the pretraining
 * batch's), so the ranks' gradients sum (harness_grad_sum) to the gradient one process
 * computes. One rank: none of this changes a bit.
 * Vocabulary: B rollouts, T positions, V vocabulary; "row" = one rollout in a buffer. */
#include "ppo.h"
#include "dist.h"
#include "gen.h"
#include "ops.h"
#include "rl.h"
#include "rng.h"
#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PPO_MAX_GENS 64 /* generators (threads) of a rollout, at most */

struct ppo {
    ppo_config_t cfg;
    gpt_model_t *policy, *reference, *value; /* borrowed */
    optim_t *policy_opt, *value_opt;         /* borrowed */
    int ngen;                                /* generators: one per thread (see the top) */
    gen_t *gens[PPO_MAX_GENS];               /* generator i samples part i of the batch */
    err_t gen_err[PPO_MAX_GENS];             /* each part's error */
    int64_t TS, TF;                          /* full-sequence stride, forward stride (TS − 1) */
    rng_t rng;
    rl_kl_ctl_t kl_ctl;
    rl_running_t score_moments;
    int64_t iterations;
    void *mem; /* every array below */
    /* the rollouts, (B) or (B, TS) */
    int64_t B;
    int64_t first, nown; /* this rank's rows [first, first + nown) of the B */
    int32_t *seq;
    int64_t *prompt_len, *response_len, *start;
    bool *ended;
    float *scores;      /* (B) the caller's, after the missing-eos substitution */
    float *scores_used; /* (B) what the rewards use: scores, whitened when asked */
    /* per response token, (B, TF) */
    float *old_logp, *ref_logp, *old_values, *rewards, *adv, *returns;
    int64_t *perm;   /* (B) minibatch order */
    int64_t *mb_idx; /* (minibatch) this rank's rows of one minibatch */
    /* one gathered minibatch, (minibatch, TF) or (minibatch) */
    int32_t *mb_tokens, *mb_targets;
    int64_t *mb_start, *mb_len;
    float *mb_logp, *mb_old_logp, *mb_adv, *mb_returns, *mb_old_values, *mb_grad;
    float *mb_entropy; /* (minibatch, TF) the policy's entropy at each response position */
    /* the pretraining batch, (ptx_rows, ptx_T) */
    int32_t *ptx_tokens, *ptx_targets;
    float *ptx_grad;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

ppo_config_t ppo_config_default(void) {
    return (ppo_config_t){.batch = 16,
                          .prompt_max = 64,
                          .max_new = 48,
                          .temperature = 1.0f,
                          .eos_id = -1,
                          .pad_id = 0,
                          .missing_eos_score = -1.0f,
                          .whiten_rewards = false,
                          .kl_coef = 0.02,
                          .kl_target = 0.0,
                          .kl_horizon = 10000.0,
                          .gamma = 1.0f,
                          .lambda = 0.95f,
                          .clip = 0.2f,
                          .value_clip = 0.2f,
                          .epochs = 4,
                          .minibatch = 16,
                          .ptx_coef = 1.0,
                          .ptx_rows = 16,
                          .ptx_T = 64,
                          .seed = 0};
}

/* ---- construction ----------------------------------------------------------------------- */

static int check_config(const ppo_config_t *c, err_t *err) {
    if (c->batch < 1 || c->prompt_max < 1 || c->max_new < 1 || c->minibatch < 1 ||
        c->minibatch > c->batch || c->epochs < 1)
        return err_setf(err,
                        "ppo: batch %lld, prompt_max %lld, max_new %lld, epochs %d must be >= 1 "
                        "and minibatch %lld in [1, batch]",
                        (long long)c->batch, (long long)c->prompt_max, (long long)c->max_new,
                        c->epochs, (long long)c->minibatch);
    if (!(c->temperature > 0.0f) || !isfinite(c->temperature))
        return err_setf(err, "ppo: temperature %g must be > 0", (double)c->temperature);
    if (!(c->kl_coef >= 0.0) || !isfinite(c->kl_coef) || !(c->kl_horizon > 0.0) ||
        !isfinite(c->kl_target))
        return err_setf(err, "ppo: kl coef %g must be >= 0, kl horizon %g > 0", c->kl_coef,
                        c->kl_horizon);
    if (!(c->gamma >= 0.0f && c->gamma <= 1.0f) || !(c->lambda >= 0.0f && c->lambda <= 1.0f))
        return err_setf(err, "ppo: gamma %g and lambda %g must be in [0, 1]", (double)c->gamma,
                        (double)c->lambda);
    if (!(c->clip > 0.0f) || !(c->value_clip > 0.0f))
        return err_setf(err, "ppo: clip %g and value clip %g must be > 0", (double)c->clip,
                        (double)c->value_clip);
    if (!isfinite(c->ptx_coef) || (c->ptx_coef != 0.0 && (c->ptx_rows < 1 || c->ptx_T < 1)))
        return err_setf(err,
                        "ppo: ptx coef %g needs a batch of >= 1 rows of >= 1 tokens (got "
                        "%lld x %lld)",
                        c->ptx_coef, (long long)c->ptx_rows, (long long)c->ptx_T);
    return 0;
}

static int check_models(const gpt_model_t *pol, const gpt_model_t *ref, const gpt_model_t *val,
                        const optim_t *popt, const optim_t *vopt, const ppo_config_t *c,
                        err_t *err) {
    if (pol->head != GPT_HEAD_LM || ref->head != GPT_HEAD_LM || val->head != GPT_HEAD_SCORE)
        return err_setf(err, "ppo: the policy and the reference need an LM head, the value "
                             "model a score head");
    const int64_t V = pol->cfg.vocab_size;
    if (ref->cfg.vocab_size != V || val->cfg.vocab_size != V)
        return err_setf(err, "ppo: vocabularies differ (policy %lld, reference %lld, value %lld)",
                        (long long)V, (long long)ref->cfg.vocab_size,
                        (long long)val->cfg.vocab_size);
    const int64_t TS = c->prompt_max + c->max_new;
    const gpt_model_t *m[3] = {pol, ref, val};
    for (int i = 0; i < 3; i++)
        if (m[i]->cfg.n_positions < TS ||
            (i == 0 && c->ptx_coef != 0.0 && m[i]->cfg.n_positions < c->ptx_T))
            return err_setf(err,
                            "ppo: prompt_max + max_new = %lld (ptx_T %lld) exceeds a model's "
                            "n_positions %lld",
                            (long long)TS, (long long)c->ptx_T, (long long)m[i]->cfg.n_positions);
    if (c->eos_id >= V || c->pad_id < 0 || c->pad_id >= V)
        return err_setf(err, "ppo: eos_id %d and pad_id %d must be below the vocabulary %lld",
                        (int)c->eos_id, (int)c->pad_id, (long long)V);
    if ((popt && popt->n != pol->num_params) || (vopt && vopt->n != val->num_params))
        return err_setf(err, "ppo: an optimizer was made for another model");
    return 0;
}

/* Lays out every array in one block (base NULL: measure); returns the bytes. */
static size_t carve(ppo_t *p, char *base) {
    const size_t B = (size_t)p->cfg.batch, TS = (size_t)p->TS, TF = (size_t)p->TF;
    const size_t MB = (size_t)p->cfg.minibatch;
    const bool ptx = p->cfg.ptx_coef != 0.0;
    const size_t PX = ptx ? (size_t)(p->cfg.ptx_rows * p->cfg.ptx_T) : 0;
    size_t off = 0;
#define CARVE(field, n)                                                                            \
    do {                                                                                           \
        const size_t at_ = off;                                                                    \
        off += ((n) * sizeof *p->field + 63) / 64 * 64;                                            \
        if (base) p->field = (void *)(base + at_);                                                 \
    } while (0)
    CARVE(seq, B * TS);
    CARVE(prompt_len, B);
    CARVE(response_len, B);
    CARVE(start, B);
    CARVE(ended, B);
    CARVE(scores, B);
    CARVE(scores_used, B);
    CARVE(old_logp, B * TF);
    CARVE(ref_logp, B * TF);
    CARVE(old_values, B * TF);
    CARVE(rewards, B * TF);
    CARVE(adv, B * TF);
    CARVE(returns, B * TF);
    CARVE(perm, B);
    CARVE(mb_idx, MB);
    CARVE(mb_tokens, MB * TF);
    CARVE(mb_targets, MB * TF);
    CARVE(mb_start, MB);
    CARVE(mb_len, MB);
    CARVE(mb_logp, MB * TF);
    CARVE(mb_old_logp, MB * TF);
    CARVE(mb_adv, MB * TF);
    CARVE(mb_returns, MB * TF);
    CARVE(mb_old_values, MB * TF);
    CARVE(mb_grad, MB * TF);
    CARVE(mb_entropy, MB * TF);
    CARVE(ptx_tokens, PX);
    CARVE(ptx_targets, PX);
    CARVE(ptx_grad, PX);
#undef CARVE
    return off;
}

/* True when cblas calls may be made from inside our OpenMP regions (ops.c's attention). */
static bool blas_nests_in_openmp(void) {
#ifdef _OPENMP
    return openblas_get_parallel() == 2;
#else
    return false;
#endif
}

/* One generator per thread (one in all when BLAS would oversubscribe inside our threads),
 * each for its part of the batch. */
static int make_generators(ppo_t *p, err_t *err) {
    int64_t k = 1;
#ifdef _OPENMP
    if (blas_nests_in_openmp()) k = omp_get_max_threads();
#endif
    if (k > p->cfg.batch) k = p->cfg.batch;
    if (k > PPO_MAX_GENS) k = PPO_MAX_GENS;
    const int64_t per = (p->cfg.batch + k - 1) / k;
    p->ngen = (int)k;
    for (int i = 0; i < p->ngen; i++)
        if (!(p->gens[i] = gen_new(p->policy, per, p->TS, err))) return -1;
    return 0;
}

/* Sequences [*b0, *b0 + *n) of a B-sequence batch are part i of ngen (sizes differ by ≤ 1). */
static void gen_part(int64_t B, int ngen, int i, int64_t *b0, int64_t *n) {
    const int64_t q = B / ngen, r = B % ngen;
    *b0 = i * q + (i < r ? i : r);
    *n = q + (i < r);
}

ppo_t *ppo_new(gpt_model_t *policy, gpt_model_t *reference, gpt_model_t *value, optim_t *policy_opt,
               optim_t *value_opt, const ppo_config_t *cfg, err_t *err) {
    if (check_config(cfg, err) ||
        check_models(policy, reference, value, policy_opt, value_opt, cfg, err))
        return NULL;
    ppo_t *p = calloc(1, sizeof *p);
    if (!p) {
        err_setf(err, "ppo: out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->policy = policy;
    p->reference = reference;
    p->value = value;
    p->policy_opt = policy_opt;
    p->value_opt = value_opt;
    p->TS = cfg->prompt_max + cfg->max_new;
    p->TF = p->TS - 1;
    rng_seed(&p->rng, cfg->seed);
    p->kl_ctl =
        (rl_kl_ctl_t){.value = cfg->kl_coef, .target = cfg->kl_target, .horizon = cfg->kl_horizon};
    p->score_moments = RL_RUNNING_INIT;
    const bool ptx = cfg->ptx_coef != 0.0;
    const int64_t MB = cfg->minibatch;
    const int64_t pol_rows = ptx ? max64(MB, cfg->ptx_rows) : MB;
    const int64_t pol_T = ptx ? max64(p->TF, cfg->ptx_T) : p->TF;
    if (!(p->mem = aligned_alloc(64, carve(p, NULL)))) {
        err_setf(err, "ppo: out of memory for the rollout buffers");
        goto fail;
    }
    carve(p, p->mem);
    if (gpt_alloc(policy, pol_rows, pol_T, true, err) ||
        gpt_alloc(reference, MB, p->TF, false, err) || gpt_alloc(value, MB, p->TF, true, err) ||
        make_generators(p, err)) {
        err_prefixf(err, "ppo: ");
        goto fail;
    }
    return p;
fail:
    ppo_destroy(&p);
    return NULL;
}

void ppo_destroy(ppo_t **ppo) {
    if (!ppo || !*ppo) return;
    for (int i = 0; i < (*ppo)->ngen; i++) gen_destroy(&(*ppo)->gens[i]);
    free((*ppo)->mem);
    free(*ppo);
    *ppo = NULL;
}

ppo_rollouts_t ppo_rollouts(const ppo_t *p) {
    const int64_t f = p->first;
    return (ppo_rollouts_t){.B = p->nown,
                            .first = f,
                            .stride = p->TS,
                            .tokens = p->seq + f * p->TS,
                            .prompt_len = p->prompt_len + f,
                            .response_len = p->response_len + f,
                            .ended = p->ended + f,
                            .scores = p->scores + f};
}

double ppo_kl_coef(const ppo_t *p) {
    return p->kl_ctl.value;
}

void ppo_sections(ppo_t *p, ckpt_section_t out[PPO_NUM_SECTIONS]) {
    out[0] = (ckpt_section_t){"ppo.rng", p->rng.s, sizeof p->rng.s};
    out[1] = (ckpt_section_t){"ppo.kl_coef", &p->kl_ctl.value, sizeof p->kl_ctl.value};
    out[2] = (ckpt_section_t){"ppo.score_moments", &p->score_moments, sizeof p->score_moments};
    out[3] = (ckpt_section_t){"ppo.iterations", &p->iterations, sizeof p->iterations};
}

/* ---- gathering rows ---------------------------------------------------------------------- */

/* The rows idx[0..n) of the rollouts as a contiguous (n, Tm) batch: input tokens, targets
 * (the response tokens at their predicting positions, -1 elsewhere) and spans. Returns Tm. */
static int64_t gather_rows(ppo_t *p, const int64_t *idx, int64_t n) {
    int64_t Tm = 1;
    for (int64_t j = 0; j < n; j++)
        Tm = max64(Tm, p->prompt_len[idx[j]] + p->response_len[idx[j]] - 1);
    for (int64_t j = 0; j < n; j++) {
        const int64_t b = idx[j], s = p->start[b], len = p->response_len[b];
        const int32_t *row = p->seq + b * p->TS;
        memcpy(p->mb_tokens + j * Tm, row, (size_t)Tm * sizeof(int32_t));
        int32_t *tg = p->mb_targets + j * Tm;
        for (int64_t t = 0; t < Tm; t++) tg[t] = t >= s && t < s + len ? row[t + 1] : -1;
        p->mb_start[j] = s;
        p->mb_len[j] = len;
    }
    return Tm;
}

/* Copies the response span of rows idx[0..n) between a (B, TF) array and an (n, Tm) one. */
static void copy_spans(ppo_t *p, float *dst, const float *src, const int64_t *idx, int64_t n,
                       int64_t Tm, bool to_batch) {
    for (int64_t j = 0; j < n; j++) {
        const int64_t b = idx[j], s = p->start[b];
        float *full = (to_batch ? (float *)src : dst) + b * p->TF + s;
        float *mb = (to_batch ? dst : (float *)src) + j * Tm + s;
        const size_t bytes = (size_t)p->response_len[b] * sizeof(float);
        if (to_batch)
            memcpy(mb, full, bytes);
        else
            memcpy(full, mb, bytes);
    }
}

/* ---- one iteration ----------------------------------------------------------------------- */

/* Rollout b from sequence j of a generator's result. */
static void take_row(ppo_t *p, const int32_t *prompts, int64_t stride, int64_t P, int64_t b,
                     const gen_result_t *r, int64_t j) {
    int32_t *row = p->seq + b * p->TS;
    const int64_t n = r->count[j];
    memcpy(row, prompts + b * stride, (size_t)P * sizeof(int32_t));
    memcpy(row + P, r->tokens + j * r->stride, (size_t)n * sizeof(int32_t));
    for (int64_t t = P + n; t < p->TS; t++) row[t] = p->cfg.pad_id;
    p->prompt_len[b] = P;
    p->response_len[b] = n;
    p->start[b] = P - 1;
    p->ended[b] = r->ended[j];
    p->scores[b] = 0.0f;
    memcpy(p->old_logp + b * p->TF + P - 1, r->logprobs + j * r->stride, (size_t)n * sizeof(float));
}

/* The generators' output as full sequences, spans and old log-probs. */
static void take_rollouts(ppo_t *p, const int32_t *prompts, int64_t stride, const int64_t *lens) {
    for (int i = 0; i < p->ngen; i++) {
        int64_t b0, nb;
        gen_part(p->nown, p->ngen, i, &b0, &nb);
        if (nb == 0) continue;
        const gen_result_t r = gen_result(p->gens[i]);
        const int64_t f = p->first + b0;
        for (int64_t j = 0; j < nb; j++) take_row(p, prompts, stride, lens[f + j], f + j, &r, j);
    }
}

/* Every part of this rank's rows on its own thread and generator (see the top). */
static int rollout(ppo_t *p, const int32_t *prompts, int64_t stride, const int64_t *lens,
                   const gen_opts_t *opts, err_t *err) {
    int failed = 0;
    /* with one generator the region is inactive (if clause), which is no nesting level: its own
     * loops keep every thread */
#pragma omp parallel for num_threads(p->ngen) schedule(static, 1) reduction(+ : failed)            \
    if (p->ngen > 1)
    for (int i = 0; i < p->ngen; i++) {
        int64_t b0, nb;
        gen_part(p->nown, p->ngen, i, &b0, &nb);
        err_clear(&p->gen_err[i]);
        if (nb == 0) continue;
        const int64_t f = p->first + b0; /* the batch position: its random stream */
        gen_opts_t o = *opts;
        o.seq_offset = f;
        failed += gen_run(p->gens[i], prompts + f * stride, stride, lens + f, nb, &o,
                          &p->gen_err[i]) != 0;
    }
    if (!failed) return 0;
    for (int i = 0; i < p->ngen; i++)
        if (err_isset(&p->gen_err[i])) return err_setf(err, "ppo: %s", p->gen_err[i].msg);
    return -1;
}

/* Reference log-probs and the value model's values over this rank's rollouts, in
 * minibatch-sized chunks of consecutive rows. */
static void rollout_forwards(ppo_t *p) {
    const int64_t MB = p->cfg.minibatch, end = p->first + p->nown;
    for (int64_t b0 = p->first; b0 < end; b0 += MB) {
        const int64_t n = end - b0 < MB ? end - b0 : MB;
        for (int64_t j = 0; j < n; j++) p->perm[j] = b0 + j;
        const int64_t Tm = gather_rows(p, p->perm, n);
        gpt_forward(p->reference, p->mb_tokens, n, Tm);
        gpt_lm_logprobs(p->reference, p->mb_targets, p->cfg.temperature, p->mb_logp);
        copy_spans(p, p->ref_logp, p->mb_logp, p->perm, n, Tm, false);
        gpt_forward(p->value, p->mb_tokens, n, Tm);
        copy_spans(p, p->old_values, p->value->values, p->perm, n, Tm, false);
    }
}

/* The scores the rewards use: the caller's, the missing-eos substitution, then (optionally)
 * running whitening. Fills the two score means of stats. */
static void prepare_scores(ppo_t *p, ppo_stats_t *st) {
    const ppo_config_t *c = &p->cfg;
    const bool substitute = c->eos_id >= 0 && !isnan(c->missing_eos_score);
    for (int64_t b = p->first; b < p->first + p->nown; b++) {
        /* ended with a lone eos = empty text: nothing for the reward model to judge */
        const bool empty = p->ended[b] && p->response_len[b] == 1;
        if (substitute && (!p->ended[b] || empty)) p->scores[b] = c->missing_eos_score;
    }
    if (dist_size() > 1) { /* every rank gets every score (see the top) */
        for (int64_t b = 0; b < p->B; b++)
            if (b < p->first || b >= p->first + p->nown) p->scores[b] = 0.0f;
        dist_allreduce_f32(p->scores, (size_t)p->B, 1.0f);
    }
    double raw = 0.0;
    for (int64_t b = 0; b < p->B; b++) raw += (double)p->scores[b];
    st->score_raw = raw / (double)p->B;
    float *s = p->scores_used;
    memcpy(s, p->scores, (size_t)p->B * sizeof(float));
    if (c->whiten_rewards) {
        rl_running_update(&p->score_moments, s, p->B);
        rl_running_normalize(&p->score_moments, s, p->B, true);
    }
    double used = 0.0;
    for (int64_t b = 0; b < p->B; b++) used += (double)s[b];
    st->score = used / (double)p->B;
}

/* Σ over the response positions of the last policy forward (n rows of Tm) of the policy's
 * entropy at τ; the logits are read before backward overwrites them. */
static double span_entropy(ppo_t *p, int64_t n, int64_t Tm) {
    ops_entropy(p->mb_entropy, p->policy->logits, p->mb_targets, n * Tm, p->policy->cfg.vocab_size,
                p->cfg.temperature);
    double total = 0.0;
    for (int64_t k = 0; k < n * Tm; k++) total += (double)p->mb_entropy[k];
    return total;
}

/* Figures summed over an iteration's updates, each a global per-token mean (a rank adds its
 * share of it: its local mean times its share of the tokens); entropy is this rank's sum. */
typedef struct {
    double policy_loss, clipfrac, approx_kl, value_loss, value_clipfrac, ptx_loss, entropy;
} sums_t;
#define SUMS_N 7

/* One update's normalisers: this rank's and the global response tokens of the minibatch and
 * kept targets of the pretraining batch, and this rank's rows of the pretraining batch. */
typedef struct {
    double tokens, tokens_all, kept, kept_all;
    int64_t ptx_first, ptx_rows;
} shares_t;

/* The pretraining batch (every rank draws the same one, so the corpus stream stays the same
 * everywhere) and the normalisers of the update: one collective. */
static int update_shares(ppo_t *p, const ppo_callbacks_t *cb, int64_t n, shares_t *sh, err_t *err) {
    *sh = (shares_t){0};
    for (int64_t j = 0; j < n; j++) sh->tokens += (double)p->response_len[p->mb_idx[j]];
    if (p->cfg.ptx_coef != 0.0) {
        const int64_t R = p->cfg.ptx_rows, T = p->cfg.ptx_T, V = p->policy->cfg.vocab_size;
        if (cb->ptx_batch(cb->ctx, p->ptx_tokens, p->ptx_targets, R, T, err)) return -1;
        for (int64_t i = 0; i < R * T; i++)
            if (p->ptx_tokens[i] < 0 || p->ptx_tokens[i] >= V || p->ptx_targets[i] >= V)
                return err_setf(err, "ppo: pretraining batch: token %lld outside the vocabulary",
                                (long long)i);
        sh->ptx_rows = dist_share(R, &sh->ptx_first);
        const int64_t k0 = sh->ptx_first * T, k1 = k0 + sh->ptx_rows * T;
        for (int64_t i = k0; i < k1; i++) sh->kept += p->ptx_targets[i] >= 0;
    }
    double v[2] = {sh->tokens, sh->kept};
    dist_sum_f64(v, 2);
    sh->tokens_all = v[0];
    sh->kept_all = v[1];
    return 0;
}

/* g[0..n) *= share, under MPI only (one rank: untouched, not even multiplied by 1). */
static void scale_share(float *g, int64_t n, double share) {
    if (dist_size() <= 1) return;
    const float f = (float)share;
    for (int64_t k = 0; k < n; k++) g[k] *= f;
}

/* γ_ptx · mean NLL of the pretraining batch over its kept targets (of every rank), forward and
 * backward into the policy's gradients (PPO-ptx, rl.h) on this rank's rows: dout = −γ_ptx /
 * kept on kept targets, at temperature 1. */
static void ptx_step(ppo_t *p, const shares_t *sh, sums_t *sums) {
    const int64_t T = p->cfg.ptx_T, R = sh->ptx_rows, n = R * T;
    if (R == 0 || sh->kept_all == 0.0) return;
    const int32_t *tok = p->ptx_tokens + sh->ptx_first * T;
    const int32_t *tgt = p->ptx_targets + sh->ptx_first * T;
    const double loss = (double)gpt_lm_loss(p->policy, tok, tgt, R, T);
    if (sh->kept > 0) sums->ptx_loss += dist_size() > 1 ? loss * sh->kept / sh->kept_all : loss;
    if (sh->kept == 0) return;
    const float g = (float)(-p->cfg.ptx_coef / sh->kept_all);
    for (int64_t i = 0; i < n; i++) p->ptx_grad[i] = tgt[i] >= 0 ? g : 0.0f;
    gpt_backward(p->policy, p->ptx_grad);
}

/* One minibatch, this rank's rows idx[0..n) of it (n may be 0): the policy update (PPO + ptx),
 * then the value update. */
static int minibatch_step(ppo_t *p, const int64_t *idx, int64_t n, bool first_epoch,
                          const ppo_callbacks_t *cb, sums_t *sums, ppo_stats_t *st, err_t *err) {
    const ppo_config_t *c = &p->cfg;
    const double ts = now();
    shares_t sh;
    if (update_shares(p, cb, n, &sh, err)) return -1; /* the pretraining batch: ptx's time */
    const double t0 = now();
    st->t_ptx += t0 - ts;
    const double share = sh.tokens_all > 0 ? sh.tokens / sh.tokens_all : 0.0;
    const double w = dist_size() > 1 ? share : 1.0; /* this rank's weight of a global mean */
    int64_t Tm = 0;
    rl_span_t span = {0};
    gpt_zero_grad(p->policy);
    if (n > 0) {
        Tm = gather_rows(p, idx, n);
        span = (rl_span_t){.start = p->mb_start, .len = p->mb_len, .B = n, .T = Tm};
        copy_spans(p, p->mb_old_logp, p->old_logp, idx, n, Tm, true);
        copy_spans(p, p->mb_adv, p->adv, idx, n, Tm, true);
        copy_spans(p, p->mb_returns, p->returns, idx, n, Tm, true);
        copy_spans(p, p->mb_old_values, p->old_values, idx, n, Tm, true);
        /* policy: clipped surrogate */
        gpt_forward(p->policy, p->mb_tokens, n, Tm);
        gpt_lm_logprobs(p->policy, p->mb_targets, c->temperature, p->mb_logp);
        if (first_epoch) sums->entropy += span_entropy(p, n, Tm);
        rl_policy_stats_t ps;
        rl_policy_forward(&ps, p->mb_logp, p->mb_old_logp, p->mb_adv, c->clip, &span);
        rl_policy_backward(p->mb_grad, p->mb_logp, p->mb_old_logp, p->mb_adv, c->clip, &span);
        scale_share(p->mb_grad, n * Tm, share);
        gpt_backward(p->policy, p->mb_grad);
        sums->policy_loss += ps.loss * w;
        sums->clipfrac += ps.clipfrac * w;
        sums->approx_kl += ps.approx_kl * w;
    }
    double t1 = now();
    if (c->ptx_coef != 0.0) ptx_step(p, &sh, sums);
    double t2 = now();
    st->t_ptx += t2 - t1;
    if (cb->update(cb->ctx, PPO_POLICY, p->policy, p->policy_opt, err)) return -1;
    /* value: clipped squared error against the GAE returns */
    gpt_zero_grad(p->value);
    if (n > 0) {
        gpt_forward(p->value, p->mb_tokens, n, Tm);
        rl_value_stats_t vs;
        rl_value_forward(&vs, p->value->values, p->mb_old_values, p->mb_returns, c->value_clip,
                         &span);
        rl_value_backward(p->mb_grad, p->value->values, p->mb_old_values, p->mb_returns,
                          c->value_clip, &span);
        scale_share(p->mb_grad, n * Tm, share);
        gpt_backward(p->value, p->mb_grad);
        sums->value_loss += vs.loss * w;
        sums->value_clipfrac += vs.clipfrac * w;
    }
    if (cb->update(cb->ctx, PPO_VALUE, p->value, p->value_opt, err)) return -1;
    st->t_update += (t1 - t0) + (now() - t2);
    return 0;
}

/* Fisher-Yates over perm[0..n) with the engine's stream. */
static void shuffle(ppo_t *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) p->perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        const int64_t j = (int64_t)rng_below(&p->rng, (uint64_t)i + 1), t = p->perm[i];
        p->perm[i] = p->perm[j];
        p->perm[j] = t;
    }
}

static int check_call(const ppo_t *p, const int32_t *prompts, int64_t stride, const int64_t *lens,
                      int64_t B, const ppo_callbacks_t *cb, err_t *err) {
    if (B < 1 || B > p->cfg.batch)
        return err_setf(err, "ppo: %lld prompts: the engine takes 1 to %lld", (long long)B,
                        (long long)p->cfg.batch);
    if (B < dist_size())
        return err_setf(err, "ppo: %lld prompts for %d ranks: each rank needs one at least",
                        (long long)B, dist_size());
    for (int64_t b = 0; b < B; b++)
        if (lens[b] < 1 || lens[b] > p->cfg.prompt_max || lens[b] > stride)
            return err_setf(err,
                            "ppo: prompt %lld has %lld tokens: need 1 to %lld (and at most the "
                            "row stride %lld)",
                            (long long)b, (long long)lens[b], (long long)p->cfg.prompt_max,
                            (long long)stride);
    /* ids here, not in the generators: their messages would count from their part's start */
    const int64_t V = p->policy->cfg.vocab_size;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < lens[b]; t++)
            if (prompts[b * stride + t] < 0 || prompts[b * stride + t] >= V)
                return err_setf(err, "ppo: prompt %lld: token %lld is %d, outside [0, %lld)",
                                (long long)b, (long long)t, (int)prompts[b * stride + t],
                                (long long)V);
    if (!cb->score_recv || !cb->update || (p->cfg.ptx_coef != 0.0 && !cb->ptx_batch))
        return err_setf(err, "ppo: missing callback (score_recv, update%s)",
                        p->cfg.ptx_coef != 0.0 ? ", ptx_batch" : "");
    return 0;
}

/* dist_sum_f64 as rl.h's reduce hook. */
static void reduce_sum(double *v, int n) {
    dist_sum_f64(v, n);
}

int ppo_iterate(ppo_t *p, const int32_t *prompts, int64_t stride, const int64_t *lens, int64_t B,
                const ppo_callbacks_t *cb, ppo_stats_t *stats, err_t *err) {
    const ppo_config_t *c = &p->cfg;
    ppo_stats_t st_local, *st = stats ? stats : &st_local;
    memset(st, 0, sizeof *st);
    if (check_call(p, prompts, stride, lens, B, cb, err)) return -1;
    const double t_start = now();
    p->B = B;
    p->nown = dist_share(B, &p->first);
    /* 1. rollout (this rank's rows) */
    gen_opts_t go = GEN_OPTS_DEFAULT;
    go.temperature = c->temperature;
    go.max_new = c->max_new;
    go.eos_id = c->eos_id;
    go.seed = rng_u64(&p->rng);
    if (rollout(p, prompts, stride, lens, &go, err)) return -1;
    take_rollouts(p, prompts, stride, lens);
    const int64_t f = p->first, TF = p->TF;
    const rl_span_t span = {
        .start = p->start + f, .len = p->response_len + f, .B = p->nown, .T = TF};
    /* 2. scoring starts while 3. the reference and value models run */
    if (cb->score_send) {
        const ppo_rollouts_t r = ppo_rollouts(p);
        if (cb->score_send(cb->ctx, &r, err)) return -1;
    }
    double t = now();
    st->t_generate = t - t_start;
    rollout_forwards(p);
    st->t_forward = now() - t;
    /* 4. scores */
    t = now();
    if (cb->score_recv(cb->ctx, p->scores + f, err)) return -1;
    st->t_score_wait = now() - t;
    prepare_scores(p, st);
    /* 5. rewards, advantages */
    st->kl_coef = p->kl_ctl.value;
    const double kl =
        rl_token_rewards(p->rewards + f * TF, p->old_logp + f * TF, p->ref_logp + f * TF,
                         p->scores_used + f, (float)p->kl_ctl.value, &span);
    st->kl = dist_mean(kl, (double)p->nown);
    rl_gae(p->adv + f * TF, p->returns + f * TF, p->rewards + f * TF, p->old_values + f * TF,
           c->gamma, c->lambda, &span);
    rl_whiten_reduced(p->adv + f * TF, true, &span, reduce_sum);
    st->explained_var = rl_explained_variance_reduced(p->old_values + f * TF, p->returns + f * TF,
                                                      &span, reduce_sum);
    /* 6. epochs of minibatch updates: slices of one shuffle, each rank its rows of a slice */
    sums_t sums = {0};
    int64_t updates = 0;
    for (int e = 0; e < c->epochs; e++) {
        shuffle(p, B);
        for (int64_t i = 0; i < B; i += c->minibatch, updates++) {
            const int64_t n = B - i < c->minibatch ? B - i : c->minibatch;
            int64_t m = 0;
            for (int64_t j = 0; j < n; j++)
                if (p->perm[i + j] >= f && p->perm[i + j] < f + p->nown)
                    p->mb_idx[m++] = p->perm[i + j];
            if (minibatch_step(p, p->mb_idx, m, e == 0, cb, &sums, st, err)) return -1;
        }
    }
    /* figures, global */
    int64_t ended = 0;
    for (int64_t b = f; b < f + p->nown; b++) ended += p->ended[b];
    const int64_t rank_tokens = rl_span_count(&span);
    double v[SUMS_N + 2] = {sums.policy_loss, sums.clipfrac,       sums.approx_kl,
                            sums.value_loss,  sums.value_clipfrac, sums.ptx_loss,
                            sums.entropy,     (double)rank_tokens, (double)ended};
    dist_sum_f64(v, SUMS_N + 2);
    const int64_t tokens = (int64_t)v[SUMS_N];
    /* 7. the KL controller */
    rl_kl_ctl_update(&p->kl_ctl, st->kl, B);
    p->iterations++;
    const double u = (double)updates;
    st->policy_loss = v[0] / u;
    st->clipfrac = v[1] / u;
    st->approx_kl = v[2] / u;
    st->value_loss = v[3] / u;
    st->value_clipfrac = v[4] / u;
    st->ptx_loss = v[5] / u;
    st->entropy = v[6] / (double)tokens;
    st->response_len = (double)tokens / (double)B;
    st->ended = v[SUMS_N + 1] / (double)B;
    st->tokens = tokens;
    st->rank_tokens = rank_tokens;
    st->updates = updates;
    st->t_total = now() - t_start;
    st->tokens_per_s = (double)tokens / st->t_total;
    return 0;
}
