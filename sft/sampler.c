/* sft/sampler.c: templated prompts → batched KV-cached sampling → decoded completions. */
#include "sampler.h"
#include "cli.h"
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
static int64_t encode_prompt(sft_prompts_t *out, int64_t i, sft_model_t *m, int64_t *cap,
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
    return sft_model_encode(m, *text, (int64_t)need - 1, out->ids + at, (int64_t)need, err);
}

int sft_prompts_build(sft_prompts_t *out, sft_model_t *m, const data_examples_t *examples,
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
    sft_prompts_release(out);
    return -1;
}

void sft_prompts_release(sft_prompts_t *p) {
    free(p->offset);
    free(p->ids);
    memset(p, 0, sizeof *p);
}

/* Hands the nb finished sequences of one generator run (sequences s0 .. s0+nb-1) to fn. */
static int deliver(sft_model_t *m, const gen_result_t *r, int64_t s0, int64_t nb, int64_t K,
                   sft_completion_fn fn, void *ctx, err_t *err) {
    for (int64_t b = 0; b < nb; b++) {
        const int32_t *tokens = r->tokens + b * r->stride;
        const float *logprobs = r->logprobs + b * r->stride;
        const int64_t n = r->count[b];
        double logprob = 0.0;
        for (int64_t t = 0; t < n; t++) logprob += (double)logprobs[t];
        sft_completion_t c = {.prompt = (s0 + b) / K,
                              .k = (s0 + b) % K,
                              .ids = tokens,
                              .ended = r->ended[b],
                              .tokens = n,
                              .logprob = logprob};
        char *text =
            sft_model_decode_response(m, tokens, r->ended[b] ? n - 1 : n, &c.response_len, err);
        if (!text) return -1;
        c.response = text;
        const int rc = fn(ctx, &c, err);
        free(text);
        if (rc) return -1;
    }
    return 0;
}

int sft_sample_run(sft_model_t *m, const sft_prompts_t *prompts, const sft_sample_opts_t *opts,
                   sft_completion_fn fn, void *ctx, sft_sample_stats_t *stats, err_t *err) {
    const int64_t K = opts->k, S = prompts->n * K;
    const int64_t B = opts->batch < S ? opts->batch : S;
    const int64_t context = m->model->cfg.n_positions;
    const int64_t T = prompts->max_len + opts->gen.max_new < context
                          ? prompts->max_len + opts->gen.max_new
                          : context;
    const double t0 = now_s();
    int32_t *rows = NULL;
    int64_t *lens = NULL, tokens = 0;
    int rc = -1;
    bool started = false;
    cli_progress_t progress;
    gen_opts_t go = opts->gen;
    go.eos_id = m->eos_id;
    if (stats) memset(stats, 0, sizeof *stats);
    if (S == 0) return 0;
    gen_t *g = gen_new(m->model, B, T, err);
    rows = calloc((size_t)(B * T), sizeof *rows);
    lens = calloc((size_t)B, sizeof *lens);
    if (!g) goto done;
    if (!rows || !lens) {
        err_setf(err, "out of memory");
        goto done;
    }
    if (opts->label) cli_progress_init(&progress, stderr, opts->label, 0, (S + B - 1) / B);
    started = opts->label != NULL;
    for (int64_t s0 = 0, step = 1; s0 < S; s0 += B, step++) {
        const int64_t nb = S - s0 < B ? S - s0 : B;
        for (int64_t b = 0; b < nb; b++) {
            const int64_t i = (s0 + b) / K, at = prompts->offset[i];
            lens[b] = prompts->offset[i + 1] - at;
            memcpy(rows + b * T, prompts->ids + at, (size_t)lens[b] * sizeof *rows);
        }
        go.seq_offset = s0; /* stream (seed, s): independent of the batching */
        if (gen_run(g, rows, T, lens, nb, &go, err)) goto done;
        const gen_result_t r = gen_result(g);
        int64_t new_tokens = 0;
        for (int64_t b = 0; b < nb; b++) new_tokens += r.count[b];
        tokens += new_tokens;
        if (deliver(m, &r, s0, nb, K, fn, ctx, err)) goto done;
        if (opts->label) cli_progress_update(&progress, step, NAN, new_tokens, NULL);
    }
    if (stats) *stats = (sft_sample_stats_t){S, tokens, now_s() - t0};
    rc = 0;
done:
    if (started) cli_progress_finish(&progress, NULL); /* also before an error message */
    free(lens);
    free(rows);
    gen_destroy(&g);
    return rc;
}

sft_sample_opts_t sft_sampling_defaults(void) {
    sft_sample_opts_t o = {.gen = GEN_OPTS_DEFAULT, .k = 1, .batch = SFT_SAMPLE_BATCH};
    o.gen.temperature = SFT_SAMPLE_TEMPERATURE;
    o.gen.max_new = SFT_SAMPLE_MAX_NEW;
    return o;
}

bool sft_sampling_option(sft_sample_opts_t *o, const char *prog, int c, const char *arg) {
    switch (c) {
    case SFT_OPT_K:
        o->k = cli_arg_i64(prog, "--k", arg, 1, 1000000);
        return true;
    case SFT_OPT_TEMPERATURE:
        o->gen.temperature = (float)cli_arg_f64(prog, "--temperature", arg, 0.0, 1000.0);
        return true;
    case SFT_OPT_TOP_P:
        o->gen.top_p = (float)cli_arg_f64(prog, "--top-p", arg, 1e-6, 1.0);
        return true;
    case SFT_OPT_TOP_K:
        o->gen.top_k = cli_arg_i64(prog, "--top-k", arg, 0, INT32_MAX);
        return true;
    case SFT_OPT_MAX_NEW:
        o->gen.max_new = cli_arg_i64(prog, "--max-new", arg, 1, 1 << 20);
        return true;
    case SFT_OPT_BATCH:
        o->batch = cli_arg_i64(prog, "--batch", arg, 1, 4096);
        return true;
    default:
        return false;
    }
}
