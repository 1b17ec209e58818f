"""What a failed health check raises: one class per check, all of them test failures."""

from __future__ import annotations

from rig.errors import RigError


class HealthFailure(RigError, AssertionError):
    """The board was unwell during a test: the firmware's fault, not the rig's.

    An ``AssertionError`` so that pytest reports a failed test, message first (as
    ``WaitTimeout``); never an ``InfrastructureError``.
    """


class UnrequestedReboot(HealthFailure):
    """The board restarted during a test that did not reset it."""


class SecretOnConsole(HealthFailure):
    """The firmware printed a secret of its config; the message names it, never shows it."""


class HeapDrift(HealthFailure):
    """The free heap after collection fell steadily with the messages handled: a leak."""


class KeepaliveExpired(HealthFailure):
    """The broker dropped the board because it stayed silent past its keepalive."""
