"""Running one command bounded in time, with nothing of it left behind: the gate's process job.

The process is a ``rig.processes.ChildProcess``: its own session (a Ctrl-C at the terminal
reaches the gate only) and its own process group, so that the board processes a pytest run
starts are stopped with it.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from rig.deadline import Deadline
from rig.errors import RigError
from rig.processes import ChildProcess

# After the timeout pytest gets SIGINT first, so that it tears the board and broker down and
# writes its JUnit XML and run.json (evidence of what hung); only then is the group killed.
INTERRUPT_GRACE = 15.0
TERM_GRACE = 5.0
# How soon a run notices that the gate was cancelled (Ctrl-C reaches the gate's main thread
# only, while the runs are waited for on threads of their own).
CANCEL_CHECK = 0.2


class RunCancelled(RigError):
    """The gate was stopped (Ctrl-C, or another board's run raised) while this run went on; the
    run was killed, and nothing of its group is left."""


def run_bounded(
    command: Sequence[str],
    log: Path,
    timeout: float,
    env: Mapping[str, str],
    cancel: threading.Event | None = None,
) -> tuple[int, bool]:
    """Run ``command`` in a session and process group of its own, output to ``log``; its exit
    code and whether it was stopped for exceeding ``timeout``.

    Whatever ends this call, nothing of the group is left running. On timeout: SIGINT to the
    command alone, SIGTERM to the group after ``INTERRUPT_GRACE``, SIGKILL to the group after
    ``TERM_GRACE``. Once ``cancel`` is set (checked every ``CANCEL_CHECK`` seconds), SIGKILL
    to the group and ``RunCancelled``. Raises ``ProcessWouldNotStop`` (an
    ``InfrastructureError``) if the command outlives even SIGKILL.

    The child dies with the thread that started it (``PR_SET_PDEATHSIG``), so this call keeps
    its thread until the child is reaped, whatever happens.
    """
    with log.open("wb") as out:
        child = ChildProcess.spawn(command, name="pytest", stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        timed_out = not _wait(child, Deadline(timeout), cancel)
        if timed_out:
            _interrupt(child)
    except BaseException:
        # Ctrl-C in the gate: the run goes with it, at once. A child that outlives even that
        # raises ProcessWouldNotStop here, with the interruption as its context.
        child.stop(0, first=signal.SIGKILL)
        raise
    # Exited (or given up on): SIGKILL to what is left of it and of its group, then reap. Until
    # reaped, the leader's pid (the group's id) cannot have been reused, so whatever is still in
    # the group is a leftover of this run.
    return child.stop(0, first=signal.SIGKILL), timed_out


def _wait(child: ChildProcess, deadline: Deadline, cancel: threading.Event | None) -> bool:
    """True once ``child`` exited, False when ``deadline`` expired first; raises
    ``RunCancelled`` once ``cancel`` is set."""
    while True:
        if cancel is not None and cancel.is_set():
            raise RunCancelled(f"{child.name} (pid {child.pid}) stopped: the gate was cancelled")
        step = deadline.remaining_or(CANCEL_CHECK) if cancel is not None else deadline.remaining()
        if child.wait_exited(step):
            return True
        if deadline.expired:
            return False


def _interrupt(child: ChildProcess) -> None:
    """SIGINT to pytest (it tears down and writes its reports), then SIGTERM to the whole
    group, each followed by its grace period; SIGKILL is the caller's ``stop``."""
    child.send(signal.SIGINT)
    if child.wait_exited(INTERRUPT_GRACE):
        return
    child.send_group(signal.SIGTERM)
    child.wait_exited(TERM_GRACE)
