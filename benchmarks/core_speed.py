"""Speed of the pure-Python core against the naive one-liners, as ratios measured in one run.

    python benchmarks/core_speed.py

Ratios (core time / naive time) are what the targets speak of, because the absolute
times on a shared machine move from run to run while the ratio measured in one run
mostly does not. Each figure is the best of several repeats, the two sides' repeats
alternated. Accuracy is not traded for the speed: the same run measures both sides'
worst error against mpmath, in ULPs, and a target that could only be met by a less
accurate algorithm is left missed (the report says by how much).

The naive baselines, one per row, each a per-element Python function called in a list
comprehension (the scalar row calls it once):

    sigmoid        1 / (1 + exp(-x))
    sigmoid_grad   s * (1 - s), s = 1 / (1 + exp(-x))
    log_sigmoid    -log1p(exp(-x))
    softplus       log1p(exp(x))
    logit          log(p / (1 - p))
    hard_sigmoid   min(max(x / 6 + 1/2, 0), 1)
    softmax        m = max(x); e = [exp(v - m) for v in x]; s = sum(e); [v / s for v in e]
"""

import math
import random
import timeit

import refact

LIST_SIZE = 20_000
SOFTMAX_SIZE = 1_000
SCALAR_POINT = 0.7312  # inside the sigmoid's table, the path most inputs take
ACCURACY_SAMPLE = 2_000  # points (and the whole softmax row) checked against mpmath
MPMATH_BITS = 200

TARGETS = {
    "scalar sigmoid": 1.7,
    "sigmoid of a list": 1.4,
    "sigmoid_grad of a list": 1.4,
    "log_sigmoid of a list": 1.4,
    "softplus of a list": 1.4,
    "logit of a list": 1.4,
    "hard_sigmoid of a list": 1.4,
    "softmax of 1,000 floats": 2.5,
}


def naive_sigmoid(x):
    return 1 / (1 + math.exp(-x))


def naive_sigmoid_grad(x):
    s = 1 / (1 + math.exp(-x))
    return s * (1 - s)


def naive_log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def naive_softplus(x):
    return math.log1p(math.exp(x))


def naive_logit(p):
    return math.log(p / (1 - p))


def naive_hard_sigmoid(x):
    return min(max(x / 6 + 0.5, 0.0), 1.0)


def naive_softmax(xs):
    m = max(xs)
    e = [math.exp(v - m) for v in xs]
    s = sum(e)
    return [v / s for v in e]


def truths():
    """The exact functions in mpmath, by name (softmax takes a row)."""
    import mpmath

    def sigmoid(x):
        return 1 / (1 + mpmath.exp(-x))

    def softmax(row):
        m = max(row)
        e = [mpmath.exp(mpmath.mpf(v) - m) for v in row]
        s = mpmath.fsum(e)
        return [v / s for v in e]

    return {
        "sigmoid": sigmoid,
        "sigmoid_grad": lambda x: mpmath.exp(-abs(x)) / (1 + mpmath.exp(-abs(x))) ** 2,
        "log_sigmoid": lambda x: -mpmath.log1p(mpmath.exp(-x)),
        "softplus": lambda x: mpmath.log1p(mpmath.exp(x)),
        "logit": lambda p: mpmath.log(p / (1 - p)),
        "hard_sigmoid": lambda x: min(max(x / 6 + mpmath.mpf(1) / 2, mpmath.mpf(0)), mpmath.mpf(1)),
        "softmax": softmax,
    }


def best_pair(ours, naive, number, repeat=7):
    """Best time of each side, their repeats alternated so that a burst of load on a shared
    machine does not fall on one side only."""
    times = ([], [])
    for _ in range(repeat):
        for statement, bucket in zip((ours, naive), times):
            bucket.append(timeit.timeit(statement, number=number) / number)
    return min(times[0]), min(times[1])


def max_ulp_error(values, truths):
    """The largest |value - truth| in ULPs of float64 at the truth; inf for inf or NaN."""
    import mpmath

    worst = 0.0
    for value, truth in zip(values, truths):
        if not math.isfinite(value):
            return math.inf
        t = mpmath.mpf(truth)
        if t == 0:
            worst = max(worst, 0.0 if value == 0 else math.inf)
            continue
        exponent = max(mpmath.floor(mpmath.log(abs(t), 2)), -1022)
        ulp = mpmath.ldexp(1, int(exponent) - 52)
        worst = max(worst, float(abs(mpmath.mpf(value) - t) / ulp))
    return worst


def main():
    rng = random.Random(2026)
    xs = [rng.uniform(-40.0, 40.0) for _ in range(LIST_SIZE)]
    ps = [rng.uniform(1e-12, 1.0 - 1e-12) for _ in range(LIST_SIZE)]
    hs = [rng.uniform(-6.0, 6.0) for _ in range(LIST_SIZE)]
    row = [rng.uniform(-30.0, 30.0) for _ in range(SOFTMAX_SIZE)]
    x = SCALAR_POINT

    # (row name, function name, our call, naive call, calls per timing, inputs checked,
    #  the naive values at those inputs)
    lists = [
        ("sigmoid", xs, naive_sigmoid), ("sigmoid_grad", xs, naive_sigmoid_grad),
        ("log_sigmoid", xs, naive_log_sigmoid), ("softplus", xs, naive_softplus),
        ("logit", ps, naive_logit), ("hard_sigmoid", hs, naive_hard_sigmoid),
    ]
    cases = [("scalar sigmoid", "sigmoid", lambda: refact.sigmoid(x), lambda: naive_sigmoid(x),
              200_000, [x], [naive_sigmoid(x)])]
    for name, data, naive in lists:
        ours = getattr(refact, name)
        sample = data[:ACCURACY_SAMPLE]
        cases.append((f"{name} of a list", name,
                      lambda ours=ours, data=data: ours(data),
                      lambda naive=naive, data=data: [naive(v) for v in data], 3, sample,
                      [naive(v) for v in sample]))
    cases.append(("softmax of 1,000 floats", "softmax", lambda: refact.softmax(row),
                  lambda: naive_softmax(row), 300, row, naive_softmax(row)))

    try:
        import mpmath
    except ImportError:
        mpmath = None
        print("(mpmath not installed: the accuracy columns are left empty)\n")
    if mpmath is not None:
        mpmath.mp.prec = MPMATH_BITS
        exact = truths()

    print(f"{'benchmark':26} {'refact':>11} {'naive':>11} {'ratio':>7} {'target':>7}"
          f"{'':8} {'max ULP: refact':>16} {'naive':>7}")
    for title, name, ours, naive, number, inputs, naive_values in cases:
        time_ours, time_naive = best_pair(ours, naive, number)
        ratio = time_ours / time_naive
        verdict = "ok" if ratio <= TARGETS[title] else "MISSED"
        line = (f"{title:26} {time_ours * 1e6:9.2f}us {time_naive * 1e6:9.2f}us {ratio:6.2f}x "
                f"{TARGETS[title]:6.1f}x {verdict:7}")
        if mpmath is not None:
            f = getattr(refact, name)
            if name == "softmax":
                values, true = f(inputs), exact["softmax"](inputs)
            else:
                values = [f(v) for v in inputs] if title.startswith("scalar") else f(inputs)
                true = [exact[name](mpmath.mpf(v)) for v in inputs]
            line += f" {max_ulp_error(values, true):16.3f} {max_ulp_error(naive_values, true):7.3g}"
        print(line)


if __name__ == "__main__":
    main()
