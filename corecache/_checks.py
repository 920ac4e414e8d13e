"""Argument validation, shared by both implementations and every layer.

Every check raises TypeError (wrong kind of value) or ValueError (right
kind, wrong value) with a message naming the parameter and the value, and
both implementations call these same functions, so they fail alike.
Imported by the hot-path modules, so it imports nothing heavy (not even
typing).
"""
from __future__ import annotations

import math
import numbers
import operator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional

MiB = 1 << 20
# The largest memory limit, entry size and memory total (bytes), and count
# (evict(n), shrink(n)): what the compiled core's 64-bit counters hold.
MAX_BYTES = (1 << 63) - 1
MAX_COUNT = (1 << 63) - 1


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
    if int(mb * MiB) > MAX_BYTES:
        raise ValueError(f"{name} must be at most {MAX_BYTES // MiB} MiB (2**63 bytes), "
                         f"got {value!r}")
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
    # more than any count of things can be is as many as there are
    return n if n <= MAX_COUNT else MAX_COUNT


def validate_changes(max_size: Any, default_ttl: Any, memory_limit_mb: Any,
                     cleanup_interval: Any, missing: Any) -> Dict[str, Any]:
    """The live-changeable settings that were given, validated, all before any
    is applied (``missing`` marks one that was not given)."""
    changes: Dict[str, Any] = {}
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


def read_clock(clock: Callable[[], Any]) -> float:
    """The time of a user-supplied clock (``clock=``), which must be a
    number of seconds."""
    t = clock()
    if type(t) is float and t - t == 0.0:      # the common case: finite
        return t
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        try:
            seconds = float(t.__float__())
        except Exception:
            raise TypeError(f"clock must return a number of seconds, got {t!r}") from None
    else:
        try:
            seconds = float(t)
        except OverflowError:
            seconds = math.inf
    # a deadline computed from NaN or infinity would never (or always) pass:
    # refused before the reading is used, so nothing changes
    if not math.isfinite(seconds):
        raise ValueError(f"clock must return a finite number of seconds, got {t!r}")
    return seconds


def check_entry_size(size: Any, key: Any) -> int:
    """What ``getsizeof(key, value)`` returned must be an int >= 0."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"getsizeof must return an int, got {size!r} for key {key!r}")
    if size < 0:
        raise ValueError(f"getsizeof must return a size >= 0, got {size!r} for key {key!r}")
    if size > MAX_BYTES:
        raise ValueError(f"getsizeof must return a size below 2**63, got {size!r} "
                         f"for key {key!r}")
    return size


def memory_overflow(memory: int, size: int, key: Any) -> ValueError:
    """An entry whose size would take the cache's total past 64 bits."""
    return ValueError(
        f"entry for key {key!r} of {size} bytes would take the cache's memory "
        f"total ({memory} bytes) past 2**64 - 1")


def entry_too_large(size: int, limit: int, key: Any) -> ValueError:
    return ValueError(
        f"entry for key {key!r} needs {size} bytes, more than the whole "
        f"memory limit of {limit} bytes")
