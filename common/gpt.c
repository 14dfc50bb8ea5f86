/* common/gpt.c: GPT-2 — the parameter layout (GPT_PARAMS in gpt.h) made into slab views, the
 * initialisation and the Hugging Face tensor table, then the compute: activations, forward,
 * the two heads, backward.
 *
 * Memory: three slabs besides the parameters, each one allocation carved by a size table in
 * gpt_alloc and sized once for B_max × T_max: activations (what backward needs, per layer),
 * parameter gradients (same layout as the parameters), and activation gradients (one layer's
 * worth of scratch, reused from the top layer down). A step then only reads and writes memory
 * that is already mapped: no malloc, no page faults after the first step. Without training,
 * every layer shares one layer's activation buffers (nothing is kept for backward), so an
 * inference-only model (the frozen reference, the reward server) stays small. */
#include "gpt.h"
#include "ops.h"
#include "rng.h"
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameter layout ------------------------------------------------------------------- */

/* One row of GPT_PARAMS, evaluated for a config. */
typedef struct {
    size_t field;     /* offsetof(gpt_params_t, field) */
    const char *name; /* Hugging Face name; a LAYER row's comes after "h.<l>." */
    bool layer;       /* one tensor per layer, stacked in the slab */
    bool score;       /* score head only */
    int ndim;         /* 1 or 2 */
    int64_t shape[2]; /* one tensor's; shape[1] = 0 when ndim is 1 */
    int64_t numel;    /* one tensor's */
    bool decay;
    gpt_init_t init;
} param_row_t;

/* Floats in one tensor of shape (d0, d1) as GPT_PARAMS writes it (d1 = 0: 1-dim). */
#define NUMEL(d0, d1) ((d1) != 0 ? (d0) * (d1) : (d0))

#define COUNT_ROW(...) +1
enum { NUM_VIEWS = 0 GPT_PARAMS(COUNT_ROW, COUNT_ROW, COUNT_ROW) };
#undef COUNT_ROW

/* GPT_PARAMS for cfg, in slab order. */
static void layout(const gpt_config_t *cfg, param_row_t rows[NUM_VIEWS]) {
    const int64_t V = cfg->vocab_size, NPOS = cfg->n_positions, C = cfg->n_embd;
    int i = 0;
#define ROW(layer_, score_, field_, name_, d0, d1, decay_, init_)                                  \
    rows[i++] = (param_row_t){.field = offsetof(gpt_params_t, field_),                             \
                              .name = (name_),                                                     \
                              .layer = (layer_),                                                   \
                              .score = (score_),                                                   \
                              .ndim = (d1) != 0 ? 2 : 1,                                           \
                              .shape = {(d0), (d1)},                                               \
                              .numel = NUMEL(d0, d1),                                              \
                              .decay = (decay_),                                                   \
                              .init = (init_)};
#define ONCE_ROW(...)  ROW(false, false, __VA_ARGS__)
#define LAYER_ROW(...) ROW(true, false, __VA_ARGS__)
#define SCORE_ROW(...) ROW(false, true, __VA_ARGS__)
    GPT_PARAMS(ONCE_ROW, LAYER_ROW, SCORE_ROW)
#undef ROW
#undef ONCE_ROW
#undef LAYER_ROW
#undef SCORE_ROW
}

/* The view of p that row r describes: where carve points it, and what it points to. */
static float **view_of(gpt_params_t *p, const param_row_t *r) {
    return (float **)((char *)p + r->field);
}
static float *view_get(const gpt_params_t *p, const param_row_t *r) {
    return *(float *const *)((const char *)p + r->field);
}

/* Floats in row r's view: every layer's tensor for a LAYER row, none for a SCORE row of an LM
 * head. */
static int64_t view_numel(const param_row_t *r, const gpt_config_t *cfg, gpt_head_t head) {
    if (r->score && head != GPT_HEAD_SCORE) return 0;
    return (r->layer ? cfg->n_layer : 1) * r->numel;
}

/* Points the views of p into mem, one after another in row order (NULL for an empty view or
 * when mem is NULL); returns the total float count. */
static int64_t carve(gpt_params_t *p, float *mem, const gpt_config_t *cfg, gpt_head_t head) {
    param_row_t rows[NUM_VIEWS];
    layout(cfg, rows);
    int64_t off = 0;
    for (int i = 0; i < NUM_VIEWS; i++) {
        const int64_t n = view_numel(&rows[i], cfg, head);
        *view_of(p, &rows[i]) = (mem && n) ? mem + off : NULL;
        off += n;
    }
    return off;
}

gpt_layer_t gpt_layer(const gpt_params_t *p, const gpt_config_t *cfg, int64_t l) {
    const int64_t C = cfg->n_embd;
    assert(l >= 0 && l < cfg->n_layer);
    gpt_layer_t w;
#define SKIP(...)
#define AT(field, name, d0, d1, ...) w.field = p->field + l * NUMEL(d0, d1);
    GPT_PARAMS(SKIP, AT, SKIP)
#undef SKIP
#undef AT
    return w;
}

static int check_config(const gpt_config_t *cfg, err_t *err) {
    if (cfg->vocab_size <= 0 || cfg->n_positions <= 0 || cfg->n_layer <= 0 ||
        cfg->n_head <= 0 || cfg->n_embd <= 0)
        return err_setf(err, "bad model config: vocab_size %lld, n_positions %lld, n_layer %lld, "
                             "n_head %lld, n_embd %lld must all be positive",
                        (long long)cfg->vocab_size, (long long)cfg->n_positions,
                        (long long)cfg->n_layer, (long long)cfg->n_head, (long long)cfg->n_embd);
    if (cfg->n_embd % cfg->n_head)
        return err_setf(err, "bad model config: n_embd %lld is not a multiple of n_head %lld",
                        (long long)cfg->n_embd, (long long)cfg->n_head);
    if (!(cfg->ln_eps > 0.0f) || !isfinite(cfg->ln_eps))
        return err_setf(err, "bad model config: layer_norm_epsilon %g must be positive",
                        (double)cfg->ln_eps);
    return 0;
}

gpt_model_t *gpt_new(const gpt_config_t *cfg, gpt_head_t head, err_t *err) {
    if (check_config(cfg, err)) return NULL;
    if (head != GPT_HEAD_LM && head != GPT_HEAD_SCORE) {
        err_setf(err, "unknown model head %d", (int)head);
        return NULL;
    }
    gpt_model_t *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->cfg = *cfg;
    m->head = head;
    m->num_params = carve(&m->params, NULL, cfg, head);
    m->params_mem = calloc((size_t)m->num_params, sizeof(float));
    if (!m->params_mem) goto oom;
    carve(&m->params, m->params_mem, cfg, head);
    m->temperature = 1.0f;
    return m;
oom:
    err_setf(err, "out of memory for a model of %lld parameters",
             m ? (long long)m->num_params : 0LL);
    gpt_destroy(&m);
    return NULL;
}

void gpt_init_random(gpt_model_t *model, uint64_t seed) {
    const gpt_config_t *cfg = &model->cfg;
    const float std = 0.02f, std_res = 0.02f / sqrtf(2.0f * (float)cfg->n_layer);
    param_row_t rows[NUM_VIEWS];
    layout(cfg, rows);
    rng_t rng;
    rng_seed(&rng, seed);
    memset(model->params_mem, 0, (size_t)model->num_params * sizeof(float));
    for (int i = 0; i < NUM_VIEWS; i++) {
        float *x = view_get(&model->params, &rows[i]);
        const int64_t n = view_numel(&rows[i], cfg, model->head);
        switch (rows[i].init) {
        case GPT_INIT_ZEROS: break;
        case GPT_INIT_ONES:
            for (int64_t k = 0; k < n; k++) x[k] = 1.0f;
            break;
        case GPT_INIT_NORMAL:
            for (int64_t k = 0; k < n; k++) x[k] = std * rng_normal(&rng);
            break;
        case GPT_INIT_RESIDUAL:
            for (int64_t k = 0; k < n; k++) x[k] = std_res * rng_normal(&rng);
            break;
        }
    }
}

/* out[n] = tensor l of row r (l = -1 for a ONCE or SCORE row), when n < cap; returns n + 1. */
static int64_t add_tensor(const gpt_model_t *model, gpt_tensor_t *out, int64_t cap, int64_t n,
                          const param_row_t *r, int64_t l) {
    if (out && n < cap) {
        gpt_tensor_t *t = &out[n];
        memset(t, 0, sizeof *t);
        if (l >= 0)
            snprintf(t->name, sizeof t->name, "h.%lld.%s", (long long)l, r->name);
        else
            snprintf(t->name, sizeof t->name, "%s", r->name);
        t->ndim = r->ndim;
        t->shape[0] = r->shape[0];
        t->shape[1] = r->shape[1];
        t->numel = r->numel;
        const int64_t at = (l >= 0 ? l : 0) * r->numel;
        t->param = view_get(&model->params, r) + at;
        if (model->grads_mem) t->grad = view_get(&model->grads, r) + at;
        t->decay = r->decay;
    }
    return n + 1;
}

int64_t gpt_tensors(const gpt_model_t *model, gpt_tensor_t *out, int64_t cap) {
    param_row_t rows[NUM_VIEWS];
    layout(&model->cfg, rows);
    int64_t n = 0;
    for (int i = 0; i < NUM_VIEWS;) {
        if (rows[i].score && model->head != GPT_HEAD_SCORE) {
            i++;
        } else if (!rows[i].layer) {
            n = add_tensor(model, out, cap, n, &rows[i++], -1);
        } else { /* the block: layer by layer, each layer's tensors in row order */
            int end = i;
            while (end < NUM_VIEWS && rows[end].layer) end++;
            for (int64_t l = 0; l < model->cfg.n_layer; l++)
                for (int k = i; k < end; k++) n = add_tensor(model, out, cap, n, &rows[k], l);
            i = end;
        }
    }
    return n;
}

int gpt_copy_params(gpt_model_t *dst, const gpt_model_t *src, err_t *err) {
    const gpt_config_t *a = &dst->cfg, *b = &src->cfg;
    if (a->vocab_size != b->vocab_size || a->n_positions != b->n_positions ||
        a->n_layer != b->n_layer || a->n_head != b->n_head || a->n_embd != b->n_embd)
        return err_setf(err, "cannot copy parameters between models of different shapes");
    /* The trunk is the same prefix of both slabs (GPT_PARAMS' SCORE rows come last); the
     * rest is the score head, copied when both have one (then the slabs are the same size). */
    const int64_t trunk = carve(&(gpt_params_t){0}, NULL, a, GPT_HEAD_LM);
    const int64_t n = dst->head == GPT_HEAD_SCORE && src->head == GPT_HEAD_SCORE
                          ? dst->num_params
                          : trunk;
    memcpy(dst->params_mem, src->params_mem, (size_t)n * sizeof(float));
    return 0;
}

/* ---- activations ------------------------------------------------------------------------- */

/* Everything one forward keeps for backward, as views into one slab. Per-layer buffers are
 * stacked (L, B, T, ...) when training and hold one layer otherwise (every layer reuses it).
 * Views are laid out for the current B×T: layer l of ln1 starts at ln1 + l·N·C (N = B·T). */
struct gpt_acts {
    void *mem;          /* the activation slab */
    float *grad_mem;    /* the activation-gradient slab; NULL unless training */
    bool training;      /* per-layer buffers are kept and grad_mem exists */
    bool have_logprobs; /* LM head: gpt_lm_logprobs ran since the last forward (so targets,
                           lse and temperature describe model->logits) */
    int32_t *tokens;    /* (B, T) the last forward's input (encoder backward) */
    int32_t *targets;   /* (B, T) the last gpt_lm_logprobs' targets */
    float *encoded;     /* (B, T, C) token + position embedding */
    float *ln1;         /* (L, B, T, C) */
    float *ln1_mean;    /* (L, B, T) */
    float *ln1_rstd;    /* (L, B, T) */
    float *qkv;         /* (L, B, T, 3C) */
    float *atty;        /* (L, B, T, C) attention output before c_proj */
    float *att;         /* (L, B, NH, T, T) attention probabilities */
    float *res2;        /* (L, B, T, C) residual after attention */
    float *ln2;         /* (L, B, T, C) */
    float *ln2_mean;    /* (L, B, T) */
    float *ln2_rstd;    /* (L, B, T) */
    float *fch;         /* (L, B, T, 4C) c_fc output */
    float *fch_gelu;    /* (L, B, T, 4C) */
    float *res3;        /* (L, B, T, C) residual after the MLP = next layer's input */
    float *proj;        /* (B, T, C) scratch: a c_proj output before its residual add */
    float *lnf;         /* (B, T, C) */
    float *lnf_mean;    /* (B, T) */
    float *lnf_rstd;    /* (B, T) */
    float *logits;      /* (B, T, V) LM head; dlogits after backward */
    float *lse;         /* (B, T) LM head: log Σ exp of each row at the last temperature */
    float *logp;        /* (B, T) LM head: gpt_lm_loss's log-probs */
    float *values;      /* (B, T) score head */
    /* activation gradients, one layer's worth (training only) */
    float *dres;        /* (B, T, C) d loss / d residual stream at the current layer */
    float *dln;         /* (B, T, C) d of a LayerNorm output (ln_f, ln_2, ln_1 in turn) */
    float *datty;       /* (B, T, C) */
    float *dqkv;        /* (B, T, 3C) */
    float *datt;        /* (B, NH, T, T) attention backward scratch */
    float *dfch_gelu;   /* (B, T, 4C) */
    float *dfch;        /* (B, T, 4C) */
};

/* One region of a slab: where its pointer goes, how many elements of what size. */
typedef struct {
    void **ptr;
    int64_t count;
    size_t elem;
} slot_t;

enum { SLAB_ALIGN = 64 }; /* each region starts on a cache line */

/* Points each slot into mem (when mem is not NULL) and returns the slab's size in bytes. */
static size_t carve_slab(const slot_t *slots, int n, char *mem) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (mem) *slots[i].ptr = slots[i].count ? mem + off : NULL;
        off += ((size_t)slots[i].count * slots[i].elem + SLAB_ALIGN - 1) / SLAB_ALIGN * SLAB_ALIGN;
    }
    return off;
}

#define SLOT(field, n, type) {(void **)&a->field, (n), sizeof(type)}

/* The activation slab's table for batches up to Bm × Tm. */
static int act_slots(gpt_acts_t *a, const gpt_model_t *m, int64_t Bm, int64_t Tm, bool training,
                     slot_t *slots) {
    const int64_t C = m->cfg.n_embd, NH = m->cfg.n_head, V = m->cfg.vocab_size;
    const int64_t Lk = training ? m->cfg.n_layer : 1, N = Bm * Tm;
    const bool lm = m->head == GPT_HEAD_LM;
    const slot_t t[] = {
        SLOT(tokens, N, int32_t),         SLOT(targets, N, int32_t),
        SLOT(encoded, N * C, float),      SLOT(ln1, Lk * N * C, float),
        SLOT(ln1_mean, Lk * N, float),    SLOT(ln1_rstd, Lk * N, float),
        SLOT(qkv, Lk * N * 3 * C, float), SLOT(atty, Lk * N * C, float),
        SLOT(att, Lk * Bm * NH * Tm * Tm, float), SLOT(res2, Lk * N * C, float),
        SLOT(ln2, Lk * N * C, float),     SLOT(ln2_mean, Lk * N, float),
        SLOT(ln2_rstd, Lk * N, float),    SLOT(fch, Lk * N * 4 * C, float),
        SLOT(fch_gelu, Lk * N * 4 * C, float), SLOT(res3, Lk * N * C, float),
        SLOT(proj, N * C, float),         SLOT(lnf, N * C, float),
        SLOT(lnf_mean, N, float),         SLOT(lnf_rstd, N, float),
        SLOT(logits, lm ? N * V : 0, float), SLOT(lse, lm ? N : 0, float),
        SLOT(logp, lm ? N : 0, float),    SLOT(values, lm ? 0 : N, float),
    };
    memcpy(slots, t, sizeof t);
    return (int)(sizeof t / sizeof t[0]);
}

/* The activation-gradient slab's table. */
static int grad_slots(gpt_acts_t *a, const gpt_model_t *m, int64_t Bm, int64_t Tm,
                      slot_t *slots) {
    const int64_t C = m->cfg.n_embd, NH = m->cfg.n_head, N = Bm * Tm;
    const slot_t t[] = {
        SLOT(dres, N * C, float),          SLOT(dln, N * C, float),
        SLOT(datty, N * C, float),         SLOT(dqkv, N * 3 * C, float),
        SLOT(datt, Bm * NH * Tm * Tm, float), SLOT(dfch_gelu, N * 4 * C, float),
        SLOT(dfch, N * 4 * C, float),
    };
    memcpy(slots, t, sizeof t);
    return (int)(sizeof t / sizeof t[0]);
}
#undef SLOT

enum { MAX_SLOTS = 32 };

static void acts_free(gpt_acts_t **acts) {
    if (!*acts) return;
    free((*acts)->grad_mem);
    free((*acts)->mem);
    free(*acts);
    *acts = NULL;
}

/* A slab of bytes, 64-byte aligned (sgemm and vector loops like aligned rows). */
static void *slab_alloc(size_t bytes) {
    return aligned_alloc(SLAB_ALIGN, (bytes + SLAB_ALIGN - 1) / SLAB_ALIGN * SLAB_ALIGN);
}

int gpt_alloc(gpt_model_t *model, int64_t B_max, int64_t T_max, bool training, err_t *err) {
    const gpt_config_t *cfg = &model->cfg;
    if (B_max < 1 || T_max < 1 || T_max > cfg->n_positions)
        return err_setf(err, "bad batch shape %lld x %lld: need B >= 1 and 1 <= T <= n_positions %lld",
                        (long long)B_max, (long long)T_max, (long long)cfg->n_positions);
    /* cblas takes int dimensions (N = B·T rows), and the slab sizes below are size_t: refuse
     * shapes whose activations (~ rows × (V + L·(16C + NH·T)) floats) no machine could hold */
    const double rows = (double)B_max * (double)T_max;
    const double per_row = (double)cfg->vocab_size +
                           (double)cfg->n_layer * (16.0 * (double)cfg->n_embd +
                                                   (double)cfg->n_head * (double)T_max);
    if (rows > (double)INT_MAX || rows * per_row * (double)sizeof(float) > 1e15)
        return err_setf(err, "batch %lld x %lld is too large for this model",
                        (long long)B_max, (long long)T_max);
    /* Build the new buffers first and swap them in only on success: a failure changes nothing. */
    gpt_acts_t *a = calloc(1, sizeof *a);
    float *grads = NULL;
    slot_t slots[MAX_SLOTS];
    if (!a) goto oom;
    a->training = training;
    int n = act_slots(a, model, B_max, T_max, training, slots);
    if (!(a->mem = slab_alloc(carve_slab(slots, n, NULL)))) goto oom;
    carve_slab(slots, n, a->mem);
    if (training) {
        n = grad_slots(a, model, B_max, T_max, slots);
        if (!(a->grad_mem = slab_alloc(carve_slab(slots, n, NULL)))) goto oom;
        carve_slab(slots, n, (char *)a->grad_mem);
        /* the gradient slab is allocated once and kept (its address is stable: the optimizer
         * holds it), zeroed */
        if (!model->grads_mem && !(grads = calloc((size_t)model->num_params, sizeof(float))))
            goto oom;
    }
    acts_free(&model->acts);
    model->acts = a;
    if (grads) {
        model->grads_mem = grads;
        carve(&model->grads, grads, cfg, model->head);
    }
    model->B_max = B_max;
    model->T_max = T_max;
    model->B = model->T = 0;
    model->logits = a->logits;
    model->values = a->values;
    return 0;
oom:
    acts_free(&a);
    free(grads);
    return err_setf(err, "out of memory for activations of a %lld x %lld batch%s",
                    (long long)B_max, (long long)T_max, training ? " (training)" : "");
}

/* ---- forward ------------------------------------------------------------------------------ */

/* Layer l's activations for the current N = B·T rows (layer 0's buffers when not training). */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *res2, *ln2, *ln2_mean, *ln2_rstd,
        *fch, *fch_gelu, *res3;
} layer_acts_t;

static layer_acts_t layer_acts(const gpt_model_t *m, int64_t l) {
    const gpt_acts_t *a = m->acts;
    const int64_t C = m->cfg.n_embd, NH = m->cfg.n_head, B = m->B, T = m->T, N = B * T;
    const int64_t k = a->training ? l : 0;
    return (layer_acts_t){
        .ln1 = a->ln1 + k * N * C, .ln1_mean = a->ln1_mean + k * N,
        .ln1_rstd = a->ln1_rstd + k * N, .qkv = a->qkv + k * N * 3 * C,
        .atty = a->atty + k * N * C, .att = a->att + k * B * NH * T * T,
        .res2 = a->res2 + k * N * C, .ln2 = a->ln2 + k * N * C,
        .ln2_mean = a->ln2_mean + k * N, .ln2_rstd = a->ln2_rstd + k * N,
        .fch = a->fch + k * N * 4 * C, .fch_gelu = a->fch_gelu + k * N * 4 * C,
        .res3 = a->res3 + k * N * C,
    };
}

void gpt_forward(gpt_model_t *model, const int32_t *tokens, int64_t B, int64_t T) {
    gpt_acts_t *a = model->acts;
    assert(a && B >= 1 && T >= 1 && B <= model->B_max && T <= model->T_max);
    const gpt_config_t *cfg = &model->cfg;
    const gpt_params_t *p = &model->params;
    const int64_t C = cfg->n_embd, NH = cfg->n_head, L = cfg->n_layer, V = cfg->vocab_size;
    const int64_t N = B * T;
    model->B = B;
    model->T = T;
    a->have_logprobs = false;
    for (int64_t n = 0; n < N; n++) assert(tokens[n] >= 0 && tokens[n] < V);
    memcpy(a->tokens, tokens, (size_t)N * sizeof(int32_t));
    ops_encoder_forward(a->encoded, a->tokens, p->wte, p->wpe, B, T, C);
    const float *residual = a->encoded;
    for (int64_t l = 0; l < L; l++) {
        const layer_acts_t y = layer_acts(model, l);
        const gpt_layer_t w = gpt_layer(p, cfg, l);
        ops_layernorm_forward(y.ln1, y.ln1_mean, y.ln1_rstd, residual, w.ln1w, w.ln1b, N, C,
                              cfg->ln_eps);
        ops_matmul_forward(y.qkv, y.ln1, w.qkvw, w.qkvb, N, C, 3 * C);
        ops_attention_forward(y.atty, y.att, y.qkv, B, T, C, NH);
        ops_matmul_forward(a->proj, y.atty, w.attprojw, w.attprojb, N, C, C);
        ops_residual_forward(y.res2, residual, a->proj, N * C);
        ops_layernorm_forward(y.ln2, y.ln2_mean, y.ln2_rstd, y.res2, w.ln2w, w.ln2b, N, C,
                              cfg->ln_eps);
        ops_matmul_forward(y.fch, y.ln2, w.fcw, w.fcb, N, C, 4 * C);
        ops_gelu_forward(y.fch_gelu, y.fch, N * 4 * C);
        ops_matmul_forward(a->proj, y.fch_gelu, w.fcprojw, w.fcprojb, N, 4 * C, C);
        ops_residual_forward(y.res3, y.res2, a->proj, N * C);
        residual = y.res3;
    }
    ops_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, residual, p->lnfw, p->lnfb, N, C,
                          cfg->ln_eps);
    if (model->head == GPT_HEAD_LM)
        ops_lmhead_forward(a->logits, a->lnf, p->wte, N, C, V);
    else /* (N×C)·(C×1) */
        ops_matmul_forward(a->values, a->lnf, p->scorew, NULL, N, C, 1);
}

/* ---- heads -------------------------------------------------------------------------------- */

double gpt_lm_logprobs(gpt_model_t *model, const int32_t *targets, float temperature,
                       float *logp) {
    gpt_acts_t *a = model->acts;
    assert(model->head == GPT_HEAD_LM && model->B > 0 && temperature > 0.0f);
    const int64_t N = model->B * model->T;
    for (int64_t n = 0; n < N; n++) assert(targets[n] < model->cfg.vocab_size);
    memcpy(a->targets, targets, (size_t)N * sizeof(int32_t));
    model->temperature = temperature;
    a->have_logprobs = true;
    ops_logsoftmax_forward(logp, a->lse, a->logits, a->targets, N, model->cfg.vocab_size,
                           temperature);
    double sum = 0.0;
    for (int64_t n = 0; n < N; n++) sum += (double)logp[n];
    return sum;
}

float gpt_lm_loss(gpt_model_t *model, const int32_t *tokens, const int32_t *targets, int64_t B,
                  int64_t T) {
    gpt_forward(model, tokens, B, T);
    const double sum = gpt_lm_logprobs(model, targets, 1.0f, model->acts->logp);
    int64_t kept = 0;
    for (int64_t n = 0; n < B * T; n++) kept += targets[n] >= 0;
    return kept ? (float)(-sum / (double)kept) : 0.0f;
}

void gpt_score_at(const gpt_model_t *model, const int64_t *lengths, float *rewards) {
    assert(model->head == GPT_HEAD_SCORE && model->B > 0);
    for (int64_t b = 0; b < model->B; b++) {
        assert(lengths[b] >= 1 && lengths[b] <= model->T);
        rewards[b] = model->values[b * model->T + lengths[b] - 1];
    }
}

/* ---- backward ----------------------------------------------------------------------------- */

/* Zeroes n floats with all threads (the slabs are hundreds of MB at 124M). */
static void zero_floats(float *x, int64_t n) {
    enum { CHUNK = 1 << 16 };
    const int64_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < chunks; i++) {
        const int64_t begin = i * CHUNK, len = n - begin < CHUNK ? n - begin : CHUNK;
        memset(x + begin, 0, (size_t)len * sizeof(float));
    }
}

void gpt_zero_grad(gpt_model_t *model) {
    if (model->grads_mem) zero_floats(model->grads_mem, model->num_params);
}

void gpt_backward(gpt_model_t *model, const float *dout) {
    gpt_acts_t *a = model->acts;
    assert(a && a->training && model->grads_mem && model->B > 0);
    const gpt_config_t *cfg = &model->cfg;
    const gpt_params_t *p = &model->params, *g = &model->grads;
    const int64_t C = cfg->n_embd, NH = cfg->n_head, L = cfg->n_layer, V = cfg->vocab_size;
    const int64_t B = model->B, T = model->T, N = B * T;
    /* the head: d ln_f output */
    zero_floats(a->dln, N * C);
    if (model->head == GPT_HEAD_LM) {
        assert(a->have_logprobs); /* and once per forward: the logits become dlogits */
        a->have_logprobs = false;
        /* dlogits = dlogp·(onehot - softmax)/temperature, written over the logits */
        ops_logsoftmax_backward(a->logits, dout, a->logits, a->lse, a->targets, N, V,
                                model->temperature);
        ops_lmhead_backward(a->dln, g->wte, a->logits, a->lnf, p->wte, N, C, V);
    } else { /* values = lnf·score.weight: (N×C)·(C×1) */
        ops_matmul_backward(a->dln, g->scorew, NULL, dout, a->lnf, p->scorew, N, C, 1);
    }
    zero_floats(a->dres, N * C);
    ops_layernorm_backward(a->dres, g->lnfw, g->lnfb, a->dln, layer_acts(model, L - 1).res3,
                           p->lnfw, a->lnf_mean, a->lnf_rstd, N, C);
    /* dres is d loss / d residual stream; a residual add passes it through unchanged, so each
     * branch adds its contribution into it and it flows down to the embedding. */
    for (int64_t l = L - 1; l >= 0; l--) {
        const layer_acts_t y = layer_acts(model, l);
        const gpt_layer_t w = gpt_layer(p, cfg, l), dw = gpt_layer(g, cfg, l);
        const float *residual = l == 0 ? a->encoded : layer_acts(model, l - 1).res3;
        /* res3 = res2 + c_proj(gelu(c_fc(ln2(res2)))) */
        zero_floats(a->dfch_gelu, N * 4 * C);
        ops_matmul_backward(a->dfch_gelu, dw.fcprojw, dw.fcprojb, a->dres, y.fch_gelu,
                            w.fcprojw, N, 4 * C, C);
        zero_floats(a->dfch, N * 4 * C);
        ops_gelu_backward(a->dfch, a->dfch_gelu, y.fch, N * 4 * C);
        zero_floats(a->dln, N * C);
        ops_matmul_backward(a->dln, dw.fcw, dw.fcb, a->dfch, y.ln2, w.fcw, N, C, 4 * C);
        ops_layernorm_backward(a->dres, dw.ln2w, dw.ln2b, a->dln, y.res2, w.ln2w, y.ln2_mean,
                               y.ln2_rstd, N, C);
        /* res2 = residual + c_proj(attention(c_attn(ln1(residual)))) */
        zero_floats(a->datty, N * C);
        ops_matmul_backward(a->datty, dw.attprojw, dw.attprojb, a->dres, y.atty, w.attprojw, N,
                            C, C);
        zero_floats(a->dqkv, N * 3 * C);
        ops_attention_backward(a->dqkv, a->datt, a->datty, y.qkv, y.att, B, T, C, NH);
        zero_floats(a->dln, N * C);
        ops_matmul_backward(a->dln, dw.qkvw, dw.qkvb, a->dqkv, y.ln1, w.qkvw, N, C, 3 * C);
        ops_layernorm_backward(a->dres, dw.ln1w, dw.ln1b, a->dln, residual, w.ln1w, y.ln1_mean,
                               y.ln1_rstd, N, C);
    }
    ops_encoder_backward(g->wte, g->wpe, a->dres, a->tokens, B, T, C);
}

void gpt_destroy(gpt_model_t **model) {
    if (!model || !*model) return;
    gpt_model_t *m = *model;
    acts_free(&m->acts);
    free(m->grads_mem);
    free(m->params_mem);
    free(m);
    *model = NULL;
}
