/* pipelines/world_demo.c: the noisy demonstrator (see world_impl.h for the design): 70% good
 * answers, polite a third of the time, and 30% flawed ones (wrong, off-topic, rambling, rude)
 * that SFT copies and RLHF should remove. */
#include "world_impl.h"
#include <stdio.h>

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

static int64_t count_words(const char *text) {
    int64_t n = 0;
    for (const char *s = text; *s; s++) n += is_alnum(*s) && (s == text || !is_alnum(s[-1]));
    return n;
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
    world_reverse_word(rev, w, sizeof rev);
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

void world_pick_members(rng_t *rng, const task_t *t, bool right, const char **out) {
    int idx[NMEMBERS], cat[NMEMBERS];
    for (int i = 0; i < NMEMBERS; i++) idx[i] = i;
    for (int i = 0; i < t->n; i++) { /* partial Fisher-Yates */
        int j = i + pick(rng, NMEMBERS - i), tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
        cat[i] = t->cat;
    }
    if (!right) {
        int other = (t->cat + 1 + pick(rng, COUNT(world_categories) - 1)) % COUNT(world_categories);
        if (rng_double(rng) < 0.6)
            cat[pick(rng, t->n)] = other;
        else
            for (int i = 0; i < t->n; i++) cat[i] = other;
    }
    for (int i = 0; i < t->n; i++) out[i] = world_categories[cat[i]].members[idx[i]];
}

void world_join_members(const char *const *ms, int n, bool articles, sbuf_t *b) {
    for (int i = 0; i < n; i++) {
        if (i > 0) sb_add(b, i == n - 1 ? " and " : ", ");
        if (articles) sb_add(b, strchr("aeiou", ms[i][0]) ? "an " : "a ");
        sb_add(b, ms[i]);
    }
}

static void member_list(rng_t *rng, const task_t *t, bool right, sbuf_t *b) {
    const char *ms[NMEMBERS];
    world_pick_members(rng, t, right, ms);
    world_join_members(ms, t->n, false, b);
}

const char *world_other_name(rng_t *rng, const char *name) {
    const char *o;
    do o = PICK(rng, world_names);
    while (!strcmp(o, name));
    return o;
}

static void answer_greet(rng_t *rng, const task_t *t, bool right, sbuf_t *b) {
    vars_t v = {{0}};
    v.v['p'] = t->name;
    v.v['t'] = t->thing;
    bool wrong_thing = !right && t->op == OP_THANK && rng_double(rng) < 0.5;
    if (!right && !wrong_thing) v.v['p'] = world_other_name(rng, t->name);
    if (wrong_thing) {
        do v.v['t'] = PICK(rng, world_things);
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
            world_reverse_word(r, t->word, sizeof r);
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
        v.v['n'] = world_number_words[t->n];
        v.v['c'] = world_categories[t->cat].plural;
        v.v['L'] = list;
        fill_sentence(b, PICK(rng, list_answers), &v);
        break;
    }
    case WORLD_GREET:
        answer_greet(rng, t, right, b);
        break;
    case WORLD_OPPOSITE: {
        const char *ant = world_antonym_of(t->word), *o = ant;
        while (!right && (o == ant || !strcmp(o, t->word)))
            o = world_antonyms[pick(rng, COUNT(world_antonyms))][pick(rng, 2)];
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
    world_task_render(t, &pb);
    size_t at = b->len;
    for (int tries = 0; tries < 8; tries++) {
        task_t other;
        world_task_sample(rng, (t->family + 1 + pick(rng, WORLD_NFAMILIES - 1)) % WORLD_NFAMILIES,
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

void world_demo_respond(rng_t *rng, const task_t *t, world_kind_t kind, sbuf_t *b) {
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
    if (!world_task_parse(prompt, &t))
        return err_setf(err, "not a prompt of the world: \"%.80s\"", prompt);
    sbuf_t b;
    sb_init(&b, buf, cap);
    world_demo_respond(rng, &t, kind, &b);
    return 0;
}
