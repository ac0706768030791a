"""A backend binding ``toy_exp``, a function the core does not have: the catalog may know
more functions than the core, and a plugin may bind them (see test_toy_function.py)."""

import numpy as np

from refact.backends import Backend, Binding


class ToyBackend(Backend):
    name = "toy"
    module = "numpy"

    def load(self):
        return {"toy_exp": Binding(np.exp, "numpy.exp", gradient=False)}

    def formats_on(self, device):
        return ("float64", "float32", "float16")

    def from_numpy(self, array):
        return array

    def to_numpy(self, native):
        return np.asarray(native)
