"""LRUCache behaviour, run against both implementations (the `impl` fixture)."""
from __future__ import annotations

import copy
import gc
import math
import pickle
import re
import sys
import threading
import weakref
from collections.abc import Mapping, MutableMapping

import pytest

from corecache import CacheConfig, CacheStats
from conftest import FakeClock, Recorder, _missing_in_test, _namespace


class _PolicyLRU:
    """Cache(..., policy="lru") standing in for LRUCache: the same tests hold."""

    def __init__(self, cache_cls):
        self._cls = cache_cls

    def __call__(self, *args, **kwargs):
        return self._cls(*args, policy="lru", **kwargs)

    def __getattr__(self, name):
        return getattr(self._cls, name)


def lru_class_only(impl):
    """For a test of LRUCache's class itself (its name in repr, subclassing,
    from_config's default), which Cache(policy="lru") is not."""
    if isinstance(impl.LRUCache, _PolicyLRU):
        pytest.skip("a test of the LRUCache class itself")


@pytest.fixture(params=[pytest.param("c", marks=pytest.mark.c_extension), "py",
                        pytest.param("c-policy-lru", marks=pytest.mark.c_extension),
                        "py-policy-lru"])
def impl(request):
    """conftest's impl, and Cache(policy="lru") of each as its LRUCache."""
    kind, _, policy = request.param.partition("-")
    ns = _namespace(kind, _missing_in_test)
    if policy:
        ns = type(ns)(**vars(ns))
        ns.LRUCache = _PolicyLRU(ns.Cache)
    return ns


# ---- the mapping protocol -----------------------------------------------------

def test_is_a_mutable_mapping(impl):
    c = impl.LRUCache(10)
    assert isinstance(c, MutableMapping)
    assert isinstance(c, Mapping)


def test_getitem_setitem_delitem_contains_len(impl):
    c = impl.LRUCache(10)
    c["a"] = 1
    c["b"] = 2
    assert c["a"] == 1
    assert "a" in c and "z" not in c
    assert len(c) == 2
    del c["a"]
    assert "a" not in c and len(c) == 1
    with pytest.raises(KeyError) as e:
        c["a"]
    assert e.value.args == ("a",)
    with pytest.raises(KeyError):
        del c["a"]


def test_tuple_key_error_carries_the_key(impl):
    c = impl.LRUCache(10)
    with pytest.raises(KeyError) as e:
        c[(1, 2)]
    assert e.value.args == ((1, 2),)


def test_iteration_is_least_to_most_recently_used(impl):
    c = impl.LRUCache(10)
    for k in "abcd":
        c[k] = k.upper()
    c["b"]                      # b becomes most recent
    c.get("a")                  # then a
    assert list(c) == ["c", "d", "b", "a"]
    assert list(c.keys()) == ["c", "d", "b", "a"]
    assert list(c.values()) == ["C", "D", "B", "A"]
    assert list(c.items()) == [("c", "C"), ("d", "D"), ("b", "B"), ("a", "A")]
    assert list(reversed(c)) == ["a", "b", "d", "c"]


def test_views_do_not_change_recency_or_stats(impl):
    c = impl.LRUCache(10)
    c.update(a=1, b=2)
    before = c.stats()
    assert ("a", 1) in c.items() and ("a", 2) not in c.items() and "junk" not in c.items()
    assert 2 in c.values() and 3 not in c.values()
    assert "b" in c.keys()
    assert len(c.keys()) == len(c.items()) == len(c.values()) == 2
    assert c.stats() == before
    assert list(c) == ["a", "b"]


def test_iteration_is_a_snapshot(impl):
    c = impl.LRUCache(10)
    c.update({1: 1, 2: 2, 3: 3})
    seen = []
    for k in c:
        seen.append(k)
        c[k * 10] = 0           # mutating while iterating is fine
        del c[k]
    assert seen == [1, 2, 3]


def test_get_peek_pop_popitem_setdefault_update_clear(impl):
    c = impl.LRUCache(10)
    assert c.get("x") is None and c.get("x", 5) == 5
    c.update({"a": 1}, b=2)
    c.update([("c", 3)])
    assert list(c.items()) == [("a", 1), ("b", 2), ("c", 3)]
    assert c.peek("a") == 1 and c.peek("q", "d") == "d"
    assert list(c) == ["a", "b", "c"]          # peek did not touch recency
    assert c.pop("b") == 2
    assert c.pop("b", None) is None
    with pytest.raises(KeyError):
        c.pop("b")
    assert c.popitem() == ("a", 1)
    assert c.setdefault("c", 9) == 3
    assert c.setdefault("n", 9) == 9 and c["n"] == 9
    assert c.setdefault("m") is None and "m" in c
    c.clear()
    assert len(c) == 0 and list(c) == []
    with pytest.raises(KeyError, match="empty"):
        c.popitem()


def test_update_rejects_non_pairs_as_dict_does(impl):
    c = impl.LRUCache(10)
    with pytest.raises(TypeError, match="element #1"):
        c.update([("a", 1), 5])
    for bad in ("abc", (1, 2, 3), ()):
        with pytest.raises(ValueError, match="element #1 .* 2 is required"):
            c.update([("a", 1), bad])
        with pytest.raises(ValueError):
            {}.update([("a", 1), bad])     # the same kind of error as dict's
    c.update(["xy"])                       # a 2-sequence is a pair, as for dict
    assert c["x"] == "y"


def test_equality_compares_contents(impl):
    c = impl.LRUCache(10)
    c.update(a=1, b=2)
    assert c == {"b": 2, "a": 1}
    assert c != {"a": 1}
    assert (c == 5) is False
    d = impl.LRUCache(3)
    d.update(b=2, a=1)
    assert c == d
    with pytest.raises(TypeError):
        hash(c)


def test_max_size_evicts_least_recently_used(impl, recorder):
    c = impl.LRUCache(3, eviction_callback=recorder)
    for k in range(3):
        c[k] = k
    c[0]                        # 0 is recent; 1 is now the LRU
    c[3] = 3
    assert list(c) == [2, 0, 3]
    assert recorder.calls == [(1, 1)]
    assert c.stats().evictions == 1


def test_overwrite_moves_to_end_and_keeps_size(impl, recorder):
    c = impl.LRUCache(3, eviction_callback=recorder)
    c.update(a=1, b=2, c=3)
    c["a"] = 10
    assert list(c.items()) == [("b", 2), ("c", 3), ("a", 10)]
    assert recorder.calls == []


def test_overwrite_keeps_the_original_key_object(impl):
    c = impl.LRUCache(3)
    c[1] = "int"
    c[1.0] = "float"
    assert list(c.items()) == [(1, "float")]
    assert type(list(c)[0]) is int


def test_unhashable_key_is_a_type_error(impl):
    c = impl.LRUCache(3)
    for op in (lambda: c[[1]], lambda: c.get([1]), lambda: c.__setitem__([1], 1),
               lambda: [1] in c, lambda: c.pop([1]), lambda: c.peek([1])):
        with pytest.raises(TypeError, match="unhashable"):
            op()
    assert len(c) == 0


def test_nan_and_identity_keys(impl):
    c = impl.LRUCache(3)
    nan = float("nan")
    c[nan] = 1
    assert c[nan] == 1          # found by identity, as dict does
    assert float("nan") not in c


def test_int_keys_with_a_large_stride_spread(impl):
    c = impl.LRUCache(5000)
    keys = [k << 20 for k in range(4000)]
    for k in keys:
        c[k] = k
    assert all(c[k] == k for k in keys)
    assert c._check()


# ---- TTL ----------------------------------------------------------------------

def test_default_ttl_and_expiry(impl, clock, recorder):
    c = impl.LRUCache(10, default_ttl=5, clock=clock, eviction_callback=recorder)
    c["a"] = 1
    clock.tick(4.9)
    assert c["a"] == 1
    clock.tick(0.1)             # exactly at the deadline: expired
    assert "a" not in c
    assert c.get("a") is None
    assert recorder.calls == [("a", 1)]
    st = c.stats()
    assert st.expirations == 1 and st.size == 0 and st.hits == 1 and st.misses == 1


def test_per_entry_ttl_none_means_default_inf_means_never(impl, clock):
    c = impl.LRUCache(10, default_ttl=5, clock=clock)
    c.set("default", 1)
    c.set("never", 1, ttl=math.inf)
    c.set("short", 1, ttl=1)
    c.set("long", 1, ttl=100.5)
    assert c.ttl("default") == 5 and c.ttl("never") is None
    assert c.ttl("short") == 1 and c.ttl("long") == 100.5
    clock.tick(10)
    assert sorted(c) == ["long", "never"]


@pytest.mark.parametrize("bad", [0, -1, -0.5, float("nan"), 0.0])
def test_bad_ttl_values(impl, bad):
    c = impl.LRUCache(10)
    with pytest.raises(ValueError, match="ttl"):
        c.set("k", 1, ttl=bad)
    with pytest.raises(ValueError, match="default_ttl"):
        impl.LRUCache(10, default_ttl=bad)
    assert "k" not in c


@pytest.mark.parametrize("bad", ["1", [1], True, object()])
def test_ttl_of_the_wrong_type(impl, bad):
    c = impl.LRUCache(10)
    with pytest.raises(TypeError, match="ttl"):
        c.set("k", 1, ttl=bad)


def test_expired_entries_are_never_seen(impl, clock):
    c = impl.LRUCache(10, clock=clock)
    c.set("a", 1, ttl=1)
    c.set("b", 2)
    clock.tick(1)
    assert len(c) == 1
    assert list(c) == ["b"] and list(c.items()) == [("b", 2)] and list(c.values()) == [2]
    assert c.peek("a") is None and "a" not in c
    with pytest.raises(KeyError):
        c["a"]
    with pytest.raises(KeyError):
        del c["a"]
    with pytest.raises(KeyError):
        c.ttl("a")
    with pytest.raises(KeyError):
        c.touch("a")
    assert c.pop("a", "gone") == "gone"
    assert c.stats().size == 1


def test_popitem_skips_expired(impl, clock):
    c = impl.LRUCache(10, clock=clock)
    c.set("old", 1, ttl=1)
    c.set("new", 2)
    clock.tick(2)
    assert c.popitem() == ("new", 2)


def test_ttl_reports_remaining_seconds(impl, clock):
    c = impl.LRUCache(10, clock=clock)
    c.set("a", 1, ttl=10)
    clock.tick(3)
    assert c.ttl("a") == pytest.approx(7)
    c["b"] = 1
    assert c.ttl("b") is None
    with pytest.raises(KeyError):
        c.ttl("missing")


def test_touch_restarts_own_ttl_or_a_new_one(impl, clock):
    c = impl.LRUCache(10, clock=clock)
    c.set("a", 1, ttl=10)
    clock.tick(8)
    c.touch("a")
    assert c.ttl("a") == pytest.approx(10)
    clock.tick(9)
    assert c["a"] == 1
    c.touch("a", ttl=2)
    assert c.ttl("a") == pytest.approx(2)
    clock.tick(1)
    c.touch("a")                # its own TTL is now 2
    assert c.ttl("a") == pytest.approx(2)
    c.touch("a", ttl=math.inf)
    assert c.ttl("a") is None
    c["b"] = 1
    c.touch("b")                # no TTL: stays without one
    assert c.ttl("b") is None
    with pytest.raises(KeyError):
        c.touch("zz")
    with pytest.raises(ValueError):
        c.touch("a", ttl=-1)


def test_touch_does_not_change_recency_or_stats(impl, clock):
    c = impl.LRUCache(10, clock=clock)
    c.set("a", 1, ttl=10)
    c.set("b", 1, ttl=10)
    before = c.stats()
    c.touch("a")
    assert list(c) == ["a", "b"] and c.stats() == before


def test_overwrite_resets_ttl(impl, clock):
    c = impl.LRUCache(10, default_ttl=10, clock=clock)
    c.set("a", 1, ttl=2)
    c["a"] = 2                  # back to the default TTL
    assert c.ttl("a") == 10
    c.set("a", 3, ttl=math.inf)
    assert c.ttl("a") is None


@pytest.mark.parametrize("sized", [False, True])
def test_a_set_over_an_expired_entry_is_an_overwrite(impl, clock, recorder, sized):
    """Setting a key whose entry has expired but is still held overwrites
    it: no callback, no expiration counted (what the user replaced was not
    removed by the cache); setdefault and get_or_set see it absent, as a
    lookup does, so there it is an expiration.  (The pure twin notified the
    plain set too: found by the differential test.)"""
    kw = {"getsizeof": lambda k, v: 1} if sized else {}
    c = impl.LRUCache(4, clock=clock, eviction_callback=recorder, **kw)
    c.set("a", 0, ttl=2.5)
    c.set("b", 0)
    clock.tick(2.5)
    c.set("a", 1)
    assert recorder.calls == [] and c.stats().expirations == 0
    assert list(c.items()) == [("b", 0), ("a", 1)] and c.ttl("a") is None
    c.set("a", 2, ttl=1)
    clock.tick(1)
    assert c.setdefault("a", 3) == 3
    assert recorder.calls == [("a", 2)] and c.stats().expirations == 1
    clock.tick(5)
    c.set("a", 4, ttl=1)
    clock.tick(1)
    assert c.get_or_set("a", lambda: 5) == 5
    assert recorder.calls == [("a", 2), ("a", 4)] and c.stats().expirations == 2


def test_expire_removes_everything_expired(impl, clock, recorder):
    c = impl.LRUCache(100, clock=clock, eviction_callback=recorder)
    for k in range(10):
        c.set(k, k, ttl=k + 1)
    c.set("forever", 0)
    clock.tick(5)
    assert c.expire() == 5
    assert sorted(k for k, _ in recorder.calls) == [0, 1, 2, 3, 4]
    assert c.expire() == 0
    assert c.stats().expirations == 5
    assert len(c) == 6


def test_set_of_new_key_drops_expired_entries_before_evicting_live_ones(impl, clock, recorder):
    c = impl.LRUCache(2, clock=clock, eviction_callback=recorder)
    c.set("live", 1)
    c.set("dying", 2, ttl=1)
    clock.tick(1)
    c.set("new", 3)
    assert list(c) == ["live", "new"]
    st = c.stats()
    assert st.expirations == 1 and st.evictions == 0


def test_real_clock_ttl(impl):
    import time
    c = impl.LRUCache(10)
    c.set("a", 1, ttl=0.05)
    assert c["a"] == 1
    assert 0 < c.ttl("a") <= 0.05
    time.sleep(0.08)
    assert "a" not in c


def test_clock_must_return_a_number(impl):
    c = impl.LRUCache(10, clock=lambda: "noon")
    with pytest.raises(TypeError, match="clock must return"):
        c.set("a", 1, ttl=1)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 10 ** 400])
def test_a_clock_reading_that_is_not_finite_is_refused_and_changes_nothing(impl, bad):
    now = [100.0]
    c = impl.LRUCache(10, default_ttl=5, clock=lambda: now[0])
    c["a"] = 1
    now[0] = bad
    for op in (lambda: c.set("b", 2), lambda: c.get("a"), lambda: c.expire(),
               lambda: len(c), lambda: c.ttl("a"), lambda: c.touch("a")):
        with pytest.raises(ValueError, match="clock must return a finite number"):
            op()
    now[0] = 104.0                 # a sane reading again: nothing was corrupted
    assert c._check() and list(c) == ["a"] and c.ttl("a") == pytest.approx(1.0)
    now[0] = 105.0
    assert len(c) == 0 and "a" not in c and c.stats().expirations == 1


def test_a_clock_going_backwards_is_allowed(impl):
    now = [100.0]
    c = impl.LRUCache(10, default_ttl=5, clock=lambda: now[0])
    c["a"] = 1
    now[0] = 50.0
    assert c["a"] == 1 and c.ttl("a") == pytest.approx(55.0)
    now[0] = 105.0
    assert "a" not in c


# ---- memory limit ---------------------------------------------------------------

def sizes_by_value(key, value):
    return value


def test_memory_limit_evicts_lru_until_it_holds(impl, recorder):
    mib = 1 << 20
    c = impl.LRUCache(100, memory_limit_mb=1, getsizeof=sizes_by_value,
                      eviction_callback=recorder)
    c["a"] = mib // 2
    c["b"] = mib // 4
    c["c"] = mib // 4
    assert c.memory_bytes == mib
    c["d"] = 1
    assert list(c) == ["b", "c", "d"]
    assert recorder.calls == [("a", mib // 2)]
    st = c.stats()
    assert st.memory_bytes == mib // 2 + 1 and st.memory_limit_bytes == mib
    assert c.memory_limit_mb == 1


def test_memory_limit_mb_is_mebibytes(impl):
    c = impl.LRUCache(10, memory_limit_mb=1, getsizeof=sizes_by_value)
    assert c.stats().memory_limit_bytes == 1_048_576
    c = impl.LRUCache(10, memory_limit_mb=0.5, getsizeof=sizes_by_value)
    assert c.stats().memory_limit_bytes == 524_288


def test_entry_larger_than_the_limit_is_refused(impl, recorder):
    c = impl.LRUCache(100, memory_limit_mb=1, getsizeof=sizes_by_value,
                      eviction_callback=recorder)
    c["a"] = 10
    with pytest.raises(ValueError, match="more than the whole memory limit"):
        c["big"] = (1 << 20) + 1
    with pytest.raises(ValueError):
        c["a"] = (1 << 20) + 1   # an overwrite too: the old value stays
    assert list(c.items()) == [("a", 10)] and recorder.calls == []


def test_overwrite_that_grows_evicts_others(impl):
    mib = 1 << 20
    c = impl.LRUCache(100, memory_limit_mb=1, getsizeof=sizes_by_value)
    c["a"] = mib // 4
    c["b"] = mib // 4
    c["a"] = mib                # a becomes MRU, b must go
    assert list(c.items()) == [("a", mib)]


def test_default_getsizeof_is_sys_getsizeof_of_key_and_value(impl):
    c = impl.LRUCache(10, memory_limit_mb=1)
    c["k"] = "v" * 100
    assert c.memory_bytes == sys.getsizeof("k") + sys.getsizeof("v" * 100)
    del c["k"]
    assert c.memory_bytes == 0


@pytest.mark.parametrize("ret,exc,msg", [(-1, ValueError, ">= 0"), (1.5, TypeError, "an int"),
                                         ("3", TypeError, "an int"), (True, TypeError, "an int")])
def test_getsizeof_must_return_a_non_negative_int(impl, ret, exc, msg):
    c = impl.LRUCache(10, memory_limit_mb=1, getsizeof=lambda k, v: ret)
    with pytest.raises(exc, match=msg):
        c["k"] = 1
    assert len(c) == 0


def test_getsizeof_without_limit_accounts(impl):
    c = impl.LRUCache(10, getsizeof=sizes_by_value)
    c["a"] = 5
    c["b"] = 7
    assert c.stats().memory_bytes == 12 and c.stats().memory_limit_bytes is None


def test_no_accounting_reports_zero_memory(impl):
    c = impl.LRUCache(10)
    c["a"] = "x" * 1000
    assert c.stats().memory_bytes == 0 and c.stats().memory_limit_bytes is None


# ---- resize ---------------------------------------------------------------------

def test_resize_shrinks_at_once_with_callbacks(impl, recorder):
    c = impl.LRUCache(10, eviction_callback=recorder)
    for k in range(10):
        c[k] = k
    c.resize(max_size=4)
    assert list(c) == [6, 7, 8, 9] and c.max_size == 4
    assert [k for k, _ in recorder.calls] == [0, 1, 2, 3, 4, 5]
    assert c.stats().evictions == 6
    c.resize(max_size=8)
    for k in range(20, 24):
        c[k] = k
    assert len(c) == 8


def test_resize_large_cache_down_and_up(impl):
    c = impl.LRUCache(100_000)
    for k in range(100_000):
        c[k] = k
    c.resize(max_size=10)
    assert list(c) == list(range(99_990, 100_000))
    assert c._check()
    c.resize(max_size=1000)
    for k in range(2000):
        c[k] = k
    assert list(c) == list(range(1000, 2000)) and c._check()


def test_resize_memory_limit_on_a_cache_without_one(impl, recorder):
    c = impl.LRUCache(100, getsizeof=None, eviction_callback=recorder)
    for k in range(10):
        c[k] = "x" * 100_000
    c.resize(memory_limit_mb=0.5)
    assert c.memory_bytes <= 1 << 19 and c.memory_limit_mb == 0.5
    kept = list(c)
    assert kept == list(range(10 - len(kept), 10)) and 0 < len(kept) < 10
    assert len(recorder.calls) == 10 - len(kept)
    c.resize(memory_limit_mb=None)
    assert c.stats().memory_limit_bytes is None
    for k in range(10, 20):
        c[k] = "x" * 100_000
    assert len(c) == len(kept) + 10


def test_resize_rejects_bad_input_and_changes_nothing(impl):
    c = impl.LRUCache(10, memory_limit_mb=1, getsizeof=sizes_by_value)
    c["a"] = 1
    for kw in ({"max_size": 0}, {"max_size": 2.5}, {"memory_limit_mb": -1},
               {"memory_limit_mb": "1"}, {"max_size": 5, "memory_limit_mb": 0}):
        with pytest.raises((TypeError, ValueError)):
            c.resize(**kw)
    assert c.max_size == 10 and c.memory_limit_mb == 1 and list(c) == ["a"]


def test_resize_with_failing_getsizeof_leaves_cache_as_it_was(impl):
    c2 = impl.LRUCache(10)
    for k in range(5):
        c2[k] = k
    # the default getsizeof cannot fail; use a cache whose values refuse sizing
    class Unsizable:
        def __sizeof__(self):
            raise RuntimeError("no size")
    c2[9] = Unsizable()
    with pytest.raises(RuntimeError, match="no size"):
        c2.resize(memory_limit_mb=1)
    assert c2.memory_limit_mb is None and c2.stats().memory_bytes == 0 and len(c2) == 6
    c2[10] = 10                 # still works without accounting
    assert c2.memory_bytes == 0


# ---- eviction callbacks -----------------------------------------------------------

def test_callbacks_only_for_removals_the_cache_decides(impl, clock, recorder):
    c = impl.LRUCache(2, clock=clock, eviction_callback=recorder)
    c.update(a=1, b=2)
    del c["a"]
    c.pop("b")
    c["c"] = 3
    c.popitem()
    c.update(d=4, e=5)
    c.clear()
    c["f"] = 6
    c["f"] = 7                  # overwrite: not a removal the cache decided
    assert recorder.calls == []


def test_callback_errors_go_to_unraisablehook(impl, unraisable):
    def bad(key, value):
        raise ZeroDivisionError("boom")
    c = impl.LRUCache(1, eviction_callback=bad)
    c["a"] = 1
    c["b"] = 2                  # evicts a; the error must not reach us
    assert list(c) == ["b"]
    assert len(unraisable) == 1
    assert isinstance(unraisable[0].exc_value, ZeroDivisionError)
    assert unraisable[0].object is bad


def test_callback_may_use_the_cache(impl):
    seen = []

    def cb(key, value):
        seen.append((key, len(c), key in c))
        if not key.startswith("echo-"):
            c["echo-" + key] = value   # re-enters and evicts again
    c = impl.LRUCache(2, eviction_callback=cb)
    c["a"] = 1
    c["b"] = 2
    c["c"] = 3
    assert seen[0] == ("a", 2, False)
    assert len(c) == 2 and c._check()


def test_callback_runs_after_the_cache_is_consistent(impl):
    states = []
    c = impl.LRUCache(3, eviction_callback=lambda k, v: states.append((list(c.items()), c.stats().size)))
    c.update(a=1, b=2, c=3)
    c["d"] = 4
    assert states == [([("b", 2), ("c", 3), ("d", 4)], 3)]


# ---- statistics ---------------------------------------------------------------------

def test_stats_count_lookups_through_getitem_get_and_get_or_set(impl):
    c = impl.LRUCache(10)
    c["a"] = 1
    c["a"]
    c.get("a")
    c.get("b")
    with pytest.raises(KeyError):
        c["b"]
    c.get_or_set("a", lambda: 0)
    c.get_or_set("c", lambda: 3)
    c.peek("a")
    "a" in c
    st = c.stats()
    assert (st.hits, st.misses) == (3, 3)
    assert st.hit_rate == 0.5
    assert isinstance(st, CacheStats)
    with pytest.raises(Exception):
        st.hits = 10                # immutable
    c.reset_stats()
    st = c.stats()
    assert (st.hits, st.misses, st.evictions, st.expirations) == (0, 0, 0, 0)
    assert st.size == 2 and st.hit_rate == 0.0


def test_stats_snapshot_fields(impl):
    c = impl.LRUCache(7)
    st = c.stats()
    assert st.as_dict() == {"hits": 0, "misses": 0, "evictions": 0, "expirations": 0, "size": 0,
                            "max_size": 7, "memory_bytes": 0, "memory_limit_bytes": None,
                            "rejected": 0, "hit_rate": 0.0}
    assert pickle.loads(pickle.dumps(st)) == st


# ---- get_or_set ---------------------------------------------------------------------

def test_get_or_set_stores_and_returns(impl, clock):
    c = impl.LRUCache(10, clock=clock)
    assert c.get_or_set("k", lambda: 42, ttl=5) == 42
    assert c["k"] == 42 and c.ttl("k") == 5
    assert c.get_or_set("k", lambda: 0) == 42


def test_get_or_set_runs_factory_once_for_concurrent_misses(impl):
    c = impl.LRUCache(10)
    n = 8
    barrier = threading.Barrier(n)
    release = threading.Event()
    calls = []

    def factory():
        calls.append(1)
        release.wait(5)
        return "value"

    results = []

    def worker():
        barrier.wait()
        results.append(c.get_or_set("k", factory))

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    # give every thread time to reach the wait, then let the factory finish
    import time
    deadline = time.monotonic() + 5
    while c.stats().misses < n and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in threads:
        t.join()
    assert results == ["value"] * n
    assert len(calls) == 1


def test_get_or_set_exception_reaches_every_waiter_and_nothing_is_stored(impl):
    c = impl.LRUCache(10)
    n = 6
    barrier = threading.Barrier(n)
    release = threading.Event()
    calls = []

    def factory():
        calls.append(1)
        release.wait(5)
        raise LookupError("backend down")

    errors = []

    def worker():
        barrier.wait()
        try:
            c.get_or_set("k", factory)
        except LookupError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    import time
    deadline = time.monotonic() + 5
    while c.stats().misses < n and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in threads:
        t.join()
    assert len(errors) == n and len(calls) == 1
    assert "k" not in c
    assert c.get_or_set("k", lambda: "later") == "later"


def test_get_or_set_reentering_the_same_key_is_an_error(impl):
    c = impl.LRUCache(10)
    with pytest.raises(RuntimeError, match="same key"):
        c.get_or_set("k", lambda: c.get_or_set("k", lambda: 1))
    assert "k" not in c
    assert c.get_or_set("j", lambda: c.get_or_set("i", lambda: 1) + 1) == 2


def test_get_or_set_bad_factory(impl):
    c = impl.LRUCache(10)
    with pytest.raises(TypeError, match="factory"):
        c.get_or_set("k", 5)


# ---- construction, config and bad input --------------------------------------------

@pytest.mark.parametrize("kw,exc,name", [
    ({"max_size": 0}, ValueError, "max_size"),
    ({"max_size": -5}, ValueError, "max_size"),
    ({"max_size": 1.5}, TypeError, "max_size"),
    ({"max_size": "10"}, TypeError, "max_size"),
    ({"max_size": None}, TypeError, "max_size"),
    ({"max_size": True}, TypeError, "max_size"),
    ({"memory_limit_mb": 0}, ValueError, "memory_limit_mb"),
    ({"memory_limit_mb": -1}, ValueError, "memory_limit_mb"),
    ({"memory_limit_mb": math.inf}, ValueError, "memory_limit_mb"),
    ({"memory_limit_mb": "1"}, TypeError, "memory_limit_mb"),
    ({"cleanup_interval": 0}, ValueError, "cleanup_interval"),
    ({"cleanup_interval": math.inf}, ValueError, "cleanup_interval"),
    ({"getsizeof": 5}, TypeError, "getsizeof"),
    ({"eviction_callback": "f"}, TypeError, "eviction_callback"),
    ({"clock": 1.0}, TypeError, "clock"),
    ({"default_ttl": "5"}, TypeError, "default_ttl"),
])
def test_bad_constructor_arguments(impl, kw, exc, name):
    with pytest.raises(exc) as info:
        impl.LRUCache(**kw)
    msg = str(info.value)
    assert name in msg and repr(list(kw.values())[-1]) in msg


def _interpreter_wording(msg: str) -> str:
    """The version-independent part of a message the interpreter words:
    3.14 made a dict's unhashable key "cannot use 'list' as a dict key
    (unhashable type: 'list')", where hash() still says "unhashable type:
    'list'" (the compiled core hashes the key itself, the twin lets its dict
    do it).  corecache's own messages are compared whole."""
    m = re.fullmatch(r"cannot use '[^']*' as a (?:dict key|set element) \((unhashable type: .*)\)",
                     msg)
    return m.group(1) if m else msg


def test_both_implementations_raise_the_same_messages():
    from conftest import all_impls
    impls = all_impls()
    cases = [lambda C: C(0), lambda C: C(1, default_ttl=-1), lambda C: C(1).set(1, 1, ttl=0),
             lambda C: C(1, memory_limit_mb=1, getsizeof=lambda k, v: -1).set(1, 1),
             lambda C: C(1).popitem(), lambda C: C(1)[[]]]
    for case in cases:
        msgs = set()
        for i in impls:
            with pytest.raises(Exception) as e:
                case(i.LRUCache)
            msgs.add((type(e.value), _interpreter_wording(str(e.value))))
        assert len(msgs) == 1, msgs


def test_properties_and_repr(impl, clock):
    lru_class_only(impl)
    cb = Recorder()
    c = impl.LRUCache(5, 2.5, memory_limit_mb=1, getsizeof=sizes_by_value,
                      eviction_callback=cb, clock=clock)
    assert (c.max_size, c.default_ttl, c.memory_limit_mb) == (5, 2.5, 1)
    assert c.getsizeof is sizes_by_value and c.eviction_callback is cb and c.clock is clock
    assert c.cleanup_interval is None
    c["a"] = 3
    assert repr(c) == "LRUCache(size=1, max_size=5, default_ttl=2.5, memory=3/1048576 bytes)"
    assert repr(impl.LRUCache(9)) == "LRUCache(size=0, max_size=9, default_ttl=None)"


def test_from_config(impl):
    lru_class_only(impl)
    cb = Recorder()
    cfg = CacheConfig(max_size=2, default_ttl=30, memory_limit_mb=2, eviction_callback=cb,
                      getsizeof=sizes_by_value)
    c = impl.LRUCache.from_config(cfg)
    assert (c.max_size, c.default_ttl, c.memory_limit_mb) == (2, 30.0, 2)
    assert c.eviction_callback is cb and c.getsizeof is sizes_by_value
    c.update(a=1, b=2, c=3)
    assert cb.calls == [("a", 1)]
    with pytest.raises(TypeError, match="CacheConfig"):
        impl.LRUCache.from_config({"max_size": 3})


def test_cache_config_is_frozen_and_validated():
    cfg = CacheConfig()
    assert (cfg.max_size, cfg.default_ttl, cfg.cleanup_interval, cfg.memory_limit_mb) == (1000, None, None, None)
    with pytest.raises(Exception):
        cfg.max_size = 5
    with pytest.raises(ValueError, match="max_size"):
        CacheConfig(max_size=0)
    with pytest.raises(TypeError, match="eviction_callback"):
        CacheConfig(eviction_callback=3)
    assert CacheConfig(default_ttl=3).default_ttl == 3.0
    assert CacheConfig(memory_limit_mb=2).memory_limit_bytes == 2 << 20


def test_huge_max_size_is_accepted(impl):
    c = impl.LRUCache(10 ** 30)
    c[1] = 1
    assert c.max_size == 10 ** 30 and c.stats().max_size == 10 ** 30


# ---- copying, pickling -----------------------------------------------------------------

def test_copy_is_independent_with_same_entries_and_config(impl, clock):
    cb = Recorder()
    c = impl.LRUCache(3, 10, eviction_callback=cb, clock=clock)
    c.set("a", 1, ttl=5)
    c["b"] = [2]
    c.set("c", 3, ttl=math.inf)
    d = copy.copy(c)
    assert type(d) is type(c) and d is not c
    assert list(d.items()) == list(c.items())
    assert d.ttl("a") == 5 and d.ttl("b") == 10 and d.ttl("c") is None
    assert (d.max_size, d.default_ttl, d.eviction_callback, d.clock) == (3, 10, cb, clock)
    d["z"] = 0
    assert "z" not in c and "a" not in d
    assert d["b"] is c["b"]     # shallow
    clock.tick(2)
    d.touch("b")                # own TTL is preserved by the copy
    assert d.ttl("b") == 10


def test_deepcopy_copies_values(impl):
    c = impl.LRUCache(3)
    c["a"] = [1]
    d = copy.deepcopy(c)
    assert d["a"] == [1] and d["a"] is not c["a"]


def by_value_size(key, value):
    return 1


def test_pickle_round_trip(impl, clock):
    c = impl.LRUCache(3, 60, memory_limit_mb=1, getsizeof=by_value_size)
    c.update(a=1, b=2)
    c.set("c", 3, ttl=math.inf)
    c["a"]
    d = pickle.loads(pickle.dumps(c))
    assert type(d) is type(c)
    assert list(d.items()) == [("b", 2), ("c", 3), ("a", 1)]
    assert d.max_size == 3 and d.default_ttl == 60 and d.getsizeof is by_value_size
    assert 59 < d.ttl("a") <= 60 and d.ttl("c") is None
    assert d.memory_bytes == 3


def test_pickle_with_unpicklable_callable_is_a_type_error(impl):
    c = impl.LRUCache(3, eviction_callback=lambda k, v: None)
    with pytest.raises(TypeError, match="eviction_callback"):
        pickle.dumps(c)


# ---- garbage collection and weak references ----------------------------------------------

def test_reference_cycle_through_a_value_is_collected(impl):
    class Node:
        pass
    c = impl.LRUCache(10)
    n = Node()
    n.cache = c
    c["n"] = n
    c["self"] = c
    ref = weakref.ref(c)
    nref = weakref.ref(n)
    del c, n
    gc.collect()
    assert ref() is None and nref() is None


def test_cache_is_weakly_referenceable(impl):
    c = impl.LRUCache(10)
    r = weakref.ref(c)
    assert r() is c


def test_subclass(impl):
    lru_class_only(impl)
    class Mine(impl.LRUCache):
        pass
    c = Mine(2)
    c.update(a=1, b=2, c=3)
    assert list(c) == ["b", "c"]
    c["self"] = c
    r = weakref.ref(c)
    del c
    gc.collect()
    assert r() is None


# ---- live reconfiguration, eviction on demand, paused writes ------------------------------

def test_reconfigure_applies_live(impl, clock, recorder):
    c = impl.LRUCache(10, clock=clock, eviction_callback=recorder)
    for k in range(10):
        c[k] = k
    c.reconfigure(max_size=4, default_ttl=5, cleanup_interval=60)
    assert list(c) == [6, 7, 8, 9] and len(recorder.calls) == 6
    assert (c.max_size, c.default_ttl, c.cleanup_interval) == (4, 5.0, 60.0)
    c["new"] = 1
    assert c.ttl("new") == 5 and c.ttl(9) is None   # only later writes get the new TTL
    c.reconfigure(default_ttl=None, cleanup_interval=None)
    assert c.default_ttl is None and c.cleanup_interval is None
    c.reconfigure(memory_limit_mb=1)
    assert c.memory_limit_mb == 1 and c.stats().memory_bytes > 0


@pytest.mark.parametrize("kw", [{"max_size": 0}, {"default_ttl": -1},
                                {"memory_limit_mb": "x"}, {"cleanup_interval": 0},
                                {"max_size": 2, "default_ttl": "bad"}])
def test_reconfigure_rejects_a_bad_change_whole(impl, kw):
    c = impl.LRUCache(10, 30)
    c.update({k: k for k in range(10)})
    with pytest.raises((TypeError, ValueError)):
        c.reconfigure(**kw)
    assert (c.max_size, c.default_ttl, c.memory_limit_mb, c.cleanup_interval) == (10, 30.0, None, None)
    assert len(c) == 10


def test_evict_n_least_recently_used(impl, recorder):
    c = impl.LRUCache(10, eviction_callback=recorder)
    c.update({k: k for k in range(6)})
    c[0]
    assert c.evict(2) == 2
    assert list(c) == [3, 4, 5, 0] and [k for k, _ in recorder.calls] == [1, 2]
    assert c.stats().evictions == 2
    assert c.evict(100) == 4 and len(c) == 0
    assert c.evict(0) == 0
    with pytest.raises(ValueError, match="n must be"):
        c.evict(-1)
    with pytest.raises(TypeError, match="n must be"):
        c.evict(1.5)


def test_paused_writes_are_counted_no_ops(impl):
    c = impl.LRUCache(10)
    c["a"] = 1
    c.pause_writes()
    assert c.writes_paused
    c["b"] = 2
    c.set("c", 3, ttl=5)
    c.update(d=4)
    assert c.setdefault("e", 5) == 5 and "e" not in c
    assert c.get_or_set("f", lambda: 6) == 6 and "f" not in c
    assert c["a"] == 1 and list(c) == ["a"]         # reads work
    assert c.pop("a") == 1                          # and removals
    assert c.stats().rejected == 5
    c.resume_writes()
    c["b"] = 2
    assert list(c) == ["b"] and not c.writes_paused
    c.reset_stats()
    assert c.stats().rejected == 0


# ---- limits at the edges of 64 bits ------------------------------------------------------

def test_a_memory_limit_beyond_2_63_bytes_is_a_value_error_naming_it(impl):
    with pytest.raises(ValueError, match=r"memory_limit_mb must be at most .*2\*\*63"):
        impl.LRUCache(10, memory_limit_mb=2 ** 63)
    c = impl.LRUCache(10, memory_limit_mb=(2 ** 63 - 1) / (1 << 20) / 2)
    c["a"] = 1
    with pytest.raises(ValueError, match="memory_limit_mb"):
        c.resize(memory_limit_mb=1e300)
    assert c["a"] == 1


def test_counts_beyond_any_size_mean_everything(impl):
    c = impl.LRUCache(2 ** 64)
    c.update((i, i) for i in range(5))
    assert c.evict(2 ** 63) == 5 and c.evict(2 ** 100) == 0
    assert c.max_size == 2 ** 64


def test_an_entry_size_beyond_2_63_is_a_value_error_naming_the_key(impl):
    c = impl.LRUCache(10, getsizeof=lambda k, v: v)
    with pytest.raises(ValueError, match="for key 'big'"):
        c["big"] = 2 ** 70
    assert len(c) == 0 and c.memory_bytes == 0


def test_the_memory_total_never_wraps(impl):
    c = impl.LRUCache(10, getsizeof=lambda k, v: v)
    c["a"] = 2 ** 63 - 1
    c["b"] = 2 ** 63 - 1
    assert c.memory_bytes == 2 ** 64 - 2
    with pytest.raises(ValueError, match="for key 'c'.* past 2\\*\\*64"):
        c["c"] = 2
    c["b"] = 2 ** 62                       # an overwrite that shrinks is fine
    assert c.memory_bytes == 2 ** 63 - 1 + 2 ** 62 and c._check()
    assert sorted(c) == ["a", "b"]


def test_a_subclass_that_skips_init_is_a_default_cache(impl):
    lru_class_only(impl)
    class Quiet(impl.LRUCache):
        def __init__(self) -> None:
            pass
    c = Quiet()
    for i in range(1001):
        c[i] = i
    assert len(c) == 1000 and c.max_size == 1000 and c.default_ttl is None
    assert 0 not in c and c[1000] == 1000


def test_init_twice_is_an_error_in_both(impl):
    c = impl.LRUCache(10)
    c["a"] = 1
    with pytest.raises(RuntimeError, match="called twice"):
        c.__init__(20)
    assert c.max_size == 10 and c["a"] == 1


def _copy(x):
    """An equal object that is not the same one (what a server's keys are)."""
    if isinstance(x, str):
        return "".join(list(x)) if len(x) > 1 else (x + "#")[:-1]
    return int(str(x))


EQUAL_KEYS = ["k", "café", "日本語のキー", "emoji \U0001F600", "x" * 100, "",
              0, -1, -2, 5, 2**61 - 1, -(2**63), 2**63 - 1, 2**64 + 5, -(2**70) - 3]


@pytest.mark.parametrize("key", EQUAL_KEYS, ids=repr)
def test_equal_but_not_identical_keys_find_their_entry(impl, key):
    # str and int keys are compared without RichCompare in the compiled
    # core; its answer must be RichCompare's for every kind of str (1, 2,
    # 4 bytes a character) and int (small, long-sized, beyond a long)
    c = impl.LRUCache(100)
    c[key] = "v"
    probe = _copy(key)
    assert probe == key          # the same object only where CPython shares it
    assert c[probe] == "v" and c.get(probe) == "v" and probe in c


def test_keys_with_equal_hashes_but_unequal_values_stay_apart(impl):
    # hash(-1) == hash(-2); hash(0) == hash(2**61 - 1); 1 == True == 1.0 are
    # one key, as in a dict; a str subclass's own __eq__ is asked
    c = impl.LRUCache(100)
    c[-1], c[-2], c[0], c[2**61 - 1] = "m1", "m2", "z", "p"
    assert hash(-1) == hash(-2) and hash(0) == hash(2**61 - 1)
    assert (c[_copy(-1)], c[_copy(-2)], c[_copy(0)], c[_copy(2**61 - 1)]) == ("m1", "m2", "z", "p")
    c[1] = "one"
    assert c[True] == "one" and c[1.0] == "one" and len(c) == 5

    class Loose(str):
        def __eq__(self, other):
            return str.__eq__(self.lower(), str(other).lower())
        __hash__ = str.__hash__
    c["abc"] = "lower"
    assert c.get(Loose("abc")) == "lower"
    assert c.get(Loose("ABC")) is None           # another hash: never compared
    d = {"abc": 1}
    assert (Loose("abc") in d) == (Loose("abc") in c)
