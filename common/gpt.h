/* common/gpt.h: a GPT-2 model — config, one parameter slab, one gradient slab, activations
 * sized once for (B_max, T_max), forward, backward, and its heads.
 * Owns: every buffer of one model (params, grads, activations); nothing is allocated after
 * gpt_alloc, so a training step never calls malloc. Not thread-safe per model; several models
 * (policy, reference, value) may live side by side: there is no global state.
 * Fails: constructors return NULL / -1 with err set; compute functions cannot fail.
 * Padding convention: sequences are RIGHT-padded, so position ids are always 0..T-1 and a
 * token never attends to padding (causal); a row's real length is passed where it matters. */
#ifndef RLHF_GPT_H
#define RLHF_GPT_H
#include "err.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t vocab_size;  /* V: config.json vocab_size */
    int64_t n_positions; /* T_max the position table holds: config.json n_positions */
    int64_t n_layer;     /* L */
    int64_t n_head;      /* NH; n_embd % n_head == 0 */
    int64_t n_embd;      /* C */
    float ln_eps;        /* layer_norm_epsilon, 1e-5 in GPT-2 */
} gpt_config_t;

typedef enum {
    GPT_HEAD_LM = 0,    /* logits = h · wteᵀ (tied): policy, SFT, reference (GPT2LMHeadModel) */
    GPT_HEAD_SCORE = 1, /* one scalar per token = h · score.weight: reward model (read at the
                           last non-pad token) and value model (read per token);
                           GPT2ForSequenceClassification with num_labels 1, no bias */
} gpt_head_t;

/* How gpt_init_random fills a tensor (GPT-2's initialisation). */
typedef enum {
    GPT_INIT_ZEROS = 0,   /* biases */
    GPT_INIT_ONES = 1,    /* LayerNorm weights */
    GPT_INIT_NORMAL = 2,  /* N(0, 0.02): embeddings, weights, score.weight */
    GPT_INIT_RESIDUAL = 3 /* N(0, 0.02/sqrt(2L)): the projections that add into the residual
                             stream, so its variance does not grow with depth */
} gpt_init_t;

/* GPT_PARAMS is the parameter layout, written once. Everything about the parameters derives
 * from it: the fields of gpt_params_t and gpt_layer_t, the slab order (views are carved in
 * row order; gradients and AdamW moments share it), gpt_tensors' names, shapes and decay
 * flags, and gpt_init_random (which draws in row order). Each row is
 *     KIND(field, name, d0, d1, decay, init)
 * KIND   ONCE: one tensor. LAYER: one per layer, stacked in the slab (qkvw is (L, C, 3C),
 *        layer l's at qkvw + l·C·3C) and named "h.<l>.<name>"; the LAYER rows are contiguous
 *        and in Hugging Face's order within a block. SCORE: score head only (last; the view
 *        is NULL on an LM head). An expansion passes one macro per kind.
 * field  the member of gpt_params_t (and of gpt_layer_t for LAYER rows); wte is also the LM
 *        head (tied)
 * name   the Hugging Face name (without the "transformer." prefix of score models)
 * d0, d1 one tensor's shape as model.safetensors holds it: Conv1D weights are (in, out); d1 is
 *        0 for a 1-dim tensor. Written in V (vocab_size), NPOS (n_positions) and C (n_embd):
 *        whoever expands d0, d1 defines those three names.
 * decay  AdamW weight decay applies (the matrices; not biases or LayerNorm)
 * init   see gpt_init_t
 * score.weight is (1, C): GPT2ForSequenceClassification with num_labels 1, no bias. */
#define GPT_PARAMS(ONCE, LAYER, SCORE)                                                             \
    ONCE(wte,       "wte.weight",         V,     C,     true,  GPT_INIT_NORMAL)                    \
    ONCE(wpe,       "wpe.weight",         NPOS,  C,     true,  GPT_INIT_NORMAL)                    \
    LAYER(ln1w,     "ln_1.weight",        C,     0,     false, GPT_INIT_ONES)                      \
    LAYER(ln1b,     "ln_1.bias",          C,     0,     false, GPT_INIT_ZEROS)                     \
    LAYER(qkvw,     "attn.c_attn.weight", C,     3 * C, true,  GPT_INIT_NORMAL)                    \
    LAYER(qkvb,     "attn.c_attn.bias",   3 * C, 0,     false, GPT_INIT_ZEROS)                     \
    LAYER(attprojw, "attn.c_proj.weight", C,     C,     true,  GPT_INIT_RESIDUAL)                  \
    LAYER(attprojb, "attn.c_proj.bias",   C,     0,     false, GPT_INIT_ZEROS)                     \
    LAYER(ln2w,     "ln_2.weight",        C,     0,     false, GPT_INIT_ONES)                      \
    LAYER(ln2b,     "ln_2.bias",          C,     0,     false, GPT_INIT_ZEROS)                     \
    LAYER(fcw,      "mlp.c_fc.weight",    C,     4 * C, true,  GPT_INIT_NORMAL)                    \
    LAYER(fcb,      "mlp.c_fc.bias",      4 * C, 0,     false, GPT_INIT_ZEROS)                     \
    LAYER(fcprojw,  "mlp.c_proj.weight",  4 * C, C,     true,  GPT_INIT_RESIDUAL)                  \
    LAYER(fcprojb,  "mlp.c_proj.bias",    C,     0,     false, GPT_INIT_ZEROS)                     \
    ONCE(lnfw,      "ln_f.weight",        C,     0,     false, GPT_INIT_ONES)                      \
    ONCE(lnfb,      "ln_f.bias",          C,     0,     false, GPT_INIT_ZEROS)                     \
    SCORE(scorew,   "score.weight",       1,     C,     true,  GPT_INIT_NORMAL)

#define GPT_PARAM_FIELD_(field, ...) float *field;
#define GPT_PARAM_SKIP_(...)

/* Named views into one slab (params or grads share this layout), one per GPT_PARAMS row. */
typedef struct {
    GPT_PARAMS(GPT_PARAM_FIELD_, GPT_PARAM_FIELD_, GPT_PARAM_FIELD_)
} gpt_params_t;

/* One block's views (layer l of every LAYER row), see gpt_layer. */
typedef struct {
    GPT_PARAMS(GPT_PARAM_SKIP_, GPT_PARAM_FIELD_, GPT_PARAM_SKIP_)
} gpt_layer_t;

/* One Hugging Face tensor as a view into the slabs (see gpt_tensors). */
typedef struct {
    char name[64];    /* Hub snapshot name without prefix: "h.3.attn.c_attn.weight",
                         "wte.weight", "score.weight" */
    int ndim;         /* 1 or 2 */
    int64_t shape[2]; /* as the safetensors file holds it: c_attn.weight is (C, 3C) */
    int64_t numel;
    float *param;     /* into the parameter slab */
    float *grad;      /* into the gradient slab; NULL until gpt_alloc(.., training=true) */
    bool decay;       /* AdamW weight decay applies (GPT_PARAMS' decay column) */
} gpt_tensor_t;

typedef struct gpt_acts gpt_acts_t; /* activations; private to gpt.c */

typedef struct {
    gpt_config_t cfg;
    gpt_head_t head;
    int64_t num_params;    /* floats in each slab */
    float *params_mem;     /* the parameter slab */
    gpt_params_t params;   /* views into params_mem */
    float *grads_mem;      /* the gradient slab, same layout; NULL unless training */
    gpt_params_t grads;
    int64_t B_max, T_max;  /* what gpt_alloc sized activations for; 0 before */
    int64_t B, T;          /* shape of the last gpt_forward */
    float temperature;     /* of the last gpt_lm_logprobs (its backward divides by it) */
    gpt_acts_t *acts;      /* NULL before gpt_alloc */
    float *logits;         /* (B, T, V) after gpt_forward on an LM head; reused as dlogits */
    float *values;         /* (B, T) after gpt_forward on a score head */
} gpt_model_t;

/* Checks cfg (positive sizes, C % NH == 0) and allocates the parameter slab, zeroed.
 * Caller frees with gpt_destroy. NULL with err set on a bad config or out of memory. */
gpt_model_t *gpt_new(const gpt_config_t *cfg, gpt_head_t head, err_t *err);

/* Frees everything the model owns and NULLs *model; accepts NULL and *model == NULL. */
void gpt_destroy(gpt_model_t **model);

/* GPT-2 initialisation from seed, each tensor as GPT_PARAMS' init column says: weights
 * N(0, 0.02), residual projections (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2L)), biases 0,
 * LayerNorm weight 1, score.weight N(0, 0.02). One stream, drawn in slab order. */
void gpt_init_random(gpt_model_t *model, uint64_t seed);

/* Sizes activations once for batches up to B_max × T_max (T_max ≤ n_positions), and the
 * gradient slab plus activation gradients when training. Call again to resize (frees the old
 * buffers: not inside a step). Without training, the layers share one layer's buffers (nothing
 * is kept for backward), so an inference-only model is small. The gradient slab, once
 * allocated (zeroed), stays at the same address for the model's life (the optimizer may hold
 * it). -1 with err set on bad sizes or out of memory; the model is then unchanged. */
int gpt_alloc(gpt_model_t *model, int64_t B_max, int64_t T_max, bool training, err_t *err);

/* Layer l's views (0 <= l < L) into p, the parameters or gradients of a model with config
 * cfg (p must be carved: model->grads only once gpt_alloc(training) ran). */
gpt_layer_t gpt_layer(const gpt_params_t *p, const gpt_config_t *cfg, int64_t l);

/* The model's tensors in Hugging Face order and names (what model.safetensors holds; the
 * ckpt module adds the "transformer." prefix for score models). Writes up to cap entries to
 * out (out may be NULL to count) and returns the total count. */
int64_t gpt_tensors(const gpt_model_t *model, gpt_tensor_t *out, int64_t cap);

/* Forward over tokens (B, T), B ≤ B_max, T ≤ T_max, ids in [0, V). Fills model->logits (LM
 * head) or model->values (score head) and keeps what backward needs. */
void gpt_forward(gpt_model_t *model, const int32_t *tokens, int64_t B, int64_t T);

/* LM head, after gpt_forward: logp[b,t] = log softmax(logits[b,t,:] / temperature)[targets[b,t]]
 * for every (b, t); targets < 0 are ignored (logp 0). Double-precision row reductions.
 * Also records temperature and targets for gpt_backward. Returns Σ logp over kept targets.
 * model->logits is left as it was (may be called again, e.g. at another temperature). */
double gpt_lm_logprobs(gpt_model_t *model, const int32_t *targets, float temperature,
                       float *logp);

/* Mean next-token cross-entropy, the usual language-model loss: targets[b,t] is the token
 * that should follow position t (or < 0 to ignore it). Runs gpt_forward and gpt_lm_logprobs at
 * temperature 1 and returns -mean logp over kept targets (0 when none is kept). */
float gpt_lm_loss(gpt_model_t *model, const int32_t *tokens, const int32_t *targets, int64_t B,
                  int64_t T);

/* Zeroes the gradient slab (once per step; backward only accumulates). */
void gpt_zero_grad(gpt_model_t *model);

/* Backward from the head, accumulating into the gradient slab. Requires gpt_alloc(training).
 * LM head: dout[b,t] = dLoss/dlogp[b,t] for the logp of the last gpt_lm_logprobs (0 where the
 * target was ignored); e.g. cross-entropy gives dout = -1/count on kept targets.
 * Score head: dout[b,t] = dLoss/dvalues[b,t] (a reward model puts its gradient at each row's
 * last real token, zeros elsewhere). Overwrites model->logits with dlogits (LM head), so
 * call it once per gpt_forward. */
void gpt_backward(gpt_model_t *model, const float *dout);

/* Convenience for the reward model: values[b, lengths[b]-1] into rewards[b]. */
void gpt_score_at(const gpt_model_t *model, const int64_t *lengths, float *rewards);

/* Copies parameters from src into dst (same config; heads may differ: the trunk is copied,
 * and score.weight only when both have it). Used to make the frozen reference and to start
 * the value model from the reward model. -1 with err set on a config mismatch. */
int gpt_copy_params(gpt_model_t *dst, const gpt_model_t *src, err_t *err);
#endif /* RLHF_GPT_H */
