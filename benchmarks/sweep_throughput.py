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

Beside them, the two limits a sweep cannot beat, measured in the same run on the same
shards (one core): the framework's call alone (``engine.outputs_on``) and the truth alone
(``arrays.point_truths`` with the sweep's oracle sample), and the sweep's rate as a
fraction of each. Targets: sigmoid 20 M points/s per core, logit on [0.5, 1)
(``--start 0x3f000000``) 10 M/s. On a shared machine the figures move with the load,
which is printed beside them; the ratios, taken in one run, move less.
"""

import argparse
import os
import platform
import time

# One compute thread per process, as in the pool workers; set before any framework loads.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

from refact.backends import get_backend  # noqa: E402
from refact.conformance.numbers.formats import values_of_bits  # noqa: E402
from refact.conformance.run import engine, sweep  # noqa: E402
from refact.conformance.truth.arrays import point_truths  # noqa: E402

SHARD = 1 << 20
WARM_UP = 0x3E000000  # a shard outside both default layouts, to load backend and oracle
#: points per second per core a sweep should reach (issue 11, item 6)
TARGET_PER_CORE = {"sigmoid": 20e6, "logit": 10e6}


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


def limits(function, backend_name, starts, repeat):
    """``(call alone, truth alone)`` in points per second on one core, on the same shards."""
    backend = get_backend(backend_name)
    shards = [np.arange(begin, begin + SHARD, dtype=np.uint64) for begin in [WARM_UP] + starts]
    best_call = best_truth = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for bits in shards[1:]:
            engine.outputs_on(function, "float32", bits, backend=backend)
        best_call = min(best_call, time.perf_counter() - started)
        started = time.perf_counter()
        for index, bits in enumerate(shards[1:]):
            point_truths(function, "float32", values_of_bits(bits, "float32"), bits=bits,
                         sample=sweep.DEFAULT_SAMPLE, seed=(0, index),
                         second_every=sweep.SECOND_FORMULA_EVERY)
        best_truth = min(best_truth, time.perf_counter() - started)
    points = len(starts) * SHARD
    return points / best_call, points / best_truth


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
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {_load()} at start")
    starts = _starts(args.points, args.start)
    layout = (f"from {args.start:#010x}" if args.start is not None
              else f"spread evenly over float32 ({len(starts)} shards)")
    print(f"float32, {args.points:,} points {layout}, shards of 2**20, "
          f"oracle sample {sweep.DEFAULT_SAMPLE} a shard; pool of {args.workers}")
    header = (f"{'backend':10} {'function':12} {'per core':>10} {'call':>10} {'truth':>10} "
              f"{'/call':>6} {'/truth':>6} {'pool':>10} {'pool/core':>9} {'start-up':>9}")
    print(header + "   (M points/s; /call, /truth: the sweep's rate over each limit)")
    print("-" * len(header))
    for backend in args.backends.split(","):
        for function in args.functions.split(","):
            one = per_core(function, backend, starts, args.repeat)
            call, truth = limits(function, backend, starts, args.repeat)
            many, startup = pool(function, backend, starts, args.workers)
            target = TARGET_PER_CORE.get(function)
            verdict = f"  below the target {target / 1e6:g} M/s" if target and one < target else ""
            print(f"{backend:10} {function:12} {one / 1e6:10.2f} {call / 1e6:10.2f} {truth / 1e6:10.2f} "
                  f"{one / call:6.2f} {one / truth:6.2f} {many / 1e6:10.2f} {many / one:9.2f} "
                  f"{startup:8.1f}s{verdict}", flush=True)
    print(f"{_load()} at end")


if __name__ == "__main__":
    main()
