"""The ``torch`` backend: PyTorch's own functions, gradients by ``torch.autograd``.

Devices: ``cpu`` always, ``cuda`` and ``mps`` when this build sees them (MPS has no
float64). Arrays are made as float64 tensors from the exact Python floats and then cast,
which is exact because every value is representable in the target format.

Two variants: ``eager`` (the default: what a plain call of torch does) and ``compile``,
every call through ``torch.compile(dynamic=True)`` (TorchDynamo and TorchInductor, which
on CPU generates and builds C++: a C++ compiler is needed, and without one the variant
is unavailable with that reason). ``dynamic=True`` compiles one graph for every length
(a case set has many), not one per shape; the generated code is cached under refact's
cache directory (``TORCHINDUCTOR_CACHE_DIR``), so later runs read it back. A function
that fails to compile is an ``error`` record with the compiler's reason.

Recipes (the rest are torch's callables themselves, with ``dim=-1`` or
``reduction="none"`` bound):

* ``sigmoid_grad``: the autograd derivative of ``torch.sigmoid`` (a vector-Jacobian
  product with ones), since torch has no public function for it;
* the losses' options are torch's own keywords (``weight``, ``pos_weight``,
  ``ignore_index``, ``label_smoothing``, ``reduction``), Python weights made tensors of
  the input's dtype; a ``temperature`` of softmax/log_softmax divides the input in its
  own dtype first, as model code does;
* ``distillation_loss``: ``F.kl_div(F.log_softmax(s / T), F.log_softmax(t / T),
  reduction="none", log_target=True).sum(-1) * T**2``. torch has no distillation loss;
  this is the documented use of ``kl_div``, which takes the input in log space "to avoid
  underflow issues" and the target in log space with ``log_target=True``
  (https://docs.pytorch.org/docs/stable/generated/torch.nn.KLDivLoss.html), times the
  ``T**2`` of Hinton et al. (2015).
"""

import os
import shutil
from functools import partial

from . import base
from .base import Backend, Binding, Convention, Point

_DOCS = "https://docs.pytorch.org/docs/stable/generated/"
_BCE_LOG_FLOOR = -100.0


def _bce_log_clamped(point):
    p, y = point.args[:2]
    import math

    log_p = math.log(p) if p > 0 else -math.inf
    log_q = math.log1p(-p) if p < 1 else -math.inf
    return (y != 0 and log_p < _BCE_LOG_FLOOR) or (y != 1 and log_q < _BCE_LOG_FLOOR)


def _logit_clamped(point):
    eps = point.options.get("eps")
    if eps is None:
        return False
    p = point.args[0]
    return p < eps or p > 1 - eps


CONVENTIONS = (
    Convention(
        "softplus", "softplus_threshold",
        "F.softplus returns x itself where x * beta > threshold (defaults beta=1, "
        "threshold=20), dropping log1p(exp(-x)).",
        _DOCS + "torch.nn.functional.softplus.html",
        lambda point: point.args[0] > 20.0,
        example=Point((30.0,)),
        edges=(20.0,),
        array_predicate=lambda x, truth, fmt, options: x > 20.0,
    ),
    Convention(
        "binary_cross_entropy", "log_clamp_minus_100",
        "BCELoss clamps its log outputs to >= -100, so a loss term never exceeds 100 "
        "(p = 0 with y = 1 gives 100, not inf).",
        _DOCS + "torch.nn.BCELoss.html",
        _bce_log_clamped,
        example=Point((0.0, 1.0)),
    ),
    Convention(
        "logit", "eps_clamp",
        "torch.logit(p, eps) clamps p to [eps, 1 - eps] when eps is given (the canonical "
        "call passes none, so this applies only to calls with eps).",
        _DOCS + "torch.logit.html",
        _logit_clamped,
        example=Point((0.0,), options={"eps": 1e-6}),
        array_predicate=lambda p, truth, fmt, options: (
            False if options.get("eps") is None else (p < options["eps"]) | (p > 1 - options["eps"])),
    ),
)


class TorchBackend(Backend):
    name = "torch"
    module = "torch"
    extra = "torch"
    conventions = CONVENTIONS
    variants = {
        "eager": "op by op, as a plain call of torch runs",
        "compile": "every call through torch.compile(dynamic=True): TorchInductor's generated C++",
    }
    check_seconds = {"eager": 16.0, "compile": 110.0}

    @classmethod
    def environment(cls, cache_directory, variant=None):
        # Inductor builds C++ for each graph: minutes afresh, seconds read back
        if variant != "compile" or cache_directory is None:
            return {}
        return {"TORCHINDUCTOR_CACHE_DIR": os.path.join(cache_directory, "torchinductor")}

    def load(self):
        torch = self.framework
        F = torch.nn.functional
        if self.variant == "compile":
            compiler = os.environ.get("CXX") or next(
                (c for c in ("g++", "c++", "clang++") if shutil.which(c)), None)
            if compiler is None or shutil.which(compiler) is None:
                raise base.BackendUnavailable(
                    "torch[compile]: torch.compile on CPU builds C++ and no C++ compiler was "
                    "found (g++, c++ or clang++ on PATH, or CXX)")

        def sigmoid_grad(x):
            # the derivative of sigmoid as this variant runs it (compiled, or not)
            return self.vjp(self.binding("sigmoid").call, (x,), torch.ones_like(x), {})

        def tensor_of(value, like):
            # weights come as Python numbers or lists; torch takes them as tensors
            if value is None or torch.is_tensor(value):
                return value
            return torch.tensor(value, dtype=like.dtype, device=like.device)

        def binary_cross_entropy(p, y, weight=None, reduction="none"):
            return F.binary_cross_entropy(p, y, weight=tensor_of(weight, p), reduction=reduction)

        def binary_cross_entropy_with_logits(x, y, weight=None, pos_weight=None, reduction="none"):
            return F.binary_cross_entropy_with_logits(
                x, y, weight=tensor_of(weight, x), pos_weight=tensor_of(pos_weight, x),
                reduction=reduction)

        def cross_entropy(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0,
                          reduction="none"):
            return F.cross_entropy(logits, target, weight=tensor_of(weight, logits),
                                   ignore_index=ignore_index, label_smoothing=label_smoothing,
                                   reduction=reduction)

        def at_temperature(function):
            # model code divides the logits itself: x / T in the tensor's own dtype
            def call(x, temperature=None):
                return function(x if temperature is None else x / temperature, dim=-1)
            return call

        def distillation_loss(student, teacher, temperature):
            log_p_student = F.log_softmax(student / temperature, dim=-1)
            log_p_teacher = F.log_softmax(teacher / temperature, dim=-1)
            kl = F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True)
            return kl.sum(dim=-1) * (temperature * temperature)

        wide = ("float64", "float32")  # ndtri has no CPU kernel for float16/bfloat16
        return {
            "sigmoid": Binding(torch.sigmoid, "torch.sigmoid"),
            "sigmoid_grad": Binding(sigmoid_grad, "torch.sigmoid", "torch.autograd.grad",
                                    gradient=False),
            "log_sigmoid": Binding(F.logsigmoid, "torch.nn.functional.logsigmoid"),
            "softplus": Binding(F.softplus, "torch.nn.functional.softplus"),
            "logit": Binding(torch.logit, "torch.logit", options=("eps",)),
            "hard_sigmoid": Binding(F.hardsigmoid, "torch.nn.functional.hardsigmoid"),
            "ndtr": Binding(torch.special.ndtr, "torch.special.ndtr"),
            "probit": Binding(torch.special.ndtri, "torch.special.ndtri", formats=wide),
            "softmax": Binding(at_temperature(torch.softmax), "torch.softmax",
                               options=("temperature",)),
            "log_softmax": Binding(at_temperature(torch.log_softmax), "torch.log_softmax",
                                   options=("temperature",)),
            "logsumexp": Binding(partial(torch.logsumexp, dim=-1), "torch.logsumexp"),
            "binary_cross_entropy": Binding(
                binary_cross_entropy, "torch.nn.functional.binary_cross_entropy",
                options=("weight", "reduction")),
            "binary_cross_entropy_with_logits": Binding(
                binary_cross_entropy_with_logits,
                "torch.nn.functional.binary_cross_entropy_with_logits",
                options=("weight", "pos_weight", "reduction")),
            "cross_entropy": Binding(
                cross_entropy, "torch.nn.functional.cross_entropy",
                options=("weight", "ignore_index", "label_smoothing", "reduction",
                         "probability_target")),
            "distillation_loss": Binding(
                distillation_loss, "torch.nn.functional.kl_div",
                "torch.nn.functional.log_softmax"),
        }

    def compile(self, call):
        return self.framework.compile(call, dynamic=True) if self.variant == "compile" else call

    def devices(self):
        torch = self.framework
        found = ["cpu"]
        if torch.cuda.is_available():
            found.append("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            found.append("mps")
        return found

    def formats_on(self, device):
        if device == "mps":
            return ("float32", "float16", "bfloat16")
        return ("float64", "float32", "float16", "bfloat16")

    def from_numpy(self, array):
        torch = self.framework
        if array.dtype.name == "bfloat16":  # torch.from_numpy knows no bfloat16: move the bits
            tensor = torch.from_numpy(array.view("int16").copy()).view(torch.bfloat16)
        else:
            tensor = torch.from_numpy(array.copy())
        return tensor.to(self.device)

    def to_numpy(self, native):
        torch = self.framework
        tensor = native.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            return tensor.view(torch.int16).numpy().view(base.numpy_dtype("bfloat16"))
        return tensor.numpy()

    def vjp(self, call, args, cotangent, options):
        torch = self.framework
        x = args[0].detach().requires_grad_(True)
        with torch.enable_grad():
            y = call(x, *args[1:], **options)
            (gradient,) = torch.autograd.grad(y, x, grad_outputs=cotangent)
        return gradient
