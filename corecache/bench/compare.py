"""Figures and regressions: every number a run produces, flattened to
``section/row/column`` keys with a unit that says which way is better, and
the comparison of a run with a saved baseline (``--compare``).

What "worse" means depends on the unit: more ns/op, more bytes per entry,
a lower hit rate, fewer GB/s or Mops/s.  A figure is a regression when it is
worse than the baseline by more than the tolerance (relative: 10 % by
default) *and* by more than the unit's noise floor (half a nanosecond, half
a point of hit rate, one byte), so that a 9 ns operation that measures 10 ns
does not fail a build.  Tail figures (99th percentiles, multi-thread
throughput) scatter far more from run to run than medians do, and get their
own, wider tolerance (50 % by default).

By default only corecache's own figures can fail a comparison; the peers'
and the references' (dict, functools, queue) are compared too with
``--compare-peers``, and their drift is always reported, because a reference
that moved says the machine moved.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

FORMAT = 1

# unit -> (higher is better?, noise floor in the unit)
UNITS: Dict[str, Tuple[bool, float]] = {
    "ns": (False, 0.5),
    "bytes": (False, 1.0),
    "hit rate": (True, 0.005),
    "GB/s": (True, 0.0),
    "Mops/s": (True, 0.0),
    "s": (False, 0.0),
    "sets/s": (True, 0.0),
    "round trips": (False, 0.0),
    "gets/s": (True, 0.0),
    "ms": (False, 0.0),
}

REFERENCES = ("dict", "functools", "functools[py]", "queue", "unregistered", "optimal")


@dataclass
class Figure:
    key: str                # section/row/column
    value: float
    unit: str               # a key of UNITS
    who: str                # the implementation measured
    tail: bool = False      # a 99th percentile or a multi-thread figure

    @property
    def higher_is_better(self) -> bool:
        return UNITS[self.unit][0]

    @property
    def ours(self) -> bool:
        return self.who.startswith("corecache")


def table_figures(section: str, results: Dict[str, Any], unit: str,
                  who_is_row: bool = False) -> List[Figure]:
    """Figures of a {row: {column: value}} table (non-dict rows skipped)."""
    out = []
    for row, cols in results.items():
        if not isinstance(cols, dict):
            continue
        for col, v in cols.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(Figure(f"{section}/{row}/{col}", float(v), unit,
                                  row if who_is_row else col))
    return out


def to_json(figures: Iterable[Figure]) -> Dict[str, Dict[str, Any]]:
    out = {}
    for f in figures:
        if isinstance(f.value, float) and not math.isfinite(f.value):
            continue
        d = asdict(f)
        del d["key"]
        out[f.key] = d
    return out


def from_json(figs: Dict[str, Dict[str, Any]]) -> Dict[str, Figure]:
    out = {}
    for key, d in figs.items():
        if d.get("unit") not in UNITS:
            continue                 # a unit this version does not know
        out[key] = Figure(key, float(d["value"]), d["unit"], str(d.get("who", "")),
                          bool(d.get("tail", False)))
    return out


def load(path: str) -> Dict[str, Any]:
    """A file written by --json, checked for the parts --compare needs."""
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("figures"), dict):
        raise ValueError(f"{path}: not a corecache benchmark JSON file (no 'figures'); "
                         f"write one with --json")
    return data


@dataclass
class Change:
    key: str
    unit: str
    who: str
    base: float
    current: float
    worse_by: float          # relative: +0.25 is 25 % worse, -0.1 is 10 % better
    tolerance: float
    regression: bool
    counted: bool            # whether it can fail the comparison
    tail: bool = False


def worse_by(base: float, current: float, higher_is_better: bool) -> float:
    """How much worse current is than base, relative to base (negative:
    better).  A zero baseline compares absolutely."""
    if higher_is_better:
        diff = base - current
    else:
        diff = current - base
    if base == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / abs(base)


def compare(base: Dict[str, Figure], current: Dict[str, Figure], tolerance: float = 0.10,
            tail_tolerance: float = 0.50, peers: bool = False) -> List[Change]:
    """Every figure present in both, with its verdict."""
    out = []
    for key in sorted(set(base) & set(current)):
        b, c = base[key], current[key]
        if b.unit != c.unit or not (math.isfinite(b.value) and math.isfinite(c.value)):
            continue
        higher, floor = UNITS[c.unit]
        w = worse_by(b.value, c.value, higher)
        tol = tail_tolerance if (b.tail or c.tail) else tolerance
        absolute = (b.value - c.value) if higher else (c.value - b.value)
        regression = w > tol and absolute > floor
        out.append(Change(key, c.unit, c.who, b.value, c.value, w, tol, regression,
                          counted=c.ours or peers, tail=b.tail or c.tail))
    return out


def summary(changes: List[Change], base_info: Dict[str, Any], cur_info: Dict[str, Any],
            missing: int, new: int, limit: int = 15) -> Tuple[str, int]:
    """(report text, number of counted regressions)."""
    lines = []
    differs = sorted(k for k in set(base_info) | set(cur_info)
                     if base_info.get(k) != cur_info.get(k))
    if differs:
        lines.append("note: the baseline was measured with a different " + ", ".join(differs)
                     + "; figures may not be comparable")
    refs = [c for c in changes if c.who in REFERENCES and c.unit == "ns" and not c.tail]
    if refs:
        drift = sorted(c.worse_by for c in refs)[len(refs) // 2]
        lines.append(f"reference figures (dict, functools, queue) moved by {drift:+.1%} "
                     f"(median of {len(refs)}): "
                     + ("the machine itself is slower or busier than at the baseline"
                        if drift > 0.05 else "the machine is comparable"))
    counted = [c for c in changes if c.counted]
    bad = [c for c in counted if c.regression]
    lines.append(f"compared {len(counted)} figures ({len(changes)} in both; {missing} only in "
                 f"the baseline, {new} only in this run): {len(bad)} worse than the "
                 f"baseline beyond tolerance")
    for c in sorted(bad, key=lambda c: -c.worse_by)[:limit]:
        lines.append(f"  WORSE  {c.key}: {_fmt(c.base, c.unit)} -> {_fmt(c.current, c.unit)} "
                     f"({c.worse_by:+.1%} worse, tolerance {c.tolerance:.0%})")
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more")
    better = sorted((c for c in counted if c.worse_by < -c.tolerance), key=lambda c: c.worse_by)
    for c in better[:5]:
        lines.append(f"  better {c.key}: {_fmt(c.base, c.unit)} -> {_fmt(c.current, c.unit)} "
                     f"({-c.worse_by:.1%} better)")
    return "\n".join(lines), len(bad)


def _fmt(v: float, unit: str) -> str:
    if unit == "hit rate":
        return f"{v:.3f}"
    return f"{v:.1f} {unit}"


def comparable_info(data: Dict[str, Any]) -> Dict[str, Any]:
    """What must match for figures to be comparable: machine, Python,
    corecache build and the run's options."""
    m = data.get("machine", {})
    info = {k: m.get(k) for k in ("cpu", "python", "corecache")}
    info.update({f"option {k}": v for k, v in sorted(data.get("options", {}).items())})
    return info


def run_compare(base_path: str, current: Dict[str, Any], tolerance: float,
                tail_tolerance: float, peers: bool) -> Tuple[str, int]:
    base = load(base_path)
    b, c = from_json(base["figures"]), from_json(current["figures"])
    changes = compare(b, c, tolerance, tail_tolerance, peers)
    text, bad = summary(changes, comparable_info(base), comparable_info(current),
                        missing=len(set(b) - set(c)), new=len(set(c) - set(b)))
    if not any(ch.counted for ch in changes):
        return text + "\nerror: no figure in common with the baseline: nothing was compared", -1
    return text, bad
