"""Sampled latency histograms, for the paths whose latency is worth a metric
(loads, flushes) but not a clock read and a lock on every call.

A :class:`LatencyHistogram` times only a sampled fraction of calls (one
``random()`` per call decides) and counts the sampled durations into fixed
buckets; :meth:`LatencyHistogram.snapshot` gives what ``corecache.metrics``
exports as a Prometheus histogram.  The ``_count`` and ``_sum`` of that
histogram cover the sampled calls only: use them for quantiles and mean
latency, and the object's own counters (``loads``) for rates.

This module needs no third-party package, so objects may always record.
"""
from __future__ import annotations

import bisect
import math
import numbers
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Tuple

# seconds: from a local load (sub-millisecond) to a slow writer (10 s)
DEFAULT_BUCKETS: Tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_default_rate = [1.0]


def check_sample_rate(rate: Any, name: str = "sample_rate") -> float:
    """A number in [0, 1]: the fraction of calls that are timed."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{name} must be a number from 0 to 1, got {rate!r}")
    r = float(rate)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"{name} must be a number from 0 to 1, got {rate!r}")
    return r


def set_default_sample_rate(rate: float) -> None:
    """The rate of every histogram built without its own ``sample_rate``
    (1.0, every call, until changed); takes effect at once."""
    _default_rate[0] = check_sample_rate(rate)


def default_sample_rate() -> float:
    return _default_rate[0]


@dataclass(frozen=True)
class HistogramSnapshot:
    """Cumulative bucket counts of sampled durations.

    :param buckets: ``(upper bound in seconds, observations <= bound)`` in
        increasing order, the last bound being ``math.inf``.
    :param sum: seconds summed over the sampled observations.
    :param count: sampled observations (equal to the ``inf`` bucket).
    :param sample_rate: the fraction of calls that were timed.
    """

    buckets: Tuple[Tuple[float, int], ...]
    sum: float
    count: int
    sample_rate: float


class LatencyHistogram:
    """Durations of a sampled fraction of calls, in fixed buckets.

    ``with hist.time(): load()`` times a call when it is sampled; or, on a
    path that avoids a context manager, ``t0 = hist.start()`` (None when
    not sampled) and ``hist.stop(t0)``.

    :param buckets: increasing upper bounds in seconds (``inf`` is added).
    :param sample_rate: the fraction of calls to time, 0 to 1; None follows
        :func:`set_default_sample_rate`.
    :param rng: a zero-argument callable returning a float in [0, 1)
        (``random.random`` by default), for tests.
    """

    def __init__(self, buckets: Tuple[float, ...] = DEFAULT_BUCKETS, *,
                 sample_rate: Optional[float] = None,
                 rng: Optional[Callable[[], float]] = None) -> None:
        bounds = [float(b) for b in buckets]
        if not bounds or any(not b > 0 for b in bounds) or bounds != sorted(set(bounds)):
            raise ValueError(f"buckets must be increasing positive bounds, got {buckets!r}")
        if bounds[-1] != math.inf:
            bounds.append(math.inf)
        self._bounds = tuple(bounds)
        self._counts = [0] * len(bounds)
        self._sum = 0.0
        self._rate = None if sample_rate is None else check_sample_rate(sample_rate)
        self._rng = rng or random.random
        self._lock = threading.Lock()

    @property
    def sample_rate(self) -> float:
        return _default_rate[0] if self._rate is None else self._rate

    @sample_rate.setter
    def sample_rate(self, rate: Optional[float]) -> None:
        self._rate = None if rate is None else check_sample_rate(rate)

    def sampled(self) -> bool:
        """Whether to time this call."""
        rate = _default_rate[0] if self._rate is None else self._rate
        return rate >= 1.0 or (rate > 0.0 and self._rng() < rate)

    def start(self) -> Optional[float]:
        """The start time when this call is sampled, else None."""
        return time.perf_counter() if self.sampled() else None

    def stop(self, started: Optional[float]) -> None:
        """Record the time since `started` (nothing when it is None)."""
        if started is not None:
            self.observe(time.perf_counter() - started)

    @contextmanager
    def time(self) -> Iterator[None]:
        """Time the body if this call is sampled (also when it raises)."""
        t0 = self.start()
        try:
            yield
        finally:
            self.stop(t0)

    def observe(self, seconds: float) -> None:
        """Count one duration (already sampled by the caller)."""
        i = bisect.bisect_left(self._bounds, seconds)
        with self._lock:
            self._counts[min(i, len(self._counts) - 1)] += 1
            self._sum += seconds

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            counts = list(self._counts)
            total = self._sum
        cumulative, running = [], 0
        for bound, n in zip(self._bounds, counts):
            running += n
            cumulative.append((bound, running))
        return HistogramSnapshot(tuple(cumulative), total, running, self.sample_rate)

    def reset(self) -> None:
        with self._lock:
            self._counts = [0] * len(self._bounds)
            self._sum = 0.0
