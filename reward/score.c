/* reward/score.c: `reward score` — scores a JSONL of {"prompt", "response"} offline with a reward
 * model, through rm_score (the template + end-of-text, the score at that token, reward_bias
 * added, one forward per pair): the same numbers `reward serve` gives for the same pairs.
 * Every line is read, checked and tokenized before any score is written, so a bad line is
 * "reward: error: FILE:LINE: ..." with nothing on the output. */
#include "cli.h"
#include "data.h"
#include "fs.h"
#include "model.h"
#include "reward.h"
#include "rm.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "reward score"

#define HELP                                                                                       \
    "usage: reward score --model DIR --in FILE [--out FILE]\n"                                     \
    "\n"                                                                                           \
    "Scores each line {\"prompt\": ..., \"response\": ...} of --in with the reward model in\n"     \
    "--model and writes {\"score\": x} per line, in order: the score at the end-of-text after\n"   \
    "\"Human: PROMPT\\n\\nAssistant: RESPONSE\", plus the model's rlhf.reward_bias, with 17\n"     \
    "significant digits (a score reads back exactly). A response too long for the context\n"       \
    "is cut, its end-of-text kept. Every line is checked before anything is written.\n"            \
    "\n"                                                                                           \
    "  --model DIR   the reward model (`reward train`'s OUT or OUT/best)\n"                        \
    "  --in FILE     JSONL of prompt/response pairs (- = stdin)\n"                                 \
    "  --out FILE    where the scores go (default stdout; written atomically)\n"                   \
    "\n"

enum { O_MODEL = CLI_OPTS_COMMAND, O_IN, O_OUT };

/* The lines of scores, "{"score": x}\n" each, into a buffer the caller frees. */
static char *format_scores(const double *scores, int64_t n, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) return NULL;
    for (int64_t i = 0; i < n; i++) fprintf(f, "{\"score\": %.17g}\n", scores[i]);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Checks every pair fits (rm_encode's message, with FILE:LINE), then scores them all. */
static int score_all(model_t *m, const data_examples_t *ex, double *scores, int64_t *truncated,
                     err_t *err) {
    const int64_t ctx = m->model->cfg.n_positions;
    int32_t *ids = malloc((size_t)ctx * sizeof *ids);
    if (!ids) return err_setf(err, "out of memory");
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < ex->n; i++) {
        const data_example_t *e = &ex->ex[i];
        int cut = 0;
        if (rm_encode(m, e->prompt, (size_t)e->prompt_len, e->response, (size_t)e->response_len,
                      ids, ctx, &cut, err) < 0)
            rc = err_prefixf(err, "%s:%" PRId64 ": ", ex->path, e->line);
        *truncated += cut;
    }
    free(ids);
    rm_t *r = rc ? NULL : rm_new(m, 0, err);
    for (int64_t i = 0; r && rc == 0 && i < ex->n; i++) {
        const data_example_t *e = &ex->ex[i];
        const char *p = e->prompt, *q = e->response;
        const size_t pl = (size_t)e->prompt_len, ql = (size_t)e->response_len;
        if (rm_score(r, &p, &pl, &q, &ql, 1, &scores[i], err))
            rc = err_prefixf(err, "%s:%" PRId64 ": ", ex->path, e->line);
        else if (!isfinite(scores[i]))
            rc = err_setf(err, "%s:%" PRId64 ": the score is not finite (%g): a broken model?",
                          ex->path, e->line, scores[i]);
    }
    if (!r && rc == 0) rc = -1;
    rm_destroy(&r);
    return rc;
}

int reward_cmd_score(int argc, char **argv) {
    if (reward_score_wants_connect(argc, argv)) return reward_score_connect_main(argc, argv);
    static const struct option longopts[] = {{"model", required_argument, NULL, O_MODEL},
                                             {"in", required_argument, NULL, O_IN},
                                             {"out", required_argument, NULL, O_OUT},
                                             CLI_COMMON_LONGOPTS,
                                             {0}};
    const char *model_dir = NULL, *in = NULL, *out = NULL;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        switch (c) {
        case O_MODEL:
            model_dir = args.arg;
            break;
        case O_IN:
            in = args.arg;
            break;
        case O_OUT:
            out = args.arg;
            break;
        }
    }
    cli_args_end(&args, HELP CLI_COMMON_HELP);
    cli_require(PROG, "--model", model_dir);
    cli_require(PROG, "--in", in);

    err_t err = ERR_INIT;
    model_t m = {0};
    data_examples_t ex = {0};
    double *scores = NULL;
    char *text = NULL;
    size_t len = 0;
    int64_t truncated = 0;
    int rc = model_load(&m, model_dir, MODEL_HEAD_REWARD, &err) || data_demos_load(&ex, in, &err);
    if (rc == 0 && !(scores = malloc((size_t)ex.n * sizeof *scores)))
        rc = err_setf(&err, "out of memory");
    if (rc == 0) rc = score_all(&m, &ex, scores, &truncated, &err);
    if (rc == 0 && !(text = format_scores(scores, ex.n, &len)))
        rc = err_setf(&err, "out of memory");
    if (rc == 0 && out) rc = fs_write_atomic(out, text, len, &err);
    if (rc == 0 && !out && (fwrite(text, 1, len, stdout) != len || fflush(stdout)))
        rc = err_setf(&err, "<stdout>: write failed");
    if (rc == 0 && truncated > 0)
        cli_warn(PROG,
                 "%" PRId64 " of %" PRId64 " responses cut to the context (%" PRId64
                 " tokens), their end-of-text kept",
                 truncated, ex.n, m.model->cfg.n_positions);
    if (rc == 0 && out)
        fprintf(stderr, "%s: %" PRId64 " scores written to %s (reward_bias %.6g)\n", PROG, ex.n,
                out, m.meta.reward_bias);
    free(text);
    free(scores);
    data_examples_release(&ex);
    model_release(&m);
    if (rc) cli_die(PROG, "%s", err.msg);
    return 0;
}
