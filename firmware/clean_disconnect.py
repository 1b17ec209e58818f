# A disconnect the broker cannot take for a lost connection. The tutorial's c.disconnect()
# (umqtt.simple 1.3.4, the locked version, and still 1.8.0) writes DISCONNECT and closes the
# socket at once. In the echo loop the broker is sending us echoes right then, and closing a
# socket that holds unread bytes makes the kernel send RST instead of FIN: the broker discards
# the DISCONNECT it had not read yet and publishes the will ("lost"). So: say goodbye, read until
# the broker closes its side, then close.
import whole_packet

from serial_events import emit

# How long (s) to wait for the broker to close its side before closing anyway.
EOF_TIMEOUT = 2


def disconnect(c, status_topic):
    # Not robust's publish: robust would try to reconnect forever. Written whole
    # (whole_packet.py), as the echoes are.
    try:
        whole_packet.publish(c, status_topic, b"offline", True)
        c.sock.write(b"\xe0\0")  # DISCONNECT
    except OSError as e:
        emit("disconnected", clean=False, detail=str(e))
        c.sock.close()
        return
    c.link.timeout(EOF_TIMEOUT)
    try:
        while c.sock.read(256):
            pass
    except OSError:
        pass  # no EOF within the bound: close anyway
    c.sock.close()
    emit("disconnected", clean=True)
