/* reward/import.c: `reward import` — rankings from the ecosystem's files into the database, in
 * one transaction: the whole file or nothing. Two formats (JSON Schemas in schemas/):
 *   kway      {"prompt", "responses": [K], "ranks": [K], "labeler"?}; without "ranks" the
 *             prompt and its responses are only added, to be ranked with `reward label`
 *   pairwise  TRL's {"prompt", "chosen", "rejected"} or Anthropic HH's {"chosen", "rejected"}
 *             transcripts ("\n\nHuman: …\n\nAssistant: …"), split at the last "\n\nAssistant:"
 *             so that "\n\n" + data_template_prompt + data_template_response gives the
 *             transcript back byte for byte (checked per line; `reward export --format hh`
 *             writes it back)
 * A line's responses become one run of completions (model "import:FILE"), keyed by the set of
 * their texts: lines with the same prompt and the same responses (two labelers ranking the same
 * K) share completions, so `reward agreement` compares them. Texts are bytes with a length
 * (U+0000 allowed). The file is parsed and checked by common/comparisons, the one parser of
 * these formats (`reward eval --comparisons` reads them with it too). */
#include "cli.h"
#include "comparisons.h"
#include "reward.h"
#include "store.h"
#include <stdlib.h>
#include <string.h>

#define PROG "reward import"

#define IMPORT_HELP                                                                                \
    "usage: reward import --db FILE [--format kway|pairwise] [--labeler NAME] FILE\n"              \
    "\n"                                                                                           \
    "Adds the prompts, responses and rankings of a JSONL file to the rankings database\n"          \
    "(created when missing), all in one transaction: a bad line is named (FILE:LINE: field)\n"     \
    "and nothing is written.\n"                                                                    \
    "  kway      {\"prompt\": \"...\", \"responses\": [\"...\", ...], \"ranks\": [2, 1, ...],\n"   \
    "             \"labeler\": \"ann\"}   ranks: 1 = best, ties share a rank; \"labeler\"\n"       \
    "            optional; without \"ranks\" the responses are added unranked, for\n"            \
    "            `reward label` (schemas/kway.json)\n"                                            \
    "  pairwise  {\"prompt\": \"...\", \"chosen\": \"...\", \"rejected\": \"...\"} (TRL), or\n"    \
    "            Anthropic HH's {\"chosen\": \"\\n\\nHuman: ...\\n\\nAssistant: ...\",\n"           \
    "            \"rejected\": \"...\"}: the prompt is the conversation up to the last\n"         \
    "            \"\\n\\nAssistant:\", the response the last turn (schemas/pairwise.json)\n"        \
    "\n"                                                                                           \
    "  --db FILE        the rankings database (required)\n"                                        \
    "  --format F       kway (default) or pairwise\n"                                              \
    "  --labeler NAME   who ranked lines without a \"labeler\" (default \"imported\")\n"

_Static_assert(COMPARISONS_K_MAX <= STORE_K_MAX, "a comparisons line fits the store");

typedef struct {
    store_t *store;
    const char *path;
    const char *model; /* "import:FILE" */
    const char *default_labeler;
    int64_t lines, completions, rankings;
} import_t;

static int by_text(const void *a, const void *b, void *ctx) {
    const comparisons_item_t *l = ctx;
    const int i = *(const int *)a, j = *(const int *)b;
    const size_t li = l->response_lens[i], lj = l->response_lens[j];
    const int c = memcmp(l->responses[i], l->responses[j], li < lj ? li : lj);
    if (c) return c;
    if (li != lj) return li < lj ? -1 : 1;
    return i - j;
}

/* Adds one parsed line: its responses as a run keyed by their set of texts (sorted, so the
 * same set in another order is the same run), then its ranking. */
static int import_line(import_t *im, const comparisons_item_t *l, err_t *err) {
    const int64_t line = l->line;
    int perm[STORE_K_MAX];
    for (int i = 0; i < l->k; i++) perm[i] = i;
    qsort_r(perm, (size_t)l->k, sizeof *perm, by_text, (void *)l);
    const char *texts[STORE_K_MAX];
    size_t lens[STORE_K_MAX];
    uint64_t h = 0;
    for (int j = 0; j < l->k; j++) {
        texts[j] = l->responses[perm[j]];
        lens[j] = l->response_lens[perm[j]];
        h = store_hash(texts[j], lens[j], h + (uint64_t)j + 1);
    }
    char settings[96];
    snprintf(settings, sizeof settings, "{\"import\":\"responses\",\"set\":\"%016llx\"}",
             (unsigned long long)h);
    int64_t pid, ids[STORE_K_MAX], lid;
    err_t e = ERR_INIT;
    const int added = store_prompt_add(im->store, l->prompt, l->prompt_len, texts, lens, l->k,
                                       im->model, settings, &pid, ids, &e);
    if (added < 0) return err_setf(err, "%s:%lld: %s", im->path, (long long)line, e.msg);
    im->completions += added ? l->k : 0;
    if (!l->ranked) return 0;
    const char *who = l->labeler ? l->labeler : im->default_labeler;
    if (store_labeler(im->store, who, true, &lid, &e))
        return err_setf(err, "%s:%lld: \"labeler\": %s", im->path, (long long)line, e.msg);
    store_mark_t marks[STORE_K_MAX];
    for (int j = 0; j < l->k; j++)
        marks[j] = (store_mark_t){.completion_id = ids[j], .rank = l->ranks[perm[j]]};
    if (store_ranking_add(im->store, lid, pid, marks, l->k, 0, 0, NULL, &e))
        return err_setf(err, "%s:%lld: \"ranks\": %s", im->path, (long long)line, e.msg);
    im->rankings++;
    return 0;
}

/* The whole file, parsed and checked first (common/comparisons), then added in one
 * transaction: any failure rolls it all back. */
static int import_file(import_t *im, comparisons_format_t fmt, err_t *err) {
    const comparisons_options_t opts = {.unranked = true, .ranks_within_k = true, .hh_exact = true};
    comparisons_t c;
    if (comparisons_load_opts(&c, im->path, fmt, &opts, err)) return -1;
    int rc = store_begin(im->store, err);
    for (int64_t i = 0; rc == 0 && i < c.n; i++)
        if ((rc = import_line(im, &c.items[i], err)) == 0) im->lines++;
    if (rc == 0) rc = store_commit(im->store, err);
    if (rc) store_rollback(im->store);
    comparisons_release(&c);
    return rc;
}

enum { O_DB = CLI_OPTS_COMMAND, O_FORMAT, O_LABELER };

int reward_cmd_import(int argc, char **argv) {
    static const struct option longopts[] = {{"db", required_argument, NULL, O_DB},
                                             {"format", required_argument, NULL, O_FORMAT},
                                             {"labeler", required_argument, NULL, O_LABELER},
                                             CLI_COMMON_LONGOPTS,
                                             {0}};
    const char *db = NULL, *labeler = "imported";
    comparisons_format_t fmt = COMPARISONS_KWAY;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        switch (c) {
        case O_DB:
            db = args.arg;
            break;
        case O_FORMAT:
            if (comparisons_format_parse(args.arg, &fmt))
                cli_usage_error(PROG, "--format %s: expected kway or pairwise", args.arg);
            break;
        case O_LABELER:
            labeler = args.arg;
            break;
        }
    }
    /* one positional argument, the file: getopt_long has moved it behind the options */
    const int first = optind;
    if (args.common.help) cli_args_end(&args, IMPORT_HELP CLI_COMMON_HELP);
    if (argc - first != 1) cli_usage_error(PROG, "give one FILE to import");
    cli_threads_apply(args.common.threads);
    const char *path = argv[first];
    cli_require(PROG, "--db", db);
    if (!labeler[0] || strlen(labeler) > 100)
        cli_usage_error(PROG, "--labeler must be 1 to 100 bytes");
    char model[4200];
    snprintf(model, sizeof model, "import:%s", path);
    store_options_t so = store_options_default();
    so.create = true;
    err_t err = ERR_INIT;
    import_t im = {.path = path, .model = model, .default_labeler = labeler};
    if (!(im.store = store_open(db, &so, &err))) cli_die(PROG, "%s", err.msg);
    if (import_file(&im, fmt, &err)) {
        store_close(&im.store);
        cli_die(PROG, "%s (nothing imported)", err.msg);
    }
    store_progress_t p;
    if (store_progress(im.store, 0, &p, &err)) cli_die(PROG, "%s", err.msg);
    printf("%s: %lld lines of %s: %lld completions added, %lld rankings; %s holds %lld prompts "
           "and %lld rankings\n",
           PROG, (long long)im.lines, path, (long long)im.completions, (long long)im.rankings, db,
           (long long)p.prompts, (long long)p.rankings);
    store_close(&im.store);
    return 0;
}
