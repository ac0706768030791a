"""Oracle throughput: points per second of ``truth_many`` for sigmoid and probit.

    python benchmarks/oracle_throughput.py [--points 1000]

For float32 and float64, with gmpy2 under mpmath and without it (the second run is a
subprocess with ``MPMATH_NOGMPY=1``, which makes mpmath use Python integers):

- cold: every point decided by mpmath (no golden vectors, no disk cache);
- cached: the same points answered from a warm sqlite cache in a temporary directory
  (one batched query per call), and, for comparison, one ``truth`` call per point.

The points are the ``loguniform`` case set at level ``full`` (realistic magnitudes,
each function's domain). On a shared machine the figures move with the load, which
is printed beside them.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

FUNCTIONS = ("sigmoid", "probit")
FORMATS = ("float32", "float64")


def measure(points_per_case):
    """Figures for this process's mpmath backend: {function/format: {mode: points/s}}."""
    import mpmath

    from refact.conformance.cases.sets import case_set
    from refact.conformance.truth.oracle import truth, truth_many

    results = {"backend": mpmath.libmp.BACKEND, "figures": {}}
    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["REFACT_CACHE_DIR"] = cache_dir
        for function in FUNCTIONS:
            for fmt in FORMATS:
                points = case_set("loguniform", function, fmt, level="full")[:points_per_case]
                started = time.perf_counter()
                truth_many(function, points, fmt, golden=False, cache=True)  # cold: fills the cache
                cold = len(points) / (time.perf_counter() - started)
                started = time.perf_counter()
                truth_many(function, points, fmt, golden=False)
                batched = len(points) / (time.perf_counter() - started)
                started = time.perf_counter()
                for p in points:
                    truth(function, p, fmt, golden=False)
                single = len(points) / (time.perf_counter() - started)
                results["figures"][f"{function}/{fmt}"] = {
                    "cold": cold, "cached_batch": batched, "cached_single": single,
                }
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000, help="points per function and format")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.points)))
        return 0
    runs = [measure(args.points)]
    env = dict(os.environ, MPMATH_NOGMPY="1")
    child = subprocess.run([sys.executable, __file__, "--child", "--points", str(args.points)],
                           env=env, capture_output=True, text=True, check=True)
    runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"oracle throughput, {args.points} points per row; python {platform.python_version()}, "
          f"{os.cpu_count()} cpus, load {load:.1f}")
    print(f"{'mpmath backend':15} {'function/format':18} {'cold':>10} {'cached batch':>14} {'cached single':>14}")
    for run in runs:
        for key, fig in run["figures"].items():
            print(f"{run['backend']:15} {key:18} {fig['cold']:10,.0f} {fig['cached_batch']:14,.0f} "
                  f"{fig['cached_single']:14,.0f}")
    print("(points/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
