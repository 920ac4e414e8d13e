"""CPU instructions of a Python driver, counted with callgrind: the one
runner of scripts/hit_instructions.py and scripts/policy_instructions.py.

callgrind counts every instruction the process executes, so a count is the
same on an idle machine and a loaded one, where wall-clock times are not.
A figure per operation is the difference of runs making N and 2N
operations, over N: start-up, imports and filling cancel out.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(driver: str, *args: str) -> int:
    """Instructions of ``python -c driver *args`` under callgrind (hash
    randomization off, so that runs compare)."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           sys.executable, "-c", driver, *args]
    env = dict(os.environ, PYTHONHASHSEED="0")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    m = _REFS.search(r.stderr)
    if not m:
        raise RuntimeError(f"no instruction count in callgrind's output:\n{r.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def per_op(driver: str, kind: str, n: int) -> float:
    """Instructions per operation: the driver run as ``driver N kind``."""
    return (instructions(driver, str(2 * n), kind) - instructions(driver, str(n), kind)) / n
