"""The scripted broker's server: it listens, and hands each connection of the board either to
the scenario being played or to a well-behaved service (``Connection.serve``).

Lifecycle: ``ScriptedBroker(host)`` binds a port of its own (0: any free one) and accepts in a
thread; ``stop()`` closes the listener and every connection, and joins the thread. Between
scenarios every connection is served, so the board runs on as against a real broker; while a
scenario plays (``scripted()``), new connections wait for it in ``accept``. Every packet both
ways is written to ``log_path`` (one line each, with the time and the connection's number), so
that a failed scenario can point at the whole conversation.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rig.deadline import Deadline
from rig.scripted_broker.connection import Connection, ScenarioTimeout


class ScriptedBroker:
    """See the module docstring."""

    def __init__(self, host: str, log_path: Path, port: int = 0) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file: IO[str] | None = log_path.open("a", encoding="utf-8")
        self._log_lock = threading.Lock()
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()[:2]
        self.connections: list[Connection] = []
        self._arrivals: queue.Queue[Connection] = queue.Queue()
        self._scripted = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_all, name="scripted-broker", daemon=True)
        self._thread.start()
        self.log(f"listening on {self.host}:{self.port}")

    def log(self, text: str) -> None:
        with self._log_lock:
            if self._log_file is not None:
                now = time.time()
                self._log_file.write(
                    f"{time.strftime('%H:%M:%S', time.gmtime(now))}.{int(now * 1000) % 1000:03d} {text}\n"
                )
                self._log_file.flush()

    def _accept_all(self) -> None:
        while not self._stop.is_set():
            try:
                sock, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed: stop()
            with self._lock:
                conn = Connection(sock, len(self.connections) + 1, self.log)
                self.connections.append(conn)
                self.log(f"#{conn.number} accepted from {address[0]}:{address[1]}")
                if self._scripted:
                    self._arrivals.put(conn)
                else:
                    conn.serve()

    @contextlib.contextmanager
    def scripted(self) -> Iterator[None]:
        """New connections go to ``accept`` while inside; every open connection is served again
        when it ends (a failed scenario leaves the board a working broker). A caller that makes
        the connection itself (a test's client) enters first, so that it cannot be served before
        the scenario takes it; ``Scenario.play`` inside then keeps it."""
        with self._lock:
            self._scripted = True
        try:
            yield
        finally:
            with self._lock:
                self._scripted = False
                while not self._arrivals.empty():
                    self._arrivals.get_nowait().serve()
                for conn in self.connections:
                    if conn.ended is None and not conn.served:
                        conn.serve()

    def accept(self, deadline: Deadline) -> Connection:
        """The board's next connection (inside ``scripted``); ``ScenarioTimeout`` naming the last
        connection's end if none came within ``deadline``."""
        try:
            return self._arrivals.get(timeout=deadline.remaining_or(3600.0))
        except queue.Empty:
            last = self.connections[-1] if self.connections else None
            seen = f"connection #{last.number}: {last.last_seen()}" if last else "no connection at all"
            raise ScenarioTimeout(
                f"awaited a new connection of the board for {deadline.timeout}s; last seen: {seen}"
            ) from None

    def open_connections(self) -> list[Connection]:
        with self._lock:
            return [c for c in self.connections if c.ended is None]

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=2.0)
        for conn in list(self.connections):
            conn.shut()
        with self._log_lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def __enter__(self) -> ScriptedBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
