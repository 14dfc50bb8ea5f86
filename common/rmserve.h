/* common/rmserve.h: a reward model behind the wire server — the glue `reward serve` and
 * tests/bench/bench_serve.c share, so the benchmark measures the command's code path: the
 * wire_score_fn that hands a batch of wire items to rm_score (one forward per pair, so a
 * pair's score is the same bits in any batch), and the fields `reward serve` adds to every
 * info reply (schemas/wire/info-reply.json). Owns: an rm_t and its item arrays, sized once;
 * borrows the model_t, which must outlive it. Not thread-safe: the server's thread only.
 * Fails: NULL with err set. */
#ifndef RLHF_RMSERVE_H
#define RLHF_RMSERVE_H
#include "err.h"
#include "model.h"
#include "rm.h"
#include "wire.h"
#include <jansson.h>
#include <stdint.h>

typedef struct rmserve rmserve_t;

/* A scorer for batches of up to max_items items (a server's max(batch_items, WIRE_MAX_ITEMS))
 * with m, a score-head model with its tokenizer (model_load with MODEL_HEAD_REWARD). Caller
 * frees with rmserve_destroy. */
rmserve_t *rmserve_new(model_t *m, int64_t max_items, err_t *err);
void rmserve_destroy(rmserve_t **s);

/* The wire_score_fn (ctx = rmserve_t *): rm_score over the items, reward_bias added. An item
 * that cannot be scored (a prompt that leaves no room in the context) fails the call with
 * rm's message, "item 3: prompt is 130 tokens with the template, the context is 128: no room
 * for a response", and the wire core then finds the request it came from. */
int rmserve_score(void *ctx, const wire_item_t *items, int64_t n, double *scores, err_t *err);

/* What `reward serve` says about its model in every info reply (a new object, caller
 * decrefs; NULL when out of memory): {"model": dir, "config": {"n_embd", "n_layer", "n_head",
 * "n_positions", "vocab_size"}, "template": name, "reward_bias": x, "eos_id": id}. */
json_t *rmserve_info(const model_t *m);

/* rm's counters (pairs, truncated responses, tokens, forwards) since rmserve_new. */
rm_stats_t rmserve_stats(const rmserve_t *s);
#endif /* RLHF_RMSERVE_H */
