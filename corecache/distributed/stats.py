"""Statistics of the distributed patterns: one snapshot type for all of them
(counters a pattern does not have stay 0), read by the metrics exporter."""
from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional

from ..latency import HistogramSnapshot, LatencyHistogram

__all__ = ["DistributedStats"]


@dataclass(frozen=True)
class DistributedStats:
    """A snapshot of a pattern's counters, taken by ``stats()``.

    Every lookup (``get``, each key of ``get_many``, a decorated call) is
    counted exactly once, as ``local_hits``, ``store_hits`` or ``misses``;
    a lookup that waited for another thread's lookup of the same key counts
    as what that one found, and in ``flight_waits`` too.

    :param local_hits: lookups answered by the local LRUCache tier (its own
        hit counter, plus lookups that found it filled while they waited).
    :param store_hits: lookups answered by the store (Redis).
    :param misses: lookups that found the key in no tier (whether the
        loader then produced it or not, and also when the store failed).
    :param flight_waits: lookups that waited for another thread's lookup of
        the same key in this process (single flight) and took its result.
    :param loads: values produced by the loader (one per key).
    :param load_errors: loader calls that raised.
    :param store_errors: store operations that failed (unreachable, timeout,
        out of memory, ...); read paths carried on without the store.
    :param lock_waits: misses answered by another process's load (its value,
        or its failure), waited for under the key's fill lock.
    :param lock_timeouts: waits for another process's load that gave up and
        loaded here (without storing).
    :param stale_fills: loaded values not stored because a write of the key
        came in while they loaded (or the fill lock was lost): the caller
        got them, the store and the local tier did not.
    :param corrupt: stored values the serializer refused (tampered, unsigned,
        undecodable), each treated as a miss.
    :param refreshes: background reloads done by refresh-ahead.
    :param refresh_errors: background reloads that failed.
    :param invalidations: local entries dropped because another process
        changed them (near cache).
    :param local_bypassed: the local tier is cleared and bypassed because the
        invalidation channel is down (near cache).
    :param writes: values handed to the writer successfully (write-through:
        one per set; write-behind: one per key flushed).
    :param write_errors: writer calls that raised.
    :param pending_writes: writes queued in the store and not yet written
        (write-behind; as of the last exchange with the store).
    :param lost_writes: acknowledged writes of this instance that the store
        lost before any flusher wrote them (write-behind; reported by
        flush() and close()).
    :param fenced_writes: claimed writes this flusher dropped unwritten
        because its lease had run out and another flusher took them over.
    :param late_writes: writes this flusher finished after its lease ran
        out; their keys were queued again so that the latest value is
        written after them.
    :param flushes: batches the write-behind flusher wrote.
    :param flush_seconds: total seconds spent writing those batches.
    :param last_flush_latency: seconds the last batch took to write, or None.
    :param load_latency: a histogram of sampled loader durations
        (:class:`corecache.latency.HistogramSnapshot`).
    :param flush_latency: a histogram of sampled flush durations.
    """

    local_hits: int = 0
    store_hits: int = 0
    misses: int = 0
    flight_waits: int = 0
    loads: int = 0
    load_errors: int = 0
    store_errors: int = 0
    lock_waits: int = 0
    lock_timeouts: int = 0
    stale_fills: int = 0
    corrupt: int = 0
    refreshes: int = 0
    refresh_errors: int = 0
    invalidations: int = 0
    local_bypassed: bool = False
    writes: int = 0
    write_errors: int = 0
    pending_writes: int = 0
    lost_writes: int = 0
    fenced_writes: int = 0
    late_writes: int = 0
    flushes: int = 0
    flush_seconds: float = 0.0
    last_flush_latency: Optional[float] = None
    load_latency: Optional[HistogramSnapshot] = None
    flush_latency: Optional[HistogramSnapshot] = None

    @property
    def hits(self) -> int:
        """Hits in any tier."""
        return self.local_hits + self.store_hits

    @property
    def hits_by_tier(self) -> Dict[str, int]:
        return {"local": self.local_hits, "store": self.store_hits}

    @property
    def redis_errors(self) -> int:
        """store_errors, by the name the metrics use (the store is Redis
        but for MemoryStore, which does not fail)."""
        return self.store_errors

    @property
    def hit_rate(self) -> float:
        """hits / (hits + misses), or 0.0 before the first lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    @property
    def mean_flush_seconds(self) -> Optional[float]:
        """Mean seconds per written batch, or None before the first."""
        return self.flush_seconds / self.flushes if self.flushes else None

    def as_dict(self) -> Dict[str, Any]:
        """The fields and the derived figures as a plain dict."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(hits=self.hits, hit_rate=self.hit_rate,
                 mean_flush_seconds=self.mean_flush_seconds, redis_errors=self.redis_errors)
        return d


_COUNTERS = tuple(f.name for f in fields(DistributedStats)
                  if f.type in ("int", int) and f.name not in ("local_hits", "pending_writes")
                  ) + ("local_extra",)


class Counters:
    """Thread-safe counters behind ``stats()`` (never on a local-hit path:
    local hits are the LRUCache's own counter)."""

    __slots__ = ("_lock", "_c", "flush_seconds", "last_flush_latency", "pending",
                 "load_latency", "flush_latency")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self.flush_seconds = 0.0
        self.last_flush_latency: Optional[float] = None
        self.pending = 0
        # sampled (corecache.latency.set_default_sample_rate, or per histogram)
        self.load_latency = LatencyHistogram()
        self.flush_latency = LatencyHistogram()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._c[name] += n

    def add2(self, name: str, other: str) -> None:
        """One of each, at once."""
        with self._lock:
            self._c[name] += 1
            self._c[other] += 1

    def followed(self, ok: bool, result: Any) -> None:
        """A get that shared another's lookup (single flight) counts what
        that lookup found, ``result`` = (value, what was counted), or a miss
        when it raised."""
        self.add2(result[1] if ok else "misses", "flight_waits")

    def flushed(self, seconds: float) -> None:
        with self._lock:
            self._c["flushes"] += 1
            self.flush_seconds += seconds
            self.last_flush_latency = seconds
        if self.flush_latency.sampled():
            self.flush_latency.observe(seconds)

    def snapshot(self, **extra: Any) -> DistributedStats:
        with self._lock:
            values: Dict[str, Any] = dict(self._c)
            values.update(flush_seconds=self.flush_seconds,
                          last_flush_latency=self.last_flush_latency,
                          pending_writes=self.pending,
                          load_latency=self.load_latency.snapshot(),
                          flush_latency=self.flush_latency.snapshot())
        local_extra = values.pop("local_extra")
        values.update(extra)
        values["local_hits"] = values.get("local_hits", 0) + local_extra
        return DistributedStats(**values)
