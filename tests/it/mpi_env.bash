# tests/it/mpi_env.bash: what every tests/it/mpi_*.sh sets up (sourced, not run). Open MPI as
# root in a container on 2 cores: run-as-root allowed, oversubscription, shared memory without
# cross-process ptrace, no binding; one thread per rank. Leak checking is off under ASan (Open
# MPI's own allocations). mpi_skip_unless PROG exits 0 with "skip: ..." when PROG was built
# without MPI (make MPI=0) or there is no mpirun.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
    OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 \
    OMPI_MCA_hwloc_base_binding_policy=none OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
mpi_skip_unless() {
    if ! command -v mpirun >/dev/null || ! ldd "$1" | grep -q libmpi; then
        echo "skip: built without MPI (or no mpirun)"
        exit 0
    fi
}
