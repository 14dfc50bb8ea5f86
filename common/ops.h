/* common/ops.h: GPT-2 layer math as _forward/_backward pairs on caller-owned buffers.
 * Contract: no op allocates, prints or fails (gpt_alloc checked the shapes); forward
 * overwrites its outputs; backward ADDS into every d* buffer, so the caller zeroes grads once
 * per step. Row-major: N rows (B*T flattened) of C channels. Matrix products go through
 * cblas_sgemm; the remaining loops use OpenMP. No cblas call inside a parallel region, with one
 * exception: attention's small per-head products, and only when OpenBLAS is its OpenMP build,
 * which runs such calls single-threaded (see ops.c).
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

/* out(B,T,C) = wte[tokens[b,t]] + wpe[t]: token plus position embedding. Position ids are
 * always 0..T-1 (right padding never shifts them). tokens in [0, V). */
void ops_encoder_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                         int64_t B, int64_t T, int64_t C);
/* dwte[tokens[b,t]] += dout[b,t], dwpe[t] += dout[b,t]. Either of dwte, dwpe may be NULL. */
void ops_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                          int64_t B, int64_t T, int64_t C);

/* Causal multi-head self-attention on the fused projection qkv(B,T,3C) = [q | k | v], each C
 * wide and split into NH heads of HS = C/NH: out(B,T,C) = softmax(q·kᵀ/sqrt(HS), causal)·v,
 * heads side by side. att(B,NH,T,T) keeps the probabilities for backward (0 above the
 * diagonal). Products are cblas_sgemm calls per (b, head) reading q, k, v in place. */
void ops_attention_forward(float *out, float *att, const float *qkv, int64_t B, int64_t T,
                           int64_t C, int64_t NH);
/* dqkv += d(out)/d(qkv)ᵀ·dout. datt(B,NH,T,T) is scratch: overwritten, not accumulated. */
void ops_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                            const float *att, int64_t B, int64_t T, int64_t C, int64_t NH);

/* The LM head's log-softmax at a temperature, for cross-entropy and PPO log-probs:
 * logp[n] = log softmax(logits[n,:] / temperature)[targets[n]] over N rows of V logits, with
 * the row max (from -INFINITY) subtracted and the sum of exponentials in double. Rows with
 * targets[n] < 0 are masked: logp[n] = 0. lse[n] keeps max + log Σ exp (of the scaled row)
 * for backward. logits is not modified. */
void ops_logsoftmax_forward(float *logp, float *lse, const float *logits, const int32_t *targets,
                            int64_t N, int64_t V, float temperature);
/* dlogits[n,v] = dlogp[n] · (1[v == targets[n]] - softmax(logits[n,:]/temperature)[v]) /
 * temperature, 0 on masked rows. The one backward that WRITES instead of adding: dlogits may
 * be logits itself, so the (N, V) buffer is reused in place (V = 50257 makes a second one
 * costly). */
void ops_logsoftmax_backward(float *dlogits, const float *dlogp, const float *logits,
                             const float *lse, const int32_t *targets, int64_t N, int64_t V,
                             float temperature);

/* Entropy in nats of softmax(logits[n,:] / temperature) for the rows with mask[n] >= 0 (ent[n]
 * = 0 elsewhere): H = log Σ exp(y) − Σ softmax·y with y = (logits − max) / temperature, sums
 * in double. A statistic (PPO's policy entropy), so it has no backward. */
void ops_entropy(float *ent, const float *logits, const int32_t *mask, int64_t N, int64_t V,
                 float temperature);

/* Sets the threads of OpenMP loops and of OpenBLAS together (`--threads N`); n < 1 leaves the
 * defaults (OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, else every core). Process-wide: call it
 * from main before any model runs. */
void ops_set_threads(int n);
/* Threads OpenMP loops will use (1 when built without OpenMP). */
int ops_get_threads(void);
#endif /* RLHF_OPS_H */
