"""StreamChunker: the round-trip and packing properties over random inputs,
chunk sizes, delimiters and source kinds (hypothesis), chunk lifetime,
max_record_size, bad input, reentrancy; both implementations through the
`impl` fixture, and compiled against pure chunk by chunk."""
from __future__ import annotations

import array
import gc
import sys
import sysconfig
import weakref
import io
import os
import random
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import all_impls

EXAMPLES = int(os.environ.get("CORECACHE_HYPOTHESIS_EXAMPLES", "300"))


# ---- the specification, as simply as it can be written ------------------------

def records(data: bytes, delim: bytes) -> List[bytes]:
    """Records parsed from the left (each ends with its delimiter but the
    last, which may lack it)."""
    out = []
    pos = 0
    while pos < len(data):
        i = data.find(delim, pos)
        end = len(data) if i < 0 else i + len(delim)
        out.append(data[pos:end])
        pos = end
    return out


def expected(data: bytes, size: int, delim: Optional[bytes],
             max_record: Optional[int] = None) -> Tuple[List[bytes], Optional[int]]:
    """(chunks, byte offset of a too-long record or None)."""
    if delim is None:
        return [data[i:i + size] for i in range(0, len(data), size)], None
    chunks: List[bytes] = []
    cur = b""
    offset = 0
    for rec in records(data, delim):
        if len(cur) + len(rec) <= size:
            cur += rec
        else:
            if cur:
                chunks.append(cur)
                cur = b""
            if len(rec) > size:
                if max_record is not None and len(rec) > max_record:
                    return chunks, offset
                chunks.append(rec)
            else:
                cur = rec
        offset += len(rec)
    if cur:
        chunks.append(cur)
    return chunks, None


# ---- sources ----------------------------------------------------------------

class RawFile(io.RawIOBase):
    """A file whose readinto returns short reads of random sizes."""

    def __init__(self, data: bytes, seed: int) -> None:
        self.data = data
        self.pos = 0
        self.rnd = random.Random(seed)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), len(self.data) - self.pos, self.rnd.randrange(1, 40))
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


class ReadOnly:
    """A binary stream with read() and no readinto()."""

    def __init__(self, data: bytes, seed: int) -> None:
        self.f = io.BytesIO(data)
        self.rnd = random.Random(seed)

    def read(self, n: int = -1) -> bytes:
        return self.f.read(min(n, self.rnd.randrange(1, 50)))


def pieces(data: bytes, seed: int) -> List[Any]:
    rnd = random.Random(seed)
    out: List[Any] = []
    pos = 0
    while pos < len(data):
        k = rnd.randrange(0, 30)
        part = data[pos:pos + k]
        out.append(rnd.choice([bytes, bytearray, memoryview])(part))
        pos += k
    out.insert(rnd.randrange(len(out) + 1), b"")
    return out


SOURCES = ["bytes", "bytearray", "memoryview", "array", "bytesio", "raw", "reader", "pieces",
           "generator"]


def make_source(kind: str, data: bytes, seed: int = 0) -> Any:
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(b"##" + data + b"##")[2:-2]
    if kind == "array":
        return array.array("B", data)
    if kind == "bytesio":
        return io.BytesIO(data)
    if kind == "raw":
        return RawFile(data, seed)
    if kind == "reader":
        return ReadOnly(data, seed)
    if kind == "pieces":
        return pieces(data, seed)
    return (p for p in pieces(data, seed))


DELIMITERS = [None, b"\n", b"\r\n", b"ab", b"aa", b"\n\n", b"aba", b"\r\n\r\n"]

data_st = st.lists(st.sampled_from([b"a", b"b", b"\n", b"\r", b"\r\n", b"x" * 7, b"aba", b"\n\n"]),
                   max_size=60).map(b"".join)


# `impl` is a plain namespace, the same for every example
PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@PROPERTY
@given(data=data_st, size=st.integers(1, 24), delim=st.sampled_from(DELIMITERS),
       kind=st.sampled_from(SOURCES), seed=st.integers(0, 1000))
def test_chunks_round_trip_and_pack_as_specified(impl, data, size, delim, kind, seed):
    want, _ = expected(data, size, delim)
    c = impl.StreamChunker(make_source(kind, data, seed), size, delimiter=delim)
    got = list(c)           # held all at once: none may be overwritten
    assert all(isinstance(x, memoryview) and x.format == "B" for x in got)
    got = [bytes(x) for x in got]
    assert b"".join(got) == data
    assert got == want, (got, want)
    assert c.offset == len(data)
    assert next(c, None) is None


@PROPERTY
@given(data=data_st, size=st.integers(1, 12), extra=st.integers(0, 10),
       delim=st.sampled_from(DELIMITERS[1:]), kind=st.sampled_from(SOURCES),
       seed=st.integers(0, 1000))
def test_max_record_size_as_specified(impl, data, size, extra, delim, kind, seed):
    limit = size + extra
    want, bad_offset = expected(data, size, delim, limit)
    if True:
        c = impl.StreamChunker(make_source(kind, data, seed), size, delimiter=delim,
                               max_record_size=limit)
        got = []
        if bad_offset is None:
            got = [bytes(x) for x in c]
        else:
            with pytest.raises(ValueError) as e:
                for x in c:
                    got.append(bytes(x))
            assert str(e.value) == (f"record at byte offset {bad_offset} is longer than "
                                    f"max_record_size ({limit} bytes)")
            assert next(c, None) is None     # exhausted after the error
        assert got == want


def test_fixed_size_chunks(impl):
    data = bytes(range(256)) * 40
    chunks = list(impl.StreamChunker(data, 1000))
    assert [len(c) for c in chunks] == [1000] * 10 + [240]
    assert all(c.obj is data for c in chunks)          # zero-copy views of the source
    chunks = list(impl.StreamChunker(io.BytesIO(data), 1000))
    assert b"".join(chunks) == data and len(chunks) == 11


def test_default_chunk_size_is_one_mib(impl):
    c = impl.StreamChunker(b"")
    assert c.chunk_size == 1 << 20
    assert list(c) == []
    assert list(impl.StreamChunker(io.BytesIO(b""), delimiter=b"\n")) == []


def test_a_record_longer_than_chunk_size_comes_whole(impl):
    data = b"ab\n" + b"x" * 50 + b"\ncd\n"
    for src in (data, io.BytesIO(data), [data]):
        got = [bytes(c) for c in impl.StreamChunker(src, 8, delimiter=b"\n")]
        assert got == [b"ab\n", b"x" * 50 + b"\n", b"cd\n"]


def test_last_chunk_may_lack_the_delimiter(impl):
    got = [bytes(c) for c in impl.StreamChunker(io.BytesIO(b"a\nb\nccc"), 4, delimiter=b"\n")]
    assert got == [b"a\nb\n", b"ccc"]


def test_overlapping_delimiter_splits_like_bytes_split(impl):
    # "\n\n\n" holds one record end, after the first two newlines
    got = [bytes(c) for c in impl.StreamChunker(b"x\n\n\ny\n\n", 4, delimiter=b"\n\n")]
    assert got == [b"x\n\n", b"\ny\n\n"]


def test_file_chunks_are_read_only_and_stay_valid_while_held(impl):
    data = os.urandom(64 * 1024)
    c = impl.StreamChunker(io.BytesIO(data), 4096)
    held = list(c)
    assert b"".join(held) == data
    assert all(h.readonly for h in held)
    with pytest.raises(TypeError):
        held[0][0] = 1
    # a writable source gives writable views of itself
    ba = bytearray(data)
    first = next(impl.StreamChunker(ba, 10))
    assert not first.readonly and first.obj is ba


def test_buffers_are_reused_when_chunks_are_dropped(impl):
    data = os.urandom(256 * 1024)
    c = impl.StreamChunker(io.BytesIO(data), 4096, delimiter=b"\x00")
    owners = set()
    total = 0
    for chunk in c:
        owners.add(id(chunk.obj))
        total += len(chunk)
    assert total == len(data)
    assert len(owners) <= 3


def test_pickling_is_refused_and_weakrefs_work(impl):
    import pickle
    import weakref
    c = impl.StreamChunker(b"abc", 2)
    with pytest.raises(TypeError, match="^StreamChunker objects cannot be pickled$"):
        pickle.dumps(c)
    assert weakref.ref(c)() is c


def test_offset_and_repr(impl):
    c = impl.StreamChunker(b"ab\ncd\nef", 3, delimiter=b"\n")
    assert repr(c) == "StreamChunker(chunk_size=3, delimiter=b'\\n', offset=0)"
    next(c)
    assert c.offset == 3
    assert (c.delimiter, c.max_record_size) == (b"\n", None)
    assert repr(impl.StreamChunker(b"", 5)) == "StreamChunker(chunk_size=5, offset=0)"


def test_close_and_context_manager(impl):
    f = io.BytesIO(b"x" * 100)
    with impl.StreamChunker(f, 10) as c:
        assert bytes(next(c)) == b"x" * 10
    assert list(c) == []
    assert not f.closed          # the source is the caller's
    ba = bytearray(b"abc")
    c = impl.StreamChunker(ba, 1)
    next(c)
    c.close()
    ba.extend(b"d")              # the chunker let go of its view


def test_exhausted_bytearray_source_can_be_resized(impl):
    ba = bytearray(b"abcdef")
    assert len(list(impl.StreamChunker(ba, 4))) == 2
    ba.extend(b"g")


def test_real_files(impl, tmp_path):
    path = tmp_path / "data.txt"
    data = b"".join(b"line %d\n" % i for i in range(5000))
    path.write_bytes(data)
    for buffering in (-1, 0):
        with open(path, "rb", buffering=buffering) as f:
            got = [bytes(c) for c in impl.StreamChunker(f, 1000, delimiter=b"\n")]
        assert got == expected(data, 1000, b"\n")[0]


def test_compiled_and_pure_agree_on_a_large_random_stream():
    rnd = random.Random(7)
    data = b"".join(b"y" * rnd.randrange(0, 300) + rnd.choice([b"\n", b"\r\n"])
                    for _ in range(20000))
    outs = []
    for impl in all_impls():
        for kind in ("bytes", "bytesio", "pieces"):
            outs.append([bytes(c) for c in impl.StreamChunker(
                make_source(kind, data, 3), 4096, delimiter=b"\r\n", max_record_size=8192)])
    assert all(o == outs[0] for o in outs)
    assert outs[0] == expected(data, 4096, b"\r\n")[0]


# ---- bad input ----------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(chunk_size=0), ValueError, "chunk_size must be a positive int, got 0"),
    (dict(chunk_size=-5), ValueError, "chunk_size must be a positive int, got -5"),
    (dict(chunk_size=1.5), TypeError, "chunk_size must be a positive int, got 1.5"),
    (dict(chunk_size="8"), TypeError, "chunk_size must be a positive int, got '8'"),
    (dict(chunk_size=True), TypeError, "chunk_size must be a positive int, got True"),
    (dict(chunk_size=1 << 70), ValueError, "chunk_size must be at most sys.maxsize // 2"),
    (dict(delimiter=b""), ValueError,
     "delimiter must be a non-empty bytes-like object or None, got b''"),
    (dict(delimiter="\n"), TypeError,
     "delimiter must be a non-empty bytes-like object or None, got '\\\\n'"),
    (dict(delimiter=10), TypeError,
     "delimiter must be a non-empty bytes-like object or None, got 10"),
    (dict(max_record_size=100), ValueError, r"max_record_size needs a delimiter"),
    (dict(max_record_size=4, delimiter=b"\n"), ValueError,
     r"max_record_size must be >= chunk_size \(8\), got 4"),
    (dict(max_record_size=0, delimiter=b"\n"), ValueError,
     "max_record_size must be a positive int, got 0"),
])
def test_bad_arguments(impl, kwargs, exc, message):
    args = dict(chunk_size=8)
    args.update(kwargs)
    with pytest.raises(exc, match=f"^{message}"):
        impl.StreamChunker(b"data", **args)


def test_a_delimiter_may_be_any_bytes_like(impl):
    c = impl.StreamChunker(b"a;b;c", 2, delimiter=bytearray(b";"))
    assert c.delimiter == b";"
    assert [bytes(x) for x in c] == [b"a;", b"b;", b"c"]


@pytest.mark.parametrize("source, message", [
    (5, "source must be a bytes-like object, a binary file or an iterable of bytes-like "
        "pieces, got int"),
    (None, "source must be a bytes-like object, a binary file or an iterable of "
           "bytes-like pieces, got NoneType"),
    ("text", "source must be a bytes-like object, a binary file or an iterable of "
             "bytes-like pieces, got str"),
    (io.StringIO("text"), r"source is a text-mode file \(<_io.StringIO object at 0x"),
])
def test_bad_sources(impl, source, message):
    with pytest.raises(TypeError, match=f"^{message}"):
        impl.StreamChunker(source)


def test_a_text_mode_file_is_refused(impl, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("hello\n")
    with open(path) as f:
        with pytest.raises(TypeError, match=r"source is a text-mode file .*open it in binary mode \('rb'\)"):
            impl.StreamChunker(f)


def test_a_non_contiguous_buffer_is_refused(impl):
    with pytest.raises(TypeError, match="^source must be a C-contiguous buffer, got a "
                                        "non-contiguous memoryview$"):
        impl.StreamChunker(memoryview(b"abcdef")[::2])


def test_a_bad_piece_is_a_type_error_naming_it(impl):
    c = impl.StreamChunker([b"ab", "cd", b"ef"], 1)
    assert bytes(next(c)) == b"a"
    assert bytes(next(c)) == b"b"
    with pytest.raises(TypeError, match="^source yielded str as piece 1, not a bytes-like object$"):
        next(c)
    assert next(c, None) is None
    with pytest.raises(TypeError, match="^source yielded int as piece 0"):
        list(impl.StreamChunker([1, 2], 4))


class BadReadinto:
    def __init__(self, result):
        self.result = result

    def readinto(self, b):
        return self.result


@pytest.mark.parametrize("result, exc, message", [
    (None, BlockingIOError, "source.readinto\\(\\) returned None: a non-blocking stream"),
    (-1, ValueError, "^source.readinto\\(\\) returned -1 for a buffer of 16 bytes$"),
    (17, ValueError, "^source.readinto\\(\\) returned 17 for a buffer of 16 bytes$"),
    ("3", TypeError, "^source.readinto\\(\\) must return an int, got '3'$"),
    (True, ValueError, "^source.readinto\\(\\) returned True"),
])
def test_a_misbehaving_readinto_is_an_error_not_a_crash(impl, result, exc, message):
    c = impl.StreamChunker(BadReadinto(result), 16)
    with pytest.raises(exc, match=message):
        next(c)
    assert next(c, None) is None


def test_a_reader_returning_str_is_a_text_file(impl):
    class Text:
        def read(self, n):
            return "abc"
    with pytest.raises(TypeError, match=r"^source.read\(\) returned str: the source is a text-mode file"):
        next(impl.StreamChunker(Text(), 4))

    class TooMuch:
        def read(self, n):
            return b"x" * (n + 1)
    with pytest.raises(ValueError, match=r"^source.read\(4\) returned 5 bytes$"):
        next(impl.StreamChunker(TooMuch(), 4))


def test_an_error_from_the_source_propagates_and_ends_the_chunker(impl):
    class Flaky(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            raise OSError("disk gone")
    c = impl.StreamChunker(Flaky(), 8)
    with pytest.raises(OSError, match="disk gone"):
        next(c)
    assert list(c) == []


def test_reentrant_next_is_refused(impl):
    holder = {}

    class Sneaky(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            with pytest.raises(ValueError, match="already producing a chunk"):
                next(holder["c"])
            b[:1] = b"z"
            return 1
    c = impl.StreamChunker(Sneaky(), 1)
    holder["c"] = c
    assert bytes(next(c)) == b"z"


def test_a_readinto_that_keeps_the_view_cannot_write_later(impl):
    kept = []

    class Keeper(io.RawIOBase):
        n = 0

        def readable(self):
            return True

        def readinto(self, b):
            kept.append(b)
            if self.n:
                return 0
            self.n = 1
            b[:2] = b"hi"
            return 2
    got = [bytes(x) for x in impl.StreamChunker(Keeper(), 4)]
    assert got == [b"hi"]
    with pytest.raises(ValueError):
        kept[0][0] = 1           # released: operation on a released view


def test_a_long_record_grows_into_a_new_buffer_not_under_a_kept_view(impl):
    # readinto keeps a slice of the view it was given (a slice outlives the
    # release of the original); the record is longer than chunk_size, so
    # the buffer has to grow.  Growing in place would leave the slice over
    # freed memory (or aliasing the chunk); a new buffer leaves it over the
    # old one, still alive, and the chunk untouched by writes through it.
    class Keeper(io.RawIOBase):
        def __init__(self) -> None:
            self.f = io.BytesIO(b"x" * 20000 + b"\n" + b"y" * 10 + b"\n")
            self.kept: List[memoryview] = []

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            self.kept.append(b[:16])
            return self.f.readinto(b)

    r = Keeper()
    chunks = list(impl.StreamChunker(r, 4096, delimiter=b"\n"))
    assert [len(c) for c in chunks] == [20001, 11]
    assert all(len(bytes(view)) == 16 for view in r.kept)
    # the slice kept by the first read is over the buffer before it grew
    r.kept[0][:8] = b"z" * 8
    assert bytes(chunks[0]) == b"x" * 20000 + b"\n"
    assert bytes(chunks[1]) == b"y" * 10 + b"\n"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="__buffer__ is 3.12+")
def test_a_chunker_in_a_reference_cycle_is_collected_cleanly(impl, unraisable):
    # The piece being read refers back to the chunker: chunker -> its view
    # of the piece -> piece -> chunker.  The chunker is older than the
    # piece, so the collector clears it first, while it still holds an
    # export of the view; clearing must release that export, not just drop
    # the reference (the view then complains it is freed while exported).
    class Piece:
        def __init__(self, chunker: Any) -> None:
            self.data = bytearray(b"ab\n" * 20)
            self.chunker = chunker

        def __buffer__(self, flags: int) -> memoryview:
            return memoryview(self.data)

    class Pieces:
        chunker: Any = None

        def __iter__(self) -> "Pieces":
            return self

        def __next__(self) -> Piece:
            return Piece(self.chunker)

    pieces = Pieces()
    c = impl.StreamChunker(pieces, 8, delimiter=b"\n")
    pieces.chunker = c
    next(c)
    pieces.chunker = None          # only the current piece refers back now
    ref = weakref.ref(c)
    del c, pieces
    gc.collect()
    assert ref() is None
    assert unraisable == []


def _tp_clear(obj: Any) -> None:
    """Call type(obj)->tp_clear(obj), as the collector does on a cycle (the
    order in which it clears a cycle's members is not something a test can
    choose, so this calls the slot itself)."""
    import ctypes
    offset = 24 * ctypes.sizeof(ctypes.c_void_p)    # PyTypeObject.tp_clear
    slot = ctypes.c_void_p.from_address(id(type(obj)) + offset).value
    assert slot, "no tp_clear"
    ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)(slot)(obj)


@pytest.mark.c_extension
@pytest.mark.skipif(bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
                    reason="PyTypeObject offsets of the default build")
@pytest.mark.parametrize("kind", ["bytes-like", "pieces"])
def test_clearing_a_chunker_releases_its_exports(kind, unraisable):
    from corecache import _impl
    mod = _impl.compiled_module("chunk")
    if mod is None:
        pytest.skip("no compiled module")
    data = bytearray(b"ab\n" * 100)
    source = data if kind == "bytes-like" else iter([data])
    c = mod.StreamChunker(source, 8, delimiter=b"\n")
    next(c)
    _tp_clear(c)
    assert unraisable == []
    data.extend(b"!")              # nothing exports it any more
    with pytest.raises(StopIteration):
        next(c)
