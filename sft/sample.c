/* sft/sample.c: `sft sample` — K completions per prompt as JSON lines on stdout, the quick way
 * to talk to a model. Every input is checked (model, tokenizer, template, each prompt's length)
 * before the first token is sampled. */
#include "cli.h"
#include "data.h"
#include "model.h"
#include "sampler.h"
#include "sft.h"
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "sft sample"

#define SAMPLE_HELP                                                                                \
    "usage: sft sample --model DIR (--prompt TEXT | --prompts FILE) [options]\n"                   \
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
    "options:\n"                                                                                   \
    "  --model DIR        model directory (config.json, model.safetensors, vocab.json,\n"          \
    "                     merges.txt)\n"                                                           \
    "  --prompt TEXT      one prompt\n"                                                            \
    "  --prompts FILE     JSONL, {\"prompt\": ...} per line (other fields are ignored)\n"          \
    "  --ids              also print each completion's token ids\n"                                \
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

/* Everything after option parsing; returns the exit code. */
static int run(const char *model_dir, const char *prompt, const char *prompts_path, bool ids,
               const sampler_opts_t *opts, const char *log_path) {
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

enum { O_MODEL = CLI_OPTS_COMMAND, O_PROMPT, O_PROMPTS, O_IDS };

int sft_cmd_sample(int argc, char **argv) {
    static const struct option longopts[] = {{"model", required_argument, NULL, O_MODEL},
                                             {"prompt", required_argument, NULL, O_PROMPT},
                                             {"prompts", required_argument, NULL, O_PROMPTS},
                                             {"ids", no_argument, NULL, O_IDS},
                                             SAMPLER_LONGOPTS,
                                             CLI_COMMON_LONGOPTS,
                                             {0}};
    sampler_opts_t opts = sampler_defaults();
    const char *model = NULL, *prompt = NULL, *prompts = NULL;
    bool ids = false;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
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
        }
    }
    cli_args_end(&args, SAMPLE_HELP CLI_COMMON_HELP);
    cli_require(PROG, "--model", model);
    if (!prompt == !prompts) cli_usage_error(PROG, "give one of --prompt TEXT and --prompts FILE");
    opts.gen.seed = args.common.seed;
    opts.label = PROG;
    return run(model, prompt, prompts, ids, &opts, args.common.log_path);
}
