"""Reference leaks: every operation gives back the references it takes, and
a long loop of mixed operations leaves reference counts, tracked objects
and traced memory flat."""
from __future__ import annotations

import gc
import math
import random
import sys
import tracemalloc

import pytest

from conftest import FakeClock, count_objects

pytestmark = pytest.mark.leaks


class Obj:
    """A distinct, hashable object whose refcount we can watch."""

    def __init__(self, n):
        self.n = n

    def __hash__(self):
        return hash(self.n)

    def __eq__(self, other):
        return isinstance(other, Obj) and other.n == self.n


def exercise(c, key, value, clock):
    c[key] = value
    c[key]
    c.get(key)
    c.peek(key)
    key in c
    c.set(key, value, ttl=5)
    c.touch(key)
    c.ttl(key)
    c.setdefault(key, value)
    c.get_or_set(key, lambda: value)
    list(c.items())
    list(c.values())
    c.pop(key)
    c.setdefault(key, value)
    del c[key]
    c.get_or_set(key, lambda: value, ttl=1)
    clock.tick(2)
    c.expire()                      # expired: released through the callback
    c[key] = value
    c[key] = value                  # overwrite with the same objects
    c.update({key: value})
    for i in range(10):             # evicted by size
        c[("filler", i)] = i
    c[key] = value
    c.popitem()
    c.clear()
    try:
        c[key]
    except KeyError:
        pass
    try:
        c.set(key, value, ttl=-1)
    except ValueError:
        pass
    try:
        c.get_or_set(key, lambda: 1 / 0)
    except ZeroDivisionError:
        pass


def test_each_operation_gives_back_its_references(impl):
    clock = FakeClock()
    seen = []
    c = impl.LRUCache(8, clock=clock, eviction_callback=lambda k, v: seen.append(1),
                      memory_limit_mb=1, getsizeof=lambda k, v: 64)
    key, value = Obj(1), Obj(2)
    exercise(c, key, value, clock)  # warm up caches of the interpreter
    gc.collect()
    before = (sys.getrefcount(key), sys.getrefcount(value))
    for _ in range(200):
        exercise(c, key, value, clock)
    seen.clear()
    gc.collect()
    assert (sys.getrefcount(key), sys.getrefcount(value)) == before


def test_dropping_a_cache_releases_its_entries(impl):
    key, value = Obj(1), Obj(2)
    before = (sys.getrefcount(key), sys.getrefcount(value))
    c = impl.LRUCache(8, 60)
    c[key] = value
    c.set(("k", key), value, ttl=math.inf)
    del c
    gc.collect()
    assert (sys.getrefcount(key), sys.getrefcount(value)) == before


def mixed_loop(c, clock, n, seed):
    rnd = random.Random(seed)
    for i in range(n):
        k = rnd.randrange(300)
        op = rnd.randrange(10)
        if op < 4:
            c.set(k, str(k) * 3, ttl=rnd.choice([None, 0.5, 2.0]))
        elif op < 7:
            c.get(k)
        elif op == 7:
            c.pop(k, None)
        elif op == 8:
            clock.tick(0.3)
            c.expire()
        else:
            c.get_or_set(k, lambda: [k])


def test_long_mixed_loop_stays_flat(impl):
    clock = FakeClock()
    c = impl.LRUCache(128, clock=clock, eviction_callback=lambda k, v: None)
    mixed_loop(c, clock, 20_000, 1)            # reach steady state
    c.clear()
    gc.collect()
    tracemalloc.start()
    try:
        objects = count_objects(list, tuple)
        snap1 = tracemalloc.take_snapshot()
        for seed in range(2, 6):
            mixed_loop(c, clock, 20_000, seed)
            c.clear()
        gc.collect()
        snap2 = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(s.size_diff for s in snap2.compare_to(snap1, "filename"))
    # 80,000 operations: leaking one small object per operation would be MBs
    assert growth < 200_000, growth
    assert count_objects(list, tuple) - objects < 500
