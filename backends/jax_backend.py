"""The ``jax`` backend: ``jax.nn`` and ``jax.scipy.special``, gradients by ``jax.vjp``.

Constructing it enables 64-bit types with ``jax.config.update("jax_enable_x64", True)``.
That switch is process-global: every later JAX computation in the process may produce
float64 where it would have produced float32 (JAX's default). Devices: ``cpu``, plus
``gpu`` when a GPU platform is present; arrays are placed with ``jax.device_put``.

``sigmoid_grad`` is the ``jax.vjp`` derivative of ``jax.nn.sigmoid`` (JAX has no public
function for it). Two variants: ``jit`` (the default, since the compiled path is what a
model runs) wraps every call in ``jax.jit``, and gradients run ``jax.vjp`` under
``jax.jit``, compiled once per function, shape and dtype; ``eager`` runs everything under
``jax.disable_jit()``, so even ``jax.nn``'s own jitted functions dispatch op by op, as in
an interactive session. XLA's fusion of a whole function changes a few roundings (probit
in float32 is up to 3.2 ULP off jitted, 2.2 eagerly). ``ndtr`` and ``ndtri`` accept
float32 and float64 only. JAX itself has no losses (they live in optax, which is not a
dependency), so the five losses are absent.

Declared convention: XLA on CPU flushes subnormal inputs and results to zero, which the
JAX documentation states ("Sharp bits", miscellaneous divergences from NumPy).
"""

import os
from functools import partial

from . import base
from .base import Backend, Binding, Convention, Point, is_subnormal, is_subnormal_array


def _involves_subnormal(point):
    fmt = point.fmt or "float64"
    # the truth first: one number, where a row's arguments may be thousands
    return is_subnormal(point.truth, fmt) or is_subnormal(point.args, fmt)


_SHARP_BITS = ("https://docs.jax.dev/en/latest/notebooks/Common_Gotchas_in_JAX.html"
               "#miscellaneous-divergences-from-numpy")


def _flush_to_zero(function, example=None):
    return Convention(
        function, "flush_to_zero",
        "JAX operations use flush-to-zero semantics for subnormal numbers on some backends "
        "(XLA on CPU): subnormal inputs act as zero and subnormal results become zero.",
        _SHARP_BITS,
        _involves_subnormal,
        example=example,
        flushes=True,
        array_predicate=lambda x, truth, fmt, options: (
            is_subnormal_array(x, fmt) | is_subnormal_array(truth, fmt)),
        row_predicate=lambda args, truths, fmt, options: (
            is_subnormal_array(truths, fmt) | is_subnormal(args, fmt)),
    )


_ELEMENTWISE_AND_ROWS = ("sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit",
                         "hard_sigmoid", "ndtr", "probit", "softmax", "log_softmax",
                         "logsumexp")


class JaxBackend(Backend):
    name = "jax"
    module = "jax"
    extra = "jax"
    conventions = tuple(
        _flush_to_zero(f, Point((-740.0,)) if f == "sigmoid" else None)  # 4.2e-322 is due
        for f in _ELEMENTWISE_AND_ROWS
    )
    # eager jax compiles every operation for each new shape
    check_seconds = {"jit": 57.0, "eager": 162.0}
    variants = {
        "jit": "every call compiled whole by jax.jit, as inside a jitted model",
        "eager": "op by op under jax.disable_jit(), as in an interactive session",
    }

    @classmethod
    def environment(cls, cache_directory, variant=None):
        # JAX compiles each operation (eagerly) or function (jitted) for every new shape
        # (a case set has one per row length): two thirds of a default run when done
        # afresh, read back from a persistent cache on the next run.
        if cache_directory is None:
            return {}
        return {"JAX_COMPILATION_CACHE_DIR": os.path.join(cache_directory, "jax"),
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}

    def load(self):
        jax = self.framework
        jax.config.update("jax_enable_x64", True)
        self._pullbacks = {}
        import jax.numpy as jnp
        import jax.scipy.special as special

        def sigmoid_grad(x):
            return self.vjp(jax.nn.sigmoid, (x,), jnp.ones_like(x), {})

        def at_temperature(function):
            # model code divides the logits itself: x / T in the array's own dtype
            def call(x, temperature=None):
                return function(x if temperature is None else x / temperature)
            return call

        wide = ("float64", "float32")
        return {
            "sigmoid": Binding(jax.nn.sigmoid, "jax.nn.sigmoid"),
            "sigmoid_grad": Binding(sigmoid_grad, "jax.nn.sigmoid", "jax.vjp", gradient=False),
            "log_sigmoid": Binding(jax.nn.log_sigmoid, "jax.nn.log_sigmoid"),
            "softplus": Binding(jax.nn.softplus, "jax.nn.softplus"),
            "logit": Binding(special.logit, "jax.scipy.special.logit"),
            "hard_sigmoid": Binding(jax.nn.hard_sigmoid, "jax.nn.hard_sigmoid"),
            "ndtr": Binding(special.ndtr, "jax.scipy.special.ndtr", formats=wide),
            "probit": Binding(special.ndtri, "jax.scipy.special.ndtri", formats=wide),
            "softmax": Binding(at_temperature(jax.nn.softmax), "jax.nn.softmax",
                               options=("temperature",)),
            "log_softmax": Binding(at_temperature(jax.nn.log_softmax), "jax.nn.log_softmax",
                                   options=("temperature",)),
            "logsumexp": Binding(partial(special.logsumexp, axis=-1),
                                 "jax.scipy.special.logsumexp"),
        }

    def compile(self, call):
        return self.framework.jit(call) if self.variant == "jit" else call

    def run(self, call, args, options):
        if self.variant == "jit":
            return call(*args, **options)
        with self.framework.disable_jit():
            return call(*args, **options)

    def devices(self):
        jax = self.framework
        found = ["cpu"]
        try:
            if jax.devices("gpu"):
                found.append("gpu")
        except RuntimeError:  # no GPU platform in this jaxlib
            pass
        return found

    def formats_on(self, device):
        return base.FORMATS

    def _device(self):
        return self.framework.devices(self.device)[0]

    def from_numpy(self, array):
        return self.framework.device_put(array, self._device())

    def to_numpy(self, native):
        import numpy as np

        return np.asarray(native)  # jax's bfloat16 is ml_dtypes' own

    def vjp(self, call, args, cotangent, options):
        jax = self.framework
        if self.variant == "eager":
            with jax.disable_jit():
                out, back = jax.vjp(lambda a: call(a, *args[1:], **options), args[0])
                return back(cotangent.astype(out.dtype))[0]
        # One compiled computation per function (and shape and dtype), reused across
        # calls: op-by-op dispatch of a traced backward pass compiles every primitive.
        key = (call, tuple(sorted(options)))
        pullback = self._pullbacks.get(key)
        if pullback is None:
            def pull(x, ct, *rest, **values):
                out, back = jax.vjp(lambda a: call(a, *rest, **values), x)
                # the cotangent in the output's dtype: a function that promotes (keras'
                # cross-entropy on jax returns float64 for float32 logits) still has a
                # gradient, in the input's dtype
                return back(ct.astype(out.dtype))[0]

            pullback = self._pullbacks[key] = jax.jit(pull)
        return pullback(args[0], cotangent, *args[1:], **options)
