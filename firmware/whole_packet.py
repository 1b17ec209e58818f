# Packets built whole and written at once.
#
# One PUBLISH, one write. umqtt.simple 1.3.4 (still 1.8.0) writes a PUBLISH in three writes:
# its header, its topic, its payload. A Ctrl-C that lands between two of them ends the loop with
# half a packet on the connection, and the goodbye that follows (clean_disconnect.py) reaches the
# broker as the rest of that packet: garbage, so the broker drops the connection and publishes
# the will. Built whole and written at once, the packet is on the wire before a Ctrl-C, or not
# at all. QoS 0, as every message this firmware sends.
#
# One SUBSCRIBE, its remaining length as long as it needs. umqtt.simple 1.3.4 (and
# micropython-lib's umqtt.simple to this day) packs a SUBSCRIBE's remaining length into one
# byte: for a topic longer than 122 bytes it is 128 or more, the byte says "more follows", and
# the broker reads a malformed packet, closes, and the board subscribes again for ever.
import struct


def remaining_length(packet, size):
    # MQTT's remaining length (2.2.3): 7 bits a byte, the top bit says "more".
    while True:
        byte = size & 0x7F
        size >>= 7
        packet.append(byte | 0x80 if size else byte)
        if not size:
            break


def publish(c, topic, msg, retain=False):
    size = 2 + len(topic) + len(msg)
    packet = bytearray(b"\x31" if retain else b"\x30")
    remaining_length(packet, size)
    packet += len(topic).to_bytes(2, "big")
    packet += topic
    packet += msg
    c.sock.write(packet)


def subscribe(c, topic, qos=0):
    # One topic; returns the packet id its SUBACK must carry.
    c.pid = c.pid % 65535 + 1  # 1..65535: 0 is no packet id (MQTT-2.3.1-1)
    packet = bytearray(b"\x82")
    remaining_length(packet, 2 + 2 + len(topic) + 1)
    # The packet id, the topic's length in bytes, the topic, the QoS asked for.
    packet += struct.pack("!HH", c.pid, len(topic)) + topic + bytes((qos,))
    c.sock.write(packet)
    return c.pid
