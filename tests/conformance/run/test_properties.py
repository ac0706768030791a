"""The properties check: a correctly rounded backend passes every property; broken
ones fail with the property named; conventions, missing and failing linked functions
are reported as such; and one real run through a worker process."""

import math

import pytest

pytest.importorskip("mpmath")

from refact.backends import Convention, Point, Unsupported  # noqa: E402
from refact.conformance.report import writers as reports  # noqa: E402
from refact.conformance.run import properties  # noqa: E402
from refact.conformance.cases.sets import cases_for  # noqa: E402
from refact.conformance.truth.catalog import NAMES, get_function  # noqa: E402
from refact.conformance.numbers.formats import next_up, round_to_format, ulp  # noqa: E402
from refact.conformance.run.isolation import JobError  # noqa: E402
from refact.conformance.truth.oracle import truth_many  # noqa: E402


@pytest.fixture(autouse=True)
def small_samples(monkeypatch):
    # Fewer instances per property keep the oracle-backed fakes fast.
    monkeypatch.setattr(properties, "LIMIT", 24)
    monkeypatch.setattr(properties, "TEMPERATURE_ROWS", 8)
    monkeypatch.setattr(properties, "SINGLE_ROWS", 3)
    monkeypatch.setenv("REFACT_CACHE_DIR", "")  # no disk cache: these few truths are quick to compute


class OracleEvaluator:
    """An in-process stand-in for checks.Evaluator whose backend is correctly rounded:
    every output is the oracle's. ``missing`` functions raise Unsupported, ``failing``
    ones JobError; ``calls`` counts outputs() calls."""

    def __init__(self, missing=(), failing=()):
        self.missing, self.failing = set(missing), set(failing)
        self.calls = 0

    def outputs(self, function, fmt, points, options=None):
        self.calls += 1
        if function in self.missing:
            raise Unsupported(f"oracle does not provide {function}")
        if function in self.failing:
            raise JobError(f"RuntimeError: {function} crashed")
        return [self.adjust(function, fmt, p, v)
                for p, v in zip(points, self.correct(function, fmt, points))], fmt

    def correct(self, function, fmt, points):
        """The correctly rounded outputs, one oracle query for the whole batch; an
        elementwise point holding a row (a row of an (N, C) batch) gives a row."""
        flat, shape = [], []
        for point in points:
            rows = get_function(function).kind == "elementwise" and isinstance(point[0], tuple)
            items = [(x,) for x in point[0]] if rows else [point]
            shape.append(len(items) if rows else None)
            flat += items
        values = [tuple(r if r is not None else round_to_format(e, fmt)
                        for r, e in zip(truth.values, truth.exacts))
                  for truth in truth_many(function, flat, fmt)]
        out = []
        for n in shape:
            if n is None:
                out.append(values.pop(0))
            else:
                out.append(tuple(v[0] for v in values[:n]))
                del values[:n]
        return out

    def adjust(self, function, fmt, point, values):
        return values


def steps(value, k, fmt):
    """``value`` moved ``k`` representable steps up."""
    for _ in range(k):
        value = next_up(value, fmt)
    return value


class Broken(OracleEvaluator):
    """The oracle, with ``damage(function, fmt, point, values)`` applied to its outputs."""

    def __init__(self, damage, **kwargs):
        super().__init__(**kwargs)
        self.adjust = damage


def run(evaluator, function, fmt="float32", cases=None, conventions=(), backend="oracle"):
    cases = cases_for(function, fmt, "quick", 0) if cases is None else cases
    return properties.properties_record(evaluator, backend, function, fmt, cases, conventions)


def entry(rec, name):
    (found,) = [e for e in rec["properties"] if e["name"] == name]
    return found


# -- the catalog is covered ------------------------------------------------------------------


def test_every_declared_property_has_a_measure():
    used = set()
    for name in NAMES:
        for prop in get_function(name).properties:
            assert prop.measure in properties.MEASURES, (name, prop.name, prop.measure)
            used.add(prop.measure)
    assert used == set(properties.MEASURES)  # no measure left without a property
    assert [p.name for p in get_function("sigmoid").properties][-1] == "multi_label_shapes"
    assert [p.name for p in get_function("softmax").properties][-1] == "multi_label_shapes"


# -- a correctly rounded backend passes everything ------------------------------------------


@pytest.mark.parametrize("function", NAMES)
def test_correctly_rounded_backend_passes_every_property(function):
    rec = run(OracleEvaluator(), function)
    assert rec["check"] == "properties" and rec["status"] == "pass", rec["message"]
    assert rec["worst"] == []
    for e in rec["properties"]:
        assert e["status"] == "pass", (e, rec["message"])
        assert e["points"] > 0 and e["violations"] == 0
        assert e["max_ulp"] <= e["budget_ulp"]
    assert rec["max_ulp"] == max(e["max_ulp"] for e in rec["properties"])


def test_correctly_rounded_passes_in_a_narrow_format():
    for function in ("sigmoid", "softmax", "log_softmax", "probit"):
        rec = run(OracleEvaluator(), function, fmt="bfloat16")
        assert rec["status"] == "pass", rec["message"]


def test_calls_are_batched():
    evaluator = OracleEvaluator()
    rec = run(evaluator, "softmax")
    n = len(rec["properties"])
    # one call per function per derived point set, plus one per row sent alone
    assert evaluator.calls <= 2 * n + properties.SINGLE_ROWS


def test_record_follows_the_report_schema():
    pytest.importorskip("jsonschema")
    records = [run(OracleEvaluator(), "sigmoid"),
               run(Broken(lambda f, fmt, p, v: (math.nan,) if f == "sigmoid" and p == (2.0,) else v),
                   "sigmoid")]
    report = {"schema": "refact.report/1", "refact_version": "0", "created": "2026-01-01T00:00:00Z",
              "environment": {"python": "3", "platform": "x", "cpu": None, "seed": 0},
              "backends": [], "results": records,
              "summary": {"pass": 1, "fail": 1, "convention": 0, "error": 0, "skip": 0}}
    reports.validate(report)
    assert records[1]["status"] == "fail" and records[1]["max_ulp"] == math.inf


# -- broken backends fail, naming the property --------------------------------------------------


def test_symmetry_broken_by_three_ulp_fails():
    def damage(function, fmt, point, values):
        x = point[0]
        if function == "sigmoid" and not isinstance(x, tuple) and x < 0 and values[0] > 0.05:
            return (steps(values[0], 3, fmt),)
        return values

    rec = run(Broken(damage), "sigmoid")
    assert rec["status"] == "fail"
    symmetry = entry(rec, "symmetry")
    assert symmetry["status"] == "fail" and symmetry["violations"] > 0
    assert 1.0 < symmetry["max_ulp"] <= 3.0
    assert entry(rec, "range")["status"] == "pass"
    assert any(w["property"] == "symmetry" for w in rec["worst"])
    assert "symmetry: max" in rec["message"] and "violate" in rec["message"]


def test_softmax_rows_summing_to_one_plus_1e6_fail():
    def damage(function, fmt, point, values):
        if function == "softmax":
            return tuple(round_to_format(v * (1 + 1e-6), fmt) for v in values)
        return values

    rec = run(Broken(damage), "softmax")
    sums = entry(rec, "sums_to_one")
    assert rec["status"] == "fail" and sums["status"] == "fail"
    assert sums["max_ulp"] > 4  # 1e-6 is about 8 ULP at 1 in float32
    assert entry(rec, "order")["status"] == "pass"
    assert any(w["property"] == "sums_to_one" for w in rec["worst"])


def test_a_decreasing_stretch_fails_monotone():
    def damage(function, fmt, point, values):
        x = point[0]
        if function == "sigmoid" and not isinstance(x, tuple) and 2 <= x <= 4:
            return tuple(truth.rounded for truth in truth_many("sigmoid", [(-x,)], fmt))
        return values

    rec = run(Broken(damage), "sigmoid")
    monotone = entry(rec, "monotone")
    assert monotone["status"] == "fail" and monotone["violations"] > 0
    assert any(w["property"] == "monotone" for w in rec["worst"])


def test_sharpening_softmax_fails_temperature_smoothing():
    # A softmax that goes one-hot when the spread of a row is below 2: entropy drops
    # as the temperature rises (the row [0, 1, 3] has spread 1.5 at T = 2).
    def damage(function, fmt, point, values):
        row = point[0]
        if function == "softmax" and 0 < max(row) - min(row) < 2:
            top = row.index(max(row))
            return tuple(1.0 if j == top else 0.0 for j in range(len(row)))
        return values

    rec = run(Broken(damage), "softmax", cases=[("seed", ((0.0, 1.0, 3.0),))])
    smoothing = entry(rec, "temperature_smoothing")
    assert smoothing["status"] == "fail", rec["message"]
    assert any(w["property"] == "temperature_smoothing" for w in rec["worst"])


def test_temperature_smoothing_tolerates_noise_within_the_accuracy_budget():
    # Outputs one ULP off (within softmax's 4 ULP budget) in the direction that lowers
    # the entropy most must not make a flat entropy curve "decrease".
    def damage(function, fmt, point, values):
        if function == "softmax":
            top = max(range(len(values)), key=lambda j: values[j])
            return tuple(steps(v, 1, fmt) if j == top else -next_up(-v, fmt) if v > 0 else v
                         for j, v in enumerate(values))
        return values

    near_uniform = [("seed", ((0.0, 2.0 ** -20, 2.0 ** -19, 0.0),)),
                    ("seed", ((1.0, 1.0, 1.0 + 2.0 ** -23),))]
    rec = run(Broken(damage), "softmax", cases=near_uniform)
    assert entry(rec, "temperature_smoothing")["status"] == "pass", rec["message"]


def test_logit_inverse_tolerates_the_sigmoid_budget_but_not_a_bad_logit():
    fmt = "float32"

    def sloppy_sigmoid(function, f, point, values):  # 2 ULP off: within sigmoid's budget
        return (steps(values[0], 2, f),) if function == "sigmoid" and point[0] > 0 else values

    assert entry(run(Broken(sloppy_sigmoid), "logit"), "inverse")["status"] == "pass"

    def bad_logit(function, f, point, values):
        if function == "logit" and 0.6 < point[0] < 0.9:
            return (values[0] + 64 * ulp(values[0], f),)
        return values

    rec = run(Broken(bad_logit), "logit", fmt=fmt)
    assert entry(rec, "inverse")["status"] == "fail"


def test_another_functions_own_error_is_left_out_not_blamed():
    # ndtr computed as (1 + erf(x / sqrt 2)) / 2 loses the left tail: ndtr(probit(p))
    # is 0 there, which is ndtr's failure (its accuracy check), not probit's.
    def damage(function, fmt, point, values):
        return (0.0,) if function == "ndtr" and point[0] < -5 else values

    rec = run(Broken(damage), "probit")
    inverse = entry(rec, "inverse")
    assert inverse["status"] == "pass" and inverse["linked_outside"]["ndtr"] > 0
    assert "ndtr outside its accuracy budget" in rec["message"]

    def bad_probit(function, fmt, point, values):  # and probit's own tail error is blamed
        return (values[0] * 1.01,) if function == "probit" and point[0] < 1e-4 else values

    assert entry(run(Broken(bad_probit), "probit"), "inverse")["status"] == "fail"


def test_sigmoid_grad_flushed_to_zero_in_saturation_fails_product():
    def damage(function, fmt, point, values):
        if function == "sigmoid_grad" and abs(point[0]) > 16:
            return (0.0,)
        return values

    cases = [("seed", (x,)) for x in (1.0, -3.0, 17.0, -20.0, 30.0, 90.0)]
    rec = run(Broken(damage), "sigmoid_grad", cases=cases)
    assert entry(rec, "product")["status"] == "fail"
    assert entry(rec, "bounded")["status"] == "pass" and entry(rec, "even")["status"] == "pass"


def test_wrong_shape_of_a_multi_label_batch_fails():
    def damage(function, fmt, point, values):
        if function == "sigmoid" and isinstance(point[0], tuple):  # rows normalised as softmax
            total = sum(values)
            return tuple(round_to_format(v / total, fmt) for v in values)
        return values

    rec = run(Broken(damage), "sigmoid")
    assert entry(rec, "multi_label_shapes")["status"] == "fail"
    assert entry(rec, "symmetry")["status"] == "pass"


# -- conventions, missing and failing functions ---------------------------------------------


def softplus_threshold(function, fmt, point, values):
    """torch's F.softplus: x itself above 20."""
    x = point[0]
    if function == "softplus" and not isinstance(x, tuple) and x > 20:
        return (x,)
    return values


THRESHOLD = Convention("softplus", "softplus_threshold", "x itself above 20", "https://example.org",
                       lambda p: p.args[0] > 20.0, example=Point((30.0,)))


def test_a_documented_convention_is_reported_as_such():
    cases = [("seed", (x,)) for x in (1.0, 3.0, 25.0, 30.0, 40.0)]
    rec = run(Broken(softplus_threshold), "softplus", fmt="float64", cases=cases,
              conventions=(THRESHOLD,))
    difference = entry(rec, "difference")
    # softplus(-40) = 4e-18 is below half an ULP of 40: only 25 and 30 violate
    assert difference["status"] == "convention" and difference["conventions"] == 2
    assert rec["status"] == "convention"
    assert rec["convention"]["name"] == "softplus_threshold" and rec["convention"]["max_ulp"] > 1
    assert all(w.get("convention") == "softplus_threshold" for w in rec["worst"])
    # without the convention the same outputs fail
    assert run(Broken(softplus_threshold), "softplus", fmt="float64", cases=cases)["status"] == "fail"


def test_missing_linked_function_skips_only_that_property():
    rec = run(OracleEvaluator(missing={"softmax"}), "sigmoid")
    link = entry(rec, "softmax_link")
    assert link["status"] == "skip" and "softmax" in link["message"]
    assert rec["status"] == "pass"
    assert "softmax_link: skip" in rec["message"]


def test_a_skipped_property_leaves_no_violations_or_worst_points():
    # probit returning -inf at the subnormals, ndtr missing: ndtr(probit(p)) is skipped
    # and none of its instances judged before ndtr was asked for is counted or shown
    def minus_inf_below_normal(function, fmt, point, values):
        return (-math.inf,) if function == "probit" and point[0] < 1.2e-38 else values

    cases = cases_for("probit", "float32", "quick", 0) + [("tiny", (1.401298464324817e-45,))]
    rec = run(Broken(minus_inf_below_normal, missing={"ndtr"}), "probit", cases=cases)
    inverse = entry(rec, "inverse")
    assert inverse["status"] == "skip" and "ndtr" in inverse["message"]
    assert (inverse["points"], inverse["violations"], inverse["max_ulp"]) == (0, 0, None)
    assert not [w for w in rec["worst"] if w["property"] == "inverse"]


def test_failing_linked_function_is_an_error_of_that_property_only():
    rec = run(OracleEvaluator(failing={"sigmoid"}), "softmax")
    assert entry(rec, "sigmoid_link")["status"] == "error"
    assert entry(rec, "sums_to_one")["status"] == "pass"
    assert rec["status"] == "pass"


def test_failing_own_calls_make_the_record_an_error():
    rec = run(OracleEvaluator(failing={"softmax"}), "softmax")
    assert rec["status"] == "error" and "crashed" in rec["message"]


# -- a real backend through a worker process ------------------------------------------------


def test_numpy_backend_through_a_worker():
    pytest.importorskip("numpy")
    from refact.conformance.run.checks import Evaluator
    from refact.conformance.run.isolation import Worker

    with Worker("numpy", timeout=60) as worker:
        evaluator = Evaluator(worker)
        for function in ("sigmoid", "softmax"):
            rec = run(evaluator, function, backend="numpy")
            assert rec["status"] == "pass", rec["message"]
            assert all(e["points"] > 0 for e in rec["properties"])
