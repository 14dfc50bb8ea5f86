/* sft/trainer.h: the language-model training loop `sft pretrain` and `sft train` share.
 * A command prepares a model (random or loaded), a data source and the settings; the trainer
 * runs next-token cross-entropy over the kept targets, AdamW with warmup + cosine and global-norm
 * clipping, held-out loss every N steps, the last checkpoint in OUT (with train_state.bin for an
 * exact resume) and the best on validation in OUT/best, progress on stderr, --log metrics,
 * run.json, Ctrl-C (stop after the step, save, exit 0) and a stop on a non-finite loss (the
 * last good checkpoint stays as it was on disk).
 * Owns: its batch buffers and the optimizer, all allocated before the first step; a step
 * allocates nothing. Fails: -1 with err set; run.json then says "failed". */
#ifndef RLHF_SFT_TRAINER_H
#define RLHF_SFT_TRAINER_H
#include "ckpt.h"
#include "cli.h"
#include "err.h"
#include "gpt.h"
#include "optim.h"
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#define TRAINER_MAX_DATA_SECTIONS 4

/* The optimisation flags every training command shares, parsed in one place so each trainer
 * spells and bounds them the same way (each command's --help states its own defaults).
 * lr, lr_min and warmup < 0 mean "not given": the command fills in its default. */
typedef struct {
    double lr;           /* --lr X: peak learning rate */
    double lr_min;       /* --lr-min X: floor of the cosine decay */
    int64_t warmup;      /* --warmup N: linear warmup updates */
    double weight_decay; /* --weight-decay X: AdamW decay on matrices */
    double grad_clip;    /* --grad-clip X: global-norm clip, 0 = off */
    int64_t eval_every;  /* --eval-every N: validate and checkpoint every N steps */
    int64_t stop_at;     /* --stop-at N: stop after step N and save; 0 = never */
    bool resume;         /* --resume: continue OUT's checkpoint exactly */
    bool overwrite;      /* --overwrite: replace a checkpoint already in OUT */
} trainer_flags_t;

/* Not given: lr, lr_min, warmup; weight decay 0.1, clip 1, validation every eval steps. */
#define TRAINER_FLAGS_INIT(eval)                                                                   \
    ((trainer_flags_t){.lr = -1, .lr_min = -1, .warmup = -1, .weight_decay = 0.1,                \
                       .grad_clip = 1.0, .eval_every = (eval)})

enum {
    TRAINER_O_LR = 0x200, /* clear of the commands' own option codes (0x100...) */
    TRAINER_O_LR_MIN,
    TRAINER_O_WARMUP,
    TRAINER_O_WD,
    TRAINER_O_CLIP,
    TRAINER_O_EVAL,
    TRAINER_O_RESUME,
    TRAINER_O_OVERWRITE,
    TRAINER_O_STOP_AT
};

/* Rows for a getopt_long table. */
// clang-format off
#define TRAINER_LONGOPTS                                             \
    {"lr", required_argument, NULL, TRAINER_O_LR},                   \
    {"lr-min", required_argument, NULL, TRAINER_O_LR_MIN},           \
    {"warmup", required_argument, NULL, TRAINER_O_WARMUP},           \
    {"weight-decay", required_argument, NULL, TRAINER_O_WD},         \
    {"grad-clip", required_argument, NULL, TRAINER_O_CLIP},          \
    {"eval-every", required_argument, NULL, TRAINER_O_EVAL},         \
    {"resume", no_argument, NULL, TRAINER_O_RESUME},                 \
    {"overwrite", no_argument, NULL, TRAINER_O_OVERWRITE},           \
    {"stop-at", required_argument, NULL, TRAINER_O_STOP_AT}
// clang-format on

/* Takes getopt_long's result c: true when it was one of TRAINER_LONGOPTS (stored in f),
 * false otherwise. A bad value is a usage error naming the flag (exit 2, via cli). */
bool trainer_flag(trainer_flags_t *f, const char *prog, int c, const char *arg);

/* Where batches come from. Both batch functions write (B, T) row-major into buffers of
 * B_max × T_max (B ≤ B_max, T ≤ T_max) and never allocate; targets < 0 are not trained. */
typedef struct {
    void *ctx;
    /* The next training batch; sets *B and *T. */
    void (*train_batch)(void *ctx, int32_t *inputs, int32_t *targets, int64_t *B, int64_t *T);
    /* Held-out batch i, 0 ≤ i < val_batches, called in order 0, 1, ... each validation. */
    void (*val_batch)(void *ctx, int64_t i, int32_t *inputs, int32_t *targets, int64_t *B,
                      int64_t *T);
    int64_t val_batches; /* 0 = no validation (and no OUT/best) */
    /* The data position: saved into train_state.bin with every checkpoint, and loaded back
     * into the same memory by a resume, after which restore (may be NULL) is called. */
    ckpt_section_t state[TRAINER_MAX_DATA_SECTIONS];
    int n_state;
    int (*restore)(void *ctx, err_t *err);
} trainer_data_t;

typedef struct {
    const char *prog;          /* "sft pretrain": progress label, messages */
    const char *out_dir;       /* OUT: last checkpoint; OUT/best the best on validation */
    const char *tokenizer_dir; /* vocab.json + merges.txt copied into checkpoints (may be OUT) */
    ckpt_meta_t meta;          /* config.json's rlhf block */
    int64_t steps;             /* updates in the whole run (a resume continues to it) */
    int64_t stop_at;           /* stop after this step as Ctrl-C does; 0 = never */
    int64_t B_max, T_max;      /* largest batch the data source gives */
    optim_config_t optim;
    double lr, lr_min;  /* peak and floor of the cosine schedule */
    int64_t warmup;     /* linear warmup updates */
    double grad_clip;   /* global-norm clip; 0 = none */
    int64_t eval_every; /* validate and checkpoint every N steps; 0 = only at the end */
    bool resume;        /* continue OUT/train_state.bin (the model came from OUT) */
    uint64_t seed;      /* --seed, recorded in train_state.bin and checked on resume */
} trainer_config_t;

/* What a run ended with (also written into run.json "results"). */
typedef struct {
    const char *status;      /* "done" or "stopped" (Ctrl-C or --stop-at) */
    int64_t start_step;      /* step the run started from (0, or the resumed step) */
    int64_t step;            /* last step done */
    double loss;             /* training loss of the last step (NAN when no step ran) */
    double initial_val_loss; /* before the first step of a fresh run (NAN otherwise) */
    double val_loss;         /* the latest held-out loss (NAN without validation) */
    int64_t val_step;        /* the step it was measured at (-1 = none) */
    double best_val_loss;    /* best of the run, at best_step (NAN / 0 when none) */
    int64_t best_step;
    int64_t tokens; /* tokens processed by this process (B·T per step) */
    double elapsed_s;
    double tokens_per_s;
} trainer_result_t;

/* Trains model (an LM head model whose parameters are the starting point: random, a base
 * model, or OUT's last checkpoint when cfg->resume) on data. The caller has checked every
 * input; this writes OUT (created with its parents) and fills run->results. res may be NULL.
 * Returns 0 when done or stopped, -1 with err set on a non-finite loss or gradient (nothing
 * of that step is saved), an I/O failure or a train_state.bin that does not belong to this
 * run; the progress line is finished and run.json says "failed" before it returns. */
int trainer_run(const trainer_config_t *cfg, gpt_model_t *model, trainer_data_t *data,
                cli_run_t *run, cli_log_t *log, trainer_result_t *res, err_t *err);

/* Refuses to start a fresh run in a directory holding a checkpoint (model.safetensors or
 * train_state.bin) unless overwrite, which removes that checkpoint. Either way OUT/best's files
 * go, so a stale best cannot outlive its run. A resume only checks the checkpoint is there.
 * Call it once every input has been checked: it is the first write. */
int trainer_prepare_out(const char *out_dir, bool resume, bool overwrite, err_t *err);

/* mkdir -p. */
int trainer_mkdirs(const char *path, err_t *err);

/* Mean next-token loss of model over the data source's held-out batches (-Σ log p / Σ kept
 * targets, in double), with caller buffers of B_max × T_max (logp floats). NAN when
 * val_batches is 0 or no target is kept. */
double trainer_val_loss(gpt_model_t *model, const trainer_data_t *data, int32_t *inputs,
                        int32_t *targets, float *logp);
#endif /* RLHF_SFT_TRAINER_H */
