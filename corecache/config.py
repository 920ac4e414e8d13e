"""Configuration and argument validation, shared by both implementations.

Every check here raises TypeError (wrong kind of value) or ValueError (right
kind, wrong value) with a message naming the parameter and the value, and
both implementations call these same functions, so they fail alike.
"""
from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass
from typing import Any, Callable, Optional

MiB = 1 << 20


def check_max_size(value: Any, name: str = "max_size") -> int:
    """A positive int (bool is not accepted)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    try:
        size = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a positive int, got {value!r}") from None
    if size < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return size


def check_seconds(value: Any, name: str, *, allow_inf: bool = True) -> Optional[float]:
    """None, or a positive number of seconds (``math.inf`` when allowed)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number of seconds or None, got {value!r}")
    seconds = float(value)
    if not seconds > 0 or (math.isinf(seconds) and not allow_inf):
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return seconds


def check_ttl(value: Any, name: str = "ttl") -> Optional[float]:
    """None (use the default), a positive number of seconds, or math.inf (never)."""
    return check_seconds(value, name)


def check_memory_limit_mb(value: Any, name: str = "memory_limit_mb") -> Optional[int]:
    """None, or a positive, finite number of MiB; returns the limit in bytes."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number of MiB or None, got {value!r}")
    mb = float(value)
    if not (mb > 0 and math.isfinite(mb)) or int(mb * MiB) < 1:
        raise ValueError(f"{name} must be a positive number of MiB or None, got {value!r}")
    return int(mb * MiB)


def check_callable(value: Any, name: str) -> Any:
    """None or a callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r}")
    return value


def check_timeout(value: Any, name: str = "timeout") -> Optional[float]:
    """None, or a number of seconds >= 0 (0: do not wait; ``math.inf``: wait
    forever)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds >= 0 or None, got {value!r}")
    seconds = float(value)
    if not seconds >= 0:  # negative or NaN
        raise ValueError(f"{name} must be a number of seconds >= 0 or None, got {value!r}")
    return seconds


def check_count(value: Any, name: str) -> int:
    """An int >= 0 (bool is not accepted)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int >= 0, got {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int >= 0, got {value!r}") from None
    if n < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return n


def validate_changes(max_size: Any, default_ttl: Any, memory_limit_mb: Any,
                     cleanup_interval: Any, missing: Any) -> dict:
    """The live-changeable settings that were given, validated, all before any
    is applied (``missing`` marks one that was not given)."""
    changes = {}
    if max_size is not missing:
        changes["max_size"] = check_max_size(max_size)
    if default_ttl is not missing:
        changes["default_ttl"] = check_ttl(default_ttl, "default_ttl")
    if memory_limit_mb is not missing:
        check_memory_limit_mb(memory_limit_mb)
        changes["memory_limit_mb"] = memory_limit_mb
    if cleanup_interval is not missing:
        changes["cleanup_interval"] = check_seconds(cleanup_interval, "cleanup_interval",
                                                    allow_inf=False)
    return changes


def check_entry_size(size: Any, key: Any) -> int:
    """What ``getsizeof(key, value)`` returned must be an int >= 0."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"getsizeof must return an int, got {size!r} for key {key!r}")
    if size < 0:
        raise ValueError(f"getsizeof must return a size >= 0, got {size!r} for key {key!r}")
    return size


def entry_too_large(size: int, limit: int, key: Any) -> ValueError:
    return ValueError(
        f"entry for key {key!r} needs {size} bytes, more than the whole "
        f"memory limit of {limit} bytes")


@dataclass(frozen=True)
class CacheConfig:
    """The settings of an :class:`LRUCache`, validated when built.

    :param max_size: the most live entries the cache keeps (a positive int).
    :param default_ttl: seconds an entry lives when ``set`` gives no TTL;
        None or ``math.inf`` for no expiry.
    :param cleanup_interval: seconds between background sweeps of expired
        entries; None for lazy expiry only.
    :param memory_limit_mb: the most MiB the entries may take, as measured by
        ``getsizeof``; None for no memory limit.
    :param eviction_callback: ``callback(key, value)`` for every entry the
        cache removes on its own.
    :param getsizeof: ``getsizeof(key, value) -> int`` bytes; defaults to
        ``sys.getsizeof(key) + sys.getsizeof(value)`` when memory is limited.
    """

    max_size: int = 1000
    default_ttl: Optional[float] = None
    cleanup_interval: Optional[float] = None
    memory_limit_mb: Optional[float] = None
    eviction_callback: Optional[Callable[[Any, Any], Any]] = None
    getsizeof: Optional[Callable[[Any, Any], int]] = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "max_size", check_max_size(self.max_size))
        set_(self, "default_ttl", check_ttl(self.default_ttl, "default_ttl"))
        set_(self, "cleanup_interval",
             check_seconds(self.cleanup_interval, "cleanup_interval", allow_inf=False))
        check_memory_limit_mb(self.memory_limit_mb)
        check_callable(self.eviction_callback, "eviction_callback")
        check_callable(self.getsizeof, "getsizeof")

    @property
    def memory_limit_bytes(self) -> Optional[int]:
        return check_memory_limit_mb(self.memory_limit_mb)
