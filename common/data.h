/* common/data.h: the data every program reads (DESIGN.md §2–3): JSONL files validated line by
 * line, the one prompt/response template, token streams for pretraining, and SFT batches.
 * Loaders read and check the whole file before returning, so a bad line stops a run before any
 * training starts: "demos.jsonl:17: missing \"response\"" (the caller adds "sft: error: ").
 * Owns: what a loader or builder returns (release it); per-step functions (window sampling,
 * batch building) write into caller buffers and never allocate. No global state. Tokenizing is
 * the caller's, passed in as a data_encode_fn, so data does not depend on the tokenizer. */
#ifndef RLHF_DATA_H
#define RLHF_DATA_H
#include "err.h"
#include "rng.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- JSONL. One JSON object per line, UTF-8. Blank (all-whitespace) lines are skipped (a
 * trailing newline or a spacer line is not an error) but still counted, so LINE is always the
 * line number an editor shows. Lines may end in "\n" or "\r\n". Fields the reader was not
 * asked about are ignored (files may carry ids, sources, ...). Duplicate keys are errors.
 * Strings are bytes with a length: JSON allows "\u0000", and GPT-2's byte-level BPE encodes
 * byte 0 like any other (id 188), so a NUL inside a string is data, read with
 * json_string_length, never cut at. Messages, with FILE as given:
 *   FILE: cannot open: No such file or directory
 *   FILE:LINE: line longer than N bytes
 *   FILE:LINE: invalid JSON: <jansson's text> (column N)
 *   FILE:LINE: not a JSON object
 *   FILE:LINE: missing "response"
 *   FILE:LINE: "prompt" must be a string
 *   FILE: no JSON lines (empty file)                      (loaders only) */
#define DATA_MAX_LINE (1 << 20) /* bytes per line unless the caller says otherwise */

typedef enum {
    DATA_STRING,  /* a JSON string */
    DATA_INTEGER, /* a JSON integer */
    DATA_NUMBER,  /* any JSON number */
    DATA_BOOL,    /* true or false */
    DATA_IDS,     /* an array of integers (token ids; checked against int32 range) */
    DATA_STRINGS, /* an array of strings */
    DATA_ARRAY,   /* any array */
    DATA_OBJECT,  /* any object */
} data_type_t;

typedef struct {
    const char *name; /* key in the line's object */
    data_type_t type;
    bool optional; /* absent is fine (present must still have the type) */
} data_field_t;

/* A JSONL file being read line by line (the streaming way, e.g. `sft tokenize` on stdin). */
typedef struct {
    FILE *f;          /* the file; NULL after close */
    bool owned;       /* f was opened here (closed by data_jsonl_close) */
    char *name;       /* FILE in messages (a copy) */
    char *buf;        /* the current line (owned, grows up to max_line + 1) */
    size_t cap;       /* bytes allocated at buf */
    int64_t line;     /* 1-based number of the line last read; 0 before the first */
    int64_t records;  /* objects returned so far */
    int64_t max_line; /* longest line accepted, in bytes without the newline */
} data_jsonl_t;

/* Opens path ("-" = stdin, named "<stdin>" in messages) with lines up to max_line bytes
 * (0 = DATA_MAX_LINE). -1 with err set ("FILE: cannot open: ..."). Close with
 * data_jsonl_close, also after a failed open. */
int data_jsonl_open(data_jsonl_t *r, const char *path, int64_t max_line, err_t *err);
/* Reads from an already open stream (not closed by data_jsonl_close); name is for messages. */
int data_jsonl_open_stream(data_jsonl_t *r, FILE *f, const char *name, int64_t max_line,
                           err_t *err);
/* Reads the next non-blank line, parses it and checks it is an object holding every field
 * with its type. Returns 1 with *obj set (caller owns it: json_decref), 0 at the end of the
 * file, or -1 with err set (a message above) and *obj NULL. A line longer than max_line is
 * never held in memory whole. */
int data_jsonl_next(data_jsonl_t *r, const data_field_t *fields, int n_fields, json_t **obj,
                    err_t *err);
/* Checks obj has every field with its type; msg prefix "FILE:LINE: " from name and line. */
int data_check_fields(const json_t *obj, const data_field_t *fields, int n_fields, const char *name,
                      int64_t line, err_t *err);
/* Frees the buffer and closes the file if it was opened here; accepts a zeroed reader. */
void data_jsonl_close(data_jsonl_t *r);

/* ---- Loaded files. Each loader reads the whole file, so every line is checked before the
 * caller starts work. On error the output is left empty (releasing it is still allowed). */

/* A demonstration ({"prompt", "response"}) or a prompt ({"prompt"}): strings are UTF-8 bytes
 * copied out of the JSON, with their lengths; they may hold NUL bytes ("\u0000"), so read
 * them with the lengths (a NUL also follows the last byte, for messages and C callers). Code
 * that builds an example by hand sets the lengths too. */
typedef struct {
    char *prompt;         /* as written in the file; the template is applied later */
    char *response;       /* demos: as written; prompts files: NULL */
    int64_t prompt_len;   /* bytes of prompt */
    int64_t response_len; /* bytes of response (0 when NULL) */
    int64_t line;         /* 1-based line in the file: errors found later name it */
} data_example_t;

typedef struct {
    char *path;         /* the file as given (owned copy), for later messages */
    int64_t n;          /* examples */
    data_example_t *ex; /* [n] */
} data_examples_t;

/* Loads {"prompt": string, "response": string} per line (demonstrations). */
int data_demos_load(data_examples_t *out, const char *path, err_t *err);
/* Loads {"prompt": string} per line; response stays NULL. */
int data_prompts_load(data_examples_t *out, const char *path, err_t *err);
/* Frees every string and the arrays; accepts a zeroed or released set. */
void data_examples_release(data_examples_t *set);

/* {"text": string} per line (`sft eval --texts`, `sft tokenize`). */
typedef struct {
    char *path;
    int64_t n;
    char **text;   /* [n] bytes, NUL after the last one; may hold NUL bytes: use len */
    int64_t *len;  /* [n] bytes of text[i] */
    int64_t *line; /* [n] 1-based line numbers */
} data_texts_t;

int data_texts_load(data_texts_t *out, const char *path, err_t *err);
void data_texts_release(data_texts_t *set);

/* {"ids": [int, ...]} per line (`sft tokenize --decode`). Row i is
 * ids[offset[i] .. offset[i+1]). vocab_size > 0 rejects ids outside [0, vocab_size):
 * "FILE:LINE: \"ids\"[3]: 50300 is not a token id (vocab size 50257)"; 0 checks only that
 * each id is a non-negative int32. */
typedef struct {
    char *path;
    int64_t n;       /* rows */
    int64_t *offset; /* [n + 1], offset[0] = 0 */
    int32_t *ids;    /* [offset[n]] all rows, back to back */
    int64_t *line;   /* [n] */
} data_ids_t;

int data_ids_load(data_ids_t *out, const char *path, int64_t vocab_size, err_t *err);
void data_ids_release(data_ids_t *set);

/* Reads a whole file (a plain-text corpus) into a buffer of *len bytes plus a NUL after them.
 * Caller frees *text. The bytes may hold NUL bytes (the tokenizer takes text with a length). */
int data_read_file(const char *path, char **text, size_t *len, err_t *err);

/* ---- The prompt/response template (DESIGN §3): every program shows a model a prompt and a
 * response the same way, and config.json's rlhf.template names the format:
 *
 *     "Human: {prompt}\n\nAssistant:" + " {response}" + <|endoftext|>
 *      \_____ data_template_prompt ___/  \_ _response_/  eos token id, never text
 *
 * Short, for small-context models. The space between "Assistant:" and the response belongs to
 * the response: GPT-2's pre-tokenizer glues a space to the word after it (" Paris" is one
 * token), so a prompt ending in "Assistant: " would end in a lone " " token that training
 * never shows before a word, and a model would be asked to continue from a state it never saw.
 * Ending the prompt at ':' makes the boundary a pre-token boundary, so tokenizing the two parts
 * separately gives exactly the tokens of the joined text, and the split between prompt and
 * response tokens is exact. Leading spaces of a response are dropped before the one space is
 * added (" Paris" and "Paris" train alike); data_template_strip undoes it for sampled text.
 * The prompt is used verbatim. A change of any byte here is a new DATA_TEMPLATE_NAME. */
#define DATA_TEMPLATE_NAME "rlhf-v1"

/* Writes "Human: {prompt}\n\nAssistant:" into buf (size bytes, NUL-terminated when size > 0)
 * and returns the full length without the NUL, like snprintf (size 0 only measures). prompt
 * is prompt_len bytes (NUL bytes are copied like any other: measure with the return value). */
size_t data_template_promptn(char *buf, size_t size, const char *prompt, size_t prompt_len);
/* Writes " {response}" (leading spaces of response dropped, one added); as above. */
size_t data_template_responsen(char *buf, size_t size, const char *response, size_t response_len);
/* The same for a C string (no NUL inside), as jansson's json_string is to json_stringn. */
size_t data_template_prompt(char *buf, size_t size, const char *prompt);
size_t data_template_response(char *buf, size_t size, const char *response);
/* The response as a file holds it, from a sampled continuation of data_template_prompt:
 * skips the one leading space the template adds (borrowed pointer into text). */
const char *data_template_strip(const char *text);
/* Checks the template a model records (config.json rlhf.template, e.g. ckpt_meta_t
 * template_name) is the one this build writes. "" (a model with no rlhf block: a Hub snapshot
 * or a fresh base model) is accepted: it was trained on no template. Otherwise -1 with err:
 * "runs/sft: config.json: rlhf.template is \"chatml-v2\", this build knows only \"rlhf-v1\"". */
int data_template_check(const char *model_dir, const char *name, err_t *err);

/* Tokenizes text[0..len) (UTF-8 bytes, NUL bytes included): writes at most cap ids into ids and
 * returns how many the whole text needs (more than cap means: call again with a larger
 * buffer), or -1 with err set. Adapts the tokenizer (ctx) to this module. Byte-level BPE never
 * yields more tokens than bytes, so cap = len always suffices. */
typedef int64_t (*data_encode_fn)(void *ctx, const char *text, int64_t len, int32_t *ids,
                                  int64_t cap, err_t *err);

/* ---- Token streams for pretraining (and PPO's pretraining mix): the whole tokenized corpus
 * as one array; a batch is B windows of T+1 consecutive tokens, inputs the first T and targets
 * the last T (targets[b,t] is the corpus token after inputs[b,t]). */
typedef struct {
    const int32_t *tokens; /* borrowed: the corpus; must outlive the stream */
    int64_t n_tokens;
    int64_t B, T; /* batch shape */
    int64_t pos;  /* next window start of data_stream_next: with the rng state, the
                     data position a train_state saves for an exact resume */
} data_stream_t;

/* Checks the corpus holds at least one window (n_tokens ≥ T + 1; "corpus has 40 tokens, a
 * window needs 65 (T = 64)") and starts at pos 0. */
int data_stream_init(data_stream_t *s, const int32_t *tokens, int64_t n_tokens, int64_t B,
                     int64_t T, err_t *err);
/* B windows starting uniformly at random in [0, n_tokens - T - 1]: inputs (B, T), targets
 * (B, T). Deterministic given the rng state; never allocates; pos is untouched. */
void data_stream_sample(const data_stream_t *s, rng_t *rng, int32_t *inputs, int32_t *targets);
/* B consecutive windows from pos, each T tokens after the previous; when the next window would
 * run past the end, it starts again at 0 (returns true when that happened during this batch:
 * an epoch ended). For validation, start at pos 0 and take data_stream_batches(s) batches. */
bool data_stream_next(data_stream_t *s, int32_t *inputs, int32_t *targets);
/* Batches of data_stream_next that cover the corpus once: ceil(windows / B), with windows =
 * (n_tokens - 1) / T (the last one wraps around to fill a batch). */
int64_t data_stream_batches(const data_stream_t *s);

/* ---- SFT examples, tokenized once before training: each example is template(prompt) tokens
 * then template(response) tokens; the end-of-text id is added by the batch builder. */
typedef enum {
    DATA_TOO_LONG_ERROR,    /* an example longer than the context is an error (the default) */
    DATA_TOO_LONG_TRUNCATE, /* cut the response to fit (the end-of-text goes with it, so the
                               model sees no ending there); a prompt that leaves no room for
                               one response token is still an error */
} data_too_long_t;

typedef struct {
    int64_t n;         /* examples */
    int64_t *offset;   /* [n + 1]: example i is ids[offset[i] .. offset[i+1]) */
    int64_t *n_prompt; /* [n]: how many of example i's ids are prompt (template included) */
    bool *has_eos;     /* [n]: false when the response was truncated (no end-of-text) */
    int32_t *ids;      /* [offset[n]]: prompt ids then response ids, no end-of-text */
    int64_t *line;     /* [n]: source line, copied from the examples */
    int64_t max_len;   /* longest example in tokens, end-of-text included */
    int64_t truncated; /* examples cut by DATA_TOO_LONG_TRUNCATE */
    int32_t eos_id;    /* end-of-text: appended after each response */
    int32_t pad_id;    /* fills inputs after the end (targets there are -1) */
} data_sft_t;

/* Applies the template to every example (prompt and response; examples with response NULL get
 * a prompt only), tokenizes each part with encode, and checks that prompt + response +
 * end-of-text fits context tokens (the model's n_positions, or the run's T): otherwise
 * "demos.jsonl:17: 300 tokens (prompt 250 + response 49 + end-of-text), the context is 256"
 * (path from examples->path) unless too_long says truncate. -1 with err set; out is empty. */
int data_sft_build(data_sft_t *out, const data_examples_t *examples, data_encode_fn encode,
                   void *encode_ctx, int32_t eos_id, int32_t pad_id, int64_t context,
                   data_too_long_t too_long, err_t *err);
void data_sft_release(data_sft_t *set);

/* Tokens in example i, end-of-text included: the length its row needs. */
int64_t data_sft_len(const data_sft_t *set, int64_t i);

/* Builds a right-padded batch of the examples idx[0..B) in caller buffers of (B, T):
 *   inputs[b, 0..len)  = prompt ids, response ids, end-of-text; pad_id after
 *   targets[b, t]      = inputs[b, t+1] where that token is a response token or the
 *                        end-of-text, else -1 (every position whose next token is prompt,
 *                        the end-of-text position itself, and padding)
 *   lengths[b]         = len (NULL to skip): a reward model reads row b at lengths[b] - 1,
 *                        the end-of-text
 * so position n_prompt - 1 (the last prompt token) is the first trained one: it predicts the
 * response's first token. T must be ≥ data_sft_len of every row (the longest of a batch, or
 * the context, as the caller chooses; asserted). Returns the number of targets ≥ 0 (the loss
 * denominator). Never allocates. */
int64_t data_sft_batch(const data_sft_t *set, const int64_t *idx, int64_t B, int64_t T,
                       int32_t *inputs, int32_t *targets, int64_t *lengths);
/* The longest data_sft_len among idx[0..B): the smallest T for that batch. */
int64_t data_sft_batch_len(const data_sft_t *set, const int64_t *idx, int64_t B);

/* ---- Example order: a fresh permutation per epoch, derived from (seed, epoch), so the data
 * position is two integers (epoch, pos) a train_state can save, and resuming continues
 * with exactly the examples an uninterrupted run would have seen. */
typedef struct {
    int64_t n;      /* examples */
    int64_t *order; /* [n]: this epoch's permutation of 0..n-1 */
    uint64_t seed;
    int64_t epoch; /* 0-based */
    int64_t pos;   /* next index into order */
} data_order_t;

/* Allocates the permutation and seeks to (epoch 0, pos 0). seed is the run's --seed (mixed
 * with a tag here, so the order does not repeat another stream drawn from the same seed).
 * -1 with err set when n ≤ 0 or out of memory. Release with data_order_release. */
int data_order_init(data_order_t *o, int64_t n, uint64_t seed, err_t *err);
/* Moves to (epoch, pos), 0 ≤ pos ≤ n, as saved from o->epoch and o->pos: a resume.
 * -1 with err set when out of range. */
int data_order_seek(data_order_t *o, int64_t epoch, int64_t pos, err_t *err);
/* Writes the next B example indices into idx, going on into a new, reshuffled epoch when this
 * one ends (returns true when that happened). Never allocates. */
bool data_order_next(data_order_t *o, int64_t *idx, int64_t B);
void data_order_release(data_order_t *o);
#endif /* RLHF_DATA_H */
