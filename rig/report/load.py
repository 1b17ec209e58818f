"""The runs of a report, read by ``rig.evidence.run_folder`` (the one reader of run folders) and
named for the page's columns.

A report is most needed when a run went wrong, so nothing here raises on bad input: a missing or
broken ``run.json`` becomes ``problem`` (naming the file and the key), which the page shows
instead, and a test whose timeline is missing or unreadable gets a ``timeline_note``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.evidence.run_folder import read_run
from rig.evidence.run_record import RunRecord, TestRecord


@dataclass
class TestView:
    record: TestRecord
    # The test's artifact folder when it exists on disk.
    folder: Path | None
    # Timeline entries sorted by time (stable, so each source keeps its own order).
    entries: list[dict[str, Any]] = field(default_factory=list)
    # Said on the page when the timeline is missing or partial.
    timeline_note: str = ""


@dataclass
class RunView:
    folder: Path
    record: RunRecord | None
    problem: str = ""
    tests: list[TestView] = field(default_factory=list)
    # The column title: the board's name, made unique among the runs of one report.
    board_name: str = ""


def load_runs(folders: list[Path]) -> list[RunView]:
    """The runs, each named after its board; two runs of the same board (a rerun, two nights)
    are told apart by their folder names."""
    runs = [load_run(f) for f in folders]
    for run in runs:
        name = run.record.board.name if run.record else None
        run.board_name = str(name) if name else run.folder.name
    names = [r.board_name for r in runs]
    for run in runs:
        if names.count(run.board_name) > 1:
            run.board_name = f"{run.board_name} ({run.folder.name})"
    return runs


def load_run(folder: Path) -> RunView:
    """One board's run; the tests are those its ``run.json`` recorded, in its order."""
    run = read_run(folder)
    if run.record is None:
        return RunView(run.folder, None, run.problem)
    tests = []
    for test in run.tests:
        if test.record is None:
            continue  # on disk but not in run.json: nothing to say about its outcome
        entries = test.entries()
        tests.append(TestView(test.record, test.folder, entries.items, entries.note))
    return RunView(run.folder, run.record, run.problem, tests)
