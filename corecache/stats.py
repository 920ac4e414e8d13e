"""Immutable statistics snapshots, shared by both implementations."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Tuple


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a cache's counters, taken atomically by ``stats()``.

    :param hits: lookups through ``[]``, ``get`` or ``get_or_set`` that found a live entry.
    :param misses: such lookups that found nothing (or only an expired entry).
    :param evictions: entries the cache removed to respect ``max_size`` or the memory limit.
    :param expirations: entries the cache removed because their TTL ran out.
    :param size: live entries now.
    :param max_size: the entry limit (None when unbounded).
    :param memory_bytes: the sum of ``getsizeof(key, value)`` over live entries
        (0 when the cache does not account memory).
    :param memory_limit_bytes: the memory limit in bytes, or None.
    :param rejected: writes refused while writes were paused (``pause_writes``).
    """

    __slots__ = ("hits", "misses", "evictions", "expirations", "size",
                 "max_size", "memory_bytes", "memory_limit_bytes", "rejected")

    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int
    max_size: Optional[int]
    memory_bytes: int
    memory_limit_bytes: Optional[int]
    rejected: int

    @property
    def hit_rate(self) -> float:
        """hits / (hits + misses), or 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:  # frozen + __slots__ needs this on 3.9
        return (type(self), tuple(getattr(self, f.name) for f in fields(self)))

    def as_dict(self) -> Dict[str, Any]:
        """The fields and ``hit_rate`` as a plain dict."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["hit_rate"] = self.hit_rate
        return d


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of an :class:`ObjectPool`'s counters, taken atomically by
    ``stats()``.  Always ``created - discarded == idle + in_use``.

    :param created: objects the factory made (prefill included).
    :param reused: acquires served with an object that existed already.
    :param in_use: objects handed out now (and not yet back).
    :param idle: objects waiting in the pool now.
    :param discarded: objects the pool dropped: failed reset or validate,
        idle timeout, ``shrink``/``clear``, ``close``.
    :param waits: acquires that found every object in use and waited.
    :param timeouts: acquires that gave up with ``PoolExhausted``.
    :param max_size: the most objects that may exist at once.
    """

    __slots__ = ("created", "reused", "in_use", "idle", "discarded", "waits",
                 "timeouts", "max_size")

    created: int
    reused: int
    in_use: int
    idle: int
    discarded: int
    waits: int
    timeouts: int
    max_size: int

    @property
    def size(self) -> int:
        """Objects that exist now: ``in_use + idle``."""
        return self.in_use + self.idle

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:  # frozen + __slots__ needs this on 3.9
        return (type(self), tuple(getattr(self, f.name) for f in fields(self)))

    def as_dict(self) -> Dict[str, Any]:
        """The fields as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
