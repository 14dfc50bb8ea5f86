/* reward/agreement.c: `reward agreement` — how often two labelers order a pair of completions
 * the same way, on the prompts both ranked (the overlap share `reward label` gives to two
 * labelers). InstructGPT (Ouyang et al. 2022, §5.1): training labelers agreed with each other
 * on 72.6 ± 1.5% of pairs. A pair counts when both labelers ranked both completions and neither
 * tied them (a tie states no order); tied pairs are counted apart. Intervals: Wilson 95%
 * (stats_accuracy), treating pairs as independent trials — pairs of one prompt are not quite
 * independent, so the interval is a little optimistic. */
#include "cli.h"
#include "reward.h"
#include "stats.h"
#include "store.h"
#include <stdlib.h>
#include <string.h>

#define PROG "reward agreement"

#define AGREEMENT_HELP                                                                             \
    "usage: reward agreement --db FILE\n"                                                          \
    "\n"                                                                                           \
    "Pairwise agreement between labelers on the prompts two or more of them ranked: for each\n"    \
    "pair of labelers and overall, the share of completion pairs both ordered the same way,\n"     \
    "with a Wilson 95% interval. Pairs that either labeler tied are left out (and counted).\n"    \
    "InstructGPT's labelers agreed on about 73% of pairs.\n"                                       \
    "\n"                                                                                           \
    "  --db FILE      the rankings database (required)\n"

#define AGREEMENT_INSTRUCTGPT 0.726 /* Ouyang et al. 2022, §5.1: 72.6 ± 1.5% */

typedef struct {
    int64_t a, b;           /* labeler ids, a < b */
    char name_a[101], name_b[101];
    int64_t agree, n, tied; /* pairs ordered alike, pairs ordered by both, pairs tied by one */
    int64_t prompts;        /* prompts both ranked */
} pair_t;

typedef struct {
    pair_t *p;
    size_t n, cap;
    int64_t prompts;
    err_t *err;
} agreement_t;

static pair_t *pair_of(agreement_t *g, const store_ranking_t *x, const store_ranking_t *y) {
    if (x->labeler_id > y->labeler_id) {
        const store_ranking_t *t = x;
        x = y;
        y = t;
    }
    for (size_t i = 0; i < g->n; i++)
        if (g->p[i].a == x->labeler_id && g->p[i].b == y->labeler_id) return &g->p[i];
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 8;
        pair_t *p = realloc(g->p, g->cap * sizeof *p);
        if (!p) return NULL;
        g->p = p;
    }
    pair_t *p = &g->p[g->n++];
    *p = (pair_t){.a = x->labeler_id, .b = y->labeler_id};
    snprintf(p->name_a, sizeof p->name_a, "%s", x->labeler);
    snprintf(p->name_b, sizeof p->name_b, "%s", y->labeler);
    return p;
}

static int count_item(const store_item_t *it, void *ctx) {
    agreement_t *g = ctx;
    g->prompts++;
    for (int r = 0; r < it->n_rankings; r++)
        for (int q = r + 1; q < it->n_rankings; q++) {
            const store_ranking_t *x = &it->rankings[r], *y = &it->rankings[q];
            pair_t *p = pair_of(g, x, y);
            if (!p) return err_setf(g->err, "out of memory");
            p->prompts++;
            for (int i = 0; i < it->k; i++)
                for (int j = i + 1; j < it->k; j++) {
                    if (!x->rank[i] || !x->rank[j] || !y->rank[i] || !y->rank[j]) continue;
                    const int dx = (x->rank[i] > x->rank[j]) - (x->rank[i] < x->rank[j]);
                    const int dy = (y->rank[i] > y->rank[j]) - (y->rank[i] < y->rank[j]);
                    if (!dx || !dy) {
                        p->tied++;
                        continue;
                    }
                    p->n++;
                    p->agree += dx == dy;
                }
        }
    return 0;
}

static void print_row(const char *who, int64_t prompts, int64_t agree, int64_t n, int64_t tied) {
    const stats_ci_t ci = stats_accuracy(agree, n);
    if (n)
        printf("  %-36s %7lld %7lld %6.1f%%  [%.1f%%, %.1f%%] %7lld\n", who, (long long)prompts,
               (long long)n, 100 * ci.mean, 100 * ci.lo, 100 * ci.hi, (long long)tied);
    else
        printf("  %-36s %7lld %7lld %7s  %-16s %7lld\n", who, (long long)prompts, 0LL, "-", "",
               (long long)tied);
}

enum { O_DB = CLI_OPTS_COMMAND };

int reward_cmd_agreement(int argc, char **argv) {
    static const struct option longopts[] = {
        {"db", required_argument, NULL, O_DB}, CLI_COMMON_LONGOPTS, {0}};
    const char *db = NULL;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1)
        if (c == O_DB) db = args.arg;
    cli_args_end(&args, AGREEMENT_HELP CLI_COMMON_HELP);
    cli_require(PROG, "--db", db);
    err_t err = ERR_INIT;
    store_t *s = store_open(db, NULL, &err);
    if (!s) cli_die(PROG, "%s", err.msg);
    agreement_t g = {.err = &err};
    const store_query_t q = {.split = STORE_SPLIT_ALL, .min_labelers = 2};
    store_progress_t pr;
    if (store_foreach_ranked(s, &q, count_item, &g, &err) || store_progress(s, 0, &pr, &err)) {
        store_close(&s);
        free(g.p);
        cli_die(PROG, "%s", err.msg);
    }
    const double overlap = store_overlap(s);
    store_close(&s);
    printf("%s: %lld prompts ranked by two or more labelers (%s: %lld prompts, %lld rankings; "
           "overlap share %g)\n",
           PROG, (long long)g.prompts, db, (long long)pr.prompts, (long long)pr.rankings, overlap);
    if (!g.n) {
        printf("%s: no prompt was ranked by two labelers: nothing to compare\n", PROG);
        free(g.p);
        return 0;
    }
    printf("  %-36s %7s %7s %7s  %-16s %7s\n", "labelers", "prompts", "pairs", "agree",
           "95% interval", "tied");
    int64_t agree = 0, n = 0, tied = 0, prompts = 0;
    for (size_t i = 0; i < g.n; i++) {
        char who[220];
        snprintf(who, sizeof who, "%s / %s", g.p[i].name_a, g.p[i].name_b);
        print_row(who, g.p[i].prompts, g.p[i].agree, g.p[i].n, g.p[i].tied);
        agree += g.p[i].agree, n += g.p[i].n, tied += g.p[i].tied, prompts += g.p[i].prompts;
    }
    if (g.n > 1) print_row("overall", prompts, agree, n, tied);
    printf("%s: InstructGPT's labelers agreed on %.1f%% of pairs; \"tied\": pairs left out "
           "because a labeler tied them\n",
           PROG, 100 * AGREEMENT_INSTRUCTGPT);
    free(g.p);
    return 0;
}
