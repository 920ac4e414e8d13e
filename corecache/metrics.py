"""Prometheus metrics for corecache objects, read when Prometheus scrapes.

``register(obj, name)`` adds an object to a collector; at every scrape the
collector calls the object's ``stats()`` (or ``cache_stats()``) and turns
the snapshot into samples.  Nothing is added to the object, so a hit on a
registered cache runs exactly the code of a hit on an unregistered one.

Every family carries one label, ``cache``: the name given to ``register``.

* caches and decorated functions: ``corecache_hits_total``,
  ``corecache_misses_total``, ``corecache_evictions_total``,
  ``corecache_expirations_total``, ``corecache_rejected_writes_total``,
  ``corecache_size``, ``corecache_max_size``, ``corecache_memory_bytes``,
  ``corecache_memory_limit_bytes``, ``corecache_hit_ratio`` (since the last
  ``reset_stats``) and ``corecache_writes_paused``;
* pools: ``corecache_pool_in_use``, ``_idle``, ``_max_size``,
  ``_created_total``, ``_reused_total``, ``_discarded_total``,
  ``_timeouts_total``, ``_waits_total``;
* distributed patterns: ``corecache_pattern_hits_total`` (also labelled
  ``tier``), ``corecache_pattern_misses_total``, ``corecache_loads_total``,
  ``corecache_load_errors_total``, ``corecache_refreshes_total``,
  ``corecache_refresh_errors_total``, ``corecache_redis_errors_total``,
  ``corecache_pending_writes`` and the histograms
  ``corecache_load_latency_seconds`` and ``corecache_flush_latency_seconds``
  (sampled: see :mod:`corecache.latency`);
* memory monitors: ``corecache_memory_pressure_level`` (0 NORMAL to 3
  CRITICAL) and ``corecache_memory_percent``.

A sample whose value the object does not report (an unbounded cache's
``max_size``) is left out.  Objects are held weakly: a cache that is
garbage-collected leaves the scrape.  At most ``max_caches`` objects (100
by default) are registered per collector, which bounds the scrape.

Requires the ``metrics`` extra (``pip install corecache[metrics]``).
"""
from __future__ import annotations

import logging
import math
import numbers
import operator
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

try:
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
    from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                        HistogramMetricFamily, Metric)
    from prometheus_client.utils import floatToGoString
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("corecache.metrics needs prometheus-client: "
                      "pip install 'corecache[metrics]'") from exc

from . import _adapters
from ._adapters import CACHE, FUNCTION, MONITOR, PATTERN, POOL, field
from .latency import set_default_sample_rate

__all__ = ["DEFAULT_MAX_CACHES", "LABEL", "CoreCacheCollector", "MetricsServer",
           "get_collector", "metric_names", "register", "registered", "serve",
           "set_default_sample_rate", "unregister"]

log = logging.getLogger("corecache.metrics")

DEFAULT_MAX_CACHES = 100
LABEL = "cache"
MAX_TIERS = 8          # tier label values per pattern


@dataclass(frozen=True)
class _Family:
    """One metric family: its name, type, help, and how a value is read
    from (snapshot, object)."""

    name: str
    type: str          # "counter", "gauge" or "histogram"
    doc: str
    read: Union[str, Callable[[Any, Any], Any]]
    extra_labels: Tuple[str, ...] = ()


def _hit_ratio(snap: Any, obj: Any) -> Optional[float]:
    hits, misses = _number(field(snap, "hits")), _number(field(snap, "misses"))
    if hits is None or misses is None:
        return None
    return hits / (hits + misses) if hits + misses else 0.0


def _writes_paused(snap: Any, obj: Any) -> Optional[int]:
    # LRUCache.writes_paused; a decorated function's cache_writes_paused
    paused = getattr(obj, "writes_paused", getattr(obj, "cache_writes_paused", None))
    return None if paused is None or callable(paused) else int(bool(paused))


CACHE_FAMILIES = (
    _Family("corecache_hits_total", "counter", "Lookups that found a live entry.", "hits"),
    _Family("corecache_misses_total", "counter", "Lookups that found no live entry.",
            "misses"),
    _Family("corecache_evictions_total", "counter",
            "Entries removed to respect the size or memory limit.", "evictions"),
    _Family("corecache_expirations_total", "counter", "Entries removed because their TTL "
            "ran out.", "expirations"),
    _Family("corecache_rejected_writes_total", "counter",
            "Writes refused while writes were paused (memory circuit breaker).", "rejected"),
    _Family("corecache_size", "gauge", "Live entries.", "size"),
    _Family("corecache_max_size", "gauge", "The entry limit.", "max_size"),
    _Family("corecache_memory_bytes", "gauge",
            "Bytes the live entries take, as measured by getsizeof (0 when not measured).",
            "memory_bytes"),
    _Family("corecache_memory_limit_bytes", "gauge", "The memory limit in bytes.",
            "memory_limit_bytes"),
    _Family("corecache_hit_ratio", "gauge",
            "hits / (hits + misses) since the statistics were last reset.", _hit_ratio),
    _Family("corecache_writes_paused", "gauge",
            "1 while the cache refuses writes (memory circuit breaker), else 0.",
            _writes_paused),
)

POOL_FAMILIES = (
    _Family("corecache_pool_in_use", "gauge", "Pooled objects handed out now.", "in_use"),
    _Family("corecache_pool_idle", "gauge", "Pooled objects waiting to be handed out.",
            "idle"),
    _Family("corecache_pool_max_size", "gauge", "The most objects the pool keeps.",
            "max_size"),
    _Family("corecache_pool_created_total", "counter", "Objects the factory created.",
            "created"),
    _Family("corecache_pool_reused_total", "counter", "Acquires served by an idle object.",
            "reused"),
    _Family("corecache_pool_discarded_total", "counter",
            "Objects dropped (failed reset or validate, idle timeout, shrink).", "discarded"),
    _Family("corecache_pool_timeouts_total", "counter",
            "Acquires that gave up (PoolExhausted).", "timeouts"),
    _Family("corecache_pool_waits_total", "counter",
            "Acquires that had to wait for an object.", "waits"),
)


def _tiers(snap: Any, obj: Any) -> Optional[List[Tuple[Tuple[str, ...], float]]]:
    hits = field(snap, "hits_by_tier")
    if hits is None:
        hits = field(snap, "hits")
    if hits is None:
        return None
    if isinstance(hits, Mapping):
        out = [((str(tier),), _number(n)) for tier, n in list(hits.items())[:MAX_TIERS]]
        return [(labels, v) for labels, v in out if v is not None]
    v = _number(hits)
    return None if v is None else [(("all",), v)]


PATTERN_FAMILIES = (
    _Family("corecache_pattern_hits_total", "counter", "Reads answered by a tier (local "
            "cache, store).", _tiers, ("tier",)),
    _Family("corecache_pattern_misses_total", "counter", "Reads answered by no tier.",
            "misses"),
    _Family("corecache_loads_total", "counter", "Calls of the loader.", "loads"),
    _Family("corecache_load_errors_total", "counter", "Loader calls that raised.",
            "load_errors"),
    _Family("corecache_refreshes_total", "counter", "Background refreshes (refresh-ahead).",
            "refreshes"),
    _Family("corecache_refresh_errors_total", "counter",
            "Background refreshes that failed.", "refresh_errors"),
    _Family("corecache_redis_errors_total", "counter",
            "Store operations that failed (Redis unreachable, timed out...).", "redis_errors"),
    _Family("corecache_pending_writes", "gauge",
            "Writes acknowledged but not yet written through (write-behind backlog).",
            "pending_writes"),
    _Family("corecache_load_latency_seconds", "histogram",
            "Loader latency over sampled calls (count and sum cover sampled calls).",
            "load_latency"),
    _Family("corecache_flush_latency_seconds", "histogram",
            "Write-behind flush latency over sampled flushes.", "flush_latency"),
)

MONITOR_FAMILIES = (
    _Family("corecache_memory_pressure_level", "gauge",
            "Memory pressure: 0 NORMAL, 1 MODERATE, 2 HIGH, 3 CRITICAL.", "level"),
    _Family("corecache_memory_percent", "gauge",
            "Memory in use, percent of the monitor's basis (system memory or the process "
            "limit).", "percent"),
)

FAMILIES: Dict[str, Tuple[_Family, ...]] = {
    CACHE: CACHE_FAMILIES,
    FUNCTION: CACHE_FAMILIES,
    POOL: POOL_FAMILIES,
    PATTERN: PATTERN_FAMILIES,
    MONITOR: MONITOR_FAMILIES,
}


def metric_names() -> List[str]:
    """Every family name this module can export (as written in queries:
    counters with ``_total``; histograms add ``_bucket``/``_sum``/``_count``)."""
    seen: Dict[str, None] = {}
    for fams in FAMILIES.values():
        for fam in fams:
            seen.setdefault(fam.name)
    return list(seen)


def _number(value: Any) -> Optional[float]:
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    try:   # an enum member or anything with __index__
        return float(operator.index(value))
    except TypeError:
        return None


def _new_family(fam: _Family) -> Metric:
    labels = [LABEL, *fam.extra_labels]
    if fam.type == "counter":
        return CounterMetricFamily(fam.name, fam.doc, labels=labels)
    if fam.type == "gauge":
        return GaugeMetricFamily(fam.name, fam.doc, labels=labels)
    return HistogramMetricFamily(fam.name, fam.doc, labels=labels)


def _add(metric: Metric, fam: _Family, name: str, snap: Any, obj: Any) -> None:
    if fam.type == "histogram":
        hist = field(snap, fam.read) if isinstance(fam.read, str) else fam.read(snap, obj)
        buckets = field(hist, "buckets") if hist is not None else None
        if buckets is None:
            return
        rows = [(math.inf if b == "+Inf" else float(b), float(n)) for b, n in buckets]
        if not rows or rows[-1][0] != math.inf:
            rows.append((math.inf, float(field(hist, "count", rows[-1][1] if rows else 0))))
        metric.add_metric([name], [(floatToGoString(b), n) for b, n in rows],
                          sum_value=float(field(hist, "sum", 0.0)))
        return
    if isinstance(fam.read, str):
        value = _number(field(snap, fam.read))
        if value is not None:
            metric.add_metric([name], value)
        return
    got = fam.read(snap, obj)
    if got is None:
        return
    if isinstance(got, list):   # [(extra label values, value)]
        for extra, value in got:
            metric.add_metric([name, *extra], value)
    else:
        metric.add_metric([name], float(got))


@dataclass
class _Entry:
    ref: Callable[[], Optional[Any]]
    shape: _adapters.Shape


class CoreCacheCollector:
    """A Prometheus collector of registered corecache objects, read at
    scrape time.

    :param max_caches: the most objects registered at once (the bound on
        the ``cache`` label's values).
    """

    def __init__(self, max_caches: int = DEFAULT_MAX_CACHES) -> None:
        self._entries: Dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.max_caches = max_caches

    @property
    def max_caches(self) -> int:
        return self._max

    @max_caches.setter
    def max_caches(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"max_caches must be a positive int, got {value!r}")
        if value < 1:
            raise ValueError(f"max_caches must be a positive int, got {value!r}")
        self._max = value

    def register(self, obj: Any, name: str) -> None:
        """Export `obj` under ``cache=name``: an LRUCache, a decorated
        function, an ObjectPool, a distributed pattern or a MemoryMonitor
        (anything of their shapes; see :mod:`corecache._adapters`).

        Registering the same object under the same name again does nothing.

        :raises TypeError: `name` is not a non-empty str; `obj` has no known
            shape or cannot be weakly referenced.
        :raises ValueError: `name` is taken by another live object, or
            ``max_caches`` objects are registered already.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got {name!r}")
        shape = _adapters.detect(obj)
        ref = _adapters.weak(obj, "corecache.metrics")
        with self._lock:
            self._prune()
            old = self._entries.get(name)
            if old is not None:
                if old.ref() is obj:
                    return
                raise ValueError(f"metrics name {name!r} is already registered for "
                                 f"{old.ref()!r}; unregister({name!r}) first")
            if len(self._entries) >= self._max:
                raise ValueError(
                    f"cannot register {name!r}: {len(self._entries)} objects are registered, "
                    f"the most allowed (max_caches={self._max}) to keep the scrape bounded; "
                    f"unregister some or raise max_caches")
            self._entries[name] = _Entry(ref, shape)

    def unregister(self, name: str) -> bool:
        """Stop exporting `name`; returns whether it was registered."""
        with self._lock:
            return self._entries.pop(name, None) is not None

    def names(self) -> List[str]:
        """The names of the live registered objects."""
        with self._lock:
            self._prune()
            return list(self._entries)

    def _prune(self) -> None:
        # under self._lock; weakref callbacks would run at arbitrary points
        # (inside the GC, maybe with this lock held), so dead entries are
        # dropped here instead
        for name in [n for n, e in self._entries.items() if e.ref() is None]:
            del self._entries[name]

    def describe(self) -> Iterator[Metric]:
        """Every family, without samples (so that a registry knows the names)."""
        seen = set()
        for fams in FAMILIES.values():
            for fam in fams:
                if fam.name not in seen:
                    seen.add(fam.name)
                    yield _new_family(fam)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self._prune()
            entries = list(self._entries.items())
        metrics: Dict[str, Metric] = {}
        for name, entry in entries:
            obj = entry.ref()
            if obj is None:
                continue
            # stats() takes the object's own lock; none of ours is held
            try:
                snap = entry.shape.read(obj)
                fams = FAMILIES[entry.shape.kind]
                for fam in fams:
                    metric = metrics.get(fam.name)
                    if metric is None:
                        metric = metrics[fam.name] = _new_family(fam)
                    _add(metric, fam, name, snap, obj)
            except Exception:
                log.exception("corecache.metrics: reading %r (%s) failed; left out of "
                              "this scrape", name, entry.shape.kind)
            del obj
        for metric in metrics.values():
            if metric.samples:
                yield metric


_collectors: "weakref.WeakKeyDictionary[Any, CoreCacheCollector]" = weakref.WeakKeyDictionary()
_collectors_lock = threading.Lock()


def get_collector(registry: Optional[CollectorRegistry] = None) -> CoreCacheCollector:
    """The collector of `registry` (default: prometheus_client's global
    REGISTRY), created and registered with it on first use.  Set its
    ``max_caches`` to change the bound."""
    registry = REGISTRY if registry is None else registry
    with _collectors_lock:
        collector = _collectors.get(registry)
        if collector is None:
            collector = CoreCacheCollector()
            registry.register(collector)
            _collectors[registry] = collector
        return collector


def register(obj: Any, name: str, *, registry: Optional[CollectorRegistry] = None) -> None:
    """Export `obj` (an LRUCache, decorated function, ObjectPool, distributed
    pattern or MemoryMonitor) with the label ``cache=name``; see
    :meth:`CoreCacheCollector.register`.

    :param registry: the prometheus_client registry (default: the global one).
    """
    get_collector(registry).register(obj, name)


def unregister(name: str, *, registry: Optional[CollectorRegistry] = None) -> bool:
    """Stop exporting `name`; returns whether it was registered."""
    return get_collector(registry).unregister(name)


def registered(*, registry: Optional[CollectorRegistry] = None) -> List[str]:
    """The names exported now."""
    return get_collector(registry).names()


class MetricsServer:
    """The HTTP endpoint started by :func:`serve`."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self.thread = thread
        self.addr, self.port = server.server_address[:2]

    @property
    def url(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self.thread.join(5)

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def serve(port: int, addr: str = "127.0.0.1", *,
          registry: Optional[CollectorRegistry] = None) -> MetricsServer:
    """Serve `registry` (default: the global one) for Prometheus at
    ``http://addr:port/metrics`` on a daemon thread.

    :param port: the TCP port; 0 picks a free one (see ``.port``).
    :param addr: the address to listen on: loopback by default, so that
        nothing is exposed beyond the machine unless asked for.
    """
    registry = REGISTRY if registry is None else registry
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread)
