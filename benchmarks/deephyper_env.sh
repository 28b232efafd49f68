#!/usr/bin/env bash
# Creates benchmarks/.deephyper-venv: DeepHyper (CBO with its SuccessiveHalvingStopper), the peer of
# benchmarks/deephyper_peer.py and benchmarks/deephyper_throughput.py, in its own virtual
# environment, so that its pins cannot disturb the project's (CI does not install it). Idempotent:
# run it again and it only checks the installation. Prints the venv's python at the end (versions
# on stderr).
#
#   bash benchmarks/deephyper_env.sh             # uses python3 (3.11 here)
#   PYTHON=python3.11 bash benchmarks/deephyper_env.sh
#
# The pins: DeepHyper 0.13.2 (the newest release on PyPI when this was written) with the versions
# its requirements resolved to; ConfigSpace, numpy and scikit-learn are the project venv's, for
# benchmarks/problems.py; mpi4py 4.1.2 and the MPICH 5.0.2 wheel (its mpiexec in the venv's bin)
# for deephyper_throughput.py's mpicomm evaluator.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.deephyper-venv"
python="${PYTHON:-python3}"

pins=(
  "deephyper==0.13.2"
  "ConfigSpace==1.2.2"
  "numpy==2.4.6"
  "scipy==1.17.1"
  "scikit-learn==1.9.1"
  "pandas==3.1.1"
  "pydantic==2.14.4"
  "pymoo==0.6.2"
  "matplotlib==3.11.2"
  "joblib==1.6.0"
  "loky==3.7.0"
  "mpi4py==4.1.2"
  "mpich==5.0.2"
)

check='import deephyper, ConfigSpace, numpy, sklearn, mpi4py
from deephyper.hpo import CBO, HpProblem
from deephyper.stopper import SuccessiveHalvingStopper
from deephyper.evaluator.storage import MemoryStorage
from importlib.metadata import version
for name, wanted in (("deephyper", "0.13.2"), ("ConfigSpace", "1.2.2"), ("mpi4py", "4.1.2"), ("mpich", "5.0.2")):
    assert version(name) == wanted, (name, version(name))'

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi

if "$venv/bin/python" -c "$check" 2>/dev/null; then
  echo "deephyper venv already complete: $venv" >&2
else
  "$venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
  "$venv/bin/python" -m pip install --quiet "${pins[@]}"
  "$venv/bin/python" -c "$check"
fi

"$venv/bin/python" -c 'from importlib.metadata import version
print(" ".join(f"{p}=={version(p)}" for p in ("deephyper", "ConfigSpace", "numpy", "scipy", "scikit-learn", "pandas",
                                               "pydantic", "pymoo", "mpi4py", "mpich")))' >&2
echo "$venv/bin/python"
