"""Section "lru": LRUCache against a plain dict and the installed mapping
peers: a hit through ``c[k]`` and ``get``, a miss, a set of a new key into a
full 1024-entry cache (evicting), an overwrite; each also with a TTL on every
entry.  The hits are measured twice: on hot keys that are the stored
objects themselves, and on keys equal to but not the same objects as the
stored ones, over every entry in shuffled order (what a server sees).
``Cache(policy="adaptive")`` (compiled) is measured beside LRUCache, and
its hit and set-with-eviction held to LRUCache's."""
from __future__ import annotations

import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .peers import (ADAPTIVE, MappingPeer, adaptive_peers, corecache_peers, dict_peer,
                    installed_peers)
from .compare import Figure, table_figures
from .report import columns, table
from .targets import Target, ratio
from .timing import Case, fill, run_cases

NAME = "lru"
TITLE = "LRUCache operations"

CAPACITY = 1024
HOT = 100          # lookups cycle over this many keys
BASE = 1 << 20     # keys are ints above the small-int cache

OPERATIONS = [
    # (name, body attribute of the peer, key stream, needs eviction)
    ("c[k] hit", "getitem", "hot", False),
    ("get hit", "get", "hot", False),
    ("c[k] hit, equal keys", "getitem", "equal", False),
    ("get hit, equal keys", "get", "equal", False),
    ("get miss", "get", "absent", False),
    ("set new key, evicting", "set", "new", True),
    ("overwrite", "set", "hot", False),
]


def _filled(peer: MappingPeer, ttl: Optional[float], keys: Sequence[int]) -> Any:
    o = peer.make(CAPACITY, ttl)
    fill(peer.set, o, keys)
    return o


def cases(peers: List[MappingPeer], n: int, with_ttl: bool) -> List[Case]:
    present = list(range(BASE, BASE + CAPACITY))
    hot = (present[:HOT] * (n // HOT + 1))[:n]
    # equal to the stored keys, not the same objects (int(str(k)) makes a
    # new int above the small-int cache), over every entry, shuffled
    equal = [int(str(k)) for k in present]
    random.Random(16).shuffle(equal)
    equal = (equal * (n // CAPACITY + 1))[:n]
    absent_keys = list(range(BASE * 2, BASE * 2 + HOT))
    absent = (absent_keys * (n // HOT + 1))[:n]
    new_cache: Dict[int, List[int]] = {}

    def new_keys(r: int) -> List[int]:
        if r not in new_cache:
            start = BASE * 4 + (r + 10) * n
            new_cache.clear()
            new_cache[r] = list(range(start, start + n))
        return new_cache[r]

    streams = {"hot": lambda r: hot, "absent": lambda r: absent, "new": new_keys,
               "equal": lambda r: equal}
    ttl = 3600.0 if with_ttl else None
    out = []
    for op, attr, stream, evicting in OPERATIONS:
        for peer in peers:
            body = getattr(peer, attr)
            if body is None or (evicting and not peer.evicts) or (with_ttl and not peer.ttl):
                continue
            if not evicting:   # one filled cache serves every repeat
                state = {"o": None}

                def setup(r: int, peer: MappingPeer = peer, state: Dict[str, Any] = state) -> Dict[str, Any]:
                    if state["o"] is None:
                        state["o"] = _filled(peer, ttl, present)
                    return {"o": state["o"], "v": 1}
            else:
                def setup(r: int, peer: MappingPeer = peer) -> Dict[str, Any]:
                    return {"o": _filled(peer, ttl, present), "v": 1}
            case = Case(f"{op}{' (ttl)' if with_ttl else ''}|{peer.name}", body, setup,
                        streams[stream])
            out.append(case)
    return out


def peers(libs: Optional[List[str]]) -> List[MappingPeer]:
    every = [dict_peer()] + corecache_peers() + adaptive_peers() + installed_peers()
    if not libs:
        return every
    return [p for p in every if p.name == "dict" or any(lib in p.name for lib in libs)]


def run(opts: Any) -> Dict[str, Dict[str, float]]:
    """{operation: {implementation: median ns/op}}"""
    chosen = peers(opts.libs)
    # one round-robin batch: the TTL target compares a hit with and without
    # a TTL, which must see the same machine (two batches a few seconds
    # apart on a shared machine differ by more than the 20 % it allows)
    batch = cases(chosen, opts.n, False) + cases(chosen, opts.n, True)
    run_cases(batch, opts.repeats)
    results: Dict[str, Dict[str, float]] = {}
    for case in batch:
        op, peer = case.name.split("|")
        results.setdefault(op, {})[peer] = case.median
    return results


def report(results: Dict[str, Dict[str, float]], opts: Any) -> str:
    return table(TITLE, results, columns(results), "dict")


def targets(results: Dict[str, Dict[str, float]]) -> List[Target]:
    """The foundation issue's speed targets (compiled build), checks: every
    figure here comes from one round-robin batch, so that a ratio compares
    operations measured on the same machine state."""
    out: List[Target] = []
    c = "corecache[c]"

    def cmp(op_a: str, a: str, op_b: str, b: str, limit: float, text: str,
            needs: str = "quick", why: str = "") -> None:
        x, y = results.get(op_a, {}).get(a), results.get(op_b, {}).get(b)
        out.append(ratio(text, x, y, limit, needs=needs, why=why,
                         missing=f"needs {a} and {b}"))

    cmp("c[k] hit", c, "c[k] hit", "lru-dict", 1.0, "c[k] hit vs lru-dict c[k]")
    cmp("get hit", c, "get hit", "cachebox", 1.0, "get hit vs cachebox LRUCache.get",
        needs="default", why="0.85-1.07x in --quick on a loaded machine")
    cmp("set new key, evicting", c, "set new key, evicting", "cachebox", 1.0,
        "set with eviction vs cachebox LRUCache")
    cmp("set new key, evicting", c, "set new key, evicting", "cachetools", 0.2,
        "set with eviction vs cachetools LRUCache (at least 5x faster)")
    cmp("c[k] hit (ttl)", c, "c[k] hit", c, 1.2, "TTL hit vs hit without TTL")
    # issue 16: the adaptive policy at about the cost of LRU
    cmp("c[k] hit, equal keys", ADAPTIVE, "c[k] hit, equal keys", c, 1.15,
        "adaptive c[k] hit vs LRUCache's (equal keys, shuffled)")
    cmp("get hit, equal keys", ADAPTIVE, "get hit, equal keys", c, 1.15,
        "adaptive get hit vs LRUCache's (equal keys, shuffled)")
    cmp("set new key, evicting", ADAPTIVE, "set new key, evicting", c, 1.5,
        "adaptive set with eviction vs LRUCache's")
    cmp("c[k] hit (ttl)", c, "c[k] hit (ttl)", "cachebox", 0.8, "TTL hit vs cachebox TTLCache")
    # the pure twin is what runs where no wheel exists: against the pure
    # Python LRUCache people know (the Pythons issue's target, every row)
    for op, _, _, _ in OPERATIONS:
        cmp(op, "corecache[py]", op, "cachetools", 1.5,
            f"pure twin {op} vs cachetools LRUCache")
    return out


def figures(results: Dict[str, Dict[str, float]]) -> List[Figure]:
    return table_figures(NAME, results, "ns")
