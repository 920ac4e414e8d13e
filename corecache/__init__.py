"""corecache: a C-core LRU cache and lru_cache for Python.

``corecache.IMPLEMENTATION`` is "c" when the compiled core is in use and
"py" when the pure-Python twin is (CORECACHE_NO_EXTENSIONS, another
interpreter, or a compiled module that failed to import).
"""
from ._impl import IMPLEMENTATION, selected as _selected
from ._version import __version__
from .config import CacheConfig
from .exceptions import CoreCacheError, PoolClosed, PoolExhausted
from .registry import configure, get_cache
from .stats import CacheStats

LRUCache = _selected["lru"].LRUCache
lru_cache = _selected["lru"].lru_cache
cache = _selected["lru"].cache
cached_method = _selected["lru"].cached_method

__all__ = [
    "IMPLEMENTATION",
    "CacheConfig",
    "CacheStats",
    "CoreCacheError",
    "LRUCache",
    "cache",
    "cached_method",
    "lru_cache",
    "PoolClosed",
    "PoolExhausted",
    "__version__",
    "configure",
    "get_cache",
]
