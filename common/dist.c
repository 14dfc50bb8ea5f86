/* common/dist.c: MPI ranks and collectives (see dist.h); single-process stubs without
 * RLHF_MPI or without mpirun. */
#include "dist.h" /* own header first: proves it compiles on its own */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef RLHF_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;
static double g_comm_s; /* seconds inside dist_allreduce_f32 */

#ifdef RLHF_MPI
static bool g_mpi; /* dist_init started MPI (and dist_finalize has not ended it) */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Started by an MPI launcher: Open MPI's mpirun, a PMIx launcher (srun), MPICH's hydra. */
static bool launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}
#endif

bool dist_enabled(void) {
#ifdef RLHF_MPI
    return true;
#else
    return false;
#endif
}

int dist_rank(void) {
    return g_rank;
}

int dist_size(void) {
    return g_size;
}

double dist_comm_seconds(void) {
    return g_comm_s;
}

int64_t dist_share(int64_t n, int64_t *first) {
    const int64_t a = n * g_rank / g_size, b = n * (g_rank + 1) / g_size;
    *first = a;
    return b - a;
}

int dist_init(err_t *err) {
#ifdef RLHF_MPI
    if (g_mpi || !launched()) return 0;
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_setf(err, "MPI_Init failed");
    if (provided < MPI_THREAD_FUNNELED) {
        MPI_Finalize();
        return err_setf(err, "MPI gives thread level %d, MPI_THREAD_FUNNELED needed", provided);
    }
    g_mpi = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_comm_s = 0.0;
#else
    (void)err;
#endif
    return 0;
}

void dist_finalize(void) {
#ifdef RLHF_MPI
    if (!g_mpi) return;
    MPI_Finalize();
    g_mpi = false;
    g_rank = 0;
    g_size = 1;
#endif
}

/* MPI counts are int: large buffers go in pieces of at most 2^30 elements. */
#define PIECE ((size_t)1 << 30)

void dist_allreduce_f32(float *x, size_t n, float scale) {
    if (g_size > 1) {
#ifdef RLHF_MPI
        const double t0 = now_s();
        for (size_t at = 0; at < n; at += PIECE) {
            const size_t k = n - at < PIECE ? n - at : PIECE;
            MPI_Allreduce(MPI_IN_PLACE, x + at, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        }
        g_comm_s += now_s() - t0;
#endif
    }
    if (scale != 1.0f)
        for (size_t i = 0; i < n; i++) x[i] *= scale;
}

void dist_sum_f64(double *x, int n) {
    if (g_size <= 1 || n <= 0) return;
#ifdef RLHF_MPI
    if (n > DIST_MAX_SMALL)
        dist_abort("dist", "dist_sum_f64: %d values, at most %d", n, DIST_MAX_SMALL);
    double *all = malloc((size_t)g_size * (size_t)n * sizeof *all);
    if (!all) dist_abort("dist", "out of memory");
    MPI_Allgather(x, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD);
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int r = 0; r < g_size; r++) s += all[(size_t)r * (size_t)n + (size_t)i];
        x[i] = s;
    }
    free(all);
#else
    (void)x;
#endif
}

double dist_mean(double value, double weight) {
    if (g_size <= 1) return value;
    /* [Σ w·v, Σ w, Σ v, count of non-finite values] */
    double v[4] = {weight * value, weight, value, isfinite(value) ? 0.0 : 1.0};
    dist_sum_f64(v, 4);
    if (v[3] > 0) return (double)NAN;
    return v[1] != 0.0 ? v[0] / v[1] : v[2] / (double)g_size;
}

void dist_bcast(void *buf, size_t bytes, int root) {
    if (g_size <= 1) return;
#ifdef RLHF_MPI
    for (size_t at = 0; at < bytes; at += PIECE) {
        const size_t k = bytes - at < PIECE ? bytes - at : PIECE;
        MPI_Bcast((char *)buf + at, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
    }
#else
    (void)buf, (void)bytes, (void)root;
#endif
}

void dist_barrier(void) {
#ifdef RLHF_MPI
    if (g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

int dist_check_same(uint64_t x, const char *what, err_t *err) {
    if (g_size <= 1) return 0;
#ifdef RLHF_MPI
    uint64_t *all = malloc((size_t)g_size * sizeof *all);
    if (!all) return err_setf(err, "out of memory");
    MPI_Allgather(&x, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    int bad = -1;
    for (int r = 1; r < g_size && bad < 0; r++)
        if (all[r] != all[0]) bad = r;
    int rc = 0;
    if (bad >= 0)
        rc = err_setf(err,
                      "%s: rank %d holds checksum 0x%016" PRIx64 ", rank 0 0x%016" PRIx64
                      " (the ranks have diverged)",
                      what, bad, all[bad], all[0]);
    free(all);
    return rc;
#else
    (void)x, (void)what, (void)err;
    return 0;
#endif
}

void dist_abort(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: rank %d: ", prog, g_rank);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
#ifdef RLHF_MPI
    if (g_mpi) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    exit(1);
}
