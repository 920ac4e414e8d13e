"""LRUCache, pure Python: the twin of corecache/_lru.pyx, with the same
behaviour, messages and statistics, used where the compiled core is not.

Layout: a circular doubly linked list of _Node (as in CPython's pure
lru_cache; root.next is the least recently used) holds recency, and a dict
from _Key to node is the index; a heap of (deadline, seq, node) finds
expired nodes, skipping stale items (seq is the node's newest deadline) and
compacting when they outnumber live ones.

Reentrancy: a dict runs the keys' __eq__ whenever it meets equal hashes,
even while deleting or iterating.  So the dict's keys are _Key wrappers
whose equality is ours: the user's __eq__ runs only when looking up or
inserting a user key, never while removing (removal probes with _Exact,
which matches one wrapper by identity) or walking the list.  Every lookup
result is checked for liveness afterwards, inserts go through setdefault,
and all bookkeeping follows the dict operation it describes.

Locking: one RLock per cache (as functools' pure lru_cache).  The clock,
getsizeof and eviction callbacks run with the lock released: sizes and
times are computed first, callbacks run last.
"""
from __future__ import annotations

import heapq
import math
import operator
import sys
import threading
from collections import deque
from collections.abc import Mapping, MutableMapping
from time import monotonic
from types import GenericAlias
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from .._cleaner import cleaner
from .._common import cache_repr, check_items, copy_cache, deepcopy_cache, reduce_cache
from .._flight import SingleFlight
from .._util import write_unraisable
from .._views import CacheItemsView, CacheKeysView, CacheValuesView
from ..config import (CacheConfig, read_clock as _user_time, check_callable, check_count, check_entry_size,
                      check_max_size, check_memory_limit_mb, check_seconds, check_ttl,
                      entry_too_large, validate_changes)
from ..stats import CacheStats

__all__ = ["LRUCache", "lru_cache", "cache", "cached_method"]

INF = math.inf
NAN = math.nan
MAX_ENTRIES = (1 << 32) - 2
_MISSING = object()
_getsizeof = sys.getsizeof


def _default_getsizeof(key: Any, value: Any) -> int:
    return _getsizeof(key) + _getsizeof(value)


def _resolve_ttl(ttl: Any, default: float) -> float:
    if ttl is None:
        return default
    if type(ttl) is float or type(ttl) is int:
        if ttl > 0:
            return float(ttl)
    return check_ttl(ttl)  # type: ignore[return-value]


class _Key:
    """A dict key standing for a user key, with its hash computed once."""

    __slots__ = ("key", "hash")

    def __init__(self, key: Any, h: int) -> None:
        self.key = key
        self.hash = h

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: Any) -> bool:
        if type(other) is _Exact:
            return other.target is self
        if type(other) is _Key:
            other = other.key
        return self.key is other or self.key == other


class _Exact:
    """A probe that matches exactly one _Key, without user code."""

    __slots__ = ("target",)

    def __init__(self, target: _Key) -> None:
        self.target = target

    def __hash__(self) -> int:
        return self.target.hash

    def __eq__(self, other: Any) -> bool:
        return other is self.target


class _Node:
    __slots__ = ("prev", "next", "key", "wkey", "value", "expires", "ttl", "size", "seq",
                 "alive")

    def __init__(self, wkey: Optional[_Key], value: Any, size: int) -> None:
        self.prev = self.next = self
        self.wkey = wkey
        self.key = wkey.key if wkey is not None else None
        self.value = value
        self.expires = INF
        self.ttl = INF
        self.size = size
        self.seq = 0
        self.alive = True


class LRUCache:
    """A mapping that keeps the most recently used entries, with per-entry
    TTLs, a count and a memory limit, eviction callbacks and statistics.
    (Pure-Python twin; see the compiled LRUCache for the parameters.)"""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, max_size: int = 1000, default_ttl: Optional[float] = None, *,
                 memory_limit_mb: Optional[float] = None,
                 getsizeof: Optional[Callable[[Any, Any], int]] = None,
                 cleanup_interval: Optional[float] = None,
                 eviction_callback: Optional[Callable[[Any, Any], Any]] = None,
                 clock: Optional[Callable[[], float]] = None) -> None:
        max_size = check_max_size(max_size)
        ttl = check_ttl(default_ttl, "default_ttl")
        limit = check_memory_limit_mb(memory_limit_mb)
        check_callable(getsizeof, "getsizeof")
        interval = check_seconds(cleanup_interval, "cleanup_interval", allow_inf=False)
        check_callable(eviction_callback, "eviction_callback")
        check_callable(clock, "clock")
        self._lock = threading.RLock()
        self._data: Dict[_Key, _Node] = {}
        self._root = _Node(None, None, 0)
        self._heap: List[Tuple[float, int, _Node]] = []
        self._seq = 0
        self._timed = 0          # live nodes with a deadline
        self._memory = 0
        self._hits = self._misses = self._evictions = self._expirations = 0
        self._paused = False
        self._rejected = 0
        self._flight = SingleFlight("get_or_set")
        self._max_size_given = max_size
        self._max_size = min(max_size, MAX_ENTRIES)
        self._default_ttl = INF if ttl is None else ttl
        self._memory_limit_mb = memory_limit_mb
        self._memory_limit = 0 if limit is None else limit
        self._getsizeof = getsizeof
        self._callback = eviction_callback
        self._clock = clock
        self._accounting = limit is not None or getsizeof is not None
        self._sizer = (getsizeof or _default_getsizeof) if self._accounting else None
        self._cleanup_interval: Optional[float] = None
        self._schedule: Any = None
        self._set_cleanup_interval(interval)

    __class_getitem__ = classmethod(GenericAlias)   # LRUCache[str, int] at run time

    @classmethod
    def from_config(cls, config: CacheConfig, *, clock: Optional[Callable[[], float]] = None) -> "LRUCache":
        """Build a cache from a :class:`CacheConfig`."""
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

    def _begin(self, need: bool) -> float:
        if self._clock is None or not (need or self._timed):
            return NAN
        return _user_time(self._clock)

    def _passed(self, deadline: float, now: float) -> bool:
        if deadline == INF:
            return False
        if self._clock is None:
            return monotonic() >= deadline
        return now == now and now >= deadline

    def _now(self, now: float) -> float:
        return monotonic() if self._clock is None else now

    # ---- structure (no user code below this line until lookups) ----------

    def _append(self, node: _Node) -> None:
        root = self._root
        last = root.prev
        node.prev, node.next = last, root
        last.next = root.prev = node

    def _move_to_end(self, node: _Node) -> None:
        node.prev.next, node.next.prev = node.next, node.prev
        self._append(node)

    def _remove(self, node: _Node, dead: Optional[list]) -> None:
        """Take a live node out of the index, the list and the counters.
        The index goes first: deleting runs _Key's own Python code, which
        can still fail (RecursionError), and then nothing has changed."""
        del self._data[_Exact(node.wkey)]  # type: ignore[arg-type]
        node.prev.next, node.next.prev = node.next, node.prev
        node.alive = False
        self._memory -= node.size
        if node.expires != INF:
            self._timed -= 1
        if dead is not None:
            dead.append((node.key, node.value))

    def _set_deadline(self, node: _Node, expires: float, ttl: float) -> None:
        if (node.expires != INF) != (expires != INF):
            self._timed += 1 if expires != INF else -1
        node.expires = expires
        node.ttl = ttl if expires != INF else INF
        self._seq += 1          # any older heap item of this node is stale now
        node.seq = self._seq
        if expires != INF:
            heapq.heappush(self._heap, (expires, self._seq, node))
            if len(self._heap) > 2 * self._timed + 16:
                self._heap = [item for item in self._heap
                              if item[2].alive and item[2].seq == item[1]]
                heapq.heapify(self._heap)

    def _evict_head(self, dead: list) -> None:
        self._remove(self._root.next, dead)
        self._evictions += 1

    def _purge(self, now: float, dead: list) -> int:
        if not self._timed:
            return 0
        if self._clock is None:
            now = monotonic()
        elif now != now:
            return 0
        heap = self._heap
        n = 0
        while heap:
            expires, seq, node = heap[0]
            if not (node.alive and node.seq == seq):
                heapq.heappop(heap)
                continue
            if expires > now:
                break
            heapq.heappop(heap)
            self._remove(node, dead)
            self._expirations += 1
            n += 1
        return n

    def _evict_to_limits(self, dead: list, keep: Optional[_Node] = None) -> None:
        """Evict least recently used nodes until both limits hold, never
        evicting `keep`."""
        root = self._root
        while len(self._data) > self._max_size and root.next is not keep:
            self._evict_head(dead)
        if self._memory_limit:
            while (self._memory > self._memory_limit and root.next is not root
                   and root.next is not keep):
                self._evict_head(dead)

    def _release(self, dead: list) -> None:
        """Run eviction callbacks, with no lock held."""
        callback = self._callback
        if callback is not None:
            for key, value in dead:
                try:
                    callback(key, value)
                except BaseException as exc:
                    write_unraisable(exc, callback)
        dead.clear()

    # ---- lookups ---------------------------------------------------------

    def _nodes(self) -> Iterator[_Node]:
        root = self._root
        node = root.next
        while node is not root:
            yield node
            node = node.next

    def _live(self, key: Any, now: float, dead: list) -> Optional[_Node]:
        """key's live node, or None; an expired one is removed.
        reentrancy: the lookup runs the key's __eq__; a dict returns only
        what it holds when the lookup ends, so the node is live."""
        node = self._data.get(key)
        if node is not None and not node.alive:   # cleared during the lookup
            return None
        if node is not None and self._passed(node.expires, now):
            self._remove(node, dead)
            self._expirations += 1
            return None
        return node

    def _lookup_counted(self, key: Any) -> Any:
        """The counted lookup behind [], get and the getter: _begin, _live
        and _move_to_end written out, as every call saved shows on a hit."""
        clock = self._clock
        now = NAN if clock is None or not self._timed else _user_time(clock)
        dead: list = []
        with self._lock:
            node = self._data.get(key)
            if node is not None and node.alive:
                if node.expires == INF or not self._passed(node.expires, now):
                    node.prev.next, node.next.prev = node.next, node.prev
                    root = self._root
                    last = root.prev
                    node.prev, node.next = last, root
                    last.next = root.prev = node
                    self._hits += 1
                    return node.value
                self._remove(node, dead)
                self._expirations += 1
            self._misses += 1
        if dead:
            self._release(dead)
        return _MISSING

    def __getitem__(self, key: Any) -> Any:
        value = self._lookup_counted(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        """The value for key (counted as a hit), or `default` (a miss)."""
        value = self._lookup_counted(key)
        return default if value is _MISSING else value

    def getter(self, on_miss: Callable[[Any, Any], Any]) -> "LRUGetter":
        """A callable ``getter(key, default=None)``: ``get(key)`` on a hit,
        ``on_miss(key, default)`` on a miss (see the compiled twin)."""
        return LRUGetter(self, on_miss)

    def peek(self, key: Any, default: Any = None) -> Any:
        """The value for key without counting it or making it recent."""
        now = self._begin(False)
        dead: list = []
        with self._lock:
            node = self._live(key, now, dead)
        self._release(dead)
        return default if node is None else node.value

    def __contains__(self, key: Any) -> bool:
        return self.peek(key, _MISSING) is not _MISSING

    # ---- insertion -------------------------------------------------------

    def _size_of(self, key: Any, value: Any, limited: bool) -> int:
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
            self._rejected += 1
            return _MISSING
        timed = ttl != INF
        dead: list = []
        while True:
            now = self._begin(timed)
            wkey = _Key(key, hash(key))
            sized = self._accounting
            size = self._size_of(key, value, True) if sized else 0
            with self._lock:
                if sized != self._accounting:
                    continue  # accounting was switched on meanwhile (resize)
                expires = INF
                if timed:
                    expires = deadline if deadline == deadline else self._now(now) + ttl
                data = self._data
                present = wkey in data          # user __eq__ may run here
                if data is not self._data:
                    continue                    # cleared meanwhile: start again
                if not present:
                    self._purge(now, dead)
                    while data and len(data) >= self._max_size:
                        self._evict_head(dead)
                    if self._memory_limit:
                        while data and self._memory + size > self._memory_limit:
                            self._evict_head(dead)
                new = _Node(wkey, value, size)
                node = data.setdefault(wkey, new)   # and here
                if data is not self._data:
                    continue
                result = _MISSING
                if node is new:
                    self._append(node)
                    self._memory += size
                elif if_absent and not self._passed(node.expires, now):
                    result = node.value
                    break
                else:
                    node.value = value
                    self._memory += size - node.size
                    node.size = size
                    self._move_to_end(node)
                self._set_deadline(node, expires, ttl)
                self._evict_to_limits(dead, node)
            break
        self._release(dead)
        return result

    def __setitem__(self, key: Any, value: Any) -> None:
        self._set(key, value, self._default_ttl)

    def set(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        """Store value under key, as the most recently used entry.

        :param ttl: seconds this entry lives; None for ``default_ttl``,
            ``math.inf`` for never.
        """
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

    def get_or_set(self, key: Any, factory: Callable[[], Any], ttl: Optional[float] = None) -> Any:
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
        value = self.peek(key, _MISSING)
        if value is _MISSING:
            value = factory()
            self._set(key, value, seconds)
        return value

    # ---- removal by the user ---------------------------------------------

    def __delitem__(self, key: Any) -> None:
        self.pop(key)

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        """Remove key and return its value; `default` (or KeyError) if absent."""
        now = self._begin(False)
        dead: list = []
        with self._lock:
            node = self._live(key, now, dead)
            if node is not None:
                self._remove(node, None)
        self._release(dead)
        if node is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return node.value

    def popitem(self) -> Tuple[Any, Any]:
        """Remove and return the least recently used (key, value)."""
        now = self._begin(False)
        dead: list = []
        with self._lock:
            self._purge(now, dead)
            node = self._root.next
            if node is not self._root:
                self._remove(node, None)
        self._release(dead)
        if node is self._root:
            raise KeyError("popitem(): LRUCache is empty")
        return (node.key, node.value)

    def clear(self) -> None:
        """Remove every entry (no callbacks; statistics are kept)."""
        with self._lock:
            old = list(self._nodes())
            for node in old:
                node.alive = False
            # A new index rather than dict.clear(): an operation may be inside
            # a lookup of the old one (a key's __eq__ called clear), and
            # clearing a dict under its own setdefault corrupts it (CPython
            # 3.11).  Such an operation sees that self._data changed and
            # starts again.
            self._data = {}
            self._root.next = self._root.prev = self._root
            self._heap = []
            self._timed = 0
            self._memory = 0
        del old

    # ---- TTL -------------------------------------------------------------

    def touch(self, key: Any, ttl: Optional[float] = None) -> None:
        """Restart key's TTL from now: its own TTL, or `ttl` when given
        (``math.inf``: never expire).  KeyError if absent."""
        now = self._begin(True)
        seconds = _resolve_ttl(ttl, INF) if ttl is not None else INF
        dead: list = []
        with self._lock:
            node = self._live(key, now, dead)
            if node is not None:
                if ttl is None:
                    seconds = node.ttl
                self._set_deadline(node, INF if seconds == INF else self._now(now) + seconds,
                                   seconds)
        self._release(dead)
        if node is None:
            raise KeyError(key)

    def ttl(self, key: Any) -> Optional[float]:
        """Seconds until key expires; None if it never does.  KeyError if absent."""
        now = self._begin(True)
        dead: list = []
        with self._lock:
            node = self._live(key, now, dead)
            left = None if node is None or node.expires == INF else node.expires - self._now(now)
        self._release(dead)
        if node is None:
            raise KeyError(key)
        return left

    def expire(self) -> int:
        """Remove every expired entry now; returns how many."""
        now = self._begin(True)
        dead: list = []
        with self._lock:
            n = self._purge(now, dead)
        self._release(dead)
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
        dead: list = []
        with self._lock:
            if max_size is not _MISSING:
                self._max_size_given = max_size
                self._max_size = min(max_size, MAX_ENTRIES)
            if memory_limit_mb is not _MISSING:
                self._memory_limit_mb = memory_limit_mb
                self._memory_limit = new_limit
            self._evict_to_limits(dead)
        self._release(dead)

    def evict(self, n: int) -> int:
        """Evict up to `n` least recently used entries now (counted as
        evictions, reported to the eviction callback); returns how many."""
        count = check_count(n, "n")
        dead: list = []
        with self._lock:
            root = self._root
            k = 0
            while k < count and root.next is not root:
                self._evict_head(dead)
                k += 1
        self._release(dead)
        return k

    def pause_writes(self) -> None:
        """Refuse new writes until resume_writes() (see the compiled twin)."""
        self._paused = True

    def resume_writes(self) -> None:
        """Accept writes again after pause_writes()."""
        self._paused = False

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
            self._default_ttl = INF if ttl is None else ttl
        if "cleanup_interval" in changes:
            self._set_cleanup_interval(changes["cleanup_interval"])
        if "max_size" in changes or "memory_limit_mb" in changes:
            self.resize(changes.get("max_size", _MISSING),
                        changes.get("memory_limit_mb", _MISSING))

    def _size_existing(self) -> None:
        """Start accounting on a cache that had none (see the compiled twin)."""
        with self._lock:
            self._sizer = self._getsizeof or _default_getsizeof
            self._accounting = True
            items = [(n, n.value) for n in self._nodes()]
        try:
            sizes = [(n, v, self._size_of(n.key, v, False)) for n, v in items]
        except BaseException:
            with self._lock:
                self._accounting = False
                self._sizer = None
                self._memory = 0
                for n in self._nodes():
                    n.size = 0
            raise
        with self._lock:
            for n, v, size in sizes:
                if n.alive and n.value is v:
                    self._memory += size - n.size
                    n.size = size

    def _set_cleanup_interval(self, interval: Any) -> None:
        interval = check_seconds(interval, "cleanup_interval", allow_inf=False)
        if self._schedule is not None:
            self._schedule.cancel()
            self._schedule = None
        self._cleanup_interval = interval
        if interval is not None:
            self._schedule = cleaner.schedule(self, interval)

    # ---- whole-cache views -----------------------------------------------

    def _snapshot(self, kind: int) -> list:
        now = self._begin(False)
        dead: list = []
        with self._lock:
            self._purge(now, dead)
            if kind == 0:
                out = [n.key for n in self._nodes()]
            elif kind == 1:
                out = [n.value for n in self._nodes()]
            else:
                out = [(n.key, n.value) for n in self._nodes()]
        self._release(dead)
        return out

    def __len__(self) -> int:
        now = self._begin(False)
        dead: list = []
        with self._lock:
            self._purge(now, dead)
            n = len(self._data)
        self._release(dead)
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
        dead: list = []
        with self._lock:
            self._purge(now, dead)
            stats = CacheStats(self._hits, self._misses, self._evictions, self._expirations,
                               len(self._data), self._max_size_given,
                               self._memory if self._accounting else 0,
                               self._memory_limit or None, self._rejected)
        self._release(dead)
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
        now = self._begin(True)
        dead: list = []
        with self._lock:
            self._purge(now, dead)
            now = self._now(now)
            out = [(n.key, n.value,
                    n.expires if absolute or n.expires == INF else n.expires - now,
                    n.ttl)
                   for n in self._nodes()]
        self._release(dead)
        return out

    def _load(self, items: list, absolute: bool) -> None:
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
            return [(n.key, n.value, n.expires) for n in self._nodes()]

    def _check(self) -> bool:
        """Consistency of the list, the index and the counters (tests)."""
        with self._lock:
            nodes = list(self._nodes())
            return (all(n.alive and n.next.prev is n for n in nodes)
                    and len(nodes) == len(self._data)
                    and all(self._data.get(_Exact(n.wkey)) is n for n in nodes)  # type: ignore
                    and self._timed == sum(n.expires != INF for n in nodes)
                    and (not self._accounting or self._memory == sum(n.size for n in nodes))
                    and len(nodes) <= self._max_size)


MutableMapping.register(LRUCache)


class LRUGetter:
    """``getter(key, default=None)``: the cache's value on a hit, else
    ``on_miss(key, default)``.  Made by :meth:`LRUCache.getter`."""

    __slots__ = ("_cache", "_lookup", "_on_miss")

    def __init__(self, cache: LRUCache, on_miss: Callable[[Any, Any], Any]) -> None:
        if not isinstance(cache, LRUCache):
            raise TypeError(f"cache must be an LRUCache, got {cache!r}")
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
    def cache(self) -> LRUCache:
        return self._cache

    @property
    def on_miss(self) -> Callable[[Any, Any], Any]:
        return self._on_miss

    def __repr__(self) -> str:
        return f"<LRUGetter of {self._cache!r} on_miss={self._on_miss!r}>"

# ---- the lru_cache wrapper ---------------------------------------------------
# The twin of the compiled _lru_cache_wrapper: a closure, like functools' own
# pure lru_cache (whose structure it follows: a dict from key to link and a
# circular list of links through a root), plus TTL, memory limit and stats.
# Keys are functools' keys (_make_key).  Deleting from the dict goes through
# _ExactKey, which matches one stored key by identity, so removals never run
# a key's __eq__; lookups and inserts may, and are checked afterwards.

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


class _ExactKey:
    """Matches exactly one stored key (list and str/int equality return
    NotImplemented for it, so the dict asks this probe)."""

    __slots__ = ("target", "hash")

    def __init__(self, target: Any, h: int) -> None:
        self.target = target
        self.hash = h

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: Any) -> bool:
        return other is self.target


def _default_sizer(key: Any, value: Any) -> int:
    return check_entry_size(_getsizeof(key) + _getsizeof(value), key)


try:
    from functools import _CacheInfo  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - functools always had it
    from collections import namedtuple
    _CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "maxsize", "currsize"])

PREV, NEXT, KEY, RESULT, HASH, EXPIRES, SIZE = range(7)


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
    cache: dict = {}
    cache_get = cache.get
    lock = threading.RLock()
    root: list = []
    root[:] = [root, root, None, None, 0, None, 0]
    expiring: "deque[Tuple[float, list]]" = deque()   # (deadline, link), oldest first
    hits = misses = evictions = expirations = rejected = memory = 0
    paused = False
    flight = SingleFlight("single_flight")

    # -- structure; no user code runs in these --------------------------------

    def unlink(link: list) -> None:
        nonlocal memory
        del cache[_ExactKey(link[KEY], link[HASH])]
        link[PREV][NEXT] = link[NEXT]
        link[NEXT][PREV] = link[PREV]
        link[NEXT] = None                   # marks it removed
        memory -= link[SIZE]

    def append(link: list) -> None:
        last = root[PREV]
        last[NEXT] = root[PREV] = link
        link[PREV] = last
        link[NEXT] = root

    def purge(now: Optional[float]) -> None:
        nonlocal expirations
        while expiring and expiring[0][0] <= now:   # type: ignore[operator]
            deadline, link = expiring.popleft()
            if link[NEXT] is not None and link[EXPIRES] == deadline:
                unlink(link)
                expirations += 1

    def evict_until(fits: Callable[[], bool], keep: Optional[list] = None) -> None:
        nonlocal evictions
        while not fits() and root[NEXT] is not root and root[NEXT] is not keep:
            unlink(root[NEXT])
            evictions += 1

    def deadline(now: Optional[float]) -> Optional[float]:
        return None if seconds is None else now + seconds  # type: ignore[operator]

    def live(link: Optional[list], now: Optional[float]) -> Optional[list]:
        """The link if it is live; an expired one is removed."""
        nonlocal expirations
        if link is None or link[EXPIRES] is None or now < link[EXPIRES]:  # type: ignore[operator]
            return link
        unlink(link)
        expirations += 1
        return None

    # -- the call ----------------------------------------------------------------

    def store(key: Any, h: int, result: Any) -> None:
        nonlocal rejected, memory
        if maxsize == 0:
            return
        if paused:
            rejected += 1
            return
        size = _default_sizer(key, result) if limit else 0     # user code: no lock
        if limit and size > limit:
            rejected += 1
            return
        now = timer() if seconds is not None else None
        with lock:
            link = live(cache_get(key), now)                   # may run __eq__
            if link is not None:
                if maxsize is not None:
                    return          # added while the function ran: keep it (functools)
                memory += size - link[SIZE]
                link[RESULT] = result
                link[SIZE] = size
                link[PREV][NEXT] = link[NEXT]
                link[NEXT][PREV] = link[PREV]
                append(link)
            else:
                if now is not None:
                    purge(now)
                if maxsize is not None:
                    evict_until(lambda: len(cache) < maxsize)
                if limit:
                    evict_until(lambda: memory + size <= limit)
                new = [None, None, key, result, h, None, size]
                link = cache.setdefault(key, new)               # and here
                if link is not new:
                    return          # inserted meanwhile by the code __eq__ ran
                append(link)
                memory += size
            link[EXPIRES] = deadline(now)
            if link[EXPIRES] is not None:
                expiring.append((link[EXPIRES], link))
            if limit:
                evict_until(lambda: memory <= limit, keep=link)

    def wrapper(*args: Any, **kwds: Any) -> Any:
        nonlocal hits, misses
        key = make_key(args[skip:] if skip else args, kwds, typed)
        if maxsize == 0:
            misses += 1
            return user_function(*args, **kwds)
        now = timer() if seconds is not None else None
        with lock:
            link = cache_get(key)
            if link is not None and (link[EXPIRES] is None or now < link[EXPIRES]):
                link_prev, link_next, _key, result = link[:4]
                link_prev[NEXT] = link_next
                link_next[PREV] = link_prev
                last = root[PREV]
                last[NEXT] = root[PREV] = link
                link[PREV] = last
                link[NEXT] = root
                hits += 1
                return result
            live(link, now)
            misses += 1
        h = hash(key)
        if single_flight:
            return _single_flight_miss(wrapper, key, h, args, kwds)
        result = user_function(*args, **kwds)
        store(key, h, result)
        return result

    # -- functools' API and ours -------------------------------------------------

    def expire_now() -> None:
        if seconds is not None:
            now = timer()
            with lock:
                purge(now)

    def cache_info() -> Any:
        """Report cache statistics"""
        expire_now()
        with lock:
            return _CacheInfo(hits, misses, maxsize, len(cache))

    def cache_clear() -> None:
        """Clear the cache and cache statistics"""
        nonlocal hits, misses, evictions, expirations, rejected
        with lock:
            # one by one rather than dict.clear() (see _ExactKey and LRUCache.clear)
            while root[NEXT] is not root:
                unlink(root[NEXT])
            expiring.clear()
            hits = misses = evictions = expirations = rejected = 0

    def cache_stats() -> CacheStats:
        expire_now()
        with lock:
            return CacheStats(hits, misses, evictions, expirations, len(cache), maxsize,
                              memory if limit else 0, limit or None, rejected)

    def _make_key_and_hash(args: tuple, kwargs: dict) -> Tuple[Any, int]:
        key = make_key(args, kwargs, typed)
        return key, hash(key)

    def _lookup(args: tuple, kwargs: dict) -> Tuple[bool, Any]:
        nonlocal hits, misses
        key, h = _make_key_and_hash(args, kwargs)
        now = timer() if seconds is not None else None
        with lock:
            link = live(cache_get(key), now)
            if link is not None:
                link[PREV][NEXT] = link[NEXT]
                link[NEXT][PREV] = link[PREV]
                append(link)
                hits += 1
                return True, link[RESULT]
            misses += 1
        return False, (key, h)

    def _peek(key: Any, h: int, default: Any = None) -> Any:
        now = timer() if seconds is not None else None
        with lock:
            link = live(cache_get(key), now)
            return default if link is None else link[RESULT]

    def _discard(key: Any, h: int) -> bool:
        now = timer() if seconds is not None else None
        with lock:
            link = live(cache_get(key), now)
            if link is None:
                return False
            unlink(link)
            return True

    def cache_invalidate(*args: Any, **kwargs: Any) -> bool:
        """Drop the entry these arguments map to; returns whether it existed."""
        return _discard(*_make_key_and_hash(args, kwargs))

    def cache_evict(n: int) -> int:
        nonlocal evictions
        count = check_count(n, "n")
        with lock:
            k = 0
            while k < count and root[NEXT] is not root:
                unlink(root[NEXT])
                evictions += 1
                k += 1
            return k

    def cache_pause_writes() -> None:
        nonlocal paused
        paused = True
        wrapper.cache_writes_paused = True             # type: ignore[attr-defined]

    def cache_resume_writes() -> None:
        nonlocal paused
        paused = False
        wrapper.cache_writes_paused = False            # type: ignore[attr-defined]

    def _check() -> bool:
        with lock:
            links = []
            link = root[NEXT]
            while link is not root:
                if link[NEXT][PREV] is not link:
                    return False
                links.append(link)
                link = link[NEXT]
            return (len(links) == len(cache)
                    and all(cache.get(_ExactKey(l[KEY], l[HASH])) is l for l in links)
                    and (not limit or memory == sum(l[SIZE] for l in links))
                    and (maxsize is None or len(links) <= maxsize))

    wrapper.cache_info = cache_info                    # type: ignore[attr-defined]
    wrapper.cache_clear = cache_clear                  # type: ignore[attr-defined]
    wrapper.cache_stats = cache_stats                  # type: ignore[attr-defined]
    wrapper.cache_invalidate = cache_invalidate        # type: ignore[attr-defined]
    wrapper.cache_evict = cache_evict                  # type: ignore[attr-defined]
    wrapper.cache_pause_writes = cache_pause_writes    # type: ignore[attr-defined]
    wrapper.cache_resume_writes = cache_resume_writes  # type: ignore[attr-defined]
    wrapper.cache_writes_paused = False                # type: ignore[attr-defined]
    wrapper._make_key = _make_key_and_hash             # type: ignore[attr-defined]
    wrapper._lookup = _lookup                          # type: ignore[attr-defined]
    wrapper._peek = _peek                              # type: ignore[attr-defined]
    wrapper._store = store                             # type: ignore[attr-defined]
    wrapper._discard = _discard                        # type: ignore[attr-defined]
    wrapper._flight = flight                           # type: ignore[attr-defined]
    wrapper._func = user_function                      # type: ignore[attr-defined]
    wrapper._check = _check                            # type: ignore[attr-defined]
    return wrapper


from .._decorators import make_api, single_flight_miss as _single_flight_miss  # noqa: E402

lru_cache, cache, cached_method = make_api(_lru_cache_wrapper)
