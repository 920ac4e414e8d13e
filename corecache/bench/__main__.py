"""python -m corecache.bench: how corecache compares, on this machine.

Every figure is measured in this one process (memory in fresh
subprocesses), repeated, and reported as the median, with ratios to
functools (decorators) or to a plain dict (mappings); peers are measured
only when installed (``pip install corecache[bench]``).  Each section
holds this run's own figures to its targets: a check (a miss fails the
run) or information (printed only); the table at the end says which, with
the limit, the figure and the verdict.  A run ends with the time it took.

Examples:
  python -m corecache.bench --quick                      # {quick}
  python -m corecache.bench --only workload --zipf 1.2 --read-mix 50,100
  python -m corecache.bench --json base.json             # save a baseline
  python -m corecache.bench --compare base.json          # exit 1 on a regression
  python -m corecache.bench --from-json run.json --plot run.png

Exit status: 0 when every check counted in this mode was met; 3 when one
missed; 1 when --compare finds a figure worse than the baseline beyond the
tolerance; 2 for a usage error or a comparison that compared nothing (1 and
2 before 3).  --smoke counts no check; a check that needs the default mode
is information in --quick.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import (aio, chunk, compare, decorators, distributed, hitrate, mapping, memory, metrics,
               pool, scaling, targets, workload, workloads)
from .peers import versions
from .report import machine

# Each section module has NAME, TITLE, run(opts) -> results (JSON-able),
# report(results, opts) -> str, targets(results) -> [(met?, text)] and
# figures(results) -> [Figure] (what --json saves and --compare compares).
# The order matters: chunk's pure-Python reference allocates 1 MiB blocks,
# which get faster once glibc has raised its mmap threshold after the large
# tables of workload/scaling were freed, so the sections that allocate
# little run first.
SECTIONS = [decorators, mapping, metrics, pool, chunk, distributed, aio, workload, hitrate,
            scaling, memory]

READ_MIXES = (50, 80, 90, 95, 100)
MIN_VALUE, MAX_VALUE = 64, 16 * 1024

# How long each mode takes on an idle 2-core machine: what --help, the
# README (tests/test_readme.py checks that it says the same) and the line
# that ends every run state.  (seconds, words)
DURATION: Dict[str, Tuple[float, str]] = {
    "smoke": (60, "under a minute"),
    "quick": (300, "about 4 minutes"),
    "default": (1500, "about 20 minutes"),
}

# Sizes of each mode.  smoke checks that everything runs (its figures mean
# little); the default mode is the one whose figures to publish.
MODES: Dict[str, Dict[str, Any]] = {
    "default": dict(n=200_000, repeats=11, keyspace=100_000, workload_ops=100_000,
                    workload_repeats=5, thread_ops=200_000, hitrate_accesses=400_000,
                    hitrate_keyspace=20_000, hitrate_fractions=[0.01, 0.05, 0.1],
                    scaling_sizes=[1_000, 10_000, 100_000, 1_000_000],
                    scaling_repeats=11, scaling_fill_budget=20.0, memory_entries=1_000_000,
                    chunk_mib=256),
    "quick": dict(n=50_000, repeats=5, keyspace=20_000, workload_ops=10_000,
                  workload_repeats=3, thread_ops=20_000, hitrate_accesses=60_000,
                  hitrate_keyspace=20_000, hitrate_fractions=[0.01, 0.05, 0.1],
                  scaling_sizes=[1_000, 10_000, 100_000, 1_000_000],
                  scaling_repeats=3, scaling_fill_budget=0.5, memory_entries=1_000_000,
                  chunk_mib=32),
    "smoke": dict(n=2_000, repeats=2, keyspace=2_000, workload_ops=1_000,
                  workload_repeats=1, thread_ops=1_000, hitrate_accesses=4_000,
                  hitrate_keyspace=2_000, hitrate_fractions=[0.05, 0.1],
                  scaling_sizes=[1_000, 4_000],
                  scaling_repeats=2, scaling_fill_budget=1.0, memory_entries=20_000,
                  chunk_mib=2),
}


def _int_list(allowed: Optional[Sequence[int]] = None, lo: int = 1,
              hi: Optional[int] = None) -> Any:
    def parse(text: str) -> List[int]:
        out = []
        for part in text.split(","):
            part = part.strip().lower()
            mult = 1
            for suffix, m in (("kib", 1024), ("k", 1024)):
                if part.endswith(suffix):
                    part, mult = part[:-len(suffix)], m
                    break
            part = part.rstrip("b%")
            try:
                v = int(part) * mult
            except ValueError:
                raise argparse.ArgumentTypeError(f"not a number: {part!r}") from None
            if allowed is not None and v not in allowed:
                raise argparse.ArgumentTypeError(
                    f"{v} is not one of {', '.join(map(str, allowed))}")
            if v < lo or (hi is not None and v > hi):
                raise argparse.ArgumentTypeError(f"{v} is outside {lo}..{hi}")
            out.append(v)
        return out
    return parse


def _fraction(text: str) -> float:
    t = text.strip()
    try:
        v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a fraction or percentage: {text!r}") from None
    if not 0 <= v < 10:
        raise argparse.ArgumentTypeError(f"tolerance out of range: {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return v


def description() -> str:
    """The module docstring with the sections, from SECTIONS itself."""
    width = max(len(s.NAME) for s in SECTIONS)
    lines = [f"  {s.NAME:<{width}}  {s.TITLE}" for s in SECTIONS]
    doc = (__doc__ or "").format(quick=DURATION["quick"][1])
    head, _, tail = doc.partition("\nExamples:")
    return (head + "\nSections, in the order they run (--only NAME):\n" + "\n".join(lines)
            + "\n\nExamples:" + tail)


def parser() -> argparse.ArgumentParser:
    names = [s.NAME for s in SECTIONS]
    p = argparse.ArgumentParser(prog="python -m corecache.bench", description=description(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="smaller streams, fewer repeats: "
                           f"{DURATION['quick'][1]} on an idle 2-core machine "
                           f"(the default mode: {DURATION['default'][1]})")
    mode.add_argument("--smoke", action="store_true",
                      help="tiny sizes: check that every section runs (figures mean little; "
                           f"{DURATION['smoke'][1]})")
    p.add_argument("--only", action="append", choices=names, metavar="SECTION",
                   help=f"run only these sections (repeatable): {', '.join(names)}")
    p.add_argument("--libs", action="append", metavar="NAME",
                   help="measure only implementations whose name contains NAME (repeatable; "
                        "the references dict and functools always stay)")
    p.add_argument("--repeats", type=int, help="repeats per figure (the median is reported)")
    w = p.add_argument_group("workloads (section workload; hitrate runs its fixed grid of "
                             "traces, at --keyspace when given)")
    w.add_argument("--patterns", type=lambda s: [x.strip() for x in s.split(",")],
                   default=list(workloads.PATTERNS), metavar="LIST",
                   help=f"access patterns, comma-separated (default: {','.join(workloads.PATTERNS)})")
    w.add_argument("--zipf", type=_positive_float, default=0.99, metavar="S",
                   help="the Zipf exponent of the zipf and burst patterns (default 0.99)")
    w.add_argument("--read-mix", type=_int_list(READ_MIXES), default=[90], metavar="PCT",
                   help="percent of operations that are reads, comma-separated from "
                        f"{','.join(map(str, READ_MIXES))} (default 90)")
    w.add_argument("--value-size", type=_int_list(None, MIN_VALUE, MAX_VALUE), default=[64],
                   metavar="BYTES", help="sizes of the cached values, comma-separated, "
                                         "64 to 16K (default 64)")
    w.add_argument("--threads", type=_int_list(None, 1, 64), default=[1, 2, 4], metavar="LIST",
                   help="thread counts for throughput (default 1,2,4)")
    w.add_argument("--keyspace", type=int, metavar="N",
                   help="distinct keys in a stream (default 100,000; --quick 20,000)")
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    o.add_argument("--plot", metavar="PATH.png",
                   help="draw hit rate against cache size per policy, latency per library, "
                        "scaling and threads (needs matplotlib: corecache[bench])")
    o.add_argument("--from-json", metavar="PATH",
                   help="do not measure: report, plot and compare the run saved in PATH")
    c = p.add_argument_group("regressions")
    c.add_argument("--compare", metavar="BASELINE.json",
                   help="exit 1 if a figure is worse than in BASELINE.json (written by --json) "
                        "beyond the tolerance")
    c.add_argument("--tolerance", type=_fraction, default=0.10, metavar="FRACTION",
                   help="relative tolerance for medians, hit rates and single-thread "
                        "throughput: 0.1 or 10%% (default 10%%)")
    c.add_argument("--tail-tolerance", type=_fraction, default=0.50, metavar="FRACTION",
                   help="relative tolerance for p99 latencies and multi-thread throughput, "
                        "which scatter more (default 50%%)")
    c.add_argument("--compare-peers", action="store_true",
                   help="let the peers' and references' figures fail the comparison too "
                        "(by default only corecache's can; the others' drift is reported)")
    return p


def options(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = parser()
    opts = p.parse_args(argv)
    opts.mode = "smoke" if opts.smoke else "quick" if opts.quick else "default"
    given = {k: getattr(opts, k) for k in ("repeats", "keyspace")}   # None: not given
    for k, v in MODES[opts.mode].items():
        setattr(opts, k, v)
    opts.repeats, opts.keyspace = given["repeats"], given["keyspace"]
    if opts.repeats is not None:
        if opts.repeats < 1:
            p.error("--repeats must be at least 1")
        opts.workload_repeats = min(opts.repeats, opts.workload_repeats)
    else:
        opts.repeats = MODES[opts.mode]["repeats"]
    if opts.keyspace is not None:
        if opts.keyspace < 10:
            p.error("--keyspace must be at least 10")
        opts.hitrate_keyspace = opts.keyspace
    else:
        opts.keyspace = MODES[opts.mode]["keyspace"]
    bad = [x for x in opts.patterns if x not in workloads.PATTERNS]
    if bad:
        p.error(f"unknown pattern {bad[0]!r}; choose from {', '.join(workloads.PATTERNS)}")
    if opts.plot and not opts.plot.lower().endswith(".png"):
        p.error("--plot writes a PNG: give a path ending in .png")
    return opts


def saved_options(opts: argparse.Namespace) -> Dict[str, Any]:
    """The options that decide what the figures mean."""
    return {"mode": opts.mode, "repeats": opts.repeats, "operations": opts.n,
            "keyspace": opts.keyspace, "zipf": opts.zipf, "read_mix": opts.read_mix,
            "value_size": opts.value_size, "threads": opts.threads,
            "patterns": opts.patterns}


def measure(opts: argparse.Namespace) -> Dict[str, Any]:
    info = machine()
    peer_versions = versions()
    print("corecache benchmark")
    for k, v in info.items():
        print(f"  {k}: {v}")
    print("  peers: " + (", ".join(f"{k} {v}" for k, v in peer_versions.items())
                         or "none installed (pip install corecache[bench])"))
    print(f"  mode {opts.mode}: {opts.repeats} repeats of {opts.n:,} operations each; "
          "medians of each repeat's fastest fifth; loop overhead subtracted")
    t0 = time.perf_counter()
    results: Dict[str, Any] = {}
    seconds: Dict[str, float] = {}
    for section in SECTIONS:
        if opts.only and section.NAME not in opts.only:
            continue
        s0 = time.perf_counter()
        res = section.run(opts)
        seconds[section.NAME] = round(time.perf_counter() - s0, 2)
        results[section.NAME] = res
        print()
        print(section.report(res, opts), flush=True)
    figs = []
    for section in SECTIONS:
        if section.NAME in results:
            figs += section.figures(results[section.NAME])
    return {"format": compare.FORMAT, "machine": info, "versions": peer_versions,
            "options": saved_options(opts), "results": results,
            "figures": compare.to_json(figs),
            "targets": check_targets(results, opts.mode),
            "seconds": {"total": round(time.perf_counter() - t0, 2), **seconds}}


def check_targets(results: Dict[str, Any], mode: str, saved: bool = False) -> Dict[str, Any]:
    """Every section's targets, held to `results`, as `mode` counts them
    (`saved`: results read back from a file, perhaps of another version)."""
    rows: List[Any] = []
    for section in SECTIONS:
        if section.NAME not in results:
            continue
        try:
            rows += section.targets(results[section.NAME])
        except Exception as exc:
            if not saved:
                raise
            rows.append(targets.Target(f"{section.NAME}: cannot check these results ({exc!r})",
                                       targets.INFO))
    return targets.evaluate(rows, mode)


def took(seconds: float, mode: str) -> str:
    """The line a run ends with: what it took, and what the mode should."""
    expected, words = DURATION[mode]
    m, s = divmod(round(seconds), 60)
    line = (f"{mode} mode took {seconds:.1f} s ({m} min {s:02d} s); "
            f"it takes {words} on an idle 2-core machine")
    if seconds > expected:
        line += " (this machine was slower or busier)"
    return line


def show_saved(data: Dict[str, Any], opts: argparse.Namespace) -> None:
    print(f"corecache benchmark, saved run ({opts.from_json})")
    for k, v in data.get("machine", {}).items():
        print(f"  {k}: {v}")
    saved = argparse.Namespace(**vars(opts))
    for k, v in data.get("options", {}).items():
        setattr(saved, k, v)
    saved.quick = data.get("options", {}).get("mode") == "quick"
    saved.libs = None
    for section in SECTIONS:
        res = data.get("results", {}).get(section.NAME)
        if res is not None:
            print()
            try:
                print(section.report(res, saved))
            except Exception as exc:          # a file from another version
                print(f"{section.NAME}: cannot show these results ({exc!r})")


def main(argv: Optional[List[str]] = None) -> int:
    opts = options(argv)
    if opts.from_json:
        try:
            data = compare.load(opts.from_json)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        show_saved(data, opts)
        mode = data.get("options", {}).get("mode")
        data = dict(data, targets=check_targets(data.get("results", {}),
                                                mode if mode in DURATION else "default",
                                                saved=True))
    else:
        data = measure(opts)
    text = targets.render(data["targets"])
    if text:
        print("\n" + text)
    status = targets.exit_status(data["targets"])
    if opts.json and not opts.from_json:
        with open(opts.json, "w") as f:
            json.dump(clean(data), f, indent=1, allow_nan=False)
        print(f"wrote {opts.json}")
    if opts.plot:
        from .plot import plot
        try:
            plot(data, opts.plot)
        except ImportError as exc:
            print(f"error: --plot needs matplotlib (pip install corecache[bench]): {exc}",
                  file=sys.stderr)
            return 2
        print(f"wrote {opts.plot}")
    if opts.compare:
        try:
            text, bad = compare.run_compare(opts.compare, data, opts.tolerance,
                                            opts.tail_tolerance, opts.compare_peers)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            bad = -1
        else:
            print(f"\ncompared with {opts.compare}:")
            print(text)
        if bad:
            status = 2 if bad < 0 else 1
    if not opts.from_json:
        print("\n" + took(data["seconds"]["total"], opts.mode))
    return status


def clean(o: Any) -> Any:
    """`o` with NaN and infinities (figures that could not be measured) as
    None, which JSON can hold; tuples as lists."""
    if isinstance(o, float):
        return o if o == o and o not in (float("inf"), float("-inf")) else None
    if isinstance(o, dict):
        return {str(k): clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean(v) for v in o]
    return o


if __name__ == "__main__":
    sys.exit(main())
