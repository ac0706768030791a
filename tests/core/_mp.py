"""ULP errors of float64 results against mpmath values, for the core's tests.

``ulp(t)`` is the float64 spacing at the binade of the truth t (2**-1074 below 2**-1022)
and ``ulp_error(y, t) = |y - t| / ulp(t)``, so 0.5 or less means correctly rounded.
mpmath keeps any exponent (a truth may be e**-10000), so these read the mpf's own
mantissa and exponent and never round the truth on the way.
"""

import math
from fractions import Fraction

import mpmath

__all__ = ["ulp", "ulp_error", "nearest"]

_WORK = 192  # bits for |y - t|: the error ratio comes out to far better than 2**-100


def _parts(truth):
    """(negative, mantissa, exponent, bits) of a finite real, without rounding an mpf."""
    t = truth if isinstance(truth, mpmath.mpf) else mpmath.mpf(truth)
    sign, man, exp, bits = t._mpf_
    if not man and exp:
        raise ValueError(f"not a finite real: {truth!r}")
    return bool(sign), int(man), exp, bits


def ulp(truth):
    """The float64 spacing at the binade of ``truth`` (a finite real), as an mpf."""
    _, man, exp, bits = _parts(truth)
    binade = exp + bits - 1 if man else -1022
    return mpmath.ldexp(mpmath.mpf(1), max(binade, -1022) - 52)


def ulp_error(value, truth):
    """|value - truth| in ULPs of float64 at the truth; inf for a NaN or an infinity."""
    if not math.isfinite(value):
        return math.inf
    with mpmath.workprec(_WORK):
        return float(abs(mpmath.mpf(value) - truth) / ulp(truth))


def nearest(truth):
    """The float64 nearest to ``truth`` (ties to even), subnormals and overflow included."""
    negative, man, exp, bits = _parts(truth)
    if not man:
        magnitude = 0.0
    elif exp + bits - 1 < -1080:
        magnitude = 0.0
    elif exp + bits - 1 > 1024:
        magnitude = math.inf
    else:
        try:
            magnitude = float(Fraction(man) * Fraction(2) ** exp)  # rounds once, to nearest
        except OverflowError:
            magnitude = math.inf
    return -magnitude if negative else magnitude
