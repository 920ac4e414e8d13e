"""Threads and reentrancy: keys whose __hash__, __eq__ or __del__ use the
cache, callbacks and clocks that re-enter it, and 8 threads of mixed
operations with the invariants checked afterwards."""
from __future__ import annotations

import gc
import random
import sys
import threading

import pytest

from conftest import FakeClock, wait_for


def test_eight_threads_of_mixed_operations(impl):
    clock = FakeClock()
    evicted = []
    c = impl.LRUCache(64, memory_limit_mb=1, getsizeof=lambda k, v: 4096 + (v % 7) * 1024,
                      eviction_callback=lambda k, v: evicted.append(k), clock=clock)
    n_threads, n_ops = 8, 4000
    barrier = threading.Barrier(n_threads)
    counted = [0] * n_threads
    errors = []

    def worker(t):
        rnd = random.Random(t)
        barrier.wait()
        try:
            for i in range(n_ops):
                k = rnd.randrange(200)
                op = rnd.randrange(12)
                if op < 3:
                    c[k] = i
                elif op == 3:
                    c.set(k, i, ttl=rnd.choice([0.001, 0.01, 1, None]))
                    clock.tick(0.001)   # time moves only while threads run
                elif op == 4:
                    c.get(k)
                    counted[t] += 1
                elif op == 5:
                    try:
                        c[k]
                    except KeyError:
                        pass
                    counted[t] += 1
                elif op == 6:
                    c.pop(k, None)
                elif op == 7:
                    c.get_or_set(k, lambda: i)
                    counted[t] += 1
                elif op == 8:
                    list(c.items())
                elif op == 9:
                    c.peek(k)
                    k in c
                elif op == 10:
                    if rnd.random() < 0.02:
                        c.resize(max_size=rnd.choice([16, 64, 128]))
                    else:
                        c.expire()
                else:
                    try:
                        c.popitem()
                    except KeyError:
                        pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads as often as possible
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert c._check()
    st = c.stats()
    assert st.hits + st.misses == sum(counted)
    assert st.size == len(c) == len(list(c)) <= c.max_size
    assert st.memory_bytes <= st.memory_limit_bytes
    assert st.memory_bytes == sum(4096 + (v % 7) * 1024 for v in c.values())


class Reentrant:
    """A key whose hash and equality run code that mutates the cache."""

    cache = None
    on_hash = None
    on_eq = None

    def __init__(self, n):
        self.n = n

    def __hash__(self):
        if Reentrant.on_hash:
            Reentrant.on_hash(self)
        return self.n % 4          # plenty of collisions

    def __eq__(self, other):
        if Reentrant.on_eq:
            Reentrant.on_eq(self, other)
        return isinstance(other, Reentrant) and other.n == self.n


@pytest.fixture
def reentrant():
    yield Reentrant
    Reentrant.on_hash = Reentrant.on_eq = None


def churn(cache, rnd):
    op = rnd.randrange(6)
    k = rnd.randrange(40)
    if op == 0:
        cache[k] = k
    elif op == 1:
        cache.pop(k, None)
    elif op == 2:
        cache.clear()
    elif op == 3:
        cache.resize(max_size=rnd.choice([4, 8, 32]))
    elif op == 4:
        cache.get(k)
    else:
        for j in range(20):
            cache[1000 + j] = j


def test_eq_and_hash_that_mutate_the_cache(impl, reentrant):
    c = impl.LRUCache(32)
    rnd = random.Random(7)
    reentrant.on_eq = lambda a, b: churn(c, rnd)
    reentrant.on_hash = lambda a: churn(c, rnd) if rnd.random() < 0.3 else None
    for i in range(600):
        k = Reentrant(rnd.randrange(12))
        op = rnd.randrange(5)
        if op == 0:
            c[k] = i
        elif op == 1:
            c.get(k)
        elif op == 2:
            c.pop(k, None)
        elif op == 3:
            k in c
        else:
            c.set(k, i, ttl=5)
        assert c._check()
    reentrant.on_eq = reentrant.on_hash = None
    assert len(c) == len(list(c.items())) <= c.max_size


def test_eq_that_always_mutates_does_not_hang(impl, reentrant):
    c = impl.LRUCache(1000)
    c[Reentrant(1)] = 1
    counter = iter(range(10 ** 9))
    reentrant.on_eq = lambda a, b: c.__setitem__(("x", next(counter)), 0)
    # the compiled core gives up with RuntimeError; the twin's dict finishes
    try:
        c.get(Reentrant(5))
    except RuntimeError as exc:
        assert "mutating" in str(exc)
    reentrant.on_eq = None
    assert c._check()


class Dying:
    """A value whose __del__ uses the cache it lived in."""

    def __init__(self, cache, log):
        self.cache = cache
        self.log = log

    def __del__(self):
        c = self.cache
        self.log.append((len(c), c._check()))
        c["from-del"] = 1
        c.pop("other", None)


def test_del_of_released_values_may_use_the_cache(impl):
    log = []
    c = impl.LRUCache(2)
    c["a"] = Dying(c, log)
    c["other"] = 1
    c["b"] = 2                  # evicts a -> __del__ runs after the set
    assert log and all(ok for _, ok in log)
    c["x"] = Dying(c, log)
    c["x"] = 0                  # overwrite releases the old value
    del c["x"]
    c["y"] = Dying(c, log)
    c.clear()
    c["z"] = Dying(c, log)
    c.resize(max_size=1)
    c.pop("z", None)
    gc.collect()
    assert len(log) >= 4 and all(ok for _, ok in log)
    assert c._check()


def test_clock_and_getsizeof_that_use_the_cache(impl):
    clock = FakeClock()
    holder = {}

    busy = []

    def sneaky_clock():
        c = holder.get("c")
        if c is not None and not busy:   # re-enter once, not forever
            busy.append(1)
            try:
                c.peek("nothing")
                c.set(("clock", clock()), 0, ttl=0.5)
            finally:
                busy.pop()
        return clock()

    def sizer(k, v):
        c = holder["c"]
        c.peek(k)
        if v == "grow":
            c["side"] = "effect"
        return 10

    c = impl.LRUCache(4, 1.0, memory_limit_mb=1, getsizeof=sizer, clock=sneaky_clock)
    holder["c"] = c
    for i in range(10):
        c[i] = "grow" if i % 3 == 0 else i
        clock.tick(0.3)
        assert c._check()
    assert len(c) <= 4


def test_callback_that_clears_and_refills(impl):
    c = None
    calls = []

    def cb(k, v):
        calls.append(k)
        if len(calls) > 50:
            return
        c.clear()
        for j in range(5):      # evicts again, from inside the callback
            c[("refill", len(calls), j)] = j
    c = impl.LRUCache(3, eviction_callback=cb)
    for i in range(20):
        c[i] = i
        assert c._check() and len(c) <= 3
    assert len(calls) > 50


RECURSE = """
import sys
from corecache._impl import lru_class
sys.unraisablehook = lambda args: None
c = None
def cb(k, v):
    c[("deeper", k)] = v         # every eviction evicts again, without end
c = lru_class(sys.argv[1])(1, eviction_callback=cb)
c[0] = 0
c[1] = 1
assert c._check() and len(c) == 1
print("ok")
"""


@pytest.mark.parametrize("kind", ["c", "py"])
def test_callback_recursing_without_end_hits_the_recursion_limit_not_the_stack(kind):
    import subprocess
    import os
    r = subprocess.run([sys.executable, "-c", RECURSE, kind], capture_output=True, text=True,
                       timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_concurrent_get_or_set_on_many_keys(impl):
    c = impl.LRUCache(50)
    calls = {}
    lock = threading.Lock()

    def factory_for(k):
        def factory():
            with lock:
                calls[k] = calls.get(k, 0) + 1
            return k * 2
        return factory

    def worker(seed):
        rnd = random.Random(seed)
        for _ in range(2000):
            k = rnd.randrange(100)
            assert c.get_or_set(k, factory_for(k)) == k * 2

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c._check() and len(c) <= 50


@pytest.fixture
def switch_often():
    """Thread switches as often as the interpreter allows, so that any window
    between a check and an update is hit."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def _builds_per_key(get, keys=300, threads=8):
    built: dict = {}
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def factory_for(k):
        def factory():
            with lock:
                built[k] = built.get(k, 0) + 1
            return k * 2
        return factory

    def worker(seed):
        for k in range(keys):
            start.wait()            # every thread misses each key at once
            assert get(k, factory_for(k)) == k * 2

    ts = [threading.Thread(target=worker, args=(s,)) for s in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return built


def test_get_or_set_builds_each_key_once_under_contention(impl, switch_often):
    c = impl.LRUCache(1000)
    built = _builds_per_key(c.get_or_set)
    assert sorted(built) == list(range(300))
    assert {k: n for k, n in built.items() if n != 1} == {}
    s = c.stats()
    assert s.hits + s.misses == 8 * 300 and s.size == 300


def test_single_flight_lru_cache_builds_each_key_once_under_contention(impl, switch_often):
    factories = {}

    @impl.lru_cache(maxsize=1000, single_flight=True)
    def f(k):
        return factories[k]()

    def get(k, factory):
        factories[k] = factory
        return f(k)

    built = _builds_per_key(get)
    assert {k: n for k, n in built.items() if n != 1} == {}
    info = f.cache_info()
    assert info.hits + info.misses == 8 * 300 and info.currsize == 300


def _waiting_in_a_flight(thread):
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == "wait" and frame.f_code.co_filename.endswith("_flight.py"):
            return True
        frame = frame.f_back
    return False


def test_a_leader_interrupted_hands_the_key_to_a_waiter(impl):
    c = impl.LRUCache(10)
    entered, release = threading.Event(), threading.Event()
    results = []

    def leader_factory():
        entered.set()
        release.wait()
        raise KeyboardInterrupt        # not an Exception: waiters do not inherit it

    def leader():
        try:
            c.get_or_set("k", leader_factory)
        except KeyboardInterrupt:
            results.append("leader interrupted")

    def waiter():
        results.append(c.get_or_set("k", lambda: "built by the waiter"))

    t1 = threading.Thread(target=leader)
    t1.start()
    entered.wait()
    t2 = threading.Thread(target=waiter)
    t2.start()
    try:
        assert wait_for(lambda: _waiting_in_a_flight(t2), timeout=30)
    finally:
        release.set()
    t1.join()
    t2.join()
    assert sorted(results) == ["built by the waiter", "leader interrupted"]
    assert c["k"] == "built by the waiter"


# ---- user code in __del__ of what the cache lets go (issue: the pure twin ran
# it in the middle of an update) --------------------------------------------------

class OnDel:
    """A value whose __del__ runs `action` (once)."""

    def __init__(self, action):
        self.action = action

    def __del__(self):
        action, self.action = self.action, None
        if action is not None:
            action()


def test_del_of_an_overwritten_value_that_pops_its_own_key(impl):
    c = impl.LRUCache(10)
    c["k"] = OnDel(lambda: c.pop("k", None))
    c["k"] = "new"                   # the old value goes: its __del__ pops "k"
    assert c._check() and list(c) == [k for k in c] and len(c) == len(list(c))
    assert "k" not in c and len(c) == 0


def test_del_calling_len_during_a_purge(impl, clock):
    c = impl.LRUCache(10, default_ttl=1, clock=clock)
    seen = []
    for i in range(5):
        c[i] = OnDel(lambda: seen.append(len(c)))
    clock.tick(2)
    c["fresh"] = 1                   # purges the five: each __del__ calls len()
    assert c._check() and len(c) == 1 and len(seen) == 5


def test_del_calling_clear_during_an_eviction(impl):
    c = impl.LRUCache(3)
    c["a"] = OnDel(lambda: c.clear())
    c["b"], c["c"] = 1, 2
    c["d"] = 3                       # evicts "a": its __del__ clears the cache
    assert c._check() and len(c) == 0 and list(c) == []
    c["e"] = 4
    assert c._check() and list(c) == ["e"]


def test_del_setting_a_ttl_entry_after_clear(impl, clock):
    c = impl.LRUCache(10, clock=clock)
    c["a"] = OnDel(lambda: c.set("t", 1, ttl=1))
    c.clear()                        # "a" goes; its __del__ adds a TTL entry
    assert c._check() and list(c) == ["t"]
    clock.tick(2)
    assert len(c) == 0 and c._check() and c.stats().size == 0


def test_deleted_values_are_released_at_once(impl):
    import weakref

    class Blob:
        pass

    c = impl.LRUCache(1000, default_ttl=60)
    refs = []
    for i in range(300):
        b = Blob()
        refs.append(weakref.ref(b))
        c[i] = b
    del b
    for i in range(300):
        del c[i]
    assert sum(r() is not None for r in refs) == 0
    assert c._check()


def test_unbounded_lru_cache_result_whose_del_clears_while_replaced(impl):
    calls = []

    @impl.lru_cache(maxsize=None)
    def f(n):
        calls.append(n)
        if len(calls) == 1:
            # the same key again while computing: the inner result is stored,
            # then replaced by the outer one (unbounded caches replace), and
            # the replaced result's __del__ clears the cache
            f(n)
            return "outer"
        return OnDel(f.cache_clear)

    assert f(1) == "outer"
    assert f._check()
    assert f.cache_info().currsize in (0, 1)


class OnDelKey(OnDel):
    """A key whose __del__ runs `action` (once)."""

    def __init__(self, n, action):
        super().__init__(action)
        self.n = n

    def __hash__(self):
        return hash(self.n)

    def __eq__(self, other):
        return isinstance(other, OnDelKey) and other.n == self.n


def test_del_calling_len_while_stale_expiry_items_are_dropped(impl, clock):
    # deleted TTL entries leave stale items in the twin's expiry heap; a
    # purge that drops them must not be where their __del__ runs
    c = impl.LRUCache(10, default_ttl=1, clock=clock)
    seen = []
    for i in range(5):
        c[i] = OnDel(lambda: seen.append(len(c)))
    for i in range(5):
        c.touch(i, 0.5)              # new deadlines: the old items go stale
    clock.tick(2)
    assert len(c) == 0 and c._check() and len(seen) == 5


def test_del_of_an_evicted_key_that_clears_the_cache(impl):
    c = impl.LRUCache(3)
    c[OnDelKey(1, lambda: c.clear())] = 1
    c["b"], c["c"] = 1, 2
    c["d"] = 3                       # evicts the key: its __del__ clears
    assert c._check() and len(c) == 0
    c["e"] = 4
    assert c._check() and list(c) == ["e"]


def test_del_of_a_cleared_key_that_sets_a_ttl_entry(impl, clock):
    c = impl.LRUCache(10, clock=clock)
    c[OnDelKey(1, lambda: c.set("t", 1, ttl=1))] = 1
    c.clear()
    assert c._check() and list(c) == ["t"]
    clock.tick(2)
    assert len(c) == 0 and c._check()
