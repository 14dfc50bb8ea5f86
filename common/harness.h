/* common/harness.h: the training loop every training command shares (sft pretrain, sft train,
 * reward train, ppo train). The caller owns its models, its data and its loss, and supplies
 * hooks (one step, validation, save); the harness owns the rest: the shared flags and the
 * command's settings table (parsing, run.json "settings", --resume restoring them), one AdamW
 * per registered model (warmup + cosine, global-norm clipping, a NaN stop before the update),
 * the loop, validation with OUT/best by a metric and its direction, checkpoints (the save hook,
 * then train_state.bin, then run.json, each file atomic), exact resume, Ctrl-C and --stop-at,
 * the progress line and the --log events.
 * Owns: the optimizers, run.json and the metrics log, allocated before the first step; the
 * loop allocates nothing but the log's JSON. Fails: -1 with err set, and run.json says
 * "failed". Only harness_parse exits (through cli: exit 2 for usage, 1 for an unreadable run).
 *
 * Data-parallel (MPI, common/dist.h): started as `mpirun -np N`, every rank runs the same
 * command; --batch stays the global batch. What the harness does: harness_parse joins the job;
 * harness_update averages the ranks' gradients (one fp32 allreduce of the slab, weighted by
 * harness_grad_weight) so every rank takes the same step; after each step it sums the ranks'
 * tokens, makes the loss and figures global (unless the hook did) and agrees on a stop; at
 * every checkpoint it compares a checksum of the parameters across the ranks (a "dist" log
 * event; a difference fails the run). Rank 0 alone writes OUT (checkpoints, run.json, best/),
 * the --log file and the progress line; every rank reads OUT on --resume. The single-process
 * path is untouched: with one rank none of this computes anything.
 * What a training command must do to be MPI-correct (sft/train.c is the example):
 *  1. the step hook takes the GLOBAL batch's data position (every rank advances it alike, so
 *     train_state.bin is rank-independent and --resume works on another number of ranks) and
 *     computes on its share only: rows [first, first + dist_share(B, &first)) of the batch;
 *  2. it says what its local mean is over, harness_grad_weight(h, i, kept), before each
 *     harness_update, and makes its loss global (out->loss = dist_mean(local, kept),
 *     out->global = true) BEFORE deciding whether to call harness_update: every rank must
 *     make the same harness_update calls (they are collective), so that decision must be taken
 *     on a global figure; --batch must be at least the number of ranks;
 *  3. the validate hook computes on its share and reduces (dist_sum_f64 of Σ and counts):
 *     every rank must return the same metric;
 *  4. the save hook and anything else that writes files runs on rank 0 only (the harness calls
 *     save there only; a command's own writes and prints check dist_rank() == 0). */
#ifndef RLHF_HARNESS_H
#define RLHF_HARNESS_H
#include "ckpt.h"
#include "cli.h"
#include "err.h"
#include "gpt.h"
#include "optim.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define HARNESS_MAX_MODELS  4  /* PPO: policy + value */
#define HARNESS_MAX_STATE   8  /* caller's data-position sections in train_state.bin */
#define HARNESS_MAX_FIGURES 32 /* extra figures a step logs (ppo train logs ~25) */
#define HARNESS_ECONFLICT   -2 /* harness_resume_settings: a flag differs from the run resumed */

/* ---- Settings. A command declares every option it takes as a table of settings; the same
 * table drives the parser, fills run.json "settings" and is checked and restored by --resume.
 *
 *     harness_setting_t set[] = {
 *         HARNESS_STR("demos", "demos", &o.demos),
 *         HARNESS_I64("batch", "batch", &o.batch, 1, 1 << 16),
 *         HARNESS_F64("kl-coef", "kl_coef", &o.kl_coef, 0, 10),
 *         HARNESS_BOOL("whiten-rewards", "whiten_rewards", &o.whiten),
 *         HARNESS_INFO_I64("num_params", &num_params),   (recorded only: a derived figure)
 *     };
 *
 * Values start as the command's defaults (or a "not given" sentinel the command resolves
 * after parsing, e.g. lr < 0 → the preset's). A --resume restores the first run exactly:
 * a setting that run was given (or restored) takes its recorded value; one it left at the
 * default keeps the default, so the command derives it again from the restored settings the
 * same way (bit for bit: run.json keeps 15 digits, a derived lr/10 needs 17). */
typedef enum {
    HARNESS_KIND_I64,  /* int64_t */
    HARNESS_KIND_U64,  /* uint64_t (a seed) */
    HARNESS_KIND_F64,  /* double */
    HARNESS_KIND_STR,  /* const char * (NULL = not given → JSON null); borrowed */
    HARNESS_KIND_BOOL, /* bool: a flag without a value */
} harness_kind_t;

typedef union {
    int64_t i;
    uint64_t u;
    double f;
    const char *s;
    bool b;
} harness_value_t;

typedef struct {
    const char *flag; /* long option without "--" ("batch"); NULL = recorded only, never
                         parsed, checked or restored (a figure the command derived) */
    const char *key;  /* run.json "settings" key ("batch") */
    harness_kind_t kind;
    void *value;         /* the command's variable, of the kind's type */
    double min, max;     /* accepted range of a number (I64, U64, F64) */
    bool runtime;        /* per invocation (an endpoint, a timeout): --resume restores it
                            when it is not given again, and takes a new value without
                            calling it a conflict */
    bool given;          /* set by harness_parse: on this command line */
    bool defaulted;      /* set by harness_parse: the command's default (given by neither this
                            command line nor the run resumed); listed in run.json "defaults" */
    harness_value_t def; /* set by harness_parse: the value before parsing (the default) */
} harness_setting_t;

/* Table rows; the pointer's type is checked against the kind at compile time. */
// clang-format off
#define HARNESS_I64(fl, k, ptr, lo, hi)                                                            \
    {.flag = (fl), .key = (k), .kind = HARNESS_KIND_I64, .value = (int64_t *){ptr}, .min = (lo),   \
     .max = (hi)}
#define HARNESS_U64(fl, k, ptr, lo, hi)                                                            \
    {.flag = (fl), .key = (k), .kind = HARNESS_KIND_U64, .value = (uint64_t *){ptr}, .min = (lo),  \
     .max = (hi)}
#define HARNESS_F64(fl, k, ptr, lo, hi)                                                            \
    {.flag = (fl), .key = (k), .kind = HARNESS_KIND_F64, .value = (double *){ptr}, .min = (lo),    \
     .max = (hi)}
#define HARNESS_STR(fl, k, ptr)                                                                    \
    {.flag = (fl), .key = (k), .kind = HARNESS_KIND_STR, .value = (const char **){ptr}}
#define HARNESS_BOOL(fl, k, ptr)                                                                   \
    {.flag = (fl), .key = (k), .kind = HARNESS_KIND_BOOL, .value = (bool *){ptr}}
/* A per-invocation row (runtime): a --resume may give it a new value (a server's new port). */
#define HARNESS_RUNTIME_STR(fl, k, ptr)                                                            \
    {.flag = (fl), .key = (k), .kind = HARNESS_KIND_STR, .value = (const char **){ptr},            \
     .runtime = true}
#define HARNESS_RUNTIME_F64(fl, k, ptr, lo, hi)                                                    \
    {.flag = (fl), .key = (k), .kind = HARNESS_KIND_F64, .value = (double *){ptr}, .min = (lo),    \
     .max = (hi), .runtime = true}
#define HARNESS_RUNTIME_I64(fl, k, ptr, lo, hi)                                                    \
    {.flag = (fl), .key = (k), .kind = HARNESS_KIND_I64, .value = (int64_t *){ptr}, .min = (lo),   \
     .max = (hi), .runtime = true}
#define HARNESS_INFO_I64(k, ptr) HARNESS_I64(NULL, k, ptr, 0, 0)
#define HARNESS_INFO_F64(k, ptr) HARNESS_F64(NULL, k, ptr, 0, 0)
#define HARNESS_INFO_STR(k, ptr) HARNESS_STR(NULL, k, ptr)
// clang-format on

/* The flags every training command shares. Settings (recorded, restored by --resume): --lr
 * --lr-min --warmup --weight-decay --grad-clip --eval-every --seed, and --out (recorded, never
 * compared: it names the run). Per invocation: --resume --overwrite --stop-at --threads --log
 * --help. lr, lr_min and warmup < 0 mean "not given": the command fills in its default. */
#define HARNESS_NSHARED 8
typedef struct {
    const char *out;     /* --out DIR: the last checkpoint; DIR/best the best on validation */
    double lr;           /* --lr X: peak learning rate */
    double lr_min;       /* --lr-min X: floor of the cosine decay */
    int64_t warmup;      /* --warmup N: linear warmup steps */
    double weight_decay; /* --weight-decay X: AdamW decay on matrices */
    double grad_clip;    /* --grad-clip X: global-norm clip, 0 = off */
    int64_t eval_every;  /* --eval-every N: validate and checkpoint every N steps; 0 = at the end */
    int64_t stop_at;     /* --stop-at N: stop after step N and save; 0 = never */
    bool resume;         /* --resume: continue OUT's checkpoint exactly */
    bool overwrite;      /* --overwrite: replace a checkpoint already in OUT */
    cli_opts_t common;   /* --seed --threads --log --help */
    /* filled by harness_parse; harness_args_release frees */
    int argc;
    char **argv;
    harness_setting_t *settings; /* the command's table (borrowed) */
    int nsettings;
    harness_setting_t shared[HARNESS_NSHARED]; /* rows for the fields above */
    json_t *resumed; /* OUT/run.json of the run resumed (owns restored strings) */
} harness_args_t;

/* --help lines for the flags every training command shares, in one place so they read alike:
 * HARNESS_HELP_OPTIM after the command's --lr line (its default differs per command), then the
 * command's --eval-every line (its default too), then HARNESS_HELP_RUN. */
#define HARNESS_HELP_OPTIM                                                                         \
    "  --lr-min X        floor of the cosine decay (default lr/10)\n"                              \
    "  --warmup N        linear warmup updates (default: 5% of the steps)\n"                       \
    "  --weight-decay X  AdamW weight decay on matrices (default 0.1)\n"                           \
    "  --grad-clip X     clip the global gradient norm to X (default 1; 0 = off)\n"
#define HARNESS_HELP_RUN                                                                           \
    "  --resume          continue OUT's checkpoint exactly (its run.json restores the other\n"     \
    "                    options; only --threads, --log and --stop-at may change)\n"               \
    "  --overwrite       replace a checkpoint already in OUT\n"                                    \
    "  --stop-at N       stop after step N and save, as Ctrl-C does (resume later)\n"              \
    "\n"                                                                                           \
    "Ctrl-C stops after the current step and saves (exit 0); a NaN or infinite loss stops\n"       \
    "with the last good checkpoint intact (exit 1). Exit status: 0 ok, 1 failure, 2 usage.\n"

/* Not given: lr, lr_min, warmup; weight decay 0.1, clip 1, validation every `eval` steps. */
#define HARNESS_ARGS_INIT(eval)                                                                    \
    ((harness_args_t){.lr = -1,                                                                    \
                      .lr_min = -1,                                                                \
                      .warmup = -1,                                                                \
                      .weight_decay = 0.1,                                                         \
                      .grad_clip = 1.0,                                                            \
                      .eval_every = (eval),                                                        \
                      .common = CLI_OPTS_INIT})

/* Parses argv (getopt_long) into a (the shared flags) and the command's settings table, which
 * both must stay where they are until harness_args_release. On --help prints help followed by
 * CLI_COMMON_HELP and exits 0. A bad value, an unknown option, a positional argument, a
 * missing --out or --resume with --overwrite is a usage error (exit 2). With --resume, then
 * restores OUT/run.json's settings (harness_resume_settings): a flag given again with another
 * value is a usage error naming both ("--batch 4 differs from the run being resumed (--batch 8
 * in runs/x/run.json)", exit 2); a missing or unreadable run.json exits 1. */
void harness_parse(harness_args_t *a, const char *prog, const char *help, int argc, char **argv,
                   harness_setting_t *settings, int nsettings);

/* The --resume part of harness_parse, for a parsed a (see the settings comment above): reads
 * a->out/run.json, compares every flag given now with its recorded value and restores the
 * settings. 0; HARNESS_ECONFLICT with err naming both values; -1 with err set when run.json
 * cannot be read or lacks a setting. Nothing is changed unless it returns 0. */
int harness_resume_settings(harness_args_t *a, err_t *err);

/* Frees what harness_parse kept (the resumed run.json); accepts a released a. */
void harness_args_release(harness_args_t *a);

/* Refuses to start a fresh run in a directory holding a checkpoint (model.safetensors or
 * train_state.bin) unless --overwrite, which removes it. Either way OUT/best's files go, so a
 * stale best cannot outlive its run. A resume only checks the checkpoint is there. Call it
 * once every input has been checked: it is the first write. */
int harness_prepare_out(const harness_args_t *a, err_t *err);

/* ---- The run. */

typedef struct harness harness_t;

typedef struct {
    const char *name; /* "kl", "reward_mean" */
    double value;     /* NaN / inf are logged as null */
} harness_figure_t;

/* What a step reports: its loss, the tokens it processed (the progress rate) and extra
 * figures, all written into the "train" event of --log. */
typedef struct {
    double loss;    /* NaN or inf stops the run (nothing of this step is saved) */
    int64_t tokens; /* tokens processed (by this rank: the harness sums them over the ranks) */
    int nfigures;
    harness_figure_t figures[HARNESS_MAX_FIGURES];
    /* MPI: loss and figures are already global (the same on every rank: dist_mean). false:
     * the harness makes them global after the hook, as means weighted by weight (0 = equal
     * weights); then every rank must report the same figures in the same order. One rank:
     * ignored. */
    bool global;
    double weight;
    char note[64]; /* shown on the progress line before the lr ("score 0.31  kl 2.10"); "" = none */
} harness_step_t;

/* Adds a figure (ignored past HARNESS_MAX_FIGURES); name is borrowed until the step is logged. */
void harness_step_figure(harness_step_t *out, const char *name, double value);

typedef struct {
    void *ctx; /* passed to every hook */
    /* One training step, step = 1, 2, ... steps: computes gradients and calls harness_update
     * for each optimizer update (once, or several times: PPO's epochs of minibatches), and
     * fills *out (zeroed before the call). A non-finite loss: set out->loss and return 0
     * without updating; harness_update stops a non-finite gradient itself (returns -1, pass
     * it on). -1 with err set stops the run. */
    int (*step)(void *ctx, harness_t *h, int64_t step, harness_step_t *out, err_t *err);
    /* The validation metric of the models as they are now (NaN = none). NULL = no validation
     * and no OUT/best. */
    int (*validate)(void *ctx, harness_t *h, double *metric, err_t *err);
    /* Writes the caller's model(s) into dir (which exists): a model directory (config.json,
     * model.safetensors, tokenizer), plus any subdirectories (PPO: dir/value/). Each file
     * atomic. Called for OUT and OUT/best. */
    int (*save)(void *ctx, const char *dir, err_t *err);
    /* After a resume loaded train_state.bin into the data sections: re-derive whatever depends
     * on them (NULL = nothing to do). */
    int (*restore)(void *ctx, err_t *err);
} harness_hooks_t;

typedef struct {
    const char *prog;     /* "sft pretrain": progress label, messages, run.json "command" */
    harness_args_t *args; /* parsed (harness_parse); borrowed for the harness's lifetime */
    int64_t steps;        /* steps in the whole run (a resume continues to it) */
    const char *metric;   /* validation metric: "loss" → results val_loss, best_val_loss,
                             initial_val_loss and "val" events {"loss": x} */
    bool higher_better;   /* false: a loss; true: an accuracy, a reward */
    harness_hooks_t hooks;
    /* the data position, saved with every checkpoint into train_state.bin and loaded back
     * into the same memory by a resume (then hooks.restore is called) */
    ckpt_section_t state[HARNESS_MAX_STATE];
    int nstate;
} harness_config_t;

/* A harness for cfg (copied; the pointers in it are borrowed): opens --log (appending on a
 * resume) and starts run.json. Caller frees with harness_destroy. NULL with err set. */
harness_t *harness_new(const harness_config_t *cfg, err_t *err);
/* Frees the optimizers, run.json and the log, and NULLs *h; accepts NULL. */
void harness_destroy(harness_t **h);

/* An optimized model's AdamW and schedule (warmup and the total are the run's). */
typedef struct {
    optim_config_t adam; /* betas, eps, weight decay */
    double lr, lr_min;   /* peak and floor of warmup + cosine */
    double grad_clip;    /* global-norm clip of this model's gradient; 0 = off */
} harness_optim_t;

/* The shared flags' optimizer: AdamW defaults with --weight-decay, --lr, --lr-min, --grad-clip. */
harness_optim_t harness_optim_from_args(const harness_args_t *a);

/* Registers a model to optimize (its gradient slab allocated: gpt_alloc(..., true)), with opt
 * (NULL = harness_optim_from_args). name "" for the first (its train_state.bin sections are
 * "adam.m", ...), another ("value") prefixes its sections ("value.adam.m"). Call before
 * harness_run, in the same order every run. Returns the index for harness_update, or -1. */
int harness_add_model(harness_t *h, const char *name, gpt_model_t *model,
                      const harness_optim_t *opt, err_t *err);

/* One optimizer update of model i from its gradients, inside the step hook: the global
 * gradient norm is checked finite (otherwise -1 with err saying so and naming the last good
 * checkpoint, with nothing updated), clipped, and AdamW runs at the schedule's learning rate
 * of the current step (the same for every update of a step). */
int harness_update(harness_t *h, int i, err_t *err);

/* MPI: this rank's gradient of model i is a mean over weight items (its kept targets, its
 * pairs): the next harness_update of model i makes the gradient Σ_r weight_r·g_r / Σ_r weight_r,
 * the gradient of the mean over the global batch, then forgets the weight. Not called: the
 * ranks weigh equally. One rank: ignored (the gradient is left as it is, bit for bit). */
void harness_grad_weight(harness_t *h, int i, double weight);
/* MPI: this rank's gradient of model i is already its part of the global gradient (each rank
 * scaled its terms by its share of the global normaliser, as ppo's engine does when one
 * gradient mixes two means with different normalisers): the next harness_update of model i
 * sums the ranks' gradients as they are. One rank: ignored. */
void harness_grad_sum(harness_t *h, int i);

/* The figures of model i's last update: gradient norm before clipping, learning rate. */
double harness_grad_norm(const harness_t *h, int i);
double harness_lr(const harness_t *h, int i);

/* run.json "results" (borrowed): the command adds its own figures (tokens in the corpus ...). */
json_t *harness_results(harness_t *h);
/* The metrics log (NULL without --log), for the command's own events. */
cli_log_t *harness_log(harness_t *h);

/* What a run ended with (also in run.json "results"). */
typedef struct {
    const char *status; /* "done" or "stopped" (Ctrl-C or --stop-at) */
    int64_t start_step; /* step the run started from (0, or the resumed step) */
    int64_t step;       /* last step done */
    double loss;        /* training loss of the last step (NAN when no step ran) */
    double initial_val; /* metric before the first step of the run (NAN when none) */
    double val;         /* the latest metric (NAN without validation) */
    int64_t val_step;   /* the step it was measured at (-1 = none) */
    double best_val;    /* best of the run, at best_step (NAN / 0 when none) */
    int64_t best_step;
    int64_t tokens; /* tokens processed (by all ranks) */
    double elapsed_s;
    double tokens_per_s;
} harness_result_t;

/* Runs the loop: on a resume loads OUT/train_state.bin (after the caller loaded OUT's models)
 * and checks it belongs to them; records the settings into run.json; on a fresh run validates
 * the starting point; then steps, validates and checkpoints every --eval-every steps and at
 * the end, keeps OUT/best by the metric's direction, and stops early on Ctrl-C or --stop-at
 * (saved, "stopped"). res may be NULL. 0 when done or stopped; -1 with err set on a
 * non-finite loss or gradient (nothing of that step saved: the last checkpoint stays intact),
 * a hook's failure, an I/O error or a train_state.bin that does not belong to this run. */
int harness_run(harness_t *h, harness_result_t *res, err_t *err);

/* The current step (1-based inside the step hook; the last step done outside it). */
int64_t harness_step(const harness_t *h);

/* ---- Next-token language-model loss, for the commands that train one (sft pretrain, sft
 * train, PPO's pretraining term). */
typedef struct {
    gpt_model_t *model;        /* borrowed */
    int32_t *inputs, *targets; /* (B_max, T_max): the caller's batch; targets < 0 not trained */
    float *logp, *dout;        /* (B_max, T_max) scratch */
    int64_t kept;              /* kept targets of the last backward or logprob (the weight) */
} harness_lm_t;

/* Allocates the buffers and the model's activations and gradients for batches up to
 * B_max × T_max. Release with harness_lm_release. */
int harness_lm_init(harness_lm_t *lm, gpt_model_t *model, int64_t B_max, int64_t T_max, err_t *err);
void harness_lm_release(harness_lm_t *lm);
/* Mean cross-entropy over the kept targets of the (B, T) batch in lm->inputs/targets (0 when
 * none is kept; their count into lm->kept); when finite, zeroes the gradients and
 * backpropagates it. Allocates nothing. Local: under MPI, B is this rank's rows. */
double harness_lm_backward(harness_lm_t *lm, int64_t B, int64_t T);
/* Forward only: Σ log p(target) over the kept targets (in double), their count into *kept. */
double harness_lm_logprob(harness_lm_t *lm, int64_t B, int64_t T, int64_t *kept);

/* One language-model step of a training command over its share of the global batch, in
 * lm->inputs/targets (B, T): harness_lm_backward, the loss made global (dist_mean weighted by
 * the kept targets, so N ranks report what one process would), the gradient weighted likewise,
 * and harness_update of model i when the loss is finite (a non-finite one is left for the
 * harness to stop on, before any update). Fills out's loss, tokens and global flag. */
int harness_lm_step(harness_t *h, int i, harness_lm_t *lm, int64_t B, int64_t T,
                    harness_step_t *out, err_t *err);
#endif /* RLHF_HARNESS_H */
