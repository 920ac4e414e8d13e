"""functools.lru_cache is the oracle: hypothesis drives it and corecache's
lru_cache (compiled and pure) with the same call sequences, across maxsize
and typed, with arguments of many types and keywords in varying order, and
requires the same return values and the same cache_info() after every call.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Dict, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import all_impls

NAN = float("nan")

# small pools, so that sequences repeat keys and equal values of different
# types (1, 1.0, True; 0, 0.0, -0.0, False) meet often
scalars = st.sampled_from([0, 1, 2, -1, True, False, 1.0, 0.0, -0.0, 2.0, 1.5, NAN, None,
                           "", "a", "ab", b"", b"a"])
values = st.one_of(scalars, scalars, scalars,
                   st.tuples(scalars), st.tuples(scalars, scalars), st.tuples(st.tuples(scalars)))
names = st.sampled_from(["x", "y", "z"])
one_call = st.tuples(st.lists(values, max_size=3),
                     st.lists(st.tuples(names, values), max_size=3, unique_by=lambda kv: kv[0]))

_TWINS = {(int, 1): 1.0, (float, 1.0): True, (bool, True): 1,
          (int, 0): 0.0, (float, 0.0): False, (bool, False): -0.0,
          (int, 2): 2.0, (float, 2.0): 2}


def twin(value: Any) -> Any:
    """An equal value of other types: what only typed=True tells apart."""
    if isinstance(value, tuple):
        return tuple(twin(v) for v in value)
    return _TWINS.get((type(value), value), value)


@st.composite
def call_sequences(draw: Any) -> List[Any]:
    """Calls picked from a small pool (so keys repeat), the pool including
    type twins of its calls, with a cache_clear() now and then."""
    pool = draw(st.lists(one_call, min_size=1, max_size=6))
    pool += [([twin(a) for a in args], [(k, twin(v)) for k, v in kw])
             for args, kw in pool if draw(st.booleans())]
    picks = draw(st.lists(st.integers(-1, len(pool) * 4 - 1), min_size=5, max_size=60))
    return ["clear" if i < 0 else pool[i % len(pool)] for i in picks]

maxsizes = st.sampled_from([None, 0, 1, 2, 3, 5, 128, -1])

EXAMPLES = int(os.environ.get("CORECACHE_HYPOTHESIS_EXAMPLES", "300"))


def make_target() -> Tuple[Any, List[int]]:
    counter = [0]

    def target(*args: Any, **kwargs: Any) -> Tuple[int, tuple, tuple]:
        counter[0] += 1
        return counter[0], args, tuple(kwargs.items())
    return target, counter


def run(decorator: Any, maxsize: Any, typed: bool,
        sequence: List[Any]) -> List[Tuple[Any, Any]]:
    target, _ = make_target()
    f = decorator(maxsize, typed)(target)
    trace = []
    for call in sequence:
        if call == "clear":
            f.cache_clear()
            out: Any = "cleared"
        else:
            args, kwargs = call
            out = f(*args, **dict(kwargs))
        trace.append((repr(out), tuple(f.cache_info())))
    assert f.cache_parameters() == {"maxsize": 0 if maxsize == -1 else maxsize, "typed": typed}
    return trace


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(maxsize=maxsizes, typed=st.booleans(), sequence=call_sequences())
def test_same_results_and_cache_info_as_functools(maxsize: Any, typed: bool,
                                                  sequence: List[Any]) -> None:
    expected = run(functools.lru_cache, maxsize, typed, sequence)
    for impl in all_impls():
        assert run(impl.lru_cache, maxsize, typed, sequence) == expected, impl.name


@settings(max_examples=max(EXAMPLES // 3, 50), deadline=None)
@given(sequence=call_sequences())
def test_cache_decorator_same_as_functools_cache(sequence: List[Any]) -> None:
    def trace(decorator: Any) -> List[Any]:
        target, _ = make_target()
        f = decorator(target)
        out = []
        for call in sequence:
            if call == "clear":
                f.cache_clear()
                continue
            a, kw = call
            out.append((repr(f(*a, **dict(kw))), tuple(f.cache_info())))
        return out
    expected = trace(functools.cache)
    for impl in all_impls():
        assert trace(impl.cache) == expected, impl.name


def test_a_known_difference_is_not_there() -> None:
    """functools keys a lone exact int by itself, so f(1) and f(1.0) are two
    entries while 1.0 and True share one; corecache matches that."""
    for impl in all_impls():
        for deco in (functools.lru_cache, impl.lru_cache):
            target, counter = make_target()
            f = deco(target)
            f(1)
            f(1.0)
            f(True)
            assert tuple(f.cache_info()) == (1, 2, 128, 2)
