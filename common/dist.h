/* common/dist.h: the ranks of a data-parallel job over MPI (Open MPI), and the few collectives
 * training needs. Built with RLHF_MPI (the Makefile's default when Open MPI is found; `make
 * MPI=0` builds without it) and started by mpirun, a process is one of dist_size() ranks;
 * otherwise, or without mpirun, it is rank 0 of 1 and every call below is a cheap no-op (the
 * single-process numerics are untouched: nothing is scaled, copied or reordered).
 *
 * MPI_Init runs only under an MPI launcher (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE in the
 * environment): Open MPI's singleton init of a plain `sft train` would start a daemon and cost
 * about a second (measured: 1.0-1.3 s here) for nothing.
 *
 * Every function but dist_rank/dist_size/dist_enabled/dist_comm_seconds is collective: every
 * rank calls it, in the same order, with the same sizes. A rank that fails outside a collective
 * must exit (non-zero, without dist_finalize): mpirun then stops the whole job and names the
 * rank ("... process rank 1 ... exited ..."), where the other ranks would otherwise wait in
 * their next collective for ever. A communication failure (a rank killed, a node gone) is
 * fatal too: MPI's default error handler aborts the job.
 *
 * Process-wide state (rank, size, the time spent communicating): MPI itself is process-wide.
 * Not thread-safe: call from the main thread (MPI_THREAD_FUNNELED). */
#ifndef RLHF_DIST_H
#define RLHF_DIST_H
#include "err.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Joins the job when launched by mpirun (MPI_Init), else stays rank 0 of 1. Idempotent: later
 * calls return 0 at once. -1 with err set when MPI cannot start or gives fewer thread levels
 * than MPI_THREAD_FUNNELED (OpenMP threads never call MPI). */
int dist_init(err_t *err);
/* MPI_Finalize, when dist_init started MPI; then the process is rank 0 of 1 again. Only on
 * success, on every rank (it waits for them all): a failing rank exits without it. */
void dist_finalize(void);

/* This process's rank (0 .. size-1) and the number of ranks (1 without mpirun). */
int dist_rank(void);
int dist_size(void);
/* Compiled with MPI (RLHF_MPI). */
bool dist_enabled(void);

/* This rank's share of n items (rows of a global batch): rank r takes [n·r/size,
 * n·(r+1)/size), the first into *first; returns the count (n/size, or one more). Every item is
 * some rank's exactly once, in order. One rank: all n from 0. */
int64_t dist_share(int64_t n, int64_t *first);

/* x[0..n) = (Σ over ranks of x) * scale, in place, in fp32 (MPI_Allreduce; Open MPI's
 * large-message allreduce computes each element once and hands it to every rank, so every rank
 * gets the same bits: dist_check_same on the result confirms it). One rank: x *= scale only
 * when scale != 1. n may exceed INT_MAX (sent in pieces). */
void dist_allreduce_f32(float *x, size_t n, float scale);
/* x[0..n) = Σ over ranks of x, in place, in double, summed in rank order on every rank (an
 * allgather, then the same additions everywhere): every rank gets the same bits whatever MPI's
 * algorithm. For small vectors (counts, loss sums, figures): n <= DIST_MAX_SMALL. */
#define DIST_MAX_SMALL 128
void dist_sum_f64(double *x, int n);
/* Σ weight·value / Σ weight over the ranks: the mean of a figure each rank measured over its
 * weight items (its mean loss over its kept tokens → the global mean loss). A non-finite value
 * on any rank makes the result non-finite on every rank. Σ weight = 0 → the plain mean of the
 * values. One rank: value, unchanged. */
double dist_mean(double value, double weight);

/* Copies root's bytes into every rank's buf. */
void dist_bcast(void *buf, size_t bytes, int root);
void dist_barrier(void);

/* Compares x (a checksum of something every rank must hold identically) across the ranks: 0
 * when all hold rank 0's value; -1 with err naming what and the first rank that differs
 * ("parameters: rank 1 holds checksum 0x..., rank 0 0x..."), on every rank. */
int dist_check_same(uint64_t x, const char *what, err_t *err);

/* Prints "prog: error: rank R: message" to stderr and stops the whole job (MPI_Abort; exit 1
 * without MPI). For a failure only this rank sees, when it cannot simply exit (inside a
 * collective section). Like cli_die, one of the few functions of common/ that print. */
_Noreturn void dist_abort(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Seconds this process spent inside dist_allreduce_f32 since dist_init (waiting for the other
 * ranks included): the bench's allreduce time per step. */
double dist_comm_seconds(void);
#endif /* RLHF_DIST_H */
