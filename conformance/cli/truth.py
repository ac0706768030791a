"""``refact truth FUNCTION ARG...``: the oracle's value of a function at a point,
exact digits and the correctly rounded value of a format."""

import sys

import mpmath

from refact.conformance.cli import UsageError
from refact.conformance.cli.options import count, integer_at_least
from refact.conformance.numbers.formats import bits_hex, get_format, round_to_format, same_value
from refact.conformance.truth.catalog import NAMES, get_function
from refact.conformance.truth.oracle import (
    DEFAULT_MAX_PRECISION, condition_number, exact_digits, truth,
)

def add_arguments(parser):
    parser.add_argument("function", help="a canonical name: " + ", ".join(NAMES))
    parser.add_argument("args", nargs="+", metavar="ARG",
                        help="the point: numbers (1e-300, -inf, nan, 0x1p-53) or rows like [1,2,3]")
    parser.add_argument("--format", default="float64", help="float64 (default), float32, float16, bfloat16")
    parser.add_argument("--digits", type=count, default=30, help="significant digits of the exact value")
    parser.add_argument("--max-precision", type=integer_at_least(2), default=DEFAULT_MAX_PRECISION,
                        help=f"working precision cap in bits (default {DEFAULT_MAX_PRECISION})")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the disk cache")


def _parse_number(text, integer=False):
    s = text.strip()
    try:
        if integer:
            return int(s)
        if s.lower().lstrip("+-").startswith("0x"):
            return float.fromhex(s)
        return float(s)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise UsageError(f"{text!r} is not {kind}") from None


def _parse_argument(text, parameter):
    s = text.strip()
    if parameter.role == "row":
        if not (s.startswith("[") and s.endswith("]")):
            raise UsageError(f"{parameter.name} must be a row like [1,2,3], got {text!r}")
        inner = s[1:-1].strip()
        if not inner:
            raise UsageError(f"{parameter.name} must not be empty")
        return tuple(_parse_number(part) for part in inner.split(","))
    return _parse_number(s, integer=parameter.role == "class_index")


def _to_format(value, fmt, notes):
    if isinstance(value, tuple):
        return tuple(_to_format(v, fmt, notes) for v in value)
    if isinstance(value, int):
        return value
    rounded = round_to_format(value, fmt)
    if not same_value(rounded, value):
        notes.append(f"note: {value!r} is not a {fmt.name} value; using {rounded!r} ({rounded.hex()})")
    return rounded


def run(args):

    try:
        spec = get_function(args.function)
        fmt = get_format(args.format)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if len(args.args) != spec.arity:
        names = " ".join(p.name.upper() for p in spec.parameters)
        raise UsageError(f"{spec.name} takes {spec.arity} argument(s): {names}")
    notes = []
    point = tuple(_to_format(_parse_argument(text, p), fmt, notes)
                  for text, p in zip(args.args, spec.parameters))
    try:
        result = truth(spec, point, fmt, max_precision=args.max_precision, cache=not args.no_cache)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    for note in notes:
        print(note, file=sys.stderr)
    shown = ", ".join(_show_arg(a) for a in point)
    print(f"{spec.name}({shown}) in {fmt.name}")
    digits = exact_digits(spec, point, args.digits, args.max_precision)
    labels = [f"[{i}]" for i in range(len(result.values))] if spec.vector_output else [""]
    width = max(len(s) for s in labels)
    for index, (label, value, text) in enumerate(zip(labels, result.values, digits)):
        if index in result.undecided:
            print(f"  exact{label:<{width}}    ~{text}")
            print(f"  rounded{label:<{width}}  undecided: not settled within {result.max_precision} bits")
        else:
            print(f"  exact{label:<{width}}    {text}")
            print(f"  rounded{label:<{width}}  {value!r}  {value.hex()}  bits {bits_hex(value, fmt)}")
    if not spec.vector_output and spec.parameters[0].role != "row":
        try:
            cond = condition_number(spec, point)
            print(f"  condition  {cond:.6g}  (|x f'(x) / f(x)| in the first argument)")
        except (ValueError, ArithmeticError):
            pass
    if result.status == "ok":
        how = "known exactly" if result.precision == 0 else f"decided at {result.precision} bits"
        if result.source in ("cache", "golden"):
            how += f" ({'disk cache' if result.source == 'cache' else 'golden vectors'})"
    else:
        how = f"the precision cap of {result.max_precision} bits was reached"
    print(f"  status     {result.status}: {how}; mpmath backend {mpmath.libmp.BACKEND}")
    return 0


def _show_arg(a):
    if isinstance(a, tuple):
        return "[" + ", ".join(repr(x) for x in a) + "]"
    return repr(a)
