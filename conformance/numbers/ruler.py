"""The ruler: ULP error, step distance, failure classes and condition numbers.

``ulp_error(y, t, fmt) = |y - t| / ulp(t)`` with ``t`` the *exact* truth (not its
rounding) and ``ulp(t)`` the spacing of the format in t's binade (the subnormal
spacing below the smallest normal). 0.5 means correctly rounded; a faithful result
is below 1. It is computed exactly with integers and rounded once to a float.

A point that is wrong in kind rather than in degree gets a failure class from
:func:`classify` instead, and is left out of the ULP statistics: a NaN where a
number was due is not "a very large error", and neither is a 0 where a normal number
was due. The classes (names as in DESIGN.md, and the report's ``classes`` keys):

=====================  ==========================================================
``spurious_nan``       NaN where a number (or ±inf) was due
``spurious_inf``       ±inf where a finite value was due (other than premature
                       overflow), or the infinity of the wrong sign
``missing_inf``        a finite number where the correctly rounded truth is ±inf
``wrong_sign_zero``    the truth rounds to a zero of the other sign
``flush_to_zero``      the truth is subnormal and 0 came back
``premature_underflow`` the truth is a normal number and 0 came back
``premature_overflow`` the truth is a normal number and ±inf (of its sign) came back
``undecided``          the oracle could not decide the truth (not a backend failure)
``missing_nan``        a number where the mathematics gives no value (NaN due);
                       not in DESIGN.md's list, reported beside it
=====================  ==========================================================

An exact zero truth (``logit(0.5)``, ``sigmoid(-inf)``) does not fix the sign of
zero, so either zero is right there; a nonzero truth that rounds to zero does.
"""

import math
from fractions import Fraction

import numpy as np

from refact.conformance.numbers.formats import (
    get_format, ordinal, round_to_format, round_dyadic, dyadic_parts, exact_fraction,
    ulp_array, ulp_exponent, same_value,
)

__all__ = [
    "FAILURE_CLASSES", "UNDECIDED", "MISSING_NAN", "ALL_CLASSES", "CLASS_CODES",
    "ulp_error", "step_distance", "classify", "float_pair", "ulp_errors",
    "classify_array", "ulp_error_array", "same_values",
]

FAILURE_CLASSES = (
    "spurious_nan", "spurious_inf", "missing_inf", "wrong_sign_zero",
    "flush_to_zero", "premature_underflow", "premature_overflow",
)
UNDECIDED = "undecided"
MISSING_NAN = "missing_nan"
ALL_CLASSES = FAILURE_CLASSES + (UNDECIDED, MISSING_NAN)
#: Array codes of the classes (:func:`classify_array`): 0 = none, i + 1 = ALL_CLASSES[i].
CLASS_CODES = {name: i + 1 for i, name in enumerate(ALL_CLASSES)}


def _is_nan(t):
    return t != t


def _is_zero(t):
    return not (t != 0)


def ulp_error(y, t, fmt):
    """``|y - t| / ulp(t)`` in ``fmt``, for a float ``y`` and an exact truth ``t``
    (mpmath mpf, Fraction, float or int).

    Meaningful for the points :func:`classify` leaves unclassified. For the others:
    0.0 when ``y`` is exactly the (rounded) truth, e.g. NaN for NaN or inf for a truth
    that rounds to inf, and inf otherwise.

    >>> from refact.conformance.numbers.formats import FLOAT32
    >>> ulp_error(1.0, 1 + 2 ** -25, FLOAT32)
    0.25
    """
    fmt = get_format(fmt)
    if _is_nan(y) or _is_nan(t) or math.isinf(y) or _is_infinite(t):
        return 0.0 if same_value(y, round_to_format(t, fmt)) else math.inf
    u = ulp_exponent(t, fmt)
    ty = dyadic_parts(y)
    tt = dyadic_parts(t)
    if tt is None:  # a non-dyadic rational truth: exact Fraction arithmetic
        return round_to_format(abs(exact_fraction(y) - exact_fraction(t)) * Fraction(2) ** -u, "float64")
    # Bits more than 1200 binades below ulp(t) cannot reach a float64 ratio (its
    # smallest subnormal is 2**-1074), and mpmath truths can sit 2**(10**308) below it.
    floor = u - 1200
    (my, ey), (mt, et) = _clip(*ty, floor), _clip(*tt, floor)
    e = min(ey, et)
    diff = abs((my << (ey - e)) - (mt << (et - e)))
    if not diff:
        return 0.0
    return round_dyadic(diff, e - u, "float64")


def float_pair(t):
    """The exact value ``t`` as ``(hi, lo)``, two float64 with hi = t rounded and
    hi + lo = t to a relative 2**-106; None for NaN, an infinity, or a magnitude outside
    [2**-960, 2**1000] (where lo would lose bits, or hi overflow)."""
    try:
        parts = dyadic_parts(t)
    except ValueError:
        return None
    if parts is None:  # a non-dyadic rational
        exact = exact_fraction(t)
        hi = float(exact)
        if not 2.0 ** -960 <= abs(hi) < 2.0 ** 1000:
            return None
        return hi, float(exact - Fraction(hi))
    man, exp = parts
    if not man:
        return 0.0, 0.0
    if not -960 <= abs(man).bit_length() - 1 + exp < 1000:
        return None
    hi = round_dyadic(man, exp, "float64")
    hi_man, hi_exp = dyadic_parts(hi)
    e = min(exp, hi_exp)
    return hi, round_dyadic((man << (exp - e)) - (hi_man << (hi_exp - e)), e, "float64")


def ulp_errors(ys, his, los, fmt):
    """:func:`ulp_error` of many ordinary points at once: ``ys`` the results and
    ``his + los`` the truths (:func:`float_pair`), as numpy float64 arrays.

    Not exact: (y - hi) - lo rounds twice, so each figure is within a relative 2**-51
    of the exact one; a caller deciding against a threshold that close recomputes it
    with :func:`ulp_error`.
    """
    fmt = get_format(fmt)
    fraction, exponent = np.frexp(his)
    binade = exponent - 1
    # hi is t rounded: a t just below a power of two may have rounded up to it
    binade -= (np.abs(fraction) == 0.5) & (los != 0.0) & ((los < 0.0) != (his < 0.0))
    binade = np.where(his == 0.0, fmt.emin, np.maximum(binade, fmt.emin))
    with np.errstate(over="ignore"):  # an error beyond the floats is inf, as ulp_error gives
        return np.ldexp(np.abs((ys - his) - los), fmt.precision - 1 - binade)


def _clip(man, exp, floor):
    if exp >= floor:
        return man, exp
    shift = floor - exp
    if shift > abs(man).bit_length():
        return 0, floor
    return (abs(man) >> shift) * (1 if man >= 0 else -1), floor


def _is_infinite(t):
    try:
        return math.isinf(t)
    except (TypeError, OverflowError):
        return False


def step_distance(y, rounded_t, fmt):
    """How many representable steps of ``fmt`` lie between ``y`` and the correctly
    rounded truth (0 when ``y`` is correctly rounded; ±0 count as one value, and ±inf
    sit one step past the largest finite). ValueError for NaN."""
    fmt = get_format(fmt)
    return abs(ordinal(y, fmt) - ordinal(rounded_t, fmt))


def classify(y, t, fmt):
    """The failure class of the result ``y`` against the exact truth ``t`` in ``fmt``,
    or ``None`` for an ordinary point (measured by :func:`ulp_error`). ``t=None``
    means the oracle was undecided and gives ``"undecided"``."""
    fmt = get_format(fmt)
    if t is None:
        return UNDECIDED
    if _is_nan(t):
        return None if _is_nan(y) else MISSING_NAN
    if _is_nan(y):
        return "spurious_nan"
    r = round_to_format(t, fmt)
    if math.isinf(r):
        if y == r:
            return None
        return "spurious_inf" if math.isinf(y) else "missing_inf"
    if math.isinf(y):
        normal = abs(r) >= fmt.smallest_normal
        return "premature_overflow" if normal and (y > 0) == (r > 0) else "spurious_inf"
    if y == 0:
        if r == 0:
            if _is_zero(t) or math.copysign(1.0, y) == math.copysign(1.0, r):
                return None
            return "wrong_sign_zero"
        return "flush_to_zero" if abs(r) < fmt.smallest_normal else "premature_underflow"
    return None


# --- array forms of the ruler -----------------------------------------------------------


def classify_array(y, rounded, fmt, exact_zero=None):
    """:func:`classify` on arrays: the class code (0 = none, else index + 1 in
    ``ALL_CLASSES``) of each result ``y`` against the correctly rounded truth ``rounded``.

    ``exact_zero`` (bool array, optional) marks truths that are exactly zero, where
    either sign of zero is right; elsewhere a rounded zero of the other sign is a
    ``wrong_sign_zero``. Undecided truths are the caller's (they have no ``rounded``).
    """
    fmt = get_format(fmt)
    y = np.asarray(y, dtype=np.float64)
    r = np.asarray(rounded, dtype=np.float64)
    codes = np.zeros(y.shape, dtype=np.int8)
    # Nearly every point is a finite nonzero result against a finite truth: no class.
    # The rules below run on the rest only.
    rest = np.flatnonzero(~(np.isfinite(y) & np.isfinite(r) & (y != 0)))
    if not len(rest):
        return codes
    y, r = y[rest], r[rest]
    nan_t, nan_y = np.isnan(r), np.isnan(y)
    inf_r, inf_y = np.isinf(r), np.isinf(y)
    numbers = ~nan_t & ~nan_y
    with np.errstate(invalid="ignore"):
        normal_r = np.abs(r) >= fmt.smallest_normal
        same_direction = (y > 0) == (r > 0)
    finite_due = numbers & ~inf_r
    zero_back = finite_due & (y == 0)
    zero_due = zero_back & (r == 0)
    other_sign = np.signbit(y) != np.signbit(r)
    if exact_zero is not None:
        other_sign &= ~np.asarray(exact_zero, dtype=bool)[rest]
    sub = np.zeros(len(rest), dtype=np.int8)
    # The masks do not overlap; their order mirrors classify.
    sub[nan_t & ~nan_y] = CLASS_CODES["missing_nan"]
    sub[~nan_t & nan_y] = CLASS_CODES["spurious_nan"]
    sub[numbers & inf_r & inf_y & (y != r)] = CLASS_CODES["spurious_inf"]
    sub[numbers & inf_r & ~inf_y] = CLASS_CODES["missing_inf"]
    sub[finite_due & inf_y & normal_r & same_direction] = CLASS_CODES["premature_overflow"]
    sub[finite_due & inf_y & ~(normal_r & same_direction)] = CLASS_CODES["spurious_inf"]
    sub[zero_due & other_sign] = CLASS_CODES["wrong_sign_zero"]
    sub[zero_back & (r != 0) & ~normal_r] = CLASS_CODES["flush_to_zero"]
    sub[zero_back & (r != 0) & normal_r] = CLASS_CODES["premature_underflow"]
    codes[rest] = sub
    return codes


def ulp_error_array(y, truth, rounded, fmt, ulp=None):
    """:func:`ulp_error` on arrays, with ``truth`` the float64 candidate standing
    in for the exact value: ``|y - t| / ulp(t)`` (one float64 rounding in the
    difference, relative 2**-53, far below the figures reported); for non-finite
    operands 0 where ``y`` is the rounded truth and inf elsewhere, as the scalar form.
    ``ulp``, the spacing at each truth, may be passed when already known."""
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    spacing = ulp_array(t, fmt) if ulp is None else ulp
    with np.errstate(all="ignore"):
        error = np.abs(y - t) / spacing
    special = np.flatnonzero(~(np.isfinite(y) & np.isfinite(t)))
    if len(special):
        same = same_values(y[special], np.asarray(rounded)[special])
        error[special] = np.where(same, 0.0, np.inf)
    return error


def same_values(a, b):
    """:func:`formats.same_value` on arrays: NaN equals NaN, -0.0 differs from 0.0."""
    a, b = np.asarray(a), np.asarray(b)
    return ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))
