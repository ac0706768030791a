"""Sweep throughput: points per second of ``refact sweep``, per core and for a worker pool.

    python benchmarks/sweep_throughput.py [--points 2**23] [--start 0x3f000000] [--workers 2]
                                          [--backends torch,numpy]
                                          [--functions sigmoid,log_sigmoid,softplus,logit]

Each figure is whole sweep shards of 2**20 points as the workers run them (backend call,
fast candidate truth, the oracle's sample and undecided points, classification,
conventions, summary), in float32. By default the shards are spread evenly over all 2**32
bit patterns, which is the mix an exhaustive sweep sees (mostly huge, tiny and NaN
inputs); ``--start`` measures one contiguous range instead (0x3f000000: x or p in [0.5, 1),
a dense region where logit and its failures live):

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

from refact.conformance.run import sweep# noqa: E402

SHARD = 1 << 20
WARM_UP = 0x3E000000  # a shard outside both default layouts, to load backend and oracle
TARGET_TWO_CORES = 2.4e6


def _starts(points, start):
    """Shard starts: contiguous from ``start``, or spread evenly over all of float32."""
    count = points // SHARD
    if start is not None:
        return [start + i * SHARD for i in range(count)]
    spacing = (1 << 32) // count
    return [(spacing // 2 + i * spacing) // SHARD * SHARD for i in range(count)]


def _tasks(function, backend, starts):
    return [sweep.ShardTask(function, backend, "cpu", "float32", begin // SHARD, begin, begin + SHARD,
                            0, sweep.DEFAULT_SAMPLE, limit_threads=True)
            for begin in starts]


def per_core(function, backend, starts, repeat):
    sweep.run_shard(_tasks(function, backend, [WARM_UP])[0])
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for task in _tasks(function, backend, starts):
            sweep.run_shard(task)
        best = min(best, time.perf_counter() - started)
    return len(starts) * SHARD / best


def pool(function, backend, starts, workers):
    started = time.perf_counter()
    executor = sweep.ProcessPoolShardExecutor(workers, backend, "cpu")
    try:
        list(executor.map_unordered(sweep.run_shard, _tasks(function, backend, [WARM_UP] * workers)))
        startup = time.perf_counter() - started
        started = time.perf_counter()
        list(executor.map_unordered(sweep.run_shard, _tasks(function, backend, starts)))
        return len(starts) * SHARD / (time.perf_counter() - started), startup
    finally:
        executor.close()


def _count(text):
    """An integer written plainly, in hex, or as a power ``2**23``."""
    base, power, exponent = text.partition("**")
    return int(base, 0) ** int(exponent, 0) if power else int(text, 0)


def _load():
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=_count, default=1 << 23,
                        help="points per measurement, a multiple of 2**20 (default 2**23)")
    parser.add_argument("--start", type=lambda text: int(text, 0), default=None,
                        help="first bit pattern of one contiguous range (default: spread over float32)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--backends", default="torch,numpy")
    parser.add_argument("--functions", default="sigmoid,log_sigmoid,softplus,logit")
    args = parser.parse_args()
    if args.points % SHARD:
        parser.error("--points must be a multiple of 2**20")
    print(f"{sweep.cpu_name() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {_load()} at start")
    starts = _starts(args.points, args.start)
    layout = (f"from {args.start:#010x}" if args.start is not None
              else f"spread evenly over float32 ({len(starts)} shards)")
    print(f"float32, {args.points:,} points {layout}, shards of 2**20, "
          f"oracle sample {sweep.DEFAULT_SAMPLE} a shard; pool of {args.workers}")
    header = f"{'backend':10} {'function':12} {'per core':>14} {'pool':>14} {'pool/core':>9} {'start-up':>9}"
    print(header)
    print("-" * len(header))
    for backend in args.backends.split(","):
        for function in args.functions.split(","):
            one = per_core(function, backend, starts, args.repeat)
            many, startup = pool(function, backend, starts, args.workers)
            verdict = "" if many >= TARGET_TWO_CORES else "  below 2.4 M/s"
            print(f"{backend:10} {function:12} {one / 1e6:9.2f} M/s {many / 1e6:9.2f} M/s "
                  f"{many / one:9.2f} {startup:8.1f}s{verdict}", flush=True)
    print(f"{_load()} at end")


if __name__ == "__main__":
    main()
