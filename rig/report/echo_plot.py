"""The echo loop of one test as an inline SVG, drawn without a plotting library so the report
needs no network: this module computes the geometry, ``templates/echo_plot.svg.j2`` draws it.
Which messages make which lane, the lanes' colours, counts and periods are
``rig.report.echo_lanes``'s, the rules the bench page's plot follows too.

Top panel: one lane per payload seen on an echo topic, a dot per arrival at the host and a
triangle per injection by the host. Bottom panel: the interval between successive arrivals of
the same payload, at the time of the later arrival, with the median: a healthy loop is a flat
band at the loop period, a flood hugs zero and a stall leaves a gap.

Arrivals on a topic *below* an echo topic (``…/echo/elsewhere``) are drawn hollow in the lane of
their payload: a firmware that answers on the wrong topic is then visible at a glance.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from rig.report.echo_lanes import MAX_LANES, EchoLanes, LaneFacts
from rig.report.text import payload_label, printable
from rig.report.traffic import MqttMessage

# Beyond this the page gets heavy; the timeline has the rest.
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
    """One lane's marks, in seconds since the test started, and its facts (``echo_lanes``)
    after the last message of the test."""

    payload: bytes
    facts: LaneFacts
    arrivals: list[float] = field(default_factory=list)
    injections: list[float] = field(default_factory=list)
    # Arrivals on a sub-topic of an echo topic: not echoes, and not in the intervals.
    strays: list[float] = field(default_factory=list)

    def intervals(self) -> list[tuple[float, float]]:
        """(time of the later arrival, seconds since the previous arrival) per arrival."""
        return [(b, b - a) for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]


def echo_lanes(messages: list[MqttMessage], start: float) -> list[Lane]:
    """One lane per payload of the echo loop, in order of first appearance (``messages`` are in
    time order)."""
    model = EchoLanes()
    lanes: dict[int, Lane] = {}
    for m in messages:
        facts = model.message(m.t, m.direction, m.topic, m.payload)
        if facts is None:
            continue
        lane = lanes.setdefault(facts.lane, Lane(m.payload, facts))
        lane.facts = facts
        marks = {"arrival": lane.arrivals, "stray": lane.strays, "injection": lane.injections}
        marks[facts.role].append(m.t - start)
    return list(lanes.values())


def stray_topics(messages: list[MqttMessage]) -> list[str]:
    """The sub-topics of echo topics that messages arrived on, for the plot's note."""
    model = EchoLanes()
    return sorted({m.topic for m in messages if model.is_stray_topic(m.topic)})


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


@dataclass(frozen=True)
class Tick:
    at: float  # x for the time axis, y for the interval axis
    label: str


@dataclass(frozen=True)
class Mark:
    """One arrival, injection or interval point: where it is drawn and its tooltip."""

    x: float
    y: float
    title: str
    colour: str = ""


@dataclass(frozen=True)
class LaneView:
    mid: float
    colour: str
    label: str
    # Tooltip of the lane: the whole payload, printable and hex.
    full: str
    summary: str
    injections: list[Mark]
    strays: list[Mark]
    arrivals: list[Mark]


@dataclass(frozen=True)
class IntervalPanel:
    """The lower panel when some payload arrived twice."""

    median: float
    median_y: float
    count: int
    yticks: list[Tick]
    points: list[Mark]


@dataclass(frozen=True)
class EchoPlot:
    """Everything the template draws, in SVG user units."""

    width: int
    height: float
    left: int
    right_edge: int
    plot_w: float
    top: int
    grid_xs: list[float]
    lanes: list[LaneView]
    lanes_bottom: float
    ticks: list[Tick]
    panel_top: float
    axis_y: float
    panel: IntervalPanel | None
    notes: list[str]


def echo_plot(messages: list[MqttMessage], start: float, end: float = 0.0) -> EchoPlot | None:
    """The plot, or None when the test saw no message on an echo topic. The time axis runs to
    ``end`` (seconds after ``start``) at least: a loop that died shows as an empty stretch."""
    lanes = echo_lanes(messages, start)
    if not lanes:
        return None
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
    gaps = [(t, g, lane.facts.colour) for lane in shown for t, g in lane.intervals()]
    panel_h = INTERVAL_H if gaps else 30
    axis_y = panel_top + panel_h
    strays = stray_topics(messages)
    notes = [f"{dropped} more payload(s) not drawn; see the timeline"] if dropped > 0 else []
    if strays:
        listed = ", ".join(strays[:3]) + (" …" if len(strays) > 3 else "")
        notes.append(f"○ arrived on {listed}: below the echo topic, so not an echo")
    return EchoPlot(
        width=WIDTH,
        height=axis_y + 44 + 16 * len(notes),
        left=LEFT,
        right_edge=WIDTH - RIGHT,
        plot_w=plot_w,
        top=TOP,
        grid_xs=[x(tick) for tick in ticks],
        lanes=[_lane(i, lane, x) for i, lane in enumerate(shown)],
        lanes_bottom=lanes_bottom,
        ticks=[Tick(x(tick), _fmt(tick, step)) for tick in ticks],
        panel_top=panel_top,
        axis_y=axis_y,
        panel=_interval_panel(gaps, panel_top, panel_h, x) if gaps else None,
        notes=notes,
    )


def _lane(i: int, lane: Lane, x: _XScale) -> LaneView:
    colour, facts = lane.facts.colour, lane.facts
    mid = TOP + LANE_H * i + LANE_H / 2
    summary = f"{facts.count} in" + (f" · every {facts.period:.3f} s" if facts.period is not None else "")
    if lane.strays:
        summary += f" · {len(lane.strays)} astray"
    return LaneView(
        mid=mid,
        colour=colour,
        label=payload_label(lane.payload, 26),
        full=f"payload {printable(lane.payload) or '(empty)'}  hex {lane.payload.hex() or '-'}",
        summary=summary,
        injections=[Mark(x(t), mid, f"out +{t:.3f} s") for t in lane.injections[:MAX_MARKS_PER_LANE]],
        strays=[
            Mark(x(t), mid, f"in +{t:.3f} s on a sub-topic of the echo topic")
            for t in lane.strays[:MAX_MARKS_PER_LANE]
        ],
        arrivals=[Mark(x(t), mid, f"in +{t:.3f} s") for t in lane.arrivals[:MAX_MARKS_PER_LANE]],
    )


def _interval_panel(
    gaps: list[tuple[float, float, str]], top: float, height: float, x: _XScale
) -> IntervalPanel:
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

    return IntervalPanel(
        median=median,
        median_y=y(median),
        count=len(values),
        yticks=[Tick(y(v), f"{_fmt(v, ystep)} s") for v in yticks],
        points=[
            Mark(x(t), y(g), f"+{t:.3f} s: {g:.3f} s since the previous arrival", colour)
            for t, g, colour in gaps[: MAX_MARKS_PER_LANE * 2]
        ],
    )
