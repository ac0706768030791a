"""The fast candidate truth of a sweep: float64 values with a stated error bound, on arrays.

A sweep judges up to 2**32 points. The mpmath oracle, at some 10 µs a point, would need
half a day per function on one core, so a sweep asks it only about the points it must.
Every point first gets a *candidate* ``t64``, computed in float64 by refact's own numpy
implementation (:mod:`refact.backends.numpy_impl`, which carries exact two-sums and
two-products where one more rounding would cost an ulp), with a stated error bound:

    |T - t64| <= RELATIVE_BOUND * |t64| + ABSOLUTE_BOUND        (T the exact value)

That bound decides the *rounding* of ``T`` to a narrow format (float32, float16,
bfloat16) without mpmath whenever the interval ``t64 ± bound`` holds no rounding boundary
(a midpoint between two neighbouring values of the format, or the overflow threshold):
both ends of the interval then round to the same value, which is therefore the correctly
rounded truth. For float32 the interval is about ``2**-47`` relative wide against a
spacing of ``2**-24``, so roughly one point in 2**22 is left undecided; those points,
and a random sample of the rest, go to the oracle, which decides and checks the bound.
float64 itself cannot be swept this way (the candidate is no more precise than the
format), so only the narrow formats are accepted.

Why the bound holds. Each function below is evaluated from exactly represented inputs
(a narrow-format value is exactly a float64) by a fixed chain of float64 operations:
``exp``/``log``/``log1p``/``atanh`` of glibc (below 1 ulp, 2**-53 relative), exact
two-sums and two-products, and one corrected division (about half an ulp). The chain of
each function costs at most a few ulp of float64, i.e. at most ``2**-51`` relative;
measured against mpmath on random float32 inputs and on every float16 value the largest
relative error is ``2**-52.1`` (tests/conformance/test_sweep.py keeps measuring it).
The stated ``RELATIVE_BOUND = 2**-48`` leaves a factor of 8 above the analysis and 16
above the measurement. ``ABSOLUTE_BOUND`` covers results in float64's subnormal range,
where relative accuracy is lost; such values round to zero in every narrow format anyway.
A candidate that is exactly ``±0`` carries the sign of the truth (the exact value is
either that zero or smaller in magnitude than float64's smallest subnormal), and a
candidate ±inf or NaN is exact: every special input of the catalog (±0, ±inf, NaN,
probabilities outside [0, 1]) is evaluated by numpy_impl to the catalog's value, which
each sweep confirms with the oracle on the special inputs of its range.

Nothing here rounds or measures in a second way: :func:`round_to_format_array` and
:func:`ulp_array` are the array forms of :func:`refact.conformance.formats.round_to_format`
and :func:`~refact.conformance.formats.ulp`, and the tests compare them on samples.
"""

from dataclasses import dataclass

import numpy as np

from .formats import FLOAT64, get_format

__all__ = [
    "RELATIVE_BOUND", "ABSOLUTE_BOUND", "FastTruth", "FAST_TRUTHS", "fast_truth_of",
    "round_to_format_array", "ulp_array", "binade_exponent_array", "DecidedTruth", "decide",
]

RELATIVE_BOUND = 2.0 ** -48
ABSOLUTE_BOUND = 2.0 ** -1070
# The decision widens the stated bound by 2**-53 relative so that forming the interval's
# ends in float64 (one rounding each) can never shrink it below the bound.
_DECISION_RELATIVE = RELATIVE_BOUND + 2.0 ** -52


@dataclass(frozen=True)
class FastTruth:
    """How a sweep computes the candidate truth of one function on float64 arrays.

    ``evaluate(x64) -> t64`` maps a float64 array to the float64 candidate; ``why``
    states where its error comes from (the bound itself is the module's). ``exact_at``,
    when given, is ``exact_at(x64, candidate) -> bool array``: True where the exact value
    *equals* ``candidate`` (a float64 array). Only a function whose value can be a
    rational midpoint of a format needs it (hard_sigmoid, (x + 3) / 6); for the others
    the catalog's note holds: a nonzero rational input gives a transcendental value.
    """

    function: str
    evaluate: object
    why: str
    exact_at: object = None


def _numpy_impl():
    # Imported when first used, so importing this module (e.g. for round_to_format_array)
    # does not need the backends package's numpy code loaded.
    from refact.backends import numpy_impl

    return numpy_impl


def _hard_sigmoid_exact_at(x, candidate):
    """True where ``(x + 3) / 6 == candidate`` exactly, i.e. where ``x + 3 == 6 candidate``:
    both sides as exact double-doubles; rounding to nearest makes the pairs unique, so the
    values are equal exactly when both components are."""
    ni = _numpy_impl()
    with np.errstate(all="ignore"):
        s, s_err = ni._two_sum(x, 3.0)
        p, p_err = ni._two_product(candidate, 6.0)
    return np.isfinite(x) & np.isfinite(candidate) & (s == p) & (s_err == p_err)


def _fast(function, why, exact_at=None):
    def evaluate(x64):
        return np.asarray(getattr(_numpy_impl(), function)(x64), dtype=np.float64)

    return FastTruth(function, evaluate, why, exact_at)


FAST_TRUTHS = {truth.function: truth for truth in (
    _fast("sigmoid", "exp(-|x|), an exact 1 + e, one corrected division: <= 2 ulp"),
    _fast("sigmoid_grad", "exp(-|x|), (1 + e)**2 as a double-double, one corrected division: <= 2 ulp"),
    _fast("log_sigmoid", "-(max(-x, 0) + log1p(exp(-|x|))), two non-negative terms: <= 3 ulp"),
    _fast("softplus", "max(x, 0) + log1p(exp(-|x|)), two non-negative terms: <= 3 ulp"),
    _fast("logit", "2 atanh(2p - 1) near 1/2 (2p - 1 exact), log of a corrected quotient "
                   "elsewhere (1 - p exact or a double-double): <= 3 ulp"),
    _fast("hard_sigmoid", "(x + 3) exact as a two-sum, one corrected division by 6: <= 1 ulp",
          exact_at=_hard_sigmoid_exact_at),
    _fast("ndtr", "Cody's erfcx (< 0.3 ulp) by compensated Horner, exp(-x**2/2) of a "
                  "double-double argument, erf's series near 0: <= 3 ulp"),
    _fast("probit", "Acklam's start refined by two Halley steps on the ndtr above, residual "
                    "formed without cancellation: <= 4 ulp"),
)}


def fast_truth_of(function):
    """The :class:`FastTruth` of a catalog function; KeyError names the ones that have one."""
    try:
        return FAST_TRUTHS[function]
    except KeyError:
        raise KeyError(f"no fast candidate truth for {function!r}; sweeps cover "
                       f"{', '.join(FAST_TRUTHS)}") from None


# --- array forms of formats.round_to_format and formats.ulp -------------------------


def binade_exponent_array(values, fmt):
    """``max(floor(log2|v|), emin)`` of every value (``emin`` at 0): the binade whose
    spacing is the ulp, as :func:`formats.ulp_exponent` defines it. int64 array."""
    fmt = get_format(fmt)
    with np.errstate(all="ignore"):
        _, exponent = np.frexp(np.abs(values))  # |v| = m 2**exponent, m in [0.5, 1)
    return np.maximum(exponent.astype(np.int64) - 1, fmt.emin)


def ulp_array(values, fmt):
    """The spacing of ``fmt`` at the binade of each float64 value (subnormal spacing
    below the smallest normal and at 0; inf at ±inf, NaN at NaN), as
    :func:`formats.ulp` gives it for one value."""
    fmt = get_format(fmt)
    values = np.asarray(values, dtype=np.float64)
    spacing = np.ldexp(1.0, binade_exponent_array(values, fmt) - (fmt.precision - 1))
    return np.where(np.isfinite(values), spacing, np.abs(values))


def round_to_format_array(values, fmt):
    """Round each float64 value to nearest, ties to even, in ``fmt``; the results are the
    exactly equal float64 values (±inf on overflow, signed zeros kept, NaN stays).

    The value is scaled by its ulp so the spacing becomes 1; ``rint`` rounds that to an
    integer with ties to even, and scaling back is exact. Scaling by a power of two is
    exact here: the scaled value has at most 53 bits and lies in float64's normal range.
    This casts through nothing: numpy's float64 -> bfloat16 would round twice.
    """
    fmt = get_format(fmt)
    values = np.asarray(values, dtype=np.float64)
    if fmt == FLOAT64:
        return values.copy()
    with np.errstate(all="ignore"):
        magnitude = np.abs(values)
        ulp_exponent = binade_exponent_array(magnitude, fmt) - (fmt.precision - 1)
        rounded = np.ldexp(np.rint(np.ldexp(magnitude, -ulp_exponent)), ulp_exponent)
        rounded = np.where(rounded > fmt.largest_finite, np.inf, rounded)
        rounded = np.where(np.isfinite(values), rounded, magnitude)
    return np.copysign(rounded, values)


# --- deciding the rounding ------------------------------------------------------------


@dataclass
class DecidedTruth:
    """What the candidate tells about the truth of each point.

    ``rounded``: the correctly rounded truth in the format (float64 array; meaningful
    where ``decided``). ``decided``: the candidate settles the rounding. ``binade_known``:
    the truth's binade is known too (False where the bound straddles a power of two, so
    the ulp of the truth may be either of two spacings). ``candidate``: ``t64`` itself.
    """

    candidate: np.ndarray
    rounded: np.ndarray
    decided: np.ndarray
    binade_known: np.ndarray


def decide(fast_truth, x64, fmt):
    """Candidate truth of ``fast_truth`` at the float64 inputs ``x64`` and what it decides
    about rounding to ``fmt`` (a narrow format)."""
    fmt = get_format(fmt)
    if fmt == FLOAT64:
        raise ValueError("a float64 candidate cannot decide rounding to float64")
    t64 = fast_truth.evaluate(x64)
    with np.errstate(all="ignore"):
        radius = np.abs(t64) * _DECISION_RELATIVE + ABSOLUTE_BOUND
        low = round_to_format_array(t64 - radius, fmt)
        high = round_to_format_array(t64 + radius, fmt)
    finite_nonzero = np.isfinite(t64) & (t64 != 0)
    # An exact zero, ±inf or NaN candidate is the truth (see the module docstring).
    # Compare signs too: -0.0 == 0.0, yet the two zeros are different answers.
    decided = ~finite_nonzero | ((low == high) & (np.signbit(low) == np.signbit(high)))
    rounded = np.where(finite_nonzero, low, t64)
    if fast_truth.exact_at is not None:
        # Two neighbours straddle the interval: their midpoint may be the exact value.
        straddle = finite_nonzero & ~decided & np.isfinite(low) & np.isfinite(high)
        if straddle.any():
            midpoint = np.where(straddle, (low + high) / 2, 0.0)  # exact: neighbours
            tie = straddle & fast_truth.exact_at(x64, midpoint)
            rounded = np.where(tie, round_to_format_array(midpoint, fmt), rounded)
            decided = decided | tie
    # A candidate within the bound of a power of two (1.0 for sigmoid above 37, say) leaves
    # the truth's binade, hence its ulp, open between two spacings a factor 2 apart.
    with np.errstate(all="ignore"):
        binade_known = ~finite_nonzero | (
            binade_exponent_array(t64 - radius, fmt) == binade_exponent_array(t64 + radius, fmt))
    return DecidedTruth(t64, rounded, decided, binade_known)
