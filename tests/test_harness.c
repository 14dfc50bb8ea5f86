/* tests/test_harness.c: the training harness with a tiny random model and an in-memory data
 * hook: exact resume (one model, and two models with several updates a step), the NaN stop
 * (loss and gradient: nothing updated, the last checkpoint's bytes unchanged), Ctrl-C, OUT/best
 * by a lower- and a higher-better metric, and --resume restoring and refusing settings. */
#include "harness.h"
#include "rng.h"
#include <check.h>
#include <ftw.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const gpt_config_t tiny = {
    .vocab_size = 19, .n_positions = 8, .n_layer = 1, .n_head = 2, .n_embd = 8, .ln_eps = 1e-5f};
#define B 2
#define T 6

/* The command under test: its settings, data, hooks. */
typedef struct {
    int64_t steps, batch; /* command settings (batch only recorded and checked) */
    harness_setting_t set[2];
    harness_args_t args;
    gpt_model_t *model, *value; /* value: a second optimized model (PPO-like) or NULL */
    harness_lm_t lm, lm_value;
    rng_t rng;           /* the data position */
    int updates;         /* optimizer updates per step and model */
    int64_t nan_loss_at; /* step whose loss is NaN (0 = never) */
    int64_t nan_grad_at; /* step whose gradient is NaN */
    int nan_grad_model;  /* 0 policy, 1 value */
    int64_t sigint_at;   /* step that raises SIGINT */
    const double *vals;  /* scripted validation metrics (NULL: held-out LM loss) */
    int nval;
    harness_t *h;
    char *argv[32]; /* the command line (run.json keeps a pointer, as to main's argv) */
} cmd_t;

static void fill_batch(cmd_t *c, harness_lm_t *lm) {
    for (int i = 0; i < B * T; i++) lm->inputs[i] = (int32_t)rng_below(&c->rng, 19);
    for (int i = 0; i < B * T; i++) lm->targets[i] = i % 5 == 0 ? -1 : (lm->inputs[i] + 1) % 19;
}

static int step_hook(void *ctx, harness_t *h, int64_t step, harness_step_t *out, err_t *err) {
    cmd_t *c = ctx;
    if (step == c->sigint_at) raise(SIGINT);
    for (int u = 0; u < c->updates; u++) {
        fill_batch(c, &c->lm);
        out->loss = harness_lm_backward(&c->lm, B, T);
        out->tokens += B * T;
        if (step == c->nan_loss_at) out->loss = NAN;
        if (!isfinite(out->loss)) return 0;
        if (step == c->nan_grad_at && c->nan_grad_model == 0) c->model->grads_mem[3] = NAN;
        if (harness_update(h, 0, err)) return -1;
        if (!c->value) continue;
        fill_batch(c, &c->lm_value);
        const double vloss = harness_lm_backward(&c->lm_value, B, T);
        if (step == c->nan_grad_at && c->nan_grad_model == 1) c->value->grads_mem[5] = NAN;
        if (harness_update(h, 1, err)) return -1;
        harness_step_figure(out, "value_loss", vloss);
    }
    return 0;
}

static int validate_hook(void *ctx, harness_t *h, double *metric, err_t *err) {
    cmd_t *c = ctx;
    (void)err;
    if (c->vals) {
        ck_assert_int_lt(c->nval, 8);
        *metric = c->vals[c->nval++];
        return 0;
    }
    (void)h;
    rng_t r;
    rng_seed(&r, 99);
    for (int i = 0; i < B * T; i++) c->lm.inputs[i] = (int32_t)rng_below(&r, 19);
    for (int i = 0; i < B * T; i++) c->lm.targets[i] = (c->lm.inputs[i] + 1) % 19;
    int64_t kept;
    *metric = -harness_lm_logprob(&c->lm, B, T, &kept) / (double)kept;
    return 0;
}

static int save_hook(void *ctx, const char *dir, err_t *err) {
    cmd_t *c = ctx;
    const ckpt_meta_t meta = ckpt_meta_default();
    if (ckpt_save(dir, c->model, &meta, NULL, err)) return -1;
    if (!c->value) return 0;
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/value", dir);
    return ckpt_save(sub, c->value, &meta, NULL, err);
}

/* Parses "t --out DIR" + extra (NULL-terminated) into c's settings, as a command would. */
static void cmd_parse(cmd_t *c, const char *dir, const char *const *extra) {
    char *const head[] = {"t", "--out", (char *)dir, "--lr", "0.01", "--warmup", "2"};
    char **argv = c->argv;
    int argc = 7;
    memcpy(argv, head, sizeof head);
    for (int i = 0; extra && extra[i]; i++) argv[argc++] = (char *)extra[i];
    c->steps = 6;
    c->batch = 8;
    c->args = HARNESS_ARGS_INIT(2);
    harness_setting_t set[2] = {HARNESS_I64("steps", "steps", &c->steps, 1, 1000),
                                HARNESS_I64("batch", "batch", &c->batch, 1, 64)};
    memcpy(c->set, set, sizeof set);
    optind = 0;
    harness_parse(&c->args, "t", "usage: t\n", argc, argv, c->set, 2);
    if (c->args.lr_min < 0) c->args.lr_min = c->args.lr / 10;
}

/* A fresh model, or OUT's on a resume. */
static gpt_model_t *model_for(const cmd_t *c, const char *sub, uint64_t seed) {
    err_t err = ERR_INIT;
    gpt_model_t *m;
    if (c->args.resume) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s%s", c->args.out, sub);
        m = ckpt_load(dir, NULL, &err);
    } else {
        m = gpt_new(&tiny, GPT_HEAD_LM, &err);
        if (m) gpt_init_random(m, seed);
    }
    ck_assert_msg(m, "%s", err.msg);
    return m;
}

/* Runs the command (models from scratch or from OUT); returns harness_run's result. */
static int cmd_run(cmd_t *c, bool two_models, harness_result_t *res, err_t *err) {
    c->model = model_for(c, "", 1);
    c->value = two_models ? model_for(c, "/value", 2) : NULL;
    if (!c->updates) c->updates = 1;
    rng_seed(&c->rng, 7);
    ck_assert_int_eq(harness_lm_init(&c->lm, c->model, B, T, err), 0);
    if (c->value) ck_assert_int_eq(harness_lm_init(&c->lm_value, c->value, B, T, err), 0);
    ck_assert_int_eq(harness_prepare_out(&c->args, err), 0);
    const harness_config_t cfg = {
        .prog = "t",
        .args = &c->args,
        .steps = c->steps,
        .metric = "loss",
        .hooks = {.ctx = c, .step = step_hook, .validate = validate_hook, .save = save_hook},
        .state = {{"data.rng", &c->rng, sizeof c->rng}},
        .nstate = 1,
    };
    c->h = harness_new(&cfg, err);
    ck_assert_msg(c->h, "%s", err->msg);
    ck_assert_int_eq(harness_add_model(c->h, "", c->model, NULL, err), 0);
    if (c->value) {
        harness_optim_t o = harness_optim_from_args(&c->args);
        o.lr *= 3;
        ck_assert_int_eq(harness_add_model(c->h, "value", c->value, &o, err), 1);
    }
    return harness_run(c->h, res, err);
}

static void cmd_release(cmd_t *c) {
    harness_destroy(&c->h);
    harness_lm_release(&c->lm);
    harness_lm_release(&c->lm_value);
    gpt_destroy(&c->model);
    gpt_destroy(&c->value);
    harness_args_release(&c->args);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void tmpdir(char *dir) {
    strcpy(dir, "/tmp/test_harness_XXXXXX");
    ck_assert(mkdtemp(dir));
}

static char *slurp(const char *dir, const char *name, size_t *len) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    ck_assert_msg(f, "%s missing", p);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    char *b = malloc(*len + 1);
    ck_assert(fread(b, 1, *len, f) == *len);
    b[*len] = 0;
    fclose(f);
    return b;
}

static void assert_same_file(const char *a, const char *b, const char *name) {
    size_t la, lb;
    char *x = slurp(a, name, &la), *y = slurp(b, name, &lb);
    ck_assert_msg(la == lb && !memcmp(x, y, la), "%s differs between %s and %s", name, a, b);
    free(x);
    free(y);
}

/* ---- exact resume ------------------------------------------------------------------------- */

/* _i = 0: one model, one update a step; 1: two models, three updates a step (PPO-like). */
START_TEST(test_harness_exact_resume) {
    const bool two = _i == 1;
    char root[64], a[96], b[96];
    tmpdir(root);
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    err_t err = ERR_INIT;
    harness_result_t r;
    cmd_t c = {.updates = two ? 3 : 1};
    cmd_parse(&c, a, NULL);
    ck_assert_msg(cmd_run(&c, two, &r, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(r.status, "done");
    ck_assert_int_eq(r.step, 6);
    gpt_model_t *full = c.model, *full_value = c.value;
    c.model = c.value = NULL;
    cmd_release(&c);

    /* k = 3 steps, then the process "crashes" (everything dropped), then a resume to 6 */
    cmd_t d = {.updates = c.updates};
    cmd_parse(&d, b, (const char *const[]){"--stop-at", "3", NULL});
    ck_assert_msg(cmd_run(&d, two, &r, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(r.status, "stopped");
    ck_assert_int_eq(r.step, 3);
    cmd_release(&d);
    cmd_t e = {.updates = c.updates};
    cmd_parse(&e, b, (const char *const[]){"--resume", NULL});
    ck_assert_int_eq(e.steps, 6);
    ck_assert_msg(cmd_run(&e, two, &r, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(r.start_step, 3);
    ck_assert_int_eq(r.step, 6);
    ck_assert(
        !memcmp(full->params_mem, e.model->params_mem, (size_t)full->num_params * sizeof(float)));
    if (two)
        ck_assert(!memcmp(full_value->params_mem, e.value->params_mem,
                          (size_t)full->num_params * sizeof(float)));
    assert_same_file(a, b, "train_state.bin");
    assert_same_file(a, b, "model.safetensors");
    assert_same_file(a, b, "best/model.safetensors");
    if (two) assert_same_file(a, b, "value/model.safetensors");
    cmd_release(&e);
    gpt_destroy(&full);
    gpt_destroy(&full_value);
    nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

/* ---- NaN stop ----------------------------------------------------------------------------- */

/* _i = 0: the loss at step 3 is NaN; 1: the gradient; 2: the second model's gradient. The
 * run fails naming the last good checkpoint (step 2), whose bytes equal a run stopped at 2,
 * run.json says "failed", and the model in memory is the one on disk (nothing updated). */
START_TEST(test_harness_nan_stops) {
    char root[64], a[96], b[96];
    tmpdir(root);
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    err_t err = ERR_INIT;
    harness_result_t r;
    const bool two = _i == 2;
    cmd_t c = {0};
    cmd_parse(&c, a, (const char *const[]){"--stop-at", "2", NULL});
    ck_assert_int_eq(cmd_run(&c, two, &r, &err), 0);
    cmd_release(&c);

    cmd_t d = {.nan_loss_at = _i == 0 ? 3 : 0, .nan_grad_at = _i ? 3 : 0, .nan_grad_model = two};
    cmd_parse(&d, b, NULL);
    ck_assert_int_eq(cmd_run(&d, two, &r, &err), -1);
    const char *what = _i == 0 ? "step 3: loss is NaN"
                       : two   ? "step 3: value gradient norm is NaN"
                               : "step 3: gradient norm is NaN";
    ck_assert_msg(strstr(err.msg, what), "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "the last good checkpoint (step 2) is intact"), "%s", err.msg);
    assert_same_file(a, b, "model.safetensors");
    assert_same_file(a, b, "train_state.bin");
    if (!two) { /* the policy is updated before the value model's gradient turns NaN */
        err_t e2 = ERR_INIT;
        gpt_model_t *disk = ckpt_load(b, NULL, &e2);
        ck_assert_msg(disk, "%s", e2.msg);
        ck_assert(!memcmp(disk->params_mem, d.model->params_mem,
                          (size_t)disk->num_params * sizeof(float)));
        gpt_destroy(&disk);
    }
    size_t len;
    char *run = slurp(b, "run.json", &len);
    ck_assert_msg(strstr(run, "\"status\": \"failed\""), "%s", run);
    free(run);
    cmd_release(&d);
    nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

/* ---- Ctrl-C ------------------------------------------------------------------------------- */

START_TEST(test_harness_ctrl_c_saves_and_stops) {
    char root[64];
    tmpdir(root);
    err_t err = ERR_INIT;
    harness_result_t r;
    cmd_t c = {.sigint_at = 2};
    cmd_parse(&c, root, (const char *const[]){"--eval-every", "0", NULL});
    ck_assert_msg(cmd_run(&c, false, &r, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(r.status, "stopped");
    ck_assert_int_eq(r.step, 2);
    size_t len;
    char *run = slurp(root, "run.json", &len);
    ck_assert_msg(strstr(run, "\"status\": \"stopped\""), "%s", run);
    ck_assert_msg(strstr(run, "\"step\": 2"), "%s", run);
    free(run);
    gpt_model_t *disk = ckpt_load(root, NULL, &err);
    ck_assert_msg(disk, "%s", err.msg);
    ck_assert(
        !memcmp(disk->params_mem, c.model->params_mem, (size_t)disk->num_params * sizeof(float)));
    gpt_destroy(&disk);
    cmd_release(&c);
    nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

/* ---- best/ by direction ------------------------------------------------------------------- */

/* Metrics at steps 0 (the start: never best), 2, 4, 6: lower-better picks 4, higher-better 2. */
START_TEST(test_harness_best_by_direction) {
    static const double vals[] = {1.0, 3.0, 2.0, 2.5};
    const bool higher = _i == 1;
    char root[64];
    tmpdir(root);
    err_t err = ERR_INIT;
    cmd_t c = {.vals = vals};
    cmd_parse(&c, root, NULL);
    c.model = model_for(&c, "", 1);
    c.updates = 1;
    rng_seed(&c.rng, 7);
    ck_assert_int_eq(harness_lm_init(&c.lm, c.model, B, T, &err), 0);
    const harness_config_t cfg = {
        .prog = "t",
        .args = &c.args,
        .steps = 6,
        .metric = higher ? "accuracy" : "loss",
        .higher_better = higher,
        .hooks = {.ctx = &c, .step = step_hook, .validate = validate_hook, .save = save_hook},
    };
    c.h = harness_new(&cfg, &err);
    ck_assert_msg(c.h, "%s", err.msg);
    ck_assert_int_eq(harness_add_model(c.h, "", c.model, NULL, &err), 0);
    harness_result_t r;
    ck_assert_msg(harness_run(c.h, &r, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(r.best_step, (higher ? 2 : 4));
    ck_assert(r.best_val == (higher ? 3.0 : 2.0));
    ck_assert(r.initial_val == 1.0);
    size_t len;
    char *run = slurp(root, "best/run.json", &len);
    ck_assert_msg(strstr(run, higher ? "\"best_val_accuracy\": 3" : "\"best_val_loss\": 2"), "%s",
                  run);
    free(run);
    cmd_release(&c);
    nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

/* ---- settings on --resume ----------------------------------------------------------------- */

/* A run with --batch 8 (given), --lr 0.01 (given) and lr-min, weight decay ... left at their
 * defaults, stopped at step 2. */
static void stopped_run(const char *dir) {
    err_t err = ERR_INIT;
    harness_result_t r;
    cmd_t c = {0};
    cmd_parse(&c, dir, (const char *const[]){"--batch", "8", "--stop-at", "2", NULL});
    ck_assert_msg(cmd_run(&c, false, &r, &err) == 0, "%s", err.msg);
    cmd_release(&c);
}

START_TEST(test_harness_resume_restores_settings) {
    char root[64];
    tmpdir(root);
    stopped_run(root);
    /* nothing but --out: every setting comes back; defaulted ones stay defaults */
    cmd_t c = {0};
    char *argv[] = {"t", "--out", root, "--resume", "--threads", "1"};
    c.steps = 99, c.batch = 1, c.args = HARNESS_ARGS_INIT(7);
    harness_setting_t set[2] = {HARNESS_I64("steps", "steps", &c.steps, 1, 1000),
                                HARNESS_I64("batch", "batch", &c.batch, 1, 64)};
    optind = 0;
    harness_parse(&c.args, "t", "", 6, argv, set, 2);
    ck_assert_int_eq(c.steps, 99); /* steps was defaulted (6 by cmd_parse's own default) */
    ck_assert_int_eq(c.batch, 8);
    ck_assert(c.args.lr == 0.01);
    ck_assert_int_eq(c.args.warmup, 2);
    ck_assert(c.args.lr_min == -1); /* defaulted: derived again by the command */
    ck_assert_int_eq(c.args.eval_every, 7);
    ck_assert(set[1].given == false && set[1].defaulted == false);
    harness_args_release(&c.args);
    nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

START_TEST(test_harness_resume_refuses_changed_setting) {
    char root[64], want[256];
    tmpdir(root);
    stopped_run(root);
    cmd_t c = {0};
    cmd_parse(&c, root, (const char *const[]){"--batch", "4", NULL}); /* no --resume yet */
    c.args.resume = true;
    err_t err = ERR_INIT;
    ck_assert_int_eq(harness_resume_settings(&c.args, &err), HARNESS_ECONFLICT);
    snprintf(want, sizeof want,
             "--batch 4 differs from the run being resumed (--batch 8 in %s/run.json)", root);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(c.batch, 4); /* nothing restored */
    /* the same value given again is fine; a default given with its value too */
    cmd_t d = {0};
    cmd_parse(&d, root, (const char *const[]){"--batch", "8", "--weight-decay", "0.1", NULL});
    d.args.resume = true;
    err = (err_t)ERR_INIT;
    ck_assert_msg(harness_resume_settings(&d.args, &err) == 0, "%s", err.msg);
    /* the seed is a setting too */
    cmd_t e = {0};
    cmd_parse(&e, root, (const char *const[]){"--seed", "5", NULL});
    e.args.resume = true;
    err = (err_t)ERR_INIT;
    ck_assert_int_eq(harness_resume_settings(&e.args, &err), HARNESS_ECONFLICT);
    ck_assert_msg(strstr(err.msg, "--seed 5 differs"), "%s", err.msg);
    harness_args_release(&c.args);
    harness_args_release(&d.args);
    harness_args_release(&e.args);
    nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

/* A runtime row (a server's endpoint): restored when not given, replaced without a conflict
 * when given again. */
START_TEST(test_harness_resume_runtime_setting) {
    char root[64], path[128];
    tmpdir(root);
    stopped_run(root);
    snprintf(path, sizeof path, "%s/run.json", root);
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    ck_assert_ptr_nonnull(doc);
    json_object_set_new(json_object_get(doc, "settings"), "endpoint", json_string("tcp://a:1"));
    ck_assert_int_eq(json_dump_file(doc, path, 0), 0);
    json_decref(doc);
    for (int given = 0; given < 2; given++) {
        cmd_t c = {0};
        const char *ep = NULL;
        char *argv[] = {"t", "--out", root, "--resume", "--endpoint", "tcp://b:2"};
        c.batch = 1, c.args = HARNESS_ARGS_INIT(7);
        harness_setting_t set[2] = {HARNESS_I64("batch", "batch", &c.batch, 1, 64),
                                    HARNESS_RUNTIME_STR("endpoint", "endpoint", &ep)};
        optind = 0;
        harness_parse(&c.args, "t", "", given ? 6 : 4, argv, set, 2);
        ck_assert_int_eq(c.batch, 8);
        ck_assert_str_eq(ep, given ? "tcp://b:2" : "tcp://a:1");
        harness_args_release(&c.args);
    }
    nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

/* harness_parse itself: a conflict is a usage error, exit 2. */
START_TEST(test_harness_parse_conflict_exits_2) {
    char root[64];
    tmpdir(root);
    stopped_run(root);
    cmd_t c = {0};
    cmd_parse(&c, root, (const char *const[]){"--resume", "--batch", "4", NULL});
}
END_TEST

/* The progress lines of the runs would bury the suite's report: the forked test's stderr goes. */
static void quiet(void) {
    if (!freopen("/dev/null", "w", stderr)) return;
}

Suite *test_harness_suite(void);
Suite *test_harness_suite(void) {
    Suite *s = suite_create("harness");
    TCase *tc = tcase_create("run");
    tcase_add_checked_fixture(tc, quiet, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_harness_exact_resume, 0, 2);
    tcase_add_loop_test(tc, test_harness_nan_stops, 0, 3);
    tcase_add_test(tc, test_harness_ctrl_c_saves_and_stops);
    tcase_add_loop_test(tc, test_harness_best_by_direction, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("settings");
    tcase_add_checked_fixture(tc, quiet, NULL);
    tcase_add_test(tc, test_harness_resume_restores_settings);
    tcase_add_test(tc, test_harness_resume_refuses_changed_setting);
    tcase_add_test(tc, test_harness_resume_runtime_setting);
    tcase_add_exit_test(tc, test_harness_parse_conflict_exits_2, 2);
    suite_add_tcase(s, tc);
    return s;
}
