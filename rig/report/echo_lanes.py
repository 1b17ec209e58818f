"""The echo loop's lanes: one per payload seen on an echo topic, in order of first appearance,
each with its colour, its count of arrivals, its period and whether it still circulates. The
one home of these rules, for both echo plots: the report's (``echo_plot``, drawn in Python) and
the bench page's (``static/bench.js``, drawn in the browser).

Why the page does not get the rules as data (a palette and some parameters in ``/api/info``)
for its JavaScript to apply: the arithmetic (which topic is an echo topic, a sub-topic's stray,
the median of the last intervals, when a lane has stopped) would then still be written twice,
and drift. Instead, the page's server runs this model over the same events it relays (the hub,
live: ``rig.bench_page.hub``; a replayed timeline: ``rig.bench_page.replay``) and each echo
message or injection carries its lane's facts (``LaneFacts.to_json``) to the page. The page
still draws live from events, but it only places marks: it has no palette and no rule of its
own (a test checks that), so the two plots cannot disagree.

Rules:

- an echo topic is one the caller names (the board's, from its contract) or any topic ending in
  ``/echo``; a message *below* one (``…/echo/elsewhere``) is a stray: drawn hollow in its
  payload's lane, not counted, not in the intervals (a firmware that answers on the wrong topic
  is then visible at a glance);
- a lane is a payload (its bytes), made by its first injection or arrival; lanes past
  ``MAX_FOLLOWED`` are not followed (a flood of distinct payloads must not grow memory), and only
  the first ``MAX_LANES`` are drawn;
- a lane's period is the median of the intervals between its last ``PERIOD_INTERVALS + 1``
  arrivals (what the loop does now, not what it did an hour ago); its rate the arrivals per
  second over those;
- a lane has stopped when nothing arrived for ``STOPPED_PERIODS`` of its periods (or
  ``STOPPED_MIN_S`` before a period is known): ``stale_after`` is that moment, so the page only
  compares it with its clock.
"""

from __future__ import annotations

import collections
import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Eight distinct colours, mostly matplotlib's "tab10" (its orange darkened to read on white):
# lane i gets PALETTE[i % len(PALETTE)], in the report and on the page alike.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#e07b00", "#17becf", "#8c564b", "#e377c2")
ECHO_SUFFIX = "/echo"
# Beyond these a plot stops being readable (and a page heavy); the timeline has the rest.
MAX_LANES = 12
MAX_FOLLOWED = 200
PERIOD_INTERVALS = 20
STOPPED_PERIODS = 3.0
STOPPED_MIN_S = 5.0


def lane_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


@dataclass
class Lane:
    """One payload's lane: what the model keeps to compute its facts (bounded)."""

    index: int
    payload: bytes
    count: int = 0
    strays: int = 0
    injections: int = 0
    # The times of its last arrivals: what its period and rate are computed from.
    recent: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=PERIOD_INTERVALS + 1)
    )

    @property
    def colour(self) -> str:
        return lane_colour(self.index)

    def period(self) -> float | None:
        """The median interval between its recent arrivals; None before a second arrival."""
        gaps = [b - a for a, b in itertools.pairwise(self.recent)]
        return statistics.median(gaps) if gaps else None

    def rate(self) -> float:
        """Arrivals per second over its recent arrivals; 0 before a second arrival."""
        if len(self.recent) < 2 or self.recent[-1] <= self.recent[0]:
            return 0.0
        return (len(self.recent) - 1) / (self.recent[-1] - self.recent[0])

    def stale_after(self) -> float | None:
        """When it counts as stopped if nothing more arrives; None before a first arrival."""
        if not self.recent:
            return None
        period = self.period()
        return self.recent[-1] + max(STOPPED_PERIODS * (period or 0.0), STOPPED_MIN_S)


@dataclass(frozen=True)
class LaneFacts:
    """What one message did to its lane, and the lane's facts after it."""

    # "arrival" (an echo came back), "stray" (below an echo topic) or "injection" (the host's).
    role: str
    lane: int
    colour: str
    drawn: bool
    count: int
    period: float | None
    rate: float
    stale_after: float | None

    def to_json(self) -> dict[str, Any]:
        """The ``echo`` field of the page's event (see the module docstring)."""
        return {
            "role": self.role,
            "lane": self.lane,
            "colour": self.colour,
            "drawn": self.drawn,
            "count": self.count,
            "period": self.period,
            "rate": self.rate,
            "stale_after": self.stale_after,
        }


class EchoLanes:
    """Follows the echo loop through a stream of messages, in time order. Not thread-safe: its
    owner feeds it from one place (the hub does, under its lock)."""

    def __init__(self, echo_topics: Iterable[str] = ()) -> None:
        self.echo_topics = set(echo_topics)
        self._lanes: dict[bytes, Lane] = {}

    @property
    def lanes(self) -> list[Lane]:
        """In order of first appearance."""
        return list(self._lanes.values())

    def watch(self, topic: str) -> None:
        """Count ``topic`` as an echo topic whatever its name (a firmware's own contract)."""
        self.echo_topics.add(topic)

    def is_echo_topic(self, topic: str) -> bool:
        return topic in self.echo_topics or topic.endswith(ECHO_SUFFIX)

    def is_stray_topic(self, topic: str) -> bool:
        """Below an echo topic: ``rig/b/echo/elsewhere``."""
        levels = topic.split("/")
        return any(self.is_echo_topic("/".join(levels[:i])) for i in range(1, len(levels)))

    def message(self, t: float, direction: str, topic: str, payload: bytes) -> LaneFacts | None:
        """A message the host received (``in``) or published (``out``); its lane's facts, or
        None when it is not part of the echo loop (or its lane is past those followed)."""
        if self.is_echo_topic(topic):
            role = "arrival" if direction == "in" else "injection"
        elif direction == "in" and self.is_stray_topic(topic):
            role = "stray"
        else:
            return None
        lane = self._lanes.get(payload)
        if lane is None:
            if len(self._lanes) >= MAX_FOLLOWED:
                return None
            lane = self._lanes[payload] = Lane(len(self._lanes), payload)
        if role == "arrival":
            lane.count += 1
            lane.recent.append(t)
        elif role == "stray":
            lane.strays += 1
        else:
            lane.injections += 1
        return LaneFacts(
            role=role,
            lane=lane.index,
            colour=lane.colour,
            drawn=lane.index < MAX_LANES,
            count=lane.count,
            period=lane.period(),
            rate=lane.rate(),
            stale_after=lane.stale_after(),
        )
