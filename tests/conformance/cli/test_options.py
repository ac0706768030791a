"""The commands' options: numbers checked at parse time (a usage error naming the option and
the value, status 2), names given twice merged, and reports given as inputs (``--baseline``,
``refact diff``) read whole and checked against the schema before anything runs."""

import argparse
import json

import pytest

from refact.conformance import cli
from refact.conformance.cli import options
from refact.conformance.report import writers as reports

COUNT = "must be a whole number of at least 1, got {!r}"
NON_NEGATIVE = "must be a whole number of at least 0, got {!r}"
SECONDS = "must be a number of seconds above 0 and at most 1000000, got {!r}"
BIT_RANGE = "must be LO:HI, two bit patterns (hex 0x... or decimal) with 0 <= LO <= HI, got {!r}"

CONFORM = ["conform", "--backend", "reference", "--function", "sigmoid", "--format", "float64",
           "--cases", "quick", "--quiet"]
SWEEP = ["sweep", "--function", "sigmoid", "--backend", "numpy", "--format", "float16", "--quiet"]
SWEEP_RANGE = SWEEP + ["--range", "0x3c00:0x3c0f"]
TRUTH = ["truth", "sigmoid", "1"]
GOLDEN = ["golden", "--check", "1"]

BAD_NUMBERS = [
    *[(CONFORM, "--timeout", value, SECONDS) for value in ("nan", "inf", "-inf", "0", "-1", "1e7", "soon")],
    *[(CONFORM, "--jobs", value, COUNT) for value in ("-1", "0", "2.5", "1e3", "many")],
    *[(CONFORM, "--seed", value, NON_NEGATIVE) for value in ("-1", "0.5", "nan")],
    *[(SWEEP_RANGE, "--workers", value, COUNT) for value in ("0", "-1", "1.5")],
    *[(SWEEP_RANGE, "--shard-size", value, COUNT) for value in ("0", "inf")],
    *[(SWEEP_RANGE, "--sample", value, NON_NEGATIVE) for value in ("-1", "nan")],
    (SWEEP_RANGE, "--seed", "-3", NON_NEGATIVE),
    *[(SWEEP, "--range", value, BIT_RANGE) for value in ("0x10:0x5", "zero:0x10", "0x10", "-1:2", "0:nan")],
    *[(TRUTH, "--digits", value, COUNT) for value in ("0", "2.5")],
    (TRUTH, "--max-precision", "1", "must be a whole number of at least 2, got {!r}"),
    (GOLDEN, "--workers", "0", COUNT),
    (["golden"], "--check", "-1", NON_NEGATIVE),
]


@pytest.mark.parametrize("command, option, value, message", BAD_NUMBERS)
def test_a_bad_number_is_a_usage_error_naming_the_option_and_the_value(command, option, value, message, capsys):
    # --option=value: argparse would take a lone "-inf" for an option of its own
    assert cli.main(command + [f"{option}={value}"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == f"refact {command[0]}: error: argument {option}: {message.format(value)}"


def test_good_numbers_are_read_as_numbers():
    assert options.seconds("0.5") == 0.5 and options.seconds("1e6") == 1e6
    assert options.count("3") == 3 and options.non_negative_integer("0") == 0
    assert options.integer_at_least(2)("2") == 2
    assert options.bit_range("0x3c00:15360") == (0x3C00, 15360)


def test_names_given_twice_are_merged_in_the_order_first_given():
    assert options.names(["a,b", "a", " b , c", ","]) == ["a", "b", "c"]


def test_a_run_with_repeated_names_checks_each_once(tmp_path, capsys):
    out = tmp_path / "r.json"
    status = cli.main(["conform", "--backend", "reference", "--backend", "reference,reference",
                       "--function", "sigmoid,sigmoid", "--function", "sigmoid",
                       "--format", "float64", "--format", "float64", "--check", "accuracy,accuracy",
                       "--cases", "quick", "--quiet", "--json", str(out)])
    assert status == 0 and capsys.readouterr().err == ""
    report = reports.load_report(out)
    assert [entry["name"] for entry in report["backends"]] == ["reference"]
    assert [(r["backend"], r["function"], r["format"], r["check"]) for r in report["results"]] == [
        ("reference", "sigmoid", "float64", "accuracy")]


# --- reports read as inputs -----------------------------------------------------------------


def two_records_for_one_key(tmp_path):
    """A report that follows the schema but has one record twice: it cannot be compared."""
    path = tmp_path / "good.json"
    assert cli.main(CONFORM + ["--check", "accuracy", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    report["results"].append(report["results"][0])
    path.write_text(json.dumps(report))
    return path


@pytest.fixture
def bad_reports(tmp_path):
    """{what: (path, the message after the path)} for every way an input can be unusable."""
    (tmp_path / "not-json.json").write_text("not json\n")
    (tmp_path / "empty-object.json").write_text("{}")
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "a-directory.json").mkdir()
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    return {
        "missing": (tmp_path / "missing.json", None),
        "directory": (tmp_path / "a-directory.json", None),
        "not JSON": (tmp_path / "not-json.json", " is not a JSON file: Expecting value: line 1 column 1 (char 0)"),
        "not UTF-8": (tmp_path / "binary.json", " is not a JSON file: "),
        "schema": (tmp_path / "empty-object.json", " is not a refact.report/1 report: "),
        "deep": (tmp_path / "deep.json", " is not a refact.report/1 report: its JSON is nested too deeply"),
        "two records": (two_records_for_one_key(tmp_path), " cannot be compared: the report has two records for "
                        "reference / sigmoid / float64 / accuracy"),
    }


READ_ERRORS = {"missing": "No such file or directory", "directory": "Is a directory"}


def check_one_line(line, prefix, what, path, message):
    if message is None:  # unreadable: "cannot read <path>: <reason>"
        assert line == f"{prefix}cannot read {path}: {READ_ERRORS[what]}"
    elif what in ("schema", "not UTF-8"):
        assert line.startswith(f"{prefix}{path}{message}")
        if what == "schema":
            assert "$: 'schema' is a required property" in line
    else:
        assert line == f"{prefix}{path}{message}"


def test_an_unusable_baseline_is_a_usage_error_before_the_run(bad_reports, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "new.json"
    for what, (path, message) in bad_reports.items():
        assert cli.main(CONFORM + ["--baseline", str(path), "--json", str(out)]) == 2, what
        captured = capsys.readouterr()
        (line,) = captured.err.splitlines()
        check_one_line(line, "refact conform: ", what, f"--baseline {path}", message)
        assert "regression" not in captured.out and not out.exists()


def test_an_unusable_diff_input_is_a_usage_error(bad_reports, tmp_path, capsys):
    good = tmp_path / "other.json"
    assert cli.main(CONFORM + ["--json", str(good)]) == 0
    capsys.readouterr()
    for what, (path, message) in bad_reports.items():
        for arguments in ([str(path), str(good)], [str(good), str(path)]):
            assert cli.main(["diff", *arguments]) == 2, what
            captured = capsys.readouterr()
            (line,) = captured.err.splitlines()
            check_one_line(line, "refact diff: ", what, path, message)
            assert captured.out == ""


def test_a_valid_baseline_is_compared(tmp_path, capsys):
    old = tmp_path / "old.json"
    assert cli.main(CONFORM + ["--json", str(old)]) == 0
    capsys.readouterr()
    assert cli.main([*CONFORM[:-1], "--baseline", str(old)]) == 0
    assert f"0 regression(s) against {old}" in capsys.readouterr().out


def test_fail_on_reads_statuses_and_severities():
    parse = options.fail_on_words(("pass", "fail", "error"), ("critical", "major"))
    assert parse("fail, critical,fail") == options.FailOn(frozenset({"fail"}), frozenset({"critical"}))
    assert parse("") == options.FailOn(frozenset(), frozenset())
    gate = parse("error,major")
    assert gate.fails({"status": "error"}) and gate.fails({"status": "fail", "severity": "major"})
    assert not gate.fails({"status": "fail", "severity": "critical"}) and not gate.fails({"status": "pass"})
    with pytest.raises(argparse.ArgumentTypeError, match=r"^unknown 'warn'; expected comma-separated statuses \(pass, fail, error\) "
                                        r"or severities \(critical, major\), got 'warn,fail'$"):
        parse("warn,fail")
    with pytest.raises(ValueError, match="share"):
        options.fail_on_words(("fail",), ("fail",))
