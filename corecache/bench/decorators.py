"""Section "lru_cache": cached-function calls against functools.lru_cache
and the installed decorator peers (fastcache, cachebox, cachetools,
moka-py, theine): a hit with one int argument (100 cached keys cycled), a
hit with two positional and one keyword argument, a miss that evicts
(always-new keys into a full 1024-entry cache), and a hit with a TTL; plus
the pure twin against CPython's pure-Python lru_cache (Lib/functools.py
without _functools)."""
from __future__ import annotations

import functools
import importlib
import sys
from datetime import timedelta
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .compare import Figure, table_figures
from .report import columns, table
from .targets import INFO, Target, ratio
from .timing import Case, run_cases

NAME = "lru_cache"
TITLE = "cached function calls"
CAPACITY = 1024
HOT = 100
BASE = 1 << 20
TTL = 3600.0


def target(x: Any, y: Any = None, z: Any = None) -> Any:
    return x


def pure_functools() -> Any:
    """functools without its C accelerator, as CPython's test suite gets it."""
    saved = {name: sys.modules.pop(name) for name in ("functools", "_functools")
             if name in sys.modules}
    sys.modules["_functools"] = None  # type: ignore[assignment]  # blocks the import
    try:
        return importlib.import_module("functools")
    finally:
        del sys.modules["functools"]
        sys.modules.pop("_functools", None)
        sys.modules.update(saved)


def decorators(libs: Optional[List[str]]) -> List[Tuple[str, Callable[[Optional[float]], Any]]]:
    """(name, make(ttl) -> decorator); make returns None when the library
    has no TTL."""
    from corecache import _impl
    out: List[Tuple[str, Callable[[Optional[float]], Any]]] = [
        ("functools", lambda ttl: None if ttl else functools.lru_cache(maxsize=CAPACITY)),
    ]
    py_functools = pure_functools()
    out.append(("functools[py]",
                lambda ttl: None if ttl else py_functools.lru_cache(maxsize=CAPACITY)))
    for kind in ("c", "py"):
        mod = _impl.compiled_module("lru") if kind == "c" else _impl.pure_module("lru")
        if mod is not None:
            out.append((f"corecache[{kind}]",
                        lambda ttl, mod=mod: mod.lru_cache(maxsize=CAPACITY, ttl=ttl)))
    try:
        import fastcache
        out.append(("fastcache", lambda ttl: None if ttl else fastcache.clru_cache(maxsize=CAPACITY)))
    except ImportError:
        pass
    try:
        import cachebox
        out.append(("cachebox", lambda ttl: cachebox.cached(
            cachebox.LRUCache(CAPACITY) if ttl is None else cachebox.TTLCache(CAPACITY, ttl))))
    except ImportError:
        pass
    try:
        import cachetools
        out.append(("cachetools", lambda ttl: cachetools.cached(
            cachetools.LRUCache(CAPACITY) if ttl is None else cachetools.TTLCache(CAPACITY, ttl))))
    except ImportError:
        pass
    try:
        import moka_py
        out.append(("moka-py", lambda ttl: moka_py.cached(maxsize=CAPACITY, ttl=ttl)))
    except ImportError:
        pass
    try:
        import theine
        out.append(("theine", lambda ttl: theine.Memoize(
            CAPACITY, None if ttl is None else timedelta(seconds=ttl))))
    except ImportError:
        pass
    if libs:
        out = [d for d in out if d[0].startswith("functools") or any(l in d[0] for l in libs)]
    return out


OPERATIONS = [
    # (row, body, key stream, ttl)
    ("hit, 1 int arg", "f(k)", "hot", None),
    ("hit, 2 pos + 1 kw", "f(k, 2, z=3)", "hot", None),
    ("miss with eviction", "f(k)", "new", None),
    ("hit, 1 int arg, ttl", "f(k)", "hot", TTL),
]


def _warm(f: Any, body: str, keys: Sequence[int]) -> None:
    exec(f"for k in _keys:\n    {body}", {"f": f, "_keys": keys})


def cases(libs: Optional[List[str]], n: int) -> List[Case]:
    present = list(range(BASE, BASE + CAPACITY))
    hot = (present[:HOT] * (n // HOT + 1))[:n]
    fresh: Dict[int, List[int]] = {}

    def new_keys(r: int) -> List[int]:
        if r not in fresh:
            fresh.clear()
            start = BASE * 4 + (r + 10) * n
            fresh[r] = list(range(start, start + n))
        return fresh[r]

    out = []
    for row, body, stream, ttl in OPERATIONS:
        for name, make in decorators(libs):
            deco = make(ttl)
            if deco is None:
                continue
            if stream == "hot":
                f = deco(target)
                _warm(f, body, present)
                case = Case(f"{row}|{name}", body, lambda r, f=f: {"f": f}, lambda r: hot)
            else:
                def setup(r: int, deco: Any = deco, body: str = body) -> Dict[str, Any]:
                    f = deco(target)
                    _warm(f, body, present)          # full before the timed misses
                    return {"f": f}
                case = Case(f"{row}|{name}", body, setup, new_keys)
            out.append(case)
    return out


def run(opts: Any) -> Dict[str, Dict[str, float]]:
    """{operation: {implementation: median ns/call}}"""
    batch = cases(opts.libs, opts.n)
    run_cases(batch, opts.repeats)
    results: Dict[str, Dict[str, float]] = {}
    for case in batch:
        row, name = case.name.split("|")
        results.setdefault(row, {})[name] = case.median
    return results


def report(results: Dict[str, Dict[str, float]], opts: Any) -> str:
    return table(TITLE, results, columns(results), "functools", unit="ns/call")


def targets(results: Dict[str, Dict[str, float]]) -> List[Target]:
    """Issue 3's targets, checks: ratios to functools measured in this run,
    side by side in one round-robin batch.  The peers' figures are
    information: corecache promises to beat functools, not every library."""
    out: List[Target] = []
    c = "corecache[c]"
    v = sys.version_info[:2]
    hit_limit = 0.75 if v <= (3, 11) else 0.6

    def cmp(row_a: str, a: str, row_b: str, b: str, limit: float, text: str) -> None:
        x, y = results.get(row_a, {}).get(a), results.get(row_b, {}).get(b)
        out.append(ratio(text, x, y, limit, missing=f"needs {a} and {b}"))

    cmp("hit, 1 int arg", c, "hit, 1 int arg", "functools", hit_limit,
        f"hit, 1 int arg vs functools (Python {v[0]}.{v[1]})")
    cmp("hit, 2 pos + 1 kw", c, "hit, 2 pos + 1 kw", "functools", 0.9,
        "hit, 2 pos + 1 kw vs functools")
    cmp("miss with eviction", c, "miss with eviction", "functools", 1.0,
        "miss with eviction vs functools")
    cmp("hit, 1 int arg, ttl", c, "hit, 1 int arg", "functools", 1.0,
        "hit with ttl= vs functools hit without TTL")
    cmp("hit, 1 int arg", "corecache[py]", "hit, 1 int arg", "functools[py]", 1.5,
        "pure twin hit vs pure-Python functools hit")
    for row in ("hit, 1 int arg", "hit, 2 pos + 1 kw", "miss with eviction", "hit, 1 int arg, ttl"):
        ours = results.get(row, {}).get(c)
        if ours is None:
            continue
        for peer in ("fastcache", "cachebox", "cachetools", "moka-py", "theine"):
            theirs = results.get(row, {}).get(peer)
            if theirs is not None:
                out.append(ratio(f"{row}: corecache vs {peer}", ours, theirs, 1.0, kind=INFO,
                                 why="a peer, for comparison"))
    return out


def figures(results: Dict[str, Dict[str, float]]) -> List[Figure]:
    return table_figures(NAME, results, "ns")
