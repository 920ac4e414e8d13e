"""Python-level pieces shared by the compiled LRUCache and its pure twin:
repr, pickling and copying helpers.  None of this is on a hit path."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Tuple


def cache_repr(cache: Any) -> str:
    limit = cache.memory_limit_mb
    memory = "" if limit is None else f", memory={cache.memory_bytes}/{cache.memory_limit_bytes} bytes"
    return (f"{type(cache).__name__}(size={len(cache)}, max_size={cache.max_size}, "
            f"default_ttl={cache.default_ttl}{memory})")


def config_kwargs(cache: Any) -> Dict[str, Any]:
    """The constructor arguments that rebuild ``cache``'s configuration."""
    return {
        "max_size": cache.max_size,
        "default_ttl": cache.default_ttl,
        "memory_limit_mb": cache.memory_limit_mb,
        "getsizeof": cache.getsizeof,
        "cleanup_interval": cache.cleanup_interval,
        "eviction_callback": cache.eviction_callback,
        "clock": cache.clock,
        **({} if cache._POLICY_FIXED else {"policy": cache.policy}),
    }


def copy_cache(cache: Any) -> Any:
    new = type(cache)(**config_kwargs(cache))
    new._load(cache._dump(True), True)
    return new


def deepcopy_cache(cache: Any, memo: Dict[int, Any]) -> Any:
    import copy
    new = type(cache)(**config_kwargs(cache))
    memo[id(cache)] = new
    new._load([(copy.deepcopy(k, memo), copy.deepcopy(v, memo), e, t)
               for k, v, e, t in cache._dump(True)], True)
    return new


def reduce_cache(cache: Any, impl: str) -> Tuple[Any, ...]:
    import pickle
    kwargs = config_kwargs(cache)
    for name in ("eviction_callback", "getsizeof", "clock"):
        fn = kwargs[name]
        if fn is None:
            continue
        try:
            pickle.dumps(fn)
        except Exception as exc:
            raise TypeError(
                f"cannot pickle {type(cache).__name__}: its {name} {fn!r} "
                f"cannot be pickled ({exc})") from None
    return (restore_cache, (impl, kwargs, cache._dump(False)))


def restore_cache(impl: str, kwargs: Dict[str, Any],
                  items: Iterable[Tuple[Any, Any, float, float]]) -> Any:
    """Unpickle a cache, into the same implementation when it is available."""
    from . import _impl
    cls = _impl.lru_class(impl, "Cache" if "policy" in kwargs else "LRUCache")
    cache = cls(**kwargs)
    cache._load(list(items), False)
    return cache


def check_items(items: Any) -> List[Tuple[Any, Any]]:
    """dict.update's argument rules: a mapping (has keys()) or an iterable of pairs."""
    if hasattr(items, "keys"):
        return [(k, items[k]) for k in items.keys()]
    pairs = []
    for n, pair in enumerate(items):
        try:
            seq = tuple(pair)
        except TypeError:
            raise TypeError(
                f"update: element #{n} ({pair!r}) is not a (key, value) pair") from None
        if len(seq) != 2:
            raise ValueError(
                f"update: element #{n} ({pair!r}) has length {len(seq)}; 2 is required")
        pairs.append(seq)
    return pairs
