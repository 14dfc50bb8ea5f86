/* tests/tiny_model.h: a tiny GPT-2 language model with its own BPE tokenizer, written into a
 * scratch directory, for tests of code that reads text (model loading, sampling). */
#ifndef RLHF_TESTS_TINY_MODEL_H
#define RLHF_TESTS_TINY_MODEL_H
#include "gpt.h"
#include <stdint.h>

/* Writes a model directory into dir (created if missing): a tokenizer of vocab_size ids
 * trained on a few sentences chosen by `text_variant` (0 or 1: two different vocabularies),
 * a randomly initialised GPT-2 (seed) with model_vocab ids (≥ the tokenizer's; 0 = the
 * tokenizer's), 2 layers, 16 channels, 64 positions, and config.json's rlhf block with
 * `template` and the tokenizer's end-of-text id (eos_id ≥ 0 overrides it). Aborts the test on
 * any failure. */
void tiny_model_write(const char *dir, int text_variant, int32_t model_vocab,
                      const char *template_name, int32_t eos_id, uint64_t seed);

/* The same with the given head: GPT_HEAD_SCORE writes a reward/value model
 * (GPT2ForSequenceClassification) with its tokenizer. */
void tiny_model_write_head(const char *dir, int text_variant, int32_t model_vocab,
                           const char *template_name, int32_t eos_id, uint64_t seed,
                           gpt_head_t head);

/* A fresh scratch directory under /tmp (name written into dir, ≥ 64 bytes). */
void tiny_scratch_dir(char *dir);
/* rm -r dir. */
void tiny_rm_tree(const char *dir);
#endif /* RLHF_TESTS_TINY_MODEL_H */
