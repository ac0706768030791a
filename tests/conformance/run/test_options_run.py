"""Calls with options end to end: the runner carries each option case to the backend
and judges it against the oracle; a planted option flaw is flagged in its class and
under its option; an option a backend lacks is a skip naming it."""

import math
import pathlib

import pytest

from refact.conformance.report import writers as reports
from refact.conformance.run.checks import option_label, with_options
from refact.conformance.run.runner import run_conformance

FAKES = pathlib.Path(__file__).parent.parent / "fakes"
MODULE = "refact_option_fakes"


@pytest.fixture(autouse=True)
def fakes_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKES))  # spawned workers inherit sys.path


def _accuracy(report):
    (record,) = [r for r in report["results"] if r["check"] == "accuracy"]
    return record


def _by_option(record):
    return {sub["option"]: sub for sub in record["options"]}


def _run(backend, function="cross_entropy"):
    report = run_conformance([backend], [function], ["float64"], ["accuracy"], level="quick")
    reports.validate(report)  # the options field is in the contract
    return report


def test_the_reference_core_passes_every_option():
    for function in ("cross_entropy", "binary_cross_entropy_with_logits", "softmax", "logit"):
        record = _accuracy(_run("reference", function))
        assert record["status"] == "pass", record["message"]
        subs = _by_option(record)
        assert all(s["status"] == "pass" and s["calls"] > 0 for s in subs.values()), subs
        assert all(s["max_ulp"] <= 1.5 for s in subs.values())
    assert set(subs) == {"eps"} and subs["eps"]["values"][0] == 0.0 and subs["eps"]["values"][-1] == 0.5


def test_every_target_ignored_records_what_the_mean_gave():
    subs = _by_option(_accuracy(_run("reference")))
    assert subs["ignore_index"]["undefined"] == [
        {"call": "cross_entropy[ignore_index=-100, reduction=mean]", "output": math.nan}] or \
        [u["call"] for u in subs["ignore_index"]["undefined"]] == ["cross_entropy[ignore_index=-100, reduction=mean]"]
    assert all(u["output"] != u["output"] for u in subs["ignore_index"]["undefined"])


def test_nan_at_a_minus_inf_logit_without_target_mass_is_a_spurious_nan():
    record = _accuracy(_run(f"{MODULE}:ZeroMassNanBackend"))
    subs = _by_option(record)
    target = subs["target"]
    assert target["status"] == "fail" and target["severity"] == "critical"
    # the one row with a -inf logit, alone (reduction none) and inside the mean
    assert target["classes"]["spurious_nan"] == 2
    assert target["worst"][0]["options"]["target"] == "probability"
    assert target["worst"][0]["class"] == "spurious_nan"
    assert all(subs[name]["status"] == "pass" for name in ("weight", "ignore_index", "label_smoothing", "reduction"))
    # the record fails with it, naming the option
    assert record["status"] == "fail" and record["classes"]["spurious_nan"] >= 2
    assert "cross_entropy[target=(probability)]" in record["message"]


def test_smoothing_over_c_minus_one_is_an_ulp_failure_of_label_smoothing():
    subs = _by_option(_accuracy(_run(f"{MODULE}:SmoothingOverOthersBackend")))
    smoothing = subs["label_smoothing"]
    assert smoothing["status"] == "fail" and smoothing["max_ulp"] > 1e10
    assert not any(smoothing["classes"].values())
    assert smoothing["worst"][0]["options"]["label_smoothing"] in (0.1, 1.0)
    assert subs["target"]["status"] == "pass" and subs["reduction"]["status"] == "pass"


def test_an_option_the_backend_lacks_is_skipped_by_name():
    record = _accuracy(_run(f"{MODULE}:NoOptionsBackend"))
    subs = _by_option(record)
    assert {s["status"] for s in subs.values()} == {"skip"}
    name = f"{MODULE}:NoOptionsBackend"
    assert subs["label_smoothing"]["message"] == \
        f"{name} does not accept label_smoothing, reduction, weight for cross_entropy"
    assert subs["target"]["message"] == \
        f"{name} does not accept probability_target, reduction for cross_entropy"
    assert record["status"] == "pass"  # a skipped option is never a pass of that option, nor a failure


def test_labels_and_merging():
    assert option_label("cross_entropy", {"label_smoothing": 0.1, "reduction": "mean"}) == \
        "cross_entropy[label_smoothing=0.1, reduction=mean]"
    assert option_label("cross_entropy", {"weight": [0.5, 1.0]}) == "cross_entropy[weight=(0.5, 1)]"
    base = {"function": "softmax", "status": "pass", "severity": None, "max_ulp": 0.5, "message": "",
            "classes": {"spurious_nan": 0}}
    sub = {"option": "temperature", "values": [0.001], "status": "fail", "severity": "critical",
           "max_ulp": 4.5, "classes": {"spurious_nan": 3}, "message": "3 NaN"}
    merged = with_options(dict(base, classes=dict(base["classes"])), [sub])
    assert (merged["status"], merged["severity"], merged["max_ulp"], merged["classes"]["spurious_nan"]) == \
        ("fail", "critical", 4.5, 3)
    assert merged["message"] == "with options: softmax[temperature=(0.001)]: 3 NaN"
    assert with_options(dict(base), [])["status"] == "pass"
