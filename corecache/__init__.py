"""corecache: a C-core LRU cache and lru_cache for Python.

``corecache.IMPLEMENTATION`` is "c" when the compiled core is in use and
"py" when the pure-Python twin is (CORECACHE_NO_EXTENSIONS, another
interpreter, or a compiled module that failed to import).
"""
from ._impl import IMPLEMENTATION, selected as _selected
from ._version import __version__
from .config import CacheConfig
from .exceptions import CoreCacheError, PoolClosed, PoolExhausted
from .stats import CacheStats, PoolStats

LRUCache = _selected["lru"].LRUCache
ObjectPool = _selected["pool"].ObjectPool

__all__ = [
    "IMPLEMENTATION",
    "CacheConfig",
    "CacheStats",
    "CoreCacheError",
    "LRUCache",
    "ObjectPool",
    "PoolClosed",
    "PoolExhausted",
    "PoolStats",
    "__version__",
]
