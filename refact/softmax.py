"""Softmax and its relatives along an axis, and the derivatives of softmax for one vector.

    softmax(x)_i     = e^{x_i} / sum_j e^{x_j}
    log_softmax(x)_i = x_i - logsumexp(x)
    logsumexp(x)     = log sum_j e^{x_j}

Why the results are right to the last bits
------------------------------------------
Everything is computed relative to the largest element m of a lane:

    logsumexp(x) = m + log1p(R),   R = sum_{j != argmax} e^{x_j - m},

so no exponential overflows, the largest term is exactly 1 and ``log1p`` keeps the
small terms when the maximum dominates. Three roundings would still cost up to
hundreds of ULPs and are removed:

* ``x_i - m`` is rounded when the two differ in magnitude, and an absolute error
  of 2^-44 in an argument near -700 is a relative error of 2^-44 in its
  exponential. The difference (divided by the temperature) is therefore carried
  as a double-double ``hi + lo`` made with error-free transformations (TwoSum,
  Dekker's product), and e^{hi + lo} = e^{hi} (1 + lo).
* Each exponential is a double-double too (see ``_exps``): the half-ULP errors of a
  rounded math.exp per element all reach the sum, and on rows built so that they fall
  the same way (one element against many equal ones) softmax would be 2.9 ULP off.
* R is summed exactly with ``math.fsum`` and kept as a double-double.

log_softmax_i = (x_i - m) - log1p(R) adds two numbers of the same sign, so it never
cancels (within 2 ULP); softmax_i = e^{x_i - m} / (1 + R) is a quotient of
double-doubles rounded twice (within 1 ULP).
logsumexp = m + log1p(R) does cancel when m < 0 and log1p(R) is close to -m (the
logsumexp of log-probabilities is such a case: its truth is a tiny number); there
the float error of log1p(R) would be amplified without bound, so a lane whose result
falls below the binade of log1p(R) is re-evaluated in ``decimal`` arithmetic, at a
precision raised until the error bound is far below the result (slower: about 20 ms
for 1000 elements).

The common lane, at temperature 1 with a spread max - min of at most 64, takes a quicker
path (``_grid_lane``, 1.7 times as fast): each e^{x_i - c} is a table value on a grid of
1/64 times 1 + expm1 of an exact remainder, in double-double, and the quotient is rounded
once, within 0.62 ULP (argued there). The naive e^{x_i - m} / sum, each exponential a
rounded ``math.exp``, cannot be held to 2 ULP even with the sum exact and the quotient
rounded once: the exponentials' half-ULP errors, one against the mean of the others, reach
2.47 ULP on a row built for glibc's exp (tests/core/test_softmax.py has it).

Conventions (the special values of a lane)
------------------------------------------
* A NaN anywhere in a lane makes every result of that lane NaN.
* One entry equal to +inf (and no NaN): softmax is 1 there and 0 elsewhere,
  log_softmax 0 there and -inf elsewhere, the limit whatever way the entry grows
  (NumPy, SciPy and PyTorch give NaN: inf - inf). Two or more +inf entries have no
  limit (it depends on how they grow): softmax and log_softmax are NaN. logsumexp
  is +inf in both cases.
* A lane that is all -inf has no distribution: softmax and log_softmax are NaN,
  logsumexp is -inf (the log of an empty sum). -inf entries next to a finite
  maximum simply give 0 and -inf.
* An empty lane gives an empty softmax / log_softmax and a logsumexp of -inf, like
  ``scipy.special.logsumexp`` and ``torch.logsumexp``.

Temperature
-----------
``softmax(x, temperature=T)`` is softmax of the exact real numbers x/T: the
differences (x_i - m)/T are formed as double-doubles, so the rounding of x/T never
enters the result. A larger T gives a smoother distribution (its entropy grows with T
towards log n); T -> 0 approaches the one-hot argmax.

References
----------
* P. Blanchard, D. J. Higham and N. J. Higham, "Accurately computing the log-sum-exp and
  softmax functions", IMA Journal of Numerical Analysis 41 (2021) 2311-2330: the shift by
  the maximum, the log1p form of logsumexp used here, and the rounding error analysis of
  both; what this module adds is the removal of the roundings their bounds still count.
* N. J. Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., SIAM (2002),
  chapter 4: summation, and the error-free transformation of a sum that TwoSum is.
* J. R. Shewchuk, "Adaptive precision floating-point arithmetic and fast robust geometric
  predicates", Discrete & Computational Geometry 18 (1997) 305-363: the exact summation
  behind ``math.fsum``.
"""

import decimal
import fractions
import math
from math import expm1, floor, fsum

from ._dd import (
    EXP_INV_STEP, EXP_STEP_HI, EXP_STEP_LO, EXP_TABLE, EXP_TABLE_BITS, EXP_TABLE_SIZE, FX,
    FX_ONE, SPLITTER, dd_div, exp_scaled, fx_exp, fx_to_dd, ldexp_dd, scaled, scaled_div,
    scaled_mul, scaled_to_float, two_prod, two_sum,
)
from ._inputs import check_temperature, from_array, is_float_list, lanes, normalize_axis, to_array
from .elementwise import sigmoid

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_jacobian", "softmax_vjp", "probabilities"]
# softmax_lane, log_softmax_lane, lane_parts and decimal_value are shared with losses.py: public
# names for the core's own modules, not part of the package's API (hence not in __all__).

# exp(x) is a normal float (full precision) for x >= _EXP_NORMAL_MIN; exp(-709) < 2**-1022.
_EXP_NORMAL_MIN = -708.0
# Below this, e^(x - m) / (1 + R) < e^-747 is under half the smallest subnormal: exactly 0.0.
_EXP_ZERO_BELOW = -747.0
# The magnitudes inside which TwoSum and Dekker's product (its splitting included) are exact.
_BIG = 2.0 ** 990
_TINY = 2.0 ** -900
# 2.0**j at index j, for j in [-1100, 200] (negative indices count from the end).
_RESCALE = 200
_POWERS_OF_TWO = [math.ldexp(1.0, j) for j in range(_RESCALE + 1)] + [
    math.ldexp(1.0, j) for j in range(-1100, 0)]
# R below this is summed again, lifted by 2**_RESCALE (see lane_parts).
_RESCALE_BELOW = 2.0 ** -900
_LN2 = math.log(2.0)
_EXP_INDEX_MASK = EXP_TABLE_SIZE - 1  # k & mask: the row of 2**(j/256) in the exp table
# The decimal fallbacks (see decimal_value) try these precisions, in digits, in turn.
_DECIMAL_PRECISIONS = (40, 80, 160, 320, 640, 1280)
_FAR_BELOW_FLOATS = decimal.Decimal("1e-340")


# -- the differences (x_i - m)/t as double-doubles -----------------------------------------

def _exact_scaled_difference(x, y, t):
    """(x - y)/t as a double-double, with fractions: the rare magnitudes where floats overflow."""
    if math.isinf(x) or math.isinf(y):
        return (x - y) / t, 0.0
    exact = (fractions.Fraction(x) - fractions.Fraction(y)) / fractions.Fraction(t)
    try:
        hi = float(exact)
    except OverflowError:
        return (math.inf if exact > 0 else -math.inf), 0.0
    return hi, float(exact - fractions.Fraction(hi))


def _scaled_difference(x, y, t):
    """(hi, lo) with hi + lo = (x - y)/t to a relative error of about 2**-100."""
    if not (abs(x) < _BIG and abs(y) < _BIG and _TINY <= t < _BIG):
        return _exact_scaled_difference(x, y, t)
    d, c = two_sum(x, -y)
    if t == 1.0:
        return d, c
    q = d / t
    if d == 0.0:
        return q, 0.0
    if not (_TINY <= abs(d) and abs(q) < _BIG):
        return _exact_scaled_difference(x, y, t)
    # Dekker: q*t = p + p_err exactly, so (d + c)/t = q + (d - p - p_err + c)/t.
    p, p_err = two_prod(q, t)
    return q, ((d - p) - p_err + c) / t


def _shifted(row, m, t):
    """Lists his, los with his[i] + los[i] = (row[i] - m)/t as double-doubles."""
    if t == 1.0 and abs(m) < _BIG:
        # TwoSum for the whole row at once; a NaN in los marks an element (-inf, or a
        # difference that overflowed) to redo one at a time.
        his = [x - m for x in row]
        los = [(x - (d - (d - x))) - (m + (d - x)) for x, d in zip(row, his)]
        check = sum(los)
        if check - check == 0.0:
            return his, los
        for i, lo in enumerate(los):
            if lo != lo:
                his[i], los[i] = _scaled_difference(row[i], m, t)
        return his, los
    pairs = [_scaled_difference(x, m, t) for x in row]
    return [p[0] for p in pairs], [p[1] for p in pairs]


# -- one lane -------------------------------------------------------------------------------

def _special(row):
    """None for an ordinary lane (no NaN, no +inf, a finite maximum), else its three results.

    Returns (softmax list, log_softmax list, logsumexp) following the module's conventions.
    """
    total = sum(row)
    if total - total == 0.0:  # finite: no NaN and no infinity anywhere
        return None
    n = len(row)
    if any(v != v for v in row):
        return [math.nan] * n, [math.nan] * n, math.nan
    k = row.count(math.inf)
    if k:
        if k > 1:
            return [math.nan] * n, [math.nan] * n, math.inf
        return ([1.0 if v == math.inf else 0.0 for v in row],
                [0.0 if v == math.inf else -math.inf for v in row], math.inf)
    if max(row) == -math.inf:
        return [math.nan] * n, [math.nan] * n, -math.inf
    return None  # finite values whose plain sum overflowed, or -inf next to finite values


def _exps(his, los, shift=0):
    """e^(h + l) * 2**shift for the elements of a shifted lane (h <= 0), as lists heads, tails.

    heads[i] is the value rounded, and heads[i] + tails[i] is it to a relative error
    below 2**-60 wherever it is a normal float: with h + l = k ln2/256 + r, |r| <= ln2/512,
    the exponential is 2**(k >> 8) 2**((k & 255)/256) (1 + expm1(r)), the middle factor a
    double-double from the exp table of ``_dd``, and expm1(r) < 2**-9.5 rounds
    2**9.5 times finer than a float does. A rounded math.exp per element would not do:
    its errors reach the sum, and rows built so that they all fall the same way (many
    equal elements) put a softmax 2.9 ULP off. Below the normal floats the values lose
    bits, and below half the smallest subnormal they are 0.0: ``shift`` lifts them.
    """
    below = _EXP_ZERO_BELOW - shift * _LN2
    heads, tails = [], []
    for h, lo in zip(his, los):
        if h < below:  # -inf included
            heads.append(0.0)
            tails.append(0.0)
            continue
        k = math.floor(h * EXP_INV_STEP + 0.5)
        m = math.expm1((h - k * EXP_STEP_HI) + (lo - k * EXP_STEP_LO))  # h - k*HI is exact
        th, tl, _, _ = EXP_TABLE[k & _EXP_INDEX_MASK]
        rest = tl + th * m
        v = th + rest
        scale = _POWERS_OF_TWO[(k >> EXP_TABLE_BITS) + shift]
        heads.append(v * scale)  # exact while normal
        tails.append(((th - v) + rest) * scale)
    return heads, tails


def lane_parts(row, t):
    """For an ordinary lane: m, his, los, the exponentials as heads + tails (see _exps),
    and R = R_hi + R_lo (see the module doc)."""
    m = max(row)
    his, los = _shifted(row, m, t)
    heads, tails = _exps(his, los)
    top = row.index(m)  # his[top] == 0.0: heads[top] == 1.0 and tails[top] == 0.0 exactly
    r_hi, r_lo = _sum_without(heads, tails, top)
    if r_hi < _RESCALE_BELOW:
        # R is near or below the subnormals, where each term would be rounded on their
        # coarse grid: sum the terms 2**_RESCALE times larger and round R once.
        r_hi = ldexp_dd(*_sum_without(*_exps(his, los, _RESCALE), top), -_RESCALE)
        r_lo = 0.0
    return m, his, los, heads, tails, r_hi, r_lo


def _sum_without(heads, tails, top):
    """The sum of heads[i] + tails[i] over i != top, as a double-double.

    The heads are summed exactly (math.fsum); each tail is below half an ULP of its head,
    so a plain sum of the tails is off by n * 2**-106 of the total at most.
    """
    terms = heads[:top] + heads[top + 1:]
    terms.append(sum(tails))
    hi = math.fsum(terms)
    terms.append(-hi)
    return hi, math.fsum(terms)


def _log1p_dd(r_hi, r_lo):
    """log1p(r_hi + r_lo) as (L, L_lo): the first order term of r_lo is carried separately."""
    return math.log1p(r_hi), r_lo / (1.0 + r_hi)


# -- the grid path: softmax of a lane of moderate spread, at temperature 1 ----------------------

_GRID = 64  # e^(x - c) = e^(-j/64) e^r: a table row per 1/64, and |r| <= 1/128
_GRID_SPAN = 64  # lanes with max - min <= _GRID_SPAN take the grid path
_GRID_ROWS = _GRID * _GRID_SPAN + 2  # j runs over [0, 64 * 64 + 1]
_GRID_MAGNITUDE = 2.0 ** 40  # |max| below this keeps x - k/64 exact (x and k/64 below 2**41)


def _grid_row(j, value):
    """(-j/64, head, low, whole): e^(-j/64) = head + low to 2**-80, head of 26 bits, whole the
    value rounded; ``value`` is e^(-j/64) in fixed point."""
    whole, rest = fx_to_dd(value)
    t = SPLITTER * whole
    head = t - (t - whole)  # Veltkamp: the upper 26 bits, so that head * (26 bits) is exact
    return -j / _GRID, head, (whole - head) + rest, whole


def _build_grid_table():
    # e^(-j/64) down the grid, one fixed-point product a step: the truncations add up to
    # 2**-87 of the smallest value, e^-64 ~ 2**-92.3, far below the 2**-80 the rows promise.
    step = FX_ONE * FX_ONE // fx_exp(FX_ONE // _GRID)  # e^(-1/64)
    table, value = [], FX_ONE
    for j in range(_GRID_ROWS):
        table.append(_grid_row(j, value))
        value = value * step >> FX
    return table


_GRID_TABLE = _build_grid_table()


def _grid_lane(row, m):
    """softmax of an ordinary lane at temperature 1 with |m| < 2**40 and max - min <= 64.

    The lane is shifted by c = k/64, the grid point nearest its maximum m (any shift gives
    the same softmax, and this one costs no rounding): for each x, with j = round(64 (c - x)),
    e^(x - c) = e^(-j/64) e^r, r = x - (k - j)/64. The table holds e^(-j/64) = head + low to
    2**-80 (head of 26 bits), r is exact (x and (k - j)/64 are within 1/128 of each other and
    below 2**41; for |x| < 1/128 it is x itself) and |r| <= 1/128, so e^(x - c) = head + tail
    with tail = low + e^(-j/64) expm1(r), |tail| < 2**-6.9 head. With S the sum of all heads
    and tails as a double-double and q = 1/S = q_hi + q_lo, q_hi of 26 bits,

        softmax_i = head_i q_hi + (tail_i q + head_i q_lo),

    in which head_i q_hi is exact (26 + 26 bits), so the final addition is the one rounding
    at full weight.

    What each rounding costs, relative to the result (u = 2**-53, half an ULP at 1):

    * e^(x - c) = head + tail is within 0.04 u of its truth: the libm's expm1 (assumed within
      1 ULP of |expm1(r)| < 2**-6.99: 2**-59), the rounded whole e^(-j/64) in
      whole * expm1(r) (2**-60), the product and the sum that make tail (2**-60 each), the
      table (2**-80). The error of expm1, the one a libm decides, is scaled down by 2**-6.
    * S: the heads are summed exactly (``fsum``, and a second ``fsum`` for the residual of
      that sum), the tails, below 2**-6.9 of their heads, by ``fsum`` rounded once (2**-60 of
      S): S is within 0.04 u (its parts) + 0.01 u of the truth.
    * q_hi + q_lo = 1/S to 2**-76; the small part tail q + head q_lo, under 2**-6.9 of the
      result, adds three roundings of at most 2**-59.9 each: 0.03 u.
    * the final addition rounds once: half an ULP.

    So before the last rounding the value is within 0.04 u + 0.05 u + 0.03 u = 0.12 u of the
    truth t, that is within 0.12 ULP (t < 2**53 ULPs of t), and the result is within
    0.62 ULP. As 0.12 u < u, a value just below a power of two cannot round to the float
    above it (2 ULPs away), so the bound holds across binades too. Every result is a normal
    float: y >= e^-64.02 / (1.01 n).
    """
    table, grid = _GRID_TABLE, _GRID
    k = floor(m * grid + 0.5)
    c = k / grid
    top = k + 0.5  # j = floor(top - 64 x) is in [0, 64 * 64 + 1]
    parts = []  # head_0, tail_0, head_1, tail_1, ...
    add = parts.extend
    for x in row:
        a, head, low, whole = table[floor(top - x * grid)]
        add((head, low + whole * expm1(x - (a + c))))  # a + c = (k - j)/64 exactly
    heads, tails = parts[::2], parts[1::2]
    s_heads = fsum(heads)
    heads.append(-s_heads)
    s, s_lo = two_sum(s_heads, fsum(tails))
    s_lo += fsum(heads)  # the residual of the heads' sum
    heads.pop()
    q = 1.0 / s
    t = SPLITTER * q
    q_hi = t - (t - q)
    p, p_err = two_prod(s, q_hi)
    q_lo = (((1.0 - p) - p_err) - s_lo * q_hi) / s  # 1 - p is exact: p is within 2**-25 of 1
    q = q_hi + q_lo
    return [head * q_hi + (tail * q + head * q_lo) for head, tail in zip(heads, tails)]


def softmax_lane(row, t):
    """softmax(row / t) of one lane (a list of floats), as a list; see the module doc."""
    if not row:
        return []
    special = _special(row)
    if special is not None:
        return special[0]
    if t == 1.0:
        m = max(row)
        if -_GRID_MAGNITUDE < m < _GRID_MAGNITUDE and m - min(row) <= _GRID_SPAN:
            return _grid_lane(row, m)
    _, his, los, heads, tails, r_hi, r_lo = lane_parts(row, t)
    s_hi, s_lo = two_sum(1.0, r_hi)  # S = 1 + R as a double-double
    s_lo += r_lo
    sigma = s_lo / s_hi
    # (head + tail)/(s_hi (1 + sigma)) to first order; head / s_hi is the one rounding
    # left at full weight, so each result is within 1 ULP.
    out = [head / s_hi + (tail - head * sigma) / s_hi for head, tail in zip(heads, tails)]
    if min(his) < _EXP_NORMAL_MIN:
        for i, (h, lo) in enumerate(zip(his, los)):
            if h < _EXP_ZERO_BELOW:
                out[i] = 0.0
            elif h < _EXP_NORMAL_MIN:
                # Subnormal or nearly: computed 2**_RESCALE times larger, so that it is
                # rounded at full precision first and on the subnormal grid once.
                (head,), (tail,) = _exps([h], [lo], _RESCALE)
                out[i] = math.ldexp(head / s_hi + (tail - head * sigma) / s_hi, -_RESCALE)
    return out


def log_softmax_lane(row, t):
    """log_softmax(row / t) of one lane (a list of floats), as a list; see the module doc."""
    if not row:
        return []
    special = _special(row)
    if special is not None:
        return special[1]
    _, his, los, _, _, r_hi, r_lo = lane_parts(row, t)
    big, small = _log1p_dd(r_hi, r_lo)
    # (h - big) + (lo - small) with h - big by TwoSum, inlined: h <= 0 and -big <= 0, so
    # nothing cancels and the double-double is rounded once.
    out = [(s := h - big) + (((h - (s - (z := s - h))) + (-big - z)) + (lo - small))
           for h, lo in zip(his, los)]
    if big == 0.0 and len(row) - row.count(-math.inf) > 1:
        # R underflowed but is not 0 (a finite entry besides the maximum): at the maximum
        # the truth is -log1p(R) < 0, whose rounding is -0.0
        out = [-0.0 if v == 0.0 else v for v in out]
    if -math.inf in his:  # an entry of -inf, or (x - m)/T beyond the floats
        out = [-math.inf if h == -math.inf else v for h, v in zip(his, out)]
    return out


def _logsumexp_lane(row):
    if not row:
        return -math.inf
    special = _special(row)
    if special is not None:
        return special[2]
    m, _, _, _, _, r_hi, r_lo = lane_parts(row, 1.0)
    big, small = _log1p_dd(r_hi, r_lo)
    s, err = two_sum(m, big)
    if m < 0.0 and math.ulp(s) < math.ulp(big):
        # m + log1p(R) fell below the binade of log1p(R): its error (from the rounded
        # exponentials in R) would count double or more in the result's ULPs.
        return _decimal_logsumexp(row, m)
    return s + (err + small)


# -- the decimal fallback -------------------------------------------------------------------

def decimal_value(evaluate):
    """float(value) of ``value, scale = evaluate()`` run under growing decimal precisions.

    ``scale`` bounds the absolute error of the evaluation at p digits by 10**-p * scale
    (it counts the magnitudes gone through and the number of roundings); the value is
    accepted once it stands 18 digits above that, more than a float needs, or when that
    is far below the smallest float. A value lost entirely to cancellation or absorption
    (1 + 1e-100 == 1 at 40 digits) is therefore never mistaken for the answer.
    """
    for precision in _DECIMAL_PRECISIONS:
        with decimal.localcontext(decimal.Context(prec=precision)):
            value, scale = evaluate()
            error = scale.scaleb(18 - precision)
            if abs(value) >= error or error < _FAR_BELOW_FLOATS:
                break
    return float(value)


def _decimal_logsumexp(row, m):
    """logsumexp of a finite-maximum lane in decimal arithmetic (the cancelling case)."""
    top = decimal.Decimal(m)
    values = [decimal.Decimal(v) for v in row if v != -math.inf]

    def evaluate():
        return top + sum((v - top).exp() for v in values).ln(), abs(top) + len(values) + 1

    return decimal_value(evaluate)


# -- along an axis --------------------------------------------------------------------------

def _along_axis(x, axis, function, kernel, keep_axis=True, argument="x"):
    """Apply a lane kernel to every 1-D slice of ``x`` along ``axis``; nest the result back."""
    if is_float_list(x):  # exactly floats: a float subclass is converted by to_array
        normalize_axis(axis, 1, function)  # validates the axis of a flat list of floats
        return kernel(x)
    shape, flat = to_array(x, function, argument)
    ax = normalize_axis(axis, len(shape), function)
    rows = (flat[lane.start:lane.stop] if lane.step == 1 else [flat[i] for i in lane]
            for lane in lanes(shape, ax))
    if not keep_axis:
        return from_array(shape[:ax] + shape[ax + 1:], list(map(kernel, rows)))
    out = [0.0] * len(flat)
    for lane, row in zip(lanes(shape, ax), rows):
        out[lane.start:lane.stop:lane.step] = kernel(row)
    return from_array(shape, out)


def softmax(x, axis=-1, temperature=1.0):
    """softmax(x / T) along ``axis``: e^{x_i/T} / sum_j e^{x_j/T}.

    ``x`` is a sequence of numbers or a rectangular nesting of any depth; the result
    has the same nesting, as lists. Each lane sums to 1 (to within the rounding of its
    elements, each within 1 ULP), softmax(x + c) = softmax(x), and for two classes
    softmax([0, z])[1] = sigmoid(z). A larger temperature gives a smoother distribution:
    its entropy grows with T, towards log n.

    Stable: computed as e^{x_i - m} / (1 + R) with m the lane's maximum, the
    differences (x_i - m)/T carried to double-double precision and R summed exactly
    (see the module documentation, which also states the special values: +inf
    entry takes all the mass, several are NaN, as is an all -inf lane).

    An element whose true value is below half the smallest subnormal is 0.0 exactly,
    as in the seed's example, where the truth at -10000 is about 1.34e-4345:

    >>> softmax([1, 2, 3, 4, -3, -4, -2, -10000])[-1]
    0.0
    >>> softmax([[0.0, 0.0], [0.0, -math.inf]], axis=1)
    [[0.5, 0.5], [1.0, 0.0]]

    Raises ValueError for a scalar, a ragged nesting, a bad axis or a temperature
    that is not finite and > 0; TypeError for a non-number.
    """
    t = check_temperature(temperature, "softmax")
    return _along_axis(x, axis, "softmax", lambda row: softmax_lane(row, t))


def log_softmax(x, axis=-1, temperature=1.0):
    """log softmax(x / T) along ``axis``: (x_i - m)/T - log1p(sum_{j != argmax} e^{(x_j - m)/T}).

    Both terms are <= 0, so there is no cancellation; (x_i - m)/T is a double-double,
    which keeps the result within 2 ULP even where x_i - m is not representable. The
    value stays finite (and exact) far beyond where softmax underflows to 0:

    >>> log_softmax([1, 2, 3, 4, -3, -4, -2, -10000])[-1]
    -10004.442586111712

    Special values follow the module's conventions (one +inf entry: 0 there and -inf
    elsewhere; several, or an all -inf lane: NaN). Same arguments and errors as softmax.
    """
    t = check_temperature(temperature, "log_softmax")
    return _along_axis(x, axis, "log_softmax", lambda row: log_softmax_lane(row, t))


def logsumexp(x, axis=-1):
    """log sum_i e^{x_i} along ``axis``, which is dropped (a 1-D input gives a float).

    Computed as m + log1p(sum_{j != argmax} e^{x_j - m}) with m the maximum and the sum
    exact (math.fsum) to double-double precision, so nothing overflows and the terms
    far below the maximum still count. When m < 0 and the two terms cancel (the sum
    falls below the binade of log1p), the lane is evaluated in decimal arithmetic
    instead, so even a result near 0 is within 2 ULP. (The log1p form is the one analysed
    by Blanchard, Higham and Higham, 2021; see the module documentation.)

    >>> logsumexp([1e308, 1e308]) == 1e308
    True
    >>> logsumexp([-10000.0, -10000.0])
    -9999.30685281944
    >>> logsumexp([math.log(0.25), math.log(0.75)])  # not 0: the logs are rounded
    3.114893869255073e-17

    An empty lane gives -inf (the log of an empty sum), a lane with +inf gives +inf, an
    all -inf lane gives -inf and a NaN gives NaN.
    """
    return _along_axis(x, axis, "logsumexp", _logsumexp_lane, keep_axis=False)


def _vector(x, function, argument):
    shape, flat = to_array(x, function, argument)
    if len(shape) != 1:
        got = "a scalar" if not shape else f"{len(shape)}-D input"
        raise ValueError(f"{function}(): {argument} must be a 1-D sequence, got {got}")
    return flat


def softmax_jacobian(x):
    """The Jacobian of softmax at one vector: J_ij = s_i (delta_ij - s_j), as a list of rows.

    The diagonal needs 1 - s_i, which cancels when s_i is close to 1; it is taken as
    the exact sum of the other probabilities for the (at most one) s_i above 1/2.

    >>> softmax_jacobian([0.0, 0.0])
    [[0.25, -0.25], [-0.25, 0.25]]
    >>> softmax_jacobian([0.0, -800.0])[1][1]  # s_1 ~ e^-800 underflows, and so does J_11
    0.0
    """
    s = softmax_lane(_vector(x, "softmax_jacobian", "x"), 1.0)
    jacobian = []
    for i, s_i in enumerate(s):
        rest = math.fsum(s[:i] + s[i + 1:]) if s_i > 0.5 else 1.0 - s_i
        row = [-s_i * s_j for s_j in s]
        row[i] = s_i * rest
        jacobian.append(row)
    return jacobian


# An element of softmax_vjp is accepted when the error bound of v_i - <s, v> is below this
# fraction of it (a quarter of an ULP); otherwise it is evaluated in decimal arithmetic.
_VJP_ACCEPT = 2.0 ** -55
# The exponentials of lane_parts are within 2**-60 of the truth (see _exps), dd_div adds 2**-102.
_EXPS_ERROR = 2.0 ** -59


def softmax_vjp(x, v):
    """The vector-Jacobian product v^T J of softmax at x: s * (v - <s, v>), within 1 ULP.

    The difference v_i - <s, v> is where the naive formula fails: with <s, v> rounded, an
    element whose v_i is close to the mean (v nearly constant, or s nearly one-hot on i)
    keeps only the rounding error, up to 10**16 ULPs off. Here, with c = v at the lane's
    maximum, v_i - <s, v> = (v_i - c) - sum_j s_j (v_j - c) (as sum_j s_j = 1): each
    v_j - c is exact (TwoSum), each s_j a double-double from the lane's exponentials
    (relative error 2**-60) and the products summed exactly (``math.fsum``), so the error
    left is 2**-59 sum_j s_j |v_j - c|. Where that bound is not below a quarter of an ULP
    of the difference, the element is evaluated in decimal arithmetic instead (at a
    precision raised until the result is settled, see ``decimal_value``). The product
    s_i (v_i - <s, v>) is rounded once, with its exponent apart, so subnormal results and
    s_i below the floats times a huge v_i come out right too. Within 1 ULP: a quarter
    for the difference, the rest for s_i and the one rounding.

    >>> softmax_vjp([0.0, 0.0], [1.0, -1.0])
    [0.5, -0.5]
    >>> softmax_vjp([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])[1]  # s = 1/3 each: v_1 is the mean, exactly
    0.0
    >>> softmax_vjp([40.0, 0.0], [1.0, 1.0 + 2.0**-30])[0]  # s_0 = 1 - 4e-18: -s_0 s_1 2**-30
    -3.9565882229167864e-27

    Special lanes (a NaN, a +inf entry, all -inf) and non-finite v use the plain formula
    on softmax's conventions. Raises ValueError if x and v are not 1-D of one length.
    """
    row = _vector(x, "softmax_vjp", "x")
    w = _vector(v, "softmax_vjp", "v")
    if len(w) != len(row):
        raise ValueError(f"softmax_vjp(): x and v must have the same length, got {len(row)} and {len(w)}")
    if not row:
        return []
    if _special(row) is not None or not all(map(math.isfinite, w)):
        s = softmax_lane(row, 1.0)
        dot = _total_or_nan(s_i * w_i for s_i, w_i in zip(s, w))
        return [s_i * (w_i - dot) for s_i, w_i in zip(s, w)]
    reference = max(map(abs, w))
    if reference == 0.0:
        return [0.0] * len(row)
    # v_j 2**-shift lies in (-1, 1): the products below are exact (Dekker's splitting needs
    # magnitudes below 2**995) and the vjp is linear in v; shift goes back in the exponent.
    shift = math.frexp(reference)[1]
    scaled_v = [math.ldexp(w_j, -shift) for w_j in w]
    m, his, los, heads, tails, r_hi, r_lo = lane_parts(row, 1.0)
    s_hi, s_lo = two_sum(1.0, r_hi)  # S = 1 + R as a double-double
    s_lo += r_lo
    c = scaled_v[row.index(m)]
    deltas = [two_sum(w_j, -c) for w_j in scaled_v]  # exact
    probabilities = [dd_div(head, tail, s_hi, s_lo) for head, tail in zip(heads, tails)]
    parts, spread, lost = [], 0.0, 0.0
    for (p, p_lo), (d, d_lo) in zip(probabilities, deltas):
        a, a_lo = two_prod(p, d)
        parts += (a, a_lo, p * d_lo + p_lo * d)
        spread += p * abs(d)
        if p < _TINY:  # s_j rounded on the subnormal grid, or lost: at most 2**-900 |v_j - c|
            lost += abs(d)
    dot = fsum(parts)
    parts.append(-dot)
    dot_lo = fsum(parts)
    # Besides the exponentials' error: v_j 2**-shift and the products are exact down to an
    # absolute 2**-1074 each, and the low parts of the products add 2**-104 of the spread.
    error = _EXPS_ERROR * spread + _TINY * lost + len(row) * 2.0 ** -1070
    out, exact = [], None
    for i, ((d, d_lo), h, lo) in enumerate(zip(deltas, his, los)):
        diff, diff_lo = two_sum(d, -dot)
        diff_lo += d_lo - dot_lo
        if error > _VJP_ACCEPT * abs(diff):
            exact = exact or _DecimalVjp(row, w)
            out.append(exact.element(i))
            continue
        s_i = scaled_mul(exp_scaled(h), scaled(1.0, lo)) if h < _EXP_NORMAL_MIN else scaled(*probabilities[i])
        if h < _EXP_NORMAL_MIN:
            s_i = scaled_div(s_i, scaled(s_hi, s_lo))
        d_hi, d_lo, e = scaled(diff, diff_lo)
        out.append(scaled_to_float(scaled_mul(s_i, (d_hi, d_lo, e + shift))))
    return out


def _total_or_nan(values):
    try:
        return fsum(values)
    except (ValueError, OverflowError):  # inf - inf, or a partial sum beyond the floats
        return math.nan


class _DecimalVjp:
    """Elements of softmax_vjp(row, w) in decimal arithmetic (the cancelling ones): the lane's
    probabilities and <s, v> are computed once per precision and shared by the elements."""

    def __init__(self, row, w):
        self.top = decimal.Decimal(max(row))
        self.xs = [decimal.Decimal(x) for x in row]
        self.vs = [decimal.Decimal(v) for v in w]
        self.largest = max(abs(v) for v in self.vs)
        self.lanes = {}

    def _lane(self):
        precision = decimal.getcontext().prec
        if precision not in self.lanes:
            e = [(x - self.top).exp() for x in self.xs]
            total = sum(e)
            s = [e_j / total for e_j in e]
            self.lanes[precision] = s, sum(s_j * v_j for s_j, v_j in zip(s, self.vs))
        return self.lanes[precision]

    def element(self, i):
        def evaluate():
            s, dot = self._lane()
            # each step rounds at 10**-p relative: the difference v_i - <s, v> is off by at
            # most (n + 4) (max |v| + |<s, v>|) 10**-p, s_i by (n + 4) 10**-p relative
            scale = s[i] * (len(s) + 4) * (self.largest + abs(dot) + 1)
            return s[i] * (self.vs[i] - dot), scale

        return decimal_value(evaluate)


def probabilities(logits, multi_label=False):
    """Class probabilities from logits: softmax over classes, or sigmoid per class.

    * Multi-class (``multi_label=False``, one of C classes is true): softmax along the
      last axis; each row sums to 1.
    * Multi-label (``multi_label=True``, each label independently on or off): sigmoid
      of every logit; a row need not sum to 1, and a scalar logit is allowed.

    This is the seed's ``sigmoid(logits) if is_multi_label else softmax(logits)``. For
    two classes the two agree: softmax([0, z])[1] = sigmoid(z).

    >>> probabilities([0.0, 0.0])
    [0.5, 0.5]
    >>> probabilities([0.0, 0.0], multi_label=True)
    [0.5, 0.5]
    >>> probabilities([-800.0, 800.0], multi_label=True)[0]  # e^-800 is below every float
    0.0
    """
    if multi_label not in (True, False):
        raise TypeError(f"probabilities(): multi_label must be True or False, not {multi_label!r}")
    if multi_label:
        shape, flat = to_array(logits, "probabilities", "logits")  # errors name this function
        return from_array(shape, sigmoid(flat))
    return _along_axis(logits, -1, "probabilities", lambda row: softmax_lane(row, 1.0), argument="logits")
