"""lru_cache beyond functools: async functions, cached_method; and the
decorator's reentrancy and reference leaks."""
from __future__ import annotations

import asyncio
import gc
import inspect
import pickle
import sys
import weakref

import pytest

from conftest import FakeClock


# ---- async def ----------------------------------------------------------------------------------

def run(coro):
    return asyncio.run(coro)


def test_async_caches_the_awaited_result(impl):
    calls = []

    @impl.lru_cache(maxsize=8)
    async def fetch(x):
        calls.append(x)
        await asyncio.sleep(0)
        return {"x": x}

    assert inspect.iscoroutinefunction(fetch)

    async def main():
        a = await fetch(1)
        b = await fetch(1)
        return a, b
    a, b = run(main())
    assert a == {"x": 1} and a is b            # the value, never a coroutine
    assert calls == [1]
    assert tuple(fetch.cache_info()) == (1, 1, 8, 1)
    fetch.cache_clear()
    assert tuple(fetch.cache_info()) == (0, 0, 8, 0)


def test_async_concurrent_awaiters_share_one_computation(impl):
    calls = []

    @impl.lru_cache
    async def slow(x):
        calls.append(x)
        await asyncio.sleep(0.05)
        return x * 2

    async def main():
        return await asyncio.gather(*(slow(3) for _ in range(10)), slow(4))
    assert run(main()) == [6] * 10 + [8]
    assert sorted(calls) == [3, 4]
    assert slow.cache_info().currsize == 2


def test_async_exceptions_are_not_cached_and_reach_every_awaiter(impl):
    calls = []

    @impl.lru_cache
    async def flaky(x):
        calls.append(x)
        await asyncio.sleep(0.01)
        if len(calls) == 1:
            raise ConnectionError("down")
        return x

    async def main():
        return await asyncio.gather(flaky(1), flaky(1), return_exceptions=True)
    first = run(main())
    assert all(isinstance(r, ConnectionError) for r in first) and calls == [1]
    assert flaky.cache_info().currsize == 0
    assert run(flaky(1)) == 1 and calls == [1, 1]


def test_async_cancellation_is_not_cached(impl):
    calls = []
    started = []

    @impl.lru_cache
    async def work(x):
        calls.append(x)
        started.append(1)
        await asyncio.sleep(10)
        return x

    async def main():
        task = asyncio.ensure_future(work(1))
        while not started:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return work.cache_info()
    info = run(main())
    assert info.currsize == 0 and calls == [1]


def test_async_one_awaiter_cancelled_the_others_still_get_the_value(impl):
    @impl.lru_cache
    async def work(x):
        await asyncio.sleep(0.05)
        return x + 1

    async def main():
        a = asyncio.ensure_future(work(1))
        b = asyncio.ensure_future(work(1))
        await asyncio.sleep(0.01)
        a.cancel()
        value = await b
        with pytest.raises(asyncio.CancelledError):
            await a
        return value
    assert run(main()) == 2
    assert work.cache_info().currsize == 1


def test_async_ttl_and_methods(impl):
    clock = FakeClock()
    calls = []

    class Service:
        @impl.lru_cache(ttl=5, clock=clock)
        async def get(self, key):
            calls.append(key)
            return key.upper()

    s = Service()
    assert run(s.get("a")) == "A" and run(s.get("a")) == "A"
    clock.tick(5)
    assert run(s.get("a")) == "A"
    assert calls == ["a", "a"]
    assert Service.get.cache_stats().expirations == 1


# ---- cached_method ---------------------------------------------------------------------------------

def test_cached_method_caches_per_instance(impl):
    calls = []

    class Model:
        def __init__(self, w):
            self.w = w

        @impl.cached_method(maxsize=16)
        def predict(self, x):
            """Predict."""
            calls.append((self.w, x))
            return self.w * x

    a, b = Model(2), Model(3)
    assert a.predict(5) == 10 and a.predict(5) == 10 and b.predict(5) == 15
    assert calls == [(2, 5), (3, 5)]
    assert a.predict.cache_info() == (1, 1, 16, 1)
    assert b.predict.cache_info() == (0, 1, 16, 1)
    assert Model.predict.__doc__ == "Predict." and a.predict.__name__ == "predict"
    a.predict.cache_clear()
    assert a.predict.cache_info().currsize == 0 and b.predict.cache_info().currsize == 1


def test_cached_method_lets_instances_be_collected(impl):
    class Big:
        @impl.cached_method
        def compute(self, x):
            return [x] * 10

    obj = Big()
    obj.compute(1)
    obj.compute(2)
    ref = weakref.ref(obj)
    del obj
    # no reference cycle: plain reference counting frees it, no gc needed
    assert ref() is None


def test_cached_method_with_slots_and_weakref(impl):
    class Slotted:
        __slots__ = ("v", "__weakref__")

        def __init__(self, v):
            self.v = v

        @impl.cached_method(ttl=60)
        def double(self):
            return self.v * 2

    s = Slotted(4)
    assert s.double() == 8 and s.double() == 8
    assert s.double.cache_info().hits == 1
    ref = weakref.ref(s)
    del s
    gc.collect()
    assert ref() is None
    assert Slotted.double._by_id == {}        # its cache went with it


def test_cached_method_with_slots_and_no_weakref_is_a_clear_error(impl):
    class Tight:
        __slots__ = ("v",)

        @impl.cached_method
        def get(self):
            return 1

    with pytest.raises(TypeError, match="__weakref__"):
        Tight().get()


def test_cached_method_bad_arguments(impl):
    with pytest.raises(TypeError, match="maxsize"):
        impl.cached_method(maxsize="x")
    with pytest.raises(ValueError, match="ttl"):
        impl.cached_method(ttl=0)


# ---- reentrancy ------------------------------------------------------------------------------------

class EvilKey:
    """An argument whose equality and hash call the cached function."""

    target = None

    def __init__(self, n):
        self.n = n

    def __hash__(self):
        return self.n % 3

    def __eq__(self, other):
        if EvilKey.target is not None and self.n < 50:
            f, EvilKey.target = EvilKey.target, None
            try:
                for i in range(10):
                    f(i)
                f.cache_clear() if self.n % 2 else None
            finally:
                EvilKey.target = f
        return isinstance(other, EvilKey) and other.n == self.n


def test_arguments_whose_eq_reenters_the_cache(impl):
    calls = []
    f = impl.lru_cache(maxsize=8)(lambda *a: calls.append(a) or a)
    EvilKey.target = f
    try:
        for i in range(200):
            f(EvilKey(i % 12))
            f(EvilKey(i % 12), i % 3)
            if hasattr(f, "_check"):
                assert f._check()
    finally:
        EvilKey.target = None
    assert f.cache_info().currsize <= 8


class DelReenter:
    def __init__(self, f, log):
        self.f = f
        self.log = log

    def __del__(self):
        self.log.append(self.f.cache_info())
        self.f(("from __del__", len(self.log)))


def test_released_results_whose_del_calls_the_function(impl):
    log = []
    holder = {}

    def make(x):
        if isinstance(x, int):
            return DelReenter(holder["f"], log)
        return x                # what __del__ asks for is plain: no endless chain
    f = impl.lru_cache(maxsize=2)(make)
    holder["f"] = f
    for i in range(20):
        f(i)
    f.cache_clear()
    gc.collect()
    assert len(log) >= 10
    assert f._check() if hasattr(f, "_check") else True


# ---- reference leaks ---------------------------------------------------------------------------------

class Tracked:
    def __init__(self, n):
        self.n = n

    def __hash__(self):
        return hash(self.n)

    def __eq__(self, other):
        return isinstance(other, Tracked) and other.n == self.n


@pytest.mark.leaks
def test_calls_give_back_their_references(impl):
    clock = FakeClock()
    result = Tracked("result")
    arg, kwval = Tracked(1), Tracked(2)
    f = impl.lru_cache(maxsize=4, ttl=5, clock=clock)(lambda *a, **k: result)
    g = impl.lru_cache(maxsize=None, typed=True, single_flight=True)(lambda *a, **k: result)
    h = impl.lru_cache(maxsize=0)(lambda *a, **k: result)

    def exercise():
        for fn in (f, g, h):
            fn(arg)
            fn(arg)
            fn(arg, x=kwval)
            fn(arg, x=kwval)
            for i in range(6):
                fn(i, arg)
            fn.cache_invalidate(arg)
            try:
                fn([arg])
            except TypeError:
                pass
        clock.tick(6)
        f(arg)
        f.cache_clear()
        g.cache_clear()

    exercise()
    gc.collect()
    before = [sys.getrefcount(o) for o in (result, arg, kwval)]
    for _ in range(300):
        exercise()
    gc.collect()
    assert [sys.getrefcount(o) for o in (result, arg, kwval)] == before


@pytest.mark.leaks
def test_wrapper_and_its_entries_are_released(impl):
    value = Tracked("v")
    before = sys.getrefcount(value)

    def target(x):
        return value
    f = impl.lru_cache(maxsize=None)(target)
    for i in range(10):
        f(i)
    f.self_ref = f                      # a cycle through the wrapper's __dict__
    ref = weakref.ref(f)
    del f, target
    gc.collect()
    assert ref() is None and sys.getrefcount(value) == before


def test_pickle_of_a_method_cache_and_async_by_name(impl):
    global pickled_async
    async def pickled_async(x):
        return x
    pickled_async = impl.lru_cache(pickled_async)
    assert pickle.loads(pickle.dumps(pickled_async)) is pickled_async


def test_built_while_the_collector_runs_on_every_allocation(impl):
    """The collector can traverse an object between its allocation and its
    __cinit__ (Cython's tp_new allocates __dict__): a table of zeros must
    read as empty then.  With a threshold of 1 every allocation collects."""
    old = gc.get_threshold()
    gc.set_threshold(1)
    try:
        for i in range(60):
            pad = [[] for _ in range(i % 3)]   # moves where the collections fall
            f = impl.lru_cache(maxsize=4)(negate)
            pad.append([])
            c = impl.LRUCache(4)
            pad.append([])
            p = impl.ObjectPool(list, 2)
            f(-1), c.set(1, f), p.put(p.get())
    finally:
        gc.set_threshold(*old)
    assert f(-1) == 1 and c[1] is f


def negate(x):
    return -x


def test_cached_method_copies_and_deep_copies_get_their_own_cache(impl):
    import copy

    class Counter:
        def __init__(self, base):
            self.base = base

        @impl.cached_method
        def plus(self, x):
            return self.base + x

    a = Counter(10)
    assert a.plus(1) == 11
    for b in (copy.copy(a), copy.deepcopy(a)):
        b.base = 100
        assert b.plus(1) == 101           # not a's cached 11
        assert b.plus.cache_info().currsize == 1
        assert a.plus(1) == 11 and a.plus.cache_info().currsize == 1


def test_cached_method_instance_pickles_and_comes_back_with_an_empty_cache(impl):
    import pickle
    obj = PickledModel(3)
    assert obj.times(2) == 6 and obj.times.cache_info().currsize == 1
    back = pickle.loads(pickle.dumps(obj))
    assert back.k == 3 and back.times.cache_info().currsize == 0
    assert back.times(2) == 6 and back.times.cache_info() == (0, 1, 128, 1)


def test_cached_method_on_an_async_method_caches_the_awaited_result(impl):
    import asyncio
    calls = []

    class Client:
        @impl.cached_method(maxsize=8)
        async def fetch(self, url):
            calls.append(url)
            await asyncio.sleep(0)
            return url.upper()

    async def main():
        c = Client()
        first = await c.fetch("a")
        second = await c.fetch("a")          # awaited again: a result, not a used coroutine
        both = await asyncio.gather(c.fetch("b"), c.fetch("b"))
        return first, second, both, c.fetch.cache_info()

    first, second, both, info = asyncio.run(main())
    assert (first, second, both) == ("A", "A", ["B", "B"])
    assert calls == ["a", "b"] and info.hits == 1 and info.currsize == 2


def test_cached_method_called_through_the_class(impl):
    class M:
        @impl.cached_method
        def sq(self, x):
            return x * x

    m = M()
    assert M.sq(m, 3) == 9 and m.sq(3) == 9
    assert m.sq.cache_info().hits == 1
    with pytest.raises(TypeError, match="needs the instance"):
        M.sq()


class PickledModel:
    def __init__(self, k):
        self.k = k

    def _times(self, x):
        return self.k * x


def _install_pickled_model_methods():
    from corecache import cached_method
    PickledModel.times = cached_method(PickledModel._times)
    PickledModel.times.__set_name__(PickledModel, "times")


_install_pickled_model_methods()
