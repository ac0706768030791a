"""The dense sets: their size, where their points lie, and that they are reproducible."""

import numpy as np
import pytest

from refact.conformance.cases import dense
from refact.conformance.cases.sets import threshold_names, threshold_values
from refact.conformance.numbers.formats import bits_of_values, ordinal, ordinals_of_bits, values_of_bits
from refact.conformance.truth.catalog import FAST_TRUTHS

ELEMENTWISE = sorted(FAST_TRUTHS)


@pytest.mark.parametrize("fmt", ["float32", "float64"])
@pytest.mark.parametrize("function", ELEMENTWISE)
def test_a_wide_format_gets_the_promised_number_of_distinct_sorted_points(function, fmt):
    bits = dense.dense_bits(function, fmt)
    assert len(bits) >= dense.DENSE_POINTS
    assert np.all(np.diff(bits.astype(np.float64)) > 0) or np.all(np.diff(bits) > 0)
    assert np.isnan(values_of_bits(bits, fmt)).sum() == 1


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_a_16_bit_format_is_judged_whole(fmt):
    assert np.array_equal(dense.dense_bits("sigmoid", fmt), np.arange(1 << 16))
    assert len(dense.dense_bits("sigmoid", fmt, size=4096)) >= 4096  # the quick level samples


@pytest.mark.parametrize("fmt", ["float32", "float64"])
@pytest.mark.parametrize("function", ELEMENTWISE)
def test_every_threshold_has_its_ulp_neighbourhood(function, fmt):
    bits = dense.dense_bits(function, fmt)
    x = values_of_bits(bits, fmt)
    finite = ordinals_of_bits(bits[np.isfinite(x)], fmt)
    for name in threshold_names(function):
        for value in threshold_values(name, fmt):
            if not np.isfinite(value) or (function in ("logit", "probit") and not 0 <= value <= 1):
                continue
            centre = ordinal(value, fmt)
            ordinals = np.array([centre + k for k in range(-dense.NEIGHBOURS, dense.NEIGHBOURS + 1)])
            near = np.abs(finite - centre) <= dense.NEIGHBOURS
            # every value within 256 ulps (inside the domain and the finite range) is there
            assert near.sum() >= min(len(ordinals), 2 * dense.NEIGHBOURS + 1) - dense.NEIGHBOURS, (name, value)


def test_the_active_region_is_dense_by_value():
    x = values_of_bits(dense.dense_bits("sigmoid", "float32"), "float32")
    lo, hi = dense.active_region("sigmoid", "float32")
    assert -131 < lo < -104 and 104 < hi < 131
    counts, _ = np.histogram(x[(x >= -100) & (x <= 100)], bins=200, range=(-100, 100))
    assert counts.min() >= 200  # every unit interval of |x| <= 100 holds hundreds of points
    assert ((x > 9) & (x < 17)).sum() > 1000  # the saturation band before autograd's cut-off


def test_a_conventions_edge_is_sampled_densely_on_both_sides():
    assert 20.0 in dense.regime_edges("softplus")  # torch's documented threshold
    for fmt in ("float32", "float64"):
        x = values_of_bits(dense.dense_bits("softplus", fmt), fmt)
        centre = ordinal(20.0, fmt)
        for side in (-1, 1):
            steps = [ordinal(v, fmt) - centre for v in x[(x > 19) & (x < 21)]]
            assert sum(1 for s in steps if 0 < side * s <= dense.NEIGHBOURS) == dense.NEIGHBOURS
        assert ((x > 20) & (x < 33)).sum() > 500


@pytest.mark.parametrize("function", ["logit", "probit"])
def test_a_probability_set_covers_the_unit_interval_in_ulp_space(function):
    for fmt in ("float32", "float64"):
        x = values_of_bits(dense.dense_bits(function, fmt), fmt)
        finite = x[~np.isnan(x)]
        assert finite.min() >= 0 and finite.max() <= 1  # outside: the special-value check's
        assert (finite < 1e-30).sum() > 5000
        # next to 1 every decade of 1 - p down to the ulp holds its share
        spacing = 2.0 ** -24 if fmt == "float32" else 2.0 ** -53
        for decade in range(1, 7 if fmt == "float32" else 15):
            near = (1 - finite < 10.0 ** -decade) & (1 - finite >= 10.0 ** -(decade + 1))
            representable = 0.9 * 10.0 ** -decade / spacing
            assert near.sum() >= min(300, representable / 2), (fmt, decade)


def test_sets_are_reproducible_and_seeded():
    a = dense.dense_bits("softplus", "float32", seed=0)
    assert np.array_equal(a, dense.dense_bits("softplus", "float32", seed=0))
    assert not np.array_equal(a, dense.dense_bits("softplus", "float32", seed=1))


def test_extra_points_join_the_set():
    extra = bits_of_values(np.array([-10000.0, 10000.0]), "float64")
    bits = dense.dense_bits("sigmoid", "float64", extra=extra)
    assert set(extra.tolist()) <= set(bits.tolist())


def test_a_row_function_has_no_dense_set():
    with pytest.raises(ValueError, match="elementwise"):
        dense.dense_bits("softmax", "float32")


def test_the_core_holds_half_the_set_by_value():
    """Half of a set lies uniform in value over the central eighth of the active region,
    where narrow error peaks hide (tensorflow's float32 sigmoid: 6.58 ULP at -4.8508)."""
    bits = dense.dense_bits("sigmoid", "float32")
    assert len(bits) == 8 * dense.DENSE_POINTS
    lo, hi = dense.core_region("sigmoid", "float32")
    assert 16 < hi == -lo < 16.5  # 130 / 8: the outermost threshold, a quarter past
    x = values_of_bits(bits, "float32")
    inside = (x >= lo) & (x <= hi)
    assert np.count_nonzero(inside) >= len(bits) // 2
    # uniform by value: each unit of the core holds about its share
    counts = np.histogram(x[inside], bins=32, range=(lo, hi))[0]
    assert counts.min() > 0.9 * np.median(counts)  # (the bins next to 0 hold the ulp-space points too)
