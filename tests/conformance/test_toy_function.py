"""A 16th function declared in one place, its catalog record, reaches every stage: the
case sets, the oracle, the checks, the properties, the records and the reports."""

import math
import pathlib
from fractions import Fraction

import pytest

from refact.conformance.cases.sets import cases_for, threshold_names
from refact.conformance.report import writers
from refact.conformance.run import checks
from refact.conformance.run.isolation import Worker
from refact.conformance.run.properties import properties_record
from refact.conformance.run.records import report_envelope
from refact.conformance.truth import catalog
from refact.conformance.truth.catalog import (
    ELEMENTWISE_BUDGETS, Function, Parameter, Property, SpecialValue, exact_mpf,
)
from refact.conformance.truth.oracle import truth_many

FAKES = pathlib.Path(__file__).parent / "fakes"
INF = math.inf


def _exp_exact(x):
    """exp is rational only at 0 (and has limits at the infinities)."""
    return {0.0: Fraction(1), INF: INF, -INF: Fraction(0)}.get(x)


TOY = Function(
    name="toy_exp", kind="elementwise", signature="toy_exp(x) -> same shape",
    parameters=(Parameter("x", "real"),), vector_output=False,
    description="exp(x), declared by a test", domain="all reals",
    definition=lambda ctx, x: ctx.exp(exact_mpf(ctx, x)), exact=_exp_exact,
    derivative=lambda ctx, x: ctx.exp(exact_mpf(ctx, x)), derivative_doc="exp(x)",
    specials=(SpecialValue((0.0,), Fraction(1)), SpecialValue((INF,), INF),
              SpecialValue((-INF,), Fraction(0)), SpecialValue((math.nan,), catalog.UNDEFINED)),
    properties=(Property("positive", "exp(x) >= 0", 0.0, check="range", low=0.0),
                Property("monotone", "x <= y implies exp(x) <= exp(y)", 0.0)),
    budgets=ELEMENTWISE_BUDGETS,
    thresholds=("exp_overflow", "exp_neg_overflow"),
)


@pytest.fixture()
def toy(monkeypatch):
    monkeypatch.setitem(catalog.FUNCTIONS, TOY.name, TOY)
    monkeypatch.syspath_prepend(str(FAKES))  # the spawned worker imports the toy backend
    return TOY


def test_the_catalog_knows_it_by_name(toy):
    assert "toy_exp" in catalog.NAMES and len(catalog.NAMES) == 16
    assert catalog.get_function("toy_exp") is toy


def test_the_case_sets_pick_it_up(toy):
    cases = cases_for("toy_exp", "float32", "quick", 0)
    sets = {name for name, _ in cases}
    assert {"special", "seed", "thresholds", "bits", "loguniform"} <= sets
    points = {p for _, p in cases}
    assert (INF,) in points and (-10000.0,) in points
    # exp overflows float32 from the smallest float32 above log(largest float32 + ulp/2)
    assert threshold_names("toy_exp") == ["exp_overflow", "exp_neg_overflow"]
    overflow = [p[0] for name, p in cases if name == "thresholds" and p[0] > 0]
    assert overflow and all(88.7 < x < 88.8 for x in overflow)


def test_the_checks_and_reports_pick_it_up(toy):
    worker = Worker("refact_toy_backend:ToyBackend", timeout=60)
    try:
        evaluator = checks.Evaluator(worker)
        results = []
        for fmt in ("float64", "float32"):
            cases = cases_for("toy_exp", fmt, "quick", 0)
            truths = truth_many("toy_exp", [p for _, p in cases], fmt)
            accuracy, result_format = checks.accuracy(evaluator, "toy", "toy_exp", fmt, cases,
                                                      truths, ())
            results += [accuracy, checks.special_values(evaluator, "toy", "toy_exp", fmt, ()),
                        checks.dtype("toy", "toy_exp", fmt, result_format),
                        properties_record(evaluator, "toy", "toy_exp", fmt, cases, ())]
    finally:
        worker.close()
    statuses = {(r["format"], r["check"]): r["status"] for r in results}
    assert set(statuses.values()) == {"pass"}, [(r["check"], r["message"]) for r in results]
    for r in results:
        if r["check"] == "accuracy":
            # numpy's exp is within its budget, which is the catalog record's
            assert r["points"] > 40 and r["correctly_rounded"] > 0.5
            assert r["max_ulp"] <= r["budget_ulp"] == toy.budgets[r["format"]]
    report = report_envelope(results, [{"name": "toy", "version": None, "device": "cpu",
                                        "available": True, "error": None}], 0)
    writers.validate(report)
    assert "toy\\_exp | float32 | accuracy | pass" in writers.render_markdown(report)
    assert "toy_exp" in writers.render_junit(report)
