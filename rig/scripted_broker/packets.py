"""MQTT 3.1.1 packets as the scripted broker sends them: well formed, or broken on purpose.

Why an encoder of our own: every well-kept MQTT library (paho, amqtt, scapy's MQTT layer)
exists to build packets that are right. None sends a remaining length of five bytes, a length
that promises more than follows, a SUBACK nobody asked for or half a packet, and those are what
this broker is for. Each function here builds one packet from the MQTT 3.1.1 layout (section 2
for the fixed header, 3.x for each type), so a reader can check it against the standard line by
line. Decoding what the board sends is left to scapy (``rig.scripted_broker.decode``).
"""

from __future__ import annotations

# Packet types (MQTT 3.1.1, 2.2.1), as the first byte's upper four bits.
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBACK = 9
PINGRESP = 13

# SUBACK's return code for a refused subscription (3.9.3).
SUBSCRIBE_FAILURE = 0x80
# The largest remaining length MQTT can carry: four bytes of seven bits (2.2.3).
MAX_REMAINING_LENGTH = 268_435_455


def remaining_length(n: int) -> bytes:
    """The variable-length encoding of ``n`` (2.2.3): seven bits a byte, the top bit says "more"."""
    if not 0 <= n <= MAX_REMAINING_LENGTH:
        raise ValueError(f"a remaining length of {n} does not fit MQTT's four bytes")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def packet(first_byte: int, body: bytes) -> bytes:
    """A whole packet: its first byte, the length of ``body``, then ``body``."""
    return bytes([first_byte]) + remaining_length(len(body)) + body


def _string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def _with_id(kind: int, pid: int, flags: int = 0) -> bytes:
    return packet(kind << 4 | flags, pid.to_bytes(2, "big"))


def connack(code: int = 0, session_present: bool = False) -> bytes:
    """CONNACK (3.2): 0 accepts, 1..5 refuse (3.2.2.3)."""
    return packet(CONNACK << 4, bytes([1 if session_present else 0, code]))


def suback(pid: int, *codes: int) -> bytes:
    """SUBACK (3.9): one return code per topic filter, 0x80 for a refused one."""
    return packet(SUBACK << 4, pid.to_bytes(2, "big") + bytes(codes))


def publish(
    topic: bytes,
    payload: bytes,
    *,
    qos: int = 0,
    pid: int | None = None,
    retain: bool = False,
    dup: bool = False,
) -> bytes:
    """PUBLISH (3.3). ``pid`` is required at QoS 1 and 2 and absent at QoS 0 (3.3.2.2)."""
    if (pid is None) != (qos == 0):
        raise ValueError(f"a PUBLISH at QoS {qos} {'needs' if qos else 'has no'} packet identifier")
    flags = (8 if dup else 0) | qos << 1 | (1 if retain else 0)
    body = _string(topic) + (pid.to_bytes(2, "big") if pid is not None else b"") + payload
    return packet(PUBLISH << 4 | flags, body)


def puback(pid: int) -> bytes:
    return _with_id(PUBACK, pid)


def pubrec(pid: int) -> bytes:
    return _with_id(PUBREC, pid)


def pubrel(pid: int) -> bytes:
    """PUBREL (3.6): its fixed header's flags are 0010 (3.6.1)."""
    return _with_id(PUBREL, pid, flags=2)


def pubcomp(pid: int) -> bytes:
    return _with_id(PUBCOMP, pid)


def pingresp() -> bytes:
    return bytes([PINGRESP << 4, 0])


# -- broken on purpose ----------------------------------------------------------------------


def five_byte_length(first_byte: int = PUBLISH << 4) -> bytes:
    """A fixed header whose remaining length runs to a fifth byte: malformed (2.2.3 allows four)."""
    return bytes([first_byte, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])


def lying_length(whole: bytes, extra: int) -> bytes:
    """``whole`` (a packet from this module) with a remaining length ``extra`` bytes larger than
    the body that follows: the reader waits for bytes that never come."""
    first, rest = whole[0], whole[1:]
    size, used = decode_length(rest)
    return bytes([first]) + remaining_length(size + extra) + rest[used:]


def decode_length(data: bytes) -> tuple[int, int]:
    """The remaining length at the start of ``data`` and how many bytes it took; ``ValueError``
    past four bytes (malformed) or when ``data`` ends inside it."""
    n = shift = 0
    for used, byte in enumerate(data[:4], start=1):
        n |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return n, used
        shift += 7
    if len(data) >= 4:
        raise ValueError("remaining length runs past four bytes (MQTT 3.1.1, 2.2.3)")
    raise ValueError("remaining length cut short")
