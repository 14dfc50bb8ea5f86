/* sft/pretrain.c: `sft pretrain` — trains a GPT-2 language model from random initialisation on
 * a plain-text corpus (and, with --vocab-size, its byte-level BPE vocabulary first): random
 * windows of T + 1 tokens, next-token loss on every position, held-out loss on --val. Everything
 * is read, tokenized and checked before OUT is touched. The unigram entropy of the held-out
 * tokens under the training corpus' token frequencies is the baseline the held-out loss is read
 * against: a model that learned nothing but frequencies scores it. */
#include "cli.h"
#include "data.h"
#include "sft.h"
#include "tok.h"
#include "trainer.h"
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG         "sft pretrain"
#define DATA_RNG_TAG 0x7072657472616e31ULL /* "pretran1": the window stream's seed tag */

/* Model shapes. small is the demo's (trains on 2 cores in minutes); tiny is for tests. */
typedef struct {
    const char *name;
    int64_t n_embd, n_layer, n_head, n_positions;
    int64_t batch; /* default --batch */
    double lr;     /* default --lr */
} preset_t;

static const preset_t PRESETS[] = {
    {"tiny", 32, 2, 2, 128, 8, 3e-3},
    {"small", 256, 4, 4, 128, 16, 1e-3},
    {"medium", 384, 6, 6, 256, 16, 6e-4},
    {"gpt2", 768, 12, 12, 1024, 8, 6e-4}, /* GPT-2 124M's shape (vocab from the tokenizer) */
};
#define NPRESETS ((int)(sizeof PRESETS / sizeof PRESETS[0]))

#define HELP                                                                                       \
    "usage: sft pretrain --corpus FILE --out DIR (--vocab-size N | --tokenizer DIR) [options]\n"   \
    "\n"                                                                                           \
    "Trains a GPT-2 language model from random initialisation on plain text: random windows of\n"  \
    "T tokens, next-token loss on every position. OUT gets the last checkpoint (config.json,\n"    \
    "model.safetensors, vocab.json, merges.txt, train_state.bin, run.json) and OUT/best the\n"     \
    "model with the lowest held-out loss.\n"                                                       \
    "\n"                                                                                           \
    "data and model:\n"                                                                            \
    "  --corpus FILE     training text (UTF-8; \"<|endoftext|>\" becomes the end-of-text id)\n"    \
    "  --val FILE        held-out text: loss every --eval-every steps, best/ checkpoint,\n"        \
    "                    unigram entropy baseline\n"                                               \
    "  --out DIR         output directory (created with its parents)\n"                            \
    "  --config NAME     tiny (d 32, 2 layers, context 128), small (default: d 256, 4 layers,\n"   \
    "                    4 heads, context 128), medium (d 384, 6 layers, context 256),\n"          \
    "                    gpt2 (124M: d 768, 12 layers, context 1024)\n"                            \
    "  --vocab-size N    train a byte-level BPE vocabulary of N ids on the corpus (saved in "      \
    "OUT)\n"                                                                                       \
    "  --tokenizer DIR   or use DIR's vocab.json + merges.txt (e.g. GPT-2's)\n"                    \
    "training:\n"                                                                                  \
    "  --steps N         updates (default 1000)\n"                                                 \
    "  --batch B         windows per update (default: 16; tiny 8, gpt2 8)\n"                       \
    "  --seq T           tokens per window (default: the context)\n"                               \
    "  --lr X            peak learning rate (default: small 1e-3, tiny 3e-3, others 6e-4)\n"       \
    "  --lr-min X        floor of the cosine decay (default lr/10)\n"                              \
    "  --warmup N        linear warmup updates (default: 5% of --steps)\n"                         \
    "  --weight-decay X  AdamW weight decay on matrices (default 0.1)\n"                           \
    "  --grad-clip X     clip the global gradient norm to X (default 1; 0 = off)\n"                \
    "  --eval-every N    validate and checkpoint every N steps (default 100)\n"                    \
    "  --val-batches N   use at most N batches of --val (default 0 = all of it)\n"                 \
    "  --resume          continue OUT's checkpoint exactly (same options as the first run)\n"      \
    "  --overwrite       replace a checkpoint already in OUT\n"                                    \
    "  --stop-at N       stop after step N and save, as Ctrl-C does (resume later)\n"              \
    "\n"                                                                                           \
    "Ctrl-C stops after the current step and saves (exit 0); a NaN or infinite loss stops\n"       \
    "with the last good checkpoint intact (exit 1). Exit status: 0 ok, 1 failure, 2 usage.\n"      \
    "\n"

typedef struct {
    const char *corpus, *val, *out, *tokenizer;
    const preset_t *preset;
    int64_t vocab_size, steps, batch, seq, val_batches;
    trainer_flags_t train; /* --lr, --warmup, --eval-every, --resume, ... */
    cli_opts_t common;
} opts_t;

enum {
    O_CORPUS = 0x100,
    O_VAL,
    O_OUT,
    O_CONFIG,
    O_VOCAB,
    O_TOKENIZER,
    O_STEPS,
    O_BATCH,
    O_SEQ,
    O_VAL_BATCHES,
};

static const preset_t *preset_find(const char *name) {
    for (int i = 0; i < NPRESETS; i++)
        if (!strcmp(PRESETS[i].name, name)) return &PRESETS[i];
    return NULL;
}

static void parse(opts_t *o, int argc, char **argv) {
    static const struct option longopts[] = {
        {"corpus", required_argument, NULL, O_CORPUS},
        {"val", required_argument, NULL, O_VAL},
        {"out", required_argument, NULL, O_OUT},
        {"config", required_argument, NULL, O_CONFIG},
        {"vocab-size", required_argument, NULL, O_VOCAB},
        {"tokenizer", required_argument, NULL, O_TOKENIZER},
        {"steps", required_argument, NULL, O_STEPS},
        {"batch", required_argument, NULL, O_BATCH},
        {"seq", required_argument, NULL, O_SEQ},
        {"val-batches", required_argument, NULL, O_VAL_BATCHES},
        TRAINER_LONGOPTS,
        CLI_COMMON_LONGOPTS,
        {0},
    };
    *o = (opts_t){.preset = preset_find("small"),
                  .steps = 1000,
                  .train = TRAINER_FLAGS_INIT(100),
                  .common = CLI_OPTS_INIT};
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (cli_opts_handle(&o->common, PROG, c, optarg, argv)) continue;
        if (trainer_flag(&o->train, PROG, c, optarg)) continue;
        switch (c) {
        case O_CORPUS:
            o->corpus = optarg;
            break;
        case O_VAL:
            o->val = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_CONFIG:
            if (!(o->preset = preset_find(optarg)))
                cli_usage_error(PROG, "--config: unknown '%s' (tiny, small, medium, gpt2)", optarg);
            break;
        case O_VOCAB:
            o->vocab_size = cli_arg_i64(PROG, "--vocab-size", optarg, 257, 1 << 20);
            break;
        case O_TOKENIZER:
            o->tokenizer = optarg;
            break;
        case O_STEPS:
            o->steps = cli_arg_i64(PROG, "--steps", optarg, 1, INT64_C(1) << 40);
            break;
        case O_BATCH:
            o->batch = cli_arg_i64(PROG, "--batch", optarg, 1, 1 << 16);
            break;
        case O_SEQ:
            o->seq = cli_arg_i64(PROG, "--seq", optarg, 1, 1 << 20);
            break;
        case O_VAL_BATCHES:
            o->val_batches = cli_arg_i64(PROG, "--val-batches", optarg, 0, INT64_C(1) << 40);
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
    cli_require(PROG, "--corpus", o->corpus);
    cli_require(PROG, "--out", o->out);
    if (o->vocab_size && o->tokenizer)
        cli_usage_error(PROG, "--vocab-size and --tokenizer exclude each other");
    if (!o->train.resume && !o->vocab_size && !o->tokenizer)
        cli_usage_error(PROG, "--vocab-size N or --tokenizer DIR is required");
    if (o->train.resume && o->train.overwrite)
        cli_usage_error(PROG, "--resume and --overwrite exclude each other");
    if (!o->batch) o->batch = o->preset->batch;
    if (o->train.lr < 0) o->train.lr = o->preset->lr;
    if (o->train.lr_min < 0) o->train.lr_min = o->train.lr / 10;
    if (o->train.warmup < 0) o->train.warmup = o->steps / 20;
}

/* ---- data ------------------------------------------------------------------------------- */

typedef struct {
    data_stream_t train, val;
    rng_t rng;           /* window starts: the data position train_state.bin keeps */
    int64_t val_batches; /* of val actually used */
} pretrain_data_t;

static void train_batch(void *ctx, int32_t *inputs, int32_t *targets, int64_t *B, int64_t *T) {
    pretrain_data_t *d = ctx;
    data_stream_sample(&d->train, &d->rng, inputs, targets);
    *B = d->train.B;
    *T = d->train.T;
}

static void val_batch(void *ctx, int64_t i, int32_t *inputs, int32_t *targets, int64_t *B,
                      int64_t *T) {
    pretrain_data_t *d = ctx;
    if (i == 0) d->val.pos = 0; /* the same windows every validation */
    data_stream_next(&d->val, inputs, targets);
    *B = d->val.B;
    *T = d->val.T;
}

/* Reads and tokenizes a text file ("<|endoftext|>" becomes the end-of-text id). */
static int tokenize_file(tok_t *tok, const char *path, tok_ids_t *ids, char **text_out,
                         size_t *len_out, err_t *err) {
    char *text = NULL;
    size_t len = 0;
    if (data_read_file(path, &text, &len, err)) return -1;
    const int rc = tok_encode(tok, text, (int64_t)len, true, ids, err);
    if (rc) err_prefixf(err, "%s: ", path);
    if (text_out && rc == 0) {
        *text_out = text;
        *len_out = len;
    } else {
        free(text);
    }
    return rc;
}

/* Unigram baseline: the training tokens' frequencies (add-one smoothed over the vocabulary, so
 * a held-out token never seen in training costs log(N + V) instead of infinity), scored on the
 * held-out tokens: -mean log p(token), nats. Also the training distribution's own entropy. */
static int unigram_entropy(const tok_ids_t *train, const tok_ids_t *val, int64_t V, double *cross,
                           double *self, err_t *err) {
    int64_t *count = calloc((size_t)V, sizeof *count);
    if (!count) return err_setf(err, "out of memory");
    for (int64_t i = 0; i < train->len; i++) count[train->ids[i]]++;
    const double N = (double)train->len;
    double h = 0.0;
    for (int64_t v = 0; v < V; v++)
        if (count[v]) h -= ((double)count[v] / N) * log((double)count[v] / N);
    *self = h;
    double sum = 0.0;
    for (int64_t i = 0; i < val->len; i++)
        sum -= log(((double)count[val->ids[i]] + 1.0) / (N + (double)V));
    *cross = val->len ? sum / (double)val->len : (double)NAN;
    free(count);
    return 0;
}

/* ---- the command ------------------------------------------------------------------------ */

/* Everything the run holds, released in one place. */
typedef struct {
    tok_t *tok;
    char *corpus_text;
    size_t corpus_len;
    tok_ids_t train_ids, val_ids;
    gpt_model_t *model;
    pretrain_data_t data;
    cli_run_t run;
    cli_log_t *log;
} pretrain_t;

static void release(pretrain_t *p) {
    tok_destroy(&p->tok);
    free(p->corpus_text);
    tok_ids_release(&p->train_ids);
    tok_ids_release(&p->val_ids);
    gpt_destroy(&p->model);
    cli_run_release(&p->run);
    cli_log_close(&p->log);
}

/* The tokenizer: OUT's when resuming, DIR's with --tokenizer, else trained on the corpus. */
static int load_tokenizer(pretrain_t *p, const opts_t *o, err_t *err) {
    if (o->train.resume || o->tokenizer) {
        p->tok = tok_load(o->train.resume ? o->out : o->tokenizer, err);
        return p->tok ? 0 : -1;
    }
    if (data_read_file(o->corpus, &p->corpus_text, &p->corpus_len, err)) return -1;
    fprintf(stderr, "%s: training a %" PRId64 "-id vocabulary on %s (%zu bytes)\n", PROG,
            o->vocab_size, o->corpus, p->corpus_len);
    p->tok = tok_train(p->corpus_text, (int64_t)p->corpus_len, (int32_t)o->vocab_size, err);
    if (!p->tok) return err_prefixf(err, "%s: ", o->corpus);
    return 0;
}

/* The starting model: OUT's last checkpoint on --resume, else the preset at random init. */
static int make_model(pretrain_t *p, const opts_t *o, int64_t T, err_t *err) {
    const int64_t V = tok_vocab_size(p->tok);
    if (o->train.resume) {
        if (!(p->model = ckpt_load(o->out, NULL, err))) return -1;
        if (p->model->cfg.vocab_size != V || p->model->head != GPT_HEAD_LM)
            return err_setf(err,
                            "%s: the model does not match its tokenizer (vocab %" PRId64
                            ", tokenizer %" PRId64 ")",
                            o->out, p->model->cfg.vocab_size, V);
    } else {
        const preset_t *s = o->preset;
        const gpt_config_t cfg = {.vocab_size = V,
                                  .n_positions = s->n_positions,
                                  .n_layer = s->n_layer,
                                  .n_head = s->n_head,
                                  .n_embd = s->n_embd,
                                  .ln_eps = 1e-5f};
        if (!(p->model = gpt_new(&cfg, GPT_HEAD_LM, err))) return -1;
        gpt_init_random(p->model, o->common.seed);
    }
    if (T > p->model->cfg.n_positions)
        return err_setf(err, "--seq %" PRId64 " is longer than the model's context (%" PRId64 ")",
                        T, p->model->cfg.n_positions);
    return 0;
}

static void settings(pretrain_t *p, const opts_t *o, int64_t T, const char *tokenizer_dir,
                     err_t *err) {
    const gpt_config_t *c = &p->model->cfg;
    cli_json_merge(p->run.settings, err,
                   "{s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f,"
                   " s:I, s:f, s:f, s:I, s:I, s:b, s:I}",
                   "corpus", o->corpus, "val", o->val ? json_string(o->val) : json_null(), "out",
                   o->out, "config", o->train.resume ? "(from checkpoint)" : o->preset->name,
                   "tokenizer", tokenizer_dir, "vocab_size", (json_int_t)c->vocab_size, "n_embd",
                   (json_int_t)c->n_embd, "n_layer", (json_int_t)c->n_layer, "n_head",
                   (json_int_t)c->n_head, "n_positions", (json_int_t)c->n_positions, "steps",
                   (json_int_t)o->steps, "batch", (json_int_t)o->batch, "seq", (json_int_t)T, "lr",
                   o->train.lr, "lr_min", o->train.lr_min, "warmup", (json_int_t)o->train.warmup,
                   "weight_decay", o->train.weight_decay, "grad_clip", o->train.grad_clip,
                   "eval_every", (json_int_t)o->train.eval_every, "val_batches",
                   (json_int_t)p->data.val_batches, "resume", o->train.resume, "num_params",
                   (json_int_t)p->model->num_params);
}

static void summary(const pretrain_t *p, const opts_t *o, const trainer_result_t *r, double unigram,
                    double unigram_train) {
    const gpt_config_t *c = &p->model->cfg;
    printf("%s: %s %s at step %" PRId64 "/%" PRId64 "\n", PROG, o->out, r->status, r->step,
           o->steps);
    printf("  model      %.2fM parameters (d %" PRId64 ", %" PRId64 " layers, %" PRId64
           " heads, context %" PRId64 ", vocab %" PRId64 ")\n",
           (double)p->model->num_params / 1e6, c->n_embd, c->n_layer, c->n_head, c->n_positions,
           c->vocab_size);
    printf("  corpus     %" PRId64 " training tokens, %" PRId64 " held-out\n", p->train_ids.len,
           p->val_ids.len);
    printf("  speed      %.0f tokens/s over %.1f s\n", r->tokens_per_s, r->elapsed_s);
    printf("  loss       train %.4f", r->loss);
    if (isfinite(r->val_loss))
        printf(", held-out %.4f nats/token (%.3f bits) at step %" PRId64, r->val_loss,
               r->val_loss / log(2.0), r->val_step);
    printf("\n");
    if (r->best_step > 0)
        printf("  best       held-out %.4f at step %" PRId64 " in %s/best\n", r->best_val_loss,
               r->best_step, o->out);
    if (isfinite(unigram))
        printf("  unigram    held-out tokens under the training unigram: %.4f nats/token (%.3f "
               "bits); training unigram entropy %.4f nats\n",
               unigram, unigram / log(2.0), unigram_train);
}

int sft_cmd_pretrain(int argc, char **argv) {
    opts_t o;
    parse(&o, argc, argv);
    cli_threads_apply(o.common.threads);
    err_t err = ERR_INIT;
    pretrain_t p = {0};
    const int64_t T = o.seq;
    /* 1. read and check everything; nothing is written before this block ends */
    if (load_tokenizer(&p, &o, &err)) cli_die(PROG, "%s", err.msg);
    if (tok_eot_id(p.tok) < 0) cli_die(PROG, "the tokenizer has no \"<|endoftext|>\" token");
    if (make_model(&p, &o, T ? T : (o.train.resume ? 1 : o.preset->n_positions), &err))
        cli_die(PROG, "%s", err.msg);
    const int64_t seq = T ? T : p.model->cfg.n_positions;
    if (p.corpus_text) {
        if (tok_encode(p.tok, p.corpus_text, (int64_t)p.corpus_len, true, &p.train_ids, &err))
            cli_die(PROG, "%s: %s", o.corpus, err.msg);
        free(p.corpus_text);
        p.corpus_text = NULL;
    } else if (tokenize_file(p.tok, o.corpus, &p.train_ids, NULL, NULL, &err)) {
        cli_die(PROG, "%s", err.msg);
    }
    if (data_stream_init(&p.data.train, p.train_ids.ids, p.train_ids.len, o.batch, seq, &err))
        cli_die(PROG, "%s: %s", o.corpus, err.msg);
    double unigram = NAN, unigram_train = NAN;
    if (o.val) {
        if (tokenize_file(p.tok, o.val, &p.val_ids, NULL, NULL, &err) ||
            data_stream_init(&p.data.val, p.val_ids.ids, p.val_ids.len, o.batch, seq, &err))
            cli_die(PROG, "%s", err.msg);
        p.data.val_batches = data_stream_batches(&p.data.val);
        if (o.val_batches && o.val_batches < p.data.val_batches) p.data.val_batches = o.val_batches;
        if (unigram_entropy(&p.train_ids, &p.val_ids, tok_vocab_size(p.tok), &unigram,
                            &unigram_train, &err))
            cli_die(PROG, "%s", err.msg);
    }
    if (trainer_prepare_out(o.out, o.train.resume, o.train.overwrite, &err))
        cli_die(PROG, "%s", err.msg);

    /* 2. write the tokenizer, then train */
    const char *tokenizer_dir = o.tokenizer ? o.tokenizer : o.out;
    if (!o.train.resume && !o.tokenizer &&
        (trainer_mkdirs(o.out, &err) || tok_save(p.tok, o.out, &err)))
        cli_die(PROG, "%s", err.msg);
    rng_seed(&p.data.rng, o.common.seed ^ DATA_RNG_TAG);
    trainer_data_t data = {.ctx = &p.data,
                           .train_batch = train_batch,
                           .val_batch = val_batch,
                           .val_batches = p.data.val_batches,
                           .n_state = 1,
                           .state = {{"data.rng", &p.data.rng, sizeof p.data.rng}}};
    trainer_config_t cfg = {.prog = PROG,
                            .out_dir = o.out,
                            .tokenizer_dir = tokenizer_dir,
                            .meta = ckpt_meta_default(),
                            .steps = o.steps,
                            .stop_at = o.train.stop_at,
                            .B_max = o.batch,
                            .T_max = seq,
                            .optim = optim_config_default(),
                            .lr = o.train.lr,
                            .lr_min = o.train.lr_min,
                            .warmup = o.train.warmup,
                            .grad_clip = o.train.grad_clip,
                            .eval_every = o.train.eval_every,
                            .resume = o.train.resume,
                            .seed = o.common.seed};
    cfg.optim.weight_decay = o.train.weight_decay;
    snprintf(cfg.meta.template_name, sizeof cfg.meta.template_name, "%s", DATA_TEMPLATE_NAME);
    cfg.meta.eos_id = cfg.meta.pad_id = tok_eot_id(p.tok);

    if (cli_run_init(&p.run, PROG, argc, argv, &o.common, &err)) cli_die(PROG, "%s", err.msg);
    settings(&p, &o, seq, tokenizer_dir, &err);
    cli_json_merge(p.run.results, &err, "{s:I, s:I, s:o, s:o}", "train_tokens",
                   (json_int_t)p.train_ids.len, "val_tokens", (json_int_t)p.val_ids.len,
                   "unigram_nats", cli_json_number(unigram), "unigram_bits",
                   cli_json_number(unigram / log(2.0)));
    if (err_isset(&err)) cli_die(PROG, "run.json: %s", err.msg);
    if (!(p.log = cli_log_open(o.common.log_path, o.train.resume, &err))) {
        if (err_isset(&err)) cli_die(PROG, "%s", err.msg);
    }
    if (isfinite(unigram))
        fprintf(stderr, "%s: unigram baseline on %s: %.4f nats/token (%.3f bits)\n", PROG, o.val,
                unigram, unigram / log(2.0));
    trainer_result_t r;
    if (trainer_run(&cfg, p.model, &data, &p.run, p.log, &r, &err)) {
        release(&p);
        cli_die(PROG, "%s", err.msg);
    }
    summary(&p, &o, &r, unigram, unigram_train);
    release(&p);
    return 0;
}
