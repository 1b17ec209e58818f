"""Free loopback ports and whether something accepts connections on one."""

from __future__ import annotations

import contextlib
import socket


def pick_free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago.

    The kernel picks them (bind to port 0); all sockets are held until every port is chosen so the
    ports differ. They are released before returning, so another process may take one before the
    broker binds it: callers retry once on "address in use".
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def accepts_connections(host: str, port: int, timeout: float) -> bool:
    """True if a TCP connection to ``host:port`` succeeds within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=max(timeout, 0.01)):
            return True
    except OSError:
        return False


_WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # any 16 bytes in base64; RFC 6455's sample nonce
_MAX_RESPONSE = 4096


def accepts_websocket(host: str, port: int, timeout: float) -> bool:
    """True if ``host:port`` answers a WebSocket upgrade for MQTT with "101 Switching Protocols".

    A bare TCP connect would prove only that something listens; this proves the listener speaks
    WebSocket, and a broker whose handshake completed logs no handshake error about the probe.
    """
    request = (
        f"GET /mqtt HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {_WS_KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
    )
    try:
        with socket.create_connection((host, port), timeout=max(timeout, 0.01)) as sock:
            sock.sendall(request.encode("ascii"))
            response = b""
            while b"\r\n\r\n" not in response and len(response) < _MAX_RESPONSE:
                chunk = sock.recv(_MAX_RESPONSE)
                if not chunk:
                    break
                response += chunk
    except OSError:
        return False
    status = response.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[1] == b"101"
