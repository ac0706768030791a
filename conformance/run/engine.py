"""The one engine: a backend's outputs on an array of inputs, judged against their truths.

``refact conform`` (on the dense sets of :mod:`refact.conformance.cases.dense`) and
``refact sweep`` (on shards of bit patterns) judge the same way, here:

1. :func:`judge`: every result gets a failure class or a ULP error against the truths of
   :mod:`refact.conformance.truth.arrays`, by the ruler's definitions (array forms,
   tested against the scalar ones), then the budget and the backend's conventions;
2. :func:`summarise`: the judged points condensed into a mergeable summary (counts, ULP
   histogram, largest errors, class examples), merged associatively
   (:func:`merge_summaries`);
3. :func:`search_worst`: around the worst points, their neighbours in ULP space, judged
   the same way, until the largest error stops growing or the rounds run out;
4. :func:`accuracy_record`: the summary as one ``accuracy`` record of the report contract.

Autograd's derivatives of an elementwise function whose derivative is itself a catalog
function (``Function.derivative_as``: sigmoid's is sigmoid_grad, softplus's and
log_sigmoid's are sigmoids) are judged the same way on the same dense set
(:func:`gradients_on`, :func:`judge_derivative`), into a ``gradient`` record.

Verdicts. A failure class is kept only where the value is wrong beyond the budget: a 0
returned for a truth just above half the smallest subnormal (a near-tie: 0.5000x ULP) or
the largest finite value for a truth just past the overflow threshold is an ordinary
point with its ULP error, not a flush or a missing infinity. A sign of zero is a class
(a wrong sign) whatever its size, and its severity is minor. A convention marked
``flushes`` covers a zero only where the backend shows the mechanism: if it returns a
nonzero subnormal anywhere in the same function and format, it does not flush there, and
its zeros are failures (JAX's float16 sigmoid underflows ``exp`` and returns 0 below
-11.09 while returning correct subnormals above).
"""

import math
from dataclasses import dataclass, field, replace

import numpy as np

from refact.conformance.numbers import ruler
from refact.conformance.numbers.formats import (
    bits_of_ordinals, bits_of_values, get_format, native_array, ordinal, ordinals_of_bits, pattern_hex,
    sorted_unique, values_of_bits,
)
from refact.conformance.numbers.ruler import classify_array, same_values
from refact.conformance.truth import fast as fastpath
from refact.conformance.truth.arrays import oracle_units, point_truths
from refact.conformance.truth.catalog import fast_truth_of, FAST_TRUTHS, get_function
from refact.conformance.truth.oracle import truth_many
from refact.conformance.run.records import convention_field, record

__all__ = [
    "HISTOGRAM_EDGES", "CLASS_NAMES", "WORST_KEPT", "Judged", "judge", "summarise", "empty_summary",
    "merge_summaries", "merge_in_order", "p99_from_histogram", "search_worst", "accuracy_record",
    "outputs_on", "outputs_or_refusals", "split_on_refusals", "plot_series", "REFUSED", "REFUSED_UNDEFINED",
    "gradients_on", "derivative_inputs", "judge_derivative",
]

WORST_KEPT = 10
EXAMPLES_KEPT = 3
DISAGREEMENTS_KEPT = 20
# Upper edges of the ULP histogram: [0, 0.5] (correctly rounded), then four bins per
# octave up to 2**43; one more bin above that. p99_ulp is read off these bins (the upper
# edge of the bin holding the 99th percentile), so it is an upper bound to 2**(1/4).
HISTOGRAM_EDGES = tuple(0.5 * 2.0 ** (k / 4) for k in range(4 * 44 + 1))
CLASS_NAMES = ruler.ALL_CLASSES
_UNDECIDED = ruler.CLASS_CODES[ruler.UNDECIDED]
# Codes of points the backend raised on (not classes of the contract): where a number was
# due (a failure), and where the value is undefined (fine: Python's math raises there).
REFUSED, REFUSED_UNDEFINED = 100, 101
#: classes a small enough error turns back into an ordinary point (see the docstring)
_SIZED_CLASSES = (ruler.CLASS_CODES["flush_to_zero"], ruler.CLASS_CODES["missing_inf"])


def outputs_on(function, fmt, bits, *, backend):
    """The backend's results at the bit patterns ``bits`` of ``fmt``, one native array in
    and out: ``(float64 array, dtype name)``. Runs where the backend lives (its worker)."""
    fmt = get_format(fmt)
    native = backend.call(function, backend.from_numpy(native_array(bits, fmt)))
    array = np.asarray(backend.to_numpy(native))
    if array.shape != np.shape(bits):
        raise ValueError(f"{function} returned shape {array.shape} for an input of shape {np.shape(bits)}")
    return array.astype(np.float64), array.dtype.name


def gradients_on(function, fmt, bits, *, backend):
    """The backend's autograd derivative of an elementwise ``function`` at the bit
    patterns ``bits`` of ``fmt`` (the vector-Jacobian product with a cotangent of ones),
    like :func:`outputs_on`."""
    fmt = get_format(fmt)
    x = native_array(bits, fmt)
    native = backend.grad(function, (backend.from_numpy(x),), backend.from_numpy(np.ones_like(x)))
    array = np.asarray(backend.to_numpy(native))
    if array.shape != np.shape(bits):
        raise ValueError(f"the gradient of {function} has shape {array.shape} "
                         f"for an input of shape {np.shape(bits)}")
    return array.astype(np.float64), array.dtype.name


def derivative_inputs(function, fmt, bits):
    """``(inputs, truth_function, truth_bits)`` for judging the derivative of
    ``function`` (see ``Function.derivative_as``) at the finite inputs among ``bits``:
    the derivative at ``inputs`` is ``truth_function`` at ``truth_bits``."""
    fmt = get_format(fmt)
    name, sign = get_function(function).derivative_as
    x = values_of_bits(bits, fmt)
    inputs = np.asarray(bits)[np.isfinite(x)]
    return inputs, name, bits_of_values(sign * values_of_bits(inputs, fmt), fmt)


def judge_derivative(function, fmt, inputs, truths, y64, conventions=(), *, refused=None,
                     oracle_cache=True):
    """Judge autograd's derivatives ``y64`` of ``function`` at ``inputs`` against
    ``truths`` (of the catalog function at the points :func:`derivative_inputs` gives),
    in the budget of ``function``; its ``conventions`` cover the derivative where their
    mechanism does (a threshold past which the function is linear makes its derivative
    1; a flush of subnormals flushes them in the backward pass too)."""
    fmt = get_format(fmt)
    budget = get_function(function).budgets.get(fmt.name)
    judged = judge(truths.function, fmt, truths, y64, refused=refused, oracle_cache=oracle_cache,
                   budget=budget)
    # judged (the oracle asked) at the truth function's inputs; conventions and reports
    # see the inputs the derivative was taken at
    judged.truths = replace(truths, bits=np.asarray(inputs), x=values_of_bits(inputs, fmt))
    _apply_conventions(judged, tuple(conventions), budget)
    return judged


def outputs_or_refusals(evaluate, bits, raised, calls=2048):
    """``(y64, dtype, refused)``: ``evaluate(bits)`` on the whole array, and where it
    raises (``raised(error)`` tells a framework refusing an input from a crash), on
    halves, down to the single inputs it refuses (``refused`` marks them; their ``y64``
    is NaN). At most ``calls`` calls: a backend refusing more, scattered, raises the
    first error."""
    return split_on_refusals(evaluate, len(bits), lambda start, stop: bits[start:stop], raised,
                             calls, "inputs")


def split_on_refusals(evaluate, n, part, raised, calls, unit):
    """The halving of :func:`outputs_or_refusals` over any ``n`` items: ``part(start,
    stop)`` is the argument of ``evaluate`` for items ``start:stop`` (the rows engine
    splits matrices of rows with it); results are NaN where refused."""
    y, refused, dtype, left = None, np.zeros(n, dtype=bool), None, [calls]
    pending = [(0, n)]
    while pending:
        start, stop = pending.pop()
        left[0] -= 1
        try:
            values, dtype = evaluate(part(start, stop))
            if y is None:
                y = np.full((n,) + np.shape(values)[1:], np.nan)
            y[start:stop] = values
        except Exception as error:
            if not raised(error) or left[0] <= 0:
                raise
            if stop - start == 1:
                refused[start] = True
            else:
                middle = (start + stop) // 2
                pending += [(middle, stop), (start, middle)]
    if dtype is None:
        raise ValueError(f"the backend raised on every one of {n} {unit}")
    return y, dtype, refused


@dataclass
class Judged:
    """Every point of an array, judged: what :func:`summarise` condenses.

    ``codes``: class codes (0 = none; see :data:`CLASS_NAMES`); ``ulp``: ULP error where
    ``codes == 0``; ``covered``: index into ``conventions`` of the documented convention
    covering a point outside the budget (-1: none); ``rounded``: the correctly rounded
    truths (the oracle's where it was asked after the fact).
    """

    function: str
    fmt: object
    truths: object
    y64: np.ndarray = None
    rounded: np.ndarray = None
    codes: np.ndarray = None
    ulp: np.ndarray = None
    covered: np.ndarray = None
    exact_zero: np.ndarray = None
    conventions: tuple = ()
    errors: list = field(default_factory=list)
    dtype: str = None
    oracle_points: int = 0
    budget: float = None

    @property
    def bits(self):
        return self.truths.bits

    @property
    def x64(self):
        return self.truths.x


def _ulp_errors(y64, units, units_lo, exponent, rounded):
    with np.errstate(all="ignore"):
        error = np.abs((np.ldexp(y64, -exponent) - units) - units_lo)
    special = np.flatnonzero(~(np.isfinite(y64) & np.isfinite(units)))
    if len(special):
        error[special] = np.where(same_values(y64[special], rounded[special]), 0.0, np.inf)
    return error


def judge(function, fmt, truths, y64, conventions=(), *, refused=None, oracle_cache=True,
          budget=None):
    """Judge the results ``y64`` against ``truths`` (a :class:`PointTruths` of
    ``function``); ``refused`` (bool array) marks the points the backend raised on (their
    ``y64`` is ignored). ``budget``: ``function``'s own by default (a gradient is judged
    by the differentiated function's)."""
    fmt = get_format(fmt)
    if budget is None:
        budget = get_function(function).budgets.get(fmt.name)
    y64 = np.asarray(y64, dtype=np.float64)
    rounded, units, units_lo = (np.asarray(a, dtype=np.float64) for a in
                                (truths.rounded, truths.units, truths.units_lo))
    exponent = np.asarray(truths.ulp_exponent)
    exact_zero = np.asarray(truths.exact_zero, dtype=bool)
    # Where the truth's binade is open and the result is not the rounded truth, the
    # spacing the error is measured in matters: mpmath settles it.
    open_binade = np.flatnonzero(~np.asarray(truths.binade_known) & ~same_values(y64, rounded))
    if len(open_binade):
        # copies: the truths may be a read-only file shared by every backend's process
        rounded, units, units_lo, exponent, exact_zero = (
            np.array(a) for a in (rounded, units, units_lo, exponent, exact_zero))
        answers = truth_many(function, [(x,) for x in truths.x[open_binade].tolist()], fmt, cache=oracle_cache)
        for i, truth in zip(open_binade.tolist(), answers):
            if truth.decided:
                units[i], units_lo[i], exponent[i], exact_zero[i] = oracle_units(truth.exact, truth.rounded, fmt)
                rounded[i] = truth.rounded
    codes = classify_array(y64, rounded, fmt, exact_zero)
    codes[~np.asarray(truths.decided)] = _UNDECIDED
    ulp = _ulp_errors(y64, units, units_lo, exponent, rounded)
    if budget is not None:
        # a near-tie at the subnormal boundary or the overflow threshold is an ULP error
        sized = np.isin(codes, _SIZED_CLASSES) & np.isfinite(y64) & (ulp <= budget)
        codes[sized] = 0
    if refused is not None and refused.any():
        undefined = np.isnan(rounded) & np.asarray(truths.decided)
        codes[refused] = np.where(undefined[refused], REFUSED_UNDEFINED, REFUSED)
    ulp[codes != 0] = np.nan
    judged = Judged(function, fmt, truths, y64, rounded, codes, ulp, exact_zero=exact_zero,
                    oracle_points=len(open_binade), budget=budget)
    _apply_conventions(judged, tuple(conventions), budget)
    return judged


def failing(judged, budget):
    """Points outside the budget: a failure class, or a ULP error above ``budget``."""
    with np.errstate(invalid="ignore"):
        over = judged.ulp > budget if budget is not None else np.zeros(len(judged.ulp), dtype=bool)
    return ((judged.codes != 0) & (judged.codes != _UNDECIDED) & (judged.codes != REFUSED_UNDEFINED)) | over


def _shows_no_flush(judged):
    """The backend returned a nonzero subnormal result: it does not flush here."""
    y = np.abs(judged.y64)
    return bool(np.any((y > 0) & (y < judged.fmt.smallest_normal)))


def _apply_conventions(judged, conventions, budget):
    """Mark the failing points a documented convention of the backend covers: the first
    whose predicate accepts the point (its input and its truth), asked once per array
    where the convention has an array predicate (``applies_array`` answers), else once
    per failing point (a passing point costs nothing)."""
    judged.conventions = conventions
    judged.covered = np.full(len(judged.y64), -1, dtype=np.int8)
    if not conventions:
        return
    open_points = np.flatnonzero(failing(judged, budget))
    truth64 = judged.truths.value() if len(open_points) else None
    for k, convention in enumerate(conventions):
        if not len(open_points):
            break
        if getattr(convention, "flushes", False) and _shows_no_flush(judged):
            continue
        x, t = judged.x64[open_points], truth64[open_points]
        on_arrays = getattr(convention, "applies_array", None)
        accepted = on_arrays(x, t, judged.fmt.name) if on_arrays is not None else None
        if accepted is None:
            accepted = np.array([convention.applies((xi,), ti, judged.fmt.name)
                                 for xi, ti in zip(x.tolist(), t.tolist())], dtype=bool)
        judged.covered[open_points[accepted]] = k
        open_points = open_points[~accepted]


# --- summaries -------------------------------------------------------------------------


def empty_summary(index=0, start=0, stop=0, points=0):
    return {
        "index": index, "start": start, "stop": stop,
        "points": points, "seconds": 0.0, "errors": [], "disagreements": [],
        "correctly_rounded": 0, "within_1ulp": 0, "measured": 0, "ulp_sum": 0.0, "max_ulp": None,
        "failing": 0, "histogram": [0] * (len(HISTOGRAM_EDGES) + 1),
        "classes": {name: 0 for name in CLASS_NAMES}, "class_examples": {}, "conventions": {},
        "worst": [], "oracle_points": 0, "fast_decided": 0, "output_dtypes": [], "refused": 0,
    }


def summarise(judged, index=0, start=0, stop=0):
    """The mergeable summary (plain JSON data) of a judged array.

    A point a convention covers leaves the class counts and the ULP statistics and is
    counted with its convention instead (its distance kept: inf for a class point);
    ``failing`` counts the points outside the budget that nothing covers;
    ``correctly_rounded`` counts the ordinary results equal to the rounded truth and
    ``within_1ulp`` those within 1 ULP.
    """
    truths = judged.truths
    summary = empty_summary(index, start, stop, len(truths))
    summary["errors"] = list(judged.errors)
    summary["disagreements"] = list(truths.disagreements)[:DISAGREEMENTS_KEPT]
    summary["oracle_points"] = int(np.count_nonzero(truths.oracle)) + judged.oracle_points
    summary["fast_decided"] = int(truths.fast_decided)
    if judged.y64 is None:
        return summary
    fmt = judged.fmt
    budget = judged.budget
    bits, x64, y64, rounded, ulp = judged.bits, judged.x64, judged.y64, judged.rounded, judged.ulp
    covered = judged.covered >= 0
    codes = np.where(covered, np.int8(-1), judged.codes)  # -1: shown with its convention
    summary["output_dtypes"] = [judged.dtype] if judged.dtype else []
    summary["refused"] = int(np.count_nonzero(judged.codes >= REFUSED))
    summary["failing"] = int(np.count_nonzero(failing(judged, budget) & ~covered))
    for k, convention in enumerate(judged.conventions):
        mine = judged.covered == k
        if mine.any():
            distance = np.where(judged.codes[mine] == 0, ulp[mine], np.inf)
            summary["conventions"][convention.name] = {
                "summary": convention.summary, "reference": convention.reference,
                "points": int(np.count_nonzero(mine)), "max_ulp": float(np.max(distance)),
                "flushes": bool(getattr(convention, "flushes", False))}
    # one pass counts every code (codes run from -1, a covered point, upwards)
    counts = np.bincount(codes.astype(np.int64) + 1, minlength=max(ruler.CLASS_CODES.values()) + 2)
    for name, code in ruler.CLASS_CODES.items():
        summary["classes"][name] = int(counts[code + 1])
        if summary["classes"][name]:
            summary["class_examples"][name] = [int(b) for b in bits[codes == code][:EXAMPLES_KEPT]]
    measured = codes == 0
    errors_measured = ulp[measured]
    summary["measured"] = int(errors_measured.size)
    # either zero is the correctly rounded value of an exact zero
    correct = same_values(y64, rounded) | (judged.exact_zero & (y64 == 0))
    summary["correctly_rounded"] = int(np.count_nonzero(correct & measured))
    summary["within_1ulp"] = int(np.count_nonzero(errors_measured <= 1.0))
    if errors_measured.size:
        summary["ulp_sum"] = float(np.sum(errors_measured))
        summary["max_ulp"] = float(np.max(errors_measured))
        # Most points fall in the first bin (<= 0.5); only the others need searching.
        above = errors_measured[errors_measured > HISTOGRAM_EDGES[0]]
        bins = np.searchsorted(np.asarray(HISTOGRAM_EDGES), above, side="left")
        histogram = np.bincount(bins, minlength=len(HISTOGRAM_EDGES) + 1)
        histogram[0] = errors_measured.size - above.size
        summary["histogram"] = histogram.tolist()
        summary["worst"] = _worst_points(bits, x64, y64, rounded, np.where(measured, ulp, -np.inf),
                                         errors_measured.size)
    # the worst failures too, ranked above every ordinary point (inf)
    failures = np.flatnonzero((codes > 0) & (codes != _UNDECIDED) & (codes != REFUSED_UNDEFINED))[:WORST_KEPT]
    summary["worst"] = _kept_worst(
        [[math.inf, int(bits[i]), float(x64[i]), None if codes[i] == REFUSED else float(y64[i]),
          float(rounded[i]), "refused" if codes[i] == REFUSED else CLASS_NAMES[codes[i] - 1]]
         for i in failures.tolist()] + summary["worst"])
    return summary


def _kept_worst(entries):
    """The WORST_KEPT largest ordinary errors and the first WORST_KEPT failures (ranked
    inf), each kind cut apart: a range with many failures keeps its worst ULP error too."""
    ranked = sorted(entries, key=lambda w: (-w[0], w[1]))
    failures = [w for w in ranked if w[0] == math.inf]
    return failures[:WORST_KEPT] + [w for w in ranked if w[0] != math.inf][:WORST_KEPT]


def _worst_points(bits, x64, y64, rounded, ulp, measured):
    """The WORST_KEPT largest errors, ties broken by the smaller bit pattern (so the
    choice does not depend on how the range was cut into shards). ``bits`` ascend;
    ``ulp`` is -inf at the points not measured, of which ``measured`` remain."""
    k = min(WORST_KEPT, measured)
    threshold = np.partition(ulp, ulp.size - k)[ulp.size - k]
    above = np.flatnonzero(ulp > threshold)
    order = above[np.lexsort((bits[above], -ulp[above]))]
    # Ties at the threshold (a shard of exact results has a million) come in bit order.
    ties = np.flatnonzero(ulp == threshold)[:k - len(order)]
    order = np.concatenate([order, ties])
    return [[float(ulp[i]), int(bits[i]), float(x64[i]), float(y64[i]), float(rounded[i]), None]
            for i in order]


def merge_summaries(a, b):
    """The summary of two disjoint sets of points. Associative and commutative up to the
    order of float additions in ``ulp_sum`` and ``seconds`` (merge in shard order for
    results that agree to the bit)."""
    max_ulp = [m for m in (a["max_ulp"], b["max_ulp"]) if m is not None]
    examples = {}
    for name in set(a["class_examples"]) | set(b["class_examples"]):
        both = a["class_examples"].get(name, []) + b["class_examples"].get(name, [])
        examples[name] = sorted(both)[:EXAMPLES_KEPT]
    return {
        "index": min(a["index"], b["index"]), "start": min(a["start"], b["start"]),
        "stop": max(a["stop"], b["stop"]),
        "points": a["points"] + b["points"], "seconds": a["seconds"] + b["seconds"],
        "errors": a["errors"] + b["errors"],
        "disagreements": a["disagreements"] + b["disagreements"],
        "correctly_rounded": a["correctly_rounded"] + b["correctly_rounded"],
        "within_1ulp": a["within_1ulp"] + b["within_1ulp"],
        "measured": a["measured"] + b["measured"], "ulp_sum": a["ulp_sum"] + b["ulp_sum"],
        "failing": a["failing"] + b["failing"],
        "conventions": _merge_conventions(a["conventions"], b["conventions"]),
        "max_ulp": max(max_ulp) if max_ulp else None,
        "histogram": [x + y for x, y in zip(a["histogram"], b["histogram"])],
        "classes": {name: a["classes"][name] + b["classes"][name] for name in CLASS_NAMES},
        "class_examples": examples,
        "worst": _kept_worst(a["worst"] + b["worst"]),
        "oracle_points": a["oracle_points"] + b["oracle_points"],
        "fast_decided": a["fast_decided"] + b["fast_decided"],
        "output_dtypes": sorted(set(a["output_dtypes"]) | set(b["output_dtypes"])),
        "refused": a.get("refused", 0) + b.get("refused", 0),
    }


def _merge_conventions(a, b):
    merged = {name: dict(entry) for name, entry in a.items()}
    for name, entry in b.items():
        if name in merged:
            merged[name]["points"] += entry["points"]
            merged[name]["max_ulp"] = max(merged[name]["max_ulp"], entry["max_ulp"])
        else:
            merged[name] = dict(entry)
    return merged


def merge_in_order(summaries):
    ordered = sorted(summaries, key=lambda s: s["index"])
    merged = ordered[0]
    for summary in ordered[1:]:
        merged = merge_summaries(merged, summary)
    return merged


def p99_from_histogram(histogram, measured):
    if not measured:
        return None
    needed = math.ceil(0.99 * measured)
    running = 0
    for upper, count in zip(HISTOGRAM_EDGES + (math.inf,), histogram):
        running += count
        if running >= needed:
            return upper
    return math.inf


# --- the worst-case search ----------------------------------------------------------------

#: Offsets, in ulps, of the neighbours asked around each worst point every round.
SEARCH_OFFSETS = np.unique(np.concatenate([
    np.arange(-16, 17), [s * 2 ** k for k in range(5, 21) for s in (-3, -2, -1, 1, 2, 3)]])).astype(np.int64)
SEARCH_SEEDS = 8
SEARCH_ROUNDS = 6
#: The search keeps this many times its seeds as candidates to spread them from.
_POOL = 8
#: Random points drawn around each seed per round, within a radius of 2**22 ulps in the
#: first round, shrinking fourfold each round down to 2**4.
SEARCH_RANDOM = 2048


def search_worst(function, fmt, judged, evaluate, conventions=(), *, rounds=SEARCH_ROUNDS,
                 seeds=SEARCH_SEEDS, random_points=SEARCH_RANDOM, oracle_cache=True, seed=0):
    """Search around the largest errors of ``judged`` for larger ones, after the
    black-box method of Zimmermann's accuracy tables: sample, then sample again more
    densely where the errors are largest. Each round takes ``seeds`` of the largest errors
    found so far (no convention covering them), spread at least the round's radius
    apart (:func:`_spread`), asks their neighbours
    (:data:`SEARCH_OFFSETS` ulps away) and ``random_points`` random inputs around each
    (within a radius shrinking from 2**22 ulps), and judges them like the others
    (``evaluate(bits) -> (y64, dtype)`` calls the backend); points already judged are
    skipped. No search starts from a sample that is correctly rounded everywhere (its
    worst is 0.5 ULP), and a round whose truths mpmath had to decide for more than a
    tenth of its points (a neighbourhood of near-midpoints) makes the next ones ask
    neighbours only. Returns ``(summary of the new points or None, figures)``."""
    fmt = get_format(fmt)
    rng = np.random.default_rng([int(seed), len(judged.bits)])
    seen = sorted_unique(np.asarray(judged.bits, dtype=np.uint64))
    summaries = []
    best = before = _largest_own_error(judged)
    limit = ordinal(fmt.largest_finite, fmt)
    asked = 0
    pool = _worst(judged, seeds * _POOL)
    for k in range(rounds):
        radius = max(2 ** 4, 2 ** (22 - 2 * k))
        frontier = _spread(*pool, seeds, radius, fmt)
        if not len(frontier[0]) or best is None or best <= 0.5:
            break
        centres = ordinals_of_bits(frontier[0], fmt)[:, None]
        offsets = [np.broadcast_to(SEARCH_OFFSETS, (len(centres), len(SEARCH_OFFSETS)))]
        if random_points:
            offsets.append(rng.integers(-radius, radius, (len(centres), random_points), endpoint=True))
        ordinals = sorted_unique(np.clip((centres + np.concatenate(offsets, axis=1)).ravel(), -limit, limit))
        candidates = bits_of_ordinals(ordinals, fmt)
        at = np.minimum(np.searchsorted(seen, candidates), len(seen) - 1)
        fresh = candidates[seen[at] != candidates]
        if not len(fresh):
            break
        seen = np.sort(np.concatenate([seen, fresh]))
        asked += len(fresh)
        try:
            y64, dtype = evaluate(fresh)
        except Exception:  # a backend refusing (or failing on) a neighbour ends the search
            break
        truths = point_truths(function, fmt, values_of_bits(fresh, fmt), bits=fresh, sample=0,
                              cache=oracle_cache)
        if np.count_nonzero(truths.oracle) > len(fresh) // 10:
            random_points = 0
        found = judge(function, fmt, truths, y64, conventions, oracle_cache=oracle_cache)
        found.dtype = dtype
        summaries.append(summarise(found, index=len(summaries) + 1))
        top = _largest_own_error(found)
        if top is not None and (best is None or top > best):
            best = top
        new_bits, new_ulp = _worst(found, seeds * _POOL)
        pool = _top(np.concatenate([pool[0], new_bits]), np.concatenate([pool[1], new_ulp]),
                    seeds * _POOL)
    figures = {"points": asked, "rounds": len(summaries), "max_ulp_before": before,
               "max_ulp_after": best}
    return (merge_in_order(summaries) if summaries else None), figures


def _largest_own_error(judged):
    """The largest ULP error no convention covers, or None."""
    own = judged.ulp[np.isfinite(judged.ulp) & (judged.covered < 0)]
    return float(own.max()) if own.size else None


def _worst(judged, seeds):
    """``(bits, ulp)`` of the ``seeds`` largest errors no convention covers."""
    ordinary = np.flatnonzero(np.isfinite(judged.ulp) & (judged.covered < 0))
    return _top(judged.bits[ordinary], judged.ulp[ordinary], seeds)


def _spread(bits, ulp, k, apart, fmt):
    """The ``k`` largest errors of ``(bits, ulp)`` taken greedily, each more than
    ``apart`` ulps from those taken before: the first rounds, whose radius is wide,
    start from as many separate regions as they have seeds (tensorflow's sigmoid has
    6.2-ULP clusters near -53 and -2 and its worst, 6.58, near -4.85), the last ones
    close in on the largest errors."""
    bits, ulp = _top(bits, ulp, len(bits))
    ordinals = ordinals_of_bits(bits, fmt)
    taken = []
    for i in range(len(bits)):
        if len(taken) == k:
            break
        if all(abs(int(ordinals[i]) - int(ordinals[j])) > apart for j in taken):
            taken.append(i)
    return bits[taken], ulp[taken]


def _top(bits, ulp, k):
    order = np.argsort(-ulp, kind="stable")[:k]
    return bits[order], ulp[order]


# --- the record ---------------------------------------------------------------------------


def _worst_entry(fmt, worst):
    ulp, bits, x, y, expected, kind = worst
    entry = {"input": [x], "input_hex": [x.hex()], "input_bits": [pattern_hex(bits, fmt)],
             "output": y, "expected": expected, "ulp": None if kind else ulp}
    if kind == "refused":
        entry["error"] = "the backend raised on this input, where a number is due"
    elif kind:
        entry["class"] = kind
    return entry


def accuracy_record(backend_name, function, fmt, merged, section, section_name="engine",
                    check="accuracy", truth_of=None):
    """The ``accuracy`` record of a merged summary (or the ``gradient`` record, whose
    truths are those of the catalog function ``truth_of``: see ``Function.derivative_as``);
    ``section`` (the sweep's or the engine's own figures) is kept under ``section_name``."""
    spec = get_function(function)
    truth_spec = get_function(truth_of or function)
    fmt = get_format(fmt)
    budget = spec.budgets.get(fmt.name)
    measured = merged["measured"]
    points = merged["points"]
    failures = {name: n for name, n in merged["classes"].items() if n and name != ruler.UNDECIDED}
    problems = []
    if merged["errors"]:
        problems.append(f"the backend failed on {len(merged['errors'])} array(s): {merged['errors'][0]}")
    if merged["disagreements"]:
        first = merged["disagreements"][0]
        problems.append(
            f"REFACT BUG: the fast truth disagrees ({first.get('kind', 'rounding')}) at "
            f"{len(merged['disagreements'])} point(s), first {truth_spec.name}({first['input_bits']}) "
            f"= {truth_spec.name}({first['input']!r}); "
            f"the mpmath value was used where it was asked")
    if problems:
        status = "error"
    elif merged["failing"]:
        status = "fail"
    else:
        status = "convention" if merged["conventions"] else "pass"
    worst = [_worst_entry(fmt, w) for w in merged["worst"]]
    ordinary = [w for w in worst if "class" not in w]
    where = f" at {ordinary[0]['input_bits'][0]}" if ordinary else ""
    max_text = "no measured points" if merged["max_ulp"] is None else f"max {merged['max_ulp']:.3g} ULP{where}"
    details = [f"{name} {n:,}" for name, n in failures.items()]
    if merged["failing"]:
        details.insert(0, f"{merged['failing']:,} points outside the budget of {budget:g} ULP")
    details += [f"{entry['points']:,} points covered by the convention {name}"
                for name, entry in sorted(merged["conventions"].items())]
    scope = section.get("scope", f"{points:,} points")
    message = "; ".join(problems + [f"{scope}: {max_text}"] + details)
    dtypes = [d for d in merged["output_dtypes"] if d != fmt.name]
    if dtypes:
        message += f"; results came back as {', '.join(dtypes)}"
    if merged.get("refused"):
        message += f"; raised on {merged['refused']:,} input(s)"
    section = dict(section)
    section.update(
        oracle_points=merged["oracle_points"], fast_decided=merged["fast_decided"],
        seconds=merged["seconds"], output_dtypes=merged["output_dtypes"],
        histogram={"upper_edges": list(HISTOGRAM_EDGES) + [math.inf], "counts": merged["histogram"]},
        class_examples={name: [pattern_hex(b, fmt) for b in bits]
                        for name, bits in sorted(merged["class_examples"].items())},
        disagreements=merged["disagreements"], backend_errors=merged["errors"][:DISAGREEMENTS_KEPT],
        fast_truth=_fast_truth_text(truth_spec.name, fmt),
    )
    section.pop("scope", None)
    return record(
        backend_name, spec.name, fmt.name, check, status=status, message=message, budget=budget,
        classes_counted=merged["classes"], points=points, max_ulp=merged["max_ulp"],
        p99_ulp=p99_from_histogram(merged["histogram"], measured),
        mean_ulp=merged["ulp_sum"] / measured if measured else None,
        correctly_rounded=merged["correctly_rounded"] / points if points else None,
        within_1ulp=merged["within_1ulp"] / points if points else None,
        convention=convention_field([{"name": name, **entry} for name, entry in sorted(merged["conventions"].items())]),
        flush_covered=any(entry.get("flushes") for entry in merged["conventions"].values()),
        worst=[w for w in worst if "ulp" in w and w["ulp"] is not None][:5]
        + [w for w in worst if w["ulp"] is None][:3],
        refused=merged.get("refused", 0), **{section_name: section},
    )


def _fast_truth_text(function, fmt):
    truth = FAST_TRUTHS.get(function)
    if truth is None:
        return None
    if fmt.name == "float64":
        if truth.extended is None:
            return {"why": "no extended-precision formula: mpmath decided every point"}
        return {"relative_bound": fastpath.EXTENDED_RELATIVE_BOUND,
                "why": "textbook formula in long double (see refact.conformance.truth.fast)"}
    return {"relative_bound": fastpath.RELATIVE_BOUND, "absolute_bound": fastpath.ABSOLUTE_BOUND,
            "why": fast_truth_of(function).why}


def plot_series(judged, limit=1500, seed=0):
    """At most ``limit`` judged points for a plot: the largest errors, every failure up
    to half the limit, and an even sample of the rest; ``(x, ulp)`` lists (ULP None for a
    class point)."""
    n = len(judged.x64)
    finite_x = np.isfinite(judged.x64)
    bad = np.flatnonzero(finite_x & ((judged.codes > 0) & (judged.codes != _UNDECIDED)))[: limit // 4]
    ordinary = np.flatnonzero(finite_x & np.isfinite(judged.ulp))
    largest = ordinary[np.argsort(-judged.ulp[ordinary], kind="stable")[: limit // 4]] if len(ordinary) else ordinary
    rest = np.random.default_rng(seed).choice(n, size=min(n, limit // 2), replace=False)
    chosen = np.unique(np.concatenate([bad, largest, rest[finite_x[rest]]]))
    ulp = judged.ulp[chosen]
    return judged.x64[chosen].tolist(), [None if u != u else float(u) for u in ulp.tolist()]
