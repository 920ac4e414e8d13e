# cython: freethreading_compatible=True
"""LRUCache, compiled: a Cython type around the C table of csrc/cc_lru.c.

Layout, chosen for the memory target: entries are 40-byte C structs in one
array with an open-addressing index (layout (b) of STYLE.md), about 50 bytes
per entry without a TTL and 80 with one.  The table holds one strong
reference to each key and value, taken and released only in this module;
the garbage collector cannot see them through Cython's generated slots, so
this type traverses and clears them itself (_lru_traverse and _lru_clear,
installed on the type at the bottom of this file).

Atomicity.  Under the GIL a method is atomic as long as no Python code runs
while the table is half-changed.  The Python code an operation can run is:
the key's __hash__ (before any change), its __eq__ (inside ccpy_find, which
restarts its probe if the table changed meanwhile), the user's clock and
getsizeof (read before the lookup), and, last, the eviction callback and the
__del__ of released keys and values (_release, after the table is consistent
and no entry index is held any more).  Threads, with or without the GIL:
every public method holds the cache's critical section, as _locking.h
writes down for every object of corecache.
"""
cimport cython
from cpython.object cimport PyObject, PyTypeObject, traverseproc, inquiry
from cpython.ref cimport Py_INCREF, Py_DECREF, Py_XDECREF
from libc.math cimport isnan, NAN
from libc.stdint cimport int64_t, uint32_t, uint64_t, UINT64_MAX

from corecache._cc cimport *

import sys
from collections.abc import Mapping, MutableMapping
from types import GenericAlias

from corecache._lru_common import (cache_repr, check_items, copy_cache, deepcopy_cache,
                               reduce_cache)
from corecache._flight import SingleFlight
from corecache._lru_cleaner import cleaner
from corecache._lru_views import CacheItemsView, CacheKeysView, CacheValuesView
from corecache._checks import (read_clock as _user_time, check_callable, check_count,
                               check_entry_size, check_max_size, check_memory_limit_mb,
                               check_seconds, check_ttl, entry_too_large, memory_overflow,
                               validate_changes)
from corecache.stats import CacheStats

try:
    from functools import _CacheInfo
except ImportError:  # functools always had it, but it is private
    from collections import namedtuple
    _CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "maxsize", "currsize"])

cdef extern from "Python.h":
    void PyType_Modified(PyTypeObject *)
    Py_ssize_t PyNumber_AsSsize_t(object, PyObject *) except? -1
    object PyMethod_New(object, object)
    void *PyMem_Malloc(size_t)
    void PyMem_Free(void *)
    # the GC's callback types, without Cython's exception checking: the
    # values visit functions return are theirs to interpret
    ctypedef int (*gc_visit "visitproc")(PyObject *, void *) noexcept
    ctypedef int (*gc_traverse "traverseproc")(PyObject *, gc_visit, void *) noexcept
    ctypedef int (*gc_clear "inquiry")(PyObject *) noexcept

__all__ = ["Cache", "LRUCache", "lru_cache", "cache", "cached_method"]

cc_clock_init()

cdef object _MISSING = object()
cdef object _getsizeof = sys.getsizeof


cdef inline double _resolve_ttl(object ttl, double default) except? -1.0:
    """Seconds for a ttl argument: None is the default, inf is never."""
    if ttl is None:
        return default
    if type(ttl) is float or type(ttl) is int:
        if ttl > 0:
            return ttl
    return check_ttl(ttl)


cdef ccpy_dead_t _NOTHING_DROPPED     # all zeros: what an operation starts with


cdef inline void _let_go_quietly(ccpy_dead_t *dead) noexcept:
    """Let go of what the user removed (no callback): __del__ runs here."""
    ccpy_release(dead, NULL)


# Counters are copied to C first and converted to Python after: creating
# Python ints allocates, and an allocation can run code (the garbage
# collector's finalizers) that changes them, which would tear the snapshot.
cdef struct _Counters:
    uint64_t hits, misses, evictions, expirations, size, memory, rejected


cdef inline _Counters _counters(cc_lru_t *t, bint accounting, uint64_t rejected) noexcept:
    cdef _Counters c
    c.hits = t.hits
    c.misses = t.misses
    c.evictions = t.evictions
    c.expirations = t.expirations
    c.size = t.count
    c.memory = t.memory if accounting else 0
    c.rejected = rejected
    return c


def _default_getsizeof(key, value):
    return _getsizeof(key) + _getsizeof(value)


cdef class Cache:
    """A mapping that keeps what its eviction policy judges most useful,
    with per-entry TTLs, a count and a memory limit, eviction callbacks and
    statistics.

    Policies (``Cache.POLICIES``): ``"lru"`` evicts the least recently used
    entry; ``"adaptive"`` (the default) is W-TinyLFU with a window that
    climbs between recency and frequency (csrc/cc_policy.h).  Under
    ``"adaptive"`` a new entry may be refused admission: when the cache is
    full, the candidate leaving the window competes with the main space's
    victim and the less frequent one goes, so the entry evicted (reported
    to the eviction callback and counted in ``stats().evictions``) may be
    the candidate itself.  Iteration, ``popitem`` and ``evict`` follow the
    policy's order (protected, probation, window; each oldest first), and a
    memory limit, ``popitem`` and ``evict`` take the oldest probation entry
    first.  Copies and pickles keep the entries, not the policy's history.

    :param max_size: the most live entries kept (a positive int).
    :param default_ttl: seconds an entry lives when ``set`` gives no TTL;
        None (or ``math.inf``) for no expiry.
    :param memory_limit_mb: the most MiB the entries may take, as measured by
        ``getsizeof``; None for no memory limit.
    :param getsizeof: ``getsizeof(key, value) -> int`` bytes of one entry;
        default ``sys.getsizeof(key) + sys.getsizeof(value)``.
    :param cleanup_interval: seconds between sweeps of the shared background
        cleaner; None for lazy expiry only.
    :param eviction_callback: ``callback(key, value)``, called for every
        entry the cache removes on its own (limits, expiry, shrinking).
    :param clock: zero-argument callable returning monotonic seconds.
    :param policy: the eviction policy, one of ``Cache.POLICIES``.
    """

    POLICIES = ("lru", "adaptive")
    _POLICY_FIXED = False             # copies and pickles pass policy= on

    cdef cc_lru_t t
    cdef cc_policy_t *_policy       # NULL: plain LRU
    cdef object _policy_name
    cdef uint64_t _max_size         # min(max_size, CC_MAX_ENTRIES)
    cdef uint64_t _memory_limit     # bytes; 0 when there is no limit
    cdef double _default_ttl        # CC_NEVER when entries do not expire
    cdef bint _accounting           # sizes are tracked (limit or getsizeof)
    cdef bint _paused               # writes are refused (pause_writes)
    cdef bint _initialized          # __init__ has run
    cdef uint64_t _rejected         # writes refused while paused
    cdef object _max_size_given
    cdef object _memory_limit_mb
    cdef object _getsizeof          # the user's callable, or None
    cdef object _sizer              # what is called to size an entry
    cdef object _callback
    cdef object _clock
    cdef object _cleanup_interval
    cdef object _schedule
    cdef object _flight             # SingleFlight of get_or_set
    cdef object __weakref__

    def __cinit__(self):
        # the state of LRUCache() with no arguments, so that a subclass whose
        # __init__ does not call ours still gets a working cache
        cc_lru_init(&self.t)
        self._flight = SingleFlight("get_or_set: the factory")
        self._max_size_given = 1000
        self._max_size = 1000
        self._default_ttl = CC_NEVER
        self._policy_name = "lru"

    def __init__(self, max_size=1000, default_ttl=None, *, memory_limit_mb=None,
                 getsizeof=None, cleanup_interval=None, eviction_callback=None,
                 clock=None, policy="adaptive"):
        cdef cc_policy_t *p
        if policy not in Cache.POLICIES:
            raise ValueError(f"policy must be one of {Cache.POLICIES}, got {policy!r}")
        max_size = check_max_size(max_size)
        default_ttl = check_ttl(default_ttl, "default_ttl")
        limit = check_memory_limit_mb(memory_limit_mb)
        check_callable(getsizeof, "getsizeof")
        cleanup_interval = check_seconds(cleanup_interval, "cleanup_interval", allow_inf=False)
        check_callable(eviction_callback, "eviction_callback")
        check_callable(clock, "clock")
        if self._initialized:
            raise RuntimeError(f"{type(self).__name__}.__init__ called twice")
        self._initialized = True
        self._max_size_given = max_size
        self._max_size = min(max_size, CC_MAX_ENTRIES)
        if policy == "adaptive":
            p = <cc_policy_t *>PyMem_Malloc(sizeof(cc_policy_t))
            if p == NULL:
                raise MemoryError()
            cc_policy_init(p, _capacity(self._max_size))
            self._policy = p
        self._policy_name = policy
        self._default_ttl = CC_NEVER if default_ttl is None else default_ttl
        self._memory_limit_mb = memory_limit_mb
        self._memory_limit = 0 if limit is None else limit
        self._getsizeof = getsizeof
        self._callback = eviction_callback
        self._clock = clock
        self._accounting = False
        if limit is not None or getsizeof is not None:
            self._start_accounting()
        self._cleanup_interval = None
        self._set_cleanup_interval(cleanup_interval)

    @classmethod
    def __class_getitem__(cls, params):
        """``LRUCache[str, int]`` in annotations evaluated at run time."""
        return GenericAlias(cls, params)

    @classmethod
    def from_config(cls, config, *, clock=None):
        """Build a cache from a :class:`CacheConfig`."""
        from corecache.config import CacheConfig
        if not isinstance(config, CacheConfig):
            raise TypeError(f"config must be a CacheConfig, got {config!r}")
        return cls(config.max_size, config.default_ttl,
                   memory_limit_mb=config.memory_limit_mb, getsizeof=config.getsizeof,
                   cleanup_interval=config.cleanup_interval,
                   eviction_callback=config.eviction_callback, clock=clock)

    def __dealloc__(self):
        if self._schedule is not None:
            self._schedule.cancel()
        ccpy_pclear(&self.t, self._policy)
        if self._policy != NULL:
            cc_policy_free(self._policy)
            PyMem_Free(self._policy)
            self._policy = NULL

    @property
    def policy(self):
        """The eviction policy's name (one of ``Cache.POLICIES``)."""
        return self._policy_name

    # ---- removal ---------------------------------------------------------
    # An operation that removes entries collects their references in a
    # ccpy_dead_t (`dead`) and lets go of them only when it is done with the
    # table: _let_go is where user code runs after a change (the eviction
    # callback on what the cache removed on its own, then the __del__ of
    # every key and value let go), _let_go_quietly the same without the
    # callback, for what the user removed.

    cdef inline void _let_go(self, ccpy_dead_t *dead) noexcept:
        ccpy_release(dead, <PyObject *>self._callback if self._callback is not None else NULL)

    cdef Py_ssize_t _expire_due(self, double now) except -1:
        """Remove every expired entry (at `now`, from _begin) and let go of
        them (user code: callbacks, __del__); returns how many."""
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        try:
            return self._purge(now, &dead)
        finally:
            self._let_go(&dead)


    cdef inline int _take(self, uint32_t i, ccpy_dead_t *dead) except -1:
        """Remove entry i, handing its references to `dead`."""
        return ccpy_ptake(&self.t, self._policy, i, dead)

    cdef inline Py_ssize_t _purge(self, double now, ccpy_dead_t *dead) except -1:
        """Remove every expired entry; returns how many."""
        return ccpy_ppurge(&self.t, self._policy, self._clock is not None, now, dead)

    cdef inline int _evict_to_limits(self, ccpy_dead_t *dead, Py_ssize_t keep) except -1:
        """Evict what the policy gives up until both limits hold, never
        evicting entry `keep`."""
        if self._policy != NULL:
            return ccpy_policy_evict(&self.t, self._policy, self._memory_limit, 0, keep, dead)
        return ccpy_evict_to(&self.t, self._max_size, self._memory_limit, 0, keep, dead)

    cdef inline uint32_t _oldest(self) noexcept:
        """The entry popitem and evict take: the least recently used, or
        the policy's (ccpy_policy_oldest).  The table must not be empty."""
        if self._policy != NULL:
            return ccpy_policy_oldest(self._policy, &self.t)
        return self.t.head

    cdef int _drop_expired(self, uint32_t i) except -1:
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        self._take(i, &dead)
        self.t.expirations += 1
        self._let_go(&dead)
        return 0

    # ---- lookups ---------------------------------------------------------

    cdef inline Py_ssize_t _live(self, object key, double now) except -2:
        """Index of key's live entry, or -1; an expired one is dropped."""
        cdef Py_ssize_t i = ccpy_find(&self.t, key, hash(key))
        if i >= 0 and _passed(self, self.t.entries[i].expires, now):
            self._drop_expired(i)
            return -1
        return i

    @cython.critical_section
    def __getitem__(self, key):
        value = _any_counted_get(self, key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    @cython.critical_section
    @cython.binding(False)
    @cython.embedsignature.format('clinic')
    def get(self, key, default=None):
        """The value for key (counted as a hit), or `default` (a miss)."""
        value = _any_counted_get(self, key)
        return default if value is _MISSING else value

    def getter(self, on_miss):
        """A callable ``getter(key, default=None)`` that is ``get(key)`` on a
        hit (counted, made most recent) and ``on_miss(key, default)`` on a
        miss: a read-through front whose hit costs about one ``get``, with
        no Python frame in between (corecache.distributed uses it).

        :param on_miss: called as ``on_miss(key, default)`` on a miss (or an
            expired entry), outside any lock; its result is returned.
        """
        return LRUGetter(self, on_miss)

    @cython.critical_section
    def peek(self, key, default=None):
        """The value for key without counting it or making it recent."""
        cdef Py_ssize_t i = self._live(key, _begin(self, False))
        return default if i < 0 else <object>self.t.entries[i].value

    @cython.critical_section
    def __contains__(self, key):
        return self._live(key, _begin(self, False)) >= 0

    # ---- insertion -------------------------------------------------------

    cdef int _set(self, object key, object value, double ttl,
                  double deadline=NAN, PyObject **existing=NULL) except -1:
        """Insert or overwrite.  `ttl` is resolved (CC_NEVER for none);
        `deadline`, when given, is the entry's expiry time itself (copies).
        With `existing`, a live entry is left alone and its value stored
        there (a borrowed reference)."""
        cdef bint timed = ttl != CC_NEVER
        cdef bint sized
        cdef double now, expires = CC_NEVER
        cdef uint64_t size = 0
        cdef Py_hash_t h
        cdef Py_ssize_t i, expired = -1
        cdef uint32_t j
        cdef int status
        cdef PyObject *old
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        if self._paused:
            self._rejected += 1
            return 0
        while True:
            # Everything that runs Python code comes first.
            now = _begin(self, timed)
            h = hash(key)
            sized = self._accounting
            if sized:
                size = self._size_of(key, value, True)
            i = ccpy_find(&self.t, key, h)
            if sized == self._accounting:
                break
            # accounting was switched on meanwhile (resize): size this entry too
        if timed:
            expires = deadline if not isnan(deadline) else _now(self, now) + ttl
        if i >= 0 and existing != NULL and not _passed(self, self.t.entries[i].expires, now):
            existing[0] = <PyObject *>self.t.entries[i].value
            return 0
        if sized and not self._memory_limit:
            # (with a limit, the total stays below it, and it below 2**63)
            _check_total(&self.t, size, cc_lru_size_of(&self.t, i) if i >= 0 else 0, key)
        if i >= 0 and self._policy != NULL and _passed(self, self.t.entries[i].expires, now):
            # an expired entry expires (as in the pure twin), then a new one goes in
            expired = i
        elif i >= 0:
            status = cc_lru_set_expiry(&self.t, i, expires, ttl)
            if status != CC_OK:
                ccpy_status_error(status)
            old = <PyObject *>self.t.entries[i].value
            Py_INCREF(value)
            self.t.entries[i].value = <PyObject *>value
            if sized:
                cc_lru_set_size(&self.t, i, size)
            if self._policy != NULL:
                cc_policy_hit(self._policy, &self.t, i)     # an overwrite is a use
            else:
                cc_lru_move_to_end(&self.t, i)
            try:
                self._evict_to_limits(&dead, i)
            finally:
                self._let_go(&dead)
                Py_DECREF(<object>old)
            return 0
        try:
            if self._policy != NULL:
                _policy_insert(self, key, value, h, now, ttl, expires, sized, size, expired,
                               &dead)
                return 0
            # make room first, so that inserting rarely has to grow arrays
            self._purge(now, &dead)
            ccpy_evict_to(&self.t, self._max_size - 1, self._memory_limit, size, -1, &dead)
            status = cc_lru_insert(&self.t, <void *>key, <void *>value, h, &j)
            if status != CC_OK:
                ccpy_status_error(status)
            Py_INCREF(key)
            Py_INCREF(value)
            if sized:
                cc_lru_set_size(&self.t, j, size)
            if timed:
                status = cc_lru_set_expiry(&self.t, j, expires, ttl)
                if status != CC_OK:
                    self._take(j, &dead)
                    ccpy_status_error(status)
        finally:
            self._let_go(&dead)
        return 0

    cdef uint64_t _size_of(self, object key, object value, bint limited) except? 0:
        """reentrancy: getsizeof is user code; called before any change."""
        cdef uint64_t size = check_entry_size(self._sizer(key, value), key)
        if limited and self._memory_limit and size > self._memory_limit:
            raise entry_too_large(size, self._memory_limit, key)
        return size

    @cython.critical_section
    def __setitem__(self, key, value):
        self._set(key, value, self._default_ttl)

    @cython.critical_section
    def set(self, key, value, ttl=None):
        """Store value under key, as the most recently used entry.

        :param ttl: seconds this entry lives; None for ``default_ttl``,
            ``math.inf`` for never.
        """
        self._set(key, value, _resolve_ttl(ttl, self._default_ttl))

    @cython.critical_section
    def setdefault(self, key, default=None):
        """The value for key (a counted lookup); if absent, store and return default."""
        cdef PyObject *existing = NULL
        value = self._lookup_counted(key)
        if value is not _MISSING:
            return value
        self._set(key, default, self._default_ttl, NAN, &existing)
        return default if existing == NULL else <object>existing

    def update(self, other=(), /, **kwargs):
        """Set every (key, value) of a mapping or iterable of pairs, then of kwargs."""
        for k, v in check_items(other):
            self[k] = v
        for k, v in kwargs.items():
            self[k] = v

    def get_or_set(self, key, factory, ttl=None):
        """The value for key; on a miss, ``factory()`` computes it, once for
        all threads that miss the same key meanwhile, and it is stored.  If
        the factory raises, every waiting thread gets that exception and
        nothing is stored.

        reentrancy: the factory may use the cache, but asking for the same
        key from inside its own factory is a RuntimeError (it would wait for
        itself).
        """
        seconds = _resolve_ttl(ttl, self._default_ttl)
        if not callable(factory):
            raise TypeError(f"factory must be callable, got {factory!r}")
        value = self._lookup_counted(key)
        if value is not _MISSING:
            return value
        return self._flight.run(key, lambda: self._fill(key, factory, seconds))

    def _fill(self, key, factory, double seconds):
        """The leader's part of get_or_set: another thread may have stored
        the key between our miss and our registration."""
        value = self.peek(key, _MISSING)
        if value is _MISSING:
            value = factory()
            with cython.critical_section(self):
                self._set(key, value, seconds)
        return value

    cdef object _lookup_counted(self, key):
        with cython.critical_section(self):
            return _any_counted_get(self, key)

    # ---- removal by the user ---------------------------------------------

    @cython.critical_section
    def __delitem__(self, key):
        cdef Py_ssize_t i = self._live(key, _begin(self, False))
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        if i < 0:
            raise KeyError(key)
        self._take(i, &dead)
        _let_go_quietly(&dead)

    @cython.critical_section
    def pop(self, key, default=_MISSING):
        """Remove key and return its value; `default` (or KeyError) if absent."""
        cdef Py_ssize_t i = self._live(key, _begin(self, False))
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        if i < 0:
            if default is _MISSING:
                raise KeyError(key)
            return default
        value = <object>self.t.entries[i].value
        self._take(i, &dead)
        _let_go_quietly(&dead)
        return value

    @cython.critical_section
    def popitem(self):
        """Remove and return the least recently used (key, value); under a
        policy, the entry it gives up first (the oldest probation entry)."""
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        cdef uint32_t i
        self._expire_due(_begin(self, False))
        if self.t.count == 0:
            raise KeyError(f"popitem(): {'LRUCache' if self._policy == NULL else 'Cache'} "
                           f"is empty")
        self._take(self._oldest(), &dead)
        # the tuple is built once the entry is out (it allocates)
        try:
            return (<object>dead.key, <object>dead.value)
        finally:
            _let_go_quietly(&dead)

    @cython.critical_section
    def clear(self):
        """Remove every entry (no callbacks; statistics are kept)."""
        ccpy_pclear(&self.t, self._policy)

    # ---- TTL -------------------------------------------------------------

    @cython.critical_section
    def touch(self, key, ttl=None):
        """Restart key's TTL from now: its own TTL, or `ttl` when given
        (``math.inf``: never expire).  KeyError if absent."""
        cdef double now = _begin(self, True)
        cdef double seconds = CC_NEVER
        cdef Py_ssize_t i
        cdef int status
        if ttl is not None:
            seconds = _resolve_ttl(ttl, CC_NEVER)
        i = self._live(key, now)
        if i < 0:
            raise KeyError(key)
        if ttl is None:
            seconds = cc_lru_ttl_of(&self.t, i)
        status = cc_lru_set_expiry(&self.t, i, CC_NEVER if seconds == CC_NEVER
                                   else _now(self, now) + seconds, seconds)
        if status != CC_OK:
            ccpy_status_error(status)

    @cython.critical_section
    def ttl(self, key):
        """Seconds until key expires; None if it never does.  KeyError if absent."""
        cdef double now = _begin(self, True)
        cdef Py_ssize_t i = self._live(key, now)
        if i < 0:
            raise KeyError(key)
        if self.t.entries[i].expires == CC_NEVER:
            return None
        return self.t.entries[i].expires - _now(self, now)

    @cython.critical_section
    def expire(self):
        """Remove every expired entry now; returns how many."""
        return self._expire_due(_begin(self, True))

    # ---- limits ----------------------------------------------------------

    cdef _start_accounting(self):
        status = cc_lru_track_sizes(&self.t)
        if status != CC_OK:
            ccpy_status_error(status)
        self._sizer = self._getsizeof if self._getsizeof is not None else _default_getsizeof
        self._accounting = True

    def resize(self, max_size=_MISSING, memory_limit_mb=_MISSING):
        """Change the limits now, evicting least recently used entries at
        once until they hold.  An argument left out stays as it is;
        ``memory_limit_mb=None`` removes the memory limit.  A bad argument,
        or a getsizeof that fails, leaves the cache as it was."""
        cdef uint64_t new_limit = self._memory_limit
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        if max_size is not _MISSING:
            max_size = check_max_size(max_size)
        if memory_limit_mb is not _MISSING:
            limit = check_memory_limit_mb(memory_limit_mb)
            new_limit = 0 if limit is None else limit
        if new_limit and not self._accounting:
            self._size_existing()
        with cython.critical_section(self):
            if max_size is not _MISSING:
                if self._policy != NULL:
                    status = cc_policy_resize(self._policy,
                                              _capacity(min(max_size, CC_MAX_ENTRIES)))
                    if status != CC_OK:
                        ccpy_status_error(status)
                self._max_size_given = max_size
                self._max_size = min(max_size, CC_MAX_ENTRIES)
            if memory_limit_mb is not _MISSING:
                self._memory_limit_mb = memory_limit_mb
                self._memory_limit = new_limit
            try:
                self._evict_to_limits(&dead, -1)
                if self.t.cap > 64 and self.t.cap > 4 * self.t.count:
                    if self._policy != NULL:
                        status = cc_policy_compact(self._policy, &self.t)
                    else:
                        status = cc_lru_compact(&self.t)
                    if status != CC_OK:
                        ccpy_status_error(status)
            finally:
                self._let_go(&dead)

    def evict(self, n):
        """Evict up to `n` least recently used entries now (counted as
        evictions, reported to the eviction callback); returns how many."""
        cdef Py_ssize_t k, count
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        count = check_count(n, "n")
        with cython.critical_section(self):
            try:
                for k in range(count):
                    if self.t.count == 0:
                        return k
                    self._take(self._oldest(), &dead)
                    self.t.evictions += 1
                return count
            finally:
                self._let_go(&dead)

    @cython.critical_section
    def pause_writes(self):
        """Refuse new writes until resume_writes(): set, []=, setdefault,
        update and get_or_set store nothing (each refusal is counted in
        stats().rejected); reads and removals still work."""
        self._paused = True

    @cython.critical_section
    def resume_writes(self):
        """Accept writes again after pause_writes()."""
        self._paused = False

    @property
    def writes_paused(self):
        return self._paused

    def reconfigure(self, *, max_size=_MISSING, default_ttl=_MISSING,
                    memory_limit_mb=_MISSING, cleanup_interval=_MISSING):
        """Change settings live.  Every change is validated before any is
        applied, so a bad one leaves the cache as it was.  Shrinking limits
        evicts at once; a new default_ttl applies to later writes."""
        changes = validate_changes(max_size, default_ttl, memory_limit_mb, cleanup_interval,
                                   _MISSING)
        if "default_ttl" in changes:
            ttl = changes["default_ttl"]
            with cython.critical_section(self):
                self._default_ttl = CC_NEVER if ttl is None else ttl
        if "cleanup_interval" in changes:
            self._set_cleanup_interval(changes["cleanup_interval"])
        if "max_size" in changes or "memory_limit_mb" in changes:
            self.resize(changes.get("max_size", _MISSING),
                        changes.get("memory_limit_mb", _MISSING))

    cdef _size_existing(self):
        """Start accounting on a cache that had none.

        reentrancy: sizes come from user code, called with no lock held.
        Accounting is switched on first, so that an entry set meanwhile is
        sized by its own set; an entry whose value changed meanwhile keeps
        that size.  If getsizeof fails, accounting is switched off again."""
        cdef PyObject **refs
        cdef Py_ssize_t n, r
        with cython.critical_section(self):
            # every entry, expired or not, as the twin does: reading the
            # clock here (to expire first) could fail after accounting was
            # switched on, and leave the existing entries unsized for good
            refs = ccpy_refs(&self.t, 3, &n)
            self._start_accounting()
        try:
            items = [(<object>refs[r], <object>refs[r + 1]) for r in range(0, n, 2)]
        finally:
            if refs != NULL:
                ccpy_refs_free(refs, n)
        try:
            sizes = [(k, v, self._size_of(k, v, False)) for k, v in items]
        except BaseException:
            with cython.critical_section(self):
                self._accounting = False
                self._sizer = None
                cc_lru_untrack_sizes(&self.t)
            raise
        with cython.critical_section(self):
            for k, v, size in sizes:
                i = ccpy_find(&self.t, k, hash(k))
                if i >= 0 and self.t.entries[i].value == <void *>v:
                    try:
                        _check_total(&self.t, size, cc_lru_size_of(&self.t, i), k)
                    except ValueError:
                        self._accounting = False
                        self._sizer = None
                        cc_lru_untrack_sizes(&self.t)
                        raise
                    cc_lru_set_size(&self.t, i, size)

    def _set_cleanup_interval(self, interval):
        # The new schedule is made first and swapped in under the critical
        # section, the old one cancelled after: two threads changing the
        # interval at once each cancel the schedule they replaced, so none
        # is left running (see _locking.h).
        interval = check_seconds(interval, "cleanup_interval", allow_inf=False)
        new = cleaner.schedule(self, interval) if interval is not None else None
        with cython.critical_section(self):
            old = self._schedule
            self._schedule = new
            self._cleanup_interval = interval
        if old is not None:
            old.cancel()

    # ---- whole-cache views -----------------------------------------------

    cpdef list _snapshot(self, int kind):
        """Live keys (0), values (1) or items (2), least recent first."""
        cdef PyObject **refs
        cdef Py_ssize_t n, k
        with cython.critical_section(self):
            self._expire_due(_begin(self, False))
            # references first, Python objects after (see ccpy_refs)
            refs = ccpy_refs(&self.t, 1 if kind == 0 else 2 if kind == 1 else 3, &n)
        try:
            if kind == 2:
                return [(<object>refs[k], <object>refs[k + 1]) for k in range(0, n, 2)]
            return [<object>refs[k] for k in range(n)]
        finally:
            if refs != NULL:
                ccpy_refs_free(refs, n)

    def __len__(self):
        with cython.critical_section(self):
            self._expire_due(_begin(self, False))
            return self.t.count

    def __iter__(self):
        return iter(self._snapshot(0))

    def __reversed__(self):
        return reversed(self._snapshot(0))

    def keys(self):
        return CacheKeysView(self)

    def values(self):
        return CacheValuesView(self)

    def items(self):
        return CacheItemsView(self)

    def __eq__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        return dict(self._snapshot(2)) == dict(other.items())

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None

    # ---- statistics ------------------------------------------------------

    def stats(self):
        """A :class:`CacheStats` snapshot, taken atomically."""
        cdef _Counters c
        with cython.critical_section(self):
            self._expire_due(_begin(self, False))
            c = _counters(&self.t, self._accounting, self._rejected)
        return CacheStats(c.hits, c.misses, c.evictions, c.expirations, c.size,
                          self._max_size_given, c.memory,
                          self._memory_limit if self._memory_limit else None, c.rejected)

    @cython.critical_section
    def reset_stats(self):
        """Zero hits, misses, evictions and expirations."""
        self.t.hits = self.t.misses = self.t.evictions = self.t.expirations = 0
        self._rejected = 0

    # ---- configuration ---------------------------------------------------

    @property
    def max_size(self):
        return self._max_size_given

    @property
    def default_ttl(self):
        return None if self._default_ttl == CC_NEVER else self._default_ttl

    @property
    def memory_limit_mb(self):
        return self._memory_limit_mb

    @property
    def memory_limit_bytes(self):
        return self._memory_limit if self._memory_limit else None

    @property
    def memory_bytes(self):
        cdef uint64_t memory
        with cython.critical_section(self):
            memory = self.t.memory if self._accounting else 0
        return memory

    @property
    def getsizeof(self):
        return self._getsizeof

    @property
    def cleanup_interval(self):
        return self._cleanup_interval

    @property
    def eviction_callback(self):
        return self._callback

    @property
    def clock(self):
        return self._clock

    def __repr__(self):
        return cache_repr(self)

    # ---- copying and pickling --------------------------------------------

    cdef Py_ssize_t _collect(self, PyObject ***refs, double **times) except -1:
        """Keys and values (ccpy_refs) and each entry's deadline and own
        TTL, least recent first, without allocating Python objects; the
        caller frees both.  Returns the number of refs (2 per entry)."""
        cdef Py_ssize_t n, k = 0
        cdef uint32_t i = self.t.head
        refs[0] = ccpy_refs(&self.t, 3, &n)
        times[0] = NULL
        if n:
            times[0] = <double *>PyMem_Malloc(n * sizeof(double))
            if times[0] == NULL:
                ccpy_refs_free(refs[0], n)
                raise MemoryError()
            while i != CC_NIL:
                times[0][k] = self.t.entries[i].expires
                times[0][k + 1] = cc_lru_ttl_of(&self.t, i)
                i = self.t.entries[i].next
                k += 2
        return n

    def _dump(self, bint absolute):
        """[(key, value, deadline or seconds left, own ttl)], least recent
        first; inf for no expiry."""
        cdef double now
        cdef PyObject **refs = NULL
        cdef double *times = NULL
        cdef Py_ssize_t n = 0, k
        with cython.critical_section(self):
            now = _begin(self, True)
            self._expire_due(now)
            now = _now(self, now)
            n = self._collect(&refs, &times)
        try:
            return [(<object>refs[k], <object>refs[k + 1],
                     times[k] if absolute or times[k] == CC_NEVER else times[k] - now,
                     times[k + 1]) for k in range(0, n, 2)]
        finally:
            if refs != NULL:
                ccpy_refs_free(refs, n)
            PyMem_Free(times)

    def _load(self, items, bint absolute):
        """Add entries produced by _dump, in order."""
        cdef double now
        with cython.critical_section(self):
            now = _begin(self, not absolute)
        for key, value, when, own in items:
            with cython.critical_section(self):
                if when == CC_NEVER:
                    self._set(key, value, CC_NEVER)
                elif absolute:
                    self._set(key, value, own, when)
                elif when > 0:
                    self._set(key, value, own, _now(self, now) + when)

    def __copy__(self):
        return copy_cache(self)

    def __deepcopy__(self, memo):
        return deepcopy_cache(self, memo)

    def __reduce__(self):
        return reduce_cache(self, "c")

    def _check(self):
        """Run the C structure's full consistency check (tests)."""
        return bool(cc_lru_check(&self.t)) and (
            self._policy == NULL or bool(cc_policy_check(self._policy, &self.t)))

    def _policy_state(self):
        """The policy's window target and segment sizes, or None for LRU (tests)."""
        if self._policy == NULL:
            return None
        return {"window_max": self._policy.window_max,
                "sizes": {"window": self._policy.n[1], "probation": self._policy.n[2],
                          "protected": self._policy.n[3]},
                "agings": self._policy.agings}

    def _raw(self):
        """[(key, value, deadline)] least recent first, expired entries
        included, without changing anything (tests)."""
        cdef PyObject **refs = NULL
        cdef double *times = NULL
        cdef Py_ssize_t n = 0, k
        with cython.critical_section(self):
            n = self._collect(&refs, &times)
        try:
            return [(<object>refs[k], <object>refs[k + 1], times[k]) for k in range(0, n, 2)]
        finally:
            if refs != NULL:
                ccpy_refs_free(refs, n)
            PyMem_Free(times)


# ---- time ------------------------------------------------------------------
# Module-level inline functions rather than methods, so that they inline on
# the hit path even though LRUCache can be subclassed.

cdef inline double _begin(Cache self, bint need) except? -1.0:
    """The user clock's time for this operation, read before anything else
    (it is Python code).  NAN with the built-in clock, which C reads where a
    deadline is checked (cc_clock_passed: a coarse read, and a precise one
    only near the deadline), and NAN when neither this operation nor any
    entry needs a time."""
    if self._clock is None or not (need or self.t.expiry.len):
        return NAN
    return _user_time(self._clock)


cdef inline bint _passed(Cache self, double deadline, double now) noexcept:
    """Has deadline passed, at this operation's time `now` (from _begin)?"""
    return ccpy_passed(self._clock is not None, deadline, now)


cdef inline uint32_t _capacity(uint64_t max_size) noexcept:
    """A policy's capacity: the table holds one entry more while it evicts."""
    return <uint32_t>(max_size if max_size < CC_MAX_ENTRIES else CC_MAX_ENTRIES - 1)


cdef inline int _policy_insert(Cache self, object key, object value, Py_hash_t h, double now,
                               double ttl, double expires, bint sized, uint64_t size,
                               Py_ssize_t expired, ccpy_dead_t *dead) except -1:
    """Cache._set's insert under a policy, into the caller's `dead` (it lets
    go of them): entry `expired` (or -1) leaves first, the new entry joins
    the window, and only then does the policy evict (the candidate leaving
    the window may lose to the victim: an admission rejection).  Room for a
    memory limit is made before, as for LRU.  The entry gets its size and
    deadline before the policy sees it, so that one C call both inserts and
    names the first entry to evict; if its deadline cannot be stored
    (MemoryError), it leaves the table unseen by the policy, and nothing is
    evicted."""
    cdef cc_policy_t *p = self._policy
    cdef uint32_t j
    cdef int status
    if expired >= 0:
        self._take(expired, dead)
        self.t.expirations += 1
    self._purge(now, dead)
    if self._memory_limit:
        ccpy_policy_evict(&self.t, p, self._memory_limit, size, -1, dead)
    status = cc_policy_reserve(p, &self.t)
    if status == CC_OK:
        status = cc_lru_insert(&self.t, <void *>key, <void *>value, h, &j)
    if status != CC_OK:
        ccpy_status_error(status)
    Py_INCREF(key)
    Py_INCREF(value)
    if sized:
        cc_lru_set_size(&self.t, j, size)
    if ttl != CC_NEVER:
        status = cc_lru_set_expiry(&self.t, j, expires, ttl)
        if status != CC_OK:
            ccpy_take(&self.t, j, dead)             # not the policy's yet
            ccpy_status_error(status)
    ccpy_policy_evict_from(&self.t, p, cc_policy_insert(p, &self.t, j), self._memory_limit, 0,
                           j, dead)
    return 0


cdef inline object _policy_counted_get(Cache self, object key):
    """_counted_get under a policy: the hit is the policy's (a byte for a
    main-space entry, the LRU move for a window one)."""
    cdef double now = _begin(self, False)
    cdef Py_ssize_t i = ccpy_find(&self.t, key, hash(key))
    if i >= 0:
        if not _passed(self, self.t.entries[i].expires, now):
            cc_policy_hit(self._policy, &self.t, i)
            self.t.hits += 1
            return <object>self.t.entries[i].value
        self._drop_expired(i)
    self.t.misses += 1
    return _MISSING


cdef inline object _any_counted_get(Cache self, object key):
    """A Cache's counted lookup, of whichever policy (LRUCache's [] and get
    call _counted_get itself)."""
    if self._policy == NULL:
        return _counted_get(self, key)
    return _policy_counted_get(self, key)


cdef inline object _counted_get(Cache self, object key):
    """The live value for key, counted as a hit and made most recent, or
    _MISSING (a miss; an expired entry is dropped).  LRU only: [], get,
    get_or_set, setdefault and getters all look up through here or
    _policy_counted_get."""
    cdef double now = _begin(self, False)
    cdef Py_ssize_t i = ccpy_find(&self.t, key, hash(key))
    if i >= 0:
        if not _passed(self, self.t.entries[i].expires, now):
            cc_lru_move_to_end(&self.t, i)
            self.t.hits += 1
            return <object>self.t.entries[i].value
        self._drop_expired(i)
    self.t.misses += 1
    return _MISSING


cdef int _check_total(cc_lru_t *t, uint64_t size, uint64_t old, object key) except -1:
    """Refuse an entry size that would wrap the memory total around."""
    if size > old and size - old > UINT64_MAX - t.memory:
        raise memory_overflow(t.memory, size, key)
    return 0


cdef inline double _now(Cache self, double now) noexcept:
    return cc_clock_precise() if self._clock is None else now



# LRUGetter is called through vectorcall, installed by hand below (Cython
# gives an instance's __call__ only tp_call, which builds an argument tuple
# on every call): a hit then costs about one get().
ctypedef object (*_vectorcall_t)(PyObject *, PyObject **, size_t, PyObject *)

cdef extern from "Python.h":
    Py_ssize_t PyVectorcall_NARGS(size_t nargsf)


@cython.final
cdef class LRUGetter:
    """``getter(key, default=None)``: the cache's value on a hit, else
    ``on_miss(key, default)``.  Made by :meth:`LRUCache.getter`."""

    cdef _vectorcall_t _vectorcall
    cdef Cache _cache
    cdef object _on_miss

    def __cinit__(self):
        self._vectorcall = _getter_vectorcall

    def __init__(self, Cache cache not None, on_miss):
        if not callable(on_miss):
            raise TypeError(f"on_miss must be callable, got {on_miss!r}")
        self._cache = cache
        self._on_miss = on_miss

    def __call__(self, key, default=None):
        return _getter_call(self, key, default)

    @property
    def cache(self):
        return self._cache

    @property
    def on_miss(self):
        return self._on_miss

    def __repr__(self):
        return f"<LRUGetter of {self._cache!r} on_miss={self._on_miss!r}>"


cdef object _getter_call(LRUGetter self, object key, object default):
    # reentrancy: the lookup runs the key's __hash__/__eq__ as get() does,
    # inside the cache's critical section; on_miss runs after it, with
    # nothing held
    cdef Cache cache = self._cache
    cdef object value
    if cache is None:
        raise TypeError("LRUGetter was not initialized (use LRUCache.getter)")
    with cython.critical_section(cache):
        value = _any_counted_get(cache, key)
    if value is _MISSING:
        return self._on_miss(key, default)
    return value


cdef object _getter_vectorcall(PyObject *self, PyObject **args, size_t nargsf,
                               PyObject *kwnames):
    # the C signature of vectorcallfunc: a new reference, or NULL with the
    # exception set (which is how Cython returns an object that raised)
    cdef Py_ssize_t n = PyVectorcall_NARGS(nargsf)
    if kwnames == NULL:
        if n == 1:
            return _getter_call(<LRUGetter>self, <object>args[0], None)
        if n == 2:
            return _getter_call(<LRUGetter>self, <object>args[0], <object>args[1])
    # keywords or a wrong count: tp_call's argument parsing (the slot
    # wrapper calls it directly, not through vectorcall) handles them
    cdef tuple names = () if kwnames == NULL else <tuple>kwnames
    positional = tuple([<object>args[i] for i in range(n)])
    keywords = {names[i]: <object>args[n + i] for i in range(len(names))}
    return LRUGetter.__call__(<object>self, *positional, **keywords)


cdef void _install_getter_vectorcall():
    cdef LRUGetter probe = LRUGetter.__new__(LRUGetter)
    ccpy_install_vectorcall(<PyTypeObject *>LRUGetter,
                            <Py_ssize_t>(<char *>&probe._vectorcall - <char *><PyObject *>probe), 0)


_install_getter_vectorcall()


# ---- the lru_cache wrapper ---------------------------------------------------
# The call path is C (_lru_call.h): a vectorcall entry point installed on this
# type at import.  This class builds the state and provides the rest of the
# decorated function's API.

cdef object _KWD_MARK = object()      # separates positional from keyword arguments


def _default_sizer(key, value):
    return check_entry_size(_getsizeof(key) + _getsizeof(value), key)


@cython.final
cdef class _lru_cache_wrapper:
    """A function wrapped by lru_cache (compiled); see corecache.lru_cache."""

    cdef ccpy_lruwrap_t w
    cdef readonly object _func
    cdef object _clock
    cdef object _clock_fn
    cdef object _sizer
    cdef object _slow_miss
    cdef object _memory_limit_mb
    cdef readonly object _flight    # SingleFlight of single_flight=True
    cdef dict __dict__
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        cc_lru_init(&self.w.t)
        self.w.vectorcall = ccpy_lru_call_uninit
        self.w.kwd_mark = <PyObject *>_KWD_MARK
        self.w.maxsize = -1
        self.w.ttl = CC_NEVER
        self._flight = SingleFlight("single_flight: the call")

    def __init__(self, user_function, maxsize, typed, *, ttl=None, memory_limit_mb=None,
                 single_flight=False, clock=None, skip=0):
        if not callable(user_function):
            raise TypeError("the first argument must be callable")
        if self._func is not None:
            raise RuntimeError("_lru_cache_wrapper.__init__ called twice")
        self._func = user_function
        self.w.func = <PyObject *>user_function
        if type(skip) is not int or not 0 <= skip <= 1:
            raise ValueError(f"skip must be 0 or 1 (leading arguments left out of the key), "
                             f"got {skip!r}")
        if maxsize is None:
            self.w.maxsize = -1
        else:
            # clipped, not refused: functools' pure lru_cache takes any int
            self.w.maxsize = max(PyNumber_AsSsize_t(maxsize, NULL), 0)
        self.w.typed = bool(typed)
        self.w.skip = skip
        seconds = check_ttl(ttl, "ttl")
        self.w.ttl = CC_NEVER if seconds is None else seconds
        limit = check_memory_limit_mb(memory_limit_mb)
        self._memory_limit_mb = memory_limit_mb
        if limit is not None:
            status = cc_lru_track_sizes(&self.w.t)
            if status != CC_OK:
                ccpy_status_error(status)
            self.w.memory_limit = limit
            self._sizer = _default_sizer
            self.w.sizer = <PyObject *>self._sizer
        check_callable(clock, "clock")
        if clock is not None:
            self._clock = clock
            self._clock_fn = lambda: _user_time(clock)
            self.w.clock = <PyObject *>self._clock_fn
        if single_flight:
            self._slow_miss = _single_flight_miss
            self.w.slow_miss = <PyObject *>self._slow_miss
        # the call path, chosen once (see _lru_call.h)
        if self.w.maxsize == 0:
            self.w.vectorcall = ccpy_lru_call_uncached
        elif single_flight:
            self.w.vectorcall = ccpy_lru_call_single_flight
        elif not self.w.typed and self.w.skip == 0:
            self.w.vectorcall = ccpy_lru_call_untyped
        else:
            self.w.vectorcall = ccpy_lru_call

    def __dealloc__(self):
        ccpy_clear(&self.w.t)

    # ---- functools' API --------------------------------------------------

    cdef double _now(self) except? -1.0:
        """The user clock's time when needed, read (in the critical section)
        before the table is touched."""
        if self._clock is None or not self.w.t.expiry.len:
            return NAN
        return _user_time(self._clock)

    cdef Py_ssize_t _purge_expired(self) except -1:
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        cdef double now
        cdef Py_ssize_t n
        with cython.critical_section(self):
            now = self._now()
            try:
                n = ccpy_purge(&self.w.t, self._clock is not None, now, &dead)
            finally:
                _let_go_quietly(&dead)
        return n

    def cache_info(self):
        """Report cache statistics: CacheInfo(hits, misses, maxsize, currsize)."""
        cdef _Counters c
        self._purge_expired()
        with cython.critical_section(self):
            c = _counters(&self.w.t, False, 0)
        return _CacheInfo(c.hits, c.misses, None if self.w.maxsize < 0 else self.w.maxsize, c.size)

    def cache_clear(self):
        """Clear the cache and its statistics."""
        with cython.critical_section(self):
            self.w.t.hits = self.w.t.misses = self.w.t.evictions = self.w.t.expirations = 0
            self.w.rejected = 0
            ccpy_clear(&self.w.t)

    # ---- what functools lacks --------------------------------------------

    def cache_stats(self):
        """The full statistics as a :class:`CacheStats` snapshot."""
        cdef _Counters c
        self._purge_expired()
        with cython.critical_section(self):
            c = _counters(&self.w.t, self.w.sizer != NULL, self.w.rejected)
        return CacheStats(c.hits, c.misses, c.evictions, c.expirations, c.size,
                          None if self.w.maxsize < 0 else self.w.maxsize, c.memory,
                          self.w.memory_limit if self.w.memory_limit else None, c.rejected)

    def cache_invalidate(self, *args, **kwargs):
        """Drop the entry these arguments map to; returns whether it existed."""
        key, h = self._make_key(args, kwargs)
        return self._discard(key, h)

    def cache_evict(self, n):
        """Evict up to `n` least recently used entries; returns how many."""
        cdef Py_ssize_t k, count = check_count(n, "n")
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        with cython.critical_section(self):
            try:
                for k in range(count):
                    if self.w.t.count == 0:
                        return k
                    ccpy_take(&self.w.t, self.w.t.head, &dead)
                    self.w.t.evictions += 1
                return count
            finally:
                _let_go_quietly(&dead)

    def cache_pause_writes(self):
        """Compute but store nothing until cache_resume_writes() (counted in
        cache_stats().rejected); hits are still served."""
        with cython.critical_section(self):
            self.w.paused = 1

    def cache_resume_writes(self):
        """Store results again after cache_pause_writes()."""
        with cython.critical_section(self):
            self.w.paused = 0

    @property
    def cache_writes_paused(self):
        return bool(self.w.paused)

    # ---- for the async wrapper and single flight -------------------------

    def _make_key(self, tuple args, dict kwargs):
        """(key, hash) of a call with these arguments, as the call path builds them."""
        cdef Py_ssize_t nargs = len(args), nkw = len(kwargs), i = 0
        cdef ccpy_key_t k
        cdef PyObject **vec = <PyObject **>PyMem_Malloc((nargs + nkw + 1) * sizeof(PyObject *))
        if vec == NULL:
            raise MemoryError()
        try:
            for a in args:
                vec[i] = <PyObject *>a
                i += 1
            values = list(kwargs.values())
            for v in values:
                vec[i] = <PyObject *>v
                i += 1
            names = tuple(kwargs) if nkw else None
            ccpy_key_init(&k, &self.w, vec, nargs, <PyObject *>names if nkw else NULL, 0)
            return ccpy_key_object(&k), k.hash
        finally:
            PyMem_Free(vec)

    cdef Py_ssize_t _find(self, key, Py_hash_t h, double now) except -2:
        """Index of key's live entry or -1 (an expired one is dropped)."""
        cdef ccpy_key_t k
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        cdef Py_ssize_t i
        k.raw = <PyObject *>key
        k.hash = h
        i = ccpy_key_find(&self.w.t, &k)
        if i >= 0 and ccpy_passed(self._clock is not None, self.w.t.entries[i].expires, now):
            ccpy_take(&self.w.t, i, &dead)
            self.w.t.expirations += 1
            _let_go_quietly(&dead)
            return -1
        return i

    def _lookup(self, tuple args, dict kwargs):
        """A counted lookup: (True, value) on a hit, else (False, (key, hash))."""
        key, h = self._make_key(args, kwargs)
        cdef double now
        cdef Py_ssize_t i
        with cython.critical_section(self):
            now = self._now()
            i = self._find(key, h, now)
            if i >= 0:
                cc_lru_move_to_end(&self.w.t, i)
                self.w.t.hits += 1
                value = <object>self.w.t.entries[i].value   # before allocating the tuple
            else:
                self.w.t.misses += 1
        if i >= 0:
            return True, value
        return False, (key, h)

    def _peek(self, key, Py_hash_t h, default=None):
        """The value stored under (key, hash), uncounted, or default."""
        cdef double now
        cdef Py_ssize_t i
        with cython.critical_section(self):
            now = self._now()
            i = self._find(key, h, now)
            return default if i < 0 else <object>self.w.t.entries[i].value

    def _store(self, key, Py_hash_t h, value):
        """Store a computed value under (key, hash), as a call would."""
        cdef ccpy_key_t k
        k.raw = <PyObject *>key
        k.hash = h
        ccpy_lru_store(<PyObject *>self, &self.w, &k, <PyObject *>value, -1)

    def _discard(self, key, Py_hash_t h):
        cdef double now
        cdef Py_ssize_t i
        cdef ccpy_dead_t dead = _NOTHING_DROPPED
        with cython.critical_section(self):
            now = self._now()
            i = self._find(key, h, now)
            if i >= 0:
                ccpy_take(&self.w.t, i, &dead)
        _let_go_quietly(&dead)
        return i >= 0

    # ---- behaving like a function ----------------------------------------

    def __get__(self, instance, owner):
        if instance is None:
            return self
        return PyMethod_New(self, instance)

    def __reduce__(self):
        return self.__qualname__

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def _check(self):
        """Run the C structure's full consistency check (tests)."""
        return bool(cc_lru_check(&self.w.t))


cdef Py_ssize_t _state_offset():
    cdef _lru_cache_wrapper probe = _lru_cache_wrapper.__new__(_lru_cache_wrapper)
    return <char *>&probe.w - <char *><PyObject *>probe


_offset = _state_offset()
ccpy_set_wrapper_offset(_offset)
ccpy_install_vectorcall(<PyTypeObject *>_lru_cache_wrapper, _offset, 1)

from corecache._lru_decorators import make_api, single_flight_miss as _single_flight_miss

lru_cache, cache, cached_method = make_api(_lru_cache_wrapper, Cache)


cdef class LRUCache(Cache):
    """A mapping that keeps the most recently used entries, with per-entry
    TTLs, a count and a memory limit, eviction callbacks and statistics: a
    :class:`Cache` whose policy is ``"lru"``.

    :param max_size: the most live entries kept (a positive int).
    :param default_ttl: seconds an entry lives when ``set`` gives no TTL;
        None (or ``math.inf``) for no expiry.
    :param memory_limit_mb: the most MiB the entries may take, as measured by
        ``getsizeof``; None for no memory limit.
    :param getsizeof: ``getsizeof(key, value) -> int`` bytes of one entry;
        default ``sys.getsizeof(key) + sys.getsizeof(value)``.
    :param cleanup_interval: seconds between sweeps of the shared background
        cleaner; None for lazy expiry only.
    :param eviction_callback: ``callback(key, value)``, called for every
        entry the cache removes on its own (limits, expiry, shrinking).
    :param clock: zero-argument callable returning monotonic seconds.
    """

    _POLICY_FIXED = True

    def __init__(self, max_size=1000, default_ttl=None, *, memory_limit_mb=None,
                 getsizeof=None, cleanup_interval=None, eviction_callback=None,
                 clock=None):
        Cache.__init__(self, max_size, default_ttl, memory_limit_mb=memory_limit_mb,
                       getsizeof=getsizeof, cleanup_interval=cleanup_interval,
                       eviction_callback=eviction_callback, clock=clock, policy="lru")

    # the hit paths without the policy's branch (Cache's go through
    # _any_counted_get)
    @cython.critical_section
    def __getitem__(self, key):
        value = _counted_get(self, key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    @cython.critical_section
    @cython.binding(False)
    @cython.embedsignature.format('clinic')
    def get(self, key, default=None):
        """The value for key (counted as a hit), or `default` (a miss)."""
        value = _counted_get(self, key)
        return default if value is _MISSING else value


MutableMapping.register(Cache)


# ---- garbage collection ----------------------------------------------------
# Cython's slots only see the object fields; these add the table's keys and
# values, and are installed on the types below.

cdef gc_traverse _base_traverse = <gc_traverse>(<PyTypeObject *>Cache).tp_traverse
cdef gc_clear _base_clear = <gc_clear>(<PyTypeObject *>Cache).tp_clear


cdef int _lru_traverse(PyObject *o, gc_visit visit, void *arg) noexcept:
    cdef int r = ccpy_traverse(&(<Cache>o).t, <visitproc>visit, arg)
    return r if r else _base_traverse(o, visit, arg)


cdef int _lru_clear(PyObject *o) noexcept:
    ccpy_pclear(&(<Cache>o).t, (<Cache>o)._policy)
    return _base_clear(o)


# LRUCache inherited Cache's slots when its type was readied, before these
for _type in (Cache, LRUCache):
    (<PyTypeObject *>_type).tp_traverse = <traverseproc>_lru_traverse
    (<PyTypeObject *>_type).tp_clear = <inquiry>_lru_clear
    PyType_Modified(<PyTypeObject *>_type)
del _type

cdef gc_traverse _wrapper_base_traverse = <gc_traverse>(<PyTypeObject *>_lru_cache_wrapper).tp_traverse
cdef gc_clear _wrapper_base_clear = <gc_clear>(<PyTypeObject *>_lru_cache_wrapper).tp_clear


cdef int _wrapper_traverse(PyObject *o, gc_visit visit, void *arg) noexcept:
    cdef int r = ccpy_traverse(&(<_lru_cache_wrapper>o).w.t, <visitproc>visit, arg)
    return r if r else _wrapper_base_traverse(o, visit, arg)


cdef int _wrapper_clear(PyObject *o) noexcept:
    ccpy_clear(&(<_lru_cache_wrapper>o).w.t)
    return _wrapper_base_clear(o)


(<PyTypeObject *>_lru_cache_wrapper).tp_traverse = <traverseproc>_wrapper_traverse
(<PyTypeObject *>_lru_cache_wrapper).tp_clear = <inquiry>_wrapper_clear
PyType_Modified(<PyTypeObject *>_lru_cache_wrapper)
