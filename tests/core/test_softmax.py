"""softmax, log_softmax, logsumexp, the Jacobian and probabilities against mpmath.

Truth is computed in mpmath at 800 bits from the exact inputs (x/T exact too), and
errors are in ULPs of the truth's binade, with the ``mp64`` helpers of conftest.py:
|y - t| / ulp(t), subnormal spacing below the smallest normal. The budget of the three
along-an-axis functions is 2 ULP, and an element whose truth is below half the
smallest subnormal must be 0.0 exactly.
"""

import math

import mpmath
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refact
from refact import log_softmax, logsumexp, probabilities, softmax, softmax_jacobian, softmax_vjp

SEED = [1, 2, 3, 4, -3, -4, -2, -10000]
BUDGET = 2.0  # log_softmax and logsumexp
SOFTMAX_BUDGET = 1.0
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
ACCURACY = settings(SETTINGS, max_examples=400)
HALF_SUBNORMAL = mpmath.ldexp(1, -1075)


# -- truth ----------------------------------------------------------------------------------

def ulps(mp64, y, truth):
    """mp64.ulp_error, also for a truth that rounds beyond the largest float (then y = +-inf)."""
    if math.isinf(mp64.nearest(truth)):
        return 0.0 if y == mp64.nearest(truth) else math.inf
    return mp64.ulp_error(y, truth)


def true_lane(row, temperature=1.0):
    """(softmax, log_softmax, logsumexp) of a lane with a finite maximum, in mpmath."""
    with mpmath.workprec(800):
        t = mpmath.mpf(temperature)
        scaled = [mpmath.mpf(v) / t for v in row if v != -math.inf]
        top = max(scaled)
        others = list(scaled)
        others.remove(top)  # the maximum's own term is 1: summing it would swamp e^-741
        # e^-100000 is nothing next to 1 at 800 bits, and mpmath is slow to compute it
        rest = mpmath.fsum(mpmath.exp(v - top) for v in others if v - top > -100000)
        # differences from the maximum first: top + 0.69 would be lost at 1e300
        logs = [-mpmath.inf if v == -math.inf else (mpmath.mpf(v) / t - top) - mpmath.log1p(rest)
                for v in row]
        probs = [mpmath.exp(v) if v > -100000 else mpmath.mpf(0) for v in logs]
        return probs, logs, top + mpmath.log1p(rest)


def check_lane_accuracy(mp64, row, temperature=1.0):
    probs, logs, log_norm = true_lane(row, temperature)
    got_probs = softmax(row, temperature=temperature)
    got_logs = log_softmax(row, temperature=temperature)
    for y, t in zip(got_probs, probs):
        if t < HALF_SUBNORMAL:
            assert y == 0.0, (row, temperature, y, t)
        else:
            assert ulps(mp64, y, t) <= SOFTMAX_BUDGET, (row, temperature, y, mpmath.nstr(t, 20))
    for y, t in zip(got_logs, logs):
        if t == -mpmath.inf:
            assert y == -math.inf
        else:
            assert ulps(mp64, y, t) <= BUDGET, (row, temperature, y, mpmath.nstr(t, 20))
    if temperature == 1.0:
        y = logsumexp(row)
        assert ulps(mp64, y, log_norm) <= BUDGET, (row, y, mpmath.nstr(log_norm, 20))


# -- strategies: wide dynamic range, a few huge values, optionally infinities ----------------

moderate = st.floats(-1e4, 1e4)
small = st.floats(-40.0, 40.0)
huge = st.sampled_from([1e300, -1e300, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324, -2e-310])
finite_element = st.one_of(moderate, small, small, huge)
finite_rows = st.lists(finite_element, min_size=1, max_size=12)
temperatures = st.one_of(st.just(1.0), st.sampled_from([0.5, 3.0, 7.25, 1e-3, 1e3]),
                         st.floats(0.01, 100.0))


@ACCURACY
@given(row=finite_rows)
def test_accuracy_at_temperature_one(mp64, row):
    check_lane_accuracy(mp64, row)


@ACCURACY
@given(row=finite_rows, temperature=temperatures)
def test_accuracy_with_temperature_is_that_of_the_exact_quotient(mp64, row, temperature):
    check_lane_accuracy(mp64, row, temperature)


@ACCURACY
@given(row=st.lists(small, min_size=2, max_size=6), centre=st.floats(-30.0, 30.0))
def test_near_ties_and_moderate_rows(mp64, row, centre):
    # values packed around one centre: many terms of similar size, the sum's rounding matters
    check_lane_accuracy(mp64, [centre + v * 1e-3 for v in row])


def test_subnormal_and_nearly_subnormal_outputs(mp64):
    # e^-708.5 ... e^-744 next to a maximum of 0: results around and below 2**-1022
    row = [0.0, -708.5, -709.1, -720.0, -740.25, -744.4, -746.0, 0.0]
    check_lane_accuracy(mp64, row)
    assert 0.0 < softmax(row)[5] < 2.2250738585072014e-308


def test_one_element_against_many_equal_ones(mp64):
    # e^a and e^b rounded with half-ULP errors of opposite signs, 127 times over in the
    # sum: a softmax from rounded exponentials is 2.9 ULP off at the first element.
    row = [-27.032147505172947] + [-27.725615041622213] * 127
    check_lane_accuracy(mp64, row)
    first = true_lane(row)[0][0]
    assert ulps(mp64, softmax(row)[0], first) <= 0.5


@ACCURACY
@given(row=st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=10))
def test_logsumexp_of_log_probabilities_is_tiny_and_accurate(mp64, row):
    # logsumexp(log_softmax(x)) is 0 up to the roundings of log_softmax: a hard cancellation
    logs = log_softmax(row)
    truth = true_lane(logs)[2]
    assert ulps(mp64, logsumexp(logs), truth) <= BUDGET


@SETTINGS
@given(row=finite_rows, infinities=st.lists(st.sampled_from([math.inf, -math.inf]), min_size=1, max_size=3),
       random=st.randoms())
def test_rows_with_infinities_follow_the_limits(mp64, row, infinities, random):
    row = list(row)
    for v in infinities:
        row.insert(random.randrange(len(row) + 1), v)
    k = row.count(math.inf)
    probs, logs = softmax(row), log_softmax(row)
    if k == 1:
        assert probs == [1.0 if v == math.inf else 0.0 for v in row]
        assert logs == [0.0 if v == math.inf else -math.inf for v in row]
        assert logsumexp(row) == math.inf
    elif k > 1:  # no limit
        assert all(math.isnan(v) for v in probs + logs)
        assert logsumexp(row) == math.inf
    else:  # only -inf added to a finite row: those entries are 0 / -inf, the others as accurate
        assert [p for p, v in zip(probs, row) if v == -math.inf] == [0.0] * row.count(-math.inf)
        assert [lp for lp, v in zip(logs, row) if v == -math.inf] == [-math.inf] * row.count(-math.inf)
        check_lane_accuracy(mp64, row)


# -- the seed's example ---------------------------------------------------------------------

def test_seed_softmax_underflows_to_exactly_zero_and_is_accurate_elsewhere(mp64):
    result = softmax(SEED)
    probs, _, _ = true_lane(SEED)
    assert probs[-1] < mpmath.mpf("1.35e-4345") and probs[-1] > mpmath.mpf("1.33e-4345")
    assert result[-1] == 0.0
    assert all(ulps(mp64, y, t) <= BUDGET for y, t in zip(result[:-1], probs[:-1]))


def test_seed_log_softmax_keeps_the_true_value_at_minus_10000(mp64):
    _, logs, log_norm = true_lane(SEED)
    result = log_softmax(SEED)
    assert result[-1] == -10004.442586111712
    assert ulps(mp64, result[-1], logs[-1]) <= 0.5
    assert all(ulps(mp64, y, t) <= BUDGET for y, t in zip(result, logs))
    assert ulps(mp64, logsumexp(SEED), log_norm) <= 0.5


def test_hard_cases_named_in_the_design(mp64):
    # large gaps, subnormal results, a huge common offset, and temperature making x/T inexact
    for row in ([0.0, -745.0], [0.0, -744.4, -708.5], [1e308, 1e308 * 0.5, -1e308],
                [-1e300, -1e300 - 1e284], [700.0, -700.0, 0.0], [709.0, 709.0, 709.0],
                [-1000.0, -1000.5, -1745.0], [2.0 ** -1074, 0.0, -(2.0 ** -1074)]):
        check_lane_accuracy(mp64, row)
    for temperature in (3.0, 0.1, 1e-300, 1e300):
        check_lane_accuracy(mp64, [1.0, 2.0, -7.5, 1e-3], temperature)


# -- special values, empty input and the conventions -----------------------------------------

def test_all_minus_inf_lane_is_nan_for_softmax_and_minus_inf_for_logsumexp():
    row = [-math.inf, -math.inf]
    assert all(math.isnan(v) for v in softmax(row) + log_softmax(row))
    assert logsumexp(row) == -math.inf


def test_a_nan_makes_its_lane_nan_and_only_its_lane():
    result = softmax([[0.0, math.nan], [0.0, 0.0]])
    assert all(math.isnan(v) for v in result[0]) and result[1] == [0.5, 0.5]
    assert math.isnan(logsumexp([math.nan, math.inf]))
    assert all(math.isnan(v) for v in log_softmax([math.inf, math.nan]))


def test_one_plus_inf_entry_takes_the_mass_and_several_have_no_limit():
    assert softmax([1.0, math.inf]) == [0.0, 1.0]
    assert log_softmax([1.0, math.inf]) == [-math.inf, 0.0]
    assert all(math.isnan(v) for v in softmax([math.inf, -math.inf, math.inf, 5.0]))
    assert all(math.isnan(v) for v in log_softmax([math.inf, math.inf]))
    assert logsumexp([math.inf, math.inf]) == math.inf


def test_log_softmax_at_the_maximum_is_minus_zero_when_the_rest_underflows():
    # -log1p(e**-1.8e308): negative, below every float
    for row in ([1.7976931348623157e308, 0.0], [0.0, -1e300, -math.inf]):
        top = log_softmax(row)[0]
        assert top == 0.0 and math.copysign(1.0, top) == -1.0
    alone = log_softmax([3.0, -math.inf])[0]  # exactly log 1
    assert alone == 0.0


def test_empty_input_and_empty_lanes():
    assert softmax([]) == [] and log_softmax([]) == []
    assert logsumexp([]) == -math.inf  # the log of an empty sum
    assert logsumexp([[], []]) == [-math.inf, -math.inf]
    assert softmax([[], []]) == [[], []]


def test_signed_zero_and_single_element_lanes():
    assert softmax([-0.0]) == [1.0]
    assert log_softmax([5.0]) == [0.0] and math.copysign(1.0, log_softmax([5.0])[0]) == 1.0
    assert logsumexp([-3.5]) == -3.5


def test_large_finite_values_do_not_overflow():
    assert softmax([1e308, 1e308]) == [0.5, 0.5]
    assert logsumexp([1.7976931348623157e308, 1.7976931348623157e308]) == 1.7976931348623157e308
    assert log_softmax([1.7976931348623157e308, -1.7976931348623157e308]) == [0.0, -math.inf]


# -- axes and nesting -----------------------------------------------------------------------

def test_axis_selects_the_lanes_and_logsumexp_drops_it():
    x = [[[1.0, 2.0, 3.0], [4.0, 5.0, -6.0]], [[0.5, -0.5, 9.0], [1e3, -1e3, 0.0]]]
    for axis in range(3):
        result = softmax(x, axis=axis)
        reduced = logsumexp(x, axis=axis)
        # pull every lane out by hand and compare with the 1-D results
        if axis == 0:
            for j in range(2):
                for k in range(3):
                    lane = [x[i][j][k] for i in range(2)]
                    assert [result[i][j][k] for i in range(2)] == softmax(lane)
                    assert reduced[j][k] == logsumexp(lane)
        elif axis == 1:
            for i in range(2):
                for k in range(3):
                    lane = [x[i][j][k] for j in range(2)]
                    assert [result[i][j][k] for j in range(2)] == softmax(lane)
                    assert reduced[i][k] == logsumexp(lane)
        else:
            for i in range(2):
                for j in range(2):
                    assert result[i][j] == softmax(x[i][j])
                    assert reduced[i][j] == logsumexp(x[i][j])
    assert softmax(x, axis=-1) == softmax(x, axis=2)
    assert log_softmax(x, axis=-3) == log_softmax(x, axis=0)


def test_sequences_of_any_kind_and_ints_are_accepted():
    assert softmax((0, 0)) == [0.5, 0.5]
    assert softmax([(0, 0), range(2)]) == [[0.5, 0.5], softmax([0.0, 1.0])]
    assert logsumexp(range(3)) == logsumexp([0.0, 1.0, 2.0])


# -- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("function", [softmax, log_softmax, logsumexp])
def test_bad_input_is_rejected_with_a_clear_message(function):
    with pytest.raises(ValueError, match=rf"{function.__name__}\(\): needs at least a 1-D"):
        function(3.0)
    with pytest.raises(ValueError, match=r"ragged"):
        function([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"axis 2 is out of range for 2-D"):
        function([[1.0, 2.0]], axis=2)
    with pytest.raises(ValueError, match=r"axis -2 is out of range for 1-D"):
        function([1.0, 2.0], axis=-2)
    with pytest.raises(TypeError, match=r"axis must be an integer"):
        function([1.0, 2.0], axis=0.0)
    with pytest.raises(TypeError, match=r"x at index \[1\] must be a real number, not str"):
        function([1.0, "2"])
    with pytest.raises(TypeError, match=r"not bool"):
        function([1.0, True])


@pytest.mark.parametrize("function", [softmax, log_softmax])
@pytest.mark.parametrize("temperature", [0.0, -1.0, math.inf, math.nan])
def test_temperature_must_be_finite_and_positive(function, temperature):
    with pytest.raises(ValueError, match=rf"{function.__name__}\(\): temperature must be finite and > 0"):
        function([1.0, 2.0], temperature=temperature)


def test_jacobian_and_vjp_take_one_vector():
    with pytest.raises(ValueError, match=r"softmax_jacobian\(\): x must be a 1-D sequence, got 2-D"):
        softmax_jacobian([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"softmax_jacobian\(\): x must be a 1-D sequence, got a scalar"):
        softmax_jacobian(1.0)
    with pytest.raises(ValueError, match=r"softmax_vjp\(\): x and v must have the same length, got 2 and 3"):
        softmax_vjp([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"softmax_vjp\(\): v must be a 1-D sequence"):
        softmax_vjp([1.0, 2.0], 1.0)


def test_probabilities_wants_a_boolean_switch():
    with pytest.raises(TypeError, match=r"probabilities\(\): multi_label must be True or False"):
        probabilities([1.0, 2.0], multi_label="yes")
    with pytest.raises(ValueError, match=r"probabilities\(\): needs at least a 1-D"):
        probabilities(1.0)


# -- properties -----------------------------------------------------------------------------

@SETTINGS
@given(st.lists(st.one_of(moderate, small), min_size=1, max_size=30))
def test_softmax_sums_to_one_within_a_fixed_bound(row):
    # every element is within 2 ULP <= 2 * 2**-52 of itself, so the exact sum of the
    # results is within 2**-51 of 1 whatever the length; fsum adds at most half an ULP.
    assert abs(math.fsum(softmax(row)) - 1.0) <= 2.0 ** -51 + 2.0 ** -53


@SETTINGS
@given(ints=st.lists(st.integers(-2000, 2000), min_size=1, max_size=10), shift=st.integers(-10 ** 6, 10 ** 6))
def test_shift_invariance(mp64, ints, shift):
    # x/8 + shift is exact, so the shifted row has exactly the same softmax
    row = [v / 8 for v in ints]
    shifted = [v + shift for v in row]
    probs, logs, _ = true_lane(row)
    for y, t in zip(softmax(shifted), probs):
        assert y == 0.0 if t < HALF_SUBNORMAL else ulps(mp64, y, t) <= BUDGET
    for y, t in zip(log_softmax(shifted), logs):
        assert ulps(mp64, y, t) <= BUDGET


@SETTINGS
@given(z=st.one_of(st.floats(-800.0, 800.0), st.floats(-40.0, 40.0)))
def test_two_class_softmax_is_the_sigmoid(mp64, z):
    with mpmath.workprec(200):
        truth = 1 / (1 + mpmath.exp(-mpmath.mpf(z)))
    two_class = softmax([0.0, z])[1]
    if truth < HALF_SUBNORMAL:
        assert two_class == 0.0 == refact.sigmoid(z)
        return
    assert ulps(mp64, two_class, truth) <= BUDGET
    assert abs(two_class - refact.sigmoid(z)) <= 2 * math.ulp(refact.sigmoid(z))


def _entropy(probs):
    return -math.fsum(p * math.log(p) for p in probs if p > 0.0)


@SETTINGS
@given(st.lists(st.floats(-10.0, 10.0), min_size=2, max_size=8).filter(lambda r: max(r) - min(r) > 0.5))
def test_entropy_grows_with_temperature(row):
    # Strictly increasing in exact arithmetic; in floats it can stall where the small
    # probabilities no longer register (two tied maxima at T = 0.1 and 0.3 both give log 2).
    entropies = [_entropy(softmax(row, temperature=t)) for t in (0.1, 0.3, 1.0, 3.0, 10.0)]
    assert all(a <= b + 1e-15 for a, b in zip(entropies, entropies[1:])), entropies
    assert entropies[0] < entropies[-1] < math.log(len(row))


# -- the derivatives ------------------------------------------------------------------------

@SETTINGS
@given(row=st.lists(st.floats(-50.0, 50.0), min_size=1, max_size=6))
def test_jacobian_against_mpmath(mp64, row):
    probs, _, _ = true_lane(row)
    jacobian = softmax_jacobian(row)
    for i, s_i in enumerate(probs):
        for j, s_j in enumerate(probs):
            truth = s_i * ((1 if i == j else 0) - s_j)
            if abs(truth) < HALF_SUBNORMAL:
                assert abs(jacobian[i][j]) <= 2.0 ** -1074
            else:
                assert ulps(mp64, jacobian[i][j], truth) <= 4.0, (row, i, j)
        assert jacobian[i] == [jacobian[k][i] for k in range(len(row))]  # symmetric


def test_jacobian_diagonal_in_saturation_is_not_zero(mp64):
    # s_0 = 1 - 4.2e-18: 1 - s_0 rounds to 0, the sum of the other probabilities does not
    jacobian = softmax_jacobian([0.0, -40.0])
    probs, _, _ = true_lane([0.0, -40.0])
    assert ulps(mp64, jacobian[0][0], probs[0] * probs[1]) <= 2.0
    assert ulps(mp64, jacobian[1][1], probs[0] * probs[1]) <= 2.0
    assert 1.0 - softmax([0.0, -40.0])[0] == 0.0  # what the naive diagonal would have used


VJP_BUDGET = 1.0  # softmax_vjp's stated budget


def true_vjp(x, v):
    """s * (v - <s, v>) in mpmath, as (v_i - c) - sum_j s_j (v_j - c) with c = v at the maximum:
    exact differences, so that no working precision is lost to a cancellation 1e-300 deep."""
    probs, _, _ = true_lane(x)
    with mpmath.workprec(800):
        c = mpmath.mpf(v[x.index(max(x))])
        dot = mpmath.fsum(s * (mpmath.mpf(w) - c) for s, w in zip(probs, v))
        return [s * ((mpmath.mpf(w) - c) - dot) for s, w in zip(probs, v)]


def check_vjp(mp64, x, v):
    for i, (got, truth) in enumerate(zip(softmax_vjp(x, v), true_vjp(x, v))):
        if abs(truth) < HALF_SUBNORMAL:
            assert got == 0.0, (x, v, i, got)
        else:
            assert ulps(mp64, got, truth) <= VJP_BUDGET, (x, v, i, got, mpmath.nstr(truth, 20))


@SETTINGS
@given(st.lists(st.tuples(st.floats(-30.0, 30.0), st.floats(-10.0, 10.0)), min_size=1, max_size=8))
def test_vjp_is_the_jacobian_applied_to_v(mp64, pairs):
    check_vjp(mp64, [a for a, _ in pairs], [b for _, b in pairs])


def _nearly_constant(draw, n):
    c = draw(st.floats(-1e3, 1e3))
    return [c + draw(st.floats(-1.0, 1.0)) * draw(st.sampled_from([1e-12, 1e-15, 1e-300])) for _ in range(n)]


@st.composite
def adversarial_vjp(draw):
    """(x, v) where v_i - <s, v> cancels or the scales are extreme (the naive formula was
    up to 9e15 ULP off on these)."""
    n = draw(st.integers(2, 8))
    kind = draw(st.sampled_from(["v nearly constant", "v one large entry", "s nearly one-hot",
                                 "huge logits", "tiny logits", "subnormal probabilities", "huge v"]))
    x = [draw(st.floats(-5.0, 5.0)) for _ in range(n)]
    v = [draw(st.floats(-1.0, 1.0)) for _ in range(n)]
    if kind == "v nearly constant":
        v = _nearly_constant(draw, n)
    elif kind == "v one large entry":
        v[draw(st.integers(0, n - 1))] = draw(st.sampled_from([1e10, -1e15, 1e300, -1.7e308]))
    elif kind == "s nearly one-hot":
        x[0] = draw(st.floats(30.0, 700.0))
    elif kind == "huge logits":
        x = [draw(st.floats(-1.0, 1.0)) * 1e5 for _ in range(n)]
        x[1] = x[0] + draw(st.floats(-20.0, 20.0))
    elif kind == "tiny logits":
        x = [draw(st.floats(-1.0, 1.0)) * 1e-300 for _ in range(n)]
    elif kind == "subnormal probabilities":
        x = [0.0] + [draw(st.floats(-1500.0, -700.0)) for _ in range(n - 1)]
    else:
        v = [w * draw(st.sampled_from([1e300, 1e-300, 5e-324])) for w in v]
    return x, v


@ACCURACY
@given(adversarial_vjp())
def test_vjp_within_its_budget_on_adversarial_rows(mp64, case):
    check_vjp(mp64, *case)


@pytest.mark.parametrize("x, v", [
    ([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]),                 # v_1 is the mean exactly: 0
    ([40.0, 0.0], [1.0, 1.0 + 2.0 ** -30]),             # s_0 ~ 1: the naive v_0 - <s, v> is 0
    ([0.0, -1000.0], [0.0, 1.7e308]),                   # s_1 ~ e^-1000 below the floats, v_1 huge
    ([0.0, -745.0, -720.0], [1.0, -1.0, 0.5]),          # subnormal results
    ([1e-300, -1e-300, 0.0], [1e-300, 2e-300, 0.0]),
    ([3.0, 1.0, -2.0], [5.0, 5.0 + 2.0 ** -50, 5.0 - 2.0 ** -51]),
])
def test_vjp_on_cancelling_and_extreme_rows(mp64, x, v):
    check_vjp(mp64, x, v)


def test_vjp_where_the_naive_formula_cancels():
    # s = softmax([40, 0]), v = [1, 1 + 2**-30]: <s, v> rounds to 1, so s_0 (v_0 - <s, v>) was 0;
    # the truth is -s_0 s_1 2**-30, and the vjp sums to 0
    got = softmax_vjp([40.0, 0.0], [1.0, 1.0 + 2.0 ** -30])
    assert got == [-3.9565882229167864e-27, 3.9565882229167864e-27]
    assert softmax_vjp([1.0, 2.0], [0.0, 0.0]) == [0.0, 0.0]
    nan = softmax_vjp([0.0, math.nan], [1.0, 2.0])
    assert all(math.isnan(value) for value in nan)
    assert softmax_vjp([0.0, math.inf], [1.0, 2.0]) == [0.0, 0.0]  # s one-hot: v_1 - v_1


# -- probabilities: one of C classes, or independent labels -----------------------------------

def test_multi_class_rows_sum_to_one_and_multi_label_rows_need_not():
    logits = [[5.0, 5.0, -1.0], [0.0, 0.0, 0.0]]
    classes = probabilities(logits)
    labels = probabilities(logits, multi_label=True)
    assert len(classes) == len(labels) == 2 and all(len(r) == 3 for r in classes + labels)
    assert all(abs(math.fsum(r) - 1.0) <= 2.0 ** -51 for r in classes)
    assert math.fsum(labels[0]) > 1.9 and math.fsum(labels[1]) == 1.5
    assert labels == [[refact.sigmoid(v) for v in row] for row in logits]
    assert classes == softmax(logits, axis=-1)
    assert probabilities(-800.0, multi_label=True) == 0.0  # a single label is fine


# -- the grid path: lanes of spread <= 64 at temperature 1, within 0.62 ULP ------------------

GRID_BOUND = 0.62  # argued in refact.softmax._grid_lane
GRID_SETTINGS = settings(SETTINGS, max_examples=200)


def check_grid_lane(mp64, row):
    """The lane takes the grid path, and every result is within GRID_BOUND of the truth."""
    from refact.softmax import _grid_lane

    got = softmax(row)
    assert got == _grid_lane(row, max(row))  # the path under test, not the general one
    probs, _, _ = true_lane(row)
    for y, t in zip(got, probs):
        assert ulps(mp64, y, t) <= GRID_BOUND, (row, y, mpmath.nstr(t, 20))


centres = st.one_of(st.floats(-100.0, 100.0), st.floats(-(2.0 ** 39), 2.0 ** 39),
                    st.sampled_from([0.0, 1e-300, -1e-300, 30.0, -1e6, 2.0 ** 39, -(2.0 ** 39)]))


@GRID_SETTINGS
@given(centre=centres, gaps=st.lists(st.floats(0.0, 64.0), min_size=1, max_size=40))
def test_grid_path_random_lanes(mp64, centre, gaps):
    row = [centre - g for g in gaps]
    if max(row) - min(row) <= 64.0:
        check_grid_lane(mp64, row)


@GRID_SETTINGS
@given(a=st.floats(-64.0, 0.0), b=st.floats(-64.0, 0.0), count=st.integers(1, 130))
def test_grid_path_one_element_against_many_equal_ones(mp64, a, b, count):
    # the rows where the exponentials' own errors, all of one sign in the sum, count most
    check_grid_lane(mp64, [a] + [b] * count)


@GRID_SETTINGS
@given(centre=st.integers(-(2 ** 20), 2 ** 20),
       steps=st.lists(st.integers(0, 64 * 128), min_size=1, max_size=30))
def test_grid_path_on_the_grid_and_half_way_between(mp64, centre, steps):
    # multiples of 1/128: every remainder r is 0 or +-1/128, the ends of the table's cells
    check_grid_lane(mp64, [(centre - s) / 128.0 for s in steps])


def test_grid_path_adversarial_rows(mp64):
    rows = [
        # glibc's rounded exponentials, an exact sum and one rounding put the last element
        # 2.47 ULP off here
        [0.0] + [-0.6930403107549284] * 254 + [-13.86289426097275],
        [-27.032147505172947] + [-27.725615041622213] * 127,
        [5.0, 5.0 - 64.0], [0.0, -64.0, -32.0], [2.0 ** 39, 2.0 ** 39 - 64.0],
        [60.0, 1e-300, -3.0], [1.0 / 256, -1.0 / 256, 1e-310],
        [0.0] * 4 + [-60.0],  # 1/4 (1 - e^-60/4): just below a power of two
        [0.0] * 1024 + [-1e-9],  # S just above a power of two
        [3.0, 3.0], [7.5] * 3, [-0.0, 0.0],
    ]
    for row in rows:
        check_grid_lane(mp64, row)


def test_grid_table_rows_are_the_exponentials_of_the_grid(mp64):
    from refact.softmax import _GRID_TABLE

    for j in [*range(0, len(_GRID_TABLE), 97), len(_GRID_TABLE) - 1]:
        a, head, low, whole = _GRID_TABLE[j]
        assert a == -j / 64
        assert math.frexp(head)[0] * 2 ** 26 == int(math.frexp(head)[0] * 2 ** 26)  # 26 bits
        with mpmath.workprec(200):
            truth = mpmath.exp(mpmath.mpf(-j) / 64)
            assert abs(mpmath.mpf(head) + low - truth) < truth * mpmath.ldexp(1, -80), j
        assert whole == mp64.nearest(truth), j


def test_lanes_off_the_grid_path_keep_the_general_bound(mp64):
    # spread above 64, a huge maximum, or a temperature: the general path, within 1 ULP
    for row in ([0.0, -64.0 - 2.0 ** -40], [0.0, -100.0, -3.0], [2.0 ** 41, 2.0 ** 41 - 1.0]):
        check_lane_accuracy(mp64, row)
    check_lane_accuracy(mp64, [1.0, 2.0, -7.5], 1.5)
