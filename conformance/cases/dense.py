"""Dense input sets of the elementwise functions: the arrays the default run judges.

``dense_bits(function, fmt, seed)`` returns sorted, distinct bit patterns of ``fmt``:

* 16-bit formats: every pattern (65,536: the whole format, NaNs included) whenever
  ``size`` reaches it (the default; the quick level samples them like the others);
* float32 and float64: ``size`` patterns (:func:`dense_size`: :data:`DENSE_POINTS` for
  float64, eight times as many for float32, whose truths cost a fifth as much a point)
  drawn where networks and thresholds put them, as fractions of the set:

  ==========================  ====================================================
  neighbourhoods              every threshold of the function (located by the
                              oracle, see :mod:`.sets`) and every regime edge a
                              built-in backend's conventions declare (torch's
                              softplus threshold 20): the 256 values on each side,
                              then offsets of 2**k ulp (8 a scale) out to the
                              whole binade
  core, by value (half)       uniform in value over the central eighth of the
                              active region (|x| <= 16 for float32 sigmoid), where
                              networks work and where approximations keep narrow
                              peaks of error (tensorflow's float32 sigmoid: 6.58 ULP
                              at -4.8508, all points above 6.25 ULP within 0.003
                              of it); for a probability, (0, 1)
  active region, by value     uniform in value over the active region: for a
                              real argument ``|x| <= R``, R a quarter past the
                              outermost threshold (130 for float32 sigmoid, 931
                              for float64); for a probability, (0, 1)
  active region, by ulp       uniform over the bit patterns of the active region
                              (every binade down to the subnormals), and for a
                              probability ``1 - k ulp`` with k log-uniform: as
                              dense next to 1 as next to 0
  whole range                 log-uniform magnitudes with a random sign, random
                              finite patterns, and the special values (for a
                              probability only those in [0, 1]: what it gives
                              outside is the special-value check's)
  ==========================  ====================================================

The set depends on ``(function, format, seed)`` only; a conformance run computes its
truths once (:func:`refact.conformance.truth.arrays.cached_point_truths`) and judges
every backend on the same points.
"""

import zlib

import numpy as np

from refact.conformance.cases.sets import threshold_names, threshold_values
from refact.conformance.numbers.formats import (
    bits_of_ordinals, bits_of_values, get_format, ordinal, round_to_format_array, sorted_unique,
    values_of_bits,
)
from refact.conformance.truth.catalog import get_function

__all__ = ["DENSE_POINTS", "NEIGHBOURS", "dense_bits", "dense_size", "active_region", "core_region",
           "regime_edges"]

DENSE_POINTS = 1 << 17
#: How many times a level's size each format's dense set has (16-bit sets are whole).
_SIZE_FACTOR = {"float32": 8}
#: Consecutive values on each side of a threshold.
NEIGHBOURS = 256
_PER_SCALE = 8


def regime_edges(function):
    """The inputs where a built-in backend's documented convention for ``function``
    changes regime (``Convention.edges``); read from the adapters' classes, which import
    no framework."""
    from refact.backends import BUILTIN, backend_class

    edges = set()
    for name in BUILTIN:
        for convention in getattr(backend_class(name), "conventions", ()):
            if convention.function == function:
                edges.update(float(e) for e in convention.edges)
    return sorted(edges)


def _anchors(function, fmt):
    values = [v for name in threshold_names(function) for v in threshold_values(name, fmt)]
    values += regime_edges(function)
    return sorted({float(v) for v in values if np.isfinite(v)})


def active_region(function, fmt):
    """``(lo, hi)``: where the function's values change, in ``fmt``."""
    fmt = get_format(fmt)
    if get_function(function).parameters[0].role == "probability":
        return 0.0, 1.0
    anchors = [abs(v) for v in _anchors(function, fmt)]
    reach = max([8.0] + [1.25 * v for v in anchors])
    reach = float(round_to_format_array(np.array([min(reach, fmt.largest_finite)]), fmt)[0])
    return -reach, reach


def core_region(function, fmt):
    """``(lo, hi)``: the central eighth of :func:`active_region` for a real argument
    (all of it for a probability)."""
    lo, hi = active_region(function, fmt)
    if get_function(function).parameters[0].role == "probability":
        return lo, hi
    return lo / 8, hi / 8


def dense_size(size, fmt):
    """The dense set's size in ``fmt`` for a level whose size is ``size``."""
    return size * _SIZE_FACTOR.get(get_format(fmt).name, 1)


def _ordinal_range(lo, hi, fmt):
    return ordinal(lo, fmt), ordinal(hi, fmt)


def _from_ordinals(ordinals, fmt):
    first, last = ordinal(-fmt.largest_finite, fmt), ordinal(fmt.largest_finite, fmt)
    return bits_of_ordinals(np.clip(ordinals, first, last), fmt)


def _neighbourhoods(anchors, fmt, rng):
    out = []
    steps = np.arange(-NEIGHBOURS, NEIGHBOURS + 1, dtype=np.int64)
    for value in anchors:
        centre = ordinal(value, fmt)
        out.append(centre + steps)
        for k in range(int(np.log2(NEIGHBOURS)) + 1, fmt.precision + 2):
            offsets = (2 ** k * (1 + rng.random(_PER_SCALE))).astype(np.int64)
            out.append(centre + offsets)
            out.append(centre - offsets)
    return _from_ordinals(np.concatenate(out), fmt) if out else np.zeros(0, dtype=np.uint64)


def _by_value(lo, hi, n, fmt, rng):
    return bits_of_values(round_to_format_array(rng.uniform(lo, hi, n), fmt), fmt)


def _by_ulp(lo, hi, n, fmt, rng):
    a, b = _ordinal_range(lo, hi, fmt)
    return _from_ordinals(rng.integers(a, b, n, endpoint=True), fmt)


def _below_one(n, fmt, rng):
    """Values ``1 - k ulp`` with ``k`` log-uniform: as dense in ``1 - p`` as the ulp-space
    set is in ``p`` next to 0."""
    k = np.floor(np.exp2(rng.uniform(0, fmt.precision - 1, n))).astype(np.int64)
    return _from_ordinals(ordinal(1.0, fmt) - k, fmt)


def _log_uniform(n, fmt, rng):
    tiny = np.log2(fmt.smallest_subnormal)
    exponents = rng.uniform(tiny, np.log2(fmt.largest_finite), n)
    with np.errstate(over="ignore"):
        values = np.exp2(exponents) * rng.choice([-1.0, 1.0], n)
    values = round_to_format_array(values, fmt)
    return bits_of_values(values[np.isfinite(values)], fmt)


def _specials(fmt):
    values = [0.0, np.inf, fmt.smallest_subnormal, fmt.largest_subnormal, fmt.smallest_normal,
              fmt.largest_finite, 1.0, 0.5, 2.0]
    values = np.array(values + [-v for v in values] + [np.nan])
    return bits_of_values(values, fmt)


def dense_bits(function, fmt, seed=0, size=DENSE_POINTS, extra=()):
    """The dense point set of an elementwise ``function`` in ``fmt`` (see the module
    docstring): a sorted uint64 array of distinct bit patterns, :func:`dense_size` of
    the level's ``size`` in number; ``extra`` patterns (the sampled sets' points) join it."""
    fmt = get_format(fmt)
    size = dense_size(size, fmt)
    spec = get_function(function)
    if spec.kind != "elementwise":
        raise ValueError(f"{function} is not elementwise: dense sets are of scalar inputs")
    extra = np.asarray(extra, dtype=np.uint64)
    if size >= 1 << fmt.width:
        return np.arange(1 << fmt.width, dtype=np.uint64)
    rng = np.random.default_rng([int(seed), zlib.crc32(f"{spec.name}/{fmt.name}".encode())])
    lo, hi = active_region(spec.name, fmt)
    probability = spec.parameters[0].role == "probability"
    parts = [extra, _specials(fmt), _neighbourhoods(_anchors(spec.name, fmt), fmt, rng)]
    parts.append(_by_value(*core_region(spec.name, fmt), size // 2, fmt, rng))
    parts.append(_by_ulp(lo, hi, size // 8, fmt, rng))
    if probability:
        parts.append(_below_one(size // 8, fmt, rng))
    parts.append(_log_uniform(size // 8, fmt, rng))
    parts.append(_by_ulp(-fmt.largest_finite, fmt.largest_finite, size // 16, fmt, rng))
    chosen = sorted_unique(np.concatenate(parts))
    if probability:  # the accuracy check measures the domain; outside it is special_values'
        x = values_of_bits(chosen, fmt)
        chosen = chosen[np.isnan(x) | ((x >= 0) & (x <= 1))]
    while len(chosen) < size:  # the rest, and any repeats made good, uniform by value
        more = _by_value(lo, hi, size - len(chosen), fmt, rng)
        chosen = sorted_unique(np.concatenate([chosen, more]))
    return chosen
