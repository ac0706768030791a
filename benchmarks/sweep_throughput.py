"""Sweep throughput: points per second of ``refact sweep``, per core and for a worker pool.

    python benchmarks/sweep_throughput.py [--points 2**22] [--workers 2] [--backends torch,numpy]
                                          [--functions sigmoid,log_sigmoid,softplus,logit]

Each figure is a whole sweep shard as the workers run it (backend call, fast candidate
truth, the oracle's sample and undecided points, classification, summary), on a float32
range starting at 0x3f000000 (x or p in [0.5, 0.75)), so logit's domain is covered too:

- per core: shards run in this process one after the other, after one warm-up shard
  (the backend and the oracle already loaded), with the framework limited to one thread
  as in a pool worker; the best of ``--repeat`` runs;
- pool: the same shards on a local spawned pool of ``--workers`` processes, timed after
  every worker has built its backend and run a shard, so start-up is left out (it is a
  few seconds once per sweep, and is printed separately).

The target of issue 6 is 2.4 M points/s on 2 cores (all of float32 in 30 minutes).
On a shared machine the figures move with the load, which is printed beside them.
"""

import argparse
import os
import platform
import time

# One compute thread per process, as in the pool workers; set before any framework loads.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from refact.conformance import sweep  # noqa: E402

START = 0x3F000000
SHARD = 1 << 20
TARGET_TWO_CORES = 2.4e6


def _tasks(function, backend, points, first_index=0):
    return [sweep.ShardTask(function, backend, "cpu", "float32", first_index + i,
                            START + i * SHARD, START + (i + 1) * SHARD, 0, sweep.DEFAULT_SAMPLE,
                            limit_threads=True)
            for i in range(points // SHARD)]


def per_core(function, backend, points, repeat):
    sweep.run_shard(_tasks(function, backend, SHARD, first_index=10_000)[0])  # warm-up
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for task in _tasks(function, backend, points):
            sweep.run_shard(task)
        best = min(best, time.perf_counter() - started)
    return points / best


def pool(function, backend, points, workers):
    started = time.perf_counter()
    executor = sweep.ProcessPoolShardExecutor(workers, backend, "cpu")
    try:
        warm = _tasks(function, backend, workers * SHARD, first_index=10_000)
        list(executor.map_unordered(sweep.run_shard, warm))
        startup = time.perf_counter() - started
        started = time.perf_counter()
        list(executor.map_unordered(sweep.run_shard, _tasks(function, backend, points)))
        return points / (time.perf_counter() - started), startup
    finally:
        executor.close()


def _load():
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=lambda text: int(eval(text, {})), default=1 << 22,
                        help="points per measurement, a multiple of 2**20 (default 2**22)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--backends", default="torch,numpy")
    parser.add_argument("--functions", default="sigmoid,log_sigmoid,softplus,logit")
    args = parser.parse_args()
    if args.points % SHARD:
        parser.error("--points must be a multiple of 2**20")
    print(f"{sweep.cpu_name() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {_load()} at start")
    print(f"float32 range {START:#x} + {args.points:,} points, shards of 2**20, "
          f"oracle sample {sweep.DEFAULT_SAMPLE} a shard; pool of {args.workers}")
    header = f"{'backend':10} {'function':12} {'per core':>14} {'pool':>14} {'pool/core':>9} {'start-up':>9}"
    print(header)
    print("-" * len(header))
    for backend in args.backends.split(","):
        for function in args.functions.split(","):
            one = per_core(function, backend, args.points, args.repeat)
            many, startup = pool(function, backend, args.points, args.workers)
            verdict = "" if many >= TARGET_TWO_CORES else "  below 2.4 M/s"
            print(f"{backend:10} {function:12} {one / 1e6:9.2f} M/s {many / 1e6:9.2f} M/s "
                  f"{many / one:9.2f} {startup:8.1f}s{verdict}", flush=True)
    print(f"{_load()} at end")


if __name__ == "__main__":
    main()
