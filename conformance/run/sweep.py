"""``refact sweep``: one elementwise function over every input of a range of a format.

Sampling finds typical errors; only an exhaustive sweep proves the maximum. A sweep
splits a range of bit patterns of a format (all 2**32 for ``float32 --exhaustive``)
into *shards* of contiguous patterns and runs one function, :func:`run_shard`, on each:

1. the shard's inputs are its bit patterns viewed as the format, passed to the backend
   as one native array, and the results read back as one float64 numpy array;
2. a fast candidate truth is computed for the whole shard in float64 with a stated
   error bound (:mod:`refact.conformance.truth.fast`); it decides the correctly rounded
   truth of almost every point;
3. the mpmath oracle decides the rest (:func:`~refact.conformance.truth.arrays.point_truths`):
   every point the bound leaves undecided, every special input (±0, ±inf, a NaN),
   every point whose ulp the bound leaves ambiguous and whose result is not the rounded
   truth, and a seeded random sample of the shard; and where the candidate is a
   textbook formula, refact's own numpy code, written apart from it, checks one point
   in :data:`SECOND_FORMULA_EVERY` as a second formula. Where two
   truths decided a point, they must agree; a disagreement is a bug of refact and
   makes the record an ``error`` naming the inputs (the oracle's value is used, the
   disagreement is never silently patched);
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

Importable entry point: :func:`sweep_record` (``refact sweep`` and the tests call it;
``refact conform`` judges its dense sets with the same engine, without shards).
"""

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refact.conformance.numbers.formats import get_format, pattern_hex, values_of_bits
from refact.conformance.truth import fast as fastpath
from refact.conformance.truth.arrays import point_truths
from refact.conformance.truth.store import atomic_write_text
from refact.conformance.run import engine
from refact.conformance.run.engine import (
    accuracy_record, merge_in_order, outputs_on, summarise,
)
from refact.conformance.run.isolation import describe, exit_with_parent
from refact.conformance.run.progress import Progress
from refact.conformance.run.records import record, report_envelope
from refact.conformance.truth.catalog import FAST_TRUTHS, fast_truth_of, get_function

__all__ = [
    "SWEEP_FORMATS", "DEFAULT_SHARD_SIZE", "DEFAULT_SAMPLE", "ShardTask", "evaluate_shard",
    "run_shard", "sweep_record", "run_sweep", "exhaustive_records", "sweep_report",
    "plan_shards", "describe_backend",
    "CheckpointStore", "InProcessExecutor", "FuturesExecutor", "ProcessPoolShardExecutor",
    "DaskExecutor", "dask_executor",
]

SWEEP_FORMATS = ("float32", "float16", "bfloat16")
# float32: 2**20 points a shard is ~0.1-0.5 s of work, small enough that a killed sweep
# loses little and large enough that the per-shard oracle sample and pickling stay cheap.
# 16-bit: four shards, so two workers share an exhaustive sweep.
DEFAULT_SHARD_SIZE = {"float32": 1 << 20, "float16": 1 << 14, "bfloat16": 1 << 14}
DEFAULT_SAMPLE = 32
#: The second formula checks one point in this many of a sweep.
SECOND_FORMULA_EVERY = 64
CHECKPOINT_KIND = "refact.sweep/2"


# --- inputs ---------------------------------------------------------------------------


def _check_sweep_format(fmt):
    fmt = get_format(fmt)
    if fmt.name not in SWEEP_FORMATS:
        raise ValueError(f"cannot sweep {fmt.name}: the float64 candidate truth decides "
                         f"rounding only to narrower formats ({', '.join(SWEEP_FORMATS)})")
    return fmt


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


def evaluate_shard(task):
    """Call the backend on every input of the shard and judge each point (the engine's
    :func:`~refact.conformance.run.engine.judge`). A backend that raises leaves
    ``errors`` set and no results."""
    fmt = get_format(task.format)
    bits = np.arange(task.start, task.stop, dtype=np.uint64)
    x64 = values_of_bits(bits, fmt)
    try:
        backend = _backend_in_this_process(task.backend, task.device, task.limit_threads)
        y64, dtype = outputs_on(task.function, fmt, bits, backend=backend)
    except Exception as error:
        judged = engine.Judged(task.function, fmt, _no_truths(task, bits, x64))
        judged.errors.append(f"{task.function} on {pattern_hex(task.start, fmt)}..."
                             f"{pattern_hex(task.stop - 1, fmt)}: {type(error).__name__}: {error}")
        return judged
    truths = point_truths(task.function, fmt, x64, bits=bits, sample=task.sample,
                          seed=(task.seed, task.index), cache=task.oracle_cache,
                          second_every=SECOND_FORMULA_EVERY)
    conventions_for = getattr(backend, "conventions_for", None)
    conventions = tuple(conventions_for(task.function)) if conventions_for else ()
    judged = engine.judge(task.function, fmt, truths, y64, conventions, oracle_cache=task.oracle_cache)
    judged.dtype = dtype
    return judged


def _no_truths(task, bits, x64):
    from refact.conformance.truth.arrays import PointTruths

    n = len(bits)
    empty = np.zeros(n, dtype=bool)
    return PointTruths(task.function, task.format, bits, x64, np.full(n, np.nan), np.zeros(n),
                       np.zeros(n), np.zeros(n, dtype=np.int32), empty, empty, empty, empty)


def run_shard(task):
    """Judge the backend on every input of one shard; return its summary (plain JSON data).

    This is the one function every executor runs.
    """
    started = time.perf_counter()
    summary = summarise(evaluate_shard(task), task.index, task.start, task.stop)
    summary["points"] = task.stop - task.start
    summary["seconds"] = time.perf_counter() - started
    return summary


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
        raise RuntimeError("--dask needs dask.distributed: pip install 'refact-numerics[sweep]'") from missing
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
    plan = plan_shards(fmt, lo, hi, shard_size)
    # no more worker processes than shards: each imports the framework
    runner = _executor_for(executor, min(workers, len(plan)), backend_name, device)
    try:
        info = backend_info or runner.call(describe_backend, backend_name, device, runner.limit_threads)
        missing = _missing(info, fast.function, fmt)
        if missing:
            return _skip_record(info, spec, fmt, missing), info
        tasks = [ShardTask(fast.function, backend_name, device, fmt.name, index, start, stop,
                           int(seed), int(sample), runner.limit_threads, oracle_cache)
                 for index, start, stop in plan]
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
    merged = merge_in_order(finished.values())
    scope = "exhaustive" if exhaustive else "range"
    return accuracy_record(info["name"], spec.name, fmt, merged, {
        "scope": f"{scope} {pattern_hex(lo, fmt)}..{pattern_hex(hi, fmt)}: {merged['points']:,} points",
        "range": [pattern_hex(lo, fmt), pattern_hex(hi, fmt)], "exhaustive": exhaustive,
        "shards": len(tasks), "shard_size": shard_size, "resumed_shards": len(tasks) - len(pending),
        "seed": int(seed), "sample": int(sample), "executor": runner.name,
        "wall_seconds": time.perf_counter() - started, "backend_version": info["version"],
    }, section_name="sweep"), info


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


def _skip_record(info, spec, fmt, reason):
    return record(info["name"], spec.name, fmt.name, "accuracy", status="skip", message=reason,
                  budget=spec.budgets.get(fmt.name))


def sweep_report(records, backends, seed=0):
    """A whole refact.report/1 report around sweep records; ``backends`` are the dicts of
    :func:`describe_backend`."""
    return report_envelope(records, [{key: info[key] for key in ("name", "version", "device", "available", "error")}
                                     for info in backends], seed)
