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
from typing import Any, List

import pytest

import corecache
from corecache import _impl

REQUIRE_EXTENSIONS = os.environ.get("CORECACHE_REQUIRE_EXTENSIONS", "") not in ("", "0")


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--no-c-extensions", action="store_true",
                     help="run only against the pure-Python implementation")


MARKERS = {
    "c_extension": "runs against the compiled implementation",
    "leaks": "reference and memory growth checks",
    "redis": "needs a real redis-server",
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


def _namespace(kind: str) -> types.SimpleNamespace:
    if kind == "c":
        mod = _impl.compiled_lru()
        if mod is None:
            if REQUIRE_EXTENSIONS:
                pytest.fail(f"the compiled module is required but failed to import: {_impl.IMPORT_ERROR}")
            pytest.skip(f"compiled module not available: {_impl.IMPORT_ERROR}")
    else:
        from corecache._pure import lru as mod
    return types.SimpleNamespace(name=kind, LRUCache=mod.LRUCache, module=mod)


@pytest.fixture(params=[pytest.param("c", marks=pytest.mark.c_extension), "py"])
def impl(request: Any) -> types.SimpleNamespace:
    return _namespace(request.param)


def all_impls() -> List[types.SimpleNamespace]:
    """Both implementations (for tests that drive them side by side)."""
    out = []
    mod = _impl.compiled_lru()
    if mod is not None:
        out.append(types.SimpleNamespace(name="c", LRUCache=mod.LRUCache, module=mod))
    elif REQUIRE_EXTENSIONS:
        raise RuntimeError(f"compiled module required: {_impl.IMPORT_ERROR}")
    from corecache._pure import lru as pure
    out.append(types.SimpleNamespace(name="py", LRUCache=pure.LRUCache, module=pure))
    return out


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
