"""Running one command bounded in time, with nothing of it left behind: the gate's process job.

The process is a ``rig.processes.ChildProcess``: its own session (a Ctrl-C at the terminal
reaches the gate only) and its own process group, so that the board processes a pytest run
starts are stopped with it.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from rig.processes import ChildProcess

# After the timeout pytest gets SIGINT first, so that it tears the board and broker down and
# writes its JUnit XML and run.json (evidence of what hung); only then is the group killed.
INTERRUPT_GRACE = 15.0
TERM_GRACE = 5.0


def run_bounded(
    command: Sequence[str], log: Path, timeout: float, env: Mapping[str, str]
) -> tuple[int, bool]:
    """Run ``command`` in a session and process group of its own, output to ``log``; its exit
    code and whether it was stopped for exceeding ``timeout``.

    Whatever ends this call, nothing of the group is left running. On timeout: SIGINT to the
    command alone, SIGTERM to the group after ``INTERRUPT_GRACE``, SIGKILL to the group after
    ``TERM_GRACE``. Raises ``ProcessWouldNotStop`` (an ``InfrastructureError``) if the command
    outlives even SIGKILL.
    """
    with log.open("wb") as out:
        child = ChildProcess.spawn(command, name="pytest", stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        timed_out = not child.wait_exited(timeout)
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


def _interrupt(child: ChildProcess) -> None:
    """SIGINT to pytest (it tears down and writes its reports), then SIGTERM to the whole
    group, each followed by its grace period; SIGKILL is the caller's ``stop``."""
    child.send(signal.SIGINT)
    if child.wait_exited(INTERRUPT_GRACE):
        return
    child.send_group(signal.SIGTERM)
    child.wait_exited(TERM_GRACE)
