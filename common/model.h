/* common/model.h: a model directory as the programs read it — the weights (ckpt_load), the
 * tokenizer stored next to them, the end-of-text and padding ids resolved, the template
 * checked, and the head the caller asked for — plus the text helpers every command that shows
 * a model text needs (the one tokenization of templated data, decoding a sampled response,
 * the UTF-8 sanitizer). One loader for every role: an LM (policy, SFT, reference), a reward
 * model (a scalar read at the last token) and a value model (a scalar per token; the same
 * GPT2ForSequenceClassification files as a reward model).
 * Owns: the gpt model and the tokenizer of a model_t (model_release frees them). No global
 * state: ppo holds a policy, a reference and a value model side by side.
 * Fails: -1 with err set, the message naming the directory ("runs/sft: config.json: ..."). */
#ifndef RLHF_MODEL_H
#define RLHF_MODEL_H
#include "ckpt.h"
#include "err.h"
#include "gpt.h"
#include "tok.h"
#include <stddef.h>
#include <stdint.h>

/* What a caller accepts, or-ed together into model_load's `need`. The three head bits say
 * which roles the command can use the directory in; a file's head is one of two kinds
 * (config.json "architectures"), so:
 *   GPT2LMHeadModel                 satisfies MODEL_HEAD_LM,
 *   GPT2ForSequenceClassification   satisfies MODEL_HEAD_REWARD and MODEL_HEAD_VALUE.
 * `sft` commands ask for MODEL_HEAD_LM, `reward` for MODEL_HEAD_REWARD, `ppo` loads its policy
 * with MODEL_HEAD_LM and the value model's starting point with MODEL_HEAD_VALUE. The refusal
 * names the directory and both kinds ("runs/rm: a reward or value model
 * (GPT2ForSequenceClassification); this command needs a language model (GPT2LMHeadModel)"). */
enum {
    MODEL_HEAD_LM = 1 << 0,     /* next-token logits (GPT_HEAD_LM) */
    MODEL_HEAD_REWARD = 1 << 1, /* score head, read at the last real token (GPT_HEAD_SCORE) */
    MODEL_HEAD_VALUE = 1 << 2,  /* score head, read at every token (GPT_HEAD_SCORE) */
    /* vocab.json + merges.txt may be absent (a command that takes token ids, a test fixture):
     * then tok is NULL and eos_id comes from config.json alone. Present files must load. */
    MODEL_TOKENIZER_OPTIONAL = 1 << 8,
};

typedef struct {
    const char *dir;    /* the directory as given (borrowed: argv; must outlive m) */
    gpt_model_t *model; /* parameters only (the caller runs gpt_alloc or gen_new) */
    tok_t *tok;         /* DIR/vocab.json + merges.txt; NULL only with MODEL_TOKENIZER_OPTIONAL */
    ckpt_meta_t meta;   /* config.json's rlhf block as written */
    int32_t eos_id;     /* end-of-text: meta.eos_id, else the tokenizer's "<|endoftext|>" */
    int32_t pad_id;     /* right padding: meta.pad_id, else eos_id */
} model_t;

/* Loads DIR and checks that its parts agree:
 *   - its head is one `need` accepts (at least one MODEL_HEAD_* bit must be set),
 *   - config.json's rlhf.template is one this build knows (data_template_check; none is fine),
 *   - DIR/vocab.json + merges.txt load, with no more ids than the model's vocab_size
 *     ("this command reads text, so the model needs its tokenizer" when they are missing,
 *     unless MODEL_TOKENIZER_OPTIONAL),
 *   - an end-of-text id exists, config.json and the tokenizer agree on it, and it and the
 *     padding id lie inside the vocabulary.
 * m is zeroed first; on error it stays empty (releasing it is still allowed). */
int model_load(model_t *m, const char *dir, unsigned need, err_t *err);

/* Frees the model and tokenizer; accepts a zeroed or released m. */
void model_release(model_t *m);

/* Whether a and b read the same tokens the same way, so one's token ids can be fed to the
 * other (ppo refuses a value model that disagrees with its policy): the same template name
 * (config.json rlhf.template, "" included), the same vocab_size, end-of-text id, and — when
 * both have a tokenizer — the same token bytes for every id and the same merges (merges.txt
 * compared line by line, a "#version" first line aside). A model without a tokenizer is
 * compared on the rest. 0 when they agree; else -1 with err naming both directories and the
 * first difference: "runs/rm: token 300 is \" the\", runs/sft's is \"ing\" (the two models
 * do not read tokens the same way)". */
int model_check_compatible(const model_t *a, const model_t *b, err_t *err);

/* The data_encode_fn of templated data (demonstrations, prompts), ctx = model_t * with a
 * tokenizer: text is tokenized with "<|endoftext|>" as ordinary text (a demonstration cannot
 * smuggle in an end-of-text; the template adds the real one as an id). Training and
 * evaluation both tokenize through it, so evaluation sees exactly the tokens training saw. */
int64_t model_encode(void *ctx, const char *text, int64_t len, int32_t *ids, int64_t cap,
                     err_t *err);

/* A sampled response as text: decodes ids[0..n) (leave out a final end-of-text), removes the
 * space the template puts before a response (data_template_strip) and replaces bytes that are
 * not valid UTF-8 (a sample may cut a character) with U+FFFD, so it can go into JSON. The
 * result is NUL-terminated; *len (may be NULL) gets its length, which counts any NUL byte a
 * token stood for. Caller frees with free(). NULL with err set (an id out of range, out of
 * memory). Needs m->tok. */
char *model_decode_response(const model_t *m, const int32_t *ids, int64_t n, size_t *len,
                            err_t *err);

/* Copies s[0..n) to out with each maximal invalid UTF-8 prefix replaced by U+FFFD (as
 * Python's errors="replace"); out needs room for 3n + 1 bytes. Returns the bytes written
 * (out is NUL-terminated after them). */
size_t model_utf8_sanitize(const char *s, size_t n, char *out);
#endif /* RLHF_MODEL_H */
