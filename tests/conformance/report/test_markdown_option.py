"""refact conform --markdown writes the compact job summary; --markdown-full every record."""

import pytest

from refact.conformance import cli
from refact.conformance.cli import conform
from refact.conformance.report import writers as reports
from refact.conformance.run.records import ALL_CLASSES, report_envelope


def failing(index):
    return {"backend": "numpy", "function": "softmax", "format": "float32", "check": "accuracy", "status": "fail",
            "severity": ("critical", "major")[index % 2], "points": 100, "max_ulp": float(index), "p99_ulp": 1.0,
            "mean_ulp": 0.5, "correctly_rounded": 0.5, "budget_ulp": 4.0, "convention": None,
            "message": f"finding {index}", "classes": dict.fromkeys(ALL_CLASSES, 0),
            "worst": [{"input": [[float(index), 0.0]], "input_hex": [["a", "b"]], "output": [0.5, 0.5],
                       "expected": [1.0, 0.0], "ulp": float(index)}]}


@pytest.fixture
def canned_run(monkeypatch):
    report = report_envelope([failing(index) for index in range(30)],
                             [{"name": "numpy", "version": "2", "device": "cpu", "available": True, "error": None}])
    reports.validate(report)
    monkeypatch.setattr(conform, "run_conformance", lambda *args, **kwargs: report)
    return report


def test_markdown_is_compact_unless_markdown_full(canned_run, tmp_path):
    compact, full = tmp_path / "compact.md", tmp_path / "full.md"
    assert cli.main(["conform", "--quiet", "--markdown", str(compact)]) == 1
    assert cli.main(["conform", "--quiet", "--markdown", str(full), "--markdown-full"]) == 1
    assert compact.read_text(encoding="utf-8") == reports.render_markdown(canned_run, full=False)
    assert full.read_text(encoding="utf-8") == reports.render_markdown(canned_run, full=True)
    assert "## Top findings (20 of 30)" in compact.read_text(encoding="utf-8")
    assert "finding 29" not in compact.read_text(encoding="utf-8")  # messages are in the full report
    assert full.read_text(encoding="utf-8").count("\n### ") == 30
