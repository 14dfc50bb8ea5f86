/* pipelines/world_task.c: the world's vocabulary and its prompts (see world_impl.h for the
 * design). One table of templates writes the prompts and parses them back, so the judge reads
 * a prompt exactly as the generator meant it. */
#include "world_impl.h"
#include <stdio.h>

/* ------------------------------------------------------------------------------------------ */
/* The world's vocabulary (world_impl.h declares the tables with their sizes, so a table that
 * grows or shrinks here without the declaration does not compile). */

const char *const world_names[] = {"Anna", "Ben",  "Maria", "Tom",  "Lucy", "Sam",  "Nora", "Leo",
                                   "Emma", "Jack", "Mia",   "Omar", "Ravi", "Yuki", "Chen", "Ella",
                                   "Max",  "Ivy",  "Zoe",   "Finn", "Lena", "Hugo", "Rosa", "Adam",
                                   "Nina", "Theo", "Sara",  "Paul", "Kim",  "Dan",  "Ada",  "Eva",
                                   "Ian",  "Joe",  "Kate",  "Luke", "Mila", "Ned",  "Owen", "Ruth"};

/* Things a person is thanked for ("Thank Tom for the book."). */
const char *const world_things[] = {"book", "gift",   "flowers", "cake",     "letter",
                                    "card", "help",   "advice",  "lunch",    "map",
                                    "song", "ticket", "scarf",   "umbrella", "invitation"};

const category_t world_categories[] = {
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

/* The first ADJECTIVE_PAIRS are adjectives ("The soup was not hot; it was cold."). */
const char *const world_antonyms[][2] = {
    {"hot", "cold"},    {"big", "small"},   {"fast", "slow"},  {"happy", "sad"},
    {"light", "dark"},  {"young", "old"},   {"early", "late"}, {"wet", "dry"},
    {"full", "empty"},  {"open", "closed"}, {"hard", "soft"},  {"loud", "quiet"},
    {"high", "low"},    {"rich", "poor"},   {"long", "short"}, {"thick", "thin"},
    {"strong", "weak"}, {"clean", "dirty"}, {"sweet", "sour"}, {"day", "night"},
    {"win", "lose"},    {"push", "pull"},   {"true", "false"}, {"left", "right"},
    {"first", "last"},  {"near", "far"},    {"buy", "sell"},   {"before", "after"},
    {"top", "bottom"},  {"north", "south"}, {"east", "west"},  {"summer", "winter"}};

/* Words the reverse task uses: 3-6 letters, no palindromes. */
const char *const world_rev_words[] = {
    "lamp",   "desk",   "frog",   "star",   "rain",   "moon",   "ship",   "bread",
    "chair",  "table",  "river",  "stone",  "cloud",  "paper",  "pencil", "garden",
    "window", "bottle", "candle", "basket", "button", "castle", "forest", "island",
    "jacket", "kettle", "ladder", "mirror", "needle", "pocket", "rocket", "saddle",
    "tunnel", "wallet", "planet", "spoon",  "plate",  "brush",  "clock",  "glove",
    "honey",  "music",  "ocean",  "piano",  "queen",  "robot",  "snake",  "tiger"};

const char *const world_number_words[] = {"zero", "one", "two",   "three", "four",
                                          "five", "six", "seven", "eight", "nine"};

/* ------------------------------------------------------------------------------------------ */
/* Prompts: one table writes them and parses them. Slots: {a} {b} integers, {n} a count
 * ("three"), {c} a category ("fruits"), {w} a word, {p} a name, {t} a thing. */

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

static int count_value(const char *w) {
    if (is_digit(w[0])) return w[1] ? -1 : w[0] - '0';
    char lw[WORD_MAX];
    str_lower(lw, w, sizeof lw);
    for (int i = 0; i < COUNT(world_number_words); i++)
        if (!strcmp(lw, world_number_words[i])) return i;
    return -1;
}

static int category_index(const char *w) {
    char lw[WORD_MAX];
    str_lower(lw, w, sizeof lw);
    if (!strcmp(lw, "colors")) return 2; /* American spelling of "colours" */
    for (int i = 0; i < COUNT(world_categories); i++)
        if (!strcmp(lw, world_categories[i].plural)) return i;
    return -1;
}

/* The antonym of a lower-case word, or NULL when the word is not in the table. */
const char *world_antonym_of(const char *w) {
    for (int i = 0; i < COUNT(world_antonyms); i++) {
        if (!strcmp(w, world_antonyms[i][0])) return world_antonyms[i][1];
        if (!strcmp(w, world_antonyms[i][1])) return world_antonyms[i][0];
    }
    return NULL;
}

void world_reverse_word(char *dst, const char *src, size_t cap) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    for (size_t i = 0; i < n; i++) dst[i] = src[n - 1 - i];
    dst[n] = '\0';
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
        return world_antonym_of(t->word) != NULL;
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
bool world_task_parse(const char *prompt, task_t *t) {
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
    return prompt && world_task_parse(prompt, &t) ? t.family : -1;
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
/* Writing prompts. */

void world_task_render(const task_t *t, sbuf_t *b) {
    char a[24], bb[24];
    snprintf(a, sizeof a, "%lld", (long long)t->a);
    snprintf(bb, sizeof bb, "%lld", (long long)t->b);
    vars_t v = {{0}};
    v.v['a'] = a;
    v.v['b'] = bb;
    v.v['n'] = t->n >= 0 && t->n < COUNT(world_number_words) ? world_number_words[t->n] : "";
    v.v['c'] = world_categories[t->cat].plural;
    v.v['w'] = t->word;
    v.v['p'] = t->name;
    v.v['t'] = t->thing;
    sb_fill(b, templates[t->tmpl].pattern, &v);
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

void world_task_sample(rng_t *rng, int family, task_t *t) {
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
        snprintf(t->word, sizeof t->word, "%s", world_rev_words[pick(rng, COUNT(world_rev_words))]);
        break;
    case WORLD_LIST:
        t->n = 2 + pick(rng, 3);
        t->cat = pick(rng, COUNT(world_categories));
        break;
    case WORLD_GREET:
        snprintf(t->name, sizeof t->name, "%s", world_names[pick(rng, COUNT(world_names))]);
        snprintf(t->thing, sizeof t->thing, "%s", world_things[pick(rng, COUNT(world_things))]);
        break;
    case WORLD_OPPOSITE:
        snprintf(t->word, sizeof t->word, "%s",
                 world_antonyms[pick(rng, COUNT(world_antonyms))][pick(rng, 2)]);
        break;
    }
}

int world_sample_prompt(rng_t *rng, int family, char *buf, size_t cap) {
    assert(cap >= WORLD_TEXT_MAX);
    if (family < 0 || family >= WORLD_NFAMILIES) family = pick(rng, WORLD_NFAMILIES);
    task_t t;
    world_task_sample(rng, family, &t);
    sbuf_t b;
    sb_init(&b, buf, cap);
    world_task_render(&t, &b);
    return family;
}
