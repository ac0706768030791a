"""Named, seeded, reproducible input sets for every catalog function and format.

``cases_for(function, fmt, level, seed)`` returns ``[(set_name, point), ...]``: each
point is a tuple of the function's parameters (see the catalog: ``(x,)``, ``(p, y)``,
``(row,)``, ``(logits_row, target)``, ``(student_row, teacher_row, temperature)``),
every float in it exactly a value of ``fmt``, no point repeated (a point belongs to
the first set that produced it). The sets, in order:

``special``     ±0, ±inf, NaN, smallest/largest subnormal and normal, largest finite,
                ±1, plus the catalog's special-value points
``seed``        the seed's extremes: ±10000, the seed vector [1,2,3,4,-3,-4,-2,-10000]
                (as a row, and its entries as scalars), and per-function hard cases
``thresholds``  where the function changes regime in this format, located with the
                oracle by bisection over bit patterns (where sigmoid rounds to 1, where
                exp overflows, where the true sigmoid becomes subnormal and where it
                rounds to 0, ...), the values near 0, 1/2 and 1 of the probability
                functions, and for rows the gaps at which exp(-gap) is lost beside 1,
                becomes subnormal or rounds to 0 (about 17/37/745 in float32/float64)
``bits``        random bit patterns, uniform in ULP space over the finite values
``loguniform``  log-uniform magnitudes with a random sign
``exhaustive``  (level ``full``, 16-bit formats) every one of the 65,536 bit patterns

Levels: ``quick`` (about 50 points per function and format), ``default`` (a few
hundred; their truths ship as golden vectors), ``full`` (thousands, plus exhaustive).

Row functions use rows of 8 entries in the random sets and rows of 2 or 3 in
``special`` and ``thresholds``; a runner batching rows into (N, C) arrays groups them
by length. The ``exhaustive`` set of a row function sweeps the rows ``[0, x]`` (so
softmax meets every sigmoid), of the binary cross-entropies the points ``(x, 0)`` and
``(x, 1)``.

Threshold locations are part of the golden data, so building the default set does not
wait on mpmath; ``use_golden=False`` recomputes them.
"""

import math
import random
from dataclasses import dataclass
from functools import lru_cache

from refact.conformance.truth import store
from refact.conformance.truth.catalog import get_function
from refact.conformance.truth.oracle import mp_context, point_key, truth
from refact.conformance.numbers.formats import (
    all_values, from_bits_hex, from_ordinal, get_format, is_representable, next_down, next_up,
    ordinal, random_finite, randbelow, round_to_format,
)

__all__ = [
    "LEVELS", "SET_NAMES", "SEED_VECTOR", "Threshold", "THRESHOLDS", "cases_for", "case_set",
    "threshold_values", "threshold_names", "locate_threshold",
]

LEVELS = ("quick", "default", "full")
SET_NAMES = ("special", "seed", "thresholds", "bits", "loguniform", "exhaustive")
SEED_VECTOR = (1.0, 2.0, 3.0, 4.0, -3.0, -4.0, -2.0, -10000.0)
ROW_LENGTH = 8

_SIZES = {
    "quick": {"bits": 10, "loguniform": 10, "neighbours": 0},
    "default": {"bits": 128, "loguniform": 128, "neighbours": 2},
    "full": {"bits": 4096, "loguniform": 4096, "neighbours": 16},
}

INF = math.inf


# --- thresholds -----------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """A regime change of one function in a format.

    For a bisected threshold (``predicate`` set), the location is the smallest format
    value ``x`` in ``bracket(fmt)`` with ``predicate(x, fmt)`` true; the predicate is
    false below it (monotone). For an anchor set (``anchors`` set), the locations are
    fixed format values such as ``next_down(1)``. ``domain`` clips the neighbours."""

    name: str
    description: str
    predicate: object = None
    bracket: object = None
    anchors: object = None
    domain: tuple = (-INF, INF)


def _rounded(function, x, fmt):
    """The oracle's rounded value at x; for an undecided point its best evaluation
    (threshold search only picks inputs, it never measures with this)."""
    t = truth(function, (x,), fmt)
    return t.rounded if t.decided else round_to_format(t.exact, fmt)


def _exp_at_least_overflow(y, fmt):
    """exp(y) >= the overflow threshold of fmt, decided at 256 bits (exp of a nonzero
    rational is transcendental, so it is never equal)."""
    ctx = mp_context()
    ctx.prec = 256
    bound = fmt.overflow_threshold
    return ctx.exp(ctx.convert(y)) >= ctx.mpf(bound.numerator) / bound.denominator


def _positive(fmt):
    return (0.0, fmt.largest_finite)


def _negative(fmt):
    return (-fmt.largest_finite, 0.0)


def _unit(fmt):
    return (0.0, 1.0)


def _t(name, description, function, test, bracket):
    return Threshold(name, description, lambda x, fmt: test(_rounded(function, x, fmt), x, fmt), bracket)


_BISECTED = [
    _t("sigmoid_leaves_half", "smallest x > 0 with sigmoid(x) rounding above 1/2",
       "sigmoid", lambda r, x, f: r > 0.5, _unit),
    _t("sigmoid_rounds_to_one", "smallest x where sigmoid(x) rounds to 1",
       "sigmoid", lambda r, x, f: r == 1.0, _positive),
    _t("sigmoid_normal", "smallest x where sigmoid(x) is normal (subnormal below)",
       "sigmoid", lambda r, x, f: r >= f.smallest_normal, _negative),
    _t("sigmoid_nonzero", "smallest x where sigmoid(x) does not round to 0",
       "sigmoid", lambda r, x, f: r > 0.0, _negative),
    _t("sigmoid_grad_leaves_quarter", "smallest x > 0 with sigmoid_grad(x) rounding below 1/4",
       "sigmoid_grad", lambda r, x, f: r < 0.25, _unit),
    _t("sigmoid_grad_subnormal", "smallest x > 0 where sigmoid_grad(x) is subnormal",
       "sigmoid_grad", lambda r, x, f: r < f.smallest_normal, _positive),
    _t("sigmoid_grad_zero", "smallest x > 0 where sigmoid_grad(x) rounds to 0",
       "sigmoid_grad", lambda r, x, f: r == 0.0, _positive),
    _t("log_sigmoid_leaves_x", "smallest x < 0 where log_sigmoid(x) no longer rounds to x",
       "log_sigmoid", lambda r, x, f: r != x, _negative),
    _t("log_sigmoid_subnormal", "smallest x > 0 where log_sigmoid(x) is subnormal",
       "log_sigmoid", lambda r, x, f: abs(r) < f.smallest_normal, _positive),
    _t("log_sigmoid_zero", "smallest x > 0 where log_sigmoid(x) rounds to -0",
       "log_sigmoid", lambda r, x, f: r == 0.0, _positive),
    _t("softplus_equals_x", "smallest x > 0 where softplus(x) rounds to x",
       "softplus", lambda r, x, f: r == x, _positive),
    _t("softplus_normal", "smallest x where softplus(x) is normal (subnormal below)",
       "softplus", lambda r, x, f: r >= f.smallest_normal, _negative),
    _t("softplus_nonzero", "smallest x where softplus(x) does not round to 0",
       "softplus", lambda r, x, f: r > 0.0, _negative),
    _t("ndtr_leaves_half", "smallest x > 0 with ndtr(x) rounding above 1/2",
       "ndtr", lambda r, x, f: r > 0.5, _unit),
    _t("ndtr_rounds_to_one", "smallest x where ndtr(x) rounds to 1",
       "ndtr", lambda r, x, f: r == 1.0, _positive),
    _t("ndtr_normal", "smallest x where ndtr(x) is normal (subnormal below)",
       "ndtr", lambda r, x, f: r >= f.smallest_normal, _negative),
    _t("ndtr_nonzero", "smallest x where ndtr(x) does not round to 0",
       "ndtr", lambda r, x, f: r > 0.0, _negative),
    Threshold("exp_overflow", "smallest x where exp(x) overflows to inf",
              lambda x, f: _exp_at_least_overflow(x, f), _positive),
    Threshold("exp_neg_overflow", "smallest x where exp(-x) no longer overflows",
              lambda x, f: not _exp_at_least_overflow(-x, f), _negative),
]

_ANCHORED = [
    Threshold("probability_near_zero", "the smallest subnormal and the smallest normal probabilities",
              anchors=lambda f: [f.smallest_subnormal, f.smallest_normal], domain=(0.0, 1.0)),
    Threshold("probability_near_half", "probabilities next to 1/2 (logit and probit cross 0)",
              anchors=lambda f: [0.5], domain=(0.0, 1.0)),
    Threshold("probability_near_one", "the largest probabilities below 1 (1 - p is tiny)",
              anchors=lambda f: [next_down(1.0, f)], domain=(0.0, 1.0)),
    Threshold("hard_sigmoid_kinks", "the kinks of hard_sigmoid at -3 and 3, and its centre",
              anchors=lambda f: [-3.0, 0.0, 3.0]),
    Threshold("torch_log_clamp", "p near exp(-100), where PyTorch clamps log(p) at -100",
              anchors=lambda f: [v for v in [round_to_format(math.exp(-100.0), f)] if v > 0],
              domain=(0.0, 1.0)),
]

THRESHOLDS = {t.name: t for t in _BISECTED + _ANCHORED}

# Which thresholds each function's ``thresholds`` set uses. For row functions the
# threshold x is turned into a gap g (x or -x) and rows like [0, -g].
_SCALAR_THRESHOLDS = {
    "sigmoid": ["sigmoid_leaves_half", "sigmoid_rounds_to_one", "sigmoid_normal", "sigmoid_nonzero",
                "exp_overflow", "exp_neg_overflow"],
    "sigmoid_grad": ["sigmoid_grad_leaves_quarter", "sigmoid_rounds_to_one", "sigmoid_grad_subnormal",
                     "sigmoid_grad_zero", "exp_overflow"],
    "log_sigmoid": ["log_sigmoid_leaves_x", "log_sigmoid_subnormal", "log_sigmoid_zero", "exp_neg_overflow"],
    "softplus": ["softplus_equals_x", "softplus_normal", "softplus_nonzero", "exp_overflow"],
    "hard_sigmoid": ["hard_sigmoid_kinks"],
    "ndtr": ["ndtr_leaves_half", "ndtr_rounds_to_one", "ndtr_normal", "ndtr_nonzero"],
    "logit": ["probability_near_zero", "probability_near_half", "probability_near_one"],
    "probit": ["probability_near_zero", "probability_near_half", "probability_near_one"],
    "binary_cross_entropy": ["probability_near_zero", "probability_near_one", "torch_log_clamp"],
    "binary_cross_entropy_with_logits": ["softplus_equals_x", "softplus_normal", "softplus_nonzero",
                                         "exp_overflow"],
}
# gap name -> (threshold, sign): gap = sign * threshold location
_GAPS = {
    "sigmoid_rounds_to_one": 1.0,   # exp(-g) vanishes beside 1 (about 17 in float32, 37 in float64)
    "sigmoid_normal": -1.0,         # exp(-g) / (1 + ...) turns subnormal (about 87 / 708)
    "sigmoid_nonzero": -1.0,        # ... and rounds to 0 (about 104 / 745)
    "log_sigmoid_zero": 1.0,        # log_softmax of the largest entry rounds to 0
}
_ROW_FUNCTIONS = ("softmax", "log_softmax", "logsumexp", "cross_entropy", "distillation_loss")


def threshold_names(function):
    """The threshold names the ``thresholds`` set of ``function`` is built from."""
    name = get_function(function).name
    return list(_GAPS) if name in _ROW_FUNCTIONS else list(_SCALAR_THRESHOLDS[name])


def locate_threshold(name, fmt):
    """Locate a threshold afresh (no golden data): a list of format values (empty when
    the regime change does not occur in this format's range)."""
    spec = THRESHOLDS[name]
    fmt = get_format(fmt)
    if spec.anchors is not None:
        return [float(v) for v in spec.anchors(fmt)]
    lo, hi = spec.bracket(fmt)
    found = _bisect(lambda x: spec.predicate(x, fmt), lo, hi, fmt)
    return [] if found is None else [found]


def _bisect(predicate, lo, hi, fmt):
    """Smallest value in [lo, hi] where the monotone predicate holds, by bisection
    over ordinals (so every representable value is a candidate); None if it does not
    change within the bracket."""
    if predicate(lo) or not predicate(hi):
        return None
    a, b = ordinal(lo, fmt), ordinal(hi, fmt)
    while b - a > 1:
        m = (a + b) // 2
        if predicate(from_ordinal(m, fmt)):
            b = m
        else:
            a = m
    return from_ordinal(b, fmt)


@lru_cache(maxsize=None)
def _threshold_cached(name, format_name, use_golden):
    if use_golden:
        stored = store.golden_thresholds(format_name).get(name)
        if stored is not None:
            return tuple(from_bits_hex(h, format_name) for h in stored)
    return tuple(locate_threshold(name, format_name))


def threshold_values(name, fmt, *, use_golden=True):
    """The located values of a threshold in ``fmt`` (from golden data when present)."""
    return list(_threshold_cached(name, get_format(fmt).name, use_golden))


# --- building blocks ------------------------------------------------------------------


def _neighbours(values, fmt, k, domain=(-INF, INF)):
    out = []
    for v in values:
        around = [v]
        up = down = v
        for _ in range(k):
            up, down = next_up(up, fmt), next_down(down, fmt)
            around += [up, down]
        out += [x for x in around if domain[0] <= x <= domain[1] and math.isfinite(x)]
    return out


def _rng(set_name, function, fmt, seed):
    # str seeds are hashed with SHA-512: the same stream on every platform and run.
    return random.Random(f"refact/{set_name}/{function}/{fmt.name}/{seed}")


def _fmt_specials(fmt):
    return [0.0, -0.0, INF, -INF, math.nan, 1.0, -1.0,
            fmt.smallest_subnormal, -fmt.smallest_subnormal,
            fmt.largest_subnormal, -fmt.largest_subnormal,
            fmt.smallest_normal, -fmt.smallest_normal,
            fmt.largest_finite, -fmt.largest_finite]


def _loguniform(rng, fmt, lo_exp, hi_exp):
    """A positive format value with log2 uniform in [lo_exp, hi_exp]."""
    while True:
        v = round_to_format(2.0 ** (lo_exp + (hi_exp - lo_exp) * rng.random()), fmt)
        if 0 < v < INF:
            return v


def _signed(rng, v):
    return -v if rng.getrandbits(1) else v


def _label(rng, fmt):
    """A target: 0 or 1 half of the time, else a soft label uniform in ULP space on [0, 1]."""
    pick = rng.getrandbits(2)
    if pick < 2:
        return float(pick)
    return random_finite(rng, fmt, 0.0, 1.0)


def _loguniform_probability(rng, fmt):
    """Half near 0 (log-uniform over every positive magnitude), half near 1 (1 - m)."""
    if rng.getrandbits(1):
        return _loguniform(rng, fmt, fmt.emin - fmt.precision + 1, -1)
    m = 2.0 ** (-fmt.precision + (fmt.precision - 1) * rng.random())  # in [2**-p, 1/2]
    v = round_to_format(1.0 - m, fmt)
    return v if v < 1.0 else next_down(1.0, fmt)


def _round_all(values, fmt):
    return [round_to_format(v, fmt) for v in values]


# --- per-set generators: each returns a list of points ----------------------------------


def _special(spec, fmt, level, seed):
    s = _fmt_specials(fmt)
    name = spec.name
    catalog_points = [v.args for v in spec.specials]
    roles = [p.role for p in spec.parameters]
    if roles == ["real"] or roles == ["probability"]:
        extra = [0.5, next_down(1.0, fmt), next_up(0.5, fmt)] if roles == ["probability"] else []
        points = [(x,) for x in s + extra]
    elif name == "binary_cross_entropy":
        ps = s + [0.5, next_down(1.0, fmt)]
        points = [(p, y) for p in ps for y in (0.0, 1.0)] + [(0.5, y) for y in s]
    elif name == "binary_cross_entropy_with_logits":
        points = [(x, y) for x in s for y in (0.0, 1.0)] + [(0.0, y) for y in s] + [(1.0, y) for y in s]
    elif name == "cross_entropy":
        points = [((x, 0.0), t) for x in s for t in (0, 1)]
        big = fmt.largest_finite
        points += [((big, -big), 1), ((big, big), 0), ((-big, -big), 0)]
    elif name == "distillation_loss":
        points = [((x, 0.0), (0.0, 0.0), 1.0) for x in s] + [((0.0, 0.0), (x, 0.0), 1.0) for x in s]
        points += [((0.0, 1.0), (1.0, 0.0), t) for t in s if t > 0]
    else:  # softmax, log_softmax, logsumexp
        big = fmt.largest_finite
        points = [((x, 0.0),) for x in s] + [((x,),) for x in s]
        points += [((big, big),), ((big, -big),), ((-big, -big),), ((big, big, big, big),)]
    return catalog_points + points


def _seed(spec, fmt, level, seed):
    name = spec.name
    row = tuple(_round_all(SEED_VECTOR, fmt))
    scalars = _round_all([-10000.0, 10000.0] + list(SEED_VECTOR), fmt)
    probabilities = _round_all([1e-300, 1e-30, 1e-10, 0.25, 0.75], fmt) + [
        next_up(0.5, fmt), next_down(0.5, fmt), next_down(1.0, fmt), fmt.smallest_subnormal,
    ] + _round_all([1 / (1 + math.exp(-x)) for x in SEED_VECTOR[:7]], fmt)
    probabilities = [p for p in probabilities if 0 < p < 1]
    roles = [p.role for p in spec.parameters]
    if roles == ["real"]:
        return [(x,) for x in scalars]
    if roles == ["probability"]:
        return [(p,) for p in probabilities]
    if name == "binary_cross_entropy":
        return [(p, y) for p in probabilities for y in (0.0, 1.0)]
    if name == "binary_cross_entropy_with_logits":
        return [(x, y) for x in scalars for y in (0.0, 1.0)]
    if name == "cross_entropy":
        return [(row, t) for t in range(len(row))] + [(tuple(-x for x in row), 7)]
    if name == "distillation_loss":
        reverse = tuple(reversed(row))
        return [(row, reverse, t) for t in (1.0, 2.0, 4.0)] + [(reverse, row, 2.0), (row, row, 2.0)]
    return [(row,), (tuple(reversed(row)),), (tuple(-x for x in row),),
            (tuple(_round_all([-10000.0, 10000.0], fmt)),)]


def _thresholds(spec, fmt, level, seed, use_golden=True):
    k = _SIZES[level]["neighbours"]
    name = spec.name
    points = []
    if name in _ROW_FUNCTIONS:
        gaps = []
        for threshold, sign in _GAPS.items():
            for x in threshold_values(threshold, fmt, use_golden=use_golden):
                gaps += _neighbours([abs(sign * x)], fmt, k, (0.0, INF))
        for g in dict.fromkeys(gaps):
            two = (0.0, -g)
            three = (0.0, -g, -g)
            if name == "cross_entropy":
                points += [(two, 0), (two, 1), (three, 0)]
            elif name == "distillation_loss":
                points += [(two, (0.0, 0.0), 1.0), ((0.0, 0.0), two, 1.0)]
            else:
                points += [(two,), (three,)]
        return points
    for threshold in _SCALAR_THRESHOLDS[name]:
        values = threshold_values(threshold, fmt, use_golden=use_golden)
        for x in _neighbours(values, fmt, k, THRESHOLDS[threshold].domain):
            if name == "sigmoid_grad":
                points += [(x,), (-x,)]
            elif name in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
                points += [(x, 0.0), (x, 1.0)]
            else:
                points.append((x,))
    return points


def _bits(spec, fmt, level, seed):
    rng = _rng("bits", spec.name, fmt, seed)
    n = _SIZES[level]["bits"]
    return [_random_point(spec, fmt, rng, lambda: random_finite(rng, fmt),
                          lambda: random_finite(rng, fmt, 0.0, 1.0),
                          lambda: random_finite(rng, fmt, fmt.smallest_subnormal, fmt.largest_finite))
            for _ in range(n)]


def _loguniform_set(spec, fmt, level, seed):
    rng = _rng("loguniform", spec.name, fmt, seed)
    n = _SIZES[level]["loguniform"]
    p = fmt.precision
    is_row = spec.parameters[0].role == "row"
    lo, hi = (-6, 7) if is_row else (-(p + 4), 10)
    return [_random_point(spec, fmt, rng, lambda: _signed(rng, _loguniform(rng, fmt, lo, hi)),
                          lambda: _loguniform_probability(rng, fmt),
                          lambda: _loguniform(rng, fmt, -3, 4))
            for _ in range(n)]


def _random_point(spec, fmt, rng, real, probability, temperature):
    args = []
    for parameter in spec.parameters:
        role = parameter.role
        if role == "real":
            args.append(real())
        elif role == "probability":
            args.append(probability())
        elif role == "label":
            args.append(_label(rng, fmt))
        elif role == "row":
            args.append(tuple(real() for _ in range(ROW_LENGTH)))
        elif role == "class_index":
            args.append(randbelow(rng, ROW_LENGTH))
        elif role == "temperature":
            args.append(temperature())
        else:
            raise AssertionError(role)
    return tuple(args)


def _exhaustive(spec, fmt, level, seed):
    if fmt.width != 16 or level != "full":
        return []
    values = all_values(fmt)
    name = spec.name
    if spec.kind == "elementwise":
        return [(x,) for x in values]
    if name in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
        return [(x, y) for y in (0.0, 1.0) for x in values]
    if name == "cross_entropy":
        return [((0.0, x), 1) for x in values]
    if name == "distillation_loss":
        return [((0.0, x), (0.0, 0.0), 1.0) for x in values]
    return [((0.0, x),) for x in values]


_GENERATORS = {
    "special": _special, "seed": _seed, "thresholds": _thresholds,
    "bits": _bits, "loguniform": _loguniform_set, "exhaustive": _exhaustive,
}


def case_set(set_name, function, fmt, level="default", seed=0, *, use_golden=True):
    """One named set for ``function`` in ``fmt``: a list of points (duplicates kept)."""
    spec = get_function(function)
    fmt = get_format(fmt)
    if level not in _SIZES:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    if set_name not in _GENERATORS:
        raise ValueError(f"unknown case set {set_name!r}; expected one of {', '.join(SET_NAMES)}")
    if set_name == "thresholds":
        points = _thresholds(spec, fmt, level, seed, use_golden=use_golden)
    else:
        points = _GENERATORS[set_name](spec, fmt, level, seed)
    points = [_tupled(p) for p in points]
    for p in points:
        _check_point(p, fmt, spec.name, set_name)
    return points


def cases_for(function, fmt, level="default", seed=0, *, use_golden=True):
    """Every set for ``function`` in ``fmt`` at ``level``: ``[(set_name, point), ...]``,
    each point once (in the first set that has it)."""
    out = []
    seen = set()
    for set_name in SET_NAMES:
        for p in case_set(set_name, function, fmt, level, seed, use_golden=use_golden):
            key = point_key(function, p, fmt)
            if key not in seen:
                seen.add(key)
                out.append((set_name, p))
    return out


def _tupled(point):
    return tuple(tuple(a) if isinstance(a, list) else a for a in point)


def _check_point(point, fmt, function, set_name):
    for a in point:
        values = a if isinstance(a, tuple) else (a,)
        for v in values:
            if isinstance(v, float) and not is_representable(v, fmt):
                raise AssertionError(f"{set_name} set of {function} made {v!r}, not a {fmt.name} value")
