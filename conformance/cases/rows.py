"""Dense row sets of the row functions and the losses: the matrices the default run judges.

``dense_rows(function, fmt, seed)`` returns a :class:`RowSet`: groups of rows of one
length each, so a framework is called on an ``(N, C)`` array per length, as a model
calls it. Every float in it is a value of ``fmt``; the set depends on ``(function,
format, seed, sizes)`` only, and its memory is bounded by the sizes (about 0.6 M
entries per function and format by default).

Row functions (softmax, log_softmax, logsumexp; the logits of cross_entropy and the
student of distillation_loss): :data:`ROW_COUNTS` rows per length ``C`` in
{2, 3, 10, 100, 1000} and a few 32000-wide rows (a vocabulary), each row one of
the families of :data:`FAMILIES`:

=============  ==========================================================================
``normal``     N(0, sigma) with sigma log-uniform in [1, 30]
``small``      N(0, sigma) with sigma log-uniform in [1e-3, 1]
``dominant``   one logit ``g`` above the others (at 0 plus N(0, 1/4) noise), ``g`` the
               gap of a regime threshold of the catalog (``ROW_GAPS``: where exp(-g) is
               lost beside 1, becomes subnormal, rounds to 0), a few ulps either side,
               or that gap scaled by 0.5..2
``near_tie``   a ``normal`` row whose two largest entries are 0..4 ulps apart
``minus_inf``  a ``normal`` row with 10-60% of its entries -inf (never all of them)
``huge``       N(0, 1e4) logits, and rows of magnitudes near the format's overflow
``equal``      every entry the same value (normal scale or huge)
=============  ==========================================================================

cross_entropy: a class index per row, the argmax, the argmin or a random class (a third
each; the argmin of a ``minus_inf`` row is a -inf logit: a loss of +inf).
distillation_loss: a teacher row per student row (the student plus N(0, s) noise, s
log-uniform in [1e-3, 3], or an independent ``normal`` row), one temperature per group
(a call takes one): :data:`TEMPERATURES`.
binary_cross_entropy and binary_cross_entropy_with_logits: one group of pairs (the
losses are elementwise in two arguments): ``p`` dense next to 0 and next to 1 in ulp
space and uniform in (0, 1) (the logit ``x`` dense in the active region |x| <= 100,
log-uniform out to the overflow), against ``y`` in {0, 1, 1/2, uniform soft label}.
"""

import zlib

import numpy as np

from refact.conformance.cases.sets import threshold_values
from refact.conformance.numbers.formats import (
    bits_of_ordinals, bits_of_values, get_format, ordinal, ordinals_of_bits, round_to_format_array,
    values_of_bits,
)
from refact.conformance.truth.catalog import ROW_GAPS, get_function
from refact.conformance.truth.rows import RowGroup, RowSet

__all__ = [
    "FAMILIES", "ROW_COUNTS", "WIDE_ROWS", "TEMPERATURES", "PAIRS", "ROW_SIZES", "RowGroup", "RowSet",
    "dense_rows", "row_functions",
]

FAMILIES = ("normal", "small", "dominant", "near_tie", "minus_inf", "huge", "equal")
#: Share of each family in a group, in :data:`FAMILIES` order.
_FAMILY_SHARES = (0.30, 0.08, 0.20, 0.15, 0.10, 0.12, 0.05)
#: Rows per length: 16,384 in all with :data:`WIDE_ROWS`.
ROW_COUNTS = {2: 6144, 3: 4096, 10: 4096, 100: 1792, 1000: 252}
#: A few vocabulary-wide rows: ``(length, rows)``.
WIDE_ROWS = (32000, 4)
#: ``dense_rows`` sizes by case level (``default``: the defaults above).
ROW_SIZES = {
    "quick": {"counts": {2: 256, 3: 128, 10: 64, 100: 16}, "wide": (32000, 0), "pairs": 1024},
    "default": {},
    "full": {"counts": {2: 1 << 15, 3: 1 << 14, 10: 1 << 14, 100: 4096, 1000: 1024}, "wide": (32000, 16),
             "pairs": 1 << 18},
}
#: Temperatures of distillation_loss, one group each; "tiny" and "huge" ones included.
TEMPERATURES = (1.0, 2.0, 4.0, 10.0, 1.0 / 1024, 1e4)
#: Pairs of the binary cross-entropies.
PAIRS = 1 << 16


def row_functions():
    """The catalog functions judged on dense rows (kinds "axis" and "loss")."""
    from refact.conformance.truth.catalog import FUNCTIONS

    return [name for name, spec in FUNCTIONS.items() if spec.kind in ("axis", "loss")]


def _rounded(values, fmt):
    return round_to_format_array(np.asarray(values, dtype=np.float64), fmt)


def _gaps(fmt):
    """Positive gaps at the row regime thresholds of ``fmt``."""
    gaps = [abs(v) for name in ROW_GAPS for v in threshold_values(name, fmt)]
    return np.array(sorted({g for g in gaps if np.isfinite(g) and g > 0}) or [16.0])


def _family_of(n, rng):
    counts = np.floor(np.array(_FAMILY_SHARES) * n).astype(int)
    counts[0] += n - counts.sum()
    family = np.repeat(np.arange(len(FAMILIES), dtype=np.int8), counts)
    rng.shuffle(family)
    return family


def _normal(rows, length, rng, low=1.0, high=30.0):
    sigma = np.exp(rng.uniform(np.log(low), np.log(high), (rows, 1)))
    return rng.standard_normal((rows, length)) * sigma


def _logit_rows(n, length, fmt, rng):
    """``(x, family)``: ``n`` rows of ``length`` logits, the families mixed."""
    family = _family_of(n, rng)
    x = _normal(n, length, rng)
    pick = {name: np.flatnonzero(family == k) for k, name in enumerate(FAMILIES)}
    x[pick["small"]] = _normal(len(pick["small"]), length, rng, 1e-3, 1.0)
    # huge: N(0, 1e4), and half of them near the overflow of the format
    huge = pick["huge"]
    x[huge] = rng.standard_normal((len(huge), length)) * 1e4
    top = huge[: len(huge) // 2]
    x[top] = rng.choice([-1.0, 1.0], (len(top), length)) * rng.uniform(0.25, 1.0, (len(top), length)) \
        * fmt.largest_finite
    equal = pick["equal"]
    scale = np.where(rng.random(len(equal)) < 0.7, 10.0, 1e4)
    x[equal] = (rng.standard_normal(len(equal)) * scale)[:, None]
    x = _rounded(x, fmt)
    # dominant: one entry a threshold gap above the others
    dominant = pick["dominant"]
    if len(dominant):
        gaps = _gaps(fmt)
        g = rng.choice(gaps, len(dominant))
        near = rng.random(len(dominant)) < 0.5
        ulps = rng.integers(-4, 5, len(dominant))
        g = np.where(near, g * (1.0 + ulps * 2.0 ** (1 - fmt.precision)), g * np.exp2(rng.uniform(-1, 1, len(dominant))))
        rest = _rounded(-np.abs(g)[:, None] + rng.standard_normal((len(dominant), length)) * 0.25, fmt)
        if length > 1:
            rest[rest >= 0] = _rounded(-np.abs(g)[:, None] * np.ones((1, length)), fmt)[rest >= 0]
        at = rng.integers(0, length, len(dominant))
        rest[np.arange(len(dominant)), at] = 0.0
        x[dominant] = rest
    # near ties: the two largest entries a few ulps apart
    ties = pick["near_tie"]
    if len(ties) and length > 1:
        first = np.argmax(x[ties], axis=1)
        second = (first + 1 + rng.integers(0, length - 1, len(ties))) % length
        top_values = x[ties, first]
        steps = rng.integers(0, 5, len(ties))
        nudged = top_values.copy()
        for k in range(1, 5):
            moving = steps >= k
            nudged[moving] = _next_toward(nudged[moving], np.where(rng.random(moving.sum()) < 0.5, -np.inf, np.inf), fmt)
        x[ties, second] = nudged
    # -inf entries, never a whole row
    holes = pick["minus_inf"]
    if len(holes) and length > 1:
        share = rng.uniform(0.1, 0.6, (len(holes), 1))
        mask = rng.random((len(holes), length)) < share
        mask[np.arange(len(holes)), rng.integers(0, length, len(holes))] = False
        block = x[holes]
        block[mask] = -np.inf
        x[holes] = block
    return x, family


def _next_toward(values, direction, fmt):
    """The neighbour of each format value toward ``direction``, in ``fmt``."""
    ordinals = ordinals_of_bits(bits_of_values(values, fmt), fmt)
    moved = ordinals + np.where(direction > 0, 1, -1)
    limit = ordinal(fmt.largest_finite, fmt)
    return values_of_bits(bits_of_ordinals(np.clip(moved, -limit, limit), fmt), fmt)


def _targets(x, family, rng):
    n, length = x.shape
    choice = rng.integers(0, 3, n)
    with np.errstate(invalid="ignore"):
        argmax = np.argmax(np.where(np.isnan(x), -np.inf, x), axis=1)
        argmin = np.argmin(np.where(np.isnan(x), np.inf, x), axis=1)
    random = rng.integers(0, length, n)
    return np.where(choice == 0, argmax, np.where(choice == 1, argmin, random)).astype(np.int64)


def _teachers(student, fmt, rng):
    n, length = student.shape
    close = rng.random(n) < 0.7
    noise = rng.standard_normal((n, length)) * np.exp(rng.uniform(np.log(1e-3), np.log(3.0), (n, 1)))
    with np.errstate(invalid="ignore"):
        teacher = np.where(close[:, None], student + noise, _normal(n, length, rng))
    teacher = np.where(np.isneginf(student), -np.inf, teacher)  # keep the supports nested
    return _rounded(teacher, fmt)


def _probabilities(n, fmt, rng):
    """Dense next to 0 and next to 1 in ulp space, and uniform in (0, 1)."""
    third = n // 3
    tiny = np.exp2(rng.uniform(np.log2(fmt.smallest_subnormal), -1.0, third))
    below_one = 1.0 - np.exp2(rng.uniform(-fmt.precision, -1.0, third))
    uniform = rng.uniform(0.0, 1.0, n - 2 * third)
    p = _rounded(np.concatenate([tiny, below_one, uniform]), fmt)
    return np.clip(p, fmt.smallest_subnormal, 1.0)  # p in (0, 1]: the special-value check has 0


def _reals(n, fmt, rng):
    half = n // 2
    active = rng.uniform(-100.0, 100.0, half)
    with np.errstate(over="ignore"):
        wide = np.exp2(rng.uniform(-20.0, np.log2(fmt.largest_finite), n - half)) * rng.choice([-1.0, 1.0], n - half)
    return np.clip(_rounded(np.concatenate([active, wide]), fmt), -fmt.largest_finite, fmt.largest_finite)


def _labels(n, fmt, rng):
    kind = rng.integers(0, 4, n)
    soft = _rounded(rng.uniform(0.0, 1.0, n), fmt)
    return np.select([kind == 0, kind == 1, kind == 2], [0.0, 1.0, 0.5], soft)


def _row_lengths(counts, wide):
    lengths = dict(counts)
    if wide and wide[1]:
        lengths[wide[0]] = lengths.get(wide[0], 0) + wide[1]
    return lengths


def dense_rows(function, fmt, seed=0, counts=None, wide=WIDE_ROWS, pairs=PAIRS):
    """The dense :class:`RowSet` of a row function or loss in ``fmt`` (see the module
    docstring); ``counts`` ``{length: rows}`` (default :data:`ROW_COUNTS`), ``wide``
    ``(length, rows)`` and ``pairs`` set its size."""
    spec = get_function(function)
    fmt = get_format(fmt)
    if spec.kind not in ("axis", "loss"):
        raise ValueError(f"dense_rows: {spec.name} is {spec.kind}; dense rows are of the row "
                         f"functions and losses ({', '.join(row_functions())})")
    counts = ROW_COUNTS if counts is None else counts
    for length, rows in counts.items():
        if int(length) < 1 or int(rows) < 0:
            raise ValueError(f"dense_rows: counts must map lengths >= 1 to rows >= 0, got {length}: {rows}")
    rng = np.random.default_rng([int(seed), zlib.crc32(f"rows/{spec.name}/{fmt.name}".encode())])
    roles = tuple(p.role for p in spec.parameters)
    groups = []
    if roles[0] != "row":  # the binary cross-entropies: pairs
        first = _probabilities(pairs, fmt, rng) if roles[0] == "probability" else _reals(pairs, fmt, rng)
        groups.append(RowGroup((first, _labels(pairs, fmt, rng)), np.zeros(pairs, dtype=np.int8)))
        return RowSet(spec.name, fmt.name, groups)
    lengths = _row_lengths(counts, wide)
    if roles == ("row", "row", "temperature"):
        for t in TEMPERATURES:
            temperature = float(_rounded([t], fmt)[0])
            for length, rows in lengths.items():
                share = -(-rows // len(TEMPERATURES))  # ceil: every temperature gets its share
                if not share:
                    continue
                student, family = _logit_rows(share, length, fmt, rng)
                # -inf entries in distillation make the teacher's support the question,
                # which the special-value check asks; here the rows are finite
                holes = np.isneginf(student).any(axis=1)
                student[holes] = _rounded(_normal(int(holes.sum()), length, rng), fmt)
                family[holes] = FAMILIES.index("normal")
                groups.append(RowGroup((student, _teachers(student, fmt, rng), temperature), family))
        return RowSet(spec.name, fmt.name, groups)
    for length, rows in lengths.items():
        if not rows:
            continue
        x, family = _logit_rows(rows, length, fmt, rng)
        arguments = (x, _targets(x, family, rng)) if roles == ("row", "class_index") else (x,)
        groups.append(RowGroup(arguments, family))
    return RowSet(spec.name, fmt.name, groups)
