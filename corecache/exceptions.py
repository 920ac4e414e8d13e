"""Exception classes shared by the compiled and the pure-Python implementations."""


class CoreCacheError(Exception):
    """Base class of corecache's own exceptions."""


class PoolExhausted(CoreCacheError, TimeoutError):
    """No pooled object became free within the acquire timeout."""


class PoolClosed(CoreCacheError, RuntimeError):
    """The pool was closed; it hands out no more objects."""
