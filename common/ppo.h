/* common/ppo.h: the PPO-ptx iteration engine (InstructGPT's third stage, DESIGN.md §4): one
 * call rolls out B prompts with the policy, has the caller score them, computes per-token KL
 * rewards against the frozen reference, GAE advantages from the value model, and runs
 * `epochs` passes of clipped policy and value updates in shuffled minibatches, every policy
 * update also carrying the pretraining (ptx) term.
 * Owns: the generators (one per OpenMP thread, each sampling its part of the batch on its
 * own thread: ppo.c says why), the rollout and minibatch buffers, its RNG stream, the KL
 * controller and the running score statistics, all allocated by ppo_new; ppo_iterate
 * allocates nothing.
 * Borrows: the policy, reference and value models and the two optimizers (they must outlive
 * the engine); ppo_new sizes the models' activations with gpt_alloc. Not thread-safe.
 * Fails: ppo_new on bad settings or out of memory; ppo_iterate on bad prompts or when a caller
 * callback fails (its message is kept). The math is rl.h's; the optimizer step is the
 * caller's (clipping, learning rate, NaN check, AdamW), through the update callback.
 * Data-parallel (mpirun, common/dist.h): every rank calls ppo_iterate with the same B prompts
 * and an engine made with the same config; rank r rolls out, scores and runs the forwards of
 * its share of the rows (dist_share: [first, first + n)), and the ranks together compute what
 * one process computes (up to the order of float sums): global score statistics, advantage
 * whitening and figures, and per update a gradient of which each rank holds its part, to be
 * SUMMED over the ranks by the update callback (harness_grad_sum, then harness_update). The
 * engine's stream, β and score statistics stay the same on every rank. */
#ifndef RLHF_PPO_H
#define RLHF_PPO_H
#include "ckpt.h"
#include "err.h"
#include "gpt.h"
#include "optim.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t batch;           /* B: prompts (= rollouts) per iteration, at most */
    int64_t prompt_max;      /* the longest prompt in tokens (with its template) */
    int64_t max_new;         /* new tokens per response, at most (≥ 1) */
    float temperature;       /* τ > 0: sampling AND every log-prob (Huang et al.) */
    int32_t eos_id;          /* end-of-text; < 0: responses never end (always max_new) */
    int32_t pad_id;          /* right padding of the full sequences (never read by a model) */
    float missing_eos_score; /* the score of a response without end-of-text by the limit, and
                                of an empty one (eos first): it replaces the caller's score.
                                NaN, or eos_id < 0, keeps the caller's scores */
    bool whiten_rewards;     /* normalise scores by running mean and std (--whiten-rewards) */
    double kl_coef;          /* β at the start (InstructGPT 0.02) */
    double kl_target;        /* adaptive KL target in nats per response; ≤ 0 = fixed β */
    double kl_horizon;       /* the controller's horizon in episodes (Ziegler et al.: 10000) */
    float gamma, lambda;     /* GAE discount and λ (1, 0.95) */
    float clip;              /* ε of the policy ratio (0.2) */
    float value_clip;        /* ε_v of the value clip (0.2) */
    int epochs;              /* passes over each iteration's rollouts (4) */
    int64_t minibatch;       /* rollouts per optimizer update (≤ batch) */
    double ptx_coef;         /* γ_ptx on the pretraining term (see ppo_iterate); 0 = plain PPO */
    int64_t ptx_rows, ptx_T; /* the pretraining batch of every policy update: rows × T tokens */
    uint64_t seed;           /* the engine's stream: generation seeds and minibatch shuffles */
} ppo_config_t;

/* batch 16, prompt_max 64, max_new 48, τ 1, eos -1, pad 0, missing_eos_score -1, no reward
 * whitening, β 0.02 fixed (horizon 10000), γ 1, λ 0.95, ε 0.2, ε_v 0.2, 4 epochs of
 * minibatch 16, γ_ptx 1 on 16 × 64 tokens, seed 0. */
ppo_config_t ppo_config_default(void);

/* The rollouts of the current (or last) iteration, borrowed from the engine: valid until the
 * next ppo_iterate / ppo_destroy. Rollout b answers prompt first + b of the iteration's call;
 * under MPI the view holds this rank's rollouts only. */
typedef struct {
    int64_t B;                   /* rollouts (this rank's, under MPI) */
    int64_t first;               /* the batch position of rollout 0 (0 in one process) */
    int64_t stride;              /* row stride of tokens: prompt_max + max_new */
    const int32_t *tokens;       /* (B, stride) prompt b, then its response, then pad_id */
    const int64_t *prompt_len;   /* (B) */
    const int64_t *response_len; /* (B) new tokens, end-of-text included when ended (≥ 1) */
    const bool *ended;           /* (B) the response ended with end-of-text */
    const float *scores;         /* (B) the scores used, before whitening (after the missing-eos
                                    substitution); valid once the iteration has them */
} ppo_rollouts_t;

/* Which model an update callback is asked to step. */
typedef enum { PPO_POLICY = 0, PPO_VALUE = 1 } ppo_role_t;

/* What the engine asks of its caller; ctx is passed back untouched. Each returns 0, or -1 with
 * err set, which stops the iteration (ppo_iterate returns -1 with that message). */
typedef struct {
    void *ctx;
    /* The rollouts to score (decode, template, send the request). Called right after
     * generation and before the reference and value forwards, so the network wait overlaps
     * them. May be NULL when score_recv does all the work. */
    int (*score_send)(void *ctx, const ppo_rollouts_t *rollouts, err_t *err);
    /* Writes one score per rollout of the view score_send was given into scores (its B).
     * Required. */
    int (*score_recv)(void *ctx, float *scores, err_t *err);
    /* Fills a pretraining batch: tokens and targets (ptx_rows, ptx_T), targets[r,t] the token
     * following tokens[r,t] or < 0 to ignore it. Called once per policy update when
     * ptx_coef != 0; required then. */
    int (*ptx_batch)(void *ctx, int32_t *tokens, int32_t *targets, int64_t rows, int64_t T,
                     err_t *err);
    /* One optimizer update of model from its gradient slab (e.g. optim_clip_grad_norm, a NaN
     * check, optim_step at the scheduled learning rate). Required. */
    int (*update)(void *ctx, ppo_role_t role, gpt_model_t *model, optim_t *opt, err_t *err);
} ppo_callbacks_t;

/* One iteration's figures. Means over updates weigh every update alike. */
typedef struct {
    double score_raw;      /* mean score, after the missing-eos substitution */
    double score;          /* mean score the rewards used (after whitening, if on) */
    double kl;             /* mean over rollouts of Σ_t (logp − ref_logp) at rollout, nats */
    double kl_coef;        /* β used by this iteration (the controller updates after it) */
    double entropy;        /* mean per response token of the policy's entropy at τ, nats
                              (from the first epoch's forwards, before that token's update) */
    double policy_loss;    /* clipped surrogate, mean over updates */
    double clipfrac;       /* share of tokens clipped, mean over updates */
    double approx_kl;      /* 0.5·mean (logp − old_logp)², mean over updates */
    double value_loss;     /* clipped value loss, mean over updates */
    double value_clipfrac; /* share of tokens whose value was clipped, mean over updates */
    double explained_var;  /* of the returns by the rollout's values (NaN if undefined) */
    double ptx_loss;       /* mean per-token NLL of the pretraining batches (0 without) */
    double response_len;   /* mean new tokens per response, end-of-text included */
    double ended;          /* share of responses that ended with end-of-text */
    int64_t tokens;        /* response tokens of the iteration (of every rank) */
    int64_t rank_tokens;   /* ... of this rank's rollouts (one process: tokens) */
    int64_t updates;       /* optimizer updates of each model */
    double tokens_per_s;   /* response tokens / the iteration's wall time */
    /* wall time in seconds: the whole iteration and its parts */
    double t_total;
    double t_generate;   /* rollout (prefill + decode) and score_send */
    double t_score_wait; /* inside score_recv, after the forwards */
    double t_forward;    /* reference and value forwards over the rollouts */
    double t_update;     /* PPO forward/backward of both models, the update callbacks */
    double t_ptx;        /* pretraining batches: callback, forward, backward */
} ppo_stats_t;

typedef struct ppo ppo_t;

/* An engine for cfg over borrowed models: policy (LM head, trained with policy_opt), reference
 * (LM head, frozen: forward only) and value (score head, trained with value_opt). The
 * optimizers are only handed to the update callback (and checked to fit their models); either
 * may be NULL when the callback keeps its own (ppo train: the training harness owns them, and
 * its train_state.bin needs the engine's sections before the optimizers exist). All three
 * read the same tokens (equal vocab_size), and prompt_max + max_new and ptx_T must fit their
 * n_positions. Sizes their activations with gpt_alloc (policy: training, max(minibatch,
 * ptx_rows) rows; reference: inference; value: training; minibatch rows) and makes the
 * generator. Caller frees with ppo_destroy (the models and optimizers stay the caller's). NULL
 * with err set on bad settings, mismatched models or out of memory. */
ppo_t *ppo_new(gpt_model_t *policy, gpt_model_t *reference, gpt_model_t *value, optim_t *policy_opt,
               optim_t *value_opt, const ppo_config_t *cfg, err_t *err);

/* Frees what the engine owns and NULLs *ppo; accepts NULL and *ppo == NULL. */
void ppo_destroy(ppo_t **ppo);

/* One PPO-ptx iteration on B ≤ batch prompts (B, stride), right-padded, prompt b of lens[b]
 * tokens, 1 ≤ lens[b] ≤ prompt_max, templated and tokenized by the caller:
 *  1. rollout: the policy samples at τ (full softmax, no top-k/top-p: PPO's ratio needs the
 *     distribution it samples from); old log-probs are the generator's log softmax(logits/τ);
 *  2. score_send(rollouts); 3. reference forward (ref log-probs at τ) and value forward (a
 *     value per response token, read at the position that predicts it);
 *  4. score_recv; the missing-eos substitution; optional running whitening of the scores;
 *  5. rewards −β·(logp − ref_logp) per token plus the score at the last token (rl_token_rewards),
 *     GAE (γ, λ), advantages whitened over the iteration's response tokens;
 *  6. `epochs` passes over the rollouts in minibatches shuffled by the engine's stream. Per
 *     minibatch: policy forward → log-probs at τ → clipped surrogate → backward; then the
 *     ptx term, γ_ptx · (mean per-token NLL of a ptx_batch), forward/backward into the same
 *     gradients; update(PPO_POLICY); then value forward → clipped value loss → backward →
 *     update(PPO_VALUE). Gradients are zeroed before each update's first backward.
 *  The loss of a policy update is  L_clip + γ_ptx · NLL_ptx  with BOTH terms per-token means
 *  over their own tokens (rl.h): the whitened advantages have unit scale, and so has a
 *  token's NLL gradient (onehot − softmax), so γ_ptx = 1 weighs a pretraining token like a
 *  response token of unit advantage, whatever the minibatch or ptx batch sizes. (The loss
 *  VALUES do not compare: L_clip is ~0 at ratio 1 because the advantages have mean 0, while the
 *  NLL is a few nats; balance by gradients, not by printed losses.) InstructGPT's 27.8 goes with
 *  its own normalisation and is only a starting point.
 *  7. the adaptive KL controller (when kl_target > 0) with the iteration's mean KL.
 * stats (may be NULL) gets the figures. 0, or -1 with err set: bad prompts (nothing changed),
 * or a failed callback (when update failed, the models may be part-way through the
 * iteration: restore the last checkpoint). */
int ppo_iterate(ppo_t *ppo, const int32_t *prompts, int64_t stride, const int64_t *lens, int64_t B,
                const ppo_callbacks_t *cb, ppo_stats_t *stats, err_t *err);

/* The last iteration's rollouts (B 0 before the first). */
ppo_rollouts_t ppo_rollouts(const ppo_t *ppo);

/* β now (after the last iteration's controller update). */
double ppo_kl_coef(const ppo_t *ppo);

/* The engine state an exact resume needs, as checkpoint sections pointing into the engine:
 * "ppo.rng" (the stream), "ppo.kl_coef" (double β), "ppo.score_moments" (3 doubles: count,
 * mean, biased variance of the scores seen), "ppo.iterations" (int64). Save them with the
 * optimizers' sections and both models' parameters; load them into an engine made with the
 * same config. Writes PPO_NUM_SECTIONS entries; valid while ppo lives. */
#define PPO_NUM_SECTIONS 4
void ppo_sections(ppo_t *ppo, ckpt_section_t out[PPO_NUM_SECTIONS]);
#endif /* RLHF_PPO_H */
