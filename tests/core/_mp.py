"""Exact ULP errors of float64 results against mpmath values, for the core's tests.

Everything is done with Fractions, so nothing is rounded on the way: ``ulp(t)`` is the
float64 spacing at the binade of the truth t (2**-1074 below 2**-1022), and
``ulp_error(y, t) = |y - t| / ulp(t)``, so 0.5 or less means correctly rounded.
"""

import math
from fractions import Fraction

import mpmath

__all__ = ["exact", "ulp", "ulp_error", "nearest"]


def exact(value):
    """A finite float, int or mpmath number as the exact Fraction it stands for."""
    if isinstance(value, (int, float, Fraction)):
        return Fraction(value)
    man, exp = mpmath.mpf(value).man_exp
    return Fraction(man) * Fraction(2) ** exp


def ulp(truth):
    """The float64 spacing at the binade of ``truth`` (any finite real)."""
    t = abs(exact(truth))
    if t == 0:
        return Fraction(1, 2**1074)
    e = t.numerator.bit_length() - t.denominator.bit_length()
    if Fraction(2) ** e > t:  # now 2**e <= t < 2**(e+1)
        e -= 1
    return Fraction(2) ** (max(e, -1022) - 52)


def ulp_error(value, truth):
    """|value - truth| in ULPs of float64 at the truth; inf for a NaN or an infinity."""
    if not math.isfinite(value):
        return math.inf
    return float(abs(Fraction(value) - exact(truth)) / ulp(truth))


def nearest(truth):
    """The float64 nearest to ``truth`` (ties to even), subnormals included."""
    return float(exact(truth))  # int / int division in Fraction.__float__ rounds once
