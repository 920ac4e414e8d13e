"""Exception classes shared by the compiled and the pure-Python implementations."""


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
    still pending.  They stay queued in the store, where the next flusher
    (this one, or another process's) writes them.

    :param keys: the keys of this instance's writes still pending.
    :param last_error: the writer's or the store's last error, or None.
    """

    def __init__(self, message: str, keys: object = (), last_error: object = None) -> None:
        super().__init__(message)
        self.keys = list(keys)  # type: ignore[call-overload]
        self.last_error = last_error


class PendingLimitReached(CoreCacheError, TimeoutError):
    """A write-behind set waited its whole block_timeout at max_pending."""
