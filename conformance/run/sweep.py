"""``refact sweep``: one elementwise function over every input of a range of a format.

Sampling finds typical errors; only an exhaustive sweep proves the maximum. A sweep
splits a range of bit patterns of a format (all 2**32 for ``float32 --exhaustive``)
into *shards* of contiguous patterns and runs one function, :func:`run_shard`, on each:

1. the shard's inputs are its bit patterns viewed as the format, passed to the backend
   as one native array, and the results read back as one float64 numpy array;
2. a fast candidate truth is computed for the whole shard in float64 with a stated
   error bound (:mod:`refact.conformance.truth.fast`); it decides the correctly rounded
   truth of almost every point;
3. the mpmath oracle decides the rest: every point the bound leaves undecided, every
   special input (±0, ±inf, a NaN), every point whose ulp the bound leaves ambiguous
   and whose result is not the rounded truth, and a seeded random sample of the shard.
   Where the oracle and the fast path both decided, they must agree; a disagreement is
   a bug of refact and makes the record an ``error`` naming the inputs (the oracle's
   value is used, the disagreement is never silently patched);
4. every point gets a failure class or a ULP error, by the definitions of
   :mod:`refact.conformance.numbers.ruler` (array forms here, tested against the scalar ones),
   and the shard is summarised: counts, ULP histogram, largest errors, class examples.

Summaries merge associatively (:func:`merge_summaries`) into one ``accuracy`` record of
the ``refact.report/1`` contract, with the sweep's own figures under ``"sweep"``.

Where shards run is a choice of executor, never of code path: in this process
(``workers=1``), a local process pool (``spawn``; each worker builds the backend once),
or a Dask cluster through ``distributed.Client`` (``--dask ADDRESS`` or ``--dask local``).
All of them call the same :func:`run_shard` with the same :class:`ShardTask`.

A finished shard's summary is written to the checkpoint directory at once (one small
JSON file per shard, written atomically), under a key naming everything that shapes the
result: function, backend and its version, device, format, range, shard size, seed,
sample size, refact and oracle versions. A killed sweep started again with the same
arguments loads the finished shards and runs only the others: nothing repeats, nothing
is lost, and the merged record is the same as an uninterrupted run's (shards merge in
shard order, so even float sums agree to the bit).

Importable entry point for the runner: :func:`sweep_record`.
"""

import concurrent.futures
import hashlib
import json
import math
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refact.conformance.numbers import ruler
from refact.conformance.numbers.ruler import classify_array, same_values, ulp_error_array
from refact.conformance.truth import fast as fastpath
from refact.conformance.truth.store import atomic_write_text
from refact.conformance.run.isolation import describe, exit_with_parent
from refact.conformance.run.progress import Progress
from refact.conformance.run.records import convention_field, record, report_envelope
from refact.conformance.truth.catalog import FAST_TRUTHS, fast_truth_of, get_function
from refact.conformance.numbers.formats import get_format, same_value

__all__ = [
    "SWEEP_FORMATS", "DEFAULT_SHARD_SIZE", "DEFAULT_SAMPLE", "HISTOGRAM_EDGES", "CLASS_NAMES",
    "ShardTask", "ShardPoints", "evaluate_shard", "summarise_shard", "run_shard",
    "merge_summaries", "sweep_record", "run_sweep", "exhaustive_records", "sweep_report",
    "plan_shards", "classify_array", "ulp_error_array", "bits_to_float64", "describe_backend",
    "CheckpointStore", "InProcessExecutor", "FuturesExecutor", "ProcessPoolShardExecutor",
    "DaskExecutor", "dask_executor",
]

SWEEP_FORMATS = ("float32", "float16", "bfloat16")
# float32: 2**20 points a shard is ~0.1-0.5 s of work, small enough that a killed sweep
# loses little and large enough that the per-shard oracle sample and pickling stay cheap.
# 16-bit: four shards, so two workers share an exhaustive sweep.
DEFAULT_SHARD_SIZE = {"float32": 1 << 20, "float16": 1 << 14, "bfloat16": 1 << 14}
DEFAULT_SAMPLE = 32
WORST_KEPT = 10
EXAMPLES_KEPT = 3
DISAGREEMENTS_KEPT = 20
# Upper edges of the ULP histogram: [0, 0.5] (correctly rounded), then four bins per
# octave up to 2**43; one more bin above that. p99_ulp is read off these bins (the upper
# edge of the bin holding the 99th percentile), so it is an upper bound to 2**(1/4).
HISTOGRAM_EDGES = tuple(0.5 * 2.0 ** (k / 4) for k in range(4 * 44 + 1))
CLASS_NAMES = ruler.ALL_CLASSES
_UNDECIDED_CODE = ruler.CLASS_CODES[ruler.UNDECIDED]
_ORACLE_BATCH = 4096
CHECKPOINT_KIND = "refact.sweep/1"


# --- inputs ---------------------------------------------------------------------------


def _check_sweep_format(fmt):
    fmt = get_format(fmt)
    if fmt.name not in SWEEP_FORMATS:
        raise ValueError(f"cannot sweep {fmt.name}: the float64 candidate truth decides "
                         f"rounding only to narrower formats ({', '.join(SWEEP_FORMATS)})")
    return fmt


def bits_to_float64(bits, fmt):
    """The values of the bit patterns ``bits`` (an integer array) in ``fmt``, as float64
    (exact: every value of a narrow format is a float64; NaN patterns give NaN)."""
    fmt = _check_sweep_format(fmt)
    bits = np.asarray(bits)
    with np.errstate(invalid="ignore"):
        if fmt.name == "float32":
            return bits.astype(np.uint32).view(np.float32).astype(np.float64)
        if fmt.name == "float16":
            return bits.astype(np.uint16).view(np.float16).astype(np.float64)
        # bfloat16 is the upper half of a float32: no ml_dtypes needed to read it.
        return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)


def narrow_array(bits, fmt):
    """The bit patterns as a numpy array of the format's own dtype (ml_dtypes' bfloat16)."""
    fmt = _check_sweep_format(fmt)
    if fmt.name == "float32":
        return np.asarray(bits, dtype=np.uint32).view(np.float32)
    if fmt.name == "float16":
        return np.asarray(bits, dtype=np.uint16).view(np.float16)
    import ml_dtypes

    return np.asarray(bits, dtype=np.uint16).view(ml_dtypes.bfloat16)


def _bits_text(bits, fmt):
    return f"0x{int(bits):0{fmt.width // 4}x}"


# --- the backend, in whichever process runs the shard --------------------------------

_BACKENDS = {}
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def _limit_threads():
    """One compute thread per worker process: the pool or cluster already runs one shard
    per core, and a framework that also spreads each call over all cores would make the
    workers fight. Only affects a framework not yet imported in this process (the
    variables are read at import), so a caller's own settings are left alone."""
    for variable in _THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")


def _backend_in_this_process(name, device, limit_threads=False):
    """The backend, constructed once per process (pool worker, Dask worker, or here)."""
    key = (name, device)
    if key not in _BACKENDS:
        if limit_threads:
            _limit_threads()
        from refact.backends import get_backend

        _BACKENDS[key] = get_backend(name, device=device)
    return _BACKENDS[key]


def _initialize_pool_worker(name, device):
    exit_with_parent()  # a killed sweep leaves no pool process running
    try:
        _backend_in_this_process(name, device, limit_threads=True)
    except Exception:  # reported by the first task that needs it, with the reason
        pass


def describe_backend(name, device="cpu", limit_threads=False):
    """:func:`refact.conformance.run.isolation.describe` of the backend as seen by the
    process that runs this (a pool or Dask worker: the parent need not have the framework
    installed), or, where it cannot be constructed, its name, device and ``error``."""
    try:
        backend = _backend_in_this_process(name, device, limit_threads)
    except Exception as error:
        return {"name": name, "version": None, "device": device, "available": False,
                "error": f"{type(error).__name__}: {error}", "formats": [], "functions": [],
                "formats_of": {}}
    return {**describe(backend), "error": None}


def _native_input(backend, bits, fmt):
    """The shard's inputs as the backend's native array, without a Python list."""
    return backend.from_numpy(narrow_array(bits, fmt))


def _float64_output(backend, native):
    """``(values as a float64 array, dtype name)`` of a backend result, without a list."""
    array = np.asarray(backend.to_numpy(native))
    return array.astype(np.float64), array.dtype.name


# --- one shard ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardTask:
    """Everything a shard needs, small and picklable: bit patterns ``[start, stop)``."""

    function: str
    backend: str
    device: str
    format: str
    index: int
    start: int
    stop: int
    seed: int
    sample: int
    limit_threads: bool = False
    oracle_cache: bool = True


def _oracle_verdicts(task, fmt, inputs, outputs):
    """Oracle answers for the points ``inputs`` (floats) with backend results ``outputs``:
    lists of (rounded or None, exact, class or None, ulp or None)."""
    from refact.conformance.truth.oracle import truth_many

    verdicts = []
    for begin in range(0, len(inputs), _ORACLE_BATCH):
        chunk = inputs[begin:begin + _ORACLE_BATCH]
        truths = truth_many(task.function, [(x,) for x in chunk], fmt.name, cache=task.oracle_cache)
        for truth, y in zip(truths, outputs[begin:begin + len(chunk)]):
            if not truth.decided:
                verdicts.append((None, None, ruler.UNDECIDED, None))
                continue
            cls = ruler.classify(y, truth.exact, fmt)
            ulp = ruler.ulp_error(y, truth.exact, fmt) if cls is None else None
            verdicts.append((truth.rounded, truth.exact, cls, ulp))
    return verdicts


def _is_exact_zero(value):
    return value is not None and value == value and not value


_BOUND_CONTEXT = None


def _bound_context():
    """A private mpmath context at a fixed 160 bits, for checking the bound: enough for a
    relative difference of 2**-48 to show, and never touched by anyone else (shards may
    run in threads of one Dask worker)."""
    global _BOUND_CONTEXT
    if _BOUND_CONTEXT is None:
        from mpmath.ctx_mp import MPContext

        context = MPContext()
        context.prec = 160
        _BOUND_CONTEXT = context
    return _BOUND_CONTEXT


def _outside_bound(candidate, exact, fmt):
    """True if the oracle's exact value shows the candidate outside the stated bound.
    The stored exact value keeps only about p + 32 bits, so its own rounding is allowed."""
    if not (math.isfinite(candidate) and candidate != 0):
        return False
    ctx = _bound_context()
    if hasattr(exact, "numerator"):  # an exact rational from the catalog
        t = ctx.mpf(exact.numerator) / exact.denominator
    else:
        t = ctx.convert(exact)
    if not ctx.isfinite(t):
        return True
    c = ctx.convert(candidate)
    slack = (fastpath.RELATIVE_BOUND * abs(c) + fastpath.ABSOLUTE_BOUND
             + abs(t) * ctx.ldexp(1, -(fmt.precision + 30)))
    return abs(t - c) > slack


@dataclass
class ShardPoints:
    """Every point of a shard, judged: what :func:`summarise_shard` condenses.

    ``rounded``: the correctly rounded truth (NaN where undecided); ``codes``: class
    codes (0 = none; see :data:`CLASS_NAMES`); ``ulp``: ULP error where ``codes == 0``;
    ``exact_zero``: the truth is exactly 0 (either zero is right), known where it matters;
    ``oracle``: the points mpmath decided; ``covered``: index into ``conventions`` of the
    backend's documented convention covering a point outside the budget (-1: none);
    ``errors``: what the backend raised.
    """

    task: ShardTask
    bits: np.ndarray
    x64: np.ndarray
    y64: np.ndarray = None
    rounded: np.ndarray = None
    codes: np.ndarray = None
    ulp: np.ndarray = None
    exact_zero: np.ndarray = None
    oracle: np.ndarray = None
    candidate: np.ndarray = None
    covered: np.ndarray = None
    conventions: tuple = ()
    fast_decided: int = 0
    disagreements: list = None
    errors: list = None
    dtype: str = None


def evaluate_shard(task):
    """Call the backend on every input of the shard and judge each point (steps 1-4 of
    the module docstring). A backend that raises leaves ``errors`` set and no results."""
    fmt = get_format(task.format)
    bits = np.arange(task.start, task.stop, dtype=np.uint64)
    points = ShardPoints(task, bits, bits_to_float64(bits, fmt), disagreements=[], errors=[])
    try:
        backend = _backend_in_this_process(task.backend, task.device, task.limit_threads)
        result = backend.call(task.function, _native_input(backend, bits, fmt))
        points.y64, points.dtype = _float64_output(backend, result)
        if points.y64.shape != points.x64.shape:
            raise ValueError(f"result has shape {points.y64.shape}, the input {points.x64.shape}")
    except Exception as error:
        points.y64 = None
        points.errors.append(f"{task.function} on {_bits_text(task.start, fmt)}..."
                             f"{_bits_text(task.stop - 1, fmt)}: {type(error).__name__}: {error}")
        return points
    exacts = _judge(points, fmt)
    conventions_for = getattr(backend, "conventions_for", None)
    points.conventions = tuple(conventions_for(task.function)) if conventions_for else ()
    _apply_conventions(points, fmt, exacts)
    return points


def _failing(points, budget):
    """Points outside the budget: a failure class, or a ULP error above ``budget``."""
    with np.errstate(invalid="ignore"):
        over = points.ulp > budget if budget is not None else np.zeros(len(points.ulp), dtype=bool)
    return ((points.codes != 0) & (points.codes != _UNDECIDED_CODE)) | over


def _apply_conventions(points, fmt, exacts):
    """Mark the failing points a documented convention of the backend covers, as
    ``records.Judgement`` does for sampled points: the first convention whose predicate
    accepts the point (its input, its truth: mpmath's where asked, else the candidate).

    Predicates are Python, one call per failing point, so a function failing on most of a
    shard pays a few µs a point (one that passes pays nothing). A convention may offer
    ``applies_array(x64, truth64, format_name) -> bool array`` to be asked once per shard.
    """
    points.covered = np.full(len(points.x64), -1, dtype=np.int8)
    if not points.conventions:
        return
    budget = get_function(points.task.function).budgets.get(fmt.name)
    open_points = np.flatnonzero(_failing(points, budget))
    for k, convention in enumerate(points.conventions):
        if not len(open_points):
            break
        on_arrays = getattr(convention, "applies_array", None)
        if on_arrays is not None:
            truths = points.candidate.copy()
            for i, exact in exacts.items():
                if exact is not None:
                    truths[i] = float(exact)
            accepted = np.asarray(on_arrays(points.x64[open_points], truths[open_points], fmt.name),
                                  dtype=bool)
        else:
            inputs = points.x64[open_points].tolist()
            candidates = points.candidate[open_points].tolist()
            accepted = np.array([convention.applies((x,), exacts.get(i, candidate), fmt.name)
                                 for i, x, candidate in zip(open_points.tolist(), inputs, candidates)],
                                dtype=bool)
        points.covered[open_points[accepted]] = k
        open_points = open_points[~accepted]


def run_shard(task):
    """Judge the backend on every input of one shard; return its summary (plain JSON data).

    This is the one function every executor runs.
    """
    started = time.perf_counter()
    summary = summarise_shard(evaluate_shard(task))
    summary["seconds"] = time.perf_counter() - started
    return summary


def _oracle_mask(task, x64, y64, decision):
    """Which points the oracle must decide (see the module docstring, step 3)."""
    n = len(x64)
    ask = ~decision.decided
    open_binade = np.flatnonzero(~decision.binade_known)
    ask[open_binade] |= ~same_values(y64[open_binade], decision.rounded[open_binade])
    ask |= (x64 == 0) | np.isinf(x64)
    nan_inputs = np.flatnonzero(np.isnan(x64))
    if len(nan_inputs):
        ask[nan_inputs[0]] = True  # NaN in, NaN out: one per shard confirms the rule
    if task.sample > 0:
        rng = np.random.default_rng([task.seed, task.index])
        ask[rng.choice(n, size=min(task.sample, n), replace=False)] = True
    return ask


def _judge(points, fmt):
    task, bits, x64, y64 = points.task, points.bits, points.x64, points.y64
    decision = fastpath.decide(fast_truth_of(task.function), x64, fmt)
    rounded = decision.rounded.copy()
    truth = decision.candidate
    exact_zero = decision.exact_zero.copy()
    ask = _oracle_mask(task, x64, y64, decision)
    codes = classify_array(y64, rounded, fmt, exact_zero)
    ulp = ulp_error_array(y64, truth, rounded, fmt, decision.ulp)

    asked = np.flatnonzero(ask)
    verdicts = _oracle_verdicts(task, fmt, x64[asked].tolist(), y64[asked].tolist())
    exacts = {}
    for i, (oracle_rounded, exact, cls, point_ulp) in zip(asked.tolist(), verdicts):
        exacts[i] = exact
        if cls == ruler.UNDECIDED:
            codes[i] = _UNDECIDED_CODE
            rounded[i] = ulp[i] = np.nan
            continue
        fast_rounded = float(rounded[i])
        if decision.decided[i]:
            agree = same_value(fast_rounded, oracle_rounded) or (
                fast_rounded == 0 and oracle_rounded == 0 and _is_exact_zero(exact))
            if not agree or _outside_bound(float(truth[i]), exact, fmt) or (
                    bool(exact_zero[i]) != _is_exact_zero(exact)):
                points.disagreements.append({
                    "input_bits": _bits_text(bits[i], fmt), "input": float(x64[i]),
                    "candidate": float(truth[i]), "fast_rounded": fast_rounded,
                    "oracle_rounded": oracle_rounded, "oracle_exact": str(exact),
                })
        # mpmath decides: its value is the one measured against, agreement or not.
        rounded[i] = oracle_rounded
        exact_zero[i] = _is_exact_zero(exact)
        codes[i] = 0 if cls is None else ruler.CLASS_CODES[cls]
        ulp[i] = point_ulp if point_ulp is not None else np.nan
    points.rounded, points.codes, points.ulp, points.exact_zero = rounded, codes, ulp, exact_zero
    points.candidate = truth
    points.oracle = ask
    points.fast_decided = int(np.count_nonzero(decision.decided))
    return exacts


def _empty_summary(task):
    return {
        "index": task.index, "start": task.start, "stop": task.stop,
        "points": task.stop - task.start, "seconds": 0.0, "errors": [], "disagreements": [],
        "correctly_rounded": 0, "within_1ulp": 0, "measured": 0, "ulp_sum": 0.0, "max_ulp": None,
        "failing": 0, "histogram": [0] * (len(HISTOGRAM_EDGES) + 1),
        "classes": {name: 0 for name in CLASS_NAMES}, "class_examples": {}, "conventions": {},
        "worst": [], "oracle_points": 0, "fast_decided": 0, "output_dtypes": [],
    }


def summarise_shard(points):
    """The mergeable summary (plain JSON data) of a judged shard.

    Counted as in ``records.Judgement``: a point a convention covers leaves the class
    counts and the ULP statistics and is counted with its convention instead (its
    distance kept: inf for a class point); ``failing`` counts the points outside the
    budget that nothing covers; ``correctly_rounded`` and ``within_1ulp`` are the
    ordinary points within 0.5 and 1 ULP, as fractions of all points once merged.
    """
    summary = _empty_summary(points.task)
    summary["errors"] = list(points.errors)
    if points.y64 is None:
        return summary
    fmt = get_format(points.task.format)
    budget = get_function(points.task.function).budgets.get(fmt.name)
    bits, x64, y64, rounded, ulp = points.bits, points.x64, points.y64, points.rounded, points.ulp
    covered = points.covered >= 0
    codes = np.where(covered, np.int8(-1), points.codes)  # -1: shown with its convention
    summary["output_dtypes"] = [points.dtype]
    summary["oracle_points"] = int(np.count_nonzero(points.oracle))
    summary["fast_decided"] = points.fast_decided
    summary["disagreements"] = points.disagreements[:DISAGREEMENTS_KEPT]
    if len(points.disagreements) > DISAGREEMENTS_KEPT:
        summary["errors"].append(f"{len(points.disagreements)} fast-path disagreements in this shard")
    summary["failing"] = int(np.count_nonzero(_failing(points, budget) & ~covered))
    for k, convention in enumerate(points.conventions):
        mine = points.covered == k
        if mine.any():
            distance = np.where(points.codes[mine] == 0, ulp[mine], np.inf)
            summary["conventions"][convention.name] = {
                "summary": convention.summary, "reference": convention.reference,
                "points": int(np.count_nonzero(mine)), "max_ulp": float(np.max(distance))}
    for name, code in ruler.CLASS_CODES.items():
        where = codes == code
        summary["classes"][name] = int(np.count_nonzero(where))
        if summary["classes"][name]:
            summary["class_examples"][name] = [int(b) for b in bits[where][:EXAMPLES_KEPT]]
    measured = codes == 0
    errors_measured = ulp[measured]
    summary["measured"] = int(errors_measured.size)
    summary["correctly_rounded"] = int(np.count_nonzero(errors_measured <= 0.5))
    summary["within_1ulp"] = int(np.count_nonzero(errors_measured <= 1.0))
    if errors_measured.size:
        summary["ulp_sum"] = float(np.sum(errors_measured))
        summary["max_ulp"] = float(np.max(errors_measured))
        # Most points fall in the first bin (<= 0.5); only the others need searching.
        above = errors_measured[errors_measured > HISTOGRAM_EDGES[0]]
        bins = np.searchsorted(np.asarray(HISTOGRAM_EDGES), above, side="left")
        histogram = np.bincount(bins, minlength=len(HISTOGRAM_EDGES) + 1)
        histogram[0] = errors_measured.size - above.size
        summary["histogram"] = histogram.tolist()
        summary["worst"] = _worst_points(bits[measured], x64[measured], y64[measured],
                                         rounded[measured], errors_measured)
    return summary


def _worst_points(bits, x64, y64, rounded, ulp):
    """The WORST_KEPT largest errors, ties broken by the smaller bit pattern (so the
    choice does not depend on how the range was cut into shards). ``bits`` ascend."""
    k = min(WORST_KEPT, ulp.size)
    threshold = np.partition(ulp, ulp.size - k)[ulp.size - k]
    above = np.flatnonzero(ulp > threshold)
    order = above[np.lexsort((bits[above], -ulp[above]))]
    # Ties at the threshold (a shard of exact results has a million) come in bit order.
    ties = np.flatnonzero(ulp == threshold)[:k - len(order)]
    order = np.concatenate([order, ties])
    return [[float(ulp[i]), int(bits[i]), float(x64[i]), float(y64[i]), float(rounded[i])] for i in order]


# --- merging -----------------------------------------------------------------------------


def merge_summaries(a, b):
    """The summary of two disjoint sets of shards. Associative and commutative up to the
    order of float additions in ``ulp_sum`` and ``seconds`` (merge in shard order for
    results that agree to the bit)."""
    max_ulp = [m for m in (a["max_ulp"], b["max_ulp"]) if m is not None]
    examples = {}
    for name in set(a["class_examples"]) | set(b["class_examples"]):
        both = a["class_examples"].get(name, []) + b["class_examples"].get(name, [])
        examples[name] = sorted(both)[:EXAMPLES_KEPT]
    return {
        "index": min(a["index"], b["index"]), "start": min(a["start"], b["start"]),
        "stop": max(a["stop"], b["stop"]),
        "points": a["points"] + b["points"], "seconds": a["seconds"] + b["seconds"],
        "errors": a["errors"] + b["errors"],
        "disagreements": a["disagreements"] + b["disagreements"],
        "correctly_rounded": a["correctly_rounded"] + b["correctly_rounded"],
        "within_1ulp": a["within_1ulp"] + b["within_1ulp"],
        "measured": a["measured"] + b["measured"], "ulp_sum": a["ulp_sum"] + b["ulp_sum"],
        "failing": a["failing"] + b["failing"],
        "conventions": _merge_conventions(a["conventions"], b["conventions"]),
        "max_ulp": max(max_ulp) if max_ulp else None,
        "histogram": [x + y for x, y in zip(a["histogram"], b["histogram"])],
        "classes": {name: a["classes"][name] + b["classes"][name] for name in CLASS_NAMES},
        "class_examples": examples,
        "worst": sorted(a["worst"] + b["worst"], key=lambda w: (-w[0], w[1]))[:WORST_KEPT],
        "oracle_points": a["oracle_points"] + b["oracle_points"],
        "fast_decided": a["fast_decided"] + b["fast_decided"],
        "output_dtypes": sorted(set(a["output_dtypes"]) | set(b["output_dtypes"])),
    }


def _merge_conventions(a, b):
    merged = {name: dict(entry) for name, entry in a.items()}
    for name, entry in b.items():
        if name in merged:
            merged[name]["points"] += entry["points"]
            merged[name]["max_ulp"] = max(merged[name]["max_ulp"], entry["max_ulp"])
        else:
            merged[name] = dict(entry)
    return merged


def _merge_in_order(summaries):
    ordered = sorted(summaries, key=lambda s: s["index"])
    merged = ordered[0]
    for summary in ordered[1:]:
        merged = merge_summaries(merged, summary)
    return merged


def _p99_from_histogram(histogram, measured):
    if not measured:
        return None
    needed = math.ceil(0.99 * measured)
    running = 0
    for upper, count in zip(HISTOGRAM_EDGES + (math.inf,), histogram):
        running += count
        if running >= needed:
            return upper
    return math.inf


# --- executors: where shards run ---------------------------------------------------------


class InProcessExecutor:
    """Shards one after the other in this process (the runner's ``workers=1``)."""

    name = "in-process"
    limit_threads = False

    def call(self, fn, *args):
        return fn(*args)

    def map_unordered(self, fn, tasks):
        for task in tasks:
            yield fn(task)

    def close(self):
        pass


class FuturesExecutor:
    """Any ``concurrent.futures.Executor`` (e.g. a caller's own pool)."""

    name = "futures"
    limit_threads = True

    def __init__(self, executor, owned=False):
        self._executor = executor
        self._owned = owned

    def call(self, fn, *args):
        return self._executor.submit(fn, *args).result()

    def map_unordered(self, fn, tasks):
        futures = [self._executor.submit(fn, task) for task in tasks]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self):
        if self._owned:
            self._executor.shutdown(wait=True, cancel_futures=True)


class ProcessPoolShardExecutor(FuturesExecutor):
    """A local pool of ``workers`` spawned processes, each building the backend once."""

    name = "process-pool"

    def __init__(self, workers, backend_name, device):
        # spawn, not fork: frameworks keep threads that a forked child inherits broken.
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_initialize_pool_worker, initargs=(backend_name, device))
        super().__init__(pool, owned=True)
        self.name = f"process-pool ({workers} workers)"


class DaskExecutor:
    """A Dask cluster through ``distributed.Client``: the same tasks, the same function."""

    limit_threads = True

    def __init__(self, client, cluster=None, owned=False):
        self.client = client
        self._cluster = cluster
        self._owned = owned or cluster is not None
        self.name = f"dask ({client.scheduler.address})" if cluster is None else "dask (LocalCluster)"

    def call(self, fn, *args):
        return self.client.submit(fn, *args, pure=False).result()

    def map_unordered(self, fn, tasks):
        from distributed import as_completed

        futures = [self.client.submit(fn, task, pure=False) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self):
        if self._owned:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def dask_executor(address, workers=None):
    """A :class:`DaskExecutor` for ``--dask ADDRESS``, or a new LocalCluster for ``local``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as missing:
        raise RuntimeError("--dask needs dask.distributed: pip install 'refact[sweep]'") from missing
    if address == "local":
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None)
        return DaskExecutor(Client(cluster), cluster)
    try:
        return DaskExecutor(Client(address, timeout="30s"), owned=True)
    except (OSError, TimeoutError) as error:
        raise RuntimeError(f"cannot reach the Dask scheduler at {address!r}: {error}") from None


def _executor_for(executor, workers, backend_name, device):
    if executor is None:
        if workers <= 1:
            return InProcessExecutor()
        return ProcessPoolShardExecutor(workers, backend_name, device)
    if hasattr(executor, "map_unordered"):
        return executor
    if type(executor).__module__.startswith("distributed"):
        return DaskExecutor(executor)
    if isinstance(executor, concurrent.futures.Executor):
        return FuturesExecutor(executor)
    raise TypeError(f"not an executor: {executor!r}")


# --- checkpoints ---------------------------------------------------------------------------


class CheckpointStore:
    """Finished shard summaries of one sweep, one JSON file each, written atomically.

    The directory name carries a digest of the sweep's key, so two different sweeps can
    share a checkpoint root and a changed argument or backend version starts afresh
    instead of mixing results. Each shard file also vouches for itself, since files get
    copied, torn and edited: it carries the digest of the key it was written under and
    a digest of that key and its summary together. A file that does not parse, belongs
    to another sweep, no longer matches its digest or holds another shard is named in
    one line on stderr and its shard recomputed. (The digests catch accidents and
    mix-ups, not someone who recomputes them.)
    """

    def __init__(self, root, key):
        self.key = key
        self.key_digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        self.directory = Path(root) / f"{key['function']}-{key['backend']}-{key['format']}-{self.key_digest[:16]}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._save_failed = False
        # key.json is for whoever reads the directory; the shards' own digests decide.
        key_file = self.directory / "key.json"
        if os.path.lexists(key_file):
            try:
                if json.loads(key_file.read_text(encoding="utf-8")) == key:
                    return
            except (OSError, ValueError):
                pass
            _warn(f"{key_file} does not describe this sweep; rewritten")
        self._write(key_file, json.dumps(key, indent=1, sort_keys=True) + "\n")

    def _path(self, index):
        return self.directory / f"shard-{index:08d}.json"

    def _digest(self, summary):
        text = json.dumps(summary, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{self.key_digest}\n{text}".encode()).hexdigest()

    def load(self, tasks):
        """Summaries of the finished shards among ``tasks``, by index; a shard file that
        fails its checks is reported and left out, so the shard runs again."""
        finished = {}
        for task in tasks:
            path = self._path(task.index)
            if not os.path.lexists(path):
                continue
            summary, problem = self._read_shard(path, task)
            if problem:
                _warn(f"ignoring checkpoint {path}: {problem}; the shard is recomputed")
            else:
                finished[task.index] = summary
        return finished

    def _read_shard(self, path, task):
        """``(summary, None)``, or ``(None, why the file is not trusted)``."""
        if not path.is_file():
            return None, "not a regular file"  # reading a FIFO would wait for ever
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # torn, garbage, not UTF-8
            return None, f"unreadable ({type(error).__name__}: {error})"
        if not (isinstance(entry, dict) and entry.get("kind") == CHECKPOINT_KIND
                and isinstance(entry.get("summary"), dict)):
            return None, "not a sweep checkpoint of this refact"
        if entry.get("key") != self.key_digest:
            return None, "written by another sweep (another function, backend, format, range, seed, sample or version)"
        summary = entry["summary"]
        if entry.get("digest") != self._digest(summary):
            return None, "its content does not match its digest (edited or damaged)"
        if [summary.get(name) for name in ("index", "start", "stop")] != [task.index, task.start, task.stop]:
            return None, f"it holds another shard than shard {task.index}"
        return summary, None

    def save(self, summary):
        summary = json.loads(json.dumps(summary))  # digest what a reader will parse
        entry = {"kind": CHECKPOINT_KIND, "key": self.key_digest, "digest": self._digest(summary),
                 "summary": summary}
        self._write(self._path(summary["index"]), json.dumps(entry) + "\n")

    def _write(self, path, text):
        try:
            atomic_write_text(path, text)
        except OSError as error:
            # A checkpoint only saves a rerun time: failing to write one (a full disk, a
            # directory in the way) must not cost the sweep. Said once, not per shard.
            if not self._save_failed:
                _warn(f"{error}; the sweep goes on, and a resumed sweep recomputes the shards not saved "
                      f"(further failures to save are not reported)")
            self._save_failed = True


def _warn(message):
    print(f"refact: {message}", file=sys.stderr)


# --- progress ------------------------------------------------------------------------------


# --- the sweep -------------------------------------------------------------------------------


def plan_shards(fmt, lo, hi, shard_size):
    """``[(index, start, stop)]`` covering bit patterns ``lo..hi`` (inclusive) in shards
    aligned to multiples of ``shard_size`` from ``lo``."""
    return [(i, start, min(start + shard_size, hi + 1))
            for i, start in enumerate(range(lo, hi + 1, shard_size))]


def _checkpoint_key(function, info, fmt, lo, hi, shard_size, seed, sample):
    from refact import __version__ as refact_version

    from refact.conformance.truth.oracle import ORACLE_VERSION

    return {
        "kind": CHECKPOINT_KIND, "function": function, "backend": info["name"],
        "backend_version": info["version"], "device": info["device"], "format": fmt.name,
        "range": [lo, hi], "shard_size": shard_size, "seed": seed, "sample": sample,
        "refact_version": refact_version, "oracle_version": ORACLE_VERSION,
        "fast_bound": [fastpath.RELATIVE_BOUND, fastpath.ABSOLUTE_BOUND],
    }


def validated_range(fmt, lo, hi):
    last = (1 << fmt.width) - 1
    lo = 0 if lo is None else int(lo)
    hi = last if hi is None else int(hi)
    if not 0 <= lo <= hi <= last:
        raise ValueError(f"range {lo:#x}:{hi:#x} is not within 0x0:{last:#x} of {fmt.name} "
                         f"with LO <= HI")
    return lo, hi


def sweep_record(function, backend_name, fmt, lo=None, hi=None, *, device="cpu", workers=1,
                 executor=None, checkpoint=None, shard_size=None, seed=0, sample=DEFAULT_SAMPLE,
                 progress=False, oracle_cache=True, backend_info=None, backend=None):
    """Sweep ``function`` of backend ``backend_name`` over the bit patterns ``lo..hi``
    (inclusive; the whole format when both are None) of ``fmt`` and return one
    ``accuracy`` record of the refact.report/1 contract (with a ``"sweep"`` section).

    ``workers=1`` with no ``executor`` runs in this process; ``workers > 1`` uses a local
    spawned process pool; ``executor`` may be a ``distributed.Client``, a
    ``concurrent.futures.Executor`` or an executor of this module. ``checkpoint`` is a
    directory: finished shards are saved there and a rerun resumes. ``progress=True``
    draws a progress line on stderr. ``backend_info`` (the dict of
    :func:`describe_backend`) saves asking the executor for it. ``backend``, an already
    constructed backend object, is used as is when the shards run in this process
    (e.g. inside the runner's isolated worker, which has built it).

    Raises ValueError for a function without a fast truth, a format that cannot be swept
    or a bad range; a missing backend, function or format gives a ``skip`` record.
    """
    record, _ = run_sweep(function, backend_name, fmt, lo, hi, device=device, workers=workers,
                          executor=executor, checkpoint=checkpoint, shard_size=shard_size, seed=seed,
                          sample=sample, progress=progress, oracle_cache=oracle_cache,
                          backend_info=backend_info, backend=backend)
    return record


def run_sweep(function, backend_name, fmt, lo=None, hi=None, *, device="cpu", workers=1,
              executor=None, checkpoint=None, shard_size=None, seed=0, sample=DEFAULT_SAMPLE,
              progress=False, oracle_cache=True, backend_info=None, backend=None):
    """:func:`sweep_record` returning ``(record, backend description)``."""
    fmt = _check_sweep_format(fmt)
    if backend is not None:
        _BACKENDS[(backend_name, device)] = backend
    spec = get_function(function)
    fast = fast_truth_of(spec.name)
    lo, hi = validated_range(fmt, lo, hi)
    shard_size = int(shard_size or DEFAULT_SHARD_SIZE[fmt.name])
    if shard_size < 1:
        raise ValueError("shard size must be at least 1")
    exhaustive = lo == 0 and hi == (1 << fmt.width) - 1
    started = time.perf_counter()
    runner = _executor_for(executor, workers, backend_name, device)
    try:
        info = backend_info or runner.call(describe_backend, backend_name, device, runner.limit_threads)
        missing = _missing(info, fast.function, fmt)
        if missing:
            return _skip_record(info, spec, fmt, missing), info
        tasks = [ShardTask(fast.function, backend_name, device, fmt.name, index, start, stop,
                           int(seed), int(sample), runner.limit_threads, oracle_cache)
                 for index, start, stop in plan_shards(fmt, lo, hi, shard_size)]
        store = None
        finished = {}
        if checkpoint is not None:
            key = _checkpoint_key(fast.function, info, fmt, lo, hi, shard_size, int(seed), int(sample))
            store = CheckpointStore(checkpoint, key)
            finished = store.load(tasks)
        pending = [task for task in tasks if task.index not in finished]
        total = hi - lo + 1
        bar = Progress(f"{fast.function} {backend_name} {fmt.name}", total,
                       sum(s["points"] for s in finished.values()), enabled=progress)
        try:
            for summary in runner.map_unordered(run_shard, pending):
                if store is not None:
                    store.save(summary)
                finished[summary["index"]] = summary
                bar.update(summary["points"])
        finally:
            bar.close()
    finally:
        if runner is not executor:  # made here: ours to close (a caller's stays open)
            runner.close()
    merged = _merge_in_order(finished.values())
    return _accuracy_record(info, spec, fmt, merged, {
        "range": [_bits_text(lo, fmt), _bits_text(hi, fmt)], "exhaustive": exhaustive,
        "shards": len(tasks), "shard_size": shard_size, "resumed_shards": len(tasks) - len(pending),
        "seed": int(seed), "sample": int(sample), "executor": runner.name,
        "wall_seconds": time.perf_counter() - started, "backend_version": info["version"],
    }), info


def exhaustive_records(backend_name, *, device="cpu", functions=None, formats=("float16", "bfloat16"),
                       workers=1, executor=None, backend=None, seed=0, sample=DEFAULT_SAMPLE):
    """Every value of each 16-bit format for every sweepable function of one backend: the
    records ``refact conform --cases full`` adds (a ``skip`` record where the backend
    lacks the function or format). The backend is described once for all of them."""
    functions = list(functions or FAST_TRUTHS)
    if backend is not None:
        _BACKENDS[(backend_name, device)] = backend
    runner = _executor_for(executor, workers, backend_name, device)
    try:
        info = runner.call(describe_backend, backend_name, device, runner.limit_threads)
        return [sweep_record(function, backend_name, fmt, device=device, executor=runner,
                             backend_info=info, seed=seed, sample=sample)
                for function in functions for fmt in formats]
    finally:
        if runner is not executor:
            runner.close()


def _missing(info, function, fmt):
    if not info["available"]:
        return f"backend {info['name']!r} is not available: {info['error']}"
    if function not in info["functions"]:
        return f"backend {info['name']!r} does not provide {function}"
    formats = info["formats_of"].get(function, info["formats"])
    if formats is not None and fmt.name not in formats:
        return f"backend {info['name']!r} does not offer {function} in {fmt.name}"
    return None


def _empty_classes():
    return {name: 0 for name in CLASS_NAMES}


def _skip_record(info, spec, fmt, reason):
    return record(info["name"], spec.name, fmt.name, "accuracy", status="skip", message=reason,
                  budget=spec.budgets.get(fmt.name))


def _worst_entry(fmt, worst):
    ulp, bits, x, y, expected = worst
    return {"input": [x], "input_hex": [x.hex()], "input_bits": [_bits_text(bits, fmt)],
            "output": y, "expected": expected, "ulp": ulp}


def _accuracy_record(info, spec, fmt, merged, sweep):
    budget = spec.budgets.get(fmt.name)
    measured = merged["measured"]
    points = merged["points"]
    failures = {name: n for name, n in merged["classes"].items() if n and name != ruler.UNDECIDED}
    problems = []
    if merged["errors"]:
        problems.append(f"the backend failed on {len(merged['errors'])} shard(s): {merged['errors'][0]}")
    if merged["disagreements"]:
        first = merged["disagreements"][0]
        problems.append(
            f"REFACT BUG: the fast truth disagrees with mpmath at {len(merged['disagreements'])} "
            f"point(s), first {spec.name}({first['input_bits']}) fast {first['fast_rounded']!r} "
            f"vs mpmath {first['oracle_rounded']!r}; the mpmath value was used")
    if problems:
        status = "error"
    elif merged["failing"]:
        status = "fail"
    else:
        status = "convention" if merged["conventions"] else "pass"
    worst = [_worst_entry(fmt, w) for w in merged["worst"]]
    where = f" at {worst[0]['input_bits'][0]}" if worst else ""
    max_text = "no measured points" if merged["max_ulp"] is None else f"max {merged['max_ulp']:.3g} ULP{where}"
    details = [f"{name} {n:,}" for name, n in failures.items()]
    if merged["failing"]:
        details.insert(0, f"{merged['failing']:,} points outside the budget of {budget:g} ULP")
    details += [f"{entry['points']:,} points covered by the convention {name}"
                for name, entry in sorted(merged["conventions"].items())]
    message = "; ".join(problems + [
        f"{'exhaustive' if sweep['exhaustive'] else 'range'} {sweep['range'][0]}..{sweep['range'][1]}: "
        f"{points:,} points, {max_text}"] + details)
    dtypes = [d for d in merged["output_dtypes"] if d != fmt.name]
    if dtypes:
        message += f"; results came back as {', '.join(dtypes)}"
    sweep = dict(sweep)
    sweep.update(
        oracle_points=merged["oracle_points"], fast_decided=merged["fast_decided"],
        seconds=merged["seconds"], output_dtypes=merged["output_dtypes"],
        histogram={"upper_edges": list(HISTOGRAM_EDGES) + [math.inf], "counts": merged["histogram"]},
        class_examples={name: [_bits_text(b, fmt) for b in bits]
                        for name, bits in sorted(merged["class_examples"].items())},
        disagreements=merged["disagreements"], backend_errors=merged["errors"][:DISAGREEMENTS_KEPT],
        fast_truth={"relative_bound": fastpath.RELATIVE_BOUND, "absolute_bound": fastpath.ABSOLUTE_BOUND,
                    "why": fast_truth_of(spec.name).why},
    )
    return record(
        info["name"], spec.name, fmt.name, "accuracy", status=status, message=message, budget=budget,
        classes_counted=merged["classes"], points=points, max_ulp=merged["max_ulp"],
        p99_ulp=_p99_from_histogram(merged["histogram"], measured),
        mean_ulp=merged["ulp_sum"] / measured if measured else None,
        correctly_rounded=merged["correctly_rounded"] / points if points else None,
        within_1ulp=merged["within_1ulp"] / points if points else None,
        convention=convention_field([{"name": name, **entry} for name, entry in sorted(merged["conventions"].items())]),
        worst=worst, case_sets={"exhaustive" if sweep["exhaustive"] else "sweep_range": points}, sweep=sweep,
    )


def sweep_report(records, backends, seed=0):
    """A whole refact.report/1 report around sweep records; ``backends`` are the dicts of
    :func:`describe_backend`."""
    return report_envelope(records, [{key: info[key] for key in ("name", "version", "device", "available", "error")}
                                     for info in backends], seed)
