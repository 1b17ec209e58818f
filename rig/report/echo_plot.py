"""The echo loop of one test as an inline SVG, drawn by hand so the report needs no plotting
library and no network.

Top panel: one lane per payload seen on a topic ending in ``/echo``, a dot per arrival at the
host and a triangle per injection by the host. Bottom panel: the interval between successive
arrivals of the same payload, at the time of the later arrival, with the median: a healthy loop
is a flat band at the loop period, a flood hugs zero and a stall leaves a gap.

Arrivals on a topic *below* an echo topic (``…/echo/elsewhere``) are drawn hollow in the lane of
their payload: a firmware that answers on the wrong topic is then visible at a glance.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from rig.report.text import esc, payload_label, printable
from rig.report.traffic import MqttMessage

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#e07b00", "#17becf", "#8c564b", "#e377c2")
# Beyond these the plot stops being readable (and the page heavy); the timeline has the rest.
MAX_LANES = 12
MAX_MARKS_PER_LANE = 1500

WIDTH = 960
LEFT = 200
RIGHT = 130
LANE_H = 20
TOP = 26
INTERVAL_H = 110

# Maps seconds since the test started to an x coordinate.
_XScale = Callable[[float], float]


@dataclass
class Lane:
    payload: bytes
    arrivals: list[float] = field(default_factory=list)
    injections: list[float] = field(default_factory=list)
    # Arrivals on a sub-topic of an echo topic: not echoes, and not in the intervals.
    strays: list[float] = field(default_factory=list)

    def intervals(self) -> list[tuple[float, float]]:
        """(time of the later arrival, seconds since the previous arrival) per arrival."""
        return [(b, b - a) for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]


def echo_lanes(messages: list[MqttMessage], start: float) -> list[Lane]:
    """One lane per distinct payload on the echo topics, in order of first appearance."""
    echo_topics = {m.topic for m in messages if m.topic.endswith("/echo")}
    lanes: dict[bytes, Lane] = {}
    for m in messages:
        if m.topic in echo_topics:
            lane = lanes.setdefault(m.payload, Lane(m.payload))
            (lane.arrivals if m.direction == "in" else lane.injections).append(m.t - start)
        elif m.direction == "in" and any(m.topic.startswith(f"{e}/") for e in echo_topics):
            lanes.setdefault(m.payload, Lane(m.payload)).strays.append(m.t - start)
    return list(lanes.values())


def stray_topics(messages: list[MqttMessage]) -> list[str]:
    """The sub-topics of echo topics that messages arrived on, for the plot's note."""
    echo_topics = {m.topic for m in messages if m.topic.endswith("/echo")}
    found = {m.topic for m in messages if any(m.topic.startswith(f"{e}/") for e in echo_topics)}
    return sorted(found)


def nice_ticks(lo: float, hi: float, target: int = 7) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    span = hi - lo if hi > lo else 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9) + 1
    return [round(first + i * step, 12) for i in range(max(count, 0))]


def _fmt(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{value:.{decimals}f}"


def echo_plot_svg(messages: list[MqttMessage], start: float, end: float = 0.0) -> str:
    """The plot, or "" when the test saw no message on an echo topic. The time axis runs to
    ``end`` (seconds after ``start``) at least: a loop that died shows as an empty stretch."""
    lanes = echo_lanes(messages, start)
    if not lanes:
        return ""
    shown, dropped = lanes[:MAX_LANES], len(lanes) - MAX_LANES
    times = [t for lane in shown for t in lane.arrivals + lane.injections + lane.strays]
    lo, hi = min([0.0, *times]), max([0.0, end, *times])
    if hi - lo < 1e-3:
        hi = lo + 1.0
    # A little room on the right, so the last arrival is not drawn on the plot's edge.
    hi += (hi - lo) * 0.02
    ticks = nice_ticks(lo, hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    plot_w = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return LEFT + (t - lo) / (hi - lo) * plot_w

    lanes_bottom = TOP + LANE_H * len(shown)
    panel_top = lanes_bottom + 46
    gaps = [(t, g, i) for i, lane in enumerate(shown) for t, g in lane.intervals()]
    panel_h = INTERVAL_H if gaps else 30
    axis_y = panel_top + panel_h
    strays = stray_topics(messages)
    notes = [f"{dropped} more payload(s) not drawn; see the timeline"] if dropped > 0 else []
    if strays:
        listed = ", ".join(strays[:3]) + (" …" if len(strays) > 3 else "")
        notes.append(f"○ arrived on {listed}: below the echo topic, so not an echo")
    height = axis_y + 44 + 16 * len(notes)

    parts = [
        f'<svg class="echo-plot" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="echo loop plot">',
        # One text per item: SVG collapses the spaces that would separate them.
        f'<text x="{LEFT}" y="14" class="legend">● arrival at the host (in)</text>',
        f'<text x="{LEFT + 190}" y="14" class="legend">▼ injection by the host (out)</text>',
        f'<text x="{LEFT + 400}" y="14" class="legend">one lane per payload on topics ending in /echo</text>',
    ]
    # Vertical grid lines across both panels share the one time axis.
    for tick in ticks:
        parts.append(f'<line x1="{x(tick):.1f}" y1="{TOP}" x2="{x(tick):.1f}" y2="{axis_y}" class="grid"/>')
    for i, lane in enumerate(shown):
        parts.extend(_lane(i, lane, x))
    parts.append(
        f'<line x1="{LEFT}" y1="{lanes_bottom}" x2="{LEFT + plot_w}" y2="{lanes_bottom}" class="axis"/>'
    )
    for tick in ticks:
        parts.append(
            f'<text x="{x(tick):.1f}" y="{lanes_bottom + 14}" class="tick" text-anchor="middle">'
            f"{_fmt(tick, step)}</text>"
        )
    parts.extend(_interval_panel(gaps, panel_top, panel_h, x, plot_w))
    parts.append(f'<line x1="{LEFT}" y1="{axis_y}" x2="{LEFT + plot_w}" y2="{axis_y}" class="axis"/>')
    for tick in ticks:
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{axis_y}" x2="{x(tick):.1f}" y2="{axis_y + 4}" class="axis"/>'
            f'<text x="{x(tick):.1f}" y="{axis_y + 16}" class="tick" text-anchor="middle">'
            f"{_fmt(tick, step)}</text>"
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{axis_y + 34}" class="label" text-anchor="middle">'
        "seconds since the test started</text>"
    )
    for i, note in enumerate(notes):
        parts.append(f'<text x="20" y="{axis_y + 56 + 16 * i}" class="note">{esc(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _lane(i: int, lane: Lane, x: _XScale) -> list[str]:
    colour = PALETTE[i % len(PALETTE)]
    mid = TOP + LANE_H * i + LANE_H / 2
    label = esc(payload_label(lane.payload, 26))
    full = esc(f"payload {printable(lane.payload) or '(empty)'}  hex {lane.payload.hex() or '-'}")
    gaps = [g for _, g in lane.intervals()]
    summary = f"{len(lane.arrivals)} in" + (f" · med {statistics.median(gaps):.3f} s" if gaps else "")
    if lane.strays:
        summary += f" · {len(lane.strays)} astray"
    out = [
        f'<g class="lane"><title>{full}</title>',
        f'<line x1="{LEFT}" y1="{mid}" x2="{WIDTH - RIGHT}" y2="{mid}" class="lane-line"/>',
        f'<text x="{LEFT - 8}" y="{mid + 4}" class="lane-label" text-anchor="end" fill="{colour}">'
        f"{label}</text>",
        f'<text x="{WIDTH - RIGHT + 8}" y="{mid + 4}" class="tick">{esc(summary)}</text>',
    ]
    for t in lane.injections[:MAX_MARKS_PER_LANE]:
        cx = x(t)
        out.append(
            f'<path d="M{cx - 5:.1f},{mid - 7} L{cx + 5:.1f},{mid - 7} L{cx:.1f},{mid + 2} Z" '
            f'fill="{colour}" stroke="#222" stroke-width="1"><title>out +{t:.3f} s</title></path>'
        )
    for t in lane.strays[:MAX_MARKS_PER_LANE]:
        out.append(
            f'<circle cx="{x(t):.1f}" cy="{mid}" r="3.5" fill="#fff" stroke="{colour}" stroke-width="1.5">'
            f"<title>in +{t:.3f} s on a sub-topic of the echo topic</title></circle>"
        )
    for t in lane.arrivals[:MAX_MARKS_PER_LANE]:
        out.append(
            f'<circle cx="{x(t):.1f}" cy="{mid}" r="3.5" fill="{colour}" fill-opacity="0.8">'
            f"<title>in +{t:.3f} s</title></circle>"
        )
    out.append("</g>")
    return out


def _interval_panel(
    gaps: list[tuple[float, float, int]], top: float, height: float, x: _XScale, plot_w: float
) -> list[str]:
    title = f'<text x="{LEFT}" y="{top - 8}" class="label">interval between arrivals of the same payload'
    if not gaps:
        return [
            title + "</text>",
            f'<text x="{LEFT}" y="{top + 18}" class="note">no payload arrived twice: no intervals</text>',
        ]
    values = [g for _, g, _ in gaps]
    median = statistics.median(values)
    top_value = max(values) if max(values) > 0 else 1.0
    yticks = nice_ticks(0.0, top_value, 4)
    if yticks[-1] < top_value:
        yticks.append(yticks[-1] + (yticks[1] - yticks[0] if len(yticks) > 1 else top_value))
    ymax = yticks[-1] or 1.0
    ystep = yticks[1] - yticks[0] if len(yticks) > 1 else ymax

    def y(v: float) -> float:
        return top + height - v / ymax * height

    out = [title + f" (median {median:.3f} s, n={len(values)})</text>"]
    out.append(f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{top + height}" class="axis"/>')
    for v in yticks:
        out.append(
            f'<line x1="{LEFT - 4}" y1="{y(v):.1f}" x2="{LEFT + plot_w}" y2="{y(v):.1f}" class="grid"/>'
            f'<text x="{LEFT - 8}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">'
            f"{_fmt(v, ystep)} s</text>"
        )
    for t, g, i in gaps[: MAX_MARKS_PER_LANE * 2]:
        out.append(
            f'<circle cx="{x(t):.1f}" cy="{y(g):.1f}" r="3" fill="{PALETTE[i % len(PALETTE)]}" '
            f'fill-opacity="0.8"><title>+{t:.3f} s: {g:.3f} s since the previous arrival</title></circle>'
        )
    out.append(
        f'<line x1="{LEFT}" y1="{y(median):.1f}" x2="{LEFT + plot_w}" y2="{y(median):.1f}" class="median"/>'
        f'<text x="{LEFT + plot_w + 8}" y="{y(median) + 4:.1f}" class="median-label">'
        f"median {median:.3f} s</text>"
    )
    return out
