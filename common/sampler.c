/* common/sampler.c: templated prompts → batched KV-cached sampling → decoded completions. */
#include "sampler.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "FILE:LINE" of example i, or just "FILE" when it has no line (a --prompt). */
static void where(char *buf, size_t size, const data_examples_t *ex, int64_t i) {
    const char *path = ex->path ? ex->path : "prompts";
    if (ex->ex[i].line > 0)
        snprintf(buf, size, "%s:%" PRId64, path, ex->ex[i].line);
    else
        snprintf(buf, size, "%s", path);
}

/* Tokenizes prompt i at out->offset[i] (ids grow in *cap; text is scratch growing in
 * *text_cap). Returns its token count or -1 with err set. */
static int64_t encode_prompt(sampler_prompts_t *out, int64_t i, model_t *m, int64_t *cap,
                             char **text, size_t *text_cap, err_t *err) {
    const char *prompt = out->examples->ex[i].prompt;
    const size_t plen = (size_t)out->examples->ex[i].prompt_len;
    const size_t need = data_template_promptn(NULL, 0, prompt, plen) + 1;
    if (need > *text_cap) {
        char *t = realloc(*text, need);
        if (!t) return err_setf(err, "out of memory");
        *text = t;
        *text_cap = need;
    }
    data_template_promptn(*text, need, prompt, plen);
    /* byte-level BPE gives at most one token per byte */
    const int64_t at = out->offset[i];
    if (at + (int64_t)need > *cap) {
        int64_t c = *cap ? *cap : 1024;
        while (c < at + (int64_t)need) c *= 2;
        int32_t *ids = realloc(out->ids, (size_t)c * sizeof *ids);
        if (!ids) return err_setf(err, "out of memory");
        out->ids = ids;
        *cap = c;
    }
    return model_encode(m, *text, (int64_t)need - 1, out->ids + at, (int64_t)need, err);
}

int sampler_prompts_build(sampler_prompts_t *out, model_t *m, const data_examples_t *examples,
                          err_t *err) {
    memset(out, 0, sizeof *out);
    out->examples = examples;
    out->n = examples->n;
    const int64_t context = m->model->cfg.n_positions;
    char *text = NULL, loc[600];
    size_t text_cap = 0;
    int64_t cap = 0;
    out->offset = calloc((size_t)out->n + 1, sizeof *out->offset);
    if (!out->offset) {
        err_setf(err, "out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < out->n; i++) {
        const int64_t n = encode_prompt(out, i, m, &cap, &text, &text_cap, err);
        where(loc, sizeof loc, examples, i);
        if (n < 0) {
            err_prefixf(err, "%s: prompt: ", loc);
            goto fail;
        }
        if (n >= context) {
            err_setf(err,
                     "%s: prompt is %" PRId64 " tokens with the template, the context is %" PRId64
                     ": no room for a response",
                     loc, n, context);
            goto fail;
        }
        out->offset[i + 1] = out->offset[i] + n;
        if (n > out->max_len) out->max_len = n;
    }
    free(text);
    return 0;
fail:
    free(text);
    sampler_prompts_release(out);
    return -1;
}

void sampler_prompts_release(sampler_prompts_t *p) {
    free(p->offset);
    free(p->ids);
    memset(p, 0, sizeof *p);
}

struct sampler {
    model_t *m;          /* borrowed */
    sampler_opts_t opts; /* as given to sampler_new */
    int64_t max_prompt;  /* longest prompt a run accepts */
    int64_t B, T;        /* generator size: sequences per run, tokens per sequence */
    gen_t *gen;
    int32_t *rows; /* (B, T) prompt rows for gen_run */
    int64_t *lens; /* (B) prompt lengths */
};

sampler_t *sampler_new(model_t *m, const sampler_opts_t *opts, int64_t max_prompt, err_t *err) {
    const int64_t context = m->model->cfg.n_positions;
    if (opts->k < 1 || opts->batch < 1 || opts->gen.max_new < 1 || max_prompt < 0 ||
        max_prompt >= context) {
        err_setf(err,
                 "%s: sampler of k %" PRId64 ", batch %" PRId64 ", max-new %" PRId64
                 " for prompts of %" PRId64 " tokens: need k, batch, max-new >= 1 and "
                 "prompt tokens < context %" PRId64,
                 m->dir, opts->k, opts->batch, opts->gen.max_new, max_prompt, context);
        return NULL;
    }
    sampler_t *s = calloc(1, sizeof *s);
    if (!s) {
        err_setf(err, "out of memory");
        return NULL;
    }
    s->m = m;
    s->opts = *opts;
    s->max_prompt = max_prompt;
    s->B = opts->batch;
    const int64_t P = max_prompt > 0 ? max_prompt : 1; /* a prompt has at least one token */
    s->T = P + opts->gen.max_new < context ? P + opts->gen.max_new : context;
    s->gen = gen_new(m->model, s->B, s->T, err);
    s->rows = calloc((size_t)(s->B * s->T), sizeof *s->rows);
    s->lens = calloc((size_t)s->B, sizeof *s->lens);
    if (!s->gen || !s->rows || !s->lens) {
        err_setf(err, "out of memory");
        sampler_destroy(&s);
    }
    return s;
}

void sampler_destroy(sampler_t **s) {
    if (!s || !*s) return;
    gen_destroy(&(*s)->gen);
    free((*s)->lens);
    free((*s)->rows);
    free(*s);
    *s = NULL;
}

/* Hands the nb finished sequences of one generator run (sequences s0 .. s0+nb-1) to fn. */
static int deliver(const sampler_t *s, const sampler_prompts_t *prompts, const gen_result_t *r,
                   int64_t s0, int64_t nb, sampler_completion_fn fn, void *ctx, err_t *err) {
    const int64_t K = s->opts.k;
    for (int64_t b = 0; b < nb; b++) {
        const int32_t *tokens = r->tokens + b * r->stride;
        const float *logprobs = r->logprobs + b * r->stride;
        const int64_t n = r->count[b], i = (s0 + b) / K;
        double logprob = 0.0;
        for (int64_t t = 0; t < n; t++) logprob += (double)logprobs[t];
        sampler_completion_t c = {.prompt = i,
                                  .k = (s0 + b) % K,
                                  .prompt_ids = prompts->ids + prompts->offset[i],
                                  .prompt_tokens = prompts->offset[i + 1] - prompts->offset[i],
                                  .ids = tokens,
                                  .logprobs = logprobs,
                                  .ended = r->ended[b],
                                  .tokens = n,
                                  .logprob = logprob};
        char *text =
            model_decode_response(s->m, tokens, r->ended[b] ? n - 1 : n, &c.response_len, err);
        if (!text) return -1;
        c.response = text;
        const int rc = fn(ctx, &c, err);
        free(text);
        if (rc) return -1;
    }
    return 0;
}

/* Copies the prompts of sequences s0 .. s0+nb-1 into the generator's rows. */
static void fill_rows(sampler_t *s, const sampler_prompts_t *prompts, int64_t s0, int64_t nb) {
    for (int64_t b = 0; b < nb; b++) {
        const int64_t i = (s0 + b) / s->opts.k, at = prompts->offset[i];
        s->lens[b] = prompts->offset[i + 1] - at;
        memcpy(s->rows + b * s->T, prompts->ids + at, (size_t)s->lens[b] * sizeof *s->rows);
    }
}

int sampler_run(sampler_t *s, const sampler_prompts_t *prompts, int64_t first_stream,
                sampler_completion_fn fn, void *ctx, sampler_stats_t *stats, err_t *err) {
    const int64_t K = s->opts.k, S = prompts->n * K, B = s->B;
    const double t0 = now_s();
    int64_t tokens = 0;
    int rc = -1;
    cli_progress_t progress;
    gen_opts_t go = s->opts.gen;
    go.eos_id = s->m->eos_id;
    if (stats) memset(stats, 0, sizeof *stats);
    if (prompts->max_len > s->max_prompt)
        return err_setf(err,
                        "a prompt of %" PRId64 " tokens: this sampler was made for prompts of "
                        "at most %" PRId64,
                        prompts->max_len, s->max_prompt);
    if (S == 0) return 0;
    if (s->opts.label) cli_progress_init(&progress, stderr, s->opts.label, 0, (S + B - 1) / B);
    for (int64_t s0 = 0, step = 1; s0 < S; s0 += B, step++) {
        const int64_t nb = S - s0 < B ? S - s0 : B;
        fill_rows(s, prompts, s0, nb);
        go.seq_offset = first_stream + s0; /* stream (seed, s): independent of the batching */
        if (gen_run(s->gen, s->rows, s->T, s->lens, nb, &go, err)) goto done;
        const gen_result_t r = gen_result(s->gen);
        int64_t new_tokens = 0;
        for (int64_t b = 0; b < nb; b++) new_tokens += r.count[b];
        tokens += new_tokens;
        if (deliver(s, prompts, &r, s0, nb, fn, ctx, err)) goto done;
        if (s->opts.label) cli_progress_update(&progress, step, NAN, new_tokens, NULL);
    }
    if (stats) *stats = (sampler_stats_t){S, tokens, now_s() - t0};
    rc = 0;
done:
    if (s->opts.label) cli_progress_finish(&progress, NULL); /* also before an error message */
    return rc;
}

sampler_opts_t sampler_defaults(void) {
    sampler_opts_t o = {.gen = GEN_OPTS_DEFAULT, .k = 1, .batch = SAMPLER_BATCH};
    o.gen.temperature = SAMPLER_TEMPERATURE;
    o.gen.max_new = SAMPLER_MAX_NEW;
    return o;
}

bool sampler_option(sampler_opts_t *o, const char *prog, int c, const char *arg) {
    switch (c) {
    case SAMPLER_OPT_K:
        o->k = cli_arg_i64(prog, "--k", arg, 1, 1000000);
        return true;
    case SAMPLER_OPT_TEMPERATURE:
        o->gen.temperature = (float)cli_arg_f64(prog, "--temperature", arg, 0.0, 1000.0);
        return true;
    case SAMPLER_OPT_TOP_P:
        o->gen.top_p = (float)cli_arg_f64(prog, "--top-p", arg, 1e-6, 1.0);
        return true;
    case SAMPLER_OPT_TOP_K:
        o->gen.top_k = cli_arg_i64(prog, "--top-k", arg, 0, INT32_MAX);
        return true;
    case SAMPLER_OPT_MAX_NEW:
        o->gen.max_new = cli_arg_i64(prog, "--max-new", arg, 1, 1 << 20);
        return true;
    case SAMPLER_OPT_BATCH:
        o->batch = cli_arg_i64(prog, "--batch", arg, 1, 4096);
        return true;
    default:
        return false;
    }
}
