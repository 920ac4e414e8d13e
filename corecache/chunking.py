"""Processing streams in pieces: ``batched`` for streams of objects and
``process_chunks`` for running a function over chunks on a thread pool with
bounded read-ahead.  Pure Python over the standard library (the per-chunk
work is the caller's ``fn``; these only orchestrate), shared by both
implementations.  StreamChunker itself is a hot path and lives in the
compiled core and its pure twin."""
from __future__ import annotations

import itertools
import os
import threading
from collections import deque

from ._checks import check_max_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from concurrent.futures import Future
    from typing import Any, Callable, Deque, Iterable, Iterator, Optional, Tuple, TypeVar
    T = TypeVar("T")
    R = TypeVar("R")

__all__ = ["batched", "process_chunks"]


def _batched_py(iterable: Iterable[T], n: int) -> Iterator[Tuple[T, ...]]:
    """itertools.batched for Pythons before 3.12 (the iterator is taken at
    the call, as itertools does, so a non-iterable fails at once)."""
    it = iter(iterable)
    islice = itertools.islice

    def gen() -> Iterator[Tuple[T, ...]]:
        while True:
            batch = tuple(islice(it, n))
            if not batch:
                return
            yield batch
    return gen()


_batched_impl = getattr(itertools, "batched", None) or _batched_py


def batched(iterable: Iterable[T], n: int) -> Iterator[Tuple[T, ...]]:
    """Tuples of ``n`` consecutive items of ``iterable`` (the last one may be
    shorter): ``itertools.batched`` (Python 3.12+), on every supported Python (3.10+).

    :param n: the batch size, a positive int.
    """
    return _batched_impl(iterable, check_max_size(n, "n"))


def _default_workers() -> int:
    return os.cpu_count() or 1


def process_chunks(chunks: Iterable[Any], fn: Callable[[Any], R], *,
                   workers: Optional[int] = None,
                   max_in_flight: Optional[int] = None) -> Iterator[R]:
    """``fn(chunk)`` for every chunk, on a pool of threads, yielded in input
    order.

    At most ``max_in_flight`` chunks are read ahead of the results the
    consumer has taken, so a slow ``fn`` or a slow consumer stops the
    reading (backpressure) and memory stays bounded.  When ``fn`` raises,
    reading stops, the results before it are still yielded in order, then
    the chunks not yet started are cancelled and the exception propagates.
    Closing the iterator early (``break``) cancels the pending work too.
    The threads are gone when the iterator is exhausted or closed.

    :param chunks: any iterable (a :class:`StreamChunker`, a list, a
        generator); it is read from the consumer's thread only.
    :param fn: called with one chunk; it runs in worker threads.
    :param workers: threads; None for ``os.cpu_count()``.
    :param max_in_flight: chunks read but not yet yielded as results; None
        for ``2 * workers``.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r}")
    n_workers = _default_workers() if workers is None else check_max_size(workers, "workers")
    limit = 2 * n_workers if max_in_flight is None else check_max_size(max_in_flight,
                                                                        "max_in_flight")
    it = iter(chunks)
    return _run(it, fn, n_workers, limit)


def _run(it: Iterator[Any], fn: Callable[[Any], R], n_workers: int,
         limit: int) -> Iterator[R]:
    failed = threading.Event()

    def watch(f: "Future[R]") -> None:
        if not f.cancelled() and f.exception() is not None:
            failed.set()

    pending: Deque["Future[R]"] = deque()
    from concurrent.futures import ThreadPoolExecutor
    executor = ThreadPoolExecutor(max_workers=n_workers,
                                  thread_name_prefix="corecache-process_chunks")
    try:
        exhausted = False
        while True:
            while not exhausted and not failed.is_set() and len(pending) < limit:
                try:
                    chunk = next(it)
                except StopIteration:
                    exhausted = True
                    break
                f = executor.submit(fn, chunk)
                del chunk
                f.add_done_callback(watch)
                pending.append(f)
            if not pending:
                return
            f = pending.popleft()
            result = f.result()   # raises fn's exception
            del f
            yield result
            del result
    finally:
        for f in pending:
            f.cancel()
        pending.clear()
        executor.shutdown(wait=True)
