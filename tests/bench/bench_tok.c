/* tests/bench/bench_tok.c: tokenizer speed on one core.
 *   encode: MB/s of tok_encode over an 8 MB deterministic text (English-like words, code,
 *           numbers, whitespace runs, accented Latin, CJK, emoji) with GPT-2's real vocabulary,
 *           from a freshly loaded tokenizer (cold cache); the median of 3 runs.
 *   train:  seconds for tok_train to learn a 4096-token vocabulary from 4 MB of that text.
 * Usage: bench_tok [GPT2_DIR]  (default .cache/gpt2, as `make bench` runs it from the repo).
 * Writes tok_encode_mb_per_s, tok_train_seconds (and the sizes) into bench.json. */
#include "bench_util.h"
#include "rng.h"
#include "tok.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_BYTES  (8 << 20)
#define TRAIN_BYTES (4 << 20)
#define TRAIN_VOCAB 4096
#define RUNS        3

typedef struct {
    char *p;
    int64_t n, cap;
} buf_t;

static void put(buf_t *b, const char *s) {
    int64_t k = (int64_t)strlen(s);
    if (b->n + k + 1 > b->cap) {
        b->cap = 2 * (b->n + k + 1);
        b->p = realloc(b->p, (size_t)b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, s, (size_t)k + 1);
    b->n += k;
}

static const char *common_words[] = {
    "the",      "of",     "and",     "to",      "in",     "a",     "is",     "that",   "for",
    "it",       "as",     "was",     "with",    "be",     "by",    "on",     "not",    "he",
    "I",        "this",   "are",     "or",      "his",    "from",  "at",     "which",  "but",
    "have",     "an",     "had",     "they",    "you",    "were",  "their",  "one",    "all",
    "we",       "can",    "her",     "has",     "there",  "been",  "if",     "more",   "when",
    "will",     "would",  "who",     "so",      "no",     "model", "reward", "policy", "training",
    "language", "people", "between", "because", "through"};
static const char *syllables[] = {"ka", "re",  "mon", "tis", "el",   "por", "an", "dra", "vi",
                                  "qu", "est", "lo",  "ing", "tion", "ber", "sh", "om",  "ul"};
static const char *unicode_words[] = {"café",   "naïve",  "Ærøskøbing", "straße",
                                      "über",   "日本語", "中文文本",   "한국어",
                                      "Привет", "κόσμε",  "👍🏽",   "👨‍👩‍👧",
                                      "🙂",   "—",      "€10",        "½"};

/* A Zipf-like pick: small indices are much more frequent. */
static uint64_t zipf(rng_t *r, uint64_t n) {
    double u = rng_double(r);
    return (uint64_t)((double)n * u * u * u);
}

static void word(buf_t *b, rng_t *r) {
    uint64_t k = rng_below(r, 100);
    char tmp[64] = "";
    if (k < 60) {
        put(b, common_words[zipf(r, sizeof common_words / sizeof *common_words)]);
    } else if (k < 92) { /* pseudo-words from syllables: a long tail of rarer words */
        uint64_t n = 1 + rng_below(r, 4);
        for (uint64_t i = 0; i < n; i++)
            strcat(tmp, syllables[zipf(r, sizeof syllables / sizeof *syllables)]);
        if (rng_below(r, 10) == 0) tmp[0] = (char)(tmp[0] - 'a' + 'A');
        put(b, tmp);
    } else if (k < 97) {
        snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)rng_below(r, 100000));
        put(b, tmp);
    } else {
        put(b, unicode_words[rng_below(r, sizeof unicode_words / sizeof *unicode_words)]);
    }
}

static void code_block(buf_t *b, rng_t *r) {
    char tmp[256];
    snprintf(tmp, sizeof tmp,
             "static int f%llu(const int *x, int n) {\n    int s = 0;\n"
             "    for (int i = 0; i < n; i++) s += x[i] * %llu;\n    return s; // sum\n}\n\n",
             (unsigned long long)rng_below(r, 1000), (unsigned long long)rng_below(r, 97));
    put(b, tmp);
}

static char *make_text(int64_t bytes, uint64_t seed, int64_t *len) {
    rng_t r;
    rng_seed(&r, seed);
    buf_t b = {0};
    while (b.n < bytes) {
        uint64_t k = rng_below(&r, 100);
        if (k < 8) {
            code_block(&b, &r);
            continue;
        }
        int n = 20 + (int)rng_below(&r, 80);
        for (int i = 0; i < n; i++) {
            if (i) put(&b, rng_below(&r, 50) ? " " : "  ");
            word(&b, &r);
            uint64_t p = rng_below(&r, 40);
            put(&b, p == 0 ? "," : p == 1 ? "." : p == 2 ? "'s" : p == 3 ? ":" : "");
        }
        put(&b, rng_below(&r, 4) ? ".\n" : ".\n\n\t");
    }
    *len = b.n;
    return b.p;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, c = *(const double *)y;
    return (a > c) - (a < c);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".cache/gpt2";
    err_t err = ERR_INIT;
    int64_t len;
    char *text = make_text(TEXT_BYTES, 1234, &len);
    double secs[RUNS];
    int64_t ntok = 0;
    for (int run = 0; run < RUNS; run++) {
        tok_t *t = tok_load(dir, &err);
        if (!t) {
            fprintf(stderr, "bench_tok: error: %s (run `make deps`)\n", err.msg);
            return 1;
        }
        tok_ids_t ids = TOK_IDS_INIT;
        double t0 = bench_now();
        if (tok_encode(t, text, len, false, &ids, &err)) {
            fprintf(stderr, "bench_tok: error: %s\n", err.msg);
            return 1;
        }
        secs[run] = bench_now() - t0;
        ntok = ids.len;
        tok_ids_release(&ids);
        tok_destroy(&t);
    }
    qsort(secs, RUNS, sizeof *secs, cmp_double);
    double mbps = (double)len / 1e6 / secs[RUNS / 2];

    double t0 = bench_now();
    tok_t *trained = tok_train(text, TRAIN_BYTES, TRAIN_VOCAB, &err);
    double train_s = bench_now() - t0;
    if (!trained) {
        fprintf(stderr, "bench_tok: error: %s\n", err.msg);
        return 1;
    }
    printf("tok: encode %.1f MB/s (%.1f MB → %lld GPT-2 tokens, %.2f bytes/token, median of %d, "
           "1 core)\n",
           mbps, (double)len / 1e6, (long long)ntok, (double)len / (double)ntok, RUNS);
    printf("tok: train  %.2f s (vocab %d on %.1f MB)\n", train_s, tok_vocab_size(trained),
           (double)TRAIN_BYTES / 1e6);
    json_t *fields =
        json_pack("{s:f, s:f, s:I, s:i}", "tok_encode_mb_per_s", mbps, "tok_train_seconds", train_s,
                  "tok_encode_bytes", (json_int_t)len, "tok_train_vocab", tok_vocab_size(trained));
    tok_destroy(&trained);
    free(text);
    return bench_json_merge("bench.json", fields) ? 1 : 0;
}
