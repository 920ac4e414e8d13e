"""StreamChunker reference leaks: sources, pieces, delimiters and the
chunker's own buffers are released, also after errors and early stops."""
from __future__ import annotations

import gc
import io
import sys
import tracemalloc

import pytest

from conftest import count_objects

pytestmark = pytest.mark.leaks


def exercise(impl, data, pieces, delim):
    for src in (data, io.BytesIO(data), pieces):
        list(impl.StreamChunker(src, 64, delimiter=delim))
        list(impl.StreamChunker(src if src is not pieces else iter(pieces), 50))
    c = impl.StreamChunker(io.BytesIO(data), 8, delimiter=delim, max_record_size=16)
    try:
        list(c)
    except ValueError:
        pass
    c = impl.StreamChunker(data, 10)
    next(c)
    c.close()
    try:
        list(impl.StreamChunker([data, "x"], 7))
    except TypeError:
        pass
    try:
        impl.StreamChunker(data, 0)
    except ValueError:
        pass


def test_each_operation_gives_back_its_references(impl):
    data = b"ab\ncd\n" * 50 + b"x" * 40 + b"\n"
    pieces = [data[:30], data[30:]]
    delim = b"\n"
    exercise(impl, data, pieces, delim)
    gc.collect()
    before = [sys.getrefcount(x) for x in (data, pieces[0], pieces[1], delim)]
    for _ in range(100):
        exercise(impl, data, pieces, delim)
    gc.collect()
    assert [sys.getrefcount(x) for x in (data, pieces[0], pieces[1], delim)] == before


def test_long_loop_stays_flat(impl):
    data = b"".join(b"record %d\n" % i for i in range(2000))

    def run():
        for src in (data, io.BytesIO(data), [data[i:i + 500] for i in range(0, len(data), 500)]):
            for chunk in impl.StreamChunker(src, 1024, delimiter=b"\n"):
                bytes(chunk)
    run()
    gc.collect()
    tracemalloc.start()
    try:
        objects = count_objects(memoryview, bytearray, io.BytesIO)
        snap1 = tracemalloc.take_snapshot()
        for _ in range(30):
            run()
        gc.collect()
        snap2 = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(s.size_diff for s in snap2.compare_to(snap1, "filename"))
    assert growth < 100_000, growth
    assert count_objects(memoryview, bytearray, io.BytesIO) - objects < 100
