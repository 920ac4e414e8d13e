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

Traces of the hit-rate grid only (``TRACES``: the section "hitrate" runs
each at 1 %, 5 % and 10 % of the key space):

* ``loop``: the first 12 % of the keys in order, over and over: a loop
  larger than every cache of the grid (LRU, SIEVE and ARC get nothing).
* ``scans``: Zipfian traffic, and every tenth of the stream starts with a
  scan over the same range of cold keys (a fifth of the key space, outside
  the Zipfian keys): a batch job that must not flush the popular keys.
* ``recency``: each request asks, with probability 0.2, for a key never
  seen before, else for the key at stack distance d of the LRU stack of
  every key asked so far, d log-uniform over 1 .. a quarter of the key
  space: recency is all there is to know (frequency-only admission
  collapses).
* ``shifting``: Zipfian traffic whose popular keys change completely eight
  times: each eighth of the stream draws the ranks through a new random
  permutation of the keys.

``ops()`` turns a key stream into an operation stream with a read/write mix.
"""
from __future__ import annotations

import bisect
import itertools
import math
import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple

BASE = 1 << 30           # keys are ints from here on: not small ints, not shared
FRESH = 1 << 40          # keys never seen before (burst) count up from here

PATTERNS = ("uniform", "zipf", "scan", "hotspot", "burst")
# patterns that only the hit-rate grid uses (see TRACES)
GRID_PATTERNS = ("loop", "scans", "recency", "shifting")

HOT_KEYS = 0.10          # hotspot: this share of the keys ...
HOT_ACCESSES = 0.90      # ... gets this share of the accesses
BURST_BASE_NEW = 0.01    # burst: share of never-seen keys outside the burst
BURST_FACTOR = 50        # ... multiplied by this during the burst
BURST_START = 0.5        # ... which starts at this fraction of the stream
BURST_LENGTH = 0.1       # ... and lasts this fraction of it
LOOP_KEYS = 0.12         # loop: this share of the keys, in order, over and over
SCAN_EVERY = 0.1         # scans: a scan starts every this fraction of the stream ...
SCAN_KEYS = 0.2          # ... over this share of the key space (cold keys of its own)
RECENCY_NEW = 0.2        # recency: share of requests for a key never seen before
RECENCY_DEPTH = 0.25     # ... the others re-ask at a stack distance up to this share of keys
SHIFT_PHASES = 8         # shifting: the popular keys change this many times

# The hit-rate grid: (label, pattern, Zipf exponent or None).
TRACES: Tuple[Tuple[str, str, Optional[float]], ...] = (
    ("zipf(0.8)", "zipf", 0.8),
    ("zipf(0.99)", "zipf", 0.99),
    ("zipf(1.2)", "zipf", 1.2),
    ("hotspot", "hotspot", None),
    ("scans", "scans", 0.99),
    ("loop", "loop", None),
    ("recency", "recency", None),
    ("shifting", "shifting", 0.99),
)


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


def loop(n: int, keyspace: int, rng: random.Random) -> List[int]:
    width = max(1, int(keyspace * LOOP_KEYS))
    return [i % width for i in range(n)]


def scans(n: int, keyspace: int, rng: random.Random, s: float = 0.99) -> List[int]:
    """Ranks as zipf(), except that each period opens with a scan over the
    same cold keys, returned as negative numbers -1 .. -width (mapped to
    keys outside the key space by stream())."""
    ranks = _zipf_ranks(n, keyspace, s, rng)
    period = max(1, int(n * SCAN_EVERY))
    width = max(1, int(keyspace * SCAN_KEYS))
    for start in range(0, n, period):
        for j in range(min(width, period, n - start)):
            ranks[start + j] = -1 - j
    return ranks


def recency(n: int, keyspace: int, rng: random.Random) -> List[int]:
    """Keys never seen before are -1, -2, ... (as in burst()); the others
    are re-asked from the LRU stack of every key so far."""
    depth = max(2, int(keyspace * RECENCY_DEPTH))
    log_depth = math.log(depth)
    stack: List[int] = []          # most recent last
    out: List[int] = []
    fresh = 0
    rand = rng.random
    for _ in range(n):
        if not stack or rand() < RECENCY_NEW:
            fresh += 1
            k = -fresh
        else:
            d = int(math.exp(rand() * log_depth))      # 1 .. depth, log-uniform
            if d > len(stack):
                d = len(stack)
            k = stack.pop(len(stack) - d)
        stack.append(k)
        if len(stack) > 2 * depth:
            del stack[:depth]
        out.append(k)
    return out


def shifting(n: int, keyspace: int, rng: random.Random, s: float = 0.99) -> List[int]:
    """Zipfian ranks, each phase drawn through its own random permutation
    of the key space (so the "ranks" are popularity ranks only within a
    phase)."""
    ranks = _zipf_ranks(n, keyspace, s, rng)
    phase_len = max(1, -(-n // SHIFT_PHASES))
    for start in range(0, n, phase_len):
        perm = list(range(keyspace))
        rng.shuffle(perm)
        ranks[start:start + phase_len] = [perm[r] for r in ranks[start:start + phase_len]]
    return ranks


GENERATORS: Dict[str, Callable[..., List[int]]] = {
    "uniform": uniform, "zipf": zipf, "scan": scan, "hotspot": hotspot, "burst": burst,
    "loop": loop, "scans": scans, "recency": recency, "shifting": shifting,
}
ZIPFIAN = ("zipf", "burst", "scans", "shifting")


def ranks(pattern: str, n: int, keyspace: int, seed: int = 0, zipf_s: float = 0.99) -> List[int]:
    """Popularity ranks (0 = most popular; negative = never seen before)."""
    if pattern not in GENERATORS:
        raise ValueError(f"unknown pattern {pattern!r}; "
                         f"choose from {', '.join(PATTERNS + GRID_PATTERNS)}")
    if n < 0 or keyspace < 1:
        raise ValueError("n must be >= 0 and keyspace >= 1")
    rng = random.Random(seed)
    gen = GENERATORS[pattern]
    if pattern in ZIPFIAN:
        return gen(n, keyspace, rng, s=zipf_s)
    return gen(n, keyspace, rng)


def stream(pattern: str, n: int, keyspace: int, seed: int = 0, zipf_s: float = 0.99) -> List[int]:
    """n int keys of the pattern over `keyspace` keys."""
    keymap = _key_map(keyspace, seed)
    return [keymap[r] if r >= 0 else FRESH - r
            for r in ranks(pattern, n, keyspace, seed, zipf_s)]


def trace(label_: str, n: int, keyspace: int, seed: int = 0) -> List[int]:
    """The keys of the hit-rate grid's trace called `label_` (see TRACES)."""
    for name, pattern, s in TRACES:
        if name == label_:
            return stream(pattern, n, keyspace, seed, 0.99 if s is None else s)
    raise ValueError(f"unknown trace {label_!r}; choose from "
                     f"{', '.join(t[0] for t in TRACES)}")


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
