#!/bin/sh
# tools/mpirun.sh - mpirun with the settings Ember's tests need on one machine, in a container,
# possibly as root: shared-memory and loopback transports only (no network probing), no
# single-copy mechanism (CMA/ptrace is usually blocked in containers), oversubscription
# allowed (CI machines have fewer cores than the 4 ranks the tests start).
#   tools/mpirun.sh -np 2 build/tools/ember train examples/digits.ini
# Exits 77 (the test harness's "skipped") when mpirun is not installed.
if ! command -v mpirun >/dev/null 2>&1; then
    echo "mpirun not found (install openmpi-bin: tools/setup.sh)" >&2
    exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_plm_rsh_agent=
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mpi_yield_when_idle=1
exec mpirun --oversubscribe --bind-to none "$@"
