/* common/stats.h: the figures an evaluation reports, each with a 95% interval: a mean (Student
 * t), a win rate (two definitions, below), a pairwise accuracy (Wilson). Pure functions of
 * their inputs: no allocation, no state, cannot fail (too little data gives NAN bounds).
 *
 * Which interval is which:
 *   - stats_mean, stats_win_rate_prompts: Student t over per-UNIT values (one value per prompt),
 *     mean ± t(0.975, n-1)·s/√n. Use it when the trials come in groups that are not independent
 *     of each other (K samples of one prompt share the prompt's difficulty): the prompt is the
 *     unit, as `sft eval --judge` and `ppo eval` report.
 *   - stats_wilson, stats_win_rate_trials, stats_accuracy: the Wilson score interval for n
 *     INDEPENDENT trials (Wilson 1927), which, unlike the normal ±1.96·√(p(1-p)/n), stays inside
 *     [0, 1] and is not empty at p = 0 or 1. Use it when every trial is its own unit (one
 *     comparison per prompt; a reward model's accuracy over held-out pairs). */
#ifndef RLHF_STATS_H
#define RLHF_STATS_H
#include <stdint.h>

/* A figure and its 95% interval. lo and hi are NAN when there is too little data (a Student t
 * interval needs n ≥ 2, a Wilson interval n ≥ 1); mean is NAN when n = 0. */
typedef struct {
    int64_t n;   /* units the figure is over (prompts, trials, pairs) */
    double mean; /* the figure: a mean, a win rate or an accuracy */
    double lo;   /* lower end of the 95% interval */
    double hi;   /* upper end */
} stats_ci_t;

/* The standard normal's 0.975 quantile, the z of every 95% interval here. */
#define STATS_Z975 1.959963984540054

/* The p quantile of Student's t with df > 0 degrees of freedom (df need not be an integer),
 * 0 < p < 1: the t with P(T ≤ t) = p. Exact to ~1e-10 (1e-9 past df 1e6; bisection on the
 * regularised incomplete beta function), e.g. t(0.975, 1) = 12.7062, t(0.975, 10) = 2.2281, and the
 * normal quantile as df → ∞ (1.96 for 0.975). NAN for p or df outside the domain. */
double stats_t_quantile(double p, double df);

/* The standard normal's p quantile, 0 < p < 1 (NAN outside). */
double stats_normal_quantile(double p);

/* Mean of x[0..n) with a Student t 95% interval: mean ± t(0.975, n-1)·s/√n, s the sample
 * standard deviation (n-1 in the denominator; two passes, so a large common offset costs no
 * precision). NAN bounds when n < 2. */
stats_ci_t stats_mean(const double *x, int64_t n);

/* Win rate of A over B with ties counted half, over n_prompts prompts where prompt i had
 * games[i] comparisons of which A won wins[i] and tied ties[i]: each prompt's rate
 * (wins + ties/2)/games is one value, and the result is stats_mean over those values (the
 * prompt is the unit: `ppo eval`'s definition). A prompt with games[i] = 0 is left out of n.
 * Like any t interval over few prompts, the bounds may pass 0 or 1. */
stats_ci_t stats_win_rate_prompts(const int64_t *wins, const int64_t *ties, const int64_t *games,
                                  int64_t n_prompts);

/* Wilson score 95% interval for `successes` out of n independent trials (successes may be
 * fractional: a tie counted as half a success). mean = successes/n. NAN everything when n = 0. */
stats_ci_t stats_wilson(double successes, int64_t n);

/* Win rate over n independent games, ties counted half, with its Wilson interval:
 * stats_wilson(wins + ties/2, n). */
stats_ci_t stats_win_rate_trials(int64_t wins, int64_t ties, int64_t n);

/* Pairwise accuracy (a reward model ranks `correct` of n held-out pairs the way people did)
 * with its Wilson interval: stats_wilson(correct, n). */
stats_ci_t stats_accuracy(int64_t correct, int64_t n);
#endif /* RLHF_STATS_H */
