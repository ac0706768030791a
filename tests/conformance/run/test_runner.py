"""The conformance run end to end: worker isolation, statuses, reports, the CLI."""

import json
import pathlib

import pytest

from refact.conformance import cli
from refact.conformance.report import writers as reports
from refact.conformance.run.runner import run_conformance

FAKES = pathlib.Path(__file__).parent.parent / "fakes"
MODULE = "refact_test_backends"


@pytest.fixture(autouse=True)
def fakes_on_path(monkeypatch):
    # spawned workers receive the parent's sys.path, so the fake module is importable there
    monkeypatch.syspath_prepend(str(FAKES))


def _records(report, **match):
    return [r for r in report["results"] if all(r[k] == v for k, v in match.items())]


def test_a_correctly_rounded_backend_has_no_failures():
    report = run_conformance([f"{MODULE}:OracleBackend"], ["sigmoid", "softmax", "log_softmax",
                              "cross_entropy", "binary_cross_entropy_with_logits"],
                             ["float64", "float16"], level="quick")
    statuses = {(r["function"], r["format"], r["check"]): r["status"] for r in report["results"]}
    assert statuses and report["summary"]["fail"] == 0 and report["summary"]["error"] == 0, [
        (k, r["message"]) for k, r in zip(statuses, report["results"]) if r["status"] in ("fail", "error")]
    accuracy = _records(report, check="accuracy")
    assert all(r["max_ulp"] is not None and r["max_ulp"] <= 0.5 for r in accuracy)
    assert all(r["correctly_rounded"] > 0 for r in accuracy)
    reports.validate(report)


def test_an_inaccurate_backend_fails_with_its_worst_input():
    report = run_conformance([f"{MODULE}:OffByThreeBackend"], ["sigmoid"], ["float64"],
                             ["accuracy"], level="quick")
    (record,) = report["results"]
    assert record["status"] == "fail"
    # three steps above the correctly rounded value: 3 ULP, or up to 6.5 where the steps
    # cross into the next binade (whose spacing is twice the truth's ulp)
    assert 2.5 <= record["max_ulp"] <= 6.5
    assert record["worst"] and record["worst"][0]["input_hex"]


def test_a_crash_is_an_error_and_the_run_goes_on():
    report = run_conformance([f"{MODULE}:CrashingBackend"], ["sigmoid", "logit"], ["float64"],
                             ["accuracy"], level="quick")
    (crash,) = _records(report, function="sigmoid")
    (fine,) = _records(report, function="logit")
    assert crash["status"] == "error" and "crashed" in crash["message"]
    assert fine["status"] == "pass"


def test_a_hang_is_an_error_after_the_time_limit():
    report = run_conformance([f"{MODULE}:HangingBackend"], ["softplus", "sigmoid"], ["float64"],
                             ["accuracy"], level="quick", timeout=5)
    (hang,) = _records(report, function="softplus")
    (fine,) = _records(report, function="sigmoid")
    assert hang["status"] == "error" and "did not answer" in hang["message"]
    assert fine["status"] == "pass"


def test_conform_command_writes_four_reports_and_gates(tmp_path, capsys):
    out = {ext: tmp_path / f"report.{ext}" for ext in ("json", "md", "xml", "html")}
    status = cli.main(["conform", "--backend", "reference", "--function", "sigmoid,softmax",
                       "--format", "float64", "--cases", "quick", "--json", str(out["json"]),
                       "--markdown", str(out["md"]), "--junit", str(out["xml"]),
                       "--html", str(out["html"])])
    report = reports.load_report(out["json"])
    reports.validate(report)
    assert status == (1 if report["summary"]["fail"] or report["summary"]["error"] else 0)
    assert report["backends"][0]["name"] == "reference" and report["backends"][0]["available"]
    assert "<svg" in out["html"].read_text()
    assert "| sigmoid" in out["md"].read_text()
    assert "<testsuite" in out["xml"].read_text()
    assert "summary:" in capsys.readouterr().out


def test_conform_exit_codes(tmp_path):
    assert cli.main(["conform", "--function", "nonsense"]) == 2
    assert cli.main(["conform", "--backend", "no_such_backend"]) == 2
    gate = ["conform", "--backend", f"{MODULE}:OffByThreeBackend", "--function", "sigmoid",
            "--format", "float64", "--check", "accuracy", "--cases", "quick", "--quiet"]
    assert cli.main(gate) == 1
    assert cli.main(gate + ["--fail-on", "error"]) == 0


def test_baseline_regression_fails_the_run(tmp_path):
    good = run_conformance([f"{MODULE}:OracleBackend"], ["sigmoid"], ["float64"], ["accuracy"],
                           level="quick")
    good["results"][0]["backend"] = f"{MODULE}:OffByThreeBackend"
    good["backends"][0]["name"] = f"{MODULE}:OffByThreeBackend"
    baseline = tmp_path / "old.json"
    reports.write_json(good, baseline)
    status = cli.main(["conform", "--backend", f"{MODULE}:OffByThreeBackend", "--function", "sigmoid",
                       "--format", "float64", "--check", "accuracy", "--cases", "quick",
                       "--baseline", str(baseline), "--fail-on", "error", "--quiet",
                       "--json", str(tmp_path / "new.json")])
    assert status == 0  # only errors gate here ...
    new = json.loads((tmp_path / "new.json").read_text())
    assert new["baseline"]["regressions"] == 1  # ... but the regression is recorded


def test_refusing_an_undefined_input_is_not_a_failure():
    # The batch raises because one input is NaN; each point is then asked alone, the
    # NaN point counts as refused (NaN was due) and the rest are measured as usual.
    report = run_conformance([f"{MODULE}:RefusingBackend"], ["sigmoid"], ["float64"],
                             ["accuracy", "special_values"], level="quick")
    accuracy, special = report["results"]
    assert accuracy["status"] == "pass" and accuracy["refused"] >= 1
    assert accuracy["max_ulp"] <= 0.5
    assert special["status"] == "pass" and "raised on" in special["message"]


def test_full_cases_check_every_16_bit_value():
    report = run_conformance(["numpy"], ["sigmoid"], ["float16"], ["accuracy", "dtype"], level="full")
    accuracy, dtype = report["results"]
    assert accuracy["points"] == 65536 and accuracy["engine"]["dense_points"] == 65536
    assert accuracy["status"] == "pass" and accuracy["max_ulp"] <= 0.5  # numpy_impl rounds once
    assert dtype["status"] == "pass"
    reports.validate(report)


def test_batched_calls_keep_each_points_own_scalar_parameter():
    # distillation points with the same row lengths but different temperatures must not
    # share one call (one temperature per call); refusals come back per point
    from refact import distillation_loss
    from refact.conformance.run.checks import Evaluator
    from refact.conformance.run.isolation import Worker

    student, teacher = (0.5, -1.0, 2.0), (1.0, 0.25, -3.0)
    points = [(student, teacher, t) for t in (1.0, 4.0, 0.5, 4.0)] + [(student, teacher, 0.0)]
    with Worker("reference") as worker:
        outputs, result_format, refusals = Evaluator(worker).outputs_or_refusals(
            "distillation_loss", "float64", points)
    assert result_format == "float64"
    assert outputs[:4] == [(distillation_loss([student], [teacher], t),) for t in (1.0, 4.0, 0.5, 4.0)]
    assert outputs[4] is None and "temperature" in refusals[4]


def test_conform_over_every_builtin_backend_writes_four_valid_reports(tmp_path):
    from refact.backends import BUILTIN

    out = {ext: tmp_path / f"report.{ext}" for ext in ("json", "md", "xml", "html")}
    status = cli.main(["conform", "--function", "sigmoid,softmax,binary_cross_entropy_with_logits",
                       "--format", "float32,bfloat16", "--cases", "quick", "--quiet",
                       "--json", str(out["json"]), "--markdown", str(out["md"]),
                       "--junit", str(out["xml"]), "--html", str(out["html"])])
    report = reports.load_report(out["json"])
    reports.validate(report)
    # each variant is an entry of its own: the built-ins come first, in their order
    assert list(dict.fromkeys(b["name"] for b in report["backends"]))[:len(BUILTIN)] == list(BUILTIN)
    assert all(b["available"] for b in report["backends"] if b["name"] in BUILTIN)
    assert report["summary"]["error"] == 0
    assert status == (1 if report["summary"]["fail"] else 0)
    for name in BUILTIN:
        assert "<testsuite" in out["xml"].read_text() and name in out["md"].read_text()
        assert name in out["html"].read_text()


def test_a_batch_of_calls_keeps_one_time_limit_per_call():
    # six calls sent at once: the hanging one is caught after one limit, not six
    import time

    from refact.conformance.run.isolation import JobError, Worker

    call = {"op": "call", "function": "sigmoid", "format": "float64",
            "arguments": [("array", [0.5])], "options": {}}
    hang = dict(call, function="softplus")
    with Worker(f"{MODULE}:HangingBackend", timeout=3) as worker:
        answers, _ = worker.run({"op": "many", "jobs": [call, call]})
        assert [status for status, _ in answers] == ["ok", "ok"]
        start = time.monotonic()
        with pytest.raises(JobError, match="did not answer within 3 s while computing softplus"):
            worker.run({"op": "many", "jobs": [call] + [hang] * 5})
        assert time.monotonic() - start < 3 * 3
        (values, fmt), = [payload for _, payload in worker.run({"op": "many", "jobs": [call]})[0]]
        assert fmt == "float64" and len(values) == 1  # a fresh worker answers again


# -- variants: each its own worker, its own column ----------------------------------------

TWO_VARIANTS = f"{MODULE}:TwoVariantBackend"


def test_a_flaw_of_one_variant_is_reported_on_that_variant_alone():
    report = run_conformance([f"{TWO_VARIANTS}[eager]", f"{TWO_VARIANTS}[jit]"],
                             ["sigmoid", "softplus"], ["float64"], ["accuracy"], level="quick")
    assert [(e["name"], e["variant"], e["available"]) for e in report["backends"]] == [
        (TWO_VARIANTS, "eager", True), (TWO_VARIANTS, "jit", True)]
    assert report["backends"][1]["variant_description"] == \
        "the oracle's values with sigmoid moved ten steps up"
    statuses = {(r["variant"], r["function"]): r["status"] for r in report["results"]}
    assert statuses == {("eager", "sigmoid"): "pass", ("eager", "softplus"): "pass",
                        ("jit", "sigmoid"): "fail", ("jit", "softplus"): "pass"}
    (flawed,) = _records(report, variant="jit", function="sigmoid")
    (sound,) = _records(report, variant="eager", function="sigmoid")
    # ten steps above the correctly rounded value: 9.5 to 10.5 ULP, up to 21 across a binade
    assert 9.5 <= flawed["max_ulp"] <= 21 and sound["max_ulp"] <= 0.5
    assert all(r["backend"] == TWO_VARIANTS for r in report["results"])
    assert {s["variant"] for s in report["series"]} == {"eager", "jit"}
    reports.validate(report)


def test_a_plain_name_is_the_default_variant():
    # a plugin's default is learnt from its worker: the parent never imports its code
    report = run_conformance([TWO_VARIANTS], ["sigmoid"], ["float64"], ["accuracy"], level="quick")
    assert [(e["name"], e["variant"]) for e in report["backends"]] == [(TWO_VARIANTS, "eager")]
    (only,) = report["results"]
    assert only["variant"] == "eager" and only["status"] == "pass"


def test_an_unknown_variant_is_an_unavailable_entry_naming_it():
    report = run_conformance([f"{TWO_VARIANTS}[xla]"], ["sigmoid"], ["float64"], ["accuracy"],
                             level="quick")
    (entry,) = report["backends"]
    assert (entry["name"], entry["variant"], entry["available"]) == (TWO_VARIANTS, "xla", False)
    assert "has no variant 'xla' (variants: eager, jit)" in entry["error"]
    assert report["results"] == []


def test_records_of_a_backend_without_variants_name_none():
    report = run_conformance([f"{MODULE}:OracleBackend"], ["sigmoid"], ["float64"], ["accuracy"],
                             level="quick")
    assert report["backends"][0]["variant"] is None
    assert [r["variant"] for r in report["results"]] == [None]
    reports.validate(report)
