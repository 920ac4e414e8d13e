"""CPU instructions per cached-function hit, corecache against functools,
counted with callgrind (deterministic where wall-clock time is not).

    python scripts/hit_instructions.py [--calls N] [--json]

Runs this interpreter under ``valgrind --tool=callgrind`` with N and 2N
calls of each kind, made from a loop in a function (as a program makes
them: the cached function is a global), and takes the difference over N,
so that start-up and imports cancel; the same loop calling nothing gives
the loop's own cost, which is subtracted.  Kinds: a one-int-argument hit on ``functools.lru_cache``
(the C one), on corecache's ``lru_cache`` (the implementation in use), and
the same with 2 positional + 1 keyword arguments.  Prints instructions per
call and the ratio to functools.  Needs valgrind on PATH.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind  # noqa: E402  (scripts/callgrind.py)

DRIVER = r"""
import sys
n, kind = int(sys.argv[1]), sys.argv[2]
if kind.startswith("functools"):
    from functools import lru_cache
else:
    from corecache import lru_cache

@lru_cache(maxsize=256)
def one(x):
    return x

@lru_cache(maxsize=256)
def three(a, b, c=None):
    return a

def run_one(n):
    for _ in range(n):
        one(7)

def run_three(n):
    for _ in range(n):
        three(1, 2, c=3)

def run_loop(n):
    for _ in range(n):
        pass

one(7)
three(1, 2, c=3)
{"one": run_one, "three": run_three}.get(kind.partition(":")[2], run_loop)(n)
"""

def per_call(kind: str, n: int) -> float:
    return callgrind.per_op(DRIVER, kind, n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20000, help="N (default 20000)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH", file=sys.stderr)
        return 2
    import corecache
    loop = per_call("loop", args.calls)
    out = {"python": sys.version.split()[0], "implementation": corecache.IMPLEMENTATION,
           "loop": round(loop)}
    for shape in ("one", "three"):
        theirs = per_call(f"functools:{shape}", args.calls) - loop
        ours = per_call(f"corecache:{shape}", args.calls) - loop
        out[shape] = {"functools": round(theirs), "corecache": round(ours),
                      "ratio": round(ours / theirs, 3)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"CPython {out['python']}, corecache[{out['implementation']}], "
              f"instructions per hit (loop of {out['loop']} subtracted)")
        for shape, label in (("one", "1 int arg"), ("three", "2 pos + 1 kw")):
            f = out[shape]
            print(f"  {label:14s} functools {f['functools']:6d}  corecache {f['corecache']:6d}"
                  f"  ratio {f['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
