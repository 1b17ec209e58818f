"""A test's timeline as table rows: times relative to the test's start, the entries that explain
a failure marked, and very long timelines cut to their beginning and end."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rig.broker.records import BadRecord, BrokerRecord, Ended, from_json
from rig.report.traffic import MqttMessage, mqtt_message
from rig.wire.records import alert_for as wire_alert

# The start of a run-up to a failure and its end are what a reader needs; the middle of a
# timeline of thousands of echoes is in timeline.txt.
HEAD_ROWS = 300
TAIL_ROWS = 300
# A console line can be kilobytes of raw-REPL traffic; the start of it says what it was.
MAX_TEXT = 600

_PORT_LOST = re.compile(r"\b(lost|vanished|unreachable|disappeared)\b", re.IGNORECASE)
_TRACEBACK = re.compile(r"^Traceback \(most recent call last\)|^\w+(Error|Exception)(: |$)")


@dataclass(frozen=True)
class Row:
    # Seconds since the test started; None when the entry has no usable time.
    rel: float | None
    # serial, mqtt, broker, rig, or "verdict" for the test's own failure.
    src: str
    text: str
    # Why this row is highlighted; empty when it is not.
    alert: str = ""
    mqtt: MqttMessage | None = None


@dataclass(frozen=True)
class Rows:
    head: list[Row]
    # How many rows were left out between head and tail.
    hidden: int
    tail: list[Row]


def alert_for(entry: dict[str, Any]) -> str:
    """Why an entry matters to someone looking for the cause of a failure, or ""."""
    src, text = entry.get("src"), str(entry.get("text", ""))
    event = entry.get("event")
    if src == "serial" and isinstance(event, dict) and event.get("ev") == "error":
        return "firmware error"
    if src == "serial" and _TRACEBACK.search(text):
        return "firmware exception"
    if (src == "rig" or text.startswith("[rig]")) and "port" in text.lower() and _PORT_LOST.search(text):
        return "port lost"
    # The broker's records decide, never its log's wording (rig.broker.records): a connection
    # that ended without DISCONNECT is one whose will the broker published.
    if src == "wire":
        return wire_alert(entry.get("wire"))
    ended = _record(entry) if src == "broker" else None
    if isinstance(ended, Ended) and not ended.clean:
        return f"unclean close: {ended.how.value} ({ended.detail})"
    return ""


def _record(entry: dict[str, Any]) -> BrokerRecord | None:
    """The broker record a timeline entry carries (``rig.evidence.broker_tap``), if any."""
    fields = entry.get("record")
    if not isinstance(fields, dict):
        return None
    try:
        return from_json(fields)
    except BadRecord:
        return None  # a record of another rig version: no alert rather than a wrong one


def timeline_rows(
    entries: list[dict[str, Any]], start: float, failure: str = "", failure_at: float | None = None
) -> Rows:
    """``entries`` as rows, then the failure (when there is one) as the last row, so the reader
    sees what happened just before the test gave up."""
    rows = [
        Row(
            rel=float(e["t"]) - start,
            src=str(e.get("src", "?")),
            text=_clip(str(e.get("text", ""))),
            alert=alert_for(e),
            mqtt=mqtt_message(e),
        )
        for e in entries
    ]
    if failure:
        rel = failure_at - start if failure_at is not None else None
        rows.append(Row(rel=rel, src="verdict", text=failure, alert="test failed"))
    if len(rows) <= HEAD_ROWS + TAIL_ROWS:
        return Rows(rows, 0, [])
    return Rows(rows[:HEAD_ROWS], len(rows) - HEAD_ROWS - TAIL_ROWS, rows[-TAIL_ROWS:])


def _clip(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return f"{text[:MAX_TEXT]}… [{len(text) - MAX_TEXT} more characters in timeline.txt]"
