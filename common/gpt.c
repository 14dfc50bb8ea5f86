/* common/gpt.c: GPT-2 parameters (layout, init, HF tensor table) — the compute (activations,
 * forward, backward, heads) follows below the layout section. */
#include "gpt.h"
#include "rng.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameter layout ------------------------------------------------------------------- */

/* Number of floats in each named view, in slab order (the order of gpt_params_t). */
enum { NUM_VIEWS = 17 };
static void view_sizes(const gpt_config_t *cfg, gpt_head_t head, int64_t sizes[NUM_VIEWS]) {
    const int64_t V = cfg->vocab_size, maxT = cfg->n_positions, L = cfg->n_layer,
                  C = cfg->n_embd;
    sizes[0] = V * C;          /* wte */
    sizes[1] = maxT * C;       /* wpe */
    sizes[2] = L * C;          /* ln1w */
    sizes[3] = L * C;          /* ln1b */
    sizes[4] = L * C * 3 * C;  /* qkvw */
    sizes[5] = L * 3 * C;      /* qkvb */
    sizes[6] = L * C * C;      /* attprojw */
    sizes[7] = L * C;          /* attprojb */
    sizes[8] = L * C;          /* ln2w */
    sizes[9] = L * C;          /* ln2b */
    sizes[10] = L * C * 4 * C; /* fcw */
    sizes[11] = L * 4 * C;     /* fcb */
    sizes[12] = L * 4 * C * C; /* fcprojw */
    sizes[13] = L * C;         /* fcprojb */
    sizes[14] = C;             /* lnfw */
    sizes[15] = C;             /* lnfb */
    sizes[16] = head == GPT_HEAD_SCORE ? C : 0; /* scorew */
}

/* The views of p in slab order, as pointers to the fields. */
static void view_fields(gpt_params_t *p, float **fields[NUM_VIEWS]) {
    float **f[NUM_VIEWS] = {&p->wte,  &p->wpe,     &p->ln1w,     &p->ln1b, &p->qkvw,
                            &p->qkvb, &p->attprojw, &p->attprojb, &p->ln2w, &p->ln2b,
                            &p->fcw,  &p->fcb,     &p->fcprojw,  &p->fcprojb, &p->lnfw,
                            &p->lnfb, &p->scorew};
    memcpy(fields, f, sizeof f);
}

/* Points the views of p into mem (laid out by view_sizes); returns the total float count. */
static int64_t carve(gpt_params_t *p, float *mem, const gpt_config_t *cfg, gpt_head_t head) {
    int64_t sizes[NUM_VIEWS];
    view_sizes(cfg, head, sizes);
    float **fields[NUM_VIEWS];
    view_fields(p, fields);
    int64_t off = 0;
    for (int i = 0; i < NUM_VIEWS; i++) {
        *fields[i] = (mem && sizes[i]) ? mem + off : NULL;
        off += sizes[i];
    }
    return off;
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
    const int64_t L = cfg->n_layer;
    int64_t sizes[NUM_VIEWS];
    view_sizes(cfg, model->head, sizes);
    rng_t rng;
    rng_seed(&rng, seed);
    /* GPT-2: N(0, 0.02) weights; the two residual projections scaled by 1/sqrt(2L) so the
     * residual stream's variance does not grow with depth; biases 0, LayerNorm weight 1. */
    const float std = 0.02f, std_res = 0.02f / sqrtf(2.0f * (float)L);
    gpt_params_t p;
    carve(&p, model->params_mem, cfg, model->head);
    float **fields[NUM_VIEWS];
    view_fields(&p, fields);
    memset(model->params_mem, 0, (size_t)model->num_params * sizeof(float));
    for (int i = 0; i < NUM_VIEWS; i++) {
        const bool is_weight = i == 0 || i == 1 || i == 4 || i == 6 || i == 10 || i == 12 ||
                               i == 16;
        const bool is_ln_weight = i == 2 || i == 8 || i == 14;
        const float s = (i == 6 || i == 12) ? std_res : std;
        for (int64_t k = 0; k < sizes[i]; k++) {
            if (is_weight) (*fields[i])[k] = s * rng_normal(&rng);
            else if (is_ln_weight) (*fields[i])[k] = 1.0f;
        }
    }
}

/* One entry of the HF table: name, shape, offset of layer l inside a stacked view. */
static int64_t add_tensor(gpt_tensor_t *out, int64_t cap, int64_t n, const char *name,
                          int ndim, int64_t d0, int64_t d1, float *param, float *grad) {
    if (out && n < cap) {
        gpt_tensor_t *t = &out[n];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", name);
        t->ndim = ndim;
        t->shape[0] = d0;
        t->shape[1] = ndim == 2 ? d1 : 0;
        t->numel = ndim == 2 ? d0 * d1 : d0;
        t->param = param;
        t->grad = grad;
        t->decay = ndim == 2;
    }
    return n + 1;
}

int64_t gpt_tensors(const gpt_model_t *model, gpt_tensor_t *out, int64_t cap) {
    const gpt_config_t *cfg = &model->cfg;
    const int64_t V = cfg->vocab_size, maxT = cfg->n_positions, L = cfg->n_layer,
                  C = cfg->n_embd;
    const gpt_params_t *p = &model->params, *g = &model->grads;
    const bool has_g = model->grads_mem != NULL;
#define G(field, off) (has_g ? g->field + (off) : NULL)
    int64_t n = 0;
    n = add_tensor(out, cap, n, "wte.weight", 2, V, C, p->wte, G(wte, 0));
    n = add_tensor(out, cap, n, "wpe.weight", 2, maxT, C, p->wpe, G(wpe, 0));
    for (int64_t l = 0; l < L; l++) {
        char name[64];
#define T1(suffix, field, d0)                                                                      \
    snprintf(name, sizeof name, "h.%lld.%s", (long long)l, suffix);                              \
    n = add_tensor(out, cap, n, name, 1, d0, 0, p->field + l * (d0), G(field, l * (d0)))
#define T2(suffix, field, d0, d1)                                                                  \
    snprintf(name, sizeof name, "h.%lld.%s", (long long)l, suffix);                              \
    n = add_tensor(out, cap, n, name, 2, d0, d1, p->field + l * (d0) * (d1),                     \
                   G(field, l * (d0) * (d1)))
        T1("ln_1.weight", ln1w, C);
        T1("ln_1.bias", ln1b, C);
        T2("attn.c_attn.weight", qkvw, C, 3 * C);
        T1("attn.c_attn.bias", qkvb, 3 * C);
        T2("attn.c_proj.weight", attprojw, C, C);
        T1("attn.c_proj.bias", attprojb, C);
        T1("ln_2.weight", ln2w, C);
        T1("ln_2.bias", ln2b, C);
        T2("mlp.c_fc.weight", fcw, C, 4 * C);
        T1("mlp.c_fc.bias", fcb, 4 * C);
        T2("mlp.c_proj.weight", fcprojw, 4 * C, C);
        T1("mlp.c_proj.bias", fcprojb, C);
#undef T1
#undef T2
    }
    n = add_tensor(out, cap, n, "ln_f.weight", 1, C, 0, p->lnfw, G(lnfw, 0));
    n = add_tensor(out, cap, n, "ln_f.bias", 1, C, 0, p->lnfb, G(lnfb, 0));
    if (model->head == GPT_HEAD_SCORE)
        n = add_tensor(out, cap, n, "score.weight", 2, 1, C, p->scorew, G(scorew, 0));
#undef G
    return n;
}

int gpt_copy_params(gpt_model_t *dst, const gpt_model_t *src, err_t *err) {
    const gpt_config_t *a = &dst->cfg, *b = &src->cfg;
    if (a->vocab_size != b->vocab_size || a->n_positions != b->n_positions ||
        a->n_layer != b->n_layer || a->n_head != b->n_head || a->n_embd != b->n_embd)
        return err_setf(err, "cannot copy parameters between models of different shapes");
    /* The trunk is the same prefix of both slabs; score.weight is the last view. */
    int64_t trunk = carve(&(gpt_params_t){0}, NULL, a, GPT_HEAD_LM);
    memcpy(dst->params_mem, src->params_mem, (size_t)trunk * sizeof(float));
    if (dst->head == GPT_HEAD_SCORE && src->head == GPT_HEAD_SCORE)
        memcpy(dst->params.scorew, src->params.scorew, (size_t)a->n_embd * sizeof(float));
    return 0;
}

void gpt_destroy(gpt_model_t **model) {
    if (!model || !*model) return;
    gpt_model_t *m = *model;
    free(m->grads_mem);
    free(m->params_mem);
    free(m);
    *model = NULL;
}
