# Reading one MQTT message with its size checked before the payload is read.
#
# umqtt.simple 1.3.4 (the locked version; 1.8.0 still does) reads a whole payload at once,
# `self.sock.read(sz)`, whatever size the broker announces: a message larger than the board's free
# heap raises MemoryError and the firmware dies. This is that wait_msg, line for line, with these
# changes: the rest of a packet is read under the socket timeout; past MAX_PAYLOAD (config.json's
# max_payload, the largest payload the firmware documents) the payload is read and dropped in
# small chunks, an "error" event names its size, and the loop goes on; and a broker that
# misbehaves is answered as MQTT 3.1.1 says (docs/broker-scenarios.md):
#
#   a remaining length longer than 4 bytes  malformed (2.2.3): an "error" event, the connection
#                                           closed (MQTT-4.8.0-1) and made again
#   a packet the board never asked for      (a SUBACK with no SUBSCRIBE, a CONNACK, a PUBACK):
#                                           the same. umqtt.simple 1.3.4 returned its first byte
#                                           and left the rest unread, to be read as packets of
#                                           their own: a SUBACK for packet id 0x3000 then reads
#                                           as a PUBLISH
#   a PUBLISH at QoS 2                      PUBREC, and PUBCOMP for its PUBREL (MQTT-4.3.3-2);
#                                           umqtt.simple 1.3.4 ends with `assert 0`
#   a PUBREL                                PUBCOMP with its packet id, even for one we never saw
import settings
from serial_events import emit

# Bytes read at a time while skipping an oversize payload: the memory it costs, whatever its size.
SKIP_CHUNK = 256

# Packet ids of QoS 2 messages delivered to the app and not yet released by the broker's
# PUBREL. A PUBLISH redelivered with one of these ids (the broker did not get our PUBREC, and
# sends it again after a reconnect) is acknowledged again but not delivered twice: MQTT 3.1.1,
# 4.3.3, "method B". Kept across reconnects, as the session they belong to.
released_later = set()


class Violation(OSError):
    # The broker broke MQTT: the connection is closed and made again, as after a lost one.
    pass


def violation(kind, detail):
    emit("error", type=kind, detail=detail)
    raise Violation(detail)


def recv_len(c):
    # umqtt.simple 1.3.4's _recv_len reads length bytes for as long as they say "more".
    n = 0
    for shift in (0, 7, 14, 21):
        b = c.sock.read(1)[0]
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n
    violation("MalformedPacket", "remaining length longer than 4 bytes")


def send_ack(c, first, pid):
    # PUBACK, PUBREC or PUBCOMP: a first byte, length 2, the packet id.
    c.sock.write(bytes((first, 2, pid >> 8, pid & 0xFF)))


def wait_msg(c):
    res = c.sock.read(1)
    # umqtt.simple blocks here for the rest of the packet (setblocking(True)); on ESP32 that also
    # clears the socket's timeout. Keep the bound instead: a broker that stops mid-packet must
    # not hold the board forever (link_watch.py).
    c.link.timeout(settings.SOCKET_TIMEOUT)
    if res is None:
        return None
    if res == b"":
        raise OSError(-1)
    if res == b"\xd0":  # PINGRESP
        sz = c.sock.read(1)[0]
        assert sz == 0
        return None
    op = res[0]
    if op == 0x90 and c.subscribing:
        return op  # the SUBACK umqtt's subscribe waits for: it reads the rest itself
    if op & 0xF0 != 0x30:
        return other_packet(c, op)
    sz = recv_len(c)
    topic_len = c.sock.read(2)
    topic_len = (topic_len[0] << 8) | topic_len[1]
    topic = c.sock.read(topic_len)
    sz -= topic_len + 2
    if op & 6:
        pid = c.sock.read(2)
        pid = pid[0] << 8 | pid[1]
        sz -= 2
    if op & 6 == 4 and pid in released_later:
        skip(c.sock, sz)  # delivered already: only our PUBREC went missing
    elif sz > settings.MAX_PAYLOAD:  # check the size before reading
        skip(c.sock, sz)
        emit(
            "error",
            type="PayloadTooLarge",
            detail="payload of %d bytes on %s is above max_payload %d: dropped"
            % (sz, topic.decode(), settings.MAX_PAYLOAD),
            size=sz,
        )
    else:
        msg = c.sock.read(sz)
        c.cb(topic, msg)
    if op & 6 == 2:  # QoS 1: acknowledged, even when dropped, or the broker sends it again
        send_ack(c, 0x40, pid)
    elif op & 6 == 4:  # QoS 2: received; the broker's PUBREL will release it
        released_later.add(pid)
        send_ack(c, 0x50, pid)


def other_packet(c, op):
    # Any packet but PUBLISH and PINGRESP, read whole.
    sz = recv_len(c)
    body = c.sock.read(sz) if sz else b""
    if op == 0x62 and sz == 2:  # PUBREL
        pid = body[0] << 8 | body[1]
        released_later.discard(pid)
        send_ack(c, 0x70, pid)
        return None
    violation("UnexpectedPacket", "packet type %d (first byte 0x%02x) the board never asked for" % (op >> 4, op))


def skip(sock, n):
    buf = bytearray(SKIP_CHUNK)
    while n > 0:
        got = sock.readinto(buf, min(n, SKIP_CHUNK))
        if not got:
            raise OSError(-1)  # the connection ended inside the payload
        n -= got
