"""keys(), values() and items() views for both LRUCache implementations.

The abc views would read values through ``cache[key]``, which counts a hit
and moves the entry to the most recently used end; these read through
snapshots and ``peek`` instead, so looking at a cache never changes it.
Iteration works on a snapshot taken when it starts (least to most recently
used, live entries only), so it is safe while other threads or callbacks
change the cache.
"""
from __future__ import annotations

from collections.abc import ItemsView, KeysView, ValuesView
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator, Tuple

_MISSING = object()


class CacheKeysView(KeysView):
    __slots__ = ()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mapping._snapshot(0))


class CacheValuesView(ValuesView):
    __slots__ = ()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mapping._snapshot(1))

    def __contains__(self, value: object) -> bool:
        return any(v is value or v == value for v in self._mapping._snapshot(1))


class CacheItemsView(ItemsView):
    __slots__ = ()

    def __iter__(self) -> Iterator[Tuple[Any, Any]]:
        return iter(self._mapping._snapshot(2))

    def __contains__(self, item: object) -> bool:
        try:
            key, value = item  # type: ignore[misc]
        except (TypeError, ValueError):
            return False
        v = self._mapping.peek(key, _MISSING)
        return v is not _MISSING and (v is value or v == value)
