"""A broker the user runs: the rig only connects to it."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path

from rig import netns
from rig.broker.access import Login
from rig.broker.base import Broker, BrokerKind
from rig.broker.ports import accepts_connections
from rig.deadline import Deadline
from rig.errors import BrokerError, ConfigError
from rig.settings import BROKER_PASSWORD, BROKER_USER

# host:port or host:port,ws_port; an IPv6 host goes in brackets: [::1]:1883
_SPEC = re.compile(
    r"^(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:,\[\]]+)):(?P<port>\d{1,5})(?:,(?P<ws>\d{1,5}))?$"
)
_FORMAT = "expected host:port or host:port,ws_port (e.g. 192.168.1.10:1883,8080)"
_PROBE_S = 1.0
_RETRY_S = 0.2
# Where an external broker's credentials come from: the environment, never a file in the repo.
USER_ENV = BROKER_USER.env
PASSWORD_ENV = BROKER_PASSWORD.env


def login_from_env(environ: Mapping[str, str]) -> Login | None:
    """The external broker's login from ``RIG_BROKER_USER`` and ``RIG_BROKER_PASSWORD``; None
    when neither is set. One without the other is a ConfigError naming the missing one."""
    user, password = environ.get(USER_ENV), environ.get(PASSWORD_ENV)
    if user is None and password is None:
        return None
    if not user:
        raise ConfigError("environment", USER_ENV, f"is unset or empty but {PASSWORD_ENV} is set")
    if password is None:
        raise ConfigError("environment", PASSWORD_ENV, f"is unset but {USER_ENV} is set")
    return Login(user, password)


def _valid_port(text: str) -> bool:
    return 1 <= int(text) <= 65535


class ExternalBroker(Broker):
    """A broker the rig does not run: no process, no log, no restart.

    Lifecycle: construct with its address; ``start()`` waits (bounded) until it accepts a
    connection, raising ``BrokerError`` naming the address if it never does, and offers it to
    the virtual boards' own networks of this process (``rig.netns.offer_to_boards``: relayed
    when it is on this machine's loopback, ``OutOfReach`` naming the address and the board's
    network when a board cannot reach it at all); ``stop()`` withdraws that; ``restart()``
    raises. It gives no records (``records_unavailable`` says why), so a check that needs them is
    skipped, naming what went unchecked. Every client of the run connects with ``login``
    (``RIG_BROKER_USER`` / ``RIG_BROKER_PASSWORD``), or anonymously without one.
    """

    kind: BrokerKind = "external"

    def __init__(self, host: str, port: int, ws_port: int | None = None, login: Login | None = None) -> None:
        self._login = login
        for key, value in (("port", port), ("ws_port", ws_port)):
            if value is not None and not 1 <= value <= 65535:
                raise ConfigError("ExternalBroker", key, f"{value} is not a TCP port (1..65535)")
        if not host:
            raise ConfigError("ExternalBroker", "host", "empty host")
        self._host = host
        self._port = port
        self._ws_port = ws_port

    def login(self, role: str) -> Login | None:
        return self._login

    @classmethod
    def from_spec(
        cls, spec: str, source: str = "external broker", login: Login | None = None
    ) -> ExternalBroker:
        """Parse ``host:port`` or ``host:port,ws_port``; ConfigError naming ``spec`` if malformed."""
        found = _SPEC.match(spec.strip())
        if found is None:
            raise ConfigError(source, "external", f"{spec!r}: {_FORMAT}")
        for group in ("port", "ws"):
            text = found.group(group)
            if text is not None and not _valid_port(text):
                raise ConfigError(source, "external", f"{spec!r}: port {text} is not in 1..65535")
        ws = found.group("ws")
        return cls(
            found.group("ip6") or found.group("host"),
            int(found.group("port")),
            int(ws) if ws else None,
            login,
        )

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def ws_port(self) -> int | None:
        return self._ws_port

    @property
    def log_path(self) -> Path | None:
        return None

    @property
    def pid(self) -> int | None:
        return None

    @property
    def records_unavailable(self) -> str | None:
        return (
            f"the external broker {self._host}:{self._port} is not run by the rig: "
            "its log and the packets it received are out of the rig's reach"
        )

    def start(self, timeout: float = 10.0) -> None:
        """Nothing to start (the user runs this broker): see that it answers, and let the boards
        reach it (see the class docstring)."""
        deadline = Deadline(timeout)
        while not accepts_connections(self._host, self._port, deadline.remaining_or(_PROBE_S)):
            if deadline.expired:
                raise BrokerError(
                    f"the external broker {self._host}:{self._port} accepted no connection within "
                    f"{timeout:g}s: is it running, and listening there?"
                )
            time.sleep(deadline.remaining_or(_RETRY_S))
        netns.offer_to_boards(self._host, self._port)

    def stop(self, timeout: float = 5.0) -> None:
        """Nothing to stop (the user runs this broker): the boards' relays to it stop."""
        netns.withdraw_from_boards(self._host, self._port)

    def restart(self, timeout: float = 10.0) -> None:
        raise BrokerError(
            f"an external broker ({self._host}:{self._port}) cannot be restarted by the rig; "
            "use a mosquitto or amqtt broker for tests that restart it"
        )

    def is_running(self) -> bool:
        """True if its TCP port accepts a connection within a second."""
        return accepts_connections(self._host, self._port, _PROBE_S)
