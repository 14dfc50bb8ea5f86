/* pipelines/world_judge.c: the gold judge (world_judge, world_gold_score) and the simulated
 * labeler built on it (world_rank, world_agreement); see world.h for the contract. The judge
 * reads words as lower-cased runs of ASCII letters/digits; it keeps at most JUDGE_WORDS of
 * them (enough: the length penalty is already at its cap long before). */
#include "world_impl.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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
    world_reverse_word(rev, t->word, sizeof rev);
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
    for (int c = 0; c < COUNT(world_categories); c++)
        for (int m = 0; m < NMEMBERS; m++) {
            if (!mentions_member(ws, world_categories[c].members[m])) continue;
            if (c == t->cat)
                right++;
            else
                wrong++;
        }
    *on_topic = right + wrong > 0 || mentions_member(ws, world_categories[t->cat].singular);
    double c = (right < t->n ? right : t->n) - wrong - 0.5 * (right > t->n ? right - t->n : 0);
    c /= t->n;
    return c < 0 ? 0 : c > 1 ? 1 : c;
}

static int other_names(const words_t *ws, const char *name) {
    int n = 0;
    for (int i = 0; i < COUNT(world_names); i++) {
        char lw[WORD_MAX];
        str_lower(lw, world_names[i], sizeof lw);
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
        for (int i = 0; i < COUNT(world_things); i++)
            if (strcmp(world_things[i], t->thing) && mentions_member(ws, world_things[i]))
                other_thing = true;
        c = (thanks + has_name + thing - others - other_thing) / 3.0;
    }
    return c < 0 ? 0 : c;
}

/* Any word of the antonym table is an attempt (on topic); naming other table words besides
 * the prompt's word and its opposite is hedging: half a point each. Words inside polite phrases
 * ("happy" in "happy to help") do not count. */
static double judge_opposite(const task_t *t, const words_t *ws, bool *on_topic) {
    const char *ant = world_antonym_of(t->word);
    bool found = has_word_outside(ws, ant, polite_phrases, COUNT(polite_phrases));
    int hedges = 0;
    for (int i = 0; i < COUNT(world_antonyms); i++)
        for (int side = 0; side < 2; side++) {
            const char *w = world_antonyms[i][side];
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

/* Judges the task's answer: returns `correct` in [0, 1] and sets *on_topic. */
typedef double judge_fn(const task_t *t, const words_t *ws, bool *on_topic);
static judge_fn *const judges[WORLD_NFAMILIES] = {
    [WORLD_ARITH] = judge_arith, [WORLD_COMPARE] = judge_compare, [WORLD_REVERSE] = judge_reverse,
    [WORLD_LIST] = judge_list,   [WORLD_GREET] = judge_greet,     [WORLD_OPPOSITE] = judge_opposite,
};

static double judge_words(const char *prompt, const words_t *ws, world_judgement_t *j) {
    task_t t;
    memset(j, 0, sizeof *j);
    j->words = ws->total;
    j->family = prompt && world_task_parse(prompt, &t) ? t.family : -1;
    if (ws->total == 0) return j->score = -1.0;
    if (j->family < 0) t.family = -1;
    j->on_topic = true;
    if (j->family >= 0) j->correct = judges[j->family](&t, ws, &j->on_topic);
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
/* Labeler agreement (world.h gives the formula). */

#define MAX_PAIRS (WORLD_RANK_MAX * (WORLD_RANK_MAX - 1) / 2)

/* Gold-score gaps |g_a − g_b| of the pairs of distinct texts among k responses to prompt, into
 * gaps (room for k·(k − 1)/2); returns how many. */
static int score_gaps(const char *prompt, const char *const *responses, int k, double *gaps) {
    assert(k >= 1 && k <= WORLD_RANK_MAX);
    double g[WORLD_RANK_MAX];
    int m = 0;
    for (int a = 0; a < k; a++) g[a] = world_gold_score(prompt, responses[a]);
    for (int a = 0; a < k; a++)
        for (int b = a + 1; b < k; b++)
            if (strcmp(responses[a], responses[b])) gaps[m++] = fabs(g[a] - g[b]);
    return m;
}

/* P(two labelers order a pair alike), for the pair's gold gap >= 0:
 * p = Φ(gap / (noise·√2)) = ½·erfc(−gap / (2·noise)). */
static double pair_agreement(double gap, double noise) {
    if (noise == 0.0) return 1.0;
    double p = 0.5 * erfc(-gap / (2.0 * noise));
    return p * p + (1.0 - p) * (1.0 - p);
}

static double mean_agreement(const double *gaps, int64_t m, double noise) {
    double sum = 0.0;
    for (int64_t i = 0; i < m; i++) sum += pair_agreement(gaps[i], noise);
    return sum / (double)m;
}

double world_agreement(const char *const *prompts, const char *const *responses, int n, int k,
                       double noise) {
    assert(n >= 0 && noise >= 0.0);
    double gaps[MAX_PAIRS], sum = 0.0;
    int64_t pairs = 0;
    for (int i = 0; i < n; i++) {
        int m = score_gaps(prompts[i], responses + (size_t)i * (size_t)k, k, gaps);
        for (int j = 0; j < m; j++) sum += pair_agreement(gaps[j], noise);
        pairs += m;
    }
    return pairs ? sum / (double)pairs : (double)NAN;
}

int world_agreement_noise(const char *const *prompts, const char *const *responses, int n, int k,
                          double target, double *noise, err_t *err) {
    assert(n >= 0 && k >= 1 && k <= WORLD_RANK_MAX);
    const double least = 1e-9; /* "nearly noise-free": below any gap the judge makes */
    double *gaps = malloc(((size_t)n * (size_t)(k * (k - 1) / 2) + 1) * sizeof *gaps);
    if (!gaps) return err_setf(err, "out of memory for the pairs of %d prompts", n);
    int64_t m = 0;
    for (int i = 0; i < n; i++)
        m += score_gaps(prompts[i], responses + (size_t)i * (size_t)k, k, gaps + m);
    int rc = -1;
    double most = m ? mean_agreement(gaps, m, least) : 0.0;
    if (!m) {
        err_setf(err, "no pair of distinct responses to rank");
    } else if (!(target > 0.5)) {
        err_setf(err, "target agreement %.3f: labelers who guess already agree on half the pairs",
                 target);
    } else if (!(target < most)) {
        err_setf(err,
                 "target agreement %.3f: labelers with any noise above 0 agree on at most %.3f of "
                 "these %lld pairs (pairs of equal gold score are coin flips)",
                 target, most, (long long)m);
    } else {
        double lo = least, hi = 1.0; /* agreement(lo) > target >= agreement(hi) */
        for (int i = 0; i < 200 && mean_agreement(gaps, m, hi) > target; i++) lo = hi, hi *= 2;
        for (int i = 0; i < 200 && hi > lo * (1 + 1e-9); i++) {
            double mid = sqrt(lo * hi); /* the noise spans decades: bisect its logarithm */
            if (mean_agreement(gaps, m, mid) > target)
                lo = mid;
            else
                hi = mid;
        }
        *noise = sqrt(lo * hi);
        rc = 0;
    }
    free(gaps);
    return rc;
}
