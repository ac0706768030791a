"""Turning user input into floats and back: numbers, nested sequences, axes.

Every public function of the core goes through here, so the rules for bad input
are stated once, and every error names the function, the argument and the position:

* A number is a real number that is not a bool; ``float()`` makes it a float (float
  subclasses included, so that their own ``__eq__`` or ``__lt__`` never reach the kernels).
  Anything else in its place is a TypeError.
* A sequence is ordered and sized: a list, a tuple, a ``range``, anything with ``len()``
  and indexing, or an array with ``tolist()`` (numpy, ``array.array``). Sets, mappings and
  bytes-like objects are not: a set's order is arbitrary and bytes are not numbers, so
  they are a TypeError rather than a silently meaningless result.
* Iterators and generators are refused too, by every function and for every argument:
  a TypeError asks for a list. Materialising them instead would hide the two ways they
  go wrong, being read twice (the second time empty) and never ending; a list is what
  NumPy and the frameworks want as well.
* A nesting must be rectangular (else ValueError, "ragged") and at most ``MAX_NDIM``
  deep; a list that contains itself is a ValueError, not a hang.
* An exception raised by the user's own code (a sequence's ``__len__``, ``__iter__`` or
  ``__getitem__``, ``tolist``, a number's ``__float__``) is chained, as ``__cause__``,
  under a TypeError that says which argument and position it came from.
"""

import collections.abc
import itertools
import math
import numbers
import operator
import reprlib

__all__ = [
    "MAX_NDIM", "describe", "is_float_list", "to_float", "to_index", "elementwise", "to_array",
    "from_array", "normalize_axis", "lanes", "check_temperature", "probability_limit",
]

#: The deepest nesting accepted: NumPy 2's limit on an array's dimensions.
MAX_NDIM = 64

_REPR = reprlib.Repr()  # bounded: a value in a message is a few dozen characters at most
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdict = 4


def describe(value):
    """A short repr of ``value`` for an error message; never raises, never runs long."""
    try:
        return _REPR.repr(value)
    except Exception:  # a hostile __repr__, or an int too long to print
        if isinstance(value, int):
            return f"<an int of {value.bit_length()} bits>"
        return f"<{type(value).__name__} object>"


def _error_text(error):
    """``Name: message`` of a user's exception, bounded, for the message that chains it."""
    try:
        text = str(error)
    except Exception:
        text = ""
    text = text if len(text) <= 200 else text[:200] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _where(position):
    return "" if not position else " at index " + "".join(f"[{i}]" for i in position)


def is_float_list(x):
    """True for a list whose elements are all exactly floats: the inputs the kernels take as they are.

    One pass of ``type`` over the list, the fast paths' only check: a float subclass, a bool
    or an int fails it and goes through :func:`to_array`, which converts it.
    """
    return type(x) is list and list(map(type, x)).count(float) == len(x)


def to_float(value, function, argument="x", position=()):
    """Return ``value`` as a float, or raise TypeError/ValueError naming where it came from."""
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{function}(): {argument}{_where(position)} must be a real number, "
            f"not {type(value).__name__} {describe(value)}"
        )
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"{function}(): {argument}{_where(position)} = {describe(value)} is too large for a float"
        ) from None
    except Exception as error:
        raise TypeError(
            f"{function}(): {argument}{_where(position)} = {describe(value)} could not be "
            f"converted to a float ({_error_text(error)})"
        ) from error


def to_index(value, function, argument, where=""):
    """``value`` as an exact int (``operator.index``): a class index, an axis, an ignore_index.

    ``where`` is the position as text (``"[3]"``). A bool, or a value without ``__index__``,
    is a TypeError; so is an ``__index__`` that raises (chained).
    """
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(
            f"{function}(): {argument}{where} must be an integer, not {type(value).__name__} {describe(value)}")
    try:
        return operator.index(value)
    except Exception as error:
        raise TypeError(f"{function}(): {argument}{where} = {describe(value)} could not be read "
                        f"as an integer ({_error_text(error)})") from error


def _refuse(value, function, argument, position, reason):
    raise TypeError(
        f"{function}(): {argument}{_where(position)} must be a number or a sequence of numbers, "
        f"not {type(value).__name__} {describe(value)} ({reason})"
    )


def _rows(value, function, argument, position):
    """``value`` as a list if it is a sequence, None if it stands for a number, or TypeError.

    "Stands for a number" includes anything that is no container at all (None, a string,
    an object): :func:`to_float` then refuses it with its own message. Ordered, sized
    sequences are read once, with at most ``len()`` + 1 steps of their iterator, so a
    sequence whose iteration never ends cannot hang the call.
    """
    kind = type(value)
    if kind is list:
        return value
    if kind is tuple:
        return list(value)
    if kind is float or kind is int or isinstance(value, (numbers.Number, str)):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        _refuse(value, function, argument, position, "bytes are not numbers")
    if isinstance(value, collections.abc.Set):
        _refuse(value, function, argument, position, "a set has no order")
    if isinstance(value, collections.abc.Mapping):
        _refuse(value, function, argument, position, "a mapping is not a sequence")
    if isinstance(value, collections.abc.Iterator):
        _refuse(value, function, argument, position, "an iterator can be read only once: pass a list")
    try:
        tolist = getattr(value, "tolist", None)
        items = None if tolist is None else tolist()
    except Exception as error:
        raise _unreadable(value, function, argument, position, error) from error
    if tolist is not None:
        return items if isinstance(items, list) else None  # a 0-d array gives a scalar
    if not (hasattr(kind, "__len__") and hasattr(kind, "__getitem__")):
        if hasattr(kind, "__iter__"):
            _refuse(value, function, argument, position, "an iterable without len() and indexing")
        return None
    try:
        length = operator.index(len(value))
        items = list(itertools.islice(iter(value), length + 1))
    except Exception as error:
        raise _unreadable(value, function, argument, position, error) from error
    if len(items) != length:
        found = f"more than {length}" if len(items) > length else str(len(items))
        raise ValueError(
            f"{function}(): {argument}{_where(position)} has len() {length} but iterating it "
            f"gives {found} elements"
        )
    return items


def _unreadable(value, function, argument, position, error):
    return TypeError(
        f"{function}(): {argument}{_where(position)} could not be read as a sequence "
        f"({type(value).__name__}: {_error_text(error)})"
    )


def to_array(x, function, argument="x", raw=None):
    """Flatten a rectangular nesting of numbers to ``(shape, flat list of floats)``.

    A scalar gives shape ``()``. Raises TypeError for a non-number or a container that is
    not a sequence (with its index) and ValueError for a ragged nesting, one deeper than
    ``MAX_NDIM`` or one that contains itself. If ``raw`` is a list, the elements as they
    were given (before ``float()``) are appended to it in the same order: each element is
    read once, so a caller that needs them (class indices) does not read ``x`` again.
    """
    rows = _rows(x, function, argument, ())
    if rows is None:
        if raw is not None:
            raw.append(x)
        return (), [to_float(x, function, argument)]
    reader = _Reader(function, argument, raw)
    reader.path.add(id(x))
    reader.read(rows, 0, ())
    return tuple(reader.shape), reader.flat


class _Reader:
    """One depth-first pass over a nesting; the first container met at each depth sets the
    shape there, and the first element of the first container decides where numbers begin."""

    __slots__ = ("function", "argument", "raw", "shape", "ndim", "flat", "path")

    def __init__(self, function, argument, raw):
        self.function, self.argument, self.raw = function, argument, raw
        self.shape = []
        self.ndim = None  # known once the first path down has reached a number (or [])
        self.flat = []
        self.path = set()  # ids of the containers from the top down to the one being read

    def _ragged(self, position, what):
        name = self.argument
        return ValueError(f"{self.function}(): {name} is ragged: {name}{_where(position)} {what}")

    def _check_cycle(self, value, position):
        if id(value) in self.path:
            raise ValueError(f"{self.function}(): {self.argument}{_where(position)} contains itself "
                             f"(a nesting must end in numbers)")

    def read(self, rows, depth, position):
        shape = self.shape
        if depth == len(shape):
            if depth == MAX_NDIM:
                raise ValueError(
                    f"{self.function}(): {self.argument} is nested more than {MAX_NDIM} levels deep")
            shape.append(len(rows))
            if not rows:
                self.ndim = depth + 1
        elif len(rows) != shape[depth]:
            raise self._ragged(position, f"has length {len(rows)}, expected {shape[depth]}")
        leaf = depth + 1
        if (self.ndim is None or self.ndim == leaf) and is_float_list(rows):
            self.ndim = leaf  # the common case: a row of floats, checked in one pass
            self.flat.extend(rows)
            if self.raw is not None:
                self.raw.extend(rows)
            return
        function, argument = self.function, self.argument
        for i, value in enumerate(rows):
            where = position + (i,)
            inner = _rows(value, function, argument, where)
            if self.ndim is None and inner is None:
                self.ndim = leaf
            if self.ndim == leaf:
                if inner is not None:
                    self._check_cycle(value, where)
                    raise self._ragged(where, "is a sequence where a number was expected")
                self.flat.append(to_float(value, function, argument, where))
                if self.raw is not None:
                    self.raw.append(value)
                continue
            if inner is None:
                raise self._ragged(
                    where, f"is a number where a sequence of length {shape[leaf]} was expected")
            key = id(value)
            self._check_cycle(value, where)
            self.path.add(key)
            self.read(inner, leaf, where)
            self.path.discard(key)


def from_array(shape, flat):
    """Inverse of :func:`to_array`: nest a flat list back into lists of ``shape``."""
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [from_array(shape[1:], flat[i * step:(i + 1) * step]) for i in range(shape[0])]


def elementwise(kernel, x, function, argument="x"):
    """Apply a float -> float ``kernel`` to a number or a nested sequence of numbers.

    A flat list of floats is dispatched once (``map`` over the kernel), which is
    why the core's list path is as fast as a hand-written loop.
    """
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return kernel(to_float(x, function, argument))
    if is_float_list(x):
        return list(map(kernel, x))
    shape, flat = to_array(x, function, argument)
    return from_array(shape, list(map(kernel, flat)))


def normalize_axis(axis, ndim, function):
    """Check an integer axis against ``ndim`` and return it in ``range(ndim)``."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{function}(): axis must be an integer, not {type(axis).__name__} {describe(axis)}")
    axis = to_index(axis, function, "axis")
    if ndim == 0:
        raise ValueError(f"{function}(): needs at least a 1-D sequence, got a scalar")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{function}(): axis {axis} is out of range for {ndim}-D input")
    return axis % ndim


def lanes(shape, axis):
    """Yield, for every 1-D slice along ``axis``, the flat indices of its elements."""
    size = shape[axis]
    stride = math.prod(shape[axis + 1:])
    outer = math.prod(shape[:axis])
    for o in range(outer):
        base = o * size * stride
        for inner in range(stride):
            start = base + inner
            yield range(start, start + size * stride, stride)


def probability_limit(p, function):
    """The value at p outside (0, 1) of a quantile-like function (logit, probit): -inf at 0,
    inf at 1, NaN for NaN, and ValueError naming the function outside [0, 1]."""
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p != p:
        return p
    raise ValueError(f"{function}(): p = {p!r} is outside [0, 1]")


def check_temperature(temperature, function):
    """A temperature must be a finite number > 0; return it as a float."""
    t = to_float(temperature, function, "temperature")
    if not (t > 0.0 and math.isfinite(t)):
        raise ValueError(f"{function}(): temperature must be finite and > 0, got {describe(temperature)}")
    return t
