"""The TCP segment in a captured Ethernet frame: addresses, ports, sequence number, flags and
where its payload lies in the frame.

One home for the header arithmetic that the decoder (``decode``: MQTT packets) and the mask
(``mask``: the run's secrets) both need. The Ethernet, IPv4 and TCP headers are fixed-format and
read with ``struct``: scapy's full dissection of a frame costs about 300 µs, and a busy echo
test has thousands of frames (most of them bare ACKs) per second.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SEQ_SPACE = 1 << 32
FIN, SYN, RST = 0x01, 0x02, 0x04
_ETHERTYPE_IPV4 = 0x0800
_PROTO_TCP = 6
_ETHERNET = 14


@dataclass(frozen=True)
class Segment:
    """One TCP segment of a frame. ``start``/``end``: its payload's slice of the frame's bytes
    (the IP total length's, not the frame's: Ethernet pads short frames)."""

    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    flags: int
    start: int
    end: int
    # Where the IP and TCP headers begin in the frame, for the checksum.
    ip: int = _ETHERNET
    tcp: int = _ETHERNET + 20

    def payload(self, data: bytes) -> bytes:
        return data[self.start : self.end]

    @property
    def data_seq(self) -> int:
        """The sequence number of the payload's first byte (a SYN takes one of its own)."""
        return (self.seq + 1) % SEQ_SPACE if self.flags & SYN else self.seq


def segment_of(data: bytes) -> Segment | None:
    """The TCP segment of an Ethernet frame holding IPv4 and TCP, else None (ARP, IPv6, UDP...)."""
    if len(data) < _ETHERNET + 20 or struct.unpack_from("!H", data, 12)[0] != _ETHERTYPE_IPV4:
        return None
    ip = _ETHERNET
    header = (data[ip] & 0x0F) * 4
    if data[ip + 9] != _PROTO_TCP:
        return None
    (total,) = struct.unpack_from("!H", data, ip + 2)
    tcp = ip + header
    if len(data) < tcp + 20:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", data, tcp)
    offset = (data[tcp + 12] >> 4) * 4
    end = min(ip + total, len(data))
    start = min(tcp + offset, end)
    return Segment(
        data[ip + 12 : ip + 16],
        data[ip + 16 : ip + 20],
        sport,
        dport,
        seq,
        data[tcp + 13],
        start,
        end,
        ip,
        tcp,
    )


def with_checksum(data: bytearray, segment: Segment) -> None:
    """Set the TCP checksum of ``segment`` in ``data`` (changed bytes, e.g. a masked secret) so
    that Wireshark does not flag the frame. A frame captured shorter than its IP length is left."""
    ip, tcp = segment.ip, segment.tcp
    (total,) = struct.unpack_from("!H", data, ip + 2)
    if len(data) < ip + total:
        return
    length = ip + total - tcp
    struct.pack_into("!H", data, tcp + 16, 0)
    pseudo = bytes(data[ip + 12 : ip + 20]) + struct.pack("!BBH", 0, _PROTO_TCP, length)
    struct.pack_into("!H", data, tcp + 16, _checksum(pseudo + bytes(data[tcp : tcp + length])))


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
