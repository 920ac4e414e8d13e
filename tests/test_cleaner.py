"""The shared background cleaner: expired entries go within an interval,
its work is proportional to what expired, it keeps no cache alive, and it
does nothing when no cache needs it."""
from __future__ import annotations

import gc
import time
import weakref

import pytest

from corecache._lru_cleaner import cleaner
from conftest import FakeClock, wait_for


def test_expired_entries_are_removed_within_one_interval(impl, recorder):
    c = impl.LRUCache(100, cleanup_interval=0.05, eviction_callback=recorder)
    for k in range(10):
        c.set(k, k, ttl=0.05)
    c.set("stay", 1)
    # nothing reads the cache: only the cleaner can remove them
    assert wait_for(lambda: len(recorder.calls) == 10, timeout=2.0)
    assert c.stats().expirations == 10
    assert list(c) == ["stay"]


def test_cleaner_work_is_proportional_to_what_expired(impl):
    hashes = [0]

    class Key:
        def __init__(self, n):
            self.n = n

        def __hash__(self):
            hashes[0] += 1
            return self.n

        def __eq__(self, other):
            return isinstance(other, Key) and other.n == self.n

    clock = FakeClock()
    c = impl.LRUCache(20_000, clock=clock)
    for n in range(10_000):
        c.set(Key(n), n)                          # never expire
    for n in range(10_000, 10_010):
        c.set(Key(n), n, ttl=1)
    clock.tick(2)
    hashes[0] = 0
    assert c.expire() == 10
    # expiry pops a heap, it does not scan: no key but the expired ones is
    # even hashed (the pure twin hashes each of those once to remove it
    # from its index; the compiled core keeps the hash and hashes none)
    assert hashes[0] <= 10


def test_cleaner_holds_caches_weakly(impl):
    c = impl.LRUCache(10, default_ttl=60, cleanup_interval=0.01)
    c["a"] = 1
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None


def test_cancelled_and_collected_caches_leave_the_schedule_at_once(impl):
    before = cleaner.pending()
    a = impl.LRUCache(10, cleanup_interval=3600)
    b = impl.LRUCache(10, cleanup_interval=3600)
    assert cleaner.pending() == before + 2
    a.reconfigure(cleanup_interval=None)
    assert cleaner.pending() == before + 1
    del b
    gc.collect()
    assert cleaner.pending() == before


def test_cleaner_is_idle_without_caches():
    gc.collect()
    left = lambda: [(item[2].active, item[2].interval, item[2].ref()) for item in cleaner._heap]
    assert wait_for(lambda: cleaner.scheduled() == 0, timeout=5.0), left()
    # the last drop wakes the thread once more; let it go back to sleep
    def settled():
        before = cleaner.wakeups
        time.sleep(0.1)
        return cleaner.wakeups == before
    assert wait_for(settled, timeout=5.0)
    wakeups = cleaner.wakeups
    time.sleep(0.5)
    assert cleaner.wakeups == wakeups       # blocked without a timeout: no work at all


def test_one_thread_for_all_caches(impl):
    import threading
    caches = [impl.LRUCache(10, cleanup_interval=0.02) for _ in range(20)]
    names = [t.name for t in threading.enumerate() if t.name == "corecache-cleaner"]
    assert len(names) == 1
    for c in caches:
        c.set("x", 1, ttl=0.01)
    assert wait_for(lambda: all(len(c._raw()) == 0 for c in caches), timeout=3.0)


def test_cleanup_interval_property(impl):
    c = impl.LRUCache(10, cleanup_interval=5)
    assert c.cleanup_interval == 5.0
    assert impl.LRUCache(10).cleanup_interval is None
