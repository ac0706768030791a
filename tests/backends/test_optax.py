"""The optax backend against mpmath truth: its losses on ordinary points within the
catalog's budget, in ULPs; the probability-target variant and the distillation recipe;
what optax does at a -inf logit; its flush convention is JAX's."""

import math

import pytest

from refact.backends import BUILTIN, get_backend
from refact.conformance.numbers.ruler import ulp_error
from refact.conformance.truth.catalog import get_function
from refact.conformance.truth.oracle import truth

pytest.importorskip("optax")

WIDE = ("float64", "float32")

# Ordinary points, exact in float32 (at most 24 significant bits).
LOGITS = [-20.0, -7.25, -1.5, -0.375, 0.0, 0.8125, 3.5, 12.0, 30.0]
LABELS = [0.0, 0.25, 1.0]
ROWS = [[-1.5, 0.5, 2.0], [0.25, -0.75, 1.0, 3.0], [10.0, -10.0], [-3.0, -3.0, -3.0, 8.5]]
TEACHERS = [[0.5, -1.0, 1.5], [-0.25, 0.75, 0.0, 1.0], [2.0, 2.5], [1.0, -1.0, 0.5, 0.0]]


@pytest.fixture(scope="module")
def optax_backend():
    return get_backend("optax")


def _worst_ulp(function, fmt, points, outputs):
    """The largest ULP error of ``outputs`` (one float per point) against the oracle."""
    worst = 0.0
    for point, y in zip(points, outputs):
        (rounded, exact), = truth(function, point, fmt, cache=False, golden=False).elements
        worst = max(worst, ulp_error(y, exact, fmt))
    return worst


def test_registered_as_a_builtin_named_optax(optax_backend):
    assert BUILTIN["optax"] == "refact.backends.optax_backend:OptaxBackend"
    assert set(optax_backend.functions) == {
        "binary_cross_entropy_with_logits", "cross_entropy", "distillation_loss"}
    assert optax_backend.formats == ("float64", "float32", "float16", "bfloat16")
    assert optax_backend.bindings["cross_entropy"].sources[:2] == (
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "optax.losses.softmax_cross_entropy")
    assert optax_backend.bindings["distillation_loss"].sources[0] == "optax.losses.kl_divergence"


@pytest.mark.parametrize("fmt", WIDE)
def test_sigmoid_binary_cross_entropy_within_budget(optax_backend, fmt):
    points = [(x, y) for x in LOGITS for y in LABELS]
    b = optax_backend
    values, result_format = b.tolist(b.call(
        "binary_cross_entropy_with_logits",
        b.asarray([x for x, _ in points], fmt), b.asarray([y for _, y in points], fmt)))
    assert result_format == fmt
    assert _worst_ulp("binary_cross_entropy_with_logits", fmt, points, values) <= \
        get_function("binary_cross_entropy_with_logits").budgets[fmt]


def _cross_entropies(backend, fmt, points):
    outputs = []
    for row, k in points:  # rows of different lengths: one call each
        values, result_format = backend.tolist(backend.call(
            "cross_entropy", backend.asarray([list(row)], fmt), backend.asindex([k])))
        assert result_format == fmt
        outputs.append(values[0])
    return outputs


@pytest.mark.parametrize("fmt", WIDE)
def test_cross_entropy_with_class_indices_within_budget(optax_backend, fmt):
    # ordinary rows: the label is not the largest logit, so the loss is not small
    points = [(tuple(row), k) for row in ROWS for k in range(len(row)) if row[k] < max(row)]
    outputs = _cross_entropies(optax_backend, fmt, points)
    assert _worst_ulp("cross_entropy", fmt, points, outputs) <= \
        get_function("cross_entropy").budgets[fmt]


def test_cross_entropy_cancels_where_the_label_dominates(optax_backend):
    """optax computes logsumexp(x) - x[k]: where x[k] dominates the row the loss is
    tiny and the subtraction keeps only the digits below ulp(x[k]). Measured: for the
    row [10, -10] and label 0, float64 gives 2.061153026e-9 where 2.061153620e-9 is due
    (1.4e9 ULP) and float32 gives 0 where the normal number 2.06e-9 is due."""
    point = ((10.0, -10.0), 0)
    (wide,) = _cross_entropies(optax_backend, "float64", [point])
    (narrow,) = _cross_entropies(optax_backend, "float32", [point])
    assert 1e9 < _worst_ulp("cross_entropy", "float64", [point], [wide]) < 2e9
    assert narrow == 0.0


@pytest.mark.parametrize("fmt", WIDE)
def test_distillation_loss_measured(optax_backend, fmt):
    """T**2 KL per row on ordinary rows: within the budget of 4 ULP at T <= 1 and up to
    27 ULP at T = 4 (measured 21.7 in float64, 26.9 in float32: the terms t (log t -
    log p) of both signs cancel as the tempered distributions approach each other)."""
    b = optax_backend
    budget = get_function("distillation_loss").budgets[fmt]
    for temperature, bound in ((0.5, budget), (1.0, budget), (4.0, 32.0)):
        points = [(tuple(s), tuple(t), temperature) for s, t in zip(ROWS, TEACHERS)]
        outputs = []
        for s, t, _ in points:
            values, result_format = b.tolist(b.call(
                "distillation_loss", b.asarray([list(s)], fmt), b.asarray([list(t)], fmt),
                temperature))
            assert result_format == fmt
            outputs.append(values[0])
        assert _worst_ulp("distillation_loss", fmt, points, outputs) <= bound, temperature


def test_probability_targets_are_softmax_cross_entropy(optax_backend):
    # -sum(q * log_softmax(x)) against the exact sum in float64
    b = optax_backend
    row, q = [-1.5, 0.5, 2.0], [0.25, 0.25, 0.5]
    top = max(row)
    log_normalizer = top + math.log(math.fsum(math.exp(v - top) for v in row))
    expected = math.fsum(w * (log_normalizer - v) for w, v in zip(q, row))
    (value,), _ = b.tolist(b.call("cross_entropy", b.asarray([row], "float64"),
                                  b.asarray([q], "float64")))
    assert abs(value - expected) <= 4 * math.ulp(expected)


def test_a_minus_inf_logit_with_target_zero_gives_nan(optax_backend):
    """Measured in optax 0.2.8: softmax_cross_entropy multiplies the target 0 by the
    log-probability -inf (NaN), where the limit is the loss of the other classes,
    log(e^0.5 + e^2) - (0.5 + 2) / 2 = 0.9514; optax documents the 0 log 0 = 0 rule
    only for safe_softmax_cross_entropy, so this is not declared a convention."""
    b = optax_backend
    (value,), _ = b.tolist(b.call("cross_entropy", b.asarray([[-math.inf, 0.5, 2.0]], "float64"),
                                  b.asarray([[0.0, 0.5, 0.5]], "float64")))
    assert math.isnan(value)
    assert not any(c.function == "cross_entropy" and c.name != "flush_to_zero"
                   for c in b.conventions)


def test_flush_to_zero_is_the_jax_convention(optax_backend):
    from refact.backends.jax_backend import JaxBackend

    jax_flush = next(c for c in JaxBackend.conventions if c.name == "flush_to_zero")
    assert {c.function for c in optax_backend.conventions} == set(optax_backend.functions)
    for convention in optax_backend.conventions:
        assert (convention.name, convention.reference, convention.flushes) == \
            (jax_flush.name, jax_flush.reference, True)
    # softplus(-100) = 3.7e-44 is a float32 subnormal; XLA on CPU returns 0
    b = optax_backend
    (value,), _ = b.tolist(b.call("binary_cross_entropy_with_logits",
                                  b.asarray([-100.0], "float32"), b.asarray([0.0], "float32")))
    assert value == 0.0
    assert b.conventions_for("binary_cross_entropy_with_logits")[0].applies(
        (-100.0, 0.0), 3.720075976020836e-44, "float32")


@pytest.mark.parametrize("function", ["binary_cross_entropy_with_logits", "cross_entropy",
                                      "distillation_loss"])
def test_gradients_by_jax_vjp(optax_backend, function):
    # d/dx of the BCE with logits is sigmoid(x) - y: at x = 0, y = 1 it is -1/2 exactly
    b = optax_backend
    assert function in b.gradients
    if function == "binary_cross_entropy_with_logits":
        (g,), fmt = b.tolist(b.grad(function, (b.asarray([0.0], "float64"),
                                               b.asarray([1.0], "float64")),
                                    b.asarray([1.0], "float64")))
        assert (g, fmt) == (-0.5, "float64")
    elif function == "cross_entropy":
        # d/dx_j = softmax_j - [j == k]: a row of two equal logits gives (-1/2, 1/2)
        (gs,), _ = b.tolist(b.grad(function, (b.asarray([[1.0, 1.0]], "float64"), b.asindex([0])),
                                   b.asarray([1.0], "float64")))
        assert gs == [-0.5, 0.5]
    else:
        # equal student and teacher rows: KL is at its minimum, the gradient is 0
        row = b.asarray([[0.5, -1.0, 1.5]], "float64")
        (gs,), _ = b.tolist(b.grad(function, (row, row, 2.0), b.asarray([1.0], "float64")))
        assert max(abs(g) for g in gs) <= 1e-16


@pytest.mark.parametrize("fmt", WIDE)
@pytest.mark.parametrize("smoothing", [0.0, 0.125, 1.0])
def test_label_smoothing_by_smooth_labels_within_budget(optax_backend, fmt, smoothing):
    """The catalog's label_smoothing, (1 - eps) y + eps / C, judged by the oracle's
    truth of the call with that option, for class indices and probability targets (the
    label is not the row's largest logit, as in the ordinary points above)."""
    from refact.conformance.truth.oracle import option_truth

    b = optax_backend
    rows = [[-1.5, 0.5, 2.0], [0.25, -0.75, 1.0]]
    for targets, target in (([0, 1], b.asindex([0, 1])),
                            ([(0.25, 0.25, 0.5), (0.5, 0.125, 0.375)],
                             b.asarray([[0.25, 0.25, 0.5], [0.5, 0.125, 0.375]], fmt))):
        values, result_format = b.tolist(b.call("cross_entropy", b.asarray(rows, fmt), target,
                                                label_smoothing=smoothing))
        assert result_format == fmt
        answer = option_truth("cross_entropy", [(tuple(r), t) for r, t in zip(rows, targets)],
                              {"label_smoothing": smoothing}, fmt)
        for y, ((rounded, exact),) in zip(values, answer.values):
            assert ulp_error(y, exact, fmt) <= get_function("cross_entropy").budgets[fmt], \
                (targets, smoothing, y, rounded)


def test_label_smoothing_gradient_traces_the_smoothing(optax_backend):
    # d/dx_j of CE with smoothed one-hot target s: softmax_j - s_j; two equal logits,
    # label 0, eps = 1/2: s = (3/4, 1/4), gradient (-1/4, 1/4)
    b = optax_backend
    (gs,), _ = b.tolist(b.grad("cross_entropy", (b.asarray([[1.0, 1.0]], "float64"), b.asindex([0])),
                               b.asarray([1.0], "float64"), label_smoothing=0.5))
    assert gs == [-0.25, 0.25]
