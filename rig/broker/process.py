"""A broker subprocess: spawned with its output in a log file, stopped by PID, never left behind."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from rig.deadline import Deadline
from rig.errors import BrokerError

_PR_SET_PDEATHSIG = 1
# After SIGKILL only a process stuck in the kernel can survive; waiting longer would not help.
_KILL_BOUND_S = 3.0
# At interpreter exit, stop leftovers quickly: nothing waits for a clean broker shutdown then.
_ATEXIT_STOP_S = 2.0


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when the forking thread dies (Linux only).

    This covers a pytest killed with SIGKILL, where no atexit hook or fixture teardown runs.
    libc is resolved here, in the parent: the child between fork and exec should only make calls
    that cannot need a lock another parent thread held at fork time.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        # The parent may have died between fork and prctl; then no signal would ever come.
        if os.getppid() != parent:
            os._exit(1)

    return hook


class BrokerProcess:
    """One broker subprocess whose stdout and stderr are appended to a log file.

    Lifecycle: ``spawn()`` starts it; ``poll()`` tells whether it still runs; ``stop()`` ends it
    (SIGTERM, then SIGKILL after the bound) and reaps it; ``stop()`` again is a no-op. Until it is
    reaped, an atexit hook will stop it, and on Linux it also dies with its parent.
    """

    _live: ClassVar[set[BrokerProcess]] = set()

    def __init__(self, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self._popen = popen
        self.log_path = log_path

    @classmethod
    def spawn(
        cls, argv: Sequence[str], log_path: Path, cwd: Path, env: Mapping[str, str] | None = None
    ) -> BrokerProcess:
        """Start ``argv`` with output appended to ``log_path``.

        Append mode (O_APPEND) keeps every run of a restarted broker in one file and keeps the
        child's writes at the end even if someone truncates the file.
        """
        try:
            with log_path.open("ab") as log:
                popen = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=None if env is None else dict(env),
                    # Own session: a Ctrl-C in the terminal reaches pytest, which then stops the
                    # broker in order, instead of killing the broker under a running test.
                    start_new_session=True,
                    preexec_fn=_die_with_parent_hook(),
                )
        except OSError as exc:
            raise BrokerError(f"cannot start {argv[0]}: {exc}") from exc
        proc = cls(popen, log_path)
        cls._live.add(proc)
        return proc

    @property
    def pid(self) -> int:
        return self._popen.pid

    def poll(self) -> int | None:
        """The exit code if the process has ended (and is now reaped), else None."""
        code = self._popen.poll()
        if code is not None:
            self._live.discard(self)
        return code

    def stop(self, timeout: float) -> int:
        """End the process and reap it; returns its exit code. Idempotent.

        SIGTERM first, so the broker can close its sockets and finish its log; SIGKILL when
        ``timeout`` expires. Raises BrokerError if even SIGKILL does not end it.
        """
        code = self.poll()
        if code is not None:
            return code
        deadline = Deadline(timeout)
        # send_signal() does nothing for a process already reaped, and the PID is still ours until
        # we reap it, so this cannot hit an unrelated process that reused the PID.
        self._popen.send_signal(signal.SIGTERM)
        try:
            code = self._popen.wait(deadline.remaining())
        except subprocess.TimeoutExpired:
            self._popen.kill()
            try:
                code = self._popen.wait(_KILL_BOUND_S)
            except subprocess.TimeoutExpired as exc:
                raise BrokerError(
                    f"broker pid {self.pid} ignored SIGTERM for {timeout:.1f}s and was still alive "
                    f"{_KILL_BOUND_S:.1f}s after SIGKILL; log: {self.log_path}"
                ) from exc
        self._live.discard(self)
        return code

    @classmethod
    def stop_all(cls) -> None:
        """Stop every process still running; for the atexit hook, so it never raises."""
        for proc in list(cls._live):
            with contextlib.suppress(BrokerError):
                proc.stop(_ATEXIT_STOP_S)


atexit.register(BrokerProcess.stop_all)
