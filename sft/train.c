/* sft/train.c: `sft train` — supervised fine-tuning (InstructGPT's SFT stage): next-token
 * cross-entropy on the response tokens of demonstrations only, the prompt masked (DESIGN §4),
 * starting from a base model. Demonstrations go through the one template (data.h) and are
 * tokenized and checked whole before anything is written: a bad line is
 * "sft: error: FILE:LINE: ..." and exit 1 with OUT untouched. Batches are right-padded and cut
 * to their longest example; the example order is a fresh permutation per epoch (data_order),
 * so the data position is two integers and --resume continues exactly. */
#include "cli.h"
#include "data.h"
#include "model.h"
#include "sft.h"
#include "tok.h"
#include "trainer.h"
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
    "  --lr X            peak learning rate (default 3e-4)\n"                                      \
    "  --lr-min X        floor of the cosine decay (default lr/10)\n"                              \
    "  --warmup N        linear warmup updates (default: 5% of the steps)\n"                       \
    "  --weight-decay X  AdamW weight decay on matrices (default 0.1)\n"                           \
    "  --grad-clip X     clip the global gradient norm to X (default 1; 0 = off)\n"                \
    "  --eval-every N    validate and checkpoint every N steps (default 50)\n"                     \
    "  --resume          continue OUT's checkpoint exactly (same options as the first run)\n"      \
    "  --overwrite       replace a checkpoint already in OUT\n"                                    \
    "  --stop-at N       stop after step N and save, as Ctrl-C does (resume later)\n"              \
    "\n"                                                                                           \
    "Ctrl-C stops after the current step and saves (exit 0); a NaN or infinite loss stops\n"       \
    "with the last good checkpoint intact (exit 1). Exit status: 0 ok, 1 failure, 2 usage.\n"      \
    "\n"

typedef struct {
    const char *base, *demos, *val_demos, *out;
    int64_t epochs, steps, batch, seq;
    trainer_flags_t train; /* --lr, --warmup, --eval-every, --resume, ... */
    cli_opts_t common;
} opts_t;

enum {
    O_BASE = 0x100,
    O_DEMOS,
    O_VAL_DEMOS,
    O_OUT,
    O_EPOCHS,
    O_STEPS,
    O_BATCH,
    O_SEQ,
};

static void parse(opts_t *o, int argc, char **argv) {
    static const struct option longopts[] = {
        {"base", required_argument, NULL, O_BASE},
        {"demos", required_argument, NULL, O_DEMOS},
        {"val-demos", required_argument, NULL, O_VAL_DEMOS},
        {"out", required_argument, NULL, O_OUT},
        {"epochs", required_argument, NULL, O_EPOCHS},
        {"steps", required_argument, NULL, O_STEPS},
        {"batch", required_argument, NULL, O_BATCH},
        {"seq", required_argument, NULL, O_SEQ},
        TRAINER_LONGOPTS,
        CLI_COMMON_LONGOPTS,
        {0},
    };
    *o = (opts_t){.batch = 16, .train = TRAINER_FLAGS_INIT(50), .common = CLI_OPTS_INIT};
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (cli_opts_handle(&o->common, PROG, c, optarg, argv)) continue;
        if (trainer_flag(&o->train, PROG, c, optarg)) continue;
        switch (c) {
        case O_BASE:
            o->base = optarg;
            break;
        case O_DEMOS:
            o->demos = optarg;
            break;
        case O_VAL_DEMOS:
            o->val_demos = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_EPOCHS:
            o->epochs = cli_arg_i64(PROG, "--epochs", optarg, 1, 1 << 20);
            break;
        case O_STEPS:
            o->steps = cli_arg_i64(PROG, "--steps", optarg, 1, INT64_C(1) << 40);
            break;
        case O_BATCH:
            o->batch = cli_arg_i64(PROG, "--batch", optarg, 1, 1 << 16);
            break;
        case O_SEQ:
            o->seq = cli_arg_i64(PROG, "--seq", optarg, 2, 1 << 20);
            break;
        default:
            cli_usage_error(PROG, "unexpected option");
        }
    }
    if (o->common.help) {
        fputs(HELP CLI_COMMON_HELP, stdout);
        exit(0);
    }
    cli_no_positional(PROG, argc, argv);
    cli_require(PROG, "--base", o->base);
    cli_require(PROG, "--demos", o->demos);
    cli_require(PROG, "--out", o->out);
    if (o->epochs && o->steps) cli_usage_error(PROG, "--epochs and --steps exclude each other");
    if (o->train.resume && o->train.overwrite)
        cli_usage_error(PROG, "--resume and --overwrite exclude each other");
    if (!o->epochs && !o->steps) o->epochs = 2;
    if (o->train.lr < 0) o->train.lr = SFT_TRAIN_LR;
    if (o->train.lr_min < 0) o->train.lr_min = o->train.lr / 10;
}

/* ---- data ------------------------------------------------------------------------------- */

typedef struct {
    data_sft_t train, val;
    data_order_t order; /* epoch and pos are the data position train_state.bin keeps */
    int64_t B;
    int64_t *idx; /* (B) */
} sft_data_t;

static void train_batch(void *ctx, int32_t *inputs, int32_t *targets, int64_t *B, int64_t *T) {
    sft_data_t *d = ctx;
    data_order_next(&d->order, d->idx, d->B);
    *B = d->B;
    *T = data_sft_batch_len(&d->train, d->idx, d->B);
    data_sft_batch(&d->train, d->idx, *B, *T, inputs, targets, NULL);
}

/* Held-out batch i: examples i·B ... in file order (the last batch may be short). */
static void val_batch(void *ctx, int64_t i, int32_t *inputs, int32_t *targets, int64_t *B,
                      int64_t *T) {
    sft_data_t *d = ctx;
    const int64_t first = i * d->B, n = d->val.n - first < d->B ? d->val.n - first : d->B;
    for (int64_t b = 0; b < n; b++) d->idx[b] = first + b;
    *B = n;
    *T = data_sft_batch_len(&d->val, d->idx, n);
    data_sft_batch(&d->val, d->idx, n, *T, inputs, targets, NULL);
}

static int restore(void *ctx, err_t *err) {
    sft_data_t *d = ctx;
    return data_order_seek(&d->order, d->order.epoch, d->order.pos, err);
}

/* Loads and tokenizes a demonstrations file; every error names FILE:LINE. */
static int load_demos(data_sft_t *out, const char *path, model_t *m, int64_t context,
                      err_t *err) {
    data_examples_t ex = {0};
    int rc = data_demos_load(&ex, path, err);
    if (rc == 0)
        rc = data_sft_build(out, &ex, model_encode, m, m->eos_id, m->pad_id, context,
                            DATA_TOO_LONG_ERROR, err);
    data_examples_release(&ex);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------ */

typedef struct {
    model_t m; /* the model trained, its tokenizer and ids */
    sft_data_t data;
    cli_run_t run;
    cli_log_t *log;
} train_t;

static void release(train_t *t) {
    model_release(&t->m);
    data_sft_release(&t->data.train);
    data_sft_release(&t->data.val);
    data_order_release(&t->data.order);
    free(t->data.idx);
    cli_run_release(&t->run);
    cli_log_close(&t->log);
}

static void summary(const train_t *t, const opts_t *o, const trainer_result_t *r, int64_t steps) {
    printf("%s: %s %s at step %" PRId64 "/%" PRId64 "\n", PROG, o->out, r->status, r->step, steps);
    printf("  data       %" PRId64 " demonstrations, %" PRId64 " held-out\n", t->data.train.n,
           t->data.val.n);
    printf("  speed      %.0f tokens/s over %.1f s\n", r->tokens_per_s, r->elapsed_s);
    printf("  loss       train %.4f", r->loss);
    if (isfinite(r->val_loss)) printf(", held-out %.4f at step %" PRId64, r->val_loss, r->val_step);
    if (isfinite(r->initial_val_loss)) printf(", base model %.4f", r->initial_val_loss);
    printf(" (nats per response token)\n");
    if (r->best_step > 0)
        printf("  best       held-out %.4f at step %" PRId64 " in %s/best\n", r->best_val_loss,
               r->best_step, o->out);
}

int sft_cmd_train(int argc, char **argv) {
    opts_t o;
    parse(&o, argc, argv);
    cli_threads_apply(o.common.threads);
    err_t err = ERR_INIT;
    train_t t = {0};
    /* 1. read and check everything; nothing is written before this block ends */
    const char *src = o.train.resume ? o.out : o.base; /* model and tokenizer to start from */
    if (o.train.resume && trainer_prepare_out(o.out, true, false, &err))
        cli_die(PROG, "%s", err.msg);
    if (model_load(&t.m, src, MODEL_HEAD_LM, &err)) cli_die(PROG, "%s", err.msg);
    ckpt_meta_t meta = t.m.meta;
    meta.eos_id = t.m.eos_id;
    meta.pad_id = t.m.pad_id; /* GPT-2 has no padding token: eos pads */
    snprintf(meta.template_name, sizeof meta.template_name, "%s", DATA_TEMPLATE_NAME);
    const int64_t ctx = t.m.model->cfg.n_positions, T = o.seq && o.seq < ctx ? o.seq : ctx;
    if (o.seq > ctx)
        cli_die(PROG, "--seq %" PRId64 " is longer than the model's context (%" PRId64 ")", o.seq,
                ctx);
    if (load_demos(&t.data.train, o.demos, &t.m, T, &err)) cli_die("sft", "%s", err.msg);
    if (o.val_demos && load_demos(&t.data.val, o.val_demos, &t.m, T, &err))
        cli_die("sft", "%s", err.msg);
    /* activations for the longest example, not the whole context: a GPT-2 snapshot's 1024
     * positions would size B x 1024 x 50257 logits for demonstrations of 100 tokens */
    int64_t T_max = t.data.train.max_len;
    if (t.data.val.max_len > T_max) T_max = t.data.val.max_len;
    if (data_order_init(&t.data.order, t.data.train.n, o.common.seed, &err))
        cli_die(PROG, "%s: %s", o.demos, err.msg);
    t.data.B = o.batch;
    if (!(t.data.idx = malloc((size_t)o.batch * sizeof *t.data.idx)))
        cli_die(PROG, "out of memory");
    const int64_t steps = o.steps ? o.steps : (o.epochs * t.data.train.n + o.batch - 1) / o.batch;
    const int64_t warmup = o.train.warmup >= 0 ? o.train.warmup : steps / 20;
    if (!o.train.resume && trainer_prepare_out(o.out, false, o.train.overwrite, &err))
        cli_die(PROG, "%s", err.msg);

    /* 2. train */
    trainer_data_t data = {.ctx = &t.data,
                           .train_batch = train_batch,
                           .val_batch = val_batch,
                           .val_batches = (t.data.val.n + o.batch - 1) / o.batch,
                           .restore = restore,
                           .n_state = 2,
                           .state = {{"data.epoch", &t.data.order.epoch, sizeof t.data.order.epoch},
                                     {"data.pos", &t.data.order.pos, sizeof t.data.order.pos}}};
    trainer_config_t cfg = {.prog = PROG,
                            .out_dir = o.out,
                            .tokenizer_dir = src,
                            .meta = meta,
                            .steps = steps,
                            .stop_at = o.train.stop_at,
                            .B_max = o.batch,
                            .T_max = T_max,
                            .optim = optim_config_default(),
                            .lr = o.train.lr,
                            .lr_min = o.train.lr_min,
                            .warmup = warmup,
                            .grad_clip = o.train.grad_clip,
                            .eval_every = o.train.eval_every,
                            .resume = o.train.resume,
                            .seed = o.common.seed};
    cfg.optim.weight_decay = o.train.weight_decay;
    if (cli_run_init(&t.run, PROG, argc, argv, &o.common, &err)) cli_die(PROG, "%s", err.msg);
    cli_json_merge(t.run.settings, &err,
                   "{s:s, s:s, s:o, s:s, s:o, s:I, s:I, s:I, s:f, s:f, s:I, s:f, s:f, s:I,"
                   " s:b, s:s}",
                   "base", o.base, "demos", o.demos, "val_demos",
                   o.val_demos ? json_string(o.val_demos) : json_null(), "out", o.out, "epochs",
                   o.epochs ? json_integer(o.epochs) : json_null(), "steps", (json_int_t)steps,
                   "batch", (json_int_t)o.batch, "seq", (json_int_t)T, "lr", o.train.lr, "lr_min",
                   o.train.lr_min, "warmup", (json_int_t)warmup, "weight_decay",
                   o.train.weight_decay, "grad_clip", o.train.grad_clip, "eval_every",
                   (json_int_t)o.train.eval_every, "resume", o.train.resume, "template",
                   DATA_TEMPLATE_NAME);
    cli_json_merge(t.run.results, &err, "{s:I, s:I, s:I}", "demos", (json_int_t)t.data.train.n,
                   "val_demos", (json_int_t)t.data.val.n, "max_len",
                   (json_int_t)t.data.train.max_len);
    if (err_isset(&err)) cli_die(PROG, "run.json: %s", err.msg);
    if (!(t.log = cli_log_open(o.common.log_path, o.train.resume, &err)) && err_isset(&err))
        cli_die(PROG, "%s", err.msg);
    trainer_result_t r;
    if (trainer_run(&cfg, t.m.model, &data, &t.run, t.log, &r, &err)) {
        release(&t);
        cli_die(PROG, "%s", err.msg);
    }
    summary(&t, &o, &r, steps);
    release(&t);
    return 0;
}
