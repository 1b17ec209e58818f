"""The firmware's machine-readable serial lines: ``@rig {"ev": "...", ...}``.

The firmware side is ``firmware/serial_events.py``; this is the only place that knows the format.
A firmware declares which of these events it prints in its contract (``rig-contract.yaml``,
``rig.contract``); a check that needs one it does not print is "not checked", and a firmware
that prints none (the tutorial's program) is judged on the broker's and the wire's word alone.
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = "@rig "

# Every event the firmware reports, so a typo in a test is an error, not a silent timeout.
KNOWN_EVENTS = frozenset(
    {
        "boot",
        "wifi",
        "connected",
        "subscribed",
        "published",
        "received",
        "idle",
        "disconnected",
        "error",
        "stats",
        "link_lost",
        "connection_error",
        "connect_refused",
        "tls_error",
        # Why a board never came online: Wi-Fi not joined, or joined but the broker out of reach.
        "wifi_failed",
        "broker_unreachable",
        # A connection lost soon after it was made: the wait before the next (a client id taken over).
        "short_connection",
    }
)


def parse_event(text: str) -> dict[str, Any] | None:
    """The event on a serial line, or None if the line is not an event.

    The prefix may appear mid-line, after bytes the REPL left on the same line, or after an
    event line a Ctrl-C cut short (``@rig {"ev": "received", "hex": "@rig {"ev": "disconnected"...``):
    the last event that parses on the line is the one.
    """
    marker = PREFIX + "{"
    at = text.rfind(marker)
    while at >= 0:
        event = _event_at(text[at + len(PREFIX) :])
        if event is not None:
            return event
        at = text.rfind(marker, 0, at)
    return None


def _event_at(text: str) -> dict[str, Any] | None:
    try:
        event = json.loads(text)
    except ValueError:
        return None
    if not isinstance(event, dict) or "ev" not in event:
        return None
    if "hex" in event:
        try:
            event["payload"] = bytes.fromhex(event["hex"])
        except (TypeError, ValueError):
            return None
    return event


def may_be(text: str, ev: str) -> bool:
    """False only when the line ``text`` cannot hold an event named ``ev``: the name is not in it,
    nor any JSON escape that could spell it. Lets a wait skip parsing most lines of a busy board
    (most are other events) without ever skipping one that parses to ``ev``."""
    return ev in text or "\\" in text


def event_matches(event: dict[str, Any], ev: str, fields: dict[str, Any]) -> bool:
    return event.get("ev") == ev and all(event.get(k) == v for k, v in fields.items())


def describe(ev: str, fields: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in fields.items())
    return f"serial event {ev!r}" + (f" with {shown}" if shown else "")
