"""The standard normal CDF ``ndtr`` and its inverse ``probit`` (alias ``ndtri``), in float64.

Both are within 1 ULP everywhere, tails included: ``ndtr`` down to x = -38.47 where it
underflows (subnormal results included), ``probit`` for subnormal p and p = 1e-300. The
libm's ``erfc`` is not used: it is itself off by up to 3 ULP between 1 and 26, and
erfc(-x/sqrt 2) turns the rounding of x/sqrt 2 into hundreds of ULP in the tail. Instead
Phi(-t) = phi(t) R(t), with the Gaussian density phi in double-double and the Mills ratio
R(t) = Phi(-t)/phi(t), a smooth function of order 1/t, from a table and its Taylor series
(t <= 4) or from its continued fraction (t > 4).
"""

from math import floor, isqrt, ldexp, log, sqrt

from ._dd import (
    FX, FX_ONE, dd_div, dd_mul, exp_dd, fx_exp, fx_to_dd, fx_to_float, ldexp_dd, two_prod, two_sum,
)
from ._inputs import elementwise, probability_limit

__all__ = ["ndtr", "probit", "ndtri"]


# --- constants and the Mills-ratio table, from exact integer arithmetic ---------------------

def _fx_atan_inverse(n):
    """atan(1/n) in fixed point, for an integer n >= 2."""
    total, term, k, sign, n2 = 0, FX_ONE // n, 1, 1, n * n
    while term:
        total += sign * (term // k)
        term //= n2
        k += 2
        sign = -sign
    return total


_FX_PI = 16 * _fx_atan_inverse(5) - 4 * _fx_atan_inverse(239)  # Machin
_INV_SQRT_2PI = fx_to_dd(isqrt((1 << 3 * FX) // (2 * _FX_PI)))  # 1/sqrt(2 pi)
_SQRT_2PI = fx_to_dd(isqrt(2 * _FX_PI << FX))

_STEPS = 16  # the table holds R at t = j/16, j = 0..64
_MILLS_T_MAX = 4
# floor(16 t + 1/2) stays in the table for t below 4 + 1/32; beyond, the continued fraction.
_MILLS_TABLE_END = (_MILLS_T_MAX * _STEPS + 0.5) / _STEPS
# Phi(x) < 2**-1075 below _NDTR_ZERO_BELOW (it rounds to 0), and Phi(-x) < 2**-54 from
# _NDTR_ONE_FROM on (1 - Phi(-x) rounds to 1).
_NDTR_ZERO_BELOW = -38.5
_NDTR_ONE_FROM = 8.3


def _build_mills_table():
    """(R(t), R'(t)) at t = j/16 for t <= 4, with R(t) = sqrt(pi/2) e**(t**2/2) - S(t) and
    S(t) = sum t**(2n+1) / (1*3*...*(2n+1)): both terms exact to 2**-192 (the cancellation
    costs at most 14 bits at t = 4), R in double-double and R' = t R - 1 rounded once."""
    root = isqrt(_FX_PI << (FX - 1))  # sqrt(pi/2)
    growth = FX_ONE  # e**(t**2/2), times e**((2j+1)/512) at each step
    factor = fx_exp(FX_ONE // 512)  # e**((2j+1)/512)
    factor_step = factor * factor >> FX
    table = []
    for j in range(_MILLS_T_MAX * _STEPS + 1):
        series, term, n = 0, (j << FX) // _STEPS, 0
        while term:
            series += term
            term = term * j * j // (_STEPS * _STEPS * (2 * n + 3))
            n += 1
        mills = (root * growth >> FX) - series
        table.append((*fx_to_dd(mills), fx_to_float(j * mills // _STEPS - FX_ONE)))
        growth = growth * factor >> FX
        factor = factor * factor_step >> FX
    return table


_MILLS_TABLE = _build_mills_table()


def _mills(t):
    """R(t) = Phi(-t)/phi(t) for 0 <= t < 38.5, as a double-double, relative error < 2**-55."""
    if t < _MILLS_TABLE_END:
        j = floor(t * _STEPS + 0.5)
        r_hi, r_lo, d = _MILLS_TABLE[j]
        t0 = j / _STEPS
        h = t - t0  # exact (Sterbenz)
        # Taylor series from the ODE R' = t R - 1: R^(n+1) = t R^(n) + n R^(n-1).
        prev, total, power = r_hi, d * h, h
        for n in range(1, 12):
            prev, d = d, t0 * d + n * prev
            power = power * h / (n + 1)
            total += d * power
        hi = r_hi + total
        return hi, (r_hi - hi) + total + r_lo
    # Laplace's continued fraction R = 1/(t + 1/(t + 2/(t + 3/(t + ...)))), evaluated from
    # the tail. Its last two steps are in double-double: each step damps the relative error
    # of the one before by about k/t**2, so the float part's few ULP end up below 2**-58.
    y = t
    for k in range(40 if t < 8.0 else 20 if t < 15.0 else 12, 2, -1):
        y = t + k / y
    q = 2.0 / y
    p, e = two_prod(q, y)
    y_hi, y_lo = two_sum(t, q)
    y_lo += ((2.0 - p) - e) / y
    q_hi, q_lo = dd_div(1.0, 0.0, y_hi, y_lo)
    y_hi, y_lo = two_sum(t, q_hi)
    return dd_div(1.0, 0.0, y_hi, y_lo + q_lo)


def _lower_tail(t):
    """Phi(-t) = (hi + lo) * 2**k for 0 <= t < 38.6, as (hi, lo, k, R(t)); probit's Newton
    step needs the Mills ratio R(t) too."""
    q_hi, q_lo = two_prod(t, t)
    e_hi, e_lo, k = exp_dd(-0.5 * q_hi)  # e**(-t**2/2) = e**(-q_hi/2) (1 - q_lo/2)
    e_lo -= 0.5 * q_lo * e_hi
    phi_hi, phi_lo = dd_mul(e_hi, e_lo, *_INV_SQRT_2PI)
    r_hi, r_lo = _mills(t)
    v_hi, v_lo = dd_mul(phi_hi, phi_lo, r_hi, r_lo)
    return v_hi, v_lo, k, r_hi


def ndtr(x):
    """Standard normal CDF: Phi(x) = (1 + erf(x/sqrt 2))/2 = erfc(-x/sqrt 2)/2, within 0.6 ULP.

    Computed from the lower tail, Phi(-t) = phi(t) R(t) for t = |x|: the density phi(t) =
    e**(-t**2/2)/sqrt(2 pi) in double-double (t**2 exact, e**y with its binary exponent apart,
    so nothing underflows before the last rounding), and the Mills ratio R(t) to 2**-55 from a
    table (t <= 4) or a continued fraction (t > 4). For x > 0, Phi(x) = 1 - Phi(-x) with
    Phi(-x) in double-double. So the tail is accurate in relative terms down to x = -38.47,
    where Phi underflows, and 1 - Phi(x) = Phi(-x) holds as far as floats allow.

    >>> ndtr(-37.0)                     # math.erfc(37/sqrt(2))/2 is 847 ULP off here
    5.725571222524577e-300
    >>> ndtr(-38.0)                     # subnormal
    2.88542835e-316
    >>> ndtr(0.0), ndtr(-40.0), ndtr(8.3), ndtr(float("-inf"))
    (0.5, 0.0, 1.0, 0.0)
    """
    if type(x) is not float:
        return elementwise(ndtr, x, "ndtr")
    if x <= 0.0:
        if x > _NDTR_ZERO_BELOW:
            v_hi, v_lo, k, _ = _lower_tail(-x)
            return ldexp_dd(v_hi, v_lo, k)
        return 0.0
    if x < _NDTR_ONE_FROM:
        v_hi, v_lo, k, _ = _lower_tail(x)
        s, e = two_sum(1.0, -ldexp(v_hi, k))
        return s + (e - ldexp(v_lo, k))
    return 1.0 if x == x else x  # NaN


# --- the inverse --------------------------------------------------------------------------
# A starting value from Wichura's rational approximations (M. J. Wichura, "Algorithm AS 241:
# The percentage points of the normal distribution", Applied Statistics 37 (1988) 477-484;
# PPND16, accurate to about 1e-16), then one Newton step against the accurate ndtr above,
# which makes the result accurate to the last bit. The split points and shifts keep the
# paper's names: |p - 1/2| <= SPLIT1 is the centre, r = sqrt(-log p) <= SPLIT2 near, beyond far.

_AS241_SPLIT1, _AS241_SPLIT2 = 0.425, 5.0
# CONST1 is SPLIT1**2 typed as a decimal, as in the paper (the float 0.425 * 0.425 is 1 ULP off).
_AS241_CONST1, _AS241_CONST2 = 0.180625, 1.6

_AS241_CENTRE = (
    (3.3871328727963666080, 133.14166789178437745, 1971.5909503065514427, 13731.693765509461125,
     45921.953931549871457, 67265.770927008700853, 33430.575583588128105, 2509.0809287301226727),
    (1.0, 42.313330701600911252, 687.18700749205790830, 5394.1960214247511077,
     21213.794301586595867, 39307.895800092710610, 28729.085735721942674, 5226.4952788528545610),
)
_AS241_NEAR = (
    (1.42343711074968357734, 4.63033784615654529590, 5.76949722146069140550,
     3.64784832476320460504, 1.27045825245236838258, 0.241780725177450611770,
     0.0227238449892691845833, 7.74545014278341407640e-4),
    (1.0, 2.05319162663775882187, 1.67638483018380384940, 0.689767334985100004550,
     0.148103976427480074590, 0.0151986665636164571966, 5.47593808499534494600e-4,
     1.05075007164441684324e-9),
)
_AS241_FAR = (
    (6.65790464350110377720, 5.46378491116411436990, 1.78482653991729133580,
     0.296560571828504891230, 0.0265321895265761230930, 1.24266094738807843860e-3,
     2.71155556874348757815e-5, 2.01033439929228813265e-7),
    (1.0, 0.599832206555887937690, 0.136929880922735805310, 0.0148753612908506148525,
     7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
     2.04426310338993978564e-15),
)


def _rational(coefficients, r):
    numerator, denominator = coefficients
    n = d = 0.0
    for a, b in zip(reversed(numerator), reversed(denominator)):
        n = n * r + a
        d = d * r + b
    return n / d


def _probit_lower(p):
    """probit(p) for 0 < p <= 1/2 (a result <= 0)."""
    d = p - 0.5  # exact for p >= 1/4
    if d >= -_AS241_SPLIT1:
        x = d * _rational(_AS241_CENTRE, _AS241_CONST1 - d * d)
    else:
        r = sqrt(-log(p))
        x = -(_rational(_AS241_NEAR, r - _AS241_CONST2) if r <= _AS241_SPLIT2
              else _rational(_AS241_FAR, r - _AS241_SPLIT2))
    t = -x
    if t < 0.5:
        # Newton on Phi(x) - 1/2 = -phi(t) S(t), S(t) = t + t**3/3 + t**5/15 + ... (no
        # cancellation, unlike Phi - 1/2 near 0): x <- x + S(t) + d/phi(t), and with
        # x = -t, x + S(t) is the small tail of the series.
        q_hi, q_lo = two_prod(t, t)
        c_hi, c_lo = two_prod(t, q_hi)  # t**3, then t**3/3 in double-double
        c_lo += t * q_lo
        third = c_hi / 3.0
        p_hi, p_lo = two_prod(third, 3.0)
        third_lo = (((c_hi - p_hi) - p_lo) + c_lo) / 3.0
        rest, term, odd = 0.0, c_hi * q_hi / 15.0, 5.0
        while term > 1e-20 * t:  # t**(2n+1) / (1*3*...*(2n+1)) for n >= 2
            rest += term
            odd += 2.0
            term = term * q_hi / odd
        e_hi, e_lo, k = exp_dd(0.5 * q_hi)  # 1/phi = sqrt(2 pi) e**(t**2/2); k = 0 here
        e_lo += 0.5 * q_lo * e_hi
        g_hi, g_lo = dd_mul(e_hi, e_lo, *_SQRT_2PI)
        step, step_lo = two_prod(d, g_hi)
        hi, lo = two_sum(step, third)
        return hi + (lo + (step_lo + d * g_lo + third_lo + rest))
    # Newton on Phi(x) = p, written without underflow: with v = Phi(x),
    # x <- x - (v - p)/phi(x) = x - R(t) (v - p)/v.
    v_hi, v_lo, k, r_hi = _lower_tail(t)
    gap = ((v_hi - ldexp(p, -k)) + v_lo) / v_hi
    return x - r_hi * gap


def probit(p):
    """Quantile of the standard normal, the inverse of :func:`ndtr`: probit(Phi(x)) = x.

    probit(0) = -inf, probit(1) = inf, p outside [0, 1] is an error. A rational starting
    value (Wichura's AS 241) is refined by one Newton step against the accurate ndtr, so the
    error is below 1 ULP everywhere. The step is written in ratios, x - R(t) (Phi(x) - p)/Phi(x),
    so that it works for subnormal p; near p = 1/2, where Phi(x) - 1/2 would cancel, it uses
    the series of Phi - 1/2 and p - 1/2, which is exact there. Above 1/2, probit(p) =
    -probit(1 - p), 1 - p being exact: p near 1 is ill-conditioned, and the result is the
    correctly computed quantile of the p given, not of the p meant. ``ndtri`` is this function.

    The starting value is PPND16 of M. J. Wichura, "Algorithm AS 241: The percentage points
    of the normal distribution", Applied Statistics 37 (1988) 477-484.

    >>> probit(1e-300)
    -37.0470962993612
    >>> probit(0.5), probit(0.975), probit(5e-324)
    (0.0, 1.9599639845400538, -38.467405617144344)
    """
    if type(p) is not float:
        return elementwise(probit, p, "probit", "p")
    if 0.0 < p <= 0.5:
        return _probit_lower(p)
    if 0.5 < p < 1.0:
        return -_probit_lower(1.0 - p)
    return probability_limit(p, "probit")


ndtri = probit
