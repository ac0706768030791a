"""The conformance run: every selected backend x function x format x check, one report.

The truth for a (function, format) is asked of the oracle once and shared by every
backend. Each backend runs in its own worker process (:mod:`.isolation`), so a crash or
a hang of a framework becomes an ``error`` record and the run goes on. Backends are
checked in a pool of processes (one per core by default), since measuring is Python and
one process would measure one backend at a time.

``refact conform`` exits 0 when nothing listed in ``--fail-on`` occurred, 1 when it
did, 2 on a usage or configuration error.
"""

import multiprocessing
import multiprocessing.connection
import os
import tempfile
import threading
import time

import numpy as np

from refact.backends import (
    BUILTIN, backend_class, plugin_targets, split_variant, variant_name, variant_names,
)
from refact.conformance.run import checks, engine, rows_engine
from refact.conformance.cases.dense import DENSE_POINTS, dense_bits
from refact.conformance.cases.rows import ROW_SIZES, dense_rows
from refact.conformance.cases.sets import cases_for, option_cases
from refact.conformance.truth import store
from refact.conformance.truth.arrays import cached_point_truths, load_point_truths
from refact.conformance.truth.rows import cached_row_truths
from refact.conformance.truth.catalog import NAMES, get_function
from refact.conformance.numbers.formats import FORMATS, bits_of_values, values_of_bits
from refact.conformance.run.isolation import (
    REAP_SECONDS, SPAWN, JobError, Worker, children_ignore_sigint, exit_with_parent,
)
from refact.conformance.run.progress import Progress
from refact.conformance.run.records import CHECKS, STATUSES, record, report_envelope

__all__ = ["run_conformance", "STATUSES", "DENSE_SIZES"]

#: Points of the dense set of an elementwise function by level (the 16-bit formats hold
#: 65,536 values: every one of them from the default level on).
DENSE_SIZES = {"quick": 1 << 12, "default": DENSE_POINTS, "full": 1 << 20}


def _backend_names(requested):
    """The backends to check, each variant by its own name: those requested (a built-in's
    plain name is its default variant), or every variant of every built-in backend and
    every plugin (by its plain name: its class is read only in its own processes)."""
    if requested:
        # a name given twice (or plainly and as its default variant) is checked once
        return list(dict.fromkeys(variant_name(*_named_variant(name)) for name in requested))
    return [v for name in BUILTIN for v in variant_names(name)] + \
        [n for n in plugin_targets() if n not in BUILTIN]


def _named_variant(name):
    """``(backend, variant)`` of a backend name: a built-in's plain name names its default
    variant; a plugin's is known once its worker has said (None until then)."""
    base, variant = split_variant(name)
    if variant is None and base in BUILTIN:
        variant = backend_class(base).resolve_variant(None)
    return base, variant


def _unavailable(name, device, error):
    """The ``backends`` entry of backend ``name`` that could not be checked."""
    base, variant = _named_variant(name)
    return {"name": base, "variant": variant, "version": None, "device": device,
            "available": False, "error": error}


def _conventions(name):
    try:
        return tuple(backend_class(name).conventions)
    except Exception:
        return ()


def _truth_table(functions, formats, level, seed, workers, directory):
    """``{(function, format): (cases, truths, dense, dense_gradient)}``, computed once for
    all backends: the sampled case points and their oracle truths, and for an elementwise
    function the file of its dense point set's truths (under ``directory``), which each
    backend's process maps, and where the derivative is a catalog function, the dense
    set's finite inputs with the file of the derivative's truths there."""
    from refact.conformance.truth.oracle import option_truth, truth_many

    table = {}
    for function in functions:
        for fmt in formats:
            cases = cases_for(function, fmt, level, seed)
            truths = truth_many(function, [p for _, p in cases], fmt, workers=workers)
            dense = dense_gradient = None
            if get_function(function).kind == "elementwise":
                # the sampled points (the seed's, the per-function hard cases) join the set
                sampled = bits_of_values(np.array([p[0] for _, p in cases], dtype=np.float64), fmt)
                bits = dense_bits(function, fmt, seed, DENSE_SIZES[level], extra=sampled)
                path, arrays = cached_point_truths(function, fmt, bits, values_of_bits(bits, fmt),
                                                   directory, seed=seed, workers=workers)
                dense = path or arrays  # the arrays themselves where the file could not be written
                if get_function(function).derivative_as:
                    inputs, name, at = engine.derivative_inputs(function, fmt, bits)
                    path, arrays = cached_point_truths(name, fmt, at, values_of_bits(at, fmt),
                                                       directory, seed=seed, workers=workers)
                    dense_gradient = (inputs, path or arrays)
            else:  # a row function or loss: its dense rows, judged by rows_engine
                path, rows, arrays = cached_row_truths(function, fmt, dense_rows, seed, directory, workers=workers,
                                                       **ROW_SIZES[level])
                dense = path or (rows, arrays)
            table[function, fmt] = (cases, truths, dense, dense_gradient)
            # the calls with options and their truths, shared by every backend as well
            table[function, fmt, "options"] = [(case, option_truth(function, case.points, case.options, fmt))
                                               for case in option_cases(function, fmt, seed)]
    return table


# -- one backend, in a process of its own -------------------------------------------------
# Judging, properties and derivative truths are Python: in threads of one process they
# would take turns on one core. Each backend is checked in a process of the pool below
# (its framework runs in that process's own worker, as always), with the truth table and
# a progress queue handed over once per process.

_TABLE = None
_PROGRESS = None


def _start_process(table, progress):
    global _TABLE, _PROGRESS
    exit_with_parent()
    _TABLE, _PROGRESS = table, progress


def _step(label):
    if _PROGRESS is not None:
        _PROGRESS.put(label)


def _run_backend(name, device, functions, formats, wanted_checks, timeout, level="default", seed=0):
    """Every record of one backend, its entry of the report's ``backends`` list and its
    plot series, against the truth table of this process."""
    records, series = [], []
    entry = _unavailable(name, device, None)
    worker = Worker(name, device=device, timeout=timeout)
    try:
        try:
            info, _ = worker.run({"op": "info"})
        except JobError as error:
            entry["error"] = str(error)
            for _ in range(len(functions) * len(formats)):
                _step(f"{name}: unavailable")
            return entry, records, series
        # the variant the worker constructed: a plugin's plain name resolves only there
        variant = info.get("variant")
        entry.update(version=info["version"], available=True, devices=info["devices"],
                     formats=info["formats"], conventions=info["conventions"], variant=variant)
        if variant is not None:
            entry["variant_description"] = info["variants"][variant]
        if worker.startup_output:
            entry["output"] = worker.startup_output[:OUTPUT_IN_MESSAGE]
        backend = entry["name"]
        conventions = _conventions(backend)
        evaluator = checks.Evaluator(worker)
        for function in functions:
            own = [c for c in conventions if c.function == function]
            for fmt in formats:
                _step(f"{name} {function} {fmt}")
                found = _checks_of(evaluator, backend, info, function, fmt, wanted_checks,
                                   _TABLE, own, series, level, seed)
                records.extend(_with_output(found, worker.take_output()))
    finally:
        worker.close()
    for made in records + series:  # each variant is a column of its own
        made["variant"] = variant
    return entry, records, series


#: Characters of a backend's own printing kept in the message of each record.
OUTPUT_IN_MESSAGE = 500


def _with_output(records, printed):
    """The records of one function and format, each message ending with what the backend
    printed meanwhile (bounded): the user's terminal never shows a plugin's output."""
    if printed:
        more = f" [... {len(printed) - OUTPUT_IN_MESSAGE} more characters]" \
            if len(printed) > OUTPUT_IN_MESSAGE else ""
        note = f"the backend printed: {printed[:OUTPUT_IN_MESSAGE]}{more}"
        for r in records:
            r["message"] = f"{r['message']}; {note}" if r["message"] else note
    return records


def _slowest_first(name):
    """Sort key: the backends that take longest to check run first (the run ends when its
    last backend does). Only built-in classes are read here: they import no framework at
    module import, while a plugin's module is imported only in its own worker."""
    base, variant = split_variant(name)
    return -backend_class(base).expected_seconds(variant) if base in BUILTIN else 0.0




def _checks_of(evaluator, name, info, function, fmt, wanted, table, conventions, series,
               level="default", seed=0):
    def skip(check, why):
        return record(name, function, fmt, check, status="skip", message=why)

    if function not in info["functions"]:
        return [skip(c, f"{name} does not provide {function}") for c in wanted]
    if fmt not in info["formats_of"].get(function, ()):
        return [skip(c, f"{name} does not provide {function} in {fmt}") for c in wanted]
    out = []
    clock = [time.perf_counter()]

    def add(made):
        # each record's own seconds, for JUnit's time: since the previous one was made
        now = time.perf_counter()
        made["seconds"] = now - clock[0]
        clock[0] = now
        out.append(made)

    cases, truths, dense, dense_gradient = table[function, fmt]
    result_format = None
    if "accuracy" in wanted or "dtype" in wanted:
        xs = []
        try:
            if dense is not None and get_function(function).kind != "elementwise":
                accuracy, result_format = rows_engine.rows_accuracy(
                    name, function, fmt, dense, conventions,
                    lambda task, args: evaluator.worker.run({"op": "task", "task": task, "args": args,
                                                             "function": function, "format": fmt})[0])
            elif dense is not None:
                accuracy, result_format = _dense_accuracy(evaluator.worker, name, function, fmt,
                                                          dense, conventions, xs)
            else:
                accuracy, result_format = checks.accuracy(evaluator, name, function, fmt, cases,
                                                          truths, conventions, plot=xs)
            if "accuracy" in wanted:
                option_truths = table.get((function, fmt, "options"))
                if option_truths:
                    checks.with_options(accuracy, checks.option_results(
                        evaluator, name, function, fmt, option_truths, conventions))
                add(accuracy)
                if xs:
                    series.append({"backend": name, "function": function, "format": fmt,
                                   "x": [x for x, _ in xs], "ulp": [u for _, u in xs],
                                   "budget_ulp": accuracy["budget_ulp"]})
        except JobError as error:
            add(record(name, function, fmt, "accuracy", status="error",
                                     message=str(error)))
        except Exception as error:  # a bug of refact or of a plugin's convention: loud, not fatal
            add(record(name, function, fmt, "accuracy", status="error",
                                     message=f"internal error of the check: {type(error).__name__}: {error}"))
    for check in wanted:
        if check == "accuracy":
            continue
        try:
            if check == "special_values":
                add(checks.special_values(evaluator, name, function, fmt, conventions))
            elif check == "dtype":
                if result_format is None:
                    add(record(name, function, fmt, "dtype", status="error",
                                             message="no result to inspect: the call failed"))
                else:
                    add(checks.dtype(name, function, fmt, result_format, conventions))
            elif check == "gradient":
                if function not in info["gradients"]:
                    add(skip("gradient", f"{name} has no autograd for {function}"))
                elif dense_gradient is not None:
                    add(_dense_gradient(evaluator.worker, name, function, fmt,
                                               *dense_gradient, conventions))
                else:
                    add(checks.gradient(evaluator, name, function, fmt, cases))
            elif check == "properties":
                from refact.conformance.run.properties import properties_record

                add(properties_record(evaluator, name, function, fmt, cases, conventions))
        except JobError as error:
            add(record(name, function, fmt, check, status="error", message=str(error)))
        except Exception as error:  # a bug of refact or of a plugin's convention: loud, not fatal
            add(record(name, function, fmt, check, status="error",
                                     message=f"internal error of the check: {type(error).__name__}: {error}"))
    return out


def _in_worker(worker, task, function, fmt):
    """``evaluate(bits) -> (y64, dtype)``: an engine task (:func:`engine.outputs_on`,
    :func:`engine.gradients_on`) run in the backend's worker."""
    def evaluate(bits):
        (y64, dtype), _ = worker.run({"op": "task", "task": task, "function": function,
                                      "args": (function, fmt, bits), "format": fmt})
        return y64, dtype
    return evaluate


def _dense_accuracy(worker, name, function, fmt, truths, conventions, plot):
    """The accuracy record of an elementwise function on its dense set (``truths``: the
    file of :func:`_truth_table`, or the arrays themselves), then the worst-case search,
    both judged by the engine in this process; the backend runs in ``worker``."""
    if isinstance(truths, str):
        truths = load_point_truths(truths, verify=False)

    outputs = _in_worker(worker, engine.outputs_on, function, fmt)

    def evaluate(bits):
        # Searches ask arrays of every length; a compiling framework (jax) would compile
        # for each, so they are padded to a power of two and cut back.
        n = len(bits)
        size = n if n == len(truths) else 1 << max(10, (n - 1).bit_length())
        y64, dtype = outputs(np.concatenate([bits, np.full(size - n, bits[0], dtype=np.uint64)]))
        return y64[:n], dtype

    y64, dtype, refused = engine.outputs_or_refusals(
        evaluate, np.asarray(truths.bits), lambda error: isinstance(error, JobError) and error.raised)
    judged = engine.judge(function, fmt, truths, y64, conventions, refused=refused)
    judged.dtype = dtype
    summary = engine.summarise(judged)
    # a set no fast truth decided (ndtr in float64) costs mpmath per point: neighbours only
    found, search = engine.search_worst(function, fmt, judged, evaluate, conventions,
                                        random_points=engine.SEARCH_RANDOM if truths.fast_decided else 0)
    if found is not None:
        found["index"] = 1
        summary = engine.merge_summaries(summary, found)
    xs, ulps = engine.plot_series(judged)
    plot.extend(zip(xs, ulps))
    section = {"scope": f"dense set {len(truths):,} points, worst-case search {search['points']:,} more",
               "dense_points": len(truths), "search": search}
    return engine.accuracy_record(name, function, fmt, summary, section), dtype


def _dense_gradient(worker, name, function, fmt, inputs, truths, conventions):
    """The gradient record of an elementwise function whose derivative is a catalog
    function: autograd at every finite point of the dense set (the saturation band before
    autograd's cut-off included), judged by the engine against that function's truths."""
    if isinstance(truths, str):
        truths = load_point_truths(truths, verify=False)

    y64, dtype, refused = engine.outputs_or_refusals(
        _in_worker(worker, engine.gradients_on, function, fmt), np.asarray(inputs), lambda error: isinstance(error, JobError) and error.raised)
    judged = engine.judge_derivative(function, fmt, inputs, truths, y64, conventions, refused=refused)
    judged.dtype = dtype
    section = {"scope": f"autograd on the dense set, {len(inputs):,} points", "dense_points": len(inputs)}
    return engine.accuracy_record(name, function, fmt, engine.summarise(judged), section,
                                  check="gradient", truth_of=truths.function)


def _curves(functions, samples=121):
    """The true function and derivative of each scalar elementwise function, for plots."""
    from refact.conformance.truth.catalog import get_function as spec_of
    from refact.conformance.truth.oracle import evaluate, mp_context

    curves = {}
    for function in functions:
        spec = spec_of(function)
        if spec.kind != "elementwise":
            continue
        lo, hi = (0.001, 0.999) if spec.parameters[0].role == "probability" else (-8.0, 8.0)
        xs = [lo + (hi - lo) * i / (samples - 1) for i in range(samples)]
        ys, dys = [], []
        for x in xs:
            ys.append(float(evaluate(function, (x,), 80)))
            ctx = mp_context()
            ctx.prec = 80
            try:
                dys.append(float(spec.derivative(ctx, x)))
            except (ValueError, ZeroDivisionError):
                dys.append(None)
        curves[function] = {"x": xs, "y": ys, "dy": dys}
    return curves


def run_conformance(backends=None, functions=None, formats=None, check_names=None,
                    level="default", device="cpu", seed=0, timeout=120.0, jobs=None,
                    progress=False):
    """Run the checks and return the ``refact.report/1`` report as a dict."""
    functions = list(functions or NAMES)
    formats = list(formats or FORMATS)
    wanted = list(check_names or CHECKS)
    names = _backend_names(backends)
    workers = jobs or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="refact-truths-") as scratch:
        # the dense truths live in the cache, or for this run only when caching is off
        directory = store.cache_directory() or scratch
        table = _truth_table(functions, formats, level, seed, workers, directory)
        return _run_with_table(table, names, functions, formats, wanted, level, device, seed,
                               timeout, workers, progress)


def _run_with_table(table, names, functions, formats, wanted, level, device, seed, timeout, workers,
                    progress):
    bar = Progress("refact conform", len(names) * len(functions) * len(formats),
                   unit="checks", enabled=progress)
    steps = SPAWN.Queue()
    drawing = threading.Thread(target=_draw, args=(steps, bar), daemon=True)
    drawing.start()
    try:
        outcomes = _run_backends(names, table, steps, max(1, min(workers, len(names))), device,
                                 lambda name: (name, device, functions, formats, wanted, timeout,
                                               level, seed))
    finally:
        steps.put(None)
        drawing.join()
    bar.close()
    entries = [entry for entry, _, _ in outcomes]
    results = [r for _, records, _ in outcomes for r in records]
    report = report_envelope(results, entries, seed, cases=level, device=device)
    report.update(curves=_curves(functions), series=[s for _, _, series in outcomes for s in series])
    return report


def _check_in_process(connection, table, steps, arguments):
    """A backend's checking process: its outcome goes back through ``connection``."""
    _start_process(table, steps)
    try:
        outcome = _run_backend(*arguments)
    except Exception as error:  # a bug of refact or a plugin's convention: this backend's error
        outcome = f"{type(error).__name__}: {error}"
    connection.send(outcome)
    connection.close()


def _run_backends(names, table, steps, workers, device, arguments_of):
    """Each backend checked in a spawned process of its own, at most ``workers`` at once,
    the slowest to start first. A plugin's code (its conventions' predicates run where
    its records are judged) so never shares a process with another backend's checks and
    cannot change their verdicts; a checking process that dies, is killed or sends no
    outcome costs its backend an error entry, and the others go on. Returns the
    outcomes in the order of ``names``; on the way out (Ctrl-C included) no process is
    left running."""
    waiting = sorted(names, key=_slowest_first)
    running = {}  # connection -> (name, process)
    outcomes = {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                name = waiting.pop(0)
                receiving, sending = SPAWN.Pipe(duplex=False)
                process = SPAWN.Process(target=_check_in_process,
                                           args=(sending, table, steps, arguments_of(name)))
                with children_ignore_sigint():
                    process.start()
                sending.close()
                running[receiving] = (name, process)
            for connection in multiprocessing.connection.wait(list(running)):
                name, process = running.pop(connection)
                try:
                    outcome = connection.recv()
                except (EOFError, OSError):
                    process.join(REAP_SECONDS)
                    outcome = f"the process checking it ended (exit code {process.exitcode})"
                connection.close()
                process.join()
                if isinstance(outcome, str):
                    outcome = (_unavailable(name, device, outcome), [], [])
                outcomes[name] = outcome
    finally:
        for connection, (_, process) in running.items():
            process.kill()
            process.join()
            connection.close()
    return [outcomes[name] for name in names]


def _draw(steps, bar):
    for label in iter(steps.get, None):
        bar.update(1, label)


# -- the `refact conform` command ---------------------------------------------------------
