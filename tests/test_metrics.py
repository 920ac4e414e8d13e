"""corecache.metrics: the scrape, parsed with prometheus_client's own parser,
against stats(); weak references, the cardinality bound, the adapters for
pools, patterns and decorated functions (stand-ins of their documented
shapes), the HTTP endpoint; corecache.latency's sampled histograms."""
from __future__ import annotations

import functools
import gc
import logging
import math
import random
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Tuple

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from corecache import CacheStats  # noqa: E402
from corecache import metrics  # noqa: E402
from corecache.latency import (LatencyHistogram, default_sample_rate,  # noqa: E402
                               set_default_sample_rate)
from corecache.memory import MemoryMonitor  # noqa: E402
from conftest import samples_from_stats  # noqa: E402

Key = Tuple[str, Tuple[Tuple[str, str], ...]]


def scrape_text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def parse(text: str) -> Dict[Key, float]:
    """{(sample name, sorted labels): value} from the exposition text."""
    out: Dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def of(samples: Dict[Key, float], name: str, **extra: str) -> Dict[str, float]:
    """{sample name: value} for the object registered as `name`."""
    want = {"cache": name, **extra}
    out = {}
    for (sample, labels), value in samples.items():
        d = dict(labels)
        if d.get("cache") != name:
            continue
        rest = {k: v for k, v in d.items() if k not in want or want[k] != v}
        key = sample + "".join(f"{{{k}={v}}}" for k, v in sorted(rest.items()))
        out[key] = value
    return out


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


# ---- caches ------------------------------------------------------------------------


def test_scrape_matches_stats(impl, clock, registry):
    c = impl.LRUCache(4, default_ttl=10, memory_limit_mb=1, clock=clock)
    for i in range(6):          # 2 evictions
        c[i] = i
    c.set("short", 1, ttl=1)    # a third eviction
    clock.tick(2)               # "short" expires
    assert c.get("short") is None
    for k in (3, 4, 5, 3, 99):  # 4 hits, 1 miss
        c.get(k)
    c.pause_writes()
    c["refused"] = 1
    metrics.register(c, "users", registry=registry)
    got = of(parse(scrape_text(registry)), "users")
    stats = c.stats()
    assert (stats.hits, stats.misses, stats.evictions, stats.expirations, stats.rejected) == \
        (4, 2, 3, 1, 1)
    assert got == samples_from_stats(stats, paused=True)
    # read at scrape time: the next scrape sees what happened since
    c.resume_writes()
    c[7] = 7
    c.get(7)
    got = of(parse(scrape_text(registry)), "users")
    assert got == samples_from_stats(c.stats())
    assert got["corecache_hits_total"] == 5.0


def test_several_caches_one_family_each(impl, registry):
    a, b = impl.LRUCache(10), impl.LRUCache(20)
    a["x"] = 1
    a["x"]
    b.get("y")
    metrics.register(a, "a", registry=registry)
    metrics.register(b, "b", registry=registry)
    text = scrape_text(registry)
    assert text.count("# TYPE corecache_hits_total counter") == 1
    samples = parse(text)
    assert of(samples, "a") == samples_from_stats(a.stats())
    assert of(samples, "b") == samples_from_stats(b.stats())
    assert metrics.registered(registry=registry) == ["a", "b"]


def test_values_an_object_lacks_are_left_out(registry):
    class Unbounded:
        def stats(self):
            return CacheStats(1, 0, 0, 0, 1, None, 0, None, 0)

    u = Unbounded()
    metrics.register(u, "u", registry=registry)
    got = of(parse(scrape_text(registry)), "u")
    assert "corecache_max_size" not in got and "corecache_memory_limit_bytes" not in got
    assert "corecache_writes_paused" not in got      # the object has no writes_paused
    assert got["corecache_hit_ratio"] == 1.0


def test_stats_is_read_only_at_scrape_time(registry):
    calls = []

    class Counting:
        def stats(self):
            calls.append(1)
            return CacheStats(0, 0, 0, 0, 0, 10, 0, None, 0)

    obj = Counting()
    metrics.register(obj, "counting", registry=registry)
    assert len(calls) == 1                 # looked at once to learn its shape
    scrape_text(registry)
    scrape_text(registry)
    assert len(calls) == 3


# ---- registration rules ----------------------------------------------------------------------


def test_registered_objects_are_held_weakly(impl, registry):
    c = impl.LRUCache(10)
    metrics.register(c, "temp", registry=registry)
    assert of(parse(scrape_text(registry)), "temp")
    del c
    gc.collect()
    assert of(parse(scrape_text(registry)), "temp") == {}
    assert metrics.registered(registry=registry) == []
    d = impl.LRUCache(10)
    metrics.register(d, "temp", registry=registry)     # the name is free again
    assert of(parse(scrape_text(registry)), "temp")


def test_cardinality_is_bounded(impl, registry):
    collector = metrics.get_collector(registry)
    assert collector.max_caches == metrics.DEFAULT_MAX_CACHES == 100
    collector.max_caches = 3
    caches = [impl.LRUCache(2) for _ in range(4)]
    for i in range(3):
        metrics.register(caches[i], f"c{i}", registry=registry)
    with pytest.raises(ValueError, match=r"cannot register 'c3': 3 objects are registered, "
                                         r"the most allowed \(max_caches=3\)"):
        metrics.register(caches[3], "c3", registry=registry)
    assert metrics.unregister("c0", registry=registry) is True
    assert metrics.unregister("c0", registry=registry) is False
    metrics.register(caches[3], "c3", registry=registry)
    del caches[1]
    gc.collect()                           # a collected cache frees its slot
    c4 = impl.LRUCache(2)
    metrics.register(c4, "c4", registry=registry)
    assert sorted(metrics.registered(registry=registry)) == ["c2", "c3", "c4"]
    with pytest.raises(TypeError, match="max_caches must be a positive int"):
        collector.max_caches = "10"
    with pytest.raises(ValueError, match="max_caches must be a positive int"):
        collector.max_caches = 0


def test_names_and_shapes_are_checked(impl, registry):
    c = impl.LRUCache(2)
    metrics.register(c, "c", registry=registry)
    metrics.register(c, "c", registry=registry)           # same object, same name: no-op
    with pytest.raises(ValueError, match=r"metrics name 'c' is already registered for .*; "
                                         r"unregister\('c'\) first"):
        metrics.register(impl.LRUCache(2), "c", registry=registry)
    for bad in ("", None, 7):
        with pytest.raises(TypeError, match="name must be a non-empty str"):
            metrics.register(c, bad, registry=registry)
    with pytest.raises(TypeError, match="has neither stats"):
        metrics.register(object(), "o", registry=registry)

    class Odd:
        def stats(self):
            return {"temperature": 3}

    with pytest.raises(TypeError, match="none of the known shapes"):
        metrics.register(Odd(), "odd", registry=registry)

    class Slotted:
        __slots__ = ()

        def stats(self):
            return CacheStats(0, 0, 0, 0, 0, 1, 0, None, 0)

    with pytest.raises(TypeError, match="holds objects weakly, and Slotted objects cannot"):
        metrics.register(Slotted(), "s", registry=registry)


def test_a_failing_object_does_not_break_the_scrape(impl, registry, caplog):
    class Broken:
        ok = True

        def stats(self):
            if self.ok:
                return CacheStats(0, 0, 0, 0, 0, 1, 0, None, 0)
            raise RuntimeError("boom")

    broken = Broken()
    good = impl.LRUCache(3)
    metrics.register(broken, "broken", registry=registry)
    metrics.register(good, "good", registry=registry)
    broken.ok = False
    with caplog.at_level(logging.ERROR, logger="corecache.metrics"):
        samples = parse(scrape_text(registry))
    assert of(samples, "broken") == {}
    assert of(samples, "good") == samples_from_stats(good.stats())
    assert "reading 'broken' (cache) failed" in caplog.text


def test_describe_lists_every_family(registry):
    collector = metrics.get_collector(registry)
    assert metrics.get_collector(registry) is collector          # one per registry
    described = [m.name for m in collector.describe()]
    exported = [n[:-len("_total")] if n.endswith("_total") else n
                for n in metrics.metric_names()]
    assert described == exported


def test_default_registry():
    import corecache
    c = corecache.LRUCache(5)
    metrics.register(c, "test_metrics.default", registry=None)
    try:
        got = of(parse(generate_latest().decode()), "test_metrics.default")
        assert got == samples_from_stats(c.stats())
    finally:
        assert metrics.unregister("test_metrics.default")


def test_register_and_scrape_concurrently(impl, registry):
    caches = [impl.LRUCache(4) for _ in range(20)]
    stop = threading.Event()
    errors = []

    def scraper():
        while not stop.is_set():
            try:
                parse(scrape_text(registry))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    t = threading.Thread(target=scraper)
    t.start()
    try:
        for round_ in range(5):
            for i, c in enumerate(caches):
                metrics.register(c, f"c{i}", registry=registry)
            for i in range(len(caches)):
                metrics.unregister(f"c{i}", registry=registry)
    finally:
        stop.set()
        t.join()
    assert errors == []


# ---- decorated functions ---------------------------------------------------------------------


def test_decorated_function_with_cache_stats(impl, registry):
    # the shape of issue 3's lru_cache: .cache_stats() -> CacheStats
    backing = impl.LRUCache(8)

    def fn(x):
        v = backing.get(x)
        if v is None:
            v = backing[x] = x * 2
        return v

    fn.cache_stats = backing.stats
    for x in (1, 1, 2, 1):
        fn(x)
    metrics.register(fn, "fn", registry=registry)
    got = of(parse(scrape_text(registry)), "fn")
    want = samples_from_stats(backing.stats())
    del want["corecache_writes_paused"]
    assert got == want
    assert got["corecache_hits_total"] == 2.0


def test_decorated_function_with_a_breaker(impl, registry):
    # issue 3's wrapper with the optional memory-monitor hooks
    class Wrapper:
        def __init__(self):
            self.backing = impl.LRUCache(4)

        def __call__(self, x):
            return x

        def cache_stats(self):
            return self.backing.stats()

        @property
        def cache_writes_paused(self):
            return self.backing.writes_paused

    fn = Wrapper()
    metrics.register(fn, "wrapped", registry=registry)
    assert of(parse(scrape_text(registry)), "wrapped")["corecache_writes_paused"] == 0.0
    fn.backing.pause_writes()
    assert of(parse(scrape_text(registry)), "wrapped")["corecache_writes_paused"] == 1.0


def test_functools_lru_cache_through_cache_info(registry):
    @functools.lru_cache(maxsize=16)
    def square(x):
        return x * x

    for x in (1, 2, 1, 1, 3):
        square(x)
    metrics.register(square, "square", registry=registry)
    got = of(parse(scrape_text(registry)), "square")
    assert got == {"corecache_hits_total": 2.0, "corecache_misses_total": 3.0,
                   "corecache_size": 3.0, "corecache_max_size": 16.0,
                   "corecache_hit_ratio": 0.4}


# ---- pools (issue 4's documented shape) -------------------------------------------------------


@dataclass(frozen=True)
class PoolStatsStandIn:
    created: int
    reused: int
    in_use: int
    idle: int
    discarded: int
    waits: int
    timeouts: int
    max_size: int


class PoolStandIn:
    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot
        self.cleared = 0

    def stats(self) -> Any:
        return self.snapshot

    def clear(self) -> None:
        self.cleared += 1


@pytest.mark.parametrize("as_dict", [False, True])
def test_pool_adapter(registry, as_dict):
    snap = PoolStatsStandIn(created=5, reused=40, in_use=3, idle=2, discarded=1, waits=7,
                            timeouts=2, max_size=8)
    pool = PoolStandIn(snap.__dict__.copy() if as_dict else snap)
    metrics.register(pool, "parsers", registry=registry)
    got = of(parse(scrape_text(registry)), "parsers")
    assert got == {"corecache_pool_in_use": 3.0, "corecache_pool_idle": 2.0,
                   "corecache_pool_max_size": 8.0, "corecache_pool_created_total": 5.0,
                   "corecache_pool_reused_total": 40.0, "corecache_pool_discarded_total": 1.0,
                   "corecache_pool_timeouts_total": 2.0, "corecache_pool_waits_total": 7.0}


# ---- distributed patterns (issue 5's documented shape) ---------------------------------------


class PatternStandIn:
    def __init__(self) -> None:
        self.load_latency = LatencyHistogram(sample_rate=1.0)
        self.flush_latency = LatencyHistogram(sample_rate=1.0)
        self.counts = {"hits": {"local": 5, "store": 3}, "misses": 2, "loads": 4,
                       "load_errors": 1, "redis_errors": 2, "pending_writes": 7}

    def stats(self) -> Dict[str, Any]:
        return {**self.counts, "load_latency": self.load_latency.snapshot(),
                "flush_latency": self.flush_latency.snapshot()}


def test_pattern_adapter(registry):
    p = PatternStandIn()
    for seconds in (0.0004, 0.003, 0.003, 0.2):
        p.load_latency.observe(seconds)
    p.flush_latency.observe(12.0)
    metrics.register(p, "users-rt", registry=registry)
    samples = parse(scrape_text(registry))
    got = of(samples, "users-rt")
    assert got["corecache_pattern_hits_total{tier=local}"] == 5.0
    assert got["corecache_pattern_hits_total{tier=store}"] == 3.0
    assert got["corecache_pattern_misses_total"] == 2.0
    assert got["corecache_loads_total"] == 4.0
    assert got["corecache_load_errors_total"] == 1.0
    assert got["corecache_redis_errors_total"] == 2.0
    assert got["corecache_pending_writes"] == 7.0
    assert "corecache_refreshes_total" not in got          # not reported by this pattern
    assert got["corecache_load_latency_seconds_count"] == 4.0
    assert got["corecache_load_latency_seconds_sum"] == pytest.approx(0.2064)
    assert got["corecache_load_latency_seconds_bucket{le=0.0005}"] == 1.0
    assert got["corecache_load_latency_seconds_bucket{le=0.0025}"] == 1.0
    assert got["corecache_load_latency_seconds_bucket{le=0.005}"] == 3.0
    assert got["corecache_load_latency_seconds_bucket{le=0.25}"] == 4.0
    assert got["corecache_load_latency_seconds_bucket{le=+Inf}"] == 4.0
    assert got["corecache_flush_latency_seconds_bucket{le=10.0}"] == 0.0
    assert got["corecache_flush_latency_seconds_bucket{le=+Inf}"] == 1.0
    # a pattern that reports one hit count and refreshes
    p.counts = {"hits": 9, "loads": 1, "refreshes": 3, "refresh_errors": 1}
    got = of(parse(scrape_text(registry)), "users-rt")
    assert got["corecache_pattern_hits_total{tier=all}"] == 9.0
    assert got["corecache_refreshes_total"] == 3.0
    assert got["corecache_refresh_errors_total"] == 1.0


def test_pattern_tiers_are_bounded(registry):
    p = PatternStandIn()
    p.counts = {"hits": {f"t{i}": i for i in range(50)}, "loads": 0}
    metrics.register(p, "p", registry=registry)
    got = of(parse(scrape_text(registry)), "p")
    assert len([k for k in got if k.startswith("corecache_pattern_hits_total")]) == \
        metrics.MAX_TIERS


# ---- the memory monitor --------------------------------------------------------------------


def test_memory_monitor_adapter(registry):
    readings = iter([50.0, 90.0])
    mon = MemoryMonitor(probe=lambda: next(readings))
    metrics.register(mon, "memory", registry=registry)
    assert of(parse(scrape_text(registry)), "memory") == \
        {"corecache_memory_pressure_level": 0.0}        # no reading yet
    mon.check()
    assert of(parse(scrape_text(registry)), "memory") == \
        {"corecache_memory_pressure_level": 0.0, "corecache_memory_percent": 50.0}
    mon.check()
    assert of(parse(scrape_text(registry)), "memory") == \
        {"corecache_memory_pressure_level": 2.0, "corecache_memory_percent": 90.0}


# ---- the HTTP endpoint ------------------------------------------------------------------------


def test_serve(impl, registry):
    c = impl.LRUCache(3)
    c["a"] = 1
    c["a"]
    metrics.register(c, "served", registry=registry)
    with metrics.serve(0, registry=registry) as server:
        assert server.addr == "127.0.0.1" and server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(server.url, timeout=10) as resp:
            text = resp.read().decode()
    assert of(parse(text), "served") == samples_from_stats(c.stats())
    assert not server.thread.is_alive()


# ---- sampled latency histograms -------------------------------------------------------------


def test_latency_histogram_buckets_and_snapshot():
    h = LatencyHistogram((0.1, 1.0), sample_rate=1.0)
    for s in (0.05, 0.1, 0.5, 3.0):
        h.observe(s)
    snap = h.snapshot()
    assert snap.buckets == ((0.1, 2), (1.0, 3), (math.inf, 4))
    assert snap.count == 4 and snap.sum == pytest.approx(3.65) and snap.sample_rate == 1.0
    h.reset()
    assert h.snapshot().count == 0
    with pytest.raises(ValueError, match="increasing positive bounds"):
        LatencyHistogram((1.0, 0.5))
    with pytest.raises(ValueError, match="increasing positive bounds"):
        LatencyHistogram(())


def test_latency_histogram_sampling():
    never = LatencyHistogram(sample_rate=0.0)
    always = LatencyHistogram(sample_rate=1.0)
    half = LatencyHistogram(sample_rate=0.5, rng=random.Random(7).random)
    for h in (never, always, half):
        for _ in range(1000):
            with h.time():
                pass
    assert never.snapshot().count == 0
    assert always.snapshot().count == 1000
    assert 400 < half.snapshot().count < 600
    t0 = half.start()
    half.stop(t0)                    # either way, never an error
    half.stop(None)
    with pytest.raises(ValueError, match="sample_rate must be a number from 0 to 1"):
        LatencyHistogram(sample_rate=1.5)
    with pytest.raises(TypeError, match="sample_rate must be a number from 0 to 1"):
        always.sample_rate = "all"


def test_latency_histogram_times_a_raising_body():
    h = LatencyHistogram(sample_rate=1.0)
    with pytest.raises(KeyError):
        with h.time():
            raise KeyError("x")
    assert h.snapshot().count == 1


def test_default_sample_rate():
    h = LatencyHistogram()
    before = default_sample_rate()
    try:
        assert h.sample_rate == before == 1.0
        metrics.set_default_sample_rate(0.0)
        assert h.sample_rate == 0.0 and not h.sampled()
        h.sample_rate = 1.0                   # its own rate wins
        assert h.sampled()
        h.sample_rate = None                  # back to the default
        assert not h.sampled()
    finally:
        set_default_sample_rate(before)


# ---- the bench section (structure only: tests never assert speed) -------------------------


def test_bench_section_runs():
    import types

    from corecache.bench import metrics as section
    opts = types.SimpleNamespace(n=1000, repeats=1, libs=None)
    results = section.run(opts)
    assert "corecache[py]" in results
    for figs in results.values():
        assert set(figs) == {"unregistered", "registered"}
    assert "ratio to unregistered" in section.report(results, opts)
    assert len(section.targets(results)) == len(results)


# ---- the real pool and the real decorators (issues 3 and 4) -------------------------

def test_scrape_of_a_real_pool_and_decorated_function(impl):
    registry = CollectorRegistry()
    pool = impl.ObjectPool(dict, max_size=4)
    with pool.acquire():
        pass
    held = pool.get()

    @impl.lru_cache(maxsize=32)
    def f(x):
        return x

    f(1), f(1), f(2)
    metrics.register(pool, "real_pool", registry=registry)
    metrics.register(f, "real_fn", registry=registry)
    try:
        values = {}
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            for sample in family.samples:
                values[(sample.name, sample.labels.get("cache"))] = sample.value
        st = pool.stats()
        assert values[("corecache_pool_in_use", "real_pool")] == st.in_use == 1
        assert values[("corecache_pool_idle", "real_pool")] == st.idle
        assert values[("corecache_pool_created_total", "real_pool")] == st.created
        assert values[("corecache_hits_total", "real_fn")] == 1
        assert values[("corecache_misses_total", "real_fn")] == 2
        assert values[("corecache_size", "real_fn")] == 2
        assert values[("corecache_max_size", "real_fn")] == 32
    finally:
        metrics.unregister("real_pool", registry=registry)
        metrics.unregister("real_fn", registry=registry)
        pool.put(held)


# ---- the real distributed patterns (issue 5) ---------------------------------------

def test_scrape_of_a_real_read_through_pattern(impl):
    from corecache.distributed import MemoryStore, ReadThroughCache
    from corecache.latency import default_sample_rate, set_default_sample_rate

    registry = CollectorRegistry()
    before = default_sample_rate()
    set_default_sample_rate(1.0)
    try:
        calls = []
        rt = ReadThroughCache(MemoryStore(), lambda k: calls.append(k) or k.upper(), ttl=60,
                              local=impl.LRUCache(16))
        rt.get("a"), rt.get("a"), rt.get("b")
        metrics.register(rt, "rt", registry=registry)
        values = {}
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            for sample in family.samples:
                labels = tuple(sorted(sample.labels.items()))
                values[(sample.name, labels)] = sample.value
        st = rt.stats()
        assert values[("corecache_loads_total", (("cache", "rt"),))] == st.loads == 2
        assert values[("corecache_pattern_hits_total", (("cache", "rt"), ("tier", "local")))] \
            == st.local_hits == 1
        assert values[("corecache_pattern_hits_total", (("cache", "rt"), ("tier", "store")))] \
            == st.store_hits
        assert values[("corecache_redis_errors_total", (("cache", "rt"),))] == 0
        assert values[("corecache_load_latency_seconds_count", (("cache", "rt"),))] == 2
        metrics.unregister("rt", registry=registry)
        rt.close()
    finally:
        set_default_sample_rate(before)
