"""Charts drawn on the server as SVG, read at a glance and by a screen reader: every chart is an <svg
role="img"> with a <title> and a <desc> saying what it shows, and the page always puts the same figures
beside it as a table (the chart is never the only place a number is).

Plain functions from figures to markup, no I/O and no script: `columns()` for a measure over time (one
column per day or week), `bars()` for categories (reasons, SKUs, stages). Labels and values come already
formatted for the person's locale; a value is a float (a share from 0 to 1 with `share=True`) or None
(nothing to show: no column, and the label says so in the table beside).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from markupsafe import Markup

_ids = itertools.count(1)
WIDTH = 640
ROW = 22  # a horizontal bar's height with its gap
LABEL_WIDTH = 180


@dataclass(frozen=True)
class Point:
    label: str  # formatted: a date, a week, a reason in words, a SKU
    value: float | None  # None: no figure (e.g. a rate without a denominator)
    text: str  # the value formatted, written at the end of the bar / above the column


def _frame(title: str, description: str, height: int, body: list[str]) -> Markup:
    n = next(_ids)
    return Markup(
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-labelledby="chart-{n}-title chart-{n}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="chart-{n}-title">{escape(title)}</title><desc id="chart-{n}-desc">{escape(description)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _scale(points: Sequence[Point], share: bool) -> float:
    if share:
        return 1.0
    top = max((p.value for p in points if p.value is not None), default=0.0)
    return top or 1.0


def bars(title: str, description: str, points: Sequence[Point], *, share: bool = False) -> Markup:
    """Horizontal bars, one per category, longest = largest (or 100 % with `share`)."""
    top = _scale(points, share)
    span = WIDTH - LABEL_WIDTH - 90
    height = max(ROW * len(points), ROW) + 8
    body = []
    for i, p in enumerate(points):
        y = 4 + i * ROW
        body.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 14}" text-anchor="end" class="label">{escape(_cut(p.label, 26))}</text>'
        )
        length = 0.0 if p.value is None else max(span * p.value / top, 1.0 if p.value > 0 else 0.0)
        body.append(
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{length:.1f}" height="{ROW - 6}" class="bar"/>'
        )
        body.append(
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 14}" class="value">{escape(p.text)}</text>'
        )
    return _frame(title, description, height, body)


def columns(title: str, description: str, points: Sequence[Point], *, share: bool = False) -> Markup:
    """Vertical columns over time, left to right; with `share` a 0-100 % scale with gridlines."""
    top = _scale(points, share)
    height, base, head = 220, 180, 20
    plot = base - head
    left = 40
    step = (WIDTH - left - 10) / max(len(points), 1)
    width = max(min(step * 0.7, 48), 2)
    body = [f'<line x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}" class="axis"/>']
    if share:
        for mark in (0.5, 1.0):
            y = base - plot * mark
            body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" class="grid"/>')
            body.append(
                f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="label">{int(mark * 100)}%</text>'
            )
    every = max(1, round(len(points) / 12))  # at most about 12 labels under the axis
    for i, p in enumerate(points):
        x = left + i * step + (step - width) / 2
        if p.value is not None:
            h = plot * p.value / top
            body.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{width:.1f}" height="{h:.1f}" class="bar">'
                f"<title>{escape(p.label)}: {escape(p.text)}</title></rect>"
            )
            if len(points) <= 16:
                body.append(
                    f'<text x="{x + width / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" class="value">{escape(p.text)}</text>'
                )
        if i % every == 0:
            body.append(
                f'<text x="{x + width / 2:.1f}" y="{base + 16}" text-anchor="middle" class="label">{escape(_cut(p.label, 12))}</text>'
            )
    return _frame(title, description, height, body)


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"
