/* tests/test_ops.c: every ops backward against central finite differences, the += contract
 * (backward twice = twice the gradient), and oracle tests (cblas vs naive loops, attention vs
 * a direct double-precision softmax, GELU vs the tanh formula). */
#include "ops.h"
#include "rng.h"
#include <cblas.h>
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------ */

#define FD_STEP 1e-3f /* central differences: f(x+h) - f(x-h) over 2h */
#define FD_REL 1e-2   /* |Δ| ≤ FD_REL·|g| + FD_ABS·max|g| (issue 3) */
#define FD_ABS 1e-3

static float *randn(rng_t *rng, int64_t n, float std) {
    float *x = malloc((size_t)n * sizeof(float));
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++) x[i] = std * rng_normal(rng);
    return x;
}

static float *zeros(int64_t n) {
    float *x = calloc((size_t)n, sizeof(float));
    ck_assert_ptr_nonnull(x);
    return x;
}

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

/* Recomputes the forward pass and returns Σ out·g, the scalar whose gradient is checked. */
typedef double (*loss_fn)(void *ctx);

/* Checks the analytic gradient grad[n] of loss(ctx) w.r.t. x[n] element by element. */
static void check_grad(const char *name, float *x, const float *grad, int64_t n, loss_fn loss,
                       void *ctx) {
    double maxg = 0.0;
    for (int64_t i = 0; i < n; i++) maxg = fmax(maxg, fabs((double)grad[i]));
    ck_assert_msg(maxg > 0.0, "%s: gradient is all zero", name);
    for (int64_t i = 0; i < n; i++) {
        const float saved = x[i];
        x[i] = saved + FD_STEP;
        const float xp = x[i];
        const double lp = loss(ctx);
        x[i] = saved - FD_STEP;
        const float xm = x[i];
        const double lm = loss(ctx);
        x[i] = saved;
        const double fd = (lp - lm) / ((double)xp - (double)xm), g = grad[i];
        ck_assert_msg(fabs(fd - g) <= FD_REL * fabs(g) + FD_ABS * maxg,
                      "%s[%lld]: backward %.7g, finite difference %.7g (max |g| %.4g)", name,
                      (long long)i, g, fd, maxg);
    }
}

/* a == 2·b element by element (backward run twice accumulates). */
static void check_doubled(const char *name, const float *twice, const float *once, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(twice[i] - 2.0f * once[i]) <= 1e-5f * (1.0f + fabsf(once[i])),
                      "%s[%lld]: twice %g, once %g", name, (long long)i, (double)twice[i],
                      (double)once[i]);
}

/* ---- matmul ------------------------------------------------------------------------------- */

typedef struct {
    int64_t N, C, OC;
    float *inp, *w, *bias, *out, *g;
} mm_ctx;

static double mm_loss(void *p) {
    mm_ctx *c = p;
    ops_matmul_forward(c->out, c->inp, c->w, c->bias, c->N, c->C, c->OC);
    return dot(c->out, c->g, c->N * c->OC);
}

START_TEST(test_ops_matmul_grad) {
    rng_t rng;
    rng_seed(&rng, 1);
    mm_ctx c = {.N = 5, .C = 7, .OC = 6};
    c.inp = randn(&rng, c.N * c.C, 1.0f);
    c.w = randn(&rng, c.C * c.OC, 1.0f);
    c.bias = randn(&rng, c.OC, 1.0f);
    c.out = zeros(c.N * c.OC);
    c.g = randn(&rng, c.N * c.OC, 1.0f);
    float *dinp = zeros(c.N * c.C), *dw = zeros(c.C * c.OC), *db = zeros(c.OC);
    ops_matmul_backward(dinp, dw, db, c.g, c.inp, c.w, c.N, c.C, c.OC);
    check_grad("matmul dinp", c.inp, dinp, c.N * c.C, mm_loss, &c);
    check_grad("matmul dw", c.w, dw, c.C * c.OC, mm_loss, &c);
    check_grad("matmul dbias", c.bias, db, c.OC, mm_loss, &c);
    float *dinp2 = zeros(c.N * c.C), *dw2 = zeros(c.C * c.OC), *db2 = zeros(c.OC);
    for (int r = 0; r < 2; r++)
        ops_matmul_backward(dinp2, dw2, db2, c.g, c.inp, c.w, c.N, c.C, c.OC);
    check_doubled("matmul dinp", dinp2, dinp, c.N * c.C);
    check_doubled("matmul dw", dw2, dw, c.C * c.OC);
    check_doubled("matmul dbias", db2, db, c.OC);
    /* NULL gradients are skipped */
    ops_matmul_backward(NULL, NULL, db2, c.g, c.inp, c.w, c.N, c.C, c.OC);
    free(c.inp), free(c.w), free(c.bias), free(c.out), free(c.g);
    free(dinp), free(dw), free(db), free(dinp2), free(dw2), free(db2);
}
END_TEST

/* The cblas path against plain triple loops in double, at shapes that are not multiples of
 * any kernel width, with and without bias, forward and all three backward products. */
START_TEST(test_ops_matmul_matches_naive) {
    rng_t rng;
    rng_seed(&rng, 2);
    const int64_t N = 37, C = 29, OC = 41;
    float *inp = randn(&rng, N * C, 1.0f), *w = randn(&rng, C * OC, 1.0f);
    float *bias = randn(&rng, OC, 1.0f), *dout = randn(&rng, N * OC, 1.0f);
    float *out = zeros(N * OC), *dinp = zeros(N * C), *dw = zeros(C * OC), *db = zeros(OC);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        ops_matmul_forward(out, inp, w, with_bias ? bias : NULL, N, C, OC);
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) {
                double s = with_bias ? (double)bias[o] : 0.0;
                for (int64_t c = 0; c < C; c++) s += (double)inp[n * C + c] * (double)w[c * OC + o];
                ck_assert_msg(fabs((double)out[n * OC + o] - s) < 1e-4, "out[%lld,%lld]",
                              (long long)n, (long long)o);
            }
    }
    ops_matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            double s = 0.0;
            for (int64_t o = 0; o < OC; o++) s += (double)dout[n * OC + o] * (double)w[c * OC + o];
            ck_assert(fabs((double)dinp[n * C + c] - s) < 1e-4);
        }
    for (int64_t c = 0; c < C; c++)
        for (int64_t o = 0; o < OC; o++) {
            double s = 0.0;
            for (int64_t n = 0; n < N; n++) s += (double)inp[n * C + c] * (double)dout[n * OC + o];
            ck_assert(fabs((double)dw[c * OC + o] - s) < 1e-4);
        }
    for (int64_t o = 0; o < OC; o++) {
        double s = 0.0;
        for (int64_t n = 0; n < N; n++) s += (double)dout[n * OC + o];
        ck_assert(fabs((double)db[o] - s) < 1e-4);
    }
    free(inp), free(w), free(bias), free(dout), free(out), free(dinp), free(dw), free(db);
}
END_TEST

/* ---- LM head ------------------------------------------------------------------------------ */

typedef struct {
    int64_t N, C, V;
    float *inp, *wte, *out, *g;
} lm_ctx;

static double lm_loss(void *p) {
    lm_ctx *c = p;
    ops_lmhead_forward(c->out, c->inp, c->wte, c->N, c->C, c->V);
    return dot(c->out, c->g, c->N * c->V);
}

START_TEST(test_ops_lmhead_grad) {
    rng_t rng;
    rng_seed(&rng, 3);
    lm_ctx c = {.N = 4, .C = 6, .V = 9};
    c.inp = randn(&rng, c.N * c.C, 1.0f);
    c.wte = randn(&rng, c.V * c.C, 1.0f);
    c.out = zeros(c.N * c.V);
    c.g = randn(&rng, c.N * c.V, 1.0f);
    ops_lmhead_forward(c.out, c.inp, c.wte, c.N, c.C, c.V);
    /* oracle: logits[n,v] = inp[n]·wte[v] */
    for (int64_t n = 0; n < c.N; n++)
        for (int64_t v = 0; v < c.V; v++)
            ck_assert(fabs((double)c.out[n * c.V + v] - dot(c.inp + n * c.C, c.wte + v * c.C, c.C)) <
                      1e-5);
    float *dinp = zeros(c.N * c.C), *dwte = zeros(c.V * c.C);
    ops_lmhead_backward(dinp, dwte, c.g, c.inp, c.wte, c.N, c.C, c.V);
    check_grad("lmhead dinp", c.inp, dinp, c.N * c.C, lm_loss, &c);
    check_grad("lmhead dwte", c.wte, dwte, c.V * c.C, lm_loss, &c);
    float *dinp2 = zeros(c.N * c.C), *dwte2 = zeros(c.V * c.C);
    for (int r = 0; r < 2; r++)
        ops_lmhead_backward(dinp2, dwte2, c.g, c.inp, c.wte, c.N, c.C, c.V);
    check_doubled("lmhead dinp", dinp2, dinp, c.N * c.C);
    check_doubled("lmhead dwte", dwte2, dwte, c.V * c.C);
    free(c.inp), free(c.wte), free(c.out), free(c.g), free(dinp), free(dwte), free(dinp2),
        free(dwte2);
}
END_TEST

/* ---- layernorm ---------------------------------------------------------------------------- */

typedef struct {
    int64_t N, C;
    float *x, *w, *b, *y, *mean, *rstd, *g;
} ln_ctx;

static double ln_loss(void *p) {
    ln_ctx *c = p;
    ops_layernorm_forward(c->y, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C, 1e-5f);
    return dot(c->y, c->g, c->N * c->C);
}

START_TEST(test_ops_layernorm_grad) {
    rng_t rng;
    rng_seed(&rng, 4);
    ln_ctx c = {.N = 4, .C = 9};
    c.x = randn(&rng, c.N * c.C, 1.0f);
    for (int64_t i = 0; i < c.N * c.C; i++) c.x[i] += 0.5f; /* a nonzero mean */
    c.w = randn(&rng, c.C, 1.0f);
    c.b = randn(&rng, c.C, 1.0f);
    c.y = zeros(c.N * c.C), c.mean = zeros(c.N), c.rstd = zeros(c.N);
    c.g = randn(&rng, c.N * c.C, 1.0f);
    ln_loss(&c);
    /* each normalized row has mean 0 and variance 1 before w, b */
    for (int64_t n = 0; n < c.N; n++) {
        double m = 0.0, v = 0.0;
        for (int64_t i = 0; i < c.C; i++) m += (double)c.x[n * c.C + i];
        m /= (double)c.C;
        for (int64_t i = 0; i < c.C; i++) v += pow((double)c.x[n * c.C + i] - m, 2.0);
        v /= (double)c.C;
        ck_assert(fabs((double)c.mean[n] - m) < 1e-6);
        ck_assert(fabs((double)c.rstd[n] - 1.0 / sqrt(v + 1e-5)) < 1e-5);
    }
    float *dx = zeros(c.N * c.C), *dw = zeros(c.C), *db = zeros(c.C);
    ops_layernorm_backward(dx, dw, db, c.g, c.x, c.w, c.mean, c.rstd, c.N, c.C);
    check_grad("layernorm dx", c.x, dx, c.N * c.C, ln_loss, &c);
    check_grad("layernorm dw", c.w, dw, c.C, ln_loss, &c);
    check_grad("layernorm db", c.b, db, c.C, ln_loss, &c);
    float *dx2 = zeros(c.N * c.C), *dw2 = zeros(c.C), *db2 = zeros(c.C);
    for (int r = 0; r < 2; r++)
        ops_layernorm_backward(dx2, dw2, db2, c.g, c.x, c.w, c.mean, c.rstd, c.N, c.C);
    check_doubled("layernorm dx", dx2, dx, c.N * c.C);
    check_doubled("layernorm dw", dw2, dw, c.C);
    check_doubled("layernorm db", db2, db, c.C);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.mean), free(c.rstd), free(c.g);
    free(dx), free(dw), free(db), free(dx2), free(dw2), free(db2);
}
END_TEST

/* ---- gelu, residual ----------------------------------------------------------------------- */

typedef struct {
    int64_t n;
    float *x, *out, *g;
} ew_ctx;

static double gelu_loss(void *p) {
    ew_ctx *c = p;
    ops_gelu_forward(c->out, c->x, c->n);
    return dot(c->out, c->g, c->n);
}

START_TEST(test_ops_gelu_grad) {
    rng_t rng;
    rng_seed(&rng, 5);
    ew_ctx c = {.n = 41};
    c.x = zeros(c.n);
    for (int64_t i = 0; i < c.n; i++) c.x[i] = -5.0f + 0.25f * (float)i + 0.01f; /* [-5, 5] */
    c.out = zeros(c.n);
    c.g = randn(&rng, c.n, 1.0f);
    float *dx = zeros(c.n), *dx2 = zeros(c.n);
    ops_gelu_backward(dx, c.g, c.x, c.n);
    check_grad("gelu dinp", c.x, dx, c.n, gelu_loss, &c);
    for (int r = 0; r < 2; r++) ops_gelu_backward(dx2, c.g, c.x, c.n);
    check_doubled("gelu dinp", dx2, dx, c.n);
    free(c.x), free(c.out), free(c.g), free(dx), free(dx2);
}
END_TEST

/* Our x·σ(2u) form with a fast exp against GPT-2's 0.5·x·(1 + tanh(u)) in double, including
 * large |x| where exp would overflow without its clamp. */
START_TEST(test_ops_gelu_matches_tanh_form) {
    enum { n = 2001 };
    float x[n], y[n];
    for (int i = 0; i < n; i++) x[i] = -100.0f + 0.1f * (float)i;
    ops_gelu_forward(y, x, n);
    for (int i = 0; i < n; i++) {
        const double xd = x[i];
        const double ref = 0.5 * xd * (1.0 + tanh(0.7978845608028654 * (xd + 0.044715 * xd * xd * xd)));
        ck_assert_msg(fabs((double)y[i] - ref) <= 1e-6 * fabs(ref) + 1e-7, "gelu(%g) = %.9g, want %.9g",
                      xd, (double)y[i], ref);
    }
}
END_TEST

START_TEST(test_ops_residual) {
    float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, out[3], da[3] = {0}, db[3] = {1, 1, 1};
    const float dout[3] = {0.5f, -1, 2};
    ops_residual_forward(out, a, b, 3);
    ck_assert(out[0] == 11 && out[1] == 22 && out[2] == 33);
    ops_residual_backward(da, db, dout, 3);
    ops_residual_backward(da, db, dout, 3);
    ck_assert(da[0] == 1.0f && da[1] == -2.0f && da[2] == 4.0f);
    ck_assert(db[0] == 2.0f && db[1] == -1.0f && db[2] == 5.0f);
}
END_TEST

/* ---- encoder ------------------------------------------------------------------------------ */

typedef struct {
    int64_t B, T, C, V;
    const int32_t *tokens;
    float *wte, *wpe, *out, *g;
} enc_ctx;

static double enc_loss(void *p) {
    enc_ctx *c = p;
    ops_encoder_forward(c->out, c->tokens, c->wte, c->wpe, c->B, c->T, c->C);
    return dot(c->out, c->g, c->B * c->T * c->C);
}

START_TEST(test_ops_encoder_grad) {
    rng_t rng;
    rng_seed(&rng, 6);
    static const int32_t tokens[2 * 4] = {3, 1, 3, 0, 1, 1, 4, 3}; /* repeats collide in dwte */
    enc_ctx c = {.B = 2, .T = 4, .C = 70, .V = 5, .tokens = tokens};
    c.wte = randn(&rng, c.V * c.C, 1.0f);
    c.wpe = randn(&rng, c.T * c.C, 1.0f);
    c.out = zeros(c.B * c.T * c.C);
    c.g = randn(&rng, c.B * c.T * c.C, 1.0f);
    enc_loss(&c);
    ck_assert(c.out[(1 * c.T + 2) * c.C + 5] == c.wte[4 * c.C + 5] + c.wpe[2 * c.C + 5]);
    float *dwte = zeros(c.V * c.C), *dwpe = zeros(c.T * c.C);
    ops_encoder_backward(dwte, dwpe, c.g, tokens, c.B, c.T, c.C);
    /* token 2 never occurs: its row gets no gradient (check_grad wants a nonzero tensor) */
    for (int64_t i = 0; i < c.C; i++) ck_assert(dwte[2 * c.C + i] == 0.0f);
    check_grad("encoder dwte", c.wte, dwte, c.V * c.C, enc_loss, &c);
    check_grad("encoder dwpe", c.wpe, dwpe, c.T * c.C, enc_loss, &c);
    float *dwte2 = zeros(c.V * c.C), *dwpe2 = zeros(c.T * c.C);
    for (int r = 0; r < 2; r++) ops_encoder_backward(dwte2, dwpe2, c.g, tokens, c.B, c.T, c.C);
    check_doubled("encoder dwte", dwte2, dwte, c.V * c.C);
    check_doubled("encoder dwpe", dwpe2, dwpe, c.T * c.C);
    free(c.wte), free(c.wpe), free(c.out), free(c.g), free(dwte), free(dwpe), free(dwte2),
        free(dwpe2);
}
END_TEST

/* ---- attention ---------------------------------------------------------------------------- */

typedef struct {
    int64_t B, T, C, NH;
    float *qkv, *att, *out, *g;
} att_ctx;

static double att_loss(void *p) {
    att_ctx *c = p;
    ops_attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->C, c->NH);
    return dot(c->out, c->g, c->B * c->T * c->C);
}

static att_ctx att_new(rng_t *rng, int64_t B, int64_t T, int64_t C, int64_t NH) {
    att_ctx c = {.B = B, .T = T, .C = C, .NH = NH};
    c.qkv = randn(rng, B * T * 3 * C, 1.0f);
    c.att = zeros(B * NH * T * T);
    c.out = zeros(B * T * C);
    c.g = randn(rng, B * T * C, 1.0f);
    return c;
}

static void att_free(att_ctx *c) { free(c->qkv), free(c->att), free(c->out), free(c->g); }

START_TEST(test_ops_attention_grad) {
    rng_t rng;
    rng_seed(&rng, 7);
    att_ctx c = att_new(&rng, 2, 5, 12, 3);
    att_loss(&c);
    float *dqkv = zeros(c.B * c.T * 3 * c.C), *datt = zeros(c.B * c.NH * c.T * c.T);
    ops_attention_backward(dqkv, datt, c.g, c.qkv, c.att, c.B, c.T, c.C, c.NH);
    check_grad("attention dqkv", c.qkv, dqkv, c.B * c.T * 3 * c.C, att_loss, &c);
    float *dqkv2 = zeros(c.B * c.T * 3 * c.C);
    for (int r = 0; r < 2; r++)
        ops_attention_backward(dqkv2, datt, c.g, c.qkv, c.att, c.B, c.T, c.C, c.NH);
    check_doubled("attention dqkv", dqkv2, dqkv, c.B * c.T * 3 * c.C);
    att_free(&c);
    free(dqkv), free(datt), free(dqkv2);
}
END_TEST

/* Against a direct computation in double: out[b,t,h] = Σ_{t2≤t} softmax(q·k/sqrt(HS))·v. */
START_TEST(test_ops_attention_matches_naive) {
    rng_t rng;
    rng_seed(&rng, 8);
    att_ctx c = att_new(&rng, 2, 7, 16, 4);
    const int64_t B = c.B, T = c.T, C = c.C, NH = c.NH, HS = C / NH;
    for (int64_t i = 0; i < B * T * 3 * C; i++) c.qkv[i] *= 3.0f; /* peaked rows */
    att_loss(&c);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++)
            for (int64_t t = 0; t < T; t++) {
                const float *q = c.qkv + (b * T + t) * 3 * C + h * HS;
                double s[16], mx = -INFINITY, z = 0.0;
                for (int64_t t2 = 0; t2 <= t; t2++) {
                    const float *k = c.qkv + (b * T + t2) * 3 * C + C + h * HS;
                    s[t2] = dot(q, k, HS) / sqrt((double)HS);
                    mx = fmax(mx, s[t2]);
                }
                for (int64_t t2 = 0; t2 <= t; t2++) z += exp(s[t2] - mx);
                for (int64_t i = 0; i < HS; i++) {
                    double o = 0.0;
                    for (int64_t t2 = 0; t2 <= t; t2++)
                        o += exp(s[t2] - mx) / z *
                             (double)c.qkv[(b * T + t2) * 3 * C + 2 * C + h * HS + i];
                    ck_assert_msg(fabs((double)c.out[(b * T + t) * C + h * HS + i] - o) < 1e-5,
                                  "out[%lld,%lld,%lld]", (long long)b, (long long)t,
                                  (long long)(h * HS + i));
                }
                for (int64_t t2 = t + 1; t2 < T; t2++)
                    ck_assert(c.att[((b * NH + h) * T + t) * T + t2] == 0.0f);
            }
    att_free(&c);
}
END_TEST

/* Causality: a row's output does not depend on later rows (what right padding relies on). */
START_TEST(test_ops_attention_is_causal) {
    rng_t rng;
    rng_seed(&rng, 9);
    att_ctx c = att_new(&rng, 1, 6, 8, 2);
    att_loss(&c);
    float before[6 * 8];
    memcpy(before, c.out, sizeof before);
    for (int64_t i = 4 * 3 * 8; i < 6 * 3 * 8; i++) c.qkv[i] = 1e3f; /* rows 4, 5 */
    att_loss(&c);
    ck_assert(!memcmp(before, c.out, 4 * 8 * sizeof(float)));
    ck_assert(memcmp(before + 4 * 8, c.out + 4 * 8, 2 * 8 * sizeof(float)));
    att_free(&c);
}
END_TEST

/* ---- log-softmax -------------------------------------------------------------------------- */

typedef struct {
    int64_t N, V;
    float temperature;
    const int32_t *targets;
    float *logits, *logp, *lse, *g;
} ls_ctx;

static double ls_loss(void *p) {
    ls_ctx *c = p;
    ops_logsoftmax_forward(c->logp, c->lse, c->logits, c->targets, c->N, c->V, c->temperature);
    return dot(c->logp, c->g, c->N);
}

START_TEST(test_ops_logsoftmax_grad) {
    rng_t rng;
    rng_seed(&rng, 10);
    static const int32_t targets[4] = {3, -1, 0, 10};
    ls_ctx c = {.N = 4, .V = 11, .temperature = 0.7f, .targets = targets};
    c.logits = randn(&rng, c.N * c.V, 2.0f);
    c.logp = zeros(c.N), c.lse = zeros(c.N);
    c.g = randn(&rng, c.N, 1.0f);
    ls_loss(&c);
    ck_assert(c.logp[1] == 0.0f); /* masked */
    for (int64_t n = 0; n < c.N; n++) {
        if (targets[n] < 0) continue;
        double mx = -INFINITY, z = 0.0;
        for (int64_t v = 0; v < c.V; v++) mx = fmax(mx, (double)c.logits[n * c.V + v] / 0.7);
        for (int64_t v = 0; v < c.V; v++) z += exp((double)c.logits[n * c.V + v] / 0.7 - mx);
        const double want = (double)c.logits[n * c.V + targets[n]] / 0.7 - mx - log(z);
        ck_assert_msg(fabs((double)c.logp[n] - want) < 1e-5, "logp[%lld] %g, want %g",
                      (long long)n, (double)c.logp[n], want);
    }
    float *dlogits = zeros(c.N * c.V);
    for (int r = 0; r < 2; r++) /* writes, not adds: twice gives the same */
        ops_logsoftmax_backward(dlogits, c.g, c.logits, c.lse, targets, c.N, c.V, c.temperature);
    for (int64_t v = 0; v < c.V; v++) ck_assert(dlogits[1 * c.V + v] == 0.0f);
    check_grad("logsoftmax dlogits", c.logits, dlogits, c.N * c.V, ls_loss, &c);
    /* in place over the logits buffer gives the same result (lse as it was: check_grad
     * left the last perturbed one behind) */
    ls_loss(&c);
    ops_logsoftmax_backward(dlogits, c.g, c.logits, c.lse, targets, c.N, c.V, c.temperature);
    float *inplace = malloc((size_t)(c.N * c.V) * sizeof(float));
    memcpy(inplace, c.logits, (size_t)(c.N * c.V) * sizeof(float));
    ops_logsoftmax_backward(inplace, c.g, inplace, c.lse, targets, c.N, c.V, c.temperature);
    ck_assert(!memcmp(inplace, dlogits, (size_t)(c.N * c.V) * sizeof(float)));
    free(c.logits), free(c.logp), free(c.lse), free(c.g), free(dlogits), free(inplace);
}
END_TEST

/* Large logits and a long row (the max subtraction keeps exp finite; sums in double). */
START_TEST(test_ops_logsoftmax_large_rows) {
    enum { V = 50257 };
    float *logits = zeros(V);
    for (int64_t v = 0; v < V; v++) logits[v] = 1000.0f + (float)(v % 97) * 0.1f;
    const int32_t target = 96;
    float logp, lse;
    ops_logsoftmax_forward(&logp, &lse, logits, &target, 1, V, 1.0f);
    double mx = 1009.6, z = 0.0;
    for (int64_t v = 0; v < V; v++) z += exp((double)logits[v] - mx);
    ck_assert_msg(isfinite(logp) && fabs((double)logp - ((double)logits[96] - mx - log(z))) < 1e-4,
                  "logp %g", (double)logp);
    free(logits);
}
END_TEST

/* The one-pass log-sum-exp of a row whose chunk maxima change. ops.c reads a row in chunks of
 * 2048 logits (SOFTMAX_CHUNK) and keeps a running max and sum: a chunk whose max is above the
 * running one rescales the sum so far by exp(old max - new max), a lower one is rescaled onto
 * the running max. A periodic row (test_ops_logsoftmax_large_rows) has the same max in every
 * chunk, so both factors are 1. Here one row rises (every chunk max is a new max) and its
 * mirror falls (every later chunk is rescaled down), over 5 chunks and a partial one, at
 * temperature 0.7, where each chunk holds a share of the mass that a dropped or misapplied
 * rescale would lose (the earlier chunks of the rising row: ~20% of the sum). */
START_TEST(test_ops_logsoftmax_chunk_max_rises) {
    enum { CHUNK = 2048, V = 5 * CHUNK + 123, ROWS = 2, PICKS = 4 };
    const float temperature = 0.7f;
    float *logits = zeros(ROWS * V);
    for (int64_t v = 0; v < V; v++) {
        const float x = 25.0f + 6.0f * (float)v / (float)V + 0.5f * sinf(0.37f * (float)v);
        logits[v] = x;               /* row 0 rises */
        logits[2 * V - 1 - v] = x;   /* row 1 is its mirror: falls */
    }
    float chunk_max[2][6];
    for (int r = 0; r < ROWS; r++)
        for (int64_t c = 0; c * CHUNK < V; c++) {
            chunk_max[r][c] = -INFINITY;
            for (int64_t v = c * CHUNK; v < V && v < (c + 1) * CHUNK; v++)
                chunk_max[r][c] = fmaxf(chunk_max[r][c], logits[r * V + v]);
        }
    for (int c = 1; c < 6; c++) /* the premise: rising, resp. falling, chunk maxima */
        ck_assert(chunk_max[0][c] > chunk_max[0][c - 1] && chunk_max[1][c] < chunk_max[1][c - 1]);
    /* each row several times, with targets in the first, a middle and the partial last chunk */
    static const int32_t picks[PICKS] = {0, 3 * CHUNK + 17, V - 60, V - 1};
    float *in = zeros(ROWS * PICKS * V);
    int32_t targets[ROWS * PICKS];
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < PICKS; k++) {
            memcpy(in + (r * PICKS + k) * V, logits + r * V, V * sizeof(float));
            targets[r * PICKS + k] = picks[k];
        }
    float logp[ROWS * PICKS], lse[ROWS * PICKS];
    ops_logsoftmax_forward(logp, lse, in, targets, ROWS * PICKS, V, temperature);
    for (int r = 0; r < ROWS; r++) {
        const float *x = logits + r * V;
        double mx = -INFINITY, z = 0.0;
        for (int64_t v = 0; v < V; v++) mx = fmax(mx, (double)x[v] / 0.7);
        for (int64_t v = 0; v < V; v++) z += exp((double)x[v] / 0.7 - mx);
        const double want_lse = mx + log(z);
        for (int k = 0; k < PICKS; k++) {
            const int n = r * PICKS + k;
            const double want = (double)x[picks[k]] / 0.7 - want_lse;
            ck_assert_msg(fabs((double)lse[n] - want_lse) < 2e-5, "row %d: lse %.7f, want %.7f",
                          r, (double)lse[n], want_lse);
            ck_assert_msg(fabs((double)logp[n] - want) < 2e-5, "row %d target %d: logp %.7f, "
                          "want %.7f", r, (int)picks[k], (double)logp[n], want);
        }
    }
    free(logits), free(in);
}
END_TEST

/* A NaN reaching the fast exp (GELU, attention softmax, log-softmax) comes out as NaN, so
 * training sees it in the loss and stops, and the exp's float-to-int step is not undefined
 * behaviour on it (make asan runs this under UBSan). */
/* ops_entropy against −Σ p·log p in double, at two temperatures, with a masked row, over a
 * row longer than any chunk and a peaked one. */
START_TEST(test_ops_entropy_matches_definition) {
    enum { N = 3, V = 5003 };
    rng_t rng;
    rng_seed(&rng, 31);
    float *logits = randn(&rng, N * V, 3.0f);
    logits[2 * V + 17] = 60.0f; /* row 2: almost one-hot */
    const int32_t mask[N] = {0, -1, 4};
    float ent[N];
    const float temps[2] = {1.0f, 0.7f};
    for (int k = 0; k < 2; k++) {
        ops_entropy(ent, logits, mask, N, V, temps[k]);
        ck_assert(ent[1] == 0.0f);
        for (int64_t n = 0; n < N; n += 2) {
            const float *row = logits + n * V;
            double m = -INFINITY, z = 0.0, h = 0.0;
            for (int64_t v = 0; v < V; v++) m = fmax(m, (double)row[v] / (double)temps[k]);
            for (int64_t v = 0; v < V; v++) z += exp((double)row[v] / (double)temps[k] - m);
            for (int64_t v = 0; v < V; v++) {
                const double lp = (double)row[v] / (double)temps[k] - m - log(z);
                h -= exp(lp) * lp;
            }
            ck_assert_msg(fabs((double)ent[n] - h) < 1e-4 * fmax(1.0, h),
                          "row %lld at %g: entropy %.7f, expected %.7f", (long long)n,
                          (double)temps[k], (double)ent[n], h);
        }
    }
    free(logits);
}
END_TEST

START_TEST(test_ops_nan_propagates) {
    const float x[4] = {1.0f, NAN, -2.0f, 0.5f};
    float y[4];
    ops_gelu_forward(y, x, 4);
    ck_assert(isnan(y[1]) && isfinite(y[0]) && isfinite(y[2]));
    const int32_t target = 0;
    float logp, lse;
    ops_logsoftmax_forward(&logp, &lse, x, &target, 1, 4, 1.0f);
    ck_assert_msg(isnan(logp), "logp %g with a NaN logit", (double)logp);
}
END_TEST

START_TEST(test_ops_threads) {
    ops_set_threads(1);
    ck_assert_int_eq(ops_get_threads(), 1);
    ops_set_threads(2);
#ifdef _OPENMP
    ck_assert_int_eq(ops_get_threads(), 2);
#endif
    ops_set_threads(0); /* leaves the setting alone */
#ifdef RLHF_BLAS_OPENMP
    /* the Makefile found OpenBLAS's OpenMP build: make sure that is what runs */
    ck_assert_int_eq(openblas_get_parallel(), 2);
#endif
}
END_TEST

Suite *test_ops_suite(void);
Suite *test_ops_suite(void) {
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("grad");
    tcase_add_test(tc, test_ops_matmul_grad);
    tcase_add_test(tc, test_ops_matmul_matches_naive);
    tcase_add_test(tc, test_ops_lmhead_grad);
    tcase_add_test(tc, test_ops_layernorm_grad);
    tcase_add_test(tc, test_ops_gelu_grad);
    tcase_add_test(tc, test_ops_gelu_matches_tanh_form);
    tcase_add_test(tc, test_ops_residual);
    tcase_add_test(tc, test_ops_encoder_grad);
    tcase_add_test(tc, test_ops_attention_grad);
    tcase_add_test(tc, test_ops_attention_matches_naive);
    tcase_add_test(tc, test_ops_attention_is_causal);
    tcase_add_test(tc, test_ops_logsoftmax_grad);
    tcase_add_test(tc, test_ops_logsoftmax_large_rows);
    tcase_add_test(tc, test_ops_logsoftmax_chunk_max_rises);
    tcase_add_test(tc, test_ops_entropy_matches_definition);
    tcase_add_test(tc, test_ops_nan_propagates);
    tcase_add_test(tc, test_ops_threads);
    suite_add_tcase(s, tc);
    return s;
}
