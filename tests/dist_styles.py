"""Both styles of the distributed layer through one set of behaviour tests.

The fixture ``dist`` (parametrized ``sync`` / ``async``) is a namespace of
the layer's names: for ``sync``, ``corecache.distributed`` itself; for
``async``, ``corecache.distributed.aio`` driven from the test's thread
through :class:`Blocking` proxies, on one event loop running in a thread of
its own (``aio_loop``).  A test written against ``dist`` calls
``dist.ReadThroughCache(...)``, ``cache.get(k)``, ``with cache:``,
``cache.close()`` alike in both styles, and its threads become concurrent
coroutines on that loop in the async one.  ``dist.make_store(**kw)`` is the
``make_store`` of the style (MemoryStore, one Redis node, a cluster).

In the async style the plain functions a test hands to the layer (loaders,
writers, decorated functions) run through ``aio.in_thread``: they block
(sleeps, events the test sets) and must not hold up the loop the test's
other calls need.  A test of what happens *on* the loop (single flight per
loop, cancellation, a blocked loop) is in test_dist_aio.py.

After each async test, no corecache task may be left on the loop.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
from types import SimpleNamespace
from typing import Any, Callable, Iterator, List

import pytest

__all__ = ["Blocking", "LoopThread", "aio_loop", "dist", "corecache_tasks"]

USE_UVLOOP = os.environ.get("CORECACHE_TEST_UVLOOP", "") not in ("", "0")


class LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self, uvloop: bool = USE_UVLOOP) -> None:
        if uvloop:
            import uvloop as _uvloop
            self.loop = _uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="test-event-loop")
        self._thread.start()

    def run(self, coro: Any, timeout: float = 120.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs) on the loop, awaited if it returns an awaitable."""
        async def invoke() -> Any:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        return self.run(invoke())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def corecache_tasks(lt: LoopThread) -> List[str]:
    async def names() -> List[str]:
        return [t.get_name() for t in asyncio.all_tasks()
                if t.get_name().startswith("corecache-") and not t.done()]
    return lt.run(names())


def _ours(value: Any) -> bool:
    mod = type(value).__module__ or ""
    return mod.startswith(("corecache.distributed.aio", "redis.asyncio"))


class Blocking:
    """A blocking view of an asyncio object: every call runs on the loop."""

    __slots__ = ("_obj", "_lt")

    def __init__(self, obj: Any, lt: LoopThread) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_lt", lt)

    def __getattr__(self, name: str) -> Any:
        if name == "close":
            name = "aclose"
        value = getattr(self._obj, name)
        if callable(value) and not isinstance(value, type):
            lt = self._lt

            @functools.wraps(value)
            def blocking(*args: Any, **kwargs: Any) -> Any:
                args = tuple(unwrap(a) for a in args)
                kwargs = {k: unwrap(v) for k, v in kwargs.items()}
                return wrap(lt.call(value, *args, **kwargs), lt)
            return blocking
        return wrap(value, self._lt)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._obj, name, value)

    def __enter__(self) -> "Blocking":
        self._lt.call(self._obj.__aenter__)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lt.call(self._obj.__aexit__, *exc)

    def __len__(self) -> int:
        return len(self._obj)

    def __repr__(self) -> str:
        return repr(self._obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return wrap(self._lt.call(self._obj, *args, **kwargs), self._lt)


def wrap(value: Any, lt: LoopThread) -> Any:
    return Blocking(value, lt) if _ours(value) else value


def unwrap(value: Any) -> Any:
    return object.__getattribute__(value, "_obj") if isinstance(value, Blocking) else value


def threaded(fn: Any) -> Any:
    """A plain test function as a coroutine function running in a thread."""
    from corecache.distributed import aio
    if fn is None or not callable(fn) or inspect.iscoroutinefunction(fn) or isinstance(fn, type):
        return fn
    t = aio.in_thread(fn)
    for attr in ("calls", "batches"):      # a counting loader stays inspectable
        if hasattr(fn, attr):
            setattr(t, attr, getattr(fn, attr))
    return t


_USER_CODE = ("loader", "loader_many", "writer", "writer_many", "deleter", "key")


class AsyncAPI:
    """corecache.distributed's names, served by corecache.distributed.aio."""

    style = "async"

    def __init__(self, lt: LoopThread, make_store: Callable[..., Any]) -> None:
        from corecache.distributed import aio
        self._lt = lt
        self._aio = aio
        self.make_store = make_store
        for name in aio.__all__:
            value = getattr(aio, name)
            if name in ("cached", "warm", "in_thread") or name[0].isupper() and isinstance(
                    value, type) and name.endswith(("Cache", "Store")):
                continue
            setattr(self, name, value)      # exceptions, serializers, make_key

    def _build(self, cls: Any, *args: Any, **kwargs: Any) -> Blocking:
        args = tuple(threaded(unwrap(a)) if callable(unwrap(a)) and not isinstance(
            unwrap(a), (type,)) and not _ours(unwrap(a)) else unwrap(a) for a in args)
        kwargs = {k: (threaded(v) if k in _USER_CODE else unwrap(v)) for k, v in kwargs.items()}
        obj = self._lt.call(cls, *args, **kwargs)
        if hasattr(obj, "_start"):        # what `async with` would wait for
            self._lt.call(obj._start)
        return Blocking(obj, self._lt)

    def __getattr__(self, name: str) -> Any:
        cls = getattr(self._aio, name)
        return functools.partial(self._build, cls)

    def is_memory(self, store: Any) -> bool:
        return isinstance(unwrap(store), self._aio.MemoryStore)

    def warm(self, cache: Any, keys: Any, **kw: Any) -> Any:
        return self._lt.call(self._aio.warm, unwrap(cache), keys, **kw)

    def cached(self, store: Any, **kw: Any) -> Callable[[Callable[..., Any]], Any]:
        lt = self._lt
        kw = {k: (threaded(v) if k in _USER_CODE and k != "key" else unwrap(v))
              for k, v in kw.items()}
        decorate = lt.call(self._aio.cached, unwrap(store), **kw)

        def blocking_decorate(func: Callable[..., Any]) -> Any:
            wrapper = decorate(threaded(func))
            proxy = Blocking(wrapper, lt)

            @functools.wraps(func)
            def call(*args: Any, **kwargs: Any) -> Any:
                return proxy(*args, **kwargs)
            for name in ("cache", "key_of", "invalidate", "stats", "close"):
                setattr(call, name, getattr(proxy, name))
            return call
        return blocking_decorate


class SyncAPI(SimpleNamespace):
    style = "sync"

    def is_memory(self, store: Any) -> bool:
        return isinstance(store, self.MemoryStore)


@pytest.fixture(scope="session")
def aio_loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


@pytest.fixture(params=["sync", "async"])
def dist(request: Any) -> Iterator[Any]:
    """The distributed layer's names in one style (see the module docstring)."""
    import corecache.distributed as sync
    if request.param == "sync":
        names = {n: getattr(sync, n) for n in sync.__all__}
        make = (request.getfixturevalue("make_store") if "store_kind" in request.fixturenames
                else None)
        yield SyncAPI(make_store=make, **names)
        return
    lt: LoopThread = request.getfixturevalue("aio_loop")
    kind = (request.getfixturevalue("store_kind") if "store_kind" in request.fixturenames
            else "memory")
    request.getfixturevalue("no_thread_leaks")
    # the servers first: they are torn down after this fixture, which
    # closes the stores (and so their connections) before they check
    server = request.getfixturevalue("redis_server") if kind == "redis" else None
    cluster = request.getfixturevalue("redis_cluster") if kind == "cluster" else None
    made: List[Any] = []
    memory: dict = {}

    def make_store(**kw: Any) -> Any:
        from corecache.distributed import aio
        if kind == "memory":
            key = (kw.get("namespace", "corecache"), kw.get("serializer", "json"))
            if key not in memory:
                memory[key] = Blocking(aio.MemoryStore(**kw), lt)
            return memory[key]
        import redis.asyncio as aredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        opts = {"socket_timeout": 1.0, "socket_connect_timeout": 0.5,
                "retry": Retry(NoBackoff(), 0)}
        kw.setdefault("circuit_breaker", 0.2)
        if kind == "redis":
            client = aredis.Redis(host="127.0.0.1", port=server.port, **opts)
        else:
            from redis.asyncio.cluster import RedisCluster
            client = RedisCluster(host="127.0.0.1", port=cluster.ports[0], **opts)
        store = lt.call(aio.RedisStore, client, **kw)
        store._owns_client = True
        made.append(store)
        return Blocking(store, lt)

    yield AsyncAPI(lt, make_store)
    for store in made:
        lt.run(store.aclose())
    from dist_helpers import wait_for
    assert wait_for(lambda: not corecache_tasks(lt), 3), \
        f"tasks left running: {corecache_tasks(lt)}"
