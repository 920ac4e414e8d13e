"""corecache.distributed.aio: the distributed layer for asyncio, over
``redis.asyncio`` (``pip install 'corecache[redis]'``), or inside the
process with :class:`MemoryStore`.

The same names, parameters, semantics and ``stats()`` as
:mod:`corecache.distributed`, with coroutine methods (``await c.get(k)``,
``await c.get_many(keys)``, ``await wb.flush()``), async context managers
and ``aclose()``.  Loaders and writers may be ``async def`` or plain
functions; a plain one runs on the event loop unless wrapped in
:func:`in_thread`.  Sync and async instances on one namespace share
everything: fill locks, the write-behind queue, invalidations.

This package is also the *source* of the synchronous layer: the modules of
``corecache.distributed`` that hold the pattern logic are generated from
the ones here (see ``corecache/distributed/_unasync.py``).
"""
from ...exceptions import (CacheWriteError, LoadFailed, PendingLimitReached, PendingWritesError,
                           StoreError, StoreUnavailable, WritesLostError)
from .._redis_common import CircuitBreaker
from ..serializers import CorruptValue, JsonSerializer, PickleSerializer, RawSerializer
from ..stats import DistributedStats
from ._base import Cache
from ._io import in_thread
from .decorator import cached, make_key
from .patterns import NearCache, ReadThroughCache, RefreshAheadCache, WriteThroughCache, warm
from .redis_store import RedisStore
from .stores import MemoryStore, Store
from .write_behind import WriteBehindCache

from .. import __all__ as _SYNC_NAMES  # noqa: E402  (the same names)

# the names of corecache.distributed, and in_thread
__all__ = [*_SYNC_NAMES, "in_thread"]
