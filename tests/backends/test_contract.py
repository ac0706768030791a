"""The backend contract, checked for every available backend and every function and format
it declares: output format and shape, exact read-back, values close to the core at a few
moderate points, gradients where declared, public sources, options and conventions.

Backends are constructed once, at collection (each framework is imported once per
session). A built-in backend that cannot be constructed is skipped, or fails when the
environment variable CI is set (CI installs every framework).
"""

import math
import os
import subprocess
import sys
from argparse import Namespace

import pytest

from refact.backends import Unsupported

import refact.backends as rb
from refact.backends import base

CI = bool(os.environ.get("CI"))

# Moderate points, exactly representable in every format (at most 8 significant bits).
X = [[-2.5, -0.5, 0.75], [1.5, 2.5, -1.25]]          # inside (-3, 3): hard_sigmoid is smooth
P = [[0.125, 0.25, 0.5], [0.625, 0.75, 0.875]]
Y = [[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]]
ROWS = [[-1.5, 0.5, 2.0], [0.25, -0.75, 1.0]]
TEACHER = [[0.5, -1.0, 1.5], [-0.25, 0.75, 0.0]]
TARGET = [2, 0]
Q = [[0.25, 0.25, 0.5], [0.5, 0.125, 0.375]]         # probability targets
ELEMENT_COTANGENT = [[1.0, -0.5, 2.0], [0.25, 1.0, -1.0]]
ROW_COTANGENT = [1.0, -0.5]

# function -> (arguments as (kind, value) like conformance's jobs, output shape)
CASES = {
    "sigmoid": ([("array", X)], (2, 3)),
    "sigmoid_grad": ([("array", X)], (2, 3)),
    "log_sigmoid": ([("array", X)], (2, 3)),
    "softplus": ([("array", X)], (2, 3)),
    "logit": ([("array", P)], (2, 3)),
    "hard_sigmoid": ([("array", X)], (2, 3)),
    "ndtr": ([("array", X)], (2, 3)),
    "probit": ([("array", P)], (2, 3)),
    "softmax": ([("array", ROWS)], (2, 3)),
    "log_softmax": ([("array", ROWS)], (2, 3)),
    "logsumexp": ([("array", ROWS)], (2,)),
    "binary_cross_entropy": ([("array", P), ("array", Y)], (2, 3)),
    "binary_cross_entropy_with_logits": ([("array", X), ("array", Y)], (2, 3)),
    "cross_entropy": ([("array", ROWS), ("index", TARGET)], (2,)),
    "distillation_loss": ([("array", ROWS), ("array", TEACHER), ("scalar", 2.0)], (2,)),
}
assert set(CASES) == set(base.FUNCTIONS)

# |value - core| <= TOLERANCE * max(1, |core|): a few units of the format's precision
# (frameworks compute 16-bit formats partly in 16-bit arithmetic).
TOLERANCE = {"float64": 1e-11, "float32": 1e-5, "float16": 1.5e-2, "bfloat16": 8e-2}
GRADIENT_TOLERANCE = {"float64": 1e-6, "float32": 1e-4, "float16": 3e-2, "bfloat16": 1.5e-1}

SMALLEST_SUBNORMAL = {"float64": 2.0 ** -1074, "float32": 2.0 ** -149,
                      "float16": 2.0 ** -24, "bfloat16": 2.0 ** -133}
LARGEST = {"float64": 1.7976931348623157e308, "float32": (2 - 2.0 ** -23) * 2.0 ** 127,
           "float16": 65504.0, "bfloat16": (2 - 2.0 ** -7) * 2.0 ** 127}


# -- backends, constructed once ----------------------------------------------------------

_BACKENDS = {}


def _names():
    return list(rb.BUILTIN) + [n for n in rb.plugin_targets() if n not in rb.BUILTIN]


def _construct(name):
    if name not in _BACKENDS:
        try:
            _BACKENDS[name] = rb.get_backend(name)
        except Exception as error:  # recorded; test_available reports it
            _BACKENDS[name] = error
    return _BACKENDS[name]


def _available():
    return [(n, b) for n in _names() if not isinstance(b := _construct(n), Exception)]


def pytest_generate_tests(metafunc):
    fixtures = metafunc.fixturenames
    if "case" in fixtures:
        params = [pytest.param((b, f, fmt), id=f"{name}-{f}-{fmt}")
                  for name, b in _available() for f in b.functions for fmt in b.formats_of(f)]
        metafunc.parametrize("case", params)
    elif "gradient_case" in fixtures:
        params = [pytest.param((b, f, fmt), id=f"{name}-{f}-{fmt}")
                  for name, b in _available() for f in b.gradients for fmt in b.formats_of(f)]
        metafunc.parametrize("gradient_case", params)
    elif "format_case" in fixtures:
        params = [pytest.param((b, fmt), id=f"{name}-{fmt}")
                  for name, b in _available() for fmt in b.formats]
        metafunc.parametrize("format_case", params)
    elif "any_backend" in fixtures:
        params = [pytest.param(b, id=name) for name, b in _available()]
        metafunc.parametrize("any_backend", params)


# -- helpers -----------------------------------------------------------------------------


def _build(backend, arguments, fmt):
    built = []
    for kind, value in arguments:
        if kind == "array":
            built.append(backend.asarray(value, fmt))
        elif kind == "index":
            built.append(backend.asindex(value))
        else:
            built.append(value)
    return built


def _plain(arguments):
    return [value for _, value in arguments]


def _shape(values):
    shape = []
    while isinstance(values, list):
        shape.append(len(values))
        values = values[0] if values else None
    return tuple(shape)


def _flat(values):
    if isinstance(values, list):
        for v in values:
            yield from _flat(v)
    else:
        yield values


def _core(function):
    """The core's ``function`` under the canonical call convention (the reference
    backend's callable: reduction "none", per-row distillation)."""
    reference = _construct("reference")
    if isinstance(reference, Exception):
        pytest.fail(f"the reference backend (the core) is unavailable: {reference}")
    if function not in reference.functions:
        pytest.fail(f"the core does not provide {function}")
    return reference.functions[function]


def _representable(value, fmt):
    import numpy as np

    narrow = np.asarray([value], dtype=np.float64).astype(base.numpy_dtype(fmt))
    return float(narrow.astype(np.float64)[0]) == value or math.isnan(value)


def _close(value, expected, tolerance):
    if math.isnan(expected) or math.isinf(expected):
        return value == expected or (math.isnan(value) and math.isnan(expected))
    return abs(value - expected) <= tolerance * max(1.0, abs(expected))


def _finite_difference_vjp(fn, arguments, cotangent, h=1e-6):
    """VJP of the core's ``fn`` w.r.t. the first argument by central differences."""
    plain = _plain(arguments)
    x = plain[0]
    weights = list(_flat(cotangent))
    gradient = [[0.0] * len(row) for row in x]
    for i, row in enumerate(x):
        for j in range(len(row)):
            values = []
            for step in (h, -h):
                shifted = [list(r) for r in x]
                shifted[i][j] += step
                values.append(list(_flat(fn(shifted, *plain[1:]))))
            gradient[i][j] = math.fsum(
                w * (a - b) for w, a, b in zip(weights, values[0], values[1])) / (2 * h)
    return gradient


# -- availability, laziness, errors ------------------------------------------------------


@pytest.mark.parametrize("name", list(rb.BUILTIN))
def test_builtin_backend_is_available(name):
    backend = _construct(name)
    if isinstance(backend, Exception):
        if CI:
            pytest.fail(f"built-in backend {name} is unavailable in CI: {backend}")
        pytest.skip(f"{name} unavailable here: {backend}")
    assert backend.name == name
    assert backend.framework_version
    assert backend.devices()[0] == "cpu" and backend.device == "cpu"
    assert backend.formats and set(backend.formats) <= set(base.FORMATS)
    assert set(backend.functions) <= set(base.FUNCTIONS) and backend.functions


def test_importing_the_package_imports_no_framework(tmp_path):
    code = ("import sys, refact.backends, refact.backends.listing; "
            "print(sorted(m for m in ('numpy', 'scipy', 'torch', 'tensorflow', 'keras', 'jax')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert out.strip() == "[]"


def test_missing_framework_names_the_pip_extra():
    class Missing(base.Backend):
        name = "missing"
        module = "refact_test_no_such_framework"
        extra = "nothing"

    with pytest.raises(rb.BackendUnavailable, match=r"pip install 'refact-numerics\[nothing\]'"):
        Missing()


def test_unknown_device_is_unavailable():
    with pytest.raises(rb.BackendUnavailable, match="device 'tpu9'.*available: cpu"):
        rb.get_backend("numpy", device="tpu9")


def test_unknown_backend_name():
    with pytest.raises(ValueError, match="unknown backend"):
        rb.get_backend("no-such-backend")


def test_missing_function_format_option_and_gradient_are_unsupported(any_backend):
    b = any_backend
    for function in set(base.FUNCTIONS) - set(b.functions):
        with pytest.raises(rb.Unsupported):
            b.call(function)
        assert not b.supports(function)
    for function in set(b.functions) - set(b.gradients):
        with pytest.raises(rb.Unsupported):
            b.grad(function, (), None)
    function = next(iter(b.functions))
    with pytest.raises(rb.Unsupported):
        b.call(function, no_such_option=1)
    for fmt in set(base.FORMATS) - set(b.formats):
        with pytest.raises(rb.Unsupported):
            b.asarray([1.0], fmt)


# -- the per-function contract -----------------------------------------------------------


def test_call_format_shape_and_exact_readback(case):
    backend, function, fmt = case
    arguments, shape = CASES[function]
    result = backend.call(function, *_build(backend, arguments, fmt))
    values, result_fmt = backend.tolist(result)
    due = backend.result_format(function, fmt)  # fmt, or the format it is documented to promote to
    assert result_fmt == due, f"{function} returned {result_fmt} for {fmt} input, not {due}"
    assert _shape(values) == shape
    again, _ = backend.tolist(result)
    assert again == values or any(math.isnan(v) for v in _flat(values))
    for v in _flat(values):
        assert type(v) is float
        assert _representable(v, due), f"{v!r} read back is not a {due} value"


def test_values_close_to_the_core(case):
    backend, function, fmt = case
    arguments, _ = CASES[function]
    expected = list(_flat(_core(function)(*_plain(arguments))))
    values, _ = backend.tolist(backend.call(function, *_build(backend, arguments, fmt)))
    got = list(_flat(values))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert _close(g, e, TOLERANCE[fmt]), f"{function}[{fmt}]: {got} vs core {expected}"


def test_gradient_matches_the_derivative(gradient_case):
    backend, function, fmt = gradient_case
    arguments, shape = CASES[function]
    cotangent = ROW_COTANGENT if len(shape) == 1 else ELEMENT_COTANGENT
    expected = _finite_difference_vjp(_core(function), arguments, cotangent)
    gradient = backend.grad(function, _build(backend, arguments, fmt),
                            backend.asarray(cotangent, fmt))
    values, grad_fmt = backend.tolist(gradient)
    assert grad_fmt == fmt
    assert _shape(values) == _shape(arguments[0][1])
    for g, e in zip(_flat(values), _flat(expected)):
        assert _close(g, e, GRADIENT_TOLERANCE[fmt]), f"{function}[{fmt}]: {values} vs {expected}"


def test_exact_roundtrip(format_case):
    backend, fmt = format_case
    values = [[0.0, -0.0, 1.5, -2.75], [SMALLEST_SUBNORMAL[fmt], -LARGEST[fmt],
                                        math.inf, 0.1 if fmt == "float64" else 0.5]]
    back, back_fmt = backend.tolist(backend.asarray(values, fmt))
    assert back_fmt == fmt
    assert back == values
    assert [math.copysign(1.0, v) for v in _flat(back)] == \
        [math.copysign(1.0, v) for v in _flat(values)]
    index, _ = backend.tolist(backend.asindex([2, 0, 1]))
    assert index == [2, 0, 1]


def test_numpy_roundtrip_keeps_every_bit(format_case):
    """from_numpy then to_numpy gives back the same bit patterns in the same dtype (NaN
    payload aside): every finite value, both zeros, both infinities, the subnormals."""
    import numpy as np

    backend, fmt = format_case
    dtype = base.numpy_dtype(fmt)
    width = dtype.itemsize * 8
    rng = np.random.default_rng(2026)
    bits = rng.integers(0, 2 ** width, size=4096, dtype=np.uint64).astype(f"uint{width}")
    bits[:6] = [0, 1 << (width - 1), 1, (1 << (width - 1)) | 1,   # +-0 and +-smallest subnormal
                np.asarray(np.inf, dtype).view(f"uint{width}"),
                np.asarray(-np.inf, dtype).view(f"uint{width}")]
    array = bits.view(dtype)
    with np.errstate(invalid="ignore"):
        keep = ~np.isnan(array.astype(np.float64))
    back = np.asarray(backend.to_numpy(backend.from_numpy(array[keep])))
    assert back.dtype == dtype
    assert np.array_equal(back.view(f"uint{width}"), bits[keep])
    index = np.asarray(backend.to_numpy(backend.from_numpy(np.asarray([2, 0, 1], dtype=np.int64))))
    assert index.tolist() == [2, 0, 1]


def test_bindings_are_public_framework_callables(any_backend):
    for function, binding in any_backend.bindings.items():
        for source in binding.sources:
            assert not any(part.startswith("_") for part in source.split(".")), source
            assert callable(base.resolve(source)), source
        chain = base.wrapping_chain(binding.call)
        if binding.is_recipe:
            # a recipe is a few lines of the adapter itself, composing its sources
            assert any(getattr(c, "__module__", None) == type(any_backend).__module__
                       for c in chain), (function, binding)
        else:
            public = base.resolve(binding.sources[0])
            assert any(c is public for c in chain), (function, binding)


# -- options -----------------------------------------------------------------------------


def _logsumexp(row):
    top = max(row)
    return top + math.log(math.fsum(math.exp(v - top) for v in row))


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


OPTION_CASES = {
    "label_smoothing": (
        "cross_entropy", [("array", ROWS), ("index", TARGET)], {"label_smoothing": 0.125},
        [0.875 * (_logsumexp(r) - r[t]) + 0.125 / 3 * math.fsum(_logsumexp(r) - v for v in r)
         for r, t in zip(ROWS, TARGET)]),
    "probability_target": (
        "cross_entropy", [("array", ROWS), ("array", Q)], {},
        [math.fsum(q * (_logsumexp(r) - v) for q, v in zip(qs, r)) for r, qs in zip(ROWS, Q)]),
    "pos_weight": (
        "binary_cross_entropy_with_logits", [("array", X), ("array", Y)], {"pos_weight": 2.0},
        [[(1 - y) * _softplus(x) + 2.0 * y * _softplus(-x) for x, y in zip(xs, ys)]
         for xs, ys in zip(X, Y)]),
}


@pytest.mark.parametrize("option", list(OPTION_CASES))
def test_options(any_backend, option):
    function, arguments, options, expected = OPTION_CASES[option]
    if not any_backend.supports(function, option=option):
        # Not offered: then it must be refused as Unsupported (reported as skip by the
        # suite), never silently ignored.
        if function in any_backend.functions and options:
            fmt = any_backend.formats_of(function)[0]
            with pytest.raises(Unsupported):
                any_backend.call(function, *_build(any_backend, arguments, fmt), **options)
        return
    for fmt in ("float64", "float32"):
        if fmt not in any_backend.formats_of(function):
            continue
        result = any_backend.call(function, *_build(any_backend, arguments, fmt), **options)
        values, result_fmt = any_backend.tolist(result)
        assert result_fmt == fmt
        for g, e in zip(_flat(values), _flat(expected)):
            assert _close(g, e, TOLERANCE[fmt]), (option, fmt, values, expected)


# -- conventions -------------------------------------------------------------------------


def _example_arguments(function, args):
    """One point as a batch of one: scalars become [x], rows [[...]], T stays a float."""
    if function == "distillation_loss":
        return [("array", [args[0]]), ("array", [args[1]]), ("scalar", args[2])]
    if function == "cross_entropy":
        return [("array", [args[0]]), ("index", [args[1]])]
    return [("array", [a]) for a in args]


def test_conventions_are_documented_and_observable(any_backend):
    for convention in any_backend.conventions:
        assert convention.function in any_backend.functions, convention
        assert convention.reference.startswith("https://"), convention
        assert convention.summary and convention.name.isidentifier()
        example = convention.example
        if example is None:
            continue
        fmt = example.fmt or "float64"
        arguments = _example_arguments(convention.function, example.args)
        exact = list(_flat(_core(convention.function)(*_plain(arguments))))[0]
        assert convention.applies(example.args, exact, fmt, example.options), convention
        got, _ = any_backend.tolist(any_backend.call(
            convention.function, *_build(any_backend, arguments, fmt), **example.options))
        assert list(_flat(got))[0] != exact, f"{convention.name} does not show at {example}"


def test_convention_predicates_spare_moderate_points(any_backend):
    moderate = {
        "binary_cross_entropy": (0.5, 1.0), "binary_cross_entropy_with_logits": (0.5, 1.0),
        "cross_entropy": ([0.5, 1.0], 0), "distillation_loss": ([0.5, 1.0], [1.0, 0.5], 1.0),
        "softmax": ([0.5, 1.0],), "log_softmax": ([0.5, 1.0],), "logsumexp": ([0.5, 1.0],),
        "logit": (0.5,), "probit": (0.5,),
    }
    for convention in any_backend.conventions:
        args = moderate.get(convention.function, (0.5,))
        assert not convention.applies(args, truth=0.5, fmt="float32"), convention


# -- the listing command -----------------------------------------------------------------


def test_listing_json_and_table(capsys):
    import json

    from refact.backends import listing

    assert listing.run(Namespace(json=True, device="cpu")) == 0
    # one entry per variant: each is checked against the backend constructed here for it
    listed = {rb.variant_name(entry["name"], entry["variant"]): entry
              for entry in json.loads(capsys.readouterr().out)}
    every_variant = [v for name in rb.BUILTIN for v in rb.variant_names(name)]
    assert set(every_variant) <= set(listed)
    assert listed["torch[compile]"]["variants"]["compile"].startswith("every call through torch.compile")
    for name, entry in listed.items():
        # another keras engine cannot be imported in this process, which holds keras on TensorFlow
        in_process = name in rb.BUILTIN or (name in every_variant and not name.startswith("keras["))
        backend = _construct(name) if in_process else None
        if entry["available"]:
            assert entry["version"] and entry["devices"][0] == "cpu"
            assert entry["n_functions"] == len(entry["functions"]) > 0
        else:
            assert entry["error"]
            if CI and name in rb.BUILTIN:
                pytest.fail(f"{name} listed as unavailable in CI: {entry['error']}")
        if backend is not None and not isinstance(backend, Exception):
            assert entry["n_functions"] == len(backend.functions)
            assert entry["conventions"] == [f"{c.function}:{c.name}" for c in backend.conventions]
    assert listing.run(Namespace(json=False, device="cpu")) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["backend", "version"]
    assert {line.split()[0] for line in table[1:]} >= set(every_variant)
