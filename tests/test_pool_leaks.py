"""ObjectPool reference leaks: every operation gives back the references it
takes (pooled objects, callables, the exceptions it raises), dropping a
pool releases what it holds, and a long loop of mixed operations leaves
tracked objects and traced memory flat."""
from __future__ import annotations

import gc
import random
import sys
import threading
import tracemalloc

import pytest

from conftest import FakeClock, count_objects

pytestmark = pytest.mark.leaks


class Obj:
    def __init__(self):
        self.bad = False


def exercise(pool, clock, stranger):
    with pool.acquire() as o:
        pass
    try:
        with pool.acquire() as o:
            raise KeyError(o)
    except KeyError:
        pass
    a = pool.get()
    b = pool.get(timeout=0)
    try:
        pool.get(timeout=0)
    except Exception:
        pass
    try:
        pool.get(timeout=0.0001)
    except Exception:
        pass
    pool.put(a)
    try:
        pool.put(a)
    except ValueError:
        pass
    try:
        pool.put(stranger)
    except ValueError:
        pass
    b.bad = True
    pool.put(b)                 # validate fails: discarded
    clock.tick(10)
    pool.expire()
    pool.prefill(2)
    pool.shrink(1)
    pool.clear()
    pool.stats()
    repr(pool)


def test_each_operation_gives_back_its_references(impl):
    clock = FakeClock()
    factory = Obj
    reset = lambda o: None  # noqa: E731
    validate = lambda o: not o.bad  # noqa: E731
    pool = impl.ObjectPool(factory, 2, reset=reset, validate=validate, idle_timeout=5,
                           clock=clock)
    stranger = Obj()
    exercise(pool, clock, stranger)
    gc.collect()
    watched = (factory, reset, validate, stranger, clock)
    before = [sys.getrefcount(x) for x in watched]
    for _ in range(200):
        exercise(pool, clock, stranger)
    gc.collect()
    assert [sys.getrefcount(x) for x in watched] == before


def test_a_pooled_object_is_released_when_dropped(impl):
    import weakref
    pool = impl.ObjectPool(Obj, 3, validate=lambda o: not o.bad)
    a, b, c = pool.get(), pool.get(), pool.get()
    refs = [weakref.ref(x) for x in (a, b, c)]
    a.bad = True
    pool.put(a)          # discarded
    pool.put(b)
    pool.shrink(1)       # b dropped
    del a, b
    gc.collect()
    assert refs[0]() is None and refs[1]() is None
    held = sys.getrefcount(c)
    pool.put(c)
    assert pool.get() is c
    assert sys.getrefcount(c) == held
    pool.put(c)
    pool.close()
    del c
    gc.collect()
    assert refs[2]() is None


def test_dropping_a_pool_releases_its_objects(impl):
    import weakref
    pool = impl.ObjectPool(Obj, 3, min_size=2)
    lent = pool.get()
    refs = [weakref.ref(o) for o in pool._idle_objects()] + [weakref.ref(lent)]
    before = sys.getrefcount(lent)
    del pool
    gc.collect()
    assert all(r() is None for r in refs[:-1])
    assert sys.getrefcount(lent) == before - 1


def test_waiting_threads_leave_nothing_behind(impl):
    pool = impl.ObjectPool(Obj, 1)
    held = pool.get()

    def waiter():
        try:
            pool.get(timeout=0.001)
        except Exception:
            pass

    def rounds(n):
        for _ in range(n):
            threads = [threading.Thread(target=waiter) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    rounds(5)       # warm up
    gc.collect()
    objects = count_objects(threading.Thread, list, dict)
    rounds(20)
    gc.collect()
    assert count_objects(threading.Thread, list, dict) - objects < 30
    pool.put(held)
    assert pool.stats().timeouts == 100


def mixed_loop(pool, clock, n, seed):
    rnd = random.Random(seed)
    lent = []
    for _ in range(n):
        op = rnd.randrange(8)
        if op < 3:
            try:
                lent.append(pool.get(timeout=0))
            except Exception:
                pass
        elif op < 5 and lent:
            o = lent.pop(rnd.randrange(len(lent)))
            o.bad = rnd.random() < 0.2
            pool.put(o)
        elif op == 5:
            with pool.acquire(timeout=0.0001) if pool.stats().idle else pool.acquire(timeout=0):
                pass
        elif op == 6:
            clock.tick(rnd.choice([0.5, 3]))
            pool.expire()
        else:
            pool.shrink(rnd.randrange(3))
    for o in lent:
        pool.put(o)


def test_long_mixed_loop_stays_flat(impl):
    clock = FakeClock()
    pool = impl.ObjectPool(Obj, 8, min_size=2, validate=lambda o: not o.bad, idle_timeout=2,
                           clock=clock)

    def run(seed):
        try:
            mixed_loop(pool, clock, 5_000, seed)
        except Exception:
            pass
    run(1)
    pool.clear()
    gc.collect()
    tracemalloc.start()
    try:
        objects = count_objects(list, dict)
        snap1 = tracemalloc.take_snapshot()
        for seed in range(2, 6):
            run(seed)
            pool.clear()
        gc.collect()
        snap2 = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(s.size_diff for s in snap2.compare_to(snap1, "filename"))
    assert growth < 100_000, growth
    assert count_objects(list, dict) - objects < 200
