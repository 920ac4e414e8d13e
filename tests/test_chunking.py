"""corecache.batched and corecache.process_chunks: batched against
itertools.batched (3.12+), order, backpressure, cancellation on error,
no leaked threads; process_chunks over both StreamChunker implementations."""
from __future__ import annotations

import hashlib
import io
import itertools
import random
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corecache
from corecache import batched, process_chunks
from corecache.chunking import _batched_py


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.integers()), n=st.integers(1, 7))
def test_batched_is_itertools_batched(items, n):
    got = list(batched(items, n))
    assert list(_batched_py(items, n)) == got
    assert got == [tuple(items[i:i + n]) for i in range(0, len(items), n)]
    if hasattr(itertools, "batched"):
        assert got == list(itertools.batched(items, n))
        assert list(_batched_py(iter(items), n)) == list(itertools.batched(iter(items), n))


def test_batched_is_lazy_and_takes_the_iterator_at_once():
    it = iter(range(10))
    b = batched(it, 3)
    assert next(b) == (0, 1, 2)
    assert next(it) == 3
    assert list(b) == [(4, 5, 6), (7, 8, 9)]
    for fn in (batched, _batched_py):
        with pytest.raises(TypeError):
            fn(5, 2)


@pytest.mark.parametrize("n, exc", [(0, ValueError), (-1, ValueError), ("2", TypeError),
                                    (1.0, TypeError), (True, TypeError)])
def test_batched_bad_n(n, exc):
    with pytest.raises(exc, match="^n must be a positive int, got "):
        batched([1], n)


def thread_names():
    return {t.name for t in threading.enumerate() if t.name.startswith("corecache-process")}


def test_results_come_in_input_order():
    def slow_square(x):
        time.sleep(random.random() / 500)
        return x * x
    assert list(process_chunks(range(200), slow_square, workers=4)) == [x * x for x in range(200)]
    assert not thread_names()


def test_read_ahead_is_bounded_by_max_in_flight():
    read = []

    def source():
        for i in range(100):
            read.append(i)
            yield i
    results = process_chunks(source(), lambda x: x, workers=3, max_in_flight=5)
    assert read == []                       # nothing happens before the first next()
    got = []
    for r in results:
        got.append(r)
        assert len(read) - len(got) <= 5
        time.sleep(0.0005)                  # a slow consumer
    assert got == list(range(100))


def test_a_slow_fn_stops_the_reading():
    read = []
    gate = threading.Event()

    def source():
        for i in range(50):
            read.append(i)
            yield i

    def fn(x):
        gate.wait(10)
        return x
    it = process_chunks(source(), fn, workers=2, max_in_flight=4)
    t = threading.Thread(target=lambda: next(it))
    t.start()
    time.sleep(0.1)
    assert len(read) == 4
    gate.set()
    t.join(10)
    assert list(it) == list(range(1, 50))


def test_an_error_in_fn_stops_reading_cancels_and_propagates():
    read = []
    calls = []

    def source():
        for i in range(1000):
            read.append(i)
            yield i

    def fn(x):
        calls.append(x)
        if x == 10:
            raise ValueError("bad chunk 10")
        time.sleep(0.001)
        return x
    got = []
    with pytest.raises(ValueError, match="bad chunk 10"):
        for r in process_chunks(source(), fn, workers=2, max_in_flight=4):
            got.append(r)
    assert got == list(range(10))
    assert len(read) <= 10 + 4 + 1
    assert max(calls) <= 10 + 4
    assert not thread_names()


def test_an_error_reading_the_chunks_propagates_without_leaking_threads():
    def source():
        yield 1
        yield 2
        raise OSError("read failed")
    with pytest.raises(OSError, match="read failed"):
        list(process_chunks(source(), lambda x: x, workers=2))
    assert not thread_names()


def test_closing_early_cancels_pending_work_and_ends_the_threads():
    calls = []

    def fn(x):
        calls.append(x)
        time.sleep(0.002)
        return x
    it = process_chunks(range(10_000), fn, workers=2, max_in_flight=6)
    for r in it:
        if r == 3:
            break
    it.close()
    assert not thread_names()
    assert len(calls) <= 4 + 6


def test_bad_arguments_fail_at_the_call():
    with pytest.raises(TypeError, match="^fn must be callable, got 3$"):
        process_chunks([], 3)
    with pytest.raises(ValueError, match="^workers must be a positive int, got 0$"):
        process_chunks([], len, workers=0)
    with pytest.raises(ValueError, match="^max_in_flight must be a positive int, got 0$"):
        process_chunks([], len, max_in_flight=0)
    with pytest.raises(TypeError, match="^max_in_flight must be a positive int, got 1.5$"):
        process_chunks([], len, max_in_flight=1.5)
    with pytest.raises(TypeError):
        process_chunks(5, len)


def test_process_chunks_over_a_stream_chunker(impl):
    rnd = random.Random(3)
    data = b"".join(b"%d,%d\n" % (rnd.randrange(10**6), i) for i in range(50_000))
    chunker = impl.StreamChunker(io.BytesIO(data), 4096, delimiter=b"\n")
    # chunks stay valid while fn holds them, however far the reading runs ahead
    digests = list(process_chunks(chunker, lambda c: (len(c), hashlib.sha1(c).hexdigest()),
                                  workers=4, max_in_flight=16))
    want = [(len(c), hashlib.sha1(c).hexdigest())
            for c in impl.StreamChunker(data, 4096, delimiter=b"\n")]
    assert digests == want
    assert sum(n for n, _ in digests) == len(data)


def test_public_names():
    assert corecache.batched is batched
    assert corecache.StreamChunker.__name__ == "StreamChunker"
    assert corecache.ObjectPool.__name__ == "ObjectPool"
    assert sys.modules["corecache"].process_chunks is process_chunks
