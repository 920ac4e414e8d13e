"""monitoring/: the Grafana dashboard and the alert rules only use metric
names that corecache.metrics exports (promtool checks and unit-tests the
rules themselves in scripts/test; the real-Prometheus test runs every
dashboard query).  Skipped when the tests run from a copy without the
source tree (the pure-install run)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator, List, Set

import pytest

pytest.importorskip("prometheus_client")
from corecache import metrics  # noqa: E402

MONITORING = Path(__file__).resolve().parent.parent / "monitoring"
NAME = re.compile(r"\bcorecache_[a-z0-9_]+")


def monitoring_file(name: str) -> Path:
    path = MONITORING / name
    if not path.exists():
        pytest.skip(f"{path} not found: running outside the source tree")
    return path


def exported_series() -> Set[str]:
    """Every series name the collector can produce."""
    out = set()
    for fams in metrics.FAMILIES.values():
        for fam in fams:
            if fam.type == "histogram":
                out |= {fam.name + s for s in ("_bucket", "_sum", "_count")}
            else:
                out.add(fam.name)
    return out


def dashboard_exprs(dashboard: Any) -> Iterator[str]:
    def walk(panels: List[Any]) -> Iterator[Any]:
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))
    for panel in walk(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield target["expr"]


def test_dashboard_parses_and_uses_exported_names():
    dashboard = json.loads(monitoring_file("grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["uid"]
    exprs = list(dashboard_exprs(dashboard))
    assert len(exprs) >= 15
    exported = exported_series()
    used: Set[str] = set()
    for expr in exprs:
        names = set(NAME.findall(expr))
        assert names, f"a panel query uses no corecache metric: {expr}"
        assert names <= exported, f"{expr} uses {names - exported}, which is not exported"
        used |= names
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            assert set(NAME.findall(var["definition"])) <= exported | {"corecache_"}
    # what the issue asks the dashboard to show
    for name in ("corecache_hits_total", "corecache_misses_total", "corecache_size",
                 "corecache_max_size", "corecache_memory_bytes", "corecache_memory_limit_bytes",
                 "corecache_evictions_total", "corecache_expirations_total",
                 "corecache_pool_in_use", "corecache_pool_max_size", "corecache_memory_percent",
                 "corecache_memory_pressure_level", "corecache_pending_writes"):
        assert name in used, f"the dashboard does not show {name}"
    # panel ids are unique, and every panel has a place on the grid
    panels = list(dashboard["panels"])
    assert len({p["id"] for p in panels}) == len(panels)
    assert all({"x", "y", "w", "h"} <= set(p["gridPos"]) for p in panels)


def test_alert_rules_use_exported_names():
    text = monitoring_file("alerts.yml").read_text()
    exprs = re.findall(r"expr: (\|\n(?:\s{10,}.*\n)+|.*)", text)
    assert len(exprs) == 7
    exported = exported_series()
    for expr in exprs:
        names = set(NAME.findall(expr))
        assert names and names <= exported, (expr, names - exported)
    tests = monitoring_file("alerts_test.yml").read_text()
    for alert in re.findall(r"- alert: (\w+)", text):
        assert f"alertname: {alert}" in tests, f"{alert} has no promtool test"
