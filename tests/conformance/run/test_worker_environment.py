"""isolation: every worker quiets the frameworks' C++ logging before it imports one, and
a value the user set wins; what picks kernels or devices is never touched."""

import textwrap

import pytest

from refact.conformance.run.isolation import QUIET_LOGS, Worker

PROBE = "refact_environment_probe"
VARIABLES = ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY", "GLOG_minloglevel",
             "TF_ENABLE_ONEDNN_OPTS", "JAX_PLATFORMS")


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """A task module the spawned worker can import (it inherits sys.path), and an
    environment holding none of the variables, as a user's shell may."""
    (tmp_path / f"{PROBE}.py").write_text(textwrap.dedent("""\
        import os

        def environment_of(*names, backend=None):
            return {name: os.environ.get(name) for name in names}
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("REFACT_CACHE_DIR", str(tmp_path / "cache"))
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return __import__(PROBE)


def worker_environment(probe):
    with Worker("reference", timeout=60) as worker:
        values, _ = worker.run({"op": "task", "task": probe.environment_of, "args": VARIABLES,
                                "format": None})
    return values


def test_the_quiet_log_levels():
    assert QUIET_LOGS == {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR", "GLOG_minloglevel": "2"}


def test_a_worker_quiets_the_logs_and_leaves_kernels_and_devices_alone(probe):
    assert worker_environment(probe) == {
        "TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR", "GLOG_minloglevel": "2",
        "TF_ENABLE_ONEDNN_OPTS": None, "JAX_PLATFORMS": None,
    }


def test_the_users_values_win(probe, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    monkeypatch.setenv("GRPC_VERBOSITY", "DEBUG")
    monkeypatch.setenv("GLOG_minloglevel", "0")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert worker_environment(probe) == {
        "TF_CPP_MIN_LOG_LEVEL": "0", "GRPC_VERBOSITY": "DEBUG", "GLOG_minloglevel": "0",
        "TF_ENABLE_ONEDNN_OPTS": None, "JAX_PLATFORMS": "cpu",
    }
