/* common/tok.h: GPT-2 byte-level BPE. Loads a vocab.json + merges.txt pair (Hugging Face
 * layout, as in a GPT-2 snapshot) and encodes exactly as GPT-2 does (byte-to-unicode alphabet,
 * the GPT-2 pre-tokenizer regex through PCRE2 with Unicode classes, merges by rank,
 * "<|endoftext|>" as a special token); decodes byte-exactly; trains a new vocabulary from a
 * corpus and saves it in the same two files, so one loader serves both.
 * Owns: the vocabulary, the merge table, the compiled pattern and a fixed-size cache of recent
 * pre-tokens (a few MB, allocated at load; it never grows with the input).
 * Threads: encoding writes the cache and scratch buffers, so one tok_t encodes on one thread
 * at a time (load one per encoding thread). Everything taking `const tok_t *` (decode,
 * queries, save) only reads and may run on any number of threads at once.
 * Fails: -1 / NULL with err set; load errors name the file, line and entry. */
#ifndef RLHF_TOK_H
#define RLHF_TOK_H
#include "err.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct tok tok_t;

/* The special token's text; its id is tok_eot_id (50256 in GPT-2, the last id in a vocabulary
 * from tok_train). */
#define TOK_EOT_TEXT "<|endoftext|>"

/* A growable id array: zero-initialise it (TOK_IDS_INIT), let tok_encode append to it, and
 * free it with tok_ids_release. */
typedef struct {
    int32_t *ids; /* ids[0..len) are valid; NULL while cap == 0 */
    int64_t len;  /* ids held */
    int64_t cap;  /* ids allocated */
} tok_ids_t;

#define TOK_IDS_INIT                                                                               \
    { 0 }

/* Frees ids->ids and zeroes *ids (it may be reused). Accepts NULL. */
void tok_ids_release(tok_ids_t *ids);

/* Loads DIR/vocab.json and DIR/merges.txt. Caller frees with tok_destroy. NULL with err set,
 * e.g. "d/merges.txt:12: \"Ġ xq\": token \"xq\" is not in vocab.json". */
tok_t *tok_load(const char *dir, err_t *err);

/* Same, from two explicit paths. vocab.json: one object, token (byte-to-unicode spelling) →
 * id, ids exactly 0..n-1, every single byte present. merges.txt: an optional first line
 * "#version: ...", then one merge "A B" per line in rank order; A, B and AB are in the vocab. */
tok_t *tok_load_files(const char *vocab_path, const char *merges_path, err_t *err);

/* Frees the tokenizer and sets *tok to NULL. Accepts NULL and a NULL *tok. */
void tok_destroy(tok_t **tok);

/* Number of ids (50257 for GPT-2). */
int32_t tok_vocab_size(const tok_t *tok);

/* Id of "<|endoftext|>", or -1 when the vocabulary has none. */
int32_t tok_eot_id(const tok_t *tok);

/* Number of merges (50000 for GPT-2). */
int32_t tok_merge_count(const tok_t *tok);

/* Appends the ids of text[0..len) (any bytes; UTF-8 is pre-tokenized as GPT-2 does, and
 * bytes that are not valid UTF-8 form pre-tokens of their own, so every input round-trips)
 * to out. special = true turns each "<|endoftext|>" in the text into the eot id, as Hugging
 * Face's GPT-2 tokenizer does; special = false encodes it as ordinary text (for untrusted
 * data). On error (out of memory, a PCRE2 failure) returns -1 with err set and out->len is
 * back where it was. */
int tok_encode(tok_t *tok, const char *text, int64_t len, bool special, tok_ids_t *out, err_t *err);

/* Like tok_encode, into the caller's ids[0..cap). Returns how many ids the text needs; when
 * that exceeds cap, ids holds the first cap of them. -1 with err set on error. */
int64_t tok_encode_into(tok_t *tok, const char *text, int64_t len, bool special, int32_t *ids,
                        int64_t cap, err_t *err);

/* Decodes ids[0..n) to the bytes they stand for (the eot id gives "<|endoftext|>"). Returns
 * a new buffer holding *out_len bytes plus a terminating NUL; the caller frees it with free().
 * The bytes need not be valid UTF-8 (an id sequence may cut a character). NULL with err set
 * when an id is out of range ("id 70000 at position 3 is out of range [0, 50257)"). */
char *tok_decode(const tok_t *tok, const int32_t *ids, int64_t n, int64_t *out_len, err_t *err);

/* The bytes of one token (not NUL-terminated), borrowed until tok_destroy; *len gets their
 * count. NULL when id is out of range. */
const char *tok_token(const tok_t *tok, int32_t id, int64_t *len);

/* The id of the token whose bytes are exactly bytes[0..len), or -1. */
int32_t tok_token_id(const tok_t *tok, const char *bytes, int64_t len);

/* Writes DIR/vocab.json and DIR/merges.txt (DIR is created if missing) as one set of files
 * (fs.h: both appear or neither; tok_load reads through fs_resolve, so it never pairs one
 * vocabulary's vocab.json with another's merges.txt), in GPT-2's own format: what tok_load
 * reads back gives the same ids, and GPT-2's files are reproduced byte for byte. */
int tok_save(const tok_t *tok, const char *dir, err_t *err);

/* Trains a byte-level BPE vocabulary of vocab_size ids on text[0..len): ids 0..255 are the
 * bytes (in GPT-2's order), then one token per learned merge, and "<|endoftext|>" is the
 * last id. Words are pre-tokenized with GPT-2's pattern (the corpus may separate documents
 * with "<|endoftext|>"; no token spans one); at each step the most frequent adjacent pair
 * is merged (ties: smaller ids first), so the result is deterministic. Training stops early
 * when no pair occurs twice, so the vocabulary may come out smaller: read tok_vocab_size.
 * vocab_size must be at least 257. Caller frees with tok_destroy; tok_save writes it. */
tok_t *tok_train(const char *text, int64_t len, int32_t vocab_size, err_t *err);
#endif /* RLHF_TOK_H */
