"""The ``tensorflow`` backend: ``tf.math`` and ``tf.nn``, gradients by ``tf.GradientTape``.

Devices: ``cpu`` always, ``gpu`` when TensorFlow sees one; every call runs inside
``tf.device``. Arrays are built in numpy with the exact values and handed to
``tf.constant``: no TensorFlow op touches them on the way in, which matters because TF's
CPU kernels flush subnormals to zero (``tf.cast`` of float64 1e-40 to float32 gives 0).
The C++ log level defaults to warnings and errors (``TF_CPP_MIN_LOG_LEVEL=2``) unless
the environment already sets it.

Two variants: ``eager`` (the default: each op dispatched as it comes, as TensorFlow runs
outside a function) and ``xla``, every call wrapped in ``tf.function(jit_compile=True)``,
as a model compiled with XLA runs it: traced once per shape, dtype and Python argument,
and compiled whole by XLA (which fuses ops, so roundings can change).

Absent, because TensorFlow has no public function for them: ``logit``, ``hard_sigmoid``
(only in Keras, see the ``keras`` backend), ``ndtr`` (``tf.math`` has erf/erfc but no
normal CDF), ``binary_cross_entropy`` on probabilities and ``distillation_loss``.
Recipes: ``sigmoid_grad`` is the tape derivative of ``tf.math.sigmoid``;
``binary_cross_entropy_with_logits`` is ``tf.nn.sigmoid_cross_entropy_with_logits``, or
``tf.nn.weighted_cross_entropy_with_logits`` when ``pos_weight`` is given;
``cross_entropy`` is ``tf.nn.sparse_softmax_cross_entropy_with_logits`` for class indices
and ``tf.nn.softmax_cross_entropy_with_logits`` for probability targets (tf.nn has no
label smoothing).

Not declared as a convention: TensorFlow flushes subnormal inputs and results to zero on
CPU (observed for float64, float32 and bfloat16). We found it stated only in TF's source
(tensorflow/core/platform/denormal.h, set for its thread pools), not in the user
documentation, so by refact's rule it is reported as the failure class
``flush_to_zero``, not as a convention.
"""

import os
from functools import partial

from . import base
from .base import Backend, Binding


class TensorflowBackend(Backend):
    name = "tensorflow"
    module = "tensorflow"
    extra = "tensorflow"
    check_seconds = {"eager": 7.0, "xla": 72.0}
    variants = {
        "eager": "op by op, as TensorFlow runs outside a tf.function",
        "xla": "every call in tf.function(jit_compile=True), compiled whole by XLA",
    }

    @classmethod
    def environment(cls, cache_directory, variant=None):
        # TensorFlow's C++ logging (oneDNN notices, absl's preamble) goes to stderr at
        # import and at the first float16 op; level 3 keeps only fatal messages
        return {"TF_CPP_MIN_LOG_LEVEL": "3"}

    def __init__(self, device="cpu", variant=None):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        super().__init__(device, variant)

    @property
    def tf(self):
        return base.require("tensorflow", base.install_hint("tensorflow"))

    def load(self):
        tf = self.tf

        def sigmoid_grad(x):
            return self.vjp(tf.math.sigmoid, (x,), tf.ones_like(x), {})

        def binary_cross_entropy_with_logits(x, y, pos_weight=None):
            if pos_weight is None:
                return tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=x)
            return tf.nn.weighted_cross_entropy_with_logits(labels=y, logits=x,
                                                            pos_weight=pos_weight)

        def cross_entropy(logits, target):
            if target.dtype.is_integer:
                return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target,
                                                                      logits=logits)
            return tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=logits)

        def at_temperature(function):
            # model code divides the logits itself: x / T in the tensor's own dtype
            def call(x, temperature=None):
                return function(x if temperature is None else x / temperature)
            return call

        wide = ("float64", "float32")  # Ndtri has no float16/bfloat16 kernel
        return {
            "sigmoid": Binding(tf.math.sigmoid, "tensorflow.math.sigmoid"),
            "sigmoid_grad": Binding(sigmoid_grad, "tensorflow.math.sigmoid",
                                    "tensorflow.GradientTape", gradient=False),
            "log_sigmoid": Binding(tf.math.log_sigmoid, "tensorflow.math.log_sigmoid"),
            "softplus": Binding(tf.math.softplus, "tensorflow.math.softplus"),
            "probit": Binding(tf.math.ndtri, "tensorflow.math.ndtri", formats=wide),
            "softmax": Binding(at_temperature(tf.nn.softmax), "tensorflow.nn.softmax",
                               options=("temperature",)),
            "log_softmax": Binding(at_temperature(tf.nn.log_softmax), "tensorflow.nn.log_softmax",
                                   options=("temperature",)),
            "logsumexp": Binding(partial(tf.math.reduce_logsumexp, axis=-1),
                                 "tensorflow.math.reduce_logsumexp"),
            "binary_cross_entropy_with_logits": Binding(
                binary_cross_entropy_with_logits,
                "tensorflow.nn.sigmoid_cross_entropy_with_logits",
                "tensorflow.nn.weighted_cross_entropy_with_logits", options=("pos_weight",)),
            "cross_entropy": Binding(
                cross_entropy, "tensorflow.nn.sparse_softmax_cross_entropy_with_logits",
                "tensorflow.nn.softmax_cross_entropy_with_logits",
                options=("probability_target",)),
        }

    @property
    def framework_version(self):
        return self.tf.__version__

    def devices(self):
        found = ["cpu"]
        if self.tf.config.list_physical_devices("GPU"):
            found.append("gpu")
        return found

    def formats_on(self, device):
        return base.FORMATS

    def compile(self, call):
        return self.tf.function(call, jit_compile=True) if self.variant == "xla" else call

    def _scope(self):
        return self.tf.device("/GPU:0" if self.device == "gpu" else "/CPU:0")

    def from_numpy(self, array):
        with self._scope():  # identity places the constant on the scope's device
            return self.tf.identity(self.tf.constant(array))

    def to_numpy(self, native):
        return native.numpy()  # tensorflow's bfloat16 is ml_dtypes' own

    def run(self, call, args, options):
        with self._scope():
            return call(*args, **options)

    def vjp(self, call, args, cotangent, options):
        tf = self.tf
        with self._scope():
            x = tf.identity(args[0])
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = call(x, *args[1:], **options)
            return tape.gradient(y, x, output_gradients=cotangent)
