"""The losses against mpmath (exact values) and against torch.nn.functional (semantics).

Budget: 4 ULP of the truth for every loss value (per element, per row, or reduced),
measured with the ``mp64`` helpers of conftest.py.
torch is the reference for what is computed (weights, ignore_index, label smoothing,
reductions), compared in float64 on moderate inputs where torch itself is accurate.
"""

import math
import random
import re

import mpmath
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from refact import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    distillation_loss,
    log_softmax,
    losses,
)

SEED = [1, 2, 3, 4, -3, -4, -2, -10000]
BUDGET = 4.0
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
PREC = 800


def ulps(mp64, y, truth):
    """mp64.ulp_error, also for a truth that is infinite, NaN, or rounds beyond the floats."""
    if mpmath.isnan(truth):
        return 0.0 if y != y else math.inf
    expected = truth if mpmath.isinf(truth) else mp64.nearest(truth)
    if math.isinf(expected):
        return 0.0 if y == expected else math.inf
    return mp64.ulp_error(y, truth)


def true_log_softmax(row, temperature=1):
    with mpmath.workprec(PREC):
        return _log_softmax_at(row, mpmath.mpf(temperature))


def softplus_mp(z):
    return mpmath.log1p(mpmath.exp(z)) if z < 0 else z + mpmath.log1p(mpmath.exp(-z))


# -- binary cross-entropy -------------------------------------------------------------------

probability = st.one_of(
    st.floats(0.0, 1.0),
    st.integers(1, 300).map(lambda k: 10.0 ** -k),
    st.integers(1, 16).map(lambda k: 1.0 - 10.0 ** -k),
    st.sampled_from([0.0, 1.0, 0.5, 5e-324]),
)
target = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


def true_bce(p, y):
    with mpmath.workprec(PREC):
        p, y = mpmath.mpf(p), mpmath.mpf(y)
        loss = 0
        if y > 0:
            loss += -y * mpmath.log(p) if p > 0 else mpmath.inf
        if y < 1:
            loss += -(1 - y) * mpmath.log1p(-p) if p < 1 else mpmath.inf
        return loss


@SETTINGS
@given(p=probability, y=target)
def test_bce_against_mpmath(mp64, p, y):
    assert ulps(mp64, binary_cross_entropy(p, y), true_bce(p, y)) <= BUDGET, (p, y)


@SETTINGS
@given(triples=st.lists(st.tuples(probability, target, st.floats(0.0, 3.0)), min_size=1, max_size=8))
def test_bce_weighted_reductions_against_mpmath(mp64, triples):
    ps, ys, ws = map(list, zip(*triples))
    per_element = [w * true_bce(p, y) for p, y, w in zip(ps, ys, ws)]
    got = binary_cross_entropy(ps, ys, weight=ws, reduction="none")
    for value, truth in zip(got, per_element):
        if not mpmath.isinf(truth) or all(w for w in ws):
            assert ulps(mp64, value, truth) <= BUDGET
    if all(not mpmath.isinf(t) for t in per_element):
        with mpmath.workprec(PREC):
            total = mpmath.fsum(per_element)
            assert ulps(mp64, binary_cross_entropy(ps, ys, weight=ws, reduction="sum"), total) <= BUDGET
            assert ulps(mp64, binary_cross_entropy(ps, ys, weight=ws), total / len(ps)) <= BUDGET


def test_bce_special_values_are_the_mathematical_ones():
    assert binary_cross_entropy([1.0, 0.0], [1.0, 0.0], reduction="none") == [0.0, 0.0]  # 0 log 0 = 0
    assert binary_cross_entropy([0.0, 1.0, 0.0], [1.0, 0.0, 0.5], reduction="none") == [math.inf] * 3
    assert binary_cross_entropy(1e-300, 0.0) == 1e-300  # log1p, not log(1 - p)
    assert binary_cross_entropy(0.5, 1.0) == math.log(2.0)
    assert math.isnan(binary_cross_entropy([0.5, math.nan], [1.0, 1.0]))
    assert math.isnan(binary_cross_entropy(0.0, 1.0, weight=0.0))  # weights multiply: 0 * inf
    assert math.isnan(binary_cross_entropy([], []))  # a mean over nothing
    assert binary_cross_entropy([], [], reduction="sum") == 0.0


def test_bce_weight_broadcasts_over_leading_axes():
    p = [[0.25, 0.5], [0.75, 0.125]]
    y = [[1.0, 0.0], [0.0, 1.0]]
    plain = binary_cross_entropy(p, y, reduction="none")
    weighted = binary_cross_entropy(p, y, weight=[2.0, 3.0], reduction="none")
    assert weighted == [[2.0 * plain[0][0], 3.0 * plain[0][1]], [2.0 * plain[1][0], 3.0 * plain[1][1]]]
    assert binary_cross_entropy(p, y, weight=0.5, reduction="sum") == binary_cross_entropy(
        p, y, weight=[[0.5, 0.5], [0.5, 0.5]], reduction="sum")


def test_bce_bad_input():
    with pytest.raises(ValueError, match=r"binary_cross_entropy\(\): p\[1\] = 1.5 is outside \[0, 1\]"):
        binary_cross_entropy([0.5, 1.5], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"binary_cross_entropy\(\): y = -0.25 is outside \[0, 1\]"):
        binary_cross_entropy(0.5, -0.25)
    with pytest.raises(ValueError, match=r"p and y must have the same shape, got \(2,\) and \(3,\)"):
        binary_cross_entropy([0.5, 0.5], [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) does not broadcast to the input's \(2,\)"):
        binary_cross_entropy([0.5, 0.5], [1.0, 0.0], weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"reduction must be 'none', 'mean' or 'sum', not 'avg'"):
        binary_cross_entropy(0.5, 1.0, reduction="avg")
    with pytest.raises(TypeError, match=r"p at index \[0\] must be a real number, not str"):
        binary_cross_entropy(["0.5"], [1.0])
    with pytest.raises(ValueError, match=r"ragged"):
        binary_cross_entropy([[0.5], [0.5, 0.5]], [[1.0], [1.0, 1.0]])


# -- binary cross-entropy with logits -------------------------------------------------------

logit = st.one_of(st.floats(-1e3, 1e3), st.floats(-40.0, 40.0), st.sampled_from([-800.0, 800.0, 1e308, -1e308]))


def true_bce_logits(x, y, pos_weight=1.0):
    with mpmath.workprec(PREC):
        x, y, pw = mpmath.mpf(x), mpmath.mpf(y), mpmath.mpf(pos_weight)
        return (pw * y * softplus_mp(-x) if y else 0) + ((1 - y) * softplus_mp(x) if y < 1 else 0)


@SETTINGS
@given(x=logit, y=target, pos_weight=st.sampled_from([1.0, 0.25, 3.0]))
def test_bce_with_logits_against_mpmath(mp64, x, y, pos_weight):
    got = binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight)
    assert ulps(mp64, got, true_bce_logits(x, y, pos_weight)) <= BUDGET, (x, y, pos_weight)


def test_bce_with_logits_special_values():
    # a zero target coefficient drops its term: a confident correct logit costs nothing
    assert binary_cross_entropy_with_logits([math.inf, -math.inf], [1.0, 0.0], reduction="none") == [0.0, 0.0]
    assert binary_cross_entropy_with_logits([-math.inf, math.inf], [1.0, 0.0], reduction="none") == [
        math.inf, math.inf]
    assert binary_cross_entropy_with_logits(800.0, 0.0) == 800.0
    assert binary_cross_entropy_with_logits(-800.0, 0.0) == 0.0  # e^-800 underflows
    assert math.isnan(binary_cross_entropy_with_logits(math.nan, 1.0))


def test_bce_with_logits_pos_weight_is_per_class_on_the_last_axis(mp64):
    x = [[0.5, -1.0, 2.0], [1.5, 0.0, -3.0]]
    y = [[1.0, 0.0, 0.5], [1.0, 1.0, 0.0]]
    pos_weight = [2.0, 3.0, 0.5]
    got = binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight, reduction="none")
    for i in range(2):
        for j in range(3):
            assert ulps(mp64, got[i][j], true_bce_logits(x[i][j], y[i][j], pos_weight[j])) <= BUDGET


def test_bce_with_logits_bad_input():
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits\(\): y\[0\] = 2.0 is outside"):
        binary_cross_entropy_with_logits([0.0], [2.0])
    with pytest.raises(ValueError, match=r"x and y must have the same shape"):
        binary_cross_entropy_with_logits([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) does not broadcast"):
        binary_cross_entropy_with_logits([[0.0, 1.0, 2.0]], [[1.0, 0.0, 1.0]], pos_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"reduction must be"):
        binary_cross_entropy_with_logits(0.0, 1.0, reduction=None)


# -- cross-entropy --------------------------------------------------------------------------

def test_cross_entropy_of_the_seed_vector_against_mpmath(mp64):
    truth = -true_log_softmax(SEED)[7]
    assert mpmath.nstr(truth, 15) == "10004.4425861117"
    assert cross_entropy(SEED, 7) == 10004.442586111712
    assert ulps(mp64, cross_entropy(SEED, 7), truth) <= 0.5
    assert ulps(mp64, cross_entropy([SEED, SEED], [7, 3], reduction="sum"), truth - true_log_softmax(SEED)[3]) <= BUDGET


logit_row = st.lists(st.one_of(st.floats(-30.0, 30.0), st.floats(-1e4, 1e4)), min_size=2, max_size=6)


@SETTINGS
@given(row=logit_row, data=st.data())
def test_cross_entropy_index_targets_with_weights_and_smoothing_against_mpmath(mp64, row, data):
    classes = len(row)
    k = data.draw(st.integers(0, classes - 1))
    weights = data.draw(st.lists(st.floats(0.125, 4.0), min_size=classes, max_size=classes))
    smoothing = data.draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    logs = true_log_softmax(row)
    with mpmath.workprec(PREC):
        eps = mpmath.mpf(smoothing)
        truth = (1 - eps) * weights[k] * -logs[k] + eps / classes * mpmath.fsum(
            w * -lq for w, lq in zip(weights, logs))
    got = cross_entropy(row, k, weight=weights, label_smoothing=smoothing, reduction="sum")
    assert ulps(mp64, got, truth) <= BUDGET, (row, k, weights, smoothing)
    # one row: the weighted mean divides by w_k
    mean = cross_entropy([row], [k], weight=weights, label_smoothing=smoothing)
    assert ulps(mp64, mean, truth / weights[k]) <= BUDGET


@SETTINGS
@given(row=logit_row, data=st.data())
def test_cross_entropy_probability_targets_against_mpmath(mp64, row, data):
    classes = len(row)
    probs = data.draw(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(0.0)), min_size=classes, max_size=classes))
    smoothing = data.draw(st.sampled_from([0.0, 0.2]))
    logs = true_log_softmax(row)
    with mpmath.workprec(PREC):
        eps = mpmath.mpf(smoothing)
        truth = mpmath.fsum(((1 - eps) * y + eps / classes) * -lq for y, lq in zip(probs, logs))
    got = cross_entropy(row, probs, label_smoothing=smoothing)
    # the smoothed target is rounded once before use, as torch does: allow for it
    assert ulps(mp64, got, truth) <= BUDGET + (2 if smoothing else 0), (row, probs, smoothing)


def test_cross_entropy_ignore_index_and_the_mean_over_nothing():
    logits = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [0.0, 0.0, 0.0]]
    per_row = cross_entropy(logits, [2, -100, 0], reduction="none")
    assert per_row[1] == 0.0
    assert cross_entropy(logits, [2, -100, 0]) == (per_row[0] + per_row[2]) / 2
    assert math.isnan(cross_entropy(logits, [-100, -100, -100]))  # 0 / 0, like torch
    assert cross_entropy(logits, [-100, -100, -100], reduction="sum") == 0.0
    assert cross_entropy(logits, [1, 1, 1], ignore_index=1, reduction="none") == [0.0, 0.0, 0.0]


def test_cross_entropy_special_values():
    assert cross_entropy([0.0, -math.inf], 1) == math.inf
    assert cross_entropy([0.0, -math.inf], 0) == 0.0
    assert cross_entropy([0.0, -math.inf], [1.0, 0.0]) == 0.0  # a zero target ignores that class
    assert cross_entropy([0.0, -math.inf], 0, label_smoothing=0.1) == math.inf  # smoothing puts mass there
    assert math.isnan(cross_entropy([0.0, math.nan], 0))


def test_cross_entropy_bad_input():
    with pytest.raises(ValueError, match=r"cross_entropy\(\): target\[1\] = 3 is out of range for 3 classes"):
        cross_entropy([[1.0, 2.0, 3.0]] * 2, [0, 3])
    with pytest.raises(ValueError, match=r"cross_entropy\(\): target = -1 is out of range for 3 classes"):
        cross_entropy([1.0, 2.0, 3.0], -1)
    with pytest.raises(TypeError, match=r"target\[0\] must be an integer class index, not float 1.0"):
        cross_entropy([[1.0, 2.0, 3.0]], [1.0])
    with pytest.raises(TypeError, match=r"target must be a real number, not bool"):
        cross_entropy([1.0, 2.0, 3.0], True)
    with pytest.raises(ValueError, match=r"target must have shape \(2,\) \(class indices\) or \(2, 3\)"):
        cross_entropy([[1.0, 2.0, 3.0]] * 2, [0, 1, 2])
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\), got \(2,\)"):
        cross_entropy([1.0, 2.0, 3.0], 0, weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        cross_entropy([1.0, 2.0, 3.0], 0, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"logits must have shape \(C,\) or \(N, C\)"):
        cross_entropy([[[1.0, 2.0]]], [[0]])
    with pytest.raises(ValueError, match=r"logits must have shape \(C,\) or \(N, C\) with C >= 1"):
        cross_entropy([], 0)
    with pytest.raises(ValueError, match=r"reduction must be 'none', 'mean' or 'sum'"):
        cross_entropy([1.0, 2.0], 0, reduction="batchmean")
    with pytest.raises(TypeError, match=r"ignore_index must be an int"):
        cross_entropy([1.0, 2.0], 0, ignore_index=None)


# -- distillation ---------------------------------------------------------------------------

def true_distillation(student, teacher, temperature):
    """T^2 KL(p || q) in mpmath, with precision raised until two evaluations agree."""
    previous = None
    for prec in (800, 1600, 3200):
        with mpmath.workprec(prec):
            t = mpmath.mpf(temperature)
            lp = _log_softmax_at(teacher, t)
            lq = _log_softmax_at(student, t)
            value = t * t * mpmath.fsum(mpmath.exp(a) * (a - b) for a, b in zip(lp, lq) if a > -100000)
        if previous is not None and (value == previous or abs(value - previous) <= abs(value) * 2 ** -80):
            return value
        if previous is not None and abs(value) < mpmath.ldexp(1, -1100) > abs(previous):
            return mpmath.mpf(0)  # far below the floats: what matters is that 0.0 comes back
        previous = value
    raise AssertionError("the mpmath truth did not settle")


def _log_softmax_at(row, t):
    """log softmax(row / t) at mpmath's working precision, relative to the row maximum."""
    scaled = [mpmath.mpf(v) / t for v in row]
    top = max(scaled)
    others = list(scaled)
    others.remove(top)
    log_norm = mpmath.log1p(mpmath.fsum(mpmath.exp(v - top) for v in others if v - top > -100000))
    return [(v - top) - log_norm for v in scaled]


logit_pairs = st.lists(st.tuples(st.floats(-30.0, 30.0), st.floats(-30.0, 30.0)), min_size=2, max_size=6)


@SETTINGS
@given(pairs=logit_pairs, relation=st.sampled_from(["independent", "close", "very close", "shifted"]),
       temperature=st.sampled_from([1.0, 2.0, 0.5, 4.0, 3.0]))
def test_distillation_against_mpmath_including_nearly_equal_rows(mp64, pairs, relation, temperature):
    teacher = [a for a, _ in pairs]
    if relation == "independent":
        student = [b for _, b in pairs]
    elif relation == "close":
        student = [a + b * 1e-6 for a, b in pairs]
    elif relation == "very close":
        student = [a + b * 1e-13 for a, b in pairs]
    else:  # a shift changes nothing in exact arithmetic; here the rounding of a + c remains
        student = [a + pairs[0][1] for a in teacher]
    truth = true_distillation(student, teacher, temperature)
    assert ulps(mp64, distillation_loss(student, teacher, temperature), truth) <= BUDGET, (student, teacher)


@pytest.mark.parametrize("student, teacher, temperature", [
    # found by the conformance run's dense float64 rows: 4.54 ULP when p_i, q_i and
    # phi(y_i) were each rounded apart (one p_i ~ 1e-5, T = 10)
    ([-84.8967157096731, 32.629030819720285], [-84.89188296403614, 32.62664137423893], 10.0),
    ([71.09693036143113, 32.465119685391386, -73.37402721186727],
     [71.53556453319963, 33.37268575104514, -73.23914034200025], 7.0),  # 4.76 ULP then
])
def test_distillation_terms_in_double_double_are_within_an_ulp(mp64, student, teacher, temperature):
    truth = true_distillation(student, teacher, temperature)
    assert ulps(mp64, distillation_loss(student, teacher, temperature), truth) <= 1.0


@SETTINGS
@given(student=st.lists(st.floats(-100.0, 100.0), min_size=2, max_size=8),
       offsets=st.lists(st.floats(-1.0, 1.0), min_size=8, max_size=8),
       spread=st.sampled_from([1.0, 1e-2, 1e-4, 1e-8]),
       temperature=st.sampled_from([1.0, 1.7, 3.0, 7.0, 10.0, 20.0]))
def test_distillation_at_large_logits_and_temperatures_within_an_ulp_and_a_half(
        mp64, student, offsets, spread, temperature):
    # measured: at most 1.02 ULP over 8,000 such pairs (4.76 before the terms were
    # formed in double-double)
    teacher = [s + o * spread * 100.0 for s, o in zip(student, offsets)]
    truth = true_distillation(student, teacher, temperature)
    assert ulps(mp64, distillation_loss(student, teacher, temperature), truth) <= 1.5, (student, teacher)


@pytest.mark.parametrize("last, expected", [(-math.inf, math.inf), (math.nan, math.nan)])
def test_a_reduction_past_the_largest_float_with_an_infinite_or_nan_term(last, expected):
    # two terms of 1.7e308 overflow the running sum; the exact-fraction fallback then
    # met inf or NaN and raised OverflowError / ValueError instead of returning
    value = binary_cross_entropy_with_logits([-1.7e308, -1.7e308, last], [1.0, 1.0, 1.0], reduction="sum")
    assert value == expected or (math.isnan(value) and math.isnan(expected))
    assert math.isnan(losses._total([1.7e308, 1.7e308, math.inf, -math.inf]))


def test_distillation_far_below_the_subnormals_is_zero_without_decimal(mp64, monkeypatch):
    # p_i = e**-30720 and q_i = e**-31744 for 99 classes at T = 1/1024: the KL, about
    # 99 e**-30720, rounds to 0; proving that in decimal took 0.6 s a row
    student, teacher = [0.0] + [-31.0] * 99, [0.0] + [-30.0] * 99
    assert true_distillation(student, teacher, 1.0 / 1024) < mpmath.ldexp(1, -1075)
    monkeypatch.setattr(losses, "_decimal_distillation_row", None)  # never called
    assert distillation_loss(student, teacher, 1.0 / 1024) == 0.0


def test_distillation_of_a_nearly_equal_pair_is_the_tiny_true_value(mp64):
    assert distillation_loss([0.0, 1e-8], [0.0, 0.0], 1.0) == 1.25e-17
    truth = true_distillation([0.0, 1e-8], [0.0, 0.0], 1.0)
    assert ulps(mp64, 1.25e-17, truth) <= 0.5


@SETTINGS
@given(gap=st.floats(600.0, 745.0), classes=st.integers(2, 60), noise=st.floats(1e-3, 3.0),
       temperature=st.sampled_from([1.0, 2.0, 1.0 / 1024]), seed=st.integers(0, 2 ** 16))
def test_distillation_of_near_one_hot_rows_with_the_kl_near_the_subnormals(
        mp64, gap, classes, noise, temperature, seed):
    # one class `gap` above the others in both rows: the KL, about e**-gap, lies where the
    # double-double terms lose bits, and the decimal evaluation decides; taken relative to
    # the KL it settles at 40 digits (relative to the logits it took 640-1280 digits and
    # up to 9 s for one 1000-class row)
    rng = random.Random(seed)
    student = [0.0] + [-gap * temperature + rng.gauss(0.0, 0.25) for _ in range(classes - 1)]
    teacher = [s + (rng.gauss(0.0, noise) if i else 0.0) for i, s in enumerate(student)]
    truth = true_distillation(student, teacher, temperature)
    assert ulps(mp64, distillation_loss(student, teacher, temperature), truth) <= BUDGET, (student, teacher)


@SETTINGS
@given(pairs=st.lists(st.tuples(st.floats(-1e308, 1e308), st.floats(-30.0, 30.0)), min_size=2, max_size=5),
       relation=st.sampled_from(["independent", "close", "equal"]),
       temperature=st.sampled_from([1.0, 0.5, 1e4, 1.0 / 1024]))
def test_the_decimal_evaluation_against_mpmath_at_any_logits(mp64, pairs, relation, temperature):
    # the decimal path itself, on rows the double-double one sends it (logits near the
    # overflow) and on ordinary ones: within half an ULP wherever it settles
    student = [a for a, _ in pairs]
    teacher = {"independent": [b for _, b in pairs], "equal": list(student),
               "close": [a + b * abs(a) * 1e-10 for a, b in pairs]}[relation]
    assume(all(math.isfinite(v) for v in teacher))  # +inf and NaN rows never reach it
    truth = true_distillation(student, teacher, temperature)
    value = losses._decimal_distillation_row(teacher, student, temperature)
    assert ulps(mp64, value, truth) <= 0.5, (student, teacher)


@pytest.mark.parametrize("teacher, student, temperature", [
    ([0.0, -750.0, 1.0], [0.0, 0.0, 0.0], 1.0),      # p_1 below the floats, q_1 not: q_1 counts
    ([0.0, -700.0], [0.0, -2000.0], 1.0),            # p_1 tiny and far above q_1
    ([0.0, -400.0, 2.0], [1.0, 1.0, 1.0], 0.5),      # the same through the temperature
    ([5.0, -1e4, 3.0], [5.0, -1e4, 3.0 + 1e-12], 2.0),
    ([1e3, -1e3, 0.0], [1e3, 0.0, -1e3], 3.0),
    # p_1 = e**-989 and q_1 = e**-2.9e311 both below the floats, found by the conformance
    # suite's dense rows: 0 was returned where 3.83e-125 is due
    ([0.5652754430151512, -0.4013226049661136], [1.2313045138386746e+308, -1.6321377640318978e+308],
     0.0009765625),
])
def test_distillation_where_teacher_probabilities_underflow(mp64, teacher, student, temperature):
    truth = true_distillation(student, teacher, temperature)
    assert ulps(mp64, distillation_loss(student, teacher, temperature), truth) <= BUDGET


def test_distillation_batchmean_and_temperature_scaling(mp64):
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    teacher = [[0.5, 2.5, 0.0], [1.0, -2.0, 2.0]]
    rows = [distillation_loss(s, t, 2.0) for s, t in zip(student, teacher)]
    assert distillation_loss(student, teacher, 2.0) == (rows[0] + rows[1]) / 2
    for s, t, value in zip(student, teacher, rows):
        assert ulps(mp64, value, true_distillation(s, t, 2.0)) <= BUDGET


def test_distillation_special_values(mp64):
    assert distillation_loss([1.0, 2.0], [1.0, 2.0], 3.0) == 0.0
    assert distillation_loss([0.0, -math.inf], [0.0, 0.0], 1.0) == math.inf  # q = 0 where p > 0
    # p = 0 where the teacher says -inf: that class adds nothing, however large q is there
    student, teacher = [0.0, 1.0, 5.0], [0.0, -1000.0, -math.inf]
    assert ulps(mp64, distillation_loss(student, teacher, 1.0), true_distillation(student, teacher, 1.0)) <= BUDGET
    value = distillation_loss([0.0, 1.0], [0.0, -math.inf], 1.0)
    assert ulps(mp64, value, -_log_softmax_at([0.0, 1.0], mpmath.mpf(1))[0]) <= BUDGET
    assert math.isnan(distillation_loss([0.0, math.nan], [0.0, 0.0], 1.0))


def test_distillation_bad_input():
    with pytest.raises(ValueError, match=r"distillation_loss\(\): student_logits and teacher_logits must have "
                                         r"the same shape, got \(2,\) and \(3,\)"):
        distillation_loss([1.0, 2.0], [1.0, 2.0, 3.0], 1.0)
    with pytest.raises(ValueError, match=r"distillation_loss\(\): temperature must be finite and > 0"):
        distillation_loss([1.0, 2.0], [1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match=r"logits must have shape \(C,\) or \(N, C\)"):
        distillation_loss([[[1.0]]], [[[1.0]]], 1.0)


# -- torch semantics ------------------------------------------------------------------------

torch = pytest.importorskip("torch")
F = torch.nn.functional


def tensor(values):
    return torch.tensor(values, dtype=torch.float64)


def close_to_torch(ours, theirs, ulp_budget=8):
    """Same nesting, and every number within ``ulp_budget`` ULPs of torch's (NaN matches NaN)."""
    return _close(ours, theirs.tolist(), ulp_budget)


def _close(ours, theirs, ulp_budget):
    if isinstance(theirs, list):
        return len(ours) == len(theirs) and all(_close(a, b, ulp_budget) for a, b in zip(ours, theirs))
    if math.isnan(theirs):
        return math.isnan(ours)
    return abs(ours - theirs) <= ulp_budget * math.ulp(max(abs(theirs), 2.0 ** -1022))


LOGITS = [[1.5, -0.25, 3.0, 0.125], [0.5, -1.0, 2.0, 2.0], [-3.0, 0.0, 1.0, -2.5]]
WEIGHT = [1.0, 2.5, 0.5, 3.0]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weight", [None, WEIGHT])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("targets", [[2, 0, 3], [2, -100, 3], [1, 1, 7]])
def test_cross_entropy_index_targets_match_torch(reduction, weight, smoothing, targets):
    ignore = 7 if 7 in targets else -100
    ours = cross_entropy(LOGITS, targets, weight=weight, ignore_index=ignore, label_smoothing=smoothing,
                         reduction=reduction)
    theirs = F.cross_entropy(tensor(LOGITS), torch.tensor(targets), weight=None if weight is None else tensor(weight),
                             ignore_index=ignore, label_smoothing=smoothing, reduction=reduction)
    assert close_to_torch(ours, theirs), (ours, theirs)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weight", [None, WEIGHT])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_probability_targets_match_torch(reduction, weight, smoothing):
    probs = [[0.25, 0.25, 0.5, 0.0], [0.0, 0.0, 1.0, 0.0], [0.125, 0.5, 0.125, 0.25]]
    ours = cross_entropy(LOGITS, probs, weight=weight, label_smoothing=smoothing, reduction=reduction)
    theirs = F.cross_entropy(tensor(LOGITS), tensor(probs), weight=None if weight is None else tensor(weight),
                             label_smoothing=smoothing, reduction=reduction)
    assert close_to_torch(ours, theirs), (ours, theirs)


def test_cross_entropy_single_row_matches_torch():
    assert close_to_torch(cross_entropy(LOGITS[0], 2), F.cross_entropy(tensor(LOGITS[0]), torch.tensor(2)))
    assert close_to_torch(cross_entropy(LOGITS[0], 2, reduction="none"),
                          F.cross_entropy(tensor(LOGITS[0]), torch.tensor(2), reduction="none"))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_matches_torch_where_its_clamp_does_not_apply(reduction):
    p = [[0.25, 0.5, 0.875], [0.001, 0.999, 0.3]]
    y = [[1.0, 0.0, 0.5], [0.0, 1.0, 0.25]]
    w = [2.0, 0.5, 1.0]
    ours = binary_cross_entropy(p, y, weight=w, reduction=reduction)
    theirs = F.binary_cross_entropy(tensor(p), tensor(y), weight=tensor(w), reduction=reduction)
    assert close_to_torch(ours, theirs), (ours, theirs)


def test_bce_where_torch_clamps_is_a_convention_not_the_value():
    # torch clamps log at -100 and gives 100; the mathematical loss is infinite
    assert F.binary_cross_entropy(tensor([0.0]), tensor([1.0])).item() == 100.0
    assert binary_cross_entropy([0.0], [1.0]) == math.inf


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_with_logits_matches_torch(reduction):
    x = [[0.5, -1.0, 2.0], [1.5, 0.0, -3.0]]
    y = [[1.0, 0.0, 0.5], [1.0, 1.0, 0.0]]
    w = [[1.0, 2.0, 0.5], [0.25, 1.0, 1.0]]
    pw = [2.0, 3.0, 0.5]
    ours = binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction=reduction)
    theirs = F.binary_cross_entropy_with_logits(tensor(x), tensor(y), weight=tensor(w), pos_weight=tensor(pw),
                                                reduction=reduction)
    assert close_to_torch(ours, theirs), (ours, theirs)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_distillation_matches_torch_kl_div_batchmean(mp64, temperature):
    student = [[1.0, 2.0, 0.5, -1.0], [0.0, -1.0, 3.0, 2.0]]
    teacher = [[0.5, 2.5, 0.0, 1.0], [1.0, -2.0, 2.0, 0.0]]
    t = temperature
    theirs = F.kl_div(F.log_softmax(tensor(student) / t, dim=-1), F.softmax(tensor(teacher) / t, dim=-1),
                      reduction="batchmean") * t * t
    ours = distillation_loss(student, teacher, t)
    # The same quantity; torch sums p (log p - log q) directly and loses digits to the
    # cancellation (24 ULP at T = 4 here), so the semantics are checked to 1e-12 and the
    # accuracy against mpmath.
    assert abs(ours - theirs.item()) <= 1e-12 * abs(ours)
    truth = mpmath.fsum(true_distillation(s, q, t) for s, q in zip(student, teacher)) / 2
    assert ulps(mp64, ours, truth) <= BUDGET


def test_log_softmax_matches_torch_on_moderate_rows():
    assert close_to_torch(log_softmax(LOGITS), F.log_softmax(tensor(LOGITS), dim=-1), ulp_budget=4)


def test_distillation_at_extreme_temperatures_and_logits():
    # t**2 KL stays finite where KL or the differences / t overflow, and is +0.0 (a KL is
    # never negative) where it underflows; expected values are the oracle's (mpmath)
    assert distillation_loss([0.0, 1.0], [1.0, 0.0], 5e-324) == 5e-324
    tiny = distillation_loss([0.0, 0.0], [5e-324, 0.0], 1.0)
    assert tiny == 0.0 and math.copysign(1.0, tiny) == 1.0
    student = [4.6458196107954916e+104, 1.3442445396247023e-254, 2.86606759921081e+48,
               -1.6796660005202857e+134, 1.3065936433806742e-123, -1.773621285578626e+123,
               -4.11397765199494e+119, -1.9872641807373803e+229]
    teacher = [-4.37850031258575e-08, -7.003640534017573e+20, -1.9622527940455512e-232,
               2.9165561264505725e-182, -1.9421013962860364e+135, -2.187973478388397e-220,
               1.2556621101082733e+222, 2.5831379844333442e-250]
    assert distillation_loss(student, teacher, 8.87341141585507e-308) == 3.6505016261784575e-188


# -- weights broadcast as in torch (torch 2.13 checked for every shape below) -----------------

N, C = 3, 4
BATCH_P = [[0.25, 0.5, 0.875, 1e-3], [0.125, 0.999, 0.3, 0.75], [0.5, 0.0625, 0.625, 0.9]]
BATCH_Y = [[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.25, 1.0], [1.0, 0.75, 0.0, 0.5]]
BATCH_X = [[1.5, -0.25, 3.0, 0.125], [0.5, -1.0, 2.0, -2.0], [-3.0, 0.0, 1.0, -2.5]]
# weights of every shape torch accepts for an (N, C) input, and the weight torch gives
# element (i, j) for each: a size-1 dimension repeats its one value
ACCEPTED = {
    (): (0.75, lambda i, j: 0.75),
    (1,): ([0.75], lambda i, j: 0.75),
    (C,): ([2.0, 0.5, 1.25, 3.0], lambda i, j: [2.0, 0.5, 1.25, 3.0][j]),
    (1, C): ([[2.0, 0.5, 1.25, 3.0]], lambda i, j: [2.0, 0.5, 1.25, 3.0][j]),
    (N, 1): ([[0.25], [4.0], [1.5]], lambda i, j: [0.25, 4.0, 1.5][i]),
    (1, 1): ([[0.75]], lambda i, j: 0.75),
    (N, C): ([[1.0, 2.0, 0.5, 0.25], [0.125, 1.0, 3.0, 1.5], [2.5, 1.0, 0.75, 4.0]],
             lambda i, j: [[1.0, 2.0, 0.5, 0.25], [0.125, 1.0, 3.0, 1.5], [2.5, 1.0, 0.75, 4.0]][i][j]),
}
# shapes torch rejects for an (N, C) input: a dimension that is neither 1 nor the input's,
# or more dimensions than the input (the loss would no longer have the input's shape)
REJECTED = [(N,), (2,), (C, 1), (2, C), (1, N, C), (2, N, C)]


def _weight_of_shape(shape):
    return [[0.5] * shape[-1]] * shape[0] if len(shape) == 2 else (
        [0.5] * shape[0] if len(shape) == 1 else [[[0.5] * shape[2]] * shape[1]] * shape[0])


def _assert_reduced_within_budget(mp64, got, truths, total, reduction, shape):
    """``got`` against the (N, C) ``truths`` (reduction "none") or their sum or mean."""
    if reduction == "none":
        for i in range(N):
            for j in range(C):
                assert ulps(mp64, got[i][j], truths[i][j]) <= BUDGET, (shape, i, j)
    else:
        assert ulps(mp64, got, total if reduction == "sum" else total / (N * C)) <= BUDGET


@pytest.mark.parametrize("shape", list(ACCEPTED))
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_bce_weight_of_every_torch_shape_against_mpmath_and_torch(mp64, shape, reduction):
    weight, weight_at = ACCEPTED[shape]
    with mpmath.workprec(PREC):
        truths = [[weight_at(i, j) * true_bce(BATCH_P[i][j], BATCH_Y[i][j]) for j in range(C)] for i in range(N)]
        total = mpmath.fsum(t for row in truths for t in row)
    got = binary_cross_entropy(BATCH_P, BATCH_Y, weight=weight, reduction=reduction)
    _assert_reduced_within_budget(mp64, got, truths, total, reduction, shape)
    theirs = F.binary_cross_entropy(tensor(BATCH_P), tensor(BATCH_Y), weight=tensor(weight), reduction=reduction)
    assert close_to_torch(got, theirs), (shape, got, theirs)


@pytest.mark.parametrize("shape", list(ACCEPTED))
@pytest.mark.parametrize("argument", ["weight", "pos_weight"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_bce_with_logits_weights_of_every_torch_shape_against_mpmath_and_torch(mp64, shape, argument, reduction):
    value, value_at = ACCEPTED[shape]
    with mpmath.workprec(PREC):
        if argument == "weight":
            truths = [[value_at(i, j) * true_bce_logits(BATCH_X[i][j], BATCH_Y[i][j]) for j in range(C)]
                      for i in range(N)]
        else:
            truths = [[true_bce_logits(BATCH_X[i][j], BATCH_Y[i][j], value_at(i, j)) for j in range(C)]
                      for i in range(N)]
        total = mpmath.fsum(t for row in truths for t in row)
    got = binary_cross_entropy_with_logits(BATCH_X, BATCH_Y, reduction=reduction, **{argument: value})
    _assert_reduced_within_budget(mp64, got, truths, total, reduction, shape)
    theirs = F.binary_cross_entropy_with_logits(tensor(BATCH_X), tensor(BATCH_Y), reduction=reduction,
                                                **{argument: tensor(value)})
    assert close_to_torch(got, theirs), (shape, got, theirs)


@pytest.mark.parametrize("shape", REJECTED)
def test_bce_weights_torch_rejects_are_a_value_error_naming_argument_and_shape(shape):
    weight = _weight_of_shape(shape)
    with pytest.raises(RuntimeError):
        F.binary_cross_entropy(tensor(BATCH_P), tensor(BATCH_Y), weight=tensor(weight), reduction="none")
    message = rf"weight of shape {re.escape(str(shape))} does not broadcast to the input's \(3, 4\)"
    with pytest.raises(ValueError, match=r"binary_cross_entropy\(\): " + message):
        binary_cross_entropy(BATCH_P, BATCH_Y, weight=weight)
    for argument in ("weight", "pos_weight"):
        with pytest.raises(RuntimeError):
            F.binary_cross_entropy_with_logits(tensor(BATCH_X), tensor(BATCH_Y), **{argument: tensor(weight)})
        with pytest.raises(ValueError, match=rf"binary_cross_entropy_with_logits\(\): {argument} of shape "
                                             rf"{re.escape(str(shape))} does not broadcast"):
            binary_cross_entropy_with_logits(BATCH_X, BATCH_Y, **{argument: weight})


@pytest.mark.parametrize("shape, accepted", [((), True), ((1,), True), ((N,), True),
                                             ((1, N), False), ((N, 1), False), ((1, 1), False), ((2,), False)])
def test_bce_weight_of_a_vector_batch_follows_torch(mp64, shape, accepted):
    p, y = BATCH_P[0][:N], BATCH_Y[1][:N]
    weight = {(): 0.75, (1,): [0.75], (N,): [0.25, 4.0, 1.5]}.get(shape) or _weight_of_shape(shape)
    if not accepted:
        with pytest.raises(RuntimeError):
            F.binary_cross_entropy(tensor(p), tensor(y), weight=tensor(weight), reduction="none")
        with pytest.raises(ValueError, match=rf"weight of shape {re.escape(str(shape))} does not broadcast "
                                             rf"to the input's \(3,\)"):
            binary_cross_entropy(p, y, weight=weight, reduction="none")
        return
    got = binary_cross_entropy(p, y, weight=weight, reduction="none")
    weights = [weight] * N if shape == () else weight * (N // len(weight))
    for value, w, p_i, y_i in zip(got, weights, p, y):
        with mpmath.workprec(PREC):
            assert ulps(mp64, value, w * true_bce(p_i, y_i)) <= BUDGET
    assert close_to_torch(got, F.binary_cross_entropy(tensor(p), tensor(y), weight=tensor(weight),
                                                      reduction="none"))


@pytest.mark.parametrize("shape", [(), (1,), (1, C), (N, 1), (N, C), (C, 1), (2,)])
def test_cross_entropy_class_weight_must_be_of_shape_c_as_in_torch(shape):
    weight = 0.75 if shape == () else _weight_of_shape(shape)
    targets = [0, 2, 3]
    with pytest.raises(RuntimeError, match="weight tensor should be defined either for all 4 classes"):
        F.cross_entropy(tensor(LOGITS), torch.tensor(targets), weight=tensor(weight))
    with pytest.raises(ValueError, match=rf"cross_entropy\(\): weight must have shape \(4,\), "
                                         rf"got {re.escape(str(shape))}"):
        cross_entropy(LOGITS, targets, weight=weight)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_class_weight_goes_to_the_target_class_against_mpmath(mp64, reduction):
    targets = [2, 0, 3]
    logs = [true_log_softmax(row) for row in LOGITS]
    with mpmath.workprec(PREC):
        truths = [WEIGHT[k] * -logs[i][k] for i, k in enumerate(targets)]
        total = mpmath.fsum(truths)
        expected = {"none": truths, "sum": total, "mean": total / sum(WEIGHT[k] for k in targets)}[reduction]
    got = cross_entropy(LOGITS, targets, weight=WEIGHT, reduction=reduction)
    for value, truth in (zip(got, expected) if reduction == "none" else [(got, expected)]):
        assert ulps(mp64, value, truth) <= BUDGET
    assert close_to_torch(got, F.cross_entropy(tensor(LOGITS), torch.tensor(targets), weight=tensor(WEIGHT),
                                               reduction=reduction))


# -- weights on subnormal terms: the term is not rounded before the weight multiplies it ------

huge_or_tiny_weight = st.builds(lambda m, k: m * 10.0 ** k, st.floats(1.0, 9.999), st.integers(-300, 300))
tiny_probability = st.one_of(probability, st.integers(0, 2 ** 52).map(lambda k: k * 5e-324),
                             st.integers(-323, -300).map(lambda k: 10.0 ** k))
tiny_target = st.one_of(target, st.integers(1, 2 ** 52).map(lambda k: k * 5e-324), st.sampled_from([5e-324]))


def _reduced_truth(truths, reduction, count=None):
    with mpmath.workprec(PREC):
        total = mpmath.fsum(truths)
        return {"sum": total, "mean": total / (len(truths) if count is None else count)}[reduction]


@pytest.mark.parametrize("p, y, w", [
    (5e-324, 5e-324, 1e300),        # the case: the term is 3.7e-321, 2.9e12 ULP off before
    (1e-310, 0.0, 1e300),           # -log(1 - p) = p, subnormal
    (3e-320, 1e-3, 1.7e308),
    (0.5, 5e-324, 1e300),
    (1e-320, 1.0, 5e-324),          # a tiny weight on a large term: a subnormal result, rounded once
    (0.25, 0.75, 1e-310),
])
def test_bce_weight_times_a_subnormal_term_against_mpmath(mp64, p, y, w):
    with mpmath.workprec(PREC):
        truth = w * true_bce(p, y)
    assert ulps(mp64, binary_cross_entropy(p, y, weight=w, reduction="none"), truth) <= BUDGET
    assert ulps(mp64, binary_cross_entropy([p, p], [y, y], weight=w, reduction="sum"), 2 * truth) <= BUDGET
    assert ulps(mp64, binary_cross_entropy([p, p], [y, y], weight=w, reduction="mean"), truth) <= BUDGET


@pytest.mark.parametrize("x, y, w, pw", [
    (-745.0, 0.0, 1e300, 1.0),      # softplus(-745) = 5e-324
    (-1000.0, 0.0, 1e300, 1.0),     # e**-1000 is below every float; times 1e300 it is 5e-135
    (800.0, 1.0, 1e300, 1e300),     # softplus(-800) times two huge weights
    (-2000.0, 0.0, 1.7e308, 1.0),   # e**-2000 * 1.7e308 still rounds to 0
    (710.0, 0.25, 1e300, 1e-300),
    (-720.0, 5e-324, 1e300, 1e300),
    (3.0, 1.0, 5e-324, 1.0),        # a tiny weight: the subnormal result is rounded once
])
def test_bce_with_logits_weights_times_a_subnormal_term_against_mpmath(mp64, x, y, w, pw):
    with mpmath.workprec(PREC):
        truth = w * true_bce_logits(x, y, pw)
    got = binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction="none")
    assert ulps(mp64, got, truth) <= BUDGET, (got, truth)
    for reduction in ("sum", "mean"):
        got = binary_cross_entropy_with_logits([x, x, x], [y, y, y], weight=w, pos_weight=pw, reduction=reduction)
        assert ulps(mp64, got, _reduced_truth([truth] * 3, reduction)) <= BUDGET


@pytest.mark.parametrize("row, k, weight", [
    ([0.0, -745.0], 0, [1e300, 1.0]),           # -log q_0 = log1p(e**-745) = 5e-324
    ([0.0, -1000.0, -1200.0], 0, [1e300, 1.0, 1.0]),
    ([3.0, 3.0 - 720.0], 0, [1.7e308, 2.0]),
    ([0.0, -800.0], 1, [1.0, 5e-324]),          # a tiny weight on a large term
    ([-1e4, 0.0, -1e4 + 1.0], 1, [1.0, 1e300, 1.0]),
])
def test_cross_entropy_weight_times_a_subnormal_term_against_mpmath(mp64, row, k, weight):
    logs = true_log_softmax(row)
    with mpmath.workprec(PREC):
        truth = weight[k] * -logs[k]
    assert ulps(mp64, cross_entropy([row], [k], weight=weight, reduction="none")[0], truth) <= BUDGET
    assert ulps(mp64, cross_entropy([row, row], [k, k], weight=weight, reduction="sum"), 2 * truth) <= BUDGET
    # "mean" divides by the weights of the targets: the weight cancels, the term is left
    with mpmath.workprec(PREC):
        assert ulps(mp64, cross_entropy([row, row], [k, k], weight=weight), truth / weight[k]) <= BUDGET
    # probability targets take the same path: one-hot is the index target
    one_hot = [1.0 if c == k else 0.0 for c in range(len(row))]
    assert ulps(mp64, cross_entropy([row], [one_hot], weight=weight, reduction="none")[0], truth) <= BUDGET


@SETTINGS
@given(cases=st.lists(st.tuples(tiny_probability, tiny_target, huge_or_tiny_weight), min_size=1, max_size=4),
       reduction=st.sampled_from(["none", "sum", "mean"]))
def test_bce_weights_from_1e_minus_300_to_1e300_against_mpmath(mp64, cases, reduction):
    ps, ys, ws = (list(column) for column in zip(*cases))
    with mpmath.workprec(PREC):
        truths = [w * true_bce(p, y) for p, y, w in cases]
    got = binary_cross_entropy(ps, ys, weight=ws, reduction=reduction)
    if reduction == "none":
        for value, truth, case in zip(got, truths, cases):
            assert ulps(mp64, value, truth) <= BUDGET, case
    else:
        assert ulps(mp64, got, _reduced_truth(truths, reduction)) <= BUDGET, cases


wide_logit = st.one_of(logit, st.floats(-2500.0, -700.0), st.floats(700.0, 2500.0))


@SETTINGS
@given(cases=st.lists(st.tuples(wide_logit, tiny_target, huge_or_tiny_weight, huge_or_tiny_weight),
                      min_size=1, max_size=4),
       reduction=st.sampled_from(["none", "sum", "mean"]))
def test_bce_with_logits_weights_from_1e_minus_300_to_1e300_against_mpmath(mp64, cases, reduction):
    xs, ys, ws, pws = (list(column) for column in zip(*cases))
    with mpmath.workprec(PREC):
        truths = [w * true_bce_logits(x, y, pw) for x, y, w, pw in cases]
    got = binary_cross_entropy_with_logits(xs, ys, weight=ws, pos_weight=pws, reduction=reduction)
    if reduction == "none":
        for value, truth, case in zip(got, truths, cases):
            assert ulps(mp64, value, truth) <= BUDGET, case
    else:
        assert ulps(mp64, got, _reduced_truth(truths, reduction)) <= BUDGET, cases


@SETTINGS
@given(rows=st.lists(st.lists(st.one_of(st.floats(-30.0, 30.0), st.floats(-2500.0, -700.0)), min_size=3, max_size=3),
                     min_size=1, max_size=3),
       weight=st.lists(huge_or_tiny_weight, min_size=3, max_size=3), data=st.data(),
       reduction=st.sampled_from(["none", "sum", "mean"]))
def test_cross_entropy_weights_from_1e_minus_300_to_1e300_against_mpmath(mp64, rows, weight, data, reduction):
    targets = [data.draw(st.integers(0, 2)) for _ in rows]
    with mpmath.workprec(PREC):
        truths = [weight[k] * -true_log_softmax(row)[k] for row, k in zip(rows, targets)]
    got = cross_entropy(rows, targets, weight=weight, reduction=reduction)
    if reduction == "none":
        for value, truth in zip(got, truths):
            assert ulps(mp64, value, truth) <= BUDGET, (rows, targets)
    else:
        count = mpmath.fsum(weight[k] for k in targets)  # the mean divides by the total weight of the targets
        assert ulps(mp64, got, _reduced_truth(truths, reduction, count)) <= BUDGET, (rows, targets)


# -- distillation: what is reduced, and by what ------------------------------------------------

DISTILL_STUDENT = [[1.0, 2.0, 0.5, -1.0], [0.0, -1.0, 3.0, 2.0], [-2.0, 0.25, 0.0, 4.0]]
DISTILL_TEACHER = [[0.5, 2.5, 0.0, 1.0], [1.0, -2.0, 2.0, 0.0], [-1.0, 0.5, 0.125, 3.0]]


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0, 7.0])
def test_distillation_of_one_row_is_the_t_squared_sum_over_classes(mp64, temperature):
    student, teacher = DISTILL_STUDENT[0], DISTILL_TEACHER[0]
    t = temperature
    with mpmath.workprec(PREC):
        lp, lq = true_log_softmax(teacher, t), true_log_softmax(student, t)
        truth = mpmath.mpf(t) ** 2 * mpmath.fsum(mpmath.exp(a) * (a - b) for a, b in zip(lp, lq))
    ours = distillation_loss(student, teacher, t)
    assert ulps(mp64, ours, truth) <= BUDGET
    log_q, p = F.log_softmax(tensor(student) / t, dim=-1), F.softmax(tensor(teacher) / t, dim=-1)
    summed = F.kl_div(log_q, p, reduction="sum").item() * t * t
    as_batch_of_one = F.kl_div(log_q[None], p[None], reduction="batchmean").item() * t * t
    assert summed == pytest.approx(ours, rel=1e-13) and as_batch_of_one == pytest.approx(ours, rel=1e-13)
    # torch's batchmean of the 1-D tensor divides by its length C: not this loss
    assert F.kl_div(log_q, p, reduction="batchmean").item() * t * t == pytest.approx(ours / 4, rel=1e-13)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0, 7.0])
def test_distillation_of_a_batch_is_the_sum_over_batch_and_classes_over_n(mp64, temperature):
    t = temperature
    with mpmath.workprec(PREC):
        total = mpmath.fsum(true_distillation(s, q, t) for s, q in zip(DISTILL_STUDENT, DISTILL_TEACHER))
    ours = distillation_loss(DISTILL_STUDENT, DISTILL_TEACHER, t)
    assert ulps(mp64, ours, total / 3) <= BUDGET  # divided by N = 3, not by N C = 12
    theirs = F.kl_div(F.log_softmax(tensor(DISTILL_STUDENT) / t, dim=-1),
                      F.softmax(tensor(DISTILL_TEACHER) / t, dim=-1), reduction="batchmean").item() * t * t
    assert theirs == pytest.approx(ours, rel=1e-12)
    # a batch of one is the row itself
    assert distillation_loss(DISTILL_STUDENT[:1], DISTILL_TEACHER[:1], t) == distillation_loss(
        DISTILL_STUDENT[0], DISTILL_TEACHER[0], t)
