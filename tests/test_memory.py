"""corecache.memory.MemoryMonitor: every level transition and response is
driven through the injectable probe (no real memory pressure, no sleeps);
one test reads real memory through psutil."""
from __future__ import annotations

import functools
import gc
import logging
import threading
from typing import Any, List

import pytest

from corecache import CacheStats
from corecache.memory import Level, MemoryMonitor, MemoryStats, PressureEvent

NORMAL, MODERATE, HIGH, CRITICAL = Level.NORMAL, Level.MODERATE, Level.HIGH, Level.CRITICAL


class Probe:
    """A settable memory reading."""

    def __init__(self, value: float = 50.0) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.value


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def collections(monkeypatch) -> List[Any]:
    """Records gc.collect calls instead of collecting."""
    calls: List[Any] = []
    monkeypatch.setattr(gc, "collect", lambda *gen: calls.append(gen) or 0)
    return calls


def at(monitor: MemoryMonitor, probe: Probe, percent: float) -> Level:
    probe.value = percent
    return monitor.check()


def filled(impl: Any, n: int = 100) -> Any:
    c = impl.LRUCache(n)
    for i in range(n):
        c[i] = i
    return c


class PoolStandIn:
    """issue 4's ObjectPool shape: stats() with in_use/idle/created; clear()."""

    def __init__(self, idle: int = 3) -> None:
        self.idle = idle

    def stats(self) -> dict:
        return {"created": 5, "reused": 0, "in_use": 2, "idle": self.idle, "discarded": 0,
                "waits": 0, "timeouts": 0, "max_size": 8}

    def clear(self) -> None:
        self.idle = 0


# ---- levels ------------------------------------------------------------------------


def test_levels_rise_at_once_and_fall_with_hysteresis(probe, collections):
    m = MemoryMonitor(probe=probe)
    assert m.level is NORMAL and m.percent is None
    steps = [(50, NORMAL), (70, MODERATE), (68, MODERATE), (65.5, MODERATE), (64.9, NORMAL),
             (86, HIGH), (80.1, HIGH), (79.9, MODERATE), (95, CRITICAL), (90.5, CRITICAL),
             (89.9, HIGH), (30, NORMAL), (99, CRITICAL), (10, NORMAL)]
    for percent, level in steps:
        assert at(m, probe, percent) is level, percent
        assert m.level is level and m.percent == percent


def test_classify():
    m = MemoryMonitor(probe=lambda: 0.0, moderate=50, high=60, critical=80, hysteresis=2)
    assert m.thresholds == (50.0, 60.0, 80.0)
    assert [m.classify(p) for p in (49.9, 50, 59.9, 60, 79.9, 80, 100)] == \
        [NORMAL, MODERATE, MODERATE, HIGH, HIGH, CRITICAL, CRITICAL]
    assert m.classify(78.5, CRITICAL) is CRITICAL and m.classify(77.9, CRITICAL) is HIGH
    assert m.classify(10, CRITICAL) is NORMAL
    assert m.classify(59, MODERATE) is MODERATE


# ---- default responses ------------------------------------------------------------------


def test_moderate_collects_the_young_generations(probe, collections):
    m = MemoryMonitor(probe=probe)
    at(m, probe, 75)
    assert collections == [(1,)]
    at(m, probe, 74)              # staying: nothing more
    at(m, probe, 40)              # falling: nothing
    assert collections == [(1,)]


def test_high_shrinks_caches_lru_first_and_drops_idle_pool_objects(impl, probe, collections):
    m = MemoryMonitor(probe=probe, shrink_fraction=0.25)
    c = filled(impl)
    for k in range(10):           # recently used: survive
        c[k]
    small = filled(impl, 3)
    pool = PoolStandIn()
    for obj in (c, small, pool):
        m.register(obj)
    at(m, probe, 88)
    assert collections == [()]    # a full collection
    assert len(c) == 75 and c.stats().evictions == 25
    assert all(k in c for k in range(10)) and all(k not in c for k in range(10, 35))
    assert len(small) == 2        # a quarter of 3, rounded up
    assert pool.idle == 0
    assert not c.writes_paused


def test_critical_clears_and_opens_the_circuit_breaker(impl, probe, collections, recorder):
    m = MemoryMonitor(probe=probe)
    c = impl.LRUCache(10, eviction_callback=recorder)
    c.update({1: 1, 2: 2})
    pool = PoolStandIn()
    m.register(c)
    m.register(pool)
    at(m, probe, 97)
    assert len(c) == 0 and pool.idle == 0 and collections == [()]
    assert c.writes_paused and m.breaker_open
    c["x"] = 1                                # a counted no-op
    c.set("y", 2)
    assert "x" not in c and len(c) == 0 and c.stats().rejected == 2
    assert c.get("x", "default") == "default" # reads still work
    assert at(m, probe, 91) is CRITICAL       # within the hysteresis band: still closed
    c["x"] = 1
    assert len(c) == 0 and c.stats().rejected == 3
    assert at(m, probe, 89) is HIGH           # falls back to HIGH: writes again
    assert not c.writes_paused and not m.breaker_open
    c["x"] = 1
    assert c["x"] == 1
    assert collections == [()]                # falling runs no response


def test_critical_from_normal_and_back(impl, probe, collections):
    m = MemoryMonitor(probe=probe)
    c = filled(impl, 10)
    m.register(c)
    at(m, probe, 99)
    assert c.writes_paused and len(c) == 0
    at(m, probe, 20)
    assert not c.writes_paused and m.level is NORMAL


def test_registered_during_critical_is_paused_at_once(impl, probe, collections):
    m = MemoryMonitor(probe=probe)
    at(m, probe, 96)
    c = impl.LRUCache(5)
    m.register(c)
    assert c.writes_paused
    assert m.unregister(c) and not c.writes_paused     # unregistering releases it
    assert not m.unregister(c)
    m.register(c)
    assert c.writes_paused
    m.stop()                                           # stopping releases it too
    assert not c.writes_paused and not m.breaker_open


def test_breaker_leaves_caches_it_did_not_pause_alone(impl, probe, collections):
    m = MemoryMonitor(probe=probe)
    mine, other = impl.LRUCache(5), impl.LRUCache(5)
    mine.pause_writes()                   # paused by its owner, not by the monitor
    m.register(mine)
    m.register(other)
    at(m, probe, 96)
    assert mine.writes_paused and other.writes_paused
    at(m, probe, 10)
    assert mine.writes_paused and not other.writes_paused


def test_decorated_functions(impl, probe, collections):
    # the shape of issue 3's lru_cache (cache_stats, cache_clear), with and
    # without the optional cache_evict / cache_pause_writes / cache_resume_writes
    def make(full: bool) -> Any:
        backing = filled(impl, 8)

        def fn(x):
            return x

        fn.backing = backing
        fn.cache_stats = backing.stats
        fn.cache_clear = backing.clear
        if full:
            fn.cache_evict = backing.evict
            fn.cache_pause_writes = backing.pause_writes
            fn.cache_resume_writes = backing.resume_writes
        return fn

    full, bare = make(True), make(False)

    @functools.lru_cache(maxsize=8)
    def square(x):
        return x * x

    for x in range(5):
        square(x)
    m = MemoryMonitor(probe=probe, shrink_fraction=0.5)
    for fn in (full, bare, square):
        m.register(fn)
    at(m, probe, 90)
    assert len(full.backing) == 4             # evicted through cache_evict
    assert len(bare.backing) == 8             # cannot evict: left alone at HIGH
    assert square.cache_info().currsize == 5
    at(m, probe, 96)
    assert len(full.backing) == len(bare.backing) == square.cache_info().currsize == 0
    assert full.backing.writes_paused and not bare.backing.writes_paused
    at(m, probe, 50)
    assert not full.backing.writes_paused


def test_registration_rules(impl, probe):
    m = MemoryMonitor(probe=probe)
    c = impl.LRUCache(3)
    m.register(c)
    m.register(c)
    assert m.registered() == [c]
    del c
    gc.collect()
    assert m.registered() == []

    class Pattern:
        def stats(self):
            return {"loads": 1, "load_errors": 0}

    with pytest.raises(TypeError, match="not a pattern.*register its local LRUCache instead"):
        m.register(Pattern())
    with pytest.raises(TypeError, match="not a monitor"):
        m.register(MemoryMonitor(probe=probe))
    with pytest.raises(TypeError, match="has neither stats"):
        m.register(object())


# ---- custom actions and replaced responses -----------------------------------------------


def test_custom_actions_run_on_entering_their_level(probe, collections):
    m = MemoryMonitor(probe=probe)
    events: List[PressureEvent] = []
    m.add_action(HIGH, events.append)
    m.add_action(NORMAL, events.append)
    at(m, probe, 90)
    at(m, probe, 91)                      # staying: not again
    at(m, probe, 96)
    at(m, probe, 85)                      # falling into HIGH: again
    at(m, probe, 10)
    assert [(e.previous, e.level, e.percent) for e in events] == [
        (NORMAL, HIGH, 90.0), (CRITICAL, HIGH, 85.0), (HIGH, NORMAL, 10.0)]
    assert all(e.monitor is m for e in events)
    m.remove_action(HIGH, events.append)
    at(m, probe, 90)
    assert len(events) == 3


def test_responses_can_be_replaced_or_removed(impl, probe, collections):
    m = MemoryMonitor(probe=probe)
    c = filled(impl, 8)
    m.register(c)
    mine: List[Level] = []
    m.set_response(HIGH, None)
    m.set_response(MODERATE, lambda e: mine.append(e.level))
    at(m, probe, 75)
    at(m, probe, 90)
    assert mine == [MODERATE] and collections == [] and len(c) == 8
    m.set_response(CRITICAL, lambda e: e.monitor.shrink(0.5))   # shed, but no breaker
    at(m, probe, 99)
    assert len(c) == 4 and not c.writes_paused
    with pytest.raises(ValueError, match="NORMAL has no response"):
        m.set_response(NORMAL, print)
    with pytest.raises(TypeError, match="response must be callable"):
        m.set_response(HIGH, 3)
    with pytest.raises(TypeError, match="action must be callable"):
        m.add_action(HIGH, 3)


def test_failing_actions_are_logged_and_the_rest_run(probe, collections, caplog):
    m = MemoryMonitor(probe=probe)
    ran: List[str] = []

    def bad(event):
        raise RuntimeError("boom")

    m.set_response(HIGH, bad)
    m.add_action(HIGH, lambda e: ran.append("after"))
    with caplog.at_level(logging.ERROR, logger="corecache.memory"):
        assert at(m, probe, 90) is HIGH
    assert ran == ["after"] and "boom" in caplog.text


def test_probe_must_return_a_percentage():
    for bad in ("90", None, float("nan"), True):
        m = MemoryMonitor(probe=lambda bad=bad: bad)
        with pytest.raises(TypeError, match="probe must return a percentage"):
            m.check()


# ---- history and trends ----------------------------------------------------------------


def test_history_is_bounded_and_timed(probe, clock, collections):
    m = MemoryMonitor(probe=probe, history_size=3, clock=clock)
    for p in (10, 20, 30, 75):
        at(m, probe, p)
        clock.tick(2)
    h = m.history
    assert [(s.time, s.percent, s.level) for s in h] == [
        (1002.0, 20.0, NORMAL), (1004.0, 30.0, NORMAL), (1006.0, 75.0, MODERATE)]


def test_growth_rate_and_predicted_exhaustion(probe, clock, collections):
    m = MemoryMonitor(probe=probe, clock=clock, growth_window=10)
    assert m.growth_rate() is None and m.predicted_exhaustion_seconds() is None
    at(m, probe, 50)
    assert m.growth_rate() is None                      # one sample
    for p in (52, 54, 56):
        clock.tick(1)
        at(m, probe, p)
    assert m.growth_rate() == pytest.approx(2.0)
    assert m.predicted_exhaustion_seconds() == pytest.approx(22.0)
    for _ in range(3):                                  # flat
        clock.tick(1)
        at(m, probe, 56)
    assert m.growth_rate(window=2) is None
    assert m.growth_rate() == pytest.approx(1.0)          # least squares over the window
    clock.tick(30)                                      # old samples leave the window
    at(m, probe, 40)
    assert m.growth_rate() is None                      # one sample in the window
    clock.tick(1)
    at(m, probe, 30)
    assert m.growth_rate() is None and m.predicted_exhaustion_seconds() is None  # falling
    stats = m.stats()
    assert isinstance(stats, MemoryStats)
    assert (stats.level, stats.percent, stats.growth_rate, stats.breaker_open) == \
        (NORMAL, 30.0, None, False)


def test_exhaustion_when_already_over_the_limit(probe, clock):
    m = MemoryMonitor(probe=probe, clock=clock, basis="process", process_limit_mb=100)
    m.set_response(CRITICAL, None)
    at(m, probe, 99)
    clock.tick(1)
    at(m, probe, 104)
    assert m.predicted_exhaustion_seconds() == 0.0


# ---- the thread -------------------------------------------------------------------------


def test_thread_samples_until_stopped(probe):
    third = threading.Event()

    def sampling():
        probe.calls += 1
        if probe.calls >= 3:
            third.set()
        return 50.0

    m = MemoryMonitor(probe=sampling, interval=0.01)
    with m as started:
        assert started is m and m.running
        m.start()                                  # already running: no second thread
        assert third.wait(10)
    assert not m.running
    calls = probe.calls
    assert len(m.history) >= 3 and m.level is NORMAL
    assert probe.calls == calls                    # stopped: no more samples


def test_thread_survives_a_failing_probe(caplog):
    calls: List[int] = []
    done = threading.Event()

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no /proc today")
        done.set()
        return 10.0

    m = MemoryMonitor(probe=flaky, interval=0.01)
    with caplog.at_level(logging.ERROR, logger="corecache.memory"):
        with m:
            assert done.wait(10)
    assert "sampling failed" in caplog.text and m.percent == 10.0


# ---- real memory ----------------------------------------------------------------------------


def test_real_psutil_probe():
    psutil = pytest.importorskip("psutil")
    system = MemoryMonitor()
    level = system.check()
    assert 0 < system.percent <= 100
    assert abs(system.percent - psutil.virtual_memory().percent) < 10
    assert level is system.classify(system.percent)
    rss_mb = psutil.Process().memory_info().rss / (1 << 20)
    process = MemoryMonitor(basis="process", process_limit_mb=rss_mb * 4)
    process.check()
    assert 10 < process.percent < 50
    assert process.level is NORMAL


# ---- arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"interval": 0}, ValueError, "interval must be a positive number"),
    ({"interval": None}, TypeError, "interval must be a positive number"),
    ({"moderate": 90}, ValueError, "thresholds must rise"),
    ({"critical": 101}, ValueError, "critical must be a percentage above 0 and at most 100"),
    ({"high": "85"}, TypeError, "high must be a percentage"),
    ({"basis": "cgroup"}, ValueError, "basis must be 'system' or 'process', got 'cgroup'"),
    ({"process_limit_mb": 100}, ValueError, "process_limit_mb applies to basis='process'"),
    ({"basis": "process", "process_limit_mb": -1}, ValueError, "process_limit_mb"),
    ({"probe": 3}, TypeError, "probe must be a zero-argument callable"),
    ({"shrink_fraction": 0}, ValueError, "shrink_fraction must be above 0"),
    ({"shrink_fraction": 1.5}, ValueError, "shrink_fraction must be above 0"),
    ({"hysteresis": -1}, ValueError, "hysteresis must be from 0"),
    ({"history_size": 1}, ValueError, "history_size must be an int >= 2"),
])
def test_bad_arguments(kwargs, exc, message):
    kwargs.setdefault("probe", lambda: 1.0)
    with pytest.raises(exc, match=message):
        MemoryMonitor(**kwargs)


def test_process_basis_needs_a_limit():
    pytest.importorskip("psutil")
    with pytest.raises(ValueError, match="process_limit_mb is required with basis='process'"):
        MemoryMonitor(basis="process")


def test_cache_stats_shape_is_shared():
    # the monitor and metrics read the same CacheStats fields
    assert {"hits", "misses", "size"} <= set(CacheStats.__slots__)
