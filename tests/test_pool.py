"""ObjectPool: lending and giving back, reset/validate, limits and timeouts,
idle timeout, shrink/clear/close, bad input, and reentrancy; both
implementations through the `impl` fixture."""
from __future__ import annotations

import gc
import math
import threading
import time

import pytest

import corecache
from corecache import PoolClosed, PoolExhausted, PoolStats

from conftest import FakeClock, wait_for


class Thing:
    """A pooled object with a serial number."""

    made = 0

    def __init__(self):
        Thing.made += 1
        self.n = Thing.made
        self.dirty = False

    def __repr__(self):
        return f"Thing({self.n})"


def invariant(pool):
    st = pool.stats()
    assert st.created - st.discarded == st.idle + st.in_use
    assert st.idle + st.in_use <= st.max_size
    assert pool._check()
    return st


def test_acquire_reuses_the_same_object(impl):
    pool = impl.ObjectPool(Thing, 4)
    with pool.acquire() as a:
        assert isinstance(a, Thing)
        assert pool.stats().in_use == 1
    with pool.acquire() as b:
        assert b is a
    st = invariant(pool)
    assert (st.created, st.reused, st.in_use, st.idle) == (1, 1, 0, 1)
    assert isinstance(st, PoolStats)


def test_get_and_put(impl):
    pool = impl.ObjectPool(Thing, 3)
    objs = [pool.get() for _ in range(3)]
    assert len({id(o) for o in objs}) == 3
    assert pool.stats().in_use == 3
    for o in objs:
        pool.put(o)
    st = invariant(pool)
    assert (st.created, st.in_use, st.idle) == (3, 0, 3)
    # LIFO: the object that came back last goes out first
    assert pool.get() is objs[-1]


def test_stats_is_a_frozen_snapshot(impl):
    pool = impl.ObjectPool(Thing, 2)
    st = pool.stats()
    with pytest.raises(AttributeError):
        st.created = 5
    pool.get()
    assert st.in_use == 0 and pool.stats().in_use == 1
    assert st.as_dict()["max_size"] == 2
    assert pool.stats().size == 1


def test_exception_in_the_body_returns_the_object(impl):
    reset = []
    pool = impl.ObjectPool(Thing, 2, reset=reset.append)
    with pytest.raises(KeyError):
        with pool.acquire() as a:
            raise KeyError("boom")
    assert reset == [a]
    st = invariant(pool)
    assert (st.idle, st.in_use, st.discarded) == (1, 0, 0)


def test_exception_in_the_body_and_failing_reset(impl, unraisable):
    def reset(obj):
        raise OSError("cannot reset")
    pool = impl.ObjectPool(Thing, 2, reset=reset)
    with pytest.raises(KeyError):
        with pool.acquire():
            raise KeyError("boom")
    st = invariant(pool)
    assert (st.idle, st.in_use, st.discarded) == (0, 0, 1)
    assert len(unraisable) == 1 and isinstance(unraisable[0].exc_value, OSError)


def test_reset_runs_on_every_return(impl):
    def reset(obj):
        obj.dirty = False
    pool = impl.ObjectPool(Thing, 2, reset=reset)
    with pool.acquire() as a:
        a.dirty = True
    assert a.dirty is False
    o = pool.get()
    o.dirty = True
    pool.put(o)
    assert o.dirty is False


def test_validate_false_discards_and_a_later_acquire_makes_a_new_one(impl):
    pool = impl.ObjectPool(Thing, 2, validate=lambda o: not o.dirty)
    with pool.acquire() as a:
        a.dirty = True
    st = invariant(pool)
    assert (st.created, st.discarded, st.idle) == (1, 1, 0)
    with pool.acquire() as b:
        assert b is not a
    assert invariant(pool).created == 2


def test_validate_runs_after_reset(impl, unraisable):
    order = []
    pool = impl.ObjectPool(Thing, 2, reset=lambda o: order.append("reset"),
                           validate=lambda o: order.append("validate") or True)
    with pool.acquire():
        pass
    assert order == ["reset", "validate"]

    def bad(obj):
        raise RuntimeError("validate failed")
    pool = impl.ObjectPool(Thing, 2, validate=bad)
    with pool.acquire():
        pass
    assert invariant(pool).discarded == 1
    assert [type(u.exc_value) for u in unraisable] == [RuntimeError]
    assert unraisable[0].object is bad


def test_base_exception_in_reset_discards_and_propagates(impl):
    def reset(obj):
        raise KeyboardInterrupt
    pool = impl.ObjectPool(Thing, 2, reset=reset)
    o = pool.get()
    with pytest.raises(KeyboardInterrupt):
        pool.put(o)
    st = invariant(pool)
    assert (st.in_use, st.idle, st.discarded) == (0, 0, 1)


def test_double_put_is_a_value_error_that_changes_nothing(impl):
    pool = impl.ObjectPool(Thing, 2)
    o = pool.get()
    pool.put(o)
    before = pool.stats()
    with pytest.raises(ValueError, match=r"^put: Thing\(\d+\) was already put back into this pool$"):
        pool.put(o)
    assert pool.stats() == before
    assert pool.get() is o


def test_foreign_put_is_a_value_error_that_changes_nothing(impl):
    pool = impl.ObjectPool(Thing, 2)
    pool.get()
    before = pool.stats()
    stranger = Thing()
    with pytest.raises(ValueError, match=r"^put: Thing\(\d+\) was not handed out by this pool$"):
        pool.put(stranger)
    with pytest.raises(ValueError, match="not handed out"):
        pool.put(None)
    # an object of another pool is foreign too
    other = impl.ObjectPool(Thing, 2)
    with pytest.raises(ValueError, match="not handed out"):
        pool.put(other.get())
    assert pool.stats() == before


def test_put_of_a_discarded_object_is_refused(impl):
    pool = impl.ObjectPool(Thing, 2, validate=lambda o: False)
    o = pool.get()
    pool.put(o)          # discarded
    with pytest.raises(ValueError, match="not handed out"):
        pool.put(o)


def test_a_huge_repr_is_shortened_in_messages(impl):
    class Loud:
        def __repr__(self):
            return "L" * 500
    pool = impl.ObjectPool(Loud, 1)
    with pytest.raises(ValueError) as e:
        pool.put(Loud())
    assert len(str(e.value)) < 150 and "..." in str(e.value)

    class Broken:
        def __repr__(self):
            raise RuntimeError("no repr")
    with pytest.raises(ValueError, match="<Broken object at 0x"):
        pool.put(Broken())


def test_exhausted_pool_does_not_wait_with_timeout_zero(impl):
    pool = impl.ObjectPool(Thing, 2)
    pool.get(), pool.get()
    with pytest.raises(PoolExhausted) as e:
        pool.get(timeout=0)
    assert str(e.value) == ("ObjectPool exhausted: all 2 objects are in use "
                            "(timeout=0: did not wait)")
    assert isinstance(e.value, TimeoutError) and isinstance(e.value, corecache.CoreCacheError)
    with pytest.raises(PoolExhausted):
        with pool.acquire(timeout=0):
            pass  # pragma: no cover
    st = invariant(pool)
    assert (st.timeouts, st.waits) == (2, 0)


def test_exhausted_pool_waits_up_to_the_timeout(impl):
    pool = impl.ObjectPool(Thing, 1)
    pool.get()
    with pytest.raises(PoolExhausted) as e:
        pool.get(timeout=0.02)
    assert str(e.value) == "ObjectPool exhausted: all 1 objects are in use; waited 0.02 s"
    st = invariant(pool)
    assert (st.timeouts, st.waits) == (1, 1)
    assert pool._waiting() == 0


def test_acquire_timeout_is_the_default(impl):
    pool = impl.ObjectPool(Thing, 1, acquire_timeout=0)
    assert pool.acquire_timeout == 0
    pool.get()
    with pytest.raises(PoolExhausted, match="did not wait"):
        pool.get()
    with pytest.raises(PoolExhausted, match="waited 0.01 s"):
        pool.get(timeout=0.01)


def test_infinite_timeout_waits_for_a_put(impl):
    pool = impl.ObjectPool(Thing, 1, acquire_timeout=0)
    o = pool.get()
    threading.Timer(0.05, pool.put, (o,)).start()
    assert pool.get(timeout=math.inf) is o
    assert invariant(pool).waits == 1


def test_min_size_prefills_and_prefill_tops_up(impl):
    pool = impl.ObjectPool(Thing, 5, min_size=3)
    st = invariant(pool)
    assert (st.created, st.idle) == (3, 3)
    assert pool.min_size == 3
    assert pool.prefill() == 0
    assert pool.prefill(4) == 1
    assert pool.prefill(100) == 1     # never beyond max_size
    assert invariant(pool).idle == 5


def test_idle_timeout_drops_idle_objects_beyond_min_size(impl):
    clock = FakeClock()
    pool = impl.ObjectPool(Thing, 4, min_size=1, idle_timeout=10, clock=clock)
    objs = [pool.get() for _ in range(4)]
    for o in objs:
        pool.put(o)
        clock.tick(1)
    assert invariant(pool).idle == 4
    clock.tick(6)      # objs[0] idle for 10 s, objs[1] for 9 s
    assert pool.expire() == 1
    clock.tick(100)
    with pool.acquire() as o:
        pass
    # everything expired, but min_size objects are kept
    st = invariant(pool)
    assert (st.idle, st.discarded) == (1, 3)
    assert o is objs[3]   # the newest survived


def test_idle_timeout_with_the_builtin_clock(impl):
    pool = impl.ObjectPool(Thing, 2, idle_timeout=1e-9)
    o = pool.get()
    pool.put(o)
    import time
    time.sleep(0.001)
    assert pool.expire() == 1
    assert impl.ObjectPool(Thing, 2).expire() == 0


def test_idle_timeout_inf_means_none(impl):
    pool = impl.ObjectPool(Thing, 2, idle_timeout=math.inf)
    assert pool.idle_timeout is None


def test_a_failing_clock_changes_nothing(impl):
    clock = FakeClock()
    pool = impl.ObjectPool(Thing, 2, idle_timeout=5, clock=clock)
    o = pool.get()
    clock.now = "later"
    with pytest.raises(TypeError, match="clock must return a number of seconds"):
        pool.put(o)
    clock.now = 2000.0
    pool.put(o)
    assert invariant(pool).idle == 1


def test_shrink_and_clear_drop_idle_objects_oldest_first(impl):
    pool = impl.ObjectPool(Thing, 5, min_size=2)
    objs = [pool.get() for _ in range(5)]
    for o in objs[:4]:
        pool.put(o)
    assert pool.shrink(2) == 2
    assert pool.get() is objs[3]
    pool.put(objs[3])
    assert pool.clear() == 2          # min_size does not hold clear back
    assert pool.shrink(3) == 0
    st = invariant(pool)
    assert (st.idle, st.in_use, st.discarded) == (0, 1, 4)
    with pytest.raises(ValueError, match=r"^n must be an int >= 0, got -1$"):
        pool.shrink(-1)
    with pytest.raises(TypeError, match="n must be an int"):
        pool.shrink(1.5)


def test_close(impl):
    pool = impl.ObjectPool(Thing, 3, min_size=2)
    o = pool.get()
    pool.close()
    assert pool.closed
    st = invariant(pool)
    assert (st.idle, st.in_use, st.discarded) == (0, 1, 1)
    with pytest.raises(PoolClosed, match="^ObjectPool is closed$"):
        pool.get()
    with pytest.raises(PoolClosed):
        with pool.acquire():
            pass  # pragma: no cover
    with pytest.raises(PoolClosed):
        pool.prefill(3)
    pool.put(o)           # dropped when it comes back
    st = invariant(pool)
    assert (st.idle, st.in_use, st.discarded) == (0, 0, 2)
    with pytest.raises(ValueError):
        pool.put(o)
    pool.close()          # idempotent
    assert isinstance(PoolClosed("x"), RuntimeError)


def test_pool_as_a_context_manager_closes_it(impl):
    with impl.ObjectPool(Thing, 2) as pool:
        with pool.acquire():
            pass
    assert pool.closed and pool.stats().idle == 0


def test_close_wakes_waiters(impl):
    pool = impl.ObjectPool(Thing, 1)
    pool.get()
    errors = []

    def wait():
        try:
            pool.get(timeout=30)
        except Exception as exc:
            errors.append(exc)
    threads = [threading.Thread(target=wait) for _ in range(3)]
    for t in threads:
        t.start()
    assert wait_for(lambda: pool.stats().waits == 3)
    pool.close()
    for t in threads:
        t.join(10)
    assert [type(e) for e in errors] == [PoolClosed] * 3


def test_repr_and_properties(impl):
    reset = lambda o: None  # noqa: E731
    clock = FakeClock()
    pool = impl.ObjectPool(Thing, 3, reset=reset, idle_timeout=4, acquire_timeout=2.5,
                           clock=clock)
    pool.get()
    assert repr(pool) == "ObjectPool(max_size=3, in_use=1, idle=0)"
    assert (pool.max_size, pool.min_size, pool.idle_timeout, pool.acquire_timeout) == (3, 0, 4, 2.5)
    assert pool.factory is Thing and pool.reset is reset and pool.validate is None
    assert pool.clock is clock
    pool.close()
    assert repr(pool) == "ObjectPool(max_size=3, in_use=1, idle=0, closed)"


def test_lease_misuse(impl):
    pool = impl.ObjectPool(Thing, 2)
    lease = pool.acquire()
    with lease as a:
        with pytest.raises(RuntimeError, match="already entered"):
            lease.__enter__()
    with pytest.raises(RuntimeError, match="without being entered"):
        lease.__exit__(None, None, None)
    with lease as b:      # a lease can be used again, one block at a time
        assert b is a
    # nothing was lent by acquire() itself
    pool.acquire()
    assert invariant(pool).in_use == 0


def test_put_inside_the_block_makes_the_exit_a_double_put(impl):
    pool = impl.ObjectPool(Thing, 2)
    with pytest.raises(ValueError, match="already put back"):
        with pool.acquire() as o:
            pool.put(o)
    assert invariant(pool).idle == 1


# ---- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(factory=3), TypeError, "factory must be callable, got 3"),
    (dict(max_size=0), ValueError, "max_size must be a positive int, got 0"),
    (dict(max_size=-2), ValueError, "max_size must be a positive int, got -2"),
    (dict(max_size=2.5), TypeError, "max_size must be a positive int, got 2.5"),
    (dict(max_size=True), TypeError, "max_size must be a positive int, got True"),
    (dict(min_size=-1), ValueError, "min_size must be an int >= 0, got -1"),
    (dict(min_size=5, max_size=4), ValueError, r"min_size must be <= max_size \(4\), got 5"),
    (dict(reset=1), TypeError, "reset must be callable or None, got 1"),
    (dict(validate="x"), TypeError, "validate must be callable or None, got 'x'"),
    (dict(idle_timeout=-1), ValueError,
     "idle_timeout must be a positive number of seconds or None, got -1"),
    (dict(idle_timeout=0), ValueError,
     "idle_timeout must be a positive number of seconds or None, got 0"),
    (dict(idle_timeout="1"), TypeError,
     "idle_timeout must be a positive number of seconds or None, got '1'"),
    (dict(acquire_timeout=-0.5), ValueError,
     r"acquire_timeout must be a number of seconds >= 0 or None, got -0.5"),
    (dict(acquire_timeout=math.nan), ValueError, "acquire_timeout must be a number"),
    (dict(acquire_timeout="1"), TypeError, "acquire_timeout must be a number"),
    (dict(clock=5), TypeError, "clock must be callable or None, got 5"),
])
def test_bad_arguments(impl, kwargs, exc, message):
    args = dict(factory=Thing, max_size=4)
    args.update(kwargs)
    factory = args.pop("factory")
    with pytest.raises(exc, match=f"^{message}"):
        impl.ObjectPool(factory, **args)


def test_bad_timeouts_per_call(impl):
    pool = impl.ObjectPool(Thing, 1)
    for call in (pool.get, pool.acquire):
        with pytest.raises(ValueError, match=r"^timeout must be a number of seconds >= 0 or None, got -1$"):
            call(timeout=-1)
        with pytest.raises(TypeError, match="^timeout must be a number"):
            call(timeout="soon")
    assert invariant(pool).created == 0


def test_a_failing_factory_propagates_and_keeps_counts_right(impl):
    calls = []

    def factory():
        calls.append(1)
        if len(calls) == 2:
            raise OSError("no connection")
        return Thing()
    pool = impl.ObjectPool(factory, 2)
    a = pool.get()
    with pytest.raises(OSError, match="no connection"):
        pool.get()
    st = invariant(pool)
    assert (st.created, st.in_use, st.idle) == (1, 1, 0)
    b = pool.get()         # the slot was given back
    assert b is not a
    assert invariant(pool).created == 2

    def broken():
        raise OSError("down")
    with pytest.raises(OSError, match="down"):
        impl.ObjectPool(broken, 2, min_size=1)


def test_factory_returning_an_object_the_pool_holds(impl):
    shared = Thing()
    pool = impl.ObjectPool(lambda: shared, 3)
    assert pool.get() is shared
    with pytest.raises(ValueError, match=r"^factory returned Thing\(\d+\), an object this pool already holds"):
        pool.get()
    st = invariant(pool)
    assert (st.created, st.in_use) == (1, 1)


def test_pickling_is_refused(impl):
    import copy
    import pickle
    import weakref
    pool = impl.ObjectPool(Thing, 2)
    with pytest.raises(TypeError, match="^ObjectPool objects cannot be pickled"):
        pickle.dumps(pool)
    with pytest.raises(TypeError, match="^ObjectPool objects cannot be pickled"):
        copy.copy(pool)
    assert weakref.ref(pool)() is pool


def test_init_twice_is_refused(impl):
    pool = impl.ObjectPool(Thing, 2)
    with pytest.raises(RuntimeError, match="called twice"):
        pool.__init__(Thing, 3)


# ---- reentrancy ---------------------------------------------------------------

def test_factory_reset_and_validate_may_use_the_pool(impl):
    pool = None

    def factory():
        if pool is not None and pool.stats().created == 0:
            pass
        return Thing()

    def reset(obj):
        # borrow another object while this one is on its way back
        if pool.stats().idle:
            with pool.acquire():
                pass

    def validate(obj):
        return pool.stats().in_use >= 0
    pool = impl.ObjectPool(factory, 3, reset=reset, validate=validate)
    a, b = pool.get(), pool.get()
    pool.put(a)
    pool.put(b)
    st = invariant(pool)
    assert (st.idle, st.in_use, st.discarded) == (2, 0, 0)


def test_del_of_a_dropped_object_may_use_the_pool(impl):
    seen = []

    class Sticky(Thing):
        def __del__(self):
            seen.append(pool.stats())
            if not pool.closed:
                with pool.acquire():
                    pass

    pool = impl.ObjectPool(Sticky, 3, validate=lambda o: o.n % 2 == 0)
    objs = [pool.get() for _ in range(3)]
    for o in objs:
        pool.put(o)
    del o, objs
    gc.collect()
    pool.clear()
    pool.close()
    gc.collect()
    assert seen and all(s.created - s.discarded == s.idle + s.in_use for s in seen)


def test_gc_collects_a_cycle_through_the_pool(impl):
    import weakref

    class Holder:
        pass

    pool = impl.ObjectPool(Holder, 2)
    h = pool.get()
    h.pool = pool
    pool.put(h)
    ref = weakref.ref(h)
    del h, pool
    gc.collect()
    assert ref() is None


# ---- threads ----------------------------------------------------------------

def test_many_threads_small_pool_no_lost_wakeups(impl):
    import sys
    pool = impl.ObjectPool(Thing, 3)
    n_threads, rounds = 12, 300
    busy = [0]
    peak = [0]
    guard = threading.Lock()
    errors = []

    def worker():
        try:
            for _ in range(rounds):
                with pool.acquire() as o:
                    with guard:
                        busy[0] += 1
                        peak[0] = max(peak[0], busy[0])
                    assert not o.dirty
                    o.dirty = True
                    o.dirty = False
                    with guard:
                        busy[0] -= 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=worker) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert peak[0] <= 3
    st = invariant(pool)
    assert st.created <= 3 and st.in_use == 0 and st.timeouts == 0
    assert st.created + st.reused == n_threads * rounds


def test_waiters_are_served_in_arrival_order(impl):
    pool = impl.ObjectPool(Thing, 1)
    held = pool.get()
    order = []

    def waiter(i):
        with pool.acquire(timeout=30):
            order.append(i)

    threads = []
    for i in range(6):
        t = threading.Thread(target=waiter, args=(i,))
        t.start()
        threads.append(t)
        assert wait_for(lambda: pool.stats().waits == i + 1)
    pool.put(held)
    for t in threads:
        t.join(30)
    assert order == list(range(6))
    st = invariant(pool)
    assert (st.created, st.waits, st.timeouts) == (1, 6, 0)


def test_timeouts_under_contention(impl):
    pool = impl.ObjectPool(Thing, 2)
    held = [pool.get(), pool.get()]
    results = []

    def waiter(timeout):
        try:
            with pool.acquire(timeout=timeout):
                results.append("got")
        except PoolExhausted:
            results.append("timeout")

    quick = [threading.Thread(target=waiter, args=(0.01,)) for _ in range(4)]
    patient = [threading.Thread(target=waiter, args=(30,)) for _ in range(2)]
    for t in quick:
        t.start()
    for t in quick:
        t.join(30)
    for t in patient:
        t.start()
    assert wait_for(lambda: pool.stats().waits == 6)
    for o in held:
        pool.put(o)
    for t in patient:
        t.join(30)
    assert sorted(results) == ["got"] * 2 + ["timeout"] * 4
    st = invariant(pool)
    assert (st.timeouts, st.in_use, st.idle) == (4, 0, 2)


def test_a_discarded_object_lets_a_waiter_create_one(impl):
    pool = impl.ObjectPool(Thing, 1, validate=lambda o: False)
    held = pool.get()
    got = []
    t = threading.Thread(target=lambda: got.append(pool.get(timeout=30)))
    t.start()
    assert wait_for(lambda: pool.stats().waits == 1)
    pool.put(held)      # discarded: the waiter gets a permit and creates
    t.join(30)
    assert got and got[0] is not held
    st = invariant(pool)
    assert (st.created, st.discarded, st.in_use) == (2, 1, 1)


def test_a_failing_factory_hands_its_slot_to_the_next_waiter(impl):
    fail = threading.Event()

    def factory():
        if fail.is_set():
            fail.clear()
            raise OSError("flaky")
        return Thing()
    pool = impl.ObjectPool(factory, 1, validate=lambda o: False)
    held = pool.get()
    outcome = []

    def waiter():
        try:
            outcome.append(pool.get(timeout=30))
        except OSError as exc:
            outcome.append(exc)
    threads = []
    for i in range(2):
        t = threading.Thread(target=waiter)
        t.start()
        threads.append(t)
        assert wait_for(lambda: pool.stats().waits == i + 1)
    fail.set()
    pool.put(held)   # discarded; waiter 1 creates and fails; waiter 2 gets the slot
    for t in threads:
        t.join(30)
    assert isinstance(outcome[0], OSError) and isinstance(outcome[1], Thing)
    invariant(pool)


def test_an_interrupted_wait_leaves_the_pool_consistent(impl):
    import signal
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("needs the main thread")
    pool = impl.ObjectPool(Thing, 1)
    held = pool.get()
    main = threading.main_thread().ident
    interrupted = threading.Event()

    def once(signum, frame):
        # our own handler: SIGINT may be ignored in this process (a
        # background job), and a second signal must not interrupt the test
        if not interrupted.is_set():
            interrupted.set()
            raise KeyboardInterrupt

    def interrupt():
        # a real signal, so that the blocked lock.acquire returns (EINTR);
        # sent until it lands, since one that arrives just before the wait
        # blocks is only seen when the wait ends
        while pool._waiting() == 0 and not interrupted.is_set():
            time.sleep(0.001)
        while not interrupted.wait(0.05):
            signal.pthread_kill(main, signal.SIGINT)

    old = signal.signal(signal.SIGINT, once)
    sender = threading.Thread(target=interrupt)
    try:
        sender.start()
        with pytest.raises(KeyboardInterrupt):
            pool.get(timeout=30)
    finally:
        interrupted.set()
        sender.join()
        signal.signal(signal.SIGINT, old)
    assert pool._waiting() == 0
    pool.put(held)
    st = invariant(pool)
    assert (st.idle, st.in_use, st.waits) == (1, 0, 1)


def test_stress_discards_failures_and_timeouts_lose_no_wakeup(impl):
    """Objects discarded on return (permits to create), a flaky factory and
    short timeouts, all at once: every thread finishes, nothing is lost."""
    import random
    import sys

    lock = threading.Lock()
    rnd = random.Random(5)

    def factory():
        with lock:
            fail = rnd.random() < 0.1
        if fail:
            raise OSError("flaky factory")
        return Thing()

    def validate(obj):
        with lock:
            return rnd.random() < 0.7
    pool = impl.ObjectPool(factory, 2, validate=validate)
    outcomes = {"ok": 0, "timeout": 0, "factory": 0}
    errors = []

    def worker(seed):
        r = random.Random(seed)
        try:
            for _ in range(150):
                try:
                    with pool.acquire(timeout=r.choice([0, 0.001, 0.05, None])):
                        key = "ok"
                except PoolExhausted:
                    key = "timeout"
                except OSError:
                    key = "factory"
                with lock:
                    outcomes[key] += 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "a thread hangs: a lost wake-up"
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert sum(outcomes.values()) == 8 * 150 and outcomes["ok"] > 0
    st = invariant(pool)
    assert st.in_use == 0 and pool._waiting() == 0
    assert st.timeouts == outcomes["timeout"]
