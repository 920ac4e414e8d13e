"""csrc/cc_policy.c and its pure-Python model make the same decisions.

A small C program (tests/c/policy_driver.c, compiled here with the system C
compiler; not part of the package) drives the C policy over a real cc_lru_t
table from a line protocol on stdin.  The same operations go through
corecache._pure.adaptive.AdaptivePolicy, and every line of output is
compared: which tokens each insert or resize evicted (the candidate when it
was rejected, the victim when it was admitted), and, at every dump, the
climber's state and the whole table in list order with each entry's segment
and pending hits.  The driver checks cc_lru_check and cc_policy_check after
every command.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import pytest

from corecache._pure.adaptive import AdaptivePolicy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
SOURCES = ["cc_policy.c", "cc_lru.c", "cc_expiry.c", "cc_clock.c"]

Op = Tuple  # ("i", token, hash) | ("h", token) | ...


def _compiler() -> Optional[str]:
    for cc in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _build(tmp: str, debug: bool) -> str:
    cc = _compiler()
    if cc is None or not sys.platform.startswith(("linux", "darwin")):
        pytest.skip("no C compiler for the policy driver")
    exe = os.path.join(tmp, "policy_driver_debug" if debug else "policy_driver")
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-I" + CSRC]
    flags += ["-O0", "-g", "-DCC_DEBUG", "-UNDEBUG"] if debug else ["-O2"]
    cmd = [cc, *flags, *(os.path.join(CSRC, s) for s in SOURCES),
           os.path.join(ROOT, "tests", "c", "policy_driver.c"), "-o", exe, "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _build(str(tmp_path_factory.mktemp("policy")), debug=False)


@pytest.fixture(scope="module")
def debug_driver(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _build(str(tmp_path_factory.mktemp("policy_debug")), debug=True)


def run_c(exe: str, ops: Sequence[Op]) -> List[str]:
    text = "".join(" ".join(str(x) for x in op) + "\n" for op in ops)
    proc = subprocess.run([exe], input=text, capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, (proc.returncode, lines[-3:], proc.stderr[-2000:])
    return lines


def _dump(p: AdaptivePolicy) -> str:
    s = p.sizes()
    head = (f"d {p.window_max} {p.step} {p.last_dir} {s['window']} {s['probation']} "
            f"{s['protected']} {p.votes_window} {p.votes_main} {p.window_seq} {p.main_seq} "
            f"{p.ema} {p.miss_ema} {p.burst_end} {p.agings} {p.bursts} |")
    seg = {"window": 1, "probation": 2, "protected": 3}
    return head + "".join(f" {t}:{seg[p.segment(t)]}:{p.pending(t)}" for t in p.order())


def _evict_line(p: AdaptivePolicy) -> str:
    out = ["e"]
    while True:
        v = p.evict()
        if v is None:
            return " ".join(out)
        out.append(str(v))


def run_model(ops: Sequence[Op]) -> List[str]:
    p = AdaptivePolicy(1)
    out = []
    for op in ops:
        kind = op[0]
        if kind == "n":
            p = AdaptivePolicy(op[1])
            out.append("ok")
        elif kind == "i":
            p.insert(op[1], op[2])
            out.append(_evict_line(p))
        elif kind == "h":
            p.hit(op[1])
            out.append("h")
        elif kind == "r":
            p.remove(op[1])
            out.append("r")
        elif kind == "s":
            p.resize(op[1])
            out.append(_evict_line(p))
        elif kind == "c":
            p.clear()
            out.append("c")
        elif kind == "k":
            out.append("k")              # compaction renumbers C's entries only
        elif kind == "q":
            out.append(f"f {p.frequency(op[1])}")
        elif kind == "d":
            out.append(_dump(p))
        p.check()
    return out


def compare(exe: str, ops: Sequence[Op]) -> List[str]:
    c_lines = run_c(exe, ops)
    py_lines = run_model(ops)
    for n, (op, a, b) in enumerate(zip(ops, c_lines, py_lines)):
        assert a == b, f"step {n} {op}: C says {a!r}, the model {b!r}"
    assert len(c_lines) == len(py_lines) == len(ops)
    return py_lines


# ---- operation streams -------------------------------------------------------

HASHES_EDGE = [0, 1, -2, -(2 ** 63), 2 ** 63 - 1, 2 ** 61 - 1, -(2 ** 61), 12345]


def random_ops(seed: int, n: int, capacity: int, keyspace: int,
               collide: bool = True) -> List[Op]:
    """A random mix: hits on live tokens, inserts (misses), removals, the odd
    resize, clear and compaction, and dumps.  Tokens come back after they
    leave, with their old hash or a new one; some hashes repeat on purpose
    (equal hashes of unequal keys, Python's -2 for -1, extremes).  A model
    runs alongside to know which tokens are live."""
    rng = random.Random(seed)
    hashes: Dict[int, int] = {}
    ops: List[Op] = [("n", capacity)]
    p = AdaptivePolicy(capacity)

    def new_hash() -> int:
        r = rng.random()
        if collide and r < 0.05:
            return rng.choice(HASHES_EDGE)
        if collide and r < 0.15 and hashes:
            return rng.choice(list(hashes.values()))       # a collision
        return rng.randrange(-(2 ** 63), 2 ** 63)

    def evict_all() -> None:
        while p.evict() is not None:
            pass

    weights = [1.0 / (k + 1) for k in range(keyspace)]
    for _ in range(n):
        r = rng.random()
        if r < 0.002:
            ops.append(("c",))
            p.clear()
        elif r < 0.006:
            cap = max(1, int(p.capacity * rng.choice([0.5, 0.8, 1.25, 2.0]))
                      + rng.randrange(-1, 2))
            ops.append(("s", cap))
            p.resize(cap)
            evict_all()
        elif r < 0.01:
            ops.append(("k",))
        elif r < 0.03:
            ops.append(("d",))
        elif r < 0.035:
            ops.append(("q", new_hash()))
        elif r < 0.06 and len(p):
            t = rng.choice(p.order())
            ops.append(("r", t))
            p.remove(t)
        else:
            k = rng.choices(range(keyspace), weights=weights)[0]
            if k in p:
                ops.append(("h", k))
                p.hit(k)
            else:
                if k not in hashes or rng.random() < 0.1:
                    hashes[k] = new_hash()
                ops.append(("i", k, hashes[k]))
                p.insert(k, hashes[k])
                evict_all()
    ops.append(("d",))
    return ops


class Streamer:
    """Cache-aside ops over key streams, against a model running alongside
    (to know what is live).  Keys become small tokens (the driver's range);
    hashes stay the keys'."""

    def __init__(self, capacity: int) -> None:
        self.p = AdaptivePolicy(capacity)
        self.ops: List[Op] = [("n", capacity)]
        self.tokens: Dict[int, int] = {}

    def _evict_all(self) -> None:
        while self.p.evict() is not None:
            pass

    def stream(self, keys: Iterable[int], dump_every: int = 500) -> None:
        p, ops = self.p, self.ops
        for n, key in enumerate(keys):
            k = self.tokens.setdefault(key, len(self.tokens))
            if k in p:
                p.hit(k)
                ops.append(("h", k))
            else:
                p.insert(k, hash(key))
                self._evict_all()
                ops.append(("i", k, hash(key)))
            if n % dump_every == 0:
                ops.append(("d",))
        ops.append(("d",))

    def resize(self, capacity: int) -> None:
        self.p.resize(capacity)
        self._evict_all()
        self.ops.append(("s", capacity))


def stream_ops(keys: Iterable[int], capacity: int, dump_every: int = 500) -> List[Op]:
    s = Streamer(capacity)
    s.stream(keys, dump_every)
    return s.ops


# ---- tests -------------------------------------------------------------------

@pytest.mark.parametrize("capacity", [1, 2, 3, 5, 10, 37, 100])
@pytest.mark.parametrize("seed", [1, 2])
def test_random_operations_decide_alike(driver: str, capacity: int, seed: int) -> None:
    ops = random_ops(seed * 1000 + capacity, 2500, capacity, keyspace=3 * capacity + 5)
    compare(driver, ops)


def test_debug_build_checks_after_every_mutation(debug_driver: str) -> None:
    # CC_DEBUG runs cc_policy_check inside the C code after each mutation
    for capacity in (1, 4, 50):
        compare(debug_driver, random_ops(77 + capacity, 3000, capacity, keyspace=4 * capacity))


def _keys(pattern: str, n: int, keyspace: int, seed: int) -> List[int]:
    from corecache.bench import workloads
    return workloads.trace(pattern, n, keyspace, seed) if pattern in {
        t[0] for t in workloads.TRACES} else workloads.stream(pattern, n, keyspace, seed)


@pytest.mark.parametrize("pattern,capacity,n", [
    ("zipf(0.99)", 100, 60_000),
    ("recency", 100, 60_000),        # the window climbs to the top
    ("shifting", 400, 160_000),      # shift bursts
    ("loop", 50, 30_000),
    ("hotspot", 300, 60_000),
])
def test_workloads_decide_alike(driver: str, pattern: str, capacity: int, n: int) -> None:
    keys = _keys(pattern, n, 2_000 if pattern != "shifting" else 4_000, seed=5)
    lines = compare(driver, stream_ops(keys, capacity))
    last = lines[-1].split()
    window_max, agings, bursts = int(last[1]), int(last[14]), int(last[15])
    assert agings > 0
    if pattern == "recency":
        assert window_max > capacity // 2
    if pattern == "shifting":
        assert bursts > 0


def test_resizes_fold_and_unfold_the_sketch(driver: str) -> None:
    keys = _keys("zipf(0.99)", 30_000, 3_000, seed=9)
    s = Streamer(400)
    s.stream(keys[:10_000])
    for n, cap in enumerate((1000, 3000, 150, 40, 400, 7)):
        s.resize(cap)
        s.ops += [("q", hash(k)) for k in keys[:50]]
        s.ops.append(("d",))
        s.stream(keys[10_000 + 3000 * n:13_000 + 3000 * n])
    compare(driver, s.ops)


def test_negative_one_hashes_like_negative_two(driver: str) -> None:
    # hash(-1) == -2 in CPython: the policy only ever sees -2
    assert hash(-1) == -2
    ops: List[Op] = [("n", 4)] + [("i", t, hash(-1)) for t in range(8)] + [("q", -2), ("d",)]
    compare(driver, ops)


def test_the_driver_catches_a_bad_command(driver: str) -> None:
    proc = subprocess.run([driver], input="n 3\nh 1\n", capture_output=True, text=True)
    assert proc.returncode == 1
