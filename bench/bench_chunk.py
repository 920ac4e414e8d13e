"""StreamChunker: throughput over 16 MiB of 80-byte lines, both
implementations, with the reference loops of `python -m corecache.bench`."""
import io

import pytest

MIB = 1 << 20
DATA = (b"0123456789" * 7 + b"abcdefgh\n") * (16 * MIB // 80)


def drain(chunks):
    n = 0
    for c in chunks:
        n += len(c)
    assert n == len(DATA)


def test_lines_from_bytesio(benchmark, impl):
    benchmark(lambda: drain(impl.StreamChunker(io.BytesIO(DATA), MIB, delimiter=b"\n")))


def test_lines_from_bytes(benchmark, impl):
    benchmark(lambda: drain(impl.StreamChunker(DATA, MIB, delimiter=b"\n")))


@pytest.mark.parametrize("size", [64 * 1024, MIB], ids=["64KiB", "1MiB"])
def test_fixed_from_bytes(benchmark, impl, size):
    benchmark(lambda: drain(impl.StreamChunker(DATA, size)))


def test_reference_pure_python_loop(benchmark):
    def run():
        f = io.BytesIO(DATA)
        carry = b""
        n = 0
        while True:
            block = f.read(MIB)
            if not block:
                break
            block = carry + block
            i = block.rfind(b"\n")
            n += i + 1
            carry = block[i + 1:]
        assert n + len(carry) == len(DATA)
    benchmark(run)


def test_reference_bytesio_read(benchmark):
    def run():
        f = io.BytesIO(DATA)
        while f.read(MIB):
            pass
    benchmark(run)


@pytest.mark.parametrize("size", [64 * 1024, MIB], ids=["64KiB", "1MiB"])
def test_reference_memoryview_slicing(benchmark, size):
    def run():
        mv = memoryview(DATA)
        for i in range(0, len(DATA), size):
            mv[i:i + size]
    benchmark(run)
