"""Typed errors of the rig. Callers tell failures apart by class, never by message text.

Two families matter to a test run:

- ``InfrastructureError``: the rig could not do its job (port vanished, board unreachable,
  broker would not start). A test that hits one says nothing about the firmware.
- everything else under ``RigError``: the firmware or its configuration is at fault.
"""

from __future__ import annotations

from pathlib import Path


class RigError(Exception):
    """Base of every error the rig raises on purpose."""


class ConfigError(RigError):
    """Bad input: names the source (file, option or variable), the key and the value."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}")


class InfrastructureError(RigError):
    """The rig itself failed; the firmware under test is not to blame."""


class BoardUnreachable(InfrastructureError):
    """The board's port vanished or the board stopped answering its REPL."""


class BrokerError(InfrastructureError):
    """The MQTT broker could not be started, reached or restarted."""


class DeployError(RigError):
    """The firmware could not be put on the board."""


class WaitTimeout(RigError, AssertionError):
    """A bounded wait expired.

    It is an ``AssertionError`` so that pytest reports it as a test failure, with the message
    first: what was awaited, what was seen last, and where the full log is.
    """

    def __init__(
        self,
        awaited: str,
        timeout: float,
        last_seen: list[str],
        log_path: Path | None,
        timeline: Path | None = None,
    ) -> None:
        self.awaited = awaited
        self.timeout = timeout
        self.last_seen = last_seen
        self.log_path = log_path
        self.timeline = timeline
        tail = "\n".join(f"    {line}" for line in last_seen) or "    (nothing)"
        where = f"\n  full log: {log_path}" if log_path else ""
        if timeline is not None:
            where += f"\n  timeline: {timeline}"
        super().__init__(
            f"timed out after {timeout:.1f}s waiting for {awaited}\n"
            f"  last {len(last_seen)} lines seen:\n{tail}{where}"
        )


class ConnectRejected(RigError, AssertionError):
    """The firmware reached the broker but could not get in: the broker refused its login
    (``connect_refused``, with the CONNACK code) or the TLS handshake failed (``tls_error``).
    A firmware or configuration failure, never a timeout nor the rig's: the board said why.
    ``event`` is the firmware's event line, parsed."""

    def __init__(self, message: str, event: dict[str, object], log_path: object = None) -> None:
        super().__init__(message if log_path is None else f"{message}\n  full log: {log_path}")
        self.event = event
