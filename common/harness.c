/* common/harness.c: the shared training loop (see harness.h). A step is the caller's hook; the
 * harness wraps it: progress and the "train" event after it, validation and a checkpoint when
 * due, the stop flags. A checkpoint is the save hook's files in OUT, then OUT/train_state.bin,
 * then OUT/run.json, each atomic; train_state.bin carries a hash of the parameters it belongs
 * to, so a crash between two of those writes is detected by --resume instead of silently
 * mixing two steps. */
#include "harness.h" /* own header first: proves it compiles on its own */
#include "dist.h"
#include "fs.h"
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

/* train_state.bin besides the optimizers' and the data position's sections. */
typedef struct {
    uint64_t seed;        /* --seed */
    uint64_t params_hash; /* hash of every model's parameters written with this state */
    double best_val;      /* best metric so far (±INFINITY = none yet) */
    int64_t best_step;    /* its step (0 = none) */
    int64_t saved_step;   /* step of this checkpoint */
    double initial_val;   /* metric before the first step (NAN = none) */
} run_state_t;
#define RUN_STATE_SECTIONS 6

typedef struct {
    char name[32];          /* "" or the section prefix ("value") */
    gpt_model_t *model;     /* borrowed */
    optim_t *opt;           /* owned */
    optim_schedule_t sched; /* peak and floor of this model; warmup and total the run's */
    double grad_clip;       /* 0 = off */
    double last_norm;       /* of the last update (NAN = none yet) */
    double last_lr;         /* of the last update (NAN = none yet) */
    double weight;          /* MPI: this rank's weight of the next update (harness_grad_weight) */
    bool weighted;          /* weight was given for the next update */
    bool summed;            /* MPI: the next update sums the ranks' gradients as they are */
    char sec_name[OPTIM_NUM_SECTIONS][80]; /* "value.adam.m", ... */
} hmodel_t;

#define MAX_SECTIONS                                                                               \
    (HARNESS_MAX_MODELS * OPTIM_NUM_SECTIONS + RUN_STATE_SECTIONS + HARNESS_MAX_STATE)

struct harness {
    harness_config_t cfg;
    harness_args_t *args; /* cfg.args */
    hmodel_t models[HARNESS_MAX_MODELS];
    int nmodels;
    cli_run_t run;
    cli_log_t *log;
    run_state_t st;
    cli_progress_t progress;
    bool progress_on;   /* progress initialised (finish it before returning) */
    bool out_written;   /* run.json "running" is in OUT: a failure is recorded there */
    bool lead;          /* rank 0: the one that writes OUT, the log and the progress line */
    int64_t step;       /* the step running (in the hook) or the last one done */
    int64_t saved_step; /* last step checkpointed into OUT by this process or before (-1) */
    int64_t val_step;   /* last step validated (-1) */
    harness_result_t res;
    char key_val[64], key_best[64], key_init[64]; /* "val_loss", "best_val_loss", ... */
    char path[PATH_CAP];                          /* scratch for file names */
    char best_dir[PATH_CAP];
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- settings ----------------------------------------------------------------------------- */

static int nrows(const harness_args_t *a) {
    return a->nsettings + HARNESS_NSHARED;
}

static harness_setting_t *row(harness_args_t *a, int i) {
    return i < a->nsettings ? &a->settings[i] : &a->shared[i - a->nsettings];
}

static harness_value_t value_get(const harness_setting_t *s) {
    harness_value_t v = {0};
    switch (s->kind) {
    case HARNESS_KIND_I64:
        v.i = *(const int64_t *)s->value;
        break;
    case HARNESS_KIND_U64:
        v.u = *(const uint64_t *)s->value;
        break;
    case HARNESS_KIND_F64:
        v.f = *(const double *)s->value;
        break;
    case HARNESS_KIND_STR:
        v.s = *(const char *const *)s->value;
        break;
    case HARNESS_KIND_BOOL:
        v.b = *(const bool *)s->value;
        break;
    }
    return v;
}

static void value_set(const harness_setting_t *s, harness_value_t v) {
    switch (s->kind) {
    case HARNESS_KIND_I64:
        *(int64_t *)s->value = v.i;
        break;
    case HARNESS_KIND_U64:
        *(uint64_t *)s->value = v.u;
        break;
    case HARNESS_KIND_F64:
        *(double *)s->value = v.f;
        break;
    case HARNESS_KIND_STR:
        *(const char **)s->value = v.s;
        break;
    case HARNESS_KIND_BOOL:
        *(bool *)s->value = v.b;
        break;
    }
}

static bool value_eq(harness_kind_t kind, harness_value_t x, harness_value_t y) {
    switch (kind) {
    case HARNESS_KIND_I64:
        return x.i == y.i;
    case HARNESS_KIND_U64:
        return x.u == y.u;
    case HARNESS_KIND_F64:
        return x.f == y.f; /* exact: a resume must be bit for bit */
    case HARNESS_KIND_STR:
        return (!x.s && !y.s) || (x.s && y.s && !strcmp(x.s, y.s));
    case HARNESS_KIND_BOOL:
        return x.b == y.b;
    }
    return false;
}

static json_t *value_json(harness_kind_t kind, harness_value_t v) {
    switch (kind) {
    case HARNESS_KIND_I64:
        return json_integer((json_int_t)v.i);
    case HARNESS_KIND_U64:
        return json_integer((json_int_t)v.u);
    case HARNESS_KIND_F64:
        return cli_json_number(v.f);
    case HARNESS_KIND_STR:
        return v.s ? json_string(v.s) : json_null();
    case HARNESS_KIND_BOOL:
        return json_boolean(v.b);
    }
    return json_null();
}

/* A recorded value of kind; -1 when j has another type. Strings point into j. */
static int value_from_json(harness_kind_t kind, const json_t *j, harness_value_t *v) {
    switch (kind) {
    case HARNESS_KIND_I64:
        if (!json_is_integer(j)) return -1;
        v->i = (int64_t)json_integer_value(j);
        return 0;
    case HARNESS_KIND_U64:
        if (!json_is_integer(j) || json_integer_value(j) < 0) return -1;
        v->u = (uint64_t)json_integer_value(j);
        return 0;
    case HARNESS_KIND_F64:
        if (!json_is_number(j)) return -1;
        v->f = json_number_value(j);
        return 0;
    case HARNESS_KIND_STR:
        if (!json_is_string(j) && !json_is_null(j)) return -1;
        v->s = json_is_string(j) ? json_string_value(j) : NULL;
        return 0;
    case HARNESS_KIND_BOOL:
        if (!json_is_boolean(j)) return -1;
        v->b = json_is_true(j);
        return 0;
    }
    return -1;
}

/* "--batch 8", "--whiten-rewards", "no --val": a value as a command line would give it. */
static void value_format(char *buf, size_t size, const harness_setting_t *s, harness_value_t v) {
    switch (s->kind) {
    case HARNESS_KIND_I64:
        snprintf(buf, size, "--%s %" PRId64, s->flag, v.i);
        break;
    case HARNESS_KIND_U64:
        snprintf(buf, size, "--%s %" PRIu64, s->flag, v.u);
        break;
    case HARNESS_KIND_F64:
        snprintf(buf, size, "--%s %.15g", s->flag, v.f);
        break;
    case HARNESS_KIND_STR:
        if (v.s)
            snprintf(buf, size, "--%s %s", s->flag, v.s);
        else
            snprintf(buf, size, "no --%s", s->flag);
        break;
    case HARNESS_KIND_BOOL:
        snprintf(buf, size, v.b ? "--%s" : "no --%s", s->flag);
        break;
    }
}

static bool json_array_has(const json_t *arr, const char *s) {
    size_t i;
    const json_t *x;
    json_array_foreach(arr, i, x) {
        if (json_is_string(x) && !strcmp(json_string_value(x), s)) return true;
    }
    return false;
}

int harness_resume_settings(harness_args_t *a, err_t *err) {
    char path[PATH_CAP];
    if (snprintf(path, sizeof path, "%s/run.json", a->out) >= (int)sizeof path)
        return err_setf(err, "%s: path too long", a->out);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) return err_setf(err, "%s: cannot read the run to resume: %s", path, jerr.text);
    const json_t *set = json_object_get(doc, "settings"),
                 *defaults = json_object_get(doc, "defaults");
    int rc = 0;
    if (!json_is_object(set) || !json_is_array(defaults))
        rc = err_setf(err, "%s: no \"settings\" and \"defaults\" to resume from", path);
    /* check everything first: nothing changes unless the whole run can be restored */
    for (int i = 0; rc == 0 && i < nrows(a); i++) {
        const harness_setting_t *s = row(a, i);
        if (!s->flag || (s->runtime && s->given)) continue;
        harness_value_t rec;
        const json_t *j = json_object_get(set, s->key);
        if (!j) {
            rc = err_setf(err, "%s: settings has no \"%s\" (--%s)", path, s->key, s->flag);
        } else if (value_from_json(s->kind, j, &rec)) {
            rc = err_setf(err, "%s: settings.%s: not a value of --%s", path, s->key, s->flag);
        } else if (s->given && !s->runtime && !value_eq(s->kind, value_get(s), rec)) {
            char now[256], then[256];
            value_format(now, sizeof now, s, value_get(s));
            value_format(then, sizeof then, s, rec);
            err_setf(err, "%s differs from the run being resumed (%s in %s)", now, then, path);
            rc = HARNESS_ECONFLICT;
        }
    }
    if (rc) {
        json_decref(doc);
        return rc;
    }
    for (int i = 0; i < nrows(a); i++) {
        harness_setting_t *s = row(a, i);
        if (!s->flag || (s->runtime && s->given)) continue; /* given again: this value */
        s->defaulted = json_array_has(defaults, s->key);
        harness_value_t rec;
        value_from_json(s->kind, json_object_get(set, s->key), &rec);
        /* a default is derived again from the restored settings, as the first run derived it */
        value_set(s, s->defaulted ? s->def : rec);
    }
    json_decref(a->resumed);
    a->resumed = doc; /* restored strings point into it */
    return 0;
}

void harness_args_release(harness_args_t *a) {
    json_decref(a->resumed);
    a->resumed = NULL;
}

/* getopt codes: the harness's own flags in their range, settings rows one code each in theirs */
enum { O_OUT = CLI_OPTS_TRAINER, O_RESUME, O_OVERWRITE, O_STOP_AT, O_ROW = CLI_OPTS_SETTINGS };

static void shared_rows(harness_args_t *a) {
    const double big = (double)(INT64_C(1) << 40);
    harness_setting_t rows[HARNESS_NSHARED] = {
        HARNESS_INFO_STR("out", &a->out),
        HARNESS_F64("lr", "lr", &a->lr, 0, 1e4),
        HARNESS_F64("lr-min", "lr_min", &a->lr_min, 0, 1e4),
        HARNESS_I64("warmup", "warmup", &a->warmup, 0, big),
        HARNESS_F64("weight-decay", "weight_decay", &a->weight_decay, 0, 10),
        HARNESS_F64("grad-clip", "grad_clip", &a->grad_clip, 0, 1e30),
        HARNESS_I64("eval-every", "eval_every", &a->eval_every, 0, big),
        HARNESS_U64("seed", "seed", &a->common.seed, 0, (double)INT64_MAX), /* cli parses it */
    };
    memcpy(a->shared, rows, sizeof rows);
}

/* A range bound as an integer; a bound past int64's range (2^63 as a double) saturates. */
static int64_t bound_i64(double x) {
    if (x >= 9223372036854775807.0) return INT64_MAX;
    if (x <= -9223372036854775807.0) return INT64_MIN;
    return (int64_t)x;
}

/* Stores the value of row s from arg (a bad one is a usage error, exit 2). */
static void parse_row(harness_setting_t *s, const char *prog, const char *arg) {
    char flag[80];
    snprintf(flag, sizeof flag, "--%s", s->flag);
    harness_value_t v = {0};
    switch (s->kind) {
    case HARNESS_KIND_I64:
        v.i = cli_arg_i64(prog, flag, arg, bound_i64(s->min), bound_i64(s->max));
        break;
    case HARNESS_KIND_U64:
        v.u = (uint64_t)cli_arg_i64(prog, flag, arg, bound_i64(s->min), bound_i64(s->max));
        break;
    case HARNESS_KIND_F64:
        v.f = cli_arg_f64(prog, flag, arg, s->min, s->max);
        break;
    case HARNESS_KIND_STR:
        if (!arg[0]) cli_usage_error(prog, "%s: expected a value", flag);
        v.s = arg;
        break;
    case HARNESS_KIND_BOOL:
        v.b = true;
        break;
    }
    value_set(s, v);
    s->given = true;
}

void harness_parse(harness_args_t *a, const char *prog, const char *help, int argc, char **argv,
                   harness_setting_t *settings, int nsettings) {
    a->argc = argc;
    a->argv = argv;
    a->settings = settings;
    a->nsettings = nsettings;
    shared_rows(a);
    const int n = nrows(a), seed_row = n - 1;
    if (n > CLI_OPTS_RANGE) cli_die(prog, "%d settings: at most %d", n, CLI_OPTS_RANGE);
    struct option *lo = calloc((size_t)n + 9, sizeof *lo);
    if (!lo) cli_die(prog, "out of memory");
    int k = 0;
    for (int i = 0; i < n; i++) {
        harness_setting_t *s = row(a, i);
        s->def = value_get(s);
        s->given = s->defaulted = false;
        if (!s->flag || i == seed_row) continue;
        lo[k++] =
            (struct option){s->flag, s->kind == HARNESS_KIND_BOOL ? no_argument : required_argument,
                            NULL, O_ROW + i};
    }
    const struct option fixed[] = {{"out", required_argument, NULL, O_OUT},
                                   {"resume", no_argument, NULL, O_RESUME},
                                   {"overwrite", no_argument, NULL, O_OVERWRITE},
                                   {"stop-at", required_argument, NULL, O_STOP_AT},
                                   CLI_COMMON_LONGOPTS};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) lo[k++] = fixed[i];
    cli_args_t args;
    cli_args_init(&args, prog, argc, argv, lo);
    int c;
    while ((c = cli_args_next(&args)) != -1) {
        const char *arg = args.arg;
        if (c >= O_ROW && c < O_ROW + n) {
            parse_row(row(a, c - O_ROW), prog, arg);
        } else if (c == O_OUT) {
            if (!arg[0]) cli_usage_error(prog, "--out: expected a directory");
            a->out = arg;
        } else if (c == O_RESUME) {
            a->resume = true;
        } else if (c == O_OVERWRITE) {
            a->overwrite = true;
        } else if (c == O_STOP_AT) {
            a->stop_at = cli_arg_i64(prog, "--stop-at", arg, 1, INT64_C(1) << 40);
        } else {
            cli_usage_error(prog, "unexpected option");
        }
    }
    a->common = args.common;
    row(a, seed_row)->given = a->common.seed_given;
    free(lo);
    if (a->common.help) {
        fputs(help, stdout);
        fputs(CLI_COMMON_HELP, stdout);
        exit(0);
    }
    cli_no_positional(prog, argc, argv);
    cli_require(prog, "--out", a->out);
    if (a->resume && a->overwrite)
        cli_usage_error(prog, "--resume and --overwrite exclude each other");
    for (int i = 0; i < n; i++) row(a, i)->defaulted = row(a, i)->flag && !row(a, i)->given;
    err_t err = ERR_INIT;
    if (dist_init(&err)) cli_die(prog, "%s", err.msg); /* under mpirun: join the job */
    if (!a->resume) return;
    const int rc = harness_resume_settings(a, &err);
    if (rc == HARNESS_ECONFLICT) cli_usage_error(prog, "%s", err.msg);
    if (rc) cli_die(prog, "%s", err.msg);
}

/* run.json "settings" from every row, "defaults" the keys left at the command's default. */
static int record_settings(harness_t *h, err_t *err) {
    harness_args_t *a = h->args;
    json_t *defaults = json_array();
    int bad = !defaults || json_object_set_new(h->run.doc, "defaults", defaults);
    for (int i = 0; !bad && i < nrows(a); i++) {
        const harness_setting_t *s = row(a, i);
        bad = json_object_set_new(h->run.settings, s->key, value_json(s->kind, value_get(s)));
        if (!bad && s->defaulted) bad = json_array_append_new(defaults, json_string(s->key));
    }
    return bad ? err_setf(err, "run.json: cannot record the settings (out of memory?)") : 0;
}

/* ---- output directory --------------------------------------------------------------------- */

static bool file_exists(const char *dir, const char *name) {
    char p[PATH_CAP];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static int unlink_in(const char *dir, const char *name, err_t *err) {
    char p[PATH_CAP + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (unlink(p) != 0 && errno != ENOENT)
        return err_setf(err, "%s: cannot remove: %s", p, strerror(errno));
    return 0;
}

int harness_prepare_out(const harness_args_t *a, err_t *err) {
    const char *out = a->out;
    if (a->resume) {
        if (!file_exists(out, STATE_FILE) || !file_exists(out, "model.safetensors"))
            return err_setf(err, "%s: no checkpoint to resume (model.safetensors and %s)", out,
                            STATE_FILE);
        return 0;
    }
    if (dist_rank() != 0) return 0; /* rank 0 alone writes OUT (which may not be shared) */
    if (!a->overwrite && (file_exists(out, "model.safetensors") || file_exists(out, STATE_FILE)))
        return err_setf(err,
                        "%s already holds a checkpoint: --resume continues it, --overwrite "
                        "replaces it",
                        out);
    static const char *const stale[] = {"config.json", "model.safetensors", "vocab.json",
                                        "merges.txt", "run.json"};
    char best[PATH_CAP];
    snprintf(best, sizeof best, "%s/%s", out, BEST_DIR);
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++)
        if (unlink_in(best, stale[i], err)) return -1;
    /* the old checkpoint goes now, so a run that fails before its first checkpoint cannot
     * leave the old model next to the new run.json (the tokenizer files are rewritten) */
    static const char *const old[] = {STATE_FILE, "model.safetensors", "config.json"};
    for (size_t i = 0; a->overwrite && i < sizeof old / sizeof old[0]; i++)
        if (unlink_in(out, old[i], err)) return -1;
    return 0;
}

/* ---- models and updates ------------------------------------------------------------------- */

harness_optim_t harness_optim_from_args(const harness_args_t *a) {
    harness_optim_t o = {.adam = optim_config_default(),
                         .lr = a->lr,
                         .lr_min = a->lr_min,
                         .grad_clip = a->grad_clip};
    o.adam.weight_decay = a->weight_decay;
    return o;
}

int harness_add_model(harness_t *h, const char *name, gpt_model_t *model,
                      const harness_optim_t *opt, err_t *err) {
    if (h->nmodels == HARNESS_MAX_MODELS)
        return err_setf(err, "more than %d models to optimize", HARNESS_MAX_MODELS);
    if (!model->grads_mem) return err_setf(err, "%s: the model has no gradients (gpt_alloc)", name);
    const harness_optim_t o = opt ? *opt : harness_optim_from_args(h->args);
    hmodel_t *m = &h->models[h->nmodels];
    *m = (hmodel_t){.model = model, .grad_clip = o.grad_clip, .last_norm = NAN, .last_lr = NAN};
    if (snprintf(m->name, sizeof m->name, "%s", name) >= (int)sizeof m->name)
        return err_setf(err, "%s: model name too long", name);
    m->sched = (optim_schedule_t){
        .lr = o.lr, .lr_min = o.lr_min, .warmup = h->args->warmup, .total = h->cfg.steps};
    if (!(m->opt = optim_new(model, &o.adam, err))) return -1;
    return h->nmodels++;
}

/* The message for a step that went non-finite, naming what is left on disk. */
static int nonfinite_error(const harness_t *h, const char *what, double x, err_t *err) {
    const char *kind = isnan(x) ? "NaN" : "infinite";
    if (h->saved_step > 0)
        return err_setf(err,
                        "step %" PRId64 ": %s is %s; stopped without saving it: the last good "
                        "checkpoint (step %" PRId64 ") is intact in %s (try a lower --lr)",
                        h->step, what, kind, h->saved_step, h->args->out);
    return err_setf(err,
                    "step %" PRId64 ": %s is %s; stopped before any checkpoint was saved (try a "
                    "lower --lr)",
                    h->step, what, kind);
}

void harness_grad_weight(harness_t *h, int i, double weight) {
    if (i < 0 || i >= h->nmodels) return;
    h->models[i].weight = weight;
    h->models[i].weighted = true;
}

void harness_grad_sum(harness_t *h, int i) {
    if (i < 0 || i >= h->nmodels) return;
    h->models[i].summed = true;
}

/* MPI: the gradient of the global mean from every rank's local one: each rank scales its slab
 * by weight_r / Σ weight (1/size without weights), then one fp32 allreduce sums them. */
static void reduce_grads(hmodel_t *m) {
    if (m->summed) { /* each rank's slab is already its part of the global mean */
        dist_allreduce_f32(m->model->grads_mem, (size_t)m->model->num_params, 1.0f);
        return;
    }
    const int P = dist_size();
    double w[1] = {m->weighted ? m->weight : 1.0};
    const double mine = w[0];
    dist_sum_f64(w, 1);
    const float scale = w[0] > 0 ? (float)(mine / w[0]) : 1.0f / (float)P;
    float *g = m->model->grads_mem;
    const size_t n = (size_t)m->model->num_params;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n; k++) g[k] *= scale;
    dist_allreduce_f32(g, n, 1.0f);
}

int harness_update(harness_t *h, int i, err_t *err) {
    if (i < 0 || i >= h->nmodels) return err_setf(err, "harness_update: no model %d", i);
    hmodel_t *m = &h->models[i];
    gpt_model_t *model = m->model;
    if (dist_size() > 1) reduce_grads(m);
    m->weighted = m->summed = false;
    m->last_norm = optim_clip_grad_norm(m->opt, model->grads_mem, m->grad_clip);
    if (!isfinite(m->last_norm)) {
        char what[64];
        snprintf(what, sizeof what, "%s%sgradient norm", m->name, m->name[0] ? " " : "");
        return nonfinite_error(h, what, m->last_norm, err);
    }
    m->last_lr = optim_lr(&m->sched, h->step - 1); /* the schedule counts steps from 0 */
    optim_step(m->opt, model->params_mem, model->grads_mem, m->last_lr);
    return 0;
}

double harness_grad_norm(const harness_t *h, int i) {
    return i >= 0 && i < h->nmodels ? h->models[i].last_norm : (double)NAN;
}

double harness_lr(const harness_t *h, int i) {
    return i >= 0 && i < h->nmodels ? h->models[i].last_lr : (double)NAN;
}

int64_t harness_step(const harness_t *h) {
    return h->step;
}

json_t *harness_results(harness_t *h) {
    return h->run.results;
}

cli_log_t *harness_log(harness_t *h) {
    return h->log;
}

void harness_step_figure(harness_step_t *out, const char *name, double value) {
    if (out->nfigures < HARNESS_MAX_FIGURES)
        out->figures[out->nfigures++] = (harness_figure_t){name, value};
}

/* ---- train_state.bin ---------------------------------------------------------------------- */

/* FNV-1a over 64-bit words, chained over the models in order: not cryptographic, only "are
 * these the same parameters". */
static uint64_t params_hash(const harness_t *h) {
    uint64_t x = 1469598103934665603ULL;
    for (int k = 0; k < h->nmodels; k++) {
        const uint8_t *p = (const uint8_t *)h->models[k].model->params_mem;
        const size_t n = (size_t)h->models[k].model->num_params * sizeof(float);
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            x = (x ^ w) * 1099511628211ULL;
        }
        for (; i < n; i++) x = (x ^ p[i]) * 1099511628211ULL;
    }
    return x;
}

/* Lists every section (optimizers, run state, data position) into sec; returns the count. */
static int state_sections(harness_t *h, ckpt_section_t *sec) {
    int n = 0;
    for (int k = 0; k < h->nmodels; k++) {
        hmodel_t *m = &h->models[k];
        optim_sections(m->opt, sec + n);
        for (int j = 0; j < OPTIM_NUM_SECTIONS && m->name[0]; j++) {
            snprintf(m->sec_name[j], sizeof m->sec_name[j], "%s.%s", m->name, sec[n + j].name);
            sec[n + j].name = m->sec_name[j];
        }
        n += OPTIM_NUM_SECTIONS;
    }
    run_state_t *s = &h->st;
    sec[n++] = (ckpt_section_t){"harness.seed", &s->seed, sizeof s->seed};
    sec[n++] = (ckpt_section_t){"harness.params_hash", &s->params_hash, sizeof s->params_hash};
    sec[n++] = (ckpt_section_t){"harness.best_val", &s->best_val, sizeof s->best_val};
    sec[n++] = (ckpt_section_t){"harness.best_step", &s->best_step, sizeof s->best_step};
    sec[n++] = (ckpt_section_t){"harness.saved_step", &s->saved_step, sizeof s->saved_step};
    sec[n++] = (ckpt_section_t){"harness.initial_val", &s->initial_val, sizeof s->initial_val};
    for (int i = 0; i < h->cfg.nstate; i++) sec[n++] = h->cfg.state[i];
    return n;
}

/* Loads OUT/train_state.bin and checks it belongs to this run and to the loaded models. */
static int state_load(harness_t *h, err_t *err) {
    ckpt_section_t sec[MAX_SECTIONS];
    const int n = state_sections(h, sec);
    snprintf(h->path, sizeof h->path, "%s/%s", h->args->out, STATE_FILE);
    if (ckpt_state_load(h->path, sec, n, err)) return -1;
    const run_state_t *s = &h->st;
    if (s->seed != h->args->common.seed)
        return err_setf(err, "%s: written by a run with --seed %" PRIu64 ", this one has %" PRIu64,
                        h->path, s->seed, h->args->common.seed);
    if (s->params_hash != params_hash(h))
        return err_setf(err,
                        "%s: does not belong to the model in %s (a checkpoint write was "
                        "interrupted); the directory cannot be resumed",
                        h->path, h->args->out);
    if (s->saved_step > h->cfg.steps)
        return err_setf(err, "%s: already at step %" PRId64 ", past --steps %" PRId64, h->path,
                        s->saved_step, h->cfg.steps);
    h->step = s->saved_step;
    if (h->cfg.hooks.restore && h->cfg.hooks.restore(h->cfg.hooks.ctx, err)) return -1;
    return 0;
}

/* ---- run.json ----------------------------------------------------------------------------- */

/* Copies the figures so far into run.json's "results". */
static void update_results(harness_t *h) {
    const harness_result_t *r = &h->res;
    json_t *o = h->run.results;
    json_object_set_new(o, "step", json_integer(r->step));
    json_object_set_new(o, "steps", json_integer(h->cfg.steps));
    json_object_set_new(o, "start_step", json_integer(r->start_step));
    json_object_set_new(o, "loss", cli_json_number(r->loss));
    json_object_set_new(o, h->key_init, cli_json_number(r->initial_val));
    json_object_set_new(o, h->key_val, cli_json_number(r->val));
    json_object_set_new(o, "val_step", r->val_step >= 0 ? json_integer(r->val_step) : json_null());
    json_object_set_new(o, h->key_best, cli_json_number(r->best_val));
    json_object_set_new(o, "best_step",
                        r->best_step > 0 ? json_integer(r->best_step) : json_null());
    json_object_set_new(o, "tokens", json_integer(r->tokens));
    json_object_set_new(o, "tokens_per_s", cli_json_number(r->tokens_per_s));
    if (dist_size() > 1 && r->step > r->start_step) /* rank 0's wait in the gradient allreduce */
        json_object_set_new(
            o, "allreduce_ms_per_step",
            cli_json_number(dist_comm_seconds() * 1e3 / (double)(r->step - r->start_step)));
}

/* ---- checkpoints -------------------------------------------------------------------------- */

/* OUT/best: the models and run.json (no optimizer state: it is for use, not for resuming). */
static int save_best(harness_t *h, err_t *err) {
    if (fs_mkdirs(h->best_dir, err) || h->cfg.hooks.save(h->cfg.hooks.ctx, h->best_dir, err))
        return -1;
    update_results(h);
    return cli_run_write(&h->run, h->best_dir, "running", err);
}

/* MPI: the parameters' checksum on every rank against rank 0's (they must be bit-identical:
 * the same reduced gradient, the same update); logged as a "dist" event and noted on the
 * progress line. A difference fails the run before anything is written. */
static int check_ranks(harness_t *h, uint64_t hash, err_t *err) {
    if (dist_size() <= 1) return 0;
    if (dist_check_same(hash, "parameters", err))
        return err_prefixf(err, "step %" PRId64 ": ", h->step);
    char hex[24];
    snprintf(hex, sizeof hex, "0x%016" PRIx64, hash);
    if (h->progress_on)
        cli_progress_note(&h->progress, "step %" PRId64 ": parameters identical on %d ranks (%s)",
                          h->step, dist_size(), hex);
    return cli_log_event(h->log, err, "dist", "{s:I, s:i, s:s, s:b}", "step", (json_int_t)h->step,
                         "ranks", dist_size(), "params_checksum", hex, "same", 1);
}

/* OUT: the models, then train_state.bin (with the parameters' hash), then run.json. Rank 0
 * writes; every rank checks its parameters against rank 0's first. */
static int save_last(harness_t *h, err_t *err) {
    const char *out = h->args->out;
    const uint64_t hash = params_hash(h);
    if (check_ranks(h, hash, err)) return -1;
    h->saved_step = h->step;
    if (!h->lead) return 0;
    if (h->cfg.hooks.save(h->cfg.hooks.ctx, out, err)) return -1;
    h->st.params_hash = hash;
    h->st.saved_step = h->step;
    ckpt_section_t sec[MAX_SECTIONS];
    const int n = state_sections(h, sec);
    snprintf(h->path, sizeof h->path, "%s/%s", out, STATE_FILE);
    if (ckpt_state_save(h->path, sec, n, err)) return -1;
    update_results(h);
    return cli_run_write(&h->run, out, "running", err);
}

static bool better(const harness_t *h, double val) {
    return h->cfg.higher_better ? val > h->st.best_val : val < h->st.best_val;
}

/* The metric at the current step; a new best goes to OUT/best. */
static int validate(harness_t *h, err_t *err) {
    double val = NAN;
    if (h->cfg.hooks.validate(h->cfg.hooks.ctx, h, &val, err)) return -1;
    const int64_t step = h->step;
    h->val_step = h->res.val_step = step;
    h->res.val = val;
    const bool best = step > 0 && isfinite(val) && better(h, val);
    if (best) {
        h->st.best_val = h->res.best_val = val;
        h->st.best_step = h->res.best_step = step;
        if (h->lead && save_best(h, err)) return -1;
    }
    if (h->progress_on)
        cli_progress_note(&h->progress, "step %" PRId64 ": val %s %.4f%s", step, h->cfg.metric, val,
                          best ? " (best: saved to best/)" : "");
    return cli_log_event(h->log, err, "val", "{s:I, s:o, s:b}", "step", (json_int_t)step,
                         h->cfg.metric, cli_json_number(val), "best", best);
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* The "train" event: step, loss, lr, grad_norm, tokens, other models' lr and norm, figures. */
static int log_step(harness_t *h, const harness_step_t *o, double lr, err_t *err) {
    if (!h->log) return 0;
    json_t *f = json_object();
    if (!f) return err_setf(err, "out of memory");
    json_object_set_new(f, "step", json_integer(h->step));
    json_object_set_new(f, "loss", cli_json_number(o->loss));
    json_object_set_new(f, "lr", cli_json_number(lr));
    json_object_set_new(f, "grad_norm", cli_json_number(harness_grad_norm(h, 0)));
    json_object_set_new(f, "tokens", json_integer(o->tokens));
    char key[96];
    for (int k = 1; k < h->nmodels; k++) {
        snprintf(key, sizeof key, "%s_lr", h->models[k].name);
        json_object_set_new(f, key, cli_json_number(h->models[k].last_lr));
        snprintf(key, sizeof key, "%s_grad_norm", h->models[k].name);
        json_object_set_new(f, key, cli_json_number(h->models[k].last_norm));
    }
    for (int i = 0; i < o->nfigures; i++)
        json_object_set_new(f, o->figures[i].name, cli_json_number(o->figures[i].value));
    const int rc = cli_log_json(h->log, "train", f, err);
    json_decref(f);
    return rc;
}

static void progress_extra(char *buf, size_t size, const harness_t *h, const char *note,
                           double lr) {
    int n = snprintf(buf, size, "%s%slr %.2e", note, note[0] ? "  " : "", lr);
    if (n > 0 && (size_t)n < size && isfinite(h->res.val))
        snprintf(buf + n, size - (size_t)n, "  val %.4f", h->res.val);
}

/* MPI: the step's tokens summed over the ranks, its loss and figures made global (unless the
 * hook did: o->global) and a stop requested on any rank agreed by all (*stop). */
_Static_assert(2 + 3 * (HARNESS_MAX_FIGURES + 1) + 1 <= DIST_MAX_SMALL,
               "reduce_step's vector must fit dist_sum_f64");
static void reduce_step(harness_step_t *o, bool *stop) {
    *stop = cli_stop_requested();
    if (dist_size() <= 1) return;
    double v[DIST_MAX_SMALL];
    int n = 0;
    v[n++] = (double)o->tokens;
    v[n++] = *stop ? 1.0 : 0.0;
    const int nf = o->global ? -1 : o->nfigures; /* -1: nothing to average */
    for (int k = -1; k < nf; k++) {              /* k = -1: the loss, then the figures */
        const double x = k < 0 ? o->loss : o->figures[k].value;
        v[n++] = o->weight * x;
        v[n++] = x;
        v[n++] = isfinite(x) ? 0.0 : 1.0;
    }
    if (!o->global) v[n++] = o->weight;
    dist_sum_f64(v, n);
    o->tokens = (int64_t)v[0];
    *stop = v[1] > 0;
    const double W = o->global ? 0 : v[n - 1];
    for (int k = -1, j = 2; k < nf; k++, j += 3) {
        const double x = v[j + 2] > 0 ? (double)NAN : W != 0 ? v[j] / W : v[j + 1] / dist_size();
        if (k < 0)
            o->loss = x;
        else
            o->figures[k].value = x;
    }
}

/* Steps until done, stopped or failed; *stopped tells which of the first two. */
static int train_loop(harness_t *h, bool *stopped, err_t *err) {
    const int64_t steps = h->cfg.steps, stop_at = h->args->stop_at;
    char extra[96];
    *stopped = stop_at > 0 && h->step >= stop_at && h->step < steps;
    if (*stopped) return 0; /* --stop-at a step already done: nothing to train */
    while (h->step < steps) {
        h->step++;
        const double lr = h->nmodels > 0 ? optim_lr(&h->models[0].sched, h->step - 1) : (double)NAN;
        harness_step_t o = {.loss = NAN};
        if (h->cfg.hooks.step(h->cfg.hooks.ctx, h, h->step, &o, err)) return -1;
        bool stop_req;
        reduce_step(&o, &stop_req);
        if (!isfinite(o.loss)) return nonfinite_error(h, "loss", o.loss, err);
        h->res.step = h->step;
        h->res.loss = o.loss;
        h->res.tokens += o.tokens;
        progress_extra(extra, sizeof extra, h, o.note, lr);
        if (h->progress_on) cli_progress_update(&h->progress, h->step, o.loss, o.tokens, extra);
        if (log_step(h, &o, lr, err)) return -1;
        const int64_t every = h->args->eval_every;
        const bool due = h->step == steps || (every > 0 && h->step % every == 0);
        if (due && h->cfg.hooks.validate && validate(h, err)) return -1;
        if (due && save_last(h, err)) return -1;
        if (stop_req || (stop_at > 0 && h->step >= stop_at)) {
            *stopped = h->step < steps;
            break;
        }
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------------------------ */

harness_t *harness_new(const harness_config_t *cfg, err_t *err) {
    harness_t *h = calloc(1, sizeof *h);
    if (!h) {
        err_setf(err, "out of memory");
        return NULL;
    }
    h->cfg = *cfg;
    h->args = cfg->args;
    const char *metric = cfg->metric ? cfg->metric : "loss";
    h->cfg.metric = metric;
    snprintf(h->key_val, sizeof h->key_val, "val_%s", metric);
    snprintf(h->key_best, sizeof h->key_best, "best_val_%s", metric);
    snprintf(h->key_init, sizeof h->key_init, "initial_val_%s", metric);
    if (snprintf(h->best_dir, sizeof h->best_dir, "%s/%s", h->args->out, BEST_DIR) >=
        (int)sizeof h->best_dir) {
        err_setf(err, "%s: path too long", h->args->out);
        goto fail;
    }
    if (!cfg->hooks.step || !cfg->hooks.save || cfg->nstate > HARNESS_MAX_STATE) {
        err_setf(err, "harness: a step and a save hook are required, %d state sections at most",
                 HARNESS_MAX_STATE);
        goto fail;
    }
    if (cli_run_init(&h->run, cfg->prog, h->args->argc, h->args->argv, &h->args->common, err))
        goto fail;
    h->lead = dist_rank() == 0;
    h->log = h->lead ? cli_log_open(h->args->common.log_path, h->args->resume, err) : NULL;
    if (!h->log && err_isset(err)) goto fail;
    return h;
fail:
    harness_destroy(&h);
    return NULL;
}

void harness_destroy(harness_t **hp) {
    if (!hp || !*hp) return;
    harness_t *h = *hp;
    for (int k = 0; k < h->nmodels; k++) optim_destroy(&h->models[k].opt);
    cli_run_release(&h->run);
    cli_log_close(&h->log);
    free(h);
    *hp = NULL;
}

static int setup(harness_t *h, err_t *err) {
    h->st = (run_state_t){.seed = h->args->common.seed,
                          .best_val = h->cfg.higher_better ? -INFINITY : INFINITY,
                          .initial_val = NAN};
    h->step = 0;
    h->saved_step = -1;
    h->val_step = -1;
    h->res = (harness_result_t){.status = "done",
                                .loss = NAN,
                                .initial_val = NAN,
                                .val = NAN,
                                .val_step = -1,
                                .best_val = NAN};
    if (h->args->resume) {
        if (state_load(h, err)) return -1;
        h->saved_step = h->step;
        h->res.initial_val = h->st.initial_val;
        if (h->st.best_step > 0) {
            h->res.best_val = h->st.best_val;
            h->res.best_step = h->st.best_step;
        }
    }
    h->res.start_step = h->res.step = h->step;
    if (cli_install_stop_handler(err) || record_settings(h, err)) return -1;
    if (json_object_set_new(h->run.results, "ranks", json_integer(dist_size())))
        return err_setf(err, "out of memory");
    if (!h->lead) return 0;
    if (fs_mkdirs(h->args->out, err)) return -1;
    update_results(h);
    if (cli_run_write(&h->run, h->args->out, "running", err)) return -1;
    h->out_written = true;
    return 0;
}

/* After the loop: the final checkpoint (if the last step has none yet), run.json, summary. */
static int finish(harness_t *h, bool stopped, double t0, err_t *err) {
    const char *out = h->args->out;
    h->res.status = stopped ? "stopped" : "done";
    if (h->res.step != h->saved_step && save_last(h, err)) return -1;
    if (!stopped && h->cfg.hooks.validate && h->val_step != h->res.step) {
        if (h->cfg.hooks.validate(h->cfg.hooks.ctx, h, &h->res.val, err)) return -1;
        h->val_step = h->res.val_step = h->res.step;
    }
    h->res.elapsed_s = now_s() - t0;
    h->res.tokens_per_s =
        h->res.elapsed_s > 0 ? (double)h->res.tokens / h->res.elapsed_s : (double)NAN;
    update_results(h);
    if (!h->lead) return 0;
    if (cli_run_write(&h->run, out, h->res.status, err)) return -1;
    if (h->res.best_step > 0 && access(h->best_dir, F_OK) == 0 &&
        cli_run_write(&h->run, h->best_dir, h->res.status, err))
        return -1;
    char extra[96] = "";
    if (h->res.best_step > 0)
        snprintf(extra, sizeof extra, "best val %.4f at step %" PRId64, h->res.best_val,
                 h->res.best_step);
    else if (isfinite(h->res.val))
        snprintf(extra, sizeof extra, "val %.4f", h->res.val);
    cli_progress_finish(&h->progress, extra);
    h->progress_on = false;
    return 0;
}

int harness_run(harness_t *h, harness_result_t *res, err_t *err) {
    const double t0 = now_s();
    bool stopped = false;
    int rc = setup(h, err);
    if (rc == 0 && !h->args->resume && h->cfg.hooks.validate) {
        rc = validate(h, err); /* the starting point's metric: base vs trained */
        h->res.initial_val = h->st.initial_val = h->res.val;
    }
    if (rc == 0) {
        if (h->lead) cli_progress_init(&h->progress, stderr, h->cfg.prog, h->step, h->cfg.steps);
        h->progress_on = h->lead;
        rc = train_loop(h, &stopped, err);
    }
    if (rc == 0) rc = finish(h, stopped, t0, err);
    if (rc != 0) {
        if (dist_size() > 1) err_prefixf(err, "rank %d: ", dist_rank());
        if (h->progress_on) cli_progress_finish(&h->progress, NULL);
        h->progress_on = false;
        if (h->out_written) {
            err_t ignored = ERR_INIT;
            h->res.elapsed_s = now_s() - t0;
            update_results(h);
            json_object_set_new(h->run.results, "error", json_string(err->msg));
            cli_run_write(&h->run, h->args->out, "failed", &ignored);
        }
    }
    if (res) *res = h->res;
    return rc;
}

/* ---- language-model loss ------------------------------------------------------------------ */

int harness_lm_init(harness_lm_t *lm, gpt_model_t *model, int64_t B_max, int64_t T_max,
                    err_t *err) {
    const size_t n = (size_t)(B_max * T_max);
    *lm = (harness_lm_t){.model = model};
    lm->inputs = malloc(n * sizeof *lm->inputs);
    lm->targets = malloc(n * sizeof *lm->targets);
    lm->logp = malloc(n * sizeof *lm->logp);
    lm->dout = malloc(n * sizeof *lm->dout);
    if (!lm->inputs || !lm->targets || !lm->logp || !lm->dout) {
        harness_lm_release(lm);
        return err_setf(err, "out of memory");
    }
    return gpt_alloc(model, B_max, T_max, true, err);
}

void harness_lm_release(harness_lm_t *lm) {
    free(lm->inputs);
    free(lm->targets);
    free(lm->logp);
    free(lm->dout);
    *lm = (harness_lm_t){0};
}

static int64_t count_kept(const int32_t *targets, int64_t n) {
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) kept += targets[i] >= 0;
    return kept;
}

double harness_lm_logprob(harness_lm_t *lm, int64_t B, int64_t T, int64_t *kept) {
    gpt_forward(lm->model, lm->inputs, B, T);
    *kept = lm->kept = count_kept(lm->targets, B * T);
    return gpt_lm_logprobs(lm->model, lm->targets, 1.0f, lm->logp);
}

double harness_lm_backward(harness_lm_t *lm, int64_t B, int64_t T) {
    gpt_model_t *m = lm->model;
    const int64_t N = B * T, kept = lm->kept = count_kept(lm->targets, N);
    gpt_forward(m, lm->inputs, B, T);
    const double sum = gpt_lm_logprobs(m, lm->targets, 1.0f, lm->logp);
    const double loss = kept > 0 ? -sum / (double)kept : 0.0;
    if (!isfinite(loss)) return loss;
    /* loss = -(1/kept) Σ logp, so dloss/dlogp = -1/kept on kept targets */
    const float g = kept > 0 ? (float)(-1.0 / (double)kept) : 0.0f;
    for (int64_t i = 0; i < N; i++) lm->dout[i] = lm->targets[i] >= 0 ? g : 0.0f;
    gpt_zero_grad(m);
    gpt_backward(m, lm->dout);
    return loss;
}

int harness_lm_step(harness_t *h, int i, harness_lm_t *lm, int64_t B, int64_t T,
                    harness_step_t *out, err_t *err) {
    out->tokens = B * T;
    const double local = harness_lm_backward(lm, B, T);
    out->loss = dist_mean(local, (double)lm->kept);
    out->global = true;
    harness_grad_weight(h, i, (double)lm->kept);
    return isfinite(out->loss) ? harness_update(h, i, err) : 0;
}
