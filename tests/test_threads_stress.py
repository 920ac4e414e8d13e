"""Thread stress tests: 8 threads, a thread switch as often as the
interpreter allows (``sys.setswitchinterval(1e-6)``), and final states and
counts compared with a model.  They prove on GIL builds the locking
discipline written down once in corecache/_locking.h; a free-threaded build
runs them on GitHub's runners only (.github/workflows/wheels.yml).

Each test is built so that its model is exact: threads work on disjoint
keys (the final state is then deterministic and every hit and miss is
known), or on unique keys whose fate is conserved (each one inserted ends
in the cache, popped by its writer or reported to the eviction callback,
exactly once), or on shared keys where only invariants hold (the value left
is one some thread wrote there last).  test_concurrency.py has the
single-flight builds-once tests and the reentrancy tests; they are not
repeated here.  No assertion is on time.
"""
from __future__ import annotations

import asyncio
import gc
import random
import sys
import threading
from collections import Counter

import pytest

from conftest import FakeClock, wait_for

N_THREADS = 8


@pytest.fixture(autouse=True)
def switch_often():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def run_threads(worker, n=N_THREADS):
    """worker(t) on n threads started together; re-raises the first error."""
    barrier = threading.Barrier(n)
    errors = []

    def run(t):
        barrier.wait()
        try:
            worker(t)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def size_of(key, value):
    return 100 + 10 * (value[1] % 5)


# ---- LRUCache -------------------------------------------------------------------


def test_lru_disjoint_keys_end_as_the_model_says_with_exact_counts(impl):
    """Every operation on a thread's own keys: the final contents, sizes,
    hits, misses and expirations are known exactly."""
    clock = FakeClock()
    c = impl.LRUCache(10**6, getsizeof=size_of, clock=clock)
    n_ops = 1500
    models = [dict() for _ in range(N_THREADS)]      # key -> (value, short ttl?)
    hits = [0] * N_THREADS
    misses = [0] * N_THREADS

    def worker(t):
        rnd = random.Random(t)
        model = models[t]
        for i in range(n_ops):
            k = (t, rnd.randrange(60))
            v = (t, i)
            op = rnd.randrange(9)
            if op == 0:
                c[k] = v
                model[k] = (v, False)
            elif op == 1:
                short = rnd.random() < 0.5
                c.set(k, v, ttl=1.0 if short else 1e6)
                model[k] = (v, short)
            elif op == 2:
                got = c.get(k, "absent")
                assert got == (model[k][0] if k in model else "absent")
                if k in model:
                    hits[t] += 1
                else:
                    misses[t] += 1
            elif op == 3:
                try:
                    got = c[k]
                except KeyError:
                    assert k not in model
                    misses[t] += 1
                else:
                    assert got == model[k][0]
                    hits[t] += 1
            elif op == 4:
                assert c.pop(k, "absent") == (model.pop(k)[0] if k in model else "absent")
            elif op == 5:
                if k in model:
                    del c[k]
                    del model[k]
                else:
                    with pytest.raises(KeyError):
                        del c[k]
            elif op == 6:
                got = c.get_or_set(k, lambda: v)
                if k in model:
                    assert got == model[k][0]
                    hits[t] += 1
                else:
                    assert got == v
                    model[k] = (v, False)
                    misses[t] += 1
            elif op == 7:
                got = c.setdefault(k, v)
                if k in model:
                    assert got == model[k][0]
                    hits[t] += 1
                else:
                    assert got == v
                    model[k] = (v, False)
                    misses[t] += 1
            else:
                assert c.peek(k, "absent") == (model[k][0] if k in model else "absent")
                assert (k in c) == (k in model)

    run_threads(worker)
    assert c._check()
    everything = {k: v for m in models for k, (v, _) in m.items()}
    assert dict(c.items()) == everything
    st = c.stats()
    assert (st.hits, st.misses) == (sum(hits), sum(misses))
    assert st.evictions == st.expirations == 0
    assert st.size == len(c) == len(everything)
    assert c.memory_bytes == st.memory_bytes == sum(size_of(k, v) for k, v in everything.items())
    # time moves: exactly the entries set with the short TTL go
    clock.tick(10.0)
    lasting = {k: v for m in models for k, (v, short) in m.items() if not short}
    assert c.expire() == len(everything) - len(lasting)
    assert dict(c.items()) == lasting
    assert c.stats().expirations == len(everything) - len(lasting)
    assert c.memory_bytes == sum(size_of(k, v) for k, v in lasting.items())


def test_lru_evictions_conserve_every_entry_and_shared_keys_hold_a_last_write(impl):
    """Limits, evictions and callbacks under contention.  Unique keys: each
    one inserted is, at the end, exactly one of in the cache, popped by its
    writer, or reported to the eviction callback.  Shared keys: the value
    left is the last one some thread wrote there."""
    reported = []
    c = impl.LRUCache(48, memory_limit_mb=4000 / 2**20, getsizeof=size_of,
                      eviction_callback=lambda k, v: reported.append((k, v)))
    n_ops = 1500
    popped = [[] for _ in range(N_THREADS)]
    inserted = [[] for _ in range(N_THREADS)]
    last_write = [dict() for _ in range(N_THREADS)]
    counted = [0] * N_THREADS

    def worker(t):
        rnd = random.Random(100 + t)
        mine = []
        for i in range(n_ops):
            op = rnd.randrange(6)
            if op <= 1:
                k = ("u", t, i)
                c[k] = (t, i)
                inserted[t].append(k)
                mine.append(k)
            elif op == 2 and mine:
                k = mine.pop(rnd.randrange(len(mine)))
                got = c.pop(k, None)
                if got is not None:
                    assert got == (k[1], k[2])
                    popped[t].append(k)
            elif op == 3:
                k = ("s", rnd.randrange(12))
                c[k] = (t, i)
                last_write[t][k] = (t, i)
            elif op == 4:
                c.get(("s", rnd.randrange(12)))
                counted[t] += 1
            else:
                k = ("s", rnd.randrange(12))
                c.get_or_set(k, lambda: (t, -1))
                counted[t] += 1

    run_threads(worker)
    assert c._check()
    final = dict(c.items())
    st = c.stats()
    assert st.size == len(final) <= 48
    assert st.memory_bytes == c.memory_bytes == sum(size_of(k, v) for k, v in final.items())
    assert st.memory_bytes <= 4000
    assert st.hits + st.misses == sum(counted)
    assert st.evictions == len(reported) and st.expirations == 0
    # unique keys: conserved, and each evicted at most once
    evicted_unique = Counter(k for k, _ in reported if k[0] == "u")
    assert max(evicted_unique.values(), default=1) == 1
    all_popped = Counter(k for p in popped for k in p)
    assert max(all_popped.values(), default=1) == 1
    in_cache = {k for k in final if k[0] == "u"}
    every = [k for ins in inserted for k in ins]
    for k in every:
        fates = (k in in_cache) + (k in evicted_unique) + (k in all_popped)
        assert fates == 1, (k, k in in_cache, k in evicted_unique, k in all_popped)
    # shared keys: the value is some thread's last write there (or a
    # get_or_set's, which writes only where the key was absent)
    for k, v in final.items():
        if k[0] == "s":
            t, i = v
            assert i == -1 or last_write[t].get(k) == v, (k, v)


def test_lru_hits_racing_writers_return_only_values_written_and_count_exactly(impl):
    """The plain cache (LRU, built-in clock: the twin's hits take no lock on
    a GIL build) read by every thread while they overwrite, evict, delete,
    pop, clear and set TTLs: a read returns a value written for that key
    (never a removed entry's cleared slot, never None), and every read is
    counted once."""
    reported = []
    c = impl.LRUCache(16, eviction_callback=lambda k, v: reported.append((k, v)))
    n_ops = 4000
    reads = [0] * N_THREADS

    def worker(t):
        rnd = random.Random(300 + t)
        for i in range(n_ops):
            k = rnd.randrange(40)
            op = rnd.randrange(12)
            if op <= 5:
                reads[t] += 1
                got = c.get(k, "absent")
                assert got == "absent" or got[0] == k, (k, got)
            elif op == 6:
                try:
                    got = c[k]
                except KeyError:
                    pass
                else:
                    assert got[0] == k, (k, got)
                reads[t] += 1
            elif op == 7:
                c[k] = (k, t, i)
            elif op == 8:
                c.set(k, (k, t, i), ttl=3600.0 if rnd.random() < 0.5 else None)
            elif op == 9:
                got = c.pop(k, None)
                assert got is None or got[0] == k
            elif op == 10:
                c.evict(1)
            elif rnd.random() < 0.05:
                c.clear()

    run_threads(worker)
    assert c._check()
    st = c.stats()
    assert st.hits + st.misses == sum(reads)
    assert st.evictions == len(reported)
    assert all(v[0] == k for k, v in reported)
    assert st.size == len(c) <= 16
    assert all(v[0] == k for k, v in c.items())


def test_lru_hits_racing_removals_of_their_own_key_never_see_a_cleared_entry(impl):
    """Half the threads read two keys that the other half pop, delete and
    set again without pause: a read returns a written value or the
    default, never the cleared slot of an entry removed under it."""
    c = impl.LRUCache(4)
    n_ops = 6000
    reads = [0] * N_THREADS

    def worker(t):
        rnd = random.Random(400 + t)
        for i in range(n_ops):
            k = rnd.randrange(2)
            if t % 2:
                got = c.get(k, "absent") if i % 2 else (c[k] if k in c else "absent")
                assert got == "absent" or got[0] == k, (k, got)
            elif i % 3 == 0:
                c.pop(k, None)
            elif i % 3 == 1:
                c[k] = (k, t, i)
            else:
                try:
                    del c[k]
                except KeyError:
                    pass
                c[k] = (k, t, i)

    try:
        run_threads(worker)
    except KeyError:
        pass             # c[k] after `k in c`: removed in between, allowed
    assert c._check()


def test_lru_refused_writes_are_each_counted(impl):
    c = impl.LRUCache(100)
    c.pause_writes()
    n_ops = 1000

    def worker(t):
        for i in range(n_ops):
            if i % 2:
                c[(t, i)] = i
            else:
                c.set((t, i), i, ttl=5)

    run_threads(worker)
    assert len(c) == 0
    assert c.stats().rejected == N_THREADS * n_ops


# ---- the lru_cache wrapper ----------------------------------------------------


@pytest.mark.parametrize("shape", ["one int", "typed", "keywords"])
def test_lru_cache_results_and_counts_add_up(impl, shape):
    calls = []
    maxsize = 32

    if shape == "typed":
        @impl.lru_cache(maxsize=maxsize, typed=True)
        def f(x, y=0):
            calls.append(x)
            return x * 2 + y
    else:
        @impl.lru_cache(maxsize=maxsize)
        def f(x, y=0):
            calls.append(x)
            return x * 2 + y
    n_calls = 2000

    def worker(t):
        rnd = random.Random(t)
        for _ in range(n_calls):
            x = rnd.randrange(48)
            if shape == "keywords":
                assert f(x, y=1) == x * 2 + 1
            else:
                assert f(x) == x * 2
            if rnd.random() < 0.002:
                assert f.cache_info().currsize <= maxsize

    run_threads(worker)
    info = f.cache_info()
    assert info.hits + info.misses == N_THREADS * n_calls
    assert info.misses == len(calls)            # a miss is one call, no more
    assert info.currsize <= maxsize
    st = f.cache_stats()
    assert st.evictions <= info.misses - info.currsize
    assert f._check()


def test_lru_cache_refused_results_are_each_counted(impl):
    @impl.lru_cache(maxsize=None)
    def f(x):
        return x

    f.cache_pause_writes()
    n_calls = 1000

    def worker(t):
        for i in range(n_calls):
            assert f((t, i)) == (t, i)

    run_threads(worker)
    assert f.cache_info().misses == f.cache_stats().rejected == N_THREADS * n_calls
    assert f.cache_info().currsize == 0


def test_cached_method_first_called_by_every_thread_at_once_has_one_cache(impl):
    class Thing:
        @impl.cached_method(maxsize=None)
        def double(self, x):
            return x * 2

    n_calls = 200
    for _ in range(20):
        thing = Thing()

        def worker(t):
            for i in range(n_calls):
                assert thing.double(i % 50) == (i % 50) * 2

        run_threads(worker)
        info = thing.double.cache_info()
        assert info.hits + info.misses == N_THREADS * n_calls
        assert info.currsize == 50


def test_async_single_flight_shared_by_threads_with_their_own_loops(impl):
    """One async lru_cache called from 8 threads, each running event loops
    one after another (asyncio.run): its registry is shared by the loops."""
    built = Counter()

    @impl.lru_cache(maxsize=None)
    async def f(x):
        built[x] += 1
        return x * 2

    n_runs = 150

    def worker(t):
        for i in range(n_runs):
            x = t * 1000 + i
            assert asyncio.run(f(x)) == x * 2

    run_threads(worker)
    assert set(built.values()) == {1} and len(built) == N_THREADS * n_runs
    assert f.cache_info().misses == N_THREADS * n_runs


# ---- ObjectPool -----------------------------------------------------------------


class Resource:
    alive = 0
    lock = threading.Lock()

    def __init__(self):
        with Resource.lock:
            Resource.alive += 1
        self.holder = None

    def __del__(self):
        with Resource.lock:
            Resource.alive -= 1


def test_pool_never_lends_one_object_twice_and_counts_add_up(impl):
    gc.collect()
    Resource.alive = 0
    made = []
    max_size = 4
    # (a broken pool could lose an object and leave threads waiting: the
    # timeout turns that into a failure, it measures nothing)
    pool = impl.ObjectPool(lambda: made.append(1) or Resource(), max_size=max_size,
                           validate=lambda obj: random.random() > 0.05, acquire_timeout=60)
    n_ops = 600
    lent = [0] * N_THREADS
    shared = []          # objects seen lent to two threads at once
    too_many = []        # pool stats over max_size

    def use(obj, t):
        if obj.holder is not None:
            shared.append(obj)
        obj.holder = t
        s = pool.stats()
        if s.idle + s.in_use > max_size:
            too_many.append(s)
        if obj.holder != t:
            shared.append(obj)
        obj.holder = None
        lent[t] += 1

    def worker(t):
        rnd = random.Random(t)
        for _ in range(n_ops):
            op = rnd.randrange(10)
            if op < 6:
                with pool.acquire() as obj:
                    use(obj, t)
            elif op < 9:
                obj = pool.get()
                use(obj, t)
                pool.put(obj)
            else:
                pool.shrink(1)

    run_threads(worker)
    assert shared == [] and too_many == []
    assert pool._check()
    s = pool.stats()
    assert s.in_use == 0 and s.idle <= max_size
    assert s.created == len(made)
    assert s.created + s.reused == sum(lent)
    assert s.created - s.discarded == s.idle
    gc.collect()
    assert Resource.alive == s.idle                 # made - destroyed == idle + lent
    pool.close()


# ---- the background cleaner ---------------------------------------------------


def test_cleaner_sweeping_while_threads_write(impl):
    from corecache._lru_cleaner import cleaner
    clock = FakeClock()
    reported = []
    c = impl.LRUCache(10**6, default_ttl=1.0, cleanup_interval=0.001, clock=clock,
                      eviction_callback=lambda k, v: reported.append(k))
    sweeps = cleaner.sweeps
    n_ops = 1000
    inserted = [[] for _ in range(N_THREADS)]
    popped = [[] for _ in range(N_THREADS)]

    def worker(t):
        rnd = random.Random(t)
        for i in range(n_ops):
            k = (t, i)
            c[k] = i
            inserted[t].append(k)
            if rnd.random() < 0.2:
                k = (t, rnd.randrange(i + 1))
                if c.pop(k, None) is not None:
                    popped[t].append(k)
            if rnd.random() < 0.05:
                clock.tick(0.5)             # entries expire while threads write

    run_threads(worker)
    # the cleaner, not a lookup, expires what is left
    clock.tick(10.0)
    assert wait_for(lambda: not c._raw() and cleaner.sweeps > sweeps)
    st = c.stats()
    assert st.size == 0 and st.expirations == len(reported)
    every = [k for ins in inserted for k in ins]
    fates = Counter(reported) + Counter(k for p in popped for k in p)
    assert fates == Counter(every)                  # each one expired or popped, once
    c.reconfigure(cleanup_interval=None)


def test_cleanup_interval_changed_from_many_threads_leaves_one_schedule(impl):
    from corecache._lru_cleaner import cleaner
    c = impl.LRUCache(10, cleanup_interval=60)
    before = cleaner.pending()

    def worker(t):
        for i in range(200):
            c.reconfigure(cleanup_interval=30 + (t * 200 + i) % 7)

    run_threads(worker)
    assert cleaner.pending() == before
    c.reconfigure(cleanup_interval=None)
    assert cleaner.pending() == before - 1


# ---- StreamChunker --------------------------------------------------------------


def test_chunker_hands_each_chunk_to_one_thread(impl):
    data = b"".join(b"%08d\n" % i for i in range(3000))
    chunker = impl.StreamChunker(data, 18, delimiter=b"\n")
    got = [[] for _ in range(N_THREADS)]

    def worker(t):
        while True:
            try:
                chunk = next(chunker)
            except StopIteration:
                return
            except ValueError as exc:           # another thread's next() is running
                assert "already producing" in str(exc)
                continue
            got[t].append(bytes(chunk))

    run_threads(worker)
    for mine in got:
        assert mine == sorted(mine)                 # each thread's chunks in order
    every = sorted(chunk for mine in got for chunk in mine)
    assert every == [data[i:i + 18] for i in range(0, len(data), 18)]


def test_pure_lock_free_hit_reads_the_value_before_a_removal_can_clear_it(monkeypatch):
    """The twin's lock-free hit (GIL builds) may be switched out at its
    clock read; a removal of its entry then clears the entry's value slot.
    Simulated deterministically: the clock itself pops the key.  The hit
    must return the value it found, never the cleared slot (None)."""
    from corecache._pure import lru as pure
    c = pure.LRUCache(10)
    if not c._free_hits:
        pytest.skip("a free-threaded build: the twin's hits take the lock")
    c.set("k", "v", ttl=3600.0)
    real = pure.monotonic
    popped = []
    switched = []

    def switching_clock():
        if not switched:
            switched.append(True)
            popped.append(c.pop("k"))          # "another thread" removes it
        return real()
    monkeypatch.setattr(pure, "monotonic", switching_clock)
    assert c.get("k", "absent") == "v" and popped == ["v"]
    assert c._check() and "k" not in c
    assert c.stats().hits == 1
