"""The background cleaner: one daemon thread for every cache with a
``cleanup_interval``, shared by both implementations.

It keeps a heap of (due time, cache) and sleeps until the earliest is due,
then calls that cache's ``expire()``, which pops expired entries off the
cache's own expiry heap: the work is proportional to what expired, never a
scan of the cache.  It holds caches only by weak reference, so a cache with a
TTL is still collected when the program drops it; with no cache scheduled the
thread blocks without a timeout and costs nothing.
"""
from __future__ import annotations

import heapq
import itertools
import os
import threading
import weakref
from time import monotonic
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional

from ._util import write_unraisable


class Schedule:
    """One cache's place in the cleaner; ``cancel()`` takes it out.  It
    also goes when the cache is garbage-collected."""

    __slots__ = ("ref", "interval", "active", "_cleaner", "__weakref__")

    def __init__(self, cache: Any, interval: float, cleaner: "_Cleaner") -> None:
        me = weakref.ref(self)

        def dropped(_: Any) -> None:
            schedule = me()
            if schedule is not None:
                schedule.cancel()

        self.ref = weakref.ref(cache, dropped)
        self.interval = interval
        self.active = True
        self._cleaner = cleaner

    def cancel(self) -> None:
        if self.active:
            self.active = False
            self._cleaner._drop(self)


class _Cleaner:
    def __init__(self) -> None:
        self._reset()
        self.sweeps = 0     # expire() calls made: tests read it
        self.wakeups = 0    # times the thread woke up: tests read it

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: List[Any] = []
        self._dropped: List[Schedule] = []   # cancelled while the lock was busy
        self._seq = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def schedule(self, cache: Any, interval: float) -> Schedule:
        entry = Schedule(cache, interval, self)
        with self._cond:
            self._apply_drops()
            heapq.heappush(self._heap, (monotonic() + interval, next(self._seq), entry))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="corecache-cleaner", daemon=True)
                self._thread.start()
            self._cond.notify()
        return entry

    def pending(self) -> int:
        """Caches scheduled now (cancelled or collected ones excluded)."""
        with self._cond:
            self._apply_drops()
            return sum(1 for item in self._heap if item[2].active)

    def scheduled(self) -> int:
        """Entries in the heap, cancelled ones not yet dropped included."""
        with self._cond:
            self._apply_drops()
            return len(self._heap)

    def _drop(self, entry: Schedule) -> None:
        """Take a cancelled entry out.  Never blocks: this runs from weakref
        callbacks, which the garbage collector may start while this very
        thread holds the lock; if the lock is busy, whoever holds it applies
        the drop before letting go of it."""
        self._dropped.append(entry)
        if self._cond.acquire(blocking=False):
            try:
                self._apply_drops()
            finally:
                self._cond.release()

    def _apply_drops(self) -> None:
        """(lock held)"""
        if not self._dropped:
            return
        dropped, self._dropped = self._dropped, []
        gone = {id(entry) for entry in dropped}
        heap = [item for item in self._heap if id(item[2]) not in gone]
        if len(heap) != len(self._heap):
            heapq.heapify(heap)
            self._heap = heap
            self._cond.notify()

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
                    self._apply_drops()
                    if not self._heap:
                        cond.wait()
                    else:
                        delay = self._heap[0][0] - monotonic()
                        if delay <= 0:
                            break
                        cond.wait(delay)
                    self.wakeups += 1
                due, _, entry = heapq.heappop(self._heap)
            cache = entry.ref() if entry.active else None
            if cache is None:
                continue
            self.sweeps += 1
            try:
                cache.expire()
            except BaseException as exc:  # a clock that raises, say
                write_unraisable(exc, cache)
            del cache
            with cond:
                if entry.active:
                    nxt = max(due + entry.interval, monotonic())
                    heapq.heappush(self._heap, (nxt, next(self._seq), entry))
                self._apply_drops()

    def _after_fork(self) -> None:
        # The thread did not survive the fork; keep the schedules and start
        # a new thread for them if there are any.
        heap = self._heap
        self._reset()
        self._heap = heap
        if heap:
            self._thread = threading.Thread(
                target=self._run, name="corecache-cleaner", daemon=True)
            self._thread.start()


cleaner = _Cleaner()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=cleaner._after_fork)
