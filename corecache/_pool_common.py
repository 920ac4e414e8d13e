"""Python-level pieces shared by the compiled ObjectPool and its pure twin:
argument validation and the text of every error, so that both fail alike.
None of this is on the hot path."""
from __future__ import annotations

import math
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Tuple

from ._checks import check_callable, check_count, check_max_size, check_seconds, check_timeout
from .exceptions import PoolClosed, PoolExhausted

# Waiting longer than this is waiting forever (lock.acquire refuses more).
try:
    from threading import TIMEOUT_MAX
except ImportError:  # pragma: no cover
    TIMEOUT_MAX = 1e9

FOREVER = -1.0


def check_pool_args(factory: Any, max_size: Any, min_size: Any, reset: Any, validate: Any,
                    idle_timeout: Any, acquire_timeout: Any, clock: Any) -> Tuple[Any, ...]:
    """Every constructor argument, validated before any is used."""
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {factory!r}")
    max_size = check_max_size(max_size)
    min_size = check_count(min_size, "min_size")
    if min_size > max_size:
        raise ValueError(f"min_size must be <= max_size ({max_size}), got {min_size!r}")
    check_callable(reset, "reset")
    check_callable(validate, "validate")
    idle_timeout = check_seconds(idle_timeout, "idle_timeout")
    if idle_timeout is not None and math.isinf(idle_timeout):
        idle_timeout = None
    acquire_timeout = check_timeout(acquire_timeout, "acquire_timeout")
    check_callable(clock, "clock")
    return max_size, min_size, idle_timeout, acquire_timeout


def wait_seconds(timeout: Optional[float]) -> float:
    """A validated timeout as the cores keep it: FOREVER (-1.0) for None,
    math.inf, or anything lock.acquire cannot wait for; else the seconds."""
    if timeout is None or timeout > TIMEOUT_MAX:
        return FOREVER
    return timeout


def resolve_timeout(timeout: Any) -> float:
    """An acquire's own timeout argument (not None), as wait_seconds."""
    return wait_seconds(check_timeout(timeout))


def describe(obj: Any) -> str:
    """repr(obj) for an error message: short, and never failing."""
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__name__} object at {id(obj):#x}>"
    return text if len(text) <= 80 else text[:77] + "..."


def exhausted(max_size: int, waited: float) -> PoolExhausted:
    if waited == 0:
        return PoolExhausted(f"ObjectPool exhausted: all {max_size} objects are in use "
                             f"(timeout=0: did not wait)")
    return PoolExhausted(f"ObjectPool exhausted: all {max_size} objects are in use; "
                         f"waited {waited:g} s")


def closed() -> PoolClosed:
    return PoolClosed("ObjectPool is closed")


def not_lent(obj: Any, absent: bool) -> ValueError:
    if absent:
        return ValueError(f"put: {describe(obj)} was not handed out by this pool")
    return ValueError(f"put: {describe(obj)} was already put back into this pool")


def duplicate(obj: Any) -> ValueError:
    return ValueError(f"factory returned {describe(obj)}, an object this pool already "
                      f"holds (objects are tracked by identity: the factory must make "
                      f"a new one on every call)")


def pool_repr(pool: Any) -> str:
    st = pool.stats()
    state = ", closed" if pool.closed else ""
    return (f"{type(pool).__name__}(max_size={st.max_size}, in_use={st.in_use}, "
            f"idle={st.idle}{state})")
