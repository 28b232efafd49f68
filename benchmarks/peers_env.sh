#!/usr/bin/env bash
# Creates benchmarks/.peers-venv: the peer optimisers of benchmarks/peers.py (Optuna's TPE sampler
# with its HyperbandPruner, and DEHB) in their own virtual environment, so that their pins cannot
# disturb the project's. Idempotent: run it again and it only checks the installation. Prints the
# venv's python at the end (versions on stderr).
#
#   bash benchmarks/peers_env.sh                 # uses python3 (3.11 here)
#   PYTHON=python3.11 bash benchmarks/peers_env.sh
#
# The pins: DEHB 0.1.2 (the last release) requires numpy < 2 and pulls in dask, distributed, loguru,
# pandas and pyarrow (dask only runs with more than one worker; peers.py uses one). ConfigSpace and
# scikit-learn are the project venv's versions, for benchmarks/problems.py. If DEHB cannot be
# installed, the venv is still made with Optuna and the script says that DEHB is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.peers-venv"
python="${PYTHON:-python3}"

common=(
  "optuna==5.0.0"
  "ConfigSpace==1.2.0"
  "numpy==1.26.4"
  "scipy==1.17.1"
  "scikit-learn==1.9.1"
)
dehb=(
  "dehb==0.1.2"
  "loguru==0.7.3"
  "dask==2026.8.0"
  "distributed==2026.8.0"
  "pandas==3.0.6"
  "pyarrow==26.0.1"
)

check_common='import optuna, ConfigSpace, numpy, scipy, sklearn
from importlib.metadata import version
assert version("optuna") == "5.0.0", version("optuna")
assert version("ConfigSpace") == "1.2.0", version("ConfigSpace")'
check_dehb='from dehb import DEHB
from importlib.metadata import version
assert version("dehb") == "0.1.2", version("dehb")'

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi

if "$venv/bin/python" -c "$check_common" 2>/dev/null && "$venv/bin/python" -c "$check_dehb" 2>/dev/null; then
  echo "peers venv already complete: $venv" >&2
else
  "$venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
  if ! "$venv/bin/python" -m pip install --quiet "${common[@]}" "${dehb[@]}"; then
    echo "installing DEHB failed: installing Optuna alone" >&2
    "$venv/bin/python" -m pip install --quiet "${common[@]}"
  fi
  "$venv/bin/python" -c "$check_common"
fi

if ! dehb_error="$("$venv/bin/python" -c "$check_dehb" 2>&1)"; then
  echo "DEHB is MISSING from $venv (peers.py --optimizer dehb will fail): ${dehb_error##*$'\n'}" >&2
fi

"$venv/bin/python" -c 'from importlib.metadata import PackageNotFoundError, version
def v(name):
    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return f"{name} missing"
print(" ".join(v(p) for p in ("optuna", "dehb", "ConfigSpace", "numpy", "scipy", "scikit-learn", "loguru", "dask",
                              "distributed", "pandas", "pyarrow")))' >&2
echo "$venv/bin/python"
