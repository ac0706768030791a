"""The oracle and the ruler: the hard cases, undecided, the cache, golden vectors,
error measures and classes, and the ``refact truth`` command."""

import math
import random
from fractions import Fraction

import mpmath
import pytest

from refact.conformance.cli import golden
from refact.conformance.truth import store
from refact.conformance.cli import main as cli_main
from hypothesis import given, settings, strategies as st

from refact.conformance.numbers.ruler import (
    ALL_CLASSES, FAILURE_CLASSES, classify, float_pair, step_distance,
    ulp_error, ulp_errors,
)
from refact.conformance.numbers.formats import (
    FLOAT16, FLOAT32, FLOAT64, BFLOAT16, FORMATS, next_down, next_up, round_to_format,
)
from refact.conformance.truth.catalog import get_function
from refact.conformance.truth.oracle import (
    DEFAULT_MAX_PRECISION, ORACLE_VERSION, condition_number, derivative_truth, evaluate,
    point_key, precision_ladder, truth, truth_many,
)

SEED_VECTOR = (1.0, 2.0, 3.0, 4.0, -3.0, -4.0, -2.0, -10000.0)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REFACT_CACHE_DIR", str(tmp_path / "cache"))


def fresh(function, point, fmt, **kw):
    return truth(function, point, fmt, golden=False, cache=False, **kw)


# --- the hard cases --------------------------------------------------------------------


def test_probit_deep_in_the_tail():
    t = fresh("probit", (1e-300,), "float64")
    assert t.decided and t.rounded == -37.0470962993612
    assert mpmath.nstr(t.exact, 15) == "-37.0470962993612"


def test_sigmoid_minus_ten_thousand():
    t = fresh("sigmoid", (-10000.0,), "float64")
    assert t.decided and t.rounded == 0.0 and math.copysign(1, t.rounded) == 1
    assert mpmath.nstr(t.exact, 5) == "1.1355e-4343"
    mpmath.mp.prec = 200
    reference = mpmath.exp(-10000) / (1 + mpmath.exp(-10000))
    assert mpmath.almosteq(t.exact, reference, rel_eps=mpmath.mpf(2) ** -80)


def test_sigmoid_grad_44_in_float32():
    t = fresh("sigmoid_grad", (44.0,), "float32")
    mpmath.mp.prec = 300
    e = mpmath.exp(-44)
    assert t.rounded == round_to_format(e / (1 + e) ** 2, FLOAT32)
    assert 7.78e-20 < t.rounded < 7.79e-20


def test_logit_just_above_one_half():
    p = 0.5 + 2.0 ** -53
    t = fresh("logit", (p,), "float64")
    mpmath.mp.prec = 1000
    reference = mpmath.log(mpmath.mpf(p) / (1 - mpmath.mpf(p)))
    assert t.rounded == round_to_format(reference, FLOAT64)
    assert t.rounded == 4.440892098500626e-16


def test_log_softmax_of_the_seed_vector():
    t = fresh("log_softmax", (SEED_VECTOR,), "float64")
    assert t.decided
    assert t.rounded[7] == -10004.442586111712
    assert t.rounded[3] == -0.4425861117121452


def test_cross_entropy_of_the_seed_vector_against_class_7():
    t = fresh("cross_entropy", (SEED_VECTOR, 7), "float64")
    assert t.rounded == 10004.442586111712
    assert mpmath.nstr(t.exact, 15) == "10004.4425861117"


def test_a_midpoint_plus_a_vanishing_term_is_decided():
    """float16: log_softmax([-1, -2, -3, -4, 3, 4, 2, 10000]) at -4 is -10004 - 1e-4343,
    and -10004 is exactly halfway between two float16 values: it must round down."""
    row = (-1.0, -2.0, -3.0, -4.0, 3.0, 4.0, 2.0, 10000.0)
    t = fresh("log_softmax", (row,), "float16")
    assert t.decided and t.precision < 1000
    assert t.rounded[3] == -10008.0  # not the even -10000
    assert t.rounded[0] == -10000.0  # -10001 - tiny is nearer -10000


def test_exact_truths_terminate_without_escalation():
    for function, point, fmt, value in [
        ("logit", (0.5,), "float64", 0.0),
        ("sigmoid", (0.0,), "float16", 0.5),
        ("probit", (0.5,), "float32", 0.0),
        ("sigmoid_grad", (-0.0,), "bfloat16", 0.25),
        ("hard_sigmoid", (1.0,), "float64", 2 / 3),
        ("softmax", ((7.0, 7.0),), "float32", (0.5, 0.5)),
        ("distillation_loss", ((1.0, 2.0), (2.0, 3.0), 2.0), "float64", 0.0),
        ("logsumexp", ((-math.inf, 3.0),), "float16", 3.0),
    ]:
        t = fresh(function, point, fmt)
        assert t.decided and t.precision == 0 and t.source == "exact", function
        assert t.rounded == value


def test_special_inputs():
    assert math.isnan(fresh("sigmoid", (math.nan,), "float64").rounded)
    assert fresh("softplus", (math.inf,), "float32").rounded == math.inf
    assert fresh("probit", (0.0,), "float64").rounded == -math.inf
    assert all(math.isnan(v) for v in fresh("softmax", ((-math.inf, -math.inf),), "float64").rounded)
    assert fresh("cross_entropy", ((FLOAT16.largest_finite, -FLOAT16.largest_finite), 1), "float16").rounded == math.inf


def test_extreme_arguments():
    assert fresh("softplus", (1e308,), "float64").rounded == 1e308
    assert fresh("log_sigmoid", (-1e308,), "float64").rounded == -1e308
    assert fresh("ndtr", (-40.0,), "float64").rounded == 0.0
    sub = fresh("ndtr", (-38.0,), "float64")
    mpmath.mp.prec = 300
    assert sub.rounded == round_to_format(mpmath.ncdf(-38), FLOAT64) and 0 < sub.rounded < FLOAT64.smallest_normal
    big = fresh("cross_entropy", ((1e308, -1e308), 1), "float64")
    assert big.rounded == math.inf  # the true loss, 2e308, overflows


# --- independent references ------------------------------------------------------------

REFERENCE_PRECISION = 2500


def _reference(function, point):
    """Plain mpmath at high precision, written the textbook way."""
    mp = mpmath.mp
    mp.prec = REFERENCE_PRECISION
    m = mpmath.mpf
    if function == "sigmoid":
        return 1 / (1 + mpmath.exp(-m(point[0])))
    if function == "log_sigmoid":
        return -mpmath.log1p(mpmath.exp(-m(point[0])))
    if function == "softplus":
        return mpmath.log1p(mpmath.exp(m(point[0])))
    if function == "sigmoid_grad":
        s = 1 / (1 + mpmath.exp(-m(point[0])))
        return s * (1 - s)
    if function == "logit":
        p = m(point[0])
        return mpmath.log(p) - mpmath.log(1 - p)
    if function == "ndtr":
        return mpmath.ncdf(m(point[0]))
    if function == "probit":
        return -mpmath.sqrt(2) * mpmath.erfinv(1 - 2 * m(point[0]))
    row = [m(x) for x in point[0]]
    lse = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in row))
    if function == "softmax":
        return tuple(mpmath.exp(x - lse) for x in row)
    if function == "log_softmax":
        return tuple(x - lse for x in row)
    if function == "logsumexp":
        return lse
    if function == "cross_entropy":
        return lse - row[point[1]]
    raise AssertionError(function)


def _near_tie(value, fmt):
    """True when a reference value is too close to a rounding boundary to compare."""
    r = round_to_format(value, fmt)
    if not math.isfinite(r) or value == 0:
        return False
    gap = mpmath.mpf(2) ** -(REFERENCE_PRECISION // 2) * abs(value)
    return round_to_format(value + gap, fmt) != r or round_to_format(value - gap, fmt) != r


@pytest.mark.parametrize("function", ["sigmoid", "log_sigmoid", "softplus", "sigmoid_grad", "logit",
                                      "ndtr", "probit", "softmax", "log_softmax", "logsumexp",
                                      "cross_entropy"])
def test_oracle_agrees_with_textbook_mpmath_at_high_precision(function):
    rng = random.Random(f"reference/{function}")
    for _ in range(12):
        fmt = FORMATS[rng.choice(list(FORMATS))]
        if function in ("logit", "probit"):
            x = round_to_format(rng.choice([rng.random(), 2.0 ** -rng.uniform(1, 60), 1 - 2.0 ** -rng.uniform(2, 40)]), fmt)
            if not 0 < x < 1:
                continue
            point = (x,)
        elif function in ("softmax", "log_softmax", "logsumexp", "cross_entropy"):
            row = tuple(round_to_format(rng.uniform(-40, 40), fmt) for _ in range(rng.randint(2, 6)))
            point = (row, rng.randrange(len(row))) if function == "cross_entropy" else (row,)
        else:
            point = (round_to_format(rng.uniform(-60, 60), fmt),)
        t = fresh(function, point, fmt)
        reference = _reference(function, point)
        refs = reference if isinstance(reference, tuple) else (reference,)
        for r, v in zip(refs, t.values):
            if not _near_tie(r, fmt):
                assert round_to_format(r, fmt) == v, (function, fmt.name, point)


# --- undecided, the ladder -------------------------------------------------------------


def test_undecided_is_reachable_and_reported():
    t = fresh("sigmoid", (1.0,), "float64", max_precision=48)
    assert t.status == "undecided" and not t.decided
    assert t.rounded is None and t.undecided == (0,)
    assert t.elements == ((None, None),)
    assert classify(0.7310585786300049, None, FLOAT64) == "undecided"
    row = fresh("softmax", ((0.0, 1.0, -math.inf),), "float32", max_precision=40)
    assert row.undecided == (0, 1) and row.rounded[2] == 0.0  # the exact zero is still known


def test_undecided_is_cached_with_its_cap_only():
    first = truth("sigmoid", (1.0,), "float32", max_precision=48, golden=False)
    again = truth("sigmoid", (1.0,), "float32", max_precision=48, golden=False)
    assert first.status == again.status == "undecided" and again.source == "cache"
    decided = truth("sigmoid", (1.0,), "float32", golden=False)  # a higher cap recomputes
    assert decided.decided and decided.source == "computed"


def test_precision_ladder():
    assert precision_ladder(FLOAT64) == [101, 202, 404, 808, 1616, 3232, 6464, 8192]
    assert precision_ladder(FLOAT16)[0] == 64 and precision_ladder(FLOAT16)[-1] == DEFAULT_MAX_PRECISION
    assert precision_ladder(FLOAT32, 40) == [40]


# --- cache and golden ------------------------------------------------------------------


def test_second_call_is_a_cache_hit(tmp_path):
    a = truth("probit", (0.00025,), "float64", golden=False)
    b = truth("probit", (0.00025,), "float64", golden=False)
    assert a.source == "computed" and b.source == "cache"
    assert a.rounded == b.rounded and a.exact == b.exact and a.precision == b.precision
    assert (tmp_path / "cache" / "oracle.sqlite3").exists()


def test_cache_can_be_disabled(monkeypatch):
    monkeypatch.setenv("REFACT_CACHE_DIR", "")
    assert truth("ndtr", (0.25,), "float64", golden=False).source == "computed"
    assert truth("ndtr", (0.25,), "float64", golden=False).source == "computed"


def test_truth_many_keeps_order_and_shares_work():
    points = [(0.0,), (1.0,), (0.0,), (-2.0,)]
    out = truth_many("sigmoid", points, "bfloat16", golden=False)
    assert [t.args for t in out] == points
    assert out[0].rounded == out[2].rounded == 0.5
    assert out[1].rounded == round_to_format(1 / (1 + math.exp(-1)), BFLOAT16)


def test_inputs_must_be_format_values():
    with pytest.raises(ValueError):
        truth("sigmoid", (0.1,), "float32")
    with pytest.raises(ValueError):
        truth("softmax", ((0.1, 0.0),), "float16")
    assert point_key("softmax", [1.0, 2.0], "float16") == '[["0x3c00","0x4000"]]'
    assert point_key("cross_entropy", ((1.0, 2.0), 1), "bfloat16") == '[["0x3f80","0x4000"],1]'


def test_golden_vectors_exist_and_are_used():
    assert store.golden_records("sigmoid", "float64", ORACLE_VERSION), "run: refact golden --write"
    t = truth("sigmoid", (-10000.0,), "float64", cache=False)
    assert t.source == "golden" and t.rounded == 0.0
    assert mpmath.nstr(t.exact, 5) == "1.1355e-4343"


def test_golden_vectors_agree_with_fresh_mpmath():
    assert golden.check(sample=25, seed=3) == []  # refact golden --check


# --- the ruler -------------------------------------------------------------------------


def test_ulp_error():
    assert ulp_error(1.0, 1 + 2 ** -25, FLOAT32) == 0.25
    assert ulp_error(1.0, Fraction(1), FLOAT16) == 0.0
    t = fresh("sigmoid", (-10000.0,), "float64").exact
    assert ulp_error(0.0, t, FLOAT64) == 0.0  # 1e-4343 / 5e-324 underflows the ratio
    assert ulp_error(5e-324, t, FLOAT64) == 1.0
    assert ulp_error(math.inf, mpmath.mpf("1e400"), FLOAT64) == 0.0  # correctly rounded overflow
    assert ulp_error(math.nan, 1.0, FLOAT64) == math.inf
    third = Fraction(1, 3)
    assert abs(ulp_error(round_to_format(third, FLOAT16), third, FLOAT16) - 1 / 3) < 1e-12
    probit = fresh("probit", (1e-300,), "float64")
    assert ulp_error(probit.rounded, probit.exact, FLOAT64) <= 0.5


@settings(max_examples=300, deadline=None, derandomize=True)
@given(fmt=st.sampled_from([FLOAT64, FLOAT32, FLOAT16, BFLOAT16]), binade=st.integers(-959, 999),
       fraction=st.integers(2 ** 70, 2 ** 71 - 1), negative=st.booleans(),
       steps=st.integers(-3, 3), scale=st.sampled_from([1.0, 1.0 + 2.0 ** -20, 1.001, 1.5, 3.0]))
def test_ulp_errors_in_numpy_agree_with_the_exact_ruler(fmt, binade, fraction, negative, steps, scale):
    # a truth with 71 significant bits anywhere in float_pair's range, including just
    # below a power of two (fraction near 2**71), and results a few steps or a factor off
    t = mpmath.mpf(fraction) * mpmath.mpf(2) ** (binade - 70) * (-1 if negative else 1)
    hi, lo = float_pair(t)
    assert hi == round_to_format(t, FLOAT64) and mpmath.mpf(hi) + mpmath.mpf(lo) == t
    y = round_to_format(t, fmt)
    for _ in range(abs(steps)):
        y = next_up(y, fmt) if steps > 0 else next_down(y, fmt)
    y = round_to_format(y * scale, fmt)
    if not 0.0 < abs(y) < math.inf:
        return
    import numpy as np

    fast = ulp_errors(np.array([y]), np.array([hi]), np.array([lo]), fmt)[0]
    exact = ulp_error(y, t, fmt)
    assert fast == exact or abs(fast - exact) <= 2.0 ** -51 * exact


def test_float_pair_edges():
    assert float_pair(0.0) == (0.0, 0.0) and float_pair(Fraction(0)) == (0.0, 0.0)
    assert float_pair(Fraction(1, 3)) == (1 / 3, float(Fraction(1, 3) - Fraction(1 / 3)))
    for out_of_range in (mpmath.mpf(2) ** -961, mpmath.mpf(2) ** 1000, math.inf, math.nan, 5e-324):
        assert float_pair(out_of_range) is None


def test_step_distance():
    assert step_distance(1.0, 1.0, FLOAT16) == 0
    assert step_distance(next_up(next_up(1.0, FLOAT16), FLOAT16), 1.0, FLOAT16) == 2
    assert step_distance(-0.0, 0.0, FLOAT32) == 0
    assert step_distance(math.inf, FLOAT16.largest_finite, FLOAT16) == 1
    with pytest.raises(ValueError):
        step_distance(math.nan, 1.0, FLOAT64)


def test_failure_classes():
    assert FAILURE_CLASSES == ("spurious_nan", "spurious_inf", "missing_inf", "wrong_sign_zero",
                               "flush_to_zero", "premature_underflow", "premature_overflow")
    assert "undecided" in ALL_CLASSES
    f64, f32 = FLOAT64, FLOAT32
    assert classify(math.nan, mpmath.mpf(0.5), f64) == "spurious_nan"
    assert classify(math.nan, math.nan, f64) is None
    assert classify(0.5, math.nan, f64) == "missing_nan"
    assert classify(math.inf, mpmath.mpf(1e-310), f64) == "spurious_inf"  # a subnormal truth
    assert classify(math.inf, Fraction(0), f64) == "spurious_inf"
    assert classify(-math.inf, mpmath.mpf(1e300), f64) == "spurious_inf"  # the wrong sign
    assert classify(math.inf, mpmath.mpf(1e300), f64) == "premature_overflow"
    assert classify(math.inf, mpmath.mpf(100), FLOAT16) == "premature_overflow"  # softplus(100) via exp
    assert classify(3.4e38, mpmath.mpf(1e39), f32) == "missing_inf"  # the truth rounds to inf
    assert classify(math.inf, mpmath.mpf(1e39), f32) is None
    assert classify(0.0, mpmath.mpf(1e-40), f32) == "flush_to_zero"
    assert classify(-0.0, mpmath.mpf(1e-40), f32) == "flush_to_zero"
    assert classify(0.0, mpmath.mpf("7.78e-20"), f32) == "premature_underflow"
    assert classify(-0.0, mpmath.mpf("1e-4343"), f64) == "wrong_sign_zero"
    assert classify(0.0, mpmath.mpf("1e-4343"), f64) is None
    assert classify(-0.0, Fraction(0), f64) is None  # an exact zero fixes no sign
    assert classify(0.5000001, mpmath.mpf(0.5), f32) is None  # inaccurate, not a class
    assert classify(1e-45, mpmath.mpf("1e-4343"), f32) is None


def test_condition_number():
    assert condition_number("logit", (next_down(1.0, FLOAT64),)) > 1e14
    assert condition_number("probit", (next_down(1.0, FLOAT64),)) > 1e14
    assert condition_number("logit", (0.5,)) == math.inf
    assert condition_number("sigmoid", (0.0,)) == 0.0
    assert abs(condition_number("sigmoid", (-1000.0,)) - 1000) < 1e-9
    assert math.isnan(condition_number("softplus", (math.inf,)))
    assert abs(condition_number("softplus", (40.0,)) - 1) < 1e-15  # softplus(x) ~ x
    assert abs(condition_number("log_sigmoid", (-40.0,)) - 1) < 1e-15
    assert condition_number("binary_cross_entropy_with_logits", (3.0, 1.0)) > 0
    with pytest.raises(ValueError):
        condition_number("softmax", ((1.0, 2.0),))


def test_evaluate_is_one_raw_evaluation():
    v = evaluate("sigmoid", (0.5,), 64)
    assert isinstance(v, mpmath.mpf) and abs(v - 0.6224593312018546) < 1e-15
    row = evaluate("softmax", ((0.0, 0.0),), 80)
    assert isinstance(row, tuple) and len(row) == 2


# --- the command -----------------------------------------------------------------------


def test_truth_command(capsys):
    assert cli_main(["truth", "probit", "1e-300"]) == 0
    out = capsys.readouterr().out
    assert "-37.0470962993612" in out and "0x" in out and "condition" in out
    assert cli_main(["truth", "softmax", "[1,2,3]", "--format", "float32", "--digits", "10"]) == 0
    out = capsys.readouterr().out
    assert "[2]" in out and "float32" in out
    assert cli_main(["truth", "cross_entropy", "[1,2,3,4,-3,-4,-2,-10000]", "7"]) == 0
    assert "10004.4425861117" in capsys.readouterr().out


def test_truth_command_usage_errors(capsys):
    assert cli_main(["truth", "sigmoidd", "1"]) == 2
    assert cli_main(["truth", "sigmoid", "one"]) == 2
    assert cli_main(["truth", "cross_entropy", "[1,2]"]) == 2
    assert cli_main(["truth", "cross_entropy", "[1,2]", "5"]) == 2
    capsys.readouterr()
    assert cli_main(["truth", "sigmoid", "0.1", "--format", "float16"]) == 0
    assert "not a float16 value" in capsys.readouterr().err


# -- derivative truths: the same escalation rule ---------------------------------------------


def _mp_derivative(function, point, cotangent, prec=4000):
    from mpmath.ctx_mp import MPContext

    ctx = MPContext()
    ctx.prec = prec
    return get_function(function).evaluate_derivative(ctx, point, cotangent)


@pytest.mark.parametrize("function, point, cotangent", [
    # sigma(x) - 1 cancels to 0 below ~300 bits; the truth is -e**-x
    ("binary_cross_entropy_with_logits", (200.0, 1.0), 1.0),
    ("binary_cross_entropy_with_logits", (709.0, 1.0), 1.0),
    # s_t - 1 = -(the other shares)
    ("cross_entropy", ((0.0, -200.0), 0), (1.0,)),
    # v_j - <v, s> with the row's mass on j
    ("softmax", ((0.0, -200.0),), (-1.0, 0.0)),
    ("softmax", ((0.0, -700.0, -1.0),), (-1.0, 0.0, 1.0)),
])
def test_derivative_truths_survive_cancellation(function, point, cotangent):
    got = derivative_truth(function, point, "float64", cotangent)
    want = _mp_derivative(function, point, cotangent)
    for (rounded, exact), w in zip(got, want):
        assert rounded == round_to_format(w, "float64") != 0.0
        assert abs(mpmath.mpf(exact) - w) <= abs(w) * mpmath.mpf(2) ** -100


@pytest.mark.parametrize("function, point, cotangent, expected", [
    ("sigmoid_grad", (0.0,), 1.0, [0.0]),
    ("hard_sigmoid", (5.0,), 1.0, [0.0]),
    ("hard_sigmoid", (1.0,), 1.0, [1 / 6]),
    ("logit", (0.5,), 1.0, [4.0]),
    ("softmax", ((0.0, 0.0, 0.0),), (-1.0, 0.0, 1.0), [-1 / 3, 0.0, 1 / 3]),
    ("log_softmax", ((1.0, 2.0, 3.0),), (-1.0, 0.0, 1.0), [-1.0, 0.0, 1.0]),
    ("logsumexp", ((7.0,),), 1.0, [1.0]),
    ("cross_entropy", ((3.0,), 0), (1.0,), [0.0]),
    ("distillation_loss", ((1.0, 2.0), (0.0, 1.0), 2.0), 1.0, [0.0, 0.0]),
    ("binary_cross_entropy_with_logits", (0.0, 0.5), 1.0, [0.0]),
])
def test_exact_derivatives_are_decided_not_escalated(function, point, cotangent, expected):
    """Exact zeros and rationals come from the catalog's derivative_exact hook: an mpmath
    0 is never trusted, so without the hook these would be undecided."""
    got = derivative_truth(function, point, "float64", cotangent)
    assert [r for r, _ in got] == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([-2.0, -0.5, 0.0, 0.5, 1.0, 3.0]), min_size=1, max_size=4),
       st.integers(0, 3))
def test_exact_derivative_hooks_agree_with_the_definitions(row, target):
    """Where a hook knows a value, the derivative definition at 4000 bits agrees with it."""
    cases = [("softmax", (tuple(row),), tuple(float((i % 3) - 1) for i in range(len(row)))),
             ("log_softmax", (tuple(row),), tuple(float((i % 3) - 1) for i in range(len(row)))),
             ("logsumexp", (tuple(row),), 1.0),
             ("cross_entropy", (tuple(row), target % len(row)), None),
             ("distillation_loss", (tuple(row), tuple(x + 1.0 for x in row), 2.0), None)]
    for function, point, cotangent in cases:
        known = get_function(function).exact_derivative(point, cotangent)
        if known is None:
            continue
        values = _mp_derivative(function, point, cotangent)
        for k, v in zip(known, values):
            if k is not None:
                with mpmath.workprec(4000):
                    assert abs(mpmath.mpf(k.numerator) / k.denominator - v) <= mpmath.mpf(2) ** -3000
