"""The store interface, on MemoryStore, RedisStore on one node and on a
3-master cluster: values, TTLs, batches (and their round trips), locks,
the write-behind queue primitives, validation."""
from __future__ import annotations

import math
import time

import pytest

from conftest import FakeClock
from corecache.distributed import (MemoryStore, RedisStore, StoreError, StoreUnavailable)

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


def test_locks(make_store):
    s = make_store()
    t = s._lock("load", "k", 5)
    assert t is not None
    assert s._lock("load", "k", 5) is None
    assert s._lock("refresh", "k", 5) is not None     # another kind, another lock
    assert s._unlock("load", "k", "wrong token") is False
    assert s._fetch_locked(["k", "other"])[1] == [True, False]
    assert s._unlock("load", "k", t) is True
    assert s._lock("load", "k", 0.05) is not None
    time.sleep(0.08) if not isinstance(s, MemoryStore) else s._locks.clear()
    assert s._lock("load", "k", 5) is not None        # the lease ran out
    tokens = s._lock_many("load", ["a", "b", "k"], 5)
    assert set(tokens) == {"a", "b"}
    s._unlock_many("load", tokens)
    assert set(s._lock_many("load", ["a", "b"], 5)) == {"a", "b"}


def test_write_behind_queue_primitives(make_store):
    s = make_store()
    assert s._wb_enqueue("a", b"v1", None, 0, None)[:2] == (True, 1)
    assert s._wb_enqueue("b", b"v2", None, 0, None)[:2] == (True, 2)
    assert s._wb_enqueue("a", b"v3", None, 0, None)[:2] == (True, 2)     # coalesced
    assert s.get("a") == 3                                          # and cached
    assert s._wb_enqueue("c", b"v4", None, 2, None)[:2] == (False, 2)   # max_pending
    items, pending, reclaimed = s._wb_claim("me", 10, 5)
    assert items == [("a", b"v3"), ("b", b"v2")] and pending == 2
    assert s._wb_claim("other", 10, 5)[0] == []          # claimed keys are not handed out twice
    s._wb_enqueue("a", b"v5", None, 0, None)             # a newer value while claimed
    assert s._wb_ack("me", items) == (1, 1)             # b done; a requeued
    assert s._wb_records(["a", "b"]) == [b"v5", None]
    items, _, _ = s._wb_claim("other", 10, 0.05)
    assert items == [("a", b"v5")]
    if isinstance(s, MemoryStore):
        s._claims["a"] = ("other", 0.0)
    else:
        time.sleep(0.08)
    items, _, reclaimed = s._wb_claim("me", 10, 5)      # other's lease ran out
    assert items == [("a", b"v5")] and reclaimed == 1
    assert s._wb_renew("me", ["a"], 5) == ["a"]
    assert s._wb_renew("other", ["a"], 5) == []
    assert s._wb_ack("other", [("a", b"v5")]) == (1, 0)   # late but same value: done
    assert s._wb_count() == 0
    s._wb_enqueue("d", b"d", None, 0, None)              # a queued delete
    items, _, _ = s._wb_claim("me", 10, 5)
    assert items == [("d", b"d")]
    s._wb_release("me", ["d"])
    assert s._wb_claim("you", 10, 5)[0] == [("d", b"d")]


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
