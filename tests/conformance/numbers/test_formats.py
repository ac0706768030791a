"""Formats and exact rounding, checked against numpy and ml_dtypes.

numpy and ml_dtypes are the independent witnesses here: the 16-bit formats are
checked on every bit pattern, float32/float64 on samples.
"""

import math
import random
import struct
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from refact.conformance.numbers.formats import (
    BFLOAT16, FLOAT16, FLOAT32, FLOAT64, FORMATS, all_values, bits_hex, exact_fraction, exact_hex,
    from_bits, from_bits_hex, get_format, is_representable, next_down, next_up, ordinal,
    parse_exact_hex, parse_exact_hex_dyadic, random_finite, round_dyadic, round_to_format,
    same_value, to_bits, ulp, ulp_exponent,
)

ml_dtypes = pytest.importorskip("ml_dtypes")

NUMPY_TYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16,
               "bfloat16": ml_dtypes.bfloat16}
UINT_TYPES = {64: np.uint64, 32: np.uint32, 16: np.uint16}


def numpy_values(fmt, patterns):
    """The values of bit patterns according to numpy/ml_dtypes, as Python floats."""
    raw = np.asarray(patterns, dtype=UINT_TYPES[fmt.width]).view(NUMPY_TYPES[fmt.name])
    return [float(v) for v in raw.astype(np.float64)]


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=list(FORMATS))
def test_constants_match_numpy_finfo(fmt):
    info = ml_dtypes.finfo(NUMPY_TYPES[fmt.name]) if fmt is BFLOAT16 else np.finfo(NUMPY_TYPES[fmt.name])
    assert fmt.largest_finite == float(info.max)
    assert fmt.smallest_normal == float(info.smallest_normal)
    assert fmt.smallest_subnormal == float(info.smallest_subnormal)
    assert fmt.epsilon == float(info.eps)
    assert fmt.width == info.bits


def test_named_formats():
    assert (FLOAT64.precision, FLOAT64.emin, FLOAT64.emax) == (53, -1022, 1023)
    assert (FLOAT32.precision, FLOAT32.emin, FLOAT32.emax) == (24, -126, 127)
    assert (FLOAT16.precision, FLOAT16.emin, FLOAT16.emax) == (11, -14, 15)
    assert (BFLOAT16.precision, BFLOAT16.emin, BFLOAT16.emax) == (8, -126, 127)
    assert get_format("bfloat16") is BFLOAT16
    with pytest.raises(ValueError):
        get_format("float8")


@pytest.mark.parametrize("fmt", [FLOAT16, BFLOAT16], ids=["float16", "bfloat16"])
def test_every_16_bit_pattern(fmt):
    """Value, bit pattern, neighbours and ulp of all 65,536 patterns against numpy."""
    patterns = list(range(1 << 16))
    ours = all_values(fmt)
    theirs = numpy_values(fmt, patterns)
    typ = NUMPY_TYPES[fmt.name]
    arr = np.asarray(patterns, dtype=np.uint16).view(typ)
    ups = np.nextafter(arr, np.full_like(arr, np.inf)).astype(np.float64)
    downs = np.nextafter(arr, np.full_like(arr, -np.inf)).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        # numpy's float16 spacing is wrong for negative values (np.spacing(float16(-1)) is
        # positive and half the step): take it at |x|, where ulp is defined the same way
        spacings = np.spacing(np.abs(arr)).astype(np.float64)
    for b in patterns:
        v = ours[b]
        assert same_value(v, theirs[b]), hex(b)
        if v != v:
            continue
        assert to_bits(v, fmt) == b
        assert is_representable(v, fmt)
        if math.isfinite(v):
            assert same_value(next_up(v, fmt), float(ups[b])), hex(b)
            assert same_value(next_down(v, fmt), float(downs[b])), hex(b)
            if abs(v) != fmt.largest_finite:  # numpy's spacing there is inf (the step to overflow)
                assert ulp(v, fmt) == spacings[b], hex(b)


@pytest.mark.parametrize("fmt", [FLOAT32, FLOAT64], ids=["float32", "float64"])
def test_sampled_wide_patterns(fmt):
    rng = random.Random(f"test-formats/{fmt.name}")
    typ = NUMPY_TYPES[fmt.name]
    pack = {32: ("<I", "<f"), 64: ("<Q", "<d")}[fmt.width]
    for _ in range(3000):
        b = rng.getrandbits(fmt.width)
        v = from_bits(b, fmt)
        ref = struct.unpack(pack[1], struct.pack(pack[0], b))[0]
        assert same_value(v, ref)
        if v != v:
            continue
        assert to_bits(v, fmt) == b
        if math.isfinite(v) and abs(v) != fmt.largest_finite:
            x = typ(v)
            assert next_up(v, fmt) == float(np.nextafter(x, typ(np.inf)))
            assert next_down(v, fmt) == float(np.nextafter(x, typ(-np.inf)))
            assert ulp(v, fmt) == abs(float(np.spacing(x)))


def test_bit_pattern_examples():
    assert bits_hex(1.0, FLOAT16) == "0x3c00"
    assert bits_hex(1.0, BFLOAT16) == "0x3f80"
    assert bits_hex(1.0, FLOAT32) == "0x3f800000"
    assert bits_hex(-2.0, FLOAT64) == "0xc000000000000000"
    assert bits_hex(-0.0, FLOAT16) == "0x8000"
    assert bits_hex(math.inf, FLOAT16) == "0x7c00"
    assert from_bits_hex("0x7bff", FLOAT16) == 65504.0
    assert from_bits_hex("0x0001", FLOAT16) == 2.0 ** -24
    with pytest.raises(ValueError):
        to_bits(0.1, FLOAT32)  # not a float32 value


@pytest.mark.parametrize("fmt", [FLOAT16, FLOAT32], ids=["float16", "float32"])
def test_rounding_float64_inputs_matches_numpy_cast(fmt):
    """numpy rounds a double to float16/float32 once, correctly: our integer rounding
    must agree everywhere, subnormals, ties and overflow included."""
    rng = random.Random(f"round/{fmt.name}")
    typ = NUMPY_TYPES[fmt.name]
    values = []
    for _ in range(20000):
        e = rng.randint(fmt.emin - fmt.precision - 3, fmt.emax + 2)
        values.append(math.ldexp(1 + rng.random(), e) * rng.choice([-1, 1]))
    # exact ties and their neighbours, in the normal and subnormal ranges
    for _ in range(2000):
        x = random_finite(rng, fmt)
        if math.isfinite(next_up(x, fmt)):
            mid = (x + next_up(x, fmt)) / 2
            values += [mid, math.nextafter(mid, math.inf), math.nextafter(mid, -math.inf)]
    values += [fmt.largest_finite * (1 + fmt.epsilon / 4), fmt.largest_finite * (1 + fmt.epsilon / 2)]
    ours = [round_to_format(v, fmt) for v in values]
    with np.errstate(over="ignore"):
        theirs = np.asarray(values, dtype=np.float64).astype(typ).astype(np.float64)
    for v, a, b in zip(values, ours, theirs):
        assert same_value(a, float(b)), v.hex()
        assert is_representable(v, fmt) == same_value(a, v)


def test_rounding_float32_inputs_matches_ml_dtypes_bfloat16():
    rng = random.Random("round/bfloat16")
    values = [float(np.float32(math.ldexp(1 + rng.random(), rng.randint(-140, 129)) * rng.choice([-1, 1])))
              for _ in range(20000)]
    values += [from_bits(b, FLOAT32) for b in (0x3f808000, 0x3f818000, 0x00008000, 0x7f7f8000)]  # ties
    ours = [round_to_format(v, BFLOAT16) for v in values]
    with np.errstate(over="ignore"):
        theirs = np.asarray(values, dtype=np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)
    for v, a, b in zip(values, ours, theirs):
        assert same_value(a, float(b)), v.hex()


def test_signed_zero_overflow_and_specials():
    assert same_value(round_to_format(Fraction(-1, 10 ** 30), FLOAT16), -0.0)
    assert same_value(round_to_format(Fraction(1, 10 ** 30), FLOAT16), 0.0)
    assert round_to_format(FLOAT16.overflow_threshold, FLOAT16) == math.inf  # the tie goes to inf
    assert round_to_format(FLOAT16.overflow_threshold - Fraction(1, 10 ** 9), FLOAT16) == 65504.0
    assert round_to_format(-FLOAT64.overflow_threshold, FLOAT64) == -math.inf
    assert math.isnan(round_to_format(math.nan, FLOAT32))
    assert round_to_format(mpmath.mpf("1e-4343"), FLOAT64) == 0.0
    assert round_to_format(mpmath.mpf("-1e-100000"), FLOAT64) == -0.0
    assert math.copysign(1, round_to_format(mpmath.mpf("-1e-100000"), FLOAT64)) == -1
    assert round_to_format(mpmath.mpf("1e100000"), FLOAT16) == math.inf
    assert round_to_format(mpmath.mpf(0), FLOAT16) == 0.0


def _nearest_check(value, r, fmt):
    """r is a correct RNE rounding of the exact nonzero finite value."""
    q = exact_fraction(value)
    if math.isinf(r):
        assert abs(q) >= fmt.overflow_threshold and (r > 0) == (q > 0)
        return
    if r == 0:
        assert abs(q) <= Fraction(fmt.smallest_subnormal) / 2
        return
    err = abs(q - Fraction(r))
    half = Fraction(ulp(r, fmt)) / 2
    below = Fraction(r - next_down(abs(r), fmt) if r > 0 else next_up(r, fmt) - r)
    assert err <= max(half, abs(below) / 2)
    for neighbour in (next_up(r, fmt), next_down(r, fmt)):
        if math.isfinite(neighbour):
            other = abs(q - Fraction(neighbour))
            assert err <= other
            if err == other:  # a tie: r must be even
                assert to_bits(r, fmt) % 2 == 0


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=2 ** 200), st.integers(min_value=-1300, max_value=1100),
       st.booleans(), st.sampled_from(list(FORMATS)))
def test_rounding_of_long_mpmath_values_is_nearest_even(man, exp, negative, name):
    fmt = FORMATS[name]
    value = mpmath.mpf((-man if negative else man, exp - 150))
    _nearest_check(value, round_to_format(value, fmt), fmt)


@settings(max_examples=150, deadline=None)
@given(st.fractions(min_value=Fraction(-10 ** 6), max_value=Fraction(10 ** 6)).filter(lambda q: q != 0),
       st.sampled_from(list(FORMATS)))
def test_rounding_of_fractions_is_nearest_even(q, name):
    fmt = FORMATS[name]
    _nearest_check(q, round_to_format(q, fmt), fmt)


def test_fraction_chain_matches_numpy_where_the_double_is_exact():
    """A Fraction exactly representable as a double rounds like numpy's cast of it."""
    rng = random.Random("chain")
    for _ in range(2000):
        q = Fraction(rng.getrandbits(50) | 1, 2 ** rng.randint(0, 80))
        d = float(q)
        assert Fraction(d) == q
        assert round_to_format(q, FLOAT16) == float(np.float16(d))
        assert round_to_format(q, BFLOAT16) == float(np.float32(d).astype(ml_dtypes.bfloat16)) or \
            Fraction(float(np.float32(d))) != q  # ml_dtypes rounds from float32; compare where exact


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_exact_hex_round_trip_of_floats(x):
    text = exact_hex(x)
    assert same_value(float.fromhex(text) if x == x else math.nan, x)
    back = parse_exact_hex(text)
    assert same_value(float(back), x)


def test_exact_hex_of_mpmath_values():
    for text in ("1e-4343", "-3.25", "0.1", "1e100000"):
        v = mpmath.mpf(text)
        parsed = parse_exact_hex_dyadic(exact_hex(v))
        assert mpmath.mpf(parsed) == v
    assert exact_hex(mpmath.mpf(0.75)) == "0x1.8p-1"
    assert exact_hex(Fraction(3, 8)) == "0x1.8p-2"
    assert parse_exact_hex("-0x0.0p+0") == 0.0 and math.copysign(1, parse_exact_hex("-0x0.0p+0")) == -1
    with pytest.raises(ValueError):
        exact_hex(Fraction(1, 3))


def test_ulp_at_the_truths_binade():
    assert ulp(1.0, FLOAT32) == 2.0 ** -23
    assert ulp(0.999, FLOAT32) == 2.0 ** -24
    assert ulp(mpmath.mpf("1e-4343"), FLOAT64) == 2.0 ** -1074
    assert ulp(0.0, FLOAT16) == 2.0 ** -24
    assert ulp(Fraction(1, 3), FLOAT16) == 2.0 ** -12
    assert ulp_exponent(mpmath.mpf("3.0e308"), FLOAT64) == 1024 - 52  # past overflow: continues
    assert ulp(math.inf, FLOAT64) == math.inf


def test_ordinals_are_consecutive():
    for fmt in FORMATS.values():
        assert ordinal(0.0, fmt) == ordinal(-0.0, fmt) == 0
        assert ordinal(fmt.smallest_subnormal, fmt) == 1
        assert ordinal(math.inf, fmt) == ordinal(fmt.largest_finite, fmt) + 1
        assert ordinal(-fmt.smallest_normal, fmt) == -ordinal(fmt.smallest_normal, fmt)
    assert next_up(FLOAT16.largest_finite, FLOAT16) == math.inf
    assert next_down(0.0, BFLOAT16) == -BFLOAT16.smallest_subnormal
    assert math.copysign(1, next_up(-FLOAT16.smallest_subnormal, FLOAT16)) == -1  # IEEE nextUp: -0
    assert math.copysign(1, next_down(FLOAT16.smallest_subnormal, FLOAT16)) == 1
    assert round_dyadic(-3, -2, FLOAT16) == -0.75


def test_random_finite_is_uniform_over_ordinals():
    rng = random.Random(7)
    values = [random_finite(rng, FLOAT16) for _ in range(4000)]
    assert all(math.isfinite(v) and is_representable(v, FLOAT16) for v in values)
    # uniform in ULP space: about as many values below 1 in magnitude as above
    small = sum(1 for v in values if abs(v) < 1)
    assert 0.4 < small / len(values) < 0.6
