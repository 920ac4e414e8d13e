"""ObjectPool hot paths: one benchmark per operation, both implementations.
Each benchmarked call runs the operation 1,000 times, so per-operation cost
is the reported time / 1000."""
import queue

import pytest

N = range(1000)


def test_with_acquire_idle(benchmark, impl):
    pool = impl.ObjectPool(object, 4, min_size=1)

    def run():
        for _ in N:
            with pool.acquire():
                pass
    benchmark(run)


def test_get_put_idle(benchmark, impl):
    pool = impl.ObjectPool(object, 4, min_size=1)
    get, put = pool.get, pool.put

    def run():
        for _ in N:
            put(get())
    benchmark(run)


def test_with_acquire_reset_validate(benchmark, impl):
    pool = impl.ObjectPool(list, 4, min_size=1, reset=list.clear,
                           validate=lambda o: True)

    def run():
        for _ in N:
            with pool.acquire():
                pass
    benchmark(run)


@pytest.mark.parametrize("kind", ["Queue", "SimpleQueue"])
def test_queue_get_put_reference(benchmark, kind):
    q = getattr(queue, kind)()
    q.put(object())
    get, put = q.get, q.put

    def run():
        for _ in N:
            put(get())
    benchmark(run)
