/* ppo/main.c: `ppo COMMAND [options]` — InstructGPT's third stage: PPO-ptx training of a policy
 * against a served reward model (train), and evaluating a policy against a baseline (eval).
 * Each command lives in its own file (ppo/<command>.c) and is listed in the table below. */
#include "cli.h"
#include "ppo_cmds.h"

static const cli_command_t commands[] = {
    {"train", ppo_cmd_train, "PPO-ptx: fine-tune a policy against a served reward model"},
    {"eval", ppo_cmd_eval, "a policy's mean reward; vs a baseline: win rate and KL"},
};

int main(int argc, char **argv) {
    return cli_dispatch("ppo", commands, sizeof commands / sizeof commands[0], argc, argv);
}
