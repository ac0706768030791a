"""Variants of the built-in backends: names, construction, and that each variant runs
the way it says (compiled, eager, on its engine), with real frameworks."""

import pathlib

import pytest

import refact.backends as rb
from refact.conformance.run.isolation import Worker
from refact.conformance.run.runner import run_conformance

FAKES = pathlib.Path(__file__).parents[1] / "conformance" / "fakes"


def test_name_syntax():
    assert rb.split_variant("torch[compile]") == ("torch", "compile")
    assert rb.split_variant("torch") == ("torch", None)
    assert rb.variant_name("keras", "jax") == "keras[jax]" and rb.variant_name("numpy", None) == "numpy"
    for bad in ("torch[]", "torch[compile", "torch]", "[jit]", "torch[a]b", "torch[[a]]"):
        with pytest.raises(ValueError, match="is not of the form"):
            rb.split_variant(bad)


def test_every_builtin_variant_is_named_and_a_plain_name_is_the_default():
    assert rb.variant_names("torch") == ["torch[eager]", "torch[compile]"]
    assert rb.variant_names("jax") == ["jax[jit]", "jax[eager]"]
    assert rb.variant_names("tensorflow") == ["tensorflow[eager]", "tensorflow[xla]"]
    assert rb.variant_names("keras") == ["keras[tensorflow]", "keras[jax]", "keras[torch]", "keras[numpy]"]
    assert rb.variant_names("numpy") == ["numpy"]
    assert rb.target_of("torch[compile]") == rb.target_of("torch")
    with pytest.raises(ValueError, match=r"backend 'torch' has no variant 'xla' \(variants: eager, compile\)"):
        rb.target_of("torch[xla]")
    with pytest.raises(ValueError, match="has no variant 'jit'.*it runs one way"):
        rb.get_backend("numpy[jit]")


def test_the_longest_variants_to_check_are_started_first():
    from refact.conformance.run.runner import _backend_names, _slowest_first

    # each built-in variant has a measured cost, a default name reads the default's
    for name in rb.BUILTIN:
        cls = rb.backend_class(name)
        for variant in cls.variants or [None]:
            assert cls.expected_seconds(variant) > 0, (name, variant)
    assert rb.backend_class("torch").expected_seconds(None) == rb.backend_class("torch").expected_seconds("eager")
    order = sorted(_backend_names(None), key=_slowest_first)
    assert order.index("keras[jax]") < order.index("keras[numpy]")
    assert order.index("jax[eager]") < order.index("jax[jit]") < order.index("scipy")
    assert order.index("reference") < order.index("numpy")


@pytest.mark.parametrize("variant", ["jit", "eager"])
def test_jax_gradients_of_a_promoting_function_are_in_the_input_dtype(variant):
    # keras' cross-entropy on jax returns float64 for float32 logits; the cotangent must
    # be of the output's dtype (it was the input's, and jax.vjp raised)
    backend = rb.get_backend(f"jax[{variant}]")
    jnp = backend.framework.numpy
    x = jnp.asarray([1.0, -2.0], dtype=jnp.float32)
    grad = backend.vjp(lambda a: a.astype(jnp.float64) * 3.0, (x,), jnp.ones_like(x), {})
    assert grad.dtype == jnp.float32 and grad.tolist() == [3.0, 3.0]


def test_the_worker_environment_follows_the_variant(tmp_path):
    assert rb.worker_environment("torch[compile]", str(tmp_path)) == {
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "torchinductor")}
    assert rb.worker_environment("torch", str(tmp_path)) == {}
    # keras on jax keeps JAX's compilation cache, as the jax backend does
    assert rb.worker_environment("keras[jax]", str(tmp_path)) == rb.worker_environment("jax", str(tmp_path))


def test_jax_variants_run_jitted_and_op_by_op():
    pytest.importorskip("jax")
    jitted, eager = rb.get_backend("jax"), rb.get_backend("jax[eager]")
    assert (jitted.variant, eager.variant) == ("jit", "eager")
    # the jit variant wraps the public function in jax.jit; eager calls it as it is
    assert rb.base.wrapping_chain(jitted.binding("logit").call)[1] is eager.binding("logit").call
    x = jitted.asarray([-3.0, 0.0, 3.0], "float64")
    assert jitted.tolist(jitted.call("sigmoid", x)) == eager.tolist(eager.call("sigmoid", eager.asarray([-3.0, 0.0, 3.0], "float64")))


def test_tensorflow_xla_compiles_each_call_once_per_shape():
    pytest.importorskip("tensorflow")
    xla = rb.get_backend("tensorflow[xla]")
    call = xla.binding("sigmoid").call
    x = xla.asarray([-1.0, 0.0, 1.0], "float32")
    for _ in range(3):
        assert xla.tolist(xla.call("sigmoid", x))[0][1] == 0.5
    assert call.experimental_get_tracing_count() == 1  # traced (and compiled) once, reused
    assert not hasattr(rb.get_backend("tensorflow").binding("sigmoid").call,
                       "experimental_get_tracing_count")


def test_torch_compile_runs_or_says_why_not():
    pytest.importorskip("torch")
    try:
        compiled = rb.get_backend("torch[compile]")
    except rb.BackendUnavailable as error:
        assert "C++ compiler" in str(error)
        return
    call = compiled.binding("sigmoid").call
    assert hasattr(call, "_torchdynamo_orig_callable")  # what torch.compile returns
    x = compiled.asarray([-2.0, 0.0, 2.0], "float32")
    values, fmt = compiled.tolist(compiled.call("sigmoid", x))
    assert fmt == "float32" and values[1] == 0.5


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_keras_runs_on_the_engine_it_names(engine, monkeypatch):
    pytest.importorskip("keras")
    pytest.importorskip(engine)
    monkeypatch.syspath_prepend(str(FAKES))
    import refact_test_backends

    with Worker(f"keras[{engine}]", timeout=120) as worker:
        info, _ = worker.run({"op": "info"})
        running, _ = worker.run({"op": "task", "task": refact_test_backends.keras_engine,
                                 "args": (), "format": None})
    assert running == engine and info["variant"] == engine
    assert ("sigmoid_grad" in info["functions"]) == (engine != "numpy")


def test_jax_variants_are_columns_of_one_run():
    pytest.importorskip("jax")
    report = run_conformance(["jax", "jax[eager]"], ["sigmoid"], ["float32"], ["accuracy"], level="quick")
    assert [(e["name"], e["variant"], e["available"]) for e in report["backends"]] == [
        ("jax", "jit", True), ("jax", "eager", True)]
    assert sorted((r["backend"], r["variant"]) for r in report["results"]) == [
        ("jax", "eager"), ("jax", "jit")]
    assert all(r["max_ulp"] is not None for r in report["results"])
