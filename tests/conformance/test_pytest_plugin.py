"""The pytest plugin as a user runs it: collected and counted like other tests, selected by
-k, -x, --lf, --deselect and by the node ids it prints, JUnit classnames, usage errors
for unknown names, and failures that show the worst points.

The fake backends of fakes/refact_test_backends.py are registered under entry-point names
(as a third-party plugin would be), so the runs are fast; one run uses the real
``reference`` backend."""

import pathlib
import re
import xml.etree.ElementTree as ElementTree

import pytest

from refact.conformance import pytest_plugin
from refact.conformance.numbers.formats import get_format, next_up
from refact.conformance.truth import store

pytest_plugins = ["pytester"]

FAKES = pathlib.Path(__file__).parent / "fakes"
CACHE = store.cache_directory()  # read before pytester points HOME at its directory
ENTRY_POINTS = """\
[refact.backends]
oracle = refact_test_backends:OracleBackend
off_by_three = refact_test_backends:OffByThreeBackend
two_variants = refact_test_backends:TwoVariantBackend
documented = refact_plugin_documented:DocumentedBackend
absent = refact_no_such_module:Backend
"""
# off_by_three's flaw, declared as a convention of the framework: records say convention
DOCUMENTED = """\
import numpy
from refact.backends import Convention
from refact_test_backends import OffByThreeBackend


class DocumentedBackend(OffByThreeBackend):
    name = "documented"
    conventions = (Convention(
        "sigmoid", "three_steps_up", "sigmoid is rounded three steps up, as documented.",
        "https://example.org/three-steps", lambda point: True,
        array_predicate=lambda x, truth, fmt, options: numpy.ones(numpy.shape(x), dtype=bool)),)
"""
SIGMOID_AND_LOGIT = ["--refact-function", "sigmoid,logit", "--refact-format", "float64",
                     "--refact-check", "accuracy"]
WORST_LINE = re.compile(r"  input \[(\S+)\] \(hex \[(\S+)\]\) -> output (\S+), "
                        r"expected (\S+), ([0-9.]+) ULP$")


@pytest.fixture
def project(pytester, monkeypatch):
    """A user's project: one ordinary test, and the fake backends installed as plugins."""
    site = pytester.mkdir("site")
    info = site / "refact_plugin_fakes-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: refact-plugin-fakes\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "refact_plugin_documented.py").write_text(DOCUMENTED)
    # spawned workers receive this sys.path: they find the fakes and their entry points too
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("REFACT_CACHE_DIR", CACHE or "")
    pytester.makepyfile(test_own="def test_own():\n    assert 1 + 1 == 2\n")
    return pytester


def _ids(result):
    return [line for line in result.outlines if line.startswith("refact::")]


def test_collect_only_counts_and_lists_every_item(project):
    result = project.runpytest("--refact-backend", "oracle", "--refact-function", "sigmoid,softmax",
                               "--refact-format", "float64,float16", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert _ids(result) == [f"refact::oracle::{function}::{fmt}-{check}"
                            for function in ("sigmoid", "softmax") for fmt in ("float64", "float16")
                            for check in ("accuracy", "special_values", "properties", "dtype",
                                          "gradient")]
    result.stdout.fnmatch_lines(["test_own.py::test_own", "21 tests collected in *"])


def test_without_a_backend_the_plugin_adds_and_imports_nothing(project):
    project.makepyfile(test_light="""
        import sys

        def test_light():
            assert "refact.conformance.run.runner" not in sys.modules
            assert "refact.conformance.truth.catalog" not in sys.modules
        """)
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*collected 2 items"])


def test_k_selects_by_backend_function_format_and_check(project):
    # -k crashed (INTERNALERROR) while items had a string attribute called "function"
    result = project.runpytest("--refact-backend", "oracle", "--refact-function", "sigmoid,softmax",
                               "--refact-format", "float64", "-k", "sigmoid and accuracy", "-v")
    result.assert_outcomes(passed=1, deselected=10)
    result.stdout.fnmatch_lines(["*collected 11 items / 10 deselected / 1 selected",
                                 "refact::oracle::sigmoid::float64-accuracy PASSED*"])


def test_a_failure_shows_the_worst_points_and_junit_names_backend_and_function(project, monkeypatch):
    # as on CI, where pytest prints a plain-string report whole in the short summary too
    monkeypatch.setenv("CI", "true")
    result = project.runpytest("--refact-backend", "off_by_three", *SIGMOID_AND_LOGIT,
                               "--junitxml=out.xml")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    cases = ElementTree.parse(project.path / "out.xml").getroot().iter("testcase")
    assert {(case.get("classname"), case.get("name")): [child.tag for child in case]
            for case in cases} == {("test_own", "test_own"): [],
                                   ("refact.off_by_three.sigmoid", "float64-accuracy"): ["failure"],
                                   ("refact.off_by_three.logit", "float64-accuracy"): []}
    text = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*_ refact::off_by_three::sigmoid::float64-accuracy _*",
        "off_by_three / sigmoid / float64 / accuracy: FAIL (major)",
        "*points outside the budget of * ULP",
        "max * ULP, p99 *, mean *, correctly rounded *%, budget 2 ULP, over * points",
        "worst points:",
        "FAILED refact::off_by_three::sigmoid::float64-accuracy*"])
    assert "None" not in text
    worst = [WORST_LINE.match(line) for line in result.outlines if line.startswith("  input ")]
    assert len(worst) == 5 and all(worst)
    float64 = get_format("float64")
    for match in worst:
        decimal, hexadecimal, output, expected, ulp = match.groups()
        # the hex is the input exactly, the output three representable steps above the truth
        assert float.fromhex(hexadecimal) == float(decimal)
        value = float(expected)
        for _ in range(3):
            value = next_up(value, float64)
        assert float(output) == value
        assert 2.5 <= float(ulp) <= 6.5


def test_x_stops_at_the_first_failure(project):
    result = project.runpytest("--refact-backend", "off_by_three", *SIGMOID_AND_LOGIT, "-x")
    result.assert_outcomes(passed=1, failed=1)  # test_own, then sigmoid; logit never runs
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def test_last_failed_reruns_only_the_failure(project):
    arguments = ["-p", "cacheprovider", "--refact-backend", "off_by_three", *SIGMOID_AND_LOGIT]
    project.runpytest(*arguments).assert_outcomes(passed=2, failed=1)
    rerun = project.runpytest(*arguments, "--lf", "-v")
    rerun.assert_outcomes(failed=1, deselected=2)
    assert [line.split()[0] for line in rerun.outlines if " FAILED" in line and "::" in line] == [
        "refact::off_by_three::sigmoid::float64-accuracy"]


def test_a_printed_node_id_runs_exactly_that_item(project):
    listed = _ids(project.runpytest("--refact-backend", "oracle", "--refact-function", "sigmoid",
                                    "--collect-only", "-q"))
    assert len(listed) == 20
    chosen = "refact::oracle::sigmoid::float16-special_values"
    assert chosen in listed
    result = project.runpytest(chosen, "-v")  # the id names its backend: no other option
    result.assert_outcomes(passed=1)
    assert [line.split()[0] for line in result.outlines if " PASSED" in line] == [chosen]
    result.stdout.fnmatch_lines(["*collected 1 item"])


def test_deselect_and_a_node_id_beside_a_file(project):
    result = project.runpytest("test_own.py", "refact::oracle::logit", "--refact-format", "float64",
                               "--refact-check", "accuracy,dtype",
                               "--deselect", "refact::oracle::logit::float64-dtype", "-v")
    result.assert_outcomes(passed=2, deselected=1)
    assert [line.split()[0] for line in result.outlines if " PASSED" in line] == [
        "test_own.py::test_own", "refact::oracle::logit::float64-accuracy"]


def test_a_variant_is_the_items_parameter(project):
    one_check = ["--refact-function", "sigmoid", "--refact-format", "float64", "--refact-check", "accuracy"]
    result = project.runpytest("--refact-backend", "two_variants,two_variants[jit]", *one_check,
                               "--junitxml=out.xml", "-v")
    result.assert_outcomes(passed=2, failed=1)  # the jit variant's sigmoid is 10 steps off
    result.stdout.fnmatch_lines(["refact::two_variants::sigmoid::float64-accuracy PASSED*",
                                 "refact::two_variants::sigmoid::float64-accuracy[[]jit] FAILED*",
                                 "two_variants[[]jit] / sigmoid / float64 / accuracy: FAIL (major)",
                                 "variant jit"])
    cases = ElementTree.parse(project.path / "out.xml").getroot().iter("testcase")
    assert {(case.get("classname"), case.get("name")): [child.tag for child in case]
            for case in cases} == {("test_own", "test_own"): [],
                                   ("refact.two_variants.sigmoid", "float64-accuracy"): [],
                                   ("refact.two_variants.sigmoid", "float64-accuracy[jit]"): ["failure"]}
    rerun = project.runpytest("refact::two_variants::sigmoid::float64-accuracy[jit]", "-v")
    rerun.assert_outcomes(failed=1)
    assert [line.split()[0] for line in rerun.outlines if " FAILED" in line and "::" in line] == [
        "refact::two_variants::sigmoid::float64-accuracy[jit]"]


def test_a_convention_passes_and_says_what_it_covers(project):
    result = project.runpytest("--refact-backend", "documented", "--refact-function", "sigmoid",
                               "--refact-format", "float64", "--refact-check", "accuracy", "-rP")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*- Captured refact call -*",
        "documented / sigmoid / float64 / accuracy: convention*",
        "convention three_steps_up: sigmoid is rounded three steps up, as documented. "
        "(see https://example.org/three-steps); * points, measured * ULP from the truth"])


def test_a_backend_that_does_not_start_fails_its_items(project):
    result = project.runpytest("--refact-backend", "absent", "--refact-function", "sigmoid",
                               "--refact-format", "float64", "--refact-check", "accuracy,dtype")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["backend absent is not available: *refact_no_such_module*"])


@pytest.mark.parametrize("arguments, message", [
    (["--refact-backend", "oracle,nonsense"],
     "ERROR: --refact-backend: unknown backend 'nonsense'; known: reference, numpy, *oracle*"),
    (["--refact-backend", "oracle", "--refact-function", "sigmoid,sigmod"],
     "ERROR: --refact-function: unknown function 'sigmod'; expected one of sigmoid, sigmoid_grad, *"),
    (["--refact-backend", "oracle", "--refact-format", "float8"],
     "ERROR: --refact-format: unknown format 'float8'; "
     "expected one of float64, float32, float16, bfloat16"),
    (["--refact-backend", "oracle", "--refact-check", "accuracy,speed"],
     "ERROR: --refact-check: unknown check 'speed'; "
     "expected one of accuracy, special_values, properties, dtype, gradient"),
    (["--refact-backend", "reference[nope]"],
     "ERROR: --refact-backend: backend 'reference' has no variant 'nope' (variants: none: *)"),
    (["refact::oracle::sigmoid", "refact::nonsense::sigmoid"],
     "ERROR: refact::nonsense::sigmoid: unknown backend 'nonsense'; known: *"),
    (["--refact-backend", "oracle", "refact::oracle::sigmoid::float64"],
     "ERROR: refact::oracle::sigmoid::float64: no such refact check; its ids are "
     "refact::BACKEND::FUNCTION::FORMAT-CHECK, e.g. refact::oracle::sigmoid::float64-accuracy*"),
    (["--refact-function", "sigmoid"],
     "ERROR: --refact-function needs --refact-backend (or a refact::BACKEND node id)"),
])
def test_unknown_names_are_usage_errors(project, arguments, message):
    result = project.runpytest(*arguments)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "collected" not in result.stdout.str()


def test_the_reference_backend_on_one_function(project):
    result = project.runpytest("--refact-backend", "reference", "--refact-function", "sigmoid",
                               "--refact-cases", "quick", "-rs")
    # the pure-Python core: float64 only and no autograd, so the rest are skips, never passes
    result.assert_outcomes(passed=5, skipped=16)
    skips = sorted(line.split(": ", 1)[1] for line in result.outlines if line.startswith("SKIPPED"))
    assert skips == ["reference does not provide sigmoid in bfloat16",
                     "reference does not provide sigmoid in float16",
                     "reference does not provide sigmoid in float32",
                     "reference has no autograd for sigmoid"]


def test_failure_text_without_a_budget_names_the_classes_of_the_worst_points():
    record = {"backend": "toy", "function": "sigmoid", "format": "float32", "check": "accuracy",
              "status": "fail", "message": "1 of 3 values outside the budget", "budget_ulp": None,
              "max_ulp": 0.5, "p99_ulp": 0.5, "mean_ulp": 0.25, "points": 3,
              "classes": {"flush_to_zero": 1},
              "worst": [{"input": [-100.0], "input_hex": ["0xc2c80000"], "output": 0.0,
                         "expected": 3.7e-44, "ulp": None, "class": "flush_to_zero"},
                        {"input": [1.5], "input_hex": ["0x3fc00000"], "output": 0.8175744,
                         "expected": 0.8175745, "ulp": 0.5}]}
    assert pytest_plugin.failure_text(record).splitlines() == [
        "toy / sigmoid / float32 / accuracy: FAIL",
        "1 of 3 values outside the budget",
        "max 0.5 ULP, p99 0.5, mean 0.25, over 3 points",
        "failure classes: flush_to_zero 1",
        "worst points:",
        "  input [-100.0] (hex [0xc2c80000]) -> output 0.0, expected 3.7e-44, - ULP [flush_to_zero]",
        "  input [1.5] (hex [0x3fc00000]) -> output 0.8175744, expected 0.8175745, 0.5 ULP"]


def test_failure_text_shortens_a_long_row_and_names_the_variant():
    row = [float(i) for i in range(100)]
    record = {"backend": "toy", "variant": "jit", "function": "softmax", "format": "float64",
              "check": "accuracy", "status": "fail", "severity": "critical", "message": "",
              "max_ulp": None, "classes": {"spurious_nan": 1},
              "worst": [{"input": [row], "input_hex": [[v.hex() for v in row]],
                         "output": [float("nan")] * 100, "expected": row, "ulp": None,
                         "class": "spurious_nan"}]}
    lines = pytest_plugin.failure_text(record).splitlines()
    assert lines[:3] == ["toy[jit] / softmax / float64 / accuracy: FAIL (critical)",
                         "failure classes: spurious_nan 1", "variant jit"]
    assert lines[4] == ("  input [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, ... 92 more ..., 98.0, 99.0]] "
                        "(hex [[0x0.0p+0, 0x1.0000000000000p+0, 0x1.0000000000000p+1, "
                        "0x1.8000000000000p+1, 0x1.0000000000000p+2, 0x1.4000000000000p+2, "
                        "... 92 more ..., 0x1.8800000000000p+6, 0x1.8c00000000000p+6]]) -> output "
                        "[nan, nan, nan, nan, nan, nan, ... 92 more ..., nan, nan], expected "
                        "[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, ... 92 more ..., 98.0, 99.0], - ULP [spurious_nan]")
