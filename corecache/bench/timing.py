"""Timing loops: ns per operation as the median over repeats, with the cost
of the loop itself measured the same way and subtracted.

A measured body runs as ``for k in keys: <body>`` inside a generated
function whose free names are locals (bound as default arguments), so the
figure is the operation and not global-name lookups.  Several candidates
are timed round-robin, repeat by repeat, so that drift in the machine's
speed (turbo, other load) spreads evenly over them.
"""
from __future__ import annotations

import gc
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

_perf = time.perf_counter_ns


def fill(body: str, o: Any, keys: Sequence[Any], values: Optional[Sequence[Any]] = None) -> None:
    """Run a peer's set statement (spelled with o, k, v) for every key."""
    stmt = re.sub(r"\b([okv])\b", r"_\1", body)
    code = f"for _k, _v in zip(_keys, _values):\n    {stmt}"
    exec(code, {"_o": o, "_keys": keys, "_values": keys if values is None else values})


def compile_loop(body: str, env: Dict[str, Any]) -> Callable[[Sequence[Any]], None]:
    names = sorted(env)
    params = "".join(f", {n}=__env[{n!r}]" for n in names)
    src = f"def run(keys{params}):\n    for k in keys:\n        {body}\n"
    ns: Dict[str, Any] = {"__env": env}
    exec(compile(src, f"<bench: {body}>", "exec"), ns)
    return ns["run"]  # type: ignore[no-any-return]


@dataclass
class Case:
    """One thing to time: `body` over `keys(repeat)` with `env` prepared by
    `setup(repeat)` (which may rebuild state between repeats)."""

    name: str
    body: str
    setup: Callable[[int], Dict[str, Any]]
    keys: Callable[[int], Sequence[Any]]
    samples: List[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Relative interquartile range of the samples."""
        if len(self.samples) < 4:
            return 0.0
        q = statistics.quantiles(self.samples, n=4)
        return (q[2] - q[0]) / self.median if self.median else 0.0


def _empty_loop_ns(keys: Sequence[Any]) -> float:
    run = compile_loop("pass", {})
    best = []
    for _ in range(3):
        t0 = _perf()
        run(keys)
        best.append(_perf() - t0)
    return min(best) / len(keys)


def run_cases(cases: List[Case], repeats: int, warmup: int = 1) -> None:
    """Fill each case's `samples` with `repeats` ns/op figures."""
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(-warmup, repeats):
            for case in cases:
                keys = case.keys(r)
                env = case.setup(r)
                run = compile_loop(case.body, env)
                base = _empty_loop_ns(keys)
                t0 = _perf()
                run(keys)
                elapsed = _perf() - t0
                if r >= 0:
                    case.samples.append(max(elapsed / len(keys) - base, 0.0))
    finally:
        if gc_was:
            gc.enable()


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b <= 0:
        return None
    return a / b
