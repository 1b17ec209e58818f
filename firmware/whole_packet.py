# One PUBLISH, one write. umqtt.simple 1.3.4 (still 1.8.0) writes a PUBLISH in three writes:
# its header, its topic, its payload. A Ctrl-C that lands between two of them ends the loop with
# half a packet on the connection, and the goodbye that follows (clean_disconnect.py) reaches the
# broker as the rest of that packet: garbage, so the broker drops the connection and publishes
# the will. Built whole and written at once, the packet is on the wire before a Ctrl-C, or not
# at all. QoS 0, as every message this firmware sends.


def publish(c, topic, msg, retain=False):
    size = 2 + len(topic) + len(msg)
    packet = bytearray(b"\x31" if retain else b"\x30")
    while True:  # MQTT's remaining length: 7 bits a byte, the top bit says "more"
        byte = size & 0x7F
        size >>= 7
        packet.append(byte | 0x80 if size else byte)
        if not size:
            break
    packet += len(topic).to_bytes(2, "big")
    packet += topic
    packet += msg
    c.sock.write(packet)
