"""Key streams for the workload sections: who asks for which key, in which
order.  Every generator is deterministic for a given seed, returns a list of
int keys, and draws from ``keyspace`` distinct keys ranked by popularity
(rank 0 the most popular), mapped through a fixed random permutation onto
ints above the small-int cache, so that popular keys are not neighbours in
a hash table.

Patterns (``PATTERNS``):

* ``uniform``: every key equally likely.
* ``zipf``: rank r (1-based) with probability proportional to 1 / r**s;
  s = 0.99 by default (``--zipf``), web-cache-like.
* ``scan``: the keys in order, over and over: the access pattern that
  defeats LRU (every key is evicted just before it is asked for again
  whenever the cache is smaller than the key space).
* ``hotspot``: 90 % of accesses go to 10 % of the keys, uniform within each
  group.
* ``burst``: Zipfian traffic in which 1 % of accesses ask for a key never
  seen before, and then, for a tenth of the stream starting halfway, 50x as
  many (50 %): a flood of one-hit wonders that pushes the popular keys out
  of an LRU cache.

``ops()`` turns a key stream into an operation stream with a read/write mix.
"""
from __future__ import annotations

import bisect
import itertools
import random
from typing import Callable, Dict, List, Sequence, Tuple

BASE = 1 << 30           # keys are ints from here on: not small ints, not shared
FRESH = 1 << 40          # keys never seen before (burst) count up from here

PATTERNS = ("uniform", "zipf", "scan", "hotspot", "burst")

HOT_KEYS = 0.10          # hotspot: this share of the keys ...
HOT_ACCESSES = 0.90      # ... gets this share of the accesses
BURST_BASE_NEW = 0.01    # burst: share of never-seen keys outside the burst
BURST_FACTOR = 50        # ... multiplied by this during the burst
BURST_START = 0.5        # ... which starts at this fraction of the stream
BURST_LENGTH = 0.1       # ... and lasts this fraction of it


def _key_map(keyspace: int, seed: int) -> List[int]:
    """rank -> key: a fixed random permutation of BASE .. BASE + keyspace."""
    keys = list(range(BASE, BASE + keyspace))
    random.Random(seed ^ 0x5EED).shuffle(keys)
    return keys


def zipf_cum_weights(keyspace: int, s: float) -> List[float]:
    """Cumulative weights of ranks 1..keyspace under Zipf(s)."""
    return list(itertools.accumulate(1.0 / (r ** s) for r in range(1, keyspace + 1)))


def _zipf_ranks(n: int, keyspace: int, s: float, rng: random.Random) -> List[int]:
    cum = zipf_cum_weights(keyspace, s)
    total = cum[-1]
    rand = rng.random
    hi = keyspace - 1
    return [bisect.bisect(cum, rand() * total, 0, hi) for _ in range(n)]


def uniform(n: int, keyspace: int, rng: random.Random) -> List[int]:
    return [rng.randrange(keyspace) for _ in range(n)]


def zipf(n: int, keyspace: int, rng: random.Random, s: float = 0.99) -> List[int]:
    return _zipf_ranks(n, keyspace, s, rng)


def scan(n: int, keyspace: int, rng: random.Random) -> List[int]:
    return [i % keyspace for i in range(n)]


def hotspot(n: int, keyspace: int, rng: random.Random) -> List[int]:
    hot = max(1, int(keyspace * HOT_KEYS))
    cold = keyspace - hot
    rand, randrange = rng.random, rng.randrange
    if cold <= 0:
        return [randrange(hot) for _ in range(n)]
    return [randrange(hot) if rand() < HOT_ACCESSES else hot + randrange(cold)
            for _ in range(n)]


def burst_window(n: int) -> Tuple[int, int]:
    """[start, end) of the burst in a stream of n accesses."""
    start = int(n * BURST_START)
    return start, start + max(1, int(n * BURST_LENGTH))


def burst(n: int, keyspace: int, rng: random.Random, s: float = 0.99) -> List[int]:
    """Ranks as zipf(), except that never-seen keys are returned as negative
    numbers -1, -2, ... (mapped to fresh keys by stream())."""
    ranks = _zipf_ranks(n, keyspace, s, rng)
    start, end = burst_window(n)
    fresh = 0
    rand = rng.random
    for i in range(n):
        p = BURST_BASE_NEW * (BURST_FACTOR if start <= i < end else 1)
        if rand() < p:
            fresh += 1
            ranks[i] = -fresh
    return ranks


GENERATORS: Dict[str, Callable[..., List[int]]] = {
    "uniform": uniform, "zipf": zipf, "scan": scan, "hotspot": hotspot, "burst": burst,
}


def ranks(pattern: str, n: int, keyspace: int, seed: int = 0, zipf_s: float = 0.99) -> List[int]:
    """Popularity ranks (0 = most popular; negative = never seen before)."""
    if pattern not in GENERATORS:
        raise ValueError(f"unknown pattern {pattern!r}; choose from {', '.join(PATTERNS)}")
    if n < 0 or keyspace < 1:
        raise ValueError("n must be >= 0 and keyspace >= 1")
    rng = random.Random(seed)
    gen = GENERATORS[pattern]
    if pattern in ("zipf", "burst"):
        return gen(n, keyspace, rng, s=zipf_s)
    return gen(n, keyspace, rng)


def stream(pattern: str, n: int, keyspace: int, seed: int = 0, zipf_s: float = 0.99) -> List[int]:
    """n int keys of the pattern over `keyspace` keys."""
    keymap = _key_map(keyspace, seed)
    return [keymap[r] if r >= 0 else FRESH - r
            for r in ranks(pattern, n, keyspace, seed, zipf_s)]


def label(pattern: str, zipf_s: float) -> str:
    if pattern in ("zipf", "burst"):
        return f"{pattern}({zipf_s:g})"
    return pattern


def ops(keys: Sequence[int], read_percent: int, seed: int = 0) -> List[bool]:
    """Which operations are writes: a write with probability 1 - read_percent/100."""
    if not 0 <= read_percent <= 100:
        raise ValueError(f"read_percent must be within 0..100, got {read_percent}")
    if read_percent == 100:
        return [False] * len(keys)
    rng = random.Random(seed ^ 0xAB1E)
    w = 1.0 - read_percent / 100.0
    rand = rng.random
    return [rand() < w for _ in keys]


def belady_hits(keys: Sequence[int], capacity: int, measure_from: int = 0) -> int:
    """Hits of the optimal policy (Belady's MIN, with bypass: a key that is
    needed later than everything cached is not cached) on `keys`, counted
    from index `measure_from` on.  O(n log n)."""
    import heapq
    n = len(keys)
    if capacity <= 0:
        return 0
    never = n + 1
    nxt = [never] * n
    seen: Dict[int, int] = {}
    for i in range(n - 1, -1, -1):
        k = keys[i]
        nxt[i] = seen.get(k, never)
        seen[k] = i
    cached: Dict[int, int] = {}          # key -> its next use
    heap: List[Tuple[int, int]] = []     # (-next use, key), stale items skipped
    hits = 0
    push, pop = heapq.heappush, heapq.heappop
    for i in range(n):
        k = keys[i]
        nu = nxt[i]
        if k in cached:
            if i >= measure_from:
                hits += 1
            cached[k] = nu
            push(heap, (-nu, k))
            continue
        if nu == never:
            continue                     # never needed again: don't cache it
        if len(cached) >= capacity:
            while True:
                neg, victim = heap[0]
                if cached.get(victim) == -neg:
                    break
                pop(heap)                # stale
            if -neg <= nu:
                continue                 # everything cached is needed sooner
            pop(heap)
            del cached[victim]
        cached[k] = nu
        push(heap, (-nu, k))
    return hits
