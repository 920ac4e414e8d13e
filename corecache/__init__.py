"""corecache: a C-core LRU cache and lru_cache, an object pool and a stream
chunker for Python.

``corecache.IMPLEMENTATION`` is "c" when the compiled core is in use and
"py" when the pure-Python twin is (CORECACHE_NO_EXTENSIONS, another
interpreter, or a compiled module that failed to import).
"""
from typing import TYPE_CHECKING

from ._impl import IMPLEMENTATION, selected as _selected
from ._version import __version__
from .chunking import batched, process_chunks
from .config import CacheConfig
from .exceptions import CoreCacheError, PoolClosed, PoolExhausted
from .registry import configure, get_cache
from .stats import CacheStats, PoolStats

if TYPE_CHECKING:
    # type checkers see the compiled modules' stubs (_lru.pyi, _pool.pyi,
    # _chunk.pyi); the pure twins have the same signatures
    from ._chunk import StreamChunker
    from ._lru import LRUCache, cache, cached_method, lru_cache
    from ._pool import ObjectPool
else:
    LRUCache = _selected["lru"].LRUCache
    lru_cache = _selected["lru"].lru_cache
    cache = _selected["lru"].cache
    cached_method = _selected["lru"].cached_method
    ObjectPool = _selected["pool"].ObjectPool
    StreamChunker = _selected["chunk"].StreamChunker

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
    "StreamChunker",
    "__version__",
    "batched",
    "cache",
    "cached_method",
    "configure",
    "get_cache",
    "lru_cache",
    "process_chunks",
]
