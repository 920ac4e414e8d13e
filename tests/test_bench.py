"""The benchmark's own logic: workload generators, percentiles, the
--compare verdicts on synthetic figures, the JSON round trip, and a smoke
run of every section at minimal sizes (figures are not checked, only that
each section runs, reports and saves)."""
from __future__ import annotations

import collections
import json
import math
import os
from typing import Any, Dict

import pytest

from corecache.bench import __main__ as cli
from corecache.bench import compare, workloads
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
    assert cli.main(["--smoke", "--repeats", "1", "--threads", "1,2", "--json", path]) == 0
    with open(path) as f:
        return {"path": path, "data": json.load(f), "dir": d}


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
        "throughput": {"write-through (writer 1 ms/call)": 800.0,
                       "write-behind, writer_many 1 ms/call": 11000.0},
        "round_trips": {"get_many(1000)": 1, "get_many(1000) server commands": "1 MGET"},
    }
    figs = {f.key: f for f in distributed.figures(results)}
    assert figs["distributed/remote/redis-py GET"].who == "redis-py"
    assert not figs["distributed/remote/redis-py GET"].ours
    assert figs["distributed/remote/RedisStore.get"].ours
    assert figs["distributed/throughput/write-behind, writer_many 1 ms/call"].higher_is_better
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
