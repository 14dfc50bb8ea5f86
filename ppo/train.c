/* ppo/train.c: `ppo train` — InstructGPT's third stage: PPO-ptx fine-tuning of the SFT model
 * against a served reward model (DESIGN §4, issue 11).
 *
 * Who does what. common/ppo is the iteration (rollouts, KL rewards, GAE, clipped updates, the
 * ptx term); common/harness is the run (settings and run.json, the two AdamW optimizers and
 * their schedule, checkpoints, best/, --resume, Ctrl-C, --stop-at, the NaN stop before any
 * update). This file joins them to the outside: the prompts (a training part and a held-out
 * part), the corpus batches of the ptx term, the reward server (the request is sent right after
 * generation, before the reference and value forwards, and its reply read after them), the
 * gold judge of --judge simulated, and the validation that picks best/.
 *
 * Exact resume: train_state.bin holds, besides both optimizers (the harness's), the engine's
 * sections (its random stream, β of the KL controller, the running score moments), the prompt
 * order's position and the ptx window stream; validation samples from a fixed stream. So a
 * run stopped (--stop-at, Ctrl-C) and resumed writes the same bytes as one that never
 * stopped, on the same machine and thread count.
 *
 * The reward server going away: each request gets the client's tries (--timeout each); after
 * them ppo warns and sends the request again until the server answers or --reward-timeout
 * seconds have passed since the first try, then stops with exit 1 (nothing of the iteration
 * is saved: the last checkpoint stays as it was). */
#include "cli.h"
#include "data.h"
#include "dist.h"
#include "fs.h"
#include "harness.h"
#include "model.h"
#include "ppo.h"
#include "ppo_cmds.h"
#include "rng.h"
#include "sampler.h"
#include "tok.h"
#include "wire.h"
#include "wireopt.h"
#include "world.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "ppo train"

// clang-format off
/* Defaults: what the embedded default showed works (README, "How the defaults were found"). */
#define TRAIN_LR          1e-4  /* policy; the value model's --value-lr defaults to it */
#define TRAIN_ITERATIONS  150
#define TRAIN_EVAL_EVERY  25
#define VAL_SHARE         20    /* one prompt in VAL_SHARE of --prompts is held out */
#define VAL_BATCH         16    /* sequences per generator run of the validation */
#define ORDER_TAG         0x70706f6f72646572ULL /* "ppoorder": the prompt order's stream */
#define ENGINE_TAG        0x70706f656e67696eULL /* "ppoengin": the engine's stream */
#define PTX_TAG           0x70706f7074787374ULL /* "ppoptxst": the corpus windows */
#define VAL_TAG           0x70706f76616c6964ULL /* "ppovalid": validation samples */
// clang-format on

// clang-format off
#define HELP                                                                                       \
    "usage: ppo train --sft DIR --value-init DIR --reward EP[,EP...] --prompts FILE\n"             \
    "                 [--corpus FILE] --out DIR [options]\n"                                       \
    "\n"                                                                                           \
    "PPO-ptx (InstructGPT): fine-tunes the policy, initialised from the SFT model, to get high\n"  \
    "scores from the reward model served at --reward, with a per-token KL penalty to the frozen\n" \
    "SFT model (beta, --kl-coef) and the pretraining term on corpus windows (--ptx-coef). Each\n"  \
    "iteration samples one response per prompt of a batch, has the server score them, and runs\n"  \
    "--epochs passes of clipped policy and value updates in minibatches. OUT gets the policy (a\n" \
    "model directory: `sft sample`, `ppo eval`), the value model in OUT/value, run.json and\n"     \
    "train_state.bin; OUT/best the policy with the highest mean reward on held-out prompts.\n"     \
    "\n"                                                                                           \
    "models and data:\n"                                                                           \
    "  --sft DIR           the SFT model: the policy's start and the frozen reference\n"           \
    "  --value-init DIR    the value model's start: a local copy of the reward model the server\n" \
    "                      serves (it must read tokens as the SFT model does)\n"                   \
    "  --reward EP[,EP]    reward server endpoints (`reward serve`), e.g. tcp://127.0.0.1:5555\n"  \
    "  --prompts FILE      training prompts, JSONL {\"prompt\"}; without --val-prompts a\n"        \
    "                      hash-chosen 5% of them are held out for validation\n"                   \
    "  --val-prompts FILE  held-out prompts for validation and best/ (not the ones `ppo eval`\n"   \
    "                      reports on)\n"                                                          \
    "  --corpus FILE       pretraining text for the ptx term (required unless --ptx-coef 0)\n"     \
    "  --out DIR           output directory\n"                                                     \
    "  --judge simulated   also log the embedded world's gold score of every iteration's\n"        \
    "                      rollouts and of the validation samples (the policy never sees it)\n"    \
    "PPO:\n"                                                                                       \
    "  --iterations N      PPO iterations (default 150); --steps N is the same\n"                  \
    "  --batch B           prompts (= rollouts) per iteration (default 16)\n"                      \
    "  --minibatch M       rollouts per optimizer update (default 8)\n"                            \
    "  --epochs N          passes over each iteration's rollouts (default 2)\n"                    \
    "  --kl-coef X         beta of the per-token KL penalty (default 0.02)\n"                      \
    "  --kl-target X       adaptive KL: target in nats per response (default 0 = fixed beta)\n"    \
    "  --kl-horizon N      the adaptive controller's horizon in episodes (default 10000)\n"        \
    "  --ptx-coef X        gamma_ptx on the per-token mean NLL of corpus windows, weighed\n"       \
    "                      against the PPO loss per token (default 0.3; 0 = plain PPO)\n"            \
    "  --ptx-batch R       corpus windows per policy update (default 4)\n"                         \
    "  --ptx-seq T         tokens per corpus window (default 64)\n"                                \
    "  --clip X            epsilon of the policy ratio (default 0.2)\n"                            \
    "  --value-clip X      epsilon of the value clip (default 0.2)\n"                              \
    "  --gamma X           GAE discount (default 1)\n"                                             \
    "  --lam X             GAE lambda (default 0.95)\n"                                            \
    "  --whiten-rewards    normalise scores by their running mean and std\n"                       \
    "  --missing-eos-score X  the score of a response that does not end by --max-new, or is\n"     \
    "                      empty (default -1); the server never sees it\n"                         \
    "  --temperature X     sampling temperature of rollouts and validation, and of every\n"        \
    "                      log-prob (default 1)\n"                                               \
    "  --max-new N         new tokens per response, at most (default 32)\n"                        \
    "  --lr X              the policy's peak learning rate (default 1e-4)\n"                       \
    "  --value-lr X        the value model's (default: --lr)\n" HARNESS_HELP_OPTIM                 \
    "  --eval-every N      validate and checkpoint every N iterations (default 25)\n"              \
    "reward client (per invocation: --resume takes new values):\n"                                 \
    "  --timeout S         seconds to wait for a reply before reconnecting and sending again\n"    \
    "                      (default 2.5)\n"                                                        \
    "  --tries N           sends of one request before warning (default 3)\n"                      \
    "  --reward-timeout S  a server that stops answering mid-run is waited for this long, then\n"  \
    "                      the run stops with its last checkpoint (exit 1) (default 120)\n"        \
    "  --curve-keys DIR    talk CURVE to the server (DIR/server.pub, DIR/client.key)\n"            \
    HARNESS_HELP_RUN "\n"
// clang-format on

typedef struct {
    const char *sft, *value_init, *reward, *prompts, *val_prompts, *corpus, *judge, *curve_keys;
    const char *template_name;
    int64_t iterations, steps, batch, minibatch, epochs, ptx_batch, ptx_seq, max_new, tries;
    int64_t top_k; /* recorded for ppo eval: rollouts sample from the full distribution */
    double kl_coef, kl_target, kl_horizon, ptx_coef, clip, value_clip, gamma, lam;
    double missing_eos_score, temperature, top_p, value_lr, timeout, reward_timeout;
    bool whiten_rewards;
    harness_args_t args;
} opts_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the reward server -------------------------------------------------------------------- */

/* Texts to score: one item per rollout (or validation sample); only ended, non-empty responses
 * are sent (the others get --missing-eos-score, so the server need not read them). */
typedef struct {
    int64_t cap;          /* items allocated */
    int64_t n;            /* texts of the current batch */
    char **text;          /* [cap] decoded responses (owned; freed at the next batch) */
    size_t *len;          /* [cap] */
    bool *send;           /* [cap] sent to the server */
    wire_item_t *items;   /* [cap] the items sent, in order */
    int64_t nsent;        /* items sent */
    double *scores;       /* [cap] the server's scores of the items sent */
    const char *endpoint; /* --reward, for messages */
} batch_t;

static int batch_init(batch_t *b, int64_t cap, const char *endpoint, err_t *err) {
    *b = (batch_t){.cap = cap, .endpoint = endpoint};
    b->text = calloc((size_t)cap, sizeof *b->text);
    b->len = calloc((size_t)cap, sizeof *b->len);
    b->send = calloc((size_t)cap, sizeof *b->send);
    b->items = calloc((size_t)cap, sizeof *b->items);
    b->scores = calloc((size_t)cap, sizeof *b->scores);
    if (!b->text || !b->len || !b->send || !b->items || !b->scores)
        return err_setf(err, "out of memory");
    return 0;
}

static void batch_clear(batch_t *b) {
    for (int64_t i = 0; i < b->n; i++) {
        free(b->text[i]);
        b->text[i] = NULL;
    }
    b->n = b->nsent = 0;
}

static void batch_release(batch_t *b) {
    if (b->text) batch_clear(b);
    free(b->text);
    free(b->len);
    free(b->send);
    free(b->items);
    free(b->scores);
    *b = (batch_t){0};
}

/* Text i of the batch: the response ids[0..n) (the end-of-text included when ended). */
static int batch_set(batch_t *b, const model_t *m, int64_t i, const data_example_t *prompt,
                     const int32_t *ids, int64_t n, bool ended, err_t *err) {
    if (!(b->text[i] = model_decode_response(m, ids, ended ? n - 1 : n, &b->len[i], err)))
        return -1;
    b->send[i] = ended && n > 1;
    if (b->send[i])
        b->items[b->nsent++] =
            (wire_item_t){prompt->prompt, (size_t)prompt->prompt_len, b->text[i], b->len[i]};
    return 0;
}

/* Sends the items of the batch (none: nothing to send). */
static int batch_send(batch_t *b, wire_client_t *c, err_t *err) {
    return b->nsent > 0 ? wire_send_score(c, b->items, b->nsent, err) : 0;
}

/* Waits for the scores of the request in flight. When every try timed out, says so and sends
 * it again until the server answers or reward_timeout seconds have passed since t_sent. */
static int batch_recv(batch_t *b, wire_client_t *c, double reward_timeout, double t_sent,
                      err_t *err) {
    if (b->nsent == 0) return 0;
    int rc = wire_recv_scores(c, b->scores, err);
    if (rc != WIRE_ETIMEOUT) return rc;
    cli_warn(PROG,
             "the reward server is not answering (%s); waiting for it, for up to %g s "
             "(--reward-timeout)",
             err->msg, reward_timeout);
    while (rc == WIRE_ETIMEOUT && now_s() - t_sent < reward_timeout && !cli_stop_requested()) {
        err_clear(err);
        rc = wire_send_score(c, b->items, b->nsent, err);
        if (rc == 0) rc = wire_recv_scores(c, b->scores, err);
    }
    if (rc == 0) {
        cli_warn(PROG, "the reward server answers again (after %.1f s); continuing",
                 now_s() - t_sent);
        return 0;
    }
    if (rc != WIRE_ETIMEOUT) return rc;
    err_clear(err);
    err_setf(err, "%s: the reward server did not answer for %.0f s (--reward-timeout)", b->endpoint,
             now_s() - t_sent);
    return WIRE_ETIMEOUT;
}

/* Score i of the batch: the server's, or missing_eos for a text not sent. */
static float batch_score(const batch_t *b, int64_t i, int64_t *k, float missing_eos) {
    return b->send[i] ? (float)b->scores[(*k)++] : missing_eos;
}

/* ---- the run ------------------------------------------------------------------------------ */

typedef struct {
    opts_t *o;
    model_t pol, ref, val; /* the policy (trained), the reference (frozen), the value model */
    ckpt_meta_t pol_meta, val_meta;
    const char *pol_tok, *val_tok;  /* where their vocab.json + merges.txt are copied from */
    char value_dir[4096];           /* OUT/value */
    data_examples_t file, val_file; /* --prompts, --val-prompts */
    data_examples_t train, held;    /* the training and held-out prompts (ex arrays owned, the
                                       strings borrowed from file / val_file) */
    sampler_prompts_t train_sp, held_sp;
    int64_t pmax;       /* longest templated prompt of either set */
    data_order_t order; /* the prompt order: epoch and pos are in train_state.bin */
    int64_t *idx;       /* (batch) this iteration's prompts */
    int32_t *rows;      /* (batch, pmax) their ids, right-padded */
    int64_t *lens;      /* (batch) */
    tok_ids_t corpus;
    data_stream_t stream; /* ptx windows */
    rng_t ptx_rng;        /* in train_state.bin */
    wire_client_t *client;
    json_t *info;       /* the server's info reply */
    batch_t batch;      /* the iteration's texts (and the validation's) */
    double t_sent;      /* when the iteration's request went out */
    double gold;        /* --judge: mean gold score of the iteration's rollouts */
    int64_t val_first;  /* the first held-out prompt of this rank's share of a validation */
    sampler_t *sampler; /* validation */
    ppo_t *ppo;
    harness_t *h;
    int64_t saved_step; /* last step checkpointed into OUT (0 = none) */
} train_t;

/* ---- engine callbacks */

/* batch_recv's result, a server gone for good saying what is left on disk. */
static int recv_result(const train_t *t, int rc, err_t *err) {
    if (rc != WIRE_ETIMEOUT) return rc;
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    err_clear(err);
    if (t->saved_step > 0)
        return err_setf(err,
                        "%s; stopped: the last checkpoint (iteration %" PRId64
                        ") is intact in %s (--resume continues it)",
                        msg, t->saved_step, t->o->args.out);
    return err_setf(err, "%s; stopped before any checkpoint was saved", msg);
}

static int score_send(void *ctx, const ppo_rollouts_t *r, err_t *err) {
    train_t *t = ctx;
    batch_t *b = &t->batch;
    batch_clear(b);
    double gold = 0.0;
    for (int64_t i = 0; i < r->B; i++, b->n++) {
        const data_example_t *ex = &t->train.ex[t->idx[r->first + i]];
        const int32_t *resp = r->tokens + i * r->stride + r->prompt_len[i];
        if (batch_set(b, &t->pol, i, ex, resp, r->response_len[i], r->ended[i], err)) return -1;
        if (t->o->judge) gold += world_gold_score(ex->prompt, b->text[i]);
    }
    t->gold = gold / (double)r->B; /* this rank's: step_hook makes it global */
    t->t_sent = now_s();
    return batch_send(b, t->client, err);
}

static int score_recv(void *ctx, float *scores, err_t *err) {
    train_t *t = ctx;
    batch_t *b = &t->batch;
    if (recv_result(t, batch_recv(b, t->client, t->o->reward_timeout, t->t_sent, err), err))
        return -1;
    int64_t k = 0;
    for (int64_t i = 0; i < b->n; i++)
        scores[i] = batch_score(b, i, &k, (float)t->o->missing_eos_score);
    return 0;
}

static int ptx_batch(void *ctx, int32_t *tokens, int32_t *targets, int64_t rows, int64_t T,
                     err_t *err) {
    train_t *t = ctx;
    (void)rows, (void)T, (void)err; /* the stream was made for (ptx_batch, ptx_seq) */
    data_stream_sample(&t->stream, &t->ptx_rng, tokens, targets);
    return 0;
}

/* The harness owns both optimizers: AdamW at the schedule's rate after the NaN check. */
static int update(void *ctx, ppo_role_t role, gpt_model_t *model, optim_t *opt, err_t *err) {
    train_t *t = ctx;
    (void)model, (void)opt;
    const int i = role == PPO_POLICY ? 0 : 1;
    harness_grad_sum(t->h, i); /* MPI: each rank holds its part of the gradient (ppo.h) */
    return harness_update(t->h, i, err);
}

/* ---- harness hooks */

static void step_figures(harness_step_t *out, const ppo_stats_t *st, const train_t *t) {
    harness_step_figure(out, "score", st->score_raw);
    if (t->o->whiten_rewards) harness_step_figure(out, "score_whitened", st->score);
    harness_step_figure(out, "kl", st->kl);
    harness_step_figure(out, "kl_coef", st->kl_coef);
    harness_step_figure(out, "entropy", st->entropy);
    harness_step_figure(out, "policy_loss", st->policy_loss);
    harness_step_figure(out, "clipfrac", st->clipfrac);
    harness_step_figure(out, "approx_kl", st->approx_kl);
    harness_step_figure(out, "value_loss", st->value_loss);
    harness_step_figure(out, "value_clipfrac", st->value_clipfrac);
    harness_step_figure(out, "explained_var", st->explained_var);
    harness_step_figure(out, "ptx_loss", st->ptx_loss);
    harness_step_figure(out, "response_len", st->response_len);
    harness_step_figure(out, "ended", st->ended);
    harness_step_figure(out, "tokens_per_s", st->tokens_per_s);
    if (t->o->judge) harness_step_figure(out, "gold", t->gold);
    harness_step_figure(out, "t_total", st->t_total);
    harness_step_figure(out, "t_generate", st->t_generate);
    harness_step_figure(out, "t_score_wait", st->t_score_wait);
    harness_step_figure(out, "t_forward", st->t_forward);
    harness_step_figure(out, "t_update", st->t_update);
    harness_step_figure(out, "t_ptx", st->t_ptx);
}

/* One PPO-ptx iteration on the next batch of training prompts. The step's loss is what the
 * policy minimises: the clipped surrogate plus gamma_ptx times the corpus NLL. */
static int step_hook(void *ctx, harness_t *h, int64_t step, harness_step_t *out, err_t *err) {
    train_t *t = ctx;
    const opts_t *o = t->o;
    (void)step;
    t->h = h;
    const int64_t B = o->batch;
    data_order_next(&t->order, t->idx, B);
    for (int64_t b = 0; b < B; b++) {
        const int64_t i = t->idx[b], n = t->train_sp.offset[i + 1] - t->train_sp.offset[i];
        memcpy(t->rows + b * t->pmax, t->train_sp.ids + t->train_sp.offset[i],
               (size_t)n * sizeof(int32_t));
        for (int64_t k = n; k < t->pmax; k++) t->rows[b * t->pmax + k] = t->pol.pad_id;
        t->lens[b] = n;
    }
    const ppo_callbacks_t cb = {.ctx = t,
                                .score_send = score_send,
                                .score_recv = score_recv,
                                .ptx_batch = o->ptx_coef != 0.0 ? ptx_batch : NULL,
                                .update = update};
    ppo_stats_t st;
    if (ppo_iterate(t->ppo, t->rows, t->pmax, t->lens, B, &cb, &st, err)) return -1;
    if (o->judge) t->gold = dist_mean(t->gold, (double)ppo_rollouts(t->ppo).B);
    out->loss = st.policy_loss + o->ptx_coef * st.ptx_loss;
    out->tokens = st.rank_tokens;
    out->global = true; /* the engine's figures are global already */
    step_figures(out, &st, t);
    if (o->judge)
        snprintf(out->note, sizeof out->note, "score %.3f  kl %.2f  gold %.3f", st.score_raw, st.kl,
                 t->gold);
    else
        snprintf(out->note, sizeof out->note, "score %.3f  kl %.2f", st.score_raw, st.kl);
    return 0;
}

static int collect_sample(void *ctx, const sampler_completion_t *c, err_t *err) {
    train_t *t = ctx;
    batch_t *b = &t->batch;
    const int64_t i = c->prompt; /* of this rank's share, which starts at val_first */
    b->n = i + 1;
    return batch_set(b, &t->pol, i, &t->held.ex[t->val_first + i], c->ids, c->tokens, c->ended,
                     err);
}

/* The reward model's mean score of the policy's answers to the held-out prompts (one sample
 * each, from the same random streams every time, at the rollouts' settings; a response that
 * does not end gets --missing-eos-score, as in training). MPI: each rank samples its share of
 * the prompts, from the streams one process would use, and the sums are reduced. */
static int validate_hook(void *ctx, harness_t *h, double *metric, err_t *err) {
    train_t *t = ctx;
    batch_t *b = &t->batch;
    t->h = h;
    batch_clear(b);
    const int64_t mine = dist_share(t->held_sp.n, &t->val_first);
    sampler_prompts_t share = t->held_sp;
    share.n = mine;
    share.offset = t->held_sp.offset + t->val_first;
    sampler_stats_t ss = {0};
    if ((mine > 0 && sampler_run(t->sampler, &share, t->val_first, collect_sample, t, &ss, err)) ||
        batch_send(b, t->client, err) ||
        recv_result(t, batch_recv(b, t->client, t->o->reward_timeout, now_s(), err), err))
        return -1;
    double v[5] = {0.0, 0.0, 0.0, (double)ss.tokens, (double)b->n}; /* Σ score, gold, ended */
    int64_t k = 0;
    for (int64_t i = 0; i < b->n; i++) {
        v[0] += (double)batch_score(b, i, &k, (float)t->o->missing_eos_score);
        v[2] += b->send[i];
        if (t->o->judge) v[1] += world_gold_score(t->held.ex[t->val_first + i].prompt, b->text[i]);
    }
    dist_sum_f64(v, 5);
    const double sum = v[0], gold = v[1], ended = v[2], n = v[4];
    ss.tokens = (int64_t)v[3];
    *metric = sum / n;
    return cli_log_event(harness_log(h), err, "ppo_val", "{s:I, s:f, s:o, s:f, s:f}", "step",
                         (json_int_t)harness_step(h), "reward", *metric, "gold",
                         t->o->judge ? cli_json_number(gold / n) : json_null(), "ended", ended / n,
                         "response_len", (double)ss.tokens / n);
}

/* OUT (or OUT/best): the policy as a model directory, the value model in DIR/value. */
static int save_hook(void *ctx, const char *dir, err_t *err) {
    train_t *t = ctx;
    char vdir[4096];
    if (snprintf(vdir, sizeof vdir, "%s/value", dir) >= (int)sizeof vdir)
        return err_setf(err, "%s: path too long", dir);
    if (ckpt_save(dir, t->pol.model, &t->pol_meta, t->pol_tok, err) || fs_mkdirs(vdir, err) ||
        ckpt_save(vdir, t->val.model, &t->val_meta, t->val_tok, err))
        return -1;
    if (!strcmp(dir, t->o->args.out)) t->saved_step = harness_step(t->h);
    return 0;
}

static int restore_hook(void *ctx, err_t *err) {
    train_t *t = ctx;
    t->saved_step = harness_step(t->h);
    return data_order_seek(&t->order, t->order.epoch, t->order.pos, err);
}

/* ---- loading ------------------------------------------------------------------------------ */

static uint64_t fnv1a(const char *s, int64_t n) {
    uint64_t x = 1469598103934665603ULL;
    for (int64_t i = 0; i < n; i++) x = (x ^ (uint8_t)s[i]) * 1099511628211ULL;
    return x;
}

/* A view of some examples of src (the strings stay src's). */
static int view_init(data_examples_t *v, const data_examples_t *src, int64_t cap, err_t *err) {
    *v = (data_examples_t){.path = src->path};
    if (!(v->ex = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *v->ex)))
        return err_setf(err, "out of memory");
    return 0;
}

/* Training and held-out prompts: --val-prompts, or the prompts of --prompts whose text hashes
 * to 0 mod VAL_SHARE (at least one: the lowest hash). */
static int split_prompts(train_t *t, err_t *err) {
    const opts_t *o = t->o;
    if (data_prompts_load(&t->file, o->prompts, err)) return -1;
    const data_examples_t *f = &t->file;
    if (view_init(&t->train, f, f->n, err) || view_init(&t->held, f, f->n, err)) return -1;
    if (o->val_prompts) {
        if (data_prompts_load(&t->val_file, o->val_prompts, err)) return -1;
        memcpy(t->train.ex, f->ex, (size_t)f->n * sizeof *f->ex);
        t->train.n = f->n;
        t->held.path = t->val_file.path;
        free(t->held.ex);
        t->held.ex = t->val_file.ex; /* borrowed whole: see release */
        t->held.n = t->val_file.n;
        return 0;
    }
    if (f->n < 2)
        return err_setf(err,
                        "%s: %" PRId64 " prompt: holding some out needs at least 2 (or give "
                        "--val-prompts)",
                        o->prompts, f->n);
    int64_t lowest = 0;
    for (int64_t i = 0; i < f->n; i++) {
        const uint64_t hsh = fnv1a(f->ex[i].prompt, f->ex[i].prompt_len);
        if (hsh < fnv1a(f->ex[lowest].prompt, f->ex[lowest].prompt_len)) lowest = i;
        data_examples_t *to = hsh % VAL_SHARE == 0 ? &t->held : &t->train;
        to->ex[to->n++] = f->ex[i];
    }
    if (t->held.n == 0) { /* a small file: hold out the prompt of lowest hash */
        t->held.ex[t->held.n++] = f->ex[lowest];
        t->train.n = 0;
        for (int64_t i = 0; i < f->n; i++)
            if (i != lowest) t->train.ex[t->train.n++] = f->ex[i];
    }
    return 0;
}

/* The policy, the reference, the value model, and their agreement. A resume loads the policy
 * and the value model from OUT; the reference is always the SFT model. */
static int load_models(train_t *t, err_t *err) {
    const opts_t *o = t->o;
    if (snprintf(t->value_dir, sizeof t->value_dir, "%s/value", o->args.out) >=
        (int)sizeof t->value_dir)
        return err_setf(err, "%s: path too long", o->args.out);
    t->pol_tok = o->args.resume ? o->args.out : o->sft;
    t->val_tok = o->args.resume ? t->value_dir : o->value_init;
    if (model_load(&t->pol, t->pol_tok, MODEL_HEAD_LM, err) ||
        model_load(&t->ref, o->sft, MODEL_HEAD_LM, err) ||
        model_load(&t->val, t->val_tok, MODEL_HEAD_VALUE, err) ||
        model_check_compatible(&t->pol, &t->ref, err) ||
        model_check_compatible(&t->pol, &t->val, err))
        return -1;
    t->pol_meta = t->pol.meta;
    t->pol_meta.eos_id = t->pol.eos_id;
    t->pol_meta.pad_id = t->pol.pad_id;
    snprintf(t->pol_meta.template_name, sizeof t->pol_meta.template_name, "%s", DATA_TEMPLATE_NAME);
    t->val_meta = t->val.meta;
    t->val_meta.eos_id = t->val.eos_id;
    t->val_meta.pad_id = t->val.pad_id;
    if (t->pol.eos_id < 0) return err_setf(err, "%s: no end-of-text id", t->pol_tok);
    return 0;
}

/* Prompts in the template, the longest of both sets, and room for the responses. */
static int load_prompts(train_t *t, err_t *err) {
    const opts_t *o = t->o;
    if (split_prompts(t, err) || sampler_prompts_build(&t->train_sp, &t->pol, &t->train, err) ||
        sampler_prompts_build(&t->held_sp, &t->pol, &t->held, err))
        return -1;
    if (t->train.n == 0) return err_setf(err, "%s: no training prompts", o->prompts);
    t->pmax = t->train_sp.max_len > t->held_sp.max_len ? t->train_sp.max_len : t->held_sp.max_len;
    const int64_t ctx = t->pol.model->cfg.n_positions;
    if (t->pmax + o->max_new > ctx)
        return err_setf(err,
                        "the longest prompt is %" PRId64 " tokens with the template; with "
                        "--max-new %" PRId64 " that is more than the context of %s (%" PRId64 ")",
                        t->pmax, o->max_new, o->sft, ctx);
    if (data_order_init(&t->order, t->train.n, o->args.common.seed ^ ORDER_TAG, err))
        return err_prefixf(err, "%s: ", o->prompts);
    t->idx = malloc((size_t)o->batch * sizeof *t->idx);
    t->lens = malloc((size_t)o->batch * sizeof *t->lens);
    t->rows = malloc((size_t)(o->batch * t->pmax) * sizeof *t->rows);
    const int64_t cap = o->batch > t->held.n ? o->batch : t->held.n;
    if (!t->idx || !t->lens || !t->rows) return err_setf(err, "out of memory");
    return batch_init(&t->batch, cap, o->reward, err);
}

/* The corpus of the ptx term, tokenized by the policy's tokenizer. */
static int load_corpus(train_t *t, err_t *err) {
    const opts_t *o = t->o;
    rng_seed(&t->ptx_rng, o->args.common.seed ^ PTX_TAG);
    if (o->ptx_coef == 0.0) return 0;
    if (o->ptx_seq > t->pol.model->cfg.n_positions)
        return err_setf(err, "--ptx-seq %" PRId64 " is longer than the context of %s (%" PRId64 ")",
                        o->ptx_seq, o->sft, t->pol.model->cfg.n_positions);
    char *text = NULL;
    size_t len = 0;
    int rc = data_read_file(o->corpus, &text, &len, err);
    if (rc == 0) rc = tok_encode(t->pol.tok, text, (int64_t)len, true, &t->corpus, err);
    free(text);
    if (rc == 0)
        rc = data_stream_init(&t->stream, t->corpus.ids, t->corpus.len, o->ptx_batch, o->ptx_seq,
                              err);
    return rc ? err_prefixf(err, "%s: ", o->corpus) : 0;
}

/* The --reward list as rank r reads it: rotated to start at its (r mod n)-th endpoint, so the
 * ranks' requests spread over the servers and each fails over to the others. */
static int rank_endpoints(const char *list, int rank, char *out, size_t size, err_t *err) {
    int n = 1;
    for (const char *c = list; *c; c++) n += *c == ',';
    const char *start = list;
    for (int k = rank % n; k > 0; k--) start = strchr(start, ',') + 1;
    const int len = start == list
                        ? snprintf(out, size, "%s", list)
                        : snprintf(out, size, "%s,%.*s", start, (int)(start - list - 1), list);
    if (len < 0 || (size_t)len >= size) return err_setf(err, "--reward: the list is too long");
    return 0;
}

/* The reward client; the server is asked for its info first, so a server that is not there
 * stops the run before anything is written. */
static int open_server(train_t *t, err_t *err) {
    const opts_t *o = t->o;
    const wireopt_t wo = {.timeout_ms = (int)lround(1000.0 * o->timeout),
                          .tries = (int)o->tries,
                          .curve_keys = o->curve_keys};
    char eps[4096];
    if (rank_endpoints(o->reward, dist_rank(), eps, sizeof eps, err)) return -1;
    if (!(t->client = wireopt_client_new(&wo, eps, PROG, err)) ||
        !(t->info = wire_info(t->client, err)))
        return -1;
    const char *tmpl = json_string_value(json_object_get(t->info, "template"));
    const char *mine = t->pol.meta.template_name;
    if (tmpl && tmpl[0] && mine[0] && strcmp(tmpl, mine))
        return err_setf(err, "%s serves a reward model of template \"%s\"; %s has \"%s\"",
                        o->reward, tmpl, o->sft, mine);
    return 0;
}

static ppo_config_t engine_config(const train_t *t) {
    const opts_t *o = t->o;
    ppo_config_t c = ppo_config_default();
    c.batch = o->batch;
    c.prompt_max = t->pmax;
    c.max_new = o->max_new;
    c.temperature = (float)o->temperature;
    c.eos_id = t->pol.eos_id;
    c.pad_id = t->pol.pad_id;
    c.missing_eos_score = (float)o->missing_eos_score;
    c.whiten_rewards = o->whiten_rewards;
    c.kl_coef = o->kl_coef;
    c.kl_target = o->kl_target;
    c.kl_horizon = o->kl_horizon;
    c.gamma = (float)o->gamma;
    c.lambda = (float)o->lam;
    c.clip = (float)o->clip;
    c.value_clip = (float)o->value_clip;
    c.epochs = (int)o->epochs;
    c.minibatch = o->minibatch;
    c.ptx_coef = o->ptx_coef;
    c.ptx_rows = o->ptx_batch;
    c.ptx_T = o->ptx_seq;
    c.seed = o->args.common.seed ^ ENGINE_TAG;
    return c;
}

static int make_sampler(train_t *t, err_t *err) {
    sampler_opts_t so = sampler_defaults();
    so.gen.temperature = (float)t->o->temperature;
    so.gen.max_new = t->o->max_new;
    so.gen.seed = t->o->args.common.seed ^ VAL_TAG;
    so.batch = t->held.n < VAL_BATCH ? t->held.n : VAL_BATCH;
    return (t->sampler = sampler_new(&t->pol, &so, t->held_sp.max_len, err)) ? 0 : -1;
}

static void release(train_t *t) {
    harness_destroy(&t->h);
    ppo_destroy(&t->ppo);
    sampler_destroy(&t->sampler);
    batch_release(&t->batch);
    json_decref(t->info);
    wire_client_destroy(&t->client);
    tok_ids_release(&t->corpus);
    free(t->idx);
    free(t->lens);
    free(t->rows);
    data_order_release(&t->order);
    sampler_prompts_release(&t->train_sp);
    sampler_prompts_release(&t->held_sp);
    free(t->train.ex);
    if (t->held.ex != t->val_file.ex) free(t->held.ex);
    data_examples_release(&t->val_file);
    data_examples_release(&t->file);
    model_release(&t->val);
    model_release(&t->ref);
    model_release(&t->pol);
}

/* ---- the command -------------------------------------------------------------------------- */

static void parse(opts_t *o, harness_setting_t *set, int nset, int argc, char **argv) {
    harness_parse(&o->args, PROG, HELP, argc, argv, set, nset);
    cli_require(PROG, "--sft", o->sft);
    cli_require(PROG, "--value-init", o->value_init);
    cli_require(PROG, "--reward", o->reward);
    cli_require(PROG, "--prompts", o->prompts);
    if (o->ptx_coef != 0.0 && !o->corpus)
        cli_usage_error(PROG, "--corpus is required for the ptx term (or give --ptx-coef 0)");
    if (o->judge && strcmp(o->judge, "simulated"))
        cli_usage_error(PROG,
                        "--judge: '%s' is not a judge; the one judge is 'simulated' (the "
                        "embedded world's gold score)",
                        o->judge);
    if (o->minibatch > o->batch)
        cli_usage_error(PROG, "--minibatch %" PRId64 " is larger than --batch %" PRId64,
                        o->minibatch, o->batch);
    if (o->steps && o->iterations && o->steps != o->iterations)
        cli_usage_error(PROG, "--steps and --iterations name the same thing: give one");
    if (o->steps) o->iterations = o->steps;
    if (!o->iterations) o->iterations = TRAIN_ITERATIONS;
    if (o->args.lr < 0) o->args.lr = TRAIN_LR;
    if (o->args.lr_min < 0) o->args.lr_min = o->args.lr / 10;
    if (o->args.warmup < 0) o->args.warmup = 0;
    if (o->value_lr < 0) o->value_lr = o->args.lr;
    if (o->batch < dist_size())
        cli_usage_error(PROG, "--batch %" PRId64 " is smaller than the %d ranks: each needs one",
                        o->batch, dist_size());
}

/* Reads and checks everything; nothing is written before it returns. */
static int load(train_t *t, err_t *err) {
    const opts_t *o = t->o;
    if (o->args.resume && harness_prepare_out(&o->args, err)) return -1;
    return load_models(t, err) || load_prompts(t, err) || load_corpus(t, err) || open_server(t, err)
               ? -1
               : 0;
}

static int run(train_t *t, harness_result_t *r, err_t *err) {
    opts_t *o = t->o;
    const ppo_config_t pc = engine_config(t);
    if (!(t->ppo = ppo_new(t->pol.model, t->ref.model, t->val.model, NULL, NULL, &pc, err)) ||
        make_sampler(t, err))
        return -1;
    harness_config_t hc = {
        .prog = PROG,
        .args = &o->args,
        .steps = o->iterations,
        .metric = "reward",
        .higher_better = true,
        .hooks = {.ctx = t,
                  .step = step_hook,
                  .validate = validate_hook,
                  .save = save_hook,
                  .restore = restore_hook},
        .state = {{"data.epoch", &t->order.epoch, sizeof t->order.epoch},
                  {"data.pos", &t->order.pos, sizeof t->order.pos},
                  {"ptx.rng", t->ptx_rng.s, sizeof t->ptx_rng.s}},
        .nstate = 3,
    };
    ppo_sections(t->ppo, hc.state + hc.nstate);
    hc.nstate += PPO_NUM_SECTIONS;
    harness_optim_t vopt = harness_optim_from_args(&o->args);
    vopt.lr = o->value_lr;
    vopt.lr_min = o->value_lr * (o->args.lr_min / o->args.lr);
    if (!(t->h = harness_new(&hc, err)) || harness_add_model(t->h, "", t->pol.model, NULL, err) ||
        harness_add_model(t->h, "value", t->val.model, &vopt, err) < 0 ||
        cli_json_merge(harness_results(t->h), err, "{s:I, s:I, s:I}", "train_prompts",
                       (json_int_t)t->train.n, "val_prompts", (json_int_t)t->held.n,
                       "corpus_tokens", (json_int_t)t->corpus.len))
        return -1;
    return harness_run(t->h, r, err);
}

static void summary(const train_t *t, const harness_result_t *r) {
    const opts_t *o = t->o;
    if (dist_rank() != 0) return;
    printf("%s: %s %s at iteration %" PRId64 "/%" PRId64 "\n", PROG, o->args.out, r->status,
           r->step, o->iterations);
    printf("  prompts    %" PRId64 " training, %" PRId64 " held out\n", t->train.n, t->held.n);
    printf("  speed      %.0f response tokens/s over %.1f s\n", r->tokens_per_s, r->elapsed_s);
    if (isfinite(r->initial_val))
        printf("  reward     held-out mean %.4f at the start (the SFT model)", r->initial_val);
    if (isfinite(r->val)) printf(", %.4f at iteration %" PRId64, r->val, r->val_step);
    if (isfinite(r->initial_val) || isfinite(r->val)) printf("\n");
    if (r->best_step > 0)
        printf("  best       %.4f at iteration %" PRId64 " in %s/best\n", r->best_val, r->best_step,
               o->args.out);
}

int ppo_cmd_train(int argc, char **argv) {
    opts_t o = {.template_name = DATA_TEMPLATE_NAME,
                .batch = 16,
                .minibatch = 8,
                .epochs = 2,
                .ptx_batch = 4,
                .ptx_seq = 64,
                .max_new = 32,
                .tries = WIRE_TRIES,
                .top_k = 0,
                .kl_coef = 0.02,
                .kl_target = 0,
                .kl_horizon = 10000,
                .ptx_coef = 0.3,
                .clip = 0.2,
                .value_clip = 0.2,
                .gamma = 1.0,
                .lam = 0.95,
                .missing_eos_score = -1.0,
                .temperature = 1.0,
                .top_p = 1.0,
                .value_lr = -1,
                .timeout = WIRE_TIMEOUT_MS / 1000.0,
                .reward_timeout = 120,
                .args = HARNESS_ARGS_INIT(TRAIN_EVAL_EVERY)};
    const double big = (double)(INT64_C(1) << 40);
    harness_setting_t set[] = {
        HARNESS_STR("sft", "sft", &o.sft),
        HARNESS_STR("value-init", "value_init", &o.value_init),
        HARNESS_STR("prompts", "prompts", &o.prompts),
        HARNESS_STR("val-prompts", "val_prompts", &o.val_prompts),
        HARNESS_STR("corpus", "corpus", &o.corpus),
        HARNESS_STR("judge", "judge", &o.judge),
        HARNESS_I64("iterations", "iterations", &o.iterations, 1, big),
        HARNESS_I64("steps", "steps", &o.steps, 1, big),
        HARNESS_I64("batch", "batch", &o.batch, 1, 1 << 16),
        HARNESS_I64("minibatch", "minibatch", &o.minibatch, 1, 1 << 16),
        HARNESS_I64("epochs", "epochs", &o.epochs, 1, 1000),
        HARNESS_F64("kl-coef", "kl_coef", &o.kl_coef, 0, 1e6),
        HARNESS_F64("kl-target", "kl_target", &o.kl_target, 0, 1e6),
        HARNESS_F64("kl-horizon", "kl_horizon", &o.kl_horizon, 1, 1e12),
        HARNESS_F64("ptx-coef", "ptx_coef", &o.ptx_coef, 0, 1e6),
        HARNESS_I64("ptx-batch", "ptx_batch", &o.ptx_batch, 1, 1 << 16),
        HARNESS_I64("ptx-seq", "ptx_seq", &o.ptx_seq, 1, 1 << 20),
        HARNESS_F64("clip", "clip", &o.clip, 1e-6, 100),
        HARNESS_F64("value-clip", "value_clip", &o.value_clip, 1e-6, 1e6),
        HARNESS_F64("gamma", "gamma", &o.gamma, 0, 1),
        HARNESS_F64("lam", "lam", &o.lam, 0, 1),
        HARNESS_BOOL("whiten-rewards", "whiten_rewards", &o.whiten_rewards),
        HARNESS_F64("missing-eos-score", "missing_eos_score", &o.missing_eos_score, -1e6, 1e6),
        HARNESS_F64("temperature", "temperature", &o.temperature, 1e-3, 100),
        HARNESS_I64("max-new", "max_new", &o.max_new, 1, 1 << 20),
        HARNESS_F64("value-lr", "value_lr", &o.value_lr, 0, 1e4),
        HARNESS_INFO_F64("top_p", &o.top_p),
        HARNESS_INFO_I64("top_k", &o.top_k),
        HARNESS_INFO_STR("template", &o.template_name),
        HARNESS_RUNTIME_STR("reward", "reward", &o.reward),
        HARNESS_RUNTIME_F64("timeout", "timeout", &o.timeout, 0.001, 3600),
        HARNESS_RUNTIME_I64("tries", "tries", &o.tries, 1, 100),
        HARNESS_RUNTIME_F64("reward-timeout", "reward_timeout", &o.reward_timeout, 0, 1e7),
        HARNESS_RUNTIME_STR("curve-keys", "curve_keys", &o.curve_keys),
    };
    parse(&o, set, (int)(sizeof set / sizeof set[0]), argc, argv);
    cli_threads_apply(o.args.common.threads);
    err_t err = ERR_INIT;
    train_t t = {.o = &o};
    if (load(&t, &err) || (!o.args.resume && harness_prepare_out(&o.args, &err))) {
        release(&t);
        harness_args_release(&o.args);
        cli_die(PROG, "%s", err.msg);
    }
    harness_result_t r;
    if (run(&t, &r, &err)) {
        release(&t);
        harness_args_release(&o.args);
        cli_die(PROG, "%s", err.msg);
    }
    summary(&t, &r);
    release(&t);
    harness_args_release(&o.args);
    return 0;
}
