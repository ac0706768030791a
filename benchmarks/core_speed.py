"""Speed of the pure-Python core against the naive one-liners, as ratios measured in one run.

    python benchmarks/core_speed.py

Ratios (core time / naive time) are what the targets speak of, because the absolute
times on a shared machine move from run to run while the ratio measured in one run
mostly does not. Each figure is the best of several repeats. Accuracy is not traded
for the speed: the same run measures both sides' worst error against mpmath.
"""

import math
import random
import timeit

import refact

TARGETS = {"scalar sigmoid": 1.5, "sigmoid of a 20,000-float list": 1.0, "softmax of 1,000 floats": 1.5}


def naive_sigmoid(x):
    return 1 / (1 + math.exp(-x))


def naive_softmax(xs):
    m = max(xs)
    e = [math.exp(v - m) for v in xs]
    s = sum(e)
    return [v / s for v in e]


def best_pair(ours, naive, number, repeat=7):
    """Best time of each side, their repeats alternated so that a burst of load on a shared
    machine does not fall on one side only."""
    times = ([], [])
    for _ in range(repeat):
        for statement, bucket in zip((ours, naive), times):
            bucket.append(timeit.timeit(statement, number=number) / number)
    return min(times[0]), min(times[1])


def max_ulp_error(values, truths):
    import mpmath

    worst = 0.0
    for value, truth in zip(values, truths):
        t = mpmath.mpf(truth)
        if t == 0:
            continue
        exponent = max(mpmath.floor(mpmath.log(abs(t), 2)), -1022)
        ulp = mpmath.ldexp(1, int(exponent) - 52)
        worst = max(worst, float(abs(mpmath.mpf(value) - t) / ulp))
    return worst


def main():
    rng = random.Random(2026)
    xs = [rng.uniform(-40.0, 40.0) for _ in range(20_000)]
    row = [rng.uniform(-30.0, 30.0) for _ in range(1_000)]
    x = 0.7312

    rows = [
        ("scalar sigmoid", *best_pair(lambda: refact.sigmoid(x), lambda: naive_sigmoid(x), 200_000)),
        ("sigmoid of a 20,000-float list",
         *best_pair(lambda: refact.sigmoid(xs), lambda: [naive_sigmoid(v) for v in xs], 20)),
        ("softmax of 1,000 floats", *best_pair(lambda: refact.softmax(row), lambda: naive_softmax(row), 300)),
    ]
    print(f"{'benchmark':34} {'refact':>11} {'naive':>11} {'ratio':>7} {'target':>7}")
    for name, ours, naive in rows:
        ratio = ours / naive
        verdict = "ok" if ratio <= TARGETS[name] else "MISSED"
        print(f"{name:34} {ours * 1e6:9.2f}us {naive * 1e6:9.2f}us {ratio:6.2f}x {TARGETS[name]:6.1f}x {verdict}")

    try:
        import mpmath
    except ImportError:
        print("\n(mpmath not installed: accuracy comparison skipped)")
        return
    mpmath.mp.prec = 200
    sample = xs[:2000]
    truths = [1 / (1 + mpmath.exp(-mpmath.mpf(v))) for v in sample]
    print("\nmax ULP error against mpmath on 2,000 points of the list above:")
    print(f"  refact.sigmoid {max_ulp_error(refact.sigmoid(sample), truths):.3f}"
          f"   naive {max_ulp_error([naive_sigmoid(v) for v in sample], truths):.3f}")


if __name__ == "__main__":
    main()
