"""Host processes the rig starts: one way to start them, one way to stop them, by PID.

Every process the rig starts (a broker, the virtual board's supervisor, a pytest run of the
gate) goes through ``ChildProcess``, so that each of them

- runs in a session of its own: a Ctrl-C at the terminal reaches the rig only, and the rig
  stops its children in order instead of having them die under a running test (or print a
  KeyboardInterrupt traceback over the user's terminal);
- dies with the rig on Linux (``PR_SET_PDEATHSIG``), which covers a SIGKILLed pytest where no
  teardown or atexit hook runs;
- is stopped by an atexit hook if nothing else stopped it;
- sees only the part of the host environment it needs (``child_environment``): the host's may
  hold ``RIG_BROKER_PASSWORD``, ``RIG_WIFI_PASSWORD`` and a CI service's tokens, and a broker or
  a firmware has no use for them (they would show in ``/proc/<pid>/environ`` and in whatever
  the child dumps on a crash).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import fnmatch
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

from rig.deadline import Deadline
from rig.errors import InfrastructureError

_PR_SET_PDEATHSIG = 1
# After SIGKILL only a process stuck in the kernel can survive; waiting longer would not help.
KILL_BOUND = 3.0
# At interpreter exit, stop leftovers quickly: nothing waits for a clean shutdown then.
_ATEXIT_STOP = 2.0
# How often wait_exited looks: waitid has no timeout of its own.
_POLL = 0.05

File = int | IO[Any] | None

# What a child may take over from the host environment, as names or fnmatch patterns; anything
# else (secrets, CI tokens) stays with the rig. Each caller names the groups its child needs.
# Any program: where to find programs, whose it is, its language and time zone, its temp folder.
SYSTEM_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR", "TERM")
# A Python child: the interpreter's own settings and the virtual environment it runs from.
PYTHON_ENV = ("PYTHON*", "VIRTUAL_ENV", "COVERAGE_*")
# A labgrid client: its settings (LG_PROXY, LG_USERNAME...) and gRPC's fork handling.
LABGRID_ENV = ("LG_*", "GRPC_*")


def child_environment(
    *groups: Iterable[str], add: Mapping[str, str] | None = None, host: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables of ``host`` (default: this process's environment) that match a pattern of
    ``groups`` (e.g. ``SYSTEM_ENV``), then ``add`` on top. What matches none stays behind."""
    source = os.environ if host is None else host
    patterns = [pattern for group in groups for pattern in group]
    env = {
        name: value for name, value in source.items() if any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }
    env.update(add or {})
    return env


class ProcessWouldNotStop(InfrastructureError):
    """A child outlived SIGKILL (stuck in the kernel). Names the process and its log."""

    def __init__(self, name: str, pid: int, detail: str) -> None:
        self.name = name
        self.pid = pid
        super().__init__(f"{name} (pid {pid}) would not stop: {detail}")


def is_running(pid: int) -> bool:
    """True while ``pid`` runs. A zombie (dead, waiting for its parent to reap it) counts as gone:
    it holds no port, no socket and no pty any more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
    except OSError:
        return True  # no /proc: trust kill(0)


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when the forking thread dies (Linux only).

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


class ChildProcess:
    """One process the rig started, in its own session (its PID is its process group's id).

    Lifecycle: ``spawn()`` starts it; ``poll()`` / ``wait_exited()`` tell whether it ended;
    ``stop()`` ends it and every process left in its group and reaps it; ``stop()`` again is a
    no-op. ``popen`` gives the pipes when the caller asked for them. Until it is reaped, an
    atexit hook stops it.

    Signals go by PID, and only before the process is reaped: until then its PID (and its group
    id) cannot have been reused by an unrelated process.
    """

    _live: ClassVar[set[ChildProcess]] = set()

    def __init__(self, popen: subprocess.Popen[Any], name: str, log_path: Path | None = None) -> None:
        self.popen = popen
        self.name = name
        self.log_path = log_path

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        *,
        name: str | None = None,
        stdin: File = subprocess.DEVNULL,
        stdout: File = None,
        stderr: File = None,
        log_path: Path | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        text: bool = False,
        die_with_parent: bool = True,
    ) -> ChildProcess:
        """Start ``argv`` in a new session. ``log_path``: stdout and stderr are appended there
        (O_APPEND keeps every run of a restarted process in one file). ``env``: the child's whole
        environment; None gives it the system, Python and labgrid groups of ours
        (``child_environment``), never all of it. Raises OSError when the program cannot be
        started."""
        if env is None:
            env = child_environment(SYSTEM_ENV, PYTHON_ENV, LABGRID_ENV)
        options: dict[str, Any] = {
            "stdin": stdin,
            "cwd": cwd,
            "env": dict(env),
            "start_new_session": True,
            "preexec_fn": _die_with_parent_hook() if die_with_parent else None,
        }
        if text:
            options.update(text=True, bufsize=1)
        if log_path is not None:
            with log_path.open("ab") as log:
                popen: subprocess.Popen[Any] = subprocess.Popen(
                    list(argv), stdout=log, stderr=subprocess.STDOUT, **options
                )
        else:
            popen = subprocess.Popen(list(argv), stdout=stdout, stderr=stderr, **options)
        child = cls(popen, name or Path(argv[0]).name, log_path)
        cls._live.add(child)
        return child

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        """The exit code if the process has ended (and is now reaped), else None."""
        code = self.popen.poll()
        if code is not None:
            self._live.discard(self)
        return code

    def wait_exited(self, timeout: float | None) -> bool:
        """Wait until the process exits, without reaping it (so its group can still be signalled
        safely); False if it still runs after ``timeout``."""
        deadline = Deadline(timeout)
        while True:
            if self.popen.returncode is not None:
                return True
            try:
                if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                    return True
            except ChildProcessError:
                return True  # reaped elsewhere
            if deadline.expired:
                return False
            time.sleep(min(_POLL, deadline.remaining_or(_POLL)))

    def send(self, signum: int) -> None:
        """Send ``signum`` to the process itself, if it was not reaped yet."""
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def send_group(self, signum: int) -> None:
        """Send ``signum`` to every process of the child's group (what it started and did not
        move to a session of its own), if the child was not reaped yet."""
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)

    def stop(self, timeout: float = 5.0, first: int = signal.SIGTERM) -> int:
        """End the process: ``first`` (SIGTERM) to it, then SIGKILL to its whole group once
        ``timeout`` has passed; leftovers of the group are killed too. Reaps it and returns its
        exit code. Raises ``ProcessWouldNotStop`` if even SIGKILL does not end it."""
        if self.popen.returncode is not None:
            self._live.discard(self)
            return self.popen.returncode
        if not self.wait_exited(0):
            self.send(first)
            if not self.wait_exited(timeout):
                self.send_group(signal.SIGKILL)
                if not self.wait_exited(KILL_BOUND):
                    raise ProcessWouldNotStop(
                        self.name,
                        self.pid,
                        f"ignored signal {first} for {timeout:.1f}s and was still alive {KILL_BOUND:.1f}s "
                        f"after SIGKILL" + (f"; log: {self.log_path}" if self.log_path else ""),
                    )
        # Exited but not reaped: the group id is still ours, so leftovers of it are this child's.
        self.send_group(signal.SIGKILL)
        code = self.popen.wait()
        self._live.discard(self)
        return code

    @classmethod
    def stop_all(cls) -> None:
        """Stop every child still running; for the atexit hook, so it never raises."""
        for child in list(cls._live):
            with contextlib.suppress(InfrastructureError, OSError):
                child.stop(_ATEXIT_STOP)


atexit.register(ChildProcess.stop_all)
