"""LRUCache hot paths: one benchmark per operation, both implementations.
Each benchmarked call runs the operation over 1,000 keys, so per-operation
cost is the reported time / 1000."""
import itertools

import pytest

CAPACITY = 1024
KEYS = list(range(1 << 20, (1 << 20) + CAPACITY))
HOT = KEYS[:100] * 10
ABSENT = list(range(1 << 22, (1 << 22) + 100)) * 10


def full(impl, ttl=None):
    c = impl.LRUCache(CAPACITY, ttl)
    for k in KEYS:
        c[k] = k
    return c


def hits(c):
    for k in HOT:
        c[k]


def gets(c, keys):
    get = c.get
    for k in keys:
        get(k)


@pytest.mark.parametrize("ttl", [None, 3600.0], ids=["no-ttl", "ttl"])
def test_getitem_hit(benchmark, impl, ttl):
    benchmark(hits, full(impl, ttl))


@pytest.mark.parametrize("ttl", [None, 3600.0], ids=["no-ttl", "ttl"])
def test_get_hit(benchmark, impl, ttl):
    benchmark(gets, full(impl, ttl), HOT)


def test_get_miss(benchmark, impl):
    benchmark(gets, full(impl), ABSENT)


@pytest.mark.parametrize("ttl", [None, 3600.0], ids=["no-ttl", "ttl"])
def test_set_new_key_evicting(benchmark, impl, ttl):
    c = full(impl, ttl)
    counter = itertools.count(1 << 24)

    def run():
        for k in itertools.islice(counter, 1000):
            c[k] = k
    benchmark(run)


def test_overwrite(benchmark, impl):
    c = full(impl)

    def run():
        for k in HOT:
            c[k] = 0
    benchmark(run)


class Clock:
    """A clock the benchmark moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_expire(benchmark, impl):
    clock = Clock()
    c = impl.LRUCache(CAPACITY, clock=clock)

    def setup():
        for k in KEYS:
            c.set(k, k, ttl=1)
        clock.now += 2
        return (), {}
    benchmark.pedantic(c.expire, setup=setup, rounds=50)
