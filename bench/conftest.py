"""pytest-benchmark suite for the hot paths, on both implementations.

Run:  PYTHONHASHSEED=0 python -m pytest bench --benchmark-only
(`scripts/test` builds the compiled core in place first.)"""
import types

import pytest

from corecache import _impl
from corecache._pure import lru as pure_lru


@pytest.fixture(params=["c", "py"])
def impl(request):
    if request.param == "c":
        mod = _impl.compiled_lru()
        if mod is None:
            pytest.skip(f"compiled module not available: {_impl.IMPORT_ERROR}")
    else:
        mod = pure_lru
    return types.SimpleNamespace(name=request.param, LRUCache=mod.LRUCache)
