/* common/gen.c: KV-cached batched sampling.
 * The workload: PPO and `sft sample` generate B sequences of a few dozen to a few hundred
 * tokens from prompts of ragged lengths. The work is one prefill (every prompt token, packed
 * without padding into rows of batched products) and then one decode step per new token,
 * whose B rows (one per unfinished sequence) go through each weight matrix once. At small B a
 * step is bound by reading the weights (0.5 GB for 124M): sgemm with 1..4 rows packs the
 * weight before using it, which costs more than the product, so those steps use sgemv per row
 * (measured on this machine, OpenBLAS 0.3.21: 43 GB/s for sgemv vs 17 GB/s for a 1-row
 * sgemm over 226 MB of weights; a 124M decode step of 4 rows takes 53 ms with sgemv per row
 * and 128 ms with sgemm; at 8 rows sgemm wins).
 * Vocabulary: B sequences, T positions, C channels, V vocabulary, L layers, NH heads, HS head
 * size; a "row" is one (sequence, position) token going through the model. */
#include "gen.h"
#include "ops.h"
#include "rng.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define GEN_PREFILL_ROWS  256 /* rows per prefill chunk: enough for sgemm to run near peak */
#define GEN_GEMV_MAX_ROWS 4   /* up to this many rows, one sgemv per row (see the top) */
#define GEN_ALIGN         64  /* bytes; every carved array starts on a cache line */
/* A parallel region costs a wake-up and a barrier (and on a loaded machine, waiting for the
 * second thread's time slice): loops with less work than this many multiply-adds run on one
 * thread. A tiny model's decode step would otherwise spend its time in barriers. */
#define GEN_PARALLEL_MIN_WORK 32768

struct gen {
    const gpt_model_t *model; /* borrowed */
    int64_t B_max, T_max;     /* what gen_new sized for */
    int64_t R;                /* row capacity of one forward (decode: B_max; prefill chunk) */
    int nthreads;             /* OpenMP threads the attention scratch was sized for */
    void *mem;                /* the one allocation every array below is carved from */
    /* K/V cache, (L, B_max, NH, T_max, HS) each */
    float *kcache, *vcache;
    /* per-row activations, R rows */
    int32_t *row_tok; /* (R) token of each row */
    int64_t *row_seq; /* (R) its sequence */
    int64_t *row_pos; /* (R) its position */
    float *x, *x2;    /* (R, C) residual stream before / after attention */
    float *ln;        /* (R, C) layernorm output */
    float *qkv;       /* (R, 3C) */
    float *att;       /* (R, C) attention output (heads side by side) */
    float *proj;      /* (R, C) attention / MLP projection output */
    float *fc, *fcg;  /* (R, 4C) MLP hidden before / after GELU */
    float *scratch;   /* (nthreads, T_max) attention scores of one (row, head) */
    /* head */
    float *hlast;  /* (B_max, C) last prompt row of each sequence (prefill) */
    float *hln;    /* (B_max, C) final layernorm output */
    float *logits; /* (B_max, V) one row per unfinished sequence, see logit_row */
    float *prob;   /* (B_max, V) exp((logit - max) / temperature), one row per sequence */
    float *sel;    /* (B_max, V) the same, reordered by top-k / top-p selection */
    /* the run */
    int64_t B;          /* sequences in the run; 0 = no run */
    gen_opts_t opts;    /* of the run */
    int64_t *lens;      /* (B_max) prompt lengths */
    int64_t *logit_row; /* (B_max) row of logits holding sequence b's next-token logits;
                           -1 once b has finished */
    int32_t *tokens;    /* (B_max, T_max) new tokens */
    float *logprobs;    /* (B_max, T_max) their log-probs */
    int64_t *count;     /* (B_max) new tokens so far */
    bool *ended;        /* (B_max) stopped by eos */
    bool *done;         /* (B_max) finished (eos, max_new or T_max) */
    rng_t *rng;         /* (B_max) one stream per sequence */
};

/* ---- allocation ------------------------------------------------------------------------- */

/* Reserves n bytes at *off (rounded up to GEN_ALIGN) and returns the offset. */
static size_t reserve(size_t *off, size_t n) {
    size_t at = *off;
    *off += (n + GEN_ALIGN - 1) / GEN_ALIGN * GEN_ALIGN;
    return at;
}

/* Lays out every array of g in one block: with base NULL only measures; returns the size. */
static size_t carve(gen_t *g, char *base) {
    const gpt_config_t *cfg = &g->model->cfg;
    const size_t L = (size_t)cfg->n_layer, C = (size_t)cfg->n_embd, V = (size_t)cfg->vocab_size;
    const size_t Bm = (size_t)g->B_max, Tm = (size_t)g->T_max, R = (size_t)g->R;
    size_t off = 0;
#define CARVE(field, n)                                                                            \
    do {                                                                                           \
        size_t at_ = reserve(&off, (n) * sizeof *g->field);                                        \
        if (base) g->field = (void *)(base + at_);                                                 \
    } while (0)
    CARVE(kcache, L * Bm * Tm * C);
    CARVE(vcache, L * Bm * Tm * C);
    CARVE(row_tok, R);
    CARVE(row_seq, R);
    CARVE(row_pos, R);
    CARVE(x, R * C);
    CARVE(x2, R * C);
    CARVE(ln, R * C);
    CARVE(qkv, R * 3 * C);
    CARVE(att, R * C);
    CARVE(proj, R * C);
    CARVE(fc, R * 4 * C);
    CARVE(fcg, R * 4 * C);
    CARVE(scratch, (size_t)g->nthreads * Tm);
    CARVE(hlast, Bm * C);
    CARVE(hln, Bm * C);
    CARVE(logits, Bm * V);
    CARVE(prob, Bm * V);
    CARVE(sel, Bm * V);
    CARVE(lens, Bm);
    CARVE(logit_row, Bm);
    CARVE(tokens, Bm * Tm);
    CARVE(logprobs, Bm * Tm);
    CARVE(count, Bm);
    CARVE(ended, Bm);
    CARVE(done, Bm);
    CARVE(rng, Bm);
#undef CARVE
    return off;
}

gen_t *gen_new(const gpt_model_t *model, int64_t B_max, int64_t T_max, err_t *err) {
    if (model->head != GPT_HEAD_LM) {
        err_setf(err, "generation needs a language model (LM head); this model has a score head");
        return NULL;
    }
    const gpt_config_t *cfg = &model->cfg;
    if (B_max < 1 || T_max < 2 || T_max > cfg->n_positions) {
        err_setf(err,
                 "generator size B_max %lld, T_max %lld: need B_max >= 1 and "
                 "2 <= T_max <= n_positions %lld",
                 (long long)B_max, (long long)T_max, (long long)cfg->n_positions);
        return NULL;
    }
    gen_t *g = calloc(1, sizeof *g);
    if (!g) goto oom;
    g->model = model;
    g->B_max = B_max;
    g->T_max = T_max;
    g->R = B_max > GEN_PREFILL_ROWS ? B_max : GEN_PREFILL_ROWS;
    if (g->R > B_max * T_max) g->R = B_max * T_max;
    g->nthreads = 1;
#ifdef _OPENMP
    g->nthreads = omp_get_max_threads();
#endif
    size_t bytes = carve(g, NULL);
    g->mem = aligned_alloc(GEN_ALIGN, bytes);
    if (!g->mem) goto oom;
    carve(g, g->mem);
    return g;
oom:
    err_setf(err, "out of memory for a generator of B_max %lld x T_max %lld (KV cache %.1f MB)",
             (long long)B_max, (long long)T_max,
             2.0 * (double)cfg->n_layer * (double)B_max * (double)T_max * (double)cfg->n_embd *
                 4.0 / 1e6);
    gen_destroy(&g);
    return NULL;
}

void gen_destroy(gen_t **gen) {
    if (!gen || !*gen) return;
    free((*gen)->mem);
    free(*gen);
    *gen = NULL;
}

/* ---- the forward over rows -------------------------------------------------------------- */

/* Threads for a parallel loop that uses the per-thread scratch: never more than it holds. */
static int scratch_threads(const gen_t *g) {
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    return nt < g->nthreads ? nt : g->nthreads;
#else
    return g->nthreads;
#endif
}

/* out(N×OC) = inp(N×C)·w(C×OC) + bias(OC): sgemm through ops, or one sgemv per row when N
 * is so small that sgemm's packing of w would dominate (see the top of the file). */
static void matmul_rows(float *out, const float *inp, const float *w, const float *bias, int64_t N,
                        int64_t C, int64_t OC) {
    if (N > GEN_GEMV_MAX_ROWS) {
        ops_matmul_forward(out, inp, w, bias, N, C, OC);
        return;
    }
    for (int64_t n = 0; n < N; n++) {
        float *o = out + n * OC;
        if (bias) memcpy(o, bias, (size_t)OC * sizeof(float));
        /* o(OC) = wᵀ(OC×C)·inp_n(C): w is row-major (C×OC), so transposed */
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)C, (int)OC, 1.0f, w, (int)OC, inp + n * C, 1,
                    bias ? 1.0f : 0.0f, o, 1);
    }
}

/* logits(N×V) = inp(N×C)·wteᵀ, the tied LM head; sgemv per row for small N as above. */
static void lmhead_rows(float *logits, const float *inp, const float *wte, int64_t N, int64_t C,
                        int64_t V) {
    if (N > GEN_GEMV_MAX_ROWS) {
        ops_lmhead_forward(logits, inp, wte, N, C, V);
        return;
    }
    for (int64_t n = 0; n < N; n++) /* logits_n(V) = wte(V×C)·inp_n(C) */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)V, (int)C, 1.0f, wte, (int)C, inp + n * C, 1,
                    0.0f, logits + n * V, 1);
}

/* x[r] = wte[row_tok[r]] + wpe[row_pos[r]] for n rows. */
static void embed_rows(gen_t *g, int64_t n) {
    const int64_t C = g->model->cfg.n_embd;
    const gpt_params_t *p = &g->model->params;
#pragma omp parallel for if (n * C >= GEN_PARALLEL_MIN_WORK)
    for (int64_t r = 0; r < n; r++) {
        const float *te = p->wte + (int64_t)g->row_tok[r] * C, *pe = p->wpe + g->row_pos[r] * C;
        float *o = g->x + r * C;
        for (int64_t c = 0; c < C; c++) o[c] = te[c] + pe[c];
    }
}

/* Offset of (layer l, sequence b, head h, position t) in a K/V cache. */
static size_t cache_at(const gen_t *g, int64_t l, int64_t b, int64_t h, int64_t t) {
    const int64_t NH = g->model->cfg.n_head, HS = g->model->cfg.n_embd / NH;
    return ((((size_t)l * (size_t)g->B_max + (size_t)b) * (size_t)NH + (size_t)h) *
                (size_t)g->T_max +
            (size_t)t) *
           (size_t)HS;
}

/* Causal attention of layer l for n rows, each attending to its own sequence's positions
 * 0..row_pos[r] in the cache. First every row's k and v go into the cache (a prefill chunk
 * holds several positions of one sequence, which attend to each other), then
 * att[r, h] = softmax(q·Kᵀ/sqrt(HS))·V with GPT-2's scaling, max-subtracted softmax. */
static void attention_rows(gen_t *g, int64_t l, int64_t n) {
    const int64_t C = g->model->cfg.n_embd, NH = g->model->cfg.n_head, HS = C / NH;
    int64_t work = 0; /* multiply-adds: q·k and the weighted sum of v over every position */
    for (int64_t r = 0; r < n; r++) {
        work += 2 * (g->row_pos[r] + 1) * C;
        const float *k = g->qkv + r * 3 * C + C, *v = g->qkv + r * 3 * C + 2 * C;
        for (int64_t h = 0; h < NH; h++) {
            size_t at = cache_at(g, l, g->row_seq[r], h, g->row_pos[r]);
            memcpy(g->kcache + at, k + h * HS, (size_t)HS * sizeof(float));
            memcpy(g->vcache + at, v + h * HS, (size_t)HS * sizeof(float));
        }
    }
    const float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for collapse(2)                                                               \
    num_threads(scratch_threads(g)) if (work >= GEN_PARALLEL_MIN_WORK)
    for (int64_t r = 0; r < n; r++) {
        for (int64_t h = 0; h < NH; h++) {
#ifdef _OPENMP
            float *s = g->scratch + (int64_t)omp_get_thread_num() * g->T_max;
#else
            float *s = g->scratch;
#endif
            const float *q = g->qkv + r * 3 * C + h * HS;
            const float *K = g->kcache + cache_at(g, l, g->row_seq[r], h, 0);
            const float *Vc = g->vcache + cache_at(g, l, g->row_seq[r], h, 0);
            const int64_t T = g->row_pos[r] + 1;
            float max = -INFINITY;
            for (int64_t t = 0; t < T; t++) {
                const float *k = K + t * HS;
                float d = 0.0f;
#pragma omp simd reduction(+ : d)
                for (int64_t i = 0; i < HS; i++) d += q[i] * k[i];
                s[t] = d * scale;
                if (s[t] > max) max = s[t];
            }
            float sum = 0.0f;
            for (int64_t t = 0; t < T; t++) {
                s[t] = expf(s[t] - max);
                sum += s[t];
            }
            const float inv = 1.0f / sum;
            float *o = g->att + r * C + h * HS;
            for (int64_t i = 0; i < HS; i++) o[i] = 0.0f;
            for (int64_t t = 0; t < T; t++) {
                const float w = s[t] * inv, *v = Vc + t * HS;
#pragma omp simd
                for (int64_t i = 0; i < HS; i++) o[i] += w * v[i];
            }
        }
    }
}

/* The transformer trunk over n rows (row_tok, row_seq, row_pos set): leaves the final
 * residual stream (before ln_f) in g->x, and each row's k, v in the cache. */
static void forward_rows(gen_t *g, int64_t n) {
    const gpt_config_t *cfg = &g->model->cfg;
    const int64_t C = cfg->n_embd, L = cfg->n_layer;
    embed_rows(g, n);
    for (int64_t l = 0; l < L; l++) {
        const gpt_layer_t w = gpt_layer(&g->model->params, cfg, l);
        ops_layernorm_forward(g->ln, NULL, NULL, g->x, w.ln1w, w.ln1b, n, C, cfg->ln_eps);
        matmul_rows(g->qkv, g->ln, w.qkvw, w.qkvb, n, C, 3 * C); /* (n×C)·(C×3C) */
        attention_rows(g, l, n);
        matmul_rows(g->proj, g->att, w.attprojw, w.attprojb, n, C, C); /* (n×C)·(C×C) */
        ops_residual_forward(g->x2, g->x, g->proj, n * C);
        ops_layernorm_forward(g->ln, NULL, NULL, g->x2, w.ln2w, w.ln2b, n, C, cfg->ln_eps);
        matmul_rows(g->fc, g->ln, w.fcw, w.fcb, n, C, 4 * C); /* (n×C)·(C×4C) */
        ops_gelu_forward(g->fcg, g->fc, n * 4 * C);
        matmul_rows(g->proj, g->fcg, w.fcprojw, w.fcprojb, n, 4 * C, C); /* (n×4C)·(4C×C) */
        ops_residual_forward(g->x, g->x2, g->proj, n * C);
    }
}

/* logits rows 0..n-1 = ln_f(h rows)·wteᵀ. */
static void head_rows(gen_t *g, const float *h, int64_t n) {
    const gpt_config_t *cfg = &g->model->cfg;
    const gpt_params_t *p = &g->model->params;
    ops_layernorm_forward(g->hln, NULL, NULL, h, p->lnfw, p->lnfb, n, cfg->n_embd, cfg->ln_eps);
    /* (n×C)·(V×C)ᵀ */
    lmhead_rows(g->logits, g->hln, p->wte, n, cfg->n_embd, cfg->vocab_size);
}

/* Every prompt token as one row, packed sequence after sequence into chunks of R rows (a
 * chunk may split a prompt: the cache carries the earlier part). Each sequence's last
 * prompt row is kept in hlast; then ln_f and the LM head run once over those B rows. */
static void prefill(gen_t *g, const int32_t *prompts, int64_t stride) {
    const int64_t C = g->model->cfg.n_embd;
    int64_t n = 0;
    for (int64_t b = 0; b < g->B; b++) {
        for (int64_t t = 0; t < g->lens[b]; t++) {
            g->row_tok[n] = prompts[b * stride + t];
            g->row_seq[n] = b;
            g->row_pos[n] = t;
            n++;
            const bool last = b == g->B - 1 && t == g->lens[b] - 1;
            if (n < g->R && !last) continue;
            forward_rows(g, n);
            for (int64_t r = 0; r < n; r++)
                if (g->row_pos[r] == g->lens[g->row_seq[r]] - 1)
                    memcpy(g->hlast + g->row_seq[r] * C, g->x + r * C, (size_t)C * sizeof(float));
            n = 0;
        }
    }
    head_rows(g, g->hlast, g->B);
    for (int64_t b = 0; b < g->B; b++) g->logit_row[b] = b;
}

/* ---- sampling --------------------------------------------------------------------------- */

/* Why the draw walks tokens in id order: batchmates and thread counts change logits by float
 * rounding (~1e-7), and a walk in any order that depends on the values (sorted, or as a
 * quickselect left them) turns such a change into a different token whenever two near-equal
 * probabilities swap places, which for a flat distribution over 50k tokens is almost always.
 * In id order a rounding change moves the pick only when the uniform draw (or the top-p
 * boundary) falls within that rounding of an edge. */

/* Partitions x[lo, hi) around pivot value pv, descending: on return [lo, *gt_end) > pv,
 * [*gt_end, *eq_end) == pv, [*eq_end, hi) < pv. */
static void partition3(float *x, int64_t lo, int64_t hi, float pv, int64_t *gt_end,
                       int64_t *eq_end) {
    int64_t lt = lo, i = lo, gt = hi;
    while (i < gt) {
        const float v = x[i];
        if (v > pv) {
            x[i++] = x[lt];
            x[lt++] = v;
        } else if (v < pv) {
            x[i] = x[--gt];
            x[gt] = v;
        } else {
            i++;
        }
    }
    *gt_end = lt;
    *eq_end = gt;
}

/* Median of the first, middle and last value of x[lo, hi). */
static float pivot3(const float *x, int64_t lo, int64_t hi) {
    float a = x[lo], b = x[lo + (hi - lo) / 2], d = x[hi - 1];
    if (a > b) {
        float t = a;
        a = b;
        b = t;
    }
    if (b > d) b = d;
    return a > b ? a : b;
}

/* Moves the k largest values of x[0, n) to x[0, k) (in no particular order): quickselect,
 * O(n) expected, instead of sorting 50k probabilities per token. */
static void select_top_k(float *x, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n;
    while (hi - lo > 1) {
        int64_t a, b;
        partition3(x, lo, hi, pivot3(x, lo, hi), &a, &b);
        if (k <= a)
            hi = a;
        else if (k <= b)
            return;
        else
            lo = b;
    }
}

/* The nucleus of x[0, n): moves to the front the smallest set of largest values whose sum
 * reaches top_p of the total, and returns its size. Same quickselect, tracking the mass of
 * everything already known to be inside. */
static int64_t select_top_p(float *x, int64_t n, double top_p) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += (double)x[i];
    const double need = top_p * total;
    double inside = 0.0;    /* mass of x[0, lo): all larger than anything in [lo, n) */
    int64_t lo = 0, hi = n; /* invariant: inside < need <= inside + mass of [lo, hi) */
    while (hi - lo > 1) {
        int64_t a, b;
        const float pv = pivot3(x, lo, hi);
        partition3(x, lo, hi, pv, &a, &b);
        double gt = 0.0;
        for (int64_t i = lo; i < a; i++) gt += (double)x[i];
        if (inside + gt >= need) {
            hi = a;
            continue;
        }
        const double eq = (double)pv * (double)(b - a);
        if (inside + gt + eq >= need) { /* some of the tied ones close the set */
            int64_t k = (int64_t)ceil((need - inside - gt) / (double)pv);
            if (k < 1) k = 1;
            return a + (k < b - a ? k : b - a);
        }
        inside += gt + eq;
        lo = b;
    }
    return hi > 0 ? hi : 1;
}

/* What top-k then top-p keep of prob (V, id order), as a rule a walk in id order can apply:
 * every token with prob > *thr, and the first *ties tokens with prob == *thr. sel is (V)
 * scratch. Without truncation: *thr = -1 (everything). */
static void kept_set(const float *prob, int64_t V, const gen_opts_t *o, float *sel, float *thr,
                     int64_t *ties) {
    *thr = -1.0f;
    *ties = 0;
    const bool top_k = o->top_k > 0 && o->top_k < V, top_p = o->top_p < 1.0f;
    if (!top_k && !top_p) return;
    memcpy(sel, prob, (size_t)V * sizeof(float));
    int64_t n = V;
    if (top_k) {
        select_top_k(sel, n, o->top_k);
        n = o->top_k;
    }
    if (top_p) n = select_top_p(sel, n, (double)o->top_p);
    float min = sel[0];
    for (int64_t i = 1; i < n; i++) min = sel[i] < min ? sel[i] : min;
    int64_t eq = 0;
    for (int64_t i = 0; i < n; i++) eq += sel[i] == min;
    *thr = min;
    *ties = eq;
}

/* Picks a token from one row of logits (V) and writes its log-prob (see gen_result_t).
 * prob and sel are (V) scratch. */
static int32_t sample_token(const float *logits, int64_t V, const gen_opts_t *o, rng_t *rng,
                            float *prob, float *sel, float *logprob) {
    int64_t arg = 0;
    for (int64_t i = 1; i < V; i++)
        if (logits[i] > logits[arg]) arg = i;
    const float max = logits[arg];
    const double inv_temp = o->temperature > 0.0f ? 1.0 / (double)o->temperature : 1.0;
    double z = 0.0; /* Σ exp((logit - max) / temperature) over the full vocabulary */
    for (int64_t i = 0; i < V; i++) {
        prob[i] = expf((float)((double)(logits[i] - max) * inv_temp));
        z += (double)prob[i];
    }
    int64_t pick = arg; /* greedy; also the fallback: the argmax is always kept */
    if (o->temperature > 0.0f) {
        float thr;
        int64_t ties;
        kept_set(prob, V, o, sel, &thr, &ties);
        double mass = 0.0;
        int64_t t = ties;
        for (int64_t i = 0; i < V; i++)
            if (prob[i] > thr || (prob[i] == thr && t-- > 0)) mass += (double)prob[i];
        const double u = rng_double(rng) * mass;
        double acc = 0.0;
        t = ties;
        for (int64_t i = 0; i < V; i++) {
            if (!(prob[i] > thr || (prob[i] == thr && t-- > 0))) continue;
            acc += (double)prob[i];
            if (u < acc) {
                pick = i;
                break;
            }
        }
    }
    *logprob = (float)((double)(logits[pick] - max) * inv_temp - log(z));
    return (int32_t)pick;
}

/* ---- the run ---------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z) { /* splitmix64's finaliser */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int check_run(const gen_t *g, const int32_t *prompts, int64_t stride, const int64_t *lens,
                     int64_t B, const gen_opts_t *o, err_t *err) {
    const int64_t V = g->model->cfg.vocab_size;
    if (B < 1 || B > g->B_max)
        return err_setf(err, "generation batch of %lld sequences: the generator holds 1 to %lld",
                        (long long)B, (long long)g->B_max);
    if (!(o->temperature >= 0.0f) || !isfinite(o->temperature) || o->top_k < 0 ||
        !(o->top_p > 0.0f && o->top_p <= 1.0f) || o->max_new < 0 || o->eos_id >= V)
        return err_setf(err,
                        "bad sampling options: temperature %g (>= 0), top_k %lld (>= 0), "
                        "top_p %g (in (0, 1]), max_new %lld (>= 0), eos_id %d (< %lld)",
                        (double)o->temperature, (long long)o->top_k, (double)o->top_p,
                        (long long)o->max_new, (int)o->eos_id, (long long)V);
    for (int64_t b = 0; b < B; b++) {
        if (lens[b] < 1 || lens[b] >= g->T_max || lens[b] > stride)
            return err_setf(err,
                            "prompt %lld has %lld tokens: need 1 to %lld (T_max %lld "
                            "leaves room for a new token) and at most the row stride %lld",
                            (long long)b, (long long)lens[b], (long long)(g->T_max - 1),
                            (long long)g->T_max, (long long)stride);
        for (int64_t t = 0; t < lens[b]; t++) {
            const int32_t id = prompts[b * stride + t];
            if (id < 0 || id >= V)
                return err_setf(err,
                                "prompt %lld: token %lld is %d, outside the vocabulary "
                                "[0, %lld)",
                                (long long)b, (long long)t, (int)id, (long long)V);
        }
    }
    return 0;
}

int gen_start(gen_t *g, const int32_t *prompts, int64_t stride, const int64_t *lens, int64_t B,
              const gen_opts_t *opts, err_t *err) {
    g->B = 0;
    if (check_run(g, prompts, stride, lens, B, opts, err)) return -1;
    g->B = B;
    g->opts = *opts;
    const uint64_t key = mix64(opts->seed ^ 0x6A09E667F3BCC909ull);
    for (int64_t b = 0; b < B; b++) {
        g->lens[b] = lens[b];
        g->count[b] = 0;
        g->ended[b] = false;
        g->done[b] = opts->max_new == 0;
        g->logit_row[b] = -1;
        rng_seed(&g->rng[b], key + 0x9E3779B97F4A7C15ull * (uint64_t)(opts->seq_offset + b));
    }
    if (opts->max_new > 0) prefill(g, prompts, stride);
    return 0;
}

int64_t gen_step(gen_t *g) {
    const int64_t V = g->model->cfg.vocab_size;
    /* 1. sample: each sequence only touches its own stream, scratch and outputs */
#pragma omp parallel for schedule(dynamic) if (g->B > 1 && g->B * V >= GEN_PARALLEL_MIN_WORK)
    for (int64_t b = 0; b < g->B; b++) {
        if (g->done[b]) continue;
        const int64_t i = g->count[b];
        float lp;
        const int32_t tok = sample_token(g->logits + g->logit_row[b] * V, V, &g->opts, &g->rng[b],
                                         g->prob + b * V, g->sel + b * V, &lp);
        g->tokens[b * g->T_max + i] = tok;
        g->logprobs[b * g->T_max + i] = lp;
        g->count[b] = i + 1;
        g->ended[b] = tok == g->opts.eos_id;
        g->done[b] =
            g->ended[b] || g->count[b] >= g->opts.max_new || g->lens[b] + g->count[b] >= g->T_max;
    }
    /* 2. the unfinished sequences' new tokens, one row each */
    int64_t n = 0;
    for (int64_t b = 0; b < g->B; b++) {
        g->logit_row[b] = -1;
        if (g->done[b]) continue;
        g->row_tok[n] = g->tokens[b * g->T_max + g->count[b] - 1];
        g->row_seq[n] = b;
        g->row_pos[n] = g->lens[b] + g->count[b] - 1;
        g->logit_row[b] = n++;
    }
    if (n == 0) return 0;
    forward_rows(g, n);
    head_rows(g, g->x, n);
    return n;
}

int gen_run(gen_t *g, const int32_t *prompts, int64_t stride, const int64_t *lens, int64_t B,
            const gen_opts_t *opts, err_t *err) {
    if (gen_start(g, prompts, stride, lens, B, opts, err)) return -1;
    while (gen_step(g) > 0) {
    }
    return 0;
}

const float *gen_logits(const gen_t *g, int64_t b) {
    if (b < 0 || b >= g->B || g->logit_row[b] < 0) return NULL;
    return g->logits + g->logit_row[b] * g->model->cfg.vocab_size;
}

gen_result_t gen_result(const gen_t *g) {
    return (gen_result_t){.B = g->B,
                          .stride = g->T_max,
                          .tokens = g->tokens,
                          .logprobs = g->logprobs,
                          .count = g->count,
                          .ended = g->ended};
}
