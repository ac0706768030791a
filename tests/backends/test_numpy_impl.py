"""Accuracy of refact's numpy implementation against the mpmath oracle, in ULPs.

float64: every function within 2 ulp (``FLOAT64_BUDGET``), except a logsumexp whose
result is below 1e-15 of the row maximum (beyond double-double, as its docstring
states). Narrow formats are computed in float64
and rounded once, so they must be correctly rounded up to double rounding (0.5 ulp plus
a hair). Also: the catalog's special values, dtype preservation, and the correctness of
the float64 -> bfloat16 rounding that ml_dtypes gets wrong.
"""

import doctest
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refact.backends import numpy_impl as ni
from refact.backends.base import numpy_dtype

oracle = pytest.importorskip("refact.conformance.truth.oracle")
from refact.conformance.truth.catalog import FUNCTIONS, ORACLE, UNDEFINED  # noqa: E402
from refact.conformance.numbers.ruler import ulp_error  # noqa: E402

FLOAT64_BUDGET = 2.0
NARROW_BUDGET = 0.5 + 2.0 ** -20      # correctly rounded, up to double rounding
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _in_format(value, fmt):
    """The nearest value of ``fmt`` (a float64 for float64; overflow gives inf)."""
    with np.errstate(over="ignore"):
        return float(np.asarray([value]).astype(numpy_dtype(fmt)).astype(np.float64)[0])


def _truth(function, point, fmt):
    t = oracle.truth(function, point, fmt, cache=False, golden=False)
    return t if t.decided else None


def _check(function, point, values, fmt, budget):
    t = _truth(function, point, fmt)
    if t is None:
        return
    for y, exact in zip(values, t.exacts):
        error = ulp_error(float(y), exact, fmt)
        assert error <= budget, f"{function}{point} in {fmt}: {y!r} is {error:.3f} ulp off"


# -- strategies --------------------------------------------------------------------------

reals = st.one_of(
    st.floats(-40, 40), st.floats(-800, 800),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-1e-300, 1e-300),
)
probabilities = st.one_of(
    st.floats(0, 1), st.floats(0, 1e-250), st.floats(1 - 1e-12, 1),
    st.floats(0.5 - 1e-9, 0.5 + 1e-9), st.floats(0, 2.0 ** -1020),
)
scales = st.sampled_from([0.01, 1.0, 30.0, 700.0])


@st.composite
def rows(draw, size=None):
    n = size if size is not None else draw(st.integers(1, 6))
    scale = draw(scales)
    return [draw(st.floats(-3, 3)) * scale for _ in range(n)]


ELEMENTWISE = {
    "sigmoid": reals, "sigmoid_grad": reals, "log_sigmoid": reals, "softplus": reals,
    "hard_sigmoid": reals, "ndtr": reals, "logit": probabilities, "probit": probabilities,
}
FORMATS = ["float64", "float32", "float16", "bfloat16"]


def _budget(fmt):
    return FLOAT64_BUDGET if fmt == "float64" else NARROW_BUDGET


# -- accuracy ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("function", list(ELEMENTWISE))
def test_elementwise_accuracy(function, fmt):
    @SETTINGS
    @given(ELEMENTWISE[function])
    def check(x):
        x = _in_format(x, fmt)
        y = getattr(ni, function)(np.asarray([x]).astype(numpy_dtype(fmt)))
        assert y.dtype == numpy_dtype(fmt)
        _check(function, (x,), [float(y[0])], fmt, _budget(fmt))

    check()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("function", ["softmax", "log_softmax", "logsumexp"])
def test_row_accuracy(function, fmt):
    @SETTINGS
    @given(rows())
    def check(row):
        row = [_in_format(v, fmt) for v in row]
        y = getattr(ni, function)(np.asarray([row]).astype(numpy_dtype(fmt)))
        values = np.asarray(y, dtype=np.float64)[0]
        values = [float(values)] if function == "logsumexp" else values.tolist()
        if function == "logsumexp" and fmt == "float64":
            t = _truth(function, (tuple(row),), fmt)
            if t is not None and abs(float(t.exact)) < 1e-15 * abs(max(row)):
                return  # cancels beyond double-double (documented)
        _check(function, (tuple(row),), values, fmt, _budget(fmt))

    check()


@pytest.mark.parametrize("fmt", FORMATS)
def test_loss_accuracy(fmt):
    labels = st.sampled_from([0.0, 1.0, 0.5, 0.25, 0.75, 0.3])

    @SETTINGS
    @given(probabilities, reals, labels, rows(), st.data())
    def check(p, x, y, row, data):
        dtype = numpy_dtype(fmt)
        p, x, y = _in_format(p, fmt), _in_format(x, fmt), _in_format(y, fmt)
        row = [_in_format(v, fmt) for v in row]
        bce = ni.binary_cross_entropy(np.asarray([p]).astype(dtype), np.asarray([y]))
        _check("binary_cross_entropy", (p, y), [float(bce[0])], fmt, _budget(fmt))
        bcel = ni.binary_cross_entropy_with_logits(np.asarray([x]).astype(dtype), np.asarray([y]))
        _check("binary_cross_entropy_with_logits", (x, y), [float(bcel[0])], fmt, _budget(fmt))
        target = data.draw(st.integers(0, len(row) - 1))
        ce = ni.cross_entropy(np.asarray([row]).astype(dtype), np.asarray([target]))
        _check("cross_entropy", (tuple(row), target), [float(ce[0])], fmt, _budget(fmt))
        noise = data.draw(st.lists(st.floats(-1, 1), min_size=len(row), max_size=len(row)))
        spread = data.draw(st.sampled_from([0.01, 0.5, 5.0]))
        student = [_in_format(v + spread * n, fmt) for v, n in zip(row, noise)]
        temperature = _in_format(data.draw(st.sampled_from([0.5, 1.0, 2.0, 3.0, 7.25])), fmt)
        dl = ni.distillation_loss(np.asarray([student]).astype(dtype),
                                  np.asarray([row]).astype(dtype), temperature)
        _check("distillation_loss", (tuple(student), tuple(row), temperature), [float(dl[0])],
               fmt, _budget(fmt))

    check()


def test_hard_cases_from_the_design():
    """The hard cases named in DESIGN.md, within budget in float64."""
    cases = [
        ("probit", (1e-300,)), ("probit", (5e-324,)), ("probit", (0.5 + 2.0 ** -53,)),
        ("sigmoid", (-10000.0,)), ("sigmoid", (-745.0,)), ("logit", (0.5 + 2.0 ** -53,)),
        ("logit", (1 - 2.0 ** -53,)), ("ndtr", (-38.4,)), ("log_sigmoid", (-1000.0,)),
    ]
    for function, point in cases:
        y = getattr(ni, function)(np.asarray(point))
        _check(function, point, [float(y[0])], "float64", FLOAT64_BUDGET)
    row = (0.0, -1000.0, -1e-300)
    y = ni.log_softmax(np.asarray([row]))[0]
    _check("log_softmax", (row,), y.tolist(), "float64", FLOAT64_BUDGET)
    for row in [(-0.5011059329862665, -0.8769267471128623), (-0.68618679, -1.69826995)]:
        y = ni.logsumexp(np.asarray([row]))       # cancelling: the double-double path
        _check("logsumexp", (row,), [float(y[0])], "float64", FLOAT64_BUDGET)


# -- special values, formats -------------------------------------------------------------


def _call(function, args):
    fn = getattr(ni, function)
    kind = FUNCTIONS[function].kind
    if kind == "elementwise":
        return np.asarray(fn(np.asarray(args[0]))).tolist()
    if kind == "axis":
        return np.asarray(fn(np.asarray([args[0]]))[0]).tolist()
    if function == "cross_entropy":
        return float(fn(np.asarray([args[0]]), np.asarray([args[1]]))[0])
    if function == "distillation_loss":
        return float(fn(np.asarray([args[0]]), np.asarray([args[1]]), args[2])[0])
    return float(fn(np.asarray(args[0]), np.asarray(args[1])))


def _agrees(value, expected):
    if expected is UNDEFINED:
        return math.isnan(value)
    if expected is ORACLE:
        return math.isfinite(value)
    expected = float(expected)
    return value == expected or (math.isnan(value) and math.isnan(expected))


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_special_values_of_the_catalog(function):
    for special in FUNCTIONS[function].specials:
        got = _call(function, special.args)
        expected = special.expected
        if isinstance(expected, tuple):
            assert all(_agrees(g, e) for g, e in zip(got, expected)), (special, got)
        elif isinstance(got, list):
            assert all(_agrees(g, expected) for g in got), (special, got)
        else:
            assert _agrees(got, expected), (special, got)


@pytest.mark.parametrize("fmt", FORMATS)
def test_dtype_is_preserved(fmt):
    dtype = numpy_dtype(fmt)
    x = np.asarray([[0.5, -1.0], [2.0, 0.25]]).astype(dtype)
    p = np.asarray([[0.5, 0.25], [0.75, 0.125]]).astype(dtype)
    for name in ["sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "hard_sigmoid", "ndtr",
                 "softmax", "log_softmax"]:
        assert getattr(ni, name)(x).dtype == dtype and getattr(ni, name)(x).shape == (2, 2)
    assert ni.logit(p).dtype == dtype and ni.probit(p).dtype == dtype
    assert ni.logsumexp(x).dtype == dtype and ni.logsumexp(x).shape == (2,)
    assert ni.binary_cross_entropy(p, p).dtype == dtype
    assert ni.binary_cross_entropy_with_logits(x, p, pos_weight=2.0).dtype == dtype
    assert ni.cross_entropy(x, np.asarray([0, 1])).shape == (2,)
    assert ni.cross_entropy(x, p, label_smoothing=0.1).dtype == dtype
    assert ni.distillation_loss(x, x[::-1], 2.0).dtype == dtype


def test_bfloat16_rounding_is_correct_where_ml_dtypes_double_rounds():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    just_above_a_tie = 1 + 2.0 ** -8 + 2.0 ** -40       # rounds up to 1 + 2**-7
    via_ml_dtypes = float(np.asarray([just_above_a_tie]).astype(ml_dtypes.bfloat16)[0])
    ours = float(ni._finish(np.asarray([just_above_a_tie]), np.dtype(ml_dtypes.bfloat16))[0])
    assert ours == 1 + 2.0 ** -7
    assert via_ml_dtypes in (1.0, 1 + 2.0 ** -7)  # ml_dtypes goes through float32 first
    ties = np.asarray([1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 2.0 ** -133 * 1.5, 3.5 * 2.0 ** -133])
    rounded = ni._finish(ties, np.dtype(ml_dtypes.bfloat16)).astype(np.float64).tolist()
    assert rounded == [1.0, 1 + 2 * 2.0 ** -7, 2.0 ** -132, 4 * 2.0 ** -133]


def test_docstring_examples():
    result = doctest.testmod(ni, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted and not result.failed


def test_class_index_out_of_range_is_a_value_error():
    with pytest.raises(ValueError, match="out of range"):
        ni.cross_entropy([[0.0, 1.0]], [2])
    with pytest.raises(ValueError, match="out of range"):
        ni.cross_entropy([[0.0, 1.0]], [-1])


def test_logsumexp_of_a_batch_with_cancelling_rows_keeps_its_shape():
    # Rows of log-probabilities take the double-double path; a batch mixing them with
    # ordinary rows once failed to broadcast back.
    import mpmath

    rows = [[-0.5, -0.7], [-1.0, -2.0], [3.0, 1.0]]
    got = ni.logsumexp(np.array(rows))
    assert got.shape == (3,)
    mpmath.mp.prec = 200
    for row, y in zip(rows, got):
        truth = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in row))
        assert abs(mpmath.mpf(float(y)) - truth) <= 2 * abs(truth) * 2.0 ** -52


def test_extreme_rows_follow_the_truth():
    # values from the oracle (mpmath), as in the conformance report that found them
    top = ni.log_softmax(np.array([3.4e38, 0.0], dtype=np.float32))[0]
    assert top == 0.0 and math.copysign(1.0, top) == -1.0  # -log1p(e**-3.4e38) < 0
    assert ni.cross_entropy([[1.7976931348623157e308, 0.0]], [1]).tolist() == [1.7976931348623157e308]
    assert ni.distillation_loss([[0.0, 1.0]], [[1.0, 0.0]], 5e-324).tolist() == [5e-324]
    assert ni.distillation_loss([[1.7976931348623157e308, 0.0]], [[0.0, 0.0]], 1.0).tolist() == [
        8.988465674311579e+307]
    # two terms of e**-745.13, each below half the smallest subnormal, sum to one of it
    row = [[0.0, -745.1332191019412, -745.1332191019412]]
    assert ni.logsumexp(row).tolist() == [5e-324] and ni.cross_entropy(row, [0]).tolist() == [5e-324]
    assert ni.log_softmax(row)[0, 0] == -5e-324
    wide = ni.log_softmax([1.7976931348623157e308, -1.7976931348623157e308])[0]
    assert wide == 0.0 and math.copysign(1.0, wide) == -1.0


# -- loss weights: torch's broadcasting, and the unrounded term times the weight --------------

import mpmath  # noqa: E402

_PREC = 800
_N, _C = 3, 4
_P = np.array([[0.25, 0.5, 0.875, 1e-3], [0.125, 0.999, 0.3, 0.75], [0.5, 0.0625, 5e-324, 1e-310]])
_Y = np.array([[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.25, 1.0], [1.0, 0.75, 5e-324, 0.0]])
_X = np.array([[1.5, -0.25, 3.0, 0.125], [0.5, -1.0, 2.0, -745.0], [-3.0, 0.0, -1000.0, 800.0]])
# every weight shape torch 2.13 accepts for an (N, C) input, and the shapes it rejects
_ACCEPTED = [(), (1,), (_C,), (1, _C), (_N, 1), (1, 1), (_N, _C)]
_REJECTED = [(_N,), (2,), (_C, 1), (2, _C), (1, _N, _C)]


def _mp_bce(p, y):
    p, y = mpmath.mpf(p), mpmath.mpf(y)
    loss = 0
    if y > 0:
        loss += -y * mpmath.log(p) if p > 0 else mpmath.inf
    if y < 1:
        loss += -(1 - y) * mpmath.log1p(-p) if p < 1 else mpmath.inf
    return loss


def _mp_softplus(z):
    z = mpmath.mpf(z)
    return mpmath.log1p(mpmath.exp(z)) if z < 0 else z + mpmath.log1p(mpmath.exp(-z))


def _mp_bce_logits(x, y, pw):
    y, pw = mpmath.mpf(y), mpmath.mpf(pw)
    return (pw * y * _mp_softplus(-x) if y else 0) + ((1 - y) * _mp_softplus(x) if y < 1 else 0)


def _ulps64(value, truth):
    with mpmath.workprec(_PREC):
        return ulp_error(value, truth, "float64")


def _weights(shape, rng):
    return rng.uniform(1.0, 10.0, size=shape) * 10.0 ** rng.integers(-300, 300, size=shape)


@pytest.mark.parametrize("shape", _ACCEPTED)
def test_loss_weights_broadcast_like_torch_and_multiply_the_unrounded_term(shape):
    rng = np.random.default_rng(len(shape) * 10 + sum(shape))
    w, pw = _weights(shape, rng), _weights(shape, rng)
    wf, pwf = np.broadcast_to(w, (_N, _C)), np.broadcast_to(pw, (_N, _C))  # element (i, j)'s weights
    bce = ni.binary_cross_entropy(_P, _Y, weight=w)
    bcel = ni.binary_cross_entropy_with_logits(_X, _Y, weight=w, pos_weight=pw)
    assert bce.shape == bcel.shape == (_N, _C)
    with mpmath.workprec(_PREC):
        for i in range(_N):
            for j in range(_C):
                truth = mpmath.mpf(wf[i, j]) * _mp_bce(_P[i, j], _Y[i, j])
                assert _ulps64(float(bce[i, j]), truth) <= FLOAT64_BUDGET, (shape, i, j)
                truth = mpmath.mpf(wf[i, j]) * _mp_bce_logits(_X[i, j], _Y[i, j], pwf[i, j])
                assert _ulps64(float(bcel[i, j]), truth) <= FLOAT64_BUDGET, (shape, i, j)


@pytest.mark.parametrize("shape", _REJECTED)
def test_loss_weights_torch_rejects_are_a_value_error_naming_the_argument(shape):
    w = np.full(shape, 0.5)
    with pytest.raises(ValueError, match=rf"binary_cross_entropy\(\): weight of shape {re.escape(str(shape))} "
                                         r"does not broadcast to the input's \(3, 4\)"):
        ni.binary_cross_entropy(_P, _Y, weight=w)
    for argument in ("weight", "pos_weight"):
        with pytest.raises(ValueError, match=rf"{argument} of shape {re.escape(str(shape))} does not broadcast"):
            ni.binary_cross_entropy_with_logits(_X, _Y, **{argument: w})
    with pytest.raises(ValueError, match=r"cross_entropy\(\): weight must have shape \(4,\)"):
        ni.cross_entropy(_X, np.array([0, 1, 2]), weight=w)


@pytest.mark.parametrize("p, y, w", [(5e-324, 5e-324, 1e300), (1e-310, 0.0, 1e300), (1e-320, 1.0, 5e-324),
                                     (0.5, 5e-324, 1.7e308)])
def test_bce_weight_times_a_subnormal_term(p, y, w):
    with mpmath.workprec(_PREC):
        truth = mpmath.mpf(w) * _mp_bce(p, y)
    assert _ulps64(float(ni.binary_cross_entropy(p, y, weight=w)), truth) <= FLOAT64_BUDGET


@pytest.mark.parametrize("x, y, w, pw", [(-745.0, 0.0, 1e300, 1.0), (-1000.0, 0.0, 1e300, 1.0),
                                         (800.0, 1.0, 1e300, 1e300), (-2000.0, 0.0, 1.7e308, 1.0),
                                         (-720.0, 5e-324, 1e300, 1e300), (3.0, 1.0, 5e-324, 1.0)])
def test_bce_with_logits_weights_times_a_subnormal_term(x, y, w, pw):
    with mpmath.workprec(_PREC):
        truth = mpmath.mpf(w) * _mp_bce_logits(x, y, pw)
    got = float(ni.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw))
    assert _ulps64(got, truth) <= FLOAT64_BUDGET, (got, truth)


def _mp_nll(row, k):
    xs = [mpmath.mpf(v) for v in row]
    top = max(xs)
    rest = mpmath.fsum(mpmath.exp(v - top) for j, v in enumerate(xs) if j != xs.index(top))
    return mpmath.log1p(rest) - (xs[k] - top)


@SETTINGS
@given(rows=st.lists(st.lists(st.one_of(st.floats(-30.0, 30.0), st.floats(-2500.0, -700.0)), min_size=3, max_size=3),
                     min_size=1, max_size=3),
       weight=st.lists(st.builds(lambda m, k: m * 10.0 ** k, st.floats(1.0, 9.99), st.integers(-300, 300)),
                       min_size=3, max_size=3),
       smoothing=st.sampled_from([0.0, 0.0, 0.1]), data=st.data())
def test_cross_entropy_class_weights_from_1e_minus_300_to_1e300(rows, weight, smoothing, data):
    targets = [data.draw(st.integers(0, 2)) for _ in rows]
    got = ni.cross_entropy(np.array(rows), np.array(targets), label_smoothing=smoothing, weight=weight)
    with mpmath.workprec(_PREC):
        for row, k, value in zip(rows, targets, got):
            q = [(1 - mpmath.mpf(smoothing)) * (c == k) + mpmath.mpf(smoothing) / 3 for c in range(3)]
            truth = mpmath.fsum(q_c * weight[c] * _mp_nll(row, c) for c, q_c in enumerate(q) if q_c)
            assert _ulps64(float(value), truth) <= FLOAT64_BUDGET, (row, k, weight)


def test_loss_weights_agree_with_the_core_on_extreme_terms():
    import refact

    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-2500, -700, 40), rng.uniform(700, 2500, 40), rng.uniform(-40, 40, 40)])
    y = rng.choice([0.0, 1.0, 0.5, 5e-324, 0.25], size=x.size)
    w, pw = _weights(x.shape, rng), _weights(x.shape, rng)
    ours = ni.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw)
    core = refact.binary_cross_entropy_with_logits(x.tolist(), y.tolist(), weight=w.tolist(),
                                                   pos_weight=pw.tolist(), reduction="none")
    for a, b in zip(ours.tolist(), core):
        assert a == b or abs(a - b) <= 2 * math.ulp(max(abs(b), 5e-324))


def test_logsumexp_of_rows_with_huge_negative_gaps_is_their_maximum():
    """The dense rows found NaN here (float32 [-1.77e38, -3.10e38]): the cancelling path's
    double-double exponential of a gap of -1.3e38. The truth is the maximum plus e**gap."""
    import mpmath

    for row, dtype in (([-1.77e38, -3.10e38], np.float32), ([-1e300, -1.0000001e300], np.float64),
                       ([-5e307, -1.7e308, -1e308], np.float64)):
        got = ni.logsumexp(np.array([row], dtype=dtype))
        x = np.array(row, dtype=dtype).astype(np.float64)
        with mpmath.workprec(200):
            truth = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in x))
        assert got.dtype == dtype and float(got[0]) == float(np.array(float(truth), dtype=dtype))


@settings(max_examples=300, deadline=None)
@given(p=st.floats(0.0, 1.0), dtype=st.sampled_from(["float64", "float32", "float16"]))
def test_logit_is_antisymmetric_exactly_where_1_minus_p_is_exact(p, dtype):
    # the conformance run's properties check found logit(1 - p) 1 ULP off -logit(p) in
    # float64 (at p = 0.1192...) while the upper half had a formula of its own
    p = np.asarray(p, dtype=numpy_dtype(dtype))
    q = (1.0 - p.astype(np.float64)).astype(p.dtype)
    if float(1.0 - q.astype(np.float64)) == float(p):  # 1 - p is exact
        assert float(ni.logit(q)) == -float(ni.logit(p))
