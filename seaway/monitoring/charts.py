"""Inline SVG charts for the drift report: pure functions from numbers to markup.

The report must open offline (no CDN, no script), so each chart is a small SVG drawn here. Every
piece of text that comes from data (feature names, category labels) is escaped; the numbers are
formatted by us. Colours and fonts come from the page's CSS classes (``ref``, ``cur``, ``new``,
``axis``...), so the charts carry geometry only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from markupsafe import Markup, escape

from seaway.monitoring.describe import number as fmt

WIDTH = 360
HEIGHT = 170
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 8, 8, 22  # plot margins (axis labels live in them)
_MAX_LABEL = 22  # characters of a category label shown beside its bars (the rest in a tooltip)


@dataclass(frozen=True)
class Bar:
    """One category of a categorical chart: the share of each side (0..1) and whether the
    category is new (absent from the reference)."""

    label: str
    reference: float
    current: float
    new: bool = False


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` round numbers (1, 2 or 5 times a power of ten apart) within [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    error = raw / power  # in [1, 10): round to the nearest of 1, 2, 5 or 10 (as d3 does)
    step = power * (
        10 if error >= 50**0.5 else 5 if error >= 10**0.5 else 2 if error >= 2**0.5 else 1
    )
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


class _Scale:
    def __init__(self, low: float, high: float, start: float, stop: float) -> None:
        self.low, self.high, self.start, self.stop = low, high, start, stop
        self.span = high - low if high > low else 1.0

    def __call__(self, value: float) -> float:
        return round(self.start + (value - self.low) / self.span * (self.stop - self.start), 2)


def _svg(label: str, body: list[str], *, height: int = HEIGHT, width: int = WIDTH) -> Markup:
    head = (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _y_axis(
    scale: _Scale, ticks: Sequence[float], *, percent: bool = False, width: int = WIDTH
) -> list[str]:
    out = []
    for tick in ticks:
        y = scale(tick)
        text = f"{tick * 100:.3g}%" if percent else fmt(tick)
        out.append(
            f'<line class="grid" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y}" y2="{y}"/>'
            f'<text class="axis" x="{_LEFT - 4}" y="{y + 3}" text-anchor="end">{text}</text>'
        )
    return out


def _x_axis(
    scale: _Scale, ticks: Sequence[tuple[float, str]], *, width: int = WIDTH, ends: bool = False
) -> list[str]:
    """Tick marks and labels; with ``ends`` the first and last labels are aligned inwards."""
    base = HEIGHT - _BOTTOM
    out = [f'<line class="frame" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{base}" y2="{base}"/>']
    for index, (value, text) in enumerate(ticks):
        x = scale(value)
        anchor = "middle"
        if ends and index == 0:
            anchor = "start"
        elif ends and index == len(ticks) - 1:
            anchor = "end"
        out.append(
            f'<line class="frame" x1="{x}" x2="{x}" y1="{base}" y2="{base + 3}"/>'
            f'<text class="axis" x="{x}" y="{base + 14}" text-anchor="{anchor}">{escape(text)}</text>'
        )
    return out


def _legend(items: Sequence[tuple[str, str]], *, dashed: Sequence[str] = ()) -> list[str]:
    out, x = [], _LEFT + 6
    for css, text in items:
        shape = (
            f'<line class="{css}" x1="{x}" x2="{x + 12}" y1="{_TOP + 5}" y2="{_TOP + 5}"/>'
            if css in dashed
            else f'<rect class="{css}" x="{x}" y="{_TOP}" width="10" height="10"/>'
        )
        out.append(
            shape + f'<text class="legend" x="{x + 14}" y="{_TOP + 9}">{escape(text)}</text>'
        )
        x += 20 + 6 * len(text)
    return out


def numeric_chart(
    label: str,
    edges: Sequence[float],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    low: float | None = None,
    high: float | None = None,
    max_bins: int = 40,
) -> Markup:
    """Reference and current distributions over the same bins, overlaid, as densities.

    ``edges`` are the profile's interior bin edges; ``reference`` and ``current`` hold one count
    (or share) per bin, ``len(edges) + 1`` of them: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``.
    The open outer bins are drawn from ``low`` and to ``high`` (the smallest and largest values
    seen), clipped to a quarter of the inner span so one outlier cannot flatten the chart. Fine
    bins are merged in runs down to ``max_bins``: a 1% bin of a small window is mostly noise.
    """
    if len(reference) != len(edges) + 1 or len(current) != len(edges) + 1:
        raise ValueError("a numeric chart needs one count per bin: len(edges) + 1")
    edges, reference, current = _coarsen(edges, reference, current, max_bins)
    bounds = _bin_bounds(edges, low, high)
    ref, cur = _shares(reference), _shares(current)
    widths = [right - left for left, right in bounds]
    ref_density = [share / width for share, width in zip(ref, widths, strict=True)]
    cur_density = [share / width for share, width in zip(cur, widths, strict=True)]
    x = _Scale(bounds[0][0], bounds[-1][1], _LEFT, WIDTH - _RIGHT)
    top = max([*ref_density, *cur_density, 0.0]) or 1.0
    y = _Scale(0.0, top * 1.08, HEIGHT - _BOTTOM, _TOP + 14)
    # gridlines without numbers: a density's unit (share per unit of the feature) tells a reader
    # nothing; each bin's tooltip gives its shares
    body = [line.split("<text", 1)[0] for line in _y_axis(y, nice_ticks(0.0, top, 3))]
    body.append(f'<path class="ref" d="{_steps(bounds, ref_density, x, y)}"/>')
    body.append(f'<path class="cur" d="{_steps(bounds, cur_density, x, y)}"/>')
    last = len(bounds) - 1
    for index, ((left, right), r_share, c_share) in enumerate(zip(bounds, ref, cur, strict=True)):
        where = (
            f"at most {fmt(right)}" if index == 0 and last else
            f"above {fmt(left)}" if index == last and last else
            f"{fmt(left)} to {fmt(right)}"
        )  # fmt: skip
        tip = f"{where}: reference {r_share:.1%}, current {c_share:.1%}"
        body.append(
            f'<rect class="hit" x="{x(left)}" y="{_TOP}" width="{max(round(x(right) - x(left), 2), 0.5)}" '
            f'height="{HEIGHT - _BOTTOM - _TOP}"><title>{escape(tip)}</title></rect>'
        )
    ticks = nice_ticks(bounds[0][0], bounds[-1][1], 4)
    body += _x_axis(x, [(t, fmt(t)) for t in ticks])
    body += _legend([("ref", "reference"), ("cur", "current")])
    return _svg(label, body)


def _coarsen(
    edges: Sequence[float], reference: Sequence[float], current: Sequence[float], max_bins: int
) -> tuple[Sequence[float], Sequence[float], Sequence[float]]:
    """Runs of ``k`` neighbouring bins merged, so that at most ``max_bins`` remain."""
    run = -(-len(reference) // max(max_bins, 1))
    if run <= 1:
        return edges, reference, current

    def merged(counts: Sequence[float]) -> list[float]:
        return [float(sum(counts[i : i + run])) for i in range(0, len(counts), run)]

    return list(edges[run - 1 :: run]), merged(reference), merged(current)


def _bin_bounds(
    edges: Sequence[float], low: float | None, high: float | None
) -> list[tuple[float, float]]:
    """Finite [left, right] of every bin, outer bins included."""
    if not edges:
        centre = low if low is not None and math.isfinite(low) else 0.0
        end = high if high is not None and math.isfinite(high) and high > centre else centre + 1.0
        return [(centre, end)] if end > centre else [(centre - 0.5, centre + 0.5)]
    inner = edges[-1] - edges[0]
    pad = inner / 4 if inner > 0 else max(abs(edges[0]) / 4, 1.0)
    step = pad / 2
    first = edges[0] - step if low is None or not math.isfinite(low) else low
    last = edges[-1] + step if high is None or not math.isfinite(high) else high
    first = min(max(first, edges[0] - pad), edges[0] - step / 10)
    last = max(min(last, edges[-1] + pad), edges[-1] + step / 10)
    points = [first, *edges, last]
    return list(pairwise(points))


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [float(c) / total if total > 0 else 0.0 for c in counts]


def _steps(
    bounds: Sequence[tuple[float, float]], heights: Sequence[float], x: _Scale, y: _Scale
) -> str:
    base = y(0.0)
    parts = [f"M{x(bounds[0][0])},{base}"]
    for (left, right), height in zip(bounds, heights, strict=True):
        parts.append(f"L{x(left)},{y(height)}L{x(right)},{y(height)}")
    parts.append(f"L{x(bounds[-1][1])},{base}Z")
    return "".join(parts)


def category_chart(label: str, bars: Sequence[Bar]) -> Markup:
    """Reference and current shares per category, side by side; new categories marked."""
    row = 18
    height = _TOP + 16 + row * max(len(bars), 1) + 6
    left = 8 + 6 * min(_MAX_LABEL, max([len(b.label) for b in bars] + [4])) + 8
    x = _Scale(0.0, max([b.reference for b in bars] + [b.current for b in bars] + [0.01]),
               left, WIDTH - _RIGHT - 40)  # fmt: skip
    keys = [("ref", "reference"), ("cur", "current")]
    body = _legend([*keys, ("new", "new category")] if any(b.new for b in bars) else keys)
    for index, bar in enumerate(bars):
        top = _TOP + 16 + index * row
        text = bar.label if len(bar.label) <= _MAX_LABEL else bar.label[: _MAX_LABEL - 1] + "…"
        tip = f"{bar.label}: reference {bar.reference:.1%}, current {bar.current:.1%}" + (
            " (new)" if bar.new else ""
        )
        css = "cur new" if bar.new else "cur"
        body.append(
            f'<g class="bar"><title>{escape(tip)}</title>'
            f'<text class="axis{" newlabel" if bar.new else ""}" x="{left - 4}" y="{top + 11}" '
            f'text-anchor="end">{escape(text)}</text>'
            f'<rect class="ref" x="{left}" y="{top + 1}" width="{x(bar.reference) - left}" height="7"/>'
            f'<rect class="{css}" x="{left}" y="{top + 8}" width="{x(bar.current) - left}" height="7"/>'
            f'<text class="axis" x="{max(x(bar.reference), x(bar.current)) + 3}" y="{top + 11}">'
            f"{bar.current:.1%}</text></g>"
        )
    return _svg(label, body, height=height)


def time_chart(
    label: str,
    times: Sequence[datetime],
    series: Mapping[str, Sequence[float | None]],
    *,
    threshold: float | None = None,
    percent: bool = False,
    width: int = 2 * WIDTH,
) -> Markup:
    """Lines over time buckets (one per series; a gap where a value is missing) and an optional
    dashed threshold."""
    if not times:
        return _svg(
            label, ['<text class="axis" x="10" y="20">no data in this window</text>'], width=width
        )
    points = [v for values in series.values() for v in values if v is not None and math.isfinite(v)]
    if threshold is not None:
        points.append(threshold)
    low, high = (min(points), max(points)) if points else (0.0, 1.0)
    pad = (high - low) * 0.1 if high > low else max(abs(high) * 0.1, 0.05)
    low, high = low - pad, high + pad
    if percent:
        low, high = max(low, 0.0), min(high, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    stamps = [t.timestamp() for t in times]
    x = _Scale(stamps[0], stamps[-1], _LEFT + 6, width - _RIGHT - 6)
    y = _Scale(low, high, HEIGHT - _BOTTOM, _TOP + 14)
    body = _y_axis(y, nice_ticks(low, high, 3), percent=percent, width=width)
    if threshold is not None:
        body.append(
            f'<line class="threshold" x1="{_LEFT}" x2="{width - _RIGHT}" '
            f'y1="{y(threshold)}" y2="{y(threshold)}"><title>threshold {fmt(threshold)}</title></line>'
        )
    for number, (name, values) in enumerate(series.items()):
        css = f"line s{number}"
        segments: list[list[tuple[float, float]]] = []
        current: list[tuple[float, float]] = []
        for stamp, value in zip(stamps, values, strict=True):
            if value is None or not math.isfinite(value):
                segments.append(current)
                current = []
                continue
            current.append((x(stamp), y(value)))
        segments.append(current)
        for segment in segments:
            if len(segment) > 1:
                path = "M" + "L".join(f"{px},{py}" for px, py in segment)
                body.append(f'<path class="{css}" d="{path}"/>')
        for stamp, time, value in zip(stamps, times, values, strict=True):
            if value is not None and math.isfinite(value):
                tip = f"{name} {time:%Y-%m-%d %H:%M}: {fmt(value)}"
                body.append(
                    f'<circle class="dot s{number}" cx="{x(stamp)}" cy="{y(value)}" r="2.5">'
                    f"<title>{escape(tip)}</title></circle>"
                )
    labels = [(stamps[0], times[0]), (stamps[-1], times[-1])]
    if len(times) > 2:
        labels.insert(1, (stamps[len(times) // 2], times[len(times) // 2]))
    span = stamps[-1] - stamps[0]
    pattern = "%m-%d %H:%M" if span < 3 * 86400 else "%Y-%m-%d"
    body += _x_axis(x, [(s, t.strftime(pattern)) for s, t in labels], width=width, ends=True)
    legend = [(f"s{number}", name) for number, name in enumerate(series)]
    if threshold is not None:
        legend.append(("threshold", "threshold"))
    body += _legend(legend, dashed=[css for css, _ in legend])
    return _svg(label, body, width=width)
