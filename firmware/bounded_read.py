# Reading one MQTT message with its size checked before the payload is read.
#
# umqtt.simple 1.3.4 (the locked version; 1.8.0 still does) reads a whole payload at once,
# `self.sock.read(sz)`, whatever size the broker announces: a message larger than the board's free
# heap raises MemoryError and the firmware dies. This is that wait_msg, line for line, with two
# changes: the rest of a packet is read under the socket timeout, and past MAX_PAYLOAD
# (config.json's max_payload, the largest payload the firmware documents) the payload is read and
# dropped in small chunks, an "error" event names its size, and the loop goes on.
import settings
from serial_events import emit

# Bytes read at a time while skipping an oversize payload: the memory it costs, whatever its size.
SKIP_CHUNK = 256


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
    if op & 0xF0 != 0x30:
        return op
    sz = c._recv_len()
    topic_len = c.sock.read(2)
    topic_len = (topic_len[0] << 8) | topic_len[1]
    topic = c.sock.read(topic_len)
    sz -= topic_len + 2
    if op & 6:
        pid = c.sock.read(2)
        pid = pid[0] << 8 | pid[1]
        sz -= 2
    if sz > settings.MAX_PAYLOAD:  # check the size before reading
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
        pkt = bytearray(b"\x40\x02\0\0")
        pkt[2] = pid >> 8
        pkt[3] = pid & 0xFF
        c.sock.write(pkt)
    elif op & 6 == 4:
        assert 0


def skip(sock, n):
    buf = bytearray(SKIP_CHUNK)
    while n > 0:
        got = sock.readinto(buf, min(n, SKIP_CHUNK))
        if not got:
            raise OSError(-1)  # the connection ended inside the payload
        n -= got
