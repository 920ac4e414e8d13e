# cython: freethreading_compatible=True
"""ObjectPool, compiled: a Cython type around csrc/cc_ring.c.

Layout.  The C ring keeps the idle objects (newest at the back, where they
are lent again; oldest at the front, where the idle timeout, shrink() and
clear() drop them) and an identity set of every object the pool owns with
its state (idle, lent, returning).  The set holds the pool's one strong
reference to each object, taken and released only in this module; this
type traverses and clears them for the garbage collector itself
(_pool_traverse and _pool_clear, installed at the bottom).  Holding lent
objects too keeps their addresses unique, so that identity tells a
legitimate put() from a double or a foreign one.

Hot path.  `with pool.acquire() as obj` on an idle object is: a _Lease from
a free list, then in __enter__ one ring pop and one set lookup, and in
__exit__ one set lookup and one ring push; no Python-level lock and no
Python code (the critical sections are no-ops under the GIL).

Blocking.  When every object is in use, an acquirer puts a _Waiter (its own
locked lock) at the back of a FIFO deque and sleeps on that lock with no
pool lock held.  Whoever frees something serves the front waiter directly:
a returned object is handed to it (state HANDED), freed capacity becomes a
permit to create (PERMIT), close() wakes everyone (CLOSED).  The state is
set before the waiter's lock is released, and a waiter that times out looks
at its state under the pool's lock before giving up, so nothing handed to
it is lost and wake-ups go in arrival order.  While anyone waits no object
is idle, so a newcomer cannot overtake the queue.

User code (factory, reset, validate, the clock, and the __del__ of dropped
objects) runs with no lock held and only between consistent states; see
the "reentrancy:" notes.  On free-threaded builds the state is guarded by
the pool's critical section.
"""
cimport cython
from cpython.object cimport PyObject, PyTypeObject, traverseproc, inquiry
from cpython.ref cimport Py_INCREF, Py_DECREF
from libc.stdint cimport uint32_t, uint64_t

from corecache._cc cimport *

from collections import deque
from types import GenericAlias
from _thread import allocate_lock

from corecache._pool_common import (FOREVER, check_pool_args, closed, duplicate, exhausted,
                                    not_lent, pool_repr, resolve_timeout, wait_seconds)
from corecache._util import write_unraisable
from corecache._checks import check_count, read_clock as _user_time
from corecache.stats import PoolStats

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX
    void PyType_Modified(PyTypeObject *)
    ctypedef int (*gc_visit "visitproc")(PyObject *, void *) noexcept
    ctypedef int (*gc_traverse "traverseproc")(PyObject *, gc_visit, void *) noexcept
    ctypedef int (*gc_clear "inquiry")(PyObject *) noexcept

__all__ = ["ObjectPool"]

cc_clock_init()

# what a waiter was given
cdef enum:
    _WAITING = 0
    _HANDED = 1      # an object (already marked lent)
    _PERMIT = 2      # a reserved slot: it calls the factory
    _CLOSED = 3      # the pool closed


cdef inline object _raise_status(int status):
    """The one place where C status codes become exceptions."""
    if status == CC_ENOMEM:
        raise MemoryError("corecache: out of memory")
    if status == CC_EFULL:
        raise OverflowError("corecache: a pool holds at most 2**32 - 2 objects")
    raise SystemError(f"corecache: unexpected status {status}")


@cython.final
cdef class _Waiter:
    cdef object lock
    cdef object obj
    cdef int state


cdef inline void _wake(_Waiter w, int state) noexcept:
    """Tell a waiter what it got (its state first, then its lock)."""
    w.state = state
    w.lock.release()


cdef inline void _unqueue(object waiters, _Waiter w) noexcept:
    waiters.remove(w)


@cython.final
@cython.freelist(16)
cdef class _Lease:
    """The context manager that ``ObjectPool.acquire()`` returns: ``__enter__``
    takes an object from the pool, ``__exit__`` puts it back (also when the
    body raised; the exception propagates)."""

    cdef ObjectPool pool
    cdef object obj
    cdef double timeout
    cdef bint held

    def __enter__(self):
        if self.pool is None:
            raise TypeError("this acquire() context was not made by ObjectPool.acquire()")
        if self.held:
            raise RuntimeError("this acquire() context is already entered")
        obj = self.pool._get(self.timeout)
        self.obj = obj
        self.held = True
        return obj

    def __exit__(self, exc_type, exc, tb):
        if not self.held:
            raise RuntimeError("acquire() context exited without being entered")
        obj = self.obj
        self.obj = None
        self.held = False
        self.pool._put(obj)
        return False


cdef class ObjectPool:
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

    cdef cc_ring_t r
    cdef uint32_t _max           # min(max_size, CC_MAX_ENTRIES)
    cdef uint32_t _min
    cdef uint32_t _creating      # slots reserved for factory calls in progress
    cdef uint32_t _nwaiters
    cdef double _timeout         # default acquire wait; FOREVER is -1
    cdef double _idle_timeout    # CC_NEVER when idle objects stay
    cdef bint _timed             # idle_timeout is set
    cdef bint _checks            # reset or validate is set
    cdef bint _closed
    cdef uint64_t _created, _reused, _discarded, _waits, _timeouts
    cdef object _factory
    cdef object _reset
    cdef object _validate
    cdef object _clock
    cdef object _max_size_given
    cdef object _acquire_timeout_given
    cdef object _idle_timeout_given
    cdef object _waiters         # deque of _Waiter, first come first
    cdef object __weakref__

    def __cinit__(self):
        cc_ring_init(&self.r)
        self._waiters = deque()

    def __init__(self, factory, max_size=10, *, min_size=0, reset=None, validate=None,
                 idle_timeout=None, acquire_timeout=None, clock=None):
        max_size, min_size, idle_timeout, acquire_timeout = check_pool_args(
            factory, max_size, min_size, reset, validate, idle_timeout, acquire_timeout, clock)
        if self._factory is not None:
            raise RuntimeError("ObjectPool.__init__ called twice")
        self._factory = factory
        self._max_size_given = max_size
        self._max = min(max_size, CC_MAX_ENTRIES)
        self._min = min(min_size, self._max)
        self._reset = reset
        self._validate = validate
        self._checks = reset is not None or validate is not None
        self._idle_timeout_given = idle_timeout
        self._timed = idle_timeout is not None
        self._idle_timeout = idle_timeout if self._timed else CC_NEVER
        self._acquire_timeout_given = acquire_timeout
        self._timeout = wait_seconds(acquire_timeout)
        self._clock = clock
        if min_size:
            self.prefill()

    def __dealloc__(self):
        cdef cc_ring_t old
        cc_ring_detach(&self.r, &old)
        _drop_all(&old)

    # ---- time ------------------------------------------------------------

    cdef inline double _now(self) except? -1.0:
        """reentrancy: a user clock is Python code; read with no lock held."""
        if not self._timed:
            return 0.0
        if self._clock is None:
            return cc_clock_precise()
        return _user_time(self._clock)

    # ---- lending ---------------------------------------------------------

    @classmethod
    def __class_getitem__(cls, params):
        """``ObjectPool[Parser]`` in annotations evaluated at run time."""
        return GenericAlias(cls, params)

    def acquire(self, timeout=None):
        """A context manager lending one object for a ``with`` block:
        ``with pool.acquire() as obj: ...``.  The object goes back (reset, or
        discarded if that fails) when the block ends, also by an exception,
        which then propagates.

        :param timeout: seconds to wait when every object is in use; None
            for the pool's ``acquire_timeout``, ``math.inf`` forever, 0 not
            at all.  Then :class:`~corecache.PoolExhausted` is raised.
        """
        cdef _Lease lease = _Lease.__new__(_Lease)
        lease.pool = self
        lease.timeout = self._timeout if timeout is None else resolve_timeout(timeout)
        return lease

    def get(self, timeout=None):
        """Take an object out of the pool, to give back with ``put(obj)``.

        :param timeout: as for :meth:`acquire`.
        """
        return self._get(self._timeout if timeout is None else resolve_timeout(timeout))

    def put(self, obj):
        """Give back an object that ``get`` handed out.  ``reset`` (and
        ``validate``) run first; an object that fails them is discarded.
        Putting back an object twice, or one this pool did not hand out, is
        a ValueError and changes nothing."""
        self._put(obj)

    cdef object _get(self, double timeout):
        cdef void *p
        if self._timed:
            self._drop_idle(PY_SSIZE_T_MAX, True, self._now())
        with cython.critical_section(self):
            if not self._closed:
                p = cc_ring_lend_back(&self.r)
                if p != NULL:
                    self._reused += 1
                    return <object>p
        return self._get_slow(timeout)

    cdef object _get_slow(self, double timeout):
        """No idle object: create one if there is room, else wait."""
        cdef void *p
        cdef int status
        cdef _Waiter w
        if self._factory is None:
            raise TypeError(f"{type(self).__name__} was not initialized "
                            f"(a subclass's __init__ must call super().__init__)")
        w = _Waiter.__new__(_Waiter)
        w.lock = allocate_lock()
        w.lock.acquire()
        with cython.critical_section(self):
            if self._closed:
                raise closed()
            p = cc_ring_lend_back(&self.r)
            if p != NULL:
                self._reused += 1
                return <object>p
            if self.r.count + self._creating < self._max:
                status = cc_ring_reserve(&self.r, self.r.count + self._creating + 1)
                if status != CC_OK:
                    _raise_status(status)
                self._creating += 1
                w = None
            elif timeout == 0:
                self._timeouts += 1
                raise exhausted(self._max_size_given, 0.0)
            else:
                self._waiters.append(w)
                self._nwaiters += 1
                self._waits += 1
        if w is None:
            return self._create(False)
        return self._wait(w, timeout)

    cdef object _wait(self, _Waiter w, double timeout):
        """reentrancy: sleeps on the waiter's own lock with no pool lock
        held; whoever serves the waiter sets its state first, and the state
        is read under the pool's lock after waking."""
        cdef int state
        try:
            w.lock.acquire(True, timeout if timeout > 0 else -1)
        except BaseException:
            self._abandon(w)
            raise
        with cython.critical_section(self):
            state = w.state
            if state == _WAITING:
                _unqueue(self._waiters, w)
                self._nwaiters -= 1
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

    cdef int _abandon(self, _Waiter w) except -1:
        """An exception (KeyboardInterrupt) interrupted a wait: give back
        whatever was handed to the waiter meanwhile."""
        cdef PyObject *dropped = NULL
        cdef double now = 0.0
        try:
            now = self._now()
        except Exception:
            pass    # then it counts as idle for a long time already
        with cython.critical_section(self):
            if w.state == _WAITING:
                _unqueue(self._waiters, w)
                self._nwaiters -= 1
            elif w.state == _HANDED:
                dropped = self._release_locked(cc_ring_find(&self.r, <void *>w.obj), True, now)
            elif w.state == _PERMIT:
                self._creating -= 1
                self._grant_locked()
        w.obj = None
        if dropped != NULL:
            Py_DECREF(<object>dropped)
        return 0

    cdef object _create(self, bint idle):
        """Call the factory for a reserved slot (self._creating).  The new
        object is lent, or with `idle` given back at once (prefill).

        reentrancy: the factory is user code, run with no lock held; the
        reserved slot keeps the object count within max_size meanwhile, and
        is handed on to the next waiter if the factory fails."""
        cdef bint bad = False
        cdef bint shut = False
        cdef PyObject *dropped = NULL
        cdef double now = 0.0
        try:
            if idle:
                now = self._now()
            obj = self._factory()
        except BaseException:
            with cython.critical_section(self):
                self._creating -= 1
                self._grant_locked()
            raise
        with cython.critical_section(self):
            self._creating -= 1
            if self._closed:
                self._created += 1
                self._discarded += 1
                shut = True
            elif cc_ring_find(&self.r, <void *>obj) != NULL:
                self._grant_locked()
                bad = True
            else:
                # room was reserved with the slot: adding cannot fail
                Py_INCREF(obj)
                cc_ring_add(&self.r, <void *>obj, CC_RING_LENT)
                self._created += 1
                if idle:
                    dropped = self._release_locked(cc_ring_find(&self.r, <void *>obj), True, now)
        if shut:
            raise closed()
        if bad:
            raise duplicate(obj)
        if dropped != NULL:
            Py_DECREF(<object>dropped)
        return obj

    # ---- giving back -----------------------------------------------------

    cdef int _put(self, object obj) except -1:
        cdef cc_owned_t *e
        cdef PyObject *dropped = NULL
        cdef bint ok = True
        cdef double now
        if not self._checks and not self._timed:
            with cython.critical_section(self):
                e = cc_ring_find(&self.r, <void *>obj)
                if e != NULL and e.state == CC_RING_LENT and not self._nwaiters and not self._closed:
                    cc_ring_push(&self.r, e, 0.0)
                    return 0
        # the time it goes idle, read first: if a user clock fails, nothing changed
        now = self._now()
        with cython.critical_section(self):
            e = cc_ring_find(&self.r, <void *>obj)
            if e == NULL or e.state != CC_RING_LENT:
                ok = False
            elif self._checks:
                e.state = CC_RING_RETURNING
            else:
                dropped = self._release_locked(e, True, now)
                e = NULL
        if not ok:
            raise not_lent(obj, e == NULL)
        if self._checks:
            try:
                ok = self._passes(obj)
            except BaseException:
                with cython.critical_section(self):
                    dropped = self._release_locked(cc_ring_find(&self.r, <void *>obj), False, 0.0)
                if dropped != NULL:
                    Py_DECREF(<object>dropped)
                raise
            with cython.critical_section(self):
                dropped = self._release_locked(cc_ring_find(&self.r, <void *>obj), ok, now)
        if dropped != NULL:
            Py_DECREF(<object>dropped)
        return 0

    cdef bint _passes(self, object obj) except -1:
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

    cdef PyObject *_release_locked(self, cc_owned_t *e, bint ok, double now) noexcept:
        """An object that was lent (or on its way back) is free again: hand
        it to the first waiter, make it idle, or (not ok, or closed) drop it.
        Returns the pool's reference to a dropped object, for the caller to
        release once no lock is held; NULL otherwise.  Call with the lock."""
        cdef _Waiter w
        cdef void *p
        if e == NULL:
            return NULL     # the garbage collector cleared the pool meanwhile
        p = e.obj
        if not ok or self._closed:
            cc_ring_remove(&self.r, p)
            self._discarded += 1
            self._grant_locked()
            return <PyObject *>p
        if self._nwaiters:
            w = self._next_waiter()
            e.state = CC_RING_LENT
            w.obj = <object>p
            self._reused += 1
            _wake(w, _HANDED)
            return NULL
        cc_ring_push(&self.r, e, now)
        return NULL

    cdef _Waiter _next_waiter(self):
        """The first waiter, taken off the queue (there is one)."""
        self._nwaiters -= 1
        return <_Waiter>self._waiters.popleft()

    cdef void _grant_locked(self) noexcept:
        """Room for one more object: the first waiter may create it."""
        if self._nwaiters and not self._closed and self.r.count + self._creating < self._max:
            self._creating += 1
            _wake(self._next_waiter(), _PERMIT)

    # ---- dropping idle objects -------------------------------------------

    cdef Py_ssize_t _drop_idle(self, Py_ssize_t n, bint timed, double now) except -1:
        """Drop up to n idle objects, oldest first (with `timed`, only those
        idle for idle_timeout, and never below min_size objects).

        reentrancy: the dropped objects are released (their __del__ runs)
        after the ring is consistent and with no lock held."""
        cdef list dropped = None
        cdef Py_ssize_t k = 0
        cdef void *p
        with cython.critical_section(self):
            while k < n and self.r.len:
                if timed and (self.r.count <= self._min or
                              cc_ring_front(&self.r).since + self._idle_timeout > now):
                    break
                if dropped is None:
                    dropped = []
                p = cc_ring_drop_front(&self.r)
                self._discarded += 1
                k += 1
                dropped.append(<object>p)
                Py_DECREF(<object>p)    # the list holds it now, not the ring
        return k

    def expire(self):
        """Drop the idle objects that have been idle for ``idle_timeout``
        (never below ``min_size`` objects); returns how many.  Every
        acquire does this too, so calling it is only needed to free memory
        held by a pool nobody acquires from."""
        if not self._timed:
            return 0
        return self._drop_idle(PY_SSIZE_T_MAX, True, self._now())

    def shrink(self, n):
        """Drop up to ``n`` idle objects, oldest first (below ``min_size``
        too); returns how many were dropped."""
        return self._drop_idle(check_count(n, "n"), False, 0.0)

    def clear(self):
        """Drop every idle object; returns how many.  Lent objects are not
        affected."""
        return self._drop_idle(PY_SSIZE_T_MAX, False, 0.0)

    def prefill(self, n=None):
        """Create objects until the pool holds at least ``n`` (default
        ``min_size``), never more than ``max_size``; returns how many were
        created.  Called by the constructor.  A factory error propagates;
        the objects made before it stay."""
        cdef Py_ssize_t want = self._min if n is None else min(check_count(n, "n"), self._max)
        cdef Py_ssize_t made = 0
        cdef int status
        while True:
            with cython.critical_section(self):
                if self._closed:
                    raise closed()
                if self.r.count + self._creating >= want or \
                        self.r.count + self._creating >= self._max:
                    return made
                status = cc_ring_reserve(&self.r, self.r.count + self._creating + 1)
                if status != CC_OK:
                    _raise_status(status)
                self._creating += 1
            self._create(True)
            made += 1

    def close(self):
        """Drop the idle objects and refuse further acquires
        (:class:`~corecache.PoolClosed`), waking every waiter with that
        error; objects in use are dropped when they come back.  Idempotent."""
        with cython.critical_section(self):
            self._closed = True
            while self._nwaiters:
                _wake(self._next_waiter(), _CLOSED)
        self._drop_idle(PY_SSIZE_T_MAX, False, 0.0)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    # ---- introspection ---------------------------------------------------

    def stats(self):
        """A :class:`~corecache.PoolStats` snapshot, taken atomically."""
        with cython.critical_section(self):
            counts = (self._created, self._reused, self.r.count - self.r.len, self.r.len,
                      self._discarded, self._waits, self._timeouts)
        return PoolStats(*counts, self._max_size_given)

    @property
    def closed(self):
        return self._closed

    @property
    def max_size(self):
        return self._max_size_given

    @property
    def min_size(self):
        return self._min

    @property
    def idle_timeout(self):
        return self._idle_timeout_given

    @property
    def acquire_timeout(self):
        return self._acquire_timeout_given

    @property
    def factory(self):
        return self._factory

    @property
    def reset(self):
        return self._reset

    @property
    def validate(self):
        return self._validate

    @property
    def clock(self):
        return self._clock

    def __repr__(self):
        return pool_repr(self)

    def __reduce__(self):
        raise TypeError("ObjectPool objects cannot be pickled (they hold live objects "
                        "and threads' places in line)")

    def _check(self):
        """Run the C structure's full consistency check (tests)."""
        with cython.critical_section(self):
            return (bool(cc_ring_check(&self.r)) and self.r.count + self._creating <= self._max
                    and self._nwaiters == len(self._waiters)
                    and (self._nwaiters == 0 or self.r.len == 0))

    def _waiting(self):
        """How many acquires are waiting now (tests)."""
        return self._nwaiters

    def _idle_objects(self):
        """The idle objects, oldest first (tests)."""
        cdef uint32_t k, i
        out = []
        with cython.critical_section(self):
            for k in range(self.r.len):
                i = (self.r.head + k) % self.r.cap
                out.append(<object>self.r.idle[i].obj)
        return out


cdef void _drop_all(cc_ring_t *old) noexcept:
    """Release every object of a detached ring, then its arrays.
    reentrancy: runs __del__ code; the pool already points at an empty ring."""
    cdef size_t p
    cdef PyObject *et
    cdef PyObject *ev
    cdef PyObject *tb
    if old.count:
        PyErr_Fetch(&et, &ev, &tb)
        for p in range(old.mask + 1):
            if old.owned[p].obj != NULL:
                Py_DECREF(<object>old.owned[p].obj)
        PyErr_Restore(et, ev, tb)
    cc_ring_free(old)


cdef extern from "Python.h":
    void PyErr_Fetch(PyObject **, PyObject **, PyObject **)
    void PyErr_Restore(PyObject *, PyObject *, PyObject *)


# ---- garbage collection ----------------------------------------------------
# Cython's slots only see the object fields; these add the owned objects.

cdef gc_traverse _base_traverse = <gc_traverse>(<PyTypeObject *>ObjectPool).tp_traverse
cdef gc_clear _base_clear = <gc_clear>(<PyTypeObject *>ObjectPool).tp_clear


cdef int _pool_traverse(PyObject *o, gc_visit visit, void *arg) noexcept:
    cdef cc_ring_t *r = &(<ObjectPool>o).r
    cdef size_t p
    cdef int res
    if r.count:
        for p in range(r.mask + 1):
            if r.owned[p].obj != NULL:
                res = visit(<PyObject *>r.owned[p].obj, arg)
                if res:
                    return res
    return _base_traverse(o, visit, arg)


cdef int _pool_clear(PyObject *o) noexcept:
    cdef cc_ring_t old
    cc_ring_detach(&(<ObjectPool>o).r, &old)
    _drop_all(&old)
    return _base_clear(o)


(<PyTypeObject *>ObjectPool).tp_traverse = <traverseproc>_pool_traverse
(<PyTypeObject *>ObjectPool).tp_clear = <inquiry>_pool_clear
PyType_Modified(<PyTypeObject *>ObjectPool)
