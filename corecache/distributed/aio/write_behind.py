# asyncio source of corecache/distributed/write_behind.py (generated from it by _unasync.py)
"""WriteBehindCache: acknowledged writes are durable in the store before
``set`` returns, and a background flusher writes them to the system of
record in batches.

The queue lives in the store (Redis: keys under the hash tag ``{namespace}``,
see redis_store.py), so every process on the namespace shares it:

* ``pending`` holds the latest record of every key not yet written
  (coalescing: a second set of a key replaces the first).  A record
  carries a *version*, the store's clock when it was queued: it only grows,
  per key and across restarts of the store;
* a key waits in ``queue`` or is claimed in ``claims`` (with a lease
  deadline, by one consumer), never both, and at most once: one flusher at a
  time writes a key, so a key's writes reach the writer in order;
* a flusher claims a batch, re-checks in one atomic step that its leases
  still hold (renewing them), writes the batch, and acknowledges it: a
  record leaves ``pending`` only if it is still the latest, otherwise the
  key goes back into the queue;
* every claim first returns claims whose lease ran out (their flusher died
  or stalled) to the front of the queue, so the next flusher on the
  namespace finishes a dead process's writes within the lease (5 s by
  default) plus its flush interval.

Fencing.  A flusher that stalls past its lease (SIGSTOP, a writer holding
the GIL, a long GC pause) can still write after another flusher took the
key over and wrote a newer value.  Two defences:

1. ``versioned=True`` hands the writer each record's version
   (``writer(key, value, version)``, ``writer_many(values, versions)``,
   ``deleter(key, version)``): a writer that refuses a version older than
   the one it holds (``UPDATE ... WHERE version < :version``, a
   conditional put) can never be left with a stale value;
2. without it, the store remembers each takeover for 60 leases: when the
   stalled flusher comes back and acknowledges its late write, the latest
   record of the key is queued again with a new version, so it is written
   after the late one.  The system of record holds the stale value for that
   moment, and for good if the stalled process dies between its late write
   and its acknowledgement: use ``versioned=True`` when that matters.

Lost queues.  Every instance remembers its acknowledged writes until it
learns that they were written or replaced: by its own flusher, or from its
*done list*, where other instances report the records of its they settled.
A write that is neither pending nor settled was lost by the store (a
restart without persistence, a failover to a replica that lacked it,
FLUSHALL): ``flush()`` and ``aclose()`` raise :class:`WritesLostError`
naming those keys.

Delivery is at-least-once, per key, of the latest acknowledged value: a
flusher killed after the writer returned but before its acknowledgement
reached the store (or stalled past its lease) leaves the key to be written
again.  Values replaced before they were written are never written
(coalescing).  Give the writer idempotent writes (upserts).
"""
from __future__ import annotations

import random
import threading
from time import monotonic
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ...config import check_callable, check_count
from ...exceptions import PendingLimitReached, PendingWritesError, StoreError, WritesLostError
from .._protocol import MISSING, check_lease, log, parse_record, write_key
from ._base import Cache
from ._io import Event, Worker, call
from .stores import Store

__all__ = ["WriteBehindCache"]

_CHECK_EVERY = 50      # flusher cycles between two looks for lost writes
_CHECK_CHUNK = 1000    # keys looked at in one go


def _positive(value: Any, name: str) -> float:
    return check_lease(value, name)


def _shown(keys: List[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:10])
    return shown + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")


class WriteBehindCache(Cache):
    """``set`` updates the cache and queues the write durably in the store;
    a background flusher writes batches to the system of record.

    :param store: a RedisStore (or a MemoryStore, durable only as long as
        the process).  Durability needs Redis with ``appendonly yes`` (or a
        replica): a warning is logged once when the server has neither.
    :param writer: ``writer(key, value)``, called once per key
        (``writer(key, value, version)`` with ``versioned=True``).
    :param writer_many: ``writer_many({key: value})``, called once per batch
        (used instead of writer when given; ``writer_many(values, versions)``
        with ``versioned=True``, versions being ``{key: version}``).
    :param deleter: ``deleter(key)`` (``deleter(key, version)``); with it,
        delete() queues a delete that coalesces with sets (the latest wins);
        without it, delete() only evicts the cached copy.
    :param versioned: hand the writer each write's version, an int that
        grows with every write of a key: a writer that refuses versions
        older than the one it holds is never left with a stale value by a
        flusher that stalled past its lease.
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
    :param local: an optional corecache.Cache (LRUCache or any policy) as the
        first tier.
    :param loader: optional ``loader(key)`` for reads that miss every tier.
    """

    def __init__(self, store: Store, writer: Optional[Callable[..., Any]] = None, *,
                 writer_many: Optional[Callable[..., Any]] = None,
                 deleter: Optional[Callable[..., Any]] = None, versioned: bool = False,
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
        if not isinstance(versioned, bool):
            raise TypeError(f"versioned must be a bool, got {versioned!r}")
        self._writer = writer
        self._writer_many = writer_many
        self._deleter = check_callable(deleter, "deleter")
        self._versioned = versioned
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
        self._state = threading.Lock()
        self._progress = Event()     # set whenever own writes settle
        # this instance's acknowledged records, until known written or
        # replaced (own acknowledgements, the done list): bounded by what is
        # pending in the namespace plus what settled since the last claim
        self._mine: Dict[str, bytes] = {}
        self._lost: Dict[str, bytes] = {}        # found lost, reported by the next flush
        # key -> version settled before set() recorded it in _mine (the
        # flusher can be that fast): set() then does not record it
        self._early: Dict[str, int] = {}
        self._claimed: Dict[str, bytes] = {}     # claims held, written or not
        self._retry: Dict[str, List[float]] = {}   # key -> [attempts, due]
        self._unacked: Dict[str, bytes] = {}     # written, acknowledgement not through
        self._writing: Set[str] = set()
        self._urgent = 0
        self._backlog = 0      # keys pending at the last claim
        self._cycles = 0
        self._last_error: Optional[BaseException] = None
        self._wake = Event()
        self._stop = Event()
        self._flusher = Worker(self._run, f"write-behind-{store.namespace}")
        self._keeper = Worker(self._keep, f"write-behind-lease-{store.namespace}")
        self._flusher.start()
        self._keeper.start()

    def _ensure(self) -> None:
        """aio: start the flusher and the lease keeper if they waited for a loop."""
        self._flusher.ensure()
        self._keeper.ensure()

    async def _start(self) -> None:
        self._ensure()

    async def _warn_durability(self) -> None:
        try:
            warning = await self._store.durability_warning()    # once per store
        except StoreError:
            return
        if warning:
            log.warning("corecache: %s", warning)

    # ---- writes ------------------------------------------------------------

    async def set(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        """Cache value and queue its write; returns once the write is
        durable in the store.  Blocks at max_pending (PendingLimitReached
        after block_timeout); a store failure raises StoreError (nothing
        was acknowledged); a key that cannot be stored raises ValueError."""
        k = write_key(key)
        ms = self._ttl_ms if ttl is None else self._store.resolve_ttl(ttl)
        data = self._store.encode(value, k, ms)
        await self._enqueue(k, b"v" + data, ms)
        if self._local is not None:
            self._local.set(k, self._roundtrip(k, data, value), ttl=self._local_ttl_for(ttl))

    async def set_many(self, mapping: Any, ttl: Optional[float] = None) -> None:
        """set() for every (key, value)."""
        if not hasattr(mapping, "items"):
            raise TypeError(f"set_many takes a mapping, got {type(mapping).__name__}")
        ms = self._ttl_ms if ttl is None else self._store.resolve_ttl(ttl)
        items = [(write_key(k), v) for k, v in mapping.items()]
        encoded = [self._store.encode(v, k, ms) for k, v in items]
        for (k, v), data in zip(items, encoded):
            await self._enqueue(k, b"v" + data, ms)
            if self._local is not None:
                self._local.set(k, self._roundtrip(k, data, v), ttl=self._local_ttl_for(ttl))

    async def delete(self, key: Any) -> bool:
        """With a deleter: queue the delete (coalescing with sets) and drop
        the cached value; returns True.  Without: evict the cached copy
        only (a pending write of the key still happens)."""
        if self._deleter is None:
            return await super().delete(key)
        k = write_key(key)
        if self._local is not None:
            self._local.pop(k, None)
        await self._enqueue(k, b"d", None)
        return True

    async def _enqueue(self, key: str, body: bytes, ms: Optional[int]) -> None:
        if self._closed:
            raise RuntimeError("this WriteBehindCache is closed")
        self._ensure()
        deadline: Optional[float] = None
        delay = 0.001
        while True:
            try:
                record, pending, new = await self._store.queue_push(key, body, ms,
                                                                    self._max_pending,
                                                              self._id)
            except StoreError:
                self._c.add("store_errors")
                if self._local is not None:
                    self._local.pop(key, None)
                raise
            self._c.pending = pending
            if record is not None:
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
            await self._sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.05)
        version = parse_record(record)[0]
        with self._state:
            early = self._early.pop(key, None)
            current = self._mine.get(key)
            if (early is None or early < version) and (
                    current is None or parse_record(current)[0] < version):
                self._mine[key] = record
        # a full batch of distinct keys is waiting: write it now.  Sets of
        # keys already pending do not wake the flusher: they coalesce until
        # flush_interval (hot keys would otherwise be rewritten back to back)
        if new and pending >= self._batch_size:
            self._wake.set()

    # ---- reads see pending writes ------------------------------------------

    def _pending_value(self, key: str, record: bytes) -> Any:
        body = parse_record(record)[2]
        if body[:1] != b"v":
            return MISSING, 0            # a delete is pending: absent, do not load
        value = self._store.decode(key, body[1:], check_expiry=False)
        return MISSING if value is MISSING else (value, None)

    async def _peek_more(self, keys: List[str]) -> Dict[str, Tuple[Any, Any]]:
        out = {}
        for k, record in zip(keys, await self._store.queue_records(keys)):
            if record is not None:
                got = self._pending_value(k, record)
                if got is not MISSING:
                    out[k] = got
        return out

    # ---- the flusher -------------------------------------------------------

    async def _run(self) -> None:
        await self._warn_durability()
        backoff = 0.0
        while not self._stop.is_set():
            try:
                written = await self._cycle()
                backoff = 0.0
            except StoreError as exc:
                self._c.add("store_errors")
                self._last_error = exc
                backoff = min(1.0, max(0.02, backoff * 2))
                await self._stop.wait(backoff)
                continue
            except Exception as exc:  # never let the flusher die
                self._last_error = exc
                log.exception("corecache: write-behind flusher error")
                await self._stop.wait(0.1)
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
            await self._wake.wait(wait)

    async def _cycle(self) -> int:
        """Claim and write one batch; returns its size."""
        self._wake.clear()
        if self._unacked:
            with self._state:
                items = list(self._unacked.items())
            await self._ack(items)
        now = monotonic()
        with self._state:
            due = [k for k, (_, at) in self._retry.items() if at <= now][:self._batch_size]
            batch = [(k, self._claimed[k]) for k in due]
            self._writing.update(due)
        taken = list(due)   # what _writing holds for this cycle
        try:
            room = self._batch_size - len(batch)
            if room > 0:
                items, pending, reclaimed, done = await self._store.queue_claim(self._id, room,
                                                                          self._lease)
                self._c.pending = pending
                self._backlog = pending
                if reclaimed:
                    log.info("corecache: %d expired write-behind claim(s) of namespace %r "
                             "returned to the queue", reclaimed, self._store.namespace)
                self._settle_done(done)
                with self._state:
                    for k, record in items:
                        self._claimed[k] = record
                        self._writing.add(k)
                taken += [k for k, _ in items]
                batch += items
            self._cycles += 1
            if not batch:
                if self._cycles % _CHECK_EVERY == 0 and self._mine:
                    await self._check_mine()
                return 0
            # the fence: our leases, re-checked (and renewed) in one atomic
            # step just before the writer runs; a key taken over meanwhile
            # is the new holder's to write
            try:
                held = set(await self._store.queue_hold(self._id, [k for k, _ in batch],
                                                  self._lease, abandon=True))
            except StoreError:
                # claimed, not written: retried (or taken over if the claims
                # are gone), never left claimed and forgotten
                with self._state:
                    for k, _ in batch:
                        self._retry.setdefault(k, [0.0, monotonic() + self._retry_base])
                raise
            fenced = [k for k, _ in batch if k not in held]
            if fenced:
                self._c.add("fenced_writes", len(fenced))
                log.warning("corecache: %d write-behind claim(s) of namespace %r were taken "
                            "over (this flusher stalled past its lease?); left to the new "
                            "holder unwritten", len(fenced), self._store.namespace)
                with self._state:
                    for k in fenced:
                        self._claimed.pop(k, None)
                        self._retry.pop(k, None)
                batch = [(k, r) for k, r in batch if k in held]
            if batch:
                await self._write_batch(batch)
            return len(batch)
        finally:
            with self._state:
                self._writing.difference_update(taken)

    async def _write_batch(self, batch: List[Tuple[str, bytes]]) -> None:
        store = self._store
        values: Dict[str, Any] = {}
        versions: Dict[str, int] = {}
        deletes: List[str] = []
        done: List[Tuple[str, bytes]] = []
        records = dict(batch)
        for k, record in batch:
            version, _, body = parse_record(record)
            versions[k] = version
            if body[:1] == b"d":
                deletes.append(k)
                continue
            value = store.decode(k, body[1:], check_expiry=False)
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
                    if self._versioned:
                        await call(self._writer_many, dict(values),
                                   {k: versions[k] for k in values})
                    else:
                        await call(self._writer_many, dict(values))
                    written += values
                except Exception as exc:
                    self._c.add("write_errors")
                    failed.update(dict.fromkeys(values, exc))
            else:
                for k, v in values.items():
                    try:
                        if self._versioned:
                            await call(self._writer, k, v, versions[k])  # type: ignore[arg-type]
                        else:
                            await call(self._writer, k, v)  # type: ignore[arg-type]
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
                if self._versioned:
                    await call(self._deleter, k, versions[k])
                else:
                    await call(self._deleter, k)
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
            await self._ack(done)

    async def _ack(self, items: List[Tuple[str, bytes]]) -> None:
        statuses, pending = await self._store.queue_ack(self._id, items)   # StoreError: retried
        self._c.pending = pending
        late = [k for k, st in statuses.items() if st == "late"]
        if late:
            self._c.add("late_writes", len(late))
            log.warning("corecache: %d write-behind write(s) of namespace %r finished after "
                        "this flusher's lease ran out and another flusher took them over: "
                        "keys %s; their latest values are queued again, to be written after "
                        "them", len(late), self._store.namespace, _shown(late))
        with self._state:
            for k, record in items:
                self._unacked.pop(k, None)
                self._claimed.pop(k, None)
                self._retry.pop(k, None)
                self._forget(k, record)
        self._progress.set()

    def _settle_done(self, done: List[Tuple[int, str]]) -> None:
        """Forget own records other instances reported settled."""
        if not done:
            return
        with self._state:
            for version, k in done:
                self._forget(k, None, version)
        self._progress.set()

    def _forget(self, key: str, record: Optional[bytes], version: int = -1) -> None:
        """An own record of key (or every one up to version) settled: forget
        it, or remember that it did if set() has not recorded it yet.
        Called with _state held."""
        if record is not None:
            v, origin, _ = parse_record(record)
            if origin != self._id:
                return
            version = v
        current = self._mine.get(key)
        if current is not None:
            if parse_record(current)[0] <= version:
                del self._mine[key]
            return
        if len(self._early) >= 4096:     # entries live for the moment of a set()
            for k in list(self._early)[:2048]:
                del self._early[k]
        self._early[key] = max(version, self._early.get(key, -1))

    def _classify(self, snapshot: Dict[str, bytes], records: List[Optional[bytes]]
                  ) -> Tuple[List[str], List[str]]:
        """Of own records (snapshot) and what the store has pending for
        their keys now: (keys still pending, keys lost).  Forgets the
        settled ones and the lost ones (moved to _lost).  Call right after
        _settle_done of the same atomic look."""
        pending: List[str] = []
        lost: List[str] = []
        with self._state:
            for (k, mine), current in zip(snapshot.items(), records):
                if self._mine.get(k) != mine:
                    continue          # settled meanwhile (or replaced by a newer own set)
                if current == mine or k in self._claimed or k in self._unacked:
                    pending.append(k)  # queued, or our own flusher is on it
                    continue
                version = parse_record(mine)[0]
                if current is not None:
                    cv, origin, _ = parse_record(current)
                    if origin == self._id and cv > version:
                        pending.append(k)   # ours, queued again after a late write
                        continue
                    if cv > version:
                        del self._mine[k]   # replaced by a later write of another
                        continue
                # neither pending nor reported settled: the store lost it
                del self._mine[k]
                self._lost[k] = mine
                lost.append(k)
        self._progress.set()
        if lost:
            self._c.add("lost_writes", len(lost))
            log.error("corecache: %d acknowledged write-behind write(s) of namespace %r were "
                      "lost by the store before any flusher wrote them: keys %s (flush() and "
                      "aclose() raise WritesLostError)", len(lost), self._store.namespace,
                      _shown(lost))
        return pending, lost

    async def _check_mine(self) -> None:
        """Look for own records the store lost (keeps _mine bounded when
        nobody calls flush)."""
        with self._state:
            snapshot = dict(list(self._mine.items())[:_CHECK_CHUNK])
        done, records = await self._store.queue_settle(self._id, list(snapshot))
        self._settle_done(done)
        self._classify(snapshot, records)

    async def _keep(self) -> None:
        """Renew the leases of the claims this flusher holds."""
        interval = self._lease / 3
        while not await self._stop.wait(interval):
            with self._state:
                keys = list(self._claimed)
            if not keys:
                continue
            try:
                held = set(await self._store.queue_hold(self._id, keys, self._lease))
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

    async def flush(self, timeout: Optional[float] = 30.0) -> None:
        """Return once every write this instance acknowledged before the
        call is written (or replaced by a later write of the key).  Raise
        WritesLostError naming the writes the store lost (they are
        forgotten: write them again), or PendingWritesError naming what is
        still pending after ``timeout`` seconds (None: wait as long as it
        takes; they stay queued in the store)."""
        self._ensure()
        deadline = None if timeout is None else monotonic() + timeout
        with self._state:
            snapshot = dict(self._mine)
            self._urgent += 1
        error: Optional[BaseException] = None
        try:
            while snapshot:
                self._wake.set()
                self._progress.clear()    # before looking: settling after it wakes the wait
                try:
                    done, records = await self._store.queue_settle(self._id, list(snapshot))
                except StoreError as exc:
                    self._c.add("store_errors")
                    error = exc
                else:
                    self._settle_done(done)
                    still, _ = self._classify(snapshot, records)
                    snapshot = {k: snapshot[k] for k in still}
                    if not snapshot:
                        break
                now = monotonic()
                if deadline is not None and now >= deadline:
                    last = self._last_error or error
                    lost = self._take_lost()
                    keys = list(snapshot)
                    if lost:
                        raise self._lost_error(lost, keys, last)
                    raise PendingWritesError(
                        f"{len(keys)} write(s) still pending after {timeout}s: keys "
                        f"{_shown(keys)}; they were queued in the store at its last look, "
                        f"where the next flusher writes them (last error: {last!r})",
                        keys, last)
                await self._progress.wait(0.05 if deadline is None else
                                          max(0.001, min(0.05, deadline - now)))
            try:   # stats() right after flush() reflects it
                self._c.pending = await self._store.queue_count()
            except StoreError:
                self._c.add("store_errors")
        finally:
            with self._state:
                self._urgent -= 1
        lost = self._take_lost()
        if lost:
            raise self._lost_error(lost, [], self._last_error)

    def _take_lost(self) -> List[str]:
        with self._state:
            lost = list(self._lost)
            self._lost.clear()
        return lost

    def _lost_error(self, lost: List[str], pending: List[str],
                    last: Optional[BaseException]) -> WritesLostError:
        still = (f"; {len(pending)} other write(s) are still pending: keys {_shown(pending)}"
                 if pending else "")
        return WritesLostError(
            f"{len(lost)} acknowledged write(s) were lost by the store before any flusher "
            f"wrote them: keys {_shown(lost)}. The store no longer holds them (it restarted "
            f"without persistence, failed over to a replica that lacked them, or was "
            f"flushed); write them again{still}", lost, pending, last)

    async def aclose(self, timeout: Optional[float] = 30.0) -> None:
        """flush(timeout), then stop the flusher, wait for the batch it may
        be writing (however long the writer takes: aclose() never returns
        while this instance may still write), and hand the claims it still
        holds back to the queue.  Raises flush's PendingWritesError or
        WritesLostError afterwards; pending writes stay queued in the store."""
        if self._closed:
            return
        error: Optional[BaseException] = None
        try:
            await self.flush(timeout)
        except BaseException as exc:
            # PendingWritesError, WritesLostError, or anything else flush
            # met: the flusher is stopped all the same, then it is raised
            error = exc
        self._closed = True
        self._stop.set()
        self._wake.set()
        for w in (self._keeper, self._flusher):
            if w.current():
                continue
            while not await w.join(self._lease):
                log.warning("corecache: aclose() of a write-behind cache of namespace %r "
                            "waits for its writer call to return (writing keys %s)",
                            self._store.namespace, _shown(sorted(self._writing)))
        if isinstance(error, PendingWritesError) and not error.lost:
            try:   # the batch it waited for may have settled them
                await self.flush(0)
                error = None
            except PendingWritesError as exc:
                error = exc
        with self._state:
            keys = [k for k in self._claimed if k not in self._writing and k not in self._unacked]
        try:
            await self._store.queue_release(self._id, keys, final=True)
        except StoreError:
            pass   # their leases run out instead
        if error is not None:
            raise error

    async def pending(self) -> int:
        """Writes pending in the namespace, asked of the store now (a
        method: it is a round trip)."""
        n = await self._store.queue_count()
        self._c.pending = n
        return n
