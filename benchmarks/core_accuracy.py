"""Accuracy of the pure-Python core against mpmath, the figures of the README measured in one run.

    python benchmarks/core_accuracy.py [--points 100000] [--rows 3000]

Elementwise functions, each on two seeded samples of --points inputs:

  (a) x uniform on [-40, 40], where the functions bend (logit, probit: p uniform in (0, 1));
  (b) |x| log-uniform from 5e-324 to 1.8e308 with a random sign, the whole float range
      (logit, probit: a third each of tiny p, 1 - q and 1/2 +- q/4, with q log-uniform).

softmax and log_softmax on --rows seeded rows of 1 to 100 elements, at temperature 1 and
at a temperature log-uniform in [1e-3, 7.3]; logsumexp (which has no temperature) on the
same rows; all three on the row of one element against 127 equal ones, which put softmax
2.9 ULP off before its exponentials were carried in double-double. The worst row is named
by its index k: it is ``random_rows(random.Random(ROW_SEED), --rows)[k]``.

The error of a result y is |y - t| / ulp(t) for the truth t, ulp(t) being the float64
spacing at t's binade (2**-1074 below 2**-1022): 0.5 or less is correctly rounded, and a
truth below 2**-1075, whose correct float is 0.0, is measured in subnormal ULPs. Truths
come from mpmath at 256 bits. The default run takes about two and a half minutes on one
core; --points 2000 --rows 100 is a quick check (4 seconds).
"""

import argparse
import math
import random
import sys
import time
from statistics import NormalDist

import mpmath

import refact

PREC = 256
POINT_SEEDS = {"a": 1, "b": 2}
ROW_SEED = 3
ADVERSARIAL_ROW = [-27.032147505172947] + [-27.725615041622213] * 127
# The ceilings the core is held to (tests/core asserts tighter ones for most functions):
# an error above them is a bug, not a rounding. 1 ULP for the elementwise functions.
BUDGETS = {"softmax": 1.0, "log_softmax": 2.0, "logsumexp": 2.0}
ELEMENTWISE_BUDGET = 1.0


# -- errors -----------------------------------------------------------------------------------

def ulp(truth):
    """The float64 spacing at the binade of a finite real, as an mpf."""
    if not truth:
        return mpmath.ldexp(1, -1074)
    _, exponent = mpmath.frexp(truth)  # |truth| = m 2**exponent, 1/2 <= m < 1
    return mpmath.ldexp(1, max(exponent - 1, -1022) - 52)


def ulp_error(value, truth):
    """|value - truth| in ULPs of float64 at the truth; inf for a NaN or an infinity."""
    if not math.isfinite(value):
        return math.inf
    return float(abs(mpmath.mpf(value) - truth) / ulp(truth))


class Tally:
    """Worst error and where it was, and how many errors were within 0.5 and 1 ULP."""

    def __init__(self):
        self.count = self.rounded = self.within_one = 0
        self.worst, self.where = -1.0, None

    def add(self, error, where):
        self.count += 1
        self.rounded += error <= 0.5
        self.within_one += error <= 1.0
        if error > self.worst:
            self.worst, self.where = error, where


# -- truths of the elementwise functions --------------------------------------------------------
# Each takes the exact float input and uses a formula without cancellation where it is used;
# mpmath's exponent range is unbounded, so e**1e300 or e**-1e300 are ordinary numbers to it.

def true_sigmoid(x):
    return 1 / (1 + mpmath.exp(-mpmath.mpf(x)))


def true_sigmoid_grad(x):
    e = mpmath.exp(-abs(mpmath.mpf(x)))
    return e / (1 + e) ** 2


def true_softplus(x):
    x = mpmath.mpf(x)
    return max(x, 0) + mpmath.log1p(mpmath.exp(-abs(x)))  # two terms >= 0: no cancellation


def true_log_sigmoid(x):
    return -true_softplus(-x)


def true_logit(p):
    p = mpmath.mpf(p)
    return mpmath.log(p / (1 - p))


def true_hard_sigmoid(x):
    return min(max(mpmath.mpf(x) / 6 + mpmath.mpf(0.5), 0), 1)


# Beyond this, Phi(x) = phi(x)/|x| (1 - 1/x**2 + ...) is its first term to 2**-300, finer than
# PREC; mpmath's ncdf takes milliseconds there (x**2/2 has over 300 bits before the point).
_NDTR_ASYMPTOTIC = 2.0 ** 150


def true_ndtr(x):
    if x < -_NDTR_ASYMPTOTIC:
        return mpmath.npdf(x) / -mpmath.mpf(x)
    return mpmath.ncdf(x)


def true_probit(p):
    """The x with Phi(x) = p, by Newton steps extended to fourth order (one Phi per step).

    With d = (p - Phi(x))/phi(x), the quantile's Taylor series around p' = Phi(x) gives
    x + d + x d**2/2 + (1 + 2x**2) d**3/6 + x (7 + 6x**2) d**4/24 + O(d**5). The start, the
    standard library's quantile (good to about 1e-16), owes nothing to refact, and from it
    one step leaves an error near d**5, far below PREC; the loop checks that it did.
    """
    if p > 0.5:
        return -true_probit(1.0 - p)  # 1 - p is exact; the tail is computed without cancellation
    x = mpmath.mpf(NormalDist().inv_cdf(p))
    for _ in range(20):
        d = (p - mpmath.ncdf(x)) / mpmath.npdf(x)
        x2 = x * x
        x += d * (1 + d * (x / 2 + d * ((1 + 2 * x2) / 6 + d * x * (7 + 6 * x2) / 24)))
        if abs(d) <= mpmath.ldexp(abs(x), -40):
            return x
    raise ArithmeticError(f"the probit truth of {p!r} did not converge")


ELEMENTWISE = {  # name: (refact function, truth, takes probabilities)
    "sigmoid": (refact.sigmoid, true_sigmoid, False),
    "softplus": (refact.softplus, true_softplus, False),
    "log_sigmoid": (refact.log_sigmoid, true_log_sigmoid, False),
    "sigmoid_grad": (refact.sigmoid_grad, true_sigmoid_grad, False),
    "logit": (refact.logit, true_logit, True),
    "hard_sigmoid": (refact.hard_sigmoid, true_hard_sigmoid, False),
    "ndtr": (refact.ndtr, true_ndtr, False),
    "probit": (refact.probit, true_probit, True),
}


# -- samples ----------------------------------------------------------------------------------

def log_uniform(rng, low, high):
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def real_sample(rng, kind, n):
    if kind == "a":
        return [rng.uniform(-40.0, 40.0) for _ in range(n)]
    return [rng.choice((-1.0, 1.0)) * log_uniform(rng, 5e-324, sys.float_info.max) for _ in range(n)]


def probability_sample(rng, kind, n):
    if kind == "a":
        ps = []
        while len(ps) < n:
            p = rng.random()
            if p > 0.0:
                ps.append(p)
        return ps
    ps = []
    for i in range(n):
        # Below 2**-53, 1 - q rounds to 1 and 1/2 +- q/4 to 1/2: q starts there for those two.
        if i % 3 == 0:
            ps.append(log_uniform(rng, 5e-324, 1.0))
        elif i % 3 == 1:
            ps.append(1.0 - log_uniform(rng, 2.0 ** -53, 1.0))
        else:
            ps.append(0.5 + rng.choice((-0.25, 0.25)) * log_uniform(rng, 2.0 ** -53, 1.0))
    return ps


def random_rows(rng, count):
    """Rows of 1 to 100 elements, each of one kind: moderate logits, wide ones (most of their
    exponentials underflow), near-ties (every term of the sum matters), or a mixture of
    these with one element in ten of a magnitude from 1e-300 to 1e300."""
    rows = []
    for _ in range(count):
        centre = rng.uniform(-30.0, 30.0)
        draws = (
            lambda: rng.uniform(-30.0, 30.0),
            lambda: rng.uniform(-1e4, 1e4),
            lambda: centre + 1e-3 * rng.random(),
        )
        kind = rng.randrange(len(draws) + 1)  # the last: the mixture
        row = []
        for _ in range(rng.randint(1, 100)):
            if kind < len(draws):
                row.append(draws[kind]())
            elif rng.random() < 0.1:
                row.append(rng.choice((-1.0, 1.0)) * 10.0 ** rng.uniform(-300.0, 300.0))
            else:
                row.append(rng.choice(draws)())
        rows.append(row)
    return rows


# -- measurements -----------------------------------------------------------------------------

def elementwise_tally(function, truth, inputs):
    tally = Tally()
    for x, y in zip(inputs, function(inputs)):
        tally.add(ulp_error(y, truth(x)), x)
    return tally


def true_row(row, temperature):
    """(softmax, log_softmax, logsumexp) of row / temperature in mpmath.

    Everything is relative to the maximum m: x_i - m is exact (mpmath adds exactly on
    request), then divided by the temperature with one rounding, so an entry of -1e300
    costs nothing. The maximum's own term e**0 = 1 is kept out of the sum R of the others,
    so that log1p(R) keeps an R of e**-740.
    """
    t = mpmath.mpf(temperature)
    top = max(row)
    shifted = [mpmath.fsub(v, top, exact=True) / t for v in row]
    k = row.index(top)
    log_norm = mpmath.log1p(mpmath.fsum(mpmath.exp(d) for i, d in enumerate(shifted) if i != k))
    logs = [d - log_norm for d in shifted]
    return [mpmath.exp(v) for v in logs], logs, mpmath.mpf(top) / t + log_norm


def row_tallies(rows, temperatures):
    """Tallies of softmax, log_softmax and logsumexp, row k at temperatures[k]; logsumexp
    only where the temperature is 1. Errors are located as (row index, element index)."""
    tallies = {name: Tally() for name in BUDGETS}
    for k, (row, t) in enumerate(zip(rows, temperatures)):
        probs, logs, log_norm = true_row(row, t)
        for name, truths in (("softmax", probs), ("log_softmax", logs)):
            values = getattr(refact, name)(row, temperature=t)
            for i, (y, truth) in enumerate(zip(values, truths)):
                tallies[name].add(ulp_error(y, truth), (k, i))
        if t == 1.0:
            tallies["logsumexp"].add(ulp_error(refact.logsumexp(row), log_norm), (k, None))
    return tallies


# -- report -----------------------------------------------------------------------------------

def percent(part, whole):
    """Rounded down, so that 100 means every one."""
    if part == whole:
        return "100"
    return f"{math.floor(100_000 * part / whole) / 1000:.3f}"


def report(function, set_name, tally, worst_input, over_budget):
    """Prints the table's line, and adds it to ``over_budget`` if the worst error is a bug."""
    print(f"{function:13} {set_name:16} {tally.count:>8} {tally.worst:8.3f} "
          f"{percent(tally.rounded, tally.count):>8} {percent(tally.within_one, tally.count):>8}  "
          f"{worst_input}", flush=True)
    if tally.worst > BUDGETS.get(function, ELEMENTWISE_BUDGET):
        over_budget.append(f"{function} {set_name} at {worst_input}")


def describe_row_error(rows, temperatures, where):
    k, i = where
    text = f"row {k} (n={len(rows[k])})"
    if i is not None:
        text += f" [{i}] = {rows[k][i]!r}"
    if temperatures[k] != 1.0:
        text += f", T = {temperatures[k]!r}"
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000, help="inputs per sample")
    parser.add_argument("--rows", type=int, default=3000, help="random rows")
    args = parser.parse_args()
    start = time.perf_counter()
    mpmath.mp.prec = PREC

    print(f"mpmath {mpmath.__version__} ({mpmath.libmp.BACKEND} backend) at {PREC} bits; "
          f"{args.points:,} points per sample, {args.rows:,} rows\n")
    print(f"{'function':13} {'set':16} {'points':>8} {'max ULP':>8} {'CR %':>8} {'<=1 ULP%':>8}  "
          "worst input")
    over = []
    for kind, seed in POINT_SEEDS.items():
        reals = real_sample(random.Random(seed), kind, args.points)
        probabilities = probability_sample(random.Random(seed), kind, args.points)
        for name, (function, truth, takes_probabilities) in ELEMENTWISE.items():
            tally = elementwise_tally(function, truth, probabilities if takes_probabilities else reals)
            report(name, f"({kind})", tally, repr(tally.where), over)

    rows = random_rows(random.Random(ROW_SEED), args.rows)
    # One temperature per row, log-uniform, from a generator of their own: random_rows
    # alone then reproduces a row (see the module docstring).
    temperature_rng = random.Random(ROW_SEED + 1)
    temperatures = [log_uniform(temperature_rng, 1e-3, 7.3) for _ in rows]
    row_sets = [
        ("rows, T = 1", rows, [1.0] * len(rows)),
        ("rows, T random", rows, temperatures),
        ("adversarial row", [ADVERSARIAL_ROW], [1.0]),
    ]
    for set_name, set_rows, set_temperatures in row_sets:
        for name, tally in row_tallies(set_rows, set_temperatures).items():
            if tally.count:
                where = describe_row_error(set_rows, set_temperatures, tally.where)
                report(name, set_name, tally, where, over)

    print(f"\nover budget (1 ULP elementwise and softmax, 2 ULP log_softmax and logsumexp): "
          f"{'; '.join(over) if over else 'none'}")
    print(f"total time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
