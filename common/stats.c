/* common/stats.c: Student t quantiles, means, win rates and accuracies with 95% intervals. */
#include "stats.h"
#include <float.h>
#include <math.h>

/* Continued fraction of the regularised incomplete beta I_x(a, b), modified Lentz's method
 * (Numerical Recipes §6.4, betacf); converges fast for x < (a + 1) / (a + b + 2). */
static double beta_cf(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        const double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        for (int half = 0; half < 2; half++) { /* the even step, then the odd one */
            d = 1.0 + num * d;
            if (fabs(d) < tiny) d = tiny;
            c = 1.0 + num / c;
            if (fabs(c) < tiny) c = tiny;
            d = 1.0 / d;
            const double delta = d * c;
            h *= delta;
            if (half == 1 && fabs(delta - 1.0) < 1e-15) return h;
            num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        }
    }
    return h;
}

/* ln B(a, b) = ln Γ(a) + ln Γ(b) - ln Γ(a + b). For t quantiles b = 1/2 and a = df/2: at large
 * a the difference of two huge lgammas would lose ~1e-7 (ln Γ(5e7) ≈ 8e8), so use the series
 * ln Γ(a + 1/2) - ln Γ(a) = ½ ln a - 1/(8a) + 1/(192a³) + 1/(640a⁵) (error < 1e-12 past 100). */
static double log_beta(double a, double b) {
    if (b == 0.5 && a >= 100.0) {
        const double a3 = a * a * a;
        return lgamma(0.5) -
               (0.5 * log(a) - 1.0 / (8.0 * a) + 1.0 / (192.0 * a3) + 1.0 / (640.0 * a3 * a * a));
    }
    return lgamma(a) + lgamma(b) - lgamma(a + b);
}

/* I_x(a, b) for 0 ≤ x ≤ 1. */
static double beta_inc(double a, double b, double x) {
    if (x <= 0.0) return 0.0;
    if (x >= 1.0) return 1.0;
    const double front = exp(a * log(x) + b * log1p(-x) - log_beta(a, b));
    if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_cf(a, b, x) / a;
    return 1.0 - front * beta_cf(b, a, 1.0 - x) / b; /* symmetry: the fraction converges here */
}

double stats_normal_quantile(double p) {
    if (!(p > 0.0 && p < 1.0)) return NAN;
    /* Bisection on Φ(z) = erfc(-z/√2)/2, which erfc gives to full relative precision in both
     * tails; 200 halvings of [-40, 40] reach the spacing of doubles. */
    double lo = -40.0, hi = 40.0;
    for (int i = 0; i < 200; i++) {
        const double mid = 0.5 * (lo + hi);
        if (mid == lo || mid == hi) break;
        if (0.5 * erfc(-mid / M_SQRT2) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* Past this many degrees of freedom t and the normal differ by < 1e-7 (t - z ≈ (z³ + z)/(4df)),
 * and the continued fraction would need ~√df terms. */
#define STATS_DF_NORMAL 1e8

double stats_t_quantile(double p, double df) {
    if (!(p > 0.0 && p < 1.0) || !(df > 0.0)) return NAN;
    if (p == 0.5) return 0.0;
    if (df > STATS_DF_NORMAL) return stats_normal_quantile(p);
    /* For t > 0: P(T > t) = I_x(df/2, 1/2) / 2 with x = df / (df + t²), decreasing in t, so
     * bisect on x ∈ (0, 1) for the upper tail q = min(p, 1-p), then t = √(df (1-x) / x). */
    const double q = p < 0.5 ? p : 1.0 - p;
    double lo = 0.0, hi = 1.0; /* I_lo < 2q ≤ I_hi */
    for (int i = 0; i < 1100; i++) {
        const double mid = 0.5 * (lo + hi);
        if (mid == lo || mid == hi) break;
        if (beta_inc(0.5 * df, 0.5, mid) < 2.0 * q)
            lo = mid;
        else
            hi = mid;
    }
    const double x = 0.5 * (lo + hi);
    const double t = sqrt(df * (1.0 - x) / x);
    return p < 0.5 ? -t : t;
}

stats_ci_t stats_mean(const double *x, int64_t n) {
    stats_ci_t r = {n, NAN, NAN, NAN};
    if (n < 1) return r;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += x[i];
    r.mean = sum / (double)n;
    if (n < 2) return r;
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (x[i] - r.mean) * (x[i] - r.mean);
    const double half =
        stats_t_quantile(0.975, (double)(n - 1)) * sqrt(ss / (double)(n - 1) / (double)n);
    r.lo = r.mean - half;
    r.hi = r.mean + half;
    return r;
}

stats_ci_t stats_win_rate_prompts(const int64_t *wins, const int64_t *ties, const int64_t *games,
                                  int64_t n_prompts) {
    /* Two passes over the per-prompt rates without a scratch array: stats_mean's arithmetic
     * on values recomputed each pass (the same doubles both times). */
    stats_ci_t r = {0, NAN, NAN, NAN};
    double sum = 0.0, ss = 0.0;
    for (int64_t i = 0; i < n_prompts; i++) {
        if (games[i] <= 0) continue;
        sum += ((double)wins[i] + 0.5 * (double)ties[i]) / (double)games[i];
        r.n++;
    }
    if (r.n < 1) return r;
    r.mean = sum / (double)r.n;
    if (r.n < 2) return r;
    for (int64_t i = 0; i < n_prompts; i++) {
        if (games[i] <= 0) continue;
        const double d = ((double)wins[i] + 0.5 * (double)ties[i]) / (double)games[i] - r.mean;
        ss += d * d;
    }
    const double half =
        stats_t_quantile(0.975, (double)(r.n - 1)) * sqrt(ss / (double)(r.n - 1) / (double)r.n);
    r.lo = r.mean - half;
    r.hi = r.mean + half;
    return r;
}

stats_ci_t stats_wilson(double successes, int64_t n) {
    stats_ci_t r = {n, NAN, NAN, NAN};
    if (n < 1) return r;
    /* center = (p + z²/2n) / (1 + z²/n), half = z/(1 + z²/n) · √(p(1-p)/n + z²/4n²) */
    const double N = (double)n, z = STATS_Z975, z2 = z * z, p = successes / N;
    const double denom = 1.0 + z2 / N;
    const double center = (p + z2 / (2.0 * N)) / denom;
    const double var = p * (1.0 - p) / N + z2 / (4.0 * N * N);
    const double half = z / denom * sqrt(var > 0.0 ? var : 0.0);
    r.mean = p;
    r.lo = center - half;
    r.hi = center + half;
    /* at p = 0 (p = 1) the lower (upper) end is exactly 0 (1); rounding would miss it */
    if (r.lo < 0.0 || successes <= 0.0) r.lo = 0.0;
    if (r.hi > 1.0 || successes >= N) r.hi = 1.0;
    return r;
}

stats_ci_t stats_win_rate_trials(int64_t wins, int64_t ties, int64_t n) {
    return stats_wilson((double)wins + 0.5 * (double)ties, n);
}

stats_ci_t stats_accuracy(int64_t correct, int64_t n) {
    return stats_wilson((double)correct, n);
}
