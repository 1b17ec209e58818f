"""Where the page's events meet: the board's console, the MQTT traffic and the board's status,
published from the rig's threads and handed to every open page.

Events are JSON-ready dicts with a ``kind`` and a wall-clock ``t``:

- ``{"kind": "console", "t", "text"}``: one line of the board's console (secrets already hidden);
- ``{"kind": "mqtt", "t", "topic", "payload", "hex", "qos", "retain"}``: a message the host's
  observer saw on the board's topics (``payload`` as text when it decodes, ``hex`` always);
- ``{"kind": "status", "t", "value"}``: ``online`` / ``offline`` / ``lost``, from the status topic;
- ``{"kind": "action", "t", "name", "ok", "detail"}``: what a button or the inject box did.

The hub adds, by the rig's own rules, what the page must not work out for itself:

- ``rig_event``, on a console line that is one of the firmware's ``@rig`` lines: the event's
  name (``rig.serial_events``, the only parser of those lines); the page hides those lines on request;
- ``echo``, on a message or an injection that is part of the echo loop: its lane's facts
  (``rig.report.echo_lanes``, the rules the report's plot follows too), which the page's plot
  draws as they are.

Lifecycle: made once; ``publish`` from any thread; each page ``subscribe``s and gets every event
kept so far (the newest ``keep``: a page opened late still shows the recent past), then each new
one; ``close`` ends every subscription.

A slow page never slows the rig. ``publish`` runs on the rig's threads (the serial reader's, for
a console line) and does the same small work however many pages are open: it appends the event
to the one bounded list of kept events and wakes the readers. Each subscription is a read
position in that list, moved by the page's own thread. A page that falls more than ``keep``
events behind has lost the ones it skipped: ``lost`` counts them, and the server ends that page's
stream with a note (the page reconnects and starts again from the history).
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from typing import Any

from rig.report.echo_lanes import EchoLanes
from rig.serial_events import parse_event

Event = dict[str, Any]

KEEP = 5000
# The most events one read hands a page at once: one write to its socket.
BATCH = 500


class Subscription:
    """One page's read position in the hub's kept events.

    ``take(timeout)`` returns the events published since the last take (at most ``BATCH``), or
    an empty list after ``timeout`` (the caller may send a keep-alive) or once the subscription
    or the hub closed (``closed`` then says so). ``lost`` counts the events this page never got
    because it fell more than the hub's ``keep`` behind.
    """

    def __init__(self, hub: EventHub, position: int) -> None:
        self._hub = hub
        self.position = position
        self.closed = False
        self.lost = 0

    def take(self, timeout: float, limit: int = BATCH) -> list[Event]:
        return self._hub._take(self, timeout, limit)

    def close(self) -> None:
        self._hub.unsubscribe(self)


class EventHub:
    """Fan-out of the bench's events to the open pages (see the module docstring)."""

    def __init__(self, keep: int = KEEP) -> None:
        self._kept: collections.deque[Event] = collections.deque(maxlen=keep)
        # Events published so far: the kept ones are the last len(_kept) of them.
        self._published = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._echo = EchoLanes()
        self.closed = False

    def watch_echo_topic(self, topic: str) -> None:
        """Count ``topic`` as the board's echo topic, whatever its name."""
        with self._lock:
            self._echo.watch(topic)

    def publish(self, kind: str, t: float | None = None, **fields: Any) -> Event:
        event: Event = {"kind": kind, "t": time.time() if t is None else t, **fields}
        with self._changed:
            # Under the lock: the lanes see the events in the order the pages get them.
            annotate(event, self._echo)
            self._kept.append(event)
            self._published += 1
            # No work per page here: each page's own thread copies what it has not sent yet.
            self._changed.notify_all()
        return event

    def subscribe(self) -> Subscription:
        with self._lock:
            subscription = Subscription(self, self._published - len(self._kept))
            subscription.closed = self.closed
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._changed:
            subscription.closed = True
            self._changed.notify_all()

    def history(self) -> list[Event]:
        with self._lock:
            return list(self._kept)

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def _take(self, subscription: Subscription, timeout: float, limit: int) -> list[Event]:
        with self._changed:
            self._changed.wait_for(
                lambda: subscription.position < self._published or subscription.closed or self.closed,
                timeout,
            )
            if self.closed:
                subscription.closed = True
            oldest = self._published - len(self._kept)
            if subscription.position < oldest:
                subscription.lost += oldest - subscription.position
                subscription.position = oldest
            start = subscription.position - oldest
            events = list(itertools.islice(self._kept, start, start + limit))
            subscription.position += len(events)
        return events


def annotate(event: Event, lanes: EchoLanes) -> Event:
    """Adds ``rig_event`` or ``echo`` to ``event`` where they apply (see the module docstring);
    ``lanes`` follows the echo loop through the events given, in order. Returns ``event``."""
    kind = event.get("kind")
    if kind == "console":
        parsed = parse_event(str(event.get("text", "")))
        if parsed is not None:
            event["rig_event"] = str(parsed.get("ev"))
        return event
    inject = kind == "action" and event.get("name") == "inject" and event.get("ok") is True
    topic, hex_text = event.get("topic"), event.get("hex")
    if (kind == "mqtt" or inject) and isinstance(topic, str) and isinstance(hex_text, str):
        try:
            payload = bytes.fromhex(hex_text)
        except ValueError:
            return event
        facts = lanes.message(float(event["t"]), "out" if inject else "in", topic, payload)
        if facts is not None:
            event["echo"] = facts.to_json()
    return event
