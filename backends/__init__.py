"""refact.backends: one small adapter per framework, imported lazily.

Importing this package imports no framework: an adapter module is imported when its
backend is constructed, and the framework when the adapter loads. Built-in backends are
``reference`` (the pure-Python core), ``numpy`` (refact's vectorised implementation),
``scipy``, ``torch``, ``tensorflow``, ``keras`` and ``jax``; third-party backends
register under the entry-point group ``refact.backends`` as
``name = "package.module:BackendClass"`` (see "Writing a backend" in README.md).

A backend with variants (``Backend.variants``: eager, compiled, another engine) is
named ``name[variant]`` wherever a backend name is taken (``torch[compile]``,
``keras[jax]``); the plain name is its default variant.

>>> from refact.backends import get_backend
>>> numpy_backend = get_backend("numpy")            # doctest: +SKIP
>>> numpy_backend.call("sigmoid", numpy_backend.asarray([0.0], "float32"))  # doctest: +SKIP
"""

import importlib
import multiprocessing
import multiprocessing.connection
import os
import time
from importlib import metadata

from .base import (
    FORMATS, FUNCTIONS, Backend, BackendInfo, BackendUnavailable, Binding, Convention,
    Point, Unsupported, split_variant, variant_name,
)

__all__ = [
    "FUNCTIONS", "FORMATS", "BUILTIN", "ENTRY_POINT_GROUP", "Backend", "Binding",
    "Convention", "Point", "BackendInfo", "BackendUnavailable", "Unsupported",
    "get_backend", "discover", "backend_class", "target_of", "plugin_targets",
    "split_variant", "variant_name", "variant_names", "worker_environment",
]

ENTRY_POINT_GROUP = "refact.backends"
#: Seconds :func:`discover` waits for all backends to construct (frameworks import for
#: seconds; a plugin that hangs must not hold the listing).
DISCOVERY_TIMEOUT = 120.0

BUILTIN = {
    "reference": "refact.backends.reference:ReferenceBackend",
    "numpy": "refact.backends.numpy_backend:NumpyBackend",
    "scipy": "refact.backends.scipy_backend:ScipyBackend",
    "torch": "refact.backends.torch_backend:TorchBackend",
    "tensorflow": "refact.backends.tensorflow_backend:TensorflowBackend",
    "keras": "refact.backends.keras_backend:KerasBackend",
    "jax": "refact.backends.jax_backend:JaxBackend",
    "optax": "refact.backends.optax_backend:OptaxBackend",
}


def _load_target(target):
    """The class a ``"package.module:Class"`` target names."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{target!r} is not of the form 'package.module:Class'")
    obj = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        raise TypeError(f"{target} is not a subclass of refact.backends.Backend")
    return obj


def _entry_points():
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def plugin_targets():
    """``{name: "package.module:Class"}`` of the installed entry points (the first one
    of a duplicated name). Entry points are only read here, never loaded."""
    found = {}
    for entry_point in _entry_points():
        found.setdefault(entry_point.name, entry_point.value)
    return found


def target_of(name):
    """The ``"package.module:Class"`` target backend ``name`` stands for (a built-in, an
    entry-point plugin, or a target given directly; ``name[variant]`` stands for the
    target of ``name``), read from metadata alone: nothing is imported, so a plugin's
    code never runs where this is asked (a built-in's variant is checked against its
    adapter class, which imports no framework; a plugin's is checked in its worker).
    ValueError for a name no backend has, or a variant a built-in does not have."""
    base, variant = split_variant(name)
    if base in BUILTIN:
        if variant is not None:
            _load_target(BUILTIN[base]).resolve_variant(variant)
        return BUILTIN[base]
    plugins = plugin_targets()
    if base in plugins:
        return plugins[base]
    if ":" in base:
        return base
    known = ", ".join(list(BUILTIN) + list(plugins))
    raise ValueError(f"unknown backend {name!r}; known: {known}")


def backend_class(name):
    """The class of backend ``name`` (see :func:`target_of`), imported."""
    return _load_target(target_of(name))


def variant_names(name):
    """The names of every variant of backend ``name`` (``["torch[eager]",
    "torch[compile]"]``), the default first; ``[name]`` for a backend without variants.
    Reads the class, so it imports the module of a plugin (built-ins import no
    framework at module import)."""
    variants = backend_class(name).variants
    return [variant_name(name, v) for v in variants] if variants else [name]


def worker_environment(name, cache_directory):
    """The environment variables backend ``name`` (``name[variant]`` included) asks a
    worker to set before it is constructed (:meth:`Backend.environment`)."""
    cls = backend_class(name)
    if not cls.variants:  # a plugin written before variants takes no variant argument
        return cls.environment(cache_directory)
    return cls.environment(cache_directory, cls.resolve_variant(split_variant(name)[1]))


def get_backend(name, device="cpu"):
    """Construct backend ``name`` (or ``name[variant]``) on ``device``.

    Raises :class:`BackendUnavailable` when its framework is missing (the message names
    the pip extra) or the device does not exist, ValueError for an unknown name or
    variant."""
    base, variant = split_variant(name)
    cls = backend_class(name)
    if variant is not None:
        cls.resolve_variant(variant)  # a clear error, before a plugin's __init__ is asked
    backend = cls(device=device) if variant is None else cls(device=device, variant=variant)
    if ":" not in base and backend.name != base:
        raise BackendUnavailable(f"backend {base!r} is a class that calls itself {backend.name!r}")
    return backend


def _info(name, target, origin, device, problem=None):
    base, variant = split_variant(name)
    try:
        if problem:
            raise BackendUnavailable(problem)
        cls = _load_target(target)
        backend = cls(device=device) if variant is None else cls(device=device, variant=variant)
        if backend.name != base:
            raise BackendUnavailable(
                f"entry point {base!r} names a backend that calls itself {backend.name!r}")
        fields = {**backend.info().__dict__, "name": base, "origin": origin, "target": target}
        return BackendInfo(**fields)
    except Exception as error:  # a broken backend is listed with its error, never fatal
        reason = str(error) if isinstance(error, BackendUnavailable) else \
            f"{type(error).__name__}: {error}"
        return BackendInfo(name=base, variant=variant, available=False, error=reason,
                           device=device, origin=origin, target=target)


def _info_in_child(connection, name, target, origin, device, problem):
    # a plugin printing while it imports must not write over the listing
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    info = _info(name, target, origin, device, problem)
    connection.send({**info.__dict__, "version": None if info.version is None else str(info.version)})


def _sandboxed_infos(jobs, timeout):
    """:func:`_info` of each ``(name, target, origin, device, problem)`` in a spawned
    process of its own, a few at once (one per core: each variant of each framework is a
    process, and a dozen importing frameworks together on two cores would each take
    minutes): a backend whose import exits, crashes or hangs is an unavailable entry
    with the reason, within ``timeout`` seconds of its start, and the others are listed
    all the same. The entries come in the order of ``jobs``."""
    context = multiprocessing.get_context("spawn")
    limit = max(2, os.cpu_count() or 1)
    waiting = list(enumerate(jobs))
    running = {}  # receiving end -> (index, job, process, deadline)
    infos = {}

    def finish(receiving, fields, reason):
        index, (name, target, origin, device, _), process, _ = running.pop(receiving)
        if process.is_alive():
            process.kill()
        process.join()
        receiving.close()
        base, variant = split_variant(name)
        infos[index] = BackendInfo(**fields) if fields is not None else BackendInfo(
            name=base, variant=variant, available=False, error=reason, device=device,
            origin=origin, target=target)

    try:
        while waiting or running:
            while waiting and len(running) < limit:
                index, job = waiting.pop(0)
                receiving, sending = context.Pipe(duplex=False)
                process = context.Process(target=_info_in_child, args=(sending, *job), daemon=True)
                process.start()
                sending.close()
                running[receiving] = (index, job, process, time.monotonic() + timeout)
            soonest = min(deadline for *_, deadline in running.values())
            ready = multiprocessing.connection.wait(list(running),
                                                    max(soonest - time.monotonic(), 0))
            for receiving in ready:
                try:
                    finish(receiving, receiving.recv(), None)
                except (EOFError, OSError):
                    process = running[receiving][2]
                    process.join(5)
                    finish(receiving, None,
                           f"its import ended the process (exit code {process.exitcode})")
            now = time.monotonic()
            for receiving in [r for r, (*_, deadline) in running.items() if deadline <= now]:
                finish(receiving, None, f"constructing it took longer than {timeout:g} s")
    finally:
        for receiving in list(running):
            finish(receiving, None, "listing interrupted")
    return [infos[index] for index in range(len(jobs))]


def discover(device="cpu", names=None, timeout=DISCOVERY_TIMEOUT):
    """:class:`BackendInfo` of every built-in and plugin backend (or only of ``names``):
    one for each variant of a built-in (``names`` may name one, ``torch[compile]``, or
    all of a backend's by its plain name), one for a plugin (its default variant; its
    ``variants`` say what else it has, since its class is read only in its process).

    Each backend is constructed (importing its framework) to learn its version, devices,
    formats, functions and conventions, in a process of its own (see
    :func:`_sandboxed_infos`): one that fails to import, to construct, exits, crashes or
    hangs is listed with ``available=False`` and its error, and never stops the others;
    no plugin code runs in the caller's process."""
    wanted = (lambda name: True) if names is None else (lambda name: name in names)
    jobs = [(full, target, "builtin", device, None) for name, target in BUILTIN.items()
            for full in variant_names(name) if wanted(name) or wanted(full)]
    broken = []
    try:
        entry_points = _entry_points()
    except Exception as error:  # unreadable distribution metadata
        entry_points = []
        broken = [BackendInfo(name="<entry points>", available=False, origin="plugin",
                              error=f"{type(error).__name__}: {error}")]
    seen = set()
    for entry_point in entry_points:
        name, target = entry_point.name, entry_point.value
        if not wanted(name):
            continue
        problem = None
        if name in BUILTIN:
            problem = (f"the plugin {target} uses the name of the built-in backend {name!r}; "
                       "rename its entry point")
        elif name in seen:
            problem = f"another installed plugin already registers the name {name!r}"
        seen.add(name)
        jobs.append((name, target, "plugin", device, problem))
    return _sandboxed_infos(jobs, timeout) + broken
