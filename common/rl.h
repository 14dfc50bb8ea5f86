/* common/rl.h: the RLHF math of InstructGPT on caller-owned buffers — the reward model's
 * ranking loss, the reward read at a sequence's last token, and PPO's pieces (per-token KL
 * rewards, GAE, whitening, running score statistics, clipped policy and value losses, the
 * adaptive KL controller). Semantics follow TRL's PPOTrainer and Huang et al., "The N
 * Implementation Details of RLHF with PPO".
 * Contract: no function allocates, prints or fails; sizes are the caller's (asserted). Forward
 * returns the loss (a double) and fills an optional stats struct; backward WRITES every
 * element of its d* buffer (zeros outside the response tokens), so it goes straight into
 * gpt_backward. Reductions people see are double; buffers are float. No global state. */
#ifndef RLHF_RL_H
#define RLHF_RL_H
#include <stdbool.h>
#include <stdint.h>

/* ---- reward model: K-way ranking loss (InstructGPT §3.5) ----------------------------------
 * A batch holds n_prompts prompts; prompt p has counts[p] = K completions, stored one after
 * another: rewards and ranks are flat over Σ counts (prompt 0's K first, then prompt 1's, ...).
 * ranks: 1 = best, a tie shares a rank; only their order matters (any int32). Every untied pair
 * (w, l) with rank_w < rank_l is one comparison; a prompt's loss is
 *     −1/P · Σ_(w,l) log σ(r_w − r_l)      over its P untied pairs,
 * so a prompt weighs the same whatever its K (InstructGPT: the C(K,2) comparisons of a prompt
 * are one batch element, which also keeps them from overfitting). The batch loss is the mean
 * over prompts with P > 0; a prompt whose completions all tie contributes nothing. */
typedef struct {
    double loss;     /* the batch loss (what forward returns); 0 when no prompt has a pair */
    double correct;  /* pairs with r_w > r_l, plus 0.5 for each pair with r_w == r_l exactly
                        (a tie of rewards is a coin flip, so chance level stays 0.5) */
    int64_t pairs;   /* untied pairs in the batch: accuracy = correct / pairs */
    int64_t prompts; /* prompts with P > 0 (the loss's denominator) */
} rl_rank_stats_t;

/* rewards (Σ counts) and ranks (Σ counts) as above, counts (n_prompts) ≥ 0. Returns the batch
 * loss; fills stats when not NULL (sum correct/pairs over batches for an exact accuracy).
 * log σ(d) = −softplus(−d), evaluated stably: no overflow for any finite d. O(Σ K²). */
double rl_rank_forward(rl_rank_stats_t *stats, const float *rewards, const int32_t *ranks,
                       const int64_t *counts, int64_t n_prompts);
/* drewards (Σ counts) = dLoss/dr for the loss above: each pair adds −σ(r_l − r_w)/(P·n) to its
 * winner and the opposite to its loser (n = prompts with P > 0). Writes; all zeros for a
 * prompt without pairs. */
void rl_rank_backward(float *drewards, const float *rewards, const int32_t *ranks,
                      const int64_t *counts, int64_t n_prompts);

/* ---- the reward at a sequence's last token -------------------------------------------------
 * A score-head model (gpt.h) gives values (B, T); a reward model reads template(prompt,
 * response) + end-of-text, right-padded, and its reward is the value at the last real token. */

/* rewards[b] = values[b, lengths[b] − 1], 1 ≤ lengths[b] ≤ T (as gpt_score_at). */
void rl_last_forward(float *rewards, const float *values, const int64_t *lengths, int64_t B,
                     int64_t T);
/* dvalues (B, T): drewards[b] at (b, lengths[b] − 1), zero elsewhere (writes every element). */
void rl_last_backward(float *dvalues, const float *drewards, const int64_t *lengths, int64_t B,
                      int64_t T);

/* ---- PPO ---------------------------------------------------------------------------------- */

/* Where the response tokens of a (B, T) batch are: row b's are positions start[b] ..
 * start[b] + len[b] − 1, in order (start NULL = every row starts at 0). Two layouts work:
 * response-aligned arrays (start NULL, T = the longest response), or the full (B, T) arrays of
 * a forward over prompt + response, where the log-prob of response token i and the value
 * predicting it both sit at position prompt_len[b] − 1 + i (so start[b] = prompt_len[b] − 1),
 * and no gather or scatter is needed around gpt_lm_logprobs / gpt_backward. Positions outside
 * the spans are never read (they may hold garbage) and backward writes 0 there.
 * An empty response (len 0) has no token: no KL, no score, no loss; it is skipped everywhere,
 * and the caller decides what it means (e.g. give it a penalty and keep it out of the batch:
 * gen's max_new ≥ 1 never produces one). 0 ≤ start[b], start[b] + len[b] ≤ T. */
typedef struct {
    const int64_t *start; /* (B) first response position of each row; NULL = 0 */
    const int64_t *len;   /* (B) response tokens of each row */
    int64_t B, T;         /* rows, and the row stride of every (B, T) buffer */
} rl_span_t;

/* Response tokens in the span (Σ len). */
int64_t rl_span_count(const rl_span_t *span);

/* Per-token rewards (B, T) for PPO (Ziegler et al.; InstructGPT's objective applied per token):
 *     rewards[t] = −beta · (logp[t] − ref_logp[t]),  plus scores[b] at the row's last token,
 * where logp / ref_logp are the policy's and the frozen reference's log-probs of the sampled
 * tokens (at the sampling temperature), and scores (B) the reward model's (after any bias or
 * whitening). Writes 0 outside the span. Returns the mean over non-empty rows of each row's
 * summed KL estimate Σ_t (logp − ref_logp): the figure the KL controller and the logs use. */
double rl_token_rewards(float *rewards, const float *logp, const float *ref_logp,
                        const float *scores, float beta, const rl_span_t *span);

/* Generalised advantage estimation (Schulman et al. 2016) over each row's response tokens,
 * with values (B, T) = V_t from the value model and V after the last token = 0 (the episode
 * ends there):
 *     δ_t = r_t + γ·V_{t+1} − V_t,   A_t = δ_t + γ·λ·A_{t+1},   returns_t = A_t + V_t.
 * advantages and returns (B, T) are written, 0 outside the span. Whiten the advantages
 * afterwards (rl_whiten), not the returns. */
void rl_gae(float *advantages, float *returns, const float *rewards, const float *values,
            float gamma, float lambda, const rl_span_t *span);

/* Masked whitening in place over the response tokens of the whole batch (TRL masked_whiten):
 *     x ← (x − mean) / sqrt(var + 1e-8)   (+ mean again when !shift_mean),
 * var with Bessel's correction (n − 1) as TRL's masked_var; with one token var is taken as 0.
 * shift_mean = true for advantages; false keeps the mean (TRL's whiten_rewards on per-token
 * rewards). Positions outside the span are untouched. Returns the number of tokens n. */
#define RL_WHITEN_EPS 1e-8 /* TRL masked_whiten */
int64_t rl_whiten(float *x, bool shift_mean, const rl_span_t *span);

/* A batch split over processes (data-parallel PPO): each holds some rows, and the statistics
 * must be those of all of them. reduce(v, n) replaces v[0..n) by its sums over the processes
 * (common/dist's dist_sum_f64); every process calls the _reduced function at once. A reduce
 * that leaves v alone (one process) gives rl_whiten's and rl_explained_variance's bits. */
typedef void (*rl_reduce_fn)(double *v, int n);
/* rl_whiten over the rows of every process: the mean and variance are global. Returns the
 * global number of tokens. */
int64_t rl_whiten_reduced(float *x, bool shift_mean, const rl_span_t *span, rl_reduce_fn reduce);

/* Running mean and variance of the scores over a whole run, for --whiten-rewards: each batch's
 * scores are merged in (Chan et al.'s parallel update, exact for any split into batches), then
 * normalised by the statistics so far (TRL RunningMoments). Plain doubles: save and restore it
 * as it is in train_state for an exact resume. Start from RL_RUNNING_INIT (count 0). */
typedef struct {
    double count; /* scores seen */
    double mean;  /* their mean */
    double var;   /* their variance, biased (÷ count) */
} rl_running_t;

#define RL_RUNNING_INIT ((rl_running_t){.count = 0.0, .mean = 0.0, .var = 0.0})

/* Merges the n values of x into the statistics. */
void rl_running_update(rl_running_t *run, const float *x, int64_t n);
/* The unbiased standard deviation so far (÷ count − 1); 1 before two values were seen. */
double rl_running_std(const rl_running_t *run);
/* x ← (x − mean) / (std + 1e-8), or x / (std + 1e-8) when !shift_mean, over n values. */
void rl_running_normalize(const rl_running_t *run, float *x, int64_t n, bool shift_mean);

/* Clipped surrogate policy loss (PPO, as TRL): with ratio = exp(logp − old_logp) per token,
 *     loss = mean_tokens max(−A·ratio, −A·clip(ratio, 1 − ε, 1 + ε)),
 * the mean over every response token of the batch (not per row). logp from this forward,
 * old_logp recorded at rollout (both at the sampling temperature), advantages whitened.
 * clip = ε (PPO's 0.2; INFINITY: the plain policy gradient −A·ratio). */
typedef struct {
    double loss;      /* what forward returns */
    double clipfrac;  /* share of tokens where the clipped branch is the larger (no gradient) */
    double approx_kl; /* 0.5 · mean (logp − old_logp)², TRL's approxkl (k2 estimator of
                         KL(old ‖ new)); mean (ratio − 1) − log ratio (k3) is not reported */
    double ratio;     /* mean ratio (≈ 1 before the rollout's first update) */
    int64_t tokens;   /* response tokens (the mean's denominator) */
} rl_policy_stats_t;

/* All inputs (B, T) over the span; clip = ε. Returns the loss (0 when the span is empty). */
double rl_policy_forward(rl_policy_stats_t *stats, const float *logp, const float *old_logp,
                         const float *advantages, float clip, const rl_span_t *span);
/* dlogp (B, T) = dLoss/dlogp: −A·ratio/n where the unclipped branch is the larger (also on
 * ties, where both branches agree), 0 where the clipped one is (clip's gradient is 0 outside
 * its range) and outside the span. Feed it to gpt_backward after gpt_lm_logprobs. */
void rl_policy_backward(float *dlogp, const float *logp, const float *old_logp,
                        const float *advantages, float clip, const rl_span_t *span);

/* Clipped value loss (TRL; Huang et al. detail "value function loss clipping"):
 *     loss = 0.5 · mean_tokens max((V − R)², (clip(V, V_old − ε_v, V_old + ε_v) − R)²)
 * with V the value model's output now, V_old at rollout, R the GAE returns. clip = ε_v
 * (INFINITY: no clipping, the plain squared error). */
typedef struct {
    double loss;     /* what forward returns */
    double clipfrac; /* share of tokens where the clipped term is the larger (no gradient) */
    int64_t tokens;  /* response tokens */
} rl_value_stats_t;

double rl_value_forward(rl_value_stats_t *stats, const float *values, const float *old_values,
                        const float *returns, float clip, const rl_span_t *span);
/* dvalues (B, T) = (V − R)/n where the unclipped term is the larger (or equal), 0 where the
 * clipped term is (V is then outside the clip range) and outside the span. */
void rl_value_backward(float *dvalues, const float *values, const float *old_values,
                       const float *returns, float clip, const rl_span_t *span);

/* 1 − Var(R − V) / Var(R) over the response tokens (how much of the returns the value model
 * explains: 1 perfect, 0 no better than a constant, < 0 worse). NaN when Var(R) = 0 or the
 * span is empty. */
double rl_explained_variance(const float *values, const float *returns, const rl_span_t *span);
/* The same over the rows of every process (see rl_whiten_reduced). */
double rl_explained_variance_reduced(const float *values, const float *returns,
                                     const rl_span_t *span, rl_reduce_fn reduce);

/* The KL coefficient β (Ziegler et al. 2019, "adaptive KL"; TRL AdaptiveKLController):
 *     β ← β · (1 + clip(KL/target − 1, −0.2, 0.2) · n_steps / horizon)
 * after each batch, with KL the mean summed KL per response (rl_token_rewards' return) and
 * n_steps the batch's episodes. target ≤ 0 keeps β fixed. Plain doubles: checkpoint it as is. */
typedef struct {
    double value;   /* β now (--kl-coef at start; InstructGPT 0.02) */
    double target;  /* --kl-target, in nats per response; ≤ 0 = fixed β */
    double horizon; /* episodes over which β may change by ±20% (Ziegler et al.: 10000) */
} rl_kl_ctl_t;

#define RL_KL_CLIP 0.2 /* Ziegler et al. */
void rl_kl_ctl_update(rl_kl_ctl_t *ctl, double kl, int64_t n_steps);

/* The pretraining term (PPO-ptx, InstructGPT eq. 2) needs nothing here: it is the language-
 * model loss on a pretraining batch, weighted by γ_ptx. The objective maximises
 * γ_ptx · mean log π(x) (the mean per-token log-likelihood), so the minimised loss is
 *     policy loss + γ_ptx · (−mean_tokens logp_ptx),
 * run as a second forward/backward of the policy on the pretraining batch with
 * dout = −γ_ptx / n_kept on kept targets (gpt_lm_loss's gradient scaled by γ_ptx), at
 * temperature 1. gpt_backward adds into the gradient slab, so the two backward passes sum
 * before the optimizer step; report the two losses separately. */
#endif /* RLHF_RL_H */
