"""The option case sets reach the catalog's edges, in every format, with few calls."""

import math

import pytest

from refact.conformance.cases.sets import option_cases
from refact.conformance.numbers.formats import FORMATS, get_format, is_representable
from refact.conformance.truth.catalog import NAMES, get_function

INF = math.inf


def _values(cases, name):
    return [c.options[name] for c in cases if name in c.options]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_declared_option_is_exercised_and_calls_stay_few(fmt):
    total = 0
    for function in NAMES:
        cases = option_cases(function, fmt)
        total += len(cases)
        assert {c.option for c in cases} == {o.name for o in get_function(function).options}
        for case in cases:
            for point in case.points:
                for value in point:
                    values = value if isinstance(value, tuple) else (value,)
                    assert all(isinstance(v, int) or is_representable(v, fmt) for v in values)
            for value in case.options.values():
                values = value if isinstance(value, list) else [value]
                assert all(not isinstance(v, float) or is_representable(v, fmt) for v in values)
    assert total <= 60  # the default run's time: a bounded number of calls


@pytest.mark.parametrize("fmt", FORMATS)
def test_cross_entropy_edges(fmt):
    cases = option_cases("cross_entropy", fmt)
    assert set(_values(cases, "label_smoothing")) >= {0.0, 1.0}
    assert set(_values(cases, "reduction")) == {"mean", "sum"}
    weights = [w for ws in _values(cases, "weight") for w in ws]
    f = get_format(fmt)
    assert 0.0 in weights
    assert min(w for w in weights if w > 0) == (1e-300 if fmt == "float64" else f.smallest_normal)
    assert max(weights) == (1e300 if fmt == "float64" else pytest.approx(f.largest_finite / 1024, rel=0.01))
    every_ignored = [c for c in cases if all(t == -100 for _, t in c.points)]
    assert {c.options.get("reduction") for c in every_ignored} == {"mean", "sum"}
    probability = [c for c in cases if c.options.get("target") == "probability"]
    zero_mass = [(row, q) for c in probability for row, q in c.points
                 if any(x == -INF and qj == 0.0 for x, qj in zip(row, q))]
    assert zero_mass and all(sum(q) > 0 for _, q in zero_mass)


@pytest.mark.parametrize("fmt", FORMATS)
def test_other_edges(fmt):
    f = get_format(fmt)
    pos = _values(option_cases("binary_cross_entropy_with_logits", fmt), "pos_weight")
    assert 0.0 in pos and max(pos) >= min(1e300, f.largest_finite / 1024) * 0.99
    temperatures = option_cases("softmax", fmt)
    ts = _values(temperatures, "temperature")
    assert min(ts) == pytest.approx(1e-3, rel=0.01) and max(ts) == pytest.approx(1e3, rel=0.01)
    # a row whose x / T leaves the format's range
    assert any(abs(x) / c.options["temperature"] > f.largest_finite
               for c in temperatures for (row,) in c.points for x in row)
    eps = _values(option_cases("logit", fmt), "eps")
    assert eps[0] == 0.0 and eps[-1] == 0.5 and 0.0 < eps[1] < 0.5
    assert is_representable(1.0 - eps[1], fmt)  # a clamp in the format can reach 1 - eps


def test_seeded_and_reproducible():
    assert option_cases("cross_entropy", "float32", seed=0) == option_cases("cross_entropy", "float32", seed=0)
    assert option_cases("cross_entropy", "float32", seed=0) != option_cases("cross_entropy", "float32", seed=1)
    assert option_cases("sigmoid", "float32") == []
