/* sft/world.c: `sft world` — writes the embedded default world (pipelines/world.h) into a
 * directory: corpus, demonstrations and prompts, each as train and val files, plus run.json. */
#include "world.h"
#include "cli.h"
#include "sft.h"
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define PROG "sft world"

#define WORLD_HELP                                                                                 \
    "usage: sft world --out DIR [--size tiny|small|medium] [--seed N]\n"                           \
    "\n"                                                                                           \
    "Writes the embedded default world into DIR (created if missing):\n"                           \
    "  corpus.train.txt, corpus.val.txt         plain text, one paragraph per line\n"              \
    "  demos.train.jsonl, demos.val.jsonl       {\"prompt\",\"response\"} by a noisy "             \
    "demonstrator\n"                                                                               \
    "  prompts.train.jsonl, prompts.val.jsonl   {\"prompt\"}\n"                                    \
    "  run.json                                 settings and what was written\n"                   \
    "The same seed and size give the same bytes. The six files are written to temporary\n"         \
    "names and renamed into place together, so DIR never holds a half-written world.\n"            \
    "\n"                                                                                           \
    "options:\n"                                                                                   \
    "  --out DIR      output directory (required)\n"                                               \
    "  --size S       tiny (tests, ~110 KB), small (default, ~1.8 MB), medium (~4.5 MB)\n"

/* Per-file and demonstrator figures: printed, logged and kept in run.json. */
static json_t *stats_json(const world_stats_t *st) {
    json_t *files = json_object(), *kinds = json_object(), *fams = json_object();
    for (int i = 0; i < WORLD_NFILES; i++)
        json_object_set_new(files, st->files[i].name,
                            json_pack("{s:I,s:I}", "bytes", (json_int_t)st->files[i].bytes, "lines",
                                      (json_int_t)st->files[i].lines));
    for (int k = 0; k < WORLD_NKINDS; k++)
        json_object_set_new(kinds, world_kind_name((world_kind_t)k),
                            json_integer((json_int_t)st->demo_kinds[k]));
    for (int f = 0; f < WORLD_NFAMILIES; f++)
        json_object_set_new(fams, world_family_name(f),
                            json_integer((json_int_t)st->demo_families[f]));
    return json_pack("{s:o,s:o,s:o}", "files", files, "demo_kinds", kinds, "demo_families", fams);
}

static void print_summary(const char *dir, uint64_t seed, world_size_t size,
                          const world_stats_t *st) {
    printf("sft world: wrote %s (seed %" PRIu64 ", size %s)\n", dir, seed, world_size_name(size));
    for (int i = 0; i < WORLD_NFILES; i++)
        printf("  %-20s %9" PRId64 " bytes %7" PRId64 " lines\n", st->files[i].name,
               st->files[i].bytes, st->files[i].lines);
    int64_t total = 0;
    for (int k = 0; k < WORLD_NKINDS; k++) total += st->demo_kinds[k];
    printf("  demonstrator:");
    for (int k = 0; k < WORLD_NKINDS; k++)
        printf(" %s %.1f%%", world_kind_name((world_kind_t)k),
               total ? 100.0 * (double)st->demo_kinds[k] / (double)total : 0.0);
    printf("\n  families:");
    for (int f = 0; f < WORLD_NFAMILIES; f++)
        printf(" %s %" PRId64, world_family_name(f), st->demo_families[f]);
    printf("\n");
}

enum { O_OUT = CLI_OPTS_COMMAND, O_SIZE };

int sft_cmd_world(int argc, char **argv) {
    static const struct option longopts[] = {{"out", required_argument, NULL, O_OUT},
                                             {"size", required_argument, NULL, O_SIZE},
                                             CLI_COMMON_LONGOPTS,
                                             {0}};
    const char *out = NULL;
    world_size_t size = WORLD_SMALL;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        switch (c) {
        case O_OUT:
            out = args.arg;
            break;
        case O_SIZE:
            if (world_size_parse(args.arg, &size))
                cli_usage_error(PROG, "--size: expected tiny, small or medium, got '%s'", args.arg);
            break;
        }
    }
    cli_args_end(&args, WORLD_HELP CLI_COMMON_HELP);
    cli_require(PROG, "--out", out);
    const cli_opts_t common = args.common;

    err_t err = ERR_INIT;
    world_stats_t st;
    cli_run_t run = {0};
    cli_log_t *log = cli_log_open(common.log_path, false, &err);
    if (err_isset(&err) || cli_run_init(&run, PROG, argc, argv, &common, &err) ||
        cli_json_merge(run.settings, &err, "{s:s,s:s}", "out", out, "size",
                       world_size_name(size)) ||
        world_write(out, common.seed, size, &st, &err)) {
        cli_run_release(&run);
        cli_log_close(&log);
        cli_die("sft", "%s", err.msg);
    }
    json_t *figures = stats_json(&st);
    json_object_update(run.results, figures);
    int rc = cli_log_json(log, "world", figures, &err) || cli_run_write(&run, out, "done", &err);
    json_decref(figures);
    cli_run_release(&run);
    cli_log_close(&log);
    if (rc) cli_die("sft", "%s", err.msg);
    print_summary(out, common.seed, size, &st);
    return 0;
}
