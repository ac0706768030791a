"""The engine for rows: a correctly rounded backend gets no failure, planted flaws are
flagged in the right class, refusals are found by splitting rows, conventions cover
only what their predicate says, and the reference backend passes."""

import numpy as np
import pytest

from refact.backends import get_backend
from refact.backends.base import Convention
from refact.conformance.cases.rows import dense_rows
from refact.conformance.run import rows_engine
from refact.conformance.truth import rows as row_truth
from refact.conformance.truth.catalog import get_function

SMALL = {"counts": {2: 64, 3: 32, 10: 16, 100: 4, 1000: 2}, "wide": (32000, 0), "pairs": 512}


class Refused(Exception):
    raised = True


def _set(function, fmt, **sizes):
    rows = dense_rows(function, fmt, **(sizes or SMALL))
    return rows, row_truth.row_truths(rows, sample=0, cache=False)


def _rounded_outputs(rows, truths):
    """What a correctly rounded backend returns: the truths, group by group."""
    out = []
    for (start, n, c), group in zip(row_truth.flat_layout(rows), rows.groups):
        y = np.asarray(truths.rounded[start:start + n * c], dtype=np.float64)
        out.append(y.reshape(n, c) if get_function(rows.function).vector_output else y)
    return out


def _judge(function, fmt, rows, truths, outputs, conventions=()):
    refused = [np.zeros(g.rows, dtype=bool) for g in rows.groups]
    judged = rows_engine.judge_rows(function, fmt, rows, truths, outputs, refused, conventions)
    judged.dtype = fmt
    return judged, rows_engine.rows_record("fake", function, fmt, rows, judged)


@pytest.mark.parametrize("function", ["softmax", "log_softmax", "logsumexp", "cross_entropy",
                                      "binary_cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("fmt", ["float32", "bfloat16"])
def test_a_correctly_rounded_backend_gets_no_failure(function, fmt):
    rows, truths = _set(function, fmt)
    judged, record = _judge(function, fmt, rows, truths, _rounded_outputs(rows, truths))
    assert record["status"] == "pass" and record["severity"] is None
    assert record["max_ulp"] <= 0.5 and record["correctly_rounded"] == 1.0
    assert sum(record["classes"].values()) == 0
    assert record["points"] == len(truths) and record["engine"]["dense_rows"] == rows.rows
    assert record["message"].startswith("dense rows ")


def _naive_softmax(x):
    e = np.exp(x.astype(np.float32))           # no max subtracted: inf / inf at large logits
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float64)


def test_softmax_without_the_max_subtracted_is_flagged_nan_where_it_overflows():
    rows, truths = _set("softmax", "float32")
    with np.errstate(all="ignore"):
        outputs = [_naive_softmax(g.arguments[0]) for g in rows.groups]
    judged, record = _judge("softmax", "float32", rows, truths, outputs)
    assert record["status"] == "fail" and record["severity"] == "critical"
    # every row with an entry past log(float32 max) = 88.7 has a NaN
    due = sum(int(np.count_nonzero((g.arguments[0] > 88.72).any(axis=1)) * g.length) for g in rows.groups)
    nan_out = sum(int(np.isnan(y).sum()) for y in outputs)
    assert record["classes"]["spurious_nan"] == nan_out >= due > 0
    nan_rows = [w for w in record["worst"] if w.get("class") == "spurious_nan"]
    assert nan_rows and max(abs(v) for v in nan_rows[0]["input"][0] if v == v and abs(v) < np.inf) > 88
    assert nan_rows[0]["input_hex"][0][0].startswith("0x")


def test_logsumexp_three_ulps_off_on_rows_of_1000_is_an_ulp_error_of_those_rows():
    fmt = "float32"
    rows, truths = _set("logsumexp", fmt)
    outputs = _rounded_outputs(rows, truths)
    wide = [k for k, g in enumerate(rows.groups) if g.length == 1000][0]
    y = outputs[wide]
    outputs[wide] = y + 3 * np.spacing(np.abs(y).astype(np.float32)).astype(np.float64) * np.sign(y)
    judged, record = _judge("logsumexp", fmt, rows, truths, outputs)
    budget = get_function("logsumexp").budgets["float32"]
    assert 2.5 <= record["max_ulp"] <= 3.5
    assert sum(record["classes"].values()) == 0
    assert record["status"] == ("fail" if budget < 2.5 else "pass")
    assert record["worst"][0]["row"].startswith("row ") and "1000-wide" in record["worst"][0]["row"]
    assert len(record["worst"][0]["input"][0]) == 1000  # the whole row, decimal and hex
    assert len(record["worst"][0]["input_hex"][0]) == 1000


def test_rows_a_backend_refuses_are_found_by_splitting_and_fail():
    rows, truths = _set("cross_entropy", "float32")
    truth_outputs = _rounded_outputs(rows, truths)
    group = rows.groups[2]

    def evaluate(arguments):
        x, target = arguments
        if (target == 0).any() and x.shape[1] == group.length:
            raise Refused("no class 0 here")
        index = [k for k, g in enumerate(rows.groups) if g.length == x.shape[1]][0]
        full = rows.groups[index].arguments[0]
        start = int(np.flatnonzero((full == x[0]).all(axis=1))[0])
        return truth_outputs[index][start:start + len(x)], "float32"

    y, dtype, refused = rows_engine.outputs_or_refusals(evaluate, group, lambda e: getattr(e, "raised", False))
    assert np.array_equal(refused, group.arguments[1] == 0)
    assert np.isnan(y[refused]).all() and not np.isnan(y[~refused]).any()
    with pytest.raises(ValueError, match="not refusal"):
        rows_engine.outputs_or_refusals(lambda a: (_ for _ in ()).throw(ValueError("not refusal")), group,
                                        lambda e: getattr(e, "raised", False))


def test_a_convention_covers_only_the_rows_its_predicate_accepts():
    rows, truths = _set("logsumexp", "float32")
    outputs = _rounded_outputs(rows, truths)
    outputs[0] = outputs[0] + 100 * np.spacing(np.abs(outputs[0]).astype(np.float32)).astype(np.float64)
    clamp = Convention("logsumexp", "two_wide", "rows of two are off", "https://example.org",
                       lambda point: len(point.args[0]) == 2)
    judged, record = _judge("logsumexp", "float32", rows, truths, outputs, (clamp,))
    assert record["status"] == "convention"
    assert record["convention"]["points"] == rows.groups[0].rows
    narrow = Convention("logsumexp", "three_wide", "rows of three", "https://example.org",
                        lambda point: len(point.args[0]) == 3)
    judged, record = _judge("logsumexp", "float32", rows, truths, outputs, (narrow,))
    assert record["status"] == "fail"


def _in_process(backend):
    return lambda task, args: task(*args, backend=backend)


@pytest.mark.parametrize("function", ["softmax", "logsumexp", "cross_entropy", "binary_cross_entropy"])
def test_the_reference_backend_passes_on_dense_rows(function):
    backend = get_backend("reference")
    assert backend.formats_of(function) == ("float64",)  # the core computes in float64
    rows, truths = _set(function, "float64", counts={2: 32, 3: 16, 10: 8, 100: 2}, wide=(32000, 0), pairs=256)
    record, dtype = rows_engine.rows_accuracy("reference", function, "float64", (rows, truths), (),
                                              _in_process(backend))
    assert record["status"] == "pass", record["message"]
    assert record["max_ulp"] <= get_function(function).budgets["float64"] and dtype == "float64"


def test_row_outputs_checks_the_shape_the_backend_returns():
    class Flat:
        def from_numpy(self, a):
            return a

        def to_numpy(self, a):
            return a

        def call(self, function, x):
            return x.ravel()

    rows = dense_rows("softmax", "float32", counts={3: 4}, wide=(0, 0))
    with pytest.raises(ValueError, match=r"softmax returned shape \(12,\) for an input of shape \(4, 3\)"):
        rows_engine.row_outputs("softmax", "float32", rows.groups[0].arguments, backend=Flat())
