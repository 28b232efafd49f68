#!/usr/bin/env bash
# How often SLURM's pmi2 rejects the mpich wheel's start-up across the test cluster's two nodes,
# for each MPICH network layer (the README's "MPI launcher" figures):
#     eval "$(bash tests/cluster/start_slurm.sh)"; bash tests/cluster/pmi2_starts.sh 40
# prints, per layer: starts that completed, that pmi2 rejected, and that failed otherwise.
set -uo pipefail
n=${1:-40}
root=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
hello=$(mktemp --suffix=.py)
trap 'rm -f "$hello"' EXIT
echo 'import numpy, scipy, ConfigSpace; from mpi4py import MPI; MPI.COMM_WORLD.allreduce(1)' > "$hello"
for netmod in ofi ucx; do
    ok=0 rejected=0 other=0
    for _ in $(seq "$n"); do
        out=$(MPIR_CVAR_CH4_NETMOD=$netmod timeout 40 srun --mpi=pmi2 --kill-on-bad-exit=1 --overcommit \
              --nodes=2 --ntasks-per-node=2 "$python" "$hello" 2>&1)
        status=$?
        if grep -q "value not properly terminated" <<< "$out"; then rejected=$((rejected + 1))
        elif [ $status = 0 ]; then ok=$((ok + 1))
        else other=$((other + 1)); echo "$out" | tail -n 3 >&2
        fi
    done
    echo "MPIR_CVAR_CH4_NETMOD=$netmod: $n starts, $ok completed, $rejected rejected by pmi2, $other failed otherwise"
done
