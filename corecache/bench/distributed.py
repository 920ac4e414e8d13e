"""Section "distributed": corecache.distributed against its baselines, on a
loopback redis-server that this section starts (and stops) itself; skipped
with a message when redis-server or redis-py is missing.

Each target of the distributed issue is measured in this process, as a
ratio to its baseline:

* a near-cache hit and a read-through hit served by the local tier, vs
  ``LRUCache.get`` on a hit (ns/op, compiled LRUCache when available);
* a store hit (``RedisStore.get``, deserializing) vs a raw redis-py ``GET``
  of the same value with the same client;
* ``get_many`` / ``set_many`` of 1,000 keys vs 1,000 single calls, with the
  round trips counted by a connection class that counts its sends (and the
  commands the server saw, from ``INFO commandstats``);
* an acknowledged write-behind ``set`` vs one raw redis-py ``SET``;
* write-behind ``set`` throughput (1,000 sets of 100 keys, then flush();
  200 in --quick)
  vs write-through, with a slow system of record: a writer that takes
  WRITER_ROUND_TRIPS raw SET round trips per call (as measured just
  before), and at least 1 ms.  A fixed 1 ms writer would make the ratio a
  measure of the machine's load: a loopback round trip takes about 35 us on
  an idle machine and 300 us on a loaded one, and write-behind's own cost
  is round trips.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .compare import Figure
from .report import fmt
from .targets import CHECK, INFO, Target, ratio
from .timing import Case, run_cases

NAME = "distributed"
TITLE = "corecache.distributed on a loopback Redis"

WRITER_ROUND_TRIPS = 40
MIN_WRITER_SECONDS = 0.001
VALUE = {"id": 12345, "name": "Ada Lovelace", "tags": ["math", "engines"], "active": True}
HOT = 100


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG
    except Exception:
        pass


class _Server:
    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise FileNotFoundError("redis-server is not installed")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix="corecache-bench-redis-")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        deadline = time.monotonic() + 10
        while True:
            c = redis.Redis(port=self.port, socket_connect_timeout=0.2,
                            retry=Retry(NoBackoff(), 0))
            try:
                if c.ping():
                    return
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.01)
            finally:
                c.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _counting_client(port: int) -> Any:
    import redis

    class CountingConnection(redis.Connection):
        sends = 0

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            type(self).sends += 1
            super().send_packed_command(command, check_health)

    pool = redis.ConnectionPool(connection_class=CountingConnection, host="127.0.0.1",
                                port=port, socket_timeout=5)
    client = redis.Redis(connection_pool=pool)
    client.auto_close_connection_pool = True   # close() disconnects the pool too
    client.counter = CountingConnection        # type: ignore[attr-defined]
    return client


def _best_seconds(fn: Any, repeats: int) -> float:
    fn()   # warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _median_seconds(fn: Any, repeats: int) -> float:
    fn()   # warm up
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def on_a_server(measure: Callable[[_Server], Dict[str, Any]]) -> Dict[str, Any]:
    """measure(a loopback redis-server started for it), or why it skipped."""
    try:
        import redis  # noqa: F401
    except ImportError:
        return {"skipped": "redis-py is not installed (pip install 'corecache[redis]')"}
    try:
        server = _Server()
    except (FileNotFoundError, RuntimeError) as exc:
        return {"skipped": f"{exc} (Debian: apt-get install redis-server)"}
    try:
        return measure(server)
    finally:
        server.stop()


def run(opts: Any) -> Dict[str, Any]:
    return on_a_server(lambda server: _measure(server, opts))


def _measure(server: _Server, opts: Any) -> Dict[str, Any]:
    from corecache import LRUCache
    from corecache.distributed import (NearCache, ReadThroughCache, RedisStore,
                                       WriteBehindCache, WriteThroughCache)
    quick = bool(getattr(opts, "quick", False))
    repeats = opts.repeats
    client = _counting_client(server.port)
    store = RedisStore(client, namespace="bench")
    res: Dict[str, Any] = {"redis_version": client.info("server")["redis_version"]}
    keys = [f"user:{i}" for i in range(HOT)]
    store.set_many({k: VALUE for k in keys})

    # 1. hits served by the local tier ------------------------------------
    lru = LRUCache(1000)
    for k in keys:
        lru.set(k, VALUE)
    near = NearCache(store, local=LRUCache(1000, default_ttl=3600))
    rt = ReadThroughCache(store, lambda k: VALUE, ttl=3600, local=LRUCache(1000))
    for k in keys:
        near.get(k)
        rt.get(k)
    if not near.local_enabled:
        raise RuntimeError("the near cache's invalidation channel did not come up")
    n = opts.n
    hot = (keys * (n // HOT + 1))[:n]
    local_cases = [Case("LRUCache.get hit", "o.get(k)", lambda r: {"o": lru}, lambda r: hot),
                   Case("NearCache.get local hit", "o.get(k)", lambda r: {"o": near},
                        lambda r: hot),
                   Case("ReadThroughCache.get local hit", "o.get(k)", lambda r: {"o": rt},
                        lambda r: hot)]
    run_cases(local_cases, repeats)
    res["local"] = {c.name: c.median for c in local_cases}
    # no subscriber in this process from here on: the write figures below
    # are not charged with delivering invalidations to ourselves
    near.close()
    rt.close()

    # 2. store hit vs raw GET ---------------------------------------------
    m = 1000 if quick else 3000
    ukeys = (keys * (m // HOT + 1))[:m]
    rkeys = ["bench:" + k for k in ukeys]
    get_raw = client.get
    remote_cases = [Case("redis-py GET", "g(k)", lambda r: {"g": get_raw}, lambda r: rkeys),
                    Case("RedisStore.get", "g(k)", lambda r: {"g": store.get},
                         lambda r: ukeys)]
    run_cases(remote_cases, repeats)
    res["remote"] = {c.name: c.median for c in remote_cases}

    # 3. batches of 1,000 vs 1,000 single calls ----------------------------
    batch = {f"batch:{i}": VALUE for i in range(1000)}
    bkeys = list(batch)
    store.set_many(batch, ttl=3600)
    # the fastest of several: a batch is one burst of tens of ms, which one
    # interruption by another process doubles, while 1,000 single calls
    # spread such interruptions evenly
    reps = max(5, repeats)
    timing = {
        "get_many(1000)": _best_seconds(lambda: store.get_many(bkeys), reps),
        "1000 x get": _best_seconds(lambda: [store.get(k) for k in bkeys], reps),
        "set_many(1000, ttl)": _best_seconds(lambda: store.set_many(batch, ttl=3600), reps),
        "1000 x set(ttl)": _best_seconds(
            lambda: [store.set(k, v, ttl=3600) for k, v in batch.items()], reps),
    }
    trips = {}
    for name, call in (("get_many(1000)", lambda: store.get_many(bkeys)),
                       ("set_many(1000, ttl)", lambda: store.set_many(batch, ttl=3600))):
        client.config_resetstat()
        before = client.counter.sends
        call()
        trips[name] = client.counter.sends - before
        stats = client.info("commandstats")
        trips[name + " server commands"] = {k[len("cmdstat_"):]: v["calls"]
                                            for k, v in stats.items()
                                            if k != "cmdstat_config"}
    res["batch_seconds"] = timing
    res["round_trips"] = trips

    # 4. acknowledged write-behind set vs one raw SET -----------------------
    wb = WriteBehindCache(store, writer_many=lambda m: None, batch_size=10_000,
                          flush_interval=1.0)
    data = store.encode(VALUE)
    sk = (keys * (m // HOT + 1))[:m]
    rsk = ["bench:raw:" + k for k in sk]
    set_raw = client.set
    ack_cases = [Case("redis-py SET", "s(k, v)", lambda r: {"s": set_raw, "v": data},
                      lambda r: rsk),
                 Case("WriteBehindCache.set", "s(k, v)", lambda r: {"s": wb.set, "v": VALUE},
                      lambda r: sk)]
    run_cases(ack_cases, repeats)
    res["ack"] = {c.name: c.median for c in ack_cases}
    wb.close()

    # 5. write-behind throughput vs write-through, slow writer -------------
    sets = 200 if quick else 1000
    wkeys = [f"w:{i % 100}" for i in range(sets)]
    res["sets"] = sets

    delay = max(MIN_WRITER_SECONDS, WRITER_ROUND_TRIPS * res["ack"]["redis-py SET"] / 1e9)
    res["writer_ms"] = round(delay * 1000, 3)

    def slow_writer(key: str, value: Any) -> None:
        time.sleep(delay)

    def slow_writer_many(mapping: Dict[str, Any]) -> None:
        time.sleep(delay)

    wt = WriteThroughCache(store, slow_writer, ttl=3600)

    def write_through() -> None:
        for i, k in enumerate(wkeys):
            wt.set(k, i)

    throughput: Dict[str, float] = {}
    t_wt = _median_seconds(write_through, 3)
    throughput["write-through"] = sets / t_wt
    for label, kw in (("write-behind, writer", {"writer": slow_writer}),
                      ("write-behind, writer_many", {"writer_many": slow_writer_many})):
        wb = WriteBehindCache(store, flush_interval=0.05, batch_size=100, **kw)

        def write_behind(wb: Any = wb) -> None:
            for i, k in enumerate(wkeys):
                wb.set(k, i)
            wb.flush(60)
        throughput[label] = sets / _median_seconds(write_behind, 3)
        wb.close()
    res["throughput"] = throughput

    client.close()
    return res


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def report(results: Dict[str, Any], opts: Any) -> str:
    if "skipped" in results:
        return f"{TITLE}: skipped: {results['skipped']}"
    out = [f"{TITLE} (Redis {results['redis_version']}, same process)"]
    base = results["local"]["LRUCache.get hit"]
    out.append("  local-tier hits (ns/op):")
    for name, v in results["local"].items():
        out.append(f"    {name:<34}{fmt(v):>10}  ({v / base:.2f}x LRUCache.get)")
    raw = results["remote"]["redis-py GET"]
    out.append("  one key over Redis (us/op):")
    for name, v in results["remote"].items():
        out.append(f"    {name:<34}{fmt(v / 1000, 2):>10}  ({v / raw:.2f}x raw GET)")
    b = results["batch_seconds"]
    out.append("  1,000 keys (ms per 1,000):")
    for name, v in b.items():
        out.append(f"    {name:<34}{fmt(v * 1000, 2):>10}")
    out.append(f"    get_many speed-up: {b['1000 x get'] / b['get_many(1000)']:.1f}x, "
               f"set_many speed-up: {b['1000 x set(ttl)'] / b['set_many(1000, ttl)']:.1f}x")
    trips = results["round_trips"]
    for name in ("get_many(1000)", "set_many(1000, ttl)"):
        out.append(f"    {name}: {trips[name]} round trip(s); server saw "
                   f"{trips[name + ' server commands']}")
    out.append(f"  write throughput, {results.get('sets', 1000):,} sets of 100 keys then "
               f"flush(), with a system of "
               f"record taking {results.get('writer_ms', 1.0):.2f} ms per call (sets/s):")
    tp = results["throughput"]
    base_tp = tp["write-through"]
    for name, v in tp.items():
        out.append(f"    {name:<40}{v:>10.0f}  ({v / base_tp:.1f}x write-through)")
    ack = results["ack"]
    out.append("  acknowledged write (us/op):")
    for name, v in ack.items():
        out.append(f"    {name:<34}{fmt(v / 1000, 2):>10}  "
                   f"({v / ack['redis-py SET']:.2f}x raw SET)")
    return "\n".join(out)


def targets(results: Dict[str, Any]) -> List[Target]:
    """The distributed issue's targets, checks; coalescing alone is
    information."""
    if "skipped" in results:
        return [Target("distributed targets", CHECK, why=results["skipped"])]
    out: List[Target] = []
    loc = results["local"]
    base = loc["LRUCache.get hit"]
    for name in ("NearCache.get local hit", "ReadThroughCache.get local hit"):
        out.append(ratio(f"{name} vs LRUCache.get hit", loc[name], base, 2.0, needs="default",
                         why="1.9-2.0x in --quick on a loaded machine"))
    rem = results["remote"]
    out.append(ratio("store hit vs raw redis-py GET", rem["RedisStore.get"] / 1000,
                     rem["redis-py GET"] / 1000, 1.2, unit="us"))
    b = results["batch_seconds"]
    trips = results["round_trips"]
    for batch_name, single in (("get_many(1000)", "1000 x get"),
                               ("set_many(1000, ttl)", "1000 x set(ttl)")):
        out.append(Target(f"{batch_name}: round trips", CHECK, "== 1", str(trips[batch_name]),
                          trips[batch_name] == 1))
        out.append(ratio(f"1,000 single calls vs one {batch_name}", b[single] * 1000,
                         b[batch_name] * 1000, 10.0, at_least=True, unit="ms", digits=2))
    tp = results["throughput"]
    base_tp = tp["write-through"]
    ms = results.get("writer_ms", 1.0)
    out.append(ratio(f"write-behind (coalescing plus batching: writer_many) vs write-through, "
                     f"sets/s with a {ms:.2f} ms writer", tp["write-behind, writer_many"],
                     base_tp, 10.0, at_least=True, unit="sets/s", digits=0))
    per_key = results.get("sets", 1000) // 100
    out.append(ratio(f"coalescing alone (writer per key, {ms:.2f} ms; {per_key} sets per key) "
                     f"vs write-through, sets/s", tp["write-behind, writer"], base_tp, 1.0,
                     at_least=True, unit="sets/s", digits=0, kind=INFO,
                     why="how much coalescing alone buys"))
    ack = results["ack"]
    out.append(ratio("acknowledged write-behind set vs raw SET",
                     ack["WriteBehindCache.set"] / 1000, ack["redis-py SET"] / 1000, 1.5,
                     unit="us", needs="default",
                     why="1.27-1.50x in --quick on a loaded machine"))
    return out

def figures(results: Dict[str, Any]) -> List[Figure]:
    """What --json saves and --compare compares; raw redis-py calls are the
    references (a slower raw GET means a slower machine or server)."""
    if "skipped" in results:
        return []
    out: List[Figure] = []

    def add(group: str, unit: str) -> None:
        for name, v in results[group].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                who = "redis-py" if name.startswith("redis-py") else "corecache"
                out.append(Figure(f"{NAME}/{group}/{name}", float(v), unit, who))

    add("local", "ns")
    add("remote", "ns")
    add("ack", "ns")
    add("batch_seconds", "s")
    add("throughput", "sets/s")
    for name, v in results["round_trips"].items():
        if isinstance(v, int) and not isinstance(v, bool):
            out.append(Figure(f"{NAME}/round_trips/{name}", float(v), "round trips", "corecache"))
    return out

