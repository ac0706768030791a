"""The catalog: complete for every canonical function, consistent with the oracle,
derivatives that match mpmath's numerical differentiation."""

import math
from fractions import Fraction

import mpmath
import pytest

from refact.conformance.truth.catalog import (
    FUNCTIONS, KINDS, NAMES, ORACLE, UNDEFINED, ExactPlus, Function, get_function,
)
from refact.conformance.numbers.formats import FORMATS, round_to_format, same_value
from refact.conformance.truth.oracle import mp_context, truth

CANONICAL = (
    "sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit", "hard_sigmoid", "ndtr",
    "probit", "softmax", "log_softmax", "logsumexp", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "cross_entropy", "distillation_loss",
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REFACT_CACHE_DIR", str(tmp_path / "cache"))


def test_the_fifteen_canonical_names():
    """DESIGN.md's names, in its order; the core implements each (its own list, which the
    backends bind by, is the same)."""
    import refact

    assert tuple(NAMES) == CANONICAL == refact.FUNCTIONS
    assert all(callable(getattr(refact, name)) for name in CANONICAL)
    with pytest.raises(ValueError):
        get_function("expit")


@pytest.mark.parametrize("name", CANONICAL)
def test_every_entry_is_complete(name):
    f = get_function(name)
    assert isinstance(f, Function) and f.name == name
    assert f.kind in KINDS
    assert f.signature.startswith(name) and f.description and f.domain and f.derivative_doc
    assert callable(f.definition) and callable(f.exact) and callable(f.derivative)
    assert f.specials and all(len(s.args) == f.arity for s in f.specials)
    assert f.properties and len({p.name for p in f.properties}) == len(f.properties)
    assert all(p.budget_ulp >= 0 and p.description for p in f.properties)
    assert set(f.budgets) == set(FORMATS) and all(b >= 0.5 for b in f.budgets.values())
    # 16-bit formats computed in float32 and rounded once should not need more
    assert f.budgets["float16"] <= f.budgets["float32"]


def test_kinds_and_shapes():
    assert {n for n, f in FUNCTIONS.items() if f.kind == "axis"} == {"softmax", "log_softmax", "logsumexp"}
    assert {n for n, f in FUNCTIONS.items() if f.vector_output} == {"softmax", "log_softmax"}
    assert [p.role for p in FUNCTIONS["cross_entropy"].parameters] == ["row", "class_index"]
    assert [p.role for p in FUNCTIONS["distillation_loss"].parameters] == ["row", "row", "temperature"]


def _expected_matches(expected, got_rounded, fmt):
    if expected is UNDEFINED:
        return all(v != v for v in got_rounded)
    if not isinstance(expected, tuple):
        expected = (expected,)
    for e, g in zip(expected, got_rounded):
        r = round_to_format(e, fmt)
        if r == 0 and g == 0:
            continue  # exact zeros: either sign
        if not same_value(r, g):
            return False
    return len(expected) == len(got_rounded)


@pytest.mark.parametrize("name", CANONICAL)
@pytest.mark.parametrize("fmt", ["float64", "bfloat16"])
def test_special_value_table_agrees_with_the_oracle(name, fmt):
    f = get_function(name)
    for special in f.specials:
        t = truth(name, special.args, fmt, golden=False)
        assert t.decided
        if special.expected is ORACLE:
            assert all(math.isfinite(v) for v in t.values), special
        else:
            assert _expected_matches(special.expected, t.values, fmt), (special, t.values)


def _ctx(prec=160):
    ctx = mp_context()
    ctx.prec = prec
    return ctx


def _value(ctx, v):
    return ctx.fadd(v.exact, v.rest) if isinstance(v, ExactPlus) else v


def _scalar(f, ctx, *args):
    return _value(ctx, f.definition(ctx, *args))


ELEMENTWISE_POINTS = {
    "sigmoid": [-30.0, -2.5, 0.0, 0.75, 12.0],
    "sigmoid_grad": [-20.0, -1.5, 0.0, 0.3, 9.0],
    "log_sigmoid": [-40.0, -1.0, 0.0, 2.0, 25.0],
    "softplus": [-25.0, -0.5, 0.0, 3.0, 40.0],
    "logit": [1e-9, 0.1, 0.3, 0.5, 0.8, 0.999],
    "hard_sigmoid": [-5.0, -1.0, 0.5, 2.5, 4.0],
    "ndtr": [-9.0, -1.0, 0.0, 0.5, 4.0],
    "probit": [1e-12, 0.05, 0.3, 0.5, 0.7, 0.99],
}


@pytest.mark.parametrize("name", list(ELEMENTWISE_POINTS))
def test_elementwise_derivatives_match_mpmath_diff(name):
    f = get_function(name)
    for x in ELEMENTWISE_POINTS[name]:
        ctx = _ctx()
        slope = f.derivative(ctx, x)
        mpmath.mp.prec = 160
        numeric = mpmath.diff(lambda t: _scalar(f, _ctx(mpmath.mp.prec), t), mpmath.mpf(x))
        assert abs(slope - numeric) <= 1e-25 * max(1, abs(numeric)), (name, x)


def _directional(f, args, index, direction):
    """d/dh of f at args with args[index] moved along ``direction``."""
    def moved(h):
        ctx = _ctx(mpmath.mp.prec)  # mpmath.diff raises mp.prec while it differentiates
        row = args[index]
        new_row = tuple(ctx.convert(x) + h * d for x, d in zip(row, direction))
        new = args[:index] + (new_row,) + args[index + 1:]
        out = f.definition(ctx, *new)
        if f.vector_output:
            return [_value(ctx, v) for v in out]
        return _value(ctx, out)

    mpmath.mp.prec = 200
    if f.vector_output:
        n = len(args[0])
        return [mpmath.diff(lambda h, i=i: moved(h)[i], 0) for i in range(n)]
    return mpmath.diff(moved, 0)


def test_softmax_and_log_softmax_vjp():
    row = (0.5, -1.25, 2.0, 0.0)
    v = (0.3, -0.7, 1.1, 0.25)
    for name in ("softmax", "log_softmax"):
        f = get_function(name)
        vjp = f.derivative(_ctx(200), row, v)
        for k in range(len(row)):
            e = tuple(1.0 if j == k else 0.0 for j in range(len(row)))
            jac_col = _directional(f, (row,), 0, e)  # d out / d x_k
            expected = sum(vi * ci for vi, ci in zip(v, jac_col))
            assert abs(vjp[k] - expected) < 1e-30, (name, k)


def test_logsumexp_vjp_is_v_times_softmax():
    row = (1.0, -2.0, 0.5)
    f = get_function("logsumexp")
    g = f.derivative(_ctx(200), row, 2.0)
    for k in range(3):
        e = tuple(1.0 if j == k else 0.0 for j in range(3))
        assert abs(g[k] - 2 * _directional(f, (row,), 0, e)) < 1e-30


@pytest.mark.parametrize("name,args", [
    ("binary_cross_entropy", (0.3, 1.0)),
    ("binary_cross_entropy", (0.9, 0.25)),
    ("binary_cross_entropy_with_logits", (-2.5, 0.0)),
    ("binary_cross_entropy_with_logits", (4.0, 0.75)),
])
def test_scalar_loss_gradients(name, args):
    f = get_function(name)
    slope = f.derivative(_ctx(200), *args)
    mpmath.mp.prec = 200
    numeric = mpmath.diff(lambda p: _scalar(f, _ctx(mpmath.mp.prec), p, args[1]), mpmath.mpf(args[0]))
    assert abs(slope - numeric) < 1e-30


@pytest.mark.parametrize("name,args", [
    ("cross_entropy", ((0.5, -1.0, 2.0, 0.25), 2)),
    ("distillation_loss", ((0.5, -1.0, 2.0), (1.0, 0.0, -0.5), 2.0)),
    ("distillation_loss", ((3.0, -1.0, 0.0), (0.25, 0.5, -0.5), 0.5)),
])
def test_row_loss_gradients(name, args):
    f = get_function(name)
    grad = f.derivative(_ctx(200), *args)
    n = len(args[0])
    for k in range(n):
        e = tuple(1.0 if j == k else 0.0 for j in range(n))
        assert abs(grad[k] - _directional(f, args, 0, e)) < 1e-30, (name, k)


def test_exact_hooks_mark_the_rational_points():
    assert FUNCTIONS["sigmoid"].exact_values((0.0,)) == [Fraction(1, 2)]
    assert FUNCTIONS["logit"].exact_values((0.5,)) == [0]
    assert FUNCTIONS["softmax"].exact_values(((3.0, 3.0, -math.inf),)) == [Fraction(1, 2), Fraction(1, 2), 0]
    assert FUNCTIONS["softmax"].exact_values(((3.0, 1.0, -math.inf),)) == [None, None, 0]
    assert FUNCTIONS["distillation_loss"].exact_values(((1.0, 2.0), (2.0, 3.0), 3.0)) == [0]
    assert FUNCTIONS["hard_sigmoid"].exact_values((1.0,)) == [Fraction(2, 3)]
    assert FUNCTIONS["sigmoid"].exact_values((1.0,)) is None
    assert all(v != v for v in FUNCTIONS["cross_entropy"].exact_values(((math.nan, 0.0), 1)))
    with pytest.raises(ValueError):
        FUNCTIONS["cross_entropy"].exact_values(((0.0, 1.0), 2))


def test_definitions_stay_accurate_at_extremes():
    """Spot values that a naive formula gets wrong at modest precision."""
    ctx = _ctx(120)
    f = FUNCTIONS
    assert mpmath.almosteq(_scalar(f["softplus"], ctx, 1e308), mpmath.mpf(1e308))
    assert mpmath.almosteq(_scalar(f["log_sigmoid"], ctx, -1e308), mpmath.mpf(-1e308))
    mpmath.mp.prec = 400
    ndtr_ref = mpmath.ncdf(-40)
    assert mpmath.almosteq(_scalar(f["ndtr"], _ctx(120), -40.0), ndtr_ref, rel_eps=mpmath.mpf(2) ** -110)
    p = 1 - 2.0 ** -53
    logit_ref = mpmath.log(mpmath.mpf(p)) - mpmath.log(1 - mpmath.mpf(p))
    assert mpmath.almosteq(_scalar(f["logit"], _ctx(120), p), logit_ref, rel_eps=mpmath.mpf(2) ** -110)
    probit_tail = _scalar(f["probit"], _ctx(120), 1e-300)
    assert mpmath.almosteq(mpmath.ncdf(probit_tail), mpmath.mpf(1e-300), rel_eps=mpmath.mpf(2) ** -100)
