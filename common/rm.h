/* common/rm.h: scoring (prompt, response) pairs with a reward model — what `reward score`,
 * `reward eval` and `reward serve` share, and how `reward train` tokenizes its rankings.
 * A pair is read as DESIGN §3 says: data_template_prompt(prompt) + data_template_response
 * (response) + the end-of-text id, and the score is the score head's value at that final
 * end-of-text token (never at padding), plus the model's rlhf.reward_bias. A pair longer than
 * the context keeps its prompt and end-of-text and loses the response's tail (counted in
 * rm_stats_t); a prompt that alone leaves no room is an error naming the item.
 * Row independence: a pair's score must not depend on what it is batched with (a PPO run that
 * resumes gets the scores it got the first time). OpenBLAS does not give that for rows of one
 * product: measured here, the same sequence at rows 0, 64, 128, ... of a batch scores
 * -0.09983859956, -0.09983860701, -0.09983859211, ... (the pattern follows the kernel's
 * blocking and the thread count). So rm_score forwards each pair on its own, as one sequence of
 * its own length: every product's shape and every row's place depend on that pair alone, and
 * its score is the same bits in any batch and any order (tests/test_rm.c), for a given thread
 * count and machine. Requests are still gathered into one rm_score call by the server; what
 * is lost is only the larger matrix products of a batched forward (see README, Benchmarks).
 * Owns: its token buffers and the model's activations (gpt_alloc for 1 × T_max, inference);
 * borrows the model_t (a score head with its tokenizer), which must outlive it. Not thread-safe.
 * Fails: -1 / NULL with err set. */
#ifndef RLHF_RM_H
#define RLHF_RM_H
#include "err.h"
#include "model.h"
#include <stddef.h>
#include <stdint.h>

typedef struct rm rm_t;

typedef struct {
    int64_t pairs;     /* scored */
    int64_t truncated; /* pairs whose response was cut to fit the context */
    int64_t tokens;    /* tokens forwarded */
    int64_t forwards;  /* forwards run (one per pair) */
} rm_stats_t;

/* A scorer for pairs of up to T_max tokens (0 = the model's context). m must be a score-head
 * model with a tokenizer (model_load with MODEL_HEAD_REWARD). */
rm_t *rm_new(model_t *m, int64_t T_max, err_t *err);
void rm_destroy(rm_t **r);

/* Tokens of one pair into ids (cap ≥ T_max of the caller's choosing, context = the most tokens
 * allowed): prompt part, response part (cut to fit), end-of-text last. Returns the count, or -1
 * with err set (tokenizer error, or the prompt leaves no room: "prompt is 130 tokens, the
 * context is 128"). *truncated (may be NULL) says whether the response was cut. Used by
 * reward train to tokenize rankings exactly as rm_score does. */
int64_t rm_encode(const model_t *m, const char *prompt, size_t prompt_len, const char *response,
                  size_t response_len, int32_t *ids, int64_t context, int *truncated, err_t *err);

/* Scores n pairs into scores[n], reward_bias added, one forward per pair. Item i's
 * texts are prompts[i] (plens[i] bytes) and responses[i] (rlens[i] bytes). -1 with err set
 * ("item 3: prompt is 130 tokens, the context is 128") and no scores on a bad item. */
int rm_score(rm_t *r, const char *const *prompts, const size_t *plens, const char *const *responses,
             const size_t *rlens, int64_t n, double *scores, err_t *err);

/* Counters since rm_new. */
rm_stats_t rm_stats(const rm_t *r);
#endif /* RLHF_RM_H */
