"""A broker that refuses the board, accepts it once, and refuses it again: two outages in one
boot, with a success between them, on a port of its own where the board can reach it.

The rig's brokers cannot be told to refuse a login they accepted a moment ago, and a backoff
that never comes down again after a success shows only in such a second outage. This one
follows its script packet by packet (MQTT 3.1.1): ``first`` CONNACKs with return code 3
("server unavailable"), then one that accepts (no session), a SUBACK for the board's SUBSCRIBE,
the board's PUBLISHes read until its hello, then it closes that connection; every later CONNECT
is refused again. It records when each CONNECT came, for the test to judge.

Lifecycle: listening from creation, serving from a thread of its own; ``close()`` stops it
(the thread is a daemon: a board that never came back does not keep the test alive).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

SERVER_UNAVAILABLE = 3


@dataclass(frozen=True)
class Attempt:
    t: float
    accepted: bool


class RefusingBroker:
    def __init__(self, host: str, first: int, hello: bytes) -> None:
        self.first = first
        self.hello = hello
        self.attempts: list[Attempt] = []
        self.problems: list[str] = []
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="refusing-broker", daemon=True)
        self._thread.start()

    def refused_after_success(self) -> list[Attempt]:
        accepted = [i for i, a in enumerate(self.attempts) if a.accepted]
        return self.attempts[accepted[0] + 1 :] if accepted else []

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(5.0)
                try:
                    self._answer(conn)
                except (OSError, ValueError) as e:  # the board left, or spoke no MQTT
                    self.problems.append(repr(e))

    def _answer(self, conn: socket.socket) -> None:
        first = read_packet(conn)
        if first[:1] != b"\x10":
            raise ValueError(f"not a CONNECT: {first[:8].hex()}")
        accept = len(self.attempts) == self.first
        self.attempts.append(Attempt(time.time(), accept))
        if not accept:
            conn.sendall(bytes([0x20, 2, 0, SERVER_UNAVAILABLE]))
            return
        conn.sendall(b"\x20\x02\x00\x00")  # accepted, no session: the board subscribes
        while True:
            packet = read_packet(conn)
            if packet[:1] == b"\x82":  # SUBSCRIBE: granted at QoS 0
                conn.sendall(b"\x90\x03" + packet[1:3] + b"\x00")
            elif packet[0] & 0xF0 == 0x30 and packet.endswith(self.hello):
                return  # the board runs its loop: this connection ends here

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=1.0)


def read_packet(conn: socket.socket) -> bytes:
    """One MQTT packet: its first byte and its body (the remaining length left out)."""
    first = _read(conn, 1)
    size, shift = 0, 0
    while True:
        byte = _read(conn, 1)[0]
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return first + _read(conn, size)


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client closed the connection")
        data += chunk
    return data
