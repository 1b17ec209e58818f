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
one; ``close`` ends every subscription. A slow page never slows the rig: its queue is bounded and
it loses the oldest events (counted in ``dropped``), not the newest.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Any

from rig.report.echo_lanes import EchoLanes
from rig.serial_events import parse_event

Event = dict[str, Any]

KEEP = 5000
QUEUE = 10000


class Subscription:
    """One page's feed: ``next(timeout)`` returns the next event, or None after ``timeout``
    (the caller may send a keep-alive) or once the hub closed (``closed`` then says so)."""

    def __init__(self, backlog: list[Event]) -> None:
        self._events: collections.deque[Event] = collections.deque(backlog, maxlen=QUEUE)
        self._cond = threading.Condition()
        self.closed = False
        self.dropped = 0

    def put(self, event: Event) -> None:
        with self._cond:
            if len(self._events) == self._events.maxlen:
                self.dropped += 1
            self._events.append(event)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def next(self, timeout: float) -> Event | None:
        with self._cond:
            self._cond.wait_for(lambda: self._events or self.closed, timeout)
            return self._events.popleft() if self._events else None

    def drain(self) -> Iterator[Event]:
        """The events waiting now, without blocking."""
        with self._cond:
            pending = list(self._events)
            self._events.clear()
        return iter(pending)


class EventHub:
    """Fan-out of the bench's events to the open pages (see the module docstring)."""

    def __init__(self, keep: int = KEEP) -> None:
        self._kept: collections.deque[Event] = collections.deque(maxlen=keep)
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        self._echo = EchoLanes()
        self.closed = False

    def watch_echo_topic(self, topic: str) -> None:
        """Count ``topic`` as the board's echo topic, whatever its name."""
        with self._lock:
            self._echo.watch(topic)

    def publish(self, kind: str, t: float | None = None, **fields: Any) -> Event:
        event: Event = {"kind": kind, "t": time.time() if t is None else t, **fields}
        with self._lock:
            # Under the lock: the lanes see the events in the order the pages get them.
            annotate(event, self._echo)
            self._kept.append(event)
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.put(event)
        return event

    def subscribe(self) -> Subscription:
        with self._lock:
            subscription = Subscription(list(self._kept))
            if self.closed:
                subscription.close()
            else:
                self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
        subscription.close()

    def history(self) -> list[Event]:
        with self._lock:
            return list(self._kept)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.close()


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
