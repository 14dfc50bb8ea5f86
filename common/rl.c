/* common/rl.c: the RLHF math (see rl.h). Every function is a few loops over small buffers
 * (B·T response tokens, Σ K² pairs): negligible beside a forward, so they stay serial and
 * reduce in double, which also makes their results independent of thread counts. */
#include "rl.h"
#include <assert.h>
#include <math.h>
#include <stddef.h>

/* ---- reward model: ranking loss ----------------------------------------------------------- */

/* softplus(x) = log(1 + e^x) without overflow: max(x, 0) + log1p(e^−|x|). */
static double softplus(double x) {
    return fmax(x, 0.0) + log1p(exp(-fabs(x)));
}

/* σ(x) without overflow for either sign. */
static double sigmoid(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    const double e = exp(x);
    return e / (1.0 + e);
}

/* Untied pairs of one prompt's K ranks. */
static int64_t rank_pairs(const int32_t *ranks, int64_t K) {
    int64_t P = 0;
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < K; j++) P += ranks[i] < ranks[j];
    return P;
}

/* Prompts with at least one untied pair (the batch mean's denominator). */
static int64_t rank_prompts(const int32_t *ranks, const int64_t *counts, int64_t n_prompts) {
    int64_t n = 0, off = 0;
    for (int64_t p = 0; p < n_prompts; p++) {
        assert(counts[p] >= 0);
        n += rank_pairs(ranks + off, counts[p]) > 0;
        off += counts[p];
    }
    return n;
}

double rl_rank_forward(rl_rank_stats_t *stats, const float *rewards, const int32_t *ranks,
                       const int64_t *counts, int64_t n_prompts) {
    rl_rank_stats_t s = {0};
    double sum = 0.0; /* Σ over prompts of their mean pair loss */
    int64_t off = 0;
    for (int64_t p = 0; p < n_prompts; p++) {
        const float *r = rewards + off;
        const int32_t *rk = ranks + off;
        const int64_t K = counts[p];
        double loss = 0.0;
        int64_t P = 0;
        for (int64_t w = 0; w < K; w++)
            for (int64_t l = 0; l < K; l++) {
                if (!(rk[w] < rk[l])) continue;
                const double d = (double)r[w] - (double)r[l];
                loss += softplus(-d); /* −log σ(d) */
                s.correct += d > 0.0 ? 1.0 : d == 0.0 ? 0.5 : 0.0;
                P++;
            }
        if (P > 0) sum += loss / (double)P, s.prompts++;
        s.pairs += P;
        off += K;
    }
    s.loss = s.prompts > 0 ? sum / (double)s.prompts : 0.0;
    if (stats) *stats = s;
    return s.loss;
}

void rl_rank_backward(float *drewards, const float *rewards, const int32_t *ranks,
                      const int64_t *counts, int64_t n_prompts) {
    const int64_t n = rank_prompts(ranks, counts, n_prompts);
    int64_t off = 0;
    for (int64_t p = 0; p < n_prompts; p++) {
        const float *r = rewards + off;
        const int32_t *rk = ranks + off;
        float *dr = drewards + off;
        const int64_t K = counts[p], P = rank_pairs(rk, K);
        for (int64_t k = 0; k < K; k++) {
            /* in the forward pass this was loss += softplus(r_l − r_w) / (P·n) per pair:
             * d/dr_w = −σ(r_l − r_w) / (P·n), d/dr_l the opposite */
            double g = 0.0;
            for (int64_t j = 0; j < K; j++) {
                if (rk[k] < rk[j]) g -= sigmoid((double)r[j] - (double)r[k]);
                if (rk[j] < rk[k]) g += sigmoid((double)r[k] - (double)r[j]);
            }
            dr[k] = P > 0 ? (float)(g / ((double)P * (double)n)) : 0.0f;
        }
        off += K;
    }
}

/* ---- the reward at the last token --------------------------------------------------------- */

void rl_last_forward(float *rewards, const float *values, const int64_t *lengths, int64_t B,
                     int64_t T) {
    for (int64_t b = 0; b < B; b++) {
        assert(lengths[b] >= 1 && lengths[b] <= T);
        rewards[b] = values[b * T + lengths[b] - 1];
    }
}

void rl_last_backward(float *dvalues, const float *drewards, const int64_t *lengths, int64_t B,
                      int64_t T) {
    for (int64_t b = 0; b < B; b++) {
        assert(lengths[b] >= 1 && lengths[b] <= T);
        for (int64_t t = 0; t < T; t++) dvalues[b * T + t] = 0.0f;
        dvalues[b * T + lengths[b] - 1] = drewards[b];
    }
}

/* ---- PPO ---------------------------------------------------------------------------------- */

/* First response position of row b. */
static int64_t span_start(const rl_span_t *span, int64_t b) {
    const int64_t s = span->start ? span->start[b] : 0;
    assert(s >= 0 && span->len[b] >= 0 && s + span->len[b] <= span->T);
    return s;
}

/* Zeroes row b of a (B, T) buffer outside the span. */
static void zero_outside(float *x, const rl_span_t *span, int64_t b) {
    const int64_t s = span_start(span, b), e = s + span->len[b];
    float *row = x + b * span->T;
    for (int64_t t = 0; t < s; t++) row[t] = 0.0f;
    for (int64_t t = e; t < span->T; t++) row[t] = 0.0f;
}

int64_t rl_span_count(const rl_span_t *span) {
    int64_t n = 0;
    for (int64_t b = 0; b < span->B; b++) {
        span_start(span, b);
        n += span->len[b];
    }
    return n;
}

double rl_token_rewards(float *rewards, const float *logp, const float *ref_logp,
                        const float *scores, float beta, const rl_span_t *span) {
    double kl_sum = 0.0;
    int64_t rows = 0;
    for (int64_t b = 0; b < span->B; b++) {
        const int64_t s = span_start(span, b), n = span->len[b], o = b * span->T + s;
        zero_outside(rewards, span, b);
        double kl = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const float d = logp[o + i] - ref_logp[o + i]; /* k1 estimate of the token's KL */
            rewards[o + i] = -beta * d;
            kl += (double)d;
        }
        if (n == 0) continue;
        rewards[o + n - 1] += scores[b];
        kl_sum += kl;
        rows++;
    }
    return rows > 0 ? kl_sum / (double)rows : 0.0;
}

void rl_gae(float *advantages, float *returns, const float *rewards, const float *values,
            float gamma, float lambda, const rl_span_t *span) {
    for (int64_t b = 0; b < span->B; b++) {
        const int64_t s = span_start(span, b), n = span->len[b], o = b * span->T + s;
        zero_outside(advantages, span, b);
        zero_outside(returns, span, b);
        double next_value = 0.0, next_adv = 0.0; /* past the last token: episode over */
        for (int64_t i = n - 1; i >= 0; i--) {
            const double v = values[o + i];
            const double delta = (double)rewards[o + i] + (double)gamma * next_value - v;
            next_adv = delta + (double)gamma * (double)lambda * next_adv;
            next_value = v;
            advantages[o + i] = (float)next_adv;
            returns[o + i] = (float)(next_adv + v);
        }
    }
}

static void no_reduce(double *v, int n) {
    (void)v, (void)n;
}

/* Mean and variance (÷ n − 1, or 0 when n < 2) of x over the span (of every process, through
 * reduce), in two passes. */
static int64_t span_moments(const float *x, const rl_span_t *span, rl_reduce_fn reduce,
                            double *mean, double *var) {
    double v[2] = {0.0, 0.0}; /* Σ x, n */
    for (int64_t b = 0; b < span->B; b++) {
        const float *row = x + b * span->T + span_start(span, b);
        for (int64_t i = 0; i < span->len[b]; i++) v[0] += (double)row[i];
        v[1] += (double)span->len[b];
    }
    reduce(v, 2);
    const int64_t n = (int64_t)v[1];
    *mean = n > 0 ? v[0] / (double)n : 0.0;
    double sq[1] = {0.0};
    for (int64_t b = 0; b < span->B; b++) {
        const float *row = x + b * span->T + span_start(span, b);
        for (int64_t i = 0; i < span->len[b]; i++) {
            const double d = (double)row[i] - *mean;
            sq[0] += d * d;
        }
    }
    reduce(sq, 1);
    *var = n > 1 ? sq[0] / (double)(n - 1) : 0.0;
    return n;
}

int64_t rl_whiten_reduced(float *x, bool shift_mean, const rl_span_t *span, rl_reduce_fn reduce) {
    double mean, var;
    const int64_t n = span_moments(x, span, reduce ? reduce : no_reduce, &mean, &var);
    const double scale = 1.0 / sqrt(var + RL_WHITEN_EPS), back = shift_mean ? 0.0 : mean;
    for (int64_t b = 0; b < span->B; b++) {
        float *row = x + b * span->T + span_start(span, b);
        for (int64_t i = 0; i < span->len[b]; i++)
            row[i] = (float)(((double)row[i] - mean) * scale + back);
    }
    return n;
}

int64_t rl_whiten(float *x, bool shift_mean, const rl_span_t *span) {
    return rl_whiten_reduced(x, shift_mean, span, NULL);
}

void rl_running_update(rl_running_t *run, const float *x, int64_t n) {
    if (n <= 0) return;
    double mean = 0.0, m2 = 0.0;
    for (int64_t i = 0; i < n; i++) mean += (double)x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) m2 += ((double)x[i] - mean) * ((double)x[i] - mean);
    /* Chan et al.: merge (count, mean, M2) with the batch's (n, mean, m2) */
    const double total = run->count + (double)n, delta = mean - run->mean;
    const double M2 = run->var * run->count + m2 + delta * delta * run->count * (double)n / total;
    run->mean += delta * (double)n / total;
    run->var = M2 / total;
    run->count = total;
}

double rl_running_std(const rl_running_t *run) {
    if (run->count < 2.0) return 1.0;
    return sqrt(run->var * run->count / (run->count - 1.0));
}

void rl_running_normalize(const rl_running_t *run, float *x, int64_t n, bool shift_mean) {
    const double scale = 1.0 / (rl_running_std(run) + RL_WHITEN_EPS);
    const double shift = shift_mean ? run->mean : 0.0;
    for (int64_t i = 0; i < n; i++) x[i] = (float)(((double)x[i] - shift) * scale);
}

/* The two branches of one token's surrogate: a = −A·ratio, c = −A·clip(ratio, 1 ± ε). */
typedef struct {
    double ratio, unclipped, clipped;
} surrogate_t;

static surrogate_t surrogate(float logp, float old_logp, float adv, float clip) {
    surrogate_t s;
    s.ratio = exp((double)logp - (double)old_logp);
    const double lo = 1.0 - (double)clip, hi = 1.0 + (double)clip;
    s.unclipped = -(double)adv * s.ratio;
    s.clipped = -(double)adv * fmin(fmax(s.ratio, lo), hi);
    return s;
}

double rl_policy_forward(rl_policy_stats_t *stats, const float *logp, const float *old_logp,
                         const float *advantages, float clip, const rl_span_t *span) {
    double loss = 0.0, clipped = 0.0, kl = 0.0, ratio = 0.0;
    int64_t n = 0;
    for (int64_t b = 0; b < span->B; b++) {
        const int64_t o = b * span->T + span_start(span, b);
        for (int64_t i = 0; i < span->len[b]; i++) {
            const surrogate_t s = surrogate(logp[o + i], old_logp[o + i], advantages[o + i], clip);
            const double d = (double)logp[o + i] - (double)old_logp[o + i];
            loss += fmax(s.unclipped, s.clipped);
            clipped += s.clipped > s.unclipped;
            kl += 0.5 * d * d;
            ratio += s.ratio;
        }
        n += span->len[b];
    }
    const double inv = n > 0 ? 1.0 / (double)n : 0.0;
    if (stats)
        *stats = (rl_policy_stats_t){.loss = loss * inv,
                                     .clipfrac = clipped * inv,
                                     .approx_kl = kl * inv,
                                     .ratio = ratio * inv,
                                     .tokens = n};
    return loss * inv;
}

void rl_policy_backward(float *dlogp, const float *logp, const float *old_logp,
                        const float *advantages, float clip, const rl_span_t *span) {
    const int64_t n = rl_span_count(span);
    for (int64_t b = 0; b < span->B; b++) {
        const int64_t o = b * span->T + span_start(span, b);
        zero_outside(dlogp, span, b);
        for (int64_t i = 0; i < span->len[b]; i++) {
            /* in the forward pass this was loss += max(−A·ratio, −A·clip(ratio)) / n, with
             * d ratio / d logp = ratio; the clipped branch wins only when ratio is outside
             * [1 − ε, 1 + ε], where clip is flat */
            const surrogate_t s = surrogate(logp[o + i], old_logp[o + i], advantages[o + i], clip);
            dlogp[o + i] = s.clipped > s.unclipped
                               ? 0.0f
                               : (float)(-(double)advantages[o + i] * s.ratio / (double)n);
        }
    }
}

/* One token's value loss terms: u = (V − R)², c = (clip(V, V_old ± ε_v) − R)². */
static void value_terms(float v, float old_v, float ret, float clip, double *u, double *c) {
    const double vc =
        fmin(fmax((double)v, (double)old_v - (double)clip), (double)old_v + (double)clip);
    *u = ((double)v - (double)ret) * ((double)v - (double)ret);
    *c = (vc - (double)ret) * (vc - (double)ret);
}

double rl_value_forward(rl_value_stats_t *stats, const float *values, const float *old_values,
                        const float *returns, float clip, const rl_span_t *span) {
    double loss = 0.0, clipped = 0.0;
    int64_t n = 0;
    for (int64_t b = 0; b < span->B; b++) {
        const int64_t o = b * span->T + span_start(span, b);
        for (int64_t i = 0; i < span->len[b]; i++) {
            double u, c;
            value_terms(values[o + i], old_values[o + i], returns[o + i], clip, &u, &c);
            loss += fmax(u, c);
            clipped += c > u;
        }
        n += span->len[b];
    }
    const double inv = n > 0 ? 1.0 / (double)n : 0.0;
    if (stats)
        *stats =
            (rl_value_stats_t){.loss = 0.5 * loss * inv, .clipfrac = clipped * inv, .tokens = n};
    return 0.5 * loss * inv;
}

void rl_value_backward(float *dvalues, const float *values, const float *old_values,
                       const float *returns, float clip, const rl_span_t *span) {
    const int64_t n = rl_span_count(span);
    for (int64_t b = 0; b < span->B; b++) {
        const int64_t o = b * span->T + span_start(span, b);
        zero_outside(dvalues, span, b);
        for (int64_t i = 0; i < span->len[b]; i++) {
            /* in the forward pass this was loss += 0.5·max(u, c) / n: d/dV of 0.5·(V − R)² is
             * V − R; when c > u strictly, V is outside the clip range and c is flat in V */
            double u, c;
            value_terms(values[o + i], old_values[o + i], returns[o + i], clip, &u, &c);
            dvalues[o + i] =
                c > u ? 0.0f
                      : (float)(((double)values[o + i] - (double)returns[o + i]) / (double)n);
        }
    }
}

double rl_explained_variance_reduced(const float *values, const float *returns,
                                     const rl_span_t *span, rl_reduce_fn reduce) {
    if (!reduce) reduce = no_reduce;
    double s[3] = {0.0, 0.0, 0.0}; /* Σ R, Σ (R − V), n */
    for (int64_t b = 0; b < span->B; b++) {
        const int64_t o = b * span->T + span_start(span, b);
        for (int64_t i = 0; i < span->len[b]; i++) {
            s[0] += (double)returns[o + i];
            s[1] += (double)returns[o + i] - (double)values[o + i];
        }
        s[2] += (double)span->len[b];
    }
    reduce(s, 3);
    if (s[2] == 0.0) return NAN;
    const double mr = s[0] / s[2], me = s[1] / s[2];
    double v[2] = {0.0, 0.0}; /* Σ (R − mr)², Σ (R − V − me)² */
    for (int64_t b = 0; b < span->B; b++) {
        const int64_t o = b * span->T + span_start(span, b);
        for (int64_t i = 0; i < span->len[b]; i++) {
            const double r = (double)returns[o + i] - mr;
            const double e = (double)returns[o + i] - (double)values[o + i] - me;
            v[0] += r * r;
            v[1] += e * e;
        }
    }
    reduce(v, 2);
    return v[0] > 0.0 ? 1.0 - v[1] / v[0] : (double)NAN;
}

double rl_explained_variance(const float *values, const float *returns, const rl_span_t *span) {
    return rl_explained_variance_reduced(values, returns, span, NULL);
}

void rl_kl_ctl_update(rl_kl_ctl_t *ctl, double kl, int64_t n_steps) {
    if (ctl->target <= 0.0) return;
    const double err = fmin(fmax(kl / ctl->target - 1.0, -RL_KL_CLIP), RL_KL_CLIP);
    ctl->value *= 1.0 + err * (double)n_steps / ctl->horizon;
}
