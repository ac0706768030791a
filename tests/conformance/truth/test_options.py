"""The catalog's options and the oracle's truth with them, against values computed by
hand in mpmath (at 200 bits, far past any format) from the documented formulas."""

import math

import mpmath
import pytest

from refact.conformance.truth.catalog import REDUCTIONS, get_function
from refact.conformance.truth.oracle import option_truth

INF = math.inf


def log_softmax(row):
    with mpmath.workdps(60):
        xs = [mpmath.mpf(x) for x in row]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in xs if x != -INF))
        return [x - lse if x != -INF else -mpmath.inf for x in xs]


def value(t, i=0):
    return t.values[i][0][0]


def close(got, want, rel=2.0 ** -50):
    return got == pytest.approx(float(want), rel=rel)


def test_declared_options_match_the_core_keywords():
    declared = {name: [o.name for o in get_function(name).options] for name in (
        "cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits",
        "softmax", "log_softmax", "logit")}
    assert declared == {
        "cross_entropy": ["target", "weight", "ignore_index", "label_smoothing", "reduction"],
        "binary_cross_entropy": ["weight", "reduction"],
        "binary_cross_entropy_with_logits": ["weight", "pos_weight", "reduction"],
        "softmax": ["temperature"], "log_softmax": ["temperature"], "logit": ["eps"]}
    assert get_function("cross_entropy").option("reduction").values == REDUCTIONS
    assert get_function("cross_entropy").option("label_smoothing").edges == (0.0, 1.0)
    assert get_function("sigmoid").options == ()
    with pytest.raises(ValueError, match="no option 'smoothing'"):
        get_function("cross_entropy").option("smoothing")


ROWS = [((1.0, 2.0, 3.0, 4.0), 2), ((0.0, -1.0, -INF, 5.0), 3), ((0.5, 0.25, 0.0, -2.0), 0)]


def nll(row, k):
    return -log_softmax(row)[k]


def test_label_smoothing_is_one_minus_eps_q_plus_eps_over_c():
    t = option_truth("cross_entropy", [ROWS[0]], {"label_smoothing": 0.25}, "float64")
    row, k = ROWS[0]
    lq = log_softmax(row)
    want = 0.75 * -lq[k] + 0.25 / 4 * -mpmath.fsum(lq)
    assert close(value(t), want)
    # a -inf logit meets eps / C > 0 of target mass: the loss is infinite
    assert value(option_truth("cross_entropy", [ROWS[1]], {"label_smoothing": 0.25}, "float64")) == INF
    # smoothing 1: the uniform target, whatever the class
    full = option_truth("cross_entropy", [ROWS[0]], {"label_smoothing": 1.0}, "float64")
    assert close(value(full), -mpmath.fsum(lq) / 4)


def test_class_weights_multiply_and_the_mean_divides_by_the_target_weights():
    weight = [0.5, 1.0, 2.0, 4.0]
    none = option_truth("cross_entropy", ROWS, {"weight": weight}, "float64")
    terms = [weight[k] * nll(row, k) for row, k in ROWS]
    assert [t[0][0] for t in none.values] == pytest.approx([float(v) for v in terms], rel=2.0 ** -50)
    mean = option_truth("cross_entropy", ROWS, {"weight": weight, "reduction": "mean"}, "float64")
    assert close(value(mean), mpmath.fsum(terms) / (2.0 + 4.0 + 0.5))
    total = option_truth("cross_entropy", ROWS, {"weight": weight, "reduction": "sum"}, "float64")
    assert close(value(total), mpmath.fsum(terms))


def test_ignored_rows_add_zero_and_leave_the_denominator():
    t = option_truth("cross_entropy", ROWS, {"ignore_index": 3, "reduction": "none"}, "float64")
    assert value(t, 1) == 0.0
    mean = option_truth("cross_entropy", ROWS, {"ignore_index": 3, "reduction": "mean"}, "float64")
    assert close(value(mean), (nll(*ROWS[0]) + nll(*ROWS[2])) / 2)
    # with weights and smoothing, torch divides both terms by the weights of the kept targets
    w = [1.0, 2.0, 3.0, 4.0]
    both = option_truth("cross_entropy", ROWS, {"ignore_index": 3, "weight": w,
                                                "label_smoothing": 0.25, "reduction": "mean"}, "float64")
    terms = []
    for row, k in (ROWS[0], ROWS[2]):
        lq = log_softmax(row)
        terms.append(0.75 * w[k] * -lq[k] + 0.25 / 4 * mpmath.fsum(-wc * l for wc, l in zip(w, lq)))
    assert close(value(both), mpmath.fsum(terms) / (w[2] + w[0]))


def test_every_target_ignored_mean_is_nan_and_sum_is_zero():
    rows = [((0.0, 1.0), -100), ((2.0, 1.0), -100)]
    assert math.isnan(value(option_truth("cross_entropy", rows, {"reduction": "mean"}, "float32")))
    assert value(option_truth("cross_entropy", rows, {"reduction": "sum"}, "float32")) == 0.0


def test_probability_targets_skip_zero_mass_at_minus_inf():
    point = ((0.0, -INF, 1.0, 2.0), (0.5, 0.0, 0.25, 0.25))
    t = option_truth("cross_entropy", [point], {"target": "probability"}, "float64")
    lq = log_softmax(point[0])
    want = -(0.5 * lq[0] + 0.25 * lq[2] + 0.25 * lq[3])  # 0 * log 0 = 0: finite
    assert close(value(t), want) and math.isfinite(value(t))
    with pytest.raises(ValueError, match="does not match"):
        option_truth("cross_entropy", [point], {"target": "index"}, "float64")


def test_pos_weight_and_weight_of_the_logit_loss():
    points = [(0.5, 1.0), (-3.0, 0.0), (2.0, 0.25)]
    t = option_truth("binary_cross_entropy_with_logits", points, {"pos_weight": 3.0, "weight": 2.0}, "float64")
    with mpmath.workdps(60):
        def want(x, y):
            s = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
            return -2 * (3 * y * mpmath.log(s) + (1 - y) * mpmath.log(1 - s))
        assert [v[0][0] for v in t.values] == pytest.approx([float(want(*p)) for p in points], rel=2.0 ** -50)
    # pos_weight 0 with y = 1 leaves nothing: exactly 0
    assert value(option_truth("binary_cross_entropy_with_logits", [(-50.0, 1.0)], {"pos_weight": 0.0}, "float32")) == 0.0


def test_weighted_bce_mean_divides_by_n():
    points = [(0.5, 1.0), (0.125, 0.0), (0.75, 0.25)]
    t = option_truth("binary_cross_entropy", points, {"weight": 3.0, "reduction": "mean"}, "float64")
    with mpmath.workdps(60):
        terms = [-(y * mpmath.log(p) + (1 - y) * mpmath.log(1 - mpmath.mpf(p))) for p, y in points]
    assert close(value(t), 3 * mpmath.fsum(terms) / 3)


def test_temperature_is_softmax_of_the_exact_quotient():
    t = option_truth("softmax", [((1.0, 2.0, 3.0),)], {"temperature": 1e-3}, "float64")
    with mpmath.workdps(60):
        q = [mpmath.mpf(x) / mpmath.mpf(1e-3) for x in (1.0, 2.0, 3.0)]
        want = [mpmath.exp(v - q[2]) / mpmath.fsum(mpmath.exp(u - q[2]) for u in q) for v in q]
    assert [v[0] for v in t.values[0]] == [float(w) for w in want]  # 2.6e-869 rounds to 0
    huge = option_truth("log_softmax", [((1.0, 2.0, 3.0),)], {"temperature": 1e3}, "float64")
    assert huge.values[0][0][0] == pytest.approx(float(log_softmax([1e-3, 2e-3, 3e-3])[0]), rel=2.0 ** -50)
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        option_truth("softmax", [((1.0, 2.0),)], {"temperature": 0.0}, "float64")


def test_logit_eps_clamps_exactly():
    eps = 2.0 ** -20
    t = option_truth("logit", [(0.0,), (2.0 ** -30,), (0.25,), (1.0,)], {"eps": eps}, "float64")
    with mpmath.workdps(60):
        low = float(mpmath.log(eps) - mpmath.log1p(-eps))
    assert [v[0][0] for v in t.values] == [low, low, float(mpmath.log(mpmath.mpf(1) / 3)), -low]
    half = option_truth("logit", [(0.0,), (0.9,)], {"eps": 0.5}, "float64")
    assert [v[0][0] for v in half.values] == [0.0, 0.0]
    zero = option_truth("logit", [(0.0,), (1.0,)], {"eps": 0.0}, "float64")
    assert [v[0][0] for v in zero.values] == [-INF, INF]


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="no option 'pos_weight'"):
        option_truth("cross_entropy", [ROWS[0]], {"pos_weight": 1.0}, "float64")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        option_truth("cross_entropy", [ROWS[0]], {"label_smoothing": 1.5}, "float64")
    with pytest.raises(ValueError, match="weight must hold 4 values"):
        option_truth("cross_entropy", [ROWS[0]], {"weight": [1.0]}, "float64")
    with pytest.raises(ValueError, match="reduction must be"):
        option_truth("cross_entropy", [ROWS[0]], {"reduction": "batchmean"}, "float64")
