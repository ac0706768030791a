"""The protocol every backend implements, and the records it declares.

A backend is a small class: it imports its framework in :meth:`Backend.load` (never at
module import), maps the canonical function names to the framework's own public
callables, says which devices and formats it has, converts its native arrays to and
from numpy exactly (as einops' ``to_numpy`` and Keras 3's ``convert_to_numpy`` do: the
bfloat16 and device cases live with their framework), and (where the framework has
autograd) computes vector-Jacobian products. Everything else here is shared, so every adapter looks like its siblings.

The canonical call convention (what :meth:`Backend.call` receives, and what the
conformance catalog sends):

* elementwise, any shape: ``sigmoid(x)``, ``sigmoid_grad(x)``, ``log_sigmoid(x)``,
  ``softplus(x)``, ``logit(p)``, ``hard_sigmoid(x)``, ``ndtr(x)``, ``probit(p)``;
* along the last axis: ``softmax(x)`` and ``log_softmax(x)`` keep the shape,
  ``logsumexp(x)`` reduces the last axis;
* losses, reduction "none": ``binary_cross_entropy(p, y)`` and
  ``binary_cross_entropy_with_logits(x, y)`` elementwise; ``cross_entropy(logits (N, C),
  target (N,) class indices)`` -> (N,); ``distillation_loss(student (N, C), teacher
  (N, C), temperature)`` -> (N,), ``T**2 KL(softmax(t/T) || softmax(s/T))`` per row;
* options by keyword where a framework has them: ``cross_entropy(...,
  label_smoothing=eps)``, ``binary_cross_entropy_with_logits(..., pos_weight=w)``,
  ``logit(..., eps=e)``; and the input variant ``probability_target`` (a float target
  of shape (N, C) for ``cross_entropy``). A binding lists the ones it supports.

Where an adapter has to compose public calls to reach that convention (a reduction
argument, a keyword, argument order, a recipe such as torch's ``kl_div`` over
``log_softmax`` for distillation), the composition is a few lines in the adapter and its
:class:`Binding` names every public callable it uses.
"""

import importlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from refact import FUNCTIONS  # the canonical names, as the core implements them

__all__ = [
    "FUNCTIONS", "FORMATS", "Backend", "Binding", "Convention", "Point", "BackendInfo",
    "BackendUnavailable", "Unsupported", "require", "install_hint", "resolve", "is_subnormal",
    "is_subnormal_array",
    "wrapping_chain", "split_variant", "variant_name",
]

#: The format names of the whole project, widest first (refact.conformance.numbers.formats
#: gives each its layout).
FORMATS = ("float64", "float32", "float16", "bfloat16")

# Smallest positive normal number of each format (subnormals lie below).
_SMALLEST_NORMAL = {
    "float64": 2.0 ** -1022, "float32": 2.0 ** -126, "float16": 2.0 ** -14,
    "bfloat16": 2.0 ** -126,
}


class BackendUnavailable(RuntimeError):
    """The backend cannot run here: its framework is missing or broken, or the device
    asked for does not exist. The message says why and how to fix it."""


class Unsupported(LookupError):
    """The backend does not provide this function, format, option or gradient.

    The conformance suite reports it as ``skip``, never as a pass or a failure."""


def split_variant(name):
    """``("torch", "compile")`` of the backend name ``"torch[compile]"``; ``(name, None)``
    of a name without brackets. ValueError for a malformed name (``"torch[]"``,
    ``"torch[a]b"``), naming it."""
    if "[" not in name and "]" not in name:
        return name, None
    base, bracket, rest = name.partition("[")
    variant = rest[:-1]
    if not base or not bracket or not rest.endswith("]") or not variant or \
            any(c in variant for c in "[]"):
        raise ValueError(f"backend name {name!r} is not of the form 'name' or 'name[variant]'")
    return base, variant


def variant_name(name, variant):
    """The backend name of ``variant`` of backend ``name``: ``torch[compile]``; ``name``
    itself when ``variant`` is None."""
    return name if variant is None else f"{name}[{variant}]"


def install_hint(extra):
    """The pip command that installs refact's extra ``extra``."""
    return f"pip install 'refact-numerics[{extra}]'"


def require(module, install):
    """Import ``module`` or raise :class:`BackendUnavailable` saying how to ``install``
    it (a command such as ``install_hint("torch")``)."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise BackendUnavailable(f"{module} is not installed: {install} ({error})") from error
    except Exception as error:  # a framework that is installed but fails to import
        raise BackendUnavailable(
            f"{module} failed to import: {type(error).__name__}: {error}"
        ) from error


def resolve(dotted):
    """The object a dotted public name refers to, ``resolve("torch.nn.functional.softplus")``:
    attributes from the top-level module down, importing a submodule only where no
    attribute of that name exists (so ``refact.softmax`` is the function, not the
    module of the same name)."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, name in enumerate(parts[1:], start=2):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[:i]))
    return obj


def is_subnormal(values, fmt):
    """True if any number in ``values`` (a number or nested sequence; mpmath numbers
    work too) is nonzero and below the smallest normal number of ``fmt``."""
    tiny = _SMALLEST_NORMAL[fmt]
    if hasattr(values, "dtype") and getattr(values, "ndim", 0):  # a numpy array
        return bool(is_subnormal_array(values, fmt).any())
    if isinstance(values, (list, tuple)):
        if len(values) > 16:
            import numpy as np

            try:  # a row of plain floats: one array, not a Python loop
                a = np.abs(np.asarray(values, dtype=np.float64))
            except (TypeError, ValueError):
                pass
            else:
                return bool(np.any((a > 0) & (a < tiny)))
        return any(is_subnormal(v, fmt) for v in values)
    if values is None:
        return False
    try:
        a = abs(float(values))
    except (TypeError, ValueError, OverflowError):
        return False
    return 0.0 < a < tiny


def is_subnormal_array(values, fmt):
    """:func:`is_subnormal` of each number of a numpy array (float64 values)."""
    import numpy as np

    magnitude = np.abs(values)
    return (magnitude > 0.0) & (magnitude < _SMALLEST_NORMAL[fmt or "float64"])


@dataclass(frozen=True)
class Point:
    """One input point as a convention predicate sees it.

    ``args``: the arguments of one point as Python values (a float for an elementwise
    function, a row (a sequence of floats; a float64 numpy array where the engine judges dense rows) for the axis functions, ``(row, class index)`` for
    cross_entropy, ``(student row, teacher row, T)`` for distillation_loss);
    ``truth``: the exact value (a float, mpmath number or list for a row) or None when
    not known; ``fmt``: the format name or None; ``options``: the call's keywords."""

    args: tuple
    truth: object = None
    fmt: Optional[str] = None
    options: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Convention:
    """A documented behaviour of a framework that departs from the mathematics.

    ``function``: the canonical function it affects; ``name``: a short identifier
    (``softplus_threshold``); ``summary``: what the framework does, in one sentence;
    ``reference``: where the framework documents it (a URL); ``predicate(point) ->
    bool``: whether it affects one input :class:`Point`; ``example``: a :class:`Point`
    (its ``truth`` left None) where it applies and shows, in float64 unless ``fmt`` says
    otherwise; the tests check the predicate and the departure from the core there.
    ``edges``: the inputs where the behaviour starts (softplus's threshold 20), which the
    conformance run samples densely on both sides. ``flushes``: the convention is a
    flush of subnormal results to zero; it then covers a zero only where the backend
    shows that mechanism (returns no nonzero subnormal for the same function and format).
    ``array_predicate(x, truth, fmt, options) -> bool array``, where offered, is the
    predicate of an elementwise function on numpy arrays (inputs and their truths as
    float64): the conformance engine then asks it once per array, not once per point.
    ``row_predicate(args, truths, fmt, options) -> bool array``, where offered, is the
    predicate of a row function or loss at several values of one output row: ``args``
    that row's arguments (rows as float64 arrays), ``truths`` the truths of the values in
    question (a float64 array): the engine asks it once per row, not once per value.
    ``promotes``: ``(input format, result format)`` pairs when the convention is a
    documented dtype promotion (numpy's ufuncs compute a float16 input in the first
    loop its type casts to safely); the dtype check reports such a result as this
    convention. A promotion explains a dtype, never a value: its predicate covers no
    point.
    """

    function: str
    name: str
    summary: str
    reference: str
    predicate: Callable[[Point], bool] = field(repr=False, compare=False)
    example: Optional[Point] = None
    edges: tuple = ()
    flushes: bool = False
    array_predicate: Optional[Callable] = field(default=None, repr=False, compare=False)
    row_predicate: Optional[Callable] = field(default=None, repr=False, compare=False)
    promotes: tuple = ()

    def applies(self, args, truth=None, fmt=None, options=None):
        """Whether this convention affects the point ``args`` (see :class:`Point`)."""
        return bool(self.predicate(Point(tuple(args), truth, fmt, dict(options or {}))))

    def applies_array(self, x, truth, fmt=None, options=None):
        """:meth:`applies` at every input of the array ``x`` (truths ``truth``), as a
        bool array; None where the convention offers no ``array_predicate``."""
        if self.array_predicate is None:
            return None
        import numpy as np

        accepted = self.array_predicate(x, truth, fmt, dict(options or {}))
        return np.broadcast_to(np.asarray(accepted, dtype=bool), np.shape(x))

    def applies_row(self, args, truths, fmt=None, options=None):
        """:meth:`applies` at several values of one output row (see ``row_predicate``):
        one bool per entry of ``truths``, in one call of ``row_predicate`` where offered,
        else of the predicate per value."""
        import numpy as np

        truths = np.asarray(truths, dtype=np.float64)
        if self.row_predicate is None:
            return np.array([self.applies(args, t, fmt, options) for t in truths.tolist()], dtype=bool)
        accepted = self.row_predicate(tuple(args), truths, fmt, dict(options or {}))
        return np.broadcast_to(np.asarray(accepted, dtype=bool), truths.shape)


def wrapping_chain(call):
    """``call`` and the callables under it: a functools.partial's ``func`` and the
    ``__wrapped__`` of wrappers such as ``jax.jit`` (or a framework's own decorators)."""
    chain = [call]
    while (inner := getattr(chain[-1], "func", None) or getattr(chain[-1], "__wrapped__", None)):
        chain.append(inner)
    return chain


class Binding:
    """How one canonical function maps onto a framework.

    ``call``: the callable the backend runs, following the canonical call convention;
    either the framework's public callable itself (or a ``functools.partial`` of it
    binding the axis or ``reduction="none"``, or it compiled by the framework's own
    ``jax.jit``), or a recipe of a few lines composing the
    public callables named in ``sources`` (dotted public names, first the main one).
    ``gradient``: whether :meth:`Backend.grad` is available for it; ``formats``: the
    formats it runs in when fewer than the backend's; ``options``: the keywords and
    input variants it accepts beyond the canonical call.
    """

    __slots__ = ("call", "sources", "gradient", "formats", "options")

    def __init__(self, call, *sources, gradient=True, formats=None, options=()):
        if not sources:
            raise ValueError("a Binding names at least one public source")
        self.call = call
        self.sources = tuple(sources)
        self.gradient = bool(gradient)
        self.formats = None if formats is None else tuple(formats)
        self.options = frozenset(options)

    @property
    def is_recipe(self):
        """True when ``call`` composes its sources rather than being the first of them."""
        try:
            public = resolve(self.sources[0])
        except (ImportError, AttributeError):
            return True
        return not any(c is public for c in wrapping_chain(self.call))

    def __repr__(self):
        return f"Binding({' + '.join(self.sources)}{', recipe' if self.is_recipe else ''})"


@dataclass(frozen=True)
class BackendInfo:
    """What :func:`refact.backends.discover` reports about one backend."""

    name: str
    available: bool
    error: Optional[str] = None
    version: Optional[str] = None
    device: Optional[str] = None
    devices: tuple = ()
    formats: tuple = ()
    functions: tuple = ()
    gradients: tuple = ()
    conventions: tuple = ()
    origin: str = "builtin"
    target: str = ""
    references: tuple = ()
    variant: Optional[str] = None
    variants: tuple = ()  # ((name, description), ...) the default first

    def to_dict(self):
        """A JSON-ready dict; ``functions`` also given as a count (``n_functions``),
        ``conventions`` as ``"function:name"`` and in ``convention_references`` with
        their documentation URLs, ``variants`` as ``{name: description}``."""
        return {
            "name": self.name, "available": self.available, "error": self.error,
            "version": self.version, "device": self.device, "devices": list(self.devices),
            "formats": list(self.formats), "n_functions": len(self.functions),
            "functions": list(self.functions), "gradients": list(self.gradients),
            "conventions": list(self.conventions),
            "convention_references": dict(zip(self.conventions, self.references)),
            "origin": self.origin, "target": self.target,
            "variant": self.variant, "variants": dict(self.variants),
        }


class Backend:
    """Base class of every adapter. Subclasses set the class attributes and implement
    :meth:`load`, :meth:`formats_on`, :meth:`from_numpy`, :meth:`to_numpy` and, where
    they differ from the defaults, :meth:`devices` and (with autograd) :meth:`vjp`.

    Constructing a backend imports its framework; if that fails the constructor raises
    :class:`BackendUnavailable` with the reason (e.g. ``torch is not installed: pip
    install 'refact-numerics[torch]'``). ``device`` selects where arrays live (``"cpu"`` by
    default, never assumed otherwise).
    """

    #: canonical backend name, as listed by ``refact backends``
    name = ""
    #: import name of the framework, for messages and the version
    module = ""
    #: the pip extra of refact that installs the framework
    extra = ""
    #: how to install the framework, when not by a refact extra (plugins set this)
    install = None
    #: documented departures from the mathematics
    conventions = ()
    #: typical seconds the default conformance run spends on this backend (the
    #: framework's import, its compiling and the checks), measured, by variant where its
    #: variants differ (``{variant: seconds}``): a runner starts the longest first, so
    #: that the run ends soon after its last one starts
    check_seconds = 0.0
    #: ``{variant: one-line description}``, the default variant first; empty for a
    #: backend that runs one way. A variant is a way the framework runs the same
    #: functions (eagerly, compiled, on another engine); each is checked in a worker of
    #: its own and reported as its own column (``torch[compile]``).
    variants = {}

    def __init__(self, device="cpu", variant=None):
        self.device = device
        self.variant = self.resolve_variant(variant)
        hint = self.install or (install_hint(self.extra) if self.extra
                                else f"pip install {self.module}")
        self.framework = require(self.module, hint) if self.module else None
        bindings = self.load()
        wrong = [name for name, b in bindings.items()
                 if not isinstance(name, str) or not isinstance(b, Binding)]
        if wrong:
            raise TypeError(f"{type(self).__name__}.load() must map function names to "
                            f"Binding objects; it gave {wrong!r}")
        # The canonical functions first, in their order; then any a plugin binds beyond
        # them (a conformance catalog may know more functions than this core does).
        self._bindings = {name: bindings[name] for name in FUNCTIONS if name in bindings}
        self._bindings.update(bindings)
        for b in self._bindings.values():
            b.call = self.compile(b.call)
        available = self.devices()
        if device not in available:
            raise BackendUnavailable(
                f"{self.name}: device {device!r} is not available here "
                f"(available: {', '.join(available)})"
            )

    @classmethod
    def expected_seconds(cls, variant=None):
        """:attr:`check_seconds` of ``variant`` (None: the default variant)."""
        seconds = cls.check_seconds
        if isinstance(seconds, dict):
            return seconds.get(cls.resolve_variant(variant), 0.0)
        return seconds

    @classmethod
    def resolve_variant(cls, variant):
        """The variant ``variant`` names: the default (the first of :attr:`variants`)
        for None, None for a backend without variants; ValueError naming the backend
        and the value for one it does not have."""
        if variant is None:
            return next(iter(cls.variants), None)
        if variant not in cls.variants:
            known = ", ".join(cls.variants) if cls.variants else "none: it runs one way"
            raise ValueError(f"backend {cls.name!r} has no variant {variant!r} (variants: {known})")
        return variant

    # -- to implement ------------------------------------------------------------------

    @classmethod
    def environment(cls, cache_directory, variant=None):
        """Environment variables a worker sets, where the user has not, before it
        constructs this backend's ``variant`` (a framework reads them at import): e.g.
        where to keep a persistent compilation cache under ``cache_directory`` (None: no
        cache). A backend without :attr:`variants` is asked without ``variant``."""
        return {}

    def compile(self, call):
        """A binding's callable as this backend's variant runs it (``torch.compile`` of
        it, say); the callable itself by default. The base class applies it to every
        binding :meth:`load` returns, so a variant is built in this one place."""
        return call

    def load(self):
        """Import what is needed and return ``{canonical name: Binding}``; a function
        the framework does not provide is simply absent."""
        raise NotImplementedError

    def devices(self):
        """Device names this backend can run on here, ``"cpu"`` first."""
        return ["cpu"]

    def formats_on(self, device):
        """The formats the framework supports on ``device``."""
        raise NotImplementedError

    def from_numpy(self, array):
        """A native array on the selected device holding the numpy array ``array``
        exactly: floats in a format's own dtype (:func:`numpy_dtype`: bfloat16 is
        ml_dtypes' ``bfloat16``) or int64 class indices. The caller has checked that the
        format is offered."""
        raise NotImplementedError

    def to_numpy(self, native):
        """A native result as a numpy array on the host, in its own dtype (bfloat16 as
        ml_dtypes' ``bfloat16``), detached from any autograd graph; exact."""
        raise NotImplementedError

    def vjp(self, call, args, cotangent, options):
        """The framework's autograd vector-Jacobian product of ``call(*args,
        **options)`` with ``cotangent``, with respect to ``args[0]`` (native)."""
        raise Unsupported(f"{self.name} has no autograd")

    def run(self, call, args, options):
        """Run a binding's callable; adapters override to enter a device scope."""
        return call(*args, **options)

    # -- provided ----------------------------------------------------------------------

    def asarray(self, values, fmt):
        """A native array of format ``fmt`` holding ``values`` (a float or nested lists
        of floats, each exactly representable in ``fmt``: an inexact one raises
        ValueError); :class:`Unsupported` for a format not offered here."""
        if fmt not in self.formats:
            raise Unsupported(f"{self.name} on {self.device} does not offer {fmt}")
        return self.from_numpy(exact_numpy(values, fmt))

    def asindex(self, values):
        """A native integer array (class indices) from an int or nested lists of ints."""
        import numpy as np

        return self.from_numpy(np.asarray(values, dtype=np.int64))

    def tolist(self, native):
        """``(values, format)``: the native result as nested Python floats exactly equal
        to its values (ints for an integer result), and the name of its dtype."""
        return numpy_tolist(self.to_numpy(native))

    @property
    def framework_version(self):
        """Version string of the framework (``__version__`` of :attr:`module`)."""
        return getattr(self.framework, "__version__", None)

    @property
    def formats(self):
        """The formats supported on the selected device, in :data:`FORMATS` order."""
        offered = set(self.formats_on(self.device))
        return tuple(f for f in FORMATS if f in offered)

    @property
    def bindings(self):
        """``{canonical name: Binding}`` of the functions this backend provides."""
        return dict(self._bindings)

    @property
    def functions(self):
        """``{canonical name: callable}`` of the functions this backend provides."""
        return {name: b.call for name, b in self._bindings.items()}

    @property
    def gradients(self):
        """Names of the functions whose gradient :meth:`grad` computes."""
        return tuple(name for name, b in self._bindings.items() if b.gradient)

    def binding(self, function):
        """The :class:`Binding` of ``function``; :class:`Unsupported` if absent."""
        try:
            return self._bindings[function]
        except KeyError:
            raise Unsupported(f"{self.name} does not provide {function}") from None

    def formats_of(self, function):
        """The formats ``function`` runs in on the selected device."""
        b = self.binding(function)
        own = self.formats
        return own if b.formats is None else tuple(f for f in own if f in b.formats)

    def result_format(self, function, fmt):
        """The format ``function`` returns for an input of ``fmt`` (one of
        :meth:`formats_of`): the result format of its convention promoting ``fmt``
        (see ``Convention.promotes``), else ``fmt`` itself."""
        for convention in self.conventions_for(function):
            for accepted, returned in convention.promotes:
                if accepted == fmt:
                    return returned
        return fmt

    def supports(self, function, fmt=None, option=None):
        """Whether ``function`` is provided, in format ``fmt`` and with ``option``."""
        b = self._bindings.get(function)
        if b is None:
            return False
        if fmt is not None and fmt not in self.formats_of(function):
            return False
        return option is None or option in b.options

    def conventions_for(self, function):
        """The declared conventions of ``function``."""
        return tuple(c for c in self.conventions if c.function == function)

    def _check_options(self, function, b, options):
        extra = set(options) - b.options
        if extra:
            raise Unsupported(
                f"{self.name}: {function} does not accept {', '.join(sorted(extra))}"
            )

    def call(self, function, *args, **options):
        """Run ``function`` on native arguments with the canonical convention."""
        b = self.binding(function)
        self._check_options(function, b, options)
        return self.run(b.call, args, options)

    def grad(self, function, args, cotangent, **options):
        """Autograd vector-Jacobian product of ``function`` at ``args`` with respect to
        the first argument (native); :class:`Unsupported` where not declared."""
        b = self.binding(function)
        if not b.gradient:
            raise Unsupported(f"{self.name} declares no gradient for {function}")
        self._check_options(function, b, options)
        return self.vjp(b.call, tuple(args), cotangent, options)

    def info(self):
        """This backend as a :class:`BackendInfo`."""
        return BackendInfo(
            name=self.name, available=True, version=self.framework_version,
            device=self.device, devices=tuple(self.devices()), formats=self.formats,
            functions=tuple(self._bindings), gradients=self.gradients,
            conventions=tuple(f"{c.function}:{c.name}" for c in self.conventions),
            references=tuple(c.reference for c in self.conventions),
            target=f"{type(self).__module__}:{type(self).__qualname__}",
            variant=self.variant, variants=tuple(self.variants.items()),
        )

    def __repr__(self):
        name = variant_name(self.name, self.variant)
        return f"<{type(self).__name__} {name} {self.framework_version} on {self.device}>"


# -- helpers shared by adapters whose arrays go through numpy ----------------------------


def numpy_dtype(fmt):
    """The numpy dtype of a format name; bfloat16 needs ml_dtypes."""
    import numpy as np

    if fmt == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise Unsupported("bfloat16 needs ml_dtypes: pip install ml_dtypes") from None
        return np.dtype(ml_dtypes.bfloat16)
    if fmt not in FORMATS:
        raise Unsupported(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return np.dtype(fmt)


def has_bfloat16():
    """Whether numpy can hold bfloat16 here (ml_dtypes installed)."""
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        return False
    return True


def exact_numpy(values, fmt):
    """A numpy array of format ``fmt`` holding ``values`` exactly, built without any
    arithmetic: float64 first, then a cast that is exact because each value is
    representable in ``fmt`` (checked: an inexact value raises ValueError)."""
    import numpy as np

    wide = np.asarray(values, dtype=np.float64)
    narrow = wide.astype(numpy_dtype(fmt))
    back = narrow.astype(np.float64)
    same = (back == wide) | (np.isnan(back) & np.isnan(wide))
    if not np.all(same):
        bad = wide[~same].ravel()[0]
        raise ValueError(f"{float(bad)!r} is not exactly representable in {fmt}")
    return narrow


def numpy_tolist(array):
    """``(nested floats, format name)`` of a numpy array, exactly (widening to float64
    is exact for every format here)."""
    import numpy as np

    array = np.asarray(array)
    name = array.dtype.name
    if array.dtype.kind in "iub":
        return array.tolist(), name
    return array.astype(np.float64).tolist(), name


