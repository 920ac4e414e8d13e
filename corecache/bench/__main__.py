"""python -m corecache.bench: how corecache compares, on this machine.

Every figure is measured in this one process (memory in fresh
subprocesses), repeated, and reported as the median with ratios; peers are
measured only when installed (``pip install corecache[bench]``).  Each
section checks the targets it has against this run's own figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

from . import chunk, decorators, distributed, mapping, memory, metrics, pool
from .peers import versions
from .report import machine

# Each section module has NAME, TITLE, run(opts) -> results (JSON-able),
# report(results, opts) -> str and targets(results) -> [(met?, text)].
SECTIONS = [decorators, mapping, memory, metrics, pool, chunk, distributed]


def main(argv: Optional[List[str]] = None) -> int:
    names = [s.NAME for s in SECTIONS]
    p = argparse.ArgumentParser(prog="python -m corecache.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats and operations")
    p.add_argument("--only", action="append", choices=names, metavar="SECTION",
                   help=f"run only these sections (repeatable): {', '.join(names)}")
    p.add_argument("--libs", action="append", metavar="NAME",
                   help="measure only implementations whose name contains NAME (repeatable)")
    p.add_argument("--repeats", type=int, help="repeats per figure (the median is reported)")
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    opts = p.parse_args(argv)
    opts.n = 50_000 if opts.quick else 200_000
    opts.repeats = opts.repeats or (5 if opts.quick else 11)

    info = machine()
    print("corecache benchmark")
    for k, v in info.items():
        print(f"  {k}: {v}")
    peer_versions = versions()
    print("  peers: " + (", ".join(f"{k} {v}" for k, v in peer_versions.items())
                         or "none installed"))
    print(f"  {opts.repeats} repeats of {opts.n:,} operations each; medians; "
          "loop overhead subtracted")

    results: Dict[str, Any] = {}
    lines = []
    for section in SECTIONS:
        if opts.only and section.NAME not in opts.only:
            continue
        res = section.run(opts)
        results[section.NAME] = res
        print()
        print(section.report(res, opts))
        lines += section.targets(res)
    if lines:
        print("\ntargets (checked against this run's figures):")
        for ok, text in lines:
            print(f"  [{'met' if ok else 'MISSED' if ok is False else 'n/a'}] {text}")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"machine": info, "versions": peer_versions, "repeats": opts.repeats,
                       "operations": opts.n, "results": results,
                       "targets": [{"met": ok, "text": t} for ok, t in lines]},
                      f, indent=2, sort_keys=True)
        print(f"\nwrote {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
