"""Section "hitrate": hit rate against cache size, per eviction policy, for
every access pattern of ``workloads.py``.  Each library's own cache is
driven cache-aside (``get``; on a miss, store) over one stream: the first
half warms the cache, hits are counted over the second.  Policies: LRU
(corecache, lru-dict, cachebox, cachetools: the same policy, so the same
figures, which checks the harness), LFU and FIFO (cachetools, cachebox),
TinyLFU (moka-py), W-TinyLFU (theine), and the optimum, Belady's MIN with
bypass, which knows the future: run over the whole stream and counted over
the same second half, it is the reference, not a strict bound on the half
(a policy may trade hits in the first half for a better second half).
Hit rates hardly vary between runs (theine's and moka-py's admission
sketches are randomised a little), so they are measured once."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import workloads
from .compare import Figure
from .peers import MappingPeer, workload_peers
from .report import fmt, grid
from .timing import compile_function

NAME = "hitrate"
TITLE = "hit rate against cache size"

OPTIMAL = "optimal (Belady)"


def capacities(opts: Any) -> List[int]:
    return sorted({max(1, int(opts.keyspace * f)) for f in opts.hitrate_fractions})


def _loop(peer: MappingPeer) -> Callable[..., int]:
    src = f"""
def run(keys, o, v):
    hits = 0
    for k in keys:
        if {peer.lookup} is None:
            {peer.set}
        else:
            hits += 1
    return hits
"""
    return compile_function(src, {}, "run")


def hit_rate(peer: MappingPeer, capacity: int, keys: Sequence[int]) -> float:
    """Share of hits over the second half of `keys`, the first half warming."""
    half = len(keys) // 2
    o = peer.make(capacity, None)
    run = _loop(peer)
    run(keys[:half], o, 1)
    measured = keys[half:]
    return run(measured, o, 1) / len(measured) if measured else float("nan")


def optimal_rate(capacity: int, keys: Sequence[int]) -> float:
    half = len(keys) // 2
    measured = len(keys) - half
    return workloads.belady_hits(keys, capacity, half) / measured if measured else float("nan")


def policy_peers(libs: Optional[List[str]]) -> List[MappingPeer]:
    """Every bounded mapping but the pure twin (the same LRU, much slower)."""
    return [p for p in workload_peers(libs, policies=True)
            if p.evicts and p.name != "corecache[py]"]


def run(opts: Any) -> Dict[str, Any]:
    """{"keyspace", "accesses", "capacities", "policies": {name: policy},
    "rates": {pattern label: {name: [hit rate per capacity]}}}"""
    caps = capacities(opts)
    peers = policy_peers(opts.libs)
    n = opts.hitrate_accesses
    results: Dict[str, Any] = {
        "keyspace": opts.keyspace, "accesses": n, "capacities": caps,
        "policies": {p.name: p.policy for p in peers}, "rates": {}}
    results["policies"][OPTIMAL] = "optimal"
    for pattern in opts.patterns:
        keys = workloads.stream(pattern, n, opts.keyspace, seed=2, zipf_s=opts.zipf)
        rates: Dict[str, List[float]] = {}
        for peer in peers:
            rates[peer.name] = [hit_rate(peer, c, keys) for c in caps]
        rates[OPTIMAL] = [optimal_rate(c, keys) for c in caps]
        results["rates"][workloads.label(pattern, opts.zipf)] = rates
    return results


def report(results: Dict[str, Any], opts: Any) -> str:
    caps = results["capacities"]
    ks = results["keyspace"]
    cols = [f"{c:,} ({100 * c / ks:g}%)" for c in caps]
    out = [f"{TITLE}: {ks:,} keys, {results['accesses']:,} accesses (hits counted over the "
           f"second half); cache size as entries (share of the keys)"]
    policies = results["policies"]
    for label, rates in results["rates"].items():
        rows = [(f"{name} [{policies.get(name, '?')}]" if name != OPTIMAL else name,
                 [fmt(r, 3) for r in rs]) for name, rs in rates.items()]
        out.append("")
        out.append(grid(label, cols, rows))
    return "\n".join(out)


def targets(results: Dict[str, Any]) -> List[Tuple[Optional[bool], str]]:
    """The harness is right: every LRU library matches corecache at every
    size."""
    out: List[Tuple[Optional[bool], str]] = []
    policies = results.get("policies", {})
    for label, rates in results.get("rates", {}).items():
        ours = rates.get("corecache[c]")
        if ours is None:
            continue
        lru = [n for n in rates if policies.get(n) == "LRU" and n != "corecache[c]"]
        if lru:
            worst = max(abs(a - b) for n in lru for a, b in zip(rates[n], ours))
            out.append((worst <= 0.005, f"{label}: {len(lru)} other LRU libraries' hit rates "
                                        f"within 0.005 of corecache's at every size "
                                        f"(worst {worst:.4f})"))
    return out


def figures(results: Dict[str, Any]) -> List[Figure]:
    out = []
    caps = results.get("capacities", [])
    for label, rates in results.get("rates", {}).items():
        for name, rs in rates.items():
            for cap, r in zip(caps, rs):
                out.append(Figure(f"{NAME}/{label}/{name}/{cap}", r, "hit rate", name))
    return out
