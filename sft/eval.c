/* sft/eval.c: `sft eval` — three ways to measure a language model:
 *   --demos FILE   mean next-token loss on the response tokens of demonstrations (the tokens
 *                  and the mask of `sft train`) and its perplexity;
 *   --texts FILE   per line of {"text"}: mean next-token cross-entropy over the line's own
 *                  tokens, nothing added, so any GPT-2 implementation can reproduce it;
 *   --judge simulated --prompts FILE
 *                  the gold judge's mean score (with a 95% interval) of the model's samples.
 * Every input is read and checked (FILE:LINE errors) before the first forward. Losses are sums
 * of float log-probs in double, token-weighted. */
#include "cli.h"
#include "data.h"
#include "model.h"
#include "sampler.h"
#include "sft.h"
#include "stats.h"
#include "world.h"
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "sft eval"

/* Logits are the big buffer of a forward: (B, T, V) floats. Batches shrink so that they stay
 * under this many bytes (GPT-2's 50257-token vocabulary at T = 1024 is 206 MB per row). */
#define EVAL_LOGITS_BUDGET (256ll << 20)

// clang-format off
#define EVAL_HELP \
    "usage: sft eval --model DIR --demos FILE [--out FILE]\n" \
    "       sft eval --model DIR --texts FILE [--out FILE]\n" \
    "       sft eval --model DIR --judge simulated --prompts FILE [--samples N] [sampling options]\n" \
    "                [--out FILE]\n" \
    "\n" \
    "--demos FILE   JSONL {\"prompt\", \"response\"}: the mean loss (nats) per response token,\n" \
    "               end-of-text included, with the template, tokens and masking of `sft train`,\n" \
    "               and the perplexity exp(loss). Prints one line; --out writes\n" \
    "               {\"model\", \"demos\", \"examples\", \"tokens\", \"loss\", \"perplexity\"}.\n" \
    "--texts FILE   JSONL {\"text\"}: writes {\"loss\": L, \"tokens\": n} per record, in order\n" \
    "               (blank lines are skipped), to --out or stdout. n is the number of tokens of\n" \
    "               the text (GPT-2 BPE as `sft tokenize` gives them: \"<|endoftext|>\" is the\n" \
    "               end-of-text id); nothing is added before or after it, so L is the mean of\n" \
    "               -log p(token i | tokens 1..i-1) over i = 2..n, the n-1 predictions the text\n" \
    "               makes, in nats. L is null when n < 2. A summary goes to stderr.\n" \
    "--judge simulated --prompts FILE\n" \
    "               samples K completions of each prompt ({\"prompt\"} per line) and scores each\n" \
    "               with the embedded world's gold judge (world_gold_score, in [-1, 1]). Prints\n" \
    "               the mean per task family and overall with a 95% confidence interval\n" \
    "               (Student t over the per-prompt means); --out writes them as JSON.\n" \
    "\n" \
    "options:\n" \
    "  --model DIR        model directory (config.json, model.safetensors, vocab.json,\n" \
    "                     merges.txt)\n" \
    "  --out FILE         write the results as JSON to FILE, atomically; '-' = stdout (the\n" \
    "                     readable report then goes to stderr)\n" \
    "  --batch B          sequences per forward or generator run (default 16; --demos and\n" \
    "                     --texts take fewer when their logits would pass 256 MB)\n" \
    "  --samples N        --judge: only the first N prompts of the file (default: all)\n" \
    "sampling options (--judge only):\n" \
    SAMPLER_HELP "\n"
// clang-format on

enum { O_MODEL = CLI_OPTS_COMMAND, O_DEMOS, O_TEXTS, O_JUDGE, O_PROMPTS, O_SAMPLES, O_OUT };

typedef struct {
    const char *model, *demos, *texts, *judge, *prompts, *out;
    int64_t samples; /* --judge: first N prompts; 0 = all */
    sampler_opts_t sampling;
    const char *log_path;
} eval_args_t;

/* ---- Output ------------------------------------------------------------------------------ */

/* Writes text (len bytes) to path atomically, or to stdout when path is "-". */
static int write_out(const char *path, const char *text, size_t len, err_t *err) {
    if (strcmp(path, "-")) return ckpt_write_atomic(path, text, len, err);
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout))
        return err_setf(err, "cannot write to stdout");
    return 0;
}

/* Dumps obj (stolen) as one line of JSON to path ("-" = stdout). */
static int write_json(const char *path, json_t *obj, err_t *err) {
    char *text = obj ? json_dumps(obj, CLI_JSON_FLAGS) : NULL;
    json_decref(obj);
    if (!text) return err_setf(err, "out of memory");
    const size_t len = strlen(text);
    text[len] = '\0';
    char *line = realloc(text, len + 2);
    if (!line) {
        free(text);
        return err_setf(err, "out of memory");
    }
    line[len] = '\n';
    const int rc = write_out(path, line, len + 1, err);
    free(line);
    return rc;
}

/* Where the readable report goes: stderr when the JSON takes stdout. */
static FILE *report_stream(const eval_args_t *a) {
    return a->out && !strcmp(a->out, "-") ? stderr : stdout;
}

/* ---- Scoring rows with the full forward --------------------------------------------------- */

/* Writes row i (len[i] tokens) as inputs[0..T) and targets[0..T) (-1 = not scored). */
typedef void (*fill_fn)(const void *ctx, int64_t i, int64_t T, int32_t *inputs, int32_t *targets);

typedef struct {
    int64_t len, index;
} row_t;

/* Longest first; equal lengths in file order (so the run is the same every time). */
static int by_len_desc(const void *pa, const void *pb) {
    const row_t *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* nll[i] = -Σ log p(target) over row i's targets, for every row with len[i] ≥ 2 (others get
 * 0). Rows run longest first, so a batch's rows have similar lengths and T is the first one's. */
static int score_rows(gpt_model_t *model, int64_t n, const int64_t *len, fill_fn fill,
                      const void *ctx, int64_t batch, double *nll, err_t *err) {
    row_t *order = malloc(((size_t)n + 1) * sizeof *order);
    int64_t rows = 0, T_max = 0;
    int32_t *inputs = NULL, *targets = NULL;
    float *logp = NULL;
    int rc = -1;
    if (!order) return err_setf(err, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        nll[i] = 0.0;
        if (len[i] >= 2) order[rows++] = (row_t){len[i], i};
        if (len[i] > T_max) T_max = len[i];
    }
    qsort(order, (size_t)rows, sizeof *order, by_len_desc);
    const int64_t per_row = T_max * model->cfg.vocab_size * (int64_t)sizeof(float);
    int64_t B = EVAL_LOGITS_BUDGET / (per_row ? per_row : 1);
    B = B < 1 ? 1 : B > batch ? batch : B;
    if (rows == 0) {
        rc = 0;
        goto done;
    }
    if (gpt_alloc(model, B, T_max, false, err)) goto done;
    inputs = malloc((size_t)(B * T_max) * sizeof *inputs);
    targets = malloc((size_t)(B * T_max) * sizeof *targets);
    logp = malloc((size_t)(B * T_max) * sizeof *logp);
    if (!inputs || !targets || !logp) {
        err_setf(err, "out of memory");
        goto done;
    }
    cli_progress_t progress;
    cli_progress_init(&progress, stderr, PROG, 0, (rows + B - 1) / B);
    for (int64_t r0 = 0, step = 1; r0 < rows; r0 += B, step++) {
        const int64_t nb = rows - r0 < B ? rows - r0 : B, T = order[r0].len;
        for (int64_t b = 0; b < nb; b++)
            fill(ctx, order[r0 + b].index, T, inputs + b * T, targets + b * T);
        gpt_forward(model, inputs, nb, T);
        gpt_lm_logprobs(model, targets, 1.0f, logp);
        int64_t tokens = 0;
        for (int64_t b = 0; b < nb; b++) {
            double sum = 0.0;
            for (int64_t t = 0; t < T; t++) sum += (double)logp[b * T + t];
            nll[order[r0 + b].index] = -sum;
            tokens += order[r0 + b].len;
        }
        cli_progress_update(&progress, step, NAN, tokens, NULL);
    }
    cli_progress_finish(&progress, NULL);
    rc = 0;
done:
    free(logp);
    free(targets);
    free(inputs);
    free(order);
    return rc;
}

/* ---- --demos ------------------------------------------------------------------------------ */

static void fill_demo(const void *ctx, int64_t i, int64_t T, int32_t *inputs, int32_t *targets) {
    data_sft_batch(ctx, &i, 1, T, inputs, targets, NULL);
}

static int eval_demos(model_t *m, const eval_args_t *a, cli_log_t *log, err_t *err) {
    data_examples_t demos = {0};
    data_sft_t set = {0};
    int64_t *len = NULL;
    double *nll = NULL;
    int rc = -1;
    if (data_demos_load(&demos, a->demos, err) ||
        data_sft_build(&set, &demos, model_encode, m, m->eos_id, m->pad_id,
                       m->model->cfg.n_positions, DATA_TOO_LONG_ERROR, err))
        goto done;
    len = malloc(((size_t)set.n + 1) * sizeof *len);
    nll = malloc(((size_t)set.n + 1) * sizeof *nll);
    if (!len || !nll) {
        err_setf(err, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < set.n; i++) len[i] = data_sft_len(&set, i);
    if (score_rows(m->model, set.n, len, fill_demo, &set, a->sampling.batch, nll, err)) goto done;
    double sum = 0.0;
    int64_t tokens = 0; /* trained positions: response tokens + end-of-text of each example */
    for (int64_t i = 0; i < set.n; i++) {
        sum += nll[i];
        tokens += len[i] - set.n_prompt[i];
    }
    const double loss = tokens ? sum / (double)tokens : (double)NAN, ppl = exp(loss);
    fprintf(report_stream(a),
            "%s: %s: %" PRId64 " demonstrations, %" PRId64 " response tokens: loss %.4f, "
            "perplexity %.3f\n",
            PROG, a->demos, set.n, tokens, loss, ppl);
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o}", "model", a->model, "demos", a->demos,
                          "examples", (json_int_t)set.n, "tokens", (json_int_t)tokens, "loss",
                          cli_json_number(loss), "perplexity", cli_json_number(ppl));
    if (cli_log_json(log, "eval", o, err)) {
        json_decref(o);
        goto done;
    }
    if (a->out) {
        rc = write_json(a->out, o, err); /* steals o */
    } else {
        json_decref(o);
        rc = 0;
    }
done:
    free(nll);
    free(len);
    data_sft_release(&set);
    data_examples_release(&demos);
    return rc;
}

/* ---- --texts ------------------------------------------------------------------------------ */

typedef struct {
    const int64_t *offset; /* text i is ids[offset[i] .. offset[i+1]) */
    const int32_t *ids;
    int32_t pad_id;
} texts_ctx_t;

static void fill_text(const void *ctx, int64_t i, int64_t T, int32_t *inputs, int32_t *targets) {
    const texts_ctx_t *c = ctx;
    const int32_t *ids = c->ids + c->offset[i];
    const int64_t n = c->offset[i + 1] - c->offset[i];
    for (int64_t t = 0; t < T; t++) {
        inputs[t] = t < n ? ids[t] : c->pad_id;
        targets[t] = t + 1 < n ? ids[t + 1] : -1;
    }
}

/* Tokenizes every text (special tokens on: "<|endoftext|>" is the end-of-text id) into one
 * array with offsets [n + 1], checking each fits the context. */
static int encode_texts(model_t *m, const data_texts_t *texts, tok_ids_t *ids, int64_t *offset,
                        err_t *err) {
    const int64_t context = m->model->cfg.n_positions;
    offset[0] = 0;
    for (int64_t i = 0; i < texts->n; i++) {
        if (tok_encode(m->tok, texts->text[i], texts->len[i], true, ids, err))
            return err_prefixf(err, "%s:%" PRId64 ": ", texts->path, texts->line[i]);
        offset[i + 1] = ids->len;
        const int64_t n = offset[i + 1] - offset[i];
        if (n > context)
            return err_setf(err,
                            "%s:%" PRId64 ": text is %" PRId64 " tokens, the context is %" PRId64,
                            texts->path, texts->line[i], n, context);
    }
    return 0;
}

/* The output: {"loss": L or null, "tokens": n} per text, one line each. */
static char *texts_output(const data_texts_t *texts, const int64_t *offset, const double *nll,
                          size_t *len) {
    size_t cap = 96 * (size_t)texts->n + 1, k = 0; /* a line is at most ~60 bytes */
    char *out = malloc(cap);
    for (int64_t i = 0; out && i < texts->n; i++) {
        const int64_t n = offset[i + 1] - offset[i];
        char loss[32] = "null";
        if (n >= 2) snprintf(loss, sizeof loss, "%.10g", nll[i] / (double)(n - 1));
        k += (size_t)snprintf(out + k, cap - k, "{\"loss\": %s, \"tokens\": %" PRId64 "}\n", loss,
                              n);
    }
    *len = k;
    return out;
}

static int eval_texts(model_t *m, const eval_args_t *a, cli_log_t *log, err_t *err) {
    data_texts_t texts = {0};
    tok_ids_t ids = TOK_IDS_INIT;
    int64_t *offset = NULL, *len = NULL;
    double *nll = NULL;
    char *out = NULL;
    size_t out_len = 0;
    int rc = -1;
    if (data_texts_load(&texts, a->texts, err)) goto done;
    offset = malloc(((size_t)texts.n + 1) * sizeof *offset);
    len = malloc(((size_t)texts.n + 1) * sizeof *len);
    nll = malloc(((size_t)texts.n + 1) * sizeof *nll);
    if (!offset || !len || !nll) {
        err_setf(err, "out of memory");
        goto done;
    }
    if (encode_texts(m, &texts, &ids, offset, err)) goto done;
    for (int64_t i = 0; i < texts.n; i++) len[i] = offset[i + 1] - offset[i];
    const texts_ctx_t ctx = {offset, ids.ids, m->pad_id};
    if (score_rows(m->model, texts.n, len, fill_text, &ctx, a->sampling.batch, nll, err)) goto done;
    if (!(out = texts_output(&texts, offset, nll, &out_len))) {
        err_setf(err, "out of memory");
        goto done;
    }
    if (write_out(a->out ? a->out : "-", out, out_len, err)) goto done;
    double sum = 0.0;
    int64_t predictions = 0;
    for (int64_t i = 0; i < texts.n; i++) {
        sum += nll[i];
        predictions += len[i] >= 2 ? len[i] - 1 : 0;
    }
    const double mean = predictions ? sum / (double)predictions : (double)NAN;
    fprintf(stderr,
            "%s: %s: %" PRId64 " texts, %" PRId64 " tokens: mean loss %.4f over %" PRId64
            " predictions\n",
            PROG, a->texts, texts.n, ids.len, mean, predictions);
    /* only with a log: a NULL log ignores the call, and the "o" value would leak */
    rc = !log ? 0
              : cli_log_event(log, err, "eval", "{s:s, s:s, s:I, s:I, s:I, s:o}", "model", a->model,
                              "texts", a->texts, "lines", (json_int_t)texts.n, "tokens",
                              (json_int_t)ids.len, "predictions", (json_int_t)predictions, "loss",
                              cli_json_number(mean));
done:
    free(out);
    free(nll);
    free(len);
    free(offset);
    tok_ids_release(&ids);
    data_texts_release(&texts);
    return rc;
}

/* ---- --judge simulated -------------------------------------------------------------------- */

typedef struct {
    const data_examples_t *prompts;
    int64_t k;
    double *score;   /* [n] Σ gold score over prompt i's samples */
    double *scratch; /* [n] for group_stats */
    int64_t ended;   /* samples that ended with end-of-text */
    int64_t tokens;  /* new tokens over all samples */
} judge_ctx_t;

static int judge_completion(void *ctx, const sampler_completion_t *c, err_t *err) {
    (void)err;
    judge_ctx_t *j = ctx;
    j->score[c->prompt] += world_gold_score(j->prompts->ex[c->prompt].prompt, c->response);
    j->ended += c->ended;
    j->tokens += c->tokens;
    return 0;
}

/* A group's figure: the mean over its prompts of their per-prompt mean score, with a Student t
 * 95% interval (the prompt is the unit: its K samples are not independent of each other). */
static json_t *group_json(const stats_ci_t *r) {
    json_t *ci = isfinite(r->lo) ? json_pack("[f, f]", r->lo, r->hi) : json_null();
    return json_pack("{s:I, s:o, s:o}", "prompts", (json_int_t)r->n, "mean",
                     cli_json_number(r->mean), "ci95", ci);
}

static void group_row(FILE *f, const char *name, const stats_ci_t *r) {
    if (isfinite(r->lo))
        fprintf(f, "  %-10s %7" PRId64 "  %7.3f  [%6.3f, %6.3f]\n", name, r->n, r->mean, r->lo,
                r->hi);
    else
        fprintf(f, "  %-10s %7" PRId64 "  %7.3f  (too few prompts)\n", name, r->n, r->mean);
}

/* Families of the world, then "unknown" (prompts from outside it) last. */
#define JUDGE_GROUPS (WORLD_NFAMILIES + 1)

static const char *group_name(int g) {
    return g < WORLD_NFAMILIES ? world_family_name(g) : "unknown";
}

/* The group of prompt i: its family, or WORLD_NFAMILIES for a prompt from outside the world. */
static int group_of(const judge_ctx_t *j, int64_t i) {
    const int f = world_task_family(j->prompts->ex[i].prompt);
    return f >= 0 && f < WORLD_NFAMILIES ? f : WORLD_NFAMILIES;
}

#define JUDGE_ALL (-1) /* every prompt, as a group */

/* Group g's figure over its prompts' mean scores, in prompt order (scratch holds n doubles). */
static stats_ci_t group_stats(const judge_ctx_t *j, int g, double *scratch) {
    int64_t n = 0;
    for (int64_t i = 0; i < j->prompts->n; i++)
        if (g == JUDGE_ALL || group_of(j, i) == g) scratch[n++] = j->score[i] / (double)j->k;
    return stats_mean(scratch, n);
}

/* Prints the table and builds the JSON document (caller owns it). */
static json_t *judge_report(const eval_args_t *a, const judge_ctx_t *j, const sampler_stats_t *st) {
    stats_ci_t all = group_stats(j, JUDGE_ALL, j->scratch), fam[JUDGE_GROUPS];
    for (int g = 0; g < JUDGE_GROUPS; g++) fam[g] = group_stats(j, g, j->scratch);
    const double samples = (double)(st->sequences ? st->sequences : 1);
    FILE *f = report_stream(a);
    fprintf(f,
            "%s: gold judge (simulated) on %s: %" PRId64 " prompts x %" PRId64
            " samples, temperature %g: %.0f%% ended, %.1f tokens per sample\n",
            PROG, a->prompts, j->prompts->n, j->k, (double)a->sampling.gen.temperature,
            100.0 * (double)j->ended / samples, (double)j->tokens / samples);
    fprintf(f, "  %-10s %7s  %7s  %s\n", "family", "prompts", "gold", "95% interval");
    json_t *families = json_object();
    for (int g = 0; g < JUDGE_GROUPS; g++) {
        if (!fam[g].n) continue;
        group_row(f, group_name(g), &fam[g]);
        json_object_set_new(families, group_name(g), group_json(&fam[g]));
    }
    group_row(f, "all", &all);
    const gen_opts_t *o = &a->sampling.gen;
    json_t *doc = json_pack("{s:s, s:s, s:s}", "model", a->model, "judge", "simulated",
                            "prompts_file", a->prompts);
    json_t *rest = json_pack(
        "{s:I, s:I, s:f, s:f, s:{s:o, s:o, s:I, s:I, s:I}}", "k", (json_int_t)j->k, "samples",
        (json_int_t)st->sequences, "ended", (double)j->ended / samples, "tokens_per_sample",
        (double)j->tokens / samples, "sampling", "temperature", cli_json_float(o->temperature),
        "top_p", cli_json_float(o->top_p), "top_k", (json_int_t)o->top_k, "max_new",
        (json_int_t)o->max_new, "seed", (json_int_t)o->seed);
    json_t *total = group_json(&all); /* "prompts", "mean", "ci95" */
    if (doc && total && rest && families && !json_object_update(doc, total) &&
        !json_object_update(doc, rest) && !json_object_set(doc, "families", families)) {
        json_decref(total);
        json_decref(rest);
        json_decref(families);
        return doc;
    }
    json_decref(total);
    json_decref(rest);
    json_decref(families);
    json_decref(doc);
    return NULL;
}

static int eval_judge(model_t *m, const eval_args_t *a, cli_log_t *log, err_t *err) {
    data_examples_t file = {0};
    sampler_prompts_t prompts = {0};
    sampler_t *sampler = NULL;
    judge_ctx_t j = {0};
    json_t *doc = NULL;
    int rc = -1;
    if (data_prompts_load(&file, a->prompts, err)) goto done;
    data_examples_t view = file; /* --samples N: the first N prompts */
    if (a->samples > 0 && a->samples < view.n) view.n = a->samples;
    if (sampler_prompts_build(&prompts, m, &view, err)) goto done;
    j = (judge_ctx_t){.prompts = &view, .k = a->sampling.k};
    j.score = calloc((size_t)view.n + 1, sizeof *j.score);
    j.scratch = calloc((size_t)view.n + 1, sizeof *j.scratch);
    if (!j.score || !j.scratch) {
        err_setf(err, "out of memory");
        goto done;
    }
    sampler_opts_t o = a->sampling; /* one run: a generator no larger than its sequences */
    if (o.batch > view.n * o.k) o.batch = view.n * o.k;
    if (!(sampler = sampler_new(m, &o, prompts.max_len, err))) goto done;
    sampler_stats_t st;
    if (sampler_run(sampler, &prompts, 0, judge_completion, &j, &st, err)) goto done;
    if (!(doc = judge_report(a, &j, &st))) {
        err_setf(err, "out of memory");
        goto done;
    }
    if (cli_log_json(log, "eval", doc, err)) goto done;
    rc = a->out ? write_json(a->out, json_incref(doc), err) : 0;
done:
    json_decref(doc);
    free(j.scratch);
    free(j.score);
    sampler_destroy(&sampler);
    sampler_prompts_release(&prompts);
    data_examples_release(&file);
    return rc;
}

/* ---- The command -------------------------------------------------------------------------- */

static int run(const eval_args_t *a) {
    err_t err = ERR_INIT;
    model_t m = {0};
    cli_log_t *log = NULL;
    int rc = -1;
    if (model_load(&m, a->model, MODEL_HEAD_LM, &err)) goto done;
    if (a->log_path && !(log = cli_log_open(a->log_path, false, &err))) goto done;
    rc = a->demos   ? eval_demos(&m, a, log, &err)
         : a->texts ? eval_texts(&m, a, log, &err)
                    : eval_judge(&m, a, log, &err);
done:
    if (rc) fprintf(stderr, "sft: error: %s\n", err.msg);
    cli_log_close(&log);
    model_release(&m);
    return rc ? 1 : 0;
}

/* Usage errors: one mode, and only the options that mode reads. */
static void check_args(const eval_args_t *a, bool sampling_given) {
    cli_require(PROG, "--model", a->model);
    const int modes = !!a->demos + !!a->texts + !!a->judge;
    if (modes != 1) cli_usage_error(PROG, "give one of --demos, --texts and --judge");
    if (a->judge && strcmp(a->judge, "simulated"))
        cli_usage_error(PROG,
                        "--judge: '%s' is not a judge; the one judge is 'simulated' (the "
                        "embedded world's gold score)",
                        a->judge);
    if (a->judge) cli_require(PROG, "--prompts", a->prompts);
    if (!a->judge && (a->prompts || a->samples || sampling_given))
        cli_usage_error(PROG, "--prompts, --samples and the sampling options go with --judge");
    if (a->out && !a->out[0]) cli_usage_error(PROG, "--out: expected a file name");
}

int sft_cmd_eval(int argc, char **argv) {
    static const struct option longopts[] = {{"model", required_argument, NULL, O_MODEL},
                                             {"demos", required_argument, NULL, O_DEMOS},
                                             {"texts", required_argument, NULL, O_TEXTS},
                                             {"judge", required_argument, NULL, O_JUDGE},
                                             {"prompts", required_argument, NULL, O_PROMPTS},
                                             {"samples", required_argument, NULL, O_SAMPLES},
                                             {"out", required_argument, NULL, O_OUT},
                                             SAMPLER_LONGOPTS,
                                             CLI_COMMON_LONGOPTS,
                                             {0}};
    eval_args_t a = {.sampling = sampler_defaults()};
    bool sampling_given = false;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        if (sampler_option(&a.sampling, PROG, c, args.arg)) {
            sampling_given |= c != SAMPLER_OPT_BATCH;
            continue;
        }
        switch (c) {
        case O_MODEL:
            a.model = args.arg;
            break;
        case O_DEMOS:
            a.demos = args.arg;
            break;
        case O_TEXTS:
            a.texts = args.arg;
            break;
        case O_JUDGE:
            a.judge = args.arg;
            break;
        case O_PROMPTS:
            a.prompts = args.arg;
            break;
        case O_SAMPLES:
            a.samples = cli_arg_i64(PROG, "--samples", args.arg, 1, INT64_MAX);
            break;
        case O_OUT:
            a.out = args.arg;
            break;
        }
    }
    cli_args_end(&args, EVAL_HELP CLI_COMMON_HELP);
    check_args(&a, sampling_given);
    a.sampling.gen.seed = args.common.seed;
    a.sampling.label = PROG;
    a.log_path = args.common.log_path;
    return run(&a);
}
