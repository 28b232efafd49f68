from setuptools import find_packages, setup

MPICH = ["mpich"]
PLOT = ["matplotlib"]
BENCHMARKS = ["scikit-learn"] + PLOT + MPICH  # throughput and utilisation start mpiexec
# ruff and mypy pinned: a new release's rules must not turn CI red unasked.
TEST = ["pytest>=7", "pytest-mpi", "pytest-timeout", "pytest-xdist", "ruff==0.17.6", "mypy==2.4.1"] + BENCHMARKS

setup(
    name="mpibohb",
    version="0.1.0",
    description="BOHB, HyperBand and RandomSearch over MPI: an MPI-native successor of HpBandSter",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mpibohb", "mpibohb.*"]),
    python_requires=">=3.9",
    install_requires=["mpi4py>=3.1", "ConfigSpace>=1.2", "numpy>=1.22", "scipy>=1.8", "statsmodels>=0.13",
                      "threadpoolctl>=3.1"],
    extras_require={"mpich": MPICH, "plot": PLOT, "benchmarks": BENCHMARKS, "test": TEST},
    license="BSD-3-Clause",
)
