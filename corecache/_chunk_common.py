"""Python-level pieces shared by the compiled StreamChunker and its pure
twin: what kind of source it is, argument validation, and the text of every
error, so that both fail alike.  None of this runs per byte."""
from __future__ import annotations

import errno
import io
import operator
import sys
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Tuple

from ._pool_common import describe
from ._checks import check_max_size

BUFFER, FILE, READER, ITERABLE = 0, 1, 2, 3

SOURCE_KINDS = "a bytes-like object, a binary file or an iterable of bytes-like pieces"


def check_chunk_size(value: Any, name: str = "chunk_size") -> int:
    size = check_max_size(value, name)
    if size > sys.maxsize // 2:
        raise ValueError(f"{name} must be at most sys.maxsize // 2, got {value!r}")
    return size


def check_delimiter(value: Any) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"delimiter must be a non-empty bytes-like object or None, got {value!r}")
    try:
        d = bytes(memoryview(value).cast("B")) if not isinstance(value, bytes) else value
    except TypeError:
        raise TypeError(f"delimiter must be a non-empty bytes-like object or None, "
                        f"got {value!r}") from None
    if not d:
        raise ValueError(f"delimiter must be a non-empty bytes-like object or None, got {value!r}")
    return d


def source_view(source: Any) -> Optional[memoryview]:
    """A flat unsigned-byte view of a bytes-like source; None if it is not one."""
    if isinstance(source, str):
        return None
    try:
        view = memoryview(source)
    except TypeError:
        return None
    if not view.c_contiguous:
        view.release()
        raise TypeError(f"source must be a C-contiguous buffer, got a non-contiguous "
                        f"{type(source).__name__}")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def check_chunker_args(source: Any, chunk_size: Any, delimiter: Any,
                       max_record_size: Any) -> Tuple[int, Any, int, Optional[bytes], int]:
    """(kind, view or reader, chunk_size, delimiter, max_record_size or 0);
    everything is checked before the source is touched."""
    chunk_size = check_chunk_size(chunk_size)
    delim = check_delimiter(delimiter)
    max_record = 0
    if max_record_size is not None:
        max_record = check_chunk_size(max_record_size, "max_record_size")
        if delim is None:
            raise ValueError("max_record_size needs a delimiter (records are delimited)")
        if max_record < chunk_size:
            raise ValueError(f"max_record_size must be >= chunk_size ({chunk_size}), "
                             f"got {max_record_size!r}")
    if isinstance(source, io.TextIOBase):
        raise text_file(source)
    view = source_view(source)
    if view is not None:
        return BUFFER, view, chunk_size, delim, max_record
    if isinstance(source, str):
        raise TypeError(f"source must be {SOURCE_KINDS}, got str")
    if callable(getattr(source, "readinto", None)):
        return FILE, source.readinto, chunk_size, delim, max_record
    if callable(getattr(source, "read", None)):
        return READER, source.read, chunk_size, delim, max_record
    try:
        it = iter(source)
    except TypeError:
        raise TypeError(f"source must be {SOURCE_KINDS}, got {type(source).__name__}") from None
    return ITERABLE, it, chunk_size, delim, max_record


def text_file(source: Any) -> TypeError:
    return TypeError(f"source is a text-mode file ({describe(source)}); "
                     f"open it in binary mode ('rb')")


def bad_piece(index: int, piece: Any) -> TypeError:
    return TypeError(f"source yielded {type(piece).__name__} as piece {index}, "
                     f"not a bytes-like object")


def check_read_count(n: Any, size: int) -> int:
    """What source.readinto(buffer of `size` bytes) returned."""
    if n is None:
        raise BlockingIOError(errno.EAGAIN, "source.readinto() returned None: a non-blocking "
                              "stream had no data ready (use a blocking stream)")
    try:
        k = operator.index(n) if not isinstance(n, bool) else -1
    except TypeError:
        raise TypeError(f"source.readinto() must return an int, got {n!r}") from None
    if not 0 <= k <= size:
        raise ValueError(f"source.readinto() returned {n!r} for a buffer of {size} bytes")
    return k


def check_read_data(data: Any, size: int) -> memoryview:
    """What source.read(size) returned, as a flat byte view."""
    if isinstance(data, str):
        raise TypeError("source.read() returned str: the source is a text-mode file; "
                        "open it in binary mode ('rb')")
    if data is None:
        raise BlockingIOError(errno.EAGAIN, "source.read() returned None: a non-blocking "
                              "stream had no data ready (use a blocking stream)")
    try:
        view = source_view(data)
    except TypeError:
        view = None
    if view is None:
        raise TypeError(f"source.read() must return bytes, got {type(data).__name__}")
    if len(view) > size:
        raise ValueError(f"source.read({size}) returned {len(view)} bytes")
    return view


def record_too_long(offset: int, max_record_size: int) -> ValueError:
    return ValueError(f"record at byte offset {offset} is longer than max_record_size "
                      f"({max_record_size} bytes)")


def busy() -> ValueError:
    return ValueError("StreamChunker is already producing a chunk "
                      "(a concurrent or reentrant next())")


def chunker_repr(c: Any) -> str:
    d = "" if c.delimiter is None else f", delimiter={c.delimiter!r}"
    return f"StreamChunker(chunk_size={c.chunk_size}{d}, offset={c.offset})"
