"""Differential test of ObjectPool: hypothesis drives the compiled pool, the
pure twin and a plain model (lists and counters, written from the spec)
with the same operations, including failing factories, resets and
validations, clock advances, shrink/clear/prefill and close, and compares
every result, exception and stats() snapshot.  The invariants
``created - discarded == idle + in_use`` and ``idle + in_use <= max_size``
are checked after every step."""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Tuple

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import FakeClock, all_impls

from corecache import PoolClosed, PoolExhausted


class Obj:
    """A pooled object; `fate` decides what reset/validate make of it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.fate = "ok"

    def __repr__(self) -> str:
        return f"Obj({self.n})"


class Factory:
    def __init__(self) -> None:
        self.n = 0
        self.fail = False

    def __call__(self) -> Obj:
        if self.fail:
            raise OSError("factory failed")
        self.n += 1
        return Obj(self.n)


def reset(obj: Obj) -> None:
    if obj.fate == "reset-raises":
        raise RuntimeError("reset failed")


def validate(obj: Obj) -> bool:
    return obj.fate != "invalid"


class Model:
    """The specification, as simply as it can be written."""

    def __init__(self, max_size: int, min_size: int, idle_timeout: Optional[float],
                 clock: FakeClock) -> None:
        self.max_size = max_size
        self.min_size = min_size
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.idle: List[Tuple[int, float]] = []   # (serial, since), oldest first
        self.lent: List[int] = []
        self.fates: Dict[int, str] = {}
        self.made = 0
        self.fail = False
        self.closed = False
        self.created = self.reused = self.discarded = self.waits = self.timeouts = 0
        self.prefill(min_size)

    def total(self) -> int:
        return len(self.idle) + len(self.lent)

    def stats(self) -> Tuple[int, ...]:
        return (self.created, self.reused, len(self.lent), len(self.idle), self.discarded,
                self.waits, self.timeouts, self.max_size)

    def make(self) -> int:
        if self.fail:
            raise OSError("factory failed")
        self.made += 1
        self.created += 1
        self.fates[self.made] = "ok"
        return self.made

    def expire(self) -> int:
        k = 0
        if self.idle_timeout is None:
            return 0
        while (self.idle and self.total() > self.min_size
               and self.idle[0][1] + self.idle_timeout <= self.clock.now):
            self.idle.pop(0)
            self.discarded += 1
            k += 1
        return k

    def get(self) -> int:
        self.expire()
        if self.closed:
            raise PoolClosed("ObjectPool is closed")
        if self.idle:
            n = self.idle.pop()[0]
            self.reused += 1
        elif self.total() < self.max_size:
            n = self.make()
        else:
            self.timeouts += 1
            raise PoolExhausted(f"ObjectPool exhausted: all {self.max_size} objects are in use "
                                f"(timeout=0: did not wait)")
        self.lent.append(n)
        return n

    def put(self, n: int) -> None:
        if n not in self.lent:
            if any(i == n for i, _ in self.idle):
                raise ValueError(f"put: Obj({n}) was already put back into this pool")
            raise ValueError(f"put: Obj({n}) was not handed out by this pool")
        self.lent.remove(n)
        if self.fates[n] != "ok" or self.closed:
            self.discarded += 1
        else:
            self.idle.append((n, self.clock.now))

    def drop(self, k: int) -> int:
        k = min(k, len(self.idle))
        del self.idle[:k]
        self.discarded += k
        return k

    def prefill(self, want: int) -> int:
        if self.closed:
            raise PoolClosed("ObjectPool is closed")
        made = 0
        while self.total() < min(want, self.max_size):
            self.idle.append((self.make(), self.clock.now))
            made += 1
        return made

    def close(self) -> None:
        self.closed = True
        self.drop(len(self.idle))


def outcome(fn: Any) -> Tuple[str, Any]:
    try:
        return ("ok", fn())
    except Exception as exc:
        return (type(exc).__name__, str(exc))


class PoolMachine(RuleBasedStateMachine):
    @initialize(max_size=st.integers(1, 4), min_size=st.integers(0, 4),
                idle_timeout=st.sampled_from([None, 5.0]), checks=st.booleans())
    def setup(self, max_size: int, min_size: int, idle_timeout: Optional[float],
              checks: bool) -> None:
        min_size = min(min_size, max_size)
        self.clock = FakeClock()
        self.factories = []
        self.pools = []
        self.unraisable: List[Any] = []
        self.old_hook = sys.unraisablehook
        sys.unraisablehook = self.unraisable.append
        for impl in all_impls():
            f = Factory()
            self.factories.append(f)
            self.pools.append(impl.ObjectPool(
                f, max_size, min_size=min_size, idle_timeout=idle_timeout, clock=self.clock,
                reset=reset if checks else None, validate=validate if checks else None))
        self.checks = checks
        self.model = Model(max_size, min_size, idle_timeout, self.clock)
        # serial -> the object, per pool
        self.objects: List[Dict[int, Obj]] = [{} for _ in self.pools]
        for pool, objs in zip(self.pools, self.objects):
            for o in list(pool._idle_objects()):
                objs[o.n] = o

    def teardown(self) -> None:
        if hasattr(self, "old_hook"):
            sys.unraisablehook = self.old_hook

    def run(self, op: Any, model_op: Any) -> Any:
        results = [outcome(lambda p=p, i=i: op(p, i)) for i, p in enumerate(self.pools)]
        expected = outcome(model_op)
        for r in results:
            assert r == expected, (results, expected)
        return expected

    def remember(self, i: int, obj: Obj) -> int:
        self.objects[i][obj.n] = obj
        return obj.n

    @rule()
    def get(self) -> None:
        self.run(lambda p, i: self.remember(i, p.get(timeout=0)), self.model.get)

    @rule(k=st.integers(0, 7))
    def put(self, k: int) -> None:
        if not self.model.lent:
            return
        n = self.model.lent[k % len(self.model.lent)]
        self.run(lambda p, i: p.put(self.objects[i][n]), lambda: self.model.put(n))

    @rule(k=st.integers(0, 7))
    def put_twice_or_foreign(self, k: int) -> None:
        known = sorted(self.model.fates)
        if not known or k == 0:
            self.run(lambda p, i: p.put(Obj(999)), lambda: self.model.put(999))
            return
        n = known[k % len(known)]
        if n in self.model.lent:
            return
        self.run(lambda p, i: p.put(self.objects[i][n]), lambda: self.model.put(n))

    @rule(fate=st.sampled_from(["ok", "reset-raises", "invalid"]))
    def with_block_raising(self, fate: str) -> None:
        def op(p: Any, i: int) -> None:
            with p.acquire(timeout=0) as o:
                self.remember(i, o)
                o.fate = fate if self.checks else "ok"
                raise KeyError("body")

        def model_op() -> None:
            n = self.model.get()
            self.model.fates[n] = fate if self.checks else "ok"
            self.model.put(n)
            raise KeyError("body")
        self.run(op, model_op)

    @rule(k=st.integers(0, 7), fate=st.sampled_from(["reset-raises", "invalid", "ok"]))
    def spoil(self, k: int, fate: str) -> None:
        if not self.model.lent or not self.checks:
            return
        n = self.model.lent[k % len(self.model.lent)]
        self.model.fates[n] = fate
        for objs in self.objects:
            objs[n].fate = fate

    @rule(fail=st.booleans())
    def factory_fails(self, fail: bool) -> None:
        self.model.fail = fail
        for f in self.factories:
            f.fail = fail

    @rule(seconds=st.sampled_from([1.0, 2.5, 5.0]))
    def tick(self, seconds: float) -> None:
        self.clock.tick(seconds)

    @rule()
    def expire(self) -> None:
        self.run(lambda p, i: p.expire(), self.model.expire)

    @rule(k=st.integers(0, 3))
    def shrink(self, k: int) -> None:
        self.run(lambda p, i: p.shrink(k), lambda: self.model.drop(k))

    @rule()
    def clear(self) -> None:
        self.run(lambda p, i: p.clear(), lambda: self.model.drop(len(self.model.idle)))

    @rule(want=st.integers(0, 5))
    def prefill(self, want: int) -> None:
        def op(p: Any, i: int) -> int:
            made = p.prefill(want)
            for o in p._idle_objects():
                self.remember(i, o)
            return made
        self.run(op, lambda: self.model.prefill(want))

    @rule()
    def close(self) -> None:
        self.run(lambda p, i: p.close(), self.model.close)

    @invariant()
    def same_stats(self) -> None:
        if not hasattr(self, "model"):
            return
        expect = self.model.stats()
        for p in self.pools:
            st_ = p.stats()
            assert tuple(st_.as_dict().values()) == expect
            assert st_.created - st_.discarded == st_.idle + st_.in_use
            assert st_.idle + st_.in_use <= st_.max_size
            assert p._check()
            assert [o.n for o in p._idle_objects()] == [n for n, _ in self.model.idle]


TestPoolDifferential = PoolMachine.TestCase
TestPoolDifferential.settings = settings(
    max_examples=int(os.environ.get("CORECACHE_HYPOTHESIS_EXAMPLES", "300")),
    stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
