"""Reports: JSON to the refact.report/1 schema, Markdown, JUnit XML, HTML; atomic writes."""

import copy
import json
import math
import re
import sys
import xml.etree.ElementTree as ET

import pytest

from refact.conformance.numbers.ruler import ALL_CLASSES
from refact.conformance.report import writers as reports
from refact.conformance.truth import store

HOSTILE = "a | b <tag> & \"quoted\" 'single' *star* _under_ [link](x) `tick`"
ANSI_MESSAGE = "RuntimeError: \x1b[31mboom\x1b[0m <tag> & | done"
LOGIT_TINY = math.log(1e-300)  # logit(1e-300) to double precision


def classes(**counts):
    return {name: counts.get(name, 0) for name in ALL_CLASSES}


def record(backend, function, fmt, check, status, **fields):
    base = {
        "backend": backend, "function": function, "format": fmt, "check": check, "status": status,
        "points": 1000, "max_ulp": 0.5, "p99_ulp": 0.5, "mean_ulp": 0.25, "correctly_rounded": 1.0,
        "budget_ulp": 4.0, "convention": None, "message": "", "classes": classes(), "worst": [],
    }
    if status in ("skip", "error"):
        base.update(points=0, max_ulp=None, p99_ulp=None, mean_ulp=None, correctly_rounded=None)
    base.update(fields)
    return base


def worst(inputs, output, expected, ulp):
    return {"input": inputs, "input_hex": [float.hex(value) for value in inputs],
            "output": output, "expected": expected, "ulp": ulp}


def sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def logit(p):
    if p == 0:
        return -math.inf
    if p == 1:
        return math.inf
    return math.log(p / (1 - p))


def make_report():
    xs = [-8 + 0.1 * step for step in range(161)]
    ps = [step / 100 for step in range(101)]
    series_x = [-750 + 0.15 * step for step in range(5000)]
    series_ulp = [0.1 + (step % 7) / 10 for step in range(5000)]
    series_ulp[1234] = 3.0e6      # one terrible point that downsampling must keep
    series_ulp[10] = math.nan     # undecided or non-finite errors are not drawn
    series_ulp[11] = None
    results = [
        record("torch", "sigmoid", "float32", "accuracy", "pass", max_ulp=1.8, p99_ulp=1.4, mean_ulp=0.3,
               correctly_rounded=0.97, within_1ulp=0.999, case_sets={"default": 800, "subnormal": 200},
               worst=[worst([-0.0014], 0.49965, 0.49965, 1.8)]),
        record("torch", "sigmoid", "float16", "accuracy", "fail", max_ulp=12.5, p99_ulp=3.0, mean_ulp=0.6,
               correctly_rounded=0.9999, message="max 12.5 ULP > budget 4 ULP",
               worst=[worst([-17.25], 0.0, 3.2e-08, 12.5), worst([-0.0], -0.0, 0.5, 1.0)]),
        record("torch", "softmax", "float32", "special_values", "fail", points=12, max_ulp=None,
               p99_ulp=None, mean_ulp=None, correctly_rounded=None, message="NaN for a row with +inf",
               classes=classes(spurious_nan=2, wrong_sign_zero=1),
               worst=[{"input": [[math.inf, 0.0]], "input_hex": [["inf", "0x0.0p+0"]],
                       "output": [math.nan, 0.0], "expected": [1.0, 0.0], "ulp": None},
                      {"input": [[-math.inf, -math.inf]], "input_hex": [["-inf", "-inf"]],
                       "output": [math.nan, math.nan], "expected": [math.nan, math.nan], "ulp": math.inf}]),
        record("torch", "log_sigmoid", "float32", "gradient", "convention", max_ulp=1.0e6, p99_ulp=2.0,
               mean_ulp=0.7, correctly_rounded=0.8, message="inf",
               convention={"name": "clamp | eps", "summary": HOSTILE,
                           "reference": "https://pytorch.org/docs/stable/generated/torch.nn.LogSigmoid.html",
                           "points": 3, "max_ulp": 1.0e6}),
        record("torch", "cross_entropy", "float32", "properties", "error", message=ANSI_MESSAGE),
        record("numpy", "sigmoid", "float64", "accuracy", "pass", max_ulp=0.5, budget_ulp=math.inf),
        record("numpy", "logit", "float64", "accuracy", "fail", max_ulp=3.0, p99_ulp=1.0, budget_ulp=2.0,
               message=HOSTILE, correctly_rounded=0.5,
               worst=[worst([1e-300], LOGIT_TINY + 3 * math.ulp(LOGIT_TINY), LOGIT_TINY, 3.0)]),
        record("numpy", "softmax", "float16", "dtype", "skip", message="float16 not supported"),
        record("jax", "sigmoid", "float32", "accuracy", "skip", message="jax is not installed"),
    ]
    summary = {status: sum(1 for result in results if result["status"] == status)
               for status in ("pass", "fail", "convention", "error", "skip")}
    return {
        "schema": "refact.report/1", "refact_version": "0.1.0", "created": "2026-05-09T07:35:25Z",
        "environment": {"python": "3.11.7", "platform": "Linux-x86_64", "cpu": HOSTILE, "seed": 0},
        "backends": [
            {"name": "torch", "version": "2.13.0", "device": "cpu", "available": True, "error": None},
            {"name": "numpy", "version": "2.1.0", "device": "cpu", "available": True, "error": None},
            {"name": "jax", "version": None, "device": None, "available": False,
             "error": "No module named 'jax' <&|>"},
        ],
        "results": results,
        "summary": summary,
        "curves": {
            "sigmoid": {"x": xs, "y": [sigmoid(x) for x in xs], "dy": [sigmoid(x) * (1 - sigmoid(x)) for x in xs]},
            "logit": {"x": ps, "y": [logit(p) for p in ps]},
        },
        "series": [
            {"backend": "torch", "function": "sigmoid", "format": "float32", "x": series_x, "ulp": series_ulp},
            {"backend": "numpy", "function": "logit", "format": "float64", "x": ps[1:-1],
             "ulp": [0.5] * 99, "budget_ulp": 2.0},
        ],
    }


@pytest.fixture
def report():
    return make_report()


def strict_json(text):
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=reject)


# --------------------------------------------------------------------------- JSON and schema

def test_report_validates_against_the_shipped_schema(report):
    reports.validate(report)


def test_json_is_strict_and_round_trips_non_finite_values(report, tmp_path):
    path = reports.write_json(report, tmp_path / "report.json")
    data = strict_json(path.read_text(encoding="utf-8"))
    assert data["results"][2]["worst"][1]["input"] == [["-inf", "-inf"]]
    loaded = reports.load_report(path)
    assert reports.to_json_text(loaded) == reports.to_json_text(report)
    reports.validate(loaded)
    softmax = loaded["results"][2]["worst"]
    assert softmax[0]["input"] == [[math.inf, 0.0]] and math.isnan(softmax[0]["output"][0])
    assert softmax[1]["input"] == [[-math.inf, -math.inf]] and softmax[1]["ulp"] == math.inf
    assert math.copysign(1.0, loaded["results"][1]["worst"][1]["output"]) == -1.0  # -0.0 keeps its sign
    assert loaded["results"][3]["message"] == "inf"  # a string that merely reads "inf" stays a string
    assert loaded["results"][5]["budget_ulp"] == math.inf
    assert math.isnan(loaded["series"][0]["ulp"][10]) and loaded["series"][0]["ulp"][11] is None


def test_json_keeps_long_number_lists_on_one_line(report):
    text = reports.to_json_text(report)
    assert len(text.splitlines()) < 400


def test_numpy_values_are_written_as_plain_numbers(report):
    numpy = pytest.importorskip("numpy")
    report["results"][0]["max_ulp"] = numpy.float32(1.5)
    report["results"][0]["points"] = numpy.int64(1000)
    report["results"][0]["worst"][0]["output"] = numpy.array([numpy.inf, 0.25])
    data = strict_json(reports.to_json_text(report))
    assert data["results"][0]["max_ulp"] == 1.5
    assert data["results"][0]["worst"][0]["output"] == ["inf", 0.25]
    reports.validate(report)


def break_report(report, mutation):
    broken = copy.deepcopy(report)
    mutation(broken)
    return broken


@pytest.mark.parametrize("mutation", [
    lambda r: r.pop("summary"),
    lambda r: r["results"][0].pop("classes"),
    lambda r: r["results"][0].pop("max_ulp"),
    lambda r: r["environment"].pop("seed"),
    lambda r: r["backends"][0].pop("available"),
    lambda r: r["results"][0].update(status="great"),
    lambda r: r["results"][0].update(check="speed"),
    lambda r: r["results"][0]["classes"].update(spurious_nan=-1),
    lambda r: r["results"][0]["worst"][0].update(input=["infinity"]),
    lambda r: r["results"][0].update(correctly_rounded=1.5),
    lambda r: r["results"][3].update(convention={"name": "clamp"}),
    lambda r: r.update(schema="refact.report/2"),
    lambda r: r.update(created="yesterday"),
], ids=["no summary", "no classes", "no max_ulp", "no seed", "no available", "bad status", "bad check",
        "negative count", "bad non-finite spelling", "fraction above 1", "convention incomplete",
        "other schema", "created not ISO"])
def test_invalid_reports_fail_validation(report, mutation):
    with pytest.raises(reports.InvalidReport, match="does not follow refact.report/1"):
        reports.validate(break_report(report, mutation))


def test_fields_may_be_added(report):
    report["results"][0]["seconds"] = 1.5
    report["environment"]["numpy"] = "2.1.0"
    report["extra"] = {"anything": [1, 2]}
    reports.validate(report)


def test_validate_says_clearly_when_jsonschema_is_missing(report, monkeypatch):
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # makes "import jsonschema" fail
    with pytest.raises(ImportError, match="jsonschema"):
        reports.validate(report)


# --------------------------------------------------------------------------- Markdown

def unescaped_pipes(line):
    return len(re.findall(r"(?<!\\)\|", line))


def markdown_sections(text):
    return {block.split("\n", 1)[0]: block for block in re.split(r"^## ", text, flags=re.M)[1:]}


def test_full_markdown_has_a_table_per_backend_with_findings_first(report):
    text = reports.render_markdown(report, full=True)
    sections = markdown_sections(text)
    assert {"torch 2.13.0 on cpu", "numpy 2.1.0 on cpu", "jax"} <= set(sections)
    assert "**2 pass, 3 fail, 1 convention, 1 error, 2 skip**" in text
    torch_rows = [line for line in sections["torch 2.13.0 on cpu"].splitlines() if line.startswith("| ")]
    statuses = [row.split(" | ")[3] for row in torch_rows[1:]]
    # fails by ULP (12.5 before a record without one), then the error, the convention, the pass
    assert statuses == ["**FAIL**", "**FAIL**", "**ERROR**", "convention", "pass"]
    assert torch_rows[2].split(" | ")[:3] == ["| softmax", "float32", "special\\_values"]
    assert "jax not available: No module named 'jax' &lt;&amp;\\|>" in text


def test_markdown_table_rows_keep_their_columns_whatever_the_strings(report):
    text = reports.render_markdown(report, full=True)
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table_lines) > 10
    widths = {len(reports.TABLE_HEADER), len(reports.WORST_HEADER), 10,  # records, worst points, counts
              len({"torch", "numpy"}) + 1, 1 + 1}                           # matrices: torch and numpy, jax
    for line in table_lines:
        assert unescaped_pipes(line) - 1 in widths, line
    assert "<tag>" not in text and "&lt;tag>" in text
    assert "clamp \\| eps" in text


def test_full_markdown_details_every_finding_once_with_hex_inputs_and_classes(report):
    text = reports.render_markdown(report, full=True)
    findings = text.split("## Findings: every fail, error and convention, worst first", 1)[1]
    assert findings.count("\n### ") == 5  # three fails, one error, one convention
    assert float.hex(1e-300) in findings
    softmax = findings.split("### torch / softmax / float32 / special\\_values: FAIL", 1)[1].split("###")[0]
    assert softmax.count("spurious\\_nan 2, wrong\\_sign\\_zero 1") == 1
    assert "measured 1e+06 ULP from the truth (<https://pytorch.org/docs/stable/generated/torch.nn.LogSigmoid.html>)" in text


def many_findings_report(count=60):
    report = make_report()
    report["results"] = []
    for index in range(count):
        severity = ("critical", "major", "minor")[index % 3]
        report["results"].append(record(f"backend{index % 7}", "softmax", ("float32", "float16")[index % 2],
                                        "accuracy", "fail", severity=severity, max_ulp=float(index),
                                        worst=[worst([float(index)] * 100, 0.0, 1.0, float(index))]))
    report["results"] += [record(f"backend{index % 7}", "sigmoid", "float32", "accuracy", "pass")
                          for index in range(7)]
    report["backends"] = [{"name": f"backend{index}", "version": "1", "device": "cpu", "available": True,
                           "error": None} for index in range(7)]
    report["series"] = []
    report["summary"] = {status: sum(r["status"] == status for r in report["results"])
                         for status in ("pass", "fail", "convention", "error", "skip")}
    reports.validate(report)
    return report


def test_compact_markdown_is_the_matrix_and_the_top_findings_by_severity_then_ulp():
    report = many_findings_report()
    text = reports.render_markdown(report, full=False)
    assert len(text.encode("utf-8")) < 64 * 1024
    assert "## Top findings (20 of 60)" in text
    rows = text.split("## Top findings (20 of 60)", 1)[1].splitlines()[4:24]
    # 20 critical ones (index 0, 3, ... 57), largest ULP first
    assert [row.split(" | ")[0] for row in rows] == ["| critical"] * 20
    assert [float(row.split(" | ")[5]) for row in rows] == [float(index) for index in range(57, -1, -3)]
    assert "47 more records, 40 of them findings" in text
    matrix = text.split("## Overview", 1)[1].split("## Top findings", 1)[0]
    assert "| float32 | backend0 | backend1 |" in matrix
    assert "| sigmoid | 0.5 | 0.5 |" in matrix and "| softmax | **0** |" in matrix
    assert "... 96 more ..." in rows[0]  # a row of 100 values is shortened to 2 + 2
    assert "float32 | accuracy | pass" not in text  # no pass record is listed


def test_compact_markdown_of_a_clean_run_says_there_is_no_finding(report):
    report["results"] = [r for r in report["results"] if r["status"] in ("pass", "skip")]
    text = reports.render_markdown(report, full=False)
    assert "## Top findings\n\nNo fail, error or convention.\n" in text
    assert "4 more records, 0 of them findings" in text


def test_compact_markdown_of_the_fixture_lists_every_finding(report):
    text = reports.render_markdown(report, full=False)
    assert "## Top findings (5 of 5)" in text
    assert "| torch | sigmoid | float16 | accuracy | 12.5 |" in text
    assert "4 more records, 0 of them findings" in text


def test_escape_markdown_neutralises_table_and_html_syntax():
    assert reports.escape_markdown("a|b\nc <d> & *e*") == "a\\|b c &lt;d> &amp; \\*e\\*"


# --------------------------------------------------------------------------- JUnit

def test_junit_parses_and_counts(report):
    root = ET.fromstring(reports.render_junit(report).encode("utf-8"))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("9", "3", "1", "2")
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert set(suites) == {"refact.torch", "refact.numpy", "refact.jax"}
    torch = suites["refact.torch"]
    counts = (torch.get("tests"), torch.get("failures"), torch.get("errors"), torch.get("skipped"))
    assert counts == ("5", "2", "1", "0")
    assert len(root.findall(".//testcase")) == 9
    assert len(root.findall(".//failure")) == 3 and len(root.findall(".//error")) == 1
    assert len(root.findall(".//skipped")) == 2


def test_junit_testcases_say_what_failed(report):
    root = ET.fromstring(reports.render_junit(report).encode("utf-8"))
    cases = {(case.get("classname"), case.get("name")): case for case in root.iter("testcase")}
    logit = cases[("refact.numpy.logit", "float64.accuracy")].find("failure")
    assert float.hex(1e-300) in logit.text and float.hex(1e-300) in logit.get("message")
    assert f"expected {LOGIT_TINY!r}, 3 ULP" in logit.text
    assert HOSTILE in logit.get("message")
    convention = cases[("refact.torch.log_sigmoid", "float32.gradient")]
    assert convention.find("failure") is None and "clamp | eps" in convention.find("system-out").text
    error = cases[("refact.torch.cross_entropy", "float32.properties")].find("error")
    assert "\\x1b[31mboom" in error.get("message")  # the control character spelled out, the file still parses
    assert cases[("refact.torch.sigmoid", "float32.accuracy")].find("*") is None


def test_junit_has_a_time_on_every_testcase_and_suite(report):
    report["results"][0]["seconds"] = 1.25
    report["results"][1]["seconds"] = 0.5
    report["results"][6]["seconds"] = 2.0
    root = ET.fromstring(reports.render_junit(report).encode("utf-8"))
    times = {(case.get("classname"), case.get("name")): case.get("time") for case in root.iter("testcase")}
    assert times[("refact.torch.sigmoid", "float32.accuracy")] == "1.250"
    assert times[("refact.numpy.softmax", "float16.dtype")] == "0.000"  # not measured: 0
    assert all(time is not None for time in times.values())
    suites = {suite.get("name"): suite.get("time") for suite in root.iter("testsuite")}
    assert suites == {"refact.torch": "1.750", "refact.numpy": "2.000", "refact.jax": "0.000"}
    assert root.get("time") == "3.750"


def test_junit_failure_message_names_severity_and_the_class_of_the_worst_point(report):
    report["results"][2]["severity"] = "critical"
    root = ET.fromstring(reports.render_junit(report).encode("utf-8"))
    case = next(case for case in root.iter("testcase") if case.get("classname") == "refact.torch.softmax")
    message = case.find("failure").get("message")
    assert message.startswith("critical; NaN for a row with +inf; worst: input [[inf, 0x0.0p+0]]")
    assert case.find("failure").text.count("spurious_nan 2") == 1


# --------------------------------------------------------------------------- HTML

def test_html_is_one_self_contained_file_with_plots(report, tmp_path):
    path = reports.write_html(report, tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    assert list(tmp_path.iterdir()) == [path]
    # two curves and the failing numpy logit's error plot (all its points in one view);
    # torch's sigmoid in float32 passes: its series is not drawn
    assert text.startswith("<!DOCTYPE html>") and text.count("<svg") == 3
    assert "<script" not in text.lower() and "<link" not in text.lower() and "url(" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text.replace(
        'href="https://pytorch.org/docs/stable/generated/torch.nn.LogSigmoid.html"', ""), flags=re.I)
    assert len(text) < 100_000


def test_html_escapes_every_report_string(report):
    report["results"][0]["function"] = "<script>alert(1)</script>"
    report["series"][0]["function"] = "<script>alert(1)</script>"
    text = reports.render_html(report)
    assert "<script" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<tag>" not in text and "&lt;tag&gt;" in text
    assert "&quot;quoted&quot;" in text


def headings(text):
    return re.findall(r'<h2 id="([^"]+)">', text)


def test_html_opens_on_the_counts_contents_and_an_overview_matrix_per_format(report):
    text = reports.render_html(report)
    assert text.index("<table") < text.index("<nav>") < text.index('<h2 id="overview">')
    assert headings(text) == ["overview", "b-torch", "b-numpy", "b-jax", "functions"]
    overview = text.split('<h2 id="overview">', 1)[1].split('<h2 id="b-torch">', 1)[0]
    assert re.findall(r'<h3 id="(overview-[^"]+)">', overview) == [
        "overview-float64", "overview-float32", "overview-float16"]
    float16 = overview.split('id="overview-float16"', 1)[1]
    # torch's sigmoid fails in float16 (12.5 ULP), numpy has no softmax in float16
    assert '<td class="fail" title="accuracy: fail 12.5 ULP"><a href="#r-torch-sigmoid-float16">12.5</a></td>' in float16
    assert '<a href="#r-numpy-softmax-float16">—</a>' in float16
    float32 = overview.split('id="overview-float32"', 1)[1].split('id="overview-float16"', 1)[0]
    # softmax's special values fail with classes (S), log_sigmoid's gradient is a convention
    assert '<a href="#r-torch-softmax-float32">S</a>' in float32
    assert '<td class="convention conv"' in float32 and ">(conv.)</a>" in float32


def test_every_html_link_has_its_anchor_and_every_anchor_is_unique(report):
    text = reports.render_html(report)
    ids = re.findall(r' id="([^"]+)"', text)
    assert len(ids) == len(set(ids))
    targets = set(re.findall(r'href="#([^"]+)"', text))
    assert targets <= set(ids)
    # an anchor per backend and per backend/function/format
    assert {"b-torch", "b-numpy", "b-jax", "r-torch-sigmoid-float32", "r-numpy-softmax-float16",
            "r-jax-sigmoid-float32", "r-torch-cross_entropy-float32"} <= set(ids)


def test_html_lists_findings_first_with_classes_and_folds_passes_and_skips(report):
    torch = reports.render_html(report).split('<h2 id="b-torch">', 1)[1].split('<h2 id="b-numpy">', 1)[0]
    findings, folded = torch.split("<details>", 1)
    rows = re.findall(r"<tr class=\"([a-z]+)\"><td>([a-z_]+)<td>([a-z0-9]+)<td>([a-z_]+)", findings)
    assert rows == [("fail", "sigmoid", "float16", "accuracy"), ("fail", "softmax", "float32", "special_values"),
                    ("error", "cross_entropy", "float32", "properties"),
                    ("convention", "log_sigmoid", "float32", "gradient")]
    assert "<td>spurious_nan 2, wrong_sign_zero 1<td" in findings  # the class column
    assert folded.startswith("<summary>1 pass, 0 skip (in 0 rows)</summary>")
    assert 'id="r-torch-sigmoid-float32"' in folded.split("</details>", 1)[0]
    numpy = reports.render_html(report).split('<h2 id="b-numpy">', 1)[1].split('<h2 id="b-jax">', 1)[0]
    assert "<summary>1 pass, 1 skip (in 1 rows)</summary>" in numpy


def test_a_message_naming_the_classes_in_its_own_digits_is_not_repeated(report):
    report["results"][2]["classes"]["spurious_nan"] = 2000
    report["results"][2]["message"] = "failure classes: spurious_nan 2,000, wrong_sign_zero 1"
    text = reports.render_html(report)
    softmax = text.split('<section id="r-torch-softmax-float32">', 1)[1].split("</section>", 1)[0]
    assert softmax.count("spurious_nan 2") == 1 and "failure classes: spurious_nan 2,000" in softmax
    root = ET.fromstring(reports.render_junit(report).encode("utf-8"))
    case = next(case for case in root.iter("testcase") if case.get("classname") == "refact.torch.softmax")
    assert case.find("failure").text.count("spurious_nan 2") == 1


def test_html_details_show_worst_points_conventions_and_classes_once(report):
    text = reports.render_html(report)
    softmax = text.split('<section id="r-torch-softmax-float32">', 1)[1].split("</section>", 1)[0]
    assert softmax.count("spurious_nan 2, wrong_sign_zero 1") == 1  # once, in the message
    assert "<td>[[inf, 0.0]]<td>[[inf, 0x0.0p+0]]<td>[nan, 0.0]<td>[1.0, 0.0]" in softmax
    logit = text.split('<section id="r-numpy-logit-float64">', 1)[1].split("</section>", 1)[0]
    assert f"<td>[1e-300]<td>[{float.hex(1e-300)}]" in logit and '<td>3<td>' in logit
    convention = text.split('<section id="r-torch-log_sigmoid-float32">', 1)[1].split("</section>", 1)[0]
    assert ("covers 3 points, measured 1e+06 ULP from the truth (documented at <a href=\""
            "https://pytorch.org/docs/stable/generated/torch.nn.LogSigmoid.html\">") in convention
    assert "<li>accuracy: pass" not in convention


def failing_series_report():
    """torch's sigmoid in float32 fails: NaN at x = -800 (named by a worst point) and a class point
    at -700 the series does not name (the record counted a NaN and a flush),
    ULP errors over [-20, 20], inputs out to +-3e38: 87 points."""
    report = make_report()
    xs = [-3e38, -1e30, -800.0, -700.0] + [-20 + step * 0.5 for step in range(81)] + [1e10, 3e38]
    ulps = [0.0, 0.0, None, None] + [0.25 + (step % 9) / 4 for step in range(81)] + [0.0, 0.0]
    report["series"] = [{"backend": "torch", "function": "sigmoid", "format": "float32", "x": xs, "ulp": ulps,
                         "budget_ulp": 2.0}]
    report["results"][0].update(status="fail", severity="critical", classes=classes(spurious_nan=1, flush_to_zero=1),
                                worst=[{**worst([-800.0], math.nan, 0.0, math.inf), "class": "spurious_nan"}])
    report["summary"].update({"pass": 1, "fail": 4})
    reports.validate(report)
    return report


def plot_of(text, title):
    return next(plot for plot in re.findall(r"<svg.*?</svg>", text, flags=re.S) if f"<title>{title}" in plot)


def test_error_plots_draw_every_point_mark_classes_and_show_the_active_region_and_the_full_range():
    text = reports.render_html(failing_series_report())
    active = plot_of(text, "torch / sigmoid / float32: active region")
    full = plot_of(text, "full range")
    # every ordinary point of the active region is a dot of its own (81 inputs 0.5 apart)
    ordinary = re.search(r'<path transform="scale\(2\)" d="(M0 0[^"]*)" stroke="#1f5fbf"', active).group(1)
    assert ordinary.count("h0") == 81
    # the two class points are at the top edge, in their class colour, named in the legend
    marks = re.search(r'<path transform="scale\(2\)" d="(M0 0[^"]*)" stroke="#d62728"', active).group(1)
    assert marks.count("h0") == 1 and ">spurious_nan (1)<" in active
    assert ">spurious_nan or flush_to_zero (1)<" in active  # one of the record's classes
    # the active region is linear around the failures and the errors: -800 .. 20, not +-3e38
    assert ">-800<" in active and ">0<" in active and "e38" not in active
    assert "e38" in full and ">0<" in full
    assert "87 judged points drawn (83 in the active region" in text
    assert "budget 2" in active


def test_a_row_function_with_a_series_is_plotted_against_the_series_x_label(report):
    # records of rows carry no plot series today; a series naming its x (row spread) is drawn
    report["results"][2].update(check="accuracy", max_ulp=3.0)
    report["series"].append({"backend": "torch", "function": "softmax", "format": "float32",
                             "x": [0.0, 1.0, 10.0, 100.0, 1000.0], "ulp": [0.5, 0.5, 1.0, 3.0, None],
                             "x_label": "row spread (max - min)"})
    text = reports.render_html(report)
    softmax = text.split('<section id="r-torch-softmax-float32">', 1)[1].split("</section>", 1)[0]
    assert softmax.count("<svg") == 1 and ">row spread (max - min)<" in softmax
    assert ">spurious_nan or wrong_sign_zero (1)<" in softmax


def test_active_range_falls_back_to_the_central_inputs_when_every_point_is_correctly_rounded():
    from refact.conformance.report import svg

    points = [svg.ErrorPoint(float(x), 0.5, "") for x in range(-1000, 1001)] + [svg.ErrorPoint(1e300, 0.0, "")]
    low, high = svg.active_range(points)
    assert -1100 <= low < -1000 and 1000 < high <= 1100  # the point at 1e300 is left to the full range


def test_symlog_axis_spreads_tiny_and_huge_inputs_and_keeps_zero():
    from refact.conformance.report import svg

    scale = svg.choose_scale([-3e38, -1e-30, 0.0, 1e-30, 3e38])
    assert scale.symlog and scale.unit == 1e-30
    assert scale.fraction(0.0) == pytest.approx(0.5)
    # 1e-30 sits a visible step from 0, not inside one spike with it
    assert scale.fraction(1e-30) - scale.fraction(0.0) > 0.002
    assert 0 < scale.fraction(1.0) < scale.fraction(1e20) < 1
    assert svg.choose_scale([-20.0, 20.0]).symlog is False


def test_curves_with_gaps_and_many_points_are_drawn(report):
    xs = [step / 1000 for step in range(5001)]
    report["curves"] = {"logit": {"x": xs, "y": [logit(x) if 0 < x < 1 else None for x in xs],
                                  "dy": [1 / (x * (1 - x)) if 0 < x < 1 else math.inf for x in xs]}}
    report["series"] = []
    reports.validate(report)
    (plot,) = re.findall(r"<svg.*?</svg>", reports.render_html(report), flags=re.S)
    assert plot.count("L") <= 2 * svg_module().MAX_CURVE_POINTS and "nan" not in plot and "inf" not in plot


def svg_module():
    from refact.conformance.report import svg

    return svg


def test_downsample_keeps_the_largest_values():
    points = [(float(index), float(index % 10)) for index in range(10_000)]
    points[5_555] = (5_555.0, 1e9)
    kept = reports.downsample(points, limit=100, keep_largest_y=5)
    assert len(kept) <= 100 and (5_555.0, 1e9) in kept and kept == sorted(kept)


def test_variants_are_columns_of_their_own_with_their_options_in_the_detail(report):
    options = [{"option": "label_smoothing", "values": [0.0, 0.1], "status": "fail", "severity": "major",
                "points": 40, "calls": 2, "max_ulp": 30.0, "message": "30 ULP at 0.1"}]
    point = {**worst([1.0], 2.0, 1.0, 30.0), "options": {"label_smoothing": 0.1}}
    report["results"].append(record("torch", "sigmoid", "float16", "accuracy", "fail", variant="compile",
                                    options=options, max_ulp=30.0, severity="major", worst=[point]))
    text = reports.render_html(report)
    assert '<h2 id="b-torch_compile_">torch[compile]' in text
    assert '<a href="#r-torch_compile_-sigmoid-float16">30</a>' in text
    assert ("<li>variant compile</li><li>option label_smoothing (0.0, 0.1): fail (major), max 30 ULP over 40 "
            "points in 2 calls; 30 ULP at 0.1</li>") in text
    assert "<td>with label_smoothing=0.1</tbody>" in text
    markdown = reports.render_markdown(report, full=False)
    assert "| float16 | torch | numpy | torch\\[compile\\] |" in markdown


# --------------------------------------------------------------------------- writing

def test_write_reports_writes_every_requested_format(report, tmp_path):
    written = reports.write_reports(report, json=tmp_path / "out" / "r.json", markdown=tmp_path / "r.md",
                                    junit=tmp_path / "r.xml", html=tmp_path / "r.html")
    assert set(written) == {"json", "markdown", "junit", "html"}
    assert all(path.stat().st_size > 0 for path in written.values())
    assert reports.write_reports(report) == {}


def leftovers(directory, keep):
    return [path.name for path in directory.iterdir() if path.name != keep]


def test_a_failing_serialisation_leaves_the_previous_file_intact(report, tmp_path):
    path = reports.write_json(report, tmp_path / "report.json")
    before = path.read_bytes()
    report["results"][0]["max_ulp"] = object()
    with pytest.raises(TypeError):
        reports.write_reports(report, json=path, html=tmp_path / "report.html")
    assert path.read_bytes() == before and leftovers(tmp_path, "report.json") == []


def test_a_failure_in_the_middle_of_writing_leaves_the_previous_file_intact(report, tmp_path, monkeypatch):
    path = reports.write_json(report, tmp_path / "report.json")
    before = path.read_bytes()

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", disk_full)  # the store writes every file whole
    with pytest.raises(OSError):
        reports.write_markdown(report, path)
    assert path.read_bytes() == before and leftovers(tmp_path, "report.json") == []
