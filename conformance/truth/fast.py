"""The fast candidate truth of a sweep: float64 values with a stated error bound, on arrays.

A sweep judges up to 2**32 points. The mpmath oracle, at 10-300 µs a point, would need
half a day or more per function on one core, so a sweep asks it only about the points it
must.
Every point first gets a *candidate* ``t64``, computed in float64 with a stated error
bound:

    |T - t64| <= RELATIVE_BOUND * |t64| + ABSOLUTE_BOUND        (T the exact value)

That bound decides the *rounding* of ``T`` to a narrow format (float32, float16,
bfloat16) without mpmath whenever the interval ``t64 ± bound`` holds no rounding boundary
(a midpoint between two neighbouring values of the format, or the overflow threshold):
every value of the interval on the candidate's side of zero then rounds to the value
``t64`` rounds to, which is therefore the correctly rounded truth (see :func:`decide`).
For float32 the interval is about ``2**-47`` relative wide against a spacing of
``2**-24``, so roughly one point in 2**22 is left undecided; those points, and a random
sample of the rest, go to the oracle, which decides and checks the bound. float64 itself
is decided one level up, by the same formulas in long double (the second half of this
module).

Which formula. Where a textbook formula is written (:data:`TEXTBOOK_FORMULAS`: sigmoid,
its derivative, log-sigmoid, softplus, logit, hard sigmoid) the candidate is that
formula evaluated in float64: a handful of operations, five times cheaper than refact's
own numpy implementation (:mod:`refact.backends.numpy_impl`, double-double where one
more rounding would cost an ulp), and written apart from it, so the numpy backend is
never judged by its own code. numpy_impl's code is then the *second formula*, compared
with the candidate on every point of a conformance run and one point in 64 of a sweep
(:mod:`refact.conformance.truth.arrays`): two formulas, each within the bound, whose
intervals must overlap. ndtr and probit have no textbook form numpy can evaluate (no
erfc): numpy_impl's code is their candidate, and the oracle's random sample is what
checks it.

Why the bound holds. Each candidate is evaluated from exactly represented inputs (a
narrow-format value is exactly a float64) by a fixed chain of float64 operations:
``exp``/``log``/``log1p`` of glibc (below 1 ulp, 2**-53 relative), + and / correctly
rounded, no cancellation (every sum adds terms of one sign; logit's ``2p - 1`` and
``1 - p`` are exact where its second form is used; numpy_impl's chains carry exact
two-sums and two-products). At most four such operations cost at most ``2**-51``
relative; measured against mpmath on random float32 inputs and on every float16 value
the largest relative error is ``2**-52.1`` for numpy_impl's chains and ``2**-51.0``
(sigmoid's derivative) for the textbook ones (tests/conformance/run/test_sweep.py keeps
measuring the candidates). The stated ``RELATIVE_BOUND = 2**-48`` leaves a factor of 8
above the largest measurement.
``ABSOLUTE_BOUND`` covers results in float64's subnormal range, where relative accuracy
is lost; such values round to zero in every narrow format anyway.
Every candidate carries the sign of the truth (each formula fixes the sign before any
rounding: ``e / (1 + e)`` with ``e >= 0``, ``-(a + b)`` with ``a, b >= 0``, logit's
forms with the sign of ``p - 1/2``, ...), so the sign of a rounded zero is never in
doubt, even where the absolute term reaches past zero; a candidate that is exactly
``±0`` stands for a truth that is that zero or smaller in magnitude than float64's
smallest subnormal; and a candidate ±inf or NaN is exact: every special input of the
catalog (±0, ±inf, NaN, probabilities outside [0, 1]) evaluates to the catalog's value,
which each sweep confirms with the oracle on the special inputs of its range.

Speed. The arrays are worked through in blocks of :data:`BLOCK` points: numpy makes a
temporary of every intermediate, and temporaries that stay in the processor's cache make
the decision three times faster than whole 2**20-point shards (measured: 158 -> 49 ns a
point for sigmoid in float32).

Nothing here rounds or measures in a second way: :func:`~refact.conformance.numbers.formats.round_to_format_array` and
:func:`~refact.conformance.numbers.formats.ulp_array` are the array forms of :func:`refact.conformance.numbers.formats.round_to_format`
and :func:`~refact.conformance.numbers.formats.ulp`, and the tests compare them on samples.
"""

from dataclasses import dataclass

import numpy as np

from refact.conformance.numbers.formats import (
    FLOAT64, float64_exponent, from_scaled, get_format, power_of_two, round_to_format_array,
    scaled_by_ulp,
)

__all__ = [
    "RELATIVE_BOUND", "ABSOLUTE_BOUND", "EXTENDED", "EXTENDED_RELATIVE_BOUND", "FastTruth",
    "numpy_candidate", "textbook_candidate", "hard_sigmoid_exact_at", "DecidedTruth", "decide",
    "TEXTBOOK_FORMULAS", "BLOCK",
]

RELATIVE_BOUND = 2.0 ** -48
ABSOLUTE_BOUND = 2.0 ** -1070
# The decision widens the stated bound by 2**-52 relative so that the float64 roundings in
# forming the radius and comparing against it can never shrink it below the bound.
_DECISION_RELATIVE = RELATIVE_BOUND + 2.0 ** -52


@dataclass(frozen=True)
class FastTruth:
    """How a sweep computes the candidate truth of one function on float64 arrays.

    ``evaluate(x64) -> t64`` maps a float64 array to the float64 candidate; ``why``
    states where its error comes from (the bound itself is the module's).
    ``exact_zero(x64) -> bool array`` marks the inputs whose truth is exactly 0, where
    either sign of zero is right (errors.classify); the catalog's exact hooks say the
    same point by point, and the tests hold the two together. ``exact_at``, when given,
    is ``exact_at(x64, candidate) -> bool array``: True where the exact value *equals*
    ``candidate`` (a float64 array). Only a function whose value can be a rational
    midpoint of a format needs it (hard_sigmoid, (x + 3) / 6); for the others the
    catalog's note holds: a nonzero rational input gives a transcendental value.
    ``second(x64) -> float64 array``, when given, is a second formula within the same
    bound, written apart from the first (see the module docstring).
    """

    function: str
    evaluate: object
    why: str
    exact_zero: object
    exact_at: object = None
    second: object = None

    @property
    def extended(self):
        """The textbook formula for long double arrays (:data:`TEXTBOOK_FORMULAS`), which
        decides float64, or None where this platform's long double is no wider than
        float64 or none is written."""
        return TEXTBOOK_FORMULAS.get(self.function) if EXTENDED else None


def _numpy_impl():
    # Imported when first used, so importing this module (e.g. for round_to_format_array)
    # does not need the backends package's numpy code loaded.
    from refact.backends import numpy_impl

    return numpy_impl


def hard_sigmoid_exact_at(x, candidate):
    """True where ``(x + 3) / 6 == candidate`` exactly, i.e. where ``x + 3 == 6 candidate``:
    both sides as exact double-doubles; rounding to nearest makes the pairs unique, so the
    values are equal exactly when both components are."""
    ni = _numpy_impl()
    with np.errstate(all="ignore"):
        s, s_err = ni.two_sum(x, 3.0)
        p, p_err = ni.two_product(candidate, 6.0)
    return np.isfinite(x) & np.isfinite(candidate) & (s == p) & (s_err == p_err)


def _numpy_impl_formula(function):
    def evaluate(x64):
        return np.asarray(getattr(_numpy_impl(), function)(x64), dtype=np.float64)

    return evaluate


def numpy_candidate(function, why, exact_zero, exact_at=None):
    """The :class:`FastTruth` whose candidate is refact's numpy implementation of
    ``function``, for a function with no textbook formula here (a catalog record
    declares it as its ``fast`` field)."""
    return FastTruth(function, _numpy_impl_formula(function), why, exact_zero, exact_at)


def textbook_candidate(function, why, exact_zero, exact_at=None):
    """The :class:`FastTruth` whose candidate is the textbook formula of ``function``
    (:data:`TEXTBOOK_FORMULAS`) in float64, with refact's numpy implementation as its
    second formula."""
    formula = TEXTBOOK_FORMULAS[function]

    def evaluate(x64):
        with np.errstate(all="ignore"):
            return formula(np.asarray(x64, dtype=np.float64))

    return FastTruth(function, evaluate, why, exact_zero, exact_at, second=_numpy_impl_formula(function))


# --- deciding the rounding ------------------------------------------------------------


@dataclass
class DecidedTruth:
    """What the candidate tells about the truth of each point.

    ``rounded``: the correctly rounded truth in the format (float64 array; meaningful
    where ``decided``). ``decided``: the candidate settles the rounding. ``binade_known``:
    the truth's binade is known too (False where the bound reaches a power of two at which
    the spacing changes, so the ulp of the truth may be either of two spacings).
    ``candidate``: ``t64`` itself; ``exact_zero``: the truth is exactly 0.
    """

    candidate: np.ndarray
    rounded: np.ndarray
    decided: np.ndarray
    binade_known: np.ndarray
    exact_zero: np.ndarray
    #: the candidate in units of the spacing at its binade, signed, as two float64
    #: (``units_lo`` None for a float64 candidate: a narrow format's), and that spacing's log2
    units: np.ndarray = None
    units_lo: np.ndarray = None
    ulp_exponent: np.ndarray = None


def decide(fast_truth, x64, fmt):
    """Candidate truth of ``fast_truth`` at the float64 inputs ``x64`` and what it decides
    about rounding to ``fmt`` (a narrow format).

    In units of the spacing at the candidate's binade, the rounding boundaries (midpoints
    between neighbours, the overflow threshold included) sit at half-integers, so the
    interval ``t64 ± radius`` holds none exactly when the fractional part of the scaled
    candidate is farther than the scaled radius from 1/2. Crossing into the binade below
    cannot bring one closer: its midpoints lie a quarter unit below the power of two, and
    the radius is below 2**-20 units. Zero is no boundary: the truth has the candidate's
    sign (module docstring), and a candidate within half a unit of zero rounds to the zero
    of its sign like every value between it and zero.
    """
    fmt = get_format(fmt)
    if fmt == FLOAT64:
        if fast_truth.extended is None:
            raise ValueError(f"no extended-precision candidate decides {fast_truth.function} in float64 here")
        return _in_blocks(decide_extended, fast_truth, x64)
    return _in_blocks(_decide_narrow, fast_truth, x64, fmt)


#: points per block of :func:`decide` (module docstring, "Speed")
BLOCK = 1 << 16
_FIELDS = ("candidate", "rounded", "decided", "binade_known", "exact_zero", "units", "units_lo",
           "ulp_exponent")


def _in_blocks(decide_block, fast_truth, x64, *fmt):
    """``decide_block`` on consecutive blocks of :data:`BLOCK` points, joined."""
    x64 = np.asarray(x64, dtype=np.float64)
    if len(x64) <= BLOCK:
        return decide_block(fast_truth, x64, *fmt)
    joined = None
    for i in range(0, len(x64), BLOCK):
        part = decide_block(fast_truth, x64[i:i + BLOCK], *fmt)
        if joined is None:  # a field a block leaves None stays None
            joined = {name: None if getattr(part, name) is None else np.empty(len(x64), getattr(part, name).dtype)
                      for name in _FIELDS}
        for name in _FIELDS:
            if joined[name] is not None:
                joined[name][i:i + BLOCK] = getattr(part, name)
    return DecidedTruth(**joined)


def _decide_narrow(fast_truth, x64, fmt):
    t64 = fast_truth.evaluate(x64)
    units, ulp_exponent = scaled_by_ulp(t64, fmt)
    nearest = np.rint(units)
    with np.errstate(all="ignore"):
        magnitude = np.abs(t64)
        radius = magnitude * _DECISION_RELATIVE + ABSOLUTE_BOUND
        radius_units = radius * power_of_two(-ulp_exponent)
        fraction = units - np.floor(units)
        finite_nonzero = np.isfinite(t64) & (t64 != 0)
        # Past the largest binade every value of the interval rounds to infinity.
        overflowing = units - radius_units > 2.0 ** fmt.precision - 0.5
        # An exact zero, ±inf or NaN candidate is the truth (see the module docstring).
        decided = ~finite_nonzero | overflowing | (
            np.abs(fraction - 0.5) > radius_units)
    rounded = from_scaled(t64, nearest, ulp_exponent, fmt)
    if fast_truth.exact_at is not None:
        # The interval holds a midpoint, which may be the exact value itself.
        straddle = finite_nonzero & ~decided
        if straddle.any():
            midpoint = np.where(straddle, from_scaled(t64, np.floor(units) + 0.5, ulp_exponent, fmt), 0.0)
            tie = straddle & np.isfinite(midpoint) & fast_truth.exact_at(x64, midpoint)
            rounded = np.where(tie, round_to_format_array(midpoint, fmt), rounded)
            decided = decided | tie
    # The spacing halves below a power of two 2**e > 2**emin and doubles above the top of
    # a binade; a candidate within the radius of either leaves the truth's ulp open.
    exponent = float64_exponent(t64)
    bottom = 2.0 ** (fmt.precision - 1)
    with np.errstate(invalid="ignore"):
        near_bottom = (exponent > fmt.emin) & (units - bottom <= radius_units)
        near_top = (exponent >= fmt.emin) & (2 * bottom - units <= radius_units)
    binade_known = ~finite_nonzero | ~(near_bottom | near_top)
    exact_zero = np.asarray(fast_truth.exact_zero(x64), dtype=bool)
    return DecidedTruth(t64, rounded, decided, binade_known, exact_zero, np.copysign(units, t64), None,
                        ulp_exponent)


# --- float64: a second formula in extended precision -------------------------------------
#
# float64 results are decided by the same rule one level up: a candidate in the
# platform's long double (x87 80-bit extended on x86-64, 64 significant bits; IEEE quad
# on aarch64 Linux, 113), with a stated bound, decides the rounding to float64 where its
# interval holds no float64 midpoint. The formulas are written afresh, not taken from
# numpy_impl: they are the textbook forms, which are stable in 11 extra bits (no
# two-sums needed), so the numpy backend, whose float64 code is numpy_impl's, is never
# judged by its own formulas. They also serve the narrow formats as a second formula: a
# conformance run compares the float64 candidate with them on every point.
#
# Why the bound holds: each formula is at most four long double operations, each within
# one unit in the last place of long double (glibc's expl, logl, log1pl are below one;
# + and / are correctly rounded), on an exactly converted float64 input, with no
# cancellation (the terms of each sum have one sign; logit's 2p - 1 and 1 - p are exact
# where its second form is used). Four units of 2**-63 are 2**-61; the stated bound,
# 2**-59, leaves a factor of 4 above that and of 7 above the largest error measured
# against mpmath, 2**-61.9 (tests/conformance/truth/test_fast.py). Values below long double's normal range (2**-16382) are far
# below every format's smallest subnormal and round to zero in all of them.

EXTENDED = np.finfo(np.longdouble).nmant >= 63
EXTENDED_RELATIVE_BOUND = 2.0 ** -59
_LD = np.longdouble


def _softplus_tb(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid_tb(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_grad_tb(x):
    e = np.exp(-np.abs(x))
    return e / ((1 + e) * (1 + e))


def _log_sigmoid_tb(x):
    return -_softplus_tb(-x)


def _logit_tb(p):
    # Below 1/4: log p - log(1 - p), terms of opposite sign but |log p| > 4.8 |log1p(-p)|,
    # so no cancellation. From 1/4 on, 2p - 1 and 1 - p are exact (p has at most 53 bits;
    # a narrow format's p has 24 or fewer, so they are exact in float64 as well) and
    # log1p((2p - 1) / (1 - p)) keeps the relative accuracy next to 1/2.
    low = np.log(p) - np.log1p(-p)
    high = np.log1p((2 * p - 1) / (1 - p))
    return np.where(p < 0.25, low, high)


def _hard_sigmoid_tb(x):
    return np.clip((x + 3) / 6, 0, 1)


#: function -> textbook formula, written for any numpy float dtype: in float64 the
#: narrow formats' candidate, in long double float64's (ndtr and probit have none: numpy
#: has no erfc, so numpy_impl's code is their narrow candidate and the oracle decides
#: their float64 points)
TEXTBOOK_FORMULAS = {
    "sigmoid": _sigmoid_tb, "sigmoid_grad": _sigmoid_grad_tb, "log_sigmoid": _log_sigmoid_tb,
    "softplus": _softplus_tb, "logit": _logit_tb, "hard_sigmoid": _hard_sigmoid_tb,
}


def extended_candidate(fast_truth, x64):
    """The extended-precision candidate at the float64 inputs ``x64`` (long double array)."""
    with np.errstate(all="ignore"):
        return fast_truth.extended(np.asarray(x64, dtype=np.float64).astype(_LD))


def decide_extended(fast_truth, x64):
    """:func:`decide` for float64, from the extended candidate ``t``.

    ``hi = fl64(t)`` is the rounding of the candidate; it is that of the truth when the
    distance from ``t`` to the float64 midpoint on its side, half the gap to the
    neighbour toward ``t``, exceeds the radius (all in long double, where ``t - hi`` and
    the gaps are exact). The truth's binade is open where the radius reaches a power of
    two; a finite candidate past float64's range is left to the oracle.
    """
    t = extended_candidate(fast_truth, x64)
    with np.errstate(all="ignore"):
        hi = t.astype(np.float64)
        rest = t - hi.astype(_LD)
        finite_nonzero = np.isfinite(t) & (t != 0)
        toward = np.nextafter(hi, np.where(rest < 0, -np.inf, np.inf))
        half_gap = np.abs(toward.astype(_LD) - hi.astype(_LD)) / 2
        magnitude = np.abs(t)
        radius = magnitude * _LD(EXTENDED_RELATIVE_BOUND + 2.0 ** -61)
        decided = ~finite_nonzero | (half_gap - np.abs(rest) > radius)
        decided &= ~(finite_nonzero & np.isinf(hi))
        # the binade of the truth: that of t unless the radius reaches a power of two
        fraction, exponent = np.frexp(magnitude)
        binade = np.where(finite_nonzero, exponent.astype(np.int64) - 1, FLOAT64.emin)
        power = np.ldexp(_LD(1), binade.astype(np.int32))
        binade_known = ~finite_nonzero | (binade < FLOAT64.emin) | (
            (magnitude - power > radius) & (2 * power - magnitude > radius))
        ulp_exponent = np.maximum(binade, FLOAT64.emin) - (FLOAT64.precision - 1)
        units_ld = np.ldexp(t, (-ulp_exponent).astype(np.int32))
        units = units_ld.astype(np.float64)
        units_lo = np.where(np.isfinite(units), (units_ld - units.astype(_LD)).astype(np.float64), 0.0)
    exact_zero = np.asarray(fast_truth.exact_zero(np.asarray(x64, dtype=np.float64)), dtype=bool)
    return DecidedTruth(hi, hi, decided, binade_known, exact_zero, units, units_lo, ulp_exponent)
