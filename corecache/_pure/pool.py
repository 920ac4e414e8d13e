"""ObjectPool, pure Python: the twin of corecache/_pool.pyx, with the same
behaviour, messages and statistics, used where the compiled core is not.

Layout: a deque of (object, idle since) for the idle objects (newest at the
right, where they are lent again; oldest at the left, where the idle
timeout, shrink() and clear() drop them), and a dict from id(object) to
[object, state] for every object the pool owns, which holds the pool's
reference and so keeps every id unique while the object is owned.

Blocking: a FIFO deque of _Waiter, each with its own locked lock; whoever
frees something serves the first waiter directly (an object, a permit to
create one, or the news that the pool closed), setting its state before
releasing its lock.  See _pool.pyx for the whole argument.

Locking: one RLock per pool (as functools' pure lru_cache), never held
while user code runs (factory, reset, validate, the clock); dropped objects
are released after it is let go.
"""
from __future__ import annotations

import threading
from collections import deque
from time import monotonic
from types import GenericAlias
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from .._pool_common import (FOREVER, check_pool_args, closed, duplicate, exhausted, not_lent,
                            pool_repr, resolve_timeout, wait_seconds)
from .._util import write_unraisable
from .._checks import check_count, read_clock as _user_time
from ..stats import PoolStats

__all__ = ["ObjectPool"]

MAX_ENTRIES = (1 << 32) - 2
INF = float("inf")
_IDLE, _LENT, _RETURNING = 0, 1, 2
_WAITING, _HANDED, _PERMIT, _CLOSED = 0, 1, 2, 3
_allocate_lock = threading.Lock


class _Waiter:
    __slots__ = ("lock", "obj", "state")

    def __init__(self) -> None:
        self.lock = _allocate_lock()
        self.lock.acquire()
        self.obj: Any = None
        self.state = _WAITING


class _Lease:
    """The context manager that ``ObjectPool.acquire()`` returns: ``__enter__``
    takes an object from the pool, ``__exit__`` puts it back (also when the
    body raised; the exception propagates)."""

    __slots__ = ("pool", "obj", "timeout", "held")

    def __init__(self, pool: "ObjectPool", timeout: float) -> None:
        self.pool = pool
        self.timeout = timeout
        self.obj: Any = None
        self.held = False

    def __enter__(self) -> Any:
        try:
            pool = self.pool
        except AttributeError:
            raise TypeError("this acquire() context was not made by ObjectPool.acquire()") from None
        if self.held:
            raise RuntimeError("this acquire() context is already entered")
        obj = pool._get(self.timeout)
        self.obj = obj
        self.held = True
        return obj

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if not getattr(self, "held", False):
            raise RuntimeError("acquire() context exited without being entered")
        obj = self.obj
        self.obj = None
        self.held = False
        self.pool._put(obj)
        return False


class ObjectPool:
    """A thread-safe pool of reusable objects (parsers, buffers, clients).

    ``with pool.acquire() as obj:`` lends an object for a block;
    ``obj = pool.get()`` / ``pool.put(obj)`` lend one for longer.  At most
    ``max_size`` objects exist at once; when all are in use an acquire waits
    (first come, first served) up to its timeout, then raises
    :class:`~corecache.PoolExhausted`.

    :param factory: zero-argument callable making a new object.
    :param max_size: the most objects that exist at once, idle plus in use.
    :param min_size: objects made up front (``prefill``) and kept when idle.
    :param reset: ``reset(obj)``, run on every object that comes back; if it
        raises, the object is discarded (the error goes to
        ``sys.unraisablehook``).
    :param validate: ``validate(obj) -> bool``, run after ``reset`` on every
        object that comes back; a false result or an error discards it.
    :param idle_timeout: seconds after which an idle object beyond
        ``min_size`` is dropped; None keeps idle objects.
    :param acquire_timeout: default seconds an acquire waits; None waits
        forever, 0 does not wait.
    :param clock: zero-argument callable of monotonic seconds (tests).
    """

    __class_getitem__ = classmethod(GenericAlias)   # ObjectPool[Parser] at run time

    def __new__(cls, *args: Any, **kwargs: Any) -> "ObjectPool":
        # an empty pool with no factory, as the compiled __cinit__ leaves it:
        # a subclass whose __init__ skips ours gets a clear error on use
        self = super().__new__(cls)
        self._lock = threading.RLock()
        self._idle: Deque[Tuple[Any, float]] = deque()
        self._owned: Dict[int, List[Any]] = {}     # id -> [obj, state]
        self._waiters: Deque[_Waiter] = deque()
        self._creating = 0
        self._created = self._reused = self._discarded = self._waits = self._timeouts = 0
        self._closed = False
        self._factory: Any = None
        self._max_size_given = None
        self._max = self._min = 0
        self._reset = self._validate = self._clock = None
        self._checks = self._timed = False
        self._idle_timeout_given = self._acquire_timeout_given = None
        self._idle_timeout = INF
        self._timeout = 0.0
        return self

    def __init__(self, factory: Callable[[], Any], max_size: int = 10, *, min_size: int = 0,
                 reset: Optional[Callable[[Any], Any]] = None,
                 validate: Optional[Callable[[Any], Any]] = None,
                 idle_timeout: Optional[float] = None, acquire_timeout: Optional[float] = None,
                 clock: Optional[Callable[[], float]] = None) -> None:
        max_size, min_size, idle_timeout, acquire_timeout = check_pool_args(
            factory, max_size, min_size, reset, validate, idle_timeout, acquire_timeout, clock)
        if self._factory is not None:
            raise RuntimeError("ObjectPool.__init__ called twice")
        self._factory = factory
        self._max_size_given = max_size
        self._max = min(max_size, MAX_ENTRIES)
        self._min = min(min_size, self._max)
        self._reset = reset
        self._validate = validate
        self._checks = reset is not None or validate is not None
        self._idle_timeout_given = idle_timeout
        self._timed = idle_timeout is not None
        self._idle_timeout = idle_timeout if idle_timeout is not None else INF
        self._acquire_timeout_given = acquire_timeout
        self._timeout = wait_seconds(acquire_timeout)
        self._clock = clock
        if min_size:
            self.prefill()

    def _now(self) -> float:
        """reentrancy: a user clock is Python code; read with no lock held."""
        if not self._timed:
            return 0.0
        if self._clock is None:
            return monotonic()
        return _user_time(self._clock)

    # ---- lending ---------------------------------------------------------

    def acquire(self, timeout: Optional[float] = None) -> _Lease:
        """A context manager lending one object for a ``with`` block:
        ``with pool.acquire() as obj: ...``.  The object goes back (reset, or
        discarded if that fails) when the block ends, also by an exception,
        which then propagates.

        :param timeout: seconds to wait when every object is in use; None
            for the pool's ``acquire_timeout``, ``math.inf`` forever, 0 not
            at all.  Then :class:`~corecache.PoolExhausted` is raised.
        """
        return _Lease(self, self._timeout if timeout is None else resolve_timeout(timeout))

    def get(self, timeout: Optional[float] = None) -> Any:
        """Take an object out of the pool, to give back with ``put(obj)``.

        :param timeout: as for :meth:`acquire`.
        """
        return self._get(self._timeout if timeout is None else resolve_timeout(timeout))

    def put(self, obj: Any) -> None:
        """Give back an object that ``get`` handed out.  ``reset`` (and
        ``validate``) run first; an object that fails them is discarded.
        Putting back an object twice, or one this pool did not hand out, is
        a ValueError and changes nothing."""
        self._put(obj)

    def _lend_back(self) -> Any:
        """The newest idle object, now lent (call with the lock; idle)."""
        obj = self._idle.pop()[0]
        self._owned[id(obj)][1] = _LENT
        self._reused += 1
        return obj

    def _get(self, timeout: float) -> Any:
        if self._timed:
            self._drop_idle(-1, True, self._now())
        with self._lock:
            if self._idle and not self._closed:
                return self._lend_back()
        return self._get_slow(timeout)

    def _get_slow(self, timeout: float) -> Any:
        if self._factory is None:
            raise TypeError(f"{type(self).__name__} was not initialized "
                            f"(a subclass's __init__ must call super().__init__)")
        w: Optional[_Waiter] = _Waiter()
        with self._lock:
            if self._closed:
                raise closed()
            if self._idle:
                return self._lend_back()
            if len(self._owned) + self._creating < self._max:
                self._creating += 1
                w = None
            elif timeout == 0:
                self._timeouts += 1
                raise exhausted(self._max_size_given, 0.0)
            else:
                self._waiters.append(w)  # type: ignore[arg-type]
                self._waits += 1
        if w is None:
            return self._create(False)
        return self._wait(w, timeout)

    def _wait(self, w: _Waiter, timeout: float) -> Any:
        """reentrancy: sleeps on the waiter's own lock with no pool lock
        held; whoever serves the waiter sets its state first, and the state
        is read under the pool's lock after waking."""
        try:
            w.lock.acquire(True, timeout if timeout > 0 else -1)
        except BaseException:
            self._abandon(w)
            raise
        with self._lock:
            state = w.state
            if state == _WAITING:
                self._waiters.remove(w)
                self._timeouts += 1
        if state == _HANDED:
            obj = w.obj
            w.obj = None
            return obj
        if state == _PERMIT:
            return self._create(False)
        if state == _CLOSED:
            raise closed()
        raise exhausted(self._max_size_given, timeout)

    def _abandon(self, w: _Waiter) -> None:
        """An exception (KeyboardInterrupt) interrupted a wait: give back
        whatever was handed to the waiter meanwhile."""
        dropped = None
        try:
            now = self._now()
        except Exception:
            now = 0.0   # then it counts as idle for a long time already
        with self._lock:
            if w.state == _WAITING:
                self._waiters.remove(w)
            elif w.state == _HANDED:
                dropped = self._release_locked(w.obj, True, now)
            elif w.state == _PERMIT:
                self._creating -= 1
                self._grant_locked()
        w.obj = None
        del dropped

    def _create(self, idle: bool) -> Any:
        """Call the factory for a reserved slot (self._creating).  The new
        object is lent, or with `idle` given back at once (prefill).

        reentrancy: the factory is user code, run with no lock held; the
        reserved slot keeps the object count within max_size meanwhile, and
        is handed on to the next waiter if the factory fails."""
        bad = shut = False
        dropped = None
        now = 0.0
        try:
            if idle:
                now = self._now()
            obj = self._factory()
        except BaseException:
            with self._lock:
                self._creating -= 1
                self._grant_locked()
            raise
        with self._lock:
            self._creating -= 1
            if self._closed:
                self._created += 1
                self._discarded += 1
                shut = True
            elif id(obj) in self._owned:
                self._grant_locked()
                bad = True
            else:
                self._owned[id(obj)] = [obj, _LENT]
                self._created += 1
                if idle:
                    dropped = self._release_locked(obj, True, now)
        if shut:
            raise closed()
        if bad:
            raise duplicate(obj)
        del dropped
        return obj

    # ---- giving back -----------------------------------------------------

    def _put(self, obj: Any) -> None:
        dropped = None
        ok = True
        # the time it goes idle, read first: if a user clock fails, nothing changed
        now = self._now()
        with self._lock:
            entry = self._owned.get(id(obj))
            if entry is None or entry[0] is not obj or entry[1] != _LENT:
                ok = False
            elif self._checks:
                entry[1] = _RETURNING
            else:
                dropped = self._release_locked(obj, True, now)
        if not ok:
            raise not_lent(obj, entry is None or entry[0] is not obj)
        if self._checks:
            try:
                ok = self._passes(obj)
            except BaseException:
                with self._lock:
                    dropped = self._release_locked(obj, False, 0.0)
                del dropped
                raise
            with self._lock:
                dropped = self._release_locked(obj, ok, now)
        del dropped

    def _passes(self, obj: Any) -> bool:
        """reentrancy: reset and validate are user code, run with no lock
        held while the object is marked as on its way back (so a second put
        of it is refused meanwhile).  Their Exceptions are reported, not
        raised: the object is discarded."""
        fn = self._reset
        try:
            if fn is not None:
                fn(obj)
            fn = self._validate
            if fn is not None and not fn(obj):
                return False
        except Exception as exc:
            write_unraisable(exc, fn)
            return False
        return True

    def _release_locked(self, obj: Any, ok: bool, now: float) -> Any:
        """An object that was lent (or on its way back) is free again: hand
        it to the first waiter, make it idle, or (not ok, or closed) drop it.
        Returns a dropped object's entry, for the caller to release once the
        lock is let go; None otherwise.  Call with the lock."""
        entry = self._owned.get(id(obj))
        if entry is None or entry[0] is not obj:
            return None     # cleared meanwhile
        if not ok or self._closed:
            del self._owned[id(obj)]
            self._discarded += 1
            self._grant_locked()
            return entry
        if self._waiters:
            w = self._waiters.popleft()
            entry[1] = _LENT
            w.obj = obj
            self._reused += 1
            w.state = _HANDED
            w.lock.release()
            return None
        entry[1] = _IDLE
        self._idle.append((obj, now))
        return None

    def _grant_locked(self) -> None:
        """Room for one more object: the first waiter may create it."""
        if self._waiters and not self._closed and len(self._owned) + self._creating < self._max:
            w = self._waiters.popleft()
            self._creating += 1
            w.state = _PERMIT
            w.lock.release()

    # ---- dropping idle objects -------------------------------------------

    def _drop_idle(self, n: int, timed: bool, now: float) -> int:
        """Drop up to n (-1: all) idle objects, oldest first (with `timed`,
        only those idle for idle_timeout, and never below min_size objects).

        reentrancy: the dropped objects are released (their __del__ runs)
        after the lock is let go."""
        dropped = None
        k = 0
        with self._lock:
            idle = self._idle
            while k != n and idle:
                if timed and (len(self._owned) <= self._min or
                              idle[0][1] + self._idle_timeout > now):
                    break
                if dropped is None:
                    dropped = []
                obj = idle.popleft()[0]
                dropped.append(self._owned.pop(id(obj)))
                self._discarded += 1
                k += 1
            obj = None
        del dropped
        return k

    def expire(self) -> int:
        """Drop the idle objects that have been idle for ``idle_timeout``
        (never below ``min_size`` objects); returns how many.  Every
        acquire does this too, so calling it is only needed to free memory
        held by a pool nobody acquires from."""
        if not self._timed:
            return 0
        return self._drop_idle(-1, True, self._now())

    def shrink(self, n: int) -> int:
        """Drop up to ``n`` idle objects, oldest first (below ``min_size``
        too); returns how many were dropped."""
        return self._drop_idle(check_count(n, "n"), False, 0.0)

    def clear(self) -> int:
        """Drop every idle object; returns how many.  Lent objects are not
        affected."""
        return self._drop_idle(-1, False, 0.0)

    def prefill(self, n: Optional[int] = None) -> int:
        """Create objects until the pool holds at least ``n`` (default
        ``min_size``), never more than ``max_size``; returns how many were
        created.  Called by the constructor.  A factory error propagates;
        the objects made before it stay."""
        want = self._min if n is None else min(check_count(n, "n"), self._max)
        made = 0
        while True:
            with self._lock:
                if self._closed:
                    raise closed()
                total = len(self._owned) + self._creating
                if total >= want or total >= self._max:
                    return made
                self._creating += 1
            self._create(True)
            made += 1

    def close(self) -> None:
        """Drop the idle objects and refuse further acquires
        (:class:`~corecache.PoolClosed`), waking every waiter with that
        error; objects in use are dropped when they come back.  Idempotent."""
        with self._lock:
            self._closed = True
            while self._waiters:
                w = self._waiters.popleft()
                w.state = _CLOSED
                w.lock.release()
        self._drop_idle(-1, False, 0.0)

    def __enter__(self) -> "ObjectPool":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.close()
        return False

    # ---- introspection ---------------------------------------------------

    def stats(self) -> PoolStats:
        """A :class:`~corecache.PoolStats` snapshot, taken atomically."""
        with self._lock:
            idle = len(self._idle)
            counts = (self._created, self._reused, len(self._owned) - idle, idle,
                      self._discarded, self._waits, self._timeouts)
        return PoolStats(*counts, self._max_size_given)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def max_size(self) -> int:
        return self._max_size_given

    @property
    def min_size(self) -> int:
        return self._min

    @property
    def idle_timeout(self) -> Optional[float]:
        return self._idle_timeout_given

    @property
    def acquire_timeout(self) -> Optional[float]:
        return self._acquire_timeout_given

    @property
    def factory(self) -> Callable[[], Any]:
        return self._factory

    @property
    def reset(self) -> Optional[Callable[[Any], Any]]:
        return self._reset

    @property
    def validate(self) -> Optional[Callable[[Any], Any]]:
        return self._validate

    @property
    def clock(self) -> Optional[Callable[[], float]]:
        return self._clock

    def __repr__(self) -> str:
        return pool_repr(self)

    def __reduce__(self) -> Any:
        raise TypeError("ObjectPool objects cannot be pickled (they hold live objects "
                        "and threads' places in line)")

    def _check(self) -> bool:
        """Check the bookkeeping's invariants (tests)."""
        with self._lock:
            idle_ids = [id(o) for o, _ in self._idle]
            return (len(set(idle_ids)) == len(idle_ids)
                    and all(self._owned.get(i, (None, -1))[1] == _IDLE for i in idle_ids)
                    and sum(1 for e in self._owned.values() if e[1] == _IDLE) == len(idle_ids)
                    and all(id(e[0]) == i for i, e in self._owned.items())
                    and len(self._owned) + self._creating <= self._max
                    and (not self._waiters or not self._idle))

    def _waiting(self) -> int:
        """How many acquires are waiting now (tests)."""
        return len(self._waiters)

    def _idle_objects(self) -> List[Any]:
        """The idle objects, oldest first (tests)."""
        with self._lock:
            return [o for o, _ in self._idle]
