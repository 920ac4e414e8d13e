"""corecache: a C-core LRU cache and lru_cache, an object pool and a stream
chunker for Python.

``corecache.IMPLEMENTATION`` is "c" when the compiled core is in use and
"py" when the pure-Python twin is (CORECACHE_NO_EXTENSIONS, another
interpreter, or a compiled module that failed to import).

Importing corecache loads nothing but this file: each name is imported
when first used (PEP 562), so a program that imports corecache for
``lru_cache`` pays for the compiled core and what it needs, and never for
asyncio, the pure twins, the chunking helpers or the configuration.
"""
from ._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    # type checkers see the compiled modules' stubs (_lru.pyi, _pool.pyi,
    # _chunk.pyi); the pure twins have the same signatures
    from ._chunk import StreamChunker
    from ._lru import Cache, LRUCache, cache, cached_method, lru_cache
    from ._pool import ObjectPool
    from .chunking import batched, process_chunks
    from .config import CacheConfig
    from .exceptions import CoreCacheError, PoolClosed, PoolExhausted
    from .registry import configure, get_cache
    from .stats import CacheStats, PoolStats
    IMPLEMENTATION: str

# name -> (module, attribute); a module "<impl>:lru" is the implementation's
_LAZY = {
    "Cache": ("<impl>:lru", "Cache"),
    "LRUCache": ("<impl>:lru", "LRUCache"),
    "lru_cache": ("<impl>:lru", "lru_cache"),
    "cache": ("<impl>:lru", "cache"),
    "cached_method": ("<impl>:lru", "cached_method"),
    "ObjectPool": ("<impl>:pool", "ObjectPool"),
    "StreamChunker": ("<impl>:chunk", "StreamChunker"),
    "batched": ("corecache.chunking", "batched"),
    "process_chunks": ("corecache.chunking", "process_chunks"),
    "CacheConfig": ("corecache.config", "CacheConfig"),
    "CoreCacheError": ("corecache.exceptions", "CoreCacheError"),
    "PoolClosed": ("corecache.exceptions", "PoolClosed"),
    "PoolExhausted": ("corecache.exceptions", "PoolExhausted"),
    "configure": ("corecache.registry", "configure"),
    "get_cache": ("corecache.registry", "get_cache"),
    "CacheStats": ("corecache.stats", "CacheStats"),
    "PoolStats": ("corecache.stats", "PoolStats"),
}


def __getattr__(name: str) -> object:
    if name == "IMPLEMENTATION":
        from ._impl import implementation
        value: object = implementation()
    else:
        try:
            module, attr = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module 'corecache' has no attribute {name!r}") from None
        if module.startswith("<impl>:"):
            from ._impl import selected
            value = getattr(selected()[module[7:]], attr)
        else:
            from importlib import import_module
            value = getattr(import_module(module), attr)
    globals()[name] = value      # once: later lookups are plain attribute reads
    return value


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "IMPLEMENTATION",
    "Cache",
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
