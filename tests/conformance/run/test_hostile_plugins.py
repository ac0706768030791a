"""`refact conform` with hostile plugins installed (fakes/hostile: entry points that patch
numpy, exit, segfault or hang at import, lie about their results, print escape codes and
megabytes): each is recorded as an error, and the reports of every other backend are
written, valid, and the same as in a run without the plugins."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from refact.conformance.report import writers

HOSTILE = pathlib.Path(__file__).parent.parent / "fakes" / "hostile"
ARGUMENTS = ["--function", "sigmoid,softmax,log_sigmoid", "--format", "float64,float32",
             "--check", "accuracy,special_values,dtype", "--cases", "quick", "--timeout", "10",
             "--quiet"]
TIMING = ("seconds", "time", "created")


def _conform(tmp_path, backends, plugins, tag):
    env = dict(os.environ, REFACT_CACHE_DIR=str(tmp_path / "cache"))
    if plugins:
        env["PYTHONPATH"] = os.pathsep.join([str(HOSTILE), env.get("PYTHONPATH", "")])
    out = tmp_path / f"{tag}.json"
    done = subprocess.run([sys.executable, "-m", "refact.conformance.cli", "conform",
                           "--backend", ",".join(backends), *ARGUMENTS, "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    return done, out


def _records(report, backend):
    return [{k: v for k, v in r.items() if k not in TIMING}
            for r in report["results"] if r["backend"] == backend]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("hostile")
    plain, plain_json = _conform(tmp_path, ["numpy"], plugins=False, tag="plain")
    hostile, hostile_json = _conform(
        tmp_path, ["numpy", "liar", "printer", "patcher", "exiter", "segfaulter", "hanger"],
        plugins=True, tag="hostile")
    return plain, json.loads(plain_json.read_text()), hostile, hostile_json


def test_the_run_survives_and_writes_a_valid_report(runs):
    plain, _, hostile, hostile_json = runs
    assert plain.returncode in (0, 1), plain.stderr
    assert hostile.returncode == 1, hostile.stderr[-2000:]  # the hostile backends' errors
    text = hostile_json.read_text(encoding="utf-8")
    report = json.loads(text)
    writers.validate(report)
    assert "\ud800" not in text and "\x1b" not in text  # escaped, never raw


def test_other_backends_get_the_same_verdicts(runs):
    _, plain, _, hostile_json = runs
    hostile = json.loads(hostile_json.read_text())
    assert _records(hostile, "numpy") == _records(plain, "numpy")
    assert _records(plain, "numpy") and all(r["status"] != "error" for r in _records(plain, "numpy"))


def test_a_plugin_that_dies_or_hangs_at_import_is_an_error_entry(runs):
    _, _, _, hostile_json = runs
    entries = {e["name"]: e for e in json.loads(hostile_json.read_text())["backends"]}
    assert "exit code 3" in entries["exiter"]["error"]
    assert "exit code -11" in entries["segfaulter"]["error"]
    assert "did not answer within 10 s while starting" in entries["hanger"]["error"]
    assert not any(entries[name]["available"] for name in ("exiter", "segfaulter", "hanger"))


def test_a_lying_plugin_is_not_believed(runs):
    _, _, _, hostile_json = runs
    report = json.loads(hostile_json.read_text())
    liar = {(r["function"], r["format"], r["check"]): r for r in report["results"] if r["backend"] == "liar"}
    short = liar["softmax", "float64", "accuracy"]
    assert short["status"] == "error" and "softmax returned shape (1, 1) for an input of shape (1, 2)" in short["message"]
    assert liar["log_sigmoid", "float64", "accuracy"]["status"] == "error"
    assert "\\ud800" in liar["log_sigmoid", "float64", "accuracy"]["message"]
    entry = next(e for e in report["backends"] if e["name"] == "liar")
    assert entry["version"] == "1.0\\ud800\\x1b[31m"


def test_what_a_plugin_prints_stays_out_of_the_terminal(runs):
    _, _, hostile, hostile_json = runs
    assert "printer was here" not in hostile.stdout + hostile.stderr
    assert "\x1b[2J" not in hostile.stdout + hostile.stderr
    report = json.loads(hostile_json.read_text())
    printer = [r for r in report["results"] if r["backend"] == "printer"]
    assert printer and all("the backend printed: \\x1b[2J\\x1b[Hprinter was here" in r["message"]
                           for r in printer if r["function"] == "sigmoid" and r["check"] == "accuracy")
    assert all(len(r["message"]) < 1500 for r in printer)


def test_a_plugin_patching_numpy_changes_only_its_own_verdicts(runs):
    _, plain, _, hostile_json = runs
    report = json.loads(hostile_json.read_text())
    patched = {(r["function"], r["format"], r["check"]): r for r in report["results"]
               if r["backend"] == "patcher"}
    # its own sigmoid computes 1 / (1 + 0) = 1 everywhere: its records show it
    assert patched["sigmoid", "float64", "accuracy"]["status"] == "fail"
    assert _records(report, "numpy") == _records(plain, "numpy")
