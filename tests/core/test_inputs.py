"""Input handling, for every public function and every argument: what the core refuses, and
that what it accepts gives exactly the floats of the canonical call (lists of floats).

Refused, each with a TypeError or ValueError whose message names the function and the
argument: sets, mappings, bytes-like objects and iterators (the policy of ``_inputs``),
a list that contains itself, a nesting deeper than ``MAX_NDIM``, and a user's sequence or
number whose own methods raise (chained as ``__cause__``). Accepted and converted: float
subclasses whose comparisons and hash lie, ints, tuples, ranges, user sequences.
"""

import contextlib
import datetime
import fractions
import math
import signal
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refact

PUBLIC = [name for name in refact.__all__ if name != "FUNCTIONS"]


# -- the calls: one template per public function (two for the ones with two modes) ---------
#
# A template maps each argument to its kind: an array ("real", "prob", "index" and a shape
# built from n rows and c classes) or a scalar option ("temp", "smooth", "eps").

def _elementwise(kind, argument):
    return lambda n, c, shape: {argument: (kind, shape)}


TEMPLATES = {
    **{name: (getattr(refact, name), {}, _elementwise("real", "x"))
       for name in ("sigmoid", "expit", "logistic", "sigmoid_grad", "log_sigmoid", "softplus",
                    "hard_sigmoid", "ndtr")},
    **{name: (getattr(refact, name), {}, _elementwise("prob", "p")) for name in ("logit", "probit", "ndtri")},
    "logit(eps)": (refact.logit, {}, lambda n, c, shape: {"p": ("prob", shape), "eps": ("eps", None)}),
    "softmax": (refact.softmax, {}, lambda n, c, shape: {"x": ("real", shape or (n,)), "temperature": ("temp", None)}),
    "log_softmax": (refact.log_softmax, {},
                    lambda n, c, shape: {"x": ("real", shape or (n,)), "temperature": ("temp", None)}),
    "logsumexp": (refact.logsumexp, {}, lambda n, c, shape: {"x": ("real", shape or (n,))}),
    "softmax_jacobian": (refact.softmax_jacobian, {}, lambda n, c, shape: {"x": ("real", (n,))}),
    "softmax_vjp": (refact.softmax_vjp, {}, lambda n, c, shape: {"x": ("real", (n,)), "v": ("real", (n,))}),
    "probabilities": (refact.probabilities, {}, lambda n, c, shape: {"logits": ("real", shape or (n,))}),
    "probabilities(multi_label)": (refact.probabilities, {"multi_label": True},
                                   lambda n, c, shape: {"logits": ("real", shape)}),
    "binary_cross_entropy": (refact.binary_cross_entropy, {}, lambda n, c, shape: {
        "p": ("prob", (n, c)), "y": ("prob", (n, c)), "weight": ("real", (c,))}),
    "binary_cross_entropy_with_logits": (refact.binary_cross_entropy_with_logits, {}, lambda n, c, shape: {
        "x": ("real", (n, c)), "y": ("prob", (n, c)), "weight": ("real", (c,)), "pos_weight": ("real", (c,))}),
    "cross_entropy": (refact.cross_entropy, {}, lambda n, c, shape: {
        "logits": ("real", (n, c)), "target": ("index", (n,)), "weight": ("real", (c,)),
        "label_smoothing": ("smooth", None)}),
    "cross_entropy(probabilities)": (refact.cross_entropy, {}, lambda n, c, shape: {
        "logits": ("real", (n, c)), "target": ("prob", (n, c)), "weight": ("real", (c,))}),
    "distillation_loss": (refact.distillation_loss, {}, lambda n, c, shape: {
        "student_logits": ("real", (n, c)), "teacher_logits": ("real", (n, c)), "temperature": ("temp", None)}),
}


def test_every_public_function_has_a_template():
    assert {getattr(refact, name) for name in PUBLIC} == {t[0] for t in TEMPLATES.values()}


SCALAR_VALUES = {"temp": 2.0, "smooth": 0.1, "eps": 1e-6}


def _fixed_array(kind, shape, c):
    """A valid canonical array of ``shape``: nested lists of floats (ints for class indices)."""
    count = math.prod(shape)
    if kind == "index":
        flat = [i % c for i in range(count)]
    elif kind == "prob":
        flat = [(i % 4 + 1) / 5 for i in range(count)]
    else:
        flat = [0.25 * i - 0.5 for i in range(count)]
    return _nest(flat, shape)


def _nest(flat, shape):
    if not shape:
        return flat[0]
    step = math.prod(shape[1:])
    if len(shape) == 1:
        return list(flat)
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def valid_call(template, n=2, c=3, shape=(2, 3)):
    """(function, kwargs, kinds): a call that succeeds, with canonical arguments."""
    function, fixed, build = TEMPLATES[template]
    kinds = build(n, c, shape)
    kwargs = dict(fixed)
    for argument, (kind, arg_shape) in kinds.items():
        kwargs[argument] = SCALAR_VALUES[kind] if arg_shape is None else _fixed_array(kind, arg_shape, c)
    return function, kwargs, kinds


def _arguments(array=True, scalar=False):
    """(template, argument) pairs: every array argument, and the scalar options if asked."""
    pairs = []
    for template in TEMPLATES:
        for argument, (_, shape) in valid_call(template)[2].items():
            if (shape is not None and array) or (shape is None and scalar):
                pairs.append(pytest.param(template, argument, id=f"{template}-{argument}"))
    return pairs


def test_the_valid_calls_succeed():
    for template in TEMPLATES:
        function, kwargs, _ = valid_call(template)
        function(**kwargs)


def call_with(template, argument, value):
    function, kwargs, _ = valid_call(template)
    kwargs[argument] = value
    return function, kwargs


def expect_refusal(template, argument, value, error=TypeError, where=""):
    """Call with ``argument`` = ``value``: ``error`` is raised, naming the function and argument."""
    function, kwargs = call_with(template, argument, value)
    with pytest.raises(error) as info:
        function(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{function.__name__}(): "), message
    assert f"{argument}{where}" in message, message
    return info.value


# -- refused: unordered or non-numeric containers, bytes, iterators -------------------------

def _generator():
    return (v for v in [0.5, 0.25])


REFUSED = {
    "set": lambda: {0.5, 0.25},
    "frozenset": lambda: frozenset({0.5, 0.25}),
    "empty set": set,
    "dict": lambda: {0: 0.5, 1: 0.25},
    "dict keys": lambda: {0.5: 0, 0.25: 1}.keys(),
    "dict values": lambda: {0: 0.5, 1: 0.25}.values(),
    "bytes": lambda: b"\x01\x02",
    "bytearray": lambda: bytearray(b"\x01\x02"),
    "memoryview": lambda: memoryview(b"\x01\x02"),
    "generator": _generator,
    "iterator": lambda: iter([0.5, 0.25]),
    "map": lambda: map(float, [0.5, 0.25]),
}

REASONS = {"set": "a set has no order", "frozenset": "a set has no order", "empty set": "a set has no order",
           "dict": "a mapping is not a sequence", "dict keys": "a set has no order",
           "dict values": "without len() and indexing", "bytes": "bytes are not numbers",
           "bytearray": "bytes are not numbers", "memoryview": "bytes are not numbers",
           "generator": "an iterator can be read only once: pass a list",
           "iterator": "an iterator can be read only once", "map": "an iterator can be read only once"}


@pytest.mark.parametrize("refused", REFUSED)
@pytest.mark.parametrize("template, argument", _arguments())
def test_a_container_that_is_not_a_sequence_is_refused(template, argument, refused):
    error = expect_refusal(template, argument, REFUSED[refused]())
    assert "must be a number or a sequence of numbers, not" in str(error)
    assert REASONS[refused] in str(error)


@pytest.mark.parametrize("refused", REFUSED)
@pytest.mark.parametrize("template, argument", _arguments())
def test_a_container_that_is_not_a_sequence_is_refused_inside_a_list(template, argument, refused):
    function, kwargs, kinds = valid_call(template)
    value = list(kwargs[argument])
    value[1] = REFUSED[refused]()  # a row of a 2-D argument, an element of a 1-D one
    error = expect_refusal(template, argument, value, where=" at index [1]")
    assert REASONS[refused] in str(error)


@pytest.mark.parametrize("refused", ["set", "dict", "bytes", "generator"])
@pytest.mark.parametrize("template, argument", _arguments(array=False, scalar=True))
def test_a_container_is_refused_as_a_scalar_option(template, argument, refused):
    error = expect_refusal(template, argument, REFUSED[refused]())
    assert "must be a real number, not" in str(error)


@pytest.mark.parametrize("value", [{0}, {0: 1}, b"\x00", (i for i in [0])], ids=["set", "dict", "bytes", "generator"])
def test_the_other_options_refuse_containers_too(value):
    for call in (lambda: refact.softmax([1.0, 2.0], axis=value),
                 lambda: refact.cross_entropy([1.0, 2.0], 0, ignore_index=value),
                 lambda: refact.probabilities([1.0, 2.0], multi_label=value)):
        with pytest.raises(TypeError, match=r"\(\): (axis|ignore_index|multi_label) must be"):
            call()
    with pytest.raises(ValueError, match=r"binary_cross_entropy\(\): reduction must be"):
        refact.binary_cross_entropy(0.5, 0.5, reduction=value)


# -- the iterator policy: refused everywhere, untouched, and the list gives the result ---------

@pytest.mark.parametrize("template, argument", _arguments())
def test_an_iterator_is_refused_unread_and_its_list_works(template, argument):
    function, kwargs, _ = valid_call(template)
    canonical = kwargs[argument]
    items = iter(canonical)
    expect_refusal(template, argument, items)
    assert list(items) == canonical  # nothing was consumed
    kwargs[argument] = list(iter(canonical))
    assert bits(function(**kwargs)) == bits(valid_call(template)[0](**valid_call(template)[1]))


def test_a_generator_target_is_no_longer_read_twice():
    # it was: to_array read it for its shape, the class indices then read nothing and gave []
    logits = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    with pytest.raises(TypeError, match=r"cross_entropy\(\): target must be .* not generator .* pass a list"):
        refact.cross_entropy(logits, (k for k in [0, 2]))
    assert refact.cross_entropy(logits, [0, 2]) == refact.cross_entropy(logits, (0, 2)) > 0.0


def test_sequences_that_are_ordered_and_sized_are_accepted():
    class Row:  # len() and indexing, no __iter__: the old protocol
        def __len__(self):
            return 3

        def __getitem__(self, i):
            if i >= 3:
                raise IndexError(i)
            return [0.5, -1.0, 2.0][i]

    expected = refact.softmax([0.5, -1.0, 2.0])
    for row in (Row(), (0.5, -1.0, 2.0), [0.5, fractions.Fraction(-1), 2]):
        assert refact.softmax(row) == expected
    assert refact.sigmoid(range(3)) == refact.sigmoid([0.0, 1.0, 2.0])


# -- self-reference and depth ------------------------------------------------------------------

def _self_referential():
    a = [0.5]
    a.append(a)
    return a


def _self_nested():
    b = []
    b.append(b)
    return b


def _row_cycle():
    c = [[0.5, 0.25]]
    c.append(c)
    return c


@pytest.mark.parametrize("make", [_self_referential, _self_nested, _row_cycle])
@pytest.mark.parametrize("template, argument", _arguments())
def test_a_list_that_contains_itself_is_a_value_error_at_once(template, argument, make):
    start = time.perf_counter()
    error = expect_refusal(template, argument, make(), ValueError)
    assert time.perf_counter() - start < 1.0
    assert "contains itself" in str(error)


def _deep(levels, leaf=0.5):
    value = [leaf]
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("template, argument", _arguments())
def test_a_nesting_2000_deep_is_a_value_error_not_a_recursion_error(template, argument):
    error = expect_refusal(template, argument, _deep(2000), ValueError)
    assert f"nested more than {refact._inputs.MAX_NDIM} levels deep" in str(error)


def test_the_depth_limit_is_numpys():
    limit = refact._inputs.MAX_NDIM
    assert limit == 64
    assert refact.sigmoid(_deep(limit)) == _deep(limit, refact.sigmoid(0.5))
    with pytest.raises(ValueError, match=r"sigmoid\(\): x is nested more than 64 levels deep"):
        refact.sigmoid(_deep(limit + 1))


# -- the user's own code raising: chained under an error that names the argument ---------------

class Boom(Exception):
    pass


class LenRaises:
    def __len__(self):
        raise Boom("len")

    def __getitem__(self, i):
        return 0.5


class GetitemRaises:  # no __iter__: iteration goes through __getitem__
    def __len__(self):
        return 2

    def __getitem__(self, i):
        raise Boom("getitem")


class IterRaises:
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return 0.5

    def __iter__(self):
        raise Boom("iter")


class IterationRaises(IterRaises):
    def __iter__(self):
        yield 0.5
        raise Boom("next")


class TolistRaises:
    def tolist(self):
        raise Boom("tolist")


class FloatRaises(float):
    def __float__(self):
        raise Boom("float")


USER_RAISES = {"__len__": LenRaises, "__getitem__": GetitemRaises, "__iter__": IterRaises,
               "__next__": IterationRaises, "tolist": TolistRaises}


@pytest.mark.parametrize("kind", USER_RAISES)
@pytest.mark.parametrize("template, argument", _arguments())
def test_a_sequence_that_raises_is_chained(template, argument, kind):
    error = expect_refusal(template, argument, USER_RAISES[kind]())
    assert isinstance(error.__cause__, Boom)
    assert "could not be read as a sequence" in str(error) and "Boom" in str(error)
    canonical = valid_call(template)[1][argument]
    error = expect_refusal(template, argument, [canonical[0], USER_RAISES[kind]()], where=" at index [1]")
    assert isinstance(error.__cause__, Boom)


@pytest.mark.parametrize("template, argument", _arguments(scalar=True))
def test_a_float_that_raises_is_chained(template, argument):
    function, kwargs, kinds = valid_call(template)
    value = kwargs[argument]
    where = ""
    if isinstance(value, list):
        where = " at index [0]" + ("[0]" if isinstance(value[0], list) else "")
    value = _replace_first(value, FloatRaises(0.5))
    error = expect_refusal(template, argument, value, where=where)
    assert isinstance(error.__cause__, Boom)
    assert "could not be converted to a float" in str(error)


def _replace_first(value, leaf):
    if not isinstance(value, list):
        return leaf
    return [_replace_first(value[0], leaf)] + value[1:]


def test_a_sequence_whose_len_lies_cannot_hang():
    class Endless:  # __getitem__ never raises IndexError
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return 0.5

    with pytest.raises(ValueError, match=r"softmax\(\): x has len\(\) 2 but iterating it gives more than 2"):
        refact.softmax(Endless())


def test_a_hostile_repr_or_a_huge_int_still_gives_our_message():
    class BadRepr:
        def __repr__(self):
            raise Boom("repr")

    with pytest.raises(TypeError, match=r"sigmoid\(\): x at index \[0\] must be a real number, not BadRepr"):
        refact.sigmoid([BadRepr()])
    with pytest.raises(ValueError, match=r"sigmoid\(\): x = <an int of 16610 bits> is too large"):
        refact.sigmoid(10 ** 5000)
    long_string = "x" * 10 ** 6
    with pytest.raises(TypeError) as info:
        refact.softmax([1.0, long_string])
    assert len(str(info.value)) < 200


# -- float subclasses: converted on every path --------------------------------------------------

class Hostile(float):
    """A float whose comparisons, hash and arithmetic lie: only float() gives its value."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __lt__(self, other):
        return True

    __le__ = __gt__ = __ge__ = __lt__

    def __hash__(self):
        return 0

    def __add__(self, other):
        return 0.0

    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __add__

    def __neg__(self):
        return 0.0


class HostileInt(int):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __lt__(self, other):
        return True

    __le__ = __gt__ = __ge__ = __lt__

    def __hash__(self):
        return 0


def bits(value):
    """A float result as comparable bits (NaN, -0.0 told apart), lists as lists; floats exactly."""
    if isinstance(value, list):
        return [bits(v) for v in value]
    assert type(value) is float, type(value)
    return struct.pack("<d", value).hex()


def _disguise(value, container, leaf):
    if isinstance(value, list):
        return container([_disguise(v, container, leaf) for v in value])
    if isinstance(value, bool):
        return value
    return HostileInt(value) if isinstance(value, int) else leaf(value)


CONTAINERS = {"list": list, "tuple": tuple}


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("shape", [(2,), (2, 3)], ids=["flat", "nested"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_a_hostile_float_subclass_gives_the_floats_of_plain_floats(template, shape, container):
    function, canonical, _ = valid_call(template, shape=shape)  # the losses keep their shapes
    expected = function(**canonical)
    disguised = {k: v if k == "multi_label" else _disguise(v, CONTAINERS[container], Hostile)
                 for k, v in canonical.items()}
    assert bits(function(**disguised)) == bits(expected)


def _takes_scalars(template):
    return all(shape is None or shape == () for _, shape in valid_call(template, shape=())[2].values())


@pytest.mark.parametrize("template", [t for t in TEMPLATES if _takes_scalars(t)])
def test_a_hostile_float_subclass_in_scalar_position(template):
    function, canonical, _ = valid_call(template, shape=())
    expected = function(**canonical)
    disguised = {k: v if k == "multi_label" else _disguise(v, list, Hostile) for k, v in canonical.items()}
    assert bits(function(**disguised)) == bits(expected)


# -- the fuzz test: refused, or exactly the canonical result ---------------------------------------

REAL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 5e-324, 1e308, -1e308, math.inf, -math.inf, math.nan]),
    st.integers(-50, 50).map(float),
)
PROB = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 0.5, 5e-324, math.nan, 1.5, -0.25]))
SCALARS = {"temp": st.one_of(st.floats(1e-3, 1e3), st.sampled_from([1.0, 2.0, 0.0, math.inf])),
           "smooth": st.one_of(st.floats(0.0, 1.0), st.just(0.0)),
           "eps": st.one_of(st.floats(0.0, 0.5), st.just(1e-6))}


def _index(c):
    return st.one_of(st.integers(0, c - 1), st.sampled_from([-100, -1, c]))


@st.composite
def canonical_calls(draw, template):
    """(function, canonical kwargs, kinds): arrays of floats (ints for class indices) as lists."""
    function, fixed, build = TEMPLATES[template]
    n, c = draw(st.integers(0, 3)), draw(st.integers(1, 3))
    shape = draw(st.sampled_from([(), (n,), (n, c)]))
    kinds = build(n, c, shape)
    kwargs = dict(fixed)
    for argument, (kind, arg_shape) in kinds.items():
        if arg_shape is None:
            kwargs[argument] = draw(SCALARS[kind])
            continue
        leaf = {"real": REAL, "prob": PROB, "index": _index(c)}[kind]
        flat = [draw(leaf) for _ in range(math.prod(arg_shape))]
        kwargs[argument] = _nest(flat, arg_shape)
    return function, kwargs, kinds


class UserSequence:
    """An ordered, sized sequence that is none of the built-in ones."""

    def __init__(self, items):
        self._items = list(items)

    def __len__(self):
        return len(self._items)

    def __getitem__(self, i):
        return self._items[i]


POISON_LEAVES = [lambda v: str(v), lambda v: None, lambda v: True, lambda v: b"1", lambda v: {v},
                 lambda v: {0: v}, lambda v: (u for u in [v]), lambda v: iter([v])]
POISON_NODES = [lambda items: set(range(len(items))), lambda items: frozenset(range(len(items))),
                lambda items: dict(enumerate(items)), lambda items: (u for u in items),
                lambda items: iter(items), lambda items: bytes(len(items))]


def _float_disguises(v):
    """Ways to write the float v that the core must read as v."""
    options = [lambda: v, lambda: Hostile(v)]
    if math.isfinite(v) and v == int(v):
        options.append(lambda: int(v))
        options.append(lambda: fractions.Fraction(int(v)))
    return options


#: How often, per node in percent, a disguise poisons (and how it writes floats): drawn once
#: per example, so that some examples are all hostile floats in lists and others full of poison.
STYLES = st.fixed_dictionaries({"poison": st.sampled_from([0, 5, 25]),
                                "containers": st.sampled_from([(list,), (tuple,), (list, tuple, UserSequence)]),
                                "floats": st.sampled_from(["hostile", "any"])})


@st.composite
def disguised(draw, value, kind, style):
    """(value written another way, poisoned): poisoned when it holds something to refuse."""
    def poison():
        return draw(st.integers(0, 99)) < style["poison"]

    if isinstance(value, list):
        parts = [draw(disguised(v, kind, style)) for v in value]
        items = [p[0] for p in parts]
        poisoned = any(p[1] for p in parts)
        if poison():
            return draw(st.sampled_from(POISON_NODES))(items), True
        return draw(st.sampled_from(style["containers"]))(items), poisoned
    if poison():
        return draw(st.sampled_from(POISON_LEAVES))(value), True
    if kind == "index":
        if poison():
            return float(value), True  # a class index must be an int
        return (HostileInt(value) if draw(st.booleans()) else value), False
    if style["floats"] == "hostile":
        return Hostile(value), False
    return draw(st.sampled_from(_float_disguises(value)))(), False


def outcome(function, kwargs):
    """The result as bits, or the type of the TypeError/ValueError raised; anything else fails."""
    try:
        return bits(function(**kwargs))
    except (TypeError, ValueError) as error:
        assert str(error).startswith(f"{function.__name__}(): "), str(error)
        return type(error)


@contextlib.contextmanager
def time_limit(seconds):
    """Fail, instead of hanging, if the body runs longer than ``seconds`` (where SIGALRM exists)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


FUZZ = settings(max_examples=100, derandomize=True, deadline=datetime.timedelta(seconds=5),
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("template", TEMPLATES)
@FUZZ
@given(data=st.data())
def test_fuzz_refused_or_exactly_the_canonical_result(template, data):
    function, canonical, kinds = data.draw(canonical_calls(template))
    style = data.draw(STYLES)
    kwargs, poisoned = dict(canonical), False
    for argument, (kind, _) in kinds.items():
        if data.draw(st.integers(0, 3)):
            kwargs[argument], bad = data.draw(disguised(canonical[argument], kind, style))
            poisoned = poisoned or bad
    with time_limit(20):
        got = outcome(function, kwargs)
        if poisoned:
            assert got in (TypeError, ValueError), "a poisoned input gave a result"
        else:
            assert got == outcome(function, canonical)
