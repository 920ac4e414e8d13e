"""Timing loops: ns per operation as the median over repeats, with the cost
of the loop itself measured the same way and subtracted.

Each repeat runs its key stream in SLICES consecutive slices and keeps the
fastest slice's ns/op: on a machine shared with other work, a slice during
which the process lost its core is slower by whole scheduler time slices,
and would otherwise decide the figure (the median of a few repeats is not
enough when most repeats are interrupted somewhere).  The key stream, and so
the work, is the same as one uninterrupted loop's.

A measured body runs as ``for k in keys: <body>`` inside a generated
function whose free names are locals (bound as default arguments), so the
figure is the operation and not global-name lookups.  Several candidates
are timed round-robin, repeat by repeat, so that drift in the machine's
speed (turbo, other load) spreads evenly over them.
"""
from __future__ import annotations

import bisect
import gc
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

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


SLICES = 5


def slices(keys: Sequence[Any], n: int = SLICES) -> List[Sequence[Any]]:
    """`keys` cut into `n` consecutive slices of (nearly) equal length, in
    order; fewer when there are fewer keys."""
    n = max(1, min(n, len(keys)))
    step, extra = divmod(len(keys), n)
    out, start = [], 0
    for i in range(n):
        end = start + step + (i < extra)
        out.append(keys[start:end])
        start = end
    return out


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
                parts = slices(case.keys(r))
                env = case.setup(r)
                run = compile_loop(case.body, env)
                base = _empty_loop_ns(parts[0])
                best = float("inf")
                for part in parts:
                    t0 = _perf()
                    run(part)
                    best = min(best, (_perf() - t0) / len(part))
                if r >= 0:
                    case.samples.append(max(best - base, 0.0))
    finally:
        if gc_was:
            gc.enable()


def compile_function(src: str, env: Dict[str, Any], name: str = "run") -> Callable[..., Any]:
    """exec `src` (which defines `name`) with `env` as its globals; the
    generated loops bind what they use as default arguments, so that the
    measured body pays for local, not global, lookups."""
    ns = dict(env)
    exec(compile(src, f"<bench: {name}>", "exec"), ns)
    return ns[name]  # type: ignore[no-any-return]


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted samples, by the
    nearest-rank method (an actual sample, no interpolation)."""
    if not sorted_samples:
        return float("nan")
    rank = max(1, -(-len(sorted_samples) * q // 100))
    return float(sorted_samples[min(int(rank), len(sorted_samples)) - 1])


def clock_tick(samples: Sequence[float]) -> float:
    """The step the clock reads in, estimated from timer-pair samples: the
    distance between their two most frequent values when that is small
    (virtual machines often count in 10 ns steps), else 1 ns."""
    counts: Dict[int, int] = {}
    for v in samples:
        counts[int(round(v))] = counts.get(int(round(v)), 0) + 1
    top = sorted(counts, key=lambda v: -counts[v])[:2]
    if len(top) < 2:
        return 1.0
    step = abs(top[0] - top[1])
    return float(step) if 1 <= step <= 50 else 1.0


def grouped_median(sorted_samples: Sequence[float], tick: float) -> float:
    """The median of samples read from a clock that counts in `tick` steps,
    interpolated within the step (the median of grouped data): a 23 ns
    operation reads 20 ns seven times in ten and 30 ns three times, so
    the plain median says 20 and this says about 22."""
    n = len(sorted_samples)
    if n == 0:
        return float("nan")
    if tick <= 1:
        return float(statistics.median(sorted_samples))
    m = round(statistics.median_low(sorted_samples) / tick)
    lo = bisect.bisect_left(sorted_samples, (m - 0.5) * tick)
    hi = bisect.bisect_left(sorted_samples, (m + 0.5) * tick)
    inside = hi - lo
    if inside <= 0:
        return float(statistics.median(sorted_samples))
    return (m - 0.5) * tick + (n / 2 - lo) / inside * tick


def timer_overhead(samples: int = 20_000) -> Tuple[float, float]:
    """(median cost, clock step) of the back-to-back ``perf_counter_ns()``
    pair that brackets one operation in the per-operation loops."""
    perf = _perf
    out: List[float] = []
    append = out.append
    for _ in range(samples):
        t0 = perf()
        t1 = perf()
        append(t1 - t0)
    out.sort()
    tick = clock_tick(out)
    return grouped_median(out, tick), tick


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b <= 0:
        return None
    return a / b
