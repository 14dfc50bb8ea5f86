/* common/wire.h: the ZeroMQ wire between `reward serve` and its clients (DESIGN.md §5,
 * schemas/wire.md). One JSON object per message, {"v":1,"type":...,"id":...}: score -> scores,
 * info -> info, ping -> pong; anything wrong -> error, and the server keeps serving.
 * Server: one ROUTER, one thread (the caller's), gathers requests that arrive together into one
 * batch for ONE scoring callback, answers ping/info itself. Client: DEALER sockets with the
 * zguide's Lazy Pirate (poll timeout, bounded tries, close and reopen on silence), several
 * endpoints, transparent chunking. Neither object is thread-safe: one thread per object (a
 * server and clients may live in different threads of one process). Failures return -1 (or
 * NULL, or WIRE_ETIMEOUT) with err set; nothing here prints or exits. */
#ifndef RLHF_WIRE_H
#define RLHF_WIRE_H
#include "err.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// clang-format off
/* ---- Limits: stated in every info reply ("limits") and in schemas/wire.md. */
#define WIRE_VERSION       1
#define WIRE_MAX_MESSAGE   (8 << 20)  /* bytes of one JSON body; more gets an error reply */
#define WIRE_MAX_FRAME     (16 << 20) /* a frame above this makes libzmq drop the connection
                                         (ZMQ_MAXMSGSIZE): no reply, the sender times out */
#define WIRE_MAX_ITEMS     256        /* items in one score request */
#define WIRE_MAX_TEXT      65536      /* bytes (UTF-8) of one prompt or one response */

#define WIRE_ENDPOINT      "tcp://127.0.0.1:5555" /* the server's default: loopback */
#define WIRE_TIMEOUT_MS    2500 /* client: wait for one try (zguide's REQUEST_TIMEOUT) */
#define WIRE_TRIES         3    /* client: tries per request before giving up */
#define WIRE_BATCH_ITEMS   64   /* server: gather up to this many items per scoring call */
#define WIRE_BATCH_WAIT_US 2000 /* server: wait at most this long for more after the first */

#define WIRE_ETIMEOUT      (-2) /* client: no server answered (every try timed out) */
// clang-format on

/* One text pair to score. Texts are bytes + length, UTF-8, and may hold U+0000; they are also
 * NUL-terminated where the server hands them out (the callback may use either form). */
typedef struct {
    const char *prompt;
    size_t prompt_len;
    const char *response;
    size_t response_len;
} wire_item_t;

/* ---- Keys. CURVE (libzmq's elliptic-curve encryption, RFC 26). Key files hold one z85 key
 * (40 characters) and a newline. */

/* Writes a fresh server pair and client pair into dir (created if missing, mode 0700):
 * server.key (secret), server.pub, client.key (secret), client.pub, each mode 0600. Refuses
 * to overwrite existing files (a server's key changed by accident locks out its clients).
 * -1 with err set ("keys/server.key: exists"). */
int wire_keygen(const char *dir, err_t *err);

/* ---- Server. */

/* True when endpoint can only be reached from this machine: ipc, inproc, or tcp on a loopback
 * address (127.x.x.x, localhost, [::1]). Interface names and wildcards count as public. What
 * wire_server_new checks before binding without CURVE; a program may check it first to give
 * its own usage error. */
bool wire_endpoint_is_local(const char *endpoint);

/* The scoring callback: writes scores[i] for items[i], i < n (1 <= n, at most
 * max(batch_items, WIRE_MAX_ITEMS)). It sees items of several requests at once, so a score
 * must depend on its own item only. items and their texts are valid during the call only.
 * Returns 0, or -1 with err set: a batch of one request gets an error reply with err's text;
 * a batch of several is scored again request by request, so only a request whose own items
 * fail gets the error (one client's bad prompt never costs another its scores). The server
 * keeps serving. A request with a non-finite score gets an error reply the same way. */
typedef int (*wire_score_fn)(void *ctx, const wire_item_t *items, int64_t n, double *scores,
                             err_t *err);

/* What the server measured since the last report (one period), and in total. Times in ms,
 * measured from when the server read the request off the socket: queue wait until its
 * scoring call began, latency until its reply was sent. Percentiles of the period (of at most
 * WIRE_METRICS_SAMPLES requests: the latest). */
#define WIRE_METRICS_SAMPLES 8192
typedef struct {
    double period_s;         /* length of this period */
    int64_t requests;        /* score requests answered with scores in the period */
    int64_t items;           /* items scored in the period */
    int64_t batches;         /* scoring calls in the period */
    int64_t multi_batches;   /* ... of which held more than one request */
    int64_t batch_items_max; /* largest scoring call, in items */
    double batch_items_mean; /* items per scoring call (0 when none) */
    int64_t pings, infos;    /* answered in the period */
    int64_t errors;          /* error replies in the period */
    double wait_p50_ms, wait_p90_ms, wait_p99_ms, wait_max_ms;
    double latency_p50_ms, latency_p90_ms, latency_p99_ms, latency_max_ms;
    int64_t total_requests; /* since the server started */
    int64_t total_items;
    int64_t total_errors;
} wire_metrics_t;

typedef void (*wire_metrics_fn)(void *ctx, const wire_metrics_t *m);

typedef struct {
    const char *endpoint;   /* where to bind; NULL = WIRE_ENDPOINT. "tcp://127.0.0.1:*" picks a
                               free port (see wire_server_endpoint). A non-loopback tcp address
                               needs secret_key */
    const char *secret_key; /* path of server.key (wire_keygen); NULL = no CURVE */
    wire_score_fn score;    /* required */
    void *score_ctx;
    const json_t *info;      /* object whose fields join every info reply (model, config,
                                template, reward_bias); borrowed for the server's life; NULL =
                                none. Must not use the keys v, type, id, limits */
    int batch_items;         /* 0 = WIRE_BATCH_ITEMS */
    int batch_wait_us;       /* 0 = WIRE_BATCH_WAIT_US; < 0 = do not wait for more */
    double metrics_every_s;  /* report every this many seconds; 0 = only when run returns */
    wire_metrics_fn metrics; /* NULL = no reports */
    void *metrics_ctx;
} wire_server_opts_t;

typedef struct wire_server wire_server_t;

/* Binds a ROUTER to opts->endpoint (with CURVE when secret_key is given) and sizes every
 * buffer. Refuses a non-loopback tcp address without CURVE: "tcp://0.0.0.0:5555: binding a
 * non-loopback address needs CURVE keys (a server.key from wire_keygen)". opts is copied
 * (strings too; info is borrowed). Caller frees with wire_server_destroy. NULL with err set. */
wire_server_t *wire_server_new(const wire_server_opts_t *opts, err_t *err);

/* The endpoint actually bound ("tcp://127.0.0.1:40123"); borrowed, valid for the server's life. */
const char *wire_server_endpoint(const wire_server_t *s);

/* Serves until wire_server_stop or cli_stop_requested() (SIGINT/SIGTERM), finishing the batch
 * in hand first, then reports metrics a last time. Bad messages never stop it; returns -1 with
 * err set only when the socket itself fails. */
int wire_server_run(wire_server_t *s, err_t *err);

/* Asks a running wire_server_run to return (from any thread or a signal handler). */
void wire_server_stop(wire_server_t *s);

/* Closes the socket and frees everything; NULLs *s; accepts NULL. Not while run is running. */
void wire_server_destroy(wire_server_t **s);

/* ---- Client. */

typedef struct {
    const char *endpoints;  /* one or more, comma-separated: "tcp://a:5555,tcp://b:5555" */
    int timeout_ms;         /* wait per try; 0 = WIRE_TIMEOUT_MS */
    int tries;              /* tries per request; 0 = WIRE_TRIES */
    const char *server_key; /* path of server.pub: CURVE on; NULL = plain */
    const char *client_key; /* path of client.key (secret); NULL with server_key = a fresh
                               pair for this client */
    void (*warn)(void *ctx, const char *msg); /* each retry: "tcp://...: no reply in 2.5 s,
                                                 reconnecting and retrying (try 2 of 3)" (a
                                                 program passes it to cli_warn); NULL = silent */
    void *warn_ctx;
    void (*trace)(void *ctx, bool sent, const char *body, size_t len); /* every JSON body
                               sent and received (debugging, tests); NULL = none */
    void *trace_ctx;
} wire_client_opts_t;

typedef struct wire_client wire_client_t;

/* Parses the endpoint list, reads the key files, connects (no traffic yet: a dead server shows
 * only when a request gets no reply). Caller frees with wire_client_destroy. NULL + err. */
wire_client_t *wire_client_new(const wire_client_opts_t *opts, err_t *err);

/* Closes the sockets (pending requests are dropped), frees, NULLs *c; accepts NULL. */
void wire_client_destroy(wire_client_t **c);

/* Scores n items (n >= 0, any size: split into requests of at most WIRE_MAX_ITEMS items and
 * WIRE_MAX_MESSAGE bytes, spread across live endpoints) into scores[n]. Each try waits
 * timeout_ms; on silence the socket is closed and reopened and the request is sent again, to
 * another endpoint when there is one; an endpoint that went silent is skipped for the next
 * 10 timeouts while others answer (all silent: each is tried again). Requests are
 * numbered by integer ids; a reply with an id not awaited (a late answer to an earlier try) is
 * dropped. Returns 0; WIRE_ETIMEOUT when a request got no reply after every try ("no reply from
 * tcp://127.0.0.1:5555 after 3 tries (2.5 s each)"); -1 for anything else (a text over
 * WIRE_MAX_TEXT or not UTF-8 "items[3].prompt: ...", a server's error reply "tcp://...:
 * server error: ..."). The client stays usable after a failure. */
int wire_score(wire_client_t *c, const wire_item_t *items, int64_t n, double *scores, err_t *err);

/* The same split in two, so the caller can work while the server scores: wire_send_score
 * checks, encodes (copies: items may be freed after it returns) and sends; wire_recv_scores
 * waits for every reply and writes scores[n] (n as sent). One score call may be outstanding
 * at a time: a second send before recv is an error. Returns as wire_score. */
int wire_send_score(wire_client_t *c, const wire_item_t *items, int64_t n, err_t *err);
int wire_recv_scores(wire_client_t *c, double *scores, err_t *err);

/* Ping one endpoint (round robin): 0 when it answered pong, else as wire_score. */
int wire_ping(wire_client_t *c, err_t *err);

/* The server's info reply (the whole object: model, config, template, reward_bias, limits).
 * Caller owns the reference (json_decref). NULL with err set as wire_score. */
json_t *wire_info(wire_client_t *c, err_t *err);
#endif /* RLHF_WIRE_H */
