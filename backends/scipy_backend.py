"""The ``scipy`` backend: ``scipy.special``'s logistic, normal and softmax functions.

``expit``, ``log_expit``, ``logit``, ``ndtr``, ``ndtri``, ``softplus`` (scipy 1.15 and
later; ``np.logaddexp(0, x)``), ``softmax``, ``log_softmax`` and ``logsumexp`` (the last
three with ``axis=-1``), each bound where this scipy has it. scipy has no sigmoid
derivative, hard sigmoid or losses: those are absent.

Every format numpy holds is offered, because scipy accepts them all, and each call
returns what a user gets. The ufuncs (``expit``, ``log_expit``, ``logit``, ``ndtr``,
``ndtri``) have float32 and float64 loops only: numpy runs a float16 input in the first
loop of the ufunc's ``types`` it casts to safely (its documented type-casting rules), so
``expit(float16)`` returns float64 (first loop ``d->d``) and ``ndtri(float16)`` float32
(first loop ``f->f``); declared as conventions (``promotes``) with numpy's rule as the
reference. A bfloat16 input (ml_dtypes) takes the same route through ml_dtypes' safe
casts, which scipy does not document: it is reported as it comes, a dtype failure.
``softplus``, ``softmax`` and ``log_softmax`` compute in numpy's own float16 and bfloat16
loops and keep the format; ``logsumexp`` refuses bfloat16 (TypeError: "dtype argument
must be a NumPy dtype"), so it is not offered there.
"""

from functools import partial

from . import base
from .base import Backend, Binding, Convention
from .numpy_backend import NumpyArrays

_CASTING_RULES = "https://numpy.org/doc/stable/user/basics.ufuncs.html#type-casting-rules"

# The result format of a float16 input, by the first loop of the ufunc's ``types`` that
# float16 casts to safely (tested against scipy's ufuncs).
_FLOAT16_RESULT = {"sigmoid": "float64", "log_sigmoid": "float64", "logit": "float64",
                   "ndtr": "float64", "probit": "float32"}


def _float16_promotion(function, result_format):
    return Convention(
        function, "float16_promoted",
        f"scipy.special's ufunc has no float16 loop: numpy computes a float16 input in "
        f"the first loop it casts to safely and returns {result_format}.",
        _CASTING_RULES,
        lambda point: False,  # a promotion explains the dtype, not a value
        promotes=(("float16", result_format),),
        array_predicate=lambda x, truth, fmt, options: False,
    )


class ScipyBackend(NumpyArrays, Backend):
    name = "scipy"
    module = "scipy.special"
    extra = "scipy"
    check_seconds = 7.0
    conventions = tuple(_float16_promotion(f, r) for f, r in _FLOAT16_RESULT.items())

    def load(self):
        special = self.framework
        no_bfloat16 = ("float64", "float32", "float16")
        functions = {
            "sigmoid": ("expit", None),
            "log_sigmoid": ("log_expit", None),
            "softplus": ("softplus", None),
            "logit": ("logit", None),
            "ndtr": ("ndtr", None),
            "probit": ("ndtri", None),
            "softmax": ("softmax", None),
            "log_softmax": ("log_softmax", None),
            "logsumexp": ("logsumexp", no_bfloat16),
        }
        along_last_axis = ("softmax", "log_softmax", "logsumexp")
        bindings = {}
        for canonical, (scipy_name, formats) in functions.items():
            if not hasattr(special, scipy_name):  # softplus came in scipy 1.15
                continue
            call = getattr(special, scipy_name)
            if canonical in along_last_axis:
                call = partial(call, axis=-1)
            bindings[canonical] = Binding(call, f"scipy.special.{scipy_name}", gradient=False,
                                          formats=formats)
        return bindings

    def result_format(self, function, fmt):
        # bfloat16 takes float16's route to a wider loop, through ml_dtypes' safe casts
        # (measured; documented by neither scipy nor numpy, so not a convention)
        if fmt == "bfloat16" and function in _FLOAT16_RESULT:
            return _FLOAT16_RESULT[function]
        return super().result_format(function, fmt)

    @property
    def framework_version(self):
        import scipy

        return scipy.__version__

    def formats_on(self, device):
        return base.FORMATS if base.has_bfloat16() else base.FORMATS[:3]
