"""A run's artifacts folder, read: the one reader of run folders, for the HTML report (and the
gate's report through it) and for the bench page's replay of a finished run.

A folder given to ``read_run`` may be (layout: ``rig.evidence.run_record``):

- one run: ``run.json`` and a folder per test holding ``timeline.jsonl``, ``mqtt.jsonl`` …;
- a run of several boards (``rig gate``): a folder per board, each one run as above;
- one test's folder: its run is its parent's.

Runs that went wrong are the ones most looked at, so reading never fails on what is inside the
folder: a missing or broken ``run.json`` becomes a problem (``RunFolder.problems``, each naming
the file and, for a bad record, the key), a test without a readable timeline gets a note. Only
``open_run`` refuses, and only a folder with nothing of a run in it.

A test's entries are its ``timeline.jsonl`` (``rig.evidence.timeline``) or, for runs from
before timelines existed, its ``mqtt.jsonl``, in the same entry format; both in time order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rig.errors import RigError
from rig.evidence.run_record import RunRecord, TestRecord, from_json
from rig.evidence.timeline import read_timeline

RUN_JSON = "run.json"
TIMELINE = "timeline.jsonl"
MQTT_TRACE = "mqtt.jsonl"
LAYOUT = (
    f"a run's artifacts folder holds {RUN_JSON} and a folder per test, each with serial.log, "
    f"{MQTT_TRACE}, broker.log and {TIMELINE}"
)


class RunFolderError(RigError):
    """Something of a run folder cannot be read. ``path`` is the file or folder at fault,
    ``key`` the key of ``run.json`` when one is (``tests[0].outcome``), else ""."""

    def __init__(self, path: Path, problem: str, key: str = "") -> None:
        self.path = path
        self.key = key
        self.problem = problem
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")


class NotARunFolder(RunFolderError):
    """The folder holds nothing of a run (no ``run.json``, no test's timeline), or is missing."""


class BadRunRecord(RunFolderError):
    """A ``run.json`` that is not JSON, or not a run record."""


class UnreadableTimeline(RunFolderError):
    """A test's timeline (or trace) that cannot be read, or that the test does not have."""


class UnknownTest(RunFolderError):
    """No test of the run has this id."""


@dataclass(frozen=True)
class TestFolder:
    """One test of a run. ``id`` is its folder relative to the folder read (``board/test`` in a
    run of several boards); ``record`` is None when ``run.json`` does not name it (a run killed
    before it recorded the test), ``folder`` None when it has no artifacts on disk."""

    __test__ = False  # not a pytest test class, despite its name

    id: str
    record: TestRecord | None
    folder: Path | None

    @property
    def source(self) -> Path | None:
        """The file its entries come from: the timeline, else the MQTT trace, else None."""
        if self.folder is None:
            return None
        for name in (TIMELINE, MQTT_TRACE):
            if (self.folder / name).is_file():
                return self.folder / name
        return None

    def read_entries(self) -> list[dict[str, Any]]:
        """Its entries in time order; ``UnreadableTimeline`` naming the file when there are none
        to read or they cannot be read."""
        path = self.source
        if path is None:
            where = self.folder or Path(self.id)
            raise UnreadableTimeline(where, f"no {TIMELINE} nor {MQTT_TRACE} here")
        try:
            entries = read_timeline(path)
        except (OSError, ValueError) as e:  # ValueError: not UTF-8
            raise UnreadableTimeline(path, f"unreadable: {e}") from e
        if path.name == MQTT_TRACE:
            entries = [_from_trace(e) for e in entries if isinstance(e, dict)]
        return _in_time_order(entries)

    def entries(self) -> Entries:
        """Its entries, never raising: what could not be read is said in ``note``."""
        if self.folder is None:
            return Entries([], "no artifacts were recorded for this test")
        try:
            entries = self.read_entries()
        except UnreadableTimeline as e:
            return Entries([], str(e))
        shown = self.source
        note = f"no {TIMELINE}: showing the MQTT trace only" if shown and shown.name == MQTT_TRACE else ""
        return Entries(entries, note)

    @property
    def nodeid(self) -> str:
        """pytest's id of the test; its folder's name when the run did not record it."""
        return self.record.nodeid if self.record else self.id.rsplit("/", 1)[-1]

    @property
    def outcome(self) -> str:
        """passed, failed, error, skipped; "" when the run did not record the test."""
        return self.record.outcome if self.record else ""

    def to_json(self) -> dict[str, Any]:
        """What the replay's list of tests says about it."""
        rec = self.record
        return {
            "id": self.id,
            "folder": str(self.folder) if self.folder else "",
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "message": rec.message if rec else "",
            "started": rec.started if rec else 0.0,
        }


@dataclass(frozen=True)
class Entries:
    """A test's timeline entries in time order, and what is missing from them ("" if nothing)."""

    items: list[dict[str, Any]]
    note: str = ""


@dataclass(frozen=True)
class RunFolder:
    """What ``read_run`` found. ``records``: each ``run.json`` by the folder it is in, relative
    to ``folder`` ("" for the folder's own run, a board's folder name in a run of several);
    ``tests``: the recorded tests in the run's order, then those on disk it did not record."""

    folder: Path
    records: dict[str, RunRecord] = field(default_factory=dict)
    problems: list[RunFolderError] = field(default_factory=list)
    tests: list[TestFolder] = field(default_factory=list)

    @property
    def record(self) -> RunRecord | None:
        """The run's own record (not a board's of several)."""
        return self.records.get("")

    @property
    def problem(self) -> str:
        return "; ".join(str(p) for p in self.problems)

    def boards(self) -> list[str]:
        return sorted({r.board.name for r in self.records.values() if r.board.name})

    def test(self, test_id: str) -> TestFolder:
        for test in self.tests:
            if test.id == test_id:
                return test
        names = ", ".join(t.id for t in self.tests[:5]) + (" …" if len(self.tests) > 5 else "")
        raise UnknownTest(self.folder, f"no test {test_id!r} here (its tests: {names or 'none'})")


def read_run(folder: Path) -> RunFolder:
    """The run in ``folder`` (see the module docstring); never raises for what is in it."""
    folder = Path(folder)
    if (folder / TIMELINE).is_file() or (folder / MQTT_TRACE).is_file():
        return _one_test(folder)
    records, problems = _records(folder)
    tests = _recorded_tests(folder, records)
    known = {t.folder for t in tests if t.folder is not None}
    for found in _test_folders(folder):
        if found not in known:
            tests.append(TestFolder(found.relative_to(folder).as_posix(), None, found))
    return RunFolder(folder, records, problems, tests)


def open_run(folder: Path) -> RunFolder:
    """``read_run``, refusing (``NotARunFolder``, naming the path) a folder that is missing or
    has nothing of a run in it: neither a ``run.json`` nor a test's timeline."""
    folder = Path(folder)
    if not folder.exists():
        raise NotARunFolder(folder, "no such folder (expected a run's artifacts folder)")
    if not folder.is_dir():
        raise NotARunFolder(folder, "not a folder (expected a run's artifacts folder)")
    run = read_run(folder)
    if not run.records and not any(t.source for t in run.tests):
        why = f"not a run's artifacts folder: no {RUN_JSON} and no test timeline ({LAYOUT})"
        raise NotARunFolder(folder, why)
    return run


def load_record(path: Path) -> tuple[RunRecord | None, list[RunFolderError]]:
    """One ``run.json``, read as a reader that may be older than the rig that wrote it (keys it
    does not know are skipped). Returns the record (None when it is not one) and what could not
    be read, each naming the file and the key: a test that cannot be read is left out and said,
    never lost in silence with the rest of the run."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        return None, [BadRunRecord(path, f"unreadable: {e.strerror or e}")]
    except ValueError as e:  # not UTF-8, or not JSON (a kill cannot cut it: it is saved atomically)
        return None, [BadRunRecord(path, f"not JSON: {e}")]
    if not isinstance(doc, dict):
        return None, [BadRunRecord(path, f"expected a JSON object, got {type(doc).__name__}")]
    problems: list[RunFolderError] = []
    tests = doc.get("tests", [])
    if not isinstance(tests, list):
        problems.append(BadRunRecord(path, f"expected a list, got {type(tests).__name__}", "tests"))
        tests = []
    try:
        record = _typed(RunRecord, {**doc, "tests": []}, path, "")
    except BadRunRecord as e:
        return None, [e]
    for i, test in enumerate(tests):
        try:
            record.tests.append(_typed(TestRecord, test, path, f"tests[{i}]"))
        except BadRunRecord as e:
            problems.append(e)
    return record, problems


T = TypeVar("T")


def _typed(cls: type[T], doc: Any, path: Path, key: str) -> T:
    where = key or RUN_JSON
    try:
        return from_json(cls, doc, strict=False, where=where)
    except ValueError as e:
        # from_json says "<where>[.<field>]: <problem>": the part before the colon is the key.
        at, _, problem = str(e).partition(": ")
        return_key = at.removeprefix(RUN_JSON).lstrip(".")
        raise BadRunRecord(path, problem or str(e), return_key) from e


def _one_test(folder: Path) -> RunFolder:
    parent = read_run(folder.parent)
    for test in parent.tests:
        if test.folder == folder:
            return RunFolder(folder, parent.records, parent.problems, [_renamed(test, folder.name)])
    return RunFolder(folder, parent.records, parent.problems, [TestFolder(folder.name, None, folder)])


def _renamed(test: TestFolder, test_id: str) -> TestFolder:
    return TestFolder(test_id, test.record, test.folder)


def _records(folder: Path) -> tuple[dict[str, RunRecord], list[RunFolderError]]:
    records: dict[str, RunRecord] = {}
    problems: list[RunFolderError] = []
    own = folder / RUN_JSON
    paths = [own, *sorted(folder.glob(f"*/{RUN_JSON}"))]
    for path in paths:
        if not path.is_file():
            continue
        record, unread = load_record(path)
        problems += unread
        if record is not None:
            records[path.parent.relative_to(folder).as_posix().removeprefix(".")] = record
    if not records and not problems:
        problems.append(NotARunFolder(folder, f"no {RUN_JSON} in it ({LAYOUT})"))
    return records, problems


def _recorded_tests(folder: Path, records: dict[str, RunRecord]) -> list[TestFolder]:
    tests: list[TestFolder] = []
    for base, record in records.items():
        root = folder / base if base else folder
        for rec in record.tests:
            if not rec.artifacts:
                tests.append(TestFolder(_joined(base, rec.name or rec.nodeid), rec, None))
                continue
            path = root / rec.artifacts
            tests.append(TestFolder(_joined(base, rec.artifacts), rec, path if path.is_dir() else None))
    return tests


def _joined(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _test_folders(folder: Path) -> list[Path]:
    """Folders one or two levels down that hold a test's entries, by path."""
    found = {
        path.parent
        for name in (TIMELINE, MQTT_TRACE)
        for pattern in (f"*/{name}", f"*/*/{name}")
        for path in folder.glob(pattern)
        if path.is_file()
    }
    return sorted(found)


def _from_trace(entry: dict[str, Any]) -> dict[str, Any]:
    text = f"{entry.get('dir', '?')} {entry.get('topic', '?')} {entry.get('payload', '')!r}"
    return {"src": "mqtt", "text": text, **entry}


def _in_time_order(entries: list[Any]) -> list[dict[str, Any]]:
    """Entries that have a time, in time order: each source is in order already, but sources
    are appended as their events arrive, so they can interleave slightly out of order. The sort
    is stable: each source keeps its own order."""
    timed = [
        e
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("t"), int | float) and not isinstance(e.get("t"), bool)
    ]
    return sorted(timed, key=lambda e: float(e["t"]))
