"""refact as a CI gate: ``--baseline`` read and checked like ``refact diff``'s inputs before the
run, warnings when two reports were made differently, ``refact diff --across`` between two
backends (or variants) of one report, and ``--fail-on`` with statuses and severities."""

import copy
import json

import pytest

from refact.conformance import cli
from refact.conformance.cli import conform
from refact.conformance.numbers.ruler import ALL_CLASSES
from refact.conformance.report import writers as reports

STATUSES = ("pass", "fail", "convention", "error", "skip")
WARNING_TAIL = ": a change may come from that, not from the code"
RUN = ["conform", "--backend", "reference", "--function", "sigmoid", "--format", "float32", "--cases", "quick"]


def record(backend, function, status="pass", max_ulp=1.0, severity=None, variant=None, fmt="float32",
           check="accuracy", **classes):
    measured = status not in ("skip", "error")
    made = {
        "backend": backend, "function": function, "format": fmt, "check": check, "status": status,
        "severity": severity, "points": 100 if measured else 0, "max_ulp": max_ulp if measured else None,
        "p99_ulp": None, "mean_ulp": None, "correctly_rounded": None, "budget_ulp": 4.0,
        "convention": None, "message": "",
        "classes": {name: classes.get(name, 0) for name in ALL_CLASSES}, "worst": [],
    }
    if variant is not None:
        made["variant"] = variant
    return made


def backend_entry(name, version, variant=None):
    entry = {"name": name, "version": version, "device": "cpu", "available": True, "error": None}
    if variant is not None:
        entry["variant"] = variant
    return entry


def make_report(records, backends=(("torch", "2.13.0"),), seed=0, cases="default", refact_version="0.1.0",
                platform="Linux-6.1-x86_64", cpu=None):
    return {
        "schema": "refact.report/1", "refact_version": refact_version, "created": "2026-05-09T07:35:25+00:00",
        "environment": {"python": "3.11.7", "platform": platform, "cpu": cpu, "seed": seed,
                        "cases": cases, "device": "cpu"},
        "backends": [backend_entry(*entry) for entry in backends],
        "results": list(records),
        "summary": {status: sum(r["status"] == status for r in records) for status in STATUSES},
    }


@pytest.fixture
def write(tmp_path):
    def write_report(name, report):
        return str(reports.write_json(report, tmp_path / name))
    return write_report


# --------------------------------------------------------------------------- --baseline read like diff's inputs


@pytest.fixture(scope="module")
def real_report(tmp_path_factory):
    """A report of the reference backend, made by the command (about a second: float32 is skipped)."""
    path = tmp_path_factory.mktemp("real") / "report.json"
    assert cli.main(RUN + ["--quiet", "--json", str(path)]) == 0
    return reports.load_report(path)


def test_a_report_records_its_case_level_and_the_schema_checks_it(real_report):
    assert (real_report["environment"]["seed"], real_report["environment"]["cases"]) == (0, "quick")
    spoiled = copy.deepcopy(real_report)
    spoiled["environment"]["cases"] = 3
    with pytest.raises(reports.InvalidReport, match=r"\$\.environment\.cases: 3 is not of type 'string'"):
        reports.validate(spoiled)


def bad_baselines(tmp_path, real_report):
    wrong_schema = copy.deepcopy(real_report)
    wrong_schema["schema"] = "refact.report/2"
    bad_record = copy.deepcopy(real_report)
    bad_record["results"][0]["status"] = "great"
    files = {"invalid JSON": "{not json", "{}": "{}", "wrong schema name": json.dumps(wrong_schema),
             "schema-invalid record": json.dumps(bad_record)}
    for what, text in files.items():
        (tmp_path / f"{what}.json").write_text(text)
    return {"missing": tmp_path / "missing.json", **{what: tmp_path / f"{what}.json" for what in files}}


BASELINE_PROBLEMS = {
    "missing": "cannot read {named}: No such file or directory",
    "invalid JSON": "{named} is not a JSON file: Expecting property name enclosed in double quotes: "
                    "line 1 column 2 (char 1)",
    "{}": "{named} is not a refact.report/1 report: $: 'schema' is a required property; "
          "$: 'refact_version' is a required property; $: 'created' is a required property; ...",
    "wrong schema name": "{named} is not a refact.report/1 report: $.schema: 'refact.report/1' was expected",
    "schema-invalid record": "{named} is not a refact.report/1 report: $.results[0].status: 'great' is not "
                             "one of ['pass', 'fail', 'convention', 'error', 'skip']",
}


def test_a_bad_baseline_exits_2_in_one_line_before_the_run_like_diff(tmp_path, real_report, monkeypatch, capsys):
    def no_run(*args, **kwargs):
        raise AssertionError("the run started before --baseline was checked")

    good = reports.write_json(real_report, tmp_path / "good.json")
    monkeypatch.setattr(conform, "run_conformance", no_run)
    out = tmp_path / "new.json"
    for what, path in bad_baselines(tmp_path, real_report).items():
        assert cli.main(RUN + ["--baseline", str(path), "--json", str(out)]) == 2, what
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [
            "refact conform: " + BASELINE_PROBLEMS[what].format(named=f"--baseline {path}")], what
        assert captured.out == "" and not out.exists()
        # refact diff rejects the same file with the same words
        assert cli.main(["diff", str(path), str(good)]) == 2, what
        captured = capsys.readouterr()
        assert captured.err.splitlines() == ["refact diff: " + BASELINE_PROBLEMS[what].format(named=path)]
        assert captured.out == ""


def test_a_baseline_run_end_to_end_warns_and_gates(tmp_path, real_report, capsys):
    # the baseline: another seed, case level and reference version, and a pass where now is a skip
    baseline = copy.deepcopy(real_report)
    baseline["environment"].update(seed=7, cases="default")
    baseline["backends"][0]["version"] = "0.0.9"
    accuracy = next(r for r in baseline["results"] if r["check"] == "accuracy")
    accuracy.update(status="pass", points=10, max_ulp=0.4)
    baseline_path = reports.write_json(baseline, tmp_path / "baseline.json")
    out = tmp_path / "new.json"
    warnings = [f"the seeds differ (7 -> 0){WARNING_TAIL}", f"the case levels differ (default -> quick){WARNING_TAIL}",
                f"the reference versions differ (0.0.9 -> 0.1.0){WARNING_TAIL}"]

    assert cli.main(RUN + ["--baseline", str(baseline_path), "--json", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"refact conform: warning: {warning}" for warning in warnings]
    lines = captured.out.splitlines()
    start = lines.index(f"1 regression(s) against {baseline_path}")
    assert lines[start:] == [
        f"1 regression(s) against {baseline_path}", *(f"warning: {warning}" for warning in warnings),
        "Regressions:",
        "  backend    function  format   check     status        max ULP   why",
        "  reference  sigmoid   float32  accuracy  pass -> skip  0.4 -> -  status pass -> skip",
    ]
    assert reports.load_report(out)["baseline"] == {
        "path": "baseline.json", "regressions": 1, "warnings": warnings,
        "regressed": [{"backend": "reference", "function": "sigmoid", "format": "float32", "check": "accuracy",
                       "old": {"status": "pass", "max_ulp": 0.4}, "new": {"status": "skip", "max_ulp": None},
                       "worse": ["status pass -> skip"], "better": []}]}

    # the regressed record is a skip, of no severity: a gate on severities alone lets it by
    assert cli.main(RUN + ["--baseline", str(baseline_path), "--fail-on", "critical,major", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    # a baseline made alike: no warning, no regression
    assert cli.main(RUN + ["--baseline", str(tmp_path / "new.json")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.splitlines()[-1] == f"0 regression(s) against {out}"


# --------------------------------------------------------------------------- warnings of refact diff

OLD_RECORDS = [record("torch", "sigmoid", max_ulp=1.8), record("torch", "softmax", max_ulp=0.5)]
NEW_RECORDS = [record("torch", "sigmoid", max_ulp=1.8), record("torch", "softmax", max_ulp=3.0)]


def test_diff_warns_when_the_reports_were_made_differently(write, tmp_path, capsys):
    old = write("old.json", make_report(OLD_RECORDS, backends=[("torch", "2.12.0")], seed=0, cases="quick"))
    new = write("new.json", make_report(NEW_RECORDS, seed=1, cases="default", refact_version="0.2.0",
                                        platform="Darwin-24.1-arm64", cpu="Apple M3"))
    warnings = [f"the seeds differ (0 -> 1){WARNING_TAIL}",
                f"the case levels differ (quick -> default){WARNING_TAIL}",
                f"the refact versions differ (0.1.0 -> 0.2.0){WARNING_TAIL}",
                f"the platforms differ (Linux-6.1-x86_64 -> Darwin-24.1-arm64){WARNING_TAIL}",
                f"the CPUs differ (not recorded -> Apple M3){WARNING_TAIL}",
                f"the torch versions differ (2.12.0 -> 2.13.0){WARNING_TAIL}"]
    markdown = tmp_path / "diff.md"
    assert cli.main(["diff", old, new, "--markdown", str(markdown)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"refact diff: warning: {warning}" for warning in warnings]
    assert captured.out.splitlines() == [
        "refact diff: regressions: 1, improvements: 0, added: 0, removed: 0 (2 records matched)",
        *(f"warning: {warning}" for warning in warnings),
        "",
        "Regressions:",
        "  backend  function  format   check     status  max ULP   why",
        "  torch    softmax   float32  accuracy  pass    0.5 -> 3  max ULP 0.5 -> 3",
    ]
    assert f"**Warning:** the seeds differ (0 -> 1){WARNING_TAIL}" in markdown.read_text().splitlines()
    assert cli.main(["diff", old, new, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["warnings"] == warnings


def test_diff_of_reports_made_alike_has_no_warning(write, capsys):
    old, new = write("old.json", make_report(OLD_RECORDS)), write("new.json", make_report(OLD_RECORDS))
    assert cli.main(["diff", old, new]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "warning" not in captured.out


def test_a_field_missing_from_an_older_report_is_warned_about(write, capsys):
    older = make_report(OLD_RECORDS)
    del older["environment"]["cases"]
    assert cli.main(["diff", write("old.json", older), write("new.json", make_report(OLD_RECORDS))]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"refact diff: warning: the case levels differ (not recorded -> default){WARNING_TAIL}"]


# --------------------------------------------------------------------------- refact diff --across

ACROSS = make_report(
    [record("torch", "sigmoid", max_ulp=1.5), record("torch", "softmax", max_ulp=0.5),
     record("torch", "logit", max_ulp=2.0),
     record("jax", "sigmoid", max_ulp=1.5), record("jax", "softmax", "fail", max_ulp=62.0, severity="major"),
     record("jax", "ndtr", max_ulp=0.5),
     record("torch", "sigmoid", max_ulp=1.5, variant="compile"),
     record("torch", "softmax", max_ulp=0.5, variant="compile", spurious_nan=3),
     record("torch", "logit", max_ulp=0.6, variant="compile")],
    backends=[("torch", "2.13.0"), ("jax", "0.10.2"), ("torch", "2.13.0", "compile")])


def test_across_two_backends_of_one_report(write, capsys):
    path = write("report.json", ACROSS)
    assert cli.main(["diff", "--across", "torch", "jax", path]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines() == [
        "refact diff --across torch jax: regressions: 1, improvements: 0, added: 1, removed: 1 (2 records matched)",
        "",
        "Worse in jax than in torch:",
        "  function  format   check     status        max ULP    why",
        "  softmax   float32  accuracy  pass -> fail  0.5 -> 62  status pass -> fail; max ULP 0.5 -> 62",
        "",
        "Only in jax:",
        "  function  format   check     status  max ULP  why",
        "  ndtr      float32  accuracy  pass    0.5      only in jax",
        "",
        "Only in torch:",
        "  function  format   check     status  max ULP  why",
        "  logit     float32  accuracy  pass    2        only in torch",
    ]
    # the other way round, jax is nowhere worse
    assert cli.main(["diff", "--across", "jax", "torch", path, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["across"] == ["jax", "torch"] and data["regressions"] == [] and data["warnings"] == []
    assert [(c["function"], c["better"]) for c in data["improvements"]] == [
        ("softmax", ["status fail -> pass", "max ULP 62 -> 0.5"])]


def test_across_in_markdown(write, tmp_path, capsys):
    markdown = tmp_path / "across.md"
    assert cli.main(["diff", "--across", "torch", "jax", write("report.json", ACROSS), "--markdown", str(markdown)]) == 1
    lines = markdown.read_text().splitlines()
    assert lines[0] == "# refact diff: jax against torch in " + reports.escape_markdown(str(tmp_path / "report.json"))
    assert lines[4:8] == ["## Worse in jax than in torch", "", "| function | format | check | status | max ULP | why |",
                          "|---|---|---|---|---|---|"]
    assert lines[8] == "| softmax | float32 | accuracy | pass -> fail | 0.5 -> 62 | status pass -> fail; max ULP 0.5 -> 62 |"


def test_across_a_backend_and_its_variant(write, capsys):
    path = write("report.json", ACROSS)
    assert cli.main(["diff", "--across", "torch", "torch[compile]", path]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("refact diff --across torch torch[compile]: regressions: 1, improvements: 1, "
                        "added: 0, removed: 0 (3 records matched)")
    assert lines[2:] == [
        "Worse in torch[compile] than in torch:",
        "  function  format   check     status  max ULP  why",
        "  softmax   float32  accuracy  pass    0.5      spurious_nan 0 -> 3",
        "",
        "Better in torch[compile] than in torch:",
        "  function  format   check     status  max ULP   why",
        "  logit     float32  accuracy  pass    2 -> 0.6  max ULP 2 -> 0.6",
    ]


def test_variants_are_their_own_columns_in_a_diff_of_two_reports(write, capsys):
    # torch and torch[compile] have records with the same backend/function/format/check
    path = write("report.json", ACROSS)
    assert cli.main(["diff", path, path]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "refact diff: regressions: 0, improvements: 0, added: 0, removed: 0 (9 records matched)"]


@pytest.mark.parametrize("arguments, message", [
    (["--across", "torch", "keras", "{report}"],
     "the report has no records of backend 'keras'; it has torch, jax, torch[compile]"),
    (["--across", "torch", "torch", "{report}"], "--across needs two different backends, got 'torch' twice"),
    (["--across", "torch", "jax", "{report}", "{report}"],
     "--across compares two backends of one report: give one REPORT.json, not {report} and {report}"),
    (["{report}"], "give two reports, OLD.json and NEW.json (or --across A B REPORT.json)"),
])
def test_across_usage_errors(write, capsys, arguments, message):
    path = write("report.json", ACROSS)
    assert cli.main(["diff", *(argument.format(report=path) for argument in arguments)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"refact diff: {message.format(report=path)}"] and captured.out == ""


# --------------------------------------------------------------------------- --fail-on statuses and severities

GATED = [record("torch", "sigmoid", "fail", max_ulp=2.0e4, severity="critical"),
         record("torch", "softmax", "fail", max_ulp=62.0, severity="major"),
         record("torch", "logit", "convention", max_ulp=3.0, severity="minor"),
         record("torch", "ndtr", max_ulp=0.5)]


@pytest.fixture
def gate(monkeypatch, capsys):
    """The exit status of ``refact conform ARGS`` whose run returns a report of ``records``."""
    def exit_status(records, *arguments):
        monkeypatch.setattr(conform, "run_conformance", lambda *args, **kwargs: make_report(records))
        status = cli.main(["conform", "--quiet", *arguments])
        capsys.readouterr()
        return status
    return exit_status


@pytest.mark.parametrize("fail_on, with_critical, without_critical", [
    (None, 1, 1),                 # the default, fail,error: the major fail still fails
    ("critical", 1, 0),
    ("major", 1, 1),
    ("fail,critical", 1, 1),
    ("critical,error", 1, 0),
    ("minor", 1, 1),              # the convention record is minor
    ("convention", 1, 1),
    ("error,skip", 0, 0),
    ("", 0, 0),
])
def test_fail_on_statuses_and_severities(gate, fail_on, with_critical, without_critical):
    arguments = [] if fail_on is None else [f"--fail-on={fail_on}"]
    assert gate(GATED, *arguments) == with_critical
    assert gate(GATED[1:], *arguments) == without_critical


def test_fail_on_an_unknown_word_is_a_usage_error_listing_both_vocabularies(capsys):
    assert cli.main(["conform", "--fail-on", "fail,fatal,severe"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "refact conform: error: argument --fail-on: unknown 'fatal', 'severe'; expected comma-separated "
        "statuses (pass, fail, convention, error, skip) or severities (critical, major, minor), "
        "got 'fail,fatal,severe'")


def test_a_regression_fails_as_a_fail_of_its_own_severity(gate, write):
    baseline = write("baseline.json", make_report([record("torch", "softmax", max_ulp=0.5)]))
    now_major = [record("torch", "softmax", "fail", max_ulp=62.0, severity="major")]
    assert gate(now_major, "--baseline", baseline, "--fail-on", "critical") == 0
    assert gate(now_major, "--baseline", baseline, "--fail-on", "major") == 1
    # status and severity unchanged, max ULP grown: the regression itself is the fail
    grown = [record("torch", "softmax", max_ulp=3.0)]
    assert gate(grown, "--baseline", baseline) == 1
    assert gate(grown, "--baseline", baseline, "--fail-on", "error") == 0


def test_a_baseline_record_the_run_should_have_made_and_lacks_is_a_regression(monkeypatch, write, capsys):
    baseline = write("baseline.json", make_report(
        [record("torch", "sigmoid"), record("jax", "sigmoid"), record("jax", "softmax")],
        backends=[("torch", "2.13.0"), ("jax", "0.10.2")]))
    # jax no longer starts: its entry is there, unavailable, and it has no records
    now = make_report([record("torch", "sigmoid")], backends=[("torch", "2.13.0"), ("jax", None)])
    now["backends"][1].update(available=False, error="ModuleNotFoundError: No module named 'jax'")
    monkeypatch.setattr(conform, "run_conformance", lambda *args, **kwargs: now)
    assert cli.main(["conform", "--baseline", baseline]) == 1
    lines = capsys.readouterr().out.splitlines()
    start = lines.index(f"2 regression(s) against {baseline}")
    assert lines[start:] == [
        f"2 regression(s) against {baseline}",
        f"warning: the jax versions differ (0.10.2 -> not recorded){WARNING_TAIL}",
        "Regressions:",
        "  backend  function  format   check     status  max ULP  why",
        "  jax      sigmoid   float32  accuracy  pass    1        record gone",
        "  jax      softmax   float32  accuracy  pass    1        record gone",
    ]
    # a record gone has no severity now: it fails as a fail only
    assert cli.main(["conform", "--quiet", "--baseline", baseline, "--fail-on", "critical,major"]) == 0
    # a run asked for softmax alone lacks no sigmoid record, only jax's softmax one
    assert cli.main(["conform", "--function", "softmax", "--baseline", baseline]) == 1
    assert f"1 regression(s) against {baseline}" in capsys.readouterr().out.splitlines()
    # nor does a run of torch alone lack jax's records: they are removed, as in refact diff
    only_torch = make_report([record("torch", "sigmoid")])
    monkeypatch.setattr(conform, "run_conformance", lambda *args, **kwargs: only_torch)
    assert cli.main(["conform", "--backend", "torch", "--baseline", baseline]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"0 regression(s) against {baseline}"
