"""Bounded memory: chunking a generated 2 GiB file with 1 MiB chunks grows
resident memory by a few chunks, not by the file (psutil), for both
implementations, with and without a delimiter."""
from __future__ import annotations

import gc
import os

import pytest

psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow

GIB = 1 << 30
MIB = 1 << 20


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("chunk") / "big.txt"
    line = b"0123456789" * 7 + b"abcdefgh\n"        # 80-byte lines
    block = line * (MIB // len(line)) + b"z" * (MIB % len(line))
    with open(path, "wb") as f:
        for _ in range(2 * GIB // len(block)):
            f.write(block)
    yield path, os.path.getsize(path)
    os.unlink(path)


@pytest.mark.parametrize("delimiter", [b"\n", None], ids=["lines", "fixed"])
def test_chunking_2_gib_grows_rss_by_a_few_chunks(impl, big_file, delimiter):
    path, size = big_file
    assert size >= 2 * GIB - MIB
    proc = psutil.Process()
    gc.collect()
    before = proc.memory_info().rss
    peak = before
    total = n = 0
    with open(path, "rb") as f:
        for chunk in impl.StreamChunker(f, MIB, delimiter=delimiter):
            total += len(chunk)
            n += 1
            if n % 64 == 0:
                peak = max(peak, proc.memory_info().rss)
    peak = max(peak, proc.memory_info().rss)
    assert total == size
    growth = peak - before
    assert growth < 16 * MIB, f"resident memory grew by {growth / MIB:.1f} MiB"
