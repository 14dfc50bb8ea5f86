/* reward/train.c: `reward train` — the reward model of InstructGPT §3.5. It starts from the SFT
 * model: the trunk is copied and the LM head replaced by score.weight (1, C), as
 * GPT2ForSequenceClassification has it, initialised to zero (see INIT below). A completion
 * reads template(prompt, response) + end-of-text, tokenized by rm_encode — the very tokens
 * rm_score (reward score, reward serve) gives the model — and its reward is the score at that
 * final end-of-text, found from the row's explicit length (rows are right-padded with the
 * padding id, which is the end-of-text id in the models sft writes, so "the first end-of-text"
 * would be wrong for a response holding one and "the last non-pad token" would miss it).
 *
 * A batch element is one ranking: a labeler's order of one prompt's K completions. Its
 * completions are forwarded once each, and every untied pair (w, l) is one comparison:
 * loss = −1/P · Σ log σ(r_w − r_l) over the P pairs (rl_rank_*), so a prompt weighs the same
 * whatever its K. A prompt ranked by several labelers gives one element per ranking: the
 * rankings are independent noisy observations of the same order, and where two labelers
 * disagree on a pair, the two terms pull its reward difference toward 0 — the right estimate
 * for a pair people cannot tell apart. (Averaging the rankings first would throw away how
 * sure the labelers were.) Rankings whose completions all tie have no pair and are left out.
 *
 * The split is by prompt (store_is_val), so every ranking of a validation prompt stays out of
 * training; OUT/best keeps the best validation pairwise accuracy. When the run ends (done or
 * stopped), rlhf.reward_bias of OUT and OUT/best is set so the training demonstrations
 * (--demos) score mean 0 (InstructGPT); checkpoints written during training carry 0. */
#include "cli.h"
#include "data.h"
#include "fs.h"
#include "harness.h"
#include "model.h"
#include "reward.h"
#include "rl.h"
#include "rm.h"
#include "stats.h"
#include "store.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG "reward train"
/* Peak learning rate and passes, measured on the demo model (README, Reward model): 3e-4 for
 * 2 epochs reached held-out accuracy 0.646 (gold order 0.774), 1e-4 for 1 epoch 0.591 (0.729).
 * InstructGPT's 9e-6 and single epoch are for a 6B model on far more comparisons. */
#define REWARD_TRAIN_LR       3e-4
#define REWARD_TRAIN_LR_S     "3e-4"
#define REWARD_TRAIN_EPOCHS   2
#define REWARD_TRAIN_EPOCHS_S "2"
/* INIT: score.weight starts at zero, not at N(0, 0.02) as transformers' _init_weights draws it.
 * Every reward is then exactly 0, so the run starts at chance (loss ln 2, accuracy ½: the
 * initial_val_accuracy in run.json is a true baseline, not a random head's luck), and nothing
 * about the starting order depends on the seed. Learning still starts at once: the head's
 * gradient Σ dr·h is not zero, and the trunk's follows from the second step. */

#define HELP                                                                                       \
    "usage: reward train --db FILE --init DIR --out DIR [options]\n"                               \
    "\n"                                                                                           \
    "Trains a reward model on the rankings in --db (`reward label` or `reward import`),\n"         \
    "starting from the SFT model in --init: the trunk is copied and the language-model head\n"     \
    "replaced by a scalar head (score.weight, GPT2ForSequenceClassification, zero at start).\n"    \
    "A completion's reward is the score at the end-of-text after \"Human: PROMPT\\n\\n\"\n"        \
    "\"Assistant: RESPONSE\". Each ranking of K completions is one batch element: the K are\n"     \
    "forwarded once and every untied pair counts, loss = -1/P sum log sigmoid(r_w - r_l).\n"       \
    "Prompts are split into training and validation by a hash of their text (--val-fraction);\n"   \
    "OUT/best keeps the best validation pairwise accuracy. At the end rlhf.reward_bias is set\n"   \
    "so the --demos score mean 0 (InstructGPT); the --val-demos mean is reported.\n"               \
    "\n"                                                                                           \
    "data and model:\n"                                                                            \
    "  --db FILE            the rankings database\n"                                               \
    "  --init DIR           SFT model to start from (a language model with its tokenizer)\n"       \
    "  --out DIR            output directory (created with its parents)\n"                         \
    "  --val-fraction F     share of prompts held out for validation "                             \
    "(default " REWARD_VAL_FRACTION_S ")\n"                                                        \
    "  --demos FILE         training demonstrations (JSONL prompt/response): their mean score\n"   \
    "                       is made 0 by rlhf.reward_bias (without: the bias stays 0)\n"           \
    "  --val-demos FILE     held-out demonstrations: their mean score is reported\n"               \
    "  --seq T              most tokens of a completion (default: the model's context); a\n"       \
    "                       longer response is cut, its end-of-text kept (as reward score does)\n" \
    "training:\n"                                                                                  \
    "  --epochs N           passes over the training rankings (default " REWARD_TRAIN_EPOCHS_S     \
    "), or\n"                                                                                      \
    "  --steps N            updates\n"                                                             \
    "  --batch B            rankings (prompts) per update (default 8)\n"                           \
    "  --lr X               peak learning rate (default " REWARD_TRAIN_LR_S ")\n"                  \
    "  --lr-min X           floor of the cosine decay (default lr/10)\n"                           \
    "  --warmup N           linear warmup updates (default: 5% of the steps)\n"                    \
    "  --weight-decay X     AdamW weight decay on matrices (default 0.1)\n"                        \
    "  --grad-clip X        clip the global gradient norm to X (default 1; 0 = off)\n"             \
    "  --eval-every N       validate and checkpoint every N steps (default 50)\n"                  \
    "  --resume             continue OUT's checkpoint exactly (its run.json restores the other\n"  \
    "                       options; only --threads, --log and --stop-at may change)\n"            \
    "  --overwrite          replace a checkpoint already in OUT\n"                                 \
    "  --stop-at N          stop after step N and save, as Ctrl-C does (resume later)\n"           \
    "\n"                                                                                           \
    "Ctrl-C stops after the current step and saves (exit 0); a NaN or infinite loss stops\n"       \
    "with the last good checkpoint intact (exit 1). Exit status: 0 ok, 1 failure, 2 usage.\n"      \
    "\n"

typedef struct {
    const char *db, *init, *demos, *val_demos, *template_name;
    double val_fraction;
    int64_t epochs, steps, batch, seq;
    harness_args_t args;
} opts_t;

/* ---- rankings as token rows ------------------------------------------------------------- */

/* Batch elements, tokenized once: element e is rows row0[e] .. row0[e+1]), row r's tokens are
 * ids[tok0[r] .. tok0[r+1]) ending in the end-of-text, its rank rank[r]. Demonstrations use the
 * same layout with one row per element. */
typedef struct {
    int64_t n, rows; /* elements, rows */
    int64_t *row0;   /* [n + 1] */
    int64_t *tok0;   /* [rows + 1] */
    int32_t *rank;   /* [rows] */
    int32_t *ids;    /* [tok0[rows]] */
    int64_t cap_n, cap_rows, cap_rank, cap_ids;
    int64_t max_k, max_len;     /* most rows of an element, most tokens of a row */
    int64_t prompts, pairs;     /* prompts with an element, untied pairs */
    int64_t truncated, no_pair; /* rows cut to --seq, rankings without a pair (left out) */
} rset_t;

static void rset_release(rset_t *s) {
    free(s->row0);
    free(s->tok0);
    free(s->rank);
    free(s->ids);
    memset(s, 0, sizeof *s);
}

/* Grows *p (elements of size sz, capacity *cap) to hold need. */
static int grow(void *p, int64_t *cap, int64_t need, size_t sz) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*(void **)p, (size_t)c * sz);
    if (!q) return -1;
    *(void **)p = q;
    *cap = c;
    return 0;
}

static int rset_init(rset_t *s, err_t *err) {
    memset(s, 0, sizeof *s);
    if (grow(&s->row0, &s->cap_n, 1, sizeof *s->row0) ||
        grow(&s->tok0, &s->cap_rows, 1, sizeof *s->tok0))
        return err_setf(err, "out of memory");
    s->row0[0] = s->tok0[0] = 0;
    return 0;
}

/* Appends one row (n ids, rank) to the open element. */
static int rset_row(rset_t *s, const int32_t *ids, int64_t n, int32_t rank, err_t *err) {
    const int64_t r = s->rows, at = s->tok0[r];
    if (grow(&s->tok0, &s->cap_rows, r + 2, sizeof *s->tok0) ||
        grow(&s->rank, &s->cap_rank, r + 1, sizeof *s->rank) ||
        grow(&s->ids, &s->cap_ids, at + n, sizeof *s->ids))
        return err_setf(err, "out of memory");
    memcpy(s->ids + at, ids, (size_t)n * sizeof *ids);
    s->rank[r] = rank;
    s->tok0[r + 1] = at + n;
    s->rows++;
    if (n > s->max_len) s->max_len = n;
    return 0;
}

/* Closes the element holding the rows added since the last close. */
static int rset_close(rset_t *s, err_t *err) {
    if (grow(&s->row0, &s->cap_n, s->n + 2, sizeof *s->row0)) return err_setf(err, "out of memory");
    s->row0[++s->n] = s->rows;
    const int64_t k = s->rows - s->row0[s->n - 1];
    if (k > s->max_k) s->max_k = k;
    return 0;
}

/* What store_foreach_ranked's callback needs. */
typedef struct {
    rset_t *set;
    const model_t *m;
    int64_t context;
    int32_t *ids; /* (STORE_K_MAX · context) one prompt's completions */
    int64_t lens[STORE_K_MAX];
    int cut[STORE_K_MAX];
    err_t *err;
} collect_t;

/* Untied pairs among the ranks (0 = not in this ranking). */
static int64_t untied_pairs(const int *rank, int k) {
    int64_t p = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) p += rank[i] > 0 && rank[j] > 0 && rank[i] < rank[j];
    return p;
}

/* One ranked prompt: its completions tokenized once, one element per ranking with a pair. */
static int collect_item(const store_item_t *it, void *ctx) {
    collect_t *c = ctx;
    rset_t *s = c->set;
    if (it->k > STORE_K_MAX)
        return err_setf(c->err, "prompt %" PRId64 ": %d completions", it->id, it->k);
    for (int i = 0; i < it->k; i++) {
        c->lens[i] =
            rm_encode(c->m, it->text, it->len, it->completions[i].text, it->completions[i].len,
                      c->ids + (int64_t)i * c->context, c->context, &c->cut[i], c->err);
        if (c->lens[i] < 0)
            return err_prefixf(c->err, "prompt %" PRId64 ", completion %" PRId64 ": ", it->id,
                               it->completions[i].id);
    }
    bool any = false;
    for (int r = 0; r < it->n_rankings; r++) {
        const store_ranking_t *rk = &it->rankings[r];
        const int64_t P = untied_pairs(rk->rank, it->k);
        if (P == 0) {
            s->no_pair++;
            continue;
        }
        for (int i = 0; i < it->k; i++) {
            if (rk->rank[i] <= 0) continue;
            if (rset_row(s, c->ids + (int64_t)i * c->context, c->lens[i], rk->rank[i], c->err))
                return -1;
            s->truncated += c->cut[i];
        }
        if (rset_close(s, c->err)) return -1;
        s->pairs += P;
        any = true;
    }
    s->prompts += any;
    return 0;
}

/* The rankings of one split of db into set. */
static int load_split(rset_t *set, store_t *st, store_split_t split, double val_fraction,
                      const model_t *m, int64_t context, err_t *err) {
    collect_t c = {.set = set, .m = m, .context = context, .err = err};
    if (rset_init(set, err)) return -1;
    if (!(c.ids = malloc((size_t)(STORE_K_MAX * context) * sizeof *c.ids)))
        return err_setf(err, "out of memory");
    const store_query_t q = {.split = split, .val_fraction = val_fraction};
    const int rc = store_foreach_ranked(st, &q, collect_item, &c, err);
    free(c.ids);
    return rc ? -1 : 0;
}

/* Demonstrations as one-row elements (rm_encode: the tokens reward score reads). */
static int load_demos(rset_t *set, const char *path, const model_t *m, int64_t context,
                      err_t *err) {
    data_examples_t ex = {0};
    int32_t *ids = NULL;
    int rc = rset_init(set, err) || data_demos_load(&ex, path, err) ? -1 : 0;
    if (rc == 0 && !(ids = malloc((size_t)context * sizeof *ids)))
        rc = err_setf(err, "out of memory");
    for (int64_t i = 0; rc == 0 && i < ex.n; i++) {
        int cut = 0;
        const int64_t n =
            rm_encode(m, ex.ex[i].prompt, (size_t)ex.ex[i].prompt_len, ex.ex[i].response,
                      (size_t)ex.ex[i].response_len, ids, context, &cut, err);
        if (n < 0)
            rc = err_prefixf(err, "%s:%" PRId64 ": ", path, ex.ex[i].line);
        else if (rset_row(set, ids, n, 1, err) || rset_close(set, err))
            rc = -1;
        set->truncated += cut;
    }
    free(ids);
    data_examples_release(&ex);
    return rc;
}

/* ---- the model and its buffers --------------------------------------------------------- */

typedef struct {
    model_t m;        /* the reward model (m.model) with the tokenizer of --init or OUT */
    ckpt_meta_t meta; /* what checkpoints record (reward_bias 0 until the end) */
    const char *tokenizer_dir;
    rset_t train, val, demos, val_demos;
    data_order_t order; /* epoch and pos: the data position train_state.bin keeps */
    int64_t B, R_max, T_max;
    int64_t *idx;              /* (R_max ≥ B) elements of the batch */
    int32_t *tokens;           /* (R_max, T_max) */
    int64_t *lengths;          /* (R_max) */
    int32_t *ranks;            /* (R_max) */
    int64_t *counts;           /* (R_max) rows per element */
    float *rewards, *drewards; /* (R_max) */
    float *dvalues;            /* (R_max, T_max) */
    double val_loss;           /* of the last validation */
    harness_t *h;
} train_t;

/* Right-padded rows of the elements idx[0..n) of s into t's buffers; returns the rows and sets
 * *T to the longest. */
static int64_t gather(train_t *t, const rset_t *s, const int64_t *idx, int64_t n, int64_t *T) {
    int64_t R = 0, len = 1;
    for (int64_t b = 0; b < n; b++)
        for (int64_t r = s->row0[idx[b]]; r < s->row0[idx[b] + 1]; r++) {
            const int64_t l = s->tok0[r + 1] - s->tok0[r];
            if (l > len) len = l;
        }
    for (int64_t b = 0; b < n; b++) {
        const int64_t e = idx[b];
        t->counts[b] = s->row0[e + 1] - s->row0[e];
        for (int64_t r = s->row0[e]; r < s->row0[e + 1]; r++, R++) {
            const int64_t l = s->tok0[r + 1] - s->tok0[r];
            int32_t *row = t->tokens + R * len;
            memcpy(row, s->ids + s->tok0[r], (size_t)l * sizeof *row);
            for (int64_t i = l; i < len; i++) row[i] = t->m.pad_id;
            t->lengths[R] = l;
            t->ranks[R] = s->rank[r];
        }
    }
    *T = len;
    return R;
}

/* Rewards (without bias) of the elements idx[0..n) into t->rewards; returns the rows. */
static int64_t forward(train_t *t, gpt_model_t *g, const rset_t *s, const int64_t *idx, int64_t n,
                       int64_t *T) {
    const int64_t R = gather(t, s, idx, n, T);
    gpt_forward(g, t->tokens, R, *T);
    rl_last_forward(t->rewards, g->values, t->lengths, R, *T);
    return R;
}

/* One update on the next B rankings of the epoch's order. */
static int step_hook(void *ctx, harness_t *h, int64_t step, harness_step_t *out, err_t *err) {
    train_t *t = ctx;
    gpt_model_t *g = t->m.model;
    (void)step;
    data_order_next(&t->order, t->idx, t->B);
    int64_t T;
    const int64_t R = forward(t, g, &t->train, t->idx, t->B, &T);
    rl_rank_stats_t st;
    out->loss = rl_rank_forward(&st, t->rewards, t->ranks, t->counts, t->B);
    out->tokens = R * T;
    harness_step_figure(out, "accuracy",
                        st.pairs > 0 ? st.correct / (double)st.pairs : (double)NAN);
    harness_step_figure(out, "pairs", (double)st.pairs);
    if (!isfinite(out->loss)) return 0;
    rl_rank_backward(t->drewards, t->rewards, t->ranks, t->counts, t->B);
    rl_last_backward(t->dvalues, t->drewards, t->lengths, R, T);
    gpt_zero_grad(g);
    gpt_backward(g, t->dvalues);
    return harness_update(h, 0, err);
}

/* Pairwise accuracy and loss over a set, B elements at a time in order. */
static void rank_eval(train_t *t, const rset_t *s, double *accuracy, double *loss) {
    double correct = 0.0, lsum = 0.0;
    int64_t pairs = 0, prompts = 0;
    for (int64_t first = 0; first < s->n; first += t->B) {
        const int64_t n = s->n - first < t->B ? s->n - first : t->B;
        for (int64_t b = 0; b < n; b++) t->idx[b] = first + b;
        int64_t T;
        forward(t, t->m.model, s, t->idx, n, &T);
        rl_rank_stats_t st;
        lsum += rl_rank_forward(&st, t->rewards, t->ranks, t->counts, n) * (double)st.prompts;
        correct += st.correct;
        pairs += st.pairs;
        prompts += st.prompts;
    }
    *accuracy = pairs > 0 ? correct / (double)pairs : (double)NAN;
    *loss = prompts > 0 ? lsum / (double)prompts : (double)NAN;
}

static int validate_hook(void *ctx, harness_t *h, double *accuracy, err_t *err) {
    train_t *t = ctx;
    (void)err;
    rank_eval(t, &t->val, accuracy, &t->val_loss);
    /* the loss beside the metric, in the log only (the metric is what best/ is chosen by) */
    return cli_log_event(harness_log(h), err, "val_loss", "{s:I, s:o}", "step",
                         (json_int_t)harness_step(h), "loss", cli_json_number(t->val_loss));
}

static int save_hook(void *ctx, const char *dir, err_t *err) {
    const train_t *t = ctx;
    return ckpt_save(dir, t->m.model, &t->meta, t->tokenizer_dir, err);
}

static int restore_hook(void *ctx, err_t *err) {
    train_t *t = ctx;
    return data_order_seek(&t->order, t->order.epoch, t->order.pos, err);
}

/* Mean (with its t interval) and sd of g's raw scores (no bias) over the one-row elements of
 * s, R_max rows at a time (idx and counts hold R_max ≥ B entries). */
static int demo_scores(train_t *t, gpt_model_t *g, const rset_t *s, stats_ci_t *ci, double *sd,
                       err_t *err) {
    double *x = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *x);
    if (!x) return err_setf(err, "out of memory");
    for (int64_t first = 0; first < s->n; first += t->R_max) {
        const int64_t n = s->n - first < t->R_max ? s->n - first : t->R_max;
        for (int64_t i = 0; i < n; i++) t->idx[i] = first + i;
        int64_t T;
        const int64_t R = forward(t, g, s, t->idx, n, &T);
        for (int64_t i = 0; i < R; i++) x[first + i] = (double)t->rewards[i];
    }
    *ci = stats_mean(x, s->n);
    double ss = 0.0;
    for (int64_t i = 0; i < s->n; i++) ss += (x[i] - ci->mean) * (x[i] - ci->mean);
    *sd = s->n > 1 ? sqrt(ss / (double)(s->n - 1)) : (double)NAN;
    free(x);
    return 0;
}

/* ---- the bias, once training ends ------------------------------------------------------- */

typedef struct {
    double bias;          /* rlhf.reward_bias written */
    stats_ci_t demos;     /* raw mean of --demos (before the bias) */
    stats_ci_t val_demos; /* mean of --val-demos with the bias: reported, not forced */
    double demos_sd, val_demos_sd;
} bias_t;

/* Adds the bias figures to DIR/run.json's "results" (rewritten atomically). */
static int patch_run_json(const char *dir, const bias_t *b, err_t *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/run.json", dir);
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc) return err_setf(err, "%s: %s", path, je.text);
    json_t *res = json_object_get(doc, "results");
    json_t *vci =
        json_pack("[oo]", cli_json_number(b->val_demos.lo), cli_json_number(b->val_demos.hi));
    int rc =
        !json_is_object(res) || !vci ||
                json_object_set_new(res, "reward_bias", json_real(b->bias)) ||
                json_object_set_new(res, "demos", json_integer(b->demos.n)) ||
                json_object_set_new(res, "demos_raw_mean", cli_json_number(b->demos.mean)) ||
                json_object_set_new(res, "val_demos", json_integer(b->val_demos.n)) ||
                json_object_set_new(res, "val_demos_mean", cli_json_number(b->val_demos.mean)) ||
                json_object_set_new(res, "val_demos_ci95", vci)
            ? err_setf(err, "%s: cannot add the reward bias", path)
            : 0;
    char *text = rc ? NULL : json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    if (rc == 0 && !text) rc = err_setf(err, "%s: cannot encode", path);
    if (rc == 0) {
        const size_t len = strlen(text);
        text[len] = '\n';
        rc = fs_write_atomic(path, text, len + 1, err);
    }
    free(text);
    json_decref(doc);
    return rc;
}

/* Scores the demonstrations with g, sets meta's bias so --demos score mean 0, and writes g
 * with it into dir (the weights' bytes are unchanged) and the figures into dir/run.json. */
static int set_bias(train_t *t, gpt_model_t *g, ckpt_meta_t *meta, const char *dir,
                    const char *tokenizer_dir, bias_t *b, err_t *err) {
    memset(b, 0, sizeof *b);
    b->demos.mean = b->val_demos.mean = b->val_demos.lo = b->val_demos.hi = NAN;
    if (t->demos.n > 0 && demo_scores(t, g, &t->demos, &b->demos, &b->demos_sd, err)) return -1;
    b->bias = t->demos.n > 0 ? -b->demos.mean : 0.0;
    if (t->val_demos.n > 0) {
        if (demo_scores(t, g, &t->val_demos, &b->val_demos, &b->val_demos_sd, err)) return -1;
        b->val_demos.mean += b->bias;
        b->val_demos.lo += b->bias;
        b->val_demos.hi += b->bias;
    }
    meta->reward_bias = b->bias;
    if (ckpt_save(dir, g, meta, tokenizer_dir, err)) return -1;
    return patch_run_json(dir, b, err);
}

/* The bias of OUT (the model in memory) and of OUT/best (read back from disk). */
static int set_biases(train_t *t, const char *out, bias_t *last, bias_t *best, bool *has_best,
                      err_t *err) {
    ckpt_meta_t meta = t->meta;
    if (set_bias(t, t->m.model, &meta, out, t->tokenizer_dir, last, err)) return -1;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/best", out);
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/model.safetensors");
    *has_best = access(dir, F_OK) == 0;
    dir[strlen(out) + 5] = '\0';
    if (!*has_best) return 0;
    ckpt_meta_t bmeta;
    gpt_model_t *g = ckpt_load(dir, &bmeta, err);
    int rc = !g || gpt_alloc(g, t->R_max, t->T_max, false, err) ||
                     set_bias(t, g, &bmeta, dir, NULL, best, err)
                 ? -1
                 : 0;
    gpt_destroy(&g);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------ */

static void parse(opts_t *o, harness_setting_t *set, int nset, int argc, char **argv) {
    harness_parse(&o->args, PROG, HELP, argc, argv, set, nset);
    cli_require(PROG, "--db", o->db);
    cli_require(PROG, "--init", o->init);
    if (o->epochs && o->steps) cli_usage_error(PROG, "--epochs and --steps exclude each other");
    if (!o->epochs && !o->steps) o->epochs = REWARD_TRAIN_EPOCHS;
    if (o->args.lr < 0) o->args.lr = REWARD_TRAIN_LR;
    if (o->args.lr_min < 0) o->args.lr_min = o->args.lr / 10;
}

static void release(train_t *t) {
    harness_destroy(&t->h);
    model_release(&t->m);
    rset_release(&t->train);
    rset_release(&t->val);
    rset_release(&t->demos);
    rset_release(&t->val_demos);
    data_order_release(&t->order);
    free(t->idx);
    free(t->tokens);
    free(t->lengths);
    free(t->ranks);
    free(t->counts);
    free(t->rewards);
    free(t->drewards);
    free(t->dvalues);
}

/* The reward model: OUT's on a resume, else --init's trunk under a zero score head. */
static int load_model(train_t *t, const opts_t *o, err_t *err) {
    t->tokenizer_dir = o->args.resume ? o->args.out : o->init;
    if (o->args.resume) return model_load(&t->m, o->args.out, MODEL_HEAD_REWARD, err) ? -1 : 0;
    if (model_load(&t->m, o->init, MODEL_HEAD_LM, err)) return -1;
    gpt_model_t *rm = gpt_new(&t->m.model->cfg, GPT_HEAD_SCORE, err); /* zeroed: INIT above */
    if (!rm || gpt_copy_params(rm, t->m.model, err)) {
        gpt_destroy(&rm);
        return -1;
    }
    gpt_destroy(&t->m.model);
    t->m.model = rm;
    return 0;
}

/* Model, rankings and demonstrations, all checked before anything is written. */
static int load(train_t *t, opts_t *o, err_t *err) {
    if (o->args.resume && harness_prepare_out(&o->args, err)) return -1;
    if (load_model(t, o, err)) return -1;
    t->meta = t->m.meta;
    t->meta.eos_id = t->m.eos_id;
    /* no pad_token_id in config.json: transformers then scores one unpadded sequence at its
     * last token, the end-of-text, as we do (with one, it would read the token before the
     * first padding id — the end-of-text itself); model_load pads with eos_id */
    t->meta.pad_id = -1;
    t->meta.reward_bias = 0.0;
    snprintf(t->meta.template_name, sizeof t->meta.template_name, "%s", DATA_TEMPLATE_NAME);
    const int64_t ctx = t->m.model->cfg.n_positions;
    if (o->seq > ctx)
        return err_setf(err, "--seq %" PRId64 " is longer than the model's context (%" PRId64 ")",
                        o->seq, ctx);
    if (!o->seq) o->seq = ctx;
    store_t *st = store_open(o->db, NULL, err);
    if (!st) return -1;
    int rc = load_split(&t->train, st, STORE_SPLIT_TRAIN, o->val_fraction, &t->m, o->seq, err) ||
                     load_split(&t->val, st, STORE_SPLIT_VAL, o->val_fraction, &t->m, o->seq, err)
                 ? err_prefixf(err, "%s: ", o->db)
                 : 0;
    store_close(&st);
    if (rc) return -1;
    if (t->train.n == 0)
        return err_setf(err,
                        "%s: no ranking with a pair in the training split (%" PRId64
                        " ranked prompts held out for validation): rank completions first "
                        "(reward label) or lower --val-fraction",
                        o->db, t->val.prompts);
    if (o->demos && load_demos(&t->demos, o->demos, &t->m, o->seq, err)) return -1;
    if (o->val_demos && load_demos(&t->val_demos, o->val_demos, &t->m, o->seq, err)) return -1;
    return 0;
}

/* Buffers sized once: B rankings × the most completions of one, the longest row of any set. */
static int alloc_buffers(train_t *t, const opts_t *o, err_t *err) {
    const rset_t *sets[4] = {&t->train, &t->val, &t->demos, &t->val_demos};
    int64_t k = 1;
    t->T_max = 1;
    for (int i = 0; i < 4; i++) {
        if (sets[i]->max_k > k) k = sets[i]->max_k;
        if (sets[i]->max_len > t->T_max) t->T_max = sets[i]->max_len;
    }
    t->B = o->batch;
    t->R_max = t->B * k;
    const size_t R = (size_t)t->R_max, RT = (size_t)(t->R_max * t->T_max);
    if (!(t->idx = malloc(R * sizeof *t->idx)) || !(t->tokens = malloc(RT * sizeof *t->tokens)) ||
        !(t->lengths = malloc(R * sizeof *t->lengths)) ||
        !(t->ranks = malloc(R * sizeof *t->ranks)) ||
        !(t->counts = malloc(R * sizeof *t->counts)) ||
        !(t->rewards = malloc(R * sizeof *t->rewards)) ||
        !(t->drewards = malloc(R * sizeof *t->drewards)) ||
        !(t->dvalues = malloc(RT * sizeof *t->dvalues)))
        return err_setf(err, "out of memory");
    if (gpt_alloc(t->m.model, t->R_max, t->T_max, true, err)) return -1;
    if (data_order_init(&t->order, t->train.n, o->args.common.seed, err))
        return err_prefixf(err, "%s: ", o->db);
    return 0;
}

static void print_bias(const char *what, const bias_t *b) {
    printf("  %-10s reward_bias %+.6f", what, b->bias);
    if (b->demos.n > 0)
        printf(" (training demonstrations: raw mean %.4f over %" PRId64 ")", b->demos.mean,
               b->demos.n);
    else
        printf(" (no --demos: not set)");
    printf("\n");
    if (b->val_demos.n > 0)
        printf("  %-10s held-out demonstrations score %.4f [%.4f, %.4f] (sd %.4f, n %" PRId64 ")\n",
               "", b->val_demos.mean, b->val_demos.lo, b->val_demos.hi, b->val_demos_sd,
               b->val_demos.n);
}

static void summary(const train_t *t, const opts_t *o, const harness_result_t *r,
                    const bias_t *last, const bias_t *best, bool has_best) {
    printf("%s: %s %s at step %" PRId64 "/%" PRId64 "\n", PROG, o->args.out, r->status, r->step,
           o->steps);
    printf("  data       training %" PRId64 " rankings of %" PRId64 " prompts (%" PRId64
           " pairs); validation %" PRId64 " rankings of %" PRId64 " prompts (%" PRId64 " pairs)\n",
           t->train.n, t->train.prompts, t->train.pairs, t->val.n, t->val.prompts, t->val.pairs);
    if (t->train.no_pair + t->val.no_pair > 0)
        printf("             %" PRId64 " rankings left out: every completion tied\n",
               t->train.no_pair + t->val.no_pair);
    if (t->train.truncated + t->val.truncated > 0)
        printf("             %" PRId64 " completions cut to %" PRId64 " tokens\n",
               t->train.truncated + t->val.truncated, o->seq);
    printf("  speed      %.0f tokens/s over %.1f s\n", r->tokens_per_s, r->elapsed_s);
    printf("  loss       train %.4f (last step)", r->loss);
    if (isfinite(t->val_loss)) printf(", validation %.4f", t->val_loss);
    printf(" (ln 2 = %.4f is chance)\n", log(2.0));
    if (isfinite(r->val))
        printf("  accuracy   validation %.4f at step %" PRId64 " (start %.4f)\n", r->val,
               r->val_step, r->initial_val);
    if (r->best_step > 0)
        printf("  best       validation accuracy %.4f at step %" PRId64 " in %s/best\n",
               r->best_val, r->best_step, o->args.out);
    print_bias("last", last);
    if (has_best) print_bias("best", best);
}

int reward_cmd_train(int argc, char **argv) {
    opts_t o = {.batch = 8,
                .val_fraction = REWARD_VAL_FRACTION,
                .template_name = DATA_TEMPLATE_NAME,
                .args = HARNESS_ARGS_INIT(50)};
    harness_setting_t set[] = {
        HARNESS_STR("db", "db", &o.db),
        HARNESS_STR("init", "init", &o.init),
        HARNESS_F64("val-fraction", "val_fraction", &o.val_fraction, 0, 1),
        HARNESS_STR("demos", "demos", &o.demos),
        HARNESS_STR("val-demos", "val_demos", &o.val_demos),
        HARNESS_I64("epochs", "epochs", &o.epochs, 1, 1 << 20),
        HARNESS_I64("steps", "steps", &o.steps, 1, (double)(INT64_C(1) << 40)),
        HARNESS_I64("batch", "batch", &o.batch, 1, 1 << 16),
        HARNESS_I64("seq", "seq", &o.seq, 2, 1 << 20),
        HARNESS_INFO_STR("template", &o.template_name),
    };
    parse(&o, set, (int)(sizeof set / sizeof set[0]), argc, argv);
    cli_threads_apply(o.args.common.threads);
    err_t err = ERR_INIT;
    train_t t = {.val_loss = NAN};
    /* 1. read and check everything; nothing is written before this block ends */
    if (load(&t, &o, &err) || alloc_buffers(&t, &o, &err)) cli_die(PROG, "%s", err.msg);
    if (!o.steps) o.steps = (o.epochs * t.train.n + o.batch - 1) / o.batch;
    if (o.args.warmup < 0) o.args.warmup = o.steps / 20;
    if (!o.args.resume && harness_prepare_out(&o.args, &err)) cli_die(PROG, "%s", err.msg);

    /* 2. train */
    const harness_config_t hc = {
        .prog = PROG,
        .args = &o.args,
        .steps = o.steps,
        .metric = "accuracy",
        .higher_better = true,
        .hooks = {.ctx = &t,
                  .step = step_hook,
                  .validate = t.val.n > 0 ? validate_hook : NULL,
                  .save = save_hook,
                  .restore = restore_hook},
        .state = {{"data.epoch", &t.order.epoch, sizeof t.order.epoch},
                  {"data.pos", &t.order.pos, sizeof t.order.pos}},
        .nstate = 2,
    };
    if (t.val.n == 0)
        cli_warn(PROG, "%s: no ranked prompt in the validation split: no validation, no best/",
                 o.db);
    if (!(t.h = harness_new(&hc, &err)) || harness_add_model(t.h, "", t.m.model, NULL, &err) < 0 ||
        cli_json_merge(harness_results(t.h), &err, "{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                       "train_rankings", (json_int_t)t.train.n, "train_prompts",
                       (json_int_t)t.train.prompts, "train_pairs", (json_int_t)t.train.pairs,
                       "val_rankings", (json_int_t)t.val.n, "val_prompts",
                       (json_int_t)t.val.prompts, "val_pairs", (json_int_t)t.val.pairs, "truncated",
                       (json_int_t)(t.train.truncated + t.val.truncated)))
        cli_die(PROG, "%s", err.msg);
    harness_result_t r;
    bias_t last, best;
    bool has_best = false;
    if (harness_run(t.h, &r, &err) || set_biases(&t, o.args.out, &last, &best, &has_best, &err)) {
        release(&t);
        harness_args_release(&o.args);
        cli_die(PROG, "%s", err.msg);
    }
    summary(&t, &o, &r, &last, &best, has_best);
    release(&t);
    harness_args_release(&o.args);
    return 0;
}
