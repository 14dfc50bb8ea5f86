/* reward/main.c: `reward COMMAND [options]` — InstructGPT's second stage: rankings in SQLite
 * (label, import, export, agreement), the reward model (train, eval, score), and the ZeroMQ
 * scoring service (serve, keygen). Each command lives in its own file (reward/<command>.c). */
#include "cli.h"
#include "reward.h"

static const cli_command_t commands[] = {
    {"label", reward_cmd_label, "rank completions at a terminal (or --simulated)"},
    {"import", reward_cmd_import, "add rankings from a K-way or pairwise (TRL, HH) JSONL file"},
    {"export", reward_cmd_export, "write the rankings as K-way or pairwise (TRL, HH) JSONL"},
    {"agreement", reward_cmd_agreement, "how often labelers agree on the prompts they share"},
    {"train", reward_cmd_train, "train a reward model on the rankings"},
    {"eval", reward_cmd_eval, "pairwise accuracy of a reward model on held-out rankings"},
    {"score", reward_cmd_score, "score (prompt, response) pairs (--connect: by a reward server)"},
    {"serve", reward_cmd_serve, "serve a reward model's scores over ZeroMQ"},
    {"keygen", reward_cmd_keygen, "write CURVE key pairs for reward serve and its clients"},
};

int main(int argc, char **argv) {
    return cli_dispatch("reward", commands, sizeof commands / sizeof commands[0], argc, argv);
}
