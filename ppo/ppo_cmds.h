/* ppo/ppo_cmds.h: the ppo commands. Each takes (argc, argv) with argv[0] = the command name and
 * returns the process exit code: 0 ok, 1 failure, 2 usage. (Not ppo.h: common/ppo.h is the PPO
 * iteration engine, and common/ comes first on the include path.) */
#ifndef RLHF_PPO_CMDS_H
#define RLHF_PPO_CMDS_H

/* ppo/train.c: PPO-ptx against a served reward model (issue 11). */
int ppo_cmd_train(int argc, char **argv);

/* ppo/eval.c: a policy's mean reward, and against a baseline the win rate and the KL. */
int ppo_cmd_eval(int argc, char **argv);
#endif /* RLHF_PPO_CMDS_H */
