"""lru_cache and cache: the drop-in list for functools.lru_cache, one test
each, on both implementations, with functools beside them where it can be
the oracle; then what functools lacks (ttl, stats, invalidate, evict,
single flight, memory limit)."""
from __future__ import annotations

import copy
import functools
import gc
import math
import pickle
import sys
import threading
import weakref

import pytest

from corecache import CacheStats
from conftest import FakeClock


def square(x):
    """Square x."""
    return x * x


# ---- calling forms and arguments -------------------------------------------------------------

def test_every_calling_form(impl):
    forms = [
        impl.lru_cache(square),
        impl.lru_cache()(square),
        impl.lru_cache(32)(square),
        impl.lru_cache(maxsize=None)(square),
        impl.lru_cache(16, True)(square),
        impl.lru_cache(maxsize=8, typed=False)(square),
        impl.cache(square),
    ]
    for f in forms:
        assert f(3) == 9 and f(3) == 9
        assert f.cache_info().hits == 1
    assert [f.cache_parameters() for f in forms] == [
        {"maxsize": 128, "typed": False}, {"maxsize": 128, "typed": False},
        {"maxsize": 32, "typed": False}, {"maxsize": None, "typed": False},
        {"maxsize": 16, "typed": True}, {"maxsize": 8, "typed": False},
        {"maxsize": None, "typed": False}]


@pytest.mark.parametrize("bad", ["x", 1.5, [1], b"3"])
def test_bad_first_argument_same_type_error_as_functools_naming_the_value(impl, bad):
    with pytest.raises(TypeError):
        functools.lru_cache(bad)
    with pytest.raises(TypeError) as ours:
        impl.lru_cache(bad)
    assert str(ours.value) == ("Expected first argument (maxsize) to be an integer, "
                               f"a callable, or None, got {bad!r}")


def test_decorating_a_non_callable_is_a_type_error(impl):
    with pytest.raises(TypeError, match="callable"):
        impl.lru_cache()(42)


def test_cache_info_is_functools_named_tuple(impl):
    f = impl.lru_cache(maxsize=4)(square)
    f(1), f(1), f(2)
    info = f.cache_info()
    assert info == functools._CacheInfo(hits=1, misses=2, maxsize=4, currsize=2)
    assert type(info) is functools._CacheInfo
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (1, 2, 4, 2)


def test_cache_clear_resets_entries_and_counters(impl):
    f = impl.lru_cache()(square)
    f(1), f(1)
    f.cache_clear()
    assert tuple(f.cache_info()) == (0, 0, 128, 0)
    assert f(1) == 1 and tuple(f.cache_info()) == (0, 1, 128, 1)


def test_cache_parameters_exact_and_extras_only_when_given(impl):
    f = impl.lru_cache(maxsize=10, typed=True)(square)
    assert f.cache_parameters() == {"maxsize": 10, "typed": True}
    p = f.cache_parameters()
    p["maxsize"] = 0
    assert f.cache_parameters()["maxsize"] == 10     # a fresh dict each time
    g = impl.lru_cache(maxsize=10, ttl=5, single_flight=True)(square)
    assert g.cache_parameters() == {"maxsize": 10, "typed": False, "ttl": 5, "single_flight": True}
    h = impl.lru_cache(memory_limit_mb=1)(square)
    assert h.cache_parameters() == {"maxsize": 128, "typed": False, "memory_limit_mb": 1}


def test_keyword_order_matters(impl):
    calls = []

    @impl.lru_cache
    def f(**kw):
        calls.append(kw)
        return sorted(kw.items())
    f(a=1, b=2)
    f(b=2, a=1)
    f(a=1, b=2)
    assert len(calls) == 2 and f.cache_info().hits == 1


def test_int_float_bool_keys_as_functools(impl):
    for typed, expect in ((False, (1, 2)), (True, (0, 3))):
        for deco in (functools.lru_cache, impl.lru_cache):
            f = deco(typed=typed)(lambda x: x)
            f(1)
            f(1.0)
            f(True)
            assert tuple(f.cache_info())[:2] == expect, (deco, typed)


def test_single_exact_int_or_str_is_its_own_key(impl):
    class MyInt(int):
        pass
    f = impl.lru_cache()(lambda x: x)
    f(5), f(5), f("s"), f(MyInt(5))
    # 5 and MyInt(5) are equal, but 5 is keyed by itself and MyInt(5) by (MyInt(5),)
    assert f.cache_info().currsize == 3


def test_maxsize_none_is_unbounded(impl):
    f = impl.lru_cache(maxsize=None)(square)
    for i in range(5000):
        f(i)
    assert f.cache_info() == (0, 5000, None, 5000)
    assert f(4999) == 4999 ** 2 and f.cache_info().hits == 1


@pytest.mark.parametrize("maxsize", [0, -1, -100])
def test_maxsize_zero_or_negative_caches_nothing(impl, maxsize):
    calls = []
    f = impl.lru_cache(maxsize=maxsize)(lambda x: calls.append(x) or x)
    f(1), f(1), f(1)
    assert len(calls) == 3
    assert tuple(f.cache_info()) == (0, 3, 0, 0)
    assert f.cache_parameters() == {"maxsize": 0, "typed": False}


def test_bounded_evicts_least_recently_used(impl):
    calls = []
    f = impl.lru_cache(maxsize=2)(lambda x: calls.append(x) or x)
    f(1), f(2), f(1), f(3)      # 2 is evicted
    f(1), f(2)
    assert calls == [1, 2, 3, 2]


def test_wrapper_assignments_dict_and_wrapped(impl):
    def target(x: int) -> int:
        """Doc of target."""
        return x
    target.custom = "attr"
    f = impl.lru_cache(maxsize=3)(target)
    for name in functools.WRAPPER_ASSIGNMENTS:
        assert getattr(f, name) == getattr(target, name), name
    assert f.custom == "attr"
    assert f.__wrapped__ is target
    assert f.__doc__ == "Doc of target."
    assert f.__name__ == "target" and f.__qualname__.endswith("target")


def test_method_binding(impl):
    calls = []

    class A:
        def __init__(self, n):
            self.n = n

        @impl.lru_cache(maxsize=8)
        def method(self, x):
            calls.append(("method", x))
            return self.n + x

        @staticmethod
        @impl.lru_cache
        def static(x):
            calls.append(("static", x))
            return -x

        @classmethod
        @impl.lru_cache
        def klass(cls, x):
            calls.append(("class", x))
            return (cls.__name__, x)

    a, b = A(10), A(20)
    assert a.method(1) == 11 and a.method(1) == 11 and b.method(1) == 21
    assert A.method(a, 1) == 11
    assert A.static(3) == -3 and a.static(3) == -3
    assert A.klass(4) == ("A", 4) and a.klass(4) == ("A", 4)
    assert calls == [("method", 1), ("method", 1), ("static", 3), ("class", 4)]
    assert A.method.cache_info().hits == 2


cached_square = None


def test_pickles_by_qualified_name(impl):
    global cached_square
    cached_square = impl.lru_cache(square)
    cached_square.__qualname__ = "cached_square"
    assert pickle.loads(pickle.dumps(cached_square)) is cached_square


def test_copy_and_deepcopy_return_the_same_object(impl):
    f = impl.lru_cache(square)
    assert copy.copy(f) is f and copy.deepcopy(f) is f


def test_weak_references(impl):
    def target(x):
        return x
    f = impl.lru_cache(target)
    r = weakref.ref(f)
    assert r() is f
    del f
    gc.collect()
    assert r() is None


def test_recursion(impl):
    @impl.lru_cache(maxsize=None)
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)
    assert fib(200) == 280571172992510140037611932413038677189525
    assert fib.cache_info().currsize == 201


def test_recursion_that_clears_its_own_cache(impl):
    @impl.lru_cache(maxsize=16)
    def f(n):
        if n == 5:
            f.cache_clear()
        return n if n == 0 else f(n - 1) + 1
    assert f(10) == 10
    assert f._check() if hasattr(f, "_check") else True
    assert f(10) == 10


def test_exceptions_are_not_cached(impl):
    calls = []

    @impl.lru_cache
    def f(x):
        calls.append(x)
        if len(calls) == 1:
            raise ValueError("first time")
        return x
    with pytest.raises(ValueError):
        f(1)
    assert f(1) == 1 and f(1) == 1
    assert calls == [1, 1] and tuple(f.cache_info()) == (1, 2, 128, 1)


def test_unhashable_arguments_raise_type_error_as_functools(impl):
    f = impl.lru_cache(lambda *a, **k: a)
    g = functools.lru_cache(lambda *a, **k: a)
    for call in (lambda h: h([1]), lambda h: h(1, x={}), lambda h: h((1, [2]))):
        with pytest.raises(TypeError) as ours:
            call(f)
        with pytest.raises(TypeError) as theirs:
            call(g)
        assert str(ours.value) == str(theirs.value)
    assert f.cache_info() == g.cache_info()


def test_thread_safety(impl):
    f = impl.lru_cache(maxsize=64)(lambda x: x * 2)
    errors = []
    n_threads, n_calls = 8, 5000

    def worker(seed):
        import random
        rnd = random.Random(seed)
        try:
            for _ in range(n_calls):
                k = rnd.randrange(200)
                assert f(k) == k * 2
                if rnd.random() < 0.001:
                    f.cache_clear()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    info = f.cache_info()
    assert info.currsize <= 64
    if hasattr(f, "_check"):
        assert f._check()


def test_many_arguments_and_keywords(impl):
    f = impl.lru_cache(typed=True)(lambda *a, **k: (a, tuple(sorted(k.items()))))
    args = tuple(range(40))
    kw = {f"k{i}": i for i in range(20)}
    assert f(*args, **kw) == f(*args, **kw)
    assert f.cache_info().hits == 1


# ---- what functools lacks ---------------------------------------------------------------------

def test_ttl_recomputes_expired_results(impl):
    clock = FakeClock()
    calls = []
    f = impl.lru_cache(ttl=5, clock=clock)(lambda x: calls.append(x) or len(calls))
    assert f(1) == 1 and f(1) == 1
    clock.tick(4.9)
    assert f(1) == 1
    clock.tick(0.1)             # at the deadline: expired
    assert f(1) == 2
    st = f.cache_stats()
    assert (st.hits, st.misses, st.expirations, st.size) == (2, 2, 1, 1)
    clock.tick(10)
    assert f.cache_info().currsize == 0      # expired entries are not counted


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_result_stored_under_a_bad_clock_reading_is_never_served_stale(impl, bad):
    clock = FakeClock()
    calls = []
    f = impl.lru_cache(ttl=5, clock=clock)(lambda x: calls.append(x) or len(calls))
    assert f(1) == 1
    clock.now = bad
    with pytest.raises(ValueError, match="clock must return a finite number"):
        f(2)
    with pytest.raises(ValueError, match="clock must return a finite number"):
        f(1)
    clock.now = 1000.0 + 5.0          # past the first result's deadline
    assert f(1) == len(calls) and f.cache_info().currsize == 1
    clock.tick(100)
    assert f(1) == len(calls)         # recomputed: nothing lives forever
    assert f._check() if hasattr(f, "_check") else True


def test_ttl_with_the_real_clock(impl):
    import time
    f = impl.lru_cache(ttl=0.05)(lambda x: time.monotonic())
    first = f(1)
    assert f(1) == first
    time.sleep(0.08)
    assert f(1) != first


def test_ttl_bad_values(impl):
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="ttl"):
            impl.lru_cache(ttl=bad)
    with pytest.raises(TypeError, match="ttl"):
        impl.lru_cache(ttl="5")
    with pytest.raises(TypeError, match="single_flight"):
        impl.lru_cache(single_flight=1)
    with pytest.raises(ValueError, match="memory_limit_mb"):
        impl.lru_cache(memory_limit_mb=0)


def test_cache_stats(impl):
    f = impl.lru_cache(maxsize=2)(square)
    f(1), f(2), f(3), f(3)
    st = f.cache_stats()
    assert isinstance(st, CacheStats)
    assert (st.hits, st.misses, st.evictions, st.size, st.max_size) == (1, 3, 1, 2, 2)
    assert st.hit_rate == 0.25
    assert impl.lru_cache(maxsize=None)(square).cache_stats().max_size is None


def test_cache_invalidate(impl):
    calls = []
    f = impl.lru_cache(lambda *a, **k: calls.append((a, k)) or len(calls))
    f(1), f(1, 2), f(1, y=3)
    assert f.cache_invalidate(1) is True
    assert f.cache_invalidate(1) is False
    assert f.cache_invalidate(1, y=3) is True
    assert f.cache_invalidate(1, 2) is True
    assert f.cache_info().currsize == 0
    f(1)
    assert len(calls) == 4
    with pytest.raises(TypeError):
        f.cache_invalidate([1])


def test_cache_evict_and_pause(impl):
    f = impl.lru_cache(maxsize=10)(square)
    for i in range(5):
        f(i)
    assert f.cache_evict(2) == 2 and f.cache_info().currsize == 3
    assert f.cache_writes_paused is False
    f.cache_pause_writes()
    assert f.cache_writes_paused is True
    f(100)
    assert f.cache_info().currsize == 3 and f(3) == 9     # hits still served
    assert f.cache_stats().rejected == 1
    f.cache_resume_writes()
    assert f.cache_writes_paused is False
    f(100)
    assert f.cache_info().currsize == 4


def test_memory_limit(impl):
    f = impl.lru_cache(maxsize=None, memory_limit_mb=0.01)(lambda n: "x" * n)  # 10485 bytes
    for i in range(100):
        f(1000 + i)
    st = f.cache_stats()
    assert 0 < st.size < 100 and st.memory_bytes <= 10485 and st.evictions > 0
    big = f(20000)              # larger than the whole limit: returned, not kept
    assert len(big) == 20000 and f.cache_stats().rejected == 1


def test_single_flight_one_computation_for_concurrent_misses(impl):
    n = 8
    barrier = threading.Barrier(n)
    release = threading.Event()
    calls = []

    @impl.lru_cache(single_flight=True)
    def f(x):
        calls.append(x)
        release.wait(5)
        return x * 10

    results = []

    def worker():
        barrier.wait()
        results.append(f(7))
    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    import time
    deadline = time.monotonic() + 5
    while f.cache_info().misses < n and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in threads:
        t.join()
    assert results == [70] * n and calls == [7]
    assert f(7) == 70 and f.cache_info().hits >= 1


def test_single_flight_exception_reaches_everyone_and_is_not_cached(impl):
    n = 5
    barrier = threading.Barrier(n)
    release = threading.Event()
    calls = []

    @impl.lru_cache(single_flight=True)
    def f(x):
        calls.append(x)
        release.wait(5)
        raise KeyError("down")

    errors = []

    def worker():
        barrier.wait()
        try:
            f(1)
        except KeyError as exc:
            errors.append(exc)
    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    import time
    deadline = time.monotonic() + 5
    while f.cache_info().misses < n and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in threads:
        t.join()
    assert len(errors) == n and calls == [1]
    assert f.cache_info().currsize == 0


def test_single_flight_reentry_with_the_same_key_is_an_error(impl):
    @impl.lru_cache(single_flight=True)
    def f(x):
        return f(x)
    with pytest.raises(RuntimeError, match="itself"):
        f(1)
