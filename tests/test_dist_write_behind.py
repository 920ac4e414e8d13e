"""WriteBehindCache: coalescing, batching, retries, backpressure, flush and
close, reads of pending writes, takeover of a dead flusher's claims, in
both styles (the ``dist`` fixture, dist_styles.py).  The kill -9 recovery
with real processes is in test_dist_processes.py."""
from __future__ import annotations

import os
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corecache.distributed import (MemoryStore, PendingLimitReached, PendingWritesError,
                                   RedisStore, WriteBehindCache, WritesLostError)
from dist_helpers import SlotMigration, wait_for
from corecache.distributed.stores import parse_record

pytestmark = pytest.mark.redis

EXAMPLES = int(os.environ.get("CORECACHE_HYPOTHESIS_EXAMPLES", "100"))


class Writer:
    def __init__(self, fail: int = 0, delay: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.db = {}
        self.calls = []
        self.batches = []
        self.fail = fail
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def _maybe_fail(self):
        self.entered.set()
        self.gate.wait(30)
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise IOError("database unavailable")

    def __call__(self, key, value):
        self._maybe_fail()
        with self.lock:
            self.calls.append((key, value))
            self.db[key] = value

    def many(self, mapping):
        self._maybe_fail()
        with self.lock:
            self.batches.append(dict(mapping))
            self.db.update(mapping)

    def delete(self, key):
        self._maybe_fail()
        with self.lock:
            self.calls.append((key, "<deleted>"))
            self.db.pop(key, None)


def test_coalesces_and_batches(dist, make_store, impl):
    store = dist.make_store()
    w = Writer()
    wb = dist.WriteBehindCache(store, writer_many=w.many, batch_size=100, flush_interval=30,
                          local=impl.LRUCache(100))
    try:
        for i in range(1000):
            wb.set(f"k{i % 10}", i)
        assert wb.get("k3") == 993                      # the cache has the latest at once
        assert store.get("k3") == 993
        assert wb.stats().pending_writes == 10
        assert wb.pending() == 10                       # a method, asked of the store
        wb.flush(10)
        assert wb.pending() == 0
        # 1000 sets, 10 keys: the latest values, in one batch (two if the
        # flusher's first look at the queue, when it starts, met a few)
        assert w.db == {f"k{j}": 990 + j for j in range(10)}
        assert len(w.batches) <= 2 and w.batches[-1] == w.db
        s = wb.stats()
        assert s.writes <= 20 and s.flushes <= 2 and s.pending_writes == 0
        assert s.mean_flush_seconds is not None and s.last_flush_latency >= 0
        assert s.flush_latency is not None
    finally:
        wb.close()


def test_writer_per_key_in_batches_of_batch_size(dist, make_store):
    store = dist.make_store()
    w = Writer()
    wb = dist.WriteBehindCache(store, w, batch_size=7, flush_interval=30)
    try:
        wb.set_many({f"k{i}": i for i in range(20)})
        wb.flush(10)
        assert w.db == {f"k{i}": i for i in range(20)}
        assert len(w.calls) == 20 and wb.stats().flushes >= 3
    finally:
        wb.close()


def test_a_full_batch_is_written_without_waiting_for_the_interval(dist, make_store):
    w = Writer()
    wb = dist.WriteBehindCache(dist.make_store(), writer_many=w.many, batch_size=5, flush_interval=30)
    try:
        for i in range(5):
            wb.set(f"k{i}", i)
        deadline = time.monotonic() + 5
        while not w.batches and time.monotonic() < deadline:
            time.sleep(0.005)
        assert w.batches
    finally:
        wb.close()


def test_retries_with_backoff_until_written(dist, make_store):
    w = Writer(fail=3)
    wb = dist.WriteBehindCache(dist.make_store(), w, flush_interval=0.01, retry_base=0.01, retry_max=0.05)
    try:
        wb.set("a", 1)
        wb.flush(10)
        assert w.db == {"a": 1}
        s = wb.stats()
        assert s.write_errors == 3 and s.writes == 1
    finally:
        wb.close()


def test_flush_timeout_says_what_is_left_and_keeps_it(dist, make_store):
    store = dist.make_store()
    w = Writer(fail=10 ** 6)
    wb = dist.WriteBehindCache(store, w, flush_interval=0.01, retry_base=0.01, retry_max=0.02)
    try:
        wb.set("a", 1)
        wb.set("b", 2)
        with pytest.raises(dist.PendingWritesError) as info:
            wb.flush(0.3)
        assert sorted(info.value.keys) == ["a", "b"]
        assert isinstance(info.value.last_error, IOError)
        assert "still pending" in str(info.value)
        w.fail = 0
        wb.flush(10)                                    # still queued, now written
        assert w.db == {"a": 1, "b": 2}
    finally:
        wb.close()
    w2 = Writer(fail=10 ** 6)
    wb2 = dist.WriteBehindCache(store, w2, flush_interval=0.01, retry_base=0.01)
    wb2.set("c", 3)
    with pytest.raises(dist.PendingWritesError):
        wb2.close(timeout=0.2)                          # close stops anyway, and says so
    assert [parse_record(r)[2] for r in store.queue_records(["c"])] == [b"v3"]   # left queued
    w3 = Writer()
    wb3 = dist.WriteBehindCache(store, w3, flush_interval=0.01)
    try:
        deadline = time.monotonic() + 5
        while "c" not in w3.db and time.monotonic() < deadline:
            time.sleep(0.01)
        assert w3.db == {"c": 3}
    finally:
        wb3.close()


def test_backpressure_at_max_pending(dist, make_store):
    store = dist.make_store()
    w = Writer()
    w.gate.clear()                                      # the writer hangs
    wb = dist.WriteBehindCache(store, w, max_pending=3, block_timeout=0.2, flush_interval=0.01)
    try:
        for k in "abc":
            wb.set(k, 1)
        wb.set("a", 2)                                  # a pending key coalesces: fine
        t0 = time.monotonic()
        with pytest.raises(dist.PendingLimitReached, match="max_pending=3"):
            wb.set("d", 1)
        assert time.monotonic() - t0 >= 0.2
        assert store.get("d") is None                   # not cached either
        unblock = threading.Timer(0.1, w.gate.set)
        unblock.start()
        wb.set("d", 1)                                  # blocks until there is room
        wb.flush(10)
        assert w.db["d"] == 1 and w.db["a"] == 2
    finally:
        w.gate.set()
        wb.close()


def test_reads_see_pending_writes_and_deletes(dist, make_store):
    store = dist.make_store()
    w = Writer()
    w.gate.clear()
    loads = []
    wb = dist.WriteBehindCache(store, w, deleter=w.delete, ttl=0.05, flush_interval=30,
                          loader=lambda k: loads.append(k) or "from the database")
    try:
        wb.set("a", "new")
        wb.set("b", "new")
        wb.delete("b")
        time.sleep(0.1)                                 # the cached copies expired
        assert store.get("a") is None
        assert wb.get("a") == "new"                     # from the pending write
        assert wb.get("b", "none") == "none"            # a pending delete: absent
        assert wb.get_many(["a", "b", "c"]) == {"a": "new", "c": "from the database"}
        assert loads == ["c"]
        w.gate.set()
        wb.flush(10)
        assert w.db == {"a": "new"}
        # the delete came last (the set of b before it was coalesced away,
        # unless the flusher had claimed it already)
        assert [v for k, v in w.calls if k == "b"][-1] == "<deleted>"
    finally:
        w.gate.set()
        wb.close()


def test_delete_without_deleter_only_evicts(dist, make_store):
    store = dist.make_store()
    w = Writer()
    wb = dist.WriteBehindCache(store, w, flush_interval=0.01)
    try:
        wb.set("a", 1)
        assert wb.delete("a") is True
        wb.flush(10)
        assert w.db == {"a": 1}
    finally:
        wb.close()


def test_a_dead_flushers_claims_are_taken_over(dist, make_store):
    """Claims of a consumer that stopped (died) go back to the queue when
    their lease runs out, and another instance writes them."""
    store = dist.make_store()
    store.queue_push("a", b"v1", None, 0, "00")
    store.queue_push("b", b"v2", None, 0, "00")
    items, _, _, _ = store.queue_claim("dead consumer", 10, 0.3)
    assert len(items) == 2
    w = Writer()
    wb = dist.WriteBehindCache(store, w, flush_interval=0.05, lease=1)
    try:
        if dist.is_memory(store):
            time.sleep(0.35)
        deadline = time.monotonic() + 5
        while len(w.db) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert w.db == {"a": 1, "b": 2}
    finally:
        wb.close()


def test_a_slow_writer_keeps_its_lease(dist, make_store):
    store = dist.make_store()
    w = Writer(delay=1.0)
    wb = dist.WriteBehindCache(store, w, flush_interval=0.01, lease=0.6)
    other = Writer()
    wb2 = None
    try:
        wb.set("a", 1)
        time.sleep(0.1)                                 # wb is writing it now
        wb2 = dist.WriteBehindCache(store, other, flush_interval=0.01, lease=0.6)
        wb.flush(10)
        time.sleep(0.1)
        assert w.calls == [("a", 1)] and other.calls == []
    finally:
        wb.close()
        if wb2 is not None:
            wb2.close()


def test_closed_cache_refuses_writes(dist, make_store):
    wb = dist.WriteBehindCache(dist.make_store(), Writer())
    wb.close()
    wb.close()
    with pytest.raises(RuntimeError, match="closed"):
        wb.set("a", 1)


def test_validation(dist, make_store):
    store = dist.make_store()
    with pytest.raises(TypeError, match="writer= or writer_many="):
        dist.WriteBehindCache(store)
    with pytest.raises(ValueError, match="batch_size"):
        dist.WriteBehindCache(store, Writer(), batch_size=0)
    with pytest.raises(ValueError, match="lease"):
        dist.WriteBehindCache(store, Writer(), lease=-1)
    with pytest.raises(TypeError, match="JSON"):
        wb = dist.WriteBehindCache(store, Writer())
        try:
            wb.set("a", object())
        finally:
            wb.close()


ops = st.lists(st.tuples(st.sampled_from(["set", "set", "set", "delete", "flush"]),
                         st.sampled_from("abcd"), st.integers(0, 9)), max_size=40)


@settings(max_examples=min(EXAMPLES, 60), deadline=None)
@given(ops, st.integers(1, 5))
def test_coalescing_semantics(operations, batch_size):
    """Whatever the interleaving of sets, deletes and flushes: at the end
    the writer holds exactly the latest state of every key, and each key's
    writes reached it in the order they were made."""
    store = MemoryStore()
    w = Writer()
    wb = WriteBehindCache(store, w, deleter=w.delete, batch_size=batch_size, flush_interval=0.01)
    model = {}
    made = {k: [] for k in "abcd"}
    try:
        for op, key, value in operations:
            if op == "set":
                wb.set(key, value)
                model[key] = value
                made[key].append(value)
            elif op == "delete":
                wb.delete(key)
                model.pop(key, None)
                made[key].append("<deleted>")
            else:
                wb.flush(10)
        wb.flush(10)
    finally:
        wb.close()
    assert w.db == model
    for key in "abcd":
        seen = [v for k, v in w.calls if k == key]
        it = iter(made[key])
        assert all(v in it for v in seen), (key, seen, made[key])   # a subsequence
        if made[key]:
            assert seen and seen[-1] == made[key][-1]


def test_write_behind_sets_invalidate_near_caches(dist, make_store, impl):
    store = dist.make_store()
    near = dist.NearCache(store, local=impl.LRUCache(10, default_ttl=60))
    wb = dist.WriteBehindCache(store, Writer(), flush_interval=0.01)
    try:
        wb.set("k é/\"", 1)
        time.sleep(0.05)
        assert near.get("k é/\"") == 1 and near.local.peek("k é/\"") == 1
        wb.set("k é/\"", 2)                             # the message carries the key
        deadline = time.monotonic() + 3
        while near.local.peek("k é/\"") is not None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert near.get("k é/\"") == 2
    finally:
        wb.close()
        near.close()


# ---- issue 13: versions, lost queues, bounded memory, close, migrations --------


def test_a_versioned_writer_gets_versions_that_grow(dist, make_store):
    store = dist.make_store()
    calls = []
    wb = dist.WriteBehindCache(store, lambda k, v, ver: calls.append((k, v, ver)), versioned=True,
                          deleter=lambda k, ver: calls.append((k, None, ver)),
                          flush_interval=0.01)
    batches = []
    many = dist.WriteBehindCache(dist.make_store(namespace="many"),   # a queue of its own
                            writer_many=lambda values, versions: batches.append(
                                (values, versions)), versioned=True, flush_interval=0.01)
    try:
        for i in range(4):
            wb.set("a", i)
            wb.flush(10)
        wb.delete("a")
        wb.flush(10)
        assert [(k, v) for k, v, _ in calls] == [("a", 0), ("a", 1), ("a", 2), ("a", 3),
                                                ("a", None)]
        versions = [ver for _, _, ver in calls]
        assert versions == sorted(set(versions)) and versions[0] > 10 ** 15   # microseconds
        many.set_many({"x": 1, "y": 2})
        many.flush(10)
        values = {k: v for vs, _ in batches for k, v in vs.items()}
        got = {k: ver for _, vers in batches for k, ver in vers.items()}
        assert values == {"x": 1, "y": 2} and set(got) == {"x", "y"}
        assert min(got.values()) > versions[-1]
    finally:
        wb.close()
        many.close()


def _lose_queue(store):
    """What a restart without persistence does to the queue (FLUSHALL on
    a real server, every node of a cluster)."""
    if "MemoryStore" in type(getattr(store, "_obj", store)).__name__:
        store.lose_queue()
    else:
        store.client.flushall()


def test_flush_names_the_writes_the_store_lost(dist, make_store):
    """The store loses its queue (200 acknowledged writes, a batch of them
    being written): flush() raised nothing and close() returned normally.
    Now it raises WritesLostError naming exactly the writes nobody wrote."""
    store = dist.make_store()
    w = Writer()
    w.gate.clear()
    wb = dist.WriteBehindCache(store, w, flush_interval=0.01, batch_size=50)
    try:
        acked = {f"k{i}": i for i in range(200)}
        for k, v in acked.items():
            wb.set(k, v)
        assert w.entered.wait(10)            # a batch is being written
        _lose_queue(store)
        w.gate.set()
        with pytest.raises(dist.WritesLostError) as info:
            wb.flush(10)
        lost, written = set(info.value.lost), set(w.db)
        assert lost | written == set(acked) and not lost & written and len(lost) >= 100
        assert info.value.keys == []
        text = str(info.value)
        assert "lost by the store" in text and "still pending" not in text
        assert wb.stats().lost_writes == len(lost)
        print(f"\n[fault run] queue lost with 200 acknowledged: written {len(written)}, "
              f"lost {len(lost)} (all named by flush)")
        wb.flush(10)                         # reported once
        wb.set("after", 1)
        wb.flush(10)
        assert w.db["after"] == 1
    finally:
        w.gate.set()
        wb.close()


def test_unsettled_writes_stay_bounded_with_two_instances(dist, make_store):
    """Two instances set shared keys: each kept every key the other one
    flushed until flush() (about a quarter of the sets each).  Now each
    forgets its writes as soon as they are written or replaced."""
    store = dist.make_store()
    a = dist.WriteBehindCache(store, lambda k, v: None, flush_interval=0.01, batch_size=500)
    b = dist.WriteBehindCache(store, lambda k, v: None, flush_interval=0.01, batch_size=500)
    try:
        for i in range(6000):
            (a if i % 2 else b).set(f"k{i % 1500}", i)
        assert wait_for(lambda: store.queue_count() == 0, 30)
        assert wait_for(lambda: len(a._mine) + len(b._mine) == 0, 10), (len(a._mine),
                                                                        len(b._mine))
    finally:
        a.close()
        b.close()


def test_close_never_returns_while_its_flusher_may_still_write(dist, make_store):
    """close() gave up on its flusher after 5 s and returned while the
    writer it had called was still running (and would write later)."""
    store = dist.make_store()
    w = Writer()
    w.gate.clear()
    wb = dist.WriteBehindCache(store, w, flush_interval=0.01)
    wb.set("a", 1)
    assert w.entered.wait(10)
    done = threading.Event()
    box = {}

    def close():
        try:
            wb.close(timeout=0.1)
        except BaseException as exc:  # noqa: B902
            box["error"] = exc
        box["written when close returned"] = dict(w.db)
        done.set()
    t = threading.Thread(target=close)
    t.start()
    try:
        assert not done.wait(6.0)            # still waiting for the writer
    finally:
        w.gate.set()
        t.join(10)
    assert box == {"written when close returned": {"a": 1}}   # written, so no error


def test_write_behind_sets_wait_through_a_migration_of_their_queue(redis_cluster):
    """The queue's slot is halfway through a migration (its keys split
    between two nodes): a set waits until the migration ends instead of
    failing with 'TTL exhausted'."""
    client = redis_cluster.client()
    store = RedisStore(client, namespace="wbm", circuit_breaker=0.2)
    db = {}
    wb = WriteBehindCache(store, db.__setitem__, flush_interval=0.02)
    migration = None
    try:
        wb.set("a", 1)
        wb.flush(10)
        migration = SlotMigration(redis_cluster, client.keyslot("{wbm}"))
        migration.move(migration.keys_on_source()[:1])
        done = threading.Event()
        box = {}

        def set_b():
            try:
                wb.set("b", 2)
            except BaseException as exc:  # noqa: B902
                box["error"] = exc
            done.set()
        t = threading.Thread(target=set_b)
        t.start()
        assert not done.wait(0.6)            # waiting: the queue's keys are split
        migration.finish()
        t.join(10)
        assert box == {}
        wb.flush(10)
        assert db == {"a": 1, "b": 2}
    finally:
        wb.close()
        if migration is not None:
            migration.abort()
            migration.close()
        store.close()
        client.close()


def test_close_stops_the_flusher_whatever_its_flush_raised():
    # close() flushes first; an error other than PendingWritesError out of
    # that flush (here the store failing in a way it never should) escaped
    # before the flusher was told to stop, which then ran on for good.  The
    # sync layer is generated from the async one: one code path
    store = MemoryStore()
    w = Writer()
    w.gate.clear()                                      # nothing gets written
    wb = WriteBehindCache(store, w, flush_interval=0.01)
    wb.set("a", 1)

    def broken(*args, **kwargs):
        raise RuntimeError("the store broke")
    store.queue_settle = broken                         # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="the store broke"):
        wb.close(timeout=1)
    w.gate.set()
    assert wait_for(lambda: not [t for t in threading.enumerate()
                                 if t.name.startswith("corecache-write-behind") and t.is_alive()])
    with pytest.raises(RuntimeError, match="closed"):
        wb.set("b", 2)
