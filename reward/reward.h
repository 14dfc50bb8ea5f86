/* reward/reward.h: the reward commands. Each takes (argc, argv) with argv[0] = the command name
 * and returns the process exit code: 0 ok, 1 failure, 2 usage. */
#ifndef RLHF_REWARD_H
#define RLHF_REWARD_H
#include <stdbool.h>

/* The simulated labeler's default noise: two simulated labelers at this noise agree on about
 * 73% of pairs, as InstructGPT's labelers agreed with each other — measured with
 * world_agreement_noise on K=4 demonstrator responses to 20,000 prompts (0.2364 and 0.2370 on
 * two seeds; SFT samples differ: `reward agreement` reports what a database shows). */
#define REWARD_SIM_NOISE   0.24
#define REWARD_SIM_NOISE_S "0.24"

/* Share of prompts `reward train` holds out for validation (and `reward eval --split` reads
 * unless the model's run.json says otherwise); split by a hash of the prompt (store_is_val). */
#define REWARD_VAL_FRACTION   0.1
#define REWARD_VAL_FRACTION_S "0.1"

int reward_cmd_label(int argc, char **argv);
int reward_cmd_import(int argc, char **argv);
int reward_cmd_export(int argc, char **argv);
int reward_cmd_agreement(int argc, char **argv);
int reward_cmd_train(int argc, char **argv);
int reward_cmd_eval(int argc, char **argv);
int reward_cmd_score(int argc, char **argv);
int reward_cmd_serve(int argc, char **argv);
int reward_cmd_keygen(int argc, char **argv);

/* `reward score --connect EP[,EP...]` (reward/score_connect.c): the whole command when argv
 * holds --connect, which reward_score_wants_connect tells (reward/score.c dispatches on it).
 * Returns the exit code. */
bool reward_score_wants_connect(int argc, char **argv);
int reward_score_connect_main(int argc, char **argv);
#endif /* RLHF_REWARD_H */
