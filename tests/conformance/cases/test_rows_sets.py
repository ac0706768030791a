"""The dense row sets: sizes, lengths, families, values of the format, reproducibility."""

import numpy as np
import pytest

from refact.conformance.cases.rows import (
    FAMILIES, ROW_COUNTS, TEMPERATURES, WIDE_ROWS, dense_rows, row_functions,
)
from refact.conformance.cases.sets import threshold_values
from refact.conformance.numbers.formats import get_format, round_to_format_array
from refact.conformance.truth.catalog import ROW_GAPS

FORMATS = ("float64", "float32", "float16", "bfloat16")


def _in_format(values, fmt):
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    return np.array_equal(round_to_format_array(v, fmt), v)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("function", row_functions())
def test_at_least_2_to_the_14_rows_of_format_values(function, fmt):
    rows = dense_rows(function, fmt)
    assert rows.rows >= 1 << 14
    for group in rows.groups:
        for a in group.arguments:
            if np.ndim(a) and np.asarray(a).dtype.kind == "f":
                assert _in_format(a, fmt)
                assert not np.isnan(a).any() and not np.isposinf(a).any()


@pytest.mark.parametrize("function", ["softmax", "log_softmax", "logsumexp", "cross_entropy"])
def test_row_functions_come_in_the_lengths_networks_use_with_every_family(function):
    rows = dense_rows(function, "float32")
    lengths = {g.length: g.rows for g in rows.groups}
    assert lengths == {**ROW_COUNTS, WIDE_ROWS[0]: WIDE_ROWS[1]}
    for group in rows.groups:
        if group.rows >= 1000:
            assert set(np.unique(group.family).tolist()) == set(range(len(FAMILIES)))
        x = group.arguments[0]
        assert np.isfinite(x).any(axis=1).all()  # never a whole row of -inf
        assert group.arguments[0].shape == (group.rows, group.length)


def test_dominant_rows_have_gaps_at_the_row_thresholds_and_near_ties_are_a_few_ulps_apart():
    fmt = get_format("float32")
    rows = dense_rows("logsumexp", fmt)
    group = next(g for g in rows.groups if g.length == 3)
    x = group.arguments[0]
    gaps = sorted({abs(v) for name in ROW_GAPS for v in threshold_values(name, fmt)})
    dominant = x[group.family == FAMILIES.index("dominant")]
    top = np.sort(dominant, axis=1)
    found = -top[:, -2]  # the dominant entry is 0, the next is about -gap
    for g in gaps:  # every threshold gap is met within 1% by several rows
        assert np.count_nonzero(np.abs(found - g) <= 0.01 * g) >= 5, g
    ties = np.sort(x[group.family == FAMILIES.index("near_tie")], axis=1)
    spacing = np.spacing(np.abs(ties[:, -1]).astype(np.float32)).astype(np.float64)
    assert (np.abs(ties[:, -1] - ties[:, -2]) <= 4 * spacing).all()
    assert np.count_nonzero(ties[:, -1] == ties[:, -2]) > 0 and np.count_nonzero(ties[:, -1] != ties[:, -2]) > 0


def test_huge_rows_reach_the_overflow_of_the_format_and_equal_rows_are_constant():
    for fmt in ("float16", "float32"):
        rows = dense_rows("softmax", fmt)
        group = rows.groups[0]
        huge = group.arguments[0][group.family == FAMILIES.index("huge")]
        assert np.abs(huge).max() >= 0.9 * get_format(fmt).largest_finite
        equal = group.arguments[0][group.family == FAMILIES.index("equal")]
        assert (equal == equal[:, :1]).all()


def test_cross_entropy_targets_are_the_argmax_the_argmin_or_random():
    rows = dense_rows("cross_entropy", "float32")
    for group in rows.groups:
        x, target = group.arguments
        assert target.dtype == np.int64 and (0 <= target).all() and (target < group.length).all()
        picked = x[np.arange(group.rows), target]
        if group.rows > 100:
            assert np.mean(picked == x.max(axis=1)) > 0.3
            assert np.mean(picked == x.min(axis=1)) > 0.3
    # argmin of a row with -inf entries is a -inf logit: a loss of +inf is due
    assert any(np.isneginf(g.arguments[0][np.arange(g.rows), g.arguments[1]]).any() for g in rows.groups)


def test_binary_cross_entropy_pairs_are_dense_next_to_0_and_1_against_hard_and_soft_labels():
    fmt = get_format("float32")
    p, y = dense_rows("binary_cross_entropy", fmt).groups[0].arguments
    assert (p > 0).all() and (p <= 1).all()
    assert np.count_nonzero(p < 1e-30) > 5000 and np.count_nonzero(1 - p < 1e-5) > 5000
    assert {0.0, 1.0, 0.5} <= set(np.unique(y).tolist()) and ((y >= 0) & (y <= 1)).all()
    assert len(np.unique(y)) > 1000
    x, y = dense_rows("binary_cross_entropy_with_logits", fmt).groups[0].arguments
    assert np.count_nonzero(np.abs(x) <= 100) >= len(x) // 2 and np.abs(x).max() > 1e37


def test_distillation_pairs_rows_and_temperatures():
    rows = dense_rows("distillation_loss", "float32")
    temperatures = {g.temperature for g in rows.groups}
    assert temperatures == {float(round_to_format_array(np.array([t]), "float32")[0]) for t in TEMPERATURES}
    for group in rows.groups:
        student, teacher, _ = group.arguments
        assert student.shape == teacher.shape and np.isfinite(student).all() and np.isfinite(teacher).all()


def test_the_set_is_seeded_and_reproducible():
    a, b, c = (dense_rows("softmax", "bfloat16", seed=s) for s in (1, 1, 2))
    assert all(np.array_equal(x.arguments[0], y.arguments[0]) for x, y in zip(a.groups, b.groups))
    assert not np.array_equal(a.groups[0].arguments[0], c.groups[0].arguments[0])


def test_bad_requests_name_the_argument():
    with pytest.raises(ValueError, match="sigmoid is elementwise"):
        dense_rows("sigmoid", "float32")
    with pytest.raises(ValueError, match="counts must map lengths >= 1 to rows >= 0, got 0: 5"):
        dense_rows("softmax", "float32", counts={0: 5})
    with pytest.raises(ValueError, match="unknown function"):
        dense_rows("softmaxx", "float32")
