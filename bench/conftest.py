"""pytest-benchmark suite for the hot paths, on both implementations.

Run:  PYTHONHASHSEED=0 python -m pytest bench --benchmark-only
(`scripts/test` builds the compiled core in place first.)"""
import types

import pytest

from corecache import _impl


@pytest.fixture(params=["c", "py"])
def impl(request):
    ns = types.SimpleNamespace(name=request.param)
    for name in _impl.MODULES:
        mod = (_impl.compiled_module(name) if request.param == "c"
               else _impl.pure_module(name))
        if mod is None:
            pytest.skip(f"compiled module not available: {_impl.IMPORT_ERROR}")
        for attr in mod.__all__:
            setattr(ns, attr, getattr(mod, attr))
    return ns
