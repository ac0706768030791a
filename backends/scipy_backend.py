"""The ``scipy`` backend: ``scipy.special``'s logistic, normal and softmax functions.

``expit``, ``log_expit``, ``logit``, ``ndtr``, ``ndtri``, ``softmax``, ``log_softmax`` and
``logsumexp`` (the last three with ``axis=-1``). scipy has no sigmoid derivative, softplus,
hard sigmoid or losses: those are absent. Its ufuncs have float32 and float64 loops only
(a float16 input comes back as float32), so float16 and bfloat16 are not offered.
"""

from functools import partial

from .base import Backend, Binding
from .numpy_backend import NumpyArrays


class ScipyBackend(NumpyArrays, Backend):
    name = "scipy"
    module = "scipy.special"
    extra = "scipy"

    def load(self):
        special = self.framework
        return {
            "sigmoid": Binding(special.expit, "scipy.special.expit", gradient=False),
            "log_sigmoid": Binding(special.log_expit, "scipy.special.log_expit", gradient=False),
            "logit": Binding(special.logit, "scipy.special.logit", gradient=False),
            "ndtr": Binding(special.ndtr, "scipy.special.ndtr", gradient=False),
            "probit": Binding(special.ndtri, "scipy.special.ndtri", gradient=False),
            "softmax": Binding(partial(special.softmax, axis=-1), "scipy.special.softmax",
                               gradient=False),
            "log_softmax": Binding(partial(special.log_softmax, axis=-1),
                                   "scipy.special.log_softmax", gradient=False),
            "logsumexp": Binding(partial(special.logsumexp, axis=-1), "scipy.special.logsumexp",
                                 gradient=False),
        }

    @property
    def framework_version(self):
        import scipy

        return scipy.__version__

    def formats_on(self, device):
        return ("float64", "float32")
