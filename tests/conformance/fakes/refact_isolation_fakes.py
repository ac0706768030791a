"""Test-only backends and tasks for the worker isolation tests, importable by the workers.

The backends build on the oracle backend of ``refact_test_backends`` and misbehave in
the ways a framework can kill or stall its process: a real segmentation fault, a
constructor that never returns, a process whose pipe closes a moment before it exits.
The tasks are module-level functions so that a ``"task"`` job can name them.
"""

import os
import time
import warnings

from refact_test_backends import OracleBackend


class SegfaultingBackend(OracleBackend):
    """Dereferences a null pointer whenever sigmoid is called: a real SIGSEGV."""

    name = "segfaulting"

    def _adjust(self, function, value):
        if function == "sigmoid":
            import ctypes
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file from a test
            ctypes.string_at(0)
        return value


class SlowStartingBackend(OracleBackend):
    """Takes far longer to construct than any test waits (a framework stuck importing)."""

    name = "slow_starting"

    def load(self):
        time.sleep(3600)
        return super().load()


class LingeringCrashBackend(OracleBackend):
    """On sigmoid, closes every descriptor (the pipe to the parent among them), then exits
    with 139 half a second later: the order in which a dying process's descriptors close
    before its exit status can be collected, with the gap made wide."""

    name = "lingering_crash"

    def _adjust(self, function, value):
        if function == "sigmoid":
            os.closerange(3, 4096)
            time.sleep(0.5)
            os._exit(139)
        return value


class EnvironmentBackend(OracleBackend):
    """Asks its worker for two environment variables, as an adapter asks for its
    framework's compilation cache: one naming the cache directory it was given."""

    name = "environment"

    @classmethod
    def environment(cls, cache_directory):
        return {"REFACT_TEST_CACHE_GIVEN": str(cache_directory),
                "REFACT_TEST_PRESET": "set by the backend"}


def process_id(backend=None):
    return os.getpid()


def describe_worker(a, b, backend=None, scale=1):
    """What a task sees of its worker: the backend given to it, its arguments, the
    environment the worker set up."""
    return {"backend": type(backend).__name__, "name": backend.name, "value": (a + b) * scale,
            "pid": os.getpid(),
            "environment": {k: v for k, v in os.environ.items() if k.startswith("REFACT_TEST_")},
            "warnings": warnings.filters[0][0] if warnings.filters else None}


def failing_task(backend=None):
    raise RuntimeError("the task failed")


class PrintingBackend(OracleBackend):
    """Prints on every call, from Python and from C (the file descriptor itself), far
    more than a report may hold, escape codes and a lone surrogate included."""

    name = "printing"

    def _adjust(self, function, value):
        print("\x1b[31mred\x1b[0m python says hello " + "x" * 100_000)
        os.write(2, b"C-level stderr line\n")
        return value


class MemoryHungryBackend(OracleBackend):
    """Raises MemoryError on sigmoid, as a framework does when an allocation fails."""

    name = "memory_hungry"

    def _adjust(self, function, value):
        if function == "sigmoid":
            raise MemoryError("cannot allocate 1 TiB")
        return value


class AlwaysHangingBackend(OracleBackend):
    """Every call hangs."""

    name = "always_hanging"

    def _adjust(self, function, value):
        time.sleep(3600)


def pid_of_parent(backend):
    """The worker's parent pid and its own pid, as a task answer."""
    return [os.getppid(), os.getpid()]
