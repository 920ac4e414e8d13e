"""Section "chunk": StreamChunker throughput on an in-memory source of
80-byte lines (256 MiB; 32 MiB with --quick), all in this process:

* delimiter chunking at 1 MiB of an ``io.BytesIO`` (read with readinto),
  against the obvious pure-Python loop over the same BytesIO (``read``,
  ``rfind(b"\\n")``, carry the remainder) and against plain
  ``BytesIO.read(1 << 20)`` with no chunking at all;
* the same over the bytes object itself (zero-copy views; for information);
* fixed-size chunking of the bytes object at 64 KiB and 1 MiB against
  slicing a memoryview by hand.

Each figure is the median over repeats of whole passes, timed round-robin;
GB/s is 10**9 bytes per second."""
from __future__ import annotations

import gc
import io
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .compare import Figure, table_figures
from .targets import Target, ratio
from .report import columns, table

NAME = "chunk"
TITLE = "StreamChunker throughput"

MIB = 1 << 20
MIN_NS = 50_000_000   # each sample: passes over the source for at least 50 ms
LINE = b"0123456789" * 7 + b"abcdefgh\n"     # 80 bytes

DELIM = "lines at 1 MiB, BytesIO source"
DELIM_BYTES = "lines at 1 MiB, bytes source"
FIXED = "fixed {} of bytes"
NAIVE = "pure-Python loop"
PLAIN = "BytesIO.read(1 MiB)"
HAND = "memoryview slicing"


def _source(mib: int) -> bytes:
    size = mib * MIB
    return LINE * (size // len(LINE))


def _naive(data: bytes) -> Callable[[], int]:
    def run() -> int:
        f = io.BytesIO(data)
        read = f.read
        carry = b""
        n = 0
        while True:
            block = read(1 << 20)
            if not block:
                break
            block = carry + block
            i = block.rfind(b"\n")
            if i < 0:
                carry = block
                continue
            chunk = block[:i + 1]
            carry = block[i + 1:]
            n += len(chunk)
        return n + len(carry)
    return run


def _plain(data: bytes) -> Callable[[], int]:
    def run() -> int:
        f = io.BytesIO(data)
        read = f.read
        n = 0
        while True:
            block = read(1 << 20)
            if not block:
                return n
            n += len(block)
    return run


def _chunker(cls: Any, source: Callable[[], Any], size: int,
             delim: Optional[bytes]) -> Callable[[], int]:
    def run() -> int:
        n = 0
        for chunk in cls(source(), size, delimiter=delim):
            n += len(chunk)
        return n
    return run


def _hand(data: bytes, size: int) -> Callable[[], int]:
    def run() -> int:
        mv = memoryview(data)
        n = 0
        for i in range(0, len(data), size):
            chunk = mv[i:i + size]
            n += len(chunk)
        return n
    return run


def _classes() -> List[Tuple[str, Any]]:
    from corecache import _impl
    out = []
    for kind in ("c", "py"):
        mod = _impl.compiled_module("chunk") if kind == "c" else _impl.pure_module("chunk")
        if mod is not None:
            out.append((f"corecache[{kind}]", mod.StreamChunker))
    return out


def run(opts: Any) -> Dict[str, Any]:
    """{row: {who: GB/s}} plus "source_bytes"."""
    data = _source(getattr(opts, "chunk_mib", 32 if opts.quick else 256))
    total = len(data)
    repeats = max(3, min(opts.repeats, 9))
    cases: List[Tuple[str, str, Callable[[], int]]] = []
    for name, cls in _classes():
        cases.append((DELIM, name, _chunker(cls, lambda: io.BytesIO(data), MIB, b"\n")))
        cases.append((DELIM_BYTES, name, _chunker(cls, lambda: data, MIB, b"\n")))
        for size, label in ((64 * 1024, "64 KiB"), (MIB, "1 MiB")):
            cases.append((FIXED.format(label), name, _chunker(cls, lambda: data, size, None)))
    cases.append((DELIM, NAIVE, _naive(data)))
    cases.append((DELIM, PLAIN, _plain(data)))
    for size, label in ((64 * 1024, "64 KiB"), (MIB, "1 MiB")):
        cases.append((FIXED.format(label), HAND, _hand(data, size)))
    samples: Dict[Tuple[str, str], List[float]] = {(r, w): [] for r, w, _ in cases}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for rep in range(-1, repeats):
            for row, who, fn in cases:
                # a pass over a small --quick source is repeated for MIN_NS,
                # keeping its fastest: one interruption by another process
                # would otherwise be most of a microsecond pass's figure
                best = spent = 0
                while spent < MIN_NS or not best:
                    t0 = time.perf_counter_ns()
                    n = fn()
                    elapsed = max(time.perf_counter_ns() - t0, 1)
                    assert n == total, (row, who, n, total)
                    spent += elapsed
                    best = max(best, total / elapsed)    # bytes/ns = GB/s
                if rep >= 0:
                    samples[(row, who)].append(best)
    finally:
        if gc_was:
            gc.enable()
    results: Dict[str, Any] = {"source_bytes": total}
    for (row, who), s in samples.items():
        results.setdefault(row, {})[who] = statistics.median(s)
    return results


def report(results: Dict[str, Any], opts: Any) -> str:
    rows = {k: v for k, v in results.items() if isinstance(v, dict)}
    cols = columns(rows)
    mib = round(results["source_bytes"] / MIB)
    head = f"{TITLE}, {mib} MiB of 80-byte lines{' (a smaller source)' if mib < 256 else ''}"
    return table(head, rows, cols, None, unit="GB/s, higher is better")


def targets(results: Dict[str, Any]) -> List[Target]:
    """Issue 4's chunker targets (compiled build), checks."""
    out: List[Target] = []
    c = "corecache[c]"

    def cmp(row: str, other: str, least: float, text: str, needs: str = "quick",
            why: str = "") -> None:
        x, y = results.get(row, {}).get(c), results.get(row, {}).get(other)
        out.append(ratio(text, x, y, least, at_least=True, unit="GB/s", digits=2, needs=needs,
                         why=why, missing="needs the compiled core"))

    cmp(DELIM, NAIVE, 3.0, "delimiter chunking at 1 MiB vs the pure-Python loop",
        needs="default",
        why="1.4-18x in --quick here: the loop's speed follows the allocator's state")
    cmp(DELIM, PLAIN, 0.5, "delimiter chunking at 1 MiB vs plain BytesIO.read(1 MiB)")
    for label in ("64 KiB", "1 MiB"):
        cmp(FIXED.format(label), HAND, 1 / 1.5,
            f"fixed-size {label} chunking vs slicing memoryviews by hand (within 1.5x)")
    return out


def figures(results: Dict[str, Any]) -> List[Figure]:
    return table_figures(NAME, results, "GB/s")
