/* reward/serve.c: `reward serve` — a reward model's scores for many clients over ZeroMQ
 * (DESIGN §5, schemas/wire.md). The model is loaded once; the wire core (common/wire) binds a
 * ROUTER, gathers requests that arrive together into one scoring call (rmserve_score: one
 * forward per pair, so a pair's score is the same bits in any batch), answers ping and info
 * itself, and replies to anything malformed with an error while it keeps serving. Loopback by
 * default; any other address needs CURVE keys. SIGINT/SIGTERM: the batch in hand is finished
 * and answered, then exit 0. The bound endpoint is the first line on stdout (and, with
 * --endpoint-file, a file written atomically once bound), so a script can start the server on
 * a free port (tcp://127.0.0.1:*) and read where it listens. */
#include "cli.h"
#include "fs.h"
#include "model.h"
#include "reward.h"
#include "rmserve.h"
#include "wire.h"
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG              "reward serve"
#define SERVE_LOG_EVERY_S 10.0
#define SERVE_BATCH_MAX   4096    /* items per scoring call: far past any useful batch */
#define SERVE_WAIT_MAX_US 1000000 /* 1 s: more would only add latency */

#define SERVE_HELP                                                                                 \
    "usage: reward serve --model DIR [--bind EP] [options]\n"                                      \
    "\n"                                                                                           \
    "Serves the reward model in DIR over ZeroMQ until SIGINT or SIGTERM (then it finishes the\n"   \
    "batch in hand, replies and exits 0). Clients send {\"v\":1,\"type\":\"score\",\"id\":...,\n"  \
    "\"items\":[{\"prompt\":...,\"response\":...}]} and get "                                      \
    "{\"type\":\"scores\",\"scores\":[...]}\n"                                                     \
    "(template, end-of-text and reward_bias applied here; the same bits whatever else is in the\n" \
    "batch); also info and ping. Anything malformed gets an error reply naming the problem, and\n" \
    "the server keeps serving. Protocol and limits: schemas/wire.md. Clients: `reward score\n"     \
    "--connect EP`, `ppo --reward EP`, or any ZeroMQ DEALER/REQ socket.\n"                         \
    "The endpoint it bound is the first line on stdout (tcp://127.0.0.1:* picks a free port).\n"   \
    "\n"                                                                                           \
    "options:\n"                                                                                   \
    "  --model DIR          reward model directory (config.json with a score head,\n"              \
    "                       model.safetensors, vocab.json, merges.txt)\n"                          \
    "  --bind EP            where to listen (default tcp://127.0.0.1:5555, loopback); any\n"       \
    "                       non-loopback address needs --curve-keys\n"                             \
    "  --curve-keys DIR     CURVE on: DIR/server.key (from `reward keygen --out DIR`); only\n"     \
    "                       clients holding DIR/server.pub get scores\n"                           \
    "  --batch-items N      gather up to N items into one scoring call (default 64)\n"             \
    "  --batch-wait-us N    after the first request, wait up to N µs for more (default 2000;\n"   \
    "                       0 = score at once)\n"                                                  \
    "  --log-every S        with --log: write the metrics every S seconds (default 10)\n"          \
    "  --endpoint-file F    also write the bound endpoint to F (atomically) once listening\n"

typedef struct {
    cli_log_t *log;
    err_t log_err; /* the first failed log write (reported at exit) */
    wire_metrics_t last;
} serve_ctx_t;

static void on_metrics(void *ctx, const wire_metrics_t *m) {
    serve_ctx_t *s = ctx;
    s->last = *m;
    if (!s->log) return;
    cli_log_event(
        s->log, &s->log_err, "serve",
        "{s:f, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, "
        "s:f, s:f, s:f, s:I, s:I, s:I}",
        "period_s", m->period_s, "requests", (json_int_t)m->requests, "items", (json_int_t)m->items,
        "batches", (json_int_t)m->batches, "multi_batches", (json_int_t)m->multi_batches,
        "batch_items_max", (json_int_t)m->batch_items_max, "batch_items_mean", m->batch_items_mean,
        "pings", (json_int_t)m->pings, "infos", (json_int_t)m->infos, "errors",
        (json_int_t)m->errors, "wait_p50_ms", m->wait_p50_ms, "wait_p90_ms", m->wait_p90_ms,
        "wait_p99_ms", m->wait_p99_ms, "wait_max_ms", m->wait_max_ms, "latency_p50_ms",
        m->latency_p50_ms, "latency_p90_ms", m->latency_p90_ms, "latency_p99_ms", m->latency_p99_ms,
        "latency_max_ms", m->latency_max_ms, "total_requests", (json_int_t)m->total_requests,
        "total_items", (json_int_t)m->total_items, "total_errors", (json_int_t)m->total_errors);
}

typedef struct {
    const char *model, *bind, *curve_keys, *endpoint_file, *log_path;
    int batch_items, batch_wait_us; /* as the wire core takes them */
    double log_every_s;
} serve_opts_t;

/* Says where the server listens: stdout's first line, the endpoint file, a line on stderr. */
static int announce(const serve_opts_t *o, const model_t *m, const char *endpoint, err_t *err) {
    if (printf("%s\n", endpoint) < 0 || fflush(stdout))
        return err_setf(err, "cannot write to stdout");
    if (o->endpoint_file) {
        char line[300];
        const int n = snprintf(line, sizeof line, "%s\n", endpoint);
        if (fs_write_atomic(o->endpoint_file, line, (size_t)n, err)) return -1;
    }
    const gpt_config_t *c = &m->model->cfg;
    fprintf(stderr,
            "reward serve: %s (d %lld, %lld layers, context %lld, reward_bias %.6g) on %s%s\n"
            "reward serve: batches of up to %d items, %d µs wait; Ctrl-C or kill -TERM %d "
            "stops it\n",
            m->dir, (long long)c->n_embd, (long long)c->n_layer, (long long)c->n_positions,
            m->meta.reward_bias, endpoint, o->curve_keys ? " with CURVE" : "", o->batch_items,
            o->batch_wait_us < 0 ? 0 : o->batch_wait_us, (int)getpid());
    return 0;
}

/* Everything after option parsing; returns the exit code. */
static int run(const serve_opts_t *o) {
    err_t err = ERR_INIT;
    model_t m = {0};
    rmserve_t *rs = NULL;
    json_t *info = NULL;
    wire_server_t *srv = NULL;
    serve_ctx_t ctx = {.log = NULL, .log_err = ERR_INIT};
    char key[4096];
    int rc = 1;
    if (cli_install_stop_handler(&err)) goto done;
    if (o->curve_keys &&
        snprintf(key, sizeof key, "%s/server.key", o->curve_keys) >= (int)sizeof key) {
        err_setf(&err, "%s: path too long", o->curve_keys);
        goto done;
    }
    if (model_load(&m, o->model, MODEL_HEAD_REWARD, &err)) goto done;
    const int64_t cap = o->batch_items > WIRE_MAX_ITEMS ? o->batch_items : WIRE_MAX_ITEMS;
    if (!(rs = rmserve_new(&m, cap, &err))) goto done;
    if (!(info = rmserve_info(&m))) {
        err_setf(&err, "out of memory");
        goto done;
    }
    if (o->log_path && !(ctx.log = cli_log_open(o->log_path, false, &err))) goto done;
    const wire_server_opts_t wo = {.endpoint = o->bind,
                                   .secret_key = o->curve_keys ? key : NULL,
                                   .score = rmserve_score,
                                   .score_ctx = rs,
                                   .info = info,
                                   .batch_items = o->batch_items,
                                   .batch_wait_us = o->batch_wait_us,
                                   .metrics_every_s = ctx.log ? o->log_every_s : 0,
                                   .metrics = on_metrics,
                                   .metrics_ctx = &ctx};
    if (!(srv = wire_server_new(&wo, &err))) goto done;
    if (announce(o, &m, wire_server_endpoint(srv), &err)) goto done;
    const double t0 = fs_monotonic_s();
    if (wire_server_run(srv, &err)) goto done;
    const rm_stats_t st = rmserve_stats(rs);
    fprintf(stderr,
            "reward serve: stopped after %.1f s: %lld requests, %lld items (%lld truncated), "
            "%lld error replies\n",
            fs_monotonic_s() - t0, (long long)ctx.last.total_requests,
            (long long)ctx.last.total_items, (long long)st.truncated,
            (long long)ctx.last.total_errors);
    if (ctx.log_err.msg[0]) cli_warn(PROG, "%s: %s", o->log_path, ctx.log_err.msg);
    rc = 0;
done:
    if (rc) fprintf(stderr, "reward: error: %s\n", err.msg);
    wire_server_destroy(&srv);
    cli_log_close(&ctx.log);
    json_decref(info);
    rmserve_destroy(&rs);
    model_release(&m);
    return rc;
}

enum {
    O_MODEL = CLI_OPTS_COMMAND,
    O_BIND,
    O_CURVE,
    O_BATCH_ITEMS,
    O_BATCH_WAIT,
    O_LOG_EVERY,
    O_ENDPOINT_FILE
};

int reward_cmd_serve(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"bind", required_argument, NULL, O_BIND},
        {"curve-keys", required_argument, NULL, O_CURVE},
        {"batch-items", required_argument, NULL, O_BATCH_ITEMS},
        {"batch-wait-us", required_argument, NULL, O_BATCH_WAIT},
        {"log-every", required_argument, NULL, O_LOG_EVERY},
        {"endpoint-file", required_argument, NULL, O_ENDPOINT_FILE},
        CLI_COMMON_LONGOPTS,
        {0}};
    serve_opts_t o = {.bind = WIRE_ENDPOINT,
                      .batch_items = WIRE_BATCH_ITEMS,
                      .batch_wait_us = WIRE_BATCH_WAIT_US,
                      .log_every_s = SERVE_LOG_EVERY_S};
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        switch (c) {
        case O_MODEL:
            o.model = args.arg;
            break;
        case O_BIND:
            o.bind = args.arg;
            break;
        case O_CURVE:
            o.curve_keys = args.arg;
            break;
        case O_BATCH_ITEMS:
            o.batch_items = (int)cli_arg_i64(PROG, "--batch-items", args.arg, 1, SERVE_BATCH_MAX);
            break;
        case O_BATCH_WAIT: /* the core reads 0 as its default and < 0 as "do not wait" */
            o.batch_wait_us =
                (int)cli_arg_i64(PROG, "--batch-wait-us", args.arg, 0, SERVE_WAIT_MAX_US);
            if (o.batch_wait_us == 0) o.batch_wait_us = -1;
            break;
        case O_LOG_EVERY:
            o.log_every_s = cli_arg_f64(PROG, "--log-every", args.arg, 0.01, 86400);
            break;
        case O_ENDPOINT_FILE:
            o.endpoint_file = args.arg;
            break;
        }
    }
    cli_args_end(&args, SERVE_HELP CLI_COMMON_HELP);
    cli_require(PROG, "--model", o.model);
    if (!o.curve_keys && !wire_endpoint_is_local(o.bind))
        cli_usage_error(PROG,
                        "--bind %s is not a loopback address: serving beyond this machine needs "
                        "--curve-keys DIR (make the keys with `reward keygen --out DIR`; clients "
                        "then need DIR/server.pub)",
                        o.bind);
    o.log_path = args.common.log_path;
    return run(&o);
}
