"""Reading run folders for a report, tolerating whatever a killed, old or half-written run left.

A report is most needed when a run went wrong, so nothing here raises on bad input: a missing or
unreadable ``run.json`` becomes a ``problem`` string that the page shows instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.evidence.run_record import RunRecord, TestRecord
from rig.evidence.timeline import read_timeline


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
    path = folder / "run.json"
    if not path.exists():
        return RunView(folder, None, f"no run.json in {folder}")
    try:
        # A newer rig may have added keys: an old report tool still reads the run.
        record = RunRecord.load(path, strict=False)
    except (OSError, ValueError, TypeError, AttributeError) as e:
        return RunView(folder, None, f"run.json unreadable: {e}")
    return RunView(folder, record, tests=[_load_test(folder, t) for t in record.tests])


def _load_test(run_folder: Path, record: TestRecord) -> TestView:
    folder = run_folder / record.artifacts if record.artifacts else None
    if folder is None or not folder.is_dir():
        return TestView(record, None, timeline_note="no artifacts were recorded for this test")
    timeline, trace = folder / "timeline.jsonl", folder / "mqtt.jsonl"
    try:
        if timeline.exists():
            return TestView(record, folder, _sorted(read_timeline(timeline)))
        # Runs from before timelines existed still have the MQTT trace, in the same entry format.
        if trace.exists():
            entries = [_from_trace(e) for e in read_timeline(trace) if isinstance(e, dict)]
            return TestView(
                record, folder, _sorted(entries), "no timeline.jsonl: showing the MQTT trace only"
            )
    except (OSError, ValueError) as e:  # ValueError: not UTF-8
        return TestView(record, folder, timeline_note=f"timeline unreadable: {e}")
    return TestView(record, folder, timeline_note="no timeline.jsonl in the artifacts")


def _from_trace(entry: dict[str, Any]) -> dict[str, Any]:
    text = f"{entry.get('dir', '?')} {entry.get('topic', '?')} {entry.get('payload', '')!r}"
    return {"src": "mqtt", "text": text, **entry}


def _sorted(entries: list[Any]) -> list[dict[str, Any]]:
    """Entries that have a time, in time order: each source is in order already, but sources
    are appended as their events arrive, so they can interleave slightly out of order."""
    timed = [e for e in entries if isinstance(e, dict) and isinstance(e.get("t"), (int, float))]
    return sorted(timed, key=lambda e: float(e["t"]))
