/* sft/main.c: `sft COMMAND [options]` — pretraining, supervised fine-tuning, sampling,
 * evaluation, tokenizing, and writing the embedded default world. Each command lives in its
 * own file (sft/<command>.c) and is listed in the table below. */
#include "cli.h"
#include "sft.h"

static const cli_command_t commands[] = {
    {"pretrain", sft_cmd_pretrain, "train a GPT-2 language model (and its BPE vocabulary) on text"},
    {"train", sft_cmd_train, "fine-tune a model on demonstrations (loss on responses only)"},
    {"sample", sft_cmd_sample, "K completions per prompt as JSON lines"},
    {"eval", sft_cmd_eval, "loss on demonstrations or texts; gold-judge score of samples"},
    {"tokenize", sft_cmd_tokenize, "encode JSONL {\"text\"} to {\"ids\"} (or --decode back)"},
    {"world", sft_cmd_world, "write the embedded default world (corpus, demos, prompts)"},
};

int main(int argc, char **argv) {
    return cli_dispatch("sft", commands, sizeof commands / sizeof commands[0], argc, argv);
}
