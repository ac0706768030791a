"""Binary floating-point formats, and exact rounding into them with integers.

Four formats are measured: ``float64``, ``float32``, ``float16`` and ``bfloat16``.
A value of any of them is carried in Python as the *exactly equal* Python float
(every float32, float16 and bfloat16 number is a float64 number), so no numpy
scalar types are needed and a value can be compared, hashed and printed as usual.

Rounding is done once, here, by :func:`round_to_format`: round-to-nearest-even of
an exact value (a float, int, :class:`fractions.Fraction` or mpmath ``mpf``) with
integer arithmetic only. It handles subnormals (the spacing stops shrinking below
the smallest normal), ties to even, overflow to ±inf (everything at or beyond the
midpoint between the largest finite number and ``2**(emax+1)``), and the sign of
zero (a negative value too small to represent rounds to ``-0.0``). It does not
cast through numpy: casting chains like float64 -> float16 round twice and can be
off by one step, and numpy cannot take an mpmath value at all.

>>> round_to_format(Fraction(1, 3), FLOAT16)
0.333251953125
>>> round_to_format(Fraction(-1, 10**9), FLOAT16)
-0.0
>>> bits_hex(1.0, FLOAT16), bits_hex(1.0, BFLOAT16)
('0x3c00', '0x3f80')
"""

import math
import random
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from refact.backends.base import FORMATS as FORMAT_NAMES

__all__ = [
    "Format", "FLOAT64", "FLOAT32", "FLOAT16", "BFLOAT16", "FORMATS", "get_format",
    "round_to_format", "round_dyadic", "is_representable", "exact_fraction", "dyadic_parts",
    "floor_log2", "same_value",
    "to_bits", "from_bits", "bits_hex", "pattern_hex", "from_bits_hex", "exact_hex", "parse_exact_hex",
    "parse_exact_hex_dyadic",
    "ordinal", "from_ordinal", "next_up", "next_down", "ulp", "ulp_exponent",
    "all_values", "random_finite",
    "round_to_format_array", "ulp_array", "binade_exponent_array", "float64_exponent", "sorted_unique",
    "power_of_two", "scaled_by_ulp", "from_scaled",
    "values_of_bits", "bits_of_values", "native_array", "ordinals_of_bits", "bits_of_ordinals",
]


@dataclass(frozen=True)
class Format:
    """An IEEE-754-style binary format: ``precision`` significand bits (the hidden bit
    included), ``exponent_bits`` exponent bits, and ``width`` bits in total.

    ``emin``/``emax`` are the exponents of the smallest and largest normal binades,
    so the smallest normal number is ``2**emin`` and the subnormal spacing (which is
    also the smallest subnormal) is ``2**(emin - precision + 1)``.
    """

    name: str
    width: int
    exponent_bits: int
    precision: int

    @property
    def bias(self):
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def emax(self):
        return self.bias

    @property
    def emin(self):
        return 1 - self.bias

    @property
    def mantissa_bits(self):
        """Stored fraction bits (the hidden bit excluded)."""
        return self.precision - 1

    @property
    def largest_finite(self):
        return math.ldexp((1 << self.precision) - 1, self.emax - self.precision + 1)

    @property
    def smallest_normal(self):
        return math.ldexp(1.0, self.emin)

    @property
    def smallest_subnormal(self):
        return math.ldexp(1.0, self.emin - self.precision + 1)

    @property
    def largest_subnormal(self):
        return self.smallest_normal - self.smallest_subnormal

    subnormal_spacing = smallest_subnormal

    @property
    def epsilon(self):
        """Spacing of the format at 1 (``2**(1 - precision)``)."""
        return math.ldexp(1.0, 1 - self.precision)

    @property
    def overflow_threshold(self):
        """The smallest magnitude that rounds to infinity, as an exact Fraction:
        the midpoint between the largest finite value and ``2**(emax+1)``."""
        return Fraction(2) ** self.emax * (2 - Fraction(1, 2 ** self.precision))

    def round(self, value):
        """Shorthand for :func:`round_to_format` in this format."""
        return round_to_format(value, self)

    def __repr__(self):
        return f"Format({self.name!r}, p={self.precision}, emin={self.emin}, emax={self.emax})"


FLOAT64 = Format("float64", 64, 11, 53)
FLOAT32 = Format("float32", 32, 8, 24)
FLOAT16 = Format("float16", 16, 5, 11)
BFLOAT16 = Format("bfloat16", 16, 8, 8)
#: Every format by name, in the project's one list of format names (the backends' own,
#: which map them to dtypes); each name must have its layout above.
_LAYOUTS = {f.name: f for f in (FLOAT64, FLOAT32, FLOAT16, BFLOAT16)}
FORMATS = {name: _LAYOUTS[name] for name in FORMAT_NAMES}


def get_format(fmt):
    """A :class:`Format` from itself or its name (``"float32"``); ValueError otherwise."""
    if isinstance(fmt, Format):
        return fmt
    try:
        return FORMATS[getattr(fmt, "name", fmt)]  # a Format of another import of this module too
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}"
        ) from None


# --- exact values -------------------------------------------------------------------
#
# Every exact input is reduced to one of
#   ("nan",) | ("inf", negative) | ("zero", negative)
#   | ("dyadic", negative, man, exp)          value = man * 2**exp, man > 0
#   | ("rational", negative, num, den)       value = num / den, den not a power of 2


def _parts(value):
    if isinstance(value, float):
        if value != value:
            return ("nan",)
        negative = math.copysign(1.0, value) < 0
        if value == 0.0:
            return ("zero", negative)
        if math.isinf(value):
            return ("inf", negative)
        num, den = abs(value).as_integer_ratio()
        return ("dyadic", negative, num, 1 - den.bit_length())
    mpf = getattr(value, "_mpf_", None)
    if mpf is not None:
        sign, man, exp, bc = mpf
        if not man:
            if bc == 0:
                return ("zero", False)  # mpmath has no signed zero
            if bc == -1:
                return ("nan",)
            return ("inf", bool(sign))
        return ("dyadic", bool(sign), int(man), int(exp))
    if isinstance(value, bool):
        raise TypeError("a bool is not a number here")
    if isinstance(value, int):
        return ("zero", False) if value == 0 else ("dyadic", value < 0, abs(value), 0)
    if isinstance(value, Fraction):
        if value == 0:
            return ("zero", False)
        num, den = abs(value.numerator), value.denominator
        if den & (den - 1) == 0:
            return ("dyadic", value < 0, num, 1 - den.bit_length())
        return ("rational", value < 0, num, den)
    raise TypeError(f"cannot take the exact value of {type(value).__name__} {value!r}")


def exact_fraction(value):
    """The exact value of a finite float/int/Fraction/mpf as a Fraction (ValueError
    for NaN and infinities; a signed zero becomes 0)."""
    parts = _parts(value)
    kind = parts[0]
    if kind == "zero":
        return Fraction(0)
    if kind == "dyadic":
        _, negative, man, exp = parts
        magnitude = Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp)
        return -magnitude if negative else magnitude
    if kind == "rational":
        _, negative, num, den = parts
        return Fraction(-num if negative else num, den)
    raise ValueError(f"{value!r} has no finite exact value")


def dyadic_parts(value):
    """``(man, exp)`` with ``value == man * 2**exp`` (``man`` a signed int; ``(0, 0)``
    for zero) for a finite dyadic value; ``None`` for a non-dyadic Fraction."""
    parts = _parts(value)
    kind = parts[0]
    if kind == "zero":
        return (0, 0)
    if kind == "dyadic":
        _, negative, man, exp = parts
        return (-man if negative else man, exp)
    if kind == "rational":
        return None
    raise ValueError(f"{value!r} is not finite")


def floor_log2(value):
    """``floor(log2(|value|))`` for a finite nonzero exact value, exactly."""
    parts = _parts(value)
    if parts[0] == "dyadic":
        return parts[2].bit_length() - 1 + parts[3]
    if parts[0] == "rational":
        return _floor_log2_rational(parts[2], parts[3])
    raise ValueError(f"floor_log2 needs a finite nonzero value, got {value!r}")


def _floor_log2_rational(num, den):
    e = num.bit_length() - den.bit_length()
    if (num << max(-e, 0)) < (den << max(e, 0)):
        e -= 1
    return e


# --- the one rounding routine ---------------------------------------------------------


def _round_magnitude(man, exp, sticky, fmt):
    """Round ``man * 2**exp`` (plus, if ``sticky``, a positive amount below ``2**exp``)
    to ``fmt`` with ties to even; return the magnitude as a float (maybe inf).

    ``sticky`` matters only at an exact tie, which it breaks upwards; callers that pass
    it guarantee at least two bits below the rounding position, so it is never lost.
    """
    e = man.bit_length() - 1 + exp  # floor(log2(value)); sticky cannot change it
    if e > fmt.emax:
        return math.inf  # checked first: mpmath exponents can be astronomically large
    q = max(e, fmt.emin) - fmt.precision + 1  # exponent of the ulp at the value
    shift = q - exp
    if shift > man.bit_length():
        return 0.0  # below half the smallest subnormal (and never a tie)
    if shift <= 0:
        m = man << -shift
    else:
        m = man >> shift
        rem = man & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and (sticky or m & 1)):
            m += 1
    if m.bit_length() - 1 + q > fmt.emax:  # at or past 2**(emax+1)
        return math.inf
    return math.ldexp(m, q)


def round_to_format(value, fmt):
    """Round an exact value (float, int, Fraction or mpmath mpf) to nearest, ties to
    even, in ``fmt``; return the result as the exactly equal Python float.

    NaN stays NaN, ±inf stays ±inf, a finite value at or beyond the overflow
    threshold becomes ±inf, and a value that rounds to zero keeps its sign.
    mpmath has no signed zero, so an mpf zero gives ``+0.0``.
    """
    fmt = get_format(fmt)
    parts = _parts(value)
    kind = parts[0]
    if kind == "nan":
        return math.nan
    if kind in ("zero", "inf"):
        magnitude = 0.0 if kind == "zero" else math.inf
        return -magnitude if parts[1] else magnitude
    if kind == "dyadic":
        _, negative, man, exp = parts
        magnitude = _round_magnitude(man, exp, False, fmt)
    else:
        # A non-dyadic rational: take p+3 quotient bits below its leading bit and
        # keep the remainder as a sticky bit; that decides every tie exactly.
        _, negative, num, den = parts
        e = _floor_log2_rational(num, den)
        if e > fmt.emax or e < fmt.emin - fmt.precision - 1:
            magnitude = math.inf if e > fmt.emax else 0.0
            return -magnitude if negative else magnitude
        exp = e - fmt.precision - 2
        scaled_num = num << -exp if exp < 0 else num
        scaled_den = den if exp < 0 else den << exp
        man, rem = divmod(scaled_num, scaled_den)
        magnitude = _round_magnitude(man, exp, rem != 0, fmt)
    return -magnitude if negative else magnitude


def round_dyadic(man, exp, fmt):
    """Round ``man * 2**exp`` (``man`` a signed int) to ``fmt``: the integer entry to
    the same rounding as :func:`round_to_format`, for callers holding integers."""
    fmt = get_format(fmt)
    if not man:
        return 0.0
    magnitude = _round_magnitude(abs(man), exp, False, fmt)
    return -magnitude if man < 0 else magnitude


def is_representable(x, fmt):
    """True if the float ``x`` is exactly a value of ``fmt`` (NaN and ±inf count)."""
    if not isinstance(x, float):
        return False
    try:
        to_bits(x, fmt)
    except ValueError:
        return False
    return True


def same_value(a, b):
    """Identity of floats as format values: NaN equals NaN, and -0.0 differs from 0.0."""
    if a != a or b != b:
        return a != a and b != b
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


# --- bit patterns ---------------------------------------------------------------------


def to_bits(x, fmt):
    """The bit pattern (an int) of the ``fmt`` value ``x``; NaN gives the canonical
    quiet NaN (payloads and NaN signs are not carried by Python floats). ValueError
    if ``x`` is not a value of ``fmt``."""
    fmt = get_format(fmt)
    if not isinstance(x, float):
        raise TypeError(f"expected a float, got {type(x).__name__} {x!r}")
    exponent_all_ones = (1 << fmt.exponent_bits) - 1
    fraction_bits = fmt.mantissa_bits
    if x != x:
        return (exponent_all_ones << fraction_bits) | (1 << (fraction_bits - 1))
    sign = (1 << (fmt.width - 1)) if math.copysign(1.0, x) < 0 else 0
    a = abs(x)
    if a == math.inf:
        return sign | (exponent_all_ones << fraction_bits)
    if a == 0.0:
        return sign
    e = math.frexp(a)[1] - 1
    # Scaling by a power of two is exact, so the significand is integral iff x has no
    # bits below the format's last place.
    if e >= fmt.emin:
        significand = math.ldexp(a, fraction_bits - e)
        if e <= fmt.emax and significand == int(significand):
            return sign | ((e + fmt.bias) << fraction_bits) | (int(significand) - (1 << fraction_bits))
    else:
        significand = math.ldexp(a, fraction_bits - fmt.emin)
        if significand == int(significand):
            return sign | int(significand)
    raise ValueError(f"{x!r} ({x.hex()}) is not a {fmt.name} value")


def from_bits(bits, fmt):
    """The value (a Python float) of the bit pattern ``bits`` in ``fmt``."""
    fmt = get_format(fmt)
    if not 0 <= bits < (1 << fmt.width):
        raise ValueError(f"bit pattern {bits:#x} does not fit in {fmt.width} bits")
    fraction_bits = fmt.mantissa_bits
    negative = bits >> (fmt.width - 1)
    biased = (bits >> fraction_bits) & ((1 << fmt.exponent_bits) - 1)
    fraction = bits & ((1 << fraction_bits) - 1)
    if biased == (1 << fmt.exponent_bits) - 1:
        value = math.nan if fraction else math.inf
    elif biased == 0:
        value = math.ldexp(fraction, fmt.emin - fraction_bits)
    else:
        value = math.ldexp(fraction | (1 << fraction_bits), biased - fmt.bias - fraction_bits)
    return -value if negative and value == value else value


def bits_hex(x, fmt):
    """The bit pattern of ``x`` in ``fmt`` as fixed-width hex, e.g. ``'0x3c00'``."""
    return pattern_hex(to_bits(x, fmt), fmt)


def pattern_hex(bits, fmt):
    """A bit pattern (an integer) of ``fmt`` as fixed-width hex, e.g. ``'0x3c00'``."""
    return f"0x{int(bits):0{get_format(fmt).width // 4}x}"


def from_bits_hex(text, fmt):
    """Inverse of :func:`bits_hex`."""
    return from_bits(int(text, 16), fmt)


# --- exact hex ------------------------------------------------------------------------


def exact_hex(value):
    """An exact hex string of any exact value, readable by :func:`parse_exact_hex`
    (and, when the value is a float, by ``float.fromhex``).

    Floats use ``float.hex``; other dyadic values use the same notation with as
    many hex digits as their significand needs, e.g. ``'0x1.2ab3f0c5p-14427'``.
    Non-dyadic Fractions have no finite hex form (ValueError).
    """
    if isinstance(value, float):
        return value.hex()
    parts = _parts(value)
    kind = parts[0]
    if kind == "nan":
        return "nan"
    if kind == "inf":
        return "-inf" if parts[1] else "inf"
    if kind == "zero":
        return "-0x0.0p+0" if parts[1] else "0x0.0p+0"
    if kind == "rational":
        raise ValueError(f"{value!r} is not dyadic: it has no finite hex form")
    _, negative, man, exp = parts
    tail_bits = man.bit_length() - 1
    e = exp + tail_bits
    tail = man - (1 << tail_bits)
    digits = (tail_bits + 3) // 4
    tail <<= 4 * digits - tail_bits
    text = f"0x1.{tail:0{digits}x}".rstrip("0").rstrip(".") + f"p{e:+d}"
    return "-" + text if negative else text


def parse_exact_hex(text):
    """Inverse of :func:`exact_hex`: a Fraction for finite nonzero values, a float for
    ±0, ±inf and NaN (so the sign of zero survives). For values whose exponent is too
    large for a Fraction (mpmath's can be), use :func:`parse_exact_hex_dyadic`."""
    parsed = parse_exact_hex_dyadic(text)
    if isinstance(parsed, float):
        return parsed
    man, exp = parsed
    return Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp)


def parse_exact_hex_dyadic(text):
    """Parse an exact hex string into ``(man, exp)`` (signed int, value ``man * 2**exp``),
    or a float for ±0, ±inf and NaN."""
    s = text.strip().lower()
    if s in ("nan", "+nan", "-nan"):
        return math.nan
    if s in ("inf", "+inf", "infinity"):
        return math.inf
    if s in ("-inf", "-infinity"):
        return -math.inf
    negative = s.startswith("-")
    s = s.lstrip("+-")
    if not s.startswith("0x") or "p" not in s:
        raise ValueError(f"not an exact hex number: {text!r}")
    mantissa, _, exponent = s[2:].partition("p")
    whole, _, frac = mantissa.partition(".")
    man = int((whole or "0") + frac, 16)
    exp = int(exponent) - 4 * len(frac)
    if man == 0:
        return -0.0 if negative else 0.0
    return (-man if negative else man, exp)


# --- ordering, neighbours and ulp ----------------------------------------------------


def ordinal(x, fmt):
    """The position of ``x`` on the ordered line of ``fmt`` values: 0 for ±0, +k for
    the k-th value above zero, -k below; ±inf sit one past the largest finite.
    Consecutive representable values have consecutive ordinals."""
    fmt = get_format(fmt)
    if x != x:
        raise ValueError("NaN has no place in the order")
    bits = to_bits(x, fmt)
    sign_bit = 1 << (fmt.width - 1)
    return -(bits & ~sign_bit) if bits & sign_bit else bits


def from_ordinal(k, fmt):
    """Inverse of :func:`ordinal` (k beyond ±inf is a ValueError)."""
    fmt = get_format(fmt)
    limit = (((1 << fmt.exponent_bits) - 1) << fmt.mantissa_bits)  # ordinal of +inf
    if abs(k) > limit:
        raise ValueError(f"ordinal {k} is beyond infinity in {fmt.name}")
    return from_bits(k, fmt) if k >= 0 else -from_bits(-k, fmt)


def next_up(x, fmt):
    """The least ``fmt`` value greater than ``x`` (IEEE nextUp): ``next_up(±0)`` is
    the smallest subnormal, ``next_up(largest)`` is inf, inf and NaN stay."""
    fmt = get_format(fmt)
    if x != x or x == math.inf:
        return x
    up = from_ordinal(ordinal(x, fmt) + 1, fmt)
    return -0.0 if up == 0 else up  # next_up(-smallest subnormal) is -0


def next_down(x, fmt):
    """The greatest ``fmt`` value less than ``x`` (IEEE nextDown)."""
    return -next_up(-x, fmt)


def ulp_exponent(t, fmt):
    """``log2`` of the spacing of ``fmt`` in the binade of the exact value ``t``:
    ``floor(log2|t|) - p + 1`` for normal magnitudes, the subnormal spacing below the
    smallest normal (and at 0). Magnitudes past the largest binade continue the
    formula, so a value beyond the overflow threshold still has a finite ulp."""
    fmt = get_format(fmt)
    parts = _parts(t)
    if parts[0] in ("nan", "inf"):
        raise ValueError(f"no ulp at {t!r}")
    e = fmt.emin if parts[0] == "zero" else max(floor_log2(t), fmt.emin)
    return e - fmt.precision + 1


def ulp(t, fmt):
    """The spacing of ``fmt`` at the binade of the exact value ``t`` as a float
    (inf for ±inf, NaN for NaN); see :func:`ulp_exponent`.

    >>> ulp(1.0, FLOAT32) == 2.0 ** -23, ulp(0.0, FLOAT16) == 2.0 ** -24
    (True, True)
    """
    parts = _parts(t)
    if parts[0] == "nan":
        return math.nan
    if parts[0] == "inf":
        return math.inf
    return math.ldexp(1.0, ulp_exponent(t, fmt))


# --- enumerating and sampling ---------------------------------------------------------


def all_values(fmt):
    """Every bit pattern of a 16-bit format, in pattern order, as floats (65,536,
    NaN patterns included as NaN)."""
    fmt = get_format(fmt)
    if fmt.width > 16:
        raise ValueError(f"{fmt.name} has too many values to enumerate")
    return [from_bits(b, fmt) for b in range(1 << fmt.width)]


def random_finite(rng, fmt, low=None, high=None):
    """A finite ``fmt`` value drawn uniformly in ULP space (uniform over ordinals)
    between ``low`` and ``high`` (default: the whole finite range), using the
    ``random.Random`` instance ``rng``. ±0 share ordinal 0, so zero comes back as +0."""
    fmt = get_format(fmt)
    largest = fmt.largest_finite
    lo = ordinal(-largest if low is None else low, fmt)
    hi = ordinal(largest if high is None else high, fmt)
    if not isinstance(rng, random.Random):
        raise TypeError("rng must be a random.Random")
    return from_ordinal(lo + randbelow(rng, hi - lo + 1), fmt)


def randbelow(rng, n):
    """``rng.randrange(n)`` built on getrandbits only, whose output is the same on
    every Python version (so seeded case sets are reproducible everywhere)."""
    k = n.bit_length()
    while True:
        r = rng.getrandbits(k)
        if r < n:
            return r


# --- array forms of round_to_format and ulp ------------------------------------------


def float64_exponent(values):
    """``floor(log2|v|)`` of normal float64 values, read from the exponent field (frexp and
    ldexp cost several times more). A float64 subnormal or zero reads as -1023, and a
    narrow format's ``emin`` lies far above that, so the clamps below make those exact
    too; ±inf and NaN read as 1024 and are the callers' to mask."""
    raw = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    return ((raw >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 1023


def power_of_two(exponents):
    """``2.0**e`` for integer arrays ``e`` in float64's normal range, built from bits."""
    return ((exponents + 1023).astype(np.uint64) << np.uint64(52)).view(np.float64)


def binade_exponent_array(values, fmt):
    """``max(floor(log2|v|), emin)`` of every value (``emin`` at 0): the binade whose
    spacing is the ulp, as :func:`ulp_exponent` defines it. int64 array."""
    fmt = get_format(fmt)
    if fmt == FLOAT64:
        raise ValueError("binade_exponent_array serves the narrow formats")
    return np.maximum(float64_exponent(values), fmt.emin)


def ulp_array(values, fmt):
    """The spacing of ``fmt`` at the binade of each float64 value (subnormal spacing
    below the smallest normal and at 0; inf at ±inf, NaN at NaN), as
    :func:`ulp` gives it for one value."""
    values = np.asarray(values, dtype=np.float64)
    spacing = power_of_two(binade_exponent_array(values, fmt) - (get_format(fmt).precision - 1))
    return np.where(np.isfinite(values), spacing, np.abs(values))


def scaled_by_ulp(values, fmt):
    """``(|v| / ulp, log2 ulp)`` for float64 values and a narrow ``fmt``: the magnitude in
    units of the format's spacing at its binade, exactly (a power-of-two scaling of a
    53-bit value that stays in float64's normal range: narrow formats span 2**-149 to
    2**128). Rounding to the format is then ``rint`` of the first, times ``2**q``."""
    magnitude = np.abs(values)
    ulp_exponent = binade_exponent_array(magnitude, fmt) - (fmt.precision - 1)
    ulp_exponent = np.minimum(ulp_exponent, fmt.emax + 1)  # inf/NaN: any finite scale
    with np.errstate(all="ignore"):
        return magnitude * power_of_two(-ulp_exponent), ulp_exponent


def from_scaled(values, units, ulp_exponent, fmt):
    """Signed ``units * 2**ulp_exponent`` with overflow to inf; non-finite values stay."""
    with np.errstate(all="ignore"):
        magnitude = units * power_of_two(ulp_exponent)
    magnitude = np.where(magnitude > fmt.largest_finite, np.inf, magnitude)
    magnitude = np.where(np.isfinite(values), magnitude, np.abs(values))
    return np.copysign(magnitude, values)


def round_to_format_array(values, fmt):
    """Round each float64 value to nearest, ties to even, in ``fmt``; the results are the
    exactly equal float64 values (±inf on overflow, signed zeros kept, NaN stays).

    The value is scaled by its ulp so the spacing becomes 1; ``rint`` rounds that to an
    integer with ties to even, and scaling back is exact. This casts through nothing:
    numpy's float64 -> bfloat16 would round twice.
    """
    fmt = get_format(fmt)
    values = np.asarray(values, dtype=np.float64)
    if fmt == FLOAT64:
        return values.copy()
    units, ulp_exponent = scaled_by_ulp(values, fmt)
    return from_scaled(values, np.rint(units), ulp_exponent, fmt)


def sorted_unique(values):
    """``np.unique`` of an array by sorting: numpy's hashing unique costs many times more
    on the bit patterns of a dense set (4.3 s -> 0.3 s for 2**20 float32 patterns)."""
    values = np.sort(np.asarray(values))
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


# --- bit patterns of whole arrays --------------------------------------------------------
# The patterns are unsigned integers (uint64 arrays) in the layout of the format: the
# engine's point sets are sets of them, sorted, and reports name inputs by them.


def values_of_bits(bits, fmt):
    """The values of the bit patterns ``bits`` in ``fmt``, as float64 (exact: every value
    of a format is a float64; NaN patterns give NaN)."""
    fmt = get_format(fmt)
    bits = np.asarray(bits)
    with np.errstate(invalid="ignore"):
        if fmt.name == "float64":
            return bits.astype(np.uint64).view(np.float64).copy()
        if fmt.name == "float32":
            return bits.astype(np.uint32).view(np.float32).astype(np.float64)
        if fmt.name == "float16":
            return bits.astype(np.uint16).view(np.float16).astype(np.float64)
        # bfloat16 is the upper half of a float32: no ml_dtypes needed to read it.
        return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)


def bits_of_values(values, fmt):
    """The bit patterns (uint64) of float64 ``values`` that are values of ``fmt``."""
    fmt = get_format(fmt)
    values = np.ascontiguousarray(values, dtype=np.float64)
    if fmt.name == "float64":
        return values.view(np.uint64).copy()
    if fmt.name == "float16":
        return values.astype(np.float16).view(np.uint16).astype(np.uint64)
    single = values.astype(np.float32).view(np.uint32)
    return (single >> np.uint32(16) if fmt.name == "bfloat16" else single).astype(np.uint64)


def native_array(bits, fmt):
    """The bit patterns as a numpy array of the format's own dtype (ml_dtypes' bfloat16)."""
    fmt = get_format(fmt)
    if fmt.name == "bfloat16":
        import ml_dtypes

        return np.asarray(bits, dtype=np.uint16).view(ml_dtypes.bfloat16)
    dtype = {"float64": (np.uint64, np.float64), "float32": (np.uint32, np.float32),
             "float16": (np.uint16, np.float16)}[fmt.name]
    return np.asarray(bits, dtype=dtype[0]).view(dtype[1])


def ordinals_of_bits(bits, fmt):
    """:func:`ordinal` of many bit patterns (int64; ±0 both 0), for non-NaN patterns."""
    fmt = get_format(fmt)
    bits = np.asarray(bits, dtype=np.uint64)
    sign = np.uint64(1) << np.uint64(fmt.width - 1)
    magnitude = (bits & ~sign).astype(np.int64)
    return np.where(bits & sign, -magnitude, magnitude)


def bits_of_ordinals(ordinals, fmt):
    """The bit patterns of ordinals (the inverse of :func:`ordinals_of_bits`; 0 gives +0)."""
    fmt = get_format(fmt)
    ordinals = np.asarray(ordinals, dtype=np.int64)
    sign = np.uint64(1) << np.uint64(fmt.width - 1)
    magnitude = np.abs(ordinals).astype(np.uint64)
    return np.where(ordinals < 0, magnitude | sign, magnitude)
