"""Section "workload": each access pattern of ``workloads.py`` run against
every mapping (a plain dict, corecache, the installed peers), as a cache in
front of a slow source would be used: a read is ``get(k)``, and a read that
misses stores the value (cache-aside); a write stores unconditionally.  Per
pattern, read mix (``--read-mix``) and value size (``--value-size``):

* hit rate, over the timed half of the stream (the first half warms the
  cache);
* latency: every operation of the timed half bracketed by
  ``perf_counter_ns()``, the timer's own cost (its median) subtracted; the
  median and 99th percentile of hits, misses and sets (a set after a miss
  evicts once the cache is full), each the median over repeats;
* throughput in Mops/s with 1, 2 and 4 threads sharing one cache, each
  thread running its own stream of the same pattern; caches that are not
  thread-safe (cachetools) are used under a ``threading.Lock``, as their
  documentation asks.

Values are new ``bytes`` objects of the value size, made outside the timed
region (a cache holds references, so the size shows only where an evicted
value is freed inside a set).  The dict is unbounded: its hit figures are the
floor any cache is measured against (ratios are to its hit median).  Memory
per entry does not depend on the pattern: see the "memory" section.
"""
from __future__ import annotations

import gc
import statistics
import threading
import time
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import workloads
from .compare import Figure
from .targets import CHECK, INFO, Target, ratio
from .peers import ADAPTIVE, MappingPeer, workload_peers
from .report import fmt, grid
from .timing import compile_function, grouped_median, percentile, timer_overhead

NAME = "workload"
TITLE = "access patterns: hit rate, latency, throughput"

LATENCY_COLUMNS = ["hit_p50", "hit_p99", "miss_p50", "miss_p99", "set_p50", "set_p99"]


def sizes(opts: Any) -> Tuple[int, int, int]:
    """(key space, cache capacity, operations per timed half)"""
    keyspace = opts.keyspace
    return keyspace, max(1, keyspace // 10), opts.workload_ops


def _timed_loop(peer: MappingPeer) -> Callable[..., Any]:
    src = f"""
def run(keys, writes, o, make, perf):
    H = []; M = []; S = []
    ha = H.append; ma = M.append; sa = S.append
    for k, w in zip(keys, writes):
        if w:
            v = make()
            t0 = perf(); {peer.set}; t1 = perf()
            sa(t1 - t0)
        else:
            t0 = perf(); x = {peer.lookup}; t1 = perf()
            if x is None:
                ma(t1 - t0)
                v = make()
                t0 = perf(); {peer.set}; t1 = perf()
                sa(t1 - t0)
            else:
                ha(t1 - t0)
    return H, M, S
"""
    return compile_function(src, {}, "run")


def _plain_loop(peer: MappingPeer, locked: bool) -> Callable[..., Any]:
    """The same operations untimed (warming, threads); with `locked`, each
    under the lock a non-thread-safe peer needs."""
    if locked:
        body = f"""
        with lock:
            if w:
                {peer.set}
            elif {peer.lookup} is None:
                {peer.set}"""
    else:
        body = f"""
        if w:
            {peer.set}
        elif {peer.lookup} is None:
            {peer.set}"""
    src = f"""
def run(keys, writes, o, v, lock=None):
    for k, w in zip(keys, writes):{body}
"""
    return compile_function(src, {}, "run")


def _latency_once(peer: MappingPeer, capacity: int, warm: Sequence[int], warm_w: Sequence[bool],
                  keys: Sequence[int], writes: Sequence[bool], value_size: int,
                  overhead: float, tick: float) -> Dict[str, float]:
    o = peer.make(capacity, None)
    make = partial(bytes, value_size)
    _plain_loop(peer, False)(warm, warm_w, o, make())
    run = _timed_loop(peer)
    gc_was = gc.isenabled()
    gc.disable()
    try:
        H, M, S = run(keys, writes, o, make, time.perf_counter_ns)
    finally:
        if gc_was:
            gc.enable()
    del o
    out: Dict[str, float] = {}
    reads = len(H) + len(M)
    out["hit_rate"] = len(H) / reads if reads else float("nan")
    for name, samples in (("hit", H), ("miss", M), ("set", S)):
        samples.sort()
        for q in (50, 99):
            v = grouped_median(samples, tick) if q == 50 else percentile(samples, q)
            out[f"{name}_p{q}"] = max(v - overhead, 0.0) if v == v else v
    return out


def _throughput_once(peer: MappingPeer, capacity: int, warm: Sequence[int],
                     warm_w: Sequence[bool], streams: List[Tuple[Sequence[int], Sequence[bool]]],
                     value_size: int) -> float:
    """Operations per second of len(streams) threads on one cache."""
    o = peer.make(capacity, None)
    v = bytes(value_size)
    lock = None if peer.thread_safe else threading.Lock()
    _plain_loop(peer, False)(warm, warm_w, o, v)
    run = _plain_loop(peer, lock is not None)
    n = len(streams)
    barrier = threading.Barrier(n + 1)
    done: List[int] = []

    def worker(keys: Sequence[int], writes: Sequence[bool]) -> None:
        barrier.wait()
        run(keys, writes, o, v, lock)
        done.append(len(keys))

    threads = [threading.Thread(target=worker, args=s) for s in streams]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter_ns()
    for t in threads:
        t.join()
    elapsed = time.perf_counter_ns() - t0
    if len(done) != n:
        raise RuntimeError(f"{peer.name}: a benchmark thread failed")
    return sum(done) / (elapsed / 1e9)


def run_labels(opts: Any) -> List[Tuple[str, str, int, int]]:
    """(label, pattern, read percent, value size) for every combination asked for."""
    out = []
    for pattern in opts.patterns:
        for mix in opts.read_mix:
            for size in opts.value_size:
                label = (f"{workloads.label(pattern, opts.zipf)}, {mix}% reads, "
                         f"{size} B values")
                out.append((label, pattern, mix, size))
    return out


def run(opts: Any) -> Dict[str, Any]:
    """{"keyspace", "capacity", "operations", "timer_ns", "threads",
    "runs": {label: {peer: {figure: value}}}}"""
    keyspace, capacity, n = sizes(opts)
    peers = workload_peers(opts.libs, adaptive=True)
    overhead, tick = timer_overhead()
    repeats = max(1, opts.workload_repeats)
    thread_counts = sorted(set(opts.threads))
    results: Dict[str, Any] = {"keyspace": keyspace, "capacity": capacity, "operations": n,
                               "timer_ns": overhead, "clock_tick_ns": tick,
                               "threads": thread_counts,
                               "repeats": repeats, "runs": {}}
    for label, pattern, mix, size in run_labels(opts):
        full = workloads.stream(pattern, 2 * n, keyspace, seed=1, zipf_s=opts.zipf)
        writes = workloads.ops(full, mix, seed=1)
        warm, keys = full[:n], full[n:]
        warm_w, keys_w = writes[:n], writes[n:]
        per_thread: Dict[int, List[Tuple[List[int], List[bool]]]] = {}
        for t in thread_counts:
            share = max(1, opts.thread_ops // t)
            streams = []
            for i in range(t):
                ks = workloads.stream(pattern, share, keyspace, seed=100 + i, zipf_s=opts.zipf)
                streams.append((ks, workloads.ops(ks, mix, seed=100 + i)))
            per_thread[t] = streams
        samples: Dict[str, Dict[str, List[float]]] = {p.name: {} for p in peers}
        # round-robin over peers, repeat by repeat, so that drift spreads evenly
        for _ in range(repeats):
            for peer in peers:
                figs = _latency_once(peer, capacity, warm, warm_w, keys, keys_w, size,
                                     overhead, tick)
                for t in thread_counts:
                    figs[f"mops_{t}"] = _throughput_once(
                        peer, capacity, warm, warm_w, per_thread[t], size) / 1e6
                for k, v in figs.items():
                    samples[peer.name].setdefault(k, []).append(v)
        results["runs"][label] = {
            name: {k: _median(v) for k, v in figs.items()} for name, figs in samples.items()}
    return results


def _median(values: List[float]) -> float:
    real = [v for v in values if v == v]
    return statistics.median(real) if real else float("nan")


def report(results: Dict[str, Any], opts: Any) -> str:
    threads = results.get("threads", [])
    head = (f"{TITLE}: {results['keyspace']:,} keys, cache of {results['capacity']:,}, "
            f"{results['operations']:,} timed operations, median of {results.get('repeats', '?')} "
            f"repeats; ns per operation, each timed alone, less the timer's own "
            f"{fmt(results['timer_ns'])} ns (the clock reads in {fmt(results.get('clock_tick_ns'), 0)} "
            f"ns steps here: medians are interpolated within a step); ratios to the dict's "
            f"hit median; throughput in Mops/s, threads sharing one cache")
    out = [head]
    cols = (["hit rate"] + [c.replace("_", " ") for c in LATENCY_COLUMNS]
            + [f"{t} thr Mops/s" if i == 0 else f"{t} thr" for i, t in enumerate(threads)])
    for label, peers in results["runs"].items():
        base = peers.get("dict", {}).get("hit_p50")
        rows = []
        for name, f in peers.items():
            cells = [fmt(f.get("hit_rate"), 3)]
            for c in LATENCY_COLUMNS:
                v = f.get(c)
                cell = fmt(v, 0)
                if c == "hit_p50" and base and v is not None and v == v and name != "dict":
                    cell += f" ({v / base:.1f}x)"
                cells.append(cell)
            cells += [fmt(f.get(f"mops_{t}"), 2) for t in threads]
            rows.append((name, cells))
        out.append("")
        out.append(grid(label, cols, rows))
    return "\n".join(out)


def targets(results: Dict[str, Any]) -> List[Target]:
    """LRU is LRU, a check: every LRU mapping must see the same hit rate as
    corecache on the same stream (a check of the harness as much as of the
    peers; counts, not times, so stable).  corecache's hit median against
    the fastest peer's is information: each operation is timed alone
    between two clock reads, whose own cost and step are of the size of the
    differences (the lru section's loop-timed hits are the speed checks)."""
    out: List[Target] = []
    for label, peers in results.get("runs", {}).items():
        ours = peers.get("corecache[c]") or peers.get("corecache[py]")
        if not ours:
            continue
        lru = [n for n in ("corecache[py]", "lru-dict", "cachebox", "cachetools") if n in peers]
        rates = {n: peers[n]["hit_rate"] for n in lru}
        worst = max((abs(r - ours["hit_rate"]) for r in rates.values()), default=0.0)
        out.append(Target(f"{label}: LRU hit rates' largest difference from corecache's "
                          f"{ours['hit_rate']:.3f}", CHECK, "<= 0.005", f"{worst:.4f}",
                          worst <= 0.005))
        c = peers.get("corecache[c]")
        a = peers.get(ADAPTIVE)
        if c and a:
            # the policy's state is guarded like the table's (_locking.h):
            # threads sharing an adaptive cache keep LRU's throughput
            for t in results.get("threads", []):
                out.append(ratio(f"{label}: adaptive throughput with {t} thread"
                                 f"{'s' if t > 1 else ''} vs LRU's", a.get(f"mops_{t}"),
                                 c.get(f"mops_{t}"), 0.9, at_least=True, unit="Mops/s",
                                 digits=2))
        if c and c.get("hit_p50") == c.get("hit_p50") and c.get("hit_p50") is not None:
            others = {n: f["hit_p50"] for n, f in peers.items()
                      if n != "dict" and not n.startswith("corecache")
                      and f.get("hit_p50") is not None and f["hit_p50"] == f["hit_p50"]}
            if others:
                best = min(others, key=lambda n: others[n])
                why = "single operations timed alone: within the timer's noise"
                if others[best] <= 0:
                    why = f"{best}'s median is below the timer's resolution"
                out.append(ratio(f"{label}: corecache hit p50 vs the fastest peer's ({best})",
                                 c["hit_p50"], others[best], 1.0, digits=0, kind=INFO,
                                 why=why, missing=why))
    return out

def figures(results: Dict[str, Any]) -> List[Figure]:
    out = []
    for label, peers in results.get("runs", {}).items():
        for name, figs in peers.items():
            for k, v in figs.items():
                key = f"{NAME}/{label}/{name}/{k}"
                if k == "hit_rate":
                    out.append(Figure(key, v, "hit rate", name))
                elif k.startswith("mops_"):
                    out.append(Figure(key, v, "Mops/s", name, tail=k != "mops_1"))
                else:
                    out.append(Figure(key, v, "ns", name, tail=k.endswith("_p99")))
    return out
