"""refact diff: regressions and improvements between two reports, and the command's exit status."""

import copy
import json
import math

import pytest

from refact.conformance.numbers.ruler import ALL_CLASSES
from refact.conformance.report import diff
from refact.conformance.report import writers as reports
from refact.conformance.cli import main

STATUSES = ("pass", "fail", "convention", "error", "skip")


def record(function, fmt, check, status="pass", max_ulp=1.0, backend="torch", **classes):
    measured = status not in ("skip", "error")
    return {
        "backend": backend, "function": function, "format": fmt, "check": check, "status": status,
        "points": 100 if measured else 0, "max_ulp": max_ulp if measured else None,
        "p99_ulp": None, "mean_ulp": None, "correctly_rounded": None, "budget_ulp": 4.0,
        "convention": None, "message": "",
        "classes": {name: classes.get(name, 0) for name in ALL_CLASSES},
        "worst": [],
    }


def make_report(*records):
    return {
        "schema": "refact.report/1", "refact_version": "0.1.0", "created": "2026-05-09T07:35:25+00:00",
        "environment": {"python": "3.11.7", "platform": "Linux", "cpu": None, "seed": 0},
        "backends": [{"name": "torch", "version": "2.13.0", "device": "cpu", "available": True, "error": None}],
        "results": list(records),
        "summary": {status: sum(1 for r in records if r["status"] == status) for status in STATUSES},
    }


BASELINE = make_report(
    record("sigmoid", "float32", "accuracy", max_ulp=1.8),
    record("softmax", "float32", "special_values", max_ulp=0.0),
    record("log_sigmoid", "float16", "gradient", "fail", max_ulp=40.0),
    record("logit", "float64", "accuracy", "convention", max_ulp=math.inf),
)


def changed(**edits):
    """BASELINE with records edited: {function: {field: value}}."""
    report = copy.deepcopy(BASELINE)
    for result in report["results"]:
        for field, value in edits.get(result["function"], {}).items():
            if field in result["classes"]:
                result["classes"][field] = value
            else:
                result[field] = value
    return report


def keys(changes):
    return [change.key[1] for change in changes]


def test_identical_reports_have_no_changes():
    result = diff.compare(BASELINE, copy.deepcopy(BASELINE))
    assert (result.regressions, result.improvements, result.added, result.removed) == ([], [], [], [])
    assert result.matched == 4


@pytest.mark.parametrize("edit, reason", [
    ({"status": "fail"}, "status pass -> fail"),
    ({"status": "error", "max_ulp": None}, "status pass -> error"),
    ({"status": "skip", "max_ulp": None}, "status pass -> skip"),
    ({"status": "convention"}, "status pass -> convention"),
    ({"max_ulp": 2.9}, "max ULP 1.8 -> 2.9"),
    ({"max_ulp": math.inf}, "max ULP 1.8 -> inf"),
    ({"spurious_nan": 3}, "spurious_nan 0 -> 3"),
    ({"missing_nan": 2}, "missing_nan 0 -> 2"),  # a class missing from diff's own copy once
])
def test_regressions(edit, reason):
    result = diff.compare(BASELINE, changed(sigmoid=edit))
    assert keys(result.regressions) == ["sigmoid"] and result.improvements == []
    assert reason in result.regressions[0].worse


def test_a_growth_within_the_tolerance_is_not_a_change():
    # 1.8 -> 2.3 is within 0.5 ULP; 40 -> 43.9 is within 10 %.
    result = diff.compare(BASELINE, changed(sigmoid={"max_ulp": 2.3}, log_sigmoid={"max_ulp": 43.9}))
    assert result.regressions == [] and result.improvements == []
    result = diff.compare(BASELINE, changed(log_sigmoid={"max_ulp": 44.5}))
    assert keys(result.regressions) == ["log_sigmoid"]


def test_undecided_oracle_points_are_not_the_backends_regression():
    result = diff.compare(BASELINE, changed(sigmoid={"undecided": 5}))
    assert result.regressions == []


def test_improvements():
    result = diff.compare(BASELINE, changed(log_sigmoid={"status": "pass", "max_ulp": 3.0},
                                            logit={"max_ulp": 0.5}))
    assert result.regressions == [] and keys(result.improvements) == ["log_sigmoid", "logit"]
    assert result.improvements[0].better == ["status fail -> pass", "max ULP 40 -> 3"]
    assert result.improvements[1].better == ["max ULP inf -> 0.5"]


def test_anything_worse_makes_a_regression_even_if_something_improved():
    result = diff.compare(BASELINE, changed(log_sigmoid={"max_ulp": 3.0, "flush_to_zero": 2}))
    assert keys(result.regressions) == ["log_sigmoid"] and result.improvements == []
    assert result.regressions[0].better == ["max ULP 40 -> 3"]


def test_added_and_removed_records():
    new = copy.deepcopy(BASELINE)
    new["results"].pop(1)
    new["results"].append(record("softplus", "float32", "accuracy", "fail"))
    result = diff.compare(BASELINE, new)
    assert keys(result.added) == ["softplus"] and keys(result.removed) == ["softmax"]
    assert result.regressions == [] and result.matched == 3


@pytest.fixture
def write(tmp_path):
    def write_report(name, report):
        return str(reports.write_json(report, tmp_path / name))
    return write_report


def test_the_command_exits_1_on_a_regression(write, capsys):
    old, new = write("old.json", BASELINE), write("new.json", changed(sigmoid={"status": "fail"}))
    assert main(["diff", old, new]) == 1
    out = capsys.readouterr().out
    assert "regressions: 1," in out and "Regressions:" in out
    assert "sigmoid" in out and "status pass -> fail" in out


def test_the_command_exits_0_on_an_improvement(write, capsys, tmp_path):
    old, new = write("old.json", BASELINE), write("new.json", changed(log_sigmoid={"status": "pass"}))
    summary = tmp_path / "diff.md"
    assert main(["diff", old, new, "--markdown", str(summary)]) == 0
    assert "Improvements:" in capsys.readouterr().out
    text = summary.read_text(encoding="utf-8")
    assert "## Improvements" in text and "| torch | log\\_sigmoid | float16 | gradient | fail -> pass |" in text


def test_the_command_prints_json(write, capsys):
    old, new = write("old.json", BASELINE), write("new.json", changed(logit={"max_ulp": math.nan}))
    assert main(["diff", old, new, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["matched"] == 4 and data["regressions"] == [] and data["improvements"] == []
    old, new = write("old.json", BASELINE), write("new.json", changed(sigmoid={"max_ulp": 9.0}))
    assert main(["diff", old, new, "--json"]) == 1
    (regression,) = json.loads(capsys.readouterr().out)["regressions"]
    assert regression["function"] == "sigmoid" and regression["new"] == {"status": "pass", "max_ulp": 9.0}


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"schema": "refact.report/1"}), "\xff"],
                         ids=["missing", "not JSON", "not a report", "not UTF-8"])
def test_the_command_exits_2_on_an_unusable_file(write, tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_bytes(content.encode("latin-1"))
    assert main(["diff", write("old.json", BASELINE), str(bad)]) == 2
    assert "refact diff:" in capsys.readouterr().err


def test_the_command_exits_2_when_a_record_appears_twice(write, capsys):
    twice = copy.deepcopy(BASELINE)
    twice["results"].append(copy.deepcopy(twice["results"][0]))
    assert main(["diff", write("old.json", BASELINE), write("new.json", twice)]) == 2
    assert "two records for torch / sigmoid / float32 / accuracy" in capsys.readouterr().err


def test_every_counted_class_but_undecided_is_compared():
    from refact.conformance.numbers.ruler import ALL_CLASSES, UNDECIDED

    assert set(diff.COMPARED_CLASSES) == set(ALL_CLASSES) - {UNDECIDED}


# --- variants, reports made differently, and one report's backends against each other ---------

def test_a_variant_is_a_column_of_its_own():
    eager, compiled = record("sigmoid", "float32", "accuracy"), record("sigmoid", "float32", "accuracy")
    compiled["variant"] = "compile"
    assert list(diff.records_by_key(make_report(eager, compiled))) == [
        ("torch", "sigmoid", "float32", "accuracy"), ("torch[compile]", "sigmoid", "float32", "accuracy")]
    assert diff.backend_column("torch") == "torch" and diff.backend_column("torch", "compile") == "torch[compile]"


def test_environment_warnings_name_each_difference():
    new = copy.deepcopy(BASELINE)
    new["environment"].update(seed=3, device="cuda")
    new["backends"][0]["version"] = "2.14.0"
    tail = ": a change may come from that, not from the code"
    # BASELINE records no case level and no device: "not recorded" may differ from anything
    assert diff.environment_warnings(BASELINE, new) == [
        f"the seeds differ (0 -> 3){tail}", f"the devices differ (not recorded -> cuda){tail}",
        f"the torch versions differ (2.13.0 -> 2.14.0){tail}"]
    assert diff.compare(BASELINE, new).warnings == diff.environment_warnings(BASELINE, new)
    assert diff.environment_warnings(BASELINE, copy.deepcopy(BASELINE)) == []


def test_compare_across_matches_function_format_and_check():
    report = copy.deepcopy(BASELINE)
    report["results"] += [record("sigmoid", "float32", "accuracy", max_ulp=5.0, backend="jax"),
                          record("softmax", "float32", "special_values", "fail", max_ulp=0.0, backend="jax")]
    result = diff.compare_across(report, "torch", "jax")
    assert result.matched == 2 and result.across == ("torch", "jax") and result.warnings == []
    assert [(change.key, change.worse) for change in result.regressions] == [
        (("sigmoid", "float32", "accuracy"), ["max ULP 1.8 -> 5"]),
        (("softmax", "float32", "special_values"), ["status pass -> fail"])]
    assert [change.key[0] for change in result.removed] == ["log_sigmoid", "logit"] and result.added == []
    assert result.to_dict()["regressions"][0]["function"] == "sigmoid"
    assert "backend" not in result.to_dict()["regressions"][0]
    with pytest.raises(ValueError, match="no records of backend 'keras'; it has torch, jax"):
        diff.compare_across(report, "torch", "keras")


def test_baseline_lines_give_the_count_the_warnings_and_the_regressions():
    new = changed(sigmoid={"status": "fail"})
    new["environment"]["seed"] = 1
    assert diff.baseline_lines(diff.compare(BASELINE, new), "old.json") == [
        "1 regression(s) against old.json",
        "warning: the seeds differ (0 -> 1): a change may come from that, not from the code",
        "Regressions:",
        "  backend  function  format   check     status        max ULP  why",
        "  torch    sigmoid   float32  accuracy  pass -> fail  1.8      status pass -> fail",
    ]
    assert diff.baseline_lines(diff.compare(BASELINE, BASELINE), "old.json") == ["0 regression(s) against old.json"]


def test_a_record_expected_but_gone_is_a_regression():
    new = copy.deepcopy(BASELINE)
    del new["results"][0]  # sigmoid float32 accuracy
    expected = diff.records_expected(new, functions=None, formats=["float32", "float64"], checks=None)
    assert expected(("torch", "sigmoid", "float32", "accuracy"))
    assert not expected(("torch", "log_sigmoid", "float16", "gradient"))  # float16 was not asked for
    assert not expected(("jax", "sigmoid", "float32", "accuracy"))        # nor jax
    result = diff.compare(BASELINE, new, expected=expected)
    assert [(change.key, change.worse) for change in result.regressions] == [
        (("torch", "sigmoid", "float32", "accuracy"), ["record gone"])]
    assert result.removed == [] and diff.compare(BASELINE, new).regressions == []
    assert keys(diff.compare(BASELINE, new).removed) == ["sigmoid"]
