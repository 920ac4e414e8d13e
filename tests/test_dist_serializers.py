"""Serializers (round trips, refusals, signed pickle) and key namespacing."""
from __future__ import annotations

import logging
import os
import pickle
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corecache.distributed import (CorruptValue, JsonSerializer, MemoryStore, PickleSerializer,
                                   RawSerializer)
from corecache.distributed.serializers import resolve_serializer
from corecache.distributed.stores import norm_key

EXAMPLES = int(os.environ.get("CORECACHE_HYPOTHESIS_EXAMPLES", "100"))
KEY = b"0123456789abcdef-secret"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20)
pickle_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary() | st.complex_numbers(allow_nan=False),
    lambda inner: (st.lists(inner, max_size=5) | st.tuples(inner, inner)
                   | st.frozensets(st.integers(), max_size=5)
                   | st.dictionaries(st.integers() | st.text(), inner, max_size=5)),
    max_leaves=20)


@settings(max_examples=EXAMPLES, deadline=None)
@given(json_values)
def test_json_round_trip(value):
    s = JsonSerializer()
    data = s.dumps(value)
    assert isinstance(data, bytes)
    assert s.loads(data) == value


@settings(max_examples=EXAMPLES, deadline=None)
@given(pickle_values)
def test_signed_pickle_round_trip(value):
    s = PickleSerializer(KEY)
    assert s.loads(s.dumps(value)) == value


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary())
def test_raw_round_trip(value):
    s = RawSerializer()
    assert s.loads(s.dumps(value)) == value
    assert s.dumps(bytearray(value)) == value


@settings(max_examples=EXAMPLES, deadline=None)
@given(pickle_values, st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_tampered_byte_is_refused(value, pos, byte):
    s = PickleSerializer(KEY)
    data = bytearray(s.dumps(value))
    i = pos % len(data)
    if data[i] == byte:
        byte ^= 1
    data[i] = byte
    with pytest.raises(CorruptValue):
        s.loads(bytes(data))


UNPICKLED = []


def record_unpickling(what):
    UNPICKLED.append(what)


class Boom:
    """Unpickling it would record that it happened."""
    ran = UNPICKLED

    def __reduce__(self):
        return (record_unpickling, ("unpickled!",))


def test_unsigned_and_foreign_pickles_are_never_unpickled():
    s = PickleSerializer(KEY)
    plain = pickle.dumps(Boom())
    with pytest.raises(CorruptValue, match="not a signed pickle"):
        s.loads(plain)
    other = PickleSerializer(b"another key of 16+ bytes").dumps(Boom())
    with pytest.raises(CorruptValue, match="bad signature"):
        s.loads(other)
    with pytest.raises(CorruptValue):
        s.loads(b"")
    assert Boom.ran == []
    # a genuine one does run (the check above is what protects)
    s.loads(s.dumps(Boom()))
    assert Boom.ran == ["unpickled!"]
    Boom.ran.clear()


def test_key_rotation():
    old = PickleSerializer(b"old key, 16 bytes or more")
    both = PickleSerializer([b"new key, 16 bytes or more", b"old key, 16 bytes or more"])
    assert both.loads(old.dumps([1, 2])) == [1, 2]
    with pytest.raises(CorruptValue):
        old.loads(both.dumps([1, 2]))      # signed with the new key


@pytest.mark.parametrize("ser, bad", [
    (JsonSerializer(), object()),
    (JsonSerializer(), {1j: 1}),
    (JsonSerializer(), float("nan") if False else {"set": {1, 2}}),
    (RawSerializer(), "text"),
    (PickleSerializer(KEY), lambda: 1),
])
def test_unserializable_values_are_type_errors(ser, bad):
    with pytest.raises(TypeError, match="cannot|stores bytes"):
        ser.dumps(bad)


def test_circular_json_is_a_type_error():
    a = []
    a.append(a)
    with pytest.raises(TypeError, match="JSON"):
        JsonSerializer().dumps(a)


def test_resolve_serializer_validation():
    assert isinstance(resolve_serializer("json"), JsonSerializer)
    assert isinstance(resolve_serializer(None), JsonSerializer)
    assert isinstance(resolve_serializer("raw"), RawSerializer)
    assert isinstance(resolve_serializer("pickle", KEY), PickleSerializer)
    with pytest.raises(ValueError, match="needs secret_key"):
        resolve_serializer("pickle")
    with pytest.raises(ValueError, match="serializer='pickle'"):
        resolve_serializer("json", KEY)
    with pytest.raises(ValueError, match="'yaml'"):
        resolve_serializer("yaml")
    with pytest.raises(TypeError, match="dumps/loads"):
        resolve_serializer(42)
    with pytest.raises(ValueError, match="16 bytes"):
        PickleSerializer(b"short")
    with pytest.raises(TypeError, match="secret_key"):
        PickleSerializer(1234)
    with pytest.raises(ValueError, match="at least one key"):
        PickleSerializer([])

    class Custom:
        def dumps(self, v):
            return repr(v).encode()

        def loads(self, d):
            return d.decode()
    c = Custom()
    assert resolve_serializer(c) is c
    store = MemoryStore(serializer=c)
    store.set("k", 5)
    assert store.get("k") == "5"


def test_store_refusals_are_misses_and_logged(caplog):
    store = MemoryStore(serializer="pickle", secret_key=KEY)
    store.set("k", {"a": 1})
    # someone writes an unsigned pickle under the key
    store.put("k", pickle.dumps(Boom()), None, None)
    with caplog.at_level(logging.WARNING, logger="corecache.distributed"):
        assert store.get("k", "default") == "default"
    assert "discarding the stored value of key 'k'" in caplog.text
    assert store.corrupt == 1
    assert Boom.ran == []


# ---- keys -------------------------------------------------------------------


def test_norm_key():
    assert norm_key("a") == "a"
    assert norm_key(42) == "42"
    assert norm_key(-7) == "-7"

    class S(str):
        pass
    assert type(norm_key(S("x"))) is str
    for bad in (True, 1.5, b"x", None, ("a",)):
        with pytest.raises(TypeError, match="key must be a str or an int"):
            norm_key(bad)


def test_namespace_validation():
    for bad in ("", "a{b", "a}b", "a#b"):
        with pytest.raises(ValueError, match="namespace"):
            MemoryStore(namespace=bad)
    with pytest.raises(TypeError, match="namespace"):
        MemoryStore(namespace=1)


@pytest.mark.redis
@settings(max_examples=min(EXAMPLES, 60), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ns", "ns2", "other"]), st.text(max_size=8)),
                min_size=1, max_size=8, unique=True))
def test_namespaced_keys_never_collide(redis_server_session, pairs):
    """Every (namespace, key) names its own entry; internal keys (locks, the
    write-behind queue) never share a name with a value."""
    from redis_fixtures import require_redis
    require_redis()
    import redis

    from corecache.distributed import RedisStore
    client = redis.Redis(port=redis_server_session.port)
    try:
        client.flushall()
        stores = {ns: RedisStore(client, namespace=ns) for ns in {"ns", "ns2", "other"}}
        for i, (ns, key) in enumerate(pairs):
            stores[ns].set(key, i)
            stores[ns].lock(key, "token", 5)
            stores[ns].queue_push(key, b"v" + b"-1", None, 0, "00")
        for i, (ns, key) in enumerate(pairs):
            # the write-behind enqueue overwrote the value with -1; the lock
            # and the queue live elsewhere
            assert stores[ns].get(key) == -1
        names = {k.decode() for k in client.keys("*")}
        values = {f"{ns}:{key}" for ns, key in pairs}
        assert values <= names
        # nothing internal is readable as a value of some other (ns, key)
        for name in names - values:
            assert "#" in name
    finally:
        client.flushall()
        client.close()


# ---- issue 13: values bound to where they are stored -------------------------


@pytest.mark.redis
def test_get_many_decodes_each_value_on_its_own(make_store):
    """Raw values that are each invalid JSON but valid once joined are each
    a miss, through get and get_many alike (they were spliced into one)."""
    store = make_store()
    store.put_many([("a", b"[1"), ("b", b"2]"), ("c", b"3,4"), ("d", b"5")], None, None)
    assert [store.get(k, "miss") for k in "abcd"] == ["miss", "miss", "miss", 5]
    assert store.get_many("abcd") == {"d": 5}
    assert store.corrupt >= 6


@pytest.mark.redis
def test_a_signed_pickle_is_bound_to_its_key_and_namespace(make_store):
    """A signed value copied under another key, or into another namespace
    with the same secret, is refused: it would grant admin rights."""
    app = make_store(namespace="app", serializer="pickle", secret_key=KEY)
    other = make_store(namespace="other", serializer="pickle", secret_key=KEY)
    app.set("admin_session", {"role": "admin"})
    app.set("guest_session", {"role": "guest"})
    stolen = app.fetch("admin_session")
    app.put("guest_session", stolen, None, None)           # a raw copy, as redis-cli COPY
    other.put("guest_session", stolen, None, None)
    assert app.get("guest_session", "refused") == "refused"
    assert other.get("guest_session", "refused") == "refused"
    assert app.get("admin_session") == {"role": "admin"}   # where it was made, it reads
    assert app.corrupt >= 1 and other.corrupt >= 1


def test_a_signed_pickle_is_refused_after_its_signed_expiry():
    """The expiry is signed too: a value kept past it (PERSIST, or a copy
    without TTL) is refused once the grace for clock skew has passed."""
    from corecache.distributed import serializers
    s = PickleSerializer(KEY)
    now_ms = int(time.time() * 1000)
    fresh = s.dumps({"role": "admin"}, ("app", "k"), now_ms + 60_000)
    assert s.loads(fresh, ("app", "k")) == {"role": "admin"}
    late = s.dumps({"role": "admin"}, ("app", "k"), now_ms - serializers.EXPIRY_GRACE_MS - 1)
    with pytest.raises(CorruptValue, match="expired"):
        s.loads(late, ("app", "k"))
    assert s.loads(late, ("app", "k"), check_expiry=False) == {"role": "admin"}
    with pytest.raises(CorruptValue, match="bad signature"):
        s.loads(fresh, ("app", "other key"))
    with pytest.raises(CorruptValue, match="bad signature"):
        s.loads(fresh, ("ap", "pk"))                        # no ambiguity in the framing
    forever = s.dumps([1], ("app", "k"))
    assert s.loads(forever, ("app", "k")) == [1]


@pytest.mark.redis
def test_a_signed_pickle_stored_with_a_ttl_expires_with_it(fresh_redis):
    """Stored with a TTL of 50 ms, a value kept alive by PERSIST is refused
    after its signed expiry (plus the grace for clock skew)."""
    from corecache.distributed import RedisStore, serializers
    from redis_servers import quick_client
    raw = quick_client(fresh_redis.port)
    store = RedisStore(quick_client(fresh_redis.port), serializer="pickle", secret_key=KEY)
    try:
        store.set("session", {"user": 1}, ttl=0.05)
        raw.persist("corecache:session")                   # someone keeps it alive
        time.sleep(0.05 + serializers.EXPIRY_GRACE_MS / 1000 + 0.1)
        assert raw.exists("corecache:session")
        assert store.get("session", "refused") == "refused"
    finally:
        raw.close()
        store.client.close()
        store.close()
