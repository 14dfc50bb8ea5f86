/* common/gen.h: KV-cached batched sampling from a GPT-2 language model.
 * Owns: the K/V cache, per-step activations, logits, per-sequence RNG streams and outputs, all
 * sized once by gen_new; gen_start/gen_step/gen_run never allocate. Borrows the model (reads
 * its parameters at every step; the model must outlive the generator, and parameter updates
 * between runs are seen by the next run). Not thread-safe per generator.
 * Fails: gen_new and gen_start return NULL / -1 with err set on bad sizes or options; a step
 * cannot fail. Only LM-head models generate (a score-head model is an error).
 * Prompts are RIGHT-padded (B, stride) token rows with a length each (a ragged batch): every
 * sequence keeps its own position counter from 0, so padding never shifts position ids. */
#ifndef RLHF_GEN_H
#define RLHF_GEN_H
#include "err.h"
#include "gpt.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    float temperature;  /* 0 = greedy (argmax, first on ties); > 0 samples softmax(logits/temp) */
    int64_t top_k;      /* sample among the top_k most likely tokens only; 0 = no limit */
    float top_p;        /* nucleus: then among the smallest most-likely set whose probability
                           reaches top_p (renormalised); in (0, 1], 1 = off */
    int64_t max_new;    /* at most this many new tokens per sequence (≥ 0) */
    int32_t eos_id;     /* end-of-text: a sequence stops after sampling it; < 0 = never */
    uint64_t seed;      /* with seq_offset, picks each sequence's RNG stream */
    int64_t seq_offset; /* sequence b samples from stream (seed, seq_offset + b), so its tokens
                           do not depend on its batchmates, and a batch split into chunks
                           (offset = index of the chunk's first sequence) samples the same.
                           Batchmates and thread counts still change logits by float rounding
                           (~1e-7); the draw walks tokens in id order, so that moves a sample
                           only when it falls within the rounding of an edge */
} gen_opts_t;

/* Plain multinomial sampling at temperature 1, no end-of-text, 64 new tokens. */
#define GEN_OPTS_DEFAULT                                                                           \
    ((gen_opts_t){.temperature = 1.0f,                                                             \
                  .top_k = 0,                                                                      \
                  .top_p = 1.0f,                                                                   \
                  .max_new = 64,                                                                   \
                  .eos_id = -1,                                                                    \
                  .seed = 0,                                                                       \
                  .seq_offset = 0})

/* The outputs of the current (or last) run, borrowed from the generator: valid and unchanged
 * until the next gen_start / gen_run / gen_destroy. */
typedef struct {
    int64_t B;             /* sequences in the run */
    int64_t stride;        /* row stride of tokens and logprobs (the generator's T_max) */
    const int32_t *tokens; /* new tokens of sequence b: tokens[b*stride + i], i < count[b];
                              when ended[b], the last one is eos_id */
    const float *logprobs; /* logprobs[b*stride + i] = log softmax(logits / temperature) at
                              tokens[b*stride + i], over the FULL vocabulary: before top-k/top-p
                              truncation, so it is the quantity PPO recomputes from a full
                              forward (Huang et al., "N implementation details of RLHF with
                              PPO": log-probs of the temperature-scaled logits). At temperature
                              0 (greedy) it is log softmax(logits), i.e. temperature 1. */
    const int64_t *count;  /* (B) new tokens of each sequence, eos included */
    const bool *ended;     /* (B) true when the sequence stopped by sampling eos_id; false when
                              it stopped at max_new or at T_max total tokens */
} gen_result_t;

typedef struct gen gen_t;

/* A generator for batches of up to B_max sequences of up to T_max tokens each (prompt + new,
 * T_max ≤ n_positions). Allocates once: K and V caches of 2·L·B_max·T_max·C floats (laid out
 * (L, B_max, NH, T_max, HS): one head's keys of one sequence are contiguous, which is what a
 * decode step's attention reads), activations for max(B_max, 256) rows (prefill runs in
 * chunks of that many prompt tokens), logits (B_max, V) and sampling scratch 2·(B_max, V).
 * Borrows model (an LM-head model; must outlive the generator). Caller frees with
 * gen_destroy. NULL with err set on a score-head model, bad sizes or out of memory. */
gen_t *gen_new(const gpt_model_t *model, int64_t B_max, int64_t T_max, err_t *err);

/* Frees everything and NULLs *gen; accepts NULL and *gen == NULL. */
void gen_destroy(gen_t **gen);

/* Starts a run: checks the inputs, seeds the streams and prefills the cache with every prompt
 * (all prompt tokens go through the model as rows of one batched product, in chunks, no
 * padding rows). prompts is (B, stride) right-padded; prompt b is prompts[b*stride + 0 ..
 * lens[b]), 1 ≤ lens[b] < T_max (room for at least one new token), ids in [0, V); padding is
 * never read. Afterwards gen_logits(b) gives each sequence's next-token logits.
 * -1 with err set (and an empty result) on B outside [1, B_max], a bad length or id, or bad
 * options (temperature < 0, top_k < 0, top_p outside (0, 1], max_new < 0, eos_id ≥ V). */
int gen_start(gen_t *gen, const int32_t *prompts, int64_t stride, const int64_t *lens, int64_t B,
              const gen_opts_t *opts, err_t *err);

/* One decode step: samples one token for every unfinished sequence from its current logits,
 * appends it with its log-prob, stops the sequence at eos_id, max_new or T_max total tokens,
 * then runs the still-unfinished sequences' new tokens through the model as one row each
 * (one batched product per weight: each step reads the weights once) to get their next
 * logits. Returns how many sequences are still unfinished (0: the run is over). */
int64_t gen_step(gen_t *gen);

/* gen_start, then gen_step until every sequence has finished. 0, or -1 with err set as
 * gen_start. Outputs via gen_result. */
int gen_run(gen_t *gen, const int32_t *prompts, int64_t stride, const int64_t *lens, int64_t B,
            const gen_opts_t *opts, err_t *err);

/* Raw logits (V values, before temperature) that sequence b's next token will be sampled
 * from: after gen_start, the model's output at the last prompt token; after each gen_step,
 * at the token just appended. NULL when sequence b has finished or b is outside the run.
 * Borrowed: valid until the next gen_step / gen_start. */
const float *gen_logits(const gen_t *gen, int64_t b);

/* The current run's outputs (see gen_result_t). */
gen_result_t gen_result(const gen_t *gen);
#endif /* RLHF_GEN_H */
