/* common/optim.c: AdamW, the learning-rate schedule and gradient clipping. The update follows
 * torch.optim.AdamW's single-tensor path operation by operation (lerp for m, mul + addcmul for
 * v, sqrt(v)/sqrt(bc2) + eps, addcdiv), with the scalar factors computed in double as Python
 * computes them and applied in float, so a run tracks PyTorch's to float rounding. */
#include "optim.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Norm chunk: big enough that the chunk loop is cheap, small enough to split a tiny model
 * over 2 threads. Fixed, so the summation order is the same on every machine. */
enum { NORM_CHUNK = 1 << 14 };

optim_config_t optim_config_default(void) {
    optim_config_t c = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};
    return c;
}

static int cmp_range(const void *a, const void *b) {
    const optim_range_t *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* The slab as sorted runs of decay / no decay, merged where neighbours agree. The tensor
 * table lists per-layer tensors layer by layer, but the slab stacks each kind over layers, so
 * sort by offset first. Returns the run count, or -1 if the table does not tile the slab. */
static int build_ranges(const gpt_model_t *model, optim_range_t **out) {
    const int64_t n = gpt_tensors(model, NULL, 0);
    gpt_tensor_t *t = malloc((size_t)n * sizeof *t);
    optim_range_t *r = malloc((size_t)n * sizeof *r);
    if (!t || !r) goto fail;
    gpt_tensors(model, t, n);
    for (int64_t i = 0; i < n; i++)
        r[i] = (optim_range_t){.begin = t[i].param - model->params_mem,
                               .end = t[i].param - model->params_mem + t[i].numel,
                               .decay = t[i].decay};
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (r[i].begin != (k ? r[k - 1].end : 0)) goto fail;
        if (k && r[k - 1].decay == r[i].decay)
            r[k - 1].end = r[i].end;
        else
            r[k++] = r[i];
    }
    if (!k || r[k - 1].end != model->num_params) goto fail;
    free(t);
    *out = r;
    return (int)k;
fail:
    free(t);
    free(r);
    return -1;
}

optim_t *optim_new(const gpt_model_t *model, const optim_config_t *cfg, err_t *err) {
    if (!(cfg->beta1 >= 0.0 && cfg->beta1 < 1.0 && cfg->beta2 >= 0.0 && cfg->beta2 < 1.0 &&
          cfg->eps > 0.0 && cfg->weight_decay >= 0.0 && isfinite(cfg->eps) &&
          isfinite(cfg->weight_decay))) {
        err_setf(err,
                 "AdamW: betas must be in [0, 1), eps > 0, weight decay >= 0 "
                 "(got %g, %g, %g, %g)",
                 cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay);
        return NULL;
    }
    optim_t *o = calloc(1, sizeof *o);
    if (!o) goto oom;
    o->cfg = *cfg;
    o->n = model->num_params;
    o->nchunks = (o->n + NORM_CHUNK - 1) / NORM_CHUNK;
    o->m = calloc((size_t)o->n, sizeof *o->m);
    o->v = calloc((size_t)o->n, sizeof *o->v);
    o->partials = calloc((size_t)o->nchunks + 1, sizeof *o->partials);
    if (!o->m || !o->v || !o->partials) goto oom;
    o->nranges = build_ranges(model, &o->ranges);
    if (o->nranges < 0) {
        /* gpt_tensors disagrees with the slab: a bug in gpt.c, not bad input */
        err_setf(err, "AdamW: the model's tensor table does not cover its parameter slab");
        optim_destroy(&o);
        return NULL;
    }
    return o;
oom:
    err_setf(err, "out of memory for AdamW moments of %lld parameters",
             (long long)model->num_params);
    optim_destroy(&o);
    return NULL;
}

void optim_destroy(optim_t **opt) {
    if (!opt || !*opt) return;
    optim_t *o = *opt;
    free(o->m);
    free(o->v);
    free(o->ranges);
    free(o->partials);
    free(o);
    *opt = NULL;
}

void optim_step(optim_t *opt, float *params, const float *grads, double lr) {
    const optim_config_t *c = &opt->cfg;
    opt->step++;
    const double t = (double)opt->step;
    /* Scalars as torch computes them in Python (double), then used by float kernels. */
    const float step_size = (float)(lr / (1.0 - pow(c->beta1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(c->beta2, t));
    const float keep = (float)(1.0 - lr * c->weight_decay);
    const float w1 = (float)(1.0 - c->beta1), w2 = (float)(1.0 - c->beta2);
    const float b2 = (float)c->beta2, eps = (float)c->eps;
    float *restrict m = opt->m, *restrict v = opt->v;
#pragma omp parallel
    for (int r = 0; r < opt->nranges; r++) {
        const optim_range_t rg = opt->ranges[r];
        const float scale = rg.decay ? keep : 1.0f;
#pragma omp for simd schedule(static) nowait
        for (int64_t i = rg.begin; i < rg.end; i++) {
            const float g = grads[i];
            const float p = params[i] * scale;
            /* torch.lerp(m, g, w1) with w1 < 0.5: m + w1·(g − m) */
            const float mi = m[i] + w1 * (g - m[i]);
            const float vi = v[i] * b2 + w2 * g * g;
            const float denom = sqrtf(vi) / bc2_sqrt + eps;
            params[i] = p + -step_size * (mi / denom);
            m[i] = mi;
            v[i] = vi;
        }
    }
}

double optim_clip_grad_norm(optim_t *opt, float *grads, double max_norm) {
    const int64_t n = opt->n, nchunks = opt->nchunks;
    double *partials = opt->partials;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t end = (k + 1) * NORM_CHUNK < n ? (k + 1) * NORM_CHUNK : n;
        /* Four running sums, combined in a fixed order: vectorizes without -ffast-math. */
        double s[4] = {0.0, 0.0, 0.0, 0.0};
        int64_t i = k * NORM_CHUNK;
        for (; i + 4 <= end; i += 4)
            for (int j = 0; j < 4; j++) s[j] += (double)grads[i + j] * (double)grads[i + j];
        for (; i < end; i++) s[0] += (double)grads[i] * (double)grads[i];
        partials[k] = (s[0] + s[1]) + (s[2] + s[3]);
    }
    double sum = 0.0;
    for (int64_t k = 0; k < nchunks; k++) sum += partials[k];
    const double norm = sqrt(sum);
    if (max_norm > 0.0 && isfinite(norm) && norm > max_norm) {
        const float scale = (float)(max_norm / norm);
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) grads[i] *= scale;
    }
    return norm;
}

double optim_lr(const optim_schedule_t *s, int64_t step) {
    if (step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    if (s->total <= s->warmup) return s->lr;
    if (step >= s->total) return s->lr_min;
    const double ratio = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    const double pi = 3.14159265358979323846;
    return s->lr_min + 0.5 * (1.0 + cos(pi * ratio)) * (s->lr - s->lr_min);
}

void optim_sections(optim_t *opt, state_section_t out[OPTIM_NUM_SECTIONS]) {
    out[0] = (state_section_t){"adam.m", opt->m, (size_t)opt->n * sizeof *opt->m};
    out[1] = (state_section_t){"adam.v", opt->v, (size_t)opt->n * sizeof *opt->v};
    out[2] = (state_section_t){"adam.step", &opt->step, sizeof opt->step};
}
