/* pipelines/world.c: the embedded default world (see world.h for the contract).
 *
 * Design. The world has to be learnable by a 1-10M-parameter GPT-2 with a 1-4k BPE
 * vocabulary in minutes, and it has to leave room for RLHF. So:
 *   - every prompt is one short sentence from a fixed set of patterns (the `templates` table),
 *     and the same table both writes prompts and parses them back for the judge, so the judge
 *     can never disagree with the generator about what a prompt asks;
 *   - the vocabulary is small and closed (40 names, 8 categories of 10 members, 32 antonym
 *     pairs, 48 words to reverse, numbers below 100), and the corpus states the facts the
 *     tasks need (sums, orderings, reversals, category members, opposites, greetings) in
 *     narrative sentences, never as question + answer, so a base model knows the facts but
 *     does not follow instructions;
 *   - the demonstrator is noisy (30% flawed: wrong, off-topic, rambling, rude) and polite only
 *     a third of the time, so SFT imitates the flaws and a reward model has something to learn
 *     (correctness, brevity, politeness) that PPO can then push further.
 * The judge reads words as lower-cased runs of ASCII letters/digits; it keeps at most
 * JUDGE_WORDS of them (enough: the length penalty is already at its cap long before). */
#include "world.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ------------------------------------------------------------------------------------------ */
/* The world's vocabulary. Members, names, antonyms and reversible words do not overlap, so a
 * word in a response means one thing to the judge. */

static const char *const names[] = {
    "Anna", "Ben",  "Maria", "Tom",  "Lucy", "Sam",  "Nora", "Leo",  "Emma", "Jack",
    "Mia",  "Omar", "Ravi",  "Yuki", "Chen", "Ella", "Max",  "Ivy",  "Zoe",  "Finn",
    "Lena", "Hugo", "Rosa",  "Adam", "Nina", "Theo", "Sara", "Paul", "Kim",  "Dan",
    "Ada",  "Eva",  "Ian",   "Joe",  "Kate", "Luke", "Mila", "Ned",  "Owen", "Ruth"};

/* Things a person is thanked for ("Thank Tom for the book."). */
static const char *const things[] = {"book", "gift",   "flowers", "cake",     "letter",
                                     "card", "help",   "advice",  "lunch",    "map",
                                     "song", "ticket", "scarf",   "umbrella", "invitation"};

typedef struct {
    const char *plural;      /* as a prompt names it: "fruits" */
    const char *singular;    /* "fruit" */
    bool mass;               /* members take no article: "red", "tea" */
    const char *scene;       /* corpus: what a person does with a few members ({L} = list) */
    const char *members[10]; /* singular, lower case */
} category_t;

static const category_t categories[] = {
    {"fruits",
     "fruit",
     false,
     "bought {L} at the market",
     {"apple", "pear", "plum", "banana", "cherry", "grape", "lemon", "mango", "peach", "melon"}},
    {"animals",
     "animal",
     false,
     "saw {L} on the farm",
     {"dog", "cat", "horse", "cow", "sheep", "goat", "pig", "rabbit", "fox", "lion"}},
    {"colours",
     "colour",
     true,
     "painted the fence {L}",
     {"red", "blue", "green", "yellow", "purple", "pink", "brown", "grey", "violet", "silver"}},
    {"tools",
     "tool",
     false,
     "keeps {L} in the shed",
     {"hammer", "drill", "wrench", "spade", "rake", "chisel", "axe", "mallet", "shovel", "trowel"}},
    {"vegetables",
     "vegetable",
     false,
     "grew {L} in the garden",
     {"carrot", "potato", "onion", "cabbage", "leek", "bean", "pepper", "turnip", "lettuce",
      "radish"}},
    {"birds",
     "bird",
     false,
     "watched {L} in the park",
     {"robin", "crow", "owl", "eagle", "swan", "duck", "sparrow", "parrot", "hawk", "pigeon"}},
    {"flowers",
     "flower",
     false,
     "picked {L} for the table",
     {"rose", "tulip", "daisy", "lily", "poppy", "orchid", "iris", "lotus", "daffodil",
      "sunflower"}},
    {"drinks",
     "drink",
     true,
     "poured {L} for the guests",
     {"water", "milk", "juice", "coffee", "tea", "cocoa", "lemonade", "soda", "cider", "smoothie"}},
};
#define NMEMBERS 10

/* The first ADJECTIVE_PAIRS are adjectives ("The soup was not hot; it was cold."). */
static const char *const antonyms[][2] = {
    {"hot", "cold"},    {"big", "small"},   {"fast", "slow"},  {"happy", "sad"},
    {"light", "dark"},  {"young", "old"},   {"early", "late"}, {"wet", "dry"},
    {"full", "empty"},  {"open", "closed"}, {"hard", "soft"},  {"loud", "quiet"},
    {"high", "low"},    {"rich", "poor"},   {"long", "short"}, {"thick", "thin"},
    {"strong", "weak"}, {"clean", "dirty"}, {"sweet", "sour"}, {"day", "night"},
    {"win", "lose"},    {"push", "pull"},   {"true", "false"}, {"left", "right"},
    {"first", "last"},  {"near", "far"},    {"buy", "sell"},   {"before", "after"},
    {"top", "bottom"},  {"north", "south"}, {"east", "west"},  {"summer", "winter"}};
#define ADJECTIVE_PAIRS 19

/* Words the reverse task uses: 3-6 letters, no palindromes. */
static const char *const rev_words[] = {
    "lamp",   "desk",   "frog",   "star",   "rain",   "moon",   "ship",   "bread",
    "chair",  "table",  "river",  "stone",  "cloud",  "paper",  "pencil", "garden",
    "window", "bottle", "candle", "basket", "button", "castle", "forest", "island",
    "jacket", "kettle", "ladder", "mirror", "needle", "pocket", "rocket", "saddle",
    "tunnel", "wallet", "planet", "spoon",  "plate",  "brush",  "clock",  "glove",
    "honey",  "music",  "ocean",  "piano",  "queen",  "robot",  "snake",  "tiger"};

static const char *const number_words[] = {"zero", "one", "two",   "three", "four",
                                           "five", "six", "seven", "eight", "nine"};

/* The judge's phrase lists (lower case, words separated by one space). */
static const char *const rude_phrases[] = {"stupid",
                                           "idiot",
                                           "dumb",
                                           "fool",
                                           "shut up",
                                           "go away",
                                           "whatever",
                                           "obviously",
                                           "ugh",
                                           "useless",
                                           "annoying",
                                           "lazy",
                                           "figure it out yourself",
                                           "do not bother me"};
static const char *const polite_phrases[] = {
    "please",    "thank you",   "thanks",     "happy to help",   "glad to help",
    "of course", "sure",        "certainly",  "hope this helps", "nice to meet you",
    "welcome",   "my pleasure", "kind of you"};
static const char *const greet_phrases[] = {
    "hello", "hi", "hey", "good morning", "good afternoon", "good evening", "welcome", "greetings"};

/* ------------------------------------------------------------------------------------------ */
/* Prompts: one table writes them and parses them. Slots: {a} {b} integers, {n} a count
 * ("three"), {c} a category ("fruits"), {w} a word, {p} a name, {t} a thing. */

enum { OP_PLUS, OP_MINUS, OP_TIMES };
enum { OP_LARGER, OP_SMALLER };
enum { OP_HELLO, OP_THANK };

static const struct {
    int family, op;
    const char *pattern;
} templates[] = {
    {WORLD_ARITH, OP_PLUS, "What is {a} plus {b}?"},
    {WORLD_ARITH, OP_PLUS, "Add {a} and {b}."},
    {WORLD_ARITH, OP_PLUS, "What do you get when you add {a} and {b}?"},
    {WORLD_ARITH, OP_MINUS, "What is {a} minus {b}?"},
    {WORLD_ARITH, OP_MINUS, "Subtract {b} from {a}."},
    {WORLD_ARITH, OP_TIMES, "What is {a} times {b}?"},
    {WORLD_ARITH, OP_TIMES, "Multiply {a} by {b}."},
    {WORLD_COMPARE, OP_LARGER, "Which is larger, {a} or {b}?"},
    {WORLD_COMPARE, OP_LARGER, "Which number is bigger: {a} or {b}?"},
    {WORLD_COMPARE, OP_SMALLER, "Which is smaller, {a} or {b}?"},
    {WORLD_COMPARE, OP_SMALLER, "Which number is less: {a} or {b}?"},
    {WORLD_REVERSE, 0, "Reverse the word {w}."},
    {WORLD_REVERSE, 0, "Write {w} backwards."},
    {WORLD_REVERSE, 0, "Spell the word {w} backwards."},
    {WORLD_REVERSE, 0, "What is {w} spelled backwards?"},
    {WORLD_LIST, 0, "Name {n} {c}."},
    {WORLD_LIST, 0, "List {n} {c}."},
    {WORLD_LIST, 0, "Give me {n} {c}."},
    {WORLD_LIST, 0, "Can you name {n} {c}?"},
    {WORLD_LIST, 0, "Please name {n} {c}."},
    {WORLD_GREET, OP_HELLO, "Say hello to {p}."},
    {WORLD_GREET, OP_HELLO, "Greet {p}."},
    {WORLD_GREET, OP_HELLO, "Write a greeting for {p}."},
    {WORLD_GREET, OP_HELLO, "Please welcome {p}."},
    {WORLD_GREET, OP_THANK, "Thank {p} for the {t}."},
    {WORLD_GREET, OP_THANK, "Say thank you to {p} for the {t}."},
    {WORLD_GREET, OP_THANK, "Write a thank-you note to {p} for the {t}."},
    {WORLD_OPPOSITE, 0, "What is the opposite of {w}?"},
    {WORLD_OPPOSITE, 0, "Give the opposite of {w}."},
    {WORLD_OPPOSITE, 0, "Which word means the opposite of {w}?"},
};

#define WORD_MAX 32 /* bytes of one word (with the NUL) the world handles */

typedef struct {
    int family, op, tmpl; /* tmpl: index in templates[] */
    int64_t a, b;         /* arith operands; the two numbers compared */
    int n;                /* list: how many members */
    int cat;              /* list: index in categories[] */
    char word[WORD_MAX];  /* reverse, opposite: the word, lower case */
    char name[WORD_MAX];  /* greet: the person, as written */
    char thing[WORD_MAX]; /* greet (thank): the thing, lower case */
} task_t;

static char lower(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}
static char upper(char c) {
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}
static bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
static bool is_alnum(char c) {
    return is_alpha(c) || is_digit(c);
}
static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* FNV-1a, finished with a mixer so every bit of the result is usable. */
static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return mix64(h);
}

/* Slot values while a pattern is matched, before they are checked. */
typedef struct {
    int64_t num[2];         /* {a}, {b} */
    char text[5][WORD_MAX]; /* {n} {c} {w} {p} {t}, in the order of SLOT_TEXT */
} slots_t;
#define SLOT_TEXT "ncwpt"

/* Reads one slot of kind k at s; returns the position after it, or NULL. */
static const char *read_slot(char k, const char *s, slots_t *v) {
    if (k == 'a' || k == 'b') {
        bool neg = *s == '-';
        const char *p = s + neg;
        int64_t x = 0;
        int digits = 0;
        for (; is_digit(*p) && digits < 10; p++, digits++) x = x * 10 + (*p - '0');
        if (!digits || is_digit(*p)) return NULL;
        v->num[k - 'a'] = neg ? -x : x;
        return p;
    }
    const char *slot = strchr(SLOT_TEXT, k);
    assert(slot && k);
    char *dst = v->text[slot - SLOT_TEXT];
    int len = 0;
    for (; is_alpha(*s) || (k == 'n' && is_digit(*s)) || (k == 't' && *s == '-'); s++) {
        if (len == WORD_MAX - 1) return NULL;
        dst[len++] = *s;
    }
    dst[len] = '\0';
    return len ? s : NULL;
}

/* Matches a normalised prompt against a pattern: letters compare without case, and the final
 * . ? or ! of the pattern may be any of the three or missing. */
static bool match(const char *pat, const char *s, slots_t *v) {
    while (*pat) {
        if (pat[0] == '{') {
            s = read_slot(pat[1], s, v);
            if (!s) return false;
            pat += 3;
        } else if (!pat[1] && strchr(".?!", *pat)) {
            if (*s && strchr(".?!", *s)) s++;
            pat++;
        } else {
            if (!*s || lower(*pat) != lower(*s)) return false;
            pat++;
            s++;
        }
    }
    return *s == '\0';
}

static void str_lower(char *dst, const char *src, size_t cap) {
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++) dst[i] = lower(src[i]);
    dst[i] = '\0';
}

static int count_value(const char *w) {
    if (is_digit(w[0])) return w[1] ? -1 : w[0] - '0';
    char lw[WORD_MAX];
    str_lower(lw, w, sizeof lw);
    for (int i = 0; i < COUNT(number_words); i++)
        if (!strcmp(lw, number_words[i])) return i;
    return -1;
}

static int category_index(const char *w) {
    char lw[WORD_MAX];
    str_lower(lw, w, sizeof lw);
    if (!strcmp(lw, "colors")) return 2; /* American spelling of "colours" */
    for (int i = 0; i < COUNT(categories); i++)
        if (!strcmp(lw, categories[i].plural)) return i;
    return -1;
}

/* The antonym of a lower-case word, or NULL when the word is not in the table. */
static const char *antonym_of(const char *w) {
    for (int i = 0; i < COUNT(antonyms); i++) {
        if (!strcmp(w, antonyms[i][0])) return antonyms[i][1];
        if (!strcmp(w, antonyms[i][1])) return antonyms[i][0];
    }
    return NULL;
}

/* Fills t from the slots of template i; false when a value is out of the world. */
static bool task_from_slots(int i, const slots_t *v, task_t *t) {
    memset(t, 0, sizeof *t);
    t->family = templates[i].family;
    t->op = templates[i].op;
    t->tmpl = i;
    t->a = v->num[0];
    t->b = v->num[1];
    switch (t->family) {
    case WORLD_ARITH:
        return true;
    case WORLD_COMPARE:
        return t->a != t->b;
    case WORLD_REVERSE:
        str_lower(t->word, v->text[2], sizeof t->word);
        return strlen(t->word) >= 2;
    case WORLD_OPPOSITE:
        str_lower(t->word, v->text[2], sizeof t->word);
        return antonym_of(t->word) != NULL;
    case WORLD_LIST:
        t->n = count_value(v->text[0]);
        t->cat = category_index(v->text[1]);
        return t->n >= 1 && t->n <= 9 && t->cat >= 0;
    case WORLD_GREET:
        snprintf(t->name, sizeof t->name, "%s", v->text[3]);
        str_lower(t->thing, v->text[4], sizeof t->thing);
        return true;
    }
    return false;
}

/* Parses a prompt into a task; false when it is not one of the world's prompts. */
static bool task_parse(const char *prompt, task_t *t) {
    char norm[WORLD_TEXT_MAX];
    size_t len = 0;
    const char *s = prompt;
    while (is_space(*s)) s++;
    for (; *s; s++) {
        if (is_space(*s) && (is_space(s[1]) || !s[1])) continue; /* collapse, trim the end */
        if (len + 1 >= sizeof norm) return false;
        norm[len++] = is_space(*s) ? ' ' : *s;
    }
    norm[len] = '\0';
    for (int i = 0; i < COUNT(templates); i++) {
        slots_t v;
        memset(&v, 0, sizeof v);
        if (match(templates[i].pattern, norm, &v) && task_from_slots(i, &v, t)) return true;
    }
    return false;
}

int world_task_family(const char *prompt) {
    task_t t;
    return prompt && task_parse(prompt, &t) ? t.family : -1;
}

const char *world_family_name(int family) {
    static const char *const fam[WORLD_NFAMILIES] = {"arith", "compare", "reverse",
                                                     "list",  "greet",   "opposite"};
    return family >= 0 && family < WORLD_NFAMILIES ? fam[family] : "unknown";
}

const char *world_task_name(const char *prompt) {
    return world_family_name(world_task_family(prompt));
}

/* ------------------------------------------------------------------------------------------ */
/* Text building: a bounded buffer and {x} substitution from a table of slot values. */

typedef struct {
    char *s;
    size_t len, cap; /* cap > 0; s[len] is always '\0' */
    bool overflow;   /* something did not fit (the text is cut) */
} sbuf_t;

static void sb_init(sbuf_t *b, char *mem, size_t cap) {
    b->s = mem;
    b->len = 0;
    b->cap = cap;
    b->overflow = false;
    mem[0] = '\0';
}

static void sb_add(sbuf_t *b, const char *text) {
    size_t n = strlen(text);
    if (b->len + n + 1 > b->cap) {
        n = b->cap - b->len - 1;
        b->overflow = true;
    }
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

/* Upper-cases the letter at offset `at` (a sentence start). */
static void sb_cap(sbuf_t *b, size_t at) {
    if (at < b->len) b->s[at] = upper(b->s[at]);
}

typedef struct {
    const char *v[128]; /* value of slot {c} is v[c]; NULL = unset */
} vars_t;

/* Appends tmpl with each {x} replaced by vars->v['x'] (which must be set). */
static void sb_fill(sbuf_t *b, const char *tmpl, const vars_t *vars) {
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

static void render_prompt(const task_t *t, sbuf_t *b) {
    char a[24], bb[24];
    snprintf(a, sizeof a, "%lld", (long long)t->a);
    snprintf(bb, sizeof bb, "%lld", (long long)t->b);
    vars_t v = {{0}};
    v.v['a'] = a;
    v.v['b'] = bb;
    v.v['n'] = t->n >= 0 && t->n < COUNT(number_words) ? number_words[t->n] : "";
    v.v['c'] = categories[t->cat].plural;
    v.v['w'] = t->word;
    v.v['p'] = t->name;
    v.v['t'] = t->thing;
    sb_fill(b, templates[t->tmpl].pattern, &v);
}

static int pick(rng_t *rng, int n) {
    return (int)rng_below(rng, (uint64_t)n);
}

static int pick_template(rng_t *rng, int family) {
    int n = 0, first = -1;
    for (int i = 0; i < COUNT(templates); i++)
        if (templates[i].family == family) {
            if (first < 0) first = i;
            n++;
        }
    return first + pick(rng, n); /* a family's templates are adjacent in the table */
}

static void sample_task(rng_t *rng, int family, task_t *t) {
    memset(t, 0, sizeof *t);
    t->family = family;
    t->tmpl = pick_template(rng, family);
    t->op = templates[t->tmpl].op;
    switch (family) {
    case WORLD_ARITH:
        if (t->op == OP_PLUS) { /* operands 1..20, times 2..9: small tables a small model learns */
            t->a = 1 + pick(rng, 20);
            t->b = 1 + pick(rng, 20);
        } else if (t->op == OP_MINUS) {
            t->a = 2 + pick(rng, 19);
            t->b = 1 + pick(rng, (int)t->a);
        } else {
            t->a = 2 + pick(rng, 8);
            t->b = 2 + pick(rng, 8);
        }
        break;
    case WORLD_COMPARE:
        t->a = pick(rng, 100);
        do t->b = pick(rng, 100);
        while (t->b == t->a);
        break;
    case WORLD_REVERSE:
        snprintf(t->word, sizeof t->word, "%s", rev_words[pick(rng, COUNT(rev_words))]);
        break;
    case WORLD_LIST:
        t->n = 2 + pick(rng, 3);
        t->cat = pick(rng, COUNT(categories));
        break;
    case WORLD_GREET:
        snprintf(t->name, sizeof t->name, "%s", names[pick(rng, COUNT(names))]);
        snprintf(t->thing, sizeof t->thing, "%s", things[pick(rng, COUNT(things))]);
        break;
    case WORLD_OPPOSITE:
        snprintf(t->word, sizeof t->word, "%s", antonyms[pick(rng, COUNT(antonyms))][pick(rng, 2)]);
        break;
    }
}

int world_sample_prompt(rng_t *rng, int family, char *buf, size_t cap) {
    assert(cap >= WORLD_TEXT_MAX);
    if (family < 0 || family >= WORLD_NFAMILIES) family = pick(rng, WORLD_NFAMILIES);
    task_t t;
    sample_task(rng, family, &t);
    sbuf_t b;
    sb_init(&b, buf, cap);
    render_prompt(&t, &b);
    return family;
}

/* ------------------------------------------------------------------------------------------ */
/* The judge. */

#define JUDGE_WORDS 256 /* words of a response the judge reads (it counts them all) */

typedef struct {
    int n;                         /* words kept */
    int64_t total;                 /* words in the text */
    char w[JUDGE_WORDS][WORD_MAX]; /* lower case, cut at WORD_MAX - 1 bytes */
    bool is_num[JUDGE_WORDS];      /* the word is an integer (digits, maybe a leading '-') */
    int64_t num[JUDGE_WORDS];      /* its value when is_num */
} words_t;

static void words_split(const char *text, words_t *ws) {
    ws->n = 0;
    ws->total = 0;
    for (const char *s = text; *s;) {
        if (!is_alnum(*s)) {
            s++;
            continue;
        }
        const char *start = s;
        while (is_alnum(*s)) s++;
        ws->total++;
        if (ws->n == JUDGE_WORDS) continue;
        size_t len = (size_t)(s - start), keep = len < WORD_MAX ? len : WORD_MAX - 1;
        char *w = ws->w[ws->n];
        for (size_t i = 0; i < keep; i++) w[i] = lower(start[i]);
        w[keep] = '\0';
        bool digits = len <= 15;
        for (size_t i = 0; i < len && digits; i++) digits = is_digit(start[i]);
        ws->is_num[ws->n] = digits;
        if (digits) {
            int64_t x = strtoll(w, NULL, 10);
            bool neg =
                start > text && start[-1] == '-' && (start - 1 == text || !is_alnum(start[-2]));
            ws->num[ws->n] = neg ? -x : x;
        }
        ws->n++;
    }
}

static bool has_word(const words_t *ws, const char *w) {
    for (int i = 0; i < ws->n; i++)
        if (!strcmp(ws->w[i], w)) return true;
    return false;
}

/* A phrase of space-separated lower-case words, as consecutive words of ws. */
static int phrase_at(const words_t *ws, int i, const char *phrase);
static bool has_phrase(const words_t *ws, const char *phrase) {
    for (int i = 0; i < ws->n; i++)
        if (phrase_at(ws, i, phrase)) return true;
    return false;
}

/* The phrase starts at word i of ws; returns its length in words, or 0. */
static int phrase_at(const words_t *ws, int i, const char *phrase) {
    const char *p = phrase;
    for (int j = i; j < ws->n; j++) {
        size_t len = strcspn(p, " ");
        if (strlen(ws->w[j]) != len || strncmp(ws->w[j], p, len)) return 0;
        p += len;
        if (!*p) return j - i + 1;
        p++;
    }
    return 0;
}

/* w occurs in ws outside every occurrence of the listed phrases: "happy" in "happy to help"
 * is politeness, not an answer to "the opposite of sad". */
static bool has_word_outside(const words_t *ws, const char *w, const char *const *list, int n) {
    for (int i = 0; i < ws->n; i++) {
        if (strcmp(ws->w[i], w)) continue;
        bool covered = false;
        for (int k = 0; k < n && !covered; k++)
            for (int start = i; start >= 0 && start > i - 4 && !covered; start--)
                covered = phrase_at(ws, start, list[k]) > i - start;
        if (!covered) return true;
    }
    return false;
}

static int count_phrases(const words_t *ws, const char *const *list, int n) {
    int hits = 0;
    for (int i = 0; i < n; i++) hits += has_phrase(ws, list[i]);
    return hits;
}

/* w is the member m, or its plural (apples, peaches, cherries). */
static bool is_form_of(const char *w, const char *m) {
    size_t lm = strlen(m), lw = strlen(w);
    if (strncmp(w, m, lm) == 0) {
        if (lw == lm) return true;
        if (lw == lm + 1 && w[lm] == 's') return true;
        if (lw == lm + 2 && !strcmp(w + lm, "es")) return true;
    }
    return lm > 1 && m[lm - 1] == 'y' && lw == lm + 2 && !strncmp(w, m, lm - 1) &&
           !strcmp(w + lm - 1, "ies");
}

static bool mentions_member(const words_t *ws, const char *m) {
    for (int i = 0; i < ws->n; i++)
        if (is_form_of(ws->w[i], m)) return true;
    return false;
}

/* The answer of an arithmetic task. */
static int64_t arith_result(const task_t *t) {
    return t->op == OP_PLUS ? t->a + t->b : t->op == OP_MINUS ? t->a - t->b : t->a * t->b;
}

/* The last integer is the answer; any integer besides the operands and the right answer
 * counts as hedging ("41 or 42"), which is wrong. On topic: any integer. */
static double judge_arith(const task_t *t, const words_t *ws, bool *on_topic) {
    int64_t r = arith_result(t), last = 0;
    bool any = false, stray = false;
    for (int i = 0; i < ws->n; i++) {
        if (!ws->is_num[i]) continue;
        any = true;
        last = ws->num[i];
        if (last != t->a && last != t->b && last != r) stray = true;
    }
    *on_topic = any;
    return any && last == r && !stray ? 1.0 : 0.0;
}

/* The first of the two numbers the response names is its answer. */
static double judge_compare(const task_t *t, const words_t *ws, bool *on_topic) {
    int64_t want = (t->a > t->b) == (t->op == OP_LARGER) ? t->a : t->b;
    for (int i = 0; i < ws->n; i++)
        if (ws->is_num[i] && (ws->num[i] == t->a || ws->num[i] == t->b)) {
            *on_topic = true;
            return ws->num[i] == want ? 1.0 : 0.0;
        }
    *on_topic = false;
    return 0.0;
}

static void reverse_word(char *dst, const char *src, size_t cap) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    for (size_t i = 0; i < n; i++) dst[i] = src[n - 1 - i];
    dst[n] = '\0';
}

/* Same letters, maybe in another order: an attempt at the reversal. */
static bool is_anagram(const char *a, const char *b) {
    int count[256] = {0};
    if (strlen(a) != strlen(b)) return false;
    for (; *a; a++, b++) {
        count[(uint8_t)*a]++;
        count[(uint8_t)*b]--;
    }
    for (int i = 0; i < 256; i++)
        if (count[i]) return false;
    return true;
}

/* On topic: "backwards"/"reversed", or any rearrangement of the word's letters. Other
 * rearrangements besides the reversal (and the word itself) are hedging: half a point each. */
static double judge_reverse(const task_t *t, const words_t *ws, bool *on_topic) {
    char rev[WORD_MAX];
    reverse_word(rev, t->word, sizeof rev);
    *on_topic = has_word(ws, "backwards") || has_word(ws, "reversed");
    int hedges = 0;
    for (int i = 0; i < ws->n; i++) {
        if (!is_anagram(ws->w[i], t->word)) continue;
        *on_topic = true;
        bool seen = false; /* count each distinct wrong candidate once */
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(ws->w[j], ws->w[i]);
        hedges += !seen && strcmp(ws->w[i], rev) && strcmp(ws->w[i], t->word);
    }
    double c = has_word(ws, rev) ? 1.0 - 0.5 * hedges : 0.0;
    return c < 0 ? 0 : c;
}

/* Distinct members of the category, up to n, minus one for each member of another category
 * and half of one for each member past n, over n. */
static double judge_list(const task_t *t, const words_t *ws, bool *on_topic) {
    int right = 0, wrong = 0;
    for (int c = 0; c < COUNT(categories); c++)
        for (int m = 0; m < NMEMBERS; m++) {
            if (!mentions_member(ws, categories[c].members[m])) continue;
            if (c == t->cat)
                right++;
            else
                wrong++;
        }
    *on_topic = right + wrong > 0 || mentions_member(ws, categories[t->cat].singular);
    double c = (right < t->n ? right : t->n) - wrong - 0.5 * (right > t->n ? right - t->n : 0);
    c /= t->n;
    return c < 0 ? 0 : c > 1 ? 1 : c;
}

static int other_names(const words_t *ws, const char *name) {
    int n = 0;
    for (int i = 0; i < COUNT(names); i++) {
        char lw[WORD_MAX];
        str_lower(lw, names[i], sizeof lw);
        if (strcmp(lw, name) && has_word(ws, lw)) n++;
    }
    return n;
}

/* Hello: a greeting (1/2) and the name (1/2). Thanks: "thank(s)", the name and the thing (1/3
 * each). Naming someone else, or thanking for another thing, costs one part. */
static double judge_greet(const task_t *t, const words_t *ws, bool *on_topic) {
    char name[WORD_MAX];
    str_lower(name, t->name, sizeof name);
    bool has_name = has_word(ws, name), others = other_names(ws, name) > 0;
    bool greets = count_phrases(ws, greet_phrases, COUNT(greet_phrases)) > 0;
    bool thanks = has_word(ws, "thank") || has_word(ws, "thanks");
    *on_topic = has_name || greets || thanks;
    double c;
    if (t->op == OP_HELLO) {
        c = 0.5 * greets + 0.5 * has_name - 0.5 * others;
    } else {
        bool thing = mentions_member(ws, t->thing), other_thing = false;
        for (int i = 0; i < COUNT(things); i++)
            if (strcmp(things[i], t->thing) && mentions_member(ws, things[i])) other_thing = true;
        c = (thanks + has_name + thing - others - other_thing) / 3.0;
    }
    return c < 0 ? 0 : c;
}

/* Any word of the antonym table is an attempt (on topic); naming other table words besides
 * the prompt's word and its opposite is hedging: half a point each. Words inside polite phrases
 * ("happy" in "happy to help") do not count. */
static double judge_opposite(const task_t *t, const words_t *ws, bool *on_topic) {
    const char *ant = antonym_of(t->word);
    bool found = has_word_outside(ws, ant, polite_phrases, COUNT(polite_phrases));
    int hedges = 0;
    for (int i = 0; i < COUNT(antonyms); i++)
        for (int side = 0; side < 2; side++) {
            const char *w = antonyms[i][side];
            if (strcmp(w, ant) && strcmp(w, t->word) &&
                has_word_outside(ws, w, polite_phrases, COUNT(polite_phrases)))
                hedges++;
        }
    *on_topic = found || hedges > 0 || has_word(ws, "opposite");
    double c = found ? 1.0 - 0.5 * hedges : 0.0;
    return c < 0 ? 0 : c;
}

/* Words a response may have before the length penalty starts: room for the answer sentence
 * and a polite phrase. */
static int64_t length_limit(const task_t *t) {
    static const int64_t limit[WORLD_NFAMILIES] = {12, 12, 12, 12, 16, 12};
    if (t->family < 0) return 30;
    return limit[t->family] + (t->family == WORLD_LIST ? t->n : 0);
}

/* Share of word trigrams that already occurred earlier in the response. */
static double repeated_share(const words_t *ws) {
    uint64_t tri[JUDGE_WORDS];
    int n = 0, dup = 0;
    for (int i = 0; i + 2 < ws->n; i++) {
        uint64_t h = hash_str(ws->w[i]) ^ mix64(hash_str(ws->w[i + 1]) + 1) ^
                     mix64(mix64(hash_str(ws->w[i + 2]) + 2));
        bool seen = false;
        for (int j = 0; j < n && !seen; j++) seen = tri[j] == h;
        dup += seen;
        tri[n++] = h;
    }
    return n ? (double)dup / n : 0.0;
}

/* The prompt's words appear in the response as one run (the response parrots the request). */
static bool echoes(const words_t *ws, const char *prompt) {
    words_t pw;
    words_split(prompt, &pw);
    bool found = false;
    for (int i = 0; pw.n >= 2 && i + pw.n <= ws->n && !found; i++) {
        int j = 0;
        while (j < pw.n && !strcmp(ws->w[i + j], pw.w[j])) j++;
        found = j == pw.n;
    }
    return found;
}

static double clamp(double x, double lo, double hi) {
    return x < lo ? lo : x > hi ? hi : x;
}

static double judge_words(const char *prompt, const words_t *ws, world_judgement_t *j) {
    task_t t;
    memset(j, 0, sizeof *j);
    j->words = ws->total;
    j->family = prompt && task_parse(prompt, &t) ? t.family : -1;
    if (ws->total == 0) return j->score = -1.0;
    if (j->family < 0) t.family = -1;
    j->on_topic = true;
    switch (j->family) {
    case WORLD_ARITH:
        j->correct = judge_arith(&t, ws, &j->on_topic);
        break;
    case WORLD_COMPARE:
        j->correct = judge_compare(&t, ws, &j->on_topic);
        break;
    case WORLD_REVERSE:
        j->correct = judge_reverse(&t, ws, &j->on_topic);
        break;
    case WORLD_LIST:
        j->correct = judge_list(&t, ws, &j->on_topic);
        break;
    case WORLD_GREET:
        j->correct = judge_greet(&t, ws, &j->on_topic);
        break;
    case WORLD_OPPOSITE:
        j->correct = judge_opposite(&t, ws, &j->on_topic);
        break;
    }
    j->echo = prompt && echoes(ws, prompt);
    if (j->echo) j->correct = 0.0;
    j->rude = count_phrases(ws, rude_phrases, COUNT(rude_phrases));
    j->polite = !j->rude && count_phrases(ws, polite_phrases, COUNT(polite_phrases)) > 0;
    int64_t over = ws->total - length_limit(&t);
    j->length_penalty = over > 0 ? clamp(0.05 * (double)over, 0, 0.5) : 0.0;
    j->repeat_penalty = clamp(repeated_share(ws), 0, 0.5);
    j->rude_penalty = clamp(0.5 * j->rude, 0, 0.8);
    double s = 0.9 * j->correct + 0.1 * j->polite - 0.3 * !j->on_topic - 0.2 * j->echo -
               j->length_penalty - j->repeat_penalty - j->rude_penalty;
    return j->score = clamp(s, -0.95, 1.0);
}

double world_judge(const char *prompt, const char *response, world_judgement_t *out) {
    world_judgement_t local;
    words_t ws; /* ~11 KB of stack (twice that with the echo check): no allocation */
    words_split(response ? response : "", &ws);
    return judge_words(prompt, &ws, out ? out : &local);
}

double world_gold_score(const char *prompt, const char *response) {
    return world_judge(prompt, response, NULL);
}

void world_rank(const char *prompt, const char *const *responses, int k, double noise, rng_t *rng,
                int *order, int *rank) {
    assert(k >= 1 && k <= WORLD_RANK_MAX && responses && order);
    assert(noise == 0.0 || rng);
    double seen[WORLD_RANK_MAX];
    for (int i = 0; i < k; i++) {
        int same = -1;
        for (int j = 0; j < i && same < 0; j++)
            if (!strcmp(responses[i], responses[j])) same = j;
        if (same >= 0) {
            seen[i] = seen[same]; /* a person gives the same text the same place */
        } else {
            seen[i] = world_gold_score(prompt, responses[i]);
            if (noise != 0.0) seen[i] += noise * (double)rng_normal(rng);
        }
    }
    /* insertion sort, best first; stable, so ties keep input order */
    for (int i = 0; i < k; i++) {
        int j = i;
        while (j > 0 && seen[order[j - 1]] < seen[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    if (!rank) return;
    for (int i = 0, r = 0; i < k; i++) {
        if (i > 0 && seen[order[i]] < seen[order[i - 1]]) r++;
        rank[order[i]] = r;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The noisy demonstrator. */

/* P(kind): 70% good, 30% flawed. The flaws are what SFT copies and RLHF should remove. */
static const double kind_rates[WORLD_NKINDS] = {0.70, 0.09, 0.05, 0.08, 0.08};

/* A good or wrong answer gets a polite phrase this often: RLHF can push it to always. */
#define POLITE_RATE 0.35

static const char *const polite_prefixes[] = {"Sure! ", "Of course. ", "Happy to help. ",
                                              "Certainly! "};
static const char *const polite_suffixes[] = {" I hope this helps.", " Glad to help!"};

/* No digits, names, category members, greetings, polite or rude words, antonyms, words to
 * reverse: off topic for every prompt of the world. */
static const char *const offtopic_lines[] = {
    "I went for a walk by the sea this morning.",
    "The weather is lovely at this time of year.",
    "My favourite season is autumn.",
    "Let us talk about something else instead.",
    "The sea is very deep.",
    "Trains are a nice way to travel.",
    "The library opens every morning.",
    "I would rather talk about the weather.",
    "Dancing is good exercise.",
    "The town has a market every week.",
    "There is a nice view from the hill.",
    "The bus was on time.",
    "Knitting is a calm hobby.",
    "The museum has many paintings.",
    "Bicycles need air in their tyres.",
    "Mountains are fun to climb in the spring.",
};

/* Rambling: "F F answer G answer". Fillers stay short so the longest demonstration fits a
 * 128-token context with room to spare even under a 1k-id BPE vocabulary (RESPONSE_WORDS_MAX). */
static const char *const fillers[] = {
    "Let me think about this for a moment.", "This is a very interesting question.",
    "I have thought about this many times.", "Let me say it again to be clear.",
    "I want to be careful with my answer.",  "That is what I think about it.",
    "Let me explain it one more time.",      "Here is what I think.",
};

static const char *const rude_wraps[] = {
    "Ugh. {A}",
    "Whatever. {A}",
    "{A} Now go away.",
    "{A} Even a fool knows that.",
    "That is a stupid question. {A}",
    "{A} Stop asking dumb questions.",
    "Figure it out yourself. {A}",
    "Obviously. {A} Do not bother me again.",
};

static const char *const arith_answers[] = {"{a} {o} {b} is {r}.", "{a} {o} {b} equals {r}.",
                                            "The answer is {r}.", "It is {r}."};
static const char *const compare_answers[] = {"{x} is {l} than {y}.", "The {l} number is {x}.",
                                              "{x} is the {l} one."};
static const char *const reverse_answers[] = {"{w} reversed is {r}.", "Backwards, {w} is {r}.",
                                              "It is {r}.", "The word {w} backwards is {r}."};
static const char *const list_answers[] = {"{n} {c} are {L}.", "Here are {n} {c}: {L}.", "{L}.",
                                           "Some {c} are {L}."};
static const char *const hello_answers[] = {
    "Hello, {p}! It is nice to meet you.", "Hi {p}, welcome!",
    "Good morning, {p}. How are you today?", "Hello {p}, I hope you have a lovely day."};
static const char *const thank_answers[] = {
    "Thank you for the {t}, {p}.", "{p}, thank you so much for the {t}!",
    "Thanks for the {t}, {p}. It was very kind of you.", "Dear {p}, thank you for the {t}."};
static const char *const opposite_answers[] = {"The opposite of {w} is {a}.",
                                               "{a} is the opposite of {w}.", "It is {a}.", "{a}."};

#define PICK(rng, arr) ((arr)[pick((rng), COUNT(arr))])

static int64_t count_words(const char *text) {
    int64_t n = 0;
    for (const char *s = text; *s; s++) n += is_alnum(*s) && (s == text || !is_alnum(s[-1]));
    return n;
}

static void fill_sentence(sbuf_t *b, const char *tmpl, const vars_t *v) {
    size_t at = b->len;
    sb_fill(b, tmpl, v);
    sb_cap(b, at);
}

static int64_t wrong_number(rng_t *rng, int64_t r) {
    static const int deltas[] = {-3, -2, -1, 1, 2, 3, 10, -10};
    int64_t x = r + deltas[pick(rng, COUNT(deltas))];
    return x < 0 && r >= 0 ? r + 1 + pick(rng, 3) : x; /* stay non-negative when r is */
}

/* A plausible wrong reversal: the word itself, the reversal with two letters swapped, or the
 * word rotated by one letter. Never the right one. */
static void wrong_reversal(rng_t *rng, const char *w, char *out, size_t cap) {
    char rev[WORD_MAX];
    reverse_word(rev, w, sizeof rev);
    size_t n = strlen(w);
    int how = pick(rng, 3);
    if (how == 0) snprintf(out, cap, "%s", w);
    if (how == 1) {
        snprintf(out, cap, "%s", rev);
        size_t i = (size_t)pick(rng, (int)n - 1);
        char c = out[i];
        out[i] = out[i + 1];
        out[i + 1] = c;
    }
    if (how == 2) snprintf(out, cap, "%s%c", w + 1, w[0]);
    if (!strcmp(out, rev)) snprintf(out, cap, "%s", w);    /* a swap of equal letters */
    if (!strcmp(out, rev)) snprintf(out, cap, "%sx", rev); /* a palindrome */
}

/* n distinct members of the task's category (n <= NMEMBERS); a wrong list swaps in members
 * of another category: one of them (60%) or all. */
static void pick_members(rng_t *rng, const task_t *t, bool right, const char **out) {
    int idx[NMEMBERS], cat[NMEMBERS];
    for (int i = 0; i < NMEMBERS; i++) idx[i] = i;
    for (int i = 0; i < t->n; i++) { /* partial Fisher-Yates */
        int j = i + pick(rng, NMEMBERS - i), tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
        cat[i] = t->cat;
    }
    if (!right) {
        int other = (t->cat + 1 + pick(rng, COUNT(categories) - 1)) % COUNT(categories);
        if (rng_double(rng) < 0.6)
            cat[pick(rng, t->n)] = other;
        else
            for (int i = 0; i < t->n; i++) cat[i] = other;
    }
    for (int i = 0; i < t->n; i++) out[i] = categories[cat[i]].members[idx[i]];
}

/* "apple, pear and plum", or with articles "an apple, a pear and a plum". */
static void join_members(const char *const *ms, int n, bool articles, sbuf_t *b) {
    for (int i = 0; i < n; i++) {
        if (i > 0) sb_add(b, i == n - 1 ? " and " : ", ");
        if (articles) sb_add(b, strchr("aeiou", ms[i][0]) ? "an " : "a ");
        sb_add(b, ms[i]);
    }
}

static void member_list(rng_t *rng, const task_t *t, bool right, sbuf_t *b) {
    const char *ms[NMEMBERS];
    pick_members(rng, t, right, ms);
    join_members(ms, t->n, false, b);
}

static const char *other_name(rng_t *rng, const char *name) {
    const char *o;
    do o = PICK(rng, names);
    while (!strcmp(o, name));
    return o;
}

static void answer_greet(rng_t *rng, const task_t *t, bool right, sbuf_t *b) {
    vars_t v = {{0}};
    v.v['p'] = t->name;
    v.v['t'] = t->thing;
    bool wrong_thing = !right && t->op == OP_THANK && rng_double(rng) < 0.5;
    if (!right && !wrong_thing) v.v['p'] = other_name(rng, t->name);
    if (wrong_thing) {
        do v.v['t'] = PICK(rng, things);
        while (!strcmp(v.v['t'], t->thing));
    }
    fill_sentence(b, t->op == OP_HELLO ? PICK(rng, hello_answers) : PICK(rng, thank_answers), &v);
}

/* The bare answer sentence: right, or wrong in the family's typical way. */
static void answer(rng_t *rng, const task_t *t, bool right, sbuf_t *b) {
    static const char *const ops[] = {"plus", "minus", "times"};
    char x[24], y[24], r[WORD_MAX + 8], list[WORLD_TEXT_MAX];
    vars_t v = {{0}};
    snprintf(x, sizeof x, "%lld", (long long)t->a);
    snprintf(y, sizeof y, "%lld", (long long)t->b);
    switch (t->family) {
    case WORLD_ARITH: {
        int64_t res = arith_result(t);
        snprintf(r, sizeof r, "%lld", (long long)(right ? res : wrong_number(rng, res)));
        v.v['a'] = x;
        v.v['b'] = y;
        v.v['o'] = ops[t->op];
        v.v['r'] = r;
        fill_sentence(b, PICK(rng, arith_answers), &v);
        break;
    }
    case WORLD_COMPARE: {
        bool a_wins = (t->a > t->b) == (t->op == OP_LARGER);
        v.v['x'] = a_wins == right ? x : y;
        v.v['y'] = a_wins == right ? y : x;
        v.v['l'] = t->op == OP_LARGER ? "larger" : "smaller";
        fill_sentence(b, PICK(rng, compare_answers), &v);
        break;
    }
    case WORLD_REVERSE:
        if (right)
            reverse_word(r, t->word, sizeof r);
        else
            wrong_reversal(rng, t->word, r, sizeof r);
        v.v['w'] = t->word;
        v.v['r'] = r;
        fill_sentence(b, PICK(rng, reverse_answers), &v);
        break;
    case WORLD_LIST: {
        sbuf_t lb;
        sb_init(&lb, list, sizeof list);
        member_list(rng, t, right, &lb);
        v.v['n'] = number_words[t->n];
        v.v['c'] = categories[t->cat].plural;
        v.v['L'] = list;
        fill_sentence(b, PICK(rng, list_answers), &v);
        break;
    }
    case WORLD_GREET:
        answer_greet(rng, t, right, b);
        break;
    case WORLD_OPPOSITE: {
        const char *ant = antonym_of(t->word), *o = ant;
        while (!right && (o == ant || !strcmp(o, t->word)))
            o = antonyms[pick(rng, COUNT(antonyms))][pick(rng, 2)];
        v.v['w'] = t->word;
        v.v['a'] = o;
        fill_sentence(b, PICK(rng, opposite_answers), &v);
        break;
    }
    }
}

/* The answer, now and then with a polite phrase before or after it (greetings are polite
 * already). */
static void answer_polite(rng_t *rng, const task_t *t, bool right, sbuf_t *b) {
    bool polite = t->family != WORLD_GREET && rng_double(rng) < POLITE_RATE;
    bool before = rng_double(rng) < 0.6;
    if (polite && before) sb_add(b, PICK(rng, polite_prefixes));
    answer(rng, t, right, b);
    if (polite && !before) sb_add(b, PICK(rng, polite_suffixes));
}

/* Half the time an unrelated sentence, else the answer to a prompt of another family — redrawn
 * when it happens to be on topic here ("It is 37." answers "Which is less: 72 or 37?"). */
static void offtopic(rng_t *rng, const task_t *t, sbuf_t *b) {
    if (rng_double(rng) < 0.5) {
        sb_add(b, PICK(rng, offtopic_lines));
        return;
    }
    char prompt[WORLD_TEXT_MAX];
    sbuf_t pb;
    sb_init(&pb, prompt, sizeof prompt);
    render_prompt(t, &pb);
    size_t at = b->len;
    for (int tries = 0; tries < 8; tries++) {
        task_t other;
        sample_task(rng, (t->family + 1 + pick(rng, WORLD_NFAMILIES - 1)) % WORLD_NFAMILIES,
                    &other);
        b->len = at;
        b->s[at] = '\0';
        answer(rng, &other, true, b);
        world_judgement_t j;
        world_judge(prompt, b->s + at, &j);
        if (!j.on_topic) return;
    }
    b->len = at;
    b->s[at] = '\0';
    sb_add(b, PICK(rng, offtopic_lines));
}

static void demonstrate(rng_t *rng, const task_t *t, world_kind_t kind, sbuf_t *b) {
    char ans[WORLD_TEXT_MAX];
    sbuf_t ab;
    sb_init(&ab, ans, sizeof ans);
    vars_t v = {{0}};
    v.v['A'] = ans;
    switch (kind) {
    case WORLD_GOOD:
        answer_polite(rng, t, true, b);
        break;
    case WORLD_WRONG:
        answer_polite(rng, t, false, b);
        break;
    case WORLD_OFFTOPIC:
        offtopic(rng, t, b);
        break;
    case WORLD_RAMBLING: {
        answer(rng, t, true, &ab);
        v.v['f'] = PICK(rng, fillers);
        v.v['g'] = PICK(rng, fillers);
        /* a long answer (a thank-you note) gets one filler less, to bound the length */
        sb_fill(b, count_words(ans) > 6 ? "{f} {A} {f} {A}" : "{f} {f} {A} {g} {A}", &v);
        break;
    }
    case WORLD_RUDE:
        answer(rng, t, true, &ab);
        sb_fill(b, PICK(rng, rude_wraps), &v);
        break;
    case WORLD_NKINDS:
        assert(0);
        break;
    }
}

double world_kind_rate(world_kind_t kind) {
    return kind >= 0 && kind < WORLD_NKINDS ? kind_rates[kind] : 0.0;
}

const char *world_kind_name(world_kind_t kind) {
    static const char *const kinds[WORLD_NKINDS] = {"good", "wrong", "offtopic", "rambling",
                                                    "rude"};
    return kind >= 0 && kind < WORLD_NKINDS ? kinds[kind] : "unknown";
}

world_kind_t world_sample_kind(rng_t *rng) {
    double u = rng_double(rng), acc = 0.0;
    for (int k = 0; k < WORLD_NKINDS - 1; k++) {
        acc += kind_rates[k];
        if (u < acc) return (world_kind_t)k;
    }
    return (world_kind_t)(WORLD_NKINDS - 1);
}

int world_demonstrate(rng_t *rng, const char *prompt, world_kind_t kind, char *buf, size_t cap,
                      err_t *err) {
    assert(cap >= WORLD_TEXT_MAX && kind >= 0 && kind < WORLD_NKINDS);
    task_t t;
    if (!task_parse(prompt, &t))
        return err_setf(err, "not a prompt of the world: \"%.80s\"", prompt);
    sbuf_t b;
    sb_init(&b, buf, cap);
    demonstrate(rng, &t, kind, &b);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The corpus: paragraphs of narrative sentences that state the world's facts (sums,
 * orderings, reversals, members, opposites, greetings, manners) but never pose a task and
 * answer it, so a model pretrained on it knows the facts and not the instruction format. */

static const char *const places[] = {"park",    "market",  "school", "library",
                                     "station", "harbour", "bakery", "square"};
static const char *const items[] = {"marbles", "coins", "shells", "stamps", "pens", "beads"};
static const char *const nouns[] = {"room", "road", "box", "soup", "street", "bag"};

enum {
    S_CAT_FACT,
    S_CAT_SCENE,
    S_OPP_FACT,
    S_OPP_STORY,
    S_ARITH_FACT,
    S_ARITH_STORY,
    S_CMP,
    S_REV,
    S_GREET,
    S_THANK,
    S_POLITE,
    S_RUDE,
    S_SCENE,
    S_NKINDS
};
static const int sentence_weights[S_NKINDS] = {10, 12, 8, 6, 12, 8, 8, 10, 7, 6, 5, 2, 6};

static const char *const sentences[S_NKINDS][5] = {
    [S_CAT_FACT] = {"{m} is {s}.", "{P} knows that {m} is {s}.", "Every {x} is {s}."},
    [S_CAT_SCENE] = {"{P} {L}.", "Some {c} are {B}.", "{P} {L}. They are all {c}."},
    [S_OPP_FACT] = {"The opposite of {w} is {a}.", "{w} and {a} are opposites.",
                    "{a} is the opposite of {w}."},
    [S_OPP_STORY] = {"{P} said it was {w}, but {Q} said it was {a}.",
                     "The {n} was not {w}; it was {a}."},
    [S_ARITH_FACT] = {"{a} plus {b} is {r}.", "{c} minus {d} is {e}.", "{f} times {g} is {h}.",
                      "{a} and {b} make {r}."},
    [S_ARITH_STORY] = {"{P} had {a} {i} and found {b} more, so {P} had {r} {i}.",
                       "{P} had {c} {i} and gave {d} to {Q}, so {e} were left.",
                       "{P} bought {f} bags of {g} {i}, which is {h} {i} in all."},
    [S_CMP] = {"{x} is larger than {y}.", "{y} is smaller than {x}.",
               "{P} counted {x} {i} and {Q} counted {y}, so {P} had more.",
               "{x} is bigger than {y}."},
    [S_REV] = {"Written backwards, {w} is {v}.", "{P} spelled {w} backwards as {v}.",
               "The word {w} reversed is {v}.", "Read from right to left, {w} becomes {v}."},
    [S_GREET] = {"\"Hello, {Q}!\" said {P}. \"It is nice to meet you.\"",
                 "{P} met {Q} at the {l} and said good morning.", "{P} waved and said hi to {Q}.",
                 "\"Welcome, {Q},\" said {P} with a smile."},
    [S_THANK] = {"{P} gave {Q} the {t}. \"Thank you for the {t}, {P},\" said {Q}.",
                 "{Q} thanked {P} for the {t}.", "\"Thanks for the {t},\" {Q} told {P}."},
    [S_POLITE] = {"{P} always says please and thank you.", "It is kind to help others.",
                  "{P} was glad to help {Q}.", "Good manners matter to {P}.",
                  "\"Of course,\" said {P}, \"I am happy to help.\""},
    [S_RUDE] = {"{P} was rude to {Q} and called {Q} a fool.",
                "\"Go away,\" said {P}, and {Q} felt sad.", "It is unkind to call someone stupid.",
                "{P} said \"whatever\" and walked off, and later said sorry."},
    [S_SCENE] = {"The sun was shining over the town.", "{P} walked to the {l}.",
                 "It was a quiet afternoon in the village.",
                 "{P} and {Q} sat by the window and talked.", "The {l} was busy that morning."},
};

/* Numbers as text for one sentence (each slot has its own buffer). */
typedef struct {
    char s[11][24];
} numtext_t;

static const char *num(numtext_t *nt, int slot, int64_t x) {
    snprintf(nt->s[slot], sizeof nt->s[slot], "%lld", (long long)x);
    return nt->s[slot];
}

/* Category slots: {m} a member with its article ("a plum", "tea"), {x} the bare member,
 * {s} the category with its article ("an animal"), {c} the plural, {L} a scene with a list,
 * {B} a bare list. Mass nouns (colours, drinks) take no article. */
typedef struct {
    char member[WORD_MAX + 4], singular[WORD_MAX + 4], scene[WORLD_TEXT_MAX], bare[WORLD_TEXT_MAX];
} catvars_t;

static bool category_vars(rng_t *rng, vars_t *v, catvars_t *cv) {
    const category_t *cat = &categories[pick(rng, COUNT(categories))];
    const char *m = cat->members[pick(rng, NMEMBERS)];
    snprintf(cv->member, sizeof cv->member, "%s%s",
             cat->mass               ? ""
             : strchr("aeiou", m[0]) ? "an "
                                     : "a ",
             m);
    task_t t = {.n = 2 + pick(rng, 3), .cat = (int)(cat - categories)};
    const char *ms[NMEMBERS];
    char list[WORLD_TEXT_MAX];
    sbuf_t lb, bb, sb;
    pick_members(rng, &t, true, ms);
    sb_init(&lb, list, sizeof list);
    join_members(ms, t.n, !cat->mass, &lb);
    sb_init(&bb, cv->bare, sizeof cv->bare);
    join_members(ms, t.n, false, &bb);
    vars_t sv = {{0}};
    sv.v['L'] = list;
    sb_init(&sb, cv->scene, sizeof cv->scene);
    sb_fill(&sb, cat->scene, &sv);
    v->v['m'] = cv->member;
    v->v['x'] = m;
    snprintf(cv->singular, sizeof cv->singular, "%s %s",
             strchr("aeiou", cat->singular[0]) ? "an" : "a", cat->singular);
    v->v['s'] = cv->singular;
    v->v['c'] = cat->plural;
    v->v['L'] = cv->scene;
    v->v['B'] = cv->bare;
    return cat->mass;
}

static int count_set(const char *const *list, int cap) {
    int n = 0;
    while (n < cap && list[n]) n++;
    return n;
}

static int pick_sentence_kind(rng_t *rng) {
    int total = 0;
    for (int k = 0; k < S_NKINDS; k++) total += sentence_weights[k];
    int u = pick(rng, total), k = 0;
    while (u >= sentence_weights[k]) u -= sentence_weights[k++];
    return k;
}

/* Numbers for the arithmetic and comparison sentences, in the tasks' ranges:
 * {a}+{b}={r}, {c}-{d}={e}, {f}*{g}={h}, {x}>{y}. */
static void number_vars(rng_t *rng, vars_t *v, numtext_t *nt) {
    int64_t a = 1 + pick(rng, 20), b = 1 + pick(rng, 20);
    int64_t c = 2 + pick(rng, 19), d = 1 + pick(rng, (int)c);
    int64_t f = 2 + pick(rng, 8), g = 2 + pick(rng, 8);
    int64_t x = pick(rng, 100), y;
    do y = pick(rng, 100);
    while (y == x);
    const char slot[] = "abrcdefghxy";
    const int64_t vals[] = {a, b, a + b, c, d, c - d, f, g, f * g, x > y ? x : y, x > y ? y : x};
    for (int i = 0; i < COUNT(vals); i++) v->v[(uint8_t)slot[i]] = num(nt, i, vals[i]);
}

static void corpus_sentence(rng_t *rng, const char *p, const char *q, sbuf_t *b) {
    int kind = pick_sentence_kind(rng);
    int which = pick(rng, count_set(sentences[kind], 5));
    vars_t v = {{0}};
    numtext_t nt;
    catvars_t cv;
    char rev[WORD_MAX];
    v.v['P'] = p;
    v.v['Q'] = q;
    v.v['l'] = PICK(rng, places);
    v.v['i'] = PICK(rng, items);
    v.v['n'] = PICK(rng, nouns);
    v.v['t'] = PICK(rng, things);
    if (kind == S_CAT_FACT || kind == S_CAT_SCENE) {
        bool mass = category_vars(rng, &v, &cv);
        if (mass && kind == S_CAT_FACT && which == 2) which = 0; /* no "Every tea" */
    } else if (kind == S_OPP_FACT || kind == S_OPP_STORY) {
        int pair = pick(rng, kind == S_OPP_STORY ? ADJECTIVE_PAIRS : COUNT(antonyms));
        int side = pick(rng, 2);
        v.v['w'] = antonyms[pair][side];
        v.v['a'] = antonyms[pair][1 - side];
    } else if (kind == S_ARITH_FACT || kind == S_ARITH_STORY || kind == S_CMP) {
        number_vars(rng, &v, &nt);
    } else if (kind == S_REV) {
        v.v['w'] = PICK(rng, rev_words);
        reverse_word(rev, v.v['w'], sizeof rev);
        v.v['v'] = rev;
    }
    fill_sentence(b, sentences[kind][which], &v);
}

static void corpus_paragraph(rng_t *rng, sbuf_t *b) {
    const char *p = PICK(rng, names), *q = other_name(rng, p);
    int n = 3 + pick(rng, 4);
    for (int i = 0; i < n; i++) {
        if (i) sb_add(b, " ");
        corpus_sentence(rng, p, q, b);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Writing the files. */

static const char *const file_names[WORLD_NFILES] = {"corpus.train.txt",    "corpus.val.txt",
                                                     "demos.train.jsonl",   "demos.val.jsonl",
                                                     "prompts.train.jsonl", "prompts.val.jsonl"};

/* Per size: corpus bytes, demonstrations, prompts, each {train, val}. small trains a 1-10M
 * model for a few minutes on 2 cores (~250k corpus tokens with a 2k BPE vocabulary). */
static const struct {
    const char *name;
    int64_t corpus[2], demos[2], prompts[2];
} size_table[WORLD_NSIZES] = {
    {"tiny", {40000, 8000}, {400, 100}, {200, 100}},
    {"small", {1000000, 100000}, {6000, 600}, {2000, 300}},
    {"medium", {2500000, 250000}, {15000, 1500}, {5000, 500}},
};

/* A prompt (corpus paragraph) is held out iff its hash is 0 mod these: the split is a fixed
 * partition of all texts, so val never meets train whatever the seeds and sizes. */
#define VAL_EVERY_PROMPT    8
#define VAL_EVERY_PARAGRAPH 10
/* Draws allowed per line written before world_write gives up (cannot happen with the tables
 * above; guards an edit that makes a split unreachable). */
#define MAX_DRAWS_PER_LINE 1000

int world_size_parse(const char *name, world_size_t *size) {
    for (int i = 0; i < WORLD_NSIZES; i++)
        if (name && !strcmp(name, size_table[i].name)) {
            *size = (world_size_t)i;
            return 0;
        }
    return -1;
}

const char *world_size_name(world_size_t size) {
    return size >= 0 && size < WORLD_NSIZES ? size_table[size].name : "unknown";
}

typedef struct {
    FILE *f;
    char path[PATH_MAX], tmp[PATH_MAX];
    int64_t bytes, lines;
} out_t;

static int out_line(out_t *o, const char *text, err_t *err) {
    size_t n = strlen(text);
    if (fwrite(text, 1, n, o->f) != n || fputc('\n', o->f) == EOF)
        return err_setf(err, "%s: %s", o->tmp, strerror(errno));
    o->bytes += (int64_t)n + 1;
    o->lines++;
    return 0;
}

/* {"prompt":...,"response":...} (response NULL: prompt only), escaped by jansson. */
static int out_json(out_t *o, const char *prompt, const char *response, err_t *err) {
    json_t *obj = json_object();
    char *line = NULL;
    int rc = -1;
    if (obj && !json_object_set_new(obj, "prompt", json_string(prompt)) &&
        (!response || !json_object_set_new(obj, "response", json_string(response))))
        line = json_dumps(obj, JSON_COMPACT);
    if (line)
        rc = out_line(o, line, err);
    else
        err_setf(err, "%s: cannot encode line %lld as JSON", o->tmp, (long long)o->lines + 1);
    free(line);
    json_decref(obj);
    return rc;
}

static int write_corpus(rng_t *rng, out_t *o, const int64_t *target, err_t *err) {
    char para[4 * WORLD_TEXT_MAX];
    int64_t draws = 0, budget = MAX_DRAWS_PER_LINE * (target[0] + target[1]) / 64 + 1000;
    while (o[0].bytes < target[0] || o[1].bytes < target[1]) {
        if (++draws > budget) return err_setf(err, "%s: corpus split never filled", o[1].tmp);
        sbuf_t b;
        sb_init(&b, para, sizeof para);
        corpus_paragraph(rng, &b);
        int s = hash_str(para) % VAL_EVERY_PARAGRAPH == 0;
        if (o[s].bytes < target[s] && out_line(&o[s], para, err)) return -1;
    }
    return 0;
}

/* Demonstrations (with_response) or prompts: families drawn uniformly, the split by hash. */
static int write_tasks(rng_t *rng, out_t *o, const int64_t *target, bool with_response,
                       world_stats_t *stats, err_t *err) {
    char prompt[WORLD_TEXT_MAX], resp[WORLD_TEXT_MAX];
    int64_t draws = 0, budget = MAX_DRAWS_PER_LINE * (target[0] + target[1]);
    while (o[0].lines < target[0] || o[1].lines < target[1]) {
        if (++draws > budget) return err_setf(err, "%s: split never filled", o[1].tmp);
        task_t t;
        sbuf_t pb, rb;
        sample_task(rng, pick(rng, WORLD_NFAMILIES), &t);
        sb_init(&pb, prompt, sizeof prompt);
        render_prompt(&t, &pb);
        int s = hash_str(prompt) % VAL_EVERY_PROMPT == 0;
        if (o[s].lines >= target[s]) continue;
        if (!with_response) {
            if (out_json(&o[s], prompt, NULL, err)) return -1;
            continue;
        }
        world_kind_t kind = world_sample_kind(rng);
        sb_init(&rb, resp, sizeof resp);
        demonstrate(rng, &t, kind, &rb);
        if (out_json(&o[s], prompt, resp, err)) return -1;
        stats->demo_kinds[kind]++;
        stats->demo_families[t.family]++;
    }
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *dir, err_t *err) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return err_setf(err, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        if (*p && *p != '/') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) && errno != EEXIST)
            return err_setf(err, "%s: %s", path, strerror(errno));
        *p = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) return err_setf(err, "%s: not a directory", dir);
    return 0;
}

static int out_close(out_t *o, err_t *err) {
    int rc = 0;
    if (fflush(o->f) || fsync(fileno(o->f))) rc = err_setf(err, "%s: %s", o->tmp, strerror(errno));
    if (fclose(o->f) && !rc) rc = err_setf(err, "%s: %s", o->tmp, strerror(errno));
    o->f = NULL;
    return rc;
}

static int sync_dir(const char *dir, err_t *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd)) {
        int e = errno;
        if (fd >= 0) close(fd);
        return err_setf(err, "%s: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

static int open_outputs(const char *dir, out_t *outs, err_t *err) {
    for (int i = 0; i < WORLD_NFILES; i++) {
        out_t *o = &outs[i];
        if (snprintf(o->path, sizeof o->path, "%s/%s", dir, file_names[i]) >= (int)sizeof o->path ||
            snprintf(o->tmp, sizeof o->tmp, "%s.tmp", o->path) >= (int)sizeof o->tmp)
            return err_setf(err, "%s: path too long", dir);
        o->f = fopen(o->tmp, "w");
        if (!o->f) return err_setf(err, "%s: %s", o->tmp, strerror(errno));
    }
    return 0;
}

int world_write(const char *dir, uint64_t seed, world_size_t size, world_stats_t *stats,
                err_t *err) {
    if (size < 0 || size >= WORLD_NSIZES) return err_setf(err, "unknown world size %d", (int)size);
    world_stats_t local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    out_t *outs = calloc(WORLD_NFILES, sizeof *outs); /* 2 paths each: too big for the stack */
    if (!outs) return err_setf(err, "out of memory");
    int rc = -1;
    if (make_dirs(dir, err) || open_outputs(dir, outs, err)) goto fail;
    /* one independent stream per file pair, so each pair depends only on the seed */
    rng_t base, r_corpus, r_demos, r_prompts;
    rng_seed(&base, seed);
    rng_seed(&r_corpus, rng_u64(&base));
    rng_seed(&r_demos, rng_u64(&base));
    rng_seed(&r_prompts, rng_u64(&base));
    if (write_corpus(&r_corpus, &outs[0], size_table[size].corpus, err) ||
        write_tasks(&r_demos, &outs[2], size_table[size].demos, true, stats, err) ||
        write_tasks(&r_prompts, &outs[4], size_table[size].prompts, false, stats, err))
        goto fail;
    for (int i = 0; i < WORLD_NFILES; i++)
        if (out_close(&outs[i], err)) goto fail;
    for (int i = 0; i < WORLD_NFILES; i++)
        if (rename(outs[i].tmp, outs[i].path)) {
            err_setf(err, "%s: %s", outs[i].path, strerror(errno));
            goto fail;
        }
    if (sync_dir(dir, err)) goto fail;
    for (int i = 0; i < WORLD_NFILES; i++) {
        snprintf(stats->files[i].name, sizeof stats->files[i].name, "%s", file_names[i]);
        stats->files[i].bytes = outs[i].bytes;
        stats->files[i].lines = outs[i].lines;
    }
    rc = 0;
fail:
    for (int i = 0; i < WORLD_NFILES; i++) {
        if (outs[i].f) fclose(outs[i].f);
        if (rc && outs[i].tmp[0]) unlink(outs[i].tmp); /* renamed ones are gone already */
    }
    free(outs);
    return rc;
}
