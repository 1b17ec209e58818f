"""From captured frames to MQTT packets: TCP streams reassembled, split, decoded.

Each MQTT control packet is read by scapy's MQTT 3.1.1 layer (``scapy.contrib.mqtt``), a
maintained dissector that knows every packet type and its flags; Wireshark's would need tshark
and a process per file. The Ethernet, IPv4 and TCP headers in front are read by ``tcp`` (why
not scapy: see there). What scapy does not do either
is follow a TCP stream, and MQTT does not align with segments: one segment may carry
several packets (an echo and a PUBACK), one packet may span segments. So each direction of each
connection is put back in order by sequence number here (retransmitted bytes dropped), and cut
into packets by MQTT's fixed header (type byte, remaining length in 1-4 bytes) before scapy
reads each.

A segment the capture never saw (tcpdump drops frames when the machine is loaded and its ring
fills) leaves a hole that no retransmission fills: the peer received it. Waiting for it would
leave every later packet of that direction undecoded, so that a DISCONNECT the board did send
would look missing. The hole is closed when the direction ends (FIN or RST) or when later
segments have waited ``GAP_S``: a ``CaptureGap`` record says how many bytes were lost, and
decoding starts again at the first waiting segment that begins with a well-formed fixed header.

Lifecycle: a ``StreamDecoder`` is fed frames in capture order (``feed``) and returns the records
they complete; it keeps each connection's state between calls, so a session's capture is decoded
once, as it grows.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from scapy.contrib.mqtt import CONTROL_PACKET_TYPE, MQTT

from rig.wire.pcap import Frame
from rig.wire.records import BOARD, BROKER, ENCRYPTED, CaptureGap, TcpEnd, WirePacket, WireRecord
from rig.wire.tcp import FIN, RST, SEQ_SPACE, SYN, segment_of

_SEQ = SEQ_SPACE
# A remaining length takes at most four bytes (MQTT 3.1.1, 2.2.3).
_MAX_LENGTH_BYTES = 4
MALFORMED = "MALFORMED"
# How long later segments wait for a missing one before it is taken as lost by the capture: a
# retransmission on the board's link comes within TCP's minimum RTO (200 ms) of the first send.
GAP_S = 1.0
# The fixed header's first byte of each type that has fixed flags (MQTT 3.1.1, 2.2.2); PUBLISH
# (type 3) may carry any flags but QoS 3.
_FIXED_FIRST_BYTES = {0x10, 0x20, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xA2, 0xB0, 0xC0, 0xD0, 0xE0}


@dataclass
class _Direction:
    """One direction of one connection: the next byte expected, what came early, the bytes of
    a packet not yet whole."""

    next_seq: int | None = None
    early: dict[int, tuple[float, bytes]] = field(default_factory=dict)
    buffer: bytearray = field(default_factory=bytearray)
    broken: bool = False
    ended: set[str] = field(default_factory=set)


class StreamDecoder:
    """Decodes the traffic between ``board_address`` and the broker's ``ports`` (port -> whether
    it is TLS). See the module docstring for the lifecycle."""

    def __init__(self, board_address: str | None, ports: dict[int, bool]) -> None:
        self.board_address = board_address
        self.ports = ports
        # None: the board's address is not known (a board on Wi-Fi without capture_address):
        # whoever talks to the broker's ports is taken for the board.
        self._board = socket.inet_aton(board_address) if board_address else None
        self._directions: dict[tuple[bytes, int, str], _Direction] = {}

    def feed(self, frames: Iterable[Frame]) -> list[WireRecord]:
        records: list[WireRecord] = []
        for frame in frames:
            records.extend(self._frame(frame))
        return records

    def _frame(self, frame: Frame) -> list[WireRecord]:
        segment = segment_of(frame.data)
        if segment is None:
            return []
        src, dst, sport, dport = segment.src, segment.dst, segment.sport, segment.dport
        seq, flags, payload = segment.seq, segment.flags, segment.payload(frame.data)
        if dport in self.ports and self._board in (None, src):
            sender, connection, port, client = BOARD, sport, dport, src
        elif sport in self.ports and self._board in (None, dst):
            sender, connection, port, client = BROKER, dport, sport, dst
        else:
            return []
        direction = self._directions.setdefault((client, connection, sender), _Direction())
        if flags & SYN:
            direction.next_seq = (seq + 1) % _SEQ
            direction.buffer.clear()
            direction.early.clear()
            direction.broken = False
            direction.ended.clear()
            self._directions[(client, connection, _other(sender))] = _Direction()
        records: list[WireRecord] = []
        if direction.early and frame.t - min(t for t, _ in direction.early.values()) > GAP_S:
            records.extend(self._skip_gap(direction, frame.t, sender, connection))
        if payload:
            if self.ports[port]:
                records.append(WirePacket(frame.t, sender, connection, ENCRYPTED, length=len(payload)))
            else:
                records.extend(self._data(direction, frame.t, seq, payload, sender, connection))
        if direction.early and flags & (FIN | RST):  # the direction ended: nothing will fill it now
            records.extend(self._skip_gap(direction, frame.t, sender, connection))
        for bit, how in ((RST, "RST"), (FIN, "FIN")):
            if flags & bit and how not in direction.ended:
                direction.ended.add(how)
                records.append(TcpEnd(frame.t, sender, connection, how))
        return records

    def _data(
        self, direction: _Direction, t: float, seq: int, payload: bytes, sender: str, connection: int
    ) -> list[WirePacket]:
        if direction.next_seq is None:  # its SYN came before the capture: start here
            direction.next_seq = seq
        ahead = (seq - direction.next_seq) % _SEQ
        if 0 < ahead < _SEQ // 2:
            direction.early[seq] = (t, payload)  # a segment before it was lost or delayed
            return []
        if ahead:  # starts before the next byte expected: a retransmission, maybe with new bytes
            payload = payload[_SEQ - ahead :]
        records = self._append(direction, t, payload, sender, connection)
        while direction.next_seq in direction.early:
            t, later = direction.early.pop(direction.next_seq)
            records.extend(self._append(direction, t, later, sender, connection))
        return records

    def _skip_gap(self, direction: _Direction, t: float, sender: str, connection: int) -> list[WireRecord]:
        """Give up on the bytes the capture lost before the waiting segments (see the module
        docstring), and decode from the first waiting segment that starts a packet."""
        assert direction.next_seq is not None
        start = direction.next_seq
        records: list[WireRecord] = []
        waiting = sorted(direction.early, key=lambda seq: (seq - start) % _SEQ)
        last = waiting[-1]
        span = (last - start) % _SEQ + len(direction.early[last][1])
        for seq in waiting:
            seg_t, payload = direction.early[seq]
            if payload[0] in _FIXED_FIRST_BYTES or (payload[0] >> 4 == 3 and payload[0] & 0x06 != 0x06):
                records.append(CaptureGap(seg_t, sender, connection, (seq - start) % _SEQ))
                del direction.early[seq]
                direction.next_seq = seq
                direction.buffer.clear()
                direction.broken = False
                records.extend(self._append(direction, seg_t, payload, sender, connection))
                while direction.next_seq in direction.early:
                    seg_t, later = direction.early.pop(direction.next_seq)
                    records.extend(self._append(direction, seg_t, later, sender, connection))
                return records
            del direction.early[seq]  # starts inside a packet: nothing in it can be placed
        records.append(CaptureGap(t, sender, connection, span))
        return records

    def _append(
        self, direction: _Direction, t: float, data: bytes, sender: str, connection: int
    ) -> list[WirePacket]:
        assert direction.next_seq is not None
        direction.next_seq = (direction.next_seq + len(data)) % _SEQ
        if direction.broken:
            return []
        direction.buffer.extend(data)
        records = []
        while True:
            size = _packet_size(direction.buffer)
            if size is None:
                break
            if size < 0:
                direction.broken = True  # the stream cannot be cut into packets past this
                records.append(WirePacket(t, sender, connection, MALFORMED, length=len(direction.buffer)))
                direction.buffer.clear()
                break
            if len(direction.buffer) < size:
                break
            raw = bytes(direction.buffer[:size])
            del direction.buffer[:size]
            records.append(decode_packet(t, sender, connection, raw))
        return records


def _other(sender: str) -> str:
    return BROKER if sender == BOARD else BOARD


def _packet_size(buffer: bytearray) -> int | None:
    """The whole packet's size in bytes once its fixed header is complete; None if it is not
    yet; -1 if the remaining length is malformed (a fifth length byte)."""
    length, multiplier = 0, 1
    for i in range(1, min(len(buffer), _MAX_LENGTH_BYTES + 1) + 1):
        if i > _MAX_LENGTH_BYTES:
            return -1
        if i >= len(buffer):
            return None
        byte = buffer[i]
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        if not byte & 0x80:
            return 1 + i + length
    return None


def decode_packet(t: float, sender: str, connection: int, raw: bytes) -> WirePacket:
    """One whole MQTT control packet, read by scapy's MQTT layer."""
    packet = MQTT(raw)
    kind = CONTROL_PACKET_TYPE.get(int(packet.type), f"TYPE{int(packet.type)}")
    body = packet.payload
    packet_id = getattr(body, "msgid", None)
    topic = payload_len = None
    qos = int(packet.QOS)
    if kind == "PUBLISH":
        raw_topic = body.topic if body.topic is not None else b""
        topic = raw_topic.decode("utf-8", "replace") if isinstance(raw_topic, bytes) else str(raw_topic)
        value = body.value if body.value is not None else b""
        payload_len = len(value)
        if qos == 0:
            packet_id = None  # scapy reads none at QoS 0; say so rather than show a default
    return WirePacket(
        t,
        sender,
        connection,
        kind,
        dup=bool(packet.DUP),
        qos=qos,
        retain=bool(packet.RETAIN),
        packet_id=int(packet_id) if packet_id is not None else None,
        topic=topic,
        payload_len=payload_len,
        length=len(raw),
    )
