"""Differential test: hypothesis drives the compiled LRUCache, the pure twin
and a plain model (an OrderedDict plus expiry times, written from the spec)
with the same operations, including clock advances and limit changes, and
compares every result, exception, eviction callback and stats() snapshot.
"""
from __future__ import annotations

import functools
import math
from collections import Counter, OrderedDict
from typing import Any, List, Optional, Tuple

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import FakeClock, Recorder, all_impls

MIB = 1 << 20
INF = math.inf


def unit_size(key: Any, value: Any) -> int:
    """Values are small ints; each unit is 1/8 MiB, so 1 MiB holds 8 units."""
    return (value % 5 + 1) * (MIB // 8)


class Model:
    """The specification, as simply as it can be written."""

    def __init__(self, max_size: int, default_ttl: Optional[float], limit: Optional[int],
                 clock: FakeClock, sized: bool) -> None:
        self.max_size = max_size
        self.default_ttl = INF if default_ttl is None else default_ttl
        self.limit = limit or 0
        self.sized = sized
        self.clock = clock
        # key -> [value, expires, own ttl, size]
        self.d: "OrderedDict[Any, list]" = OrderedDict()
        self.hits = self.misses = self.evictions = self.expirations = 0
        self.rejected = 0
        self.paused = False
        self.calls: List[Tuple[Any, Any]] = []

    def expired(self, key: Any) -> bool:
        return self.clock.now >= self.d[key][1]

    def memory(self) -> int:
        return sum(e[3] for e in self.d.values())

    def remove(self, key: Any, reason: Optional[str]) -> None:
        value = self.d.pop(key)[0]
        if reason == "expired":
            self.expirations += 1
        elif reason == "evicted":
            self.evictions += 1
        if reason:
            self.calls.append((key, value))

    def live(self, key: Any) -> bool:
        if key in self.d and self.expired(key):
            self.remove(key, "expired")
        return key in self.d

    def purge(self) -> int:
        dead = [k for k in self.d if self.expired(k)]
        for k in dead:
            self.remove(k, "expired")
        return len(dead)

    def evict_until(self, ok: Any, keep: Any = None) -> None:
        while not ok() and self.d and next(iter(self.d)) != keep:
            self.remove(next(iter(self.d)), "evicted")

    def set(self, key: Any, value: Any, ttl: Optional[float]) -> None:
        if self.paused:
            self.rejected += 1
            return
        ttl = self.default_ttl if ttl is None else ttl
        size = unit_size(key, value) if self.sized else 0
        if self.limit and size > self.limit:
            raise ValueError
        expires = self.clock.now + ttl if ttl != INF else INF
        if key in self.d:
            e = self.d[key]
            e[0], e[1], e[2], e[3] = value, expires, ttl, size
            self.d.move_to_end(key)
            self.evict_until(lambda: not self.limit or self.memory() <= self.limit, keep=key)
            return
        self.purge()
        self.evict_until(lambda: len(self.d) < self.max_size)
        if self.limit:
            self.evict_until(lambda: self.memory() + size <= self.limit)
        self.d[key] = [value, expires, ttl, size]

    def lookup(self, key: Any) -> Any:
        if self.live(key):
            self.hits += 1
            self.d.move_to_end(key)
            return self.d[key][0]
        self.misses += 1
        raise KeyError(key)

    def stats(self) -> tuple:
        self.purge()
        return (self.hits, self.misses, self.evictions, self.expirations, len(self.d),
                self.max_size, self.memory() if self.sized else 0, self.limit or None,
                self.rejected)


def outcome(fn: Any) -> Tuple[str, Any]:
    try:
        return ("ok", fn())
    except Exception as exc:  # the type is what must agree
        return ("raise", type(exc).__name__)


keys = st.one_of(st.integers(0, 12), st.sampled_from(["a", "b", "c", 0.0, 1.0, True]))
values = st.integers(0, 30)
ttls = st.sampled_from([None, None, 0.5, 1.0, 2.5, 5.0, INF])


class LRUMachine(RuleBasedStateMachine):
    @initialize(max_size=st.integers(1, 8), default_ttl=st.sampled_from([None, None, 3.0, INF]),
                limit=st.sampled_from([None, None, 1, 0.5]),
                sized=st.booleans())
    def setup(self, max_size: int, default_ttl: Optional[float], limit: Optional[float],
              sized: bool) -> None:
        self.clock = FakeClock()
        sized = sized or limit is not None
        self.recorders: List[Recorder] = []
        self.caches = []
        # LRUCache and Cache(policy="lru") of each implementation: one
        # behaviour, four objects, and the model
        for impl in all_impls():
            for make in (impl.LRUCache, functools.partial(impl.Cache, policy="lru")):
                rec = Recorder()
                self.recorders.append(rec)
                self.caches.append(make(
                    max_size, default_ttl, memory_limit_mb=limit,
                    getsizeof=unit_size if sized else None,
                    eviction_callback=rec, clock=self.clock))
        self.model = Model(max_size, default_ttl, int(limit * MIB) if limit else None,
                           self.clock, sized)

    def check(self, *results: Tuple[str, Any]) -> None:
        first = results[0]
        for r in results[1:]:
            assert r == first, results
        calls = [Counter(rec.calls) for rec in self.recorders]
        for c in calls:
            assert c == Counter(self.model.calls), (calls, self.model.calls)
        for rec in self.recorders:
            rec.calls.clear()
        self.model.calls.clear()

    def run(self, op: Any, model_op: Any) -> None:
        results = [outcome(lambda c=c: op(c)) for c in self.caches]
        results.append(outcome(model_op))
        self.check(*results)

    @rule(key=keys, value=values, ttl=ttls)
    def set(self, key: Any, value: int, ttl: Optional[float]) -> None:
        self.run(lambda c: c.set(key, value, ttl=ttl), lambda: self.model.set(key, value, ttl))

    @rule(key=keys, value=values)
    def setitem(self, key: Any, value: int) -> None:
        self.run(lambda c: c.__setitem__(key, value), lambda: self.model.set(key, value, None))

    @rule(key=keys)
    def getitem(self, key: Any) -> None:
        self.run(lambda c: c[key], lambda: self.model.lookup(key))

    @rule(key=keys)
    def get(self, key: Any) -> None:
        def model() -> Any:
            try:
                return self.model.lookup(key)
            except KeyError:
                return "default"
        self.run(lambda c: c.get(key, "default"), model)

    @rule(key=keys)
    def peek(self, key: Any) -> None:
        self.run(lambda c: c.peek(key, "default"),
                 lambda: self.model.d[key][0] if self.model.live(key) else "default")

    @rule(key=keys)
    def contains(self, key: Any) -> None:
        self.run(lambda c: key in c, lambda: self.model.live(key))

    @rule(key=keys)
    def delitem(self, key: Any) -> None:
        def model() -> None:
            if not self.model.live(key):
                raise KeyError(key)
            self.model.remove(key, None)
        self.run(lambda c: c.__delitem__(key), model)

    @rule(key=keys)
    def pop(self, key: Any) -> None:
        def model() -> Any:
            if not self.model.live(key):
                return "default"
            value = self.model.d[key][0]
            self.model.remove(key, None)
            return value
        self.run(lambda c: c.pop(key, "default"), model)

    @rule()
    def popitem(self) -> None:
        def model() -> Any:
            self.model.purge()
            if not self.model.d:
                raise KeyError
            key = next(iter(self.model.d))
            value = self.model.d[key][0]
            self.model.remove(key, None)
            return (key, value)
        self.run(lambda c: c.popitem(), model)

    @rule(key=keys, value=values)
    def setdefault(self, key: Any, value: int) -> None:
        def model() -> Any:
            try:
                return self.model.lookup(key)
            except KeyError:
                self.model.set(key, value, None)
                return value
        self.run(lambda c: c.setdefault(key, value), model)

    @rule(key=keys, value=values, ttl=ttls)
    def get_or_set(self, key: Any, value: int, ttl: Optional[float]) -> None:
        def model() -> Any:
            try:
                return self.model.lookup(key)
            except KeyError:
                self.model.set(key, value, ttl)
                return value
        self.run(lambda c: c.get_or_set(key, lambda: value, ttl=ttl), model)

    @rule(key=keys, ttl=ttls)
    def touch(self, key: Any, ttl: Optional[float]) -> None:
        def model() -> None:
            if not self.model.live(key):
                raise KeyError(key)
            e = self.model.d[key]
            seconds = e[2] if ttl is None else ttl
            e[2] = seconds
            e[1] = INF if seconds == INF else self.clock.now + seconds
        self.run(lambda c: c.touch(key, ttl=ttl), model)

    @rule(key=keys)
    def ttl(self, key: Any) -> None:
        def model() -> Any:
            if not self.model.live(key):
                raise KeyError(key)
            e = self.model.d[key]
            return None if e[1] == INF else round(e[1] - self.clock.now, 6)

        def real(c: Any) -> Any:
            left = c.ttl(key)
            return None if left is None else round(left, 6)
        self.run(real, model)

    @rule()
    def expire(self) -> None:
        self.run(lambda c: c.expire(), self.model.purge)

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.5, 10.0]))
    def tick(self, seconds: float) -> None:
        self.clock.tick(seconds)

    @rule(max_size=st.integers(1, 8))
    def resize_count(self, max_size: int) -> None:
        def model() -> None:
            self.model.max_size = max_size
            self.model.evict_until(lambda: len(self.model.d) <= max_size)
            if self.model.limit:
                self.model.evict_until(lambda: self.model.memory() <= self.model.limit)
        self.run(lambda c: c.resize(max_size=max_size), model)

    @precondition(lambda self: self.model.sized)
    @rule(limit=st.sampled_from([None, 0.25, 0.5, 1, 2]))
    def resize_memory(self, limit: Optional[float]) -> None:
        def model() -> None:
            self.model.limit = int(limit * MIB) if limit else 0
            if self.model.limit:
                self.model.evict_until(lambda: self.model.memory() <= self.model.limit)
        self.run(lambda c: c.resize(memory_limit_mb=limit), model)

    @rule()
    def length(self) -> None:
        self.run(len, lambda: (self.model.purge(), len(self.model.d))[1])

    @rule()
    def items(self) -> None:
        self.run(lambda c: list(c.items()),
                 lambda: (self.model.purge(), [(k, e[0]) for k, e in self.model.d.items()])[1])

    @rule()
    def stats(self) -> None:
        def real(c: Any) -> tuple:
            s = c.stats()
            return (s.hits, s.misses, s.evictions, s.expirations, s.size, s.max_size,
                    s.memory_bytes, s.memory_limit_bytes, s.rejected)
        self.run(real, self.model.stats)

    @rule()
    def clear(self) -> None:
        self.run(lambda c: c.clear(), lambda: self.model.d.clear())

    @rule()
    def reset_stats(self) -> None:
        def model() -> None:
            m = self.model
            m.hits = m.misses = m.evictions = m.expirations = m.rejected = 0
        self.run(lambda c: c.reset_stats(), model)

    @rule(n=st.integers(0, 4))
    def evict(self, n: int) -> None:
        def model() -> int:
            k = 0
            while k < n and self.model.d:
                self.model.remove(next(iter(self.model.d)), "evicted")
                k += 1
            return k
        self.run(lambda c: c.evict(n), model)

    @rule(paused=st.booleans())
    def pause(self, paused: bool) -> None:
        def model() -> None:
            self.model.paused = paused
        self.run(lambda c: c.pause_writes() if paused else c.resume_writes(), model)

    @invariant()
    def same_contents(self) -> None:
        # raw contents, expired entries included, without triggering expiry
        expect = [(k, e[0], e[1]) for k, e in self.model.d.items()]
        for c in self.caches:
            assert c._check()
            got = [(k, v, round(x, 6) if x != INF else x) for k, v, x in c._raw()]
            assert [(k, v) for k, v, _ in got] == [(k, v) for k, v, _ in expect]
            assert [x for _, _, x in got] == [round(x, 6) if x != INF else x for _, _, x in expect]


TestLRUDifferential = LRUMachine.TestCase
TestLRUDifferential.settings = settings(
    max_examples=int(__import__("os").environ.get("CORECACHE_HYPOTHESIS_EXAMPLES", "300")),
    stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
