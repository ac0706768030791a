"""Fixtures shared by the core's tests.

``mp64`` hands out the helpers of ``_mp.py`` (exact ULP errors against mpmath). With
``--import-mode=importlib`` no test folder is on ``sys.path``, so the module is loaded
here once, from its file.
"""

import importlib.util
import pathlib

import pytest


def _load_mp():
    path = pathlib.Path(__file__).with_name("_mp.py")
    spec = importlib.util.spec_from_file_location("refact_core_tests_mp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_MP = _load_mp()


@pytest.fixture(scope="session")
def mp64():
    """Exact float64 ULP helpers: ``mp64.ulp_error(y, t)``, ``mp64.nearest(t)``, ``mp64.ulp(t)``."""
    return _MP
