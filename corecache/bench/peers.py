"""The mappings corecache is compared with, each only when it is installed.

Each peer says how to build a bounded cache (optionally with a TTL for
every entry) and how to spell a lookup, a get and a set on it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional


@dataclass
class MappingPeer:
    name: str
    version: str
    make: Callable[[int, Optional[float]], Any]   # (maxsize, ttl or None)
    getitem: Optional[str] = "o[k]"
    get: str = "o.get(k)"
    set: str = "o[k] = v"
    ttl: bool = True                               # supports a per-cache TTL
    evicts: bool = True
    lookup: str = "o.get(k)"                       # the value, or None on a miss
    policy: str = "LRU"                            # what it evicts
    thread_safe: bool = True                       # usable from threads without a lock


def _version(module: str) -> Optional[str]:
    try:
        from importlib.metadata import version
        return version(module)
    except Exception:
        try:
            mod = importlib.import_module(module)
        except Exception:
            return None
        return str(getattr(mod, "__version__", "?"))


def corecache_peers() -> List[MappingPeer]:
    import corecache
    from corecache import _impl
    out = []
    for kind in ("c", "py"):
        if kind == "c" and _impl.compiled_lru() is None:
            continue
        cls = _impl.lru_class(kind)
        out.append(MappingPeer(
            f"corecache[{kind}]", corecache.__version__,
            lambda n, ttl, cls=cls: cls(n, ttl)))
    return out


ADAPTIVE = "corecache adaptive[c]"


def adaptive_peers() -> List[MappingPeer]:
    """The compiled Cache(policy="adaptive"), when the compiled core is there."""
    import corecache
    from corecache import _impl
    mod = _impl.compiled_lru()
    if mod is None or not hasattr(mod, "Cache"):
        return []
    cls = mod.Cache
    return [MappingPeer(ADAPTIVE, corecache.__version__,
                        lambda n, ttl: cls(n, ttl, policy="adaptive"), policy="adaptive")]


def installed_peers() -> List[MappingPeer]:
    peers: List[MappingPeer] = []

    def add(dist: str, factory: Callable[[], MappingPeer]) -> None:
        if _version(dist) is None:
            return
        try:
            peers.append(factory())
        except ImportError:
            pass

    def lru_dict() -> MappingPeer:
        import lru
        # a C type whose methods hold the GIL throughout
        return MappingPeer("lru-dict", _version("lru-dict") or "?",
                           lambda n, ttl: lru.LRU(n), ttl=False)

    def cachebox() -> MappingPeer:
        import cachebox
        return MappingPeer("cachebox", _version("cachebox") or "?",
                           lambda n, ttl: cachebox.LRUCache(n) if ttl is None
                           else cachebox.TTLCache(n, ttl))

    def cachetools() -> MappingPeer:
        import cachetools
        # "not thread-safe": its docs tell users to hold a lock
        return MappingPeer("cachetools", _version("cachetools") or "?",
                           lambda n, ttl: cachetools.LRUCache(n) if ttl is None
                           else cachetools.TTLCache(n, ttl), thread_safe=False)

    def moka() -> MappingPeer:
        import moka_py
        return MappingPeer("moka-py", _version("moka-py") or "?",
                           lambda n, ttl: moka_py.Moka(n) if ttl is None
                           else moka_py.Moka(n, ttl=ttl),
                           getitem=None, set="o.set(k, v)", policy="TinyLFU")

    add("lru-dict", lru_dict)
    add("cachebox", cachebox)
    add("cachetools", cachetools)
    add("moka-py", moka)
    return peers


def dict_peer() -> MappingPeer:
    import sys
    return MappingPeer("dict", sys.version.split()[0], lambda n, ttl: {}, evicts=False,
                       ttl=False, policy="unbounded")


def theine_peer() -> Optional[MappingPeer]:
    """theine's Cache (W-TinyLFU): slow to set, so only in the workload
    sections, not in the per-operation table."""
    if _version("theine") is None:
        return None
    try:
        import theine
    except ImportError:
        return None
    # get() returns (value, found)
    return MappingPeer("theine", _version("theine") or "?", lambda n, ttl: theine.Cache(n),
                       getitem=None, get="o.get(k)", lookup="o.get(k)[0]",
                       set="o.set(k, v)", ttl=False, policy="W-TinyLFU")


def policy_peers() -> List[MappingPeer]:
    """Other eviction policies of the installed peers, for hit rates."""
    out: List[MappingPeer] = []
    if _version("cachetools"):
        try:
            import cachetools
            out.append(MappingPeer("cachetools LFU", _version("cachetools") or "?",
                                   lambda n, ttl: cachetools.LFUCache(n), policy="LFU",
                                   ttl=False, thread_safe=False))
        except ImportError:
            pass
    if _version("cachebox"):
        try:
            import cachebox
            out.append(MappingPeer("cachebox LFU", _version("cachebox") or "?",
                                   lambda n, ttl: cachebox.LFUCache(n), policy="LFU", ttl=False))
            out.append(MappingPeer("cachebox FIFO", _version("cachebox") or "?",
                                   lambda n, ttl: cachebox.FIFOCache(n), policy="FIFO",
                                   ttl=False))
        except ImportError:
            pass
    return out


def workload_peers(libs: Optional[List[str]], policies: bool = False,
                   adaptive: bool = False) -> List[MappingPeer]:
    """dict, corecache (with `adaptive`, its compiled adaptive Cache too) and
    every installed peer (theine too; with `policies`, the peers' other
    eviction policies as well), filtered by --libs."""
    every = [dict_peer()] + corecache_peers() + (adaptive_peers() if adaptive else [])
    every += installed_peers()
    t = theine_peer()
    if t is not None:
        every.append(t)
    if policies:
        every += policy_peers()
    if not libs:
        return every
    return [p for p in every if p.name == "dict" or any(lib in p.name for lib in libs)]


def versions() -> Dict[str, str]:
    out = {}
    for dist in ("cachetools", "cachebox", "lru-dict", "moka-py", "theine", "fastcache"):
        v = _version(dist)
        if v:
            out[dist] = v
    return out
