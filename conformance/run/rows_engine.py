"""The engine for rows: a backend's outputs on the dense row matrices, judged as arrays.

The row functions (softmax, log_softmax, logsumexp along the last axis) and the losses
are judged on the dense row sets of :mod:`refact.conformance.cases.rows` the way the
elementwise functions are judged on their dense points (:mod:`.engine`):

1. :func:`row_outputs` runs in the backend's worker, one call per group: an ``(N, C)``
   matrix (and its targets, teacher rows and temperature), as a model calls it;
   :func:`outputs_or_refusals` splits a group the framework refuses into halves of rows
   until the refused rows are found (refused where a number is due: a failure);
2. :func:`judge_rows` judges every output value (each entry of softmax and log_softmax,
   each row of logsumexp and the losses) with :func:`.engine.judge` against the truths
   of :mod:`refact.conformance.truth.rows` (failure classes, ULP errors, near-ties,
   refusals), then the backend's declared conventions, asked per failing value with
   the whole row as the point, once per row where the convention offers a
   ``row_predicate`` (a convention covers a value only where its predicate says so,
   and a flush only where the backend returns no nonzero subnormal in the same
   function and format);
3. :func:`rows_record` makes the ``accuracy`` record with :func:`.engine.accuracy_record`
   (the same fields and figures as the elementwise records) whose worst points carry
   their whole row (decimal and hex; rows over :data:`ROW_SHOWN` entries show their
   largest entries and say where the row is in the set).
"""

import numpy as np

from refact.backends.base import exact_numpy
from refact.conformance.cases.rows import FAMILIES
from refact.conformance.numbers.formats import get_format, pattern_hex
from refact.conformance.run import engine
from refact.conformance.run.records import input_hex, plain
from refact.conformance.truth import rows as row_truth
from refact.conformance.truth.catalog import get_function

__all__ = ["row_outputs", "outputs_or_refusals", "judge_rows", "rows_record", "rows_accuracy",
           "ROW_SHOWN"]

#: Entries of a row shown whole in a worst point; longer rows show their largest.
ROW_SHOWN = 1000
_LARGEST_SHOWN = 64


def row_outputs(function, fmt, arguments, *, backend):
    """The backend's results on one group's ``arguments`` (numpy arrays of ``fmt``
    values, int64 targets, a float temperature): ``(float64 array, dtype name)``, shaped
    like the output ((N, C) for softmax and log_softmax, else (N,)). Runs in the
    backend's worker (an engine task)."""
    native = []
    for a in arguments:
        if np.ndim(a) == 0:
            native.append(float(a))
        elif np.asarray(a).dtype.kind == "i":
            native.append(backend.from_numpy(np.asarray(a, dtype=np.int64)))
        else:
            native.append(backend.from_numpy(exact_numpy(np.asarray(a), fmt)))
    result = np.asarray(backend.to_numpy(backend.call(function, *native)))
    first = np.shape(arguments[0])
    due = first if get_function(function).vector_output else first[:1]
    if result.shape != tuple(due):
        raise ValueError(f"{function} returned shape {result.shape} for an input of shape {first}")
    return result.astype(np.float64), result.dtype.name


def _rows_of(arguments, start, stop):
    return tuple(a if np.ndim(a) == 0 else np.asarray(a[start:stop]) for a in arguments)


def outputs_or_refusals(evaluate, group, raised, calls=256):
    """``(y, dtype, refused)`` of one group: ``evaluate(arguments) -> (y, dtype)`` on
    all its rows, and where it raises (``raised(error)`` tells a refusal from a crash)
    on halves of the rows, down to the single rows it refuses (``refused``, bool per
    row; their ``y`` is NaN). At most ``calls`` calls: the elementwise engine's
    halving (:func:`.engine.split_on_refusals`), on rows."""
    return engine.split_on_refusals(evaluate, group.rows,
                                    lambda start, stop: _rows_of(group.arguments, start, stop),
                                    raised, calls, "rows")


def judge_rows(function, fmt, rows, truths, outputs, refused, conventions=()):
    """The :class:`.engine.Judged` of every output value of ``rows`` (a RowSet):
    ``outputs`` and ``refused`` per group (as :func:`outputs_or_refusals` gives them),
    ``truths`` the set's :func:`refact.conformance.truth.rows.row_truths`."""
    fmt = get_format(fmt)
    layout = row_truth.flat_layout(rows)
    y64 = np.concatenate([np.asarray(y, dtype=np.float64).ravel() for y in outputs])
    refused_flat = np.concatenate([np.repeat(r, c) for r, (_, _, c) in zip(refused, layout)])
    # every binade is known (the row truths ask the oracle where it is not), so judge
    # asks the oracle nothing; the conventions need the whole row, below
    judged = engine.judge(function, fmt, truths, y64, (), refused=refused_flat)
    _apply_conventions(judged, rows, layout, tuple(conventions))
    return judged


def _locate(layout, flat):
    """``(group, row, value)`` of a flat output index."""
    starts = [start for start, _, _ in layout]
    g = int(np.searchsorted(starts, flat, side="right") - 1)
    start, _, c = layout[g]
    row, value = divmod(int(flat) - start, c)
    return g, row, value


def _row_runs(layout, flat):
    """``(group, row, begin, end)`` of each row the sorted flat output indices ``flat``
    fall in: ``flat[begin:end]`` are that row's values."""
    starts = np.array([start for start, _, _ in layout], dtype=np.int64)
    widths = np.array([c for _, _, c in layout], dtype=np.int64)
    g = np.searchsorted(starts, flat, side="right") - 1
    row = (flat - starts[g]) // widths[g]
    bounds = np.flatnonzero((np.diff(g) != 0) | (np.diff(row) != 0)) + 1
    begins = np.concatenate([[0], bounds]).astype(np.int64)
    ends = np.concatenate([bounds, [len(flat)]]).astype(np.int64)
    return zip(g[begins].tolist(), row[begins].tolist(), begins.tolist(), ends.tolist())


def _apply_conventions(judged, rows, layout, conventions):
    """Mark the failing values a declared convention covers, asked once per row
    (:meth:`Convention.applies_row`) with the whole row as the point."""
    judged.conventions = conventions
    judged.covered = np.full(len(judged.y64), -1, dtype=np.int8)
    if not conventions:
        return
    open_points = np.flatnonzero(engine.failing(judged, judged.budget))
    if not len(open_points):
        return
    y = np.abs(judged.y64)
    shows_no_flush = bool(np.any((y > 0) & (y < judged.fmt.smallest_normal)))
    truth64 = judged.truths.value()
    points = {}
    for k, convention in enumerate(conventions):
        if not len(open_points):
            break
        if getattr(convention, "flushes", False) and shows_no_flush:
            continue
        accepted = np.zeros(len(open_points), dtype=bool)
        for g, row, begin, end in _row_runs(layout, open_points):
            if (g, row) not in points:
                # rows as arrays: a predicate scanning a 32000-wide row then costs
                # microseconds, not the milliseconds of a tuple of floats
                points[g, row] = tuple(np.asarray(a, dtype=np.float64) if isinstance(a, tuple) else a
                                       for a in row_truth.row_points(rows.groups[g], [row])[0])
            accepted[begin:end] = convention.applies_row(points[g, row], truth64[open_points[begin:end]],
                                                         judged.fmt.name)
        judged.covered[open_points[accepted]] = k
        open_points = open_points[~accepted]


def _shown_point(point, value):
    """The point of a worst value for the record: whole rows up to ROW_SHOWN entries;
    a longer row keeps its largest entries and the one the value belongs to."""
    out, cut = [], None
    for a in point:
        if isinstance(a, tuple) and len(a) > ROW_SHOWN:
            order = np.argsort(-np.nan_to_num(np.asarray(a), nan=np.inf), kind="stable")[:_LARGEST_SHOWN]
            keep = sorted(set(order.tolist()) | ({value} if value is not None else set()))
            cut = {"row_length": len(a), "entries_shown": keep}
            out.append(tuple(a[j] for j in keep))
        else:
            out.append(a)
    return tuple(out), cut


def _worst_entry(fmt, rows, layout, worst, vector):
    ulp, flat, _, y, expected, kind = worst
    g, row, value = _locate(layout, flat)
    group = rows.groups[g]
    point, cut = _shown_point(row_truth.row_points(group, [row])[0], value if vector else None)
    entry = {"input": plain(point), "input_hex": input_hex(point, fmt.name),
             "row": f"row {row} of the {group.length}-wide group {g}"
                    + ("" if group.temperature is None else f" (T={group.temperature:g})"),
             "family": FAMILIES[int(group.family[row])],
             "output": y, "expected": expected, "ulp": None if kind else ulp}
    if vector:
        entry["element"] = value
    if cut:
        entry.update(cut)
    if kind == "refused":
        entry["error"] = "the backend raised on this row, where a number is due"
    elif kind:
        entry["class"] = kind
    return entry


def rows_record(backend_name, function, fmt, rows, judged, extra=None):
    """The ``accuracy`` record of judged rows: :func:`.engine.accuracy_record` of the
    summary, its worst points and class examples given as rows."""
    fmt = get_format(fmt)
    layout = row_truth.flat_layout(rows)
    vector = get_function(function).vector_output
    summary = engine.summarise(judged)
    section = {"scope": f"dense rows {rows.describe()}", "dense_rows": rows.rows,
               "dense_values": len(judged.y64), **(extra or {})}
    record = engine.accuracy_record(backend_name, function, fmt, summary, section)
    worst = [_worst_entry(fmt, rows, layout, w, vector) for w in summary["worst"]]
    ordinary = [w for w in worst if w["ulp"] is not None]
    record["worst"] = ordinary[:5] + [w for w in worst if w["ulp"] is None][:3]
    if summary["worst"] and ordinary:
        # the engine names the worst point by its bit pattern; here that is a row
        first = next(w for w in summary["worst"] if w[5] is None)
        record["message"] = record["message"].replace(
            f" at {pattern_hex(first[1], fmt)}", f" at {ordinary[0]['row']}", 1)
    details = record["engine"]
    details["class_examples"] = {
        name: ["row {1} of the {0}-wide group, value {2}".format(
            rows.groups[_locate(layout, flat)[0]].length, *_locate(layout, flat)[1:])
            for flat in flats]
        for name, flats in sorted(summary["class_examples"].items())}
    details["fast_truth"] = {
        "why": "textbook formulas in long double with a radius per value from the row's "
               "magnitudes (see refact.conformance.truth.rows)",
        "unit": row_truth.U, "safety": row_truth.SAFETY}
    return record


def rows_accuracy(name, function, fmt, dense, conventions, run_task):
    """``(record, dtype)``: the accuracy record of a row function or loss on its dense
    rows (``dense``: the path :func:`refact.conformance.truth.rows.cached_row_truths`
    wrote, or ``(rows, truths)``). ``run_task(task, args) -> result`` runs an engine task
    in the backend's worker; an error whose ``raised`` is true is the framework refusing
    the rows (the worker's JobError), any other ends the check."""
    if isinstance(dense, str):
        loaded = row_truth.load_row_truths(dense)
        if loaded is None:
            raise ValueError(f"the row truths of {function} in {fmt} could not be read back")
        rows, truths = loaded
    else:
        rows, truths = dense
    outputs, refused, dtypes = [], [], set()
    for group in rows.groups:
        y, dtype, refusals = outputs_or_refusals(
            lambda arguments: run_task(row_outputs, (function, fmt, arguments)), group,
            lambda error: bool(getattr(error, "raised", False)))
        outputs.append(y)
        refused.append(refusals)
        dtypes.add(dtype)
    judged = judge_rows(function, fmt, rows, truths, outputs, refused, conventions)
    judged.dtype = sorted(dtypes)[0] if len(dtypes) == 1 else ",".join(sorted(dtypes))
    return rows_record(name, function, fmt, rows, judged), judged.dtype
