"""LRUCache.getter(on_miss): get() on a hit, on_miss(key, default) on a miss;
the compiled one is called through vectorcall."""
from __future__ import annotations

import gc
import sys

import pytest

from conftest import FakeClock


def test_hit_and_miss(impl):
    c = impl.LRUCache(10)
    c["a"] = 1
    seen = []

    def on_miss(key, default):
        seen.append((key, default))
        return ("loaded", key)
    g = c.getter(on_miss)
    assert g("a") == 1 and g("a", 5) == 1
    assert g("b") == ("loaded", "b") and g("b", 5) == ("loaded", "b")
    assert g(key="c", default=7) == ("loaded", "c")
    assert seen == [("b", None), ("b", 5), ("c", 7)]
    s = c.stats()
    assert (s.hits, s.misses) == (2, 3)
    assert g.cache is c and g.on_miss is on_miss
    assert "LRUGetter" in repr(g)
    c["x"] = 0
    c["a"]
    assert list(c)[-1] == "a"
    g("x")
    assert list(c)[-1] == "x"                 # a hit makes the entry recent


def test_expired_entries_are_misses(impl):
    clock = FakeClock()
    c = impl.LRUCache(10, default_ttl=5, clock=clock)
    c["a"] = 1
    g = c.getter(lambda k, d: "miss")
    assert g("a") == 1
    clock.tick(5)
    assert g("a") == "miss" and len(c) == 0


def test_errors(impl):
    c = impl.LRUCache(10)
    with pytest.raises(TypeError, match="on_miss must be callable"):
        c.getter(None)

    def boom(key, default):
        raise KeyError(key)
    g = c.getter(boom)
    with pytest.raises(KeyError):
        g("a")
    with pytest.raises(TypeError):
        g()
    with pytest.raises(TypeError):
        g(1, 2, 3)
    with pytest.raises(TypeError):
        g(1, nope=2)

    class BadKey:
        def __hash__(self):
            raise ValueError("no hash")
    with pytest.raises(ValueError, match="no hash"):
        g(BadKey())


def test_references_are_given_back(impl):
    c = impl.LRUCache(10)
    key, value, default = object(), object(), object()
    c[key] = value
    missing = object()
    g = c.getter(lambda k, d: d)
    for _ in range(3):
        g(key), g(missing, default), g(missing)
    gc.collect()
    before = [sys.getrefcount(o) for o in (key, value, default, missing)]
    for _ in range(1000):
        g(key), g(missing, default), g(key=missing, default=default)
    gc.collect()
    assert [sys.getrefcount(o) for o in (key, value, default, missing)] == before


def test_the_getter_keeps_its_cache_alive(impl):
    g = impl.LRUCache(10).getter(lambda k, d: d)
    gc.collect()
    g.cache["a"] = 1
    assert g("a") == 1
