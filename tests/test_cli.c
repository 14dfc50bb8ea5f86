#include "cli.h"
#include "testutil.h"
#include <cblas.h>
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers */

/* Runs fn(arg) in a child with stdout and stderr sent to a temp file; returns the child's
 * wait status and its output in out. The functions under test exit the process. */
static int run_child(void (*fn)(void *), void *arg, char *out, size_t cap) {
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fileno(tmp), STDOUT_FILENO);
        dup2(fileno(tmp), STDERR_FILENO);
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    rewind(tmp);
    size_t n = fread(out, 1, cap - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return status;
}

static void assert_exit(int status, int code) {
    ck_assert_msg(WIFEXITED(status), "child did not exit normally (status %d)", status);
    ck_assert_int_eq(WEXITSTATUS(status), code);
}

static void die_demo(void *arg) {
    (void)arg;
    cli_die("sft train", "%s:%d: missing \"response\"", "demos.jsonl", 17);
}

static void usage_demo(void *arg) {
    (void)arg;
    cli_usage_error("sft train", "--demos is required");
}

static void warn_demo(void *arg) {
    (void)arg;
    cli_warn("reward", "%d pairs were ties", 3);
}

START_TEST(test_cli_die_usage_warn) {
    char out[1024];
    int st = run_child(die_demo, NULL, out, sizeof out);
    assert_exit(st, 1);
    ck_assert_str_eq(out, "sft: error: demos.jsonl:17: missing \"response\"\n");
    st = run_child(usage_demo, NULL, out, sizeof out);
    assert_exit(st, 2);
    ck_assert_str_eq(out, "sft: error: --demos is required\nTry 'sft train --help'.\n");
    st = run_child(warn_demo, NULL, out, sizeof out);
    assert_exit(st, 0);
    ck_assert_str_eq(out, "reward: warning: 3 pairs were ties\n");
}
END_TEST

/* ---- numbers */

START_TEST(test_cli_parse_i64_strict) {
    static const struct {
        const char *text;
        int64_t min, max, want;
        const char *msg; /* NULL = accepted */
    } cases[] = {
        {"42", 1, 100, 42, NULL},
        {"+7", 0, 10, 7, NULL},
        {"-3", -5, 5, -3, NULL},
        {"9223372036854775807", 0, INT64_MAX, INT64_MAX, NULL},
        {"", 1, 100, 0, "--steps: expected an integer, got ''"},
        {"12x", 1, 100, 0, "--steps: expected an integer, got '12x'"},
        {" 12", 1, 100, 0, "--steps: expected an integer, got ' 12'"},
        {"1e3", 1, 10000, 0, "--steps: expected an integer, got '1e3'"},
        {"3.0", 1, 100, 0, "--steps: expected an integer, got '3.0'"},
        {"0", 1, INT64_MAX, 0, "--steps: must be at least 1, got 0"},
        {"101", 1, 100, 0, "--steps: must be in [1, 100], got 101"},
        {"99999999999999999999", 1, INT64_MAX, 0,
         "--steps: must be at least 1, got 99999999999999999999"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err_t err = ERR_INIT;
        int64_t v = -999;
        int rc = cli_parse_i64("--steps", cases[i].text, cases[i].min, cases[i].max, &v, &err);
        if (!cases[i].msg) {
            ck_assert_msg(rc == 0, "'%s': %s", cases[i].text, err.msg);
            ck_assert_int_eq(v, cases[i].want);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_int_eq(v, -999); /* untouched on error */
            ck_assert_str_eq(err.msg, cases[i].msg);
        }
    }
}
END_TEST

START_TEST(test_cli_parse_f64_strict) {
    static const struct {
        const char *text;
        double want;
        const char *msg;
    } cases[] = {
        {"3e-4", 3e-4, NULL},
        {"0.02", 0.02, NULL},
        {"1", 1.0, NULL},
        {"1e-400", 0.0, NULL}, /* underflow to 0 is a number, not an error */
        {"fast", 0, "--lr: expected a number, got 'fast'"},
        {"0.1,", 0, "--lr: expected a number, got '0.1,'"},
        {"", 0, "--lr: expected a number, got ''"},
        {"nan", 0, "--lr: expected a finite number, got 'nan'"},
        {"inf", 0, "--lr: expected a finite number, got 'inf'"},
        {"1e999", 0, "--lr: expected a finite number, got '1e999'"},
        {"2", 0, "--lr: must be in [0, 1], got 2"},
        {"-0.5", 0, "--lr: must be in [0, 1], got -0.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err_t err = ERR_INIT;
        double v = -999;
        int rc = cli_parse_f64("--lr", cases[i].text, 0.0, 1.0, &v, &err);
        if (!cases[i].msg) {
            ck_assert_msg(rc == 0, "'%s': %s", cases[i].text, err.msg);
            ck_assert(v == cases[i].want);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_str_eq(err.msg, cases[i].msg);
        }
    }
}
END_TEST

/* ---- common options */

typedef struct {
    int argc;
    char **argv;
} argv_t;

static const struct option test_longopts[] = {{"demos", required_argument, NULL, 'd'},
                                              {"steps", required_argument, NULL, 's'},
                                              CLI_COMMON_LONGOPTS,
                                              {0}};

/* A command's option loop as cli.h shows it; prints what it parsed. */
static void parse_demo(void *arg) {
    argv_t *a = arg;
    cli_opts_t common = CLI_OPTS_INIT;
    const char *demos = NULL;
    int64_t steps = 10;
    int c;
    optind = 0;
    while ((c = getopt_long(a->argc, a->argv, ":hd:s:", test_longopts, NULL)) != -1) {
        if (cli_opts_handle(&common, "sft train", c, optarg, a->argv)) continue;
        switch (c) {
        case 'd':
            demos = optarg;
            break;
        case 's':
            steps = cli_arg_i64("sft train", "--steps", optarg, 1, 1000000);
            break;
        default:
            ck_abort_msg("unexpected option %d", c);
        }
    }
    cli_no_positional("sft train", a->argc, a->argv);
    cli_require("sft train", "--demos", demos);
    printf("seed=%llu threads=%d log=%s help=%d demos=%s steps=%lld\n",
           (unsigned long long)common.seed, common.threads, common.log_path ? common.log_path : "-",
           common.help, demos, (long long)steps);
}

static int parse_argv(char *out, size_t cap, const char *const *words) {
    char *argv[16];
    int argc = 0;
    while (words[argc]) {
        argv[argc] = (char *)words[argc];
        argc++;
    }
    argv[argc] = NULL;
    argv_t a = {argc, argv};
    return run_child(parse_demo, &a, out, cap);
}

START_TEST(test_cli_common_options) {
    char out[1024];
    const char *ok[] = {"train", "--seed",  "42",      "--threads=2", "--log", "m.jsonl",
                        "-d",    "d.jsonl", "--steps", "7",           "-h",    NULL};
    assert_exit(parse_argv(out, sizeof out, ok), 0);
    ck_assert_str_eq(out, "seed=42 threads=2 log=m.jsonl help=1 demos=d.jsonl steps=7\n");
    const char *defaults[] = {"train", "--demos", "d.jsonl", NULL};
    assert_exit(parse_argv(out, sizeof out, defaults), 0);
    ck_assert_str_eq(out, "seed=1 threads=0 log=- help=0 demos=d.jsonl steps=10\n");

    static const struct {
        const char *words[6];
        const char *msg;
    } bad[] = {
        {{"train", "--seed", "x1", NULL}, "sft: error: --seed: expected an integer, got 'x1'\n"},
        {{"train", "--threads", "0", NULL}, "sft: error: --threads: must be in [1, 1024], got 0\n"},
        {{"train", "--steps=-1", NULL}, "sft: error: --steps: must be in [1, 1000000], got -1\n"},
        {{"train", "--bogus", NULL}, "sft: error: '--bogus' is not an option of this command\n"},
        {{"train", "--help=yes", NULL}, "sft: error: '--help' takes no value\n"},
        {{"train", "-x", NULL}, "sft: error: '-x' is not an option of this command\n"},
        {{"train", "--demos", NULL}, "sft: error: '--demos' needs a value\n"},
        {{"train", "-d", NULL}, "sft: error: '-d' needs a value\n"},
        {{"train", "-d", "d.jsonl", "extra", NULL}, "sft: error: unexpected argument 'extra'\n"},
        {{"train", "--log", "", NULL}, "sft: error: --log: expected a file name\n"},
        {{"train", NULL}, "sft: error: --demos is required\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_exit(parse_argv(out, sizeof out, bad[i].words), 2);
        char want[256];
        snprintf(want, sizeof want, "%sTry 'sft train --help'.\n", bad[i].msg);
        ck_assert_str_eq(out, want);
    }
}
END_TEST

/* ---- the command skeleton: cli_args_init / next / end, as cli.h shows it */

enum { T_MODEL = CLI_OPTS_COMMAND, T_IDS };
static const struct option skeleton_longopts[] = {{"model", required_argument, NULL, T_MODEL},
                                                  {"ids", no_argument, NULL, T_IDS},
                                                  CLI_COMMON_LONGOPTS,
                                                  {0}};

static void skeleton_demo(void *arg) {
    argv_t *a = arg;
    const char *model = NULL;
    bool ids = false;
    cli_args_t args;
    int c;
    /* a first, unrelated parse: the skeleton must start from scratch for the second one */
    char *first[] = {"sample", "--ids", "--seed", "9", NULL};
    cli_args_init(&args, "sft sample", 4, first, skeleton_longopts);
    while (cli_args_next(&args) != -1) continue;
    cli_args_init(&args, "sft sample", a->argc, a->argv, skeleton_longopts);
    while ((c = cli_args_next(&args)) != -1) {
        switch (c) {
        case T_MODEL:
            model = args.arg;
            break;
        case T_IDS:
            ids = true;
            break;
        default:
            ck_abort_msg("unexpected code %d", c);
        }
    }
    cli_args_end(&args, "usage: sft sample ...\n");
    printf("model=%s ids=%d seed=%llu threads=%d\n", model ? model : "-", ids,
           (unsigned long long)args.common.seed, args.common.threads);
}

static int skeleton_argv(char *out, size_t cap, const char *const *words) {
    char *argv[16];
    int argc = 0;
    while (words[argc]) {
        argv[argc] = (char *)words[argc];
        argc++;
    }
    argv[argc] = NULL;
    argv_t a = {argc, argv};
    return run_child(skeleton_demo, &a, out, cap);
}

START_TEST(test_cli_skeleton) {
    char out[1024];
    const char *ok[] = {"sample", "--model", "m", "--threads", "1", NULL};
    assert_exit(skeleton_argv(out, sizeof out, ok), 0);
    ck_assert_str_eq(out, "model=m ids=0 seed=1 threads=1\n");
    const char *ids[] = {"sample", "--ids", "--seed=5", NULL};
    assert_exit(skeleton_argv(out, sizeof out, ids), 0);
    ck_assert_str_eq(out, "model=- ids=1 seed=5 threads=0\n");
    const char *help[] = {"sample", "--model", "m", "-h", "extra", NULL};
    assert_exit(skeleton_argv(out, sizeof out, help), 0); /* help wins over a bad argument */
    ck_assert_str_eq(out, "usage: sft sample ...\n");
    const char *extra[] = {"sample", "extra", NULL};
    assert_exit(skeleton_argv(out, sizeof out, extra), 2);
    ck_assert_str_eq(out, "sft: error: unexpected argument 'extra'\nTry 'sft sample --help'.\n");
    const char *bogus[] = {"sample", "--bogus", NULL};
    assert_exit(skeleton_argv(out, sizeof out, bogus), 2);
    ck_assert_str_eq(out, "sft: error: '--bogus' is not an option of this command\nTry 'sft sample "
                          "--help'.\n");
    const char *novalue[] = {"sample", "--model", NULL};
    assert_exit(skeleton_argv(out, sizeof out, novalue), 2);
    ck_assert_str_eq(out, "sft: error: '--model' needs a value\nTry 'sft sample --help'.\n");
    /* the ranges do not overlap, and the common codes sit in theirs */
    ck_assert_int_eq(CLI_OPTS_TRAINER, CLI_OPTS_COMMAND + CLI_OPTS_RANGE);
    ck_assert_int_eq(CLI_OPTS_SAMPLER, CLI_OPTS_TRAINER + CLI_OPTS_RANGE);
    ck_assert((int)CLI_OPT_LOG < (int)(CLI_OPTS_COMMON + CLI_OPTS_RANGE) &&
              (int)CLI_OPT_HELP < (int)CLI_OPTS_COMMAND);
}
END_TEST

static int dummy_cmd(int argc, char **argv) {
    printf("ran %s with %d args\n", argv[0], argc - 1);
    return 3;
}

static void dispatch_demo(void *arg) {
    argv_t *a = arg;
    static const cli_command_t cmds[] = {{"one", dummy_cmd, "the first"},
                                         {"two", dummy_cmd, "the second"}};
    setenv("OMP_WAIT_POLICY", "passive", 1); /* no re-exec of the test binary */
    exit(cli_dispatch("prog", cmds, 2, a->argc, a->argv));
}

START_TEST(test_cli_dispatch) {
    char out[1024];
    const char *run[] = {"prog", "two", "--x", NULL};
    const char *none[] = {"prog", NULL};
    const char *help[] = {"prog", "--help", NULL};
    const char *bad[] = {"prog", "three", NULL};
    char *argv[4];
    argv_t a = {0, argv};
    const char *const *cases[] = {run, none, help, bad};
    const int codes[] = {3, 2, 0, 2};
    const char *want[] = {"ran two with 1 args\n", "usage: prog COMMAND", "usage: prog COMMAND",
                          "prog: error: unknown command 'three'\nusage: prog COMMAND"};
    for (int i = 0; i < 4; i++) {
        for (a.argc = 0; cases[i][a.argc]; a.argc++) argv[a.argc] = (char *)cases[i][a.argc];
        argv[a.argc] = NULL;
        assert_exit(run_child(dispatch_demo, &a, out, sizeof out), codes[i]);
        ck_assert_msg(!strncmp(out, want[i], strlen(want[i])), "case %d: %s", i, out);
    }
    ck_assert_msg(strstr(out, "  two        the second\n"), "%s", out);
}
END_TEST

START_TEST(test_cli_threads_set_both_pools) {
    ck_assert_int_eq(cli_threads_apply(1), 1);
    ck_assert_int_eq(omp_get_max_threads(), 1);
    ck_assert_int_eq(openblas_get_num_threads(), 1);
    ck_assert_int_eq(cli_threads_apply(2), 2);
    ck_assert_int_eq(openblas_get_num_threads(), 2);
    ck_assert_int_eq(cli_threads_apply(0), 2); /* 0 leaves them as they are */
    ck_assert_int_eq(cli_threads_apply(1), 1);
}
END_TEST

/* ---- progress */

START_TEST(test_cli_progress_format) {
    char buf[CLI_PROGRESS_LINE];
    int n = cli_progress_format(buf, sizeof buf, "sft train", 120, 1000, 2.34567, 1234.4, 192.0,
                                "val 2.41");
    ck_assert_str_eq(buf, "sft train: step 120/1000  loss 2.3457  1234 tok/s  ETA 3m12s  val 2.41");
    ck_assert_int_eq(n, (int)strlen(buf));
    cli_progress_format(buf, sizeof buf, "sft pretrain", 7, 0, 2.0, -1, 50, NULL);
    ck_assert_str_eq(buf, "sft pretrain: step 7  loss 2.0000");
    cli_progress_format(buf, sizeof buf, "ppo train", 3, 10, NAN, 99.6, -1, "");
    ck_assert_str_eq(buf, "ppo train: step 3/10  100 tok/s");
    /* a short buffer is cut and NUL-terminated; the return value is the full length */
    char small[12];
    n = cli_progress_format(small, sizeof small, "sft train", 120, 1000, 2.5, -1, -1, NULL);
    ck_assert_str_eq(small, "sft train: ");
    ck_assert_int_eq(n, (int)strlen("sft train: step 120/1000  loss 2.5000"));
    ck_assert_int_eq(cli_progress_format(NULL, 0, "x", 1, 0, NAN, -1, -1, NULL), 9);

    cli_progress_format_summary(buf, sizeof buf, "sft train", "done", 1000, 1000, 192.4, 1234.0,
                                2.12341, "best val 2.05");
    ck_assert_str_eq(buf, "sft train: done at step 1000/1000 after 3m12s  loss 2.1234  1234 tok/s  "
                          "best val 2.05");
    cli_progress_format_summary(buf, sizeof buf, "sft train", "stopped", 500, 0, 5, -1, NAN, NULL);
    ck_assert_str_eq(buf, "sft train: stopped at step 500 after 5s");
}
END_TEST

START_TEST(test_cli_format_duration) {
    static const struct {
        double s;
        const char *want;
    } cases[] = {{0, "0s"},         {59.4, "59s"},   {59.6, "1m00s"}, {60, "1m00s"},
                 {3599, "59m59s"},  {3600, "1h00m"}, {7500, "2h05m"}, {86399, "23h59m"},
                 {273600, "3d04h"}, {-1, "?"},       {NAN, "?"},      {INFINITY, "?"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        cli_format_duration(buf, sizeof buf, cases[i].s);
        ck_assert_msg(!strcmp(buf, cases[i].want), "%g s: '%s', want '%s'", cases[i].s, buf,
                      cases[i].want);
    }
}
END_TEST

static char *read_all(FILE *f) {
    fflush(f);
    long size = ftell(f);
    char *text = calloc(1, (size_t)size + 1);
    rewind(f);
    ck_assert_int_eq(fread(text, 1, (size_t)size, f), size);
    return text;
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* On a terminal the line is redrawn at most every CLI_PROGRESS_TTY_INTERVAL seconds. */
START_TEST(test_cli_progress_tty_rate_limited) {
    FILE *f = tmpfile();
    cli_progress_t p;
    cli_progress_init(&p, f, "sft train", 0, 200000);
    p.tty = true; /* a temp file is not a terminal; pretend */
    double t0 = mono_now();
    for (int64_t step = 1; step <= 200000; step++) cli_progress_update(&p, step, 2.5, 64, NULL);
    double took = mono_now() - t0;
    cli_progress_note(&p, "saved %s", "runs/sft");
    cli_progress_finish(&p, "best val 2.0");
    char *text = read_all(f);
    int draws = count(text, ": step ");
    /* first + last + one per interval elapsed */
    ck_assert_int_ge(draws, 2);
    ck_assert_int_le(draws, 2 + (int)(took / CLI_PROGRESS_TTY_INTERVAL) + 1);
    ck_assert(strstr(text, "\rsft train: step 1/200000  loss 2.5000"));
    ck_assert(strstr(text, "\rsft train: step 200000/200000  loss 2.5000"));
    /* the live line never ends in a newline: the first one ends the note */
    ck_assert(strchr(text, '\n') == strstr(text, "saved runs/sft\n") + strlen("saved runs/sft"));
    ck_assert(strstr(text, "\r\033[Ksft train: saved runs/sft\n"));
    ck_assert(strstr(text, "sft train: done at step 200000/200000 after "));
    ck_assert(strstr(text, "loss 2.5000  ") && strstr(text, " tok/s  best val 2.0\n"));
    free(text);
    fclose(f);
}
END_TEST

/* Not a terminal: plain lines at the first step, every ~total/20 steps and the last. */
START_TEST(test_cli_progress_plain_lines) {
    FILE *f = tmpfile();
    cli_progress_t p;
    cli_progress_init(&p, f, "sft train", 0, 100);
    ck_assert(!p.tty);
    ck_assert_int_eq(p.every, 5);
    for (int64_t step = 1; step <= 60; step++) cli_progress_update(&p, step, 1.0, 10, NULL);
    cli_progress_finish(&p, NULL); /* stopped early, e.g. by Ctrl-C */
    char *text = read_all(f);
    ck_assert_int_eq(count(text, "\n"), 1 + 12 + 1); /* step 1, 5, 10, ..., 60, summary */
    ck_assert_int_eq(count(text, "\r"), 0);
    ck_assert_int_eq(count(text, "\033"), 0);
    const char *first = "sft train: step 1/100  loss 1.0000  ";
    ck_assert(!strncmp(text, first, strlen(first)));
    ck_assert(strstr(text, "\nsft train: step 60/100  loss 1.0000"));
    ck_assert(strstr(text, "\nsft train: stopped at step 60/100 after 0s"));
    free(text);
    fclose(f);
}
END_TEST

/* ---- metrics log */

START_TEST(test_cli_log_lines_parse) {
    char dir[64], path[128];
    err_t err = ERR_INIT;
    testutil_scratch_dir(dir, sizeof dir, "cli");
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    ck_assert_ptr_null(cli_log_open(NULL, false, &err)); /* no --log: no error */
    ck_assert(!err_isset(&err));
    ck_assert_int_eq(cli_log_event(NULL, &err, "train", "{s:i}", "step", 1), 0);
    /* An "o" argument is a reference handed over: consumed even with no log (no leak). */
    json_t *x = json_real(1.5);
    json_incref(x);
    ck_assert_int_eq(cli_log_event(NULL, &err, "train", "{s:o}", "x", x), 0);
    ck_assert_uint_eq(x->refcount, 1);
    json_decref(x);
    cli_log_t *log = cli_log_open(path, false, &err);
    ck_assert_msg(log != NULL, "%s", err.msg);
    for (int step = 1; step <= 3; step++)
        ck_assert_int_eq(cli_log_event(log, &err, "train", "{s:i, s:f, s:I}", "step", step, "loss",
                                       2.5 / step, "tokens", (json_int_t)4096),
                         0);
    ck_assert_int_eq(cli_log_event(log, &err, "val", "{s:o}", "loss", cli_json_number(NAN)), 0);
    /* jansson refuses a NaN real: an error, nothing written */
    ck_assert_int_eq(cli_log_event(log, &err, "val", "{s:f}", "loss", (double)NAN), -1);
    ck_assert(strstr(err.msg, "metrics.jsonl: event \"val\": "));
    /* read while still open: every line is already flushed */
    FILE *f = fopen(path, "r");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t jerr;
        json_t *v = json_loads(line, 0, &jerr);
        ck_assert_msg(v != NULL, "line %d: %s", n + 1, jerr.text);
        ck_assert(!strncmp(line, "{\"event\":", 9)); /* event first */
        ck_assert(json_is_integer(json_object_get(v, "elapsed_ms")));
        if (n < 3) {
            ck_assert_str_eq(json_string_value(json_object_get(v, "event")), "train");
            ck_assert_int_eq(json_integer_value(json_object_get(v, "step")), n + 1);
            ck_assert(json_real_value(json_object_get(v, "loss")) == 2.5 / (n + 1));
            ck_assert_int_eq(json_integer_value(json_object_get(v, "tokens")), 4096);
        } else {
            ck_assert_str_eq(json_string_value(json_object_get(v, "event")), "val");
            ck_assert(json_is_null(json_object_get(v, "loss")));
        }
        json_decref(v);
        n++;
    }
    fclose(f);
    ck_assert_int_eq(n, 4);
    cli_log_close(&log);
    ck_assert_ptr_null(log);
    cli_log_close(&log);
    /* append keeps earlier lines (a resumed run) */
    log = cli_log_open(path, true, &err);
    json_t *fields = json_pack("{s:s}", "note", "resumed");
    ck_assert_int_eq(cli_log_json(log, "resume", fields, &err), 0);
    json_decref(fields);
    cli_log_close(&log);
    f = fopen(path, "r");
    n = 0;
    while (fgets(line, sizeof line, f)) n++;
    fclose(f);
    ck_assert_int_eq(n, 5);
    err_clear(&err);
    snprintf(path, sizeof path, "%s/missing/metrics.jsonl", dir);
    ck_assert_ptr_null(cli_log_open(path, false, &err));
    ck_assert(strstr(err.msg, "missing/metrics.jsonl: No such file or directory"));
    testutil_rm_tree(dir);
}
END_TEST

/* ---- run.json */

START_TEST(test_cli_run_json) {
    char dir[64], out_dir[128], path[192];
    err_t err = ERR_INIT;
    testutil_scratch_dir(dir, sizeof dir, "cli");
    snprintf(out_dir, sizeof out_dir, "%s/sft", dir); /* created by the write */
    snprintf(path, sizeof path, "%s/run.json", out_dir);
    char *argv[] = {"train", "--demos", "d.jsonl", "--lr", "0.0003", "--seed", "7", NULL};
    cli_opts_t opts = CLI_OPTS_INIT;
    opts.seed = 7;
    opts.log_path = "m.jsonl";
    cli_run_t run;
    ck_assert_int_eq(cli_run_init(&run, "sft train", 7, argv, &opts, &err), 0);
    ck_assert_int_eq(cli_json_merge(run.settings, &err, "{s:s, s:f, s:I, s:b}", "demos", "d.jsonl",
                                    "lr", 0.0003, "steps", (json_int_t)100, "resume", 0),
                     0);
    ck_assert_int_eq(cli_run_write(&run, out_dir, "running", &err), 0);
    json_t *v = testutil_load_json(path);
    ck_assert_str_eq(json_string_value(json_object_get(v, "status")), "running");
    ck_assert(json_is_null(json_object_get(v, "end_time")));
    json_decref(v);

    json_object_set_new(run.results, "val_loss", json_real(2.125));
    ck_assert_int_eq(cli_run_write(&run, out_dir, "done", &err), 0);
    cli_run_release(&run);
    cli_run_release(&run); /* released twice is fine */
    v = testutil_load_json(path);
    ck_assert_str_eq(json_string_value(json_object_get(v, "format")), "rlhf-run-v1");
    ck_assert_str_eq(json_string_value(json_object_get(v, "command")), "sft train");
    json_t *a = json_object_get(v, "argv");
    ck_assert_int_eq(json_array_size(a), 7);
    ck_assert_str_eq(json_string_value(json_array_get(a, 4)), "0.0003");
    const char *commit = json_string_value(json_object_get(v, "git_commit"));
    ck_assert(commit && commit[0] && !strchr(commit, ' '));
    ck_assert_str_eq(commit, cli_git_commit());
    ck_assert_int_eq(json_integer_value(json_object_get(v, "seed")), 7);
    ck_assert_int_ge(json_integer_value(json_object_get(v, "threads")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(v, "log")), "m.jsonl");
    ck_assert(json_is_string(json_object_get(v, "cwd")));
    for (int k = 0; k < 2; k++) {
        const char *t = json_string_value(json_object_get(v, k ? "end_time" : "start_time"));
        ck_assert(t && strlen(t) == 20 && t[4] == '-' && t[10] == 'T' && t[19] == 'Z');
    }
    ck_assert(json_real_value(json_object_get(v, "elapsed_s")) >= 0);
    ck_assert_str_eq(json_string_value(json_object_get(v, "status")), "done");
    json_t *s = json_object_get(v, "settings");
    ck_assert_str_eq(json_string_value(json_object_get(s, "demos")), "d.jsonl");
    ck_assert(json_real_value(json_object_get(s, "lr")) == 0.0003);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "steps")), 100);
    ck_assert(json_is_false(json_object_get(s, "resume")));
    ck_assert(json_real_value(json_object_get(json_object_get(v, "results"), "val_loss")) == 2.125);
    json_decref(v);
    /* the text reads as typed (15 digits), and no temp file is left behind */
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "r");
    ck_assert_int_gt(getdelim(&text, &len, '\0', f), 0);
    fclose(f);
    ck_assert(strstr(text, "\"lr\": 0.0003,"));
    ck_assert(text[strlen(text) - 1] == '\n');
    free(text);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0);
    testutil_rm_tree(dir);
}
END_TEST

START_TEST(test_cli_run_json_write_fails_cleanly) {
    err_t err = ERR_INIT;
    char *argv[] = {"train", NULL};
    cli_opts_t opts = CLI_OPTS_INIT;
    cli_run_t run;
    ck_assert_int_eq(cli_run_init(&run, "sft train", 1, argv, &opts, &err), 0);
    ck_assert_int_eq(cli_run_write(&run, "/nonexistent-rlhf/a/b", "done", &err), -1);
    ck_assert_str_eq(err.msg, "/nonexistent-rlhf/a/b: No such file or directory");
    ck_assert_int_eq(cli_json_merge(run.settings, &err, "{s:s}", "x", NULL), -1);
    err_clear(&err);
    ck_assert_int_eq(cli_json_merge(run.settings, &err, "[i]", 1), -1);
    ck_assert_str_eq(err.msg, "bad JSON fields: not an object");
    cli_run_release(&run);
}
END_TEST

START_TEST(test_cli_time_and_commit) {
    char buf[32];
    cli_time_iso8601(buf, sizeof buf, 0);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00Z");
    cli_time_iso8601(buf, sizeof buf, 1795428000);
    ck_assert_str_eq(buf, "2026-11-23T10:00:00Z");
    ck_assert(cli_git_commit()[0]);
}
END_TEST

/* ---- Ctrl-C */

static void double_interrupt(void *arg) {
    (void)arg;
    err_t err = ERR_INIT;
    cli_install_stop_handler(&err);
    raise(SIGINT);
    printf("first: %d\n", cli_stop_requested());
    fflush(stdout);
    raise(SIGINT); /* the handler reset itself: this one kills */
    printf("still alive\n");
}

START_TEST(test_cli_stop_flag) {
    char out[512];
    int st = run_child(double_interrupt, NULL, out, sizeof out);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT);
    ck_assert(strstr(out, "stopping after this step"));
    ck_assert(strstr(out, "first: 1\n"));
    ck_assert_ptr_null(strstr(out, "still alive"));
}
END_TEST

Suite *test_cli_suite(void);
Suite *test_cli_suite(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_cli_die_usage_warn);
    tcase_add_test(tc, test_cli_parse_i64_strict);
    tcase_add_test(tc, test_cli_parse_f64_strict);
    tcase_add_test(tc, test_cli_common_options);
    tcase_add_test(tc, test_cli_skeleton);
    tcase_add_test(tc, test_cli_dispatch);
    tcase_add_test(tc, test_cli_threads_set_both_pools);
    tcase_add_test(tc, test_cli_progress_format);
    tcase_add_test(tc, test_cli_format_duration);
    tcase_add_test(tc, test_cli_progress_tty_rate_limited);
    tcase_add_test(tc, test_cli_progress_plain_lines);
    tcase_add_test(tc, test_cli_log_lines_parse);
    tcase_add_test(tc, test_cli_run_json);
    tcase_add_test(tc, test_cli_run_json_write_fails_cleanly);
    tcase_add_test(tc, test_cli_time_and_commit);
    tcase_add_test(tc, test_cli_stop_flag);
    suite_add_tcase(s, tc);
    return s;
}
