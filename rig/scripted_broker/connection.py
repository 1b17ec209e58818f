"""One TCP connection of the board to the scripted broker, read by a thread of its own.

The reader frames and decodes every packet the board sends and either queues it for the
scenario that holds the connection (``expect``) or, once the connection is ``serve()``d, answers
it as a well-behaved broker would. PINGREQs are answered as they come unless the scenario
withholds PINGRESP, so that a scenario waits only on the packets it is about.

Lifecycle: made by the broker on accept; ``close()`` sends FIN and goes on reading, so that the
board's own close of this connection (or the lack of it: a leaked socket) is seen; ``reset()``
ends it with RST; ``shut()`` (the broker's stop) closes the socket. The connection is over when
``ended`` is set: the board closed (FIN), reset it (RST), or sent something unreadable.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rig.deadline import Deadline
from rig.scripted_broker import packets
from rig.scripted_broker.decode import MalformedPacket, Received, decode

# How long one read of the socket blocks before the reader looks whether it should stop.
_POLL_S = 0.2


@dataclass(frozen=True)
class Ended:
    """The board's end of the connection: "FIN" (it closed), "RST" (it reset), or "garbage"."""

    how: str
    detail: str = ""

    def describe(self) -> str:
        return f"connection ended ({self.how}{': ' + self.detail if self.detail else ''})"


Seen = Received | Ended


class ScenarioTimeout(AssertionError):
    """A bounded wait of the scripted broker ran out: says what was awaited and what came last."""


class Connection:
    """See the module docstring."""

    def __init__(self, sock: socket.socket, number: int, log: Callable[[str], None]) -> None:
        self.sock = sock
        self.number = number
        self._log = log
        self.answer_pings = True
        self.served = False
        self.history: list[Seen] = []
        self.ended: Ended | None = None
        self._queue: queue.Queue[Seen] = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._buffer = b""
        sock.settimeout(_POLL_S)
        self._reader = threading.Thread(target=self._read_all, name=f"scripted-conn-{number}", daemon=True)
        self._reader.start()

    def __repr__(self) -> str:
        return f"<Connection #{self.number} {'served' if self.served else 'scripted'}>"

    # -- what the board sends ---------------------------------------------------------------

    def _read_all(self) -> None:
        while not self._stop.is_set():
            try:
                seen: Seen = decode(self._read_packet())
            except _Stopped:
                return
            except MalformedPacket as e:
                seen = Ended("garbage", str(e))
            except ConnectionResetError:
                seen = Ended("RST")
            except EOFError as e:
                seen = Ended("FIN", str(e))
            except OSError as e:
                seen = Ended("RST", repr(e))
            self._log(f"#{self.number} <- {seen.describe()}")
            with self._lock:
                self.history.append(seen)
                if isinstance(seen, Ended):
                    self.ended = seen
                    self._ended.set()
                if isinstance(seen, Received) and seen.kind == "PINGREQ" and self.answer_pings:
                    self.send(packets.pingresp(), "PINGRESP")
                elif self.served:
                    self._answer(seen)
                else:
                    self._queue.put(seen)
            if isinstance(seen, Ended):
                return

    def _read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            if self._stop.is_set():
                raise _Stopped
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                left = f"{len(self._buffer)} byte(s) of an unfinished packet" if self._buffer else ""
                raise EOFError(left)
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _read_packet(self) -> bytes:
        header = self._read_exactly(1)
        length = b""
        while True:
            length += self._read_exactly(1)
            if not length[-1] & 0x80:
                break
            if len(length) == 4:
                raise MalformedPacket("remaining length runs past four bytes")
        size, _ = packets.decode_length(length)
        return header + length + self._read_exactly(size)

    # -- the well-behaved broker ------------------------------------------------------------

    def serve(self) -> None:
        """From now on answer the board as a broker that does the right thing: accept its
        connection (no session kept), grant its subscriptions at QoS 0, acknowledge its QoS 1
        and 2 messages, answer its pings, and take its DISCONNECT."""
        with self._lock:
            self.served = True
            self.answer_pings = True
            while not self._queue.empty():
                self._answer(self._queue.get_nowait())

    def _answer(self, seen: Seen) -> None:
        if not isinstance(seen, Received):
            return
        pid = seen.pid or 0
        if seen.kind == "CONNECT":
            self.send(packets.connack(0), "CONNACK 0")
        elif seen.kind == "SUBSCRIBE":
            filters = seen.details.get("filters")
            granted = [0] * (len(filters) if isinstance(filters, list) else 1)
            self.send(packets.suback(pid, *granted), "SUBACK")
        elif seen.kind == "PINGREQ":
            self.send(packets.pingresp(), "PINGRESP")
        elif seen.kind == "PUBLISH" and seen.qos == 1:
            self.send(packets.puback(pid), "PUBACK")
        elif seen.kind == "PUBLISH" and seen.qos == 2:
            self.send(packets.pubrec(pid), "PUBREC")
        elif seen.kind == "PUBREL":
            self.send(packets.pubcomp(pid), "PUBCOMP")
        elif seen.kind == "DISCONNECT":
            self.close()

    # -- what the scenario does -------------------------------------------------------------

    def expect(self, awaited: str, test: Callable[[Seen], bool], deadline: Deadline) -> Seen:
        """The next packet (or the end of the connection) the board sends; ``ScenarioTimeout``
        if none came within ``deadline``, ``AssertionError`` naming it if it fails ``test``."""
        try:
            seen = self._queue.get(timeout=deadline.remaining_or(3600.0))
        except queue.Empty:
            raise ScenarioTimeout(
                f"awaited {awaited} on connection #{self.number} for {deadline.timeout}s; "
                f"last seen: {self.last_seen()}"
            ) from None
        if not test(seen):
            raise AssertionError(
                f"awaited {awaited} on connection #{self.number}, the board sent {seen.describe()}"
            )
        return seen

    def last_seen(self) -> str:
        with self._lock:
            recent = self.history[-3:]
        return "; ".join(s.describe() for s in recent) if recent else "nothing on this connection"

    def send(self, data: bytes, what: str) -> None:
        """Write ``data`` whole. A board that closed first makes this a no-op, logged: what it
        does next is the scenario's to judge."""
        try:
            self.sock.sendall(data)
        except OSError as e:
            self._log(f"#{self.number} -> {what} not sent: {e!r}")
            return
        self._log(f"#{self.number} -> {what}: {data[:48].hex(' ')}{' ...' if len(data) > 48 else ''}")

    def close(self) -> None:
        """FIN: the broker is done sending; the reader stays to see how the board answers."""
        self._log(f"#{self.number} -> FIN")
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def reset(self) -> None:
        """RST, as a broker that crashed or a middlebox that gave up on the connection."""
        self._log(f"#{self.number} -> RST")
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.shut()

    def wait_ended(self, deadline: Deadline) -> Ended | None:
        """How the board ended this connection, or None if it had not within ``deadline``."""
        self._ended.wait(deadline.remaining_or(3600.0))
        return self.ended

    def shut(self) -> None:
        """Stop reading and close the socket (the broker's stop, or its RST): the connection is
        over even if the reader stopped before it saw the end (it was handing on a packet), so
        that a later ``Kick`` does not take it for one the board still holds."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=_POLL_S * 5)
        with self._lock:
            if self.ended is None:
                self.ended = Ended("RST", "the broker closed its socket")
                self._ended.set()


class _Stopped(Exception):
    """The broker stopped while the reader was waiting."""
