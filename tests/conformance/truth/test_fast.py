"""The extended-precision candidates: their stated bound against mpmath and their
decisions against the oracle's (their use as a second formula: test_arrays.py)."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from refact.conformance.numbers.formats import get_format
from refact.conformance.truth import fast
from refact.conformance.truth.catalog import FAST_TRUTHS, get_function
from refact.conformance.truth.oracle import evaluate, truth_many

pytestmark = pytest.mark.skipif(not fast.EXTENDED, reason="long double is float64 on this platform")

EXTENDED = sorted(fast.TEXTBOOK_FORMULAS)
# inputs where each formula changes branch, cancels in a naive form, or leaves float64
EDGES = {
    "sigmoid": [-11355.0, -745.2, -745.0, -708.4, -37.0, -1e-300, 0.0, 5e-324, 1e-17, 36.7, 37.5, 800.0],
    "sigmoid_grad": [-800.0, -37.0, -1e-20, 0.0, 1e-8, 1.5e-8, 20.0, 708.4, 745.1, 11000.0],
    "log_sigmoid": [-800.0, -33.3, -1e-300, 0.0, 1e-300, 33.3, 708.4, 745.1, 746.0, 1e300],
    "softplus": [-1e300, -746.0, -745.1, -708.4, -33.3, 0.0, 1e-300, 33.3, 1e300],
    "logit": [5e-324, 1e-300, 0.1, 0.2499999999999999, 0.25, 0.5 - 2 ** -54, 0.5, 0.5 + 2 ** -53,
              0.75, 1 - 2 ** -53],
    "hard_sigmoid": [-3.0, -2.9999999999999996, -1e-300, 0.0, 1e-300, 2.9999999999999996, 3.0],
}


TINY = mpmath.ldexp(1, -16382)


def _to_mpf(value):
    """A long double as an mpf, exactly (through its float64 head and tail, scaled so
    neither underflows)."""
    mantissa, exponent = np.frexp(value)
    head = float(mantissa)
    tail = float(mantissa - np.longdouble(head))
    return mpmath.ldexp(mpmath.mpf(head) + mpmath.mpf(tail), int(exponent))


def _relative_error(function, x):
    t = fast.extended_candidate(FAST_TRUTHS[function], np.array([x]))[0]
    known = get_function(function).exact_values((x,))
    with mpmath.workprec(400):
        truth = (mpmath.mpf(known[0].numerator) / known[0].denominator
                 if known is not None and hasattr(known[0], "numerator") else evaluate(function, (x,), 400))
        if known is not None and not hasattr(known[0], "numerator"):
            return 0.0 if (float(t) == float(known[0]) or (t != t and known[0] != known[0])) else math.inf
        if truth == 0:
            return 0.0 if t == 0 else math.inf
        if abs(truth) < TINY:  # below long double's normal range: a zero in every format
            return 0.0 if abs(_to_mpf(t)) < TINY else math.inf
        return float(abs((_to_mpf(t) - truth) / truth))


@pytest.mark.parametrize("function", EXTENDED)
def test_the_stated_bound_holds_at_the_edges(function):
    for x in EDGES[function]:
        assert _relative_error(function, x) <= fast.EXTENDED_RELATIVE_BOUND, (function, x)


@pytest.mark.parametrize("function", EXTENDED)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_stated_bound_holds_on_random_inputs(function, data):
    if get_function(function).parameters[0].role == "probability":
        x = data.draw(st.floats(0.0, 1.0, exclude_min=True, exclude_max=True))
    else:
        x = data.draw(st.one_of(st.floats(-60.0, 60.0), st.floats(-1000.0, 1000.0),
                                st.floats(allow_nan=False, allow_infinity=False)))
    assert _relative_error(function, x) <= fast.EXTENDED_RELATIVE_BOUND, (function, x)


@pytest.mark.parametrize("function", EXTENDED)
def test_every_decision_in_float64_is_the_oracles(function):
    rng = np.random.default_rng(7)
    if get_function(function).parameters[0].role == "probability":
        x = np.concatenate([rng.uniform(0, 1, 400), 0.5 + rng.uniform(-1e-9, 1e-9, 100),
                            1 - 10 ** rng.uniform(-16, -1, 100), 10 ** rng.uniform(-300, -1, 100)])
    else:
        x = np.concatenate([rng.uniform(-40, 40, 400), rng.uniform(-800, 800, 200),
                            np.sign(rng.uniform(-1, 1, 100)) * 10 ** rng.uniform(-300, 2, 100)])
    x = np.concatenate([x, EDGES[function]])
    decision = fast.decide(FAST_TRUTHS[function], x, "float64")
    truths = truth_many(function, [(v,) for v in x.tolist()], "float64")
    decided = np.flatnonzero(decision.decided)
    assert len(decided) > 0.9 * len(x)
    for i in decided.tolist():
        oracle = truths[i].rounded
        mine = float(decision.rounded[i])
        assert mine == oracle or (mine == 0 == oracle), (function, x[i], mine, oracle)
        if oracle and oracle == oracle and math.isfinite(oracle) and decision.binade_known[i]:
            # the units carry the truth: at most the bound away from the oracle's
            exact = truths[i].exact
            units = mpmath.mpf(float(decision.units[i])) + mpmath.mpf(float(decision.units_lo[i]))
            scaled = mpmath.ldexp(mpmath.mpf(exact), -int(decision.ulp_exponent[i]))
            assert abs(units - scaled) <= abs(scaled) * 2 * fast.EXTENDED_RELATIVE_BOUND, (function, x[i])


def test_float64_cannot_be_decided_without_a_formula():
    with pytest.raises(ValueError, match="ndtr"):
        fast.decide(FAST_TRUTHS["ndtr"], np.array([0.5]), "float64")


def test_a_narrow_format_decision_carries_exact_units():
    fmt = get_format("float32")
    x = np.array([0.5, -3.0, 17.0], dtype=np.float32).astype(np.float64)
    decision = fast.decide(FAST_TRUTHS["sigmoid"], x, fmt)
    assert np.array_equal(np.ldexp(decision.units, decision.ulp_exponent), decision.candidate)
    assert decision.units_lo is None  # a float64 candidate: one float per point
