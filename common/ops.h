/* common/ops.h: GPT-2 layer math as _forward/_backward pairs on caller-owned buffers.
 * Contract: no op allocates, prints or fails (gpt_alloc checked the shapes); forward
 * overwrites its outputs; backward ADDS into every d* buffer, so the caller zeroes grads once
 * per step. Row-major: N rows (B*T flattened) of C channels. Matrix products go through
 * cblas_sgemm; the remaining loops use OpenMP (never cblas inside a parallel region).
 * Vocabulary: B batch, T time, C channels, V vocabulary, NH heads, HS head size, N = B*T, OC
 * output channels. Conv1D weights are stored (in, out) = (C, OC), as GPT-2 files hold them. */
#ifndef RLHF_OPS_H
#define RLHF_OPS_H
#include <stdint.h>

/* out(N×OC) = inp(N×C) · w(C×OC) + bias(OC). bias may be NULL. */
void ops_matmul_forward(float *out, const float *inp, const float *w, const float *bias,
                        int64_t N, int64_t C, int64_t OC);
/* dinp += dout·wᵀ, dw += inpᵀ·dout, dbias += Σ_rows dout. Any of dinp, dw, dbias may be NULL
 * (skipped: a frozen weight or the embedding input needs no gradient). */
void ops_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout,
                         const float *inp, const float *w, int64_t N, int64_t C, int64_t OC);

/* logits(N×V) = inp(N×C) · wteᵀ (wte is V×C): the LM head tied to the token embedding. */
void ops_lmhead_forward(float *logits, const float *inp, const float *wte, int64_t N,
                        int64_t C, int64_t V);
/* dinp += dlogits·wte, dwte += dlogitsᵀ·inp. dinp or dwte may be NULL. */
void ops_lmhead_backward(float *dinp, float *dwte, const float *dlogits, const float *inp,
                         const float *wte, int64_t N, int64_t C, int64_t V);

/* y = (x - mean) * rstd * w + b per row; saves mean[N], rstd[N] for backward (either may be
 * NULL at inference). eps is config.json's layer_norm_epsilon. */
void ops_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, int64_t N, int64_t C, float eps);
void ops_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, const float *mean, const float *rstd, int64_t N,
                            int64_t C);

/* GELU, tanh approximation (GPT-2's "gelu_new"), elementwise over n values. */
void ops_gelu_forward(float *out, const float *inp, int64_t n);
void ops_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t n);

/* out = a + b elementwise over n values; backward adds dout into da and db. */
void ops_residual_forward(float *out, const float *a, const float *b, int64_t n);
void ops_residual_backward(float *da, float *db, const float *dout, int64_t n);

/* Further ops (encoder, attention, softmax + cross-entropy) are declared below by the module
 * that implements them, each with its shape comment. */
#endif /* RLHF_OPS_H */
