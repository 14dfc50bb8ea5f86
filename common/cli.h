/* common/cli.h: what every command of sft, reward and ppo shares (DESIGN.md §6): the error
 * vocabulary, strict option parsing and the common options (--seed, --threads, --log, --help),
 * the progress line, the --log JSONL metrics log, run.json, and the Ctrl-C stop flag.
 * The one module of common/ allowed to print and exit: cli_die / cli_usage_error exit (1 / 2),
 * progress prints on its FILE. Everything else returns -1 with err set like the rest of common/.
 * Process-wide state: only the stop flag (see cli_install_stop_handler). Not thread-safe:
 * call from the main thread. Messages start with the program name: "sft: error: ...". */
#ifndef RLHF_CLI_H
#define RLHF_CLI_H
#include "err.h"
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- Errors. `prog` everywhere below is the program and command as the user typed them,
 * "sft train" (or just "sft"). Messages start with the program name alone, as DESIGN §6
 * shows ("sft: error: demos.jsonl:17: missing \"response\""); usage errors point at
 * "sft train --help". */

/* Prints "PROG: error: MSG\n" on stderr and exits 1 (a failure: bad data, I/O, NaN loss). */
_Noreturn void cli_die(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "PROG: error: MSG\n" and "Try 'PROG --help'.\n" on stderr and exits 2 (the command
 * line itself is wrong: unknown option, bad value, missing required option). */
_Noreturn void cli_usage_error(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "PROG: warning: MSG\n" on stderr and carries on. While a live progress line is on the
 * terminal, prefer cli_progress_note, which clears the line first. */
void cli_warn(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- Strict number parsing. The whole text must be the number (no leading or trailing
 * junk, no empty string), within [min, max]; floats must be finite. Messages name the flag:
 * "--lr: expected a number, got 'fast'", "--steps: 0 is out of range [1, 1000000]". */

int cli_parse_i64(const char *flag, const char *text, int64_t min, int64_t max, int64_t *out,
                  err_t *err);
int cli_parse_f64(const char *flag, const char *text, double min, double max, double *out,
                  err_t *err);
/* The same for a main's option loop: a bad value is a usage error (exit 2). */
int64_t cli_arg_i64(const char *prog, const char *flag, const char *text, int64_t min, int64_t max);
double cli_arg_f64(const char *prog, const char *flag, const char *text, double min, double max);

/* ---- The command skeleton. Every command of sft, reward and ppo parses its argv the same
 * way, so the commands read alike (sft/sample.c is this example in full):
 *
 *     #define PROG "sft sample"
 *     enum { O_MODEL = CLI_OPTS_COMMAND, O_PROMPT, O_IDS };      // its own codes, one range
 *     static const struct option longopts[] = {
 *         {"model", required_argument, NULL, O_MODEL},
 *         {"prompt", required_argument, NULL, O_PROMPT},
 *         {"ids", no_argument, NULL, O_IDS},
 *         SAMPLER_LONGOPTS,                                        // a shared family
 *         CLI_COMMON_LONGOPTS,                                     // --seed --threads --log -h
 *         {0}};
 *     sampler_opts_t opts = sampler_defaults();
 *     const char *model = NULL, *prompt = NULL;
 *     bool ids = false;
 *     cli_args_t args;
 *     int c;
 *     cli_args_init(&args, PROG, argc, argv, longopts);           // the one place optind is set
 *     while ((c = cli_args_next(&args)) != -1) {                  // common options handled inside
 *         if (sampler_option(&opts, PROG, c, args.arg)) continue;  // then each family's parser
 *         switch (c) {
 *         case O_MODEL: model = args.arg; break;
 *         case O_PROMPT: prompt = args.arg; break;
 *         case O_IDS: ids = true; break;
 *         }
 *     }
 *     cli_args_end(&args, SAMPLE_HELP CLI_COMMON_HELP);  // --help: print, exit 0; no positional;
 *                                                        // --threads applied
 *     cli_require(PROG, "--model", model);                 // then the command's own checks
 *     opts.gen.seed = args.common.seed;
 *
 * Option codes: getopt_long returns each option's code, and every family of options owns one
 * range below, declared once here, so a command can list several families in one table and no
 * two options share a code. A command's own options take codes from CLI_OPTS_COMMAND up; the
 * only short option is -h. A new shared family takes the next free range and asserts its last
 * code stays inside (see sampler.h). */
enum {
    CLI_OPTS_RANGE = 0x100,    /* codes per range */
    CLI_OPTS_COMMAND = 0x100,  /* the command's own options (an enum starting here) */
    CLI_OPTS_TRAINER = 0x200,  /* the training harness's own flags (--out, --resume, ...) */
    CLI_OPTS_SAMPLER = 0x300,  /* the sampling flags (sampler.h: --k, --temperature, ...) */
    CLI_OPTS_SETTINGS = 0x400, /* a training command's settings table, one code per row
                                  (harness.h: the shared --lr, --warmup, ... and its own) */
    CLI_OPTS_WIRE = 0x500,     /* the reward client's flags (wireopt.h: --timeout, --tries, ...) */
    /* 0x600 .. 0xfff: free for the next families */
    CLI_OPTS_COMMON = 0x1000, /* --seed, --threads, --log (CLI_OPT_* below) */
};

/* ---- Common options, the pieces the skeleton is made of. A command lists CLI_COMMON_LONGOPTS
 * among its options and prints CLI_COMMON_HELP at the end of its --help text; cli_args_next
 * passes every getopt_long result to cli_opts_handle first. Used on their own, start the short
 * options with ':' so a missing value comes back as ':' (cli_opts_handle turns '?' and ':' into
 * usage errors naming the option), and set optind = 0 before parsing a second argv in the same
 * process. */
typedef struct {
    uint64_t seed;        /* --seed N, default 1: every random stream of the run derives from it */
    int threads;          /* --threads N; 0 = not given: OMP_NUM_THREADS / library defaults */
    const char *log_path; /* --log FILE (borrowed from argv); NULL = no metrics log */
    bool help;            /* -h / --help seen: print help and exit 0 */
    bool seed_given;      /* --seed was on the command line (a resume compares it) */
} cli_opts_t;

// clang-format off
#define CLI_SEED_DEFAULT 1
#define CLI_THREADS_MAX  1024
#define CLI_OPTS_INIT {.seed = CLI_SEED_DEFAULT, .threads = 0, .log_path = NULL, .help = false, .seed_given = false}

/* getopt_long codes of the common options, in their range (see the skeleton above) */
enum { CLI_OPT_HELP = 'h', CLI_OPT_SEED = CLI_OPTS_COMMON, CLI_OPT_THREADS, CLI_OPT_LOG };

#define CLI_COMMON_LONGOPTS                                \
    {"seed", required_argument, NULL, CLI_OPT_SEED},       \
    {"threads", required_argument, NULL, CLI_OPT_THREADS}, \
    {"log", required_argument, NULL, CLI_OPT_LOG},         \
    {"help", no_argument, NULL, CLI_OPT_HELP}
// clang-format on

#define CLI_COMMON_HELP                                                                            \
    "common options:\n"                                                                            \
    "  --seed N       seed of every random stream (default 1): same seed, same run\n"              \
    "  --threads N    threads for OpenBLAS and OpenMP together (default: all cores)\n"             \
    "  --log FILE     write metrics as JSON lines to FILE (one object per event)\n"                \
    "  -h, --help     show this help\n"

/* Handles one getopt_long result c (with optarg): stores a common option and returns true;
 * a bad value, an unknown option ('?') or a missing value (':') is a usage error (exit 2);
 * any other c returns false (the caller's own option). argv names the offending option. */
bool cli_opts_handle(cli_opts_t *opts, const char *prog, int c, const char *arg,
                     char *const argv[]);
/* Usage error unless every argument was an option ("unexpected argument 'x'"); call after
 * the getopt_long loop. */
void cli_no_positional(const char *prog, int argc, char *const argv[]);
/* Usage error "FLAG is required" when value is NULL. */
void cli_require(const char *prog, const char *flag, const char *value);

/* ---- The skeleton's functions (see the example above). The parser state of one command line: */
typedef struct {
    const char *prog; /* "sft sample": messages and the --help hint */
    int argc;         /* the command's argc / argv (argv[0] = command name) */
    char **argv;
    const struct option *longopts; /* the command's table, {0}-terminated */
    const char *arg;               /* value of the option cli_args_next just returned, or NULL */
    cli_opts_t common;             /* --seed, --threads, --log, --help as given */
} cli_args_t;

/* Starts parsing argv[1..argc) with longopts: resets getopt's process-wide state (optind = 0,
 * so a second argv in the same process parses from scratch; opterr = 0) and sets common to
 * CLI_OPTS_INIT. prog, argv and longopts are borrowed for the parse. */
void cli_args_init(cli_args_t *args, const char *prog, int argc, char **argv,
                   const struct option *longopts);
/* The next option that is the command's to handle: its code (args->arg holds its value), or -1
 * after the last. Common options are stored in args->common and skipped; an unknown option,
 * a missing value or a bad common value is a usage error (exit 2). */
int cli_args_next(cli_args_t *args);
/* After the loop: with --help prints help on stdout and exits 0; an argument that is not an
 * option is a usage error; then applies --threads (cli_threads_apply). */
void cli_args_end(cli_args_t *args, const char *help);

/* A program's commands, for cli_dispatch. */
typedef struct {
    const char *name;                  /* "sample" */
    int (*run)(int argc, char **argv); /* argv[0] = name; returns the exit code */
    const char *summary;               /* one line for `PROG --help` */
} cli_command_t;

/* A program's main: `return cli_dispatch("sft", commands, n, argc, argv);`. Runs
 * cli_runtime_init first, then the command argv[1] names with argv shifted by one. No command:
 * usage on stderr, 2; `PROG --help` / `-h` / `help`: usage on stdout, 0; an unknown command:
 * "PROG: error: unknown command 'x'" and usage on stderr, 2. */
int cli_dispatch(const char *prog, const cli_command_t *commands, size_t n, int argc, char **argv);

/* Sets OpenMP's and OpenBLAS's thread counts together (n > 0), so the two pools never
 * oversubscribe the cores; n = 0 leaves the defaults. Returns the OpenMP thread count now in
 * effect (what run.json records). */
int cli_threads_apply(int n);

/* How idle OpenMP threads wait. libgomp's default spins for ~300,000 iterations before it
 * sleeps; on 2 cores that another process is also using, the spinning threads steal the core
 * the working thread needs, and measured runs got 10-50x slower (the Check suite 2m20s vs 5s;
 * 124M generation 1.4 vs 64 tokens/s). A short spin (GOMP_SPINCOUNT=10000, ~10 µs) keeps
 * nearly all of the spin's benefit on an idle machine and none of its harm on a busy one.
 * libgomp reads the variable once, when the program loads, so this sets it and re-executes
 * the program (/proc/self/exe, same argv) — only when neither OMP_WAIT_POLICY nor
 * GOMP_SPINCOUNT is set (a user's choice always wins) and never twice. Call it first thing in
 * main; it returns when no re-execution happened or it failed (then nothing changes). */
void cli_runtime_init(char **argv);

/* ---- Progress on stderr. On a terminal: one live line, redrawn at most every
 * CLI_PROGRESS_TTY_INTERVAL seconds with "\r" and erase-to-end-of-line, cut to the terminal
 * width. Otherwise (a file, a pipe, CI): a plain line at the first step, every `every` steps
 * (about 20 lines per run) or CLI_PROGRESS_PLAIN_INTERVAL seconds, and at the last step.
 * cli_progress_finish prints the summary line. Time is CLOCK_MONOTONIC. */
#define CLI_PROGRESS_TTY_INTERVAL   0.25
#define CLI_PROGRESS_PLAIN_INTERVAL 30.0
#define CLI_PROGRESS_LINE           256

typedef struct {
    FILE *out;          /* where lines go (stderr); borrowed */
    char label[64];     /* line prefix, "sft train" */
    bool tty;           /* live line; set by init from isatty (tests may override) */
    int64_t start_step; /* step the run (re)started at: rates count only this process */
    int64_t total;      /* last step of the run; 0 = unknown (no ETA) */
    int64_t every;      /* plain mode: print every this many steps */
    int64_t step;       /* last step passed to update */
    double loss;        /* last loss passed to update (NAN before) */
    int64_t tokens;     /* tokens processed since init */
    double t_start;     /* monotonic seconds at init */
    double t_printed;   /* monotonic seconds of the last line; -1 = none yet */
    bool live;          /* a live line is on the terminal (needs clearing before other text) */
    char extra[96];     /* last extra text, shown after the standard fields */
} cli_progress_t;

/* Starts timing a run of steps start_step+1 .. total (total 0 = unknown). */
void cli_progress_init(cli_progress_t *p, FILE *out, const char *label, int64_t start_step,
                       int64_t total);
/* Records step (1-based, ≤ total), its loss (NAN = none) and the tokens it processed, and
 * prints a line when one is due. extra (NULL = none) is appended after the standard fields,
 * e.g. "val 2.41"; it is kept for later lines. Never allocates. */
void cli_progress_update(cli_progress_t *p, int64_t step, double loss, int64_t tokens,
                         const char *extra);
/* Prints a plain line "LABEL: MSG" (clearing a live line first, which is redrawn at the next
 * update): validation results, "saved runs/sft", warnings during the run. */
void cli_progress_note(cli_progress_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Clears the live line and prints the summary: "LABEL: done at step 1000/1000 after 3m12s
 * ..."; "stopped" instead of "done" when the last step is short of total. extra as in
 * update. Call it before cli_die too, so the error does not land on a live line. */
void cli_progress_finish(cli_progress_t *p, const char *extra);

/* Pure formatters behind the lines above (testable, no clock): write at most size bytes
 * (NUL-terminated) and return the length of the full line, like snprintf.
 * "sft train: step 120/1000  loss 2.3456  1234 tok/s  ETA 3m12s  val 2.41"
 * total 0 drops "/total" and ETA; loss NAN drops the loss; tokens_per_s < 0 drops the rate;
 * eta_s < 0 drops the ETA; extra NULL or "" drops it. */
int cli_progress_format(char *buf, size_t size, const char *label, int64_t step, int64_t total,
                        double loss, double tokens_per_s, double eta_s, const char *extra);
/* "sft train: done at step 1000/1000 after 3m12s  loss 2.1234  1234 tok/s  best val 2.05"
 * (total 0 drops "/total"; loss, rate and extra are dropped as above). */
int cli_progress_format_summary(char *buf, size_t size, const char *label, const char *status,
                                int64_t step, int64_t total, double elapsed_s, double tokens_per_s,
                                double loss, const char *extra);
/* Durations as people read them: "45s", "3m12s", "2h05m", "3d04h"; "?" when negative or
 * not finite. */
int cli_format_duration(char *buf, size_t size, double seconds);

/* How commands print JSON for people and scripts (sft sample's lines, eval's --out): keys in
 * the order written, reals with 10 significant digits (figures come from float arithmetic:
 * more digits would only show rounding noise). The metrics log and run.json keep more. */
#define CLI_JSON_FLAGS (JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))

/* ---- Metrics log (--log FILE): JSON Lines, one object per event, each line flushed as it
 * is written, so `tail -f` and a crash both see every finished event. Every object starts with
 * "event" (its kind: "train", "val", "sample", ...) and "elapsed_ms" (an integer: milliseconds
 * since open). Reals keep 17 digits, so figures read back bit for bit. */
typedef struct cli_log cli_log_t;

/* Opens path for writing (append = true keeps earlier lines: a resumed run). path NULL
 * returns NULL without error (no --log), and every function below accepts a NULL log as a
 * no-op, so callers never branch on whether --log was given. Caller frees with cli_log_close.
 * NULL with err set when the file cannot be opened. */
cli_log_t *cli_log_open(const char *path, bool append, err_t *err);
/* Writes {"event": event, "elapsed_ms": t, ...fields} where fields is a json_pack object format
 * with its arguments: cli_log_event(log, &err, "train", "{s:I, s:f}", "step", step, "loss",
 * loss). Numbers for "f" must be finite (jansson refuses NaN/inf): pass a possibly non-finite
 * figure as "o" with cli_json_number(x); "o" references are consumed even when log is NULL.
 * -1 with err set on a bad format or a write error. */
int cli_log_event(cli_log_t *log, err_t *err, const char *event, const char *fmt, ...);
/* Same with a ready object (borrowed: its fields are added after "event" and "elapsed_ms"). */
int cli_log_json(cli_log_t *log, const char *event, json_t *fields, err_t *err);
/* Closes the file and NULLs *log; accepts NULL. */
void cli_log_close(cli_log_t **log);

/* A JSON number for x, or JSON null when x is NaN or infinite (a new reference). */
json_t *cli_json_number(double x);
/* A float setting as typed (0.7, not 0.699999988): the shortest decimal that reads back as x,
 * as a JSON real (a new reference). */
json_t *cli_json_float(float x);

/* ---- run.json (DESIGN §3): what made the files in an output directory.
 * {"format": "rlhf-run-v1", "command": "sft train", "argv": [...], "cwd": "...",
 *  "git_commit": "5d9d0d6", "seed": 1, "threads": 2, "log": "train.jsonl" | null,
 *  "settings": {...}, "start_time": "2026-11-23T10:00:00Z", "end_time": ... | null,
 *  "elapsed_s": 312.5, "status": "running" | "done" | "stopped" | "failed", "results": {...}}
 * The command fills "settings" (every option after defaults, resolved paths) and "results"
 * (final figures) with jansson: json_object_set_new(run.settings, "lr", json_real(lr)). */
typedef struct {
    json_t *doc;      /* the whole run.json object (owned) */
    json_t *settings; /* borrowed view of doc["settings"]: add every setting here */
    json_t *results;  /* borrowed view of doc["results"]: add final figures here */
    double t_start;   /* monotonic seconds at init, for elapsed_s */
} cli_run_t;

/* Records the command, argv, working directory, git commit (compile-time RLHF_GIT_COMMIT,
 * "unknown" outside a git checkout), seed, effective thread count, log path and start time
 * (ISO 8601 UTC). -1 with err set only when out of memory. Release with cli_run_release. */
int cli_run_init(cli_run_t *run, const char *command, int argc, char *const argv[],
                 const cli_opts_t *opts, err_t *err);
/* Sets status ("running" / "done" / "stopped" / "failed"; any but "running" also sets
 * end_time) and writes DIR/run.json with fs_write_atomic (temp file, fsync, rename, fsync
 * DIR); DIR is created if missing (one level). Call at the start, with every checkpoint and at
 * the end. -1 with err set ("runs/sft/run.json.tmp: ..."); the old file stays. */
int cli_run_write(cli_run_t *run, const char *dir, const char *status, err_t *err);
/* Frees the document; accepts a zeroed or released run. */
void cli_run_release(cli_run_t *run);

/* Merges a json_pack object format into obj (e.g. run.settings): cli_json_merge(run.settings,
 * &err, "{s:s, s:I, s:f}", "demos", demos, "steps", steps, "lr", lr). -1 with err set when
 * the format is bad or a value is invalid (a NaN for "f", a NULL for "s"). */
int cli_json_merge(json_t *obj, err_t *err, const char *fmt, ...);

/* Formats t (seconds since the epoch) as ISO 8601 UTC, "2026-11-23T10:00:00Z" (buf ≥ 21). */
void cli_time_iso8601(char *buf, size_t size, int64_t t);
/* The commit this binary was built from ("5d9d0d6", "5d9d0d6-dirty", or "unknown"). */
const char *cli_git_commit(void);

/* ---- Ctrl-C. The first SIGINT or SIGTERM sets a flag that training loops poll once per step
 * (then save a checkpoint, write run.json with status "stopped", and exit 0); the handler
 * resets itself, so a second Ctrl-C kills the process at once. The flag is the one piece of
 * process-wide state in common/ (STYLE allows globals only in main files): a signal handler
 * can only reach static storage, and a signal stops the whole process, not one model, so
 * there is nothing per-object to keep it in. */
int cli_install_stop_handler(err_t *err);
/* True once a stop was requested (async-signal-safe read of a volatile sig_atomic_t). */
bool cli_stop_requested(void);
#endif /* RLHF_CLI_H */
