"""WriteBehindCache: acknowledged writes are durable in the store before
``set`` returns, and a background flusher writes them to the system of
record in batches.

The queue lives in the store (Redis: five keys under the hash tag
``{namespace}``, see redis_store.py), so every process on the namespace
shares it:

* ``pending`` holds the latest record of every key not yet written
  (coalescing: a second set of a key replaces the first);
* a key waits in ``queue`` (by arrival) or is claimed in ``claims`` (with a
  lease deadline, by one consumer), never both, and at most once: one
  flusher at a time writes a key, so a key's writes reach the writer in
  order;
* a flusher claims a batch, writes it, and acknowledges it: a record leaves
  ``pending`` only if it is still the latest, otherwise the key goes back
  into the queue;
* every claim first returns claims whose lease ran out (their flusher died
  or stalled) to the front of the queue, so the next flusher on the
  namespace finishes a dead process's writes within the lease (5 s by
  default) plus its flush interval.

Delivery is at-least-once, per key, of the latest acknowledged value: a
flusher killed after the writer returned but before its acknowledgement
reached the store (or stalled past its lease) leaves the key to be written
again.  Values replaced before they were written are never written
(coalescing).  Give the writer idempotent writes (upserts).
"""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from time import monotonic
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..config import check_callable, check_count
from ..exceptions import PendingLimitReached, PendingWritesError, StoreError
from ._base import Cache, check_lease
from .stores import MISSING, Store, norm_key

__all__ = ["WriteBehindCache"]

log = logging.getLogger("corecache.distributed")


def _positive(value: Any, name: str) -> float:
    return check_lease(value, name)


class WriteBehindCache(Cache):
    """``set`` updates the cache and queues the write durably in the store;
    a background flusher writes batches to the system of record.

    :param store: a RedisStore (or a MemoryStore, durable only as long as
        the process).
    :param writer: ``writer(key, value)``, called once per key.
    :param writer_many: ``writer_many({key: value})``, called once per batch
        (used instead of writer when given).
    :param deleter: ``deleter(key)``; with it, delete() queues a delete that
        coalesces with sets (the latest wins); without it, delete() only
        evicts the cached copy.
    :param batch_size: most keys written per batch.
    :param flush_interval: seconds a write may wait for its batch to fill.
    :param max_pending: most keys pending in the namespace; at the limit
        ``set`` blocks (0: no limit).
    :param block_timeout: seconds ``set`` blocks at max_pending before
        raising PendingLimitReached.
    :param lease: seconds a claimed batch stays this flusher's without a
        renewal (renewed every lease/3 while it is being written).
    :param retry_base: seconds before the first retry of a failed write;
        doubling per attempt, with jitter, up to retry_max.
    :param ttl: seconds cached values live in the store.
    :param local: an optional LRUCache as the first tier.
    :param loader: optional ``loader(key)`` for reads that miss every tier.
    """

    def __init__(self, store: Store, writer: Optional[Callable[[str, Any], Any]] = None, *,
                 writer_many: Optional[Callable[[Dict[str, Any]], Any]] = None,
                 deleter: Optional[Callable[[str], Any]] = None,
                 batch_size: int = 100, flush_interval: float = 1.0,
                 max_pending: int = 10_000, block_timeout: float = 10.0,
                 lease: float = 5.0, retry_base: float = 0.1, retry_max: float = 30.0,
                 ttl: Optional[float] = None, local: Any = None,
                 loader: Optional[Callable[[str], Any]] = None,
                 loader_many: Optional[Callable[[List[str]], Any]] = None,
                 **options: Any) -> None:
        check_callable(writer, "writer")
        check_callable(writer_many, "writer_many")
        if writer is None and writer_many is None:
            raise TypeError("WriteBehindCache needs writer= or writer_many=")
        self._writer = writer
        self._writer_many = writer_many
        self._deleter = check_callable(deleter, "deleter")
        self._batch_size = check_count(batch_size, "batch_size")
        if self._batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self._flush_interval = _positive(flush_interval, "flush_interval")
        self._max_pending = check_count(max_pending, "max_pending")
        self._block_timeout = _positive(block_timeout, "block_timeout")
        self._lease = _positive(lease, "lease")
        self._retry_base = _positive(retry_base, "retry_base")
        self._retry_max = _positive(retry_max, "retry_max")
        super().__init__(store, ttl=ttl, local=local, loader=loader, loader_many=loader_many,
                         **options)
        self._consumer = uuid.uuid4().hex
        self._state = threading.Lock()
        self._progress = threading.Condition(self._state)
        self._mine: Dict[str, bytes] = {}        # this instance's sets not known written
        self._claimed: Dict[str, bytes] = {}     # claims held, written or not
        self._retry: Dict[str, List[float]] = {}   # key -> [attempts, due]
        self._unacked: Dict[str, bytes] = {}     # written, acknowledgement not through
        self._writing: set = set()
        self._urgent = 0
        self._backlog = 0      # keys pending at the last claim
        self._last_error: Optional[BaseException] = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._run, daemon=True,
                                         name=f"corecache-write-behind-{store.namespace}")
        self._keeper = threading.Thread(target=self._keep, daemon=True,
                                        name=f"corecache-write-behind-lease-{store.namespace}")
        self._flusher.start()
        self._keeper.start()

    # ---- writes ------------------------------------------------------------

    def set(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        """Cache value and queue its write; returns once the write is
        durable in the store.  Blocks at max_pending (PendingLimitReached
        after block_timeout); a store failure raises StoreError (nothing
        was acknowledged)."""
        k = norm_key(key)
        data = self._store.encode(value)
        ms = self._ttl_ms if ttl is None else self._store.resolve_ttl(ttl)
        self._enqueue(k, b"v" + data, ms)
        if self._local is not None:
            self._local.set(k, self._roundtrip(k, data, value), ttl=self._local_ttl_for(ttl))

    def set_many(self, mapping: Any, ttl: Optional[float] = None) -> None:
        """set() for every (key, value)."""
        if not hasattr(mapping, "items"):
            raise TypeError(f"set_many takes a mapping, got {type(mapping).__name__}")
        items = [(norm_key(k), v) for k, v in mapping.items()]
        encoded = [self._store.encode(v) for _, v in items]
        for (k, v), data in zip(items, encoded):
            ms = self._ttl_ms if ttl is None else self._store.resolve_ttl(ttl)
            self._enqueue(k, b"v" + data, ms)
            if self._local is not None:
                self._local.set(k, self._roundtrip(k, data, v), ttl=self._local_ttl_for(ttl))

    def delete(self, key: Any) -> bool:
        """With a deleter: queue the delete (coalescing with sets) and drop
        the cached value; returns True.  Without: evict the cached copy
        only (a pending write of the key still happens)."""
        if self._deleter is None:
            return super().delete(key)
        k = norm_key(key)
        if self._local is not None:
            self._local.pop(k, None)
        self._enqueue(k, b"d", None)
        return True

    def _enqueue(self, key: str, record: bytes, ms: Optional[int]) -> None:
        if self._closed:
            raise RuntimeError("this WriteBehindCache is closed")
        deadline: Optional[float] = None
        delay = 0.001
        while True:
            try:
                ok, pending, new = self._store._wb_enqueue(key, record, ms, self._max_pending,
                                                           self._id)
            except StoreError:
                self._c.add("store_errors")
                if self._local is not None:
                    self._local.pop(key, None)
                raise
            self._c.pending = pending
            if ok:
                break
            now = monotonic()
            if deadline is None:
                deadline = now + self._block_timeout
            if now >= deadline:
                raise PendingLimitReached(
                    f"write-behind queue of namespace {self._store.namespace!r} is full: "
                    f"{pending} keys pending (max_pending={self._max_pending}) for "
                    f"{self._block_timeout}s; key {key!r} was not queued")
            self._wake.set()
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.05)
        with self._state:
            self._mine[key] = record
        # a full batch of distinct keys is waiting: write it now.  Sets of
        # keys already pending do not wake the flusher: they coalesce until
        # flush_interval (hot keys would otherwise be rewritten back to back)
        if new and pending >= self._batch_size:
            self._wake.set()

    # ---- reads see pending writes ------------------------------------------

    def _lookup(self, key: str) -> Any:
        found = super()._lookup(key)
        if found is not MISSING:
            return found
        record = self._store._wb_records([key])[0]
        if record is None:
            return MISSING
        if record[:1] != b"v":
            return MISSING, 0            # a delete is pending: absent, do not load
        value = self._store.decode(key, record[1:])
        return MISSING if value is MISSING else (value, None)

    def _lookup_many(self, keys: List[str]) -> Any:
        found, ttls, missing = super()._lookup_many(keys)
        if found is None or not missing:
            return found, ttls, missing
        try:
            records = self._store._wb_records(missing)
        except StoreError:
            self._c.add("store_errors")
            return found, ttls, missing
        still = []
        for k, record in zip(missing, records):
            if record is None:
                still.append(k)
            elif record[:1] == b"v":
                value = self._store.decode(k, record[1:])
                if value is MISSING:
                    still.append(k)
                else:
                    found[k] = value
        return found, ttls, still

    # ---- the flusher -------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            try:
                written = self._cycle()
                backoff = 0.0
            except StoreError as exc:
                self._c.add("store_errors")
                self._last_error = exc
                backoff = min(1.0, max(0.02, backoff * 2))
                self._stop.wait(backoff)
                continue
            except Exception as exc:  # never let the flusher die
                self._last_error = exc
                log.exception("corecache: write-behind flusher error")
                self._stop.wait(0.1)
                continue
            if (written and self._urgent) or (written >= self._batch_size
                                               and self._backlog > written):
                continue    # more distinct keys are waiting: no pause
            # a partial batch (or none): let writes gather (and coalesce) for
            # up to flush_interval, unless a full batch or a flush() wakes us
            wait = self._flush_interval
            with self._state:
                if self._retry:
                    wait = min(wait, max(0.0, min(d for _, d in self._retry.values())
                                         - monotonic()))
                if self._urgent:
                    wait = min(wait, 0.02)
            self._wake.wait(wait)

    def _cycle(self) -> int:
        """Claim and write one batch; returns its size."""
        self._wake.clear()
        if self._unacked:
            with self._state:
                items = list(self._unacked.items())
            self._ack(items)
        now = monotonic()
        with self._state:
            due = [k for k, (_, at) in self._retry.items() if at <= now][:self._batch_size]
            batch = [(k, self._claimed[k]) for k in due]
            self._writing.update(due)
        room = self._batch_size - len(batch)
        if room > 0:
            try:
                items, pending, reclaimed = self._store._wb_claim(self._consumer, room,
                                                                  self._lease)
            except StoreError:
                with self._state:
                    self._writing.difference_update(due)
                raise
            self._c.pending = pending
            self._backlog = pending
            if reclaimed:
                log.info("corecache: %d expired write-behind claim(s) of namespace %r "
                         "returned to the queue", reclaimed, self._store.namespace)
            with self._state:
                for k, record in items:
                    self._claimed[k] = record
                    self._writing.add(k)
            batch += items
        if not batch:
            return 0
        try:
            self._write(batch)
        finally:
            with self._state:
                self._writing.difference_update(k for k, _ in batch)
        return len(batch)

    def _write(self, batch: List[Tuple[str, bytes]]) -> None:
        store = self._store
        values: Dict[str, Any] = {}
        deletes: List[str] = []
        done: List[Tuple[str, bytes]] = []
        records = dict(batch)
        for k, record in batch:
            if record[:1] == b"d":
                deletes.append(k)
                continue
            value = store.decode(k, record[1:])
            if value is MISSING:   # refused by the serializer (logged): drop it
                done.append((k, record))
            else:
                values[k] = value
        failed: Dict[str, BaseException] = {}
        written: List[str] = []
        t0 = monotonic()
        if values:
            if self._writer_many is not None:
                try:
                    self._writer_many(dict(values))
                    written += values
                except Exception as exc:
                    self._c.add("write_errors")
                    failed.update(dict.fromkeys(values, exc))
            else:
                for k, v in values.items():
                    try:
                        self._writer(k, v)  # type: ignore[misc]
                        written.append(k)
                    except Exception as exc:
                        self._c.add("write_errors")
                        failed[k] = exc
        for k in deletes:
            if self._deleter is None:
                log.warning("corecache: a queued delete of key %r reached a flusher without "
                            "a deleter; dropped", k)
                done.append((k, records[k]))
                continue
            try:
                self._deleter(k)
                written.append(k)
            except Exception as exc:
                self._c.add("write_errors")
                failed[k] = exc
        if written:
            self._c.flushed(monotonic() - t0)
            self._c.add("writes", len(written))
        done += [(k, records[k]) for k in written]
        if failed:
            first = next(iter(failed.values()))
            self._last_error = first
            now = monotonic()
            with self._state:
                for k in failed:
                    if k not in self._claimed:
                        continue   # the lease was lost meanwhile
                    attempts = self._retry.get(k, [0.0])[0] + 1
                    delay = min(self._retry_max, self._retry_base * 2 ** (attempts - 1))
                    self._retry[k] = [attempts, now + delay / 2 + random.uniform(0, delay / 2)]
            log.warning("corecache: write-behind writer failed for %d key(s) of namespace "
                        "%r: %r; retrying with backoff", len(failed), store.namespace, first)
        if done:
            with self._state:
                for k, record in done:
                    self._unacked[k] = record
            self._ack(done)

    def _ack(self, items: List[Tuple[str, bytes]]) -> None:
        _, pending = self._store._wb_ack(self._consumer, items)   # StoreError: retried
        self._c.pending = pending
        with self._progress:
            for k, record in items:
                self._unacked.pop(k, None)
                self._claimed.pop(k, None)
                self._retry.pop(k, None)
                if self._mine.get(k) == record:
                    del self._mine[k]
            self._progress.notify_all()

    def _keep(self) -> None:
        """Renew the leases of the claims this flusher holds."""
        interval = self._lease / 3
        while not self._stop.wait(interval):
            with self._state:
                keys = list(self._claimed)
            if not keys:
                continue
            try:
                held = set(self._store._wb_renew(self._consumer, keys, self._lease))
            except StoreError:
                self._c.add("store_errors")
                continue
            with self._state:
                # keys acknowledged meanwhile are simply gone; keys being
                # written or acknowledged now are the flusher's to settle
                lost = [k for k in keys if k not in held and k in self._claimed
                        and k not in self._unacked and k not in self._writing]
                for k in lost:
                    del self._claimed[k]
                    self._retry.pop(k, None)
            if lost:
                log.warning("corecache: lost the write-behind lease of %d key(s) of namespace "
                            "%r (stalled past the lease?); another flusher takes them over",
                            len(lost), self._store.namespace)

    # ---- flush and close ---------------------------------------------------

    def flush(self, timeout: Optional[float] = 30.0) -> None:
        """Return once every write this instance acknowledged before the
        call is written (or replaced by a later write of the key); raise
        PendingWritesError, naming what is left, after ``timeout`` seconds
        (None: wait as long as it takes)."""
        deadline = None if timeout is None else monotonic() + timeout
        with self._state:
            snapshot = dict(self._mine)
            self._urgent += 1
        error: Optional[BaseException] = None
        try:
            while snapshot:
                self._wake.set()
                try:
                    current = self._store._wb_records(list(snapshot))
                except StoreError as exc:
                    self._c.add("store_errors")
                    error = exc
                else:
                    left = {k: r for (k, r), cur in zip(snapshot.items(), current) if cur == r}
                    with self._state:
                        for k, r in snapshot.items():
                            if k not in left and self._mine.get(k) == r:
                                del self._mine[k]
                    snapshot = left
                    if not snapshot:
                        break
                now = monotonic()
                if deadline is not None and now >= deadline:
                    last = self._last_error or error
                    shown = ", ".join(repr(k) for k in list(snapshot)[:10])
                    more = f" and {len(snapshot) - 10} more" if len(snapshot) > 10 else ""
                    raise PendingWritesError(
                        f"{len(snapshot)} write(s) still pending after {timeout}s: keys "
                        f"{shown}{more}; they stay queued in the store for the next flusher "
                        f"(last error: {last!r})", snapshot, last)
                with self._progress:
                    self._progress.wait(0.05 if deadline is None else
                                        max(0.001, min(0.05, deadline - now)))
            try:   # stats() right after flush() reflects it
                self._c.pending = self._store._wb_count()
            except StoreError:
                self._c.add("store_errors")
        finally:
            with self._state:
                self._urgent -= 1

    def close(self, timeout: Optional[float] = 30.0) -> None:
        """flush(timeout), then stop the flusher and hand claims it still
        holds back to the queue.  Raises PendingWritesError (after stopping)
        if writes were left; they stay queued in the store."""
        if self._closed:
            return
        error: Optional[BaseException] = None
        try:
            self.flush(timeout)
        except PendingWritesError as exc:
            error = exc
        self._closed = True
        self._stop.set()
        self._wake.set()
        for t in (self._flusher, self._keeper):
            if t is not threading.current_thread():
                t.join(5.0)
        with self._state:
            keys = [k for k in self._claimed if k not in self._writing and k not in self._unacked]
        if keys:
            try:
                self._store._wb_release(self._consumer, keys)
            except StoreError:
                pass   # their leases run out instead
        if error is not None:
            raise error

    @property
    def pending(self) -> int:
        """Writes pending in the namespace, asked of the store now."""
        n = self._store._wb_count()
        self._c.pending = n
        return n
