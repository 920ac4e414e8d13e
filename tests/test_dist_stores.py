"""The store interface, on MemoryStore, RedisStore on one node and on a
3-master cluster: values, TTLs, batches (and their round trips), locks,
the write-behind queue primitives, validation."""
from __future__ import annotations

import math
import threading
import time

import pytest

from conftest import FakeClock
from corecache.distributed import (MemoryStore, RedisStore, StoreError, StoreUnavailable)
from corecache.distributed.stores import lock_failure, lock_holder, parse_record, sha1
from dist_helpers import SlotMigration, wait_for

pytestmark = pytest.mark.redis


def test_get_set_delete(make_store):
    s = make_store()
    assert s.get("a") is None
    assert s.get("a", 7) == 7
    s.set("a", {"x": [1, 2]})
    s.set(5, "five")
    assert s.get("a") == {"x": [1, 2]}
    assert s.get("5") == "five" and s.get(5) == "five"
    s.set("none", None)
    assert s.get("none", "default") is None       # a stored None is a hit
    assert s.delete("a") is True
    assert s.delete("a") is False
    assert s.get("a") is None


def test_batches(make_store):
    s = make_store()
    data = {f"k{i}": i for i in range(2500)}       # over one script chunk
    s.set_many(data)
    got = s.get_many(list(data) + ["absent", "k3"])
    assert got == data
    assert s.get_many([]) == {}
    assert s.delete_many(list(data)[:1000] + ["absent"]) == 1000
    assert len(s.get_many(list(data))) == 1500
    s.set_many({})
    assert s.delete_many([]) == 0
    with pytest.raises(TypeError, match="mapping"):
        s.set_many([("a", 1)])


def test_ttl_set_with_the_value(make_store):
    s = make_store(default_ttl=30)
    s.set("default", 1)
    s.set("short", 1, ttl=0.05)
    s.set("never", 1, ttl=math.inf)
    s.set_many({"m1": 1, "m2": 2}, ttl=60)
    v, left = s.get_with_ttl("default")
    assert v == 1 and 29 < left <= 30
    assert s.get_with_ttl("never") == (1, None)
    v, left = s.get_with_ttl("m2")
    assert 59 < left <= 60
    assert s.get_with_ttl("absent", "d") == ("d", None)
    if isinstance(s, MemoryStore):
        return   # its clock is checked below without sleeping
    time.sleep(0.1)
    assert s.get("short") is None


def test_memory_store_ttl_with_a_fake_clock():
    clock = FakeClock()
    s = MemoryStore(clock=clock, default_ttl=10)
    s.set("a", 1)
    s.set("b", 2, ttl=1)
    clock.tick(1)
    assert s.get("b") is None and s.get("a") == 1
    assert s.get_with_ttl("a") == (1, 9)
    clock.tick(9)
    assert s.get_many(["a", "b"]) == {}
    assert len(s) == 0


def test_ttl_validation(make_store):
    s = make_store()
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="ttl"):
            s.set("a", 1, ttl=bad)
    with pytest.raises(TypeError, match="ttl"):
        s.set("a", 1, ttl="10")
    with pytest.raises(ValueError, match="default_ttl"):
        MemoryStore(default_ttl=0)


def test_unserializable_value_is_a_type_error_and_stores_nothing(make_store):
    s = make_store()
    s.set("a", 1)
    with pytest.raises(TypeError, match="JSON"):
        s.set("a", object())
    with pytest.raises(TypeError, match="JSON"):
        s.set_many({"a": 2, "b": object()})
    assert s.get("a") == 1 and s.get("b") is None


def test_clear_is_per_namespace(make_store):
    a = make_store(namespace="a")
    b = make_store(namespace="b")
    a.set_many({"x": 1, "y*": 2})
    b.set("x", 3)
    a.clear()
    assert a.get_many(["x", "y*"]) == {}
    assert b.get("x") == 3


def test_fill_locks(make_store):
    s = make_store()
    assert s.lock("k", "t1", 5)
    assert s.lock("k", "t1", 5)                      # the same token takes it again
    assert not s.lock("k", "t2", 5)
    datas, states = s.lock_state(["k", "other"])
    assert datas == [None, None] and lock_holder(states[0]) == "t1" and states[1] is None
    s.unlock("k", "t2")                               # not its lock: nothing happens
    assert lock_holder(s.lock_state(["k"])[1][0]) == "t1"
    s.unlock("k", "t1")
    assert s.lock_state(["k"])[1] == [None]
    assert s.lock("k", "t3", 0.05)
    time.sleep(0.08)
    assert s.lock("k", "t4", 5)                       # the lease ran out
    assert set(s.lock_many(["a", "b", "k"], "t5", 5)) == {"a", "b"}
    s.unlock_many(["a", "b"], "t5")
    assert set(s.lock_many(["a", "b"], "t6", 5)) == {"a", "b"}
    s.renew([("a", "t6"), ("b", "other")], 5)
    # a failed load leaves its failure for the waiters; anyone may lock again
    s.unlock("a", "t6", failure="RuntimeError: db down")
    assert lock_failure(s.lock_state(["a"])[1][0]) == ("t6", "RuntimeError: db down")
    assert s.lock("a", "t7", 5)


def test_fills_store_only_under_an_untouched_lock(make_store):
    s = make_store()
    assert s.lock("k", "t", 5)
    assert s.fill("k", b"1", None, "t", None)
    assert s.get("k") == 1 and s.lock_state(["k"])[1] == [None]    # and released
    assert not s.fill("k", b"2", None, "t", None)                   # not locked any more
    for write in (lambda: s.set("x", "new"), lambda: s.delete("x"),
                  lambda: s.set_many({"x": "new"}), lambda: s.delete_many(["x"])):
        s.delete("x")
        assert s.lock("x", "t", 5)
        write()                                       # a write while the load runs...
        assert not s.fill("x", b'"old"', None, "t", None)   # ...refuses the fill
        assert s.get("x") in (None, "new")
        assert s.lock("x", "t2", 5)                   # the poisoned lock is free
        s.unlock("x", "t2")
    # a fill that saw a value stores only over that value (refresh-ahead)
    s.set("r", "seen")
    seen = s.fetch("r")
    assert s.lock("r", "t", 5)
    assert s.fill("r", b'"refreshed"', None, "t", None, expect=sha1(seen))
    assert s.get("r") == "refreshed"
    assert s.lock("r", "t", 5)
    assert not s.fill("r", b'"again"', None, "t", None, expect=sha1(seen))   # not what it saw
    assert s.get("r") == "refreshed"
    # a fill of a key someone stored meanwhile without corecache is refused
    assert s.lock("y", "t", 5)
    s.put("y", b'"other"', None, None)
    assert not s.fill("y", b'"old"', None, "t", None)
    assert s.fill_many([], None, "t", None) == []
    assert s.lock_many(["m1", "m2"], "t", 5) == ["m1", "m2"]
    s.set("m2", 0)
    assert s.fill_many([("m1", b"1", None), ("m2", b"2", None)], 60_000, "t", None) == ["m1"]
    assert s.get_many(["m1", "m2"]) == {"m1": 1, "m2": 0}


def test_write_behind_queue_primitives(make_store):
    s = make_store()
    a1, n, new = s.queue_push("a", b"v1", None, 0, "aa")
    assert n == 1 and new and parse_record(a1)[1:] == ("aa", b"v1")
    b2, n, _ = s.queue_push("b", b"v2", None, 0, "aa")
    a3, n, new = s.queue_push("a", b"v3", None, 0, "bb")     # coalesced, another origin
    assert n == 2 and not new and parse_record(a3)[0] > parse_record(a1)[0]
    assert s.get("a") == 3                                    # and cached
    assert s.queue_push("c", b"v4", None, 2, "aa")[0] is None      # max_pending
    items, pending, reclaimed, done = s.queue_claim("aa", 10, 5)
    assert items == [("a", a3), ("b", b2)] and pending == 2 and reclaimed == 0
    assert done == [(parse_record(a1)[0], "a")]              # aa's a1 was replaced by bb
    assert s.queue_claim("cc", 10, 5)[0] == []                # claimed keys are not handed out twice
    a5, _, _ = s.queue_push("a", b"v5", None, 0, "aa")       # a newer value while claimed
    assert s.queue_ack("aa", items) == ({"a": "newer", "b": "done"}, 1)
    assert s.queue_records(["a", "b"]) == [a5, None]
    items, _, _, _ = s.queue_claim("cc", 10, 0.05)
    assert items == [("a", a5)]
    time.sleep(0.08)
    items, _, reclaimed, _ = s.queue_claim("aa", 10, 5)      # cc's lease ran out
    assert items == [("a", a5)] and reclaimed == 1
    assert s.queue_hold("aa", ["a"], 5) == ["a"]
    assert s.queue_hold("cc", ["a"], 5) == []
    assert s.queue_ack("aa", items) == ({"a": "done"}, 0)
    # cc was only stalled: its late write of a5 lands after aa's, so the
    # latest record is queued again with a newer version, to be written after
    assert s.queue_ack("cc", [("a", a5)]) == ({"a": "late"}, 1)
    (again,) = s.queue_records(["a"])
    assert parse_record(again)[1:] == ("aa", b"v5") and parse_record(again)[0] > parse_record(a5)[0]
    assert s.queue_ack("cc", [("a", a5)]) == ({"a": "gone"}, 1)    # repaired once
    done, records = s.queue_settle("bb", ["a", "b"])
    assert done == [(parse_record(a3)[0], "a")] and records == [again, None]
    assert s.queue_settle("bb", [])[0] == []                  # emptied
    items, _, _, _ = s.queue_claim("aa", 10, 5)
    s.queue_release("aa", ["a"])
    assert s.queue_claim("dd", 10, 5)[0] == [("a", again)]
    assert s.queue_count() == 1
    d, _, _ = s.queue_push("d", b"d", None, 0, "aa")          # a queued delete
    assert parse_record(d)[2] == b"d" and s.get("d") is None
    # a consumer that saw its lease go before writing abandons the key: no repair
    items, _, _, _ = s.queue_claim("ee", 10, 0.05)
    assert items == [("d", d)]
    time.sleep(0.08)
    assert s.queue_claim("ff", 10, 5)[0] == [("d", d)]
    assert s.queue_hold("ee", ["d"], 5, abandon=True) == []
    assert s.queue_ack("ff", [("d", d)]) == ({"d": "done"}, 1)
    assert s.queue_ack("ee", [("d", d)]) == ({"d": "gone"}, 1)


def test_redis_store_validation(redis_server):
    import redis
    with pytest.raises(TypeError, match="redis.Redis"):
        RedisStore(object())
    c = redis.Redis(port=redis_server.port, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses=False"):
        RedisStore(c)
    c.close()
    with pytest.raises(ValueError, match="circuit_breaker"):
        RedisStore.from_url(redis_server.url, circuit_breaker=0)
    s = RedisStore.from_url(redis_server.url, namespace="n", default_ttl=5)
    assert s.namespace == "n" and s.default_ttl == 5 and not s.is_cluster
    assert s.ping()
    assert "single node" in repr(s)
    s.close()


def test_single_node_batches_take_one_round_trip(redis_server):
    from redis_servers import counting_client
    client = counting_client(redis_server.port)
    s = RedisStore(client)
    s.ping()                                   # connected
    data = {f"key:{i}": {"i": i} for i in range(1000)}
    s.set("warm", 1)                           # the scripts are loaded
    for call in (lambda: s.set_many(data, ttl=60), lambda: s.get_many(list(data)),
                 lambda: s.set_many(data), lambda: s.delete_many(list(data)),
                 lambda: s.get("key:1"), lambda: s.set("k", 1)):
        before = client.counter.sends
        call()
        assert client.counter.sends - before == 1
    # the server saw one MGET for the 1000 keys, not 1000 GETs
    client.config_resetstat()
    s.get_many(list(data))
    stats = client.info("commandstats")
    assert stats["cmdstat_mget"]["calls"] == 1 and "cmdstat_get" not in stats
    client.close()


def test_cluster_groups_batches_by_slot(redis_cluster):
    c = redis_cluster.client()
    s = RedisStore(c)
    assert s.is_cluster
    data = {f"key:{i}": i for i in range(500)}
    data.update({"{tag}a": "a", "{tag}b": "b"})
    s.set_many(data, ttl=60)
    assert s.get_many(list(data)) == data
    # the keys really are spread over the masters
    per_node = [n.client().dbsize() for n in redis_cluster.nodes]
    assert all(n > 0 for n in per_node) and sum(per_node) == len(data)
    assert s.delete_many(list(data)) == len(data)
    s.close()
    c.close()


def test_breaker_fails_fast_then_retries(fresh_redis):
    from redis_servers import quick_client
    s = RedisStore(quick_client(fresh_redis.port), circuit_breaker=0.3)
    s.set("a", 1)
    fresh_redis.kill()
    with pytest.raises(StoreUnavailable, match="unreachable"):
        s.get("a")
    # open breaker: refused without trying the server (its own message says so)
    with pytest.raises(StoreUnavailable, match="circuit breaker"):
        s.get("a")
    fresh_redis.start()
    time.sleep(0.35)
    assert s.get("a") is None          # tried again (the restarted server is empty)
    s.client.close()


def test_errors_other_than_unavailability(fresh_redis):
    from redis_servers import quick_client
    c = quick_client(fresh_redis.port)
    s = RedisStore(c)
    c.config_set("maxmemory", 1)       # anything is more than 1 byte
    with pytest.raises(StoreError, match="OOM|OutOfMemory") as info:
        s.set("a", "x" * 100)
    assert not isinstance(info.value, StoreUnavailable)
    with pytest.raises(StoreError, match="OOM|OutOfMemory"):
        s.set_many({"a": 1, "b": 2}, ttl=5)
    assert s.get("a") is None          # reads still work
    c.close()


# ---- issue 13 --------------------------------------------------------------------


def test_namespaces_never_overlap(make_store):
    """'app' + key 'v2:user' was the Redis key of 'app:v2' + 'user': a
    namespace can no longer contain ':' (nor '#', braces, lone surrogates),
    and no user key reaches another namespace or an internal key."""
    from corecache.distributed import WriteBehindCache
    for bad in ("app:v2", "app:", ":", "a#b", "{a}", "a}", "a\udc80"):
        with pytest.raises(ValueError, match="namespace"):
            make_store(namespace=bad)
    app, app2 = make_store(namespace="app"), make_store(namespace="app2")
    written = {}
    gate = threading.Event()

    def writer(k, v):
        gate.wait(10)
        written[k] = v
    wb = WriteBehindCache(app2, writer, flush_interval=0.01)
    try:
        for i in range(100):
            wb.set(f"user{i}", i)
        # user keys of app spelling the internal names of app and app2
        for name in ("#wb:{app}:pending", "2#wb:{app2}:pending", "2:user1", "#lock:user1",
                     "2#inv", "#inv", "v2:user"):
            app.set(name, "app's")
        app.clear()
        assert app2.queue_count() == 100 and app2.get("user1") == 1
        wb.set("user100", 100)                   # the queue is intact: no WRONGTYPE
        gate.set()
        wb.flush(10)
        assert written == {f"user{i}": i for i in range(101)}
        assert app.get_many(["v2:user", "2:user1"]) == {}
    finally:
        gate.set()
        wb.close()


def test_keys_that_are_not_utf8(make_store):
    """A key with a lone surrogate cannot name a stored entry: reads find
    nothing (no UnicodeEncodeError), writes raise ValueError naming it."""
    s = make_store()
    bad = "user\udc80"
    s.set("ok", 1)
    assert s.get(bad, "d") == "d" and s.get_with_ttl(bad, "d") == ("d", None)
    assert s.get_many([bad, "ok"]) == {"ok": 1}
    for write in (lambda: s.set(bad, 1), lambda: s.set_many({"ok": 2, bad: 1}),
                  lambda: s.delete(bad), lambda: s.delete_many(["ok", bad])):
        with pytest.raises(ValueError, match=r"key 'user\\udc80' cannot be stored"):
            write()
    assert s.get("ok") == 1                      # nothing half-written


def test_a_retried_lock_request_is_still_its_callers(fresh_redis):
    """A client that retries a timed-out command (its own configuration):
    the first request took the lock while the server was busy, its reply
    was lost, and the retry found the lock taken, by its own caller."""
    import redis
    from redis.backoff import ConstantBackoff
    from redis.retry import Retry

    from redis_servers import quick_client
    client = redis.Redis(port=fresh_redis.port, socket_timeout=0.2,
                         retry=Retry(ConstantBackoff(0.4), 1,
                                     supported_errors=(redis.exceptions.TimeoutError,)))
    store = RedisStore(client, circuit_breaker=None)
    admin = quick_client(fresh_redis.port, socket_timeout=5)
    probe = quick_client(fresh_redis.port, socket_timeout=0.05)
    try:
        store.ping()                             # connected, scripts loadable
        store.lock("warm", "up", 1)
        sleeper = threading.Thread(target=admin.execute_command, args=("DEBUG", "SLEEP", 0.4))
        sleeper.start()

        def asleep():
            try:
                probe.ping()
                return False
            except Exception:
                return True
        assert wait_for(asleep, 2.0)
        assert store.lock("k", "mine", 10)       # timed out, retried: still mine
        sleeper.join()
        assert lock_holder(store.lock_state(["k"])[1][0]) == "mine"
    finally:
        for c in (admin, probe, client):
            c.close()
        store.close()


def test_get_many_reads_every_key_of_a_migrating_slot(redis_cluster):
    """Halfway through a slot migration (some keys moved to the importing
    node) every key is readable: batches of that slot fall back to one GET
    per key, which follows ASK, instead of raising after redis-py's retries."""
    from corecache.distributed import ReadThroughCache
    client = redis_cluster.client()
    store = RedisStore(client, circuit_breaker=None)
    slot = client.keyslot("corecache:k0")
    same = ["k0"] + [k for k in (f"x{i}" for i in range(300000))
                     if client.keyslot("corecache:" + k) == slot][:6]
    others = [f"o{i}" for i in range(40)]
    data = {k: k.upper() for k in same + others}
    store.set_many(data)
    migration = SlotMigration(redis_cluster, slot)
    loads = []
    rt = ReadThroughCache(store, lambda k: loads.append(k) or "loaded", ttl=60,
                          loader_many=lambda ks: loads.extend(ks) or {k: "loaded" for k in ks})
    try:
        migration.move(["corecache:" + same[0], "corecache:" + same[1]])   # moved; 5 not yet
        t0 = time.monotonic()
        assert store.get_many(same + others) == data
        assert rt.get_many(same + others) == data and loads == []
        assert [rt.get(k) for k in same] == [data[k] for k in same]
        assert time.monotonic() - t0 < 2.0       # no redis-py retry loop per batch
        migration.finish()
        assert store.get_many(same + others) == data
    finally:
        migration.abort()
        migration.close()
        store.close()
        client.close()


def test_fill_locks_live_in_their_values_slot(redis_cluster):
    """A fill checks the lock and stores the value in one script, which a
    cluster runs only if both keys share a slot: whatever braces a key has."""
    client = redis_cluster.client()
    store = RedisStore(client)
    try:
        keys = ["plain", "{tag}a", "x{tag}y", "a}b", "}{", "x{}y", "{}", "{", "é}{ü", "k{a}}b"]
        for k in keys:
            lk = store.lock_key(k)
            assert client.keyslot(lk) == client.keyslot("corecache:" + k), (k, lk)
            assert lk.startswith("corecache#lock:")
            assert store.lock(k, "t", 5)
            assert store.fill(k, b'"v"', None, "t", None), k
        assert store.get_many(keys) == {k: "v" for k in keys}
    finally:
        store.close()
        client.close()
