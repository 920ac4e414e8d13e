"""Section "scaling": how the cost of an operation grows with the number of
entries, from 1,000 to 1,000,000.  A cache that is O(1) per operation costs
the same at every size except for what the memory hierarchy adds: lookups
of random keys in a large table miss the CPU caches, and a plain dict pays
that too.  So each library's growth (ns/op at the largest size over ns/op
at the smallest) is set against the dict's own growth on the same keys.

Operations: a hit on a key drawn at random from all the entries, and a set
of a new key into a full cache (evicting one).  Keys are random 62-bit ints,
whose hashes scatter like those of strings or tuples: consecutive small ints
would hash to consecutive slots and flatter tables that index by the raw
hash (dict, lru-dict) with a locality real keys do not have.  Caches are filled once per
size; a library whose fill at the next size would take longer than the
budget (quick: 0.5 s, default: 20 s; estimated from the previous size) is
not measured there."""
from __future__ import annotations

import random
import time
from typing import Any, Dict, List, Optional, Tuple

from .compare import Figure
from .targets import CHECK, Target
from .peers import MappingPeer, workload_peers
from .report import fmt, grid
from .timing import Case, fill, run_cases

NAME = "scaling"
TITLE = "cost against cache size"

BASE = 1 << 30
OPS = ["get hit (random key)", "set new key, evicting"]


def _random_keys(rng: random.Random, n: int) -> List[int]:
    keys = list({rng.getrandbits(62) | BASE for _ in range(n + n // 100 + 10)})[:n]
    rng.shuffle(keys)
    return keys


def run(opts: Any) -> Dict[str, Any]:
    """{"sizes": [...], "ops": {op: {peer: [ns per size or None]}},
    "skipped": {peer: first size skipped}}"""
    sizes = list(opts.scaling_sizes)
    peers = workload_peers(opts.libs)
    n = opts.n
    repeats = max(1, min(opts.repeats, opts.scaling_repeats))
    rng = random.Random(3)
    results: Dict[str, Any] = {"sizes": sizes, "ops": {op: {p.name: [None] * len(sizes)
                                                             for p in peers} for op in OPS},
                               "skipped": {}}
    fill_rate: Dict[str, float] = {}       # seconds per entry, last measured
    active = list(peers)
    for si, size in enumerate(sizes):
        keys = _random_keys(rng, size)
        hot = [keys[rng.randrange(size)] for _ in range(n)]
        caches: Dict[str, Any] = {}
        for peer in list(active):
            est = fill_rate.get(peer.name, 0.0) * size
            if est > opts.scaling_fill_budget:
                active.remove(peer)
                results["skipped"][peer.name] = size
                continue
            o = peer.make(size, None)
            t0 = time.perf_counter()
            fill(peer.set, o, keys)
            fill_rate[peer.name] = (time.perf_counter() - t0) / size
            caches[peer.name] = o
        fresh: Dict[int, List[int]] = {}

        def new_keys(r: int) -> List[int]:
            if r not in fresh:
                fresh.clear()
                fresh[r] = _random_keys(rng, n)     # (a repeat of a 1-in-2**62 chance)
            return fresh[r]

        cases = []
        for peer in active:
            o = caches[peer.name]
            cases.append(Case(f"{OPS[0]}|{peer.name}", f"{peer.lookup}",
                              lambda r, o=o: {"o": o}, lambda r: hot))
            if peer.evicts:
                cases.append(Case(f"{OPS[1]}|{peer.name}", peer.set,
                                  lambda r, o=o: {"o": o, "v": 1}, new_keys))
        run_cases(cases, repeats)
        for case in cases:
            op, name = case.name.split("|")
            results["ops"][op][name][si] = case.median
        del caches, cases, keys, hot
    return results


def growth(figs: List[Optional[float]]) -> Optional[float]:
    """Last measured size's cost over the first's."""
    measured = [f for f in figs if f is not None]
    if len(measured) < 2 or not measured[0]:
        return None
    return measured[-1] / measured[0]


def report(results: Dict[str, Any], opts: Any) -> str:
    sizes = results["sizes"]
    cols = [f"{s:,}" for s in sizes] + ["growth"]
    out = [f"{TITLE} (ns/op; growth = largest measured size over smallest)"]
    for op, peers in results["ops"].items():
        rows = []
        for name, figs in peers.items():
            if all(f is None for f in figs):
                continue
            g = growth(figs)
            rows.append((name, [fmt(f) for f in figs] + [f"{g:.2f}x" if g else "-"]))
        out.append("")
        out.append(grid(op, cols, rows))
    if results.get("skipped"):
        out.append("not measured from (fill too slow for the budget): " + ", ".join(
            f"{k} {v:,}" for k, v in results["skipped"].items()))
    return "\n".join(out)


def targets(results: Dict[str, Any]) -> List[Target]:
    """O(1), checks: corecache's cost grows no more than 1.5x the dict's own
    growth over the same sizes (memory-hierarchy effects are the dict's too)."""
    out: List[Target] = []
    sizes = results.get("sizes", [])
    ops = results.get("ops", {})
    hits = ops.get(OPS[0], {})
    d = growth(hits.get("dict", []))
    c = "corecache[c]"
    if not sizes or d is None:
        return [Target("O(1) scaling", CHECK,
                       why="needs dict and corecache figures at two sizes")]
    span = f"{sizes[0]:,} to {sizes[-1]:,}"
    for op in OPS:
        g = growth(ops.get(op, {}).get(c, []))
        limit = 1.5 * max(d, 1.0)
        text = f"O(1) {op}, {span}: corecache's growth vs 1.5x the dict hit's ({d:.2f}x)"
        if g is None:
            out.append(Target(text, CHECK, f"<= {limit:.2f}x", why="needs the compiled core"))
        else:
            out.append(Target(text, CHECK, f"<= {limit:.2f}x", f"{g:.2f}x", g <= limit))
    return out


def figures(results: Dict[str, Any]) -> List[Figure]:
    out = []
    sizes = results.get("sizes", [])
    for op, peers in results.get("ops", {}).items():
        for name, figs in peers.items():
            for size, v in zip(sizes, figs):
                if v is not None:
                    out.append(Figure(f"{NAME}/{op}/{name}/{size}", v, "ns", name))
    return out
