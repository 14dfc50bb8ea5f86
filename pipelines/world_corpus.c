/* pipelines/world_corpus.c: the pretraining corpus: paragraphs of narrative sentences that
 * state the world's facts (sums, orderings, reversals, members, opposites, greetings, manners)
 * but never pose a task and answer it, so a model pretrained on it knows the facts and not the
 * instruction format. */
#include "world_impl.h"
#include <stdio.h>

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
    const category_t *cat = &world_categories[pick(rng, COUNT(world_categories))];
    const char *m = cat->members[pick(rng, NMEMBERS)];
    snprintf(cv->member, sizeof cv->member, "%s%s",
             cat->mass               ? ""
             : strchr("aeiou", m[0]) ? "an "
                                     : "a ",
             m);
    task_t t = {.n = 2 + pick(rng, 3), .cat = (int)(cat - world_categories)};
    const char *ms[NMEMBERS];
    char list[WORLD_TEXT_MAX];
    sbuf_t lb, bb, sb;
    world_pick_members(rng, &t, true, ms);
    sb_init(&lb, list, sizeof list);
    world_join_members(ms, t.n, !cat->mass, &lb);
    sb_init(&bb, cv->bare, sizeof cv->bare);
    world_join_members(ms, t.n, false, &bb);
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
    v.v['t'] = PICK(rng, world_things);
    if (kind == S_CAT_FACT || kind == S_CAT_SCENE) {
        bool mass = category_vars(rng, &v, &cv);
        if (mass && kind == S_CAT_FACT && which == 2) which = 0; /* no "Every tea" */
    } else if (kind == S_OPP_FACT || kind == S_OPP_STORY) {
        int pair = pick(rng, kind == S_OPP_STORY ? ADJECTIVE_PAIRS : COUNT(world_antonyms));
        int side = pick(rng, 2);
        v.v['w'] = world_antonyms[pair][side];
        v.v['a'] = world_antonyms[pair][1 - side];
    } else if (kind == S_ARITH_FACT || kind == S_ARITH_STORY || kind == S_CMP) {
        number_vars(rng, &v, &nt);
    } else if (kind == S_REV) {
        v.v['w'] = PICK(rng, world_rev_words);
        world_reverse_word(rev, v.v['w'], sizeof rev);
        v.v['v'] = rev;
    }
    fill_sentence(b, sentences[kind][which], &v);
}

void world_corpus_paragraph(rng_t *rng, sbuf_t *b) {
    const char *p = PICK(rng, world_names), *q = world_other_name(rng, p);
    int n = 3 + pick(rng, 4);
    for (int i = 0; i < n; i++) {
        if (i) sb_add(b, " ");
        corpus_sentence(rng, p, q, b);
    }
}
