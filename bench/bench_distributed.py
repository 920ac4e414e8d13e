"""corecache.distributed hot paths (pytest-benchmark), with a MemoryStore so
that no server is needed: a hit served by the local tier (near cache,
read-through, the decorator) against LRUCache.get, both implementations.
The Redis figures are in ``python -m corecache.bench --only distributed``.
Each benchmarked call does 1,000 lookups."""
import pytest

from corecache.distributed import MemoryStore, NearCache, ReadThroughCache, cached

KEYS = [f"user:{i}" for i in range(100)] * 10


def lookups(get):
    for k in KEYS:
        get(k)


@pytest.fixture
def store():
    return MemoryStore()


def test_lru_get_hit(benchmark, impl):
    c = impl.LRUCache(1000)
    for k in KEYS:
        c[k] = 1
    benchmark(lookups, c.get)


def test_near_cache_local_hit(benchmark, impl, store):
    nc = NearCache(store, local=impl.LRUCache(1000))
    for k in KEYS:
        nc.set(k, 1)
    benchmark(lambda: lookups(nc.get))
    nc.close()


def test_read_through_local_hit(benchmark, impl, store):
    rt = ReadThroughCache(store, lambda k: 1, ttl=60, local=impl.LRUCache(1000))
    lookups(rt.get)
    benchmark(lambda: lookups(rt.get))


def test_decorator_local_hit(benchmark, impl, store):
    @cached(store, ttl=60, local=impl.LRUCache(1000))
    def f(k):
        return 1
    lookups(f)
    benchmark(lambda: lookups(f))


def test_memory_store_get(benchmark, store):
    store.set_many({k: {"v": 1} for k in KEYS})
    benchmark(lambda: lookups(store.get))
