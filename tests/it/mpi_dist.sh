#!/usr/bin/env bash
# common/dist's unit suite (tests/test_dist.c) on two ranks: real sums, shares, weighted means,
# a broadcast and a checksum that differs by rank. Skipped (with a line saying so) when the
# binaries are built without MPI (make MPI=0) or mpirun is missing.
set -euo pipefail
: "${BIN:?BIN must be the absolute path of build/bin}"
# Open MPI in CI and here: root, 2 cores, no network: shared memory only, no process binding
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
    OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 \
    OMPI_MCA_hwloc_base_binding_policy=none OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 # Open MPI's own allocations
if ! command -v mpirun >/dev/null || ! ldd "$BIN/run_tests" | grep -q libmpi; then
    echo "skip: built without MPI (or no mpirun)"
    exit 0
fi
out=$(CK_FORK=no CK_RUN_SUITE=dist timeout 120 mpirun -np 2 "$BIN/run_tests" 2>&1) || {
    echo "$out"
    echo "FAIL: the dist suite on 2 ranks"
    exit 1
}
echo "$out"
[ "$(grep -c 'Checks: 6, Failures: 0, Errors: 0' <<<"$out")" -eq 2 ] ||
    { echo "FAIL: expected both ranks to pass all 6 checks"; exit 1; }
echo "ok"
