/* reward/eval.c: `reward eval` — how well a reward model orders completions people ranked:
 * pairwise accuracy against the labels with its Wilson 95% interval (a pair is a trial), the
 * ranking loss training minimises, and the distribution of the scores. On the embedded world
 * (prompts world_task_family knows) also against the truth the labels are noisy copies of: the
 * gold judge's own order, and the ceiling the labeler noise allows — how often the gold order
 * agrees with the labels, which is what a perfect reward model would score against them.
 * Completions are scored with rm_score (one forward per pair, reward_bias added): the numbers
 * `reward score` and `reward serve` give. */
#include "cli.h"
#include "comparisons.h"
#include "model.h"
#include "reward.h"
#include "rl.h"
#include "rm.h"
#include "stats.h"
#include "store.h"
#include "world.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "reward eval"

#define HELP                                                                                       \
    "usage: reward eval --model DIR --db FILE [--split val|train|all] [--val-fraction F]\n"        \
    "       reward eval --model DIR --comparisons FILE [--format kway|pairwise]\n"                 \
    "\n"                                                                                           \
    "Scores every ranked completion with the reward model and reports: pairwise accuracy\n"        \
    "against the labels (each untied pair of a ranking is a trial; 95% Wilson interval), the\n"    \
    "ranking loss -1/P sum log sigmoid(r_w - r_l) (mean over rankings; ln 2 is chance), and\n"     \
    "the score distribution. When the prompts are the embedded world's, also the accuracy\n"       \
    "against the gold judge's order (pairs it ties left out) and the ceiling the labeler\n"        \
    "noise allows: how often the gold order agrees with the labels (a perfect reward model's\n"    \
    "accuracy against them).\n"                                                                    \
    "\n"                                                                                           \
    "  --model DIR         the reward model (`reward train`'s OUT or OUT/best)\n"                  \
    "  --db FILE           rankings database\n"                                                    \
    "  --split S           val (default), train or all: the prompts `reward train` held out,\n"    \
    "                      trained on, or every ranked prompt\n"                                   \
    "  --val-fraction F    the split's share (default: the model's run.json, "                     \
    "else " REWARD_VAL_FRACTION_S ")\n"                                                            \
    "  --comparisons FILE  a comparisons file instead of a database\n"                             \
    "  --format F          its format: kway (default) {\"prompt\",\"responses\",\"ranks\"} or\n"   \
    "                      pairwise {\"prompt\",\"chosen\",\"rejected\"} / HH transcripts\n"       \
    "  --json              print one JSON object instead of the report\n"                          \
    "\n"

enum { O_MODEL = CLI_OPTS_COMMAND, O_DB, O_SPLIT, O_VAL_FRACTION, O_COMPARISONS, O_FORMAT, O_JSON };

/* What is summed over the prompts. */
typedef struct {
    rm_t *rm;
    err_t *err;
    int64_t prompts, rankings, no_pair; /* prompts scored; rankings with a pair; without */
    double correct, loss_sum;           /* against the labels */
    int64_t pairs;
    double *scores; /* every completion scored, for the distribution */
    int64_t n_scores, cap_scores;
    int64_t world_prompts;             /* prompts of the embedded world */
    double gold_correct, ceil_correct; /* model vs gold order; gold order vs labels */
    int64_t gold_pairs, gold_ties, ceil_pairs;
    double *gold; /* [STORE_K_MAX] scratch */
} acc_t;

/* One prompt with k responses (NUL-terminated, with lengths) and nr rankings ranks[r][k]
 * (1 = best, 0 = not in that ranking). */
typedef struct {
    const char *prompt;
    size_t prompt_len;
    int k;
    const char *const *responses;
    const size_t *lens;
    int nr;
    const int *const *ranks;
} unit_t;

/* Pairs of one ranking against the scores: rl_rank_forward over its completions. */
static void add_ranking(acc_t *a, const unit_t *u, const int *rank, const double *s) {
    float r[COMPARISONS_K_MAX];
    int32_t rk[COMPARISONS_K_MAX];
    int64_t n = 0;
    for (int i = 0; i < u->k; i++)
        if (rank[i] > 0) r[n] = (float)s[i], rk[n++] = rank[i];
    rl_rank_stats_t st;
    const double loss = rl_rank_forward(&st, r, rk, &n, 1);
    if (st.pairs == 0) {
        a->no_pair++;
        return;
    }
    a->rankings++;
    a->loss_sum += loss;
    a->correct += st.correct;
    a->pairs += st.pairs;
    if (!a->gold) return;
    for (int w = 0; w < u->k; w++) /* the gold judge as the reward model: the ceiling */
        for (int l = 0; l < u->k; l++) {
            if (rank[w] <= 0 || rank[l] <= 0 || rank[w] >= rank[l]) continue;
            a->ceil_correct += a->gold[w] > a->gold[l] ? 1.0 : a->gold[w] == a->gold[l] ? 0.5 : 0.0;
            a->ceil_pairs++;
        }
}

/* Each pair of the prompt's ranked completions once, ordered by the gold judge. */
static void add_gold(acc_t *a, const unit_t *u, const double *s, const bool *ranked) {
    for (int i = 0; i < u->k; i++)
        for (int j = i + 1; j < u->k; j++) {
            if (!ranked[i] || !ranked[j]) continue;
            const double g = a->gold[i] - a->gold[j], d = s[i] - s[j];
            if (g == 0.0) {
                a->gold_ties++;
                continue;
            }
            a->gold_pairs++;
            a->gold_correct += d == 0.0 ? 0.5 : (g > 0.0) == (d > 0.0) ? 1.0 : 0.0;
        }
}

static int add_unit(acc_t *a, const unit_t *u) {
    double s[COMPARISONS_K_MAX], gold[COMPARISONS_K_MAX];
    size_t plens[COMPARISONS_K_MAX];
    const char *prompts[COMPARISONS_K_MAX];
    bool ranked[COMPARISONS_K_MAX] = {0};
    for (int i = 0; i < u->k; i++) prompts[i] = u->prompt, plens[i] = u->prompt_len;
    if (rm_score(a->rm, prompts, plens, u->responses, u->lens, u->k, s, a->err)) return -1;
    for (int r = 0; r < u->nr; r++)
        for (int i = 0; i < u->k; i++) ranked[i] |= u->ranks[r][i] > 0;
    if (a->n_scores + u->k > a->cap_scores) {
        const int64_t cap = 2 * (a->n_scores + u->k);
        double *p = realloc(a->scores, (size_t)cap * sizeof *p);
        if (!p) return err_setf(a->err, "out of memory");
        a->scores = p;
        a->cap_scores = cap;
    }
    for (int i = 0; i < u->k; i++)
        if (ranked[i]) a->scores[a->n_scores++] = s[i];
    a->gold = NULL;
    if (world_task_family(u->prompt) >= 0) {
        for (int i = 0; i < u->k; i++) gold[i] = world_gold_score(u->prompt, u->responses[i]);
        a->gold = gold;
        a->world_prompts++;
        add_gold(a, u, s, ranked);
    }
    for (int r = 0; r < u->nr; r++) add_ranking(a, u, u->ranks[r], s);
    a->gold = NULL;
    a->prompts++;
    return 0;
}

/* store_foreach_ranked's callback: the item as a unit. */
static int add_item(const store_item_t *it, void *ctx) {
    acc_t *a = ctx;
    const char *resp[STORE_K_MAX];
    size_t lens[STORE_K_MAX];
    const int *ranks[64];
    if (it->k > COMPARISONS_K_MAX || it->n_rankings > 64)
        return err_setf(a->err, "prompt %" PRId64 ": %d completions, %d rankings (at most %d, 64)",
                        it->id, it->k, it->n_rankings, COMPARISONS_K_MAX);
    for (int i = 0; i < it->k; i++)
        resp[i] = it->completions[i].text, lens[i] = it->completions[i].len;
    for (int r = 0; r < it->n_rankings; r++) ranks[r] = it->rankings[r].rank;
    const unit_t u = {it->text, it->len, it->k, resp, lens, it->n_rankings, ranks};
    if (add_unit(a, &u)) return err_prefixf(a->err, "prompt %" PRId64 ": ", it->id);
    return 0;
}

static int add_comparisons(acc_t *a, const comparisons_t *c) {
    for (int64_t i = 0; i < c->n; i++) {
        const comparisons_item_t *it = &c->items[i];
        const int *ranks[1] = {it->ranks};
        const unit_t u = {it->prompt,
                          it->prompt_len,
                          it->k,
                          (const char *const *)it->responses,
                          it->response_lens,
                          1,
                          ranks};
        if (add_unit(a, &u)) return err_prefixf(a->err, "%s:%" PRId64 ": ", c->path, it->line);
    }
    return 0;
}

/* ---- the report ------------------------------------------------------------------------- */

static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The q quantile of sorted x[0..n), linearly interpolated (numpy's default). */
static double quantile(const double *x, int64_t n, double q) {
    if (n == 0) return NAN;
    const double pos = q * (double)(n - 1);
    const int64_t i = (int64_t)pos;
    return i + 1 < n ? x[i] + (pos - (double)i) * (x[i + 1] - x[i]) : x[n - 1];
}

static json_t *ci_json(stats_ci_t ci) {
    return json_pack("{s:o, s:o, s:o, s:I}", "mean", cli_json_number(ci.mean), "lo",
                     cli_json_number(ci.lo), "hi", cli_json_number(ci.hi), "n", (json_int_t)ci.n);
}

typedef struct {
    stats_ci_t acc, gold, ceiling, mean;
    double loss, sd, q[7]; /* min, 5%, 25%, 50%, 75%, 95%, max */
} figures_t;

static figures_t figures(acc_t *a) {
    figures_t f;
    static const double qs[7] = {0, 0.05, 0.25, 0.5, 0.75, 0.95, 1};
    f.acc = stats_wilson(a->correct, a->pairs);
    f.gold = stats_wilson(a->gold_correct, a->gold_pairs);
    f.ceiling = stats_wilson(a->ceil_correct, a->ceil_pairs);
    f.loss = a->rankings > 0 ? a->loss_sum / (double)a->rankings : (double)NAN;
    f.mean = stats_mean(a->scores, a->n_scores);
    double ss = 0.0;
    for (int64_t i = 0; i < a->n_scores; i++)
        ss += (a->scores[i] - f.mean.mean) * (a->scores[i] - f.mean.mean);
    f.sd = a->n_scores > 1 ? sqrt(ss / (double)(a->n_scores - 1)) : (double)NAN;
    qsort(a->scores, (size_t)a->n_scores, sizeof *a->scores, cmp_double);
    for (int i = 0; i < 7; i++) f.q[i] = quantile(a->scores, a->n_scores, qs[i]);
    return f;
}

static void print_json(const acc_t *a, const figures_t *f, const char *model, const char *source,
                       const char *split, double val_fraction, double bias) {
    json_t *s = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "n",
                          (json_int_t)a->n_scores, "mean", cli_json_number(f->mean.mean), "sd",
                          cli_json_number(f->sd), "min", cli_json_number(f->q[0]), "q05",
                          cli_json_number(f->q[1]), "q25", cli_json_number(f->q[2]), "median",
                          cli_json_number(f->q[3]), "q75", cli_json_number(f->q[4]), "q95",
                          cli_json_number(f->q[5]), "max", cli_json_number(f->q[6]));
    json_t *o = json_pack(
        "{s:s, s:s, s:s?, s:o, s:f, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "model", model, "source",
        source, "split", split, "val_fraction", split ? cli_json_number(val_fraction) : json_null(),
        "reward_bias", bias, "prompts", (json_int_t)a->prompts, "rankings", (json_int_t)a->rankings,
        "rankings_without_pair", (json_int_t)a->no_pair, "pairs", (json_int_t)a->pairs, "accuracy",
        ci_json(f->acc), "loss", cli_json_number(f->loss), "scores", s);
    if (a->world_prompts > 0)
        json_object_set_new(o, "gold",
                            json_pack("{s:I, s:o, s:I, s:o}", "prompts",
                                      (json_int_t)a->world_prompts, "accuracy", ci_json(f->gold),
                                      "ties_left_out", (json_int_t)a->gold_ties, "ceiling",
                                      ci_json(f->ceiling)));
    char *text = json_dumps(o, CLI_JSON_FLAGS | JSON_INDENT(2));
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(o);
}

static void print_ci(const char *indent, const char *what, stats_ci_t ci, const char *tail) {
    printf("%s%-9s %.4f [%.4f, %.4f] %s\n", indent, what, ci.mean, ci.lo, ci.hi, tail);
}

static void print_report(const acc_t *a, const figures_t *f, const char *model, const char *source,
                         const char *split, double val_fraction) {
    printf("%s: %s on %s", PROG, model, source);
    if (split) printf(" (%s split, val-fraction %g)", split, val_fraction);
    printf(": %" PRId64 " rankings of %" PRId64 " prompts, %" PRId64 " pairs\n", a->rankings,
           a->prompts, a->pairs);
    print_ci("  ", "accuracy", f->acc, "against the labels (95% Wilson interval)");
    printf("  %-9s %.4f (ln 2 = %.4f is chance)\n", "loss", f->loss, log(2.0));
    printf("  %-9s n %" PRId64 "  mean %.4f  sd %.4f  min %.4f  5%% %.4f  25%% %.4f  median "
           "%.4f  75%% %.4f  95%% %.4f  max %.4f\n",
           "scores", a->n_scores, f->mean.mean, f->sd, f->q[0], f->q[1], f->q[2], f->q[3], f->q[4],
           f->q[5], f->q[6]);
    if (a->world_prompts == 0) return;
    printf("  gold judge (%" PRId64 " prompts of the embedded world):\n", a->world_prompts);
    char tail[160];
    snprintf(tail, sizeof tail,
             "against the gold order (%" PRId64 " pairs; %" PRId64 " it ties left out)",
             a->gold_pairs, a->gold_ties);
    print_ci("    ", "accuracy", f->gold, tail);
    print_ci("    ", "ceiling", f->ceiling,
             "the gold order against the labels: a perfect reward model's accuracy");
}

/* The val_fraction recorded in DIR/run.json's settings, or def. */
static double model_val_fraction(const char *dir, double def) {
    char path[4096];
    snprintf(path, sizeof path, "%s/run.json", dir);
    json_t *doc = json_load_file(path, 0, NULL);
    const json_t *v = json_object_get(json_object_get(doc, "settings"), "val_fraction");
    const double f = json_is_number(v) ? json_number_value(v) : def;
    json_decref(doc);
    return f;
}

int reward_cmd_eval(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"db", required_argument, NULL, O_DB},
        {"split", required_argument, NULL, O_SPLIT},
        {"val-fraction", required_argument, NULL, O_VAL_FRACTION},
        {"comparisons", required_argument, NULL, O_COMPARISONS},
        {"format", required_argument, NULL, O_FORMAT},
        {"json", no_argument, NULL, O_JSON},
        CLI_COMMON_LONGOPTS,
        {0}};
    const char *model_dir = NULL, *db = NULL, *split = NULL, *comp = NULL, *format = NULL;
    double val_fraction = -1;
    bool json = false;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        switch (c) {
        case O_MODEL:
            model_dir = args.arg;
            break;
        case O_DB:
            db = args.arg;
            break;
        case O_SPLIT:
            split = args.arg;
            break;
        case O_VAL_FRACTION:
            val_fraction = cli_arg_f64(PROG, "--val-fraction", args.arg, 0, 1);
            break;
        case O_COMPARISONS:
            comp = args.arg;
            break;
        case O_FORMAT:
            format = args.arg;
            break;
        case O_JSON:
            json = true;
            break;
        }
    }
    cli_args_end(&args, HELP CLI_COMMON_HELP);
    cli_require(PROG, "--model", model_dir);
    if (!db == !comp) cli_usage_error(PROG, "give one of --db and --comparisons");
    if (comp && (split || val_fraction >= 0))
        cli_usage_error(PROG, "--split and --val-fraction go with --db");
    if (db && format) cli_usage_error(PROG, "--format goes with --comparisons");
    store_query_t q = {.split = STORE_SPLIT_VAL};
    if (db && !split) split = "val";
    if (split && !strcmp(split, "train"))
        q.split = STORE_SPLIT_TRAIN;
    else if (split && !strcmp(split, "all"))
        q.split = STORE_SPLIT_ALL;
    else if (split && strcmp(split, "val"))
        cli_usage_error(PROG, "--split: expected val, train or all, got '%s'", split);
    comparisons_format_t fmt = COMPARISONS_KWAY;
    if (format && comparisons_format_parse(format, &fmt))
        cli_usage_error(PROG, "--format: expected kway or pairwise, got '%s'", format);
    if (db && val_fraction < 0) val_fraction = model_val_fraction(model_dir, REWARD_VAL_FRACTION);
    q.val_fraction = val_fraction;

    err_t err = ERR_INIT;
    model_t m = {0};
    comparisons_t cs = {0};
    store_t *st = NULL;
    acc_t a = {.err = &err};
    int rc = model_load(&m, model_dir, MODEL_HEAD_REWARD, &err) ? -1 : 0;
    if (rc == 0 && comp) rc = comparisons_load(&cs, comp, fmt, &err);
    if (rc == 0 && db && !(st = store_open(db, NULL, &err))) rc = -1;
    if (rc == 0 && !(a.rm = rm_new(&m, 0, &err))) rc = -1;
    if (rc == 0 && db && store_foreach_ranked(st, &q, add_item, &a, &err))
        rc = err_prefixf(&err, "%s: ", db);
    if (rc == 0 && comp) rc = add_comparisons(&a, &cs);
    if (rc == 0 && a.pairs == 0)
        rc = err_setf(&err, "%s: no ranked pair%s to evaluate", db ? db : comp,
                      db ? " in this split" : "");
    if (rc == 0) {
        figures_t f = figures(&a);
        const char *source = db ? db : comp;
        const char *sp = db ? split : NULL;
        if (json)
            print_json(&a, &f, model_dir, source, sp, val_fraction, m.meta.reward_bias);
        else
            print_report(&a, &f, model_dir, source, sp, val_fraction);
    }
    rm_destroy(&a.rm);
    free(a.scores);
    store_close(&st);
    comparisons_release(&cs);
    model_release(&m);
    if (rc) cli_die(PROG, "%s", err.msg);
    return 0;
}
