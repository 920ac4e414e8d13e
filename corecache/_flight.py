"""Single flight: concurrent computations of one key share one run.

The one mechanism behind ``LRUCache.get_or_set`` (both twins),
``lru_cache(single_flight=True)``, the async ``lru_cache`` wrapper and the
distributed patterns' in-process stampede protection.

Threads (:class:`SingleFlight`): the first thread to ask for a key becomes
its leader and computes; the others wait for the leader's value or its
exception.  The registry's lock is held only to look a key up and register
a flight, in one step, so two threads can never both lead one key; the
computation runs with no lock held.  A leader that stops with something
other than an ``Exception`` (KeyboardInterrupt, SystemExit, a
``GeneratorExit``) abandons its flight instead of failing it: the waiters do
not inherit the interrupt, one of them leads again.

reentrancy: looking a key up runs its ``__eq__`` under the registry's lock,
an RLock, so a key that uses the cache from its ``__eq__`` re-enters rather
than deadlocks; a computation asking for its own key (same thread) gets a
RuntimeError instead of waiting for itself.

Event loops (:class:`AsyncSingleFlight`): per loop, awaiters of one key
share one task; an awaiter that is cancelled stops waiting without
cancelling the others' computation, which is cancelled only when no awaiter
is left.  asyncio is imported when first used, never at import.
"""
from __future__ import annotations

import threading
import weakref
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Tuple

__all__ = ["Flight", "SingleFlight", "AsyncSingleFlight", "ABANDONED"]

_get_ident = threading.get_ident
ABANDONED = object()      # what wait() returns when the leader gave up


class Flight:
    """One computation in progress, which other threads may wait for."""

    __slots__ = ("owner", "_event", "_value", "_error", "_abandoned")

    def __init__(self) -> None:
        self.owner = _get_ident()
        self._event = threading.Event()
        self._value: Any = None
        self._error: Any = None
        self._abandoned = False

    def succeed(self, value: Any) -> None:
        self._value = value
        self._event.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._event.set()

    def abandon(self) -> None:
        self._abandoned = True
        self._event.set()

    def wait(self) -> Any:
        """The leader's value; its exception is raised; ABANDONED if it gave up."""
        self._event.wait()
        if self._error is not None:
            raise self._error
        return ABANDONED if self._abandoned else self._value


class SingleFlight:
    """A registry of the flights in progress, by key.

    :param what: names the user in the error a computation gets when it asks
        for its own key (``"get_or_set"``, ``"single_flight"``, ...).
    """

    __slots__ = ("_lock", "_flights", "_what")

    def __init__(self, what: str = "single flight") -> None:
        self._lock = threading.RLock()
        self._flights: Dict[Any, Flight] = {}
        self._what = what

    def __len__(self) -> int:
        return len(self._flights)

    def reentered(self, key: Any) -> RuntimeError:
        return RuntimeError(f"{self._what}: the computation of key {key!r} asked for the "
                            f"same key (it would wait for itself)")

    def join(self, key: Any) -> Tuple[Flight, bool]:
        """(the key's flight, whether this thread leads it), in one step."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def _leave(self, key: Any, flight: Flight) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]

    def run(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once for every thread asking for `key` meanwhile."""
        while True:
            flight, leader = self.join(key)
            if leader:
                break
            if flight.owner == _get_ident():
                raise self.reentered(key)
            value = flight.wait()
            if value is not ABANDONED:
                return value
        try:
            value = compute()
        except Exception as exc:
            self._leave(key, flight)
            flight.fail(exc)
            raise
        except BaseException:
            self._leave(key, flight)
            flight.abandon()
            raise
        self._leave(key, flight)
        flight.succeed(value)
        return value

    # ---- many keys at once (batched loads) -----------------------------------

    def claim(self, keys: List[Any]) -> Tuple[List[Any], Dict[Any, Flight]]:
        """(the keys this thread now leads, {key: another thread's flight}),
        in one step.  Settle the led keys with finish() or fail()."""
        lead: List[Any] = []
        follow: Dict[Any, Flight] = {}
        me = _get_ident()
        with self._lock:
            for k in keys:
                flight = self._flights.get(k)
                if flight is None:
                    self._flights[k] = Flight()
                    lead.append(k)
                elif flight.owner == me:
                    for mine in lead:
                        del self._flights[mine]
                    raise self.reentered(k)
                else:
                    follow[k] = flight
        return lead, follow

    def finish(self, keys: List[Any], values: Dict[Any, Any], missing: Any = None) -> None:
        """Settle led keys with their values (`missing` for a key without one)."""
        with self._lock:
            flights = [(k, self._flights.pop(k)) for k in keys if k in self._flights]
        for k, flight in flights:
            flight.succeed(values.get(k, missing))

    def fail(self, keys: List[Any], exc: BaseException) -> None:
        """Settle led keys with an exception (abandon them for a non-Exception)."""
        with self._lock:
            flights = [self._flights.pop(k) for k in keys if k in self._flights]
        for flight in flights:
            if isinstance(exc, Exception):
                flight.fail(exc)
            else:
                flight.abandon()


class _AsyncFlight:
    __slots__ = ("task", "waiters")

    def __init__(self) -> None:
        self.task: Any = None
        self.waiters = 0


class AsyncSingleFlight:
    """Per event loop, awaiters of one key share one task."""

    __slots__ = ("_by_loop", "_what")

    def __init__(self, what: str = "single flight") -> None:
        self._by_loop: "weakref.WeakKeyDictionary[Any, Dict[Any, _AsyncFlight]]" = \
            weakref.WeakKeyDictionary()
        self._what = what

    async def run(self, key: Any, compute: Callable[[], Any]) -> Any:
        """The result of ``await compute()``, run once for every awaiter of
        `key` on this loop meanwhile."""
        import asyncio
        loop = asyncio.get_running_loop()
        flights = self._by_loop.get(loop)
        if flights is None:
            flights = self._by_loop.setdefault(loop, {})
        flight = flights.get(key)
        if flight is None:
            flight = flights[key] = _AsyncFlight()
            flight.task = loop.create_task(self._lead(flights, key, flight, compute))
        elif flight.task is asyncio.current_task():
            raise RuntimeError(f"{self._what}: the computation of key {key!r} awaited the "
                               f"same key (it would wait for itself)")
        task = flight.task
        flight.waiters += 1
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done() and flight.waiters == 1:
                task.cancel()           # the last awaiter gave up
            raise
        finally:
            flight.waiters -= 1

    @staticmethod
    async def _lead(flights: Dict[Any, _AsyncFlight], key: Any, flight: _AsyncFlight,
                    compute: Callable[[], Any]) -> Any:
        try:
            return await compute()
        finally:
            if flights.get(key) is flight:
                del flights[key]
