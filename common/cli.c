#include "cli.h" /* own header first: proves it compiles on its own */
#include "dist.h"
#include "fs.h"
#include <cblas.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef RLHF_GIT_COMMIT /* the Makefile passes `git rev-parse --short HEAD` (+ "-dirty") */
#define RLHF_GIT_COMMIT "unknown"
#endif

/* Reals in run.json, a record people read: 15 significant digits (DBL_DIG), so a setting typed
 * as 0.0003 reads back as 0.0003 rather than jansson's default 17-digit 0.00029999999999999997.
 * The metrics log keeps jansson's 17 digits: its figures read back bit for bit, so a resumed
 * run's losses can be compared exactly with an uninterrupted one's. */
#define JSON_FLAGS_RUN JSON_REAL_PRECISION(15)
#define JSON_FLAGS_LOG 0

/* ---- Errors ------------------------------------------------------------------------------ */

/* "sft train" -> "sft": messages carry the program name, hints the whole command. */
static int prog_name_len(const char *prog) {
    return (int)strcspn(prog, " ");
}

static void vreport(const char *prog, const char *kind, const char *fmt, va_list ap) {
    fflush(stdout); /* keep stdout and stderr in order when both go to one file */
    fprintf(stderr, "%.*s: %s: ", prog_name_len(prog), prog, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_die(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(prog, "error", fmt, ap);
    va_end(ap);
    exit(1);
}

void cli_usage_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(prog, "error", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", prog);
    exit(2);
}

void cli_warn(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(prog, "warning", fmt, ap);
    va_end(ap);
}

/* ---- Numbers ----------------------------------------------------------------------------- */

int cli_parse_i64(const char *flag, const char *text, int64_t min, int64_t max, int64_t *out,
                  err_t *err) {
    char *end = NULL;
    errno = 0;
    /* strtoll skips leading blanks; we do not: " 5" is a typo as much as "5x" */
    long long v = strtoll(text, &end, 10);
    if (!text[0] || strchr(" \t\n\v\f\r", text[0]) || *end)
        return err_setf(err, "%s: expected an integer, got '%s'", flag, text);
    if (errno == ERANGE || v < min || v > max) {
        if (max == INT64_MAX)
            return err_setf(err, "%s: must be at least %" PRId64 ", got %s", flag, min, text);
        return err_setf(err, "%s: must be in [%" PRId64 ", %" PRId64 "], got %s", flag, min, max,
                        text);
    }
    *out = (int64_t)v;
    return 0;
}

int cli_parse_f64(const char *flag, const char *text, double min, double max, double *out,
                  err_t *err) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (!text[0] || strchr(" \t\n\v\f\r", text[0]) || *end)
        return err_setf(err, "%s: expected a number, got '%s'", flag, text);
    /* ERANGE also flags underflow (1e-400 -> 0), which is a fine small number */
    if (!isfinite(v) || (errno == ERANGE && fabs(v) > 1.0))
        return err_setf(err, "%s: expected a finite number, got '%s'", flag, text);
    if (v < min || v > max)
        return err_setf(err, "%s: must be in [%g, %g], got %s", flag, min, max, text);
    *out = v;
    return 0;
}

int64_t cli_arg_i64(const char *prog, const char *flag, const char *text, int64_t min,
                    int64_t max) {
    err_t err = ERR_INIT;
    int64_t v = 0;
    if (cli_parse_i64(flag, text, min, max, &v, &err)) cli_usage_error(prog, "%s", err.msg);
    return v;
}

double cli_arg_f64(const char *prog, const char *flag, const char *text, double min, double max) {
    err_t err = ERR_INIT;
    double v = 0;
    if (cli_parse_f64(flag, text, min, max, &v, &err)) cli_usage_error(prog, "%s", err.msg);
    return v;
}

/* ---- Common options ---------------------------------------------------------------------- */

/* The option getopt_long just refused: a long one as typed ("--demoz"), a short one by optopt
 * (a cluster such as "-xv" leaves optind on the same word). */
_Noreturn static void bad_option(const char *prog, int c, char *const argv[]) {
    const char *word = optind > 0 ? argv[optind - 1] : "";
    const char *what = c == ':' ? "needs a value" : "is not an option of this command";
    if (!strncmp(word, "--", 2)) {
        int n = (int)strcspn(word, "=");
        /* glibc sets optopt to a known option's value when it was given "=value" it takes none */
        if (c == '?' && optopt != 0 && word[n] == '=') what = "takes no value";
        cli_usage_error(prog, "'%.*s' %s", n, word, what);
    }
    if (optopt > 0 && optopt < 0x100) cli_usage_error(prog, "'-%c' %s", optopt, what);
    cli_usage_error(prog, "'%s' %s", word, what);
}

bool cli_opts_handle(cli_opts_t *opts, const char *prog, int c, const char *arg,
                     char *const argv[]) {
    switch (c) {
    case CLI_OPT_SEED:
        opts->seed = (uint64_t)cli_arg_i64(prog, "--seed", arg, 0, INT64_MAX);
        opts->seed_given = true;
        return true;
    case CLI_OPT_THREADS:
        opts->threads = (int)cli_arg_i64(prog, "--threads", arg, 1, CLI_THREADS_MAX);
        return true;
    case CLI_OPT_LOG:
        if (!arg[0]) cli_usage_error(prog, "--log: expected a file name");
        opts->log_path = arg;
        return true;
    case CLI_OPT_HELP:
        opts->help = true;
        return true;
    case '?':
    case ':':
        bad_option(prog, c, argv);
    default:
        return false;
    }
}

void cli_no_positional(const char *prog, int argc, char *const argv[]) {
    if (optind < argc) cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
}

void cli_require(const char *prog, const char *flag, const char *value) {
    if (!value) cli_usage_error(prog, "%s is required", flag);
}

/* ---- The command skeleton ---------------------------------------------------------------- */

void cli_args_init(cli_args_t *args, const char *prog, int argc, char **argv,
                   const struct option *longopts) {
    *args = (cli_args_t){.prog = prog,
                         .argc = argc,
                         .argv = argv,
                         .longopts = longopts,
                         .arg = NULL,
                         .common = CLI_OPTS_INIT};
    optind = 0; /* glibc: 0 re-initialises getopt completely, so any argv parses from scratch */
    opterr = 0; /* cli_opts_handle reports bad options in the "PROG: error:" form */
}

int cli_args_next(cli_args_t *args) {
    for (;;) {
        const int c = getopt_long(args->argc, args->argv, ":h", args->longopts, NULL);
        args->arg = optarg;
        if (c == -1 || !cli_opts_handle(&args->common, args->prog, c, optarg, args->argv)) return c;
    }
}

void cli_args_end(cli_args_t *args, const char *help) {
    if (args->common.help) {
        fputs(help, stdout);
        exit(fflush(stdout) ? 1 : 0);
    }
    cli_no_positional(args->prog, args->argc, args->argv);
    cli_threads_apply(args->common.threads);
}

static void dispatch_usage(FILE *out, const char *prog, const cli_command_t *commands, size_t n) {
    fprintf(out,
            "usage: %s COMMAND [options]   (%s COMMAND --help for a command's options)\n\n"
            "commands:\n",
            prog, prog);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int cli_dispatch(const char *prog, const cli_command_t *commands, size_t n, int argc, char **argv) {
    cli_runtime_init(argv);
    if (argc < 2) {
        dispatch_usage(stderr, prog, commands, n);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        dispatch_usage(stdout, prog, commands, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        const int rc = commands[i].run(argc - 1, argv + 1);
        /* under mpirun: leave the job cleanly on success; a failing rank exits without it,
         * so mpirun stops the other ranks instead of leaving them waiting (common/dist.h) */
        if (rc == 0) dist_finalize();
        return rc;
    }
    fprintf(stderr, "%s: error: unknown command '%s'\n", prog, argv[1]);
    dispatch_usage(stderr, prog, commands, n);
    return 2;
}

int cli_threads_apply(int n) {
    if (n > 0) {
        /* Both pools, always together: OpenBLAS runs between our OpenMP loops, never inside
         * them, so n threads each never oversubscribe n cores. */
        omp_set_num_threads(n);
        openblas_set_num_threads(n);
    }
    return omp_get_max_threads();
}

/* ---- Progress ---------------------------------------------------------------------------- */

/* snprintf that appends at *len and keeps counting past size, so the caller can return the
 * full length as snprintf does. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t size, int *len,
                                                         const char *fmt, ...) {
    size_t at = (size_t)*len < size ? (size_t)*len : size;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(size ? buf + at : NULL, size - at, fmt, ap);
    va_end(ap);
    if (n > 0) *len += n;
}

int cli_format_duration(char *buf, size_t size, double seconds) {
    if (!isfinite(seconds) || seconds < 0) return snprintf(buf, size, "?");
    int64_t s = (int64_t)llround(seconds);
    if (s < 60) return snprintf(buf, size, "%" PRId64 "s", s);
    if (s < 3600) return snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    if (s < 86400)
        return snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
    return snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

/* The fields after the step, shared by the progress and the summary line. */
static void format_tail(char *buf, size_t size, int *len, double loss, double tokens_per_s,
                        const char *extra) {
    if (!isnan(loss)) append(buf, size, len, "  loss %.4f", loss);
    if (tokens_per_s >= 0) append(buf, size, len, "  %.0f tok/s", tokens_per_s);
    if (extra && extra[0]) append(buf, size, len, "  %s", extra);
}

int cli_progress_format(char *buf, size_t size, const char *label, int64_t step, int64_t total,
                        double loss, double tokens_per_s, double eta_s, const char *extra) {
    int len = 0;
    if (size) buf[0] = '\0';
    append(buf, size, &len, "%s: step %" PRId64, label, step);
    if (total > 0) append(buf, size, &len, "/%" PRId64, total);
    format_tail(buf, size, &len, loss, tokens_per_s, NULL);
    if (total > 0 && eta_s >= 0) {
        char eta[32];
        cli_format_duration(eta, sizeof eta, eta_s);
        append(buf, size, &len, "  ETA %s", eta);
    }
    if (extra && extra[0]) append(buf, size, &len, "  %s", extra);
    return len;
}

int cli_progress_format_summary(char *buf, size_t size, const char *label, const char *status,
                                int64_t step, int64_t total, double elapsed_s, double tokens_per_s,
                                double loss, const char *extra) {
    int len = 0;
    char took[32];
    if (size) buf[0] = '\0';
    cli_format_duration(took, sizeof took, elapsed_s);
    append(buf, size, &len, "%s: %s at step %" PRId64, label, status, step);
    if (total > 0) append(buf, size, &len, "/%" PRId64, total);
    append(buf, size, &len, " after %s", took);
    format_tail(buf, size, &len, loss, tokens_per_s, extra);
    return len;
}

void cli_progress_init(cli_progress_t *p, FILE *out, const char *label, int64_t start_step,
                       int64_t total) {
    memset(p, 0, sizeof *p);
    p->out = out;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->tty = isatty(fileno(out)) == 1;
    p->start_step = start_step;
    p->step = start_step;
    p->total = total > 0 ? total : 0;
    /* about 20 plain lines over the run; by time alone when the length is unknown */
    int64_t todo = p->total - start_step;
    p->every = todo > 0 ? (todo + 19) / 20 : 0;
    p->loss = NAN;
    p->t_start = fs_monotonic_s();
    p->t_printed = -1;
}

/* Cuts a live line to the terminal's width (a wrapped line cannot be redrawn with \r),
 * never inside a UTF-8 sequence. */
static void fit_terminal(FILE *out, char *line) {
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) != 0 || ws.ws_col < 2) return;
    size_t cols = (size_t)ws.ws_col - 1, n = strlen(line);
    if (n <= cols) return;
    while (cols > 0 && ((unsigned char)line[cols] & 0xC0) == 0x80) cols--;
    line[cols] = '\0';
}

static void progress_draw(cli_progress_t *p, double now) {
    char line[CLI_PROGRESS_LINE];
    double elapsed = now - p->t_start;
    int64_t done = p->step - p->start_step;
    double rate = elapsed > 0 && p->tokens > 0 ? (double)p->tokens / elapsed : -1;
    double eta =
        done > 0 && p->total > 0 ? (double)(p->total - p->step) * elapsed / (double)done : -1;
    cli_progress_format(line, sizeof line, p->label, p->step, p->total, p->loss, rate, eta,
                        p->extra);
    if (p->tty) {
        fit_terminal(p->out, line);
        fprintf(p->out, "\r%s\033[K", line);
        p->live = true;
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
    p->t_printed = now;
}

void cli_progress_update(cli_progress_t *p, int64_t step, double loss, int64_t tokens,
                         const char *extra) {
    p->step = step;
    p->loss = loss;
    p->tokens += tokens;
    if (extra) snprintf(p->extra, sizeof p->extra, "%s", extra);
    double now = fs_monotonic_s();
    bool first = p->t_printed<0, last = p->total> 0 && step >= p->total;
    bool due;
    if (p->tty)
        due = first || last || now - p->t_printed >= CLI_PROGRESS_TTY_INTERVAL;
    else
        due = first || last || (p->every > 0 && step % p->every == 0) ||
              now - p->t_printed >= CLI_PROGRESS_PLAIN_INTERVAL;
    if (due) progress_draw(p, now);
}

static void progress_clear(cli_progress_t *p) {
    if (!p->live) return;
    fputs("\r\033[K", p->out);
    p->live = false;
    p->t_printed = -1; /* redraw at the next update */
}

void cli_progress_note(cli_progress_t *p, const char *fmt, ...) {
    progress_clear(p);
    fprintf(p->out, "%s: ", p->label);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fputc('\n', p->out);
    fflush(p->out);
}

void cli_progress_finish(cli_progress_t *p, const char *extra) {
    char line[CLI_PROGRESS_LINE];
    double elapsed = fs_monotonic_s() - p->t_start;
    double rate = elapsed > 0 && p->tokens > 0 ? (double)p->tokens / elapsed : -1;
    const char *status = p->total > 0 && p->step < p->total ? "stopped" : "done";
    if (extra) snprintf(p->extra, sizeof p->extra, "%s", extra);
    progress_clear(p);
    cli_progress_format_summary(line, sizeof line, p->label, status, p->step, p->total, elapsed,
                                rate, p->loss, p->extra);
    fprintf(p->out, "%s\n", line);
    fflush(p->out);
}

/* ---- Metrics log ------------------------------------------------------------------------- */

struct cli_log {
    FILE *f;
    char *path;    /* for messages */
    double t_open; /* monotonic seconds at open: elapsed_s counts from here */
};

cli_log_t *cli_log_open(const char *path, bool append_mode, err_t *err) {
    if (!path) return NULL;
    cli_log_t *log = calloc(1, sizeof *log);
    if (!log || !(log->path = strdup(path))) {
        free(log);
        err_setf(err, "%s: out of memory", path);
        return NULL;
    }
    log->f = fopen(path, append_mode ? "a" : "w");
    if (!log->f) {
        err_setf(err, "%s: %s", path, strerror(errno));
        free(log->path);
        free(log);
        return NULL;
    }
    log->t_open = fs_monotonic_s();
    return log;
}

json_t *cli_json_number(double x) {
    return isfinite(x) ? json_real(x) : json_null();
}

/* Seconds rounded to the millisecond: "12.345", not 12.345000000000001. */
static json_t *json_seconds(double s) {
    return json_real(round(s * 1000.0) / 1000.0);
}

int cli_log_json(cli_log_t *log, const char *event, json_t *fields, err_t *err) {
    if (!log) return 0;
    json_t *obj = json_object();
    char *text = NULL;
    int rc = -1;
    if (!obj || json_object_set_new(obj, "event", json_string(event)) ||
        json_object_set_new(obj, "elapsed_ms",
                            json_integer(llround((fs_monotonic_s() - log->t_open) * 1e3))) ||
        (fields && json_object_update(obj, fields)) ||
        !(text = json_dumps(obj, JSON_COMPACT | JSON_FLAGS_LOG))) {
        err_setf(err, "%s: cannot encode event \"%s\"", log->path, event);
        goto fail;
    }
    /* one line per event, flushed at once: a crash or `tail -f` sees every finished event */
    if (fputs(text, log->f) < 0 || fputc('\n', log->f) == EOF || fflush(log->f)) {
        err_setf(err, "%s: %s", log->path, strerror(errno));
        goto fail;
    }
    rc = 0;
fail:
    free(text);
    json_decref(obj);
    return rc;
}

int cli_log_event(cli_log_t *log, err_t *err, const char *event, const char *fmt, ...) {
    /* With no log there is nothing to write, but an "o" argument is a new reference the
     * caller handed over: pack anyway so it is released (formats without "o" cost nothing). */
    if (!log && !strchr(fmt, 'o')) return 0;
    json_error_t jerr;
    va_list ap;
    va_start(ap, fmt);
    json_t *fields = json_vpack_ex(&jerr, 0, fmt, ap);
    va_end(ap);
    if (!fields)
        return err_setf(err, "%s: event \"%s\": %s", log ? log->path : "(no log)", event,
                        jerr.text);
    if (!log) {
        json_decref(fields);
        return 0;
    }
    int rc = cli_log_json(log, event, fields, err);
    json_decref(fields);
    return rc;
}

void cli_log_close(cli_log_t **log) {
    if (!log || !*log) return;
    if ((*log)->f) fclose((*log)->f);
    free((*log)->path);
    free(*log);
    *log = NULL;
}

int cli_json_merge(json_t *obj, err_t *err, const char *fmt, ...) {
    json_error_t jerr;
    va_list ap;
    va_start(ap, fmt);
    json_t *fields = json_vpack_ex(&jerr, 0, fmt, ap);
    va_end(ap);
    if (!fields) return err_setf(err, "bad JSON fields: %s", jerr.text);
    int rc = json_object_update(obj, fields);
    json_decref(fields);
    return rc ? err_setf(err, "bad JSON fields: not an object") : 0;
}

/* ---- run.json ---------------------------------------------------------------------------- */

void cli_time_iso8601(char *buf, size_t size, int64_t t) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "?");
}

const char *cli_git_commit(void) {
    return RLHF_GIT_COMMIT;
}

static json_t *json_now_iso(void) {
    char buf[32];
    cli_time_iso8601(buf, sizeof buf, fs_wall_time());
    return json_string(buf);
}

static json_t *json_argv(int argc, char *const argv[]) {
    json_t *a = json_array();
    for (int i = 0; a && i < argc; i++) {
        /* argv is not always UTF-8; jansson refuses such strings, so keep a marker instead */
        json_t *s = json_string(argv[i]);
        if (json_array_append_new(a, s ? s : json_string("(not UTF-8)"))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int cli_run_init(cli_run_t *run, const char *command, int argc, char *const argv[],
                 const cli_opts_t *opts, err_t *err) {
    char cwd[4096];
    memset(run, 0, sizeof *run);
    run->t_start = fs_monotonic_s();
    json_t *d = run->doc = json_object();
    int bad = !d;
    bad = bad || json_object_set_new(d, "format", json_string("rlhf-run-v1"));
    bad = bad || json_object_set_new(d, "command", json_string(command));
    bad = bad || json_object_set_new(d, "argv", json_argv(argc, argv));
    bad = bad ||
          json_object_set_new(d, "cwd", getcwd(cwd, sizeof cwd) ? json_string(cwd) : json_null());
    bad = bad || json_object_set_new(d, "git_commit", json_string(cli_git_commit()));
    bad = bad || json_object_set_new(d, "seed", json_integer((json_int_t)opts->seed));
    bad = bad || json_object_set_new(d, "threads", json_integer(omp_get_max_threads()));
    bad = bad ||
          json_object_set_new(d, "log", opts->log_path ? json_string(opts->log_path) : json_null());
    bad = bad || json_object_set_new(d, "settings", json_object());
    bad = bad || json_object_set_new(d, "start_time", json_now_iso());
    bad = bad || json_object_set_new(d, "end_time", json_null());
    bad = bad || json_object_set_new(d, "elapsed_s", json_null());
    bad = bad || json_object_set_new(d, "status", json_string("running"));
    bad = bad || json_object_set_new(d, "results", json_object());
    if (bad) {
        cli_run_release(run);
        return err_setf(err, "run.json: out of memory");
    }
    run->settings = json_object_get(d, "settings");
    run->results = json_object_get(d, "results");
    return 0;
}

int cli_run_write(cli_run_t *run, const char *dir, const char *status, err_t *err) {
    json_t *d = run->doc;
    bool ended = strcmp(status, "running") != 0;
    if (json_object_set_new(d, "status", json_string(status)) ||
        json_object_set_new(d, "end_time", ended ? json_now_iso() : json_null()) ||
        json_object_set_new(d, "elapsed_s", json_seconds(fs_monotonic_s() - run->t_start)))
        return err_setf(err, "%s/run.json: out of memory", dir);
    if (mkdir(dir, 0777) && errno != EEXIST) return err_setf(err, "%s: %s", dir, strerror(errno));
    char *text = json_dumps(d, JSON_INDENT(2) | JSON_FLAGS_RUN);
    if (!text)
        return err_setf(err, "%s/run.json: cannot encode (a string that is not UTF-8?)", dir);
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps leaves no final newline; swap the NUL for one */
    char path[4096];
    int rc = snprintf(path, sizeof path, "%s/run.json", dir) >= (int)sizeof path
                 ? err_setf(err, "%s/run.json: path too long", dir)
                 : fs_write_atomic(path, text, len + 1, err); /* temp, fsync, rename, fsync dir */
    free(text);
    return rc;
}

void cli_run_release(cli_run_t *run) {
    json_decref(run->doc);
    memset(run, 0, sizeof *run);
}

/* ---- Ctrl-C ------------------------------------------------------------------------------ */

/* Process-wide by necessity (see cli.h): a signal handler reaches only static storage. */
static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig) {
    (void)sig;
    static const char msg[] = "\nstopping after this step (Ctrl-C again to quit at once)\n";
    stop_flag = 1;
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1); /* async-signal-safe, unlike stdio */
    (void)n;
}

int cli_install_stop_handler(err_t *err) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* RESETHAND: the second signal gets the default action (quit at once);
     * RESTART: a read or write in progress is not cut short by the first one */
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
        return err_setf(err, "sigaction: %s", strerror(errno));
    return 0;
}

bool cli_stop_requested(void) {
    return stop_flag != 0;
}

#define CLI_GOMP_SPINCOUNT "10000" /* measured: see cli.h */

void cli_runtime_init(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    /* Set before exec: if exec fails we carry on unchanged, and a child never loops. */
    if (setenv("GOMP_SPINCOUNT", CLI_GOMP_SPINCOUNT, 1)) return;
    execv("/proc/self/exe", argv);
    unsetenv("GOMP_SPINCOUNT");
}

json_t *cli_json_float(float x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", (double)x);
    for (int digits = 1; digits < 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
        if (strtof(buf, NULL) == x) break;
    }
    return json_real(strtod(buf, NULL));
}
