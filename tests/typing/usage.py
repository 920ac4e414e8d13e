"""How corecache looks to a type checker: ``mypy --strict`` must pass on
this file (scripts/test runs it), and the ``assert_type`` lines fail it as
soon as a signature regresses (an Any where a type was, a lost parameter).
The ``type: ignore[...]`` lines, under ``if TYPE_CHECKING``, are calls
that must stay errors: mypy's ``warn_unused_ignores`` (part of --strict)
fails if one stops being an error.  The rest also runs, as a plain test
(tests/test_typing.py), against both implementations, so every line here
is real code."""
from __future__ import annotations

import asyncio
import io
from typing import (TYPE_CHECKING, Any, Callable, Coroutine, Dict, Iterator, List, Optional,
                    Tuple, Union)

from typing_extensions import assert_type

import corecache
from corecache import (CacheConfig, CacheStats, LRUCache, ObjectPool, PoolStats,
                       StreamChunker, cache, cached_method, lru_cache)


def mapping() -> None:
    c: LRUCache[str, int] = LRUCache(100, default_ttl=30.0)
    c["a"] = 1
    c.set("b", 2, ttl=5)
    assert_type(c["a"], int)
    assert_type(c.get("a"), Optional[int])
    assert_type(c.get("a", 0), int)
    assert_type(c.get("a", "none"), Union[int, str])
    assert_type(c.peek("b"), Optional[int])
    assert_type(c.pop("a"), int)
    assert_type(c.pop("zz", None), Optional[int])
    assert_type(c.setdefault("c", 3), int)
    assert_type(c.get_or_set("d", lambda: 4), int)
    assert_type(c.ttl("b"), Optional[float])
    assert_type(c.expire(), int)
    assert_type(len(c), int)
    assert_type("a" in c, bool)
    assert_type(list(c), List[str])
    assert_type(list(c.items()), List[Tuple[str, int]])
    assert_type(list(c.values()), List[int])
    assert_type(c.stats(), CacheStats)
    assert_type(c.stats().hit_rate, float)
    assert_type(c.max_size, int)
    assert_type(c.default_ttl, Optional[float])
    c.update({"e": 5})
    c.touch("b", ttl=10)
    c.resize(max_size=50)
    c.reconfigure(default_ttl=None)
    c.pause_writes()
    c.resume_writes()
    assert_type(c.writes_paused, bool)
    assert_type(c.popitem(), Tuple[str, int])
    assert_type(c.evict(1), int)

    # a MutableMapping wherever one is expected
    from collections.abc import MutableMapping
    m: MutableMapping[str, int] = c
    m["m"] = 6
    assert c["m"] == 6
    if TYPE_CHECKING:
        c["x"] = "not an int"  # type: ignore[assignment]
        c[1] = 1  # type: ignore[index]
        LRUCache(max_size="big")  # type: ignore[arg-type]
        d: Dict[str, int] = c  # type: ignore[assignment]

    inferred = LRUCache[int, bytes](10)
    assert_type(inferred, LRUCache[int, bytes])
    inferred[1] = b"x"
    evicted: List[Tuple[int, str]] = []
    typed_callbacks: LRUCache[int, str] = LRUCache(
        10, eviction_callback=lambda k, v: evicted.append((k, v)),
        getsizeof=lambda k, v: len(v))
    typed_callbacks[1] = "one"

    cfg = CacheConfig.preset("test")
    assert_type(LRUCache.from_config(cfg), LRUCache[Any, Any])


@lru_cache(maxsize=256)
def price(sku: str, *, currency: str = "EUR") -> float:
    return 1.0


@lru_cache
def square(x: int) -> int:
    return x * x


@cache
def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@lru_cache(maxsize=8, ttl=60, single_flight=True)
async def fetch(url: str) -> bytes:
    return url.encode()


class Model:
    @cached_method(maxsize=16)
    def predict(self, x: float, scale: int = 1) -> List[float]:
        return [x * scale]

    @cached_method
    def name(self) -> str:
        return "model"

    @lru_cache(maxsize=4)
    def shared(self, x: int) -> str:
        return str(x)


def decorators() -> None:
    assert_type(price("a"), float)
    assert_type(price("a", currency="USD"), float)
    assert_type(square(3), int)
    assert_type(fib(10), int)
    if TYPE_CHECKING:
        price(1)  # type: ignore[arg-type]
        price("a", "USD")  # type: ignore[call-arg]
        square()  # type: ignore[call-arg]
        price.cache_invalidate(1)  # type: ignore[arg-type]

    info = price.cache_info()
    assert_type(info.hits, int)
    assert_type(info.maxsize, Optional[int])
    assert_type(price.cache_stats(), CacheStats)
    assert_type(price.cache_invalidate("a", currency="EUR"), bool)
    assert_type(price.cache_evict(2), int)
    assert_type(price.cache_parameters(), Dict[str, Any])
    price.cache_clear()
    price.cache_pause_writes()
    price.cache_resume_writes()
    wrapped: Callable[..., float] = price.__wrapped__
    assert wrapped("a") == 1.0

    # async functions stay async
    result = asyncio.run(assert_type(fetch("u"), Coroutine[Any, Any, bytes]))
    assert_type(result, bytes)
    assert_type(fetch.cache_info().currsize, int)

    m = Model()
    assert_type(m.predict(2.0), List[float])
    assert_type(m.predict(2.0, scale=3), List[float])
    if TYPE_CHECKING:
        m.predict("x")  # type: ignore[arg-type]
        m.shared("1")  # type: ignore[arg-type]
    assert_type(m.predict.cache_info().misses, int)
    assert_type(m.predict.cache_invalidate(2.0), bool)
    assert_type(m.name(), str)
    assert_type(m.shared(1), str)
    assert_type(Model.shared.cache_info().hits, int)


class Parser:
    def reset(self) -> None: ...


def pools() -> None:
    pool = ObjectPool(Parser, max_size=4, reset=lambda p: p.reset(), idle_timeout=30)
    assert_type(pool, ObjectPool[Parser])
    with pool.acquire(timeout=1) as p:
        assert_type(p, Parser)
    q = pool.get(timeout=0)
    assert_type(q, Parser)
    pool.put(q)
    if TYPE_CHECKING:
        pool.put("not a parser")  # type: ignore[arg-type]
    assert_type(pool.stats(), PoolStats)
    assert_type(pool.stats().in_use, int)
    assert_type(pool.prefill(), int)
    with ObjectPool(bytearray, 2) as buffers:
        assert_type(buffers, ObjectPool[bytearray])
    typed: ObjectPool[List[int]] = ObjectPool(list)
    typed.close()


def chunks() -> None:
    total = 0
    for chunk in StreamChunker(b"a\nb\n" * 10, 8, delimiter=b"\n"):
        assert_type(chunk, memoryview)
        total += len(chunk)
    with StreamChunker(io.BytesIO(b"xyz"), 2) as ch:
        it: Iterator[memoryview] = ch
        assert_type(next(it), memoryview)
        assert_type(ch.offset, int)
    StreamChunker([b"ab", bytearray(b"cd"), memoryview(b"ef")], 4)
    if TYPE_CHECKING:
        StreamChunker("text", 4)  # type: ignore[arg-type]
    for rows in corecache.batched(range(10), 3):
        assert len(rows) <= 3


def main() -> None:
    mapping()
    decorators()
    pools()
    chunks()
    assert corecache.IMPLEMENTATION in ("c", "py")


if __name__ == "__main__":
    main()
