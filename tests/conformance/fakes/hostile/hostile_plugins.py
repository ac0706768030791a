"""Plugins that attack the run, each registered by an entry point (see the dist-info
folder beside this file): the conformance suite must record them as errors, keep them
out of every other backend's processes, and write the same reports for the others."""

import numpy as np

from refact.backends import Backend, Binding


class _NumpyArrays(Backend):
    module = "numpy"

    def formats_on(self, device):
        return ("float64", "float32")

    def from_numpy(self, array):
        return array

    def to_numpy(self, native):
        return np.asarray(native)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


class LiarBackend(_NumpyArrays):
    """Text no report can hold, and results that are not what they claim."""

    name = "liar"

    def load(self):
        def softmax(x):
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return (e / e.sum(axis=-1, keepdims=True))[..., :1]  # the first share only

        def log_sigmoid(x):
            raise ValueError("refused \ud800 with \x1b[2J a cleared screen")

        def sigmoid(x):  # float64 numbers in a float32 array's clothing: numpy cannot lie
            return _sigmoid(x.astype(np.float64))

        return {"softmax": Binding(softmax, "numpy.exp", gradient=False),
                "log_sigmoid": Binding(log_sigmoid, "numpy.log", gradient=False),
                "sigmoid": Binding(sigmoid, "numpy.exp", gradient=False)}

    @property
    def framework_version(self):
        return "1.0\ud800\x1b[31m"


class PrinterBackend(_NumpyArrays):
    """Prints escape codes and megabytes on every call."""

    name = "printer"

    def load(self):
        def sigmoid(x):
            print("\x1b[2J\x1b[Hprinter was here " + "#" * 2_000_000, flush=True)
            return _sigmoid(x)

        return {"sigmoid": Binding(sigmoid, "numpy.exp", gradient=False)}
