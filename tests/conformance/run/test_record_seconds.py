"""Every record a backend's checks make carries its own seconds, which JUnit shows as the
testcase's time (a CI can see which checks are slow)."""

import xml.etree.ElementTree as ElementTree

from refact.conformance.report.junit import render_junit
from refact.conformance.run.runner import run_conformance


def test_each_record_has_its_seconds_and_junit_shows_them():
    report = run_conformance(["reference"], ["sigmoid", "softmax"], ["float64"],
                             ["accuracy", "special_values"], level="quick", jobs=1)
    made = [r for r in report["results"] if r["status"] != "skip"]
    assert made and all(r["seconds"] > 0 for r in made)
    cases = ElementTree.fromstring(render_junit(report)).iter("testcase")
    times = {(c.get("classname"), c.get("name")): float(c.get("time")) for c in cases}
    assert sum(times.values()) > 0
    assert all(t >= 0 for t in times.values())
