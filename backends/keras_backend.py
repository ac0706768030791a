"""The ``keras`` backend: Keras 3 activations and losses, on each engine Keras runs on.

The functions are Keras's: ``keras.activations`` (``sigmoid``, ``log_sigmoid``,
``softplus``, ``hard_sigmoid`` = relu6(x + 3) / 6, the same definition as PyTorch and
JAX, ``softmax``, ``log_softmax``), ``keras.ops.logsumexp`` and ``keras.losses``. Keras 3
computes them with the ops of its *engine* (its "backend"), so each engine is a variant:
``keras[tensorflow]`` (the default, as Keras's own), ``keras[jax]``, ``keras[torch]`` and
``keras[numpy]``. Keras picks its engine from ``KERAS_BACKEND`` once, at import, so each
variant needs a process of its own: constructing one sets ``KERAS_BACKEND`` to its
engine before Keras is imported, and a Keras already imported on another engine makes
it unavailable with that reason rather than silently mixing frameworks. Arrays, devices
and gradients are the engine's, through its sibling adapter (``tensorflow``, ``jax``
eagerly, ``torch``, ``numpy``): the numpy engine has no autograd, so there ``grad`` and
``sigmoid_grad`` are absent.

Recipes, to reach the canonical call convention:

* the Keras losses average over their last axis, so the elementwise
  ``binary_cross_entropy(p, y)`` and ``binary_cross_entropy_with_logits(x, y)`` give each
  element its own length-1 axis (the mean of one value is that value);
* ``cross_entropy``: ``sparse_categorical_crossentropy(from_logits=True)`` for class
  indices, ``categorical_crossentropy(from_logits=True, label_smoothing=...)`` for
  probability targets and for smoothed labels (indices made one-hot with
  ``keras.ops.one_hot``);
* ``distillation_loss``: what ``keras.distillation.LogitsDistillation`` computes with its
  default ``kl_divergence`` loss -- logits divided by T, ``softmax``, ``kl_divergence``
  (teacher, student), times T**2 -- per row, where LogitsDistillation returns the batch
  mean.

``sigmoid_grad`` is the engine's autograd derivative of ``keras.activations.sigmoid``.
Keras has no logit, normal CDF or quantile: those are absent. TensorFlow's flush-to-zero
of subnormals applies on that engine too and is likewise not a declared convention (see
the tensorflow backend).
"""

import math
import os
from functools import partial

from .base import Backend, BackendUnavailable, Binding, Convention, Point
from .jax_backend import JaxBackend
from .numpy_backend import NumpyBackend
from .tensorflow_backend import TensorflowBackend
from .torch_backend import TorchBackend

_EPSILON = 1e-7  # keras.config.epsilon() by default


def _clipped_probability(point):
    p = point.args[0]
    return p < _EPSILON or p > 1.0 - _EPSILON


def _softmax_row(row, temperature):
    scaled = [float(x) / temperature for x in row]  # Python floats: rows may come as arrays
    top = max(scaled)
    if math.isinf(top) or math.isnan(top):
        return [math.nan] * len(row)
    weights = [math.exp(x - top) for x in scaled]
    total = math.fsum(weights)
    return [w / total for w in weights]


def _clipped_distribution(point):
    student, teacher, temperature = point.args[:3]
    if not 0.0 < temperature < math.inf:
        return False  # no distribution to clip: the loss itself is undefined there
    return any(p < _EPSILON for row in (student, teacher)
               for p in _softmax_row(row, temperature))


CONVENTIONS = (
    Convention(
        "binary_cross_entropy", "epsilon_clip",
        "keras.losses.binary_crossentropy clips probabilities to [epsilon, 1 - epsilon] "
        "with the fuzz factor keras.config.epsilon() = 1e-7 before taking logarithms, so "
        "a loss term never exceeds -log(1e-7) = 16.12 (in float16 and bfloat16 "
        "1 - 1e-7 rounds to 1, so only the lower clip is effective there).",
        "https://www.tensorflow.org/versions/r2.0/api_docs/python/tf/keras/metrics/"
        "BinaryCrossentropy",
        _clipped_probability,
        example=Point((0.0, 1.0)),
    ),
    Convention(
        "distillation_loss", "epsilon_clip",
        "keras.losses.kl_divergence clips both distributions to [epsilon, 1] with "
        "epsilon = 1e-7 (its documented example: ops.clip(y, 1e-7, 1)), so class "
        "probabilities below 1e-7 of teacher or student count as 1e-7.",
        "https://www.tensorflow.org/api_docs/python/tf/keras/losses/KLD",
        _clipped_distribution,
        example=Point(([0.0, 30.0], [0.0, 0.0], 1.0)),
    ),
)


#: The engines Keras 3 runs on, with the sibling adapter that holds their arrays and
#: autograd (run eagerly, as a call of a Keras function outside a compiled model is),
#: and the public name of that autograd.
_ENGINES = {
    "tensorflow": (TensorflowBackend, "eager", "tensorflow.GradientTape"),
    "jax": (JaxBackend, "eager", "jax.vjp"),
    "torch": (TorchBackend, "eager", "torch.autograd.grad"),
    "numpy": (NumpyBackend, None, None),
}


class KerasBackend(Backend):
    name = "keras"
    module = "keras"
    extra = "tensorflow"
    conventions = CONVENTIONS
    check_seconds = {"tensorflow": 17.0, "jax": 195.0, "torch": 20.0, "numpy": 7.0}
    variants = {
        "tensorflow": "Keras 3 on its TensorFlow engine (KERAS_BACKEND=tensorflow)",
        "jax": "Keras 3 on its JAX engine (KERAS_BACKEND=jax), op by op",
        "torch": "Keras 3 on its PyTorch engine (KERAS_BACKEND=torch)",
        "numpy": "Keras 3 on its NumPy engine (KERAS_BACKEND=numpy), no autograd",
    }

    @classmethod
    def environment(cls, cache_directory, variant=None):
        engine, engine_variant, _ = _ENGINES[cls.resolve_variant(variant)]
        if engine_variant is None:
            return engine.environment(cache_directory)
        return engine.environment(cache_directory, engine_variant)

    def __init__(self, device="cpu", variant=None):
        variant = self.resolve_variant(variant)
        # Keras reads its engine once, at its import: the variant is the engine asked for
        os.environ["KERAS_BACKEND"] = variant
        engine, engine_variant, self._autograd = _ENGINES[variant]
        self.engine = engine(device) if engine_variant is None else engine(device, engine_variant)
        super().__init__(device, variant)

    def load(self):
        keras = self.framework
        configured = keras.backend.backend()
        if configured != self.variant:
            raise BackendUnavailable(
                f"keras[{self.variant}]: Keras was already imported in this process on its "
                f"{configured!r} engine, which it cannot change; each engine needs a "
                "process of its own"
            )
        activations, losses, ops = keras.activations, keras.losses, keras.ops
        autograd = self._autograd is not None

        def sigmoid_grad(x):
            return self.vjp(activations.sigmoid, (x,), ops.ones_like(x), {})

        def binary_cross_entropy(p, y):
            return losses.binary_crossentropy(y[..., None], p[..., None])

        def binary_cross_entropy_with_logits(x, y):
            return losses.binary_crossentropy(y[..., None], x[..., None], from_logits=True)

        def cross_entropy(logits, target, label_smoothing=0.0):
            if "int" in keras.backend.standardize_dtype(target.dtype):
                if not label_smoothing:
                    return losses.sparse_categorical_crossentropy(target, logits,
                                                                  from_logits=True)
                target = ops.one_hot(target, logits.shape[-1], dtype=logits.dtype)
            return losses.categorical_crossentropy(target, logits, from_logits=True,
                                                   label_smoothing=label_smoothing)

        def at_temperature(function):
            # model code divides the logits itself: x / T in the tensor's own dtype
            def call(x, temperature=None):
                return function(x if temperature is None else ops.divide(x, temperature))
            return call

        def distillation_loss(student, teacher, temperature):
            p_teacher = ops.softmax(ops.divide(teacher, temperature), axis=-1)
            p_student = ops.softmax(ops.divide(student, temperature), axis=-1)
            return losses.kl_divergence(p_teacher, p_student) * (temperature * temperature)

        bindings = {
            "sigmoid": Binding(activations.sigmoid, "keras.activations.sigmoid"),
            "log_sigmoid": Binding(activations.log_sigmoid, "keras.activations.log_sigmoid"),
            "softplus": Binding(activations.softplus, "keras.activations.softplus"),
            "hard_sigmoid": Binding(activations.hard_sigmoid, "keras.activations.hard_sigmoid"),
            "softmax": Binding(at_temperature(activations.softmax), "keras.activations.softmax",
                               "keras.ops.divide", options=("temperature",)),
            "log_softmax": Binding(at_temperature(activations.log_softmax),
                                   "keras.activations.log_softmax", "keras.ops.divide",
                                   options=("temperature",)),
            "logsumexp": Binding(partial(ops.logsumexp, axis=-1), "keras.ops.logsumexp"),
            "binary_cross_entropy": Binding(binary_cross_entropy,
                                            "keras.losses.binary_crossentropy"),
            "binary_cross_entropy_with_logits": Binding(
                binary_cross_entropy_with_logits, "keras.losses.binary_crossentropy"),
            "cross_entropy": Binding(
                cross_entropy, "keras.losses.sparse_categorical_crossentropy",
                "keras.losses.categorical_crossentropy", "keras.ops.one_hot",
                options=("label_smoothing", "probability_target")),
            "distillation_loss": Binding(
                distillation_loss, "keras.losses.kl_divergence", "keras.ops.softmax",
                "keras.ops.divide"),
        }
        if autograd:
            bindings["sigmoid_grad"] = Binding(sigmoid_grad, "keras.activations.sigmoid",
                                               self._autograd, gradient=False)
        else:  # the numpy engine: values only
            for b in bindings.values():
                b.gradient = False
        return bindings

    @property
    def framework_version(self):
        return self.framework.__version__

    # arrays, devices and autograd are the engine's

    def devices(self):
        return self.engine.devices()

    def formats_on(self, device):
        return self.engine.formats_on(device)

    def from_numpy(self, array):
        return self.engine.from_numpy(array)

    def to_numpy(self, native):
        return self.engine.to_numpy(native)

    def run(self, call, args, options):
        return self.engine.run(call, args, options)

    def vjp(self, call, args, cotangent, options):
        return self.engine.vjp(call, args, cotangent, options)
