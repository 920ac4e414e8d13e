"""Configuration: CacheConfig, its presets, and reading it from mappings and
the environment.  The argument checks it uses are corecache._checks.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ._checks import (MiB, check_callable, check_count, check_max_size,  # noqa: F401
                      check_memory_limit_mb, check_seconds, check_ttl)

@dataclass(frozen=True)
class CacheConfig:
    """The settings of an :class:`LRUCache`, validated when built.

    :param max_size: the most live entries the cache keeps (a positive int).
    :param default_ttl: seconds an entry lives when ``set`` gives no TTL;
        None or ``math.inf`` for no expiry.
    :param cleanup_interval: seconds between background sweeps of expired
        entries; None for lazy expiry only.
    :param memory_limit_mb: the most MiB the entries may take, as measured by
        ``getsizeof``; None for no memory limit.
    :param eviction_callback: ``callback(key, value)`` for every entry the
        cache removes on its own.
    :param getsizeof: ``getsizeof(key, value) -> int`` bytes; defaults to
        ``sys.getsizeof(key) + sys.getsizeof(value)`` when memory is limited.
    """

    max_size: int = 1000
    default_ttl: Optional[float] = None
    cleanup_interval: Optional[float] = None
    memory_limit_mb: Optional[float] = None
    eviction_callback: Optional[Callable[[Any, Any], Any]] = None
    getsizeof: Optional[Callable[[Any, Any], int]] = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "max_size", check_max_size(self.max_size))
        set_(self, "default_ttl", check_ttl(self.default_ttl, "default_ttl"))
        set_(self, "cleanup_interval",
             check_seconds(self.cleanup_interval, "cleanup_interval", allow_inf=False))
        check_memory_limit_mb(self.memory_limit_mb)
        check_callable(self.eviction_callback, "eviction_callback")
        check_callable(self.getsizeof, "getsizeof")

    @property
    def memory_limit_bytes(self) -> Optional[int]:
        return check_memory_limit_mb(self.memory_limit_mb)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "CacheConfig":
        """One of the named starting points, with `overrides` applied.

        ========  ========  ===========  ================  ===============
        preset    max_size  default_ttl  cleanup_interval  memory_limit_mb
        ========  ========  ===========  ================  ===============
        ``dev``   1,000     300 s        None (lazy)       None
        ``prod``  100,000   3,600 s      60 s              256
        ``test``  128       None         None (lazy)       None
        ========  ========  ===========  ================  ===============

        ``dev`` keeps little, briefly, so that changed data shows up soon;
        ``prod`` is bounded by count and memory, with expired entries swept
        every minute; ``test`` is small and deterministic: nothing expires
        unless a test says so, and no background thread runs.

        :param name: ``"dev"``, ``"prod"`` or ``"test"``.
        :param overrides: fields to change, validated like the constructor's.
        """
        try:
            values = PRESETS[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown preset {name!r}; choose one of "
                             f"{', '.join(map(repr, PRESETS))}") from None
        return cls.from_mapping({**values, **overrides})

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *,
                     base: Optional["CacheConfig"] = None) -> "CacheConfig":
        """A config from a mapping of field names to values (for example a
        section of a JSON, TOML or YAML file).  Numeric fields also accept
        strings as :meth:`from_env` reads them.

        :param mapping: field name -> value; an unknown key is a ValueError
            naming it.  A bad value is a TypeError or ValueError naming the
            key and the value.
        :param base: the config whose other fields are kept (default
            ``CacheConfig()``).
        """
        if not isinstance(mapping, Mapping):
            raise TypeError(f"mapping must be a mapping of field names to values, "
                            f"got {mapping!r}")
        names = _field_names()
        changes: Dict[str, Any] = {}
        for key, value in mapping.items():
            if key not in names:
                raise ValueError(f"unknown setting {key!r} (value {value!r}); the settings "
                                 f"are {', '.join(names)}")
            if isinstance(value, str) and key in _PARSERS:
                value = _parse(key, value, key)
            changes[key] = value
        return _replace(base or cls(), changes, {})

    @classmethod
    def from_env(cls, prefix: str = "CORECACHE_", *,
                 environ: Optional[Mapping[str, str]] = None,
                 base: Optional["CacheConfig"] = None) -> "CacheConfig":
        """A config from environment variables named ``prefix`` + an upper-case
        field name: ``CORECACHE_MAX_SIZE=5000``, ``CORECACHE_DEFAULT_TTL=30``,
        ``CORECACHE_CLEANUP_INTERVAL=60``, ``CORECACHE_MEMORY_LIMIT_MB=256``.
        ``none`` (any case) stands for None, ``inf`` for a TTL that never
        ends.  Only these variables are read, so ``CORECACHE_NO_EXTENSIONS``
        and any other variable are left alone; a field without a variable
        keeps its value from `base`.

        :param prefix: what the variable names start with.
        :param environ: the variables to read (default ``os.environ``).
        :param base: the config whose values are kept where no variable is
            set (default ``CacheConfig()``).
        :raises ValueError: for a bad value, naming the variable and the value.
        """
        env = os.environ if environ is None else environ
        changes: Dict[str, Any] = {}
        origins: Dict[str, str] = {}
        for field in _PARSERS:
            var = prefix + field.upper()
            if var in env:
                origins[field] = f"{var}={env[var]!r}"
                changes[field] = _parse(field, env[var], var)
        return _replace(base or cls(), changes, origins)


# name -> the settings that preset() starts from (documented in its docstring)
PRESETS: Dict[str, Dict[str, Any]] = {
    "dev": {"max_size": 1_000, "default_ttl": 300.0, "cleanup_interval": None,
            "memory_limit_mb": None},
    "prod": {"max_size": 100_000, "default_ttl": 3600.0, "cleanup_interval": 60.0,
             "memory_limit_mb": 256},
    "test": {"max_size": 128, "default_ttl": None, "cleanup_interval": None,
             "memory_limit_mb": None},
}


def _field_names() -> Tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(CacheConfig))


def _parse_int(text: str) -> int:
    return int(text.strip())


def _parse_number(text: str) -> Optional[float]:
    t = text.strip()
    if t.lower() == "none":
        return None
    return float(t)


# the fields that can be given as text, and how to read them
_PARSERS: Dict[str, Callable[[str], Any]] = {
    "max_size": _parse_int,
    "default_ttl": _parse_number,
    "cleanup_interval": _parse_number,
    "memory_limit_mb": _parse_number,
}


def _parse(field: str, text: str, where: str) -> Any:
    try:
        return _PARSERS[field](text)
    except ValueError:
        kind = "an int" if field == "max_size" else "a number or 'none'"
        raise ValueError(f"{where}={text!r}: {field} must be {kind}") from None


def _replace(base: CacheConfig, changes: Dict[str, Any], origins: Dict[str, str]) -> CacheConfig:
    """`base` with `changes`, each checked on its own first so that an error
    names the key and the value; `origins` maps a field to where its text
    came from (an environment variable), for the message."""
    if not isinstance(base, CacheConfig):
        raise TypeError(f"base must be a CacheConfig, got {base!r}")
    for field, value in changes.items():
        try:
            CacheConfig(**{field: value})
        except (TypeError, ValueError) as exc:
            if field not in origins:
                raise   # the validator's message names the field and the value
            raise type(exc)(f"{origins[field]}: {exc}") from None
    return dataclasses.replace(base, **changes)
