"""Cache(policy=...): the compiled Cache, its pure twin and a small cache
written directly over the reference model (corecache/_pure/adaptive.py)
driven by Hypothesis with the same operations; every result, every
eviction (callbacks, in order), stats(), the iteration order and the
policy's own state must agree.  Then LRUCache behaviours re-run for
Cache(policy="adaptive") where they mean the same: TTL, memory limit,
stats, reentrancy."""
from __future__ import annotations

import gc
import math
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import FakeClock, Recorder, all_impls
from corecache._pure.adaptive import AdaptivePolicy

INF = math.inf
MIB = 1 << 20


def unit_size(key: Any, value: Any) -> int:
    return (value % 5 + 1) * (MIB // 8)


class ModelCache:
    """The specification of Cache(policy="adaptive"), as directly as it can
    be written over the model: a dict of key -> [value, deadline, size],
    the policy told of every hit, insert, removal and resize, and asked
    what to evict."""

    def __init__(self, max_size: int, default_ttl: Optional[float], limit: int,
                 sized: bool, clock: FakeClock) -> None:
        self.p = AdaptivePolicy(max_size)
        self.max_size = max_size
        self.ttl = INF if default_ttl is None else default_ttl
        self.limit = limit
        self.sized = sized
        self.clock = clock
        self.d: Dict[Any, list] = {}
        self.calls: List[Tuple[Any, Any]] = []
        self.hits = self.misses = self.evictions = self.expirations = 0

    def memory(self) -> int:
        return sum(e[2] for e in self.d.values())

    def _remove(self, key: Any, why: Optional[str]) -> Any:
        self.p.remove(key)
        value = self.d.pop(key)[0]
        if why == "expired":
            self.expirations += 1
        if why:
            self.calls.append((key, value))
        return value

    def _live(self, key: Any) -> bool:
        if key in self.d and self.clock.now >= self.d[key][1]:
            self._remove(key, "expired")
        return key in self.d

    def _purge(self) -> None:
        for k in [k for k, e in self.d.items() if self.clock.now >= e[1]]:
            self._remove(k, "expired")

    def _evict(self, extra: int, keep: Any) -> None:
        while True:
            k = self.p.evict()
            if k is None:
                break
            self.evictions += 1
            self.calls.append((k, self.d.pop(k)[0]))
        if self.limit:
            while self.d and self.memory() + extra > self.limit:
                k = self.p.oldest()
                if k == keep:
                    break
                self.evictions += 1
                self._remove(k, "evicted")

    def lookup(self, key: Any) -> Any:
        if self._live(key):
            self.p.hit(key)
            self.hits += 1
            return self.d[key][0]
        self.misses += 1
        raise KeyError(key)

    def set(self, key: Any, value: Any, ttl: Optional[float]) -> None:
        ttl = self.ttl if ttl is None else ttl
        size = unit_size(key, value) if self.sized else 0
        if self.limit and size > self.limit:
            raise ValueError("too large")
        deadline = self.clock.now + ttl
        if self._live(key):
            self.d[key][0:3] = [value, deadline, size]
            self.p.hit(key)
            self._evict(0, key)
            return
        self._purge()
        if self.limit:
            self._evict(size, None)
        self.d[key] = [value, deadline, size]
        self.p.insert(key, hash(key))
        self._evict(0, key)

    def pop(self, key: Any) -> Any:
        if not self._live(key):
            return "default"
        return self._remove(key, None)

    def popitem(self) -> Tuple[Any, Any]:
        self._purge()
        if not self.d:
            raise KeyError("popitem(): Cache is empty")
        k = self.p.oldest()
        return k, self._remove(k, None)

    def evict(self, n: int) -> int:
        k = 0
        while k < n and self.d:
            self.evictions += 1
            self._remove(self.p.oldest(), "evicted")
            k += 1
        return k

    def resize(self, max_size: int) -> None:
        self.p.resize(max_size)
        self.max_size = max_size
        self._evict(0, None)

    def clear(self) -> None:
        self.d.clear()
        self.p.clear()

    def keys(self) -> List[Any]:
        self._purge()
        return self.p.order()

    def stats(self) -> tuple:
        self._purge()
        return (self.hits, self.misses, self.evictions, self.expirations, len(self.d))

    def state(self) -> dict:
        return {"window_max": self.p.window_max, "sizes": self.p.sizes(),
                "agings": self.p.agings}


def outcome(fn: Any) -> Tuple[str, Any]:
    try:
        return ("ok", fn())
    except KeyError:
        return ("KeyError", None)
    except ValueError:
        return ("ValueError", None)


# ints whose hash is themselves, with -1 and -2 sharing hash -2, and a few
# strings (the same hash() in every implementation within a process)
keys = st.one_of(st.integers(-2, 40), st.sampled_from(["a", "b", "c"]))
values = st.integers(0, 9)


class AdaptiveMachine(RuleBasedStateMachine):
    @initialize(max_size=st.integers(1, 24), default_ttl=st.sampled_from([None, None, 5.0]),
                limit=st.sampled_from([None, None, None, 1]))
    def setup(self, max_size: int, default_ttl: Optional[float], limit: Optional[int]) -> None:
        self.clock = FakeClock()
        sized = limit is not None
        self.recorders: List[Recorder] = []
        self.caches = []
        for impl in all_impls():
            rec = Recorder()
            self.recorders.append(rec)
            self.caches.append(impl.Cache(
                max_size, default_ttl, memory_limit_mb=limit,
                getsizeof=unit_size if sized else None, eviction_callback=rec,
                clock=self.clock, policy="adaptive"))
        self.model = ModelCache(max_size, default_ttl, limit * MIB if limit else 0, sized,
                                self.clock)

    def run(self, op: Any, model_op: Any) -> None:
        expirations = self.model.expirations
        results = [outcome(lambda c=c: op(c)) for c in self.caches]
        results.append(outcome(model_op))
        assert all(r == results[-1] for r in results), results
        if self.model.expirations == expirations:
            # no expiry in this step: every eviction, in order
            for rec in self.recorders:
                assert rec.calls == self.model.calls, (rec.calls, self.model.calls)
        else:
            # expired entries leave in deadline order, ties in any order
            for rec in self.recorders:
                assert Counter(rec.calls) == Counter(self.model.calls)
        for rec in self.recorders:
            rec.calls.clear()
        self.model.calls.clear()

    @rule(key=keys, value=values)
    def setitem(self, key: Any, value: int) -> None:
        self.run(lambda c: c.__setitem__(key, value), lambda: self.model.set(key, value, None))

    @rule(key=keys, value=values, ttl=st.sampled_from([None, 1.0, 2.5, INF]))
    def set(self, key: Any, value: int, ttl: Optional[float]) -> None:
        self.run(lambda c: c.set(key, value, ttl=ttl), lambda: self.model.set(key, value, ttl))

    @rule(key=keys)
    def get(self, key: Any) -> None:
        def model() -> Any:
            try:
                return self.model.lookup(key)
            except KeyError:
                return "default"
        self.run(lambda c: c.get(key, "default"), model)

    @rule(key=keys)
    def getitem(self, key: Any) -> None:
        self.run(lambda c: c[key], lambda: self.model.lookup(key))

    @rule(key=keys)
    def peek(self, key: Any) -> None:
        self.run(lambda c: c.peek(key, "default"),
                 lambda: self.model.d[key][0] if self.model._live(key) else "default")

    @rule(key=keys)
    def pop(self, key: Any) -> None:
        self.run(lambda c: c.pop(key, "default"), lambda: self.model.pop(key))

    @rule()
    def popitem(self) -> None:
        self.run(lambda c: c.popitem(), self.model.popitem)

    @rule(n=st.integers(0, 3))
    def evict(self, n: int) -> None:
        self.run(lambda c: c.evict(n), lambda: self.model.evict(n))

    @rule(max_size=st.integers(1, 24))
    def resize(self, max_size: int) -> None:
        self.run(lambda c: c.resize(max_size), lambda: self.model.resize(max_size))

    @rule()
    def clear(self) -> None:
        self.run(lambda c: c.clear(), self.model.clear)

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0]))
    def tick(self, seconds: float) -> None:
        self.clock.tick(seconds)

    @rule(hot=st.integers(0, 5), n=st.integers(1, 30))
    def burst(self, hot: int, n: int) -> None:
        """A run of requests that fills the cache and makes the policy
        work: hits on a hot key, misses on fresh ones (read-through)."""
        for k in range(n):
            key = hot if k % 3 else 100 + (k * 7 + hot) % 50

            def op(c: Any, key: Any = key) -> Any:
                v = c.get(key, None)
                if v is None:
                    c[key] = 1
                return v

            def model(key: Any = key) -> Any:
                try:
                    return self.model.lookup(key)
                except KeyError:
                    self.model.set(key, 1, None)
                    return None
            self.run(op, model)

    @invariant()
    def agree(self) -> None:
        if not hasattr(self, "caches"):
            return
        expirations = self.model.expirations
        order = self.model.keys()
        for c in self.caches:
            assert list(c) == order
        for rec in self.recorders:
            assert Counter(rec.calls) == Counter(self.model.calls)
            rec.calls.clear()
        self.model.calls.clear()
        want = self.model.stats()
        for c in self.caches:
            s = c.stats()
            assert (s.hits, s.misses, s.evictions, s.expirations, s.size) == want
            assert c._policy_state() == self.model.state()
            assert c._check()
        assert self.model.expirations >= expirations


AdaptiveMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_adaptive_differential = AdaptiveMachine.TestCase


def test_a_long_run_makes_the_same_decisions_in_both_implementations() -> None:
    """Zipf-like traffic over 20 x the capacity with a scan and a shift:
    the sketch ages, ghosts vote, the window climbs; every eviction in
    order and the final state agree."""
    import random
    impls = all_impls()
    recs = [Recorder() for _ in impls]
    caches = [impl.Cache(200, eviction_callback=rec) for impl, rec in zip(impls, recs)]
    rnd = random.Random(16)
    for n in range(40_000):
        if 15_000 <= n < 17_000:
            key = 10_000 + n                          # a scan
        else:
            key = int(rnd.paretovariate(0.9)) + (0 if n < 25_000 else 3_000)   # shift
        for c in caches:
            if c.get(key) is None:
                c[key] = n
    states = [c._policy_state() for c in caches]
    assert all(s == states[0] for s in states)
    assert all(rec.calls == recs[0].calls for rec in recs)
    assert all(list(c) == list(caches[0]) for c in caches)
    assert all(c.stats() == caches[0].stats() for c in caches)
    assert states[0]["agings"] > 0
    assert all(c._check() for c in caches)


# ---- the API ---------------------------------------------------------------

def test_policies_and_the_default(impl: Any) -> None:
    assert impl.Cache.POLICIES == ("lru", "adaptive")
    assert impl.Cache(4).policy == "adaptive"
    assert impl.Cache(4, policy="lru").policy == "lru"
    assert impl.LRUCache(4).policy == "lru"
    assert isinstance(impl.LRUCache(4), impl.Cache)
    with pytest.raises(ValueError, match="policy must be one of"):
        impl.Cache(4, policy="lfu")
    with pytest.raises(TypeError):
        impl.LRUCache(4, policy="adaptive")      # LRUCache's name never lies


@pytest.mark.parametrize("policy", ["lru", "adaptive"])
def test_a_scan_does_not_flush_the_hot_set_under_adaptive(impl: Any, policy: str) -> None:
    c = impl.Cache(100, policy=policy)
    for _ in range(20):
        for k in range(50):
            if c.get(k) is None:
                c[k] = k
    for k in range(1000, 3000):                 # a one-off scan
        if c.get(k) is None:
            c[k] = k
    kept = sum(1 for k in range(50) if c.peek(k) is not None)
    if policy == "adaptive":
        assert kept >= 45          # the frequent keys stay (nearly all)
    else:
        assert kept == 0


def test_an_admission_rejection_is_an_eviction_of_the_candidate(impl: Any) -> None:
    rec = Recorder()
    c = impl.Cache(100, eviction_callback=rec)
    for _ in range(20):
        for k in range(100):
            if c.get(k) is None:
                c[k] = k
    c["new"] = 1                   # its window's candidate (99) is admitted
    rec.calls.clear()
    before = c.stats().evictions
    c["newer"] = 2                 # pushes "new" out of the one-entry window: rejected
    assert rec.calls == [("new", 1)]
    assert c.stats().evictions == before + 1
    assert "new" not in c and "newer" in c and len(c) == 100


def test_ttl_memory_limit_and_stats_under_adaptive(impl: Any) -> None:
    clock = FakeClock()
    rec = Recorder()
    c = impl.Cache(10, 5.0, memory_limit_mb=1, getsizeof=unit_size, eviction_callback=rec,
                   clock=clock)
    c.set("a", 0)                   # 1/8 MiB
    c.set("b", 4, ttl=INF)          # 5/8 MiB
    assert c.ttl("b") is None and c.ttl("a") == 5.0
    c.set("c", 3)                   # 4/8 MiB: over the limit, someone goes
    assert c.memory_bytes <= MIB and c.stats().evictions == len(rec.calls) >= 1
    clock.tick(6)
    assert "a" not in c
    c.expire()
    assert c._check()
    with pytest.raises(ValueError):
        c.set("huge", 0) if False else c.resize(memory_limit_mb=-1)
    s = c.stats()
    assert s.size == len(c) and s.max_size == 10


def test_copy_and_pickle_keep_the_policy(impl: Any) -> None:
    import copy
    import pickle
    c = impl.Cache(8)
    for k in range(8):
        c[k] = k
    for d in (copy.copy(c), copy.deepcopy(c), pickle.loads(pickle.dumps(c))):
        assert type(d) is type(c) and d.policy == "adaptive" and dict(d) == dict(c)
    l = impl.LRUCache(8)
    l[1] = 1
    assert type(pickle.loads(pickle.dumps(l))) is type(l)


# ---- reentrancy: user code never corrupts the cache ------------------------

class Meddler:
    """A key whose __eq__ (on a full-hash collision) and __del__ use the cache."""

    def __init__(self, n: int, cache: Any, action: str) -> None:
        self.n = n
        self.cache = cache
        self.action = action

    def __hash__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        act(self.cache, self.action, self.n)
        return isinstance(other, Meddler) and other.n == self.n

    def __del__(self) -> None:
        c = self.cache
        if c is not None:
            act(c, self.action, self.n + 1000)


def act(c: Any, action: str, n: int) -> None:
    try:
        if action == "set":
            c[("x", n % 7)] = n
        elif action == "clear":
            c.clear()
        elif action == "del":
            c.pop(("x", n % 7), None)
        elif action == "resize":
            c.resize(max_size=1 + n % 5)
        elif action == "popitem":
            c.popitem()
    except (KeyError, RuntimeError):
        pass


@pytest.mark.parametrize("action", ["set", "clear", "del", "resize", "popitem"])
def test_reentrant_keys_never_corrupt_an_adaptive_cache(impl: Any, action: str) -> None:
    rec = Recorder()
    c = impl.Cache(6, eviction_callback=lambda k, v: (rec(k, v), act(c, action, 3)))
    for round_ in range(30):
        for n in range(8):
            k = Meddler(n, c, action)
            try:
                c.get(k)
                c[k] = n
                c.pop(Meddler(n + 1, None, action), None)
            except RuntimeError:
                pass
            assert c._check()
            del k
        gc.collect()
    assert c._check() and len(c) <= c.max_size
    for k in list(c):
        if isinstance(k, Meddler):
            k.cache = None
    c.clear()
    assert c._check()


# ---- lru_cache(policy=...) -------------------------------------------------

def test_lru_cache_takes_a_policy_and_keeps_lru_as_its_default(impl: Any) -> None:
    calls: List[int] = []

    @impl.lru_cache(maxsize=50, policy="adaptive")
    def f(x: int, y: int = 0) -> int:
        calls.append(x)
        return x * 2 + y

    assert f.cache_parameters() == {"maxsize": 50, "typed": False, "policy": "adaptive"}
    for _ in range(10):
        for x in range(40):
            assert f(x) == 2 * x
    for x in range(1000, 1400):       # a scan: the frequent ones stay
        f(x)
    before = len(calls)
    for x in range(40):
        f(x)
    assert len(calls) - before <= 5
    info = f.cache_info()
    assert info.maxsize == 50 and info.currsize == 50
    assert f(3, y=1) == 7 and f(3, y=1) == 7
    assert f.cache_invalidate(3, y=1) and not f.cache_invalidate(3, y=1)
    s = f.cache_stats()
    assert s.evictions > 0 and s.hits == f.cache_info().hits
    assert f.cache_evict(2) == 2
    f.cache_clear()
    assert f.cache_info() == (0, 0, 50, 0)
    assert "policy" not in impl.lru_cache(maxsize=5)(abs).cache_parameters()
    with pytest.raises(ValueError):
        impl.lru_cache(maxsize=5, policy="mru")


def test_lru_cache_adaptive_single_flight_and_async(impl: Any) -> None:
    import asyncio

    @impl.lru_cache(maxsize=8, policy="adaptive", single_flight=True)
    def g(x: int) -> int:
        return -x

    assert [g(1), g(1), g(2)] == [-1, -1, -2]
    assert g.cache_info().hits == 1

    @impl.lru_cache(maxsize=8, policy="adaptive")
    async def h(x: int) -> int:
        return x + 1

    async def main() -> List[int]:
        return [await h(1), await h(1)]
    assert asyncio.run(main()) == [2, 2]
    assert h.cache_info().hits == 1
