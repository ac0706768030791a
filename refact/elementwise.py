"""The sigmoid family in float64: sigmoid (expit, logistic), sigmoid_grad, log_sigmoid,
softplus, logit and hard_sigmoid, each within 1 ULP of the truth over all floats.

Two tools, built at import from exact integer arithmetic, carry the accuracy: a table of
sigmoid in double-double at steps of 1/64 (sigmoid becomes one expm1 and a small
correction), and the double-double exp and log kernels of ``_dd`` with errors near 2**-70.

A list of floats is dispatched once, to a loop over the float path (for sigmoid, that path
inlined): a list gives exactly the floats that the calls one element at a time give.
"""

import math
from math import exp, expm1, floor, ldexp, log1p

from ._dd import EXP_UNDERFLOW, FX, FX_ONE, dd_div, dd_mul, exp_dd, fx_exp, fx_to_dd, ldexp_dd, log_dd, two_sum
from ._inputs import elementwise, from_array, is_float_list, probability_limit, to_array, to_float

__all__ = [
    "sigmoid", "expit", "logistic", "sigmoid_grad", "log_sigmoid", "softplus", "logit",
    "hard_sigmoid",
]


# --- the sigmoid table ----------------------------------------------------------------------
# Row n, for n in [-2560, 575], serves x in [n/64, (n+1)/64) (so x in [-40, 9)) and holds
# (a, S_hi, S_lo, 1/(S*C), 1/S) at the midpoint a = (n + 1/2)/64, with S = sigmoid(a) in
# double-double and C = 1 - S. Exactly, for any h,
#     sigmoid(a + h) = S / (1 + C*m) = S - m / (1/(S*C) + m/S),   m = exp(-h) - 1,
# and for |h| <= 1/128 the correction is at most 0.8% of S, so its few roundings (and the
# libm's expm1) cost under 0.08 ULP: the one rounding that matters is the last addition.
# Negative n are stored at the end of the list, so that table[n] works for both signs.

_GRID = 64
_GRID_LOW, _GRID_HIGH = -2560, 576  # rows n with _GRID_LOW <= n < _GRID_HIGH
_TABLE_LOW, _TABLE_HIGH = _GRID_LOW / _GRID, _GRID_HIGH / _GRID  # the x it serves: [-40, 9)


def _build_sigmoid_table():
    # 136 bits are enough here (sigma(-40) ~ 2**-58 keeps 78 good bits), and quicker.
    bits = 136
    one = 1 << bits
    e = fx_exp(FX_ONE // (2 * _GRID)) >> (FX - bits)  # exp(a) at a = (n + 1/2)/64
    step = fx_exp(FX_ONE // _GRID) >> (FX - bits)  # exp(1/64)
    ahead, behind = [], []
    for n in range(-_GRID_LOW):
        c = (e << bits) // (one + e)  # sigma(a) = e/(1+e); sigma(-a) = 1 - c
        c_hi, c_lo = fx_to_dd(c, bits)
        s_hi, s_lo = fx_to_dd(one - c, bits)
        p = 1.0 / (c_hi * s_hi)  # 1/(S*C), the same for a and -a; 2**-52 is enough here
        a = (n + 0.5) / _GRID
        if n < _GRID_HIGH:
            ahead.append((a, c_hi, c_lo, p, 1.0 / c_hi))
        behind.append((-a, s_hi, s_lo, p, 1.0 / s_hi))
        e = e * step >> bits
    return ahead + behind[::-1]


_SIGMOID_TABLE = _build_sigmoid_table()


# --- lists: one dispatch per list ------------------------------------------------------------

def _apply(list_kernel, x, function, argument="x"):
    """``list_kernel`` (a list of floats -> a list of results) on any input but a float.

    A flat list of floats, the common case, goes to the kernel in one call: the only
    per-element work is the kernel's own. Anything else (a number, a nesting, a tuple, ints)
    is checked and flattened by ``to_array`` first, which names the argument and the index
    of a bad element, and the results are nested back.
    """
    if is_float_list(x):  # bools, ints and float subclasses are not floats: to_array converts them
        return list_kernel(x)
    shape, flat = to_array(x, function, argument)
    return from_array(shape, list_kernel(flat))


def _over_list(kernel):
    """The list kernel of a float kernel: one ``map``, no dispatch per element."""
    def over_list(xs):
        return list(map(kernel, xs))
    return over_list


def _sigmoid_list(xs):
    """sigmoid of every float of a list: :func:`sigmoid`'s float path, step for step, inlined
    into one loop, so that a list gives exactly the floats the scalar calls give."""
    table, grid, low, high = _SIGMOID_TABLE, _GRID, _TABLE_LOW, _TABLE_HIGH  # local names
    out = []
    put = out.append
    for x in xs:
        if low <= x < high:
            a, s_hi, s_lo, p, q = table[floor(x * grid)]
            m = expm1(a - x)
            put(s_hi + (s_lo - m / (p + q * m)))
        elif x >= high:
            e = exp(-x)
            put(1.0 - e / (1.0 + e))
        elif x < low:
            put(exp(x))
        else:
            put(x)  # NaN
    return out


def sigmoid(x):
    """Logistic sigmoid: sigma(x) = 1 / (1 + e**-x), within 0.6 ULP (about 99.8% correctly rounded).

    Never overflows, since e**-x is never formed for x < 0. For x < -40 the result is
    ``exp(x)``: sigma(x) = e**x (1 - e**x + ...) differs from it by less than 0.04 ULP, down to
    the subnormals. For x >= 9 it is 1 - e/(1 + e) with e = e**-x < 1.3e-4, so the roundings
    of the small e/(1 + e) are invisible next to 1. In between, around the midpoint a of the
    1/64-wide cell that holds x, sigma(x) = S / (1 + C*m) exactly, with S = sigma(a) and
    C = 1 - S from a table in double-double and m = expm1(a - x), |m| < 0.008: the rounding
    errors sit in a correction under 1% of S, and only the final addition rounds at full weight.

    Symmetry: 1 - sigma(x) = sigma(-x); the derivative is sigma' = sigma (1 - sigma) <= 1/4
    (:func:`sigmoid_grad`). ``expit`` and ``logistic`` are this function.

    >>> sigmoid(-710.0)                 # a subnormal, where e**-x would overflow
    4.47628622567513e-309
    >>> sigmoid(-10000.0), sigmoid(40.0), sigmoid(float("nan"))
    (0.0, 1.0, nan)
    >>> sigmoid([[0, 1], [-1, 2]])
    [[0.5, 0.7310585786300049], [0.2689414213699951, 0.8807970779778824]]
    """
    if type(x) is not float:
        return _apply(_sigmoid_list, x, "sigmoid")
    if _TABLE_LOW <= x < _TABLE_HIGH:
        a, s_hi, s_lo, p, q = _SIGMOID_TABLE[floor(x * _GRID)]
        m = expm1(a - x)
        return s_hi + (s_lo - m / (p + q * m))
    if x >= _TABLE_HIGH:
        e = exp(-x)
        return 1.0 - e / (1.0 + e)
    if x < _TABLE_LOW:
        return exp(x)
    return x  # NaN


expit = sigmoid
logistic = sigmoid


def sigmoid_grad(x):
    """Derivative of the sigmoid: sigma'(x) = sigma(x) (1 - sigma(x)) = e / (1 + e)**2, e = e**-|x|.

    The textbook product sigma * (1 - sigma) is 0 as soon as sigma rounds to 1 (x > 37),
    where the truth is still about e**-x; here e = e**-|x| comes in double-double with its
    binary exponent kept apart, and e / (1 + e)**2 is formed in double-double, so the result
    is a positive float wherever the truth is one (down to the subnormals) and within
    0.51 ULP. The function is even and peaks at sigma'(0) = 1/4: 0 < sigma' <= 1/4.

    >>> sigmoid_grad(40.0), sigmoid_grad(740.0)   # sigma * (1 - sigma) is 1.0 * 0.0 here
    (4.248354255291589e-18, 4.2e-322)
    >>> sigmoid_grad(0.0), sigmoid_grad(float("inf"))
    (0.25, 0.0)
    """
    if type(x) is not float:
        return _apply(_SIGMOID_GRAD_LIST, x, "sigmoid_grad")
    t = x if x < 0.0 else -x
    if t > EXP_UNDERFLOW:
        e_hi, e_lo, k = exp_dd(t)  # e = (e_hi + e_lo) * 2**k
        e = ldexp(e_hi, k)
        d_hi, d_lo = two_sum(1.0, e)
        d_lo += ldexp(e_lo, k)
        d_hi, d_lo = dd_mul(d_hi, d_lo, d_hi, d_lo)
        q_hi, q_lo = dd_div(e_hi, e_lo, d_hi, d_lo)
        return ldexp_dd(q_hi, q_lo, k)
    return 0.0 if t == t else t  # |x| > 746 underflows; NaN stays NaN


def softplus(x):
    """Softplus: log(1 + e**x), correctly rounded on >99.99% of inputs.

    Never overflows: for x >= 37 the result is x itself (the correction log1p(e**-x) is
    below half an ULP of x), for 12 <= x < 37 it is x + log1p(e**-x), whose rounding errors
    sit far below the ULP of x. Below 12, e**x comes as a double-double with its exponent
    apart and log(1 + e**x) is taken in double-double; when e**x < 2**-15 the series
    e**x (1 - e**x/2 + ...) is used instead, so tiny and subnormal results (x < -708) keep
    full accuracy. The error is below 0.51 ULP everywhere.
    softplus(x) - softplus(-x) = x, and softplus' = sigmoid.

    >>> softplus(-740.0)                # e**x, a subnormal
    4.2e-322
    >>> softplus(1000.0), softplus(-1000.0)
    (1000.0, 0.0)
    """
    if type(x) is not float:
        return _apply(_SOFTPLUS_LIST, x, "softplus")
    if x < 12.0:
        if x > EXP_UNDERFLOW:
            e_hi, e_lo, k = exp_dd(x)
            if k < -16:
                # e < 2**-15: log1p(e) = e (1 - e/2 + e**2/3 - e**3/4 + e**4/5), all in the
                # scale of e, so that 1 + e is never formed (it would lose e's low bits).
                e = ldexp(e_hi, k)
                tail = e_hi * e * (0.5 - e * (1 / 3 - e * (0.25 - 0.2 * e)))
                return ldexp_dd(e_hi, e_lo - tail, k)
            e_hi = ldexp(e_hi, k)
            s, t = two_sum(1.0, e_hi)
            t += ldexp(e_lo, k)  # 1 + e = s + t exactly, to 2**-106
            l_hi, l_lo = log_dd(s)
            w = t / s
            return l_hi + (l_lo + (w - 0.5 * w * w))
        return 0.0 if x == x else x  # underflow, or NaN
    if x < 37.0:
        return x + log1p(exp(-x))
    return x


def log_sigmoid(x):
    """Log of the sigmoid: log(sigma(x)) = -softplus(-x), correctly rounded on >99.99% of inputs.

    Computed as -softplus(-x) (see :func:`softplus` for why that is stable): about x for
    x -> -inf, where the naive log(1/(1 + e**-x)) overflows, and about -e**-x for x -> +inf,
    where it rounds to log(1) = 0. log_sigmoid(x) - log_sigmoid(-x) = x. For x > 745 the
    result is -0.0 (the truth is negative and below every float); at +inf it is log 1 = 0.0.

    >>> log_sigmoid(-1000.0), log_sigmoid(40.0)
    (-1000.0, -4.248354255291589e-18)
    """
    if type(x) is not float:
        return _apply(_LOG_SIGMOID_LIST, x, "log_sigmoid")
    if x == math.inf:
        return 0.0  # log(1); for finite x > 745 the negative truth rounds to -0.0
    return -softplus(-x)


def _logit_exact(p):
    """logit(p) = log(p / (1 - p)) for a float p in (0, 1), below 0.51 ULP."""
    d = p - 0.5  # exact for p >= 0.25 (Sterbenz)
    if -0.00390625 < d < 0.00390625:
        # logit = 2 atanh(u), u = 2p - 1 exact: the series 2u (1 + u**2/3 + ...) has its
        # leading term exact and the rest below 2**-15 of it.
        u = d + d
        v = u * u
        return (u + u) + u * v * (2 / 3 + v * (2 / 5 + v * (2 / 7 + v * (2 / 9 + v * (2 / 11)))))
    p_hi, p_lo = log_dd(p)
    if d > 0.0:
        q_hi, q_lo = log_dd(1.0 - p)  # 1 - p is exact for p >= 1/2
    else:
        s, t = two_sum(1.0, -p)  # 1 - p = s + t exactly
        q_hi, q_lo = log_dd(s)
        q_lo += t / s
    hi, lo = two_sum(p_hi, -q_hi)
    return hi + (lo + (p_lo - q_lo))


def _clamped_logit(eps):
    """The kernel of logit(p, eps): p clamped to [eps, 1 - eps], like torch.logit."""
    e = to_float(eps, "logit", "eps")
    if not 0.0 <= e <= 0.5:
        raise ValueError(f"logit(): eps = {eps!r} must be in [0, 0.5]")
    top = 1.0 - e

    def kernel(p):
        if 0.0 <= p <= 1.0:
            return logit(e if p < e else top if p > top else p)
        return logit(p)  # NaN stays NaN, outside [0, 1] raises

    return kernel


def logit(p, eps=None):
    """Log-odds, the inverse of the sigmoid: logit(p) = log(p / (1 - p)), p in [0, 1].

    Correctly rounded on >99.99% of inputs and within 0.51 ULP everywhere. The naive
    quotient p / (1 - p) rounds twice and 1 - p loses p's low bits below 1/2; instead
    log(p) - log(1 - p) is taken in double-double, with 1 - p exact (for p >= 1/2) or carried
    as a double-double, and near p = 1/2, where the two logs cancel, as 2 atanh(2p - 1) by its
    series, 2p - 1 being exact there. logit(0) = -inf, logit(1) = inf, and
    logit(1 - p) = -logit(p) whenever 1 - p is exact.

    ``eps`` clamps p to [eps, 1 - eps] first, like ``torch.logit``; it must be in [0, 0.5].
    A p outside [0, 1] is an error even with eps.

    >>> logit(1e-300)                   # far in the tail: log(p) - log(1 - p)
    -690.7755278982137
    >>> logit(0.5 + 2.0**-53)           # 2 atanh(2**-52); log(p / (1 - p)) is 1 ULP low
    4.440892098500626e-16
    >>> logit(0.0), logit(1.0, eps=1e-6)
    (-inf, 13.815509557935018)
    """
    if eps is not None:
        return elementwise(_clamped_logit(eps), p, "logit", "p")
    if type(p) is not float:
        return _apply(_LOGIT_LIST, p, "logit", "p")
    if 0.0 < p < 1.0:
        return _logit_exact(p)
    return probability_limit(p, "logit")


def hard_sigmoid(x):
    """Hard sigmoid: min(max(x/6 + 1/2, 0), 1), torch's ``hardsigmoid``; correctly rounded.

    x/6 + 1/2 = (x + 3)/6 rounds twice in floating point (and 1/6 is not a float); here x is
    taken as the exact fraction n/d it is and (n + 3d)/(6d) is divided once, with integers,
    which Python rounds correctly. The hard counterpart of the sigmoid: the same value 1/2
    at 0, a slope of 1/6 there instead of 1/4, and exact saturation for |x| >= 3.

    >>> hard_sigmoid(-3.0), hard_sigmoid(0.0), hard_sigmoid(2.0), hard_sigmoid(1e308)
    (0.0, 0.5, 0.8333333333333334, 1.0)
    """
    if type(x) is not float:
        return _apply(_HARD_SIGMOID_LIST, x, "hard_sigmoid")
    if -3.0 < x < 3.0:
        n, d = x.as_integer_ratio()
        return (n + 3 * d) / (6 * d)
    if x >= 3.0:
        return 1.0
    if x <= -3.0:
        return 0.0
    return x  # NaN


# The list kernels of the functions whose float path is a chain of double-double kernels:
# there the calls inside dominate, and a map over the float path costs no accuracy.
_SIGMOID_GRAD_LIST = _over_list(sigmoid_grad)
_SOFTPLUS_LIST = _over_list(softplus)
_LOG_SIGMOID_LIST = _over_list(log_sigmoid)
_LOGIT_LIST = _over_list(logit)
_HARD_SIGMOID_LIST = _over_list(hard_sigmoid)
