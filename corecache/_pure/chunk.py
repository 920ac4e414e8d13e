"""StreamChunker, pure Python: the twin of corecache/_chunk.pyx, with the
same chunks, the same lifetime guarantee and the same errors.

Bytes-like sources are cut into zero-copy memoryview slices of the source.
Files and iterables are read into bytearrays the chunker owns, and each
chunk is a read-only view of one of them.  A buffer is filled again only
when no view of it is alive any more (a bytearray with exports refuses to
resize, which is how that is told), otherwise a new one is made; so a chunk
stays valid for as long as it is held, and a loop that drops each chunk
after use cycles through two buffers.

Delimited chunks end at the last record boundary within chunk_size bytes
(the rightmost delimiter, or for a delimiter that can overlap itself, the
last one found scanning forward, as cc_scan.c does); a record longer than
chunk_size comes whole, in a buffer grown for it.
"""
from __future__ import annotations

from mmap import mmap
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional

from .._chunk_common import (BUFFER, FILE, ITERABLE, READER, bad_piece, busy,
                             check_chunker_args, check_read_count, check_read_data,
                             chunker_repr, record_too_long, source_view)

__all__ = ["StreamChunker"]

_KEEP = 3   # buffers kept for reuse


def _overlaps(d: bytes) -> bool:
    """Does the delimiter have a border (a proper prefix equal to a suffix)?"""
    return any(d[:k] == d[len(d) - k:] for k in range(1, len(d)))


class _ViewSearch:
    """bytes-style find/rfind over a memoryview, searching copies of
    bounded windows (for bytes-like sources other than bytes, bytearray and
    mmap, which can be searched in place)."""

    __slots__ = ("view",)
    STEP = 1 << 16

    def __init__(self, view: memoryview) -> None:
        self.view = view

    def rfind(self, d: bytes, start: int, end: int) -> int:
        i = self.view[start:end].tobytes().rfind(d)
        return i if i < 0 else start + i

    def find(self, d: bytes, start: int, end: int) -> int:
        while start < end:
            hi = min(end, start + self.STEP)
            i = self.view[start:hi].tobytes().find(d)
            if i >= 0:
                return start + i
            if hi == end:
                break
            start = hi - (len(d) - 1)
        return -1


def _is_free(buf: bytearray) -> bool:
    """No view of buf is alive (a bytearray with exports cannot be resized)."""
    try:
        buf.append(0)
    except BufferError:
        return False
    del buf[-1]
    return True


class StreamChunker:
    """An iterator of chunks of a large stream, in bounded memory.

    :param source: a bytes-like object (chunks are zero-copy views of it), a
        binary file (read with ``readinto``, or ``read``), or an iterable of
        bytes-like pieces.
    :param chunk_size: the size of every chunk but the last without a
        delimiter; the most bytes of a chunk with one, unless a single
        record is longer.
    :param delimiter: bytes that end a record (``b"\\n"``, ``b"\\r\\n"``):
        chunks then end just after a delimiter, so no record is split.
    :param max_record_size: with a delimiter, the longest record (delimiter
        included) allowed to exceed chunk_size; a longer one is a ValueError
        naming its byte offset.  None: no limit.

    Every chunk is a ``memoryview`` of bytes: over a bytes-like source a
    view of the source itself; otherwise a read-only view of a buffer the
    chunker owns.  A chunk stays valid for as long as you hold it: a buffer
    is reused only once every view of it has been released, so memory stays
    at a few chunks when each chunk is dropped after use.  After an error
    the chunker is exhausted.  The source is not closed.
    """

    def __init__(self, source: Any, chunk_size: int = 1 << 20, *,
                 delimiter: Optional[bytes] = None,
                 max_record_size: Optional[int] = None) -> None:
        kind, src, chunk_size, delim, max_record = check_chunker_args(
            source, chunk_size, delimiter, max_record_size)
        self._kind = kind
        self._src: Any = src              # view, readinto, read, or iterator
        self._cs = chunk_size
        self._delim = delim
        self._dlen = len(delim) if delim is not None else 0
        self._overlap = _overlaps(delim) if delim is not None else False
        self._max = max_record
        self._offset = 0
        self._done = False
        self._busy = False
        # a bytes-like source: a searchable object and the next chunk's start
        self._find: Any = None
        self._pos = 0
        if kind == BUFFER:
            self._find = source if isinstance(source, (bytes, bytearray, mmap)) \
                else _ViewSearch(src)
        # owned buffers: the one being filled, its carry [start:filled]
        self._cur: Optional[bytearray] = None
        self._start = 0
        self._filled = 0
        self._eof = False
        self._bufs: List[bytearray] = []
        # an iterable source: the current piece and the read position in it
        self._piece: Optional[memoryview] = None
        self._piece_pos = 0
        self._pieces = 0

    # ---- iteration ---------------------------------------------------------

    def __iter__(self) -> "StreamChunker":
        return self

    def __next__(self) -> memoryview:
        if self._done:
            raise StopIteration
        if self._busy:
            raise busy()
        self._busy = True
        try:
            if self._kind == BUFFER:
                chunk = self._next_in_view()
            elif self._delim is None:
                chunk = self._next_fixed()
            else:
                chunk = self._next_delimited()
        except BaseException:
            self._finish()
            raise
        finally:
            self._busy = False
        if chunk is None:
            self._finish()
            raise StopIteration
        self._offset += len(chunk)
        return chunk

    def _finish(self) -> None:
        self._done = True
        if self._kind == BUFFER and isinstance(self._src, memoryview):
            self._src.release()
        self._src = None
        self._find = None
        self._cur = None
        self._bufs = []
        self._piece = None

    def close(self) -> None:
        """Stop: release the buffers and the source (which is not closed);
        further ``next()`` raises StopIteration."""
        if self._busy:
            raise busy()
        self._finish()

    def __enter__(self) -> "StreamChunker":
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.close()
        return False

    # ---- searching ---------------------------------------------------------

    def _last(self, data: Any, start: int, end: int) -> int:
        """End of the last record boundary in data[start:end], relative to
        start; 0 when none (cc_scan_last)."""
        d = self._delim
        if not self._overlap:
            i = data.rfind(d, start, end)
            return 0 if i < 0 else i + self._dlen - start
        e = start
        while True:
            i = data.find(d, e, end)
            if i < 0:
                return e - start
            e = i + self._dlen

    def _first(self, data: Any, start: int, end: int) -> int:
        """End of the first delimiter wholly in data[start:end], absolute;
        0 when none (cc_scan_first)."""
        i = data.find(self._delim, start, end)
        return 0 if i < 0 else i + self._dlen

    # ---- a bytes-like source -----------------------------------------------

    def _next_in_view(self) -> Optional[memoryview]:
        view: memoryview = self._src
        n = len(view)
        p = self._pos
        cs = self._cs
        if p >= n:
            return None
        if self._delim is None or n - p <= cs:
            end = min(p + cs, n)
        else:
            data = self._find
            e = self._last(data, p, p + cs)
            if e:
                end = p + e
            else:
                limit = n if not self._max else min(n, p + self._max)
                e = self._first(data, max(p, p + cs - (self._dlen - 1)), limit)
                if e:
                    end = e
                elif self._max and n - p > self._max:
                    raise record_too_long(self._offset, self._max)
                else:
                    end = n
        self._pos = end
        return view[p:end]

    # ---- owned buffers -----------------------------------------------------

    def _fresh(self, need: int) -> bytearray:
        """A buffer no view uses, of at least `need` bytes: the current one
        or a kept one when free, else a new one."""
        cs = self._cs
        for buf in list(self._bufs):
            if _is_free(buf):
                if len(buf) >= need and len(buf) <= 2 * max(need, cs):
                    return buf
                self._bufs.remove(buf)   # too small, or grown for a long record
        buf = bytearray(max(need, cs))
        if len(self._bufs) >= _KEEP:
            del self._bufs[0]           # still in use: its views keep it alive
        self._bufs.append(buf)
        return buf

    def _read(self, buf: bytearray, filled: int, target: int) -> int:
        """Read up to target - filled bytes into buf[filled:]; 0 at the end."""
        kind = self._kind
        size = target - filled
        if kind == FILE:
            with memoryview(buf) as m:
                part = m[filled:target]
                try:
                    n = self._src(part)
                finally:
                    part.release()
            return check_read_count(n, size)
        if kind == READER:
            data = self._src(size)
            view = check_read_data(data, size)
            k = len(view)
            buf[filled:filled + k] = view
            view.release()
            return k
        # an iterable of pieces
        while True:
            piece = self._piece
            if piece is not None:
                left = len(piece) - self._piece_pos
                if left:
                    k = min(left, size)
                    buf[filled:filled + k] = piece[self._piece_pos:self._piece_pos + k]
                    self._piece_pos += k
                    return k
                piece.release()
                self._piece = None
            try:
                obj = next(self._src)
            except StopIteration:
                return 0
            index = self._pieces
            self._pieces += 1
            try:
                view = source_view(obj)
            except TypeError:
                view = None
            if view is None:
                raise bad_piece(index, obj)
            self._piece = view
            self._piece_pos = 0

    def _fill(self, buf: bytearray, filled: int, target: int) -> int:
        while filled < target and not self._eof:
            n = self._read(buf, filled, target)
            if n == 0:
                self._eof = True
            filled += n
        return filled

    @staticmethod
    def _chunk(buf: bytearray, n: int) -> memoryview:
        with memoryview(buf) as m:
            return m[:n].toreadonly()

    def _next_fixed(self) -> Optional[memoryview]:
        if self._eof:
            return None
        buf = self._fresh(self._cs)
        self._cur = buf
        n = self._fill(buf, 0, self._cs)
        if n == 0:
            return None
        return self._chunk(buf, n)

    def _next_delimited(self) -> Optional[memoryview]:
        cs = self._cs
        carry = self._filled - self._start
        if carry == 0 and self._eof:
            return None
        old = self._cur
        # one byte past the window tells whether the rest fits in one chunk
        buf = self._fresh(max(cs + 1, carry))
        if carry:
            if buf is old:
                buf[0:carry] = buf[self._start:self._filled]
            else:
                buf[0:carry] = old[self._start:self._filled]  # type: ignore[index]
        self._cur = buf
        self._start = self._filled = 0
        filled = self._fill(buf, carry, cs + 1)
        if filled == 0:
            return None
        if self._eof and filled <= cs:
            return self._cut(buf, filled, filled)
        e = self._last(buf, 0, cs)
        if e:
            return self._cut(buf, e, filled)
        # a record longer than chunk_size: read on until it ends
        scanned = cs
        while True:
            limit = filled if not self._max else min(filled, self._max)
            e = self._first(buf, max(0, scanned - (self._dlen - 1)), limit)
            if e:
                return self._cut(buf, e, filled)
            if self._max and filled > self._max:
                raise record_too_long(self._offset, self._max)
            if self._eof:
                return self._cut(buf, filled, filled)
            scanned = limit
            cap = len(buf) * 2
            if self._max:
                cap = min(cap, self._max + 1)
            buf = self._grow(buf, filled, cap)
            filled = self._fill(buf, filled, cap)

    def _grow(self, buf: bytearray, filled: int, cap: int) -> bytearray:
        """A buffer of `cap` bytes holding buf[:filled], in buf's place: a new
        one, as the source's readinto may have kept a view of buf."""
        new = bytearray(cap)
        new[:filled] = buf[:filled]
        for k, b in enumerate(self._bufs):
            if b is buf:
                self._bufs[k] = new
                break
        self._cur = new
        return new

    def _cut(self, buf: bytearray, end: int, filled: int) -> memoryview:
        """Yield buf[:end]; buf[end:filled] is carried to the next chunk."""
        self._start = end
        self._filled = filled
        return self._chunk(buf, end)

    # ---- introspection -----------------------------------------------------

    @property
    def offset(self) -> int:
        """Bytes handed out so far: the stream offset of the next chunk."""
        return self._offset

    @property
    def chunk_size(self) -> int:
        return self._cs

    @property
    def delimiter(self) -> Optional[bytes]:
        return self._delim

    @property
    def max_record_size(self) -> Optional[int]:
        return self._max or None

    def __repr__(self) -> str:
        return chunker_repr(self)

    def __reduce__(self) -> Any:
        raise TypeError("StreamChunker objects cannot be pickled")
