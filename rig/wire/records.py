"""What the wire showed, one record per MQTT packet or TCP end, as tests and the report read it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

BOARD = "board"
BROKER = "broker"
# The one word a record carries when its connection is TLS: nothing inside can be read.
ENCRYPTED = "encrypted"


@dataclass(frozen=True)
class WirePacket:
    """One MQTT control packet as sent on the wire. ``sender``: ``"board"`` or ``"broker"``;
    ``connection``: the board's TCP port of it (one per connection). ``kind`` is the MQTT type
    name (``PUBLISH``, ``PINGREQ``...), or ``"encrypted"`` for a TLS record, whose other fields
    are then None. ``payload_len`` is the application message's length (PUBLISH only)."""

    t: float
    sender: str
    connection: int
    kind: str
    dup: bool | None = None
    qos: int | None = None
    retain: bool | None = None
    packet_id: int | None = None
    topic: str | None = None
    payload_len: int | None = None
    length: int = 0

    @property
    def encrypted(self) -> bool:
        return self.kind == ENCRYPTED

    def describe(self) -> str:
        if self.encrypted:
            return f"{self.sender}> encrypted ({self.length} bytes) on :{self.connection}"
        parts = [f"{self.sender}> {self.kind}"]
        if self.kind == "PUBLISH":
            parts.append(f"qos={self.qos} retain={int(bool(self.retain))} dup={int(bool(self.dup))}")
            parts.append(f"topic={self.topic!r} payload={self.payload_len}B")
        if self.packet_id is not None:
            parts.append(f"id={self.packet_id}")
        parts.append(f"on :{self.connection}")
        return " ".join(parts)


@dataclass(frozen=True)
class TcpEnd:
    """The end of one TCP connection as the wire saw it: ``how`` is ``"FIN"`` or ``"RST"``,
    ``sender`` the side that sent it first."""

    t: float
    sender: str
    connection: int
    how: str

    def describe(self) -> str:
        return f"{self.sender}> TCP {self.how} on :{self.connection}"


@dataclass(frozen=True)
class CaptureGap:
    """Bytes of one direction of a connection that the capture never saw, though the connection
    went on past them: tcpdump dropped frames (a loaded machine), not the board. Nothing in the
    gap can be judged from the wire; the packets after it are read again from the first segment
    that starts a packet."""

    t: float
    sender: str
    connection: int
    missing: int

    def describe(self) -> str:
        return f"{self.sender}> {self.missing} bytes the capture lost on :{self.connection}"


WireRecord = WirePacket | TcpEnd | CaptureGap


def to_json(record: WireRecord) -> dict[str, Any]:
    kind = (
        "tcp_end"
        if isinstance(record, TcpEnd)
        else "capture_gap"
        if isinstance(record, CaptureGap)
        else "mqtt"
    )
    return {"record": kind, **{k: v for k, v in dataclasses.asdict(record).items() if v is not None}}


def alert_for(fields: object) -> str:
    """Why a wire entry of the timeline (``fields``: its ``wire`` object) matters to someone
    looking for the cause of a failure, or "": a connection reset, a packet that cannot be read."""
    if not isinstance(fields, dict):
        return ""
    if fields.get("record") == "tcp_end" and fields.get("how") == "RST":
        return f"connection reset by the {fields.get('sender', '?')}"
    if fields.get("record") == "capture_gap":
        return f"the capture lost {fields.get('missing', '?')} bytes from the {fields.get('sender', '?')}"
    if fields.get("kind") == "MALFORMED":
        return f"malformed MQTT from the {fields.get('sender', '?')}"
    return ""
