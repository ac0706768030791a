"""The truth of a whole array of inputs at once, for the engine that judges arrays.

:func:`point_truths` gives, for float64 inputs ``x64`` of an elementwise function in a
format, the correctly rounded truth of every point and the exact truth in units of its
ulp, in four steps:

1. the fast truth decides (:func:`refact.conformance.truth.fast.decide`): the float64
   candidate for the narrow formats, the extended-precision candidate for float64;
   functions without a candidate in a format (ndtr and probit in float64) go to step 2
   whole;
2. the mpmath oracle decides what the bound leaves open: undecided points, the special
   inputs (±0, ±inf, one NaN) and a seeded random sample (which checks the bound);
3. the *second formula*: for a narrow format, refact's numpy implementation (the numpy
   backend's code, written apart from the textbook candidate) is compared with the
   candidate on every point; an interval outside the other's is a disagreement;
4. a disagreement, of either kind, is kept and named: it is a bug of refact; the
   oracle's value is used where it spoke, and the engine makes the record an error.

The exact truth is kept as ``units + units_lo`` (two float64, signed) times
``2**ulp_exponent``, the spacing of the format at the truth's binade: a power-of-two
scaling, so subnormal truths keep all their digits, and the ULP error of a result ``y`` is
``|y 2**-ulp_exponent - units - units_lo|``. Where the bound reaches a power of two
(``binade_known`` False), the spacing may be either of two; the engine asks the oracle
there when a backend's result differs from the rounded truth.

:func:`cached_point_truths` keeps the arrays on disk beside the oracle's cache (one
``.npy`` file per point set, named by a digest of everything that shapes it, with the
digest of its contents beside it), so a conformance run computes them once for all its
backends and every backend's process maps the same file.
"""

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from refact.conformance.numbers.formats import (
    FLOAT64, bits_of_values, get_format, pattern_hex, same_value, ulp_exponent,
)
from refact.conformance.numbers.ruler import float_pair, same_values
from refact.conformance.truth import fast
from refact.conformance.truth import store
from refact.conformance.truth.catalog import FAST_TRUTHS, get_function
from refact.conformance.truth.oracle import ORACLE_VERSION, truth_many

__all__ = [
    "PointTruths", "point_truths", "cached_point_truths", "load_point_truths", "oracle_units",
    "FIELDS", "DISAGREEMENTS_KEPT",
]

DISAGREEMENTS_KEPT = 20
#: The arrays of a :class:`PointTruths`, as one structured record per point on disk.
FIELDS = (
    ("bits", np.uint64), ("x", np.float64), ("rounded", np.float64), ("units", np.float64),
    ("units_lo", np.float64), ("ulp_exponent", np.int32), ("exact_zero", np.bool_),
    ("decided", np.bool_), ("binade_known", np.bool_), ("oracle", np.bool_),
)
_KIND = "refact.truths/1"


@dataclass
class PointTruths:
    """The truths of an array of inputs (see the module docstring); every array has one
    entry per input. ``decided`` False: the oracle was undecided (``rounded`` NaN).
    ``oracle``: the points mpmath decided. ``fast_decided``: how many the fast truth did."""

    function: str
    format: str
    bits: np.ndarray
    x: np.ndarray
    rounded: np.ndarray
    units: np.ndarray
    units_lo: np.ndarray
    ulp_exponent: np.ndarray
    exact_zero: np.ndarray
    decided: np.ndarray
    binade_known: np.ndarray
    oracle: np.ndarray
    fast_decided: int = 0
    disagreements: list = field(default_factory=list)

    def __len__(self):
        return len(self.x)

    def value(self):
        """The truth as one float64 per point (for conventions' predicates, plots)."""
        with np.errstate(all="ignore"):
            scaled = np.ldexp(self.units + self.units_lo, self.ulp_exponent)
        return np.where(np.isfinite(self.units), scaled, self.rounded)

    def take(self, where):
        """The truths of the points ``where`` (an index or mask array)."""
        arrays = {name: getattr(self, name)[where] for name, _ in FIELDS}
        return PointTruths(self.function, self.format, **arrays)


def _scaled(exact, exponent):
    """``exact * 2**-exponent`` (mpf, Fraction, float or int), exactly."""
    if hasattr(exact, "_mpf_"):
        import mpmath

        return mpmath.ldexp(exact, -exponent)
    return Fraction(exact) * Fraction(2) ** -exponent


def oracle_units(exact, rounded, fmt):
    """``(units, units_lo, ulp_exponent, exact_zero)`` of the oracle's exact value."""
    if exact != exact or (isinstance(rounded, float) and math.isinf(rounded) and
                          not _finite(exact)):
        return rounded, 0.0, 0, False
    if not exact:
        return 0.0, 0.0, fmt.emin - fmt.precision + 1, True
    e = ulp_exponent(exact, fmt)
    scaled = _scaled(exact, e)
    pair = float_pair(scaled)
    if pair is None:  # far below the format's smallest subnormal: a rounded-away remnant
        return math.copysign(0.0, scaled), 0.0, e, False
    return pair[0], pair[1], e, False


def _finite(value):
    try:
        return math.isfinite(value)
    except (TypeError, OverflowError):
        return bool(value.is_finite()) if hasattr(value, "is_finite") else True


def _special_inputs(x64):
    ask = (x64 == 0) | np.isinf(x64)
    nans = np.flatnonzero(np.isnan(x64))
    if len(nans):
        ask[nans[0]] = True  # NaN in, NaN out: one confirms the rule
    return ask


def _second_formula(fast_truth, x64, decision):
    """Indices where the second formula's interval and the candidate's are disjoint
    (both bounds hold, so one of the two formulas is wrong)."""
    with np.errstate(all="ignore"):
        t = fast_truth.second(x64).astype(np.longdouble)
        c = decision.candidate.astype(np.longdouble)
        # in long double, where |t - c| and the radii are formed without a rounding that
        # matters (where long double is float64, the 2**-52 of each radius covers them)
        allowed = (np.abs(c) + np.abs(t)) * np.longdouble(fast.RELATIVE_BOUND + 2.0 ** -52) + 2 * fast.ABSOLUTE_BOUND
        apart = np.abs(t - c) > allowed
        both_finite = np.isfinite(t) & np.isfinite(c)
    bad = both_finite & apart
    # A non-finite value must be the same in both (an exact zero or special input).
    bad |= ~both_finite & ~same_values(t.astype(np.float64), decision.candidate)
    return np.flatnonzero(bad)


def _subset(decision, where):
    return fast.DecidedTruth(*(None if v is None else v[where] for v in
                               (decision.candidate, decision.rounded, decision.decided, decision.binade_known,
                                decision.exact_zero, decision.units, decision.units_lo, decision.ulp_exponent)))


def point_truths(function, fmt, x64, *, bits=None, sample=256, seed=0, workers=1, cache=True,
                 second_every=1):
    """The :class:`PointTruths` of ``function`` at the float64 inputs ``x64`` (values of
    ``fmt``), by the steps of the module docstring; ``sample`` points chosen with
    ``seed`` (an int or a tuple of ints) are asked of the oracle whatever the fast truth
    says; the second formula checks every ``second_every``-th point (a sweep of 2**32
    points checks one in 64: the long double formula costs as much as the rest)."""
    spec = get_function(function)
    fmt = get_format(fmt)
    x64 = np.ascontiguousarray(x64, dtype=np.float64)
    n = len(x64)
    bits = bits_of_values(x64, fmt) if bits is None else np.asarray(bits, dtype=np.uint64)
    fast_truth = FAST_TRUTHS.get(spec.name)
    disagreements = []
    if fast_truth is not None and (fmt != FLOAT64 or fast_truth.extended is not None):
        decision = fast.decide(fast_truth, x64, fmt)
        # the decision's arrays are this call's own: the oracle's values overwrite them
        rounded, units = decision.rounded, decision.units
        units_lo = np.zeros(n) if decision.units_lo is None else decision.units_lo
        exponent = decision.ulp_exponent.astype(np.int32)
        exact_zero, binade_known = decision.exact_zero, decision.binade_known
        fast_decided = decision.decided
        ask = ~fast_decided | _special_inputs(x64)
        if fmt != FLOAT64 and fast_truth.second is not None:
            every = slice(None, None, int(second_every))
            checked = np.arange(n)[every]
            apart = _second_formula(fast_truth, x64[every], _subset(decision, every))
            for i in checked[apart][:DISAGREEMENTS_KEPT].tolist():
                disagreements.append({"input": float(x64[i]), "input_bits": pattern_hex(bits[i], fmt),
                                      "kind": "second formula",
                                      "candidate": float(decision.candidate[i]),
                                      "second": float(fast_truth.second(x64[i:i + 1])[0])})
    else:  # no candidate decides this format: the oracle decides every point
        rounded = np.full(n, np.nan)
        units, units_lo = np.zeros(n), np.zeros(n)
        exponent = np.zeros(n, dtype=np.int32)
        exact_zero = np.zeros(n, dtype=bool)
        fast_decided = np.zeros(n, dtype=bool)
        binade_known = np.ones(n, dtype=bool)
        ask = np.ones(n, dtype=bool)
    if sample > 0 and n:
        rng = np.random.default_rng([int(s) for s in np.atleast_1d(seed)] + [n])
        ask[rng.choice(n, size=min(int(sample), n), replace=False)] = True
    decided = np.ones(n, dtype=bool)
    asked = np.flatnonzero(ask)
    truths = truth_many(spec.name, [(x,) for x in x64[asked].tolist()], fmt, workers=workers,
                        cache=cache) if len(asked) else []
    for i, truth in zip(asked.tolist(), truths):
        if not truth.decided:
            decided[i] = False
            rounded[i] = np.nan
            continue
        u, u_lo, e, zero = oracle_units(truth.exact, truth.rounded, fmt)
        if fast_decided[i]:
            problem = _disagreement(rounded[i], exact_zero[i], units[i], units_lo[i], exponent[i],
                                    truth, (u, u_lo, e, zero), fmt, fast_truth)
            if problem and len(disagreements) < DISAGREEMENTS_KEPT:
                disagreements.append({"input": float(x64[i]), "input_bits": pattern_hex(bits[i], fmt),
                                      "kind": problem,
                                      "fast_rounded": float(rounded[i]),
                                      "oracle_rounded": truth.rounded, "oracle_exact": str(truth.exact)})
        # mpmath decides: its value is the one measured against, agreement or not.
        rounded[i], units[i], units_lo[i], exponent[i], exact_zero[i] = truth.rounded, u, u_lo, e, zero
        binade_known[i] = True
    return PointTruths(spec.name, fmt.name, bits, x64, rounded, units, units_lo, exponent, exact_zero,
                       decided, binade_known, ask, int(np.count_nonzero(fast_decided)), disagreements)


def _disagreement(fast_rounded, fast_zero, units, units_lo, exponent, truth, oracle, fmt, fast_truth):
    """Why the fast truth and the oracle disagree at one point, or None."""
    u, u_lo, e, zero = oracle
    if not (same_value(float(fast_rounded), truth.rounded) or (fast_rounded == 0 and truth.rounded == 0 and zero)):
        return "rounding"
    if bool(fast_zero) != zero:
        return "exact zero"
    if not (math.isfinite(u) and math.isfinite(units)) or u == 0:
        return None
    if fmt == FLOAT64:  # long double reaches 2**-16445: no absolute term at float64's scale
        bound, absolute = fast.EXTENDED_RELATIVE_BOUND, 0.0
    else:
        bound, absolute = fast.RELATIVE_BOUND + 2.0 ** -52, fast.ABSOLUTE_BOUND
    # both in units of the oracle's binade (the candidate's may be the neighbouring one)
    scale = math.ldexp(1.0, int(exponent) - e)
    distance = abs((units * scale - u) + (units_lo * scale - u_lo))
    slack = abs(u) * (bound + 2.0 ** -(fmt.precision + 28)) + math.ldexp(absolute, -e)
    return "bound" if distance > slack else None


# --- on disk ---------------------------------------------------------------------------


def _digest(function, fmt, bits, sample, seed):
    from refact import __version__

    h = hashlib.sha256()
    h.update(json.dumps([_KIND, function, fmt, int(sample), int(seed), ORACLE_VERSION, __version__,
                         fast.RELATIVE_BOUND, fast.ABSOLUTE_BOUND, fast.EXTENDED_RELATIVE_BOUND,
                         bool(fast.EXTENDED)]).encode())
    h.update(np.ascontiguousarray(bits, dtype=np.uint64).tobytes())
    return h.hexdigest()


def _as_records(truths):
    table = np.empty(len(truths), dtype=list(FIELDS))
    for name, _ in FIELDS:
        table[name] = getattr(truths, name)
    return table


def load_point_truths(path, verify=True):
    """The :class:`PointTruths` saved at ``path`` (memory-mapped), or None when the file
    or its description is missing, belongs to another format of file, or its contents
    fail their digest (it is then recomputed by the caller). ``verify=False`` skips the
    digest: for a file this run has just verified or written."""
    try:
        with open(f"{path}.json", encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("kind") != _KIND:
            return None
        if verify:
            with open(path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != meta["contents"]:
                    return None
        table = np.load(path, mmap_mode="r", allow_pickle=False)
        if table.dtype != np.dtype(list(FIELDS)):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    arrays = {name: table[name] for name, _ in FIELDS}
    return PointTruths(meta["function"], meta["format"], **arrays, fast_decided=int(meta["fast_decided"]),
                       disagreements=list(meta["disagreements"]))


def cached_point_truths(function, fmt, bits, x64, directory=None, **options):
    """``(path, truths)``: :func:`point_truths` of the inputs, saved under ``directory``
    (the cache's, by default) or loaded from there when the same point set was judged
    before. ``options`` go to :func:`point_truths`; with no directory at all (caching
    switched off) the path is None."""
    fmt = get_format(fmt).name
    sample, seed = options.get("sample", 256), options.get("seed", 0)
    if directory is None:
        directory = store.cache_directory()
    path = None
    if directory:
        path = os.path.join(directory, "truths", f"{function}-{fmt}-{_digest(function, fmt, bits, sample, seed)[:24]}.npy")
        found = load_point_truths(path)
        if found is not None:
            return path, found
    truths = point_truths(function, fmt, x64, bits=bits, cache=bool(store.cache_directory()), **options)
    if path is not None:
        import io

        buffer = io.BytesIO()
        np.save(buffer, _as_records(truths), allow_pickle=False)
        data = buffer.getvalue()
        try:
            store.atomic_write_bytes(path, data)
            meta = {"kind": _KIND, "function": function, "format": fmt,
                    "contents": hashlib.sha256(data).hexdigest(),
                    "fast_decided": truths.fast_decided, "disagreements": truths.disagreements}
            store.atomic_write_text(f"{path}.json", json.dumps(meta))
        except OSError:
            path = None  # an unwritable cache: the run goes on with the arrays in memory
    return path, truths
