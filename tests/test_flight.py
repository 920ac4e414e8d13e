"""Single flight's own contract (corecache/_flight.py), for threads and for
event loops: one computation per key for everyone asking meanwhile; who
shares it is told (``follower``); an awaiter that is cancelled never
cancels the computation the others wait for, and the last one leaving
does; no exception goes unretrieved."""
from __future__ import annotations

import asyncio
import gc
import threading

import pytest

from corecache._flight import AsyncSingleFlight, SingleFlight


def run_loop(coro_fn):
    """Run coro_fn() in a fresh loop; return (its result, what the loop's
    exception handler was given)."""
    reported = []
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, ctx: reported.append(ctx))
    try:
        result = loop.run_until_complete(coro_fn())
        gc.collect()           # an unretrieved exception is reported at collection
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    gc.collect()
    return result, reported


def test_async_awaiters_share_one_run_and_followers_are_told():
    flight = AsyncSingleFlight()
    runs, told = [], []

    async def compute(x):
        runs.append(x)
        await asyncio.sleep(0.01)
        return x * 2

    async def main():
        follower = lambda ok, r: told.append((ok, r))     # noqa: E731
        return await asyncio.gather(*[flight.run("k", compute, 21, follower=follower)
                                      for _ in range(100)])
    results, reported = run_loop(main)
    assert results == [42] * 100 and runs == [21]
    assert told == [(True, 42)] * 99          # every awaiter but the leader
    assert reported == []


def test_async_failure_reaches_every_awaiter_and_is_retrieved():
    flight = AsyncSingleFlight()
    told = []

    async def compute():
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    async def main():
        follower = lambda ok, r: told.append((ok, r))     # noqa: E731
        return await asyncio.gather(*[flight.run("k", compute, follower=follower)
                                      for _ in range(10)], return_exceptions=True)
    results, reported = run_loop(main)
    assert [type(r) for r in results] == [ValueError] * 10
    assert told == [(False, None)] * 9
    assert reported == []


def test_async_a_cancelled_awaiter_never_cancels_the_others_computation():
    flight = AsyncSingleFlight()
    state = []

    async def compute():
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            state.append("cancelled")
            raise
        state.append("done")
        return "v"

    async def main():
        leader = asyncio.ensure_future(flight.run("k", compute))
        other = asyncio.ensure_future(flight.run("k", compute))
        await asyncio.sleep(0.01)
        leader.cancel()                      # the one that started it leaves
        with pytest.raises(asyncio.CancelledError):
            await leader
        return await other
    result, reported = run_loop(main)
    assert result == "v" and state == ["done"] and reported == []


def test_async_the_last_awaiter_leaving_cancels_the_computation_and_frees_the_key():
    flight = AsyncSingleFlight()
    state = []

    async def compute(tag):
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            state.append(("cancelled", tag))
            raise
        return tag

    async def quick(tag):
        return tag

    async def main():
        waiters = [asyncio.ensure_future(flight.run("k", compute, i)) for i in range(3)]
        await asyncio.sleep(0.01)
        for w in waiters[:2]:
            w.cancel()
        await asyncio.sleep(0.01)
        assert state == []                   # one awaiter is left
        waiters[2].cancel()
        for w in waiters:
            with pytest.raises(asyncio.CancelledError):
                await w
        await asyncio.sleep(0)
        assert state == [("cancelled", 0)]
        return await flight.run("k", quick, "again")    # a new computation
    result, reported = run_loop(main)
    assert result == "again" and reported == []


def test_async_cancelled_awaiter_of_a_failing_computation_leaves_nothing_unretrieved():
    flight = AsyncSingleFlight()

    async def compute():
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def main():
        a = asyncio.ensure_future(flight.run("k", compute))
        b = asyncio.ensure_future(flight.run("k", compute))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        b.cancel()            # in the iteration the failure is settled
        out = await asyncio.gather(a, b, return_exceptions=True)
        return [type(x).__name__ for x in out]
    result, reported = run_loop(main)
    assert result[0] == "ValueError" and result[1] in ("ValueError", "CancelledError")
    assert reported == []


def test_async_a_computation_asking_for_its_own_key_raises():
    flight = AsyncSingleFlight("the test")
    told = []

    async def compute():
        return await flight.run("k", compute, follower=lambda ok, r: told.append(ok))

    async def main():
        with pytest.raises(RuntimeError, match="the test of key 'k' asked for the same key"):
            await flight.run("k", compute)
    run_loop(main)
    assert told == [False]


def test_async_run_many_leads_the_new_keys_and_follows_the_others():
    flight = AsyncSingleFlight()
    batches = []

    async def one():
        await asyncio.sleep(0.01)
        return "a1"

    async def many(keys):
        batches.append(sorted(keys))
        await asyncio.sleep(0.01)
        return {k: k + "!" for k in keys if k != "c"}

    async def main():
        single = asyncio.ensure_future(flight.run("a", one))
        await asyncio.sleep(0)
        results, followed = await flight.run_many(["a", "b", "c"], many)
        return results, followed, await single
    (results, followed, single), reported = run_loop(main)
    assert results == {"a": "a1", "b": "b!", "c": None} and followed == {"a"}
    assert batches == [["b", "c"]] and single == "a1" and reported == []


def test_async_run_many_cancelled_cancels_only_what_it_alone_waited_for():
    flight = AsyncSingleFlight()
    cancelled = []

    async def slow(tag):
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(tag)
            raise
        return tag

    async def many(keys):
        return await slow("batch")

    async def main():
        shared = asyncio.ensure_future(flight.run("a", slow, "a"))
        await asyncio.sleep(0)
        batch = asyncio.ensure_future(flight.run_many(["a", "b"], many))
        await asyncio.sleep(0.01)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        await asyncio.sleep(0.01)
        assert cancelled == ["batch"]        # "a" still has its first awaiter
        shared.cancel()
        with pytest.raises(asyncio.CancelledError):
            await shared
        await asyncio.sleep(0)
        return cancelled
    result, reported = run_loop(main)
    assert result == ["batch", "a"] and reported == []


def test_threads_share_one_run_and_followers_are_told():
    flight = SingleFlight()
    gate = threading.Event()
    runs, told, results = [], [], []

    def compute(x):
        runs.append(x)
        gate.wait(5)
        return x * 2

    def ask():
        results.append(flight.run("k", compute, 21, follower=lambda ok, r: told.append((ok, r))))
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    while len(flight) == 0 or len(flight._flights["k"]._event._cond._waiters) < 7:
        threading.Event().wait(0.001)      # until the 7 followers wait
    gate.set()
    for t in threads:
        t.join()
    assert results == [42] * 8 and runs == [21]
    assert told == [(True, 42)] * 7


def test_threads_follower_told_of_failure_and_of_asking_for_its_own_key():
    flight = SingleFlight("the test")
    told = []

    def compute():
        return flight.run("k", compute, follower=lambda ok, r: told.append((ok, r)))
    with pytest.raises(RuntimeError, match="the test of key 'k' asked for the same key"):
        flight.run("k", compute)
    assert told == [(False, None)]
