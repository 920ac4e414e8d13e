"""corecache.distributed: the cache carried on over Redis (pure Python over
redis-py; ``pip install 'corecache[redis]'``), or inside the process with
:class:`MemoryStore`, the same interface with no server.

Stores: :class:`RedisStore` (single node or cluster), :class:`MemoryStore`.
Patterns: :class:`ReadThroughCache`, :class:`WriteThroughCache`,
:class:`WriteBehindCache`, :class:`RefreshAheadCache`, :class:`NearCache`;
:func:`warm` and the :func:`cached` decorator.  See README.md.

The asyncio twin is :mod:`corecache.distributed.aio`, with the same names.
The modules here that hold the pattern logic are generated from it
(``_unasync.py``): edit the ones in ``aio/``.
"""
from ..exceptions import (CacheWriteError, LoadFailed, PendingLimitReached, PendingWritesError,
                          StoreError, StoreUnavailable, WritesLostError)
from ._base import Cache
from .decorator import cached, make_key
from .patterns import NearCache, ReadThroughCache, RefreshAheadCache, WriteThroughCache, warm
from ._redis_common import CircuitBreaker
from .redis_store import RedisStore
from .serializers import CorruptValue, JsonSerializer, PickleSerializer, RawSerializer
from .stats import DistributedStats
from .stores import MemoryStore, Store
from .write_behind import WriteBehindCache

__all__ = [
    "Cache",
    "CacheWriteError",
    "CircuitBreaker",
    "CorruptValue",
    "DistributedStats",
    "JsonSerializer",
    "LoadFailed",
    "MemoryStore",
    "NearCache",
    "PendingLimitReached",
    "PendingWritesError",
    "PickleSerializer",
    "RawSerializer",
    "ReadThroughCache",
    "RedisStore",
    "RefreshAheadCache",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "WriteBehindCache",
    "WriteThroughCache",
    "WritesLostError",
    "cached",
    "make_key",
    "warm",
]
