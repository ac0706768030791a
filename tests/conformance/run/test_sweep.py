"""Sweeps: the fast truth's bound, the array forms of the ruler, pure-mpmath agreement on a
2**24-point float32 range, resuming a killed sweep, the Dask path, exhaustive float16."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest

from refact.conformance.numbers import formats, ruler
from refact.conformance.run import sweep
from refact.conformance.truth import catalog
from refact.conformance.truth import fast as fastpath
from refact.conformance.truth.catalog import get_function
from refact.conformance.cli import main as cli_main
from refact.conformance.truth.oracle import evaluate, truth_many

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NARROW = ("float32", "float16", "bfloat16")
# Timing and provenance fields: the only ones allowed to differ between equal sweeps.
VOLATILE = ("seconds", "wall_seconds", "executor", "resumed_shards")


def _comparable(record):
    record = json.loads(json.dumps(record))
    for key in VOLATILE:
        record["sweep"].pop(key, None)
    return record


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# --- array forms of formats and errors ------------------------------------------------


@pytest.mark.parametrize("name", NARROW)
def test_round_and_ulp_arrays_agree_with_formats(name):
    fmt = formats.get_format(name)
    rng = np.random.default_rng(7)
    values = [rng.integers(0, 2 ** 64, 6000, dtype=np.uint64).view(np.float64),
              rng.standard_normal(2000) * 2.0 ** rng.integers(-160, 130, 2000),
              np.array([0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1e308,
                        fmt.largest_finite, float(fmt.overflow_threshold), -float(fmt.overflow_threshold),
                        fmt.smallest_subnormal / 2, -fmt.smallest_subnormal / 2, fmt.smallest_normal])]
    # Exact midpoints between neighbours: the ties that rint must send to even.
    lower = np.array([formats.from_bits(int(b), fmt) for b in rng.integers(0, 2 ** fmt.width, 2000)])
    lower = lower[np.isfinite(lower)]
    upper = np.array([formats.next_up(float(v), fmt) for v in lower])
    values = np.concatenate(values + [(lower + upper) / 2])
    rounded = formats.round_to_format_array(values, fmt)
    spacing = formats.ulp_array(values, fmt)
    for value, r, u in zip(values.tolist(), rounded.tolist(), spacing.tolist()):
        assert formats.same_value(r, formats.round_to_format(value, fmt)), value.hex()
        assert formats.same_value(u, formats.ulp(value, fmt)), value.hex()


def _classify_grid(fmt):
    tiny = fmt.smallest_subnormal
    outputs = [math.nan, math.inf, -math.inf, 0.0, -0.0, tiny, -tiny, fmt.smallest_normal, 1.0,
               -1.0, fmt.largest_finite, -fmt.largest_finite]
    truths = [Fraction(0), Fraction(1, 10 ** 60), -Fraction(1, 10 ** 60), Fraction(3, 2) * Fraction(tiny),
              -Fraction(tiny), Fraction(fmt.smallest_normal), Fraction(1, 3), -Fraction(7, 5),
              Fraction(fmt.largest_finite), 2 * Fraction(fmt.largest_finite), -2 * Fraction(fmt.largest_finite),
              math.inf, -math.inf, math.nan]
    return outputs, truths


@pytest.mark.parametrize("name", NARROW)
def test_classify_array_agrees_with_errors_classify(name):
    fmt = formats.get_format(name)
    outputs, truths = _classify_grid(fmt)
    y = np.array([o for o in outputs for _ in truths])
    t = [t for _ in outputs for t in truths]
    rounded = np.array([formats.round_to_format(v, fmt) for v in t])
    exact_zero = np.array([v == 0 for v in t])
    codes = ruler.classify_array(y, rounded, fmt, exact_zero)
    for yi, ti, code in zip(y.tolist(), t, codes.tolist()):
        expected = ruler.classify(yi, ti, fmt)
        got = None if code == 0 else ruler.ALL_CLASSES[code - 1]
        assert got == expected, (yi, ti)


@pytest.mark.parametrize("name", NARROW)
def test_ulp_error_array_agrees_with_errors_ulp_error(name):
    fmt = formats.get_format(name)
    rng = np.random.default_rng(3)
    t = rng.standard_normal(3000) * 2.0 ** rng.integers(-140, 120, 3000)
    rounded = formats.round_to_format_array(t, fmt)
    steps = rng.integers(-3, 4, 3000)
    y = np.array([formats.from_ordinal(formats.ordinal(float(r), fmt) + int(k), fmt) if math.isfinite(r) else r
                  for r, k in zip(rounded, steps)])
    specials_y = np.array([math.nan, math.inf, -math.inf, 1.0, math.nan])
    specials_t = np.array([math.nan, math.inf, math.inf, math.inf, 1.0])
    y = np.concatenate([y, specials_y])
    t = np.concatenate([t, specials_t])
    got = ruler.ulp_error_array(y, t, formats.round_to_format_array(t, fmt), fmt)
    for yi, ti, g in zip(y.tolist(), t.tolist(), got.tolist()):
        expected = ruler.ulp_error(yi, ti, fmt)
        if math.isinf(expected) or expected == 0:
            assert g == expected, (yi, ti)
        else:
            assert g == pytest.approx(expected, rel=2 ** -50), (yi, ti)


# --- the fast truth's stated bound, against mpmath ------------------------------------------


@pytest.mark.parametrize("function", sorted(catalog.FAST_TRUTHS))
def test_fast_truth_exact_zeros_are_the_catalogs(function):
    spec = get_function(function)
    x = np.concatenate([formats.values_of_bits(np.arange(1 << 16), "float16"),
                        [0.5, 1.0, 3.0, -3.0, 1e30, -1e30, math.inf, -math.inf, -2.9999998]])
    declared = catalog.fast_truth_of(function).exact_zero(x)
    for value, zero in zip(x.tolist(), declared.tolist()):
        known = spec.exact_values((value,))
        exact = None if known is None else known[0]
        assert zero == (exact is not None and exact == 0), (function, value)

EDGES = {
    "sigmoid": [-745.0, -744.5, -103.97, -88.7, -16.6, -1e-30, 16.6, 17.3, 36.7, 88.7],
    "sigmoid_grad": [-745.0, -104.0, -17.0, 1e-30, 20.0, 37.0, 88.0, 745.0],
    "log_sigmoid": [-88.7, -1e-30, 1e-8, 16.6, 103.9, 745.0, 1e30],
    "softplus": [-745.0, -103.9, -16.6, -1e-30, 1e-8, 16.6, 88.7, 1e30],
    "logit": [2.0 ** -149, 1e-30, 0.25, 0.5 - 2.0 ** -25, 0.5 + 2.0 ** -24, 0.75, 1 - 2.0 ** -24],
    "hard_sigmoid": [-3.0, -2.999999761581421, 3 * 2.0 ** -24, 1e-30, 2.9999997615814],
    "ndtr": [-38.5, -37.5, -26.5, -8.0, -0.6629, -0.66, 0.66, 8.3, 9.0],
    "probit": [2.0 ** -149, 1e-40, 1e-10, 0.02425, 0.5 - 2.0 ** -25, 0.5 + 2.0 ** -24, 0.97575, 1 - 2.0 ** -24],
}


def _assert_within_bound(function, x):
    """|T - t64| <= RELATIVE_BOUND |t64| + ABSOLUTE_BOUND, T from mpmath at 320 bits (or
    the catalog's exact value), and t64 has T's sign; a zero candidate stands for a truth
    of its sign below float64's smallest subnormal; NaN and ±inf candidates are exact."""
    import mpmath

    t64 = float(catalog.fast_truth_of(function).evaluate(np.array([x]))[0])
    known = get_function(function).exact_values((x,))
    exact = None if known is None else known[0]
    if exact is not None and not isinstance(exact, Fraction):
        assert formats.same_value(t64, float(exact)), (function, x, t64, exact)  # NaN or ±inf
        return
    ctx = mpmath.mp.clone()
    ctx.prec = 320
    truth = evaluate(function, (x,), 320) if exact is None else ctx.mpf(exact.numerator) / exact.denominator
    if t64 == 0:
        assert truth == 0 or (abs(truth) < ctx.ldexp(1, -1074)
                              and (truth < 0) == (math.copysign(1.0, t64) < 0)), (function, x)
        return
    assert math.isfinite(t64), (function, x, t64)
    assert truth == 0 or (truth < 0) == (t64 < 0), (function, x, t64)
    error = abs(ctx.convert(truth) - t64)
    bound = fastpath.RELATIVE_BOUND * abs(ctx.convert(t64)) + fastpath.ABSOLUTE_BOUND
    assert error <= bound, (function, x.hex(), mpmath.nstr(error / abs(truth), 5))


@pytest.mark.parametrize("function", sorted(catalog.FAST_TRUTHS))
def test_fast_truth_bound_at_edges(function):
    for x in EDGES[function]:
        for value in (x, -x) if function not in ("logit", "probit") else (x, 1 - x):
            _assert_within_bound(function, float(np.float32(value)))


def _inputs_of(function):
    if function in ("logit", "probit"):
        probability = st.floats(0, 1, width=32)
        tiny = st.integers(-149, -1).map(lambda e: float(np.float32(2.0 ** e)))
        return st.one_of(probability, tiny, st.floats(width=32))
    return st.one_of(st.floats(width=32), st.floats(-120, 120, width=32),
                     st.floats(width=16).map(float))


@pytest.mark.parametrize("function", sorted(catalog.FAST_TRUTHS))
def test_fast_truth_bound_holds_against_mpmath(function):
    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_inputs_of(function))
    def check(x):
        _assert_within_bound(function, x)

    check()


# --- a float32 range of 2**24 points against pure mpmath ------------------------------------

RANGE_LO, RANGE_HI = 0xC1000000, 0xC1FFFFFF  # [-32, -8): sigmoid's left tail, ~1e-14 .. 3e-4


def _pure_mpmath(function, fmt, x_values, y_values):
    """Rounded truth, class and ULP error of each point from mpmath alone (no cache, no
    golden data, no fast path)."""
    truths = truth_many(function, [(x,) for x in x_values], fmt, cache=False, golden=False)
    out = []
    for truth, y in zip(truths, y_values):
        assert truth.decided
        cls = ruler.classify(y, truth.exact, fmt)
        out.append((truth.rounded, cls, None if cls else ruler.ulp_error(y, truth.exact, fmt)))
    return out


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_float32_range_agrees_with_pure_mpmath(backend):
    if backend == "torch" and not _has("torch"):
        pytest.skip("torch is not installed")
    # numpy through the local process pool, torch in this process (its import in two
    # spawned workers would cost more than the sweep; the pool path runs with numpy).
    workers = 2 if backend == "numpy" else 1
    record = sweep.sweep_record("sigmoid", backend, "float32", RANGE_LO, RANGE_HI, workers=workers)
    assert record["points"] == 1 << 24
    assert record["status"] in ("pass", "fail"), record["message"]
    assert record["sweep"]["disagreements"] == [] and record["sweep"]["backend_errors"] == []
    assert record["sweep"]["shards"] == 16 and record["classes"]["undecided"] == 0
    histogram = record["sweep"]["histogram"]["counts"]
    assert sum(histogram) + sum(record["classes"].values()) == record["points"]

    # Re-judge three shards point by point here (the same computation the workers ran),
    # check they summarise to what the record says, and compare a random sample with
    # mpmath alone: same rounded truths, same classes, same ULP ruler.
    worst_bits = int(record["worst"][0]["input_bits"][0], 16)
    shard_size = sweep.DEFAULT_SHARD_SIZE["float32"]
    shards = sorted({0, 9, (worst_bits - RANGE_LO) // shard_size})
    rng = np.random.default_rng(11)
    for index in shards:
        start = RANGE_LO + index * shard_size
        task = sweep.ShardTask("sigmoid", backend, "cpu", "float32", index, start, start + shard_size,
                               0, sweep.DEFAULT_SAMPLE)
        points = sweep.evaluate_shard(task)
        picked = rng.choice(shard_size, 60, replace=False)
        if start <= worst_bits < start + shard_size:
            picked = np.append(picked, worst_bits - start)
            assert points.ulp[worst_bits - start] == record["worst"][0]["ulp"]
        reference = _pure_mpmath("sigmoid", "float32", points.x64[picked].tolist(), points.y64[picked].tolist())
        for i, (rounded, cls, ulp) in zip(picked.tolist(), reference):
            assert formats.same_value(float(points.rounded[i]), rounded)
            code = points.codes[i]
            assert (None if code == 0 else ruler.ALL_CLASSES[code - 1]) == cls
            if ulp is not None:
                # The fast path's ULP uses the float64 candidate: good to 2**-48 * 2**24.
                assert abs(points.ulp[i] - ulp) <= 1e-6
    assert record["max_ulp"] == pytest.approx(
        _pure_mpmath("sigmoid", "float32", [record["worst"][0]["input"][0]], [record["worst"][0]["output"]])[0][2],
        abs=1e-6)


# --- checkpoints: a killed sweep resumes --------------------------------------------------------


def test_killed_sweep_resumes_without_losing_or_repeating_a_shard(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    lo, hi, shard = 0x3E000000, 0x3E3FFFFF, 1 << 16  # 64 shards of float32 [0.125, 0.1875)
    command = [sys.executable, "-m", "refact.conformance.cli", "sweep", "--function", "sigmoid",
               "--backend", "numpy", "--format", "float32", "--range", f"{lo:#x}:{hi:#x}",
               "--workers", "1", "--shard-size", str(shard), "--checkpoint", str(checkpoint)]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if len(list(checkpoint.glob("*/shard-*.json"))) >= 4:
                break
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    saved = {path: path.stat().st_mtime_ns for path in checkpoint.glob("*/shard-*.json")}
    assert 4 <= len(saved) < 64, "the sweep was not killed mid-run"

    resumed = sweep.sweep_record("sigmoid", "numpy", "float32", lo, hi, shard_size=shard, checkpoint=checkpoint)
    assert resumed["sweep"]["resumed_shards"] == len(saved)
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in saved.items())  # none redone
    assert len(list(checkpoint.glob("*/shard-*.json"))) == 64
    assert resumed["points"] == hi - lo + 1

    uninterrupted = sweep.sweep_record("sigmoid", "numpy", "float32", lo, hi, shard_size=shard)
    assert _comparable(resumed) == _comparable(uninterrupted)
    again = sweep.sweep_record("sigmoid", "numpy", "float32", lo, hi, shard_size=shard, checkpoint=checkpoint)
    assert again["sweep"]["resumed_shards"] == 64 and _comparable(again) == _comparable(resumed)


# --- executors: one shard function, the same record ----------------------------------------------


def test_dask_local_cluster_gives_the_same_record_as_the_local_pool():
    distributed = pytest.importorskip("distributed")
    lo, hi, shard = 0xBF800000, 0xBF9FFFFF, 1 << 19  # float32 [-1.25, -1): 4 shards
    pool = sweep.sweep_record("log_sigmoid", "numpy", "float32", lo, hi, shard_size=shard, workers=2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        on_dask = sweep.sweep_record("log_sigmoid", "numpy", "float32", lo, hi, shard_size=shard,
                                     executor=client)
    assert on_dask["sweep"]["executor"].startswith("dask")
    assert pool["sweep"]["executor"].startswith("process-pool")
    assert _comparable(on_dask) == _comparable(pool)


def test_results_do_not_depend_on_how_the_range_is_sharded():
    whole = sweep.sweep_record("softplus", "numpy", "bfloat16", shard_size=1 << 16, sample=0)
    pieces = sweep.sweep_record("softplus", "numpy", "bfloat16", shard_size=1000, sample=0)
    for record in (whole, pieces):
        for key in ("shards", "shard_size", "oracle_points"):
            record["sweep"].pop(key)
    # The sum behind mean_ulp is added up in a different order: equal to rounding.
    assert whole.pop("mean_ulp") == pytest.approx(pieces.pop("mean_ulp"), rel=1e-12)
    assert _comparable(whole) == _comparable(pieces)


def test_no_more_worker_processes_than_shards():
    # --workers 64 on a one-shard range started 64 processes, each importing the framework
    record = sweep.sweep_record("sigmoid", "numpy", "float16", 0x3C00, 0x3CFF, workers=64, sample=0)
    assert record["sweep"]["shards"] == 1 and record["sweep"]["executor"] == "in-process"


# --- 16-bit formats, exhaustively ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_exhaustive_16_bit_numpy_is_correctly_rounded(name):
    if name == "bfloat16" and not _has("ml_dtypes"):
        pytest.skip("bfloat16 needs ml_dtypes")
    for function in catalog.FAST_TRUTHS:
        record = sweep.sweep_record(function, "numpy", name)
        assert record["points"] == 65536 and record["sweep"]["exhaustive"]
        assert record["status"] == "pass", record["message"]
        assert record["max_ulp"] <= 0.5 and record["correctly_rounded"] == 1.0, (function, record["worst"][:1])
        assert not any(record["classes"].values())


# --- loud disagreement ----------------------------------------------------------------------------


def test_a_fast_truth_outside_its_bound_is_reported_as_an_error(monkeypatch):
    honest = catalog.FAST_TRUTHS["sigmoid"]
    skewed = fastpath.FastTruth("sigmoid", lambda x: honest.evaluate(x) * (1 + 2.0 ** -30), honest.why,
                                honest.exact_zero)
    monkeypatch.setitem(catalog.FAST_TRUTHS, "sigmoid", skewed)
    record = sweep.sweep_record("sigmoid", "numpy", "float16", 0x3C00, 0x3FFF)
    assert record["status"] == "error"
    assert "REFACT BUG" in record["message"] and "sigmoid(0x3" in record["message"]
    assert record["sweep"]["disagreements"]


# --- the command ------------------------------------------------------------------------------------


@pytest.mark.parametrize("arguments", [
    ["--format", "float64", "--exhaustive"],
    ["--format", "float80", "--exhaustive"],
    ["--format", "float16", "--range", "0x10:0x5"],
    ["--format", "float16", "--range", "0x0:0x1ffff"],
    ["--format", "float16", "--range", "zero:0x10"],
    ["--format", "float16", "--range", "0x10"],
    ["--format", "float16"],
    ["--format", "float16", "--exhaustive", "--workers", "0"],
    ["--format", "float16", "--exhaustive", "--shard-size", "0"],
])
def test_bad_usage_exits_with_2(arguments, capsys):
    assert cli_main(["sweep", "--function", "sigmoid", "--backend", "numpy", *arguments]) == 2
    assert "refact sweep:" in capsys.readouterr().err


@pytest.mark.parametrize("function, backend", [("softmax", "numpy"), ("no_such_function", "numpy"),
                                               ("sigmoid", "no_such_backend")])
def test_unknown_or_unsweepable_names_exit_with_2(function, backend):
    assert cli_main(["sweep", "--function", function, "--backend", backend, "--format", "float16",
                     "--exhaustive"]) == 2


def test_exhaustive_records_for_the_runner():
    records = sweep.exhaustive_records("numpy", functions=["sigmoid", "probit"])
    assert [(r["function"], r["format"]) for r in records] == [
        ("sigmoid", "float16"), ("sigmoid", "bfloat16"), ("probit", "float16"), ("probit", "bfloat16")]
    assert all(r["status"] == "pass" and r["points"] == 65536 for r in records)
    from refact.conformance.report.writers import validate

    validate(sweep.sweep_report(records, [sweep.describe_backend("numpy")]))


def test_command_writes_a_valid_report(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    status = cli_main(["sweep", "--function", "logit", "--backend", "numpy", "--format", "float16",
                       "--range", "0x3800:0x3bff", "--workers", "1", "--json", str(out)])
    assert status == 0
    assert "logit on numpy in float16: pass" in capsys.readouterr().out
    from refact.conformance.report.writers import load_report, validate

    report = load_report(out)
    validate(report)
    (record,) = report["results"]
    assert record["points"] == 0x400 and record["sweep"]["range"] == ["0x3800", "0x3bff"]
