"""The adaptive policy's pure-Python model on its own: its invariants under
random operations (Hypothesis), and what it is for (it adapts between
recency and frequency).  tests/test_policy_c.py checks that the C policy
decides alike."""
from __future__ import annotations

import collections
import os
from typing import Dict, List, Optional

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from corecache._pure.adaptive import AdaptivePolicy, mix64, sketch_words
from corecache.bench import workloads

EXAMPLES = int(os.environ.get("CORECACHE_HYPOTHESIS_EXAMPLES", "60"))

hashes = st.one_of(st.integers(-(2 ** 63), 2 ** 63 - 1), st.sampled_from([0, -2, 1, 7]))


class PolicyMachine(RuleBasedStateMachine):
    """The model against a plain set of live tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.p: Optional[AdaptivePolicy] = None
        self.live: Dict[int, int] = {}
        self.next = 0

    @precondition(lambda self: self.p is None)
    @rule(capacity=st.integers(1, 40))
    def create(self, capacity: int) -> None:
        self.p = AdaptivePolicy(capacity)

    def _evict(self) -> List[int]:
        assert self.p is not None
        out = []
        while True:
            v = self.p.evict()
            if v is None:
                break
            assert v in self.live and v not in out
            out.append(v)
            del self.live[v]
        return out

    @precondition(lambda self: self.p is not None)
    @rule(h=hashes, reuse=st.booleans())
    def insert(self, h: int, reuse: bool) -> None:
        assert self.p is not None
        token = self.next
        self.next += 1
        if reuse and self.live:
            h = next(iter(self.live.values()))     # an equal hash, another key
        self.p.insert(token, h)
        self.live[token] = h
        self._evict()
        assert len(self.p) <= self.p.capacity

    @precondition(lambda self: self.p is not None and self.live)
    @rule(data=st.data(), times=st.integers(1, 20))
    def hit(self, data: st.DataObject, times: int) -> None:
        assert self.p is not None
        token = data.draw(st.sampled_from(sorted(self.live)))
        for _ in range(times):
            self.p.hit(token)
        assert 1 <= self.p.pending(token) <= 15

    @precondition(lambda self: self.p is not None and self.live)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        assert self.p is not None
        token = data.draw(st.sampled_from(sorted(self.live)))
        self.p.remove(token)
        del self.live[token]

    @precondition(lambda self: self.p is not None)
    @rule(capacity=st.integers(1, 60))
    def resize(self, capacity: int) -> None:
        assert self.p is not None
        self.p.resize(capacity)
        self._evict()
        assert len(self.p) <= capacity

    @precondition(lambda self: self.p is not None)
    @rule()
    def clear(self) -> None:
        assert self.p is not None
        self.p.clear()
        self.live.clear()

    @invariant()
    def consistent(self) -> None:
        p = self.p
        if p is None:
            return
        p.check()
        order = p.order()
        assert sorted(order) == sorted(self.live)
        sizes = p.sizes()
        assert sum(sizes.values()) == len(p) == len(self.live)
        assert sizes["window"] <= p.window_max       # the evict loop ran
        # the table order is protected, probation, window
        segs = [p.segment(t) for t in order]
        rank = {"protected": 0, "probation": 1, "window": 2}
        assert segs == sorted(segs, key=rank.__getitem__)
        for t, h in self.live.items():
            assert 0 <= p.frequency(h) <= 15


TestPolicyMachine = PolicyMachine.TestCase
TestPolicyMachine.settings = settings(max_examples=EXAMPLES, stateful_step_count=60,
                                      deadline=None)


def test_mix64_is_c_uint64_arithmetic() -> None:
    # values from the C finalizer (cc_mix64) for a few inputs
    assert mix64(0) == 0
    assert mix64(-1) == mix64(2 ** 64 - 1)
    assert 0 <= mix64(-(2 ** 63)) < 2 ** 64
    assert mix64(1) == 0xB456BCFC34C2CB2C


def test_sketch_is_about_a_word_per_entry() -> None:
    assert sketch_words(1) == 8
    assert sketch_words(1_000_000) == 1 << 20        # 8.4 bytes per entry
    for cap in (10, 1000, 12345, 999_999):
        assert 0.75 * cap <= sketch_words(cap) < 1.5 * cap or sketch_words(cap) == 8


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        AdaptivePolicy(0)
    p = AdaptivePolicy(3)
    with pytest.raises(ValueError):
        p.resize(0)
    p.insert("a", 1)
    with pytest.raises(KeyError):
        p.insert("a", 1)


def _hit_rate(keys: List[int], capacity: int, adaptive: bool) -> float:
    half = len(keys) // 2
    hits = 0
    if adaptive:
        p = AdaptivePolicy(capacity)
        for i, k in enumerate(keys):
            if k in p:
                p.hit(k)
                hits += i >= half
            else:
                p.insert(k, hash(k))
                while p.evict() is not None:
                    pass
        return hits / (len(keys) - half)
    od: "collections.OrderedDict[int, None]" = collections.OrderedDict()
    for i, k in enumerate(keys):
        if k in od:
            od.move_to_end(k)
            hits += i >= half
        else:
            od[k] = None
            if len(od) > capacity:
                od.popitem(last=False)
    return hits / (len(keys) - half)


@pytest.mark.parametrize("trace,better", [("zipf(0.99)", 0.05), ("loop", 0.3), ("recency", -0.01)])
def test_it_adapts(trace: str, better: float) -> None:
    """Frequency where frequency pays (Zipf, a loop larger than the cache),
    recency where only recency does (the window climbs to the top)."""
    keys = workloads.trace(trace, 40_000, 2_000, seed=4)
    a, lru = _hit_rate(keys, 100, True), _hit_rate(keys, 100, False)
    assert a >= lru + better, (a, lru)
