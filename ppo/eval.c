/* ppo/eval.c: `ppo eval` — how good a policy is by the reward model, and whether it is better
 * than a baseline (the SFT model it started from), each figure with a 95% interval.
 *
 * Both models answer the same held-out prompts, K samples each, at the same sampling settings
 * and seed; sample k of prompt i is drawn from random stream i·K + k for either model (the
 * sampler's stream numbering), so the pair (policy k, baseline k) shares its randomness and a
 * policy compared with itself gives the same texts. Figures (the prompt is the unit, because
 * a prompt's K samples share its difficulty and are not independent):
 *   reward     mean over prompts of the mean score of its K samples, Student t interval;
 *   win rate   per prompt, (wins + ties/2) / K over the pairs (policy k, baseline k) judged by
 *              the reward model; mean over prompts with a Student t interval
 *              (stats_win_rate_prompts);
 *   KL         per policy sample y of prompt x, Σ_t [log π(y_t | x, y_<t) − log π_base(y_t | ...)]
 *              over the response tokens (end-of-text included), each log-prob a log softmax of
 *              logits / τ (τ = the sampling temperature; 1 when greedy), as ppo's rollouts
 *              record them. Its mean over samples is the usual sampled estimate of
 *              KL(π_τ ‖ π_base,τ) per response (exact in expectation when the samples come
 *              from π_τ itself: no top-k / top-p). Both log-probs come from full forwards of
 *              the sequence alone, so a policy compared with itself gives exactly 0 (the
 *              KV-cached sampler's own log-probs agree with a full forward only to ~1e-5) and
 *              no figure depends on --batch.
 *   gold       (--judge simulated) the world's gold judge (world_judge, noise 0) in place of
 *              the reward model, and the shares of its failure modes per model.
 * Everything is read and checked (prompts FILE:LINE, models, the reward server's presence)
 * before the first sample. */
#include "cli.h"
#include "data.h"
#include "fs.h"
#include "gpt.h"
#include "model.h"
#include "ppo_cmds.h"
#include "rm.h"
#include "sampler.h"
#include "stats.h"
#include "wire.h"
#include "world.h"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROG "ppo eval"

#define EVAL_K         2 /* samples per prompt and model: pairs per prompt for the win rate */
#define EVAL_OUT_FLAGS (JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) /* --out: exact scores */

// clang-format off
#define EVAL_HELP \
    "usage: ppo eval --policy DIR [--baseline DIR] (--reward EP[,EP...] | --reward-model DIR)\n" \
    "                --prompts FILE [--judge simulated] [--k K] [sampling options] [--json]\n" \
    "                [--out FILE]\n" \
    "\n" \
    "Samples K completions of each prompt ({\"prompt\"} per line) from the policy and scores them\n" \
    "with the reward model: the mean reward with its 95% interval (Student t over per-prompt\n" \
    "means), the response length in tokens and the share that ended with end-of-text. With\n" \
    "--baseline, the baseline answers the same prompts with the same random streams (sample k\n" \
    "of the policy is paired with sample k of the baseline), and it adds the baseline's mean\n" \
    "reward, the policy's win rate over the baseline by the reward model (ties count 1/2; 95%\n" \
    "interval a Student t over per-prompt win rates), and the mean KL of the policy to the\n" \
    "baseline on the policy's own samples: sum over response tokens of log pi - log pi_base, both\n" \
    "at the sampling temperature, in nats per response.\n" \
    "\n" \
    "options:\n" \
    "  --policy DIR       the model to evaluate (a language model directory)\n" \
    "  --baseline DIR     the model to compare with (the SFT model); it must read tokens as\n" \
    "                     the policy does\n" \
    "  --reward EP[,EP]   reward server endpoints (`reward serve`), e.g. tcp://127.0.0.1:5555\n" \
    "  --reward-model DIR score in this process with a reward model directory instead\n" \
    "  --prompts FILE     held-out prompts, JSONL {\"prompt\"}\n" \
    "  --judge simulated  also the embedded world's gold judge (noise 0): each model's gold\n" \
    "                     mean, the gold win rate, and the shares of the judge's failure modes\n" \
    "                     (empty, echo of the prompt, rude, rambling, off topic)\n" \
    "  --json             print the figures as one JSON object on stdout (the report goes to\n" \
    "                     stderr)\n" \
    "  --out FILE         per-prompt results as JSON lines: the prompt, each model's responses,\n" \
    "                     rewards, lengths, KL and gold scores (written atomically)\n" \
    "  --timeout S        --reward: seconds to wait for a reply before reconnecting and sending\n" \
    "                     again (default 2.5)\n" \
    "  --tries N          --reward: sends of one request before giving up (default 3)\n" \
    "  --batch B          sequences per generator run (default 16); the figures do not depend\n" \
    "                     on it\n" \
    "sampling options (default: the policy's run.json \"settings\" when it records them, as\n" \
    "ppo train does, else the sampler's defaults; the report says which were used):\n" \
    "  --k K              completions per prompt and model (default 2)\n" \
    "  --temperature X    sampling temperature; 0 = greedy (sampler default 0.7)\n" \
    "  --top-p P          nucleus sampling, P in (0, 1] (sampler default 1 = off)\n" \
    "  --top-k K          only the K most likely tokens (sampler default 0 = off)\n" \
    "  --max-new N        at most N new tokens per completion (sampler default 64)\n" \
    "\n"
// clang-format on

enum {
    O_POLICY = CLI_OPTS_COMMAND,
    O_BASELINE,
    O_REWARD,
    O_REWARD_MODEL,
    O_PROMPTS,
    O_JUDGE,
    O_JSON,
    O_OUT,
    O_TIMEOUT,
    O_TRIES,
};

/* The sampling settings a policy's run.json may record, and where each value came from. */
enum { SET_TEMPERATURE, SET_TOP_P, SET_TOP_K, SET_MAX_NEW, SET_N };
static const char *const set_key[SET_N] = {"temperature", "top_p", "top_k", "max_new"};
typedef enum { FROM_DEFAULT, FROM_RUN, FROM_FLAG } from_t;
static const char *const from_name[] = {"default", "run.json", "flag"};

typedef struct {
    const char *policy, *baseline, *reward, *reward_model, *prompts, *judge, *out;
    bool json;
    int timeout_ms, tries; /* --reward: the client's; 0 = wire.h's defaults */
    sampler_opts_t sampling;
    from_t from[SET_N];  /* where each sampling setting came from */
    char run_path[4096]; /* policy/run.json (when read) */
    const char *log_path;
} eval_args_t;

/* One completion, kept for the figures and --out. */
typedef struct {
    char *response;        /* decoded (model_decode_response), NUL-terminated */
    size_t response_len;   /* its bytes (it may hold NUL bytes) */
    int32_t *ids;          /* [prompt_tokens + tokens]: the templated prompt, then the response */
    int64_t prompt_tokens; /* tokens of the templated prompt */
    int64_t tokens;        /* new tokens, end-of-text included when ended */
    bool ended;            /* sampled end-of-text */
    double reward;         /* the reward model's score */
    double kl;             /* policy samples with a baseline: Σ_t log π − log π_base (nats) */
    world_judgement_t judge; /* --judge simulated: the gold judgement (judge.score) */
} sample_t;

/* One model's part: the model and its samples, sample k of prompt i at s[i·K + k]. */
typedef struct {
    const char *name; /* "policy", "baseline" */
    const char *dir;
    model_t m;
    int64_t K;
    sampler_prompts_t sp; /* the prompts in the template, tokenized for this model */
    sample_t *s;
    sampler_stats_t stats;
} side_t;

/* ---- Sampling settings ------------------------------------------------------------------- */

/* One setting from run.json's "settings" object (absent: unchanged). Integers for top_k and
 * max_new, and every value within the range its flag accepts. */
static int setting_read(eval_args_t *a, const json_t *settings, int i, err_t *err) {
    /* the ranges of --temperature, --top-p, --top-k, --max-new (sampler_option) */
    static const double lo[SET_N] = {0.0, 1e-6, 0.0, 1.0};
    static const double hi[SET_N] = {1000.0, 1.0, INT32_MAX, 1 << 20};
    const json_t *v = json_object_get(settings, set_key[i]);
    if (!v || a->from[i] == FROM_FLAG) return 0;
    const double x = json_is_number(v) ? json_number_value(v) : (double)NAN;
    if (!(x >= lo[i] && x <= hi[i]) || (i >= SET_TOP_K && x != floor(x)))
        return err_setf(err, "%s: settings.%s: expected a%s number in [%g, %g]", a->run_path,
                        set_key[i], i >= SET_TOP_K ? "n integer" : "", lo[i], hi[i]);
    gen_opts_t *g = &a->sampling.gen;
    if (i == SET_TEMPERATURE) g->temperature = (float)x;
    if (i == SET_TOP_P) g->top_p = (float)x;
    if (i == SET_TOP_K) g->top_k = (int64_t)x;
    if (i == SET_MAX_NEW) g->max_new = (int64_t)x;
    a->from[i] = FROM_RUN;
    return 0;
}

/* The sampling settings of the policy's training rollouts: POLICY/run.json's "settings"
 * (temperature, top_p, top_k, max_new), for each one not given as a flag. No run.json, or
 * one without them (an SFT model), leaves the sampler's defaults. */
static int settings_from_run(eval_args_t *a, err_t *err) {
    struct stat st;
    if (snprintf(a->run_path, sizeof a->run_path, "%s/run.json", a->policy) >=
        (int)sizeof a->run_path)
        return err_setf(err, "%s: path too long", a->policy);
    if (stat(a->run_path, &st) && errno == ENOENT) return 0;
    json_error_t je;
    json_t *doc = json_load_file(a->run_path, 0, &je);
    if (!doc) return err_setf(err, "%s:%d: invalid JSON: %s", a->run_path, je.line, je.text);
    const json_t *settings = json_object_get(doc, "settings");
    int rc = 0;
    if (settings && !json_is_object(settings))
        rc = err_setf(err, "%s: \"settings\" is not an object", a->run_path);
    for (int i = 0; !rc && settings && i < SET_N; i++) rc = setting_read(a, settings, i, err);
    json_decref(doc);
    return rc;
}

/* Appends to buf (cap bytes) at *k, keeping it NUL-terminated when it runs out. */
static void append(char *buf, size_t cap, size_t *k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *k, const char *fmt, ...) {
    if (*k >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf + *k, cap - *k, fmt, ap);
    va_end(ap);
    *k = n < 0 ? cap : *k + (size_t)n;
}

/* "temperature 0.7, top-p 1, top-k 0, max-new 64 (policy/run.json: temperature, max_new;
 * flags: top_k; sampler defaults: top_p)": the settings and where each came from. */
static void settings_describe(const eval_args_t *a, char *buf, size_t cap) {
    static const from_t order[] = {FROM_RUN, FROM_FLAG, FROM_DEFAULT};
    const char *what[] = {
        [FROM_DEFAULT] = "sampler defaults", [FROM_RUN] = a->run_path, [FROM_FLAG] = "flags"};
    const gen_opts_t *g = &a->sampling.gen;
    size_t k = 0;
    append(buf, cap, &k, "temperature %g, top-p %g, top-k %" PRId64 ", max-new %" PRId64 " (",
           (double)g->temperature, (double)g->top_p, g->top_k, g->max_new);
    const char *sep = "";
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++) {
        bool listed = false;
        for (int i = 0; i < SET_N; i++) {
            if (a->from[i] != order[o]) continue;
            if (listed)
                append(buf, cap, &k, ", %s", set_key[i]);
            else
                append(buf, cap, &k, "%s%s: %s", sep, what[order[o]], set_key[i]);
            listed = true;
            sep = "; ";
        }
    }
    append(buf, cap, &k, ")");
}

/* ---- The reward model -------------------------------------------------------------------- */

/* Scores from a reward server (--reward) or from a reward model in this process. */
typedef struct {
    const char *name;      /* the endpoint list or the model directory */
    wire_client_t *client; /* --reward */
    json_t *info;          /* --reward: the server's info reply */
    model_t model;         /* --reward-model */
    rm_t *rm;
} scorer_t;

static void warn_retry(void *ctx, const char *msg) {
    cli_warn(ctx, "%s", msg);
}

/* Opens the scorer. A server is asked for its info at once, so one that is not there stops
 * the command before any sampling ("no reply from tcp://127.0.0.1:5555 after 3 tries (2.5 s
 * each)"). */
static int scorer_open(scorer_t *sc, const eval_args_t *a, err_t *err) {
    if (a->reward_model) {
        sc->name = a->reward_model;
        if (model_load(&sc->model, a->reward_model, MODEL_HEAD_REWARD, err)) return -1;
        return (sc->rm = rm_new(&sc->model, 0, err)) ? 0 : -1;
    }
    sc->name = a->reward;
    const wire_client_opts_t o = {.endpoints = a->reward,
                                  .timeout_ms = a->timeout_ms,
                                  .tries = a->tries,
                                  .warn = warn_retry,
                                  .warn_ctx = (void *)"ppo"};
    if (!(sc->client = wire_client_new(&o, err))) return -1;
    return (sc->info = wire_info(sc->client, err)) ? 0 : -1;
}

static void scorer_close(scorer_t *sc) {
    rm_destroy(&sc->rm);
    model_release(&sc->model);
    json_decref(sc->info);
    wire_client_destroy(&sc->client);
}

/* What scored: "runs/rm" or "tcp://127.0.0.1:5555 (serving runs/rm)". */
static void scorer_describe(const scorer_t *sc, char *buf, size_t cap) {
    const char *model = sc->info ? json_string_value(json_object_get(sc->info, "model")) : NULL;
    if (model)
        snprintf(buf, cap, "%s (serving %s)", sc->name, model);
    else
        snprintf(buf, cap, "%s", sc->name);
}

/* rewards of side's n·K samples: sample s answers prompt s / K. */
static int scorer_score(scorer_t *sc, const data_examples_t *p, side_t *sd, err_t *err) {
    const int64_t n = p->n * sd->K;
    double *scores = malloc(((size_t)n + 1) * sizeof *scores);
    wire_item_t *items = malloc(((size_t)n + 1) * sizeof *items);
    const char **texts = malloc(2 * ((size_t)n + 1) * sizeof *texts);
    size_t *lens = malloc(2 * ((size_t)n + 1) * sizeof *lens);
    int rc = -1;
    if (!scores || !items || !texts || !lens) {
        err_setf(err, "out of memory");
        goto done;
    }
    for (int64_t s = 0; s < n; s++) {
        const data_example_t *ex = &p->ex[s / sd->K];
        items[s] = (wire_item_t){ex->prompt, (size_t)ex->prompt_len, sd->s[s].response,
                                 sd->s[s].response_len};
        texts[s] = ex->prompt, lens[s] = (size_t)ex->prompt_len;
        texts[n + s] = sd->s[s].response, lens[n + s] = sd->s[s].response_len;
    }
    rc = sc->rm ? rm_score(sc->rm, texts, lens, texts + n, lens + n, n, scores, err)
                : wire_score(sc->client, items, n, scores, err);
    if (rc) {
        rc = -1;
        err_prefixf(err, "scoring the %s's samples with %s: ", sd->name, sc->name);
        goto done;
    }
    for (int64_t s = 0; s < n; s++) sd->s[s].reward = scores[s];
done:
    free(lens);
    free(texts);
    free(items);
    free(scores);
    return rc;
}

/* ---- Sampling ---------------------------------------------------------------------------- */

static int collect(void *ctx, const sampler_completion_t *c, err_t *err) {
    side_t *sd = ctx;
    sample_t *s = &sd->s[c->prompt * sd->K + c->k];
    const int64_t len = c->prompt_tokens + c->tokens;
    s->response = malloc(c->response_len + 1);
    s->ids = malloc((size_t)len * sizeof *s->ids);
    if (!s->response || !s->ids) return err_setf(err, "out of memory");
    memcpy(s->response, c->response, c->response_len);
    s->response[c->response_len] = '\0';
    s->response_len = c->response_len;
    memcpy(s->ids, c->prompt_ids, (size_t)c->prompt_tokens * sizeof *s->ids);
    memcpy(s->ids + c->prompt_tokens, c->ids, (size_t)c->tokens * sizeof *s->ids);
    s->prompt_tokens = c->prompt_tokens;
    s->tokens = c->tokens;
    s->ended = c->ended;
    return 0;
}

/* K samples of every prompt from side's model, from streams 0 .. n·K − 1 of the seed. */
static int side_sample(side_t *sd, const sampler_prompts_t *sp, const sampler_opts_t *opts,
                       err_t *err) {
    char label[64];
    snprintf(label, sizeof label, "%s (%s)", PROG, sd->name);
    sampler_opts_t o = *opts; /* one run: a generator no larger than its sequences */
    if (o.batch > sp->n * o.k) o.batch = sp->n * o.k;
    o.label = label;
    sampler_t *smp = sampler_new(&sd->m, &o, sp->max_len, err);
    if (!smp) return -1;
    const int rc = sampler_run(smp, sp, 0, collect, sd, &sd->stats, err);
    sampler_destroy(&smp);
    return rc;
}

static void side_release(side_t *sd, int64_t n) {
    for (int64_t s = 0; sd->s && s < n * sd->K; s++) {
        free(sd->s[s].response);
        free(sd->s[s].ids);
    }
    free(sd->s);
    sd->s = NULL;
    sampler_prompts_release(&sd->sp);
    model_release(&sd->m);
}

/* ---- KL of the policy to the baseline ---------------------------------------------------- */

/* Sample s's targets over its own length: the response's tokens (the end-of-text included),
 * each at the position that predicts it; -1 over the prompt. */
static void kl_targets(const sample_t *s, int32_t *targets) {
    const int64_t len = s->prompt_tokens + s->tokens;
    for (int64_t t = 0; t < len; t++)
        targets[t] = t + 1 < len && t + 1 >= s->prompt_tokens ? s->ids[t + 1] : -1;
}

/* KL of every policy sample: a full forward of each model over the sample's prompt +
 * response at temperature tau, Σ_t (log π − log π_base) over the response tokens. Each
 * sequence is forwarded alone, at its own length, as rm_score does: OpenBLAS gives a row
 * different bits at different places in a batch (common/rm.h), and a figure that moved in its
 * seventh digit with --batch could not be checked against a rerun. Equal models give exactly
 * 0, since both forwards are the same computation. */
static int kl_run(side_t *pol, side_t *base, int64_t n_prompts, float tau, err_t *err) {
    const int64_t n = n_prompts * pol->K;
    int64_t T_max = 1;
    for (int64_t s = 0; s < n; s++) {
        const int64_t len = pol->s[s].prompt_tokens + pol->s[s].tokens;
        T_max = len > T_max ? len : T_max;
    }
    int32_t *targets = malloc((size_t)T_max * sizeof *targets);
    float *lp = malloc((size_t)T_max * sizeof *lp), *lp_base = malloc((size_t)T_max * sizeof *lp);
    int rc = -1;
    if (!targets || !lp || !lp_base) {
        err_setf(err, "out of memory");
        goto done;
    }
    if (gpt_alloc(pol->m.model, 1, T_max, false, err) ||
        gpt_alloc(base->m.model, 1, T_max, false, err))
        goto done;
    cli_progress_t progress;
    cli_progress_init(&progress, stderr, PROG " (KL)", 0, n);
    for (int64_t s = 0; s < n; s++) {
        sample_t *x = &pol->s[s];
        const int64_t T = x->prompt_tokens + x->tokens;
        kl_targets(x, targets);
        gpt_forward(pol->m.model, x->ids, 1, T); /* (1, T) -> logits (1, T, V) */
        gpt_lm_logprobs(pol->m.model, targets, tau, lp);
        gpt_forward(base->m.model, x->ids, 1, T);
        gpt_lm_logprobs(base->m.model, targets, tau, lp_base);
        x->kl = 0.0; /* the prompt's positions give 0 in both */
        for (int64_t t = 0; t < T; t++) x->kl += (double)lp[t] - (double)lp_base[t];
        cli_progress_update(&progress, s + 1, NAN, T, NULL);
    }
    cli_progress_finish(&progress, NULL);
    rc = 0;
done:
    free(lp_base);
    free(lp);
    free(targets);
    return rc;
}

/* ---- Figures ----------------------------------------------------------------------------- */

/* The gold judge's failure modes (world_judgement_t), as shares of a model's samples. */
enum { FAIL_EMPTY, FAIL_ECHO, FAIL_RUDE, FAIL_RAMBLING, FAIL_OFFTOPIC, FAIL_N };
static const char *const fail_name[FAIL_N] = {"empty", "echo", "rude", "rambling", "offtopic"};

/* empty: no letter or digit (gold −1); echo: repeats the prompt verbatim; rude: a rude phrase;
 * rambling: longer than the family's limit or repeating word trigrams; offtopic: a non-empty
 * reply that does not mention what the prompt is about. */
static bool fails(const world_judgement_t *j, int mode) {
    switch (mode) {
    case FAIL_EMPTY:
        return j->words == 0;
    case FAIL_ECHO:
        return j->echo;
    case FAIL_RUDE:
        return j->rude > 0;
    case FAIL_RAMBLING:
        return j->length_penalty > 0 || j->repeat_penalty > 0;
    default:
        return j->words > 0 && !j->on_topic;
    }
}

typedef struct {
    stats_ci_t reward, gold; /* over per-prompt means */
    double tokens, ended;    /* per sample: mean new tokens, share ended */
    double fail[FAIL_N];     /* per sample: shares of the failure modes (--judge) */
} side_fig_t;

typedef struct {
    int64_t n, K;
    side_fig_t pol, base;
    stats_ci_t win, gold_win, kl;
    int64_t wins, ties, losses; /* pairs, by the reward model */
    int64_t gold_wins, gold_ties, gold_losses;
} figures_t;

static double reward_of(const sample_t *s) {
    return s->reward;
}
static double gold_of(const sample_t *s) {
    return s->judge.score;
}
static double kl_of(const sample_t *s) {
    return s->kl;
}

/* Mean over prompts of the mean of x over the prompt's K samples (scratch: n doubles). */
static stats_ci_t prompt_mean(const side_t *sd, int64_t n, double (*x)(const sample_t *),
                              double *scratch) {
    for (int64_t i = 0; i < n; i++) {
        double sum = 0.0;
        for (int64_t k = 0; k < sd->K; k++) sum += x(&sd->s[i * sd->K + k]);
        scratch[i] = sum / (double)sd->K;
    }
    return stats_mean(scratch, n);
}

/* The win rate of a over b by x, pair (a k, b k) per prompt (scratch: 3n int64). */
static stats_ci_t win_rate(const side_t *a, const side_t *b, int64_t n,
                           double (*x)(const sample_t *), int64_t *scratch, int64_t *wtl) {
    int64_t *wins = scratch, *ties = scratch + n, *games = scratch + 2 * n;
    wtl[0] = wtl[1] = wtl[2] = 0;
    for (int64_t i = 0; i < n; i++) {
        wins[i] = ties[i] = 0;
        games[i] = a->K;
        for (int64_t k = 0; k < a->K; k++) {
            const double xa = x(&a->s[i * a->K + k]), xb = x(&b->s[i * a->K + k]);
            wins[i] += xa > xb;
            ties[i] += xa == xb;
        }
        wtl[0] += wins[i], wtl[1] += ties[i], wtl[2] += a->K - wins[i] - ties[i];
    }
    return stats_win_rate_prompts(wins, ties, games, n);
}

static void side_figures(const side_t *sd, int64_t n, bool judge, double *scratch, side_fig_t *f) {
    const double samples = (double)(n * sd->K);
    int64_t tokens = 0, ended = 0, fail[FAIL_N] = {0};
    for (int64_t s = 0; s < n * sd->K; s++) {
        tokens += sd->s[s].tokens;
        ended += sd->s[s].ended;
        for (int m = 0; judge && m < FAIL_N; m++) fail[m] += fails(&sd->s[s].judge, m);
    }
    f->reward = prompt_mean(sd, n, reward_of, scratch);
    f->gold = judge ? prompt_mean(sd, n, gold_of, scratch)
                    : (stats_ci_t){0, (double)NAN, (double)NAN, (double)NAN};
    f->tokens = (double)tokens / samples;
    f->ended = (double)ended / samples;
    for (int m = 0; m < FAIL_N; m++) f->fail[m] = judge ? (double)fail[m] / samples : (double)NAN;
}

static int figures_compute(const side_t *pol, const side_t *base, int64_t n, bool judge,
                           figures_t *f, err_t *err) {
    double *scratch = malloc(((size_t)n + 1) * sizeof *scratch);
    int64_t *iscratch = malloc(3 * ((size_t)n + 1) * sizeof *iscratch);
    if (!scratch || !iscratch) {
        free(scratch);
        free(iscratch);
        return err_setf(err, "out of memory");
    }
    *f = (figures_t){.n = n, .K = pol->K};
    side_figures(pol, n, judge, scratch, &f->pol);
    if (base) {
        int64_t wtl[3];
        side_figures(base, n, judge, scratch, &f->base);
        f->win = win_rate(pol, base, n, reward_of, iscratch, wtl);
        f->wins = wtl[0], f->ties = wtl[1], f->losses = wtl[2];
        f->kl = prompt_mean(pol, n, kl_of, scratch);
        if (judge) {
            f->gold_win = win_rate(pol, base, n, gold_of, iscratch, wtl);
            f->gold_wins = wtl[0], f->gold_ties = wtl[1], f->gold_losses = wtl[2];
        }
    }
    free(iscratch);
    free(scratch);
    return 0;
}

/* ---- The report -------------------------------------------------------------------------- */

/* "0.4123 [0.3511, 0.4735]" (or "0.4123 (one prompt: no interval)") into buf. */
static const char *ci_text(const stats_ci_t *c, char *buf, size_t cap) {
    if (isfinite(c->lo))
        snprintf(buf, cap, "%.4f [%.4f, %.4f]", c->mean, c->lo, c->hi);
    else
        snprintf(buf, cap, "%.4f (no interval)", c->mean);
    return buf;
}

static void report_row_ci(FILE *f, const char *name, const stats_ci_t *a, const stats_ci_t *b) {
    char x[64], y[64];
    fprintf(f, "  %-16s %-28s %s\n", name, ci_text(a, x, sizeof x),
            b ? ci_text(b, y, sizeof y) : "");
}

static void report_sides(FILE *f, const figures_t *fg, bool base, bool judge) {
    const side_fig_t *p = &fg->pol, *b = base ? &fg->base : NULL;
    fprintf(f, "  %-16s %-28s %s\n", "", "policy", base ? "baseline" : "");
    report_row_ci(f, "reward", &p->reward, b ? &b->reward : NULL);
    if (judge) report_row_ci(f, "gold", &p->gold, b ? &b->gold : NULL);
    char x[32] = "", y[32] = "";
    snprintf(x, sizeof x, "%.1f", p->tokens);
    if (b) snprintf(y, sizeof y, "%.1f", b->tokens);
    fprintf(f, "  %-16s %-28s %s\n", "tokens/response", x, y);
    snprintf(x, sizeof x, "%.1f%%", 100.0 * p->ended);
    if (b) snprintf(y, sizeof y, "%.1f%%", 100.0 * b->ended);
    fprintf(f, "  %-16s %-28s %s\n", "ended", x, y);
    for (int m = 0; judge && m < FAIL_N; m++) {
        char name[32];
        snprintf(name, sizeof name, "%s (gold)", fail_name[m]);
        snprintf(x, sizeof x, "%.1f%%", 100.0 * p->fail[m]);
        if (b) snprintf(y, sizeof y, "%.1f%%", 100.0 * b->fail[m]);
        fprintf(f, "  %-16s %-28s %s\n", name, x, y);
    }
}

static void report(FILE *f, const eval_args_t *a, const scorer_t *sc, const figures_t *fg) {
    const bool base = a->baseline, judge = a->judge;
    char buf[1024], c[64];
    scorer_describe(sc, buf, sizeof buf);
    fprintf(f, "%s: %s: %" PRId64 " prompts x %" PRId64 " samples per model; reward model %s\n",
            PROG, a->prompts, fg->n, fg->K, buf);
    settings_describe(a, buf, sizeof buf);
    fprintf(f, "%s: sampling at %s, seed %" PRIu64 "\n", PROG, buf, a->sampling.gen.seed);
    report_sides(f, fg, base, judge);
    if (!base) return;
    fprintf(f, "  win rate of the policy over the baseline (ties count 1/2, 95%% interval over "
               "prompts):\n");
    fprintf(f, "    reward model   %s  (%" PRId64 " wins, %" PRId64 " ties, %" PRId64 " losses)\n",
            ci_text(&fg->win, c, sizeof c), fg->wins, fg->ties, fg->losses);
    if (judge)
        fprintf(f,
                "    gold judge     %s  (%" PRId64 " wins, %" PRId64 " ties, %" PRId64 " losses)\n",
                ci_text(&fg->gold_win, c, sizeof c), fg->gold_wins, fg->gold_ties, fg->gold_losses);
    fprintf(f, "  KL(policy || baseline) on the policy's samples: %s nats per response\n",
            ci_text(&fg->kl, c, sizeof c));
}

/* ---- JSON -------------------------------------------------------------------------------- */

/* key: mean, key_ci: [lo, hi] (null when there is no interval). */
static void json_ci(json_t *o, const char *key, const stats_ci_t *c) {
    char k[64];
    snprintf(k, sizeof k, "%s_ci", key);
    json_object_set_new(o, key, cli_json_number(c->mean));
    json_object_set_new(o, k, isfinite(c->lo) ? json_pack("[f, f]", c->lo, c->hi) : json_null());
}

static void json_side(json_t *o, const char *name, const side_fig_t *f, bool judge) {
    char k[64];
    snprintf(k, sizeof k, "%s_reward", name);
    json_ci(o, k, &f->reward);
    snprintf(k, sizeof k, "%s_tokens", name);
    json_object_set_new(o, k, json_real(f->tokens));
    snprintf(k, sizeof k, "%s_ended", name);
    json_object_set_new(o, k, json_real(f->ended));
    if (!judge) return;
    snprintf(k, sizeof k, "gold_%s", name);
    json_ci(o, k, &f->gold);
    json_t *fail = json_object();
    for (int m = 0; m < FAIL_N; m++) json_object_set_new(fail, fail_name[m], json_real(f->fail[m]));
    snprintf(k, sizeof k, "%s_failures", name);
    json_object_set_new(o, k, fail);
}

static json_t *json_sampling(const eval_args_t *a) {
    const gen_opts_t *g = &a->sampling.gen;
    json_t *from = json_object();
    for (int i = 0; i < SET_N; i++)
        json_object_set_new(from, set_key[i], json_string(from_name[a->from[i]]));
    return json_pack("{s:o, s:o, s:I, s:I, s:I, s:o}", "temperature",
                     cli_json_float(g->temperature), "top_p", cli_json_float(g->top_p), "top_k",
                     (json_int_t)g->top_k, "max_new", (json_int_t)g->max_new, "seed",
                     (json_int_t)g->seed, "from", from);
}

/* The figures as one object (caller owns it). */
static json_t *json_figures(const eval_args_t *a, const figures_t *fg) {
    const bool judge = a->judge;
    json_t *o = json_object();
    json_object_set_new(o, "policy", json_string(a->policy));
    if (a->baseline) json_object_set_new(o, "baseline", json_string(a->baseline));
    json_object_set_new(o, a->reward ? "reward" : "reward_model",
                        json_string(a->reward ? a->reward : a->reward_model));
    json_object_set_new(o, "prompts", json_string(a->prompts));
    json_object_set_new(o, "n", json_integer(fg->n));
    json_object_set_new(o, "k", json_integer(fg->K));
    json_object_set_new(o, "sampling", json_sampling(a));
    json_side(o, "policy", &fg->pol, judge);
    if (!a->baseline) return o;
    json_side(o, "baseline", &fg->base, judge);
    json_ci(o, "win_rate", &fg->win);
    json_object_set_new(o, "wins", json_integer(fg->wins));
    json_object_set_new(o, "ties", json_integer(fg->ties));
    json_object_set_new(o, "losses", json_integer(fg->losses));
    json_ci(o, "kl", &fg->kl);
    if (judge) {
        json_ci(o, "gold_win_rate", &fg->gold_win);
        json_object_set_new(o, "gold_wins", json_integer(fg->gold_wins));
        json_object_set_new(o, "gold_ties", json_integer(fg->gold_ties));
        json_object_set_new(o, "gold_losses", json_integer(fg->gold_losses));
    }
    return o;
}

/* One model's samples of prompt i: [{"k", "response", "reward", "tokens", "ended", ...}]. */
static json_t *json_samples(const side_t *sd, int64_t i, bool kl, bool judge) {
    json_t *arr = json_array();
    for (int64_t k = 0; k < sd->K; k++) {
        const sample_t *s = &sd->s[i * sd->K + k];
        json_t *o = json_pack("{s:I, s:s%, s:o, s:I, s:b}", "k", (json_int_t)k, "response",
                              s->response, s->response_len, "reward", cli_json_number(s->reward),
                              "tokens", (json_int_t)s->tokens, "ended", s->ended);
        if (kl) json_object_set_new(o, "kl", cli_json_number(s->kl));
        if (judge) json_object_set_new(o, "gold", json_real(s->judge.score));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* --out: one line per prompt, reals with 17 digits (the scores read back bit for bit, so the
 * win rate can be recomputed from the file exactly). */
static int write_per_prompt(const eval_args_t *a, const data_examples_t *p, const side_t *pol,
                            const side_t *base, err_t *err) {
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    int rc = -1;
    for (int64_t i = 0; buf && i < p->n; i++) {
        json_t *o = json_pack("{s:s%}", "prompt", p->ex[i].prompt, (size_t)p->ex[i].prompt_len);
        json_object_set_new(o, "policy", json_samples(pol, i, base, a->judge));
        if (base) json_object_set_new(o, "baseline", json_samples(base, i, false, a->judge));
        char *line = json_dumps(o, EVAL_OUT_FLAGS);
        json_decref(o);
        const size_t n = line ? strlen(line) : 0;
        while (line && len + n + 2 > cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger) break;
            buf = bigger;
        }
        if (!line || len + n + 2 > cap) {
            free(line);
            goto done;
        }
        memcpy(buf + len, line, n);
        buf[len + n] = '\n';
        len += n + 1;
        free(line);
    }
    if (buf) rc = fs_write_atomic(a->out, buf, len, err);
done:
    if (rc && !err_isset(err)) err_setf(err, "out of memory");
    free(buf);
    return rc;
}

/* ---- The command ------------------------------------------------------------------------- */

typedef struct {
    data_examples_t prompts;
    side_t pol, base;
    scorer_t scorer;
    cli_log_t *log;
} eval_t;

/* The baseline reads every policy sample for the KL, so its context must hold them. */
static int check_context(const side_t *pol, const side_t *base, err_t *err) {
    const int64_t cp = pol->m.model->cfg.n_positions, cb = base->m.model->cfg.n_positions;
    if (cb < cp)
        return err_setf(err,
                        "%s: context %" PRId64 " is shorter than the policy's (%" PRId64
                        "): the KL needs the baseline to read every policy sample",
                        base->dir, cb, cp);
    return 0;
}

/* Loads and checks everything the run reads: prompts (for both models), models, the reward
 * model or server. */
static int eval_open(eval_t *e, eval_args_t *a, err_t *err) {
    e->pol = (side_t){.name = "policy", .dir = a->policy, .K = a->sampling.k};
    e->base = (side_t){.name = "baseline", .dir = a->baseline, .K = a->sampling.k};
    if (data_prompts_load(&e->prompts, a->prompts, err) ||
        model_load(&e->pol.m, a->policy, MODEL_HEAD_LM, err) || settings_from_run(a, err) ||
        sampler_prompts_build(&e->pol.sp, &e->pol.m, &e->prompts, err))
        return -1;
    if (a->baseline && (model_load(&e->base.m, a->baseline, MODEL_HEAD_LM, err) ||
                        model_check_compatible(&e->pol.m, &e->base.m, err) ||
                        check_context(&e->pol, &e->base, err) ||
                        sampler_prompts_build(&e->base.sp, &e->base.m, &e->prompts, err)))
        return -1;
    if (a->log_path && !(e->log = cli_log_open(a->log_path, false, err))) return -1;
    return scorer_open(&e->scorer, a, err);
}

static void eval_close(eval_t *e) {
    cli_log_close(&e->log);
    scorer_close(&e->scorer);
    side_release(&e->base, e->prompts.n);
    side_release(&e->pol, e->prompts.n);
    data_examples_release(&e->prompts);
}

/* Samples, scores (and judges) one model's answers. */
static int side_run(side_t *sd, eval_t *e, const eval_args_t *a, err_t *err) {
    const int64_t n = e->prompts.n;
    if (!(sd->s = calloc((size_t)(n * sd->K) + 1, sizeof *sd->s)))
        return err_setf(err, "out of memory");
    if (side_sample(sd, &sd->sp, &a->sampling, err) ||
        scorer_score(&e->scorer, &e->prompts, sd, err))
        return -1;
    for (int64_t s = 0; a->judge && s < n * sd->K; s++)
        world_judge(e->prompts.ex[s / sd->K].prompt, sd->s[s].response, &sd->s[s].judge);
    return 0;
}

static int eval_run(eval_args_t *a, err_t *err) {
    eval_t e = {0};
    json_t *doc = NULL;
    figures_t fg;
    int rc = -1;
    if (eval_open(&e, a, err) || side_run(&e.pol, &e, a, err)) goto done;
    if (a->baseline) {
        const float t = a->sampling.gen.temperature, tau = t > 0.0f ? t : 1.0f;
        if (side_run(&e.base, &e, a, err) || kl_run(&e.pol, &e.base, e.prompts.n, tau, err))
            goto done;
    }
    if (figures_compute(&e.pol, a->baseline ? &e.base : NULL, e.prompts.n, a->judge, &fg, err))
        goto done;
    report(a->json ? stderr : stdout, a, &e.scorer, &fg);
    if (!(doc = json_figures(a, &fg))) {
        err_setf(err, "out of memory");
        goto done;
    }
    if (cli_log_json(e.log, "eval", doc, err)) goto done;
    if (a->out && write_per_prompt(a, &e.prompts, &e.pol, a->baseline ? &e.base : NULL, err))
        goto done;
    if (a->json &&
        (json_dumpf(doc, stdout, CLI_JSON_FLAGS) || fputc('\n', stdout) == EOF || fflush(stdout))) {
        err_setf(err, "cannot write to stdout");
        goto done;
    }
    rc = 0;
done:
    json_decref(doc);
    eval_close(&e);
    return rc;
}

/* Usage errors: what is required, what goes together. */
static void check_args(const eval_args_t *a, bool wire_given) {
    cli_require(PROG, "--policy", a->policy);
    cli_require(PROG, "--prompts", a->prompts);
    if (!!a->reward + !!a->reward_model != 1)
        cli_usage_error(PROG, "give one of --reward (a reward server) and --reward-model (a "
                              "reward model directory, scored in this process)");
    if (a->reward && !a->reward[0]) cli_usage_error(PROG, "--reward: expected an endpoint");
    if (wire_given && !a->reward) cli_usage_error(PROG, "--timeout and --tries go with --reward");
    if (a->judge && strcmp(a->judge, "simulated"))
        cli_usage_error(PROG,
                        "--judge: '%s' is not a judge; the one judge is 'simulated' (the "
                        "embedded world's gold score)",
                        a->judge);
    if (a->out && !a->out[0]) cli_usage_error(PROG, "--out: expected a file name");
}

/* The sampling settings given as flags (they win over the policy's run.json). */
static void note_flag(eval_args_t *a, int c) {
    if (c == SAMPLER_OPT_TEMPERATURE) a->from[SET_TEMPERATURE] = FROM_FLAG;
    if (c == SAMPLER_OPT_TOP_P) a->from[SET_TOP_P] = FROM_FLAG;
    if (c == SAMPLER_OPT_TOP_K) a->from[SET_TOP_K] = FROM_FLAG;
    if (c == SAMPLER_OPT_MAX_NEW) a->from[SET_MAX_NEW] = FROM_FLAG;
}

/* Options of the command's own range; wire_given notes --timeout / --tries. */
static void own_option(eval_args_t *a, int c, const char *arg, bool *wire_given) {
    switch (c) {
    case O_POLICY:
        a->policy = arg;
        break;
    case O_BASELINE:
        a->baseline = arg;
        break;
    case O_REWARD:
        a->reward = arg;
        break;
    case O_REWARD_MODEL:
        a->reward_model = arg;
        break;
    case O_PROMPTS:
        a->prompts = arg;
        break;
    case O_JUDGE:
        a->judge = arg;
        break;
    case O_JSON:
        a->json = true;
        break;
    case O_OUT:
        a->out = arg;
        break;
    case O_TIMEOUT:
        a->timeout_ms = (int)lround(1000.0 * cli_arg_f64(PROG, "--timeout", arg, 0.001, 3600.0));
        *wire_given = true;
        break;
    case O_TRIES:
        a->tries = (int)cli_arg_i64(PROG, "--tries", arg, 1, 100);
        *wire_given = true;
        break;
    }
}

int ppo_cmd_eval(int argc, char **argv) {
    static const struct option longopts[] = {
        {"policy", required_argument, NULL, O_POLICY},
        {"baseline", required_argument, NULL, O_BASELINE},
        {"reward", required_argument, NULL, O_REWARD},
        {"reward-model", required_argument, NULL, O_REWARD_MODEL},
        {"prompts", required_argument, NULL, O_PROMPTS},
        {"judge", required_argument, NULL, O_JUDGE},
        {"json", no_argument, NULL, O_JSON},
        {"out", required_argument, NULL, O_OUT},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"tries", required_argument, NULL, O_TRIES},
        SAMPLER_LONGOPTS,
        CLI_COMMON_LONGOPTS,
        {0}};
    eval_args_t a = {.sampling = sampler_defaults()};
    a.sampling.k = EVAL_K;
    bool wire_given = false;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        if (sampler_option(&a.sampling, PROG, c, args.arg)) {
            note_flag(&a, c);
            continue;
        }
        own_option(&a, c, args.arg, &wire_given);
    }
    cli_args_end(&args, EVAL_HELP CLI_COMMON_HELP);
    check_args(&a, wire_given);
    a.sampling.gen.seed = args.common.seed;
    a.log_path = args.common.log_path;
    err_t err = ERR_INIT;
    if (eval_run(&a, &err)) {
        fprintf(stderr, "ppo: error: %s\n", err.msg);
        return 1;
    }
    return 0;
}
