"""Choosing the implementation: CORECACHE_NO_EXTENSIONS, a failing compiled
import, and IMPLEMENTATION."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import corecache
from corecache import _impl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(code, **env):
    e = dict(os.environ)
    e.pop("CORECACHE_NO_EXTENSIONS", None)
    e.update(env)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=e, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_implementation_is_c_or_py():
    assert corecache.IMPLEMENTATION in ("c", "py")
    expected = "c" if _impl.compiled_lru() is not None and not os.environ.get(
        "CORECACHE_NO_EXTENSIONS") else "py"
    assert corecache.IMPLEMENTATION == expected


@pytest.mark.c_extension
def test_no_extensions_forces_the_pure_twin():
    if _impl.compiled_lru() is None:
        pytest.skip("no compiled module to turn off")
    code = "import corecache; print(corecache.IMPLEMENTATION, corecache.LRUCache.__module__)"
    assert run(code) == "c corecache._lru"
    assert run(code, CORECACHE_NO_EXTENSIONS="1") == "py corecache._pure.lru"
    assert run(code, CORECACHE_NO_EXTENSIONS="0") == "c corecache._lru"


def test_failing_compiled_import_falls_back_to_the_twin():
    code = """
import sys
class Block:
    def find_spec(self, name, path, target=None):
        if name == "corecache._lru":
            raise ImportError("simulated: built for another Python")
sys.meta_path.insert(0, Block())
import corecache
from corecache import _impl
c = corecache.LRUCache(2)
c.update(a=1, b=2, c=3)
print(corecache.IMPLEMENTATION, list(c), _impl.IMPORT_ERROR)
"""
    assert run(code) == "py ['b', 'c'] simulated: built for another Python"


def test_public_names():
    for name in ("LRUCache", "CacheConfig", "CacheStats", "IMPLEMENTATION", "__version__",
                 "PoolExhausted", "PoolClosed", "PoolStats", "ObjectPool", "StreamChunker",
                 "batched", "process_chunks"):
        assert hasattr(corecache, name)
    assert issubclass(corecache.PoolExhausted, TimeoutError)
