"""A broker subprocess: a ``rig.processes.ChildProcess`` whose failures are ``BrokerError``s.

Starting, stopping by PID, dying with the rig and the atexit stop are the child-process helper's;
this wrapper only adds what a broker needs on top: its output appended to its log file, and
errors typed as the broker's, so that a broker that cannot start or will not stop reads as such
wherever it is caught.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rig.errors import BrokerError
from rig.processes import ChildProcess, ProcessWouldNotStop


class BrokerWouldNotStop(BrokerError):
    """The broker outlived SIGKILL (stuck in the kernel); names its pid and its log."""


class BrokerProcess:
    """One broker subprocess whose stdout and stderr are appended to a log file.

    Lifecycle: ``spawn()`` starts it; ``poll()`` tells whether it still runs; ``stop()`` ends it
    (SIGTERM, then SIGKILL to its group after the bound) and reaps it; ``stop()`` again is a
    no-op. Until it is reaped, an atexit hook stops it, and on Linux it also dies with its parent.
    """

    def __init__(self, child: ChildProcess) -> None:
        self._child = child

    @classmethod
    def spawn(
        cls, argv: Sequence[str], log_path: Path, cwd: Path, env: Mapping[str, str] | None = None
    ) -> BrokerProcess:
        """Start ``argv`` with output appended to ``log_path`` (O_APPEND: every run of a
        restarted broker stays in one file). Raises ``BrokerError`` if it cannot be started."""
        try:
            child = ChildProcess.spawn(argv, log_path=log_path, cwd=cwd, env=env)
        except OSError as exc:
            raise BrokerError(f"cannot start {argv[0]}: {exc}") from exc
        return cls(child)

    @property
    def pid(self) -> int:
        return self._child.pid

    @property
    def log_path(self) -> Path | None:
        return self._child.log_path

    def poll(self) -> int | None:
        """The exit code if the process has ended (and is now reaped), else None."""
        return self._child.poll()

    def stop(self, timeout: float) -> int:
        """End the process and reap it; returns its exit code. Idempotent.

        SIGTERM first, so the broker can close its sockets and finish its log; SIGKILL when
        ``timeout`` expires. Raises ``BrokerWouldNotStop`` if even SIGKILL does not end it.
        """
        try:
            return self._child.stop(timeout)
        except ProcessWouldNotStop as exc:
            raise BrokerWouldNotStop(f"broker {exc}") from exc
