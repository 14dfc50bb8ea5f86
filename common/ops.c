/* common/ops.c: GPT-2 layer math (see ops.h for the contract every op keeps).
 *
 * Shapes: B batch, T time, C channels, V vocabulary, NH heads, HS = C/NH head size,
 * N = B*T rows, OC output channels. Row-major throughout.
 *
 * Where the time goes in a GPT-2 training step: ~95% of the FLOPs are the matrix products,
 * which OpenBLAS does at close to peak when each call is big, so every product is one sgemm
 * over all N rows (attention: one per (b, head), reading q, k, v in place through leading
 * dimensions). The rest is memory-bound elementwise and row work, parallelised with OpenMP on
 * rows or on column blocks (never atomics: a loop that reduces into a shared weight gives
 * each thread its own slice of columns). No cblas call sits inside an OpenMP region, where
 * two thread pools would oversubscribe the cores — except attention's small per-head products
 * with OpenBLAS's OpenMP build (see the attention section). The transcendental functions of
 * the hot loops (GELU over 4C channels, the V-wide LM softmax, attention) go through exp_fast,
 * which the compiler vectorises (AVX2 where the CPU has it, see OPS_CLONES); glibc's
 * expf/tanhf are scalar and cost ~10% of a step. */
#include "ops.h"
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Columns per block in the column-sliced reductions (bias, LayerNorm and embedding grads):
 * 64 floats = 4 cache lines of each row per visit, enough blocks for every thread at C ≥ 128. */
enum { COL_BLOCK = 64 };

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The exp-heavy loops (GELU, the softmaxes) are compiled twice, for AVX2 and for the x86-64
 * baseline, and the loader picks one (function multi-versioning): 2-2.5x faster on those
 * loops without -march=native. AVX2 without FMA performs the same float operations in the
 * same order per element, so elementwise results are bit-identical on every machine; only the
 * lane split of a reduction's partial sums differs. Off under AddressSanitizer (ifunc
 * resolvers run before its runtime is up). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define OPS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define OPS_CLONES
#endif

/* Elements per task of the elementwise loops (64 KB of floats). */
enum { EW_CHUNK = 16384 };

/* ---- exp ---------------------------------------------------------------------------------- */

/* exp(x) within ~2 ulp for x in [-87.3, 88.7] (clamped outside, so it never returns inf or a
 * denormal): x = k·ln2 + r with |r| ≤ ln2/2 (Cody-Waite two-part ln2), exp(r) by Cephes'
 * degree-6 polynomial, times 2^k built in the exponent bits. Branch-free straight-line code,
 * so `omp simd` loops vectorise it. */
static inline float exp_fast(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.7f ? 88.7f : x;
    const float shifter = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    const float k = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* NaN passes both clamps, and converting it to int is undefined behaviour (UBSan stops
     * there); convert 0 instead: r and p are NaN already, so NaN still comes out. */
    const float k_int = k == k ? k : 0.0f;
    const int32_t bits = ((int32_t)k_int + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* ---- matmul ------------------------------------------------------------------------------- */

/* dbias[c] += Σ_n dout[n, c], each thread owning a block of columns, sums in double. */
static void column_sums(float *dbias, const float *dout, int64_t N, int64_t OC) {
    const int64_t nblocks = (OC + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int64_t c0 = blk * COL_BLOCK, width = min64(COL_BLOCK, OC - c0);
        double acc[COL_BLOCK] = {0};
        for (int64_t n = 0; n < N; n++) {
            const float *row = dout + n * OC + c0;
#pragma omp simd
            for (int64_t i = 0; i < width; i++) acc[i] += (double)row[i];
        }
        for (int64_t i = 0; i < width; i++) dbias[c0 + i] += (float)acc[i];
    }
}

void ops_matmul_forward(float *out, const float *inp, const float *w, const float *bias,
                        int64_t N, int64_t C, int64_t OC) {
    if (N == 0) return;
    /* Start from the bias and let sgemm add into it (beta 1): OpenBLAS skips its own pass
     * over out when beta is 1, so the bias costs nothing extra. */
    float beta = 0.0f;
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int64_t n = 0; n < N; n++) memcpy(out + n * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    /* (N×C)·(C×OC) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)OC, (int)C, 1.0f, inp,
                (int)C, w, (int)OC, beta, out, (int)OC);
}

void ops_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout,
                         const float *inp, const float *w, int64_t N, int64_t C, int64_t OC) {
    if (N == 0) return;
    /* in the forward pass: out = inp·w + bias */
    if (dinp) /* (N×OC)·(OC×C): w transposed */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)C, (int)OC, 1.0f, dout,
                    (int)OC, w, (int)OC, 1.0f, dinp, (int)C);
    if (dw) /* (C×N)·(N×OC): inp transposed */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)C, (int)OC, (int)N, 1.0f, inp,
                    (int)C, dout, (int)OC, 1.0f, dw, (int)OC);
    if (dbias) column_sums(dbias, dout, N, OC);
}

void ops_lmhead_forward(float *logits, const float *inp, const float *wte, int64_t N,
                        int64_t C, int64_t V) {
    if (N == 0) return;
    /* (N×C)·(C×V): wte (V×C) transposed */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)V, (int)C, 1.0f, inp,
                (int)C, wte, (int)C, 0.0f, logits, (int)V);
}

void ops_lmhead_backward(float *dinp, float *dwte, const float *dlogits, const float *inp,
                         const float *wte, int64_t N, int64_t C, int64_t V) {
    if (N == 0) return;
    /* in the forward pass: logits = inp·wteᵀ */
    if (dinp) /* (N×V)·(V×C) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)C, (int)V, 1.0f,
                    dlogits, (int)V, wte, (int)C, 1.0f, dinp, (int)C);
    if (dwte) /* (V×N)·(N×C): dlogits transposed */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)V, (int)C, (int)N, 1.0f,
                    dlogits, (int)V, inp, (int)C, 1.0f, dwte, (int)C);
}

/* ---- layernorm ---------------------------------------------------------------------------- */

void ops_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        float *yr = y + n * C;
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < C; c++) sum += (double)xr[c];
        const float m = (float)(sum / (double)C);
        double var = 0.0;
#pragma omp simd reduction(+ : var)
        for (int64_t c = 0; c < C; c++) {
            const float d = xr[c] - m;
            var += (double)(d * d);
        }
        /* biased variance, as torch.nn.LayerNorm */
        const float s = (float)(1.0 / sqrt(var / (double)C + (double)eps));
        for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - m) * s * w[c] + b[c];
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = s;
    }
}

void ops_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, const float *mean, const float *rstd, int64_t N,
                            int64_t C) {
    /* in the forward pass: norm = (x - mean)·rstd; y = norm·w + b.
     * Pass 1, per row: dx += rstd·(w·dy - mean_c(w·dy) - norm·mean_c(w·dy·norm)). */
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            const float *xr = x + n * C, *dyr = dy + n * C;
            float *dxr = dx + n * C;
            const float m = mean[n], s = rstd[n];
            double sum_g = 0.0, sum_gn = 0.0;
#pragma omp simd reduction(+ : sum_g, sum_gn)
            for (int64_t c = 0; c < C; c++) {
                const float g = w[c] * dyr[c];
                sum_g += (double)g;
                sum_gn += (double)(g * ((xr[c] - m) * s));
            }
            const float mg = (float)(sum_g / (double)C), mgn = (float)(sum_gn / (double)C);
            for (int64_t c = 0; c < C; c++) {
                const float norm = (xr[c] - m) * s;
                dxr[c] += (w[c] * dyr[c] - mg - norm * mgn) * s;
            }
        }
    }
    /* Pass 2, per column block (weights are shared by all rows): dw += Σ dy·norm, db += Σ dy. */
    if (!dw && !db) return;
    const int64_t nblocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int64_t c0 = blk * COL_BLOCK, width = min64(COL_BLOCK, C - c0);
        double acc_w[COL_BLOCK] = {0}, acc_b[COL_BLOCK] = {0};
        for (int64_t n = 0; n < N; n++) {
            const float *xr = x + n * C + c0, *dyr = dy + n * C + c0;
            const float m = mean[n], s = rstd[n];
#pragma omp simd
            for (int64_t i = 0; i < width; i++) {
                acc_w[i] += (double)(dyr[i] * ((xr[i] - m) * s));
                acc_b[i] += (double)dyr[i];
            }
        }
        for (int64_t i = 0; i < width; i++) {
            if (dw) dw[c0 + i] += (float)acc_w[i];
            if (db) db[c0 + i] += (float)acc_b[i];
        }
    }
}

/* ---- gelu --------------------------------------------------------------------------------- */

/* GPT-2's gelu_new: 0.5·x·(1 + tanh(u)), u = sqrt(2/π)·(x + 0.044715·x³). Since
 * 0.5·(1 + tanh(u)) = σ(2u) = 1/(1 + exp(-2u)), this is x·σ(2u): one exp, no cancellation. */
#define GELU_SCALE 0.7978845608028654f /* sqrt(2/π) */
#define GELU_CUBIC 0.044715f

static OPS_CLONES void gelu_forward_range(float *out, const float *inp, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float x = inp[i];
        const float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        out[i] = x / (1.0f + exp_fast(-2.0f * u));
    }
}

void ops_gelu_forward(float *out, const float *inp, int64_t n) {
    const int64_t chunks = (n + EW_CHUNK - 1) / EW_CHUNK;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; c++)
        gelu_forward_range(out + c * EW_CHUNK, inp + c * EW_CHUNK, min64(EW_CHUNK, n - c * EW_CHUNK));
}

/* d/dx x·σ(2u) = σ + x·σ·(1-σ)·2u', u' = sqrt(2/π)·(1 + 3·0.044715·x²) */
static OPS_CLONES void gelu_backward_range(float *dinp, const float *dout, const float *inp,
                                           int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float x = inp[i];
        const float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        const float sg = 1.0f / (1.0f + exp_fast(-2.0f * u));
        const float du = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
        dinp[i] += dout[i] * (sg + x * sg * (1.0f - sg) * 2.0f * du);
    }
}

void ops_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t n) {
    const int64_t chunks = (n + EW_CHUNK - 1) / EW_CHUNK;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t off = c * EW_CHUNK;
        gelu_backward_range(dinp + off, dout + off, inp + off, min64(EW_CHUNK, n - off));
    }
}

/* ---- residual ----------------------------------------------------------------------------- */

void ops_residual_forward(float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void ops_residual_backward(float *da, float *db, const float *dout, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

/* ---- encoder ------------------------------------------------------------------------------ */

void ops_encoder_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                         int64_t B, int64_t T, int64_t C) {
#pragma omp parallel for schedule(static)
    for (int64_t bt = 0; bt < B * T; bt++) {
        const float *we = wte + (int64_t)tokens[bt] * C, *pe = wpe + (bt % T) * C;
        float *o = out + bt * C;
        for (int64_t c = 0; c < C; c++) o[c] = we[c] + pe[c];
    }
}

void ops_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                          int64_t B, int64_t T, int64_t C) {
    /* A token may repeat, so rows of dwte collide: split by column block instead of by row. */
    const int64_t nblocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int64_t c0 = blk * COL_BLOCK, width = min64(COL_BLOCK, C - c0);
        for (int64_t bt = 0; bt < B * T; bt++) {
            const float *d = dout + bt * C + c0;
            if (dwte) {
                float *g = dwte + (int64_t)tokens[bt] * C + c0;
                for (int64_t i = 0; i < width; i++) g[i] += d[i];
            }
            if (dwpe) {
                float *g = dwpe + (bt % T) * C + c0;
                for (int64_t i = 0; i < width; i++) g[i] += d[i];
            }
        }
    }
}

/* ---- attention ----------------------------------------------------------------------------
 * Per (b, head) the work is three or four small products (T×T×HS: 2 MFLOP at T 128, HS 64)
 * and a softmax over T rows. Handing each small sgemm to OpenBLAS's threads costs more in
 * fork/join than it computes (measured at 124M shapes, 2 threads: ~10x slower than 1 thread).
 * So when OpenBLAS is its OpenMP build (openblas_get_parallel() == 2), which runs a call made
 * inside an OpenMP region on the calling thread alone, the (b, head) pairs are spread over our
 * threads and each does its products single-threaded: one thread pool, no oversubscription —
 * the reason for the rule "no cblas inside a parallel region" does not arise. With any other
 * OpenBLAS the pairs run one after another and each sgemm is threaded by OpenBLAS as usual. */

/* True when cblas calls may be made from inside our OpenMP regions (see above). */
static bool blas_nests_in_openmp(void) {
#ifdef _OPENMP
    return openblas_get_parallel() == 2;
#else
    return false;
#endif
}

/* Causal softmax in place over the T rows of one head's scores: row t over t2 ≤ t, from the
 * row max; zeros above the diagonal. */
static OPS_CLONES void causal_softmax(float *a, int64_t T) {
    for (int64_t t = 0; t < T; t++, a += T) {
        float maxv = -INFINITY;
        for (int64_t t2 = 0; t2 <= t; t2++) maxv = a[t2] > maxv ? a[t2] : maxv;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t t2 = 0; t2 <= t; t2++) {
            a[t2] = exp_fast(a[t2] - maxv);
            sum += a[t2];
        }
        const float inv = 1.0f / sum;
        for (int64_t t2 = 0; t2 <= t; t2++) a[t2] *= inv;
        for (int64_t t2 = t + 1; t2 < T; t2++) a[t2] = 0.0f;
    }
}

/* In the forward pass: a = softmax(scale·score) over t2 ≤ t. Turns d = d loss/d a into
 * d loss/d score in place: scale·a[t2]·(d[t2] - Σ_t3 a[t3]·d[t3]), 0 above the diagonal. */
static OPS_CLONES void causal_softmax_backward(float *d, const float *a, int64_t T, float scale) {
    for (int64_t t = 0; t < T; t++, a += T, d += T) {
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t t2 = 0; t2 <= t; t2++) dot += a[t2] * d[t2];
        for (int64_t t2 = 0; t2 <= t; t2++) d[t2] = scale * a[t2] * (d[t2] - dot);
        for (int64_t t2 = t + 1; t2 < T; t2++) d[t2] = 0.0f;
    }
}

void ops_attention_forward(float *out, float *att, const float *qkv, int64_t B, int64_t T,
                           int64_t C, int64_t NH) {
    const int64_t HS = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for schedule(static) if (blas_nests_in_openmp())
    for (int64_t bh = 0; bh < B * NH; bh++) {
        const int64_t b = bh / NH, h = bh % NH;
        const float *q = qkv + b * T * C3 + h * HS, *k = q + C, *v = q + 2 * C;
        float *a = att + bh * T * T;
        /* scores a[t,t2] = scale·q[t]·k[t2]: (T×HS)·(HS×T), k transposed. The upper triangle
         * is computed and then discarded: attention is a few percent of GPT-2's FLOPs, and one
         * full sgemm beats T small triangular ones. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)HS, scale, q,
                    (int)C3, k, (int)C3, 0.0f, a, (int)T);
        causal_softmax(a, T);
        /* out[t] = Σ_t2 a[t,t2]·v[t2]: (T×T)·(T×HS), into head h's columns of out */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)HS, (int)T, 1.0f, a,
                    (int)T, v, (int)C3, 0.0f, out + b * T * C + h * HS, (int)C);
    }
}

void ops_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                            const float *att, int64_t B, int64_t T, int64_t C, int64_t NH) {
    const int64_t HS = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)HS);
    /* Each (b, head) writes only its own columns of dqkv's rows of b: no two iterations
     * touch the same memory. */
#pragma omp parallel for schedule(static) if (blas_nests_in_openmp())
    for (int64_t bh = 0; bh < B * NH; bh++) {
        const int64_t b = bh / NH, h = bh % NH, off = b * T * C3 + h * HS;
        const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
        const float *dout_h = dout + b * T * C + h * HS, *a = att + bh * T * T;
        float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C, *d = datt + bh * T * T;
        /* in the forward pass: out = a·v. So da = dout·vᵀ: (T×HS)·(HS×T), and
         * dv += aᵀ·dout: (T×T)ᵀ·(T×HS). */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)HS, 1.0f,
                    dout_h, (int)C, v, (int)C3, 0.0f, d, (int)T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)HS, (int)T, 1.0f, a,
                    (int)T, dout_h, (int)C, 1.0f, dv, (int)C3);
        causal_softmax_backward(d, a, T, scale);
        /* in the forward pass: score = q·kᵀ. So dq += dscore·k: (T×T)·(T×HS), and
         * dk += dscoreᵀ·q: (T×T)ᵀ·(T×HS). */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)HS, (int)T, 1.0f, d,
                    (int)T, k, (int)C3, 1.0f, dq, (int)C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)HS, (int)T, 1.0f, d,
                    (int)T, q, (int)C3, 1.0f, dk, (int)C3);
    }
}

/* ---- log-softmax (LM head) ---------------------------------------------------------------- */

/* Chunk of a V-wide row (8 KB): its max pass and its exp pass see the same L1-resident data,
 * so a 50257-wide row streams from memory once. */
enum { SOFTMAX_CHUNK = 2048 };

/* Σ_v exp(row[v]/temperature - *maxv) in double, *maxv = max_v row[v]/temperature, in one pass
 * over memory: each chunk's sum is taken from its own max and rescaled onto the running one.
 * always_inline so that row_sumexp's call with the constant 1.0f drops the division. */
static inline __attribute__((always_inline)) double sumexp_at(const float *row, int64_t V,
                                                              float temperature, float *maxv) {
    float m = -INFINITY;
    double sum = 0.0;
    for (int64_t c0 = 0; c0 < V; c0 += SOFTMAX_CHUNK) {
        const float *x = row + c0;
        const int64_t len = min64(SOFTMAX_CHUNK, V - c0);
        float cmax = -INFINITY;
#pragma omp simd reduction(max : cmax)
        for (int64_t i = 0; i < len; i++) {
            const float z = x[i] / temperature;
            cmax = z > cmax ? z : cmax;
        }
        double csum = 0.0;
#pragma omp simd reduction(+ : csum)
        for (int64_t i = 0; i < len; i++) csum += (double)exp_fast(x[i] / temperature - cmax);
        if (cmax > m) {
            sum = sum * exp((double)m - (double)cmax) + csum; /* exp(-inf) = 0 at the start */
            m = cmax;
        } else {
            sum += csum * exp((double)cmax - (double)m);
        }
    }
    *maxv = m;
    return sum;
}

static OPS_CLONES double row_sumexp(const float *row, int64_t V, float temperature,
                                    float *maxv) {
    return temperature == 1.0f ? sumexp_at(row, V, 1.0f, maxv)
                               : sumexp_at(row, V, temperature, maxv);
}

void ops_logsoftmax_forward(float *logp, float *lse, const float *logits, const int32_t *targets,
                            int64_t N, int64_t V, float temperature) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        if (targets[n] < 0) {
            logp[n] = 0.0f;
            lse[n] = 0.0f;
            continue;
        }
        const float *row = logits + n * V;
        float maxv;
        const double sum = row_sumexp(row, V, temperature, &maxv);
        lse[n] = maxv + (float)log(sum);
        logp[n] = (float)((double)(row[targets[n]] / temperature) - (double)maxv - log(sum));
    }
}

/* drow[v] = -g·exp(row[v]/temperature - m), specialised for temperature 1 like row_sumexp */
static inline __attribute__((always_inline)) void neg_softmax_at(float *drow, const float *row,
                                                                 int64_t V, float temperature,
                                                                 float g, float m) {
#pragma omp simd
    for (int64_t v = 0; v < V; v++) drow[v] = -g * exp_fast(row[v] / temperature - m);
}

static OPS_CLONES void row_neg_softmax(float *drow, const float *row, int64_t V,
                                       float temperature, float g, float m) {
    if (temperature == 1.0f) neg_softmax_at(drow, row, V, 1.0f, g, m);
    else neg_softmax_at(drow, row, V, temperature, g, m);
}

void ops_logsoftmax_backward(float *dlogits, const float *dlogp, const float *logits,
                             const float *lse, const int32_t *targets, int64_t N, int64_t V,
                             float temperature) {
    /* in the forward pass: logp = z[target] - lse, z = logits/temperature. So
     * dz[v] = dlogp·(1[v == target] - exp(z[v] - lse)), dlogits = dz/temperature. */
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *row = logits + n * V;
        float *drow = dlogits + n * V;
        if (targets[n] < 0) {
            memset(drow, 0, (size_t)V * sizeof(float));
            continue;
        }
        const float g = dlogp[n] / temperature, m = lse[n];
        row_neg_softmax(drow, row, V, temperature, g, m);
        drow[targets[n]] += g;
    }
}

/* ---- entropy ------------------------------------------------------------------------------ */

static OPS_CLONES float row_entropy(const float *row, int64_t V, float temperature) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t v = 0; v < V; v++) m = row[v] > m ? row[v] : m;
    double sum = 0.0, dot = 0.0; /* Σ e^y, Σ e^y·y */
#pragma omp simd reduction(+ : sum, dot)
    for (int64_t v = 0; v < V; v++) {
        const float y = (row[v] - m) / temperature, e = exp_fast(y);
        sum += (double)e;
        dot += (double)(e * y);
    }
    return (float)(log(sum) - dot / sum);
}

void ops_entropy(float *ent, const float *logits, const int32_t *mask, int64_t N, int64_t V,
                 float temperature) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++)
        ent[n] = mask[n] < 0 ? 0.0f : row_entropy(logits + n * V, V, temperature);
}

/* ---- threads ------------------------------------------------------------------------------ */

void ops_set_threads(int n) {
    if (n < 1) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int ops_get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
