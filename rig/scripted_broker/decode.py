"""What the board sent, one packet at a time: framed here, decoded by scapy.

Framing is ours (a fixed header and its remaining length, then exactly that many bytes): it is
what tells where one packet ends on a TCP stream, and it must hold up to a board that sends
garbage. The fields inside a packet are scapy's (``scapy.contrib.mqtt``), a decoder kept by a
wider community than this rig, and the one the wire capture reads packets with too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scapy.contrib.mqtt import MQTT

# Packet type names (MQTT 3.1.1, 2.2.1), by the first byte's upper four bits.
NAMES = {
    1: "CONNECT",
    2: "CONNACK",
    3: "PUBLISH",
    4: "PUBACK",
    5: "PUBREC",
    6: "PUBREL",
    7: "PUBCOMP",
    8: "SUBSCRIBE",
    9: "SUBACK",
    10: "UNSUBSCRIBE",
    11: "UNSUBACK",
    12: "PINGREQ",
    13: "PINGRESP",
    14: "DISCONNECT",
}


class MalformedPacket(ValueError):
    """The board sent bytes that are not an MQTT packet; the message says which and why."""


@dataclass(frozen=True)
class Received:
    """One packet from the board, with the fields the scenarios check."""

    kind: str  # CONNECT, PUBLISH, ...
    raw: bytes
    qos: int = 0
    dup: bool = False
    retain: bool = False
    pid: int | None = None
    topic: bytes | None = None
    payload: bytes | None = None
    # CONNECT: client id, keepalive, clean session; SUBSCRIBE: the filters and their QoS.
    details: dict[str, object] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [self.kind]
        if self.kind == "PUBLISH":
            flags = (" dup" if self.dup else "") + (" retain" if self.retain else "")
            parts.append(f"qos={self.qos}{flags}")
        if self.pid is not None:
            parts.append(f"id={self.pid}")
        if self.topic is not None:
            parts.append(f"topic={self.topic!r}")
        if self.payload is not None:
            shown = self.payload if len(self.payload) <= 32 else self.payload[:32] + b"..."
            parts.append(f"payload={shown!r}")
        parts.extend(f"{k}={v!r}" for k, v in self.details.items())
        return " ".join(parts)


def decode(raw: bytes) -> Received:
    """One whole packet (as ``frame_length`` delimited it) decoded into a ``Received``."""
    kind = NAMES.get(raw[0] >> 4)
    if kind is None:
        raise MalformedPacket(f"packet type {raw[0] >> 4} is reserved (first byte {raw[0]:#04x})")
    parsed = MQTT(raw)
    layer = parsed.payload
    fields: dict[str, object] = {}
    pid = getattr(layer, "msgid", None)
    topic = payload = None
    if kind == "CONNECT":
        fields = {
            "client_id": bytes(layer.clientId).decode(errors="replace"),
            "keepalive": int(layer.klive),
            "clean_session": bool(layer.cleansess),
        }
    elif kind == "SUBSCRIBE":
        # A SUBSCRIBE scapy reads no filters from (a topic past umqtt.simple's one-byte length
        # makes one) is named here, not an AttributeError in the connection's reader thread.
        try:
            fields = {"filters": [(bytes(t.topic), int(t.QOS)) for t in layer.topics]}
        except AttributeError as e:
            raise MalformedPacket(f"a SUBSCRIBE without readable filters: {raw[:8].hex(' ')} ...") from e
    elif kind == "PUBLISH":
        topic = bytes(layer.topic)
        payload = bytes(layer.value or b"")
    return Received(
        kind=kind,
        raw=raw,
        qos=int(parsed.QOS),
        dup=bool(parsed.DUP),
        retain=bool(parsed.RETAIN),
        pid=int(pid) if pid is not None else None,
        topic=topic,
        payload=payload,
        details=fields,
    )
