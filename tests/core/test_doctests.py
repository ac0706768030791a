"""Every example in the core's docstrings runs and prints what it says.

The modules are found with pkgutil, so a module added to refact/ is covered without
editing this file; subpackages (the backends and the conformance suite, in an installed
wheel) are not the core and are left to their own tests.
"""

import doctest
import importlib
import pkgutil

import pytest

import refact

CORE_MODULES = sorted(
    name for _, name, is_package in pkgutil.iter_modules(refact.__path__, "refact.")
    if not is_package
)


def test_the_core_modules_are_found():
    assert {"refact.elementwise", "refact.normal", "refact._inputs"} <= set(CORE_MODULES)


@pytest.mark.parametrize("name", ["refact"] + CORE_MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize("name", ["refact.elementwise", "refact.normal"])
def test_every_public_function_has_an_example(name):
    module = importlib.import_module(name)
    for public in module.__all__:
        tests = doctest.DocTestFinder().find(getattr(module, public))
        assert any(t.examples for t in tests), f"{name}.{public} has no doctest"
