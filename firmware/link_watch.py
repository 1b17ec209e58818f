# Finds out that the connection to the broker is dead when nothing says so.
#
# umqtt.robust reconnects only when a read or a write fails. A link that silently drops every
# packet (Wi-Fi out of range, a router that lost its state) makes nothing fail: TCP keeps our
# writes in its buffer and our reads simply find nothing, forever. MQTT's keepalive is the way
# to tell: the board pings, and a broker that is there answers. So the watch notes when the
# broker was last heard from, pings after half a keepalive, and takes the connection for dead
# when nothing came for 1.5 keepalives (as long as the broker waits for us, MQTT 3.1.1 3.1.2.10):
# it closes the socket and reconnects.
#
# It also gives every socket a timeout. umqtt.simple 1.3.4 (the locked version; 1.4.0 takes
# connect(timeout=)) connects and waits for CONNACK without one, so a broker that accepts the
# connection but does not answer (hung, or stopped with SIGSTOP) would hold the board forever.
# And it turns Nagle's algorithm off on every socket (no_delay).
import select
import time

from umqtt import simple

import settings
from serial_events import emit

KEEPALIVE_MS = settings.KEEPALIVE * 1000
SOCKET_TIMEOUT = settings.SOCKET_TIMEOUT

_socket = simple.socket


def no_delay(sock):
    # umqtt.simple 1.3.4 (the locked version; 1.8.0 still does) writes one packet in several
    # small writes; with Nagle's algorithm the second one waits for the broker's delayed ACK,
    # ~40 ms per message. Under TLS each write is a record of its own and the handshake's
    # messages wait the same way: set before connecting, it takes a TLS connect on the unix port
    # from ~100 ms to ~15 ms. The constants are not exported everywhere: IPPROTO_TCP = 6,
    # TCP_NODELAY = 1 (Linux and lwIP alike).
    try:
        sock.setsockopt(6, 1, 1)
    except OSError:
        pass


class _TimedSockets:
    # Stands in for the socket module inside umqtt.simple: the same sockets, with a timeout and
    # without Nagle's delay.
    getaddrinfo = _socket.getaddrinfo
    made = None  # the TCP socket made last: the one under umqtt's socket when it is TLS

    @staticmethod
    def socket():
        s = _socket.socket()
        s.settimeout(SOCKET_TIMEOUT)
        no_delay(s)
        _TimedSockets.made = s
        return s


simple.socket = _TimedSockets


class LinkWatch:
    def __init__(self):
        self.poller = None
        self.tcp = None
        self.heard = time.ticks_ms()
        self.pinged = self.heard

    def attach(self, sock):
        # A new connection: its CONNACK was just heard. Under TLS, sock is the SSL socket over
        # the TCP socket umqtt made; the SSL socket has no settimeout nor setsockopt (ussl.py),
        # so those go to the TCP socket, which carries all its reads and writes.
        self.tcp = _TimedSockets.made
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)
        self.heard = self.pinged = time.ticks_ms()

    def timeout(self, seconds):
        # How long a read or write of the connection may block from now on.
        self.tcp.settimeout(seconds)

    def listen(self):
        # Before each read. umqtt.simple 1.3.4's wait_msg reads a PINGRESP and returns None, as
        # when nothing came, so the answer to our ping is seen here: bytes waiting to be read.
        if self.poller is not None and self.poller.poll(0):
            self.heard = time.ticks_ms()

    def tend(self, c):
        # Once per idle turn: ping when due; reconnect when the broker went silent.
        if not KEEPALIVE_MS:
            return  # no keepalive: nothing to ping, no bound on silence
        now = time.ticks_ms()
        silent = time.ticks_diff(now, self.heard)
        if silent > KEEPALIVE_MS * 3 // 2:
            emit("link_lost", silent_ms=silent)
            self.reconnect(c)
            return
        half = KEEPALIVE_MS // 2
        # umqtt does not ping by itself (simple 1.3.4 nor later). The broker needs to hear from
        # us within 1.5 keepalives, we need to hear from it: ping after half of one of either.
        quiet = time.ticks_diff(now, c.last_sent)
        if quiet > half or (silent > half and time.ticks_diff(now, self.pinged) > half):
            try:
                # On ESP32 umqtt's setblocking(True) cleared the timeout; the unix port keeps it.
                self.timeout(SOCKET_TIMEOUT)
                c.ping()
            except OSError as e:
                c.log(False, e)
                self.reconnect(c)
                return
            c.last_sent = self.pinged = now

    def reconnect(self, c):
        # umqtt.robust would reuse nothing of the old socket but would not close it either.
        try:
            c.sock.close()
        except OSError:
            pass
        c.reconnect()
