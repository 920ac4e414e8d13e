"""``--plot PATH.png``: one picture of a run (matplotlib, in the ``bench``
extra).  Top rows: hit rate against cache size, one panel per trace of the
grid (four to a row), a line per policy (the LRU libraries coincide, so LRU
is drawn once; corecache's adaptive and LRU bold, libCacheSim's
dash-dotted) and the optimum dashed.  Bottom row: median and p99 latency of a hit,
a miss and a set per library under the Zipf pattern; decorated-call hits
against functools; cost against cache size (flat is O(1)); throughput
against threads.  Panels whose section was not run are left out."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

# one colour per library, the same in every panel; corecache stands out
COLOURS = {
    "corecache[c]": "#d62728", "corecache[py]": "#ff9896", "dict": "#7f7f7f",
    "functools": "#7f7f7f", "lru-dict": "#1f77b4", "cachebox": "#2ca02c",
    "cachetools": "#9467bd", "moka-py": "#8c564b", "theine": "#e377c2",
    "fastcache": "#17becf", "cachetools LFU": "#bcbd22", "cachebox LFU": "#98df8a",
    "cachebox FIFO": "#c5b0d5", "optimal (Belady)": "#000000",
    "corecache adaptive": "#08519c", "libCacheSim LRU": "#d62728",
    "libCacheSim WTinyLFU": "#e7969c", "libCacheSim S3FIFO": "#31a354",
    "libCacheSim Sieve": "#fdae6b", "libCacheSim ARC": "#756bb1",
    "libCacheSim LIRS": "#636363",
}
PANELS_PER_ROW = 4       # hit-rate panels
FALLBACK = ["#aec7e8", "#ffbb78", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5"]


def _colour(name: str, extra: Dict[str, str]) -> str:
    if name in COLOURS:
        return COLOURS[name]
    if name not in extra:
        extra[name] = FALLBACK[len(extra) % len(FALLBACK)]
    return extra[name]


def _policy_lines(rates: Dict[str, List[float]],
                  policies: Dict[str, str]) -> List[Tuple[str, List[float]]]:
    """One line per policy: LRU libraries agree, so LRU is corecache's line
    (labelled with the others' names); other policies, one per library."""
    lines: List[Tuple[str, List[float]]] = []
    lru = [n for n in rates if policies.get(n) == "LRU"]
    if lru:
        first = "corecache[c]" if "corecache[c]" in lru else lru[0]
        others = [n for n in lru if n != first]
        label = f"LRU: {first}" + (f" (= {', '.join(others)})" if others else "")
        lines.append((label, rates[first]))
    for name, rs in rates.items():
        if name in lru:
            continue
        pol = policies.get(name, "")
        label = name if pol in ("optimal", "") else f"{pol}: {name}"
        lines.append((label, rs))
    return lines


def plot(data: Dict[str, Any], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec

    results = data.get("results", {})
    extra: Dict[str, str] = {}
    hr = results.get("hitrate")
    patterns = list(hr["rates"]) if hr else []
    bottom = [name for name in ("workload", "lru_cache", "scaling", "threads")
              if (results.get("workload") if name == "threads" else results.get(name))]
    hr_rows = -(-len(patterns) // PANELS_PER_ROW)
    rows = hr_rows + (1 if bottom else 0)
    if rows == 0:
        raise ValueError("nothing to plot: run the hitrate, workload, lru_cache or scaling "
                         "section")
    ncols = max(min(len(patterns), PANELS_PER_ROW), len(bottom), 1)
    height = 4.3 * rows + 1.0
    fig = plt.figure(figsize=(4.2 * ncols, height), dpi=110)
    outer = GridSpec(rows, 1, figure=fig, hspace=0.32)
    m = data.get("machine", {})
    fig.suptitle(f"corecache {m.get('corecache', '')} on {m.get('python', '')}, "
                 f"{m.get('cpu', '')} ({m.get('cores', '?')} cores)  "
                 f"[{data.get('options', {}).get('mode', '')}]",
                 fontsize=12, fontweight="bold", y=1 - 0.12 / height)
    row = 0
    if patterns:
        caps = hr["capacities"]
        ks = hr["keyspace"]
        x = [100.0 * c / ks for c in caps]
        first_ax = None
        for i, label in enumerate(patterns):
            if i % PANELS_PER_ROW == 0:
                top = outer[row + i // PANELS_PER_ROW].subgridspec(
                    1, min(PANELS_PER_ROW, len(patterns)), wspace=0.08)
            ax = fig.add_subplot(top[0, i % PANELS_PER_ROW], sharey=first_ax)
            first_ax = first_ax or ax
            for name, rs in _policy_lines(hr["rates"][label], hr.get("policies", {})):
                key = name.split(": ", 1)[-1].split(" (=")[0]
                opt = name.startswith("optimal")
                ours = key in ("corecache[c]", "corecache adaptive")
                ax.plot(x, [r if r is not None else float("nan") for r in rs],
                        marker="o" if not opt else None, markersize=3.5,
                        linestyle="--" if opt else "-." if "libCacheSim" in key else "-",
                        linewidth=2.6 if ours else 1.3,
                        color=_colour(key, extra), label=name,
                        zorder=4 if ours else 3 if opt else 2)
            ax.set_xscale("log")
            ax.set_xticks(x)
            ax.set_xticklabels([f"{v:g}%" for v in x], fontsize=8)
            ax.minorticks_off()
            ax.set_title(label, fontsize=11)
            ax.set_xlabel("cache size (share of keys)", fontsize=9)
            ax.grid(True, alpha=0.3)
            ax.set_ylim(0, 1)
            if i % PANELS_PER_ROW == 0:
                ax.set_ylabel("hit rate (second half of the stream)", fontsize=9.5)
            else:
                ax.tick_params(labelleft=False)
        handles, labels = first_ax.get_legend_handles_labels() if first_ax else ([], [])
        fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)),
                   fontsize=8.5, frameon=False, bbox_to_anchor=(0.5, 1 - 0.45 / height))
        row += hr_rows
    if bottom:
        low = outer[row].subgridspec(1, len(bottom), wspace=0.42)
        for j, name in enumerate(bottom):
            ax = fig.add_subplot(low[0, j])
            if name == "workload":
                _latency(ax, results["workload"], extra)
            elif name == "lru_cache":
                _decorators(ax, results["lru_cache"], extra)
            elif name == "scaling":
                _scaling(ax, results["scaling"], extra)
            else:
                _threads(ax, results["workload"], extra)
    legend_rows = -(-len(_policy_lines(hr["rates"][patterns[0]], hr.get("policies", {})))
                    // 4) if patterns else 0
    fig.subplots_adjust(top=1 - (0.85 + 0.22 * legend_rows) / height, bottom=0.65 / height,
                        left=0.05, right=0.98)
    fig.savefig(path)
    plt.close(fig)


def _pick_run(w: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    runs = w.get("runs", {})
    for label, peers in runs.items():
        if label.startswith("zipf"):
            return label, peers
    label = next(iter(runs))
    return label, runs[label]


def _latency(ax: Any, w: Dict[str, Any], extra: Dict[str, str]) -> None:
    label, peers = _pick_run(w)
    names = [n for n in peers if n != "corecache[py]"] or list(peers)
    ops = ["hit", "miss", "set"]
    shades = {"hit": 1.0, "miss": 0.7, "set": 0.45}
    h = 0.8 / len(ops)
    for i, name in enumerate(names):
        for k, op in enumerate(ops):
            p50, p99 = peers[name].get(f"{op}_p50"), peers[name].get(f"{op}_p99")
            if p50 is None or p50 != p50:
                continue
            y = i + (k - 1) * h
            ax.barh(y, max(p50, 1.0), height=h * 0.92, color=_colour(name, extra),
                    alpha=shades[op], edgecolor="none")
            if p99 is not None and p99 == p99 and p99 > p50:
                ax.plot([max(p50, 1.0), p99], [y, y], color="black", linewidth=0.7)
                ax.plot([p99], [y], marker="|", color="black", markersize=5)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    handles = [Patch(color="#555555", alpha=shades[op], label=op) for op in ops]
    handles.append(Line2D([], [], color="black", linewidth=0.7, marker="|", label="p99"))
    ax.legend(handles=handles, fontsize=7.5, frameon=False, loc="upper right", ncol=2)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8.5)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ns per operation (bar: median, whisker: p99)", fontsize=9)
    ax.set_title(f"latency: hit / miss / set\n{label}", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)


def _decorators(ax: Any, d: Dict[str, Any], extra: Dict[str, str]) -> None:
    rows = [r for r in d if isinstance(d[r], dict)]
    row = "hit, 1 int arg" if "hit, 1 int arg" in d else rows[0]
    figs = {k: v for k, v in d[row].items() if v is not None and v == v}
    names = sorted(figs, key=lambda n: figs[n])
    base = figs.get("functools")
    ax.barh(range(len(names)), [figs[n] for n in names],
            color=[_colour(n.replace("[py]", "") if n.startswith("functools") else n, extra)
                   for n in names])
    for i, n in enumerate(names):
        text = f" {figs[n]:.0f} ns" + (f"  {figs[n] / base:.2f}x" if base else "")
        ax.text(figs[n], i, text, va="center", fontsize=7.5)
    if figs:
        ax.set_xlim(min(figs.values()) / 1.5, max(figs.values()) * 6)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8.5)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ns per call (ratio to functools)", fontsize=9)
    ax.set_title(f"@lru_cache: {row}", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)


def _scaling(ax: Any, s: Dict[str, Any], extra: Dict[str, str]) -> None:
    sizes = s["sizes"]
    op = next(iter(s["ops"]))
    for name, figs in s["ops"][op].items():
        pts = [(x, y) for x, y in zip(sizes, figs) if y is not None]
        if len(pts) < 2:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3.5,
                linewidth=2.6 if name == "corecache[c]" else 1.4,
                linestyle=":" if name == "dict" else "-",
                color=_colour(name, extra), label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("entries in the cache", fontsize=9)
    ax.set_ylabel("ns per operation", fontsize=9)
    ax.set_title(f"scaling: {op}\n(flat = O(1); dict dotted)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, frameon=False, ncol=2, loc="best")


def _threads(ax: Any, w: Dict[str, Any], extra: Dict[str, str]) -> None:
    label, peers = _pick_run(w)
    threads = w.get("threads", [])
    for name, f in peers.items():
        ys = [f.get(f"mops_{t}") for t in threads]
        if any(y is None for y in ys):
            continue
        ax.plot(threads, ys, marker="o", markersize=3.5,
                linewidth=2.6 if name == "corecache[c]" else 1.4,
                linestyle=":" if name == "dict" else "-",
                color=_colour(name, extra), label=name)
    ax.set_xticks(threads)
    ax.set_yscale("log")
    ax.set_xlabel("threads sharing one cache", fontsize=9)
    ax.set_ylabel("million operations per second", fontsize=9)
    ax.set_title(f"throughput\n{label}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, frameon=False, ncol=2, loc="best")
