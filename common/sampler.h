/* common/sampler.h: K completions per prompt from a language model, for `sft sample` (prints
 * them), `sft eval --judge` (scores them), and ppo's rollouts and `ppo eval`. Prompts are
 * wrapped in the template and tokenized once (sampler_prompts_build); a sampler (sampler_new)
 * owns one KV-cached generator sized once, and each sampler_run feeds sequences (prompt i,
 * sample j) through it in batches, handing each finished completion to a callback, prompt by
 * prompt, in order. Sequence s = i·K + j of a run samples from its own RNG stream
 * (seed, first_stream + s), so the output depends on the seed and stream only, not on --batch,
 * on which sequences share a batch, or on what the sampler ran before.
 * Owns: the generator and its row buffers (allocated by sampler_new only; a run allocates just
 * the decoded text of each completion, freed before the next). Borrows the model: it must
 * outlive the sampler, and parameter updates between runs are seen by the next run (ppo).
 * Fails: -1 / NULL with err set; a prompt that leaves no room for a response names FILE:LINE. */
#ifndef RLHF_SAMPLER_H
#define RLHF_SAMPLER_H
#include "cli.h"
#include "data.h"
#include "err.h"
#include "gen.h"
#include "model.h"
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
} sampler_prompts_t;

/* Tokenizes data_template_prompt(prompt) of every example with model_encode and checks each
 * leaves room for at least one new token (1 ≤ tokens < n_positions):
 * "prompts.jsonl:7: prompt is 130 tokens with the template, the context is 128: no room for a
 * response" (examples->path and the example's line; line 0 names just the path, e.g.
 * "--prompt"). out borrows examples: they must outlive it. m needs its tokenizer. */
int sampler_prompts_build(sampler_prompts_t *out, model_t *m, const data_examples_t *examples,
                          err_t *err);
void sampler_prompts_release(sampler_prompts_t *p);

/* One finished completion, borrowed by the callback for the duration of the call. */
typedef struct {
    int64_t prompt;            /* index of the prompt */
    int64_t k;                 /* sample index within the prompt, 0..K-1 */
    const char *response;      /* model_decode_response of the new tokens, end-of-text left out */
    size_t response_len;       /* its bytes */
    const int32_t *prompt_ids; /* the templated prompt's ids [prompt_tokens] */
    int64_t prompt_tokens;
    const int32_t *ids;    /* the new tokens' ids [tokens], the end-of-text included */
    const float *logprobs; /* [tokens] each new token's log-prob (as logprob below) */
    bool ended;            /* stopped by sampling end-of-text (false: at --max-new or context) */
    int64_t tokens;        /* new tokens, the end-of-text included when ended */
    double logprob;        /* Σ of their log-probs: log softmax(logits / temperature), over the
                              whole vocabulary (greedy: temperature 1), summed in double */
} sampler_completion_t;

/* Receives each completion; a non-zero return (with err set) stops the run. */
typedef int (*sampler_completion_fn)(void *ctx, const sampler_completion_t *c, err_t *err);

typedef struct {
    gen_opts_t gen;    /* temperature, top_k, top_p, max_new (≥ 1), seed; eos_id and
                          seq_offset are set by the sampler */
    int64_t k;         /* completions per prompt (≥ 1) */
    int64_t batch;     /* most sequences per generator run (≥ 1) */
    const char *label; /* progress label on stderr ("sft sample"); NULL = silent */
} sampler_opts_t;

typedef struct {
    int64_t sequences; /* completions produced */
    int64_t tokens;    /* new tokens over all of them */
    double seconds;    /* wall time of the generation */
} sampler_stats_t;

/* ---- The sampling flags, shared by every command that samples (same names, same defaults):
 * list SAMPLER_LONGOPTS among the getopt_long options, pass each result to sampler_option,
 * print SAMPLER_HELP in --help (all but --batch, which each command describes: it also sizes
 * eval's forwards). Codes come from cli.h's CLI_OPTS_SAMPLER range. */
enum {
    SAMPLER_OPT_K = CLI_OPTS_SAMPLER,
    SAMPLER_OPT_TEMPERATURE,
    SAMPLER_OPT_TOP_P,
    SAMPLER_OPT_TOP_K,
    SAMPLER_OPT_MAX_NEW,
    SAMPLER_OPT_BATCH,
    SAMPLER_OPT_END /* one past the last: checked against the range below */
};
_Static_assert(SAMPLER_OPT_END <= CLI_OPTS_SAMPLER + CLI_OPTS_RANGE, "sampler options overflow");

// clang-format off
#define SAMPLER_TEMPERATURE 0.7f /* the usual chat default: fewer derailments than 1.0 */
#define SAMPLER_MAX_NEW     64
#define SAMPLER_BATCH       16   /* decode steps reach sgemm speed from ~8-16 rows */

#define SAMPLER_LONGOPTS                                                \
    {"k", required_argument, NULL, SAMPLER_OPT_K},                      \
    {"temperature", required_argument, NULL, SAMPLER_OPT_TEMPERATURE},  \
    {"top-p", required_argument, NULL, SAMPLER_OPT_TOP_P},              \
    {"top-k", required_argument, NULL, SAMPLER_OPT_TOP_K},              \
    {"max-new", required_argument, NULL, SAMPLER_OPT_MAX_NEW},          \
    {"batch", required_argument, NULL, SAMPLER_OPT_BATCH}

#define SAMPLER_HELP                                                                               \
    "  --k K              completions per prompt (default 1)\n"                                    \
    "  --temperature X    sampling temperature; 0 = greedy (default 0.7)\n"                        \
    "  --top-p P          nucleus sampling: only the most likely tokens that together hold P\n"    \
    "                     of the probability, P in (0, 1] (default 1 = off)\n"                     \
    "  --top-k K          only the K most likely tokens (default 0 = off)\n"                       \
    "  --max-new N        at most N new tokens per completion (default 64)\n"
// clang-format on

/* The defaults above: temperature 0.7, top-p 1, top-k 0, max-new 64, k 1, batch 16. */
sampler_opts_t sampler_defaults(void);
/* Stores one sampling flag (c from getopt_long, arg its value) and returns true; a bad value
 * is a usage error (exit 2, through cli); any other c returns false. */
bool sampler_option(sampler_opts_t *o, const char *prog, int c, const char *arg);

typedef struct sampler sampler_t;

/* A sampler for m (an LM head with its tokenizer) and opts (copied), for prompts of up to
 * max_prompt tokens: allocates the generator once, for opts->batch sequences of up to
 * min(max_prompt + max_new, n_positions) tokens (the context cuts a sequence as it would any
 * generation). Pass the longest prompt you will sample (sampler_prompts_t max_len); a one-shot
 * command may lower opts->batch to the number of sequences it has. Caller frees with
 * sampler_destroy. NULL with err set on bad options or out of memory. */
sampler_t *sampler_new(model_t *m, const sampler_opts_t *opts, int64_t max_prompt, err_t *err);

/* Frees the generator and buffers and NULLs *s; accepts NULL and *s == NULL. */
void sampler_destroy(sampler_t **s);

/* Samples K completions of every prompt and calls fn(ctx, completion) for each, in the order
 * (prompt 0, k 0), (0, 1), ..., (1, 0), ... Sequence s of the run (s = prompt·K + k) samples
 * from stream (seed, first_stream + s): a command passes 0; ppo passes how many sequences it
 * sampled before, so every rollout draws fresh streams and a resumed run draws the same ones.
 * Sequences longer than the context stop at n_positions tokens (ended false). stats may be
 * NULL. -1 with err set (a prompt longer than the max_prompt of sampler_new, a callback's
 * error); the sampler stays usable. */
int sampler_run(sampler_t *s, const sampler_prompts_t *prompts, int64_t first_stream,
                sampler_completion_fn fn, void *ctx, sampler_stats_t *stats, err_t *err);
#endif /* RLHF_SAMPLER_H */
