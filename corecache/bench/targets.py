"""Targets: what a section's figures are held to, and what the exit status
makes of them.

Every target is one of two kinds:

* a **check**: a promise this run verifies.  A missed check makes
  ``python -m corecache.bench`` exit with status 3.  A check is measured
  long enough in ``--quick`` to be stable on a loaded 2-core machine, or it
  says that it needs the default mode (``needs="default"``): ``--quick``
  then prints it as information.  ``--smoke`` checks nothing (its figures
  are too small to mean anything): every check is information there.
* **information**: printed with its limit and figure, never failing the
  run: a comparison with a peer that corecache does not promise, or a
  figure that says more about the machine's load than about corecache.

A target that could not be measured in this run (a peer or the compiled
core missing, Redis absent) has no verdict ("n/a") and fails nothing.

Sections return :class:`Target` objects from ``targets(results)``; a plain
``(met, text)`` tuple (the older form) is read as a check when ``met`` is a
bool and as information without a verdict when it is None.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, Union

CHECK = "check"
INFO = "info"
MODES = ("smoke", "quick", "default")      # in increasing length
EXIT_MISSED = 3


@dataclass
class Target:
    text: str                      # what is compared, with the raw figures
    kind: str = CHECK              # CHECK or INFO
    limit: str = ""                # "<= 1.2x", ">= 10x", "== 1"; "" when none
    measured: str = ""             # "1.31x"; "" when not measured
    met: Optional[bool] = None     # None: not measured in this run
    needs: str = "quick"           # the shortest mode in which a check counts
    why: str = ""                  # why information, why the default mode, or why n/a

    def counts(self, mode: str) -> bool:
        """Whether a miss of this target fails a run of this mode."""
        return (self.kind == CHECK and self.met is not None
                and MODES.index(mode) >= MODES.index(self.needs) and mode != "smoke")

    def shown_kind(self, mode: str) -> str:
        if self.kind == CHECK and not self.counts(mode) and self.met is not None:
            return INFO
        return self.kind

    def verdict(self, mode: str) -> str:
        if self.met is None:
            return "n/a"
        if self.counts(mode):
            return "met" if self.met else "MISSED"
        if not self.limit:
            return "-"
        return "within" if self.met else "beyond"

    def note(self, mode: str) -> str:
        """Why a row is not a counted check, in a few words."""
        if self.met is None:
            return self.why
        if self.kind == CHECK and not self.counts(mode):
            if mode == "smoke":
                return ""          # the heading says it once
            return f"a check in the {self.needs} mode" + (f": {self.why}" if self.why else "")
        return self.why if self.kind == INFO else ""


Legacy = Tuple[Optional[bool], str]


def as_target(t: Union[Target, Legacy]) -> Target:
    if isinstance(t, Target):
        return t
    met, text = t
    if met is None:
        return Target(text, INFO)
    return Target(text, CHECK, met=bool(met))


def ratio(text: str, x: Optional[float], y: Optional[float], limit: float, *,
          at_least: bool = False, unit: str = "ns", digits: int = 1, kind: str = CHECK,
          needs: str = "quick", why: str = "", missing: str = "") -> Target:
    """A target on x / y: at most `limit` (or at least, with at_least)."""
    lim = f"{'>=' if at_least else '<='} {limit:.3g}x"
    if x is None or y is None or not y or x != x or y != y:
        return Target(text, kind, lim, "", None, needs, missing or "not measured in this run")
    r = x / y
    met = r >= limit if at_least else r <= limit
    return Target(f"{text}: {x:.{digits}f} vs {y:.{digits}f} {unit}", kind, lim,
                  f"{r:.2f}x", met, needs, why)


def evaluate(targets: Iterable[Union[Target, Legacy]], mode: str) -> Dict[str, Any]:
    """The targets as JSON-able rows, and how many counted checks missed."""
    rows = []
    missed = 0
    for t in map(as_target, targets):
        row = asdict(t)
        row["verdict"] = t.verdict(mode)
        row["shown_kind"] = t.shown_kind(mode)
        row["counts"] = t.counts(mode)
        rows.append(row)
        missed += t.counts(mode) and t.met is False
    return {"mode": mode, "rows": rows, "missed": missed,
            "checked": sum(1 for r in rows if r["counts"])}


def render(evaluated: Dict[str, Any]) -> str:
    """The targets table: kind, verdict, limit, measured, what."""
    rows: Sequence[Dict[str, Any]] = evaluated["rows"]
    mode = evaluated["mode"]
    if not rows:
        return ""
    head = (f"targets ({mode} mode; check: a miss fails the run with exit status "
            f"{EXIT_MISSED}; info: printed only)")
    if mode == "smoke":
        head += ("\n  --smoke counts no check (its figures mean little): the checks show "
                 "as info here")
    cols = ["kind", "verdict", "limit", "measured"]
    cells = [[r["shown_kind"], r["verdict"], r["limit"] or "-", r["measured"] or "-"]
             for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = [head, "  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths)) + "  target"]
    for r, row in zip(rows, cells):
        t = Target(**{k: r[k] for k in ("text", "kind", "limit", "measured", "met", "needs",
                                          "why")})
        note = t.note(mode)
        line = "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + r["text"]
        out.append(line + (f"  [{note}]" if note else ""))
    checked, missed = evaluated["checked"], evaluated["missed"]
    out.append(f"{checked} check{'' if checked == 1 else 's'} counted in this mode, "
               f"{missed} missed"
               + (f": exit status {EXIT_MISSED}" if missed else ""))
    return "\n".join(out)


def exit_status(evaluated: Optional[Dict[str, Any]]) -> int:
    return EXIT_MISSED if evaluated and evaluated["missed"] else 0


__all__ = ["CHECK", "INFO", "EXIT_MISSED", "Target", "as_target", "ratio", "evaluate", "render",
           "exit_status"]
