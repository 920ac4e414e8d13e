"""Real faults on a Redis server of the test's own: killed and restarted,
stopped (SIGSTOP), slow (DEBUG SLEEP), writes paused (CLIENT PAUSE WRITE),
full (maxmemory + noeviction), and a tampered signed-pickle value."""
from __future__ import annotations

import logging
import pickle
import threading
import time

import pytest

from corecache.distributed import (CacheWriteError, NearCache, ReadThroughCache, RedisStore,
                                   StoreError, StoreUnavailable, WriteBehindCache,
                                   WriteThroughCache)
from redis_servers import RedisServer, quick_client

pytestmark = pytest.mark.redis


def store_on(server, **kw):
    kw.setdefault("circuit_breaker", 0.1)
    store = RedisStore(quick_client(server.port, socket_timeout=0.3), **kw)
    store._owns_client = True
    return store


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


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
        time.sleep(0.15)                                 # the breaker's pause
        assert rt.get("d") == "loaded d #4"
        assert store.get("d") == "loaded d #4"           # Redis is used again
        wb.set("x", 2)
        wb.flush(5)
        assert db["x"] == 2
    finally:
        rt.close()
        wb.close()
        store.close()


def test_pending_writes_survive_a_redis_restart_with_persistence(no_thread_leaks):
    with RedisServer(persistence=True) as server:   # appendonly yes
        store = store_on(server)
        db = {}
        gate = threading.Event()

        def writer(k, v):
            if not gate.is_set():
                raise IOError("database down")
            db[k] = v
        wb = WriteBehindCache(store, writer, flush_interval=0.05, retry_base=0.02,
                              retry_max=0.1)
        try:
            for i in range(20):
                wb.set(f"k{i}", i)
            server.kill()                                # SIGKILL: no shutdown save
            server.start()
            gate.set()
            wb.flush(10)
            assert db == {f"k{i}": i for i in range(20)}
        finally:
            gate.set()
            wb.close()
            store.close()


def test_near_cache_bypasses_its_local_tier_while_the_channel_is_down(fresh_redis, impl):
    store = store_on(fresh_redis)
    writer_store = store_on(fresh_redis)
    nc = NearCache(store, local=impl.LRUCache(100, default_ttl=60), heartbeat=0.1)
    other = NearCache(writer_store, local=impl.LRUCache(100, default_ttl=60), heartbeat=0.1)
    try:
        other.set("k", 1)
        time.sleep(0.05)                                  # its invalidation has arrived
        assert nc.get("k") == 1 and nc.local.peek("k") == 1
        fresh_redis.kill()
        assert wait_for(lambda: nc.stats().local_bypassed)
        assert len(nc.local) == 0                         # cleared
        assert nc.get("k", "unreachable") == "unreachable"   # no stale local answer
        fresh_redis.start()
        assert wait_for(lambda: nc.local_enabled)         # resubscribed
        time.sleep(0.15)
        other.set("k", 2)
        time.sleep(0.05)
        assert nc.get("k") == 2 and nc.local.peek("k") == 2
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
