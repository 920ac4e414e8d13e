"""python -m corecache.bench: how corecache compares, on this machine.

Every figure is measured in this one process (memory in fresh
subprocesses), repeated, and reported as the median, with ratios to a plain
dict (mappings).  Peers are measured only when installed
(``pip install corecache[bench]`` installs them).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

from . import mapping, memory
from .peers import corecache_peers, dict_peer, installed_peers, versions
from .report import machine, table

TARGETS_HELP = "the issue targets, checked against this run's figures"


def check_targets(ops: Dict[str, Dict[str, float]], mem: Dict[str, Dict[str, float]]) -> List[str]:
    """The foundation's targets (compiled build), each with its figure."""
    lines = []

    def line(ok: Optional[bool], text: str) -> None:
        lines.append(f"  [{'met' if ok else 'MISSED' if ok is False else 'n/a'}] {text}")

    c = "corecache[c]"

    def get(op: str, who: str) -> Optional[float]:
        return ops.get(op, {}).get(who)

    def cmp(op_a: str, a: str, op_b: str, b: str, limit: float, text: str) -> None:
        x, y = get(op_a, a), get(op_b, b)
        if x is None or y is None:
            line(None, f"{text}: needs {a} and {b}")
            return
        r = x / y
        line(r <= limit, f"{text}: {x:.1f} vs {y:.1f} ns = {r:.2f}x (limit {limit:g}x)")

    cmp("c[k] hit", c, "c[k] hit", "lru-dict", 1.0, "c[k] hit vs lru-dict c[k]")
    cmp("get hit", c, "get hit", "cachebox", 1.0, "get hit vs cachebox LRUCache.get")
    cmp("set new key, evicting", c, "set new key, evicting", "cachebox", 1.0,
        "set with eviction vs cachebox LRUCache")
    cmp("set new key, evicting", c, "set new key, evicting", "cachetools", 0.2,
        "set with eviction vs cachetools LRUCache (5x faster)")
    cmp("c[k] hit (ttl)", c, "c[k] hit", c, 1.2, "TTL hit vs hit without TTL")
    cmp("c[k] hit (ttl)", c, "c[k] hit (ttl)", "cachebox", 0.8, "TTL hit vs cachebox TTLCache")
    for label, limit in (("no ttl", 80), ("ttl", 96)):
        b = mem.get(label, {}).get(c)
        line(None if b is None else b <= limit,
             f"bytes per entry at 1M int->int, {label}: {b if b is None else round(b, 1)} (limit {limit})")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m corecache.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats and iterations")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="measure only implementations whose name contains NAME (repeatable)")
    p.add_argument("--no-memory", action="store_true", help="skip bytes-per-entry")
    p.add_argument("--repeats", type=int, help="repeats per figure (median is reported)")
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    args = p.parse_args(argv)

    n = 50_000 if args.quick else 200_000
    repeats = args.repeats or (5 if args.quick else 11)
    info = machine()
    print("corecache benchmark")
    for k, v in info.items():
        print(f"  {k}: {v}")
    peer_versions = versions()
    print("  peers: " + (", ".join(f"{k} {v}" for k, v in peer_versions.items()) or "none installed"))
    print(f"  {repeats} repeats of {n:,} operations each; medians; loop overhead subtracted\n")

    ops = mapping.run(n, repeats, args.only)
    names = [p.name for p in [dict_peer()] + corecache_peers() + installed_peers()
             if not args.only or p.name == "dict" or any(o in p.name for o in args.only)]
    print(table("LRUCache operations", ops, names, "dict"))
    mem: Dict[str, Dict[str, float]] = {}
    if not args.no_memory:
        mem = memory.run(names)
        print()
        print(table("memory at 1,000,000 int->int entries", mem, names, "dict",
                    unit="bytes per entry"))
    print("\ntargets (" + TARGETS_HELP + "):")
    for line in check_targets(ops, mem):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "versions": peer_versions, "repeats": repeats,
                       "operations": n, "mapping_ns": ops, "memory_bytes_per_entry": mem},
                      f, indent=2, sort_keys=True)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
