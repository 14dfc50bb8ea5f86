/* sft/pretrain.c: `sft pretrain` — trains a GPT-2 language model from random initialisation on
 * a plain-text corpus (and, with --vocab-size, its byte-level BPE vocabulary first): random
 * windows of T + 1 tokens, next-token loss on every position, held-out loss on --val. Everything
 * is read, tokenized and checked before OUT is touched. The unigram entropy of the held-out
 * tokens under the training corpus' token frequencies is the baseline the held-out loss is read
 * against: a model that learned nothing but frequencies scores it. Under mpirun every rank
 * draws the same global batch of windows (one rng: the data position is rank-independent) and
 * trains on its share of the rows (harness.h). */
#include "cli.h"
#include "data.h"
#include "dist.h"
#include "fs.h"
#include "harness.h"
#include "sft.h"
#include "tok.h"
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
    "  --lr X            peak learning rate (default: small 1e-3, tiny 3e-3, others "              \
    "6e-4)\n" HARNESS_HELP_OPTIM                                                                   \
    "  --eval-every N    validate and checkpoint every N steps (default 100)\n"                    \
    "  --val-batches N   use at most N batches of --val (default 0 = all of "                      \
    "it)\n" HARNESS_HELP_RUN "\n"

typedef struct {
    const char *corpus, *val, *tokenizer, *config;
    int64_t vocab_size, steps, batch, seq, val_batches;
    /* recorded in run.json "settings" only: the model's shape */
    int64_t n_vocab, n_embd, n_layer, n_head, n_positions, num_params;
    const preset_t *preset;
    harness_args_t args; /* --out, --lr, --warmup, --eval-every, --resume, --seed, ... */
} opts_t;

static const preset_t *preset_find(const char *name) {
    for (int i = 0; i < NPRESETS; i++)
        if (!strcmp(PRESETS[i].name, name)) return &PRESETS[i];
    return NULL;
}

/* Parses argv into o through the settings table set (which must outlive o's use: a resume
 * restores through it), then fills in the defaults that depend on other settings. */
static void parse(opts_t *o, harness_setting_t *set, int nset, int argc, char **argv) {
    harness_parse(&o->args, PROG, HELP, argc, argv, set, nset);
    if (!(o->preset = preset_find(o->config)))
        cli_usage_error(PROG, "--config: unknown '%s' (tiny, small, medium, gpt2)", o->config);
    cli_require(PROG, "--corpus", o->corpus);
    if (o->vocab_size && o->tokenizer)
        cli_usage_error(PROG, "--vocab-size and --tokenizer exclude each other");
    if (!o->args.resume && !o->vocab_size && !o->tokenizer)
        cli_usage_error(PROG, "--vocab-size N or --tokenizer DIR is required");
    if (!o->batch) o->batch = o->preset->batch;
    if (o->args.lr < 0) o->args.lr = o->preset->lr;
    if (o->args.lr_min < 0) o->args.lr_min = o->args.lr / 10;
    if (o->args.warmup < 0) o->args.warmup = o->steps / 20;
}

/* ---- data and loss ------------------------------------------------------------------- */

/* Everything the run holds, released in one place; the harness hooks' context. */
typedef struct {
    tok_t *tok;
    char *corpus_text;
    size_t corpus_len;
    tok_ids_t train_ids, val_ids;
    gpt_model_t *model;
    harness_lm_t lm;  /* batch buffers of Bl x T */
    int64_t B, Bl, T; /* global batch, most rows one rank takes (B on one rank), window */
    int32_t *all_inputs, *all_targets; /* (B, T): the global batch (only with several ranks) */
    data_stream_t train, val;
    rng_t rng;           /* window starts: the data position train_state.bin keeps */
    int64_t val_batches; /* of val actually used (0 = no validation) */
    ckpt_meta_t meta;
    const char *tokenizer_dir; /* vocab.json + merges.txt copied into checkpoints (may be OUT) */
    harness_t *h;
} pretrain_t;

/* Rows [first, first + n) of the global batch in all_* into the model's batch buffers. */
static void take_rows(pretrain_t *p, int64_t first, int64_t n) {
    const size_t at = (size_t)(first * p->T), len = (size_t)(n * p->T);
    memcpy(p->lm.inputs, p->all_inputs + at, len * sizeof *p->lm.inputs);
    memcpy(p->lm.targets, p->all_targets + at, len * sizeof *p->lm.targets);
}

/* One update on a random batch of windows: next-token loss on every position. With several
 * ranks each draws the whole batch (the same windows) and trains on its rows. */
static int step_hook(void *ctx, harness_t *h, int64_t step, harness_step_t *out, err_t *err) {
    pretrain_t *p = ctx;
    (void)step;
    int64_t first = 0, n = p->B;
    if (!p->all_inputs) {
        data_stream_sample(&p->train, &p->rng, p->lm.inputs, p->lm.targets);
    } else {
        data_stream_sample(&p->train, &p->rng, p->all_inputs, p->all_targets);
        n = dist_share(p->B, &first);
        take_rows(p, first, n);
    }
    return harness_lm_step(h, 0, &p->lm, n, p->T, out, err);
}

/* Mean next-token loss over the same held-out windows every time (-Σ log p / kept, double). */
static int validate_hook(void *ctx, harness_t *h, double *loss, err_t *err) {
    pretrain_t *p = ctx;
    (void)h, (void)err;
    double sum = 0.0;
    int64_t kept = 0;
    p->val.pos = 0;
    for (int64_t i = 0, chunk = 0; i < p->val_batches; i++) {
        int64_t k;
        if (!p->all_inputs) {
            data_stream_next(&p->val, p->lm.inputs, p->lm.targets);
            sum += harness_lm_logprob(&p->lm, p->val.B, p->val.T, &k);
            kept += k;
            continue;
        }
        /* several ranks: each batch in chunks of Bl rows, the ranks taking turns */
        data_stream_next(&p->val, p->all_inputs, p->all_targets);
        for (int64_t first = 0; first < p->B; first += p->Bl, chunk++) {
            if (chunk % dist_size() != dist_rank()) continue;
            const int64_t n = p->B - first < p->Bl ? p->B - first : p->Bl;
            take_rows(p, first, n);
            sum += harness_lm_logprob(&p->lm, n, p->T, &k);
            kept += k;
        }
    }
    double tot[2] = {sum, (double)kept};
    dist_sum_f64(tot, 2);
    sum = tot[0], kept = (int64_t)tot[1];
    *loss = kept > 0 ? -sum / (double)kept : (double)NAN;
    return 0;
}

static int save_hook(void *ctx, const char *dir, err_t *err) {
    const pretrain_t *p = ctx;
    return ckpt_save(dir, p->model, &p->meta, p->tokenizer_dir, err);
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

static void release(pretrain_t *p) {
    harness_destroy(&p->h);
    harness_lm_release(&p->lm);
    tok_destroy(&p->tok);
    free(p->corpus_text);
    tok_ids_release(&p->train_ids);
    tok_ids_release(&p->val_ids);
    gpt_destroy(&p->model);
    free(p->all_inputs);
    free(p->all_targets);
}

/* The tokenizer: OUT's when resuming, DIR's with --tokenizer, else trained on the corpus. */
static int load_tokenizer(pretrain_t *p, const opts_t *o, err_t *err) {
    if (o->args.resume || o->tokenizer) {
        p->tok = tok_load(o->args.resume ? o->args.out : o->tokenizer, err);
        return p->tok ? 0 : -1;
    }
    if (data_read_file(o->corpus, &p->corpus_text, &p->corpus_len, err)) return -1;
    if (dist_rank() == 0)
        fprintf(stderr, "%s: training a %" PRId64 "-id vocabulary on %s (%zu bytes)\n", PROG,
                o->vocab_size, o->corpus, p->corpus_len);
    p->tok = tok_train(p->corpus_text, (int64_t)p->corpus_len, (int32_t)o->vocab_size, err);
    if (!p->tok) return err_prefixf(err, "%s: ", o->corpus);
    return 0;
}

/* The starting model: OUT's last checkpoint on --resume, else the preset at random init. */
static int make_model(pretrain_t *p, const opts_t *o, int64_t T, err_t *err) {
    const int64_t V = tok_vocab_size(p->tok);
    if (o->args.resume) {
        if (!(p->model = ckpt_load(o->args.out, NULL, err))) return -1;
        if (p->model->cfg.vocab_size != V || p->model->head != GPT_HEAD_LM)
            return err_setf(err,
                            "%s: the model does not match its tokenizer (vocab %" PRId64
                            ", tokenizer %" PRId64 ")",
                            o->args.out, p->model->cfg.vocab_size, V);
    } else {
        const preset_t *s = o->preset;
        const gpt_config_t cfg = {.vocab_size = V,
                                  .n_positions = s->n_positions,
                                  .n_layer = s->n_layer,
                                  .n_head = s->n_head,
                                  .n_embd = s->n_embd,
                                  .ln_eps = 1e-5f};
        if (!(p->model = gpt_new(&cfg, GPT_HEAD_LM, err))) return -1;
        gpt_init_random(p->model, o->args.common.seed);
    }
    if (T > p->model->cfg.n_positions)
        return err_setf(err, "--seq %" PRId64 " is longer than the model's context (%" PRId64 ")",
                        T, p->model->cfg.n_positions);
    return 0;
}

static void summary(const pretrain_t *p, const opts_t *o, const harness_result_t *r, double unigram,
                    double unigram_train) {
    if (dist_rank() != 0) return;
    const gpt_config_t *c = &p->model->cfg;
    printf("%s: %s %s at step %" PRId64 "/%" PRId64 "\n", PROG, o->args.out, r->status, r->step,
           o->steps);
    printf("  model      %.2fM parameters (d %" PRId64 ", %" PRId64 " layers, %" PRId64
           " heads, context %" PRId64 ", vocab %" PRId64 ")\n",
           (double)p->model->num_params / 1e6, c->n_embd, c->n_layer, c->n_head, c->n_positions,
           c->vocab_size);
    printf("  corpus     %" PRId64 " training tokens, %" PRId64 " held-out\n", p->train_ids.len,
           p->val_ids.len);
    printf("  speed      %.0f tokens/s over %.1f s\n", r->tokens_per_s, r->elapsed_s);
    printf("  loss       train %.4f", r->loss);
    if (isfinite(r->val))
        printf(", held-out %.4f nats/token (%.3f bits) at step %" PRId64, r->val, r->val / log(2.0),
               r->val_step);
    printf("\n");
    if (r->best_step > 0)
        printf("  best       held-out %.4f at step %" PRId64 " in %s/best\n", r->best_val,
               r->best_step, o->args.out);
    if (isfinite(unigram))
        printf("  unigram    held-out tokens under the training unigram: %.4f nats/token (%.3f "
               "bits); training unigram entropy %.4f nats\n",
               unigram, unigram / log(2.0), unigram_train);
}

/* Tokenizes the corpus (and --val) into the data streams; the unigram baseline. */
static int load_data(pretrain_t *p, const opts_t *o, double *unigram, double *unigram_train,
                     err_t *err) {
    const int64_t seq = o->seq;
    if (p->corpus_text) {
        if (tok_encode(p->tok, p->corpus_text, (int64_t)p->corpus_len, true, &p->train_ids, err))
            return err_prefixf(err, "%s: ", o->corpus);
        free(p->corpus_text);
        p->corpus_text = NULL;
    } else if (tokenize_file(p->tok, o->corpus, &p->train_ids, NULL, NULL, err)) {
        return -1;
    }
    if (data_stream_init(&p->train, p->train_ids.ids, p->train_ids.len, o->batch, seq, err))
        return err_prefixf(err, "%s: ", o->corpus);
    if (!o->val) return 0;
    if (tokenize_file(p->tok, o->val, &p->val_ids, NULL, NULL, err) ||
        data_stream_init(&p->val, p->val_ids.ids, p->val_ids.len, o->batch, seq, err))
        return -1;
    p->val_batches = data_stream_batches(&p->val);
    if (o->val_batches && o->val_batches < p->val_batches) p->val_batches = o->val_batches;
    return unigram_entropy(&p->train_ids, &p->val_ids, tok_vocab_size(p->tok), unigram,
                           unigram_train, err);
}

int sft_cmd_pretrain(int argc, char **argv) {
    opts_t o = {.config = "small", .steps = 1000, .args = HARNESS_ARGS_INIT(100)};
    const double big = (double)(INT64_C(1) << 40);
    harness_setting_t set[] = {
        HARNESS_STR("corpus", "corpus", &o.corpus),
        HARNESS_STR("val", "val", &o.val),
        HARNESS_STR("config", "config", &o.config),
        HARNESS_I64("vocab-size", "vocab_size", &o.vocab_size, 257, 1 << 20),
        HARNESS_STR("tokenizer", "tokenizer", &o.tokenizer),
        HARNESS_I64("steps", "steps", &o.steps, 1, big),
        HARNESS_I64("batch", "batch", &o.batch, 1, 1 << 16),
        HARNESS_I64("seq", "seq", &o.seq, 1, 1 << 20),
        HARNESS_I64("val-batches", "val_batches", &o.val_batches, 0, big),
        HARNESS_INFO_I64("n_vocab", &o.n_vocab),
        HARNESS_INFO_I64("n_embd", &o.n_embd),
        HARNESS_INFO_I64("n_layer", &o.n_layer),
        HARNESS_INFO_I64("n_head", &o.n_head),
        HARNESS_INFO_I64("n_positions", &o.n_positions),
        HARNESS_INFO_I64("num_params", &o.num_params),
    };
    parse(&o, set, (int)(sizeof set / sizeof set[0]), argc, argv);
    cli_threads_apply(o.args.common.threads);
    err_t err = ERR_INIT;
    pretrain_t p = {0};
    /* 1. read and check everything; nothing is written before this block ends */
    if (load_tokenizer(&p, &o, &err)) cli_die(PROG, "%s", err.msg);
    if (tok_eot_id(p.tok) < 0) cli_die(PROG, "the tokenizer has no \"<|endoftext|>\" token");
    if (make_model(&p, &o, o.seq ? o.seq : (o.args.resume ? 1 : o.preset->n_positions), &err))
        cli_die(PROG, "%s", err.msg);
    const gpt_config_t *c = &p.model->cfg;
    if (!o.seq) o.seq = c->n_positions;
    o.n_vocab = c->vocab_size, o.n_embd = c->n_embd, o.n_layer = c->n_layer;
    o.n_head = c->n_head, o.n_positions = c->n_positions, o.num_params = p.model->num_params;
    double unigram = NAN, unigram_train = NAN;
    if (load_data(&p, &o, &unigram, &unigram_train, &err)) cli_die(PROG, "%s", err.msg);
    if (harness_prepare_out(&o.args, &err)) cli_die(PROG, "%s", err.msg);

    /* 2. write the tokenizer, then train */
    p.tokenizer_dir = o.tokenizer ? o.tokenizer : o.args.out;
    if (!o.args.resume && !o.tokenizer && dist_rank() == 0 &&
        (fs_mkdirs(o.args.out, &err) || tok_save(p.tok, o.args.out, &err)))
        cli_die(PROG, "%s", err.msg);
    rng_seed(&p.rng, o.args.common.seed ^ DATA_RNG_TAG);
    p.meta = ckpt_meta_default();
    snprintf(p.meta.template_name, sizeof p.meta.template_name, "%s", DATA_TEMPLATE_NAME);
    p.meta.eos_id = p.meta.pad_id = tok_eot_id(p.tok);
    const harness_config_t hc = {
        .prog = PROG,
        .args = &o.args,
        .steps = o.steps,
        .metric = "loss",
        .hooks = {.ctx = &p,
                  .step = step_hook,
                  .validate = p.val_batches > 0 ? validate_hook : NULL,
                  .save = save_hook},
        .state = {{"data.rng", &p.rng, sizeof p.rng}},
        .nstate = 1,
    };
    p.B = o.batch, p.T = o.seq, p.Bl = (o.batch + dist_size() - 1) / dist_size();
    if (o.batch < dist_size())
        cli_die(PROG, "--batch %" PRId64 " is smaller than the %d ranks", o.batch, dist_size());
    if (dist_size() > 1) {
        p.all_inputs = malloc((size_t)(p.B * p.T) * sizeof *p.all_inputs);
        p.all_targets = malloc((size_t)(p.B * p.T) * sizeof *p.all_targets);
        if (!p.all_inputs || !p.all_targets) cli_die(PROG, "out of memory");
    }
    if (harness_lm_init(&p.lm, p.model, p.Bl, o.seq, &err) || !(p.h = harness_new(&hc, &err)) ||
        harness_add_model(p.h, "", p.model, NULL, &err) < 0 ||
        cli_json_merge(harness_results(p.h), &err, "{s:I, s:I, s:o, s:o}", "train_tokens",
                       (json_int_t)p.train_ids.len, "val_tokens", (json_int_t)p.val_ids.len,
                       "unigram_nats", cli_json_number(unigram), "unigram_bits",
                       cli_json_number(unigram / log(2.0))))
        cli_die(PROG, "%s", err.msg);
    if (isfinite(unigram) && dist_rank() == 0)
        fprintf(stderr, "%s: unigram baseline on %s: %.4f nats/token (%.3f bits)\n", PROG, o.val,
                unigram, unigram / log(2.0));
    harness_result_t r;
    if (harness_run(p.h, &r, &err)) {
        release(&p);
        harness_args_release(&o.args);
        cli_die(PROG, "%s", err.msg);
    }
    summary(&p, &o, &r, unigram, unigram_train);
    release(&p);
    harness_args_release(&o.args);
    return 0;
}
