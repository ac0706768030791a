"""Case sets: reproducible, representable, and thresholds where they claim to be."""

import math

import pytest

from refact.conformance.cases.sets import (
    LEVELS, SET_NAMES, case_set, cases_for, locate_threshold, threshold_holds, threshold_names,
    threshold_values,
)
from refact.conformance.truth.catalog import NAMES, THRESHOLDS, get_function
from refact.conformance.numbers.formats import (
    FLOAT16, FORMATS, is_representable, next_down, next_up, to_bits,
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REFACT_CACHE_DIR", str(tmp_path / "cache"))


def _floats(point):
    for a in point:
        if isinstance(a, tuple):
            yield from a
        elif isinstance(a, float):
            yield a


@pytest.mark.parametrize("name", NAMES)
def test_default_cases_are_reproducible_representable_and_well_formed(name):
    spec = get_function(name)
    for fmt in FORMATS.values():
        cases = cases_for(name, fmt, "default", seed=0)
        assert cases == cases_for(name, fmt, "default", seed=0)
        assert 150 <= len(cases) <= 500, (name, fmt.name, len(cases))
        assert {s for s, _ in cases} <= set(SET_NAMES)
        assert {"special", "seed", "thresholds", "bits", "loguniform"} <= {s for s, _ in cases}
        for set_name, point in cases:
            assert len(point) == spec.arity
            assert all(is_representable(x, fmt) for x in _floats(point)), (set_name, point)
            for parameter, value in zip(spec.parameters, point):
                if parameter.role == "class_index":
                    assert isinstance(value, int) and 0 <= value < len(point[0])
                if parameter.role == "row":
                    assert isinstance(value, tuple) and value


def test_seeds_change_only_the_random_sets():
    a = dict(cases_for("sigmoid", "float32", "default", seed=0))
    b = cases_for("sigmoid", "float32", "default", seed=1)
    assert case_set("special", "sigmoid", "float32", seed=0) == case_set("special", "sigmoid", "float32", seed=1)
    assert case_set("bits", "sigmoid", "float32", seed=0) != case_set("bits", "sigmoid", "float32", seed=1)
    assert len(b) == len(cases_for("sigmoid", "float32", "default", seed=1))
    assert a


def test_levels_scale():
    for name in ("sigmoid", "softmax", "cross_entropy"):
        quick = cases_for(name, "float64", "quick")
        default = cases_for(name, "float64", "default")
        assert 30 <= len(quick) <= 100 and len(quick) < len(default)
    assert LEVELS == ("quick", "default", "full")
    with pytest.raises(ValueError):
        cases_for("sigmoid", "float64", "huge")


def test_the_seed_set_has_the_hard_cases():
    seed_points = case_set("seed", "cross_entropy", "float64")
    assert ((1.0, 2.0, 3.0, 4.0, -3.0, -4.0, -2.0, -10000.0), 7) in seed_points
    assert (-10000.0,) in case_set("seed", "sigmoid", "float64")
    assert (1e-300,) in case_set("seed", "probit", "float64")
    special = case_set("special", "softmax", "float16")
    assert ((-math.inf, -math.inf),) in special and ((math.inf, 0.0),) in special


def test_exhaustive_sets_cover_every_16_bit_pattern():
    points = case_set("exhaustive", "sigmoid", "float16", level="full")
    assert len(points) == 65536
    values = [p[0] for p in points]
    finite_or_inf = {to_bits(v, FLOAT16) for v in values if v == v}
    assert len(finite_or_inf) == 65536 - 2046  # every non-NaN pattern once (2046 NaN patterns)
    assert sum(1 for v in values if v != v) == 2046
    assert case_set("exhaustive", "sigmoid", "float32", level="full") == []
    assert case_set("exhaustive", "sigmoid", "float16", level="default") == []
    rows = case_set("exhaustive", "softmax", "bfloat16", level="full")
    assert len(rows) == 65536 and rows[5] == ((0.0, rows[5][0][1]),)


BISECTED = [name for name, t in THRESHOLDS.items() if t.test is not None]


@pytest.mark.parametrize("name", BISECTED)
def test_thresholds_are_where_they_claim(name):
    """At the located x the predicate holds and one step below it does not; the
    oracle answers come from the golden vectors (x and its neighbours are in the
    default thresholds set)."""
    for fmt in FORMATS.values():
        for x in threshold_values(name, fmt):
            assert threshold_holds(name, x, fmt), (name, fmt.name, x)
            assert not threshold_holds(name, next_down(x, fmt), fmt), (name, fmt.name, x)


def test_golden_thresholds_match_a_fresh_search():
    for name in ("sigmoid_rounds_to_one", "sigmoid_nonzero", "softplus_equals_x", "ndtr_normal", "exp_overflow"):
        assert threshold_values(name, "float16") == locate_threshold(name, "float16")
        assert threshold_values(name, "bfloat16") == locate_threshold(name, "bfloat16")


def test_known_threshold_locations():
    """The regime changes quoted in the docs: exp overflow near 709.78 (float64),
    88.72 (float32), 11.09 (float16); sigmoid reaching 1 near 36.7-37.4 / 16.6-17.3."""
    assert 709.78 < threshold_values("exp_overflow", "float64")[0] < 709.79
    assert 88.72 < threshold_values("exp_overflow", "float32")[0] < 88.73
    assert 11.0 < threshold_values("exp_overflow", "float16")[0] < 11.1
    assert 36 < threshold_values("sigmoid_rounds_to_one", "float64")[0] < 38
    assert 16 < threshold_values("sigmoid_rounds_to_one", "float32")[0] < 18
    assert -746 < threshold_values("sigmoid_nonzero", "float64")[0] < -744
    assert threshold_values("probability_near_one", "float32") == [next_down(1.0, "float32")]


def test_row_thresholds_use_the_gaps():
    names = threshold_names("log_softmax")
    assert "sigmoid_rounds_to_one" in names and "sigmoid_nonzero" in names
    gaps = {-p[0][1] for p in case_set("thresholds", "log_softmax", "float32") if len(p[0]) == 2}
    g = threshold_values("sigmoid_rounds_to_one", "float32")[0]
    assert {g, next_up(g, "float32"), next_down(g, "float32")} <= gaps
