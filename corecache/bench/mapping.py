"""LRUCache against a plain dict and the installed mapping peers: a hit
through ``c[k]`` and ``get``, a miss, a set of a new key into a full
1024-entry cache (evicting), an overwrite; each also with a TTL on every
entry."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from .peers import MappingPeer, corecache_peers, dict_peer, installed_peers
from .timing import Case, fill, run_cases

CAPACITY = 1024
HOT = 100          # lookups cycle over this many keys
BASE = 1 << 20     # keys are ints above the small-int cache

OPERATIONS = [
    # (name, body attribute of the peer, key stream, needs eviction)
    ("c[k] hit", "getitem", "hot", False),
    ("get hit", "get", "hot", False),
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
    absent_keys = list(range(BASE * 2, BASE * 2 + HOT))
    absent = (absent_keys * (n // HOT + 1))[:n]
    new_cache: Dict[int, List[int]] = {}

    def new_keys(r: int) -> List[int]:
        if r not in new_cache:
            start = BASE * 4 + (r + 10) * n
            new_cache.clear()
            new_cache[r] = list(range(start, start + n))
        return new_cache[r]

    streams = {"hot": lambda r: hot, "absent": lambda r: absent, "new": new_keys}
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


def run(n: int, repeats: int, only: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    """{operation: {peer: median ns/op}}"""
    peers = [dict_peer()] + corecache_peers() + installed_peers()
    if only:
        peers = [p for p in peers if p.name == "dict" or any(o in p.name for o in only)]
    results: Dict[str, Dict[str, float]] = {}
    for with_ttl in (False, True):
        batch = cases(peers, n, with_ttl)
        run_cases(batch, repeats)
        for case in batch:
            op, peer = case.name.split("|")
            results.setdefault(op, {})[peer] = case.median
    return results
