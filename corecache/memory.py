"""A memory-pressure monitor that makes registered caches and pools shed load.

:class:`MemoryMonitor` samples memory (psutil, on a daemon thread) and
classifies it NORMAL, MODERATE, HIGH or CRITICAL.  When the level rises it
runs that level's response; the defaults, each replaceable with
:meth:`MemoryMonitor.set_response`:

* MODERATE: ``gc.collect(1)``;
* HIGH: a full collection; every registered cache evicts ``shrink_fraction``
  of its entries, least recently used first (counted as evictions); pools
  drop their idle objects;
* CRITICAL: registered caches are cleared and refuse new entries (a circuit
  breaker: ``set`` becomes a counted no-op, reads still work), pools drop
  their idle objects, then a full collection.  The breaker stays on until
  the level falls back to HIGH or below.

A level is entered as soon as memory reaches its threshold, but left only
when memory falls ``hysteresis`` points below it, so that a level does not
flap around a threshold.  Actions added with :meth:`MemoryMonitor.add_action`
run whenever their level is entered, rising or falling.

Requires the ``memory`` extra (psutil) unless a ``probe`` is given.
"""
from __future__ import annotations

import enum
import gc
import logging
import math
import numbers
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from . import _adapters
from ._adapters import CACHE, FUNCTION, PATTERN, POOL, field
from ._checks import check_memory_limit_mb, check_seconds

__all__ = ["Level", "MemoryMonitor", "MemorySample", "MemoryStats", "PressureEvent",
           "process_probe", "system_probe"]

log = logging.getLogger("corecache.memory")


class Level(enum.IntEnum):
    """Memory pressure, in increasing order."""

    NORMAL = 0
    MODERATE = 1
    HIGH = 2
    CRITICAL = 3


@dataclass(frozen=True)
class MemorySample:
    """One reading: when (the monitor's clock), how much, and the level."""

    time: float
    percent: float
    level: Level


@dataclass(frozen=True)
class PressureEvent:
    """What an action or response is called with when a level is entered."""

    monitor: "MemoryMonitor"
    level: Level
    previous: Level
    percent: float


@dataclass(frozen=True)
class MemoryStats:
    """A snapshot for ``corecache.metrics`` (and people).

    :param level: the current level.
    :param percent: the last reading, None before the first.
    :param growth_rate: percentage points per second, None unless growing.
    :param predicted_exhaustion_seconds: seconds until 100 % at that rate.
    :param breaker_open: whether registered caches refuse writes now.
    :param registered: objects registered and alive.
    """

    level: Level
    percent: Optional[float]
    growth_rate: Optional[float]
    predicted_exhaustion_seconds: Optional[float]
    breaker_open: bool
    registered: int


def _psutil() -> Any:
    try:
        import psutil
    except ImportError as exc:
        raise ImportError("MemoryMonitor needs psutil unless given a probe: "
                          "pip install 'corecache[memory]'") from exc
    return psutil


def system_probe() -> Callable[[], float]:
    """Percent of system memory in use (psutil's ``virtual_memory().percent``)."""
    psutil = _psutil()
    return lambda: float(psutil.virtual_memory().percent)


def process_probe(limit_mb: float) -> Callable[[], float]:
    """This process's resident memory as a percent of `limit_mb` MiB."""
    limit = check_memory_limit_mb(limit_mb, "process_limit_mb")
    if limit is None:
        raise ValueError("process_limit_mb is required with basis='process', got None")
    proc = _psutil().Process()
    return lambda: proc.memory_info().rss * 100.0 / limit


def _check_percent(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a percentage, got {value!r}")
    p = float(value)
    if not 0 < p <= 100:
        raise ValueError(f"{name} must be a percentage above 0 and at most 100, got {value!r}")
    return p


# ---- what the responses do to each kind of registered object --------------

def _size(obj: Any, kind: str) -> int:
    if kind == FUNCTION:
        if callable(getattr(obj, "cache_stats", None)):
            return int(field(obj.cache_stats(), "size", 0) or 0)
        return int(obj.cache_info().currsize or 0)
    return int(field(obj.stats(), "size", 0) or 0)


def _shrink(obj: Any, kind: str, fraction: float) -> None:
    if kind == POOL:
        obj.clear()                       # drops idle objects only
        return
    evict = obj.evict if kind == CACHE else getattr(obj, "cache_evict", None)
    if evict is None:                     # a decorated function that cannot evict
        return
    n = math.ceil(_size(obj, kind) * fraction)
    if n:
        evict(n)


def _clear(obj: Any, kind: str) -> None:
    if kind == FUNCTION:
        obj.cache_clear()
    else:
        obj.clear()                       # a pool drops its idle objects


def _pause(obj: Any, kind: str) -> bool:
    """Pause `obj`'s writes; whether this call paused them (False when it
    cannot pause, or its owner had paused it already: then it is theirs to
    resume)."""
    name = {CACHE: "pause_writes", FUNCTION: "cache_pause_writes"}.get(kind)
    pause = getattr(obj, name, None) if name else None
    if pause is None:
        return False
    paused = {CACHE: "writes_paused", FUNCTION: "cache_writes_paused"}[kind]
    if getattr(obj, paused, False) is True:
        return False
    pause()
    return True


def _resume(obj: Any, kind: str) -> None:
    name = {CACHE: "resume_writes", FUNCTION: "cache_resume_writes"}.get(kind)
    resume = getattr(obj, name, None) if name else None
    if resume is not None:
        resume()


Action = Callable[[PressureEvent], Any]


class MemoryMonitor:
    """Watches memory and makes registered caches and pools shed load.

    :param interval: seconds between samples on the monitor's thread.
    :param moderate: percent at which MODERATE starts.
    :param high: percent at which HIGH starts.
    :param critical: percent at which CRITICAL starts.
    :param basis: ``"system"`` (percent of system memory in use) or
        ``"process"`` (this process's RSS as a percent of `process_limit_mb`).
    :param process_limit_mb: the process's memory budget, for ``"process"``.
    :param probe: a zero-argument callable returning the percentage, used
        instead of psutil (tests; other sources such as cgroup limits).
    :param shrink_fraction: the share of entries each cache evicts at HIGH.
    :param hysteresis: percentage points memory must fall below a level's
        threshold before that level is left.
    :param history_size: samples kept for :attr:`history` and the growth rate.
    :param growth_window: seconds of recent samples :meth:`growth_rate` fits.
    :param clock: monotonic seconds for the samples' times (for tests).
    """

    def __init__(self, *, interval: float = 1.0, moderate: float = 70.0, high: float = 85.0,
                 critical: float = 95.0, basis: str = "system",
                 process_limit_mb: Optional[float] = None,
                 probe: Optional[Callable[[], float]] = None, shrink_fraction: float = 0.25,
                 hysteresis: float = 5.0, history_size: int = 600,
                 growth_window: float = 60.0,
                 clock: Optional[Callable[[], float]] = None) -> None:
        self.interval = check_seconds(interval, "interval", allow_inf=False)
        if self.interval is None:
            raise TypeError("interval must be a positive number of seconds, got None")
        thresholds = (_check_percent(moderate, "moderate"), _check_percent(high, "high"),
                      _check_percent(critical, "critical"))
        if not thresholds[0] < thresholds[1] < thresholds[2]:
            raise ValueError(f"thresholds must rise: moderate < high < critical, got "
                             f"{moderate!r}, {high!r}, {critical!r}")
        self._thresholds = thresholds
        if basis not in ("system", "process"):
            raise ValueError(f"basis must be 'system' or 'process', got {basis!r}")
        if basis == "system" and process_limit_mb is not None:
            raise ValueError(f"process_limit_mb applies to basis='process' only, got "
                             f"{process_limit_mb!r} with basis='system'")
        if probe is not None and not callable(probe):
            raise TypeError(f"probe must be a zero-argument callable or None, got {probe!r}")
        if probe is None:
            probe = system_probe() if basis == "system" else process_probe(process_limit_mb)
        elif basis == "process" and process_limit_mb is not None:
            check_memory_limit_mb(process_limit_mb, "process_limit_mb")
        self.basis = basis
        self.process_limit_mb = process_limit_mb
        self._probe = probe
        if isinstance(shrink_fraction, bool) or not isinstance(shrink_fraction, numbers.Real) \
                or not 0 < shrink_fraction <= 1:
            raise ValueError(f"shrink_fraction must be above 0 and at most 1, "
                             f"got {shrink_fraction!r}")
        self.shrink_fraction = float(shrink_fraction)
        if isinstance(hysteresis, bool) or not isinstance(hysteresis, numbers.Real) \
                or not 0 <= hysteresis < thresholds[0]:
            raise ValueError(f"hysteresis must be from 0 to below moderate ({moderate!r}), "
                             f"got {hysteresis!r}")
        self.hysteresis = float(hysteresis)
        if isinstance(history_size, bool) or not isinstance(history_size, int) \
                or history_size < 2:
            raise ValueError(f"history_size must be an int >= 2, got {history_size!r}")
        self.growth_window = check_seconds(growth_window, "growth_window", allow_inf=True)
        self._clock = clock or time.monotonic

        self._level = Level.NORMAL
        self._percent: Optional[float] = None
        self._history: Deque[MemorySample] = deque(maxlen=history_size)
        # id -> (weak reference, kind); ids of dead objects are pruned
        self._objects: Dict[int, Tuple[Callable[[], Any], str]] = {}
        self._paused: Dict[int, Callable[[], Any]] = {}     # breaker: whom we paused
        self._breaker = False
        self._responses: Dict[Level, Optional[Action]] = {
            Level.MODERATE: self.respond_moderate,
            Level.HIGH: self.respond_high,
            Level.CRITICAL: self.respond_critical,
        }
        self._actions: Dict[Level, List[Action]] = {lv: [] for lv in Level}
        self._lock = threading.RLock()          # state, history, registrations
        self._check_lock = threading.RLock()    # one check at a time
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    # ---- state -------------------------------------------------------------

    @property
    def level(self) -> Level:
        """The current level (NORMAL before the first sample)."""
        return self._level

    @property
    def percent(self) -> Optional[float]:
        """The last reading, or None before the first."""
        return self._percent

    @property
    def thresholds(self) -> Tuple[float, float, float]:
        """(moderate, high, critical) percent."""
        return self._thresholds

    @property
    def breaker_open(self) -> bool:
        """Whether registered caches are refusing writes (CRITICAL)."""
        return self._breaker

    @property
    def history(self) -> List[MemorySample]:
        """The recent samples, oldest first (at most ``history_size``)."""
        with self._lock:
            return list(self._history)

    def classify(self, percent: float, current: Level = Level.NORMAL) -> Level:
        """The level for `percent` when the level is `current` now: up at
        once, down only `hysteresis` points below the threshold."""
        raw = Level(sum(percent >= t for t in self._thresholds))
        if raw >= current:
            return raw
        # falling: the level that percent + hysteresis reaches, never above current
        return min(current, Level(sum(percent + self.hysteresis >= t for t in self._thresholds)))

    # ---- registration --------------------------------------------------------

    def register(self, obj: Any) -> None:
        """Make `obj` (an LRUCache, a decorated function or an ObjectPool)
        respond to pressure.  Held weakly; registering again does nothing.
        Registered while the breaker is on, a cache stops accepting writes at
        once."""
        kind = _adapters.detect(obj).kind
        if kind not in (CACHE, FUNCTION, POOL):
            hint = "; register its local LRUCache instead" if kind == PATTERN else ""
            raise TypeError(f"MemoryMonitor.register takes caches, decorated functions and "
                            f"pools, not a {kind}: {obj!r}{hint}")
        ref = _adapters.weak(obj, "MemoryMonitor")
        with self._lock:
            self._prune()
            self._objects[id(obj)] = (ref, kind)
            breaker = self._breaker
        if breaker and _pause(obj, kind):
            with self._lock:
                self._paused[id(obj)] = ref

    def unregister(self, obj: Any) -> bool:
        """Stop managing `obj` (resuming its writes if the breaker paused
        them); returns whether it was registered."""
        with self._lock:
            entry = self._objects.get(id(obj))
            if entry is None or entry[0]() is not obj:
                return False
            del self._objects[id(obj)]
            paused = self._paused.pop(id(obj), None) is not None
        if paused:
            _resume(obj, entry[1])
        return True

    def registered(self) -> List[Any]:
        """The live registered objects."""
        with self._lock:
            self._prune()
            return [obj for obj in (ref() for ref, _ in self._objects.values())
                    if obj is not None]

    def _prune(self) -> None:
        for key in [k for k, (ref, _) in self._objects.items() if ref() is None]:
            del self._objects[key]
            self._paused.pop(key, None)

    def _live(self) -> List[Tuple[Any, str]]:
        with self._lock:
            self._prune()
            out = []
            for ref, kind in self._objects.values():
                obj = ref()
                if obj is not None:
                    out.append((obj, kind))
            return out

    # ---- responses and actions ---------------------------------------------------

    def set_response(self, level: Level, response: Optional[Action]) -> None:
        """Replace the default response to rising into `level` (MODERATE,
        HIGH or CRITICAL) with ``response(event)``, or None for nothing."""
        level = Level(level)
        if level is Level.NORMAL:
            raise ValueError("NORMAL has no response; use add_action(Level.NORMAL, ...)")
        if response is not None and not callable(response):
            raise TypeError(f"response must be callable or None, got {response!r}")
        with self._lock:
            self._responses[level] = response

    def add_action(self, level: Level, action: Action) -> None:
        """Call ``action(event)`` whenever `level` is entered (rising or
        falling), after any response.  Errors are logged, not raised."""
        level = Level(level)
        if not callable(action):
            raise TypeError(f"action must be callable, got {action!r}")
        with self._lock:
            self._actions[level].append(action)

    def remove_action(self, level: Level, action: Action) -> None:
        with self._lock:
            self._actions[Level(level)].remove(action)

    def respond_moderate(self, event: PressureEvent) -> None:
        """The default MODERATE response: collect the younger generations."""
        gc.collect(1)

    def respond_high(self, event: PressureEvent) -> None:
        """The default HIGH response: a full collection, every cache evicts
        ``shrink_fraction`` of its entries, pools drop idle objects."""
        gc.collect()
        self.shrink()

    def respond_critical(self, event: PressureEvent) -> None:
        """The default CRITICAL response: clear caches and pools' idle
        objects, open the breaker (caches refuse writes), collect."""
        self.open_breaker()
        for obj, kind in self._live():
            self._safely(_clear, obj, kind)
        gc.collect()

    def shrink(self, fraction: Optional[float] = None) -> None:
        """Evict `fraction` (default ``shrink_fraction``) of every registered
        cache's entries, least recently used first, and drop pools' idle
        objects."""
        fraction = self.shrink_fraction if fraction is None else fraction
        for obj, kind in self._live():
            self._safely(_shrink, obj, kind, fraction)

    def open_breaker(self) -> None:
        """Make every registered cache refuse writes until :meth:`close_breaker`
        (which the monitor calls when the level falls below CRITICAL)."""
        with self._lock:
            self._breaker = True
        for obj, kind in self._live():
            if self._safely(_pause, obj, kind):
                with self._lock:
                    self._paused[id(obj)] = _adapters.weak(obj, "MemoryMonitor")

    def close_breaker(self) -> None:
        """Let the caches paused by :meth:`open_breaker` accept writes again."""
        with self._lock:
            self._breaker = False
            paused = list(self._paused.values())
            self._paused.clear()
            kinds = {k: kind for k, (_, kind) in self._objects.items()}
        for ref in paused:
            obj = ref()
            if obj is not None:
                self._safely(_resume, obj, kinds.get(id(obj), CACHE))

    @staticmethod
    def _safely(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:
            log.exception("memory monitor: %s failed", getattr(fn, "__name__", fn))
            return None

    # ---- sampling ------------------------------------------------------------

    def check(self) -> Level:
        """Take one sample now, update the level and run what a change calls
        for; the monitor's thread calls this every ``interval`` seconds."""
        with self._check_lock:
            percent = self._probe()
            if isinstance(percent, bool) or not isinstance(percent, numbers.Real) \
                    or math.isnan(percent):
                raise TypeError(f"probe must return a percentage, got {percent!r}")
            percent = float(percent)
            now = self._clock()
            with self._lock:
                previous = self._level
                level = self.classify(percent, previous)
                self._level = level
                self._percent = percent
                self._history.append(MemorySample(now, percent, level))
                if level != previous:
                    response = self._responses.get(level) if level > previous else None
                    actions = list(self._actions[level])
            if level != previous:
                self._transition(previous, level, percent, response, actions)
            return level

    def _transition(self, previous: Level, level: Level, percent: float,
                    response: Optional[Action], actions: List[Action]) -> None:
        log.log(logging.WARNING if level > previous else logging.INFO,
                "memory pressure %s -> %s at %.1f%%", previous.name, level.name, percent)
        event = PressureEvent(self, level, previous, percent)
        if level < Level.CRITICAL and self._breaker:
            self.close_breaker()
        for fn in ([response] if response is not None else []) + actions:
            self._safely(fn, event)

    def start(self) -> "MemoryMonitor":
        """Start sampling on a daemon thread (the first sample at once)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="corecache-memory-monitor",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 5.0) -> None:
        """Stop sampling; caches the breaker paused accept writes again."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        if self._breaker:
            self.close_breaker()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:
                log.exception("memory monitor: sampling failed")
            self._stop.wait(self.interval)

    def __enter__(self) -> "MemoryMonitor":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- trends ----------------------------------------------------------------

    def growth_rate(self, window: Optional[float] = None) -> Optional[float]:
        """Percentage points per second over the last `window` seconds of
        samples (default ``growth_window``), by least squares; None when
        memory is not growing or there are fewer than two samples."""
        window = self.growth_window if window is None else window
        with self._lock:
            samples = list(self._history)
        if samples and window is not None and window != math.inf:
            newest = samples[-1].time
            samples = [s for s in samples if s.time >= newest - window]
        if len(samples) < 2:
            return None
        n = len(samples)
        mt = sum(s.time for s in samples) / n
        mp = sum(s.percent for s in samples) / n
        var = sum((s.time - mt) ** 2 for s in samples)
        if var == 0:
            return None
        slope = sum((s.time - mt) * (s.percent - mp) for s in samples) / var
        return slope if slope > 0 else None

    def predicted_exhaustion_seconds(self, window: Optional[float] = None) -> Optional[float]:
        """Seconds until 100 % at the current :meth:`growth_rate`, from the
        last sample; None when memory is not growing, 0.0 when already full."""
        rate = self.growth_rate(window)
        if rate is None or self._percent is None:
            return None
        return max(0.0, (100.0 - self._percent) / rate)

    def stats(self) -> MemoryStats:
        """A snapshot of the level, the last reading and the trend."""
        with self._lock:
            level, percent, breaker = self._level, self._percent, self._breaker
        return MemoryStats(level, percent, self.growth_rate(),
                           self.predicted_exhaustion_seconds(), breaker,
                           len(self.registered()))

    def __repr__(self) -> str:
        pct = "-" if self._percent is None else f"{self._percent:.1f}%"
        return (f"<MemoryMonitor {self._level.name} {pct} basis={self.basis} "
                f"thresholds={self._thresholds}>")

