/* common/optim.h: AdamW exactly as torch.optim.AdamW computes it, a warmup + cosine
 * learning-rate schedule, and global-norm gradient clipping, over a model's flat slabs.
 * Owns: the moment slabs m and v (one allocation each, the model's parameter layout) and a
 * small scratch for the norm, all allocated in optim_new; a step allocates nothing.
 * Threading: the loops use OpenMP; results do not depend on the number of threads.
 * Fails: optim_new only (NULL with err set); the step, the schedule and clipping cannot fail. */
#ifndef RLHF_OPTIM_H
#define RLHF_OPTIM_H
#include "err.h"
#include "gpt.h"
#include "state.h"
#include <stdbool.h>
#include <stdint.h>

/* Hyperparameters are doubles, as torch's are Python floats: 1 − β2 computed from a float
 * 0.999f would be off by 1e-5 relative. */
typedef struct {
    double beta1;        /* first-moment decay: 0.9 (torch default) */
    double beta2;        /* second-moment decay: 0.999 (torch default; GPT-2 runs often 0.95) */
    double eps;          /* added to sqrt(v̂): 1e-8 */
    double weight_decay; /* decoupled, p -= lr·wd·p, only on tensors with 2 or more dims
                            (weights and embeddings; never biases or LayerNorm) */
} optim_config_t;

/* beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 0.1 (InstructGPT's SFT/RM setting and the
 * fixture's; torch's own default is 0.01). */
optim_config_t optim_config_default(void);

/* A contiguous run of the slab that decays (or not). */
typedef struct {
    int64_t begin, end; /* float offsets into the slab, [begin, end) */
    bool decay;
} optim_range_t;

typedef struct {
    optim_config_t cfg;
    int64_t n;    /* floats in each slab: the model's num_params */
    float *m;     /* (n) first moments, zeroed by optim_new */
    float *v;     /* (n) second moments, zeroed by optim_new */
    int64_t step; /* updates done so far; the next optim_step is update step + 1 */
    int nranges;  /* the slab as runs of decay / no decay, in slab order */
    optim_range_t *ranges;
    int64_t nchunks;  /* fixed chunks of the norm, so its sum order never changes */
    double *partials; /* (nchunks) scratch for optim_clip_grad_norm */
} optim_t;

/* An optimizer for model's parameter slab (layout and decay flags from gpt_tensors; the
 * model needs no gradient slab yet). Caller frees with optim_destroy. NULL with err set on a
 * bad config or out of memory. */
optim_t *optim_new(const gpt_model_t *model, const optim_config_t *cfg, err_t *err);

/* Frees m, v and the scratch, and NULLs *opt; accepts NULL and *opt == NULL. */
void optim_destroy(optim_t **opt);

/* One AdamW update of params (n floats) from grads, at learning rate lr, as torch.optim.AdamW
 * (t = ++opt->step):
 *   p ← p·(1 − lr·wd)                       (tensors with 2+ dims only)
 *   m ← m + (1 − β1)(g − m),   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps)
 * One fused pass over the slab, OpenMP-parallel. Usually
 * optim_step(opt, model->params_mem, model->grads_mem, lr). */
void optim_step(optim_t *opt, float *params, const float *grads, double lr);

/* Global L2 norm of grads (opt->n floats), squares summed in double over fixed chunks (the
 * same bits whatever the thread count). When max_norm > 0 and the norm exceeds it, grads are
 * scaled by max_norm / norm, so their norm becomes max_norm (torch adds 1e-6 to the
 * denominator; we do not). Returns the norm before clipping; a non-finite norm scales
 * nothing, so the caller can stop with the last good state. */
double optim_clip_grad_norm(optim_t *opt, float *grads, double max_norm);

/* Learning-rate schedule: linear warmup, then cosine decay to lr_min. */
typedef struct {
    double lr;      /* peak learning rate, reached at the end of warmup */
    double lr_min;  /* floor the cosine ends at (0 = decay to zero) */
    int64_t warmup; /* warmup updates (0 = none) */
    int64_t total;  /* updates in the whole run; total <= warmup means no decay */
} optim_schedule_t;

/* The learning rate of update `step` (0-based: the first update is step 0):
 *   step < warmup:          lr · (step + 1) / warmup
 *   warmup <= step < total: lr_min + (lr − lr_min) · (1 + cos(π·r)) / 2,
 *                           r = (step − warmup) / (total − warmup)
 *   step >= total:          lr_min (or lr when total <= warmup). */
double optim_lr(const optim_schedule_t *sched, int64_t step);

/* The optimizer state as state sections "adam.m", "adam.v", "adam.step" (int64), each
 * pointing into opt: pass them to ckpt_state_save, or to ckpt_state_load to restore an
 * optimizer made by optim_new for the same model (lengths must match). Writes
 * OPTIM_NUM_SECTIONS entries; valid while opt lives. */
#define OPTIM_NUM_SECTIONS 3
void optim_sections(optim_t *opt, state_section_t out[OPTIM_NUM_SECTIONS]);
#endif /* RLHF_OPTIM_H */
