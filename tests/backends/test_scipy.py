"""The scipy backend: every catalog function scipy.special has is bound (softplus where
scipy has it), against mpmath truth; every format numpy holds is offered, and the
format each call returns is the one the backend reports (numpy's promotion of float16
to the first loop of a ufunc's ``types`` it casts to safely)."""

import math
import types

import numpy as np
import pytest

from refact.backends import get_backend
from refact.conformance.numbers.ruler import ulp_error
from refact.conformance.truth.catalog import get_function
from refact.conformance.truth.oracle import truth

special = pytest.importorskip("scipy.special")

# exact in float16: at most 11 significant bits
XS = [-30.0, -12.5, -3.25, -1.0, -0.125, 0.0, 0.5, 2.75, 9.0, 17.0, 40.0]
PS = [0.001953125, 0.125, 0.25, 0.5, 0.6875, 0.875, 0.998046875]
UFUNCS = {"sigmoid": "expit", "log_sigmoid": "log_expit", "logit": "logit", "ndtr": "ndtr",
          "probit": "ndtri"}


@pytest.fixture(scope="module")
def scipy_backend():
    return get_backend("scipy")


def _inputs(function):
    return PS if get_function(function).parameters[0].role == "probability" else XS


def test_binds_every_catalog_function_scipy_special_has(scipy_backend):
    expected = {"sigmoid", "log_sigmoid", "logit", "ndtr", "probit", "softmax", "log_softmax",
                "logsumexp"} | ({"softplus"} if hasattr(special, "softplus") else set())
    assert set(scipy_backend.functions) == expected
    if hasattr(special, "softplus"):
        assert scipy_backend.bindings["softplus"].sources == ("scipy.special.softplus",)


def test_a_scipy_without_softplus_leaves_it_out(scipy_backend):
    # scipy before 1.15: the function is absent, so the suite reports skip
    older = types.SimpleNamespace(**{name: getattr(special, name) for name in (
        "expit", "log_expit", "logit", "ndtr", "ndtri", "softmax", "log_softmax", "logsumexp")})
    backend = get_backend("scipy")
    backend.framework = older
    assert "softplus" not in backend.load()
    assert not scipy_backend.supports("hard_sigmoid")


@pytest.mark.skipif(not hasattr(special, "softplus"), reason="scipy.special.softplus needs scipy 1.15")
@pytest.mark.parametrize("fmt", ["float64", "float32", "float16"])
def test_softplus_within_budget(scipy_backend, fmt):
    values, result_format = scipy_backend.tolist(
        scipy_backend.call("softplus", scipy_backend.asarray(XS, fmt)))
    assert result_format == fmt  # np.logaddexp has a float16 loop
    worst = max(ulp_error(y, truth("softplus", (x,), fmt, cache=False, golden=False).exact, fmt)
                for x, y in zip(XS, values))
    assert worst <= get_function("softplus").budgets[fmt]


@pytest.mark.parametrize("function", list(UFUNCS))
def test_declared_float16_promotion_is_the_ufuncs_first_safe_loop(scipy_backend, function):
    """numpy runs a float16 input in the first loop of ``types`` float16 casts to
    safely: expit's first is d->d (float64), ndtri's f->f (float32)."""
    ufunc = getattr(special, UFUNCS[function])
    first_safe = next(t for t in ufunc.types if np.can_cast(np.float16, np.dtype(t[0])))
    declared = scipy_backend.result_format(function, "float16")
    assert declared == np.dtype(first_safe[0]).name
    (convention,) = scipy_backend.conventions_for(function)
    assert convention.promotes == (("float16", declared),)
    assert convention.reference.startswith("https://numpy.org/doc/")
    assert not convention.applies((0.5,), 0.5, "float16")  # it covers no value
    _, result_format = scipy_backend.tolist(
        scipy_backend.call(function, scipy_backend.asarray(_inputs(function), "float16")))
    assert result_format == declared


def test_promotions_as_measured(scipy_backend):
    promoted = {f: scipy_backend.result_format(f, "float16") for f in UFUNCS}
    assert promoted == {"sigmoid": "float64", "log_sigmoid": "float64", "logit": "float64",
                        "ndtr": "float64", "probit": "float32"}
    for function in ("softplus", "softmax", "log_softmax", "logsumexp"):
        if function in scipy_backend.functions:
            assert scipy_backend.result_format(function, "float16") == "float16"
    assert scipy_backend.result_format("sigmoid", "float32") == "float32"


def test_bfloat16_is_reported_as_ml_dtypes_makes_it(scipy_backend):
    pytest.importorskip("ml_dtypes")
    b = scipy_backend
    assert "bfloat16" in b.formats
    # the ufuncs take float16's route, with no convention (scipy does not document it)
    _, result_format = b.tolist(b.call("sigmoid", b.asarray([0.5], "bfloat16")))
    assert result_format == b.result_format("sigmoid", "bfloat16") == "float64"
    assert all(("bfloat16", "float64") not in c.promotes for c in b.conventions)
    # softmax keeps bfloat16; logsumexp refuses it, so it is not offered there
    _, result_format = b.tolist(b.call("softmax", b.asarray([[0.5, 1.0]], "bfloat16")))
    assert result_format == "bfloat16"
    assert "bfloat16" not in b.formats_of("logsumexp")
    with pytest.raises(TypeError, match="dtype argument must be a NumPy dtype"):
        special.logsumexp(b.asarray([[0.5, 1.0]], "bfloat16"), axis=-1)


@pytest.mark.parametrize("function", list(UFUNCS))
def test_a_promoted_result_is_the_wide_computation_judged_in_float16(scipy_backend, function):
    """The float16 input is computed in the wider loop: the result equals the call on
    the same values in that format, and lies far within half a float16 ULP of the truth
    (the accuracy the user gets, measured in the input's format)."""
    b = scipy_backend
    xs = _inputs(function)
    values, result_format = b.tolist(b.call(function, b.asarray(xs, "float16")))
    wide, _ = b.tolist(b.call(function, b.asarray(xs, result_format)))
    assert values == wide
    for x, y in zip(xs, values):
        exact = truth(function, (x,), "float16", cache=False, golden=False).exact
        assert ulp_error(y, exact, "float16") < 2.0 ** -10, (function, x, y)
    assert not math.isnan(values[0])
