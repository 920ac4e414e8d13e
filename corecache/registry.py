"""Named caches: one cache per name for the whole process, created on first
use and reconfigured live.

``corecache.get_cache(name, config=None)`` and ``corecache.configure(name,
**changes)`` use the process-wide :class:`CacheRegistry`; build your own to
keep a separate set of names (tests do, to use either implementation).
"""
from __future__ import annotations

import dataclasses
import threading
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional

from .config import CacheConfig

# The settings LRUCache.reconfigure() can change on a live cache.
LIVE_SETTINGS = ("max_size", "default_ttl", "memory_limit_mb", "cleanup_interval")


class CacheRegistry:
    """Caches by name, each built from a :class:`CacheConfig`.

    :param cache_class: what to build caches with (``corecache.LRUCache`` by
        default): a class with ``from_config(config)`` and ``reconfigure``.
    """

    def __init__(self, cache_class: Optional[Callable[..., Any]] = None) -> None:
        if cache_class is None:
            from . import LRUCache
            cache_class = LRUCache
        self._cache_class: Any = cache_class
        self._caches: Dict[str, Any] = {}
        self._configs: Dict[str, CacheConfig] = {}
        # Held while building a cache so that two threads asking for a new
        # name get the same cache; LRUCache's constructor runs no user code.
        self._lock = threading.Lock()
        # Serializes configure() so that the stored config follows the order
        # in which changes reach the cache.  Not self._lock: reconfigure can
        # evict, and eviction callbacks (user code) may use the registry.
        self._configuring = threading.RLock()

    def get_cache(self, name: str, config: Optional[CacheConfig] = None) -> Any:
        """The cache called `name`, created from `config` (default
        ``CacheConfig()``) the first time it is asked for.

        :param name: a non-empty str.
        :param config: for an existing cache, None or a config equal to its
            current one; a different config is a ValueError (change a live
            cache with :meth:`configure`).
        """
        _check_name(name)
        if config is not None and not isinstance(config, CacheConfig):
            raise TypeError(f"config must be a CacheConfig or None, got {config!r}")
        with self._lock:
            cache = self._caches.get(name)
            if cache is None:
                config = config or CacheConfig()
                cache = self._cache_class.from_config(config)
                self._caches[name] = cache
                self._configs[name] = config
            elif config is not None and config != self._configs[name]:
                raise ValueError(
                    f"cache {name!r} already exists with {self._configs[name]!r}, not "
                    f"{config!r}; change it with configure({name!r}, ...)")
            return cache

    def configure(self, name: str, **changes: Any) -> CacheConfig:
        """Change the settings of the cache `name` live: ``max_size``,
        ``default_ttl``, ``memory_limit_mb``, ``cleanup_interval``.  A shrunk
        limit evicts least recently used entries at once; a bad change is
        rejected whole and leaves the cache as it was.  Returns the new config.

        :raises KeyError: no cache has that name.
        :raises TypeError: a setting that cannot change live, or a value of
            the wrong kind.
        :raises ValueError: a value out of range.
        """
        _check_name(name)
        for key, value in changes.items():
            if key not in LIVE_SETTINGS:
                raise TypeError(f"configure() cannot change {key!r} (value {value!r}); "
                                f"live settings are {', '.join(LIVE_SETTINGS)}")
        with self._configuring:
            with self._lock:
                try:
                    cache = self._caches[name]
                except KeyError:
                    raise KeyError(f"no cache named {name!r}; create it with "
                                   f"get_cache({name!r})") from None
            # validates every change before applying any
            cache.reconfigure(**changes)
            with self._lock:
                config = dataclasses.replace(self._configs.get(name, CacheConfig()), **changes)
                if self._caches.get(name) is cache:
                    self._configs[name] = config
            return config

    def config(self, name: str) -> CacheConfig:
        """The current config of the cache `name` (KeyError if none)."""
        with self._lock:
            return self._configs[name]

    def names(self) -> List[str]:
        """The names of the caches, in creation order."""
        with self._lock:
            return list(self._caches)

    def remove(self, name: str) -> bool:
        """Forget the cache `name` (it lives on while referenced elsewhere);
        returns whether there was one."""
        with self._lock:
            self._configs.pop(name, None)
            return self._caches.pop(name, None) is not None

    def __contains__(self, name: object) -> bool:
        return name in self._caches

    def __len__(self) -> int:
        return len(self._caches)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")


_default: Optional[CacheRegistry] = None
_default_lock = threading.Lock()


def default_registry() -> CacheRegistry:
    """The process-wide registry behind ``corecache.get_cache``."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = CacheRegistry()
    return _default


def get_cache(name: str, config: Optional[CacheConfig] = None) -> Any:
    """The process-wide cache called `name`, created from `config` (default
    ``CacheConfig()``) on first use; see :meth:`CacheRegistry.get_cache`."""
    return default_registry().get_cache(name, config)


def configure(name: str, **changes: Any) -> CacheConfig:
    """Change the process-wide cache `name` live; see
    :meth:`CacheRegistry.configure`."""
    return default_registry().configure(name, **changes)
