"""CacheConfig presets, from_env, from_mapping, and the named-cache registry."""
from __future__ import annotations

import dataclasses
import math
import threading

import pytest

import corecache
from corecache import CacheConfig
from corecache.config import PRESETS
from corecache.registry import CacheRegistry

# ---- presets -----------------------------------------------------------------


def test_presets_have_the_documented_values():
    assert CacheConfig.preset("dev") == CacheConfig(
        max_size=1000, default_ttl=300, cleanup_interval=None, memory_limit_mb=None)
    assert CacheConfig.preset("prod") == CacheConfig(
        max_size=100_000, default_ttl=3600, cleanup_interval=60, memory_limit_mb=256)
    assert CacheConfig.preset("test") == CacheConfig(
        max_size=128, default_ttl=None, cleanup_interval=None, memory_limit_mb=None)
    # the docstring's table shows every preset
    for name in PRESETS:
        assert f"``{name}``" in CacheConfig.preset.__doc__


def test_preset_overrides_and_errors():
    cfg = CacheConfig.preset("prod", max_size=10, default_ttl=None)
    assert (cfg.max_size, cfg.default_ttl, cfg.memory_limit_mb) == (10, None, 256)
    with pytest.raises(ValueError, match=r"unknown preset 'staging'.*'dev', 'prod', 'test'"):
        CacheConfig.preset("staging")
    with pytest.raises(ValueError, match=r"unknown setting 'maxsize' \(value 3\)"):
        CacheConfig.preset("dev", maxsize=3)
    with pytest.raises(ValueError, match=r"max_size must be a positive int, got 0"):
        CacheConfig.preset("dev", max_size=0)


def test_preset_builds_a_cache(impl):
    c = impl.LRUCache.from_config(CacheConfig.preset("test"))
    assert (c.max_size, c.default_ttl, c.cleanup_interval) == (128, None, None)
    c2 = impl.LRUCache.from_config(CacheConfig.preset("prod"))
    try:
        assert (c2.max_size, c2.default_ttl, c2.cleanup_interval, c2.memory_limit_mb) == \
            (100_000, 3600.0, 60.0, 256)
    finally:
        c2.reconfigure(cleanup_interval=None)


# ---- from_env ---------------------------------------------------------------------


def test_from_env_reads_only_its_own_fields():
    env = {"CORECACHE_MAX_SIZE": "5000", "CORECACHE_DEFAULT_TTL": "30",
           "CORECACHE_CLEANUP_INTERVAL": "2.5", "CORECACHE_MEMORY_LIMIT_MB": "64",
           "CORECACHE_NO_EXTENSIONS": "1", "CORECACHE_DEBUG_BUILD": "yes",
           "CORECACHE_EVICTION_CALLBACK": "print", "CORECACHE_GETSIZEOF": "len",
           "CORECACHE_WHATEVER": "x", "MAX_SIZE": "3"}
    cfg = CacheConfig.from_env(environ=env)
    assert cfg == CacheConfig(max_size=5000, default_ttl=30, cleanup_interval=2.5,
                              memory_limit_mb=64)
    assert cfg.eviction_callback is None and cfg.getsizeof is None


def test_from_env_defaults_prefix_base_and_none(monkeypatch):
    monkeypatch.setenv("CORECACHE_MAX_SIZE", " 7_000 ")
    monkeypatch.setenv("CORECACHE_NO_EXTENSIONS", "1")
    assert CacheConfig.from_env().max_size == 7000
    env = {"APP_DEFAULT_TTL": "inf", "APP_MEMORY_LIMIT_MB": "None"}
    cfg = CacheConfig.from_env("APP_", environ=env, base=CacheConfig.preset("prod"))
    assert cfg.default_ttl == math.inf
    assert cfg.memory_limit_mb is None
    assert cfg.max_size == 100_000 and cfg.cleanup_interval == 60
    assert CacheConfig.from_env(environ={}) == CacheConfig()


@pytest.mark.parametrize("var, text, message", [
    ("CORECACHE_MAX_SIZE", "abc", r"CORECACHE_MAX_SIZE='abc': max_size must be an int"),
    ("CORECACHE_MAX_SIZE", "5.5", r"CORECACHE_MAX_SIZE='5.5': max_size must be an int"),
    ("CORECACHE_MAX_SIZE", "", r"CORECACHE_MAX_SIZE='': max_size must be an int"),
    ("CORECACHE_MAX_SIZE", "-5", r"CORECACHE_MAX_SIZE='-5': max_size must be a positive int, "
                                 r"got -5"),
    ("CORECACHE_DEFAULT_TTL", "soon", r"CORECACHE_DEFAULT_TTL='soon': default_ttl must be a "
                                      r"number or 'none'"),
    ("CORECACHE_DEFAULT_TTL", "0", r"CORECACHE_DEFAULT_TTL='0': default_ttl must be a "
                                   r"positive number of seconds"),
    ("CORECACHE_CLEANUP_INTERVAL", "inf", r"CORECACHE_CLEANUP_INTERVAL='inf': cleanup_interval"),
    ("CORECACHE_MEMORY_LIMIT_MB", "-1", r"CORECACHE_MEMORY_LIMIT_MB='-1': memory_limit_mb"),
])
def test_from_env_errors_name_the_variable_and_value(var, text, message):
    with pytest.raises(ValueError, match=message):
        CacheConfig.from_env(environ={var: text})


# ---- from_mapping -------------------------------------------------------------------


def test_from_mapping():
    cb = print
    cfg = CacheConfig.from_mapping({"max_size": 10, "default_ttl": 5,
                                    "eviction_callback": cb, "memory_limit_mb": "2"})
    assert cfg == CacheConfig(max_size=10, default_ttl=5, eviction_callback=cb,
                              memory_limit_mb=2.0)
    assert CacheConfig.from_mapping({}) == CacheConfig()
    base = CacheConfig.preset("dev")
    assert CacheConfig.from_mapping({"max_size": 3}, base=base) == \
        dataclasses.replace(base, max_size=3)


@pytest.mark.parametrize("mapping, exc, message", [
    ({"max_size": 10, "ttl": 5}, ValueError,
     r"unknown setting 'ttl' \(value 5\); the settings are max_size, default_ttl"),
    ({"max_size": 0}, ValueError, r"max_size must be a positive int, got 0"),
    ({"max_size": "ten"}, ValueError, r"max_size='ten': max_size must be an int"),
    ({"max_size": 2.5}, TypeError, r"max_size must be a positive int, got 2.5"),
    ({"default_ttl": -1}, ValueError, r"default_ttl must be a positive number of seconds or "
                                      r"None, got -1"),
    ({"default_ttl": [1]}, TypeError, r"default_ttl must be .* got \[1\]"),
    ({"eviction_callback": 3}, TypeError, r"eviction_callback must be callable or None, got 3"),
    ({"memory_limit_mb": True}, TypeError, r"memory_limit_mb .* got True"),
])
def test_from_mapping_errors_name_the_key_and_value(mapping, exc, message):
    with pytest.raises(exc, match=message):
        CacheConfig.from_mapping(mapping)


def test_from_mapping_rejects_non_mappings():
    with pytest.raises(TypeError, match="mapping must be a mapping"):
        CacheConfig.from_mapping([("max_size", 3)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="base must be a CacheConfig"):
        CacheConfig.from_mapping({}, base={"max_size": 3})  # type: ignore[arg-type]


# ---- the named-cache registry -------------------------------------------------------


@pytest.fixture
def registry(impl):
    return CacheRegistry(impl.LRUCache)


def test_get_cache_creates_once_and_returns_the_same(registry, impl):
    a = registry.get_cache("users")
    assert isinstance(a, impl.LRUCache)
    assert a.max_size == CacheConfig().max_size
    assert registry.get_cache("users") is a
    assert registry.get_cache("users", CacheConfig()) is a      # equal config: fine
    b = registry.get_cache("sessions", CacheConfig.preset("test"))
    assert b is not a and b.max_size == 128
    assert registry.names() == ["users", "sessions"]
    assert "users" in registry and len(registry) == 2
    with pytest.raises(ValueError, match=r"cache 'users' already exists with .* configure"):
        registry.get_cache("users", CacheConfig(max_size=5))
    assert registry.remove("users") and not registry.remove("users")
    assert registry.get_cache("users") is not a


@pytest.mark.parametrize("name", ["", None, 3])
def test_get_cache_checks_its_arguments(registry, name):
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        registry.get_cache(name)
    with pytest.raises(TypeError, match="config must be a CacheConfig or None"):
        registry.get_cache("x", {"max_size": 3})


def test_configure_applies_live_and_evicts_at_once(registry, recorder):
    c = registry.get_cache("c", CacheConfig(max_size=10, eviction_callback=recorder))
    for i in range(10):
        c[i] = i
    cfg = registry.configure("c", max_size=4, default_ttl=60)
    assert len(c) == 4 and list(c) == [6, 7, 8, 9]
    assert c.stats().evictions == 6
    assert recorder.calls == [(i, i) for i in range(6)]
    assert (c.max_size, c.default_ttl) == (4, 60.0)
    assert cfg == registry.config("c")
    assert (cfg.max_size, cfg.default_ttl, cfg.eviction_callback) == (4, 60.0, recorder)
    registry.configure("c", memory_limit_mb=1, cleanup_interval=30)
    assert c.memory_limit_mb == 1 and c.cleanup_interval == 30
    registry.configure("c", cleanup_interval=None, memory_limit_mb=None)
    assert c.cleanup_interval is None and c.memory_limit_bytes is None
    # an existing cache can be asked for with its current config
    assert registry.get_cache("c", registry.config("c")) is c


@pytest.mark.parametrize("changes, exc", [
    ({"max_size": 2, "default_ttl": -1}, ValueError),
    ({"max_size": 0, "default_ttl": 5}, ValueError),
    ({"default_ttl": 5, "memory_limit_mb": "lots"}, TypeError),
    ({"max_size": 2, "cleanup_interval": math.inf}, ValueError),
])
def test_a_bad_change_is_rejected_whole(registry, changes, exc):
    c = registry.get_cache("c", CacheConfig(max_size=10))
    for i in range(10):
        c[i] = i
    before = registry.config("c")
    with pytest.raises(exc):
        registry.configure("c", **changes)
    assert len(c) == 10 and c.max_size == 10 and c.default_ttl is None
    assert c.memory_limit_bytes is None and c.cleanup_interval is None
    assert registry.config("c") == before


def test_configure_errors(registry):
    registry.get_cache("c")
    with pytest.raises(KeyError, match="no cache named 'nope'"):
        registry.configure("nope", max_size=3)
    with pytest.raises(TypeError, match=r"cannot change 'eviction_callback' \(value <built-in "
                                        r"function print>\); live settings are max_size"):
        registry.configure("c", eviction_callback=print)
    with pytest.raises(TypeError, match=r"cannot change 'maxsize' \(value 3\)"):
        registry.configure("c", max_size=5, maxsize=3)
    assert registry.get_cache("c").max_size == 1000


def test_eviction_callback_may_use_the_registry(registry):
    seen = []

    def cb(key, value):
        seen.append(registry.get_cache("c").max_size)

    c = registry.get_cache("c", CacheConfig(max_size=3, eviction_callback=cb))
    c.update({1: 1, 2: 2, 3: 3})
    registry.configure("c", max_size=1)
    assert seen == [1, 1]


def test_concurrent_get_cache_builds_one(registry):
    got = []
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        got.append(registry.get_cache("shared"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in got}) == 1


def test_module_level_get_cache_and_configure():
    name = "test_config.module_level"
    try:
        c = corecache.get_cache(name, CacheConfig(max_size=3))
        assert isinstance(c, corecache.LRUCache)
        assert corecache.get_cache(name) is c
        c.update({1: 1, 2: 2, 3: 3})
        corecache.configure(name, max_size=2)
        assert len(c) == 2
        assert corecache.registry.default_registry().config(name).max_size == 2
    finally:
        corecache.registry.default_registry().remove(name)
