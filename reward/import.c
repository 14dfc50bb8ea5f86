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
 * (U+0000 allowed). */
#include "cli.h"
#include "data.h"
#include "ranking.h"
#include "reward.h"
#include "store.h"
#include <jansson.h>
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

typedef enum { FMT_KWAY, FMT_PAIRWISE } import_format_t;

/* One line, its strings borrowed from the JSON object (or from the transcripts). */
typedef struct {
    const char *prompt;
    size_t prompt_len;
    int k;
    const char *texts[STORE_K_MAX];
    size_t lens[STORE_K_MAX];
    int rank[STORE_K_MAX];
    bool ranked;
    const char *labeler; /* NULL: the default */
} line_t;

typedef struct {
    store_t *store;
    const char *path;
    const char *model; /* "import:FILE" */
    const char *default_labeler;
    int64_t lines, completions, rankings;
} import_t;

static const char *HUMAN = "\n\nHuman: ", *ASSISTANT = "\n\nAssistant:";

/* Splits an HH transcript into the prompt (after the leading "\n\nHuman: ", up to the last
 * "\n\nAssistant:") and the response (the last turn, its one leading space dropped), and checks
 * the template gives the transcript back. -1 with err naming FILE:LINE: field. */
static int hh_split(const char *t, size_t n, const char *file, int64_t line, const char *field,
                    const char **prompt, size_t *prompt_len, const char **resp, size_t *resp_len,
                    err_t *err) {
    const size_t hl = strlen(HUMAN), al = strlen(ASSISTANT);
    if (n < hl || memcmp(t, HUMAN, hl))
        return err_setf(err, "%s:%lld: \"%s\": a transcript starts with \"\\n\\nHuman: \"", file,
                        (long long)line, field);
    size_t at = SIZE_MAX;
    for (size_t i = hl; i + al <= n; i++)
        if (!memcmp(t + i, ASSISTANT, al)) at = i;
    if (at == SIZE_MAX)
        return err_setf(err, "%s:%lld: \"%s\": no \"\\n\\nAssistant:\" turn", file,
                        (long long)line, field);
    *prompt = t + hl;
    *prompt_len = at - hl;
    *resp = t + at + al;
    *resp_len = n - at - al;
    if (*resp_len && (*resp)[0] == ' ') (*resp)++, (*resp_len)--;
    /* The template must reproduce the transcript, or export could not restore it. */
    const size_t p = data_template_promptn(NULL, 0, *prompt, *prompt_len);
    const size_t r = data_template_responsen(NULL, 0, *resp, *resp_len);
    char *buf = malloc(2 + p + r + 2);
    if (!buf) return err_setf(err, "out of memory");
    memcpy(buf, "\n\n", 2);
    data_template_promptn(buf + 2, p + 1, *prompt, *prompt_len);
    data_template_responsen(buf + 2 + p, r + 1, *resp, *resp_len);
    const bool same = 2 + p + r == n && !memcmp(buf, t, n);
    free(buf);
    if (!same)
        return err_setf(err,
                        "%s:%lld: \"%s\": the last turn is not \"\\n\\nAssistant: \" followed by "
                        "a response without leading spaces, so it would not export back as it is",
                        file, (long long)line, field);
    return 0;
}

static int string_field(const json_t *o, const char *name, const char *file, int64_t line,
                        bool optional, const char **s, size_t *n, err_t *err) {
    const json_t *v = json_object_get(o, name);
    if (!v && optional) {
        *s = NULL;
        *n = 0;
        return 0;
    }
    if (!v) return err_setf(err, "%s:%lld: missing \"%s\"", file, (long long)line, name);
    if (!json_is_string(v))
        return err_setf(err, "%s:%lld: \"%s\" must be a string", file, (long long)line, name);
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 0;
}

static int parse_kway(const json_t *o, const char *file, int64_t line, line_t *l, err_t *err) {
    if (string_field(o, "prompt", file, line, false, &l->prompt, &l->prompt_len, err)) return -1;
    const json_t *resp = json_object_get(o, "responses"), *ranks = json_object_get(o, "ranks");
    if (!resp) return err_setf(err, "%s:%lld: missing \"responses\"", file, (long long)line);
    if (!json_is_array(resp) || json_array_size(resp) < 2 || json_array_size(resp) > STORE_K_MAX)
        return err_setf(err, "%s:%lld: \"responses\" must be an array of 2 to %d strings", file,
                        (long long)line, STORE_K_MAX);
    l->k = (int)json_array_size(resp);
    for (int i = 0; i < l->k; i++) {
        const json_t *v = json_array_get(resp, (size_t)i);
        if (!json_is_string(v))
            return err_setf(err, "%s:%lld: \"responses\"[%d] must be a string", file,
                            (long long)line, i);
        l->texts[i] = json_string_value(v);
        l->lens[i] = json_string_length(v);
    }
    l->ranked = ranks != NULL;
    if (ranks) {
        if (!json_is_array(ranks) || (int)json_array_size(ranks) != l->k)
            return err_setf(err, "%s:%lld: \"ranks\" must be an array of %d integers, one per "
                                 "response",
                            file, (long long)line, l->k);
        for (int i = 0; i < l->k; i++) {
            const json_t *v = json_array_get(ranks, (size_t)i);
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > l->k)
                return err_setf(err, "%s:%lld: \"ranks\"[%d] must be an integer from 1 to %d", file,
                                (long long)line, i, l->k);
            l->rank[i] = (int)json_integer_value(v);
        }
        err_t e = ERR_INIT;
        if (ranking_normalize(l->rank, l->k, &e))
            return err_setf(err, "%s:%lld: \"ranks\": %s", file, (long long)line, e.msg);
    }
    return 0;
}

static int parse_pairwise(const json_t *o, const char *file, int64_t line, line_t *l,
                          err_t *err) {
    const char *c, *r;
    size_t cn, rn;
    if (string_field(o, "prompt", file, line, true, &l->prompt, &l->prompt_len, err) ||
        string_field(o, "chosen", file, line, false, &c, &cn, err) ||
        string_field(o, "rejected", file, line, false, &r, &rn, err))
        return -1;
    l->k = 2;
    l->ranked = true;
    l->rank[0] = 1;
    l->rank[1] = 2;
    if (l->prompt) { /* TRL: the prompt apart */
        l->texts[0] = c, l->lens[0] = cn;
        l->texts[1] = r, l->lens[1] = rn;
        return 0;
    }
    const char *rp;
    size_t rpn;
    if (hh_split(c, cn, file, line, "chosen", &l->prompt, &l->prompt_len, &l->texts[0],
                 &l->lens[0], err) ||
        hh_split(r, rn, file, line, "rejected", &rp, &rpn, &l->texts[1], &l->lens[1], err))
        return -1;
    if (rpn != l->prompt_len || memcmp(rp, l->prompt, rpn))
        return err_setf(err, "%s:%lld: \"rejected\": its conversation before the last "
                             "\"\\n\\nAssistant:\" differs from \"chosen\"'s",
                        file, (long long)line);
    return 0;
}

static int by_text(const void *a, const void *b, void *ctx) {
    const line_t *l = ctx;
    const int i = *(const int *)a, j = *(const int *)b;
    const size_t n = l->lens[i] < l->lens[j] ? l->lens[i] : l->lens[j];
    const int c = memcmp(l->texts[i], l->texts[j], n);
    if (c) return c;
    if (l->lens[i] != l->lens[j]) return l->lens[i] < l->lens[j] ? -1 : 1;
    return i - j;
}

/* Adds one parsed line: its responses as a run keyed by their set of texts (sorted, so the
 * same set in another order is the same run), then its ranking. */
static int import_line(import_t *im, const line_t *l, int64_t line, err_t *err) {
    int perm[STORE_K_MAX];
    for (int i = 0; i < l->k; i++) perm[i] = i;
    qsort_r(perm, (size_t)l->k, sizeof *perm, by_text, (void *)l);
    const char *texts[STORE_K_MAX];
    size_t lens[STORE_K_MAX];
    uint64_t h = 0;
    for (int j = 0; j < l->k; j++) {
        texts[j] = l->texts[perm[j]];
        lens[j] = l->lens[perm[j]];
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
        marks[j] = (store_mark_t){.completion_id = ids[j], .rank = l->rank[perm[j]]};
    if (store_ranking_add(im->store, lid, pid, marks, l->k, 0, 0, NULL, &e))
        return err_setf(err, "%s:%lld: \"ranks\": %s", im->path, (long long)line, e.msg);
    im->rankings++;
    return 0;
}

static int import_file(import_t *im, import_format_t fmt, err_t *err) {
    data_jsonl_t r = {0};
    json_t *o = NULL;
    int rc = -1, got;
    if (data_jsonl_open(&r, im->path, 0, err)) goto done;
    if (store_begin(im->store, err)) goto done;
    while ((got = data_jsonl_next(&r, NULL, 0, &o, err)) == 1) {
        line_t l = {0};
        const char *lab;
        size_t lab_len;
        if ((fmt == FMT_KWAY ? parse_kway(o, im->path, r.line, &l, err)
                             : parse_pairwise(o, im->path, r.line, &l, err)) ||
            string_field(o, "labeler", im->path, r.line, true, &lab, &lab_len, err))
            break;
        if (lab && (lab_len == 0 || lab_len > 100 || strlen(lab) != lab_len)) {
            err_setf(err, "%s:%lld: \"labeler\" must be a name of 1 to 100 bytes", im->path,
                     (long long)r.line);
            break;
        }
        l.labeler = lab;
        if (import_line(im, &l, r.line, err)) break;
        im->lines++;
        json_decref(o);
        o = NULL;
    }
    if (got == 0 && im->lines == 0) {
        err_setf(err, "%s: no JSON lines (empty file)", im->path);
        got = -1;
    }
    if (got != 0 || store_commit(im->store, err)) {
        store_rollback(im->store);
        goto done;
    }
    rc = 0;
done:
    json_decref(o);
    data_jsonl_close(&r);
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
    import_format_t fmt = FMT_KWAY;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        switch (c) {
        case O_DB:
            db = args.arg;
            break;
        case O_FORMAT:
            if (!strcmp(args.arg, "kway"))
                fmt = FMT_KWAY;
            else if (!strcmp(args.arg, "pairwise"))
                fmt = FMT_PAIRWISE;
            else
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
