"""A real Prometheus server (Debian's ``prometheus``) scrapes corecache's
endpoint on loopback every second; the series read back through its HTTP
API must equal what ``stats()`` says.

The server runs once for the module, with its own temporary config and
storage, on free loopback ports, and dies with the test process
(PR_SET_PDEATHSIG) even if pytest is killed.  Without a ``prometheus``
binary the tests skip, unless CORECACHE_REQUIRE_PROMETHEUS is set (the test
command sets it): then they fail.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Iterator, List

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry  # noqa: E402

from corecache import metrics  # noqa: E402
from corecache.latency import LatencyHistogram  # noqa: E402
from corecache.memory import MemoryMonitor  # noqa: E402
from conftest import samples_from_stats  # noqa: E402

pytestmark = pytest.mark.prometheus

REQUIRE = os.environ.get("CORECACHE_REQUIRE_PROMETHEUS", "") not in ("", "0")
STARTUP_TIMEOUT = 60.0     # the first sample comes 5-6 s after start here
SCRAPE_TIMEOUT = 30.0

_PR_SET_PDEATHSIG = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Prometheus:
    def __init__(self, binary: str, workdir: str, target: str) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: corecache\n"
                    f"    static_configs:\n      - targets: ['{target}']\n")
        self.log_path = os.path.join(workdir, "prometheus.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def logs(self) -> str:
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n"
                                   f"{self.logs()}")
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready after {STARTUP_TIMEOUT} s:\n{self.logs()}")

    def query(self, expr: str) -> List[Dict[str, Any]]:
        url = self.base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def series(self, cache: str) -> Dict[str, float]:
        """{metric name (with extra labels): value} of every series of `cache`."""
        out = {}
        for item in self.query(f'{{cache="{cache}", job="corecache"}}'):
            labels = dict(item["metric"])
            name = labels.pop("__name__")
            for drop in ("cache", "job", "instance"):
                labels.pop(drop)
            key = name + "".join(f"{{{k}={v}}}" for k, v in sorted(labels.items()))
            out[key] = float(item["value"][1])
        return out

    def wait_for(self, cache: str, ok: Callable[[Dict[str, float]], bool]) -> Dict[str, float]:
        """The series of `cache` once `ok(series)` holds (scrapes come every second)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        got: Dict[str, float] = {}
        while time.monotonic() < deadline:
            got = self.series(cache)
            if got and ok(got):
                return got
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus died:\n{self.logs()}")
            time.sleep(0.25)
        raise AssertionError(f"prometheus never showed the expected series of {cache!r}; "
                             f"last seen {got}\n{self.logs()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: Any) -> Iterator[Any]:
    """(registry, prometheus): a registry served on loopback, and a running
    Prometheus scraping it every second."""
    binary = shutil.which("prometheus") or ("/usr/bin/prometheus"
                                             if os.path.exists("/usr/bin/prometheus") else None)
    if binary is None:
        why = "no prometheus binary (apt-get install --no-install-recommends prometheus)"
        if REQUIRE:
            pytest.fail(f"CORECACHE_REQUIRE_PROMETHEUS is set but there is {why}")
        pytest.skip(why)
    registry = CollectorRegistry()
    server = metrics.serve(0, registry=registry)
    prom = None
    try:
        for attempt in range(3):   # a free port can be taken before prometheus binds it
            prom = Prometheus(binary, str(tmp_path_factory.mktemp("prometheus")),
                              f"127.0.0.1:{server.port}")
            try:
                prom.wait_ready()
                break
            except RuntimeError:
                prom.stop()
                if attempt == 2:
                    raise
        yield registry, prom
    finally:
        if prom is not None:
            prom.stop()
        server.close()


def test_prometheus_scrapes_what_stats_says(impl, scraped, clock):
    registry, prom = scraped
    name = f"prom-{impl.name}"
    c = impl.LRUCache(50, default_ttl=30, memory_limit_mb=1, clock=clock)
    for i in range(60):                  # 10 evictions
        c[i] = str(i)
    c.set("brief", 1, ttl=1)
    clock.tick(2)                        # one expiration on the next look
    for k in range(20, 40):              # 20 hits
        c[k]
    for k in range(5):                   # 5 misses
        c.get(k)
    c.pause_writes()
    c["refused"] = 1
    metrics.register(c, name, registry=registry)
    want = samples_from_stats(c.stats(), paused=True)
    assert want["corecache_hits_total"] == 20 and want["corecache_evictions_total"] == 11
    got = prom.wait_for(name, lambda s: len(s) >= len(want))
    assert got == pytest.approx(want)

    # the values are read at scrape time: new traffic shows up in the next scrape
    c.resume_writes()
    for k in range(40, 50):
        c[k]
    c["new"] = 1
    want = samples_from_stats(c.stats(), paused=False)
    got = prom.wait_for(name, lambda s: s.get("corecache_hits_total") == want[
        "corecache_hits_total"] and s.get("corecache_writes_paused") == 0)
    assert got == pytest.approx(want)


def test_prometheus_reads_pools_patterns_and_the_monitor(scraped):
    registry, prom = scraped

    class Pool:
        def stats(self):
            return {"created": 4, "reused": 9, "in_use": 3, "idle": 1, "discarded": 0,
                    "waits": 2, "timeouts": 1, "max_size": 4}

    class Pattern:
        def __init__(self):
            self.load = LatencyHistogram(sample_rate=1.0)
            for s in (0.002, 0.02, 0.2):
                self.load.observe(s)

        def stats(self):
            return {"hits": {"local": 7, "store": 2}, "misses": 1, "loads": 3,
                    "load_errors": 1, "redis_errors": 0, "pending_writes": 5,
                    "load_latency": self.load.snapshot()}

    pool, pattern = Pool(), Pattern()
    monitor = MemoryMonitor(probe=lambda: 42.5)
    monitor.check()
    metrics.register(pool, "prom-pool", registry=registry)
    metrics.register(pattern, "prom-pattern", registry=registry)
    metrics.register(monitor, "prom-memory", registry=registry)
    got = prom.wait_for("prom-pool", lambda s: True)
    assert got == {"corecache_pool_created_total": 4, "corecache_pool_reused_total": 9,
                   "corecache_pool_in_use": 3, "corecache_pool_idle": 1,
                   "corecache_pool_discarded_total": 0, "corecache_pool_waits_total": 2,
                   "corecache_pool_timeouts_total": 1, "corecache_pool_max_size": 4}
    got = prom.wait_for("prom-pattern", lambda s: True)
    assert got["corecache_pattern_hits_total{tier=local}"] == 7
    assert got["corecache_pattern_hits_total{tier=store}"] == 2
    assert got["corecache_pending_writes"] == 5
    assert got["corecache_load_latency_seconds_count"] == 3
    assert got["corecache_load_latency_seconds_bucket{le=0.025}"] == 2
    assert got["corecache_load_latency_seconds_bucket{le=+Inf}"] == 3
    # PromQL understands the histogram
    q = prom.query('histogram_quantile(0.5, corecache_load_latency_seconds_bucket'
                   '{cache="prom-pattern"})')
    assert 0.01 < float(q[0]["value"][1]) <= 0.025
    got = prom.wait_for("prom-memory", lambda s: True)
    assert got == {"corecache_memory_pressure_level": 0, "corecache_memory_percent": 42.5}


def test_prometheus_runs_every_dashboard_query(scraped):
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "monitoring" / "grafana-dashboard.json"
    if not path.exists():
        pytest.skip(f"{path} not found: running outside the source tree")
    _, prom = scraped
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    for expr in exprs:
        concrete = (expr.replace("$job", ".*").replace("$cache", ".*")
                    .replace("$__rate_interval", "1m"))
        prom.query(concrete)          # a query Prometheus cannot parse fails here
