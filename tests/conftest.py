"""Shared fixtures: the `impl` fixture runs a test against the compiled core
("c", marked c_extension) and the pure-Python twin ("py"); FakeClock lets
tests move time without sleeping.

CORECACHE_REQUIRE_EXTENSIONS=1 (set by the test command) turns a missing
compiled module into a failure instead of a skip.
"""
from __future__ import annotations

import os
import sys
import types
from typing import Any, Dict, List

import pytest

import corecache
from corecache import _impl
from redis_fixtures import *  # noqa: F401,F403  (real Redis servers: redis_fixtures.py)
from dist_styles import aio_loop, dist  # noqa: F401  (both styles: dist_styles.py)

REQUIRE_EXTENSIONS = os.environ.get("CORECACHE_REQUIRE_EXTENSIONS", "") not in ("", "0")


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--no-c-extensions", action="store_true",
                     help="run only against the pure-Python implementation")


MARKERS = {
    "c_extension": "runs against the compiled implementation",
    "leaks": "reference and memory growth checks",
    "redis": "needs a real redis-server",
    "prometheus": "needs a real prometheus server",
    "slow": "takes more than a few seconds",
}


def pytest_configure(config: Any) -> None:
    # registered here, not in pyproject.toml, so that the suite also runs
    # from a copy outside the source tree (against an installed package)
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


def pytest_report_header(config: Any) -> List[str]:
    compiled = _impl.compiled_lru()
    return [f"corecache {corecache.__version__} from {os.path.dirname(corecache.__file__)}; "
            f"IMPLEMENTATION={corecache.IMPLEMENTATION}; compiled module: "
            f"{getattr(compiled, '__file__', None) or _impl.IMPORT_ERROR}"]


def pytest_collection_modifyitems(config: Any, items: List[Any]) -> None:
    if config.getoption("--no-c-extensions"):
        skip = pytest.mark.skip(reason="--no-c-extensions")
        for item in items:
            if "c_extension" in item.keywords:
                item.add_marker(skip)


def _namespace(kind: str, missing: Any) -> types.SimpleNamespace:
    """The public names of every hot-path module, of one implementation."""
    ns = types.SimpleNamespace(name=kind)
    for name in _impl.MODULES:
        mod = _impl.compiled_module(name) if kind == "c" else _impl.pure_module(name)
        if mod is None:
            return missing(f"compiled module not available: {_impl.IMPORT_ERROR}")
        for attr in mod.__all__:
            setattr(ns, attr, getattr(mod, attr))
    return ns


def _missing_in_test(why: str) -> Any:
    if REQUIRE_EXTENSIONS:
        pytest.fail(f"the compiled modules are required but failed to import: {why}")
    pytest.skip(why)


@pytest.fixture(params=[pytest.param("c", marks=pytest.mark.c_extension), "py"])
def impl(request: Any) -> types.SimpleNamespace:
    """Both implementations: impl.LRUCache etc., and impl.name ("c"/"py")."""
    return _namespace(request.param, _missing_in_test)


def all_impls() -> List[types.SimpleNamespace]:
    """Both implementations (for tests that drive them side by side)."""
    def missing(why: str) -> None:
        if REQUIRE_EXTENSIONS:
            raise RuntimeError(f"compiled modules required: {why}")
        return None
    return [ns for ns in (_namespace("c", missing), _namespace("py", missing)) if ns is not None]


def wait_for(cond: Any, timeout: float = 10.0) -> bool:
    """Whether ``cond()`` became true within `timeout` seconds (polled every
    millisecond or so): the one way tests wait, on a condition, never on a
    sleep of a guessed length.  Use as ``assert wait_for(...)``."""
    import time
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return bool(cond())
        time.sleep(0.001)
    return True


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Recorder:
    """An eviction callback that remembers what it was called with."""

    def __init__(self) -> None:
        self.calls: List[Any] = []

    def __call__(self, key: Any, value: Any) -> None:
        self.calls.append((key, value))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def unraisable(monkeypatch: Any) -> List[Any]:
    """Collects what reaches sys.unraisablehook during the test."""
    seen: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    return seen


def count_objects(*kinds: type) -> int:
    """Live GC-tracked objects of corecache's own types and of `kinds`: what
    a leak test watches.  Not every object in the process, which background
    threads of other libraries (a peer cache's maintenance loop, say) keep
    changing while a test runs."""
    import gc
    return sum(1 for o in gc.get_objects()
               if str(getattr(type(o), "__module__", "")).startswith("corecache")
               or isinstance(o, kinds))


def samples_from_stats(s: Any, paused: bool = False) -> Dict[str, float]:
    """The corecache_* samples a scrape of a cache with stats `s` must show."""
    want = {
        "corecache_hits_total": s.hits, "corecache_misses_total": s.misses,
        "corecache_evictions_total": s.evictions,
        "corecache_expirations_total": s.expirations,
        "corecache_rejected_writes_total": s.rejected, "corecache_size": s.size,
        "corecache_max_size": s.max_size, "corecache_memory_bytes": s.memory_bytes,
        "corecache_memory_limit_bytes": s.memory_limit_bytes,
        "corecache_hit_ratio": s.hit_rate, "corecache_writes_paused": int(paused),
    }
    return {k: float(v) for k, v in want.items() if v is not None}
