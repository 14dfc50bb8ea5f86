/* tests/bench/bench_mpi.c: data-parallel training against threads on this machine (issue 13).
 * The same `sft pretrain` (the demo-sized model: small, d 256, 4 layers, a 2048-id vocabulary,
 * global batch 16 × 128 tokens, 16 steps) runs as
 *   threads: one process, --threads 2;
 *   mpi:     mpirun -np 2 --bind-to core, --threads 1 each (each rank 8 of the 16 windows);
 * twice each, alternating; the best steady rate of each (train events of --log from step 4 to
 * the last: tokens / elapsed, start-up and the first steps excluded) gives the ratio
 * mpi / threads (goal >= 0.9), and rank 0's time inside the gradient allreduce per step
 * (run.json allreduce_ms_per_step, of the better mpi run).
 * Usage: bench_mpi [SFT_BINARY] (default: build/bin/sft beside this bench's directory). Skips
 * (exit 0, nothing written) without mpirun or with an sft built without MPI. Writes
 * mpi_np2_vs_threads2_ratio, mpi_allreduce_ms_per_step, mpi_np2_tokens_per_s,
 * threads2_tokens_per_s into bench.json. */
#include "bench_util.h"
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STEPS     16
#define FROM_STEP 4
#define REPEATS   2
#define MPI_ENV                                                                                    \
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader "           \
    "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 "
#define TRAIN_ARGS                                                                                 \
    "--corpus %s/w/corpus.train.txt --config small --batch 16 --seq 128 --steps %d "               \
    "--eval-every 0 --overwrite"

static int run(const char *cmd) {
    const int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "bench_mpi: failed (%d): %s\n", rc, cmd);
    return rc;
}

/* Steady tokens/s from a --log file: tokens of steps > FROM_STEP over their elapsed time. */
static double steady_rate(const char *log) {
    FILE *f = fopen(log, "r");
    if (!f) return 0;
    char line[4096];
    double t_from = -1, t_last = 0, tokens = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j) continue;
        if (!strcmp(json_string_value(json_object_get(j, "event")) ?: "", "train")) {
            const json_int_t step = json_integer_value(json_object_get(j, "step"));
            const double t = json_number_value(json_object_get(j, "elapsed_ms")) / 1e3;
            if (step == FROM_STEP) t_from = t;
            if (step > FROM_STEP) {
                tokens += (double)json_integer_value(json_object_get(j, "tokens"));
                t_last = t;
            }
        }
        json_decref(j);
    }
    fclose(f);
    return t_from >= 0 && t_last > t_from ? tokens / (t_last - t_from) : 0;
}

static double run_json_number(const char *dir, const char *key) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/run.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    const double x = json_number_value(json_object_get(json_object_get(j, "results"), key));
    json_decref(j);
    return x;
}

int main(int argc, char **argv) {
    char sft[PATH_MAX], self[PATH_MAX];
    if (argc > 1) {
        snprintf(sft, sizeof sft, "%s", argv[1]);
    } else {
        const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = '\0';
        snprintf(sft, sizeof sft, "%s/../bin/sft", dirname(self));
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "command -v mpirun >/dev/null && ldd %s | grep -q libmpi", sft);
    if (system(cmd) != 0) {
        printf("bench_mpi: skipped (no mpirun, or %s built without MPI)\n", sft);
        return 0;
    }
    char dir[] = "/tmp/bench_mpi.XXXXXX";
    if (!mkdtemp(dir)) return perror("bench_mpi: mkdtemp"), 1;
    snprintf(cmd, sizeof cmd, "%s world --out %s/w --size tiny --seed 1 >/dev/null", sft, dir);
    if (run(cmd)) return 1;
    /* the vocabulary once (the tokenizer both runs load) */
    snprintf(cmd, sizeof cmd,
             "%s pretrain --corpus %s/w/corpus.train.txt --config tiny --vocab-size 2048 "
             "--steps 1 --out %s/tok >/dev/null 2>&1",
             sft, dir, dir);
    if (run(cmd)) return 1;
    double best_thr = 0, best_mpi = 0, allreduce_ms = 0;
    for (int rep = 0; rep < REPEATS; rep++) {
        snprintf(cmd, sizeof cmd,
                 "%s pretrain " TRAIN_ARGS " --tokenizer %s/tok --threads 2 --out %s/thr "
                 "--log %s/thr.jsonl >/dev/null 2>&1",
                 sft, dir, STEPS, dir, dir, dir);
        if (run(cmd)) return 1;
        const double thr = steady_rate(strcat(strcpy(self, dir), "/thr.jsonl"));
        snprintf(cmd, sizeof cmd,
                 MPI_ENV "mpirun -np 2 --bind-to core %s pretrain " TRAIN_ARGS
                         " --tokenizer %s/tok --threads 1 --out %s/mpi --log %s/mpi.jsonl "
                         ">/dev/null 2>&1",
                 sft, dir, STEPS, dir, dir, dir);
        if (run(cmd)) return 1;
        const double mpi = steady_rate(strcat(strcpy(self, dir), "/mpi.jsonl"));
        printf("bench_mpi: run %d: 1 process x 2 threads %.0f tokens/s, 2 ranks x 1 thread %.0f "
               "tokens/s\n",
               rep + 1, thr, mpi);
        if (thr > best_thr) best_thr = thr;
        if (mpi > best_mpi) {
            best_mpi = mpi;
            allreduce_ms =
                run_json_number(strcat(strcpy(self, dir), "/mpi"), "allreduce_ms_per_step");
        }
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run(cmd);
    const double ratio = best_thr > 0 ? best_mpi / best_thr : 0;
    printf("%-44s %10s\n", "sft pretrain small, B 16 x T 128", "tokens/s");
    printf("%-44s %10.0f\n", "1 process x 2 threads", best_thr);
    printf("%-44s %10.0f\n", "mpirun -np 2 x 1 thread", best_mpi);
    printf("%-44s %10.2f  (goal >= 0.9)\n", "ratio np2 / threads2", ratio);
    printf("%-44s %10.1f\n", "allreduce ms per step (rank 0)", allreduce_ms);
    json_t *j = json_object();
    json_object_set_new(j, "mpi_np2_vs_threads2_ratio", json_real(ratio));
    json_object_set_new(j, "mpi_allreduce_ms_per_step", json_real(allreduce_ms));
    json_object_set_new(j, "mpi_np2_tokens_per_s", json_real(best_mpi));
    json_object_set_new(j, "threads2_tokens_per_s", json_real(best_thr));
    return bench_json_merge("bench.json", j) ? 1 : 0;
}
