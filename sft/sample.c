/* sft/sample.c: `sft sample` — K completions per prompt as JSON lines on stdout, the quick way
 * to talk to a model; with --db, into the rankings database instead, ready for `reward label`
 * (one transaction per prompt, so an interrupted run keeps every prompt it finished). Every
 * input is checked (model, tokenizer, template, each prompt's length, the database) before the
 * first token is sampled. */
#include "cli.h"
#include "data.h"
#include "model.h"
#include "sampler.h"
#include "sft.h"
#include "store.h"
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "sft sample"

#define SAMPLE_HELP                                                                                \
    "usage: sft sample --model DIR (--prompt TEXT | --prompts FILE) [options]\n"                   \
    "       sft sample --model DIR --prompts FILE --db FILE --k K [options]\n"                     \
    "\n"                                                                                           \
    "Samples K completions of each prompt, shown to the model in its template, and writes one\n"   \
    "JSON line per completion on stdout, prompt by prompt:\n"                                      \
    "  {\"prompt\": \"What is 7 plus 5?\", \"k\": 0, \"response\": \"7 plus 5 is 12.\",\n"         \
    "   \"ended\": true, \"tokens\": 8, \"logprob\": -3.217}\n"                                    \
    "  prompt    the prompt as given (without the template)\n"                                     \
    "  k         which completion of this prompt, 0..K-1\n"                                        \
    "  response  the decoded text, without the end-of-text and the template's leading space\n"     \
    "  ended     true when the model ended it with end-of-text; false when it was cut at\n"        \
    "            --max-new or at the model's context\n"                                            \
    "  tokens    new tokens, the end-of-text included\n"                                           \
    "  logprob   sum of their log-probabilities under the sampling distribution before top-k/\n"   \
    "            top-p: log softmax(logits / temperature) (temperature 1 when greedy)\n"           \
    "  ids       (with --ids) the new tokens' ids\n"                                               \
    "Each completion draws from its own random stream of --seed, so the same seed gives the\n"     \
    "same output; --batch and --threads change only float rounding.\n"                             \
    "\n"                                                                                           \
    "With --db FILE the completions go into the rankings database (created when missing), for\n"   \
    "`reward label` to rank: each prompt with its K >= 2 completions, the model directory and\n"   \
    "the sampling settings, one transaction per prompt; a summary is printed instead of JSON.\n"   \
    "A rerun with the same model, prompts and settings (seed included) adds nothing. For\n"       \
    "comparisons the default temperature is 1 (InstructGPT's: diverse samples; identical\n"       \
    "completions tie and give no pair), unless --temperature is given.\n"                         \
    "\n"                                                                                           \
    "options:\n"                                                                                   \
    "  --model DIR        model directory (config.json, model.safetensors, vocab.json,\n"          \
    "                     merges.txt)\n"                                                           \
    "  --prompt TEXT      one prompt\n"                                                            \
    "  --prompts FILE     JSONL, {\"prompt\": ...} per line (other fields are ignored)\n"          \
    "  --ids              also print each completion's token ids\n"                                \
    "  --db FILE          write into this rankings database instead of stdout (needs --prompts,\n" \
    "                     --k >= 2; default temperature 1)\n"                                     \
    "  --batch B          sequences generated together (default 16)\n" SAMPLER_HELP "\n"

typedef struct {
    const sampler_prompts_t *prompts;
    bool ids; /* --ids */
} print_ctx_t;

static json_t *ids_json(const int32_t *ids, int64_t n) {
    json_t *a = json_array();
    for (int64_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(ids[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static int print_completion(void *ctx, const sampler_completion_t *c, err_t *err) {
    const print_ctx_t *p = ctx;
    const data_example_t *ex = &p->prompts->examples->ex[c->prompt];
    json_t *o = json_object();
    if (!o) return err_setf(err, "out of memory");
    const int bad =
        json_object_set_new(o, "prompt", json_stringn(ex->prompt, (size_t)ex->prompt_len)) |
        json_object_set_new(o, "k", json_integer(c->k)) |
        json_object_set_new(o, "response", json_stringn(c->response, c->response_len)) |
        json_object_set_new(o, "ended", json_boolean(c->ended)) |
        json_object_set_new(o, "tokens", json_integer(c->tokens)) |
        json_object_set_new(o, "logprob", cli_json_number(c->logprob)) |
        (p->ids ? json_object_set_new(o, "ids", ids_json(c->ids, c->tokens)) : 0);
    char *line = bad ? NULL : json_dumps(o, CLI_JSON_FLAGS);
    json_decref(o);
    if (!line) return err_setf(err, "out of memory");
    const int rc = puts(line) < 0 ? err_setf(err, "cannot write to stdout") : 0;
    free(line);
    return rc;
}

/* --db: a prompt's K completions are gathered, then written as one transaction. */
typedef struct {
    const sampler_prompts_t *prompts;
    store_t *store;
    const char *model;    /* the model directory, absolute when it resolves */
    const char *settings; /* the sampling settings as a JSON object */
    int64_t k;
    char **texts;         /* [k] this prompt's completions so far (owned copies) */
    size_t *lens;         /* [k] */
    int64_t added, there; /* prompts written, prompts the database already held */
} db_ctx_t;

static int store_completion(void *ctx, const sampler_completion_t *c, err_t *err) {
    db_ctx_t *d = ctx;
    char *t = malloc(c->response_len + 1);
    if (!t) return err_setf(err, "out of memory");
    memcpy(t, c->response, c->response_len);
    t[c->response_len] = '\0';
    free(d->texts[c->k]);
    d->texts[c->k] = t;
    d->lens[c->k] = c->response_len;
    if (c->k != d->k - 1) return 0;
    const data_example_t *ex = &d->prompts->examples->ex[c->prompt];
    const int r = store_prompt_add(d->store, ex->prompt, (size_t)ex->prompt_len,
                                   (const char *const *)d->texts, d->lens, (int)d->k, d->model,
                                   d->settings, NULL, NULL, err);
    if (r < 0) return -1;
    if (r)
        d->added++;
    else
        d->there++;
    return 0;
}

/* The settings a run is recorded (and recognised on a rerun) by: everything that changes what
 * is sampled. Caller frees. */
static char *settings_json(const sampler_opts_t *o) {
    json_t *j = json_pack("{s:I, s:o, s:o, s:I, s:I, s:I, s:s}", "k", (json_int_t)o->k,
                          "temperature", cli_json_number((double)o->gen.temperature), "top_p",
                          cli_json_number((double)o->gen.top_p), "top_k", (json_int_t)o->gen.top_k,
                          "max_new", (json_int_t)o->gen.max_new, "seed", (json_int_t)o->gen.seed,
                          "template", DATA_TEMPLATE_NAME);
    char *s = j ? json_dumps(j, CLI_JSON_FLAGS | JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* --db: samples every prompt into the database and prints the summary. */
static int run_db(const sampler_prompts_t *prompts, sampler_t *sampler,
                  const sampler_opts_t *o, const char *model_dir, const char *db, cli_log_t *log,
                  err_t *err) {
    int rc = -1;
    char *abs = realpath(model_dir, NULL);
    char *settings = settings_json(o);
    store_options_t so = store_options_default();
    so.create = true;
    store_t *store = NULL;
    db_ctx_t d = {.prompts = prompts, .model = abs ? abs : model_dir, .settings = settings,
                  .k = o->k};
    d.texts = calloc((size_t)o->k, sizeof *d.texts);
    d.lens = calloc((size_t)o->k, sizeof *d.lens);
    if (!settings || !d.texts || !d.lens) {
        err_setf(err, "out of memory");
        goto done;
    }
    if (!(d.store = store = store_open(db, &so, err))) goto done;
    sampler_stats_t stats;
    if (sampler_run(sampler, prompts, 0, store_completion, &d, &stats, err)) goto done;
    store_progress_t p;
    if (store_progress(store, 0, &p, err)) goto done;
    const double tps = stats.seconds > 0 ? (double)stats.tokens / stats.seconds : 0.0;
    printf("%s: %lld prompts added to %s, %lld already there; %lld completions (%lld tokens, "
           "%.0f tokens/s); the database holds %lld prompts and %lld rankings\n",
           PROG, (long long)d.added, db, (long long)d.there, (long long)(d.added * o->k),
           (long long)stats.tokens, tps, (long long)p.prompts, (long long)p.rankings);
    if (fflush(stdout)) {
        err_setf(err, "cannot write to stdout");
        goto done;
    }
    if (log && cli_log_event(log, err, "sample", "{s:I, s:I, s:I, s:I, s:I, s:f}", "prompts",
                             prompts->n, "added", d.added, "already", d.there, "sequences",
                             stats.sequences, "tokens", stats.tokens, "seconds", stats.seconds))
        goto done;
    rc = 0;
done:
    store_close(&store);
    for (int64_t i = 0; d.texts && i < o->k; i++) free(d.texts[i]);
    free(d.texts);
    free(d.lens);
    free(settings);
    free(abs);
    return rc;
}

/* Everything after option parsing; returns the exit code. */
static int run(const char *model_dir, const char *prompt, const char *prompts_path, bool ids,
               const sampler_opts_t *opts, const char *db, const char *log_path) {
    err_t err = ERR_INIT;
    cli_log_t *log = NULL;
    model_t m = {0};
    data_examples_t file = {0};
    data_example_t one = {.prompt = (char *)prompt,
                          .prompt_len = prompt ? (int64_t)strlen(prompt) : 0,
                          .response = NULL,
                          .line = 0};
    data_examples_t single = {.path = "--prompt", .n = 1, .ex = &one};
    sampler_prompts_t prompts = {0};
    sampler_t *sampler = NULL;
    int rc = 1;
    if (model_load(&m, model_dir, MODEL_HEAD_LM, &err)) goto done;
    if (prompts_path && data_prompts_load(&file, prompts_path, &err)) goto done;
    if (sampler_prompts_build(&prompts, &m, prompts_path ? &file : &single, &err)) goto done;
    if (log_path && !(log = cli_log_open(log_path, false, &err))) goto done;
    sampler_opts_t o = *opts; /* one run: a generator no larger than its sequences */
    if (o.batch > prompts.n * o.k) o.batch = prompts.n * o.k;
    if (!(sampler = sampler_new(&m, &o, prompts.max_len, &err))) goto done;
    if (db) {
        rc = run_db(&prompts, sampler, &o, model_dir, db, log, &err) ? 1 : 0;
        goto done;
    }
    print_ctx_t ctx = {&prompts, ids};
    sampler_stats_t stats;
    if (sampler_run(sampler, &prompts, 0, print_completion, &ctx, &stats, &err)) goto done;
    if (fflush(stdout)) {
        err_setf(&err, "cannot write to stdout");
        goto done;
    }
    if (log && cli_log_event(log, &err, "sample", "{s:I, s:I, s:I, s:f}", "prompts", prompts.n,
                             "sequences", stats.sequences, "tokens", stats.tokens, "seconds",
                             stats.seconds))
        goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "sft: error: %s\n", err.msg);
    cli_log_close(&log);
    sampler_destroy(&sampler);
    sampler_prompts_release(&prompts);
    data_examples_release(&file);
    model_release(&m);
    return rc;
}

enum { O_MODEL = CLI_OPTS_COMMAND, O_PROMPT, O_PROMPTS, O_IDS, O_DB };

int sft_cmd_sample(int argc, char **argv) {
    static const struct option longopts[] = {{"model", required_argument, NULL, O_MODEL},
                                             {"prompt", required_argument, NULL, O_PROMPT},
                                             {"prompts", required_argument, NULL, O_PROMPTS},
                                             {"ids", no_argument, NULL, O_IDS},
                                             {"db", required_argument, NULL, O_DB},
                                             SAMPLER_LONGOPTS,
                                             CLI_COMMON_LONGOPTS,
                                             {0}};
    sampler_opts_t opts = sampler_defaults();
    const char *model = NULL, *prompt = NULL, *prompts = NULL, *db = NULL;
    bool ids = false, temperature_given = false;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        temperature_given |= c == SAMPLER_OPT_TEMPERATURE;
        if (sampler_option(&opts, PROG, c, args.arg)) continue;
        switch (c) {
        case O_MODEL:
            model = args.arg;
            break;
        case O_PROMPT:
            prompt = args.arg;
            break;
        case O_PROMPTS:
            prompts = args.arg;
            break;
        case O_IDS:
            ids = true;
            break;
        case O_DB:
            db = args.arg;
            break;
        }
    }
    cli_args_end(&args, SAMPLE_HELP CLI_COMMON_HELP);
    cli_require(PROG, "--model", model);
    if (!prompt == !prompts) cli_usage_error(PROG, "give one of --prompt TEXT and --prompts FILE");
    if (db && !prompts) cli_usage_error(PROG, "--db takes the prompts from --prompts FILE");
    if (db && opts.k < 2)
        cli_usage_error(PROG, "--db needs --k K with K >= 2: a ranking compares completions");
    if (db && opts.k > STORE_K_MAX)
        cli_usage_error(PROG, "--k %lld: a prompt holds at most %d completions",
                        (long long)opts.k, STORE_K_MAX);
    if (db && ids) cli_usage_error(PROG, "--ids goes with the JSON output, not --db");
    if (db && !temperature_given) opts.gen.temperature = 1.0f; /* InstructGPT's, for diversity */
    opts.gen.seed = args.common.seed;
    opts.label = PROG;
    return run(model, prompt, prompts, ids, &opts, db, args.common.log_path);
}
