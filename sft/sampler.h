/* sft/sampler.h: K completions per prompt from a language model, for `sft sample` (which
 * prints them) and `sft eval --judge` (which scores them). Prompts are wrapped in the template
 * and tokenized once; sequences (prompt i, sample j) run through the KV-cached generator in
 * batches, and each finished completion is handed to a callback, prompt by prompt, in order.
 * Sequence s = i·K + j samples from its own RNG stream (seed, s), so the output depends on
 * --seed only, not on --batch or on which sequences share a batch.
 * Owns: the tokenized prompts (release them); the generator lives inside sft_sample_run.
 * Fails: -1 with err set; a prompt that leaves no room for a response names FILE:LINE. */
#ifndef RLHF_SFT_SAMPLER_H
#define RLHF_SFT_SAMPLER_H
#include "data.h"
#include "err.h"
#include "gen.h"
#include "model_io.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Templated, tokenized prompts: prompt i is ids[offset[i] .. offset[i+1]). */
typedef struct {
    int64_t n;
    const data_examples_t *examples; /* borrowed: prompt i is examples->ex[i].prompt */
    int64_t *offset;                 /* [n + 1] */
    int32_t *ids;                    /* data_template_prompt(prompt) tokens, back to back */
    int64_t max_len;                 /* longest prompt in tokens */
} sft_prompts_t;

/* Tokenizes data_template_prompt(prompt) of every example with sft_model_encode and checks
 * each leaves room for at least one new token (1 ≤ tokens < n_positions):
 * "prompts.jsonl:7: prompt is 130 tokens with the template, the context is 128: no room for a
 * response" (examples->path and the example's line; line 0 names just the path, e.g.
 * "--prompt"). out borrows examples: they must outlive it. */
int sft_prompts_build(sft_prompts_t *out, sft_model_t *m, const data_examples_t *examples,
                      err_t *err);
void sft_prompts_release(sft_prompts_t *p);

/* One finished completion, borrowed by the callback for the duration of the call. */
typedef struct {
    int64_t prompt;       /* index of the prompt */
    int64_t k;            /* sample index within the prompt, 0..K-1 */
    const char *response; /* sft_model_decode_response of the new tokens, end-of-text left out */
    size_t response_len;  /* its bytes */
    const int32_t *ids;   /* the new tokens' ids [tokens], the end-of-text included */
    bool ended;           /* stopped by sampling end-of-text (false: at --max-new or context) */
    int64_t tokens;       /* new tokens, the end-of-text included when ended */
    double logprob;       /* Σ of their log-probs: log softmax(logits / temperature), over the
                             whole vocabulary (greedy: temperature 1) */
} sft_completion_t;

/* Receives each completion; a non-zero return (with err set) stops the run. */
typedef int (*sft_completion_fn)(void *ctx, const sft_completion_t *c, err_t *err);

typedef struct {
    gen_opts_t gen;    /* temperature, top_k, top_p, max_new (≥ 1), seed; eos_id and
                          seq_offset are set here */
    int64_t k;         /* completions per prompt (≥ 1) */
    int64_t batch;     /* most sequences per generator run (≥ 1) */
    const char *label; /* progress label on stderr ("sft sample"); NULL = silent */
} sft_sample_opts_t;

typedef struct {
    int64_t sequences; /* completions produced */
    int64_t tokens;    /* new tokens over all of them */
    double seconds;    /* wall time of the generation */
} sft_sample_stats_t;

/* ---- The sampling flags, shared by `sft sample` and `sft eval --judge` (same names, same
 * defaults): list SFT_SAMPLING_LONGOPTS among the getopt_long options, pass each result to
 * sft_sampling_option, print SFT_SAMPLING_HELP in --help (all but --batch, which each command
 * describes: it also sizes eval's forwards). */
enum {
    SFT_OPT_K = 0x2000, /* above any char and the cli_ options */
    SFT_OPT_TEMPERATURE,
    SFT_OPT_TOP_P,
    SFT_OPT_TOP_K,
    SFT_OPT_MAX_NEW,
    SFT_OPT_BATCH,
};

// clang-format off
#define SFT_SAMPLE_TEMPERATURE 0.7f /* the usual chat default: fewer derailments than 1.0 */
#define SFT_SAMPLE_MAX_NEW     64
#define SFT_SAMPLE_BATCH       16   /* decode steps reach sgemm speed from ~8-16 rows */

#define SFT_SAMPLING_LONGOPTS                                       \
    {"k", required_argument, NULL, SFT_OPT_K},                      \
    {"temperature", required_argument, NULL, SFT_OPT_TEMPERATURE},  \
    {"top-p", required_argument, NULL, SFT_OPT_TOP_P},              \
    {"top-k", required_argument, NULL, SFT_OPT_TOP_K},              \
    {"max-new", required_argument, NULL, SFT_OPT_MAX_NEW},          \
    {"batch", required_argument, NULL, SFT_OPT_BATCH}

#define SFT_SAMPLING_HELP                                                                          \
    "  --k K              completions per prompt (default 1)\n"                                    \
    "  --temperature X    sampling temperature; 0 = greedy (default 0.7)\n"                        \
    "  --top-p P          nucleus sampling: only the most likely tokens that together hold P\n"    \
    "                     of the probability, P in (0, 1] (default 1 = off)\n"                     \
    "  --top-k K          only the K most likely tokens (default 0 = off)\n"                       \
    "  --max-new N        at most N new tokens per completion (default 64)\n"
// clang-format on

/* The defaults above: temperature 0.7, top-p 1, top-k 0, max-new 64, k 1, batch 16. */
sft_sample_opts_t sft_sampling_defaults(void);
/* Stores one sampling flag (c from getopt_long, arg its value) and returns true; a bad value
 * is a usage error (exit 2); any other c returns false. */
bool sft_sampling_option(sft_sample_opts_t *o, const char *prog, int c, const char *arg);

/* Samples opts->k completions of every prompt and calls fn(ctx, completion) for each, in the
 * order (prompt 0, k 0), (0, 1), ..., (1, 0), ... Sequences longer than the context stop at
 * n_positions tokens (ended false). stats may be NULL. -1 with err set. */
int sft_sample_run(sft_model_t *m, const sft_prompts_t *prompts, const sft_sample_opts_t *opts,
                   sft_completion_fn fn, void *ctx, sft_sample_stats_t *stats, err_t *err);
#endif /* RLHF_SFT_SAMPLER_H */
