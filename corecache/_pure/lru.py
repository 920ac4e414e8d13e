"""LRUCache and lru_cache, pure Python: the twin of corecache/_lru.pyx, with
the same behaviour, messages and statistics, used where the compiled core
is not (no wheel for this Python, PyPy, GraalPy, CORECACHE_NO_EXTENSIONS).

Layout: one _Table per cache (an LRUCache is one; an lru_cache wrapper
holds one), as each compiled one has a cc_lru_t.  Its index is a plain
dict from key to entry (a list); the recency order is an ``OrderedDict``
from the entry's id to the entry (first: the least recently used), so a hit
is a dict lookup and a ``move_to_end``, both in C.  User code (a key's
__hash__ and __eq__) runs only in the plain dict's operations, which stay
sound whatever that code does to the dict; the OrderedDict, whose C code
does not (an __eq__ that changes it in the middle of its own lookup
crashes CPython), only ever sees ints.
Entries with a deadline are also in a heap of (deadline, seq, entry); an
item whose seq is not its entry's current one is stale and is skipped, and
the heap is rebuilt when stale items outnumber live ones.

Invariants (checked by _check):
  - the entries in the index are exactly the live ones; a removed entry
    has seq -1 and holds neither key nor value, so a stale heap item keeps
    nothing alive;
  - _memory is the sum of the live entries' sizes and _timed the number of
    live entries with a deadline.

reentrancy: user code runs inside index operations (a key's __hash__ and
__eq__), from the clock and getsizeof (both called before the lock is
taken), from eviction callbacks and from the __del__ of whatever the cache
lets go.  So every removal accounts for the entry the index actually gave
back, whatever code its lookup ran (_forget); every insert goes through
setdefault and looks at what it got; and nothing a table drops is released
while an operation is under way: operations collect what they drop in a
list, and the callbacks run and the references go only once the lock is
released (_release).  One RLock per table (as functools' pure lru_cache
has), so code that re-enters from the same thread goes through; what it
guards is written down in corecache/_locking.h.  Builtins
are bound at import, never looked up in an operation: a program may
replace ``builtins.len`` with an lru_cache of it.
"""
from __future__ import annotations

import heapq
import math
import operator
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping, MutableMapping
from time import monotonic
from types import GenericAlias
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from .._lru_cleaner import cleaner
from .._lru_common import cache_repr, check_items, copy_cache, deepcopy_cache, reduce_cache
from .._flight import SingleFlight
from .._util import write_unraisable
from .._lru_views import CacheItemsView, CacheKeysView, CacheValuesView
from .._checks import (read_clock as _user_time, check_callable, check_count,
                       check_entry_size, check_max_size, check_memory_limit_mb, check_seconds,
                       check_ttl, entry_too_large, memory_overflow, validate_changes)
from ..stats import CacheStats

__all__ = ["Cache", "LRUCache", "lru_cache", "cache", "cached_method"]

INF = math.inf
NAN = math.nan
MAX_ENTRIES = (1 << 32) - 2         # what the compiled table holds
MAX_MEMORY = (1 << 64) - 1          # what its memory total holds
_MISSING = object()
_getsizeof = sys.getsizeof
_len = len
_heappush = heapq.heappush
_heappop = heapq.heappop


def _default_getsizeof(key: Any, value: Any) -> int:
    return _getsizeof(key) + _getsizeof(value)


def _resolve_ttl(ttl: Any, default: float) -> float:
    if ttl is None:
        return default
    if type(ttl) is float or type(ttl) is int:
        if ttl > 0:
            return float(ttl)
    return check_ttl(ttl)  # type: ignore[return-value]


# An entry is a list (cheaper to make than an object, as cheap to read):
#   [key, value, deadline (None: none), its own TTL (touch), size, seq, token]
# A live entry has seq >= 0; a removed one has seq -1 and holds neither key
# nor value.
KEY, VALUE, EXPIRES, TTL, SIZE, SEQ, TOKEN = range(7)
# The token is the entry's key in the recency order: an int the table
# hands out in sequence, unique among its entries.  (Not id(entry): ids are
# aligned addresses whose low bits are all zero, and the order's dict then
# probes through chains of collisions on every hit; sequential ints are
# where a dict is at its best.)

# Whether this interpreter runs with the GIL (a free-threaded build that
# started without it never gets it back for this module's objects' sake:
# the GIL is only ever switched on at run time, never off).  With it, an
# LRU hit takes no lock (see "Hits without the lock" in Cache).
_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()


class _Table:
    """The structure both LRUCache and the lru_cache wrapper are built on.
    Its methods take no lock and call no user code except through the
    index; callers hold the lock and release what was dropped after."""

    def _table_init(self) -> None:
        self._lock = threading.RLock()
        # bound once: acquire()/release() in try/finally costs half of a
        # `with` statement, which the hit path notices
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._od: Dict[Any, list] = {}                    # key -> entry
        self._order: "OrderedDict[int, list]" = OrderedDict()  # id(entry) -> entry
        self._heap: List[Tuple[float, int, list]] = []
        self._seq = 0
        self._ntok = 0                                    # the last token handed out
        self._timed = 0
        self._memory = 0
        self._hits = self._misses = self._evictions = self._expirations = 0
        # with an eviction policy (Cache): the model, and its tokens (the
        # entries' ids) -> entries
        self._policy: Any = None
        self._ptok: Optional[dict] = None

    def _forget(self, e: list, dropped: list) -> None:
        """Account for an entry the index gave back.  One of an index that a
        clear() replaced meanwhile (while the removal ran a key's __eq__)
        was accounted for by the clear already."""
        if e[SEQ] >= 0:
            e[SEQ] = -1
            self._memory -= e[SIZE]
            if e[EXPIRES] is not None:
                self._timed -= 1
            ptok = self._ptok
            if ptok is not None and ptok.pop(id(e), None) is not None:
                self._policy.remove(id(e))
        dropped.append((e[KEY], e[VALUE]))
        e[KEY] = e[VALUE] = None

    def _unlink(self, e: list, dropped: list) -> bool:
        """Take live entry e out; False if it was gone (removed by the code
        its own lookup ran)."""
        if e[SEQ] < 0:
            return False
        try:
            got = self._od.pop(e[KEY])         # the key's __eq__ may run
        except KeyError:
            return False
        self._order.pop(got[6], None)
        self._forget(got, dropped)
        return got is e

    def _take_first(self, dropped: list) -> bool:
        """Take the least recently used entry out, into `dropped`; False if
        the index gave nothing back (the code its key's __eq__ ran took the
        entry out first).  _forget written out: no Python call comes between
        the removal and its accounting, since at the recursion limit (a
        callback setting without end) the call fails and the entry would be
        lost uncounted.  (Literal indices: KEY 0, VALUE 1, EXPIRES 2, SIZE 4,
        SEQ 5; every evicting set comes through here.)"""
        order = self._order
        e = order.popitem(False)[1]
        try:
            got = self._od.pop(e[0], None)          # the key's __eq__ may run
        except BaseException:
            # and raise: then nothing was taken, e is first again (unless
            # that code removed it, or cleared the table)
            if e[5] >= 0 and order is self._order and e[6] not in order:
                order[e[6]] = e
                order.move_to_end(e[6], False)
            raise
        if got is not e:
            if got is None:
                return False
            order.pop(got[6], None)
        if got[5] >= 0:
            got[5] = -1
            self._memory -= got[4]
            if got[2] is not None:
                self._timed -= 1
        dropped.append((got[0], got[1]))
        got[0] = got[1] = None
        return True

    def _evict_first(self, dropped: list) -> None:
        if self._take_first(dropped):
            self._evictions += 1

    def _evict_to(self, max_count: int, limit: int, extra: int, keep: Optional[list],
                  dropped: list) -> None:
        """Evict the least recently used until at most max_count entries are
        left and, with a limit (0: none), memory + extra fits in it; never
        `keep`."""
        # self._od afresh each time: an eviction may run a key's __eq__ (on
        # a full-hash collision), which may clear the table
        while _len(self._order) > max_count:
            if keep is not None and next(iter(self._order.values())) is keep:
                break
            self._evict_first(dropped)
        if limit:
            while self._order and self._memory + extra > limit:
                if keep is not None and next(iter(self._order.values())) is keep:
                    break
                self._evict_first(dropped)

    def _set_deadline(self, e: list, expires: Optional[float], ttl: float) -> None:
        if (e[EXPIRES] is None) != (expires is None):
            self._timed += 1 if expires is not None else -1
        e[EXPIRES] = expires
        e[TTL] = ttl if expires is not None else INF
        self._seq += 1              # any older heap item of e is stale now
        e[SEQ] = self._seq
        if expires is not None:
            _heappush(self._heap, (expires, self._seq, e))
            if _len(self._heap) > 2 * self._timed + 16:
                heap = [item for item in self._heap if item[2][SEQ] == item[1]]
                heapq.heapify(heap)
                self._heap = heap

    def _purge(self, now: float, dropped: list) -> int:
        """Remove every entry whose deadline is at or before `now`."""
        n = 0
        while self._heap:
            expires, seq, e = self._heap[0]
            if e[SEQ] != seq:
                _heappop(self._heap)
                continue
            if expires > now:
                break
            _heappop(self._heap)
            if self._unlink(e, dropped):
                self._expirations += 1
                n += 1
        return n

    def _drop_all(self) -> Any:
        """Empty the table (counters kept); returns the old index, whose
        entries go with it, to be dropped once the lock is released.  A
        lookup under way in the old index (the clear came from a key's
        __eq__) ends there, as if it came before the clear."""
        old = self._od
        self._od = {}
        self._order = OrderedDict()
        self._heap = []
        self._timed = 0
        self._memory = 0
        for e in dict.values(old):
            e[SEQ] = -1
        if self._policy is not None:
            self._policy.clear()
            self._ptok = {}
        return old

    # ---- under an eviction policy (Cache) ---------------------------------
    # The same steps, in the same order, as the compiled Cache's (and the
    # same model: corecache/_pure/adaptive.py is csrc/cc_policy.c's twin).

    def _policy_take(self, token: int, dropped: list) -> None:
        """Take out the entry of a token the policy has already forgotten."""
        e = self._ptok.pop(token)          # type: ignore[union-attr]
        self._unlink(e, dropped)

    def _take_oldest(self, dropped: list) -> None:
        """popitem's, evict(n)'s and a memory limit's entry: the policy's
        oldest (AdaptivePolicy.oldest)."""
        token = self._policy.oldest()
        self._policy.remove(token)
        self._policy_take(token, dropped)

    def _policy_evict(self, limit: int, extra: int, keep: Optional[list],
                      dropped: list) -> None:
        """Every entry the policy evicts (a rejected candidate is one), then,
        with a limit, the oldest until memory + extra fits; never `keep`."""
        p = self._policy
        while True:
            token = p.evict()
            if token is None:
                break
            self._evictions += 1
            self._policy_take(token, dropped)
        if limit:
            while _len(p) and self._memory + extra > limit:
                if keep is not None and p.oldest() == id(keep):
                    break
                self._evictions += 1
                self._take_oldest(dropped)

    def _entries(self) -> List[list]:
        """The live entries, least recently used first (or in the policy's
        order)."""
        if self._policy is not None:         # the policy's order, no user code
            ptok = self._ptok
            return [ptok[t] for t in self._policy.order()]    # type: ignore[index]
        return list(self._order.values())          # no user code

    def _table_check(self, max_count: Optional[int] = None) -> bool:
        live = [(e[KEY], e) for e in self._entries()]   # may run keys' __hash__
        if max_count is None:
            max_count = self._max_size      # read after that
        current = {id(item[2]): item[0] for item in self._heap if item[2][SEQ] == item[1]}
        if _len(self._order) != _len(self._od) or \
                {e[TOKEN] for e in dict.values(self._od)} != set(self._order):
            return False
        if self._policy is not None:
            self._policy.check()
            if (_len(self._policy) != _len(self._od)
                    or any(self._ptok.get(id(e)) is not e for e in dict.values(self._od))):
                return False
        return (all(e[SEQ] >= 0 and e[KEY] is k for k, e in live)
                and self._timed == sum(e[EXPIRES] is not None for _, e in live)
                and self._memory == sum(e[SIZE] for _, e in live)
                and _len(live) <= max_count
                and all(current.get(id(e)) == e[EXPIRES] for _, e in live
                        if e[EXPIRES] is not None))


def _release(dropped: list, callback: Any, notify: int = -1) -> None:
    """Run the eviction callback on the first `notify` dropped pairs (all
    with -1), then let go of every pair: call with no lock held."""
    if callback is not None and notify:
        for key, value in (dropped if notify < 0 else dropped[:notify]):
            try:
                callback(key, value)
            except BaseException as exc:
                write_unraisable(exc, callback)
    dropped.clear()


class Cache(_Table):
    """A mapping that keeps what its eviction policy judges most useful,
    with per-entry TTLs, a count and a memory limit, eviction callbacks and
    statistics.  (Pure-Python twin; see the compiled Cache for the
    parameters and the policies: "adaptive" drives the reference model
    corecache/_pure/adaptive.py, which makes the compiled policy's
    decisions, with the entries' ids as its tokens.)"""

    __hash__ = None  # type: ignore[assignment]
    POLICIES = ("lru", "adaptive")
    _POLICY_FIXED = False             # copies and pickles pass policy= on

    def __new__(cls, *args: Any, **kwargs: Any) -> "Cache":
        # LRUCache()'s state, so that a subclass whose __init__ does not call
        # ours still gets a working cache (as the compiled __cinit__ gives)
        self = super().__new__(cls)
        self._table_init()
        self._flight = SingleFlight("get_or_set: the factory")
        self._initialized = False
        self._paused = False
        self._rejected = 0
        self._max_size_given = self._max_size = 1000
        self._default_ttl = INF
        self._memory_limit_mb = None
        self._memory_limit = 0
        self._getsizeof = self._callback = self._clock = self._sizer = None
        self._accounting = False
        self._plain = True
        self._cleanup_interval: Optional[float] = None
        self._schedule: Any = None
        self._policy_name = "lru"
        self._free_hits = _GIL
        return self

    def __init__(self, max_size: int = 1000, default_ttl: Optional[float] = None, *,
                 memory_limit_mb: Optional[float] = None,
                 getsizeof: Optional[Callable[[Any, Any], int]] = None,
                 cleanup_interval: Optional[float] = None,
                 eviction_callback: Optional[Callable[[Any, Any], Any]] = None,
                 clock: Optional[Callable[[], float]] = None, policy: str = "adaptive") -> None:
        if policy not in Cache.POLICIES:
            raise ValueError(f"policy must be one of {Cache.POLICIES}, got {policy!r}")
        max_size = check_max_size(max_size)
        ttl = check_ttl(default_ttl, "default_ttl")
        limit = check_memory_limit_mb(memory_limit_mb)
        check_callable(getsizeof, "getsizeof")
        interval = check_seconds(cleanup_interval, "cleanup_interval", allow_inf=False)
        check_callable(eviction_callback, "eviction_callback")
        check_callable(clock, "clock")
        if self._initialized:
            raise RuntimeError(f"{type(self).__name__}.__init__ called twice")
        self._initialized = True
        self._max_size_given = max_size
        self._max_size = min(max_size, MAX_ENTRIES)
        if policy == "adaptive":
            from .adaptive import AdaptivePolicy
            self._policy = AdaptivePolicy(min(self._max_size, MAX_ENTRIES - 1))
            self._ptok = {}
        self._policy_name = policy
        self._default_ttl = INF if ttl is None else ttl
        self._memory_limit_mb = memory_limit_mb
        self._memory_limit = 0 if limit is None else limit
        self._getsizeof = getsizeof
        self._callback = eviction_callback
        self._clock = clock
        self._accounting = limit is not None or getsizeof is not None
        self._sizer = (getsizeof or _default_getsizeof) if self._accounting else None
        self._free_hits = _GIL and self._policy is None and clock is None
        self._update_plain()
        self._set_cleanup_interval(interval)

    __class_getitem__ = classmethod(GenericAlias)   # LRUCache[str, int] at run time

    @property
    def policy(self) -> str:
        """The eviction policy's name (one of ``Cache.POLICIES``)."""
        return self._policy_name

    @classmethod
    def from_config(cls, config: "CacheConfig", *,
                    clock: Optional[Callable[[], float]] = None) -> "Cache":
        """Build a cache from a :class:`CacheConfig`."""
        from ..config import CacheConfig
        if not isinstance(config, CacheConfig):
            raise TypeError(f"config must be a CacheConfig, got {config!r}")
        return cls(config.max_size, config.default_ttl,
                   memory_limit_mb=config.memory_limit_mb, getsizeof=config.getsizeof,
                   cleanup_interval=config.cleanup_interval,
                   eviction_callback=config.eviction_callback, clock=clock)

    def __del__(self) -> None:
        schedule = getattr(self, "_schedule", None)
        if schedule is not None:
            schedule.cancel()

    # ---- time ------------------------------------------------------------
    # `now` is the user clock's reading for an operation, taken before the
    # lock (it is user code), or NAN when no reading was needed; with the
    # built-in clock deadlines are compared with monotonic() itself.

    def _begin(self, need: bool) -> float:
        if self._clock is None or not (need or self._timed):
            return NAN
        return _user_time(self._clock)

    def _passed(self, deadline: Optional[float], now: float) -> bool:
        if deadline is None:
            return False
        if self._clock is None:
            return monotonic() >= deadline
        return now >= deadline          # False for NAN

    def _now(self, now: float) -> float:
        return monotonic() if self._clock is None else now

    def _purge_now(self, now: float, dropped: list) -> int:
        if not self._timed:
            return 0
        if self._clock is None:
            now = monotonic()
        elif now != now:
            return 0
        return self._purge(now, dropped)

    # ---- lookups ---------------------------------------------------------

    def _live(self, key: Any, now: float, dropped: list) -> Optional[list]:
        """key's live entry, or None; an expired one is removed (into
        `dropped`, to be notified)."""
        e = self._od.get(key)
        if e is not None and e[EXPIRES] is not None and self._passed(e[EXPIRES], now):
            if self._unlink(e, dropped):
                self._expirations += 1
            return None
        return e

    def _expired_miss(self, e: list) -> None:
        """A counted lookup found e expired: drop it (notified), count a miss."""
        dropped: list = []
        with self._lock:
            if self._unlink(e, dropped):
                self._expirations += 1
            self._misses += 1
        _release(dropped, self._callback)

    # The hit path, written out in each of [], get and _lookup_counted (the
    # getter, get_or_set, setdefault): a hit is what the cache is for, and
    # every call saved shows.  The user clock is read before the lock; the
    # built-in one inside, and only for an entry with a deadline.
    #
    # Hits without the lock ([] and get, when _free_hits: a GIL build, LRU,
    # the built-in clock).  Under the GIL each step of a hit is atomic: the
    # index's get, move_to_end of an int key and `n += 1` on a slot (no
    # thread switch comes between the read and the write: CPython checks
    # for one only at calls, function entries and backward jumps).  A
    # writer under the lock may be switched out between its steps, so the
    # hit reads the value before it checks the entry is still live (a
    # removal marks seq -1 before it clears the value), tolerates the
    # entry having left the order meanwhile (then it was a hit just before
    # the removal) and counts only a plain hit or miss; an expired or
    # removed entry goes the locked way.  A hit racing an eviction may thus
    # be the entry evicted: under concurrent threads recency is as exact as
    # the interleaving, the structure and every count always.

    def _lookup_counted(self, key: Any) -> Any:
        """The live value for key, counted as a hit and made most recent, or
        _MISSING (a miss; an expired entry is dropped)."""
        clock = self._clock
        now = _user_time(clock) if clock is not None and self._timed else NAN
        self._acquire()
        try:
            e = self._od.get(key)
            if e is None:
                self._misses += 1
                return _MISSING
            expires = e[2]                  # EXPIRES
            if expires is None or (monotonic() < expires if clock is None
                                   else not now >= expires):
                p = self._policy
                if p is None:
                    try:
                        self._order.move_to_end(e[6])
                    except KeyError:        # removed by its own __hash__/__eq__
                        pass
                else:
                    try:
                        p.hit(id(e))
                    except KeyError:        # being removed (its __hash__ ran us)
                        pass
                self._hits += 1
                return e[1]                 # VALUE
        finally:
            self._release()
        self._expired_miss(e)
        return _MISSING

    def __getitem__(self, key: Any) -> Any:
        if self._free_hits:
            e = self._od.get(key)
            if e is None:
                self._misses += 1
                raise KeyError(key)
            value = e[1]                            # VALUE, then is it live?
            expires = e[2]
            if e[5] >= 0 and (expires is None or monotonic() < expires):
                try:
                    self._order.move_to_end(e[6])
                except KeyError:
                    pass
                self._hits += 1
                return value
        clock = self._clock
        now = _user_time(clock) if clock is not None and self._timed else NAN
        self._acquire()
        try:
            e = self._od.get(key)
            if e is None:
                self._misses += 1
                raise KeyError(key)
            expires = e[2]
            if expires is None or (monotonic() < expires if clock is None
                                   else not now >= expires):
                p = self._policy
                if p is None:
                    try:
                        self._order.move_to_end(e[6])
                    except KeyError:
                        pass
                else:
                    try:
                        p.hit(id(e))
                    except KeyError:
                        pass
                self._hits += 1
                return e[1]
        finally:
            self._release()
        self._expired_miss(e)
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value for key (counted as a hit), or `default` (a miss)."""
        if self._free_hits:
            e = self._od.get(key)
            if e is None:
                self._misses += 1
                return default
            value = e[1]
            expires = e[2]
            if e[5] >= 0 and (expires is None or monotonic() < expires):
                try:
                    self._order.move_to_end(e[6])
                except KeyError:
                    pass
                self._hits += 1
                return value
        clock = self._clock
        now = _user_time(clock) if clock is not None and self._timed else NAN
        self._acquire()
        try:
            e = self._od.get(key)
            if e is None:
                self._misses += 1
                return default
            expires = e[2]
            if expires is None or (monotonic() < expires if clock is None
                                   else not now >= expires):
                p = self._policy
                if p is None:
                    try:
                        self._order.move_to_end(e[6])
                    except KeyError:
                        pass
                else:
                    try:
                        p.hit(id(e))
                    except KeyError:
                        pass
                self._hits += 1
                return e[1]
        finally:
            self._release()
        self._expired_miss(e)
        return default

    def getter(self, on_miss: Callable[[Any, Any], Any]) -> "LRUGetter":
        """A callable ``getter(key, default=None)``: ``get(key)`` on a hit,
        ``on_miss(key, default)`` on a miss (see the compiled twin)."""
        return LRUGetter(self, on_miss)

    def peek(self, key: Any, default: Any = None) -> Any:
        """The value for key without counting it or making it recent."""
        now = self._begin(False)
        dropped: list = []
        with self._lock:
            e = self._live(key, now, dropped)
            value = default if e is None else e[VALUE]
        if dropped:
            _release(dropped, self._callback)
        return value

    def __contains__(self, key: Any) -> bool:
        now = self._begin(False)
        dropped: list = []
        with self._lock:
            found = self._live(key, now, dropped) is not None
        if dropped:
            _release(dropped, self._callback)
        return found

    # ---- insertion -------------------------------------------------------

    def _size_of(self, key: Any, value: Any, limited: bool) -> int:
        """reentrancy: getsizeof is user code; called with no lock held."""
        size = check_entry_size(self._sizer(key, value), key)  # type: ignore[misc]
        if limited and self._memory_limit and size > self._memory_limit:
            raise entry_too_large(size, self._memory_limit, key)
        return size

    def _set(self, key: Any, value: Any, ttl: float, deadline: float = NAN,
             if_absent: bool = False) -> Any:
        """Insert or overwrite.  `deadline`, when given, is the entry's
        expiry time itself (copies).  With `if_absent`, a live entry is left
        alone and its value returned; otherwise returns _MISSING."""
        if self._paused:
            with self._lock:
                self._rejected += 1
            return _MISSING
        timed = ttl != INF
        dropped: list = []     # evicted and expired: notified
        silent: list = []      # overwritten: just let go
        result = _MISSING
        while True:
            # the user code first: clock, the key's hash (as the compiled
            # core does: an unhashable key is a TypeError before getsizeof
            # is asked about it), getsizeof
            now = self._begin(timed)
            hash(key)
            sized = self._accounting
            size = self._size_of(key, value, True) if sized else 0
            with self._lock:
                if sized != self._accounting:
                    continue        # accounting switched on meanwhile (resize): size it
                expires = None
                if timed:
                    expires = deadline if deadline == deadline else self._now(now) + ttl
                od = self._od
                e = od.get(key)                         # the key's __eq__ may run
                if od is not self._od:
                    continue                            # cleared meanwhile: start again
                if e is not None and if_absent:
                    if e[EXPIRES] is None or not self._passed(e[EXPIRES], now):
                        result = e[VALUE]
                        break
                    if self._unlink(e, dropped):        # expired: absent, as a lookup sees it
                        self._expirations += 1
                    e = None
                # a plain set over an expired entry overwrites it, as over a live one
                if sized and not self._memory_limit and \
                        size - (e[SIZE] if e is not None else 0) > MAX_MEMORY - self._memory:
                    raise memory_overflow(self._memory, size, key)
                if e is None and self._policy is not None:
                    # the compiled _policy_insert's steps: purge, room for a
                    # memory limit, insert, then the policy evicts
                    self._purge_now(now, dropped)
                    if self._memory_limit:
                        self._policy_evict(self._memory_limit, size, None, dropped)
                    h = hash(key)                       # the key's __hash__ may run
                    t_ = self._ntok = self._ntok + 1
                    new = [key, value, None, INF, size, 0, t_]
                    e = od.setdefault(key, new)         # and its __eq__
                    if od is not self._od:
                        continue                        # cleared meanwhile: start again
                    if e is new:
                        self._order[e[6]] = e
                        self._ptok[id(e)] = e           # type: ignore[index]
                        self._policy.insert(id(e), h)
                        self._memory += size
                        self._set_deadline(e, expires, ttl)
                        self._policy_evict(self._memory_limit, 0, e, dropped)
                        break
                elif e is None:
                    # make room first (purge, then evict), then insert
                    self._purge_now(now, dropped)
                    self._evict_to(self._max_size - 1, self._memory_limit, size, None, dropped)
                    t_ = self._ntok = self._ntok + 1
                    new = [key, value, None, INF, size, 0, t_]
                    e = od.setdefault(key, new)        # and here
                    if od is not self._od:
                        continue                        # cleared meanwhile: start again
                    if e is new:
                        self._order[e[6]] = e
                        self._memory += size
                        self._set_deadline(e, expires, ttl)
                        # what the code setdefault ran may have added
                        self._evict_to(self._max_size, self._memory_limit, 0, e, dropped)
                        break
                    # inserted meanwhile by the code __eq__ ran: overwrite it
                silent.append(e[VALUE])
                e[VALUE] = value
                self._memory += size - e[SIZE]
                e[SIZE] = size
                self._set_deadline(e, expires, ttl)
                if self._policy is not None:
                    if e[SEQ] >= 0:
                        self._policy.hit(id(e))         # an overwrite is a use
                    self._policy_evict(self._memory_limit, 0, e, dropped)
                    break
                try:
                    self._order.move_to_end(e[6])
                except KeyError:
                    pass
                self._evict_to(self._max_size, self._memory_limit, 0, e, dropped)
                break
        if dropped:
            _release(dropped, self._callback)
        del silent
        return result

    def __setitem__(self, key: Any, value: Any) -> None:
        # _set written out for the plain case (no sizes, no TTL, writes
        # accepted, the built-in clock); anything else, or anything odd
        # met on the way (an expired entry, a clear under setdefault), goes
        # the general way
        if not self._plain:
            self._set(key, value, self._default_ttl)
            return
        dropped = None
        self._acquire()
        try:
            od = self._od
            e = od.get(key)                         # the key's __eq__ may run
            if od is not self._od:
                pass                                # cleared meanwhile
            elif e is not None:
                if e[2] is None or monotonic() < e[2]:  # EXPIRES: live
                    old = e[1]                      # released after the lock
                    e[1] = value
                    if e[2] is not None:
                        self._set_deadline(e, None, INF)
                    try:
                        self._order.move_to_end(e[6])
                    except KeyError:
                        pass
                    return
            else:
                dropped = []
                if self._timed:
                    self._purge(monotonic(), dropped)
                # room first: _evict_to(max_size - 1) written out (the order
                # is read afresh: what a key's __eq__ ran may have cleared it)
                while _len(self._order) >= self._max_size:
                    if self._take_first(dropped):
                        self._evictions += 1
                t_ = self._ntok = self._ntok + 1
                new = [key, value, None, INF, 0, 0, t_]
                if od.setdefault(key, new) is new:      # and here
                    if od is self._od:                  # not cleared meanwhile
                        self._order[new[6]] = new
                        if _len(od) > self._max_size:   # added by what it ran
                            self._evict_to(self._max_size, 0, 0, new, dropped)
                    return
        finally:
            self._release()
            # without a callback, what was dropped goes with this frame,
            # after the lock, as _release would let it go
            if dropped and self._callback is not None:
                _release(dropped, self._callback)
        self._set(key, value, self._default_ttl)

    def set(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        """Store value under key, as the most recently used entry.

        :param ttl: seconds this entry lives; None for ``default_ttl``,
            ``math.inf`` for never.
        """
        if ttl is None:
            self[key] = value
        else:
            self._set(key, value, _resolve_ttl(ttl, self._default_ttl))

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """The value for key (a counted lookup); if absent, store and return default."""
        value = self._lookup_counted(key)
        if value is _MISSING:
            value = self._set(key, default, self._default_ttl, NAN, True)
        return default if value is _MISSING else value

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set every (key, value) of a mapping or iterable of pairs, then of kwargs."""
        for k, v in check_items(other):
            self[k] = v
        for k, v in kwargs.items():
            self[k] = v

    def get_or_set(self, key: Any, factory: Callable[[], Any],
                   ttl: Optional[float] = None) -> Any:
        """The value for key; on a miss ``factory()`` computes it once for all
        threads missing the same key meanwhile, and it is stored.  If the
        factory raises, every waiter gets that exception; nothing is stored."""
        seconds = _resolve_ttl(ttl, self._default_ttl)
        if not callable(factory):
            raise TypeError(f"factory must be callable, got {factory!r}")
        value = self._lookup_counted(key)
        if value is not _MISSING:
            return value
        return self._flight.run(key, lambda: self._fill(key, factory, seconds))

    def _fill(self, key: Any, factory: Callable[[], Any], seconds: float) -> Any:
        """The leader's part of get_or_set: another thread may have stored
        the key between our miss and our registration."""
        value = self.peek(key, _MISSING)
        if value is _MISSING:
            value = factory()
            self._set(key, value, seconds)
        return value

    # ---- removal by the user ---------------------------------------------

    def _take(self, key: Any) -> Any:
        """Remove key's live entry; its value, or _MISSING."""
        now = self._begin(False)
        dropped: list = []
        silent: list = []
        with self._lock:
            e = self._live(key, now, dropped)
            value = _MISSING
            if e is not None:
                value = e[VALUE]
                self._unlink(e, silent)
        if dropped:
            _release(dropped, self._callback)
        del silent
        return value

    def __delitem__(self, key: Any) -> None:
        if self._take(key) is _MISSING:
            raise KeyError(key)

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        """Remove key and return its value; `default` (or KeyError) if absent."""
        value = self._take(key)
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return value

    def popitem(self) -> Tuple[Any, Any]:
        """Remove and return the least recently used (key, value); under a
        policy, the entry it gives up first (the oldest probation entry)."""
        now = self._begin(False)
        dropped: list = []
        silent: list = []
        with self._lock:
            self._purge_now(now, dropped)
            if self._order:
                if self._policy is not None:
                    self._take_oldest(silent)
                else:
                    self._take_first(silent)
        if dropped:
            _release(dropped, self._callback)
        if not silent:
            raise KeyError(f"popitem(): {'LRUCache' if self._policy is None else 'Cache'} "
                           f"is empty")
        return silent[0]

    def clear(self) -> None:
        """Remove every entry (no callbacks; statistics are kept)."""
        with self._lock:
            # a new index rather than clearing this one: an operation may be
            # inside a lookup of it (a key's __eq__ called clear); it sees
            # the index changed and starts again
            dropped = self._drop_all()
        del dropped

    # ---- TTL -------------------------------------------------------------

    def touch(self, key: Any, ttl: Optional[float] = None) -> None:
        """Restart key's TTL from now: its own TTL, or `ttl` when given
        (``math.inf``: never expire).  KeyError if absent."""
        now = self._begin(True)
        seconds = _resolve_ttl(ttl, INF) if ttl is not None else INF
        dropped: list = []
        with self._lock:
            e = self._live(key, now, dropped)
            if e is not None:
                if ttl is None:
                    seconds = e[TTL]
                self._set_deadline(e, None if seconds == INF else self._now(now) + seconds,
                                   seconds)
        if dropped:
            _release(dropped, self._callback)
        if e is None:
            raise KeyError(key)

    def ttl(self, key: Any) -> Optional[float]:
        """Seconds until key expires; None if it never does.  KeyError if absent."""
        now = self._begin(True)
        dropped: list = []
        with self._lock:
            e = self._live(key, now, dropped)
            left = None if e is None or e[EXPIRES] is None else e[EXPIRES] - self._now(now)
        if dropped:
            _release(dropped, self._callback)
        if e is None:
            raise KeyError(key)
        return left

    def expire(self) -> int:
        """Remove every expired entry now; returns how many."""
        now = self._begin(True)
        dropped: list = []
        with self._lock:
            n = self._purge_now(now, dropped)
        if dropped:
            _release(dropped, self._callback)
        return n

    # ---- limits ----------------------------------------------------------

    def resize(self, max_size: Any = _MISSING, memory_limit_mb: Any = _MISSING) -> None:
        """Change the limits now, evicting least recently used entries at
        once until they hold.  An argument left out stays as it is;
        ``memory_limit_mb=None`` removes the memory limit.  A bad argument,
        or a getsizeof that fails, leaves the cache as it was."""
        new_limit = self._memory_limit
        if max_size is not _MISSING:
            max_size = check_max_size(max_size)
        if memory_limit_mb is not _MISSING:
            limit = check_memory_limit_mb(memory_limit_mb)
            new_limit = 0 if limit is None else limit
        if new_limit and not self._accounting:
            self._size_existing()
        dropped: list = []
        with self._lock:
            if max_size is not _MISSING:
                if self._policy is not None:
                    self._policy.resize(min(max_size, MAX_ENTRIES - 1))
                self._max_size_given = max_size
                self._max_size = min(max_size, MAX_ENTRIES)
            if memory_limit_mb is not _MISSING:
                self._memory_limit_mb = memory_limit_mb
                self._memory_limit = new_limit
            if self._policy is not None:
                self._policy_evict(self._memory_limit, 0, None, dropped)
            else:
                self._evict_to(self._max_size, self._memory_limit, 0, None, dropped)
        if dropped:
            _release(dropped, self._callback)

    def evict(self, n: int) -> int:
        """Evict up to `n` least recently used entries now (counted as
        evictions, reported to the eviction callback); returns how many."""
        count = check_count(n, "n")
        dropped: list = []
        k = 0
        with self._lock:
            while k < count and self._order:
                if self._policy is not None:
                    self._evictions += 1
                    self._take_oldest(dropped)
                else:
                    self._evict_first(dropped)
                k += 1
        if dropped:
            _release(dropped, self._callback)
        return k

    def pause_writes(self) -> None:
        """Refuse new writes until resume_writes() (see the compiled twin)."""
        with self._lock:
            self._paused = True
            self._update_plain()

    def resume_writes(self) -> None:
        """Accept writes again after pause_writes()."""
        with self._lock:
            self._paused = False
            self._update_plain()

    def _update_plain(self) -> None:
        """Whether __setitem__ may take its plain path."""
        self._plain = (not self._paused and not self._accounting and self._clock is None
                       and self._default_ttl == INF and self._policy is None)

    @property
    def writes_paused(self) -> bool:
        return self._paused

    def reconfigure(self, *, max_size: Any = _MISSING, default_ttl: Any = _MISSING,
                    memory_limit_mb: Any = _MISSING, cleanup_interval: Any = _MISSING) -> None:
        """Change settings live; all validated before any is applied."""
        changes = validate_changes(max_size, default_ttl, memory_limit_mb, cleanup_interval,
                                   _MISSING)
        if "default_ttl" in changes:
            ttl = changes["default_ttl"]
            with self._lock:
                self._default_ttl = INF if ttl is None else ttl
                self._update_plain()
        if "cleanup_interval" in changes:
            self._set_cleanup_interval(changes["cleanup_interval"])
        if "max_size" in changes or "memory_limit_mb" in changes:
            self.resize(changes.get("max_size", _MISSING),
                        changes.get("memory_limit_mb", _MISSING))

    def _size_existing(self) -> None:
        """Start accounting on a cache that had none.

        reentrancy: sizes come from user code, called with no lock held.
        Accounting is switched on first, so that an entry set meanwhile is
        sized by its own set; an entry whose value changed meanwhile keeps
        that size.  If getsizeof fails, accounting is switched off again."""
        with self._lock:
            self._sizer = self._getsizeof or _default_getsizeof
            self._accounting = True
            self._plain = False
            items = [(e, e[KEY], e[VALUE]) for e in dict.values(self._od)]
        try:
            sizes = [(e, v, self._size_of(k, v, False)) for e, k, v in items]
        except BaseException:
            self._stop_accounting()
            raise
        with self._lock:
            for e, v, size in sizes:
                if e[SEQ] >= 0 and e[VALUE] is v:
                    if size > e[SIZE] and size - e[SIZE] > MAX_MEMORY - self._memory:
                        err = memory_overflow(self._memory, size, e[KEY])
                        self._stop_accounting()
                        raise err
                    self._memory += size - e[SIZE]
                    e[SIZE] = size

    def _stop_accounting(self) -> None:
        with self._lock:
            self._accounting = False
            self._sizer = None
            self._update_plain()
            self._memory = 0
            for e in dict.values(self._od):
                e[SIZE] = 0

    def _set_cleanup_interval(self, interval: Any) -> None:
        # made first, swapped in under the lock, the old one cancelled after
        # (see the compiled twin)
        interval = check_seconds(interval, "cleanup_interval", allow_inf=False)
        new = cleaner.schedule(self, interval) if interval is not None else None
        with self._lock:
            old = self._schedule
            self._schedule = new
            self._cleanup_interval = interval
        if old is not None:
            old.cancel()

    # ---- whole-cache views -----------------------------------------------

    def _snapshot(self, kind: int) -> list:
        """Live keys (0), values (1) or items (2), least recent first."""
        now = self._begin(False)
        dropped: list = []
        with self._lock:
            self._purge_now(now, dropped)
            entries = self._entries()
            if kind == 0:
                out = [e[KEY] for e in entries]
            elif kind == 1:
                out = [e[VALUE] for e in entries]
            else:
                out = [(e[KEY], e[VALUE]) for e in entries]
        if dropped:
            _release(dropped, self._callback)
        return out

    def __len__(self) -> int:
        now = self._begin(False)
        dropped: list = []
        with self._lock:
            self._purge_now(now, dropped)
            n = _len(self._od)
        if dropped:
            _release(dropped, self._callback)
        return n

    def __iter__(self) -> Iterator[Any]:
        return iter(self._snapshot(0))

    def __reversed__(self) -> Iterator[Any]:
        return reversed(self._snapshot(0))

    def keys(self) -> CacheKeysView:
        return CacheKeysView(self)

    def values(self) -> CacheValuesView:
        return CacheValuesView(self)

    def items(self) -> CacheItemsView:
        return CacheItemsView(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return dict(self._snapshot(2)) == dict(other.items())

    def __ne__(self, other: object) -> bool:
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    # ---- statistics ------------------------------------------------------

    def stats(self) -> CacheStats:
        """A :class:`CacheStats` snapshot, taken atomically."""
        now = self._begin(False)
        dropped: list = []
        with self._lock:
            self._purge_now(now, dropped)
            stats = CacheStats(self._hits, self._misses, self._evictions, self._expirations,
                               _len(self._od), self._max_size_given,
                               self._memory if self._accounting else 0,
                               self._memory_limit or None, self._rejected)
        if dropped:
            _release(dropped, self._callback)
        return stats

    def reset_stats(self) -> None:
        """Zero hits, misses, evictions and expirations."""
        with self._lock:
            self._hits = self._misses = self._evictions = self._expirations = 0
            self._rejected = 0

    # ---- configuration ---------------------------------------------------

    @property
    def max_size(self) -> int:
        return self._max_size_given

    @property
    def default_ttl(self) -> Optional[float]:
        return None if self._default_ttl == INF else self._default_ttl

    @property
    def memory_limit_mb(self) -> Optional[float]:
        return self._memory_limit_mb

    @property
    def memory_limit_bytes(self) -> Optional[int]:
        return self._memory_limit or None

    @property
    def memory_bytes(self) -> int:
        return self._memory if self._accounting else 0

    @property
    def getsizeof(self) -> Optional[Callable[[Any, Any], int]]:
        return self._getsizeof

    @property
    def cleanup_interval(self) -> Optional[float]:
        return self._cleanup_interval

    @property
    def eviction_callback(self) -> Optional[Callable[[Any, Any], Any]]:
        return self._callback

    @property
    def clock(self) -> Optional[Callable[[], float]]:
        return self._clock

    def __repr__(self) -> str:
        return cache_repr(self)

    # ---- copying and pickling --------------------------------------------

    def _dump(self, absolute: bool) -> list:
        """[(key, value, deadline or seconds left, own ttl)], least recent
        first; inf for no expiry."""
        now = self._begin(True)
        dropped: list = []
        with self._lock:
            self._purge_now(now, dropped)
            now = self._now(now)
            out = [(e[KEY], e[VALUE],
                    INF if e[EXPIRES] is None else e[EXPIRES] if absolute else e[EXPIRES] - now,
                    e[TTL])
                   for e in self._entries()]
        if dropped:
            _release(dropped, self._callback)
        return out

    def _load(self, items: list, absolute: bool) -> None:
        """Add entries produced by _dump, in order."""
        now = self._begin(not absolute)
        for key, value, when, own in items:
            if when == INF:
                self._set(key, value, INF)
            elif absolute:
                self._set(key, value, own, when)
            elif when > 0:
                self._set(key, value, own, self._now(now) + when)

    def __copy__(self) -> "LRUCache":
        return copy_cache(self)

    def __deepcopy__(self, memo: dict) -> "LRUCache":
        return deepcopy_cache(self, memo)

    def __reduce__(self) -> Any:
        return reduce_cache(self, "py")

    def _raw(self) -> list:
        """[(key, value, deadline)] least recent first, expired entries
        included, without changing anything (tests)."""
        with self._lock:
            return [(e[KEY], e[VALUE], INF if e[EXPIRES] is None else e[EXPIRES])
                    for e in self._entries()]

    def _check(self) -> bool:
        """Consistency of the index, the heap and the counters (tests)."""
        with self._lock:
            return self._table_check() and (self._accounting or self._memory == 0)

    def _policy_state(self) -> Optional[dict]:
        """The policy's window target and segment sizes, or None for LRU (tests)."""
        p = self._policy
        if p is None:
            return None
        with self._lock:
            return {"window_max": p.window_max, "sizes": p.sizes(), "agings": p.agings}


class LRUCache(Cache):
    """A mapping that keeps the most recently used entries, with per-entry
    TTLs, a count and a memory limit, eviction callbacks and statistics: a
    :class:`Cache` whose policy is ``"lru"``.  (Pure-Python twin; see the
    compiled LRUCache for the parameters.)"""

    _POLICY_FIXED = True

    def __init__(self, max_size: int = 1000, default_ttl: Optional[float] = None, *,
                 memory_limit_mb: Optional[float] = None,
                 getsizeof: Optional[Callable[[Any, Any], int]] = None,
                 cleanup_interval: Optional[float] = None,
                 eviction_callback: Optional[Callable[[Any, Any], Any]] = None,
                 clock: Optional[Callable[[], float]] = None) -> None:
        Cache.__init__(self, max_size, default_ttl, memory_limit_mb=memory_limit_mb,
                       getsizeof=getsizeof, cleanup_interval=cleanup_interval,
                       eviction_callback=eviction_callback, clock=clock, policy="lru")


MutableMapping.register(Cache)


class LRUGetter:
    """``getter(key, default=None)``: the cache's value on a hit, else
    ``on_miss(key, default)``.  Made by :meth:`LRUCache.getter`."""

    __slots__ = ("_cache", "_lookup", "_on_miss")

    def __init__(self, cache: Cache, on_miss: Callable[[Any, Any], Any]) -> None:
        if not isinstance(cache, Cache):
            raise TypeError(f"cache must be a Cache, got {cache!r}")
        if not callable(on_miss):
            raise TypeError(f"on_miss must be callable, got {on_miss!r}")
        self._cache = cache
        self._lookup = cache._lookup_counted
        self._on_miss = on_miss

    def __call__(self, key: Any, default: Any = None) -> Any:
        value = self._lookup(key)
        if value is _MISSING:
            return self._on_miss(key, default)
        return value

    @property
    def cache(self) -> Cache:
        return self._cache

    @property
    def on_miss(self) -> Callable[[Any, Any], Any]:
        return self._on_miss

    def __repr__(self) -> str:
        return f"<LRUGetter of {self._cache!r} on_miss={self._on_miss!r}>"


# ---- the lru_cache wrapper ---------------------------------------------------
# The twin of the compiled _lru_cache_wrapper: a closure over a _Table, as
# functools' own pure lru_cache is a closure over a dict; keys are
# functools' keys (_make_key).

class _HashedSeq(list):
    """A key tuple whose hash is computed once (as in functools)."""

    __slots__ = ("hashvalue",)

    def __init__(self, tup: tuple, hash: Callable[[Any], int] = hash) -> None:
        self[:] = tup
        self.hashvalue = hash(tup)

    def __hash__(self) -> int:  # type: ignore[override]
        return self.hashvalue


_KWD_MARK = (object(),)


def _make_key(args: tuple, kwds: dict, typed: bool, kwd_mark: tuple = _KWD_MARK,
              fasttypes: Any = frozenset((int, str)), tuple: Any = tuple,
              type: Any = type, len: Any = len) -> Any:
    key = args
    if kwds:
        key += kwd_mark
        for item in kwds.items():
            key += item
    if typed:
        key += tuple(type(v) for v in args)
        if kwds:
            key += tuple(type(v) for v in kwds.values())
    elif len(key) == 1 and type(key[0]) in fasttypes:
        return key[0]
    return _HashedSeq(key)


def _default_sizer(key: Any, value: Any) -> int:
    return check_entry_size(_getsizeof(key) + _getsizeof(value), key)


try:
    from functools import _CacheInfo  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - functools always had it
    from collections import namedtuple
    _CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "maxsize", "currsize"])


def _lru_cache_wrapper(user_function: Callable[..., Any], maxsize: Any, typed: Any, *,
                       ttl: Optional[float] = None, memory_limit_mb: Optional[float] = None,
                       single_flight: bool = False, clock: Optional[Callable[[], float]] = None,
                       skip: int = 0) -> Any:
    if not callable(user_function):
        raise TypeError("the first argument must be callable")
    if type(skip) is not int or not 0 <= skip <= 1:
        raise ValueError(f"skip must be 0 or 1 (leading arguments left out of the key), "
                         f"got {skip!r}")
    if maxsize is not None:
        maxsize = max(operator.index(maxsize), 0)
    typed = bool(typed)
    seconds = check_ttl(ttl, "ttl")
    seconds = None if seconds == INF else seconds
    limit = check_memory_limit_mb(memory_limit_mb) or 0
    check_callable(clock, "clock")
    timer = (lambda: _user_time(clock)) if clock is not None else monotonic
    make_key = _make_key
    t = _Table()
    t._table_init()
    lock = t._lock
    max_count = MAX_ENTRIES if maxsize is None else maxsize
    timed = seconds is not None
    rejected = 0
    paused = False
    flight = SingleFlight("single_flight: the call")

    def live(key: Any, now: Optional[float], dropped: list) -> Optional[list]:
        """key's live entry or None (an expired one is removed); with the lock."""
        e = t._od.get(key)
        if e is not None and e[EXPIRES] is not None and now >= e[EXPIRES]:  # type: ignore
            if t._unlink(e, dropped):
                t._expirations += 1
            return None
        return e

    def store(key: Any, h: int, result: Any) -> None:
        nonlocal rejected
        if maxsize == 0:
            return
        if paused:
            with lock:
                rejected += 1
            return
        size = _default_sizer(key, result) if limit else 0      # user code: no lock
        if limit and size > limit:
            with lock:
                rejected += 1       # larger than the whole limit: returned, not kept
            return
        now = timer() if timed else None
        expires = None if seconds is None else now + seconds    # type: ignore[operator]
        dropped: list = []
        with lock:
            od = t._od
            e = live(key, now, dropped)                         # may run __eq__
            if e is None and od is t._od:
                if now is not None:
                    t._purge(now, dropped)
                t._evict_to(max_count - 1, limit, size, None, dropped)
                t_ = t._ntok = t._ntok + 1
                new = [key, result, None, INF, size, 0, t_]
                e = od.setdefault(key, new)                     # and here
                if e is new and od is not t._od:
                    e = None                                    # cleared meanwhile
                elif e is new:
                    t._order[e[6]] = e
                    t._memory += size
                    t._set_deadline(e, expires, INF if seconds is None else seconds)
                    t._evict_to(max_count, limit, 0, e, dropped)
                    e = None
            # an entry added while the function ran: a bounded cache keeps
            # it, an unbounded one replaces it (as functools does)
            if e is not None and maxsize is None and e[SEQ] >= 0 and od is t._od:
                dropped.append((None, e[VALUE]))
                e[VALUE] = result
                t._memory += size - e[SIZE]
                e[SIZE] = size
                t._set_deadline(e, expires, INF if seconds is None else seconds)
                try:
                    t._order.move_to_end(e[6])
                except KeyError:
                    pass
                t._evict_to(max_count, limit, 0, e, dropped)
        del dropped

    def wrapper(*args: Any, **kwds: Any) -> Any:
        key = make_key(args[skip:] if skip else args, kwds, typed)
        now = timer() if timed else None
        with lock:
            e = t._od.get(key)
            if e is not None:
                expires = e[EXPIRES]
                if expires is None or now < expires:            # type: ignore[operator]
                    try:
                        t._order.move_to_end(e[6])
                    except KeyError:
                        pass
                    t._hits += 1
                    return e[VALUE]
                dropped: list = []
                if t._unlink(e, dropped):
                    t._expirations += 1
            t._misses += 1
        if single_flight:
            return _single_flight_miss(wrapper, key, hash(key), args, kwds)
        result = user_function(*args, **kwds)
        store(key, 0, result)
        return result

    def uncached(*args: Any, **kwds: Any) -> Any:
        with lock:
            t._misses += 1
        return user_function(*args, **kwds)

    # -- functools' API and ours -------------------------------------------------

    def expire_now() -> None:
        if timed and t._timed:
            now = timer()
            dropped: list = []
            with lock:
                t._purge(now, dropped)
            del dropped

    def cache_info():  # type: ignore[no-untyped-def]
        """Report cache statistics"""
        expire_now()
        with lock:
            return _CacheInfo(t._hits, t._misses, maxsize, _len(t._od))

    def cache_clear():  # type: ignore[no-untyped-def]
        """Clear the cache and cache statistics"""
        nonlocal rejected
        with lock:
            dropped = t._drop_all()
            t._hits = t._misses = t._evictions = t._expirations = rejected = 0
        del dropped

    def cache_stats() -> CacheStats:
        expire_now()
        with lock:
            return CacheStats(t._hits, t._misses, t._evictions, t._expirations, _len(t._od),
                              maxsize, t._memory if limit else 0, limit or None, rejected)

    def _make_key_and_hash(args: tuple, kwargs: dict) -> Tuple[Any, int]:
        key = make_key(args, kwargs, typed)
        return key, hash(key)

    def _lookup(args: tuple, kwargs: dict) -> Tuple[bool, Any]:
        key, h = _make_key_and_hash(args, kwargs)
        now = timer() if timed else None
        dropped: list = []
        with lock:
            e = live(key, now, dropped)
            if e is not None:
                try:
                    t._order.move_to_end(e[6])
                except KeyError:
                    pass
                t._hits += 1
                return True, e[VALUE]
            t._misses += 1
        del dropped
        return False, (key, h)

    def _peek(key: Any, h: int, default: Any = None) -> Any:
        now = timer() if timed else None
        dropped: list = []
        with lock:
            e = live(key, now, dropped)
            value = default if e is None else e[VALUE]
        del dropped
        return value

    def _discard(key: Any, h: int) -> bool:
        now = timer() if timed else None
        dropped: list = []
        with lock:
            e = live(key, now, dropped)
            found = e is not None and t._unlink(e, dropped)
        del dropped
        return found

    def cache_invalidate(*args: Any, **kwargs: Any) -> bool:
        """Drop the entry these arguments map to; returns whether it existed."""
        return _discard(*_make_key_and_hash(args, kwargs))

    def cache_evict(n: int) -> int:
        count = check_count(n, "n")
        dropped: list = []
        k = 0
        with lock:
            while k < count and t._order:
                t._evict_first(dropped)
                k += 1
        del dropped
        return k

    def cache_pause_writes() -> None:
        nonlocal paused
        with lock:
            paused = True
        call.cache_writes_paused = True                 # type: ignore[attr-defined]

    def cache_resume_writes() -> None:
        nonlocal paused
        with lock:
            paused = False
        call.cache_writes_paused = False                # type: ignore[attr-defined]

    def _check() -> bool:
        with lock:
            return t._table_check(max_count) and (limit or t._memory == 0)

    call = uncached if maxsize == 0 else wrapper          # the path, chosen once
    call.cache_info = cache_info                        # type: ignore[attr-defined]
    call.cache_clear = cache_clear                      # type: ignore[attr-defined]
    call.cache_stats = cache_stats                      # type: ignore[attr-defined]
    call.cache_invalidate = cache_invalidate            # type: ignore[attr-defined]
    call.cache_evict = cache_evict                      # type: ignore[attr-defined]
    call.cache_pause_writes = cache_pause_writes        # type: ignore[attr-defined]
    call.cache_resume_writes = cache_resume_writes      # type: ignore[attr-defined]
    call.cache_writes_paused = False                    # type: ignore[attr-defined]
    call._make_key = _make_key_and_hash                 # type: ignore[attr-defined]
    call._lookup = _lookup                              # type: ignore[attr-defined]
    call._peek = _peek                                  # type: ignore[attr-defined]
    call._store = store                                 # type: ignore[attr-defined]
    call._discard = _discard                            # type: ignore[attr-defined]
    call._flight = flight                               # type: ignore[attr-defined]
    call._func = user_function                          # type: ignore[attr-defined]
    call._check = _check                                # type: ignore[attr-defined]
    return call


from .._lru_decorators import make_api, single_flight_miss as _single_flight_miss  # noqa: E402

lru_cache, cache, cached_method = make_api(_lru_cache_wrapper, Cache)
