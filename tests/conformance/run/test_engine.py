"""The array engine's verdicts: near-ties, flushes shown by their mechanism, refusals,
the worst-case search, and the real JAX float16 sigmoid."""

import math

import numpy as np
import pytest

from refact.backends.base import Convention
from refact.conformance.cases.sets import threshold_values
from refact.conformance.numbers import ruler
from refact.conformance.numbers.formats import (
    bits_of_values, get_format, ordinals_of_bits, bits_of_ordinals, values_of_bits,
)
from refact.conformance.run import engine
from refact.conformance.truth.arrays import point_truths

FLUSH = ruler.CLASS_CODES["flush_to_zero"]


def _truths(function, fmt, x):
    x = np.asarray(x, dtype=np.float64)
    return point_truths(function, fmt, x, bits=bits_of_values(x, fmt), sample=0, cache=False)


def test_a_zero_for_a_near_tie_at_the_smallest_subnormal_is_half_an_ulp_not_a_flush():
    # where the true sigmoid first rounds up to 2**-149 it is 0.50000x of it: 0 is 0.5 ULP off
    x = threshold_values("sigmoid_nonzero", "float32")[0]
    truths = _truths("sigmoid", "float32", [x, -100.0])
    assert truths.rounded.tolist() == [2.0 ** -149, truths.rounded[1]] and truths.rounded[1] > 2.0 ** -149
    judged = engine.judge("sigmoid", "float32", truths, np.zeros(2))
    assert judged.codes[0] == 0 and 0.5 < judged.ulp[0] < 0.50001
    assert judged.codes[1] == FLUSH  # 0 for 26 subnormal ulps is a flush
    summary = engine.summarise(judged)
    assert summary["classes"]["flush_to_zero"] == 1 and summary["failing"] == 1


def _flushing(function):
    return Convention(function, "flush_to_zero", "flushes subnormal results", "https://example.org",
                      lambda point: True, flushes=True)


def test_a_flush_convention_covers_a_backend_that_flushes_every_subnormal():
    x = np.linspace(-110.0, -80.0, 301)
    truths = _truths("sigmoid", "float32", x)
    y = np.where(truths.rounded < 2.0 ** -126, 0.0, truths.rounded)  # every subnormal flushed
    judged = engine.judge("sigmoid", "float32", truths, y, (_flushing("sigmoid"),))
    flushed = judged.codes == FLUSH
    assert flushed.sum() > 50 and (judged.covered[flushed] == 0).all()
    record = engine.accuracy_record("fake", "sigmoid", "float32", engine.summarise(judged), {})
    assert record["status"] == "convention" and record["severity"] == "minor"


def test_a_flush_convention_does_not_cover_zeros_beside_correct_subnormals():
    """JAX's float16 sigmoid: zeros where exp overflowed, correct subnormals next door;
    the mechanism the convention documents is not what happened."""
    x = np.linspace(-110.0, -80.0, 301)
    truths = _truths("sigmoid", "float32", x)
    y = np.where(x < -95.0, 0.0, truths.rounded)  # subnormals returned above -95
    judged = engine.judge("sigmoid", "float32", truths, y, (_flushing("sigmoid"),))
    flushed = judged.codes == FLUSH
    assert flushed.sum() > 20 and (judged.covered == -1).all()
    record = engine.accuracy_record("fake", "sigmoid", "float32", engine.summarise(judged), {})
    assert record["status"] == "fail" and record["severity"] == "major"


def test_jax_float16_sigmoid_zeros_are_failures_not_its_flush_convention():
    from refact.backends import get_backend

    backend = get_backend("jax")
    bits = np.arange(1 << 16, dtype=np.uint64)
    y64, dtype = engine.outputs_on("sigmoid", "float16", bits, backend=backend)
    truths = point_truths("sigmoid", "float16", values_of_bits(bits, "float16"), bits=bits)
    judged = engine.judge("sigmoid", "float16", truths, y64, backend.conventions_for("sigmoid"))
    x = judged.x64
    flushed = judged.codes == FLUSH
    assert dtype == "float16"
    assert flushed.sum() > 600 and x[flushed].max() == -11.09375 and x[flushed].min() < -16.5
    assert (judged.covered == -1).all()  # subnormals come back in (-11.09, -9.7]
    subnormal_out = (y64 != 0) & (np.abs(y64) < 2.0 ** -14)
    assert subnormal_out.sum() > 100 and x[subnormal_out].min() > -11.09375


def test_an_exact_zero_of_either_sign_is_correctly_rounded():
    truths = _truths("log_sigmoid", "float32", [math.inf])
    judged = engine.judge("log_sigmoid", "float32", truths, np.array([-0.0]))
    summary = engine.summarise(judged)
    assert summary["correctly_rounded"] == 1 and summary["failing"] == 0


def test_a_wrong_sign_of_zero_is_a_minor_failure():
    truths = _truths("sigmoid", "float32", [-200.0])  # truth 1.4e-87: rounds to +0
    judged = engine.judge("sigmoid", "float32", truths, np.array([-0.0]))
    record = engine.accuracy_record("fake", "sigmoid", "float32", engine.summarise(judged), {})
    assert record["classes"]["wrong_sign_zero"] == 1
    assert record["status"] == "fail" and record["severity"] == "minor"


def test_refused_inputs_are_found_by_halving():
    bits = np.arange(1000, dtype=np.uint64)
    calls = []

    def evaluate(chunk):
        calls.append(len(chunk))
        if np.isin(chunk, [17, 600]).any():
            raise ValueError("refused")
        return chunk.astype(np.float64), "float32"

    y, dtype, refused = engine.outputs_or_refusals(evaluate, bits, lambda error: True)
    assert np.flatnonzero(refused).tolist() == [17, 600] and dtype == "float32"
    assert np.isnan(y[[17, 600]]).all() and y[18] == 18.0
    assert len(calls) < 60
    with pytest.raises(ValueError):
        engine.outputs_or_refusals(evaluate, bits, lambda error: False)


def test_a_refusal_is_a_failure_only_where_a_number_is_due():
    truths = _truths("logit", "float32", [0.25, 0.5, np.nan])
    refused = np.array([True, False, True])
    y = np.array([np.nan, 0.0, np.nan])
    judged = engine.judge("logit", "float32", truths, y, refused=refused)
    summary = engine.summarise(judged)
    assert summary["refused"] == 2 and summary["failing"] == 1


def test_the_search_climbs_to_a_planted_peak():
    """A backend exact everywhere but around one input, where its error grows to 64 ULP
    at the peak: the dense sample sees only the foot, the search finds the top."""
    fmt = get_format("float32")
    peak = int(ordinals_of_bits(bits_of_values(np.array([1.75]), fmt), fmt)[0])

    def outputs(bits):
        truths = _truths("sigmoid", fmt, values_of_bits(bits, fmt))
        distance = np.abs(ordinals_of_bits(bits, fmt) - peak)
        steps = np.maximum(0, 64 - distance // 4096)
        return truths.rounded + steps * 2.0 ** -24, "float32"  # sigmoid(1.75) is in [0.5, 1)

    start = bits_of_ordinals(np.arange(peak - 60 * 4096 - 2000, peak - 60 * 4096 + 2000, 97), fmt)
    truths = _truths("sigmoid", fmt, values_of_bits(start, fmt))
    judged = engine.judge("sigmoid", fmt, truths, outputs(start)[0])
    before = float(np.nanmax(judged.ulp))
    summary, figures = engine.search_worst("sigmoid", fmt, judged, outputs, rounds=40, oracle_cache=False)
    assert before < 6 and figures["max_ulp_before"] == before
    assert figures["max_ulp_after"] == pytest.approx(64, abs=0.6)
    assert summary["max_ulp"] == figures["max_ulp_after"]


def test_the_search_stops_where_nothing_grows():
    fmt = get_format("float32")
    x = np.linspace(-5, 5, 500).astype(np.float32).astype(np.float64)
    truths = _truths("sigmoid", fmt, x)
    judged = engine.judge("sigmoid", fmt, truths, truths.rounded)

    def exact(bits):
        return _truths("sigmoid", fmt, values_of_bits(bits, fmt)).rounded, "float32"

    summary, figures = engine.search_worst("sigmoid", fmt, judged, exact)
    # A correctly rounded sample starts no search at all.
    assert summary is None and figures["rounds"] == 0 and figures["max_ulp_before"] <= 0.5

    def one_ulp_up(bits):  # faithful everywhere, never more than one ulp off
        y = _truths("sigmoid", fmt, values_of_bits(bits, fmt)).rounded
        return np.nextafter(y.astype(np.float32), np.float32(np.inf)).astype(np.float64), "float32"

    judged = engine.judge("sigmoid", fmt, truths, one_ulp_up(judged.bits)[0])
    summary, figures = engine.search_worst("sigmoid", fmt, judged, one_ulp_up)
    assert 0 < figures["rounds"] <= engine.SEARCH_ROUNDS
    assert summary["failing"] == 0 and 0.5 < figures["max_ulp_after"] < 1.5


def test_plot_series_keeps_the_failures_and_the_worst():
    x = np.linspace(-110.0, 10.0, 5000)
    truths = _truths("sigmoid", "float32", x.astype(np.float32).astype(np.float64))
    y = np.where(truths.x < -90, 0.0, truths.rounded)
    judged = engine.judge("sigmoid", "float32", truths, y)
    xs, ulps = engine.plot_series(judged, limit=400)
    assert len(xs) <= 400 and None in ulps  # class points are drawn too (no ULP figure)
    assert min(xs) < -90


def test_autograd_of_sigmoid_is_judged_on_the_saturation_band_before_its_cut_off():
    # sigma * (1 - sigma) in float32, as autograd computes it: 1 - sigma is 0 once sigma
    # rounds to 1 (x > 16.64) while the true derivative, e**-x, is a normal number
    fmt = get_format("float32")
    x = np.linspace(-20.0, 20.0, 4001).astype(np.float32)
    inputs, name, at = engine.derivative_inputs("sigmoid", fmt, bits_of_values(x.astype(np.float64), fmt))
    assert name == "sigmoid_grad" and np.array_equal(inputs, at)
    truths = _truths(name, fmt, values_of_bits(at, fmt))
    s = (1 / (1 + np.exp(-x))).astype(np.float32)
    judged = engine.judge_derivative("sigmoid", fmt, inputs, truths, (s * (np.float32(1) - s)).astype(np.float64))
    lost = judged.codes == engine.ruler.CLASS_CODES["premature_underflow"]
    assert lost.any() and np.all(judged.x64[lost] > 16.6) and not np.any(judged.x64[~lost] > 16.7)
    before = judged.ulp[(judged.x64 > 9) & (judged.x64 < 16.6)]
    assert np.nanmax(before) > 1e5  # the 10^3..10^6 ULP band the sampled check never saw


def test_a_derivative_at_minus_x_is_reported_at_the_input_it_was_taken_at():
    fmt = get_format("float64")
    x = np.array([-30.0, -2.0, 0.5, 40.0])
    inputs, name, at = engine.derivative_inputs("log_sigmoid", fmt, bits_of_values(x, fmt))
    assert name == "sigmoid" and np.array_equal(values_of_bits(at, fmt), -x)
    truths = _truths(name, fmt, values_of_bits(at, fmt))
    y = truths.rounded.copy()
    y[3] = 0.0  # lost where sigma(-40) = 4.2e-18 is due
    judged = engine.judge_derivative("log_sigmoid", fmt, inputs, truths, y)
    summary = engine.summarise(judged)
    assert summary["failing"] == 1 and summary["max_ulp"] <= 0.5
    record = engine.accuracy_record("b", "log_sigmoid", fmt, summary, {}, check="gradient", truth_of=name)
    assert record["check"] == "gradient" and record["worst"][-1]["input"] == [40.0]
    assert record["worst"][-1]["class"] == "premature_underflow" and record["severity"] == "critical"


def test_many_failures_do_not_crowd_out_the_worst_ulp_error():
    """A range with more failures than are kept still reports its largest ordinary error
    (an exhaustive tensorflow sigmoid sweep with 2e6 flushes showed none of its 6.58 ULP)."""
    failures = engine.empty_summary(0, 0, 100, 100)
    failures["worst"] = [[math.inf, b, -87.3, 0.0, 1e-38, "flush_to_zero"] for b in range(engine.WORST_KEPT + 5)]
    ordinary = engine.empty_summary(1, 100, 200, 100)
    ordinary["worst"] = [[6.58, 150, -16.6, 6e-8, 6e-8, None], [1.5, 151, -16.0, 1e-7, 1e-7, None]]
    merged = engine.merge_summaries(failures, ordinary)
    assert [w[0] for w in merged["worst"] if w[0] != math.inf] == [6.58, 1.5]
    assert sum(w[0] == math.inf for w in merged["worst"]) == engine.WORST_KEPT
