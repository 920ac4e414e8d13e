"""Exception classes shared by the compiled and the pure-Python implementations."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class CoreCacheError(Exception):
    """Base class of corecache's own exceptions."""


class PoolExhausted(CoreCacheError, TimeoutError):
    """No pooled object became free within the acquire timeout."""


class PoolClosed(CoreCacheError, RuntimeError):
    """The pool was closed; it hands out no more objects."""


# ---- corecache.distributed -------------------------------------------------


class StoreError(CoreCacheError):
    """A store (Redis) failed an operation; ``__cause__`` is redis-py's error."""


class StoreUnavailable(StoreError, ConnectionError):
    """The store could not be reached in time: connection refused or lost, a
    timeout, or the circuit breaker is open after such a failure."""


class CacheWriteError(StoreError):
    """The writer stored the value, but the cache could not be updated (its
    old entry was dropped where possible).  ``written`` is True: the system
    of record has the new value."""

    def __init__(self, message: str, key: object = None) -> None:
        super().__init__(message)
        self.key = key
        self.written = True


class PendingWritesError(CoreCacheError, TimeoutError):
    """flush() or close() of a write-behind cache ran out of time with writes
    still pending.  They were pending in the store at its last look, where
    the next flusher (this one, or another process's) writes them.

    :param keys: the keys of this instance's writes still pending.
    :param last_error: the writer's or the store's last error, or None.
    """

    def __init__(self, message: str, keys: object = (), last_error: object = None) -> None:
        super().__init__(message)
        self.keys = list(keys)  # type: ignore[call-overload]
        self.last_error = last_error
        self.lost: list[Any] = []


class WritesLostError(PendingWritesError):
    """flush() or close() of a write-behind cache found that the store lost
    writes this instance had acknowledged: no flusher wrote them and the
    store no longer holds them (a restart without persistence, a failover to
    a replica that lacked them, FLUSHALL).  Write them again.

    :param lost: the keys whose acknowledged writes were lost.
    :param keys: the keys still pending (may be empty).
    """

    def __init__(self, message: str, lost: object = (), keys: object = (),
                 last_error: object = None) -> None:
        super().__init__(message, keys, last_error)
        self.lost = list(lost)  # type: ignore[call-overload]


class LoadFailed(CoreCacheError):
    """Another process's loader of this key raised while this one waited
    for its value: the failure is shared with the waiters of that load
    instead of each of them calling the loader again.  ``key`` is the key;
    the message carries the other process's exception as text."""

    def __init__(self, message: str, key: object = None) -> None:
        super().__init__(message)
        self.key = key


class PendingLimitReached(CoreCacheError, TimeoutError):
    """A write-behind set waited its whole block_timeout at max_pending."""
