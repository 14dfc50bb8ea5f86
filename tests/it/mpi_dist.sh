#!/usr/bin/env bash
# common/dist's unit suite (tests/test_dist.c) on two ranks: real sums, shares, weighted means,
# a broadcast and a checksum that differs by rank. Skipped (with a line saying so) when the
# binaries are built without MPI (make MPI=0) or mpirun is missing.
set -euo pipefail
: "${BIN:?BIN must be the absolute path of build/bin}"
# Open MPI in CI and here: root, 2 cores, no network: shared memory only, no process binding
source "$(dirname "${BASH_SOURCE[0]}")/mpi_env.bash"
mpi_skip_unless "$BIN/run_tests"
out=$(CK_FORK=no CK_RUN_SUITE=dist timeout 120 mpirun -np 2 "$BIN/run_tests" 2>&1) || {
    echo "$out"
    echo "FAIL: the dist suite on 2 ranks"
    exit 1
}
echo "$out"
[ "$(grep -c 'Checks: 6, Failures: 0, Errors: 0' <<<"$out")" -eq 2 ] ||
    { echo "FAIL: expected both ranks to pass all 6 checks"; exit 1; }
echo "ok"
