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
from refact.conformance.truth.catalog import THRESHOLDS, get_function
from refact.conformance.truth.oracle import point_key, truth
from refact.conformance.numbers.formats import (
    all_values, from_bits_hex, from_ordinal, get_format, is_representable, next_down, next_up,
    ordinal, random_finite, randbelow, round_to_format,
)

__all__ = [
    "LEVELS", "SET_NAMES", "SEED_VECTOR", "cases_for", "case_set",
    "threshold_values", "threshold_names", "threshold_holds", "locate_threshold",
    "OptionCase", "option_cases",
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


# --- thresholds (declared in the catalog, located here) ---------------------------------


def _rounded(function, x, fmt):
    """The oracle's rounded value at x; for an undecided point its best evaluation
    (threshold search only picks inputs, it never measures with this)."""
    t = truth(function, (x,), fmt)
    return t.rounded if t.decided else round_to_format(t.exact, fmt)


# A point's shape is its parameters' roles (the catalog's), so the generators below build
# points by shape: a new function of a known shape needs nothing here.
_SCALAR_SHAPES = (("real",), ("probability",))
_LABELLED_PROBABILITY = ("probability", "label")     # binary_cross_entropy
_LABELLED_LOGIT = ("real", "label")                  # binary_cross_entropy_with_logits
_LABELLED = (_LABELLED_PROBABILITY, _LABELLED_LOGIT)
_ROW_AND_CLASS = ("row", "class_index")              # cross_entropy
_ROW_PAIR = ("row", "row", "temperature")            # distillation_loss


def _shape(spec):
    return tuple(p.role for p in spec.parameters)


_REGIONS = {
    "unit": lambda fmt: (0.0, 1.0),
    "positive": lambda fmt: (0.0, fmt.largest_finite),
    "negative": lambda fmt: (-fmt.largest_finite, 0.0),
}


def threshold_names(function):
    """The threshold names the ``thresholds`` set of ``function`` is built from."""
    return list(get_function(function).thresholds)


def threshold_holds(name, x, fmt):
    """Whether the bisected threshold ``name`` has been reached at ``x`` in ``fmt``."""
    fmt = get_format(fmt)
    return THRESHOLDS[name].test(x, fmt, lambda function, v: _rounded(function, v, fmt))


def locate_threshold(name, fmt):
    """Locate a threshold afresh (no golden data): a list of format values (empty when
    the regime change does not occur in this format's range)."""
    spec = THRESHOLDS[name]
    fmt = get_format(fmt)
    if spec.anchors is not None:
        return [float(v) for v in spec.anchors(fmt)]
    lo, hi = _REGIONS[spec.region](fmt)
    found = _bisect(lambda x: threshold_holds(name, x, fmt), lo, hi, fmt)
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
    shape = _shape(spec)
    catalog_points = [v.args for v in spec.specials]
    if shape in _SCALAR_SHAPES:
        extra = [0.5, next_down(1.0, fmt), next_up(0.5, fmt)] if shape == ("probability",) else []
        points = [(x,) for x in s + extra]
    elif shape == _LABELLED_PROBABILITY:
        ps = s + [0.5, next_down(1.0, fmt)]
        points = [(p, y) for p in ps for y in (0.0, 1.0)] + [(0.5, y) for y in s]
    elif shape == _LABELLED_LOGIT:
        points = [(x, y) for x in s for y in (0.0, 1.0)] + [(0.0, y) for y in s] + [(1.0, y) for y in s]
    elif shape == _ROW_AND_CLASS:
        points = [((x, 0.0), t) for x in s for t in (0, 1)]
        big = fmt.largest_finite
        points += [((big, -big), 1), ((big, big), 0), ((-big, -big), 0)]
    elif shape == _ROW_PAIR:
        points = [((x, 0.0), (0.0, 0.0), 1.0) for x in s] + [((0.0, 0.0), (x, 0.0), 1.0) for x in s]
        points += [((0.0, 1.0), (1.0, 0.0), t) for t in s if t > 0]
    else:  # one row: softmax, log_softmax, logsumexp
        big = fmt.largest_finite
        points = [((x, 0.0),) for x in s] + [((x,),) for x in s]
        points += [((big, big),), ((big, -big),), ((-big, -big),), ((big, big, big, big),)]
    return catalog_points + points


def _seed(spec, fmt, level, seed):
    shape = _shape(spec)
    row = tuple(_round_all(SEED_VECTOR, fmt))
    scalars = _round_all([-10000.0, 10000.0] + list(SEED_VECTOR), fmt)
    probabilities = _round_all([1e-300, 1e-30, 1e-10, 0.25, 0.75], fmt) + [
        next_up(0.5, fmt), next_down(0.5, fmt), next_down(1.0, fmt), fmt.smallest_subnormal,
    ] + _round_all([1 / (1 + math.exp(-x)) for x in SEED_VECTOR[:7]], fmt)
    probabilities = [p for p in probabilities if 0 < p < 1]
    if shape == ("real",):
        return [(x,) for x in scalars]
    if shape == ("probability",):
        return [(p,) for p in probabilities]
    if shape == _LABELLED_PROBABILITY:
        return [(p, y) for p in probabilities for y in (0.0, 1.0)]
    if shape == _LABELLED_LOGIT:
        return [(x, y) for x in scalars for y in (0.0, 1.0)]
    if shape == _ROW_AND_CLASS:
        return [(row, t) for t in range(len(row))] + [(tuple(-x for x in row), 7)]
    if shape == _ROW_PAIR:
        reverse = tuple(reversed(row))
        return [(row, reverse, t) for t in (1.0, 2.0, 4.0)] + [(reverse, row, 2.0), (row, row, 2.0)]
    return [(row,), (tuple(reversed(row)),), (tuple(-x for x in row),),
            (tuple(_round_all([-10000.0, 10000.0], fmt)),)]


def _thresholds(spec, fmt, level, seed, use_golden=True):
    k = _SIZES[level]["neighbours"]
    shape = _shape(spec)
    points = []
    if shape[0] == "row":
        gaps = []
        for threshold in spec.thresholds:
            for x in threshold_values(threshold, fmt, use_golden=use_golden):
                gaps += _neighbours([abs(x)], fmt, k, (0.0, INF))
        for g in dict.fromkeys(gaps):
            two = (0.0, -g)
            three = (0.0, -g, -g)
            if shape == _ROW_AND_CLASS:
                points += [(two, 0), (two, 1), (three, 0)]
            elif shape == _ROW_PAIR:
                points += [(two, (0.0, 0.0), 1.0), ((0.0, 0.0), two, 1.0)]
            else:
                points += [(two,), (three,)]
        return points
    for threshold in spec.thresholds:
        values = threshold_values(threshold, fmt, use_golden=use_golden)
        for x in _neighbours(values, fmt, k, THRESHOLDS[threshold].domain):
            for sign in spec.threshold_signs:
                if shape in _LABELLED:
                    points += [(sign * x, 0.0), (sign * x, 1.0)]
                else:
                    points.append((sign * x,))
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
    shape = _shape(spec)
    if shape in _SCALAR_SHAPES:
        return [(x,) for x in values]
    if shape in _LABELLED:
        return [(x, y) for y in (0.0, 1.0) for x in values]
    if shape == _ROW_AND_CLASS:
        return [((0.0, x), 1) for x in values]
    if shape == _ROW_PAIR:
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


# --- calls with options ---------------------------------------------------------------
# A few calls per function and format, each a small batch with one option kind set (and
# the other keywords it needs), reaching the catalog's edges: smoothing 0 and 1, zero,
# tiny and huge weights, every target ignored, -inf logits without target mass,
# pos_weight 0 and huge, temperatures 1e-3 and 1e3 and an x / T that overflows, eps 0
# and 1/2. Bounded on purpose (about 50 calls in all per format): the default run's time.

#: Classes of the option rows: a power of two, so eps / C of label smoothing is exact.
OPTION_CLASSES = 4


@dataclass(frozen=True)
class OptionCase:
    """One call with options: ``option`` the catalog option the call exercises (its
    record's sub-result), ``options`` the keywords (``target`` names the input kind and
    is not a keyword), ``points`` the batch."""

    option: str
    options: dict
    points: tuple


def _weight_edges(fmt):
    """A tiny and a huge weight: 1e-300 and 1e300 where the format has them, else its
    smallest normal and its largest finite value / 2**10 (room for the loss)."""
    tiny = round_to_format(1e-300, fmt)
    tiny = tiny if tiny > 0 else fmt.smallest_normal
    huge = round_to_format(min(1e300, fmt.largest_finite / 1024), fmt)
    return tiny, huge


def _option_rows(fmt, rng, n=4):
    rows = [tuple(round_to_format(rng.uniform(-8.0, 8.0), fmt) for _ in range(OPTION_CLASSES))
            for _ in range(n)]
    rows.append(tuple(_round_all((3.0, -4.0, -2.0, -10000.0), fmt)))
    rows.append((0.0, -INF, round_to_format(2.0, fmt), 1.0))  # a class the model rules out
    return rows


def _probability_rows(fmt, rng, rows):
    """Per row a target distribution: one-hot, uniform, random; the -inf logit's class
    gets no mass (the true loss is finite there)."""
    targets = []
    for i, row in enumerate(rows):
        if i % 3 == 0:
            q = [0.0] * OPTION_CLASSES
            q[i % OPTION_CLASSES if row[i % OPTION_CLASSES] != -INF else 0] = 1.0
        elif i % 3 == 1 and -INF not in row:
            q = [0.25] * OPTION_CLASSES
        else:
            raw = [0.0 if x == -INF else rng.random() for x in row]
            q = [v / sum(raw) for v in raw]
        targets.append(tuple(_round_all(q, fmt)))
    return targets


def _cross_entropy_cases(fmt, rng):
    rows = _option_rows(fmt, rng)
    # targets avoid the -inf class, whose index loss is simply +inf
    targets = [randbelow(rng, OPTION_CLASSES) for _ in rows[:-1]] + [2]
    indexed = tuple(zip(rows, targets))
    tiny, huge = _weight_edges(fmt)
    weights = tuple(_round_all((0.5, 1.0, 2.5, 0.0), fmt))
    weights = weights if weights[targets[-1]] else weights  # the -inf row's target weighs 2.5
    ignored = tuple((row, -100 if i % 2 else t) for i, (row, t) in enumerate(indexed))
    every_ignored = tuple((row, -100) for row in rows[:3])
    smoothing = round_to_format(0.1, fmt)
    probability = tuple(zip(rows, _probability_rows(fmt, rng, rows)))
    case = OptionCase
    return [
        case("target", {"target": "probability"}, probability),
        case("target", {"target": "probability", "reduction": "mean"}, probability),
        case("weight", {"weight": list(weights)}, indexed),
        case("weight", {"weight": [tiny, 1.0, huge, 1.0]}, indexed),
        case("weight", {"weight": list(weights), "reduction": "mean"}, indexed),
        case("ignore_index", {"ignore_index": -100}, ignored),
        case("ignore_index", {"ignore_index": -100, "reduction": "mean"}, ignored),
        case("ignore_index", {"ignore_index": -100, "weight": list(weights), "reduction": "mean"}, ignored),
        case("ignore_index", {"ignore_index": -100, "reduction": "mean"}, every_ignored),
        case("ignore_index", {"ignore_index": -100, "reduction": "sum"}, every_ignored),
        case("label_smoothing", {"label_smoothing": 0.0}, indexed),
        case("label_smoothing", {"label_smoothing": smoothing}, indexed),
        case("label_smoothing", {"label_smoothing": 1.0}, indexed[:-1]),
        case("label_smoothing", {"label_smoothing": smoothing, "weight": list(weights),
                                 "reduction": "mean"}, indexed[:-1]),
        case("reduction", {"reduction": "mean"}, indexed),
        case("reduction", {"reduction": "sum"}, indexed),
    ]


def _labelled_points(fmt, rng, logits):
    points = []
    for i in range(6):
        if logits:
            x = round_to_format(rng.uniform(-20.0, 20.0), fmt)
        else:
            # p and 1 - p at least e^-69: torch's log clamp at -100 (a convention, which a
            # reduced call cannot name point by point) stays out of the reductions
            q = round_to_format(10.0 ** -rng.uniform(0.5, 30.0), fmt)
            x = q if i % 2 or q >= 0.5 else round_to_format(1.0 - q, fmt)
            x = min(max(x, fmt.smallest_normal), next_down(1.0, fmt))
        points.append((x, (0.0, 1.0, round_to_format(0.25, fmt))[i % 3]))
    if logits:
        points += [(round_to_format(-100.0, fmt), 1.0), (round_to_format(50.0, fmt), 0.0)]
    return tuple(points)


def _bce_cases(fmt, rng, logits):
    points = _labelled_points(fmt, rng, logits)
    tiny, huge = _weight_edges(fmt)
    weight = round_to_format(2.5, fmt)
    case = OptionCase
    cases = [case("weight", {"weight": w}, points) for w in (0.0, weight, tiny, huge)]
    cases.append(case("weight", {"weight": weight, "reduction": "mean"}, points))
    if logits:
        cases += [case("pos_weight", {"pos_weight": w}, points)
                  for w in (0.0, round_to_format(3.0, fmt), huge)]
        cases.append(case("pos_weight", {"pos_weight": round_to_format(3.0, fmt), "weight": weight,
                                         "reduction": "mean"}, points))
    cases += [case("reduction", {"reduction": r}, points) for r in ("mean", "sum")]
    return cases


def _temperature_cases(fmt, rng):
    rows = _option_rows(fmt, rng)
    big = round_to_format(fmt.largest_finite / 2, fmt)
    overflowing = ((big, 0.0, -big, 1.0),)  # x / 1e-3 overflows the format: the truth does not
    case = OptionCase
    return [case("temperature", {"temperature": round_to_format(t, fmt)}, tuple((r,) for r in rows))
            for t in (1e-3, 0.5, 1e3)] + [
        case("temperature", {"temperature": round_to_format(1e-3, fmt)},
             tuple((r,) for r in overflowing))]


def _logit_cases(fmt, rng):
    points = tuple((p,) for p in [0.0, fmt.smallest_subnormal, round_to_format(1e-10, fmt),
                                  round_to_format(0.25, fmt), 0.5, round_to_format(0.75, fmt),
                                  next_down(1.0, fmt), 1.0])
    # an eps whose 1 - eps is a format value, so a clamp in the format can hit it exactly
    eps = 2.0 ** -(fmt.precision - 3)
    return [OptionCase("eps", {"eps": e}, points) for e in (0.0, eps, 0.5)]


def option_cases(function, fmt, seed=0):
    """The calls with options of ``function`` in ``fmt``: a list of :class:`OptionCase`
    (empty for a function that declares no options), seeded and reproducible."""
    spec = get_function(function)
    fmt = get_format(fmt)
    if not spec.options:
        return []
    rng = _rng("options", spec.name, fmt, seed)
    shape = _shape(spec)
    if shape == _ROW_AND_CLASS:
        cases = _cross_entropy_cases(fmt, rng)
    elif shape in _LABELLED:
        cases = _bce_cases(fmt, rng, logits=shape == _LABELLED_LOGIT)
    elif shape == ("row",):
        cases = _temperature_cases(fmt, rng)
    elif shape == ("probability",):
        cases = _logit_cases(fmt, rng)
    else:
        raise AssertionError(f"{spec.name}: options of a point of shape {shape} have no cases")
    declared = {o.name for o in spec.options}
    for c in cases:
        for name in c.options:
            if name not in declared:
                raise AssertionError(f"{spec.name}: case set uses undeclared option {name!r}")
        for point in c.points:
            _check_point(tuple(a for a in point if not isinstance(a, int)), fmt, spec.name, "options")
    return cases
