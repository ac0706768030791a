"""Truths of whole arrays: the fast truth and the oracle agree, the second formula keeps
the float64 candidate (numpy_impl, the numpy backend's own code) honest, and the files
on disk vouch for themselves."""

import json
import math

import numpy as np
import pytest

from refact.conformance.numbers.formats import get_format, values_of_bits
from refact.conformance.truth import arrays, fast
from refact.conformance.truth.catalog import FAST_TRUTHS
from refact.conformance.truth.oracle import truth_many

CASES = [(f, fmt) for f in sorted(FAST_TRUTHS) for fmt in ("float32", "float64", "bfloat16")]


def _inputs(function, fmt, n=600, seed=0):
    rng = np.random.default_rng(seed)
    if function in ("logit", "probit"):
        x = np.concatenate([rng.uniform(0, 1, n), [0.0, 1.0, 0.5, np.nan]])
    else:
        x = np.concatenate([rng.uniform(-50, 50, n), [0.0, -0.0, np.inf, -np.inf, np.nan, -745.0]])
    if fmt != "float64":
        from refact.conformance.numbers.formats import round_to_format_array

        x = round_to_format_array(x, fmt)
    return x


@pytest.mark.parametrize("function,fmt", CASES)
def test_every_truth_is_the_oracles(function, fmt):
    x = _inputs(function, fmt)
    truths = arrays.point_truths(function, fmt, x, sample=50, cache=False)
    assert truths.disagreements == []
    oracle = truth_many(function, [(v,) for v in x.tolist()], fmt, cache=False)
    value = truths.value()
    for i, t in enumerate(oracle):
        assert truths.decided[i] == t.decided
        r = float(truths.rounded[i])
        assert r == t.rounded or (r != r and t.rounded != t.rounded) or (r == 0 == t.rounded), (x[i], r, t.rounded)
        assert bool(truths.exact_zero[i]) == (t.exact == 0), x[i]
        if truths.binade_known[i] and math.isfinite(t.rounded) and t.exact != 0:
            # the units hold the exact truth to the fast bound (for a narrow format the
            # float64 candidate's stated bound), or the oracle's stored exact value
            # (p + 32 bits) where it spoke
            rel = 2.0 ** -(get_format(fmt).precision + 28)
            if fmt != "float64":
                rel = max(rel, fast.RELATIVE_BOUND)
            assert value[i] == pytest.approx(float(t.exact), rel=rel, abs=1e-320), x[i]


def test_ndtr_in_float64_is_decided_by_mpmath_alone():
    x = np.array([-38.0, -8.0, -0.5, 0.0, 0.5, 8.0])
    truths = arrays.point_truths("ndtr", "float64", x, cache=False)
    assert truths.fast_decided == 0 and truths.oracle.all()
    expected = [t.rounded for t in truth_many("ndtr", [(v,) for v in x.tolist()], "float64")]
    assert truths.rounded.tolist() == expected


def test_the_second_formula_catches_a_wrong_candidate(monkeypatch):
    """The textbook candidate skewed by 2**-30 (far past its stated 2**-48, still rounding
    to the same float32 at most points): numpy_impl's formula, the second, flags it."""
    honest = FAST_TRUTHS["sigmoid"]
    skewed = fast.FastTruth("sigmoid", lambda v: honest.evaluate(v) * (1 + 2.0 ** -30), honest.why,
                            honest.exact_zero, second=honest.second)
    monkeypatch.setitem(FAST_TRUTHS, "sigmoid", skewed)
    truths = arrays.point_truths("sigmoid", "float32", _inputs("sigmoid", "float32"), sample=0, cache=False)
    assert truths.disagreements and truths.disagreements[0]["kind"] == "second formula"


@pytest.mark.parametrize("function", sorted(fast.TEXTBOOK_FORMULAS))
def test_the_numpy_backend_is_not_judged_by_its_own_code(monkeypatch, function):
    """numpy_impl is the numpy backend's code. Skewed by 2**-30, it is caught as the second
    formula, and the truths, decided by the textbook candidate and mpmath, do not move."""
    from refact.backends import numpy_impl

    x = _inputs(function, "float32")
    before = arrays.point_truths(function, "float32", x, sample=0, cache=False)
    assert not before.disagreements
    honest = getattr(numpy_impl, function)
    monkeypatch.setattr(numpy_impl, function, lambda v: honest(v) * (1 + 2.0 ** -30))
    after = arrays.point_truths(function, "float32", x, sample=0, cache=False)
    assert after.disagreements and after.disagreements[0]["kind"] == "second formula"
    assert np.array_equal(after.rounded, before.rounded, equal_nan=True)
    assert np.array_equal(after.units, before.units, equal_nan=True)


def test_an_oracle_sample_checks_the_bound(monkeypatch):
    """Where no second formula exists (ndtr), the random sample of mpmath points does."""
    honest = FAST_TRUTHS["ndtr"]
    skewed = fast.FastTruth("ndtr", lambda v: honest.evaluate(v) * (1 + 2.0 ** -30), honest.why,
                            honest.exact_zero)
    monkeypatch.setitem(FAST_TRUTHS, "ndtr", skewed)
    truths = arrays.point_truths("ndtr", "float32", _inputs("ndtr", "float32"), sample=200, cache=False)
    assert any(d["kind"] in ("bound", "rounding") for d in truths.disagreements)


@pytest.fixture
def directory(tmp_path, monkeypatch):
    monkeypatch.setenv("REFACT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "truths"


def test_a_saved_point_set_is_read_back_whole(directory):
    bits = np.arange(0x3C00, 0x3E00, dtype=np.uint64)
    x = values_of_bits(bits, "float16")
    path, first = arrays.cached_point_truths("softplus", "float16", bits, x, directory)
    again_path, again = arrays.cached_point_truths("softplus", "float16", bits, x, directory)
    assert again_path == path
    for name, _ in arrays.FIELDS:
        assert np.array_equal(getattr(first, name), getattr(again, name), equal_nan=True), name


@pytest.mark.parametrize("damage", ["contents", "description", "kind"])
def test_a_damaged_file_is_recomputed(directory, damage):
    bits = np.arange(0x3C00, 0x3C40, dtype=np.uint64)
    x = values_of_bits(bits, "float16")
    path, first = arrays.cached_point_truths("sigmoid", "float16", bits, x, directory)
    if damage == "contents":
        data = bytearray(open(path, "rb").read())
        data[-8:] = b"\xff" * 8  # the last point's flags and more
        open(path, "wb").write(bytes(data))
    elif damage == "description":
        open(f"{path}.json", "w").write("{")
    else:
        meta = json.load(open(f"{path}.json"))
        meta["kind"] = "something else"
        json.dump(meta, open(f"{path}.json", "w"))
    assert arrays.load_point_truths(path) is None
    _, again = arrays.cached_point_truths("sigmoid", "float16", bits, x, directory)
    assert np.array_equal(again.rounded, first.rounded)
    assert arrays.load_point_truths(path) is not None  # rewritten


def test_another_point_set_gets_another_file(directory):
    bits = np.arange(0x3C00, 0x3C10, dtype=np.uint64)
    a, _ = arrays.cached_point_truths("sigmoid", "float16", bits, values_of_bits(bits, "float16"), directory)
    bits = bits + 1
    b, _ = arrays.cached_point_truths("sigmoid", "float16", bits, values_of_bits(bits, "float16"), directory)
    assert a != b


def test_units_of_a_subnormal_truth_keep_every_digit():
    fmt = get_format("float64")
    x = np.array([-740.0])
    truths = arrays.point_truths("sigmoid", fmt, x, sample=1, cache=False)
    exact = truth_many("sigmoid", [(-740.0,)], fmt)[0].exact
    import mpmath

    units = mpmath.mpf(float(truths.units[0])) + mpmath.mpf(float(truths.units_lo[0]))
    assert abs(units - mpmath.ldexp(exact, 1074)) < mpmath.mpf(2) ** -40
