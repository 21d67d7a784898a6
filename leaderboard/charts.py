"""Static SVG charts for the leaderboard, drawn with matplotlib at build time.

Deterministic output: the Agg backend, a fixed ``svg.hashsalt``, text kept as SVG text (no embedded
glyph paths), no creation date in the metadata. matplotlib is imported only when a chart is drawn
(``pip install 'evalsuite[leaderboard]'``).
"""

from __future__ import annotations

import io
import math
from typing import Any, Mapping, Sequence

from evalsuite.errors import UserError

_plt: Any = None


def _pyplot() -> Any:
    global _plt
    if _plt is None:
        try:
            import matplotlib
        except ModuleNotFoundError:
            raise UserError("the leaderboard draws its charts with matplotlib: "
                            "pip install 'evalsuite[leaderboard]'") from None
        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        _plt = plt
    _plt.rcParams.update({
        "svg.hashsalt": "evalsuite-leaderboard", "svg.fonttype": "none", "font.size": 9,
        "font.family": "DejaVu Sans", "axes.spines.top": False, "axes.spines.right": False,
        "figure.dpi": 100, "path.simplify": False,
        # model labels, task names and titles come from run folders: drawn as written, never typeset
        # ("m$\\evil{$" would otherwise crash mathtext; usetex would run LaTeX on it)
        "text.parse_math": False, "text.usetex": False,
    })
    return _plt


def _svg(fig: Any) -> bytes:
    buf = io.BytesIO()
    # fixed margins (set per chart) instead of bbox_inches="tight": one draw per chart, not two
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "evalsuite leaderboard"})
    _pyplot().close(fig)
    return buf.getvalue()


def _num_key(s: str) -> tuple[int, float, str]:
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def length_curves(series: Mapping[str, Mapping[str, float | None]], title: str, ylabel: str) -> bytes:
    """One line per model: score against context length (``{model: {length: value}}``)."""
    plt = _pyplot()
    lengths = sorted({k for s in series.values() for k in s}, key=_num_key)
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    for label, s in series.items():
        pts = [(i, s[k]) for i, k in enumerate(lengths) if s.get(k) is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", linewidth=1.5, markersize=3.5,
                    label=label)
    ax.set_xticks(range(len(lengths)))
    ax.set_xticklabels([_length_label(k) for k in lengths])
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", linewidth=0.5, alpha=0.5)
    _legend(fig, ax, len(series))
    return _svg(fig)


def _legend(fig: Any, ax: Any, n: int) -> None:
    if n > 1:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False,
                  ncol=1 if n <= 16 else 2)
        fig.subplots_adjust(left=0.08, right=0.72 if n <= 16 else 0.55, bottom=0.15, top=0.9)
    else:
        fig.subplots_adjust(left=0.08, right=0.97, bottom=0.15, top=0.9)


def _length_label(k: str) -> str:
    try:
        v = float(k)
    except ValueError:
        return k
    if v >= 1024 and v % 1024 == 0:
        return f"{int(v // 1024)}k"
    return f"{v:g}"


def depth_length_heatmap(grid: Mapping[str, Mapping[str, float | None]], title: str) -> bytes:
    """Score by needle depth (x, percent of the context) and context length (y):
    ``{length: {depth: value}}``. Depths are binned to tenths of the context when there are many."""
    plt = _pyplot()
    lengths = sorted(grid, key=_num_key)
    raw_depths = sorted({d for row in grid.values() for d in row}, key=_num_key)
    numeric = all(_num_key(d)[0] == 0 for d in raw_depths)
    if numeric and len(raw_depths) > 12:
        edges = [i * 10 for i in range(11)]
        cols = [f"{a}-{b}" for a, b in zip(edges, edges[1:])]

        def col_of(d: str) -> int:
            return min(9, max(0, int(float(d) // 10)))
    else:
        cols = raw_depths

        def col_of(d: str) -> int:
            return raw_depths.index(d)
    sums = [[0.0] * len(cols) for _ in lengths]
    counts = [[0] * len(cols) for _ in lengths]
    for i, length in enumerate(lengths):
        for d, v in grid[length].items():
            if v is None:
                continue
            j = col_of(d)
            sums[i][j] += float(v)
            counts[i][j] += 1
    data = [[(sums[i][j] / counts[i][j]) if counts[i][j] else math.nan for j in range(len(cols))]
            for i in range(len(lengths))]
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(lengths) + 1.4))
    import numpy as np

    arr = np.ma.masked_invalid(np.array(data, dtype=float))
    mesh = ax.pcolormesh(arr, cmap="RdYlGn", vmin=0, vmax=100, edgecolors="white", linewidth=0.5)
    ax.set_xticks([j + 0.5 for j in range(len(cols))])
    ax.set_xticklabels(cols, rotation=45 if len(cols) > 8 else 0, fontsize=7)
    ax.set_yticks([i + 0.5 for i in range(len(lengths))])
    ax.set_yticklabels([_length_label(k) for k in lengths])
    ax.set_xlabel("needle depth (% of context)")
    ax.set_ylabel("context length")
    ax.set_title(title)
    fig.colorbar(mesh, ax=ax, fraction=0.03, pad=0.02, ticks=[0, 50, 100])
    fig.subplots_adjust(left=0.1, right=0.9, bottom=0.62 / fig.get_figheight() + 0.12, top=0.88)
    return _svg(fig)


def bucket_bars(series: Mapping[str, Mapping[str, float | None]], buckets: Sequence[str], title: str,
                ylabel: str) -> bytes:
    """Grouped bars: one group per length bucket, one bar per model (``{model: {bucket: value}}``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 3.4))
    k = max(1, len(series))
    width = 0.8 / k
    for m, (label, s) in enumerate(series.items()):
        xs = [i + (m - (k - 1) / 2) * width for i in range(len(buckets))]
        ys = [s.get(b) if s.get(b) is not None else 0.0 for b in buckets]
        ax.bar(xs, ys, width=width * 0.95, label=label)
    ax.set_xticks(range(len(buckets)))
    ax.set_xticklabels(list(buckets))
    ax.set_xlabel("input length bucket")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", linewidth=0.5, alpha=0.5)
    _legend(fig, ax, len(series))
    return _svg(fig)
