"""The MQTT messages of a timeline, decoded once for the timeline table, the topic summary and
the echo plot."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from rig.report.text import payload_bytes


@dataclass(frozen=True)
class MqttMessage:
    t: float
    # "in": the host client received it; "out": the host client published it (an injection).
    direction: str
    topic: str
    payload: bytes
    qos: int | None
    retain: bool


def mqtt_message(entry: dict[str, Any]) -> MqttMessage | None:
    """The message an ``mqtt`` timeline entry records, or None for any other entry."""
    if entry.get("src") != "mqtt" or "topic" not in entry:
        return None
    qos = entry.get("qos")
    return MqttMessage(
        t=float(entry["t"]),
        direction=str(entry.get("dir", "?")),
        topic=str(entry["topic"]),
        payload=payload_bytes(entry.get("hex"), entry.get("payload", "")),
        qos=qos if isinstance(qos, int) else None,
        retain=bool(entry.get("retain")),
    )


def mqtt_messages(entries: list[dict[str, Any]]) -> list[MqttMessage]:
    return [m for m in map(mqtt_message, entries) if m is not None]


def topic_counts(messages: list[MqttMessage]) -> list[tuple[str, int, int]]:
    """(topic, published by the host, received by the host) per topic, busiest first: a
    firmware answering on the wrong topic shows up here as a topic nobody published to."""
    out = Counter(m.topic for m in messages if m.direction == "out")
    into = Counter(m.topic for m in messages if m.direction == "in")
    topics = sorted(set(out) | set(into), key=lambda t: (-(out[t] + into[t]), t))
    return [(t, out[t], into[t]) for t in topics]
