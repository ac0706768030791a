"""checks: the Evaluator's batching and refusals, and the accuracy, special-value, dtype and
gradient checks, with an in-process stand-in for the worker whose backend is correctly
rounded except where a test moves a value by a few representable steps."""

import dataclasses
import math
from fractions import Fraction

import mpmath
import pytest

from refact.conformance.numbers.formats import FLOAT64, next_down, next_up, round_to_format
from refact.conformance.run.checks import Evaluator, accuracy, dtype, gradient, special_values
from refact.conformance.truth.oracle import derivative_truth
from refact.conformance.run.isolation import JobError
from refact.conformance.truth import catalog
from refact.conformance.truth.catalog import NAMES, ORACLE, SpecialValue, get_function
from refact.conformance.truth.oracle import truth_many

NAN, INF = math.nan, math.inf
FORMAT_NAMES = ("float64", "float32", "float16", "bfloat16")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REFACT_CACHE_DIR", str(tmp_path / "cache"))


def _step(value, steps, fmt):
    for _ in range(abs(steps)):
        value = next_up(value, fmt) if steps > 0 else next_down(value, fmt)
    return value


def _job_points(job):
    """The catalog points of one job, as the Evaluator batched them."""
    n = next(len(v) for kind, v in job["arguments"] if kind != "scalar")
    return [tuple(v if kind == "scalar" else (tuple(v[i]) if isinstance(v[i], list) else v[i])
                  for kind, v in job["arguments"]) for i in range(n)]


class OracleWorker:
    """Stands in for isolation.Worker: answers a "many" job in-process. ``steps(point)``
    moves a point's correctly rounded value(s) by that many representable steps;
    ``refuse(point)`` makes any batch holding the point raise; ``result_format`` is
    what the backend says its results are."""

    def __init__(self, steps=None, refuse=None, result_format=None, shape=None):
        self.steps = steps or (lambda point: 0)
        self.refuse = refuse or (lambda point: False)
        self.result_format = result_format
        self.shape = shape
        self.jobs = []
        self.round_trips = 0

    def run(self, job):
        assert job["op"] == "many"
        self.round_trips += 1
        return [self._answer(one) for one in job["jobs"]], None

    def _answer(self, job):
        self.jobs.append(job)
        spec = get_function(job["function"])
        fmt = job["format"]
        points = _job_points(job)
        if any(self.refuse(p) for p in points):
            return "error", "ValueError: refused (fake.py:1)"
        if job["op"] == "call":
            truths = truth_many(spec.name, points, fmt)
            values = [[_step(v, self.steps(p), fmt) for v in t.values] for p, t in zip(points, truths)]
        else:
            values = []
            for point, cot in zip(points, job["cotangent"]):
                cot = tuple(cot) if isinstance(cot, list) else cot
                values.append([_step(r, self.steps(point), fmt)
                               for r, _ in derivative_truth(spec, point, fmt, cot)])
        if self.shape is not None:
            values = [self.shape(v) for v in values]
        values = [v if spec.vector_output or (job["op"] == "grad" and spec.kind != "elementwise")
                  or len(v) != 1 else v[0] for v in values]
        return "ok", (values, self.result_format or fmt)


def _ulp_error_mp(y, value, precision=53):
    """|y - value| / ulp(value) in float64, with mpmath (value an mpf, normal range)."""
    binade = int(mpmath.floor(mpmath.log(abs(value), 2)))
    return float(abs(mpmath.mpf(y) - value) / mpmath.mpf(2) ** (binade - precision + 1))


@pytest.fixture
def mp300():
    old = mpmath.mp.prec
    mpmath.mp.prec = 300
    yield mpmath.mp
    mpmath.mp.prec = old


# --- the Evaluator ------------------------------------------------------------------------


def test_scalar_points_go_in_one_call():
    worker = OracleWorker()
    outputs, result_format = Evaluator(worker).outputs("sigmoid", "float64", [(0.0,), (2.0,), (-INF,)])
    # three points and a copy of the first: a batch's size is a power of two, so a
    # compiling framework sees few shapes; the copy's result is dropped
    assert worker.jobs == [{"op": "call", "function": "sigmoid", "format": "float64",
                            "arguments": [("array", [0.0, 2.0, -INF, 0.0])], "options": {}}]
    assert worker.round_trips == 1
    assert outputs == [(0.5,), (0.8807970779778824,), (0.0,)] and result_format == "float64"


def test_rows_batch_by_length_and_come_back_in_order():
    worker = OracleWorker()
    points = [((1.0, 2.0),), ((0.0, 0.0, 0.0),), ((3.0, -1.0),)]
    outputs, _ = Evaluator(worker).outputs("softmax", "float64", points)
    assert [job["arguments"] for job in worker.jobs] == [
        [("array", [[1.0, 2.0], [3.0, -1.0]])], [("array", [[0.0, 0.0, 0.0]])]]
    assert worker.round_trips == 1  # both batches in one round trip
    third = 0.3333333333333333
    assert outputs[1] == (third, third, third)
    assert outputs[0] == (0.2689414213699951, 0.7310585786300049)
    assert outputs[2] == (0.9820137900379085, 0.01798620996209156)


def test_scalar_parameters_split_batches_and_indices_stay_ints():
    worker = OracleWorker()
    student, teacher = (0.5, -1.0), (1.0, 0.25)
    points = [(student, teacher, 1.0), (student, teacher, 4.0), (student, teacher, 1.0)]
    Evaluator(worker).outputs("distillation_loss", "float64", points)
    assert [job["arguments"] for job in worker.jobs] == [
        [("array", [[0.5, -1.0], [0.5, -1.0]]), ("array", [[1.0, 0.25], [1.0, 0.25]]), ("scalar", 1.0)],
        [("array", [[0.5, -1.0]]), ("array", [[1.0, 0.25]]), ("scalar", 4.0)]]
    worker = OracleWorker()
    outputs, _ = Evaluator(worker).outputs("cross_entropy", "float64", [((1.0, 2.0), 1), ((1.0, 2.0), 0)])
    assert worker.jobs[0]["arguments"] == [("array", [[1.0, 2.0], [1.0, 2.0]]), ("index", [1, 0])]
    # -log softmax([1, 2])[1] = log(1 + e**-1), and [0]: 1 + that
    assert outputs == [(0.3132616875182228,), (1.3132616875182228,)]


def test_options_are_passed_as_a_copy():
    worker = OracleWorker()
    options = {"beta": 1.0}
    Evaluator(worker).outputs("sigmoid", "float64", [(0.0,)], options)
    options["beta"] = 2.0
    assert worker.jobs[0]["options"] == {"beta": 1.0}


def test_vjp_jobs_carry_the_cotangents():
    worker = OracleWorker()
    gradients, _ = Evaluator(worker).vjp("sigmoid", "float64", [(0.0,), (1.0,)], [1.0, 1.0])
    assert worker.jobs[0]["op"] == "grad" and worker.jobs[0]["cotangent"] == [1.0, 1.0]
    assert gradients[0] == (0.25,)


class _Answers:
    def __init__(self, *answers):
        self.answers = list(answers)

    def run(self, job):
        return [self.answers.pop(0) for _ in job["jobs"]], None


def test_a_raising_batch_is_a_raised_job_error():
    evaluator = Evaluator(_Answers(("error", "ValueError: no")))
    with pytest.raises(JobError, match="^ValueError: no$") as caught:
        evaluator.outputs("sigmoid", "float64", [(0.0,), (1.0,)])
    assert caught.value.raised


@pytest.mark.parametrize("values, shape", [([0.5, 0.5], "2"), (0.5, "a scalar")])
def test_a_result_of_the_wrong_size_is_an_error(values, shape):
    evaluator = Evaluator(_Answers(("ok", (values, "float64"))))
    with pytest.raises(JobError) as caught:
        evaluator.outputs("sigmoid", "float64", [(0.0,), (1.0,), (2.0,)])
    assert str(caught.value) == f"sigmoid returned {shape} results for a batch of 4"  # 3, padded
    assert not caught.value.raised


def test_refusals_are_asked_point_by_point():
    worker = OracleWorker(refuse=lambda p: p[0] != p[0])
    outputs, result_format, refusals = Evaluator(worker).outputs_or_refusals(
        "sigmoid", "float64", [(0.0,), (NAN,), (-INF,)])
    assert outputs == [(0.5,), None, (0.0,)] and result_format == "float64"
    assert refusals == {1: "ValueError: refused (fake.py:1)"}
    # the batch, then one job per point in one more round trip
    assert worker.round_trips == 2 and [len(j["arguments"][0][1]) for j in worker.jobs] == [4, 1, 1, 1]


def test_a_batch_without_refusals_is_asked_once():
    worker = OracleWorker()
    _, _, refusals = Evaluator(worker).outputs_or_refusals("sigmoid", "float64", [(0.0,), (1.0,)])
    assert refusals == {} and worker.round_trips == 1


def test_refusing_every_input_is_an_error():
    worker = OracleWorker(refuse=lambda p: True)
    with pytest.raises(JobError, match="sigmoid raised on every input: ValueError: refused") as caught:
        Evaluator(worker).outputs_or_refusals("sigmoid", "float64", [(0.0,), (1.0,)])
    assert caught.value.raised


def test_one_point_refused_is_not_retried():
    worker = OracleWorker(refuse=lambda p: True)
    with pytest.raises(JobError, match="ValueError: refused"):
        Evaluator(worker).outputs_or_refusals("sigmoid", "float64", [(0.0,)])
    assert worker.round_trips == 1


def test_a_crash_is_not_retried_point_by_point():
    class Crashing:
        calls = 0

        def run(self, job):
            Crashing.calls += 1
            raise JobError("backend 'x' crashed while computing sigmoid (exit code -11)")

    with pytest.raises(JobError, match="crashed"):
        Evaluator(Crashing()).outputs_or_refusals("sigmoid", "float64", [(0.0,), (1.0,)])
    assert Crashing.calls == 1


# --- accuracy -------------------------------------------------------------------------------

SIGMOID_CASES = [("grid", (-3.0,)), ("grid", (-0.5,)), ("grid", (0.25,)), ("grid", (1.5,)),
                 ("edges", (-40.0,)), ("edges", (50.0,)), ("specials", (0.0,))]


def _sigmoid_truths(cases, fmt="float64"):
    return truth_many("sigmoid", [p for _, p in cases], fmt)


def test_accuracy_of_a_correctly_rounded_backend():
    plot = []
    worker = OracleWorker()
    result, result_format = accuracy(Evaluator(worker), "fake", "sigmoid", "float64", SIGMOID_CASES,
                                     _sigmoid_truths(SIGMOID_CASES), (), plot=plot)
    assert result_format == "float64"
    assert result["status"] == "pass" and result["points"] == 7 and result["budget_ulp"] == 2.0
    assert result["correctly_rounded"] == 1.0 and result["max_ulp"] <= 0.5
    assert result["case_sets"] == {"grid": 4, "edges": 2, "specials": 1}
    assert result["refused"] == 0 and result["result_format"] == "float64"
    assert sorted(x for x, _ in plot) == sorted(p[0] for _, p in SIGMOID_CASES)
    assert dict(plot)[0.0] == 0.0  # sigmoid(0) = 1/2 exactly
    assert sum(c for c in result["classes"].values()) == 0


def test_accuracy_figures_match_mpmath(mp300):
    steps = {-3.0: 1, 0.25: -1, 1.5: 3}
    worker = OracleWorker(steps=lambda p: steps.get(p[0], 0))
    result, _ = accuracy(Evaluator(worker), "fake", "sigmoid", "float64", SIGMOID_CASES,
                         _sigmoid_truths(SIGMOID_CASES), ())
    errors = {}
    for _, (x,) in SIGMOID_CASES:
        truth = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
        y = _step(truth_many("sigmoid", [(x,)], "float64")[0].rounded, steps.get(x, 0), FLOAT64)
        errors[x] = _ulp_error_mp(y, truth)
    assert 2.5 < errors[1.5] < 3.5 and 0.5 < errors[0.25] < 1.5  # the fixture is what it says
    assert result["status"] == "fail"
    # the oracle keeps exact values to p + 32 bits: the figures agree to about 2**-32 ULP
    assert result["max_ulp"] == pytest.approx(errors[1.5], abs=2.0 ** -30)
    assert result["mean_ulp"] == pytest.approx(math.fsum(errors.values()) / 7, abs=2.0 ** -30)
    assert result["correctly_rounded"] == 4 / 7
    assert result["within_1ulp"] == sum(e <= 1.0 for e in errors.values()) / 7
    assert result["message"] == "1 of 7 values outside the budget of 2 ULP"
    (worst,) = result["worst"]
    assert worst["input"] == [1.5] and worst["input_hex"] == ["0x3ff8000000000000"]
    assert worst["ulp"] == result["max_ulp"]


def test_accuracy_leaves_undefined_points_to_the_special_values():
    # softmax of an all -inf row is NaN for a NaN-free input: not measured here; a row
    # with a NaN in it must propagate it, and is measured
    cases = [("rows", ((1.0, 2.0),)), ("rows", ((-INF, -INF),)), ("nan", ((NAN, 0.0),))]
    truths = truth_many("softmax", [p for _, p in cases], "float64")
    worker = OracleWorker()
    result, _ = accuracy(Evaluator(worker), "fake", "softmax", "float64", cases, truths, ())
    (job,) = worker.jobs
    assert repr(job["arguments"]) == "[('array', [[1.0, 2.0], [nan, 0.0]])]"
    assert result["case_sets"] == {"rows": 1, "nan": 1}
    assert result["points"] == 4 and result["status"] == "pass"  # two values per row


def test_accuracy_keeps_probabilities_in_their_domain():
    cases = [("p", (0.25,)), ("p", (-1.0,)), ("p", (2.0,)), ("p", (NAN,)), ("p", (1.0,))]
    truths = truth_many("logit", [p for _, p in cases], "float64")
    worker = OracleWorker()
    result, _ = accuracy(Evaluator(worker), "fake", "logit", "float64", cases, truths, ())
    assert [str(v) for v in worker.jobs[0]["arguments"][0][1]] == ["0.25", "nan", "1.0", "0.25"]
    assert result["points"] == 3 and result["status"] == "pass"


def test_accuracy_counts_refusals_of_undefined_inputs():
    cases = [("s", (0.0,)), ("s", (NAN,)), ("s", (1.0,))]
    truths = truth_many("sigmoid", [p for _, p in cases], "float64")
    worker = OracleWorker(refuse=lambda p: p[0] != p[0])
    result, _ = accuracy(Evaluator(worker), "fake", "sigmoid", "float64", cases, truths, ())
    assert result["status"] == "pass" and result["refused"] == 1 and result["points"] == 3
    assert result["message"] == "raised on 1 input(s)"
    assert result["correctly_rounded"] == 2 / 3


def test_accuracy_refusing_a_number_fails():
    cases = [("s", (0.0,)), ("s", (1.0,))]
    truths = truth_many("sigmoid", [p for _, p in cases], "float64")
    worker = OracleWorker(refuse=lambda p: p[0] == 1.0)
    result, _ = accuracy(Evaluator(worker), "fake", "sigmoid", "float64", cases, truths, ())
    assert result["status"] == "fail" and result["refused"] == 1
    assert result["message"] == "1 of 2 values outside the budget of 2 ULP; raised on 1 input(s)"
    assert result["worst"][0]["error"] == "ValueError: refused (fake.py:1)"
    assert result["worst"][0]["expected"] == 0.7310585786300049


def test_accuracy_reports_the_backends_result_format():
    cases = [("specials", (0.0,)), ("edges", (-800.0,))]  # 1/2 and 0 are float32 values too
    result, result_format = accuracy(Evaluator(OracleWorker(result_format="float32")), "fake", "sigmoid",
                                     "float64", cases, _sigmoid_truths(cases), ())
    assert result_format == "float32" == result["result_format"]


def test_float64_values_labelled_float32_are_an_error():
    """A backend claiming a format its numbers are not values of is not judged on them."""
    with pytest.raises(JobError, match=r"returned 0\.0474258731775667\d*, which is not a float32 value"):
        accuracy(Evaluator(OracleWorker(result_format="float32")), "fake", "sigmoid",
                 "float64", SIGMOID_CASES[:2], _sigmoid_truths(SIGMOID_CASES[:2]), ())


def test_accuracy_applies_the_backends_conventions(mp300):
    class Saturates:
        name, summary, reference = "saturation", "sigmoid(x) is 1 for x > 30", "https://example.org"

        def applies(self, point, exact, fmt, options):
            return point[0] > 30

    # sigmoid(50) = 1 - e**-50 rounds to 1; three steps below, 1 - 3 * 2**-53, is
    # (3 * 2**-53 - e**-50) / 2**-53 ULP of the truth's binade [1/2, 1)
    worker = OracleWorker(steps=lambda p: -3 if p[0] == 50.0 else 0)
    result, _ = accuracy(Evaluator(worker), "fake", "sigmoid", "float64", SIGMOID_CASES,
                         _sigmoid_truths(SIGMOID_CASES), (Saturates(),))
    assert result["status"] == "convention" and result["message"] == ""
    assert result["convention"]["name"] == "saturation" and result["convention"]["points"] == 1
    expected = 3 - float(mpmath.exp(-50) * mpmath.mpf(2) ** 53)
    assert result["convention"]["max_ulp"] == pytest.approx(expected, abs=2.0 ** -30)
    assert result["max_ulp"] <= 0.5  # the convention's point is not in the backend's own figures


@pytest.mark.parametrize("function, point, shape, message", [
    ("softmax", ((1.0, 2.0, 3.0),), lambda row: row[:1], r"softmax returned 1 values where 3 are due"),
    ("sigmoid", (0.5,), lambda values: values + [123.0], r"sigmoid returned 2 values where 1 are due"),
], ids=["short_row", "row_for_a_scalar"])
def test_a_result_of_the_wrong_shape_is_an_error(function, point, shape, message):
    """A row cut short is not judged on the entries that happen to line up."""
    cases = [("s", point)]
    truths = truth_many(function, [point], "float64")
    with pytest.raises(JobError, match=message):
        accuracy(Evaluator(OracleWorker(shape=shape)), "fake", function, "float64", cases, truths, ())


# --- special values -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize("function", NAMES)
def test_a_correctly_rounded_backend_passes_every_special_value_table(function, fmt):
    worker = OracleWorker()
    result = special_values(Evaluator(worker), "fake", function, fmt, ())
    assert result["status"] == "pass", result["message"]
    assert result["points"] == sum(get_function(function).output_size(
        tuple(tuple(a) if isinstance(a, list) else a for a in s.args)) for s in get_function(function).specials)
    assert result["check"] == "special_values" and result["refused"] == 0


def test_an_exact_special_value_must_be_exact():
    # sigmoid(+-0) = 1/2 exactly: one step up is 2**-53 = 1 ULP of 1/2, over the budget of 0
    worker = OracleWorker(steps=lambda p: 1 if p[0] == 0.0 else 0)
    result = special_values(Evaluator(worker), "fake", "sigmoid", "float64", ())
    assert result["status"] == "fail" and result["points"] == 5
    assert result["message"] == "2 of 5 values outside the budget of 2 ULP"  # the record's budget
    assert [w["ulp"] for w in result["worst"]] == [1.0, 1.0]
    assert sorted(w["input_hex"][0] for w in result["worst"]) == ["0x0000000000000000", "0x8000000000000000"]
    assert result["max_ulp"] == 1.0


def test_an_oracle_special_value_is_held_to_the_budget(mp300):
    ln2 = mpmath.log(2)
    one_step = _ulp_error_mp(next_up(0.6931471805599453, FLOAT64), ln2)
    three_steps = _ulp_error_mp(_step(0.6931471805599453, 3, FLOAT64), ln2)
    near = special_values(Evaluator(OracleWorker(steps=lambda p: 1 if p[0] == 0.0 else 0)),
                          "fake", "softplus", "float64", ())
    assert near["status"] == "pass" and near["max_ulp"] == pytest.approx(one_step, abs=2.0 ** -30)
    far = special_values(Evaluator(OracleWorker(steps=lambda p: 3 if p[0] == 0.0 else 0)),
                         "fake", "softplus", "float64", ())
    assert far["status"] == "fail" and far["max_ulp"] == pytest.approx(three_steps, abs=2.0 ** -30)
    assert 2.0 < three_steps < 3.0  # softplus(0) = log 2 rounds up: three steps are 2.x ULP


def test_special_values_refusing_nan_is_fine():
    worker = OracleWorker(refuse=lambda p: p[0] != p[0])
    result = special_values(Evaluator(worker), "fake", "sigmoid", "float64", ())
    assert result["status"] == "pass" and result["refused"] == 1
    assert result["message"] == "raised on 1 input(s)"


def test_special_values_wrong_in_kind_count_their_class():
    # sigmoid(-inf) = 0 exactly; a NaN there is a spurious NaN, a 0.5 at NaN a missing NaN
    class Wrong(OracleWorker):
        def _answer(self, job):
            status, (values, fmt) = super()._answer(job)
            xs = job["arguments"][0][1]
            return status, ([NAN if x == -INF else 0.5 if x != x else v for x, v in zip(xs, values)], fmt)

    result = special_values(Evaluator(Wrong()), "fake", "sigmoid", "float64", ())
    assert result["status"] == "fail"
    assert result["classes"]["spurious_nan"] == 1 and result["classes"]["missing_nan"] == 1


def test_special_rows_a_format_cannot_hold_are_left_out(monkeypatch):
    spec = get_function("softplus")
    rows = (SpecialValue((0.1,), ORACLE), SpecialValue((0.0,), ORACLE))
    monkeypatch.setitem(catalog.FUNCTIONS, "softplus", dataclasses.replace(spec, specials=rows))
    worker = OracleWorker()
    assert special_values(Evaluator(worker), "fake", "softplus", "float64", ())["points"] == 2
    worker = OracleWorker()
    result = special_values(Evaluator(worker), "fake", "softplus", "float16", ())
    assert result["points"] == 1 and worker.jobs[0]["arguments"] == [("array", [0.0])]


@pytest.mark.xfail(strict=True, raises=ValueError, reason=(
    "special_values asks the oracle for every row before it drops the rows with an empty "
    "array ('shapes, not values'), and the oracle refuses an empty row with ValueError, so "
    "the drop can never happen: a table row with an empty row makes the check raise"))
def test_special_rows_with_an_empty_row_are_left_out(monkeypatch):
    spec = get_function("softmax")
    rows = (SpecialValue(((),), ()), SpecialValue(((0.0, 0.0),), (Fraction(1, 2), Fraction(1, 2))))
    monkeypatch.setitem(catalog.FUNCTIONS, "softmax", dataclasses.replace(spec, specials=rows))
    result = special_values(Evaluator(OracleWorker()), "fake", "softmax", "float64", ())
    assert result["status"] == "pass" and result["points"] == 2


# --- dtype ------------------------------------------------------------------------------------


def test_dtype_check():
    same = dtype("b", "sigmoid", "float16", "float16")
    assert (same["status"], same["points"], same["message"]) == ("pass", 1, "float16 in, float16 out")
    promoted = dtype("b", "sigmoid", "float16", "float32")
    assert (promoted["status"], promoted["severity"]) == ("fail", "major")
    assert promoted["message"] == "dtype not preserved: float16 -> float32"
    assert promoted["check"] == "dtype" and promoted["max_ulp"] is None
    narrowed = dtype("b", "sigmoid", "float64", "float32")
    assert (narrowed["status"], narrowed["message"]) == ("fail", "dtype not preserved: float64 -> float32")


def _promotion(function, accepted, returned):
    from refact.backends import Convention

    return Convention(function, "float16_promoted", "computed in a wider loop",
                      "https://example.org/casting", lambda point: False,
                      promotes=((accepted, returned),))


def test_dtype_check_reports_a_documented_promotion_as_its_convention():
    documented = _promotion("sigmoid", "float16", "float64")
    result = dtype("b", "sigmoid", "float16", "float64", (documented,))
    assert (result["status"], result["severity"]) == ("convention", None)
    assert result["message"] == "dtype not preserved: float16 -> float64 (documented: float16_promoted)"
    assert (result["convention"]["name"], result["convention"]["reference"]) == \
        ("float16_promoted", "https://example.org/casting")
    # a promotion to another format, or of another input format, is not what it documents
    assert dtype("b", "sigmoid", "float16", "float32", (documented,))["status"] == "fail"
    assert dtype("b", "sigmoid", "bfloat16", "float64", (documented,))["message"] == \
        "dtype not preserved: bfloat16 -> float64"
    # conventions that are not promotions change nothing
    other = dataclasses.replace(documented, name="threshold", promotes=())
    assert dtype("b", "sigmoid", "float16", "float64", (other,))["status"] == "fail"


def test_scipy_promotions_are_reported_as_measured():
    """scipy's expit runs a float16 input in its float64 loop (numpy's documented rule:
    convention), a bfloat16 input too (through ml_dtypes' casts, undocumented: fail)."""
    pytest.importorskip("scipy")
    from refact.backends import get_backend

    scipy_backend = get_backend("scipy")
    conventions = scipy_backend.conventions_for("sigmoid")
    for fmt, status in (("float16", "convention"), ("bfloat16", "fail"), ("float32", "pass")):
        if fmt not in scipy_backend.formats_of("sigmoid"):
            continue
        _, result_format = scipy_backend.tolist(
            scipy_backend.call("sigmoid", scipy_backend.asarray([0.5], fmt)))
        result = dtype("scipy", "sigmoid", fmt, result_format, conventions)
        assert result["status"] == status, result
    assert result_format == "float32"


# --- gradients ---------------------------------------------------------------------------------


def test_derivative_truth_by_hand_and_against_mpmath(mp300):
    sigmoid = get_function("sigmoid")
    ((rounded, exact),) = derivative_truth(sigmoid, (0.0,), "float64", 1.0)
    assert rounded == 0.25 and exact == 0.25
    ((rounded, exact),) = derivative_truth(sigmoid, (2.0,), "float32", 1.0)
    s = 1 / (1 + mpmath.exp(-2))
    assert abs(exact - s * (1 - s)) < abs(s) * mpmath.mpf(2) ** -60
    assert rounded == round_to_format(s * (1 - s), "float32") == 0.10499358177185059
    ((rounded, _),) = derivative_truth(get_function("hard_sigmoid"), (1.0,), "float64", 1.0)
    assert rounded == 1 / 6
    # softmax's VJP at x with cotangent v: s_i (v_i - sum_j s_j v_j)
    x, v = (1.0, 2.0, 3.0), (-1.0, 0.0, 1.0)
    grads = derivative_truth(get_function("softmax"), (x,), "float64", v)
    e = [mpmath.exp(xi) for xi in x]
    s = [ei / sum(e) for ei in e]
    dot = sum(si * vi for si, vi in zip(s, v))
    expected = [float(si * (vi - dot)) for si, vi in zip(s, v)]
    assert [r for r, _ in grads] == expected


def test_derivative_truth_is_remembered():
    sigmoid = get_function("sigmoid")
    assert derivative_truth(sigmoid, (0.75,), "float64", 1.0) is derivative_truth(sigmoid, (0.75,), FLOAT64, 1.0)


def test_gradient_of_a_correctly_rounded_backend():
    cases = [("g", (x,)) for x in (-3.0, -0.5, 0.0, 0.25, 2.0, INF, NAN, -INF)]
    worker = OracleWorker()
    result = gradient(Evaluator(worker), "fake", "sigmoid", "float64", cases)
    assert result["status"] == "pass" and result["points"] == 5  # the non-finite inputs are left out
    assert result["correctly_rounded"] == 1.0 and result["check"] == "gradient"
    (job,) = worker.jobs
    assert job["op"] == "grad" and job["cotangent"] == [1.0] * 8  # 5 points and 3 copies of the first
    assert job["arguments"] == [("array", [-3.0, -0.5, 0.0, 0.25, 2.0, -3.0, -3.0, -3.0])]


def test_gradient_errors_in_ulps_of_the_true_derivative():
    # sigmoid'(0) = 1/4 exactly; one step up is 2**-54 = 1 ULP of 1/4, three steps 3 ULP
    cases = [("g", (0.0,)), ("g", (1.0,))]
    one = gradient(Evaluator(OracleWorker(steps=lambda p: 1 if p[0] == 0.0 else 0)),
                   "fake", "sigmoid", "float64", cases)
    assert one["status"] == "pass" and one["max_ulp"] == 1.0
    three = gradient(Evaluator(OracleWorker(steps=lambda p: 3 if p[0] == 0.0 else 0)),
                     "fake", "sigmoid", "float64", cases)
    assert three["status"] == "fail" and three["max_ulp"] == 3.0
    assert three["worst"][0]["input"] == [0.0] and three["worst"][0]["expected"] == 0.25


def test_gradient_rows_use_a_non_constant_cotangent():
    worker = OracleWorker()
    result = gradient(Evaluator(worker), "fake", "softmax", "float64", [("r", ((0.5, -1.0, 2.0, 0.0),))])
    assert worker.jobs[0]["cotangent"] == [[-1.0, 0.0, 1.0, -1.0]]
    assert result["status"] == "pass" and result["points"] == 4


def test_gradient_skips_points_where_the_function_is_not_differentiable():
    # logit'(p) = 1 / (p (1 - p)): no value at 0 and 1; 2.0 is outside [0, 1]
    cases = [("p", (p,)) for p in (0.0, 0.25, 1.0, 2.0, 0.5)]
    worker = OracleWorker()
    result = gradient(Evaluator(worker), "fake", "logit", "float64", cases)
    assert worker.jobs[0]["arguments"] == [("array", [0.25, 0.5])]
    assert result["points"] == 2 and result["status"] == "pass"
    ((rounded, _),) = derivative_truth(get_function("logit"), (0.5,), "float64", 1.0)
    assert rounded == 4.0


def test_gradient_takes_at_most_limit_points():
    cases = [("g", (float(k),)) for k in range(-10, 11)]
    worker = OracleWorker()
    result = gradient(Evaluator(worker), "fake", "sigmoid", "float64", cases, limit=4)
    assert worker.jobs[0]["arguments"] == [("array", [-10.0, -9.0, -8.0, -7.0])]
    assert result["points"] == 4


class _Zeroing(OracleWorker):
    """Correctly rounded, but 0 for every subnormal value of the points ``zeroed``."""

    def __init__(self, zeroed):
        super().__init__()
        self.zeroed = zeroed

    def _answer(self, job):
        status, (values, result_format) = super()._answer(job)
        tiny = 2.0 ** -126
        points = _job_points(job)
        values = [[0.0 if p in self.zeroed and 0 < abs(v) < tiny else v for v in row]
                  for p, row in zip(points, values)]
        return status, (values, result_format)


def test_a_flush_convention_covers_zeros_only_where_the_backend_flushes_everywhere():
    from refact.backends.base import Convention

    flush = Convention("softmax", "flush_to_zero", "subnormal results become zero", "https://example.org",
                       lambda point: True, flushes=True)
    rows = [((0.0, -90.0),), ((0.0, -95.0),)]  # softmax(...)[1] = e**-90, e**-95: float32 subnormals
    cases = [("gaps", row) for row in rows]
    truths = truth_many("softmax", rows, "float32")
    everywhere, _ = accuracy(Evaluator(_Zeroing(set(rows))), "fake", "softmax", "float32", cases, truths, [flush])
    assert everywhere["status"] == "convention" and everywhere["classes"]["flush_to_zero"] == 0
    # zeros beside a correct subnormal: the mechanism is not a flush, the zero is a failure
    partly, _ = accuracy(Evaluator(_Zeroing({rows[1]})), "fake", "softmax", "float32", cases, truths, [flush])
    assert partly["status"] == "fail" and partly["classes"]["flush_to_zero"] == 1
