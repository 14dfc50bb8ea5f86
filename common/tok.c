/* common/tok.c: GPT-2 byte-level BPE (see tok.h for the contract).
 *
 * Encoding is shaped by its workload: text is mostly short words that repeat (Zipf), with
 * rare long runs (whitespace, punctuation, a base64 blob). So:
 *   - PCRE2 (JIT) cuts the text into pre-tokens with GPT-2's own pattern;
 *   - a pre-token of up to CACHE_KEY_MAX bytes is looked up in a fixed-size 2-way cache
 *     (no growth, no eviction bookkeeping beyond "newest goes to way 0");
 *   - a miss of up to BPE_SHORT_MAX bytes runs BPE on stack arrays with one rank per
 *     adjacent pair (a merge re-ranks only its neighbours); longer pre-tokens use a heap
 *     over a linked list, O(n log n), so a megabyte of '=' is not quadratic.
 * Both BPE paths apply GPT-2's rule exactly: take the lowest-ranked adjacent pair and merge
 * every occurrence of it, left to right without overlap, then repeat.
 *
 * Training (tok_train) counts unique pre-tokens once, keeps exact pair counts weighted by
 * word frequency, an index pair → words that contain it, and a max-heap with lazy deletion;
 * a merge touches only the words in its pair's index. */
#include "tok.h"
#include "fs.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* GPT-2's pre-tokenizer (openai/gpt-2 src/encoder.py), unchanged. */
#define GPT2_PATTERN                                                                               \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

#define CACHE_KEY_MAX 22        /* pre-tokens up to this many bytes are cached */
#define CACHE_IDS_MAX 10        /* ... when they encode to at most this many ids */
#define CACHE_SETS    (1 << 15) /* 2 ways each: 65536 slots of 64 bytes = 4 MiB */
#define BPE_SHORT_MAX 64        /* longer pre-tokens take the heap path */
#define RANK_NONE     INT32_MAX
#define RANK_DIRTY    (-1)
#define MERGE_EMPTY   UINT64_MAX
#define TOK_ID_MAX    0x7ffffff0 /* ids fit int32 with room for sentinels */

typedef struct {
    uint64_t key; /* (uint64_t)a << 32 | b; MERGE_EMPTY = free slot */
    int32_t rank; /* line order in merges.txt: 0 is applied first */
    int32_t id;   /* the merged token */
} merge_slot_t;

typedef struct {
    uint8_t klen;               /* key bytes; 0 = empty slot */
    uint8_t nids;               /* ids[0..nids) */
    char key[CACHE_KEY_MAX];    /* the pre-token's bytes */
    int32_t ids[CACHE_IDS_MAX]; /* its encoding */
} cache_slot_t;

typedef struct {
    int32_t rank, a, b, id; /* pair (a, b) → id, applied in rank order */
    int64_t pos;            /* left symbol's position: ties pop left to right */
} heap_entry_t;

struct tok {
    int32_t n_vocab;           /* ids are 0..n_vocab-1 */
    int32_t n_merges;          /* rows of merge_ab */
    int32_t eot;               /* id of "<|endoftext|>", -1 if none */
    char *bytes;               /* every token's bytes, concatenated in id order */
    int64_t *offset;           /* token i = bytes[offset[i] .. offset[i+1]); n_vocab+1 */
    int32_t byte_id[256];      /* the one-byte token of each byte value */
    int32_t *str_table;        /* open addressing over token bytes → id; -1 = empty */
    uint64_t str_mask;         /* str_table has str_mask+1 slots (a power of two) */
    merge_slot_t *merge_table; /* (a, b) → rank, merged id */
    uint64_t merge_mask;       /* merge_table has merge_mask+1 slots */
    int32_t *merge_ab;         /* merge r is (merge_ab[2r], merge_ab[2r+1]), for tok_save */
    pcre2_code *re;            /* GPT2_PATTERN, UTF + UCP + MATCH_INVALID_UTF */
    pcre2_match_data *md;      /* encode's match data (why encoding is single-threaded) */
    bool jit;                  /* re was JIT-compiled */
    cache_slot_t *cache;       /* CACHE_SETS * 2 slots */
    int32_t *sym;              /* long-path scratch: symbol per position, -1 = merged away */
    int64_t *prv, *nxt;        /* long-path neighbours, -1 = none */
    int64_t scratch_cap;       /* positions sym/prv/nxt hold */
    heap_entry_t *heap;        /* long-path heap */
    int64_t heap_cap;          /* entries heap holds */
};

/* ---------------------------------------------------------------------------------------- */
/* GPT-2's byte ↔ unicode alphabet (bytes_to_unicode in encoder.py): printable Latin-1 bytes
 * stand for themselves, the other 68 are shifted to U+0100..U+0143, so every token is a
 * printable string and a space becomes 'Ġ' (U+0120). */

#define ALPHABET_CP_MAX 0x144

static bool byte_is_printable(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* cp_of[b] = the code point standing for byte b; byte_of[cp] = the byte or -1. The first 188
 * entries of GPT-2's vocabulary are the printable bytes in order, then the shifted ones:
 * order[i] = the byte of vocabulary id i. */
static void alphabet(uint16_t cp_of[256], int16_t byte_of[ALPHABET_CP_MAX], uint8_t order[256]) {
    int n = 0, k = 0;
    for (int b = 0; b < 256; b++)
        if (byte_is_printable(b)) order[k++] = (uint8_t)b;
    for (int b = 0; b < 256; b++)
        if (!byte_is_printable(b)) order[k++] = (uint8_t)b;
    for (int i = 0; i < ALPHABET_CP_MAX; i++) byte_of[i] = -1;
    for (int b = 0; b < 256; b++) {
        cp_of[b] = (uint16_t)(byte_is_printable(b) ? b : 256 + n++);
        byte_of[cp_of[b]] = (int16_t)b;
    }
}

/* Decodes a token spelled in the byte alphabet (UTF-8) into out (at least len bytes).
 * Returns the byte count, or -1 when a character is not in the alphabet. */
static int64_t spelling_to_bytes(const char *s, int64_t len, const int16_t byte_of[], char *out) {
    const uint8_t *p = (const uint8_t *)s;
    int64_t n = 0;
    for (int64_t i = 0; i < len;) {
        uint32_t cp;
        if (p[i] < 0x80) {
            cp = p[i];
            i += 1;
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < len && (p[i + 1] & 0xC0) == 0x80) {
            cp = (uint32_t)(p[i] & 0x1F) << 6 | (p[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1; /* 3- and 4-byte characters are all outside the alphabet */
        }
        if (cp >= ALPHABET_CP_MAX || byte_of[cp] < 0) return -1;
        out[n++] = (char)byte_of[cp];
    }
    return n;
}

/* Appends the alphabet spelling of bytes[0..len) to out (room for 2*len bytes). */
static int64_t bytes_to_spelling(const char *bytes, int64_t len, const uint16_t cp_of[],
                                 char *out) {
    int64_t n = 0;
    for (int64_t i = 0; i < len; i++) {
        uint16_t cp = cp_of[(uint8_t)bytes[i]];
        if (cp < 0x80) {
            out[n++] = (char)cp;
        } else {
            out[n++] = (char)(0xC0 | cp >> 6);
            out[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Hashing. */

static uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const char *p, int64_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 29;
    }
    if (n > 0) {
        uint64_t w = 0;
        memcpy(&w, p, (size_t)n);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    }
    return mix64(h);
}

static uint64_t pair_key(int32_t a, int32_t b) {
    return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

/* Smallest power of two >= 2n (and >= 16): open-addressing tables stay at most half full. */
static uint64_t table_size(int64_t n) {
    uint64_t s = 16;
    while (s < 2 * (uint64_t)n) s <<= 1;
    return s;
}

static const merge_slot_t *merge_find(const tok_t *t, int32_t a, int32_t b) {
    uint64_t key = pair_key(a, b);
    for (uint64_t i = mix64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const merge_slot_t *s = &t->merge_table[i];
        if (s->key == key) return s;
        if (s->key == MERGE_EMPTY) return NULL;
    }
}

/* Adds merge (a, b) → id with the next rank; -1 when (a, b) is already a merge. */
static int merge_add(tok_t *t, int32_t a, int32_t b, int32_t id) {
    uint64_t key = pair_key(a, b);
    uint64_t i = mix64(key) & t->merge_mask;
    for (; t->merge_table[i].key != MERGE_EMPTY; i = (i + 1) & t->merge_mask)
        if (t->merge_table[i].key == key) return -1;
    t->merge_table[i] = (merge_slot_t){key, t->n_merges, id};
    t->merge_ab[2 * t->n_merges] = a;
    t->merge_ab[2 * t->n_merges + 1] = b;
    t->n_merges++;
    return 0;
}

int32_t tok_token_id(const tok_t *t, const char *bytes, int64_t len) {
    for (uint64_t i = hash_bytes(bytes, len) & t->str_mask;; i = (i + 1) & t->str_mask) {
        int32_t id = t->str_table[i];
        if (id < 0) return -1;
        if (t->offset[id + 1] - t->offset[id] == len &&
            !memcmp(t->bytes + t->offset[id], bytes, (size_t)len))
            return id;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Construction shared by the loader and the trainer. */

static pcre2_code *pattern_compile(bool *jit, err_t *err) {
    int code;
    PCRE2_SIZE at;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED,
                      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        err_setf(err, "PCRE2 cannot compile GPT-2's pattern at offset %zu: %s", (size_t)at,
                 (const char *)msg);
        return NULL;
    }
    /* JIT is several times faster; without it (an unsupported CPU) the interpreter is exact. */
    *jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    return re;
}

/* A tokenizer over n_vocab tokens given as bytes/offset (taken over, freed on failure too),
 * with room for max_merges merges and no merge yet. Checks that every byte has a token.
 * what names the source in errors ("d/vocab.json"). */
static tok_t *tok_new(char *bytes, int64_t *offset, int32_t n_vocab, int64_t max_merges,
                      const char *what, err_t *err) {
    tok_t *t = calloc(1, sizeof *t);
    if (!t) {
        free(bytes);
        free(offset);
        err_setf(err, "out of memory");
        return NULL;
    }
    t->bytes = bytes;
    t->offset = offset;
    t->n_vocab = n_vocab;
    t->str_mask = table_size(n_vocab) - 1;
    t->merge_mask = table_size(max_merges) - 1;
    t->str_table = malloc((t->str_mask + 1) * sizeof *t->str_table);
    t->merge_table = malloc((t->merge_mask + 1) * sizeof *t->merge_table);
    t->merge_ab = malloc((size_t)(2 * max_merges + 2) * sizeof *t->merge_ab);
    t->cache = calloc(2 * CACHE_SETS, sizeof *t->cache);
    if (!t->str_table || !t->merge_table || !t->merge_ab || !t->cache) {
        err_setf(err, "out of memory");
        goto fail;
    }
    memset(t->str_table, 0xff, (t->str_mask + 1) * sizeof *t->str_table);
    memset(t->merge_table, 0xff, (t->merge_mask + 1) * sizeof *t->merge_table);
    for (int32_t id = 0; id < n_vocab; id++) {
        const char *s = bytes + offset[id];
        int64_t len = offset[id + 1] - offset[id];
        if (tok_token_id(t, s, len) >= 0) {
            err_setf(err, "%s: ids %d and %d are the same bytes", what, tok_token_id(t, s, len),
                     id);
            goto fail;
        }
        uint64_t i = hash_bytes(s, len) & t->str_mask;
        while (t->str_table[i] >= 0) i = (i + 1) & t->str_mask;
        t->str_table[i] = id;
    }
    uint16_t cp_of[256];
    int16_t byte_of[ALPHABET_CP_MAX];
    uint8_t order[256];
    alphabet(cp_of, byte_of, order);
    for (int b = 0; b < 256; b++) {
        char c = (char)b, sp[2];
        t->byte_id[b] = tok_token_id(t, &c, 1);
        if (t->byte_id[b] < 0) {
            int64_t n = bytes_to_spelling(&c, 1, cp_of, sp);
            err_setf(err,
                     "%s: no token for byte 0x%02x (\"%.*s\"); a byte-level vocabulary "
                     "needs all 256",
                     what, b, (int)n, sp);
            goto fail;
        }
    }
    t->eot = tok_token_id(t, TOK_EOT_TEXT, (int64_t)strlen(TOK_EOT_TEXT));
    t->re = pattern_compile(&t->jit, err);
    if (!t->re) goto fail;
    t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!t->md) {
        err_setf(err, "out of memory");
        goto fail;
    }
    return t;
fail:
    tok_destroy(&t);
    return NULL;
}

void tok_destroy(tok_t **tok) {
    if (!tok || !*tok) return;
    tok_t *t = *tok;
    pcre2_match_data_free(t->md);
    pcre2_code_free(t->re);
    free(t->bytes);
    free(t->offset);
    free(t->str_table);
    free(t->merge_table);
    free(t->merge_ab);
    free(t->cache);
    free(t->sym);
    free(t->prv);
    free(t->nxt);
    free(t->heap);
    free(t);
    *tok = NULL;
}

int32_t tok_vocab_size(const tok_t *t) {
    return t->n_vocab;
}

int32_t tok_eot_id(const tok_t *t) {
    return t->eot;
}

int32_t tok_merge_count(const tok_t *t) {
    return t->n_merges;
}

/* ---------------------------------------------------------------------------------------- */
/* Loading. */

/* Reads a whole file into a new NUL-terminated buffer; caller frees. */
static char *read_file(const char *path, int64_t *len, err_t *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_setf(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    int64_t cap = 1 << 16, n = 0;
    char *buf = malloc((size_t)cap);
    while (buf) {
        n += (int64_t)fread(buf + n, 1, (size_t)(cap - n - 1), f);
        if (n < cap - 1) break;
        char *bigger = realloc(buf, (size_t)(cap *= 2));
        if (!bigger) free(buf);
        buf = bigger;
    }
    bool bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        err_setf(err, buf ? "%s: read error" : "%s: out of memory", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The 1-based line of text on which `"key"` appears (as raw UTF-8 or with \u escapes), or 0:
 * jansson keeps no positions, and a bad entry is easier to find with a line. */
static int64_t line_of_key(const char *text, const char *key) {
    json_t *s = json_string(key);
    char *forms[2] = {NULL, NULL};
    if (s) {
        forms[0] = json_dumps(s, JSON_ENCODE_ANY);
        forms[1] = json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    }
    json_decref(s);
    int64_t line = 0;
    for (int k = 0; k < 2 && !line; k++) {
        const char *hit = forms[k] ? strstr(text, forms[k]) : NULL;
        if (!hit) continue;
        line = 1;
        for (const char *p = text; p < hit; p++) line += *p == '\n';
    }
    free(forms[0]);
    free(forms[1]);
    return line;
}

/* Parses vocab.json into token bytes (new arrays bytes/offset in id order; caller frees). */
static int vocab_parse(const char *path, char **out_bytes, int64_t **out_offset, int32_t *out_n,
                       err_t *err) {
    int64_t len;
    char *text = read_file(path, &len, err), *bytes = NULL, *tmp = NULL;
    int64_t *offset = NULL, *start = NULL;
    json_t *root = NULL;
    if (!text) return -1;
    json_error_t je;
    root = json_loadb(text, (size_t)len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        err_setf(err, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        goto fail;
    }
    if (!json_is_object(root) || json_object_size(root) == 0 ||
        json_object_size(root) > TOK_ID_MAX) {
        err_setf(err, "%s: expected one object of token → id entries", path);
        goto fail;
    }
    int32_t n = (int32_t)json_object_size(root);
    uint16_t cp_of[256];
    int16_t byte_of[ALPHABET_CP_MAX];
    uint8_t order[256];
    alphabet(cp_of, byte_of, order);
    tmp = malloc((size_t)len + 1); /* decoded bytes never outnumber the file's */
    bytes = malloc((size_t)len + 1);
    start = malloc((size_t)n * 2 * sizeof *start); /* start, length per id; -1 = unseen */
    offset = malloc((size_t)(n + 1) * sizeof *offset);
    if (!tmp || !bytes || !start || !offset) {
        err_setf(err, "out of memory");
        goto fail;
    }
    for (int32_t i = 0; i < 2 * n; i++) start[i] = -1;
    int64_t used = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        int64_t id = json_is_integer(val) ? (int64_t)json_integer_value(val) : -1;
        const char *why = !json_is_integer(val) ? "the id is not an integer"
                          : id < 0 || id >= n   ? "the id is out of range"
                          : start[2 * id] >= 0  ? "the id is already taken"
                                                : NULL;
        int64_t nb = why ? 0 : spelling_to_bytes(key, (int64_t)strlen(key), byte_of, tmp + used);
        if (!why && nb < 0) why = "a character is not one of GPT-2's 256 byte symbols";
        if (!why && nb == 0) why = "the token is empty";
        if (why) {
            err_setf(err, "%s:%lld: entry \"%.80s\": %s (ids must be 0..%d)", path,
                     (long long)line_of_key(text, key), key, why, n - 1);
            goto fail;
        }
        start[2 * id] = used;
        start[2 * id + 1] = nb;
        used += nb;
    }
    offset[0] = 0;
    for (int32_t id = 0; id < n; id++) {
        memcpy(bytes + offset[id], tmp + start[2 * id], (size_t)start[2 * id + 1]);
        offset[id + 1] = offset[id] + start[2 * id + 1];
    }
    *out_bytes = bytes;
    *out_offset = offset;
    *out_n = n;
    free(start);
    free(tmp);
    json_decref(root);
    free(text);
    return 0;
fail:
    free(offset);
    free(start);
    free(bytes);
    free(tmp);
    json_decref(root);
    free(text);
    return -1;
}

/* One merges.txt line "A B" → the ids of A and B and of the merged token. */
static int merge_line_parse(const tok_t *t, const char *path, int64_t line_no, const char *line,
                            int64_t len, const int16_t byte_of[], char *scratch, int32_t ids[3],
                            err_t *err) {
    const char *sp = memchr(line, ' ', (size_t)len);
    int show = len > 120 ? 120 : (int)len;
    if (!sp || sp == line || sp == line + len - 1 ||
        memchr(sp + 1, ' ', (size_t)(line + len - sp - 1)))
        return err_setf(err, "%s:%lld: \"%.*s\": expected two tokens separated by one space", path,
                        (long long)line_no, show, line);
    const char *part[2] = {line, sp + 1};
    int64_t plen[2] = {sp - line, line + len - sp - 1}, nb[2];
    for (int k = 0; k < 2; k++) {
        nb[k] = spelling_to_bytes(part[k], plen[k], byte_of, scratch + (k ? nb[0] : 0));
        ids[k] = nb[k] < 0 ? -2 : tok_token_id(t, scratch + (k ? nb[0] : 0), nb[k]);
        if (ids[k] == -2)
            return err_setf(err,
                            "%s:%lld: \"%.*s\": \"%.*s\" is not spelled in GPT-2's byte "
                            "symbols",
                            path, (long long)line_no, show, line, (int)plen[k], part[k]);
        if (ids[k] < 0)
            return err_setf(err, "%s:%lld: \"%.*s\": token \"%.*s\" is not in vocab.json", path,
                            (long long)line_no, show, line, (int)plen[k], part[k]);
    }
    ids[2] = tok_token_id(t, scratch, nb[0] + nb[1]);
    if (ids[2] < 0)
        return err_setf(err,
                        "%s:%lld: \"%.*s\": the merged token \"%.*s%.*s\" is not in "
                        "vocab.json",
                        path, (long long)line_no, show, line, (int)plen[0], part[0], (int)plen[1],
                        part[1]);
    return 0;
}

static int merges_parse(tok_t *t, const char *path, const char *text, int64_t len, err_t *err) {
    uint16_t cp_of[256];
    int16_t byte_of[ALPHABET_CP_MAX];
    uint8_t order[256];
    alphabet(cp_of, byte_of, order);
    char *scratch = malloc((size_t)len + 1);
    if (!scratch) return err_setf(err, "out of memory");
    int64_t line_no = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        int64_t n = stop - p;
        line_no++;
        if (n > 0 && p[n - 1] == '\r') n--;
        bool skip = n == 0 || (line_no == 1 && n >= 8 && !memcmp(p, "#version", 8));
        int32_t ids[3] = {0, 0, 0};
        if (!skip) {
            if (merge_line_parse(t, path, line_no, p, n, byte_of, scratch, ids, err) ||
                (merge_add(t, ids[0], ids[1], ids[2]) &&
                 err_setf(err, "%s:%lld: \"%.*s\": repeats an earlier merge", path,
                          (long long)line_no, (int)(n > 120 ? 120 : n), p))) {
                free(scratch);
                return -1;
            }
        }
        p = stop + 1;
    }
    free(scratch);
    return 0;
}

tok_t *tok_load_files(const char *vocab_path, const char *merges_path, err_t *err) {
    char *bytes = NULL, *merges = NULL;
    int64_t *offset = NULL, mlen = 0;
    int32_t n = 0;
    if (vocab_parse(vocab_path, &bytes, &offset, &n, err)) return NULL;
    merges = read_file(merges_path, &mlen, err);
    if (!merges) {
        free(bytes);
        free(offset);
        return NULL;
    }
    int64_t lines = 1;
    for (int64_t i = 0; i < mlen; i++) lines += merges[i] == '\n';
    tok_t *t = tok_new(bytes, offset, n, lines, vocab_path, err);
    if (t && merges_parse(t, merges_path, merges, mlen, err)) tok_destroy(&t);
    free(merges);
    return t;
}

tok_t *tok_load(const char *dir, err_t *err) {
    char vocab[4096], merges[4096], path[4096];
    /* fs_resolve: a tok_save a crash interrupted is read whole, never half old, half new */
    if (snprintf(path, sizeof path, "%s/vocab.json", dir) >= (int)sizeof path ||
        fs_resolve(path, vocab, sizeof vocab, err) ||
        snprintf(path, sizeof path, "%s/merges.txt", dir) >= (int)sizeof path ||
        fs_resolve(path, merges, sizeof merges, err)) {
        err_setf(err, "%.200s...: path too long", dir);
        return NULL;
    }
    return tok_load_files(vocab, merges, err);
}

/* ---------------------------------------------------------------------------------------- */
/* BPE on one pre-token. */

static void pair_rank(const tok_t *t, int32_t a, int32_t b, int32_t *rank, int32_t *id) {
    const merge_slot_t *m = merge_find(t, a, b);
    *rank = m ? m->rank : RANK_NONE;
    *id = m ? m->id : -1;
}

/* n <= BPE_SHORT_MAX bytes → ids in out (at most n); returns the count. rank[i] is the rank
 * of pair (sym[i], sym[i+1]); after a merge only the pairs next to a merged symbol change. */
static int64_t bpe_short(const tok_t *t, const uint8_t *p, int64_t n, int32_t *out) {
    int32_t *sym = out, rank[BPE_SHORT_MAX], mid[BPE_SHORT_MAX];
    for (int64_t i = 0; i < n; i++) sym[i] = t->byte_id[p[i]];
    for (int64_t i = 0; i + 1 < n; i++) pair_rank(t, sym[i], sym[i + 1], &rank[i], &mid[i]);
    rank[n - 1] = RANK_NONE;
    int64_t m = n;
    while (m > 1) {
        int32_t best = RANK_NONE;
        int64_t at = 0;
        for (int64_t i = 0; i + 1 < m; i++)
            if (rank[i] < best) best = rank[i], at = i;
        if (best == RANK_NONE) break;
        int32_t merged = mid[at];
        /* Merge every occurrence of the best pair, left to right, without overlap. A rank
         * names one pair, so rank[r] == best means (sym[r], sym[r+1]) is that pair. */
        int64_t w = at;
        for (int64_t r = at; r < m;) {
            if (r + 1 < m && rank[r] == best) {
                sym[w] = merged;
                rank[w] = RANK_DIRTY;
                if (w > 0) rank[w - 1] = RANK_DIRTY;
                w++;
                r += 2;
            } else {
                sym[w] = sym[r], rank[w] = rank[r], mid[w] = mid[r];
                w++;
                r++;
            }
        }
        m = w;
        for (int64_t i = 0; i + 1 < m; i++)
            if (rank[i] == RANK_DIRTY) pair_rank(t, sym[i], sym[i + 1], &rank[i], &mid[i]);
        rank[m - 1] = RANK_NONE;
    }
    return m;
}

static bool heap_less(const heap_entry_t *x, const heap_entry_t *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(heap_entry_t *h, int64_t *n, heap_entry_t e) {
    int64_t i = (*n)++;
    while (i > 0 && heap_less(&e, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

static heap_entry_t heap_pop(heap_entry_t *h, int64_t *n) {
    heap_entry_t top = h[0], last = h[--*n];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

static int scratch_reserve(tok_t *t, int64_t n, err_t *err) {
    if (n <= t->scratch_cap) return 0;
    int64_t cap = n + n / 2;
    int32_t *sym = realloc(t->sym, (size_t)cap * sizeof *sym);
    if (sym) t->sym = sym;
    int64_t *prv = sym ? realloc(t->prv, (size_t)cap * sizeof *prv) : NULL;
    if (prv) t->prv = prv;
    int64_t *nxt = prv ? realloc(t->nxt, (size_t)cap * sizeof *nxt) : NULL;
    if (nxt) t->nxt = nxt;
    heap_entry_t *heap = nxt ? realloc(t->heap, (size_t)(3 * cap) * sizeof *heap) : NULL;
    if (heap) t->heap = heap;
    if (!heap) return err_setf(err, "out of memory (a pre-token of %lld bytes)", (long long)n);
    t->scratch_cap = cap;
    t->heap_cap = 3 * cap;
    return 0;
}

static void push_pair(tok_t *t, int64_t *nheap, int64_t pos) {
    int64_t q = t->nxt[pos];
    if (q < 0) return;
    int32_t rank, id;
    pair_rank(t, t->sym[pos], t->sym[q], &rank, &id);
    if (rank != RANK_NONE)
        heap_push(t->heap, nheap, (heap_entry_t){rank, t->sym[pos], t->sym[q], id, pos});
}

/* Any n: a min-heap of (rank, position) over a linked list. One round pops every entry of
 * the lowest rank in position order (GPT-2's left-to-right pass), and only then pushes the
 * pairs the round created, so a lower-ranked new pair cannot cut into the round. The ids
 * land in t->sym; returns their count. The heap holds n-1 + 2 per merge < 3n entries. */
static int64_t bpe_long(tok_t *t, const uint8_t *p, int64_t n, err_t *err) {
    if (scratch_reserve(t, n, err)) return -1;
    int32_t *sym = t->sym;
    int64_t *prv = t->prv, *nxt = t->nxt, nheap = 0;
    for (int64_t i = 0; i < n; i++) {
        sym[i] = t->byte_id[p[i]];
        prv[i] = i - 1;
        nxt[i] = i + 1 < n ? i + 1 : -1;
    }
    for (int64_t i = 0; i + 1 < n; i++) push_pair(t, &nheap, i);
    /* Positions merged in the current round, kept in the prv slots of the symbols they
     * absorbed (dead symbols' links are never read again). */
    while (nheap > 0) {
        int32_t round = t->heap[0].rank;
        int64_t merged_head = -1;
        while (nheap > 0 && t->heap[0].rank == round) {
            heap_entry_t e = heap_pop(t->heap, &nheap);
            int64_t q = nxt[e.pos];
            if (sym[e.pos] != e.a || q < 0 || sym[q] != e.b) continue; /* stale */
            sym[e.pos] = e.id;
            sym[q] = -1;
            nxt[e.pos] = nxt[q];
            if (nxt[q] >= 0) prv[nxt[q]] = e.pos;
            prv[q] = merged_head; /* q is dead: reuse its link for the list of merges */
            nxt[q] = e.pos;
            merged_head = q;
        }
        for (int64_t q = merged_head; q >= 0; q = prv[q]) {
            int64_t pos = nxt[q];
            if (prv[pos] >= 0) push_pair(t, &nheap, prv[pos]);
            push_pair(t, &nheap, pos);
        }
    }
    int64_t m = 0;
    for (int64_t i = 0; i >= 0; i = nxt[i]) sym[m++] = sym[i];
    return m;
}

/* ---------------------------------------------------------------------------------------- */
/* Encoding. */

typedef struct {
    int32_t *ids;    /* caller buffer, or grow->ids */
    int64_t n, cap;  /* ids needed so far; room in ids */
    tok_ids_t *grow; /* non-NULL: grow instead of counting past cap */
} sink_t;

static int sink_put(sink_t *s, const int32_t *ids, int64_t k, err_t *err) {
    if (s->grow && s->n + k > s->cap) {
        int64_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + k) cap *= 2;
        int32_t *bigger = realloc(s->grow->ids, (size_t)cap * sizeof *bigger);
        if (!bigger) return err_setf(err, "out of memory (%lld ids)", (long long)cap);
        s->grow->ids = s->ids = bigger;
        s->grow->cap = s->cap = cap;
    }
    int64_t room = s->cap - s->n;
    if (room > 0) memcpy(s->ids + s->n, ids, (size_t)(k < room ? k : room) * sizeof *ids);
    s->n += k;
    return 0;
}

static int encode_piece(tok_t *t, const char *piece, int64_t n, sink_t *out, err_t *err) {
    const uint8_t *p = (const uint8_t *)piece;
    if (n == 1) return sink_put(out, &t->byte_id[p[0]], 1, err);
    cache_slot_t *set = NULL;
    if (n <= CACHE_KEY_MAX) {
        set = &t->cache[2 * (hash_bytes(piece, n) & (CACHE_SETS - 1))];
        for (int way = 0; way < 2; way++)
            if (set[way].klen == n && !memcmp(set[way].key, piece, (size_t)n))
                return sink_put(out, set[way].ids, set[way].nids, err);
    }
    if (n > BPE_SHORT_MAX) {
        int64_t m = bpe_long(t, p, n, err);
        return m < 0 ? -1 : sink_put(out, t->sym, m, err);
    }
    int32_t ids[BPE_SHORT_MAX];
    int64_t m = bpe_short(t, p, n, ids);
    if (set && m <= CACHE_IDS_MAX) { /* newest in way 0: a cheap approximation of LRU */
        set[1] = set[0];
        set[0].klen = (uint8_t)n;
        set[0].nids = (uint8_t)m;
        memcpy(set[0].key, piece, (size_t)n);
        memcpy(set[0].ids, ids, (size_t)m * sizeof *ids);
    }
    return sink_put(out, ids, m, err);
}

/* Calls fn(ctx, piece, n) for each pre-token of text[0..len), in order, covering every byte:
 * bytes no match can start at (invalid UTF-8) form pieces of their own. */
typedef int (*piece_fn)(void *ctx, const char *piece, int64_t n, err_t *err);

static int pretokenize(const pcre2_code *re, bool jit, pcre2_match_data *md, const char *text,
                       int64_t len, piece_fn fn, void *ctx, err_t *err) {
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    int64_t at = 0;
    while (at < len) {
        int rc =
            jit ? pcre2_jit_match(re, (PCRE2_SPTR)text, (PCRE2_SIZE)len, (PCRE2_SIZE)at, 0, md,
                                  NULL)
                : pcre2_match(re, (PCRE2_SPTR)text, (PCRE2_SIZE)len, (PCRE2_SIZE)at, 0, md, NULL);
        int64_t start = rc >= 0 ? (int64_t)ov[0] : len, end = rc >= 0 ? (int64_t)ov[1] : len;
        if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return err_setf(err, "pre-tokenizer failed at byte %lld: %s", (long long)at,
                            (const char *)msg);
        }
        if (start > at && fn(ctx, text + at, start - at, err)) return -1;
        if (end > start && fn(ctx, text + start, end - start, err)) return -1;
        at = end > start ? end : start + 1; /* the pattern cannot match empty; be safe */
        if (end == start && start < len && fn(ctx, text + start, 1, err)) return -1;
    }
    return 0;
}

typedef struct {
    tok_t *t;
    sink_t *out;
} encode_ctx_t;

static int encode_cb(void *ctx, const char *piece, int64_t n, err_t *err) {
    encode_ctx_t *c = ctx;
    return encode_piece(c->t, piece, n, c->out, err);
}

static int encode_sink(tok_t *t, const char *text, int64_t len, bool special, sink_t *out,
                       err_t *err) {
    encode_ctx_t ctx = {t, out};
    const size_t eot_len = strlen(TOK_EOT_TEXT);
    while (len > 0) {
        const char *hit =
            special && t->eot >= 0 ? memmem(text, (size_t)len, TOK_EOT_TEXT, eot_len) : NULL;
        int64_t n = hit ? hit - text : len;
        if (pretokenize(t->re, t->jit, t->md, text, n, encode_cb, &ctx, err)) return -1;
        if (!hit) break;
        if (sink_put(out, &t->eot, 1, err)) return -1;
        text += n + (int64_t)eot_len;
        len -= n + (int64_t)eot_len;
    }
    return 0;
}

int tok_encode(tok_t *t, const char *text, int64_t len, bool special, tok_ids_t *out, err_t *err) {
    int64_t len0 = out->len;
    sink_t s = {out->ids, out->len, out->cap, out};
    int rc = encode_sink(t, text, len, special, &s, err);
    out->len = rc ? len0 : s.n;
    return rc;
}

int64_t tok_encode_into(tok_t *t, const char *text, int64_t len, bool special, int32_t *ids,
                        int64_t cap, err_t *err) {
    sink_t s = {ids, 0, cap, NULL};
    return encode_sink(t, text, len, special, &s, err) ? -1 : s.n;
}

void tok_ids_release(tok_ids_t *ids) {
    if (!ids) return;
    free(ids->ids);
    *ids = (tok_ids_t)TOK_IDS_INIT;
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding. */

const char *tok_token(const tok_t *t, int32_t id, int64_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    *len = t->offset[id + 1] - t->offset[id];
    return t->bytes + t->offset[id];
}

char *tok_decode(const tok_t *t, const int32_t *ids, int64_t n, int64_t *out_len, err_t *err) {
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) {
            err_setf(err, "id %d at position %lld is out of range [0, %d)", ids[i], (long long)i,
                     t->n_vocab);
            return NULL;
        }
        total += t->offset[ids[i] + 1] - t->offset[ids[i]];
    }
    char *s = malloc((size_t)total + 1);
    if (!s) {
        err_setf(err, "out of memory (%lld bytes)", (long long)total);
        return NULL;
    }
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = t->offset[ids[i] + 1] - t->offset[ids[i]];
        memcpy(s + at, t->bytes + t->offset[ids[i]], (size_t)k);
        at += k;
    }
    s[at] = '\0';
    *out_len = at;
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Saving. */

/* Appends s[0..n) as a JSON string the way Python's json.dumps writes it (ensure_ascii):
 * GPT-2's encoder.json was written so, and the alphabet has no control characters. */
static int64_t json_quote(const char *s, int64_t n, char *out) {
    int64_t k = 0;
    out[k++] = '"';
    for (int64_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x80) {
            if (c == '"' || c == '\\') out[k++] = '\\';
            out[k++] = (char)c;
            i++;
        } else { /* two-byte UTF-8: the alphabet stops at U+0143 */
            uint32_t cp = (uint32_t)(c & 0x1F) << 6 | ((uint8_t)s[i + 1] & 0x3F);
            k += sprintf(out + k, "\\u%04x", cp);
            i += 2;
        }
    }
    out[k++] = '"';
    return k;
}

/* vocab.json (as encoder.json: one line, ", " and ": ", ids in order) and merges.txt. */
static int render(const tok_t *t, char **vocab, int64_t *vlen, char **merges, int64_t *mlen,
                  err_t *err) {
    uint16_t cp_of[256];
    int16_t byte_of[ALPHABET_CP_MAX];
    uint8_t order[256];
    alphabet(cp_of, byte_of, order);
    int64_t nbytes = t->offset[t->n_vocab];
    /* A byte spells as ≤ 2 UTF-8 bytes, quoted as ≤ 6 chars; ids ≤ 10 digits + ", ": 12. */
    char *v = malloc((size_t)(12 * nbytes + 24 * (int64_t)t->n_vocab + 16));
    char *m = malloc((size_t)(4 * nbytes + 2 * (int64_t)t->n_merges + 32)), *sp = NULL;
    sp = malloc((size_t)(2 * nbytes + 2));
    if (!v || !m || !sp) {
        free(v);
        free(m);
        free(sp);
        return err_setf(err, "out of memory");
    }
    int64_t k = 0;
    v[k++] = '{';
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int64_t n = bytes_to_spelling(t->bytes + t->offset[id], t->offset[id + 1] - t->offset[id],
                                      cp_of, sp);
        if (id) v[k++] = ',', v[k++] = ' ';
        k += json_quote(sp, n, v + k);
        k += sprintf(v + k, ": %d", id);
    }
    v[k++] = '}';
    *vlen = k;
    k = sprintf(m, "#version: 0.2\n");
    for (int32_t r = 0; r < t->n_merges; r++) {
        for (int side = 0; side < 2; side++) {
            int32_t id = t->merge_ab[2 * r + side];
            k += bytes_to_spelling(t->bytes + t->offset[id], t->offset[id + 1] - t->offset[id],
                                   cp_of, m + k);
            m[k++] = side ? '\n' : ' ';
        }
    }
    *mlen = k;
    free(sp);
    *vocab = v;
    *merges = m;
    return 0;
}

int tok_save(const tok_t *t, const char *dir, err_t *err) {
    char *vocab = NULL, *merges = NULL;
    int64_t vlen = 0, mlen = 0;
    if (render(t, &vocab, &vlen, &merges, &mlen, err)) return -1;
    /* one set: a crash never leaves a vocab.json beside another vocabulary's merges.txt */
    fs_set_t *set = fs_set_begin(dir, err);
    int rc = set ? 0 : -1;
    if (!rc && (fs_set_write(set, "vocab.json", vocab, (size_t)vlen, err) ||
                fs_set_write(set, "merges.txt", merges, (size_t)mlen, err))) {
        fs_set_abort(&set);
        rc = -1;
    }
    if (!rc) rc = fs_set_commit(&set, err);
    free(vocab);
    free(merges);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Training. Words are unique pre-tokens with their frequency; a pair's count is the sum over
 * words of frequency × occurrences, kept exact through every merge. The heap holds
 * (count, pair) entries that may be stale: a popped entry whose count differs from the pair's
 * is pushed again with the current count (counts of existing pairs only fall; pairs that
 * gain, the ones with the new token, are pushed after each merge). */

typedef struct {
    int32_t a, b;  /* the pair */
    int64_t count; /* Σ frequency × occurrences over the words */
    int32_t
        *words; /* words that contain it, or did (may hold stale entries, no neighbours repeat) */
    int32_t nwords, capwords;
    int32_t stamp; /* last merge step that queued it for a push */
    bool merged;   /* already in the merge list (only a reused id brings a pair back) */
} pair_t;

typedef struct {
    int64_t count;
    int32_t pair;
} theap_t;

typedef struct {
    /* unique words */
    char *wbytes; /* word bytes, concatenated */
    int64_t nwbytes, capwbytes;
    int64_t *woff;  /* word i is wbytes[woff[i] .. woff[i+1]) */
    int64_t *wfreq; /* occurrences in the corpus */
    int32_t nwords, capwords;
    int32_t *wtable; /* bytes → word, open addressing; -1 = empty */
    uint64_t wmask;
    /* symbols of each word, shrinking as merges apply: word i at sym[soff[i]], slen[i] long */
    int32_t *sym;
    int64_t *soff;
    int32_t *slen;
    int32_t *seen; /* per word: last step that merged in it */
    /* tokens: bytes in id order */
    char *tbytes;
    int64_t ntbytes, captbytes;
    int64_t *toff; /* ntok + 1 */
    int32_t ntok, captok;
    int32_t *ttable; /* token bytes → id */
    uint64_t tmask;
    int32_t *merges; /* (a, b, id) per merge */
    int32_t nmerges, capmerges;
    /* pairs */
    pair_t *pairs;
    int32_t npairs, cappairs;
    int32_t *ptable; /* (a, b) → pair, open addressing; -1 = empty */
    uint64_t pmask;
    theap_t *heap;
    int64_t nheap, capheap;
    int32_t *touched; /* pairs that gained in this step */
    int32_t ntouched, captouched;
} trainer_t;

/* Grows *p (elements of size sz, capacity *cap) to hold need; 0 or -1. */
static int grow(void *p, int64_t *cap, int64_t need, size_t sz) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*(void **)p, (size_t)c * sz);
    if (!q) return -1;
    *(void **)p = q;
    *cap = c;
    return 0;
}

static int grow32(void *p, int32_t *cap, int64_t need, size_t sz) {
    int64_t c = *cap;
    if (need > TOK_ID_MAX || grow(p, &c, need, sz)) return -1;
    *cap = (int32_t)(c > TOK_ID_MAX ? TOK_ID_MAX : c);
    return 0;
}

/* Open addressing of int32 values keyed by a caller-given hash and equality. */
static int32_t *table_new(uint64_t size) {
    int32_t *t = malloc(size * sizeof *t);
    if (t) memset(t, 0xff, size * sizeof *t);
    return t;
}

static bool word_eq(const trainer_t *tr, int32_t w, const char *s, int64_t n) {
    return tr->woff[w + 1] - tr->woff[w] == n && !memcmp(tr->wbytes + tr->woff[w], s, (size_t)n);
}

static int words_rehash(trainer_t *tr) {
    uint64_t size = table_size(tr->nwords + 1);
    if (tr->wtable && size <= tr->wmask + 1) return 0;
    int32_t *t = table_new(size);
    if (!t) return -1;
    for (int32_t w = 0; w < tr->nwords; w++) {
        uint64_t i = hash_bytes(tr->wbytes + tr->woff[w], tr->woff[w + 1] - tr->woff[w]);
        for (i &= size - 1; t[i] >= 0; i = (i + 1) & (size - 1)) {
        }
        t[i] = w;
    }
    free(tr->wtable);
    tr->wtable = t;
    tr->wmask = size - 1;
    return 0;
}

static int word_count_cb(void *ctx, const char *s, int64_t n, err_t *err) {
    trainer_t *tr = ctx;
    uint64_t i = hash_bytes(s, n) & tr->wmask;
    for (; tr->wtable[i] >= 0; i = (i + 1) & tr->wmask) {
        if (word_eq(tr, tr->wtable[i], s, n)) {
            tr->wfreq[tr->wtable[i]]++;
            return 0;
        }
    }
    int32_t w = tr->nwords;
    int64_t cap = tr->capwords;
    if (grow(&tr->wbytes, &tr->capwbytes, tr->nwbytes + n, 1) ||
        grow(&tr->woff, &cap, w + 2, sizeof *tr->woff) ||
        grow32(&tr->wfreq, &tr->capwords, w + 2, sizeof *tr->wfreq))
        return err_setf(err, "out of memory (%d words)", w);
    memcpy(tr->wbytes + tr->nwbytes, s, (size_t)n);
    tr->woff[w] = tr->nwbytes;
    tr->nwbytes += n;
    tr->woff[w + 1] = tr->nwbytes;
    tr->wfreq[w] = 1;
    tr->wtable[i] = w;
    tr->nwords++;
    if (2 * (uint64_t)tr->nwords > tr->wmask + 1 && words_rehash(tr))
        return err_setf(err, "out of memory (%d words)", w);
    return 0;
}

/* Splits the corpus on "<|endoftext|>" and counts each pre-token. */
static int count_words(trainer_t *tr, const char *text, int64_t len, err_t *err) {
    bool jit;
    pcre2_code *re = pattern_compile(&jit, err);
    pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
    int rc = -1;
    if (!md || words_rehash(tr)) {
        err_setf(err, "out of memory");
        goto done;
    }
    const size_t eot_len = strlen(TOK_EOT_TEXT);
    while (len > 0) {
        const char *hit = memmem(text, (size_t)len, TOK_EOT_TEXT, eot_len);
        int64_t n = hit ? hit - text : len;
        if (pretokenize(re, jit, md, text, n, word_count_cb, tr, err)) goto done;
        if (!hit) break;
        text += n + (int64_t)eot_len;
        len -= n + (int64_t)eot_len;
    }
    rc = 0;
done:
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc;
}

static int32_t token_find(const trainer_t *tr, const char *s, int64_t n, uint64_t *slot) {
    uint64_t i = hash_bytes(s, n) & tr->tmask;
    for (; tr->ttable[i] >= 0; i = (i + 1) & tr->tmask) {
        int32_t id = tr->ttable[i];
        if (tr->toff[id + 1] - tr->toff[id] == n &&
            !memcmp(tr->tbytes + tr->toff[id], s, (size_t)n))
            return id;
    }
    *slot = i;
    return -1;
}

/* The id of the token a+b, added when new. The token table is sized for the target up front. */
static int32_t token_merge(trainer_t *tr, int32_t a, int32_t b, err_t *err) {
    int64_t na = tr->toff[a + 1] - tr->toff[a], nb = tr->toff[b + 1] - tr->toff[b];
    if (grow(&tr->tbytes, &tr->captbytes, tr->ntbytes + na + nb, 1))
        return err_setf(err, "out of memory");
    char *s = tr->tbytes + tr->ntbytes; /* build it in place past the end */
    memcpy(s, tr->tbytes + tr->toff[a], (size_t)na);
    memcpy(s + na, tr->tbytes + tr->toff[b], (size_t)nb);
    uint64_t slot;
    int32_t id = token_find(tr, s, na + nb, &slot);
    if (id >= 0) return id;
    id = tr->ntok++;
    tr->ntbytes += na + nb;
    tr->toff[id + 1] = tr->ntbytes;
    tr->ttable[slot] = id;
    return id;
}

static bool theap_less(const trainer_t *tr, theap_t x, theap_t y) { /* x pops first */
    if (x.count != y.count) return x.count > y.count;
    const pair_t *p = &tr->pairs[x.pair], *q = &tr->pairs[y.pair];
    return p->a != q->a ? p->a < q->a : p->b < q->b;
}

static int theap_push(trainer_t *tr, int64_t count, int32_t pair) {
    if (grow(&tr->heap, &tr->capheap, tr->nheap + 1, sizeof *tr->heap)) return -1;
    theap_t e = {count, pair};
    int64_t i = tr->nheap++;
    while (i > 0 && theap_less(tr, e, tr->heap[(i - 1) / 2])) {
        tr->heap[i] = tr->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    tr->heap[i] = e;
    return 0;
}

static theap_t theap_pop(trainer_t *tr) {
    theap_t top = tr->heap[0], last = tr->heap[--tr->nheap];
    int64_t i = 0, n = tr->nheap;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && theap_less(tr, tr->heap[c + 1], tr->heap[c])) c++;
        if (!theap_less(tr, tr->heap[c], last)) break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (n > 0) tr->heap[i] = last;
    return top;
}

static int pairs_rehash(trainer_t *tr) {
    uint64_t size = table_size(tr->npairs + 1);
    if (tr->ptable && size <= tr->pmask + 1) return 0;
    int32_t *t = table_new(size);
    if (!t) return -1;
    for (int32_t p = 0; p < tr->npairs; p++) {
        uint64_t i = mix64(pair_key(tr->pairs[p].a, tr->pairs[p].b)) & (size - 1);
        while (t[i] >= 0) i = (i + 1) & (size - 1);
        t[i] = p;
    }
    free(tr->ptable);
    tr->ptable = t;
    tr->pmask = size - 1;
    return 0;
}

/* The pair (a, b), created with count 0 when new; -1 when out of memory. */
static int32_t pair_get(trainer_t *tr, int32_t a, int32_t b) {
    uint64_t key = pair_key(a, b), i = mix64(key) & tr->pmask;
    for (; tr->ptable[i] >= 0; i = (i + 1) & tr->pmask) {
        const pair_t *p = &tr->pairs[tr->ptable[i]];
        if (p->a == a && p->b == b) return tr->ptable[i];
    }
    if (grow32(&tr->pairs, &tr->cappairs, tr->npairs + 1, sizeof *tr->pairs)) return -1;
    int32_t p = tr->npairs++;
    tr->pairs[p] = (pair_t){.a = a, .b = b, .stamp = -1};
    tr->ptable[i] = p;
    if (2 * (uint64_t)tr->npairs > tr->pmask + 1 && pairs_rehash(tr)) return -1;
    return p;
}

/* count(a, b) += delta for word w; a gain records w in the pair's index and, during merge
 * step `step` >= 0, queues the pair for a heap push. */
static int pair_delta(trainer_t *tr, int32_t a, int32_t b, int64_t delta, int32_t w, int32_t step) {
    int32_t p = pair_get(tr, a, b);
    if (p < 0) return -1;
    pair_t *pr = &tr->pairs[p];
    pr->count += delta;
    if (delta <= 0) return 0;
    if (pr->nwords == 0 || pr->words[pr->nwords - 1] != w) {
        if (grow32(&pr->words, &pr->capwords, pr->nwords + 1, sizeof *pr->words)) return -1;
        pr->words[pr->nwords++] = w;
    }
    if (step >= 0 && pr->stamp != step) {
        pr->stamp = step;
        if (grow32(&tr->touched, &tr->captouched, tr->ntouched + 1, sizeof *tr->touched)) return -1;
        tr->touched[tr->ntouched++] = p;
    }
    return 0;
}

/* Replaces every (a, b) in word w by c, left to right without overlap, keeping the pair
 * counts exact (the neighbours' pairs change too). */
static int word_merge(trainer_t *tr, int32_t w, int32_t a, int32_t b, int32_t c, int32_t step) {
    int32_t *s = tr->sym + tr->soff[w];
    int64_t n = tr->slen[w], f = tr->wfreq[w], o = 0;
    for (int64_t r = 0; r < n;) {
        if (r + 1 < n && s[r] == a && s[r + 1] == b) {
            if (pair_delta(tr, a, b, -f, w, step)) return -1;
            if (o > 0 && (pair_delta(tr, s[o - 1], a, -f, w, step) ||
                          pair_delta(tr, s[o - 1], c, f, w, step)))
                return -1;
            if (r + 2 < n && (pair_delta(tr, b, s[r + 2], -f, w, step) ||
                              pair_delta(tr, c, s[r + 2], f, w, step)))
                return -1;
            s[o++] = c;
            r += 2;
        } else {
            s[o++] = s[r++];
        }
    }
    tr->slen[w] = (int32_t)o;
    return 0;
}

/* Byte tokens in GPT-2's order, each word as byte symbols, the initial pair counts. */
static int trainer_setup(trainer_t *tr, int32_t vocab_size, err_t *err) {
    uint16_t cp_of[256];
    int16_t byte_of[ALPHABET_CP_MAX];
    uint8_t order[256];
    alphabet(cp_of, byte_of, order);
    int32_t byte_id[256];
    tr->tmask = table_size(vocab_size) - 1;
    tr->ttable = table_new(tr->tmask + 1);
    tr->toff = malloc((size_t)(vocab_size + 1) * sizeof *tr->toff);
    tr->captok = vocab_size;
    tr->merges = NULL;
    tr->sym = malloc((size_t)(tr->nwbytes + 1) * sizeof *tr->sym);
    tr->soff = malloc((size_t)(tr->nwords + 1) * sizeof *tr->soff);
    tr->slen = malloc((size_t)(tr->nwords + 1) * sizeof *tr->slen);
    tr->seen = malloc((size_t)(tr->nwords + 1) * sizeof *tr->seen);
    if (!tr->ttable || !tr->toff || !tr->sym || !tr->soff || !tr->slen || !tr->seen ||
        grow(&tr->tbytes, &tr->captbytes, 256, 1) || pairs_rehash(tr))
        return err_setf(err, "out of memory");
    tr->toff[0] = 0;
    for (int i = 0; i < 256; i++) {
        uint64_t slot;
        tr->tbytes[i] = (char)order[i];
        tr->toff[i + 1] = i + 1;
        token_find(tr, (const char *)&order[i], 1, &slot);
        tr->ttable[slot] = i;
        byte_id[order[i]] = i;
    }
    tr->ntok = 256;
    tr->ntbytes = 256;
    for (int32_t w = 0; w < tr->nwords; w++) {
        int64_t n = tr->woff[w + 1] - tr->woff[w];
        const uint8_t *p = (const uint8_t *)tr->wbytes + tr->woff[w];
        tr->soff[w] = tr->woff[w];
        tr->slen[w] = (int32_t)n;
        tr->seen[w] = -1;
        for (int64_t i = 0; i < n; i++) tr->sym[tr->soff[w] + i] = byte_id[p[i]];
        for (int64_t i = 0; i + 1 < n; i++)
            if (pair_delta(tr, byte_id[p[i]], byte_id[p[i + 1]], tr->wfreq[w], w, -1))
                return err_setf(err, "out of memory");
    }
    for (int32_t p = 0; p < tr->npairs; p++)
        if (theap_push(tr, tr->pairs[p].count, p)) return err_setf(err, "out of memory");
    return 0;
}

/* The next pair to merge (count ≥ 2, the highest, ties by ids), or -1 when none is left. */
static int32_t best_pair(trainer_t *tr, err_t *err) {
    while (tr->nheap > 0) {
        theap_t e = theap_pop(tr);
        int64_t now = tr->pairs[e.pair].count;
        if (now < 2) continue;
        if (e.count == now) return e.pair;
        if (theap_push(tr, now, e.pair)) return err_setf(err, "out of memory");
    }
    return -1;
}

static int merge_step(trainer_t *tr, int32_t p, int32_t step, err_t *err) {
    int32_t a = tr->pairs[p].a, b = tr->pairs[p].b;
    int32_t c = token_merge(tr, a, b, err);
    if (c < 0) return -1;
    if (!tr->pairs[p].merged) {
        if (grow32(&tr->merges, &tr->capmerges, 3 * (int64_t)tr->nmerges + 3, sizeof *tr->merges))
            return err_setf(err, "out of memory");
        tr->merges[3 * tr->nmerges] = a;
        tr->merges[3 * tr->nmerges + 1] = b;
        tr->merges[3 * tr->nmerges + 2] = c;
        tr->nmerges++;
        tr->pairs[p].merged = true;
    }
    /* Take the index: (a, b) only loses while merging, so nothing appends to it. */
    int32_t *words = tr->pairs[p].words, nwords = tr->pairs[p].nwords;
    tr->pairs[p].words = NULL;
    tr->pairs[p].nwords = tr->pairs[p].capwords = 0;
    tr->ntouched = 0;
    int rc = 0;
    for (int32_t i = 0; i < nwords && !rc; i++) {
        int32_t w = words[i];
        if (tr->seen[w] == step) continue;
        tr->seen[w] = step;
        rc = word_merge(tr, w, a, b, c, step);
    }
    free(words);
    for (int32_t i = 0; i < tr->ntouched && !rc; i++)
        rc = theap_push(tr, tr->pairs[tr->touched[i]].count, tr->touched[i]);
    return rc ? err_setf(err, "out of memory") : 0;
}

static void trainer_release(trainer_t *tr) {
    for (int32_t p = 0; p < tr->npairs; p++) free(tr->pairs[p].words);
    free(tr->pairs);
    free(tr->ptable);
    free(tr->heap);
    free(tr->touched);
    free(tr->merges);
    free(tr->ttable);
    free(tr->toff);
    free(tr->tbytes);
    free(tr->sym);
    free(tr->soff);
    free(tr->slen);
    free(tr->seen);
    free(tr->wtable);
    free(tr->wfreq);
    free(tr->woff);
    free(tr->wbytes);
}

/* A tok_t from the trainer's tokens and merges, "<|endoftext|>" appended as the last id. */
static tok_t *trainer_result(trainer_t *tr, err_t *err) {
    const int64_t eot_len = (int64_t)strlen(TOK_EOT_TEXT);
    int32_t n = tr->ntok + 1;
    char *bytes = malloc((size_t)(tr->ntbytes + eot_len));
    int64_t *offset = malloc((size_t)(n + 1) * sizeof *offset);
    if (!bytes || !offset) {
        free(bytes);
        free(offset);
        err_setf(err, "out of memory");
        return NULL;
    }
    memcpy(bytes, tr->tbytes, (size_t)tr->ntbytes);
    memcpy(bytes + tr->ntbytes, TOK_EOT_TEXT, (size_t)eot_len);
    memcpy(offset, tr->toff, (size_t)(tr->ntok + 1) * sizeof *offset);
    offset[n] = tr->ntbytes + eot_len;
    tok_t *t = tok_new(bytes, offset, n, tr->nmerges, "tok_train", err);
    for (int32_t r = 0; t && r < tr->nmerges; r++)
        merge_add(t, tr->merges[3 * r], tr->merges[3 * r + 1], tr->merges[3 * r + 2]);
    return t;
}

tok_t *tok_train(const char *text, int64_t len, int32_t vocab_size, err_t *err) {
    if (vocab_size < 257 || vocab_size > TOK_ID_MAX) {
        err_setf(err, "vocabulary size %d: must be at least 257 (256 bytes + end-of-text)",
                 vocab_size);
        return NULL;
    }
    trainer_t tr = {0};
    tok_t *t = NULL;
    if (count_words(&tr, text, len, err) || trainer_setup(&tr, vocab_size, err)) goto done;
    for (int32_t step = 0; tr.ntok < vocab_size - 1; step++) {
        int32_t p = best_pair(&tr, err);
        if (p < 0) {
            if (err_isset(err)) goto done;
            break;
        }
        if (merge_step(&tr, p, step, err)) goto done;
    }
    t = trainer_result(&tr, err);
done:
    trainer_release(&tr);
    return t;
}
