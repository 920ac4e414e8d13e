"""Section "metrics": a ``c[k]`` hit on a cache registered with
``corecache.metrics`` against the same hit on an unregistered cache, both
in this process and timed round-robin, for each implementation.  The
collector reads ``stats()`` only when Prometheus scrapes, so a registered
cache runs exactly the same code and the two should cost the same."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .compare import Figure, table_figures
from .targets import CHECK, Target, ratio
from .report import table
from .timing import Case, fill, run_cases

NAME = "metrics"
TITLE = "c[k] hit, registered with corecache.metrics or not"

CAPACITY = 1024
HOT = 100
BASE = 1 << 20
LIMIT = 1.05        # "costs the same", allowing for timing noise
REPEATS = 11

COLUMNS = ["unregistered", "registered"]


def _peers(libs: Optional[List[str]]) -> List[Any]:
    from .mapping import ADAPTIVE, peers
    return [p for p in peers(libs) if p.name.startswith("corecache") and p.name != ADAPTIVE]


def run(opts: Any) -> Dict[str, Dict[str, float]]:
    """{implementation: {"unregistered"/"registered": median ns/op}}; empty
    when prometheus-client is not installed."""
    try:
        from prometheus_client import CollectorRegistry, generate_latest

        from .. import metrics
    except ImportError:
        return {}
    keys = list(range(BASE, BASE + CAPACITY))
    hot = (keys[:HOT] * (opts.n // HOT + 1))[:opts.n]
    registry = CollectorRegistry()
    cases, keep = [], []
    for peer in _peers(opts.libs):
        plain, watched = peer.make(CAPACITY, None), peer.make(CAPACITY, None)
        fill(peer.set, plain, keys)
        fill(peer.set, watched, keys)
        metrics.register(watched, f"bench-{peer.name}", registry=registry)
        keep += [plain, watched]        # registered objects are held weakly
        for column, obj in zip(COLUMNS, (plain, watched)):
            cases.append(Case(f"{peer.name}|{column}", "o[k]",
                              lambda r, obj=obj: {"o": obj}, lambda r: hot))
    # one scrape first: the registered caches really are being exported
    scrape = generate_latest(registry).decode()
    assert all(f'cache="bench-{p.name}"' in scrape for p in _peers(opts.libs))
    # identical code registered or not, held to 5 %: more repeats than the
    # mode's (the section is short) keep noise under that
    run_cases(cases, max(opts.repeats, REPEATS))
    results: Dict[str, Dict[str, float]] = {}
    for case in cases:
        impl, column = case.name.split("|")
        results.setdefault(impl, {})[column] = case.median
    return results


def report(results: Dict[str, Dict[str, float]], opts: Any) -> str:
    if not results:
        return f"{TITLE}: n/a (prometheus-client is not installed)"
    return table(TITLE, results, COLUMNS, "unregistered")


def targets(results: Dict[str, Dict[str, float]]) -> List[Target]:
    """Checks: registering changes nothing on the hit path (the collector
    reads stats() at scrape time).  Both caches are the same class, timed
    side by side."""
    if not results:
        return [Target("registered vs unregistered c[k] hit", CHECK, f"<= {LIMIT:g}x",
                       why="needs prometheus-client")]
    out: List[Target] = []
    for impl, figs in results.items():
        out.append(ratio(f"{impl} c[k] hit registered vs unregistered", figs.get("registered"),
                         figs.get("unregistered"), LIMIT, missing="no figure"))
    return out


def figures(results: Dict[str, Dict[str, float]]) -> List[Figure]:
    return table_figures(NAME, results, "ns", who_is_row=True)
