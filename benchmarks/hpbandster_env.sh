#!/usr/bin/env bash
# Creates benchmarks/.hpbandster-venv: HpBandSter 0.7.4 in its own virtual environment, for
# benchmarks/hpbandster_reference.py (side-by-side figures against mpibohb). Idempotent: run it
# again and it only checks the installation. Prints the venv's python at the end.
#
#   bash benchmarks/hpbandster_env.sh            # uses python3 (3.11 here)
#   PYTHON=python3.11 bash benchmarks/hpbandster_env.sh
#
# The pins: HpBandSter 0.7.4 (2019) predates numpy 2 (its quickstart hangs forever there),
# pandas 2.3, statsmodels 0.15 and scipy 1.14; ConfigSpace 1.x renamed the API it calls
# (get_hyperparameters, Configuration.get_dictionary), 0.6.1 is the last 0.x with a
# Python 3.11 wheel. netifaces has no wheel: it builds from source (needs a C compiler).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.hpbandster-venv"
python="${PYTHON:-python3}"

requirements=(
  "hpbandster==0.7.4"
  "ConfigSpace==0.6.1"
  "Pyro4==4.82"
  "serpent==1.43"
  "netifaces==0.11.0"
  "numpy>=1.26,<2"
  "scipy>=1.11,<1.14"
  "pandas>=2.1,<2.3"
  "statsmodels>=0.14,<0.15"
  "scikit-learn>=1.4,<1.6"
)

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi

check='import hpbandster, ConfigSpace, numpy, scipy, statsmodels, pandas, Pyro4, serpent, netifaces, sklearn
from importlib.metadata import version
assert version("hpbandster") == "0.7.4", version("hpbandster")
assert version("ConfigSpace") == "0.6.1", version("ConfigSpace")
assert int(numpy.__version__.split(".")[0]) < 2, numpy.__version__'

if "$venv/bin/python" -c "$check" 2>/dev/null; then
  echo "hpbandster venv already complete: $venv" >&2
else
  "$venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
  "$venv/bin/python" -m pip install --quiet "${requirements[@]}"
  "$venv/bin/python" -c "$check"
fi

"$venv/bin/python" -c 'from importlib.metadata import version as v
print(" ".join(f"{p}=={v(p)}" for p in ("hpbandster", "ConfigSpace", "Pyro4", "serpent", "netifaces",
                                         "numpy", "scipy", "pandas", "statsmodels")))' >&2
echo "$venv/bin/python"
