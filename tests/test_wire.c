/* tests/test_wire.c: the ZeroMQ wire. A server thread with a deterministic fake scorer (a hash
 * of the texts) on a free loopback port; clients in the test's thread or in threads of their
 * own. Timeouts are short (200 ms) so the failure tests take a second or two.
 * WIRE_CAPTURE_DIR=dir makes test_wire_capture write every message kind it saw to dir
 * (tests/it/wire_schema.sh validates them against schemas/wire/). */
#include "cli.h"
#include "wire.h"
#include <check.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define FAST_MS 200

/* ---- helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The fake reward: FNV-1a over both texts (with their lengths, so NULs and the split point
 * count), mapped to a double in [-100, 100) that uses all 53 bits (round trips are exact or
 * fail). */
static double fake_score(const char *p, size_t np, const char *r, size_t nr) {
    uint64_t h = 1469598103934665603ull;
    const size_t lens[2] = {np, nr};
    const char *texts[2] = {p, r};
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < lens[t]; i++) h = (h ^ (uint8_t)texts[t][i]) * 1099511628211ull;
        h = (h ^ lens[t]) * 1099511628211ull;
    }
    return (double)(h >> 11) * 0x1p-53 * 200.0 - 100.0;
}

typedef struct {
    wire_server_t *srv;
    pthread_t thread;
    int rc;
    err_t err;
    int delay_us;        /* the scorer sleeps this long per call (lets requests pile up) */
    int64_t calls;       /* scoring calls */
    int64_t fail_on_len; /* a prompt of this length makes the scorer fail (-1 = never) */
    wire_metrics_t sum;  /* reports added up (counts only) */
    int64_t reports;
    json_t *info;
} server_t;

static int fake_scorer(void *ctx, const wire_item_t *items, int64_t n, double *scores, err_t *err) {
    server_t *t = ctx;
    t->calls++;
    if (t->delay_us) usleep((useconds_t)t->delay_us);
    for (int64_t i = 0; i < n; i++) {
        if ((int64_t)items[i].prompt_len == t->fail_on_len)
            return err_setf(err, "fake scorer: prompt of %zu bytes", items[i].prompt_len);
        if (items[i].prompt_len == 3 && !memcmp(items[i].prompt, "NaN", 3)) {
            scores[i] = NAN;
            continue;
        }
        ck_assert_uint_eq(strlen(items[i].prompt) <= items[i].prompt_len, 1); /* NUL-ended */
        ck_assert_int_eq(items[i].prompt[items[i].prompt_len], '\0');
        scores[i] = fake_score(items[i].prompt, items[i].prompt_len, items[i].response,
                               items[i].response_len);
    }
    return 0;
}

static void on_metrics(void *ctx, const wire_metrics_t *m) {
    server_t *t = ctx;
    t->reports++;
    t->sum.requests += m->requests;
    t->sum.items += m->items;
    t->sum.batches += m->batches;
    t->sum.multi_batches += m->multi_batches;
    t->sum.errors += m->errors;
    t->sum.pings += m->pings;
    if (m->batch_items_max > t->sum.batch_items_max) t->sum.batch_items_max = m->batch_items_max;
    if (m->latency_max_ms > t->sum.latency_max_ms) t->sum.latency_max_ms = m->latency_max_ms;
    ck_assert(m->latency_p50_ms <= m->latency_p90_ms && m->latency_p90_ms <= m->latency_p99_ms &&
              m->latency_p99_ms <= m->latency_max_ms);
    ck_assert(m->wait_p50_ms <= m->wait_max_ms && m->wait_max_ms <= m->latency_max_ms);
    t->sum.total_requests = m->total_requests;
}

static void *server_main(void *arg) {
    server_t *t = arg;
    t->rc = wire_server_run(t->srv, &t->err);
    return NULL;
}

/* Starts a server thread on endpoint (NULL = a free loopback port) with the given key. */
static void server_start(server_t *t, const char *endpoint, const char *key, int wait_us) {
    memset(t, 0, sizeof *t);
    t->fail_on_len = -1;
    t->info = json_pack("{s:s, s:{s:i, s:i}, s:s, s:f}", "model", "/models/rm", "config", "n_embd",
                        16, "n_layer", 2, "template", "rlhf-v1", "reward_bias", 0.25);
    wire_server_opts_t o = {.endpoint = endpoint ? endpoint : "tcp://127.0.0.1:*",
                            .secret_key = key,
                            .score = fake_scorer,
                            .score_ctx = t,
                            .info = t->info,
                            .batch_wait_us = wait_us,
                            .metrics_every_s = 0.05,
                            .metrics = on_metrics,
                            .metrics_ctx = t};
    err_t err = ERR_INIT;
    t->srv = wire_server_new(&o, &err);
    ck_assert_msg(t->srv != NULL, "%s", err.msg);
    ck_assert_int_eq(pthread_create(&t->thread, NULL, server_main, t), 0);
}

static void server_stop(server_t *t) {
    wire_server_stop(t->srv);
    ck_assert_int_eq(pthread_join(t->thread, NULL), 0);
    ck_assert_msg(t->rc == 0, "%s", t->err.msg);
    wire_server_destroy(&t->srv);
    ck_assert_ptr_null(t->srv);
    json_decref(t->info);
}

typedef struct {
    int warnings;
    char last[512];
} warn_t;

static void on_warn(void *ctx, const char *msg) {
    warn_t *w = ctx;
    w->warnings++;
    snprintf(w->last, sizeof w->last, "%s", msg);
}

static wire_client_t *client_new(const char *endpoints, int tries, warn_t *w) {
    wire_client_opts_t o = {.endpoints = endpoints,
                            .timeout_ms = FAST_MS,
                            .tries = tries,
                            .warn = w ? on_warn : NULL,
                            .warn_ctx = w};
    err_t err = ERR_INIT;
    wire_client_t *c = wire_client_new(&o, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    return c;
}

/* Item i of a reproducible set: texts of varying length, some with NUL and non-ASCII. */
typedef struct {
    char prompt[96], response[96];
    wire_item_t item;
} owned_item_t;

static void make_item(owned_item_t *o, int64_t i, int salt) {
    int np = snprintf(o->prompt, sizeof o->prompt, "prompt %d/%lld: café ✓", salt, (long long)i);
    int nr =
        snprintf(o->response, sizeof o->response, "answer x%lldx", (long long)(i * 7919 % 1000));
    if (i % 3 == 0) o->prompt[6] = '\0'; /* an embedded U+0000 */
    o->item = (wire_item_t){o->prompt, (size_t)np, o->response, (size_t)nr};
}

static void check_scores(const owned_item_t *items, const double *scores, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const wire_item_t *it = &items[i].item;
        double want = fake_score(it->prompt, it->prompt_len, it->response, it->response_len);
        ck_assert_msg(scores[i] == want, "item %lld: got %.17g, want %.17g", (long long)i,
                      scores[i], want);
    }
}

/* An endpoint where nothing listens: bind a free port, then let it go. */
static void dead_endpoint(char *buf, size_t size) {
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_ROUTER);
    ck_assert_int_eq(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
    ck_assert_int_eq(zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, buf, &size), 0);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/* ---- round trips */

START_TEST(test_wire_round_trip) {
    server_t t;
    server_start(&t, NULL, NULL, 0);
    wire_client_t *c = client_new(wire_server_endpoint(t.srv), 0, NULL);
    err_t err = ERR_INIT;
    static const char nul_prompt[] = "a\0b", cjk[] = "日本語のテキスト 🙂 ünïcödé";
    const wire_item_t items[4] = {
        {"hello", 5, "world", 5},
        {nul_prompt, 3, "", 0},
        {cjk, sizeof cjk - 1, "\0\0", 2},
        {"hello", 5, "world!", 6},
    };
    double scores[4];
    ck_assert_msg(wire_score(c, items, 4, scores, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 4; i++)
        ck_assert(scores[i] == fake_score(items[i].prompt, items[i].prompt_len, items[i].response,
                                          items[i].response_len));
    ck_assert(scores[0] != scores[3]);
    ck_assert(scores[1] != fake_score("a", 1, "", 0)); /* the bytes after U+0000 arrived */

    ck_assert_msg(wire_ping(c, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(wire_score(c, items, 0, scores, &err), 0); /* nothing to do */

    json_t *info = wire_info(c, &err);
    ck_assert_msg(info != NULL, "%s", err.msg);
    ck_assert_str_eq(json_string_value(json_object_get(info, "model")), "/models/rm");
    ck_assert_str_eq(json_string_value(json_object_get(info, "template")), "rlhf-v1");
    ck_assert(json_real_value(json_object_get(info, "reward_bias")) == 0.25);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(info, "config"), "n_layer")), 2);
    const json_t *lim = json_object_get(info, "limits");
    ck_assert_int_eq(json_integer_value(json_object_get(lim, "max_items")), WIRE_MAX_ITEMS);
    ck_assert_int_eq(json_integer_value(json_object_get(lim, "max_text_bytes")), WIRE_MAX_TEXT);
    ck_assert_int_eq(json_integer_value(json_object_get(lim, "max_message_bytes")),
                     WIRE_MAX_MESSAGE);
    json_decref(info);
    wire_client_destroy(&c);
    ck_assert_ptr_null(c);
    server_stop(&t);
    ck_assert_int_ge(t.sum.pings, 1);
}
END_TEST

static void count_sent(void *ctx, bool sent, const char *body, size_t len) {
    (void)body, (void)len;
    *(int *)ctx += sent;
}

#define HAS(msg, part)                                                                             \
    ck_assert_msg(strstr((msg), (part)) != NULL, "'%s' lacks '%s'", (msg), (part))

/* A request larger than WIRE_MAX_ITEMS is split and reassembled in order; the split send and
 * receive let the caller work in between; bad texts are refused before anything is sent; the
 * scorer's failure comes back as the server's error and the client stays usable. */
START_TEST(test_wire_chunks_and_split) {
    server_t t;
    server_start(&t, NULL, NULL, 0);
    wire_client_t *c = client_new(wire_server_endpoint(t.srv), 0, NULL);
    err_t err = ERR_INIT;
    enum { N = 3 * WIRE_MAX_ITEMS + 17 };
    owned_item_t *own = calloc(N, sizeof *own);
    wire_item_t *items = calloc(N, sizeof *items);
    double *scores = calloc(N, sizeof *scores);
    for (int64_t i = 0; i < N; i++) make_item(&own[i], i, 1), items[i] = own[i].item;
    ck_assert_msg(wire_send_score(c, items, N, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(wire_send_score(c, items, 1, &err), -1); /* one call at a time */
    ck_assert_str_eq(err.msg, "wire_send_score: the last request was not received");
    err_clear(&err);
    ck_assert_int_eq(wire_ping(c, &err), -1);
    err_clear(&err);
    memset(items, 0, N * sizeof *items); /* the client copied what it needs */
    usleep(20000);                       /* the caller's own work */
    ck_assert_msg(wire_recv_scores(c, scores, &err) == 0, "%s", err.msg);
    check_scores(own, scores, N);
    ck_assert_int_eq(wire_recv_scores(c, scores, &err), -1);
    ck_assert_str_eq(err.msg, "wire_recv_scores: no request was sent");

    /* texts the server would refuse never leave */
    char *big = calloc(WIRE_MAX_TEXT + 1, 1);
    memset(big, 'x', WIRE_MAX_TEXT + 1);
    wire_item_t bad[2] = {{"ok", 2, "ok", 2}, {"ok", 2, big, WIRE_MAX_TEXT + 1}};
    err_clear(&err);
    ck_assert_int_eq(wire_score(c, bad, 2, scores, &err), -1);
    ck_assert_str_eq(err.msg, "items[1].response is 65537 bytes, over the limit of 65536");
    bad[1] = (wire_item_t){"ab\xff", 3, "ok", 2};
    err_clear(&err);
    ck_assert_int_eq(wire_score(c, bad, 2, scores, &err), -1);
    ck_assert_str_eq(err.msg, "items[1].prompt: invalid UTF-8");
    /* the largest text allowed goes through */
    bad[1] = (wire_item_t){big, WIRE_MAX_TEXT, "ok", 2};
    err_clear(&err);
    ck_assert_msg(wire_score(c, bad, 2, scores, &err) == 0, "%s", err.msg);
    ck_assert(scores[1] == fake_score(big, WIRE_MAX_TEXT, "ok", 2));

    /* a bad item anywhere stops the whole call before any chunk leaves */
    int sent = 0;
    wire_client_opts_t to = {
        .endpoints = wire_server_endpoint(t.srv), .trace = count_sent, .trace_ctx = &sent};
    wire_client_t *tc = wire_client_new(&to, &err);
    ck_assert_ptr_nonnull(tc);
    own[N - 1].item.response = "\xc0\xaf"; /* an overlong '/' */
    own[N - 1].item.response_len = 2;
    for (int64_t i = 0; i < N; i++) items[i] = own[i].item;
    err_clear(&err);
    ck_assert_int_eq(wire_score(tc, items, N, scores, &err), -1);
    ck_assert_str_eq(err.msg, "items[784].response: invalid UTF-8");
    ck_assert_int_eq(sent, 0);
    ck_assert_msg(wire_ping(tc, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(sent, 1);
    wire_client_destroy(&tc);

    /* a non-finite score cannot be written in JSON: an error reply */
    wire_item_t nan_item = {"NaN", 3, "r", 1};
    err_clear(&err);
    ck_assert_int_eq(wire_score(c, &nan_item, 1, scores, &err), -1);
    HAS(err.msg, ": server error: the scorer returned a non-finite score");

    /* the scorer fails: an error reply, then business as usual */
    t.fail_on_len = 13;
    err_clear(&err);
    wire_item_t boom = {"thirteen byte", 13, "r", 1};
    ck_assert_int_eq(wire_score(c, &boom, 1, scores, &err), -1);
    ck_assert_msg(strstr(err.msg, ": server error: fake scorer: prompt of 13 bytes") != NULL, "%s",
                  err.msg);
    err_clear(&err);
    ck_assert_msg(wire_score(c, items, 0, scores, &err) == 0, "%s", err.msg);
    ck_assert_msg(wire_score(c, &own[5].item, 1, scores, &err) == 0, "%s", err.msg);
    check_scores(&own[5], scores, 1);
    wire_client_destroy(&c);
    server_stop(&t);
    free(big);
    free(own);
    free(items);
    free(scores);
}
END_TEST

/* ---- 8 clients at once: every request gets its own scores, and the server batched */

typedef struct {
    const char *endpoint;
    int salt;
    int ok;
} worker_t;

static void *worker_main(void *arg) {
    worker_t *w = arg;
    wire_client_opts_t o = {.endpoints = w->endpoint, .timeout_ms = 5000};
    err_t err = ERR_INIT;
    wire_client_t *c = wire_client_new(&o, &err);
    owned_item_t own[40];
    wire_item_t items[40];
    double scores[40];
    w->ok = c != NULL;
    for (int r = 0; r < 20 && w->ok; r++) {
        int64_t n = 1 + (w->salt * 31 + r * 17) % 40;
        for (int64_t i = 0; i < n; i++)
            make_item(&own[i], i + r * 100, w->salt), items[i] = own[i].item;
        w->ok = wire_score(c, items, n, scores, &err) == 0;
        for (int64_t i = 0; w->ok && i < n; i++)
            w->ok = scores[i] == fake_score(items[i].prompt, items[i].prompt_len, items[i].response,
                                            items[i].response_len);
    }
    if (!w->ok) fprintf(stderr, "worker %d: %s\n", w->salt, err.msg);
    wire_client_destroy(&c);
    return NULL;
}

START_TEST(test_wire_concurrent_clients) {
    server_t t;
    server_start(&t, NULL, NULL, 0);
    t.delay_us = 2000; /* a scoring call takes a while, so requests arrive together */
    enum { W = 8 };
    pthread_t th[W];
    worker_t w[W];
    for (int i = 0; i < W; i++) {
        w[i] = (worker_t){wire_server_endpoint(t.srv), i + 1, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < W; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(w[i].ok, "worker %d failed", i);
    }
    server_stop(&t);
    ck_assert_int_eq(t.sum.requests, W * 20);
    ck_assert_int_eq(t.sum.total_requests, W * 20);
    ck_assert_int_gt(t.sum.multi_batches, 0); /* some calls held several requests */
    ck_assert_int_lt(t.sum.batches, W * 20);
    ck_assert_int_le(t.sum.batch_items_max, WIRE_BATCH_ITEMS + 40);
    ck_assert_int_eq(t.sum.errors, 0);
    ck_assert_int_gt(t.reports, 0);
}
END_TEST

/* ---- malformed messages from a raw DEALER */

typedef struct {
    const void *data;
    size_t len;
} frame_t;

/* Sends the frames and returns the reply body as JSON (caller decrefs); fails the test when
 * no reply comes within 2 s or it is not [empty][JSON]. */
static void raw_send(void *sock, const frame_t *frames, int n) {
    for (int i = 0; i < n; i++)
        ck_assert_int_ge(zmq_send(sock, frames[i].data, frames[i].len, i + 1 < n ? ZMQ_SNDMORE : 0),
                         0);
}

/* Receives one reply body as JSON (caller decrefs); fails the test when no reply comes within
 * 2 s or it is not exactly [empty][JSON]. */
static json_t *raw_recv(void *sock) {
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    ck_assert_msg(zmq_poll(&it, 1, 2000) == 1, "no reply");
    zmq_msg_t m[2];
    for (int i = 0; i < 2; i++) {
        zmq_msg_init(&m[i]);
        ck_assert_int_ge(zmq_msg_recv(&m[i], sock, 0), 0);
        ck_assert_int_eq(zmq_msg_more(&m[i]), i == 0);
    }
    ck_assert_uint_eq(zmq_msg_size(&m[0]), 0);
    json_error_t jerr;
    json_t *d = json_loadb(zmq_msg_data(&m[1]), zmq_msg_size(&m[1]), JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(d != NULL, "reply is not JSON: %s", jerr.text);
    zmq_msg_close(&m[0]);
    zmq_msg_close(&m[1]);
    return d;
}

/* Sends the frames and returns the reply (see raw_recv). */
static json_t *raw_call(void *sock, const frame_t *frames, int n) {
    raw_send(sock, frames, n);
    return raw_recv(sock);
}

/* Sends one body after the empty delimiter; returns the reply's error text, asserting the
 * reply is an error whose id is want_id (NULL = null). Static buffer. */
static const char *raw_error(void *sock, const char *body, size_t len, const char *want_id) {
    static char msg[512];
    frame_t f[2] = {{"", 0}, {body, len}};
    json_t *d = raw_call(sock, f, 2);
    ck_assert_str_eq(json_string_value(json_object_get(d, "type")), "error");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "v")), 1);
    const json_t *id = json_object_get(d, "id");
    if (want_id)
        ck_assert_str_eq(json_string_value(id), want_id);
    else
        ck_assert_msg(json_is_null(id), "id should be null");
    snprintf(msg, sizeof msg, "%s", json_string_value(json_object_get(d, "error")));
    json_decref(d);
    return msg;
}

static void *raw_socket(void *ctx, const char *endpoint) {
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(s, endpoint), 0);
    return s;
}

static void malformed_bodies(void *s) {
    static const struct {
        const char *body, *id, *error;
    } cases[] = {
        {"{", NULL, "invalid JSON: "},
        {"", NULL, "invalid JSON: "},
        {"[1,2]", NULL, "not a JSON object"},
        {"42", NULL, "not a JSON object"},
        {"{\"type\":\"ping\",\"id\":\"a\"}", "a", "missing \"v\""},
        {"{\"v\":\"1\",\"type\":\"ping\",\"id\":\"a\"}", "a", "\"v\" must be an integer"},
        {"{\"v\":2,\"type\":\"ping\",\"id\":\"a\"}", "a",
         "unsupported version 2 (this server speaks v 1)"},
        {"{\"v\":1.0,\"type\":\"ping\",\"id\":\"a\"}", "a", "\"v\" must be an integer"},
        {"{\"v\":1,\"id\":\"a\"}", "a", "missing \"type\""},
        {"{\"v\":1,\"type\":5,\"id\":\"a\"}", "a", "\"type\" must be a string"},
        {"{\"v\":1,\"type\":\"dance\",\"id\":\"a\"}", "a",
         "unknown type \"dance\" (expected score, info or ping)"},
        {"{\"v\":1,\"type\":\"pi\\u0000ng\",\"id\":\"a\"}", "a", "unknown type \"pi\""},
        {"{\"v\":1,\"type\":\"ping\"}", NULL, "missing \"id\""},
        {"{\"v\":1,\"type\":\"ping\",\"id\":[1]}", NULL,
         "\"id\" must be a string of at most 256 bytes or an integer"},
        {"{\"v\":1,\"type\":\"ping\",\"id\":1.5}", NULL, "\"id\" must be a string"},
        {"{\"v\":1,\"type\":\"ping\",\"id\":\"a\",\"x\":1}", "a", "unknown field \"x\""},
        {"{\"v\":1,\"type\":\"ping\",\"id\":\"a\",\"v\":1}", NULL,
         "invalid JSON: duplicate object key"},
        {"{\"v\":1,\"type\":\"ping\",\"id\":\"\xff\"}", NULL, "invalid UTF-8: "},
        {"{\"v\":1,\"type\":\"ping\",\"id\":\"\xc3\x28\"}", NULL, "invalid UTF-8: "},
        {"{\"v\":1,\"type\":\"score\",\"id\":\"a\"}", "a", "missing \"items\""},
        {"{\"v\":1,\"type\":\"score\",\"id\":\"a\",\"items\":{}}", "a",
         "\"items\" must be an array"},
        {"{\"v\":1,\"type\":\"score\",\"id\":\"a\",\"items\":[3]}", "a",
         "items[0] must be an object"},
        {"{\"v\":1,\"type\":\"score\",\"id\":\"a\",\"items\":[{\"prompt\":\"p\",\"response\":\"r\"}"
         ",{\"response\":\"r\"}]}",
         "a", "items[1]: missing \"prompt\""},
        {"{\"v\":1,\"type\":\"score\",\"id\":\"a\",\"items\":[{\"prompt\":\"p\"}]}", "a",
         "items[0]: missing \"response\""},
        {"{\"v\":1,\"type\":\"score\",\"id\":\"a\",\"items\":[{\"prompt\":7,\"response\":\"r\"}]}",
         "a", "items[0].prompt must be a string"},
        {"{\"v\":1,\"type\":\"score\",\"id\":\"a\",\"items\":[{\"prompt\":\"p\",\"response\":null}]"
         "}",
         "a", "items[0].response must be a string"},
        {"{\"v\":1,\"type\":\"score\",\"id\":\"a\",\"items\":[{\"prompt\":\"p\",\"response\":\"r\","
         "\"w\":1}]}",
         "a", "items[0]: unknown field \"w\""},
        {"{\"v\":1,\"type\":\"score\",\"id\":\"a\",\"items\":[],\"extra\":true}", "a",
         "unknown field \"extra\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *msg = raw_error(s, cases[i].body, strlen(cases[i].body), cases[i].id);
        ck_assert_msg(strstr(msg, cases[i].error) != NULL, "case %zu: '%s' lacks '%s'", i, msg,
                      cases[i].error);
    }
}

/* Bodies at and over the limits: too many items, a text too long, a message too big. */
static void oversized_bodies(void *s) {
    size_t cap = WIRE_MAX_MESSAGE + 2;
    char *b = malloc(cap);
    int n = snprintf(b, cap, "{\"v\":1,\"type\":\"score\",\"id\":7,\"items\":[");
    for (int i = 0; i <= WIRE_MAX_ITEMS; i++)
        n += snprintf(b + n, cap - (size_t)n, "%s{\"prompt\":\"p\",\"response\":\"r\"}",
                      i ? "," : "");
    n += snprintf(b + n, cap - (size_t)n, "]}");
    frame_t f[2] = {{"", 0}, {b, (size_t)n}};
    json_t *d = raw_call(s, f, 2);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "id")), 7);
    ck_assert_str_eq(json_string_value(json_object_get(d, "error")),
                     "too many items: 257 (limit 256 per request)");
    json_decref(d);

    n = snprintf(b, cap, "{\"v\":1,\"type\":\"score\",\"id\":\"t\",\"items\":[{\"prompt\":\"");
    memset(b + n, 'y', WIRE_MAX_TEXT + 1);
    n += WIRE_MAX_TEXT + 1;
    n += snprintf(b + n, cap - (size_t)n, "\",\"response\":\"r\"}]}");
    ck_assert_str_eq(raw_error(s, b, (size_t)n, "t"),
                     "items[0].prompt is 65537 bytes, over the limit of 65536");

    memset(b, ' ', cap);
    memcpy(b, "{\"v\":1,\"type\":\"ping\",\"id\":1}", 28);
    ck_assert_str_eq(raw_error(s, b, WIRE_MAX_MESSAGE + 1, NULL),
                     "message of 8388609 bytes is over the limit of 8388608 bytes");
    /* exactly at the limit is fine */
    frame_t g[2] = {{"", 0}, {b, WIRE_MAX_MESSAGE}};
    d = raw_call(s, g, 2);
    ck_assert_str_eq(json_string_value(json_object_get(d, "type")), "pong");
    json_decref(d);
    free(b);
}

static void bad_frames(void *s) {
    static const char ping[] = "{\"v\":1,\"type\":\"ping\",\"id\":1}";
    const struct {
        frame_t f[3];
        int n;
        const char *error;
    } cases[] = {
        {{{ping, sizeof ping - 1}}, 1, "got 1: a DEALER must send the empty frame itself"},
        {{{"", 0}}, 1, "expected 2 frames (an empty delimiter, then one JSON body), got 1"},
        {{{"", 0}, {ping, sizeof ping - 1}, {"x", 1}}, 3, "got 3"},
        {{{"", 0}, {"", 0}, {ping, sizeof ping - 1}}, 3, "got 3"},
        {{{"x", 1}, {ping, sizeof ping - 1}},
         2,
         "the first frame must be the empty delimiter, got 1 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *d = raw_call(s, cases[i].f, cases[i].n);
        ck_assert_str_eq(json_string_value(json_object_get(d, "type")), "error");
        ck_assert(json_is_null(json_object_get(d, "id")));
        HAS(json_string_value(json_object_get(d, "error")), cases[i].error);
        json_decref(d);
    }
}

/* Thousands of random messages: random bytes, random frame layouts, and valid requests with
 * one byte changed. Each gets exactly one reply: an error naming the problem, or (when the
 * change left a valid request) its proper answer. */
static void random_messages(void *s, int count) {
    static const char valid[] = "{\"v\":1,\"type\":\"score\",\"id\":\"r\",\"items\":[{\"prompt\":"
                                "\"p\",\"response\":\"r\"}]}";
    enum { WINDOW = 100 }; /* in flight at once: well under the sockets' queue limits */
    uint64_t x = 88172645463325252ull;
    char buf[512];
    int errors = 0;
    for (int k = 0; k < count; k += WINDOW) {
        for (int j = 0; j < WINDOW; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int mode = (int)(x % 4);
            size_t len = (size_t)(x >> 8) % sizeof buf;
            frame_t f[3] = {{"", 0}, {buf, len}, {buf, 3}};
            int n = 2;
            if (mode <= 1) {
                for (size_t i = 0; i < len; i++)
                    x ^= x << 13, x ^= x >> 7, x ^= x << 17, buf[i] = (char)x;
                if (mode == 1) buf[0] = '{';
            } else {
                memcpy(buf, valid, sizeof valid);
                len = sizeof valid - 1;
                buf[(x >> 20) % len] = (char)(x >> 40);
                f[1].len = len;
                if (mode == 3 && (x >> 50) % 4 == 0) n = 3;              /* an extra frame */
                if (mode == 3 && (x >> 50) % 4 == 1) f[0] = f[1], n = 1; /* no delimiter */
            }
            raw_send(s, f, n);
        }
        for (int j = 0; j < WINDOW; j++) {
            json_t *d = raw_recv(s);
            const char *type = json_string_value(json_object_get(d, "type"));
            ck_assert_ptr_nonnull(type);
            if (!strcmp(type, "error")) {
                const char *e = json_string_value(json_object_get(d, "error"));
                ck_assert(e && strlen(e) > 5);
                errors++;
            } else {
                ck_assert_msg(!strcmp(type, "scores") || !strcmp(type, "pong") ||
                                  !strcmp(type, "info"),
                              "type %s", type);
            }
            json_decref(d);
        }
    }
    ck_assert_int_gt(errors, count / 2);
}

START_TEST(test_wire_malformed) {
    server_t t;
    server_start(&t, NULL, NULL, 200);
    void *ctx = zmq_ctx_new(), *s = raw_socket(ctx, wire_server_endpoint(t.srv));
    malformed_bodies(s);
    bad_frames(s);
    oversized_bodies(s);
    random_messages(s, 3000);
    zmq_close(s);
    zmq_ctx_term(ctx);

    /* and it still scores */
    wire_client_t *c = client_new(wire_server_endpoint(t.srv), 0, NULL);
    owned_item_t own[5];
    wire_item_t items[5];
    double scores[5];
    err_t err = ERR_INIT;
    for (int i = 0; i < 5; i++) make_item(&own[i], i, 9), items[i] = own[i].item;
    ck_assert_msg(wire_score(c, items, 5, scores, &err) == 0, "%s", err.msg);
    check_scores(own, scores, 5);
    wire_client_destroy(&c);
    server_stop(&t);
    ck_assert_int_gt(t.sum.errors, 1000);
}
END_TEST

/* A scorer that fails on one request of a batch: only that request gets the error, the
 * requests batched with it get their scores (the batch is scored again request by request). */
START_TEST(test_wire_bad_request_alone) {
    server_t t;
    server_start(&t, NULL, NULL, 300000); /* 300 ms to gather: the three arrive together */
    t.fail_on_len = 13;
    void *ctx = zmq_ctx_new(), *s = raw_socket(ctx, wire_server_endpoint(t.srv));
    static const char *const bodies[3] = {
        "{\"v\":1,\"type\":\"score\",\"id\":\"a\",\"items\":[{\"prompt\":\"p\",\"response\":\"r\"}]"
        "}",
        "{\"v\":1,\"type\":\"score\",\"id\":\"b\",\"items\":[{\"prompt\":\"q\",\"response\":\"r\"},"
        "{\"prompt\":\"thirteen byte\",\"response\":\"r\"}]}",
        "{\"v\":1,\"type\":\"score\",\"id\":\"c\",\"items\":[{\"prompt\":\"s\",\"response\":\"t\"}]"
        "}"};
    for (int i = 0; i < 3; i++)
        raw_send(s, (frame_t[2]){{"", 0}, {bodies[i], strlen(bodies[i])}}, 2);
    int scored = 0, failed = 0;
    for (int i = 0; i < 3; i++) {
        json_t *d = raw_recv(s);
        const char *type = json_string_value(json_object_get(d, "type"));
        const char *id = json_string_value(json_object_get(d, "id"));
        if (!strcmp(id, "b")) {
            ck_assert_str_eq(type, "error");
            HAS(json_string_value(json_object_get(d, "error")), "fake scorer: prompt of 13 bytes");
            failed++;
        } else {
            ck_assert_str_eq(type, "scores");
            const char *p = !strcmp(id, "a") ? "p" : "s", *r = !strcmp(id, "a") ? "r" : "t";
            ck_assert(json_real_value(json_array_get(json_object_get(d, "scores"), 0)) ==
                      fake_score(p, 1, r, 1));
            scored++;
        }
        json_decref(d);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    const int64_t calls = t.calls;
    server_stop(&t);
    ck_assert_int_eq(scored, 2);
    ck_assert_int_eq(failed, 1);
    ck_assert_int_eq(calls, 4); /* the batch, then each of its three requests alone */
    ck_assert_int_eq(t.sum.multi_batches, 1);
}
END_TEST

/* ---- no server, a restarted server, a dead endpoint among live ones */

START_TEST(test_wire_no_server) {
    char ep[256], want[512];
    dead_endpoint(ep, sizeof ep);
    warn_t w = {0};
    wire_client_t *c = client_new(ep, 3, &w);
    wire_item_t it = {"p", 1, "r", 1};
    double score;
    err_t err = ERR_INIT;
    double t0 = now_s();
    ck_assert_int_eq(wire_score(c, &it, 1, &score, &err), WIRE_ETIMEOUT);
    double took = now_s() - t0;
    snprintf(want, sizeof want, "no reply from %s after 3 tries (0.2 s each)", ep);
    ck_assert_str_eq(err.msg, want);
    ck_assert_msg(took > 0.55 && took < 5.0, "took %.3f s", took);
    ck_assert_int_eq(w.warnings, 2);
    snprintf(want, sizeof want, "%s: no reply in 0.2 s, reconnecting and retrying (try 3 of 3)",
             ep);
    ck_assert_str_eq(w.last, want);
    err_clear(&err);
    ck_assert_int_eq(wire_ping(c, &err), WIRE_ETIMEOUT);
    wire_client_destroy(&c);

    /* the default timing, in the words the user sees */
    wire_client_opts_t o = {.endpoints = "tcp://127.0.0.1:5555", .tries = 1, .timeout_ms = 1};
    c = wire_client_new(&o, &err);
    err_clear(&err);
    ck_assert_int_eq(wire_ping(c, &err), WIRE_ETIMEOUT);
    ck_assert_str_eq(err.msg, "no reply from tcp://127.0.0.1:5555 after 1 tries (0.001 s each)");
    wire_client_destroy(&c);
}
END_TEST

typedef struct {
    server_t *t;
    char endpoint[256];
    int delay_ms;
} restart_t;

static void *restart_main(void *arg) {
    restart_t *r = arg;
    usleep((useconds_t)r->delay_ms * 1000);
    server_start(r->t, r->endpoint, NULL, 0);
    return NULL;
}

START_TEST(test_wire_server_restart) {
    server_t t;
    server_start(&t, NULL, NULL, 0);
    restart_t r = {&t, "", 500};
    snprintf(r.endpoint, sizeof r.endpoint, "%s", wire_server_endpoint(t.srv));
    warn_t w = {0};
    wire_client_t *c = client_new(r.endpoint, 10, &w);
    owned_item_t own[3];
    wire_item_t items[3];
    double scores[3];
    err_t err = ERR_INIT;
    for (int i = 0; i < 3; i++) make_item(&own[i], i, 4), items[i] = own[i].item;
    ck_assert_msg(wire_score(c, items, 3, scores, &err) == 0, "%s", err.msg);
    server_stop(&t); /* the server goes away ... */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, restart_main, &r), 0); /* ... and comes back */
    memset(scores, 0, sizeof scores);
    ck_assert_msg(wire_score(c, items, 3, scores, &err) == 0, "%s", err.msg);
    check_scores(own, scores, 3);
    ck_assert_int_ge(w.warnings, 1); /* the outage was reported */
    HAS(w.last, "no reply in 0.2 s, reconnecting and retrying");
    pthread_join(th, NULL);
    wire_client_destroy(&c);
    server_stop(&t);
}
END_TEST

START_TEST(test_wire_dead_endpoint) {
    server_t t;
    server_start(&t, NULL, NULL, 0);
    char dead[256], list[600];
    err_t err = ERR_INIT;
    dead_endpoint(dead, sizeof dead);
    snprintf(list, sizeof list, "%s,%s", dead, wire_server_endpoint(t.srv));
    warn_t w = {0};
    wire_client_opts_t o = {.endpoints = list, .timeout_ms = 500, .warn = on_warn, .warn_ctx = &w};
    wire_client_t *c = wire_client_new(&o, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    owned_item_t own[40];
    wire_item_t items[40];
    double scores[40];
    double t0 = now_s();
    for (int r = 0; r < 10; r++) {
        for (int i = 0; i < 40; i++) make_item(&own[i], i, 100 + r), items[i] = own[i].item;
        ck_assert_msg(wire_score(c, items, 40, scores, &err) == 0, "%s", err.msg);
        check_scores(own, scores, 40);
        ck_assert_msg(wire_ping(c, &err) == 0, "%s", err.msg);
    }
    double took = now_s() - t0;
    /* one timeout (0.5 s) to learn it is dead; without skipping, every other chunk waits */
    ck_assert_msg(took < 4.0, "took %.3f s: the dead endpoint was not skipped", took);
    ck_assert_int_eq(w.warnings, 1);
    ck_assert_int_ge(w.warnings, 1);
    HAS(w.last, dead);
    wire_client_destroy(&c);

    /* both dead: the message names both */
    char dead2[256], want[1024];
    dead_endpoint(dead2, sizeof dead2);
    snprintf(list, sizeof list, "%s,%s", dead, dead2);
    c = client_new(list, 2, NULL);
    ck_assert_int_eq(wire_ping(c, &err), WIRE_ETIMEOUT);
    snprintf(want, sizeof want, "no reply from %s after 2 tries (0.2 s each)", list);
    ck_assert_str_eq(err.msg, want);
    wire_client_destroy(&c);
    server_stop(&t);
}
END_TEST

/* ---- CURVE and binding */

static char tmpdir[64];
#define PATH 512 /* path buffers: tmpdir + a name or two */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf-test-wire-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_path(char *buf, const char *name) {
    snprintf(buf, PATH, "%s/%s", tmpdir, name);
    return buf;
}

START_TEST(test_wire_curve) {
    char keys[PATH], other[PATH], path[PATH * 2], spub[PATH * 2], ckey[PATH * 2], opub[PATH * 2];
    err_t err = ERR_INIT;
    ck_assert_msg(wire_keygen(tmp_path(keys, "keys"), &err) == 0, "%s", err.msg);
    ck_assert_msg(wire_keygen(tmp_path(other, "other"), &err) == 0, "%s", err.msg);
    static const char *const names[] = {"server.key", "server.pub", "client.key", "client.pub"};
    for (int i = 0; i < 4; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", keys, names[i]);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        ck_assert_int_eq(st.st_size, 41);
    }
    ck_assert_int_eq(wire_keygen(keys, &err), -1); /* never overwrites */
    snprintf(path, sizeof path, "%s/server.key: exists", keys);
    ck_assert_str_eq(err.msg, path);

    server_t t;
    snprintf(path, sizeof path, "%s/server.key", keys);
    server_start(&t, NULL, path, 0);
    snprintf(spub, sizeof spub, "%s/server.pub", keys);
    snprintf(ckey, sizeof ckey, "%s/client.key", keys);
    snprintf(opub, sizeof opub, "%s/server.pub", other);
    wire_item_t it = {"p", 1, "r", 1};
    double score = 0;
    struct {
        const char *server_key, *client_key;
        int rc;
    } cases[] = {
        {spub, ckey, 0},             /* the right keys */
        {spub, NULL, 0},             /* a fresh client pair: CURVE without client allow-list */
        {opub, ckey, WIRE_ETIMEOUT}, /* a wrong server key: the handshake fails */
        {NULL, NULL, WIRE_ETIMEOUT}, /* plain text to a CURVE server */
    };
    for (int i = 0; i < 4; i++) {
        wire_client_opts_t o = {.endpoints = wire_server_endpoint(t.srv),
                                .timeout_ms = FAST_MS,
                                .tries = 2,
                                .server_key = cases[i].server_key,
                                .client_key = cases[i].client_key};
        err_clear(&err);
        wire_client_t *c = wire_client_new(&o, &err);
        ck_assert_msg(c != NULL, "%s", err.msg);
        ck_assert_msg(wire_score(c, &it, 1, &score, &err) == cases[i].rc, "case %d: %s", i,
                      err.msg);
        if (cases[i].rc == 0)
            ck_assert(score == fake_score("p", 1, "r", 1));
        else
            HAS(err.msg, "no reply from tcp://127.0.0.1:");
        wire_client_destroy(&c);
    }
    server_stop(&t);

    /* a key file that is not a key */
    FILE *f = fopen(tmp_path(path, "bad.pub"), "w");
    fputs("not a key\n", f);
    fclose(f);
    wire_client_opts_t o = {.endpoints = "tcp://127.0.0.1:5555", .server_key = path};
    err_clear(&err);
    ck_assert_ptr_null(wire_client_new(&o, &err));
    HAS(err.msg, "bad.pub: not a CURVE key (expected 40 z85 characters");
}
END_TEST

static int never_called(void *ctx, const wire_item_t *items, int64_t n, double *scores,
                        err_t *err) {
    (void)ctx, (void)items, (void)n, (void)scores;
    return err_setf(err, "never");
}

START_TEST(test_wire_bind_needs_curve_off_loopback) {
    static const char *const public_eps[] = {"tcp://0.0.0.0:*", "tcp://*:*", "tcp://eth0:*",
                                             "tcp://127.0.0.1.evil.com:*"};
    for (int i = 0; i < 4; i++) {
        wire_server_opts_t o = {.endpoint = public_eps[i], .score = never_called};
        err_t err = ERR_INIT;
        char want[512];
        ck_assert_ptr_null(wire_server_new(&o, &err));
        snprintf(want, sizeof want,
                 "%s: binding a non-loopback address needs CURVE keys (a server.key from "
                 "wire_keygen)",
                 public_eps[i]);
        ck_assert_str_eq(err.msg, want);
    }
    static const char *const local_eps[] = {"tcp://127.0.0.1:*", "ipc:///tmp/rlhf-test-wire.ipc"};
    for (int i = 0; i < 2; i++) {
        wire_server_opts_t o = {.endpoint = local_eps[i], .score = never_called};
        err_t err = ERR_INIT;
        wire_server_t *s = wire_server_new(&o, &err);
        ck_assert_msg(s != NULL, "%s: %s", local_eps[i], err.msg);
        wire_server_destroy(&s);
    }
    char keys[PATH], path[PATH * 2];
    err_t err = ERR_INIT;
    ck_assert_int_eq(wire_keygen(tmp_path(keys, "k"), &err), 0);
    snprintf(path, sizeof path, "%s/server.key", keys);
    wire_server_opts_t o = {
        .endpoint = "tcp://0.0.0.0:*", .secret_key = path, .score = never_called};
    wire_server_t *s = wire_server_new(&o, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    wire_server_destroy(&s);
    /* reserved keys in info, a missing callback */
    json_t *info = json_pack("{s:i}", "id", 3);
    wire_server_opts_t bad = {.score = never_called, .info = info};
    ck_assert_ptr_null(wire_server_new(&bad, &err));
    ck_assert_str_eq(err.msg, "wire_server_new: info may not hold \"id\"");
    json_decref(info);
}
END_TEST

/* SIGTERM (the cli stop flag) ends the loop. Forked tests only: the flag is process-wide. */
START_TEST(test_wire_stop_signal) {
    const char *fork_env = getenv("CK_FORK");
    if (fork_env && !strcmp(fork_env, "no")) return;
    server_t t;
    server_start(&t, NULL, NULL, 0);
    err_t err = ERR_INIT;
    ck_assert_int_eq(cli_install_stop_handler(&err), 0);
    int devnull = dup(2);
    freopen("/dev/null", "w", stderr); /* the handler says "stopping ..." */
    raise(SIGTERM);
    double t0 = now_s();
    pthread_join(t.thread, NULL);
    dup2(devnull, 2);
    ck_assert_msg(now_s() - t0 < 1.0, "server did not stop");
    ck_assert_int_eq(t.rc, 0);
    wire_server_destroy(&t.srv);
    json_decref(t.info);
}
END_TEST

/* ---- capture for the schema test */

typedef struct {
    const char *dir; /* NULL = count only */
    int seen[7];
} capture_t;

static const char *const kinds[7] = {"score", "scores", "info", "info-reply",
                                     "ping",  "pong",   "error"};

static void capture(capture_t *cap, bool sent, const char *body, size_t len) {
    json_t *d = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    const char *type = json_string_value(json_object_get(d, "type"));
    ck_assert_ptr_nonnull(type);
    char kind[32];
    snprintf(kind, sizeof kind, "%s%s", type, !sent && !strcmp(type, "info") ? "-reply" : "");
    int k = 0;
    while (k < 7 && strcmp(kinds[k], kind)) k++;
    ck_assert_int_lt(k, 7);
    if (cap->dir) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s-%d.json", cap->dir, kind, cap->seen[k]);
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(body, 1, len, f);
        fclose(f);
    }
    cap->seen[k]++;
    json_decref(d);
}

static void on_trace(void *ctx, bool sent, const char *body, size_t len) {
    capture(ctx, sent, body, len);
}

START_TEST(test_wire_capture) {
    capture_t cap = {getenv("WIRE_CAPTURE_DIR"), {0}};
    server_t t;
    server_start(&t, NULL, NULL, 0);
    wire_client_opts_t o = {.endpoints = wire_server_endpoint(t.srv),
                            .timeout_ms = FAST_MS,
                            .trace = on_trace,
                            .trace_ctx = &cap};
    err_t err = ERR_INIT;
    wire_client_t *c = wire_client_new(&o, &err);
    ck_assert_ptr_nonnull(c);
    const wire_item_t items[3] = {{"Say hi.", 7, "hi", 2}, {"n\0l", 3, "日本", 6}, {"", 0, "", 0}};
    double scores[3];
    ck_assert_msg(wire_score(c, items, 3, scores, &err) == 0, "%s", err.msg);
    ck_assert_msg(wire_ping(c, &err) == 0, "%s", err.msg);
    json_t *info = wire_info(c, &err);
    ck_assert_ptr_nonnull(info);
    json_decref(info);
    wire_client_destroy(&c);
    /* error replies, with and without an id */
    void *ctx = zmq_ctx_new(), *s = raw_socket(ctx, wire_server_endpoint(t.srv));
    static const char *const bad[] = {"{\"v\":2,\"type\":\"ping\",\"id\":5}", "[]",
                                      "{\"v\":1,\"type\":\"ping\",\"id\":\"x\",\"z\":0}"};
    for (int i = 0; i < 3; i++) {
        frame_t f[2] = {{"", 0}, {bad[i], strlen(bad[i])}};
        json_t *d = raw_call(s, f, 2);
        char *text = json_dumps(d, JSON_COMPACT);
        capture(&cap, false, text, strlen(text));
        free(text);
        json_decref(d);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    server_stop(&t);
    for (int k = 0; k < 7; k++) ck_assert_msg(cap.seen[k] > 0, "no %s captured", kinds[k]);
}
END_TEST

Suite *test_wire_suite(void);
Suite *test_wire_suite(void) {
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("wire");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_wire_round_trip);
    tcase_add_test(tc, test_wire_chunks_and_split);
    tcase_add_test(tc, test_wire_concurrent_clients);
    tcase_add_test(tc, test_wire_malformed);
    tcase_add_test(tc, test_wire_bad_request_alone);
    tcase_add_test(tc, test_wire_no_server);
    tcase_add_test(tc, test_wire_server_restart);
    tcase_add_test(tc, test_wire_dead_endpoint);
    tcase_add_test(tc, test_wire_curve);
    tcase_add_test(tc, test_wire_bind_needs_curve_off_loopback);
    tcase_add_test(tc, test_wire_stop_signal);
    suite_add_tcase(s, tc);
    /* its own case, so tests/it/wire_schema.sh can run just this one (CK_RUN_CASE=capture) */
    TCase *cap = tcase_create("capture");
    tcase_add_test(cap, test_wire_capture);
    suite_add_tcase(s, cap);
    return s;
}
