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
from typing import Any, List, Optional

from ._util import write_unraisable


class Schedule:
    """One cache's place in the cleaner; ``cancel()`` takes it out."""

    __slots__ = ("ref", "interval", "active")

    def __init__(self, cache: Any, interval: float) -> None:
        self.ref = weakref.ref(cache)
        self.interval = interval
        self.active = True

    def cancel(self) -> None:
        self.active = False


class _Cleaner:
    def __init__(self) -> None:
        self._reset()
        self.sweeps = 0     # expire() calls made: tests read it
        self.wakeups = 0    # times the thread woke up: tests read it

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: List[Any] = []
        self._seq = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def schedule(self, cache: Any, interval: float) -> Schedule:
        entry = Schedule(cache, interval)
        with self._cond:
            heapq.heappush(self._heap, (monotonic() + interval, next(self._seq), entry))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="corecache-cleaner", daemon=True)
                self._thread.start()
            self._cond.notify()
        return entry

    def pending(self) -> int:
        """Schedules still in the heap (live or not yet dropped)."""
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
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
