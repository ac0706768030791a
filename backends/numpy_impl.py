"""refact's own vectorised numpy implementation of every catalog function.

This is what the ``numpy`` backend runs: numpy users get a fast implementation that is
as careful as the pure-Python core. Every function takes arrays (or anything
``numpy.asarray`` accepts) and returns an array of the dtype of its first argument.

How it stays accurate
---------------------
* ``float32``, ``float16`` and ``bfloat16`` inputs are computed in float64 and rounded
  once to the input's format, so they come back correctly rounded except when the true
  value lies within about one float64 ulp of a rounding boundary of the narrow format
  (double rounding; odds about 2**-29 for float32). ``bfloat16`` needs ml_dtypes; the
  float64 -> bfloat16 rounding is done here, because casting through ml_dtypes rounds
  through float32 first.
* ``float64`` uses formulas that never subtract nearly equal rounded quantities:
  ``exp(-|x|)`` instead of ``exp(x)``, ``log1p``, shifting by the row maximum with the
  shift carried exactly (an error-free difference), and error-free transformations
  (two-sum, two-product) where one more rounding would cost a unit in the last place.
  Where even that is not enough (``logsumexp`` of a row whose result cancels most of its
  negative maximum, as for rows of log-probabilities), the sum and its logarithm are
  carried in double-double arithmetic with an ``exp`` good to about 2**-100.
  Measured against mpmath (tests/backends/test_numpy_impl.py) the float64 results stay
  within 2 ulp; the one known exception is a logsumexp whose result is below about
  ``1e-15 * |max|`` (e.g. ``[-log 2, -log 2]``, result 2.3e-17), beyond double-double.
* The normal distribution uses W. J. Cody's rational Chebyshev approximations of erf and
  erfc (Math. Comp. 23 (1969), 631-637; the CALERF coefficients, public domain), with the
  argument ``x / sqrt(2)`` and the Gaussian factor ``exp(-x**2 / 2)`` carried to double
  precision, so the far tail down to the subnormal range keeps its relative accuracy.
  ``probit`` starts from P. J. Acklam's rational approximation (relative error 1.15e-9)
  and takes two Halley steps against that ``ndtr``, scaled by a power of two so that
  subnormal probabilities do not lose their digits.

Special values follow the mathematics: ``sigmoid(-inf) = 0``, ``logit(0) = -inf``,
``probit(1) = inf``, a probability outside ``[0, 1]`` gives NaN, and ``0 * log(0)`` in a
loss counts as 0.
"""

import math

import numpy as np

__all__ = [
    "sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit", "hard_sigmoid",
    "ndtr", "probit", "softmax", "log_softmax", "logsumexp", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "cross_entropy", "distillation_loss",
    "two_sum", "two_product",
]

# ---------------------------------------------------------------------------------------
# Formats: compute in float64, round once.


def _format_of(array):
    """The floating dtype results come back in: the input's, or float64 for integers."""
    if array.dtype.name in ("float16", "float32", "float64", "bfloat16"):
        return array.dtype
    return np.dtype(np.float64)


def _float64(x):
    """``(x as a float64 array, the dtype to round the result to)``."""
    array = np.asarray(x)
    return array.astype(np.float64), _format_of(array)


def _bfloat16_round(y):
    """Round float64 to the nearest bfloat16 value (ties to even), still as float64.

    bfloat16 keeps 8 significant bits and float32's exponent range: in the normal range
    drop the low 45 bits of the float64 significand with round-half-even on the bit
    pattern (a carry into the exponent is the right answer); below 2**-126 the spacing
    is fixed at 2**-133.
    """
    y = np.array(y, dtype=np.float64, copy=True)
    bits = y.view(np.uint64)
    normal = np.isfinite(y) & (np.abs(y) >= 2.0 ** -126)
    kept = bits >> np.uint64(45)
    bias = np.uint64((1 << 44) - 1) + (kept & np.uint64(1))
    rounded = ((bits + bias) >> np.uint64(45)) << np.uint64(45)
    bits[normal] = rounded[normal]
    small = np.abs(y) < 2.0 ** -126
    y[small] = np.round(y[small] * 2.0 ** 133) * 2.0 ** -133
    return y


def _finish(y, dtype):
    """Round a float64 result to ``dtype`` exactly once."""
    y = np.asarray(y, dtype=np.float64)
    if dtype.name == "bfloat16":
        y = _bfloat16_round(y)
    return y.astype(dtype)


# ---------------------------------------------------------------------------------------
# Error-free transformations (Knuth, Dekker): a + b and a * b as an unevaluated sum of
# two doubles, exactly. Inputs must be finite; callers mask infinities and NaN.

_SPLITTER = 134217729.0  # 2**27 + 1


def two_sum(a, b):
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _fast_two_sum(a, b):
    """Exact ``a + b`` when ``|a| >= |b|``."""
    s = a + b
    return s, b - (s - a)


def _split(a):
    c = _SPLITTER * a
    high = c - (c - a)
    return high, a - high


def two_product(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _divide(n, d_hi, d_lo=0.0, n_lo=0.0):
    """``(n + n_lo) / (d_hi + d_lo)`` with one Newton correction: about half an ulp.

    The residual ``n - q*d_hi`` is exact (a two-product, then a subtraction of nearly
    equal numbers) and the low parts join it, so only the final addition rounds.
    """
    q, q_lo = _divide_dd(n, d_hi, d_lo, n_lo)
    return q + q_lo


def _divide_dd(n, d_hi, d_lo=0.0, n_lo=0.0):
    """:func:`_divide` before its final rounding, as ``(q, q_lo)``."""
    q = n / d_hi
    p, p_err = two_product(q, d_hi)
    residual = ((n - p) - p_err) + n_lo - q * d_lo
    return q, residual / d_hi


def _sum_dd(hi, lo=None):
    """Sum along the last axis as ``(s, s_lo)``: a pairwise cascade of exact two-sums.

    The rounding errors of the cascade are summed separately (their own error is of
    second order), so the result is the sum to about ``2**-106`` relative to the sum of
    magnitudes, at the cost of log2(n) vector operations.
    """
    lo = np.zeros_like(hi) if lo is None else np.broadcast_to(lo, hi.shape)
    while hi.shape[-1] > 1:
        if hi.shape[-1] % 2:
            pad = np.zeros(hi.shape[:-1] + (1,))
            hi = np.concatenate([hi, pad], axis=-1)
            lo = np.concatenate([lo, pad], axis=-1)
        hi, err = two_sum(hi[..., 0::2], hi[..., 1::2])
        lo = lo[..., 0::2] + lo[..., 1::2] + np.where(np.isfinite(hi), err, 0.0)
    return hi[..., 0], lo[..., 0]


def _exp_dd(hi, lo):
    """``exp(hi + lo)`` for a small correction ``lo``: ``exp(hi) * (1 + lo)``."""
    e = np.exp(hi)
    return e + e * lo


def _ln2_multiple(k):
    """``k * log(2)`` as a double-double ``(hi, lo)`` with ``|lo| <= ulp(hi)/2``, so
    that ``exp(x + k log 2)`` can be taken as ``exp(x + hi) * (1 + lo)``."""
    hi, lo = two_sum(k * _LN2_HI, k * _LN2_LO)   # k * _LN2_HI is exact for |k| < 2**21
    return hi, lo


def _dd_mul(a, a_lo, b, b_lo):
    p, e = two_product(a, b)
    return _fast_two_sum(p, e + (a * b_lo + a_lo * b))


def _exp_precise_parts(x, x_lo):
    """``exp(x + x_lo) = (hi + lo) * 2**k`` as ``(hi, lo, k)``, hi in [0.7, 1.42], to about
    2**-100 relative, for finite -2**20 < x <= 710 (k apart: nothing under- or overflows).

    For the few places where double-precision ``exp`` (half an ulp) is not enough:
    ``x = k log 2 + r`` with log 2 in three parts (``k * _LN2_HI`` exact, the
    subtraction exact), then ``exp(r)``, |r| <= 0.35, by its Taylor series to r**22/22!
    in double-double arithmetic; ``2**k`` is left to the caller.
    """
    k = np.rint(x / _LN2)
    r = x - k * _LN2_HI
    p, p_err = two_product(k, _LN2_LO)
    r, r_lo = two_sum(r, -p)
    r, r_lo = _fast_two_sum(r, r_lo + (x_lo - p_err - k * _LN2_TAIL))
    total, total_lo = np.ones_like(r), np.zeros_like(r)
    term, term_lo = np.ones_like(r), np.zeros_like(r)
    for n in range(1, 23):
        term, term_lo = _dd_mul(term, term_lo, r, r_lo)
        term, term_lo = _divide_dd(term, float(n), 0.0, term_lo)
        total, err = two_sum(total, term)
        total_lo = total_lo + err + term_lo
    total, total_lo = _fast_two_sum(total, total_lo)
    return total, total_lo, k.astype(np.int64)


def _exp_precise(x, x_lo):
    """``exp(x + x_lo)`` as ``(hi, lo)`` to about 2**-100 relative, for finite x <= 710
    (see :func:`_exp_precise_parts`)."""
    total, total_lo, k = _exp_precise_parts(x, x_lo)
    return np.ldexp(total, k), np.ldexp(total_lo, k)


def _exp_dd_pair(hi, lo):
    """:func:`_exp_dd` before its final rounding, as ``(e, e_lo)``."""
    e = np.exp(hi)
    return e, e * lo


# ---------------------------------------------------------------------------------------
# Elementwise functions.


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``.

    With ``e = exp(-|x|)`` in (0, 1], ``1 + e`` is split exactly into ``s + t`` and
    ``sigmoid(x) = n / (s + t)`` with ``n = 1`` for x >= 0 and ``n = e`` below: the
    only inexact steps are ``exp`` and one final rounding, so there is no cancellation
    at either end and the left tail keeps full relative accuracy into the subnormals.

    >>> float(sigmoid(-745.0))
    5e-324
    """
    x, dtype = _float64(x)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))
        s, t = _fast_two_sum(1.0, e)
        n = np.where(x >= 0, 1.0, e)
        y = _divide(n, s, t)
        y = np.where(np.isnan(x), x, y)
    return _finish(y, dtype)


def sigmoid_grad(x):
    """Derivative of the sigmoid, ``sigmoid(x) * (1 - sigmoid(x)) = e / (1 + e)**2``.

    ``e = exp(-|x|)`` (the function is even); ``(1 + e)**2`` is carried as a
    double-double so the quotient rounds once.

    >>> float(sigmoid_grad(0.0))
    0.25
    """
    x, dtype = _float64(x)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))
        s, t = _fast_two_sum(1.0, e)
        square, square_err = two_product(s, s)
        d_hi, d_lo = _fast_two_sum(square, square_err + 2.0 * s * t)
        y = _divide(e, d_hi, d_lo)
        y = np.where(np.isnan(x), x, y)
    return _finish(y, dtype)


def _softplus64(x):
    """``log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``: two non-negative terms."""
    with np.errstate(all="ignore"):
        tail = np.log1p(np.exp(-np.abs(x)))
        y = np.maximum(x, 0.0) + tail
        return np.where(np.isnan(x), x, y)


def softplus(x):
    """Softplus ``log(1 + exp(x))``, as ``max(x, 0) + log1p(exp(-|x|))``.

    Both terms are non-negative, so nothing cancels; no threshold is applied.

    >>> float(softplus(-800.0)), float(softplus(800.0))
    (0.0, 800.0)
    """
    x, dtype = _float64(x)
    return _finish(_softplus64(x), dtype)


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``.

    >>> float(log_sigmoid(-800.0))
    -800.0
    """
    x, dtype = _float64(x)
    return _finish(-_softplus64(-x), dtype)


def logit(p):
    """Inverse of the sigmoid, ``log(p / (1 - p))``.

    Above 1/2 it is ``-logit(1 - p)``, with ``1 - p`` exact, so that ``logit(1 - p) ==
    -logit(p)`` holds exactly. Up to 1/2, two regions keep the rounding of ``1 - p`` out
    of the result: from 1/4, ``2 * atanh(2p - 1)`` with ``2p - 1`` exact; below 1/4,
    ``1 - p`` is kept as a double-double in the quotient. Outside ``[0, 1]`` is NaN.

    >>> float(logit(0.5)), float(logit(1.0))
    (0.0, inf)
    """
    p, dtype = _float64(p)
    with np.errstate(all="ignore"):
        upper = p > 0.5
        q = np.where(upper, 1.0 - p, p)  # exact for p in [1/2, 1] (Sterbenz)
        s, t = two_sum(1.0, -q)
        low = np.log(_divide(q, s, t))
        low = np.where(q < 1e-300, np.log(q), low)  # keep the quotient out of subnormals
        middle = 2.0 * np.arctanh(2.0 * q - 1.0)
        y = np.where(q < 0.25, low, middle)
        y = np.where(upper, -y, y)
        y = np.where((p < 0) | (p > 1), np.nan, y)
        y = np.where(np.isnan(p), p, y)
    return _finish(y, dtype)


def hard_sigmoid(x):
    """``relu6(x + 3) / 6``: 0 below -3, 1 above 3, ``x / 6 + 1/2`` between.

    ``x + 3`` is carried exactly, so the division rounds once.

    >>> float(hard_sigmoid(0.0)), float(hard_sigmoid(-7.0))
    (0.5, 0.0)
    """
    x, dtype = _float64(x)
    with np.errstate(all="ignore"):
        x = np.clip(x, -4.0, 4.0)                  # the same result, and no overflow below
        s, t = two_sum(x, 3.0)
        q = s / 6.0
        product, product_err = two_product(q, 6.0)
        y = q + (((s - product) - product_err) + t) / 6.0
        y = np.where(np.isnan(x), x, np.clip(y, 0.0, 1.0))
    return _finish(y, dtype)


# ---------------------------------------------------------------------------------------
# The normal distribution.
#
# Central region |x| <= 0.66: ndtr(x) = 1/2 + erf(x/sqrt(2))/2 with erf from its Taylor
# series. Tails: ndtr(-|x|) = exp(-x**2/2) erfcx(|x|/sqrt(2)) / 2 with Cody's rational
# approximations of erfcx, evaluated by compensated Horner (each step an exact two-sum and
# two-product, the rounding errors carried along), so only the approximation itself
# (below 0.3 ulp) and exp's rounding remain. The argument |x|/sqrt(2) is a double-double
# and x**2 an exact product: the steep Gaussian never amplifies a rounded argument.

# erfcx(z) = exp(z**2) erfc(z) = P(z) / Q(z) for 0.46875 <= z <= 4 (Cody).
_ERFC_P = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERFC_Q = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)
# erfcx(z) = (1/sqrt(pi) - w P(w) / Q(w)) / z with w = 1/z**2, for z > 4 (Cody).
_ERFC_FAR_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
               1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_FAR_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
               6.05183413124413191e-2, 2.33520497626869185e-3)
# erf(z) = (2/sqrt(pi)) z sum_n (-z**2)**n / (n! (2n + 1)); 18 terms reach 2**-60 at z = 1/2.
_ERF_SERIES = tuple((-1.0) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(1, 18))

_TWO_OVER_SQRT_PI = (1.1283791670955126, 1.533545961316588e-17)   # hi, lo
_INV_SQRT_PI = (0.5641895835477563, 7.66772980658294e-18)
_SQRT_HALF = (0.7071067811865476, -4.833646656726457e-17)
_INV_SQRT_2PI = 0.3989422804014327
_LN2_HI = 6.93147180369123816490e-01          # 32 significant bits: k * LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_LN2_TAIL = 1.1612227229362532e-26            # log 2 - _LN2_HI - _LN2_LO
_LN2 = 0.6931471805599453
_CENTRAL = 0.6629126073623883                  # 0.46875 * sqrt(2): end of the central region


def _compensated_horner(lead, coefficients, last, z):
    """Cody's nested form ``((lead z + c0) z + c1) z ... + last`` as ``(hi, lo)``."""
    hi, lo = two_product(lead, z)
    for c in coefficients:
        s, e = two_sum(hi, c)
        hi, p_err = two_product(s, z)
        lo = (lo + e) * z + p_err
    s, e = two_sum(hi, last)
    return s, lo + e


def _scaled_argument(x):
    """``|x| / sqrt(2)`` as a double-double ``(z, z_lo)``."""
    a = np.abs(x)
    z, err = two_product(a, _SQRT_HALF[0])
    return z, err + a * _SQRT_HALF[1]


def _erf_central(x):
    """``erf(x / sqrt(2))`` for |x| <= 0.66 as ``(hi, lo)``, relative accuracy to 0."""
    z, z_lo = _scaled_argument(x)
    w = z * z
    tail = np.zeros_like(w)
    for a in reversed(_ERF_SERIES):
        tail = (tail + a) * w
    s, s_lo = _fast_two_sum(1.0, tail)                 # the series, 1 + tail
    a, a_lo = two_product(_TWO_OVER_SQRT_PI[0], z)
    a_lo = a_lo + _TWO_OVER_SQRT_PI[1] * z + _TWO_OVER_SQRT_PI[0] * z_lo
    hi, lo = two_product(a, s)
    lo = lo + a * s_lo + a_lo * s
    return np.copysign(hi, x), np.where(x < 0, -lo, lo)


def _erfcx(z, z_lo):
    """``exp(z**2) erfc(z)`` for ``z + z_lo`` >= 0.46875, as ``(hi, lo)``."""
    n, n_lo = _compensated_horner(_ERFC_P[8], _ERFC_P[:7], _ERFC_P[7], z)
    d, d_lo = _compensated_horner(1.0, _ERFC_Q[:7], _ERFC_Q[7], z)
    middle, middle_lo = _divide_dd(n, d, d_lo, n_lo)
    w = 1.0 / (z * z)
    num = _ERFC_FAR_P[5] * w
    den = w
    for a, b in zip(_ERFC_FAR_P[:4], _ERFC_FAR_Q[:4]):
        num = (num + a) * w
        den = (den + b) * w
    correction = w * (num + _ERFC_FAR_P[4]) / (den + _ERFC_FAR_Q[4])
    s, s_lo = two_sum(_INV_SQRT_PI[0], -correction)
    far, far_lo = _divide_dd(s, z, 0.0, s_lo + _INV_SQRT_PI[1])
    r = np.where(z <= 4.0, middle, far)
    r_lo = np.where(z <= 4.0, middle_lo, far_lo)
    # first order in the argument's low part: erfcx'(z) = 2 z erfcx(z) - 2/sqrt(pi)
    return r, r_lo + (2.0 * z * r - _TWO_OVER_SQRT_PI[0]) * z_lo


def _gauss_tail(x, scale=0):
    """``(Q, Q_lo, phi)`` for finite |x| > 0.66, all scaled by ``2**scale``.

    ``Q + Q_lo = ndtr(-|x|)``, the tail beyond |x|, and ``phi`` the normal density at x.
    ``scale`` (an integer array) shifts the exponent inside ``exp`` so that a subnormal
    tail stays in the normal range, as ``probit`` needs for subnormal probabilities.
    """
    square, square_err = two_product(x, x)
    shift, shift_lo = _ln2_multiple(scale)
    hi, lo = two_sum(-0.5 * square, shift)
    # 2**scale exp(-x**2 / 2) = gauss + gauss_lo
    gauss, gauss_lo = _exp_dd_pair(hi, lo - 0.5 * square_err + shift_lo)
    r, r_lo = _erfcx(*_scaled_argument(x))
    q, q_lo = two_product(gauss, 0.5 * r)
    q_lo = q_lo + gauss * (0.5 * r_lo) + gauss_lo * (0.5 * r)
    return q, q_lo, gauss * _INV_SQRT_2PI


def _ndtr64(x):
    with np.errstate(all="ignore"):
        x = np.clip(x, -40.0, 40.0)      # ndtr(-40) underflows to 0, ndtr(40) rounds to 1
        y = np.where(x > 0, 1.0, 0.0)
        central = np.abs(x) <= _CENTRAL
        e, e_lo = _erf_central(x[central])
        s, s_lo = two_sum(0.5, 0.5 * e)
        y[central] = s + (s_lo + 0.5 * e_lo)
        tails = np.isfinite(x) & ~central
        xt = x[tails]
        q, q_lo, _ = _gauss_tail(xt)
        u, u_lo = two_sum(1.0, -q)
        y[tails] = np.where(xt < 0, q + q_lo, u + (u_lo - q_lo))
        return np.where(np.isnan(x), x, y)


def ndtr(x):
    """Standard normal distribution function ``(1 + erf(x / sqrt(2))) / 2``.

    Central region from erf's Taylor series; tails as ``exp(-x**2/2) erfcx(|x|/sqrt(2))
    / 2`` with ``x**2`` exact, so the lower tail keeps its relative accuracy down to the
    smallest subnormal (x ~ -38.5); the upper tail is ``1 -`` that.

    >>> float(ndtr(0.0)), float(ndtr(-40.0))
    (0.5, 0.0)
    """
    x, dtype = _float64(x)
    return _finish(_ndtr64(x), dtype)


# Acklam's rational approximation of the normal quantile (relative error 1.15e-9).
_ACKLAM_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
             1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_ACKLAM_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
             6.680131188771972e01, -1.328068155288572e01)
_ACKLAM_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
             -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
             3.754408661907416e00)


def _horner(coefficients, x):
    result = np.zeros_like(x) + coefficients[0]
    for c in coefficients[1:]:
        result = result * x + c
    return result


def _acklam_lower(p):
    """Initial quantile for 0 < p <= 1/2."""
    q = np.sqrt(-2.0 * np.log(p))
    tail = _horner(_ACKLAM_C, q) / (_horner(_ACKLAM_D, q) * q + 1.0)
    r = (p - 0.5) ** 2
    central = (p - 0.5) * _horner(_ACKLAM_A, r) / (_horner(_ACKLAM_B, r) * r + 1.0)
    return np.where(p < 0.02425, tail, central)


def _halley_residual(x, p, scale):
    """``(ndtr(x) - p, phi(x))`` for x <= 0 and 0 < p <= 1/2, both times ``2**scale``.

    Near the centre the difference is formed as ``(ndtr(x) - 1/2) - (p - 1/2)``: the
    first from erf's series, the second exact, so no digit of a small x is lost.
    """
    central = x >= -_CENTRAL
    e, e_lo = _erf_central(np.where(central, x, 0.0))
    centre_residual = (0.5 * e - (p - 0.5)) + 0.5 * e_lo
    q, q_lo, density = _gauss_tail(np.where(central, -1.0, x), scale)
    tail_residual = (q - np.ldexp(p, scale)) + q_lo
    centre_density = np.exp(-0.5 * x * x) * _INV_SQRT_2PI
    return (np.where(central, centre_residual, tail_residual),
            np.where(central, centre_density, density))


def probit(p):
    """Quantile of the standard normal distribution (inverse of :func:`ndtr`).

    Acklam's approximation, then two Halley steps ``x -= u / (1 + x u / 2)`` with
    ``u = (ndtr(x) - p) / phi(x)`` formed without cancellation (see
    ``_halley_residual``). Above 1/2, ``probit(p) = -probit(1 - p)`` with ``1 - p``
    exact; below 2**-900 the residual and the density are scaled by ``2**1000`` so that
    subnormal probabilities keep their digits.

    >>> float(probit(0.5)), float(probit(0.0))
    (0.0, -inf)
    """
    p, dtype = _float64(p)
    with np.errstate(all="ignore"):
        upper = p > 0.5
        lower_p = np.where(upper, 1.0 - p, p)           # exact for p >= 1/2
        valid = (lower_p > 0) & (lower_p <= 0.5)
        # the iteration on the points in (0, 1) alone: a float32 sweep's patterns are
        # mostly outside it, and the rest of the answer is a rule
        q = lower_p[valid]
        scale = np.where(q < 2.0 ** -900, 1000, 0)
        root = np.minimum(_acklam_lower(q), 0.0)
        for _ in range(2):
            residual, density = _halley_residual(root, q, scale)
            u = residual / density
            root = np.minimum(root - u / (1.0 + 0.5 * root * u), 0.0)
        x = np.zeros_like(p)
        x[valid] = root
        x = np.where(upper, -x, x)
        x = np.where(lower_p == 0, np.where(upper, np.inf, -np.inf), x)
        x = np.where(p == 0.5, 0.0, x)
        x = np.where((p < 0) | (p > 1) | np.isnan(p), np.nan, x)
    return _finish(x, dtype)


# ---------------------------------------------------------------------------------------
# Along an axis. The shift by the row maximum is carried exactly: d = x - max is a
# two-sum, so exp(d) is never the exponential of a rounded difference (which would cost
# |d| * 2**-53 of relative error, hundreds of ulp at d ~ -700).


# A row's rest below _TINY_REST is summed again, its terms lifted by 2**_LIFT (see _Shifted).
_TINY_REST = 2.0 ** -900
_LIFT = 600


class _Shifted:
    """``x - max(x)`` along the last axis as a double-double, and what follows from it.

    ``d_hi + d_lo`` is exactly ``x - max``; the first maximal element has ``d = 0``.
    ``e = exp(d)``; ``rest = sum(e) - 1`` (the sum without the maximal element), so the
    row total is ``1 + rest`` and ``log`` of it is ``log1p(rest)`` without cancellation.
    Rows holding +inf or NaN, or entirely -inf, are flagged; their results are set by
    the callers.
    """

    def __init__(self, x_hi, x_lo=None):
        x_lo = np.zeros_like(x_hi) if x_lo is None else x_lo
        self.nan_row = np.isnan(x_hi).any(axis=-1, keepdims=True)
        self.posinf = x_hi == np.inf
        self.posinf_row = self.posinf.any(axis=-1, keepdims=True)
        self.neginf_row = (x_hi == -np.inf).all(axis=-1, keepdims=True)
        finite = np.isfinite(x_hi)
        # another finite entry besides the maximum: the rest is then > 0, even if it underflows
        self.several_finite = np.sum(finite, axis=-1, keepdims=True) > 1
        safe_hi = np.where(finite, x_hi, -np.inf)
        top = np.argmax(safe_hi, axis=-1)[..., None]
        m_hi = np.take_along_axis(safe_hi, top, axis=-1)
        m_lo = np.take_along_axis(x_lo, top, axis=-1)
        m_hi_safe = np.where(np.isfinite(m_hi), m_hi, 0.0)
        d_hi, d_err = two_sum(np.where(finite, x_hi, 0.0), -m_hi_safe)
        d_lo = np.where(np.isfinite(d_err), d_err, 0.0) + np.where(finite, x_lo - m_lo, 0.0)
        d_hi, d_lo = two_sum(d_hi, d_lo)
        self.d_hi = np.where(finite, d_hi, -np.inf)   # -inf also where x - max overflows
        self.d_lo = np.where(finite & np.isfinite(d_lo), d_lo, 0.0)
        d_hi, d_lo = self.d_hi, self.d_lo
        self.m_hi, self.m_lo = m_hi, m_lo
        e, e_lo = _exp_dd_pair(d_hi, d_lo)
        self.e, self.e_lo = np.where(finite, e, 0.0), np.where(finite, e_lo, 0.0)
        is_top = np.zeros(x_hi.shape, dtype=bool)
        np.put_along_axis(is_top, top, True, axis=-1)
        self.is_top = is_top
        rest, rest_lo = _sum_dd(np.where(is_top, 0.0, self.e), np.where(is_top, 0.0, self.e_lo))
        tiny = rest < _TINY_REST
        if np.any(tiny):
            # The terms are near or below the subnormals, each rounded on their coarse
            # grid: sum them 2**_LIFT times larger, and round the sum once.
            shift, shift_lo = _ln2_multiple(_LIFT)
            hi, lo = two_sum(d_hi, shift)
            lifted, lifted_lo = _exp_dd_pair(hi, lo + d_lo + shift_lo)
            keep = np.isfinite(lifted) & np.isfinite(lifted_lo) & ~is_top  # d = -inf: nothing
            big, big_lo = _sum_dd(np.where(keep, lifted, 0.0), np.where(keep, lifted_lo, 0.0))
            rest = np.where(tiny, np.ldexp(big + big_lo, -_LIFT), rest)
            rest_lo = np.where(tiny, 0.0, rest_lo)
        self.rest, self.rest_lo = rest[..., None], rest_lo[..., None]
        self.log_total = np.log1p(self.rest) + self.rest_lo / (1.0 + self.rest)

    def softmax(self):
        y, y_lo = self.softmax_dd()
        return y + y_lo

    def softmax_dd(self, scale=0):
        """``softmax`` before its final rounding, as ``(hi, lo)``, times ``2**scale``
        (a scale keeps probabilities that would be subnormal in the normal range)."""
        if scale:
            shift, shift_lo = _ln2_multiple(scale)
            hi, lo = two_sum(self.d_hi, shift)
            y, y_lo = _exp_dd_pair(hi, lo + self.d_lo + shift_lo)
            y = np.where(np.isfinite(self.d_hi), y, 0.0)
            y_lo = np.where(np.isfinite(self.d_hi), y_lo, 0.0)
        else:
            y = np.where(self.is_top, 1.0, self.e)
            y_lo = np.where(self.is_top, 0.0, self.e_lo)
        s, t = two_sum(1.0, self.rest)
        hi, lo = _divide_dd(y, s, t + self.rest_lo, y_lo)
        hi = self._special(hi, on_posinf=np.where(self.posinf, 1.0, 0.0))
        return hi, np.where(self.posinf_row | self.undefined, 0.0, lo)

    def log_softmax(self):
        y, y_lo = self.log_softmax_dd()
        return y + y_lo

    def log_softmax_dd(self):
        """``log_softmax`` as ``(hi, lo)``; the row constant ``log_total`` is left
        rounded (an error common to a whole row, which callers may cancel)."""
        hi, lo = two_sum(self.d_hi, -self.log_total)
        finite = np.isfinite(self.d_hi)
        # -log1p(rest) at the maximum is negative as soon as another entry is finite, even
        # when rest underflowed to 0: its rounding is then -0.0 (in both parts, so that
        # their sum stays -0.0)
        negative_zero = (hi == 0.0) & (lo + self.d_lo == 0.0) & self.several_finite
        hi = self._special(np.where(finite, np.where(negative_zero, -0.0, hi), -np.inf),
                           on_posinf=np.where(self.posinf, 0.0, -np.inf))
        keep = finite & ~self.posinf_row & ~self.undefined & ~negative_zero
        return hi, np.where(keep, lo + self.d_lo, np.where(negative_zero, -0.0, 0.0))

    @property
    def undefined(self):
        """Rows whose softmax is undefined: NaN, all -inf, or several +inf."""
        several = np.sum(self.posinf, axis=-1, keepdims=True) > 1
        return self.nan_row | self.neginf_row | (self.posinf_row & several)

    def _special(self, y, on_posinf):
        # A row with +inf puts all the mass there (shared equally when several: undefined
        # -> NaN); an all -inf row has no mass anywhere (undefined -> NaN).
        y = np.where(self.posinf_row, on_posinf, y)
        return np.where(self.undefined, np.nan, y)


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``.

    Shift by the row maximum, carried exactly; the denominator ``1 + rest`` is a
    two-sum and the quotient is corrected once, so the result is within about 1.5 ulp.
    A row with one +inf gives 1 there and 0 elsewhere; an all -inf row, several +inf
    or a NaN give NaN.

    >>> softmax([0.0, -800.0]).tolist()
    [1.0, 0.0]
    """
    x, dtype = _float64(x)
    with np.errstate(all="ignore"):
        y = _Shifted(np.moveaxis(x, axis, -1)).softmax()
    return _finish(np.moveaxis(y, -1, axis), dtype)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``, as ``(x - max) - log1p(rest)``.

    Both terms are <= 0 and ``x - max`` is exact, so nothing cancels. At the maximum the
    value -log1p(e**-800) is negative and below every float: -0.0.

    >>> log_softmax([0.0, -800.0]).tolist()
    [-0.0, -800.0]
    """
    x, dtype = _float64(x)
    with np.errstate(all="ignore"):
        y = _Shifted(np.moveaxis(x, axis, -1)).log_softmax()
    return _finish(np.moveaxis(y, -1, axis), dtype)


def _logsumexp_cancelling(d_hi, d_lo, is_top, m):
    """``m + log(sum exp(d))`` for rows whose result nearly cancels ``m``: the sum and its
    logarithm carried to double-double (``_exp_precise``), so the digits that survive
    the cancellation are right."""
    # e**d is 0 below -800 (and -inf): clamped there, so a gap like -1.3e38 cannot make
    # the double-double exponential NaN
    far = ~np.isfinite(d_hi) | (d_hi < -800.0)
    e, e_lo = _exp_precise(np.where(far, -800.0, d_hi), np.where(far, 0.0, d_lo))
    keep = ~is_top & np.isfinite(d_hi)
    rest, rest_lo = _sum_dd(np.where(keep, e, 0.0), np.where(keep, e_lo, 0.0))
    total, total_lo = two_sum(1.0, rest)
    total_lo = total_lo + rest_lo
    log_hi = np.log1p(rest)                                  # then one Newton step:
    g, g_lo = _exp_precise(log_hi, np.zeros_like(log_hi))   # log S = L + (S - e^L) / e^L
    diff, diff_lo = two_sum(total, -g)
    correction = (diff + (diff_lo + total_lo - g_lo)) / g
    y, y_lo = two_sum(m[..., 0], log_hi)
    return y + (y_lo + correction)


def logsumexp(x, axis=-1):
    """``log(sum(exp(x)))`` along ``axis`` (reduced), as ``max + log1p(rest)``.

    Where the maximum is negative and the result not much larger than it in magnitude
    (the sum cancels part of the maximum, e.g. rows of log-probabilities), the row sum
    and its logarithm are redone in double-double arithmetic, so the result keeps its
    relative accuracy down to about ``1e-16 * |max|``.

    >>> float(logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    """
    x, dtype = _float64(x)
    with np.errstate(all="ignore"):
        shifted = _Shifted(np.moveaxis(x, axis, -1))
        y = shifted.m_hi + shifted.log_total
        # m < 0 < log(sum): the rounding of log(sum) is magnified by |log(sum)| / |y|
        cancels = (shifted.m_hi < 0) & (np.abs(y) < 4.0 * np.abs(shifted.m_hi))
        cancels &= ~(shifted.posinf_row | shifted.undefined)
        if np.any(cancels):
            rows = cancels[..., 0]
            # y keeps the reduced axis (length 1) until _finish: put it back on the rows
            y[rows] = _logsumexp_cancelling(shifted.d_hi[rows], shifted.d_lo[rows],
                                            shifted.is_top[rows], shifted.m_hi[rows])[..., None]
        y = np.where(shifted.posinf_row, np.inf, y)
        y = np.where(shifted.neginf_row, -np.inf, y)
        y = np.where(shifted.nan_row, np.nan, y)
    return _finish(y[..., 0], dtype)


# ---------------------------------------------------------------------------------------
# Losses, reduction "none".


# Losses are formed as *scaled* numbers, (hi + lo) * 2**e with 1/2 <= |hi| < 1 and e an integer
# array, so that a subnormal term times a weight of 1e300 (or a tiny weight times a large
# term) keeps its bits and is rounded once, at the end (_scaled_round).

_TINY_TERM = 2.0 ** -900  # terms below are formed from their exact parts, not rounded as floats
_EXP_ZERO_BELOW = -2400.0  # e**x below, times two weights of 2**1024, is still below 2**-1075
_NO_EXPONENT = -(10 ** 6)  # the exponent a zero stands at when two scaled numbers are aligned


def _normalized(hi, lo, e):
    finite = np.isfinite(hi)
    s = hi + np.where(finite, lo, 0.0)
    special = ~np.isfinite(s) | (s == 0)
    lo = np.where(special, 0.0, (hi - s) + lo)
    m, k = np.frexp(s)
    return m, np.where(special, 0.0, np.ldexp(lo, -k)), np.where(special, 0, e + k)


def _scaled(hi, lo=0.0):
    """The double-double hi + lo as a scaled number."""
    hi = np.asarray(hi, dtype=np.float64)
    return _normalized(hi, np.broadcast_to(lo, hi.shape), np.zeros(hi.shape, dtype=np.int64))


def _scaled_mul(a, b):
    """a * b for scaled numbers; IEEE rules for 0, inf and NaN (0 * inf is NaN)."""
    p, err = two_product(a[0], b[0])  # both in [1/2, 1): exact, nothing under- or overflows
    err = np.where(np.isfinite(err), err + (a[0] * b[1] + a[1] * b[0]), 0.0)
    return _normalized(p, err, a[2] + b[2])


def _scaled_add(a, b):
    """a + b for scaled numbers; inf - inf is NaN."""
    a_e = np.where(a[0] == 0, _NO_EXPONENT, a[2])
    b_e = np.where(b[0] == 0, _NO_EXPONENT, b[2])
    a_first = a_e >= b_e
    big = [np.where(a_first, u, v) for u, v in zip(a, b)]
    small = [np.where(a_first, v, u) for u, v in zip(a, b)]
    shift = -np.minimum(np.abs(a_e - b_e), 2000)
    s, err = two_sum(big[0], np.ldexp(small[0], shift))
    err = err + big[1] + np.ldexp(small[1], shift)
    finite = np.isfinite(a[0]) & np.isfinite(b[0])
    s = np.where(finite, s, a[0] + b[0])
    return _normalized(s, np.where(finite, err, 0.0), np.where(finite, big[2], 0))


def _scaled_sum(a, axis=-1):
    """The sum of scaled numbers along ``axis`` (removed), aligned to each row's largest."""
    top = np.max(np.where(a[0] == 0, _NO_EXPONENT, a[2]), axis=axis, keepdims=True)
    top = np.where(top == _NO_EXPONENT, 0, top)
    shift = np.maximum(a[2] - top, -2000)
    hi, lo = _sum_dd(np.moveaxis(np.ldexp(a[0], shift), axis, -1), np.moveaxis(np.ldexp(a[1], shift), axis, -1))
    finite = np.isfinite(hi)
    plain = np.sum(np.moveaxis(a[0], axis, -1), axis=-1)  # inf and NaN by IEEE rules
    return _normalized(np.where(finite, hi, plain), np.where(finite, lo, 0.0),
                       np.where(finite, np.squeeze(top, axis), 0))


def _scaled_round(a):
    """A scaled number rounded once to float64, subnormals included, beyond the range to +-inf."""
    hi, lo, e = a
    e = np.clip(e, -1200, 1200)
    y = np.ldexp(hi + lo, e)
    # hi + lo rounded first would round twice on the subnormal grid: the residual decides
    r = (hi - np.ldexp(y, -e)) + lo
    half = np.ldexp(0.5, -1074 - e)
    subnormal = np.abs(y) < 2.0 ** -1022
    y = y + np.where(subnormal & (r > half), 5e-324, 0.0) - np.where(subnormal & (r < -half), 5e-324, 0.0)
    y = np.where(a[2] < -1100, np.copysign(0.0, hi), y)
    return np.where(np.isfinite(hi), y, hi)


def _zero_like(a):
    return tuple(np.where(np.ones_like(a[0], dtype=bool), z, 0) for z in (0.0, 0.0, 0))


def _drop(mask, a):
    """``a`` with the elements under ``mask`` made 0 (a zero target coefficient: 0 log 0 = 0)."""
    return np.where(mask, 0.0, a[0]), np.where(mask, 0.0, a[1]), np.where(mask, 0, a[2])


def _exp_scaled(x):
    """e**x for x <= 0 as a scaled number, about 2**-100 relative; 0 below -2400 and at -inf."""
    safe = np.where(x >= _EXP_ZERO_BELOW, x, 0.0)
    total, total_lo, k = _exp_precise_parts(safe, np.zeros_like(safe))
    m, m_lo, e = _normalized(total, total_lo, k)
    return _drop(x < _EXP_ZERO_BELOW, (m, m_lo, e))


def _loss_weight(weight, shape, function, argument):
    """``weight`` as an array of ``shape``, broadcast as torch does for loss weights: aligned
    from the right, each dimension 1 or the input's, never more dimensions than the input."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim > len(shape) or any(size not in (1, target) for size, target in zip(w.shape[::-1], shape[::-1])):
        raise ValueError(
            f"{function}(): {argument} of shape {w.shape} does not broadcast to the input's {tuple(shape)}: "
            "aligned from the right, each dimension must be 1 or the input's, and it may not have "
            "more dimensions than the input")
    return np.broadcast_to(w, shape)


def _weighted_pair(y, a, b, w=1.0):
    """``w y a + (1 - y) b`` as a scaled number, a and b scaled too, ``1 - y`` exact; a zero
    coefficient ``w y`` or ``1 - y`` drops its term (``0 log 0 = 0``)."""
    one_minus, one_minus_lo = two_sum(1.0, -y)
    wy = _scaled_mul(_scaled(w * np.ones_like(y)), _scaled(y))
    first = _drop(wy[0] == 0, _scaled_mul(wy, a))
    second = _drop(one_minus == 0, _scaled_mul(_scaled(one_minus, one_minus_lo), b))
    return _scaled_add(first, second)


def _weighted(loss, weight, function):
    """The scaled ``loss`` times ``weight`` (IEEE rules: 0 * inf is NaN, as in torch), rounded once."""
    if weight is not None:
        loss = _scaled_mul(loss, _scaled(_loss_weight(weight, loss[0].shape, function, "weight")))
    return _scaled_round(loss)


def binary_cross_entropy(p, y, weight=None):
    """``-w (y log p + (1 - y) log(1 - p))`` elementwise, for probabilities p.

    ``log(1 - p)`` is ``log1p(-p)``; a zero target coefficient drops its logarithm
    (``0 * log 0 = 0``). No clamping: p = 0 with y > 0 gives +inf. ``weight`` broadcasts
    as in torch (for (N, C): shapes (1,), (C,), (1, C), (N, 1), (N, C)) and multiplies
    the unrounded term, so a subnormal term times a huge weight is still right.

    >>> float(binary_cross_entropy(1e-300, 1.0))
    690.7755278982137
    >>> float(binary_cross_entropy(5e-324, 5e-324, weight=1e300))   # 3.68e-321 before weighting
    3.682963305697825e-21
    """
    p, dtype = _float64(p)
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(all="ignore"):
        a = -np.log(p)
        b = -np.where(p > 0.5, np.log(1.0 - p), np.log1p(-p))   # 1 - p exact above 1/2
        b = np.where(p < _TINY_TERM, p, b)                       # -log(1 - p) = p (1 + p/2 + ...)
        loss = _weighted(_weighted_pair(y, _scaled(a), _scaled(b)), weight, "binary_cross_entropy")
        loss = np.where((p < 0) | (p > 1) | ~np.isfinite(y), np.nan, loss)
    return _finish(loss, dtype)


def _softplus_scaled(z):
    """softplus(z) = max(z, 0) + log1p(e**-|z|) as a scaled number; e**z itself below -700."""
    plain = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    tiny = z < -700.0
    exact = _exp_scaled(np.where(tiny, z, 0.0))
    return tuple(np.where(tiny, u, v) for u, v in zip(exact, _scaled(plain)))


def binary_cross_entropy_with_logits(x, y, weight=None, pos_weight=None):
    """``-w (pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))`` elementwise.

    Written as ``(1 - y) softplus(x) + pw y softplus(-x)``, two non-negative terms for
    y in [0, 1], with ``softplus(+-x) = max(+-x, 0) + log1p(exp(-|x|))`` sharing the
    logarithm (and ``e**-|x|`` itself, its exponent apart, past 700). ``pos_weight``
    (pw, default 1) weights the positive term and ``weight`` (w) the whole loss, both
    broadcast as in ``torch.nn.functional.binary_cross_entropy_with_logits``.

    >>> float(binary_cross_entropy_with_logits(-800.0, 1.0))
    800.0
    >>> float(binary_cross_entropy_with_logits(-1000.0, 0.0, weight=1e300))   # e**-1000 * 1e300
    5.075958897549457e-135
    """
    x, dtype = _float64(x)
    y = np.asarray(y, dtype=np.float64)
    function = "binary_cross_entropy_with_logits"
    with np.errstate(all="ignore"):
        shape = np.broadcast_shapes(x.shape, y.shape)
        pw = 1.0 if pos_weight is None else _loss_weight(pos_weight, shape, function, "pos_weight")
        term = _weighted_pair(y, _softplus_scaled(-x), _softplus_scaled(x), pw)
        loss = _weighted(term, weight, function)
        loss = np.where(np.isnan(x) | ~np.isfinite(y), np.nan, loss)
    return _finish(loss, dtype)


def _negative_log_softmax_scaled(shifted):
    """-log_softmax as a scaled number. It is tiny only at a row's one maximum, where it is
    log1p(R) = R (1 - R/2 + ...), R = sum_{j != top} e**d_j: below 2**-900, that R is summed
    from its exponentials with their exponents apart instead of rounded on the subnormal grid."""
    hi, lo = shifted.log_softmax_dd()
    plain = _scaled(-hi, np.where(np.isfinite(hi), -lo, 0.0))
    tiny_rows = (shifted.log_total < _TINY_TERM) & ~shifted.posinf_row & ~shifted.undefined
    if not np.any(tiny_rows):
        return plain
    d = np.where(shifted.is_top | ~np.isfinite(shifted.d_hi), -np.inf, shifted.d_hi)
    e = _scaled_mul(_exp_scaled(d), _scaled(np.ones_like(d), np.where(np.isfinite(d), shifted.d_lo, 0.0)))
    rest = tuple(part[..., None] for part in _scaled_sum(e))
    use = tiny_rows & shifted.is_top
    return tuple(np.where(use, r, u) for r, u in zip(rest, plain))


def cross_entropy(logits, target, label_smoothing=0.0, weight=None):
    """Cross-entropy of each row of ``logits`` (N, C) against ``target``.

    ``target`` is either integer class indices (N,) or probabilities (N, C). The loss is
    ``-sum_j w_j q_j log_softmax(logits)_j`` with ``q`` the one-hot (or given) distribution,
    smoothed as ``(1 - eps) q + eps / C`` when ``label_smoothing = eps`` (PyTorch's
    definition), and ``w`` the class weights (shape (C,) only, as in torch; default 1).
    Every term is non-negative, so the sum does not cancel; the terms and their weights
    are scaled numbers, rounded once.

    >>> cross_entropy([[0.0, 0.0]], [1]).tolist()
    [0.6931471805599453]
    """
    logits, dtype = _float64(logits)
    target = np.asarray(target)
    classes = logits.shape[-1]
    if weight is not None:
        weight = np.asarray(weight, dtype=np.float64)
        if weight.shape != (classes,):
            raise ValueError(f"cross_entropy(): weight must have shape ({classes},), got {weight.shape}")
    with np.errstate(all="ignore"):
        shifted = _Shifted(logits)
        if target.dtype.kind in "iub":
            if np.any((target < 0) | (target >= classes)):
                raise ValueError(f"cross_entropy: class index out of range for {classes} classes")
            q = np.zeros_like(logits)
            np.put_along_axis(q, target.astype(np.intp)[..., None], 1.0, axis=-1)
        else:
            q = target.astype(np.float64)
        eps = float(label_smoothing)
        if eps:
            q = (1.0 - eps) * q + eps / classes
        coefficient = _scaled(q) if weight is None else _scaled_mul(_scaled(q), _scaled(np.broadcast_to(weight, q.shape)))
        terms = _drop(q == 0, _scaled_mul(coefficient, _negative_log_softmax_scaled(shifted)))
        loss = _scaled_round(_scaled_sum(terms))
    return _finish(loss, dtype)


def _expm1_minus(u):
    """``exp(u) - 1 - u`` (>= 0) as ``(hi, lo)``, without cancellation near 0.

    For |u| <= 3/2 it is ``u**2 * g(u)`` with ``g(u) = 1/2 + u/6 + u**2/24 + ...``
    (Taylor to u**27/27!), ``u**2`` exact and ``1/2 + u h(u)`` a two-sum; below -3/2,
    ``expm1(u) - u`` is at least 0.72 and loses nothing.
    """
    small = np.abs(u) <= 1.5
    us = np.where(small, u, 0.0)
    h = np.zeros_like(us)
    for k in range(28, 2, -1):       # h(u) = 1/3! + u/4! + ...: nested from the top
        h = (h + 1.0 / math.factorial(k)) * (us if k > 3 else 1.0)
    g, g_lo = _fast_two_sum(0.5, us * h)
    square, square_lo = two_product(us, us)
    series = square * g
    series_lo = square * g_lo + square_lo * g + (two_product(square, g)[1])
    direct, direct_lo = two_sum(np.expm1(u), -u)
    return np.where(small, series, direct), np.where(small, series_lo, direct_lo)


def _log_ratio(rows_s, rows_t, s_hi, s_lo, t_hi, t_lo):
    """``u = log q - log p`` per class as ``(hi, lo)`` (q the student's, p the teacher's
    softened distribution).

    Directly, u is ``log_softmax(s) - log_softmax(t)``, whose two log-normalisers carry
    one rounding each; that error is common to the row and cancels in the loss to first
    order, but not to second, which matters when the distributions nearly coincide
    (loss ~ u**2). So where the row allows, u is formed from the logit differences
    ``D = (s - t) - (s - t)[top]`` alone: ``u = D - log1p(sum_k p_k expm1(D_k))``, whose
    normaliser is small when the distributions are close and so carries a tiny error.
    """
    ls_hi, ls_lo = rows_s.log_softmax_dd()
    lt_hi, lt_lo = rows_t.log_softmax_dd()
    u, u_lo = two_sum(ls_hi, -lt_hi)
    u, u_lo = _fast_two_sum(u, u_lo + (ls_lo - lt_lo))
    u = np.where(np.isfinite(ls_hi) & np.isfinite(lt_hi), u, ls_hi - lt_hi)
    u_lo = np.where(np.isfinite(u), u_lo, 0.0)

    finite_row = (np.isfinite(s_hi) & np.isfinite(t_hi)).all(axis=-1, keepdims=True)
    d, d_lo = two_sum(np.where(finite_row, s_hi, 0.0), -np.where(finite_row, t_hi, 0.0))
    d_lo = d_lo + np.where(finite_row, s_lo - t_lo, 0.0)
    top = rows_t.is_top
    ref = np.sum(np.where(top, d, 0.0), axis=-1, keepdims=True)
    ref_lo = np.sum(np.where(top, d_lo, 0.0), axis=-1, keepdims=True)
    big_d, big_d_lo = two_sum(d, -ref)
    big_d_lo = big_d_lo + (d_lo - ref_lo)
    em = np.expm1(big_d)
    em_lo = (em + 1.0) * big_d_lo                       # first order in D's low part
    p, p_lo = rows_t.softmax_dd()
    terms, terms_lo = two_product(p, em)
    terms_lo = terms_lo + p * em_lo + p_lo * em
    total, total_lo = _sum_dd(terms, np.where(np.isfinite(terms), terms_lo, 0.0))
    c = np.log1p(total) + total_lo / (1.0 + total)
    close = finite_row[..., 0] & np.isfinite(total) & (total > -0.5) & (total < 1.0)
    close = close[..., None] & np.ones_like(top)
    v, v_lo = two_sum(big_d, -c[..., None])
    v, v_lo = _fast_two_sum(v, v_lo + big_d_lo)
    return np.where(close, v, u), np.where(close, v_lo, u_lo)


def _kl_rows(rows_s, rows_t, u, u_lo, square, square_lo, scale):
    """``(square + square_lo) * sum_j p_j phi(u_j)`` per row (see distillation_loss),
    computed with the probabilities times ``2**scale`` and scaled back at the end."""
    p, p_lo = rows_t.softmax_dd(scale)
    # p exp(u) is the student's q: where u is large, exp would magnify u's rounding
    # (|u| * 2**-53 relative), so take q itself there; so too where the student has mass
    # the teacher numerically lacks (p = 0, u large or +inf).
    large = (u > 1.5) | (p == 0)
    small_u = np.where(large, 0.0, u)
    phi, phi_lo = _expm1_minus(small_u)
    phi_lo = phi_lo + np.expm1(small_u) * u_lo          # phi'(u) = expm1(u)
    terms, terms_lo = two_product(p, phi)
    terms_lo = terms_lo + p * phi_lo + p_lo * phi
    q, q_lo = rows_s.softmax_dd(scale)
    one_u, one_u_lo = two_sum(1.0, np.where(p == 0, 0.0, u))
    one_u_lo = one_u_lo + np.where(p == 0, 0.0, u_lo)
    pu, pu_lo = two_product(p, one_u)
    pu_lo = pu_lo + p * one_u_lo + p_lo * one_u
    q_minus, q_minus_lo = two_sum(q, -pu)
    terms = np.where(large, q_minus, terms)
    terms_lo = np.where(large, q_minus_lo + (q_lo - pu_lo), terms_lo)
    # a class where the teacher has mass and the student none: u = -inf, phi = +inf
    terms = np.where((p > 0) & (u == -np.inf), np.inf, terms)
    terms_lo = np.where(np.isfinite(terms), terms_lo, 0.0)
    total, total_lo = _sum_dd(terms, terms_lo)
    hi, lo = two_product(total, square)
    lo = np.where(np.isfinite(hi), lo + total_lo * square + total * square_lo, 0.0)
    return np.ldexp(hi + lo, -scale)


def distillation_loss(student, teacher, temperature):
    """Knowledge-distillation loss per row: ``T**2 * KL(softmax(t/T) || softmax(s/T))``.

    ``sum_j p_j (log p_j - log q_j)`` with p the teacher's and q the student's softened
    distribution. Written as ``sum_j p_j phi(u_j)``, ``phi(u) = exp(u) - 1 - u >= 0``,
    ``u_j = log q_j - log p_j`` (equal because ``sum p (exp(u) - 1) = sum q - sum p =
    0``): a sum of non-negative terms, insensitive to first order to a common error in
    each row's log-normaliser. ``s/T`` and ``t/T`` are carried as double-doubles.

    >>> distillation_loss([[0.0, 1.0]], [[0.0, 1.0]], 2.0).tolist()
    [0.0]
    """
    student, dtype = _float64(student)
    teacher = np.asarray(teacher, dtype=np.float64)
    t = float(temperature)
    with np.errstate(all="ignore"):
        def scaled(v):
            hi = v / t
            p, p_err = two_product(hi, t)
            lo = ((v - p) - p_err) / t
            return hi, np.where(np.isfinite(hi) & np.isfinite(lo), lo, 0.0)

        s_hi, s_lo = scaled(student)
        t_hi, t_lo = scaled(teacher)
        rows_s, rows_t = _Shifted(s_hi, s_lo), _Shifted(t_hi, t_lo)
        u, u_lo = _log_ratio(rows_s, rows_t, s_hi, s_lo, t_hi, t_lo)
        square, square_lo = two_product(t, t)
        loss = _kl_rows(rows_s, rows_t, u, u_lo, square, square_lo, 0)
        tiny = np.isfinite(loss) & (loss < 2.0 ** -960)
        if np.any(tiny):
            # probabilities below the normal range lose digits: redo those rows scaled
            scaled_loss = _kl_rows(rows_s, rows_t, u, u_lo, square, square_lo, 600)
            loss = np.where(tiny, scaled_loss, loss)
        undefined = rows_s.undefined[..., 0] | rows_t.undefined[..., 0]
        if not (t > 0 and math.isfinite(t)):
            undefined = np.ones_like(undefined)
        loss = np.where(undefined, np.nan, loss)
        # Finite logits whose quotients by T, or T**2 itself, leave the float range (logits
        # near 1e308, T near 1e-308 or 1e300): those rows go to the core, which switches
        # to decimal arithmetic there.
        finite_rows = np.all(np.isfinite(student) & np.isfinite(teacher), axis=-1)
        beyond = ~np.all(np.isfinite(s_hi) & np.isfinite(t_hi), axis=-1) | ~(loss <= 2.0 ** 1000)
        if not 2.0 ** -1000 < square < 2.0 ** 1000:
            beyond = np.ones_like(beyond)
        redo = finite_rows & beyond & (t > 0 and math.isfinite(t))
        if np.any(redo):
            import refact

            loss = np.array(loss, dtype=np.float64)
            for index in zip(*np.nonzero(redo)):
                loss[index] = refact.distillation_loss(student[index].tolist(), teacher[index].tolist(), t)
    return _finish(loss, dtype)
