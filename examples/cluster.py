"""Example 4 of the HpBandSter quickstart: a distributed run on a cluster.

Submit it with a job script (see ``jobscripts/``), which runs on every allocated slot:

    qsub jobscripts/sge.qsub          # SGE: mpiexec -n $NSLOTS python examples/cluster.py --run_dir ...
    sbatch jobscripts/slurm.sbatch    # SLURM: mpiexec -n $SLURM_NTASKS (or srun --mpi=pmi2) python ...

HpBandSter needed ``--run_id``, ``--nic_name`` and ``--shared_directory`` here so that workers
could find the nameserver; the MPI launcher does that job. The run directory is where results go;
the run resumes from it when the job is started again (after a time limit, a crash, a requeue).
Exit code 99 means the run was stopped by a signal and can be resumed.
"""

import argparse
import logging

from toy_worker import MyWorker, add_common_arguments, print_summary

from mpibohb import BOHB


def main():
    parser = argparse.ArgumentParser(description="mpibohb: BOHB on a cluster.")
    add_common_arguments(parser)
    parser.add_argument("--run_dir", default="runs/cluster", help="Directory the results are written to.")
    parser.add_argument("--fill_tail", action="store_true",
                        help="Start the last brackets early, so that many workers stay busy to the end of the run.")
    parser.add_argument("--asynchronous", action="store_true",
                        help="Promote configurations as soon as they are due: no worker waits for a straggler.")
    parser.add_argument("--keep_busy", action="store_true",
                        help="With --asynchronous: idle workers at the end get extra configurations.")
    parser.add_argument("--brackets", type=int, default=None,
                        help="Cycle through this many of Hyperband's brackets, most aggressive first (default: all).")
    parser.add_argument("--model", choices=["tpe", "hpbandster"], default="tpe",
                        help="BOHB's model: tpe (the default) or hpbandster (HpBandSter's KDE, the BOHB paper's).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    bohb = BOHB(configspace=MyWorker.get_configspace(), min_budget=args.min_budget,
                max_budget=args.max_budget, seed=args.seed, run_dir=args.run_dir, fill_tail=args.fill_tail,
                asynchronous=args.asynchronous, keep_busy=args.keep_busy, brackets=args.brackets, model=args.model)
    res = bohb.run(n_iterations=args.n_iterations, worker=MyWorker(sleep_interval=args.sleep_interval),
                   resume=True)
    print_summary(res, args.max_budget)
    print("Results are in", args.run_dir)


if __name__ == "__main__":
    main()
