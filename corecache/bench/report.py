"""Machine facts and table printing for the benchmark report."""
from __future__ import annotations

import os
import platform
import sys
from typing import Dict, List, Optional


def machine() -> Dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import corecache
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "corecache": f"{corecache.__version__} (IMPLEMENTATION={corecache.IMPLEMENTATION})",
    }


def fmt(x: Optional[float], digits: int = 1) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:.{digits}f}"


def table(title: str, rows: Dict[str, Dict[str, float]], columns: List[str],
          base: Optional[str], unit: str = "ns/op") -> str:
    """Rows of figures with, when `base` is given, the ratio to that column."""
    head = [f"{title} ({unit}{', ratio to ' + base if base else ''})"]
    width = max([len(r) for r in rows] + [10])
    colw = max([len(c) for c in columns] + [14]) + 2
    head.append(" " * width + "".join(c.rjust(colw) for c in columns))
    for row, figs in rows.items():
        cells = []
        b = figs.get(base) if base else None
        for c in columns:
            v = figs.get(c)
            if v is None:
                cells.append("-".rjust(colw))
            elif b and c != base:
                cells.append(f"{fmt(v)} ({v / b:.2f}x)".rjust(colw))
            else:
                cells.append(fmt(v).rjust(colw))
        head.append(row.ljust(width) + "".join(cells))
    return "\n".join(head)
