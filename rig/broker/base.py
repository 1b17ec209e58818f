"""The interface every broker offers the rig, and its log audit."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from rig.broker.access import AccessPolicy, Login
from rig.broker.events import ClientEvent, EventKind
from rig.broker.logfile import LogFile, LogFollower
from rig.broker.logparse import LogDialect
from rig.broker.record_source import RecordFollower
from rig.broker.tls import TlsMaterial
from rig.deadline import Deadline
from rig.errors import BrokerError, WaitTimeout

BrokerKind = Literal["mosquitto", "amqtt", "external"]

_B = TypeVar("_B", bound="Broker")

# How many log lines a failure message quotes.
TAIL_LINES = 15
# Log polling period: the log is a local file, so short sleeps cost nothing.
_POLL_S = 0.05


class Broker(ABC):
    """An MQTT broker the board and the test talk to.

    Lifecycle: construct, ``start()`` (or enter the ``with`` block), use ``host``/``port``/``ws_port``,
    optionally ``restart()`` (same ports), then ``stop()`` (or leave the block). ``stop()`` is
    idempotent. The log audit (``client_events``, ``wait_for_client_event``) works whenever the
    broker has a log, also after it stopped.
    """

    kind: BrokerKind
    # The log wording of this broker; None when the rig cannot read the broker's log.
    dialect: LogDialect | None = None
    # Who may connect and what each may touch (``rig.broker.access``); None: anonymous clients
    # are admitted and every topic is open (an external broker the rig knows no policy of).
    access: AccessPolicy | None = None
    # The TLS listener's certificate and the CA its clients trust; None without one.
    tls: TlsMaterial | None = None

    def login(self, role: str) -> Login | None:
        """The login a client in ``role`` (``rig.broker.access``: HOST, INJECTOR, a board's)
        connects with; None when the broker takes anonymous clients."""
        return None if self.access is None else self.access.login(role)

    @property
    @abstractmethod
    def host(self) -> str: ...

    @property
    @abstractmethod
    def port(self) -> int:
        """The MQTT-over-TCP port."""

    @property
    @abstractmethod
    def ws_port(self) -> int | None:
        """The MQTT-over-WebSocket port, or None if the broker has none."""

    @property
    def tls_port(self) -> int | None:
        """The MQTT-over-TLS port, or None if the broker has no TLS listener."""
        return None

    @property
    @abstractmethod
    def log_path(self) -> Path | None: ...

    @property
    @abstractmethod
    def pid(self) -> int | None:
        """The broker process while it runs under the rig; None otherwise."""

    @abstractmethod
    def start(self, timeout: float = 10.0) -> None:
        """Return once the broker accepts connections on all its ports; BrokerError otherwise."""

    @abstractmethod
    def stop(self, timeout: float = 5.0) -> None:
        """End the broker and make sure its process is gone; idempotent."""

    @abstractmethod
    def restart(self, timeout: float = 10.0) -> None:
        """Stop, then start again on the same ports."""

    @abstractmethod
    def is_running(self) -> bool: ...

    @property
    def supports_disconnect_audit(self) -> bool:
        """True if the log tells a clean DISCONNECT from a connection that just ended."""
        if self.dialect is None or self.log_path is None:
            return False
        return {EventKind.DISCONNECT_RECEIVED, EventKind.CLOSED_UNCLEAN} <= self.dialect.audited

    @property
    def enforces_keepalive(self) -> bool:
        """True if the broker drops a client that stays silent past 1.5 x its keepalive.

        The MQTT spec requires it; brokers that do not override this.
        """
        return True

    # -- records ------------------------------------------------------------------------------

    @property
    def records_unavailable(self) -> str | None:
        """Why the rig gets no record of what this broker received and answered (CONNECT,
        SUBSCRIBE, ...); None when it does. A test that cannot check something says this."""
        return f"the {self.kind} broker gives the rig no record of the packets it received"

    def record_follower(self) -> RecordFollower | None:
        """Follows this broker's records from now on (``rig.broker.records``); None without."""
        return None

    # -- log audit ------------------------------------------------------------------------------

    def log_lines(self) -> list[str]:
        """Every line the broker logged so far (all runs, across restarts); [] without a log."""
        return [] if self.log_path is None else LogFile(self.log_path).lines()

    def log_mark(self) -> int:
        """A position in the log: pass it as ``since`` to wait only for later events."""
        return 0 if self.log_path is None else LogFile(self.log_path).size()

    def client_events(self, client_id: str, *, since: int = 0) -> list[ClientEvent]:
        """The events the log records for ``client_id`` from byte offset ``since`` (a ``log_mark()``),
        oldest first; [] without a log."""
        if self.dialect is None or self.log_path is None:
            return []
        return self._events_in(LogFile(self.log_path).lines(since), client_id)

    def wait_for_client_event(
        self, client_id: str, kind: EventKind, timeout: float = 10.0, *, since: int = 0
    ) -> ClientEvent:
        """The first ``kind`` event for ``client_id`` logged at or after byte offset ``since``.

        An event logged before the call counts (since defaults to the start of the log), so there
        is no race with an event that happened just before the wait. Raises WaitTimeout with the
        log tail when ``timeout`` expires, BrokerError at once if this broker cannot log ``kind``.
        """
        dialect, log_path = self.dialect, self.log_path
        if dialect is None or log_path is None:
            raise BrokerError(
                f"the {self.kind} broker has no log the rig can read: cannot wait for {kind.value}"
            )
        if kind not in dialect.audited:
            raise BrokerError(
                f"the {self.kind} broker does not log {kind.value} events; observe it another way"
            )
        deadline = Deadline(timeout)
        follower = LogFollower(log_path, since)
        while True:
            for event in self._events_in(follower.read_new_lines(), client_id):
                if event.kind is kind:
                    return event
            if deadline.expired:
                raise WaitTimeout(
                    awaited=f"{kind.value} of client {client_id!r} in the {self.kind} broker log",
                    timeout=timeout,
                    last_seen=LogFile(log_path).tail(TAIL_LINES),
                    log_path=log_path,
                )
            time.sleep(deadline.remaining_or(_POLL_S))

    def _events_in(self, lines: list[str], client_id: str) -> list[ClientEvent]:
        if self.dialect is None:
            return []
        events = (self.dialect.parse(line) for line in lines)
        return [event for event in events if event is not None and event.client_id == client_id]

    def _failure(self, headline: str) -> BrokerError:
        """A BrokerError that quotes the log tail and names the log file."""
        if self.log_path is None:
            return BrokerError(headline)
        tail = LogFile(self.log_path).tail(TAIL_LINES)
        shown = "\n".join(f"    {line}" for line in tail) or "    (log is empty)"
        return BrokerError(f"{headline}\n  last {len(tail)} log lines:\n{shown}\n  full log: {self.log_path}")

    # -- context manager ------------------------------------------------------------------------

    def __enter__(self: _B) -> _B:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} kind={self.kind} log={self.log_path} pid={self.pid}>"
