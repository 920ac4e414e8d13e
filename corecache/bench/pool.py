"""Section "pool": one ``with pool.acquire() as o: pass`` cycle on an idle
object (and the explicit ``put(get())`` pair), against a ``queue.Queue``
get/put pair (what a hand-made pool is usually built on) and a bare
``queue.SimpleQueue`` get/put pair (no limit, no tracking, no blocking
order, no reset: the floor), all in this process."""
from __future__ import annotations

import queue
from typing import Any, Dict, List, Optional, Tuple

from .compare import Figure, table_figures
from .targets import Target, ratio
from .report import columns, table
from .timing import Case, run_cases

REPEATS = 11

NAME = "pool"
TITLE = "ObjectPool, one cycle on an idle object"

WITH = "with acquire()"
PAIR = "put(get())"
QUEUE = "queue.Queue get+put"
SIMPLE = "queue.SimpleQueue get+put"


def _pools() -> List[Tuple[str, Any]]:
    from corecache import _impl
    out = []
    for kind in ("c", "py"):
        mod = _impl.compiled_module("pool") if kind == "c" else _impl.pure_module("pool")
        if mod is not None:
            out.append((f"corecache[{kind}]", mod.ObjectPool))
    return out


def run(opts: Any) -> Dict[str, Dict[str, float]]:
    """{operation: {implementation: median ns per cycle}}"""
    keys = list(range(opts.n))
    cases = []
    for name, cls in _pools():
        pool = cls(object, 4)
        pool.prefill(1)
        env = {"p": pool}
        cases.append(Case(f"{WITH}|{name}", "with p.acquire() as o: pass",
                          lambda r, env=env: env, lambda r: keys))
        cases.append(Case(f"{PAIR}|{name}", "p.put(p.get())", lambda r, env=env: env,
                          lambda r: keys))
    q: "queue.Queue[object]" = queue.Queue()
    q.put(object())
    sq: "queue.SimpleQueue[object]" = queue.SimpleQueue()
    sq.put(object())
    cases.append(Case(f"{QUEUE}|queue", "q.put(q.get())", lambda r: {"q": q}, lambda r: keys))
    cases.append(Case(f"{SIMPLE}|queue", "q.put(q.get())", lambda r: {"q": sq}, lambda r: keys))
    run_cases(cases, max(opts.repeats, REPEATS))   # a short section: more repeats
    results: Dict[str, Dict[str, float]] = {}
    for case in cases:
        op, who = case.name.split("|")
        results.setdefault(op, {})[who] = case.median
    return results


def report(results: Dict[str, Dict[str, float]], opts: Any) -> str:
    return table(TITLE, results, columns(results), None)


def targets(results: Dict[str, Dict[str, float]]) -> List[Target]:
    """Issue 4's pool targets (compiled build), checks."""
    out: List[Target] = []
    c = results.get(WITH, {}).get("corecache[c]")
    for other, limit, text, needs, why in (
            (QUEUE, 1 / 6, "at most 1/6 of a queue.Queue get/put pair", "quick", ""),
            (SIMPLE, 3.0, "at most 3x a queue.SimpleQueue get/put pair", "default",
             "2.7-3.1x in --quick on a loaded machine")):
        o = results.get(other, {}).get("queue")
        out.append(ratio(f"with pool.acquire() cycle {text}", c, o, limit, needs=needs, why=why,
                         missing="needs the compiled core"))
    return out


def figures(results: Dict[str, Dict[str, float]]) -> List[Figure]:
    return table_figures(NAME, results, "ns")
