"""Section "aio": corecache.distributed.aio on one event loop, against its
baselines and the asyncio cache libraries (cashews, aiocache: the bench
extra), on a loopback redis-server this section starts itself; skipped
with a message when redis-server or redis-py is missing.  Every figure is
a ratio measured in this process:

* an awaited local-tier hit (``await ReadThroughCache.get`` with a local
  LRUCache) vs awaiting a trivial ``async def`` that returns a dict lookup,
  and vs cashews' and aiocache's in-memory ``await cache.get``;
* an awaited store hit (``await RedisStore.get``) vs a raw
  ``await redis.asyncio.Redis.get`` of the same value;
* ``get_many`` / ``set_many`` of 1,000 keys: round trips counted by a
  connection class that counts its sends;
* 10,000 coroutines over 1,000 keys (90 % of them stored) on one loop:
  gets per second of a ReadThroughCache with a local tier vs cashews on
  the same Redis, each loading the 10 % misses with the same coroutine;
* invalidation lag: a NearCache holds a key, another client sends a plain
  ``SET`` (bypassing corecache); the time until the local copy is gone, p99
  over 1,000 writes (200 in --quick, 100 in --smoke).
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Callable, Dict, List, Optional

from .compare import Figure
from .distributed import VALUE, _Server, on_a_server
from .peers import _version
from .report import fmt
from .targets import CHECK, INFO, Target, ratio

NAME = "aio"
TITLE = "corecache.distributed.aio on one event loop (loopback Redis)"
HOT = 100


async def _per_op(fn: Callable[[Any], Any], keys: List[Any]) -> float:
    """ns per ``await fn(k)`` over keys."""
    t0 = time.perf_counter_ns()
    for k in keys:
        await fn(k)
    return (time.perf_counter_ns() - t0) / len(keys)


async def _best(cases: Dict[str, Callable[[Any], Any]], keys: Dict[str, List[Any]],
                repeats: int) -> Dict[str, float]:
    """The fastest of `repeats` rounds per case, the cases round-robin (a
    burst of another process's work lands on every case alike)."""
    best = {name: float("inf") for name in cases}
    for name, fn in cases.items():            # warm up
        await _per_op(fn, keys[name][:200])
    for _ in range(max(3, repeats)):
        for name, fn in cases.items():
            best[name] = min(best[name], await _per_op(fn, keys[name]))
    return best


def _counting_client(port: int) -> Any:
    import redis.asyncio as aredis

    class CountingConnection(aredis.Connection):
        sends = 0

        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            type(self).sends += 1
            await super().send_packed_command(command, check_health)

    pool = aredis.ConnectionPool(connection_class=CountingConnection, host="127.0.0.1",
                                 port=port, socket_timeout=5)
    client = aredis.Redis(connection_pool=pool)
    client.auto_close_connection_pool = True
    client.counter = CountingConnection        # type: ignore[attr-defined]
    return client


def run(opts: Any) -> Dict[str, Any]:
    return on_a_server(lambda server: asyncio.run(_measure(server, opts)))


async def _measure(server: _Server, opts: Any) -> Dict[str, Any]:
    from corecache import LRUCache
    from corecache.distributed import aio
    mode = getattr(opts, "mode", "default")
    smoke = mode == "smoke"
    repeats = opts.repeats
    client = _counting_client(server.port)
    store = aio.RedisStore(client, namespace="abench")
    res: Dict[str, Any] = {"redis_version": (await client.info("server"))["redis_version"],
                           "mode": mode}
    keys = [f"user:{i}" for i in range(HOT)]
    await store.set_many({k: VALUE for k in keys})
    n = opts.n
    hot = (keys * (n // HOT + 1))[:n]

    # 1. awaited local-tier hits vs a trivial async def and the peers -------
    d = {k: VALUE for k in keys}

    async def dict_lookup(k: str) -> Any:
        return d[k]

    async def loader(k: str) -> Any:
        return VALUE
    rt = aio.ReadThroughCache(store, loader, ttl=3600, local=LRUCache(1000))
    for k in keys:
        await rt.get(k)
    cases: Dict[str, Callable[[Any], Any]] = {"async def dict lookup": dict_lookup,
                                              "ReadThroughCache.get local hit": rt.get}
    peers: Dict[str, str] = {}
    closers: List[Any] = []
    try:
        from cashews import Cache as CashewsCache
        cashews = CashewsCache()
        cashews.setup("mem://")
        for k in keys:
            await cashews.set(k, VALUE)
        cases["cashews mem:// get"] = cashews.get
        peers["cashews"] = _version("cashews") or "?"
        closers.append(cashews.close)
    except ImportError:
        pass
    try:
        from aiocache import SimpleMemoryCache
        aioc = SimpleMemoryCache()
        for k in keys:
            await aioc.set(k, VALUE)
        cases["aiocache SimpleMemoryCache get"] = aioc.get
        peers["aiocache"] = _version("aiocache") or "?"
    except ImportError:
        pass
    res["local"] = await _best(cases, {name: hot for name in cases}, repeats)
    res["peers"] = peers

    # 2. awaited store hit vs raw GET ---------------------------------------
    m = 300 if smoke else 1000 if mode == "quick" else 3000
    ukeys = (keys * (m // HOT + 1))[:m]
    res["remote"] = await _best({"redis.asyncio GET": client.get,
                                 "RedisStore.get": store.get},
                                {"redis.asyncio GET": ["abench:" + k for k in ukeys],
                                 "RedisStore.get": ukeys}, repeats)

    # 3. batches of 1,000: one round trip each -------------------------------
    batch = {f"batch:{i}": VALUE for i in range(1000)}
    trips = {}
    for name, call in (("set_many(1000, ttl)", lambda: store.set_many(batch, ttl=3600)),
                       ("get_many(1000)", lambda: store.get_many(list(batch)))):
        before = client.counter.sends
        got = await call()
        trips[name] = client.counter.sends - before
        if name.startswith("get") and len(got) != 1000:
            raise RuntimeError(f"get_many returned {len(got)} of 1,000 keys")
    res["round_trips"] = trips

    # 4. 10,000 coroutines over 1,000 keys, 90 % hits, vs cashews --------------
    coros = 1_000 if smoke else 10_000
    space = [f"c:{i}" for i in range(1000)]
    stored = space[:900]                      # 90 % of the keys are in Redis
    rng = random.Random(5)
    order = [space[rng.randrange(1000)] for _ in range(coros)]

    async def load(k: str) -> Any:
        return VALUE
    throughput: Dict[str, float] = {}
    rounds = 1 if smoke else 3

    async def ours() -> float:
        await client.delete(*["abench:" + k for k in space])
        await store.set_many({k: VALUE for k in stored}, ttl=3600)
        cache = aio.ReadThroughCache(store, load, ttl=3600, local=LRUCache(2000))
        t0 = time.perf_counter()
        await asyncio.gather(*[cache.get(k) for k in order])
        dt = time.perf_counter() - t0
        await cache.aclose()
        return coros / dt
    throughput["corecache ReadThroughCache (local tier)"] = max([await ours()
                                                                for _ in range(rounds)])
    try:
        from cashews import Cache as CashewsCache
        url = f"redis://127.0.0.1:{server.port}/0"

        async def theirs() -> float:
            cc = CashewsCache()
            cc.setup(url, client_side=False)
            await cc.delete_many(*space)
            for k in stored:
                await cc.set(k, VALUE, expire=3600)

            async def get(k: str) -> Any:
                v = await cc.get(k)
                if v is None:
                    v = await load(k)
                    await cc.set(k, v, expire=3600)
                return v
            t0 = time.perf_counter()
            await asyncio.gather(*[get(k) for k in order])
            dt = time.perf_counter() - t0
            await cc.close()
            return coros / dt
        throughput["cashews (redis://)"] = max([await theirs() for _ in range(rounds)])
    except ImportError:
        pass
    res["coroutines"] = coros
    res["throughput"] = throughput

    # 5. invalidation lag after a plain SET ---------------------------------
    writes = 100 if smoke else 200 if mode == "quick" else 1000
    import redis.asyncio as aredis
    plain = aredis.Redis(port=server.port)
    lags: List[float] = []
    async with aio.NearCache(store, local=LRUCache(10, default_ttl=3600)) as near:
        tracking = near.tracking
        for i in range(writes):
            await near.get("lag")                 # a local copy
            if near.local.peek("lag") is None:    # filled from the store now
                await near.get("lag")
            t0 = time.perf_counter()
            await plain.set("abench:lag", b"%d" % i)
            while near.local.peek("lag") is not None:
                if time.perf_counter() - t0 > 1.0:
                    break
                await asyncio.sleep(0)
            lags.append(time.perf_counter() - t0)
    await plain.aclose()
    lags.sort()
    res["lag"] = {"writes": writes, "tracking": tracking,
                  "p50_ms": lags[len(lags) // 2] * 1000,
                  "p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000,
                  "max_ms": lags[-1] * 1000}

    for close in closers:
        await close()
    await rt.aclose()
    await store.aclose()
    await client.aclose()
    return res


def report(results: Dict[str, Any], opts: Any) -> str:
    if "skipped" in results:
        return f"{TITLE}: skipped: {results['skipped']}"
    out = [f"{TITLE} (Redis {results['redis_version']}, same process)"]
    loc = results["local"]
    base = loc["async def dict lookup"]
    out.append("  awaited hits (ns/op):")
    for name, v in loc.items():
        out.append(f"    {name:<36}{fmt(v):>10}  ({v / base:.2f}x async def dict lookup)")
    raw = results["remote"]["redis.asyncio GET"]
    out.append("  one key over Redis (us/op):")
    for name, v in results["remote"].items():
        out.append(f"    {name:<36}{fmt(v / 1000, 2):>10}  ({v / raw:.2f}x raw GET)")
    for name, v in results["round_trips"].items():
        out.append(f"  {name}: {v} round trip(s)")
    tp = results["throughput"]
    out.append(f"  {results['coroutines']:,} coroutines over 1,000 keys, 90 % stored "
               f"(gets/s):")
    for name, v in tp.items():
        out.append(f"    {name:<40}{v:>12,.0f}")
    lag = results["lag"]
    out.append(f"  invalidation lag after a plain SET, {lag['writes']:,} writes "
               f"(tracking {'on' if lag['tracking'] else 'off'}): p50 {lag['p50_ms']:.2f} ms, "
               f"p99 {lag['p99_ms']:.2f} ms, max {lag['max_ms']:.2f} ms")
    return "\n".join(out)


def targets(results: Dict[str, Any]) -> List[Target]:
    """The asyncio issue's targets: every one a check."""
    if "skipped" in results:
        return [Target("aio targets", CHECK, why=results["skipped"])]
    out: List[Target] = []
    loc = results["local"]
    ours = loc["ReadThroughCache.get local hit"]
    out.append(ratio("awaited local-tier hit vs awaiting an async def dict lookup", ours,
                     loc["async def dict lookup"], 1.5))
    for peer, name in (("cashews", "cashews mem:// get"),
                       ("aiocache", "aiocache SimpleMemoryCache get")):
        out.append(ratio(f"{peer}'s in-memory hit vs corecache's awaited local-tier hit",
                         loc.get(name), ours, 10.0, at_least=True,
                         missing=f"{peer} is not installed (the bench extra)"))
    rem = results["remote"]
    out.append(ratio("awaited store hit vs raw await redis.asyncio GET",
                     rem["RedisStore.get"] / 1000, rem["redis.asyncio GET"] / 1000, 1.2,
                     unit="us"))
    for name, n in results["round_trips"].items():
        out.append(Target(f"aio {name}: round trips", CHECK, "== 1", str(n), n == 1))
    tp = results["throughput"]
    out.append(ratio(f"{results['coroutines']:,} coroutines, 90 % hits: corecache vs cashews "
                     f"on the same Redis, gets/s",
                     tp.get("corecache ReadThroughCache (local tier)"),
                     tp.get("cashews (redis://)"), 5.0, at_least=True, unit="gets/s",
                     digits=0, missing="cashews is not installed (the bench extra)"))
    lag = results["lag"]
    p99 = lag["p99_ms"]
    out.append(Target(f"p99 invalidation lag after a plain SET over {lag['writes']:,} writes: "
                      f"{p99:.2f} ms", CHECK, "<= 100 ms", f"{p99:.2f} ms", p99 <= 100.0,
                      needs="quick"))
    out.append(Target("the near cache sees writes that bypass corecache (CLIENT TRACKING)",
                      CHECK, "on", "on" if lag["tracking"] else "off", bool(lag["tracking"])))
    return out


def figures(results: Dict[str, Any]) -> List[Figure]:
    if "skipped" in results:
        return []
    out: List[Figure] = []
    for group, unit in (("local", "ns"), ("remote", "ns"), ("throughput", "gets/s")):
        for name, v in results[group].items():
            who = ("corecache" if "corecache" in name or "ReadThrough" in name
                   or "RedisStore" in name else name.split()[0])
            out.append(Figure(f"{NAME}/{group}/{name}", float(v), unit, who))
    for name in ("p50_ms", "p99_ms"):
        out.append(Figure(f"{NAME}/lag/{name}", float(results["lag"][name]), "ms", "corecache"))
    return out
