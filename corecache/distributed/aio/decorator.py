# asyncio source of corecache/distributed/decorator.py (generated from it by _unasync.py)
"""``cached``: a read-through cache around a function (aio: a coroutine
function), with stampede protection."""
from __future__ import annotations

import functools
import hashlib
import math
from typing import Any, Callable, Dict, Optional, Tuple

from ...config import check_callable
from ._base import Cache
from .stores import Store

__all__ = ["cached", "make_key"]

_KWD_MARK = "|"
_MAX_KEY = 200


def _encode(arg: Any) -> str:
    """A deterministic text for an argument, the same in every process."""
    t = type(arg)
    if arg is None or t is bool or t is int or t is str or t is bytes:
        return repr(arg)
    if t is float:
        return repr(arg) if math.isfinite(arg) else f"float({arg!r})"
    if t is tuple:
        return "(" + ",".join(_encode(a) for a in arg) + ",)"
    if t is list:
        return "[" + ",".join(_encode(a) for a in arg) + "]"
    if t is dict:
        return "{" + ",".join(f"{_encode(k)}:{_encode(v)}" for k, v in arg.items()) + "}"
    if t is frozenset or t is set:
        return t.__name__ + "{" + ",".join(sorted(_encode(a) for a in arg)) + "}"
    if t.__repr__ is object.__repr__:
        raise TypeError(
            f"cannot build a cache key from a {t.__qualname__} argument: its repr() names "
            f"its address, which differs between processes; pass key= to cached()")
    return f"{t.__module__}.{t.__qualname__}:{arg!r}"


def make_key(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> str:
    """The key text of a call, built as functools builds its keys: the
    positional arguments, then the keyword arguments in call order (f(1) and
    f(x=1) are different keys).  Long keys are replaced by their SHA-256."""
    text = ",".join(_encode(a) for a in args)
    if kwargs:
        text += _KWD_MARK + ",".join(f"{k}={_encode(v)}" for k, v in kwargs.items())
    if len(text) > _MAX_KEY:
        text = "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


def cached(store: Store, *, ttl: Optional[float], key: Optional[Callable[..., Any]] = None,
           namespace: Optional[str] = None, local: Any = None,
           **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Cache a function's results in a store, read-through, with stampede
    protection (one process computes a missing result while the others
    wait for it).

    The key is ``<namespace>:<arguments>``, where namespace defaults to the
    function's ``module.qualname`` and the arguments are encoded as
    :func:`make_key` does; ``key=`` replaces the arguments' part with
    ``key(*args, **kwargs)``.  The wrapper has ``cache`` (the underlying
    cache), ``invalidate(*args, **kwargs)``, ``key_of(*args, **kwargs)``,
    ``stats()`` and ``aclose()``.

    :param store: a MemoryStore or RedisStore.
    :param ttl: seconds results live in the store.
    :param key: ``key(*args, **kwargs) -> str``, for arguments that have no
        stable repr.
    :param namespace: the key prefix (default: module.qualname); no ':',
        which ends it, so that two functions never share a key.
    :param local: an optional corecache.Cache (LRUCache or any policy) as the
        first tier.

    Other keywords: see Cache (stampede, lock_lease, lock_wait).
    """
    check_callable(key, "key")
    if namespace is not None and not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str or None, got {namespace!r}")
    if namespace is not None and (not namespace or ":" in namespace):
        raise ValueError(f"namespace must be a non-empty str without ':', got {namespace!r}")
    cache = Cache(store, ttl=ttl, local=local, **options)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(func):
            raise TypeError(f"cached() decorates a callable, got {func!r}")
        prefix = (namespace if namespace is not None
                  else f"{func.__module__}.{func.__qualname__}") + ":"

        def key_of(*args: Any, **kwargs: Any) -> str:
            if key is not None:
                k = key(*args, **kwargs)
                if not isinstance(k, str):
                    raise TypeError(f"key= must return a str, got {k!r}")
                return prefix + k
            return prefix + make_key(args, kwargs)

        get_or_load = cache.get_or_load

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await get_or_load(key_of(*args, **kwargs), func, *args, **kwargs)

        async def invalidate(*args: Any, **kwargs: Any) -> bool:
            return await cache.delete(key_of(*args, **kwargs))

        wrapper.cache = cache              # type: ignore[attr-defined]
        wrapper.key_of = key_of            # type: ignore[attr-defined]
        wrapper.invalidate = invalidate    # type: ignore[attr-defined]
        wrapper.stats = cache.stats        # type: ignore[attr-defined]
        wrapper.aclose = cache.aclose      # type: ignore[attr-defined]
        return wrapper

    return decorate
