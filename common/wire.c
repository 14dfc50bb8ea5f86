/* common/wire.c: the ZeroMQ wire (see wire.h and schemas/wire.md).
 *
 * The workload that shaped it: ppo sends a few hundred rollouts per iteration, in requests of
 * up to WIRE_MAX_ITEMS items, from one or several processes; the reward model scores a batch
 * of B rows in little more time than one row, so the server gathers whatever arrives within
 * WIRE_BATCH_WAIT_US into one call. Requests are never split on the server (a request's scores
 * come from one call), so the batch buffers hold max(batch_items, WIRE_MAX_ITEMS) items.
 *
 * Server messages on the ROUTER: [identity][empty][body]. Every message gets exactly one reply
 * (scores, pong, info or error); only an unreadable socket stops the loop. The client is the
 * zguide's Lazy Pirate on DEALER sockets (a DEALER, unlike REQ, may have several requests in
 * flight, which chunking and several endpoints need), so it sends the empty frame itself. */
#include "wire.h"
#include "cli.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define KEY_Z85       41  /* 40 z85 characters + NUL */
#define MAX_IDENTITY  256 /* ROUTER identities are at most 255 bytes */
#define MAX_ID_BYTES  256 /* a string "id" longer than this is refused (it is echoed back) */
#define MAX_ENDPOINTS 64  /* client: a job remembers the endpoints it tried in a 64-bit mask */
#define IDLE_POLL_MS  100 /* server: how often an idle loop looks at the stop flag */
#define DEAD_TIMEOUTS 10  /* client: a silent endpoint is skipped for this many timeouts */
#define JSON_FLAGS    (JSON_COMPACT | JSON_REAL_PRECISION(17)) /* 17 digits: doubles round-trip */
#define JSON_LOAD     (JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- Keys */

static int write_key(const char *dir, const char *name, const char *z85, err_t *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return err_setf(err, "%s: %s", path, errno == EEXIST ? "exists" : strerror(errno));
    char line[KEY_Z85 + 1];
    int len = snprintf(line, sizeof line, "%s\n", z85);
    int rc = fchmod(fd, 0600) == 0 && write(fd, line, (size_t)len) == len && fsync(fd) == 0;
    if (!rc) err_setf(err, "%s: %s", path, strerror(errno));
    close(fd);
    return rc ? 0 : -1;
}

int wire_keygen(const char *dir, err_t *err) {
    static const char *const names[] = {"server.key", "server.pub", "client.key", "client.pub"};
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return err_setf(err, "%s: %s", dir, strerror(errno));
    for (int i = 0; i < 4; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0) return err_setf(err, "%s: exists", path);
    }
    char pub[2][KEY_Z85], sec[2][KEY_Z85];
    for (int k = 0; k < 2; k++)
        if (zmq_curve_keypair(pub[k], sec[k]) != 0)
            return err_setf(err, "zmq_curve_keypair: %s", zmq_strerror(errno));
    for (int k = 0; k < 2; k++) {
        if (write_key(dir, names[2 * k], sec[k], err)) return -1;
        if (write_key(dir, names[2 * k + 1], pub[k], err)) return -1;
    }
    return 0;
}

/* Reads a key file: 40 z85 characters, surrounding whitespace allowed. */
static int read_key(const char *path, char key[KEY_Z85], err_t *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_setf(err, "%s: %s", path, strerror(errno));
    char buf[128];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = buf;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    size_t len = strcspn(p, " \t\r\n");
    uint8_t raw[32];
    if (len != KEY_Z85 - 1) goto bad;
    memcpy(key, p, len);
    key[len] = '\0';
    if (!zmq_z85_decode(raw, key)) goto bad;
    return 0;
bad:
    return err_setf(err, "%s: not a CURVE key (expected 40 z85 characters, as wire_keygen writes)",
                    path);
}

/* ---- Endpoints */

bool wire_endpoint_is_local(const char *ep) {
    if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9)) return true;
    if (strncmp(ep, "tcp://", 6)) return false;
    const char *host = ep + 6, *colon = strrchr(host, ':');
    size_t len = colon ? (size_t)(colon - host) : strlen(host);
    if (len == 9 && !strncmp(host, "localhost", 9)) return true;
    if (len == 5 && !strncmp(host, "[::1]", 5)) return true;
    if (len < 4 || strncmp(host, "127.", 4)) return false;
    for (size_t i = 4; i < len; i++)
        if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9'))) return false;
    return true;
}

/* ---- Requests: parsing and checking one JSON body (the server side) */

typedef enum { REQ_BAD, REQ_SCORE, REQ_INFO, REQ_PING } req_type_t;

static int check_fields(const json_t *obj, const char *const *allowed, const char *where,
                        err_t *err) {
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        bool ok = false;
        for (int i = 0; allowed[i]; i++) ok = ok || !strcmp(key, allowed[i]);
        if (!ok) return err_setf(err, "%sunknown field \"%.40s\"", where, key);
    }
    return 0;
}

static int check_text(const json_t *item, const char *field, size_t i, err_t *err) {
    const json_t *t = json_object_get(item, field);
    if (!t) return err_setf(err, "items[%zu]: missing \"%s\"", i, field);
    if (!json_is_string(t)) return err_setf(err, "items[%zu].%s must be a string", i, field);
    size_t len = json_string_length(t);
    if (len > WIRE_MAX_TEXT)
        return err_setf(err, "items[%zu].%s is %zu bytes, over the limit of %d", i, field, len,
                        WIRE_MAX_TEXT);
    return 0;
}

static int check_items(const json_t *items, err_t *err) {
    static const char *const item_fields[] = {"prompt", "response", NULL};
    if (!items) return err_setf(err, "missing \"items\"");
    if (!json_is_array(items)) return err_setf(err, "\"items\" must be an array");
    size_t n = json_array_size(items);
    if (n > WIRE_MAX_ITEMS)
        return err_setf(err, "too many items: %zu (limit %d per request)", n, WIRE_MAX_ITEMS);
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_array_get(items, i);
        char where[48];
        snprintf(where, sizeof where, "items[%zu]: ", i);
        if (!json_is_object(it)) return err_setf(err, "items[%zu] must be an object", i);
        if (check_text(it, "prompt", i, err) || check_text(it, "response", i, err) ||
            check_fields(it, item_fields, where, err))
            return -1;
    }
    return 0;
}

/* Parses body[len]. On success returns the type with *doc (caller decrefs) and *id (borrowed
 * from doc). On failure returns REQ_BAD with err set; *doc may still be set (decref it) and
 * *id is the request's id when it could be read (else NULL: the error reply says null). */
static req_type_t parse_request(const char *body, size_t len, json_t **doc, const json_t **id,
                                err_t *err) {
    static const char *const plain_fields[] = {"v", "type", "id", NULL};
    static const char *const score_fields[] = {"v", "type", "id", "items", NULL};
    json_error_t jerr;
    *id = NULL;
    json_t *d = *doc = json_loadb(body, len, JSON_LOAD, &jerr);
    if (!d) {
        if (json_error_code(&jerr) == json_error_invalid_utf8)
            err_setf(err, "invalid UTF-8: %s (byte %d)", jerr.text, jerr.position);
        else
            err_setf(err, "invalid JSON: %s (byte %d)", jerr.text, jerr.position);
        return REQ_BAD;
    }
    if (!json_is_object(d)) return err_setf(err, "not a JSON object"), REQ_BAD;
    const json_t *jid = json_object_get(d, "id"), *v = json_object_get(d, "v"),
                 *type = json_object_get(d, "type");
    bool id_ok = jid && (json_is_integer(jid) ||
                         (json_is_string(jid) && json_string_length(jid) <= MAX_ID_BYTES));
    if (id_ok) *id = jid;
    if (!v) return err_setf(err, "missing \"v\""), REQ_BAD;
    if (!json_is_integer(v)) return err_setf(err, "\"v\" must be an integer"), REQ_BAD;
    if (json_integer_value(v) != WIRE_VERSION)
        return err_setf(err,
                        "unsupported version %" JSON_INTEGER_FORMAT " (this server speaks v %d)",
                        json_integer_value(v), WIRE_VERSION),
               REQ_BAD;
    if (!type) return err_setf(err, "missing \"type\""), REQ_BAD;
    if (!json_is_string(type)) return err_setf(err, "\"type\" must be a string"), REQ_BAD;
    const char *t = json_string_value(type);
    req_type_t kind = !strcmp(t, "score")  ? REQ_SCORE
                      : !strcmp(t, "info") ? REQ_INFO
                      : !strcmp(t, "ping") ? REQ_PING
                                           : REQ_BAD;
    if (kind == REQ_BAD || json_string_length(type) != strlen(t))
        return err_setf(err, "unknown type \"%.40s\" (expected score, info or ping)", t), REQ_BAD;
    if (!jid) return err_setf(err, "missing \"id\""), REQ_BAD;
    if (!id_ok)
        return err_setf(err, "\"id\" must be a string of at most %d bytes or an integer",
                        MAX_ID_BYTES),
               REQ_BAD;
    if (check_fields(d, kind == REQ_SCORE ? score_fields : plain_fields, "", err)) return REQ_BAD;
    if (kind == REQ_SCORE && check_items(json_object_get(d, "items"), err)) return REQ_BAD;
    return kind;
}

/* ---- Server */

typedef struct {
    uint8_t identity[MAX_IDENTITY]; /* the ROUTER's routing id of the sender */
    size_t identity_len;
    json_t *doc;      /* the parsed request (owned) */
    const json_t *id; /* borrowed from doc */
    int64_t n;        /* items */
    double t_recv;    /* monotonic seconds when read off the socket */
} request_t;

typedef struct {
    int64_t requests, items, batches, multi_batches, batch_items_max, pings, infos, errors;
} counts_t;

struct wire_server {
    void *zctx, *sock;
    char endpoint[256]; /* as bound (ZMQ_LAST_ENDPOINT) */
    wire_score_fn score;
    void *score_ctx;
    const json_t *info;  /* borrowed */
    int64_t cap;         /* items one scoring call may hold */
    int64_t batch_items; /* gather until this many items */
    int batch_wait_us;
    double metrics_every_s;
    wire_metrics_fn metrics;
    void *metrics_ctx;
    atomic_int stop; /* set by wire_server_stop */
    request_t *reqs; /* the batch in hand: reqs[0..n_reqs) (cap entries) */
    int64_t n_reqs, n_items;
    request_t pending; /* a request read but left for the next batch (did not fit) */
    bool has_pending;
    wire_item_t *items; /* [cap] */
    double *scores;     /* [cap] */
    counts_t period, total;
    double *wait_ms, *lat_ms; /* [WIRE_METRICS_SAMPLES] rings of the period */
    double *sorted;           /* [WIRE_METRICS_SAMPLES] scratch for percentiles */
    int64_t n_samples;        /* samples in the period (ring holds the latest) */
    double t_period;          /* start of the period */
};

static bool stopping(const wire_server_t *s) {
    return atomic_load(&s->stop) || cli_stop_requested();
}

void wire_server_stop(wire_server_t *s) {
    if (s) atomic_store(&s->stop, 1);
}

const char *wire_server_endpoint(const wire_server_t *s) {
    return s->endpoint;
}

static int server_socket(wire_server_t *s, const char *endpoint, const char *key_path, err_t *err) {
    char secret[KEY_Z85];
    if (key_path && read_key(key_path, secret, err)) return -1;
    if (!key_path && !wire_endpoint_is_local(endpoint))
        return err_setf(err,
                        "%s: binding a non-loopback address needs CURVE keys (a server.key from "
                        "wire_keygen)",
                        endpoint);
    if (!(s->zctx = zmq_ctx_new()) || !(s->sock = zmq_socket(s->zctx, ZMQ_ROUTER)))
        return err_setf(err, "zmq: cannot create a ROUTER socket: %s", zmq_strerror(errno));
    int zero = 0, one = 1;
    int64_t max_frame = WIRE_MAX_FRAME;
    zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &max_frame, sizeof max_frame);
    if (key_path && (zmq_setsockopt(s->sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
                     zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, secret, KEY_Z85)))
        return err_setf(err, "%s: cannot turn CURVE on: %s", key_path, zmq_strerror(errno));
    if (zmq_bind(s->sock, endpoint))
        return err_setf(err, "%s: cannot bind: %s", endpoint, zmq_strerror(errno));
    size_t len = sizeof s->endpoint;
    if (zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &len))
        snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
    return 0;
}

wire_server_t *wire_server_new(const wire_server_opts_t *opts, err_t *err) {
    if (!opts->score) return err_setf(err, "wire_server_new: no scoring callback"), NULL;
    if (opts->info && !json_is_object(opts->info))
        return err_setf(err, "wire_server_new: info must be a JSON object"), NULL;
    static const char *const reserved[] = {"v", "type", "id", "limits"};
    for (int i = 0; opts->info && i < 4; i++)
        if (json_object_get(opts->info, reserved[i]))
            return err_setf(err, "wire_server_new: info may not hold \"%s\"", reserved[i]), NULL;
    wire_server_t *s = calloc(1, sizeof *s);
    if (!s) return err_setf(err, "out of memory"), NULL;
    s->score = opts->score;
    s->score_ctx = opts->score_ctx;
    s->info = opts->info;
    s->batch_items = opts->batch_items > 0 ? opts->batch_items : WIRE_BATCH_ITEMS;
    s->batch_wait_us = opts->batch_wait_us ? opts->batch_wait_us : WIRE_BATCH_WAIT_US;
    s->cap = s->batch_items > WIRE_MAX_ITEMS ? s->batch_items : WIRE_MAX_ITEMS;
    s->metrics_every_s = opts->metrics_every_s;
    s->metrics = opts->metrics;
    s->metrics_ctx = opts->metrics_ctx;
    s->reqs = calloc((size_t)s->cap, sizeof *s->reqs);
    s->items = calloc((size_t)s->cap, sizeof *s->items);
    s->scores = calloc((size_t)s->cap, sizeof *s->scores);
    s->wait_ms = calloc(WIRE_METRICS_SAMPLES, sizeof *s->wait_ms);
    s->lat_ms = calloc(WIRE_METRICS_SAMPLES, sizeof *s->lat_ms);
    s->sorted = calloc(WIRE_METRICS_SAMPLES, sizeof *s->sorted);
    if (!s->reqs || !s->items || !s->scores || !s->wait_ms || !s->lat_ms || !s->sorted) {
        err_setf(err, "out of memory");
        goto fail;
    }
    if (server_socket(s, opts->endpoint ? opts->endpoint : WIRE_ENDPOINT, opts->secret_key, err))
        goto fail;
    return s;
fail:
    wire_server_destroy(&s);
    return NULL;
}

void wire_server_destroy(wire_server_t **sp) {
    wire_server_t *s = *sp;
    if (!s) return;
    for (int64_t i = 0; i < s->n_reqs; i++) json_decref(s->reqs[i].doc);
    if (s->has_pending) json_decref(s->pending.doc);
    if (s->sock) zmq_close(s->sock);
    if (s->zctx) zmq_ctx_term(s->zctx);
    free(s->reqs);
    free(s->items);
    free(s->scores);
    free(s->wait_ms);
    free(s->lat_ms);
    free(s->sorted);
    free(s);
    *sp = NULL;
}

/* Sends [identity][empty][reply as JSON] and drops reply. A peer that left, or is not reading
 * (its queue is full), loses its reply: the ROUTER drops it instead of blocking the others. */
static void send_reply(wire_server_t *s, const uint8_t *identity, size_t identity_len,
                       json_t *reply) {
    char *text = reply ? json_dumps(reply, JSON_FLAGS) : NULL;
    json_decref(reply);
    if (!text) return; /* out of memory: the client times out and retries */
    if (zmq_send(s->sock, identity, identity_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
        zmq_send(s->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(s->sock, text, strlen(text), ZMQ_DONTWAIT);
    free(text);
}

static void send_error(wire_server_t *s, const uint8_t *identity, size_t identity_len,
                       const json_t *id, const char *msg) {
    s->period.errors++;
    s->total.errors++;
    send_reply(s, identity, identity_len,
               json_pack("{s:i, s:s, s:O?, s:s}", "v", WIRE_VERSION, "type", "error", "id",
                         (json_t *)id, "error", msg));
}

static json_t *info_reply(const wire_server_t *s, const json_t *id) {
    json_t *r = json_pack("{s:i, s:s, s:O, s:{s:i, s:i, s:i, s:i}}", "v", WIRE_VERSION, "type",
                          "info", "id", (json_t *)id, "limits", "max_message_bytes",
                          WIRE_MAX_MESSAGE, "max_items", WIRE_MAX_ITEMS, "max_text_bytes",
                          WIRE_MAX_TEXT, "batch_items", (int)s->batch_items);
    if (r && s->info) json_object_update(r, (json_t *)s->info);
    return r;
}

/* The frames of one message as they came off the ROUTER. */
typedef struct {
    request_t req;    /* identity and t_recv */
    int frames;       /* counting the identity */
    size_t delim_len; /* bytes of frame 2 (should be the empty delimiter) */
    size_t body_len;  /* bytes of frame 3 */
    zmq_msg_t body;   /* frame 3 when frames >= 3 and it is within WIRE_MAX_MESSAGE */
    bool have_body;
} inmsg_t;

/* Reads one whole message without waiting: 1 read, 0 nothing there, -1 socket error. */
static int recv_message(wire_server_t *s, inmsg_t *m, err_t *err) {
    zmq_msg_t f;
    zmq_msg_init(&f);
    memset(m, 0, sizeof *m);
    if (zmq_msg_recv(&f, s->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&f);
        if (errno == EAGAIN || errno == EINTR) return 0;
        return err_setf(err, "%s: receive: %s", s->endpoint, zmq_strerror(errno));
    }
    m->req.t_recv = now_s();
    m->req.identity_len = zmq_msg_size(&f) < MAX_IDENTITY ? zmq_msg_size(&f) : MAX_IDENTITY;
    memcpy(m->req.identity, zmq_msg_data(&f), m->req.identity_len);
    int more = zmq_msg_more(&f);
    zmq_msg_close(&f);
    for (m->frames = 1; more; m->frames++) {
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, s->sock, 0) < 0) { /* the rest of a message is always there */
            zmq_msg_close(&f);
            return err_setf(err, "%s: receive: %s", s->endpoint, zmq_strerror(errno));
        }
        more = zmq_msg_more(&f);
        if (m->frames == 1) m->delim_len = zmq_msg_size(&f);
        if (m->frames == 2) {
            m->body_len = zmq_msg_size(&f);
            if (m->body_len <= WIRE_MAX_MESSAGE) {
                zmq_msg_init(&m->body);
                zmq_msg_move(&m->body, &f);
                m->have_body = true;
            }
        }
        zmq_msg_close(&f);
    }
    return 1;
}

/* Checks the frames; NULL when they are right, else what is wrong. */
static const char *frames_problem(const inmsg_t *m, char *buf, size_t size) {
    int got = m->frames - 1; /* as the client sent them */
    if (got != 2)
        snprintf(buf, size, "expected 2 frames (an empty delimiter, then one JSON body), got %d%s",
                 got, got == 1 ? ": a DEALER must send the empty frame itself" : "");
    else if (m->delim_len)
        snprintf(buf, size, "the first frame must be the empty delimiter, got %zu bytes",
                 m->delim_len);
    else if (m->body_len > WIRE_MAX_MESSAGE)
        snprintf(buf, size, "message of %zu bytes is over the limit of %d bytes", m->body_len,
                 WIRE_MAX_MESSAGE);
    else
        return NULL;
    return buf;
}

/* Handles one message read off the socket: answers it at once (ping, info, empty score, any
 * error) or adds its score request to the batch in hand, or to pending when it does not fit. */
static void take_message(wire_server_t *s, inmsg_t *m) {
    char buf[256];
    const char *problem = frames_problem(m, buf, sizeof buf);
    request_t *r = &m->req;
    err_t e = ERR_INIT;
    if (problem) {
        if (m->have_body) zmq_msg_close(&m->body);
        send_error(s, r->identity, r->identity_len, NULL, problem);
        return;
    }
    req_type_t kind = parse_request(zmq_msg_data(&m->body), m->body_len, &r->doc, &r->id, &e);
    zmq_msg_close(&m->body);
    if (kind == REQ_BAD) send_error(s, r->identity, r->identity_len, r->id, e.msg);
    if (kind == REQ_PING) {
        s->period.pings++;
        send_reply(
            s, r->identity, r->identity_len,
            json_pack("{s:i, s:s, s:O}", "v", WIRE_VERSION, "type", "pong", "id", (json_t *)r->id));
    }
    if (kind == REQ_INFO) {
        s->period.infos++;
        send_reply(s, r->identity, r->identity_len, info_reply(s, r->id));
    }
    if (kind == REQ_SCORE) r->n = (int64_t)json_array_size(json_object_get(r->doc, "items"));
    if (kind == REQ_SCORE && r->n == 0) {
        send_reply(s, r->identity, r->identity_len,
                   json_pack("{s:i, s:s, s:O, s:[]}", "v", WIRE_VERSION, "type", "scores", "id",
                             (json_t *)r->id, "scores"));
        kind = REQ_BAD; /* answered: drop it below */
    }
    if (kind != REQ_SCORE) {
        json_decref(r->doc);
        return;
    }
    if (s->n_reqs == 0 || s->n_items + r->n <= s->batch_items) {
        s->reqs[s->n_reqs++] = *r;
        s->n_items += r->n;
    } else {
        s->pending = *r;
        s->has_pending = true;
    }
}

/* One scoring call; a failure always carries a message. */
static int call_scorer(wire_server_t *s, const wire_item_t *items, int64_t n, double *scores,
                       err_t *err) {
    int rc = s->score(s->score_ctx, items, n, scores, err);
    if (rc != 0 && !err->msg[0]) err_setf(err, "the scorer failed without saying why");
    return rc;
}

/* Scores the batch in hand with one call and replies to each request with its own scores. */
static void score_batch(wire_server_t *s) {
    int64_t k = 0;
    for (int64_t r = 0; r < s->n_reqs; r++) {
        const json_t *items = json_object_get(s->reqs[r].doc, "items");
        for (size_t i = 0; i < json_array_size(items); i++, k++) {
            const json_t *p = json_object_get(json_array_get(items, i), "prompt");
            const json_t *q = json_object_get(json_array_get(items, i), "response");
            s->items[k] = (wire_item_t){json_string_value(p), json_string_length(p),
                                        json_string_value(q), json_string_length(q)};
        }
    }
    err_t e = ERR_INIT;
    double t_call = now_s();
    int rc = call_scorer(s, s->items, k, s->scores, &e);
    s->period.batches++;
    s->period.multi_batches += s->n_reqs > 1;
    if (k > s->period.batch_items_max) s->period.batch_items_max = k;
    for (int64_t r = 0, first = 0; r < s->n_reqs; first += s->reqs[r].n, r++) {
        request_t *q = &s->reqs[r];
        err_t one = ERR_INIT;
        int qrc = rc;
        const char *why = e.msg;
        if (rc != 0 && s->n_reqs > 1) { /* which request failed? each alone (row-independent) */
            qrc = call_scorer(s, s->items + first, q->n, s->scores + first, &one);
            why = one.msg;
        }
        json_t *arr = json_array();
        for (int64_t i = 0; qrc == 0 && i < q->n && arr; i++) {
            if (!isfinite(s->scores[first + i])) {
                json_decref(arr);
                arr = NULL;
            } else
                json_array_append_new(arr, json_real(s->scores[first + i]));
        }
        if (qrc != 0 || !arr) {
            json_decref(arr);
            send_error(s, q->identity, q->identity_len, q->id,
                       qrc ? why : "the scorer returned a non-finite score");
        } else {
            send_reply(s, q->identity, q->identity_len,
                       json_pack("{s:i, s:s, s:O, s:o}", "v", WIRE_VERSION, "type", "scores", "id",
                                 (json_t *)q->id, "scores", arr));
            s->period.requests++;
            s->period.items += q->n;
        }
        double t_sent = now_s();
        int64_t slot = s->n_samples++ % WIRE_METRICS_SAMPLES;
        s->wait_ms[slot] = (t_call - q->t_recv) * 1e3;
        s->lat_ms[slot] = (t_sent - q->t_recv) * 1e3;
        json_decref(q->doc);
    }
    s->n_reqs = 0;
    s->n_items = 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentiles p50, p90, p99 and the max of the period's samples in ring. */
static void percentiles(wire_server_t *s, const double *ring, double out[4]) {
    int64_t n = s->n_samples < WIRE_METRICS_SAMPLES ? s->n_samples : WIRE_METRICS_SAMPLES;
    static const double ps[3] = {0.50, 0.90, 0.99};
    memset(out, 0, 4 * sizeof *out);
    if (n == 0) return;
    memcpy(s->sorted, ring, (size_t)n * sizeof *ring);
    qsort(s->sorted, (size_t)n, sizeof *s->sorted, cmp_double);
    for (int i = 0; i < 3; i++) {
        int64_t rank = (int64_t)ceil(ps[i] * (double)n);
        out[i] = s->sorted[rank > 0 ? rank - 1 : 0];
    }
    out[3] = s->sorted[n - 1];
}

static void report(wire_server_t *s, double now) {
    counts_t *p = &s->period;
    s->total.requests += p->requests;
    s->total.items += p->items;
    if (s->metrics) {
        wire_metrics_t m = {.period_s = now - s->t_period,
                            .requests = p->requests,
                            .items = p->items,
                            .batches = p->batches,
                            .multi_batches = p->multi_batches,
                            .batch_items_max = p->batch_items_max,
                            .batch_items_mean =
                                p->batches ? (double)p->items / (double)p->batches : 0.0,
                            .pings = p->pings,
                            .infos = p->infos,
                            .errors = p->errors,
                            .total_requests = s->total.requests,
                            .total_items = s->total.items,
                            .total_errors = s->total.errors};
        double w[4], l[4];
        percentiles(s, s->wait_ms, w);
        percentiles(s, s->lat_ms, l);
        m.wait_p50_ms = w[0], m.wait_p90_ms = w[1], m.wait_p99_ms = w[2], m.wait_max_ms = w[3];
        m.latency_p50_ms = l[0], m.latency_p90_ms = l[1], m.latency_p99_ms = l[2];
        m.latency_max_ms = l[3];
        s->metrics(s->metrics_ctx, &m);
    }
    memset(p, 0, sizeof *p);
    s->n_samples = 0;
    s->t_period = now;
}

/* Waits up to timeout_ms for the socket to become readable: 1 yes, 0 no (or a signal), -1. */
static int wait_readable(wire_server_t *s, int timeout_ms, err_t *err) {
    zmq_pollitem_t it = {s->sock, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&it, 1, timeout_ms);
    if (rc < 0 && errno != EINTR)
        return err_setf(err, "%s: poll: %s", s->endpoint, zmq_strerror(errno));
    return rc > 0;
}

/* Reads messages until the batch holds batch_items items, a request did not fit, or
 * batch_wait_us passed since the first one. */
static int gather(wire_server_t *s, err_t *err) {
    double t_end = now_s() + s->batch_wait_us * 1e-6;
    while (!s->has_pending && s->n_items < s->batch_items && !stopping(s)) {
        inmsg_t m;
        int rc = recv_message(s, &m, err);
        if (rc < 0) return -1;
        if (rc > 0) {
            take_message(s, &m);
            continue;
        }
        double left = t_end - now_s();
        if (left <= 0) break;
        if (wait_readable(s, (int)ceil(left * 1e3), err) < 0) return -1;
    }
    return 0;
}

int wire_server_run(wire_server_t *s, err_t *err) {
    int rc = 0;
    s->t_period = now_s();
    while (!stopping(s) || s->has_pending) {
        if (s->has_pending) {
            s->reqs[s->n_reqs++] = s->pending;
            s->n_items = s->pending.n;
            s->has_pending = false;
        } else {
            double due = s->metrics_every_s > 0 ? s->t_period + s->metrics_every_s - now_s() : 1e9;
            int wait =
                due < IDLE_POLL_MS * 1e-3 ? (int)ceil((due > 0 ? due : 0) * 1e3) : IDLE_POLL_MS;
            inmsg_t m;
            if ((rc = wait_readable(s, wait, err)) < 0) break;
            if ((rc = recv_message(s, &m, err)) < 0) break;
            if (rc > 0) take_message(s, &m);
        }
        if (s->n_reqs > 0 && s->batch_wait_us > 0 && (rc = gather(s, err)) < 0) break;
        if (s->n_reqs > 0) score_batch(s);
        rc = 0;
        double now = now_s();
        if (s->metrics_every_s > 0 && now - s->t_period >= s->metrics_every_s) report(s, now);
    }
    if (rc < 0) return -1;
    report(s, now_s());
    return 0;
}

/* ---- Client */

typedef struct {
    char *url;
    void *sock;        /* a DEALER connected to url; reopened after a silent try */
    double dead_until; /* skipped for new sends until then (it went silent) */
} endpoint_t;

typedef enum { JOB_SCORE, JOB_PING, JOB_INFO } job_kind_t;

/* One request of the call in flight, with what it takes to send it again. */
typedef struct {
    int64_t id; /* the request's "id" */
    job_kind_t kind;
    char *body; /* the JSON body (owned) */
    size_t len;
    int64_t first, n; /* score: its items are the call's [first, first + n) */
    int ep;           /* endpoint it was last sent to */
    int tries;        /* sends that counted as a try */
    uint64_t tried;   /* bit e: sent to endpoint e */
    double deadline;  /* monotonic seconds when this try is over */
    bool done;
} job_t;

struct wire_client {
    void *zctx;
    endpoint_t *eps;
    int n_eps;
    int rr; /* round-robin cursor */
    int timeout_ms, tries;
    bool curve;
    char server_pub[KEY_Z85], client_pub[KEY_Z85], client_sec[KEY_Z85];
    void (*warn)(void *, const char *);
    void *warn_ctx;
    void (*trace)(void *, bool, const char *, size_t);
    void *trace_ctx;
    int64_t next_id;
    job_t *jobs; /* the call in flight: jobs[0..n_jobs) */
    int64_t n_jobs, cap_jobs, left;
    bool in_score;  /* a wire_send_score awaits its wire_recv_scores */
    int64_t call_n; /* items of that call */
    double *got;    /* [call_n] scores as they arrive */
    json_t *info;   /* info reply of the call */
};

static int ep_open(wire_client_t *c, endpoint_t *ep, err_t *err) {
    int zero = 0;
    int64_t max_frame = WIRE_MAX_FRAME;
    if (!(ep->sock = zmq_socket(c->zctx, ZMQ_DEALER)))
        return err_setf(err, "zmq: cannot create a DEALER socket: %s", zmq_strerror(errno));
    zmq_setsockopt(ep->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(ep->sock, ZMQ_MAXMSGSIZE, &max_frame, sizeof max_frame);
    if (c->curve && (zmq_setsockopt(ep->sock, ZMQ_CURVE_SERVERKEY, c->server_pub, KEY_Z85) ||
                     zmq_setsockopt(ep->sock, ZMQ_CURVE_PUBLICKEY, c->client_pub, KEY_Z85) ||
                     zmq_setsockopt(ep->sock, ZMQ_CURVE_SECRETKEY, c->client_sec, KEY_Z85)))
        return err_setf(err, "%s: cannot turn CURVE on: %s", ep->url, zmq_strerror(errno));
    if (zmq_connect(ep->sock, ep->url))
        return err_setf(err, "%s: cannot connect: %s", ep->url, zmq_strerror(errno));
    return 0;
}

static int parse_endpoints(wire_client_t *c, const char *list, err_t *err) {
    if (!list || !*list) return err_setf(err, "no server endpoint given");
    int n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    if (n > MAX_ENDPOINTS)
        return err_setf(err, "%d endpoints: at most %d are supported", n, MAX_ENDPOINTS);
    if (!(c->eps = calloc((size_t)n, sizeof *c->eps))) return err_setf(err, "out of memory");
    for (const char *p = list; c->n_eps < n; c->n_eps++) {
        size_t len = strcspn(p, ",");
        if (len == 0) return err_setf(err, "%s: empty endpoint in the list", list);
        if (!(c->eps[c->n_eps].url = strndup(p, len))) return err_setf(err, "out of memory");
        p += len + (p[len] == ',');
    }
    return 0;
}

static int client_keys(wire_client_t *c, const wire_client_opts_t *o, err_t *err) {
    if (!o->server_key) return 0;
    c->curve = true;
    if (read_key(o->server_key, c->server_pub, err)) return -1;
    if (!o->client_key) {
        if (zmq_curve_keypair(c->client_pub, c->client_sec))
            return err_setf(err, "zmq_curve_keypair: %s", zmq_strerror(errno));
        return 0;
    }
    if (read_key(o->client_key, c->client_sec, err)) return -1;
    if (zmq_curve_public(c->client_pub, c->client_sec))
        return err_setf(err, "%s: %s", o->client_key, zmq_strerror(errno));
    return 0;
}

wire_client_t *wire_client_new(const wire_client_opts_t *opts, err_t *err) {
    wire_client_t *c = calloc(1, sizeof *c);
    if (!c) return err_setf(err, "out of memory"), NULL;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : WIRE_TIMEOUT_MS;
    c->tries = opts->tries > 0 ? opts->tries : WIRE_TRIES;
    c->warn = opts->warn;
    c->warn_ctx = opts->warn_ctx;
    c->trace = opts->trace;
    c->trace_ctx = opts->trace_ctx;
    c->next_id = 1;
    if (parse_endpoints(c, opts->endpoints, err) || client_keys(c, opts, err)) goto fail;
    if (!(c->zctx = zmq_ctx_new())) {
        err_setf(err, "zmq: cannot create a context: %s", zmq_strerror(errno));
        goto fail;
    }
    for (int e = 0; e < c->n_eps; e++)
        if (ep_open(c, &c->eps[e], err)) goto fail;
    return c;
fail:
    wire_client_destroy(&c);
    return NULL;
}

static void end_call(wire_client_t *c) {
    for (int64_t j = 0; j < c->n_jobs; j++) free(c->jobs[j].body);
    c->n_jobs = c->left = 0;
    c->in_score = false;
}

void wire_client_destroy(wire_client_t **cp) {
    wire_client_t *c = *cp;
    if (!c) return;
    end_call(c);
    for (int e = 0; c->eps && e < c->n_eps; e++) {
        if (c->eps[e].sock) zmq_close(c->eps[e].sock);
        free(c->eps[e].url);
    }
    if (c->zctx) zmq_ctx_term(c->zctx);
    json_decref(c->info);
    free(c->eps);
    free(c->jobs);
    free(c->got);
    free(c);
    *cp = NULL;
}

/* The next endpoint by round robin that is not resting after a silence, preferring one other
 * than avoid (-1 = none); when all rest, the one whose rest ends first. */
static int pick_endpoint(wire_client_t *c, int avoid) {
    double now = now_s();
    int best = -1;
    for (int pass = 0; pass < 2 && best < 0; pass++)
        for (int k = 0; k < c->n_eps && best < 0; k++) {
            int e = (c->rr + k) % c->n_eps;
            if (c->eps[e].dead_until <= now && (e != avoid || pass == 1 || c->n_eps == 1)) best = e;
        }
    if (best >= 0) {
        c->rr = (best + 1) % c->n_eps;
        return best;
    }
    for (int e = 0; e < c->n_eps; e++)
        if (best < 0 || (e != avoid && c->eps[e].dead_until < c->eps[best].dead_until)) best = e;
    return best;
}

/* Sends job to an endpoint (not avoid, if another will do). A send the socket refuses (its
 * queue is full) is left to time out like a lost one. */
static void job_send(wire_client_t *c, job_t *job, int avoid, bool count_try) {
    int e = pick_endpoint(c, avoid);
    job->ep = e;
    job->tries += count_try;
    job->tried |= (uint64_t)1 << e;
    job->deadline = now_s() + c->timeout_ms * 1e-3;
    if (c->trace) c->trace(c->trace_ctx, true, job->body, job->len);
    if (zmq_send(c->eps[e].sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(c->eps[e].sock, job->body, job->len, ZMQ_DONTWAIT);
}

/* Adds a job to the call: a request of kind with items (stolen; NULL for ping/info). */
static int add_job(wire_client_t *c, job_kind_t kind, json_t *items, int64_t first, int64_t n,
                   err_t *err) {
    static const char *const types[] = {"score", "ping", "info"};
    if (c->n_jobs == c->cap_jobs) {
        int64_t cap = c->cap_jobs ? 2 * c->cap_jobs : 8;
        job_t *jobs = realloc(c->jobs, (size_t)cap * sizeof *jobs);
        if (!jobs) return json_decref(items), err_setf(err, "out of memory");
        c->jobs = jobs;
        c->cap_jobs = cap;
    }
    job_t *job = &c->jobs[c->n_jobs];
    *job = (job_t){.id = c->next_id++, .kind = kind, .first = first, .n = n};
    json_t *doc = json_pack("{s:i, s:s, s:I}", "v", WIRE_VERSION, "type", types[kind], "id",
                            (json_int_t)job->id);
    if (doc && items)
        json_object_set_new(doc, "items", items);
    else
        json_decref(items);
    job->body = doc ? json_dumps(doc, JSON_FLAGS) : NULL;
    json_decref(doc);
    if (!job->body) return err_setf(err, "out of memory");
    job->len = strlen(job->body);
    if (job->len > WIRE_MAX_MESSAGE) { /* cannot happen: chunks are sized by worst case */
        free(job->body);
        return err_setf(err, "request of %zu bytes is over the limit", job->len);
    }
    c->n_jobs++;
    c->left++;
    return 0;
}

/* Sends every job of the call (built first, so a bad item stops the call before anything
 * left). */
static void send_all(wire_client_t *c) {
    for (int64_t j = 0; j < c->n_jobs; j++) job_send(c, &c->jobs[j], -1, true);
}

/* The endpoints a job was sent to, comma-separated, for the give-up message. */
static void tried_list(const wire_client_t *c, const job_t *job, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int e = 0; e < c->n_eps; e++)
        if (job->tried >> e & 1 && used < size)
            used +=
                (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "", c->eps[e].url);
}

/* Handles one reply body from endpoint e: 1 a job finished, 0 dropped (stale or unreadable),
 * -1 the call failed (an error reply, a reply that breaks the protocol). */
static int take_reply(wire_client_t *c, int e, const char *body, size_t len, err_t *err) {
    json_t *d = json_loadb(body, len, JSON_LOAD, NULL);
    const json_t *id = json_object_get(d, "id"), *type = json_object_get(d, "type");
    const char *t = json_string_value(type);
    job_t *job = NULL;
    for (int64_t j = 0; json_is_integer(id) && j < c->n_jobs && !job; j++)
        if (c->jobs[j].id == json_integer_value(id) && !c->jobs[j].done) job = &c->jobs[j];
    int rc = 0;
    if (t && !strcmp(t, "error") && (job || json_is_null(id))) {
        const char *msg = json_string_value(json_object_get(d, "error"));
        rc = err_setf(err, "%s: server error: %s", c->eps[e].url, msg ? msg : "(no text)");
    } else if (!job || !t) {
        rc = 0; /* a stale reply (its request was answered or abandoned), or garbage */
    } else if (job->kind == JOB_SCORE) {
        const json_t *sc = json_object_get(d, "scores");
        if (strcmp(t, "scores") || (int64_t)json_array_size(sc) != job->n)
            rc = err_setf(err,
                          "%s: bad reply: expected %" PRId64 " scores, got type \"%.20s\" "
                          "with %zu",
                          c->eps[e].url, job->n, t, json_array_size(sc));
        for (int64_t i = 0; rc == 0 && i < job->n; i++) {
            const json_t *x = json_array_get(sc, (size_t)i);
            if (!json_is_number(x))
                rc = err_setf(err, "%s: bad reply: scores[%" PRId64 "] is not a number",
                              c->eps[e].url, i);
            else
                c->got[job->first + i] = json_number_value(x);
        }
        rc = rc ? rc : 1;
    } else if (strcmp(t, job->kind == JOB_PING ? "pong" : "info")) {
        rc = err_setf(err, "%s: bad reply: type \"%.20s\"", c->eps[e].url, t);
    } else {
        if (job->kind == JOB_INFO) json_decref(c->info), c->info = json_incref(d);
        rc = 1;
    }
    if (rc == 1) job->done = true, c->left--;
    json_decref(d);
    return rc;
}

/* Reads every reply waiting on endpoint e. */
static int drain(wire_client_t *c, int e, err_t *err) {
    for (;;) {
        zmq_msg_t f[2];
        int n = 0, more = 1;
        while (more) {
            zmq_msg_t x;
            zmq_msg_init(&x);
            if (zmq_msg_recv(&x, c->eps[e].sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&x);
                break;
            }
            more = zmq_msg_more(&x);
            if (n < 2) {
                zmq_msg_init(&f[n]);
                zmq_msg_move(&f[n++], &x);
            } else
                n = 3; /* a third frame: not ours, drop the message */
            zmq_msg_close(&x);
        }
        if (n == 0) return 0;
        int rc = 0;
        if (n == 2 && zmq_msg_size(&f[0]) == 0) {
            if (c->trace) c->trace(c->trace_ctx, false, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]));
            rc = take_reply(c, e, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), err);
        }
        for (int i = 0; i < (n < 2 ? n : 2); i++) zmq_msg_close(&f[i]);
        if (rc < 0) return -1;
    }
}

/* A try of a job ran out: give up after the last try; else reopen its endpoint's socket
 * (Lazy Pirate: a DEALER would survive, but a fresh connection is the sure way past a server
 * that restarted or a connection that is stuck), rest the endpoint, and send every job that
 * was on it again (to another endpoint when there is one). */
static int job_timeout(wire_client_t *c, job_t *job, err_t *err) {
    double each = c->timeout_ms * 1e-3, now = now_s();
    for (int64_t j = 0; j < c->n_jobs && job->tries < c->tries; j++) {
        job_t *o = &c->jobs[j]; /* a job timed out with it and has no try left */
        if (!o->done && o->ep == job->ep && o->deadline <= now && o->tries >= c->tries) job = o;
    }
    if (job->tries >= c->tries) {
        char list[1024];
        tried_list(c, job, list, sizeof list);
        err_setf(err, "no reply from %s after %d tries (%g s each)", list, c->tries, each);
        return WIRE_ETIMEOUT;
    }
    int e = job->ep;
    endpoint_t *ep = &c->eps[e];
    if (c->warn) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: no reply in %g s, reconnecting and retrying (try %d of %d)",
                 ep->url, each, job->tries + 1, c->tries);
        c->warn(c->warn_ctx, msg);
    }
    zmq_close(ep->sock);
    ep->sock = NULL;
    if (ep_open(c, ep, err)) return -1;
    ep->dead_until = now + DEAD_TIMEOUTS * each;
    for (int64_t j = 0; j < c->n_jobs; j++) {
        job_t *o = &c->jobs[j];
        if (!o->done && o->ep == e) job_send(c, o, e, o->deadline <= now);
    }
    return 0;
}

/* Waits for every job of the call: 0, WIRE_ETIMEOUT or -1. The call ends either way. */
static int run_call(wire_client_t *c, err_t *err) {
    zmq_pollitem_t items[MAX_ENDPOINTS];
    int rc = 0;
    while (c->left > 0 && rc == 0) {
        double now = now_s(), next = now + 3600;
        for (int64_t j = 0; j < c->n_jobs; j++)
            if (!c->jobs[j].done && c->jobs[j].deadline < next) next = c->jobs[j].deadline;
        for (int e = 0; e < c->n_eps; e++)
            items[e] = (zmq_pollitem_t){c->eps[e].sock, 0, ZMQ_POLLIN, 0};
        int wait = next > now ? (int)ceil((next - now) * 1e3) : 0;
        if (zmq_poll(items, c->n_eps, wait) < 0 && errno != EINTR) {
            rc = err_setf(err, "zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        for (int e = 0; e < c->n_eps && rc == 0; e++)
            if (items[e].revents & ZMQ_POLLIN) rc = drain(c, e, err);
        now = now_s();
        for (int64_t j = 0; j < c->n_jobs && rc == 0 && c->left > 0; j++)
            if (!c->jobs[j].done && c->jobs[j].deadline <= now)
                rc = job_timeout(c, &c->jobs[j], err);
    }
    end_call(c);
    return rc;
}

static int check_item_text(const char *text, size_t len, int64_t i, const char *field, json_t **out,
                           err_t *err) {
    if (len > WIRE_MAX_TEXT)
        return err_setf(err, "items[%" PRId64 "].%s is %zu bytes, over the limit of %d", i, field,
                        len, WIRE_MAX_TEXT);
    if (!(*out = json_stringn(text ? text : "", len)))
        return err_setf(err, "items[%" PRId64 "].%s: invalid UTF-8", i, field);
    return 0;
}

/* Worst-case bytes of an item in a body: jansson writes a control byte as \u00XX (6 bytes). */
static size_t item_cost(const wire_item_t *it) {
    return 6 * (it->prompt_len + it->response_len) + 32;
}

int wire_send_score(wire_client_t *c, const wire_item_t *items, int64_t n, err_t *err) {
    if (c->in_score) return err_setf(err, "wire_send_score: the last request was not received");
    if (n < 0) return err_setf(err, "wire_send_score: n = %" PRId64, n);
    double *got = realloc(c->got, (size_t)(n > 0 ? n : 1) * sizeof *got);
    if (!got) return err_setf(err, "out of memory");
    c->got = got;
    c->call_n = n;
    double now = now_s();
    int live = 0;
    for (int e = 0; e < c->n_eps; e++) live += c->eps[e].dead_until <= now;
    int64_t per = (n + (live ? live : 1) - 1) / (live ? live : 1);
    per = per < 1 ? 1 : per > WIRE_MAX_ITEMS ? WIRE_MAX_ITEMS : per;
    for (int64_t i = 0; i < n;) {
        json_t *arr = json_array();
        int64_t first = i;
        size_t bytes = 64;
        while (arr && i < n && i - first < per &&
               (i == first || bytes + item_cost(&items[i]) <= WIRE_MAX_MESSAGE)) {
            json_t *p = NULL, *q = NULL;
            if (check_item_text(items[i].prompt, items[i].prompt_len, i, "prompt", &p, err) ||
                check_item_text(items[i].response, items[i].response_len, i, "response", &q, err)) {
                json_decref(p);
                json_decref(arr);
                end_call(c);
                return -1;
            }
            json_array_append_new(arr, json_pack("{s:o, s:o}", "prompt", p, "response", q));
            bytes += item_cost(&items[i++]);
        }
        if (!arr || add_job(c, JOB_SCORE, arr, first, i - first, err)) {
            end_call(c);
            return err_setf(err, "out of memory");
        }
    }
    send_all(c);
    c->in_score = true;
    return 0;
}

int wire_recv_scores(wire_client_t *c, double *scores, err_t *err) {
    if (!c->in_score) return err_setf(err, "wire_recv_scores: no request was sent");
    int rc = run_call(c, err);
    if (rc == 0 && c->call_n > 0) memcpy(scores, c->got, (size_t)c->call_n * sizeof *scores);
    return rc;
}

int wire_score(wire_client_t *c, const wire_item_t *items, int64_t n, double *scores, err_t *err) {
    if (wire_send_score(c, items, n, err)) return -1;
    return wire_recv_scores(c, scores, err);
}

static int simple_call(wire_client_t *c, job_kind_t kind, err_t *err) {
    if (c->in_score) return err_setf(err, "a score request is waiting for wire_recv_scores");
    if (add_job(c, kind, NULL, 0, 0, err)) {
        end_call(c);
        return err_setf(err, "out of memory");
    }
    send_all(c);
    return run_call(c, err);
}

int wire_ping(wire_client_t *c, err_t *err) {
    return simple_call(c, JOB_PING, err);
}

json_t *wire_info(wire_client_t *c, err_t *err) {
    json_decref(c->info);
    c->info = NULL;
    if (simple_call(c, JOB_INFO, err)) return NULL;
    json_t *info = c->info;
    c->info = NULL;
    return info;
}
