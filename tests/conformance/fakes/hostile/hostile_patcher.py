"""At import, replaces numpy's exp: any other backend judged in this process would be wrong."""

import numpy as np

from hostile_plugins import PrinterBackend

np.exp = lambda x, *a, **k: np.zeros_like(x)  # noqa: E731


class PatcherBackend(PrinterBackend):
    name = "patcher"
