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

Threads: what guards what is written down in corecache/_locking.h.

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
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple

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

    :param what: names the computation in the error it gets when it asks for
        its own key (``"get_or_set's factory"``, ``"the loader"``, ...).
    """

    __slots__ = ("_lock", "_flights", "_what")

    def __init__(self, what: str = "single flight") -> None:
        self._lock = threading.RLock()
        self._flights: Dict[Any, Flight] = {}
        self._what = what

    def __len__(self) -> int:
        return len(self._flights)

    def reentered(self, key: Any) -> RuntimeError:
        return RuntimeError(f"{self._what} of key {key!r} asked for the same key "
                            f"(it would wait for itself)")

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

    def run(self, key: Any, compute: Callable[..., Any], *args: Any,
            follower: Optional[Callable[[bool, Any], None]] = None) -> Any:
        """``compute(*args)`` once for every thread asking for `key`
        meanwhile.  A thread that shares another's computation calls
        ``follower(True, result)``, or ``follower(False, None)`` before
        raising its exception."""
        while True:
            flight, leader = self.join(key)
            if leader:
                break
            if flight.owner == _get_ident():
                if follower is not None:
                    follower(False, None)
                raise self.reentered(key)
            try:
                value = flight.wait()
            except BaseException:
                if follower is not None:
                    follower(False, None)
                raise
            if value is not ABANDONED:
                if follower is not None:
                    follower(True, value)
                return value
        try:
            value = compute(*args)
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

    def run_many(self, keys: List[Any], compute_many: Callable[[List[Any]], Dict[Any, Any]]
                 ) -> Tuple[Dict[Any, Any], Set[Any]]:
        """({key: result} of every key, the keys another thread computed):
        ``compute_many(the keys no other thread computes)`` -> {key: result}
        (a key left out gets None), once.  The first exception, of this
        computation or of one followed, is raised; a followed key whose
        leader gave up is computed here, on its own."""
        lead, follow = self.claim(keys)
        results: Dict[Any, Any] = {}
        if lead:
            try:
                results = compute_many(lead)
            except BaseException as exc:
                self.fail(lead, exc)
                raise
            self.finish(lead, results)
        followed: Set[Any] = set()
        for k, flight in follow.items():
            value = flight.wait()
            if value is ABANDONED:
                value = self.run(k, lambda k=k: compute_many([k]).get(k))
            else:
                followed.add(k)
            results[k] = value
        return results, followed

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


class _Shared:
    """One computation's task and the futures of its awaiters.

    Each awaiter waits on a future of its own, which the task's one done
    callback settles like the task (result, exception or cancellation).  An
    awaiter that is cancelled cancels only its own future (where
    ``asyncio.shield`` would cost an outer future and two callbacks per
    awaiter); the task is cancelled when its last awaiter leaves."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: Any) -> None:
        self.task = task
        self.waiters: Dict[Any, None] = {}    # an ordered set of futures
        task.add_done_callback(self._settle)

    def _settle(self, task: Any) -> None:
        waiters, self.waiters = self.waiters, {}
        if task.cancelled():
            for f in waiters:
                f.cancel()
            return
        exc = task.exception()
        if exc is not None:
            for f in waiters:
                if not f.done():
                    f.set_exception(exc)
        else:
            result = task.result()
            for f in waiters:
                if not f.done():
                    f.set_result(result)

    def leave(self, future: Any, cancelled: bool) -> None:
        """`future`'s awaiter stops waiting; if it was cancelled and no
        awaiter is left, the computation is cancelled too."""
        if self.waiters.pop(future, 0) is not None:
            # settled already: its exception counts as seen (the awaiter
            # was cancelled meanwhile, or another computation failed first)
            if future.done() and not future.cancelled():
                future.exception()
            return
        if cancelled and not self.waiters and not self.task.done():
            self.task.cancel()


class AsyncSingleFlight:
    """Per event loop, awaiters of one key share one task.  An awaiter that
    is cancelled stops waiting without cancelling the computation the others
    wait for; it is cancelled only when no awaiter is left.  A batch
    (``run_many``) computes the keys nobody computes yet in one task and
    waits for the others'.  Coalescing happens before the computation does
    any I/O: a thousand coroutines missing one key make one round trip.

    :param what: as for :class:`SingleFlight`.
    """

    __slots__ = ("_by_loop", "_what")

    def __init__(self, what: str = "single flight") -> None:
        # loop -> {key: (the shared computation, True if its result is a
        # batch's {key: result})}
        self._by_loop: Dict[Any, Dict[Any, Tuple[_Shared, bool]]] = {}
        self._what = what

    def reentered(self, key: Any) -> RuntimeError:
        return RuntimeError(f"{self._what} of key {key!r} asked for the same key "
                            f"(it would wait for itself)")

    def _flights(self, loop: Any) -> Dict[Any, Tuple[_Shared, bool]]:
        flights = self._by_loop.get(loop)
        if flights is None:
            # the dict of loops is shared by every thread's loop: a snapshot
            # of it is walked, and a loop two threads find closed is popped
            # by whichever comes first (_locking.h)
            for other in list(self._by_loop):
                if other.is_closed():
                    self._by_loop.pop(other, None)
            flights = self._by_loop[loop] = {}
        return flights

    async def run(self, key: Any, compute: Callable[..., Awaitable[Any]], *args: Any,
                  follower: Optional[Callable[[bool, Any], None]] = None) -> Any:
        """The result of ``await compute(*args)``, run once for every awaiter
        of `key` on this loop meanwhile.  An awaiter that shares another's
        computation calls ``follower(True, result)``, or ``follower(False,
        None)`` before raising its exception."""
        import asyncio
        loop = asyncio.get_running_loop()
        flights = self._flights(loop)
        entry = flights.get(key)
        if entry is None:
            shared = _Shared(loop.create_task(self._lead(flights, [key], compute, args)))
            entry = flights[key] = (shared, False)
            follower = None
        else:
            shared = entry[0]
            if shared.task is asyncio.current_task():
                if follower is not None:
                    follower(False, None)
                raise self.reentered(key)
        future = loop.create_future()
        shared.waiters[future] = None
        try:
            result = await future
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                shared.leave(future, True)
            if follower is not None:
                follower(False, None)
            raise
        if entry[1]:
            result = result[key]
        if follower is not None:
            follower(True, result)
        return result

    async def run_many(self, keys: List[Any],
                       compute_many: Callable[[List[Any]], Awaitable[Dict[Any, Any]]]
                       ) -> Tuple[Dict[Any, Any], Set[Any]]:
        """({key: result} of every key, the keys another awaiter's
        computation answered): ``await compute_many(the keys nobody computes
        yet)`` -> {key: result} (a key left out gets None), in one task.  The
        first exception, of this computation or one followed, is raised."""
        import asyncio
        loop = asyncio.get_running_loop()
        flights = self._flights(loop)
        me = asyncio.current_task()
        lead = [k for k in keys if k not in flights]
        follow = {k: flights[k] for k in keys if k in flights}
        for k, (shared, _) in follow.items():
            if shared.task is me:
                raise self.reentered(k)
        shareds: List[_Shared] = []
        if lead:
            mine = _Shared(loop.create_task(self._lead(flights, lead, compute_many, (lead,))))
            for k in lead:
                flights[k] = (mine, True)
            shareds.append(mine)
        for shared, _ in follow.values():
            if shared not in shareds:
                shareds.append(shared)
        got = await self._wait(shareds)
        by_task = {id(s): r for s, r in zip(shareds, got)}
        results: Dict[Any, Any] = {}
        if lead:
            results.update({k: by_task[id(shareds[0])].get(k) for k in lead})
        for k, (shared, batch) in follow.items():
            r = by_task[id(shared)]
            results[k] = r.get(k) if batch else r
        return results, set(follow)

    @staticmethod
    async def _wait(shareds: List[_Shared]) -> List[Any]:
        import asyncio
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in shareds]
        for s, f in zip(shareds, futures):
            s.waiters[f] = None
        try:
            return list(await asyncio.gather(*futures))
        except BaseException as exc:
            # the first failure ends the wait: this awaiter leaves the
            # computations it still waits for (cancelling those it was the
            # last awaiter of, when it was itself cancelled)
            cancelled = isinstance(exc, asyncio.CancelledError)
            for s, f in zip(shareds, futures):
                s.leave(f, cancelled)
            raise

    @staticmethod
    async def _lead(flights: Dict[Any, Tuple[_Shared, bool]], keys: List[Any],
                    compute: Callable[..., Awaitable[Any]], args: Tuple[Any, ...]) -> Any:
        import asyncio
        me = asyncio.current_task()
        try:
            return await compute(*args)
        finally:
            for k in keys:
                entry = flights.get(k)
                if entry is not None and entry[0].task is me:
                    del flights[k]
