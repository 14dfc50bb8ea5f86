/* common/ranking.h: a labeler's ranking of K completions as typed on one line, and back.
 * The line (spaces anywhere between tokens are fine):
 *     3>1=4>2                  completion 3 best, 1 and 4 tied, 2 worst (every one of 1..K once)
 *     3>1=4>2  3@6 2@1!h 4!im  then optional notes per completion: @R a 1-7 quality rating,
 *                              !FLAGS any of i (fails the instruction), h (harmful),
 *                              m (made-up facts)
 * Ranks are dense: 1 = best, a tie shares a rank, the next group gets the next number
 * (3>1=4>2 gives completion 1 rank 2, 2 rank 3, 3 rank 1, 4 rank 2).
 * No allocation, no global state. */
#ifndef RLHF_RANKING_H
#define RLHF_RANKING_H
#include "err.h"
#include <stddef.h>
#include <stdint.h>

#define RANKING_MAX_K 16 /* completions a line can rank */

enum {
    RANKING_FLAG_INSTRUCTION = 1, /* i: fails to follow the instruction */
    RANKING_FLAG_HARMFUL = 2,     /* h: harmful or rude */
    RANKING_FLAG_MADE_UP = 4,     /* m: states made-up facts */
};

typedef struct {
    int k;                     /* completions ranked */
    int rank[RANKING_MAX_K];   /* rank[i] of completion i+1: 1 = best, ties share */
    int rating[RANKING_MAX_K]; /* 1..7, 0 = not given */
    int flags[RANKING_MAX_K];  /* RANKING_FLAG_* bits */
} ranking_t;

/* Parses line (NUL-terminated, no newline needed) as a ranking of k completions (2 ≤ k ≤
 * RANKING_MAX_K). -1 with a message for the labeler in err on any mistake: "completion 5 does
 * not exist: there are 4", "completion 2 appears twice", "completion 4 is not ranked: rank all
 * 4", "expected '>' or '=' after 3, got 'x'", "rating 9 of completion 3 is not in 1-7",
 * "unknown flag 'x' for completion 2 (i, h or m)". out is written only on success. */
int ranking_parse(const char *line, int k, ranking_t *out, err_t *err);

/* Writes the ranking part of r as a line ("3>1=4>2": by rank, ties in completion order) and
 * its notes (" 3@6 2@1!h"); returns the length like snprintf. */
int ranking_format(const ranking_t *r, char *buf, size_t size);

/* Checks ranks as stored (from a database or a K-way file): 1 ≤ rank, and the ranks used are
 * consistent (any integers are accepted; only their order matters) — then rewrites them dense.
 * -1 with err set when a rank is < 1. */
int ranking_normalize(int *rank, int k, err_t *err);
#endif /* RLHF_RANKING_H */
