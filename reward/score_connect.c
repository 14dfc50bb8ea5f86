/* reward/score_connect.c: `reward score --connect EP[,EP...]` — the offline scorer's output
 * (`{"score": x}` per input line, in order, 17 significant digits) with the scores coming from
 * `reward serve` over ZeroMQ instead of a model loaded here. reward/score.c (the offline
 * scorer) hands its argv to reward_score_connect_main when reward_score_wants_connect says so.
 * The input is read and checked first (a bad line names its line, nothing is sent); then it
 * goes out in blocks of --batch lines, each block one wire_score call (split into requests of
 * at most WIRE_MAX_ITEMS items spread over the endpoints), and its lines are written and
 * flushed before the next block is sent, so a long run shows progress and a failure keeps
 * what was scored. A silent server is retried (Lazy Pirate: --timeout, --tries); when no
 * server answers the command exits 1 with "reward: error: no reply from tcp://...". */
#include "cli.h"
#include "data.h"
#include "fs.h"
#include "reward.h"
#include "wire.h"
#include "wireopt.h"
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG          "reward score"
#define CONNECT_BATCH 1024 /* lines per wire_score call: 4 requests of 256 items */
#define SCORE_JSON    (JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) /* doubles round-trip */

#define CONNECT_HELP                                                                               \
    "usage: reward score --connect EP[,EP...] --in FILE [options]\n"                               \
    "\n"                                                                                           \
    "Scores each {\"prompt\": ..., \"response\": ...} line of FILE with the reward model behind\n" \
    "`reward serve` and writes {\"score\": x} per line on stdout, in order, with 17 significant\n" \
    "digits: what `reward score --model DIR --in FILE` writes offline (the server applies the\n"   \
    "template, the end-of-text and reward_bias, and a pair's score does not depend on what it\n"   \
    "is batched with). Several endpoints share the work; a silent one is skipped while others\n"   \
    "answer. A server that goes away is retried (--timeout, --tries) and the run carries on\n"     \
    "when it is back; when none answers: exit 1, \"no reply from EP after N tries\".\n"            \
    "\n"                                                                                           \
    "options:\n"                                                                                   \
    "  --connect EP[,EP]  reward servers, comma-separated (tcp://127.0.0.1:5555)\n"                \
    "  --in FILE          JSONL, {\"prompt\", \"response\"} per line (other fields are ignored)\n" \
    "  --batch N          lines per round of requests (default 1024)\n" WIREOPT_HELP "\n"

bool reward_score_wants_connect(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--connect") || !strncmp(argv[i], "--connect=", 10)) return true;
    }
    return false;
}

static int print_score(double x, err_t *err) {
    json_t *o = json_pack("{s:f}", "score", x);
    char *line = o ? json_dumps(o, SCORE_JSON) : NULL;
    json_decref(o);
    if (!line) return err_setf(err, "out of memory");
    const int rc = puts(line) < 0 ? err_setf(err, "cannot write to stdout") : 0;
    free(line);
    return rc;
}

/* Refuses a text the wire would refuse, naming its line, before anything is sent. */
static int check_sizes(const data_examples_t *ex, err_t *err) {
    for (int64_t i = 0; i < ex->n; i++) {
        const data_example_t *e = &ex->ex[i];
        const char *field = e->prompt_len > WIRE_MAX_TEXT ? "prompt" : "response";
        const int64_t len = e->prompt_len > WIRE_MAX_TEXT ? e->prompt_len : e->response_len;
        if (len > WIRE_MAX_TEXT)
            return err_setf(err, "%s:%lld: %s is %lld bytes, over the wire's limit of %d", ex->path,
                            (long long)e->line, field, (long long)len, WIRE_MAX_TEXT);
    }
    return 0;
}

/* Scores ex in blocks of batch lines, printing each block's scores. */
static int score_blocks(wire_client_t *c, const data_examples_t *ex, int64_t batch, err_t *err) {
    wire_item_t *items = malloc((size_t)batch * sizeof *items);
    double *scores = malloc((size_t)batch * sizeof *scores);
    int rc = items && scores ? 0 : err_setf(err, "out of memory");
    for (int64_t first = 0; rc == 0 && first < ex->n; first += batch) {
        const int64_t n = ex->n - first < batch ? ex->n - first : batch;
        for (int64_t i = 0; i < n; i++) {
            const data_example_t *e = &ex->ex[first + i];
            items[i] = (wire_item_t){e->prompt, (size_t)e->prompt_len, e->response,
                                     (size_t)e->response_len};
        }
        rc = wire_score(c, items, n, scores, err);
        if (rc == -1) /* a refusal names the item inside the block: say which lines */
            err_prefixf(err, "%s:%lld-%lld: ", ex->path, (long long)ex->ex[first].line,
                        (long long)ex->ex[first + n - 1].line);
        for (int64_t i = 0; rc == 0 && i < n; i++) rc = print_score(scores[i], err);
        if (rc == 0 && fflush(stdout)) rc = err_setf(err, "cannot write to stdout");
    }
    free(items);
    free(scores);
    return rc;
}

/* Everything after option parsing; returns the exit code. */
static int run(const char *endpoints, const char *in, int64_t batch, const wireopt_t *wo,
               const char *log_path) {
    err_t err = ERR_INIT;
    data_examples_t ex = {0};
    wire_client_t *c = NULL;
    cli_log_t *log = NULL;
    int rc = 1;
    const double t0 = fs_monotonic_s();
    if (data_demos_load(&ex, in, &err) || check_sizes(&ex, &err)) goto done;
    if (log_path && !(log = cli_log_open(log_path, false, &err))) goto done;
    if (!(c = wireopt_client_new(wo, endpoints, PROG, &err))) goto done;
    if (score_blocks(c, &ex, batch, &err)) goto done;
    const double secs = fs_monotonic_s() - t0;
    if (cli_log_event(log, &err, "score", "{s:s, s:I, s:f}", "connect", endpoints, "pairs",
                      (json_int_t)ex.n, "seconds", secs))
        goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "reward: error: %s\n", err.msg);
    wire_client_destroy(&c);
    cli_log_close(&log);
    data_examples_release(&ex);
    return rc;
}

enum { O_CONNECT = CLI_OPTS_COMMAND, O_IN, O_BATCH };

int reward_score_connect_main(int argc, char **argv) {
    static const struct option longopts[] = {{"connect", required_argument, NULL, O_CONNECT},
                                             {"in", required_argument, NULL, O_IN},
                                             {"batch", required_argument, NULL, O_BATCH},
                                             WIREOPT_LONGOPTS,
                                             CLI_COMMON_LONGOPTS,
                                             {0}};
    wireopt_t wo = wireopt_defaults();
    const char *connect = NULL, *in = NULL;
    int64_t batch = CONNECT_BATCH;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        if (wireopt_option(&wo, PROG, c, args.arg)) continue;
        switch (c) {
        case O_CONNECT:
            connect = args.arg;
            break;
        case O_IN:
            in = args.arg;
            break;
        case O_BATCH:
            batch = cli_arg_i64(PROG, "--batch", args.arg, 1, 1 << 20);
            break;
        }
    }
    cli_args_end(&args, CONNECT_HELP CLI_COMMON_HELP);
    cli_require(PROG, "--connect", connect);
    cli_require(PROG, "--in", in);
    return run(connect, in, batch, &wo, args.common.log_path);
}
