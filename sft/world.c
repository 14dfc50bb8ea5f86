/* sft/world.c: `sft world` — writes the embedded default world (pipelines/world.h) into a
 * directory: corpus, demonstrations and prompts, each as train and val files. */
#include "world.h"
#include "sft.h"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out, "usage: sft world --out DIR [--seed N] [--size tiny|small|medium]\n"
                 "\n"
                 "Writes the embedded default world into DIR (created if missing):\n"
                 "  corpus.train.txt, corpus.val.txt       plain text for pretraining and PPO-ptx\n"
                 "  demos.train.jsonl, demos.val.jsonl     {\"prompt\",\"response\"} by a noisy "
                 "demonstrator\n"
                 "  prompts.train.jsonl, prompts.val.jsonl {\"prompt\"}\n"
                 "The same seed and size give the same bytes; files are replaced atomically.\n"
                 "\n"
                 "options:\n"
                 "  --out DIR     output directory (required)\n"
                 "  --seed N      random seed, an unsigned integer (default 1)\n"
                 "  --size S      tiny (for tests), small (default, ~1.6 MB), medium (~4 MB)\n"
                 "  -h, --help    show this help\n");
}

static int parse_seed(const char *s, uint64_t *seed) {
    char *end;
    errno = 0;
    if (!*s || *s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *seed = (uint64_t)v;
    return 0;
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

int sft_cmd_world(int argc, char **argv) {
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"size", required_argument, NULL, 'z'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *out = NULL;
    uint64_t seed = 1;
    world_size_t size = WORLD_SMALL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 's':
            if (parse_seed(optarg, &seed)) {
                fprintf(stderr, "sft: error: --seed: '%s' is not an unsigned integer\n", optarg);
                return 2;
            }
            break;
        case 'z':
            if (world_size_parse(optarg, &size)) {
                fprintf(stderr, "sft: error: --size: '%s' is not tiny, small or medium\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "sft: error: %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "sft: error: world: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sft: error: world: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "sft: error: world: --out DIR is required\n");
        usage(stderr);
        return 2;
    }
    err_t err = ERR_INIT;
    world_stats_t st;
    if (world_write(out, seed, size, &st, &err)) {
        fprintf(stderr, "sft: error: %s\n", err.msg);
        return 1;
    }
    print_summary(out, seed, size, &st);
    return 0;
}
