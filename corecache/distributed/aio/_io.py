"""What the asyncio distributed layer does where its synchronous twin
differs: tasks for threads, ``asyncio.sleep``, a single flight per event
loop, a loader awaited when it returns an awaitable.  The same names as
``../_io.py`` (see there); the modules of this package import them as
``._io``, and so does the synchronous code generated from them.

An instance belongs to the event loop it first runs in (as a
``redis.asyncio`` client does).  Background work (a write-behind flusher,
refresh-ahead workers, an invalidation listener, the lease keeper) runs in
tasks the instance owns: created when it is made inside a running loop, or
at its first awaited call otherwise, and stopped by ``aclose()``.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple

from ..._flight import AsyncSingleFlight

__all__ = ["Event", "Flights", "NodeClients", "Reads", "STYLE", "Worker", "call", "constructor_wait",
           "discard", "fast_getter", "in_thread", "sleep"]

STYLE = "async"

_MISSING: Any = object()

sleep = asyncio.sleep


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), awaited if it returns an awaitable.  A plain function runs
    on the event loop, as it is: wrap a blocking one in :func:`in_thread`."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def in_thread(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """A coroutine function running the plain function ``fn`` in a thread
    (``asyncio.to_thread``): for a blocking loader or writer, which would
    otherwise hold up the event loop while it runs."""
    if not callable(fn):
        raise TypeError(f"in_thread() takes a callable, got {fn!r}")

    @functools.wraps(fn)
    async def threaded(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return threaded


def fast_getter(local: Any, slow: Callable[[Any, Any], Any]) -> Optional[Callable[..., Any]]:
    """``async get(key, default=None)``: the local tier first, then
    ``await slow(key, default)``.  A closure over the tier's getter: an
    awaited hit costs the coroutine and one C call, no attribute lookup."""
    local_get = getattr(local, "get", None)
    if local_get is None:
        return None
    missing = _MISSING

    async def get(key: Any, default: Any = None) -> Any:
        value = local_get(key, missing)
        if value is not missing:
            return value
        return await slow(key, default)
    return get


def constructor_wait(event: "Event", timeout: float) -> None:
    """Nothing: a constructor cannot await; ``__aenter__`` (or the first
    awaited call) waits instead."""


class Event:
    """asyncio.Event, with wait(timeout) -> bool as in the sync layer."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: Optional[float] = None) -> bool:
        if self._event.is_set():
            # yield all the same: a loop that waits on an event set again
            # and again (and awaits nothing else that suspends, as on a
            # MemoryStore) would otherwise never let another task run
            await asyncio.sleep(0)
            return True
        if timeout is None:
            await self._event.wait()
            return True
        if timeout <= 0:
            await asyncio.sleep(0)
            return self._event.is_set()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


class Worker:
    """A background loop owned by an instance: a task named
    ``corecache-<name>``.  ``start()`` outside a running loop defers it to
    the first ``ensure()`` inside one (every coroutine entry point that
    needs it calls ensure)."""

    def __init__(self, target: Callable[[], Awaitable[Any]], name: str) -> None:
        self._target = target
        self._name = f"corecache-{name}"
        self._task: Optional["asyncio.Task[Any]"] = None
        self._wanted = False

    def start(self) -> None:
        self._wanted = True
        self.ensure()

    def ensure(self) -> None:
        if self._wanted and self._task is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return      # no loop yet: the first ensure() in one starts it
            self._task = loop.create_task(self._target(), name=self._name)

    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def current(self) -> bool:
        try:
            return self._task is not None and asyncio.current_task() is self._task
        except RuntimeError:
            return False

    async def join(self, timeout: Optional[float]) -> bool:
        """Wait for the loop to end; True if it did within timeout."""
        self._wanted = False
        task = self._task
        if task is None or task.done():
            return True
        if self.current():
            return False
        await asyncio.wait({task}, timeout=timeout)
        return task.done()


def Flights() -> AsyncSingleFlight:
    """The single flight of one cache (corecache._flight): concurrent
    lookups of a key in this process share one leader's computation."""
    return AsyncSingleFlight("the loader")


class Reads:
    """One key's store read on a miss, batched: the reads that the
    lookups of one event-loop iteration ask for go to the store as one
    ``fetch_many_ttl`` (one round trip: MGET and PTTLs in a pipeline), so
    that ten thousand coroutines missing a thousand keys make one round trip,
    not a thousand (nor a thousand pooled connections).  A failure of the
    batch is each read's failure."""

    __slots__ = ("_store", "_pending", "_scheduled")

    def __init__(self, store: Any) -> None:
        self._store = store
        self._pending: Dict[Tuple[str, bool], List["asyncio.Future[Any]"]] = {}
        self._scheduled = False

    async def fetch_ttl(self, key: str, ttl: bool = True) -> Tuple[Optional[bytes],
                                                                  Optional[float]]:
        """(bytes or None, seconds left or None; None too when not ttl)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.setdefault((key, ttl), []).append(future)
        if not self._scheduled:
            self._scheduled = True
            # after the callbacks already queued: the other lookups of this
            # iteration join the batch first
            loop.call_soon(self._send, loop)
        return await future  # type: ignore[no-any-return]

    def _send(self, loop: Any) -> None:
        pending, self._pending = self._pending, {}
        self._scheduled = False
        for ttl in (True, False):
            batch = {k: futures for (k, t), futures in pending.items() if t is ttl}
            if batch:
                loop.create_task(self._read(batch, ttl), name="corecache-read-batch")

    async def _read(self, batch: Dict[str, List["asyncio.Future[Any]"]], ttl: bool) -> None:
        keys = list(batch)
        try:
            if ttl:
                datas, lefts = await self._store.fetch_many_ttl(keys)
            else:
                datas, lefts = await self._store.fetch_many(keys), [None] * len(keys)
        except BaseException as exc:
            for futures in batch.values():
                for f in futures:
                    if not f.done():
                        f.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for k, data, left in zip(keys, datas, lefts):
            for f in batch[k]:
                if not f.done():
                    f.set_result((data, left))


def discard(client: Any) -> None:
    """Nothing: a redis.asyncio client connects at its first command, so
    one never used holds nothing."""


class NodeClients:
    """A ``redis.asyncio.Redis`` per node of a ``redis.asyncio`` cluster
    (which has none to lend), for node-direct pipelines; closed with the
    store."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self._clients: Dict[str, Any] = {}

    def get(self, node: Any) -> Any:
        client = self._clients.get(node.name)
        if client is None:
            import inspect as _inspect

            import redis.asyncio as redis
            accepted = _inspect.signature(redis.Redis.__init__).parameters
            kwargs = {k: v for k, v in self._cluster.get_connection_kwargs().items()
                      if k in accepted and k not in ("host", "port", "connection_pool")
                      and not k.startswith(("maint_", "response_callbacks"))}
            client = self._clients[node.name] = redis.Redis(host=node.host, port=node.port,
                                                            **kwargs)
        return client

    async def ready(self) -> None:
        """Learn the cluster's slots if the client has not yet (it does so
        at its first command; node-direct calls need them before)."""
        if self._cluster._initialize:
            await self._cluster.initialize()

    async def aclose(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for c in clients:
            await c.aclose()
