"""Section "memory": bytes per entry, the resident memory growth of a process that puts 1,000,000
int -> int entries into one cache, keys and values created beforehand.
Each figure comes from a fresh subprocess (``python -m corecache.bench.memory
NAME ENTRIES [ttl]``), so that nothing else lives in its heap; two run at a
time (resident memory is per process, so they do not disturb each other).

This is the cost of the cache's own structure: every library here stores
references, so a value's own size adds the same to each and is not part of
the figure, whatever the access pattern."""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

from .compare import Figure, table_figures
from .targets import CHECK, Target
from .report import columns, table
from .timing import fill

NAME = "memory"
TITLE = "memory per entry"

N = 1_000_000


def _rss() -> int:
    try:
        import psutil
        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _make(name: str, ttl: Optional[float]):
    from .peers import adaptive_peers
    from .peers import corecache_peers, dict_peer, installed_peers
    for peer in [dict_peer()] + corecache_peers() + adaptive_peers() + installed_peers():
        if peer.name == name:
            return peer
    raise SystemExit(f"unknown or missing implementation {name!r}")


def measure(name: str, ttl: Optional[float], n: int = N) -> float:
    peer = _make(name, ttl)
    keys = list(range(10 ** 9, 10 ** 9 + n))
    values = list(range(2 * 10 ** 9, 2 * 10 ** 9 + n))
    gc.collect()
    gc.disable()
    before = _rss()
    o = peer.make(n, ttl)
    fill(peer.set, o, keys, values)
    after = _rss()
    assert (len(o) if hasattr(o, "__len__") else n) == n
    return (after - before) / n


def names(libs: Optional[List[str]]) -> List[str]:
    from .mapping import peers
    return [p.name for p in peers(libs)]


def _subprocess(name: str, n: int, ttl: Optional[float], timeout: float) -> float:
    args = [sys.executable, "-m", "corecache.bench.memory", name, str(n)]
    if ttl is not None:
        args.append(str(ttl))
    # from the folder that holds the corecache this process measures: the
    # child's sys.path[0] is its working directory, which must not put
    # another corecache (a source tree there, say) in front
    import corecache
    home = os.path.dirname(os.path.dirname(os.path.abspath(corecache.__file__)))
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=home)
    if r.returncode == 0:
        return float(json.loads(r.stdout)["bytes_per_entry"])
    sys.stderr.write(f"memory: {name} failed: {r.stderr[-500:]}\n")
    return float("nan")


def run(opts: Any, timeout: float = 300) -> Dict[str, Any]:
    """{"no ttl"/"ttl": {name: bytes per entry}, "entries": n} measured in
    subprocesses."""
    n = getattr(opts, "memory_entries", N)
    jobs = []
    for label, ttl in (("no ttl", None), ("ttl", 3600.0)):
        for name in names(opts.libs):
            if ttl is not None and not _make(name, None).ttl:
                continue
            jobs.append((label, name, ttl))
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as ex:
        futures = [ex.submit(_subprocess, name, n, ttl, timeout) for _, name, ttl in jobs]
        figures = [f.result() for f in futures]
    out: Dict[str, Any] = {"no ttl": {}, "ttl": {}}
    for (label, name, _), b in zip(jobs, figures):
        out[label][name] = b
    out["entries"] = n
    return out


def report(results: Dict[str, Any], opts: Any) -> str:
    rows = {k: v for k, v in results.items() if isinstance(v, dict)}
    n = results.get("entries", N)
    return table(f"{TITLE} at {n:,} int->int entries", rows, columns(rows), "dict",
                 unit="bytes per entry")


def targets(results: Dict[str, Any]) -> List[Target]:
    """Checks: bytes per entry (a count of bytes, not a time: stable)."""
    out: List[Target] = []
    n = results.get("entries", N)
    for label, limit in (("no ttl", 80), ("ttl", 96)):
        text = f"bytes per entry at 1M int->int, {label}"
        if n != N:
            out.append(Target(text, CHECK, f"<= {limit}", needs="quick",
                              why=f"measured at {n:,} entries instead"))
            continue
        b = results.get(label, {}).get("corecache[c]")
        if b is None or b != b:
            out.append(Target(text, CHECK, f"<= {limit}", why="needs the compiled core"))
        else:
            out.append(Target(text, CHECK, f"<= {limit}", f"{b:.1f}", b <= limit))
    return out


def figures(results: Dict[str, Any]) -> List[Figure]:
    n = results.get("entries", N)
    return table_figures(f"{NAME}/{n}", results, "bytes")


if __name__ == "__main__":
    name = sys.argv[1]
    entries = int(sys.argv[2]) if len(sys.argv) > 2 else N
    ttl = float(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps({"name": name, "ttl": ttl, "entries": entries,
                      "bytes_per_entry": measure(name, ttl, entries)}))
