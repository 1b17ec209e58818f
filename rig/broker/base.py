"""The interface every broker offers the rig: its ports, its lifecycle, its log and its records."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from rig.broker.access import AccessPolicy, Login
from rig.broker.logfile import LogFile
from rig.broker.record_source import RecordFollower
from rig.broker.tls import TlsMaterial
from rig.errors import BrokerError

BrokerKind = Literal["mosquitto", "amqtt", "external"]

_B = TypeVar("_B", bound="Broker")

# How many log lines a failure message quotes.
TAIL_LINES = 15


class Broker(ABC):
    """An MQTT broker the board and the test talk to.

    Lifecycle: construct, ``start()`` (or enter the ``with`` block), use ``host``/``port``/``ws_port``,
    optionally ``restart()`` (same ports), then ``stop()`` (or leave the block). ``stop()`` is
    idempotent. What the broker saw of each client (CONNECT, SUBSCRIBE, how a connection ended)
    comes as records (``record_follower()``, ``rig.broker.records``), also after it stopped;
    the raw log (``log_path``) is for people.
    """

    kind: BrokerKind
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

    # -- log ------------------------------------------------------------------------------------

    def log_mark(self) -> int:
        """A position in the log: pass it as ``since`` to ``LogFile.lines`` for later lines only."""
        return 0 if self.log_path is None else LogFile(self.log_path).size()

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
