"""Section "memory": bytes per entry, the resident memory growth of a process that puts 1,000,000
int -> int entries into one cache, keys and values created beforehand.
Each figure comes from a fresh subprocess (``python -m corecache.bench.memory
NAME [ttl]``), so that nothing else lives in its heap."""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

from .report import table
from .timing import fill

NAME = "memory"
TITLE = "memory at 1,000,000 int->int entries"

N = 1_000_000


def _rss() -> int:
    try:
        import psutil
        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _make(name: str, ttl: Optional[float]):
    from .peers import corecache_peers, dict_peer, installed_peers
    for peer in [dict_peer()] + corecache_peers() + installed_peers():
        if peer.name == name:
            return peer
    raise SystemExit(f"unknown or missing implementation {name!r}")


def measure(name: str, ttl: Optional[float]) -> float:
    peer = _make(name, ttl)
    keys = list(range(10 ** 9, 10 ** 9 + N))
    values = list(range(2 * 10 ** 9, 2 * 10 ** 9 + N))
    gc.collect()
    gc.disable()
    before = _rss()
    o = peer.make(N, ttl)
    fill(peer.set, o, keys, values)
    after = _rss()
    assert (len(o) if hasattr(o, "__len__") else N) == N
    return (after - before) / N


def names(libs: Optional[List[str]]) -> List[str]:
    from .mapping import peers
    return [p.name for p in peers(libs)]


def run(opts: Any, timeout: float = 300) -> Dict[str, Dict[str, float]]:
    """{"no ttl"/"ttl": {name: bytes per entry}} measured in subprocesses."""
    chosen = names(opts.libs)
    out: Dict[str, Dict[str, float]] = {"no ttl": {}, "ttl": {}}
    for label, ttl in (("no ttl", None), ("ttl", 3600.0)):
        for name in chosen:
            peer = _make(name, None)
            if ttl is not None and not peer.ttl:
                continue
            args = [sys.executable, "-m", "corecache.bench.memory", name]
            if ttl is not None:
                args.append(str(ttl))
            r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
            if r.returncode == 0:
                out[label][name] = json.loads(r.stdout)["bytes_per_entry"]
            else:
                out[label][name] = float("nan")
                sys.stderr.write(f"memory: {name} failed: {r.stderr[-500:]}\n")
    return out


def report(results: Dict[str, Dict[str, float]], opts: Any) -> str:
    return table(TITLE, results, names(opts.libs), "dict", unit="bytes per entry")


def targets(results: Dict[str, Dict[str, float]]) -> List[Tuple[Optional[bool], str]]:
    out: List[Tuple[Optional[bool], str]] = []
    for label, limit in (("no ttl", 80), ("ttl", 96)):
        b = results.get(label, {}).get("corecache[c]")
        out.append((None if b is None else b <= limit,
                    f"bytes per entry at 1M int->int, {label}: "
                    f"{'-' if b is None else round(b, 1)} (limit {limit})"))
    return out


if __name__ == "__main__":
    name = sys.argv[1]
    ttl = float(sys.argv[2]) if len(sys.argv) > 2 else None
    print(json.dumps({"name": name, "ttl": ttl, "bytes_per_entry": measure(name, ttl)}))
