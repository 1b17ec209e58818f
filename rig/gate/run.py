"""The gate's loop: the boards one after the other, each attempt retried once on an
infrastructure failure, then the merged JUnit and the report.

This is the one module that decides the order boards run in; running them in parallel changes
this loop and nothing else (each attempt is ``run_board``, self-contained, into its own folder).
"""

from __future__ import annotations

from collections.abc import Sequence

from rig.gate.board import run_board
from rig.gate.config import GateConfig
from rig.gate.junit import write_junit
from rig.gate.layout import prepare_out, run_folder
from rig.gate.plan import PlannedBoard
from rig.gate.report import write_report
from rig.gate.results import INFRASTRUCTURE, BoardFinished, BoardResult, BoardStarted, GateResult, Progress

RETRIES = 1


def run_gate(
    config: GateConfig, planned: Sequence[PlannedBoard], progress: Progress | None = None
) -> GateResult:
    """Empty ``config.out``, run the suite on each present board (retrying an infrastructure
    failure once), then write ``junit.xml`` and ``report.html`` there."""
    config = config.absolute()
    config.check()
    prepare_out(config.out)
    notify: Progress = progress or (lambda event: None)
    present = [p for p in planned if p.present]
    results = []
    for board in planned:
        result = BoardResult(board, config.strict)
        results.append(result)
        if not board.present:
            continue
        position = present.index(board) + 1
        for retry in range(RETRIES + 1):
            folder = run_folder(config.out, board.name, retry)
            notify(BoardStarted(board.name, folder, retry, position, len(present)))
            attempt = run_board(config, board.spec, folder, retry)
            result.attempts.append(attempt)
            # A firmware failure is never retried, not even when the run also had an
            # infrastructure failure: rerunning cannot change the firmware's verdict.
            will_retry = attempt.category == INFRASTRUCTURE and retry < RETRIES
            notify(BoardFinished(attempt, will_retry, position, len(present)))
            if not will_retry:
                break
    junit = config.out / "junit.xml"
    write_junit(junit, results, config.out)
    runs = [r.final.folder for r in results if r.final is not None]
    report, problem = write_report(runs, config.out / "report.html", config.title or "rig gate")
    return GateResult(results, junit, report, problem)
