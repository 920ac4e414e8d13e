"""Real faults on a Redis server of the test's own: killed and restarted
(with an append-only file, an RDB snapshot, or no persistence), stopped
(SIGSTOP), slow (DEBUG SLEEP), writes paused (CLIENT PAUSE WRITE), full
(maxmemory + noeviction), and a tampered signed-pickle value."""
from __future__ import annotations

import logging
import pickle
import threading
import time

import pytest

from corecache.distributed import (CacheWriteError, NearCache, ReadThroughCache, RedisStore,
                                   StoreError, StoreUnavailable, WriteBehindCache,
                                   WriteThroughCache, WritesLostError)
from dist_helpers import Record, fault_figures, show, wait_for
from redis_servers import RedisServer, quick_client

pytestmark = pytest.mark.redis


def store_on(server, **kw):
    kw.setdefault("circuit_breaker", 0.1)
    store = RedisStore(quick_client(server.port, socket_timeout=0.3), **kw)
    store._owns_client = True
    return store


def answers(store):
    """True if Redis answers through store's breaker (a probe that closes it)."""
    try:
        return store.ping()
    except StoreUnavailable:
        return False


class Loader:
    def __init__(self):
        self.calls = []

    def __call__(self, key):
        self.calls.append(key)
        return f"loaded {key} #{len(self.calls)}"


def test_redis_killed_and_restarted(fresh_redis, impl):
    store = store_on(fresh_redis)
    load = Loader()
    rt = ReadThroughCache(store, load, ttl=60, local=impl.LRUCache(100))
    db = {}
    wt = WriteThroughCache(store, db.__setitem__, ttl=60)
    wb = WriteBehindCache(store, db.__setitem__, flush_interval=0.05)
    try:
        assert rt.get("a") == "loaded a #1"
        fresh_redis.kill()
        assert rt.get("a") == "loaded a #1"              # the local tier still answers
        assert rt.get("b") == "loaded b #2"              # the loader answers for Redis
        assert rt.get_many(["c", "b"]) == {"c": "loaded c #3", "b": "loaded b #2"}
        assert rt.stats().store_errors >= 2
        with pytest.raises(CacheWriteError) as info:     # written, but not cached
            wt.set("w", 1)
        assert info.value.written and db["w"] == 1
        with pytest.raises(StoreUnavailable):            # never acknowledged
            wb.set("x", 1)
        with pytest.raises(StoreError):
            rt.set("s", 1)
        wb.flush(1)                                      # nothing was acknowledged
        fresh_redis.start()
        # after its pause the breaker lets one call probe Redis while the
        # others fail at once (wb's flusher may be that probe): wait until a
        # probe closed it
        assert wait_for(lambda: answers(store), 5)
        assert rt.get("d") == "loaded d #4"
        assert store.get("d") == "loaded d #4"           # Redis is used again
        wb.set("x", 2)
        wb.flush(5)
        assert db["x"] == 2
    finally:
        rt.close()
        wb.close()
        store.close()


@pytest.mark.parametrize("persistence", ["aof", "rdb", "none"])
def test_a_restart_of_redis_holding_queued_writes(persistence, tmp_path, caplog,
                                                  no_thread_leaks):
    """kill -9 of the Redis server holding 200 acknowledged write-behind
    writes (the database down, so none written yet), then a restart.  With
    appendonly yes nothing is lost.  With only an RDB snapshot (taken after
    100 of them) or no persistence, the writes the server lost were lost
    silently: flush() returned normally.  Now flush() names exactly them,
    and a warning at start-up said the queue would not survive a restart."""
    server = RedisServer(persistence=persistence == "aof").start()
    record = Record(str(tmp_path / "record.db"))
    gate = threading.Event()

    def writer(k, v):
        if not gate.is_set():
            raise IOError("database down")
        record.write(k, v)
    store = store_on(server)
    with caplog.at_level(logging.WARNING, logger="corecache.distributed"):
        wb = WriteBehindCache(store, writer, flush_interval=0.05, retry_base=0.02,
                              retry_max=0.1)
        WriteBehindCache(store, writer).close()          # warned once per store
    assert caplog.text.count("without an append-only file") == (persistence != "aof")
    acked = {}
    try:
        for i in range(200):
            if i == 100 and persistence == "rdb":
                store.client.save()                      # a snapshot halfway
            wb.set(f"k{i}", i)
            acked[f"k{i}"] = i
        server.kill()                                    # SIGKILL: no shutdown save
        server.start()
        gate.set()
        lost = []
        try:
            wb.flush(20)
        except WritesLostError as exc:
            lost = exc.lost
        figures = fault_figures(acked, record)
        figures["named by flush"] = len(lost)
        show(f"kill -9 of Redis holding 200 queued writes, restart ({persistence})", figures)
        never = {k for k, v in acked.items() if (k, str(v)) not in
                 {(key, value) for _, key, value, _, _ in record.log()}}
        assert set(lost) == never                        # named: exactly what was lost
        assert figures["stale_last"] == figures["lost"] == len(lost)
        assert figures["duplicated"] == 0
        expected = {"aof": set(), "rdb": {f"k{i}" for i in range(100, 200)},
                    "none": set(acked)}[persistence]
        assert set(lost) == expected
    finally:
        gate.set()
        try:
            wb.close()
        finally:
            # whatever close() raised, nothing of this test outlives it: a
            # flusher left running makes every later test wait for it
            store.close()
            server.stop()
            record.close()


def test_near_cache_bypasses_its_local_tier_while_the_channel_is_down(fresh_redis, impl):
    store = store_on(fresh_redis)
    writer_store = store_on(fresh_redis)
    nc = NearCache(store, local=impl.LRUCache(100, default_ttl=60), heartbeat=0.1)
    other = NearCache(writer_store, local=impl.LRUCache(100, default_ttl=60), heartbeat=0.1)
    try:
        other.set("k", 1)
        # until its invalidation has arrived, it may drop the copy nc just read
        assert wait_for(lambda: nc.get("k") == 1 and nc.local.peek("k") == 1)
        fresh_redis.kill()
        assert wait_for(lambda: nc.stats().local_bypassed)
        assert len(nc.local) == 0                         # cleared
        assert nc.get("k", "unreachable") == "unreachable"   # no stale local answer
        fresh_redis.start()
        assert wait_for(lambda: nc.local_enabled)         # resubscribed
        assert wait_for(lambda: answers(writer_store), 5)  # its breaker closed again
        other.set("k", 2)
        assert wait_for(lambda: nc.get("k") == 2 and nc.local.peek("k") == 2)
    finally:
        nc.close()
        other.close()
        store.close()
        writer_store.close()


def test_a_stopped_server_is_noticed_by_the_heartbeat(fresh_redis, impl):
    store = store_on(fresh_redis)
    nc = NearCache(store, local=impl.LRUCache(100, default_ttl=60), heartbeat=0.1)
    try:
        nc.set("k", 1)
        assert nc.local.peek("k") == 1
        fresh_redis.pause()                               # SIGSTOP: silent, not closed
        assert wait_for(lambda: not nc.local_enabled, 3)
        assert len(nc.local) == 0
        fresh_redis.resume()
        assert wait_for(lambda: nc.local_enabled, 5)
    finally:
        fresh_redis.resume()
        nc.close()
        store.close()


def test_client_pause_write(fresh_redis):
    store = store_on(fresh_redis, circuit_breaker=None)
    admin = quick_client(fresh_redis.port)
    load = Loader()
    rt = ReadThroughCache(store, load, ttl=60)
    db = {}
    wb = WriteBehindCache(store, db.__setitem__, flush_interval=0.05)
    try:
        store.set("cached", "yes")
        admin.execute_command("CLIENT", "PAUSE", 1500, "WRITE")
        assert rt.get("cached") == "yes"                   # reads still work
        t0 = time.monotonic()
        assert rt.get("new") == "loaded new #1"            # its lock (a write) timed out
        assert time.monotonic() - t0 < 1.0
        with pytest.raises(StoreUnavailable):
            wb.set("x", 1)                                 # not acknowledged
        admin.execute_command("CLIENT", "UNPAUSE")
        wb.set("x", 2)
        wb.flush(5)
        assert db == {"x": 2}
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()
        wb.close()
        store.close()


def test_debug_sleep_slow_server(fresh_redis, impl):
    store = store_on(fresh_redis, circuit_breaker=None)
    load = Loader()
    rt = ReadThroughCache(store, load, ttl=60, local=impl.LRUCache(10))
    admin = quick_client(fresh_redis.port, socket_timeout=5)
    try:
        rt.get("hot")
        sleeper = threading.Thread(target=admin.execute_command, args=("DEBUG", "SLEEP", 1.5))
        sleeper.start()
        probe = quick_client(fresh_redis.port, socket_timeout=0.05)

        def asleep():
            try:
                probe.ping()
                return False
            except Exception:
                return True
        assert wait_for(asleep, 1.0)                       # the server sleeps now
        probe.close()
        t0 = time.monotonic()
        assert rt.get("hot") == "loaded hot #1"            # local tier
        assert rt.get("cold") == "loaded cold #2"          # timed out: the loader answers
        assert time.monotonic() - t0 < 1.2
        assert rt.stats().store_errors >= 1
        sleeper.join()
        assert rt.get("later") == "loaded later #3"
        assert store.get("later") == "loaded later #3"
    finally:
        admin.close()
        store.close()


def test_maxmemory_noeviction(fresh_redis):
    store = store_on(fresh_redis)
    admin = quick_client(fresh_redis.port)
    load = Loader()
    rt = ReadThroughCache(store, load, ttl=60)
    db = {}
    wt = WriteThroughCache(store, db.__setitem__, ttl=60)
    wb = WriteBehindCache(store, db.__setitem__, flush_interval=0.05)
    try:
        store.set("old", "value")
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        assert rt.get("old") == "value"
        assert rt.get("k") == "loaded k #1"                # loaded; caching it failed
        assert store.get("k") is None and rt.stats().store_errors >= 1
        with pytest.raises(CacheWriteError, match="cache could not be updated"):
            wt.set("old", "new")
        assert db["old"] == "new" and store.get("old") is None   # the stale entry was dropped
        with pytest.raises(StoreError, match="OOM|OutOfMemory"):
            wb.set("x", 1)
        assert store.queue_count() == 0                      # nothing half-queued
        admin.config_set("maxmemory", 0)
        wb.set("x", 1)
        wb.flush(5)
        assert db["x"] == 1
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
        wb.close()
        store.close()


UNPICKLED = []


def record(what):
    UNPICKLED.append(what)


class Evil:
    def __reduce__(self):
        return (record, ("pwned",))


def test_tampered_signed_pickle_is_a_miss(fresh_redis, caplog):
    key = b"a secret key of some length"
    store = store_on(fresh_redis, serializer="pickle", secret_key=key)
    raw = quick_client(fresh_redis.port)
    load = Loader()
    rt = ReadThroughCache(store, load, ttl=60)
    try:
        store.set("a", {"n": 1})
        good = raw.get("corecache:a")
        tampered = good[:-2] + bytes([good[-2] ^ 0xFF]) + good[-1:]
        raw.set("corecache:a", tampered)
        raw.set("corecache:b", pickle.dumps(Evil()))       # unsigned
        forged = good[:36] + pickle.dumps(Evil())           # a valid signature, other payload
        raw.set("corecache:c", forged)
        with caplog.at_level(logging.WARNING, logger="corecache.distributed"):
            assert store.get("a", "miss") == "miss"
            assert rt.get("b") == "loaded b #1"              # treated as a miss: reloaded
            assert rt.get_many(["c"]) == {"c": "loaded c #2"}
        assert UNPICKLED == []
        assert "bad signature" in caplog.text and "not a signed pickle" in caplog.text
        assert store.get("b") == "loaded b #1"               # overwritten with a good value
        assert rt.stats().corrupt >= 3            # b was looked at twice (under the lock)
    finally:
        raw.close()
        store.close()


# ---- the breaker and the timeouts a caller can wait ------------------------


def test_half_open_breaker_admits_one_probe_while_the_others_fail_fast(fresh_redis):
    """8 threads read while the server is stopped (SIGSTOP) for 4 s: each
    call waits at most one socket timeout (never a retry of it), and after
    the first timeouts opened the breaker, one call at a time probes the
    server while the others fail at once to the loader.  Every thread
    blocked at each half-open before."""
    store = RedisStore.from_url(fresh_redis.url, socket_timeout=0.5,
                                socket_connect_timeout=0.5, circuit_breaker=0.3)
    rt = ReadThroughCache(store, lambda k: "loaded", ttl=60)
    calls = []
    lock = threading.Lock()
    errors = []
    try:
        assert rt.get("warm") == "loaded"
        fresh_redis.pause()
        end = time.monotonic() + 4.0

        def work(i):
            n = 0
            try:
                while time.monotonic() < end:
                    t0 = time.monotonic()
                    assert rt.get(f"k{i}-{n}") == "loaded"
                    with lock:
                        calls.append((t0, time.monotonic()))
                    n += 1
                    time.sleep(0.005)
            except BaseException as exc:  # noqa: B902
                errors.append(exc)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        fresh_redis.resume()
        store.close()
    assert not errors
    longest = max(b - a for a, b in calls)
    slow = sorted((a, b) for a, b in calls if b - a > 0.3)
    opened = min(b for _, b in slow)                     # the first timeout opened it
    probes = [(a, b) for a, b in slow if a >= opened]
    fast = [(a, b) for a, b in calls if a >= opened and b - a <= 0.3]
    print(f"\n[fault run] SIGSTOP 4 s, 8 threads: {len(calls)} calls, longest {longest:.2f}s, "
          f"{len(slow) - len(probes)} blocked at the stop, then {len(probes)} probes one at a "
          f"time and {len(fast)} calls failing fast")
    assert longest < 0.5 + 0.7                           # one timeout, not two
    assert probes and len(slow) - len(probes) <= 8
    assert all(a2 >= b1 - 0.02 for (_, b1), (a2, _) in zip(probes, probes[1:]))
    assert len(fast) > 10 * len(probes)


def test_a_call_waits_at_most_one_socket_timeout(fresh_redis):
    """from_url's client retried a timed-out command: a stopped server held
    every call twice its socket_timeout."""
    store = RedisStore.from_url(fresh_redis.url, socket_timeout=1.0, circuit_breaker=None)
    try:
        store.set("a", 1)
        fresh_redis.pause()
        for call in (lambda: store.get("a"), lambda: store.set("a", 2)):
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailable):
                call()
            assert time.monotonic() - t0 < 1.7             # about 2 s before
    finally:
        fresh_redis.resume()
        store.close()


def test_client_pause_during_loads_holds_callers_one_timeout_at_most(fresh_redis):
    """CLIENT PAUSE 3000 WRITE while 32 callers miss (the fill lock is a
    write): each caller is answered by the loader after one socket timeout
    at most (3.4 s before)."""
    store = RedisStore.from_url(fresh_redis.url, socket_timeout=1.0)
    admin = quick_client(fresh_redis.port)
    load = Loader()
    rt = ReadThroughCache(store, load, ttl=60)
    took = []
    try:
        admin.execute_command("CLIENT", "PAUSE", 3000, "WRITE")
        barrier = threading.Barrier(32)

        def work(i):
            barrier.wait()
            t0 = time.monotonic()
            assert rt.get(f"k{i % 8}").startswith(f"loaded k{i % 8}")
            took.append(time.monotonic() - t0)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()
        store.close()
    print(f"\n[fault run] CLIENT PAUSE 3000 WRITE, 32 callers: longest {max(took):.2f}s")
    assert len(took) == 32 and max(took) < 1.0 + 0.8


def test_a_lookup_with_the_store_down_is_still_a_miss(fresh_redis):
    """10 threads missing one key with Redis down: 10 misses (9 of them
    waiting on the one load) and the store error; it counted no miss."""
    store = store_on(fresh_redis)
    load = Loader()
    rt = ReadThroughCache(store, lambda k: (time.sleep(0.2), load(k))[1], ttl=60)
    try:
        fresh_redis.kill()
        barrier = threading.Barrier(10)
        threads = [threading.Thread(target=lambda: (barrier.wait(), rt.get("k")))
                   for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        s = rt.stats()
        assert (s.misses, s.flight_waits, s.loads, s.hits) == (10, 9, 1, 0)
        assert s.store_errors >= 1
    finally:
        store.close()
