"""The benchmark's own logic: workload generators, percentiles, the
--compare verdicts on synthetic figures, the JSON round trip, and a smoke
run of every section at minimal sizes (figures are not checked, only that
each section runs, reports and saves)."""
from __future__ import annotations

import collections
import json
import math
import os
import tempfile
from typing import Any, Dict, List

import pytest

from corecache.bench import __main__ as cli
from corecache.bench import compare, targets, workloads
from corecache.bench.timing import clock_tick, grouped_median, percentile

N = 20_000
K = 1_000


# ---- workload generators ----------------------------------------------------

@pytest.mark.parametrize("pattern", workloads.PATTERNS)
def test_streams_are_deterministic_and_in_range(pattern: str) -> None:
    a = workloads.stream(pattern, N, K, seed=7)
    assert a == workloads.stream(pattern, N, K, seed=7)
    assert len(a) == N
    if pattern != "scan":
        assert a != workloads.stream(pattern, N, K, seed=8)
    inside = [k for k in a if workloads.BASE <= k < workloads.BASE + K]
    if pattern == "burst":
        assert all(k >= workloads.FRESH for k in a if k not in set(inside))
    else:
        assert len(inside) == N
    assert all(k > 256 for k in a)                 # never small (shared) ints


def test_uniform_is_flat() -> None:
    counts = collections.Counter(workloads.ranks("uniform", 100_000, 10, seed=1))
    assert set(counts) == set(range(10))
    assert max(counts.values()) / min(counts.values()) < 1.1


@pytest.mark.parametrize("s", [0.7, 0.99, 1.3])
def test_zipf_follows_its_exponent(s: float) -> None:
    ranks = workloads.ranks("zipf", 200_000, K, seed=3, zipf_s=s)
    counts = collections.Counter(ranks)
    # the expected share of the most popular key, and the ratio of the
    # frequencies of ranks 1 and 2 (1-based) is 2**s
    weights = workloads.zipf_cum_weights(K, s)
    expected_top = 1.0 / weights[-1]
    assert counts[0] / len(ranks) == pytest.approx(expected_top, rel=0.05)
    assert counts[0] / counts[1] == pytest.approx(2 ** s, rel=0.1)
    assert max(counts) < K and min(counts) >= 0


def test_zipf_parameter_changes_skew() -> None:
    flat = collections.Counter(workloads.ranks("zipf", 50_000, K, seed=1, zipf_s=0.5))
    steep = collections.Counter(workloads.ranks("zipf", 50_000, K, seed=1, zipf_s=1.5))
    assert steep[0] > 3 * flat[0]


def test_scan_is_sequential() -> None:
    assert workloads.ranks("scan", 25, 10) == [i % 10 for i in range(25)]


def test_hotspot_90_10() -> None:
    ranks = workloads.ranks("hotspot", 100_000, K, seed=2)
    hot = sum(1 for r in ranks if r < K * workloads.HOT_KEYS)
    assert hot / len(ranks) == pytest.approx(0.9, abs=0.01)
    assert len({r for r in ranks if r >= K // 10}) > 0.8 * (K - K // 10)


def test_burst_is_a_50x_spike_of_new_keys() -> None:
    n = 100_000
    ranks = workloads.ranks("burst", n, K, seed=4)
    start, end = workloads.burst_window(n)
    inside = sum(1 for r in ranks[start:end] if r < 0) / (end - start)
    outside = sum(1 for r in ranks[:start] + ranks[end:] if r < 0) / (n - (end - start))
    assert outside == pytest.approx(workloads.BURST_BASE_NEW, rel=0.15)
    assert inside / outside == pytest.approx(workloads.BURST_FACTOR, rel=0.2)
    fresh = [r for r in ranks if r < 0]
    assert len(set(fresh)) == len(fresh)            # each new key is new


def test_read_mix() -> None:
    keys = list(range(50_000))
    assert not any(workloads.ops(keys, 100))
    for pct in (50, 80, 90, 95):
        writes = workloads.ops(keys, pct, seed=1)
        assert sum(writes) / len(keys) == pytest.approx(1 - pct / 100, abs=0.01)
    with pytest.raises(ValueError):
        workloads.ops(keys, 101)
    with pytest.raises(ValueError):
        workloads.ranks("nope", 10, 10)


def _lru_hits(keys: Any, capacity: int, start: int) -> int:
    od: "collections.OrderedDict[int, None]" = collections.OrderedDict()
    hits = 0
    for i, k in enumerate(keys):
        if k in od:
            od.move_to_end(k)
            hits += i >= start
        else:
            od[k] = None
            if len(od) > capacity:
                od.popitem(last=False)
    return hits


def _brute_optimal(keys: Any, capacity: int) -> int:
    """The optimum by exhaustive search over what to keep (tiny inputs)."""
    from functools import lru_cache

    @lru_cache(maxsize=None)
    def best(i: int, cached: frozenset) -> int:
        if i == len(keys):
            return 0
        k = keys[i]
        if k in cached:
            return 1 + best(i + 1, cached)
        options = [best(i + 1, cached)]                      # bypass
        if len(cached) < capacity:
            options.append(best(i + 1, cached | {k}))
        else:
            options += [best(i + 1, (cached - {v}) | {k}) for v in cached]
        return max(options)
    return best(0, frozenset())


def test_belady_is_optimal_on_small_streams() -> None:
    import random
    rng = random.Random(5)
    for _ in range(40):
        keys = [rng.randrange(6) for _ in range(rng.randrange(1, 14))]
        cap = rng.randrange(1, 4)
        assert workloads.belady_hits(keys, cap) == _brute_optimal(keys, cap), (keys, cap)


def test_belady_beats_lru_and_counts_from_start() -> None:
    keys = workloads.stream("zipf", 5000, 500, seed=1)
    for cap in (10, 50, 200):
        assert workloads.belady_hits(keys, cap) >= _lru_hits(keys, cap, 0)
        assert workloads.belady_hits(keys, cap, 2500) <= workloads.belady_hits(keys, cap)
    assert workloads.belady_hits(keys, 0) == 0
    assert workloads.belady_hits([1, 2, 1, 2], 5) == 2


# ---- timing helpers ----------------------------------------------------------

def test_percentile_nearest_rank() -> None:
    s = list(range(1, 101))
    assert percentile(s, 50) == 50
    assert percentile(s, 99) == 99
    assert percentile(s, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_grouped_median_interpolates_within_a_clock_step() -> None:
    # a 23 ns operation read by a 10 ns clock: 20 seven times in ten, 30 three
    samples = sorted([20.0] * 700 + [30.0] * 300)
    assert clock_tick(samples) == 10
    assert grouped_median(samples, 10) == pytest.approx(22.1, abs=0.1)
    assert grouped_median(samples, 1) == 20
    fine = sorted(float(v) for v in range(100))
    assert clock_tick(fine) == 1
    assert grouped_median(fine, 1) == 49.5


# ---- compare ----------------------------------------------------------------

def fig(value: float, unit: str = "ns", who: str = "corecache[c]", tail: bool = False,
        key: str = "s/row/col") -> Dict[str, Dict[str, Any]]:
    return {key: {"value": value, "unit": unit, "who": who, "tail": tail}}


def verdict(base: Dict[str, Any], cur: Dict[str, Any], **kw: Any) -> bool:
    changes = compare.compare(compare.from_json(base), compare.from_json(cur), **kw)
    assert len(changes) == 1
    return changes[0].regression


@pytest.mark.parametrize("unit,base,cur,worse", [
    ("ns", 100, 109, False), ("ns", 100, 111, True), ("ns", 100, 50, False),
    ("bytes", 50, 56, True), ("bytes", 50, 54, False),
    ("hit rate", 0.50, 0.44, True), ("hit rate", 0.50, 0.46, False), ("hit rate", 0.5, 0.9, False),
    ("GB/s", 10, 8.9, True), ("GB/s", 10, 9.5, False), ("Mops/s", 2.0, 1.7, True),
    ("ns", 4.0, 4.45, False),          # +11 %, but under the half-nanosecond floor
    ("hit rate", 0.02, 0.016, False),  # -20 %, but under half a point
    ("ns", 0.0, 0.4, False), ("ns", 0.0, 3.0, True),
])
def test_worse_means_the_unit_s_direction(unit: str, base: float, cur: float,
                                          worse: bool) -> None:
    assert verdict(fig(base, unit), fig(cur, unit)) is worse


def test_tolerances() -> None:
    assert not verdict(fig(100), fig(125), tolerance=0.3)
    assert verdict(fig(100), fig(125), tolerance=0.2)
    # tails get their own, wider tolerance
    assert not verdict(fig(100, tail=True), fig(140, tail=True))
    assert verdict(fig(100, tail=True), fig(160, tail=True))
    assert verdict(fig(100, tail=True), fig(140, tail=True), tail_tolerance=0.3)


def test_only_our_figures_count_unless_asked() -> None:
    base = {**fig(100, who="cachebox", key="a/x/cachebox"), **fig(10, key="a/x/corecache[c]")}
    cur = {**fig(300, who="cachebox", key="a/x/cachebox"), **fig(10, key="a/x/corecache[c]")}
    b, c = compare.from_json(base), compare.from_json(cur)
    assert not any(ch.regression and ch.counted for ch in compare.compare(b, c))
    assert any(ch.regression and ch.counted for ch in compare.compare(b, c, peers=True))


def _write(tmp_path: Any, name: str, figures: Dict[str, Any], **extra: Any) -> str:
    path = os.path.join(str(tmp_path), name)
    data = {"format": 1, "machine": {"cpu": "x", "python": "CPython 3.x", "corecache": "0"},
            "options": {"mode": "quick"}, "results": {}, "figures": figures, **extra}
    with open(path, "w") as f:
        json.dump(data, f)
    return path


def test_cli_compare_exit_codes(tmp_path: Any, capsys: Any) -> None:
    figs = {**fig(10.0, key="lru/get hit/corecache[c]"),
            **fig(0.6, "hit rate", key="hitrate/zipf/corecache[c]/100"),
            **fig(12.0, who="dict", key="lru/get hit/dict")}
    base = _write(tmp_path, "base.json", figs)
    same = _write(tmp_path, "same.json", figs)
    assert cli.main(["--from-json", same, "--compare", base]) == 0
    worse = dict(figs, **fig(0.5, "hit rate", key="hitrate/zipf/corecache[c]/100"))
    cur = _write(tmp_path, "worse.json", worse)
    assert cli.main(["--from-json", cur, "--compare", base]) == 1
    out = capsys.readouterr().out
    assert "WORSE  hitrate/zipf/corecache[c]/100: 0.600 -> 0.500" in out
    assert cli.main(["--from-json", cur, "--compare", base, "--tolerance", "20%"]) == 0
    slower = _write(tmp_path, "slower.json", dict(figs, **fig(11.5, key="lru/get hit/corecache[c]")))
    assert cli.main(["--from-json", slower, "--compare", base]) == 1
    assert cli.main(["--from-json", slower, "--compare", base, "--tolerance", "0.2"]) == 0
    # nothing in common, or not a benchmark file: a usage error, not a pass
    other = _write(tmp_path, "other.json", fig(1.0, key="pool/x/corecache[c]"))
    assert cli.main(["--from-json", other, "--compare", base]) == 2
    junk = os.path.join(str(tmp_path), "junk.json")
    with open(junk, "w") as f:
        f.write("[1, 2]")
    assert cli.main(["--from-json", same, "--compare", junk]) == 2
    assert cli.main(["--from-json", same, "--compare", os.path.join(str(tmp_path), "no")]) == 2


def test_compare_reports_reference_drift(tmp_path: Any) -> None:
    base = compare.from_json({**fig(10, who="dict", key="k/dict"),
                              **fig(20, key="k/corecache[c]")})
    cur = compare.from_json({**fig(13, who="dict", key="k/dict"),
                             **fig(26, key="k/corecache[c]")})
    text, bad = compare.summary(compare.compare(base, cur), {"python": "3.11"},
                                {"python": "3.12"}, 0, 0)
    assert bad == 1
    assert "moved by +30.0%" in text and "slower or busier" in text
    assert "different python" in text


# ---- the whole command, at minimal sizes -------------------------------------

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: Any) -> Dict[str, Any]:
    d = tmp_path_factory.mktemp("bench")
    path = str(d / "run.json")
    # every temporary file or folder of the run (the Redis server's folder,
    # the memory subprocesses') lands in `scratch`, which must stay empty
    scratch = tmp_path_factory.mktemp("scratch")
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(scratch)
    os.environ["TMPDIR"] = str(scratch)
    try:
        status = cli.main(["--smoke", "--repeats", "1", "--threads", "1,2", "--json", path])
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved_env
    assert status == 0
    with open(path) as f:
        return {"path": path, "data": json.load(f), "dir": d, "scratch": scratch}


def test_smoke_leaves_no_temporary_files(smoke_run: Dict[str, Any]) -> None:
    assert os.listdir(smoke_run["scratch"]) == []


def test_smoke_every_section_runs_and_saves(smoke_run: Dict[str, Any]) -> None:
    data = smoke_run["data"]
    assert set(data["results"]) == {s.NAME for s in cli.SECTIONS}
    assert data["machine"]["python"].startswith("CPython") or data["machine"]["python"]
    assert data["options"]["mode"] == "smoke"
    assert data["figures"], "no figures saved"
    units = {f["unit"] for f in data["figures"].values()}
    assert {"ns", "hit rate", "bytes", "Mops/s"} <= units
    # each section's figures come back from the saved results alone
    for section in cli.SECTIONS:
        assert section.figures(data["results"][section.NAME]) is not None
    w = data["results"]["workload"]
    assert set(w["threads"]) == {1, 2}
    for label, peers in w["runs"].items():
        assert "corecache[py]" in peers and "dict" in peers
        for f in peers.values():
            assert 0.0 <= f["hit_rate"] <= 1.0


def test_smoke_json_round_trip_compares_equal(smoke_run: Dict[str, Any], capsys: Any) -> None:
    path = smoke_run["path"]
    assert cli.main(["--from-json", path, "--compare", path]) == 0
    out = capsys.readouterr().out
    assert "0 worse than the baseline" in out
    assert "access patterns" in out        # the saved run is reported again


def test_smoke_plot(smoke_run: Dict[str, Any]) -> None:
    pytest.importorskip("matplotlib")
    png = str(smoke_run["dir"] / "run.png")
    assert cli.main(["--from-json", smoke_run["path"], "--plot", png]) == 0
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(png) > 20_000


def test_options_are_checked(capsys: Any) -> None:
    for bad in (["--read-mix", "70"], ["--value-size", "32"], ["--value-size", "32K"],
                ["--patterns", "zipf,nope"], ["--plot", "x.svg"], ["--quick", "--smoke"],
                ["--tolerance", "abc"]):
        with pytest.raises(SystemExit) as e:
            cli.options(bad)
        assert e.value.code == 2
    o = cli.options(["--read-mix", "50,100", "--value-size", "64,1K,16KiB", "--tolerance", "5%"])
    assert o.read_mix == [50, 100] and o.value_size == [64, 1024, 16384]
    assert o.tolerance == pytest.approx(0.05)


def test_distributed_figures_and_their_units() -> None:
    from corecache.bench import distributed
    results = {
        "redis_version": "7.0.15",
        "local": {"LRUCache.get hit": 16.0, "NearCache.get local hit": 28.0},
        "remote": {"redis-py GET": 33000.0, "RedisStore.get": 35000.0},
        "ack": {"redis-py SET": 36000.0, "WriteBehindCache.set": 51000.0},
        "batch_seconds": {"get_many(1000)": 0.002, "1000 x get": 0.037},
        "throughput": {"write-through": 800.0, "write-behind, writer": 2000.0,
                       "write-behind, writer_many": 11000.0},
        "writer_ms": 1.0, "sets": 1000,
        "round_trips": {"get_many(1000)": 1, "get_many(1000) server commands": "1 MGET"},
    }
    figs = {f.key: f for f in distributed.figures(results)}
    assert figs["distributed/remote/redis-py GET"].who == "redis-py"
    assert not figs["distributed/remote/redis-py GET"].ours
    assert figs["distributed/remote/RedisStore.get"].ours
    assert figs["distributed/throughput/write-behind, writer_many"].higher_is_better
    assert not figs["distributed/batch_seconds/get_many(1000)"].higher_is_better
    assert figs["distributed/round_trips/get_many(1000)"].unit == "round trips"
    assert "distributed/round_trips/get_many(1000) server commands" not in figs
    assert distributed.figures({"skipped": "no redis-server"}) == []
    # one more round trip is a regression however small
    base = {k: {"value": f.value, "unit": f.unit, "who": f.who, "tail": f.tail}
            for k, f in figs.items()}
    cur = dict(base)
    cur["distributed/round_trips/get_many(1000)"] = dict(
        base["distributed/round_trips/get_many(1000)"], value=2.0)
    changes = compare.compare(compare.from_json(base), compare.from_json(cur))
    assert [c.key for c in changes if c.regression] == ["distributed/round_trips/get_many(1000)"]


# ---- targets: checks, information and the exit status (synthetic figures) ----------

def test_a_check_counts_from_the_mode_it_needs() -> None:
    quick = targets.Target("q", targets.CHECK, "<= 1x", "1.10x", False)
    slow = targets.Target("d", targets.CHECK, "<= 1x", "1.10x", False, needs="default")
    info = targets.Target("i", targets.INFO, "<= 1x", "1.10x", False)
    unmeasured = targets.Target("n", targets.CHECK, "<= 1x")
    for t, counted in ((quick, {"quick", "default"}), (slow, {"default"}), (info, set()),
                       (unmeasured, set())):
        for mode in ("smoke", "quick", "default"):
            assert t.counts(mode) is (mode in counted), (t.text, mode)
    assert [quick.verdict(m) for m in ("smoke", "quick", "default")] == \
        ["beyond", "MISSED", "MISSED"]
    assert [slow.verdict(m) for m in ("smoke", "quick", "default")] == \
        ["beyond", "beyond", "MISSED"]
    assert slow.shown_kind("quick") == "info" and slow.shown_kind("default") == "check"
    assert "a check in the default mode" in slow.note("quick")
    assert info.verdict("default") == "beyond" and unmeasured.verdict("default") == "n/a"
    met = targets.Target("m", targets.CHECK, "<= 1x", "0.90x", True)
    assert met.verdict("quick") == "met" and met.verdict("smoke") == "within"


def test_ratio_targets() -> None:
    t = targets.ratio("TTL hit vs hit", 36.0, 30.0, 1.2)
    assert (t.kind, t.limit, t.measured, t.met) == ("check", "<= 1.2x", "1.20x", True)
    assert "36.0 vs 30.0 ns" in t.text
    assert targets.ratio("x", 37.0, 30.0, 1.2).met is False
    t = targets.ratio("speed-up", 95.0, 10.0, 10.0, at_least=True, unit="ms")
    assert (t.limit, t.met) == (">= 10x", False)
    for x, y in ((None, 1.0), (1.0, None), (1.0, 0.0), (float("nan"), 1.0)):
        t = targets.ratio("x", x, y, 1.0, missing="needs the compiled core")
        assert t.met is None and t.why == "needs the compiled core"
        assert t.verdict("default") == "n/a"


def test_legacy_tuples_are_read() -> None:
    assert targets.as_target((True, "a")) == targets.Target("a", "check", met=True)
    assert targets.as_target((False, "b")).verdict("quick") == "MISSED"
    assert targets.as_target((None, "c")).kind == "info"


def test_evaluate_render_and_exit_status() -> None:
    rows = [targets.ratio("ok", 1.0, 2.0, 1.0),
            targets.ratio("missed", 3.0, 2.0, 1.0),
            targets.ratio("slow check", 3.0, 2.0, 1.0, needs="default"),
            targets.ratio("peer", 3.0, 2.0, 1.0, kind=targets.INFO, why="a peer"),
            (None, "legacy information")]
    for mode, missed, checked in (("smoke", 0, 0), ("quick", 1, 2), ("default", 2, 3)):
        ev = targets.evaluate(rows, mode)
        assert (ev["missed"], ev["checked"]) == (missed, checked), mode
        assert targets.exit_status(ev) == (3 if missed else 0)
        text = targets.render(ev)
        assert f"{checked} checks counted in this mode, {missed} missed" in text
    text = targets.render(targets.evaluate(rows, "quick"))
    assert row(text, "ok:") == ["check", "met", "<=", "1x", "0.50x"]
    assert row(text, "missed: 3.0") == ["check", "MISSED", "<=", "1x", "1.50x"]
    assert row(text, "slow check:") == ["info", "beyond", "<=", "1x", "1.50x"]
    assert "[a check in the default mode]" in text
    assert row(text, "peer:") == ["info", "beyond", "<=", "1x", "1.50x"]
    assert "[a peer]" in text
    assert row(text, "legacy information") == ["info", "n/a", "-", "-", "legacy"]
    assert json.loads(json.dumps(targets.evaluate(rows, "quick")))["missed"] == 1
    assert targets.exit_status(None) == 0


def row(text: str, target: str) -> List[str]:
    """kind, verdict, limit (two words) and measured of the row about `target`."""
    found = [line for line in text.splitlines() if target in line]
    assert len(found) == 1, (target, text)
    return found[0].split()[:5]


def _saved_run(tmp_path: Any, name: str, mode: str, ttl_hit: float) -> str:
    """A saved run whose lru section holds a TTL hit of `ttl_hit` ns against
    30 ns without (the TTL check's limit is 1.2x)."""
    results = {"lru": {"c[k] hit": {"corecache[c]": 30.0, "lru-dict": 40.0},
                       "c[k] hit (ttl)": {"corecache[c]": ttl_hit, "cachebox": 60.0}}}
    figs = {**fig(30.0, key="lru/c[k] hit/corecache[c]"),
            **fig(ttl_hit, key="lru/c[k] hit (ttl)/corecache[c]")}
    return _write(tmp_path, name, figs, results=results, options={"mode": mode})


def test_exit_status_follows_the_checks(tmp_path: Any, capsys: Any) -> None:
    good = _saved_run(tmp_path, "good.json", "quick", 33.0)
    bad = _saved_run(tmp_path, "bad.json", "quick", 45.0)
    assert cli.main(["--from-json", good]) == 0
    out = capsys.readouterr().out
    assert row(out, "TTL hit vs hit without TTL") == ["check", "met", "<=", "1.2x", "1.10x"]
    assert cli.main(["--from-json", bad]) == targets.EXIT_MISSED
    out = capsys.readouterr().out
    assert row(out, "TTL hit vs hit without TTL") == ["check", "MISSED", "<=", "1.2x", "1.50x"]
    assert "1 missed: exit status 3" in out
    # the same figures in --smoke count nothing
    smoke = _write(tmp_path, "smoke.json", {}, options={"mode": "smoke"},
                   results=json.load(open(bad))["results"])
    assert cli.main(["--from-json", smoke]) == 0
    # --compare keeps its own statuses, which come first: 0 compares equal
    # (and the missed check still fails), 1 for a regression, 2 for nothing
    assert cli.main(["--from-json", bad, "--compare", bad]) == targets.EXIT_MISSED
    assert cli.main(["--from-json", bad, "--compare", good]) == 1
    other = _write(tmp_path, "other.json", fig(1.0, key="pool/x/corecache[c]"))
    assert cli.main(["--from-json", bad, "--compare", other]) == 2
    assert cli.main(["--from-json", good, "--compare", good]) == 0


@pytest.mark.parametrize("name, results, expect", [
    ("lru_cache", {"hit, 1 int arg": {"corecache[c]": 18.0, "functools": 33.0, "fastcache": 10.0}},
     {"hit, 1 int arg vs functools": ("check", True), "corecache vs fastcache": ("info", False)}),
    ("metrics", {"corecache[c]": {"unregistered": 30.0, "registered": 33.0}},
     {"corecache[c] c[k] hit registered vs unregistered": ("check", False)}),
    ("pool", {"with acquire()": {"corecache[c]": 200.0}, "queue.Queue get+put": {"queue": 1000.0},
              "queue.SimpleQueue get+put": {"queue": 100.0}},
     {"1/6 of a queue.Queue": ("check", False), "3x a queue.SimpleQueue": ("check", True)}),
    ("memory", {"entries": 1_000_000, "no ttl": {"corecache[c]": 70.0},
                "ttl": {"corecache[c]": 100.0}},
     {"no ttl": ("check", True), ", ttl": ("check", False)}),
    ("workload", {"runs": {"zipf": {"corecache[c]": {"hit_rate": 0.6, "hit_p50": 50.0},
                                    "cachebox": {"hit_rate": 0.6, "hit_p50": 40.0}}}},
     {"LRU hit rates": ("check", True), "hit p50": ("info", False)}),
    ("hitrate", {"keyspace": 20_000, "accesses": 400_000, "capacities": [200, 1000, 2000],
                 "policies": {"corecache[c]": "LRU", "cachebox": "LRU"},
                 "rates": {"zipf": {"corecache[c]": [0.4, 0.5, 0.6], "cachebox": [0.4, 0.5, 0.61]}}},
     {"other LRU libraries' hit rates": ("check", False)}),
    ("workload", {"threads": [1, 4],
                  "runs": {"zipf": {"corecache[c]": {"hit_rate": 0.6, "mops_1": 3.0, "mops_4": 2.0},
                                    "corecache adaptive[c]": {"hit_rate": 0.7, "mops_1": 2.8,
                                                              "mops_4": 1.7}}}},
     {"adaptive throughput with 1 thread vs": ("check", True),
      "adaptive throughput with 4 threads vs": ("check", False)}),
])
def test_sections_classify_their_targets(name: str, results: Dict[str, Any],
                                         expect: Dict[str, Any]) -> None:
    section = {s.NAME: s for s in cli.SECTIONS}[name]
    rows = [targets.as_target(t) for t in section.targets(results)]
    for part, (kind, met) in expect.items():
        found = [t for t in rows if part in t.text]
        assert len(found) == 1, (part, [t.text for t in rows])
        assert (found[0].kind, found[0].met) == (kind, met), found[0]


def test_distributed_targets_classified() -> None:
    from corecache.bench import distributed
    results = {
        "local": {"LRUCache.get hit": 30.0, "NearCache.get local hit": 50.0,
                  "ReadThroughCache.get local hit": 70.0},
        "remote": {"redis-py GET": 30000.0, "RedisStore.get": 33000.0},
        "ack": {"redis-py SET": 30000.0, "WriteBehindCache.set": 50000.0},
        "batch_seconds": {"get_many(1000)": 0.002, "1000 x get": 0.03,
                          "set_many(1000, ttl)": 0.004, "1000 x set(ttl)": 0.03},
        "round_trips": {"get_many(1000)": 1, "set_many(1000, ttl)": 2},
        "throughput": {"write-through": 900.0, "write-behind, writer": 1800.0,
                       "write-behind, writer_many": 9000.0},
        "writer_ms": 1.0, "sets": 1000,
    }
    rows = distributed.targets(results)
    verdicts = {t.text.split(":")[0]: (t.kind, t.met) for t in rows}
    assert verdicts["NearCache.get local hit vs LRUCache.get hit"] == ("check", True)
    assert verdicts["ReadThroughCache.get local hit vs LRUCache.get hit"] == ("check", False)
    assert verdicts["get_many(1000)"] == ("check", True)
    assert verdicts["set_many(1000, ttl)"] == ("check", False)            # 2 round trips
    assert verdicts["1,000 single calls vs one set_many(1000, ttl)"] == ("check", False)
    wb = [t for t in rows if t.text.startswith("write-behind")]
    assert [(t.kind, t.met, t.limit) for t in wb] == [("check", True, ">= 10x")]
    assert "1.00 ms writer" in wb[0].text
    coalescing = [t for t in rows if t.text.startswith("coalescing")]
    assert [(t.kind, t.met) for t in coalescing] == [("info", True)]
    assert verdicts["acknowledged write-behind set vs raw SET"] == ("check", False)
    skipped = distributed.targets({"skipped": "no redis-server"})
    assert [(t.kind, t.met, t.why) for t in skipped] == [("check", None, "no redis-server")]


def test_the_writer_is_slow_against_the_machine_s_round_trip() -> None:
    from corecache.bench import distributed
    assert distributed.WRITER_ROUND_TRIPS >= 20 and distributed.MIN_WRITER_SECONDS == 0.001


def test_help_lists_every_section_and_the_exit_statuses(capsys: Any) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for section in cli.SECTIONS:
        assert f"  {section.NAME} " in out, section.NAME
    assert "distributed" in out and "3 when one" in out
    assert cli.DURATION["quick"][1] in out


def test_a_run_ends_with_the_time_it_took() -> None:
    line = cli.took(95.4, "quick")
    assert line.startswith("quick mode took 95.4 s (1 min 35 s)")
    assert cli.DURATION["quick"][1] in line and "busier" not in line
    assert "slower or busier" in cli.took(cli.DURATION["quick"][0] + 1, "quick")


def test_smoke_run_saves_classified_targets(smoke_run: Dict[str, Any]) -> None:
    saved = smoke_run["data"]["targets"]
    assert saved["mode"] == "smoke" and saved["checked"] == 0 and saved["missed"] == 0
    kinds = {r["kind"] for r in saved["rows"]}
    assert kinds == {"check", "info"}
    assert all(r["verdict"] != "MISSED" for r in saved["rows"])


def test_slices_cover_the_stream_in_order() -> None:
    from corecache.bench.timing import slices
    keys = list(range(23))
    parts = slices(keys)
    assert len(parts) == 5 and [k for p in parts for k in p] == keys
    assert {len(p) for p in parts} == {4, 5}
    assert slices([1, 2]) == [[1], [2]]


# ---- scripts/bench: a repeat run installs nothing while nothing changed ------------

def _stamp(tree: Any, **env: str) -> str:
    import subprocess
    import sys
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "scripts", "lib.sh")
    r = subprocess.run(["bash", "-c", f'. "{lib}" && source_stamp "{sys.executable}"'],
                       cwd=str(tree), env=dict(os.environ, **env), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_the_install_stamp_follows_the_sources_only(tmp_path: Any) -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isfile(os.path.join(root, "scripts", "lib.sh")):
        pytest.skip("not a source tree")
    for name, text in (("setup.py", "x"), ("pyproject.toml", "x"), ("csrc/cc_lru.c", "int x;"),
                       ("corecache/__init__.py", "x = 1"), ("corecache/_lru.pyx", "y")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    first = _stamp(tmp_path)
    assert len(first) == 64 and _stamp(tmp_path) == first
    # what a build or a run leaves in the tree changes nothing
    (tmp_path / "corecache" / "_lru.c").write_text("generated")
    (tmp_path / "corecache" / "_lru.cpython-311-x86_64-linux-gnu.so").write_text("built")
    (tmp_path / "corecache" / "__pycache__").mkdir()
    (tmp_path / "corecache" / "__pycache__" / "x.cpython-311.pyc").write_text("cached")
    assert _stamp(tmp_path) == first
    # a source, a C file, a build file or a build switch does
    seen = {first}
    for name in ("corecache/__init__.py", "csrc/cc_lru.c", "setup.py"):
        (tmp_path / name).write_text((tmp_path / name).read_text() + "\n# changed")
        seen.add(_stamp(tmp_path))
    (tmp_path / "corecache" / "new.py").write_text("")
    seen.add(_stamp(tmp_path))
    seen.add(_stamp(tmp_path, CORECACHE_DEBUG_BUILD="1"))
    assert len(seen) == 6


def test_the_pure_twin_is_checked_against_cachetools_on_every_lru_row() -> None:
    """Every LRUCache row of the bench compares the pure twin with
    cachetools' LRUCache (at most 1.5x): a row over the limit is MISSED."""
    from corecache.bench import mapping
    results = {op: {"corecache[py]": 100.0, "cachetools": 80.0}
               for op, _, _, _ in mapping.OPERATIONS}
    results["get hit"]["corecache[py]"] = 130.0
    rows = {t.text.split(":")[0]: t for t in mapping.targets(results)}
    for op, _, _, _ in mapping.OPERATIONS:
        t = rows[f"pure twin {op} vs cachetools LRUCache"]
        assert t.kind == targets.CHECK and t.limit == "<= 1.5x"
        assert t.met is (op != "get hit"), (op, t)


def test_mode_sizes_never_hide_what_the_user_gave() -> None:
    """--repeats and --keyspace override the mode's sizes; without them the
    mode's own apply, and hitrate keeps the keyspace its targets are stated
    for (the mode's sizes used to overwrite both, so --repeats was ignored
    and hitrate ran at the workload keyspace)."""
    from corecache.bench import hitrate
    o = cli.options(["--only", "hitrate"])
    assert (o.repeats, o.keyspace, o.hitrate_keyspace) == (
        cli.MODES["default"]["repeats"], cli.MODES["default"]["keyspace"], hitrate.GRID_KEYS)
    o = cli.options(["--repeats", "3", "--keyspace", "5000"])
    assert (o.repeats, o.keyspace, o.hitrate_keyspace) == (3, 5000, 5000)
    assert o.workload_repeats <= 3


def _grid(adaptive: float, keyspace: int = 20_000) -> Dict[str, Any]:
    """A hit-rate grid of 8 traces x 3 sizes where adaptive is `adaptive`
    and libCacheSim's best 0.5 in every cell but the first, where it is 0.45."""
    rates = {}
    for i in range(8):
        rates[f"t{i}"] = {"corecache adaptive": [adaptive] * 3, "corecache[c]": [0.4] * 3,
                          "libCacheSim LRU": [0.4] * 3, "libCacheSim S3FIFO": [0.5] * 3}
    rates["t0"]["corecache adaptive"] = [0.45, adaptive, adaptive]
    return {"keyspace": keyspace, "accesses": 400_000, "capacities": [200, 1000, 2000],
            "policies": {"corecache[c]": "LRU"}, "rates": rates}


@pytest.mark.parametrize("adaptive, near, met", [(0.49, "23 of 24", True),
                                                 (0.47, "0 of 24", False)])
def test_hitrate_cell_targets_count_on_the_default_grid_only(adaptive: float, near: str,
                                                             met: bool) -> None:
    from corecache.bench import hitrate
    rows = {t.text: t for t in hitrate.targets(_grid(adaptive))}
    cells = rows[f"adaptive within {hitrate.WITHIN} of the best libCacheSim policy, cells"]
    assert (cells.measured, cells.met, cells.needs) == (near, met, "default")
    assert cells.counts("default") and not cells.counts("quick")
    below = rows[f"adaptive below LRU - {hitrate.LRU_SLACK}, cells"]
    assert (below.measured, below.met) == ("0", True)
    small = {t.text: t for t in hitrate.targets(_grid(adaptive, keyspace=5000))}
    assert small[cells.text].met is None and "default mode's grid" in small[cells.text].why
