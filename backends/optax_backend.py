"""The ``optax`` backend: the losses of optax, the library JAX users compute them with.

JAX itself has no losses; optax (https://optax.readthedocs.io/en/latest/api/losses.html)
has them on ``jax.numpy``. Arrays, devices, ``jax_enable_x64`` and gradients (``jax.vjp``
under ``jax.jit``) are the jax backend's, which this class extends; every call runs under
``jax.jit``, as inside a jitted training step. Bound (reduction "none" is optax's own:
it returns one loss per element or per row):

* ``binary_cross_entropy_with_logits``: ``optax.losses.sigmoid_binary_cross_entropy``
  (``-y log_sigmoid(x) - (1 - y) log_sigmoid(-x)``); no ``pos_weight``;
* ``cross_entropy``: ``optax.losses.softmax_cross_entropy_with_integer_labels`` for class
  indices and, for the ``probability_target`` variant, ``optax.losses.softmax_cross_entropy``
  (``-sum(q * log_softmax(x))``). Measured in optax 0.2.8: a logit of -inf with a target
  of 0 gives NaN (``0 * -inf``), where the limit is the finite loss of the other classes;
  optax documents that only ``optax.losses.safe_softmax_cross_entropy`` takes
  ``0 log 0 = 0`` there, which is not what a ``softmax_cross_entropy`` user gets, so it is
  a failure, not a declared convention;
* ``cross_entropy(..., label_smoothing=eps)``: the target (class indices made one-hot
  with ``jax.nn.one_hot``) smoothed by ``optax.losses.smooth_labels`` to
  ``(1 - eps) y + eps / C``, then ``softmax_cross_entropy``;
* ``distillation_loss``: ``T**2 * optax.losses.kl_divergence(log_softmax(s / T),
  softmax(t / T))`` per row, with ``jax.nn.log_softmax`` and ``jax.nn.softmax``:
  ``kl_divergence`` takes the prediction in log space "to avoid underflow" and
  computes ``t * (log t - log_p)`` with ``0 log 0`` as 0.

optax has no loss on probabilities (``binary_cross_entropy``) and no elementwise or row
functions of its own (those are ``jax.nn``: the jax backend), so they are absent.
Declared convention: JAX's flush-to-zero of subnormal inputs and results on XLA's CPU
backend (the jax backend's convention, for these functions).
"""

from dataclasses import replace

from .base import Binding, install_hint, require
from .jax_backend import JaxBackend

_LOSSES = ("binary_cross_entropy_with_logits", "cross_entropy", "distillation_loss")


def _flush_to_zero_conventions():
    # The mechanism is JAX's (XLA on CPU), so the jax backend declares it once; optax's
    # losses are JAX operations and inherit it.
    jax_flush = next(c for c in JaxBackend.conventions if c.name == "flush_to_zero")
    return tuple(replace(jax_flush, function=function, example=None) for function in _LOSSES)


class OptaxBackend(JaxBackend):
    name = "optax"
    module = "jax"  # arrays, devices and autograd are JAX's; optax is imported in load()
    extra = "jax"
    conventions = _flush_to_zero_conventions()
    check_seconds = {"jit": 36.0, "eager": 161.0}

    def load(self):
        super().load()  # 64-bit types and the gradient cache, as the jax backend sets them
        self.optax = require("optax", install_hint("jax"))
        jax = self.framework
        losses = self.optax.losses

        def cross_entropy(logits, target, label_smoothing=None):
            # Branch on whether smoothing is asked, never on its value: under jax.jit
            # (and in jax.vjp) the value is traced.
            integer = jax.numpy.issubdtype(target.dtype, jax.numpy.integer)
            if label_smoothing is None:
                if integer:
                    return losses.softmax_cross_entropy_with_integer_labels(logits, target)
                return losses.softmax_cross_entropy(logits, target)
            if integer:
                target = jax.nn.one_hot(target, logits.shape[-1], dtype=logits.dtype)
            return losses.softmax_cross_entropy(logits, losses.smooth_labels(target, label_smoothing))

        def distillation_loss(student, teacher, temperature):
            log_p_student = jax.nn.log_softmax(student / temperature, axis=-1)
            p_teacher = jax.nn.softmax(teacher / temperature, axis=-1)
            return losses.kl_divergence(log_p_student, p_teacher) * (temperature * temperature)

        return {
            "binary_cross_entropy_with_logits": Binding(
                jax.jit(losses.sigmoid_binary_cross_entropy),
                "optax.losses.sigmoid_binary_cross_entropy"),
            "cross_entropy": Binding(
                jax.jit(cross_entropy),
                "optax.losses.softmax_cross_entropy_with_integer_labels",
                "optax.losses.softmax_cross_entropy", "optax.losses.smooth_labels", "jax.nn.one_hot",
                options=("label_smoothing", "probability_target")),
            "distillation_loss": Binding(
                jax.jit(distillation_loss), "optax.losses.kl_divergence",
                "jax.nn.log_softmax", "jax.nn.softmax"),
        }

    @property
    def framework_version(self):
        return self.optax.__version__
