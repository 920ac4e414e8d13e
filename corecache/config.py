"""Configuration and argument validation, shared by both implementations.

Every check here raises TypeError (wrong kind of value) or ValueError (right
kind, wrong value) with a message naming the parameter and the value, and
both implementations call these same functions, so they fail alike.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import operator
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

MiB = 1 << 20
# The largest memory limit, entry size and memory total (bytes), and count
# (evict(n), shrink(n)): what the compiled core's 64-bit counters hold.
MAX_BYTES = (1 << 63) - 1
MAX_COUNT = (1 << 63) - 1


def check_max_size(value: Any, name: str = "max_size") -> int:
    """A positive int (bool is not accepted)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    try:
        size = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a positive int, got {value!r}") from None
    if size < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return size


def check_seconds(value: Any, name: str, *, allow_inf: bool = True) -> Optional[float]:
    """None, or a positive number of seconds (``math.inf`` when allowed)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number of seconds or None, got {value!r}")
    seconds = float(value)
    if not seconds > 0 or (math.isinf(seconds) and not allow_inf):
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return seconds


def check_ttl(value: Any, name: str = "ttl") -> Optional[float]:
    """None (use the default), a positive number of seconds, or math.inf (never)."""
    return check_seconds(value, name)


def check_memory_limit_mb(value: Any, name: str = "memory_limit_mb") -> Optional[int]:
    """None, or a positive, finite number of MiB; returns the limit in bytes."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number of MiB or None, got {value!r}")
    mb = float(value)
    if not (mb > 0 and math.isfinite(mb)) or int(mb * MiB) < 1:
        raise ValueError(f"{name} must be a positive number of MiB or None, got {value!r}")
    if int(mb * MiB) > MAX_BYTES:
        raise ValueError(f"{name} must be at most {MAX_BYTES // MiB} MiB (2**63 bytes), "
                         f"got {value!r}")
    return int(mb * MiB)


def check_callable(value: Any, name: str) -> Any:
    """None or a callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r}")
    return value


def check_timeout(value: Any, name: str = "timeout") -> Optional[float]:
    """None, or a number of seconds >= 0 (0: do not wait; ``math.inf``: wait
    forever)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds >= 0 or None, got {value!r}")
    seconds = float(value)
    if not seconds >= 0:  # negative or NaN
        raise ValueError(f"{name} must be a number of seconds >= 0 or None, got {value!r}")
    return seconds


def check_count(value: Any, name: str) -> int:
    """An int >= 0 (bool is not accepted)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int >= 0, got {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int >= 0, got {value!r}") from None
    if n < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    # more than any count of things can be is as many as there are
    return n if n <= MAX_COUNT else MAX_COUNT


def validate_changes(max_size: Any, default_ttl: Any, memory_limit_mb: Any,
                     cleanup_interval: Any, missing: Any) -> Dict[str, Any]:
    """The live-changeable settings that were given, validated, all before any
    is applied (``missing`` marks one that was not given)."""
    changes: Dict[str, Any] = {}
    if max_size is not missing:
        changes["max_size"] = check_max_size(max_size)
    if default_ttl is not missing:
        changes["default_ttl"] = check_ttl(default_ttl, "default_ttl")
    if memory_limit_mb is not missing:
        check_memory_limit_mb(memory_limit_mb)
        changes["memory_limit_mb"] = memory_limit_mb
    if cleanup_interval is not missing:
        changes["cleanup_interval"] = check_seconds(cleanup_interval, "cleanup_interval",
                                                    allow_inf=False)
    return changes


def read_clock(clock: Callable[[], Any]) -> float:
    """The time of a user-supplied clock (``clock=``), which must be a
    number of seconds."""
    t = clock()
    if type(t) is float and t - t == 0.0:      # the common case: finite
        return t
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        try:
            seconds = float(t.__float__())
        except Exception:
            raise TypeError(f"clock must return a number of seconds, got {t!r}") from None
    else:
        try:
            seconds = float(t)
        except OverflowError:
            seconds = math.inf
    # a deadline computed from NaN or infinity would never (or always) pass:
    # refused before the reading is used, so nothing changes
    if not math.isfinite(seconds):
        raise ValueError(f"clock must return a finite number of seconds, got {t!r}")
    return seconds


def check_entry_size(size: Any, key: Any) -> int:
    """What ``getsizeof(key, value)`` returned must be an int >= 0."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"getsizeof must return an int, got {size!r} for key {key!r}")
    if size < 0:
        raise ValueError(f"getsizeof must return a size >= 0, got {size!r} for key {key!r}")
    if size > MAX_BYTES:
        raise ValueError(f"getsizeof must return a size below 2**63, got {size!r} "
                         f"for key {key!r}")
    return size


def memory_overflow(memory: int, size: int, key: Any) -> ValueError:
    """An entry whose size would take the cache's total past 64 bits."""
    return ValueError(
        f"entry for key {key!r} of {size} bytes would take the cache's memory "
        f"total ({memory} bytes) past 2**64 - 1")


def entry_too_large(size: int, limit: int, key: Any) -> ValueError:
    return ValueError(
        f"entry for key {key!r} needs {size} bytes, more than the whole "
        f"memory limit of {limit} bytes")


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
