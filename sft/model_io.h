/* sft/model_io.h: a model directory as the sft commands read it — the weights (ckpt_load), the
 * tokenizer stored next to them, the end-of-text and padding ids resolved, and the template
 * checked — plus the text helpers every command that shows a model text needs (the one
 * tokenization of templated data, decoding a sampled response).
 * Owns: the model and tokenizer of an sft_model_t (release it). Fails: -1 with err set, the
 * message naming the directory ("runs/sft: config.json: rlhf.template is ..."). */
#ifndef RLHF_SFT_MODEL_IO_H
#define RLHF_SFT_MODEL_IO_H
#include "ckpt.h"
#include "err.h"
#include "gpt.h"
#include "tok.h"
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* How the sft commands print JSON: keys in the order written, reals with 10 significant digits
 * (figures come from float arithmetic: more digits would only show rounding noise). */
#define SFT_JSON_FLAGS (JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))

typedef struct {
    const char *dir;    /* the directory as given (borrowed: argv) */
    gpt_model_t *model; /* LM head; parameters only (the caller runs gpt_alloc or gen_new) */
    tok_t *tok;         /* DIR/vocab.json + merges.txt */
    ckpt_meta_t meta;   /* config.json's rlhf block as written */
    int32_t eos_id;     /* end-of-text: meta.eos_id, else the tokenizer's "<|endoftext|>" */
    int32_t pad_id;     /* right padding: meta.pad_id, else eos_id */
} sft_model_t;

/* Loads DIR as a language model that reads text, and checks that its parts agree:
 *   - an LM head (a reward or value model is refused),
 *   - config.json's rlhf.template is one this build knows (data_template_check; none is fine),
 *   - DIR/vocab.json + merges.txt load, with no more ids than the model's vocab_size,
 *   - an end-of-text id exists, and config.json and the tokenizer agree on it.
 * m is zeroed first; on error it stays empty (releasing it is still allowed). */
int sft_model_load(sft_model_t *m, const char *dir, err_t *err);

/* Frees the model and tokenizer; accepts a zeroed or released m. */
void sft_model_release(sft_model_t *m);

/* The data_encode_fn of templated data (demonstrations, prompts), ctx = sft_model_t *: text
 * is tokenized with "<|endoftext|>" as ordinary text (a demonstration cannot smuggle in an
 * end-of-text; the template adds the real one as an id). sft train and sft eval --demos both
 * tokenize through it, so evaluation sees exactly the tokens training saw. */
int64_t sft_model_encode(void *ctx, const char *text, int64_t len, int32_t *ids, int64_t cap,
                         err_t *err);

/* A sampled response as text: decodes ids[0..n) (leave out a final end-of-text), removes the
 * space the template puts before a response (data_template_strip) and replaces bytes that are
 * not valid UTF-8 (a sample may cut a character) with U+FFFD, so it can go into JSON. The
 * result is NUL-terminated; *len (may be NULL) gets its length, which counts any NUL byte a
 * token stood for. Caller frees with free(). NULL with err set (an id out of range, out of
 * memory). */
char *sft_model_decode_response(const sft_model_t *m, const int32_t *ids, int64_t n, size_t *len,
                                err_t *err);

/* Copies s[0..n) to out with each maximal invalid UTF-8 prefix replaced by U+FFFD (as
 * Python's errors="replace"); out needs room for 3n + 1 bytes. Returns the bytes written
 * (out is NUL-terminated after them). */
size_t sft_utf8_sanitize(const char *s, size_t n, char *out);
#endif /* RLHF_SFT_MODEL_IO_H */
