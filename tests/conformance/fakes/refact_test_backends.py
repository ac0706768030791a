"""Test-only backends for the conformance runner, importable by its worker processes.

``OracleBackend`` answers every function with the oracle's correctly rounded value (and
the correctly rounded derivative for gradients): a conformance run must report zero
failures for it. The others misbehave on purpose: off by a few ULPs, crashing the
process, hanging.
"""

import os
import time

import numpy as np

from refact.backends import Backend, Binding
from refact.backends.base import FUNCTIONS, numpy_dtype
from refact.conformance.truth.catalog import get_function
from refact.conformance.truth.oracle import derivative_truth
from refact.conformance.numbers.formats import get_format, next_up
from refact.conformance.truth.oracle import truth_many
from refact.conformance.truth.arrays import point_truths


class Array:
    """Nested Python floats tagged with their format."""

    def __init__(self, values, fmt):
        self.values, self.fmt = values, fmt


def _points(function, args):
    """The catalog points of a batched canonical call (first axis = points)."""
    spec = get_function(function)
    columns = []
    for parameter, arg in zip(spec.parameters, args):
        if parameter.role == "temperature":
            columns.append(None)
        else:
            columns.append(arg.values if isinstance(arg, Array) else arg)
    n = len(next(c for c in columns if c is not None))
    points = []
    for i in range(n):
        point = []
        for parameter, column, arg in zip(spec.parameters, columns, args):
            if column is None:
                point.append(arg)
            else:
                v = column[i]
                point.append(tuple(v) if isinstance(v, list) else v)
        points.append(tuple(point))
    return spec, points


def _leaves(values):
    if isinstance(values, list):
        return [leaf for v in values for leaf in _leaves(v)]
    return [values]


def _rebuild(shape_like, values):
    if isinstance(shape_like, list):
        return [_rebuild(v, values) for v in shape_like]
    return next(values)


def _fmt(args):
    return next(a.fmt for a in args if isinstance(a, Array))


class OracleBackend(Backend):
    name = "oracle"
    module = ""

    def load(self):
        def binding(function):
            def call(*args):
                if get_function(function).kind == "elementwise":
                    return self._elementwise(function, args)
                spec, points = _points(function, args)
                truths = truth_many(function, points, _fmt(args))
                values = [list(t.values) if spec.vector_output else t.values[0] for t in truths]
                return Array([self._adjust(function, v) for v in values], _fmt(args))
            return Binding(call, f"refact_test_backends.{function}", gradient=True)

        return {name: binding(name) for name in FUNCTIONS}

    def _adjust(self, function, value):
        return value

    def _elementwise(self, function, args):
        """Any nesting (a batch of rows, say): the correctly rounded truth at every leaf,
        same shape (the engine's truths: the fast truth where it decides, mpmath else)."""
        fmt = _fmt(args)
        leaves = np.array(_leaves(args[0].values), dtype=np.float64)
        rounded = point_truths(function, fmt, leaves, sample=0).rounded.tolist() if len(leaves) else []
        values = iter(self._adjust(function, v) for v in rounded)
        return Array(_rebuild(args[0].values, values), fmt)

    def formats_on(self, device):
        return ("float64", "float32", "float16", "bfloat16")

    def from_numpy(self, array):
        if array.dtype.kind in "iu":
            return array.tolist()
        return Array(array.astype("float64").tolist(), array.dtype.name)

    def to_numpy(self, native):
        return np.asarray(native.values, dtype=numpy_dtype(native.fmt))

    def vjp(self, call, args, cotangent, options):
        function = next(n for n, b in self.bindings.items() if b.call is call)
        spec, points = _points(function, args)
        fmt = get_format(_fmt(args))
        grads = []
        for point, cot in zip(points, cotangent.values):
            cot = tuple(cot) if isinstance(cot, list) else cot
            values = [r for r, _ in derivative_truth(spec, point, fmt, cot)]
            grads.append(values if isinstance(point[0], tuple) else values[0])  # shaped like x
        return Array(grads, fmt.name)


class OffByThreeBackend(OracleBackend):
    """The oracle's sigmoid moved three representable steps up: a real failure."""

    name = "off_by_three"

    def _adjust(self, function, value):
        if function != "sigmoid" or value != value or value in (0.0, 1.0):
            return value
        for _ in range(3):
            value = next_up(value, get_format("float64"))
        return value


class CrashingBackend(OracleBackend):
    """Dies like a segfaulting framework whenever sigmoid is called."""

    name = "crashing"

    def _adjust(self, function, value):
        if function == "sigmoid":
            os._exit(139)
        return value


class HangingBackend(OracleBackend):
    """Never answers a softplus call."""

    name = "hanging"

    def _adjust(self, function, value):
        if function == "softplus":
            time.sleep(3600)
        return value


class RefusingBackend(OracleBackend):
    """Raises on a NaN input, as torch's binary_cross_entropy does; else the oracle."""

    name = "refusing"

    def _elementwise(self, function, args):
        if any(v != v for a in args for v in _leaves(a.values)):
            raise ValueError("NaN is not a valid input")
        return super()._elementwise(function, args)


class TwoVariantBackend(OracleBackend):
    """The oracle in two variants, ``eager`` (the default) and ``jit``, whose sigmoid is
    ten representable steps above the truth: a flaw of one variant only, which a run must
    report on that variant's records and no other."""

    name = "two_variants"
    variants = {"eager": "the oracle's values, as they are",
                "jit": "the oracle's values with sigmoid moved ten steps up"}

    @classmethod
    def environment(cls, cache_directory, variant=None):
        return {"REFACT_TWO_VARIANTS_ENVIRONMENT": variant}

    def _adjust(self, function, value):
        if self.variant != "jit" or function != "sigmoid" or value != value or value in (0.0, 1.0):
            return value
        if os.environ.get("REFACT_TWO_VARIANTS_ENVIRONMENT") != self.variant:
            raise RuntimeError("the worker did not set this variant's environment")
        for _ in range(10):
            value = next_up(value, get_format("float64"))
        return value


def keras_engine(backend):
    """The engine Keras runs on in a worker (a task: :func:`isolation.execute` calls it
    with the worker's backend)."""
    return backend.framework.backend.backend()
