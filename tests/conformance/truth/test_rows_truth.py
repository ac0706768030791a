"""The vectorised row truths: every candidate within its stated radius of mpmath on
adversarial rows, every decided rounding the oracle's, the sample catching a planted
error, and the files on disk vouching for themselves."""

import json

import mpmath
import numpy as np
import pytest

from refact.conformance.cases.rows import dense_rows, row_functions
from refact.conformance.numbers.formats import get_format
from refact.conformance.truth import rows as row_truth
from refact.conformance.truth.oracle import evaluate, truth_many

SMALL = {"counts": {2: 48, 3: 24, 10: 12, 100: 3}, "wide": (32000, 0), "pairs": 256}
#: The functions whose candidates are held to their radius below: all of them.
FUNCTIONS = row_functions()


def _flat_values(function, group):
    found = row_truth.candidate(function, group)
    return found, found.value.reshape(group.rows, -1), found.radius.reshape(group.rows, -1)


@pytest.mark.parametrize("fmt", ["float64", "float32", "bfloat16"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_candidate_is_within_its_radius_of_mpmath(function, fmt):
    """Random and adversarial rows (dominant gaps at the regime thresholds, near-ties,
    -inf entries, huge and constant rows): |candidate - truth| <= radius, mpmath at 256
    bits; the radius is rarely more than a few hundred times the error (it decides)."""
    rows = dense_rows(function, fmt, seed=3, **SMALL)
    worst = 0.0
    for group in rows.groups:
        found, value, radius = _flat_values(function, group)
        open_rows = found.open.reshape(group.rows, -1).any(axis=1)
        for i, point in enumerate(row_truth.row_points(group, range(group.rows))):
            if open_rows[i] or not np.isfinite(value[i]).all():
                continue  # infinities come from -inf entries: the exact hooks' (tested below)
            exact = evaluate(function, point, 256)
            exact = exact if isinstance(exact, tuple) else (exact,)
            with mpmath.workprec(256):
                for j, e in enumerate(exact):
                    v = value[i, j]
                    error = abs(row_truth.ld_to_mpf(v) - e)
                    bound = row_truth.ld_to_mpf(radius[i, j])
                    assert error <= bound, (point, j, v, e, radius[i, j])
                    if abs(e) > mpmath.ldexp(1, -16000):  # below: the radius is absolute
                        worst = max(worst, float(error / abs(e)))
    # long double candidates: far below every format's ulp (distillation's centred form
    # loses a few more bits to the mean it subtracts, which its radius carries)
    assert worst < (2 ** -50 if function == "distillation_loss" else 2 ** -56)


@pytest.mark.parametrize("fmt", ["float64", "float32", "float16"])
@pytest.mark.parametrize("function", ["logsumexp", "softmax", "log_softmax", "cross_entropy",
                                      "binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_every_decided_value_is_the_oracles(function, fmt):
    rows = dense_rows(function, fmt, seed=5, **SMALL)
    truths = row_truth.row_truths(rows, sample=0, cache=False)
    assert truths.disagreements == []
    assert truths.fast_decided >= 0.9 * len(truths)
    layout = row_truth.flat_layout(rows)
    for group, (start, n, c) in zip(rows.groups, layout):
        oracle = truth_many(function, row_truth.row_points(group, range(n)), fmt, cache=False)
        for i, t in enumerate(oracle):
            for j, (rounded, _) in enumerate(t.elements):
                k = start + i * c + j
                assert truths.decided[k]
                mine = float(truths.rounded[k])
                assert mine == rounded or (mine != mine and rounded != rounded), (group.length, i, j)
                if mine == 0:
                    assert np.signbit(mine) == np.signbit(rounded) or truths.exact_zero[k]


def test_decide_rounds_a_midpoint_with_a_rest_toward_the_rest_and_keeps_the_binade_of_a_truth_below_one():
    ld = np.longdouble
    fmt = get_format("float32")
    midpoint = ld(1) + ld(2) ** -24                       # between 1 and its float32 successor
    rounded, _, _, _, decided = row_truth.decide(np.array([midpoint] * 3), np.array([ld(2) ** -80] * 3),
                                                 fmt, side=np.array([-1, 1, 0]))
    assert decided.tolist() == [True, True, False]
    assert rounded[:2].tolist() == [1.0, 1.0 + 2 ** -23]
    # 1 / (1 + S) rounded to 1 in long double: the truth is just below, in [1/2, 1)
    rounded, units, _, exponent, decided = row_truth.decide(np.array([ld(1)]), np.array([ld(2) ** -70]),
                                                            fmt, side=np.array([-1]))
    assert decided[0] and rounded[0] == 1.0 and exponent[0] == -24 and units[0] == 2 ** 24
    # without a side the interval straddles the power of two: left to the oracle
    assert not row_truth.decide(np.array([ld(1)]), np.array([ld(2) ** -70]), fmt)[4][0]


def test_decide_rounds_past_the_overflow_threshold_to_infinity():
    ld = np.longdouble
    fmt = get_format("float16")
    values = np.array([ld(65520) * 2, ld(65504), ld(65519.99), ld(65520.01)])
    rounded, _, _, _, decided = row_truth.decide(values, values * ld(2) ** -60, fmt)
    assert decided.all()
    assert rounded.tolist() == [np.inf, 65504.0, 65504.0, np.inf]


def test_the_sample_reports_a_planted_error_as_a_disagreement(monkeypatch):
    original = row_truth.CANDIDATES["logsumexp"]

    def off_by_a_lot(group):
        found = original(group)
        found.value = found.value * (1 + np.longdouble(2) ** -20)
        return found

    monkeypatch.setitem(row_truth.CANDIDATES, "logsumexp", off_by_a_lot)
    rows = dense_rows("logsumexp", "float32", **SMALL)
    truths = row_truth.row_truths(rows, sample=40, cache=False)
    assert truths.disagreements and {d["kind"] for d in truths.disagreements} <= {"rounding", "bound"}
    assert "row" in truths.disagreements[0]["input_bits"]


def test_cached_row_truths_round_trip_and_a_tampered_file_is_recomputed(tmp_path):
    path, rows, truths = row_truth.cached_row_truths("cross_entropy", "float32", dense_rows, 0, str(tmp_path), **SMALL)
    assert path is not None
    again_path, again_rows, again = row_truth.cached_row_truths("cross_entropy", "float32", dense_rows, 0, str(tmp_path), **SMALL)
    assert again_path == path
    assert np.array_equal(np.asarray(again.rounded), truths.rounded, equal_nan=True)
    for a, b in zip(rows.groups, again_rows.groups):
        assert np.array_equal(a.arguments[0], b.arguments[0], equal_nan=True)
        assert np.array_equal(a.arguments[1], b.arguments[1]) and b.arguments[1].dtype == np.int64
    with open(path, "r+b") as f:
        f.seek(-8, 2)
        f.write(b"\xff" * 8)
    assert row_truth.load_row_truths(path) is None
    with open(f"{path}.json", encoding="utf-8") as f:
        assert json.load(f)["kind"] == "refact.row-truths/1"


def test_a_distillation_row_whose_spread_is_lost_to_rounding_is_left_to_the_oracle():
    """Student logits of 1.4e308 at T = 1/1024: the mean of v = (s - t)/T (about 1e311)
    rounds away the teacher's tail, so w and the candidate (5.46e-4) are wrong, and the
    truth is 4.13e242 (mpmath; the core agrees). The radius must hold the truth, so the
    rounding is left to the oracle instead of a false alarm against every backend."""
    student = np.array([[1.4058061395885182e+308, 9.28856982878102e+307, 6.07569201821376e+307]])
    teacher = np.array([[-1.9560999847271723, -4.242614171660607, -2.0961345032525607]])
    group = row_truth.RowGroup((student, teacher, 0.0009765625), np.zeros(1, dtype=np.int64))
    candidate = row_truth.CANDIDATES["distillation_loss"](group)
    truth = truth_many("distillation_loss", [(tuple(student[0]), tuple(teacher[0]), 0.0009765625)],
                       "float64")[0]
    assert truth.rounded == 4.1307027542112217e+242
    assert abs(candidate.value[0] - np.longdouble(truth.rounded)) <= candidate.radius[0]


def test_distillation_rows_that_differ_by_a_constant_are_an_exact_zero():
    """softmax is shift invariant: the oracle knows such a loss is exactly 0 (float16
    [-48.25, -22.203125] against [-48.21875, -22.171875] at T = 2, a sampled row the
    candidate first called nonzero, a disagreement reported as a refact bug)."""
    student = np.array([[-48.25, -22.203125], [1.0, 2.0], [0.1, 0.2]])
    teacher = np.array([[-48.21875, -22.171875], [1.0, 2.0], [0.3, 0.4]])
    group = row_truth.RowGroup((student, teacher, 2.0), np.zeros(3, dtype=np.int64))
    candidate = row_truth.CANDIDATES["distillation_loss"](group)
    # the third pair differs by 0.2 only approximately in binary: not a claimed exact zero
    assert candidate.exact_zero.tolist() == [True, True, False]
    truths = [truth_many("distillation_loss", [(tuple(s), tuple(t), 2.0)], "float64")[0]
              for s, t in zip(student, teacher)]
    assert [t.exact == 0 for t in truths[:2]] == [True, True]


def test_the_cache_of_rows_is_keyed_by_the_source_that_builds_them():
    # the cached file holds the rows themselves: a change to their builder must miss it
    import json

    from refact.conformance.cases import rows as case_rows

    built_by_cases = row_truth._source_digest(case_rows.dense_rows)
    assert built_by_cases == row_truth._source_digest(case_rows.dense_rows)
    assert built_by_cases != row_truth._source_digest(json.dumps)
