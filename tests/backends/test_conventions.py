"""A convention's array predicate says what its point predicate says, at every point."""

import numpy as np
import pytest

from refact.backends import BUILTIN, backend_class

_X = np.array([-np.inf, -1e300, -30.0, -20.0, -5e-324, -1e-310, -0.0, 0.0, 1e-45, 1e-40, 2.0 ** -126,
               1e-310, 2.2250738585072014e-308, 1e-7, 0.5, 1 - 1e-7, 1.0, 19.999999999999996, 20.0,
               20.000000000000004, 30.0, 1e300, np.inf, np.nan])

_WITH_ARRAYS = [(name, c) for name in BUILTIN for c in backend_class(name).conventions
                if c.array_predicate is not None]


def test_the_elementwise_conventions_of_torch_and_jax_have_array_predicates():
    names = {(name, c.function, c.name) for name, c in _WITH_ARRAYS}
    assert ("torch", "softplus", "softplus_threshold") in names
    assert ("torch", "logit", "eps_clamp") in names
    assert ("jax", "sigmoid", "flush_to_zero") in names


@pytest.mark.parametrize("options", [{}, {"eps": 1e-6}])
@pytest.mark.parametrize("fmt", ["float64", "float32", "float16"])
@pytest.mark.parametrize("name, convention", _WITH_ARRAYS, ids=lambda v: getattr(v, "name", v))
def test_array_and_point_predicates_agree(name, convention, fmt, options):
    truths = np.concatenate([_X[::-1][1:], _X[:1]])  # every pairing of tiny and ordinary
    for truth in (truths, np.zeros_like(_X), np.full_like(_X, 0.25)):
        by_array = convention.applies_array(_X, truth, fmt, options)
        by_point = [convention.applies((x,), t, fmt, options) for x, t in zip(_X.tolist(), truth.tolist())]
        assert by_array.tolist() == by_point


_WITH_ROWS = [(name, c) for name in BUILTIN for c in backend_class(name).conventions
              if c.row_predicate is not None]
#: rows of each argument shape of the row functions and losses: plain, one subnormal
#: entry, -inf entries; with the truths of values of them, tiny and ordinary
_ROWS = {
    "softmax": [(np.array([1.0, 2.0, -3.0]),), (np.array([1.0, 1e-310, 3.0]),),
                (np.array([-np.inf, 0.0, 1e-45]),)],
    "cross_entropy": [(np.array([1.0, 2.0]), 1), (np.array([1e-40, 2.0]), 0)],
    "distillation_loss": [(np.array([1.0, 2.0]), np.array([0.5, 1e-310]), 2.0),
                          (np.array([1.0, 2.0]), np.array([0.5, 3.0]), 1.0)],
    "binary_cross_entropy_with_logits": [(0.5, 1.0), (1e-310, 0.0), (1e-40, 1.0)],
}


def test_the_row_conventions_of_jax_and_optax_have_row_predicates():
    names = {(name, c.function) for name, c in _WITH_ROWS}
    assert {("jax", "softmax"), ("jax", "logsumexp"), ("optax", "cross_entropy"),
            ("optax", "distillation_loss")} <= names


@pytest.mark.parametrize("fmt", ["float64", "float32", "float16"])
@pytest.mark.parametrize("name, convention", _WITH_ROWS, ids=lambda v: getattr(v, "function", v))
def test_row_and_point_predicates_agree(name, convention, fmt):
    rows = _ROWS.get(convention.function, _ROWS["softmax"])
    truths = np.array([0.0, 1e-310, 1e-45, 1e-40, 0.25, 2.0 ** -126, np.inf, np.nan])
    seen = set()
    for args in rows:
        by_row = convention.applies_row(args, truths, fmt)
        by_point = [convention.applies(args, t, fmt) for t in truths.tolist()]
        assert by_row.tolist() == by_point
        seen.update(by_point)
    assert seen == {True, False}  # the rows tell covered values from the others
