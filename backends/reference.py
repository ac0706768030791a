"""The ``reference`` backend: refact's pure-Python core, in float64.

Arrays are nested lists of Python floats, so the numpy conversions are copies; there is
no autograd (the core computes values, not derivatives of its own code). The core's
losses reduce by default, so they are bound with ``reduction="none"``; its
``distillation_loss`` averages over rows and is applied row by row. Keyword options are
whatever the core's functions accept, read from their signatures.
"""

import inspect
from functools import partial

from .base import FUNCTIONS, Backend, Binding

_OPTIONS = ("weight", "pos_weight", "ignore_index", "label_smoothing", "reduction", "eps",
            "temperature")


class ReferenceBackend(Backend):
    name = "reference"
    module = "refact"
    extra = ""
    check_seconds = 27.0  # pure Python: the dense rows of the losses cost most of it

    def load(self):
        core = self.framework

        def distillation_loss(student, teacher, temperature):
            return [core.distillation_loss(s, t, temperature) for s, t in zip(student, teacher)]

        bindings = {}
        for name in FUNCTIONS:
            fn = getattr(core, name, None)
            if fn is None:
                continue
            parameters = inspect.signature(fn).parameters
            # keywords with a default only (distillation's positional temperature is none)
            options = [o for o in _OPTIONS if o in parameters
                       and parameters[o].default is not inspect.Parameter.empty]
            if name == "cross_entropy":
                options.append("probability_target")
            call = partial(fn, reduction="none") if "reduction" in parameters else fn
            if name == "distillation_loss":
                call = distillation_loss
            bindings[name] = Binding(call, f"refact.{name}", gradient=False, options=options)
        return bindings

    def formats_on(self, device):
        return ("float64",)

    def from_numpy(self, array):
        return array.tolist()  # nested Python floats (ints for class indices): exact

    def to_numpy(self, native):
        import numpy as np

        return np.asarray(native, dtype=np.float64)

