"""The ``numpy`` backend: refact's own vectorised implementation (:mod:`.numpy_impl`).

Unlike the framework adapters this one maps every canonical function to refact's code,
which computes narrow formats in float64 and rounds once. bfloat16 is offered when
ml_dtypes is installed. No autograd.
"""

from . import base
from .base import Backend, Binding


class NumpyArrays:
    """The conversions of backends whose native arrays are numpy arrays."""

    def from_numpy(self, array):
        return array

    def to_numpy(self, native):
        import numpy as np

        return np.asarray(native)


class NumpyBackend(NumpyArrays, Backend):
    name = "numpy"
    module = "numpy"
    extra = "numpy"
    check_seconds = 24.0

    def load(self):
        from . import numpy_impl

        def bind(name, options=()):
            return Binding(getattr(numpy_impl, name), f"refact.backends.numpy_impl.{name}",
                           gradient=False, options=options)

        bindings = {name: bind(name) for name in base.FUNCTIONS}
        bindings["binary_cross_entropy_with_logits"] = bind(
            "binary_cross_entropy_with_logits", options=("pos_weight",))
        bindings["cross_entropy"] = bind(
            "cross_entropy", options=("label_smoothing", "probability_target"))
        return bindings

    def formats_on(self, device):
        return base.FORMATS if base.has_bfloat16() else base.FORMATS[:3]
