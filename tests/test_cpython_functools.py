"""CPython's own lru_cache tests, against corecache's ``lru_cache`` and
``cache``, compiled and pure.

``test.test_functools`` (the standard library's test package: pyenv's
Pythons ship it, Debian's comes in libpython3.X-testsuite) tests
functools through its ``TestLRU`` and ``TestCache`` mixins, which read
``self.module.lru_cache``; here they get a copy of functools whose
``lru_cache`` and ``cache`` are corecache's, exactly as CPython runs them
against its C and its pure-Python functools.  The tests come with the
interpreter, so each Python version runs its own.  Every CPython test is
one pytest item, its failures and subtest failures reported in full.

Without the ``test`` package the module skips, unless
CORECACHE_REQUIRE_CPYTHON_TESTS=1 (scripts/test sets it).
"""
from __future__ import annotations

import functools
import os
import types
import unittest
from typing import Any, Dict, List

import pytest

from conftest import all_impls

REQUIRE = os.environ.get("CORECACHE_REQUIRE_CPYTHON_TESTS", "") not in ("", "0")

try:
    from test import test_functools as cpython
except ImportError as exc:   # a Python without its test package
    if REQUIRE:
        raise ImportError(f"CPython's test package is required here: {exc}") from exc
    pytest.skip(f"CPython's test.test_functools is not installed: {exc}", allow_module_level=True)

MIXINS = ("TestLRU", "TestCache")

def _functools_with(impl: types.SimpleNamespace) -> types.ModuleType:
    """functools, but for corecache's lru_cache and cache."""
    mod = types.ModuleType(f"functools_corecache_{impl.name}")
    mod.__dict__.update(vars(functools))
    mod.lru_cache = impl.lru_cache   # type: ignore[attr-defined]
    mod.cache = impl.cache           # type: ignore[attr-defined]
    return mod


def _named(fn: Any, qualname: str) -> Any:
    fn.__name__ = qualname.rpartition(".")[2]
    fn.__qualname__ = qualname
    fn.__module__ = __name__
    return fn


def _make_classes(impl: types.SimpleNamespace) -> Dict[str, type]:
    """CPython's TestLRUPy/TestLRUC pattern, for one implementation.  The
    classes and cached functions are module globals under their own
    qualified names, since test_pickle pickles them by reference."""
    mod = _functools_with(impl)
    made = {}
    for mixin in MIXINS:
        base = getattr(cpython, mixin, None)
        if base is None:
            continue
        name = f"CPython{mixin}_{impl.name}"
        ns: Dict[str, Any] = {"module": mod, "__module__": __name__, "__qualname__": name,
                              "__test__": False}   # run below, not collected as a unittest class
        if mixin == "TestLRU":
            func = mod.lru_cache()(_named(lambda x, y: 3 * x + y, f"cached_func_{impl.name}"))
            globals()[func.__qualname__] = func
            ns["cached_func"] = (func,)
            ns["cached_meth"] = mod.lru_cache()(
                _named(lambda self, x, y: 3 * x + y, f"{name}.cached_meth"))
            ns["cached_staticmeth"] = staticmethod(mod.lru_cache()(
                _named(lambda x, y: 3 * x + y, f"{name}.cached_staticmeth")))
        cls = type(name, (base, unittest.TestCase), ns)
        globals()[name] = cls
        made[mixin] = cls
    return made


CLASSES = {impl.name: _make_classes(impl) for impl in all_impls()}


def _cases() -> List[Any]:
    params = []
    for impl_name, classes in CLASSES.items():
        for mixin, cls in classes.items():
            for test in sorted(unittest.TestLoader().getTestCaseNames(cls)):
                marks: List[Any] = []
                if impl_name == "c":
                    marks.append(pytest.mark.c_extension)
                params.append(pytest.param(impl_name, mixin, test, marks=marks,
                                           id=f"{impl_name}-{mixin}.{test}"))
    return params


@pytest.mark.parametrize("impl_name,mixin,test", _cases())
def test_cpython_lru_cache(impl_name: str, mixin: str, test: str) -> None:
    case = CLASSES[impl_name][mixin](test)
    result = unittest.TestResult()
    case.run(result)
    # a failed subtest is reported with the subtest's own description
    problems = [f"{t}:\n{tb}" for t, tb in result.errors + result.failures]
    if result.unexpectedSuccesses:
        problems.append("unexpected success of an expectedFailure test")
    if problems:
        pytest.fail(f"CPython's {mixin}.{test} failed against corecache's {impl_name} "
                    "lru_cache:\n" + "\n".join(problems), pytrace=False)
    whole = [why for t, why in result.skipped if t is case]
    if whole:
        pytest.skip(f"skipped by CPython's test: {whole[0]}")
