"""What ``refact conform`` prints at the end of a run: the backend line, the accuracy matrix,
the legend, the worst findings (every one with ``--details``) and the counts."""

import pathlib
import re

import pytest

from refact.conformance import cli
from refact.conformance.report import terminal

FAKES = pathlib.Path(__file__).parent.parent / "fakes"
BACKEND = "refact_test_backends:OffByThreeBackend"  # the oracle's sigmoid three steps up
RUN = ["conform", "--backend", BACKEND, "--function", "sigmoid,softplus", "--format", "float64",
       "--check", "accuracy", "--cases", "quick"]


@pytest.fixture(autouse=True)
def fakes_on_path(monkeypatch):
    # spawned workers receive the parent's sys.path, so the fake module is importable there
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.setenv("COLUMNS", "200")


def test_the_end_of_a_run(capsys):
    assert cli.main(RUN) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{BACKEND} - on cpu: 1 pass, 1 fail, 0 convention, 0 error, 0 skip"
    assert lines[2] == f"float64 accuracy  {BACKEND}"
    # three steps up is 2.5 to 3.5 ULP at most points, more where the step crosses a binade
    sigmoid = re.fullmatch(r"sigmoid +(\d+\.\d+) !", lines[3])
    assert sigmoid and 2.5 <= float(sigmoid.group(1)) <= 7.0, lines[3]
    assert re.fullmatch(r"softplus +0\.5", lines[4])
    assert lines[5] == terminal.LEGEND
    assert lines[7] == "findings:"
    assert re.fullmatch(rf"!  {re.escape(BACKEND)}  sigmoid  float64  accuracy  {sigmoid.group(1)} ULP  "
                        r"at \S+ -> \S+, truth \S+", lines[8]), lines[8]
    assert lines[9:] == ["", "summary: 1 pass, 1 fail, 0 convention, 0 error, 0 skip (0 critical, 1 major, 0 minor)"]


def test_details_lists_every_finding(capsys, monkeypatch):
    monkeypatch.setattr(terminal, "FINDINGS_SHOWN", 0)
    assert cli.main(RUN) == 1
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("worst findings (0 of 1):")
    assert lines[start + 1] == "... 1 more: --details lists every one, the JSON/HTML report has each point"
    assert cli.main(RUN + ["--details"]) == 1
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("findings:")
    assert lines[start + 1].startswith(f"!  {BACKEND}  sigmoid  float64  accuracy  ")


def test_quiet_prints_nothing(capsys):
    assert cli.main(RUN + ["--quiet"]) == 1
    assert capsys.readouterr().out == ""
