/* pipelines/world_impl.h: what the parts of the embedded world share. Private: only
 * pipelines/world*.c include it; programs include world.h, which stays the whole API.
 *
 * Design. The world has to be learnable by a 1-10M-parameter GPT-2 with a 1-4k BPE
 * vocabulary in minutes, and it has to leave room for RLHF. So:
 *   - every prompt is one short sentence from a fixed set of patterns (the templates table in
 *     world_task.c), and the same table both writes prompts and parses them back for the
 *     judge, so the judge can never disagree with the generator about what a prompt asks;
 *   - the vocabulary is small and closed (40 names, 8 categories of 10 members, 32 antonym
 *     pairs, 48 words to reverse, numbers below 100), and the corpus states the facts the
 *     tasks need (sums, orderings, reversals, category members, opposites, greetings) in
 *     narrative sentences, never as question + answer, so a base model knows the facts but
 *     does not follow instructions;
 *   - the demonstrator is noisy (30% flawed: wrong, off-topic, rambling, rude) and polite only
 *     a third of the time, so SFT imitates the flaws and a reward model has something to learn
 *     (correctness, brevity, politeness) that PPO can then push further.
 *
 * The parts, in the order a reader needs them:
 *   world_task.c    the vocabulary, the prompt templates (sample, render, parse)
 *   world_judge.c   the gold judge and the simulated labeler (what reward and ppo link)
 *   world_demo.c    the noisy demonstrator
 *   world_corpus.c  the pretraining corpus
 *   world.c         the writer: sizes, splits, the six files
 * Shared symbols carry the world_ prefix; one-line helpers are static inline here. */
#ifndef RLHF_WORLD_IMPL_H
#define RLHF_WORLD_IMPL_H
#include "world.h"
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define COUNT(a)       ((int)(sizeof(a) / sizeof((a)[0])))
#define PICK(rng, arr) ((arr)[pick((rng), COUNT(arr))])

#define WORD_MAX 32 /* bytes of one word (with the NUL) the world handles */

/* ---- the vocabulary (world_task.c) ---------------------------------------------------------
 * Members, names, antonyms and reversible words do not overlap, so a word in a response means
 * one thing to the judge. The sizes are checked where the tables are defined. */

#define NMEMBERS        10 /* members of each category */
#define ADJECTIVE_PAIRS 19 /* the first ADJECTIVE_PAIRS antonym pairs are adjectives */

typedef struct {
    const char *plural;            /* as a prompt names it: "fruits" */
    const char *singular;          /* "fruit" */
    bool mass;                     /* members take no article: "red", "tea" */
    const char *scene;             /* corpus: what a person does with a few members ({L} = list) */
    const char *members[NMEMBERS]; /* singular, lower case */
} category_t;

extern const char *const world_names[40];        /* "Anna", "Ben", ... as written */
extern const char *const world_things[15];       /* thanked for ("Thank Tom for the book.") */
extern const category_t world_categories[8];     /* fruits, animals, colours, ... */
extern const char *const world_antonyms[32][2];  /* {"hot", "cold"}, ... */
extern const char *const world_rev_words[48];    /* words the reverse task uses: 3-6 letters */
extern const char *const world_number_words[10]; /* "zero" ... "nine" */

/* ---- tasks (world_task.c) ------------------------------------------------------------------ */

enum { OP_PLUS, OP_MINUS, OP_TIMES };
enum { OP_LARGER, OP_SMALLER };
enum { OP_HELLO, OP_THANK };

/* One prompt of the world, as its template's slots say. */
typedef struct {
    int family, op, tmpl; /* tmpl: index in the templates table */
    int64_t a, b;         /* arith operands; the two numbers compared */
    int n;                /* list: how many members */
    int cat;              /* list: index in world_categories */
    char word[WORD_MAX];  /* reverse, opposite: the word, lower case */
    char name[WORD_MAX];  /* greet: the person, as written */
    char thing[WORD_MAX]; /* greet (thank): the thing, lower case */
} task_t;

/* Parses a prompt into a task; false when it is not one of the world's prompts. */
bool world_task_parse(const char *prompt, task_t *t);

/* Draws a task of `family` (0 <= family < WORLD_NFAMILIES): template, then its values. */
void world_task_sample(rng_t *rng, int family, task_t *t);

/* The antonym of a lower-case word, or NULL when the word is not in the table. */
const char *world_antonym_of(const char *w);

/* src backwards into dst (cut to cap - 1 bytes). */
void world_reverse_word(char *dst, const char *src, size_t cap);

/* The answer of an arithmetic task. */
static inline int64_t arith_result(const task_t *t) {
    return t->op == OP_PLUS ? t->a + t->b : t->op == OP_MINUS ? t->a - t->b : t->a * t->b;
}

/* ---- characters, hashing, drawing ---------------------------------------------------------- */

static inline char lower(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}
static inline char upper(char c) {
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}
static inline bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static inline bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
static inline bool is_alnum(char c) {
    return is_alpha(c) || is_digit(c);
}
static inline bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline void str_lower(char *dst, const char *src, size_t cap) {
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++) dst[i] = lower(src[i]);
    dst[i] = '\0';
}

static inline uint64_t mix64(uint64_t z) { /* splitmix64's finaliser */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* FNV-1a, finished with a mixer so every bit of the result is usable. */
static inline uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return mix64(h);
}

/* Uniform in [0, n), n > 0. */
static inline int pick(rng_t *rng, int n) {
    return (int)rng_below(rng, (uint64_t)n);
}

/* ---- text building: a bounded buffer and {x} substitution from a table of slot values ----- */

typedef struct {
    char *s;
    size_t len, cap; /* cap > 0; s[len] is always '\0' */
    bool overflow;   /* something did not fit (the text is cut) */
} sbuf_t;

typedef struct {
    const char *v[128]; /* value of slot {c} is v[c]; NULL = unset */
} vars_t;

static inline void sb_init(sbuf_t *b, char *mem, size_t cap) {
    b->s = mem;
    b->len = 0;
    b->cap = cap;
    b->overflow = false;
    mem[0] = '\0';
}

static inline void sb_add(sbuf_t *b, const char *text) {
    size_t n = strlen(text);
    if (b->len + n + 1 > b->cap) {
        n = b->cap - b->len - 1;
        b->overflow = true;
    }
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

/* Appends tmpl with each {x} replaced by vars->v['x'] (which must be set). */
static inline void sb_fill(sbuf_t *b, const char *tmpl, const vars_t *vars) {
    char lit[2] = {0, 0};
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '{' && p[1] && p[2] == '}') {
            const char *val = vars->v[(uint8_t)p[1] & 127];
            assert(val);
            sb_add(b, val);
            p += 2;
            continue;
        }
        lit[0] = *p;
        sb_add(b, lit);
    }
}

/* sb_fill, then the sentence's first letter upper-cased. */
static inline void fill_sentence(sbuf_t *b, const char *tmpl, const vars_t *v) {
    size_t at = b->len;
    sb_fill(b, tmpl, v);
    if (at < b->len) b->s[at] = upper(b->s[at]);
}

/* Appends the prompt of t. */
void world_task_render(const task_t *t, sbuf_t *b);

/* ---- the demonstrator (world_demo.c), also the corpus's source of lists and names ---------- */

/* Appends the demonstrator's response of the given kind to t. */
void world_demo_respond(rng_t *rng, const task_t *t, world_kind_t kind, sbuf_t *b);

/* n distinct members of t's category into out (t->n <= NMEMBERS); a wrong list (!right) swaps
 * in members of another category: one of them (60%) or all. */
void world_pick_members(rng_t *rng, const task_t *t, bool right, const char **out);

/* "apple, pear and plum", or with articles "an apple, a pear and a plum". */
void world_join_members(const char *const *ms, int n, bool articles, sbuf_t *b);

/* A name of world_names other than `name`. */
const char *world_other_name(rng_t *rng, const char *name);

/* ---- the corpus (world_corpus.c) ----------------------------------------------------------- */

/* Appends one paragraph (3-6 narrative sentences about two people). */
void world_corpus_paragraph(rng_t *rng, sbuf_t *b);
#endif /* RLHF_WORLD_IMPL_H */
