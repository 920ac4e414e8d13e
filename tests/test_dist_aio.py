"""What only the asyncio style has to prove, on real servers: single flight
per event loop (a thousand coroutines, one load, a bounded connection
pool), cancellation (an awaiter's never cancels the others' load; a load
nobody awaits any more is cancelled and releases its fill lock), background
tasks owned and stopped by aclose(), nothing blocking the event loop (a
loop-lag watchdog and asyncio's slow-callback detection while Redis is
paused), coroutine and plain user code (in_thread), uvloop; and the two
styles on one namespace: one load between a sync and an async process,
write-behind queues finished across styles after kill -9 in both
directions.  The behaviour tests both styles share are in
test_dist_patterns.py and test_dist_write_behind.py (the ``dist``
fixture)."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from typing import Any, Callable, List

import pytest

from corecache import LRUCache
from corecache.distributed import aio
from dist_helpers import Record, await_for, fault_figures, show, wait_for
from test_dist_processes import Child

pytestmark = pytest.mark.redis

try:
    import uvloop
except ImportError:  # optional
    uvloop = None

LOOPS = ["asyncio"] + (["uvloop"] if uvloop is not None else [])


def run(coro: Any, loop: str = "asyncio", debug: bool = False) -> Any:
    if loop == "uvloop":
        new = uvloop.new_event_loop
    else:
        new = asyncio.new_event_loop
    lp = new()
    lp.set_debug(debug)
    try:
        return lp.run_until_complete(coro)
    finally:
        lp.run_until_complete(lp.shutdown_asyncgens())
        lp.close()


def corecache_tasks() -> List[str]:
    return [t.get_name() for t in asyncio.all_tasks()
            if t.get_name().startswith("corecache-") and not t.done()]


def store_of(server: Any, **kw: Any) -> aio.RedisStore:
    return aio.RedisStore.from_url(server.url, **kw)


# ---- single flight per event loop ------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_a_thousand_coroutines_missing_one_key_make_one_load(redis_server, loop):
    """1,000 coroutines miss one key: one loader call, one store lookup,
    and a connection pool of 4 is never exhausted (coalescing happens
    before any I/O)."""
    import redis.asyncio as aredis
    calls = []

    async def loader(key):
        calls.append(key)
        await asyncio.sleep(0.05)
        return {"key": key}

    async def main():
        pool = aredis.ConnectionPool.from_url(redis_server.url, max_connections=4)
        client = aredis.Redis(connection_pool=pool)
        store = aio.RedisStore(client)
        try:
            async with aio.ReadThroughCache(store, loader, ttl=60,
                                            local=LRUCache(100)) as cache:
                got = await asyncio.gather(*[cache.get("k") for _ in range(1000)])
                assert got == [{"key": "k"}] * 1000
                stats = cache.stats()
                assert stats.loads == 1 and stats.flight_waits == 999
                assert stats.misses == 1000 and stats.store_hits == 0
                # a batch too: 1,000 coroutines over 50 keys, one load per key
                got = await asyncio.gather(*[cache.get_many([f"m{i % 50}", f"m{(i + 1) % 50}"])
                                             for i in range(1000)])
                assert all(len(g) == 2 for g in got)
                assert len(calls) == 1 + 50
        finally:
            await store.aclose()
            await client.aclose()
            await pool.disconnect()
        assert corecache_tasks() == []
    run(main(), loop)


def test_a_cancelled_awaiter_never_cancels_the_others_load(redis_server):
    calls = []

    async def main():
        gate = asyncio.Event()
        began = asyncio.Event()

        async def loader(key):
            calls.append(key)
            began.set()
            await gate.wait()
            return 42
        store = store_of(redis_server)
        try:
            async with aio.ReadThroughCache(store, loader, ttl=60) as cache:
                a = asyncio.ensure_future(cache.get("k"))
                b = asyncio.ensure_future(cache.get("k"))
                await began.wait()
                a.cancel()                   # the first awaiter, whose call started the load
                await asyncio.sleep(0.01)
                gate.set()
                assert await b == 42
                with pytest.raises(asyncio.CancelledError):
                    await a
                assert calls == ["k"] and await store.get("k") == 42
        finally:
            await store.aclose()
    run(main())


def test_a_load_nobody_awaits_is_cancelled_and_releases_its_lock(redis_server):
    """When every awaiter is cancelled the shared load is cancelled too, and
    its fill lock is released at once (not left for lock_lease)."""
    async def main():
        began = asyncio.Event()
        cancelled = []

        async def loader(key):
            began.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(key)
                raise
            return 1
        store = store_of(redis_server)
        try:
            async with aio.ReadThroughCache(store, loader, ttl=60, lock_lease=30) as cache:
                waiters = [asyncio.ensure_future(cache.get("k")) for _ in range(3)]
                await began.wait()
                for w in waiters:
                    w.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)
                assert await await_for(lambda: cancelled, 2)
                assert cancelled == ["k"]

                async def released():     # the unlock is the cancelled task's last step
                    return await store.lock_state(["k"]) == ([None], [None])
                assert await await_for(released, 2)
        finally:
            await store.aclose()
    run(main())


def test_a_coroutine_loader_awaiting_its_own_key_is_an_error():
    async def main():
        cache = None

        async def loader(key):
            return await cache.get(key)
        cache = aio.ReadThroughCache(aio.MemoryStore(), loader, ttl=60)
        with pytest.raises(RuntimeError, match="asked for the same key"):
            await cache.get("k")
        await cache.aclose()
    run(main())


# ---- user code: coroutines, plain functions, threads ----------------------------------


def test_loaders_and_writers_may_be_coroutines_or_plain_functions():
    loop_thread = []

    def plain(key):
        loop_thread.append(threading.current_thread())
        return key.upper()

    async def coro(key):
        await asyncio.sleep(0)
        return key * 2

    def blocking_many(keys):
        time.sleep(0.01)          # in a thread: the loop goes on meanwhile
        return {k: len(k) for k in keys}

    async def main():
        store = aio.MemoryStore()
        written = {}

        async def writer(k, v):
            written[k] = v
        a = aio.ReadThroughCache(store, plain, ttl=60)
        b = aio.ReadThroughCache(aio.MemoryStore(), coro, ttl=60)
        c = aio.ReadThroughCache(aio.MemoryStore(), plain, ttl=60,
                                 loader_many=aio.in_thread(blocking_many))
        wb = aio.WriteBehindCache(aio.MemoryStore(), writer, flush_interval=0.01)
        try:
            assert await a.get("x") == "X"
            assert loop_thread == [threading.current_thread()]   # plain: on the loop
            assert await b.get("x") == "xx"
            assert await c.get_many(["ab", "cde"]) == {"ab": 2, "cde": 3}
            await wb.set("k", 1)
            await wb.flush(5)
            assert written == {"k": 1}

            @aio.cached(store, ttl=60)
            async def square(n):
                return n * n
            assert await square(4) == 16 and await square(4) == 16
            assert square.stats().loads == 1
            await square.aclose()
        finally:
            for x in (a, b, c):
                await x.aclose()
            await wb.aclose()
    run(main())


def test_the_sync_layer_refuses_a_coroutine_loader():
    from corecache.distributed import MemoryStore, ReadThroughCache

    async def loader(key):
        return 1
    cache = ReadThroughCache(MemoryStore(), loader, ttl=60)
    with pytest.raises(TypeError, match="cannot await it; use corecache.distributed.aio"):
        cache.get("k")
    cache.close()


# ---- background tasks ------------------------------------------------------------------


def test_aclose_stops_every_background_task(redis_server):
    """The flusher and its lease keeper, refresh workers, the invalidation
    listener and the fill locks' lease keeper are tasks of the instance
    (made outside a loop, they start at its first awaited call), and
    aclose() stops them all."""
    made_outside = {}

    def build():
        store = store_of(redis_server, namespace="tasks")

        async def loader(k):
            await asyncio.sleep(0.05)     # long enough for the lease keeper to start
            return k
        made_outside["store"] = store
        made_outside["wb"] = aio.WriteBehindCache(store, lambda k, v: None,
                                                  flush_interval=0.01)
        made_outside["ra"] = aio.RefreshAheadCache(store, loader, ttl=0.2,
                                                   refresh_ahead=0.1, workers=2)
        made_outside["near"] = aio.NearCache(store, local=LRUCache(10, default_ttl=5))
    build()                                   # no event loop is running here

    async def main():
        store, wb, ra, near = (made_outside[k] for k in ("store", "wb", "ra", "near"))
        assert corecache_tasks() == []        # nothing could start without a loop
        await wb.set("a", 1)
        assert await ra.get("r") == "r"
        await asyncio.sleep(0.1)
        assert await ra.get("r") == "r"       # due: a refresh is scheduled
        async with near:
            assert near.local_enabled
        names = set(corecache_tasks())
        assert {"corecache-write-behind-tasks", "corecache-write-behind-lease-tasks"} <= names
        assert any(n.startswith("corecache-refresh-") for n in names)
        await wb.aclose()
        await ra.aclose()
        await store.aclose()
        assert await await_for(lambda: not corecache_tasks(), 2), corecache_tasks()
    run(main())


# ---- nothing blocks the loop ---------------------------------------------------------


class LagWatchdog:
    """A task that sleeps 5 ms again and again and records how late it
    wakes: a call that blocks the event loop shows as lag."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._stop = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop:
            t = loop.time()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, loop.time() - t - 0.005)

    def stop(self) -> None:
        self._stop = True


# Redis holds every command this long; a call that blocked the loop would
# stop it about as long, and more than BLOCKED (a loaded 2-core machine
# shows lags of tens of ms without any blocking call)
PAUSE_MS = 300
BLOCKED = 0.2


def test_nothing_blocks_the_loop_while_redis_stalls(fresh_redis, caplog):
    """Every pattern works while Redis holds each command for a while
    (CLIENT PAUSE): a blocking socket call would stop the event loop for
    that long.  The watchdog's worst lag and asyncio's slow-callback
    warnings (debug mode) show that nothing did."""
    import redis as sync_redis
    admin = sync_redis.Redis(port=fresh_redis.port)

    async def main():
        store = store_of(fresh_redis, namespace="lag", circuit_breaker=None)
        dog = LagWatchdog()
        watch = asyncio.ensure_future(dog.run())
        loads = []

        async def loader(k):
            loads.append(k)
            return k

        async def writer(k, v):
            pass
        try:
            async with aio.ReadThroughCache(store, loader, ttl=60, local=LRUCache(100)) as rt, \
                    aio.NearCache(store, local=LRUCache(100, default_ttl=5), loader=loader) as nc, \
                    aio.WriteBehindCache(store, writer, flush_interval=0.01) as wb:
                for round_ in range(3):
                    admin.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
                    await asyncio.gather(
                        rt.get(f"a{round_}"), rt.get_many([f"b{round_}", f"c{round_}"]),
                        nc.get(f"n{round_}"), wb.set(f"w{round_}", round_),
                        rt.set(f"s{round_}", 1), store.get("x"))
                await wb.flush(10)
        finally:
            dog.stop()
            await watch
            await store.aclose()
        return dog.worst

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop = asyncio.new_event_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = BLOCKED
        try:
            worst = loop.run_until_complete(main())
        finally:
            loop.close()
            admin.close()
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    print(f"worst loop lag {worst * 1000:.1f} ms while Redis paused 3 x {PAUSE_MS} ms")
    assert not slow, slow
    assert worst < BLOCKED, f"the event loop was blocked for {worst * 1000:.0f} ms"


# ---- uvloop ----------------------------------------------------------------------------


@pytest.mark.skipif(uvloop is None, reason="uvloop is not installed (optional)")
def test_every_pattern_runs_under_uvloop(redis_server):
    async def main():
        store = store_of(redis_server, namespace="uv")
        written = {}

        async def writer(k, v):
            written[k] = v
        try:
            async with aio.NearCache(store, local=LRUCache(10, default_ttl=5)) as nc, \
                    aio.WriteBehindCache(store, writer, flush_interval=0.01) as wb:
                assert nc.tracking
                await wb.set("k", 1)
                await wb.flush(5)
                assert written == {"k": 1} and await nc.get("k") == 1
                await nc.set("j", 2)
                assert await nc.get("j") == 2
        finally:
            await store.aclose()
        assert corecache_tasks() == []
    run(main(), "uvloop")


# ---- both styles on one namespace --------------------------------------------------------

LOAD_CHILD = r"""
import sys, time, asyncio
from dist_helpers import Record
style, url, db_path, who = sys.argv[1:5]
record = Record(db_path, who)

def load(key):
    record.write(key, who)            # the system of record logs every load
    time.sleep(0.5)
    return who

print("ready", flush=True)
sys.stdin.readline()                  # go
if style == "sync":
    from corecache.distributed import ReadThroughCache, RedisStore
    store = RedisStore.from_url(url, namespace="mix")
    print("got", ReadThroughCache(store, load, ttl=60).get("k"), flush=True)
    store.close()
else:
    from corecache.distributed import aio
    async def main():
        store = aio.RedisStore.from_url(url, namespace="mix")
        async with aio.ReadThroughCache(store, aio.in_thread(load), ttl=60) as c:
            print("got", await c.get("k"), flush=True)
        await store.aclose()
    asyncio.run(main())
"""


def test_a_sync_and_an_async_process_missing_one_key_make_one_load(redis_server, tmp_path):
    db_path = str(tmp_path / "record.db")
    record = Record(db_path, "test")
    children = [Child(LOAD_CHILD, style, redis_server.url, db_path, style)
                for style in ("sync", "async", "sync", "async")]
    try:
        for c in children:
            assert c.read_line() == "ready"
        for c in children:
            c.send("go")
        got = {c.read_line() for c in children}
    finally:
        for c in children:
            c.finish()
    loads = record.log()
    record.close()
    assert len(loads) == 1, loads
    assert got == {f"got {loads[0][0]}"}


WB_CHILD = r"""
import sys, time, asyncio
from dist_helpers import Record
style, url, db_path, who, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
record = Record(db_path, who)

def writer(key, value):
    time.sleep(0.002)                     # a slow system of record
    record.write(key, value)

def keys():
    for i in range(n):
        yield f"{who}{i % 40}", f"{who}-{i}"

print("ready", flush=True)
if style == "sync":
    from corecache.distributed import RedisStore, WriteBehindCache
    wb = WriteBehindCache(RedisStore.from_url(url, namespace="wbx"), writer, batch_size=10,
                          flush_interval=0.01, lease=1.0)
    for key, value in keys():
        print(f"setting {key} {value}", flush=True)
        wb.set(key, value)
        print(f"acked {key} {value}", flush=True)
    print("done", flush=True)
    time.sleep(60)
else:
    from corecache.distributed import aio
    async def main():
        store = aio.RedisStore.from_url(url, namespace="wbx")
        wb = aio.WriteBehindCache(store, aio.in_thread(writer), batch_size=10,
                                  flush_interval=0.01, lease=1.0)
        for key, value in keys():
            print(f"setting {key} {value}", flush=True)
            await wb.set(key, value)
            print(f"acked {key} {value}", flush=True)
        print("done", flush=True)
        await asyncio.sleep(60)
    asyncio.run(main())
"""


@pytest.mark.parametrize("writers,finisher", [("async", "sync"), ("sync", "async")])
def test_write_behind_kill_9_finished_by_the_other_style(redis_server, tmp_path, writers,
                                                          finisher):
    """Processes of one style acknowledge writes and are killed with -9 at
    random points (while setting, or with writes pending); an instance of
    the other style finishes their queue: every acknowledged write reaches
    the system of record, the latest value last."""
    import random
    from corecache.distributed import RedisStore, WriteBehindCache
    db_path = str(tmp_path / "record.db")
    record = Record(db_path, "finisher")
    acked, in_flight = {}, {}
    rng = random.Random(7 if writers == "async" else 11)
    for round_ in range(3):
        children = [Child(WB_CHILD, writers, redis_server.url, db_path, f"r{round_}{w}", "200")
                    for w in "ab"]
        try:
            for c in children:
                assert c.read_line() == "ready"
            for c in children:
                limit = rng.choice([rng.randint(20, 180), None])
                n = 0
                while True:
                    line = c.read_line()
                    if line == "done":
                        break
                    if line.startswith("acked "):
                        _, key, value = line.split()
                        acked[key] = value
                        n += 1
                        if limit is not None and n >= limit:
                            break
                if limit is None:
                    time.sleep(rng.uniform(0, 0.1))
                os.kill(c.pid, signal.SIGKILL)
                c.proc.wait()
            for c in children:
                setting = None
                for line in c.rest():
                    if line.startswith("acked "):
                        _, key, value = line.split()
                        acked[key] = value
                        setting = None
                    elif line.startswith("setting "):
                        setting = line.split()[1:]
                if setting is not None:
                    in_flight[setting[0]] = setting[1]
        finally:
            for c in children:
                c.finish()
    if finisher == "sync":
        store = RedisStore.from_url(redis_server.url, namespace="wbx")
        wb = WriteBehindCache(store, record.write, flush_interval=0.01, lease=1.0)
        try:
            assert wait_for(lambda: store.queue_count() == 0, 20)
        finally:
            wb.close()
            store.close()
    else:
        async def finish():
            store = aio.RedisStore.from_url(redis_server.url, namespace="wbx")
            try:
                async with aio.WriteBehindCache(store, aio.in_thread(record.write),
                                                flush_interval=0.01, lease=1.0):
                    async def empty():
                        return await store.queue_count() == 0
                    return await await_for(empty, 20)
            finally:
                await store.aclose()
        assert run(finish())
    figures = fault_figures(acked, record, in_flight)
    show(f"kill -9 of {writers} write-behind processes, finished by a {finisher} one", figures)
    record.close()
    assert figures["acknowledged"] > 0
    assert figures["lost"] == 0 and figures["stale_last"] == 0


def test_invalidations_cross_styles(redis_server):
    """A sync near cache sees an async instance's writes and the reverse,
    and both see a plain SET from another client."""
    import redis as sync_redis
    from corecache.distributed import NearCache, RedisStore
    sync_store = RedisStore.from_url(redis_server.url, namespace="x")
    near = NearCache(sync_store, local=LRUCache(10, default_ttl=30))
    plain = sync_redis.Redis(port=redis_server.port)

    async def main():
        store = aio.RedisStore.from_url(redis_server.url, namespace="x")
        try:
            async with aio.NearCache(store, local=LRUCache(10, default_ttl=30)) as anear:
                near.set("k", 1)
                assert await anear.get("k") == 1 and near.get("k") == 1
                await anear.set("k", 2)
                assert await await_for(lambda: near.local.peek("k") is None, 2)
                assert near.get("k") == 2
                near.set("k", 3)
                assert await await_for(lambda: anear.local.peek("k") is None, 2)
                assert await anear.get("k") == 3
                plain.set("x:k", b"4")            # bypasses corecache
                assert await await_for(lambda: anear.local.peek("k") is None
                                       and near.local.peek("k") is None, 2)
                assert await anear.get("k") == 4 and near.get("k") == 4
        finally:
            await store.aclose()
    try:
        run(main())
    finally:
        near.close()
        sync_store.close()
        plain.close()
