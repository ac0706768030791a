"""Double-double kernels shared by the core: error-free transformations, exp and log.

A double-double is an unevaluated sum hi + lo of two floats with |lo| <= ulp(hi)/2, about
106 significant bits. The core uses them where a float64 result must be right to its last
bit: the error of a few roundings then sits some 50 bits below the one rounding that matters.

* ``two_sum`` and ``two_prod`` return a sum or product together with its rounding error,
  exactly (the error-free transformations of Knuth and Dekker).
* ``dd_mul``, ``dd_div`` and ``ldexp_dd`` combine double-doubles; ``ldexp_dd`` rounds one to
  a float once, subnormal results included.
* ``scaled``, ``scaled_mul``, ``scaled_add``, ``scaled_div`` and ``scaled_to_float`` carry a
  double-double with its binary exponent apart, (hi + lo) * 2**e, so that a product of
  factors that would underflow or overflow on the way (a subnormal loss term times a weight
  of 1e300) keeps all its bits and is rounded once, at the end.
* ``exp_dd`` and ``log_dd`` are table-driven exp and log in double-double, with errors near
  2**-70. Their tables are built at import from exact integer arithmetic (the ``fx_``
  helpers: fixed point with ``FX`` fraction bits), so no constant here is typed in by hand.

Python has no fused multiply-add before 3.13, so products are made exact with Dekker's
splitting. Nothing here handles NaN, infinities or overflow: the callers bound their
arguments first.

The module is private to the core (its names are public so that the core's modules can
share them); the public functions live in elementwise, normal, softmax and losses.

>>> two_sum(1.0, 1e-20)                 # 1 + 1e-20 rounds to 1.0; the rest is kept
(1.0, 1e-20)
>>> two_prod(1.0 + 2.0**-52, 1.0 - 2.0**-52)   # (1 + u)(1 - u) = 1 - u**2 exactly
(1.0, -4.930380657631324e-32)
"""

import math
from math import floor, frexp, ldexp

__all__ = [
    "MANTISSA_BITS", "TWO_53", "SMALLEST_NORMAL", "SMALLEST_SUBNORMAL", "SUBNORMAL_EXPONENT",
    "SPLITTER", "two_sum", "two_prod", "dd_mul", "dd_div", "ldexp_dd",
    "scaled", "scaled_mul", "scaled_add", "scaled_div", "scaled_to_float", "exp_scaled",
    "FX", "FX_ONE", "FX_LN2", "fx_exp", "fx_log_ratio", "fx_to_dd", "fx_to_float",
    "EXP_TABLE_BITS", "EXP_TABLE_SIZE", "EXP_INV_STEP", "EXP_STEP_HI", "EXP_STEP_LO", "EXP_TABLE",
    "EXP_UNDERFLOW", "exp_dd", "LN2_HI", "LN2_LO", "SQRT_HALF", "log_dd",
]

# --- float64 ---------------------------------------------------------------------------------

MANTISSA_BITS = 53  # significant bits of a float64, the hidden bit included
TWO_53 = 2.0 ** 53
SMALLEST_NORMAL = 2.0 ** -1022  # 2.2250738585072014e-308, sys.float_info.min
SUBNORMAL_EXPONENT = -1074  # the subnormals are the multiples of 2**-1074 below SMALLEST_NORMAL
SMALLEST_SUBNORMAL = 2.0 ** SUBNORMAL_EXPONENT  # 5e-324


# --- error-free transformations ---------------------------------------------------------------

# Dekker's splitter 2**27 + 1: SPLITTER * a - (SPLITTER * a - a) is a rounded to its upper 26
# bits, so that a product of two halves has at most 52 bits and is exact.
SPLITTER = 2.0 ** 27 + 1.0


def two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly, for finite a, b whose sum is finite.

    Knuth's TwoSum (The Art of Computer Programming, vol. 2, 3rd ed., section 4.2.2,
    Theorem B; after Moller 1965): six additions and no comparison, so it needs no
    assumption on which of a and b is larger. Underflow cannot spoil it, since a sum of
    floats is exact whenever it is subnormal.

    >>> two_sum(2.0**53, 1.0)           # the 1 falls off the float and comes back as e
    (9007199254740992.0, 1.0)
    """
    s = a + b
    t = s - a
    return s, (a - (s - t)) + (b - t)


def two_prod(a, b):
    """(p, e) with p = fl(a * b) and p + e = a * b exactly.

    Dekker's product (T. J. Dekker, "A floating-point technique for extending the available
    precision", Numerische Mathematik 18 (1971) 224-242, algorithm mul12): a and b are split
    in halves of 26 bits (Veltkamp's splitting, with ``SPLITTER``), whose four partial
    products are exact, and the error of p is gathered from them. Exact as long as nothing
    overflows (|a|, |b| < 2**995, for the splitting) and ulp(a) ulp(b) >= 2**-1074 (the
    error of p is a multiple of it and must be representable: for normal a and b, a product
    above about 2**-968).

    >>> two_prod(0.1, 10.0)             # 0.1 * 10 rounds to 1.0; the float 0.1 is not 1/10
    (1.0, 5.551115123125783e-17)
    """
    p = a * b
    t = SPLITTER * a
    ah = t - (t - a)
    al = a - ah
    t = SPLITTER * b
    bh = t - (t - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def dd_mul(ah, al, bh, bl):
    """(ah + al)(bh + bl) as a double-double, relative error below 2**-103.

    Dekker's mul2 (1971): the product of the heads is exact (``two_prod``), the cross terms
    are added in float, and al * bl (below 2**-106 of the result) is left out.

    >>> dd_mul(3.0, 0.0, 1.0 / 3.0, 1.850371707708594e-17)   # 3 times 1/3 in double-double
    (1.0, 0.0)
    """
    p, e = two_prod(ah, bh)
    e += ah * bl + al * bh
    hi = p + e
    return hi, (p - hi) + e


def dd_div(ah, al, bh, bl):
    """(ah + al) / (bh + bl) as a double-double, relative error below 2**-102.

    Dekker's div2 (1971): q = ah/bh is corrected by the exact remainder of q * bh
    (``two_prod``), which carries the low parts, divided by bh once more.

    >>> dd_div(1.0, 0.0, 3.0, 0.0)      # 1/3 to 106 bits
    (0.3333333333333333, 1.850371707708594e-17)
    """
    q = ah / bh
    p, e = two_prod(q, bh)
    r = (((ah - p) - e) + al - q * bl) / bh
    hi = q + r
    return hi, (q - hi) + r


def ldexp_dd(hi, lo, k):
    """(hi + lo) * 2**k rounded once, also when the result is subnormal.

    ldexp(hi + lo, k) alone would round twice there (first to 53 bits, then to the coarse
    subnormal grid); the residual of that rounding, measured against hi + lo, tells whether
    to step once. The one case it misses: hi lies exactly on a midpoint of the subnormal grid
    and lo is too small (at most half an ULP of half a step) to move the rounded residual off
    that half step, so the tie goes to even whichever way lo leans (see tests/core/test_dd.py).

    >>> x = 1.0 + 2.0**-15             # a midpoint of the subnormal grid, in the scale 2**-1060
    >>> ldexp(x + 2.0**-60, -1060) == ldexp(1.0, -1060)   # the tie goes to even: too low
    True
    >>> ldexp_dd(x, 2.0**-60, -1060) == ldexp(1.0 + 2.0**-14, -1060)
    True
    """
    y = ldexp(hi + lo, k)
    if -SMALLEST_NORMAL < y < SMALLEST_NORMAL:
        r = (hi - ldexp(y, -k)) + lo  # hi - y/2**k is exact: both are within 2**-1074 * 2**-k
        half = ldexp(0.5, SUBNORMAL_EXPONENT - k)  # half a subnormal step, in the scale of hi
        if r > half:
            y += SMALLEST_SUBNORMAL
        elif r < -half:
            y -= SMALLEST_SUBNORMAL
    return y


# --- double-doubles with their exponent apart -------------------------------------------------
# A scaled number is a triple (hi, lo, e) standing for (hi + lo) * 2**e, with 1/2 <= |hi| < 1
# (or hi = 0, or hi not finite and e = 0). The exponent is a Python int, so nothing underflows
# or overflows until ``scaled_to_float`` rounds the value, once.


def scaled(hi, lo=0.0):
    """The double-double hi + lo (a float, or a float and its low part) as a scaled number."""
    if hi == 0.0 or not math.isfinite(hi):
        return hi, 0.0, 0
    m, e = frexp(hi)
    return m, ldexp(lo, -e), e


def _normalized(hi, lo, e):
    s = hi + lo
    if s == 0.0 or not math.isfinite(s):
        return s, 0.0, 0
    lo = (hi - s) + lo
    m, k = frexp(s)
    return m, ldexp(lo, -k), e + k


def scaled_mul(a, b):
    """a * b for scaled numbers a, b; relative error below 2**-102. IEEE rules for 0, inf, NaN.

    >>> scaled_to_float(scaled_mul(scaled(5e-324), scaled(1e300)))   # 4.94e-24, not 5e-24
    4.940656458412466e-24
    """
    if a[0] == 0.0 or b[0] == 0.0 or not (math.isfinite(a[0]) and math.isfinite(b[0])):
        return a[0] * b[0], 0.0, 0
    hi, lo = dd_mul(a[0], a[1], b[0], b[1])  # heads in [1/2, 1): nothing under- or overflows
    return _normalized(hi, lo, a[2] + b[2])


def scaled_div(a, b):
    """a / b for scaled numbers a, b (b nonzero and finite, a finite); relative error below 2**-101."""
    if a[0] == 0.0 or not math.isfinite(a[0]):
        return a[0] / b[0], 0.0, 0
    hi, lo = dd_div(a[0], a[1], b[0], b[1])
    return _normalized(hi, lo, a[2] - b[2])


# Below 2**-120 of the larger addend, the smaller changes a double-double sum by less than its
# own rounding: it is left out.
_ADD_SPAN = 120


def scaled_add(a, b):
    """a + b for scaled numbers a, b; IEEE rules for inf and NaN (inf - inf is NaN)."""
    if not (math.isfinite(a[0]) and math.isfinite(b[0])):
        return a[0] + b[0], 0.0, 0
    if b[0] == 0.0:
        return a
    if a[0] == 0.0:
        return b
    if a[2] < b[2]:
        a, b = b, a
    shift = a[2] - b[2]
    if shift > _ADD_SPAN:
        return a
    s, err = two_sum(a[0], ldexp(b[0], -shift))  # exact: both heads within 2**-121 of 1
    return _normalized(s, err + (a[1] + ldexp(b[1], -shift)), a[2])


def scaled_to_float(a):
    """The scaled number a rounded once to a float: subnormal results included, beyond the
    largest float +-inf.

    >>> scaled_to_float(scaled_mul(scaled(1e300), scaled(1e300)))
    inf
    """
    hi, lo, e = a
    if hi == 0.0 or not math.isfinite(hi):
        return hi
    if e > 1025:  # |hi + lo| >= 1/2: at least 2**1024
        return math.copysign(math.inf, hi)
    if e < -1100:  # below a quarter of the smallest subnormal
        return math.copysign(0.0, hi)
    try:
        return ldexp_dd(hi, lo, e)
    except OverflowError:
        return math.copysign(math.inf, hi)


# --- exact integer arithmetic, used only to build tables at import -----------------------------
# A fixed-point number v stands for v / 2**FX: 192 bits, far more than the 106 of a
# double-double, so the tables are exact to their last bit.

FX = 192
FX_ONE = 1 << FX


def fx_exp(y):
    """exp(y) for a fixed-point 0 <= y <= 1, by its Taylor series (each term truncated)."""
    total = term = FX_ONE
    k = 0
    while term:
        k += 1
        term = (term * y >> FX) // k
        total += term
    return total


def fx_log_ratio(num, den):
    """log(num/den) for positive integers with num/den near 1: 2 atanh((num-den)/(num+den)).

    The atanh series in z = (num - den)/(num + den) gains 2 log2(1/z) bits a term, which is
    why the callers only ever ask for ratios near 1.
    """
    if num < den:
        return -fx_log_ratio(den, num)
    z_num, z_den = num - den, num + den
    term = (z_num << FX) // z_den
    z2_num, z2_den = z_num * z_num, z_den * z_den
    total, k = 0, 1
    while term:
        total += term // k
        term = term * z2_num // z2_den
        k += 2
    return 2 * total


FX_LN2 = fx_log_ratio(2, 1)


def fx_to_dd(v, bits=FX):
    """The value v / 2**bits as a double-double (hi, lo), both correctly rounded."""
    hi = float(v)
    m, k = frexp(hi)
    # v - hi in integers; int(hi) would be exact too, but it is slow for large floats
    lo = float(v - (int(m * TWO_53) << (k - MANTISSA_BITS))) if k > MANTISSA_BITS else 0.0
    return ldexp(hi, -bits), ldexp(lo, -bits)


def fx_to_float(v, bits=FX):
    """The value v / 2**bits, correctly rounded to a float."""
    return ldexp(float(v), -bits)


def _head(v, bits):
    """The fixed-point v rounded down to a multiple of 2**-bits, as a float (exact)."""
    return ldexp(float(v >> (FX - bits)), -bits)


# --- exp in double-double ----------------------------------------------------------------------
# Table-driven, after P. T. P. Tang, "Table-driven implementation of the exponential function
# in IEEE floating-point arithmetic", ACM TOMS 15 (1989) 144-157: exp(x) = 2**m * 2**(j/256) *
# exp(r) with |r| <= ln2/512. The table holds 2**(j/256) in double-double (and its high part
# split for an exact product); exp(r) - 1 is a degree-6 polynomial whose truncation error is
# below 2**-70.

EXP_TABLE_BITS = 8
EXP_TABLE_SIZE = 1 << EXP_TABLE_BITS  # 256 entries: 2**(j/256) for j in [0, 256)
EXP_INV_STEP = EXP_TABLE_SIZE / math.log(2.0)  # 256/ln2: x * EXP_INV_STEP counts steps of ln2/256
_FX_STEP = FX_LN2 // EXP_TABLE_SIZE
# ln2/256 in two pieces, the first rounded to a multiple of 2**-42: with ln2/256 ~ 2**-8.5 it
# has 34 significant bits, so k * EXP_STEP_HI is exact for every |k| < 2**19 (|x| < 1400).
_STEP_HEAD_BITS = 42
EXP_STEP_HI = _head(_FX_STEP + (1 << (FX - _STEP_HEAD_BITS - 1)), _STEP_HEAD_BITS)
EXP_STEP_LO = fx_to_float(_FX_STEP - (int(EXP_STEP_HI * 2.0 ** _STEP_HEAD_BITS) << (FX - _STEP_HEAD_BITS)))


def _build_exp_table():
    """Rows (hi, lo, head, tail): 2**(j/256) = hi + lo, and hi = head + tail split by Dekker."""
    root = fx_exp(_FX_STEP)  # 2**(1/256)
    table, power = [], FX_ONE
    for _ in range(EXP_TABLE_SIZE):
        hi, lo = fx_to_dd(power)
        t = SPLITTER * hi
        head = t - (t - hi)
        table.append((hi, lo, head, hi - head))
        power = power * root >> FX
    return table


EXP_TABLE = _build_exp_table()


# e**x < 2**-1076 for x <= EXP_UNDERFLOW, a quarter of the smallest subnormal: a result of at
# most twice e**x rounds to 0 there, which is why the callers stop here (and exp_dd's domain).
EXP_UNDERFLOW = -746.0


def exp_dd(x):
    """exp(x) as (hi, lo, m): exp(x) = (hi + lo) * 2**m with hi in [2**(-1/512), 2**(1+1/512)),
    relative error below 2**-66.

    The binary exponent m is kept apart, so the result neither overflows nor underflows
    before the caller rounds it (``ldexp_dd``). x must be finite with |x| < 746
    (-``EXP_UNDERFLOW``): there is no overflow handling, the callers bound x.

    >>> hi, lo, m = exp_dd(-745.0)      # e**-745 = 2**-1074.8: over half the smallest subnormal
    >>> m, ldexp_dd(hi, lo, m)
    (-1075, 5e-324)
    """
    k = floor(x * EXP_INV_STEP + 0.5)
    r = x - k * EXP_STEP_HI  # exact: Sterbenz, and k * EXP_STEP_HI is exact
    c = -(k * EXP_STEP_LO)
    s = r + c
    c = (r - s) + c
    r = s  # the reduced argument is r + c, |r| <= ln2/512
    poly = r * r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720)))))
    th, tl, ta, tb = EXP_TABLE[k & (EXP_TABLE_SIZE - 1)]
    # th * r exactly (Dekker, with th pre-split in the table), since it is the first-order
    # term and carries 2**-9.5 weight.
    t = SPLITTER * r
    ra = t - (t - r)
    rb = r - ra
    p = th * r
    pe = ((ta * ra - p) + ta * rb + tb * ra) + tb * rb
    hi = th + p
    lo = (th - hi) + p + (pe + (tl + th * (c + poly) + tl * r))
    s = hi + lo
    return s, (hi - s) + lo, k >> EXP_TABLE_BITS


# --- log in double-double ----------------------------------------------------------------------
# Table-driven in the manner of P. T. P. Tang, "Table-driven implementation of the logarithm
# function in IEEE floating-point arithmetic", ACM TOMS 16 (1990) 378-400: log(x) = e*ln2 -
# log(r_j) + log1p(u), with x = m * 2**e, m in [sqrt(1/2), sqrt(2)), r_j an 11-bit
# approximation of 1/m read from a table (with -log(r_j) in double-double), so that
# u = m*r_j - 1 is exact (m split in a 42-bit head and a short tail) and |u| < 2**-8.9;
# log1p(u) is u plus a degree-8 polynomial, truncated below 2**-80.

# ln2 rounded down to 42 bits: e * LN2_HI is exact for every binary exponent |e| < 2**11.
_LN2_HEAD_BITS = 42
LN2_HI = _head(FX_LN2, _LN2_HEAD_BITS)
LN2_LO = fx_to_float(FX_LN2 - (int(LN2_HI * 2.0 ** _LN2_HEAD_BITS) << (FX - _LN2_HEAD_BITS)))
SQRT_HALF = 0.7071067811865476  # sqrt(1/2) rounded: where m is folded into [sqrt(1/2), sqrt(2))

# Row j of the table serves the m with round(m * 512) = j: j from round(512 sqrt(1/2)) = 362 to
# round(512 sqrt(2)) = 724. r_j = round(1024 / (j/512)) / 1024 has 11 bits, so that a 42-bit
# head of m times r_j is exact.
_LOG_GRID = 512
_LOG_FIRST, _LOG_LAST = 362, 724
_R_SCALE = 1024
# Veltkamp's splitter for a 42-bit head: 2**11 + 1 (42 + 11 = 53).
_SPLITTER_42 = 2.0 ** 11 + 1.0


def _build_log_table():
    # The logs go from one r to the next by log(r'/r), a series that gains 20 bits a term;
    # the walk starts at r = 1 (j = 512) and goes up, then again from 1 and down.
    table = [None] * (_LOG_LAST + 1)
    previous, acc = _R_SCALE, 0
    for j in list(range(_LOG_GRID, _LOG_LAST + 1)) + list(range(_LOG_GRID - 1, _LOG_FIRST - 1, -1)):
        r_int = (2 * _LOG_GRID * _R_SCALE + j) // (2 * j)  # round(_R_SCALE * _LOG_GRID / j)
        acc += fx_log_ratio(r_int, previous)
        previous = r_int
        table[j] = (r_int / _R_SCALE, *fx_to_dd(-acc))
        if j == _LOG_LAST:
            previous, acc = _R_SCALE, 0
    return table


_LOG_TABLE = _build_log_table()


def log_dd(x):
    """log(x) as (hi, lo) for a positive finite float x; absolute error below 2**-70.

    >>> log_dd(2.0)                     # ln 2 = 0.6931471805599453 + 2.3190468138462996e-17
    (0.6931471805599453, 2.31904681384628e-17)
    """
    m, e = frexp(x)
    if m < SQRT_HALF:
        m *= 2.0
        e -= 1
    r, lh, ll = _LOG_TABLE[floor(m * _LOG_GRID + 0.5)]
    t = _SPLITTER_42 * m  # a 42-bit head, so that head * r is exact
    head = t - (t - m)
    u = head * r - 1.0  # exact: head * r is within 2**-8.9 of 1
    v = (m - head) * r  # exact: a short tail times an 11-bit r
    uh, ul = two_sum(u, v)
    tail = uh * uh * (-0.5 + uh * (1 / 3 + uh * (-0.25 + uh * (0.2 + uh * (
        -1 / 6 + uh * (1 / 7 + uh * -0.125))))))
    big = e * LN2_HI
    s1, err1 = two_sum(big, lh)
    s2, err2 = two_sum(s1, uh)
    lo = err1 + err2 + (e * LN2_LO + ll + (ul * (1.0 - uh) + tail))
    hi = s2 + lo
    return hi, (s2 - hi) + lo


# exp_dd keeps k * ln2/256 exact down to about -1419; below, e**x is e**(x + _EXP_STEP) e**-_EXP_STEP.
# Below _EXP_ZERO_BELOW, e**x times the largest two floats (2**2048) and the smallest subnormal
# (2**-1074) is still far below the smallest subnormal: the callers may take it as 0.
_EXP_STEP = 1400.0
_EXP_ZERO_BELOW = -2400.0
_SCALED_ZERO = (0.0, 0.0, 0)


def exp_scaled(x):
    """e**x for a finite x <= 0 as a scaled number (see ``scaled``), relative error near 2**-70;
    0 below -2400.

    >>> scaled_to_float(scaled_mul(exp_scaled(-1000.0), scaled(1e300)))   # e**-1000 is no float
    5.075958897549457e-135
    """
    if x < _EXP_ZERO_BELOW:
        return _SCALED_ZERO
    if x < -_EXP_STEP:  # x + 1400 is exact: a multiple of ulp(x) (at most 2**-41), smaller than x
        return scaled_mul(exp_scaled(x + _EXP_STEP), exp_scaled(-_EXP_STEP))
    hi, lo, k = exp_dd(x)
    s_hi, s_lo, e = scaled(hi, lo)
    return s_hi, s_lo, e + k
