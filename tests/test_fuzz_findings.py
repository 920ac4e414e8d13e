"""What the fuzzers of scripts/fuzz found in the Python API, one test each,
in both implementations (the C-level findings are inputs under
fuzz/regressions/c/, run by tests/test_fuzz.py)."""
from __future__ import annotations

from typing import Any, List

import pytest

from conftest import FakeClock


def test_an_unhashable_key_is_refused_before_getsizeof_is_asked(impl: Any) -> None:
    # the twin sized the entry first: its getsizeof's error came out where
    # the compiled core raised the key's TypeError
    asked: List[Any] = []

    def getsizeof(key: Any, value: Any) -> Any:
        asked.append(key)
        return 1.5
    c = impl.LRUCache(10, getsizeof=getsizeof)
    with pytest.raises(TypeError, match="unhashable"):
        c.set([], 1)
    with pytest.raises(TypeError, match="unhashable"):
        c[{}] = 1
    assert asked == []


def test_resize_to_a_memory_limit_sizes_entries_without_the_clock(impl: Any) -> None:
    # the compiled core expired entries (reading the clock) after switching
    # accounting on: a clock failing just then left accounting on and every
    # existing entry counted as 0 bytes, for good
    clock = FakeClock()
    c = impl.LRUCache(10, default_ttl=5, clock=clock)
    c["a"] = "x" * 1000
    c["b"] = "y" * 1000
    clock.now = float("nan")           # the clock fails now: ValueError
    c.resize(memory_limit_mb=1)
    clock.now = 1000.0
    assert c.memory_bytes >= 2000
    assert c._check()


class _PopsVictim:
    """Hashes like the int 2; its __eq__ writes to the cache."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def __hash__(self) -> int:
        return 2

    def __eq__(self, other: Any) -> bool:
        self.cache.pop("victim", None)
        return self is other


def _grow_next_to_a_writing_key(impl: Any) -> Any:
    c = impl.LRUCache(100)
    c[2] = 0
    c[_PopsVictim(c)] = 0
    for i in range(3, 20):
        c[f"k{i}"] = i
        c["victim"] = 1
    return c


@pytest.mark.c_extension
def test_a_key_whose_eq_writes_to_the_cache_while_it_grows_compiled() -> None:
    from conftest import all_impls
    c = _grow_next_to_a_writing_key(all_impls()[0])
    assert c._check()


def test_a_key_whose_eq_writes_to_the_cache_while_it_grows_pure() -> None:
    """Found by the API harness: the twin's index was an OrderedDict, which
    re-ran keys' __eq__ inside its own operations (a RecursionError here;
    CPython's OrderedDict also crashes when such an __eq__ changes it).
    The index is a plain dict now and the order an OrderedDict of ints."""
    from corecache._pure import lru
    c = _grow_next_to_a_writing_key(type("impl", (), {"LRUCache": lru.LRUCache}))
    assert c._check()


def test_an_eviction_whose_key_comparison_raises_leaves_the_cache_whole(impl: Any) -> None:
    # found by the API harness once keys whose __eq__ re-enters the cache
    # were fuzzed again: the twin's eviction removes its entry from the
    # index by key, so a stored key with an equal hash has its __eq__ asked
    # (the compiled table removes by slot and asks nobody).  An __eq__ that
    # raised there (its cache's clock failing) left the twin's entry in the
    # index but out of the recency order
    class Touchy:
        armed = False

        def __hash__(self) -> int:
            return 2

        def __eq__(self, other: Any) -> bool:
            if Touchy.armed:
                raise ValueError("comparison refused")
            return other is self

    c = impl.LRUCache(2)
    t = Touchy()
    c[t] = "t"
    c[2] = "two"             # collides with t, after it in the index's probe
    assert c[t] == "t"       # 2 is the least recently used now
    Touchy.armed = True
    try:
        c[3] = "three"       # evicts 2: the twin's index asks t.__eq__(2)
    except ValueError:
        assert impl.name == "py"
    Touchy.armed = False
    assert c._check()
    assert len(c) == sum(1 for _ in c.keys()) == len(list(c.items()))
    if impl.name == "py":
        assert list(c.keys()) == [2, t]      # nothing taken: 2 is first again
    else:
        assert list(c.keys()) == [t, 3]
    c.evict(5)
    assert len(c) == 0 and c._check()
