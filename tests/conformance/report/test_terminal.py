"""report/terminal: the end of a run on a terminal, from a small hand-built report of two
backends and two functions: exact matrix lines and cells, the order of the findings,
lines fitted to 60 and 200 columns without cutting a word, the Markdown matrix and
``refact report``."""

import math
import os

import pytest

from refact.conformance import cli
from refact.conformance.numbers.ruler import ALL_CLASSES
from refact.conformance.report import terminal
from refact.conformance.report import writers as reports
from refact.conformance.run.records import report_envelope


def record(backend, function, status, max_ulp=None, severity=None, fmt="float32", check="accuracy",
           worst=(), message="", **classes):
    return {
        "backend": backend, "function": function, "format": fmt, "check": check, "status": status,
        "severity": severity, "points": 0 if status in ("skip", "error") else 1000, "max_ulp": max_ulp,
        "p99_ulp": None, "mean_ulp": None, "correctly_rounded": None, "budget_ulp": 2.0,
        "convention": None, "message": message,
        "classes": {name: classes.get(name, 0) for name in ALL_CLASSES}, "worst": list(worst),
    }


def point(inputs, output, expected, ulp, kind=None):
    made = {"input": inputs, "input_hex": ["-"] * len(inputs), "output": output, "expected": expected,
            "ulp": ulp}
    if kind:
        made["class"] = kind
    return made


RESULTS = [
    record("torch", "sigmoid", "fail", 3.0938, "major",
           worst=[point([-16.635704040527344], 5.959439e-08, 5.9594406e-08, 3.0938)]),
    record("torch", "sigmoid", "fail", 514.0, "critical", check="gradient",
           worst=[point([17.33], 0.0, 2.98e-08, None, "premature_underflow"),
                  point([15.0], 3.0e-07, 3.059e-07, 514.0)], premature_underflow=3),
    record("torch", "softmax", "fail", 62.2, "critical", spurious_nan=5,
           worst=[point([[0.5, 2.5]], [0.25, 0.75], [0.2689414213699951, 0.7310585786300049], 62.2),
                  point([[1.0, math.inf]], [math.nan, math.nan], [0.0, 1.0], None, "spurious_nan")]),
    record("torch", "sigmoid", "skip", fmt="float64"),
    record("jax", "sigmoid", "convention", 1.51, "minor",
           worst=[point([-88.0], 0.0, 6.0546014e-39, None, "flush_to_zero")], flush_to_zero=40),
    record("jax", "softmax", "error", message="RuntimeError: the worker crashed\n(exit code -11)"),
    record("jax", "sigmoid", "pass", 0.5, fmt="float64"),
]


@pytest.fixture
def report():
    backends = [{"name": "torch", "version": "2.13.0", "device": "cpu", "available": True, "error": None},
                {"name": "jax", "version": "0.10.2", "device": "cpu", "available": True, "error": None},
                {"name": "keras", "version": None, "device": "cpu", "available": False,
                 "error": "BackendUnavailable: keras is not installed:\n pip install keras"}]
    return report_envelope([dict(r) for r in RESULTS], backends, seed=0)


def test_cells():
    assert terminal.matrix_cell(RESULTS[0]) == "3.09 !"
    assert terminal.matrix_cell(RESULTS[2]) == "62.2 !!"
    assert terminal.matrix_cell(RESULTS[4]) == "1.51 ~ (c)"
    assert terminal.matrix_cell(RESULTS[5]) == "ERR"
    assert terminal.matrix_cell(RESULTS[3]) == "—"
    assert terminal.matrix_cell(None) == "—"
    assert terminal.matrix_cell(RESULTS[6]) == "0.5"
    # a failing record whose points are all in failure classes has no max ULP to show
    assert terminal.matrix_cell(record("torch", "logit", "fail", None, "critical")) == "- !!"


def test_matrix_of_two_backends_and_two_functions(report):
    assert terminal.render_matrix(report, "float32", width=200) == [
        "float32 accuracy    torch         jax",
        "sigmoid            3.09 !  1.51 ~ (c)",
        "softmax           62.2 !!         ERR",
    ]
    assert terminal.render_matrix(report, "float64", width=200) == [
        "float64 accuracy  torch  jax",
        "sigmoid               —  0.5",
    ]
    assert terminal.render_matrix(report, "float16", width=200) == []


def test_a_matrix_wider_than_the_terminal_is_split_into_blocks_of_whole_columns(report):
    # 16 + 2 + 7 = 25 columns fit, the next column (2 + 10) does not
    assert terminal.render_matrix(report, "float32", width=30) == [
        "float32 accuracy    torch",
        "sigmoid            3.09 !",
        "softmax           62.2 !!",
        "",
        "float32 accuracy         jax",
        "sigmoid           1.51 ~ (c)",
        "softmax                  ERR",
    ]


def test_markdown_matrix_has_the_same_cells(report):
    assert terminal.markdown_matrix(report, "float32") == [
        "| float32 accuracy | torch | jax |",
        "|---|---|---|",
        "| sigmoid | 3.09 ! | 1.51 \\~ (c) |",
        "| softmax | 62.2 !! | ERR |",
    ]


def test_findings_critical_first_then_by_ulp(report):
    ordered = [(r["backend"], r["function"], r["check"]) for r in terminal.findings(report)]
    assert ordered == [
        ("torch", "sigmoid", "gradient"),   # critical, 514 ULP
        ("torch", "softmax", "accuracy"),   # critical, 62.2 ULP
        ("torch", "sigmoid", "accuracy"),   # major
        ("jax", "sigmoid", "accuracy"),     # minor (a convention's flush)
        ("jax", "softmax", "accuracy"),     # an error: no severity, nothing measured
    ]


def test_summary_at_200_columns(report):
    assert terminal.render_summary(report, width=200) == [
        "torch 2.13.0 on cpu: 0 pass, 3 fail, 0 convention, 0 error, 1 skip",
        "jax 0.10.2 on cpu: 1 pass, 0 fail, 1 convention, 1 error, 0 skip",
        "keras: unavailable (BackendUnavailable: keras is not installed: pip install keras)",
        "",
        "float64 accuracy  torch  jax",
        "sigmoid               —  0.5",
        "",
        "float32 accuracy    torch         jax",
        "sigmoid            3.09 !  1.51 ~ (c)",
        "softmax           62.2 !!         ERR",
        "cell: max ULP of the accuracy check outside failure classes; !! critical, ! major, ~ minor; "
        "(c) convention; — skipped or not offered; ERR error",
        "",
        "findings:",
        "!!  torch  sigmoid  float32  gradient  514 ULP  premature_underflow at 17.33 -> 0, truth 2.98e-08",
        "!!  torch  softmax  float32  accuracy  62.2 ULP  spurious_nan at [1, inf] -> [nan, nan], truth [0, 1]",
        "!   torch  sigmoid  float32  accuracy  3.09 ULP  at -16.635704 -> 5.959439e-08, truth 5.9594406e-08",
        "~   jax    sigmoid  float32  accuracy  1.51 ULP (c)  flush_to_zero at -88 -> 0, truth 6.0546014e-39",
        "    jax    softmax  float32  accuracy  ERR  RuntimeError: the worker crashed (exit code -11)",
        "",
        "summary: 1 pass, 3 fail, 1 convention, 1 error, 1 skip (2 critical, 1 major, 1 minor)",
    ]


def test_summary_at_60_columns_cuts_findings_at_a_space_and_wraps_sentences(report):
    lines = terminal.render_summary(report, width=60)
    assert all(len(line) <= 60 for line in lines)
    start = lines.index("findings:")
    assert lines[start:] == [
        "findings:",
        "!!  torch  sigmoid  float32  gradient  514 ULP …",
        "!!  torch  softmax  float32  accuracy  62.2 ULP …",
        "!   torch  sigmoid  float32  accuracy  3.09 ULP  at …",
        "~   jax    sigmoid  float32  accuracy  1.51 ULP (c) …",
        "    jax    softmax  float32  accuracy  ERR  RuntimeError: …",
        "",
        "summary: 1 pass, 3 fail, 1 convention, 1 error, 1 skip (2",
        "  critical, 1 major, 1 minor)",
    ]
    assert lines[lines.index("softmax           62.2 !!         ERR") + 1:start - 1] == [
        "cell: max ULP of the accuracy check outside failure classes;",
        "  !! critical, ! major, ~ minor; (c) convention; — skipped",
        "  or not offered; ERR error",
    ]


def test_a_long_row_shows_its_first_and_last_values_and_how_many_are_left_out():
    row = [float(i) for i in range(100)]
    line = terminal.finding_line(record("torch", "softmax", "fail", 71.4, "critical",
                                        worst=[point([row], 5.4e-17, 5.3e-17, 71.4)]))
    assert line == ("!!  torch  softmax  float32  accuracy  71.4 ULP  "
                    "at [0, 1, …97 more, 99] -> 5.4e-17, truth 5.3e-17")
    # a loss of several arguments: each argument is shortened, the tuple is in parentheses
    line = terminal.finding_line(record("torch", "cross_entropy", "fail", 8.29e6, "critical", fmt="float16",
                                        worst=[point([[20.9, 39.3, 1.0, 2.0], 1], -0.0, 1.0e-8, None,
                                                     "premature_underflow")]))
    assert line.endswith("premature_underflow at ([20.9, 39.3, …1 more, 2], 1) -> -0, truth 1e-08")


def test_fit_never_cuts_a_word():
    assert terminal.fit("abc def ghi", 11) == "abc def ghi"
    assert terminal.fit("abc def ghi", 10) == "abc def …"
    assert terminal.fit("abc def ghi", 8) == "abc …"
    assert terminal.fit("abcdefghij", 6) == "abcde…"  # one word wider than the line: cut, marked


def test_only_the_worst_are_listed_unless_details(report):
    many = dict(report, results=report["results"] + [
        record("jax", f"f{i}", "fail", float(i), "major", fmt="float16") for i in range(12)])
    lines = terminal.render_findings(many, width=200)
    assert lines[0] == "worst findings (10 of 17):"
    assert len(lines) == 12
    assert lines[-1] == "... 7 more: --details lists every one, the JSON/HTML report has each point"
    assert len(terminal.render_findings(many, width=200, limit=None)) == 18
    assert terminal.render_findings(many, width=200, limit=None)[0] == "findings:"


def test_refact_report_prints_the_matrix_and_its_markdown(report, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    path = reports.write_json(report, tmp_path / "report.json")
    assert cli.main(["report", str(path), "--matrix", "float32", "--markdown"]) == 0
    assert capsys.readouterr().out.splitlines() == terminal.markdown_matrix(report, "float32")
    assert cli.main(["report", str(path), "--matrix", "float32"]) == 0
    assert capsys.readouterr().out.splitlines() == terminal.render_matrix(report, "float32", 200) + [terminal.LEGEND]
    assert cli.main(["report", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == terminal.render_summary(report, 200)
    assert cli.main(["report", str(path), "--details"]) == 0
    assert capsys.readouterr().out.splitlines() == terminal.render_summary(report, 200, details=True)


def test_the_width_is_columns_else_the_terminals_else_that_of_a_log(monkeypatch):
    monkeypatch.setenv("COLUMNS", "61")
    assert terminal.terminal_width() == 61
    monkeypatch.delenv("COLUMNS")
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=1: os.terminal_size((93, 40)))
    assert terminal.terminal_width() == 93

    def not_a_terminal(fd=1):
        raise OSError(25, "Inappropriate ioctl for device")

    monkeypatch.setattr(os, "get_terminal_size", not_a_terminal)
    assert terminal.terminal_width() == terminal.NOT_A_TERMINAL_WIDTH == 160


def test_refact_report_usage_errors(report, tmp_path, capsys):
    path = reports.write_json(report, tmp_path / "report.json")
    assert cli.main(["report", str(path), "--matrix", "bfloat16"]) == 2
    assert capsys.readouterr().err == (f"refact report: --matrix bfloat16: {path} has no accuracy record "
                                       "in that format; it has float32, float64\n")
    assert cli.main(["report", str(path), "--markdown"]) == 2
    assert capsys.readouterr().err.startswith("refact report: --markdown needs --matrix FMT")
    assert cli.main(["report", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
