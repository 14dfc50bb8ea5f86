/* sft/main.c: `sft COMMAND [options]` — pretraining, supervised fine-tuning, sampling,
 * evaluation, tokenizing, and writing the embedded default world. Each command lives in its
 * own file (sft/<command>.c) and is listed in the table below. */
#include "sft.h"
#include "cli.h"
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"pretrain", sft_cmd_pretrain, "train a GPT-2 language model (and its BPE vocabulary) on text"},
    {"train", sft_cmd_train, "fine-tune a model on demonstrations (loss on responses only)"},
    {"sample", sft_cmd_sample, "K completions per prompt as JSON lines"},
    {"eval", sft_cmd_eval, "loss on demonstrations or texts; gold-judge score of samples"},
    {"tokenize", sft_cmd_tokenize, "encode JSONL {\"text\"} to {\"ids\"} (or --decode back)"},
    {"world", sft_cmd_world, "write the embedded default world (corpus, demos, prompts)"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: sft COMMAND [options]   (sft COMMAND --help for a command's options)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    cli_runtime_init(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sft: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
