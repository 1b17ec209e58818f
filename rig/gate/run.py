"""The gate's loop: the boards present run at once, at most ``config.jobs`` at a time, each
attempt retried once on an infrastructure failure; then the tests of several boards, once per
group of boards (``rig.gate.several``); then the merged JUnit and the report.

This is the one module that knows how the boards are scheduled. Each attempt is ``run_board``:
a pytest of its own, into its own folder, with its own broker and board, so the runs share
nothing but the machine. Each job is a thread that takes the next board in inventory order and
waits on its pytest; the verdicts and the merged files come out in inventory order whatever
order the boards finish in.

Stopping: Ctrl-C (or SIGTERM, which the CLI turns into one) reaches the main thread, which
cancels every run (their pytest groups are killed, ``rig.gate.supervise``), waits for the jobs
and raises it again. A job that raised (a pytest that would not die) cancels the others the
same way, and its error is raised once they are done.
"""

from __future__ import annotations

import queue
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from rig.evidence.run_audit import audit_run, taken_over
from rig.gate.board import run_board
from rig.gate.config import RETRIES, GateConfig
from rig.gate.junit import write_junit
from rig.gate.layout import prepare_out, run_folder
from rig.gate.plan import PlannedBoard
from rig.gate.report import write_report
from rig.gate.results import (
    INFRASTRUCTURE,
    BoardFinished,
    BoardResult,
    BoardStarted,
    GateEvent,
    GateResult,
    Progress,
)
from rig.gate.several import SeveralOutcome, run_several
from rig.gate.supervise import INTERRUPT_GRACE, TERM_GRACE, RunCancelled
from rig.processes import KILL_BOUND
from rig.release.bundle import open_bundle

# How often the main thread looks up from waiting on the jobs; Ctrl-C interrupts it anyway.
_JOIN_STEP = 0.5
# How long a cancelled job may take to end: its pytest may be in the timeout's polite stop.
_CANCELLED_JOB = INTERRUPT_GRACE + TERM_GRACE + KILL_BOUND + 1.0


def run_gate(
    config: GateConfig,
    planned: Sequence[PlannedBoard],
    progress: Progress | None = None,
    before_report: Callable[[Path], Path | None] | None = None,
) -> GateResult:
    """Empty ``config.out``, run the suite on the present boards, ``config.jobs`` at a time
    (default: all at once), retrying an infrastructure failure once, then write ``junit.xml``
    and ``report.html`` there. ``progress`` is called from the jobs' threads, one call at a
    time. ``before_report(out)`` is called once ``junit.xml`` is written and before the report
    (the CLI stores the run there and writes ``trends.html``, which the report then links); the
    file it returns is audited with the gate's own."""
    config = config.absolute()
    config.check()
    # Read and checked against its manifest once, before anything runs: a bundle with a file
    # that is not what its manifest says is refused here (``BundleCorrupt``, a ConfigError).
    release = open_bundle(config.release).hash if config.release is not None else ""
    for board in planned:  # every name, before anything is emptied or started
        run_folder(config.out, board.name, 0)
    prepare_out(config.out)
    results = [BoardResult(board, config.strict) for board in planned]
    present = [r for r in results if r.planned.present]
    with tempfile.TemporaryDirectory(prefix="rig-gate-secrets-") as private:  # 0700, never an artifact
        handoff = Path(private) / "secrets.jsonl"
        several = SeveralOutcome()
        if present:
            notify = _one_at_a_time(progress)
            _run_jobs(config, present, notify, handoff)
            # Once every board run has ended: the groups share the boards those runs held.
            several = run_several(config, results, notify, handoff)
        junit = config.out / "junit.xml"
        write_junit(junit, results, config.out, release, several.groups, several.skipped)
        extra = before_report(config.out) if before_report is not None else None
        runs = [r.final.folder for r in [*results, *several.groups] if r.final is not None]
        report, problem = write_report(runs, config.out / "report.html", config.title or "rig gate")
        # Each run folder was audited when its run ended (``run_board``); this audits what the
        # gate made of them.
        verdict = audit_run(
            [p for p in (junit, report, extra) if p is not None], taken_over(handoff), verdict_dir=config.out
        )
    leaked = None if verdict.clean else verdict.message()
    return GateResult(results, junit, report, problem, leaked, release, several.groups, several.skipped)


def _one_at_a_time(progress: Progress | None) -> Progress:
    lock = threading.Lock()

    def notify(event: GateEvent) -> None:
        if progress is not None:
            with lock:
                progress(event)

    return notify


def _run_jobs(
    config: GateConfig, boards: Sequence[BoardResult], notify: Progress, secrets_file: Path
) -> None:
    todo: queue.Queue[tuple[int, BoardResult]] = queue.Queue()
    for position, result in enumerate(boards, 1):
        todo.put((position, result))
    cancel = threading.Event()
    errors: list[BaseException] = []

    def job() -> None:
        while not cancel.is_set():
            try:
                position, result = todo.get_nowait()
            except queue.Empty:
                return
            try:
                _run_board_attempts(config, result, position, len(boards), notify, cancel, secrets_file)
            except RunCancelled:
                return
            except BaseException as e:  # recorded, and raised by the main thread
                errors.append(e)
                cancel.set()
                return

    jobs = min(config.jobs or len(boards), len(boards))
    threads = [threading.Thread(target=job, name=f"gate-job-{i + 1}") for i in range(jobs)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(_JOIN_STEP)
    except BaseException:
        # Ctrl-C: every run is killed (each job notices within CANCEL_CHECK), then the
        # interruption goes on. A second Ctrl-C here leaves the children to their own
        # death-with-parent.
        cancel.set()
        for thread in threads:
            thread.join(_CANCELLED_JOB)
        raise
    if errors:
        raise errors[0]


def _run_board_attempts(
    config: GateConfig,
    result: BoardResult,
    position: int,
    total: int,
    notify: Progress,
    cancel: threading.Event,
    secrets_file: Path,
) -> None:
    for retry in range(RETRIES + 1):
        folder = run_folder(config.out, result.name, retry)
        notify(BoardStarted(result.name, folder, retry, position, total))
        attempt = run_board(config, result.planned.spec, folder, retry, cancel, secrets_file=secrets_file)
        result.attempts.append(attempt)
        # A firmware failure is never retried, not even when the run also had an
        # infrastructure failure: rerunning cannot change the firmware's verdict.
        will_retry = attempt.category == INFRASTRUCTURE and retry < RETRIES
        notify(BoardFinished(attempt, will_retry, position, total))
        if not will_retry:
            return
