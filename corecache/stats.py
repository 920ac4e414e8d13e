"""Immutable statistics snapshots, shared by both implementations.

Plain classes rather than dataclasses: a snapshot is made on every
``stats()`` call, and this module is on the import path of every cache
(dataclasses costs several milliseconds to import).  _Snapshot gives each
the behaviour of a frozen dataclass: keyword or positional construction,
its fields in order in ``repr``, equality and hashing by fields, no
assignment, pickling.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple


class _Snapshot:
    __slots__: Tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self.__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} fields, "
                            f"got {len(args)}")
        values = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in names:
                raise TypeError(f"{type(self).__name__} has no field {k!r}")
            if k in values:
                raise TypeError(f"{type(self).__name__} got field {k!r} twice")
            values[k] = v
        missing = [k for k in names if k not in values]
        if missing:
            raise TypeError(f"{type(self).__name__} is missing {', '.join(missing)}")
        for k in names:
            object.__setattr__(self, k, values[k])

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a {type(self).__name__}")

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (type(self), self._values())


class CacheStats(_Snapshot):
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

    def as_dict(self) -> Dict[str, Any]:
        """The fields and ``hit_rate`` as a plain dict."""
        d = dict(zip(self.__slots__, self._values()))
        d["hit_rate"] = self.hit_rate
        return d


class PoolStats(_Snapshot):
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

    def as_dict(self) -> Dict[str, Any]:
        """The fields as a plain dict."""
        return dict(zip(self.__slots__, self._values()))
