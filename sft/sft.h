/* sft/sft.h: the sft commands. Each takes (argc, argv) with argv[0] = the command name and
 * returns the process exit code: 0 ok, 1 failure, 2 usage. */
#ifndef RLHF_SFT_H
#define RLHF_SFT_H

int sft_cmd_pretrain(int argc, char **argv);
int sft_cmd_train(int argc, char **argv);
int sft_cmd_tokenize(int argc, char **argv);
int sft_cmd_world(int argc, char **argv);
int sft_cmd_sample(int argc, char **argv);
int sft_cmd_eval(int argc, char **argv);
#endif /* RLHF_SFT_H */
