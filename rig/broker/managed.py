"""A broker the rig runs itself, as a subprocess on loopback ports."""

from __future__ import annotations

import time
from abc import abstractmethod
from pathlib import Path

from rig.broker.access import AccessPolicy
from rig.broker.base import Broker
from rig.broker.logfile import LogFile
from rig.broker.ports import accepts_connections, accepts_websocket, pick_free_ports
from rig.broker.process import BrokerProcess
from rig.broker.tls import TlsMaterial
from rig.deadline import Deadline
from rig.errors import BrokerError
from rig.processes import SYSTEM_ENV, child_environment

# One connection attempt must not eat the whole start bound.
_PROBE_S = 0.2
_PROBE_PAUSE_S = 0.05
# A broker that failed to start is stopped within this bound before the failure is reported.
_CLEANUP_STOP_S = 2.0
# How a failed bind reads in the log, lower-cased: the OS error (mosquitto's TCP listener, asyncio),
# and mosquitto's only message when libwebsockets cannot bind.
_ADDRESS_IN_USE = ("address already in use", "unable to create websockets listener")


class _AddressInUse(BrokerError):
    """A listener could not bind its port: someone took it between our pick and its bind."""


class ManagedBroker(Broker):
    """A broker process the rig starts, stops and restarts, with its log in ``workdir``.

    Lifecycle: construct (nothing runs, no port chosen), ``start()`` picks free loopback ports
    unless given and waits until they accept connections, ``stop()`` ends the process, ``start()``
    or ``restart()`` again reuse the same ports for the object's whole life, so clients and
    firmware configured with them keep working. The log file accumulates all runs.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        ws_port: int | None = None,
        access: AccessPolicy | None = None,
        tls: TlsMaterial | None = None,
    ) -> None:
        """``access``: the run's accounts; anonymous clients are then refused and each account
        keeps to its topics. None: anyone may connect and use every topic (``rig broker --open``).
        ``tls``: a third listener, MQTT over TLS with this certificate, on ``tls_port``."""
        self.access = access
        self.tls = tls
        self._tls_port: int | None = None
        # Absolute, whatever the caller gave: the broker runs with ``workdir`` as its current
        # directory, so a relative config path written into its command line would point nowhere.
        self.workdir = workdir.absolute()
        self._host = host
        self._requested = (port, ws_port)
        self._port = port
        self._ws_port = ws_port
        # Ports chosen by the caller, or already bound once, are never swapped for others.
        self._ports_fixed = port is not None and ws_port is not None
        self._proc: BrokerProcess | None = None

    # -- what a concrete broker supplies ----------------------------------------------------------

    @property
    @abstractmethod
    def log_path(self) -> Path: ...

    @abstractmethod
    def _check_installed(self) -> None:
        """Raise BrokerError naming how to install the broker if it is missing."""

    @abstractmethod
    def _prepare(self, port: int, ws_port: int) -> list[str]:
        """Write the config for these ports into ``workdir``; return the command line."""

    def _env(self) -> dict[str, str]:
        """The child's environment: what any program needs of ours (``SYSTEM_ENV``), never the
        rest, which may hold the run's secrets and a CI service's tokens."""
        return child_environment(SYSTEM_ENV)

    # -- Broker ---------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The MQTT-over-TCP port; BrokerError before the first start() chose it."""
        return self._ports()[0]

    @property
    def ws_port(self) -> int | None:
        return self._ports()[1]

    @property
    def tls_port(self) -> int | None:
        """The MQTT-over-TLS port, chosen with the others; None without ``tls``."""
        if self.tls is None:
            return None
        self._ports()
        return self._tls_port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running() and self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            raise BrokerError(f"the {self.kind} broker is already running (pid {self._proc.pid})")
        deadline = Deadline(timeout)
        self._check_installed()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.tls is not None and self._ports_fixed and self._tls_port is None:
            self._tls_port = pick_free_ports(self._host, 1)[0]
        if self._ports_fixed:
            self._launch(deadline)
        else:
            self._launch_on_fresh_ports(deadline)
        self._ports_fixed = True

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stop(timeout)
            except BrokerError:
                # Keep it so that pid/is_running keep telling the truth about the survivor.
                self._proc = proc
                raise

    def restart(self, timeout: float = 10.0) -> None:
        """Stop, then start on the same ports.

        Both brokers bind with SO_REUSEADDR (mosquitto itself, amqtt through asyncio), so sockets
        of the old process lingering in TIME_WAIT do not block the new bind.
        """
        deadline = Deadline(timeout)
        self.stop(deadline.remaining_or(5.0))
        self.start(deadline.remaining_or(timeout))

    # -- starting -------------------------------------------------------------------------------

    def _launch_on_fresh_ports(self, deadline: Deadline) -> None:
        # The ports were free a moment ago; another process may still grab one before the
        # broker binds it. That race is rare, so one retry on fresh ports is enough.
        for attempt in (1, 2):
            picked = pick_free_ports(self._host, 3 if self.tls is not None else 2)
            self._port = self._requested[0] or picked[0]
            self._ws_port = self._requested[1] or picked[1]
            self._tls_port = picked[2] if self.tls is not None else None
            try:
                self._launch(deadline)
                return
            except _AddressInUse:
                if attempt == 2:
                    raise

    def _ports(self) -> tuple[int, int]:
        if self._port is None or self._ws_port is None:
            raise BrokerError(f"the {self.kind} broker has no ports yet: start() it first")
        return self._port, self._ws_port

    def _launch(self, deadline: Deadline) -> None:
        port, ws_port = self._ports()
        argv = self._prepare(port, ws_port)
        # A marker between runs, and the reason for the connections the broker logs right after
        # it: they are the readiness probes, not clients.
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(
                f"---- rig: starting {self.kind} on {self._host}:{port} (websocket {ws_port}); "
                "its first connections are the rig's readiness probes ----\n"
            )
        log_start = LogFile(self.log_path).size()
        proc = BrokerProcess.spawn(argv, self.log_path, cwd=self.workdir, env=self._env())
        self._proc = proc
        try:
            self._await_ready(proc, deadline, log_start)
        except BrokerError as exc:
            self._proc = None
            try:
                proc.stop(_CLEANUP_STOP_S)
            except BrokerError as stop_exc:
                self._proc = proc
                raise BrokerError(f"{exc}\n  and the failed broker could not be stopped: {stop_exc}") from exc
            raise

    def _await_ready(self, proc: BrokerProcess, deadline: Deadline, log_start: int) -> None:
        port, ws_port = self._ports()
        pending = [(port, accepts_connections, "MQTT"), (ws_port, accepts_websocket, "WebSocket")]
        if self.tls is not None and self._tls_port is not None:
            pending.append((self._tls_port, accepts_connections, "MQTT over TLS"))
        while pending:
            code = proc.poll()
            if code is not None:
                raise self._early_exit(proc, code, log_start)
            probe_port, probe, what = pending[0]
            if probe(self._host, probe_port, deadline.remaining_or(_PROBE_S)):
                pending.pop(0)
                continue
            if deadline.expired:
                raise self._failure(
                    f"the {self.kind} broker (pid {proc.pid}) did not accept {what} connections on "
                    f"{self._host}:{probe_port} within {deadline.timeout:.1f}s"
                )
            time.sleep(deadline.remaining_or(_PROBE_PAUSE_S))
        # A port can accept because someone else listens on it while our broker is failing to
        # bind it; a broker that lost the race exits at once, so look again.
        code = proc.poll()
        if code is not None:
            raise self._early_exit(proc, code, log_start)

    def _early_exit(self, proc: BrokerProcess, code: int, log_start: int) -> BrokerError:
        headline = (
            f"the {self.kind} broker (pid {proc.pid}) exited with code {code} during startup "
            f"on {self._host}:{self._port} (ws {self._ws_port})"
        )
        this_run = "\n".join(LogFile(self.log_path).lines(since=log_start)).lower()
        if any(sign in this_run for sign in _ADDRESS_IN_USE):
            return _AddressInUse(str(self._failure(headline + ": a port is already in use")))
        return self._failure(headline)
