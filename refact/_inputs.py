"""Turning user input into floats and back: numbers, nested sequences, axes.

Every public function of the core goes through here, so the rules for bad input
are stated once: a non-number is a TypeError naming its position, a ragged
nesting or a bad axis is a ValueError, and nothing is silently converted.
"""

import math
import numbers

__all__ = [
    "to_float", "as_sequence", "elementwise", "to_array", "from_array", "normalize_axis", "lanes",
    "check_temperature", "probability_limit",
]


def _where(position):
    return "" if not position else " at index " + "".join(f"[{i}]" for i in position)


def to_float(value, function, argument="x", position=()):
    """Return ``value`` as a float, or raise TypeError/ValueError naming where it came from."""
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{function}(): {argument}{_where(position)} must be a real number, "
            f"not {type(value).__name__} {value!r}"
        )
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"{function}(): {argument}{_where(position)} = {value!r} is too large for a float"
        ) from None


def as_sequence(value):
    """A list for anything sequence-like (list, tuple, numpy array via tolist), else None."""
    if isinstance(value, list):
        return value
    if isinstance(value, (str, bytes)) or isinstance(value, numbers.Number):
        return None
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        value = tolist()
        return value if isinstance(value, list) else None
    try:
        return list(value)
    except TypeError:
        return None


def to_array(x, function, argument="x"):
    """Flatten a rectangular nesting of numbers to ``(shape, flat list of floats)``.

    A scalar gives shape ``()``. Raises TypeError for a non-number (with its index)
    and ValueError for a ragged nesting.
    """
    rows = as_sequence(x)
    if rows is None:
        return (), [to_float(x, function, argument)]
    shape = []
    level = rows
    while True:
        shape.append(len(level))
        if not level:
            break
        inner = as_sequence(level[0])
        if inner is None:
            break
        level = inner
    flat = []
    _flatten(rows, tuple(shape), 0, (), flat, function, argument)
    return tuple(shape), flat


def _flatten(rows, shape, depth, position, out, function, argument):
    if len(rows) != shape[depth]:
        raise ValueError(
            f"{function}(): {argument} is ragged: {argument}{_where(position)} has length "
            f"{len(rows)}, expected {shape[depth]}"
        )
    if depth + 1 == len(shape):
        if type(rows) is list and set(map(type, rows)) <= {float}:
            out.extend(rows)  # the common case: a row of floats, checked in one pass
            return
        for i, value in enumerate(rows):
            if as_sequence(value) is not None:
                raise ValueError(
                    f"{function}(): {argument} is ragged: {argument}{_where(position + (i,))} "
                    f"is a sequence where a number was expected"
                )
            out.append(to_float(value, function, argument, position + (i,)))
        return
    for i, value in enumerate(rows):
        inner = as_sequence(value)
        if inner is None:
            raise ValueError(
                f"{function}(): {argument} is ragged: {argument}{_where(position + (i,))} "
                f"is a number where a sequence of length {shape[depth + 1]} was expected"
            )
        _flatten(inner, shape, depth + 1, position + (i,), out, function, argument)


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
    if type(x) is list and set(map(type, x)) <= {float}:
        return list(map(kernel, x))
    shape, flat = to_array(x, function, argument)
    return from_array(shape, list(map(kernel, flat)))


def normalize_axis(axis, ndim, function):
    """Check an integer axis against ``ndim`` and return it in ``range(ndim)``."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{function}(): axis must be an integer, not {type(axis).__name__} {axis!r}")
    if ndim == 0:
        raise ValueError(f"{function}(): needs at least a 1-D sequence, got a scalar")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{function}(): axis {axis} is out of range for {ndim}-D input")
    return int(axis) % ndim


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
        raise ValueError(f"{function}(): temperature must be finite and > 0, got {temperature!r}")
    return t
