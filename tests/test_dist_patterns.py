"""The patterns end to end, on MemoryStore, one Redis node and a Redis
Cluster: read-through, write-through, refresh-ahead, near cache, the
decorator, warm(), stampede protection and statistics.  Separate cache
instances on one store stand for separate processes here (each has its own
single flight and local tier); test_dist_processes.py uses real ones.
Every test runs in both styles (the ``dist`` fixture, dist_styles.py)."""
from __future__ import annotations

import threading
import time

import pytest

from conftest import FakeClock
from corecache.distributed._protocol import FillGuard
from dist_helpers import wait_for

pytestmark = pytest.mark.redis


class Loader:
    """A loader that counts its calls (and can be slow or fail)."""

    def __init__(self, delay: float = 0.0, fail: int = 0) -> None:
        self.calls = []
        self.batches = []
        self.delay = delay
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, key):
        with self.lock:
            self.calls.append(key)
            n = len(self.calls)
        if self.delay:
            time.sleep(self.delay)
        if n <= self.fail:
            raise RuntimeError(f"load {n} failed")
        if key.startswith("absent"):
            raise KeyError(key)
        return {"key": key, "n": n}

    def many(self, keys):
        with self.lock:
            self.batches.append(list(keys))
        return {k: {"key": k, "batch": len(self.batches)} for k in keys
                if not k.startswith("absent")}


def run_threads(n, fn):
    out = [None] * n
    errors = []
    barrier = threading.Barrier(n)

    def work(i):
        barrier.wait()
        try:
            out[i] = fn(i)
        except BaseException as exc:  # noqa: B902
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out, errors


# ---- read-through -------------------------------------------------------------


def test_read_through_fills_the_tiers(dist, make_store, impl):
    store = dist.make_store()
    load = Loader()
    a = dist.ReadThroughCache(store, load, ttl=60, local=impl.LRUCache(100))
    assert a.get("k") == {"key": "k", "n": 1}
    assert a.get("k") == {"key": "k", "n": 1}          # local tier
    assert a.get(7) == {"key": "7", "n": 2}            # int keys are their decimal str
    assert store.get("k") == {"key": "k", "n": 1}      # the store was filled
    b = dist.ReadThroughCache(store, load, ttl=60, local=impl.LRUCache(100))   # "another process"
    assert b.get("k") == {"key": "k", "n": 1}          # from the store, no load
    assert load.calls == ["k", "7"]
    sa, sb = a.stats(), b.stats()
    assert isinstance(sa, dist.DistributedStats)
    assert (sa.local_hits, sa.store_hits, sa.misses, sa.loads) == (1, 0, 2, 2)
    assert (sb.local_hits, sb.store_hits, sb.misses, sb.loads) == (0, 1, 0, 0)
    assert sa.hit_rate == pytest.approx(1 / 3)
    assert set(sa.as_dict()) >= {"local_hits", "store_hits", "misses", "loads", "load_errors",
                                 "store_errors", "pending_writes", "flush_latency"}


@pytest.mark.parametrize("policy", ["adaptive", "lru"])
def test_the_local_tier_takes_any_cache(dist, make_store, impl, policy):
    store = dist.make_store()
    load = Loader()
    local = impl.Cache(100, policy=policy)
    a = dist.ReadThroughCache(store, load, ttl=60, local=local)
    assert a.get("k") == {"key": "k", "n": 1}
    assert a.get("k") == {"key": "k", "n": 1}          # local tier
    assert "k" in local and local.stats().hits >= 1
    near = dist.NearCache(store, local=impl.Cache(100, policy=policy), ttl=60)
    try:
        near.set("n", 1)
        assert near.get("n") == 1
    finally:
        near.close()
    assert (a.stats().local_hits, a.stats().loads) == (1, 1)


def test_read_through_without_local_tier_and_ttl(dist, make_store):
    store = dist.make_store()
    rt = dist.ReadThroughCache(store, Loader(), ttl=30)
    rt.get("a")
    _, left = store.get_with_ttl("a")
    assert 29 < left <= 30
    rt.set("b", [1])                                    # a plain cache write
    assert rt.get("b") == [1]
    assert rt.delete("b") is True and store.get("b") is None


def test_loader_errors_and_absent_keys(dist, make_store, impl):
    store = dist.make_store()
    load = Loader(fail=1)
    rt = dist.ReadThroughCache(store, load, ttl=60, local=impl.LRUCache(10))
    with pytest.raises(RuntimeError, match="load 1 failed"):
        rt.get("k")
    assert store.get("k") is None                       # nothing cached
    assert rt.get("k")["n"] == 2                        # the next get loads again
    with pytest.raises(KeyError):
        rt.get("absent-1")
    s = rt.stats()
    assert s.load_errors == 2 and s.loads == 1
    assert rt.get_many(["absent-2", "k"]) == {"k": {"key": "k", "n": 2}}


def test_loaded_values_must_serialize(dist, make_store):
    rt = dist.ReadThroughCache(dist.make_store(), lambda k: object(), ttl=60)
    with pytest.raises(TypeError, match="JSON"):
        rt.get("k")


def test_values_are_what_other_processes_see(dist, make_store, impl):
    """JSON turns tuples into lists: the process that loaded gets a list too."""
    rt = dist.ReadThroughCache(dist.make_store(), lambda k: (1, 2), ttl=60, local=impl.LRUCache(10))
    assert rt.get("k") == [1, 2]
    assert rt.get("k") == [1, 2]


def test_get_many_loads_only_what_is_missing(dist, make_store, impl):
    store = dist.make_store()
    load = Loader()
    rt = dist.ReadThroughCache(store, load, ttl=60, local=impl.LRUCache(100),
                          loader_many=load.many)
    store.set("in-store", "s")
    rt.get("in-local")
    got = rt.get_many(["in-local", "in-store", "new1", "new2", 3, "absent", "new1"])
    assert list(got) == ["in-local", "in-store", "new1", "new2", "3"]
    assert got["in-store"] == "s" and got["new2"] == {"key": "new2", "batch": 1}
    assert load.batches == [["new1", "new2", "3", "absent"]]
    assert store.get_many(["new1", "new2", "3"]).keys() == {"new1", "new2", "3"}
    assert rt.get_many(["new1", "new2", "3"]) == {k: got[k] for k in ("new1", "new2", "3")}
    assert load.batches == [["new1", "new2", "3", "absent"]]     # all local now
    # without loader_many, the loader runs per missing key
    rt2 = dist.ReadThroughCache(store, load, ttl=60)
    assert set(rt2.get_many(["x", "y", "absent-z"])) == {"x", "y"}
    assert load.calls[-3:] == ["x", "y", "absent-z"]


def test_single_flight_in_process(dist, make_store, impl):
    load = Loader(delay=0.1)
    rt = dist.ReadThroughCache(dist.make_store(), load, ttl=60, local=impl.LRUCache(10))
    out, errors = run_threads(16, lambda i: rt.get("hot"))
    assert not errors
    assert load.calls == ["hot"]
    assert all(v == out[0] for v in out)


def test_stampede_across_instances(dist, make_store):
    """Instances with their own single flight (as processes): the store's
    lock lets one load while the others wait for its value."""
    store = dist.make_store()
    load = Loader(delay=0.2)
    caches = [dist.ReadThroughCache(store, load, ttl=60) for _ in range(6)]
    out, errors = run_threads(6, lambda i: caches[i].get("hot"))
    assert not errors
    assert load.calls == ["hot"]
    assert all(v == out[0] for v in out)
    # the others waited for its value (or, if they came late, found it stored)
    assert sum(c.stats().lock_waits + c.stats().store_hits for c in caches) == 5


def test_stampede_batches_across_instances(dist, make_store):
    store = dist.make_store()
    load = Loader(delay=0.2)
    caches = [dist.ReadThroughCache(store, load, ttl=60, loader_many=lambda ks: (
        time.sleep(0.2), load.many(ks))[1]) for _ in range(4)]
    keys = [f"k{i}" for i in range(20)]
    out, errors = run_threads(4, lambda i: caches[i].get_many(keys))
    assert not errors
    assert all(o == out[0] for o in out) and len(out[0]) == 20
    loaded = [k for batch in load.batches for k in batch]
    assert sorted(loaded) == sorted(keys)              # each key loaded once


def test_a_failed_load_is_shared_with_its_waiters(dist, make_store):
    """Instances (as processes) waiting for another's load raise its failure
    instead of each calling the loader in turn; the next lookup loads anew."""
    store = dist.make_store()
    load = Loader(delay=0.2, fail=1)
    caches = [dist.ReadThroughCache(store, load, ttl=60) for _ in range(3)]
    out, errors = run_threads(3, lambda i: caches[i].get("k"))
    assert len(load.calls) == 1 and out == [None] * 3
    assert sorted(type(e).__name__ for e in errors) == ["LoadFailed", "LoadFailed",
                                                         "RuntimeError"]
    shared = next(e for e in errors if isinstance(e, dist.LoadFailed))
    assert "RuntimeError: load 1 failed" in str(shared) and shared.key == "k"
    assert caches[1].get("k")["n"] == 2                # a new lookup loads again
    assert sum(c.stats().lock_waits for c in caches) == 2
    # a KeyError ("no such key") is shared as a KeyError
    miss = [dist.ReadThroughCache(store, Loader(delay=0.2), ttl=60) for _ in range(3)]
    out, errors = run_threads(3, lambda i: miss[i].get("absent-x"))
    assert len(errors) == 3 and all(type(e) is KeyError for e in errors)


def test_lock_wait_runs_out_then_loads(dist, make_store):
    store = dist.make_store()
    assert store.lock("k", "a process that hangs", 30)
    load = Loader()
    rt = dist.ReadThroughCache(store, load, ttl=60, lock_wait=0.15)
    t0 = time.monotonic()
    assert rt.get("k")["n"] == 1
    assert time.monotonic() - t0 >= 0.15
    assert rt.stats().lock_timeouts == 1
    rt2 = dist.ReadThroughCache(store, load, ttl=60, stampede=False)
    rt2.delete("k")
    rt2.get("k")
    assert len(load.calls) == 2


def test_validation(dist, make_store):
    store = dist.make_store()
    with pytest.raises(TypeError, match="store must be"):
        dist.ReadThroughCache({}, Loader(), ttl=1)
    with pytest.raises(TypeError, match="loader must be callable"):
        dist.ReadThroughCache(store, None, ttl=1)
    with pytest.raises(ValueError, match="ttl"):
        dist.ReadThroughCache(store, Loader(), ttl=-1)
    with pytest.raises(TypeError, match="local must be"):
        dist.ReadThroughCache(store, Loader(), ttl=1, local={})
    with pytest.raises(ValueError, match="lock_lease"):
        dist.ReadThroughCache(store, Loader(), ttl=1, lock_lease=0)
    with pytest.raises(TypeError, match="stampede"):
        dist.ReadThroughCache(store, Loader(), ttl=1, stampede=1)
    with pytest.raises(TypeError, match="writer must be callable"):
        dist.WriteThroughCache(store, None, ttl=1)
    with pytest.raises(ValueError, match="refresh_ahead"):
        dist.RefreshAheadCache(store, Loader(), ttl=1, refresh_ahead=1)
    with pytest.raises(TypeError, match="ttl"):
        dist.RefreshAheadCache(store, Loader(), ttl=None)
    with pytest.raises(TypeError, match="local="):
        dist.NearCache(store, local=None)


def test_reentrant_loader_is_an_error(dist, make_store):
    if dist.style == "async":
        pytest.skip("a coroutine loader awaiting its own key: test_dist_aio.py")
    rt = None

    def loader(key):
        return rt.get(key)
    rt = dist.ReadThroughCache(dist.make_store(), loader, ttl=60)
    with pytest.raises(RuntimeError, match="asked for the same key"):
        rt.get("k")


# ---- write-through ------------------------------------------------------------


def test_write_through_writes_the_record_first(dist, make_store, impl):
    store = dist.make_store()
    db = {}
    order = []

    def writer(k, v):
        order.append(("writer", k, store.get(k)))
        db[k] = v
    wt = dist.WriteThroughCache(store, writer, ttl=60, local=impl.LRUCache(10))
    wt.set("a", {"v": 1})
    assert order == [("writer", "a", None)]            # the cache did not have it yet
    assert db == {"a": {"v": 1}} and store.get("a") == {"v": 1} and wt.get("a") == {"v": 1}
    assert wt.stats().writes == 1


def test_write_through_failure_leaves_the_cache_as_it_was(dist, make_store, impl):
    store = dist.make_store()
    state = {"fail": False}

    def writer(k, v):
        if state["fail"]:
            raise IOError("database down")
    wt = dist.WriteThroughCache(store, writer, ttl=60, local=impl.LRUCache(10))
    wt.set("a", 1)
    state["fail"] = True
    with pytest.raises(IOError, match="database down"):
        wt.set("a", 2)
    assert wt.get("a") == 1 and store.get("a") == 1   # no phantom value
    assert wt.stats().write_errors == 1
    calls = []
    with pytest.raises(TypeError, match="JSON"):
        dist.WriteThroughCache(store, lambda k, v: calls.append(k), ttl=60).set("b", object())
    assert calls == []                                  # refused before the writer


def test_write_through_batches_and_deletes(dist, make_store):
    store = dist.make_store()
    db = {}
    batches = []
    wt = dist.WriteThroughCache(store, db.__setitem__, ttl=60,
                           writer_many=lambda m: (batches.append(m), db.update(m)),
                           deleter=db.pop)
    wt.set_many({"a": 1, "b": 2})
    assert batches == [{"a": 1, "b": 2}] and store.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert wt.delete("a") is True
    assert "a" not in db and store.get("a") is None
    plain = dist.WriteThroughCache(store, db.__setitem__, ttl=60)
    plain.set_many({"c": 3})
    assert db["c"] == 3 and plain.delete("c") is True and db["c"] == 3   # evicts only


# ---- refresh-ahead ------------------------------------------------------------


def test_refresh_ahead_on_a_fake_clock(dist):
    clock = FakeClock()
    store = dist.MemoryStore(clock=clock)
    load = Loader()
    ra = dist.RefreshAheadCache(store, load, ttl=10, refresh_ahead=0.8)
    try:
        assert ra.get("k")["n"] == 1
        clock.tick(7)
        assert ra.get("k")["n"] == 1 and load.calls == ["k"]   # younger than 8 s
        clock.tick(1.5)
        assert ra.get("k")["n"] == 1                           # at once, the old value
        deadline = time.monotonic() + 5
        while ra.stats().refreshes < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert ra.get("k")["n"] == 2                           # reloaded in the background
        assert store.get_with_ttl("k")[1] == 10
        clock.tick(9.9)
        assert ra.get("k")["n"] == 2                           # never expired under readers
    finally:
        ra.close()


def test_refresh_ahead_reloads_once_across_instances(dist):
    clock = FakeClock()
    store = dist.MemoryStore(clock=clock)
    load = Loader(delay=0.1)
    caches = [dist.RefreshAheadCache(store, load, ttl=10) for _ in range(4)]
    try:
        caches[0].get("k")
        clock.tick(9)
        out, errors = run_threads(8, lambda i: caches[i % 4].get("k"))
        assert not errors and all(o["n"] == 1 for o in out)
        deadline = time.monotonic() + 5
        while len(load.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.2)
        assert load.calls == ["k", "k"]                        # one refresh in all
    finally:
        for c in caches:
            c.close()


def test_refresh_failure_keeps_the_value(dist):
    clock = FakeClock()
    store = dist.MemoryStore(clock=clock)
    load = Loader()
    ra = dist.RefreshAheadCache(store, load, ttl=10)
    try:
        ra.get("k")
        load.fail = 99
        clock.tick(9)
        assert ra.get("k")["n"] == 1
        deadline = time.monotonic() + 5
        while ra.stats().refresh_errors < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert ra.stats().refresh_errors == 1
        assert ra.get("k")["n"] == 1
    finally:
        ra.close()


def test_refresh_ahead_on_redis(dist, make_store, impl):
    store = dist.make_store()
    load = Loader()
    ra = dist.RefreshAheadCache(store, load, ttl=0.6, refresh_ahead=0.5,
                           local=impl.LRUCache(10))
    try:
        assert ra.get("k")["n"] == 1
        assert ra.get_many(["k"])["k"]["n"] == 1
        time.sleep(0.4)                                        # past 0.3 s
        assert ra.get("k")["n"] == 1                           # the local copy expired at 0.3 s
        deadline = time.monotonic() + 5
        while ra.stats().refreshes < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ra.get("k")["n"] == 2
    finally:
        ra.close()


# ---- near cache ---------------------------------------------------------------


def test_near_cache_invalidates_other_instances(dist, make_store, impl):
    store = dist.make_store()
    a = dist.NearCache(store, local=impl.LRUCache(100, default_ttl=30), ttl=60)
    b = dist.NearCache(store, local=impl.LRUCache(100, default_ttl=30), ttl=60)
    try:
        assert a.local_enabled and b.local_enabled
        a.set("k", 1)
        assert a.local.peek("k") == 1                  # own write: local updated
        assert b.get("k") == 1 and b.get("k") == 1     # store, then local
        assert b.local.peek("k") == 1
        a.set("k", 2)
        assert wait_for(lambda: b.local.peek("k") is None)
        assert b.get("k") == 2
        a.delete("k")
        assert wait_for(lambda: b.local.peek("k") is None)
        assert b.get("k") is None and b.get("k", "d") == "d"
        a.set_many({"x": 1, "y": 2})
        time.sleep(0.05)          # its own invalidation reaches b first
        assert b.get_many(["x", "y"]) == {"x": 1, "y": 2}
        a.delete_many(["x"])
        assert wait_for(lambda: b.local.peek("x") is None)
        assert b.local.peek("y") == 2
        store.clear()                                  # everything, everywhere
        assert wait_for(lambda: b.local.peek("y") is None)
        assert b.stats().invalidations >= 1
        assert not b.stats().local_bypassed
    finally:
        a.close()
        b.close()


def test_near_cache_with_loader(dist, make_store, impl):
    load = Loader()
    nc = dist.NearCache(dist.make_store(), local=impl.LRUCache(10), ttl=60, loader=load)
    try:
        assert nc.get("k")["n"] == 1 and nc.get("k")["n"] == 1
        assert load.calls == ["k"]
    finally:
        nc.close()


def test_fill_guard_drops_fills_overtaken_by_an_invalidation(dist):
    g = FillGuard()
    t = g.begin("k")
    g.invalidate("k")
    assert g.end(t) is False
    t = g.begin("k")
    g.invalidate("other")
    assert g.end(t) is True
    t1, t2 = g.begin("k"), g.begin("k")
    g.invalidate("k", keep=t1)                         # a write of this process
    assert g.end(t1) is True and g.end(t2) is False
    t = g.begin("k")
    g.invalidate_all()                                 # the channel dropped
    assert g.end(t) is False
    assert g.end(g.begin("k")) is True
    assert g._watch == {}


def test_near_cache_race_between_read_and_remote_write(dist, make_store, impl):
    """A value read just before another instance's write must not stay in
    the local tier after that write's invalidation."""
    store = dist.make_store()
    a = dist.NearCache(store, local=impl.LRUCache(100, default_ttl=30))
    b = dist.NearCache(store, local=impl.LRUCache(100, default_ttl=30))
    try:
        for i in range(30):
            a.set("k", i)
            stop = threading.Event()

            def reader():
                while not stop.is_set():
                    b.get("k")
            t = threading.Thread(target=reader)
            t.start()
            a.set("k", i + 1000)
            time.sleep(0.003)
            stop.set()
            t.join()
            assert wait_for(lambda: b.get("k") == i + 1000, 2), (i, b.get("k"))
    finally:
        a.close()
        b.close()


# ---- decorator and warm -------------------------------------------------------


def test_cached_decorator(dist, make_store, impl):
    store = dist.make_store()
    calls = []

    @dist.cached(store, ttl=60, local=impl.LRUCache(10))
    def price(item, qty=1, *, currency="EUR"):
        calls.append((item, qty, currency))
        return {"item": item, "total": qty * 2, "currency": currency}

    assert price("apple", 3)["total"] == 6
    assert price("apple", 3)["total"] == 6
    assert price("apple", qty=3)["total"] == 6          # another key, as functools
    assert price("apple", 3, currency="USD")["currency"] == "USD"
    assert len(calls) == 3
    key = price.key_of("apple", 3)
    assert key == f"{price.__module__}.{price.__qualname__}:'apple',3"
    assert store.get(key)["total"] == 6
    assert price.invalidate("apple", 3) is True
    price("apple", 3)
    assert len(calls) == 4
    assert price.__name__ == "price" and price.stats().misses == 4


def test_cached_decorator_keys_and_stampede(dist, make_store):
    store = dist.make_store()
    calls = []

    class Thing:
        pass

    @dist.cached(store, ttl=60, namespace="things", key=lambda t: "one")
    def f(thing):
        calls.append(1)
        time.sleep(0.1)
        return 1

    @dist.cached(store, ttl=60)
    def g(thing):
        return 1

    out, errors = run_threads(8, lambda i: f(Thing()))
    assert not errors and len(calls) == 1
    assert store.get("things:one") == 1
    with pytest.raises(TypeError, match="pass key="):
        g(Thing())
    assert dist.make_key((1, "a", None, 2.5, (1,), [2], {"k": b"v"}), {"z": 1, "a": 2}) == \
        "1,'a',None,2.5,(1,),[2],{'k':b'v'}|z=1,a=2"
    long = dist.make_key(("x" * 300,), {})
    assert long.startswith("sha256:") and len(long) == 71


def test_warm(dist, make_store):
    store = dist.make_store()
    load = Loader()
    rt = dist.ReadThroughCache(store, load, ttl=60, loader_many=load.many)
    assert dist.warm(rt, [f"k{i}" for i in range(1200)], batch_size=500) == 1200
    assert [len(b) for b in load.batches] == [500, 500, 200]
    assert len(store.get_many([f"k{i}" for i in range(1200)])) == 1200
    assert dist.warm(rt, {"a": 1, "b": 2}) == 2 and store.get("b") == 2
    with pytest.raises(TypeError):
        dist.warm({}, ["a"])
    with pytest.raises(ValueError):
        dist.warm(rt, ["a"], batch_size=0)


def test_every_pattern_has_stats_and_close(dist, make_store, impl):
    store = dist.make_store()
    caches = [dist.ReadThroughCache(store, Loader(), ttl=5), dist.WriteThroughCache(store, print, ttl=5),
              dist.WriteBehindCache(store, lambda k, v: None, flush_interval=0.05),
              dist.RefreshAheadCache(store, Loader(), ttl=5),
              dist.NearCache(store, local=impl.LRUCache(10)), dist.Cache(store)]
    for c in caches:
        assert isinstance(c.stats(), dist.DistributedStats)
        with c:
            pass
        c.close()                                      # idempotent


# ---- issue 13: fills, the local tier, the loader, statistics ------------------


class Gate:
    """A loader that reads the database, then waits to be let go (a slow
    load that began before a write)."""

    def __init__(self, db):
        self.db = db
        self.started = threading.Event()
        self.go = threading.Event()
        self.calls = 0

    def __call__(self, key):
        value = self.db.get(key, "absent")
        self.calls += 1
        self.started.set()
        assert self.go.wait(10)
        if value == "absent":
            raise KeyError(key)
        return value

    def many(self, keys):
        values = {k: self.db[k] for k in keys if k in self.db}
        self.calls += 1
        self.started.set()
        assert self.go.wait(10)
        return values


def in_thread(fn):
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: B902
            box["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    return t, box


@pytest.mark.parametrize("write", ["set", "delete"])
def test_a_slow_fill_never_overwrites_a_newer_write(dist, make_store, impl, write):
    """A read-through miss reads v1 from the database; a write-through of v2
    (or a delete) lands meanwhile; the slow fill must not put v1 back."""
    store = dist.make_store()
    db = {"k": "v1"}
    load = Gate(db)
    rt = dist.ReadThroughCache(store, load, ttl=60, local=impl.LRUCache(10))
    wt = dist.WriteThroughCache(store, db.__setitem__, ttl=60, deleter=db.pop)
    t, box = in_thread(lambda: rt.get("k"))
    assert load.started.wait(10)
    if write == "set":
        wt.set("k", "v2")
    else:
        wt.delete("k")
    load.go.set()
    t.join(10)
    assert box == {"value": "v1"}                 # it read before the write: fine
    assert store.get("k") == ("v2" if write == "set" else None)   # the write stands
    assert rt.local.peek("k") is None             # and v1 is not kept locally
    assert rt.stats().stale_fills == 1
    if write == "set":
        assert rt.get("k") == "v2" and load.calls == 1
    else:
        load.go.set()
        with pytest.raises(KeyError):
            rt.get("k")                           # deleted: the loader says so


def test_a_slow_batch_fill_never_overwrites_a_newer_write(dist, make_store):
    store = dist.make_store()
    db = {"a": "a1", "b": "b1"}
    load = Gate(db)
    rt = dist.ReadThroughCache(store, lambda k: db[k], ttl=60, loader_many=load.many)
    wt = dist.WriteThroughCache(store, db.__setitem__, ttl=60)
    t, box = in_thread(lambda: rt.get_many(["a", "b"]))
    assert load.started.wait(10)
    wt.set("a", "a2")
    load.go.set()
    t.join(10)
    assert box == {"value": {"a": "a1", "b": "b1"}}
    assert store.get_many(["a", "b"]) == {"a": "a2", "b": "b1"}    # b was filled, a not


def test_a_refresh_never_overwrites_a_newer_set(dist, make_store):
    store = dist.make_store()
    state = {"n": 0}
    started, go, returned = threading.Event(), threading.Event(), threading.Event()

    def loader(key):
        state["n"] += 1
        if state["n"] > 1:                        # the background reload
            started.set()
            assert go.wait(10)
            returned.set()
        return f"load {state['n']}"
    ra = dist.RefreshAheadCache(store, loader, ttl=2.0, refresh_ahead=0.1)
    try:
        assert ra.get("k") == "load 1"
        assert wait_for(lambda: ra.get("k") and started.is_set(), 5)   # due: reloading
        ra.set("k", "set meanwhile")
        go.set()
        assert returned.wait(5)
        wait_for(lambda: store.get("k") != "set meanwhile", 1.0)   # every chance to overwrite
        assert store.get("k") == "set meanwhile"
        assert wait_for(lambda: ra.stats().stale_fills == 1, 5) and ra.stats().refreshes == 0
    finally:
        go.set()
        ra.close()


def test_a_local_copy_never_outlives_its_store_entry(dist, make_store, impl):
    """An entry another process stored with a short TTL is kept locally no
    longer than it has left in the store (it was served up to its own TTL
    after the store entry expired)."""
    store = dist.make_store()
    loads = []
    rt = dist.ReadThroughCache(store, lambda k: loads.append(k) or f"reloaded {k}", ttl=60,
                          local=impl.LRUCache(10, default_ttl=60),
                          loader_many=lambda ks: loads.extend(ks) or {k: f"reloaded {k}"
                                                                      for k in ks})
    store.set("k", "short-lived", ttl=0.4)
    store.set_many({"a": 1, "b": 2}, ttl=0.4)
    assert rt.get("k") == "short-lived"
    assert rt.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert rt.local.peek("k") == "short-lived"
    assert wait_for(lambda: store.get_many(["k", "a", "b"]) == {}, 5)
    assert rt.get("k") == "reloaded k"
    assert rt.get_many(["a", "b"]) == {"a": "reloaded a", "b": "reloaded b"}
    assert sorted(loads) == ["a", "b", "k"]


def test_a_key_that_is_not_utf8_reads_through_the_loader(dist, make_store, impl):
    store = dist.make_store()
    bad = "user\udc80"
    load = Loader()
    rt = dist.ReadThroughCache(store, load, ttl=60, local=impl.LRUCache(10))
    assert rt.get(bad) == {"key": bad, "n": 1}            # no UnicodeEncodeError
    # never cached: each lookup asks the loader
    assert rt.get_many([bad, "ok"]) == {bad: {"key": bad, "n": 2}, "ok": {"key": "ok", "n": 3}}
    assert rt.stats().misses == 3
    written = []
    wt = dist.WriteThroughCache(store, lambda k, v: written.append(k), ttl=60)
    for write in (lambda: rt.set(bad, 1), lambda: wt.set(bad, 1), lambda: rt.delete(bad),
                  lambda: wt.set_many({bad: 1})):
        with pytest.raises(ValueError, match=r"key 'user\\udc80' cannot be stored"):
            write()
    assert written == []                                 # refused before the writer


def test_the_loader_runs_once_even_when_slower_than_the_lease(dist, make_store):
    """Instances (as processes) miss one key; the loader takes longer than
    lock_lease: the holder's lease is renewed while it loads, so nobody
    takes over (it ran once per lease before)."""
    store = dist.make_store()
    load = Loader(delay=1.0)
    caches = [dist.ReadThroughCache(store, load, ttl=60, lock_lease=0.3) for _ in range(4)]
    out, errors = run_threads(4, lambda i: caches[i].get("k"))
    assert not errors and load.calls == ["k"]
    assert all(o == out[0] for o in out)
    assert sum(c.stats().lock_waits for c in caches) == 3


@pytest.mark.parametrize("local", [False, True])
def test_every_lookup_counts_once(dist, make_store, impl, local):
    """10 threads missing one key: 10 misses, 9 of them waits on the shared
    load (the 9 were counted nowhere), then 10 hits."""
    load = Loader(delay=0.2)
    rt = dist.ReadThroughCache(dist.make_store(), load, ttl=60,
                          local=impl.LRUCache(10) if local else None)
    out, errors = run_threads(10, lambda i: rt.get("hot"))
    assert not errors and len(load.calls) == 1
    s = rt.stats()
    assert (s.misses, s.flight_waits, s.loads, s.hits) == (10, 9, 1, 0)
    out, errors = run_threads(10, lambda i: rt.get("hot"))
    s = rt.stats()
    assert s.hits == 10 and s.misses == 10
    assert (s.local_hits, s.store_hits) == ((10, 0) if local else (0, 10))
    waits = s.flight_waits               # the hits may have shared lookups too
    out, errors = run_threads(5, lambda i: rt.get_many(["x", "y"]))
    s = rt.stats()
    assert s.hits + s.misses == 30 and s.misses == 20 and s.flight_waits - waits == 8


def test_cached_decorator_namespace_has_no_colon(dist, make_store):
    with pytest.raises(ValueError, match="namespace"):
        dist.cached(dist.make_store(), ttl=1, namespace="a:b")


# ---- a near cache that sees every writer (CLIENT TRACKING) ------------------------


def _plain_client(request, store_kind):
    import redis
    if store_kind == "redis":
        return redis.Redis(port=request.getfixturevalue("redis_server").port)
    return request.getfixturevalue("redis_cluster").client()


def test_near_cache_sees_writes_that_bypass_corecache(dist, make_store, store_kind, impl,
                                                       request):
    """On a single node the server reports every change of a key of the
    namespace (CLIENT TRACKING, broadcast mode): a plain SET from another
    client, a Lua script, a DEL, an expiry, FLUSHALL.  Each drops the local
    copy within milliseconds.  A cluster hears only corecache's writes."""
    if store_kind == "memory":
        pytest.skip("MemoryStore: every write goes through corecache")
    store = dist.make_store(namespace="seen")
    near = dist.NearCache(store, local=impl.LRUCache(100, default_ttl=60), ttl=60)
    plain = _plain_client(request, store_kind)
    try:
        assert near.local_enabled and near.tracking == (store_kind == "redis")
        near.set("k", 1)
        assert near.local.peek("k") == 1          # its own write stays local

        def gone():
            return near.local.peek("k") is None
        if store_kind == "cluster":
            plain.set("seen:k", b"2")
            time.sleep(0.2)
            assert near.local.peek("k") == 1      # not seen: documented
            return
        for write in (lambda: plain.set("seen:k", b"2"),
                      lambda: plain.eval("redis.call('SET', KEYS[1], ARGV[1])", 1, "seen:k",
                                         b"3"),
                      lambda: plain.delete("seen:k"),
                      lambda: plain.flushall()):
            near.set("k", 0)
            assert near.local.peek("k") == 0
            write()
            assert wait_for(gone, 1.0)
        plain.set("seen:k", b"7")
        assert near.get("k") == 7
        assert near.stats().invalidations >= 3     # FLUSHALL clears without counting
    finally:
        near.close()
        plain.close()


def test_near_cache_bypasses_its_local_tier_while_the_stream_is_down(dist, make_store,
                                                                     store_kind, impl,
                                                                     request):
    """A dropped invalidation connection: the local tier is cleared and
    bypassed (a plain SET meanwhile is read from the store), then used again
    once the stream, and tracking with it, is back."""
    if store_kind != "redis":
        pytest.skip("a single node: the one tracking connection can be killed")
    store = dist.make_store(namespace="drop")
    near = dist.NearCache(store, local=impl.LRUCache(100, default_ttl=60), ttl=60,
                          heartbeat=0.2)
    plain = _plain_client(request, store_kind)
    try:
        near.set("k", 1)
        assert near.get("k") == 1 and near.local.peek("k") == 1
        plain.client_kill_filter(_type="pubsub")
        assert wait_for(lambda: not near.local_enabled, 2)
        assert near.local.peek("k") is None and near.stats().local_bypassed
        plain.set("drop:k", b"2")
        assert near.get("k") == 2                 # from the store
        assert wait_for(lambda: near.local_enabled, 5)
        assert near.tracking
        assert near.get("k") == 2 and near.local.peek("k") == 2
        plain.set("drop:k", b"3")                 # tracked again
        assert wait_for(lambda: near.local.peek("k") is None, 1.0)
        assert near.get("k") == 3
    finally:
        near.close()
        plain.close()
