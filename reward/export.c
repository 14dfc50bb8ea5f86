/* reward/export.c: `reward export` — the database's rankings as JSONL for other tools, written
 * atomically (fs_write_atomic: the old file or the new one, never a part). One line per ranking
 * (kway), or one per untied pair of a ranking (pairwise: TRL's {"prompt", "chosen",
 * "rejected"}; hh: Anthropic HH's transcripts, built with the template, so an HH file imported
 * by `reward import` comes back byte for byte). Prompts in id order, rankings in id order. */
#include "cli.h"
#include "data.h"
#include "fs.h"
#include "ranking.h"
#include "reward.h"
#include "store.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define PROG "reward export"

#define EXPORT_HELP                                                                                \
    "usage: reward export --db FILE [--format kway|pairwise|hh] --out FILE\n"                      \
    "\n"                                                                                           \
    "Writes every ranking in the database as JSON lines (the file is replaced atomically):\n"      \
    "  kway      one line per ranking: {\"prompt\", \"responses\": [K], \"ranks\": [K],\n"         \
    "            \"labeler\"}, ranks 1 = best, ties share a rank (schemas/kway.json)\n"           \
    "  pairwise  one line per untied pair of a ranking: {\"prompt\", \"chosen\", \"rejected\"}\n"  \
    "            (TRL's format; schemas/pairwise.json)\n"                                         \
    "  hh        the same pairs as Anthropic HH transcripts: {\"chosen\": \"\\n\\nHuman: PROMPT"    \
    "\\n\\n\n"                                                                                     \
    "            Assistant: RESPONSE\", \"rejected\": ...} (schemas/pairwise.json)\n"             \
    "\n"                                                                                           \
    "  --db FILE      the rankings database (required)\n"                                          \
    "  --format F     kway (default), pairwise or hh\n"                                            \
    "  --out FILE     where to write (required)\n"

typedef enum { FMT_KWAY, FMT_PAIRWISE, FMT_HH } export_format_t;

typedef struct {
    export_format_t fmt;
    char *buf; /* the file being built */
    size_t len, cap;
    int64_t lines, rankings;
    err_t *err;
} export_t;

static int append(export_t *x, const char *s, size_t n) {
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 65536;
        while (x->len + n + 1 > cap) cap *= 2;
        char *b = realloc(x->buf, cap);
        if (!b) return err_setf(x->err, "out of memory");
        x->buf = b;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, s, n);
    x->len += n;
    return 0;
}

/* Appends o as one line and drops the reference. */
static int append_json(export_t *x, json_t *o) {
    char *line = o ? json_dumps(o, CLI_JSON_FLAGS) : NULL;
    json_decref(o);
    if (!line) return err_setf(x->err, "out of memory");
    const int rc = append(x, line, strlen(line)) || append(x, "\n", 1) ? -1 : 0;
    free(line);
    x->lines++;
    return rc;
}

/* "\n\nHuman: PROMPT\n\nAssistant: RESPONSE", through the template (import checked it
 * reproduces the transcript). */
static json_t *transcript(const store_item_t *it, const store_completion_t *c) {
    const size_t p = data_template_promptn(NULL, 0, it->text, it->len);
    const size_t r = data_template_responsen(NULL, 0, c->text, c->len);
    char *buf = malloc(2 + p + r + 2);
    if (!buf) return NULL;
    memcpy(buf, "\n\n", 2);
    data_template_promptn(buf + 2, p + 1, it->text, it->len);
    data_template_responsen(buf + 2 + p, r + 1, c->text, c->len);
    json_t *s = json_stringn(buf, 2 + p + r);
    free(buf);
    return s;
}

static int export_pairs(export_t *x, const store_item_t *it, const store_ranking_t *rk) {
    for (int a = 0; a < it->k; a++)
        for (int b = 0; b < it->k; b++) {
            if (!rk->rank[a] || !rk->rank[b] || rk->rank[a] >= rk->rank[b]) continue;
            const store_completion_t *w = &it->completions[a], *l = &it->completions[b];
            json_t *o = json_object();
            if (!o) return err_setf(x->err, "out of memory");
            int bad = 0;
            if (x->fmt == FMT_HH) {
                bad |= json_object_set_new(o, "chosen", transcript(it, w));
                bad |= json_object_set_new(o, "rejected", transcript(it, l));
            } else {
                bad |= json_object_set_new(o, "prompt", json_stringn(it->text, it->len));
                bad |= json_object_set_new(o, "chosen", json_stringn(w->text, w->len));
                bad |= json_object_set_new(o, "rejected", json_stringn(l->text, l->len));
            }
            if (bad) {
                json_decref(o);
                return err_setf(x->err, "out of memory");
            }
            if (append_json(x, o)) return -1;
        }
    return 0;
}

static int export_kway(export_t *x, const store_item_t *it, const store_ranking_t *rk) {
    int rank[STORE_K_MAX], n = 0;
    json_t *o = json_object(), *resp = json_array(), *ranks = json_array();
    for (int j = 0; j < it->k; j++)
        if (rk->rank[j]) rank[n++] = rk->rank[j];
    err_t e = ERR_INIT;
    if (ranking_normalize(rank, n, &e)) { /* the store keeps ranks >= 1: cannot happen */
        json_decref(o), json_decref(resp), json_decref(ranks);
        return err_setf(x->err, "prompt %lld: %s", (long long)it->id, e.msg);
    }
    int bad = !o || !resp || !ranks;
    for (int j = 0, i = 0; !bad && j < it->k; j++)
        if (rk->rank[j]) {
            const store_completion_t *c = &it->completions[j];
            bad |= json_array_append_new(resp, json_stringn(c->text, c->len));
            bad |= json_array_append_new(ranks, json_integer(rank[i++]));
        }
    if (!bad) {
        bad |= json_object_set_new(o, "prompt", json_stringn(it->text, it->len));
        bad |= json_object_set_new(o, "responses", resp);
        bad |= json_object_set_new(o, "ranks", ranks);
        bad |= json_object_set_new(o, "labeler", json_string(rk->labeler));
    } else {
        json_decref(resp), json_decref(ranks);
    }
    if (bad) {
        json_decref(o);
        return err_setf(x->err, "out of memory");
    }
    return append_json(x, o);
}

static int export_item(const store_item_t *it, void *ctx) {
    export_t *x = ctx;
    for (int r = 0; r < it->n_rankings; r++) {
        const int rc = x->fmt == FMT_KWAY ? export_kway(x, it, &it->rankings[r])
                                          : export_pairs(x, it, &it->rankings[r]);
        if (rc) return rc;
        x->rankings++;
    }
    return 0;
}

enum { O_DB = CLI_OPTS_COMMAND, O_FORMAT, O_OUT };

int reward_cmd_export(int argc, char **argv) {
    static const struct option longopts[] = {{"db", required_argument, NULL, O_DB},
                                             {"format", required_argument, NULL, O_FORMAT},
                                             {"out", required_argument, NULL, O_OUT},
                                             CLI_COMMON_LONGOPTS,
                                             {0}};
    const char *db = NULL, *out = NULL;
    export_format_t fmt = FMT_KWAY;
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
            else if (!strcmp(args.arg, "hh"))
                fmt = FMT_HH;
            else
                cli_usage_error(PROG, "--format %s: expected kway, pairwise or hh", args.arg);
            break;
        case O_OUT:
            out = args.arg;
            break;
        }
    }
    cli_args_end(&args, EXPORT_HELP CLI_COMMON_HELP);
    cli_require(PROG, "--db", db);
    cli_require(PROG, "--out", out);
    err_t err = ERR_INIT;
    store_t *s = store_open(db, NULL, &err);
    if (!s) cli_die(PROG, "%s", err.msg);
    export_t x = {.fmt = fmt, .err = &err};
    const int rc = store_foreach_ranked(s, NULL, export_item, &x, &err);
    store_close(&s);
    if (rc || fs_write_atomic(out, x.buf ? x.buf : "", x.len, &err)) {
        free(x.buf);
        cli_die(PROG, "%s", err.msg);
    }
    free(x.buf);
    printf("%s: %lld rankings as %lld %s lines to %s\n", PROG, (long long)x.rankings,
           (long long)x.lines, fmt == FMT_KWAY ? "kway" : fmt == FMT_HH ? "hh" : "pairwise", out);
    return 0;
}
