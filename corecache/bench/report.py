"""Machine facts and table printing for the benchmark report."""
from __future__ import annotations

import os
import platform
import sys
from typing import Dict, List, Optional, Tuple


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


def grid(title: str, columns: List[str], rows: List[Tuple[str, List[str]]]) -> str:
    """A table of preformatted cells: `rows` are (name, cells)."""
    width = max([len(name) for name, _ in rows] + [10])
    widths = [max([len(c)] + [len(cells[i]) for _, cells in rows if i < len(cells)]) + 2
              for i, c in enumerate(columns)]
    out = [title, " " * width + "".join(c.rjust(w) for c, w in zip(columns, widths))]
    for name, cells in rows:
        out.append(name.ljust(width) + "".join(c.rjust(w) for c, w in zip(cells, widths)))
    return "\n".join(out)


def columns(rows: Dict[str, Dict[str, object]]) -> List[str]:
    """The column names of a {row: {column: value}} table, in first-seen order."""
    out: Dict[str, None] = {}
    for figs in rows.values():
        if isinstance(figs, dict):
            for c in figs:
                out.setdefault(c, None)
    return list(out)
