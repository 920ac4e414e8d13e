"""What kind of object the integrations (``corecache.metrics``,
``corecache.memory``) were given, decided by what it offers rather than by
its class, so that any object of a known shape works without importing it:

=============  =====================================================================
kind           offers
=============  =====================================================================
``function``   ``cache_stats()`` returning a CacheStats-like snapshot (corecache's
               decorated functions), or else ``cache_info()`` returning functools'
               ``(hits, misses, maxsize, currsize)``
``monitor``    ``stats()`` with ``level`` and ``percent`` (MemoryMonitor)
``pool``       ``stats()`` with ``in_use``, ``idle`` and ``created`` (ObjectPool)
``pattern``    ``stats()`` with any of ``loads``, ``load_errors``, ``redis_errors``,
               ``pending_writes`` (the distributed patterns)
``cache``      ``stats()`` with ``hits``, ``misses`` and ``size`` (LRUCache)
=============  =====================================================================

A snapshot may be a mapping or an object with attributes (``field`` reads
either).  Kinds are tried in the order above.  A new kind needs an entry in
``_STATS_KINDS`` here, its families in ``corecache.metrics.FAMILIES`` and,
to respond to memory pressure, its actions in ``corecache.memory``.
"""
from __future__ import annotations

import inspect
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

CACHE, FUNCTION, POOL, PATTERN, MONITOR = "cache", "function", "pool", "pattern", "monitor"

_ABSENT = object()


def field(snapshot: Any, name: str, default: Any = None) -> Any:
    """``snapshot[name]`` for a mapping, else ``snapshot.name``; `default`
    when it has none."""
    if isinstance(snapshot, Mapping):
        return snapshot.get(name, default)
    return getattr(snapshot, name, default)


def has(snapshot: Any, name: str) -> bool:
    return field(snapshot, name, _ABSENT) is not _ABSENT


@dataclass(frozen=True)
class Shape:
    """A kind and how to take a snapshot of an object of that kind."""

    kind: str
    read: Callable[[Any], Any]


def _function_info(fn: Any) -> dict:
    info = fn.cache_info()
    return {"hits": info.hits, "misses": info.misses, "max_size": info.maxsize,
            "size": info.currsize}


# (kind, predicate over a stats() snapshot), tried in order
_STATS_KINDS: List[Tuple[str, Callable[[Any], bool]]] = [
    (MONITOR, lambda s: has(s, "level") and has(s, "percent")),
    (POOL, lambda s: has(s, "in_use") and has(s, "idle") and has(s, "created")),
    (PATTERN, lambda s: any(has(s, f) for f in
                            ("loads", "load_errors", "redis_errors", "pending_writes"))),
    (CACHE, lambda s: has(s, "hits") and has(s, "misses") and has(s, "size")),
]


def _call_stats(obj: Any) -> Any:
    return obj.stats()


def _call_cache_stats(obj: Any) -> Any:
    return obj.cache_stats()


def detect(obj: Any) -> Shape:
    """The shape of `obj` (calls its ``stats()`` once to look at it).

    :raises TypeError: `obj` offers none of the known shapes.
    """
    if callable(getattr(obj, "cache_stats", None)):
        return Shape(FUNCTION, _call_cache_stats)
    stats = getattr(obj, "stats", None)
    if callable(stats):
        snapshot = stats()
        for kind, matches in _STATS_KINDS:
            if matches(snapshot):
                return Shape(kind, _call_stats)
        raise TypeError(f"{obj!r}: stats() returned {snapshot!r}, which has none of the "
                        "known shapes (a cache's hits/misses/size, a pool's "
                        "in_use/idle/created, a pattern's loads/load_errors/redis_errors/"
                        "pending_writes, a monitor's level/percent)")
    if callable(getattr(obj, "cache_info", None)):
        return Shape(FUNCTION, _function_info)
    raise TypeError(f"{obj!r} has neither stats() nor cache_stats() nor cache_info(); "
                    "corecache can only watch caches, decorated functions, pools, "
                    "distributed patterns and memory monitors")


def weak(obj: Any, what: str) -> Callable[[], Optional[Any]]:
    """A weak reference to `obj` (a WeakMethod for a bound method, which a
    plain reference would lose at once)."""
    try:
        if inspect.ismethod(obj):
            return weakref.WeakMethod(obj)
        return weakref.ref(obj)
    except TypeError:
        raise TypeError(f"{what} holds objects weakly, and {type(obj).__name__} objects "
                        f"cannot be weakly referenced: {obj!r}") from None
