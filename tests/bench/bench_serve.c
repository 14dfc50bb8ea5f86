/* tests/bench/bench_serve.c: what the ZeroMQ wire costs on top of the reward model (issue 10).
 * A demo-sized reward model (d 256, 4 layers, 4 heads, context 128, random weights, GPT-2's
 * tokenizer from .cache/gpt2: the score head never touches the vocabulary, so its size does
 * not change the cost) is served from a thread of this process through exactly what `reward
 * serve` runs (wire_server_* with rmserve_score), and clients in other threads measure:
 *  1. round-trip latency of one-item requests (p50, p99), with the server's default batch wait
 *     (2 ms: a lone request waits that long for company) and with no wait;
 *  2. items/s with requests of 32 items from one client;
 *  3. items/s with 8 clients at once, each sending one request of 16 items;
 * next to the model's offline speed (rm_score in process on the same items): the ratio of
 * served to offline items/s is the wire's overhead. 2 and 3 alternate with offline rounds on
 * the same items, so a shared machine's drifting load falls on all three alike. Prints a table,
 * merges the figures into bench.json. --quick shrinks the counts; --threads N (default 1: a pair's
 * forward is too small to split, and the server and the offline scorer use the same count, as their
 * ratio needs). */
#include "bench_util.h"
#include "cli.h"
#include "data.h"
#include "gpt.h"
#include "model.h"
#include "ops.h"
#include "rm.h"
#include "rmserve.h"
#include "tok.h"
#include "wire.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ITEMS   256 /* distinct pairs, reused round robin */
#define N_CLIENTS 8

static char texts[N_ITEMS][2][512];
static wire_item_t items[N_ITEMS];

/* World-like pairs: a short prompt, a response of 4 to 60 words (about 15 to 90 tokens). */
static void make_items(void) {
    static const char *const words[] = {"apple", "pear", "plum", "is",    "the",   "opposite",
                                        "of",    "hot",  "cold", "Hello", "Maria", "nice"};
    for (int i = 0; i < N_ITEMS; i++) {
        int np =
            snprintf(texts[i][0], 512, "What is %d plus %d? Please answer briefly.", i, i * 7 % 50);
        int nr = 0, n_words = 4 + (i * 37) % 57;
        for (int w = 0; w < n_words; w++)
            nr += snprintf(texts[i][1] + nr, (size_t)(512 - nr), "%s%s", w ? " " : "",
                           words[(i + w * 5) % 12]);
        items[i] = (wire_item_t){texts[i][0], (size_t)np, texts[i][1], (size_t)nr};
    }
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int rank = (int)(p * n + 0.999999);
    return v[rank > 0 ? rank - 1 : 0];
}

typedef struct {
    wire_server_t *srv;
    pthread_t thread;
    err_t err;
} server_t;

static int g_threads = 1; /* --threads: the model's threads, offline and in the server */

static void *server_main(void *arg) {
    server_t *s = arg;
    /* omp_set_num_threads is per thread: a new thread starts from OMP_NUM_THREADS / all cores,
     * and its forwards would run on another thread count than the offline ones (measured:
     * 2 threads on a loaded 2-core machine, 3-4x slower) */
    ops_set_threads(g_threads);
    if (wire_server_run(s->srv, &s->err)) fprintf(stderr, "bench: server: %s\n", s->err.msg);
    return NULL;
}

static int server_start(server_t *s, rmserve_t *rs, const json_t *info, int wait_us) {
    memset(s, 0, sizeof *s);
    const wire_server_opts_t o = {.endpoint = "tcp://127.0.0.1:*",
                                  .score = rmserve_score,
                                  .score_ctx = rs,
                                  .info = info,
                                  .batch_wait_us = wait_us};
    if (!(s->srv = wire_server_new(&o, &s->err)))
        return fprintf(stderr, "bench: %s\n", s->err.msg), -1;
    return pthread_create(&s->thread, NULL, server_main, s) ? -1 : 0;
}

static void server_stop(server_t *s) {
    wire_server_stop(s->srv);
    pthread_join(s->thread, NULL);
    wire_server_destroy(&s->srv);
}

static wire_client_t *client_new(const char *ep) {
    err_t err = ERR_INIT;
    const wire_client_opts_t o = {.endpoints = ep, .timeout_ms = 30000, .tries = 1};
    wire_client_t *c = wire_client_new(&o, &err);
    if (!c) fprintf(stderr, "bench: %s\n", err.msg);
    return c;
}

/* Round trips of one-item requests: p50 and p99 in ms. */
static int latency(const char *ep, int n, double *p50, double *p99) {
    wire_client_t *c = client_new(ep);
    double *ms = malloc((size_t)n * sizeof *ms), score;
    err_t err = ERR_INIT;
    int rc = c && ms ? 0 : -1;
    for (int i = -10; rc == 0 && i < n; i++) { /* 10 to warm up */
        const double t0 = bench_now();
        rc = wire_score(c, &items[(i + 10) % N_ITEMS], 1, &score, &err);
        if (i >= 0) ms[i] = (bench_now() - t0) * 1e3;
    }
    if (rc == 0) *p50 = percentile(ms, n, 0.50), *p99 = percentile(ms, n, 0.99);
    if (rc) fprintf(stderr, "bench: latency: %s\n", err.msg);
    free(ms);
    wire_client_destroy(&c);
    return rc;
}

/* Items/s of `requests` requests of `per` items each from one client. */
static double throughput(const char *ep, int requests, int per) {
    wire_client_t *c = client_new(ep);
    double scores[N_ITEMS];
    err_t err = ERR_INIT;
    if (!c) return -1;
    const double t0 = bench_now();
    for (int r = 0; r < requests; r++)
        if (wire_score(c, &items[(r * per) % (N_ITEMS - per + 1)], per, scores, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            wire_client_destroy(&c);
            return -1;
        }
    const double dt = bench_now() - t0;
    wire_client_destroy(&c);
    return (double)requests * per / dt;
}

typedef struct {
    const char *ep;
    int requests, per;
    double items_per_s;
} worker_t;

static void *worker_main(void *arg) {
    worker_t *w = arg;
    w->items_per_s = throughput(w->ep, w->requests, w->per);
    return NULL;
}

/* Items/s of N_CLIENTS clients at once (wall time of the whole). */
static double concurrent(const char *ep, int requests, int per) {
    pthread_t th[N_CLIENTS];
    worker_t w[N_CLIENTS];
    const double t0 = bench_now();
    for (int i = 0; i < N_CLIENTS; i++) {
        w[i] = (worker_t){ep, requests, per, 0};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    bool ok = true;
    for (int i = 0; i < N_CLIENTS; i++) pthread_join(th[i], NULL), ok &= w[i].items_per_s > 0;
    return ok ? (double)N_CLIENTS * requests * per / (bench_now() - t0) : -1;
}

/* Offline: rm_score in process over items [first, first + n), items/s. The scorer is rmserve's
 * own (the server is stopped meanwhile: one model's activations, one user at a time). */
static double offline(rmserve_t *rs, int first, int n) {
    err_t err = ERR_INIT;
    double scores[N_ITEMS];
    const double t0 = bench_now();
    if (rmserve_score(rs, &items[first], n, scores, &err)) {
        fprintf(stderr, "bench: offline: %s\n", err.msg);
        return -1;
    }
    return n / (bench_now() - t0);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    cli_runtime_init(argv);
    bool quick = false;
    for (int i = 1; i < argc; i++) { /* default 1: one pair's forward is too small to split */
        if (!strcmp(argv[i], "--quick")) quick = true;
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) g_threads = atoi(argv[++i]);
    }
    ops_set_threads(g_threads);
    err_t err = ERR_INIT;
    model_t m = {.dir = "(demo-sized, random weights)"};
    const gpt_config_t cfg = {.vocab_size = 50257,
                              .n_positions = 128,
                              .n_layer = 4,
                              .n_head = 4,
                              .n_embd = 256,
                              .ln_eps = 1e-5f};
    if (!(m.tok = tok_load(".cache/gpt2", &err)) ||
        !(m.model = gpt_new(&cfg, GPT_HEAD_SCORE, &err))) {
        fprintf(stderr, "bench_serve: %s (make deps fetches .cache/gpt2)\n", err.msg);
        return 1;
    }
    gpt_init_random(m.model, 1);
    m.meta = ckpt_meta_default();
    snprintf(m.meta.template_name, sizeof m.meta.template_name, "%s", DATA_TEMPLATE_NAME);
    m.eos_id = m.pad_id = m.meta.eos_id = tok_eot_id(m.tok);
    make_items();
    int64_t tokens = 0;
    for (int i = 0; i < N_ITEMS; i++) {
        int32_t ids[128];
        tokens += rm_encode(&m, items[i].prompt, items[i].prompt_len, items[i].response,
                            items[i].response_len, ids, 128, NULL, &err);
    }
    printf("bench_serve: reward model d 256, 4 layers, context 128; %d pairs of %.0f tokens on "
           "average; %d threads\n",
           N_ITEMS, (double)tokens / N_ITEMS, ops_get_threads());
    rmserve_t *rs = rmserve_new(&m, WIRE_MAX_ITEMS, &err);
    json_t *info = rmserve_info(&m);
    if (!rs || !info) return 1;

    /* Latency: the server as `reward serve` starts by default, then with no batch wait. */
    server_t s;
    double lat50 = 0, lat99 = 0, now50 = 0, now99 = 0;
    const int n_lat = quick ? 100 : 300;
    if (server_start(&s, rs, info, 0) ||
        latency(wire_server_endpoint(s.srv), n_lat, &lat50, &lat99))
        return 1;
    server_stop(&s);
    if (server_start(&s, rs, info, -1) ||
        latency(wire_server_endpoint(s.srv), n_lat, &now50, &now99))
        return 1;
    server_stop(&s);

    /* Throughput: rounds of offline, served b32, served 8 clients on the same 128 items, one
     * after the other, so the machine's load (shared, drifting) hits all three alike; the
     * medians and the median of each round's ratio are reported. */
    enum { ROUNDS_MAX = 9, PER_ROUND = 128 };
    const int rounds = quick ? 3 : ROUNDS_MAX;
    double off[ROUNDS_MAX], b32[ROUNDS_MAX], c8[ROUNDS_MAX], rb[ROUNDS_MAX], rc[ROUNDS_MAX];
    offline(rs, 0, 16); /* warm up */
    for (int r = 0; r < rounds; r++) {
        const int first = (r * PER_ROUND) % N_ITEMS;
        off[r] = offline(rs, first, PER_ROUND);
        if (server_start(&s, rs, info, 0)) return 1;
        b32[r] = throughput(wire_server_endpoint(s.srv), PER_ROUND / 32, 32);
        c8[r] = concurrent(wire_server_endpoint(s.srv), 1, PER_ROUND / N_CLIENTS);
        server_stop(&s);
        if (off[r] <= 0 || b32[r] <= 0 || c8[r] <= 0) return 1;
        rb[r] = b32[r] / off[r];
        rc[r] = c8[r] / off[r];
    }
    const double moff = median(off, rounds), mb32 = median(b32, rounds), mc8 = median(c8, rounds);
    const double rb32 = median(rb, rounds), rc8 = median(rc, rounds);

    printf("\n%-46s %12s %10s\n", "reward serve (loopback, one process)", "", "of offline");
    printf("%-46s %9.2f ms\n", "round trip, 1 item, p50 (default 2 ms wait)", lat50);
    printf("%-46s %9.2f ms\n", "round trip, 1 item, p99 (default 2 ms wait)", lat99);
    printf("%-46s %9.2f ms\n", "round trip, 1 item, p50 (--batch-wait-us 0)", now50);
    printf("%-46s %9.2f ms\n", "round trip, 1 item, p99 (--batch-wait-us 0)", now99);
    printf("%-46s %9.0f /s %9.0f%%\n", "items/s, requests of 32", mb32, 100 * rb32);
    printf("%-46s %9.0f /s %9.0f%%\n", "items/s, 8 clients x requests of 16", mc8, 100 * rc8);
    printf("%-46s %9.0f /s   (%.0f tokens/s)\n", "offline rm_score (in process)", moff,
           moff * (double)tokens / N_ITEMS);
    printf(
        "(medians of %d rounds of %d items each; \"of offline\": median of the rounds' ratios)\n",
        rounds, PER_ROUND);
    json_t *j = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "serve_latency_p50_ms",
                          lat50, "serve_latency_p99_ms", lat99, "serve_latency_p50_ms_nowait",
                          now50, "serve_latency_p99_ms_nowait", now99, "serve_items_per_s_b32",
                          mb32, "serve_items_per_s_8clients", mc8, "rm_offline_items_per_s", moff,
                          "serve_b32_of_offline", rb32, "serve_8clients_of_offline", rc8);
    json_decref(info);
    rmserve_destroy(&rs);
    model_release(&m);
    if (bench_json_merge("bench.json", j)) return 1;
    printf("\nwrote bench.json\n");
    return 0;
}
