"""records: the result record, Judgement (its scalar path and its numpy path, which must
give the same figures), failure-class counts, conventions, refusals, the worst points,
report_envelope, input_hex and percentile."""

import datetime
import math
import platform
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import refact
from refact.conformance.numbers.formats import (
    FLOAT16, FLOAT32, FLOAT64, FORMATS, from_ordinal, get_format, next_down, next_up, ordinal,
    round_to_format, ulp,
)
from refact.conformance.numbers.ruler import ALL_CLASSES, float_pair
from refact.conformance.report import writers
from refact.conformance.run.records import (
    CHECKS, SCHEMA, STATUSES, WORST, Judgement, convention_field, input_hex, percentile, plain,
    record, report_envelope,
)
from refact.conformance.truth.oracle import Truth, truth_many

NAN, INF = math.nan, math.inf


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REFACT_CACHE_DIR", str(tmp_path / "cache"))


class FakeConvention:
    """Duck-typed like backends.Convention: what Judgement and record() read of one."""

    def __init__(self, name, covers, summary="a documented clamp", reference="https://example.org/doc"):
        self.name, self.summary, self.reference = name, summary, reference
        self._covers = covers
        self.calls = []

    def applies(self, point, exact, fmt, options):
        self.calls.append((point, fmt))
        return self._covers(point)


def _value(i, y, exact, fmt, x=None):
    """One ``(point, y, rounded, exact, pair, x)`` as checks.accuracy builds them."""
    fmt = get_format(fmt)
    if exact is None:
        return ((float(i),), y, None, None, None, x)
    rounded = round_to_format(exact, fmt)
    return ((float(i),), y, rounded, exact, float_pair(exact), x)


def _judge_scalar(fmt, budget, values, conventions=()):
    judgement = Judgement(get_format(fmt), budget, tuple(conventions))
    for point, y, rounded, exact, _, x in values:
        judgement.add(point, y, rounded, exact, x=x)
    return judgement


def _judge_array(fmt, budget, values, conventions=()):
    judgement = Judgement(get_format(fmt), budget, tuple(conventions))
    judgement.add_many(values)
    return judgement


def _rec(judgement, budget=None):
    return record("b", "sigmoid", judgement.fmt.name, "accuracy", judgement,
                  budget=judgement.budget if budget is None else budget)


# --- hand-computed ULP figures ----------------------------------------------------------

# float32 around 1 + 2**-25 (the ruler's doctest): ulp(t) = 2**-23
T1 = Fraction(1) + Fraction(1, 2 ** 25)
ONE_UP = 1.0 + 2.0 ** -23
ONE_UP2 = 1.0 + 2.0 ** -22
ONE_DOWN = 1.0 - 2.0 ** -24


def _float32_values():
    # |y - t| / 2**-23: 1.0 -> 1/4, 1+2**-23 -> 3/4, 1-2**-24 -> 3/4, 1+2**-22 -> 7/4
    return [_value(i, y, T1, FLOAT32, x=float(i)) for i, y in enumerate((1.0, ONE_UP, ONE_DOWN, ONE_UP2))]


@pytest.mark.parametrize("judge", [_judge_scalar, _judge_array], ids=["scalar", "array"])
def test_ulp_figures_by_hand(judge):
    judgement = judge("float32", 1.0, _float32_values())
    # the value outside the budget fails, and its error still counts in the figures
    assert sorted(judgement.ulps) == [0.25, 0.75, 0.75, 1.75]
    assert judgement.points == 4 and judgement.failing == 1
    r = _rec(judgement)
    assert r["status"] == "fail"
    assert r["max_ulp"] == 1.75 and r["p99_ulp"] == 1.75
    assert r["mean_ulp"] == 3.5 / 4
    assert r["correctly_rounded"] == 0.25 and r["within_1ulp"] == 0.75
    assert r["message"] == "1 of 4 values outside the budget of 1 ULP"
    (worst,) = r["worst"]
    assert worst["ulp"] == 1.75 and worst["output"] == ONE_UP2 and worst["expected"] == 1.0
    assert worst["input"] == [3.0] and worst["input_hex"] == ["0x40400000"]
    assert "class" not in worst and "convention" not in worst
    assert sorted(judgement.xs) == [(0.0, 0.25), (1.0, 0.75), (2.0, 0.75), (3.0, 1.75)]


@pytest.mark.parametrize("judge", [_judge_scalar, _judge_array], ids=["scalar", "array"])
def test_a_wider_budget_passes_with_the_same_figures(judge):
    r = _rec(judge("float32", 2.0, _float32_values()))
    assert r["status"] == "pass" and r["message"] == "" and r["worst"] == []
    assert r["max_ulp"] == 1.75 and r["mean_ulp"] == 3.5 / 4
    assert r["correctly_rounded"] == 0.25 and r["within_1ulp"] == 0.75


def test_add_returns_the_error_or_the_class():
    judgement = Judgement(FLOAT32, 1.0)
    assert judgement.add((0.0,), ONE_UP, 1.0, T1) == 0.75
    assert judgement.add((0.0,), NAN, 1.0, T1) == "spurious_nan"
    assert judgement.add((0.0,), 1.0, None, None) == "undecided"
    assert judgement.add((0.0,), ONE_UP2, 1.0, T1) == 1.75  # outside the budget, no class
    # a per-call budget (special_values asks exact rows with 0)
    assert judgement.add((0.0,), 1.0, 1.0, T1, budget=0.0) == 0.25
    assert judgement.failing == 3 and judgement.points == 5


def test_the_array_path_measures_ordinary_values_in_numpy(monkeypatch):
    # values inside the budget never reach add(); only the one outside it does
    calls = []
    original = Judgement.add

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("error"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Judgement, "add", spy)
    judgement = _judge_array("float32", 1.0, _float32_values())
    assert calls == [1.75]  # measured by numpy, handed over with its error
    assert judgement.points == 4


def test_figures_against_mpmath_for_real_oracle_truths():
    xs = [-20.0, -3.5, -0.75, 0.125, 1.0, 2.5, 9.0, 30.0]
    fmt = FLOAT32
    xs = [round_to_format(x, fmt) for x in xs]
    truths = truth_many("sigmoid", [(x,) for x in xs], "float32")
    steps = [0, 1, -1, 2, 0, -2, 1, 0]
    values = []
    expected = []
    old_precision, mpmath.mp.prec = mpmath.mp.prec, 300
    try:
        for x, t, s in zip(xs, truths, steps):
            y = t.rounded
            for _ in range(abs(s)):
                y = next_up(y, fmt) if s > 0 else next_down(y, fmt)
            ((rounded, exact),) = t.elements
            values.append(((x,), y, rounded, exact, t.float_pairs[0], x))
            s_true = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
            binade = int(mpmath.floor(mpmath.log(s_true, 2)))
            expected.append(float(abs(mpmath.mpf(y) - s_true) / mpmath.mpf(2) ** (binade - 23)))
    finally:
        mpmath.mp.prec = old_precision
    # the oracle keeps its exact values to p + 32 bits: figures agree to about 2**-32 ULP
    for judge in (_judge_scalar, _judge_array):
        r = _rec(judge("float32", 4.0, values))
        assert r["points"] == 8 and r["status"] == "pass"
        assert r["max_ulp"] == pytest.approx(max(expected), abs=2.0 ** -30)
        assert r["mean_ulp"] == pytest.approx(math.fsum(expected) / 8, abs=2.0 ** -30)
        assert r["correctly_rounded"] == sum(e <= 0.5 for e in expected) / 8 == 3 / 8
        assert max(expected) > 1.5  # two steps off is more than 1.5 ULP: the figures are not trivial


# --- failure classes ----------------------------------------------------------------------


def _class_set():
    """float16 (budget 1): one point of each class, and ordinary points at the edges.
    smallest subnormal 2**-24, smallest normal 2**-14, largest finite 65504."""
    third = Fraction(1, 3)
    r_third = round_to_format(third, FLOAT16)  # 1365/4096, 1/3 ULP below 1/3
    rows = [
        (NAN, third),                               # spurious_nan
        (-INF, Fraction(1, 2)),                     # spurious_inf (an infinity, wrong sign)
        (INF, Fraction(60000)),                     # premature_overflow
        (65504.0, Fraction(70000)),                 # missing_inf (70000 rounds to inf)
        (0.0, Fraction(-1, 2 ** 30)),               # wrong_sign_zero (rounds to -0)
        (0.0, Fraction(3, 2 ** 24)),                # flush_to_zero (subnormal truth)
        (0.0, Fraction(1, 2 ** 10)),                # premature_underflow (normal truth)
        (0.25, NAN),                                # missing_nan
        (0.5, None),                                # undecided
        # ordinary points and their ULP error
        (NAN, NAN),                                 # 0: NaN for NaN
        (-0.0, Fraction(0)),                        # 0: either zero for an exact zero
        (INF, Fraction(70000)),                     # 0: the infinity the truth rounds to
        (-0.0, Fraction(-1, 2 ** 30)),              # 2**-30 / 2**-24 = 1/64
        (r_third, third),                           # 1/3
        (next_up(r_third, FLOAT16), third),         # 2/3
        (2.0 ** -24, Fraction(5, 2 ** 26)),         # 1/4 (subnormal spacing)
        (2.0 ** -23, Fraction(5, 2 ** 26)),         # 3/4
    ]
    return [_value(i, y, exact, FLOAT16, x=float(i)) for i, (y, exact) in enumerate(rows)]


CLASS_ULPS = [0.0, 0.0, 0.0, 1 / 64, 0.25, 1 / 3, 2 / 3, 0.75]


@pytest.mark.parametrize("judge", [_judge_scalar, _judge_array], ids=["scalar", "array"])
def test_class_counts_on_nans_infs_zeros_and_flushes(judge):
    judgement = judge("float16", 1.0, _class_set())
    assert judgement.classes == {
        "spurious_nan": 1, "spurious_inf": 1, "missing_inf": 1, "wrong_sign_zero": 1,
        "flush_to_zero": 1, "premature_underflow": 1, "premature_overflow": 1,
        "undecided": 1, "missing_nan": 1,
    }
    assert judgement.failing == 8 and judgement.points == 17  # undecided is not a failure
    assert sorted(judgement.ulps) == pytest.approx(CLASS_ULPS, rel=1e-15)
    r = _rec(judgement)
    assert r["status"] == "fail"
    assert r["max_ulp"] == 0.75 and r["p99_ulp"] == 0.75
    assert r["mean_ulp"] == pytest.approx(math.fsum(CLASS_ULPS) / 8, rel=1e-15)
    assert r["correctly_rounded"] == 6 / 17 and r["within_1ulp"] == 8 / 17
    assert r["message"] == (
        "8 of 17 values outside the budget of 1 ULP; failure classes: spurious_nan 1, "
        "spurious_inf 1, missing_inf 1, wrong_sign_zero 1, flush_to_zero 1, "
        "premature_underflow 1, premature_overflow 1, missing_nan 1")
    # the worst five: the first five class failures (ties keep their arrival order)
    assert len(r["worst"]) == WORST
    assert [w["class"] for w in r["worst"]] == [
        "spurious_nan", "spurious_inf", "premature_overflow", "missing_inf", "wrong_sign_zero"]
    assert all(w["ulp"] == INF for w in r["worst"])
    assert r["worst"][0]["input_hex"] == ["0x0000"] and r["worst"][1]["input_hex"] == ["0x3c00"]


def test_record_counts_classes_by_the_ruler_names():
    r = _rec(_judge_array("float16", 1.0, _class_set()))
    assert tuple(r["classes"]) == ALL_CLASSES
    assert sum(r["classes"].values()) == 9


# --- the two paths agree ---------------------------------------------------------------------

SPECIAL_OUTPUTS = (NAN, INF, -INF, 0.0, -0.0)


@st.composite
def judged_values(draw):
    fmt = draw(st.sampled_from(list(FORMATS.values())))
    largest = ordinal(fmt.largest_finite, fmt)
    values = []
    for i in range(draw(st.integers(1, 16))):
        kind = draw(st.sampled_from(["near", "near", "near", "near", "tiny", "huge", "nan", "undecided"]))
        if kind == "undecided":
            values.append(_value(i, draw(st.sampled_from([0.5, NAN])), None, fmt))
            continue
        if kind == "nan":
            exact = NAN
        elif kind == "tiny":  # below the subnormals or among them: rounds to 0 or a subnormal
            exact = Fraction(draw(st.integers(-64, 64)), 2 ** draw(st.integers(-fmt.emin + fmt.precision - 4,
                                                                             -fmt.emin + fmt.precision + 6)))
        elif kind == "huge":  # about the overflow threshold
            exact = fmt.overflow_threshold * Fraction(draw(st.integers(115, 141)), 128)
            exact = -exact if draw(st.booleans()) else exact
        else:
            k = draw(st.integers(-largest, largest).filter(lambda k: k != 0))
            base = from_ordinal(k, fmt)
            # off the grid by a fraction of a ulp, dyadic or not (thirds, fifths ...)
            numerator = draw(st.integers(-12, 12))
            denominator = draw(st.sampled_from([2, 3, 4, 5, 8, 24, 1 << 20]))
            exact = Fraction(base) + Fraction(numerator, denominator * 12) * Fraction(ulp(base, fmt))
        rounded = round_to_format(exact, fmt)
        if draw(st.integers(0, 5)) == 0:
            y = draw(st.sampled_from(SPECIAL_OUTPUTS))
        elif rounded != rounded:
            y = draw(st.sampled_from([NAN, 0.5]))
        else:
            y = rounded
            for _ in range(draw(st.integers(0, 4))):
                y = next_up(y, fmt) if draw(st.booleans()) else next_down(y, fmt)
        values.append(_value(i, y, exact, fmt, x=float(i) if draw(st.booleans()) else None))
    budget = draw(st.sampled_from([0.5, 1.0, 2.0, 4.0]))
    return fmt, budget, values


def _close(a, b):
    if a is None or b is None:
        return a is b
    return a == b or math.isclose(a, b, rel_tol=2.0 ** -45)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(judged_values(), st.booleans())
def test_array_and_scalar_paths_agree(case, with_convention):
    fmt, budget, values = case
    conventions = (FakeConvention("odd_points", lambda p: int(p[0]) % 2 == 1),) if with_convention else ()
    scalar = _judge_scalar(fmt, budget, values, conventions)
    array = _judge_array(fmt, budget, values, conventions)
    a, b = _rec(scalar), _rec(array)
    for key in ("points", "status", "message", "classes", "correctly_rounded", "within_1ulp", "convention"):
        if key == "convention" and a[key] is not None:
            assert a[key]["points"] == b[key]["points"] and a[key]["name"] == b[key]["name"]
            assert _close(a[key]["max_ulp"], b[key]["max_ulp"])
            continue
        assert a[key] == b[key], key
    for key in ("max_ulp", "p99_ulp", "mean_ulp"):
        assert _close(a[key], b[key]), (key, a[key], b[key])
    assert scalar.failing == array.failing
    assert len(scalar.ulps) == len(array.ulps)
    assert all(_close(u, v) for u, v in zip(sorted(scalar.ulps), sorted(array.ulps)))
    assert sorted(x for x, _ in scalar.xs) == sorted(x for x, _ in array.xs)
    assert [w["ulp"] for w in a["worst"]] == pytest.approx([w["ulp"] for w in b["worst"]], rel=2.0 ** -45)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-8.0, 8.0, allow_nan=False).map(lambda v: round_to_format(v, FLOAT64)),
                min_size=1, max_size=40),
       st.lists(st.integers(-3, 3), min_size=40, max_size=40))
def test_paths_agree_on_random_outputs_near_oracle_truths(xs, steps):
    xs = list(dict.fromkeys(x for x in xs if x != 0.0)) or [1.0]
    truths = truth_many("sigmoid", [(x,) for x in xs], "float64", cache=False)
    values = []
    for x, t, s in zip(xs, truths, steps):
        y = t.rounded
        for _ in range(abs(s)):
            y = next_up(y, FLOAT64) if s > 0 else next_down(y, FLOAT64)
        ((rounded, exact),) = t.elements
        values.append(((x,), y, rounded, exact, t.float_pairs[0], x))
    a = _rec(_judge_scalar("float64", 2.0, values))
    b = _rec(_judge_array("float64", 2.0, values))
    assert (a["points"], a["status"], a["correctly_rounded"], a["within_1ulp"]) == \
           (b["points"], b["status"], b["correctly_rounded"], b["within_1ulp"])
    for key in ("max_ulp", "p99_ulp", "mean_ulp"):
        assert _close(a[key], b[key])


def test_a_figure_on_a_threshold_is_decided_exactly():
    # exact = 1 + 2**-53 (a float64 tie), y = 1 + 2**-52: exactly 1/2 ULP: correctly rounded
    # and within the budget of 1/2, on either path
    exact = Fraction(1) + Fraction(1, 2 ** 53)
    values = [_value(0, 1.0 + 2.0 ** -52, exact, FLOAT64), _value(1, 1.0, exact, FLOAT64)]
    for judge in (_judge_scalar, _judge_array):
        judgement = judge("float64", 0.5, values)
        assert judgement.ulps == [0.5, 0.5] and judgement.failing == 0
        assert _rec(judgement)["correctly_rounded"] == 1.0


# --- conventions and refusals -----------------------------------------------------------------


@pytest.mark.parametrize("judge", [_judge_scalar, _judge_array], ids=["scalar", "array"])
def test_a_convention_takes_its_points_out_of_the_figures(judge):
    # points 1 and 3 are off; a convention covers point 3 (7/4 ULP) and a class failure
    # at point 4; point 1 (3/4) is inside the budget and never asks the convention
    clamp = FakeConvention("clamp", lambda p: p[0] >= 3.0)
    values = _float32_values() + [_value(4, NAN, T1, FLOAT32, x=4.0)]
    judgement = judge("float32", 1.0, values, (clamp,))
    assert [p for p, _ in clamp.calls] == [(3.0,), (4.0,)]
    assert judgement.failing == 0 and judgement.points == 5
    assert judgement.convention_points == {"clamp": 2}
    assert judgement.convention_ulp == {"clamp": INF}
    assert judgement.classes["spurious_nan"] == 0  # covered, not counted as a class
    assert sorted(judgement.ulps) == [0.25, 0.75, 0.75]
    assert sorted(judgement.xs) == [(0.0, 0.25), (1.0, 0.75), (2.0, 0.75)]
    r = _rec(judgement)
    assert r["status"] == "convention" and r["message"] == ""
    assert r["convention"] == {
        "name": "clamp", "summary": "a documented clamp", "reference": "https://example.org/doc",
        "points": 2, "max_ulp": INF, "all": [{"name": "clamp", "points": 2, "max_ulp": INF}]}
    assert [w["convention"] for w in r["worst"]] == ["clamp", "clamp"]
    assert [w.get("class") for w in r["worst"]] == ["spurious_nan", None]


def test_failures_rank_before_convention_points_in_the_worst_list():
    clamp = FakeConvention("clamp", lambda p: p[0] < 3.0)
    values = [_value(i, NAN, T1, FLOAT32) for i in range(6)]  # 0..2 covered, 3..5 failing
    r = _rec(_judge_scalar("float32", 1.0, values, (clamp,)))
    assert r["status"] == "fail" and r["convention"]["points"] == 3
    assert [w["input"] for w in r["worst"]] == [[3.0], [4.0], [5.0], [0.0], [1.0]]


def _truth(rounded, exact):
    return Truth("sigmoid", "float64", (0.0,), rounded, exact, "ok", (), 0, "exact")


def test_refusing_where_nan_is_due_is_counted_but_not_failing():
    judgement = Judgement(FLOAT64, 2.0)
    judgement.refuse((NAN,), _truth(NAN, NAN), "ValueError: NaN")
    assert (judgement.points, judgement.refused, judgement.failing) == (1, 1, 0)
    r = record("b", "sigmoid", "float64", "accuracy", judgement, budget=2.0, refused=judgement.refused)
    assert r["status"] == "pass" and r["message"] == "raised on 1 input(s)" and r["refused"] == 1
    assert r["correctly_rounded"] == 0.0 and r["max_ulp"] is None


def test_refusing_where_a_number_is_due_fails_with_the_message():
    judgement = Judgement(FLOAT64, 2.0)
    judgement.add((1.0,), 0.7310585786300049, 0.7310585786300049, Fraction(7310585786300049, 10 ** 16))
    judgement.refuse((2.0,), _truth(0.8807970779778823, Fraction(8807970779778823, 10 ** 16)),
                     "ValueError: no")
    r = record("b", "sigmoid", "float64", "accuracy", judgement, budget=2.0)
    assert r["status"] == "fail"
    assert r["message"] == "1 of 2 values outside the budget of 2 ULP; raised on 1 input(s)"
    assert r["worst"] == [{"input": [2.0], "input_hex": ["0x4000000000000000"], "output": None,
                           "expected": 0.8807970779778823, "ulp": None, "error": "ValueError: no"}]


def test_the_worst_list_keeps_the_five_largest_errors():
    # exact = 1 + 2**-25 in float32; y = 1 + k ulp: errors k - 1/4 for k = 2..9, all over budget
    ys = [1.0 + k * 2.0 ** -23 for k in range(2, 10)]
    values = [_value(i, y, T1, FLOAT32) for i, y in enumerate(ys)]
    for judge in (_judge_scalar, _judge_array):
        r = _rec(judge("float32", 1.0, values))
        assert [w["ulp"] for w in r["worst"]] == [8.75, 7.75, 6.75, 5.75, 4.75]
        assert r["worst"][0]["input_hex"] == ["0x40e00000"]  # the point 7.0
        assert r["max_ulp"] == 8.75 and r["correctly_rounded"] == 0.0 and r["within_1ulp"] == 0.0


# --- record() ------------------------------------------------------------------------------


def test_record_without_a_judgement():
    r = record("torch", "sigmoid", "float32", "dtype", status="fail", points=1, message="promoted")
    assert r == {
        "backend": "torch", "function": "sigmoid", "format": "float32", "check": "dtype",
        "status": "fail", "severity": "major", "budget_ulp": None, "message": "promoted",
        "classes": dict.fromkeys(ALL_CLASSES, 0), "points": 1, "max_ulp": None, "p99_ulp": None,
        "mean_ulp": None, "correctly_rounded": None, "within_1ulp": None, "worst": [],
        "convention": None, "variant": None}


def test_record_with_an_empty_judgement_passes_with_no_figures():
    r = record("b", "sigmoid", "float64", "accuracy", Judgement(FLOAT64, 2.0), budget=2.0)
    assert r["status"] == "pass" and r["points"] == 0
    assert (r["max_ulp"], r["p99_ulp"], r["mean_ulp"], r["correctly_rounded"]) == (None, None, None, None)


def test_record_given_status_and_counted_classes_win():
    judgement = _judge_scalar("float32", 1.0, _float32_values())
    counted = {"spurious_nan": 4}
    r = record("b", "sigmoid", "float32", "properties", judgement, status="error", message="boom",
               classes_counted=counted, extra_field=[1, 2])
    assert r["status"] == "error" and r["message"] == "boom"  # not derived, not extended
    assert r["classes"] == counted and r["extra_field"] == [1, 2]
    assert r["max_ulp"] == 1.75  # figures still come from the judgement


def test_record_extra_fields_override_the_defaults():
    r = record("b", "sigmoid", "float32", "accuracy", Judgement(FLOAT32, 1.0), points=7, worst=["w"])
    assert r["points"] == 7 and r["worst"] == ["w"]


def test_records_make_a_valid_report():
    judgement = _judge_array("float16", 1.0, _class_set())
    results = [record("b", "sigmoid", "float16", "accuracy", judgement, budget=1.0),
               record("b", "sigmoid", "float16", "dtype", status="pass", points=1)]
    report = report_envelope(results, [{"name": "b", "version": None, "device": "cpu",
                                        "available": True, "error": None}])
    writers.validate(report)


def test_convention_field_names_the_largest_and_sums_the_points():
    entries = [{"name": "a", "summary": "sa", "reference": "ra", "points": 2, "max_ulp": 9.0},
               {"name": "b", "summary": "sb", "reference": "rb", "points": 5, "max_ulp": 3.0}]
    assert convention_field(entries) == {
        "name": "b", "summary": "sb", "reference": "rb", "points": 7, "max_ulp": 3.0,
        "all": [{"name": "a", "points": 2, "max_ulp": 9.0}, {"name": "b", "points": 5, "max_ulp": 3.0}]}
    assert convention_field([]) is None


# --- the envelope --------------------------------------------------------------------------------


def test_report_envelope():
    results = [{"status": s} for s in ("pass", "fail", "pass", "skip", "convention", "pass")]
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    report = report_envelope(results, iter([{"name": "x"}]), seed="7", cases="quick", device="cpu")
    after = datetime.datetime.now(datetime.timezone.utc)
    assert report["schema"] == SCHEMA == "refact.report/1"
    assert report["refact_version"] == refact.__version__
    assert report["summary"] == {"pass": 3, "fail": 1, "convention": 1, "error": 0, "skip": 1}
    assert tuple(report["summary"]) == STATUSES
    assert report["backends"] == [{"name": "x"}] and report["results"] == results
    environment = report["environment"]
    assert environment["seed"] == 7 and environment["cases"] == "quick" and environment["device"] == "cpu"
    assert environment["python"] == platform.python_version() and environment["cpu"]
    created = datetime.datetime.fromisoformat(report["created"])
    assert created.utcoffset() == datetime.timedelta(0) and before <= created <= after


def test_report_envelope_rejects_an_unknown_status():
    with pytest.raises(KeyError):
        report_envelope([{"status": "passed"}], [])


def test_contract_names():
    assert CHECKS == ("accuracy", "special_values", "properties", "dtype", "gradient")
    assert STATUSES == ("pass", "fail", "convention", "error", "skip")


# --- input_hex, plain, percentile ------------------------------------------------------------------


def test_input_hex():
    assert input_hex(1.0, "float16") == "0x3c00"
    assert input_hex(1.0, "bfloat16") == "0x3f80"
    assert input_hex(-0.0, "float64") == "0x8000000000000000"
    assert input_hex(-INF, "float32") == "0xff800000"
    assert input_hex(NAN, "float16") == "0x7e00"
    assert input_hex(3, "float16") == "3"  # a class index stays an integer
    assert input_hex((1.0, (2.0, -0.0), 1), FLOAT16) == ["0x3c00", ["0x4000", "0x8000"], "1"]
    # a value the format cannot hold falls back to the float's own hex, not an error
    assert input_hex(0.1, "float16") == (0.1).hex() == "0x1.999999999999ap-4"


def test_plain_turns_tuples_into_lists():
    assert plain(((1.0, 2.0), 3, (4.0,))) == [[1.0, 2.0], 3, [4.0]]
    assert plain(5.0) == 5.0


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.99) is None
    assert percentile([1.0, 2.0, 3.0], 0.99) == 3.0  # ceil(2.97) = 3rd value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1e6), min_size=1, max_size=300), st.sampled_from([0.01, 0.5, 0.9, 0.99, 1.0]))
def test_percentile_is_numpy_inverted_cdf(values, q):
    values = sorted(values)
    assert percentile(values, q) == np.quantile(values, q, method="inverted_cdf")


@pytest.mark.parametrize("status,classes,max_ulp,budget,flush,expected", [
    ("pass", {}, 0.5, 2.0, False, None),
    ("skip", {}, None, None, False, None),
    ("error", {}, None, 2.0, False, None),
    ("fail", {"spurious_nan": 1}, 0.5, 2.0, False, "critical"),
    ("fail", {"premature_underflow": 3}, None, 2.0, False, "critical"),
    ("fail", {"missing_nan": 1}, 0.5, 2.0, False, "critical"),
    ("fail", {}, 1000.0, 2.0, False, "critical"),
    ("fail", {}, 999.0, 2.0, False, "major"),
    ("fail", {"flush_to_zero": 2}, 0.5, 2.0, False, "major"),
    ("fail", {"wrong_sign_zero": 4}, 0.5, 2.0, False, "minor"),
    ("fail", {"wrong_sign_zero": 4}, 3.0, 2.0, False, "major"),
    ("fail", {}, None, None, False, "major"),  # a refusal, a promoted dtype
    ("convention", {}, 5e5, 2.0, False, None),  # a documented clamp: shown, not weighed
    ("convention", {}, None, 2.0, True, "minor"),  # a documented flush
])
def test_severity_follows_the_design(status, classes, max_ulp, budget, flush, expected):
    from refact.conformance.run.records import severity_of

    counts = dict.fromkeys(ALL_CLASSES, 0) | classes
    assert severity_of(status, counts, max_ulp, budget, flush) == expected


def test_a_near_tie_at_the_smallest_subnormal_is_an_ulp_error_in_the_scalar_path_too():
    # the truth is 0.500003 of float32's smallest subnormal: 0 is 0.500003 ULP off, in
    # the budget (no flush); 0 for 0.9 of it is 0.9 ULP off, outside a budget of 0.6
    tiny = Fraction(2) ** -149
    near_tie, far = tiny * Fraction(500003, 1000000), tiny * Fraction(9, 10)
    judgement = Judgement(FLOAT32, 0.6)
    assert judgement.add((-103.0,), 0.0, float(tiny), near_tie) == pytest.approx(0.500003)
    assert judgement.add((-103.0,), 0.0, float(tiny), far) == "flush_to_zero"
    assert judgement.classes["flush_to_zero"] == 1 and judgement.failing == 1
