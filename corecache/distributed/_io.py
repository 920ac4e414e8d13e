"""What the synchronous distributed layer does where its asyncio twin
differs: threads for tasks, ``time.sleep``, a single flight of threads, a
loader called rather than awaited.

The pattern logic is written once, as asyncio code, in ``aio/``; the
synchronous modules are generated from it (``_unasync.py``), and both
import these names from ``._io``: this module for the generated code,
``aio/_io.py`` for the source.  Nothing else differs between the styles.

* ``sleep(seconds)``
* ``call(fn, *args)``: user code (a loader, writer, deleter), called
* ``Event``: ``set``, ``clear``, ``is_set``, ``wait(timeout) -> bool``
* ``Worker(target, name)``: an instance's background loop (a daemon thread
  here), ``start``, ``ensure``, ``alive``, ``join(timeout) -> bool``
* ``Flights``: the single flight of one cache: concurrent lookups of a key
  in this process share one computation (``run``, ``run_many``)
* ``NodeClients``: a cluster client per node, for node-direct pipelines;
  ``discard(client)`` closes a client built for nothing

The single flight is one object behind two methods, so that it can be
swapped for corecache's own (``corecache._flight``) when that lands.
"""
from __future__ import annotations

import inspect
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple


from .._flight import SingleFlight

__all__ = ["Event", "Flights", "NodeClients", "Reads", "STYLE", "Worker", "call", "constructor_wait",
           "discard", "fast_getter", "sleep"]

STYLE = "sync"

sleep = time.sleep


def call(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), which must not be a coroutine function here."""
    result = fn(*args)
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise TypeError(f"{getattr(fn, '__qualname__', fn)!r} returned an awaitable: the "
                        f"synchronous corecache.distributed cannot await it; use "
                        f"corecache.distributed.aio, or pass a plain function")
    return result


def fast_getter(local: Any, slow: Callable[[Any, Any], Any]) -> Optional[Callable[..., Any]]:
    """The local tier's own getter falling back to slow(key, default) on a
    miss (compiled: a hit runs no Python frame), or None if it has none."""
    getter = getattr(local, "getter", None)
    return getter(slow) if getter is not None else None


def constructor_wait(event: "Event", timeout: float) -> None:
    """Block until event is set, at most timeout seconds (a constructor
    waiting for its background work; aio waits in ``__aenter__``)."""
    event.wait(timeout)


# set, clear, is_set, wait(timeout) -> bool: aio's Event has the same
Event = threading.Event


class Worker:
    """A background loop owned by an instance: a daemon thread named
    ``corecache-<name>``, started by ``start()``."""

    def __init__(self, target: Callable[[], Any], name: str) -> None:
        self._thread = threading.Thread(target=target, daemon=True, name=f"corecache-{name}")
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def ensure(self) -> None:
        """Nothing to do here (aio: start a task deferred until a loop ran)."""

    def alive(self) -> bool:
        return self._thread.is_alive()

    def current(self) -> bool:
        """True when called from this worker."""
        return self._thread is threading.current_thread()

    def join(self, timeout: Optional[float]) -> bool:
        """Wait for the loop to end; True if it did within timeout."""
        if self._started and not self.current():
            self._thread.join(timeout)
        return not self._thread.is_alive()


def Flights() -> SingleFlight:
    """The single flight of one cache (corecache._flight): concurrent
    lookups of a key in this process share one leader's computation."""
    return SingleFlight("the loader")


class Reads:
    """One key's store read on a miss: straight to the store here (aio
    batches the reads of one loop iteration)."""

    __slots__ = ("_store",)

    def __init__(self, store: Any) -> None:
        self._store = store

    def fetch_ttl(self, key: str, ttl: bool = True) -> Tuple[Optional[bytes],
                                                            Optional[float]]:
        """(bytes or None, seconds left or None; None too when not ttl)."""
        if ttl:
            return self._store.fetch_ttl(key)  # type: ignore[no-any-return]
        return self._store.fetch(key), None


def discard(client: Any) -> None:
    """Close a client that was built and is not used after all."""
    client.close()


class NodeClients:
    """The client of each node of a cluster (redis-py's own, here)."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster

    def get(self, node: Any) -> Any:
        return self._cluster.get_redis_connection(node)

    def ready(self) -> None:
        """Nothing: a sync cluster client learns its slots when it is made."""

    def close(self) -> None:
        """Nothing: the cluster client owns them."""
