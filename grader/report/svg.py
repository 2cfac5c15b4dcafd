"""Charts as inline SVG strings, drawn here in Python: no plotting library, no script, no network."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = 'font-family="system-ui, sans-serif" font-size="11"'
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 48, 12, 44, 36
LEGEND_Y = 30  # between the title and the plot, so no line can run through it


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float]
    color: str


@dataclass(frozen=True)
class Frame:
    """The plotting area of a chart and the data ranges it maps."""

    width: int
    height: int
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def x(self, value: float) -> float:
        low, high = self.x_range
        span = (high - low) or 1.0
        return MARGIN_LEFT + (value - low) / span * (self.width - MARGIN_LEFT - MARGIN_RIGHT)

    def y(self, value: float) -> float:
        low, high = self.y_range
        span = (high - low) or 1.0
        return self.height - MARGIN_BOTTOM - (value - low) / span * (self.height - MARGIN_TOP - MARGIN_BOTTOM)


def nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten (at least 1
    when `integer`, for counts)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integer:
        step = max(1.0, round(step))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(index * step, 10) for index in range(first, last + 1)]


def _tick_label(value: float) -> str:
    return f"{value:.3g}"


def _axes(frame: Frame, x_ticks: Sequence[float], y_ticks: Sequence[float], x_label: str, title: str) -> list[str]:
    parts = [f'<text x="{frame.width / 2:.1f}" y="16" text-anchor="middle" {FONT} font-weight="600">'
             f"{escape(title)}</text>"]
    bottom = frame.height - MARGIN_BOTTOM
    for tick in y_ticks:
        y = frame.y(tick)
        parts.append(f'<line x1="{MARGIN_LEFT}" x2="{frame.width - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#e3e3e3"/>')
        parts.append(f'<text x="{MARGIN_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{_tick_label(tick)}</text>')
    for tick in x_ticks:
        x = frame.x(tick)
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" {FONT}>{_tick_label(tick)}</text>')
    right = frame.width - MARGIN_RIGHT
    parts.append(f'<line x1="{MARGIN_LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#555"/>')
    parts.append(f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT}" y1="{MARGIN_TOP}" y2="{bottom}" stroke="#555"/>')
    parts.append(f'<text x="{frame.width / 2:.1f}" y="{frame.height - 6}" text-anchor="middle" {FONT}>'
                 f"{escape(x_label)}</text>")
    return parts


def _svg(width: int, height: int, label: str, parts: list[str], css_class: str) -> str:
    return (f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
            f"<title>{escape(label)}</title>" + "".join(parts) + "</svg>")


def line_chart(x: Sequence[float], series: Sequence[Series], *, title: str, x_label: str,
               threshold: float | None = None, threshold_label: str = "",
               y_range: tuple[float, float] | None = None, width: int = 420, height: int = 260) -> str:
    """A line chart of one or more series over `x`, with an optional dashed threshold line."""
    values = [v for s in series for v in s.values if math.isfinite(v)]
    if threshold is not None:
        values.append(threshold)
    low, high = y_range if y_range is not None else (min(values, default=0.0), max(values, default=1.0))
    y_ticks = nice_ticks(low, high)
    x_ticks = list(x) if len(x) <= 12 else nice_ticks(min(x), max(x))
    x_range = (min(x), max(x)) if len(x) > 1 else (x[0] - 1, x[0] + 1) if x else (0.0, 1.0)
    frame = Frame(width, height, x_range, (y_ticks[0], y_ticks[-1]))
    parts = _axes(frame, x_ticks, y_ticks, x_label, title)
    if threshold is not None:
        y = frame.y(threshold)
        parts.append(f'<line class="threshold" x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}" stroke="#b00020" stroke-dasharray="5 4"/>')
        label_y = y + 13 if y - MARGIN_TOP < 14 else y - 4  # below the line when it runs along the top
        parts.append(f'<text x="{width - MARGIN_RIGHT - 2}" y="{label_y:.1f}" text-anchor="end" {FONT} '
                     f'fill="#b00020">{escape(threshold_label)}</text>')
    for index, line in enumerate(series):
        points = [(frame.x(xv), frame.y(yv)) for xv, yv in zip(x, line.values, strict=False) if math.isfinite(yv)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline class="series" points="{path}" fill="none" stroke="{line.color}" stroke-width="2"/>')
        parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{line.color}"/>' for px, py in points)
        legend_x = MARGIN_LEFT + 180 * index
        parts.append(f'<rect x="{legend_x}" y="{LEGEND_Y - 4}" width="10" height="3" fill="{line.color}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="{LEGEND_Y}" {FONT}>{escape(line.label)}</text>')
    return _svg(width, height, title, parts, "chart line-chart")


def bar_chart(labels: Sequence[str], counts: Sequence[int], *, title: str, x_label: str,
              width: int = 520, height: int = 240, color: str = "#3867d6") -> str:
    """Vertical bars, one per label (a histogram when the labels are bins)."""
    y_ticks = nice_ticks(0, max(max(counts, default=0), 1), integer=True)
    frame = Frame(width, height, (0, max(1, len(counts))), (0, y_ticks[-1]))
    parts = _axes(frame, [], y_ticks, x_label, title)
    slot = frame.x(1) - frame.x(0)
    for index, (label, count) in enumerate(zip(labels, counts, strict=True)):
        left = frame.x(index) + slot * 0.1
        top = frame.y(count)
        parts.append(f'<rect class="bar-rect" x="{left:.1f}" y="{top:.1f}" width="{slot * 0.8:.1f}" '
                     f'height="{frame.y(0) - top:.1f}" fill="{color}"><title>{escape(label)}: {count}</title></rect>')
        parts.append(f'<text x="{left + slot * 0.4:.1f}" y="{frame.y(0) + 14:.1f}" text-anchor="middle" {FONT}>'
                     f"{escape(label)}</text>")
        if count:
            parts.append(f'<text x="{left + slot * 0.4:.1f}" y="{top - 3:.1f}" text-anchor="middle" {FONT}>'
                         f"{count}</text>")
    return _svg(width, height, title, parts, "chart bar-chart")
