/* sft/trainer.c: the shared training loop (see trainer.h). One step: batch → forward → log-probs
 * of the kept targets → mean cross-entropy → backward → clip → AdamW. Everything a step touches
 * is allocated before the first one. A checkpoint is OUT/{config.json, model.safetensors,
 * vocab.json, merges.txt} (ckpt_save) then OUT/train_state.bin then OUT/run.json, each file
 * atomic; train_state.bin carries a hash of the parameters it belongs to, so a crash between
 * two of those writes is detected by --resume instead of silently mixing two steps. */
#include "trainer.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_FILE "train_state.bin"
#define BEST_DIR   "best"
#define PATH_CAP   4096

/* Fixed sections of train_state.bin besides the optimizer's and the data source's. */
typedef struct {
    int64_t shape[2];     /* B_max, T_max: a resume with another batch shape is not a resume */
    uint64_t seed;        /* --seed */
    uint64_t params_hash; /* hash of model.safetensors' parameters written with this state */
    double best_val;      /* best held-out loss so far (INFINITY = none yet) */
    int64_t best_step;    /* its step (0 = none) */
    int64_t saved_step;   /* step of this checkpoint (= adam.step) */
    double initial_val;   /* held-out loss before the first step (NAN = none) */
} run_state_t;

typedef struct {
    const trainer_config_t *cfg;
    gpt_model_t *model;
    trainer_data_t *data;
    cli_run_t *run;
    cli_log_t *log;
    optim_t *opt;
    optim_schedule_t sched;
    int32_t *inputs, *targets; /* (B_max, T_max) */
    float *logp, *dout;        /* (B_max, T_max) */
    run_state_t st;
    cli_progress_t progress;
    bool progress_on;   /* progress initialised (finish it before returning) */
    bool out_written;   /* run.json "running" is in OUT: a failure is recorded there */
    int64_t saved_step; /* last step checkpointed into OUT by this process or before (-1) */
    int64_t val_step;   /* last step validated (-1) */
    trainer_result_t res;
    char path[PATH_CAP]; /* scratch for file names */
    char best_dir[PATH_CAP];
} trainer_t;

/* ---- small helpers ------------------------------------------------------------------------ */

int trainer_mkdirs(const char *path, err_t *err) {
    char buf[PATH_CAP];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return err_setf(err, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        const char saved = *p;
        if (saved != '/' && saved != '\0') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return err_setf(err, "%s: cannot create: %s", buf, strerror(errno));
        *p = saved;
        if (!saved) break;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return err_setf(err, "%s: not a directory", path);
    return 0;
}

static bool file_exists(const char *dir, const char *name) {
    char p[PATH_CAP];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

int trainer_prepare_out(const char *out_dir, bool resume, bool overwrite, err_t *err) {
    if (resume) {
        if (!file_exists(out_dir, STATE_FILE) || !file_exists(out_dir, "model.safetensors"))
            return err_setf(err, "%s: no checkpoint to resume (model.safetensors and %s)", out_dir,
                            STATE_FILE);
        return 0;
    }
    if (!overwrite &&
        (file_exists(out_dir, "model.safetensors") || file_exists(out_dir, STATE_FILE)))
        return err_setf(err,
                        "%s already holds a checkpoint: --resume continues it, --overwrite "
                        "replaces it",
                        out_dir);
    static const char *const stale[] = {"config.json", "model.safetensors", "vocab.json",
                                        "merges.txt", "run.json"};
    char best[PATH_CAP], p[PATH_CAP + 64];
    snprintf(best, sizeof best, "%s/%s", out_dir, BEST_DIR);
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", best, stale[i]);
        if (unlink(p) != 0 && errno != ENOENT)
            return err_setf(err, "%s: cannot remove: %s", p, strerror(errno));
    }
    /* the old checkpoint goes now, so a run that fails before its first checkpoint cannot
     * leave the old model next to the new run.json (the tokenizer files are rewritten) */
    static const char *const old[] = {STATE_FILE, "model.safetensors", "config.json"};
    for (size_t i = 0; overwrite && i < sizeof old / sizeof old[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", out_dir, old[i]);
        if (unlink(p) != 0 && errno != ENOENT)
            return err_setf(err, "%s: cannot remove: %s", p, strerror(errno));
    }
    return 0;
}

/* FNV-1a over 64-bit words: not cryptographic, only "are these the same parameters". */
static uint64_t params_hash(const gpt_model_t *model) {
    const uint8_t *p = (const uint8_t *)model->params_mem;
    const size_t n = (size_t)model->num_params * sizeof(float);
    uint64_t h = 1469598103934665603ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ULL;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static int64_t count_kept(const int32_t *targets, int64_t n) {
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) kept += targets[i] >= 0;
    return kept;
}

double trainer_val_loss(gpt_model_t *model, const trainer_data_t *data, int32_t *inputs,
                        int32_t *targets, float *logp) {
    double sum = 0.0;
    int64_t kept = 0;
    for (int64_t i = 0; i < data->val_batches; i++) {
        int64_t B = 0, T = 0;
        data->val_batch(data->ctx, i, inputs, targets, &B, &T);
        gpt_forward(model, inputs, B, T);
        sum += gpt_lm_logprobs(model, targets, 1.0f, logp);
        kept += count_kept(targets, B * T);
    }
    return kept > 0 ? -sum / (double)kept : (double)NAN;
}

/* ---- train_state.bin ---------------------------------------------------------------------- */

/* Lists every section (optimizer, run state, data position) into sec; returns the count. */
static int state_sections(trainer_t *t, ckpt_section_t *sec) {
    int n = 0;
    optim_sections(t->opt, sec);
    n += OPTIM_NUM_SECTIONS;
    run_state_t *s = &t->st;
    sec[n++] = (ckpt_section_t){"trainer.shape", s->shape, sizeof s->shape};
    sec[n++] = (ckpt_section_t){"trainer.seed", &s->seed, sizeof s->seed};
    sec[n++] = (ckpt_section_t){"trainer.params_hash", &s->params_hash, sizeof s->params_hash};
    sec[n++] = (ckpt_section_t){"trainer.best_val", &s->best_val, sizeof s->best_val};
    sec[n++] = (ckpt_section_t){"trainer.best_step", &s->best_step, sizeof s->best_step};
    sec[n++] = (ckpt_section_t){"trainer.saved_step", &s->saved_step, sizeof s->saved_step};
    sec[n++] = (ckpt_section_t){"trainer.initial_val", &s->initial_val, sizeof s->initial_val};
    for (int i = 0; i < t->data->n_state; i++) sec[n++] = t->data->state[i];
    return n;
}

#define MAX_SECTIONS (OPTIM_NUM_SECTIONS + 7 + TRAINER_MAX_DATA_SECTIONS)

/* Loads OUT/train_state.bin and checks it belongs to this run and to the loaded model. */
static int state_load(trainer_t *t, err_t *err) {
    const trainer_config_t *cfg = t->cfg;
    ckpt_section_t sec[MAX_SECTIONS];
    const int n = state_sections(t, sec);
    snprintf(t->path, sizeof t->path, "%s/%s", cfg->out_dir, STATE_FILE);
    if (ckpt_state_load(t->path, sec, n, err)) return -1;
    const run_state_t *s = &t->st;
    if (s->shape[0] != cfg->B_max || s->shape[1] != cfg->T_max)
        return err_setf(err,
                        "%s: written by a run with batch %" PRId64 " x %" PRId64
                        ", this one has %" PRId64 " x %" PRId64 ": --resume needs the same "
                        "--batch and --seq",
                        t->path, s->shape[0], s->shape[1], cfg->B_max, cfg->T_max);
    if (s->seed != cfg->seed)
        return err_setf(err, "%s: written by a run with --seed %" PRIu64 ", this one has %" PRIu64,
                        t->path, s->seed, cfg->seed);
    if (s->params_hash != params_hash(t->model) || s->saved_step != t->opt->step)
        return err_setf(err,
                        "%s: does not belong to %s/model.safetensors (a checkpoint write was "
                        "interrupted); the directory cannot be resumed",
                        t->path, cfg->out_dir);
    if (t->opt->step > cfg->steps)
        return err_setf(err, "%s: already at step %" PRId64 ", past --steps %" PRId64, t->path,
                        t->opt->step, cfg->steps);
    if (t->data->restore && t->data->restore(t->data->ctx, err)) return -1;
    return 0;
}

/* ---- run.json ----------------------------------------------------------------------------- */

/* Copies the figures so far into run.json's "results". */
static void update_results(trainer_t *t) {
    const trainer_result_t *r = &t->res;
    json_t *o = t->run->results;
    json_object_set_new(o, "step", json_integer(r->step));
    json_object_set_new(o, "steps", json_integer(t->cfg->steps));
    json_object_set_new(o, "start_step", json_integer(r->start_step));
    json_object_set_new(o, "loss", cli_json_number(r->loss));
    json_object_set_new(o, "initial_val_loss", cli_json_number(r->initial_val_loss));
    json_object_set_new(o, "val_loss", cli_json_number(r->val_loss));
    json_object_set_new(o, "val_step", r->val_step >= 0 ? json_integer(r->val_step) : json_null());
    json_object_set_new(o, "best_val_loss", cli_json_number(r->best_val_loss));
    json_object_set_new(o, "best_step",
                        r->best_step > 0 ? json_integer(r->best_step) : json_null());
    json_object_set_new(o, "tokens", json_integer(r->tokens));
    json_object_set_new(o, "tokens_per_s", cli_json_number(r->tokens_per_s));
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- checkpoints -------------------------------------------------------------------------- */

/* OUT/best: the model, its tokenizer and run.json (no optimizer state: it is for use, not
 * for resuming). */
static int save_best(trainer_t *t, err_t *err) {
    const trainer_config_t *cfg = t->cfg;
    if (ckpt_save(t->best_dir, t->model, &cfg->meta, cfg->tokenizer_dir, err)) return -1;
    update_results(t);
    return cli_run_write(t->run, t->best_dir, "running", err);
}

/* OUT: model, then train_state.bin (with the parameters' hash), then run.json. */
static int save_last(trainer_t *t, int64_t step, err_t *err) {
    const trainer_config_t *cfg = t->cfg;
    if (ckpt_save(cfg->out_dir, t->model, &cfg->meta, cfg->tokenizer_dir, err)) return -1;
    t->st.params_hash = params_hash(t->model);
    t->st.saved_step = step;
    ckpt_section_t sec[MAX_SECTIONS];
    const int n = state_sections(t, sec);
    snprintf(t->path, sizeof t->path, "%s/%s", cfg->out_dir, STATE_FILE);
    if (ckpt_state_save(t->path, sec, n, err)) return -1;
    t->saved_step = step;
    update_results(t);
    return cli_run_write(t->run, cfg->out_dir, "running", err);
}

/* Held-out loss at step; a new best goes to OUT/best. */
static int validate(trainer_t *t, int64_t step, err_t *err) {
    const double val = trainer_val_loss(t->model, t->data, t->inputs, t->targets, t->logp);
    t->val_step = t->res.val_step = step;
    t->res.val_loss = val;
    const bool best = step > 0 && isfinite(val) && val < t->st.best_val;
    if (best) {
        t->st.best_val = val;
        t->st.best_step = step;
        t->res.best_val_loss = val;
        t->res.best_step = step;
        if (save_best(t, err)) return -1;
    }
    if (t->progress_on)
        cli_progress_note(&t->progress, "step %" PRId64 ": val loss %.4f%s", step, val,
                          best ? " (best: saved to best/)" : "");
    /* no "o" with cli_json_number here: a NULL log (no --log) would not consume the reference */
    if (!isfinite(val))
        return cli_log_event(t->log, err, "val", "{s:I, s:n, s:b}", "step", (json_int_t)step,
                             "loss", "best", best);
    return cli_log_event(t->log, err, "val", "{s:I, s:f, s:b}", "step", (json_int_t)step, "loss",
                         val, "best", best);
}

/* ---- the step ----------------------------------------------------------------------------- */

/* One update; returns the loss (before the update) and sets *norm and *tokens. A non-finite
 * loss or gradient returns at once, before the parameters change. Allocates nothing. */
static double train_step(trainer_t *t, double *norm, int64_t *tokens) {
    gpt_model_t *m = t->model;
    int64_t B = 0, T = 0;
    t->data->train_batch(t->data->ctx, t->inputs, t->targets, &B, &T);
    const int64_t N = B * T, kept = count_kept(t->targets, N);
    *tokens = N;
    *norm = NAN;
    gpt_forward(m, t->inputs, B, T);
    const double sum = gpt_lm_logprobs(m, t->targets, 1.0f, t->logp);
    const double loss = kept > 0 ? -sum / (double)kept : 0.0;
    if (!isfinite(loss)) return loss;
    /* loss = -(1/kept) Σ logp, so dloss/dlogp = -1/kept on kept targets */
    const float g = kept > 0 ? (float)(-1.0 / (double)kept) : 0.0f;
    for (int64_t i = 0; i < N; i++) t->dout[i] = t->targets[i] >= 0 ? g : 0.0f;
    gpt_zero_grad(m);
    gpt_backward(m, t->dout);
    *norm = optim_clip_grad_norm(t->opt, m->grads_mem, t->cfg->grad_clip);
    if (!isfinite(*norm)) return *norm;
    optim_step(t->opt, m->params_mem, m->grads_mem, optim_lr(&t->sched, t->opt->step));
    return loss;
}

/* The message for a step that went non-finite, naming what is left on disk. */
static int nonfinite_error(trainer_t *t, int64_t step, double loss, double norm, err_t *err) {
    char what[64];
    if (!isfinite(loss))
        snprintf(what, sizeof what, "loss is %s", isnan(loss) ? "NaN" : "infinite");
    else
        snprintf(what, sizeof what, "gradient norm is %s", isnan(norm) ? "NaN" : "infinite");
    if (t->saved_step > 0)
        return err_setf(err,
                        "step %" PRId64 ": %s; stopped without saving it: the last good "
                        "checkpoint (step %" PRId64 ") is intact in %s (try a lower --lr)",
                        step, what, t->saved_step, t->cfg->out_dir);
    return err_setf(err,
                    "step %" PRId64 ": %s; stopped before any checkpoint was saved (try a "
                    "lower --lr)",
                    step, what);
}

static void progress_extra(char *buf, size_t size, const trainer_t *t, double lr) {
    int n = snprintf(buf, size, "lr %.2e", lr);
    if (n > 0 && (size_t)n < size && isfinite(t->res.val_loss))
        snprintf(buf + n, size - (size_t)n, "  val %.4f", t->res.val_loss);
}

/* Steps until done, stopped or failed; *stopped tells which of the first two. */
static int train_loop(trainer_t *t, bool *stopped, err_t *err) {
    const trainer_config_t *cfg = t->cfg;
    char extra[96];
    *stopped = cfg->stop_at > 0 && t->opt->step >= cfg->stop_at && t->opt->step < cfg->steps;
    if (*stopped) return 0; /* --stop-at a step already done: nothing to train */
    for (int64_t step = t->opt->step + 1; step <= cfg->steps; step++) {
        const double lr = optim_lr(&t->sched, t->opt->step);
        double norm;
        int64_t tokens;
        const double loss = train_step(t, &norm, &tokens);
        if (!isfinite(loss) || !isfinite(norm)) return nonfinite_error(t, step, loss, norm, err);
        t->res.step = step;
        t->res.loss = loss;
        t->res.tokens += tokens;
        progress_extra(extra, sizeof extra, t, lr);
        cli_progress_update(&t->progress, step, loss, tokens, extra);
        if (cli_log_event(t->log, err, "train", "{s:I, s:f, s:f, s:f, s:I}", "step",
                          (json_int_t)step, "loss", loss, "lr", lr, "grad_norm", norm, "tokens",
                          (json_int_t)tokens))
            return -1;
        const bool due = step == cfg->steps || (cfg->eval_every > 0 && step % cfg->eval_every == 0);
        if (due && t->data->val_batches > 0 && validate(t, step, err)) return -1;
        if (due && save_last(t, step, err)) return -1;
        if (cli_stop_requested() || (cfg->stop_at > 0 && step >= cfg->stop_at)) {
            *stopped = step < cfg->steps;
            break;
        }
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------------------------ */

static int setup(trainer_t *t, err_t *err) {
    const trainer_config_t *cfg = t->cfg;
    const size_t n = (size_t)(cfg->B_max * cfg->T_max);
    t->inputs = malloc(n * sizeof *t->inputs);
    t->targets = malloc(n * sizeof *t->targets);
    t->logp = malloc(n * sizeof *t->logp);
    t->dout = malloc(n * sizeof *t->dout);
    if (!t->inputs || !t->targets || !t->logp || !t->dout) return err_setf(err, "out of memory");
    if (gpt_alloc(t->model, cfg->B_max, cfg->T_max, true, err)) return -1;
    t->opt = optim_new(t->model, &cfg->optim, err);
    if (!t->opt) return -1;
    t->sched = (optim_schedule_t){
        .lr = cfg->lr, .lr_min = cfg->lr_min, .warmup = cfg->warmup, .total = cfg->steps};
    t->st = (run_state_t){.shape = {cfg->B_max, cfg->T_max},
                          .seed = cfg->seed,
                          .best_val = INFINITY,
                          .best_step = 0,
                          .initial_val = NAN};
    t->saved_step = -1;
    t->val_step = -1;
    t->res = (trainer_result_t){.status = "done",
                                .loss = NAN,
                                .initial_val_loss = NAN,
                                .val_loss = NAN,
                                .val_step = -1,
                                .best_val_loss = NAN};
    if (snprintf(t->best_dir, sizeof t->best_dir, "%s/%s", cfg->out_dir, BEST_DIR) >=
        (int)sizeof t->best_dir)
        return err_setf(err, "%s: path too long", cfg->out_dir);
    if (cfg->resume) {
        if (state_load(t, err)) return -1;
        t->saved_step = t->opt->step;
        t->res.initial_val_loss = t->st.initial_val;
        if (t->st.best_step > 0) {
            t->res.best_val_loss = t->st.best_val;
            t->res.best_step = t->st.best_step;
        }
    }
    t->res.start_step = t->res.step = t->opt->step;
    if (trainer_mkdirs(cfg->out_dir, err) || cli_install_stop_handler(err)) return -1;
    update_results(t);
    if (cli_run_write(t->run, cfg->out_dir, "running", err)) return -1;
    t->out_written = true;
    return 0;
}

/* After the loop: the final checkpoint (if the last step has none yet), run.json, summary. */
static int finish(trainer_t *t, bool stopped, double t0, err_t *err) {
    const trainer_config_t *cfg = t->cfg;
    t->res.status = stopped ? "stopped" : "done";
    if (t->res.step != t->saved_step && save_last(t, t->res.step, err)) return -1;
    if (!stopped && t->data->val_batches > 0 && t->val_step != t->res.step) {
        t->res.val_loss = trainer_val_loss(t->model, t->data, t->inputs, t->targets, t->logp);
        t->val_step = t->res.val_step = t->res.step;
    }
    t->res.elapsed_s = now_s() - t0;
    t->res.tokens_per_s =
        t->res.elapsed_s > 0 ? (double)t->res.tokens / t->res.elapsed_s : (double)NAN;
    update_results(t);
    if (cli_run_write(t->run, cfg->out_dir, t->res.status, err)) return -1;
    if (t->res.best_step > 0 && access(t->best_dir, F_OK) == 0 &&
        cli_run_write(t->run, t->best_dir, t->res.status, err))
        return -1;
    char extra[96] = "";
    if (t->res.best_step > 0)
        snprintf(extra, sizeof extra, "best val %.4f at step %" PRId64, t->res.best_val_loss,
                 t->res.best_step);
    else if (isfinite(t->res.val_loss))
        snprintf(extra, sizeof extra, "val %.4f", t->res.val_loss);
    cli_progress_finish(&t->progress, extra);
    t->progress_on = false;
    return 0;
}

int trainer_run(const trainer_config_t *cfg, gpt_model_t *model, trainer_data_t *data,
                cli_run_t *run, cli_log_t *log, trainer_result_t *res, err_t *err) {
    trainer_t *t = calloc(1, sizeof *t);
    if (!t) return err_setf(err, "out of memory");
    *t = (trainer_t){.cfg = cfg, .model = model, .data = data, .run = run, .log = log};
    const double t0 = now_s();
    bool stopped = false;
    int rc = setup(t, err);
    if (rc == 0 && !cfg->resume && data->val_batches > 0) {
        rc = validate(t, 0, err); /* the starting point's held-out loss: base vs trained */
        t->res.initial_val_loss = t->st.initial_val = t->res.val_loss;
    }
    if (rc == 0) {
        cli_progress_init(&t->progress, stderr, cfg->prog, t->opt->step, cfg->steps);
        t->progress_on = true;
        rc = train_loop(t, &stopped, err);
    }
    if (rc == 0) rc = finish(t, stopped, t0, err);
    if (rc != 0) {
        if (t->progress_on) cli_progress_finish(&t->progress, NULL);
        if (t->out_written) {
            err_t ignored = ERR_INIT;
            t->res.elapsed_s = now_s() - t0;
            update_results(t);
            json_object_set_new(run->results, "error", json_string(err->msg));
            cli_run_write(run, cfg->out_dir, "failed", &ignored);
        }
    }
    if (res) *res = t->res;
    optim_destroy(&t->opt);
    free(t->inputs);
    free(t->targets);
    free(t->logp);
    free(t->dout);
    free(t);
    return rc;
}

bool trainer_flag(trainer_flags_t *f, const char *prog, int c, const char *arg) {
    const int64_t big = INT64_C(1) << 40;
    switch (c) {
    case TRAINER_O_LR:
        f->lr = cli_arg_f64(prog, "--lr", arg, 0, 1e4);
        return true;
    case TRAINER_O_LR_MIN:
        f->lr_min = cli_arg_f64(prog, "--lr-min", arg, 0, 1e4);
        return true;
    case TRAINER_O_WARMUP:
        f->warmup = cli_arg_i64(prog, "--warmup", arg, 0, big);
        return true;
    case TRAINER_O_WD:
        f->weight_decay = cli_arg_f64(prog, "--weight-decay", arg, 0, 10);
        return true;
    case TRAINER_O_CLIP:
        f->grad_clip = cli_arg_f64(prog, "--grad-clip", arg, 0, 1e30);
        return true;
    case TRAINER_O_EVAL:
        f->eval_every = cli_arg_i64(prog, "--eval-every", arg, 0, big);
        return true;
    case TRAINER_O_RESUME:
        f->resume = true;
        return true;
    case TRAINER_O_OVERWRITE:
        f->overwrite = true;
        return true;
    case TRAINER_O_STOP_AT:
        f->stop_at = cli_arg_i64(prog, "--stop-at", arg, 1, big);
        return true;
    default:
        return false;
    }
}
