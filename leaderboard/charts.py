"""Charts for the leaderboard, written directly as SVG text or HTML tables (no plotting library).

* ``length_curves`` / ``bucket_bars``: small SVG documents (``<img>`` on the page). Drawing one takes well
  under a millisecond, so the charts that change whenever a run is added (they show every model) cost
  nothing on an incremental build, and the output is deterministic by construction.
* ``heatmap_table``: the depth x length grid as numbers for an HTML table whose cells are coloured by a
  CSS class (``h0`` .. ``h20``: RdYlGn in 5-point steps, in ``static/site.css``); no image file and no
  inline style, so the page's Content-Security-Policy needs no ``'unsafe-inline'``.

All text from results (model labels, task names, bucket and length names) is written as escaped text
content: nothing is parsed as markup and nothing is typeset (a label like ``m$\\evil{$`` is drawn as is).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

# tab10, then its lighter companions; beyond 20 series the palette repeats with dashed lines
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
           "#dbdb8d", "#9edae5")
DASHES = ("", "6 3", "2 2", "8 3 2 3")
FONT = 'font-family="DejaVu Sans, Verdana, sans-serif"'
WIDTH = 720
LABEL_CHARS = 36
# characters XML 1.0 does not allow (an SVG holding one would not render at all)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _esc(s: Any) -> str:
    text = _NOT_XML.sub("\ufffd", str(s))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _short(s: str, n: int = LABEL_CHARS) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"


def _num_key(s: str) -> tuple[int, float, str]:
    try:
        v = float(s)
        return (0, v, s) if math.isfinite(v) else (1, 0.0, s)
    except ValueError:
        return (1, 0.0, s)


def length_label(k: str) -> str:
    """``32768`` -> ``32k``; other numbers as short floats; names as they are."""
    try:
        v = float(k)
    except ValueError:
        return k
    if not math.isfinite(v):
        return k
    if v >= 1024 and v % 1024 == 0:
        return f"{int(v // 1024)}k"
    return f"{v:g}"


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (about ``n`` of them)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v < hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


class _Frame:
    """Plot area, y axis (value) and categorical x axis, title, axis labels and an optional legend."""

    def __init__(self, title: str, xlabel: str, ylabel: str, xcats: Sequence[str], values: Sequence[float],
                 legend: Sequence[str], height: int = 360):
        self.legend = list(legend) if len(legend) > 1 else []
        self.height = height
        self.left, self.top = 64, 34
        legend_w = 0 if not self.legend else (240 if len(self.legend) <= 16 else 350)
        self.right = WIDTH - 16 - legend_w
        self.bottom = height - 52
        lo = min([0.0, *values]) if values else 0.0
        hi = max(values) if values else 1.0
        self.ticks = _nice_ticks(lo, hi)
        self.ymin, self.ymax = self.ticks[0], self.ticks[-1]
        self.xcats = list(xcats)
        self.parts: list[str] = []
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel

    def y(self, v: float) -> float:
        span = (self.ymax - self.ymin) or 1.0
        return self.bottom - (v - self.ymin) / span * (self.bottom - self.top)

    def xband(self, i: int) -> tuple[float, float]:
        """Left and right edge of category ``i``'s band."""
        w = (self.right - self.left) / max(1, len(self.xcats))
        return self.left + i * w, self.left + (i + 1) * w

    def xmid(self, i: int) -> float:
        a, b = self.xband(i)
        return (a + b) / 2

    def render(self) -> bytes:
        out = [f'<?xml version="1.0" encoding="utf-8"?>\n'
               f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{self.height}" '
               f'viewBox="0 0 {WIDTH} {self.height}" {FONT} font-size="11">\n'
               f'<title>{_esc(self.title)}</title>\n'
               f'<rect width="{WIDTH}" height="{self.height}" fill="#ffffff"/>\n'
               f'<text x="{(self.left + self.right) / 2:.1f}" y="20" text-anchor="middle" font-size="13">'
               f'{_esc(_short(self.title, 90))}</text>\n']
        for t in self.ticks:
            y = self.y(t)
            out.append(f'<line x1="{self.left}" x2="{self.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9dee6" '
                       f'stroke-width="0.7"/><text x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                       f'{_esc(_fmt(t))}</text>\n')
        for i, c in enumerate(self.xcats):
            out.append(f'<text x="{self.xmid(i):.1f}" y="{self.bottom + 16}" text-anchor="middle">'
                       f'{_esc(_short(c, 14))}</text>\n')
        out.append(f'<line x1="{self.left}" x2="{self.right}" y1="{self.bottom}" y2="{self.bottom}" '
                   f'stroke="#1d2330"/><line x1="{self.left}" x2="{self.left}" y1="{self.top}" y2="{self.bottom}" '
                   f'stroke="#1d2330"/>\n')
        out.append(f'<text x="{(self.left + self.right) / 2:.1f}" y="{self.height - 14}" text-anchor="middle">'
                   f'{_esc(self.xlabel)}</text>\n')
        cy = (self.top + self.bottom) / 2
        out.append(f'<text x="16" y="{cy:.1f}" text-anchor="middle" transform="rotate(-90 16 {cy:.1f})">'
                   f'{_esc(self.ylabel)}</text>\n')
        out.extend(self.parts)
        if self.legend:
            cols = 1 if len(self.legend) <= 16 else 2
            rows = math.ceil(len(self.legend) / cols)
            step = min(18.0, (self.height - 2 * self.top) / max(1, rows))
            for k, label in enumerate(self.legend):
                col, row = divmod(k, rows)
                x = self.right + 16 + col * 172
                y = self.top + 6 + row * step
                out.append(f'<g><title>{_esc(label)}</title>{self._swatch(k, x, y)}'
                           f'<text x="{x + 24}" y="{y + 4:.1f}" font-size="10">'
                           f'{_esc(_short(label, 24 if cols == 2 else LABEL_CHARS))}</text></g>\n')
        out.append("</svg>\n")
        return "".join(out).encode("utf-8")

    def _swatch(self, k: int, x: float, y: float) -> str:
        return (f'<line x1="{x}" x2="{x + 18}" y1="{y:.1f}" y2="{y:.1f}" stroke="{PALETTE[k % len(PALETTE)]}" '
                f'stroke-width="2.5"{_dash(k)}/>')


def _dash(k: int) -> str:
    d = DASHES[(k // len(PALETTE)) % len(DASHES)]
    return f' stroke-dasharray="{d}"' if d else ""


def length_curves(series: Mapping[str, Mapping[str, float | None]], title: str, ylabel: str) -> bytes:
    """One line per model: score against context length (``{model: {length: value}}``)."""
    lengths = sorted({str(k) for s in series.values() for k in s}, key=_num_key)
    values = [float(v) for s in series.values() for v in s.values() if _finite(v)]
    fr = _Frame(title, "context length (tokens)", ylabel, [length_label(k) for k in lengths], values,
                list(series))
    for k, (label, s) in enumerate(series.items()):
        pts = [(fr.xmid(i), fr.y(float(s[L]))) for i, L in enumerate(lengths) if _finite(s.get(L))]
        if not pts:
            continue
        color = PALETTE[k % len(PALETTE)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in pts)
        fr.parts.append(f'<g><title>{_esc(label)}</title><polyline points="{path}" fill="none" stroke="{color}" '
                        f'stroke-width="1.6"{_dash(k)}/>{dots}</g>\n')
    return fr.render()


def bucket_bars(series: Mapping[str, Mapping[str, float | None]], buckets: Sequence[str], title: str,
                ylabel: str) -> bytes:
    """Grouped bars: one group per length bucket, one bar per model (``{model: {bucket: value}}``)."""
    values = [float(v) for s in series.values() for v in s.values() if _finite(v)]
    fr = _Frame(title, "input length bucket", ylabel, list(buckets), values, list(series))
    k_all = max(1, len(series))
    for i, b in enumerate(buckets):
        a, z = fr.xband(i)
        inner = (z - a) * 0.8
        w = inner / k_all
        bars = []
        for k, (label, s) in enumerate(series.items()):
            v = s.get(b)
            if not _finite(v):
                continue
            y0, y1 = fr.y(0.0 if fr.ymin <= 0 <= fr.ymax else fr.ymin), fr.y(float(v))
            x = a + (z - a) * 0.1 + k * w
            bars.append(f'<rect x="{x:.1f}" y="{min(y0, y1):.1f}" width="{max(w * 0.92, 0.5):.1f}" '
                        f'height="{abs(y1 - y0):.1f}" fill="{PALETTE[k % len(PALETTE)]}"><title>'
                        f'{_esc(label)}: {_esc(_fmt(float(v)))}</title></rect>')
        fr.parts.append("".join(bars) + "\n")
    return fr.render()


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def heatmap_table(grid: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A depth x length grid (``{length: {depth: value}}``, values 0-100) as rows for an HTML table:
    ``{"cols": [depth labels], "rows": [{"label": "32k", "cells": [{"value", "text", "cls"}]}]}``.
    Depths are binned to tenths of the context when there are more than 12 distinct numeric depths;
    ``cls`` is ``h0`` .. ``h20`` (the value in 5-point steps) or ``hn`` for an empty cell."""
    lengths = sorted((str(k) for k in grid), key=_num_key)
    raw_depths = sorted({str(d) for row in grid.values() if isinstance(row, Mapping) for d in row}, key=_num_key)
    numeric = all(_num_key(d)[0] == 0 for d in raw_depths)
    if numeric and len(raw_depths) > 12:
        edges = [i * 10 for i in range(11)]
        cols = [f"{a}-{b}" for a, b in zip(edges, edges[1:])]

        def col_of(d: str) -> int:
            return min(9, max(0, int(float(d) // 10)))
    else:
        cols = raw_depths
        where = {d: j for j, d in enumerate(raw_depths)}

        def col_of(d: str) -> int:
            return where[d]
    rows = []
    for length in lengths:
        sums, counts = [0.0] * len(cols), [0] * len(cols)
        row = grid.get(length)
        if row is None:  # a numeric key given as a number
            row = next((v for k, v in grid.items() if str(k) == length), {})
        for d, v in (row.items() if isinstance(row, Mapping) else ()):
            if not _finite(v):
                continue
            j = col_of(str(d))
            sums[j] += float(v)
            counts[j] += 1
        cells = []
        for j in range(len(cols)):
            if counts[j]:
                v = sums[j] / counts[j]
                step = min(20, max(0, int(round(v / 5))))
                cells.append({"value": v, "text": f"{v:.0f}", "cls": f"h{step}"})
            else:
                cells.append({"value": None, "text": "", "cls": "hn"})
        rows.append({"label": length_label(length), "cells": cells})
    return {"cols": cols, "rows": rows}


def heatmap_html(grid: Mapping[str, Mapping[str, Any]], caption: str) -> Any:
    """:func:`heatmap_table` as an HTML ``<figure>`` (escaped here: the caption is a model label)."""
    from markupsafe import Markup, escape

    t = heatmap_table(grid)
    out = [f'<figure class="heatmap"><table class="heatmap">\n<caption>{escape(caption)}</caption>\n'
           '<thead><tr><th scope="col">length \\ depth</th>']
    out += [f'<th scope="col">{escape(c)}</th>' for c in t["cols"]]
    out.append("</tr></thead>\n<tbody>\n")
    for row in t["rows"]:
        out.append(f'<tr><th scope="row">{escape(row["label"])}</th>')
        for c in row["cells"]:
            title = f' title="{c["value"]:.2f}"' if c["value"] is not None else ""
            out.append(f'<td class="{c["cls"]}"{title}>{c["text"]}</td>')
        out.append("</tr>\n")
    out.append("</tbody>\n</table></figure>")
    return Markup("".join(out))
