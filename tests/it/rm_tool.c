/* tests/it/rm_tool.c: what the shell tests of `reward serve` need that no command gives them
 * (yet): a tiny reward model, the offline scores to compare the server's with, and a client
 * that sends malformed frames. Built by the Makefile into $BIN/it/rm_tool.
 *   rm_tool model DIR SEED BIAS     a tiny score-head GPT-2 (2 layers, d 32, context 64,
 *                                   random weights from SEED) with its own 300-id BPE
 *                                   tokenizer and rlhf.reward_bias BIAS
 *   rm_tool score DIR FILE THREADS  {"score": x} per {"prompt","response"} line of FILE, in
 *                                   process (rm_score, THREADS threads), as `reward score`
 *                                   writes them
 *   rm_tool fuzz EP N               N random and malformed messages to a server at EP from a
 *                                   raw DEALER: each must get exactly one reply, most of them
 *                                   errors; then a valid request must still be scored
 *   rm_tool info EP                 the server's info reply, one JSON line
 * Exit 0 ok, 1 with "rm_tool: ..." on stderr. */
#include "ckpt.h"
#include "cli.h"
#include "data.h"
#include "gpt.h"
#include "model.h"
#include "rm.h"
#include "tok.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static const char text[] =
    "What is 7 plus 5? 7 plus 5 is 12. Reverse the word lamp. Lamp reversed is pmal. "
    "Say hello to Maria. Hello, Maria! It is nice to meet you. Name three fruits. Three fruits "
    "are apple, pear and plum. What is the opposite of hot? The opposite of hot is cold.";

static int fail(const char *what, const err_t *err) {
    fprintf(stderr, "rm_tool: %s: %s\n", what, err ? err->msg : "");
    return 1;
}

static int cmd_model(const char *dir, uint64_t seed, double bias) {
    err_t err = ERR_INIT;
    tok_t *tok = tok_train(text, (int64_t)strlen(text), 300, &err);
    if (!tok) return fail("tok_train", &err);
    const gpt_config_t cfg = {.vocab_size = tok_vocab_size(tok),
                              .n_positions = 64,
                              .n_layer = 2,
                              .n_head = 2,
                              .n_embd = 32,
                              .ln_eps = 1e-5f};
    gpt_model_t *m = gpt_new(&cfg, GPT_HEAD_SCORE, &err);
    if (!m) return fail("gpt_new", &err);
    gpt_init_random(m, seed);
    ckpt_meta_t meta = ckpt_meta_default();
    snprintf(meta.template_name, sizeof meta.template_name, "%s", DATA_TEMPLATE_NAME);
    meta.eos_id = tok_eot_id(tok);
    meta.reward_bias = bias;
    int rc = ckpt_save(dir, m, &meta, NULL, &err) || tok_save(tok, dir, &err);
    gpt_destroy(&m);
    tok_destroy(&tok);
    return rc ? fail(dir, &err) : 0;
}

static int cmd_score(const char *dir, const char *path, int threads) {
    err_t err = ERR_INIT;
    model_t m = {0};
    data_examples_t ex = {0};
    rm_t *r = NULL;
    int rc = 1;
    cli_threads_apply(threads);
    if (model_load(&m, dir, MODEL_HEAD_REWARD, &err) || data_demos_load(&ex, path, &err) ||
        !(r = rm_new(&m, 0, &err))) {
        fail("score", &err);
        goto done;
    }
    for (int64_t i = 0; i < ex.n; i++) {
        const char *p = ex.ex[i].prompt, *q = ex.ex[i].response;
        const size_t np = (size_t)ex.ex[i].prompt_len, nq = (size_t)ex.ex[i].response_len;
        double s;
        if (rm_score(r, &p, &np, &q, &nq, 1, &s, &err)) {
            fail("score", &err);
            goto done;
        }
        json_t *o = json_pack("{s:f}", "score", s);
        char *line = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        puts(line);
        free(line);
        json_decref(o);
    }
    rc = 0;
done:
    rm_destroy(&r);
    data_examples_release(&ex);
    model_release(&m);
    return rc;
}

/* ---- fuzz: a raw DEALER speaking [empty][body] (or not) */

static uint64_t rng_state = 88172645463325252ull;
static uint64_t next(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return rng_state;
}

/* One message: random bytes, a valid request with a byte changed, wrong types and versions,
 * a huge string, or a wrong frame layout. */
static void send_one(void *s, char *buf, size_t cap) {
    static const char valid[] = "{\"v\":1,\"type\":\"score\",\"id\":7,\"items\":[{\"prompt\":"
                                "\"What is 7 plus 5?\",\"response\":\"12\"}]}";
    static const char *const bad[] = {
        "{\"v\":2,\"type\":\"ping\",\"id\":1}",
        "{\"v\":1,\"type\":\"nope\",\"id\":1}",
        "{\"v\":1,\"type\":\"score\",\"id\":1,\"items\":[{\"prompt\":5,\"response\":\"r\"}]}",
        "{\"v\":1,\"type\":\"score\",\"id\":1,\"items\":{}}",
        "[1,2,3]",
        "",
        "{\"v\":1",
        "{\"v\":1,\"type\":\"score\",\"id\":1,\"items\":[{\"prompt\":\"\xff\xfe\",\"response\":"
        "\"r\"}]}"};
    const int mode = (int)(next() % 6);
    size_t len = 0;
    int frames = 2;
    if (mode == 0) { /* random bytes */
        len = (size_t)(next() % 300);
        for (size_t i = 0; i < len; i++) buf[i] = (char)next();
    } else if (mode == 1) { /* a valid request with one byte changed */
        len = sizeof valid - 1;
        memcpy(buf, valid, len);
        buf[next() % len] = (char)next();
    } else if (mode == 2) { /* a known-bad body */
        const char *b = bad[next() % (sizeof bad / sizeof bad[0])];
        len = strlen(b);
        memcpy(buf, b, len);
    } else if (mode == 3) { /* a prompt over the text limit */
        len = (size_t)snprintf(buf, cap,
                               "{\"v\":1,\"type\":\"score\",\"id\":1,\"items\":[{"
                               "\"prompt\":\"");
        memset(buf + len, 'a', 70000);
        len += 70000;
        len += (size_t)snprintf(buf + len, cap - len, "\",\"response\":\"r\"}]}");
    } else { /* a valid ping with a missing or an extra frame */
        len = (size_t)snprintf(buf, cap, "{\"v\":1,\"type\":\"ping\",\"id\":3}");
        frames = mode == 4 ? 1 : 3;
    }
    if (frames != 1) zmq_send(s, "", 0, ZMQ_SNDMORE);
    zmq_send(s, buf, len, frames == 3 ? ZMQ_SNDMORE : 0);
    if (frames == 3) zmq_send(s, "x", 1, 0);
}

/* Receives one reply: its "type", or NULL after 5 s of silence or on a malformed reply. */
static char *recv_type(void *s, json_t **doc) {
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 5000) != 1) return NULL;
    zmq_msg_t m[2];
    for (int i = 0; i < 2; i++) zmq_msg_init(&m[i]), zmq_msg_recv(&m[i], s, 0);
    *doc = json_loadb(zmq_msg_data(&m[1]), zmq_msg_size(&m[1]), JSON_ALLOW_NUL, NULL);
    zmq_msg_close(&m[0]);
    zmq_msg_close(&m[1]);
    return *doc ? (char *)json_string_value(json_object_get(*doc, "type")) : NULL;
}

static int cmd_fuzz(const char *ep, int n) {
    enum { WINDOW = 50 };
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, errors = 0, rc = 1;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    char *buf = malloc(80000);
    if (!buf || zmq_connect(s, ep)) goto done;
    for (int k = 0; k < n; k += WINDOW) {
        for (int j = 0; j < WINDOW; j++) send_one(s, buf, 80000);
        for (int j = 0; j < WINDOW; j++) {
            json_t *d = NULL;
            const char *type = recv_type(s, &d);
            if (!type) {
                fprintf(stderr, "rm_tool: fuzz: message %d got no (valid) reply\n", k + j);
                json_decref(d);
                goto done;
            }
            errors += !strcmp(type, "error");
            json_decref(d);
        }
    }
    const char ok[] = "{\"v\":1,\"type\":\"score\",\"id\":\"last\",\"items\":[{\"prompt\":\"hi\","
                      "\"response\":\"there\"}]}";
    zmq_send(s, "", 0, ZMQ_SNDMORE);
    zmq_send(s, ok, sizeof ok - 1, 0);
    json_t *d = NULL;
    const char *type = recv_type(s, &d);
    const bool scored = type && !strcmp(type, "scores");
    json_decref(d);
    if (!scored) {
        fprintf(stderr, "rm_tool: fuzz: the valid request after the fuzz was not scored\n");
        goto done;
    }
    printf("fuzz: %d messages, %d error replies, then scored\n", n, errors);
    rc = errors > n / 2 ? 0 : 1;
    if (rc) fprintf(stderr, "rm_tool: fuzz: only %d of %d got an error reply\n", errors, n);
done:
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc;
}

/* Prints the server's reply to an info request (one JSON line). */
static int cmd_info(const char *ep) {
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, rc = 1;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    const char req[] = "{\"v\":1,\"type\":\"info\",\"id\":\"i\"}";
    json_t *d = NULL;
    if (zmq_connect(s, ep) == 0 && zmq_send(s, "", 0, ZMQ_SNDMORE) == 0 &&
        zmq_send(s, req, sizeof req - 1, 0) > 0 && recv_type(s, &d)) {
        char *line = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
        puts(line);
        free(line);
        rc = 0;
    } else
        fprintf(stderr, "rm_tool: info: no reply from %s\n", ep);
    json_decref(d);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "model"))
        return cmd_model(argv[2], strtoull(argv[3], NULL, 10), strtod(argv[4], NULL));
    if (argc == 5 && !strcmp(argv[1], "score")) return cmd_score(argv[2], argv[3], atoi(argv[4]));
    if (argc == 4 && !strcmp(argv[1], "fuzz")) return cmd_fuzz(argv[2], atoi(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "info")) return cmd_info(argv[2]);
    fprintf(stderr,
            "usage: rm_tool model DIR SEED BIAS | score DIR FILE THREADS | fuzz EP N | info EP\n");
    return 2;
}
