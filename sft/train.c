/* sft/train.c: `sft train` — supervised fine-tuning (InstructGPT's SFT stage): next-token
 * cross-entropy on the response tokens of demonstrations only, the prompt masked (DESIGN §4),
 * starting from a base model. Demonstrations go through the one template (data.h) and are
 * tokenized and checked whole before anything is written: a bad line is
 * "sft: error: FILE:LINE: ..." and exit 1 with OUT untouched. Batches are right-padded and cut
 * to their longest example; the example order is a fresh permutation per epoch (data_order),
 * so the data position is two integers and --resume continues exactly. Under mpirun every
 * rank draws the same global batch of B and trains on its share of it (harness.h), so the data
 * position does not depend on the number of ranks. */
#include "cli.h"
#include "data.h"
#include "dist.h"
#include "harness.h"
#include "model.h"
#include "sft.h"
#include "tok.h"
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG         "sft train"
#define SFT_TRAIN_LR 3e-4 /* default peak learning rate (--help says so) */

#define HELP                                                                                       \
    "usage: sft train --base DIR --demos FILE --out DIR [options]\n"                               \
    "\n"                                                                                           \
    "Fine-tunes the model in --base on demonstrations, JSONL {\"prompt\": ..., \"response\": "     \
    "...}\n"                                                                                       \
    "per line: the model reads \"Human: PROMPT\\n\\nAssistant: RESPONSE<|endoftext|>\" and is\n"   \
    "trained on the response tokens and the end-of-text only (the prompt is masked). Every\n"      \
    "line of --demos and --val-demos is checked before training starts. OUT gets the last\n"       \
    "checkpoint (with train_state.bin for --resume and run.json) and OUT/best the model with\n"    \
    "the lowest held-out loss.\n"                                                                  \
    "\n"                                                                                           \
    "data and model:\n"                                                                            \
    "  --base DIR        model to start from (config.json, model.safetensors, vocab.json,\n"       \
    "                    merges.txt): `sft pretrain`'s OUT, or a GPT-2 snapshot\n"                 \
    "  --demos FILE      training demonstrations (JSONL)\n"                                        \
    "  --val-demos FILE  held-out demonstrations: loss before training and every\n"                \
    "                    --eval-every steps, best/ checkpoint\n"                                   \
    "  --out DIR         output directory (created with its parents)\n"                            \
    "  --seq T           longest example in tokens (default: the model's context); a longer\n"     \
    "                    one is an error\n"                                                        \
    "training:\n"                                                                                  \
    "  --epochs N        passes over --demos (default 2), or\n"                                    \
    "  --steps N         updates\n"                                                                \
    "  --batch B         demonstrations per update (default 16)\n"                                 \
    "  --lr X            peak learning rate (default 3e-4)\n" HARNESS_HELP_OPTIM                   \
    "  --eval-every N    validate and checkpoint every N steps (default 50)\n" HARNESS_HELP_RUN    \
    "\n"

typedef struct {
    const char *base, *demos, *val_demos, *template_name;
    int64_t epochs, steps, batch, seq;
    harness_args_t args; /* --out, --lr, --warmup, --eval-every, --resume, --seed, ... */
} opts_t;

/* Parses argv into o through the settings table set (see harness_parse). */
static void parse(opts_t *o, harness_setting_t *set, int nset, int argc, char **argv) {
    harness_parse(&o->args, PROG, HELP, argc, argv, set, nset);
    cli_require(PROG, "--base", o->base);
    cli_require(PROG, "--demos", o->demos);
    if (o->epochs && o->steps) cli_usage_error(PROG, "--epochs and --steps exclude each other");
    if (!o->epochs && !o->steps) o->epochs = 2;
    if (o->args.lr < 0) o->args.lr = SFT_TRAIN_LR;
    if (o->args.lr_min < 0) o->args.lr_min = o->args.lr / 10;
}

/* ---- data and loss ------------------------------------------------------------------- */

typedef struct {
    model_t m; /* the model trained, its tokenizer and ids */
    ckpt_meta_t meta;
    const char *tokenizer_dir; /* vocab.json + merges.txt copied into checkpoints */
    data_sft_t train, val;
    data_order_t order; /* epoch and pos are the data position train_state.bin keeps */
    int64_t B;          /* global batch */
    int64_t Bl;         /* most rows one rank takes (B on one rank): the model's activations */
    int64_t *idx;       /* (B) */
    harness_lm_t lm;
    harness_t *h;
} train_t;

/* One update on the next B demonstrations of the epoch's order: loss on the responses. This
 * rank trains on its share of them (all B on one rank); the loss is the global mean. */
static int step_hook(void *ctx, harness_t *h, int64_t step, harness_step_t *out, err_t *err) {
    train_t *t = ctx;
    (void)step;
    data_order_next(&t->order, t->idx, t->B);
    int64_t first;
    const int64_t n = dist_share(t->B, &first);
    const int64_t *idx = t->idx + first;
    const int64_t T = data_sft_batch_len(&t->train, idx, n);
    data_sft_batch(&t->train, idx, n, T, t->lm.inputs, t->lm.targets, NULL);
    return harness_lm_step(h, 0, &t->lm, n, T, out, err);
}

/* Mean response-token loss over the held-out demonstrations, Bl at a time in file order; under
 * mpirun the ranks take turns at the batches and add up their sums. */
static int validate_hook(void *ctx, harness_t *h, double *loss, err_t *err) {
    train_t *t = ctx;
    (void)h, (void)err;
    double sum = 0.0;
    int64_t kept = 0;
    const int64_t B = t->Bl;
    for (int64_t first = 0, j = 0; first < t->val.n; first += B, j++) {
        if (j % dist_size() != dist_rank()) continue;
        const int64_t n = t->val.n - first < B ? t->val.n - first : B;
        for (int64_t b = 0; b < n; b++) t->idx[b] = first + b;
        const int64_t T = data_sft_batch_len(&t->val, t->idx, n);
        data_sft_batch(&t->val, t->idx, n, T, t->lm.inputs, t->lm.targets, NULL);
        int64_t k;
        sum += harness_lm_logprob(&t->lm, n, T, &k);
        kept += k;
    }
    double tot[2] = {sum, (double)kept};
    dist_sum_f64(tot, 2);
    sum = tot[0], kept = (int64_t)tot[1];
    *loss = kept > 0 ? -sum / (double)kept : (double)NAN;
    return 0;
}

static int save_hook(void *ctx, const char *dir, err_t *err) {
    const train_t *t = ctx;
    return ckpt_save(dir, t->m.model, &t->meta, t->tokenizer_dir, err);
}

static int restore_hook(void *ctx, err_t *err) {
    train_t *t = ctx;
    return data_order_seek(&t->order, t->order.epoch, t->order.pos, err);
}

/* Loads and tokenizes a demonstrations file; every error names FILE:LINE. */
static int load_demos(data_sft_t *out, const char *path, model_t *m, int64_t context, err_t *err) {
    data_examples_t ex = {0};
    int rc = data_demos_load(&ex, path, err);
    if (rc == 0)
        rc = data_sft_build(out, &ex, model_encode, m, m->eos_id, m->pad_id, context,
                            DATA_TOO_LONG_ERROR, err);
    data_examples_release(&ex);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------ */

static void release(train_t *t) {
    harness_destroy(&t->h);
    harness_lm_release(&t->lm);
    model_release(&t->m);
    data_sft_release(&t->train);
    data_sft_release(&t->val);
    data_order_release(&t->order);
    free(t->idx);
}

static void summary(const train_t *t, const opts_t *o, const harness_result_t *r) {
    if (dist_rank() != 0) return;
    printf("%s: %s %s at step %" PRId64 "/%" PRId64 "\n", PROG, o->args.out, r->status, r->step,
           o->steps);
    printf("  data       %" PRId64 " demonstrations, %" PRId64 " held-out\n", t->train.n, t->val.n);
    printf("  speed      %.0f tokens/s over %.1f s\n", r->tokens_per_s, r->elapsed_s);
    printf("  loss       train %.4f", r->loss);
    if (isfinite(r->val)) printf(", held-out %.4f at step %" PRId64, r->val, r->val_step);
    if (isfinite(r->initial_val)) printf(", base model %.4f", r->initial_val);
    printf(" (nats per response token)\n");
    if (r->best_step > 0)
        printf("  best       held-out %.4f at step %" PRId64 " in %s/best\n", r->best_val,
               r->best_step, o->args.out);
}

/* Reads the model and the demonstrations and checks them; *T_max is the longest example. */
static int load(train_t *t, opts_t *o, int64_t *T_max, err_t *err) {
    t->tokenizer_dir =
        o->args.resume ? o->args.out : o->base; /* model and tokenizer to start from */
    if (o->args.resume && harness_prepare_out(&o->args, err)) return -1;
    if (model_load(&t->m, t->tokenizer_dir, MODEL_HEAD_LM, err)) return -1;
    t->meta = t->m.meta;
    t->meta.eos_id = t->m.eos_id;
    t->meta.pad_id = t->m.pad_id; /* GPT-2 has no padding token: eos pads */
    snprintf(t->meta.template_name, sizeof t->meta.template_name, "%s", DATA_TEMPLATE_NAME);
    const int64_t ctx = t->m.model->cfg.n_positions;
    if (o->seq > ctx)
        return err_setf(err, "--seq %" PRId64 " is longer than the model's context (%" PRId64 ")",
                        o->seq, ctx);
    if (!o->seq) o->seq = ctx;
    if (load_demos(&t->train, o->demos, &t->m, o->seq, err)) return -1;
    if (o->val_demos && load_demos(&t->val, o->val_demos, &t->m, o->seq, err)) return -1;
    /* activations for the longest example, not the whole context: a GPT-2 snapshot's 1024
     * positions would size B x 1024 x 50257 logits for demonstrations of 100 tokens */
    *T_max = t->train.max_len > t->val.max_len ? t->train.max_len : t->val.max_len;
    if (data_order_init(&t->order, t->train.n, o->args.common.seed, err))
        return err_prefixf(err, "%s: ", o->demos);
    t->B = o->batch;
    if (o->batch < dist_size())
        return err_setf(err, "--batch %" PRId64 " is smaller than the %d ranks", o->batch,
                        dist_size());
    t->Bl = (o->batch + dist_size() - 1) / dist_size();
    if (!(t->idx = malloc((size_t)o->batch * sizeof *t->idx)))
        return err_setf(err, "out of memory");
    if (!o->steps) o->steps = (o->epochs * t->train.n + o->batch - 1) / o->batch;
    if (o->args.warmup < 0) o->args.warmup = o->steps / 20;
    return 0;
}

int sft_cmd_train(int argc, char **argv) {
    opts_t o = {.batch = 16, .template_name = DATA_TEMPLATE_NAME, .args = HARNESS_ARGS_INIT(50)};
    harness_setting_t set[] = {
        HARNESS_STR("base", "base", &o.base),
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
    train_t t = {0};
    /* 1. read and check everything; nothing is written before this block ends */
    int64_t T_max = 0;
    if (load(&t, &o, &T_max, &err)) cli_die(PROG, "%s", err.msg);
    if (!o.args.resume && harness_prepare_out(&o.args, &err)) cli_die(PROG, "%s", err.msg);

    /* 2. train */
    const harness_config_t hc = {
        .prog = PROG,
        .args = &o.args,
        .steps = o.steps,
        .metric = "loss",
        .hooks = {.ctx = &t,
                  .step = step_hook,
                  .validate = t.val.n > 0 ? validate_hook : NULL,
                  .save = save_hook,
                  .restore = restore_hook},
        .state = {{"data.epoch", &t.order.epoch, sizeof t.order.epoch},
                  {"data.pos", &t.order.pos, sizeof t.order.pos}},
        .nstate = 2,
    };
    if (harness_lm_init(&t.lm, t.m.model, t.Bl, T_max, &err) || !(t.h = harness_new(&hc, &err)) ||
        harness_add_model(t.h, "", t.m.model, NULL, &err) < 0 ||
        cli_json_merge(harness_results(t.h), &err, "{s:I, s:I, s:I}", "demos",
                       (json_int_t)t.train.n, "val_demos", (json_int_t)t.val.n, "max_len",
                       (json_int_t)t.train.max_len))
        cli_die(PROG, "%s", err.msg);
    harness_result_t r;
    if (harness_run(t.h, &r, &err)) {
        release(&t);
        harness_args_release(&o.args);
        cli_die(PROG, "%s", err.msg);
    }
    summary(&t, &o, &r);
    release(&t);
    harness_args_release(&o.args);
    return 0;
}
